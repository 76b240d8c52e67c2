/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The rules about Services and what publishes them (note §2, §3):
 *
 *   lb-pending                 a LoadBalancer Service without EXTERNAL-IP for longer than
 *                              --pending-after, with the CCM's last SyncLoadBalancerFailed
 *   lb-ip-without-ccm          loadBalancerIP, and no cloud controller manager at all
 *   ingress-health-check-port  the ingress backend service sends to a node port its health
 *                              check does not probe
 *   lb-firewall-missing        a LoadBalancer Service's port that no firewall rule lets
 *                              through to the nodes
 *
 * (lb-ip-not-reserved, in check_set.c, is the other half of "why is it pending".) These rules
 * need the state as the APIs show it (Service status and creationTimestamp, Events, firewall
 * rules): --live reads it, and files saved from kubectl get -o yaml and gcloud --format=yaml
 * carry it; a manifest without status is not judged pending.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "doctor/internal.h"

#define PENDING_AFTER_DEFAULT_S 300

#define FOR_KEPT(d, k, kind_)                                                                      \
	for (const struct kept *k = (d)->kept, *k##_end = k ? k + (d)->n_kept : NULL;              \
	     k && k < k##_end; k++)                                                                \
		if (k->kind == (kind_))

static const char *last_segment(const char *s)
{
	const char *slash = s ? strrchr(s, '/') : NULL;

	return slash ? slash + 1 : (s ? s : "");
}

static bool refers_to(const char *ref, const struct ynode *obj)
{
	const char *self = ystr(ymap_get(obj, "selfLink"));
	const char *name = ystr(ymap_get(obj, "name"));

	if (!ref)
		return false;
	if (self && !strcmp(ref, self))
		return true;
	return name && !strcmp(last_segment(ref), name);
}

static const struct kept *find(const struct doctor *d, enum kept_kind kind, const char *ref)
{
	FOR_KEPT(d, k, kind)
	if (refers_to(ref, k->obj))
		return k;
	return NULL;
}

/* "2026-12-04T23:06:32Z" (or with fractions, or an offset) as seconds since the epoch. */
static int64_t parse_time(const char *s)
{
	struct tm tm = {0};
	int off_h = 0, off_m = 0;
	char sign = 0;
	const char *p;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	p = s + 19;
	while (*p == '.' || (*p >= '0' && *p <= '9'))
		p++;
	if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &off_h, &off_m) == 2)
		sign = *p;
	return (int64_t)timegm(&tm) - (sign == '+'   ? 1
				       : sign == '-' ? -1
						     : 0) *
					  ((int64_t)off_h * 3600 + off_m * 60);
}

static void human(int64_t s, char *out, size_t len)
{
	if (s >= 86400)
		snprintf(out, len, "%lldd%lldh", (long long)(s / 86400),
			 (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(out, len, "%lldh%lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(out, len, "%lldm", (long long)(s / 60));
	else
		snprintf(out, len, "%llds", (long long)s);
}

static const char *svc_ns(const struct ynode *svc)
{
	return ystr(yget(svc, "metadata", "namespace", NULL)) ?: "default";
}

static const char *svc_name(const struct ynode *svc)
{
	return ystr(yget(svc, "metadata", "name", NULL)) ?: "?";
}

static bool is_lb(const struct ynode *svc)
{
	return yscalar_eq(yget(svc, "spec", "type", NULL), "LoadBalancer") &&
	       !yget(svc, "spec", "loadBalancerClass", NULL);
}

static bool has_ingress(const struct ynode *svc)
{
	const struct ynode *ing = yget(svc, "status", "loadBalancer", "ingress", NULL);

	return yis_seq(ing) && ing->n > 0;
}

/* ---- lb-pending ---- */

/* The newest SyncLoadBalancerFailed event about the Service. */
static const struct kept *last_failure(const struct doctor *d, const struct ynode *svc)
{
	const char *uid = ystr(yget(svc, "metadata", "uid", NULL));
	const struct kept *best = NULL;
	int64_t best_t = -1;

	FOR_KEPT(d, k, K_LB_EVENT)
	{
		const struct ynode *io = ymap_get(k->obj, "involvedObject");
		const char *euid = ystr(ymap_get(io, "uid"));
		int64_t t = parse_time(ystr(ymap_get(k->obj, "lastTimestamp"))
					   ?: ystr(ymap_get(k->obj, "eventTime")));

		if (!yscalar_eq(ymap_get(io, "kind"), "Service") ||
		    !yscalar_eq(ymap_get(io, "name"), svc_name(svc)) ||
		    strcmp(ystr(ymap_get(io, "namespace")) ?: "default", svc_ns(svc)) != 0 ||
		    (uid && euid && strcmp(uid, euid) != 0))
			continue;
		if (t >= best_t) {
			best_t = t;
			best = k;
		}
	}
	return best;
}

static int check_pending(struct doctor *d)
{
	int64_t now = d->opt.now ? d->opt.now : (int64_t)time(NULL);
	int64_t after = d->opt.lb_pending_after_s ? (int64_t)d->opt.lb_pending_after_s
						  : PENDING_AFTER_DEFAULT_S;
	int ret = 0;

	FOR_KEPT(d, k, K_SERVICE)
	{
		int64_t created =
		    parse_time(ystr(yget(k->obj, "metadata", "creationTimestamp", NULL)));
		const struct kept *ev;
		char age[32];

		if (ret < 0)
			break;
		/* State as an API shows it (a manifest has no creationTimestamp, no status). */
		if (!is_lb(k->obj) || has_ingress(k->obj) || created < 0 || now - created < after)
			continue;
		human(now - created, age, sizeof(age));
		ev = last_failure(d, k->obj);
		if (ev) {
			uint64_t count = 1;

			yuint(ymap_get(ev->obj, "count"), UINT32_MAX, &count);
			ret = report(
			    d, R_LB_PENDING, k->source, k->obj,
			    "LoadBalancer Service %s/%s has been pending for %s; the cloud "
			    "controller manager's last failure (%llu time%s): %s",
			    svc_ns(k->obj), svc_name(k->obj), age, (unsigned long long)count,
			    count == 1 ? "" : "s", ystr(ymap_get(ev->obj, "message")) ?: "?");
		} else {
			ret = report(
			    d, R_LB_PENDING, k->source, k->obj,
			    "LoadBalancer Service %s/%s has been pending for %s, with no "
			    "failure event from the cloud controller manager: is it running, "
			    "with the GCE provider?",
			    svc_ns(k->obj), svc_name(k->obj), age);
		}
	}
	return ret;
}

/* ---- lb-ip-without-ccm ---- */

static int check_without_ccm(struct doctor *d)
{
	bool talos = false;
	int ret = 0;

	FOR_KEPT(d, k, K_CCM)
	return 0;
	FOR_KEPT(d, k, K_TALOS)
	talos = true;
	/* Only when the inputs say what runs in the cluster (workloads, a Talos config). */
	if (!d->workloads_seen && !d->workloads_complete && !talos)
		return 0;
	FOR_KEPT(d, k, K_SERVICE_LB)
	{
		if (ret < 0)
			break;
		ret = report(d, R_LB_WITHOUT_CCM, k->source, k->node,
			     "loadBalancerIP %.*s: no cloud controller manager %s: nothing creates "
			     "the forwarding rule and the Service stays <pending>; deploy the GCP "
			     "CCM, or use a NodePort behind the ingress load balancer",
			     (int)k->node->n, k->node->str,
			     d->n_sources && d->sources[k->source].logical ? "runs in the cluster"
									   : "is among the inputs");
	}
	return ret;
}

/* ---- ingress-health-check-port ---- */

/* The port a health check probes, or 0 when it follows the backend (named or serving port). */
static uint64_t probed_port(const struct ynode *hc)
{
	static const char *const sub[] = {"tcpHealthCheck", "httpHealthCheck", "httpsHealthCheck",
					  "http2HealthCheck", "sslHealthCheck"};
	static const uint64_t dflt[] = {80, 80, 443, 443, 443};
	uint64_t p;

	if (yuint(ymap_get(hc, "port"), 65535, &p) == 0) /* a legacy HTTP(S) health check */
		return p;
	for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		const struct ynode *s = ymap_get(hc, sub[i]);
		const struct ynode *spec = ymap_get(s, "portSpecification");

		if (!s)
			continue;
		if (yscalar_eq(spec, "USE_NAMED_PORT") || yscalar_eq(spec, "USE_SERVING_PORT"))
			return 0;
		return yuint(ymap_get(s, "port"), 65535, &p) == 0 ? p : dflt[i];
	}
	return 0;
}

/* The value of named port name in the groups behind a backend service, or 0. */
static uint64_t named_port(const struct doctor *d, const struct ynode *bs, const char *name)
{
	const struct ynode *backends = ymap_get(bs, "backends");

	for (uint32_t i = 0; yis_seq(backends) && i < backends->n; i++) {
		const struct kept *g =
		    find(d, K_GCE_INSTANCE_GROUP, ystr(ymap_get(backends->items[i], "group")));
		const struct ynode *ports = g ? ymap_get(g->obj, "namedPorts") : NULL;

		for (uint32_t j = 0; yis_seq(ports) && j < ports->n; j++) {
			uint64_t p;

			if (yscalar_eq(ymap_get(ports->items[j], "name"), name) &&
			    yuint(ymap_get(ports->items[j], "port"), 65535, &p) == 0)
				return p;
		}
	}
	return 0;
}

/* The Service whose node port is port, or NULL. */
static const struct ynode *service_with_node_port(const struct doctor *d, uint64_t port)
{
	FOR_KEPT(d, k, K_SERVICE)
	{
		const struct ynode *ports = yget(k->obj, "spec", "ports", NULL);

		for (uint32_t i = 0; yis_seq(ports) && i < ports->n; i++) {
			uint64_t p;

			if (yuint(ymap_get(ports->items[i], "nodePort"), 65535, &p) == 0 &&
			    p == port)
				return k->obj;
		}
	}
	return NULL;
}

static int check_ingress_hc(struct doctor *d)
{
	int ret = 0;

	FOR_KEPT(d, k, K_GCE_BACKEND_SERVICE)
	{
		const char *port_name = ystr(ymap_get(k->obj, "portName"));
		const struct ynode *hcs = ymap_get(k->obj, "healthChecks");
		uint64_t target;

		if (ret < 0)
			break;
		if (!port_name || !(target = named_port(d, k->obj, port_name)))
			continue;
		for (uint32_t i = 0; yis_seq(hcs) && i < hcs->n && ret >= 0; i++) {
			const struct kept *hc = find(d, K_GCE_HEALTH_CHECK, ystr(hcs->items[i]));
			uint64_t probed = hc ? probed_port(hc->obj) : 0;
			const struct ynode *svc;

			if (!probed || probed == target)
				continue;
			svc = service_with_node_port(d, target);
			if (svc)
				ret = report(
				    d, R_INGRESS_HC_PORT, hc->source, hc->obj,
				    "health check %s probes port %llu, but backend service %s "
				    "sends to named port %s = %llu, the node port of Service "
				    "%s/%s: run talos-gcp expose --service %s/%s",
				    ystr(ymap_get(hc->obj, "name")) ?: "?",
				    (unsigned long long)probed,
				    ystr(ymap_get(k->obj, "name")) ?: "?", port_name,
				    (unsigned long long)target, svc_ns(svc), svc_name(svc),
				    svc_ns(svc), svc_name(svc));
			else
				ret = report(
				    d, R_INGRESS_HC_PORT, hc->source, hc->obj,
				    "health check %s probes port %llu, but backend service %s "
				    "sends to named port %s = %llu: the backends' health says "
				    "nothing about what serves them",
				    ystr(ymap_get(hc->obj, "name")) ?: "?",
				    (unsigned long long)probed,
				    ystr(ymap_get(k->obj, "name")) ?: "?", port_name,
				    (unsigned long long)target);
		}
	}
	return ret;
}

/* ---- lb-firewall-missing ---- */

/* Is every range of want inside one of the rule's source ranges? */
static bool sources_cover(const struct ynode *fw, const struct ynode *want)
{
	const struct ynode *src = ymap_get(fw, "sourceRanges");
	static const char any[] = "0.0.0.0/0";
	uint32_t n = yis_seq(want) && want->n ? want->n : 1;

	for (uint32_t i = 0; i < n; i++) {
		const char *w = yis_seq(want) && want->n ? ystr(want->items[i]) : any;
		struct cidr wc;
		bool in = false;

		if (!w || cidr_parse(w, &wc, 0) < 0)
			continue;
		for (uint32_t j = 0; yis_seq(src) && j < src->n && !in; j++) {
			struct cidr sc;

			in = ystr(src->items[j]) && cidr_parse(ystr(src->items[j]), &sc, 0) == 0 &&
			     cidr_contains(&sc, &wc);
		}
		if (!in)
			return false;
	}
	return true;
}

static bool allows(const struct ynode *fw, const char *proto, uint64_t port)
{
	const struct ynode *allowed = ymap_get(fw, "allowed");
	bool disabled = false;

	ybool(ymap_get(fw, "disabled"), &disabled);
	if (disabled ||
	    (ymap_get(fw, "direction") && !yscalar_eq(ymap_get(fw, "direction"), "INGRESS")))
		return false;
	for (uint32_t i = 0; yis_seq(allowed) && i < allowed->n; i++) {
		const struct ynode *a = allowed->items[i], *ports = ymap_get(a, "ports");
		const char *p = ystr(ymap_get(a, "IPProtocol")) ?: "";

		if (strcasecmp(p, proto) != 0 && strcmp(p, "all") != 0)
			continue;
		if (!yis_seq(ports) || ports->n == 0)
			return true;
		for (uint32_t j = 0; j < ports->n; j++) {
			unsigned lo = 0, hi = 0;
			const char *r = ystr(ports->items[j]);
			int n = r ? sscanf(r, "%u-%u", &lo, &hi) : 0;

			if ((n == 1 && lo == port) || (n == 2 && lo <= port && port <= hi))
				return true;
		}
	}
	return false;
}

/* Does the rule apply to a node instance (no target tags, or a tag one of them carries)? */
static bool targets_nodes(const struct doctor *d, const struct ynode *fw)
{
	const struct ynode *tags = ymap_get(fw, "targetTags");
	bool any_node = false;

	if (ymap_get(fw, "targetServiceAccounts"))
		return true; /* not judged: service accounts are not read */
	if (!yis_seq(tags) || tags->n == 0)
		return true;
	FOR_KEPT(d, in, K_GCE_INSTANCE)
	{
		const struct ynode *itags = yget(in->obj, "tags", "items", NULL);
		const char *name = ystr(ymap_get(in->obj, "name"));
		bool node = false;

		FOR_KEPT(d, n, K_NODE)
		if (yscalar_eq(yget(n->obj, "metadata", "name", NULL), name ? name : ""))
			node = true;
		if (!node)
			continue;
		any_node = true;
		for (uint32_t i = 0; yis_seq(itags) && i < itags->n; i++)
			for (uint32_t j = 0; j < tags->n; j++)
				if (ystr(itags->items[i]) &&
				    yscalar_eq(tags->items[j], ystr(itags->items[i])))
					return true;
	}
	return !any_node; /* no node instance read: nothing to judge by */
}

static int check_lb_firewall(struct doctor *d)
{
	int ret = 0;

	if (!d->firewalls_complete)
		return 0;
	FOR_KEPT(d, k, K_SERVICE)
	{
		const struct ynode *ports = yget(k->obj, "spec", "ports", NULL);
		const struct ynode *annots = yget(k->obj, "metadata", "annotations", NULL);

		if (ret < 0)
			break;
		/* Internal load balancers' clients are inside the VPC: other rules allow them. */
		if (!is_lb(k->obj) || !has_ingress(k->obj) ||
		    yscalar_eq(ymap_get(annots, "networking.gke.io/load-balancer-type"),
			       "Internal"))
			continue;
		for (uint32_t i = 0; yis_seq(ports) && i < ports->n && ret >= 0; i++) {
			const char *proto = ystr(ymap_get(ports->items[i], "protocol")) ?: "TCP";
			uint64_t port;
			bool ok = false;

			if (yuint(ymap_get(ports->items[i], "port"), 65535, &port) < 0)
				continue;
			/* From the clients: anyone, or loadBalancerSourceRanges. */
			FOR_KEPT(d, fw, K_GCE_FIREWALL)
			if (allows(fw->obj, proto, port) && targets_nodes(d, fw->obj) &&
			    sources_cover(fw->obj,
					  yget(k->obj, "spec", "loadBalancerSourceRanges", NULL)))
				ok = true;
			if (!ok)
				ret = report(
				    d, R_LB_FIREWALL_MISSING, k->source, ports->items[i],
				    "LoadBalancer Service %s/%s port %llu/%s: no firewall rule "
				    "allows it to the nodes, so every connection to its "
				    "EXTERNAL-IP times out; the CCM's k8s-fw-<lb> rule is missing, "
				    "disabled or targets other tags",
				    svc_ns(k->obj), svc_name(k->obj), (unsigned long long)port,
				    proto);
		}
	}
	return ret;
}

int check_services(struct doctor *d)
{
	int ret;

	if ((ret = check_pending(d)) < 0 || (ret = check_without_ccm(d)) < 0 ||
	    (ret = check_ingress_hc(d)) < 0 || (ret = check_lb_firewall(d)) < 0)
		return ret;
	return 0;
}
