/* SPDX-License-Identifier: Apache-2.0 */
#include "common/str.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char *str_printf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

bool env_true(const char *name)
{
	const char *v = getenv(name);

	return v && (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1"));
}

const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}
