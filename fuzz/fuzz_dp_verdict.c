/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The health probes' verdict on whatever a guest answers (dataplane/verdict.c): no crash, a
 * verdict in {-1, 0, 1}, a reason with every failure, a final verdict once the peer closed or
 * the buffer is full. Input: a flags byte (bit 0 full, 1 eof, 2 a response is expected), the
 * expected response up to a NUL, then the answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emu/dataplane/dataplane.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul;
	char *response = NULL, *buf;
	size_t rlen = 0, blen;
	unsigned flags;
	bool full, eof;

	if (size < 1)
		return 0;
	flags = data[0];
	full = flags & 1;
	eof = flags & 2;
	data++;
	size--;
	nul = memchr(data, 0, size);
	if (flags & 4 && nul) {
		rlen = (size_t)(nul - data);
		response = malloc(rlen + 1);
		if (!response)
			return 0;
		memcpy(response, data, rlen);
		response[rlen] = '\0';
		data += rlen + 1;
		size -= rlen + 1;
	}
	blen = size;
	buf = malloc(blen + 1);
	if (!buf) {
		free(response);
		return 0;
	}
	memcpy(buf, data, blen);
	buf[blen] = '\0';
	for (int http = 0; http < 2; http++) {
		const char *why = NULL;
		int v = dp_probe_verdict(http, buf, blen, full, eof, response, &why);

		if (v < -1 || v > 1 || !why)
			abort();
		if (v == 0 && !*why)
			abort();
		if ((full || eof) && v == -1)
			abort();
	}
	free(buf);
	free(response);
	return 0;
}
