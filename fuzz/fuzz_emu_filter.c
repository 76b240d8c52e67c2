/* SPDX-License-Identifier: Apache-2.0 */
/*
 * List filters of talos-gcp-emu (regular-expression and AIP-160 forms): the first line is the
 * filter, the rest a JSON resource to match it against. No crash, no leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t flen = nl ? (size_t)(nl - (const char *)data) : size;
	char *text = strndup((const char *)data, flen), err[256];
	struct filter *f = NULL;
	json_t *res;

	if (!text || memchr(data, '\0', flen))
		goto cleanup;
	if (filter_parse(text, &f, err, sizeof(err)) < 0)
		goto cleanup;
	res = nl ? json_loadb(nl + 1, size - flen - 1, 0, NULL) : NULL;
	if (!res)
		res = json_pack("{s:s, s:s, s:[{s:s}], s:{s:b}}", "name", "node-a", "status",
				"RUNNING", "networkInterfaces", "networkIP", "10.0.0.2",
				"scheduling", "automaticRestart", 1);
	(void)filter_match(f, res);
	json_decref(res);
cleanup:
	filter_free(f);
	free(text);
	return 0;
}
