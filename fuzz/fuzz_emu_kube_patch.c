/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The emulator's patch engines (JSON merge patch, JSON patch, strategic merge patch) on a
 * target and a patch from the input: "TARGET\0PATCH" (two JSON documents).
 */
#include <stdint.h>
#include <string.h>

#include "emu/kube/kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nul = memchr(data, '\0', size);
	json_t *target, *patch, *out = NULL;
	char err[512];

	if (!nul)
		return 0;
	target = json_loadb((const char *)data, (size_t)(nul - (const char *)data), 0, NULL);
	patch = json_loadb(nul + 1, size - (size_t)(nul - (const char *)data) - 1, 0, NULL);
	if (target && patch) {
		json_decref(kube_merge_patch(target, patch));
		if (kube_json_patch(target, patch, &out, err, sizeof(err)) == 0)
			json_decref(out);
		out = NULL;
		if (kube_strategic_merge_patch(target, patch, &out, err, sizeof(err)) == 0)
			json_decref(out);
	}
	json_decref(target);
	json_decref(patch);
	return 0;
}
