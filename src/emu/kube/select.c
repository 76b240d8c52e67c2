/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Label and field selectors, as apimachinery parses them (pkg/labels/selector.go,
 * pkg/fields/selector.go):
 *   labels: "a=b,c!=d,e in (f,g),h notin (i),j,!k,l>3"  (= and == are the same)
 *   fields: "metadata.name=x,spec.unschedulable!=true"  (only =, ==, !=; '\' escapes)
 * Fields are limited to the ones the type supports (metadata.name and metadata.namespace
 * always); anything else is "field label not supported", a 400.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/kube/kube.h"

enum op { OP_EQ, OP_NEQ, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOT_EXISTS, OP_GT, OP_LT };

struct req {
	char *key;
	enum op op;
	char **values;
	size_t nvalues;
};

struct kube_selector {
	bool fields; /* keys are field paths, not label keys */
	struct req *reqs;
	size_t n;
};

void kube_selector_free(struct kube_selector *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->reqs[i].key);
		for (size_t j = 0; j < s->reqs[i].nvalues; j++)
			free(s->reqs[i].values[j]);
		free(s->reqs[i].values);
	}
	free(s->reqs);
	free(s);
}

static int add_req(struct kube_selector *s, struct req *r)
{
	struct req *n = realloc(s->reqs, (s->n + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	s->reqs = n;
	s->reqs[s->n++] = *r;
	return 0;
}

static int add_value(struct req *r, const char *v, size_t len)
{
	char **n = realloc(r->values, (r->nvalues + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	r->values = n;
	r->values[r->nvalues] = strndup(v, len);
	if (!r->values[r->nvalues])
		return -ENOMEM;
	r->nvalues++;
	return 0;
}

static void free_req(struct req *r)
{
	free(r->key);
	for (size_t j = 0; j < r->nvalues; j++)
		free(r->values[j]);
	free(r->values);
}

/* ---- labels ---- */
static bool label_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

static bool key_char(char c)
{
	return label_char(c) || c == '/';
}

/* A label value: empty, or at most 63 of [A-Za-z0-9_.-] starting and ending alphanumeric. */
bool kube_valid_label_value(const char *v, size_t n)
{
	if (n == 0)
		return true;
	if (n > 63 || !isalnum((unsigned char)v[0]) || !isalnum((unsigned char)v[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!label_char(v[i]))
			return false;
	return true;
}

/* A qualified name: [prefix/]name, name as a label value (non-empty), prefix a subdomain. */
bool kube_valid_label_key(const char *k, size_t n)
{
	const char *slash = memchr(k, '/', n);

	if (slash) {
		char prefix[254];
		size_t pn = (size_t)(slash - k);
		if (pn == 0 || pn >= sizeof(prefix))
			return false;
		memcpy(prefix, k, pn);
		prefix[pn] = '\0';
		if (!kube_dns1123_subdomain(prefix))
			return false;
		n -= pn + 1;
		k = slash + 1;
	}
	return n > 0 && kube_valid_label_value(k, n);
}

static const char *skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static int parse_label_req(const char **pp, struct req *r, char *err, size_t errlen)
{
	const char *p = skip_space(*pp), *start;
	bool negate = false;

	if (*p == '!') {
		negate = true;
		p = skip_space(p + 1);
	}
	start = p;
	while (key_char(*p))
		p++;
	if (!kube_valid_label_key(start, (size_t)(p - start))) {
		snprintf(err, errlen, "unable to parse requirement: invalid label key \"%.*s\"",
			 (int)(p - start), start);
		return -EINVAL;
	}
	r->key = strndup(start, (size_t)(p - start));
	if (!r->key)
		return -ENOMEM;
	p = skip_space(p);
	if (negate) {
		r->op = OP_NOT_EXISTS;
		*pp = p;
		return 0;
	}
	if (*p == ',' || *p == '\0') {
		r->op = OP_EXISTS;
		*pp = p;
		return 0;
	}
	if (p[0] == '=' && p[1] == '=') {
		r->op = OP_EQ;
		p += 2;
	} else if (p[0] == '=') {
		r->op = OP_EQ;
		p += 1;
	} else if (p[0] == '!' && p[1] == '=') {
		r->op = OP_NEQ;
		p += 2;
	} else if (p[0] == '>') {
		r->op = OP_GT;
		p += 1;
	} else if (p[0] == '<') {
		r->op = OP_LT;
		p += 1;
	} else if (strncmp(p, "notin", 5) == 0 && !label_char(p[5])) {
		r->op = OP_NOTIN;
		p += 5;
	} else if (strncmp(p, "in", 2) == 0 && !label_char(p[2])) {
		r->op = OP_IN;
		p += 2;
	} else {
		snprintf(
		    err, errlen,
		    "unable to parse requirement: found '%.20s', expected: '=', '!=', '==', 'in', notin'",
		    p);
		return -EINVAL;
	}
	p = skip_space(p);
	if (r->op == OP_IN || r->op == OP_NOTIN) {
		if (*p != '(') {
			snprintf(err, errlen,
				 "unable to parse requirement: found '%.20s', expected: '('", p);
			return -EINVAL;
		}
		p = skip_space(p + 1);
		for (;;) {
			start = p;
			while (label_char(*p))
				p++;
			if (!kube_valid_label_value(start, (size_t)(p - start))) {
				snprintf(
				    err, errlen,
				    "unable to parse requirement: invalid label value \"%.*s\"",
				    (int)(p - start), start);
				return -EINVAL;
			}
			if (add_value(r, start, (size_t)(p - start)) < 0)
				return -ENOMEM;
			p = skip_space(p);
			if (*p == ',') {
				p = skip_space(p + 1);
				continue;
			}
			if (*p == ')') {
				p++;
				break;
			}
			snprintf(err, errlen,
				 "unable to parse requirement: found '%.20s', expected: ',', ')'",
				 p);
			return -EINVAL;
		}
	} else {
		start = p;
		while (label_char(*p))
			p++;
		if (!kube_valid_label_value(start, (size_t)(p - start))) {
			snprintf(err, errlen,
				 "unable to parse requirement: invalid label value \"%.*s\"",
				 (int)(p - start), start);
			return -EINVAL;
		}
		if ((r->op == OP_GT || r->op == OP_LT)) {
			for (const char *q = start; q < p; q++)
				if (!isdigit((unsigned char)*q) && !(q == start && *q == '-')) {
					snprintf(
					    err, errlen,
					    "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer");
					return -EINVAL;
				}
			if (p == start) {
				snprintf(
				    err, errlen,
				    "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer");
				return -EINVAL;
			}
		}
		if (add_value(r, start, (size_t)(p - start)) < 0)
			return -ENOMEM;
	}
	*pp = skip_space(p);
	return 0;
}

int kube_label_selector_parse(const char *text, struct kube_selector **out, char *err,
			      size_t errlen)
{
	struct kube_selector *s = calloc(1, sizeof(*s));
	const char *p = text;
	int ret = 0;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	p = skip_space(p);
	while (*p) {
		struct req r = {0};
		ret = parse_label_req(&p, &r, err, errlen);
		if (ret == 0)
			ret = add_req(s, &r);
		if (ret < 0) {
			free_req(&r);
			goto cleanup;
		}
		if (*p == ',') {
			p = skip_space(p + 1);
			if (!*p) {
				snprintf(
				    err, errlen,
				    "unable to parse requirement: found '', expected: identifier");
				ret = -EINVAL;
				goto cleanup;
			}
		} else if (*p) {
			snprintf(err, errlen,
				 "unable to parse requirement: found '%.20s', expected: ','", p);
			ret = -EINVAL;
			goto cleanup;
		}
	}
	*out = s;
	return 0;
cleanup:
	kube_selector_free(s);
	return ret;
}

/* ---- fields ---- */
static bool field_supported(const struct kube_res *r, const char *field)
{
	const char *p = r->def.field_labels;
	size_t n = strlen(field);

	if (!strcmp(field, "metadata.name") || !strcmp(field, "metadata.namespace"))
		return true;
	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && strncmp(p, field, n) == 0)
			return true;
		p += len + (comma ? 1 : 0);
	}
	return false;
}

/* Reads up to an unescaped stop character, unescaping '\x'. */
static char *field_token(const char **pp, const char *stops)
{
	const char *p = *pp;
	char *out = malloc(strlen(p) + 1), *o = out;

	if (!out)
		return NULL;
	while (*p && !strchr(stops, *p)) {
		if (*p == '\\' && p[1])
			p++;
		*o++ = *p++;
	}
	*o = '\0';
	*pp = p;
	return out;
}

int kube_field_selector_parse(const char *text, const struct kube_res *r,
			      struct kube_selector **out, char *err, size_t errlen)
{
	struct kube_selector *s = calloc(1, sizeof(*s));
	const char *p = text;
	int ret = 0;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->fields = true;
	while (*p) {
		struct req q = {0};
		char *value;

		q.key = field_token(&p, "=!,");
		if (!q.key) {
			ret = -ENOMEM;
			goto cleanup;
		}
		/* Whitespace around the key is not significant. */
		while (q.key[0] == ' ')
			memmove(q.key, q.key + 1, strlen(q.key));
		while (q.key[0] && q.key[strlen(q.key) - 1] == ' ')
			q.key[strlen(q.key) - 1] = '\0';
		if (p[0] == '!' && p[1] == '=') {
			q.op = OP_NEQ;
			p += 2;
		} else if (p[0] == '=' && p[1] == '=') {
			q.op = OP_EQ;
			p += 2;
		} else if (p[0] == '=') {
			q.op = OP_EQ;
			p += 1;
		} else {
			snprintf(err, errlen, "invalid selector: '%s'; can't understand '%s'", text,
				 q.key);
			free_req(&q);
			ret = -EINVAL;
			goto cleanup;
		}
		value = field_token(&p, ",");
		if (!value || add_value(&q, value, strlen(value)) < 0) {
			free(value);
			free_req(&q);
			ret = -ENOMEM;
			goto cleanup;
		}
		free(value);
		if (r && !field_supported(r, q.key)) {
			snprintf(err, errlen, "field label not supported: %s", q.key);
			free_req(&q);
			ret = -EINVAL;
			goto cleanup;
		}
		if (add_req(s, &q) < 0) {
			free_req(&q);
			ret = -ENOMEM;
			goto cleanup;
		}
		if (*p == ',')
			p++;
	}
	*out = s;
	return 0;
cleanup:
	kube_selector_free(s);
	return ret;
}

/* Boolean and integer fields read "false" and "0" when absent, as the typed structs print. */
const char *kube_field_value(const json_t *obj, const char *path, char *buf, size_t len)
{
	const json_t *v;

	if (!strcmp(path, "source"))
		path = "source.component"; /* events: the "source" field label */
	v = kj_path(obj, path);
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	if (json_is_integer(v)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	if (!strcmp(path, "spec.unschedulable") || !strcmp(path, "spec.hostNetwork"))
		return "false";
	if (!strcmp(path, "status.replicas") || !strcmp(path, "status.successful"))
		return "0";
	return "";
}

static bool req_match(const struct kube_selector *s, const struct req *q, const json_t *obj)
{
	const json_t *labels;
	const char *v = NULL;
	char buf[32];

	if (s->fields) {
		v = kube_field_value(obj, q->key, buf, sizeof(buf));
		return (strcmp(v, q->values[0]) == 0) == (q->op == OP_EQ);
	}
	labels = kj_path(obj, "metadata.labels");
	v = json_string_value(json_object_get(labels, q->key));
	switch (q->op) {
	case OP_EXISTS:
		return v != NULL;
	case OP_NOT_EXISTS:
		return v == NULL;
	case OP_EQ:
	case OP_IN:
		for (size_t i = 0; v && i < q->nvalues; i++)
			if (!strcmp(v, q->values[i]))
				return true;
		return false;
	case OP_NEQ:
	case OP_NOTIN:
		for (size_t i = 0; v && i < q->nvalues; i++)
			if (!strcmp(v, q->values[i]))
				return false;
		return true;
	case OP_GT:
	case OP_LT: {
		char *end;
		long long a, b;
		if (!v)
			return false;
		a = strtoll(v, &end, 10);
		if (*end || !v[0])
			return false;
		b = strtoll(q->values[0], NULL, 10);
		return q->op == OP_GT ? a > b : a < b;
	}
	}
	return false;
}

bool kube_selector_match(const struct kube_selector *s, const json_t *obj)
{
	if (!s)
		return true;
	for (size_t i = 0; i < s->n; i++)
		if (!req_match(s, &s->reqs[i], obj))
			return false;
	return true;
}

const char *kube_selector_name(const struct kube_selector *s)
{
	for (size_t i = 0; s && s->fields && i < s->n; i++)
		if (s->reqs[i].op == OP_EQ && !strcmp(s->reqs[i].key, "metadata.name"))
			return s->reqs[i].values[0];
	return NULL;
}
