/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json_stream_parse(): yajl's event parser drives a small state machine. Paths are compiled
 * into a trie; a stack of frames follows the containers the parser is inside of, but only
 * those that matter: a value no path selects is skipped with a depth counter (no frame, no
 * allocation), which is where nearly all of a list page goes.
 *
 * yajl flags: comments off, UTF-8 validation of strings on (yajl_dont_validate_strings
 * off), no trailing garbage, one value, no partial values. yajl is laxer than jansson in
 * ways these flags do not reach (it takes \f and \v as white space; overlong UTF-8 forms,
 * encoded surrogates and code points past U+10FFFF; \u0000; lone or mismatched surrogate
 * escapes, which it turns into '?' or a made-up character; integers of any size; an
 * unterminated string after the top-level value), so a pre-pass over the buffer refuses
 * what jansson refuses before yajl sees it, numbers are range-checked as they come, and
 * what follows the value is checked at the end.
 */
#include "common/json_stream.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "common/str.h"

/* jansson's JSON_PARSER_MAX_DEPTH: a value inside 2048 containers is refused. */
#define MAX_DEPTH 2048

/* ---- paths ---- */

enum path_tag {
	TAG_ITEMS, /* the item path */
	TAG_TAKE,  /* an extras path, or a field of the projection */
};

struct path_ref {
	const char *p; /* the rest of the path: "" at its end */
	enum path_tag tag;
	const char *full; /* for messages */
};

struct pnode {
	char *key; /* NULL at the root; "*" matches any key */
	size_t key_len;
	bool whole;        /* a TAKE path ends here */
	bool items;        /* the item path ends here */
	bool on_item_path; /* the item path goes through or ends here */
	bool takes;        /* a TAKE path goes through or ends here */
	bool item_star; /* the item path reaches it through a "*" (its key goes to the callback) */
	struct pnode **kids;
	size_t n_kids;
	struct pnode *star; /* the "*" child (already merged into every other child) */
};

static void pnode_free(struct pnode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n_kids; i++)
		pnode_free(n->kids[i]);
	free(n->kids);
	free(n->key);
	free(n);
}

static size_t elem_len(const char *p)
{
	const char *dot = strchr(p, '.');

	return dot ? (size_t)(dot - p) : strlen(p);
}

/* The rest of the path after its first element. */
static const char *elem_next(const char *p)
{
	size_t n = elem_len(p);

	return p[n] == '.' ? p + n + 1 : p + n;
}

static bool elem_is(const char *p, const char *key, size_t len)
{
	return elem_len(p) == len && !memcmp(p, key, len);
}

/* A TAKE path among refs, to name in a message. */
static const char *ending_take(const struct path_ref *refs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (refs[i].tag == TAG_TAKE)
			return refs[i].full;
	return "";
}

/*
 * Builds the trie of refs[0..n). A child for key k takes the paths that go on with k and
 * those that go on with "*": a key that both name gets the union, so matching a key is one
 * look-up (the exact child, else the star).
 */
static int pnode_build(const char *key, size_t key_len, struct path_ref *refs, size_t n,
		       struct pnode **out, struct error *err)
{
	struct path_ref *sub = NULL;
	struct pnode *node;
	int ret = 0;

	node = calloc(1, sizeof(*node));
	if (!node)
		return error_set(err, ENOMEM, "out of memory");
	if (key) {
		node->key = strndup(key, key_len);
		node->key_len = key_len;
		if (!node->key) {
			ret = error_set(err, ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	for (size_t i = 0; i < n; i++) {
		bool ends = !refs[i].p[0];

		if (refs[i].tag == TAG_ITEMS) {
			node->on_item_path = true;
			node->items |= ends;
		} else {
			node->takes = true;
			node->whole |= ends;
		}
	}
	/* A whole subtree holding the items, or paths below the items array. */
	if ((node->whole && node->on_item_path) || (node->items && node->takes)) {
		ret = error_set(err, EINVAL, "path \"%s\" leads into the items",
				ending_take(refs, n));
		goto cleanup;
	}
	if (node->whole)
		goto cleanup; /* longer paths under a whole subtree add nothing */
	sub = calloc(n ? n : 1, sizeof(*sub));
	if (!sub) {
		ret = error_set(err, ENOMEM, "out of memory");
		goto cleanup;
	}
	/* One child per distinct first element; "*" last. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			const char *p = refs[i].p;
			size_t len = elem_len(p), m = 0;
			bool star = len == 1 && p[0] == '*', dup = false, item_star = false;
			struct pnode *kid, **kids;

			if (!p[0] || star != (pass == 1))
				continue;
			for (size_t j = 0; j < i && !dup; j++)
				dup = refs[j].p[0] && elem_is(refs[j].p, p, len);
			if (dup)
				continue;
			for (size_t j = 0; j < n; j++) {
				const char *q = refs[j].p;
				bool q_star = q[0] && elem_is(q, "*", 1);

				if (!q[0] || !(q_star || elem_is(q, p, len)))
					continue;
				if (q_star && refs[j].tag == TAG_ITEMS)
					item_star = true;
				sub[m] = refs[j];
				sub[m].p = elem_next(q);
				m++;
			}
			kids = realloc(node->kids, (node->n_kids + 1) * sizeof(*kids));
			if (!kids) {
				ret = error_set(err, ENOMEM, "out of memory");
				goto cleanup;
			}
			node->kids = kids;
			ret = pnode_build(p, len, sub, m, &kid, err);
			if (ret < 0)
				goto cleanup;
			kid->item_star = item_star;
			node->kids[node->n_kids++] = kid;
			if (star)
				node->star = kid;
		}
	}
cleanup:
	free(sub);
	if (ret < 0) {
		pnode_free(node);
		return ret;
	}
	*out = node;
	return 0;
}

/* The exact child named key, else the "*" child, else NULL. */
static const struct pnode *pnode_match(const struct pnode *n, const char *key, size_t len)
{
	for (size_t i = 0; i < n->n_kids; i++) {
		const struct pnode *k = n->kids[i];

		if (k != n->star && k->key_len == len && !memcmp(k->key, key, len))
			return k;
	}
	return n->star;
}

static int check_path(const char *what, const char *path, struct error *err)
{
	const char *p = path;

	if (!*p)
		return 0;
	for (;;) {
		size_t n = elem_len(p);

		if (n == 0)
			return error_set(err, EINVAL, "%s \"%s\": empty path element", what, path);
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

/* ---- the pre-pass: what yajl lets through and jansson does not ---- */

struct text_error {
	size_t offset;
	char msg[96];
};

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Some byte of w (all bytes < 0x80) is below n. */
static inline bool has_less(uint64_t w, unsigned char n)
{
	return ((w - ONES * n) & ~w & HIGHS) != 0;
}

static inline bool has_byte(uint64_t w, unsigned char b)
{
	return has_less(w ^ (ONES * b), 1);
}

enum tc_state {
	TC_PLAIN = 0,
	TC_UTF8,    /* in a multi-byte sequence */
	TC_ESC,     /* after an odd backslash */
	TC_HEX,     /* in the 4 hex digits of \u */
	TC_LOW_BS,  /* a high surrogate: its low half's backslash must follow */
	TC_LOW_U,   /* ... then its 'u' */
	TC_LOW_HEX, /* ... then 4 hex digits in DC00-DFFF */
};

struct text_check {
	enum tc_state state;
	unsigned char lead, lo, hi; /* UTF-8: the lead byte, the range of the next byte */
	unsigned need;              /* UTF-8: continuation bytes to come; hex: digits read */
	unsigned value;             /* \u: the value so far; the high surrogate */
	unsigned low;               /* the low surrogate so far */
	size_t start;               /* offset of the sequence being checked */
};

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int tc_fail(struct text_check *tc, struct text_error *te, size_t off, const char *msg)
{
	(void)tc;
	te->offset = off;
	snprintf(te->msg, sizeof(te->msg), "%s", msg);
	return -1;
}

static int tc_lone(struct text_check *tc, struct text_error *te)
{
	te->offset = tc->start;
	snprintf(te->msg, sizeof(te->msg), "invalid Unicode escape '\\u%04X' (a lone surrogate)",
		 tc->value);
	return -1;
}

/* Checks p[0..len), at document offset base. 0 or -1 with te filled. */
static int check_text(struct text_check *tc, const unsigned char *p, size_t len, size_t base,
		      struct text_error *te)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		int h;

		switch (tc->state) {
		case TC_PLAIN:
			/* Eight plain ASCII bytes at a time: no control character, no backslash. */
			while (i + 8 <= len) {
				uint64_t w;

				memcpy(&w, p + i, 8);
				if ((w & HIGHS) || has_less(w, 0x20) || has_byte(w, '\\'))
					break;
				i += 8;
			}
			if (i >= len)
				return 0;
			c = p[i];
			if (c >= 0x80) {
				tc->lead = c;
				tc->start = base + i;
				tc->lo = 0x80;
				tc->hi = 0xbf;
				if (c >= 0xc2 && c <= 0xdf)
					tc->need = 1;
				else if (c >= 0xe0 && c <= 0xef)
					tc->need = 2;
				else if (c >= 0xf0 && c <= 0xf4)
					tc->need = 3;
				else
					break; /* invalid lead: reported below */
				if (c == 0xe0)
					tc->lo = 0xa0; /* overlong */
				else if (c == 0xed)
					tc->hi = 0x9f; /* surrogates */
				else if (c == 0xf0)
					tc->lo = 0x90; /* overlong */
				else if (c == 0xf4)
					tc->hi = 0x8f; /* past U+10FFFF */
				tc->state = TC_UTF8;
				i++;
				continue;
			}
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
				char msg[40];

				snprintf(msg, sizeof(msg), "control character 0x%02x", c);
				return tc_fail(tc, te, base + i, msg);
			}
			/*
			 * A backslash only appears in strings (yajl refuses it elsewhere). In a run
			 * of them, pairs are escaped backslashes; an odd one out escapes the next
			 * character.
			 */
			if (c == '\\') {
				tc->state = TC_ESC;
				tc->start = base + i;
			}
			i++;
			continue;
		case TC_UTF8:
			if (c < tc->lo || c > tc->hi)
				break;
			tc->lo = 0x80;
			tc->hi = 0xbf;
			if (--tc->need == 0)
				tc->state = TC_PLAIN;
			i++;
			continue;
		case TC_ESC:
			tc->state = TC_PLAIN;
			if (c == 'u') {
				tc->state = TC_HEX;
				tc->need = 0;
				tc->value = 0;
			}
			if (c == '\\' || c == 'u')
				i++;
			/* Any other escaped character is judged by yajl, and by PLAIN here. */
			continue;
		case TC_HEX:
			h = hexval(c);
			if (h < 0) {
				tc->state =
				    TC_PLAIN; /* malformed hex is left to yajl, which says so */
				continue;
			}
			tc->value = tc->value << 4 | (unsigned)h;
			i++;
			if (++tc->need < 4)
				continue;
			if (tc->value == 0)
				return tc_fail(tc, te, tc->start, "\\u0000 is not allowed");
			if (tc->value >= 0xdc00 && tc->value <= 0xdfff) {
				char msg[48];

				snprintf(msg, sizeof(msg), "invalid Unicode escape '\\u%04X'",
					 tc->value);
				return tc_fail(tc, te, tc->start, msg);
			}
			tc->state =
			    tc->value >= 0xd800 && tc->value <= 0xdbff ? TC_LOW_BS : TC_PLAIN;
			continue;
		case TC_LOW_BS:
		case TC_LOW_U:
			if (c != (tc->state == TC_LOW_BS ? '\\' : 'u'))
				return tc_lone(tc, te);
			tc->state = tc->state == TC_LOW_BS ? TC_LOW_U : TC_LOW_HEX;
			tc->need = 0;
			i++;
			continue;
		case TC_LOW_HEX:
			h = hexval(c);
			if (h < 0)
				return tc_lone(tc, te);
			tc->low = tc->need ? tc->low << 4 | (unsigned)h : (unsigned)h;
			i++;
			if (++tc->need < 4)
				continue;
			if (tc->low < 0xdc00 || tc->low > 0xdfff)
				return tc_lone(tc, te);
			tc->state = TC_PLAIN;
			continue;
		}
		/* An invalid UTF-8 lead or continuation byte: named by the lead byte. */
		{
			char msg[40];

			snprintf(msg, sizeof(msg), "invalid UTF-8 (byte 0x%02x)",
				 tc->state == TC_UTF8 ? tc->lead : c);
			return tc_fail(tc, te, tc->state == TC_UTF8 ? tc->start : base + i, msg);
		}
	}
	return 0;
}

/* The end of the document: a sequence still open is incomplete. */
static int check_text_end(struct text_check *tc, struct text_error *te)
{
	char msg[40];

	switch (tc->state) {
	case TC_UTF8:
		snprintf(msg, sizeof(msg), "invalid UTF-8 (byte 0x%02x)", tc->lead);
		return tc_fail(tc, te, tc->start, msg);
	case TC_LOW_BS:
	case TC_LOW_U:
	case TC_LOW_HEX:
		return tc_lone(tc, te);
	default:
		return 0; /* an open escape is an unterminated string, which yajl reports */
	}
}

/* ---- the parser state ---- */

enum frame_kind {
	F_NAV,       /* an object on the way to the items (or the top-level object) */
	F_ITEMS,     /* the array whose elements are the items */
	F_BUILD_OBJ, /* an object being built (in an item or in the extras) */
	F_BUILD_ARR, /* an array being built */
};

struct frame {
	enum frame_kind kind;
	bool wild;                 /* NAV, ITEMS: reached through a "*" */
	bool item;                 /* BUILD: this container is an item */
	bool skip_value;           /* objects: no path selects the pending key */
	const char *name;          /* NAV, ITEMS: the key it is under (NULL at the top) */
	const struct pnode *node;  /* NAV; BUILD: the paths here, NULL: whole */
	const struct pnode *child; /* objects: the paths for the pending key's value */
	json_t *value;             /* BUILD: the container; NAV: its extras, or NULL */
	json_t *seen;              /* NAV: selected keys met so far (duplicates) */
	char *key;                 /* objects: the pending key, NUL-terminated */
	size_t key_len, key_cap;
	size_t index; /* ITEMS: the next item's index */
};

struct state {
	yajl_handle h;
	const char *buf; /* the chunk being parsed */
	size_t len;      /* its length */
	size_t base;     /* offset of buf in the document */
	size_t total;    /* bytes of the document fed so far (buf included) */
	size_t line;     /* line (1-based) at base, and the offset where it starts */
	size_t line_start;
	const char *what;
	bool finishing; /* in yajl_complete_parse(): offsets are not into buf */
	unsigned flags;
	const struct pnode *doc;    /* item path and extras */
	const struct pnode *fields; /* projection; NULL: whole items */
	json_stream_item_fn fn;
	void *arg;
	struct error *err;
	int ret; /* what stopped the parse: -errno, or fn's value */

	struct frame *frames;
	size_t n_frames, cap_frames;
	size_t depth; /* open containers, skipped ones included */
	size_t end;   /* just after the top-level value, once it is closed */
	size_t skip;  /* > 0: inside a container no path selects, this many deep */
	json_t *extras;
	json_t *item; /* the item being built */
	const char **keys;
	size_t cap_keys;
};

/* Where the parser is in the document: the last byte of the token it read last. */
static size_t cur_offset(const struct state *s)
{
	size_t n;

	if (s->finishing)
		return s->total;
	n = s->base + yajl_get_bytes_consumed(s->h);
	return n ? n - 1 : 0;
}

/*
 * Where yajl 2.1 stopped on error msg: after the token it could not place (parse errors),
 * after a character no token starts with or a '/' (comments), and before the byte that
 * broke a string, a number or a literal (other lexical errors).
 */
static size_t error_offset(const struct state *s, const char *msg)
{
	size_t n = yajl_get_bytes_consumed(s->h);

	if (s->finishing)
		return s->total;
	if (!strncmp(msg, "lexical", 7) && !strstr(msg, "invalid char in json text") &&
	    !strstr(msg, "comment"))
		return s->base + (n < s->len ? n : s->len);
	return s->base + n ? s->base + n - 1 : 0;
}

/* Line and column of off, which is in the current chunk or at the end of what was fed. */
static void position(const struct state *s, size_t off, size_t *line, size_t *col)
{
	const char *p = s->buf, *end, *nl;
	size_t start = s->line_start;

	*line = s->line;
	if (off < s->base) {
		/*
		 * A token begun in an earlier chunk: tokens (strings, numbers, escapes, UTF-8
		 * sequences) hold no raw newline, so it is on the line where the chunk starts.
		 */
		*col = off >= start ? off - start + 1 : 1;
		return;
	}
	end = s->buf + (off - s->base < s->len ? off - s->base : s->len);
	while (p && (nl = memchr(p, '\n', (size_t)(end - p)))) {
		++*line;
		p = nl + 1;
		start = s->base + (size_t)(p - s->buf);
	}
	*col = off - start + 1;
}

static int syntax_error(struct state *s, size_t off, const char *msg)
{
	size_t line, col;

	position(s, off, &line, &col);
	s->ret = error_set(s->err, EBADMSG, "%s:%zu:%zu: invalid JSON (byte %zu): %s", s->what,
			   line, col, off, msg);
	return 0; /* stops yajl */
}

/* "items.zones/a.instances": the keys of the frames below the top, then last. */
static void frame_path(const struct state *s, const char *last, char *out, size_t max)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i <= s->n_frames; i++) {
		const char *k = i < s->n_frames ? s->frames[i].name : last;
		char tmp[128];

		if (!k)
			continue;
		str_printable(tmp, sizeof(tmp), k, strlen(k));
		o += (size_t)snprintf(out + o, max - o, "%s%s", o ? "." : "", tmp);
		if (o >= max)
			return;
	}
}

/* "WHAT: items.zones/a.instances is not an array"; index >= 0: "...[3] is not an object". */
static int shape_error(struct state *s, const char *last, long index, const char *type)
{
	char path[300];

	frame_path(s, last, path, sizeof(path));
	if (index >= 0 && path[0])
		s->ret =
		    error_set(s->err, EBADMSG, "%s: %s[%ld] is not %s", s->what, path, index, type);
	else if (index >= 0)
		s->ret = error_set(s->err, EBADMSG, "%s: top-level array element %ld is not %s",
				   s->what, index, type);
	else if (path[0])
		s->ret = error_set(s->err, EBADMSG, "%s: %s is not %s", s->what, path, type);
	else
		s->ret =
		    error_set(s->err, EBADMSG, "%s: the top-level value is not %s", s->what, type);
	return -1;
}

/* Records ENOMEM; 0 stops yajl. */
static int nomem(struct state *s)
{
	s->ret = error_set(s->err, ENOMEM, "out of memory");
	return 0;
}

static int duplicate_key(struct state *s, const char *key)
{
	char k[64], msg[96];

	str_printable(k, sizeof(k), key, strlen(key));
	snprintf(msg, sizeof(msg), "duplicate object key \"%s\"", k);
	return syntax_error(s, cur_offset(s), msg);
}

static struct frame *top(struct state *s)
{
	return s->n_frames ? &s->frames[s->n_frames - 1] : NULL;
}

static struct frame *push(struct state *s, enum frame_kind kind)
{
	struct frame *f;

	if (s->n_frames == s->cap_frames) {
		size_t ncap = s->cap_frames ? s->cap_frames * 2 : 16;
		struct frame *n = realloc(s->frames, ncap * sizeof(*n));

		if (!n)
			return NULL;
		memset(n + s->cap_frames, 0, (ncap - s->cap_frames) * sizeof(*n));
		s->frames = n;
		s->cap_frames = ncap;
	}
	f = &s->frames[s->n_frames++];
	/* The key buffer of this slot is kept from one use to the next. */
	f->kind = kind;
	f->wild = f->item = f->skip_value = false;
	f->name = NULL;
	f->node = f->child = NULL;
	f->value = NULL;
	f->seen = NULL;
	f->key_len = 0;
	f->index = 0;
	return f;
}

static void pop(struct state *s)
{
	struct frame *f = &s->frames[--s->n_frames];

	json_decref(f->seen);
	f->seen = NULL;
}

static int set_key(struct frame *f, const unsigned char *key, size_t len)
{
	if (len + 1 > f->key_cap) {
		size_t ncap = f->key_cap ? f->key_cap : 32;
		char *n;

		while (ncap < len + 1)
			ncap *= 2;
		n = realloc(f->key, ncap);
		if (!n)
			return -ENOMEM;
		f->key = n;
		f->key_cap = ncap;
	}
	memcpy(f->key, key, len);
	f->key[len] = '\0';
	f->key_len = len;
	return 0;
}

enum vtype { V_NULL, V_SCALAR, V_MAP, V_ARRAY };

enum action {
	A_SKIP,  /* not wanted */
	A_BUILD, /* a jansson value: an item, or into parent */
	A_NAV,   /* an object on the item path */
	A_ITEMS, /* the items array */
};

struct target {
	enum action act;
	const struct pnode *node; /* BUILD: NULL for whole; NAV, ITEMS: the trie node */
	json_t *parent;           /* BUILD: the container to add to (NULL: it is an item) */
	const char *key;          /* parent is an object: the member's key */
	size_t key_len;
	const char *name; /* NAV, ITEMS: the key the value is under */
	bool wild;
};

/* The paths for a value that n selects: NULL when it selects it whole. */
static const struct pnode *build_node(const struct pnode *n)
{
	return n->whole ? NULL : n;
}

/* Decides what to do with a value of type vt starting here. 0, or -1 with s->ret set. */
static int resolve(struct state *s, enum vtype vt, struct target *t)
{
	struct frame *f = top(s);
	const struct pnode *c;

	memset(t, 0, sizeof(*t));
	if (!f) {
		/* The top-level value. */
		c = s->doc;
		if (c->items ? vt != V_ARRAY : vt != V_MAP)
			return shape_error(s, NULL, -1, c->items ? "an array" : "an object");
		t->act = c->items ? A_ITEMS : A_NAV;
		t->node = c;
		return 0;
	}
	switch (f->kind) {
	case F_NAV:
		if (f->skip_value) {
			t->act = A_SKIP;
			return 0;
		}
		c = f->child;
		t->key = f->key;
		t->key_len = f->key_len;
		t->name = f->key;
		t->wild = c->item_star;
		if (!c->on_item_path) {
			t->act = A_BUILD;
			t->node = build_node(c);
			t->parent = f->value;
			return 0;
		}
		if (c->items ? vt == V_ARRAY : vt == V_MAP) {
			t->act = c->items ? A_ITEMS : A_NAV;
			t->node = c;
			t->parent = c->takes ? f->value : NULL;
			return 0;
		}
		if (vt == V_NULL) {
			/* No items here; the extras keep the null, as a reduction would. */
			t->act = c->takes ? A_BUILD : A_SKIP;
			t->parent = f->value;
			return 0;
		}
		return shape_error(s, f->key, -1, c->items ? "an array" : "an object");
	case F_ITEMS:
		if ((s->flags & JSON_STREAM_OBJECT_ITEMS) && vt != V_MAP)
			return shape_error(s, NULL, (long)f->index, "an object");
		t->act = A_BUILD;
		t->node = s->fields;
		return 0;
	case F_BUILD_OBJ:
		if (f->skip_value) {
			t->act = A_SKIP;
			return 0;
		}
		t->act = A_BUILD;
		t->node = f->child;
		t->parent = f->value;
		t->key = f->key;
		t->key_len = f->key_len;
		return 0;
	case F_BUILD_ARR:
		t->act = A_BUILD;
		t->node = f->node;
		t->parent = f->value;
		return 0;
	}
	return 0;
}

/* Adds v (a new reference, consumed) to t->parent. 1, or 0 with s->ret set. */
static int attach(struct state *s, const struct target *t, json_t *v)
{
	if (!v)
		return nomem(s);
	if (json_is_array(t->parent)) {
		if (json_array_append_new(t->parent, v))
			return nomem(s);
		return 1;
	}
	if (json_object_getn(t->parent, t->key, t->key_len)) {
		json_decref(v);
		return duplicate_key(s, t->key);
	}
	/* Keys are valid UTF-8 without NUL: the pre-pass saw to it. */
	if (json_object_setn_new_nocheck(t->parent, t->key, t->key_len, v))
		return nomem(s);
	return 1;
}

/* Hands item (consumed) to the callback. 1, or 0 when the parse must stop. */
static int deliver(struct state *s, json_t *item)
{
	struct frame *items = top(s);
	struct json_stream_at at = {.index = items->index++};
	size_t n = 0;
	int ret;

	if (s->cap_keys < s->n_frames) {
		const char **k = realloc(s->keys, s->n_frames * sizeof(*k));

		if (!k) {
			json_decref(item);
			return nomem(s);
		}
		s->keys = k;
		s->cap_keys = s->n_frames;
	}
	for (size_t i = 0; i < s->n_frames; i++)
		if (s->frames[i].wild)
			s->keys[n++] = s->frames[i].name;
	at.keys = s->keys;
	at.n_keys = n;
	ret = s->fn ? s->fn(s->arg, item, &at) : 0;
	json_decref(item);
	if (ret) {
		s->ret = ret;
		return 0;
	}
	return 1;
}

/* A scalar value v (new reference) has been read. */
static int scalar(struct state *s, enum vtype vt, json_t *(*make)(const void *, size_t),
		  const void *data, size_t len)
{
	struct target t;
	json_t *v;

	if (s->depth >= MAX_DEPTH)
		return syntax_error(s, cur_offset(s), "maximum nesting depth reached");
	if (s->skip)
		return 1;
	if (resolve(s, vt, &t) < 0)
		return 0;
	if (t.act == A_SKIP)
		return 1;
	v = make(data, len);
	if (!v)
		return s->ret ? 0 : nomem(s);
	if (!t.parent)
		return deliver(s, v);
	return attach(s, &t, v);
}

static json_t *make_null(const void *d, size_t n)
{
	(void)d;
	(void)n;
	return json_null();
}

static json_t *make_bool(const void *d, size_t n)
{
	(void)d;
	return json_boolean(n);
}

static json_t *make_string(const void *d, size_t n)
{
	/* Valid UTF-8 without NUL: the pre-pass checked the text and the \u escapes. */
	return json_stringn_nocheck(d, n);
}

static int cb_null(void *ctx)
{
	return scalar(ctx, V_NULL, make_null, NULL, 0);
}

static int cb_boolean(void *ctx, int b)
{
	return scalar(ctx, V_SCALAR, make_bool, NULL, b != 0);
}

static int cb_string(void *ctx, const unsigned char *str, size_t len)
{
	return scalar(ctx, V_SCALAR, make_string, str, len);
}

/* Where the number of len bytes just read starts. */
static size_t number_offset(const struct state *s, size_t len)
{
	size_t end = s->finishing ? s->total : s->base + yajl_get_bytes_consumed(s->h);

	return end >= len ? end - len : 0;
}

/*
 * A number as jansson reads it: an integer (no '.', 'e', 'E') within json_int_t, else a
 * real that does not overflow. *out NULL: only check.
 */
static int number_value(struct state *s, const char *text, size_t len, json_t **out)
{
	bool real = memchr(text, '.', len) || memchr(text, 'e', len) || memchr(text, 'E', len);
	char small[64], *t = small, *end;
	int ret = 0;

	/* What cannot overflow needs no conversion when it is not kept. */
	if (!out &&
	    (real ? (!memchr(text, 'e', len) && !memchr(text, 'E', len) && len < 300) : len <= 18))
		return 0;
	if (len >= sizeof(small)) {
		t = malloc(len + 1);
		if (!t) {
			nomem(s);
			return -1;
		}
	}
	memcpy(t, text, len);
	t[len] = '\0';
	errno = 0;
	if (!real) {
		long long v = strtoll(t, &end, 10);

		if (errno == ERANGE) {
			syntax_error(s, number_offset(s, len),
				     t[0] == '-' ? "too big negative integer" : "too big integer");
			ret = -1;
		} else if (out && !(*out = json_integer(v))) {
			nomem(s);
			ret = -1;
		}
	} else {
		double v = strtod(t, &end);

		if ((v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE) {
			syntax_error(s, number_offset(s, len), "real number overflow");
			ret = -1;
		} else if (out && !(*out = json_real(v))) {
			nomem(s);
			ret = -1;
		}
	}
	if (t != small)
		free(t);
	return ret;
}

static int cb_number(void *ctx, const char *text, size_t len)
{
	struct state *s = ctx;
	struct target t;
	json_t *v = NULL;

	if (s->depth >= MAX_DEPTH)
		return syntax_error(s, cur_offset(s), "maximum nesting depth reached");
	if (s->skip)
		return number_value(s, text, len, NULL) == 0;
	if (resolve(s, V_SCALAR, &t) < 0)
		return 0;
	if (t.act == A_SKIP)
		return number_value(s, text, len, NULL) == 0;
	if (number_value(s, text, len, &v) < 0)
		return 0;
	if (!t.parent)
		return deliver(s, v);
	return attach(s, &t, v);
}

static int start_container(struct state *s, bool map)
{
	struct target t;
	struct frame *f;
	json_t *v;

	if (s->depth >= MAX_DEPTH)
		return syntax_error(s, cur_offset(s), "maximum nesting depth reached");
	s->depth++;
	if (s->skip) {
		s->skip++;
		return 1;
	}
	if (resolve(s, map ? V_MAP : V_ARRAY, &t) < 0)
		return 0;
	switch (t.act) {
	case A_SKIP:
		s->skip = 1;
		return 1;
	case A_BUILD:
		v = map ? json_object() : json_array();
		if (!v)
			return nomem(s);
		if (t.parent) {
			/* The parent holds the reference; the frame borrows it. */
			if (!attach(s, &t, v))
				return 0;
		} else {
			s->item = v;
		}
		f = push(s, map ? F_BUILD_OBJ : F_BUILD_ARR);
		if (!f)
			return nomem(s);
		f->item = !t.parent;
		f->node = t.node;
		f->value = v;
		return 1;
	case A_NAV:
		v = NULL;
		if (!s->n_frames) {
			v = s->extras;
		} else if (t.parent) {
			v = json_object();
			if (!attach(s, &t, v))
				return 0;
		}
		f = push(s, F_NAV);
		if (!f)
			return nomem(s);
		f->node = t.node;
		f->value = v;
		f->name = t.name;
		f->wild = t.wild;
		return 1;
	case A_ITEMS:
		f = push(s, F_ITEMS);
		if (!f)
			return nomem(s);
		f->node = t.node;
		f->name = t.name;
		f->wild = t.wild;
		return 1;
	}
	return 1;
}

static int cb_start_map(void *ctx)
{
	return start_container(ctx, true);
}

static int cb_start_array(void *ctx)
{
	return start_container(ctx, false);
}

static int end_container(void *ctx)
{
	struct state *s = ctx;
	struct frame *f;
	json_t *item;

	if (--s->depth == 0)
		s->end = s->finishing ? s->total : s->base + yajl_get_bytes_consumed(s->h);
	if (s->skip) {
		s->skip--;
		return 1;
	}
	f = top(s);
	if (!f)
		return 1;
	if (f->kind == F_BUILD_OBJ || f->kind == F_BUILD_ARR) {
		if (f->item) {
			pop(s);
			item = s->item;
			s->item = NULL;
			return deliver(s, item);
		}
	}
	pop(s);
	return 1;
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
	struct state *s = ctx;
	struct frame *f;
	const struct pnode *c;

	if (s->skip)
		return 1;
	f = top(s);
	if (!f)
		return 1;
	if (f->kind == F_BUILD_OBJ && !f->node) {
		c = NULL; /* whole: every member */
	} else {
		c = pnode_match(f->node, (const char *)key, len);
		if (!c) {
			f->skip_value = true;
			return 1;
		}
	}
	f->skip_value = false;
	if (set_key(f, key, len) < 0)
		return nomem(s);
	if (f->kind == F_NAV) {
		f->child = c;
		/* Selected keys only: nothing else of a page is remembered. */
		if (!f->seen && !(f->seen = json_object()))
			return nomem(s);
		if (json_object_getn(f->seen, f->key, len))
			return duplicate_key(s, f->key);
		if (json_object_setn_new_nocheck(f->seen, f->key, len, json_true()))
			return nomem(s);
	} else {
		/* Found before its value is built (attach() checks again, cheaply). */
		if (json_object_getn(f->value, f->key, len))
			return duplicate_key(s, f->key);
		f->child = c ? build_node(c) : NULL;
	}
	return 1;
}

static const yajl_callbacks callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_boolean,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = end_container,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = end_container,
};

static int compile(const struct json_stream_options *opt, struct pnode **doc, struct pnode **fields,
		   struct error *err)
{
	struct path_ref *refs = NULL;
	size_t n = 0, cap = 1;
	int ret;

	*doc = *fields = NULL;
	if (!opt || !opt->items)
		return error_set(err, EINVAL, "no item path");
	for (size_t i = 0; opt->extras && opt->extras[i]; i++)
		cap++;
	for (size_t i = 0; opt->fields && opt->fields[i]; i++)
		cap++;
	refs = calloc(cap, sizeof(*refs));
	if (!refs)
		return error_set(err, ENOMEM, "out of memory");
	ret = check_path("item path", opt->items, err);
	if (ret < 0)
		goto cleanup;
	refs[n++] = (struct path_ref){.p = opt->items, .tag = TAG_ITEMS, .full = opt->items};
	for (size_t i = 0; opt->extras && opt->extras[i]; i++) {
		ret = check_path("path", opt->extras[i], err);
		if (ret < 0)
			goto cleanup;
		refs[n++] =
		    (struct path_ref){.p = opt->extras[i], .tag = TAG_TAKE, .full = opt->extras[i]};
	}
	ret = pnode_build(NULL, 0, refs, n, doc, err);
	if (ret < 0 || !opt->fields)
		goto cleanup;
	n = 0;
	for (size_t i = 0; opt->fields[i]; i++) {
		ret = check_path("field", opt->fields[i], err);
		if (ret < 0)
			goto cleanup;
		refs[n++] =
		    (struct path_ref){.p = opt->fields[i], .tag = TAG_TAKE, .full = opt->fields[i]};
	}
	ret = pnode_build(NULL, 0, refs, n, fields, err);
cleanup:
	free(refs);
	if (ret < 0) {
		pnode_free(*doc);
		*doc = NULL;
	}
	return ret;
}

struct json_stream {
	struct state s;
	struct pnode *doc, *fields;
	struct text_check tc;
	bool text_checked; /* json_stream_parse() checked the whole text first */
	bool done;         /* an error was returned, or finish() ran */
	int ret;
};

static struct json_stream *stream_new(const char *what, const struct json_stream_options *opt,
				      json_stream_item_fn fn, void *arg, int *ret,
				      struct error *err)
{
	struct json_stream *j = calloc(1, sizeof(*j));

	if (!j) {
		*ret = error_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	j->s.what = what ? what : "<input>";
	j->s.flags = opt ? opt->flags : 0;
	j->s.fn = fn;
	j->s.arg = arg;
	j->s.err = err;
	j->s.buf = "";
	j->s.line = 1;
	if ((*ret = compile(opt, &j->doc, &j->fields, err)) < 0) {
		free(j);
		return NULL;
	}
	j->s.doc = j->doc;
	/* A projection whose fields include "" (the item itself) is no projection. */
	j->s.fields = j->fields ? build_node(j->fields) : NULL;
	j->s.extras = json_object();
	j->s.h = yajl_alloc(&callbacks, NULL, &j->s);
	if (!j->s.extras || !j->s.h) {
		*ret = error_set(err, ENOMEM, "out of memory");
		json_stream_free(j);
		return NULL;
	}
	yajl_config(j->s.h, yajl_allow_comments, 0);
	yajl_config(j->s.h, yajl_dont_validate_strings, 0);
	yajl_config(j->s.h, yajl_allow_trailing_garbage, 0);
	yajl_config(j->s.h, yajl_allow_multiple_values, 0);
	yajl_config(j->s.h, yajl_allow_partial_values, 0);
	*ret = 0;
	return j;
}

struct json_stream *json_stream_new(const char *what, const struct json_stream_options *opt,
				    json_stream_item_fn fn, void *arg, struct error *err)
{
	int ret;

	return stream_new(what, opt, fn, arg, &ret, err);
}

/* yajl's status after a parse call, as the return value. */
static int parse_status(struct json_stream *j, yajl_status st)
{
	struct state *s = &j->s;

	if (st == yajl_status_ok)
		return 0;
	if (st == yajl_status_client_canceled) {
		/* Every callback that stops the parse says why; be safe all the same. */
		return s->ret ? s->ret : error_set(s->err, EIO, "%s: parse stopped", s->what);
	}
	{
		unsigned char *msg = yajl_get_error(s->h, 0, NULL, 0);
		char text[160] = "malformed";
		size_t n;

		if (msg) {
			snprintf(text, sizeof(text), "%s", (const char *)msg);
			yajl_free_error(s->h, msg);
		}
		n = strlen(text);
		while (n && (text[n - 1] == '\n' || text[n - 1] == ' ' || text[n - 1] == '.'))
			text[--n] = '\0';
		syntax_error(s, error_offset(s, text), text);
		return s->ret;
	}
}

/*
 * yajl takes an unterminated string after the value as input still to come ("[1]\"x"
 * passes): once the top-level value is closed, only white space may follow. (The top level
 * is a container, or the item path refused it.)
 */
static int check_trailing(struct state *s)
{
	if (!s->end)
		return 0;
	for (size_t i = s->end > s->base ? s->end - s->base : 0; i < s->len; i++) {
		if (s->buf[i] != ' ' && s->buf[i] != '\t' && s->buf[i] != '\n' &&
		    s->buf[i] != '\r') {
			syntax_error(s, s->base + i, "parse error: trailing garbage");
			return s->ret;
		}
	}
	return 0;
}

/* The line of the end of the chunk, for positions in the next one. */
static void advance(struct state *s)
{
	for (const char *p = s->buf, *nl; (nl = memchr(p, '\n', s->len - (size_t)(p - s->buf)));
	     p = nl + 1) {
		s->line++;
		s->line_start = s->base + (size_t)(nl + 1 - s->buf);
	}
	s->base += s->len;
	s->buf = "";
	s->len = 0;
}

int json_stream_feed(struct json_stream *j, const char *data, size_t len)
{
	struct state *s = &j->s;
	struct text_error te;
	int ret;

	if (j->done)
		return j->ret ? j->ret : -EINVAL;
	if (!len)
		return 0;
	s->buf = data;
	s->len = len;
	s->total += len;
	if (!j->text_checked &&
	    check_text(&j->tc, (const unsigned char *)data, len, s->base, &te) < 0) {
		syntax_error(s, te.offset, te.msg);
		ret = s->ret;
		goto done;
	}
	ret = parse_status(j, yajl_parse(s->h, (const unsigned char *)data, len));
	if (ret == 0)
		ret = check_trailing(s);
done:
	if (ret) {
		j->done = true;
		j->ret = ret;
		return ret;
	}
	advance(s);
	return 0;
}

int json_stream_finish(struct json_stream *j, json_t **extras)
{
	struct state *s = &j->s;
	struct text_error te;
	int ret;

	if (extras)
		*extras = NULL;
	if (j->done)
		return j->ret ? j->ret : -EINVAL;
	j->done = true;
	if (!j->text_checked && check_text_end(&j->tc, &te) < 0) {
		syntax_error(s, te.offset, te.msg);
		return j->ret = s->ret;
	}
	s->finishing = true;
	ret = parse_status(j, yajl_complete_parse(s->h));
	if (ret)
		return j->ret = ret;
	if (extras) {
		*extras = s->extras;
		s->extras = NULL;
	}
	return 0;
}

void json_stream_free(struct json_stream *j)
{
	struct state *s;

	if (!j)
		return;
	s = &j->s;
	if (s->h)
		yajl_free(s->h);
	while (s->n_frames)
		pop(s);
	for (size_t i = 0; i < s->cap_frames; i++)
		free(s->frames[i].key);
	free(s->frames);
	free(s->keys);
	json_decref(s->item);
	json_decref(s->extras);
	pnode_free(j->doc);
	pnode_free(j->fields);
	free(j);
}

int json_stream_parse(const char *buf, size_t len, const char *what,
		      const struct json_stream_options *opt, json_stream_item_fn fn, void *arg,
		      json_t **extras, struct error *err)
{
	struct text_check tc = {0};
	struct text_error te;
	struct json_stream *j;
	int ret;

	if (extras)
		*extras = NULL;
	j = stream_new(what, opt, fn, arg, &ret, err);
	if (!j)
		return ret;
	if (!buf)
		len = 0;
	/* The whole text is checked before any item is handed over. */
	j->text_checked = true;
	if (check_text(&tc, (const unsigned char *)(buf ? buf : ""), len, 0, &te) < 0 ||
	    check_text_end(&tc, &te) < 0) {
		j->s.buf = buf;
		j->s.len = len;
		j->s.total = len;
		syntax_error(&j->s, te.offset, te.msg);
		ret = j->s.ret;
		goto cleanup;
	}
	ret = json_stream_feed(j, buf, len);
	if (ret == 0)
		ret = json_stream_finish(j, extras);
cleanup:
	json_stream_free(j);
	return ret;
}
