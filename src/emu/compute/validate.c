/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request bodies against the Compute v1 message shapes. The wording follows what Google's
 * front end answers for the same mistakes ("Invalid JSON payload received. Unknown name ...").
 * Rules are proto3 JSON's (https://protobuf.dev/programming-guides/proto3/#json): int64 may be
 * a number or a string, int32 a number or a decimal string, bytes base64 with either
 * alphabet, null means absent.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"
#include "emu/compute/schema.h"

static int cmp_message(const void *key, const void *elem)
{
	return strcmp(key, ((const struct sch_message *)elem)->name);
}

const struct sch_message *sch_find(const char *name)
{
	return bsearch(name, sch_messages, sch_nmessages, sizeof(sch_messages[0]), cmp_message);
}

static int cmp_field(const void *key, const void *elem)
{
	return strcmp(key, ((const struct sch_field *)elem)->name);
}

static int cmp_str(const void *key, const void *elem)
{
	return strcmp(key, *(const char *const *)elem);
}

static const char *type_name(enum sch_type t)
{
	switch (t) {
	case SCH_STRING:
		return "TYPE_STRING";
	case SCH_INT64:
		return "TYPE_INT64";
	case SCH_UINT64:
		return "TYPE_UINT64";
	case SCH_INT32:
		return "TYPE_INT32";
	case SCH_UINT32:
		return "TYPE_UINT32";
	case SCH_BOOL:
		return "TYPE_BOOL";
	case SCH_DOUBLE:
		return "TYPE_DOUBLE";
	case SCH_BYTES:
		return "TYPE_BYTES";
	case SCH_ENUM:
		return "TYPE_ENUM";
	default:
		return "TYPE_MESSAGE";
	}
}

static int bad_value(const char *path, const struct sch_field *f, const json_t *v, char *err,
		     size_t errlen)
{
	char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

	snprintf(err, errlen, "Invalid value at '%s' (%s), %s", path, type_name(f->type),
		 text ? text : "?");
	free(text);
	return -EINVAL;
}

/* Parses a whole decimal integer; 0 or -EINVAL. */
static int parse_int(const char *s, bool is_unsigned, int64_t lo, int64_t hi, json_int_t *out)
{
	char *end;

	if (!*s || (is_unsigned && *s == '-'))
		return -EINVAL;
	errno = 0;
	if (is_unsigned) {
		unsigned long long u = strtoull(s, &end, 10);

		if (errno || *end || u > (unsigned long long)hi)
			return -EINVAL;
		*out = (json_int_t)u;
	} else {
		long long v = strtoll(s, &end, 10);

		if (errno || *end || v < lo || v > hi)
			return -EINVAL;
		*out = (json_int_t)v;
	}
	return 0;
}

static int check_value(const struct sch_field *f, json_t *parent, const char *key, size_t index,
		       json_t *v, const char *path, char *err, size_t errlen);

static int check_message(const struct sch_message *m, json_t *obj, const char *path, char *err,
			 size_t errlen)
{
	const char *key;
	json_t *v;
	void *tmp;
	int ret;

	if (!json_is_object(obj)) {
		char *text = json_dumps(obj, JSON_ENCODE_ANY | JSON_COMPACT);

		snprintf(err, errlen, "Invalid value at '%s' (%s), %s", path, m->name,
			 text ? text : "?");
		free(text);
		return -EINVAL;
	}
	json_object_foreach_safe(obj, tmp, key, v)
	{
		const struct sch_field *f;
		char sub[512];

		snprintf(sub, sizeof(sub), m->is_map ? "%s[%s]" : "%s.%s", path, key);
		if (m->is_map) {
			f = &m->fields[0];
		} else {
			f = bsearch(key, m->fields, m->nfields, sizeof(m->fields[0]), cmp_field);
			if (!f) {
				snprintf(
				    err, errlen,
				    "Invalid JSON payload received. Unknown name \"%s\" at '%s': Cannot find field.",
				    key, path);
				return -EINVAL;
			}
		}
		if (json_is_null(v)) {
			json_object_del(obj, key);
			continue;
		}
		if (f->repeated) {
			size_t i;
			json_t *e;

			if (!json_is_array(v)) {
				snprintf(err, errlen,
					 "Invalid value at '%s' (%s), expected a list of values",
					 sub, type_name(f->type));
				return -EINVAL;
			}
			json_array_foreach(v, i, e)
			{
				char esub[540];

				snprintf(esub, sizeof(esub), "%s[%zu]", sub, i);
				ret = check_value(f, v, NULL, i, e, esub, err, errlen);
				if (ret < 0)
					return ret;
			}
			continue;
		}
		ret = check_value(f, obj, key, 0, v, sub, err, errlen);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Replaces the value at parent[key] or parent[index]. */
static void replace(json_t *parent, const char *key, size_t index, json_t *nv)
{
	if (key)
		json_object_set_new(parent, key, nv);
	else
		json_array_set_new(parent, index, nv);
}

static int check_value(const struct sch_field *f, json_t *parent, const char *key, size_t index,
		       json_t *v, const char *path, char *err, size_t errlen)
{
	json_int_t iv;
	char buf[32];

	switch ((enum sch_type)f->type) {
	case SCH_STRING:
		return json_is_string(v) ? 0 : bad_value(path, f, v, err, errlen);
	case SCH_BOOL:
		return json_is_boolean(v) ? 0 : bad_value(path, f, v, err, errlen);
	case SCH_DOUBLE:
		return json_is_number(v) ? 0 : bad_value(path, f, v, err, errlen);
	case SCH_ANY:
		return 0;
	case SCH_INT64:
	case SCH_UINT64:
		if (json_is_integer(v)) {
			if (f->type == SCH_UINT64 && json_integer_value(v) < 0)
				return bad_value(path, f, v, err, errlen);
			snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			replace(parent, key, index, json_string(buf));
			return 0;
		}
		if (json_is_string(v) && parse_int(json_string_value(v), f->type == SCH_UINT64,
						   INT64_MIN, INT64_MAX, &iv) == 0)
			return 0;
		return bad_value(path, f, v, err, errlen);
	case SCH_INT32:
	case SCH_UINT32: {
		bool u = f->type == SCH_UINT32;
		int64_t lo = u ? 0 : INT32_MIN, hi = u ? UINT32_MAX : INT32_MAX;

		if (json_is_integer(v)) {
			iv = json_integer_value(v);
			return iv >= lo && iv <= hi ? 0 : bad_value(path, f, v, err, errlen);
		}
		if (json_is_string(v) && parse_int(json_string_value(v), u, lo, hi, &iv) == 0) {
			replace(parent, key, index, json_integer(iv));
			return 0;
		}
		return bad_value(path, f, v, err, errlen);
	}
	case SCH_BYTES: {
		uint8_t *raw;
		size_t n;

		if (!json_is_string(v) ||
		    b64_decode(json_string_value(v), json_string_length(v), &raw, &n) < 0)
			return bad_value(path, f, v, err, errlen);
		free(raw);
		return 0;
	}
	case SCH_ENUM: {
		const struct sch_enum *en = &sch_enums[f->ref];

		if (json_is_string(v) && bsearch(json_string_value(v), en->values, en->n,
						 sizeof(en->values[0]), cmp_str))
			return 0;
		snprintf(err, errlen, "Invalid value at '%s' (%s), %s%s%s", path,
			 type_name(f->type), json_is_string(v) ? "\"" : "",
			 json_is_string(v) ? json_string_value(v) : "",
			 json_is_string(v) ? "\"" : "not a string");
		return -EINVAL;
	}
	case SCH_MESSAGE:
		return check_message(&sch_messages[f->ref], v, path, err, errlen);
	}
	return -EINVAL;
}

int sch_check(const struct sch_message *m, json_t *value, const char *path, char *err,
	      size_t errlen)
{
	return check_message(m, value, path, err, errlen);
}
