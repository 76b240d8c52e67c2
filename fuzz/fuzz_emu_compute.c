/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compute v1 handlers of talos-gcp-emu: any sequence of requests against a small world
 * (network, subnet with pods/services ranges, two instances). No crash, no leak, exactly one
 * reply per request, every JSON reply parses (fuzz_emu_cloud_fake.c checks).
 * Input: requests separated by "\n~~~\n", each "METHOD PATH[?QUERY]\nHeader: v\n\nBODY";
 * a PATH without a leading '/' is relative to /compute/v1/projects/demo-project/.
 */
#include <stdint.h>

#include "fuzz_emu_cloud_fake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct emu *emu = cloud_fake_world(false);

	cloud_fake_reset(emu);
	cloud_fake_run(emu, data, size, "/compute/v1/projects/demo-project/");
	return 0;
}
