/* SPDX-License-Identifier: Apache-2.0 */
/*
 * List filters, as documented for every Compute list method
 * (https://cloud.google.com/compute/docs/reference/rest/v1/instances/list, "filter"):
 *   - regular-expression form: FIELD eq RE2 / FIELD ne RE2, the value unquoted (with its
 *     parentheses and alternation: name eq (a|b)) or in single or double quotes; the whole
 *     field must match;
 *   - AIP-160 form: FIELD = | != | > | < | >= | <= | : VALUE, with AND, OR, NOT, parentheses;
 *     ":" matches a substring (or "*" wildcards), FIELD:* tests presence.
 * Several parenthesized expressions side by side are ANDed. Nested fields use dots
 * ("scheduling.automaticRestart", "labels.env"); a path through an array matches when any
 * element does. Regular expressions are RE2, translated to POSIX ERE for glibc (below).
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

/*
 * The unquoted value of eq / ne: "a single un-parenthesized expression with or without
 * quotes" whose RE2 may hold parentheses and alternation ("name eq (a|b)"). It ends at white
 * space or at a ')' that closes a group of the filter (one the value did not open); escapes
 * and classes are skipped whole, so "\)" and "[)]" belong to it.
 */
static int read_unquoted_re(struct parser *p, char **out)
{
	size_t start = p->pos;
	int depth = 0;

	while (p->s[p->pos] && !strchr(" \t\n", p->s[p->pos])) {
		char ch = p->s[p->pos];

		if (ch == '\\' && p->s[p->pos + 1]) {
			p->pos += 2;
			continue;
		}
		if (ch == '[') {
			size_t q = p->pos + 1;

			if (p->s[q] == '^')
				q++;
			if (p->s[q] == ']')
				q++;
			while (p->s[q] && p->s[q] != ']') {
				if (p->s[q] == '\\' && p->s[q + 1])
					q++;
				else if (p->s[q] == '[' && p->s[q + 1] == ':' &&
					 strstr(p->s + q, ":]"))
					q = (size_t)(strstr(p->s + q, ":]") - p->s) + 1;
				q++;
			}
			if (!p->s[q])
				return fail(p, "unterminated character class");
			p->pos = q + 1;
			continue;
		}
		if (ch == '(')
			depth++;
		if (ch == ')' && depth-- == 0)
			break;
		p->pos++;
	}
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
 * RE2 (what GCP evaluates filters with, https://github.com/google/re2/wiki/Syntax) to the
 * POSIX ERE glibc's regcomp compiles. What RE2 accepts and names can contain is translated:
 * \d \D \w \W \s \S (also inside classes), \b \B (glibc has them), \A \z, \t \n \r \f \v \a,
 * \xHH, \x{H..}, \Q...\E, escaped punctuation, (?:...), named groups (?P<n>...) (?<n>...),
 * a leading (?flags) (i: case-insensitive; s, m, U change nothing a single-line name can
 * show), non-greedy quantifiers (the same matches), a '{' that starts no repetition (literal
 * in RE2), and classes with escapes (rebuilt in POSIX order: ']' first, '-' last). What RE2
 * refuses is refused (a repeated quantifier "a**", a backreference, look-around), and so is
 * what this translation does not cover (\p{...}, \C, flags inside the pattern). As glibc would
 * build exponential automata for nested counted repetitions, at most one counted repetition
 * with bounds up to 100 is allowed, so a filter can never eat the emulator's memory.
 */
struct re_out {
	char *buf;
	size_t len, cap;
};

static int out_putn(struct re_out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		size_t ncap = o->cap ? o->cap * 2 : 64;
		char *nb;

		while (ncap < o->len + n + 1)
			ncap *= 2;
		nb = realloc(o->buf, ncap);
		if (!nb)
			return -ENOMEM;
		o->buf = nb;
		o->cap = ncap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
	return 0;
}

static int out_puts(struct re_out *o, const char *s)
{
	return out_putn(o, s, strlen(s));
}

/* One literal byte, escaped when ERE gives it a meaning. */
static int out_literal(struct re_out *o, unsigned char ch)
{
	char buf[3] = {'\\', (char)ch, 0};

	if (ch == 0)
		return -EINVAL;
	return strchr(".[]()*+?{}|^$\\", ch) ? out_putn(o, buf, 2) : out_putn(o, buf + 1, 1);
}

/* A code point as UTF-8, each byte literal. */
static int out_codepoint(struct re_out *o, unsigned long cp)
{
	unsigned char b[4];
	size_t n;

	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -EINVAL;
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	for (size_t i = 0; i < n; i++)
		if (out_literal(o, b[i]) < 0)
			return -ENOMEM;
	return 0;
}

/* \x41 or \x{41}: *p at 'x'; advances past the escape. */
static int hex_escape(const char **p, unsigned long *cp)
{
	const char *s = *p + 1;
	char *end;

	if (*s == '{') {
		*cp = strtoul(s + 1, &end, 16);
		if (end == s + 1 || *end != '}' || end - s > 9)
			return -EINVAL;
		*p = end;
		return 0;
	}
	if (!strchr("0123456789abcdefABCDEF", s[0]) || !s[0] ||
	    !strchr("0123456789abcdefABCDEF", s[1]) || !s[1])
		return -EINVAL;
	*cp = strtoul((char[]){s[0], s[1], 0}, NULL, 16);
	*p = s + 1;
	return 0;
}

static int control_escape(char ch)
{
	switch (ch) {
	case 't':
		return '\t';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 'f':
		return '\f';
	case 'v':
		return '\v';
	case 'a':
		return '\a';
	default:
		return -1;
	}
}

/*
 * One member of a class after a backslash (*s past it; advanced past the escape): a literal
 * byte, or -1 (unsupported). \x escapes stay below 0x80: a class is a set of bytes here.
 */
static int class_escape(const char **s)
{
	unsigned long cp;
	char ch = **s;

	if (ch == 'x')
		return hex_escape(s, &cp) == 0 && cp > 0 && cp < 0x80 ? (int)cp : -1;
	if (control_escape(ch) >= 0)
		return control_escape(ch);
	return ch && strchr("\\]-^[.$*+?(){}|/", ch) ? (unsigned char)ch : -1;
}

/*
 * A class "[...]", *p at '['; *p ends at its ']'. Members are collected as a set of bytes and
 * POSIX named classes, then written in POSIX order: ']' first, '-' last, '^' never first.
 * Multi-byte characters go in as their bytes (names and values here are ASCII).
 */
static int translate_class(const char **p, struct re_out *o)
{
	static const char *const named[] = {"alnum", "alpha",  "blank", "cntrl", "digit",
					    "graph", "lower",  "print", "punct", "space",
					    "upper", "xdigit", NULL};
	const char *s = *p + 1;
	bool neg = false, set[256] = {false}, first = true, any = false;
	struct re_out names = {0};
	int ret = -EINVAL;

	if (*s == '^') {
		neg = true;
		s++;
	}
	for (;; first = false) {
		int lo, hi;

		if (!*s)
			goto cleanup;
		if (*s == ']' && !first)
			break;
		if (s[0] == '[' && s[1] == ':') {
			const char *end = strstr(s + 2, ":]");
			size_t n = end ? (size_t)(end - s - 2) : 0, i;

			if (!end)
				goto cleanup;
			if (n == 4 && strncmp(s + 2, "word", 4) == 0) {
				if (out_puts(&names, "[:alnum:]") < 0)
					goto oom;
				set['_'] = true;
			} else {
				for (i = 0; named[i]; i++)
					if (strlen(named[i]) == n &&
					    strncmp(s + 2, named[i], n) == 0)
						break;
				if (!named[i] || out_putn(&names, s, n + 4) < 0)
					goto cleanup;
			}
			any = true;
			s = end + 2;
			continue;
		}
		if (*s == '\\' && (s[1] == 'd' || s[1] == 'w' || s[1] == 's')) {
			if (out_puts(&names, s[1] == 'd'   ? "[:digit:]"
					     : s[1] == 'w' ? "[:alnum:]"
							   : "[:space:]") < 0)
				goto oom;
			if (s[1] == 'w')
				set['_'] = true;
			any = true;
			s += 2;
			continue;
		}
		if (*s == '\\') {
			s++;
			lo = class_escape(&s);
		} else {
			lo = (unsigned char)*s;
		}
		if (lo < 0)
			goto cleanup; /* \D \W \S \p and the like inside a class */
		s++;
		hi = lo;
		if (s[0] == '-' && s[1] && s[1] != ']') {
			s++;
			if (*s == '\\') {
				s++;
				hi = class_escape(&s);
			} else {
				hi = (unsigned char)*s;
			}
			s++;
			if (hi < lo)
				goto cleanup;
		}
		for (int ch = lo; ch <= hi; ch++)
			set[ch] = true;
		any = true;
	}
	if (!any)
		goto cleanup;
	/* Exactly "^" (not negated) cannot be written as a bracket: it is a literal. */
	if (!neg && !names.len && set['^']) {
		int n = 0;

		for (int ch = 1; ch < 256; ch++)
			n += set[ch];
		if (n == 1) {
			ret = out_puts(o, "\\^");
			goto done;
		}
	}
	if (out_puts(o, neg ? "[^" : "[") < 0 || (set[']'] && out_puts(o, "]") < 0))
		goto oom;
	for (int ch = 1; ch < 256;) {
		int end = ch;

		if (!set[ch] || ch == ']' || ch == '-' || ch == '^') {
			ch++;
			continue;
		}
		while (end + 1 < 256 && set[end + 1] && end + 1 != ']' && end + 1 != '-' &&
		       end + 1 != '^')
			end++;
		if (out_putn(o, (char[]){(char)ch}, 1) < 0 ||
		    (end > ch && (out_puts(o, "-") < 0 || out_putn(o, (char[]){(char)end}, 1) < 0)))
			goto oom;
		ch = end + 1;
	}
	if (names.len && out_putn(o, names.buf, names.len) < 0)
		goto oom;
	/* '^' may follow anything; with nothing before it, a leading '-' shields it. */
	if (set['^'] && o->buf[o->len - 1] == '[') {
		if (out_puts(o, set['-'] ? "-^]" : "^]") < 0)
			goto oom;
		ret = 0;
		goto done;
	}
	if ((set['^'] && out_puts(o, "^") < 0) || (set['-'] && out_puts(o, "-") < 0) ||
	    out_puts(o, "]") < 0)
		goto oom;
	ret = 0;
done:
	*p = s;
	goto cleanup;
oom:
	ret = -ENOMEM;
cleanup:
	free(names.buf);
	return ret;
}

/* A counted repetition "{n}", "{n,}", "{n,m}" at p; its end in *end, or false (a literal). */
static bool repetition(const char *p, const char **end, long *lo, long *hi)
{
	char *e;

	if (p[1] < '0' || p[1] > '9')
		return false;
	*lo = strtol(p + 1, &e, 10);
	*hi = *lo;
	if (*e == ',') {
		if (e[1] == '}') {
			*hi = -1;
			e++;
		} else if (e[1] >= '0' && e[1] <= '9') {
			*hi = strtol(e + 1, &e, 10);
		} else {
			return false;
		}
	}
	if (*e != '}')
		return false;
	*end = e;
	return true;
}

static int re2_translate(const char *re, char **out, bool *icase, const char **why)
{
	struct re_out o = {0};
	const char *p = re;
	bool after_atom = false, after_quant = false;
	int bounds = 0, ret = -EINVAL;

	*icase = false;
	*why = "invalid regular expression";
	if (strlen(re) > 1024) {
		*why = "regular expression longer than 1024 characters";
		return -EINVAL;
	}
	if (strncmp(p, "(?", 2) == 0 && strchr(p, ')') &&
	    strspn(p + 2, "imsU") == (size_t)(strchr(p, ')') - p - 2) && p[2] != ')') {
		*icase = memchr(p + 2, 'i', (size_t)(strchr(p, ')') - p - 2)) != NULL;
		p = strchr(p, ')') + 1;
	}
	if (out_puts(&o, "") < 0)
		return -ENOMEM;
	for (; *p; p++) {
		const char *end = p;
		long lo = 0, hi = 0;

		if (*p == '*' || *p == '+' || *p == '?' ||
		    (*p == '{' && repetition(p, &end, &lo, &hi))) {
			if (!after_atom) {
				*why = "missing argument to repetition operator";
				goto cleanup;
			}
			if (after_quant) {
				/* "a*?" is non-greedy: the same matches. "a**" is RE2's error. */
				if (*p == '?') {
					after_quant = false;
					after_atom = false;
					continue;
				}
				*why = "bad repetition operator";
				goto cleanup;
			}
			if (*p == '{') {
				if (lo > 100 || hi > 100 || (hi >= 0 && hi < lo) || ++bounds > 1) {
					*why =
					    "unsupported repetition (one counted repetition, bounds up to 100)";
					goto cleanup;
				}
				if (out_putn(&o, p, (size_t)(end + 1 - p)) < 0)
					goto oom;
				p = end;
			} else if (out_putn(&o, p, 1) < 0) {
				goto oom;
			}
			after_quant = true;
			continue;
		}
		after_quant = false;
		after_atom = true;
		if (*p == '[') {
			ret = translate_class(&p, &o);
			if (ret == -ENOMEM)
				goto oom;
			if (ret < 0) {
				*why = "invalid or unsupported character class";
				goto cleanup;
			}
			ret = -EINVAL;
			continue;
		}
		if (*p == '(') {
			after_atom = false;
			if (p[1] == '?') {
				if (p[2] == ':')
					p += 2;
				else if (p[2] == 'P' && p[3] == '<' && strchr(p + 4, '>'))
					p = strchr(p + 4, '>');
				else if (p[2] == '<' && p[3] != '=' && p[3] != '!' &&
					 strchr(p + 3, '>'))
					p = strchr(p + 3, '>');
				else {
					*why =
					    "unsupported group (look-around, or flags inside the pattern)";
					goto cleanup;
				}
			}
			if (out_puts(&o, "(") < 0)
				goto oom;
			continue;
		}
		if (*p == '|') {
			after_atom = false;
			if (out_puts(&o, "|") < 0)
				goto oom;
			continue;
		}
		if (*p == ')' || *p == '.' || *p == '^' || *p == '$') {
			if (*p == '^' || *p == '$')
				after_atom = false;
			if (out_putn(&o, p, 1) < 0)
				goto oom;
			continue;
		}
		if (*p == '{' || *p == '}' || *p == ']') {
			if (out_literal(&o, (unsigned char)*p) < 0)
				goto oom;
			continue;
		}
		if (*p != '\\') {
			if (out_putn(&o, p, 1) < 0)
				goto oom;
			continue;
		}
		p++;
		switch (*p) {
		case 'd':
		case 'D':
			ret = out_puts(&o, *p == 'd' ? "[0-9]" : "[^0-9]");
			break;
		case 'w':
		case 'W':
			ret = out_puts(&o, *p == 'w' ? "[[:alnum:]_]" : "[^[:alnum:]_]");
			break;
		case 's':
		case 'S':
			ret = out_puts(&o, *p == 's' ? "[[:space:]]" : "[^[:space:]]");
			break;
		case 'b':
		case 'B':
			after_atom = false;
			ret = out_putn(&o, p - 1, 2);
			break;
		case 'A':
		case 'z':
			after_atom = false;
			ret = out_puts(&o, *p == 'A' ? "^" : "$");
			break;
		case 'x': {
			unsigned long cp;

			if (hex_escape(&p, &cp) < 0 || out_codepoint(&o, cp) < 0) {
				*why = "invalid escape sequence";
				goto cleanup;
			}
			ret = 0;
			break;
		}
		case 'Q': {
			const char *e = strstr(p + 1, "\\E");
			const char *stop = e ? e : p + 1 + strlen(p + 1);

			for (const char *q = p + 1; q < stop; q++)
				if (out_literal(&o, (unsigned char)*q) < 0)
					goto oom;
			p = e ? e + 1 : stop - 1;
			ret = 0;
			break;
		}
		default:
			if (control_escape(*p) >= 0) {
				ret = out_literal(&o, (unsigned char)control_escape(*p));
			} else if (*p && strchr("\\.+*?()|[]{}^$-#&~\"'/ :;,<>=!@%`", *p)) {
				ret = out_literal(&o, (unsigned char)*p);
			} else {
				*why = *p >= '0' && *p <= '9'
					   ? "backreferences are not RE2"
					   : "invalid or unsupported escape sequence";
				goto cleanup;
			}
		}
		if (ret < 0)
			goto oom;
	}
	*out = o.buf;
	return 0;
oom:
	ret = -ENOMEM;
cleanup:
	free(o.buf);
	return ret;
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
	if ((f->op == OP_RE_EQ || f->op == OP_RE_NE) && p->s[p->pos] != '"' && p->s[p->pos] != '\'')
		ret = read_unquoted_re(p, &f->value);
	else
		ret = read_value(p, &f->value);
	if (ret < 0 || !f->field) {
		filter_free(f);
		return ret < 0 ? ret : -ENOMEM;
	}
	if (f->op == OP_RE_EQ || f->op == OP_RE_NE) {
		const char *why;
		char *ere = NULL, *pat;
		bool icase;

		ret = re2_translate(f->value, &ere, &icase, &why);
		if (ret < 0) {
			filter_free(f);
			return ret == -ENOMEM ? ret : fail(p, why);
		}
		/* "The literal value must match the entire field." */
		pat = str_printf("^(%s)$", ere);
		free(ere);
		if (!pat ||
		    regcomp(&f->re, pat, REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0)) != 0) {
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

/* ---- name bounds (list slices) ---- */

static void tighten_lo(struct name_range *r, const char *v, bool incl)
{
	int c = r->lo ? strcmp(v, r->lo) : 1;

	if (c > 0 || (c == 0 && !incl)) {
		r->lo = v;
		r->lo_incl = incl;
	}
}

static void tighten_hi(struct name_range *r, const char *v, bool incl)
{
	int c = r->hi ? strcmp(v, r->hi) : -1;

	if (c < 0 || (c == 0 && !incl)) {
		r->hi = v;
		r->hi_incl = incl;
	}
}

static void name_bounds(const struct filter *f, struct name_range *r)
{
	if (f->kind == N_AND) {
		name_bounds(f->a, r);
		name_bounds(f->b, r);
		return;
	}
	/*
	 * Only plain comparisons on the name itself. Names are RFC 1035 ([a-z][-a-z0-9]*),
	 * never numbers, so cmp_text orders them with strcmp, as the collection is sorted.
	 */
	char *end;

	if (f->kind != N_CMP || strcmp(f->field, "name") != 0 || !f->value || !*f->value)
		return;
	/* A numeric value would make cmp_text compare numerically ("inf" is a valid name). */
	(void)strtod(f->value, &end);
	if (!*end)
		return;
	switch (f->op) {
	case OP_EQ:
		if (strchr(f->value, '*'))
			return;
		tighten_lo(r, f->value, true);
		tighten_hi(r, f->value, true);
		break;
	case OP_LT:
		tighten_hi(r, f->value, false);
		break;
	case OP_LE:
		tighten_hi(r, f->value, true);
		break;
	case OP_GT:
		tighten_lo(r, f->value, false);
		break;
	case OP_GE:
		tighten_lo(r, f->value, true);
		break;
	default:
		break;
	}
}

void filter_name_range(const struct filter *f, struct name_range *r)
{
	*r = (struct name_range){0};
	if (f)
		name_bounds(f, r);
}
