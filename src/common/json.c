/* SPDX-License-Identifier: Apache-2.0 */
#include "common/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int json_parse(const char *buf, size_t len, const char *what, json_t **out, struct error *err)
{
	json_error_t jerr;
	json_t *v;

	v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!v)
		return error_set(err, EBADMSG, "%s:%d:%d: invalid JSON: %s",
				 what ? what : "<input>", jerr.line, jerr.column, jerr.text);
	*out = v;
	return 0;
}

json_t *json_path(const json_t *root, const char *path)
{
	const json_t *cur = root;
	const char *p = path;

	while (cur && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		char key[128];

		if (n == 0 || n >= sizeof(key))
			return NULL;
		memcpy(key, p, n);
		key[n] = '\0';
		if (json_is_array(cur)) {
			char *end;
			unsigned long idx = strtoul(key, &end, 10);

			if (*end || key[0] < '0' || key[0] > '9')
				return NULL;
			cur = json_array_get(cur, idx);
		} else if (json_is_object(cur)) {
			cur = json_object_get(cur, key);
		} else {
			return NULL;
		}
		p = dot ? dot + 1 : p + n;
	}
	return (json_t *)cur;
}

const char *json_path_str(const json_t *root, const char *path)
{
	return json_string_value(json_path(root, path));
}

const char *json_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

int json_path_int64(const json_t *root, const char *path, int64_t *out)
{
	const json_t *v = json_path(root, path);
	const char *s;
	char *end;
	long long n;

	if (!v)
		return -ENOENT;
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return 0;
	}
	s = json_string_value(v);
	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || *end || (s[0] != '-' && (s[0] < '0' || s[0] > '9')))
		return -EINVAL;
	*out = (int64_t)n;
	return 0;
}
