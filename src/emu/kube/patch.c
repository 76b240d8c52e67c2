/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The three patch formats of PATCH requests:
 *   application/merge-patch+json           RFC 7386
 *   application/json-patch+json            RFC 6902 (and RFC 6901 pointers)
 *   application/strategic-merge-patch+json Kubernetes' own (what kubectl sends by default):
 *     a merge patch where some lists merge by a key instead of being replaced, with the
 *     directives $patch (replace|delete|merge), $retainKeys, $deleteFromPrimitiveList/F and
 *     $setElementOrder/F. Merge keys come from the Go types' patchMergeKey/patchStrategy
 *     tags (k8s.io/api/core/v1/types.go); the ones of the kinds this cluster serves are
 *     in the table below, every other list is replaced, as for a type without the tags.
 * Results are new values; the inputs are never modified.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/kube/kube.h"

/* ---- RFC 7386 ---- */
json_t *kube_merge_patch(const json_t *target, const json_t *patch)
{
	const char *key;
	json_t *v, *out;

	if (!json_is_object(patch))
		return json_deep_copy(patch);
	out = json_is_object(target) ? json_deep_copy(target) : json_object();
	json_object_foreach((json_t *)patch, key, v)
	{
		if (json_is_null(v)) {
			json_object_del(out, key);
		} else {
			json_t *m = kube_merge_patch(json_object_get(out, key), v);
			json_object_set_new(out, key, m);
		}
	}
	return out;
}

/* ---- RFC 6902 ---- */
/* Splits an RFC 6901 pointer into unescaped tokens (an array of strings). */
static json_t *pointer_tokens(const char *ptr)
{
	json_t *toks = json_array();

	if (!ptr || (*ptr && *ptr != '/')) {
		json_decref(toks);
		return NULL;
	}
	while (*ptr == '/') {
		const char *end = strchr(ptr + 1, '/');
		size_t n = end ? (size_t)(end - ptr - 1) : strlen(ptr + 1);
		char *t = malloc(n + 1), *o = t;
		bool bad = false;

		if (!t) {
			json_decref(toks);
			return NULL;
		}
		for (size_t i = 0; i < n; i++) {
			char c = ptr[1 + i];
			if (c == '~') {
				char d = i + 1 < n ? ptr[2 + i] : '\0';
				if (d == '0')
					*o++ = '~';
				else if (d == '1')
					*o++ = '/';
				else
					bad = true;
				i++;
			} else {
				*o++ = c;
			}
		}
		*o = '\0';
		if (bad) {
			free(t);
			json_decref(toks);
			return NULL;
		}
		json_array_append_new(toks, json_string(t));
		free(t);
		ptr += n + 1;
	}
	return toks;
}

/* An array index token: digits without leading zeros. -1 if not one. */
static long array_index(const char *t)
{
	long v = 0;

	if (!t[0] || (t[0] == '0' && t[1]))
		return -1;
	for (const char *p = t; *p; p++) {
		if (*p < '0' || *p > '9' || v > 100000000)
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v;
}

/* The container addressed by all tokens but the last. */
static json_t *walk_parent(json_t *doc, const json_t *toks)
{
	size_t n = json_array_size(toks);
	json_t *cur = doc;

	for (size_t i = 0; i + 1 < n && cur; i++) {
		const char *t = json_string_value(json_array_get(toks, i));
		if (json_is_object(cur)) {
			cur = json_object_get(cur, t);
		} else if (json_is_array(cur)) {
			long idx = array_index(t);
			cur = idx < 0 ? NULL : json_array_get(cur, (size_t)idx);
		} else {
			cur = NULL;
		}
	}
	return cur;
}

static json_t *ptr_get(json_t *doc, const json_t *toks)
{
	size_t n = json_array_size(toks);
	json_t *parent;
	const char *last;

	if (n == 0)
		return doc;
	parent = walk_parent(doc, toks);
	last = json_string_value(json_array_get(toks, n - 1));
	if (json_is_object(parent))
		return json_object_get(parent, last);
	if (json_is_array(parent)) {
		long idx = array_index(last);
		return idx < 0 ? NULL : json_array_get(parent, (size_t)idx);
	}
	return NULL;
}

/* add: value is stolen. Replacing the root replaces *doc. */
static int ptr_add(json_t **doc, const json_t *toks, json_t *value)
{
	size_t n = json_array_size(toks);
	json_t *parent;
	const char *last;

	if (n == 0) {
		json_decref(*doc);
		*doc = value;
		return 0;
	}
	parent = walk_parent(*doc, toks);
	last = json_string_value(json_array_get(toks, n - 1));
	if (json_is_object(parent))
		return json_object_set_new(parent, last, value) ? -ENOMEM : 0;
	if (json_is_array(parent)) {
		long idx =
		    strcmp(last, "-") == 0 ? (long)json_array_size(parent) : array_index(last);
		if (idx < 0 || (size_t)idx > json_array_size(parent)) {
			json_decref(value);
			return -ERANGE;
		}
		return json_array_insert_new(parent, (size_t)idx, value) ? -ENOMEM : 0;
	}
	json_decref(value);
	return -ENOENT;
}

static int ptr_remove(json_t *doc, const json_t *toks)
{
	size_t n = json_array_size(toks);
	json_t *parent;
	const char *last;

	if (n == 0)
		return -EINVAL;
	parent = walk_parent(doc, toks);
	last = json_string_value(json_array_get(toks, n - 1));
	if (json_is_object(parent))
		return json_object_del(parent, last) ? -ENOENT : 0;
	if (json_is_array(parent)) {
		long idx = array_index(last);
		if (idx < 0 || (size_t)idx >= json_array_size(parent))
			return -ENOENT;
		return json_array_remove(parent, (size_t)idx) ? -ENOENT : 0;
	}
	return -ENOENT;
}

int kube_json_patch(const json_t *target, const json_t *ops, json_t **out, char *err, size_t errlen)
{
	json_t *doc, *op;
	size_t i;
	int ret = 0;

	*out = NULL;
	if (!json_is_array(ops)) {
		snprintf(err, errlen, "json patch must be an array of operations");
		return -EINVAL;
	}
	doc = json_deep_copy(target);
	json_array_foreach(ops, i, op)
	{
		const char *name = kj_str(op, "op"), *path = kj_str(op, "path");
		json_t *toks = pointer_tokens(path), *from_toks = NULL, *value, *cur;

		if (!name || !toks) {
			snprintf(err, errlen, "operation %zu: %s", i,
				 !name ? "missing op" : "invalid path");
			json_decref(toks);
			ret = -EINVAL;
			goto cleanup;
		}
		value = json_object_get(op, "value");
		if (!strcmp(name, "add") || !strcmp(name, "replace")) {
			if (!value) {
				snprintf(err, errlen, "operation %zu: missing value", i);
				ret = -EINVAL;
			} else if (!strcmp(name, "replace") && !ptr_get(doc, toks)) {
				snprintf(err, errlen,
					 "replace operation does not apply: doc is missing key: %s",
					 path);
				ret = -ENOENT;
			} else {
				if (!strcmp(name, "replace") && json_array_size(toks))
					ptr_remove(doc, toks);
				ret = ptr_add(&doc, toks, json_deep_copy(value));
				if (ret < 0)
					snprintf(
					    err, errlen,
					    "%s operation does not apply: doc is missing path: %s",
					    name, path);
			}
		} else if (!strcmp(name, "remove")) {
			ret = ptr_remove(doc, toks);
			if (ret < 0)
				snprintf(err, errlen,
					 "remove operation does not apply: doc is missing path: %s",
					 path);
		} else if (!strcmp(name, "move") || !strcmp(name, "copy")) {
			const char *from = kj_str(op, "from");
			from_toks = pointer_tokens(from);
			cur = from_toks ? ptr_get(doc, from_toks) : NULL;
			if (!cur) {
				snprintf(
				    err, errlen,
				    "%s operation does not apply: doc is missing from path: %s",
				    name, from ? from : "");
				ret = -ENOENT;
			} else if (!strcmp(name, "move") &&
				   strncmp(path, from, strlen(from)) == 0 &&
				   (path[strlen(from)] == '/' || path[strlen(from)] == '\0') &&
				   strcmp(path, from) != 0) {
				snprintf(err, errlen, "move operation: path %s is inside from %s",
					 path, from);
				ret = -EINVAL;
			} else {
				json_t *v = json_deep_copy(cur);
				if (!strcmp(name, "move"))
					ptr_remove(doc, from_toks);
				ret = ptr_add(&doc, toks, v);
				if (ret < 0)
					snprintf(
					    err, errlen,
					    "%s operation does not apply: doc is missing path: %s",
					    name, path);
			}
		} else if (!strcmp(name, "test")) {
			cur = ptr_get(doc, toks);
			if (!cur || !value || !json_equal(cur, value)) {
				snprintf(err, errlen, "testing value %s failed", path);
				ret = -EINVAL;
			}
		} else {
			snprintf(err, errlen, "Unexpected kind: %s", name);
			ret = -EINVAL;
		}
		json_decref(toks);
		json_decref(from_toks);
		if (ret < 0)
			goto cleanup;
	}
	*out = doc;
	return 0;
cleanup:
	json_decref(doc);
	return ret;
}

/* ---- strategic merge patch ---- */
#define PRIMITIVE_MERGE "" /* a list of scalars merged as a set */

/* The merge key of the list at path (".spec.template.spec.containers"), or NULL: replace. */
static const char *merge_key(const char *path)
{
	static const struct {
		const char *suffix;
		const char *key;
	} rules[] = {
	    {".metadata.finalizers", PRIMITIVE_MERGE},
	    {".metadata.ownerReferences", "uid"},
	    {".spec.podCIDRs", PRIMITIVE_MERGE},
	    {".status.addresses", "type"},
	    {".conditions", "type"},
	    {".containers", "name"},
	    {".initContainers", "name"},
	    {".ephemeralContainers", "name"},
	    {".containers.ports", "containerPort"},
	    {".initContainers.ports", "containerPort"},
	    {".env", "name"},
	    {".volumes", "name"},
	    {".volumeMounts", "mountPath"},
	    {".volumeDevices", "devicePath"},
	    {".imagePullSecrets", "name"},
	    {".hostAliases", "ip"},
	    {".topologySpreadConstraints", "topologyKey"},
	    {".resourceClaims", "name"},
	    {".schedulingGates", "name"},
	    {".status.podIPs", "ip"},
	    {".status.hostIPs", "ip"},
	};
	size_t n = strlen(path);

	if (!strcmp(path, ".spec.ports"))
		return "port"; /* Service */
	if (!strcmp(path, ".secrets"))
		return "name"; /* ServiceAccount */
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		size_t m = strlen(rules[i].suffix);
		if (n >= m && strcmp(path + n - m, rules[i].suffix) == 0)
			return rules[i].key;
	}
	return NULL;
}

static bool is_directive(const char *key)
{
	return key[0] == '$';
}

/* A copy of v without directive keys (for values that replace what was there). */
static json_t *clean(const json_t *v)
{
	const char *key;
	json_t *x, *out;
	size_t i;

	if (json_is_object(v)) {
		out = json_object();
		json_object_foreach((json_t *)v, key, x)
		{
			if (!is_directive(key))
				json_object_set_new(out, key, clean(x));
		}
		return out;
	}
	if (json_is_array(v)) {
		out = json_array();
		json_array_foreach(v, i, x)
		{
			if (json_is_object(x) && kj_str(x, "$patch"))
				continue;
			json_array_append_new(out, clean(x));
		}
		return out;
	}
	return json_deep_copy(v);
}

static json_t *smp_map(const json_t *orig, const json_t *patch, const char *path, char *err,
		       size_t errlen, bool *deleted);

static const json_t *find_by_key(const json_t *list, const char *key, const json_t *value,
				 size_t *at)
{
	json_t *x;
	size_t i;

	json_array_foreach(list, i, x)
	{
		if (json_is_object(x) && json_equal(json_object_get(x, key), value)) {
			*at = i;
			return x;
		}
	}
	return NULL;
}

static json_t *smp_list(const json_t *orig, const json_t *patch, const char *key, const char *path,
			char *err, size_t errlen)
{
	json_t *out, *x;
	size_t i;

	/* {"$patch": "replace"} in the list: the rest of the patch list is the new list. */
	json_array_foreach(patch, i, x)
	{
		if (json_is_object(x) && kj_str(x, "$patch") &&
		    !strcmp(kj_str(x, "$patch"), "replace"))
			return clean(patch);
	}
	if (!key[0]) {
		/* Primitive merge: a set union, original order first. */
		out = json_deep_copy(orig);
		json_array_foreach(patch, i, x)
		{
			bool found = false;
			json_t *y;
			size_t j;
			json_array_foreach(out, j, y) found |= json_equal(x, y);
			if (!found)
				json_array_append_new(out, json_deep_copy(x));
		}
		return out;
	}
	out = json_deep_copy(orig);
	json_array_foreach(patch, i, x)
	{
		const json_t *kv = json_object_get(x, key), *found;
		const char *directive = kj_str(x, "$patch");
		size_t at = 0;

		if (!json_is_object(x) || !kv) {
			if (json_is_object(x) && directive)
				continue;
			json_array_append_new(out, clean(x));
			continue;
		}
		found = find_by_key(out, key, kv, &at);
		if (directive && !strcmp(directive, "delete")) {
			/* Every element with that key goes. */
			while (found) {
				json_array_remove(out, at);
				found = find_by_key(out, key, kv, &at);
			}
			continue;
		}
		if (found) {
			bool del = false;
			json_t *m = smp_map(found, x, path, err, errlen, &del);
			if (!m && !del) {
				json_decref(out);
				return NULL;
			}
			if (del)
				json_array_remove(out, at);
			else
				json_array_set_new(out, at, m);
		} else {
			json_array_append_new(out, clean(x));
		}
	}
	return out;
}

static json_t *smp_map(const json_t *orig, const json_t *patch, const char *path, char *err,
		       size_t errlen, bool *deleted)
{
	const char *directive = kj_str(patch, "$patch"), *key;
	json_t *out, *v, *retain = json_object_get(patch, "$retainKeys");

	*deleted = false;
	if (directive) {
		if (!strcmp(directive, "delete")) {
			*deleted = true;
			return NULL;
		}
		if (!strcmp(directive, "replace"))
			return clean(patch);
		if (strcmp(directive, "merge") != 0) {
			snprintf(err, errlen, "unknown patch type: %s in map: %s", directive, path);
			return NULL;
		}
	}
	out = json_is_object(orig) ? json_deep_copy(orig) : json_object();
	json_object_foreach((json_t *)patch, key, v)
	{
		char sub[512];
		const json_t *ov;

		if (!strcmp(key, "$patch") || !strcmp(key, "$retainKeys") ||
		    !strncmp(key, "$setElementOrder/", 17))
			continue;
		if (!strncmp(key, "$deleteFromPrimitiveList/", 25)) {
			json_t *list = json_object_get(out, key + 25), *x;
			size_t i;
			json_array_foreach(v, i, x)
			{
				for (size_t j = json_array_size(list); j-- > 0;)
					if (json_equal(json_array_get(list, j), x))
						json_array_remove(list, j);
			}
			continue;
		}
		if (is_directive(key))
			continue;
		snprintf(sub, sizeof(sub), "%s.%s", path, key);
		ov = json_object_get(out, key);
		if (json_is_null(v)) {
			json_object_del(out, key);
		} else if (json_is_object(v)) {
			bool del = false;
			json_t *m =
			    smp_map(json_is_object(ov) ? ov : NULL, v, sub, err, errlen, &del);
			if (del)
				json_object_del(out, key);
			else if (!m)
				goto fail;
			else
				json_object_set_new(out, key, m);
		} else if (json_is_array(v)) {
			const char *mk = merge_key(sub);
			json_t *m;
			if (!mk || !json_is_array(ov))
				m = clean(v);
			else
				m = smp_list(ov, v, mk, sub, err, errlen);
			if (!m)
				goto fail;
			json_object_set_new(out, key, m);
		} else {
			json_object_set_new(out, key, json_deep_copy(v));
		}
	}
	if (json_is_array(retain)) {
		/* $retainKeys: keys not listed are cleared. */
		void *iter = json_object_iter(out);
		while (iter) {
			const char *k = json_object_iter_key(iter);
			bool keep = false;
			json_t *x;
			size_t i;
			json_array_foreach(retain, i, x) keep |=
			    json_is_string(x) && !strcmp(json_string_value(x), k);
			if (keep) {
				iter = json_object_iter_next(out, iter);
			} else {
				void *next = json_object_iter_next(out, iter);
				json_object_del(out, k);
				iter = next;
			}
		}
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

int kube_strategic_merge_patch(const json_t *target, const json_t *patch, json_t **out, char *err,
			       size_t errlen)
{
	bool deleted = false;

	*out = NULL;
	err[0] = '\0';
	if (!json_is_object(patch)) {
		snprintf(err, errlen, "a strategic merge patch must be a JSON object");
		return -EINVAL;
	}
	*out = smp_map(target, patch, "", err, errlen, &deleted);
	if (deleted) {
		snprintf(err, errlen, "a strategic merge patch may not delete the whole object");
		return -EINVAL;
	}
	return *out ? 0 : -EINVAL;
}
