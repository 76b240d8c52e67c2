/* SPDX-License-Identifier: Apache-2.0 */
#include "common/base64.h"

#include <errno.h>
#include <stdlib.h>

static const char std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t base64_encoded_size(size_t len)
{
	return (len + 2) / 3 * 4 + 1;
}

size_t base64_encode(const void *data, size_t len, char *out, unsigned flags)
{
	const char *abc = (flags & BASE64_URL) ? url_alphabet : std_alphabet;
	const uint8_t *in = data;
	size_t o = 0, i;

	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = abc[v >> 6 & 63];
		out[o++] = abc[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		if (i + 1 < len)
			out[o++] = abc[v >> 6 & 63];
		else if (!(flags & BASE64_NO_PAD))
			out[o++] = '=';
		if (!(flags & BASE64_NO_PAD))
			out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int sextet(char c, unsigned flags)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if ((c == '+' || c == '/') && !(flags & BASE64_URL))
		return c == '+' ? 62 : 63;
	if ((c == '-' || c == '_') && (flags & (BASE64_URL | BASE64_ANY_ALPHABET)))
		return c == '-' ? 62 : 63;
	return -1;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int base64_decode(const char *text, size_t len, unsigned flags, uint8_t **out, size_t *out_len)
{
	uint8_t *buf;
	size_t n = 0, digits = 0, pad = 0;
	uint32_t acc = 0;
	int ret = -EINVAL;

	buf = malloc(len / 4 * 3 + 4);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		int v;

		if ((flags & BASE64_SKIP_SPACE) && is_space(c))
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad) /* data after padding */
			goto cleanup;
		v = sextet(c, flags);
		if (v < 0)
			goto cleanup;
		acc = acc << 6 | (uint32_t)v;
		if (++digits % 4 == 0) {
			buf[n++] = (uint8_t)(acc >> 16);
			buf[n++] = (uint8_t)(acc >> 8);
			buf[n++] = (uint8_t)acc;
			acc = 0;
		}
	}
	switch (digits % 4) {
	case 0:
		if (pad)
			goto cleanup;
		break;
	case 1:
		goto cleanup;
	case 2:
		if (acc & 0xf) /* non-canonical trailing bits */
			goto cleanup;
		buf[n++] = (uint8_t)(acc >> 4);
		if (pad != 2 && !(pad == 0 && (flags & (BASE64_ANY_ALPHABET | BASE64_URL))))
			goto cleanup;
		break;
	case 3:
		if (acc & 0x3)
			goto cleanup;
		buf[n++] = (uint8_t)(acc >> 10);
		buf[n++] = (uint8_t)(acc >> 2);
		if (pad != 1 && !(pad == 0 && (flags & (BASE64_ANY_ALPHABET | BASE64_URL))))
			goto cleanup;
		break;
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	buf = NULL;
	ret = 0;
cleanup:
	free(buf);
	return ret;
}
