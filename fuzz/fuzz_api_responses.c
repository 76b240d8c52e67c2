/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsers of what API servers answer: Google error bodies and Operations, Kubernetes Status
 * objects, Retry-After values, base64 (fingerprints). Never a crash; errors are one line.
 */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/http.h"
#include "gcp/compute.h"
#include "kube/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(const struct error *err)
{
	if (strchr(err->msg, '\n') || strchr(err->msg, '\r'))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {0,   200, 400, 401, 403, 404, 409,
					410, 412, 422, 429, 500, 503};
	const char *text = (const char *)data;
	struct gcp_operation op;
	struct error err;
	json_t *j;
	uint8_t *raw;
	size_t n;
	char *s;

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		error_clear(&err);
		if (gcp_api_error(statuses[i], text, size, "fuzz", &err) >= 0)
			abort();
		one_line(&err);
		error_clear(&err);
		if (kube_status_error(statuses[i], text, size, "fuzz", &err) >= 0)
			abort();
		one_line(&err);
	}
	(void)gcp_is_rate_limited(403, text, size);
	j = json_loadb(text, size, 0, NULL);
	if (j) {
		error_clear(&err);
		if (gcp_operation_parse(j, &op, &err) == 0 && (!op.name[0] || strchr(op.name, '/')))
			abort();
		error_clear(&err);
		if (gcp_operation_error(j, &err) > 0)
			abort();
		one_line(&err);
		(void)gcp_instance_nic(j, "nic0");
		json_decref(j);
	}
	s = strndup(text, size);
	if (s) {
		uint64_t ms;

		(void)http_parse_retry_after(s, 1700000000, &ms);
		(void)gcp_fingerprint_equal(s, "AAECAwQFBgc=");
		(void)http_url_is_loopback(s);
		free(s);
	}
	/* base64: whatever decodes re-encodes to something that decodes to the same bytes. */
	if (base64_decode(text, size, BASE64_ANY_ALPHABET | BASE64_SKIP_SPACE, &raw, &n) == 0) {
		char *enc = malloc(base64_encoded_size(n));
		uint8_t *again;
		size_t m;

		if (!enc)
			abort();
		base64_encode(raw, n, enc, 0);
		if (base64_decode(enc, strlen(enc), 0, &again, &m) < 0 || m != n ||
		    memcmp(again, raw, n))
			abort();
		free(again);
		free(enc);
		free(raw);
	}
	return 0;
}
