/* SPDX-License-Identifier: Apache-2.0 */
/*
 * networks and subnetworks (with secondaryIpRanges).
 *
 * https://cloud.google.com/compute/docs/reference/rest/v1/networks
 * https://cloud.google.com/compute/docs/reference/rest/v1/subnetworks
 * https://cloud.google.com/vpc/docs/subnets (ranges: no overlap inside a network; the
 * first two and last two addresses of a primary range are reserved; /29 is the smallest).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cidr.h"
#include "emu/compute/compute.h"

int cidr4_parse(const char *s, uint32_t *lo, uint32_t *hi, unsigned *prefix)
{
	struct cidr c;
	uint32_t a;

	if (!s || cidr_parse(s, &c, CIDR_STRICT) < 0 || c.addr.family != AF_INET)
		return -EINVAL;
	memcpy(&a, c.addr.bytes, 4);
	*lo = ntohl(a);
	*hi = *lo + (uint32_t)((1ull << (32 - c.prefix)) - 1);
	*prefix = c.prefix;
	return 0;
}

char *cidr4_format(uint32_t lo, unsigned prefix)
{
	return str_printf("%u.%u.%u.%u/%u", lo >> 24, (lo >> 16) & 255, (lo >> 8) & 255, lo & 255,
			  prefix);
}

char *ip4_format(uint32_t ip)
{
	return str_printf("%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

int subnet_range(const json_t *subnet, const char *range_name, uint32_t *lo, uint32_t *hi,
		 unsigned *prefix)
{
	json_t *r;
	size_t i;

	if (!range_name)
		return cidr4_parse(jstr(subnet, "ipCidrRange"), lo, hi, prefix);
	json_array_foreach(
	    json_object_get(subnet, "secondaryIpRanges"), i,
	    r) if (strcmp(jstr(r, "rangeName") ? jstr(r, "rangeName") : "", range_name) ==
		   0) return cidr4_parse(jstr(r, "ipCidrRange"), lo, hi, prefix);
	return -ENOENT;
}

struct item *compute_network(struct compute *c, const char *name)
{
	struct item *it = coll_find(compute_coll(c, "networks"), "global", name);

	return it && !it->pending ? it : NULL;
}

struct item *compute_subnetwork(struct compute *c, const char *region, const char *name)
{
	char scope[128];
	struct item *it;

	snprintf(scope, sizeof(scope), "regions/%s", region);
	it = coll_find(compute_coll(c, "subnetworks"), scope, name);
	return it && !it->pending ? it : NULL;
}

/* The network name a resource's "network" URL points at, or NULL. */
const char *network_name_of(struct compute *c, const json_t *res, char *buf, size_t len)
{
	char scope[64];
	const char *ref = jstr(res, "network");

	if (!ref ||
	    compute_parse_ref(c, ref, "networks", "global", scope, sizeof(scope), buf, len) < 0 ||
	    strcmp(scope, "global") != 0)
		return NULL;
	return buf;
}

/* ---- networks ---- */

/* Auto mode subnet ranges as GCP assigns them
 * (https://cloud.google.com/vpc/docs/subnets#ip-ranges). */
static const struct {
	const char *region;
	const char *range;
} auto_ranges[] = {
    {"asia-northeast1", "10.146.0.0/20"}, {"europe-west1", "10.132.0.0/20"},
    {"europe-west4", "10.164.0.0/20"},    {"us-central1", "10.128.0.0/20"},
    {"us-east1", "10.142.0.0/20"},        {"us-west1", "10.138.0.0/20"},
};

static int network_prepare(struct call *k, json_t *res, struct api_error *e)
{
	json_t *mtu = json_object_get(res, "mtu");

	if (json_object_get(res, "IPv4Range"))
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.IPv4Range': legacy networks cannot be created; set autoCreateSubnetworks.");
	if (mtu && (json_integer_value(mtu) < 1300 || json_integer_value(mtu) > 8896))
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.mtu': '%" JSON_INTEGER_FORMAT
				"'. Must be between 1300 and 8896.",
				json_integer_value(mtu));
	if (!mtu)
		json_object_set_new(res, "mtu", json_integer(1460));
	if (!json_object_get(res, "autoCreateSubnetworks"))
		json_object_set_new(res, "autoCreateSubnetworks", json_false());
	if (!json_object_get(res, "routingConfig"))
		json_object_set_new(res, "routingConfig",
				    json_pack("{s:s}", "routingMode", "REGIONAL"));
	json_object_set_new(res, "networkFirewallPolicyEnforcementOrder",
			    json_string("AFTER_CLASSIC_FIREWALL"));
	json_object_set_new(res, "selfLinkWithId",
			    compute_url(k->c, "projects/%s/global/networks/%s",
					k->c->emu->opt.project, jstr(res, "id")));
	json_object_set_new(res, "subnetworks", json_array());
	return 0;
}

static json_t *subnet_resource(struct compute *c, const char *region, const char *name,
			       const char *network, const char *range);

static int network_apply_insert(struct compute *c, struct item *it, struct api_error *e)
{
	struct coll *subs = compute_coll(c, "subnetworks");
	json_t *list = json_object_get(it->res, "subnetworks");

	(void)e;
	if (!json_is_true(json_object_get(it->res, "autoCreateSubnetworks")))
		return 0;
	/* Auto mode: one subnet per region, named after the network. */
	for (size_t i = 0; i < sizeof(auto_ranges) / sizeof(auto_ranges[0]); i++) {
		char scope[64];
		json_t *s = subnet_resource(c, auto_ranges[i].region, it->name, it->name,
					    auto_ranges[i].range);

		snprintf(scope, sizeof(scope), "regions/%s", auto_ranges[i].region);
		if (!s)
			continue;
		json_array_append(list, json_object_get(s, "selfLink"));
		coll_add(subs, scope, it->name, s, false, NULL);
	}
	return 0;
}

static bool refers_to_network(struct compute *c, const json_t *res, const char *network)
{
	char buf[128];
	const char *n = network_name_of(c, res, buf, sizeof(buf));

	return n && strcmp(n, network) == 0;
}

static int network_check_delete(struct compute *c, struct item *it, struct api_error *e)
{
	const char *project = c->emu->opt.project;
	static const char *const users[] = {"subnetworks", "firewalls", "forwardingRules",
					    "backendServices", "addresses"};
	bool automode = json_is_true(json_object_get(it->res, "autoCreateSubnetworks"));

	for (size_t u = 0; u < sizeof(users) / sizeof(users[0]); u++) {
		struct coll *co = compute_coll(c, users[u]);

		for (size_t i = 0; i < co->len; i++) {
			struct item *o = co->items[i];

			if (!refers_to_network(c, o->res, it->name))
				continue;
			/* Auto-mode subnets go with their network, unless something uses them. */
			if (automode && u == 0 && strcmp(o->name, it->name) == 0) {
				struct api_error sub;

				if (ct_subnetworks.check_delete(c, o, &sub) == 0)
					continue;
			}
			return api_fail(
			    e, 400, "resourceInUseByAnotherResource",
			    "The network resource 'projects/%s/global/networks/%s' is already being used by 'projects/%s/%s/%s/%s'",
			    project, it->name, project, o->scope, users[u], o->name);
		}
	}
	/* Instances outside auto subnets (a nic naming only the network) count too. */
	struct coll *insts = compute_coll(c, "instances");
	for (size_t i = 0; i < insts->len; i++) {
		json_t *nic;
		size_t j;

		json_array_foreach(json_object_get(insts->items[i]->res, "networkInterfaces"), j, nic) if (
		    refers_to_network(
			c, nic,
			it->name)) return api_fail(e, 400, "resourceInUseByAnotherResource",
						   "The network resource 'projects/%s/global/networks/%s' is already being used by 'projects/%s/%s/instances/%s'",
						   project, it->name, project,
						   insts->items[i]->scope, insts->items[i]->name);
	}
	return 0;
}

static void network_apply_delete(struct compute *c, struct item *it)
{
	struct coll *subs = compute_coll(c, "subnetworks");

	for (size_t i = 0; i < subs->len;) {
		if (refers_to_network(c, subs->items[i]->res, it->name)) {
			coll_remove(subs, subs->items[i]);
			continue;
		}
		i++;
	}
}

const struct coll_type ct_networks = {
    .name = "networks",
    .kind = "compute#network",
    .list_kind = "compute#networkList",
    .schema = "Network",
    .scopes = SCOPE_GLOBAL,
    .prepare_insert = network_prepare,
    .apply_insert = network_apply_insert,
    .check_delete = network_check_delete,
    .apply_delete = network_apply_delete,
};

/* ---- subnetworks ---- */

static json_t *subnet_resource(struct compute *c, const char *region, const char *name,
			       const char *network, const char *range)
{
	const char *project = c->emu->opt.project;
	uint32_t lo, hi;
	unsigned prefix;
	char *gw, *fp = new_fingerprint();
	json_t *res;

	if (cidr4_parse(range, &lo, &hi, &prefix) < 0 || !fp) {
		free(fp);
		return NULL;
	}
	gw = ip4_format(lo + 1);
	res = json_pack(
	    "{s:s, s:o, s:o, s:s, s:o, s:s, s:s, s:o, s:o, s:b, s:s, s:s, s:s}", "kind",
	    "compute#subnetwork", "id", compute_new_id(c), "creationTimestamp", json_now(), "name",
	    name, "network", compute_url(c, "projects/%s/global/networks/%s", project, network),
	    "ipCidrRange", range, "gatewayAddress", gw ? gw : "", "region",
	    compute_url(c, "projects/%s/regions/%s", project, region), "selfLink",
	    compute_url(c, "projects/%s/regions/%s/subnetworks/%s", project, region, name),
	    "privateIpGoogleAccess", 0, "fingerprint", fp, "purpose", "PRIVATE", "stackType",
	    "IPV4_ONLY");
	free(gw);
	free(fp);
	return res;
}

/* Addresses GCP never lets a subnet use (https://cloud.google.com/vpc/docs/subnets#valid-ranges).
 */
static bool forbidden_range(uint32_t lo, uint32_t hi)
{
	static const struct {
		uint32_t lo, hi;
	} bad[] = {
	    {0x00000000, 0x00ffffff}, /* 0.0.0.0/8 */
	    {0x7f000000, 0x7fffffff}, /* 127.0.0.0/8 */
	    {0xa9fe0000, 0xa9feffff}, /* 169.254.0.0/16 */
	    {0xe0000000, 0xffffffff}, /* multicast and reserved */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (lo <= bad[i].hi && hi >= bad[i].lo)
			return true;
	return false;
}

/* Every range of every subnet of the network, except skip's (a subnet being patched). */
static int check_overlap(struct compute *c, const char *network, const char *field,
			 const char *range, const struct item *skip, struct api_error *e)
{
	struct coll *subs = compute_coll(c, "subnetworks");
	uint32_t lo, hi, olo, ohi;
	unsigned p, op;

	if (cidr4_parse(range, &lo, &hi, &p) < 0)
		return 0;
	for (size_t i = 0; i < subs->len; i++) {
		struct item *s = subs->items[i];
		json_t *r;
		size_t j;

		if (s == skip || !refers_to_network(c, s->res, network))
			continue;
		if (subnet_range(s->res, NULL, &olo, &ohi, &op) == 0 && lo <= ohi && hi >= olo)
			goto conflict;
		json_array_foreach(json_object_get(s->res, "secondaryIpRanges"), j,
				   r) if (cidr4_parse(jstr(r, "ipCidrRange"), &olo, &ohi, &op) ==
					      0 &&
					  lo <= ohi && hi >= olo) goto conflict;
		continue;
conflict:
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field '%s': '%s'. Invalid IPCidrRange: %s conflicts with existing subnetwork '%s' in region '%s'.",
		    field, range, range, s->name, s->scope + strlen("regions/"));
	}
	return 0;
}

static int check_range(const char *field, const char *range, struct api_error *e)
{
	uint32_t lo, hi;
	unsigned p;

	if (!range)
		return api_fail(e, 400, "required", "Required field '%s' not specified", field);
	if (cidr4_parse(range, &lo, &hi, &p) < 0)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field '%s': '%s'. Must be an IPv4 CIDR range with no host bits set.",
		    field, range);
	if (p < 8 || p > 29)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field '%s': '%s'. The prefix length must be between /8 and /29.",
		    field, range);
	if (forbidden_range(lo, hi))
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field '%s': '%s'. The range is reserved and cannot be used by a subnetwork.",
		    field, range);
	return 0;
}

/* secondaryIpRanges of body: names, ranges, no overlap with each other or the primary. */
static int check_secondary(struct compute *c, const char *network, json_t *ranges,
			   const char *primary, const struct item *skip, struct api_error *e)
{
	json_t *r, *r2;
	size_t i, j;
	int ret;

	if (json_array_size(ranges) > 170)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.secondaryIpRanges': at most 170 secondary ranges per subnetwork.");
	json_array_foreach(ranges, i, r)
	{
		char field[96];
		const char *name = jstr(r, "rangeName"), *range = jstr(r, "ipCidrRange");
		uint32_t lo, hi, plo, phi;
		unsigned p, pp;

		snprintf(field, sizeof(field), "resource.secondaryIpRanges[%zu].rangeName", i);
		if (!name)
			return api_fail(e, 400, "required", "Required field '%s' not specified",
					field);
		if (!valid_name(name))
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field '%s': '%s'. Must be a match of regex '[a-z]([-a-z0-9]*[a-z0-9])?'",
			    field, name);
		snprintf(field, sizeof(field), "resource.secondaryIpRanges[%zu].ipCidrRange", i);
		ret = check_range(field, range, e);
		if (ret < 0)
			return ret;
		cidr4_parse(range, &lo, &hi, &p);
		if (cidr4_parse(primary, &plo, &phi, &pp) == 0 && lo <= phi && hi >= plo)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field '%s': '%s'. It overlaps the primary range %s.",
			    field, range, primary);
		json_array_foreach(ranges, j, r2)
		{
			uint32_t lo2, hi2;
			unsigned p2;

			if (j >= i)
				break;
			if (strcmp(jstr(r2, "rangeName") ?: "", name) == 0)
				return api_fail(
				    e, 400, "invalid",
				    "Invalid value for field 'resource.secondaryIpRanges': duplicate range name '%s'.",
				    name);
			if (cidr4_parse(jstr(r2, "ipCidrRange"), &lo2, &hi2, &p2) == 0 &&
			    lo <= hi2 && hi >= lo2)
				return api_fail(
				    e, 400, "invalid",
				    "Invalid value for field '%s': '%s'. It overlaps secondary range '%s'.",
				    field, range, jstr(r2, "rangeName"));
		}
		ret = check_overlap(c, network, field, range, skip, e);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int subnet_prepare(struct call *k, json_t *res, struct api_error *e)
{
	struct compute *c = k->c;
	const char *project = c->emu->opt.project;
	const char *ref = jstr(res, "network"), *range = jstr(res, "ipCidrRange");
	char scope[64], net[128];
	uint32_t lo, hi;
	unsigned p;
	char *gw, *fp;
	int ret;

	if (!ref)
		return api_fail(e, 400, "required",
				"Required field 'resource.network' not specified");
	if (compute_parse_ref(c, ref, "networks", "global", scope, sizeof(scope), net,
			      sizeof(net)) < 0 ||
	    strcmp(scope, "global") != 0)
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.network': '%s'.", ref);
	if (!compute_network(c, net))
		return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
				     "The resource 'projects/%s/global/networks/%s' was not found",
				     project, net);
	ret = check_range("resource.ipCidrRange", range, e);
	if (ret < 0)
		return ret;
	ret = check_overlap(c, net, "resource.ipCidrRange", range, NULL, e);
	if (ret < 0)
		return ret;
	ret = check_secondary(c, net, json_object_get(res, "secondaryIpRanges"), range, NULL, e);
	if (ret < 0)
		return ret;
	cidr4_parse(range, &lo, &hi, &p);
	gw = ip4_format(lo + 1);
	fp = new_fingerprint();
	json_object_set_new(res, "network",
			    compute_url(c, "projects/%s/global/networks/%s", project, net));
	json_object_set_new(res, "gatewayAddress", json_string(gw ? gw : ""));
	json_object_set_new(res, "fingerprint", json_string(fp ? fp : ""));
	if (!json_object_get(res, "privateIpGoogleAccess"))
		json_object_set_new(res, "privateIpGoogleAccess", json_false());
	if (!json_object_get(res, "purpose"))
		json_object_set_new(res, "purpose", json_string("PRIVATE"));
	if (!json_object_get(res, "stackType"))
		json_object_set_new(res, "stackType", json_string("IPV4_ONLY"));
	if (json_array_size(json_object_get(res, "secondaryIpRanges")) == 0)
		json_object_del(res, "secondaryIpRanges");
	free(gw);
	free(fp);
	return 0;
}

static int subnet_apply_insert(struct compute *c, struct item *it, struct api_error *e)
{
	char buf[128];
	const char *net = network_name_of(c, it->res, buf, sizeof(buf));
	struct item *n = net ? compute_network(c, net) : NULL;

	if (!n)
		return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
				     "The resource 'projects/%s/global/networks/%s' was not found",
				     c->emu->opt.project, net ? net : "?");
	json_array_append(json_object_get(n->res, "subnetworks"),
			  json_object_get(it->res, "selfLink"));
	item_changed(c, n);
	return 0;
}

/* The subnet an instance's nic uses, by URL. */
static bool nic_uses_subnet(struct compute *c, const json_t *nic, const struct item *subnet)
{
	char scope[64], name[128];
	const char *ref = jstr(nic, "subnetwork");

	return ref &&
	       compute_parse_ref(c, ref, "subnetworks", NULL, scope, sizeof(scope), name,
				 sizeof(name)) == 0 &&
	       strcmp(scope, subnet->scope) == 0 && strcmp(name, subnet->name) == 0;
}

static int subnet_check_delete(struct compute *c, struct item *it, struct api_error *e)
{
	static const char *const users[] = {"addresses", "forwardingRules"};
	struct coll *insts = compute_coll(c, "instances");
	const char *project = c->emu->opt.project;

	/* Internal addresses and rules take their IPs from the subnetwork. */
	for (size_t u = 0; u < sizeof(users) / sizeof(users[0]); u++) {
		struct coll *co = compute_coll(c, users[u]);

		for (size_t i = 0; i < co->len; i++)
			if (nic_uses_subnet(c, co->items[i]->res, it))
				return api_fail(
				    e, 400, "resourceInUseByAnotherResource",
				    "The subnetwork resource 'projects/%s/%s/subnetworks/%s' is already being used by 'projects/%s/%s/%s/%s'",
				    project, it->scope, it->name, project, co->items[i]->scope,
				    users[u], co->items[i]->name);
	}

	for (size_t i = 0; i < insts->len; i++) {
		json_t *nic;
		size_t j;

		json_array_foreach(json_object_get(insts->items[i]->res, "networkInterfaces"), j, nic) if (
		    nic_uses_subnet(
			c, nic,
			it)) return api_fail(e, 400, "resourceInUseByAnotherResource",
					     "The subnetwork resource 'projects/%s/%s/subnetworks/%s' is already being used by 'projects/%s/%s/instances/%s'",
					     project, it->scope, it->name, project,
					     insts->items[i]->scope, insts->items[i]->name);
	}
	return 0;
}

static void subnet_apply_delete(struct compute *c, struct item *it)
{
	char buf[128];
	const char *net = network_name_of(c, it->res, buf, sizeof(buf));
	struct item *n = net ? compute_network(c, net) : NULL;
	const char *self = jstr(it->res, "selfLink");
	json_t *list, *v;
	size_t i;

	if (!n || !self)
		return;
	list = json_object_get(n->res, "subnetworks");
	json_array_foreach(list, i, v)
	{
		if (strcmp(json_string_value(v) ?: "", self) == 0) {
			json_array_remove(list, i);
			item_changed(c, n);
			break;
		}
	}
}

/* Is a secondary range used by an alias of an instance on this subnet? */
static const char *range_in_use(struct compute *c, const struct item *subnet, const char *range)
{
	struct coll *insts = compute_coll(c, "instances");

	for (size_t i = 0; i < insts->len; i++) {
		json_t *nic, *a;
		size_t j, l;

		json_array_foreach(json_object_get(insts->items[i]->res, "networkInterfaces"), j,
				   nic)
		{
			if (!nic_uses_subnet(c, nic, subnet))
				continue;
			json_array_foreach(json_object_get(nic, "aliasIpRanges"), l,
					   a) if (strcmp(jstr(a, "subnetworkRangeName") ?: "",
							 range) == 0) return insts->items[i]
			    ->name;
		}
	}
	return NULL;
}

/*
 * subnetworks.patch: "Only certain fields can be updated ... fingerprint must be provided"
 * (https://cloud.google.com/compute/docs/reference/rest/v1/subnetworks/patch). Here:
 * secondaryIpRanges (add or remove ranges not in use) and description.
 */
static int subnet_method(struct call *k, struct item *it, struct api_error *e)
{
	struct compute *c = k->c;
	const char *fp, *project = c->emu->opt.project;
	json_t *ranges, *r;
	char buf[128];
	const char *net;
	size_t i;
	int ret;

	if (k->verb || strcmp(k->req->method, "PATCH") != 0)
		return api_fail(e, 404, "notFound",
				"The requested URL was not found on this server.");
	if (!k->body)
		return api_fail(e, 400, "required", "Required field 'resource' not specified");
	{
		const struct sch_message *m = sch_find("Subnetwork");
		char err[512];

		if (sch_check(m, k->body, "resource", err, sizeof(err)) < 0)
			return api_fail(e, 400, "invalid", "%s", err);
	}
	fp = jstr(k->body, "fingerprint");
	if (!fp)
		return api_fail(e, 400, "required",
				"Required field 'resource.fingerprint' not specified");
	if (!fingerprint_equal(fp, jstr(it->res, "fingerprint"))) {
		api_fail(e, 412, "conditionNotMet",
			 "Supplied fingerprint does not match current subnetwork fingerprint.");
		e->location = "If-Match";
		e->location_type = "header";
		return -EINVAL;
	}
	net = network_name_of(c, it->res, buf, sizeof(buf));
	ranges = json_object_get(k->body, "secondaryIpRanges");
	if (ranges) {
		ret =
		    check_secondary(c, net ? net : "", ranges, jstr(it->res, "ipCidrRange"), it, e);
		if (ret < 0)
			return ret;
		/* A removed range must not hold aliases. */
		json_array_foreach(json_object_get(it->res, "secondaryIpRanges"), i, r)
		{
			const char *name = jstr(r, "rangeName"), *user;
			bool kept = false;
			json_t *r2;
			size_t j;

			json_array_foreach(
			    ranges, j,
			    r2) if (strcmp(jstr(r2, "rangeName") ?: "", name ?: "") == 0 &&
				    strcmp(jstr(r2, "ipCidrRange") ?: "",
					   jstr(r, "ipCidrRange") ?: "") == 0) kept = true;
			user = kept ? NULL : range_in_use(c, it, name ? name : "");
			if (user)
				return api_fail(
				    e, 400, "resourceInUseByAnotherResource",
				    "The secondary range '%s' of subnetwork 'projects/%s/%s/subnetworks/%s' is in use by instance '%s'",
				    name, project, it->scope, it->name, user);
		}
	}
	return op_start(k, "patch", it->scope, it->name, "subnetworks",
			json_incref(json_object_get(it->res, "id")),
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "op", "method", "method",
				  "patch", "collection", "subnetworks", "scope", it->scope, "name",
				  it->name, "patch", k->body));
}

static int subnet_apply_method(struct compute *c, json_t *m, struct api_error *e)
{
	struct item *it = coll_find(compute_coll(c, "subnetworks"), jstr(m, "scope") ?: "",
				    jstr(m, "name") ?: "");
	json_t *patch = json_object_get(m, "patch"), *ranges;
	char *fp;

	if (!it || it->pending)
		return api_not_found(e, "subnetwork");
	ranges = json_object_get(patch, "secondaryIpRanges");
	if (ranges && json_array_size(ranges))
		json_object_set(it->res, "secondaryIpRanges", ranges);
	else if (ranges)
		json_object_del(it->res, "secondaryIpRanges");
	if (jstr(patch, "description"))
		json_object_set(it->res, "description", json_object_get(patch, "description"));
	fp = new_fingerprint();
	if (fp)
		json_object_set_new(it->res, "fingerprint", json_string(fp));
	free(fp);
	return 0;
}

const struct coll_type ct_subnetworks = {
    .name = "subnetworks",
    .kind = "compute#subnetwork",
    .list_kind = "compute#subnetworkList",
    .agg_kind = "compute#subnetworkAggregatedList",
    .schema = "Subnetwork",
    .scopes = SCOPE_REGION,
    .prepare_insert = subnet_prepare,
    .apply_insert = subnet_apply_insert,
    .check_delete = subnet_check_delete,
    .apply_delete = subnet_apply_delete,
    .method = subnet_method,
    .apply_method = subnet_apply_method,
};
