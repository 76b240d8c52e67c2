/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The batch endpoint of talos-gcp-emu (POST /batch/compute/v1, multipart/mixed): the first
 * line of the input is the outer Content-Type, the rest the body. The parser's parts must lie
 * inside the body, with a method token and a path; then the same request runs through the
 * handlers against the small world of fuzz_emu_cloud_fake.c: exactly one reply, and a
 * multipart answer whose parts are well-formed HTTP responses (the fake checks).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"
#include "fuzz_emu_cloud_fake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parse(const char *ct, const char *body, size_t len)
{
	struct batch_part *parts;
	size_t n;
	char err[256];

	if (batch_parse(ct, body, len, &parts, &n, err, sizeof(err)) < 0)
		return;
	if (n == 0 || n > 1000)
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct batch_part *p = &parts[i];

		if (p->body < body || p->body + p->body_len > body + len)
			abort();
		if (!p->method[0] ||
		    strspn(p->method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(p->method))
			abort();
		if (p->target[0] != '/')
			abort();
	}
	batch_parts_free(parts, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t ctlen = nl ? (size_t)(nl - (const char *)data) : size;
	const char *body = nl ? nl + 1 : (const char *)data + size;
	size_t blen = size - (size_t)(body - (const char *)data);
	struct emu *emu = cloud_fake_world(false);
	char *ct, *req;

	if (memchr(data, '\0', ctlen) || memchr(data, '\r', ctlen))
		return 0;
	ct = strndup((const char *)data, ctlen);
	if (!ct)
		abort();
	check_parse(ct, body, blen);
	req = str_printf("POST /batch/compute/v1\nContent-Type: %s\n\n%.*s", ct, (int)blen, body);
	if (!req)
		abort();
	cloud_fake_reset(emu);
	cloud_fake_run(emu, (const uint8_t *)req, strlen(req),
		       "/compute/v1/projects/demo-project/");
	free(req);
	free(ct);
	return 0;
}
