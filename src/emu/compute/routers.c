/* SPDX-License-Identifier: Apache-2.0 */
/*
 * routers (regional) with their Cloud NAT gateways (Router.nats[]): insert, get, list,
 * aggregatedList, delete, patch and update.
 *
 * https://cloud.google.com/compute/docs/reference/rest/v1/routers: a router belongs to a
 * network (required, in the same project) and a region; NAT gateways are part of the router
 * resource, so `gcloud compute routers nats create` reads the router, appends a NAT and
 * patches the router, and `routers nats describe` reads the router. patch "uses the JSON
 * merge patch format" (a list such as nats is replaced as a whole); update replaces the
 * router. Routers have no fingerprint: the last write wins.
 *
 * NAT rules (https://cloud.google.com/nat/docs/set-up-manage-network-address-translation):
 * natIpAllocateOption AUTO_ONLY (natIps must be empty) or MANUAL_ONLY (natIps: reserved
 * external addresses of the router's region); sourceSubnetworkIpRangesToNat is one of the
 * ALL_SUBNETWORKS_* values or LIST_OF_SUBNETWORKS, which alone takes subnetworks[] (each a
 * subnetwork of the router's network and region, with sourceIpRangesToNat and, for
 * LIST_OF_SECONDARY_IP_RANGES, secondaryIpRangeNames that exist). "A subnet's primary range
 * ... can be served by only one NAT gateway": a second gateway covering all subnetworks of
 * the same network and region, or naming a subnetwork another gateway serves, is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"

static bool str_in(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

static bool all_subnets(const json_t *nat)
{
	const char *m = jstr(nat, "sourceSubnetworkIpRangesToNat") ?: "";

	return strncmp(m, "ALL_SUBNETWORKS_", 16) == 0;
}

/* Does nat serve subnet (a URL)? */
static bool nat_serves(struct compute *c, const json_t *nat, const char *subnet)
{
	json_t *s;
	size_t i;

	if (all_subnets(nat))
		return true;
	json_array_foreach(json_object_get(nat, "subnetworks"), i, s)
	{
		struct item *it = compute_ref_item(c, jstr(s, "name"), "subnetworks", NULL);

		if (it && strcmp(jstr(it->res, "selfLink") ?: "", subnet) == 0)
			return true;
	}
	return false;
}

/*
 * One NAT of router res (in region, on network): fields checked and normalized (subnetwork
 * and address references become URLs, defaults filled in).
 */
static int check_nat(struct compute *c, const json_t *router, json_t *nat, size_t index,
		     const char *region_scope, struct api_error *e)
{
	static const char *const alloc[] = {"AUTO_ONLY", "MANUAL_ONLY"};
	static const char *const modes[] = {"ALL_SUBNETWORKS_ALL_IP_RANGES",
					    "ALL_SUBNETWORKS_ALL_PRIMARY_IP_RANGES",
					    "LIST_OF_SUBNETWORKS"};
	const char *name = jstr(nat, "name"), *a = jstr(nat, "natIpAllocateOption");
	const char *mode = jstr(nat, "sourceSubnetworkIpRangesToNat");
	const char *network = jstr(router, "network") ?: "";
	json_t *s, *ip;
	size_t i;

	if (!name || !valid_name(name))
		return api_fail(e, 400, name ? "invalid" : "required",
				"Invalid value for field 'resource.nats[%zu].name': '%s'.", index,
				name ? name : "");
	if (!str_in(a, alloc, 2))
		return api_fail(e, 400, a ? "invalid" : "required",
				"Invalid value for field 'resource.nats[%zu].natIpAllocateOption': "
				"'%s'. Must be AUTO_ONLY or MANUAL_ONLY.",
				index, a ? a : "");
	if (!str_in(mode, modes, 3))
		return api_fail(e, 400, mode ? "invalid" : "required",
				"Invalid value for field "
				"'resource.nats[%zu].sourceSubnetworkIpRangesToNat': '%s'.",
				index, mode ? mode : "");
	if (strcmp(a, "AUTO_ONLY") == 0 && json_array_size(json_object_get(nat, "natIps")))
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.nats[%zu].natIps': NAT IPs may "
				"only be given with natIpAllocateOption MANUAL_ONLY.",
				index);
	if (strcmp(a, "MANUAL_ONLY") == 0 && !json_array_size(json_object_get(nat, "natIps")))
		return api_fail(e, 400, "required",
				"Required field 'resource.nats[%zu].natIps' not specified for "
				"natIpAllocateOption MANUAL_ONLY.",
				index);
	json_array_foreach(json_object_get(nat, "natIps"), i, ip)
	{
		struct item *addr =
		    compute_ref_item(c, json_string_value(ip), "addresses", region_scope);

		if (!addr || strcmp(addr->scope, region_scope) != 0 ||
		    strcmp(jstr(addr->res, "addressType") ?: "EXTERNAL", "EXTERNAL") != 0)
			return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
					     "The resource '%s' was not found (resource.nats[%zu]."
					     "natIps[%zu]: an external address of %s)",
					     json_string_value(ip) ?: "", index, i, region_scope);
		json_array_set(json_object_get(nat, "natIps"), i,
			       json_object_get(addr->res, "selfLink"));
	}
	if (strcmp(mode, "LIST_OF_SUBNETWORKS") != 0 &&
	    json_array_size(json_object_get(nat, "subnetworks")))
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.nats[%zu].subnetworks': only "
				"with sourceSubnetworkIpRangesToNat LIST_OF_SUBNETWORKS.",
				index);
	if (strcmp(mode, "LIST_OF_SUBNETWORKS") == 0 &&
	    !json_array_size(json_object_get(nat, "subnetworks")))
		return api_fail(e, 400, "required",
				"Required field 'resource.nats[%zu].subnetworks' not specified.",
				index);
	json_array_foreach(json_object_get(nat, "subnetworks"), i, s)
	{
		struct item *sub =
		    compute_ref_item(c, jstr(s, "name"), "subnetworks", region_scope);
		json_t *ranges = json_object_get(s, "sourceIpRangesToNat"), *r, *rn;
		size_t j;

		if (!sub || strcmp(sub->scope, region_scope) != 0)
			return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
					     "The resource '%s' was not found (resource.nats[%zu]."
					     "subnetworks[%zu]: a subnetwork of %s)",
					     jstr(s, "name") ?: "", index, i, region_scope);
		if (strcmp(compute_rel(c, jstr(sub->res, "network")), compute_rel(c, network)) != 0)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.nats[%zu].subnetworks[%zu]"
			    "': subnetwork '%s' is not in the router's network.",
			    index, i, sub->name);
		json_object_set(s, "name", json_object_get(sub->res, "selfLink"));
		if (!json_array_size(ranges)) {
			ranges = json_pack("[s]", "ALL_IP_RANGES");
			json_object_set_new(s, "sourceIpRangesToNat", ranges);
		}
		json_array_foreach(ranges, j, r)
		{
			if (strcmp(json_string_value(r) ?: "", "LIST_OF_SECONDARY_IP_RANGES") != 0)
				continue;
			if (!json_array_size(json_object_get(s, "secondaryIpRangeNames")))
				return api_fail(
				    e, 400, "required",
				    "Required field 'resource.nats[%zu].subnetworks[%zu]."
				    "secondaryIpRangeNames' not specified.",
				    index, i);
		}
		json_array_foreach(json_object_get(s, "secondaryIpRangeNames"), j, rn)
		{
			uint32_t lo, hi;
			unsigned p;

			if (subnet_range(sub->res, json_string_value(rn) ?: "", &lo, &hi, &p) < 0)
				return api_fail(e, 400, "invalid",
						"Invalid value for field 'resource.nats[%zu]."
						"subnetworks[%zu].secondaryIpRangeNames[%zu]': "
						"subnetwork '%s' has no range '%s'.",
						index, i, j, sub->name,
						json_string_value(rn) ?: "");
		}
	}
	if (!jstr(nat, "type"))
		json_object_set_new(nat, "type", json_string("PUBLIC"));
	if (!json_object_get(nat, "endpointTypes"))
		json_object_set_new(nat, "endpointTypes", json_pack("[s]", "ENDPOINT_TYPE_VM"));
	if (!json_object_get(nat, "enableEndpointIndependentMapping"))
		json_object_set_new(nat, "enableEndpointIndependentMapping", json_false());
	if (!json_object_get(nat, "logConfig"))
		json_object_set_new(nat, "logConfig",
				    json_pack("{s:b, s:s}", "enable", 0, "filter", "ALL"));
	return 0;
}

/*
 * A router as it would be (res, nats normalized): NAT names unique, each NAT valid, no
 * subnetwork served twice (by this router's other NATs or another router's on the network).
 */
static int check_router(struct compute *c, json_t *res, const char *scope, const char *name,
			struct api_error *e)
{
	json_t *nats = json_object_get(res, "nats"), *nat;
	struct coll *routers = compute_coll(c, "routers");
	struct item *net;
	size_t i;
	int ret;

	net = compute_ref_item(c, jstr(res, "network"), "networks", "global");
	if (!jstr(res, "network"))
		return api_fail(e, 400, "required",
				"Required field 'resource.network' not specified");
	if (!net)
		return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
				     "The resource '%s' was not found", jstr(res, "network"));
	json_object_set(res, "network", json_object_get(net->res, "selfLink"));
	json_array_foreach(nats, i, nat)
	{
		ret = check_nat(c, res, nat, i, scope, e);
		if (ret < 0)
			return ret;
		for (size_t j = 0; j < i; j++)
			if (strcmp(jstr(json_array_get(nats, j), "name"), jstr(nat, "name")) == 0)
				return api_fail(
				    e, 400, "invalid",
				    "Invalid value for field 'resource.nats': duplicate "
				    "NAT name '%s'.",
				    jstr(nat, "name"));
	}
	/* Every NAT of the network in this region, this router's new ones included. */
	json_array_foreach(nats, i, nat)
	{
		for (size_t r = 0; r <= routers->len; r++) {
			const json_t *other_nats;
			json_t *o;
			size_t j;

			if (r == routers->len) {
				other_nats = nats;
			} else {
				struct item *it = routers->items[r];

				if (strcmp(it->scope, scope) == 0 && strcmp(it->name, name) == 0)
					continue;
				if (strcmp(it->scope, scope) != 0 ||
				    strcmp(compute_rel(c, jstr(it->res, "network")),
					   compute_rel(c, jstr(res, "network"))) != 0)
					continue;
				other_nats = json_object_get(it->res, "nats");
			}
			json_array_foreach(other_nats, j, o)
			{
				json_t *s;
				size_t k;
				bool clash = false;

				if (o == nat || (r == routers->len && j >= i))
					continue;
				if (all_subnets(nat) || all_subnets(o))
					clash = true;
				json_array_foreach(json_object_get(nat, "subnetworks"), k,
						   s) if (nat_serves(c, o, jstr(s, "name") ?: ""))
				    clash = true;
				if (clash)
					return api_fail(
					    e, 400, "invalid",
					    "Invalid value for field 'resource.nats[%zu]': NAT '%s' "
					    "would serve subnetworks that NAT '%s' of router '%s' "
					    "already serves.",
					    i, jstr(nat, "name"), jstr(o, "name"),
					    r == routers->len ? name : routers->items[r]->name);
			}
		}
	}
	if (json_array_size(nats) == 0)
		json_object_del(res, "nats");
	return 0;
}

static int router_prepare(struct call *k, json_t *res, struct api_error *e)
{
	json_t *bgp = json_object_get(res, "bgp");

	if (bgp && json_object_get(bgp, "asn")) {
		json_int_t asn = json_integer_value(json_object_get(bgp, "asn"));

		/* "The Google ASN ... any private ASN (64512-65534, 4200000000-4294967294)". */
		if (!(asn >= 64512 && asn <= 65534) &&
		    !(asn >= 4200000000LL && asn <= 4294967294LL))
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.bgp.asn': '%" JSON_INTEGER_FORMAT
			    "'. Must be a private ASN.",
			    asn);
	}
	return check_router(k->c, res, k->scope, jstr(res, "name"), e);
}

static const char *const router_mutable[] = {"bgp",
					     "bgpPeers",
					     "description",
					     "interfaces",
					     "nats",
					     "md5AuthenticationKeys",
					     "encryptedInterconnectRouter"};

static bool is_mutable(const char *key)
{
	return str_in(key, router_mutable, sizeof(router_mutable) / sizeof(router_mutable[0]));
}

/* patch and update: the router as it would be, checked now, stored for completion. */
static int router_method(struct call *k, struct item *it, struct api_error *e)
{
	const char *m = k->req->method, *key;
	const struct sch_message *msg = sch_find("Router");
	bool patch = strcmp(m, "PATCH") == 0;
	json_t *next, *v;
	char err[512];
	int ret;

	if (k->verb || (!patch && strcmp(m, "PUT") != 0))
		return api_fail(e, 404, "notFound",
				"The requested URL was not found on this server.");
	if (!k->body)
		return api_fail(e, 400, "required", "Required field 'resource' not specified");
	if (sch_check(msg, k->body, "resource", err, sizeof(err)) < 0)
		return api_fail(e, 400, "invalid", "%s", err);
	json_object_foreach(k->body, key, v)
	{
		json_t *cur = json_object_get(it->res, key);

		if (is_mutable(key) || (cur && json_equal(cur, v)))
			continue;
		if (strcmp(key, "network") == 0 && cur &&
		    strcmp(compute_rel(k->c, json_string_value(v) ?: ""),
			   compute_rel(k->c, json_string_value(cur))) == 0)
			continue;
		/* Output-only fields a client echoes back (kind, id, selfLink, ...) are ignored. */
		if (str_in(key,
			   (const char *const[]){"kind", "id", "creationTimestamp", "selfLink",
						 "region", "name"},
			   6))
			continue;
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.%s': it cannot be changed.",
				key);
	}
	next = json_deep_copy(it->res);
	if (!next)
		return api_fail(e, 500, "internalError", "out of memory");
	if (patch) {
		compute_merge_patch(next, k->body);
	} else {
		/* update: every mutable field is the request's. */
		for (size_t i = 0; i < sizeof(router_mutable) / sizeof(router_mutable[0]); i++) {
			json_t *nv = json_object_get(k->body, router_mutable[i]);

			if (nv)
				json_object_set_new(next, router_mutable[i], json_deep_copy(nv));
			else
				json_object_del(next, router_mutable[i]);
		}
	}
	ret = check_router(k->c, next, it->scope, it->name, e);
	if (ret < 0) {
		json_decref(next);
		return ret;
	}
	return op_start(k, patch ? "patch" : "update", it->scope, it->name, "routers",
			json_incref(json_object_get(it->res, "id")),
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "op", "method", "method",
				  patch ? "patch" : "update", "collection", "routers", "scope",
				  it->scope, "name", it->name, "router", next));
}

static int router_apply_method(struct compute *c, json_t *m, struct api_error *e)
{
	struct item *it =
	    coll_find(compute_coll(c, "routers"), jstr(m, "scope") ?: "", jstr(m, "name") ?: "");
	json_t *next = json_object_get(m, "router");
	int ret;

	if (!it || it->pending || !json_is_object(next))
		return api_not_found(e, "router");
	/* What changed since the request was accepted (another router's NAT) is checked again. */
	ret = check_router(c, next, it->scope, it->name, e);
	if (ret < 0)
		return ret;
	next = json_deep_copy(next);
	if (!next)
		return api_fail(e, 500, "internalError", "out of memory");
	json_decref(it->res);
	it->res = next;
	return 0;
}

const struct coll_type ct_routers = {
    .name = "routers",
    .kind = "compute#router",
    .list_kind = "compute#routerList",
    .agg_kind = "compute#routerAggregatedList",
    .schema = "Router",
    .scopes = SCOPE_REGION,
    .prepare_insert = router_prepare,
    .method = router_method,
    .apply_method = router_apply_method,
};
