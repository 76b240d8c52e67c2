/* SPDX-License-Identifier: Apache-2.0 */
/*
 * targetTcpProxies (global, and regional): insert, get, list, aggregatedList, delete,
 * setBackendService, setProxyHeader.
 *
 * https://cloud.google.com/compute/docs/reference/rest/v1/targetTcpProxies: "service: URL to
 * the BackendService resource" (required; a global proxy takes a global backend service, a
 * regional one a backend service of its region), proxyHeader NONE (the default) or PROXY_V1.
 * The proxy load balancer's backend service speaks TCP and is EXTERNAL or EXTERNAL_MANAGED
 * (https://cloud.google.com/load-balancing/docs/tcp/setting-up-tcp: "--protocol TCP",
 * "--load-balancing-scheme EXTERNAL"); the Talos guide's control-plane proxy is exactly that.
 * A proxy that a forwarding rule targets cannot be deleted.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "emu/compute/compute.h"

static int check_service(struct compute *c, json_t *obj, const char *scope, struct api_error *e)
{
	const char *ref = jstr(obj, "service"), *scheme, *proto;
	struct item *bs;

	if (!ref)
		return api_fail(e, 400, "required",
				"Required field 'resource.service' not specified");
	bs = compute_ref_item(c, ref, "backendServices", scope);
	if (!bs)
		return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
				     "The resource '%s' was not found", ref);
	if (strcmp(bs->scope, scope) != 0)
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.service': '%s'. A %s target TCP "
				"proxy needs a backend service in %s.",
				ref, strcmp(scope, "global") == 0 ? "global" : "regional", scope);
	scheme = jstr(bs->res, "loadBalancingScheme") ?: "";
	proto = jstr(bs->res, "protocol") ?: "";
	if ((strcmp(scheme, "EXTERNAL") != 0 && strcmp(scheme, "EXTERNAL_MANAGED") != 0) ||
	    strcmp(proto, "TCP") != 0)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.service': '%s'. A target TCP proxy "
		    "needs a backend service with protocol TCP and loadBalancingScheme "
		    "EXTERNAL or EXTERNAL_MANAGED (it has %s, %s).",
		    ref, proto, scheme);
	json_object_set(obj, "service", json_object_get(bs->res, "selfLink"));
	return 0;
}

static int check_header(const json_t *obj, struct api_error *e)
{
	const char *h = jstr(obj, "proxyHeader");

	if (h && strcmp(h, "NONE") != 0 && strcmp(h, "PROXY_V1") != 0)
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.proxyHeader': '%s'.", h);
	return 0;
}

static int proxy_prepare(struct call *k, json_t *res, struct api_error *e)
{
	int ret = check_service(k->c, res, k->scope, e);

	if (ret == 0)
		ret = check_header(res, e);
	if (ret < 0)
		return ret;
	if (!jstr(res, "proxyHeader"))
		json_object_set_new(res, "proxyHeader", json_string("NONE"));
	return 0;
}

static int proxy_check_delete(struct compute *c, struct item *it, struct api_error *e)
{
	static const char *const users[] = {"forwardingRules"};

	return compute_check_unused(c, it, users, 1, e);
}

static int proxy_method(struct call *k, struct item *it, struct api_error *e)
{
	const char *verb = k->verb ?: "";
	bool service = strcmp(verb, "setBackendService") == 0;
	char err[512];
	int ret;

	if (strcmp(k->req->method, "POST") != 0 ||
	    (!service && strcmp(verb, "setProxyHeader") != 0))
		return api_fail(e, 404, "notFound",
				"The requested URL was not found on this server.");
	if (!k->body)
		return api_fail(e, 400, "required", "Required field 'resource' not specified");
	if (sch_check(sch_find(service ? "TargetTcpProxiesSetBackendServiceRequest"
				       : "TargetTcpProxiesSetProxyHeaderRequest"),
		      k->body, "resource", err, sizeof(err)) < 0)
		return api_fail(e, 400, "invalid", "%s", err);
	ret = service ? check_service(k->c, k->body, it->scope, e) : check_header(k->body, e);
	if (ret < 0)
		return ret;
	if (!service && !jstr(k->body, "proxyHeader"))
		return api_fail(e, 400, "required",
				"Required field 'resource.proxyHeader' not specified");
	return op_start(k, verb, it->scope, it->name, "targetTcpProxies",
			json_incref(json_object_get(it->res, "id")),
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "op", "method", "method",
				  verb, "collection", "targetTcpProxies", "scope", it->scope,
				  "name", it->name, "field", service ? "service" : "proxyHeader",
				  "value",
				  json_object_get(k->body, service ? "service" : "proxyHeader")));
}

static int proxy_apply_method(struct compute *c, json_t *m, struct api_error *e)
{
	struct item *it = coll_find(compute_coll(c, "targetTcpProxies"), jstr(m, "scope") ?: "",
				    jstr(m, "name") ?: "");

	if (!it || it->pending || !jstr(m, "field"))
		return api_not_found(e, "targetTcpProxy");
	if (strcmp(jstr(m, "field"), "service") == 0 &&
	    !compute_ref_item(c, jstr(m, "value"), "backendServices", it->scope))
		return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
				     "The resource '%s' was not found", jstr(m, "value") ?: "");
	json_object_set(it->res, jstr(m, "field"), json_object_get(m, "value"));
	return 0;
}

const struct coll_type ct_target_tcp_proxies = {
    .name = "targetTcpProxies",
    .kind = "compute#targetTcpProxy",
    .list_kind = "compute#targetTcpProxyList",
    .agg_kind = "compute#targetTcpProxyAggregatedList",
    .schema = "TargetTcpProxy",
    .scopes = SCOPE_GLOBAL | SCOPE_REGION,
    .prepare_insert = proxy_prepare,
    .check_delete = proxy_check_delete,
    .method = proxy_method,
    .apply_method = proxy_apply_method,
};
