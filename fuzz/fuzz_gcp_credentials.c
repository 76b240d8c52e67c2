/* SPDX-License-Identifier: Apache-2.0 */
/* Google credentials JSON (service_account, authorized_user): parse, and sign when a key parses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gcp/credentials.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gcp_credentials *c = NULL;
	struct error err = {0};
	char *jwt = NULL;

	if (gcp_credentials_parse((const char *)data, size, "fuzz.json", NULL, &c, &err) < 0) {
		if (c || !err.msg[0] || strchr(err.msg, '\n'))
			abort();
		return 0;
	}
	if (!gcp_credentials_describe(c))
		abort();
	if (gcp_credentials_kind(c) == GCP_CRED_SERVICE_ACCOUNT) {
		if (gcp_credentials_jwt(c, 1700000000, &jwt, &err) < 0)
			abort();
		/* header.claims.signature, URL-safe base64 without padding */
		if (strspn(jwt,
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") !=
		    strlen(jwt))
			abort();
		free(jwt);
	}
	gcp_credentials_free(c);
	return 0;
}
