/* SPDX-License-Identifier: Apache-2.0 */
#include "common/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int error_set(struct error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (code < 0)
		code = -code;
	if (code == 0)
		code = EINVAL;
	if (err) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		for (char *p = err->msg; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	}
	return -code;
}

int error_prefix(struct error *err, const char *fmt, ...)
{
	char prefix[ERROR_MSG_MAX], old[ERROR_MSG_MAX];
	size_t n, m;
	va_list ap;

	if (!err)
		return -EINVAL;
	if (!err->code)
		err->code = EINVAL;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* Truncation is acceptable: the message stays one bounded line. */
	n = strnlen(prefix, sizeof(err->msg) - 3);
	memcpy(err->msg, prefix, n);
	err->msg[n++] = ':';
	err->msg[n++] = ' ';
	m = strnlen(old, sizeof(err->msg) - 1 - n);
	memcpy(err->msg + n, old, m);
	err->msg[n + m] = '\0';
	return -err->code;
}

void error_clear(struct error *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}
