/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a health probe makes of the answer it read (no dependencies: fuzzed alone).
 * https://cloud.google.com/load-balancing/docs/health-check-concepts#criteria-protocol-http:
 * "HTTP 200 (OK) response code" and, with `response` set, the first 1,024 bytes containing
 * it; for TCP and SSL checks with `response` the answer must begin with it.
 */
#include <stdio.h>
#include <string.h>

#include "emu/dataplane/dataplane.h"

int dp_probe_verdict(bool http, const char *buf, size_t len, bool full, bool eof,
		     const char *response, const char **why)
{
	const char *eol, *body;
	size_t want;
	int status;

	*why = "";
	if (http) {
		eol = memchr(buf, '\n', len);
		if (!eol) {
			if (eof || full)
				return *why = "no HTTP status line", 0;
			return -1;
		}
		if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 ||
		    sscanf(buf + 8, " %3d", &status) != 1)
			return *why = "not an HTTP answer", 0;
		if (status != 200)
			return *why = "HTTP status not 200", 0;
		if (!response)
			return 1;
		/* "anywhere in the first 1,024 bytes of the response body" */
		body = memmem(buf, len, "\r\n\r\n", 4);
		if (body) {
			size_t blen = len - (size_t)(body + 4 - buf);

			if (memmem(body + 4, blen < 1024 ? blen : 1024, response, strlen(response)))
				return 1;
			if (blen >= 1024)
				return *why = "response text not found", 0;
		}
		if (eof || full)
			return *why = "response text not found", 0;
		return -1;
	}
	if (!response) /* TCP and SSL: the connection (handshake) was the check */
		return 1;
	want = strlen(response);
	if (memcmp(buf, response, len < want ? len : want) != 0)
		return *why = "unexpected response", 0;
	if (len >= want)
		return 1;
	if (eof || full)
		return *why = "short response", 0;
	return -1;
}
