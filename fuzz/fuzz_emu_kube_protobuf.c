/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The emulator's decoder of Kubernetes protobuf request bodies ("k8s\0" + runtime.Unknown)
 * on arbitrary bytes; what it returns must be a JSON object that serializes. Seeds: bodies
 * kubectl 1.33 sent for its typed create commands (fuzz/corpus/emu_kube_protobuf).
 */
#include <stdint.h>
#include <stdlib.h>

#include "emu/kube/kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *obj = NULL;
	char err[512];

	if (kube_protobuf_decode(data, size, &obj, err, sizeof(err)) == 0) {
		char *text = json_dumps(obj, JSON_COMPACT);
		if (!json_is_object(obj) || !text)
			abort();
		free(text);
	}
	json_decref(obj);
	return 0;
}
