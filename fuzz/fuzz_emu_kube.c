/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every Kubernetes API handler of talos-gcp-emu: the input is a sequence of requests
 * separated by NUL bytes ("METHOD PATH?QUERY\nHeader: v\n\nBODY"), run against a fresh
 * emulated cluster (store, watches, controllers; the first byte picks the CCM mode, and
 * whether requests authenticate). Seeds: fuzz/corpus/emu_kube.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_emu_kube_fake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct emu *emu;
	const char *p, *end;
	unsigned flags;
	int n = 0;

	if (size < 1 || size > 64 * 1024)
		return 0;
	flags = data[0];
	emu = fake_emu_new((enum emu_ccm_allocator)(flags % 3));
	fake_run_timers(emu, 64); /* the kubelet of the fake instance registers */
	p = (const char *)data + 1;
	end = (const char *)data + size;
	while (p < end && n++ < 16) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));
		size_t len = nul ? (size_t)(nul - p) : (size_t)(end - p);
		fake_request(emu, p, len, !(flags & 0x80));
		p += len + 1;
	}
	fake_emu_free(emu);
	return 0;
}
