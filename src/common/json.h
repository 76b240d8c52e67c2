/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers on top of jansson: parse a buffer with a one-line error naming where, and
 * typed getters that return NULL/false instead of crashing on unexpected shapes (API
 * responses are input like any other).
 */
#ifndef TALOS_GCP_COMMON_JSON_H
#define TALOS_GCP_COMMON_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/*
 * Parses buf[0..len) (any JSON value, duplicate keys refused). On failure err says
 * "WHAT:LINE:COLUMN: jansson's message" and -EBADMSG is returned. what names the source:
 * a file path, or "GET https://...".
 */
int json_parse(const char *buf, size_t len, const char *what, json_t **out, struct error *err);

/*
 * Walks a dotted path of object keys ("metadata.name", "error.errors"); a path element that
 * is a decimal number indexes an array ("networkInterfaces.0.fingerprint"). NULL when any
 * step is missing or has another type. The result is borrowed from root.
 */
json_t *json_path(const json_t *root, const char *path);
/* The string at path, or NULL when absent or not a string. Borrowed. */
const char *json_path_str(const json_t *root, const char *path);
/* Object member key as a string, or NULL. Borrowed. */
const char *json_str(const json_t *obj, const char *key);
/*
 * int64 at path, accepting a JSON integer or a decimal string (Google encodes int64 as
 * strings). 0 on success, -ENOENT when absent, -EINVAL on another type or bad text.
 */
int json_path_int64(const json_t *root, const char *path, int64_t *out);

#endif
