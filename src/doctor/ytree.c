/* SPDX-License-Identifier: Apache-2.0 */
#include "doctor/ytree.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "common/parse.h"

/* ---- arena ---- */

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	max_align_t data[];
};

/* Chunks start small (a kept Node read live is a few hundred bytes) and double up to 64 KiB. */
#define ARENA_CHUNK_FIRST (2 * 1024 - sizeof(struct arena_chunk))
#define ARENA_CHUNK_MAX   (64 * 1024 - sizeof(struct arena_chunk))

void *arena_alloc(struct arena *a, size_t size)
{
	struct arena_chunk *c = a->head;
	size_t align = sizeof(max_align_t);

	size = (size + align - 1) & ~(align - 1);
	if (!size)
		size = align;
	if (!c || c->cap - c->used < size) {
		size_t chunk = c ? (c->cap * 2 > ARENA_CHUNK_MAX ? ARENA_CHUNK_MAX : c->cap * 2)
				 : ARENA_CHUNK_FIRST;
		size_t cap = size > chunk ? size : chunk;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		/* A big allocation goes behind the current chunk, so its free room is kept. */
		if (a->head && size > chunk) {
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
		a->total += sizeof(*c) + cap;
	}
	void *p = (char *)c->data + c->used;
	c->used += size;
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
	char *p = arena_alloc(a, len + 1);

	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void arena_free(struct arena *a)
{
	struct arena_chunk *c = a->head, *next;

	for (; c; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
	a->total = 0;
}

/* ---- loading ---- */

struct frame {
	struct ynode *node;
	struct ynode **items;
	size_t n, cap;
};

struct anchor {
	const char *name; /* NULL: free slot */
	struct ynode *node;
	bool complete;
};

struct loader {
	struct ystream *s;
	const struct yaml_limits *lim;
	struct error *err;
	struct frame *stack;
	size_t depth, stack_cap;
	struct anchor *anchors;
	size_t n_anchors, cap_anchors; /* cap is a power of two */
	uint64_t expanded;             /* nodes of the current document, aliases expanded */
	struct ynode *doc_root;
	bool doc_has_root;
	uint32_t doc_line, doc_col;
};

static uint32_t sat_add(uint32_t a, uint64_t b)
{
	uint64_t s = (uint64_t)a + b;

	return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct anchor *anchor_slot(struct loader *l, const char *name)
{
	size_t mask = l->cap_anchors - 1;
	size_t i = hash_str(name) & mask;

	while (l->anchors[i].name && strcmp(l->anchors[i].name, name))
		i = (i + 1) & mask;
	return &l->anchors[i];
}

static int anchor_set(struct loader *l, const char *name, struct ynode *node, bool complete)
{
	struct anchor *a;

	if ((l->n_anchors + 1) * 2 > l->cap_anchors) {
		size_t ncap = l->cap_anchors ? l->cap_anchors * 2 : 16;
		struct anchor *old = l->anchors;
		size_t oldcap = l->cap_anchors;

		l->anchors = calloc(ncap, sizeof(*l->anchors));
		if (!l->anchors) {
			l->anchors = old;
			return -ENOMEM;
		}
		l->cap_anchors = ncap;
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].name)
				*anchor_slot(l, old[i].name) = old[i];
		free(old);
	}
	a = anchor_slot(l, name);
	if (!a->name) {
		a->name = arena_strndup(&l->s->arena, name, strlen(name));
		if (!a->name)
			return -ENOMEM;
		l->n_anchors++;
	}
	/* A redefined anchor names the new node from here on (YAML 1.2 §3.2.2.2). */
	a->node = node;
	a->complete = complete;
	return 0;
}

static void anchor_mark_complete(struct loader *l, const char *name, struct ynode *node)
{
	struct anchor *a;

	if (!l->cap_anchors)
		return;
	a = anchor_slot(l, name);
	if (a->name && a->node == node)
		a->complete = true;
}

static void anchors_reset(struct loader *l)
{
	if (l->anchors)
		memset(l->anchors, 0, l->cap_anchors * sizeof(*l->anchors));
	l->n_anchors = 0;
}

struct ynode *ynode_new(struct arena *a, enum ynode_kind kind, uint32_t line, uint32_t col)
{
	struct ynode *n = arena_alloc(a, sizeof(*n));

	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->kind = (uint8_t)kind;
	n->line = line;
	n->col = col;
	n->weight = 1;
	return n;
}

int ystream_add_doc(struct ystream *s, struct ynode *root, uint32_t line, uint32_t col)
{
	if (s->n_docs == s->cap_docs) {
		size_t ncap = s->cap_docs ? s->cap_docs * 2 : 4;
		struct ydoc *nd = realloc(s->docs, ncap * sizeof(*nd));

		if (!nd)
			return -ENOMEM;
		s->docs = nd;
		s->cap_docs = ncap;
	}
	s->docs[s->n_docs++] = (struct ydoc){.root = root, .line = line, .col = col};
	return 0;
}

static int fail_at(struct loader *l, int code, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(struct loader *l, int code, const yaml_mark_t *m, const char *fmt, ...)
{
	char what[ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return error_set(l->err, code, "%zu:%zu: %s", m->line + 1, m->column + 1, what);
}

/* Adds a finished node (or an alias target) to the open collection, or makes it the root. */
static int attach(struct loader *l, struct ynode *node, const yaml_mark_t *m)
{
	struct frame *f;

	if (!l->depth) {
		l->doc_root = node;
		l->doc_has_root = true;
		return 0;
	}
	f = &l->stack[l->depth - 1];
	if (f->n == f->cap) {
		size_t ncap = f->cap ? f->cap * 2 : 8;
		struct ynode **ni;

		if (ncap > UINT32_MAX)
			return fail_at(l, E2BIG, m, "collection too large");
		ni = realloc(f->items, ncap * sizeof(*ni));
		if (!ni)
			return -ENOMEM;
		f->items = ni;
		f->cap = ncap;
	}
	f->items[f->n++] = node;
	f->node->weight = sat_add(f->node->weight, node->weight);
	return 0;
}

static int count_expansion(struct loader *l, uint64_t nodes, const yaml_mark_t *m)
{
	l->expanded += nodes;
	if (l->expanded > l->lim->max_expanded)
		return fail_at(l, E2BIG, m,
			       "document expands to more than %llu nodes through aliases (refused: "
			       "a \"billion laughs\" document?)",
			       (unsigned long long)l->lim->max_expanded);
	return 0;
}

static int on_scalar(struct loader *l, yaml_event_t *ev)
{
	const yaml_mark_t *m = &ev->start_mark;
	const char *tag = (const char *)ev->data.scalar.tag;
	struct ynode *n;
	int ret;

	if ((ret = count_expansion(l, 1, m)) < 0)
		return ret;
	if (ev->data.scalar.length > UINT32_MAX)
		return fail_at(l, E2BIG, m, "scalar too long");
	n = ynode_new(&l->s->arena, YNODE_SCALAR, (uint32_t)m->line + 1, (uint32_t)m->column + 1);
	if (!n)
		return -ENOMEM;
	n->str = arena_strndup(&l->s->arena, (const char *)ev->data.scalar.value,
			       ev->data.scalar.length);
	if (!n->str)
		return -ENOMEM;
	n->n = (uint32_t)ev->data.scalar.length;
	n->quoted =
	    ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (tag && !strcmp(tag, YAML_STR_TAG));
	if (ev->data.scalar.anchor &&
	    (ret = anchor_set(l, (const char *)ev->data.scalar.anchor, n, true)) < 0)
		return ret;
	return attach(l, n, m);
}

static int on_start(struct loader *l, yaml_event_t *ev, enum ynode_kind kind)
{
	const yaml_mark_t *m = &ev->start_mark;
	const yaml_char_t *anchor =
	    kind == YNODE_MAP ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
	struct ynode *n;
	int ret;

	if (l->depth >= l->lim->max_depth)
		return fail_at(l, E2BIG, m, "nesting deeper than %u levels", l->lim->max_depth);
	if ((ret = count_expansion(l, 1, m)) < 0)
		return ret;
	if (l->depth == l->stack_cap) {
		size_t ncap = l->stack_cap ? l->stack_cap * 2 : 16;
		struct frame *ns = realloc(l->stack, ncap * sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		l->stack = ns;
		l->stack_cap = ncap;
	}
	n = ynode_new(&l->s->arena, kind, (uint32_t)m->line + 1, (uint32_t)m->column + 1);
	if (!n)
		return -ENOMEM;
	if (anchor && (ret = anchor_set(l, (const char *)anchor, n, false)) < 0)
		return ret;
	l->stack[l->depth++] = (struct frame){.node = n};
	return 0;
}

static int on_end(struct loader *l, yaml_event_t *ev, const char *anchor)
{
	struct frame f = l->stack[--l->depth];
	struct ynode *n = f.node;
	int ret = 0;

	if (n->kind == YNODE_MAP) {
		n->n = (uint32_t)(f.n / 2);
		if (f.n) {
			n->pairs = arena_alloc(&l->s->arena, n->n * sizeof(*n->pairs));
			if (!n->pairs) {
				ret = -ENOMEM;
				goto cleanup;
			}
			for (size_t i = 0; i < n->n; i++) {
				n->pairs[i].key = f.items[2 * i];
				n->pairs[i].value = f.items[2 * i + 1];
			}
		}
	} else {
		n->n = (uint32_t)f.n;
		if (f.n) {
			n->items = arena_alloc(&l->s->arena, f.n * sizeof(*n->items));
			if (!n->items) {
				ret = -ENOMEM;
				goto cleanup;
			}
			memcpy(n->items, f.items, f.n * sizeof(*n->items));
		}
	}
	if (anchor)
		anchor_mark_complete(l, anchor, n);
	ret = attach(l, n, &ev->start_mark);
cleanup:
	free(f.items);
	return ret;
}

static int on_alias(struct loader *l, yaml_event_t *ev)
{
	const yaml_mark_t *m = &ev->start_mark;
	const char *name = (const char *)ev->data.alias.anchor;
	struct anchor *a = l->cap_anchors ? anchor_slot(l, name) : NULL;
	int ret;

	if (!a || !a->name)
		return fail_at(l, EINVAL, m, "alias *%.64s names no anchor", name);
	if (!a->complete)
		return fail_at(l, EINVAL, m,
			       "alias *%.64s refers to a node that contains it "
			       "(recursive aliases are refused)",
			       name);
	if ((ret = count_expansion(l, a->node->weight, m)) < 0)
		return ret;
	return attach(l, a->node, m);
}

/* Anchors of open collections, to mark them complete when they close. */
struct open_anchor {
	char *name; /* NULL when the collection had none */
};

int yaml_load(struct ystream *s, const char *buf, size_t len, const struct yaml_limits *lim,
	      struct error *err)
{
	struct loader l = {.s = s, .lim = lim ? lim : &yaml_default_limits, .err = err};
	struct open_anchor *open = NULL;
	size_t open_cap = 0;
	yaml_parser_t parser;
	yaml_event_t ev;
	bool done = false, have_event = false;
	int ret = 0;

	if (!yaml_parser_initialize(&parser))
		return error_set(err, ENOMEM, "cannot initialize the YAML parser");
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			const char *problem = parser.problem ? parser.problem : "syntax error";

			if (parser.error == YAML_MEMORY_ERROR) {
				ret = error_set(err, ENOMEM, "out of memory parsing YAML");
			} else if (parser.context) {
				ret = error_set(
				    err, EINVAL, "%zu:%zu: %s %s", parser.problem_mark.line + 1,
				    parser.problem_mark.column + 1, problem, parser.context);
			} else {
				ret = error_set(err, EINVAL, "%zu:%zu: %s",
						parser.problem_mark.line + 1,
						parser.problem_mark.column + 1, problem);
			}
			goto cleanup;
		}
		have_event = true;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (s->n_docs >= l.lim->max_docs) {
				ret = fail_at(&l, E2BIG, &ev.start_mark, "more than %u documents",
					      l.lim->max_docs);
				goto cleanup;
			}
			anchors_reset(&l);
			l.expanded = 0;
			l.doc_root = NULL;
			l.doc_has_root = false;
			l.doc_line = (uint32_t)ev.start_mark.line + 1;
			l.doc_col = (uint32_t)ev.start_mark.column + 1;
			break;
		case YAML_DOCUMENT_END_EVENT: {
			struct ynode *root = l.doc_root;

			/* An empty document is one null scalar: record it as no root at all. */
			if (root && root->kind == YNODE_SCALAR && !root->quoted && yis_null(root))
				root = NULL;
			ret = ystream_add_doc(s, root, l.doc_line, l.doc_col);
			break;
		}
		case YAML_SCALAR_EVENT:
			ret = on_scalar(&l, &ev);
			break;
		case YAML_ALIAS_EVENT:
			ret = on_alias(&l, &ev);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT: {
			const yaml_char_t *anchor = ev.type == YAML_MAPPING_START_EVENT
							? ev.data.mapping_start.anchor
							: ev.data.sequence_start.anchor;

			ret = on_start(&l, &ev,
				       ev.type == YAML_MAPPING_START_EVENT ? YNODE_MAP : YNODE_SEQ);
			if (ret < 0)
				break;
			if (l.depth > open_cap) {
				size_t ncap = open_cap ? open_cap * 2 : 16;
				struct open_anchor *no = realloc(open, ncap * sizeof(*no));

				if (!no) {
					ret = -ENOMEM;
					break;
				}
				open = no;
				open_cap = ncap;
			}
			open[l.depth - 1].name = anchor ? strdup((const char *)anchor) : NULL;
			if (anchor && !open[l.depth - 1].name)
				ret = -ENOMEM;
			break;
		}
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT: {
			char *anchor = open[l.depth - 1].name;

			open[l.depth - 1].name = NULL;
			ret = on_end(&l, &ev, anchor);
			free(anchor);
			break;
		}
		default:
			break;
		}
		yaml_event_delete(&ev);
		have_event = false;
		if (ret < 0) {
			if (ret == -ENOMEM && (!err || !err->code))
				error_set(err, ENOMEM, "out of memory loading YAML");
			goto cleanup;
		}
	}
cleanup:
	if (have_event)
		yaml_event_delete(&ev);
	for (size_t i = 0; i < l.depth; i++) {
		free(l.stack[i].items);
		if (open)
			free(open[i].name);
	}
	free(open);
	free(l.stack);
	free(l.anchors);
	yaml_parser_delete(&parser);
	return ret;
}

void ystream_free(struct ystream *s)
{
	arena_free(&s->arena);
	free(s->docs);
	s->docs = NULL;
	s->n_docs = s->cap_docs = 0;
}

/* ---- reading ---- */

#define MERGE_DEPTH_MAX 8

static const struct ypair *map_find(const struct ynode *map, const char *key, size_t keylen,
				    unsigned depth)
{
	const struct ypair *found = NULL;
	const struct ynode *merge = NULL;

	if (!yis_map(map))
		return NULL;
	for (uint32_t i = 0; i < map->n; i++) {
		const struct ynode *k = map->pairs[i].key;

		if (k->kind != YNODE_SCALAR)
			continue;
		if (k->n == keylen && !memcmp(k->str, key, keylen))
			found = &map->pairs[i];
		else if (!k->quoted && k->n == 2 && !memcmp(k->str, "<<", 2))
			merge = map->pairs[i].value;
	}
	if (found || !merge || depth >= MERGE_DEPTH_MAX)
		return found;
	/* Merge keys (YAML 1.1 "<<"): a mapping, or a list of them, earlier ones winning. */
	if (yis_map(merge))
		return map_find(merge, key, keylen, depth + 1);
	if (yis_seq(merge)) {
		for (uint32_t i = 0; i < merge->n; i++) {
			found = map_find(merge->items[i], key, keylen, depth + 1);
			if (found)
				return found;
		}
	}
	return NULL;
}

const struct ynode *ymap_get(const struct ynode *map, const char *key)
{
	const struct ypair *p = map_find(map, key, strlen(key), 0);

	return p ? p->value : NULL;
}

const struct ynode *ymap_key(const struct ynode *map, const char *key)
{
	const struct ypair *p = map_find(map, key, strlen(key), 0);

	return p ? p->key : NULL;
}

const struct ynode *yget(const struct ynode *n, ...)
{
	const char *key;
	va_list ap;

	va_start(ap, n);
	while (n && (key = va_arg(ap, const char *)))
		n = ymap_get(n, key);
	va_end(ap);
	return n;
}

bool yscalar_eq(const struct ynode *n, const char *s)
{
	return yis_scalar(n) && n->n == strlen(s) && !memcmp(n->str, s, n->n);
}

bool yscalar_ieq(const struct ynode *n, const char *s)
{
	return yis_scalar(n) && n->n == strlen(s) && !strncasecmp(n->str, s, n->n);
}

bool yis_null(const struct ynode *n)
{
	if (!n)
		return true;
	if (n->kind != YNODE_SCALAR || n->quoted)
		return false;
	return n->n == 0 || yscalar_eq(n, "~") || yscalar_ieq(n, "null");
}

int ybool(const struct ynode *n, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "y"};
	static const char *const no[] = {"false", "no", "off", "n"};

	if (!yis_scalar(n))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (yscalar_ieq(n, yes[i])) {
			*out = true;
			return 0;
		}
		if (yscalar_ieq(n, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int yuint(const struct ynode *n, uint64_t max, uint64_t *out)
{
	if (!yis_scalar(n) || n->n != strlen(n->str))
		return -EINVAL;
	return parse_u64(n->str, max, out);
}
