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

unsigned dp_net_index(struct emu_dataplane *dp, const char *name)
{
	json_t *v = json_object_get(dp->net_ids, name);

	if (v)
		return (unsigned)json_integer_value(v);
	json_object_set_new(dp->net_ids, name, json_integer(++dp->next_net_id));
	return dp->next_net_id;
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
	for (size_t i = 0; i < m->nnats; i++) {
		free(m->nats[i].name);
		free(m->nats[i].ranges);
	}
	free(m->nats);
	memset(m, 0, sizeof(*m));
}

static int model_insts(struct emu_dataplane *dp, struct compute *c, struct dp_model *m)
{
	struct coll *co = compute_coll(c, "instances");
	json_t *names = json_object();

	m->insts = calloc(co->len ? co->len : 1, sizeof(*m->insts));
	if (!m->insts || !names) {
		json_decref(names);
		return -ENOMEM;
	}
	for (size_t i = 0; i < co->len; i++) {
		struct dp_want_inst *w = &m->insts[m->ninsts];
		int ret;

		if (co->items[i]->pending)
			continue;
		memset(w, 0, sizeof(*w));
		ret = read_inst(dp, c, co->items[i], w);
		if (ret < 0) {
			want_free(w);
			json_decref(names);
			return ret;
		}
		if (ret > 0) {
			want_free(w);
			continue;
		}
		/* Namespaces are named by instance: the same name in two zones gets one (the
		 * first zone in name order); the other is said once and left off the network. */
		if (json_object_get(names, w->name)) {
			if (!json_object_get(dp->warned, w->key)) {
				log_warn(
				    "dataplane: %s: another instance has the name %s: not on the "
				    "data plane",
				    w->key, w->name);
				json_object_set_new(dp->warned, w->key, json_true());
			}
			want_free(w);
			continue;
		}
		json_object_set_new(names, w->name, json_true());
		m->ninsts++;
	}
	json_decref(names);
	if (m->ninsts > 1)
		qsort(m->insts, m->ninsts, sizeof(*m->insts), dp_want_inst_cmp);
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
	if (m->nfw > 1)
		qsort(m->fw, m->nfw, sizeof(*m->fw), fw_cmp);
	return 0;
}

/* ---- forwarding rules, backend services, health checks ---- */

/* The item a reference (URL, partial path) names, when it exists. */
static struct item *ref_item(struct compute *c, const char *ref, const char *collection,
			     const char *default_scope)
{
	char scope[96], name[128];
	struct coll *co = compute_coll(c, collection);
	struct item *it;

	if (!ref || !co ||
	    compute_parse_ref(c, ref, collection, default_scope, scope, sizeof(scope), name,
			      sizeof(name)) < 0)
		return NULL;
	it = coll_find(co, scope, name);
	return it && !it->pending ? it : NULL;
}

static char *dupstr(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A health check's slot at the end of the model (counted once filled in). */
static struct dp_hc *hc_new(struct dp_model *m, const char *url)
{
	struct dp_hc *h, *n = realloc(m->hcs, (m->nhcs + 1) * sizeof(*n));

	if (!n)
		return NULL;
	m->hcs = n;
	h = &m->hcs[m->nhcs];
	memset(h, 0, sizeof(*h));
	h->url = strdup(url);
	return h;
}

/* checkIntervalSec, timeoutSec and the thresholds (the API fills them; defaults anyway). */
static void hc_timing(struct dp_hc *h, const json_t *res)
{
	h->interval_ms =
	    1000u * (unsigned)json_integer_value(json_object_get(res, "checkIntervalSec"));
	h->timeout_ms = 1000u * (unsigned)json_integer_value(json_object_get(res, "timeoutSec"));
	h->healthy = (unsigned)json_integer_value(json_object_get(res, "healthyThreshold"));
	h->unhealthy = (unsigned)json_integer_value(json_object_get(res, "unhealthyThreshold"));
	if (!h->interval_ms)
		h->interval_ms = 5000;
	if (!h->timeout_ms || h->timeout_ms > h->interval_ms)
		h->timeout_ms = h->interval_ms;
	if (!h->healthy)
		h->healthy = 2;
	if (!h->unhealthy)
		h->unhealthy = 2;
}

/*
 * A health check's probe parameters. Defaults as documented
 * (https://cloud.google.com/load-balancing/docs/health-check-concepts): port 80 for TCP and
 * HTTP, 443 for SSL, HTTPS and HTTP2; requestPath "/"; the API fills the timing fields.
 */
static ssize_t model_hc(struct dp_model *m, const struct item *hc)
{
	static const struct {
		const char *type, *field;
		int kind;
		unsigned port;
	} types[] = {{"TCP", "tcpHealthCheck", DP_HC_TCP, 80},
		     {"SSL", "sslHealthCheck", DP_HC_SSL, 443},
		     {"HTTP", "httpHealthCheck", DP_HC_HTTP, 80},
		     {"HTTPS", "httpsHealthCheck", DP_HC_HTTPS, 443},
		     {"HTTP2", "http2HealthCheck", DP_HC_HTTP2, 443}};
	const char *url = jstr(hc->res, "selfLink") ?: "", *type = jstr(hc->res, "type") ?: "";
	const char *spec;
	struct dp_hc *h;
	json_t *sub = NULL;
	size_t t;

	for (size_t i = 0; i < m->nhcs; i++)
		if (strcmp(m->hcs[i].url, url) == 0)
			return (ssize_t)i;
	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++)
		if (strcmp(types[t].type, type) == 0)
			break;
	if (t == sizeof(types) / sizeof(types[0]))
		return -1; /* GRPC: not probed */
	sub = json_object_get(hc->res, types[t].field);
	h = hc_new(m, url);
	if (!h)
		return -1;
	h->type = types[t].kind;
	spec = jstr(sub, "portSpecification") ?: "";
	if (!strcmp(spec, "USE_SERVING_PORT")) {
		h->serving = true;
	} else if (!strcmp(spec, "USE_NAMED_PORT") ||
		   (!json_integer_value(json_object_get(sub, "port")) && jstr(sub, "portName"))) {
		h->port_name = dupstr(jstr(sub, "portName"));
	} else {
		json_int_t p = json_integer_value(json_object_get(sub, "port"));

		h->port = p > 0 && p < 65536 ? (unsigned)p : types[t].port;
	}
	h->path = strdup(jstr(sub, "requestPath") ?: "/");
	h->host = dupstr(jstr(sub, "host"));
	h->request = dupstr(jstr(sub, "request"));
	h->response = dupstr(jstr(sub, "response"));
	hc_timing(h, hc->res);
	if (!h->url || !h->path)
		return -1;
	return (ssize_t)m->nhcs++;
}

static unsigned named_port(const struct item *group, const char *name)
{
	json_t *np;
	size_t i;

	json_array_foreach(json_object_get(group->res, "namedPorts"), i, np)
	{
		if (name && strcmp(jstr(np, "name") ?: "", name) == 0)
			return (unsigned)json_integer_value(json_object_get(np, "port"));
	}
	return 0;
}

static ssize_t inst_by_url(const struct dp_model *m, struct compute *c, const char *url)
{
	const char *rel = compute_rel(c, url);

	for (size_t i = 0; i < m->ninsts; i++)
		if (strcmp(compute_rel(c, m->insts[i].url), rel) == 0)
			return (ssize_t)i;
	return -1;
}

/* The instances of urls that are on the network become backends of r. */
static int add_backends(struct compute *c, struct dp_model *m, struct dp_rule *r,
			const json_t *urls, unsigned port, unsigned serve)
{
	json_t *url;
	size_t j;

	json_array_foreach(urls, j, url)
	{
		ssize_t in = inst_by_url(m, c, json_string_value(url) ?: "");
		struct dp_backend *n;

		if (in < 0)
			continue;
		n = realloc(r->backends, (r->nbackends + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		r->backends = n;
		r->backends[r->nbackends++] =
		    (struct dp_backend){(size_t)in, (uint16_t)port, (uint16_t)serve};
	}
	return 0;
}

/* The instances of a backend service's groups that are on the network, with their ports. */
static int rule_backends(struct compute *c, struct dp_model *m, struct dp_rule *r,
			 const struct item *bs)
{
	const struct dp_hc *hc = r->hc >= 0 ? &m->hcs[r->hc] : NULL;
	json_t *b;
	size_t i;

	json_array_foreach(json_object_get(bs->res, "backends"), i, b)
	{
		struct item *g = ref_item(c, jstr(b, "group"), "instanceGroups", NULL);
		char key[256];
		unsigned port = 0, serve;

		if (!g)
			continue;
		/* The serving port: the backend service's named port in the group ("http" when
		 * unset, as the API defaults portName), or the rule's port for passthrough. */
		if (r->kind == DP_RULE_PROXY)
			serve = named_port(g, jstr(bs->res, "portName") ?: "http");
		else
			serve = r->nports ? r->ports[0][0] : 0;
		if (hc && hc->port)
			port = hc->port;
		else if (hc && hc->port_name)
			port = named_port(g, hc->port_name);
		else if (hc && hc->serving)
			port = serve;
		snprintf(key, sizeof(key), "%s/%s", g->scope, g->name);
		if (add_backends(c, m, r, json_object_get(c->ig_members, key), port, serve) < 0)
			return -ENOMEM;
	}
	return 0;
}

static void rule_ports(const json_t *fr, struct dp_rule *r)
{
	const char *range = jstr(fr, "portRange");
	json_t *p;
	size_t i;

	if (json_is_true(json_object_get(fr, "allPorts")))
		return;
	json_array_foreach(json_object_get(fr, "ports"), i, p)
	{
		unsigned v;

		if (r->nports < 5 && json_is_string(p) &&
		    sscanf(json_string_value(p), "%u", &v) == 1 && v && v < 65536) {
			r->ports[r->nports][0] = r->ports[r->nports][1] = (uint16_t)v;
			r->nports++;
		}
	}
	if (range) {
		unsigned lo, hi;

		if (sscanf(range, "%u-%u", &lo, &hi) == 2 && lo && lo <= hi && hi < 65536) {
			r->ports[0][0] = (uint16_t)lo;
			r->ports[0][1] = (uint16_t)hi;
			r->nports = 1;
		} else if (sscanf(range, "%u", &lo) == 1 && lo && lo < 65536) {
			r->ports[0][0] = r->ports[0][1] = (uint16_t)lo;
			r->nports = 1;
		}
	}
}

/* IPProtocol in nft's words; L3_DEFAULT: every protocol (and port). */
static void rule_proto(const json_t *fr, struct dp_rule *r)
{
	const char *proto = jstr(fr, "IPProtocol") ?: "TCP";

	if (strcmp(proto, "L3_DEFAULT") == 0)
		return;
	for (size_t k = 0; proto[k] && k < sizeof(r->proto) - 1; k++)
		r->proto[k] = (char)(proto[k] >= 'A' && proto[k] <= 'Z' ? proto[k] + 32 : proto[k]);
}

static unsigned rule_id(struct emu_dataplane *dp, const char *key)
{
	json_t *v = json_object_get(dp->rule_ids, key);

	if (v)
		return (unsigned)json_integer_value(v);
	json_object_set_new(dp->rule_ids, key, json_integer(++dp->next_rule_id));
	return dp->next_rule_id;
}

/* A rule of kind for forwarding rule it, sending to service (a backend service or target
 * pool): appended to the model with its address, protocol and ports; NULL when it does not
 * parse. */
static struct dp_rule *new_rule(struct emu_dataplane *dp, struct dp_model *m, const struct item *it,
				int kind, const struct item *service)
{
	struct dp_rule *r, *n = realloc(m->rules, (m->nrules + 1) * sizeof(*n));

	if (!n)
		return NULL;
	m->rules = n;
	r = &m->rules[m->nrules];
	memset(r, 0, sizeof(*r));
	r->hc = -1;
	r->kind = kind;
	r->key = str_printf("%s/%s", it->scope, it->name);
	r->url = strdup(jstr(it->res, "selfLink") ?: "");
	r->service_url = strdup(jstr(service->res, "selfLink") ?: "");
	if (!r->key || !r->url || !r->service_url ||
	    dp_ip_parse(jstr(it->res, "IPAddress"), &r->ip) < 0) {
		free(r->key);
		free(r->url);
		free(r->service_url);
		return NULL;
	}
	m->nrules++;
	r->id = rule_id(dp, r->key);
	rule_proto(it->res, r);
	rule_ports(it->res, r);
	return r;
}

/* A passthrough rule to backend service bs: its address, protocol, ports, health check and
 * backends. Returns the rule (appended to the model), or NULL when it does not parse. */
static struct dp_rule *add_rule(struct emu_dataplane *dp, struct compute *c, struct dp_model *m,
				const struct item *it, int kind, const struct item *bs)
{
	struct dp_rule *r = new_rule(dp, m, it, kind, bs);
	struct item *hc;

	if (!r)
		return NULL;
	hc = ref_item(
	    c, json_string_value(json_array_get(json_object_get(bs->res, "healthChecks"), 0)),
	    "healthChecks", bs->scope);
	if (hc)
		r->hc = model_hc(m, hc);
	if (rule_backends(c, m, r, bs) < 0)
		return NULL;
	return r;
}

/*
 * Passthrough forwarding rules to a regional backend service:
 *   - INTERNAL (https://cloud.google.com/load-balancing/docs/internal): "the load balancer
 *     ... delivers packets to backends with the destination IP address of the forwarding
 *     rule preserved", from inside the rule's network;
 *   - EXTERNAL (https://cloud.google.com/load-balancing/docs/network/networklb-backend-service):
 *     the same for packets from the internet to the rule's external address ("Direct Server
 *     Return": backends answer from that address).
 */
static int model_rules(struct emu_dataplane *dp, struct compute *c, struct dp_model *m)
{
	struct coll *co = compute_coll(c, "forwardingRules");

	for (size_t i = 0; co && i < co->len; i++) {
		const struct item *it = co->items[i];
		const char *scheme = jstr(it->res, "loadBalancingScheme") ?: "EXTERNAL";
		struct item *bs;
		struct dp_rule *r;
		char net[128];

		if (it->pending || strncmp(it->scope, "regions/", 8) != 0)
			continue;
		bs = ref_item(c, jstr(it->res, "backendService"), "backendServices", it->scope);
		if (!bs || strcmp(jstr(bs->res, "loadBalancingScheme") ?: "", scheme) != 0)
			continue;
		if (!strcmp(scheme, "INTERNAL")) {
			if (!network_name_of(c, it->res, net, sizeof(net))) {
				struct item *sub = ref_item(c, jstr(it->res, "subnetwork"),
							    "subnetworks", it->scope);

				if (!sub || !network_name_of(c, sub->res, net, sizeof(net)))
					continue;
			}
			r = add_rule(dp, c, m, it, DP_RULE_INTERNAL, bs);
			if (r)
				r->net = dp_net_index(dp, net);
		} else if (!strcmp(scheme, "EXTERNAL")) {
			r = add_rule(dp, c, m, it, DP_RULE_EXTERNAL, bs);
			if (r && r->nbackends)
				r->net = m->insts[r->backends[0].inst].net;
		}
	}
	return 0;
}

/*
 * Legacy health checks (httpHealthChecks, httpsHealthChecks), the only ones a target pool
 * takes: port (default 80, 443), requestPath ("/"), host, and the same timing fields
 * (https://cloud.google.com/compute/docs/reference/rest/v1/httpHealthChecks).
 */
static ssize_t model_legacy_hc(struct dp_model *m, const struct item *hc, bool https)
{
	const char *url = jstr(hc->res, "selfLink") ?: "";
	json_int_t port = json_integer_value(json_object_get(hc->res, "port"));
	struct dp_hc *h;

	for (size_t i = 0; i < m->nhcs; i++)
		if (strcmp(m->hcs[i].url, url) == 0)
			return (ssize_t)i;
	h = hc_new(m, url);
	if (!h)
		return -1;
	h->type = https ? DP_HC_HTTPS : DP_HC_HTTP;
	h->port = port > 0 && port < 65536 ? (unsigned)port : https ? 443 : 80;
	h->path = strdup(jstr(hc->res, "requestPath") ?: "/");
	h->host = dupstr(jstr(hc->res, "host"));
	hc_timing(h, hc->res);
	if (!h->url || !h->path)
		return -1;
	return (ssize_t)m->nhcs++;
}

/*
 * Target pools (https://cloud.google.com/load-balancing/docs/network/target-pools): an
 * EXTERNAL forwarding rule whose target is a pool of instances; "Compute Engine picks an
 * instance from the target pool based on a hash of the source and destination IP addresses
 * and ports", healthy ones first, "or to all instances when no instance is healthy"
 * (TargetPool.backupPool); the legacy health check probes the rule's address on each.
 */
static int model_pools(struct emu_dataplane *dp, struct compute *c, struct dp_model *m)
{
	struct coll *co = compute_coll(c, "forwardingRules");

	for (size_t i = 0; co && compute_coll(c, "targetPools") && i < co->len; i++) {
		const struct item *it = co->items[i];
		const char *hcref;
		struct item *pool, *hc;
		struct dp_rule *r;

		if (it->pending || !jstr(it->res, "target") ||
		    strcmp(jstr(it->res, "loadBalancingScheme") ?: "EXTERNAL", "EXTERNAL") != 0)
			continue;
		pool = ref_item(c, jstr(it->res, "target"), "targetPools", it->scope);
		if (!pool)
			continue;
		r = new_rule(dp, m, it, DP_RULE_EXTERNAL, pool);
		if (!r)
			continue;
		hcref = json_string_value(
		    json_array_get(json_object_get(pool->res, "healthChecks"), 0));
		if ((hc = ref_item(c, hcref, "httpHealthChecks", "global")))
			r->hc = model_legacy_hc(m, hc, false);
		else if ((hc = ref_item(c, hcref, "httpsHealthChecks", "global")))
			r->hc = model_legacy_hc(m, hc, true);
		if (add_backends(c, m, r, json_object_get(pool->res, "instances"),
				 r->hc >= 0 ? m->hcs[r->hc].port : 0, 0) < 0)
			return -ENOMEM;
		if (r->nbackends)
			r->net = m->insts[r->backends[0].inst].net;
	}
	return 0;
}

/*
 * Proxy load balancers: a forwarding rule whose target is a target TCP proxy
 * (https://cloud.google.com/load-balancing/docs/tcp): the proxy "terminates TCP connections
 * from the client and creates new connections to the backends" from the proxy ranges, to the
 * backend service's named port of each healthy instance.
 */
static int model_proxies(struct emu_dataplane *dp, struct compute *c, struct dp_model *m)
{
	struct coll *co = compute_coll(c, "forwardingRules");

	for (size_t i = 0; co && i < co->len; i++) {
		const struct item *it = co->items[i];
		struct item *proxy, *bs;
		struct dp_rule *r;

		if (it->pending || !jstr(it->res, "target"))
			continue;
		proxy = ref_item(c, jstr(it->res, "target"), "targetTcpProxies", it->scope);
		bs = proxy
			 ? ref_item(c, jstr(proxy->res, "service"), "backendServices", proxy->scope)
			 : NULL;
		if (!bs)
			continue;
		r = add_rule(dp, c, m, it, DP_RULE_PROXY, bs);
		if (!r)
			continue;
		r->proxy_v1 = !strcmp(jstr(proxy->res, "proxyHeader") ?: "NONE", "PROXY_V1");
		r->timeout_ms =
		    1000u * (unsigned)json_integer_value(json_object_get(bs->res, "timeoutSec"));
		if (!r->timeout_ms)
			r->timeout_ms = 30000; /* "The default is 30 seconds." */
		if (r->nbackends)
			r->net = m->insts[r->backends[0].inst].net;
	}
	return 0;
}

/* The ranges of subnetwork sub a NAT translates: its primary range, and secondary ones. */
static int nat_subnet(struct dp_nat *n, const struct item *sub, bool primary, bool all_secondary,
		      const json_t *secondary_names)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(sub->res, "secondaryIpRanges"), i, r)
	{
		const char *rn = jstr(r, "rangeName") ?: "";
		bool want = all_secondary;
		json_t *x;
		size_t k;

		json_array_foreach(secondary_names, k, x) want |=
		    json_is_string(x) && !strcmp(json_string_value(x), rn);
		if (want) {
			struct dp_range *nr = realloc(n->ranges, (n->nranges + 1) * sizeof(*nr));

			if (!nr)
				return -ENOMEM;
			n->ranges = nr;
			if (dp_cidr_parse(jstr(r, "ipCidrRange"), &n->ranges[n->nranges]) == 0)
				n->nranges++;
		}
	}
	if (primary) {
		struct dp_range *nr = realloc(n->ranges, (n->nranges + 1) * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		n->ranges = nr;
		if (dp_cidr_parse(jstr(sub->res, "ipCidrRange"), &n->ranges[n->nranges]) == 0)
			n->nranges++;
	}
	return 0;
}

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

/*
 * Cloud NAT (https://cloud.google.com/nat/docs/overview): a router's NAT gateways translate
 * the instances of their region and network that have no external address, for the ranges
 * sourceSubnetworkIpRangesToNat selects, to natIps (MANUAL_ONLY) or to addresses Google
 * allocates (AUTO_ONLY: here one of 35.208.0.0/16, stable for the gateway's name).
 */
static int model_nats(struct emu_dataplane *dp, struct compute *c, struct dp_model *m)
{
	struct coll *routers = compute_coll(c, "routers"), *subs = compute_coll(c, "subnetworks");

	for (size_t i = 0; routers && subs && i < routers->len; i++) {
		const struct item *rt = routers->items[i];
		json_t *nat;
		char net[128];
		size_t k;

		if (rt->pending || !network_name_of(c, rt->res, net, sizeof(net)))
			continue;
		json_array_foreach(json_object_get(rt->res, "nats"), k, nat)
		{
			const char *mode = jstr(nat, "sourceSubnetworkIpRangesToNat") ?: "";
			struct dp_nat *n, *nn = realloc(m->nats, (m->nnats + 1) * sizeof(*nn));
			json_t *ip, *s;
			size_t j;

			if (!nn)
				return -ENOMEM;
			m->nats = nn;
			n = &m->nats[m->nnats++];
			memset(n, 0, sizeof(*n));
			n->name =
			    str_printf("%s/%s/%s", rt->scope, rt->name, jstr(nat, "name") ?: "");
			if (!n->name)
				return -ENOMEM;
			n->net = dp_net_index(dp, net);
			json_array_foreach(json_object_get(nat, "natIps"), j, ip)
			{
				struct item *a =
				    ref_item(c, json_string_value(ip), "addresses", rt->scope);

				if (a && n->nips < 8 &&
				    dp_ip_parse(jstr(a->res, "address"), &n->ips[n->nips]) == 0)
					n->nips++;
			}
			if (!n->nips &&
			    strcmp(jstr(nat, "natIpAllocateOption") ?: "", "AUTO_ONLY") == 0)
				n->ips[n->nips++] = DP_NAT_AUTO | (1 + fnv1a(n->name) % 0xfffe);
			for (size_t s2 = 0;
			     !strncmp(mode, "ALL_SUBNETWORKS_", 16) && s2 < subs->len; s2++) {
				const struct item *sub = subs->items[s2];
				char snet[128];

				if (sub->pending || strcmp(sub->scope, rt->scope) != 0 ||
				    !network_name_of(c, sub->res, snet, sizeof(snet)) ||
				    strcmp(snet, net) != 0)
					continue;
				if (nat_subnet(n, sub, true,
					       !strcmp(mode, "ALL_SUBNETWORKS_ALL_IP_RANGES"),
					       NULL) < 0)
					return -ENOMEM;
			}
			json_array_foreach(json_object_get(nat, "subnetworks"), j, s)
			{
				struct item *sub =
				    ref_item(c, jstr(s, "name"), "subnetworks", rt->scope);
				json_t *how = json_object_get(s, "sourceIpRangesToNat");
				bool all = false, primary = false;
				json_t *x;
				size_t q;

				if (!sub || strcmp(mode, "LIST_OF_SUBNETWORKS") != 0)
					continue;
				json_array_foreach(how, q, x)
				{
					const char *v = json_string_value(x) ?: "";

					all |= !strcmp(v, "ALL_IP_RANGES");
					primary |= !strcmp(v, "PRIMARY_IP_RANGE");
				}
				if (!json_array_size(how))
					all = true;
				if (nat_subnet(n, sub, all || primary, all,
					       json_object_get(s, "secondaryIpRangeNames")) < 0)
					return -ENOMEM;
			}
		}
	}
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
	if (ret == 0)
		ret = model_rules(dp, c, m);
	if (ret == 0)
		ret = model_pools(dp, c, m);
	if (ret == 0)
		ret = model_proxies(dp, c, m);
	if (ret == 0)
		ret = model_nats(dp, c, m);
	if (ret < 0)
		dp_model_free(m);
	return ret;
}
