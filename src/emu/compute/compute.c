/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compute Engine v1: the router, the generic collection methods (list, aggregatedList, get,
 * insert, delete), and the state (--state, /_emu/state).
 *
 *   /compute/v1/projects/P                                   projects.get
 *   /compute/v1/projects/P/zones[/Z], /regions[/R]           zones, regions
 *   /compute/v1/projects/P/{zones/Z|regions/R|global}/C[/N[/VERB]]
 *   /compute/v1/projects/P/aggregated/C                      aggregatedList
 *
 * Reference: https://cloud.google.com/compute/docs/reference/rest/v1
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "emu/compute/compute.h"

static const struct coll_type *const all_types[] = {
    &ct_zones,
    &ct_regions,
    &ct_machine_types,
    &ct_operations,
    &ct_networks,
    &ct_subnetworks,
    &ct_instances,
    &ct_addresses,
    &ct_forwarding_rules,
    &ct_health_checks,
    &ct_backend_services,
    &ct_firewalls,
    &ct_instance_groups,
    &ct_instance_group_managers,
    &ct_images,
    &ct_routers,
    &ct_target_tcp_proxies,
};
#define NTYPES (sizeof(all_types) / sizeof(all_types[0]))

struct compute *compute_of(struct emu *emu)
{
	return (struct compute *)emu->compute;
}

struct coll *compute_coll(struct compute *c, const char *name)
{
	for (size_t i = 0; i < c->ncolls; i++)
		if (strcmp(c->colls[i]->type->name, name) == 0)
			return c->colls[i];
	return NULL;
}

/* ---- URLs and references ---- */

static char *vurl(struct compute *c, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static char *vurl(struct compute *c, const char *fmt, va_list ap)
{
	char *path = NULL, *url;

	if (vasprintf(&path, fmt, ap) < 0)
		return NULL;
	url = str_printf("%s%s%s", c->emu->cloud_url, COMPUTE_PREFIX, path);
	free(path);
	return url;
}

char *compute_url_str(struct compute *c, const char *fmt, ...)
{
	va_list ap;
	char *url;

	va_start(ap, fmt);
	url = vurl(c, fmt, ap);
	va_end(ap);
	return url;
}

json_t *compute_url(struct compute *c, const char *fmt, ...)
{
	va_list ap;
	char *url;
	json_t *j;

	va_start(ap, fmt);
	url = vurl(c, fmt, ap);
	va_end(ap);
	if (!url)
		return NULL;
	j = json_string(url);
	free(url);
	return j;
}

int compute_parse_ref(struct compute *c, const char *ref, const char *want,
		      const char *default_scope, char *scope, size_t scope_len, char *name,
		      size_t name_len)
{
	const char *p = ref, *v1 = strstr(ref, COMPUTE_PREFIX), *slash;
	size_t plen = strlen(c->emu->opt.project);

	if (v1)
		p = v1 + strlen(COMPUTE_PREFIX);
	else if (strncmp(p, "https://", 8) == 0 || strncmp(p, "http://", 7) == 0)
		return -EINVAL;
	if (strncmp(p, "projects/", 9) == 0) {
		p += 9;
		if (strncmp(p, c->emu->opt.project, plen) != 0 || p[plen] != '/')
			return -ENOENT;
		p += plen + 1;
	}
	if (!strchr(p, '/')) {
		if (!default_scope)
			return -EINVAL;
		snprintf(scope, scope_len, "%s", default_scope);
	} else if (strncmp(p, "global/", 7) == 0) {
		snprintf(scope, scope_len, "global");
		p += 7;
	} else if (strncmp(p, "zones/", 6) == 0 || strncmp(p, "regions/", 8) == 0) {
		slash = strchr(strchr(p, '/') + 1, '/');
		if (!slash || (size_t)(slash - p) >= scope_len)
			return -EINVAL;
		memcpy(scope, p, (size_t)(slash - p));
		scope[slash - p] = '\0';
		p = slash + 1;
	} else {
		return -EINVAL;
	}
	if (strchr(p, '/')) {
		size_t wl = strlen(want);

		if (strncmp(p, want, wl) != 0 || p[wl] != '/')
			return -EINVAL;
		p += wl + 1;
	}
	if (!*p || strchr(p, '/') || strlen(p) >= name_len)
		return -EINVAL;
	snprintf(name, name_len, "%s", p);
	return 0;
}

const char *compute_rel(const struct compute *c, const char *url)
{
	const char *v1 = url ? strstr(url, COMPUTE_PREFIX) : NULL;

	return v1 ? v1 + strlen(COMPUTE_PREFIX) : (url ? url : "");
}

json_t *compute_new_id(struct compute *c)
{
	uint64_t v;
	char buf[24];

	(void)c;
	/* 19 digits below 2^63, as GCP's resource ids look. */
	random_bytes(&v, sizeof(v));
	v = 1000000000000000000ull + v % 8000000000000000000ull;
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return json_string(buf);
}

/* ---- generic methods ---- */

static const char *scope_field(const char *scope)
{
	if (strncmp(scope, "zones/", 6) == 0)
		return "zone";
	if (strncmp(scope, "regions/", 8) == 0)
		return "region";
	return NULL;
}

static int check_body(struct call *k, const char *schema, struct api_error *e)
{
	const struct sch_message *m = sch_find(schema);
	char err[512];

	if (!k->body)
		return api_fail(e, 400, "required", "Required field 'resource' not specified");
	if (m && sch_check(m, k->body, "resource", err, sizeof(err)) < 0)
		return api_fail(e, 400, "invalid", "%s", err);
	return 0;
}

int generic_insert(struct call *k, struct coll *co, struct api_error *e)
{
	struct compute *c = k->c;
	const char *project = c->emu->opt.project, *name, *sf;
	json_t *res, *id;
	struct item *it;
	int ret;

	ret = check_body(k, co->type->schema, e);
	if (ret == 0)
		ret = limits_check_resource(k->body, e);
	if (ret < 0)
		return ret;
	name = jstr(k->body, "name");
	if (!name)
		return api_fail(e, 400, "required", "Required field 'resource.name' not specified");
	if (!valid_name(name))
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.name': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'",
		    name);
	if (coll_find(co, k->scope, name))
		return api_fail_code(e, 409, "alreadyExists", "RESOURCE_ALREADY_EXISTS",
				     "The resource 'projects/%s/%s/%s/%s' already exists", project,
				     k->scope, co->type->name, name);
	/* Output-only fields a client may echo back are the server's to set. */
	json_object_del(k->body, "kind");
	json_object_del(k->body, "id");
	json_object_del(k->body, "creationTimestamp");
	json_object_del(k->body, "selfLink");
	json_object_del(k->body, "selfLinkWithId");
	id = compute_new_id(c);
	/* GCP's member order: kind, id, creationTimestamp, name, then the rest. */
	res = json_pack("{s:s, s:O, s:o, s:s}", "kind", co->type->kind, "id", id,
			"creationTimestamp", json_now(), "name", name);
	if (!res || json_object_update(res, k->body) < 0) {
		json_decref(res);
		json_decref(id);
		return api_fail(e, 500, "internalError", "out of memory");
	}
	/* Deep: the resource must not share nested objects with the request body. */
	{
		json_t *copy = json_deep_copy(res);

		json_decref(res);
		res = copy;
		if (!res) {
			json_decref(id);
			return api_fail(e, 500, "internalError", "out of memory");
		}
	}
	json_object_set_new(
	    res, "selfLink",
	    compute_url(c, "projects/%s/%s/%s/%s", project, k->scope, co->type->name, name));
	sf = scope_field(k->scope);
	if (sf)
		json_object_set_new(res, sf, compute_url(c, "projects/%s/%s", project, k->scope));
	if (co->type->prepare_insert) {
		ret = co->type->prepare_insert(k, res, e);
		if (ret < 0) {
			json_decref(res);
			json_decref(id);
			return ret;
		}
	}
	ret = coll_add(co, k->scope, name, res, true, &it);
	if (ret < 0) {
		json_decref(id);
		return api_fail(e, 500, "internalError", "cannot store: %s", strerror(-ret));
	}
	return op_start(k, "insert", k->scope, name, co->type->name, id,
			json_pack("{s:s, s:s, s:s, s:s}", "op", "insert", "collection",
				  co->type->name, "scope", k->scope, "name", name));
}

int generic_delete(struct call *k, struct coll *co, struct item *it, struct api_error *e)
{
	int ret;

	ret = compute_check_in_use(k->c, it, co->type->name, e);
	if (ret < 0)
		return ret;
	if (co->type->check_delete) {
		ret = co->type->check_delete(k->c, it, e);
		if (ret < 0)
			return ret;
	}
	return op_start(k, "delete", it->scope, it->name, co->type->name,
			json_incref(json_object_get(it->res, "id")),
			json_pack("{s:s, s:s, s:s, s:s}", "op", "delete", "collection",
				  co->type->name, "scope", it->scope, "name", it->name));
}

int compute_apply(struct compute *c, json_t *m, struct api_error *e)
{
	const char *op = jstr(m, "op"), *scope = jstr(m, "scope"), *name = jstr(m, "name");
	struct coll *co = compute_coll(c, jstr(m, "collection") ? jstr(m, "collection") : "");
	struct item *it;
	int ret;

	if (!op || !scope || !name || !co)
		return api_fail(e, 500, "internalError", "malformed pending operation");
	it = coll_find(co, scope, name);
	if (strcmp(op, "insert") == 0) {
		if (!it || !it->pending)
			return api_fail(e, 500, "internalError", "pending insert lost");
		if (co->type->apply_insert) {
			ret = co->type->apply_insert(c, it, e);
			if (ret < 0) {
				coll_remove(co, it);
				return ret;
			}
		}
		it->pending = false;
		item_changed(c, it);
		if (co->type == &ct_instances)
			instances_notify(c, scope + strlen("zones/"), name, it->res);
		return 0;
	}
	if (!it || it->pending) {
		char path[400];

		snprintf(path, sizeof(path), "projects/%s/%s/%s/%s", c->emu->opt.project, scope,
			 co->type->name, name);
		return api_not_found(e, path);
	}
	if (strcmp(op, "delete") == 0) {
		if (co->type->apply_delete)
			co->type->apply_delete(c, it);
		coll_remove(co, it);
		/* scope and name belong to the mutation, not to the item just freed. */
		if (co->type == &ct_instances)
			instances_notify(c, scope + strlen("zones/"), name, NULL);
		return 0;
	}
	if (co->type->apply_method) {
		ret = co->type->apply_method(c, m, e);
		/* The target changed in place (or not, when the method failed: harmless). */
		it = coll_find(co, scope, name);
		if (it)
			item_changed(c, it);
		return ret;
	}
	return api_fail(e, 500, "internalError", "unknown pending operation '%s'", op);
}

/* ---- the router ---- */

static int reply_item(struct emu_request *req, struct item *it)
{
	return compute_reply(req, 200, json_incref(it->res));
}

static bool is_method(const struct emu_request *req, const char *m)
{
	return strcmp(req->method, m) == 0;
}

static int not_found_path(struct call *k, struct api_error *e)
{
	(void)k;
	return api_fail(e, 404, "notFound", "The requested URL was not found on this server.");
}

static int handle_collection(struct call *k, struct coll *co, struct api_error *e)
{
	struct emu_request *req = k->req;
	const char *project = k->c->emu->opt.project;
	struct list_params p;
	struct item *it;
	json_t *doc;
	int ret;

	if (!k->name) {
		if (is_method(req, "GET")) {
			ret = list_params_parse(req, &p, e);
			if (ret < 0)
				return ret;
			doc = coll_list(k->c, co, k->scope, &p);
			list_params_free(&p);
			if (!doc)
				return api_fail(e, 500, "internalError", "out of memory");
			return compute_reply(req, 200, doc);
		}
		if (is_method(req, "POST") && !co->type->readonly) {
			if (op_replay(k))
				return 0;
			return generic_insert(k, co, e);
		}
		return not_found_path(k, e);
	}
	if (co->type->route) {
		ret = co->type->route(k, e);
		if (ret)
			return ret < 0 ? ret : 0;
	}
	it = coll_find(co, k->scope, k->name);
	if (!it || it->pending) {
		char path[512];

		if (co->type->unscoped)
			snprintf(path, sizeof(path), "projects/%s/%s/%s", project, co->type->name,
				 k->name);
		else
			snprintf(path, sizeof(path), "projects/%s/%s/%s/%s", project, k->scope,
				 co->type->name, k->name);
		/* A retried mutation whose target is gone still gets its Operation back. */
		if (!is_method(req, "GET") && op_replay(k))
			return 0;
		return api_not_found(e, path);
	}
	if (!k->verb && is_method(req, "GET"))
		return reply_item(req, it);
	if (co->type->readonly)
		return not_found_path(k, e);
	if (!is_method(req, "GET") && op_replay(k))
		return 0;
	if (!k->verb && is_method(req, "DELETE"))
		return generic_delete(k, co, it, e);
	if (co->type->method)
		return co->type->method(k, it, e);
	return not_found_path(k, e);
}

static int parse_body(struct call *k, struct api_error *e)
{
	struct emu_request *req = k->req;
	json_error_t jerr;

	if (!is_method(req, "POST") && !is_method(req, "PATCH") && !is_method(req, "PUT"))
		return 0;
	if (req->body_len == 0)
		return 0;
	k->body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!k->body)
		return api_fail(e, 400, "parseError",
				"Invalid JSON payload received. %s (line %d, column %d)", jerr.text,
				jerr.line, jerr.column);
	if (!json_is_object(k->body)) {
		json_decref(k->body);
		k->body = NULL;
		return api_fail(e, 400, "parseError",
				"Invalid JSON payload received. Expected an object.");
	}
	return 0;
}

#define MAX_SEGS 10

static int route(struct call *k, char **seg, size_t n, struct api_error *e)
{
	struct compute *c = k->c;
	const char *project = c->emu->opt.project;
	char scope[160];
	size_t base;
	struct coll *co;

	if (n < 2 || strcmp(seg[0], "projects") != 0)
		return not_found_path(k, e);
	if (strcmp(seg[1], project) != 0) {
		char path[300];

		snprintf(path, sizeof(path), "projects/%s", seg[1]);
		return api_not_found(e, path);
	}
	if (n == 2) {
		if (!is_method(k->req, "GET"))
			return not_found_path(k, e);
		return compute_reply(k->req, 200, json_incref(c->project));
	}
	if (strcmp(seg[2], "aggregated") == 0) {
		struct list_params p;
		json_t *doc;
		int ret;

		co = n == 4 ? compute_coll(c, seg[3]) : NULL;
		if (!co || !co->type->agg_kind || !is_method(k->req, "GET"))
			return not_found_path(k, e);
		ret = list_params_parse(k->req, &p, e);
		if (ret < 0)
			return ret;
		doc = coll_aggregated(c, co, &p);
		list_params_free(&p);
		if (!doc)
			return api_fail(e, 500, "internalError", "out of memory");
		return compute_reply(k->req, 200, doc);
	}
	if ((strcmp(seg[2], "zones") == 0 || strcmp(seg[2], "regions") == 0) && n <= 4) {
		/* zones.list/get, regions.list/get: they hang off the project. */
		co = compute_coll(c, seg[2]);
		k->scope = "global";
		k->skind = SCOPE_GLOBAL;
		k->name = n == 4 ? seg[3] : NULL;
		k->coll = co;
		return handle_collection(k, co, e);
	}
	if (strcmp(seg[2], "global") == 0) {
		snprintf(scope, sizeof(scope), "global");
		k->skind = SCOPE_GLOBAL;
		k->scope_name = "";
		base = 3;
	} else if (strcmp(seg[2], "zones") == 0 || strcmp(seg[2], "regions") == 0) {
		bool zone = seg[2][0] == 'z';

		if (zone ? !compute_zone_exists(seg[3]) : !compute_region_exists(seg[3])) {
			char path[300];

			snprintf(path, sizeof(path), "projects/%s/%s/%s", project, seg[2], seg[3]);
			return api_not_found(e, path);
		}
		snprintf(scope, sizeof(scope), "%s/%s", seg[2], seg[3]);
		k->skind = zone ? SCOPE_ZONE : SCOPE_REGION;
		k->scope_name = seg[3];
		base = 4;
	} else {
		return not_found_path(k, e);
	}
	if (n <= base || n > base + 3)
		return not_found_path(k, e);
	co = compute_coll(c, seg[base]);
	if (!co || !(co->type->scopes & k->skind) || co->type->unscoped)
		return not_found_path(k, e);
	k->scope = scope;
	k->coll = co;
	k->name = n > base + 1 ? seg[base + 1] : NULL;
	k->verb = n > base + 2 ? seg[base + 2] : NULL;
	if (co->type == &ct_operations)
		return op_handle(k, e);
	return handle_collection(k, co, e);
}

int emu_compute_handle(struct emu_request *req)
{
	struct call k = {.req = req, .c = compute_of(req->emu)};
	struct api_error e = {0};
	char *path, *seg[MAX_SEGS], *save = NULL, *tok;
	size_t n = 0;
	int ret;

	/* Names, scopes and messages are JSON strings: a path that is no UTF-8 names nothing. */
	if (!utf8_valid(req->path, strlen(req->path))) {
		api_fail(&e, 400, "invalid",
			 "Invalid request: the URL path is not valid UTF-8 (percent-decoded).");
		return api_reply_error(req, &e);
	}
	path = strdup(req->path + strlen(COMPUTE_PREFIX));
	if (!path)
		return emu_reply(req, 500, "text/plain", "out of memory\n", 14);
	for (tok = strtok_r(path, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (n == MAX_SEGS) {
			n = 0;
			break;
		}
		seg[n++] = tok;
	}
	k.request_id = emu_request_query(req, "requestId");
	ret = parse_body(&k, &e);
	if (ret == 0 && k.request_id && !is_method(req, "GET") && !valid_uuid(k.request_id))
		ret = api_fail(
		    &e, 400, "invalid",
		    "Invalid value for field 'requestId': '%s'. The request ID must be a valid UUID with the exception that zero UUID is not supported (00000000-0000-0000-0000-000000000000).",
		    k.request_id);
	if (ret == 0)
		ret = route(&k, seg, n, &e);
	if (ret < 0 && !req->responded && !req->suspended)
		api_reply_error(req, &e);
	json_decref(k.body);
	free(path);
	return ret < 0 ? ret : 0;
}

/* ---- life cycle ---- */

int emu_compute_init(struct emu *emu)
{
	struct compute *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	emu->compute = (struct emu_compute *)c;
	c->emu = emu;
	c->colls = calloc(NTYPES, sizeof(c->colls[0]));
	c->request_ids = json_object();
	c->ig_members = json_object();
	c->ipidx = ipindex_new();
	if (!c->colls || !c->request_ids || !c->ig_members || !c->ipidx)
		return -ENOMEM;
	for (size_t i = 0; i < NTYPES; i++) {
		c->colls[i] = coll_new(all_types[i]);
		if (!c->colls[i])
			return -ENOMEM;
		c->colls[i]->c = c;
		c->ncolls++;
	}
	return compute_state_register(c);
}

static void clear_colls(struct compute *c)
{
	for (size_t i = 0; i < c->ncolls; i++) {
		struct coll *co = c->colls[i];

		if (co->type->readonly)
			continue;
		c->colls[i] = coll_new(co->type);
		if (c->colls[i])
			c->colls[i]->c = c;
		coll_free(co);
	}
}

void emu_compute_free(struct emu *emu)
{
	struct compute *c = compute_of(emu);

	if (!c)
		return;
	op_free_all(c);
	for (size_t i = 0; i < c->ncolls; i++)
		coll_free(c->colls[i]);
	free(c->colls);
	json_decref(c->request_ids);
	json_decref(c->ig_members);
	json_decref(c->project);
	ipindex_free(c->ipidx);
	free(c->old_base);
	free(c);
	emu->compute = NULL;
}

/* Rewrites every string that starts with old (a URL base from --state) to new. */
static void rebase_json(json_t *j, const char *old, size_t oldlen, const char *new)
{
	const char *key;
	json_t *v;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		json_object_foreach(j, key, v)
		{
			if (json_is_string(v) && strncmp(json_string_value(v), old, oldlen) == 0) {
				char *s = str_printf("%s%s", new, json_string_value(v) + oldlen);

				if (s)
					json_object_set_new(j, key, json_string(s));
				free(s);
			} else {
				rebase_json(v, old, oldlen, new);
			}
		}
		break;
	case JSON_ARRAY:
		json_array_foreach(j, i, v)
		{
			if (json_is_string(v) && strncmp(json_string_value(v), old, oldlen) == 0) {
				char *s = str_printf("%s%s", new, json_string_value(v) + oldlen);

				if (s)
					json_array_set_new(j, i, json_string(s));
				free(s);
			} else {
				rebase_json(v, old, oldlen, new);
			}
		}
		break;
	default:
		break;
	}
}

static void rebase(struct compute *c)
{
	char *base;

	if (!c->old_base || !c->emu->cloud_url[0])
		return;
	base = str_printf("%s%s", c->emu->cloud_url, COMPUTE_PREFIX);
	if (base && strcmp(base, c->old_base) != 0) {
		size_t oldlen = strlen(c->old_base);

		for (size_t i = 0; i < c->ncolls; i++) {
			if (c->colls[i]->type->readonly)
				continue;
			for (size_t j = 0; j < c->colls[i]->len; j++)
				rebase_json(c->colls[i]->items[j]->res, c->old_base, oldlen, base);
		}
		rebase_json(c->ig_members, c->old_base, oldlen, base);
		compute_state_loaded(c); /* every row holds URLs */
		log_info("state: URLs moved from %s to %s", c->old_base, base);
	}
	free(base);
	free(c->old_base);
	c->old_base = NULL;
}

int emu_compute_started(struct emu *emu)
{
	struct compute *c = compute_of(emu);

	/* The catalogue needs the bound URL, so it is built here rather than at init. */
	if (!c->project) {
		if (catalog_init(c) < 0)
			return -ENOMEM;
		c->project = catalog_project(c);
		if (!c->project)
			return -ENOMEM;
	}
	rebase(c);
	return 0;
}

json_t *emu_compute_dump(struct emu *emu)
{
	struct compute *c = compute_of(emu);
	json_t *doc, *colls = json_object();

	for (size_t i = 0; i < c->ncolls; i++) {
		struct coll *co = c->colls[i];
		json_t *arr;

		if (co->type->readonly || !co->len)
			continue;
		arr = json_array();
		for (size_t j = 0; j < co->len; j++) {
			struct item *it = co->items[j];

			json_array_append_new(arr, json_pack("{s:s, s:s, s:b, s:O}", "scope",
							     it->scope, "name", it->name, "pending",
							     it->pending, "resource", it->res));
		}
		json_object_set_new(colls, co->type->name, arr);
	}
	doc = json_pack("{s:o, s:o, s:o, s:O, s:O, s:I, s:o}", "base",
			jsonf("%s%s", emu->cloud_url, COMPUTE_PREFIX), "collections", colls,
			"pending", op_dump_pending(c), "requestIds", c->request_ids,
			"instanceGroupMembers", c->ig_members, "natCounter",
			(json_int_t)c->nat_counter, "auth", emu_auth_dump(emu));
	return doc ? doc : json_object();
}

static int load(struct emu *emu, json_t *state);

/* The document's shape, checked before anything is replaced (a refused load changes nothing). */
static bool entries_ok(const json_t *arr, const char *value_key)
{
	const json_t *e;
	size_t i;

	json_array_foreach(arr, i, e)
	{
		if (!jstr(e, "scope") || !jstr(e, "name") ||
		    !json_is_object(json_object_get(e, value_key)))
			return false;
	}
	return true;
}

static int check_state(struct compute *c, const json_t *state)
{
	static const char *const objects[] = {"requestIds", "instanceGroupMembers", "auth"};
	const json_t *colls = json_object_get(state, "collections");
	const json_t *pending = json_object_get(state, "pending"), *arr;
	const char *cname;

	if (!json_is_object(state) || (colls && !json_is_object(colls)) ||
	    (pending && (!json_is_array(pending) || !entries_ok(pending, "mutation"))))
		return -EINVAL;
	json_object_foreach((json_t *)colls, cname, arr)
	{
		struct coll *co = compute_coll(c, cname);

		if (!co || co->type->readonly || !json_is_array(arr) ||
		    !entries_ok(arr, "resource"))
			return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++)
		if (json_object_get(state, objects[i]) &&
		    !json_is_object(json_object_get(state, objects[i])))
			return -EINVAL;
	return 0;
}

static void load_indexes(struct compute *c, const struct coll_type *type)
{
	struct coll *co = compute_coll(c, type->name);

	for (size_t i = 0; type->on_load && i < co->len; i++)
		if (!co->items[i]->pending)
			type->on_load(c, co->items[i]);
}

int emu_compute_load(struct emu *emu, json_t *state)
{
	int ret;

	if (!state)
		return 0;
	if (check_state(compute_of(emu), state) < 0)
		return -EINVAL;
	/* The rows are rewritten once from what was loaded, not marked item by item. */
	emu_state_quiet(emu, true);
	ret = load(emu, state);
	emu_state_quiet(emu, false);
	if (json_is_object(state))
		compute_state_loaded(compute_of(emu));
	return ret;
}

static int load(struct emu *emu, json_t *state)
{
	struct compute *c = compute_of(emu);
	const char *cname, *base;
	json_t *arr, *colls;
	int ret;

	if (!state)
		return 0;
	if (!json_is_object(state))
		return -EINVAL;
	op_release_waiters(c);
	op_free_all(c);
	clear_colls(c);
	ipindex_clear(c->ipidx);
	json_object_clear(c->request_ids);
	json_object_clear(c->ig_members);
	colls = json_object_get(state, "collections");
	json_object_foreach(colls, cname, arr)
	{
		struct coll *co = compute_coll(c, cname);
		json_t *e;
		size_t i;

		if (!co || co->type->readonly || !json_is_array(arr))
			return -EINVAL;
		json_array_foreach(arr, i, e)
		{
			const char *scope = jstr(e, "scope"), *name = jstr(e, "name");
			json_t *res = json_object_get(e, "resource");
			struct item *it;

			if (!scope || !name || !json_is_object(res))
				return -EINVAL;
			ret = coll_add(co, scope, name, json_deep_copy(res),
				       json_is_true(json_object_get(e, "pending")), &it);
			if (ret < 0)
				return ret;
		}
	}
	/*
	 * Indexes are rebuilt once everything is there, reserved addresses first: instances and
	 * forwarding rules that use one find the address holding their IP.
	 */
	load_indexes(c, &ct_addresses);
	for (size_t i = 0; i < c->ncolls; i++)
		if (c->colls[i]->type != &ct_addresses)
			load_indexes(c, c->colls[i]->type);
	if (json_is_object(json_object_get(state, "requestIds")))
		json_object_update(c->request_ids, json_object_get(state, "requestIds"));
	if (json_is_object(json_object_get(state, "instanceGroupMembers"))) {
		json_t *m = json_deep_copy(json_object_get(state, "instanceGroupMembers"));

		json_object_update(c->ig_members, m);
		json_decref(m);
	}
	c->nat_counter = (uint64_t)json_integer_value(json_object_get(state, "natCounter"));
	ret = emu_auth_load(emu, json_object_get(state, "auth"));
	if (ret < 0)
		return ret;
	base = jstr(state, "base");
	free(c->old_base);
	c->old_base = base ? strdup(base) : NULL;
	rebase(c);
	return op_load_pending(c, json_object_get(state, "pending"));
}

const json_t *emu_compute_instance(struct emu *emu, const char *zone, const char *name)
{
	struct compute *c = compute_of(emu);
	struct coll *co = c ? compute_coll(c, "instances") : NULL;
	char scope[128];
	struct item *it;

	if (!co || !zone || !name)
		return NULL;
	snprintf(scope, sizeof(scope), "zones/%s", zone);
	it = coll_find(co, scope, name);
	return it && !it->pending ? it->res : NULL;
}
