/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers for the Compute emulation: base64 (written here rather than shared with the
 * clients: a shared bug would hide itself), random ids and fingerprints, name rules, time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "emu/compute/compute.h"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *b64_encode(const void *data, size_t len, bool url, bool pad)
{
	const char *alpha = url ? b64_url : b64_std;
	const uint8_t *p = data;
	char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t left = len - i;

		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		*o++ = alpha[(v >> 18) & 63];
		*o++ = alpha[(v >> 12) & 63];
		if (left > 1)
			*o++ = alpha[(v >> 6) & 63];
		else if (pad)
			*o++ = '=';
		if (left > 2)
			*o++ = alpha[v & 63];
		else if (pad)
			*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int b64_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

/* Either alphabet (gcloud re-encodes fingerprints URL-safe), padding optional, strict bits. */
int b64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t *buf;
	size_t n = 0, npad = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	while (len > 0 && text[len - 1] == '=' && npad < 2) {
		len--;
		npad++;
	}
	if (len % 4 == 1 || (npad && (len + npad) % 4))
		return -EINVAL;
	buf = malloc(len * 3 / 4 + 1);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value(text[i]);

		if (v < 0) {
			free(buf);
			return -EINVAL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be zero, or two texts would decode to the same bytes. */
	if (acc & ((1u << bits) - 1)) {
		free(buf);
		return -EINVAL;
	}
	buf[n] = 0;
	*out = buf;
	*out_len = n;
	return 0;
}

void random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			/* getrandom only fails before the pool is seeded; fall back to rand(). */
			for (size_t i = 0; i < len; i++)
				p[i] = (uint8_t)rand();
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

char *new_fingerprint(void)
{
	uint8_t raw[8];

	random_bytes(raw, sizeof(raw));
	return b64_encode(raw, sizeof(raw), false, true);
}

bool fingerprint_equal(const char *a, const char *b)
{
	uint8_t *da = NULL, *db = NULL;
	size_t la, lb;
	bool eq;

	if (!a || !b || b64_decode(a, strlen(a), &da, &la) < 0)
		return false;
	if (b64_decode(b, strlen(b), &db, &lb) < 0) {
		free(da);
		return false;
	}
	eq = la == lb && memcmp(da, db, la) == 0;
	free(da);
	free(db);
	return eq;
}

bool valid_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 1 || n > 63 || s[0] < 'a' || s[0] > 'z' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

bool valid_uuid(const char *s)
{
	bool nonzero = false;

	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		char ch = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (ch != '-')
				return false;
			continue;
		}
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
		      (ch >= 'A' && ch <= 'F')))
			return false;
		if (ch != '0')
			nonzero = true;
	}
	return nonzero;
}

const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

json_t *jsonf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	json_t *j;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s)
		return NULL;
	j = json_string(s);
	free(s);
	return j;
}

json_t *json_now(void)
{
	char buf[48];

	return json_string(emu_rfc3339_ms(buf, sizeof(buf)));
}

uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629 §4: no overlong forms, no
 * surrogates, nothing past U+10FFFF), 0 if there is none. */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return avail >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		unsigned lo = p[0] == 0xe0 ? 0xa0 : 0x80, hi = p[0] == 0xed ? 0x9f : 0xbf;

		return avail >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		unsigned lo = p[0] == 0xf0 ? 0x90 : 0x80, hi = p[0] == 0xf4 ? 0x8f : 0xbf;

		return avail >= 4 && p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 &&
			       (p[3] & 0xc0) == 0x80
			   ? 4
			   : 0;
	}
	return 0;
}

bool utf8_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq((const unsigned char *)s + i, len - i);

		if (!n)
			return false;
		i += n;
	}
	return true;
}

size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

void utf8_scrub(char *s)
{
	size_t len = strlen(s);

	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq((unsigned char *)s + i, len - i);

		if (!n) {
			s[i++] = '?';
			continue;
		}
		i += n;
	}
}
