/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The GCE provider's internal load balancer (networking.gke.io/load-balancer-type: Internal),
 * as cloud-provider-gcp providers/gce/gce_loadbalancer_internal.go and
 * gce_address_manager.go do it:
 *
 *   ensure: the finalizer gke.networking.io/l4-ilb-v1; unmanaged instance groups
 *     k8s-ig--<cid> in every zone with nodes, holding them (1000 at most); the health check
 *     (k8s-<cid>-node on 10256 /healthz, shared, or <lb> on the Service's healthCheckNodePort
 *     with externalTrafficPolicy: Local); the address (addressManager.HoldAddress: <lb>
 *     reserved on the requested or current IP, or a user's address of that IP); a changed
 *     forwarding rule deleted first; the regional backend service <lb> (created, or updated
 *     with its fingerprint); the rule (ports, or allPorts past five); firewalls k8s-fw-<lb>
 *     (the ports from loadBalancerSourceRanges) and k8s-<cid>-node-hc / <lb>-hc (Google's
 *     health checkers); a health check no longer used torn down; the address released.
 *   update: the groups follow the nodes; the backend service's groups are corrected.
 *   delete: address, rule, backend service, firewalls, health check (if no one else uses
 *     it), the groups in every zone of the region (if no one else uses them), the finalizer.
 *
 * Subsetting (ILBSubsets), shared backend services and legacy networks are not emulated.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/str.h"
#include "emu/kube/ccm.h"

#define IG_INSTANCES_MAX 1000

/* ---- ensureInternalInstanceGroups ---- */

struct groups {
	json_t *zones; /* zone -> [node names], sorted */
	size_t at;
	const char *zone;
	json_t *have;  /* names in the group */
	json_t *links; /* group selfLinks */
};

static void groups_free(void *p)
{
	struct groups *g = p;

	if (!g)
		return;
	json_decref(g->zones);
	json_decref(g->have);
	json_decref(g->links);
	free(g);
}

static const char *node_zone(const json_t *node)
{
	const json_t *l = kj_path(node, "metadata.labels");

	return json_string_value(json_object_get(l, "topology.kubernetes.io/zone"))
		   ?: json_string_value(
			  json_object_get(l, "failure-domain.beta.kubernetes.io/zone"));
}

static json_t *refs(const struct ccm_job *j, const char *zone, const json_t *names)
{
	json_t *list = json_array(), *n;
	size_t i;

	json_array_foreach(names, i, n)
	{
		char *url = ccm_url(j, "zones/%s/instances/%s", zone, json_string_value(n));

		json_array_append_new(list, json_pack("{s:s}", "instance", url ? url : ""));
		free(url);
	}
	return json_pack("{s:o}", "instances", list);
}

static int group_zone(struct ccm_task *t);

static int next_zone(struct ccm_task *t, struct groups *g)
{
	const char *key;
	json_t *v;
	size_t i = 0;

	g->zone = NULL;
	json_object_foreach(g->zones, key, v)
	{
		if (i++ == g->at) {
			g->zone = key;
			break;
		}
	}
	if (!g->zone)
		return CCM_DONE;
	return ccm_call(t, 1, "GET", NULL, "zones/%s/instanceGroups/k8s-ig--%s", g->zone,
			t->job->cid);
}

static int group_zone(struct ccm_task *t)
{
	struct ccm_job *j = t->job;
	struct groups *g = t->loc;
	json_t *want, *add, *remove, *v;
	size_t i;

	switch (t->step) {
	case 0:
		return next_zone(t, g);
	case 1:
		if (ccm_is(t, 404)) {
			char name[64];

			snprintf(name, sizeof(name), "k8s-ig--%s", j->cid);
			log_info(
			    "ccm: ensureInternalInstanceGroup(%s, %s): creating instance group",
			    name, g->zone);
			return ccm_call(t, 2, "POST", json_pack("{s:s}", "name", name),
					"zones/%s/instanceGroups", g->zone);
		}
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		json_array_append(g->links, json_object_get(t->r.body, "selfLink"));
		return ccm_call(t, 4, "POST", json_pack("{s:s}", "instanceState", "ALL"),
				"zones/%s/instanceGroups/k8s-ig--%s/listInstances", g->zone,
				j->cid);
	case 2:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		return ccm_call(t, 3, "GET", NULL, "zones/%s/instanceGroups/k8s-ig--%s", g->zone,
				j->cid);
	case 3:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		json_array_append(g->links, json_object_get(t->r.body, "selfLink"));
		json_decref(g->have);
		g->have = json_array();
		t->step = 5;
		goto diff;
	case 4:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		json_decref(g->have);
		g->have = json_array();
		json_array_foreach(json_object_get(t->r.body, "items"), i, v)
		{
			const char *s = strrchr(kj_str(v, "instance") ?: "", '/');

			json_array_append_new(g->have, json_string(s ? s + 1 : ""));
		}
diff:
		want = json_object_get(g->zones, g->zone);
		add = json_array();
		remove = json_array();
		json_array_foreach(want, i, v)
		{
			bool in = false;
			json_t *h;
			size_t k;

			json_array_foreach(g->have, k, h) if (json_equal(h, v)) in = true;
			if (!in)
				json_array_append(add, v);
		}
		json_array_foreach(g->have, i, v)
		{
			bool in = false;
			json_t *w;
			size_t k;

			json_array_foreach(want, k, w) if (json_equal(w, v)) in = true;
			if (!in)
				json_array_append(remove, v);
		}
		json_decref(g->have);
		g->have = add; /* what is left to add */
		if (json_array_size(remove)) {
			log_info("ccm: ensureInternalInstanceGroup(k8s-ig--%s, %s): removing %zu "
				 "nodes",
				 j->cid, g->zone, json_array_size(remove));
			want = refs(j, g->zone, remove);
			json_decref(remove);
			return ccm_call(t, 5, "POST", want,
					"zones/%s/instanceGroups/k8s-ig--%s/removeInstances",
					g->zone, j->cid);
		}
		json_decref(remove);
		t->r.status = 200;
		__attribute__((fallthrough));
	case 5:
		/* "Possible we'll receive 404's here if the instance was deleted" */
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail_call(t, "");
		if (json_array_size(g->have)) {
			log_info(
			    "ccm: ensureInternalInstanceGroup(k8s-ig--%s, %s): adding %zu nodes",
			    j->cid, g->zone, json_array_size(g->have));
			return ccm_call(t, 6, "POST", refs(j, g->zone, g->have),
					"zones/%s/instanceGroups/k8s-ig--%s/addInstances", g->zone,
					j->cid);
		}
		t->r.status = 200;
		__attribute__((fallthrough));
	case 6:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		g->at++;
		t->step = 0;
		return next_zone(t, g);
	}
	return CCM_DONE;
}

static struct groups *groups_new(const struct ccm_job *j)
{
	struct groups *g = calloc(1, sizeof(*g));
	const json_t *n;
	size_t i;

	if (!g)
		return NULL;
	g->zones = json_object();
	g->links = json_array();
	json_array_foreach(j->nodes, i, n)
	{
		const char *z = node_zone(n);
		json_t *list;

		if (!z || !*z)
			continue; /* "skip ensuring nodes with empty zone" */
		list = json_object_get(g->zones, z);
		if (!list) {
			list = json_array();
			json_object_set_new(g->zones, z, list);
		}
		/* "cut down the contents to first 1000 instances in the alphabetical order" */
		if (json_array_size(list) < IG_INSTANCES_MAX)
			json_array_append_new(list, json_string(kj_str(n, "metadata.name") ?: ""));
	}
	return g;
}

/* ---- ensureInternalHealthCheck ---- */

struct ihc {
	char name[64];
	char path[64];
	unsigned port;
	bool shared;
	char self[512];
};

static json_t *ihc_body(const struct ccm_job *j, const struct ihc *h)
{
	char desc[400] = "";

	if (!h->shared)
		snprintf(desc, sizeof(desc), "{\"kubernetes.io/service-name\":\"%s\"}", j->nsname);
	return json_pack("{s:s, s:i, s:i, s:i, s:i, s:{s:i, s:s}, s:s, s:s}", "name", h->name,
			 "checkIntervalSec", HC_INTERVAL_S, "timeoutSec", HC_TIMEOUT_S,
			 "healthyThreshold", HC_HEALTHY, "unhealthyThreshold", HC_UNHEALTHY,
			 "httpHealthCheck", "port", (int)h->port, "requestPath", h->path, "type",
			 "HTTP", "description", desc);
}

static int ensure_ihc(struct ccm_task *t)
{
	struct ccm_job *j = t->job;
	struct ihc *h = t->loc;

	switch (t->step) {
	case 0:
		return ccm_call(t, 1, "GET", NULL, "global/healthChecks/%s", h->name);
	case 1:
		if (ccm_is(t, 404)) {
			log_info("ccm: ensureInternalHealthCheck: creating health check %s port %u "
				 "path %s",
				 h->name, h->port, h->path);
			return ccm_call(t, 2, "POST", ihc_body(j, h), "global/healthChecks");
		}
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		{
			const json_t *live = t->r.body;
			json_t *want = ihc_body(j, h);
			static const char *const mins[] = {"checkIntervalSec", "timeoutSec",
							   "unhealthyThreshold",
							   "healthyThreshold"};
			bool drift =
			    !json_object_get(live, "httpHealthCheck") ||
			    json_integer_value(kj_path(live, "httpHealthCheck.port")) != h->port ||
			    strcmp(kj_str(live, "httpHealthCheck.requestPath") ?: "", h->path) ||
			    strcmp(kj_str(live, "description") ?: "", kj_str(want, "description"));

			for (size_t i = 0; i < 4; i++) {
				json_int_t lv = json_integer_value(json_object_get(live, mins[i])),
					   wv = json_integer_value(json_object_get(want, mins[i]));

				if (lv < wv)
					drift = true;
				else
					json_object_set_new(want, mins[i], json_integer(lv));
			}
			if (!drift) {
				json_decref(want);
				snprintf(h->self, sizeof(h->self), "%s",
					 kj_str(live, "selfLink") ?: "");
				return CCM_DONE;
			}
			log_info("ccm: ensureInternalHealthCheck: health check %s exists but "
				 "parameters have drifted - updating...",
				 h->name);
			return ccm_call(t, 2, "PUT", want, "global/healthChecks/%s", h->name);
		}
	case 2:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		return ccm_call(t, 3, "GET", NULL, "global/healthChecks/%s", h->name);
	case 3:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		snprintf(h->self, sizeof(h->self), "%s", kj_str(t->r.body, "selfLink") ?: "");
		return CCM_DONE;
	}
	return CCM_DONE;
}

/* ---- ensureInternalFirewall ---- */

struct ifw {
	json_t *want;
	char name[96];
};

static void ifw_free(void *p)
{
	struct ifw *f = p;

	if (f)
		json_decref(f->want);
	free(f);
}

static bool firewall_equal(const json_t *a, const json_t *b)
{
	/* firewallRuleEqual: the ports, ranges and tags as sets. */
	return !ccm_firewall_differs(a, b, true) &&
	       ccm_same_set(json_object_get(a, "targetTags"), json_object_get(b, "targetTags"));
}

static int ensure_ifw(struct ccm_task *t)
{
	struct ifw *f = t->loc;

	switch (t->step) {
	case 0:
		return ccm_call(t, 1, "GET", NULL, "global/firewalls/%s", f->name);
	case 1:
		if (ccm_is(t, 404)) {
			log_info("ccm: ensureInternalFirewall(%s): creating firewall", f->name);
			return ccm_call(t, 2, "POST", json_incref(f->want), "global/firewalls");
		}
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		if (firewall_equal(f->want, t->r.body))
			return CCM_DONE;
		log_info("ccm: ensureInternalFirewall(%s): updating firewall", f->name);
		return ccm_call(t, 2, "PATCH", json_incref(f->want), "global/firewalls/%s",
				f->name);
	case 2:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		return CCM_DONE;
	}
	return CCM_DONE;
}

/* ---- ensureInternalLoadBalancer ---- */

struct ilb {
	char proto[8];
	json_t *ports; /* "80", ... */
	struct groups *groups;
	struct ihc hc;
	json_t *old_bs;
	char subnet[512];
	char target_ip[64];
	char ip[64];
	bool held, try_release;
	json_t *rule;
	bool rule_deleted;
	char old_hc[64];
};

static void ilb_free(void *p)
{
	struct ilb *x = p;

	if (!x)
		return;
	json_decref(x->ports);
	groups_free(x->groups);
	json_decref(x->old_bs);
	json_decref(x->rule);
	free(x);
}

enum {
	I_START,
	I_GROUPS,
	I_OLD_BS,
	I_HC,
	I_ADDR_GOT,
	I_ADDR_DELETED,
	I_ADDR_RESERVED,
	I_ADDR_READ,
	I_ADDR_BY_IP,
	I_RULE_PREP,
	I_RULE_DELETED,
	I_BS_GOT,
	I_BS_WRITTEN,
	I_RULE_CREATE,
	I_RULE_CREATED,
	I_RULE_GOT,
	I_HOSTS,
	I_FW_TRAFFIC,
	I_FW_HC,
	I_OLD_HC,
	I_OLD_HC_FW,
	I_RELEASED,
};

/* The deferred addrMgr.ReleaseAddress(): on success and on failure alike. */
static int ilb_finish(struct ccm_task *t)
{
	struct ilb *x = t->loc;
	struct ccm_job *j = t->job;

	if (x && x->held && x->try_release) {
		x->held = false;
		return ccm_call(t, I_RELEASED, "DELETE", NULL, "regions/%s/addresses/%s", j->region,
				j->lb);
	}
	return CCM_DONE;
}

static int ilb_fail(struct ccm_task *t, const char *msg)
{
	char err[sizeof(t->err)];

	snprintf(err, sizeof(err), "%s", msg);
	snprintf(t->err, sizeof(t->err), "%s", err);
	t->failed = true;
	return ilb_finish(t);
}

static json_t *bs_body(const struct ccm_job *j, const struct ilb *x)
{
	char desc[400];
	json_t *backends = json_array(), *l;
	const char *aff = kj_str(j->svc, "spec.sessionAffinity") ?: "None";
	size_t i;

	snprintf(desc, sizeof(desc), "{\"kubernetes.io/service-name\":\"%s\"}", j->nsname);
	json_array_foreach(x->groups->links, i, l)
	    json_array_append_new(backends, json_pack("{s:O}", "group", l));
	return json_pack("{s:s, s:s, s:s, s:[s], s:o, s:s, s:s}", "name", j->lb, "protocol",
			 x->proto, "description", desc, "healthChecks", x->hc.self, "backends",
			 backends, "sessionAffinity",
			 !strcmp(aff, "ClientIP") ? "CLIENT_IP" : "NONE", "loadBalancingScheme",
			 "INTERNAL");
}

static json_t *groups_of(const json_t *bs)
{
	json_t *out = json_array(), *b;
	size_t i;

	json_array_foreach(json_object_get(bs, "backends"), i, b)
	    json_array_append(out, json_object_get(b, "group"));
	return out;
}

static bool same_rel(const char *a, const char *b)
{
	const char *x = ccm_url_path(a), *y = ccm_url_path(b);

	return !strcmp(x ? x : (a ? a : ""), y ? y : (b ? b : ""));
}

/* backendSvcEqual */
static bool bs_equal(const json_t *a, const json_t *b)
{
	json_t *ga = groups_of(a), *gb = groups_of(b);
	bool eq =
	    !strcmp(kj_str(a, "protocol") ?: "", kj_str(b, "protocol") ?: "") &&
	    !strcmp(kj_str(a, "description") ?: "", kj_str(b, "description") ?: "") &&
	    !strcmp(kj_str(a, "sessionAffinity") ?: "", kj_str(b, "sessionAffinity") ?: "") &&
	    !strcmp(kj_str(a, "loadBalancingScheme") ?: "",
		    kj_str(b, "loadBalancingScheme") ?: "") &&
	    ccm_same_set(json_object_get(a, "healthChecks"), json_object_get(b, "healthChecks")) &&
	    ccm_same_set(ga, gb);

	json_decref(ga);
	json_decref(gb);
	return eq;
}

static json_t *rule_want(const struct ccm_job *j, const struct ilb *x)
{
	char desc[400], *bs = ccm_url(j, "regions/%s/backendServices/%s", j->region, j->lb);
	json_t *r;
	const json_t *annots = kj_path(j->svc, "metadata.annotations");

	snprintf(desc, sizeof(desc), "{\"kubernetes.io/service-name\":\"%s\"}", j->nsname);
	r = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", j->lb, "description", desc,
		      "backendService", bs ? bs : "", "IPProtocol", x->proto, "loadBalancingScheme",
		      "INTERNAL", "subnetwork", x->subnet, "network", j->network);
	free(bs);
	if (!r)
		return NULL;
	if (x->ip[0])
		json_object_set_new(r, "IPAddress", json_string(x->ip));
	if (json_array_size(x->ports) > ILB_PORTS_MAX)
		json_object_set_new(r, "allPorts", json_true());
	else
		json_object_set(r, "ports", x->ports);
	if (!strcmp(json_string_value(json_object_get(
			annots, "networking.gke.io/internal-load-balancer-allow-global-access"))
			?: "",
		    "true"))
		json_object_set_new(r, "allowGlobalAccess", json_true());
	return r;
}

/* forwardingRulesEqual */
static bool rules_equal(const json_t *old, const json_t *want)
{
	const char *oip = kj_str(old, "IPAddress") ?: "", *nip = kj_str(want, "IPAddress") ?: "";

	return (!*oip || !*nip || !strcmp(oip, nip)) &&
	       !strcmp(kj_str(old, "IPProtocol") ?: "", kj_str(want, "IPProtocol") ?: "") &&
	       !strcmp(kj_str(old, "loadBalancingScheme") ?: "",
		       kj_str(want, "loadBalancingScheme") ?: "") &&
	       ccm_same_set(json_object_get(old, "ports"), json_object_get(want, "ports")) &&
	       json_is_true(json_object_get(old, "allPorts")) ==
		   json_is_true(json_object_get(want, "allPorts")) &&
	       same_rel(kj_str(old, "backendService"), kj_str(want, "backendService")) &&
	       json_is_true(json_object_get(old, "allowGlobalAccess")) ==
		   json_is_true(json_object_get(want, "allowGlobalAccess")) &&
	       same_rel(kj_str(old, "subnetwork"), kj_str(want, "subnetwork"));
}

static const json_t *address_with_ip(const json_t *list, const char *ip)
{
	const json_t *a;
	size_t i;

	json_array_foreach(json_object_get(list, "items"), i,
			   a) if (!strcmp(kj_str(a, "address") ?: "", ip)) return a;
	return NULL;
}

static struct ifw *internal_firewall(struct ccm_task *t, const char *name, const char *desc,
				     const char *ip, json_t *sources, const char *proto,
				     json_t *ports)
{
	struct ccm_job *j = t->job;
	struct ifw *f = calloc(1, sizeof(*f));
	char err[256], lower[8];
	json_t *tags;
	size_t i;

	if (!f) {
		json_decref(sources);
		json_decref(ports);
		return NULL;
	}
	tags = ccm_host_tags(j, err, sizeof(err));
	if (!tags) {
		snprintf(t->err, sizeof(t->err), "%s", err);
		json_decref(sources);
		json_decref(ports);
		free(f);
		return NULL;
	}
	for (i = 0; proto[i] && i + 1 < sizeof(lower); i++)
		lower[i] = (char)(proto[i] >= 'A' && proto[i] <= 'Z' ? proto[i] + 32 : proto[i]);
	lower[i] = '\0';
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->want = ccm_firewall_body(j, name, desc, ip, sources, lower, ports, tags);
	return f;
}

int ccm_internal_ensure(struct ccm_task *t)
{
	struct ccm_job *j = t->job;
	struct ilb *x = t->loc;
	const json_t *svc = j->svc;
	char err[1024];
	int ret;

	switch (t->step) {
	case I_START: {
		const json_t *p;
		size_t i;
		unsigned local;
		const char *sub;

		x = calloc(1, sizeof(*x));
		if (!x)
			return ccm_fail(t, "out of memory");
		t->loc = x;
		t->loc_free = ilb_free;
		log_info("ccm: ensureInternalLoadBalancer(%s): attaching %s finalizer", j->lb,
			 ILB_FINALIZER);
		ret = ccm_finalizer(j, ILB_FINALIZER, true);
		if (ret < 0)
			return ccm_fail(t, "failed to attach finalizer '%s' on service %s: %s",
					ILB_FINALIZER, j->nsname, strerror(-ret));
		x->ports = json_array();
		json_array_foreach(kj_path(svc, "spec.ports"), i, p)
		{
			const char *pr = kj_str(p, "protocol") ?: "TCP";
			char buf[16];

			if (i == 0)
				snprintf(x->proto, sizeof(x->proto), "%s", pr);
			else if (strcmp(pr, x->proto))
				return ccm_fail(t,
						"mixed protocol is not supported for LoadBalancer");
			snprintf(buf, sizeof(buf), "%lld",
				 (long long)json_integer_value(json_object_get(p, "port")));
			json_array_append_new(x->ports, json_string(buf));
		}
		if (strcmp(x->proto, "TCP") && strcmp(x->proto, "UDP"))
			return ccm_fail(t, "Invalid protocol %s, only TCP and UDP are supported",
					x->proto);
		local = ccm_service_hc_port(svc);
		x->hc.shared = local == 0;
		if (x->hc.shared) {
			snprintf(x->hc.name, sizeof(x->hc.name), "k8s-%s-node", j->cid);
			snprintf(x->hc.path, sizeof(x->hc.path), NODES_HC_PATH);
			x->hc.port = NODES_HC_PORT;
		} else {
			snprintf(x->hc.name, sizeof(x->hc.name), "%s", j->lb);
			snprintf(x->hc.path, sizeof(x->hc.path), NODES_HC_PATH);
			x->hc.port = local;
		}
		sub = json_string_value(
		    json_object_get(kj_path(svc, "metadata.annotations"),
				    "networking.gke.io/internal-load-balancer-subnet"));
		if (sub && *sub) {
			char *url = ccm_url(j, "regions/%s/subnetworks/%s", j->region, sub);

			snprintf(x->subnet, sizeof(x->subnet), "%s", url ? url : "");
			free(url);
		} else {
			snprintf(x->subnet, sizeof(x->subnet), "%s", j->subnetwork);
		}
		x->groups = groups_new(j);
		if (!x->groups)
			return ccm_fail(t, "out of memory");
		ccm_spawn(t, group_zone, x->groups, NULL);
		t->step = I_GROUPS;
		return CCM_WAIT;
	}
	case I_GROUPS:
		if (t->failed)
			return CCM_DONE;
		if (kj_str(j->rule, "backendService"))
			return ccm_call_path(t, I_OLD_BS, "GET", NULL,
					     ccm_url_path(kj_str(j->rule, "backendService")) ?: "");
		t->r.status = 404;
		__attribute__((fallthrough));
	case I_OLD_BS:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail_call(t, "");
		if (ccm_ok(t))
			x->old_bs = json_incref(t->r.body);
		ccm_spawn(t, ensure_ihc, &x->hc, NULL);
		t->step = I_HC;
		return CCM_WAIT;
	case I_HC:
		if (t->failed)
			return CCM_DONE;
		/* ilbIPToUse: the requested IP, else the rule's while the subnetwork stays. */
		if (kj_str(svc, "spec.loadBalancerIP") && *kj_str(svc, "spec.loadBalancerIP"))
			snprintf(x->target_ip, sizeof(x->target_ip), "%s",
				 kj_str(svc, "spec.loadBalancerIP"));
		else if (j->rule && same_rel(kj_str(j->rule, "subnetwork"), x->subnet))
			snprintf(x->target_ip, sizeof(x->target_ip), "%s",
				 kj_str(j->rule, "IPAddress") ?: "");
		/* addressManager.HoldAddress */
		x->try_release = true;
		return ccm_call(t, I_ADDR_GOT, "GET", NULL, "regions/%s/addresses/%s", j->region,
				j->lb);
	case I_ADDR_GOT:
		if (ccm_ok(t)) {
			const char *have = kj_str(t->r.body, "address") ?: "";

			if ((!x->target_ip[0] || !strcmp(x->target_ip, have)) &&
			    !strcmp(kj_str(t->r.body, "addressType") ?: "", "INTERNAL")) {
				snprintf(x->ip, sizeof(x->ip), "%s", have);
				x->held = true;
				t->step = I_RULE_PREP;
				return ccm_internal_ensure(t);
			}
			log_info("ccm: AddressManager(%s): deleting existing address: it holds %s",
				 j->lb, have);
			return ccm_call(t, I_ADDR_DELETED, "DELETE", NULL,
					"regions/%s/addresses/%s", j->region, j->lb);
		}
		if (!ccm_is(t, 404))
			return ccm_fail_call(t, "");
		t->r.status = 200;
		__attribute__((fallthrough));
	case I_ADDR_DELETED: {
		char desc[400];
		json_t *a;

		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail_call(t, "");
		snprintf(desc, sizeof(desc), "{\"kubernetes.io/service-name\":\"%s\"}", j->nsname);
		a = json_pack("{s:s, s:s, s:s, s:s}", "name", j->lb, "description", desc,
			      "addressType", "INTERNAL", "subnetwork", x->subnet);
		if (a && x->target_ip[0])
			json_object_set_new(a, "address", json_string(x->target_ip));
		return ccm_call(t, I_ADDR_RESERVED, "POST", a, "regions/%s/addresses", j->region);
	}
	case I_ADDR_RESERVED:
		if (ccm_ok(t)) {
			x->held = true;
			if (x->target_ip[0]) {
				snprintf(x->ip, sizeof(x->ip), "%s", x->target_ip);
				t->step = I_RULE_PREP;
				return ccm_internal_ensure(t);
			}
			return ccm_call(t, I_ADDR_READ, "GET", NULL, "regions/%s/addresses/%s",
					j->region, j->lb);
		}
		/* "by an internal address: a StatusConflict; by an external address: a
		 * BadRequest" */
		if (!ccm_is(t, 409) && !ccm_is(t, 400))
			return ccm_fail_call(t, "");
		if (!x->target_ip[0]) {
			snprintf(err, sizeof(err),
				 "failed to reserve address \"%s\" with no specific IP, err: %s",
				 j->lb, t->r.err);
			return ccm_fail(t, "%s", err);
		}
		{
			char *path = str_printf("regions/%s/addresses", j->region),
			     *f = str_printf("address eq \"%s\"", x->target_ip);

			if (!path || !f || ccm_add_query(&path, "filter", f) < 0) {
				free(path);
				free(f);
				return ccm_fail(t, "out of memory");
			}
			free(f);
			ret = ccm_call(t, I_ADDR_BY_IP, "GET", NULL, "%s", path);
			free(path);
			return ret;
		}
	case I_ADDR_READ:
		if (!ccm_ok(t))
			return ilb_fail(t, t->r.err);
		snprintf(x->ip, sizeof(x->ip), "%s", kj_str(t->r.body, "address") ?: "");
		t->step = I_RULE_PREP;
		return ccm_internal_ensure(t);
	case I_ADDR_BY_IP: {
		const json_t *a = ccm_ok(t) ? address_with_ip(t->r.body, x->target_ip) : NULL;

		if (!a) {
			snprintf(
			    err, sizeof(err),
			    "failed to get address by IP \"%s\" after reservation attempt, err: "
			    "%s",
			    x->target_ip,
			    ccm_ok(t) ? "googleapi: Error 404: no address holds it" : t->r.err);
			return ccm_fail(t, "%s", err);
		}
		if (strcmp(kj_str(a, "addressType") ?: "", "INTERNAL"))
			return ccm_fail(t,
					"address \"%s\" does not have the expected address type "
					"\"INTERNAL\", actual: \"%s\"",
					kj_str(a, "name") ?: "", kj_str(a, "addressType") ?: "");
		/* Not named after the load balancer: the user's, used and never released. */
		x->try_release = !strcmp(kj_str(a, "name") ?: "", j->lb);
		x->held = true;
		snprintf(x->ip, sizeof(x->ip), "%s", x->target_ip);
	}
		__attribute__((fallthrough));
	case I_RULE_PREP:
		json_decref(x->rule);
		x->rule = rule_want(j, x);
		if (!x->rule)
			return ilb_fail(t, "out of memory");
		if (j->rule && !rules_equal(j->rule, x->rule)) {
			log_info("ccm: ensureInternalLoadBalancer(%s): forwarding rule changed - "
				 "deleting existing forwarding rule",
				 j->lb);
			return ccm_call(t, I_RULE_DELETED, "DELETE", NULL,
					"regions/%s/forwardingRules/%s", j->region, j->lb);
		}
		t->r.status = 200;
		t->step = I_RULE_DELETED;
		return ccm_internal_ensure(t);
	case I_RULE_DELETED:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ilb_fail(t, t->r.err);
		x->rule_deleted = j->rule != NULL;
		/* ensureInternalBackendService */
		return ccm_call(t, I_BS_GOT, "GET", NULL, "regions/%s/backendServices/%s",
				j->region, j->lb);
	case I_BS_GOT: {
		json_t *want = bs_body(j, x);

		if (ccm_is(t, 404)) {
			log_info("ccm: ensureInternalBackendService: creating backend service %s",
				 j->lb);
			return ccm_call(t, I_BS_WRITTEN, "POST", want, "regions/%s/backendServices",
					j->region);
		}
		if (!ccm_ok(t)) {
			json_decref(want);
			return ilb_fail(t, t->r.err);
		}
		if (bs_equal(want, t->r.body)) {
			json_decref(want);
			t->step = I_RULE_CREATE;
			return ccm_internal_ensure(t);
		}
		/* "Set fingerprint for optimistic locking" */
		json_object_set(want, "fingerprint", json_object_get(t->r.body, "fingerprint"));
		log_info("ccm: ensureInternalBackendService: updating backend service %s", j->lb);
		return ccm_call(t, I_BS_WRITTEN, "PUT", want, "regions/%s/backendServices/%s",
				j->region, j->lb);
	}
	case I_BS_WRITTEN:
		if (!ccm_ok(t))
			return ilb_fail(t, t->r.err);
		__attribute__((fallthrough));
	case I_RULE_CREATE:
		if (x->rule_deleted || !j->rule) {
			log_info("ccm: ensureInternalLoadBalancer(%s): creating forwarding rule",
				 j->lb);
			return ccm_call(t, I_RULE_CREATED, "POST", json_incref(x->rule),
					"regions/%s/forwardingRules", j->region);
		}
		t->r.status = 200;
		__attribute__((fallthrough));
	case I_RULE_CREATED:
		if (!ccm_ok(t))
			return ilb_fail(t, t->r.err);
		return ccm_call(t, I_RULE_GOT, "GET", NULL, "regions/%s/forwardingRules/%s",
				j->region, j->lb);
	case I_RULE_GOT:
		if (!ccm_ok(t))
			return ilb_fail(t, t->r.err);
		snprintf(x->ip, sizeof(x->ip), "%s", kj_str(t->r.body, "IPAddress") ?: "");
		/* The firewalls target the nodes' tags (GetNodeTags -> computeHostTags). */
		ccm_spawn(t, ccm_find_hosts, NULL, NULL);
		t->step = I_HOSTS;
		return CCM_WAIT;
	case I_HOSTS: {
		char name[96], *desc;
		json_t *src, *ranges;
		char proto[8];
		struct ifw *f;

		if (t->failed)
			return ilb_fail(t, t->err);
		src = ccm_source_ranges(svc, err, sizeof(err));
		if (!src)
			return ilb_fail(t, err);
		ranges = ccm_port_ranges(svc, proto, sizeof(proto));
		desc = ccm_firewall_description(j, x->ip);
		snprintf(name, sizeof(name), "k8s-fw-%s", j->lb);
		f = internal_firewall(t, name, desc ? desc : "", x->ip, src, x->proto, ranges);
		free(desc);
		if (!f)
			return ilb_fail(t, t->err[0] ? t->err : "out of memory");
		ccm_spawn(t, ensure_ifw, f, ifw_free);
		t->step = I_FW_TRAFFIC;
		return CCM_WAIT;
	}
	case I_FW_TRAFFIC: {
		char name[96], port[16];
		struct ifw *f;

		if (t->failed)
			return ilb_fail(t, t->err);
		/* makeHealthCheckFirewallName */
		if (x->hc.shared)
			snprintf(name, sizeof(name), "k8s-%s-node-hc", j->cid);
		else
			snprintf(name, sizeof(name), "%s-hc", j->lb);
		snprintf(port, sizeof(port), "%u", x->hc.port);
		f = internal_firewall(t, name, "", "", ccm_l4_source_ranges(), "TCP",
				      json_pack("[s]", port));
		if (!f)
			return ilb_fail(t, t->err[0] ? t->err : "out of memory");
		ccm_spawn(t, ensure_ifw, f, ifw_free);
		t->step = I_FW_HC;
		return CCM_WAIT;
	}
	case I_FW_HC: {
		const char *old;

		if (t->failed)
			return ilb_fail(t, t->err);
		json_decref(j->status);
		j->status = json_pack("{s:[{s:s}]}", "ingress", "ip", x->ip);
		/* clearPreviousInternalResources: a health check no longer used goes. */
		old = json_string_value(
		    json_array_get(json_object_get(x->old_bs, "healthChecks"), 0));
		old = old && strrchr(old, '/') ? strrchr(old, '/') + 1 : NULL;
		if (old && strcmp(old, x->hc.name)) {
			snprintf(x->old_hc, sizeof(x->old_hc), "%s", old);
			log_info(
			    "ccm: clearPreviousInternalResources(%s): expected health check %s "
			    "does not match previous %s - deleting health check",
			    j->lb, x->hc.name, old);
			return ccm_call(t, I_OLD_HC, "DELETE", NULL, "global/healthChecks/%s", old);
		}
		return ilb_finish(t);
	}
	case I_OLD_HC:
		if (ccm_in_use(t) || (!ccm_ok(t) && !ccm_is(t, 404))) {
			if (!ccm_in_use(t))
				log_warn("ccm: could not delete existing healthcheck %s: %s",
					 x->old_hc, t->r.err);
			return ilb_finish(t);
		}
		return ccm_call(t, I_OLD_HC_FW, "DELETE", NULL, "global/firewalls/%s-hc",
				x->old_hc);
	case I_OLD_HC_FW:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			log_warn("ccm: could not delete health check firewall %s-hc: %s", x->old_hc,
				 t->r.err);
		return ilb_finish(t);
	case I_RELEASED:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			log_warn("ccm: ensureInternalLoadBalancer: failed to release address "
				 "reservation, possibly causing an orphan: %s",
				 t->r.err);
		return CCM_DONE;
	}
	return CCM_DONE;
}

/* ---- updateInternalLoadBalancer ---- */

int ccm_internal_update(struct ccm_task *t)
{
	struct ccm_job *j = t->job;
	struct groups *g = t->loc;

	switch (t->step) {
	case 0:
		g = groups_new(j);
		if (!g)
			return ccm_fail(t, "out of memory");
		t->loc = g;
		t->loc_free = groups_free;
		ccm_spawn(t, group_zone, g, NULL);
		t->step = 1;
		return CCM_WAIT;
	case 1:
		if (t->failed)
			return CCM_DONE;
		/* ensureInternalBackendServiceGroups */
		return ccm_call(t, 2, "GET", NULL, "regions/%s/backendServices/%s", j->region,
				j->lb);
	case 2: {
		json_t *have, *backends, *l, *bs;
		size_t i;

		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		have = groups_of(t->r.body);
		if (ccm_same_set(have, g->links)) {
			json_decref(have);
			return CCM_DONE;
		}
		json_decref(have);
		bs = json_deep_copy(t->r.body);
		backends = json_array();
		json_array_foreach(g->links, i, l)
		    json_array_append_new(backends, json_pack("{s:O}", "group", l));
		json_object_set_new(bs, "backends", backends);
		log_info("ccm: ensureInternalBackendServiceGroups: updating backend service %s",
			 j->lb);
		return ccm_call(t, 3, "PUT", bs, "regions/%s/backendServices/%s", j->region, j->lb);
	}
	case 3:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		return CCM_DONE;
	}
	return CCM_DONE;
}

/* ---- ensureInternalLoadBalancerDeleted ---- */

struct idel {
	char hc[64];
	bool shared;
	json_t *zones;
	size_t at;
};

static void idel_free(void *p)
{
	struct idel *d = p;

	if (d)
		json_decref(d->zones);
	free(d);
}

int ccm_internal_delete(struct ccm_task *t)
{
	struct ccm_job *j = t->job;
	struct idel *d = t->loc;
	int ret;

	switch (t->step) {
	case 0:
		d = calloc(1, sizeof(*d));
		if (!d)
			return ccm_fail(t, "out of memory");
		t->loc = d;
		t->loc_free = idel_free;
		d->shared = ccm_service_hc_port(j->svc) == 0;
		if (d->shared)
			snprintf(d->hc, sizeof(d->hc), "k8s-%s-node", j->cid);
		else
			snprintf(d->hc, sizeof(d->hc), "%s", j->lb);
		/* ensureAddressDeleted (its error is not looked at) */
		return ccm_call(t, 1, "DELETE", NULL, "regions/%s/addresses/%s", j->region, j->lb);
	case 1:
		return ccm_call(t, 2, "DELETE", NULL, "regions/%s/forwardingRules/%s", j->region,
				j->lb);
	case 2:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail_call(t, "");
		return ccm_call(t, 3, "DELETE", NULL, "regions/%s/backendServices/%s", j->region,
				j->lb);
	case 3:
		/* teardownInternalBackendService: gone or still used by another is fine */
		if (!ccm_ok(t) && !ccm_is(t, 404) && !ccm_in_use(t))
			return ccm_fail(t, "failed to delete backend service: %s, err: %s", j->lb,
					t->r.err);
		return ccm_call(t, 4, "DELETE", NULL, "global/firewalls/k8s-fw-%s", j->lb);
	case 4:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail_call(t, "");
		/* the legacy name of the traffic firewall */
		return ccm_call(t, 5, "DELETE", NULL, "global/firewalls/%s", j->lb);
	case 5:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail_call(t, "");
		return ccm_call(t, 6, "DELETE", NULL, "global/healthChecks/%s", d->hc);
	case 6:
		/* teardownInternalHealthCheckAndFirewall */
		if (ccm_in_use(t)) {
			t->step = 8;
			t->r.status = 200;
			return ccm_internal_delete(t);
		}
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail(t, "failed to delete health check: %s, err: %s", d->hc,
					t->r.err);
		return ccm_call(t, 7, "DELETE", NULL, "global/firewalls/%s-hc", d->hc);
	case 7:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail(t, "failed to delete health check firewall: %s-hc, err: %s",
					d->hc, t->r.err);
		t->step = 8;
		__attribute__((fallthrough));
	case 8:
		/* ensureInternalInstanceGroupsDeleted: every zone of the region */
		return ccm_call(t, 9, "GET", NULL, "regions/%s", j->region);
	case 9:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		d->zones = json_incref(json_object_get(t->r.body, "zones"));
		d->at = 0;
		t->step = 10;
		t->r.status = 200;
		__attribute__((fallthrough));
	case 10:
		/* "expect ResourceInuse error if needed by other LBs" */
		if (!ccm_ok(t) && !ccm_is(t, 404) && !ccm_in_use(t))
			return ccm_fail_call(t, "");
		if (d->at < json_array_size(d->zones)) {
			const char *z =
			    strrchr(json_string_value(json_array_get(d->zones, d->at)) ?: "", '/');

			d->at++;
			return ccm_call(t, 10, "DELETE", NULL, "zones/%s/instanceGroups/k8s-ig--%s",
					z ? z + 1 : "", j->cid);
		}
		log_info("ccm: ensureInternalLoadBalancerDeleted(%s): removing %s finalizer", j->lb,
			 ILB_FINALIZER);
		ret = ccm_finalizer(j, ILB_FINALIZER, false);
		if (ret < 0 && ret != -ENOENT)
			return ccm_fail(t, "failed to remove finalizer '%s' on service %s: %s",
					ILB_FINALIZER, j->nsname, strerror(-ret));
		return CCM_DONE;
	}
	return CCM_DONE;
}
