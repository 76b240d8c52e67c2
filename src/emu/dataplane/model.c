/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The desired data plane, read from the emulator's state as it is now: the Compute
 * collections (instances, subnetworks, firewalls, forwarding rules, backend services,
 * instance groups, health checks, routers) and the Nodes of the emulated cluster.
 *
 * Only what GCP's data plane acts on is read. An instance is on the network while it is
 * RUNNING (https://cloud.google.com/compute/docs/instances/instance-lifecycle: a STOPPING,
 * TERMINATED or SUSPENDED instance has no running guest); its nic0 is materialised (further
 * interfaces are in other VPC networks and are not emulated).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "emu/compute/compute.h"
#include "emu/dataplane/dataplane.h"

const char *dp_ip_str(uint32_t ip, char *buf)
{
	uint32_t be = htonl(ip);

	return inet_ntop(AF_INET, &be, buf, 16) ? buf : "?";
}

int dp_ip_parse(const char *s, uint32_t *ip)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*ip = ntohl(a.s_addr);
	return 0;
}

int dp_cidr_parse(const char *s, struct dp_range *r)
{
	char buf[32];
	const char *slash;
	char *end;
	long plen = 32;
	uint32_t ip;

	if (!s)
		return -EINVAL;
	slash = strchr(s, '/');
	if (slash) {
		if ((size_t)(slash - s) >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, s, (size_t)(slash - s));
		buf[slash - s] = '\0';
		plen = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || plen < 0 || plen > 32)
			return -EINVAL;
		s = buf;
	}
	if (dp_ip_parse(s, &ip) < 0)
		return -EINVAL;
	r->plen = (uint8_t)plen;
	r->lo = plen ? ip & (uint32_t)(0xffffffffu << (32 - plen)) : 0;
	return 0;
}

void dp_mac_of(uint32_t ip, uint8_t mac[6])
{
	/* GCE derives a NIC's MAC from its address: 42:01:0a:80:00:02 for 10.128.0.2. */
	mac[0] = 0x42;
	mac[1] = 0x01;
	mac[2] = (uint8_t)(ip >> 24);
	mac[3] = (uint8_t)(ip >> 16);
	mac[4] = (uint8_t)(ip >> 8);
	mac[5] = (uint8_t)ip;
}

unsigned dp_net_index(struct emu_dataplane *dp, const char *name)
{
	json_t *v = json_object_get(dp->net_ids, name);

	if (v)
		return (unsigned)json_integer_value(v);
	json_object_set_new(dp->net_ids, name, json_integer(++dp->next_net_id));
	return dp->next_net_id;
}

static int inst_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dp_want_inst *)a)->key, ((const struct dp_want_inst *)b)->key);
}

const struct dp_want_inst *dp_model_inst(const struct dp_model *m, const char *key)
{
	struct dp_want_inst k = {.key = (char *)key};

	return m->ninsts ? bsearch(&k, m->insts, m->ninsts, sizeof(k), inst_cmp) : NULL;
}

static const char *metadata_item(const json_t *inst, const char *key)
{
	json_t *it;
	size_t i;

	json_array_foreach(json_object_get(json_object_get(inst, "metadata"), "items"), i, it)
	{
		if (strcmp(jstr(it, "key") ?: "", key) == 0)
			return jstr(it, "value") ?: "";
	}
	return NULL;
}

/* The Node's podCIDR, when the Node is this instance's (providerID names it, or none yet). */
static struct dp_range node_pods(struct emu *emu, const char *zone, const char *name)
{
	const json_t *node = emu_kube_node(emu, name);
	json_t *spec = json_object_get(node, "spec");
	const char *pid = jstr(spec, "providerID"), *cidr = jstr(spec, "podCIDR");
	struct dp_range r = {0};
	char want[256];

	if (!node || !cidr)
		return r;
	if (pid) {
		/* gce://PROJECT/ZONE/NAME */
		snprintf(want, sizeof(want), "/%s/%s", zone, name);
		if (strlen(pid) < strlen(want) || strcmp(pid + strlen(pid) - strlen(want), want))
			return r;
	}
	if (dp_cidr_parse(cidr, &r) < 0)
		r.plen = 0;
	return r;
}

/* One instance's nic0 as the data plane needs it; 0, or 1 when it is not on the network. */
static int read_inst(struct emu_dataplane *dp, struct compute *c, const struct item *it,
		     struct dp_want_inst *w)
{
	const json_t *res = it->res;
	json_t *nic = json_array_get(json_object_get(res, "networkInterfaces"), 0), *ar, *ac;
	char net[128], scope[96], sname[128];
	const char *zone = it->scope + strlen("zones/");
	struct item *sub;
	size_t i;

	if (strcmp(jstr(res, "status") ?: "", "RUNNING") != 0 || !nic)
		return 1;
	if (strlen(dp->prefix) + 1 + strlen(it->name) >= DP_NS_MAX || !strcmp(it->name, "vpc") ||
	    !strcmp(it->name, "internet"))
		return 1; /* PREFIX-vpc and PREFIX-internet are the VPC's and the world's */
	if (!network_name_of(c, nic, net, sizeof(net)) ||
	    dp_ip_parse(jstr(nic, "networkIP"), &w->ip))
		return 1;
	if (compute_parse_ref(c, jstr(nic, "subnetwork") ?: "", "subnetworks", NULL, scope,
			      sizeof(scope), sname, sizeof(sname)) < 0)
		return 1;
	sub = compute_subnetwork(c, scope + strlen("regions/"), sname);
	if (!sub || dp_ip_parse(jstr(sub->res, "gatewayAddress"), &w->gw) < 0)
		return 1;
	w->key = str_printf("%s/%s", it->scope, it->name);
	w->zone = strdup(zone);
	w->name = strdup(it->name);
	w->url = strdup(jstr(res, "selfLink") ?: "");
	w->boot = strdup(jstr(res, "lastStartTimestamp") ?: "");
	if (!w->key || !w->zone || !w->name || !w->url || !w->boot)
		return -ENOMEM;
	w->net = dp_net_index(dp, net);
	json_array_foreach(json_object_get(nic, "aliasIpRanges"), i, ar)
	{
		struct dp_range r;

		if (dp_cidr_parse(jstr(ar, "ipCidrRange"), &r) < 0)
			continue;
		struct dp_range *n = realloc(w->aliases, (w->naliases + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		w->aliases = n;
		w->aliases[w->naliases++] = r;
	}
	ac = json_array_get(json_object_get(nic, "accessConfigs"), 0);
	if (ac && dp_ip_parse(jstr(ac, "natIP"), &w->nat_ip) < 0)
		w->nat_ip = 0;
	w->talos = metadata_item(res, "user-data") != NULL;
	w->control_plane = w->talos && emu_kube_instance_control_plane(res, it->name);
	w->can_ip_forward = json_is_true(json_object_get(res, "canIpForward"));
	/* References: the model outlives the resources it was read from (a later delete). */
	w->tags = json_incref(json_object_get(json_object_get(res, "tags"), "items"));
	w->sas = json_incref(json_object_get(res, "serviceAccounts"));
	w->pods = node_pods(dp->emu, w->zone, w->name);
	return 0;
}

static void want_free(struct dp_want_inst *w)
{
	free(w->key);
	free(w->zone);
	free(w->name);
	free(w->url);
	free(w->boot);
	free(w->aliases);
	json_decref(w->tags);
	json_decref(w->sas);
}

void dp_model_free(struct dp_model *m)
{
	for (size_t i = 0; i < m->ninsts; i++)
		want_free(&m->insts[i]);
	free(m->insts);
	for (size_t i = 0; i < m->nrules; i++) {
		free(m->rules[i].key);
		free(m->rules[i].url);
		free(m->rules[i].service_url);
		free(m->rules[i].backends);
	}
	free(m->rules);
	for (size_t i = 0; i < m->nhcs; i++) {
		free(m->hcs[i].url);
		free(m->hcs[i].port_name);
		free(m->hcs[i].path);
		free(m->hcs[i].host);
		free(m->hcs[i].request);
		free(m->hcs[i].response);
	}
	free(m->hcs);
	for (size_t i = 0; i < m->nfw; i++)
		json_decref(m->fw[i].res);
	free(m->fw);
	json_decref(m->nats);
	memset(m, 0, sizeof(*m));
}

static int model_insts(struct emu_dataplane *dp, struct compute *c, struct dp_model *m)
{
	struct coll *co = compute_coll(c, "instances");

	m->insts = calloc(co->len ? co->len : 1, sizeof(*m->insts));
	if (!m->insts)
		return -ENOMEM;
	for (size_t i = 0; i < co->len; i++) {
		struct dp_want_inst *w = &m->insts[m->ninsts];
		int ret;

		if (co->items[i]->pending)
			continue;
		memset(w, 0, sizeof(*w));
		ret = read_inst(dp, c, co->items[i], w);
		if (ret < 0) {
			want_free(w);
			return ret;
		}
		if (ret > 0) {
			want_free(w);
			continue;
		}
		m->ninsts++;
	}
	qsort(m->insts, m->ninsts, sizeof(*m->insts), inst_cmp);
	return 0;
}

static int fw_cmp(const void *a, const void *b)
{
	const struct dp_fw_rule *x = a, *y = b;

	/* GCP: the lowest priority number wins; at equal priority a deny beats an allow
	 * (https://cloud.google.com/firewall/docs/firewalls#priority_order_for_firewall_rules). */
	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	if (x->deny != y->deny)
		return x->deny ? -1 : 1;
	return strcmp(jstr(x->res, "name") ?: "", jstr(y->res, "name") ?: "");
}

static int model_firewalls(struct emu_dataplane *dp, struct compute *c, struct dp_model *m)
{
	struct coll *co = compute_coll(c, "firewalls");

	m->fw = calloc(co && co->len ? co->len : 1, sizeof(*m->fw));
	if (!m->fw)
		return -ENOMEM;
	for (size_t i = 0; co && i < co->len; i++) {
		const struct item *it = co->items[i];
		struct dp_fw_rule *f = &m->fw[m->nfw];
		char net[128];

		if (it->pending || json_is_true(json_object_get(it->res, "disabled")) ||
		    !network_name_of(c, it->res, net, sizeof(net)))
			continue;
		f->res = json_incref(it->res);
		f->net = dp_net_index(dp, net);
		f->priority = (int)json_integer_value(json_object_get(it->res, "priority"));
		f->ingress = strcmp(jstr(it->res, "direction") ?: "INGRESS", "EGRESS") != 0;
		f->deny = json_object_get(it->res, "denied") != NULL;
		m->nfw++;
	}
	qsort(m->fw, m->nfw, sizeof(*m->fw), fw_cmp);
	return 0;
}

int dp_model_build(struct emu_dataplane *dp, struct dp_model *m)
{
	struct compute *c = compute_of(dp->emu);
	int ret;

	memset(m, 0, sizeof(*m));
	if (!c)
		return 0;
	ret = model_insts(dp, c, m);
	if (ret == 0)
		ret = model_firewalls(dp, c, m);
	if (ret < 0)
		dp_model_free(m);
	return ret;
}
