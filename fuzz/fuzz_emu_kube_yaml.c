/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The emulator's YAML request bodies (application/yaml, apply-patch+yaml) on arbitrary
 * text: a converted document must serialize as JSON; aliases stay within their bound.
 */
#include <stdint.h>
#include <stdlib.h>

#include "emu/kube/kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = NULL;
	char err[512];

	if (size > 256 * 1024)
		return 0;
	if (kube_yaml_to_json(data, size, &doc, err, sizeof(err)) == 0) {
		char *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!text)
			abort();
		free(text);
	}
	json_decref(doc);
	return 0;
}
