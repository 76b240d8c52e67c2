/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Base64 (RFC 4648): the standard alphabet (kubeconfig *-data fields, GCP fingerprints as
 * GCP prints them) and the URL-safe one (JWT segments, fingerprints as gcloud re-encodes them).
 */
#ifndef TALOS_GCP_COMMON_BASE64_H
#define TALOS_GCP_COMMON_BASE64_H

#include <stddef.h>
#include <stdint.h>

enum base64_flags {
	BASE64_URL = 1 << 0,          /* encode: '-' '_' instead of '+' '/' */
	BASE64_NO_PAD = 1 << 1,       /* encode: no trailing '=' (JWT) */
	BASE64_ANY_ALPHABET = 1 << 2, /* decode: accept both alphabets, padding optional */
	BASE64_SKIP_SPACE = 1 << 3,   /* decode: ignore ASCII whitespace (wrapped text) */
};

/* Bytes needed to encode len bytes, including the NUL. */
size_t base64_encoded_size(size_t len);
/* Encodes into out (base64_encoded_size(len) bytes). Returns the text length. */
size_t base64_encode(const void *data, size_t len, char *out, unsigned flags);
/*
 * Decodes text[0..len) into a malloc'd buffer (NUL-terminated for convenience, the NUL is
 * not counted). Without BASE64_ANY_ALPHABET the standard alphabet with correct padding is
 * required. Non-zero trailing bits are refused. 0, -EINVAL (not base64) or -ENOMEM.
 */
int base64_decode(const char *text, size_t len, unsigned flags, uint8_t **out, size_t *out_len);

#endif
