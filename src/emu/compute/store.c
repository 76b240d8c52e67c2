/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Collections, list pages and aggregated lists.
 *
 * Lists follow https://cloud.google.com/compute/docs/reference/rest/v1/instances/list:
 * maxResults 0..500 (default 500), pageToken, filter, orderBy (name order only, the
 * default). A page token is the key of the last item of the previous page, so pages stay
 * consistent while resources come and go: nothing is returned twice or skipped that
 * existed during the whole walk.
 *
 * Aggregated lists (instances/aggregatedList): items keyed "zones/Z", "regions/R" or
 * "global"; a scope without results on the page carries the warning
 * {"code": "NO_RESULTS_ON_PAGE", "data": [{"key": "scope", "value": ...}]}. With
 * includeAllScopes every visible scope of every scope type is listed, as documented.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"

struct coll *coll_new(const struct coll_type *type)
{
	struct coll *co = calloc(1, sizeof(*co));

	if (co)
		co->type = type;
	return co;
}

static void item_free(struct item *it)
{
	json_decref(it->res);
	free(it->scope);
	free(it->name);
	free(it);
}

void coll_free(struct coll *co)
{
	if (!co)
		return;
	for (size_t i = 0; i < co->len; i++)
		item_free(co->items[i]);
	free(co->items);
	free(co);
}

static int key_cmp(const char *s1, const char *n1, const char *s2, const char *n2)
{
	int r = strcmp(s1, s2);

	return r ? r : strcmp(n1, n2);
}

size_t coll_lower_bound(const struct coll *co, const char *scope, const char *name, bool after)
{
	size_t a = 0, b = co->len;

	while (a < b) {
		size_t m = a + (b - a) / 2;
		int r = key_cmp(co->items[m]->scope, co->items[m]->name, scope, name);

		if (r < 0 || (after && r == 0))
			a = m + 1;
		else
			b = m;
	}
	return a;
}

struct item *coll_find(const struct coll *co, const char *scope, const char *name)
{
	size_t i = coll_lower_bound(co, scope, name, false);

	if (i < co->len && strcmp(co->items[i]->scope, scope) == 0 &&
	    strcmp(co->items[i]->name, name) == 0)
		return co->items[i];
	return NULL;
}

int coll_add(struct coll *co, const char *scope, const char *name, json_t *res, bool pending,
	     struct item **out)
{
	size_t i = coll_lower_bound(co, scope, name, false);
	struct item *it;

	if (i < co->len && strcmp(co->items[i]->scope, scope) == 0 &&
	    strcmp(co->items[i]->name, name) == 0) {
		json_decref(res);
		return -EEXIST;
	}
	if (co->len == co->cap) {
		size_t ncap = co->cap ? co->cap * 2 : 16;
		struct item **n = realloc(co->items, ncap * sizeof(*n));

		if (!n) {
			json_decref(res);
			return -ENOMEM;
		}
		co->items = n;
		co->cap = ncap;
	}
	it = calloc(1, sizeof(*it));
	if (it) {
		it->scope = strdup(scope);
		it->name = strdup(name);
	}
	if (!it || !it->scope || !it->name) {
		if (it) {
			free(it->scope);
			free(it->name);
			free(it);
		}
		json_decref(res);
		return -ENOMEM;
	}
	it->res = res;
	it->pending = pending;
	it->type = co->type;
	memmove(&co->items[i + 1], &co->items[i], (co->len - i) * sizeof(co->items[0]));
	co->items[i] = it;
	co->len++;
	if (co->c)
		item_changed(co->c, it);
	if (out)
		*out = it;
	return 0;
}

void coll_remove(struct coll *co, struct item *it)
{
	size_t i = coll_lower_bound(co, it->scope, it->name, false);

	if (i >= co->len || co->items[i] != it)
		return;
	memmove(&co->items[i], &co->items[i + 1], (co->len - i - 1) * sizeof(co->items[0]));
	co->len--;
	if (co->c)
		item_changed(co->c, it); /* the row goes: the item is not found any more */
	item_free(it);
}

/* ---- list parameters ---- */

static bool query_true(const char *v)
{
	/* gcloud sends Python's "True". */
	return v && (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "1") == 0);
}

static int parse_token(const char *tok, struct list_params *p)
{
	uint8_t *raw = NULL;
	size_t n;
	char *nl;

	if (b64_decode(tok, strlen(tok), &raw, &n) < 0)
		return -EINVAL;
	nl = memchr(raw, '\n', n);
	if (!nl || memchr(raw, '\0', n) ||
	    memchr(nl + 1, '\n', n - (size_t)(nl + 1 - (char *)raw)) ||
	    strncmp((char *)raw, "v1 ", 3) != 0) {
		free(raw);
		return -EINVAL;
	}
	*nl = '\0';
	p->after_scope = strdup((char *)raw + 3);
	p->after_name = strdup(nl + 1);
	free(raw);
	return p->after_scope && p->after_name ? 0 : -ENOMEM;
}

static json_t *make_token(const struct item *it)
{
	char *key = str_printf("v1 %s\n%s", it->scope, it->name), *tok;
	json_t *j;

	if (!key)
		return NULL;
	tok = b64_encode(key, strlen(key), true, false);
	free(key);
	if (!tok)
		return NULL;
	j = json_string(tok);
	free(tok);
	return j;
}

int list_params_parse(struct emu_request *req, struct list_params *p, struct api_error *e)
{
	const char *max = emu_request_query(req, "maxResults");
	const char *tok = emu_request_query(req, "pageToken");
	const char *filter = emu_request_query(req, "filter");
	const char *order = emu_request_query(req, "orderBy");
	char err[256];

	*p = (struct list_params){.max = PAGE_MAX};
	p->include_all_scopes = query_true(emu_request_query(req, "includeAllScopes"));
	if (max) {
		char *end;
		long v;

		errno = 0;
		v = strtol(max, &end, 10);
		if (!*max || *end || errno || v < 0)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'maxResults': '%s'. Must be a non-negative integer.",
			    max);
		if (v > PAGE_MAX)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'maxResults': '%s'. Must be less than or equal to %d",
			    max, PAGE_MAX);
		p->max = v == 0 ? PAGE_MAX : (unsigned)v;
	}
	if (tok && *tok && parse_token(tok, p) < 0) {
		list_params_free(p);
		return api_fail(e, 400, "invalid", "Invalid value for field 'pageToken': '%s'.",
				tok);
	}
	/* Name order is the documented default; the API also knows creationTimestamp desc. */
	if (order && *order && strcmp(order, "name") != 0 && strcmp(order, "name asc") != 0) {
		list_params_free(p);
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'orderBy': '%s'. This emulator lists in name order only.",
		    order);
	}
	if (filter && *filter && filter_parse(filter, &p->filter, err, sizeof(err)) < 0) {
		list_params_free(p);
		return api_fail(e, 400, "invalid", "Invalid value for field 'filter': '%s'. %s",
				filter, err);
	}
	return 0;
}

void list_params_free(struct list_params *p)
{
	free(p->after_scope);
	free(p->after_name);
	filter_free(p->filter);
	p->after_scope = p->after_name = NULL;
	p->filter = NULL;
}

static bool visible(const struct item *it, const struct list_params *p)
{
	return !it->pending && (!p->filter || filter_match(p->filter, it->res));
}

static bool past_hi(const struct name_range *nr, const char *name)
{
	int c;

	if (!nr->hi)
		return false;
	c = strcmp(name, nr->hi);
	return c > 0 || (c == 0 && !nr->hi_incl);
}

json_t *coll_list(struct compute *c, struct coll *co, const char *scope,
		  const struct list_params *p)
{
	const char *project = c->emu->opt.project;
	json_t *doc, *items = json_array();
	struct item *last = NULL;
	struct name_range nr;
	unsigned n = 0;
	size_t i;

	filter_name_range(p->filter, &nr);

	if (p->after_scope && strcmp(p->after_scope, scope) == 0)
		i = coll_lower_bound(co, scope, p->after_name, true);
	else if (p->after_scope)
		i = co->len; /* a token of another list: nothing after it here */
	else
		i = coll_lower_bound(co, scope, "", false);
	/* Zones and regions hang off the project itself: projects/P/zones, not .../global/zones. */
	doc =
	    json_pack("{s:s, s:o, s:o}", "kind", co->type->list_kind, "id",
		      jsonf("projects/%s/%s%s%s", project, co->type->unscoped ? "" : scope,
			    co->type->unscoped ? "" : "/", co->type->name),
		      "selfLink",
		      compute_url(c, "projects/%s/%s%s%s", project, co->type->unscoped ? "" : scope,
				  co->type->unscoped ? "" : "/", co->type->name));
	if (!doc || !items) {
		json_decref(doc);
		json_decref(items);
		return NULL;
	}
	/* A filter that bounds the name (verify's parallel ranges) walks only that slice. */
	if (nr.lo) {
		size_t j = coll_lower_bound(co, scope, nr.lo, !nr.lo_incl);

		if (j > i)
			i = j;
	}
	for (; i < co->len && strcmp(co->items[i]->scope, scope) == 0; i++) {
		struct item *it = co->items[i];

		if (past_hi(&nr, it->name))
			break;
		if (!visible(it, p))
			continue;
		if (n == p->max) {
			json_object_set_new(doc, "nextPageToken", make_token(last));
			break;
		}
		json_array_append(items, it->res);
		last = it;
		n++;
	}
	/* Like GCP, an empty list has no "items" member. */
	if (json_array_size(items))
		json_object_set_new(doc, "items", items);
	else
		json_decref(items);
	return doc;
}

static int add_scope(json_t *scopes, const char *prefix, const char *name)
{
	return json_array_append_new(scopes, jsonf("%s%s", prefix, name));
}

json_t *coll_aggregated(struct compute *c, struct coll *co, const struct list_params *p)
{
	const char *project = c->emu->opt.project;
	unsigned kinds =
	    p->include_all_scopes ? (SCOPE_GLOBAL | SCOPE_REGION | SCOPE_ZONE) : co->type->scopes;
	json_t *doc, *scopes = json_array(), *found = json_object(), *items = json_object();
	struct item *last = NULL;
	struct name_range nr;
	const char *scope;
	json_t *arr;
	unsigned n = 0;
	size_t i;

	doc = json_pack("{s:s, s:o, s:o}", "kind", co->type->agg_kind, "id",
			jsonf("projects/%s/aggregated/%s", project, co->type->name), "selfLink",
			compute_url(c, "projects/%s/aggregated/%s", project, co->type->name));
	if (!doc || !scopes || !found || !items)
		goto fail;
	/* Scopes in key order, the order items are walked in. */
	if (kinds & SCOPE_GLOBAL)
		add_scope(scopes, "", "global");
	if (kinds & SCOPE_REGION)
		for (size_t r = 0; r < compute_nregions; r++)
			add_scope(scopes, "regions/", compute_regions[r]);
	if (kinds & SCOPE_ZONE)
		for (size_t z = 0; z < compute_nzones; z++)
			add_scope(scopes, "zones/", compute_zones[z].name);

	filter_name_range(p->filter, &nr);
	i = p->after_scope ? coll_lower_bound(co, p->after_scope, p->after_name, true) : 0;
	while (i < co->len) {
		struct item *it = co->items[i];

		/* Within each scope, only the slice of names the filter admits. */
		if (nr.lo && strcmp(it->name, nr.lo) < 0) {
			size_t j = coll_lower_bound(co, it->scope, nr.lo, !nr.lo_incl);

			i = j > i ? j : i + 1;
			continue;
		}
		if (past_hi(&nr, it->name)) {
			/* Names are [-a-z0-9]: "\x7f" sorts after every name of the scope. */
			size_t j = coll_lower_bound(co, it->scope, "\x7f", false);

			i = j > i ? j : i + 1;
			continue;
		}
		i++;
		if (!visible(it, p))
			continue;
		if (n == p->max) {
			json_object_set_new(doc, "nextPageToken", make_token(last));
			break;
		}
		arr = json_object_get(found, it->scope);
		if (!arr) {
			arr = json_array();
			json_object_set_new(found, it->scope, arr);
		}
		json_array_append(arr, it->res);
		last = it;
		n++;
	}
	json_array_foreach(scopes, i, arr)
	{
		json_t *list;

		scope = json_string_value(arr);
		list = json_object_get(found, scope);
		if (list) {
			json_object_set_new(items, scope, json_pack("{s:O}", co->type->name, list));
			continue;
		}
		json_object_set_new(
		    items, scope,
		    json_pack("{s:{s:s, s:o, s:[{s:s, s:s}]}}", "warning", "code",
			      "NO_RESULTS_ON_PAGE", "message",
			      jsonf("There are no results for scope '%s' on this page.", scope),
			      "data", "key", "scope", "value", scope));
	}
	json_object_set_new(doc, "items", items);
	json_decref(scopes);
	json_decref(found);
	return doc;
fail:
	json_decref(doc);
	json_decref(scopes);
	json_decref(found);
	json_decref(items);
	return NULL;
}
