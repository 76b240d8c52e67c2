/* SPDX-License-Identifier: Apache-2.0 */
#include "common/parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		unsigned d;

		if (*p < '0' || *p > '9')
			return -EINVAL;
		d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_duration_ms(const char *s, uint64_t *out_ms)
{
	uint64_t total = 0;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;
	if (strcmp(s, "0") == 0) {
		*out_ms = 0;
		return 0;
	}
	while (*p) {
		uint64_t v = 0, mult;
		int digits = 0;

		while (*p >= '0' && *p <= '9') {
			if (v > UINT64_MAX / 10 - 9)
				return -ERANGE;
			v = v * 10 + (uint64_t)(*p - '0');
			p++;
			digits++;
		}
		if (!digits)
			return -EINVAL;
		if (strncmp(p, "ms", 2) == 0) {
			mult = 1;
			p += 2;
		} else if (*p == 's') {
			mult = 1000;
			p++;
		} else if (*p == 'm') {
			mult = 60 * 1000;
			p++;
		} else if (*p == 'h') {
			mult = 3600 * 1000;
			p++;
		} else {
			return -EINVAL;
		}
		if (v > (UINT64_MAX - total) / mult)
			return -ERANGE;
		total += v * mult;
	}
	*out_ms = total;
	return 0;
}

int parse_listen_addr(const char *s, struct sockaddr_storage *out, socklen_t *out_len)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *hs;
	uint64_t port;
	size_t hlen;

	if (!s)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		hs = s + 1;
		hlen = (size_t)(close - hs);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hs = s;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, hs, hlen);
	host[hlen] = '\0';
	if (parse_u64(colon + 1, 65535, &port) < 0)
		return -EINVAL;
	if (s[0] == '[') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*out_len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -EINVAL;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*out_len = sizeof(*sin);
	}
	return 0;
}
