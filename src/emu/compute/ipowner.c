/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Who holds an internal IPv4 address of a VPC network: an instance (its networkIP and alias
 * ranges), a reserved internal address, or an internal forwarding rule's own (ephemeral)
 * address. Each address is held once, in the ip index (ipindex.c), under an owner key
 * "SCOPE/COLLECTION/NAME"; sharing goes through an Address resource and its users:
 *
 *   - "Reserving a static internal IP address takes the address out of the dynamic allocation
 *     pool" (https://cloud.google.com/vpc/docs/reserve-static-internal-ip-address): a
 *     reserved address is in the index, so allocation skips it and nothing else overlaps it;
 *   - an instance or a rule that uses a reserved address (networkIP / IPAddress given as the
 *     IP or as the Address's URL) becomes one of its users; the Address is then IN_USE with
 *     "users: The URLs of the resources that are using this address", and RESERVED again
 *     when the last user goes;
 *   - "GCE_ENDPOINT for addresses that are used by VM instances, alias IP ranges, load
 *     balancers" (one user); "SHARED_LOADBALANCER_VIP for an internal IP address that is
 *     assigned to multiple internal forwarding rules" (Address.purpose);
 *   - anything else that would hold an address already held fails with
 *     IP_IN_USE_BY_ANOTHER_RESOURCE, "IP 'A' is already being used by another resource."
 *     (the wording GCP answers, e.g. kubernetes/ingress-gce#2735, hashicorp/terraform#18998).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"

char *ip_owner_key(const char *scope, const char *collection, const char *name)
{
	return str_printf("%s/%s/%s", scope, collection, name);
}

struct item *ip_owner_item(struct compute *c, const char *key, const char **collection)
{
	/* "zones/Z/instances/N": the scope has one slash, then the collection, then the name. */
	const char *s1 = key ? strchr(key, '/') : NULL, *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	const char *s3 = s2 ? strchr(s2 + 1, '/') : NULL;
	char scope[128], coll[64];
	struct coll *co;
	struct item *it;

	if (!s3 || (size_t)(s2 - key) >= sizeof(scope) || (size_t)(s3 - s2 - 1) >= sizeof(coll))
		return NULL;
	memcpy(scope, key, (size_t)(s2 - key));
	scope[s2 - key] = '\0';
	memcpy(coll, s2 + 1, (size_t)(s3 - s2 - 1));
	coll[s3 - s2 - 1] = '\0';
	co = compute_coll(c, coll);
	it = co ? coll_find(co, scope, s3 + 1) : NULL;
	if (collection)
		*collection = co ? co->type->name : NULL;
	return it;
}

int ip4_parse(const char *s, uint32_t *out)
{
	char *withmask = s && *s && !strchr(s, '/') ? str_printf("%s/32", s) : NULL;
	uint32_t hi;
	unsigned prefix;
	int ret = withmask ? cidr4_parse(withmask, out, &hi, &prefix) : -EINVAL;

	free(withmask);
	return ret;
}

struct item *ip_subnet_of(struct compute *c, const json_t *res, char *net, size_t netlen)
{
	char scope[96], name[128];
	struct item *sub;

	if (compute_parse_ref(c, jstr(res, "subnetwork") ?: "", "subnetworks", NULL, scope,
			      sizeof(scope), name, sizeof(name)) < 0 ||
	    strncmp(scope, "regions/", 8) != 0)
		return NULL;
	sub = compute_subnetwork(c, scope + 8, name);
	if (!sub || !network_name_of(c, sub->res, net, netlen))
		return NULL;
	return sub;
}

bool ip_in_primary(const json_t *subnet, uint32_t ip)
{
	uint32_t lo, hi;
	unsigned p;

	/* The primary range's first two and last two addresses are the network's own. */
	return subnet_range(subnet, NULL, &lo, &hi, &p) == 0 && ip >= lo + 2 && ip <= hi - 2;
}

int ip_in_use(struct api_error *e, unsigned status, const char *what)
{
	return api_fail_code(e, status, "ipInUseByAnotherResource", "IP_IN_USE_BY_ANOTHER_RESOURCE",
			     "IP '%s' is already being used by another resource.", what);
}

/* ---- addresses and their users ---- */

bool address_shared(const json_t *addr)
{
	return strcmp(jstr(addr, "purpose") ?: "", "SHARED_LOADBALANCER_VIP") == 0;
}

bool address_has_user(const json_t *addr, const char *url)
{
	json_t *u;
	size_t i;

	json_array_foreach(json_object_get(addr, "users"), i,
			   u) if (strcmp(json_string_value(u) ?: "", url) == 0) return true;
	return false;
}

bool address_free_for(const json_t *addr, const char *url)
{
	size_t n = json_array_size(json_object_get(addr, "users"));

	return n == 0 || (n == 1 && address_has_user(addr, url));
}

int address_add_user(struct compute *c, struct item *addr, const char *url)
{
	json_t *users = json_object_get(addr->res, "users");

	if (address_has_user(addr->res, url))
		return 0;
	if (!users) {
		users = json_array();
		if (!users || json_object_set_new(addr->res, "users", users) < 0)
			return -ENOMEM;
	}
	if (json_array_append_new(users, json_string(url)) < 0)
		return -ENOMEM;
	json_object_set_new(addr->res, "status", json_string("IN_USE"));
	item_changed(c, addr);
	return 0;
}

void address_drop_user(struct compute *c, struct item *addr, const char *url)
{
	json_t *users = json_object_get(addr->res, "users"), *u;
	size_t i;

	json_array_foreach(users, i, u)
	{
		if (strcmp(json_string_value(u) ?: "", url) == 0) {
			json_array_remove(users, i);
			break;
		}
	}
	if (json_array_size(users) == 0) {
		json_object_del(addr->res, "users");
		json_object_set_new(addr->res, "status", json_string("RESERVED"));
	}
	item_changed(c, addr);
}

void addresses_drop_user(struct compute *c, const char *url)
{
	struct coll *addrs = compute_coll(c, "addresses");

	for (size_t i = 0; url && i < addrs->len; i++)
		if (address_has_user(addrs->items[i]->res, url))
			address_drop_user(c, addrs->items[i], url);
}

struct item *address_by_ref(struct compute *c, const char *ref, const char *default_scope)
{
	char scope[96], name[128];
	struct item *a;

	if (!ref || !strchr(ref, '/') ||
	    compute_parse_ref(c, ref, "addresses", default_scope, scope, sizeof(scope), name,
			      sizeof(name)) < 0)
		return NULL;
	a = coll_find(compute_coll(c, "addresses"), scope, name);
	return a && !a->pending ? a : NULL;
}

struct item *address_holding(struct compute *c, const char *network, uint32_t ip)
{
	const char *coll, *key = ipindex_overlap(c->ipidx, network, ip, ip, NULL);
	struct item *it = key ? ip_owner_item(c, key, &coll) : NULL;

	return it && strcmp(coll, "addresses") == 0 ? it : NULL;
}
