/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The load-balancing and firewall resources a cluster's networking uses: addresses,
 * forwardingRules, healthChecks, backendServices, firewalls, instanceGroups. Insert, get,
 * list, aggregatedList and delete through the generic collection code, with the checks
 * that keep references meaningful (a referenced network, subnetwork, health check or
 * instance group must exist; something referenced cannot be deleted).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"

/* A reference field that must name an existing resource; normalized to its URL. */
static int must_exist(struct call *k, json_t *res, const char *field, const char *collection,
		      const char *default_scope, bool required, struct api_error *e)
{
	struct compute *c = k->c;
	const char *ref = jstr(res, field);
	char scope[96], name[128];
	struct item *it;

	if (!ref) {
		if (required)
			return api_fail(e, 400, "required",
					"Required field 'resource.%s' not specified", field);
		return 0;
	}
	if (compute_parse_ref(c, ref, collection, default_scope, scope, sizeof(scope), name,
			      sizeof(name)) < 0)
		return api_fail(e, 400, "invalid", "Invalid value for field 'resource.%s': '%s'.",
				field, ref);
	it = coll_find(compute_coll(c, collection), scope, name);
	if (!it || it->pending)
		return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
				     "The resource 'projects/%s/%s/%s/%s' was not found",
				     c->emu->opt.project, scope, collection, name);
	json_object_set(res, field, json_object_get(it->res, "selfLink"));
	return 0;
}

/* Does any resource of these collections reference self (a URL) in any string field? */
static bool mentions(const json_t *j, const char *self)
{
	const char *key;
	json_t *v;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_STRING:
		return strcmp(json_string_value(j), self) == 0;
	case JSON_OBJECT:
		json_object_foreach((json_t *)j, key, v) if (strcmp(key, "selfLink") != 0 &&
							     mentions(v, self)) return true;
		return false;
	case JSON_ARRAY:
		json_array_foreach(j, i, v) if (mentions(v, self)) return true;
		return false;
	default:
		return false;
	}
}

int compute_check_unused(struct compute *c, struct item *it, const char *const *users, size_t n,
			 struct api_error *e)
{
	const char *self = jstr(it->res, "selfLink");

	for (size_t u = 0; u < n; u++) {
		struct coll *co = compute_coll(c, users[u]);

		for (size_t i = 0; co && i < co->len; i++) {
			if (co->items[i] == it || !mentions(co->items[i]->res, self ?: ""))
				continue;
			return api_fail(e, 400, "resourceInUseByAnotherResource",
					"The resource '%s' is already being used by '%s'",
					compute_rel(c, self),
					compute_rel(c, jstr(co->items[i]->res, "selfLink")));
		}
	}
	return 0;
}

static const char *region_scope(const struct call *k)
{
	return k->skind == SCOPE_REGION ? k->scope : "global";
}

/* ---- addresses ---- */

static int address_prepare(struct call *k, json_t *res, struct api_error *e)
{
	const char *type, *addr = jstr(res, "address");
	int ret;

	if (!jstr(res, "addressType"))
		json_object_set_new(res, "addressType", json_string("EXTERNAL"));
	type = jstr(res, "addressType"); /* borrowed from res: read after setting */
	json_object_set_new(res, "status", json_string("RESERVED"));
	if (strcmp(type, "INTERNAL") == 0) {
		ret = must_exist(k, res, "subnetwork", "subnetworks", region_scope(k),
				 k->skind == SCOPE_REGION, e);
		if (ret < 0)
			return ret;
		if (k->skind != SCOPE_REGION && !jstr(res, "purpose"))
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.addressType': 'INTERNAL'. Global internal addresses need a purpose.");
		if (addr) {
			uint32_t a;
			char *cidr = str_printf("%s/32", addr);
			uint32_t lo, hi;
			unsigned p;

			ret = cidr ? cidr4_parse(cidr, &a, &hi, &p) : -ENOMEM;
			free(cidr);
			if (ret < 0)
				return api_fail(e, 400, "invalid",
						"Invalid value for field 'resource.address': '%s'.",
						addr);
			if (k->skind == SCOPE_REGION) {
				char scope[96], name[128];
				struct item *sub = NULL;

				if (compute_parse_ref(k->c, jstr(res, "subnetwork"), "subnetworks",
						      k->scope, scope, sizeof(scope), name,
						      sizeof(name)) == 0)
					sub = coll_find(compute_coll(k->c, "subnetworks"), scope,
							name);
				if (sub && subnet_range(sub->res, NULL, &lo, &hi, &p) == 0 &&
				    (a < lo + 2 || a > hi - 2))
					return api_fail(
					    e, 400, "invalid",
					    "Invalid value for field 'resource.address': '%s'. The address is not in the subnetwork's primary range.",
					    addr);
			}
		}
	} else if (!addr) {
		/* External addresses are data here: nothing routes to them. */
		char *text = ip4_format(0x22000000u + (uint32_t)(++k->c->nat_counter % 0xffffff));

		json_object_set_new(res, "address", json_string(text ? text : ""));
		free(text);
	}
	if (!jstr(res, "networkTier") && strcmp(type, "EXTERNAL") == 0)
		json_object_set_new(res, "networkTier", json_string("PREMIUM"));
	json_object_set_new(res, "labelFingerprint", json_string("42WmSpB8rSM="));
	return 0;
}

static int address_check_delete(struct compute *c, struct item *it, struct api_error *e)
{
	static const char *const users[] = {"forwardingRules"};
	const char *addr = jstr(it->res, "address");
	struct coll *frs = compute_coll(c, "forwardingRules");

	/* A forwarding rule holding the address (by IP or by reference) keeps it in use. */
	for (size_t i = 0; addr && i < frs->len; i++)
		if (strcmp(jstr(frs->items[i]->res, "IPAddress") ?: "", addr) == 0 &&
		    strcmp(frs->items[i]->scope, it->scope) == 0)
			return api_fail(e, 400, "resourceInUseByAnotherResource",
					"The address resource '%s' is already being used by '%s'",
					compute_rel(c, jstr(it->res, "selfLink")),
					compute_rel(c, jstr(frs->items[i]->res, "selfLink")));
	return compute_check_unused(c, it, users, 1, e);
}

const struct coll_type ct_addresses = {
    .name = "addresses",
    .kind = "compute#address",
    .list_kind = "compute#addressList",
    .agg_kind = "compute#addressAggregatedList",
    .schema = "Address",
    .scopes = SCOPE_REGION | SCOPE_GLOBAL,
    .prepare_insert = address_prepare,
    .check_delete = address_check_delete,
};

/* ---- healthChecks ---- */

static int health_check_prepare(struct call *k, json_t *res, struct api_error *e)
{
	static const char *const types[] = {"TCP", "SSL", "HTTP", "HTTPS", "HTTP2", "GRPC"};
	static const char *const fields[] = {"tcpHealthCheck",   "sslHealthCheck",
					     "httpHealthCheck",  "httpsHealthCheck",
					     "http2HealthCheck", "grpcHealthCheck"};
	const char *type = jstr(res, "type");
	size_t i;

	(void)k;
	if (!type)
		return api_fail(e, 400, "required", "Required field 'resource.type' not specified");
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(types[i], type) == 0)
			break;
	if (i == sizeof(types) / sizeof(types[0]))
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.type': '%s'. This emulator knows TCP, SSL, HTTP, HTTPS, HTTP2 and GRPC.",
		    type);
	if (!json_object_get(res, fields[i]))
		return api_fail(e, 400, "required",
				"Required field 'resource.%s' not specified for type %s", fields[i],
				type);
	if (!json_object_get(res, "checkIntervalSec"))
		json_object_set_new(res, "checkIntervalSec", json_integer(5));
	if (!json_object_get(res, "timeoutSec"))
		json_object_set_new(res, "timeoutSec", json_integer(5));
	if (!json_object_get(res, "healthyThreshold"))
		json_object_set_new(res, "healthyThreshold", json_integer(2));
	if (!json_object_get(res, "unhealthyThreshold"))
		json_object_set_new(res, "unhealthyThreshold", json_integer(2));
	if (json_integer_value(json_object_get(res, "timeoutSec")) >
	    json_integer_value(json_object_get(res, "checkIntervalSec")))
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.timeoutSec': timeoutSec must be less than or equal to checkIntervalSec.");
	return 0;
}

static int health_check_check_delete(struct compute *c, struct item *it, struct api_error *e)
{
	static const char *const users[] = {"backendServices"};

	return compute_check_unused(c, it, users, 1, e);
}

/* healthChecks.update and .patch (https://cloud.google.com/compute/docs/reference/rest/v1/
 * healthChecks/patch): no fingerprint; the result is checked as an insert is. */
static int health_check_method(struct call *k, struct item *it, struct api_error *e)
{
	static const struct update_rules rules = {.what = "health check",
						  .prepare = health_check_prepare};

	return compute_update_method(k, it, &rules, e);
}

const struct coll_type ct_health_checks = {
    .name = "healthChecks",
    .kind = "compute#healthCheck",
    .list_kind = "compute#healthCheckList",
    .agg_kind = "compute#healthChecksAggregatedList",
    .schema = "HealthCheck",
    .scopes = SCOPE_REGION | SCOPE_GLOBAL,
    .prepare_insert = health_check_prepare,
    .check_delete = health_check_check_delete,
    .method = health_check_method,
    .apply_method = compute_update_apply,
};

/* ---- backendServices (global) and regionBackendServices ---- */

static int backend_service_prepare(struct call *k, json_t *res, struct api_error *e)
{
	json_t *hcs = json_object_get(res, "healthChecks"), *b, *hc;
	size_t i;
	int ret;

	json_array_foreach(hcs, i, hc)
	{
		char scope[96], name[128];
		struct item *it;

		if (!json_is_string(hc) ||
		    compute_parse_ref(k->c, json_string_value(hc), "healthChecks", region_scope(k),
				      scope, sizeof(scope), name, sizeof(name)) < 0)
			return api_fail(e, 400, "invalid",
					"Invalid value for field 'resource.healthChecks[%zu]'.", i);
		it = coll_find(compute_coll(k->c, "healthChecks"), scope, name);
		if (!it || it->pending)
			return api_fail_code(
			    e, 404, "notFound", "RESOURCE_NOT_FOUND",
			    "The resource 'projects/%s/%s/healthChecks/%s' was not found",
			    k->c->emu->opt.project, scope, name);
		json_array_set(hcs, i, json_object_get(it->res, "selfLink"));
	}
	json_array_foreach(json_object_get(res, "backends"), i, b)
	{
		char scope[96], name[128];
		struct item *it;
		const char *g = jstr(b, "group");

		if (!g || compute_parse_ref(k->c, g, "instanceGroups", NULL, scope, sizeof(scope),
					    name, sizeof(name)) < 0)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.backends[%zu].group': '%s'.", i,
			    g ? g : "");
		it = coll_find(compute_coll(k->c, "instanceGroups"), scope, name);
		if (!it || it->pending)
			return api_fail_code(
			    e, 404, "notFound", "RESOURCE_NOT_FOUND",
			    "The resource 'projects/%s/%s/instanceGroups/%s' was not found",
			    k->c->emu->opt.project, scope, name);
		json_object_set(b, "group", json_object_get(it->res, "selfLink"));
		if (!jstr(b, "balancingMode"))
			json_object_set_new(
			    b, "balancingMode",
			    json_string(k->skind == SCOPE_REGION ? "CONNECTION" : "UTILIZATION"));
	}
	ret = must_exist(k, res, "network", "networks", "global", false, e);
	if (ret < 0)
		return ret;
	if (!jstr(res, "loadBalancingScheme"))
		json_object_set_new(
		    res, "loadBalancingScheme",
		    json_string(k->skind == SCOPE_REGION ? "INTERNAL" : "EXTERNAL"));
	if (!jstr(res, "protocol"))
		json_object_set_new(res, "protocol",
				    json_string(k->skind == SCOPE_REGION ? "TCP" : "HTTP"));
	if (!json_object_get(res, "timeoutSec"))
		json_object_set_new(res, "timeoutSec", json_integer(30));
	if (!jstr(res, "sessionAffinity"))
		json_object_set_new(res, "sessionAffinity", json_string("NONE"));
	json_object_set_new(res, "fingerprint", json_string("AAAAAAAAAAA="));
	{
		char *fp = new_fingerprint();

		if (fp)
			json_object_set_new(res, "fingerprint", json_string(fp));
		free(fp);
	}
	return 0;
}

static int backend_service_check_delete(struct compute *c, struct item *it, struct api_error *e)
{
	static const char *const users[] = {"forwardingRules"};

	return compute_check_unused(c, it, users, 1, e);
}

/*
 * update, patch and getHealth. BackendService.fingerprint: "An up-to-date fingerprint must be
 * provided in order to update the BackendService, otherwise the request will fail with error
 * 412 conditionNotMet" (Compute v1 BackendService reference); every update changes it. The
 * load-balancing scheme and the network stay what they were created with.
 */
static int backend_service_method(struct call *k, struct item *it, struct api_error *e)
{
	static const char *const immutable[] = {"loadBalancingScheme", "network", NULL};
	static const struct update_rules rules = {.what = "backend service",
						  .immutable = immutable,
						  .fingerprint = true,
						  .prepare = backend_service_prepare};

	if (k->verb && strcmp(k->verb, "getHealth") == 0 && strcmp(k->req->method, "POST") == 0)
		return backend_service_get_health(k, it, e);
	return compute_update_method(k, it, &rules, e);
}

const struct coll_type ct_backend_services = {
    .name = "backendServices",
    .kind = "compute#backendService",
    .list_kind = "compute#backendServiceList",
    .agg_kind = "compute#backendServiceAggregatedList",
    .schema = "BackendService",
    .scopes = SCOPE_REGION | SCOPE_GLOBAL,
    .prepare_insert = backend_service_prepare,
    .check_delete = backend_service_check_delete,
    .method = backend_service_method,
    .apply_method = compute_update_apply,
};

/* ---- forwardingRules ---- */

/* "N" or "N-N": one port. */
static bool single_port(const char *range)
{
	char *end;
	unsigned long a, b;

	if (!range || !*range)
		return false;
	a = strtoul(range, &end, 10);
	if (*end == '-') {
		b = strtoul(end + 1, &end, 10);
		if (b != a)
			return false;
	}
	return *end == '\0' && a >= 1 && a <= 65535;
}

/*
 * What a rule points at (https://cloud.google.com/load-balancing/docs/forwarding-rule-concepts):
 * a target (here: a target TCP proxy of the rule's scope, whose backend service has the
 * rule's scheme; TCP, one port in portRange) or, on a regional rule only, a backend service of
 * its region with the same scheme and, for TCP and UDP backend services, the same protocol.
 */
static int check_rule_target(struct call *k, json_t *res, const char *scheme, struct api_error *e)
{
	const char *t = jstr(res, "target"), *proto = jstr(res, "IPProtocol");
	struct item *bs;

	if (!t && !jstr(res, "backendService"))
		return api_fail(e, 400, "required",
				"Invalid value for field 'resource': a forwarding rule needs a "
				"target or a backendService.");
	if (t) {
		struct item *proxy = compute_ref_item(k->c, t, "targetTcpProxies", k->scope);

		if (!proxy)
			return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
					     "The resource '%s' was not found", t);
		if (strcmp(proxy->scope, k->scope) != 0)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.target': '%s'. The target "
			    "must be in %s, as the forwarding rule.",
			    t, k->scope);
		bs = compute_ref_item(k->c, jstr(proxy->res, "service"), "backendServices",
				      proxy->scope);
		if (bs && strcmp(jstr(bs->res, "loadBalancingScheme") ?: "", scheme) != 0)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.loadBalancingScheme': '%s'. "
			    "The target's backend service has loadBalancingScheme %s.",
			    scheme, jstr(bs->res, "loadBalancingScheme") ?: "");
		if (strcmp(proto ?: "", "TCP") != 0)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.IPProtocol': '%s'. A target "
			    "TCP proxy takes TCP.",
			    proto ?: "");
		if (json_object_get(res, "ports") || !single_port(jstr(res, "portRange")))
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.portRange': '%s'. A rule "
			    "for a target TCP proxy has one port in portRange.",
			    jstr(res, "portRange") ?: "");
		json_object_set(res, "target", json_object_get(proxy->res, "selfLink"));
		return 0;
	}
	bs = compute_ref_item(k->c, jstr(res, "backendService"), "backendServices", k->scope);
	if (!bs)
		return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
				     "The resource '%s' was not found",
				     jstr(res, "backendService"));
	if (k->skind != SCOPE_REGION || strcmp(bs->scope, k->scope) != 0)
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.backendService': '%s'. Only a "
				"regional forwarding rule takes a backend service, of its region.",
				jstr(res, "backendService"));
	if (strcmp(jstr(bs->res, "loadBalancingScheme") ?: "", scheme) != 0)
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.loadBalancingScheme': '%s'. The "
				"backend service has loadBalancingScheme %s.",
				scheme, jstr(bs->res, "loadBalancingScheme") ?: "");
	if ((strcmp(jstr(bs->res, "protocol") ?: "", "TCP") == 0 ||
	     strcmp(jstr(bs->res, "protocol") ?: "", "UDP") == 0) &&
	    strcmp(jstr(bs->res, "protocol"), proto ?: "") != 0)
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.IPProtocol': '%s'. The backend "
				"service's protocol is %s.",
				proto ?: "", jstr(bs->res, "protocol"));
	return 0;
}

static int forwarding_rule_prepare(struct call *k, json_t *res, struct api_error *e)
{
	const char *scheme;
	int ret;

	if (!jstr(res, "loadBalancingScheme"))
		json_object_set_new(res, "loadBalancingScheme", json_string("EXTERNAL"));
	scheme = jstr(res, "loadBalancingScheme"); /* borrowed from res: read after setting */
	if (!jstr(res, "IPProtocol"))
		json_object_set_new(res, "IPProtocol", json_string("TCP"));
	if (jstr(res, "backendService") && jstr(res, "target"))
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource': a forwarding rule has either a target or a backendService.");
	ret = must_exist(k, res, "backendService", "backendServices", region_scope(k), false, e);
	if (ret == 0)
		ret = must_exist(k, res, "network", "networks", "global", false, e);
	if (ret == 0)
		ret = must_exist(k, res, "subnetwork", "subnetworks", region_scope(k), false, e);
	if (ret == 0)
		ret = check_rule_target(k, res, scheme, e);
	if (ret < 0)
		return ret;
	if (jstr(res, "IPAddress") && strchr(jstr(res, "IPAddress"), '/')) {
		char scope[96], name[128];
		struct item *a = NULL;

		if (compute_parse_ref(k->c, jstr(res, "IPAddress"), "addresses", k->scope, scope,
				      sizeof(scope), name, sizeof(name)) == 0)
			a = coll_find(compute_coll(k->c, "addresses"), scope, name);
		if (!a || a->pending || strcmp(scope, k->scope) != 0)
			return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
					     "The resource '%s' was not found",
					     jstr(res, "IPAddress"));
	}
	if (strcmp(scheme, "INTERNAL") == 0 && k->skind == SCOPE_REGION &&
	    !jstr(res, "subnetwork") && !jstr(res, "network"))
		return api_fail(
		    e, 400, "required",
		    "Required field 'resource.subnetwork' not specified for an INTERNAL forwarding rule");
	if (json_object_get(res, "ports") && json_object_get(res, "portRange"))
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource': ports and portRange are mutually exclusive.");
	if (json_array_size(json_object_get(res, "ports")) > 5)
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.ports': at most 5 ports.");
	if (!jstr(res, "IPAddress")) {
		char *text = ip4_format(0x22800000u + (uint32_t)(++k->c->nat_counter % 0x7fffff));

		/* Internal rules take an address of their subnet; data only either way. */
		if (strcmp(scheme, "INTERNAL") == 0 && jstr(res, "subnetwork")) {
			char scope[96], name[128];
			struct item *sub = NULL;
			uint32_t lo, hi;
			unsigned p;

			if (compute_parse_ref(k->c, jstr(res, "subnetwork"), "subnetworks", NULL,
					      scope, sizeof(scope), name, sizeof(name)) == 0)
				sub = coll_find(compute_coll(k->c, "subnetworks"), scope, name);
			if (sub && subnet_range(sub->res, NULL, &lo, &hi, &p) == 0) {
				free(text);
				text = ip4_format(hi - 2 - (uint32_t)(k->c->nat_counter % 64));
			}
		}
		json_object_set_new(res, "IPAddress", json_string(text ? text : ""));
		free(text);
	}
	if (strcmp(scheme, "EXTERNAL") == 0 && !jstr(res, "networkTier"))
		json_object_set_new(res, "networkTier", json_string("PREMIUM"));
	json_object_set_new(res, "labelFingerprint", json_string("42WmSpB8rSM="));
	{
		char *fp = new_fingerprint();

		if (fp)
			json_object_set_new(res, "fingerprint", json_string(fp));
		free(fp);
	}
	return 0;
}

/* The reserved address a forwarding rule uses (same scope, by value or by reference). */
static struct item *rule_address(struct compute *c, const struct item *rule)
{
	struct coll *addrs = compute_coll(c, "addresses");
	const char *ip = jstr(rule->res, "IPAddress");
	char scope[96], name[128];
	struct item *a;

	if (!ip)
		return NULL;
	/* "IPAddress ... can be specified as an IP address or a reference to an address." */
	if (strchr(ip, '/') && compute_parse_ref(c, ip, "addresses", rule->scope, scope,
						 sizeof(scope), name, sizeof(name)) == 0) {
		a = coll_find(addrs, scope, name);
		return a && !a->pending && strcmp(scope, rule->scope) == 0 ? a : NULL;
	}
	for (size_t i = 0; i < addrs->len; i++) {
		a = addrs->items[i];
		if (!a->pending && strcmp(a->scope, rule->scope) == 0 &&
		    strcmp(jstr(a->res, "address") ?: "", ip) == 0)
			return a;
	}
	return NULL;
}

/* Addresses show their users: status IN_USE while a forwarding rule holds them. */
static int forwarding_rule_apply_insert(struct compute *c, struct item *it, struct api_error *e)
{
	struct item *a = rule_address(c, it);
	json_t *users;

	(void)e;
	if (!a)
		return 0;
	users = json_object_get(a->res, "users");
	if (!users) {
		users = json_array();
		json_object_set_new(a->res, "users", users);
	}
	json_array_append(users, json_object_get(it->res, "selfLink"));
	json_object_set_new(a->res, "status", json_string("IN_USE"));
	/* Reserved by value: the rule names the address itself, as GCP shows it. */
	json_object_set(it->res, "IPAddress", json_object_get(a->res, "address"));
	return 0;
}

static void forwarding_rule_apply_delete(struct compute *c, struct item *it)
{
	struct item *a = rule_address(c, it);
	json_t *users, *u;
	size_t i;

	if (!a)
		return;
	users = json_object_get(a->res, "users");
	json_array_foreach(users, i, u)
	{
		if (strcmp(json_string_value(u) ?: "", jstr(it->res, "selfLink") ?: "") == 0) {
			json_array_remove(users, i);
			break;
		}
	}
	if (json_array_size(users) == 0) {
		json_object_del(a->res, "users");
		json_object_set_new(a->res, "status", json_string("RESERVED"));
	}
}

const struct coll_type ct_forwarding_rules = {
    .name = "forwardingRules",
    .kind = "compute#forwardingRule",
    .list_kind = "compute#forwardingRuleList",
    .agg_kind = "compute#forwardingRuleAggregatedList",
    .schema = "ForwardingRule",
    .scopes = SCOPE_REGION | SCOPE_GLOBAL,
    .prepare_insert = forwarding_rule_prepare,
    .apply_insert = forwarding_rule_apply_insert,
    .apply_delete = forwarding_rule_apply_delete,
};

/* ---- firewalls ---- */

static int firewall_prepare(struct call *k, json_t *res, struct api_error *e)
{
	json_t *allowed = json_object_get(res, "allowed"), *denied = json_object_get(res, "denied");
	json_t *r;
	size_t i;
	int ret;

	if (!jstr(res, "network"))
		json_object_set_new(res, "network",
				    compute_url(k->c, "projects/%s/global/networks/default",
						k->c->emu->opt.project));
	ret = must_exist(k, res, "network", "networks", "global", true, e);
	if (ret < 0)
		return ret;
	if (allowed && denied)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource': a firewall rule has either allowed or denied, not both.");
	if (json_array_size(allowed) == 0 && json_array_size(denied) == 0)
		return api_fail(e, 400, "required",
				"Required field 'resource.allowed' not specified");
	json_array_foreach(json_object_get(res, "sourceRanges"), i, r)
	{
		uint32_t lo, hi;
		unsigned p;
		char *withmask = NULL;
		const char *s = json_string_value(r);

		if (s && !strchr(s, '/'))
			s = withmask = str_printf("%s/32", s);
		ret = s ? cidr4_parse(s, &lo, &hi, &p) : -EINVAL;
		free(withmask);
		if (ret < 0)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.sourceRanges[%zu]': '%s'.", i,
			    json_string_value(r) ?: "");
	}
	if (!jstr(res, "direction"))
		json_object_set_new(res, "direction", json_string("INGRESS"));
	if (!json_object_get(res, "priority"))
		json_object_set_new(res, "priority", json_integer(1000));
	if (!json_object_get(res, "disabled"))
		json_object_set_new(res, "disabled", json_false());
	if (strcmp(jstr(res, "direction"), "INGRESS") == 0 &&
	    !json_object_get(res, "sourceRanges") && !json_object_get(res, "sourceTags") &&
	    !json_object_get(res, "sourceServiceAccounts"))
		json_object_set_new(res, "sourceRanges", json_pack("[s]", "0.0.0.0/0"));
	if (!json_object_get(res, "logConfig"))
		json_object_set_new(res, "logConfig", json_pack("{s:b}", "enable", 0));
	return 0;
}

/* firewalls.update and .patch: no fingerprint; network and direction cannot change. */
static int firewall_method(struct call *k, struct item *it, struct api_error *e)
{
	static const char *const immutable[] = {"network", "direction", NULL};
	static const struct update_rules rules = {
	    .what = "firewall", .immutable = immutable, .prepare = firewall_prepare};

	return compute_update_method(k, it, &rules, e);
}

const struct coll_type ct_firewalls = {
    .name = "firewalls",
    .kind = "compute#firewall",
    .list_kind = "compute#firewallList",
    .schema = "Firewall",
    .scopes = SCOPE_GLOBAL,
    .prepare_insert = firewall_prepare,
    .method = firewall_method,
    .apply_method = compute_update_apply,
};

/* ---- instanceGroups (unmanaged) ---- */

static int instance_group_prepare(struct call *k, json_t *res, struct api_error *e)
{
	int ret = must_exist(k, res, "network", "networks", "global", false, e);

	if (ret == 0)
		ret = must_exist(k, res, "subnetwork", "subnetworks", NULL, false, e);
	if (ret < 0)
		return ret;
	json_object_set_new(res, "size", json_integer(0));
	json_object_set_new(res, "fingerprint", json_string("42WmSpB8rSM="));
	return 0;
}

static int instance_group_check_delete(struct compute *c, struct item *it, struct api_error *e)
{
	static const char *const users[] = {"backendServices"};

	return compute_check_unused(c, it, users, 1, e);
}

static char *group_key(const struct item *g)
{
	return str_printf("%s/%s", g->scope, g->name);
}

/* The member list of a group (created on demand when create is set). Borrowed. */
json_t *instance_group_members(struct compute *c, const struct item *g, bool create)
{
	char *key = group_key(g);
	json_t *m = key ? json_object_get(c->ig_members, key) : NULL;

	if (!m && create && key) {
		m = json_array();
		json_object_set_new(c->ig_members, key, m);
	}
	free(key);
	return m;
}

static ssize_t member_index(const json_t *m, const char *url)
{
	json_t *v;
	size_t i;

	json_array_foreach(m, i,
			   v) if (strcmp(json_string_value(v) ?: "", url) == 0) return (ssize_t)i;
	return -1;
}

static void group_changed(struct item *g, const json_t *m)
{
	char *fp = new_fingerprint();

	json_object_set_new(g->res, "size", json_integer((json_int_t)json_array_size(m)));
	if (fp)
		json_object_set_new(g->res, "fingerprint", json_string(fp));
	free(fp);
}

void instance_groups_forget(struct compute *c, const char *instance_url)
{
	struct coll *groups = compute_coll(c, "instanceGroups");

	for (size_t i = 0; instance_url && i < groups->len; i++) {
		json_t *m = instance_group_members(c, groups->items[i], false);
		ssize_t at = m ? member_index(m, instance_url) : -1;

		if (at >= 0) {
			json_array_remove(m, (size_t)at);
			group_changed(groups->items[i], m);
		}
	}
}

static int check_request(struct call *k, const char *schema, struct api_error *e)
{
	const struct sch_message *m = sch_find(schema);
	char err[512];

	if (!k->body)
		k->body = json_object(); /* these methods accept an empty body */
	if (!k->body || sch_check(m, k->body, "resource", err, sizeof(err)) < 0)
		return api_fail(e, 400, "invalid", "%s", k->body ? err : "out of memory");
	return 0;
}

/*
 * addInstances / removeInstances
 * (https://cloud.google.com/compute/docs/reference/rest/v1/instanceGroups/addInstances):
 * instances of the group's zone, in the group's network when it has one.
 */
static int change_members(struct call *k, struct item *g, bool add, struct api_error *e)
{
	struct compute *c = k->c;
	json_t *list, *ref, *urls, *m = instance_group_members(c, g, false);
	size_t i;
	int ret = check_request(
	    k, add ? "InstanceGroupsAddInstancesRequest" : "InstanceGroupsRemoveInstancesRequest",
	    e);

	if (ret < 0)
		return ret;
	list = json_object_get(k->body, "instances");
	if (json_array_size(list) == 0)
		return api_fail(e, 400, "required",
				"Required field 'resource.instances' not specified");
	urls = json_array();
	json_array_foreach(list, i, ref)
	{
		char scope[96], name[128], buf[128];
		const char *url = jstr(ref, "instance");
		struct item *inst;
		json_t *nic;

		if (!url || compute_parse_ref(c, url, "instances", g->scope, scope, sizeof(scope),
					      name, sizeof(name)) < 0) {
			json_decref(urls);
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.instances[%zu].instance': '%s'.", i,
			    url ? url : "");
		}
		if (strcmp(scope, g->scope) != 0) {
			json_decref(urls);
			return api_fail(
			    e, 400, "invalid",
			    "Resource 'projects/%s/%s/instances/%s' is expected to be in %s.",
			    c->emu->opt.project, scope, name, g->scope);
		}
		inst = coll_find(compute_coll(c, "instances"), scope, name);
		if (!inst || inst->pending) {
			json_decref(urls);
			return api_fail_code(
			    e, 404, "notFound", "RESOURCE_NOT_FOUND",
			    "The resource 'projects/%s/%s/instances/%s' was not found",
			    c->emu->opt.project, scope, name);
		}
		nic = json_array_get(json_object_get(inst->res, "networkInterfaces"), 0);
		if (jstr(g->res, "network") && network_name_of(c, nic, buf, sizeof(buf)) &&
		    strcmp(compute_rel(c, jstr(g->res, "network")),
			   compute_rel(c, jstr(nic, "network") ?: "")) != 0) {
			json_decref(urls);
			return api_fail(
			    e, 400, "invalid",
			    "Instance '%s' is in network '%s', not in the instance group's network.",
			    name, buf);
		}
		if (!add && (!m || member_index(m, jstr(inst->res, "selfLink")) < 0)) {
			json_decref(urls);
			return api_fail(
			    e, 400, "memberNotFound",
			    "The instance 'projects/%s/%s/instances/%s' is not a member of the instance group.",
			    c->emu->opt.project, scope, name);
		}
		if (add && m && member_index(m, jstr(inst->res, "selfLink")) >= 0) {
			json_decref(urls);
			return api_fail(
			    e, 400, "memberAlreadyExists",
			    "The instance 'projects/%s/%s/instances/%s' is already a member of the instance group.",
			    c->emu->opt.project, scope, name);
		}
		json_array_append(urls, json_object_get(inst->res, "selfLink"));
	}
	return op_start(k, add ? "addInstances" : "removeInstances", g->scope, g->name,
			"instanceGroups", json_incref(json_object_get(g->res, "id")),
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "op", "method", "method",
				  add ? "addInstances" : "removeInstances", "collection",
				  "instanceGroups", "scope", g->scope, "name", g->name, "instances",
				  urls));
}

static int set_named_ports(struct call *k, struct item *g, struct api_error *e)
{
	const char *fp;
	int ret = check_request(k, "InstanceGroupsSetNamedPortsRequest", e);

	if (ret < 0)
		return ret;
	fp = jstr(k->body, "fingerprint");
	/* The fingerprint is optional here; when given it must be current. */
	if (fp && !fingerprint_equal(fp, jstr(g->res, "fingerprint"))) {
		api_fail(e, 412, "conditionNotMet",
			 "Supplied fingerprint does not match current instance group fingerprint.");
		e->location = "If-Match";
		e->location_type = "header";
		return -EINVAL;
	}
	return op_start(k, "setNamedPorts", g->scope, g->name, "instanceGroups",
			json_incref(json_object_get(g->res, "id")),
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "op", "method", "method",
				  "setNamedPorts", "collection", "instanceGroups", "scope",
				  g->scope, "name", g->name, "namedPorts",
				  json_object_get(k->body, "namedPorts") ?: json_null()));
}

static int list_members(struct call *k, struct item *g, struct api_error *e)
{
	struct compute *c = k->c;
	json_t *m = instance_group_members(c, g, false), *items = json_array(), *url, *doc;
	size_t i;
	int ret = check_request(k, "InstanceGroupsListInstancesRequest", e);

	if (ret < 0) {
		json_decref(items);
		return ret;
	}
	json_array_foreach(m, i, url)
	{
		json_t *entry = json_pack("{s:O, s:s}", "instance", url, "status", "RUNNING");

		if (entry && json_object_get(g->res, "namedPorts"))
			json_object_set(entry, "namedPorts", json_object_get(g->res, "namedPorts"));
		json_array_append_new(items, entry);
	}
	doc = json_pack("{s:s, s:o, s:o}", "kind", "compute#instanceGroupsListInstances", "id",
			jsonf("projects/%s/%s/instanceGroups/%s/listInstances", c->emu->opt.project,
			      g->scope, g->name),
			"selfLink",
			compute_url(c, "projects/%s/%s/instanceGroups/%s/listInstances",
				    c->emu->opt.project, g->scope, g->name));
	if (doc && json_array_size(items))
		json_object_set(doc, "items", items);
	json_decref(items);
	return compute_reply(k->req, 200, doc);
}

static int instance_group_method(struct call *k, struct item *g, struct api_error *e)
{
	if (!k->verb || strcmp(k->req->method, "POST") != 0)
		return api_fail(e, 404, "notFound",
				"The requested URL was not found on this server.");
	if (strcmp(k->verb, "addInstances") == 0)
		return change_members(k, g, true, e);
	if (strcmp(k->verb, "removeInstances") == 0)
		return change_members(k, g, false, e);
	if (strcmp(k->verb, "listInstances") == 0)
		return list_members(k, g, e);
	if (strcmp(k->verb, "setNamedPorts") == 0)
		return set_named_ports(k, g, e);
	return api_fail(e, 404, "notFound", "The requested URL was not found on this server.");
}

static int instance_group_apply_method(struct compute *c, json_t *mu, struct api_error *e)
{
	struct item *g = coll_find(compute_coll(c, "instanceGroups"), jstr(mu, "scope") ?: "",
				   jstr(mu, "name") ?: "");
	const char *method = jstr(mu, "method") ?: "";
	json_t *m, *url;
	size_t i;

	if (!g || g->pending)
		return api_not_found(e, "instanceGroup");
	if (strcmp(method, "setNamedPorts") == 0) {
		json_t *ports = json_object_get(mu, "namedPorts");

		if (json_array_size(ports))
			json_object_set(g->res, "namedPorts", ports);
		else
			json_object_del(g->res, "namedPorts");
		group_changed(g, instance_group_members(c, g, false));
		return 0;
	}
	m = instance_group_members(c, g, true);
	if (!m)
		return api_fail(e, 500, "internalError", "out of memory");
	json_array_foreach(json_object_get(mu, "instances"), i, url)
	{
		ssize_t at = member_index(m, json_string_value(url) ?: "");

		if (strcmp(method, "addInstances") == 0 && at < 0) {
			/* The instance may have gone while the Operation ran. */
			char scope[96], name[128];

			if (compute_parse_ref(c, json_string_value(url) ?: "", "instances", NULL,
					      scope, sizeof(scope), name, sizeof(name)) == 0 &&
			    emu_compute_instance(c->emu, scope + strlen("zones/"), name))
				json_array_append(m, url);
		} else if (strcmp(method, "removeInstances") == 0 && at >= 0) {
			json_array_remove(m, (size_t)at);
		}
	}
	group_changed(g, m);
	return 0;
}

static void instance_group_apply_delete(struct compute *c, struct item *g)
{
	char *key = group_key(g);

	if (key)
		json_object_del(c->ig_members, key);
	free(key);
}

const struct coll_type ct_instance_groups = {
    .name = "instanceGroups",
    .kind = "compute#instanceGroup",
    .list_kind = "compute#instanceGroupList",
    .agg_kind = "compute#instanceGroupAggregatedList",
    .schema = "InstanceGroup",
    .scopes = SCOPE_ZONE,
    .prepare_insert = instance_group_prepare,
    .check_delete = instance_group_check_delete,
    .apply_delete = instance_group_apply_delete,
    .method = instance_group_method,
    .apply_method = instance_group_apply_method,
};

/*
 * Managed instance groups are not emulated; gcloud's `instance-groups list` asks for them in
 * every zone that has groups, so they list (empty) rather than 404.
 */
const struct coll_type ct_instance_group_managers = {
    .name = "instanceGroupManagers",
    .kind = "compute#instanceGroupManager",
    .list_kind = "compute#instanceGroupManagerList",
    .agg_kind = "compute#instanceGroupManagerAggregatedList",
    .scopes = SCOPE_ZONE | SCOPE_REGION,
    .readonly = true,
};
