/* SPDX-License-Identifier: Apache-2.0 */
#include "json_ref.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_stream.h"

static size_t first_len(const char *p)
{
	const char *dot = strchr(p, '.');

	return dot ? (size_t)(dot - p) : strlen(p);
}

static const char *rest(const char *p)
{
	size_t n = first_len(p);

	return p[n] ? p + n + 1 : p + n;
}

json_t *json_ref_reduce(const json_t *v, const char *const *paths, size_t n)
{
	const char **sub;
	json_t *out, *val;
	const char *key;
	size_t i;

	for (i = 0; i < n; i++)
		if (!paths[i][0])
			return json_deep_copy(v);
	if (json_is_array(v)) {
		out = json_array();
		json_array_foreach(v, i, val)
		    json_array_append_new(out, json_ref_reduce(val, paths, n));
		return out;
	}
	if (!json_is_object(v))
		return json_deep_copy(v);
	out = json_object();
	sub = calloc(n + 1, sizeof(*sub));
	json_object_foreach((json_t *)v, key, val)
	{
		size_t m = 0;

		for (i = 0; i < n; i++) {
			size_t len = first_len(paths[i]);

			if ((len == 1 && paths[i][0] == '*') ||
			    (len == strlen(key) && !memcmp(paths[i], key, len)))
				sub[m++] = rest(paths[i]);
		}
		if (m)
			json_object_set_new(out, key, json_ref_reduce(val, sub, m));
	}
	free(sub);
	return out;
}

struct run {
	const char *const *fields;
	size_t n_fields;
	unsigned flags;
	json_t *items;
};

static int walk(struct run *r, const json_t *v, const char *path, json_t *keys, bool top)
{
	if (!top && json_is_null(v))
		return 0;
	if (!*path) {
		const json_t *e;
		size_t i;

		if (!json_is_array(v))
			return -1;
		json_array_foreach(v, i, e)
		{
			if ((r->flags & JSON_STREAM_OBJECT_ITEMS) && !json_is_object(e))
				return -1;
			json_array_append_new(
			    r->items,
			    json_pack("{s:O, s:I, s:o}", "keys", keys, "index", (json_int_t)i,
				      "item",
				      r->fields ? json_ref_reduce(e, r->fields, r->n_fields)
						: json_deep_copy(e)));
		}
		return 0;
	}
	if (!json_is_object(v))
		return -1;
	if (first_len(path) == 1 && path[0] == '*') {
		const char *key;
		json_t *val;

		json_object_foreach((json_t *)v, key, val)
		{
			json_t *k = json_copy(keys);
			int ret;

			json_array_append_new(k, json_string(key));
			ret = walk(r, val, rest(path), k, false);
			json_decref(k);
			if (ret < 0)
				return ret;
		}
		return 0;
	}
	{
		char key[256];
		size_t n = first_len(path);
		const json_t *val;

		if (n >= sizeof(key))
			return 0;
		memcpy(key, path, n);
		key[n] = '\0';
		val = json_object_get(v, key);
		return val ? walk(r, val, rest(path), keys, false) : 0;
	}
}

int json_ref_run(const json_t *doc, const char *item_path, const char *const *fields,
		 const char *const *extras, unsigned flags, json_t **items, json_t **extras_out)
{
	struct run r = {.fields = fields, .flags = flags, .items = json_array()};
	json_t *keys = json_array();
	size_t n_extras = 0;
	int ret;

	while (fields && fields[r.n_fields])
		r.n_fields++;
	while (extras && extras[n_extras])
		n_extras++;
	ret = walk(&r, doc, item_path, keys, true);
	json_decref(keys);
	*items = r.items;
	*extras_out = json_is_object(doc) ? json_ref_reduce(doc, extras, n_extras) : json_object();
	return ret;
}
