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

#include "common/log.h"
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

/*
 * The subnetwork and network of a regional INTERNAL address (the addresses that hold an IP
 * of a VPC network); NULL for external and global ones, which are data here.
 */
static struct item *address_subnet(struct compute *c, const struct item *a, char *net, size_t len)
{
	if (strcmp(jstr(a->res, "addressType") ?: "", "INTERNAL") != 0 ||
	    strncmp(a->scope, "regions/", 8) != 0)
		return NULL;
	return ip_subnet_of(c, a->res, net, len);
}

static int address_prepare(struct call *k, json_t *res, struct api_error *e)
{
	const char *type, *addr = jstr(res, "address");
	int ret;

	if (!jstr(res, "addressType"))
		json_object_set_new(res, "addressType", json_string("EXTERNAL"));
	type = jstr(res, "addressType"); /* borrowed from res: read after setting */
	json_object_set_new(res, "status", json_string("RESERVED"));
	json_object_del(res, "users"); /* output only */
	if (strcmp(type, "INTERNAL") == 0) {
		ret = must_exist(k, res, "subnetwork", "subnetworks", region_scope(k),
				 k->skind == SCOPE_REGION, e);
		if (ret < 0)
			return ret;
		if (k->skind != SCOPE_REGION && !jstr(res, "purpose"))
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.addressType': 'INTERNAL'. Global internal addresses need a purpose.");
		/* "GCE_ENDPOINT for addresses that are used by VM instances, alias IP ranges,
		 * load balancers" is what a regional internal address is unless told otherwise. */
		if (k->skind == SCOPE_REGION && !jstr(res, "purpose"))
			json_object_set_new(res, "purpose", json_string("GCE_ENDPOINT"));
		if (addr) {
			char net[128];
			struct item *sub = NULL;
			uint32_t a;

			if (ip4_parse(addr, &a) < 0)
				return api_fail(e, 400, "invalid",
						"Invalid value for field 'resource.address': '%s'.",
						addr);
			if (k->skind == SCOPE_REGION)
				sub = ip_subnet_of(k->c, res, net, sizeof(net));
			if (sub && !ip_in_primary(sub->res, a))
				return api_fail(
				    e, 400, "invalid",
				    "Invalid value for field 'resource.address': '%s'. The address is not in the subnetwork's primary range.",
				    addr);
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

/*
 * May address a take over ip from holder, its ephemeral user? "Ephemeral IP addresses that are
 * in use by resources in the project can be reserved using the '--addresses' flag" (gcloud
 * compute addresses create): an instance's networkIP (into a GCE_ENDPOINT address) or a
 * forwarding rule's own address, in the same subnetwork. Alias ranges are never promoted.
 */
static bool promotable(struct compute *c, const struct item *a, const struct item *holder,
		       const char *coll, const char *ip)
{
	const char *sub = compute_rel(c, jstr(a->res, "subnetwork"));
	json_t *nic;
	size_t i;

	if (!holder || holder->pending)
		return false;
	if (strcmp(coll, "forwardingRules") == 0)
		return strcmp(jstr(holder->res, "IPAddress") ?: "", ip) == 0 &&
		       strcmp(compute_rel(c, jstr(holder->res, "subnetwork")), sub) == 0;
	if (strcmp(coll, "instances") != 0 ||
	    strcmp(jstr(a->res, "purpose") ?: "", "GCE_ENDPOINT") != 0)
		return false;
	json_array_foreach(json_object_get(holder->res, "networkInterfaces"), i, nic)
	{
		if (strcmp(jstr(nic, "networkIP") ?: "", ip) == 0 &&
		    strcmp(compute_rel(c, jstr(nic, "subnetwork")), sub) == 0)
			return true;
	}
	return false;
}

/*
 * At completion the address leaves the dynamic pool: "Reserving a static internal IP address
 * takes the address out of the dynamic allocation pool"
 * (https://cloud.google.com/vpc/docs/reserve-static-internal-ip-address). Without an address
 * one is allocated from the subnetwork's primary range. An address held by anything else
 * fails the Operation: 409 IP_IN_USE_BY_ANOTHER_RESOURCE (kubernetes/ingress-gce#2735 shows
 * GCP's answer to reserving an address in use).
 */
static int address_apply_insert(struct compute *c, struct item *it, struct api_error *e)
{
	char net[128], *key = NULL, *text = NULL;
	struct item *sub = address_subnet(c, it, net, sizeof(net)), *holder;
	const char *want = jstr(it->res, "address"), *owner, *coll = "";
	uint32_t ip, lo, hi;
	unsigned p;
	int ret;

	if (!sub) {
		if (strcmp(jstr(it->res, "addressType") ?: "", "INTERNAL") == 0 &&
		    strncmp(it->scope, "regions/", 8) == 0)
			return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
					     "The resource '%s' was not found",
					     compute_rel(c, jstr(it->res, "subnetwork")));
		return 0;
	}
	if (want) {
		if (ip4_parse(want, &ip) < 0)
			return api_fail(e, 400, "invalid", "Invalid address '%s'", want);
	} else if (subnet_range(sub->res, NULL, &lo, &hi, &p) < 0 ||
		   ipindex_alloc(c->ipidx, net, lo + 2, hi - 2, 32, NULL, NULL, 0, &ip) < 0) {
		return api_fail_code(e, 400, "ipSpaceExhausted", "IP_SPACE_EXHAUSTED",
				     "The subnetwork '%s' has no free IP address left.", sub->name);
	}
	text = ip4_format(ip);
	key = ip_owner_key(it->scope, "addresses", it->name);
	if (!text || !key) {
		ret = api_fail(e, 500, "internalError", "out of memory");
		goto cleanup;
	}
	owner = ipindex_overlap(c->ipidx, net, ip, ip, NULL);
	if (owner) {
		holder = ip_owner_item(c, owner, &coll);
		if (!promotable(c, it, holder, coll ?: "", text)) {
			ret = ip_in_use(e, 409, text);
			goto cleanup;
		}
		ipindex_remove_range(c->ipidx, net, ip, ip, owner);
		if (address_add_user(c, it, jstr(holder->res, "selfLink")) < 0) {
			ret = api_fail(e, 500, "internalError", "out of memory");
			goto cleanup;
		}
	}
	ret = ipindex_add(c->ipidx, net, ip, ip, key);
	if (ret < 0) {
		ret =
		    api_fail(e, 500, "internalError", "cannot index %s: %s", text, strerror(-ret));
		goto cleanup;
	}
	json_object_set_new(it->res, "address", json_string(text));
cleanup:
	free(text);
	free(key);
	return ret;
}

static int address_check_delete(struct compute *c, struct item *it, struct api_error *e)
{
	static const char *const users[] = {"forwardingRules"};
	json_t *u = json_array_get(json_object_get(it->res, "users"), 0);

	/* Instances and forwarding rules that use the address are its users. */
	if (u)
		return api_fail(e, 400, "resourceInUseByAnotherResource",
				"The address resource '%s' is already being used by '%s'",
				compute_rel(c, jstr(it->res, "selfLink")),
				compute_rel(c, json_string_value(u)));
	return compute_check_unused(c, it, users, 1, e);
}

static void address_unindex(struct compute *c, struct item *it)
{
	char net[128], *key;

	if (!address_subnet(c, it, net, sizeof(net)))
		return;
	key = ip_owner_key(it->scope, "addresses", it->name);
	if (key)
		ipindex_remove_owner(c->ipidx, net, key);
	free(key);
}

static void address_on_load(struct compute *c, struct item *it)
{
	char net[128], *key;
	uint32_t ip;

	if (!address_subnet(c, it, net, sizeof(net)) ||
	    ip4_parse(jstr(it->res, "address"), &ip) < 0)
		return;
	key = ip_owner_key(it->scope, "addresses", it->name);
	if (!key || ipindex_add(c->ipidx, net, ip, ip, key) < 0)
		log_warn("state: address %s/%s: %s is held twice", it->scope, it->name,
			 jstr(it->res, "address"));
	free(key);
}

const struct coll_type ct_addresses = {
    .name = "addresses",
    .kind = "compute#address",
    .list_kind = "compute#addressList",
    .agg_kind = "compute#addressAggregatedList",
    .schema = "Address",
    .scopes = SCOPE_REGION | SCOPE_GLOBAL,
    .prepare_insert = address_prepare,
    .apply_insert = address_apply_insert,
    .check_delete = address_check_delete,
    .apply_delete = address_unindex,
    .on_load = address_on_load,
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

/* "\d+(?:-\d+)?" with ports 1..65535, lo <= hi. */
static int parse_port_range(const char *s, unsigned *lo, unsigned *hi)
{
	char *end;
	unsigned long a, b;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	a = strtoul(s, &end, 10);
	b = a;
	if (*end == '-') {
		if (end[1] < '0' || end[1] > '9')
			return -EINVAL;
		b = strtoul(end + 1, &end, 10);
	}
	if (*end || a < 1 || b > 65535 || a > b)
		return -EINVAL;
	*lo = (unsigned)a;
	*hi = (unsigned)b;
	return 0;
}

/* "N" or "N-N": one port. */
static bool single_port(const char *range)
{
	unsigned lo, hi;

	return range && parse_port_range(range, &lo, &hi) == 0 && lo == hi;
}

/*
 * What a rule points at (https://cloud.google.com/load-balancing/docs/forwarding-rule-concepts):
 * a target (here: a target TCP proxy of the rule's scope, whose backend service has the
 * rule's scheme; TCP, one port in portRange) or, on a regional rule only, a backend service of
 * its region with the same scheme. (The rule's protocol against the backend service's is not
 * checked: rules of several protocols may share one address and backend service.)
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
	return 0;
}

static bool protocol_is(const json_t *res, const char *const *list)
{
	const char *proto = jstr(res, "IPProtocol") ?: "";

	for (; *list; list++)
		if (strcmp(proto, *list) == 0)
			return true;
	return false;
}

/*
 * ports, portRange and allPorts as the ForwardingRule reference documents them: mutually
 * exclusive; ports and portRange "require that the forwarding rule IPProtocol be TCP, UDP, or
 * SCTP", allPorts TCP, UDP, SCTP or L3_DEFAULT, and "The L3_DEFAULT protocol requires allPorts
 * be set to true"; ports: "up to five ports", only for backend-service based rules and internal
 * protocol forwarding; portRange not for internal passthrough rules (INTERNAL scheme). Both
 * match "\d+(?:-\d+)?"; portRange reads back as "LO-HI" (GCP answers "80-80" for "80").
 */
static int check_ports(json_t *res, const char *scheme, struct api_error *e)
{
	static const char *const l4[] = {"TCP", "UDP", "SCTP", NULL};
	static const char *const any[] = {"TCP", "UDP", "SCTP", "L3_DEFAULT", NULL};
	json_t *ports = json_object_get(res, "ports"), *p;
	const char *range = jstr(res, "portRange"), *proto = jstr(res, "IPProtocol") ?: "";
	bool all = json_is_true(json_object_get(res, "allPorts"));
	bool internal = strcmp(scheme, "INTERNAL") == 0;
	unsigned lo, hi;
	size_t i;

	if ((ports != NULL) + (range != NULL) + all > 1)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource': the ports, portRange and allPorts fields are mutually exclusive.");
	if (strcmp(proto, "L3_DEFAULT") == 0 && !all)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.allPorts': The L3_DEFAULT protocol requires allPorts be set to true.");
	if (all && !protocol_is(res, any))
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.allPorts': allPorts requires IPProtocol TCP, UDP, SCTP or L3_DEFAULT, not '%s'.",
		    proto);
	if ((ports || range) && !protocol_is(res, l4))
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.%s': it requires IPProtocol TCP, UDP or SCTP, not '%s'.",
		    ports ? "ports" : "portRange", proto);
	if (range) {
		char text[16];

		if (internal)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.portRange': '%s'. Internal passthrough forwarding rules take ports or allPorts, not portRange.",
			    range);
		if (parse_port_range(range, &lo, &hi) < 0)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.portRange': '%s'. Must be a match of regex '\\d+(?:-\\d+)?' with ports from 1 to 65535, the first not above the last.",
			    range);
		snprintf(text, sizeof(text), "%u-%u", lo, hi);
		json_object_set_new(res, "portRange", json_string(text));
	}
	if (!ports)
		return 0;
	if (!jstr(res, "backendService") &&
	    !(internal && strstr(jstr(res, "target") ?: "", "/targetInstances/")))
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.ports': ports apply to backend service based forwarding rules and internal protocol forwarding only; use portRange.");
	if (json_array_size(ports) == 0 || json_array_size(ports) > 5)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.ports': specify from one to five ports, not %zu.",
		    json_array_size(ports));
	json_array_foreach(ports, i, p)
	{
		if (parse_port_range(json_string_value(p), &lo, &hi) < 0)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.ports[%zu]': '%s'. Must be a match of regex '\\d+(?:-\\d+)?' with ports from 1 to 65535.",
			    i, json_string_value(p) ?: "");
	}
	return 0;
}

/*
 * The ports a rule forwards, as [lo, hi] pairs: allPorts, or no port field at all, is every
 * port. Returns the number of pairs (at most 5).
 */
static size_t rule_ports(const json_t *rule, unsigned lo[5], unsigned hi[5])
{
	json_t *ports = json_object_get(rule, "ports"), *p;
	size_t i, n = 0;

	if (jstr(rule, "portRange") && parse_port_range(jstr(rule, "portRange"), lo, hi) == 0)
		return 1;
	json_array_foreach(ports, i, p) if (n < 5 && parse_port_range(json_string_value(p), &lo[n],
								      &hi[n]) == 0) n++;
	if (n)
		return n;
	lo[0] = 1;
	hi[0] = 65535;
	return 1;
}

/*
 * Rules sharing an IP (through a SHARED_LOADBALANCER_VIP address): "For internal forwarding
 * rules within the same VPC network, two or more forwarding rules cannot use the same
 * [IPAddress, IPProtocol] pair if they share at least one port number" (ForwardingRule.ports).
 * L3_DEFAULT carries every protocol. GCP's answer to a clash is kubemci's "Specified IP address
 * is in-use and would result in a conflict." The other users of the shared address a are
 * checked against rule; 0 or -EINVAL.
 */
static int check_shared_ports(struct compute *c, const struct item *a, const json_t *rule,
			      struct api_error *e)
{
	const char *self = jstr(rule, "selfLink") ?: "", *proto = jstr(rule, "IPProtocol") ?: "";
	unsigned lo[5], hi[5], olo[5], ohi[5];
	size_t n = rule_ports(rule, lo, hi), i;
	json_t *u;

	json_array_foreach(json_object_get(a->res, "users"), i, u)
	{
		char scope[96], name[128];
		struct item *other;
		const char *oproto;
		size_t m;

		if (strcmp(json_string_value(u) ?: "", self) == 0 ||
		    compute_parse_ref(c, json_string_value(u) ?: "", "forwardingRules", NULL, scope,
				      sizeof(scope), name, sizeof(name)) < 0)
			continue;
		other = coll_find(compute_coll(c, "forwardingRules"), scope, name);
		if (!other)
			continue;
		oproto = jstr(other->res, "IPProtocol") ?: "";
		if (strcmp(proto, oproto) != 0 && strcmp(proto, "L3_DEFAULT") != 0 &&
		    strcmp(oproto, "L3_DEFAULT") != 0)
			continue;
		m = rule_ports(other->res, olo, ohi);
		for (size_t x = 0; x < n; x++)
			for (size_t y = 0; y < m; y++)
				if (lo[x] <= ohi[y] && olo[y] <= hi[x])
					return api_fail(
					    e, 400, "invalid",
					    "Invalid value for field 'resource.IPAddress': '%s'. Specified IP address is in-use and would result in a conflict.",
					    jstr(a->res, "address") ?: "");
	}
	return 0;
}

/* A regional internal rule: its subnetwork (and network) hold its IP. */
static bool rule_internal(const struct item *rule)
{
	return strncmp(jstr(rule->res, "loadBalancingScheme") ?: "", "INTERNAL", 8) == 0 &&
	       strncmp(rule->scope, "regions/", 8) == 0;
}

/*
 * Internal rules: the subnetwork (a network alone names its region's subnetwork in an auto
 * mode network), both URLs set; IPAddress, when given as an IP, from the subnetwork's primary
 * range; as an Address, an internal one of the same subnetwork.
 */
static int prepare_internal_rule(struct call *k, json_t *res, struct api_error *e)
{
	const char *ip = jstr(res, "IPAddress");
	char net[128];
	struct item *sub, *a;
	uint32_t addr;

	if (!jstr(res, "subnetwork")) {
		struct item *n = NULL;

		if (network_name_of(k->c, res, net, sizeof(net)))
			n = compute_network(k->c, net);
		sub = n && json_is_true(json_object_get(n->res, "autoCreateSubnetworks"))
			  ? compute_subnetwork(k->c, k->scope_name, net)
			  : NULL;
		if (!sub)
			return api_fail(
			    e, 400, "required",
			    "Required field 'resource.subnetwork' not specified for an INTERNAL forwarding rule");
		json_object_set(res, "subnetwork", json_object_get(sub->res, "selfLink"));
	}
	sub = ip_subnet_of(k->c, res, net, sizeof(net));
	if (!sub)
		return api_fail(e, 500, "internalError", "subnetwork without network");
	if (jstr(res, "network") && strcmp(compute_rel(k->c, jstr(res, "network")),
					   compute_rel(k->c, jstr(sub->res, "network"))) != 0)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.network': '%s'. The subnetwork belongs to network '%s'.",
		    jstr(res, "network"), net);
	json_object_set(res, "network", json_object_get(sub->res, "network"));
	if (!ip)
		return 0;
	if (strchr(ip, '/')) {
		a = address_by_ref(k->c, ip, k->scope);
		if (a && (strcmp(jstr(a->res, "addressType") ?: "", "INTERNAL") != 0 ||
			  strcmp(compute_rel(k->c, jstr(a->res, "subnetwork")),
				 compute_rel(k->c, jstr(res, "subnetwork"))) != 0))
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.IPAddress': '%s'. An internal forwarding rule needs an internal address of its subnetwork.",
			    ip);
	} else {
		if (ip4_parse(ip, &addr) < 0 || !ip_in_primary(sub->res, addr))
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.IPAddress': '%s'. The address must be in the primary range of subnetwork '%s'.",
			    ip, sub->name);
		a = address_holding(k->c, net, addr);
	}
	/* A clash on a shared address is refused at once (checked again at completion). */
	return a && address_shared(a->res) ? check_shared_ports(k->c, a, res, e) : 0;
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
		struct item *a = address_by_ref(k->c, jstr(res, "IPAddress"), k->scope);

		if (!a || strcmp(a->scope, k->scope) != 0)
			return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
					     "The resource '%s' was not found",
					     jstr(res, "IPAddress"));
	}
	ret = check_ports(res, scheme, e);
	if (ret == 0 && strncmp(scheme, "INTERNAL", 8) == 0 && k->skind == SCOPE_REGION)
		ret = prepare_internal_rule(k, res, e);
	if (ret < 0)
		return ret;
	/* Internal rules get their address at completion (it must be free then). */
	if (!jstr(res, "IPAddress") &&
	    !(strncmp(scheme, "INTERNAL", 8) == 0 && k->skind == SCOPE_REGION)) {
		/* External addresses are data here: nothing routes to them. */
		char *text = ip4_format(0x22800000u + (uint32_t)(++k->c->nat_counter % 0x7fffff));

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

/* The reserved external address a rule uses (same scope, by value or by reference). */
static struct item *external_rule_address(struct compute *c, const struct item *rule)
{
	struct coll *addrs = compute_coll(c, "addresses");
	const char *ip = jstr(rule->res, "IPAddress");
	struct item *a;

	if (!ip)
		return NULL;
	/* "IPAddress ... can be specified as an IP address or a reference to an address." */
	if (strchr(ip, '/')) {
		a = address_by_ref(c, ip, rule->scope);
		return a && strcmp(a->scope, rule->scope) == 0 ? a : NULL;
	}
	for (size_t i = 0; i < addrs->len; i++) {
		a = addrs->items[i];
		if (!a->pending && strcmp(a->scope, rule->scope) == 0 &&
		    strcmp(jstr(a->res, "addressType") ?: "", "INTERNAL") != 0 &&
		    strcmp(jstr(a->res, "address") ?: "", ip) == 0)
			return a;
	}
	return NULL;
}

/*
 * An internal rule at completion: the reserved address it names (by URL or IP) takes it as a
 * user, if the address is free for it (GCE_ENDPOINT: nobody else; SHARED_LOADBALANCER_VIP:
 * no port clash); an IP nobody holds becomes the rule's own; no IP: one is allocated from the
 * subnetwork's primary range. Anything else is 409 IP_IN_USE_BY_ANOTHER_RESOURCE.
 */
static int internal_rule_apply(struct compute *c, struct item *it, struct api_error *e)
{
	const char *want = jstr(it->res, "IPAddress"), *self = jstr(it->res, "selfLink") ?: "";
	const char *purpose;
	char net[128], *key = NULL, *text = NULL;
	struct item *sub = ip_subnet_of(c, it->res, net, sizeof(net)), *a = NULL;
	uint32_t ip, lo, hi;
	unsigned p;
	int ret = 0;

	if (!sub)
		return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
				     "The resource '%s' was not found",
				     compute_rel(c, jstr(it->res, "subnetwork")));
	if (want && strchr(want, '/')) {
		a = address_by_ref(c, want, it->scope);
		if (!a || ip4_parse(jstr(a->res, "address"), &ip) < 0)
			return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
					     "The resource '%s' was not found",
					     compute_rel(c, want));
	} else if (want) {
		if (ip4_parse(want, &ip) < 0)
			return api_fail(e, 400, "invalid", "Invalid IPAddress '%s'", want);
		a = address_holding(c, net, ip);
		if (!a && ipindex_overlap(c->ipidx, net, ip, ip, NULL))
			return ip_in_use(e, 409, want);
	} else if (subnet_range(sub->res, NULL, &lo, &hi, &p) < 0 ||
		   ipindex_alloc(c->ipidx, net, lo + 2, hi - 2, 32, NULL, NULL, 0, &ip) < 0) {
		return api_fail_code(e, 400, "ipSpaceExhausted", "IP_SPACE_EXHAUSTED",
				     "The subnetwork '%s' has no free IP address left.", sub->name);
	}
	text = ip4_format(ip);
	key = ip_owner_key(it->scope, "forwardingRules", it->name);
	if (!text || !key) {
		ret = api_fail(e, 500, "internalError", "out of memory");
		goto cleanup;
	}
	if (a) {
		purpose = jstr(a->res, "purpose") ?: "GCE_ENDPOINT";
		if (address_shared(a->res))
			ret = check_shared_ports(c, a, it->res, e);
		else if (strcmp(purpose, "GCE_ENDPOINT") != 0 || !address_free_for(a->res, self))
			ret = ip_in_use(e, 409, text);
		if (ret == 0 && address_add_user(c, a, self) < 0)
			ret = api_fail(e, 500, "internalError", "out of memory");
	} else if (ipindex_add(c->ipidx, net, ip, ip, key) < 0) {
		ret = ip_in_use(e, 409, text);
	}
	if (ret == 0)
		json_object_set_new(it->res, "IPAddress", json_string(text));
cleanup:
	free(text);
	free(key);
	return ret;
}

/* Addresses show their users: status IN_USE while a forwarding rule holds them. */
static int forwarding_rule_apply_insert(struct compute *c, struct item *it, struct api_error *e)
{
	struct item *a;

	if (rule_internal(it))
		return internal_rule_apply(c, it, e);
	a = external_rule_address(c, it);
	if (!a)
		return 0;
	if (address_add_user(c, a, jstr(it->res, "selfLink") ?: "") < 0)
		return api_fail(e, 500, "internalError", "out of memory");
	/* Reserved by value: the rule names the address itself, as GCP shows it. */
	json_object_set(it->res, "IPAddress", json_object_get(a->res, "address"));
	return 0;
}

static void forwarding_rule_apply_delete(struct compute *c, struct item *it)
{
	char net[128], *key;

	addresses_drop_user(c, jstr(it->res, "selfLink"));
	if (!rule_internal(it) || !ip_subnet_of(c, it->res, net, sizeof(net)))
		return;
	key = ip_owner_key(it->scope, "forwardingRules", it->name);
	if (key)
		ipindex_remove_owner(c->ipidx, net, key);
	free(key);
}

static void forwarding_rule_on_load(struct compute *c, struct item *it)
{
	char net[128], *key;
	struct item *a;
	uint32_t ip;

	if (!rule_internal(it) || !ip_subnet_of(c, it->res, net, sizeof(net)) ||
	    ip4_parse(jstr(it->res, "IPAddress"), &ip) < 0)
		return;
	/* An address it uses holds the IP (addresses are loaded first). */
	a = address_holding(c, net, ip);
	if (a && address_has_user(a->res, jstr(it->res, "selfLink") ?: ""))
		return;
	key = ip_owner_key(it->scope, "forwardingRules", it->name);
	if (!key || ipindex_add(c->ipidx, net, ip, ip, key) < 0)
		log_warn("state: forwarding rule %s/%s: %s is held twice", it->scope, it->name,
			 jstr(it->res, "IPAddress"));
	free(key);
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
    .on_load = forwarding_rule_on_load,
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
			item_changed(c, groups->items[i]);
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
