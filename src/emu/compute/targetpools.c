/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the GCE cloud controller manager's external load balancers are made of besides
 * forwarding rules, addresses and firewalls: target pools and the legacy HTTP health checks
 * they take (cloud-provider-gcp providers/gce/gce_loadbalancer_external.go,
 * gce_targetpool.go, gce_healthchecks.go).
 *
 * targetPools (regional, https://cloud.google.com/compute/docs/reference/rest/v1/targetPools):
 *   insert, get, list, aggregatedList, delete, addInstance, removeInstance, addHealthCheck,
 *   removeHealthCheck, getHealth. "instances: A list of resource URLs to the virtual machine
 *   instances serving this pool. They must live in zones contained in the same region as this
 *   pool"; "healthChecks: ... Only legacy HttpHealthChecks are supported. Only one health
 *   check may be specified"; sessionAffinity defaults to NONE; failoverRatio only with a
 *   backupPool. Instances are given as URLs or partial URLs ("zones/Z/instances/N", and the
 *   CCM's "/zones/Z/instances/N"); an instance the pool has already is not added twice.
 *   A pool a forwarding rule targets cannot be deleted: "resourceInUseByAnotherResource".
 *
 * httpHealthChecks (global, https://cloud.google.com/compute/docs/reference/rest/v1/
 *   httpHealthChecks): insert, get, list, delete, update (PUT), patch. Defaults port 80,
 *   requestPath "/", checkIntervalSec 5, timeoutSec 5, healthyThreshold 2,
 *   unhealthyThreshold 2; timeoutSec may not exceed checkIntervalSec. One a target pool uses
 *   cannot be deleted: the CCM relies on the "being used by" message (gce_util.go
 *   isInUsedByError) to keep the cluster's shared node health check while other pools use it.
 *
 * getHealth answers what the emulated cluster says about the instance (kube/ccm_services.c,
 * emu_kube_lb_healthy): with no health check every instance of the pool is HEALTHY, as GCP
 * documents ("If no health check is specified, all instances are considered healthy"); an
 * instance that is not RUNNING is UNHEALTHY.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"

#define POOL_HEALTH_CHECKS_MAX 1

/* ---- httpHealthChecks ---- */

/* An integer field in [lo, hi], defaulted when absent. */
static int int_field(json_t *res, const char *field, json_int_t def, json_int_t lo, json_int_t hi,
		     struct api_error *e)
{
	json_t *v = json_object_get(res, field);
	json_int_t n;

	if (!v) {
		json_object_set_new(res, field, json_integer(def));
		return 0;
	}
	n = json_integer_value(v);
	if (n < lo || n > hi)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.%s': '%lld'. Must be in the range "
		    "[%lld, %lld].",
		    field, (long long)n, (long long)lo, (long long)hi);
	return 0;
}

static int http_hc_prepare(struct call *k, json_t *res, struct api_error *e)
{
	const char *path = jstr(res, "requestPath");
	int ret;

	(void)k;
	ret = int_field(res, "port", 80, 1, 65535, e);
	if (ret == 0)
		ret = int_field(res, "checkIntervalSec", 5, 1, 300, e);
	if (ret == 0)
		ret = int_field(res, "timeoutSec", 5, 1, 300, e);
	if (ret == 0)
		ret = int_field(res, "healthyThreshold", 2, 1, 10, e);
	if (ret == 0)
		ret = int_field(res, "unhealthyThreshold", 2, 1, 10, e);
	if (ret < 0)
		return ret;
	if (!path)
		json_object_set_new(res, "requestPath", json_string("/"));
	else if (path[0] != '/')
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.requestPath': '%s'. The request "
				"path must start with '/'.",
				path);
	if (json_integer_value(json_object_get(res, "timeoutSec")) >
	    json_integer_value(json_object_get(res, "checkIntervalSec")))
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.timeoutSec': '%lld'. TimeoutSec "
				"should be less than checkIntervalSec.",
				(long long)json_integer_value(json_object_get(res, "timeoutSec")));
	return 0;
}

static int http_hc_check_delete(struct compute *c, struct item *it, struct api_error *e)
{
	static const char *const users[] = {"targetPools"};

	return compute_check_unused(c, it, users, 1, e);
}

/*
 * update (PUT: the whole resource) and patch (PATCH: JSON merge patch), as the CCM's
 * UpdateHTTPHealthCheck uses when a check's parameters drifted (ensureHTTPHealthCheck). The
 * resource has no fingerprint.
 */
static int http_hc_method(struct call *k, struct item *it, struct api_error *e)
{
	static const struct update_rules rules = {.what = "health check",
						  .prepare = http_hc_prepare};

	return compute_update_method(k, it, &rules, e);
}

const struct coll_type ct_http_health_checks = {
    .name = "httpHealthChecks",
    .kind = "compute#httpHealthCheck",
    .list_kind = "compute#httpHealthCheckList",
    .schema = "HttpHealthCheck",
    .scopes = SCOPE_GLOBAL,
    .prepare_insert = http_hc_prepare,
    .check_delete = http_hc_check_delete,
    .method = http_hc_method,
    .apply_method = compute_update_apply,
};

/* ---- targetPools ---- */

/* The instance a pool member reference names, in the pool's region; NULL with e filled. */
static struct item *pool_instance(struct compute *c, const char *pool_scope, const char *ref,
				  const char *field, struct api_error *e)
{
	char scope[96], name[128];
	struct item *inst;
	const char *region;

	/* The CCM sends "/zones/Z/instances/N" (gceInstance.makeComparableHostPath). */
	if (ref && ref[0] == '/' && strncmp(ref, "/zones/", 7) == 0)
		ref++;
	if (!ref ||
	    compute_parse_ref(c, ref, "instances", NULL, scope, sizeof(scope), name, sizeof(name)) <
		0 ||
	    strncmp(scope, "zones/", 6) != 0) {
		api_fail(e, 400, "invalid", "Invalid value for field '%s': '%s'.", field,
			 ref ? ref : "");
		return NULL;
	}
	region = compute_zone_region(scope + 6);
	if (!region || strcmp(region, pool_scope + strlen("regions/")) != 0) {
		api_fail(e, 400, "invalid",
			 "Invalid value for field '%s': '%s'. The instance must be in a zone of "
			 "the target pool's region '%s'.",
			 field, ref, pool_scope + strlen("regions/"));
		return NULL;
	}
	inst = coll_find(compute_coll(c, "instances"), scope, name);
	if (!inst || inst->pending) {
		api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
			      "The resource 'projects/%s/%s/instances/%s' was not found",
			      c->emu->opt.project, scope, name);
		return NULL;
	}
	return inst;
}

static struct item *legacy_health_check(struct compute *c, const char *ref, const char *field,
					struct api_error *e)
{
	char scope[96], name[128];
	struct item *hc;

	if (!ref ||
	    compute_parse_ref(c, ref, "httpHealthChecks", "global", scope, sizeof(scope), name,
			      sizeof(name)) < 0 ||
	    strcmp(scope, "global") != 0) {
		api_fail(e, 400, "invalid",
			 "Invalid value for field '%s': '%s'. Only legacy HttpHealthChecks are "
			 "supported.",
			 field, ref ? ref : "");
		return NULL;
	}
	hc = coll_find(compute_coll(c, "httpHealthChecks"), scope, name);
	if (!hc || hc->pending) {
		api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
			      "The resource 'projects/%s/global/httpHealthChecks/%s' was not found",
			      c->emu->opt.project, name);
		return NULL;
	}
	return hc;
}

static bool has_url(const json_t *arr, const char *url)
{
	json_t *v;
	size_t i;

	json_array_foreach(arr, i, v) if (strcmp(json_string_value(v) ?: "", url) == 0) return true;
	return false;
}

static int pool_prepare(struct call *k, json_t *res, struct api_error *e)
{
	struct compute *c = k->c;
	json_t *list, *urls, *v;
	const char *backup = jstr(res, "backupPool");
	char field[64];
	size_t i;

	if (!jstr(res, "sessionAffinity"))
		json_object_set_new(res, "sessionAffinity", json_string("NONE"));
	list = json_object_get(res, "healthChecks");
	if (json_array_size(list) > POOL_HEALTH_CHECKS_MAX)
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.healthChecks': only one health "
				"check may be specified, not %zu.",
				json_array_size(list));
	json_array_foreach(list, i, v)
	{
		struct item *hc;

		snprintf(field, sizeof(field), "resource.healthChecks[%zu]", i);
		hc = legacy_health_check(c, json_string_value(v), field, e);
		if (!hc)
			return -EINVAL;
		json_array_set(list, i, json_object_get(hc->res, "selfLink"));
	}
	urls = json_array();
	if (!urls)
		return api_fail(e, 500, "internalError", "out of memory");
	json_array_foreach(json_object_get(res, "instances"), i, v)
	{
		struct item *inst;

		snprintf(field, sizeof(field), "resource.instances[%zu]", i);
		inst = pool_instance(c, k->scope, json_string_value(v), field, e);
		if (!inst) {
			json_decref(urls);
			return -EINVAL;
		}
		if (!has_url(urls, jstr(inst->res, "selfLink") ?: ""))
			json_array_append(urls, json_object_get(inst->res, "selfLink"));
	}
	if (json_object_get(res, "instances"))
		json_object_set_new(res, "instances", urls);
	else
		json_decref(urls);
	if (backup) {
		char scope[96], name[128];
		struct item *b;

		if (compute_parse_ref(c, backup, "targetPools", k->scope, scope, sizeof(scope),
				      name, sizeof(name)) < 0 ||
		    strcmp(scope, k->scope) != 0)
			return api_fail(e, 400, "invalid",
					"Invalid value for field 'resource.backupPool': '%s'.",
					backup);
		b = coll_find(compute_coll(c, "targetPools"), scope, name);
		if (!b || b->pending)
			return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
					     "The resource 'projects/%s/%s/targetPools/%s' was not "
					     "found",
					     c->emu->opt.project, scope, name);
		json_object_set(res, "backupPool", json_object_get(b->res, "selfLink"));
	}
	v = json_object_get(res, "failoverRatio");
	if (v && (!backup || json_number_value(v) < 0 || json_number_value(v) > 1))
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.failoverRatio': a failover ratio "
		    "in [0, 1] goes with a backupPool.");
	return 0;
}

static int pool_check_delete(struct compute *c, struct item *it, struct api_error *e)
{
	static const char *const users[] = {"forwardingRules", "targetPools"};

	return compute_check_unused(c, it, users, 2, e);
}

static int pool_members(struct call *k, struct item *pool, bool add, struct api_error *e)
{
	struct compute *c = k->c;
	json_t *list, *ref, *urls;
	char field[64];
	size_t i;
	int ret = compute_check_request(
	    k, add ? "TargetPoolsAddInstanceRequest" : "TargetPoolsRemoveInstanceRequest", e);

	if (ret < 0)
		return ret;
	list = json_object_get(k->body, "instances");
	if (json_array_size(list) == 0)
		return api_fail(e, 400, "required",
				"Required field 'resource.instances' not specified");
	urls = json_array();
	json_array_foreach(list, i, ref)
	{
		const char *url = jstr(ref, "instance");
		struct item *inst;

		snprintf(field, sizeof(field), "resource.instances[%zu].instance", i);
		if (!add) {
			/* A member may be removed after its instance is gone. */
			char scope[96], name[128], *full;

			if (url && url[0] == '/' && strncmp(url, "/zones/", 7) == 0)
				url++;
			if (!url ||
			    compute_parse_ref(c, url, "instances", NULL, scope, sizeof(scope), name,
					      sizeof(name)) < 0 ||
			    strncmp(scope, "zones/", 6) != 0) {
				json_decref(urls);
				return api_fail(e, 400, "invalid",
						"Invalid value for field '%s': '%s'.", field,
						url ? url : "");
			}
			full = compute_url_str(c, "projects/%s/%s/instances/%s",
					       c->emu->opt.project, scope, name);
			json_array_append_new(urls, json_string(full ? full : ""));
			free(full);
			continue;
		}
		inst = pool_instance(c, pool->scope, url, field, e);
		if (!inst) {
			json_decref(urls);
			return -EINVAL;
		}
		json_array_append(urls, json_object_get(inst->res, "selfLink"));
	}
	return op_start(k, add ? "addInstance" : "removeInstance", pool->scope, pool->name,
			"targetPools", json_incref(json_object_get(pool->res, "id")),
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "op", "method", "method",
				  add ? "addInstance" : "removeInstance", "collection",
				  "targetPools", "scope", pool->scope, "name", pool->name,
				  "instances", urls));
}

static int pool_health_checks(struct call *k, struct item *pool, bool add, struct api_error *e)
{
	json_t *list, *ref, *urls;
	char field[64];
	size_t i;
	int ret = compute_check_request(
	    k, add ? "TargetPoolsAddHealthCheckRequest" : "TargetPoolsRemoveHealthCheckRequest", e);

	if (ret < 0)
		return ret;
	list = json_object_get(k->body, "healthChecks");
	if (json_array_size(list) == 0)
		return api_fail(e, 400, "required",
				"Required field 'resource.healthChecks' not specified");
	urls = json_array();
	json_array_foreach(list, i, ref)
	{
		struct item *hc;

		snprintf(field, sizeof(field), "resource.healthChecks[%zu].healthCheck", i);
		hc = legacy_health_check(k->c, jstr(ref, "healthCheck"), field, e);
		if (!hc) {
			json_decref(urls);
			return -EINVAL;
		}
		if (!has_url(urls, jstr(hc->res, "selfLink") ?: ""))
			json_array_append(urls, json_object_get(hc->res, "selfLink"));
	}
	if (add) {
		json_t *have = json_object_get(pool->res, "healthChecks");
		size_t n = json_array_size(have);

		json_array_foreach(urls, i, ref) if (!has_url(have, json_string_value(ref))) n++;
		if (n > POOL_HEALTH_CHECKS_MAX) {
			json_decref(urls);
			return api_fail(e, 400, "invalid",
					"Invalid value for field 'resource.healthChecks': a target "
					"pool takes one health check.");
		}
	}
	return op_start(k, add ? "addHealthCheck" : "removeHealthCheck", pool->scope, pool->name,
			"targetPools", json_incref(json_object_get(pool->res, "id")),
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "op", "method", "method",
				  add ? "addHealthCheck" : "removeHealthCheck", "collection",
				  "targetPools", "scope", pool->scope, "name", pool->name,
				  "healthChecks", urls));
}

/* The legacy health check a pool uses, or NULL. */
static struct item *pool_check(struct compute *c, const struct item *pool)
{
	const char *url =
	    json_string_value(json_array_get(json_object_get(pool->res, "healthChecks"), 0));
	char scope[96], name[128];

	if (!url || compute_parse_ref(c, url, "httpHealthChecks", "global", scope, sizeof(scope),
				      name, sizeof(name)) < 0)
		return NULL;
	return coll_find(compute_coll(c, "httpHealthChecks"), scope, name);
}

static const char *health_state(struct compute *c, const struct item *pool, const struct item *inst)
{
	struct item *hc = pool_check(c, pool);

	if (strcmp(jstr(inst->res, "status") ?: "", "RUNNING") != 0)
		return "UNHEALTHY";
	if (!hc || hc->pending)
		return "HEALTHY";
	return emu_kube_lb_healthy(c->emu, inst->scope + strlen("zones/"), inst->name,
				   (unsigned)json_integer_value(json_object_get(hc->res, "port")),
				   jstr(hc->res, "requestPath") ?: "/")
		   ? "HEALTHY"
		   : "UNHEALTHY";
}

/*
 * getHealth: "Gets the most recent health check results for each IP for the instance that is
 * referenced by the given target pool": one entry per forwarding rule of the pool (its IP),
 * or one without an IP while no rule points at the pool.
 */
static int pool_get_health(struct call *k, struct item *pool, struct api_error *e)
{
	struct compute *c = k->c;
	struct coll *rules = compute_coll(c, "forwardingRules");
	const char *self = jstr(pool->res, "selfLink") ?: "", *state;
	json_t *status, *doc;
	struct item *inst;
	int ret = compute_check_request(k, "InstanceReference", e);

	if (ret < 0)
		return ret;
	inst = pool_instance(c, pool->scope, jstr(k->body, "instance"), "resource.instance", e);
	if (!inst)
		return -EINVAL;
	if (!has_url(json_object_get(pool->res, "instances"), jstr(inst->res, "selfLink") ?: ""))
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.instance': '%s'. The instance is "
		    "not a member of target pool '%s'.",
		    jstr(k->body, "instance"), pool->name);
	state = health_state(c, pool, inst);
	status = json_array();
	for (size_t i = 0; rules && i < rules->len; i++) {
		struct item *r = rules->items[i];

		if (r->pending || strcmp(jstr(r->res, "target") ?: "", self) != 0)
			continue;
		json_array_append_new(status,
				      json_pack("{s:s, s:O, s:s}", "healthState", state, "instance",
						json_object_get(inst->res, "selfLink"), "ipAddress",
						jstr(r->res, "IPAddress") ?: ""));
	}
	if (json_array_size(status) == 0)
		json_array_append_new(status,
				      json_pack("{s:s, s:O}", "healthState", state, "instance",
						json_object_get(inst->res, "selfLink")));
	doc = json_pack("{s:s, s:o}", "kind", "compute#targetPoolInstanceHealth", "healthStatus",
			status);
	return compute_reply(k->req, 200, doc);
}

static int pool_method(struct call *k, struct item *pool, struct api_error *e)
{
	if (!k->verb || strcmp(k->req->method, "POST") != 0)
		return api_fail(e, 404, "notFound",
				"The requested URL was not found on this server.");
	if (strcmp(k->verb, "addInstance") == 0)
		return pool_members(k, pool, true, e);
	if (strcmp(k->verb, "removeInstance") == 0)
		return pool_members(k, pool, false, e);
	if (strcmp(k->verb, "addHealthCheck") == 0)
		return pool_health_checks(k, pool, true, e);
	if (strcmp(k->verb, "removeHealthCheck") == 0)
		return pool_health_checks(k, pool, false, e);
	if (strcmp(k->verb, "getHealth") == 0)
		return pool_get_health(k, pool, e);
	return api_fail(e, 404, "notFound", "The requested URL was not found on this server.");
}

/* Adds (or removes) the URLs of list to (from) the array field of res. */
static void change_set(json_t *res, const char *field, const json_t *list, bool add)
{
	json_t *have = json_object_get(res, field), *v;
	size_t i;

	if (!json_is_array(have)) {
		have = json_array();
		json_object_set_new(res, field, have);
	}
	json_array_foreach(list, i, v)
	{
		const char *url = json_string_value(v) ?: "";

		if (add) {
			if (!has_url(have, url))
				json_array_append(have, v);
			continue;
		}
		for (size_t j = json_array_size(have); j-- > 0;)
			if (strcmp(json_string_value(json_array_get(have, j)) ?: "", url) == 0)
				json_array_remove(have, j);
	}
	if (json_array_size(have) == 0)
		json_object_del(res, field);
}

static int pool_apply_method(struct compute *c, json_t *m, struct api_error *e)
{
	struct item *pool = coll_find(compute_coll(c, "targetPools"), jstr(m, "scope") ?: "",
				      jstr(m, "name") ?: "");
	const char *method = jstr(m, "method") ?: "";

	if (!pool || pool->pending)
		return api_not_found(e, "targetPool");
	if (strcmp(method, "addInstance") == 0 || strcmp(method, "removeInstance") == 0) {
		json_t *alive = json_array(), *v;
		size_t i;

		/* An instance deleted while the Operation ran is not added. */
		json_array_foreach(json_object_get(m, "instances"), i, v)
		{
			char scope[96], name[128];

			if (method[0] == 'r' ||
			    (compute_parse_ref(c, json_string_value(v) ?: "", "instances", NULL,
					       scope, sizeof(scope), name, sizeof(name)) == 0 &&
			     emu_compute_instance(c->emu, scope + strlen("zones/"), name)))
				json_array_append(alive, v);
		}
		change_set(pool->res, "instances", alive, method[0] == 'a');
		json_decref(alive);
		return 0;
	}
	if (strcmp(method, "addHealthCheck") == 0 || strcmp(method, "removeHealthCheck") == 0) {
		change_set(pool->res, "healthChecks", json_object_get(m, "healthChecks"),
			   method[0] == 'a');
		return 0;
	}
	return api_fail(e, 500, "internalError", "unknown target pool method '%s'", method);
}

const struct coll_type ct_target_pools = {
    .name = "targetPools",
    .kind = "compute#targetPool",
    .list_kind = "compute#targetPoolList",
    .agg_kind = "compute#targetPoolAggregatedList",
    .schema = "TargetPool",
    .scopes = SCOPE_REGION,
    .prepare_insert = pool_prepare,
    .check_delete = pool_check_delete,
    .method = pool_method,
    .apply_method = pool_apply_method,
};

/* ---- forwarding rules that target a pool ---- */

int target_pool_check_rule(struct call *k, json_t *res, struct api_error *e)
{
	struct compute *c = k->c;
	const char *target = jstr(res, "target");
	char scope[96], name[128];
	struct item *pool;

	if (!target || !strstr(target, "targetPools/"))
		return 0;
	if (compute_parse_ref(c, target, "targetPools", k->scope, scope, sizeof(scope), name,
			      sizeof(name)) < 0)
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.target': '%s'.", target);
	pool = coll_find(compute_coll(c, "targetPools"), scope, name);
	if (!pool || pool->pending)
		return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
				     "The resource 'projects/%s/%s/targetPools/%s' was not found",
				     c->emu->opt.project, scope, name);
	if (k->skind != SCOPE_REGION || strcmp(scope, k->scope) != 0)
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.target': '%s'. A target pool of "
				"the forwarding rule's region is expected.",
				target);
	if (strcmp(jstr(res, "loadBalancingScheme") ?: "EXTERNAL", "EXTERNAL") != 0)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.loadBalancingScheme': '%s'. Target "
		    "pools take EXTERNAL forwarding rules.",
		    jstr(res, "loadBalancingScheme"));
	json_object_set(res, "target", json_object_get(pool->res, "selfLink"));
	return 0;
}
