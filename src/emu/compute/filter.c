/* SPDX-License-Identifier: Apache-2.0 */
/*
 * List filters, as documented for every Compute list method
 * (https://cloud.google.com/compute/docs/reference/rest/v1/instances/list, "filter"):
 *   - regular-expression form: FIELD eq 'RE2' / FIELD ne 'RE2' (the whole value must match);
 *   - AIP-160 form: FIELD = | != | > | < | >= | <= | : VALUE, with AND, OR, NOT, parentheses;
 *     ":" matches a substring (or "*" wildcards), FIELD:* tests presence.
 * Several parenthesized expressions side by side are ANDed. Nested fields use dots
 * ("scheduling.automaticRestart", "labels.env"); a path through an array matches when any
 * element does. Regular expressions use POSIX ERE (RE2's syntax for the usual patterns).
 */
#include <errno.h>
#include <fnmatch.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"

enum node_kind { N_AND, N_OR, N_NOT, N_CMP };
enum cmp_op { OP_EQ, OP_NE, OP_RE_EQ, OP_RE_NE, OP_LT, OP_GT, OP_LE, OP_GE, OP_HAS };

struct filter {
	enum node_kind kind;
	struct filter *a, *b; /* AND/OR: both; NOT: a */
	enum cmp_op op;
	char *field;
	char *value;
	regex_t re;
	bool has_re;
};

#define MAX_DEPTH 32

struct parser {
	const char *s;
	size_t pos;
	char *err;
	size_t errlen;
	int depth;
};

void filter_free(struct filter *f)
{
	if (!f)
		return;
	filter_free(f->a);
	filter_free(f->b);
	free(f->field);
	free(f->value);
	if (f->has_re)
		regfree(&f->re);
	free(f);
}

static void skip_space(struct parser *p)
{
	while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n')
		p->pos++;
}

static int fail(struct parser *p, const char *what)
{
	snprintf(p->err, p->errlen, "%s at offset %zu", what, p->pos);
	return -EINVAL;
}

static bool is_word_char(char ch)
{
	return ch && !strchr(" \t\n()=!<>:\"'", ch);
}

/* A bare word or a quoted string (backslash escapes the quote). Returns malloc'd text. */
static int read_value(struct parser *p, char **out)
{
	char q = p->s[p->pos];
	size_t start, len = 0;
	char *buf;

	if (q == '"' || q == '\'') {
		p->pos++;
		buf = malloc(strlen(p->s + p->pos) + 1);
		if (!buf)
			return -ENOMEM;
		while (p->s[p->pos] && p->s[p->pos] != q) {
			if (p->s[p->pos] == '\\' && p->s[p->pos + 1] == q)
				p->pos++;
			buf[len++] = p->s[p->pos++];
		}
		if (!p->s[p->pos]) {
			free(buf);
			return fail(p, "unterminated string");
		}
		p->pos++;
		buf[len] = '\0';
		*out = buf;
		return 0;
	}
	start = p->pos;
	/* A value may contain ':' and '*' (timestamps, wildcards); it ends at space or ')'. */
	while (p->s[p->pos] && !strchr(" \t\n()", p->s[p->pos]))
		p->pos++;
	if (p->pos == start)
		return fail(p, "expected a value");
	*out = strndup(p->s + start, p->pos - start);
	return *out ? 0 : -ENOMEM;
}

static bool keyword(struct parser *p, const char *kw)
{
	size_t n = strlen(kw);

	if (strncmp(p->s + p->pos, kw, n) == 0 && !is_word_char(p->s[p->pos + n]) &&
	    p->s[p->pos + n] != '(') {
		p->pos += n;
		return true;
	}
	if (strncmp(p->s + p->pos, kw, n) == 0 && p->s[p->pos + n] == '(') {
		p->pos += n;
		return true;
	}
	return false;
}

static int parse_expr(struct parser *p, struct filter **out);

/*
 * RE2 (what GCP evaluates filters with) runs in linear time and refuses "a++" or huge
 * counted repetitions; glibc's regcomp would build exponential automata for them. Refuse
 * what RE2 refuses, plus more than one counted repetition or a count over 100, so a filter
 * can never eat the emulator's memory.
 */
static bool re_acceptable(const char *re)
{
	bool after_quant = false;
	int bounds = 0;

	if (strlen(re) > 1024)
		return false;
	for (const char *p = re; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			after_quant = false;
			continue;
		}
		if (*p == '*' || *p == '+' || *p == '?') {
			if (after_quant)
				return false;
			after_quant = true;
			continue;
		}
		if (*p == '{') {
			char *end;
			long lo = strtol(p + 1, &end, 10), hi = lo;

			if (end == p + 1)
				return false;
			if (*end == ',') {
				hi = end[1] == '}' ? lo : strtol(end + 1, &end, 10);
				if (end[0] == ',')
					end++;
			}
			if (*end != '}' || after_quant || lo > 100 || hi > 100 || ++bounds > 1)
				return false;
			p = end;
			after_quant = true;
			continue;
		}
		after_quant = false;
	}
	return true;
}

static int parse_cmp(struct parser *p, struct filter **out)
{
	struct filter *f = calloc(1, sizeof(*f));
	size_t start = p->pos;
	int ret;

	if (!f)
		return -ENOMEM;
	f->kind = N_CMP;
	while (is_word_char(p->s[p->pos]))
		p->pos++;
	if (p->pos == start) {
		free(f);
		return fail(p, "expected a field name");
	}
	f->field = strndup(p->s + start, p->pos - start);
	skip_space(p);
	if (strncmp(p->s + p->pos, "!=", 2) == 0) {
		f->op = OP_NE;
		p->pos += 2;
	} else if (strncmp(p->s + p->pos, "<=", 2) == 0) {
		f->op = OP_LE;
		p->pos += 2;
	} else if (strncmp(p->s + p->pos, ">=", 2) == 0) {
		f->op = OP_GE;
		p->pos += 2;
	} else if (p->s[p->pos] == '=') {
		f->op = OP_EQ;
		p->pos++;
	} else if (p->s[p->pos] == '<') {
		f->op = OP_LT;
		p->pos++;
	} else if (p->s[p->pos] == '>') {
		f->op = OP_GT;
		p->pos++;
	} else if (p->s[p->pos] == ':') {
		f->op = OP_HAS;
		p->pos++;
	} else if (keyword(p, "eq")) {
		f->op = OP_RE_EQ;
	} else if (keyword(p, "ne")) {
		f->op = OP_RE_NE;
	} else {
		filter_free(f);
		return fail(p, "expected an operator (=, !=, <, >, <=, >=, :, eq, ne)");
	}
	skip_space(p);
	ret = read_value(p, &f->value);
	if (ret < 0 || !f->field) {
		filter_free(f);
		return ret < 0 ? ret : -ENOMEM;
	}
	if (f->op == OP_RE_EQ || f->op == OP_RE_NE) {
		char *pat;

		if (!re_acceptable(f->value)) {
			filter_free(f);
			return fail(
			    p,
			    "unsupported regular expression (repeated repetition operators or large bounds)");
		}
		pat = str_printf("^(%s)$", f->value);

		if (!pat || regcomp(&f->re, pat, REG_EXTENDED | REG_NOSUB) != 0) {
			free(pat);
			filter_free(f);
			return fail(p, "invalid regular expression");
		}
		free(pat);
		f->has_re = true;
	}
	*out = f;
	return 0;
}

static int parse_term(struct parser *p, struct filter **out)
{
	struct filter *f;
	int ret;

	skip_space(p);
	if (++p->depth > MAX_DEPTH)
		return fail(p, "expression nested too deeply");
	if (keyword(p, "NOT") || p->s[p->pos] == '-') {
		if (p->s[p->pos] == '-')
			p->pos++;
		f = calloc(1, sizeof(*f));
		if (!f)
			return -ENOMEM;
		f->kind = N_NOT;
		ret = parse_term(p, &f->a);
		if (ret < 0) {
			filter_free(f);
			return ret;
		}
		*out = f;
	} else if (p->s[p->pos] == '(') {
		p->pos++;
		ret = parse_expr(p, out);
		if (ret < 0)
			return ret;
		skip_space(p);
		if (p->s[p->pos] != ')') {
			filter_free(*out);
			*out = NULL;
			return fail(p, "expected ')'");
		}
		p->pos++;
	} else {
		ret = parse_cmp(p, out);
		if (ret < 0)
			return ret;
	}
	p->depth--;
	return 0;
}

static struct filter *join(enum node_kind kind, struct filter *a, struct filter *b)
{
	struct filter *f = calloc(1, sizeof(*f));

	if (!f) {
		filter_free(a);
		filter_free(b);
		return NULL;
	}
	f->kind = kind;
	f->a = a;
	f->b = b;
	return f;
}

/* or_expr := term (OR term)* ; AIP-160 gives OR the higher precedence. */
static int parse_or(struct parser *p, struct filter **out)
{
	struct filter *f = NULL, *t;
	int ret = parse_term(p, &f);

	if (ret < 0)
		return ret;
	for (;;) {
		skip_space(p);
		if (!keyword(p, "OR"))
			break;
		ret = parse_term(p, &t);
		if (ret < 0) {
			filter_free(f);
			return ret;
		}
		f = join(N_OR, f, t);
		if (!f)
			return -ENOMEM;
	}
	*out = f;
	return 0;
}

/* expr := or_expr ((AND)? or_expr)* */
static int parse_expr(struct parser *p, struct filter **out)
{
	struct filter *f = NULL, *t;
	int ret = parse_or(p, &f);

	if (ret < 0)
		return ret;
	for (;;) {
		skip_space(p);
		if (!p->s[p->pos] || p->s[p->pos] == ')')
			break;
		keyword(p, "AND");
		ret = parse_or(p, &t);
		if (ret < 0) {
			filter_free(f);
			return ret;
		}
		f = join(N_AND, f, t);
		if (!f)
			return -ENOMEM;
	}
	*out = f;
	return 0;
}

int filter_parse(const char *text, struct filter **out, char *err, size_t errlen)
{
	struct parser p = {.s = text, .err = err, .errlen = errlen};
	struct filter *f = NULL;
	int ret;

	*out = NULL;
	ret = parse_expr(&p, &f);
	if (ret < 0)
		return ret;
	skip_space(&p);
	if (p.s[p.pos]) {
		filter_free(f);
		return fail(&p, "unexpected ')'");
	}
	*out = f;
	return 0;
}

/* ---- evaluation ---- */

static bool cmp_text(const struct filter *f, const char *v)
{
	char *end1, *end2;
	double a, b;
	int r;

	switch (f->op) {
	case OP_RE_EQ:
		return regexec(&f->re, v, 0, NULL, 0) == 0;
	case OP_RE_NE:
		return regexec(&f->re, v, 0, NULL, 0) != 0;
	case OP_EQ:
		return strchr(f->value, '*') ? fnmatch(f->value, v, 0) == 0
					     : strcmp(f->value, v) == 0;
	case OP_NE:
		return strchr(f->value, '*') ? fnmatch(f->value, v, 0) != 0
					     : strcmp(f->value, v) != 0;
	case OP_HAS:
		if (strcmp(f->value, "*") == 0)
			return true;
		if (strchr(f->value, '*'))
			return fnmatch(f->value, v, 0) == 0;
		return strstr(v, f->value) != NULL;
	default:
		break;
	}
	a = strtod(v, &end1);
	b = strtod(f->value, &end2);
	if (*v && *f->value && !*end1 && !*end2)
		r = a < b ? -1 : a > b;
	else
		r = strcmp(v, f->value);
	switch (f->op) {
	case OP_LT:
		return r < 0;
	case OP_GT:
		return r > 0;
	case OP_LE:
		return r <= 0;
	default:
		return r >= 0;
	}
}

static bool match_value(const struct filter *f, const json_t *v)
{
	char buf[64];

	switch (json_typeof(v)) {
	case JSON_STRING:
		return cmp_text(f, json_string_value(v));
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return cmp_text(f, buf);
	case JSON_REAL:
		snprintf(buf, sizeof(buf), "%g", json_real_value(v));
		return cmp_text(f, buf);
	case JSON_TRUE:
		return cmp_text(f, "true");
	case JSON_FALSE:
		return cmp_text(f, "false");
	default:
		/* An object or array at the end of the path: only presence (":*") matches. */
		return f->op == OP_HAS && strcmp(f->value, "*") == 0;
	}
}

/* Any value reached through path (arrays fan out) satisfies f. */
static bool match_path(const struct filter *f, const json_t *v, const char *path)
{
	const char *dot;
	char key[128];
	size_t i;
	json_t *e;

	if (json_is_array(v)) {
		json_array_foreach(v, i, e) if (match_path(f, e, path)) return true;
		return false;
	}
	if (!*path)
		return match_value(f, v);
	if (!json_is_object(v))
		return false;
	dot = strchr(path, '.');
	i = dot ? (size_t)(dot - path) : strlen(path);
	if (i >= sizeof(key))
		return false;
	memcpy(key, path, i);
	key[i] = '\0';
	e = json_object_get(v, key);
	if (!e)
		return false;
	return match_path(f, e, dot ? dot + 1 : "");
}

bool filter_match(const struct filter *f, const json_t *res)
{
	switch (f->kind) {
	case N_AND:
		return filter_match(f->a, res) && filter_match(f->b, res);
	case N_OR:
		return filter_match(f->a, res) || filter_match(f->b, res);
	case N_NOT:
		return !filter_match(f->a, res);
	case N_CMP:
		/* ne / != on an absent field: nothing equals, so it matches. */
		if (f->op == OP_RE_NE || f->op == OP_NE) {
			struct filter pos = *f;

			pos.op = f->op == OP_RE_NE ? OP_RE_EQ : OP_EQ;
			return !match_path(&pos, res, f->field);
		}
		return match_path(f, res, f->field);
	}
	return false;
}
