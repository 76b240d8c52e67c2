/* SPDX-License-Identifier: Apache-2.0 */
/*
 * YAML request bodies (Content-Type application/yaml, and application/apply-patch+yaml for
 * server-side apply), converted to JSON as sigs.k8s.io/yaml's YAMLToJSON does with
 * go-yaml v2's YAML 1.1 scalar resolution: plain null/~ and empty are null; true/false,
 * yes/no, on/off (any of their three spellings) are booleans; decimal, 0x hex, 0o and
 * leading-zero octal and 0b binary integers; floats and .inf/.nan; everything quoted is a
 * string (explicit tags are not read: libyaml's loader does not tell them from defaults). Mapping
 * keys become strings. One document; aliases are expanded within a bound (a "billion laughs" body
 * is refused, not expanded).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "emu/kube/kube.h"

#define YAML_MAX_NODES 1000000 /* nodes after alias expansion */
#define YAML_MAX_DEPTH 512

struct conv {
	yaml_document_t *doc;
	size_t nodes;
	const char *err;
};

static bool one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

static json_t *plain_int(const char *s)
{
	const char *p = s;
	int base = 10;
	bool neg = false;
	char digits[80];
	size_t n = 0;
	char *end;
	long long v;

	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		base = 16, p += 2;
	else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
		base = 8, p += 2;
	else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B'))
		base = 2, p += 2;
	else if (p[0] == '0' && p[1])
		base = 8, p += 1;
	if (!*p)
		return NULL;
	for (; *p && n + 1 < sizeof(digits); p++) {
		if (*p == '_')
			continue; /* YAML 1.1 digit separators */
		digits[n++] = *p;
	}
	if (*p)
		return NULL;
	digits[n] = '\0';
	errno = 0;
	v = strtoll(digits, &end, base);
	if (*end || !n)
		return NULL;
	if (errno == ERANGE)
		return json_real(neg ? -strtod(digits, NULL) : strtod(digits, NULL));
	return json_integer(neg ? -v : v);
}

static json_t *plain_float(const char *s)
{
	static const char *const inf[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
	static const char *const ninf[] = {"-.inf", "-.Inf", "-.INF", NULL};
	static const char *const nan[] = {".nan", ".NaN", ".NAN", NULL};
	const char *p = s;
	char *end;
	double d;
	bool digit = false;

	/* JSON has no infinity or NaN: sigs.k8s.io/yaml writes them as strings. */
	if (one_of(s, inf) || one_of(s, ninf) || one_of(s, nan))
		return json_string(s);
	if (*p == '+' || *p == '-')
		p++;
	for (const char *q = p; *q; q++) {
		if (*q >= '0' && *q <= '9')
			digit = true;
		else if (!strchr(".eE+-_", *q))
			return NULL;
	}
	if (!digit)
		return NULL;
	d = strtod(s, &end);
	if (*end || isinf(d) || isnan(d))
		return NULL;
	return json_real(d);
}

static json_t *scalar(yaml_node_t *n)
{
	static const char *const nulls[] = {"~", "null", "Null", "NULL", "", NULL};
	static const char *const yes[] = {"y",    "Y",    "yes", "Yes", "YES", "true",
					  "True", "TRUE", "on",  "On",  "ON",  NULL};
	static const char *const no[] = {"n",     "N",     "no",  "No",  "NO",  "false",
					 "False", "FALSE", "off", "Off", "OFF", NULL};
	const char *s = (const char *)n->data.scalar.value;
	json_t *v;

	/* libyaml's loader gives untagged scalars the default !!str tag, so only the style
	 * tells a quoted string from a plain scalar to resolve. */
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_stringn(s, n->data.scalar.length);
	if (one_of(s, nulls))
		return json_null();
	if (one_of(s, yes))
		return json_true();
	if (one_of(s, no))
		return json_false();
	if ((v = plain_int(s)))
		return v;
	if ((v = plain_float(s)))
		return v;
	return json_stringn(s, n->data.scalar.length);
}

static json_t *convert(struct conv *c, yaml_node_t *n, int depth)
{
	json_t *out;

	if (!n || depth > YAML_MAX_DEPTH || ++c->nodes > YAML_MAX_NODES) {
		c->err = "the document is nested too deeply or expands too much";
		return NULL;
	}
	switch (n->type) {
	case YAML_SCALAR_NODE:
		out = scalar(n);
		if (!out)
			c->err = "a string is not valid UTF-8";
		return out;
	case YAML_SEQUENCE_NODE:
		out = json_array();
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top; i++) {
			json_t *v = convert(c, yaml_document_get_node(c->doc, *i), depth + 1);
			if (!v) {
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, v);
		}
		return out;
	case YAML_MAPPING_NODE:
		out = json_object();
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
			json_t *k, *v;
			char *ks = NULL;
			if (!kn || kn->type != YAML_SCALAR_NODE) {
				c->err = "a mapping key is not a scalar";
				json_decref(out);
				return NULL;
			}
			/* keys are strings in JSON: a resolved scalar in its JSON spelling */
			k = scalar(kn);
			if (k && !json_is_string(k))
				ks = json_dumps(k, JSON_ENCODE_ANY);
			v = convert(c, yaml_document_get_node(c->doc, p->value), depth + 1);
			if (!k || !v) {
				if (!c->err)
					c->err = "a string is not valid UTF-8";
				json_decref(k);
				json_decref(v);
				free(ks);
				json_decref(out);
				return NULL;
			}
			json_object_set_new(out, ks ? ks : json_string_value(k), v);
			json_decref(k);
			free(ks);
		}
		return out;
	default:
		c->err = "empty node";
		return NULL;
	}
}

int kube_yaml_to_json(const void *text, size_t len, json_t **out, char *err, size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	struct conv c = {&doc, 0, NULL};
	yaml_node_t *root;
	int ret = -EINVAL;

	*out = NULL;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "yaml: line %zu: %s", parser.problem_mark.line + 1,
			 parser.problem ? parser.problem : "malformed YAML");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	root = yaml_document_get_root_node(&doc);
	if (!root) {
		snprintf(err, errlen, "the request body is empty");
		goto cleanup;
	}
	/* a second document is an error, as for the API server's strict YAML decoding */
	if (yaml_parser_load(&parser, &extra)) {
		bool more = yaml_document_get_root_node(&extra) != NULL;
		yaml_document_delete(&extra);
		if (more) {
			snprintf(err, errlen, "yaml: the body holds more than one document");
			goto cleanup;
		}
	}
	*out = convert(&c, root, 0);
	if (!*out) {
		snprintf(err, errlen, "yaml: %s", c.err ? c.err : "cannot convert the document");
		goto cleanup;
	}
	ret = 0;
cleanup:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return ret;
}
