/* SPDX-License-Identifier: Apache-2.0 */
/*
 * instances: insert, get, list, aggregatedList, delete, updateNetworkInterface, setMetadata,
 * setLabels, setTags
 * (reset, stop and start: lifecycle.c).
 *
 * Network interfaces (https://cloud.google.com/compute/docs/reference/rest/v1/instances):
 * nicN names are the server's; networkIP is allocated from the subnet's primary range
 * (its first two and last two addresses are reserved, https://cloud.google.com/vpc/docs/subnets);
 * aliasIpRanges come from the primary range or the named secondary range
 * (subnetworkRangeName). An alias "may be a single IP address (e.g. 10.2.3.4), a netmask
 * (e.g. /24) or a CIDR format string (e.g. 10.1.2.0/24)"; a netmask is allocated by the
 * server from the named range, which is what gcloud's --aliases pods:/24 asks for.
 * Addresses are unique within a VPC network: an overlap with another instance fails the
 * Operation with IP_IN_USE_BY_ANOTHER_RESOURCE.
 *
 * updateNetworkInterface
 * (https://cloud.google.com/compute/docs/reference/rest/v1/instances/updateNetworkInterface) "can
 * only update an interface's alias IP range and attached network", with PATCH semantics.
 * NetworkInterface.fingerprint: "An up-to-date fingerprint must be provided in order to update the
 * NetworkInterface. The request will fail with error 400 Bad Request if the fingerprint is not
 * provided, or 412 Precondition Failed if the fingerprint is out of date." Fingerprints are
 * compared as decoded bytes (gcloud re-encodes them URL-safe). Alias IP ranges "can be added or
 * deleted, but they can't be updated"
 * (https://cloud.google.com/vpc/docs/configure-alias-ip-ranges): a request that removes a
 * range and adds another is refused with 400; clients clear, wait, then set.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "emu/compute/compute.h"

#define MAX_NICS 8

/* The owner key of an instance in the ip index. */
static char *owner_of(const char *scope, const char *name)
{
	return str_printf("%s/instances/%s", scope, name);
}

static const char *zone_of_scope(const char *scope)
{
	return strncmp(scope, "zones/", 6) == 0 ? scope + 6 : scope;
}

void instances_notify(struct compute *c, const char *zone, const char *name, const json_t *res)
{
	emu_kube_instance_changed(c->emu, zone, name, res);
	emu_dataplane_changed(c->emu);
}

/* ---- alias ranges ---- */

struct alias {
	uint32_t lo, hi;
	unsigned prefix;
	bool netmask_only; /* "/24": the server picks the range */
	const char *range_name;
};

/* "/24", "10.1.2.3" or "10.1.2.0/24". */
static int parse_alias(const char *text, struct alias *a)
{
	char *end;
	long n;

	if (!text || !*text)
		return -EINVAL;
	if (text[0] == '/') {
		n = strtol(text + 1, &end, 10);
		if (*end || end == text + 1 || n < 1 || n > 32 || (text[1] == '0'))
			return -EINVAL;
		a->netmask_only = true;
		a->prefix = (unsigned)n;
		return 0;
	}
	a->netmask_only = false;
	if (!strchr(text, '/')) {
		char *withmask = str_printf("%s/32", text);
		int ret = withmask ? cidr4_parse(withmask, &a->lo, &a->hi, &a->prefix) : -ENOMEM;

		free(withmask);
		return ret;
	}
	return cidr4_parse(text, &a->lo, &a->hi, &a->prefix);
}

/* The range an alias must come from: [lo, hi] of the primary or named secondary range. */
static int alias_source(const json_t *subnet, const char *range_name, uint32_t *lo, uint32_t *hi,
			unsigned *prefix)
{
	int ret = subnet_range(subnet, range_name, lo, hi, prefix);

	if (ret == 0 && !range_name) {
		/* The primary range's first two and last two addresses are reserved. */
		*lo += 2;
		*hi -= 2;
	}
	return ret;
}

/*
 * Checks one alias against its subnet (syntax, range name, containment). field names it in
 * messages. Fills a.
 */
static int check_alias(const json_t *ar, const json_t *subnet, const char *subnet_name,
		       const char *field, struct alias *a, struct api_error *e)
{
	const char *text = jstr(ar, "ipCidrRange"), *rn = jstr(ar, "subnetworkRangeName");
	uint32_t lo, hi;
	unsigned prefix;

	if (!text)
		return api_fail(e, 400, "required", "Required field '%s.ipCidrRange' not specified",
				field);
	if (parse_alias(text, a) < 0)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field '%s.ipCidrRange': '%s'. Must be an IP address, a netmask such as /24, or a CIDR range without host bits.",
		    field, text);
	a->range_name = rn;
	if (alias_source(subnet, rn, &lo, &hi, &prefix) < 0)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field '%s.subnetworkRangeName': '%s'. Subnetwork '%s' has no secondary range named '%s'.",
		    field, rn ? rn : "", subnet_name, rn ? rn : "");
	if (a->netmask_only) {
		if (a->prefix < prefix)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field '%s.ipCidrRange': '%s'. The netmask is larger than the %s range.",
			    field, text, rn ? rn : "primary");
		return 0;
	}
	if (a->lo < lo || a->hi > hi)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field '%s.ipCidrRange': '%s'. The alias IP range must be within the subnetwork's %s%s%s range %s.",
		    field, text, rn ? "secondary range '" : "primary", rn ? rn : "", rn ? "'" : "",
		    rn ? "" : "(reserved addresses excluded)");
	return 0;
}

/* Aliases of one request: each valid, none overlapping another. Canonicalizes the text. */
static int check_aliases(json_t *ranges, const json_t *subnet, const char *subnet_name,
			 const char *field, struct api_error *e)
{
	struct alias a[64];
	json_t *ar;
	size_t i;
	int ret;

	if (json_array_size(ranges) > 64)
		return api_fail(e, 400, "invalid",
				"Invalid value for field '%s': too many alias IP ranges.", field);
	json_array_foreach(ranges, i, ar)
	{
		char f[160];

		snprintf(f, sizeof(f), "%s[%zu]", field, i);
		ret = check_alias(ar, subnet, subnet_name, f, &a[i], e);
		if (ret < 0)
			return ret;
		if (!a[i].netmask_only) {
			char *canon = cidr4_format(a[i].lo, a[i].prefix);

			json_object_set_new(ar, "ipCidrRange", json_string(canon ? canon : ""));
			free(canon);
			for (size_t j = 0; j < i; j++)
				if (!a[j].netmask_only && a[i].lo <= a[j].hi && a[i].hi >= a[j].lo)
					return api_fail(
					    e, 400, "invalid",
					    "Invalid value for field '%s.ipCidrRange': '%s'. It overlaps another alias IP range of this interface.",
					    f, jstr(ar, "ipCidrRange"));
		}
	}
	return 0;
}

/* ---- the ip index for one instance ---- */

/* Adds networkIP and aliases of every nic; -EEXIST with e filled on a conflict. */
static int index_instance(struct compute *c, struct item *it, struct api_error *e)
{
	char *owner = owner_of(it->scope, it->name), buf[128];
	json_t *nic, *ar;
	size_t i, j;
	int ret = 0;

	if (!owner)
		return -ENOMEM;
	json_array_foreach(json_object_get(it->res, "networkInterfaces"), i, nic)
	{
		const char *net = network_name_of(c, nic, buf, sizeof(buf));
		uint32_t lo, hi;
		unsigned p;
		char *ip;

		if (!net)
			continue;
		ip = str_printf("%s/32", jstr(nic, "networkIP") ?: "");
		if (ip && cidr4_parse(ip, &lo, &hi, &p) == 0) {
			struct item *a = address_holding(c, net, lo);

			/* Held by a reserved address this instance uses: the address's entry. */
			if (!a || !address_has_user(a->res, jstr(it->res, "selfLink") ?: ""))
				ret = ipindex_add(c->ipidx, net, lo, hi, owner);
		}
		free(ip);
		json_array_foreach(json_object_get(nic, "aliasIpRanges"), j, ar)
		{
			if (ret < 0)
				break;
			if (cidr4_parse(jstr(ar, "ipCidrRange"), &lo, &hi, &p) == 0)
				ret = ipindex_add(c->ipidx, net, lo, hi, owner);
		}
		if (ret < 0)
			break;
	}
	if (ret < 0) {
		json_array_foreach(json_object_get(it->res, "networkInterfaces"), i, nic)
		{
			const char *net = network_name_of(c, nic, buf, sizeof(buf));

			if (net)
				ipindex_remove_owner(c->ipidx, net, owner);
		}
		api_fail_code(e, 400, "ipInUseByAnotherResource", "IP_IN_USE_BY_ANOTHER_RESOURCE",
			      "IP address conflict while restoring instance '%s'.", it->name);
	}
	free(owner);
	return ret;
}

static void unindex_instance(struct compute *c, struct item *it)
{
	char *owner = owner_of(it->scope, it->name), buf[128];
	json_t *nic;
	size_t i;

	/* Reserved addresses it used are RESERVED again (they stay out of the pool). */
	addresses_drop_user(c, jstr(it->res, "selfLink"));
	if (!owner)
		return;
	json_array_foreach(json_object_get(it->res, "networkInterfaces"), i, nic)
	{
		const char *net = network_name_of(c, nic, buf, sizeof(buf));

		if (net)
			ipindex_remove_owner(c->ipidx, net, owner);
	}
	free(owner);
}

static void instance_on_load(struct compute *c, struct item *it)
{
	struct api_error e;

	if (index_instance(c, it, &e) < 0)
		log_warn("state: instance %s/%s: %s", it->scope, it->name, e.message);
}

/* ---- insert ---- */

/* Resolves a nic's network and subnetwork (normalized URLs written back). */
static int resolve_nic(struct call *k, json_t *nic, size_t index, struct item **subnet_out,
		       struct api_error *e)
{
	struct compute *c = k->c;
	const char *project = c->emu->opt.project, *zone = k->scope_name;
	const char *region = compute_zone_region(zone);
	const char *sref = jstr(nic, "subnetwork"), *nref = jstr(nic, "network");
	char scope[96], sname[128], net[128], dflt[96];
	struct item *sub = NULL, *n;

	snprintf(dflt, sizeof(dflt), "regions/%s", region);
	if (sref) {
		if (compute_parse_ref(c, sref, "subnetworks", dflt, scope, sizeof(scope), sname,
				      sizeof(sname)) < 0 ||
		    strncmp(scope, "regions/", 8) != 0)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.networkInterfaces[%zu].subnetwork': '%s'. The URL is malformed.",
			    index, sref);
		if (strcmp(scope + 8, region) != 0)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.networkInterfaces[%zu].subnetwork': '%s'. Subnetwork must be in the same region as the instance (%s).",
			    index, sref, region);
		sub = compute_subnetwork(c, region, sname);
		if (!sub)
			return api_fail_code(
			    e, 404, "notFound", "RESOURCE_NOT_FOUND",
			    "The resource 'projects/%s/regions/%s/subnetworks/%s' was not found",
			    project, region, sname);
		if (!network_name_of(c, sub->res, net, sizeof(net)))
			return api_fail(e, 500, "internalError", "subnetwork without network");
	}
	if (nref) {
		char nnet[128];

		if (compute_parse_ref(c, nref, "networks", "global", scope, sizeof(scope), nnet,
				      sizeof(nnet)) < 0 ||
		    strcmp(scope, "global") != 0)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.networkInterfaces[%zu].network': '%s'. The URL is malformed.",
			    index, nref);
		if (sub && strcmp(nnet, net) != 0)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.networkInterfaces[%zu].network': '%s'. The subnetwork belongs to network '%s'.",
			    index, nref, net);
		snprintf(net, sizeof(net), "%s", nnet);
	} else if (!sub) {
		snprintf(net, sizeof(net), "default");
	}
	n = compute_network(c, net);
	if (!n)
		return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
				     "The resource 'projects/%s/global/networks/%s' was not found",
				     project, net);
	if (!sub) {
		/* A custom-mode network needs the subnet named; auto mode has one per region. */
		sub = compute_subnetwork(c, region, net);
		if (!sub || !json_is_true(json_object_get(n->res, "autoCreateSubnetworks")))
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.networkInterfaces[%zu].subnetwork': ''. Subnetwork should be specified for custom subnetmode network",
			    index);
	}
	json_object_set(nic, "network", json_object_get(n->res, "selfLink"));
	json_object_set(nic, "subnetwork", json_object_get(sub->res, "selfLink"));
	*subnet_out = sub;
	return 0;
}

static void set_fingerprint(json_t *obj, const char *key);

static int prepare_nics(struct call *k, json_t *res, struct api_error *e)
{
	json_t *nics = json_object_get(res, "networkInterfaces"), *nic;
	char seen[MAX_NICS][128];
	size_t i;
	int ret;

	if (json_array_size(nics) == 0)
		return api_fail(e, 400, "required",
				"Required field 'resource.networkInterfaces' not specified");
	if (json_array_size(nics) > MAX_NICS)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.networkInterfaces': at most %d network interfaces.",
		    MAX_NICS);
	json_array_foreach(nics, i, nic)
	{
		struct item *sub = NULL;
		char field[96], name[32], buf[128];
		const char *ip = jstr(nic, "networkIP");
		json_t *ac;
		size_t j;

		ret = resolve_nic(k, nic, i, &sub, e);
		if (ret < 0)
			return ret;
		/* "Each network interface must be attached to a different VPC network." */
		snprintf(seen[i], sizeof(seen[i]), "%s",
			 network_name_of(k->c, nic, buf, sizeof(buf)) ?: "");
		for (j = 0; j < i; j++)
			if (strcmp(seen[j], seen[i]) == 0)
				return api_fail(
				    e, 400, "invalid",
				    "Invalid value for field 'resource.networkInterfaces[%zu].network': each network interface must be in a different network.",
				    i);
		if (ip && strchr(ip, '/')) {
			/* networkIP as an Address's URL (gcloud's --private-network-ip NAME). */
			struct item *a = address_by_ref(k->c, ip, sub->scope);

			if (!a)
				return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
						     "The resource '%s' was not found",
						     compute_rel(k->c, ip));
			if (strcmp(jstr(a->res, "addressType") ?: "", "INTERNAL") != 0 ||
			    strcmp(compute_rel(k->c, jstr(a->res, "subnetwork")),
				   compute_rel(k->c, jstr(nic, "subnetwork"))) != 0)
				return api_fail(
				    e, 400, "invalid",
				    "Invalid value for field 'resource.networkInterfaces[%zu].networkIP': '%s'. The address must be an internal address of the interface's subnetwork.",
				    i, ip);
		} else if (ip) {
			uint32_t lo, hi;
			unsigned p;
			struct alias a;

			if (parse_alias(ip, &a) < 0 || a.netmask_only || a.prefix != 32 ||
			    alias_source(sub->res, NULL, &lo, &hi, &p) < 0 || a.lo < lo ||
			    a.lo > hi)
				return api_fail(
				    e, 400, "invalid",
				    "Invalid value for field 'resource.networkInterfaces[%zu].networkIP': '%s'. The IP address must be a free address of the subnetwork's primary range.",
				    i, ip);
		}
		snprintf(field, sizeof(field), "resource.networkInterfaces[%zu].aliasIpRanges", i);
		ret = check_aliases(json_object_get(nic, "aliasIpRanges"), sub->res, sub->name,
				    field, e);
		if (ret < 0)
			return ret;
		json_array_foreach(json_object_get(nic, "accessConfigs"), j, ac)
		{
			json_object_set_new(ac, "kind", json_string("compute#accessConfig"));
			if (!jstr(ac, "type"))
				json_object_set_new(ac, "type", json_string("ONE_TO_ONE_NAT"));
			if (!jstr(ac, "name"))
				json_object_set_new(ac, "name", json_string("External NAT"));
			if (!jstr(ac, "networkTier"))
				json_object_set_new(ac, "networkTier", json_string("PREMIUM"));
		}
		snprintf(name, sizeof(name), "nic%zu", i);
		json_object_set_new(nic, "name", json_string(name));
		json_object_set_new(nic, "kind", json_string("compute#networkInterface"));
		set_fingerprint(nic, "fingerprint");
		if (!jstr(nic, "stackType"))
			json_object_set_new(nic, "stackType", json_string("IPV4_ONLY"));
		if (json_array_size(json_object_get(nic, "aliasIpRanges")) == 0)
			json_object_del(nic, "aliasIpRanges");
	}
	return 0;
}

static int prepare_disks(struct call *k, json_t *res, struct api_error *e)
{
	struct compute *c = k->c;
	json_t *disks = json_object_get(res, "disks"), *d;
	const char *name = jstr(res, "name");
	size_t i, boots = 0;

	json_array_foreach(disks, i, d)
	{
		json_t *init = json_object_get(d, "initializeParams");
		char dev[48];

		if (json_is_true(json_object_get(d, "boot")))
			boots++;
		if (!init && !jstr(d, "source"))
			return api_fail(e, 400, "required",
					"Required field 'resource.disks[%zu].source' not specified",
					i);
		if (init) {
			const char *dn = jstr(init, "diskName");
			const char *img = jstr(init, "sourceImage");
			char field[96];
			uint64_t img_gb = 0;
			int ret;

			/* The image must exist (images.c), and the disk must be as large. */
			snprintf(field, sizeof(field),
				 "resource.disks[%zu].initializeParams.sourceImage", i);
			if (!img && json_is_true(json_object_get(d, "boot")) &&
			    !jstr(init, "sourceSnapshot"))
				return api_fail(e, 400, "required",
						"Required field '%s' not specified", field);
			if (img) {
				ret = image_check_source(c, img, field, &img_gb, e);
				if (ret < 0)
					return ret;
			}
			if (jstr(init, "diskSizeGb") &&
			    strtoull(jstr(init, "diskSizeGb"), NULL, 10) < img_gb)
				return api_fail(
				    e, 400, "invalid",
				    "Invalid value for field 'resource.disks[%zu].initializeParams.diskSizeGb': '%s'. Requested disk size cannot be smaller than the image size (%llu GB).",
				    i, jstr(init, "diskSizeGb"), (unsigned long long)img_gb);
			char *dname = dn ? strdup(dn)
					 : (i == 0 ? strdup(name) : str_printf("%s-%zu", name, i));

			json_object_set_new(d, "source",
					    compute_url(c, "projects/%s/%s/disks/%s",
							c->emu->opt.project, k->scope,
							dname ? dname : name));
			free(dname);
			if (jstr(init, "diskSizeGb"))
				json_object_set(d, "diskSizeGb",
						json_object_get(init, "diskSizeGb"));
			/* The disk is created from these; GCP does not echo them back. */
			json_object_del(d, "initializeParams");
		}
		snprintf(dev, sizeof(dev), "persistent-disk-%zu", i);
		json_object_set_new(d, "kind", json_string("compute#attachedDisk"));
		json_object_set_new(d, "index", json_integer((json_int_t)i));
		if (!jstr(d, "deviceName"))
			json_object_set_new(d, "deviceName", json_string(dev));
		if (!jstr(d, "type"))
			json_object_set_new(d, "type", json_string("PERSISTENT"));
		if (!jstr(d, "mode"))
			json_object_set_new(d, "mode", json_string("READ_WRITE"));
		if (!jstr(d, "interface"))
			json_object_set_new(d, "interface", json_string("SCSI"));
		if (!json_object_get(d, "boot"))
			json_object_set_new(d, "boot", json_false());
		if (!json_object_get(d, "autoDelete"))
			json_object_set_new(d, "autoDelete", json_false());
		if (!jstr(d, "diskSizeGb"))
			json_object_set_new(d, "diskSizeGb", json_string("10"));
		json_object_set_new(d, "architecture", json_string("X86_64"));
	}
	if (boots != 1)
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.disks': ''. %s",
				boots ? "Only one boot disk may be specified."
				      : "Boot disk must be specified.");
	return 0;
}

static int check_metadata(json_t *md, const char *field, struct api_error *e)
{
	json_t *item;
	size_t i, total = 0;

	json_array_foreach(json_object_get(md, "items"), i, item)
	{
		const char *key = jstr(item, "key"), *value = jstr(item, "value");

		if (!key || !*key || strlen(key) > 128 ||
		    strspn(key,
			   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
			strlen(key))
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field '%s.items[%zu].key': '%s'. Must be a match of regex '[a-zA-Z0-9-_]{1,128}'",
			    field, i, key ? key : "");
		for (size_t j = 0; j < i; j++)
			if (strcmp(jstr(json_array_get(json_object_get(md, "items"), j), "key"),
				   key) == 0)
				return api_fail(
				    e, 400, "invalid",
				    "Invalid value for field '%s.items': duplicate key '%s'.",
				    field, key);
		/* Metadata.items[].value: "their size must be less than or equal to 262144 bytes
		 * (256 KiB)" (Compute v1 messages). */
		if (value && strlen(value) > 256 * 1024)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field '%s.items[%zu].value': the value of metadata key '%s' is %zu bytes long. Must be at most 262144 bytes (256 KiB).",
			    field, i, key, strlen(value));
		total += strlen(key) + (value ? strlen(value) : 0);
	}
	/* "The total size of all keys and values must be less than 512 KB." */
	if (total > 512 * 1024)
		return api_fail(e, 400, "invalid",
				"Invalid value for field '%s': metadata is larger than 512 KB.",
				field);
	return 0;
}

static void set_fingerprint(json_t *obj, const char *key)
{
	char *fp = new_fingerprint();

	if (fp)
		json_object_set_new(obj, key, json_string(fp));
	free(fp);
}

static int instance_prepare(struct call *k, json_t *res, struct api_error *e)
{
	struct compute *c = k->c;
	const char *project = c->emu->opt.project, *zone = k->scope_name;
	const char *mt = jstr(res, "machineType");
	char scope[96], mtname[96], dflt[96];
	json_t *md, *sa, *sched, *tags;
	size_t i;
	int ret;

	if (!mt)
		return api_fail(e, 400, "required",
				"Required field 'resource.machineType' not specified");
	snprintf(dflt, sizeof(dflt), "zones/%s", zone);
	if (compute_parse_ref(c, mt, "machineTypes", dflt, scope, sizeof(scope), mtname,
			      sizeof(mtname)) < 0 ||
	    strcmp(scope, dflt) != 0 || !coll_find(compute_coll(c, "machineTypes"), scope, mtname))
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.machineType': '%s'. Machine type with name '%s' does not exist in zone '%s'.",
		    mt, mtname, zone);
	json_object_set_new(
	    res, "machineType",
	    compute_url(c, "projects/%s/zones/%s/machineTypes/%s", project, zone, mtname));
	ret = prepare_nics(k, res, e);
	if (ret == 0)
		ret = prepare_disks(k, res, e);
	if (ret < 0)
		return ret;
	md = json_object_get(res, "metadata");
	if (!md) {
		md = json_object();
		json_object_set_new(res, "metadata", md);
	}
	ret = check_metadata(md, "resource.metadata", e);
	if (ret < 0)
		return ret;
	json_object_set_new(md, "kind", json_string("compute#metadata"));
	set_fingerprint(md, "fingerprint");
	json_array_foreach(json_object_get(res, "serviceAccounts"), i, sa)
	{
		if (strcmp(jstr(sa, "email") ?: "default", "default") == 0)
			json_object_set_new(sa, "email",
					    jsonf("%s-compute@developer.gserviceaccount.com",
						  compute_project_number(c)));
	}
	sched = json_object_get(res, "scheduling");
	if (!sched) {
		sched = json_object();
		json_object_set_new(res, "scheduling", sched);
	}
	if (!json_object_get(sched, "onHostMaintenance"))
		json_object_set_new(sched, "onHostMaintenance", json_string("MIGRATE"));
	if (!json_object_get(sched, "automaticRestart"))
		json_object_set_new(sched, "automaticRestart", json_true());
	if (!json_object_get(sched, "preemptible"))
		json_object_set_new(sched, "preemptible", json_false());
	if (!json_object_get(sched, "provisioningModel"))
		json_object_set_new(sched, "provisioningModel", json_string("STANDARD"));
	tags = json_object_get(res, "tags");
	ret = limits_check_tags(tags, "resource.tags", e);
	if (ret < 0)
		return ret;
	if (!tags) {
		tags = json_object();
		json_object_set_new(res, "tags", tags);
	}
	set_fingerprint(tags, "fingerprint");
	set_fingerprint(res, "labelFingerprint");
	set_fingerprint(res, "fingerprint");
	json_object_set_new(res, "status", json_string("PROVISIONING"));
	json_object_set_new(res, "cpuPlatform", json_string("Intel Broadwell"));
	json_object_set_new(res, "startRestricted", json_false());
	if (!json_object_get(res, "canIpForward"))
		json_object_set_new(res, "canIpForward", json_false());
	if (!json_object_get(res, "deletionProtection"))
		json_object_set_new(res, "deletionProtection", json_false());
	return 0;
}

static int in_use(struct api_error *e, const char *what)
{
	return ip_in_use(e, 400, what);
}

static bool hits(const uint32_t *taken, size_t n, uint32_t lo, uint32_t hi)
{
	for (size_t i = 0; i < n; i++)
		if (lo <= taken[2 * i + 1] && hi >= taken[2 * i])
			return true;
	return false;
}

/*
 * One nic at completion: explicit aliases and networkIP must be free; netmask aliases and a
 * missing networkIP are allocated; everything is then indexed under owner.
 */
/*
 * A reserved internal address as an interface's networkIP (given as its IP or its URL, as
 * gcloud's --private-network-ip sends it): an INTERNAL GCE_ENDPOINT address of the
 * interface's subnetwork that nobody else uses.
 */
static bool address_usable_by(struct compute *c, const struct item *a, const json_t *nic,
			      const char *self)
{
	return strcmp(jstr(a->res, "addressType") ?: "", "INTERNAL") == 0 &&
	       strcmp(jstr(a->res, "purpose") ?: "GCE_ENDPOINT", "GCE_ENDPOINT") == 0 &&
	       strcmp(compute_rel(c, jstr(a->res, "subnetwork")),
		      compute_rel(c, jstr(nic, "subnetwork"))) == 0 &&
	       address_free_for(a->res, self);
}

static int nic_allocate(struct compute *c, json_t *nic, const char *owner, const char *self,
			struct api_error *e)
{
	char buf[128], scope[96], sname[128];
	const char *net = network_name_of(c, nic, buf, sizeof(buf)), *want;
	uint32_t taken[2 * 66], lo, hi, plo, phi;
	size_t ntaken = 0, j;
	struct item *sub = NULL, *addr = NULL;
	unsigned p, pp;
	json_t *ar, *ac;
	char *text;
	int ret;

	if (compute_parse_ref(c, jstr(nic, "subnetwork") ?: "", "subnetworks", NULL, scope,
			      sizeof(scope), sname, sizeof(sname)) == 0)
		sub = compute_subnetwork(c, scope + strlen("regions/"), sname);
	if (!net || !sub)
		return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
				     "The resource '%s' was not found",
				     jstr(nic, "subnetwork") ?: "subnetwork");
	/* Explicit ranges first: they are what the client asked for. */
	json_array_foreach(json_object_get(nic, "aliasIpRanges"), j, ar)
	{
		if (cidr4_parse(jstr(ar, "ipCidrRange"), &lo, &hi, &p) < 0)
			continue;
		if (ipindex_overlap(c->ipidx, net, lo, hi, NULL))
			return in_use(e, jstr(ar, "ipCidrRange"));
		taken[2 * ntaken] = lo;
		taken[2 * ntaken++ + 1] = hi;
	}
	if (alias_source(sub->res, NULL, &plo, &phi, &pp) < 0)
		return api_fail(e, 500, "internalError", "subnetwork without a primary range");
	want = jstr(nic, "networkIP");
	if (want && strchr(want, '/')) {
		addr = address_by_ref(c, want, sub->scope);
		if (!addr)
			return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
					     "The resource '%s' was not found",
					     compute_rel(c, want));
		if (ip4_parse(jstr(addr->res, "address"), &lo) < 0 ||
		    !address_usable_by(c, addr, nic, self))
			return in_use(e, jstr(addr->res, "address") ?: want);
	} else if (want) {
		if (ip4_parse(want, &lo) < 0)
			return api_fail(e, 400, "invalid", "Invalid networkIP '%s'", want);
		/* The IP of a reserved address: the interface uses that address. */
		addr = address_holding(c, net, lo);
		if (addr ? !address_usable_by(c, addr, nic, self)
			 : ipindex_overlap(c->ipidx, net, lo, lo, NULL) != NULL)
			return in_use(e, want);
	} else {
		if (ipindex_alloc(c->ipidx, net, plo, phi, 32, NULL, taken, ntaken, &lo) < 0)
			return api_fail_code(e, 400, "ipSpaceExhausted", "IP_SPACE_EXHAUSTED",
					     "The subnetwork '%s' has no free IP address left.",
					     sub->name);
	}
	if (hits(taken, ntaken, lo, lo))
		return in_use(e, want ? want : "networkIP");
	text = ip4_format(lo);
	json_object_set_new(nic, "networkIP", json_string(text ? text : ""));
	free(text);
	/* A reserved address stays the address's in the index; the interface is its user. */
	if (addr) {
		if (address_add_user(c, addr, self) < 0)
			return api_fail(e, 500, "internalError", "out of memory");
	} else {
		taken[2 * ntaken] = lo;
		taken[2 * ntaken++ + 1] = lo;
	}
	json_array_foreach(json_object_get(nic, "aliasIpRanges"), j, ar)
	{
		const char *rn = jstr(ar, "subnetworkRangeName");
		struct alias a;
		uint32_t rlo, rhi, got;
		unsigned rp;

		if (parse_alias(jstr(ar, "ipCidrRange"), &a) < 0 || !a.netmask_only)
			continue;
		if (alias_source(sub->res, rn, &rlo, &rhi, &rp) < 0)
			return api_fail(e, 400, "invalid",
					"Subnetwork '%s' has no secondary range named '%s'.",
					sub->name, rn ? rn : "");
		if (ipindex_alloc(c->ipidx, net, rlo, rhi, a.prefix, NULL, taken, ntaken, &got) < 0)
			return api_fail_code(
			    e, 400, "ipSpaceExhausted", "IP_SPACE_EXHAUSTED",
			    "The %s%s%s range of subnetwork '%s' has no free /%u left.",
			    rn ? "secondary '" : "primary", rn ? rn : "", rn ? "'" : "", sub->name,
			    a.prefix);
		text = cidr4_format(got, a.prefix);
		json_object_set_new(ar, "ipCidrRange", json_string(text ? text : ""));
		free(text);
		taken[2 * ntaken] = got;
		taken[2 * ntaken++ + 1] = got + (uint32_t)((1ull << (32 - a.prefix)) - 1);
	}
	for (j = 0; j < ntaken; j++) {
		ret = ipindex_add(c->ipidx, net, taken[2 * j], taken[2 * j + 1], owner);
		if (ret < 0) {
			ipindex_remove_owner(c->ipidx, net, owner);
			return ret == -EEXIST ? in_use(e, "alias")
					      : api_fail(e, 500, "internalError", "out of memory");
		}
	}
	json_array_foreach(json_object_get(nic, "accessConfigs"), j, ac)
	{
		if (jstr(ac, "natIP"))
			continue;
		/* External addresses are data here: nothing routes to them. */
		text = ip4_format(0x23c00000u + (uint32_t)(++c->nat_counter % 0x3fffff));
		json_object_set_new(ac, "natIP", json_string(text ? text : ""));
		free(text);
	}
	return 0;
}

static int instance_apply_insert(struct compute *c, struct item *it, struct api_error *e)
{
	char *owner = owner_of(it->scope, it->name);
	json_t *nic;
	size_t i;
	int ret = 0;

	if (!owner)
		return api_fail(e, 500, "internalError", "out of memory");
	json_array_foreach(json_object_get(it->res, "networkInterfaces"), i, nic)
	{
		ret = nic_allocate(c, nic, owner, jstr(it->res, "selfLink"), e);
		if (ret < 0) {
			unindex_instance(c, it);
			break;
		}
	}
	free(owner);
	if (ret < 0)
		return ret;
	json_object_set_new(it->res, "status", json_string("RUNNING"));
	json_object_set_new(it->res, "lastStartTimestamp", json_now());
	return 0;
}

static void instance_apply_delete(struct compute *c, struct item *it)
{
	unindex_instance(c, it);
	/* "If you delete an instance, it is removed from the instance groups it belonged to." */
	instance_groups_forget(c, jstr(it->res, "selfLink"));
}

/* ---- updateNetworkInterface ---- */

static json_t *find_nic(json_t *res, const char *name, size_t *index)
{
	json_t *nic;
	size_t i;

	json_array_foreach(json_object_get(res, "networkInterfaces"), i, nic)
	{
		if (strcmp(jstr(nic, "name") ?: "", name) == 0) {
			if (index)
				*index = i;
			return nic;
		}
	}
	return NULL;
}

static struct item *nic_subnet(struct compute *c, const json_t *nic)
{
	char scope[96], sname[128];

	if (compute_parse_ref(c, jstr(nic, "subnetwork") ?: "", "subnetworks", NULL, scope,
			      sizeof(scope), sname, sizeof(sname)) < 0)
		return NULL;
	return compute_subnetwork(c, scope + strlen("regions/"), sname);
}

static bool same_alias(const json_t *a, const json_t *b)
{
	return strcmp(jstr(a, "ipCidrRange") ?: "", jstr(b, "ipCidrRange") ?: "") == 0 &&
	       strcmp(jstr(a, "subnetworkRangeName") ?: "", jstr(b, "subnetworkRangeName") ?: "") ==
		   0;
}

static bool contains_alias(const json_t *list, const json_t *a)
{
	json_t *b;
	size_t i;

	json_array_foreach(list, i, b) if (same_alias(a, b)) return true;
	return false;
}

/* Fields the method may carry unchanged; anything else must equal the current value. */
static bool updatable(const char *key)
{
	static const char *const ok[] = {"aliasIpRanges", "fingerprint", "kind",
					 "name",          "network",     "subnetwork"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(key, ok[i]) == 0)
			return true;
	return false;
}

static int precondition_failed(struct api_error *e, const char *what)
{
	api_fail(e, 412, "conditionNotMet",
		 "Supplied fingerprint does not match current %s fingerprint.", what);
	e->location = "If-Match";
	e->location_type = "header";
	return -EINVAL;
}

/*
 * setLabels (https://cloud.google.com/compute/docs/reference/rest/v1/instances/setLabels)
 * replaces the labels; labelFingerprint must be the current one. A missing or stale one is
 * 412 "Labels fingerprint either invalid or resource labels have changed" (conditionNotMet,
 * as GCP answers it: googleapis/google-cloud-go#7802).
 */
static int labels_fingerprint_mismatch(struct api_error *e)
{
	api_fail(e, 412, "conditionNotMet",
		 "Labels fingerprint either invalid or resource labels have changed");
	e->location = "If-Match";
	e->location_type = "header";
	return -EINVAL;
}

static int update_nic(struct call *k, struct item *it, struct api_error *e)
{
	struct compute *c = k->c;
	const char *nicname = emu_request_query(k->req, "networkInterface");
	const struct sch_message *m = sch_find("NetworkInterface");
	json_t *body = k->body, *nic, *ranges, *v, *old;
	const char *fp, *key;
	struct item *sub;
	char err[512];
	size_t index, i;
	int ret;

	if (!nicname)
		return api_fail(e, 400, "required",
				"Required parameter 'networkInterface' not specified");
	nic = find_nic(it->res, nicname, &index);
	if (!nic)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'networkInterface': '%s'. The instance has no such network interface.",
		    nicname);
	if (!body)
		return api_fail(e, 400, "required", "Required field 'resource' not specified");
	if (sch_check(m, body, "resource", err, sizeof(err)) < 0)
		return api_fail(e, 400, "invalid", "%s", err);
	fp = jstr(body, "fingerprint");
	if (!fp)
		return api_fail(
		    e, 400, "required",
		    "Required field 'resource.fingerprint' not specified: an up-to-date fingerprint must be provided to update the network interface.");
	if (!fingerprint_equal(fp, jstr(nic, "fingerprint")))
		return precondition_failed(e, "network interface");
	json_object_foreach(body, key, v)
	{
		if (strcmp(key, "network") == 0 || strcmp(key, "subnetwork") == 0) {
			char s1[96], n1[128], s2[96], n2[128];
			const char *want = key[0] == 'n' ? "networks" : "subnetworks";

			if (compute_parse_ref(c, json_string_value(v) ?: "", want,
					      key[0] == 'n' ? "global" : NULL, s1, sizeof(s1), n1,
					      sizeof(n1)) == 0 &&
			    compute_parse_ref(c, jstr(nic, key) ?: "", want, NULL, s2, sizeof(s2),
					      n2, sizeof(n2)) == 0 &&
			    strcmp(s1, s2) == 0 && strcmp(n1, n2) == 0)
				continue;
			/* Migrating a VM between networks needs it stopped; ours are RUNNING. */
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.%s': '%s'. The instance must be stopped to move a network interface to another network.",
			    key, json_string_value(v) ?: "");
		}
		if (updatable(key))
			continue;
		old = json_object_get(nic, key);
		if (!old || !json_equal(old, v))
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.%s'. This method can only update an interface's alias IP ranges and attached network.",
			    key);
	}
	ranges = json_object_get(body, "aliasIpRanges");
	if (ranges) {
		json_t *removed = NULL, *added = NULL;
		char field[64];

		sub = nic_subnet(c, nic);
		if (!sub)
			return api_fail(e, 400, "invalid", "The interface's subnetwork is gone.");
		snprintf(field, sizeof(field), "resource.aliasIpRanges");
		ret = check_aliases(ranges, sub->res, sub->name, field, e);
		if (ret < 0)
			return ret;
		old = json_object_get(nic, "aliasIpRanges");
		json_array_foreach(old, i, v) if (!contains_alias(ranges, v)) removed = v;
		json_array_foreach(ranges, i, v) if (!contains_alias(old, v)) added = v;
		if (removed && added)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.aliasIpRanges': alias IP ranges can be added or removed, but not replaced in one request: remove '%s' first, then add '%s'.",
			    jstr(removed, "ipCidrRange"), jstr(added, "ipCidrRange"));
	}
	return op_start(k, "updateNetworkInterface", it->scope, it->name, "instances",
			json_incref(json_object_get(it->res, "id")),
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O*}", "op", "method",
				  "method", "updateNetworkInterface", "collection", "instances",
				  "scope", it->scope, "name", it->name, "nic", nicname,
				  "fingerprint", jstr(nic, "fingerprint"), "aliasIpRanges",
				  ranges));
}

/* Re-indexes one nic with a new alias list; restores the old one on a conflict. */
static int apply_nic_aliases(struct compute *c, struct item *it, json_t *nic, json_t *ranges,
			     struct api_error *e)
{
	char *owner = owner_of(it->scope, it->name), buf[128];
	const char *net = network_name_of(c, nic, buf, sizeof(buf));
	json_t *saved = json_deep_copy(json_object_get(nic, "aliasIpRanges"));
	json_t *list = json_deep_copy(ranges);
	int ret;

	if (!owner || !net || !list) {
		ret = api_fail(e, 500, "internalError", "out of memory");
		goto cleanup;
	}
	ipindex_remove_owner(c->ipidx, net, owner);
	json_object_set(nic, "aliasIpRanges", list);
	ret = nic_allocate(c, nic, owner, jstr(it->res, "selfLink"), e);
	if (ret < 0) {
		/* Put the interface back as it was (its ranges were free a moment ago). */
		struct api_error ignored;

		if (saved)
			json_object_set(nic, "aliasIpRanges", saved);
		else
			json_object_del(nic, "aliasIpRanges");
		nic_allocate(c, nic, owner, jstr(it->res, "selfLink"), &ignored);
	}
	if (json_array_size(json_object_get(nic, "aliasIpRanges")) == 0)
		json_object_del(nic, "aliasIpRanges");
cleanup:
	json_decref(saved);
	json_decref(list);
	free(owner);
	return ret;
}

static int instance_apply_method(struct compute *c, json_t *m, struct api_error *e)
{
	const char *scope = jstr(m, "scope") ?: "", *name = jstr(m, "name") ?: "";
	const char *method = jstr(m, "method") ?: "";
	struct item *it = coll_find(compute_coll(c, "instances"), scope, name);
	json_t *nic;
	int ret = 0;

	if (!it || it->pending) {
		char path[400];

		snprintf(path, sizeof(path), "projects/%s/%s/instances/%s", c->emu->opt.project,
			 scope, name);
		return api_not_found(e, path);
	}
	if (instance_lifecycle_verb(method))
		return instance_lifecycle_apply(c, it, method, e);
	if (strcmp(method, "updateNetworkInterface") == 0) {
		nic = find_nic(it->res, jstr(m, "nic") ?: "", NULL);
		if (!nic)
			return api_fail(e, 400, "invalid", "The network interface is gone.");
		/* Another change landed since this one was accepted: its fingerprint is stale. */
		if (!fingerprint_equal(jstr(m, "fingerprint"), jstr(nic, "fingerprint")))
			return precondition_failed(e, "network interface");
		if (json_object_get(m, "aliasIpRanges"))
			ret = apply_nic_aliases(c, it, nic, json_object_get(m, "aliasIpRanges"), e);
		if (ret < 0)
			return ret;
		set_fingerprint(nic, "fingerprint");
	} else if (strcmp(method, "setMetadata") == 0) {
		json_t *md = json_object_get(it->res, "metadata");

		if (!fingerprint_equal(jstr(m, "fingerprint"), jstr(md, "fingerprint")))
			return precondition_failed(e, "metadata");
		json_object_set(md, "items", json_object_get(m, "items"));
		if (!json_array_size(json_object_get(md, "items")))
			json_object_del(md, "items");
		set_fingerprint(md, "fingerprint");
	} else if (strcmp(method, "setLabels") == 0) {
		if (!fingerprint_equal(jstr(m, "fingerprint"), jstr(it->res, "labelFingerprint")))
			return labels_fingerprint_mismatch(e);
		if (json_object_size(json_object_get(m, "labels")))
			json_object_set(it->res, "labels", json_object_get(m, "labels"));
		else
			json_object_del(it->res, "labels");
		set_fingerprint(it->res, "labelFingerprint");
	} else if (strcmp(method, "setTags") == 0) {
		json_t *tags = json_object_get(it->res, "tags");

		if (!fingerprint_equal(jstr(m, "fingerprint"), jstr(tags, "fingerprint")))
			return precondition_failed(e, "tags");
		if (json_array_size(json_object_get(m, "items")))
			json_object_set(tags, "items", json_object_get(m, "items"));
		else
			json_object_del(tags, "items");
		set_fingerprint(tags, "fingerprint");
	} else {
		return api_fail(e, 500, "internalError", "unknown method '%s'", method);
	}
	instances_notify(c, zone_of_scope(it->scope), it->name, it->res);
	return 0;
}

/*
 * setMetadata (https://cloud.google.com/compute/docs/reference/rest/v1/instances/setMetadata):
 * replaces the items; the metadata fingerprint must be current (412 otherwise).
 */
static int set_metadata(struct call *k, struct item *it, struct api_error *e)
{
	const struct sch_message *m = sch_find("Metadata");
	char err[512];
	const char *fp;
	int ret;

	if (!k->body)
		return api_fail(e, 400, "required", "Required field 'resource' not specified");
	if (sch_check(m, k->body, "resource", err, sizeof(err)) < 0)
		return api_fail(e, 400, "invalid", "%s", err);
	fp = jstr(k->body, "fingerprint");
	if (!fp)
		return api_fail(e, 400, "required",
				"Required field 'resource.fingerprint' not specified");
	if (!fingerprint_equal(fp, jstr(json_object_get(it->res, "metadata"), "fingerprint")))
		return precondition_failed(e, "metadata");
	ret = check_metadata(k->body, "resource", e);
	if (ret < 0)
		return ret;
	return op_start(
	    k, "setMetadata", it->scope, it->name, "instances",
	    json_incref(json_object_get(it->res, "id")),
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "op", "method", "method",
		      "setMetadata", "collection", "instances", "scope", it->scope, "name",
		      it->name, "fingerprint", fp, "items",
		      json_deep_copy(json_object_get(k->body, "items")) ?: json_array()));
}

static int set_labels(struct call *k, struct item *it, struct api_error *e)
{
	const char *fp;
	char err[512];
	int ret;

	if (!k->body)
		return api_fail(e, 400, "required", "Required field 'resource' not specified");
	if (sch_check(sch_find("InstancesSetLabelsRequest"), k->body, "resource", err,
		      sizeof(err)) < 0)
		return api_fail(e, 400, "invalid", "%s", err);
	fp = jstr(k->body, "labelFingerprint");
	if (!fp || !fingerprint_equal(fp, jstr(it->res, "labelFingerprint")))
		return labels_fingerprint_mismatch(e);
	ret = limits_check_resource(k->body, e);
	if (ret < 0)
		return ret;
	return op_start(
	    k, "setLabels", it->scope, it->name, "instances",
	    json_incref(json_object_get(it->res, "id")),
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "op", "method", "method", "setLabels",
		      "collection", "instances", "scope", it->scope, "name", it->name,
		      "fingerprint", fp, "labels",
		      json_deep_copy(json_object_get(k->body, "labels")) ?: json_object()));
}

/*
 * setTags (https://cloud.google.com/compute/docs/reference/rest/v1/instances/setTags): the
 * body is a Tags message; its fingerprint must be the tags' current one (412 otherwise).
 */
static int set_tags(struct call *k, struct item *it, struct api_error *e)
{
	const char *fp;
	char err[512];
	int ret;

	if (!k->body)
		return api_fail(e, 400, "required", "Required field 'resource' not specified");
	if (sch_check(sch_find("Tags"), k->body, "resource", err, sizeof(err)) < 0)
		return api_fail(e, 400, "invalid", "%s", err);
	fp = jstr(k->body, "fingerprint");
	if (!fp)
		return api_fail(e, 400, "required",
				"Required field 'resource.fingerprint' not specified");
	if (!fingerprint_equal(fp, jstr(json_object_get(it->res, "tags"), "fingerprint")))
		return precondition_failed(e, "tags");
	ret = limits_check_tags(k->body, "resource", e);
	if (ret < 0)
		return ret;
	return op_start(
	    k, "setTags", it->scope, it->name, "instances",
	    json_incref(json_object_get(it->res, "id")),
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "op", "method", "method", "setTags",
		      "collection", "instances", "scope", it->scope, "name", it->name,
		      "fingerprint", fp, "items",
		      json_deep_copy(json_object_get(k->body, "items")) ?: json_array()));
}

static int instance_method(struct call *k, struct item *it, struct api_error *e)
{
	const char *m = k->req->method;

	if (k->verb && strcmp(k->verb, "updateNetworkInterface") == 0 && strcmp(m, "PATCH") == 0)
		return update_nic(k, it, e);
	if (k->verb && strcmp(k->verb, "setMetadata") == 0 && strcmp(m, "POST") == 0)
		return set_metadata(k, it, e);
	if (k->verb && strcmp(k->verb, "setLabels") == 0 && strcmp(m, "POST") == 0)
		return set_labels(k, it, e);
	if (k->verb && strcmp(k->verb, "setTags") == 0 && strcmp(m, "POST") == 0)
		return set_tags(k, it, e);
	if (instance_lifecycle_verb(k->verb))
		return instance_lifecycle_method(k, it, e);
	return api_fail(e, 404, "notFound", "The requested URL was not found on this server.");
}

const char *instances_bump_fingerprint(struct compute *c, const char *zone, const char *name,
				       const char *nicname)
{
	char scope[128];
	struct item *it;
	json_t *nic;

	snprintf(scope, sizeof(scope), "zones/%s", zone);
	it = coll_find(compute_coll(c, "instances"), scope, name);
	if (!it || it->pending)
		return NULL;
	nic = find_nic(it->res, nicname ? nicname : "nic0", NULL);
	if (!nic)
		return NULL;
	set_fingerprint(nic, "fingerprint");
	item_changed(c, it);
	return jstr(nic, "fingerprint");
}

const struct coll_type ct_instances = {
    .name = "instances",
    .kind = "compute#instance",
    .list_kind = "compute#instanceList",
    .agg_kind = "compute#instanceAggregatedList",
    .schema = "Instance",
    .scopes = SCOPE_ZONE,
    .prepare_insert = instance_prepare,
    .apply_insert = instance_apply_insert,
    .apply_delete = instance_apply_delete,
    .method = instance_method,
    .apply_method = instance_apply_method,
    .on_load = instance_on_load,
};
