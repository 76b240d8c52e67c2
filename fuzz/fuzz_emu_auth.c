/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The token endpoint (JWT bearer and refresh-token grants), the metadata server and the
 * --require-auth check of talos-gcp-emu. Input as fuzz_emu_compute; a PATH without a
 * leading '/' is relative to /computeMetadata/v1/.
 */
#include <stdint.h>

#include "fuzz_emu_cloud_fake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct emu *emu = cloud_fake_world(true);

	cloud_fake_reset(emu);
	cloud_fake_run(emu, data, size, "/computeMetadata/v1/");
	return 0;
}
