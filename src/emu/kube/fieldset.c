/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Field sets and typed values for server-side apply, after kubernetes-sigs/
 * structured-merge-diff (v4-v6: fieldpath/, typed/compare.go, merge.go, remove.go,
 * tofieldset.go) with the schema of the served kinds from kube/types.c.
 *
 * A set is a tree of path elements, as metadata.managedFields' FieldsV1 writes it:
 *   "f:name"                 a field of a struct or a key of a map
 *   "k:{"name":"nginx"}"     an item of an associative list, by its key fields (sorted)
 *   "v:\"x\""                an item of a set (a list of scalars)
 *   "i:3"                    an item of a list by index (granular lists without keys)
 * Here each node is a JSON object holding its children by path element and "." when the path
 * itself is a member. FieldsV1 is the same tree with a leaf member written as {} and the
 * keys in structured-merge-diff's order (PathElement.Compare: fields, keys, values, indexes).
 *
 * Types: a struct has named fields (a field that has children is not itself a member unless
 * it is empty or null); a map[string]T has keys that are always members (labels, data); a
 * list is atomic (one leaf) unless +listType=map (items by key, with the schema's default
 * for an absent key field) or set; +structType=atomic and +mapType=atomic are leaves. A
 * value without a schema (custom resources, unknown fields) is "deduced": maps with every
 * key a member, lists atomic.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/kube/kube.h"

#define MAX_DEPTH 64

/* ---- type references ---- */
struct tref {
	int type;       /* kube_types index, -1: deduced (no schema) */
	unsigned flags; /* KF_LIST / KF_MAP and their semantics, for a container */
	const char *keys;
};

enum shape { SH_LEAF, SH_ASSOC, SH_SET, SH_STRUCT, SH_MAP, SH_DEDUCED };

static const struct tref deduced = {-1, 0, NULL};

static struct tref of_field(const struct kube_tfield *f)
{
	return (struct tref){
	    (int)f->type, f->flags & (KF_LIST | KF_MAP | KF_ASSOC | KF_SET | KF_ATOMIC), f->keys};
}

static struct tref elem_of(struct tref t)
{
	return (struct tref){t.type, 0, NULL};
}

static enum shape shape_of(struct tref t, const json_t *v)
{
	if (t.type < 0)
		return json_is_object(v) ? SH_DEDUCED : SH_LEAF;
	if (t.flags & KF_LIST) {
		if (v && !json_is_array(v) && !json_is_null(v))
			return SH_LEAF;
		return (t.flags & KF_ASSOC) ? SH_ASSOC : (t.flags & KF_SET) ? SH_SET : SH_LEAF;
	}
	if (t.flags & KF_MAP) {
		if ((t.flags & KF_ATOMIC) || (v && !json_is_object(v) && !json_is_null(v)))
			return SH_LEAF;
		return SH_MAP;
	}
	if (kube_types[t.type].kind == KT_RAWEXT)
		return json_is_object(v) ? SH_DEDUCED : SH_LEAF;
	if (kube_types[t.type].kind != KT_STRUCT || (kube_types[t.type].flags & KTF_ATOMIC))
		return SH_LEAF;
	if (v && !json_is_object(v) && !json_is_null(v))
		return SH_LEAF;
	return SH_STRUCT;
}

/* The type of key under a map-like value; *declared when it is a named struct field. */
static struct tref child_of(struct tref t, enum shape sh, const char *key, bool *declared)
{
	*declared = false;
	if (sh == SH_STRUCT) {
		const struct kube_tfield *f = kube_type_field((unsigned)t.type, key);
		if (f) {
			*declared = true;
			return of_field(f);
		}
		return deduced;
	}
	if (sh == SH_MAP)
		return elem_of(t);
	return deduced;
}

/* ---- path elements ---- */
struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 64;
		char *ns;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		ns = realloc(b->s, ncap);
		if (!ns) {
			b->oom = true;
			return;
		}
		b->s = ns;
		b->cap = ncap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* JSON as encoding/json (and jsoniter's standard-library mode) writes it: <, >, & escaped. */
static void go_json(struct sbuf *b, const json_t *v)
{
	char num[64];
	const char *key;
	json_t *x;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_STRING: {
		const unsigned char *s = (const unsigned char *)json_string_value(v);
		size_t n = json_string_length(v);
		sb_add(b, "\"", 1);
		for (i = 0; i < n; i++) {
			unsigned char c = s[i];
			if (c == '"' || c == '\\') {
				char esc[2] = {'\\', (char)c};
				sb_add(b, esc, 2);
			} else if (c == '\n') {
				sb_add(b, "\\n", 2);
			} else if (c == '\r') {
				sb_add(b, "\\r", 2);
			} else if (c == '\t') {
				sb_add(b, "\\t", 2);
			} else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
				snprintf(num, sizeof(num), "\\u%04x", c);
				sb_str(b, num);
			} else if (c == 0xe2 && i + 2 < n && s[i + 1] == 0x80 &&
				   (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
				sb_str(b, s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029");
				i += 2;
			} else {
				sb_add(b, (const char *)&s[i], 1);
			}
		}
		sb_add(b, "\"", 1);
		break;
	}
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		sb_str(b, num);
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		sb_str(b, num);
		break;
	case JSON_TRUE:
		sb_str(b, "true");
		break;
	case JSON_FALSE:
		sb_str(b, "false");
		break;
	case JSON_NULL:
		sb_str(b, "null");
		break;
	case JSON_ARRAY:
		sb_add(b, "[", 1);
		json_array_foreach(v, i, x)
		{
			if (i)
				sb_add(b, ",", 1);
			go_json(b, x);
		}
		sb_add(b, "]", 1);
		break;
	case JSON_OBJECT: {
		/* Go sorts map keys. */
		size_t n = json_object_size(v), k = 0;
		const char **keys = n ? malloc(n * sizeof(*keys)) : NULL;
		if (n && !keys) {
			b->oom = true;
			break;
		}
		json_object_foreach((json_t *)v, key, x) keys[k++] = key;
		for (k = 1; k < n; k++)
			for (size_t j = k; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
				const char *t = keys[j];
				keys[j] = keys[j - 1];
				keys[j - 1] = t;
			}
		sb_add(b, "{", 1);
		for (k = 0; k < n; k++) {
			json_t *s = json_string(keys[k]);
			if (k)
				sb_add(b, ",", 1);
			go_json(b, s);
			json_decref(s);
			sb_add(b, ":", 1);
			go_json(b, json_object_get(v, keys[k]));
		}
		sb_add(b, "}", 1);
		free(keys);
		break;
	}
	}
}

char *kube_go_json(const json_t *v)
{
	struct sbuf b = {0};

	go_json(&b, v);
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* The key of an associative list item ("k:{...}"), NULL with *err when it has none. */
static char *assoc_pe(struct tref list, const json_t *item, const char **err)
{
	json_t *key = json_object();
	const char *p = list.keys;
	struct sbuf b = {0};

	*err = NULL;
	if (!json_is_object(item)) {
		*err = "associative list with keys may not have non-map elements";
		json_decref(key);
		return NULL;
	}
	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char name[128];
		json_t *v;

		snprintf(name, sizeof(name), "%.*s", (int)(n < 127 ? n : 127), p);
		v = json_object_get(item, name);
		if (v) {
			json_object_set(key, name, v);
		} else {
			/* A key field with a schema default counts with its default (TCP). */
			const struct kube_tfield *f = kube_type_field((unsigned)list.type, name);
			json_t *def =
			    f && f->def ? json_loads(f->def, JSON_DECODE_ANY, NULL) : NULL;
			if (def)
				json_object_set_new(key, name, def);
		}
		p += n + (comma ? 1 : 0);
	}
	if (!json_object_size(key)) {
		*err = "associative list with keys has an element that omits all key fields";
		json_decref(key);
		return NULL;
	}
	sb_str(&b, "k:");
	go_json(&b, key);
	json_decref(key);
	if (b.oom) {
		free(b.s);
		*err = "out of memory";
		return NULL;
	}
	return b.s;
}

static char *set_pe(const json_t *item, const char **err)
{
	struct sbuf b = {0};

	*err = NULL;
	if (json_is_object(item) || json_is_array(item) || json_is_null(item)) {
		*err = "associative list without keys has an element that is not a scalar";
		return NULL;
	}
	sb_str(&b, "v:");
	go_json(&b, item);
	if (b.oom) {
		free(b.s);
		*err = "out of memory";
		return NULL;
	}
	return b.s;
}

static char *field_pe(const char *name)
{
	size_t n = strlen(name);
	char *s = malloc(n + 3);

	if (s) {
		memcpy(s, "f:", 2);
		memcpy(s + 2, name, n + 1);
	}
	return s;
}

static char *item_pe(struct tref list, enum shape sh, const json_t *item, const char **err)
{
	return sh == SH_ASSOC ? assoc_pe(list, item, err) : set_pe(item, err);
}

/* ---- sets ---- */
static json_t *node_child(json_t *node, const char *pe)
{
	json_t *c = json_object_get(node, pe);

	if (!c) {
		c = json_object();
		json_object_set_new(node, pe, c);
	}
	return c;
}

static void node_member(json_t *node)
{
	if (!json_object_get(node, "."))
		json_object_set_new(node, ".", json_object());
}

/*
 * The walk's current path, and for the sets being filled the nodes of its prefix already
 * made (a walk inserts many paths sharing their beginning: each costs its new part only).
 */
#define PATH_CACHES 4

struct path {
	const char *pe[MAX_DEPTH];
	int n;
	struct {
		json_t *set;
		json_t *node[MAX_DEPTH + 1];
		int valid; /* node[0..valid] are the nodes of pe[0..valid) */
	} cache[PATH_CACHES];
	int next_cache;
};

static void path_pop(struct path *p)
{
	p->n--;
	for (int i = 0; i < PATH_CACHES; i++)
		if (p->cache[i].valid > p->n)
			p->cache[i].valid = p->n;
}

static void set_insert(json_t *set, struct path *p)
{
	int c;
	json_t *node;

	if (!set || p->n == 0)
		return;
	for (c = 0; c < PATH_CACHES && p->cache[c].set != set; c++)
		;
	if (c == PATH_CACHES) {
		c = p->next_cache++ % PATH_CACHES;
		p->cache[c].set = set;
		p->cache[c].node[0] = set;
		p->cache[c].valid = 0;
	}
	node = p->cache[c].node[p->cache[c].valid];
	for (int i = p->cache[c].valid; i < p->n; i++) {
		node = node_child(node, p->pe[i]);
		p->cache[c].node[i + 1] = node;
	}
	p->cache[c].valid = p->n;
	node_member(node);
}

bool kube_fset_empty(const json_t *s)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)s, key, v)
	{
		if (!strcmp(key, ".") || !kube_fset_empty(v))
			return false;
	}
	return true;
}

void kube_fset_union(json_t *dst, const json_t *src)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)src, key, v)
	{
		if (!strcmp(key, "."))
			node_member(dst);
		else if (!kube_fset_empty(v))
			kube_fset_union(node_child(dst, key), v);
	}
}

/* a without the members of b (b NULL: a copy), empty nodes pruned. */
json_t *kube_fset_difference(const json_t *a, const json_t *b)
{
	json_t *out = json_object(), *v;
	const char *key;

	json_object_foreach((json_t *)a, key, v)
	{
		if (!strcmp(key, ".")) {
			if (!b || !json_object_get(b, "."))
				node_member(out);
			continue;
		}
		json_t *d = kube_fset_difference(v, b ? json_object_get(b, key) : NULL);
		if (kube_fset_empty(d))
			json_decref(d);
		else
			json_object_set_new(out, key, d);
	}
	return out;
}

/* a without the members of b, in place (b's structure walked, nothing copied). */
void kube_fset_subtract(json_t *a, const json_t *b)
{
	const char *key;
	json_t *v;
	void *it;

	json_object_foreach((json_t *)b, key, v)
	{
		json_t *av;
		if (!strcmp(key, ".")) {
			json_object_del(a, ".");
			continue;
		}
		av = json_object_get(a, key);
		if (av)
			kube_fset_subtract(av, v);
	}
	/* prune the children left empty */
	it = json_object_iter(a);
	while (it) {
		void *next = json_object_iter_next(a, it);
		if (strcmp(json_object_iter_key(it), ".") &&
		    kube_fset_empty(json_object_iter_value(it)))
			json_object_del(a, json_object_iter_key(it));
		it = next;
	}
}

json_t *kube_fset_intersection(const json_t *a, const json_t *b)
{
	json_t *out = json_object(), *v;
	const char *key;

	if (!b)
		return out;
	json_object_foreach((json_t *)a, key, v)
	{
		json_t *bv = json_object_get(b, key);
		if (!bv)
			continue;
		if (!strcmp(key, ".")) {
			node_member(out);
			continue;
		}
		json_t *d = kube_fset_intersection(v, bv);
		if (kube_fset_empty(d))
			json_decref(d);
		else
			json_object_set_new(out, key, d);
	}
	return out;
}

/* EnsureNamedFieldsAreMembers: a struct field with members under it is a member too. */
static void named_members(json_t *s, struct tref t, int depth)
{
	const char *key;
	json_t *v;
	enum shape sh = shape_of(t, NULL);

	if (depth > MAX_DEPTH)
		return;
	json_object_foreach(s, key, v)
	{
		struct tref ct = deduced;
		bool declared = false;
		if (!strcmp(key, "."))
			continue;
		if (!strncmp(key, "f:", 2)) {
			ct = child_of(t, sh, key + 2, &declared);
			if (declared && sh == SH_STRUCT && !kube_fset_empty(v))
				node_member(v);
		} else if (sh == SH_ASSOC || sh == SH_SET) {
			ct = elem_of(t);
		}
		named_members(v, ct, depth + 1);
	}
}

/* ---- path element order (fieldpath.PathElement.Compare, value.Compare) ---- */
static int type_rank(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_INTEGER:
	case JSON_REAL:
		return 0;
	case JSON_STRING:
		return 1;
	case JSON_TRUE:
	case JSON_FALSE:
		return 2;
	case JSON_ARRAY:
		return 3;
	case JSON_OBJECT:
		return 4;
	default:
		return 5; /* null sorts last */
	}
}

static int value_cmp(const json_t *a, const json_t *b)
{
	int ra = type_rank(a), rb = type_rank(b);

	if (ra != rb)
		return ra < rb ? -1 : 1;
	switch (ra) {
	case 0: {
		double x = json_number_value(a), y = json_number_value(b);
		if (json_is_integer(a) && json_is_integer(b)) {
			json_int_t i = json_integer_value(a), j = json_integer_value(b);
			return i < j ? -1 : i > j;
		}
		return x < y ? -1 : x > y;
	}
	case 1:
		return strcmp(json_string_value(a), json_string_value(b));
	case 2:
		return json_is_true(a) - json_is_true(b);
	case 3: {
		size_t n = json_array_size(a), m = json_array_size(b);
		for (size_t i = 0; i < n && i < m; i++) {
			int c = value_cmp(json_array_get(a, i), json_array_get(b, i));
			if (c)
				return c;
		}
		return n < m ? -1 : n > m;
	}
	default:
		return 0;
	}
}

static int pe_rank(const char *pe)
{
	switch (pe[0]) {
	case 'f':
		return 0;
	case 'k':
		return 1;
	case 'v':
		return 2;
	default:
		return 3;
	}
}

/* value.FieldList.Compare of two key objects (fields sorted by name). */
static int key_cmp(const json_t *a, const json_t *b)
{
	const char *ka, *kb;
	void *ia = json_object_iter((json_t *)a), *ib = json_object_iter((json_t *)b);

	while (ia && ib) {
		int c;
		ka = json_object_iter_key(ia);
		kb = json_object_iter_key(ib);
		c = strcmp(ka, kb);
		if (c)
			return c < 0 ? -1 : 1;
		c = value_cmp(json_object_iter_value(ia), json_object_iter_value(ib));
		if (c)
			return c;
		ia = json_object_iter_next((json_t *)a, ia);
		ib = json_object_iter_next((json_t *)b, ib);
	}
	return ia ? 1 : ib ? -1 : 0;
}

static int pe_cmp(const char *a, const char *b)
{
	int ra = pe_rank(a), rb = pe_rank(b), c = 0;
	json_t *x, *y;

	if (ra != rb)
		return ra < rb ? -1 : 1;
	if (ra == 0)
		return strcmp(a + 2, b + 2);
	if (ra == 3) {
		long i = strtol(a + 2, NULL, 10), j = strtol(b + 2, NULL, 10);
		return i < j ? -1 : i > j;
	}
	x = json_loads(a + 2, JSON_DECODE_ANY, NULL);
	y = json_loads(b + 2, JSON_DECODE_ANY, NULL);
	if (x && y)
		c = ra == 1 ? key_cmp(x, y) : value_cmp(x, y);
	else
		c = strcmp(a, b);
	json_decref(x);
	json_decref(y);
	return c;
}

static int pe_qsort(const void *a, const void *b)
{
	return pe_cmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The {} of a leaf member: one shared, never modified object (stored objects are immutable;
 * a Node's managedFields hold a hundred of them).
 */
static json_t *empty_leaf(void)
{
	static json_t *leaf;

	if (!leaf)
		leaf = json_object();
	return leaf;
}

/* Internal set -> FieldsV1 JSON (sorted, leaf members as {}). */
static json_t *to_fields(const json_t *s)
{
	size_t n = json_object_size(s), k = 0;
	const char **keys = n ? malloc(n * sizeof(*keys)) : NULL;
	const char *key;
	json_t *v, *out = json_object();

	if (n && !keys)
		return out;
	json_object_foreach((json_t *)s, key, v)
	{
		if (strcmp(key, "."))
			keys[k++] = key;
	}
	qsort(keys, k, sizeof(*keys), pe_qsort);
	if (json_object_get(s, ".") && k)
		json_object_set_new(out, ".", json_object());
	for (size_t i = 0; i < k; i++) {
		const json_t *c = json_object_get(s, keys[i]);
		bool member = json_object_get(c, ".") != NULL;
		if (member && json_object_size(c) == 1)
			json_object_set(out, keys[i], empty_leaf());
		else
			json_object_set_new(out, keys[i], to_fields(c));
	}
	free(keys);
	return out;
}

json_t *kube_fset_to_fields(const json_t *s)
{
	return to_fields(s);
}

static bool valid_pe(const char *pe)
{
	json_t *v;
	bool ok;

	if (strlen(pe) < 2 || pe[1] != ':')
		return false;
	switch (pe[0]) {
	case 'f':
		return true;
	case 'i':
		for (const char *p = pe + 2; *p; p++)
			if (*p < '0' || *p > '9')
				return false;
		return pe[2] != '\0';
	case 'k':
	case 'v':
		v = json_loads(pe + 2, JSON_DECODE_ANY, NULL);
		ok = v && (pe[0] == 'v' || (json_is_object(v) && json_object_size(v)));
		json_decref(v);
		return ok;
	default:
		return false;
	}
}

static json_t *from_fields(const json_t *f, int depth)
{
	json_t *out, *v;
	const char *key;

	if (!json_is_object(f) || depth > MAX_DEPTH)
		return NULL;
	out = json_object();
	json_object_foreach((json_t *)f, key, v)
	{
		json_t *c;
		if (!strcmp(key, ".")) {
			if (depth)
				node_member(out);
			continue;
		}
		if (!valid_pe(key)) {
			json_decref(out);
			return NULL;
		}
		if (json_is_object(v) && json_object_size(v) == 0) {
			c = json_object();
			node_member(c);
		} else {
			c = from_fields(v, depth + 1);
			if (!c) {
				json_decref(out);
				return NULL;
			}
		}
		json_object_set_new(out, key, c);
	}
	return out;
}

json_t *kube_fset_from_fields(const json_t *fields)
{
	return from_fields(fields, 0);
}

/* ---- human paths (fieldpath.Path.String) for conflicts ---- */
static void go_quote_value(struct sbuf *b, const json_t *v)
{
	if (json_is_string(v)) {
		/* %q: Go's strconv.Quote; kubectl prints it as is. */
		const unsigned char *s = (const unsigned char *)json_string_value(v);
		char esc[8];
		sb_add(b, "\"", 1);
		for (size_t i = 0; i < json_string_length(v); i++) {
			if (s[i] == '"' || s[i] == '\\') {
				esc[0] = '\\';
				esc[1] = (char)s[i];
				sb_add(b, esc, 2);
			} else if (s[i] < 0x20 || s[i] == 0x7f) {
				snprintf(esc, sizeof(esc), "\\x%02x", s[i]);
				sb_str(b, esc);
			} else {
				sb_add(b, (const char *)&s[i], 1);
			}
		}
		sb_add(b, "\"", 1);
	} else {
		go_json(b, v);
	}
}

static void pe_string(struct sbuf *b, const char *pe)
{
	json_t *v;
	const char *key;
	json_t *x;
	bool first = true;

	switch (pe[0]) {
	case 'f':
		sb_add(b, ".", 1);
		sb_str(b, pe + 2);
		return;
	case 'i':
		sb_add(b, "[", 1);
		sb_str(b, pe + 2);
		sb_add(b, "]", 1);
		return;
	default:
		break;
	}
	v = json_loads(pe + 2, JSON_DECODE_ANY, NULL);
	sb_add(b, "[", 1);
	if (pe[0] == 'v') {
		sb_add(b, "=", 1);
		if (v)
			go_quote_value(b, v);
	} else {
		json_object_foreach(v, key, x)
		{
			if (!first)
				sb_add(b, ",", 1);
			first = false;
			sb_str(b, key);
			sb_add(b, "=", 1);
			go_quote_value(b, x);
		}
	}
	sb_add(b, "]", 1);
	json_decref(v);
}

/* Every member path of s, depth first (members of a node before its children), as strings. */
static void paths_of(const json_t *s, struct sbuf *prefix, json_t *out)
{
	size_t n = json_object_size(s), k = 0, len = prefix->len;
	const char **keys = n ? malloc(n * sizeof(*keys)) : NULL;
	const char *key;
	json_t *v;

	if (n && !keys)
		return;
	json_object_foreach((json_t *)s, key, v)
	{
		if (strcmp(key, "."))
			keys[k++] = key;
	}
	qsort(keys, k, sizeof(*keys), pe_qsort);
	/* Set.Iterate: this level's members first, then the children. */
	for (size_t i = 0; i < k; i++) {
		if (!json_object_get(json_object_get(s, keys[i]), "."))
			continue;
		pe_string(prefix, keys[i]);
		json_array_append_new(out, json_string(prefix->s ? prefix->s : ""));
		prefix->len = len;
		if (prefix->s)
			prefix->s[len] = '\0';
	}
	for (size_t i = 0; i < k; i++) {
		const json_t *c = json_object_get(s, keys[i]);
		if (json_object_size(c) <= (json_object_get(c, ".") ? 1u : 0u))
			continue;
		pe_string(prefix, keys[i]);
		paths_of(c, prefix, out);
		prefix->len = len;
		if (prefix->s)
			prefix->s[len] = '\0';
	}
	free(keys);
}

json_t *kube_fset_paths(const json_t *s)
{
	struct sbuf b = {0};
	json_t *out = json_array();

	sb_str(&b, "");
	paths_of(s, &b, out);
	free(b.s);
	return out;
}

/* ---- the typed walkers ---- */
struct walk {
	struct path path;
	const char *err; /* first schema error */
	char errbuf[256];
};

static bool descend(struct walk *w, char *pe)
{
	if (!pe || w->path.n >= MAX_DEPTH) {
		free(pe);
		if (!w->err)
			w->err = pe ? "out of memory" : "object nested too deeply";
		return false;
	}
	w->path.pe[w->path.n++] = pe;
	return true;
}

static void ascend(struct walk *w)
{
	free((char *)w->path.pe[w->path.n - 1]);
	path_pop(&w->path);
}

static void path_error(struct walk *w, const char *msg)
{
	struct sbuf b = {0};

	if (w->err)
		return;
	for (int i = 0; i < w->path.n; i++)
		pe_string(&b, w->path.pe[i]);
	snprintf(w->errbuf, sizeof(w->errbuf), "%s: %s", b.s ? b.s : "", msg);
	free(b.s);
	w->err = w->errbuf;
}

/* ToFieldSet (typed/tofieldset.go). */
static void to_set(struct walk *w, const json_t *v, struct tref t, json_t *set)
{
	enum shape sh = shape_of(t, v);
	const char *key, *err;
	json_t *x, *seen;
	size_t i;

	switch (sh) {
	case SH_LEAF:
		set_insert(set, &w->path);
		return;
	case SH_ASSOC:
	case SH_SET:
		if (!json_is_array(v))
			return;
		seen = json_object();
		json_array_foreach(v, i, x)
		{
			char *pe = item_pe(t, sh, x, &err);
			if (!pe) {
				path_error(w, err);
				continue;
			}
			json_object_set_new(
			    seen, pe,
			    json_integer(json_integer_value(json_object_get(seen, pe)) + 1));
			free(pe);
		}
		json_array_foreach(v, i, x)
		{
			char *pe = item_pe(t, sh, x, &err);
			json_int_t count;
			if (!pe)
				continue;
			count = json_integer_value(json_object_get(seen, pe));
			if (count < 0) {
				free(pe);
				continue; /* a duplicate already recorded */
			}
			if (count > 1)
				json_object_set_new(seen, pe, json_integer(-1));
			if (!descend(w, pe))
				continue;
			if (count == 1)
				to_set(w, x, elem_of(t), set);
			set_insert(set, &w->path); /* items are members (duplicates only that) */
			ascend(w);
		}
		json_decref(seen);
		return;
	default:
		if (!json_is_object(v))
			return;
		json_object_foreach((json_t *)v, key, x)
		{
			bool declared;
			struct tref ct = child_of(t, sh, key, &declared);
			if (!descend(w, field_pe(key)))
				continue;
			to_set(w, x, ct, set);
			if (json_is_null(x) || (json_is_object(x) && !json_object_size(x)) ||
			    !declared)
				set_insert(set, &w->path);
			ascend(w);
		}
		return;
	}
}

json_t *kube_fset_of(const json_t *obj, int type, const char **err)
{
	struct walk w = {0};
	json_t *set = json_object();
	struct tref t = {type, 0, NULL};

	to_set(&w, obj, t, set);
	*err = w.err;
	return set;
}

/* Compare (typed/compare.go): fields added, modified and removed from lhs to rhs. */
struct cmp {
	json_t *added, *modified, *removed;
};

static void compare(struct walk *w, const json_t *l, const json_t *r, struct tref t, struct cmp *c);

static bool empty_value(const json_t *v)
{
	return !v || json_is_null(v) || (json_is_array(v) && !json_array_size(v)) ||
	       (json_is_object(v) && !json_object_size(v));
}

static void cmp_leaf(struct walk *w, const json_t *l, const json_t *r, struct cmp *c)
{
	if (!l)
		set_insert(c->added, &w->path);
	else if (!r)
		set_insert(c->removed, &w->path);
	else if (!json_equal((json_t *)l, (json_t *)r))
		set_insert(c->modified, &w->path);
}

static void cmp_list(struct walk *w, const json_t *l, const json_t *r, struct tref t, enum shape sh,
		     struct cmp *c)
{
	json_t *lv = json_object(), *rv = json_object(), *order = json_array(), *x;
	const char *err;
	size_t i;

	/* Items by path element (a list of values when duplicated). */
	for (int side = 0; side < 2; side++) {
		const json_t *list = side ? r : l;
		json_t *by = side ? rv : lv;
		json_array_foreach(list, i, x)
		{
			char *pe = item_pe(t, sh, x, &err);
			json_t *have;
			if (!pe) {
				path_error(w, err);
				continue;
			}
			have = json_object_get(by, pe);
			if (!have) {
				have = json_array();
				json_object_set_new(by, pe, have);
				if (!side || !json_object_get(lv, pe))
					json_array_append_new(order, json_string(pe));
			}
			json_array_append(have, x);
			free(pe);
		}
	}
	json_array_foreach(order, i, x)
	{
		const char *pe = json_string_value(x);
		json_t *ll = json_object_get(lv, pe), *rl = json_object_get(rv, pe);
		size_t ln = json_array_size(ll), rn = json_array_size(rl);

		if (!descend(w, strdup(pe)))
			continue;
		if (ln <= 1 && rn <= 1) {
			compare(w, json_array_get(ll, 0), json_array_get(rl, 0), elem_of(t), c);
		} else if (ln >= 2 && rn >= 2) {
			if (!json_equal(ll, rl))
				set_insert(c->modified, &w->path);
		} else if (ln >= 2) {
			if (rn)
				compare(w, NULL, json_array_get(rl, 0), elem_of(t), c);
			set_insert(c->removed, &w->path);
		} else {
			if (ln)
				compare(w, json_array_get(ll, 0), NULL, elem_of(t), c);
			set_insert(c->added, &w->path);
		}
		ascend(w);
	}
	json_decref(lv);
	json_decref(rv);
	json_decref(order);
}

static void compare(struct walk *w, const json_t *l, const json_t *r, struct tref t, struct cmp *c)
{
	const json_t *any = r ? r : l;
	enum shape sh = shape_of(t, any);
	const char *key;
	json_t *x;

	/* Equal values record nothing below them (the common case of an update's walk). */
	if (l && r && json_equal((json_t *)l, (json_t *)r))
		return;
	/* Values of different shapes (a map replaced by a scalar) compare as leaves. */
	if (l && r && shape_of(t, l) != shape_of(t, r))
		sh = SH_LEAF;
	if (sh == SH_LEAF || (empty_value(l) && empty_value(r))) {
		cmp_leaf(w, l, r, c);
		return;
	}
	if (sh == SH_ASSOC || sh == SH_SET) {
		cmp_list(w, json_is_array(l) ? l : NULL, json_is_array(r) ? r : NULL, t, sh, c);
	} else {
		/* maps and structs: every key of either side */
		json_object_foreach((json_t *)(l && json_is_object(l) ? l : NULL), key, x)
		{
			bool declared;
			struct tref ct = child_of(t, sh, key, &declared);
			const json_t *rx = r && json_is_object(r) ? json_object_get(r, key) : NULL;
			if (!descend(w, field_pe(key)))
				continue;
			compare(w, x, rx, ct, c);
			ascend(w);
		}
		json_object_foreach((json_t *)(r && json_is_object(r) ? r : NULL), key, x)
		{
			bool declared;
			struct tref ct;
			if (l && json_is_object(l) && json_object_get(l, key))
				continue;
			ct = child_of(t, sh, key, &declared);
			if (!descend(w, field_pe(key)))
				continue;
			compare(w, NULL, x, ct, c);
			ascend(w);
		}
	}
	/* a container that appears or disappears is itself added or removed */
	if (!l)
		set_insert(c->added, &w->path);
	else if (!r)
		set_insert(c->removed, &w->path);
}

int kube_fset_compare(const json_t *lhs, const json_t *rhs, int type, json_t **added,
		      json_t **modified, json_t **removed, const char **err)
{
	struct walk w = {0};
	struct cmp c = {json_object(), json_object(), json_object()};
	struct tref t = {type, 0, NULL};

	compare(&w, lhs, rhs, t, &c);
	*added = c.added;
	*modified = c.modified;
	*removed = c.removed;
	*err = w.err;
	return w.err ? -EINVAL : 0;
}

/* Merge (typed/merge.go): rhs applied onto lhs; associative lists merged by key in the
 * walk order structured-merge-diff uses. NULL: no value. */
static json_t *merge(struct walk *w, const json_t *l, const json_t *r, struct tref t);

static json_t *merge_list(struct walk *w, const json_t *l, const json_t *r, struct tref t,
			  enum shape sh)
{
	size_t ln = json_array_size(l), rn = json_array_size(r), li = 0, ri = 0, si = 0;
	char **lpe = calloc(ln + 1, sizeof(*lpe)), **rpe = calloc(rn + 1, sizeof(*rpe));
	json_t *lobs = json_object(), *robs = json_object(), *merged = json_object();
	json_t *shared = json_array(), *out = json_array();
	const char *err, *next = NULL;

	if (!lpe || !rpe)
		goto cleanup;
	for (size_t i = 0; i < rn; i++) {
		rpe[i] = item_pe(t, sh, json_array_get(r, i), &err);
		if (!rpe[i]) {
			path_error(w, err);
			goto cleanup;
		}
		if (json_object_get(robs, rpe[i])) {
			path_error(w, "duplicate entries for key");
			goto cleanup;
		}
		json_object_set(robs, rpe[i], json_array_get(r, i));
	}
	for (size_t i = 0; i < ln; i++) {
		lpe[i] = item_pe(t, sh, json_array_get(l, i), &err);
		if (!lpe[i]) {
			path_error(w, err);
			goto cleanup;
		}
		/* duplicated live items are not merged with the new value */
		json_object_set(lobs, lpe[i],
				json_object_get(lobs, lpe[i]) ? json_null() : json_array_get(l, i));
	}
	for (size_t i = 0; i < rn; i++)
		if (json_object_get(lobs, rpe[i]))
			json_array_append_new(shared, json_string(rpe[i]));
	next = json_string_value(json_array_get(shared, si++));
	while (li < ln || ri < rn) {
		if (li < ln && ri < rn) {
			if (!strcmp(lpe[li], rpe[ri])) {
				json_t *lc = json_object_get(lobs, lpe[li]), *m;
				json_object_set_new(merged, lpe[li], json_true());
				if (descend(w, strdup(lpe[li]))) {
					m = merge(w, json_is_null(lc) ? NULL : lc,
						  json_object_get(robs, rpe[ri]), elem_of(t));
					ascend(w);
					if (m)
						json_array_append_new(out, m);
				}
				li++;
				ri++;
				next = json_string_value(json_array_get(shared, si++));
				continue;
			}
			if (json_object_get(robs, lpe[li]) && next && strcmp(next, lpe[li])) {
				li++; /* shared, but not the one wanted now */
				continue;
			}
		}
		if (li < ln) {
			if (!json_object_get(robs, lpe[li])) {
				if (descend(w, strdup(lpe[li]))) {
					json_t *m =
					    merge(w, json_array_get(l, li), NULL, elem_of(t));
					ascend(w);
					if (m)
						json_array_append_new(out, m);
				}
				li++;
				continue;
			} else if (json_object_get(merged, lpe[li])) {
				li++;
			}
		}
		if (ri < rn) {
			json_t *lc = json_object_get(lobs, rpe[ri]);
			json_object_set_new(merged, rpe[ri], json_true());
			if (descend(w, strdup(rpe[ri]))) {
				json_t *m = merge(w, json_is_null(lc) ? NULL : lc,
						  json_array_get(r, ri), elem_of(t));
				ascend(w);
				if (m)
					json_array_append_new(out, m);
			}
			if (next && !strcmp(next, rpe[ri]))
				next = json_string_value(json_array_get(shared, si++));
			ri++;
		}
	}
cleanup:
	for (size_t i = 0; lpe && i < ln; i++)
		free(lpe[i]);
	for (size_t i = 0; rpe && i < rn; i++)
		free(rpe[i]);
	free(lpe);
	free(rpe);
	json_decref(lobs);
	json_decref(robs);
	json_decref(merged);
	json_decref(shared);
	if (!json_array_size(out)) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* Keys in the order encoding/json writes them: struct fields in declaration order, map keys
 * sorted, anything else in the order seen. */
static void ordered_keys(struct tref t, enum shape sh, const json_t *a, const json_t *b,
			 json_t *out_keys)
{
	const char *key;
	json_t *x, *seen = json_object();

	if (sh == SH_STRUCT) {
		const struct kube_type *ty = &kube_types[t.type];
		/* declaration order, inline fields expanded */
		const struct kube_type *stack[8];
		unsigned idx[8];
		int sp = 0;
		stack[0] = ty;
		idx[0] = 0;
		while (sp >= 0) {
			const struct kube_type *cur = stack[sp];
			if (idx[sp] >= cur->nfields) {
				sp--;
				continue;
			}
			const struct kube_tfield *f = &cur->fields[idx[sp]++];
			if ((f->flags & KF_INLINE) && sp < 7) {
				stack[++sp] = &kube_types[f->type];
				idx[sp] = 0;
				continue;
			}
			if ((json_object_get(a, f->name) || json_object_get(b, f->name)) &&
			    !json_object_get(seen, f->name)) {
				json_array_append_new(out_keys, json_string(f->name));
				json_object_set_new(seen, f->name, json_true());
			}
		}
	}
	for (int side = 0; side < 2; side++) {
		json_object_foreach((json_t *)(side ? b : a), key, x)
		{
			if (!json_object_get(seen, key)) {
				json_array_append_new(out_keys, json_string(key));
				json_object_set_new(seen, key, json_true());
			}
		}
	}
	if (sh == SH_MAP) {
		size_t n = json_array_size(out_keys);
		for (size_t i = 1; i < n; i++)
			for (size_t j = i;
			     j > 0 && strcmp(json_string_value(json_array_get(out_keys, j - 1)),
					     json_string_value(json_array_get(out_keys, j))) > 0;
			     j--) {
				json_t *tmp = json_incref(json_array_get(out_keys, j));
				json_array_set(out_keys, j, json_array_get(out_keys, j - 1));
				json_array_set_new(out_keys, j - 1, tmp);
			}
	}
	json_decref(seen);
}

static json_t *merge(struct walk *w, const json_t *l, const json_t *r, struct tref t)
{
	const json_t *any = r ? r : l;
	enum shape sh = shape_of(t, any);
	json_t *keys, *out, *x;
	size_t i;

	if (l && r && shape_of(t, l) != shape_of(t, r))
		sh = SH_LEAF;
	if (sh == SH_LEAF || (empty_value(l) && empty_value(r)))
		return json_deep_copy(r ? r : l); /* keep the right-hand side */
	if (sh == SH_ASSOC || sh == SH_SET)
		return merge_list(w, json_is_array(l) ? l : NULL, json_is_array(r) ? r : NULL, t,
				  sh);
	keys = json_array();
	ordered_keys(t, sh, json_is_object(l) ? l : NULL, json_is_object(r) ? r : NULL, keys);
	out = json_object();
	json_array_foreach(keys, i, x)
	{
		const char *key = json_string_value(x);
		bool declared;
		struct tref ct = child_of(t, sh, key, &declared);
		const json_t *lx = json_is_object(l) ? json_object_get(l, key) : NULL;
		const json_t *rx = json_is_object(r) ? json_object_get(r, key) : NULL;
		json_t *m;
		if (!descend(w, field_pe(key)))
			continue;
		m = merge(w, lx, rx, ct);
		ascend(w);
		if (m)
			json_object_set_new(out, key, m);
	}
	json_decref(keys);
	if (!json_object_size(out)) {
		json_decref(out);
		return NULL;
	}
	return out;
}

json_t *kube_fset_merge(const json_t *lhs, const json_t *rhs, int type, const char **err)
{
	struct walk w = {0};
	struct tref t = {type, 0, NULL};
	json_t *out = merge(&w, lhs, rhs, t);

	*err = w.err;
	if (w.err) {
		json_decref(out);
		return NULL;
	}
	return out ? out : json_object();
}

/* RemoveItems (typed/remove.go): v without the members of set. NULL: nothing left. */
static json_t *remove_items(const json_t *v, const json_t *set, struct tref t, int depth)
{
	enum shape sh = shape_of(t, v);
	const char *key, *err;
	json_t *out, *x;
	size_t i;

	if (depth > MAX_DEPTH || sh == SH_LEAF || empty_value(v))
		return json_deep_copy(v);
	if (sh == SH_ASSOC || sh == SH_SET) {
		out = json_array();
		json_array_foreach(v, i, x)
		{
			char *pe = item_pe(t, sh, x, &err);
			json_t *sub = pe ? json_object_get(set, pe) : NULL;
			free(pe);
			if (sub && json_object_get(sub, "."))
				continue;
			if (sub) {
				json_t *kept = remove_items(x, sub, elem_of(t), depth + 1);
				if (kept)
					json_array_append_new(out, kept);
			} else {
				json_array_append(out, x);
			}
		}
		if (!json_array_size(out)) {
			json_decref(out);
			return NULL;
		}
		return out;
	}
	out = json_object();
	json_object_foreach((json_t *)v, key, x)
	{
		char pe[512];
		json_t *sub;
		bool declared;
		struct tref ct = child_of(t, sh, key, &declared);

		snprintf(pe, sizeof(pe), "f:%s", key);
		sub = json_object_get(set, pe);
		if (sub && json_object_get(sub, "."))
			continue;
		if (sub) {
			json_t *kept = remove_items(x, sub, ct, depth + 1);
			if (!kept && declared && ct.type >= 0 && !(ct.flags & (KF_LIST | KF_MAP)) &&
			    kube_types[ct.type].kind == KT_STRUCT &&
			    !(kube_type_field((unsigned)t.type, key)->flags & KF_PTR))
				kept =
				    kube_type_zero((unsigned)ct.type); /* Go keeps value structs */
			if (kept)
				json_object_set_new(out, key, kept);
		} else {
			json_object_set(out, key, x);
		}
	}
	if (!json_object_size(out)) {
		json_decref(out);
		return NULL;
	}
	return out;
}

json_t *kube_fset_remove(const json_t *v, const json_t *set, int type)
{
	struct tref t = {type, 0, NULL};
	json_t *out = remove_items(v, set, t, 0);

	return out ? out : json_object();
}

/* EnsureNamedFieldsAreMembers on a copy. */
json_t *kube_fset_named(const json_t *s, int type)
{
	json_t *c = json_deep_copy(s);
	struct tref t = {type, 0, NULL};

	named_members(c, t, 0);
	return c;
}
