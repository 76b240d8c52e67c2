/* SPDX-License-Identifier: Apache-2.0 */
/* Label and field selector parsing and matching of the emulator's Kubernetes API. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emu/kube/kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static json_t *obj;
	struct kube_selector *s = NULL;
	char err[256], *text;

	if (!obj)
		obj = json_loads(
		    "{\"metadata\":{\"name\":\"n\",\"namespace\":\"default\",\"labels\":"
		    "{\"a\":\"b\",\"tier\":\"7\",\"x.io/y\":\"\"}},\"spec\":{\"unschedulable\":true},"
		    "\"status\":{\"phase\":\"Running\",\"replicas\":3}}",
		    0, NULL);
	text = strndup((const char *)data, size);
	if (!text)
		return 0;
	if (kube_label_selector_parse(text, &s, err, sizeof(err)) == 0) {
		kube_selector_match(s, obj);
		kube_selector_free(s);
	}
	if (kube_field_selector_parse(text, NULL, &s, err, sizeof(err)) == 0) {
		kube_selector_match(s, obj);
		kube_selector_name(s);
		kube_selector_free(s);
	}
	free(text);
	return 0;
}
