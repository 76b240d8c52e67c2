/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Resource requests: /api/v1/... and /apis/GROUP/VERSION/..., cluster-scoped
 * (RESOURCE[/NAME[/SUB]]) or namespaced (namespaces/NS/RESOURCE[/NAME[/SUB]]).
 *
 *   GET collection   list (limit/continue, labelSelector, fieldSelector) or watch=true
 *   GET item         get
 *   POST collection  create (reviews: answered, not stored)
 *   PUT item         update; PUT item/status: status only
 *   PATCH item       merge, JSON or strategic merge patch; apply-patch (server-side apply,
 *                    without field ownership: the applied fields are merged in)
 *   DELETE item      delete with DeleteOptions (preconditions, propagationPolicy)
 *   DELETE coll.     deletecollection with selectors
 * `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` turns get and list (and watch)
 * answers into Tables. dryRun=All validates without storing. Errors are Status objects.
 *
 * A list is served from the current objects in key order; its continue token holds the
 * list's resourceVersion and the last key returned (base64 JSON, as the API server's), so
 * pages are stable and each page reports the first page's resourceVersion.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/base64.h"
#include "common/log.h"
#include "emu/kube/kube.h"

struct target {
	struct kube_res *res;
	const char *ns; /* NULL: cluster-scoped or all namespaces */
	const char *name;
	const char *sub; /* "status" or NULL */
};

int kube_reply_status(struct emu_request *req, struct kube_err *e)
{
	json_t *st = kube_status_json(e);
	char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
	int ret;

	json_decref(st);
	if (!text)
		return emu_reply(req, 500, "text/plain", "out of memory\n", 14);
	ret = emu_reply(req, e->code, "application/json", text, strlen(text));
	free(text);
	return ret;
}

static int reply_err(struct emu_request *req, struct kube_err *e)
{
	int ret = kube_reply_status(req, e);

	kube_err_clear(e);
	return ret;
}

static int reply_errf(struct emu_request *req, unsigned code, const char *reason, const char *msg)
{
	struct kube_err e = {0};

	kube_errf(&e, code, reason, "%s", msg);
	return reply_err(req, &e);
}

int kube_reply_kobj(struct emu_request *req, unsigned code, struct kobj *o)
{
	size_t len;
	const char *text = kobj_text(o, &len);

	return emu_reply(req, code, "application/json", text, len);
}

static int reply_json(struct emu_request *req, unsigned code, json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	int ret;

	json_decref(doc);
	if (!text)
		return emu_reply(req, 500, "text/plain", "out of memory\n", 14);
	ret = emu_reply(req, code, "application/json", text, strlen(text));
	free(text);
	return ret;
}

static bool wants_table(struct emu_request *req)
{
	const char *accept = emu_request_header(req, "Accept");

	return accept && strstr(accept, "as=Table") != NULL;
}

/* ---- options of writes (metav1.CreateOptions, UpdateOptions, PatchOptions) ---- */
#define FIELD_MANAGER_MAX 128 /* validation.FieldManagerMaxLength */

struct write_opts {
	bool dry_run;
	bool force;                              /* apply: take fields other managers own */
	char manager[FIELD_MANAGER_MAX * 4 + 1]; /* fieldManager, else the User-Agent's prefix */
};

enum write_kind { WK_CREATE, WK_UPDATE, WK_PATCH, WK_APPLY };

/* strconv.ParseBool */
static int parse_go_bool(const char *s, bool *out)
{
	static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};

	for (size_t i = 0; i < 6; i++) {
		if (!strcmp(s, t[i])) {
			*out = true;
			return 0;
		}
		if (!strcmp(s, f[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* dryRun: only "All" (ValidateDryRun). */
static void check_dry_run(const char *value, json_t *causes)
{
	if (strcmp(value, "All"))
		kube_cause(causes, "FieldValueNotSupported", "dryRun",
			   "Unsupported value: []string{\"%s\"}: supported values: \"All\"", value);
}

/* prefixFromUserAgent: the User-Agent up to its first "/", printable characters only. */
static void user_agent_manager(struct emu_request *req, char *out, size_t len)
{
	const char *ua = emu_request_header(req, "User-Agent");
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)(ua ? ua : ""); *p && *p != '/'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			continue;
		if (n + 1 > FIELD_MANAGER_MAX || n + 1 >= len)
			break;
		out[n++] = (char)*p;
	}
	out[n] = '\0';
}

/*
 * The query options of a write, validated as ValidateCreateOptions / ValidateUpdateOptions /
 * ValidatePatchOptions do (422 Invalid on CreateOptions.meta.k8s.io ...).
 */
static int write_options(struct emu_request *req, enum write_kind kind, struct write_opts *o,
			 struct kube_err *e)
{
	static const char *const kinds[] = {"CreateOptions", "UpdateOptions", "PatchOptions",
					    "PatchOptions"};
	const char *dr = emu_request_query(req, "dryRun"),
		   *fm = emu_request_query(req, "fieldManager");
	const char *fv = emu_request_query(req, "fieldValidation"),
		   *force = emu_request_query(req, "force");
	json_t *causes = json_array();

	*o = (struct write_opts){0};
	if (force && parse_go_bool(force, &o->force) < 0) {
		json_decref(causes);
		return kube_errf(e, 400, "BadRequest",
				 "strconv.ParseBool: parsing \"%s\": invalid syntax", force);
	}
	if (dr) {
		check_dry_run(dr, causes);
		o->dry_run = true;
	}
	if (kind == WK_APPLY && (!fm || !fm[0]))
		kube_cause(causes, "FieldValueRequired", "fieldManager",
			   "Required value: is required for apply patch");
	if (kind == WK_PATCH && force)
		kube_cause(causes, "FieldValueForbidden", "force",
			   "Forbidden: may not be specified for non-apply patch");
	if (fm && strlen(fm) > FIELD_MANAGER_MAX)
		kube_cause(causes, "FieldValueTooLong", "fieldManager",
			   "Too long: may not be more than %d bytes", FIELD_MANAGER_MAX);
	for (size_t i = 0; fm && fm[i]; i++) {
		unsigned char c = (unsigned char)fm[i];
		if (c < 0x20 || c == 0x7f) {
			kube_cause(
			    causes, "FieldValueInvalid", "fieldManager",
			    "Invalid value: \"%s\": invalid character U+%04X (at position %zu)", fm,
			    c, i);
			break;
		}
	}
	if (fv && fv[0] && strcmp(fv, "Ignore") && strcmp(fv, "Warn") && strcmp(fv, "Strict"))
		kube_cause(
		    causes, "FieldValueNotSupported", "fieldValidation",
		    "Unsupported value: \"%s\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"",
		    fv);
	if (json_array_size(causes))
		return kube_err_invalid_gk(e, "meta.k8s.io", kinds[kind], "", causes);
	json_decref(causes);
	if (fm && fm[0])
		snprintf(o->manager, sizeof(o->manager), "%s", fm);
	else
		user_agent_manager(req, o->manager, sizeof(o->manager));
	return 0;
}

static unsigned wflags(const struct write_opts *o)
{
	return o->dry_run ? KWF_DRY_RUN : 0;
}

/* ---- the path ---- */
static int split_path(char *p, char **seg, int max)
{
	int n = 0;

	while (*p == '/')
		p++;
	while (*p && n < max) {
		seg[n++] = p;
		p = strchr(p, '/');
		if (!p)
			break;
		*p++ = '\0';
		if (!*p)
			break;
	}
	return (p && *p) ? -1 : n;
}

/* 0 with t filled, 1 when the path is not a resource path (404 already answered). */
static int parse_target(struct emu_kube *k, struct emu_request *req, char *path, struct target *t)
{
	char *seg[10];
	int n = split_path(path, seg, 10), i;
	const char *group, *version;

	*t = (struct target){0};
	if (n < 3)
		return 1;
	if (!strcmp(seg[0], "api")) {
		group = "";
		version = seg[1];
		i = 2;
	} else if (!strcmp(seg[0], "apis") && n >= 4) {
		group = seg[1];
		version = seg[2];
		i = 3;
	} else {
		return 1;
	}
	/* namespaces/NS/RESOURCE...: unless it is the namespace's own subresource. */
	if (n - i >= 3 && !strcmp(seg[i], "namespaces") && strcmp(seg[i + 2], "status") &&
	    strcmp(seg[i + 2], "finalize")) {
		t->ns = seg[i + 1];
		i += 2;
	}
	t->res = kube_res_find(k, group, version, seg[i]);
	if (!t->res || n - i > 3)
		return 1;
	if (t->ns && !(t->res->def.flags & KR_NAMESPACED))
		return 1;
	if (n - i >= 2)
		t->name = seg[i + 1];
	if (n - i == 3) {
		t->sub = seg[i + 2];
		if (strcmp(t->sub, "status") || !(t->res->def.flags & KR_STATUS)) {
			/* namespaces/NAME/finalize is accepted as a status write. */
			if (!(!strcmp(t->res->def.resource, "namespaces") &&
			      !strcmp(t->sub, "finalize")))
				return 1;
		}
	}
	(void)req;
	return 0;
}

/* ---- bodies ---- */
/*
 * The body as a JSON value: JSON (YAML's JSON subset), or the Kubernetes protobuf encoding.
 * Bodies over the API server's limit (--max-request-bytes, 3 MiB by default) are refused
 * before they are parsed.
 */
json_t *kube_parse_body(struct emu_request *req, struct kube_err *e)
{
	const char *ct = emu_request_header(req, "Content-Type");
	json_error_t jerr;
	json_t *doc;
	char err[512];

	if (req->body_len > KUBE_MAX_REQUEST_BYTES) {
		kube_errf(e, 413, "RequestEntityTooLarge", "Request entity too large: limit is %u",
			  KUBE_MAX_REQUEST_BYTES);
		return NULL;
	}
	if (kube_protobuf_content_type(ct)) {
		if (kube_protobuf_decode(req->body, req->body_len, &doc, err, sizeof(err)) < 0) {
			kube_errf(e, 400, "BadRequest", "%s", err);
			return NULL;
		}
		return doc;
	}
	if (ct && strstr(ct, "protobuf")) {
		kube_errf(
		    e, 415, "UnsupportedMediaType",
		    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf");
		return NULL;
	}
	if (!req->body_len) {
		kube_errf(e, 400, "BadRequest", "the request body is empty");
		return NULL;
	}
	doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc && ct && (strstr(ct, "yaml"))) {
		/* application/yaml, application/apply-patch+yaml: YAML (JSON is YAML too) */
		if (kube_yaml_to_json(req->body, req->body_len, &doc, err, sizeof(err)) < 0) {
			kube_errf(e, 400, "BadRequest", "error decoding YAML: %s", err);
			return NULL;
		}
		return doc;
	}
	if (!doc) {
		kube_errf(
		    e, 400, "BadRequest",
		    "the object provided is unrecognized (must be of type JSON): %s (line %d, column %d)",
		    jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	return doc;
}

static json_t *parse_body(struct emu_request *req, struct kube_err *e)
{
	return kube_parse_body(req, e);
}

/* ---- continue tokens ---- */
static char *continue_token(uint64_t rv, const char *last_key)
{
	json_t *t = json_pack("{s:s, s:I, s:s+}", "v", "meta.k8s.io/v1", "rv", (json_int_t)rv,
			      "start", last_key, "\x01");
	char *text = t ? json_dumps(t, JSON_COMPACT) : NULL, *out = NULL;

	if (text) {
		out = malloc(base64_encoded_size(strlen(text)));
		if (out)
			base64_encode(text, strlen(text), out, 0);
	}
	free(text);
	json_decref(t);
	return out;
}

/* The start key (after it) and the list's resourceVersion; -EINVAL when not ours. */
static int parse_continue(const char *tok, char *after, size_t len, uint64_t *rv)
{
	uint8_t *raw = NULL;
	size_t n;
	json_t *t = NULL;
	const char *start;
	int ret = -EINVAL;

	if (base64_decode(tok, strlen(tok), BASE64_ANY_ALPHABET, &raw, &n) < 0)
		return -EINVAL;
	t = json_loadb((const char *)raw, n, 0, NULL);
	start = kj_str(t, "start");
	if (t && start && json_is_integer(json_object_get(t, "rv")) &&
	    !strcmp(kj_str(t, "v") ?: "", "meta.k8s.io/v1")) {
		size_t sl = strlen(start);
		/* "key\x01": resume strictly after key. */
		if (sl && start[sl - 1] == '\x01' && sl - 1 < len) {
			memcpy(after, start, sl - 1);
			after[sl - 1] = '\0';
			*rv = (uint64_t)json_integer_value(json_object_get(t, "rv"));
			ret = 0;
		}
	}
	json_decref(t);
	free(raw);
	return ret;
}

/* ---- selectors from the query ---- */
static int selectors(struct emu_request *req, struct kube_res *r, struct kube_selector **labels,
		     struct kube_selector **fields, struct kube_err *e)
{
	const char *ls = emu_request_query(req, "labelSelector");
	const char *fs = emu_request_query(req, "fieldSelector");
	char err[256];

	*labels = *fields = NULL;
	if (ls && kube_label_selector_parse(ls, labels, err, sizeof(err)) < 0)
		return kube_errf(e, 400, "BadRequest", "%s", err);
	if (fs && kube_field_selector_parse(fs, r, fields, err, sizeof(err)) < 0) {
		kube_selector_free(*labels);
		*labels = NULL;
		return kube_errf(e, 400, "BadRequest", "%s", err);
	}
	return 0;
}

static bool parse_uint(const char *s, uint64_t *out)
{
	char *end;

	if (!s || !*s || *s == '-')
		return false;
	*out = strtoull(s, &end, 10);
	return *end == '\0';
}

/* ---- list ---- */
static int do_list(struct emu_kube *k, struct emu_request *req, struct target *t)
{
	struct kube_res *r = t->res;
	struct kube_selector *labels = NULL, *fields = NULL;
	struct kube_err e = {0};
	const char *cont = emu_request_query(req, "continue"), *name;
	const char *rv_param = emu_request_query(req, "resourceVersion");
	const char *rv_match = emu_request_query(req, "resourceVersionMatch");
	uint64_t limit = 0, list_rv = k->rv, want_rv;
	char after[600] = "", prefix[300] = "", *token = NULL;
	struct kobj **objs = NULL;
	size_t n = 0, cap = 0, i, remaining = 0;
	bool more = false;
	int ret;

	if (emu_request_query(req, "limit") && !parse_uint(emu_request_query(req, "limit"), &limit))
		return reply_errf(req, 400, "BadRequest", "limit must be a non-negative integer");
	if (selectors(req, r, &labels, &fields, &e) < 0)
		return reply_err(req, &e);
	if (rv_match && strcmp(rv_match, "Exact") && strcmp(rv_match, "NotOlderThan")) {
		ret = reply_errf(
		    req, 400, "BadRequest",
		    "resourceVersionMatch: Unsupported value: must be Exact or NotOlderThan");
		goto cleanup;
	}
	if (rv_match && !strcmp(rv_match, "Exact") && parse_uint(rv_param, &want_rv) &&
	    want_rv != k->rv) {
		/* Only the current state is kept: an older snapshot has been compacted. */
		kube_errf(&e, 410, "Expired", "too old resource version: %llu (%llu)",
			  (unsigned long long)want_rv, (unsigned long long)k->rv);
		ret = reply_err(req, &e);
		goto cleanup;
	}
	if (cont && cont[0]) {
		if (parse_continue(cont, after, sizeof(after), &list_rv) < 0) {
			ret = reply_errf(
			    req, 400, "BadRequest",
			    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
			goto cleanup;
		}
	}
	if (t->ns && (r->def.flags & KR_NAMESPACED))
		snprintf(prefix, sizeof(prefix), "%s/", t->ns);
	name = kube_selector_name(fields);
	if (name) {
		/* metadata.name=X: a lookup, not a scan (one match at most per namespace). */
		for (i = 0; i < r->len; i++) {
			struct kobj *o;
			if (t->ns || !(r->def.flags & KR_NAMESPACED)) {
				o = kube_get(r, t->ns, name);
				i = r->len;
			} else {
				o = r->items[i].obj;
				if (strcmp(kobj_name(o), name) != 0)
					continue;
			}
			if (o && kube_selector_match(labels, o->obj) &&
			    kube_selector_match(fields, o->obj)) {
				struct kobj **nb = realloc(objs, (n + 1) * sizeof(*nb));
				if (!nb)
					break;
				objs = nb;
				objs[n++] = o;
			}
		}
	} else {
		size_t start = kube_lower_bound(r, after[0] ? after : "");
		if (prefix[0]) {
			size_t ps = kube_lower_bound(r, prefix);
			/* lower_bound(prefix) is the first key > prefix: "ns/" itself is no key. */
			if (ps > start)
				start = ps;
		}
		for (i = start; i < r->len; i++) {
			struct kobj *o = r->items[i].obj;
			if (prefix[0] && strncmp(r->items[i].key, prefix, strlen(prefix)) != 0)
				break;
			if (!kube_selector_match(labels, o->obj) ||
			    !kube_selector_match(fields, o->obj))
				continue;
			if (limit && n == limit) {
				more = true;
				break;
			}
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct kobj **nb = realloc(objs, ncap * sizeof(*nb));
				if (!nb)
					break;
				objs = nb;
				cap = ncap;
			}
			objs[n++] = o;
		}
		if (more && !labels && !fields) {
			/* remainingItemCount, as the API server reports it without selectors. */
			size_t j;
			for (j = i; j < r->len; j++)
				if (prefix[0] &&
				    strncmp(r->items[j].key, prefix, strlen(prefix)) != 0)
					break;
			remaining = j - i;
		}
	}
	if (more && n) {
		const char *last = NULL;
		char key[600];
		last = kube_key(r, kobj_namespace(objs[n - 1]), kobj_name(objs[n - 1]), key,
				sizeof(key));
		token = continue_token(list_rv, last);
	}
	if (wants_table(req)) {
		json_t *table = kube_table(k, r, objs, n, emu_request_query(req, "includeObject"));
		json_t *meta = json_object_get(table, "metadata");
		char rvs[24];
		snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)list_rv);
		json_object_set_new(meta, "resourceVersion", json_string(rvs));
		if (token)
			json_object_set_new(meta, "continue", json_string(token));
		if (remaining)
			json_object_set_new(meta, "remainingItemCount",
					    json_integer((json_int_t)remaining));
		ret = reply_json(req, 200, table);
	} else {
		/* Items are the stored texts: no re-serialization for a page of 500 nodes. */
		size_t total = 256 + (token ? strlen(token) : 0), len;
		char *out, *p;
		for (i = 0; i < n; i++) {
			kobj_text(objs[i], &len);
			total += len + 1;
		}
		out = malloc(total);
		if (!out) {
			ret = emu_reply(req, 500, "text/plain", "out of memory\n", 14);
			goto cleanup;
		}
		p = out +
		    sprintf(
			out,
			"{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\":\"%llu\"",
			r->list_kind, r->api_version, (unsigned long long)list_rv);
		if (token)
			p += sprintf(p, ",\"continue\":\"%s\"", token);
		if (remaining)
			p += sprintf(p, ",\"remainingItemCount\":%zu", remaining);
		p += sprintf(p, "},\"items\":[");
		for (i = 0; i < n; i++) {
			const char *text = kobj_text(objs[i], &len);
			if (i)
				*p++ = ',';
			memcpy(p, text, len);
			p += len;
		}
		p += sprintf(p, "]}");
		ret = emu_reply(req, 200, "application/json", out, (size_t)(p - out));
		free(out);
	}
cleanup:
	free(token);
	free(objs);
	kube_selector_free(labels);
	kube_selector_free(fields);
	return ret;
}

static int do_watch(struct emu_kube *k, struct emu_request *req, struct target *t)
{
	struct kube_watch_params p = {0};
	struct kube_err e = {0};
	const char *to = emu_request_query(req, "timeoutSeconds");
	const char *bm = emu_request_query(req, "allowWatchBookmarks");
	const char *si = emu_request_query(req, "sendInitialEvents");

	if (selectors(req, t->res, &p.labels, &p.fields, &e) < 0)
		return reply_err(req, &e);
	p.res = t->res;
	p.ns = t->ns;
	p.rv = emu_request_query(req, "resourceVersion");
	p.table = wants_table(req);
	p.bookmarks = bm && (!strcmp(bm, "true") || !strcmp(bm, "1"));
	p.send_initial = si && (!strcmp(si, "true") || !strcmp(si, "1"));
	p.include_object = emu_request_query(req, "includeObject");
	if (to && !parse_uint(to, &p.timeout_s)) {
		kube_selector_free(p.labels);
		kube_selector_free(p.fields);
		return reply_errf(req, 400, "BadRequest",
				  "timeoutSeconds must be a non-negative integer");
	}
	if (t->name) {
		/* Watch of one object (legacy form): as fieldSelector=metadata.name. */
		char sel[400];
		char err[128];
		snprintf(sel, sizeof(sel), "metadata.name=%s", t->name);
		kube_selector_free(p.fields);
		kube_field_selector_parse(sel, NULL, &p.fields, err, sizeof(err));
	}
	return kube_watch_start(k, req, &p);
}

/* ---- get ---- */
static int do_get(struct emu_kube *k, struct emu_request *req, struct target *t)
{
	struct kube_err e = {0};
	struct kobj *o = kube_get(t->res, t->ns, t->name);

	if (!o) {
		kube_err_not_found(&e, t->res, t->name);
		return reply_err(req, &e);
	}
	if (wants_table(req)) {
		struct kobj *one[1] = {o};
		json_t *table =
		    kube_table(k, t->res, one, 1, emu_request_query(req, "includeObject"));
		json_object_set(json_object_get(table, "metadata"), "resourceVersion",
				kj_path(o->obj, "metadata.resourceVersion"));
		return reply_json(req, 200, table);
	}
	return kube_reply_kobj(req, 200, o);
}

/* ---- writes ---- */
static int do_create(struct emu_kube *k, struct emu_request *req, struct target *t)
{
	struct kube_err e = {0};
	struct kobj *o = NULL;
	json_t *obj;
	int ret;

	struct write_opts wo;

	if (write_options(req, WK_CREATE, &wo, &e) < 0)
		return reply_err(req, &e);
	obj = parse_body(req, &e);
	if (!obj)
		return reply_err(req, &e);
	if (t->res->def.flags & KR_CREATE_ONLY) {
		if (kube_review(k, t->res, req, obj, &e) < 0) {
			json_decref(obj);
			return reply_err(req, &e);
		}
		return reply_json(req, 201, obj);
	}
	if ((t->res->def.flags & KR_NAMESPACED) && !t->ns) {
		/* Namespaced types are created under namespaces/NS/ only. */
		json_decref(obj);
		return reply_errf(
		    req, 405, "MethodNotAllowed",
		    "the server does not allow this method on the requested resource");
	}
	k->manager = wo.manager;
	ret = kube_create(k, t->res, t->ns, obj, wflags(&wo), &e, &o);
	k->manager = NULL;
	if (ret < 0)
		return reply_err(req, &e);
	ret = kube_reply_kobj(req, 201, o);
	kobj_unref(o);
	return ret;
}

static enum kube_write_mode write_mode(const struct target *t)
{
	return t->sub ? KW_STATUS : KW_MAIN;
}

static int do_update(struct emu_kube *k, struct emu_request *req, struct target *t)
{
	struct kube_err e = {0};
	struct kobj *o = NULL;
	struct write_opts wo;
	json_t *obj;
	int ret;

	if (write_options(req, WK_UPDATE, &wo, &e) < 0)
		return reply_err(req, &e);
	obj = parse_body(req, &e);
	if (!obj)
		return reply_err(req, &e);
	k->manager = wo.manager;
	if (t->sub && !strcmp(t->sub, "finalize")) {
		/* namespaces/NAME/finalize writes spec.finalizers. */
		struct kobj *cur = kube_get(t->res, NULL, t->name);
		json_t *n;
		if (!cur) {
			json_decref(obj);
			k->manager = NULL;
			kube_err_not_found(&e, t->res, t->name);
			return reply_err(req, &e);
		}
		n = json_deep_copy(cur->obj);
		json_object_set(kj_obj(n, "spec"), "finalizers", kj_path(obj, "spec.finalizers"));
		json_decref(obj);
		obj = n;
		ret = kube_update(k, t->res, NULL, t->name, obj, KW_INTERNAL, wflags(&wo), &e, &o);
	} else {
		ret =
		    kube_update(k, t->res, t->ns, t->name, obj, write_mode(t), wflags(&wo), &e, &o);
	}
	k->manager = NULL;
	if (ret < 0)
		return reply_err(req, &e);
	ret = kube_reply_kobj(req, 200, o);
	kobj_unref(o);
	return ret;
}

/*
 * Server-side apply (PATCH application/apply-patch+yaml): the field manager merges the
 * configuration and decides ownership (kube/managed.c); a missing object is created.
 */
static int do_apply(struct emu_kube *k, struct emu_request *req, struct target *t, struct kobj *cur,
		    json_t *config, const struct write_opts *wo)
{
	struct kube_err e = {0};
	struct kobj *o = NULL;
	json_t *result;
	const char *name;
	int ret;

	if (!cur && t->sub) {
		json_decref(config);
		kube_err_not_found(&e, t->res, t->name);
		return reply_err(req, &e);
	}
	name = json_is_object(config) ? kj_str(config, "metadata.name") : NULL;
	if (name && strcmp(name, t->name)) {
		kube_errf(&e, 400, "BadRequest",
			  "the name of the object (%s) does not match the name on the URL (%s)",
			  name, t->name);
		json_decref(config);
		return reply_err(req, &e);
	}
	if (json_is_object(config))
		json_object_set_new(kj_obj(config, "metadata"), "name", json_string(t->name));
	result = kube_managed_apply(t->res, cur ? cur->obj : NULL, config, write_mode(t),
				    wo->manager, wo->force, &e);
	if (!result)
		return reply_err(req, &e);
	k->manager = wo->manager;
	if (cur)
		ret = kube_update(k, t->res, t->ns, t->name, result, write_mode(t),
				  wflags(wo) | KWF_APPLIED, &e, &o);
	else
		ret = kube_create(k, t->res, t->ns, result, wflags(wo) | KWF_APPLIED, &e, &o);
	k->manager = NULL;
	if (ret < 0)
		return reply_err(req, &e);
	ret = kube_reply_kobj(req, cur ? 200 : 201, o);
	kobj_unref(o);
	return ret;
}

static int do_patch(struct emu_kube *k, struct emu_request *req, struct target *t)
{
	const char *ct = emu_request_header(req, "Content-Type");
	struct kube_err e = {0};
	struct kobj *cur, *o = NULL;
	struct write_opts wo;
	json_t *patch, *result = NULL;
	char err[512] = "";
	bool apply = false;
	int ret;

	if (!ct || (!strstr(ct, "application/merge-patch+json") &&
		    !strstr(ct, "application/json-patch+json") &&
		    !strstr(ct, "application/strategic-merge-patch+json") &&
		    !strstr(ct, "application/apply-patch+yaml"))) {
		kube_errf(
		    &e, 415, "UnsupportedMediaType",
		    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml%s",
		    (t->res->def.flags & KR_CUSTOM) ? ""
						    : ", application/strategic-merge-patch+json");
		return reply_err(req, &e);
	}
	if (strstr(ct, "strategic") && (t->res->def.flags & KR_CUSTOM)) {
		kube_errf(
		    &e, 415, "UnsupportedMediaType",
		    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml");
		return reply_err(req, &e);
	}
	apply = strstr(ct, "apply-patch") != NULL;
	if (write_options(req, apply ? WK_APPLY : WK_PATCH, &wo, &e) < 0)
		return reply_err(req, &e);
	patch = parse_body(req, &e);
	if (!patch)
		return reply_err(req, &e);
	cur = kube_get(t->res, t->ns, t->name);
	if (apply)
		return do_apply(k, req, t, cur, patch, &wo);
	if (!cur) {
		json_decref(patch);
		kube_err_not_found(&e, t->res, t->name);
		return reply_err(req, &e);
	}
	if (strstr(ct, "json-patch")) {
		if (kube_json_patch(cur->obj, patch, &result, err, sizeof(err)) < 0) {
			json_decref(patch);
			kube_errf(&e, 422, "Invalid", "%s", err);
			return reply_err(req, &e);
		}
	} else if (strstr(ct, "merge-patch") && !strstr(ct, "strategic")) {
		if (!json_is_object(patch)) {
			json_decref(patch);
			return reply_errf(
			    req, 400, "BadRequest",
			    "error decoding patch: a merge patch must be a JSON object");
		}
		result = kube_merge_patch(cur->obj, patch);
	} else {
		if (kube_strategic_merge_patch(cur->obj, patch, &result, err, sizeof(err)) < 0) {
			json_decref(patch);
			kube_errf(&e, 400, "BadRequest", "error decoding patch: %s", err);
			return reply_err(req, &e);
		}
	}
	json_decref(patch);
	if (!json_is_object(result)) {
		json_decref(result);
		return reply_errf(req, 422, "Invalid", "the patched object is not a JSON object");
	}
	k->manager = wo.manager;
	ret = kube_update(k, t->res, t->ns, t->name, result, write_mode(t), wflags(&wo), &e, &o);
	k->manager = NULL;
	if (ret < 0)
		return reply_err(req, &e);
	ret = kube_reply_kobj(req, 200, o);
	kobj_unref(o);
	return ret;
}

/* pods, services and namespaces answer a delete with the object; others with a Status. */
static bool returns_object(const struct kube_res *r)
{
	return !strcmp(r->def.resource, "pods") || !strcmp(r->def.resource, "services") ||
	       !strcmp(r->def.resource, "namespaces") || (r->def.flags & KR_CUSTOM);
}

/*
 * DeleteOptions: from the body when there is one (JSON or protobuf), else from the query,
 * never both (apiserver handlers/delete.go), then ValidateDeleteOptions. *dry: dryRun All.
 */
static json_t *delete_options(struct emu_request *req, bool *dry, struct kube_err *e)
{
	json_t *opts, *v, *causes;
	size_t i;

	*dry = false;
	if (req->body_len) {
		opts = parse_body(req, e);
		if (!opts)
			return NULL;
		if (!json_is_object(opts)) {
			json_decref(opts);
			kube_errf(e, 400, "BadRequest",
				  "json: cannot unmarshal into Go value of type v1.DeleteOptions");
			return NULL;
		}
		v = json_object_get(opts, "dryRun");
		if (v && !json_is_null(v) && !json_is_array(v)) {
			json_decref(opts);
			kube_errf(
			    e, 400, "BadRequest",
			    "json: cannot unmarshal into Go struct field DeleteOptions.dryRun of type []string");
			return NULL;
		}
		json_array_foreach(v, i, v)
		{
			if (!json_is_string(v)) {
				json_decref(opts);
				kube_errf(
				    e, 400, "BadRequest",
				    "json: cannot unmarshal into Go struct field DeleteOptions.dryRun of type string");
				return NULL;
			}
		}
		v = json_object_get(opts, "propagationPolicy");
		if (v && !json_is_null(v) && !json_is_string(v)) {
			json_decref(opts);
			kube_errf(
			    e, 400, "BadRequest",
			    "json: cannot unmarshal into Go struct field DeleteOptions.propagationPolicy of type v1.DeletionPropagation");
			return NULL;
		}
		if (json_is_null(v))
			json_object_del(opts, "propagationPolicy");
	} else {
		const char *pp = emu_request_query(req, "propagationPolicy");
		const char *od = emu_request_query(req, "orphanDependents");
		const char *dr = emu_request_query(req, "dryRun");
		bool orphan;
		opts = json_object();
		if (pp)
			json_object_set_new(opts, "propagationPolicy", json_string(pp));
		if (od) {
			if (parse_go_bool(od, &orphan) < 0) {
				json_decref(opts);
				kube_errf(e, 400, "BadRequest",
					  "strconv.ParseBool: parsing \"%s\": invalid syntax", od);
				return NULL;
			}
			json_object_set_new(opts, "orphanDependents", json_boolean(orphan));
		}
		if (dr)
			json_object_set_new(opts, "dryRun", json_pack("[s]", dr));
	}
	causes = json_array();
	v = json_object_get(opts, "orphanDependents");
	if (v && !json_is_null(v) && json_object_get(opts, "propagationPolicy"))
		kube_cause(
		    causes, "FieldValueInvalid", "propagationPolicy",
		    "Invalid value: \"%s\": orphanDependents and deletionPropagation cannot be both set",
		    kj_str(opts, "propagationPolicy") ?: "");
	v = json_object_get(opts, "propagationPolicy");
	if (v && strcmp(json_string_value(v), "Foreground") &&
	    strcmp(json_string_value(v), "Background") && strcmp(json_string_value(v), "Orphan"))
		kube_cause(
		    causes, "FieldValueNotSupported", "propagationPolicy",
		    "Unsupported value: \"%s\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
		    json_string_value(v));
	json_array_foreach(json_object_get(opts, "dryRun"), i, v)
	{
		check_dry_run(json_string_value(v), causes);
		*dry = true;
	}
	if (json_array_size(causes)) {
		json_decref(opts);
		kube_err_invalid_gk(e, "meta.k8s.io", "DeleteOptions", "", causes);
		return NULL;
	}
	json_decref(causes);
	return opts;
}

static int do_delete(struct emu_kube *k, struct emu_request *req, struct target *t)
{
	struct kube_err e = {0};
	struct kobj *o = NULL;
	bool deleted, dry;
	json_t *opts = delete_options(req, &dry, &e);
	int ret;

	if (!opts)
		return reply_err(req, &e);
	if (kube_delete(k, t->res, t->ns, t->name, opts, dry ? KWF_DRY_RUN : 0, &e, &o, &deleted) <
	    0) {
		json_decref(opts);
		return reply_err(req, &e);
	}
	json_decref(opts);
	if (!deleted || returns_object(t->res)) {
		ret = kube_reply_kobj(req, 200, o);
	} else {
		json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:{s:s, s:s, s:s}, s:i}", "kind",
				       "Status", "apiVersion", "v1", "metadata", "status",
				       "Success", "details", "name", t->name, "kind",
				       t->res->def.resource, "uid", kobj_uid(o), "code", 200);
		if (t->res->def.group[0])
			json_object_set_new(json_object_get(st, "details"), "group",
					    json_string(t->res->def.group));
		ret = reply_json(req, 200, st);
	}
	kobj_unref(o);
	return ret;
}

static int do_delete_collection(struct emu_kube *k, struct emu_request *req, struct target *t)
{
	struct kube_res *r = t->res;
	struct kube_selector *labels = NULL, *fields = NULL;
	struct kube_err e = {0};
	bool dry;
	json_t *opts = delete_options(req, &dry, &e), *names, *items, *v;
	size_t i;
	char prefix[300] = "";

	if (!opts)
		return reply_err(req, &e);
	if (selectors(req, r, &labels, &fields, &e) < 0) {
		json_decref(opts);
		return reply_err(req, &e);
	}
	if (t->ns)
		snprintf(prefix, sizeof(prefix), "%s/", t->ns);
	names = json_array();
	for (i = 0; i < r->len; i++) {
		struct kobj *o = r->items[i].obj;
		if (prefix[0] && strncmp(r->items[i].key, prefix, strlen(prefix)) != 0)
			continue;
		if (kube_selector_match(labels, o->obj) && kube_selector_match(fields, o->obj))
			json_array_append_new(names,
					      json_pack("[s, s]", kobj_namespace(o), kobj_name(o)));
	}
	items = json_array();
	json_array_foreach(names, i, v)
	{
		struct kobj *o = NULL;
		bool deleted;
		const char *ns = json_string_value(json_array_get(v, 0));
		if (kube_delete(k, r, ns[0] ? ns : NULL, json_string_value(json_array_get(v, 1)),
				opts, dry ? KWF_DRY_RUN : 0, &e, &o, &deleted) == 0 &&
		    o)
			json_array_append(items, o->obj);
		kube_err_clear(&e);
		kobj_unref(o);
	}
	json_decref(names);
	json_decref(opts);
	kube_selector_free(labels);
	kube_selector_free(fields);
	return reply_json(req, 200,
			  json_pack("{s:s, s:s, s:{}, s:o}", "kind", r->list_kind, "apiVersion",
				    r->api_version, "metadata", "items", items));
}

static int method_not_allowed(struct emu_request *req)
{
	return reply_errf(req, 405, "MethodNotAllowed",
			  "the server does not allow this method on the requested resource");
}

int kube_rest_handle(struct emu_kube *k, struct emu_request *req)
{
	char *path = strdup(req->path);
	const char *m = req->method, *watch;
	struct target t;
	int ret;

	if (!path)
		return emu_reply(req, 500, "text/plain", "out of memory\n", 14);
	if (parse_target(k, req, path, &t)) {
		ret = reply_errf(req, 404, "NotFound",
				 "the server could not find the requested resource");
		goto cleanup;
	}
	watch = emu_request_query(req, "watch");
	if (!t.res->def.group[0] && !strcmp(t.res->def.resource, "endpoints"))
		/* KEP-4974: the API server's deprecation warning on v1 Endpoints since 1.33 */
		emu_reply_header(
		    req, "Warning",
		    "299 - \"v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\"");
	if (t.res->def.flags & KR_CREATE_ONLY) {
		ret = (!strcmp(m, "POST") && !t.name) ? do_create(k, req, &t)
						      : method_not_allowed(req);
		goto cleanup;
	}
	if (!strcmp(m, "GET")) {
		if (watch && (!strcmp(watch, "true") || !strcmp(watch, "1")))
			ret = do_watch(k, req, &t);
		else if (t.name)
			ret = do_get(k, req, &t);
		else
			ret = do_list(k, req, &t);
	} else if (!strcmp(m, "POST")) {
		ret = t.name ? method_not_allowed(req) : do_create(k, req, &t);
	} else if (!strcmp(m, "PUT")) {
		ret = t.name ? do_update(k, req, &t) : method_not_allowed(req);
	} else if (!strcmp(m, "PATCH")) {
		ret = t.name && !(t.sub && !strcmp(t.sub, "finalize")) ? do_patch(k, req, &t)
								       : method_not_allowed(req);
	} else if (!strcmp(m, "DELETE")) {
		if (t.sub)
			ret = method_not_allowed(req);
		else
			ret = t.name ? do_delete(k, req, &t) : do_delete_collection(k, req, &t);
	} else {
		ret = method_not_allowed(req);
	}
cleanup:
	free(path);
	return ret;
}
