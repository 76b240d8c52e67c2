/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compute replies, serialized by a small writer instead of json_dumps(): a page of 500
 * instances is close to a megabyte, and jansson's dumper (a callback per token, a UTF-8
 * check per character) spent most of a list request's time there. The text is what
 * jansson's JSON_COMPACT would write: the same member order, the same escapes (strings in a
 * json_t are valid UTF-8 already, so only '"', '\\' and control characters need escaping),
 * reals with 17 significant digits and a ".0" when they look like integers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"

struct out {
	char *p;
	size_t len, cap;
	bool failed;
};

static bool reserve(struct out *o, size_t n)
{
	if (o->failed)
		return false;
	if (o->len + n > o->cap) {
		size_t ncap = o->cap ? o->cap : 4096;
		char *np;

		while (ncap < o->len + n)
			ncap *= 2;
		np = realloc(o->p, ncap);
		if (!np) {
			o->failed = true;
			return false;
		}
		o->p = np;
		o->cap = ncap;
	}
	return true;
}

static void put(struct out *o, const char *s, size_t n)
{
	if (!reserve(o, n))
		return;
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void putc1(struct out *o, char ch)
{
	if (!reserve(o, 1))
		return;
	o->p[o->len++] = ch;
}

static void put_string(struct out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF"; /* jansson writes \u001F */
	size_t i = 0, run;

	putc1(o, '"');
	while (i < n) {
		unsigned char ch;

		for (run = i; run < n; run++) {
			ch = (unsigned char)s[run];
			if (ch < 0x20 || ch == '"' || ch == '\\')
				break;
		}
		put(o, s + i, run - i);
		if (run == n)
			break;
		ch = (unsigned char)s[run];
		switch (ch) {
		case '"':
			put(o, "\\\"", 2);
			break;
		case '\\':
			put(o, "\\\\", 2);
			break;
		case '\b':
			put(o, "\\b", 2);
			break;
		case '\f':
			put(o, "\\f", 2);
			break;
		case '\n':
			put(o, "\\n", 2);
			break;
		case '\r':
			put(o, "\\r", 2);
			break;
		case '\t':
			put(o, "\\t", 2);
			break;
		default: {
			char u[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};

			put(o, u, 6);
		}
		}
		i = run + 1;
	}
	putc1(o, '"');
}

/* As jansson's jsonp_dtostr: %.17g, a ".0" if it looks like an integer, "e+07" -> "e7". */
static int put_real(char *buf, size_t size, double value)
{
	int n = snprintf(buf, size, "%.17g", value);
	char *e, *from, *to;

	if (n <= 0 || (size_t)n >= size - 3)
		return n > 0 ? (int)size - 1 : 0;
	if (!strchr(buf, '.') && !strchr(buf, 'e')) {
		buf[n++] = '.';
		buf[n++] = '0';
		buf[n] = '\0';
	}
	e = strchr(buf, 'e');
	if (e) {
		from = to = e + 1;
		if (*from == '-')
			from = ++to;
		else if (*from == '+')
			from++;
		while (*from == '0' && from[1])
			from++;
		memmove(to, from, strlen(from) + 1);
		n = (int)strlen(buf);
	}
	return n;
}

static void put_value(struct out *o, const json_t *v, int depth)
{
	char buf[40];
	int n;

	if (depth > 2048) { /* jansson's own nesting limit is far below this */
		o->failed = true;
		return;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		bool first = true;
		void *it;

		putc1(o, '{');
		for (it = json_object_iter((json_t *)v); it;
		     it = json_object_iter_next((json_t *)v, it)) {
			key = json_object_iter_key(it);
			if (!first)
				putc1(o, ',');
			first = false;
			put_string(o, key, json_object_iter_key_len(it));
			putc1(o, ':');
			put_value(o, json_object_iter_value(it), depth + 1);
		}
		putc1(o, '}');
		break;
	}
	case JSON_ARRAY: {
		size_t len = json_array_size(v);

		putc1(o, '[');
		for (size_t i = 0; i < len; i++) {
			if (i)
				putc1(o, ',');
			put_value(o, json_array_get(v, i), depth + 1);
		}
		putc1(o, ']');
		break;
	}
	case JSON_STRING:
		put_string(o, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		n = snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		put(o, buf, (size_t)n);
		break;
	case JSON_REAL:
		n = put_real(buf, sizeof(buf), json_real_value(v));
		put(o, buf, (size_t)n);
		break;
	case JSON_TRUE:
		put(o, "true", 4);
		break;
	case JSON_FALSE:
		put(o, "false", 5);
		break;
	case JSON_NULL:
		put(o, "null", 4);
		break;
	}
}

char *compute_json_text(const json_t *v, size_t *len)
{
	struct out o = {0};

	put_value(&o, v, 0);
	if (o.failed) {
		free(o.p);
		return NULL;
	}
	*len = o.len;
	return o.p;
}

/*
 * Partial responses: the standard "fields" parameter, "a,b/c,d(e,f)" with "*" for any key
 * (https://cloud.google.com/compute/docs/api/how-tos/performance), so a
 * client can list 5,000 instances asking only for what it reads.
 */
struct sel {
	char *name;
	struct sel *children, *next; /* children NULL: the whole value */
	bool all;                    /* "a" itself was selected: its whole value */
};

static void sel_free(struct sel *s)
{
	while (s) {
		struct sel *next = s->next;

		sel_free(s->children);
		free(s->name);
		free(s);
		s = next;
	}
}

static struct sel *sel_child(struct sel **list, const char *name, size_t n)
{
	struct sel *s;

	for (s = *list; s; s = s->next)
		if (strlen(s->name) == n && strncmp(s->name, name, n) == 0)
			return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->name = strndup(name, n);
	if (!s->name) {
		free(s);
		return NULL;
	}
	s->next = *list;
	*list = s;
	return s;
}

/* list := item (',' item)* ; item := name ('/' name)* ['(' list ')'] */
static int sel_parse(const char **p, struct sel **list, int depth)
{
	if (depth > 16)
		return -EINVAL;
	for (;;) {
		struct sel **at = list, *node = NULL;

		for (;;) {
			const char *start = *p;

			while (**p && !strchr(",/()", **p))
				(*p)++;
			if (*p == start)
				return -EINVAL;
			node = sel_child(at, start, (size_t)(*p - start));
			if (!node)
				return -ENOMEM;
			if (**p != '/')
				break;
			(*p)++;
			at = &node->children;
		}
		if (**p == '(') {
			int ret;

			(*p)++;
			ret = sel_parse(p, &node->children, depth + 1);
			if (ret < 0)
				return ret;
			if (**p != ')')
				return -EINVAL;
			(*p)++;
		} else {
			node->all = true;
		}
		if (**p != ',')
			return 0;
		(*p)++;
	}
}

static json_t *sel_apply(const struct sel *list, json_t *v)
{
	json_t *out;

	if (json_is_array(v)) {
		size_t i;
		json_t *e;

		out = json_array();
		json_array_foreach(v, i, e) json_array_append_new(out, sel_apply(list, e));
		return out;
	}
	if (!json_is_object(v))
		return json_incref(v);
	out = json_object();
	for (const struct sel *s = list; s; s = s->next) {
		const char *key;
		json_t *child;

		json_object_foreach(v, key, child)
		{
			if (strcmp(s->name, "*") != 0 && strcmp(s->name, key) != 0)
				continue;
			if (s->all || !s->children)
				json_object_set(out, key, child);
			else if (!json_object_get(out, key))
				json_object_set_new(out, key, sel_apply(s->children, child));
		}
	}
	return out;
}

int compute_reply(struct emu_request *req, unsigned status, json_t *body)
{
	const char *fields = status < 300 ? emu_request_query(req, "fields") : NULL;
	size_t len;
	char *text;
	int ret;

	if (fields && *fields && body) {
		struct sel *sel = NULL;
		const char *p = fields;

		if (sel_parse(&p, &sel, 0) < 0 || *p) {
			struct api_error e;

			sel_free(sel);
			json_decref(body);
			api_fail(&e, 400, "invalidParameter", "Invalid field selection %s", fields);
			e.location = "fields";
			e.location_type = "parameter";
			return api_reply_error(req, &e);
		}
		json_t *partial = sel_apply(sel, body);

		sel_free(sel);
		json_decref(body);
		body = partial;
	}
	text = body ? compute_json_text(body, &len) : NULL;
	json_decref(body);
	if (!text)
		return emu_reply(req, 500, "text/plain", "out of memory\n", 14);
	ret = emu_reply(req, status, "application/json; charset=UTF-8", text, len);
	free(text);
	return ret;
}
