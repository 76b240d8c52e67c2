/* SPDX-License-Identifier: Apache-2.0 */
/* The emulator core faked for the kube harnesses (fuzz_emu_kube_fake.c). */
#ifndef TALOS_GCP_FUZZ_EMU_KUBE_FAKE_H
#define TALOS_GCP_FUZZ_EMU_KUBE_FAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "emu/emu.h"

#define FAKE_MAX 32

/* Stands in for the MHD connection of a request. */
struct fake_conn {
	char *query[FAKE_MAX][2];
	size_t nquery;
	char *headers[FAKE_MAX][2];
	size_t nheaders;
	unsigned status;
	size_t bytes;
	emu_stream_read_fn stream;
	void *stream_cls;
};

struct emu *fake_emu_new(enum emu_ccm_allocator mode);
void fake_emu_free(struct emu *emu);
/* "METHOD PATH[?QUERY]\nHeader: value\n\nBODY": runs it, returns the HTTP status. */
unsigned fake_request(struct emu *emu, const char *text, size_t len, bool auth);
void fake_run_timers(struct emu *emu, int rounds);

#endif
