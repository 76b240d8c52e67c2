/* SPDX-License-Identifier: Apache-2.0 */
/* Small string helpers. */
#ifndef TALOS_GCP_COMMON_STR_H
#define TALOS_GCP_COMMON_STR_H

#include <stdbool.h>
#include <stddef.h>

/* A malloc'd formatted string, or NULL when out of memory. */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* An environment variable that says yes: "true", "yes" or "1" (any case). */
bool env_true(const char *name);
/* The variable's value, or NULL when unset or empty. */
const char *env_nonempty(const char *name);

/*
 * Zeroes, then frees, memory that held a secret (a token, a key, a body that may carry one).
 * free_secret_str() is for NUL-terminated strings. NULL is fine.
 */
void free_secret(void *p, size_t len);
void free_secret_str(char *s);

/*
 * Copies at most max - 1 bytes of s[0..len) into out, NUL-terminated, with anything that is
 * not printable ASCII as '?': for quoting what a server or a file said in a message. out.
 */
const char *str_printable(char *out, size_t max, const char *s, size_t len);

#endif
