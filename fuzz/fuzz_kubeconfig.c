/* SPDX-License-Identifier: Apache-2.0 */
/* The kubeconfig parser: any input parses or fails with a one-line message, never crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const contexts[] = {NULL, "a"};
	struct kube_config *c;
	struct error err;

	for (size_t i = 0; i < sizeof(contexts) / sizeof(contexts[0]); i++) {
		c = NULL;
		error_clear(&err);
		if (kube_config_parse((const char *)data, size, "fuzz.yaml", contexts[i], &c,
				      &err) == 0) {
			/* A resolved configuration always names a server over http(s). */
			if (!c || !c->server ||
			    (strncmp(c->server, "https://", 8) && strncmp(c->server, "http://", 7)))
				abort();
			/* Insecure never coexists with a CA, as client-go requires. */
			if (c->insecure_skip_tls_verify && c->ca_pem)
				abort();
			kube_config_free(c);
		} else if (c || !err.msg[0] || strchr(err.msg, '\n')) {
			abort();
		}
	}
	return 0;
}
