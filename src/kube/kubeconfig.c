/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/kubeconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "common/base64.h"
#include "common/fileio.h"
#include "common/http.h"
#include "common/log.h"
#include "common/str.h"
#include "common/yaml_limits.h"

#define KUBECONFIG_MAX_BYTES (4 << 20)
#define REFERENCED_MAX_BYTES (1 << 20)
#define MAX_FILES            64

/* One parsed kubeconfig file. */
struct kc_file {
	char *path; /* as given, for messages */
	char *dir;  /* relative paths in this file are resolved against it */
	yaml_document_t doc;
	bool has_doc;
	yaml_node_t *root; /* NULL: empty document */
};

/* A named cluster, user or context: the first file to define a name wins. */
struct kc_item {
	const char *name;
	struct kc_file *f;
	yaml_node_t *entry; /* the list element, for positions */
	yaml_node_t *body;  /* its "cluster" / "user" / "context" mapping (NULL if absent) */
};

struct kc_list {
	struct kc_item *items;
	size_t n, cap;
};

struct kc {
	struct kc_file files[MAX_FILES];
	size_t nfiles;
	struct kc_list clusters, users, contexts;
	const char *current; /* current-context, first non-empty */
	struct kc_file *current_file;
	yaml_node_t *current_node;
};

enum ftype { F_STR, F_BOOL, F_B64, F_MAP, F_SEQ, F_ANY };

struct field {
	const char *key;
	enum ftype type;
};

static const struct field top_fields[] = {
    {"apiVersion", F_STR},      {"kind", F_STR},       {"preferences", F_ANY},
    {"clusters", F_SEQ},        {"users", F_SEQ},      {"contexts", F_SEQ},
    {"current-context", F_STR}, {"extensions", F_ANY}, {NULL, F_ANY},
};
static const struct field cluster_fields[] = {
    {"server", F_STR},
    {"certificate-authority", F_STR},
    {"certificate-authority-data", F_B64},
    {"insecure-skip-tls-verify", F_BOOL},
    {"tls-server-name", F_STR},
    {"proxy-url", F_STR},
    {"disable-compression", F_BOOL},
    {"extensions", F_ANY},
    {NULL, F_ANY},
};
static const struct field user_fields[] = {
    {"client-certificate", F_STR},
    {"client-certificate-data", F_B64},
    {"client-key", F_STR},
    {"client-key-data", F_B64},
    {"token", F_STR},
    {"tokenFile", F_STR},
    {"username", F_STR},
    {"password", F_STR},
    {"as", F_STR},
    {"as-uid", F_STR},
    {"as-groups", F_SEQ},
    {"as-user-extra", F_MAP},
    {"exec", F_MAP},
    {"auth-provider", F_MAP},
    {"extensions", F_ANY},
    {NULL, F_ANY},
};
static const struct field context_fields[] = {
    {"cluster", F_STR}, {"user", F_STR}, {"namespace", F_STR}, {"extensions", F_ANY}, {NULL, F_ANY},
};
static const struct field entry_fields_cluster[] = {
    {"name", F_STR}, {"cluster", F_MAP}, {NULL, F_ANY}};
static const struct field entry_fields_user[] = {{"name", F_STR}, {"user", F_MAP}, {NULL, F_ANY}};
static const struct field entry_fields_context[] = {
    {"name", F_STR}, {"context", F_MAP}, {NULL, F_ANY}};

/* "PATH:LINE:COL: " + message, positions 1-based. */
static int __attribute__((format(printf, 5, 6)))
kerr(struct error *err, int code, const struct kc_file *f, const yaml_node_t *n, const char *fmt,
     ...)
{
	char msg[ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n)
		return error_set(err, code, "%s:%zu:%zu: %s", f->path, n->start_mark.line + 1,
				 n->start_mark.column + 1, msg);
	return error_set(err, code, "%s: %s", f->path, msg);
}

static bool is_null(const yaml_node_t *n)
{
	const char *v;

	if (!n)
		return true;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)n->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

/* The scalar's text, or NULL if n is not a scalar or holds a NUL byte. */
static const char *scalar(const yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
		return NULL;
	return (const char *)n->data.scalar.value;
}

static int parse_bool(const yaml_node_t *n, bool *out)
{
	/* YAML 1.1 booleans, as client-go's YAML decoder reads them; quoted text is a string. */
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
					  "on",   "On",   "ON",   "y",   "Y"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO",
					 "off",   "Off",   "OFF",   "n",  "N"};
	const char *v = scalar(n);

	if (!v || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(v, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static yaml_node_t *map_get(yaml_document_t *doc, const yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		const char *k = scalar(yaml_document_get_node(doc, p->key));

		if (k && !strcmp(k, key))
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

/* The string value of map[key], NULL when absent or null (types were checked already). */
static const char *map_str(struct kc_file *f, const yaml_node_t *map, const char *key)
{
	yaml_node_t *v = map_get(&f->doc, map, key);

	return is_null(v) ? NULL : scalar(v);
}

/*
 * Checks the keys of mapping n against fields: known keys have the right type, none is
 * repeated. label names n in messages ("clusters[prod].cluster").
 */
static int check_fields(struct kc_file *f, yaml_node_t *n, const struct field *fields,
			const char *label, struct error *err)
{
	yaml_node_pair_t *p, *q;

	if (n->type != YAML_MAPPING_NODE)
		return kerr(err, EBADMSG, f, n, "%s: expected a mapping", label);
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(&f->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(&f->doc, p->value);
		const char *k = scalar(kn);
		const struct field *fd;
		bool b;

		if (!k)
			return kerr(err, EBADMSG, f, kn, "%s: keys must be strings", label);
		for (q = n->data.mapping.pairs.start; q < p; q++) {
			const char *k2 = scalar(yaml_document_get_node(&f->doc, q->key));

			if (k2 && !strcmp(k, k2))
				return kerr(err, EBADMSG, f, kn, "%s.%s: duplicate key", label, k);
		}
		for (fd = fields; fd->key && strcmp(fd->key, k); fd++)
			;
		if (!fd->key || fd->type == F_ANY || is_null(vn))
			continue;
		switch (fd->type) {
		case F_STR:
			if (!scalar(vn))
				return kerr(err, EBADMSG, f, vn, "%s.%s: expected a string", label,
					    k);
			break;
		case F_BOOL:
			if (parse_bool(vn, &b) < 0)
				return kerr(err, EBADMSG, f, vn,
					    "%s.%s: expected a boolean (true or false)", label, k);
			break;
		case F_B64: {
			uint8_t *data = NULL;
			size_t len;
			int r;

			if (!scalar(vn))
				return kerr(err, EBADMSG, f, vn, "%s.%s: expected a base64 string",
					    label, k);
			r = base64_decode(scalar(vn), vn->data.scalar.length, BASE64_SKIP_SPACE,
					  &data, &len);
			free_secret(data, len);
			if (r == -ENOMEM)
				return error_set(err, ENOMEM, "out of memory");
			if (r < 0)
				return kerr(err, EINVAL, f, vn, "%s.%s: invalid base64", label, k);
			break;
		}
		case F_MAP:
			if (vn->type != YAML_MAPPING_NODE)
				return kerr(err, EBADMSG, f, vn, "%s.%s: expected a mapping", label,
					    k);
			break;
		case F_SEQ:
			if (vn->type != YAML_SEQUENCE_NODE)
				return kerr(err, EBADMSG, f, vn, "%s.%s: expected a list", label,
					    k);
			break;
		case F_ANY:
			break;
		}
	}
	return 0;
}

static struct kc_item *list_find(struct kc_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->items[i].name, name))
			return &l->items[i];
	return NULL;
}

/* Reads one section ("clusters") of f into l, first definition of a name winning. */
static int read_section(struct kc_file *f, const char *section, const char *inner,
			const struct field *entry_fields, const struct field *body_fields,
			struct kc_list *l, struct error *err)
{
	yaml_node_t *seq = map_get(&f->doc, f->root, section);
	size_t first = l->n; /* this file's entries start here */
	char label[200];
	size_t idx = 0;

	if (is_null(seq))
		return 0;
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++, idx++) {
		yaml_node_t *e = yaml_document_get_node(&f->doc, *it), *body;
		const char *name;
		struct kc_item *dup;
		int ret;

		snprintf(label, sizeof(label), "%s[%zu]", section, idx);
		ret = check_fields(f, e, entry_fields, label, err);
		if (ret < 0)
			return ret;
		name = map_str(f, e, "name");
		if (!name || !*name)
			return kerr(err, EBADMSG, f, e, "%s.name: missing", label);
		snprintf(label, sizeof(label), "%s[%.80s].%s", section, name, inner);
		body = map_get(&f->doc, e, inner);
		if (is_null(body))
			body = NULL;
		if (body) {
			ret = check_fields(f, body, body_fields, label, err);
			if (ret < 0)
				return ret;
		}
		dup = list_find(l, name);
		if (dup && dup >= l->items + first)
			return kerr(err, EBADMSG, f, e, "%s[%.80s]: defined twice in this file",
				    section, name);
		if (dup)
			continue; /* an earlier file defined it: that one wins */
		if (l->n == l->cap) {
			size_t ncap = l->cap ? l->cap * 2 : 8;
			struct kc_item *ni = realloc(l->items, ncap * sizeof(*ni));

			if (!ni)
				return error_set(err, ENOMEM, "out of memory");
			l->items = ni;
			l->cap = ncap;
		}
		l->items[l->n++] = (struct kc_item){.name = name, .f = f, .entry = e, .body = body};
	}
	return 0;
}

static char *dir_of(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* Parses buf as the next file of k. */
static int kc_add(struct kc *k, const char *buf, size_t len, const char *path, struct error *err)
{
	struct kc_file *f;
	yaml_parser_t parser;
	yaml_node_t *cc;
	int ret;

	if (k->nfiles == MAX_FILES)
		return error_set(err, E2BIG, "more than %d kubeconfig files", MAX_FILES);
	f = &k->files[k->nfiles];
	memset(f, 0, sizeof(*f));
	f->path = strdup(path ? path : "<input>");
	f->dir = dir_of(path);
	if (!f->path || !f->dir) {
		free(f->path);
		free(f->dir);
		return error_set(err, ENOMEM, "out of memory");
	}
	k->nfiles++;
	/*
	 * Bounded first: libyaml's loader costs the square of the nesting depth. A syntax error
	 * is left to the loader to report (it reads no further than this scan did).
	 */
	ret = yaml_check_limits(buf, len, NULL, err);
	if (ret < 0 && ret != -EINVAL) {
		char msg[ERROR_MSG_MAX];

		snprintf(msg, sizeof(msg), "%s", err ? err->msg : "");
		return error_set(err, -ret, "%s:%s", f->path, msg);
	}
	if (!yaml_parser_initialize(&parser))
		return error_set(err, ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &f->doc)) {
		size_t line = parser.problem_mark.line + 1, col = parser.problem_mark.column + 1;

		ret = error_set(err, EBADMSG, "%s:%zu:%zu: invalid YAML: %s%s%s", f->path, line,
				col, parser.problem ? parser.problem : "parse error",
				parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return ret;
	}
	yaml_parser_delete(&parser);
	f->has_doc = true;
	f->root = yaml_document_get_root_node(&f->doc);
	if (is_null(f->root)) {
		f->root = NULL; /* an empty file is an empty configuration */
		return 0;
	}
	ret = check_fields(f, f->root, top_fields, "kubeconfig", err);
	if (ret < 0)
		return ret;
	if ((ret = read_section(f, "clusters", "cluster", entry_fields_cluster, cluster_fields,
				&k->clusters, err)) < 0 ||
	    (ret = read_section(f, "users", "user", entry_fields_user, user_fields, &k->users,
				err)) < 0 ||
	    (ret = read_section(f, "contexts", "context", entry_fields_context, context_fields,
				&k->contexts, err)) < 0)
		return ret;
	cc = map_get(&f->doc, f->root, "current-context");
	if (!k->current && !is_null(cc) && scalar(cc) && *scalar(cc)) {
		k->current = scalar(cc);
		k->current_file = f;
		k->current_node = cc;
	}
	return 0;
}

static void kc_free(struct kc *k)
{
	for (size_t i = 0; i < k->nfiles; i++) {
		if (k->files[i].has_doc)
			yaml_document_delete(&k->files[i].doc);
		free(k->files[i].path);
		free(k->files[i].dir);
	}
	free(k->clusters.items);
	free(k->users.items);
	free(k->contexts.items);
}

void kube_config_free(struct kube_config *c)
{
	if (!c)
		return;
	free(c->server);
	free(c->ca_pem);
	free(c->cert_pem);
	free_secret(c->key_pem, c->key_pem_len);
	free_secret_str(c->token);
	free(c->token_file);
	free_secret_str(c->proxy_url);
	for (size_t i = 0; c->headers && c->headers[i]; i++)
		free(c->headers[i]);
	free(c->headers);
	free(c->impersonate_user);
	free(c->namespace);
	free(c->context);
	free(c->source);
	free(c);
}

/* path resolved against the kubeconfig's directory. malloc'd. */
static char *resolve_path(const struct kc_file *f, const char *path)
{
	char *out = NULL;

	if (path[0] == '/' || !strcmp(f->dir, "."))
		return strdup(path);
	if (asprintf(&out, "%s/%s", f->dir, path) < 0)
		return NULL;
	return out;
}

/* Reads a file a kubeconfig refers to: a regular file, at most 1 MiB. */
static int read_referenced(struct kc_file *f, yaml_node_t *n, const char *label, const char *path,
			   char **out, size_t *out_len, char **resolved, struct error *err)
{
	struct stat st;
	char *full;
	int ret;

	full = resolve_path(f, path);
	if (!full)
		return error_set(err, ENOMEM, "out of memory");
	if (stat(full, &st) < 0) {
		ret = kerr(err, errno, f, n, "%s: %s: %s", label, full, strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = kerr(err, EINVAL, f, n, "%s: %s: not a regular file", label, full);
		goto cleanup;
	}
	ret = file_read_all(full, REFERENCED_MAX_BYTES, out, out_len);
	if (ret < 0) {
		kerr(err, -ret, f, n, "%s: %s: %s", label, full, strerror(-ret));
		goto cleanup;
	}
	if (resolved) {
		*resolved = full;
		full = NULL;
	}
cleanup:
	free(full);
	return ret;
}

/*
 * One PEM blob from "<field>-data" (base64) or "<field>" (a file), not both (client-go
 * refuses both). Leaves *out NULL when neither is set.
 */
static int pem_field(struct kc_file *f, yaml_node_t *body, const char *label, const char *field,
		     char **out, size_t *out_len, struct error *err)
{
	char data_key[64];
	yaml_node_t *dn, *fn;
	uint8_t *raw = NULL;
	size_t len = 0;
	int ret;

	snprintf(data_key, sizeof(data_key), "%s-data", field);
	dn = map_get(&f->doc, body, data_key);
	fn = map_get(&f->doc, body, field);
	if (is_null(dn))
		dn = NULL;
	if (is_null(fn))
		fn = NULL;
	if (dn && !*scalar(dn))
		dn = NULL;
	if (fn && !*scalar(fn))
		fn = NULL;
	*out = NULL;
	*out_len = 0;
	if (dn && fn)
		return kerr(err, EINVAL, f, fn, "%s: both %s and %s are set: use one", label, field,
			    data_key);
	if (dn) {
		ret = base64_decode(scalar(dn), dn->data.scalar.length, BASE64_SKIP_SPACE, &raw,
				    &len);
		if (ret < 0)
			return kerr(err, -ret, f, dn, "%s.%s: invalid base64", label, data_key);
		*out = (char *)raw;
		*out_len = len;
		return 0;
	}
	if (fn) {
		char what[256];

		snprintf(what, sizeof(what), "%s.%s", label, field);
		return read_referenced(f, fn, what, scalar(fn), out, out_len, NULL, err);
	}
	return 0;
}

static int set_str(char **dst, const char *s, struct error *err)
{
	*dst = strdup(s);
	return *dst ? 0 : error_set(err, ENOMEM, "out of memory");
}

/* Trims a token read from a file; empty is an error for the caller. */
static void trim(char *s)
{
	size_t n = strlen(s), i = 0;

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
		i++;
	memmove(s, s + i, n - i + 1);
}

/* ---- impersonation ---- */

/* A header value taken from the file: no control characters, which could forge headers. */
static bool header_value_ok(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return false;
	return true;
}

/*
 * An extra's key as a header name suffix, as client-go's headerKeyEscape() writes it: bytes
 * that are not an RFC 9110 token character, and '%' itself, percent-encoded (the API server
 * lowercases and url.PathUnescape()s the suffix).
 */
static char *header_key_escape(const char *key)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(strlen(key) * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		if (*p < 0x7f && *p != '%' &&
		    ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		     (*p >= 'A' && *p <= 'Z') || strchr("!#$&'*+-.^_`|~", *p))) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

static int add_header(struct kube_config *c, size_t *n, const char *name, const char *value,
		      struct error *err)
{
	char **nh = realloc(c->headers, (*n + 2) * sizeof(*nh));

	if (!nh)
		return error_set(err, ENOMEM, "out of memory");
	c->headers = nh;
	if (asprintf(&nh[*n], "%s: %s", name, value) < 0)
		return error_set(err, ENOMEM, "out of memory");
	nh[++*n] = NULL;
	return 0;
}

/* The string items of a sequence node, checked as header values. */
static int seq_strings(struct kc_file *f, yaml_node_t *seq, const char *what,
		       int (*fn)(void *arg, const char *v, struct error *err), void *arg,
		       struct error *err)
{
	size_t i = 0;

	if (seq->type != YAML_SEQUENCE_NODE)
		return kerr(err, EBADMSG, f, seq, "%s: expected a list of strings", what);
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++, i++) {
		yaml_node_t *v = yaml_document_get_node(&f->doc, *it);
		const char *s = scalar(v);
		int ret;

		if (!s || is_null(v))
			return kerr(err, EBADMSG, f, v, "%s[%zu]: expected a string", what, i);
		if (!header_value_ok(s))
			return kerr(err, EINVAL, f, v,
				    "%s[%zu]: control characters are not allowed", what, i);
		ret = fn(arg, s, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

struct header_sink {
	struct kube_config *c;
	size_t *n;
	const char *name;
};

static int sink_value(void *arg, const char *v, struct error *err)
{
	struct header_sink *h = arg;

	return add_header(h->c, h->n, h->name, v, err);
}

/*
 * as, as-uid, as-groups, as-user-extra (client-go's AuthInfo.Impersonate*) as the headers
 * its impersonatingRoundTripper sends. Types were checked by check_fields().
 */
static int resolve_impersonation(struct kc_file *f, yaml_node_t *body, const char *label,
				 struct kube_config *c, struct error *err)
{
	yaml_node_t *as = map_get(&f->doc, body, "as"), *uid = map_get(&f->doc, body, "as-uid");
	yaml_node_t *groups = map_get(&f->doc, body, "as-groups");
	yaml_node_t *extra = map_get(&f->doc, body, "as-user-extra");
	const char *user = is_null(as) ? NULL : scalar(as);
	char what[256];
	size_t n = 0;
	int ret;

	if (user && !*user)
		user = NULL;
	if (is_null(uid) || !*scalar(uid))
		uid = NULL;
	if (is_null(groups) || groups->data.sequence.items.start == groups->data.sequence.items.top)
		groups = NULL;
	if (is_null(extra) || extra->data.mapping.pairs.start == extra->data.mapping.pairs.top)
		extra = NULL;
	if (!user) {
		yaml_node_t *what_node = uid ? uid : groups ? groups : extra;

		if (what_node)
			return kerr(err, EINVAL, f, what_node,
				    "%s.%s: impersonating a uid, groups or extras needs a user "
				    "(set %s.as)",
				    label,
				    what_node == uid      ? "as-uid"
				    : what_node == groups ? "as-groups"
							  : "as-user-extra",
				    label);
		return 0;
	}
	if (!header_value_ok(user))
		return kerr(err, EINVAL, f, as, "%s.as: control characters are not allowed", label);
	if ((ret = set_str(&c->impersonate_user, user, err)) < 0 ||
	    (ret = add_header(c, &n, "Impersonate-User", user, err)) < 0)
		return ret;
	if (uid) {
		if (!header_value_ok(scalar(uid)))
			return kerr(err, EINVAL, f, uid,
				    "%s.as-uid: control characters are not allowed", label);
		if ((ret = add_header(c, &n, "Impersonate-Uid", scalar(uid), err)) < 0)
			return ret;
	}
	if (groups) {
		struct header_sink sink = {c, &n, "Impersonate-Group"};

		snprintf(what, sizeof(what), "%s.as-groups", label);
		if ((ret = seq_strings(f, groups, what, sink_value, &sink, err)) < 0)
			return ret;
	}
	for (yaml_node_pair_t *p = extra ? extra->data.mapping.pairs.start : NULL;
	     extra && p < extra->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(&f->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(&f->doc, p->value);
		const char *key = scalar(kn);
		struct header_sink sink = {c, &n, NULL};
		char *name, *esc;

		if (!key || !*key)
			return kerr(err, EBADMSG, f, kn,
				    "%s.as-user-extra: keys must be non-empty strings", label);
		snprintf(what, sizeof(what), "%s.as-user-extra.%.80s", label, key);
		if (is_null(vn))
			continue;
		esc = header_key_escape(key);
		if (!esc || asprintf(&name, "Impersonate-Extra-%s", esc) < 0) {
			free(esc);
			return error_set(err, ENOMEM, "out of memory");
		}
		free(esc);
		sink.name = name;
		ret = seq_strings(f, vn, what, sink_value, &sink, err);
		free(name);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int resolve_user(struct kc_file *f, yaml_node_t *body, const char *label,
			struct kube_config *c, struct error *err)
{
	const char *token, *token_file;
	int ret;

	ret = resolve_impersonation(f, body, label, c, err);
	if (ret < 0)
		return ret;
	ret = pem_field(f, body, label, "client-certificate", &c->cert_pem, &c->cert_pem_len, err);
	if (ret < 0)
		return ret;
	ret = pem_field(f, body, label, "client-key", &c->key_pem, &c->key_pem_len, err);
	if (ret < 0)
		return ret;
	if (!c->cert_pem != !c->key_pem)
		return kerr(err, EINVAL, f, body, "%s: %s without %s", label,
			    c->cert_pem ? "client-certificate" : "client-key",
			    c->cert_pem ? "client-key" : "client-certificate");
	token = map_str(f, body, "token");
	token_file = map_str(f, body, "tokenFile");
	if (token && *token && (ret = set_str(&c->token, token, err)) < 0)
		return ret;
	if (token_file && *token_file) {
		yaml_node_t *tn = map_get(&f->doc, body, "tokenFile");
		char *buf = NULL, what[256];
		size_t len;

		snprintf(what, sizeof(what), "%s.tokenFile", label);
		ret = read_referenced(f, tn, what, token_file, &buf, &len, &c->token_file, err);
		if (ret < 0) {
			if (c->token) /* client-go: the inline token still works */
				return 0;
			return ret;
		}
		trim(buf);
		if (!*buf || strlen(buf) != strcspn(buf, "\r\n")) {
			free_secret_str(buf);
			return kerr(err, EINVAL, f, tn, "%s: %s: expected one token on one line",
				    what, c->token_file);
		}
		free_secret_str(c->token);
		c->token = buf;
	}
	if (!c->token && !c->cert_pem) {
		yaml_node_t *n;

		if ((n = map_get(&f->doc, body, "exec")) && !is_null(n))
			return kerr(err, EOPNOTSUPP, f, n,
				    "%s.exec: credential plugins are not supported; use a client "
				    "certificate or a token",
				    label);
		if ((n = map_get(&f->doc, body, "auth-provider")) && !is_null(n))
			return kerr(err, EOPNOTSUPP, f, n,
				    "%s.auth-provider: not supported; use a client certificate or "
				    "a token",
				    label);
		if ((n = map_get(&f->doc, body, "username")) && !is_null(n))
			return kerr(err, EOPNOTSUPP, f, n,
				    "%s.username: basic authentication is not supported", label);
	}
	return 0;
}

static int resolve_cluster(struct kc_file *f, struct kc_item *it, struct kube_config *c,
			   struct error *err)
{
	char label[160], what[200];
	const char *server, *host, *proxy;
	struct error uerr = {0};
	yaml_node_t *ins, *sn;
	bool insecure = false;
	size_t n;
	int ret;

	snprintf(label, sizeof(label), "clusters[%.80s].cluster", it->name);
	if (!it->body)
		return kerr(err, EINVAL, f, it->entry, "clusters[%.80s].cluster: missing",
			    it->name);
	server = map_str(f, it->body, "server");
	if (!server || !*server)
		return kerr(err, EINVAL, f, it->body, "%s.server: missing", label);
	sn = map_get(&f->doc, it->body, "server");
	if (strstr(server, "://"))
		ret = asprintf(&c->server, "%s", server);
	else /* client-go defaults a bare host:port to https */
		ret = asprintf(&c->server, "https://%s", server);
	if (ret < 0) {
		c->server = NULL;
		return error_set(err, ENOMEM, "out of memory");
	}
	snprintf(what, sizeof(what), "%s.server", label);
	if (http_url_check(c->server, what, 0, NULL, &uerr) < 0)
		return kerr(err, EINVAL, f, sn, "%s", uerr.msg);
	host = strstr(c->server, "://") + 3;
	n = strlen(c->server);
	while (c->server + n > host && c->server[n - 1] == '/')
		c->server[--n] = '\0';
	ins = map_get(&f->doc, it->body, "insecure-skip-tls-verify");
	if (!is_null(ins))
		parse_bool(ins, &insecure); /* type checked at parse time */
	ret =
	    pem_field(f, it->body, label, "certificate-authority", &c->ca_pem, &c->ca_pem_len, err);
	if (ret < 0)
		return ret;
	if (insecure && c->ca_pem)
		return kerr(err, EINVAL, f, ins,
			    "%s: insecure-skip-tls-verify with a certificate authority: "
			    "specifying a root certificates file with the insecure flag is not "
			    "allowed",
			    label);
	c->insecure_skip_tls_verify = insecure;
	proxy = map_str(f, it->body, "proxy-url");
	if (proxy && *proxy) {
		snprintf(what, sizeof(what), "%s.proxy-url", label);
		if (http_url_check(proxy, what, HTTP_URL_PROXY, NULL, &uerr) < 0)
			return kerr(err, EINVAL, f, map_get(&f->doc, it->body, "proxy-url"), "%s",
				    uerr.msg);
		if ((ret = set_str(&c->proxy_url, proxy, err)) < 0)
			return ret;
	}
	if (map_str(f, it->body, "tls-server-name"))
		log_warn("%s: %s.tls-server-name is not supported: the server certificate must "
			 "match the host of %s",
			 f->path, label, c->server);
	return 0;
}

static void list_names(struct kc_list *l, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < l->n && o + 4 < len; i++) {
		int n = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", l->items[i].name);

		if (n < 0 || (size_t)n >= len - o) {
			snprintf(buf + o, len - o, "...");
			break;
		}
		o += (size_t)n;
	}
	if (!buf[0])
		snprintf(buf, len, "none");
}

static int kc_resolve(struct kc *k, const char *context, const char *source,
		      struct kube_config **out, struct error *err)
{
	struct kube_config *c = NULL;
	struct kc_item *ctx, *cl, *us = NULL;
	const char *cluster_name, *user_name, *ns;
	char label[160], names[200];
	struct kc_file *f;
	int ret;

	if (!context || !*context) {
		if (!k->current) {
			if (!k->nfiles)
				return error_set(err, ENOENT, "no kubeconfig");
			return error_set(err, EINVAL,
					 "%s: no current-context set and no --context given",
					 source);
		}
		context = k->current;
	}
	ctx = list_find(&k->contexts, context);
	if (!ctx) {
		list_names(&k->contexts, names, sizeof(names));
		if (k->current && !strcmp(context, k->current))
			return kerr(
			    err, EINVAL, k->current_file, k->current_node,
			    "current-context: context \"%.80s\" is not defined (contexts: %s)",
			    context, names);
		return error_set(err, EINVAL, "%s: context \"%.80s\" not found (contexts: %s)",
				 source, context, names);
	}
	f = ctx->f;
	snprintf(label, sizeof(label), "contexts[%.80s].context", ctx->name);
	if (!ctx->body)
		return kerr(err, EINVAL, f, ctx->entry, "%s: missing", label);
	cluster_name = map_str(f, ctx->body, "cluster");
	if (!cluster_name || !*cluster_name)
		return kerr(err, EINVAL, f, ctx->body, "%s.cluster: missing", label);
	cl = list_find(&k->clusters, cluster_name);
	if (!cl)
		return kerr(err, EINVAL, f, map_get(&f->doc, ctx->body, "cluster"),
			    "%s.cluster: cluster \"%.80s\" is not defined", label, cluster_name);
	user_name = map_str(f, ctx->body, "user");
	if (user_name && *user_name) {
		us = list_find(&k->users, user_name);
		if (!us)
			return kerr(err, EINVAL, f, map_get(&f->doc, ctx->body, "user"),
				    "%s.user: user \"%.80s\" is not defined", label, user_name);
	}
	ns = map_str(f, ctx->body, "namespace");

	c = calloc(1, sizeof(*c));
	if (!c)
		return error_set(err, ENOMEM, "out of memory");
	if ((ret = set_str(&c->context, ctx->name, err)) < 0 ||
	    (ret = set_str(&c->namespace, ns && *ns ? ns : "default", err)) < 0 ||
	    (ret = set_str(&c->source, source, err)) < 0)
		goto fail;
	ret = resolve_cluster(cl->f, cl, c, err);
	if (ret < 0)
		goto fail;
	if (us && us->body) {
		snprintf(label, sizeof(label), "users[%.80s].user", us->name);
		ret = resolve_user(us->f, us->body, label, c, err);
		if (ret < 0)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	kube_config_free(c);
	return ret;
}

int kube_config_parse(const char *buf, size_t len, const char *path, const char *context,
		      struct kube_config **out, struct error *err)
{
	struct kc k;
	int ret;

	memset(&k, 0, sizeof(k));
	ret = kc_add(&k, buf, len, path, err);
	if (ret == 0)
		ret = kc_resolve(&k, context, path ? path : "<input>", out, err);
	kc_free(&k);
	return ret;
}

static int add_file(struct kc *k, const char *path, bool must_exist, bool *added, struct error *err)
{
	char *buf = NULL;
	size_t len = 0;
	int ret;

	*added = false;
	ret = file_read_all(path, KUBECONFIG_MAX_BYTES, &buf, &len);
	if (ret == -ENOENT && !must_exist)
		return 0;
	if (ret < 0)
		return error_set(err, -ret, "kubeconfig %s: %s", path, strerror(-ret));
	ret = kc_add(k, buf, len, path, err);
	/* Inline keys and tokens live in the text: do not leave them in freed memory. */
	free_secret(buf, len);
	if (ret == 0)
		*added = true;
	return ret;
}

static const char *sa_dir(void)
{
	const char *d = getenv(KUBE_SERVICEACCOUNT_DIR_ENV);

	return d && *d ? d : KUBE_SERVICEACCOUNT_DIR;
}

int kube_config_in_cluster(struct kube_config **out, struct error *err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"),
		   *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = sa_dir();
	struct kube_config *c;
	char *path = NULL, *ns = NULL;
	size_t len;
	int ret;

	if (!host || !*host || !port || !*port)
		return error_set(err, ENOENT,
				 "not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
	if (strpbrk(host, "/ \t@?#") || strspn(port, "0123456789") != strlen(port))
		return error_set(err, EINVAL, "KUBERNETES_SERVICE_HOST/PORT \"%s\":\"%s\" invalid",
				 host, port);
	c = calloc(1, sizeof(*c));
	if (!c)
		return error_set(err, ENOMEM, "out of memory");
	c->in_cluster = true;
	if (asprintf(&c->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
		     port) < 0) {
		c->server = NULL;
		goto nomem;
	}
	if (set_str(&c->context, "in-cluster", err) < 0 || set_str(&c->source, dir, err) < 0)
		goto nomem;
	if (asprintf(&path, "%s/token", dir) < 0)
		goto nomem;
	ret = file_read_all(path, REFERENCED_MAX_BYTES, &c->token, &len);
	if (ret < 0) {
		error_set(err, -ret, "in-cluster service account token %s: %s", path,
			  strerror(-ret));
		goto fail;
	}
	trim(c->token);
	if (!*c->token) {
		ret = error_set(err, EINVAL, "in-cluster service account token %s: empty", path);
		goto fail;
	}
	c->token_file = path;
	path = NULL;
	if (asprintf(&path, "%s/ca.crt", dir) < 0)
		goto nomem;
	ret = file_read_all(path, REFERENCED_MAX_BYTES, &c->ca_pem, &c->ca_pem_len);
	if (ret < 0) {
		error_set(err, -ret, "in-cluster CA %s: %s", path, strerror(-ret));
		goto fail;
	}
	free(path);
	if (asprintf(&path, "%s/namespace", dir) < 0)
		goto nomem;
	if (file_read_all(path, 4096, &ns, &len) == 0) {
		trim(ns);
		if (*ns) {
			c->namespace = ns;
			ns = NULL;
		}
	}
	free(ns);
	if (!c->namespace && set_str(&c->namespace, "default", err) < 0)
		goto nomem;
	free(path);
	log_debug("kubeconfig: in-cluster service account from %s, server %s", dir, c->server);
	*out = c;
	return 0;
nomem:
	ret = error_set(err, ENOMEM, "out of memory");
fail:
	free(path);
	kube_config_free(c);
	return ret;
}

int kube_config_load(const struct kube_config_options *opt, struct kube_config **out,
		     struct error *err)
{
	const char *explicit_path = opt ? opt->kubeconfig : NULL;
	const char *context = opt ? opt->context : NULL;
	const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
	char *list = NULL, *home_cfg = NULL, *source = NULL;
	struct kc k;
	bool added, any = false;
	int ret = 0;

	memset(&k, 0, sizeof(k));
	if (explicit_path) {
		ret = add_file(&k, explicit_path, true, &added, err);
		if (ret < 0)
			goto cleanup;
		any = true;
		source = strdup(explicit_path);
	} else if (env && *env) {
		char *save = NULL;
		size_t slen = 0;

		list = strdup(env);
		source = calloc(1, strlen(env) + 1);
		if (!list || !source) {
			ret = error_set(err, ENOMEM, "out of memory");
			goto cleanup;
		}
		for (char *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
			bool seen = false;

			for (size_t i = 0; i < k.nfiles; i++)
				if (!strcmp(k.files[i].path, p))
					seen = true;
			if (seen)
				continue;
			ret = add_file(&k, p, false, &added, err);
			if (ret < 0)
				goto cleanup;
			if (added) {
				slen += (size_t)sprintf(source + slen, "%s%s", any ? ":" : "", p);
				any = true;
			}
		}
	} else if (home && *home) {
		if (asprintf(&home_cfg, "%s/.kube/config", home) < 0) {
			home_cfg = NULL;
			ret = error_set(err, ENOMEM, "out of memory");
			goto cleanup;
		}
		ret = add_file(&k, home_cfg, false, &any, err);
		if (ret < 0)
			goto cleanup;
		source = strdup(home_cfg);
	}
	if (any && (k.contexts.n || k.current || context || explicit_path)) {
		if (!source) {
			ret = error_set(err, ENOMEM, "out of memory");
			goto cleanup;
		}
		ret = kc_resolve(&k, context, source, out, err);
		if (ret == 0)
			log_debug("kubeconfig: %s, context %s, server %s", source, (*out)->context,
				  (*out)->server);
		goto cleanup;
	}
	/* Nothing usable in files: in-cluster, as client-go's deferred loading does. */
	if (getenv("KUBERNETES_SERVICE_HOST") && getenv("KUBERNETES_SERVICE_PORT")) {
		if (context) {
			ret = error_set(
			    err, EINVAL,
			    "--context %s: no kubeconfig found (in-cluster has no contexts)",
			    context);
			goto cleanup;
		}
		ret = kube_config_in_cluster(out, err);
		goto cleanup;
	}
	ret =
	    error_set(err, ENOENT,
		      "no Kubernetes configuration: no --kubeconfig, %s, and not in a cluster "
		      "(KUBERNETES_SERVICE_HOST unset)",
		      env && *env ? "no context in the files of $KUBECONFIG" : "no ~/.kube/config");
cleanup:
	kc_free(&k);
	free(list);
	free(home_cfg);
	free(source);
	return ret;
}
