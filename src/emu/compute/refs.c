/* SPDX-License-Identifier: Apache-2.0 */
/*
 * References between resources: looking one up, refusing to delete what another resource
 * uses, and JSON merge patch for the patch methods.
 *
 * "resourceInUseByAnotherResource": GCP refuses to delete a resource that another one refers
 * to (a network with a router or an instance group in it, a subnetwork named by an address,
 * a forwarding rule, an instance group or a NAT, a backend service behind a target proxy,
 * an address a NAT uses), with 400 and the user named
 * (https://cloud.google.com/compute/docs/troubleshooting/troubleshooting-resource-deletion).
 * The types' own check_delete hooks cover what they always did; this table adds the users
 * the load balancing, router and proxy collections brought.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"

struct item *compute_ref_item(struct compute *c, const char *ref, const char *collection,
			      const char *default_scope)
{
	char scope[96], name[128];
	struct item *it;

	if (!ref || compute_parse_ref(c, ref, collection, default_scope, scope, sizeof(scope), name,
				      sizeof(name)) < 0)
		return NULL;
	it = coll_find(compute_coll(c, collection), scope, name);
	return it && !it->pending ? it : NULL;
}

static const struct {
	const char *collection;
	const char *users[4];
} extra_users[] = {
    {"networks", {"routers", "instanceGroups"}},
    {"subnetworks", {"addresses", "forwardingRules", "instanceGroups", "routers"}},
    {"backendServices", {"targetTcpProxies"}},
    {"addresses", {"routers"}},
};

int compute_check_in_use(struct compute *c, struct item *it, const char *collection,
			 struct api_error *e)
{
	for (size_t i = 0; i < sizeof(extra_users) / sizeof(extra_users[0]); i++) {
		size_t n = 0;

		if (strcmp(extra_users[i].collection, collection) != 0)
			continue;
		while (n < 4 && extra_users[i].users[n])
			n++;
		return compute_check_unused(c, it, extra_users[i].users, n, e);
	}
	return 0;
}

/* RFC 7396: objects merge, null removes, anything else (arrays too) replaces. */
void compute_merge_patch(json_t *target, const json_t *patch)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)patch, key, v)
	{
		json_t *cur = json_object_get(target, key);

		if (json_is_null(v))
			json_object_del(target, key);
		else if (json_is_object(v) && json_is_object(cur))
			compute_merge_patch(cur, v);
		else if (json_is_object(v)) {
			json_t *o = json_object();

			compute_merge_patch(o, v);
			json_object_set_new(target, key, o);
		} else
			json_object_set_new(target, key, json_deep_copy(v));
	}
}

int compute_check_fingerprint(const json_t *body, const json_t *res, const char *what,
			      struct api_error *e)
{
	const char *fp = jstr(body, "fingerprint");

	if (fp && fingerprint_equal(fp, jstr(res, "fingerprint")))
		return 0;
	api_fail(
	    e, 412, "conditionNotMet",
	    fp ? "Supplied fingerprint does not match current %s fingerprint."
	       : "Required field 'fingerprint' not specified: an up-to-date %s fingerprint must be provided.",
	    what);
	e->location = "If-Match";
	e->location_type = "header";
	return -EINVAL;
}

void compute_new_fingerprint(json_t *obj)
{
	char *fp = new_fingerprint();

	if (fp)
		json_object_set_new(obj, "fingerprint", json_string(fp));
	free(fp);
}

/* ---- update (PUT) and patch (PATCH) of a whole resource ---- */

static bool output_only(const char *key)
{
	static const char *const keys[] = {
	    "kind",   "id",   "creationTimestamp", "selfLink", "selfLinkWithId",
	    "region", "zone", "fingerprint",       "name"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(key, keys[i]) == 0)
			return true;
	return false;
}

/* The members the request set to null are removed (the check dropped them from body). */
static void merge_nulls(json_t *target, const json_t *orig)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)orig, key, v)
	{
		if (json_is_null(v))
			json_object_del(target, key);
		else if (json_is_object(v) && json_is_object(json_object_get(target, key)))
			merge_nulls(json_object_get(target, key), v);
	}
}

static bool same_value(struct compute *c, const json_t *a, const json_t *b)
{
	if (json_is_string(a) && json_is_string(b))
		return strcmp(compute_rel(c, json_string_value(a)),
			      compute_rel(c, json_string_value(b))) == 0;
	return json_equal(a, b);
}

int compute_update_method(struct call *k, struct item *it, const struct update_rules *r,
			  struct api_error *e)
{
	const struct coll_type *type = k->coll->type;
	bool patch = strcmp(k->req->method, "PATCH") == 0;
	const char *key;
	json_t *next = NULL, *v, *orig = NULL;
	char err[512];
	int ret;

	if (k->verb || (!patch && strcmp(k->req->method, "PUT") != 0))
		return api_fail(e, 404, "notFound",
				"The requested URL was not found on this server.");
	if (!k->body)
		return api_fail(e, 400, "required", "Required field 'resource' not specified");
	/* The check drops members set to null, which a merge patch uses to remove them. */
	orig = json_deep_copy(k->body);
	if (!orig) {
		ret = api_fail(e, 500, "internalError", "out of memory");
		goto cleanup;
	}
	if (sch_check(sch_find(type->schema), k->body, "resource", err, sizeof(err)) < 0) {
		ret = api_fail(e, 400, "invalid", "%s", err);
		goto cleanup;
	}
	if (r->fingerprint) {
		ret = compute_check_fingerprint(k->body, it->res, r->what, e);
		if (ret < 0)
			goto cleanup;
	}
	if (jstr(k->body, "name") && strcmp(jstr(k->body, "name"), it->name) != 0) {
		ret = api_fail(e, 400, "invalid",
			       "Invalid value for field 'resource.name': '%s'. The name of a %s "
			       "cannot be changed.",
			       jstr(k->body, "name"), r->what);
		goto cleanup;
	}
	if (patch) {
		next = json_deep_copy(it->res);
		if (next) {
			compute_merge_patch(next, k->body);
			merge_nulls(next, orig);
		}
	} else {
		next = json_object();
		json_object_foreach(it->res, key, v) if (output_only(key))
		    json_object_set(next, key, v);
		json_object_foreach(k->body, key, v) if (!output_only(key))
		    json_object_set_new(next, key, json_deep_copy(v));
	}
	if (!next) {
		ret = api_fail(e, 500, "internalError", "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; r->immutable && r->immutable[i]; i++) {
		json_t *old = json_object_get(it->res, r->immutable[i]);
		json_t *nv = json_object_get(next, r->immutable[i]);

		if (old && !nv) {
			json_object_set(next, r->immutable[i], old);
		} else if (nv && (!old || !same_value(k->c, old, nv))) {
			ret = api_fail(e, 400, "invalid",
				       "Invalid value for field 'resource.%s': the %s of a %s "
				       "cannot be changed.",
				       r->immutable[i], r->immutable[i], r->what);
			goto cleanup;
		}
	}
	ret = r->prepare ? r->prepare(k, next, e) : 0;
	if (ret < 0)
		goto cleanup;
	ret = op_start(k, patch ? "patch" : "update", it->scope, it->name, type->name,
		       json_incref(json_object_get(it->res, "id")),
		       json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:s?}", "op", "method", "method",
				 patch ? "patch" : "update", "collection", type->name, "scope",
				 it->scope, "name", it->name, "resource", next, "fingerprint",
				 r->fingerprint ? jstr(it->res, "fingerprint") : NULL));
cleanup:
	json_decref(next);
	json_decref(orig);
	return ret;
}

int compute_update_apply(struct compute *c, json_t *m, struct api_error *e)
{
	const char *collection = jstr(m, "collection") ?: "", *fp = jstr(m, "fingerprint");
	struct item *it =
	    coll_find(compute_coll(c, collection), jstr(m, "scope") ?: "", jstr(m, "name") ?: "");
	json_t *next = json_object_get(m, "resource");

	if (!it || it->pending || !json_is_object(next))
		return api_not_found(e, collection);
	/* Another update landed after this one was accepted: its fingerprint is stale now. */
	if (fp && !fingerprint_equal(fp, jstr(it->res, "fingerprint")))
		return api_fail_code(e, 412, "conditionNotMet", "CONDITION_NOT_MET",
				     "Supplied fingerprint does not match current fingerprint.");
	next = json_deep_copy(next);
	if (!next)
		return api_fail(e, 500, "internalError", "out of memory");
	if (fp)
		compute_new_fingerprint(next);
	json_decref(it->res);
	it->res = next;
	return 0;
}
