/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error reports for parsers and API calls. Functions return 0 or -errno; when the
 * caller passes a struct error, the callee also says what went wrong in one line that
 * names the file:line, field or flag, so the CLI can print it as is.
 */
#ifndef TALOS_GCP_COMMON_ERROR_H
#define TALOS_GCP_COMMON_ERROR_H

#define ERROR_MSG_MAX 512

struct error {
	int code;                /* positive errno, 0 when nothing failed */
	char msg[ERROR_MSG_MAX]; /* one line, no trailing newline */
};

/* Records the message (when err is not NULL) and returns -code. */
int error_set(struct error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes an existing message: "context: old message". Returns -err->code. */
int error_prefix(struct error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void error_clear(struct error *err);

#endif
