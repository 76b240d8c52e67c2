/* SPDX-License-Identifier: Apache-2.0 */
/* The vip-alias daemon: sockets, the epoll loop, reconciliation and the HTTP endpoints. */
#ifndef TALOS_GCP_AGENT_AGENT_H
#define TALOS_GCP_AGENT_AGENT_H

#include "agent/config.h"

/* Exit status: 0, 1 (the kernel refused a change, or a runtime failure), 2 (bad input or a
 * conflict found before anything was changed). */
enum { VIP_EXIT_OK = 0, VIP_EXIT_FAILURE = 1, VIP_EXIT_USAGE = 2 };

int vip_agent_run(const struct vip_config *cfg);

/* A logfmt value: as is when it needs no quotes, else "quoted" with \" and \\ escaped. */
const char *vip_logfmt_value(const char *s, char *buf, size_t size);

#endif
