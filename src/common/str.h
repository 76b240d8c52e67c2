/* SPDX-License-Identifier: Apache-2.0 */
/* Small string helpers. */
#ifndef TALOS_GCP_COMMON_STR_H
#define TALOS_GCP_COMMON_STR_H

#include <stdbool.h>

/* A malloc'd formatted string, or NULL when out of memory. */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* An environment variable that says yes: "true", "yes" or "1" (any case). */
bool env_true(const char *name);
/* The variable's value, or NULL when unset or empty. */
const char *env_nonempty(const char *name);

#endif
