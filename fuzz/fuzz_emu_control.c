/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The /_emu control endpoint of talos-gcp-emu (faults, fingerprints, state dump and load,
 * statistics) and the fault interception that follows from it. Input as fuzz_emu_compute;
 * a PATH without a leading '/' is relative to /_emu/.
 */
#include <stdint.h>

#include "fuzz_emu_cloud_fake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct emu *emu = cloud_fake_world(false);

	cloud_fake_reset(emu);
	cloud_fake_run(emu, data, size, "/_emu/");
	return 0;
}
