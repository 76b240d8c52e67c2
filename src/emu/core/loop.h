/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TALOS_GCP_EMU_LOOP_H
#define TALOS_GCP_EMU_LOOP_H

#include <stddef.h>

#include "emu/emu.h"

struct emu_httpd;

/* Runs until SIGINT/SIGTERM. 0 or -errno. */
int emu_loop_run(struct emu *emu, struct emu_httpd *const *daemons, size_t n);

/* Daemons started while the loop runs (the data plane's per-node API servers). 0 or -errno. */
int emu_loop_add_httpd(struct emu *emu, struct emu_httpd *h);
void emu_loop_remove_httpd(struct emu *emu, struct emu_httpd *h);

#endif
