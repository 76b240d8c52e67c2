/* SPDX-License-Identifier: Apache-2.0 */
/* Flag-value parsers (common/parse.h): durations, numbers, listen addresses. No crash, and
 * what parses is within its documented range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len;
	uint64_t v;
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	parse_duration_ms(s, &v);
	if (parse_u64(s, 65535, &v) == 0 && v > 65535)
		abort();
	if (parse_listen_addr(s, &ss, &len) == 0 && ss.ss_family != AF_INET &&
	    ss.ss_family != AF_INET6)
		abort();
	free(s);
	return 0;
}
