/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's /healthz (200 while the VIP is in place), /livez (200 while the agent runs) and
 * /metrics: a strict HTTP/1.x request parser and the responses,
 * as pure functions (the socket side lives in agent.c). Small on purpose: a library such as
 * libmicrohttpd would pull GnuTLS into the static binary for two GET endpoints.
 */
#ifndef TALOS_GCP_AGENT_HTTP_H
#define TALOS_GCP_AGENT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "agent/state.h"

/* Requests (line and headers) larger than this are refused with 431. */
#define HTTP_MAX_REQUEST 2048
/* Large enough for the biggest response (the metrics page). */
#define HTTP_MAX_RESPONSE 4096

enum http_method { HTTP_GET = 0, HTTP_HEAD, HTTP_OTHER };

struct http_request {
	enum http_method method;
	char path[128]; /* without the query string */
};

/*
 * Parses the request line and headers in buf[0..len). 0 when complete, -EAGAIN when more
 * bytes are needed, -EINVAL (400), -ENAMETOOLONG (414) or -E2BIG (431).
 */
int http_parse_request(const char *buf, size_t len, struct http_request *req);

enum vip_resync_reason {
	VIP_RESYNC_STARTUP = 0,
	VIP_RESYNC_TIMER,
	VIP_RESYNC_SIGNAL,
	VIP_RESYNC_ENOBUFS,
	VIP_RESYNC_LINK,
	VIP_RESYNC_RETRY,
	VIP_RESYNC_COUNT,
};

const char *vip_resync_reason_name(enum vip_resync_reason reason);

struct vip_metrics {
	bool present;
	bool ifa_proto_supported;
	uint64_t restores[VIP_CAUSE_COUNT];
	uint64_t resyncs[VIP_RESYNC_COUNT];
	uint64_t netlink_errors;
	double last_reconcile; /* Unix seconds; 0 before the first */
};

/* The Prometheus text page. Length written, or -ENOSPC. */
int vip_metrics_format(const struct vip_metrics *m, const struct vip_config *cfg, char *buf,
		       size_t size);

/*
 * The whole response to the bytes received so far: its length in out, 0 when the request
 * is still incomplete (wait for more), or -ENOSPC.
 */
int http_respond(const char *req, size_t len, const struct vip_metrics *m,
		 const struct vip_config *cfg, char *out, size_t size);

#endif
