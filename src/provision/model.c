/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster's resources, from design note §2–§4 and DESIGN.md §3:
 *
 *   network NAME (custom mode, MTU) and subnetwork NAME-nodes (secondary ranges pods and
 *   services); router NAME-router with NAT NAME-nat (the nodes have no external address);
 *   firewalls NAME-internal (node, pod and service ranges), NAME-health-checks (Google's
 *   probers to 6443 and the ingress port), NAME-iap-ssh (IAP to 22), NAME-talos-api
 *   (50000/50001 from the node range), NAME-ingress (passthrough only: clients to the ports);
 *   instances NAME-cp-N and NAME-worker-N with a pods /24 alias and no external address;
 *   control plane: address NAME-vip (the VIP, reserved first so no instance gets it), HTTPS
 *   health check NAME-cp on 6443 /readyz (the API server, not Talos' apid), instance groups
 *   NAME-cp-ZONE (named port tcp6443), regional INTERNAL TCP backend service NAME-cp,
 *   forwarding rule NAME-cp on 6443 and 50000; controlPlane.external: the Talos guide's
 *   global TCP proxy NAME-cp-ext (443 -> tcp6443, TCP health check, timeout 5 min);
 *   ingress tcp-proxy (design note §3): global address, TCP health check on the target port,
 *   instance groups NAME-workers-ZONE (named port), global backend service with portName,
 *   target TCP proxy, a global forwarding rule per port; ingress passthrough: regional
 *   external addresses, health check, backend services per protocol, rules per address and
 *   protocol.
 */
#include "provision/model.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/str.h"

/* Google's health-check probers and IAP's TCP forwarding
 * (https://cloud.google.com/load-balancing/docs/health-check-concepts#ip-ranges,
 * https://cloud.google.com/iap/docs/using-tcp-forwarding). A passthrough external load
 * balancer's backend-service health checks also come from 209.85.152.0/22 and 209.85.204.0/22. */
#define HC_RANGE_1    "35.191.0.0/16"
#define HC_RANGE_2    "130.211.0.0/22"
#define HC_RANGE_NLB1 "209.85.152.0/22"
#define HC_RANGE_NLB2 "209.85.204.0/22"
#define IAP_RANGE     "35.235.240.0/20"

const struct rkind_info rkinds[RK_COUNT] = {
    [RK_NETWORK] = {"networks", "network", false, false},
    [RK_SUBNETWORK] = {"subnetworks", "subnetwork", false, true},
    [RK_ROUTER] = {"routers", "router", false, true},
    [RK_FIREWALL] = {"firewalls", "firewall", false, false},
    [RK_ADDRESS] = {"addresses", "address", true, true},
    [RK_IMAGE] = {"images", "image", true, false},
    [RK_INSTANCE] = {"instances", "instance", true, true},
    [RK_HEALTH_CHECK] = {"healthChecks", "health check", false, true},
    [RK_INSTANCE_GROUP] = {"instanceGroups", "instance group", false, true},
    [RK_BACKEND_SERVICE] = {"backendServices", "backend service", false, true},
    [RK_TARGET_TCP_PROXY] = {"targetTcpProxies", "target TCP proxy", false, true},
    [RK_FORWARDING_RULE] = {"forwardingRules", "forwarding rule", true, true},
};

/* ---- resources and sets ---- */

struct resource *resource_new(enum rkind kind, const char *scope, const char *name)
{
	struct resource *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->kind = kind;
	snprintf(r->scope, sizeof(r->scope), "%s", scope);
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->key, sizeof(r->key), "%s/%s/%s", scope, rkinds[kind].collection, name);
	return r;
}

void resource_free(struct resource *r)
{
	if (!r)
		return;
	json_decref(r->body);
	json_decref(r->members);
	for (size_t i = 0; i < r->nneeds; i++)
		free(r->needs[i]);
	free(r->needs);
	free(r);
}

int rset_add(struct resource_set *set, struct resource *r)
{
	if (!r)
		return -ENOMEM;
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 32;
		struct resource **items = realloc(set->items, cap * sizeof(*items));

		if (!items) {
			resource_free(r);
			return -ENOMEM;
		}
		set->items = items;
		set->cap = cap;
	}
	set->items[set->n++] = r;
	return 0;
}

struct resource *rset_find(const struct resource_set *set, const char *key)
{
	for (size_t i = 0; key && i < set->n; i++)
		if (strcmp(set->items[i]->key, key) == 0)
			return set->items[i];
	return NULL;
}

void rset_free(struct resource_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		resource_free(set->items[i]);
	free(set->items);
	memset(set, 0, sizeof(*set));
}

const char *model_key_of(const char *url, const char *project, char *buf, size_t len)
{
	const char *p = url, *v1;
	size_t plen = strlen(project);

	if (!url)
		return NULL;
	v1 = strstr(url, "/compute/v1/");
	if (v1)
		p = v1 + strlen("/compute/v1/");
	else if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0)
		return NULL;
	if (strncmp(p, "projects/", 9) != 0 || strncmp(p + 9, project, plen) != 0 ||
	    p[9 + plen] != '/')
		return NULL;
	snprintf(buf, len, "%s", p + 9 + plen + 1);
	return buf;
}

/* ---- building the desired set ---- */

struct builder {
	const struct cluster_spec *s;
	const char *project;
	struct resource_set *set;
	struct error *err;
	char region[96]; /* "regions/R" */
};

/* "projects/P/KEY" for a body. */
static json_t *ref(const struct builder *b, const char *key)
{
	return json_sprintf("projects/%s/%s", b->project, key);
}

static int need(struct resource *r, const char *key)
{
	char **n;

	for (size_t i = 0; i < r->nneeds; i++)
		if (strcmp(r->needs[i], key) == 0)
			return 0;
	n = realloc(r->needs, (r->nneeds + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	r->needs = n;
	r->needs[r->nneeds] = strdup(key);
	return r->needs[r->nneeds++] ? 0 : -ENOMEM;
}

static json_t *marker_description(const struct builder *b, const char *what)
{
	return json_sprintf("%s of Talos cluster %s, managed by talos-gcp (" MARKER_LABEL "=%s)",
			    what, b->s->name, b->s->name);
}

/* A resource with body (stolen) and the keys it needs. */
static struct resource *add(struct builder *b, enum rkind kind, const char *scope, const char *name,
			    json_t *body, const char *what)
{
	struct resource *r = resource_new(kind, scope, name);

	if (!r || !body) {
		json_decref(body);
		resource_free(r);
		return NULL;
	}
	r->body = body;
	json_object_set_new(body, "name", json_string(name));
	if (rkinds[kind].labels) {
		json_t *labels = json_object_get(body, "labels");

		if (!labels) {
			labels = json_object();
			json_object_set_new(body, "labels", labels);
		}
		json_object_set_new(labels, MARKER_LABEL, json_string(b->s->name));
	}
	json_object_set_new(body, "description", marker_description(b, what));
	if (rset_add(b->set, r) < 0)
		return NULL;
	return r;
}

static int needs(struct resource *r, int n, ...)
{
	va_list ap;
	int ret = 0;

	if (!r)
		return -ENOMEM;
	va_start(ap, n);
	for (int i = 0; i < n && ret == 0; i++) {
		const char *k = va_arg(ap, const char *);

		ret = k ? need(r, k) : -ENOMEM;
	}
	va_end(ap);
	return ret;
}

static int build_network(struct builder *b, char *net_key, size_t nk, char *sub_key, size_t sk)
{
	const struct cluster_spec *s = b->s;
	char name[80];
	struct resource *r;
	int ret;

	snprintf(net_key, nk, "global/networks/%s", s->name);
	r = add(b, RK_NETWORK, "global", s->name,
		json_pack("{s:b, s:i, s:{s:s}}", "autoCreateSubnetworks", 0, "mtu",
			  (int)s->network.mtu, "routingConfig", "routingMode", "REGIONAL"),
		"VPC network");
	if (!r)
		return -ENOMEM;
	snprintf(name, sizeof(name), "%s-nodes", s->name);
	snprintf(sub_key, sk, "%s/subnetworks/%s", b->region, name);
	r = add(b, RK_SUBNETWORK, b->region, name,
		json_pack("{s:o, s:s, s:b, s:[{s:s, s:s}, {s:s, s:s}]}", "network", ref(b, net_key),
			  "ipCidrRange", s->network.node_cidr, "privateIpGoogleAccess", 1,
			  "secondaryIpRanges", "rangeName", "pods", "ipCidrRange",
			  s->network.pod_cidr, "rangeName", "services", "ipCidrRange",
			  s->network.service_cidr),
		"node subnetwork");
	ret = needs(r, 1, net_key);
	if (ret < 0)
		return ret;
	/* Cloud NAT for the nodes' egress (they have no external address), all their ranges. */
	snprintf(name, sizeof(name), "%s-router", s->name);
	r = add(b, RK_ROUTER, b->region, name,
		json_pack("{s:o, s:[{s:s, s:s, s:s, s:[{s:o, s:[s]}]}]}", "network",
			  ref(b, net_key), "nats", "name", "", "natIpAllocateOption", "AUTO_ONLY",
			  "sourceSubnetworkIpRangesToNat", "LIST_OF_SUBNETWORKS", "subnetworks",
			  "name", ref(b, sub_key), "sourceIpRangesToNat", "ALL_IP_RANGES"),
		"Cloud Router");
	if (r) {
		char nat[80];

		snprintf(nat, sizeof(nat), "%s-nat", s->name);
		json_object_set_new(json_array_get(json_object_get(r->body, "nats"), 0), "name",
				    json_string(nat));
	}
	return needs(r, 2, net_key, sub_key);
}

static json_t *allowed(const char *proto, const unsigned *ports, size_t n)
{
	json_t *a = json_pack("{s:s}", "IPProtocol", proto), *list;

	if (!a || !n)
		return a;
	list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, json_sprintf("%u", ports[i]));
	json_object_set_new(a, "ports", list);
	return a;
}

static int firewall(struct builder *b, const char *net_key, const char *suffix, json_t *allow,
		    json_t *sources, json_t *target_tags, const char *what)
{
	char name[80];
	json_t *body =
	    json_pack("{s:o, s:s, s:i, s:o, s:o}", "network", ref(b, net_key), "direction",
		      "INGRESS", "priority", 1000, "allowed", allow, "sourceRanges", sources);
	struct resource *r;

	if (body && target_tags)
		json_object_set_new(body, "targetTags", target_tags);
	else
		json_decref(target_tags);
	snprintf(name, sizeof(name), "%s-%s", b->s->name, suffix);
	r = add(b, RK_FIREWALL, "global", name, body, what);
	return needs(r, 1, net_key);
}

static int build_firewalls(struct builder *b, const char *net_key)
{
	const struct cluster_spec *s = b->s;
	unsigned hc_ports[2] = {6443, s->ingress.target_port};
	unsigned talos[2] = {50000, 50001};
	char tag[80];
	int ret;

	ret = firewall(b, net_key, "internal",
		       json_pack("[o, o, o]", allowed("tcp", NULL, 0), allowed("udp", NULL, 0),
				 allowed("icmp", NULL, 0)),
		       json_pack("[s, s, s]", s->network.node_cidr, s->network.pod_cidr,
				 s->network.service_cidr),
		       NULL, "internal traffic (nodes, pods, services)");
	if (ret == 0) {
		json_t *src = json_pack("[s, s]", HC_RANGE_1, HC_RANGE_2);

		if (s->ingress.type == SPEC_INGRESS_PASSTHROUGH) {
			json_array_append_new(src, json_string(HC_RANGE_NLB1));
			json_array_append_new(src, json_string(HC_RANGE_NLB2));
		}
		ret = firewall(
		    b, net_key, "health-checks",
		    json_pack("[o]", allowed("tcp", hc_ports, s->ingress.type ? 2 : 1)), src, NULL,
		    "Google's health checks (and proxies) to the API server and ingress");
	}
	if (ret == 0)
		ret = firewall(b, net_key, "iap-ssh",
			       json_pack("[o]", allowed("tcp", (unsigned[]){22}, 1)),
			       json_pack("[s]", IAP_RANGE), NULL, "SSH through IAP");
	if (ret == 0)
		ret = firewall(b, net_key, "talos-api", json_pack("[o]", allowed("tcp", talos, 2)),
			       json_pack("[s]", s->network.node_cidr), NULL,
			       "Talos apid and trustd from the nodes");
	if (ret == 0 && s->ingress.type == SPEC_INGRESS_PASSTHROUGH) {
		json_t *allow = json_array();

		/* A passthrough load balancer keeps the client's address: allow the world. */
		if (s->ingress.tcp)
			json_array_append_new(allow,
					      allowed("tcp", s->ingress.ports, s->ingress.nports));
		if (s->ingress.udp)
			json_array_append_new(allow,
					      allowed("udp", s->ingress.ports, s->ingress.nports));
		snprintf(tag, sizeof(tag), "%s-worker", s->name);
		ret =
		    firewall(b, net_key, "ingress", allow, json_pack("[s]", "0.0.0.0/0"),
			     json_pack("[s]", tag), "clients to the ingress ports of the workers");
	}
	return ret;
}

static int build_image(struct builder *b, char *image_ref, size_t len)
{
	const struct cluster_spec *s = b->s;
	const char *proj = s->image.project ? s->image.project : b->project;
	struct resource *r;
	char key[128];

	if (s->image.family) {
		snprintf(image_ref, len, "projects/%s/global/images/family/%s", proj,
			 s->image.family);
		return 0;
	}
	snprintf(image_ref, len, "projects/%s/global/images/%s", proj, s->image.name);
	snprintf(key, sizeof(key), "global/images/%s", s->image.name);
	if (!s->image.source_uri) {
		/* An existing image of this project is checked; another project's is not read. */
		if (s->image.project && strcmp(s->image.project, b->project) != 0)
			return 0;
		r = resource_new(RK_IMAGE, "global", s->image.name);
		if (!r)
			return -ENOMEM;
		r->existing = true;
		snprintf(r->where, sizeof(r->where), "image.name");
		return rset_add(b->set, r);
	}
	/* Talos' GCP guide: the raw disk from the release, with VIRTIO_SCSI_MULTIQUEUE. */
	r = add(b, RK_IMAGE, "global", s->image.name,
		json_pack("{s:{s:s}, s:[{s:s}]}", "rawDisk", "source", s->image.source_uri,
			  "guestOsFeatures", "type", "VIRTIO_SCSI_MULTIQUEUE"),
		"Talos image");
	return r ? 0 : -ENOMEM;
}

static int build_instance(struct builder *b, const struct spec_pool *pool, bool cp, unsigned i,
			  const char *zone, const char *image_ref, const char *sub_key,
			  const char *vip_key)
{
	const struct cluster_spec *s = b->s;
	char name[80], scope[96], tag[80], size[16];
	json_t *body, *labels, *tags, *nic;
	struct resource *r;
	char image_key[160];

	snprintf(name, sizeof(name), "%s-%s-%u", s->name, cp ? "cp" : "worker", i);
	snprintf(scope, sizeof(scope), "zones/%s", zone);
	snprintf(tag, sizeof(tag), "%s-%s", s->name, cp ? "controlplane" : "worker");
	labels = json_pack("{s:s}", ROLE_LABEL, cp ? "controlplane" : "worker");
	for (size_t l = 0; labels && l < pool->nlabels; l++)
		json_object_set_new(labels, pool->labels[l].key,
				    json_string(pool->labels[l].value));
	/* NAME-node on every node: the tag the CCM's own firewall rules target (render -f). */
	tags = json_pack("[s, s]", tag, "");
	if (tags)
		json_array_set_new(tags, 1, json_sprintf("%s-node", s->name));
	for (size_t t = 0; tags && t < pool->ntags; t++)
		json_array_append_new(tags, json_string(pool->tags[t]));
	/* nic0 on the node subnetwork, a /24 of pods allocated by GCP, no external address. */
	snprintf(size, sizeof(size), "%u", pool->disk_size_gb);
	nic = json_pack("{s:o, s:[{s:s, s:s}]}", "subnetwork", ref(b, sub_key), "aliasIpRanges",
			"subnetworkRangeName", "pods", "ipCidrRange", "/24");
	body = json_pack(
	    "{s:o, s:o, s:{s:o}, s:[{s:b, s:b, s:{s:s, s:s, s:o}}], s:[o]}", "machineType",
	    json_sprintf("zones/%s/machineTypes/%s", zone,
			 pool->machine_type ? pool->machine_type : "e2-standard-4"),
	    "labels", labels, "tags", "items", tags, "disks", "boot", 1, "autoDelete", 1,
	    "initializeParams", "sourceImage", image_ref, "diskSizeGb", size, "diskType",
	    json_sprintf("zones/%s/diskTypes/%s", zone,
			 pool->disk_type ? pool->disk_type : "pd-balanced"),
	    "networkInterfaces", nic);
	if (body && pool->user_data)
		json_object_set_new(body, "metadata",
				    json_pack("{s:[{s:s, s:s%}]}", "items", "key", "user-data",
					      "value", pool->user_data, pool->user_data_len));
	if (body && pool->service_account)
		json_object_set_new(body, "serviceAccounts",
				    json_pack("[{s:s, s:[s]}]", "email", pool->service_account,
					      "scopes",
					      "https://www.googleapis.com/auth/cloud-platform"));
	r = add(b, RK_INSTANCE, scope, name, body, cp ? "control-plane node" : "worker node");
	if (!r)
		return -ENOMEM;
	/* The VIP is reserved before any instance takes an address of the range. */
	if (needs(r, 2, sub_key, vip_key) < 0)
		return -ENOMEM;
	if (model_key_of(image_ref, b->project, image_key, sizeof(image_key)) &&
	    !strstr(image_key, "/family/"))
		return need(r, image_key);
	return 0;
}

/* Instance keys per zone of a pool (created and existing), as groups want them. */
static int pool_members(struct builder *b, const struct spec_pool *pool, bool cp, json_t *by_zone)
{
	const struct cluster_spec *s = b->s;

	for (unsigned i = 0; i < pool->count; i++) {
		const char *zone = spec_zone_of(s, i);
		json_t *list = json_object_get(by_zone, zone);

		if (!list) {
			list = json_array();
			json_object_set_new(by_zone, zone, list);
		}
		json_array_append_new(list, json_sprintf("zones/%s/instances/%s-%s-%u", zone,
							 s->name, cp ? "cp" : "worker", i));
	}
	for (size_t i = 0; i < pool->nexisting; i++) {
		const struct spec_existing *e = &pool->existing[i];
		json_t *list;

		if (!e->zone)
			return error_set(b->err, EINVAL, "%s: existing instance %s: zone unknown",
					 s->path, e->name);
		list = json_object_get(by_zone, e->zone);
		if (!list) {
			list = json_array();
			json_object_set_new(by_zone, e->zone, list);
		}
		json_array_append_new(list,
				      json_sprintf("zones/%s/instances/%s", e->zone, e->name));
	}
	return 0;
}

/* Unmanaged instance groups NAME-PREFIX-ZONE, one per zone with members. */
static int build_groups(struct builder *b, const struct spec_pool *pool, bool cp,
			const char *prefix, const char *net_key, const char *port_name,
			unsigned port, json_t *group_keys)
{
	json_t *by_zone = json_object(), *list;
	const char *zone;
	int ret;

	if (!by_zone)
		return -ENOMEM;
	ret = pool_members(b, pool, cp, by_zone);
	json_object_foreach(by_zone, zone, list)
	{
		char name[128], scope[96];
		struct resource *r;

		if (ret < 0)
			break;
		snprintf(name, sizeof(name), "%s-%s-%s", b->s->name, prefix, zone);
		snprintf(scope, sizeof(scope), "zones/%s", zone);
		r = add(b, RK_INSTANCE_GROUP, scope, name,
			json_pack("{s:o, s:[{s:s, s:i}]}", "network", ref(b, net_key), "namedPorts",
				  "name", port_name, "port", (int)port),
			cp ? "control-plane instance group" : "worker instance group");
		ret = needs(r, 1, net_key);
		if (ret < 0)
			break;
		r->members = json_incref(list);
		json_array_append_new(group_keys, json_string(r->key));
	}
	json_decref(by_zone);
	return ret;
}

static json_t *backends(const struct builder *b, const json_t *group_keys, const char *mode)
{
	json_t *list = json_array(), *k;
	size_t i;

	json_array_foreach(group_keys, i, k)
	{
		json_t *be = json_pack("{s:o}", "group", ref(b, json_string_value(k)));

		if (be && mode)
			json_object_set_new(be, "balancingMode", json_string(mode));
		json_array_append_new(list, be);
	}
	return list;
}

static int needs_all(struct resource *r, const json_t *keys)
{
	json_t *k;
	size_t i;

	if (!r)
		return -ENOMEM;
	json_array_foreach(keys, i, k) if (need(r, json_string_value(k)) < 0) return -ENOMEM;
	return 0;
}

static json_t *tcp_check(unsigned port)
{
	return json_pack("{s:s, s:{s:i}, s:i, s:i, s:i, s:i}", "type", "TCP", "tcpHealthCheck",
			 "port", (int)port, "checkIntervalSec", 5, "timeoutSec", 5,
			 "healthyThreshold", 2, "unhealthyThreshold", 2);
}

/*
 * A global external TCP proxy load balancer NAME: address, backend service (the groups, on
 * the named port), target TCP proxy, and a forwarding rule per port (NAME, or NAME-PORT when
 * suffixed). The health check hc_key exists already.
 */
static int tcp_proxy_lb(struct builder *b, const char *name, const char *what, const char *hc_key,
			const json_t *groups, const char *port_name, int timeout,
			const unsigned *ports, size_t nports, bool suffixed)
{
	char addr_key[160], bs_key[160], proxy_key[160], label[96];
	struct resource *r;
	int ret;

	snprintf(addr_key, sizeof(addr_key), "global/addresses/%s", name);
	snprintf(bs_key, sizeof(bs_key), "global/backendServices/%s", name);
	snprintf(proxy_key, sizeof(proxy_key), "global/targetTcpProxies/%s", name);
	snprintf(label, sizeof(label), "%s address", what);
	if (!add(b, RK_ADDRESS, "global", name, json_pack("{s:s}", "addressType", "EXTERNAL"),
		 label))
		return -ENOMEM;
	snprintf(label, sizeof(label), "%s backend service", what);
	r = add(b, RK_BACKEND_SERVICE, "global", name,
		json_pack("{s:s, s:s, s:s, s:i, s:[o], s:o}", "loadBalancingScheme", "EXTERNAL",
			  "protocol", "TCP", "portName", port_name, "timeoutSec", timeout,
			  "healthChecks", ref(b, hc_key), "backends", backends(b, groups, NULL)),
		label);
	ret = needs(r, 1, hc_key);
	if (ret == 0)
		ret = needs_all(r, groups);
	if (ret < 0)
		return ret;
	snprintf(label, sizeof(label), "%s TCP proxy", what);
	r = add(b, RK_TARGET_TCP_PROXY, "global", name,
		json_pack("{s:o, s:s}", "service", ref(b, bs_key), "proxyHeader", "NONE"), label);
	ret = needs(r, 1, bs_key);
	for (size_t i = 0; ret == 0 && i < nports; i++) {
		char rule[128];

		if (suffixed)
			snprintf(rule, sizeof(rule), "%s-%u", name, ports[i]);
		else
			snprintf(rule, sizeof(rule), "%s", name);
		snprintf(label, sizeof(label), "%s endpoint", what);
		r = add(b, RK_FORWARDING_RULE, "global", rule,
			json_pack("{s:s, s:s, s:o, s:o, s:o}", "loadBalancingScheme", "EXTERNAL",
				  "IPProtocol", "TCP", "IPAddress", ref(b, addr_key), "portRange",
				  json_sprintf("%u", ports[i]), "target", ref(b, proxy_key)),
			label);
		ret = needs(r, 2, addr_key, proxy_key);
	}
	return ret;
}

static int build_control_plane(struct builder *b, const char *net_key, const char *sub_key,
			       const char *vip_key)
{
	const struct cluster_spec *s = b->s;
	json_t *groups = json_array();
	char name[96], hc_key[160], bs_key[160];
	struct resource *r;
	int ret;

	if (!groups)
		return -ENOMEM;
	ret = build_groups(b, &s->control_plane, true, "cp", net_key, "tcp6443", 6443, groups);
	if (ret < 0)
		goto cleanup;
	/* The API server itself: HTTPS /readyz on 6443, not apid on 50000. */
	snprintf(name, sizeof(name), "%s-cp", s->name);
	snprintf(hc_key, sizeof(hc_key), "%s/healthChecks/%s", b->region, name);
	r = add(b, RK_HEALTH_CHECK, b->region, name,
		json_pack("{s:s, s:{s:i, s:s}, s:i, s:i, s:i, s:i}", "type", "HTTPS",
			  "httpsHealthCheck", "port", 6443, "requestPath", "/readyz",
			  "checkIntervalSec", 5, "timeoutSec", 5, "healthyThreshold", 2,
			  "unhealthyThreshold", 2),
		"API server health check");
	if (!r) {
		ret = -ENOMEM;
		goto cleanup;
	}
	snprintf(bs_key, sizeof(bs_key), "%s/backendServices/%s", b->region, name);
	r = add(b, RK_BACKEND_SERVICE, b->region, name,
		json_pack("{s:s, s:s, s:o, s:[o], s:o}", "loadBalancingScheme", "INTERNAL",
			  "protocol", "TCP", "network", ref(b, net_key), "healthChecks",
			  ref(b, hc_key), "backends", backends(b, groups, "CONNECTION")),
		"control-plane internal load balancer");
	ret = needs(r, 2, net_key, hc_key);
	if (ret == 0)
		ret = needs_all(r, groups);
	if (ret < 0)
		goto cleanup;
	r = add(b, RK_FORWARDING_RULE, b->region, name,
		json_pack("{s:s, s:s, s:o, s:[s, s], s:o, s:o, s:o}", "loadBalancingScheme",
			  "INTERNAL", "IPProtocol", "TCP", "IPAddress", ref(b, vip_key), "ports",
			  "6443", "50000", "backendService", ref(b, bs_key), "subnetwork",
			  ref(b, sub_key), "network", ref(b, net_key)),
		"control-plane VIP (Kubernetes API and talosctl)");
	ret = needs(r, 4, vip_key, bs_key, sub_key, net_key);
	if (ret < 0 || !s->cp_external)
		goto cleanup;
	{
		/* Talos' GCP guide: a global TCP proxy on 443 to the API servers. */
		char ext[96], ehc_key[160];

		snprintf(ext, sizeof(ext), "%s-cp-ext", s->name);
		snprintf(ehc_key, sizeof(ehc_key), "global/healthChecks/%s", ext);
		if (!add(b, RK_HEALTH_CHECK, "global", ext, tcp_check(6443),
			 "external control-plane health check")) {
			ret = -ENOMEM;
			goto cleanup;
		}
		ret = tcp_proxy_lb(b, ext, "external control-plane", ehc_key, groups, "tcp6443",
				   300, &s->cp_external_port, 1, false);
	}
cleanup:
	json_decref(groups);
	return ret;
}

static int build_ingress(struct builder *b, const char *net_key)
{
	const struct cluster_spec *s = b->s;
	bool proxy = s->ingress.type == SPEC_INGRESS_TCP_PROXY;
	const char *scope = proxy ? "global" : b->region;
	char name[96], port_name[32], hc_key[160];
	json_t *groups = json_array();
	struct resource *r;
	int ret;

	if (!groups)
		return -ENOMEM;
	snprintf(port_name, sizeof(port_name), "tcp%u", s->ingress.target_port);
	ret = build_groups(b, &s->workers, false, "workers", net_key, port_name,
			   s->ingress.target_port, groups);
	if (ret < 0)
		goto cleanup;
	snprintf(name, sizeof(name), "%s-ingress", s->name);
	snprintf(hc_key, sizeof(hc_key), "%s/healthChecks/%s", scope, name);
	if (!add(b, RK_HEALTH_CHECK, scope, name, tcp_check(s->ingress.target_port),
		 "ingress health check")) {
		ret = -ENOMEM;
		goto cleanup;
	}
	if (proxy) {
		ret = tcp_proxy_lb(b, name, "ingress", hc_key, groups, port_name, 30,
				   s->ingress.ports, s->ingress.nports, true);
		goto cleanup;
	}
	/* Passthrough: a regional backend service per protocol, a rule per address and protocol. */
	for (int udp = 0; udp <= 1 && ret == 0; udp++) {
		const char *proto = udp ? "UDP" : "TCP";
		char bs[128], bs_key[192];

		if ((udp && !s->ingress.udp) || (!udp && !s->ingress.tcp))
			continue;
		snprintf(bs, sizeof(bs), "%s-%s", name, udp ? "udp" : "tcp");
		snprintf(bs_key, sizeof(bs_key), "%s/backendServices/%s", b->region, bs);
		r = add(b, RK_BACKEND_SERVICE, b->region, bs,
			json_pack("{s:s, s:s, s:[o], s:o}", "loadBalancingScheme", "EXTERNAL",
				  "protocol", proto, "healthChecks", ref(b, hc_key), "backends",
				  backends(b, groups, "CONNECTION")),
			"ingress backend service");
		ret = needs(r, 1, hc_key);
		if (ret == 0)
			ret = needs_all(r, groups);
		for (unsigned a = 0; ret == 0 && a < s->ingress.addresses; a++) {
			char addr[128], addr_key[192], rule[160];
			json_t *ports = json_array();

			if (a == 0)
				snprintf(addr, sizeof(addr), "%s", name);
			else
				snprintf(addr, sizeof(addr), "%s-%u", name, a);
			snprintf(addr_key, sizeof(addr_key), "%s/addresses/%s", b->region, addr);
			if (!udp && !add(b, RK_ADDRESS, b->region, addr,
					 json_pack("{s:s}", "addressType", "EXTERNAL"),
					 "ingress address")) {
				json_decref(ports);
				ret = -ENOMEM;
				break;
			}
			if (udp && !s->ingress.tcp &&
			    !add(b, RK_ADDRESS, b->region, addr,
				 json_pack("{s:s}", "addressType", "EXTERNAL"),
				 "ingress address")) {
				json_decref(ports);
				ret = -ENOMEM;
				break;
			}
			for (size_t i = 0; i < s->ingress.nports; i++)
				json_array_append_new(ports,
						      json_sprintf("%u", s->ingress.ports[i]));
			snprintf(rule, sizeof(rule), "%s-%s", addr, udp ? "udp" : "tcp");
			r = add(b, RK_FORWARDING_RULE, b->region, rule,
				json_pack("{s:s, s:s, s:o, s:o, s:o}", "loadBalancingScheme",
					  "EXTERNAL", "IPProtocol", proto, "IPAddress",
					  ref(b, addr_key), "ports", ports, "backendService",
					  ref(b, bs_key)),
				"ingress endpoint");
			ret = needs(r, 2, addr_key, bs_key);
		}
	}
cleanup:
	json_decref(groups);
	return ret;
}

int model_desired(const struct cluster_spec *s, const char *project, struct resource_set *out,
		  struct error *err)
{
	struct builder b = {.s = s, .project = project, .set = out, .err = err};
	char net_key[160], sub_key[192], vip_key[192], image_ref[256], name[96];
	struct resource *r;
	int ret;

	memset(out, 0, sizeof(*out));
	snprintf(b.region, sizeof(b.region), "regions/%s", s->region);
	ret = build_network(&b, net_key, sizeof(net_key), sub_key, sizeof(sub_key));
	if (ret == 0)
		ret = build_firewalls(&b, net_key);
	if (ret == 0)
		ret = build_image(&b, image_ref, sizeof(image_ref));
	if (ret < 0)
		goto fail;
	snprintf(name, sizeof(name), "%s-vip", s->name);
	snprintf(vip_key, sizeof(vip_key), "%s/addresses/%s", b.region, name);
	r = add(&b, RK_ADDRESS, b.region, name,
		json_pack("{s:s, s:s, s:o}", "addressType", "INTERNAL", "address", s->network.vip,
			  "subnetwork", ref(&b, sub_key)),
		"control-plane VIP");
	ret = needs(r, 1, sub_key);
	for (unsigned i = 0; ret == 0 && i < s->control_plane.count; i++)
		ret = build_instance(&b, &s->control_plane, true, i, spec_zone_of(s, i), image_ref,
				     sub_key, vip_key);
	for (unsigned i = 0; ret == 0 && i < s->workers.count; i++)
		ret = build_instance(&b, &s->workers, false, i, spec_zone_of(s, i), image_ref,
				     sub_key, vip_key);
	for (int w = 0; ret == 0 && w < 2; w++) {
		const struct spec_pool *pool = w ? &s->workers : &s->control_plane;

		for (size_t i = 0; ret == 0 && i < pool->nexisting; i++) {
			char scope[96];

			snprintf(scope, sizeof(scope), "zones/%s",
				 pool->existing[i].zone ? pool->existing[i].zone : "-");
			r = resource_new(RK_INSTANCE, scope, pool->existing[i].name);
			if (!r) {
				ret = -ENOMEM;
				break;
			}
			r->existing = true;
			snprintf(r->where, sizeof(r->where), "%s.existing[%zu]",
				 w ? "workers" : "controlPlane", i);
			ret = rset_add(out, r);
		}
	}
	if (ret == 0)
		ret = build_control_plane(&b, net_key, sub_key, vip_key);
	if (ret == 0 && s->ingress.type != SPEC_INGRESS_NONE)
		ret = build_ingress(&b, net_key);
	if (ret == 0)
		return 0;
fail:
	rset_free(out);
	if (ret != -ENOMEM && err && err->code)
		return ret;
	return error_set(err, -ret, "cannot build the desired resources: %s", strerror(-ret));
}

/* ---- ownership ---- */

bool model_owned(enum rkind kind, const json_t *res, const char *cluster)
{
	const char *d, *at;
	size_t n = strlen(cluster);

	if (rkinds[kind].labels) {
		const char *v = json_path_str(res, "labels." MARKER_LABEL);

		return v && strcmp(v, cluster) == 0;
	}
	d = json_str(res, "description");
	for (at = d ? strstr(d, MARKER_LABEL "=") : NULL; at;
	     at = strstr(at + 1, MARKER_LABEL "=")) {
		const char *v = at + strlen(MARKER_LABEL "=");

		if (strncmp(v, cluster, n) == 0 &&
		    (v[n] == '\0' || v[n] == ')' || v[n] == ' ' || v[n] == ';' || v[n] == ','))
			return true;
	}
	return false;
}

/* ---- views ---- */

static int cmp_json_str(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
		      json_string_value(*(json_t *const *)b));
}

/* An array of strings, sorted (a set). Steals list. */
static json_t *sorted(json_t *list)
{
	size_t n = json_array_size(list);
	json_t **v, *out;

	if (!list || n < 2)
		return list ? list : json_array();
	v = calloc(n, sizeof(*v));
	if (!v)
		return list;
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(list, i);
	qsort(v, n, sizeof(*v), cmp_json_str);
	out = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	json_decref(list);
	return out;
}

/* A reference as a key; a foreign or odd URL stays as it is. */
static json_t *keyed(const char *url, const char *project)
{
	char buf[256];
	const char *k = model_key_of(url, project, buf, sizeof(buf));

	if (!url)
		return json_null();
	return json_string(k ? k : url);
}

static json_t *strings_keyed(const json_t *list, const char *project)
{
	json_t *out = json_array(), *v;
	size_t i;

	json_array_foreach(list, i, v)
	    json_array_append_new(out, keyed(json_string_value(v), project));
	return sorted(out);
}

static void put(json_t *view, const char *k, json_t *v)
{
	json_object_set_new(view, k, v ? v : json_null());
}

static json_t *copy_or_null(const json_t *v)
{
	return v ? json_deep_copy(v) : json_null();
}

static json_t *int_of(const json_t *v)
{
	if (json_is_integer(v))
		return json_integer(json_integer_value(v));
	if (json_is_string(v) && *json_string_value(v)) {
		char *end;
		long long x = strtoll(json_string_value(v), &end, 10);

		if (*end == '\0')
			return json_integer(x);
	}
	return json_null();
}

static json_t *view_network(const json_t *b)
{
	return json_pack("{s:b, s:o}", "autoCreateSubnetworks",
			 json_is_true(json_object_get(b, "autoCreateSubnetworks")), "mtu",
			 json_object_get(b, "mtu") ? int_of(json_object_get(b, "mtu"))
						   : json_integer(1460));
}

static json_t *view_subnetwork(const json_t *b, const char *project)
{
	json_t *ranges = json_array(), *r;
	size_t i;

	json_array_foreach(json_object_get(b, "secondaryIpRanges"), i, r)
	    json_array_append_new(ranges, json_sprintf("%s=%s", json_str(r, "rangeName") ?: "",
						       json_str(r, "ipCidrRange") ?: ""));
	return json_pack("{s:o, s:o, s:o}", "network", keyed(json_str(b, "network"), project),
			 "ipCidrRange", copy_or_null(json_object_get(b, "ipCidrRange")),
			 "secondaryIpRanges", sorted(ranges));
}

static json_t *view_router(const json_t *b, const char *project)
{
	json_t *nats = json_array(), *nat;
	size_t i;

	/* Each NAT as one comparable string: name, options, subnetworks and their ranges. */
	json_array_foreach(json_object_get(b, "nats"), i, nat)
	{
		json_t *subs = json_array(), *s;
		char *subtext;
		size_t j;

		json_array_foreach(json_object_get(nat, "subnetworks"), j, s)
		{
			json_t *ranges =
			    sorted(json_deep_copy(json_object_get(s, "sourceIpRangesToNat")));
			char *r = json_dumps(ranges, JSON_COMPACT);
			char buf[256];
			const char *k =
			    model_key_of(json_str(s, "name"), project, buf, sizeof(buf));

			json_array_append_new(
			    subs, json_sprintf("%s %s", k ? k : json_str(s, "name") ?: "", r ? r : ""));
			free(r);
			json_decref(ranges);
		}
		subs = sorted(subs);
		subtext = json_dumps(subs, JSON_COMPACT);
		json_array_append_new(
		    nats, json_sprintf("%s %s %s %s", json_str(nat, "name") ?: "",
				       json_str(nat, "natIpAllocateOption") ?: "",
				       json_str(nat, "sourceSubnetworkIpRangesToNat") ?: "",
				       subtext ? subtext : "[]"));
		free(subtext);
		json_decref(subs);
	}
	return json_pack("{s:o, s:o}", "network", keyed(json_str(b, "network"), project), "nats",
			 sorted(nats));
}

static json_t *view_firewall(const json_t *b, const char *project)
{
	json_t *allow = json_array(), *a;
	size_t i;

	json_array_foreach(json_object_get(b, "allowed"), i, a)
	{
		json_t *ports = sorted(json_deep_copy(json_object_get(a, "ports")));
		char *p = json_array_size(ports) ? json_dumps(ports, JSON_COMPACT) : NULL;

		json_array_append_new(allow, json_sprintf("%s%s%s", json_str(a, "IPProtocol") ?: "",
							  p ? ":" : "", p ? p : ""));
		free(p);
		json_decref(ports);
	}
	return json_pack("{s:o, s:s, s:o, s:o, s:o, s:o}", "network",
			 keyed(json_str(b, "network"), project), "direction",
			 json_str(b, "direction") ?: "INGRESS", "priority",
			 json_object_get(b, "priority") ? int_of(json_object_get(b, "priority"))
							: json_integer(1000),
			 "allowed", sorted(allow), "sourceRanges",
			 sorted(json_deep_copy(json_object_get(b, "sourceRanges"))), "targetTags",
			 sorted(json_deep_copy(json_object_get(b, "targetTags"))));
}

static json_t *view_address(const json_t *b, bool desired, const char *project)
{
	json_t *v = json_pack("{s:s}", "addressType", json_str(b, "addressType") ?: "EXTERNAL");

	/* An external address is GCP's choice: only the desired ones with an IP compare it. */
	if (!desired || json_str(b, "address"))
		put(v, "address", copy_or_null(json_object_get(b, "address")));
	if (json_str(b, "subnetwork") || !desired)
		put(v, "subnetwork", keyed(json_str(b, "subnetwork"), project));
	return v;
}

static json_t *view_image(const json_t *b)
{
	return json_pack("{s:o}", "rawDisk.source", copy_or_null(json_path(b, "rawDisk.source")));
}

static json_t *digest(const char *s, size_t len)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 8];

	SHA256((const unsigned char *)s, len, md);
	for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return json_sprintf("sha256:%.16s", hex);
}

static json_t *view_instance(const json_t *b, const char *project)
{
	json_t *nic = json_array_get(json_object_get(b, "networkInterfaces"), 0);
	json_t *disk = json_array_get(json_object_get(b, "disks"), 0), *item, *ar;
	json_t *labels = json_deep_copy(json_object_get(b, "labels")) ?: json_object();
	const char *sa =
	    json_str(json_array_get(json_object_get(b, "serviceAccounts"), 0), "email");
	json_t *ud = json_null(), *size;
	bool pods = false;
	size_t i;

	json_array_foreach(json_path(b, "metadata.items"), i, item)
	{
		if (strcmp(json_str(item, "key") ?: "", "user-data") == 0 &&
		    json_str(item, "value")) {
			json_decref(ud);
			ud = digest(json_str(item, "value"),
				    json_string_length(json_object_get(item, "value")));
		}
	}
	json_array_foreach(json_object_get(nic, "aliasIpRanges"), i, ar) pods |=
	    strcmp(json_str(ar, "subnetworkRangeName") ?: "", "pods") == 0;
	/* The default service account reads back as its e-mail address. */
	if (sa && strstr(sa, "-compute@developer.gserviceaccount.com"))
		sa = "default";
	size = disk ? int_of(json_object_get(json_object_get(disk, "initializeParams") ?: disk,
					     "diskSizeGb"))
		    : json_null();
	return json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:b}", "machineType",
			 strrchr(json_str(b, "machineType") ?: "/", '/') + 1, "diskSizeGb", size,
			 "tags", sorted(json_deep_copy(json_path(b, "tags.items"))), "labels",
			 labels, "userData", ud, "serviceAccount", sa ? sa : "", "subnetwork",
			 keyed(json_str(nic, "subnetwork"), project), "podsRange", pods);
}

static json_t *view_health_check(const json_t *b)
{
	static const char *const subs[] = {"tcpHealthCheck",   "sslHealthCheck",
					   "httpHealthCheck",  "httpsHealthCheck",
					   "http2HealthCheck", "grpcHealthCheck"};
	json_t *v = json_pack("{s:s}", "type", json_str(b, "type") ?: "");
	const char *fields[] = {"checkIntervalSec", "timeoutSec", "healthyThreshold",
				"unhealthyThreshold"};
	const int dflt[] = {5, 5, 2, 2};

	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		json_t *s = json_object_get(b, subs[i]);

		if (!s)
			continue;
		put(v, "port", int_of(json_object_get(s, "port")));
		if (json_str(s, "requestPath"))
			put(v, "requestPath", json_string(json_str(s, "requestPath")));
	}
	for (size_t i = 0; i < 4; i++)
		put(v, fields[i],
		    json_object_get(b, fields[i]) ? int_of(json_object_get(b, fields[i]))
						  : json_integer(dflt[i]));
	return v;
}

static json_t *view_instance_group(const json_t *b, const char *project)
{
	json_t *ports = json_array(), *np;
	size_t i;

	json_array_foreach(json_object_get(b, "namedPorts"), i, np) json_array_append_new(
	    ports, json_sprintf("%s:%lld", json_str(np, "name") ?: "",
				(long long)json_integer_value(json_object_get(np, "port"))));
	return json_pack("{s:o, s:o}", "network", keyed(json_str(b, "network"), project),
			 "namedPorts", sorted(ports));
}

static json_t *view_backend_service(const json_t *b, bool desired, const char *project)
{
	json_t *groups = json_array(), *be;
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(b, "backends"), i, be)
	    json_array_append_new(groups, keyed(json_str(be, "group"), project));
	v = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "loadBalancingScheme",
		      json_str(b, "loadBalancingScheme") ?: "", "protocol",
		      json_str(b, "protocol") ?: "", "portName",
		      json_str(b, "portName") ? json_string(json_str(b, "portName"))
					      : json_string(""),
		      "timeoutSec",
		      json_object_get(b, "timeoutSec") ? int_of(json_object_get(b, "timeoutSec"))
						       : json_integer(30),
		      "healthChecks", strings_keyed(json_object_get(b, "healthChecks"), project),
		      "backends", sorted(groups));
	if (!desired || json_str(b, "network"))
		put(v, "network", keyed(json_str(b, "network"), project));
	return v;
}

static json_t *view_proxy(const json_t *b, const char *project)
{
	return json_pack("{s:o, s:s}", "service", keyed(json_str(b, "service"), project),
			 "proxyHeader", json_str(b, "proxyHeader") ?: "NONE");
}

/* "80" and "80-80" are one port. */
static json_t *port_range(const char *r)
{
	const char *dash;

	if (!r)
		return json_null();
	dash = strchr(r, '-');
	if (dash && strlen(dash + 1) == (size_t)(dash - r) &&
	    strncmp(r, dash + 1, (size_t)(dash - r)) == 0)
		return json_stringn(r, (size_t)(dash - r));
	return json_string(r);
}

static json_t *view_rule(const json_t *b, bool desired, const struct resource_set *live,
			 const char *project)
{
	const char *ip = json_str(b, "IPAddress");
	json_t *addr = json_null();
	char buf[256];

	if (ip && desired) {
		/* The reserved address's IP: known once it exists (or when the spec gives it). */
		const char *k = model_key_of(ip, project, buf, sizeof(buf));
		const struct resource *a = k && live ? rset_find(live, k) : NULL;

		json_decref(addr);
		if (a && json_str(a->body, "address"))
			addr = json_string(json_str(a->body, "address"));
		else
			addr = json_sprintf("(the address of %s)", k ? k : ip);
	} else if (ip) {
		addr = json_string(ip);
	}
	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "loadBalancingScheme",
			 json_str(b, "loadBalancingScheme") ?: "EXTERNAL", "IPProtocol",
			 json_str(b, "IPProtocol") ?: "TCP", "IPAddress", addr, "ports",
			 sorted(json_deep_copy(json_object_get(b, "ports"))), "portRange",
			 port_range(json_str(b, "portRange")), "target",
			 keyed(json_str(b, "target"), project), "backendService",
			 keyed(json_str(b, "backendService"), project), "subnetwork",
			 keyed(json_str(b, "subnetwork"), project), "network",
			 keyed(json_str(b, "network"), project));
}

json_t *model_view(const struct resource *r, bool desired, const struct resource_set *live,
		   const char *project)
{
	const json_t *b = r->body;

	switch (r->kind) {
	case RK_NETWORK:
		return view_network(b);
	case RK_SUBNETWORK:
		return view_subnetwork(b, project);
	case RK_ROUTER:
		return view_router(b, project);
	case RK_FIREWALL:
		return view_firewall(b, project);
	case RK_ADDRESS:
		return view_address(b, desired, project);
	case RK_IMAGE:
		return view_image(b);
	case RK_INSTANCE:
		return view_instance(b, project);
	case RK_HEALTH_CHECK:
		return view_health_check(b);
	case RK_INSTANCE_GROUP:
		return view_instance_group(b, project);
	case RK_BACKEND_SERVICE:
		return view_backend_service(b, desired, project);
	case RK_TARGET_TCP_PROXY:
		return view_proxy(b, project);
	case RK_FORWARDING_RULE:
		return view_rule(b, desired, live, project);
	default:
		return json_object();
	}
}

enum model_update model_field_update(enum rkind kind, const char *field)
{
	switch (kind) {
	case RK_SUBNETWORK:
		return strcmp(field, "secondaryIpRanges") == 0 ? MU_PATCH : MU_REPLACE;
	case RK_ROUTER:
		return strcmp(field, "nats") == 0 ? MU_PATCH : MU_REPLACE;
	case RK_FIREWALL:
		return strcmp(field, "network") == 0 || strcmp(field, "direction") == 0 ? MU_REPLACE
											: MU_PATCH;
	case RK_HEALTH_CHECK:
		return MU_PATCH;
	case RK_INSTANCE:
		if (strcmp(field, "userData") == 0)
			return MU_SET_METADATA;
		if (strcmp(field, "podsRange") == 0)
			return MU_ADD_POD_RANGE;
		/* Labels and tags change in place on a running instance; the rest replaces it. */
		if (strcmp(field, "labels") == 0)
			return MU_SET_LABELS;
		if (strcmp(field, "tags") == 0)
			return MU_SET_TAGS;
		return MU_REPLACE;
	case RK_INSTANCE_GROUP:
		return strcmp(field, "namedPorts") == 0 ? MU_NAMED_PORTS : MU_REPLACE;
	case RK_BACKEND_SERVICE:
		return strcmp(field, "loadBalancingScheme") == 0 || strcmp(field, "network") == 0
			   ? MU_REPLACE
			   : MU_PATCH;
	case RK_TARGET_TCP_PROXY:
		return strcmp(field, "service") == 0 ? MU_SET_SERVICE : MU_PROXY_HEADER;
	default:
		return MU_REPLACE;
	}
}

bool model_field_sensitive(enum rkind kind, const char *field)
{
	return kind == RK_INSTANCE && strcmp(field, "userData") == 0;
}
