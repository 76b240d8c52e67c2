/* SPDX-License-Identifier: Apache-2.0 */
/*
 * YAML documents as trees that remember where every node came from (line:column), loaded with
 * libyaml's event API. Multi-document streams, anchors and aliases, merge keys ("<<").
 *
 * Aliases are never copied: an alias is a second pointer to the anchored node, so the tree is
 * a DAG. What an alias would expand to is still counted (each node knows the size of its
 * expansion), and a document whose expansion exceeds the limit is refused: a "billion laughs"
 * document costs its own size to load and is then rejected, never expanded. Recursive aliases
 * (an alias to a node that is not finished) are refused too, so the graph has no cycles.
 */
#ifndef TALOS_GCP_DOCTOR_YTREE_H
#define TALOS_GCP_DOCTOR_YTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/yaml_limits.h"

/* A bump allocator: everything of one stream lives and dies together. */
struct arena_chunk;
struct arena {
	struct arena_chunk *head;
	size_t total; /* bytes obtained from malloc */
};

void *arena_alloc(struct arena *a, size_t size);
char *arena_strndup(struct arena *a, const char *s, size_t len);
void arena_free(struct arena *a);

enum ynode_kind { YNODE_SCALAR = 0, YNODE_SEQ, YNODE_MAP };

struct ynode;
struct ypair {
	struct ynode *key, *value;
};

struct ynode {
	uint8_t kind;    /* enum ynode_kind */
	uint8_t quoted;  /* scalar: quoted, block or tagged !!str (never a bool, number or null) */
	uint8_t mark;    /* free for one traversal of the tree by its owner */
	uint32_t line;   /* 1-based; 0 when unknown (objects read from an API) */
	uint32_t col;    /* 1-based */
	uint32_t n;      /* scalar: length in bytes; seq: items; map: pairs */
	uint32_t weight; /* nodes in the expansion of this subtree (aliases expanded), saturating */
	union {
		const char *str; /* NUL-terminated (may also contain NULs: use n) */
		struct ynode **items;
		struct ypair *pairs;
	};
};

struct ydoc {
	struct ynode *root; /* NULL for an empty document */
	uint32_t line, col; /* where the document starts */
};

struct ystream {
	struct arena arena;
	struct ydoc *docs;
	size_t n_docs;
	size_t cap_docs;
};

/*
 * Parses buf (UTF-8, or UTF-16 with a BOM). Documents parsed before an error stay in *s, so a
 * caller may still check them. On error: err->msg is "LINE:COL: problem" and the return value is
 * -EINVAL (syntax), -E2BIG (a limit) or -ENOMEM. *s must be zeroed by the caller and is freed
 * with ystream_free() in every case.
 */
int yaml_load(struct ystream *s, const char *buf, size_t len, const struct yaml_limits *lim,
	      struct error *err);
void ystream_free(struct ystream *s);

/* Appends a document whose nodes the caller builds in s->arena (JSON conversion). */
int ystream_add_doc(struct ystream *s, struct ynode *root, uint32_t line, uint32_t col);
struct ynode *ynode_new(struct arena *a, enum ynode_kind kind, uint32_t line, uint32_t col);

/* ---- reading ---- */
static inline bool yis_map(const struct ynode *n)
{
	return n && n->kind == YNODE_MAP;
}
static inline bool yis_seq(const struct ynode *n)
{
	return n && n->kind == YNODE_SEQ;
}
static inline bool yis_scalar(const struct ynode *n)
{
	return n && n->kind == YNODE_SCALAR;
}
/* The scalar's text, or NULL when n is not a scalar. */
static inline const char *ystr(const struct ynode *n)
{
	return yis_scalar(n) ? n->str : NULL;
}

/* The value for key in a mapping (merge keys followed; the last of duplicate keys), or NULL. */
const struct ynode *ymap_get(const struct ynode *map, const char *key);
/* ymap_get along a path of keys ending with NULL: yget(root, "spec", "template", NULL). */
const struct ynode *yget(const struct ynode *n, ...) __attribute__((sentinel));
/* The key node of key in map (for pointing at it), or NULL. */
const struct ynode *ymap_key(const struct ynode *map, const char *key);

bool yscalar_eq(const struct ynode *n, const char *s);
/* Case-insensitive comparison. */
bool yscalar_ieq(const struct ynode *n, const char *s);
/* A plain null: "", "~", "null". */
bool yis_null(const struct ynode *n);
/*
 * A boolean as Kubernetes, Helm and Talos read one: true/false in any case, and YAML 1.1's
 * yes/no/on/off; quoted "true"/"false" are accepted too (Talos extraArgs are strings).
 * 0 or -EINVAL.
 */
int ybool(const struct ynode *n, bool *out);
/* A decimal integer (plain or quoted). 0, -EINVAL or -ERANGE (above max). */
int yuint(const struct ynode *n, uint64_t max, uint64_t *out);

#endif
