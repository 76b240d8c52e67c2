/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The GCE provider's external load balancer, step by step as cloud-provider-gcp
 * providers/gce/gce_loadbalancer_external.go does it (ensureExternalLoadBalancer,
 * updateExternalLoadBalancer, ensureExternalLoadBalancerDeleted), with its naming
 * (gce_loadbalancer_naming.go):
 *
 *   ensure: the instances of the nodes (getInstancesByNames), the finalizer
 *     gke.networking.io/l4-netlb-v1, the network tier (annotation cloud.google.com/network-
 *     tier; resources of the other tier are deleted), the forwarding rule <lb> as it is
 *     (forwardingRuleNeedsUpdate: IP, port range, protocol), the address (verifyUserRequestedIP:
 *     loadBalancerIP must be a reserved regional address of the tier, or the rule's current
 *     IP; else ensureStaticIP reserves <lb>), firewall k8s-fw-<lb> (service ports,
 *     loadBalancerSourceRanges, the node tags), target pool <lb> and its legacy HTTP health
 *     check (k8s-<cid>-node on 10256 /healthz, or <lb> on the Service's healthCheckNodePort
 *     with externalTrafficPolicy: Local; its firewall k8s-<cid>-node-http-hc or
 *     k8s-<lb>-http-hc), the forwarding rule last. Rules and pools are not updated in place:
 *     a changed rule or pool is deleted and created again. An address it reserved itself is
 *     released once the rule holds the IP (the rule keeps it, ephemeral), and on failure.
 *   update: the pool's instances follow the nodes (addInstance/removeInstance, 1000 at a
 *     time), then the pool is read back and must have them all.
 *   delete: firewall, address, then rule, pool and health checks (a health check another
 *     pool still uses stays), in parallel as the Go code's goroutines, then the finalizer.
 *
 * The deny firewall (--enable-l4-deny-firewall) and XPN events are not emulated: off by
 * default in the real CCM too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/str.h"
#include "emu/kube/ccm.h"

/* ---- helpers shared with the internal load balancer ---- */

static json_t *strings(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Two arrays of strings hold the same set (equalStringSets). NULL is the empty set. */
bool ccm_same_set(const json_t *a, const json_t *b)
{
	size_t na = json_array_size(a), nb = json_array_size(b);
	const char **x, **y;
	bool eq = true;
	size_t i, m = 0, k = 0;

	x = calloc(na + 1, sizeof(*x));
	y = calloc(nb + 1, sizeof(*y));
	if (!x || !y) {
		free(x);
		free(y);
		return false;
	}
	for (i = 0; i < na; i++)
		x[i] = json_string_value(json_array_get(a, i)) ?: "";
	for (i = 0; i < nb; i++)
		y[i] = json_string_value(json_array_get(b, i)) ?: "";
	qsort(x, na, sizeof(*x), cmp_str);
	qsort(y, nb, sizeof(*y), cmp_str);
	/* Sets: duplicates count once. */
	while (eq && (m < na || k < nb)) {
		if (m < na && k < nb && !strcmp(x[m], y[k])) {
			const char *v = x[m];

			while (m < na && !strcmp(x[m], v))
				m++;
			while (k < nb && !strcmp(y[k], v))
				k++;
		} else {
			eq = false;
		}
	}
	free(x);
	free(y);
	return eq;
}

static int port_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

json_t *ccm_port_ranges(const json_t *svc, char *proto, size_t len)
{
	const json_t *ports = kj_path(svc, "spec.ports"), *p;
	json_t *out = json_array();
	int v[256];
	size_t n = 0, i;

	snprintf(proto, len, "%s", kj_str(json_array_get(ports, 0), "protocol") ?: "TCP");
	json_array_foreach(ports, i, p) if (n < 256) v[n++] =
	    (int)json_integer_value(json_object_get(p, "port"));
	qsort(v, n, sizeof(v[0]), port_cmp);
	/* getPortRanges: runs of consecutive ports become "lo-hi", duplicates are dropped. */
	for (i = 0; out && i < n;) {
		size_t j = i;
		char buf[32];

		while (j + 1 < n && (v[j + 1] == v[j] || v[j + 1] == v[j] + 1))
			j++;
		if (v[j] == v[i])
			snprintf(buf, sizeof(buf), "%d", v[i]);
		else
			snprintf(buf, sizeof(buf), "%d-%d", v[i], v[j]);
		json_array_append_new(out, json_string(buf));
		i = j + 1;
	}
	return out;
}

/* The ports one by one ("80", "443"): the other form a firewall may list them in. */
static json_t *port_numbers(const json_t *svc)
{
	const json_t *p;
	json_t *out = json_array();
	size_t i;

	json_array_foreach(kj_path(svc, "spec.ports"), i, p)
	{
		char buf[16];

		snprintf(buf, sizeof(buf), "%lld",
			 (long long)json_integer_value(json_object_get(p, "port")));
		json_array_append_new(out, json_string(buf));
	}
	return out;
}

/* A CIDR as net.ParseCIDR and IPNet.String() give it back (host bits cleared). */
static int normalize_cidr(const char *in, char *out, size_t len)
{
	unsigned a, b, c, d, p;
	char extra;
	uint32_t ip, mask;

	if (sscanf(in, "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &p, &extra) != 5 || a > 255 || b > 255 ||
	    c > 255 || d > 255 || p > 32)
		return -EINVAL;
	ip = (a << 24) | (b << 16) | (c << 8) | d;
	mask = p ? 0xffffffffu << (32 - p) : 0;
	ip &= mask;
	snprintf(out, len, "%u.%u.%u.%u/%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255,
		 p);
	return 0;
}

json_t *ccm_source_ranges(const json_t *svc, char *err, size_t errlen)
{
	const json_t *list = kj_path(svc, "spec.loadBalancerSourceRanges"), *v;
	const char *annot = kj_str(svc, "metadata.annotations.service\\.beta\\.kubernetes\\.io/"
					"load-balancer-source-ranges");
	json_t *out = json_array();
	char buf[32];
	size_t i;

	/* servicehelpers.GetLoadBalancerSourceRanges: the field, else the annotation. */
	if (!annot) {
		const json_t *a = kj_path(svc, "metadata.annotations");

		annot = json_string_value(
		    json_object_get(a, "service.beta.kubernetes.io/load-balancer-source-ranges"));
	}
	if (json_array_size(list)) {
		json_array_foreach(list, i, v)
		{
			if (normalize_cidr(json_string_value(v) ?: "", buf, sizeof(buf)) < 0) {
				snprintf(err, errlen,
					 "service.Spec.LoadBalancerSourceRanges: %s is not valid. "
					 "Expecting a list of IP ranges. For example, 10.0.0.0/24. "
					 "Error msg: invalid CIDR address: %s",
					 json_string_value(v) ?: "", json_string_value(v) ?: "");
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, json_string(buf));
		}
		return out;
	}
	if (annot && *annot) {
		char *copy = strdup(annot), *save = NULL, *tok;

		for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok;
		     tok = strtok_r(NULL, ",", &save)) {
			while (*tok == ' ')
				tok++;
			if (normalize_cidr(tok, buf, sizeof(buf)) < 0) {
				snprintf(
				    err, errlen,
				    "service.beta.kubernetes.io/load-balancer-source-ranges: %s "
				    "is not valid. Expecting a comma-separated list of source IP "
				    "ranges. For example, 10.0.0.0/24,192.168.2.0/24",
				    annot);
				free(copy);
				json_decref(out);
				return NULL;
			}
			json_array_append_new(out, json_string(buf));
		}
		free(copy);
		return out;
	}
	json_array_append_new(out, json_string("0.0.0.0/0"));
	return out;
}

unsigned ccm_service_hc_port(const json_t *svc)
{
	/* servicehelpers.GetServiceHealthCheckPathPort: LoadBalancer, Local, a port allocated. */
	if (strcmp(kj_str(svc, "spec.type") ?: "", "LoadBalancer") != 0 ||
	    strcmp(kj_str(svc, "spec.externalTrafficPolicy") ?: "", "Local") != 0)
		return 0;
	return (unsigned)json_integer_value(kj_path(svc, "spec.healthCheckNodePort"));
}

json_t *ccm_l4_source_ranges(void)
{
	static const char *const r[] = {"130.211.0.0/22", "209.85.152.0/22", "209.85.204.0/22",
					"35.191.0.0/16"};

	return strings(r, 4);
}

char *ccm_firewall_description(const struct ccm_job *j, const char *ip)
{
	return str_printf(
	    "{\"kubernetes.io/service-name\":\"%s\", \"kubernetes.io/service-ip\":\"%s\"}",
	    j->nsname, ip);
}

json_t *ccm_host_tags(const struct ccm_job *j, char *err, size_t errlen)
{
	json_t *tags = json_array(), *h;
	size_t i;

	json_array_foreach(j->hosts, i, h)
	{
		const char *name = kj_str(h, "name") ?: "", *best = NULL;
		json_t *tag;
		size_t k;

		json_array_foreach(json_object_get(h, "tags"), k, tag)
		{
			const char *t = json_string_value(tag) ?: "";

			if (!strncmp(name, t, strlen(t)) && (!best || strlen(t) > strlen(best)))
				best = t;
		}
		if (!best) {
			snprintf(
			    err, errlen,
			    "no node tags supplied and also failed to parse the given lists of "
			    "hosts for tags. Abort creating firewall rule");
			json_decref(tags);
			return NULL;
		}
		json_array_append_new(tags, json_string(best));
	}
	/* A set (sets.NewString), sorted. */
	{
		json_t *sorted = json_array();
		size_t n = json_array_size(tags);
		const char **v = calloc(n + 1, sizeof(*v));

		for (i = 0; v && i < n; i++)
			v[i] = json_string_value(json_array_get(tags, i));
		if (v)
			qsort(v, n, sizeof(*v), cmp_str);
		for (i = 0; v && i < n; i++)
			if (i == 0 || strcmp(v[i], v[i - 1]))
				json_array_append_new(sorted, json_string(v[i]));
		free(v);
		json_decref(tags);
		tags = sorted;
	}
	return tags;
}

bool ccm_firewall_differs(const json_t *live, const json_t *want, bool check_destination)
{
	const json_t *la = json_array_get(json_object_get(live, "allowed"), 0),
		     *wa = json_array_get(json_object_get(want, "allowed"), 0);

	if (strcmp(kj_str(live, "description") ?: "", kj_str(want, "description") ?: "") ||
	    json_array_size(json_object_get(live, "allowed")) != 1 ||
	    strcmp(kj_str(la, "IPProtocol") ?: "", kj_str(wa, "IPProtocol") ?: "") ||
	    !ccm_same_set(json_object_get(la, "ports"), json_object_get(wa, "ports")) ||
	    !ccm_same_set(json_object_get(live, "sourceRanges"),
			  json_object_get(want, "sourceRanges")))
		return true;
	if (check_destination && !ccm_same_set(json_object_get(live, "destinationRanges"),
					       json_object_get(want, "destinationRanges")))
		return true;
	return false;
}

/* ---- getInstancesByNames ---- */

struct find_hosts {
	json_t *zones; /* zone names of the region */
	size_t zone;
	char *page;   /* nextPageToken */
	json_t *want; /* name -> true */
};

static void find_hosts_free(void *p)
{
	struct find_hosts *f = p;

	if (!f)
		return;
	json_decref(f->zones);
	json_decref(f->want);
	free(f->page);
	free(f);
}

static int list_zone(struct ccm_task *t, struct find_hosts *f)
{
	const char *zone = json_string_value(json_array_get(f->zones, f->zone));
	char *path = str_printf("zones/%s/instances", zone);
	int ret;

	/* g.c.Instances().List(ctx, zone, filter.Regexp("name", prefix+".*")) */
	if (!path || ccm_add_query(&path, "filter", "name eq \".*\"") < 0 ||
	    (f->page && ccm_add_query(&path, "pageToken", f->page) < 0)) {
		free(path);
		return ccm_fail(t, "out of memory");
	}
	ret = ccm_call(t, 2, "GET", NULL, "%s", path);
	free(path);
	return ret;
}

int ccm_find_hosts(struct ccm_task *t)
{
	struct ccm_job *j = t->job;
	struct find_hosts *f = t->loc;
	const json_t *n, *z, *inst;
	json_t *tags;
	size_t i;

	switch (t->step) {
	case 0:
		f = calloc(1, sizeof(*f));
		if (!f)
			return ccm_fail(t, "out of memory");
		t->loc = f;
		t->loc_free = find_hosts_free;
		f->want = json_object();
		json_array_foreach(j->nodes, i, n)
		    json_object_set_new(f->want, kj_str(n, "metadata.name") ?: "", json_true());
		json_decref(j->hosts);
		j->hosts = json_array();
		/* The managed zones: those of the region (regional cluster). */
		return ccm_call(t, 1, "GET", NULL, "regions/%s", j->region);
	case 1:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		f->zones = json_array();
		json_array_foreach(json_object_get(t->r.body, "zones"), i, z)
		{
			const char *s = strrchr(json_string_value(z) ?: "", '/');

			json_array_append_new(f->zones, json_string(s ? s + 1 : ""));
		}
		f->zone = 0;
		if (!json_array_size(f->zones))
			break;
		return list_zone(t, f);
	case 2:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		json_array_foreach(json_object_get(t->r.body, "items"), i, inst)
		{
			const char *name = kj_str(inst, "name") ?: "";

			if (!json_is_true(json_object_get(f->want, name)))
				continue;
			json_object_set_new(f->want, name, json_false()); /* found once */
			tags = kj_path(inst, "tags.items");
			json_array_append_new(
			    j->hosts, json_pack("{s:s, s:O, s:s, s:o}", "name", name, "zone",
						json_array_get(f->zones, f->zone), "url",
						kj_str(inst, "selfLink") ?: "", "tags",
						tags ? json_incref(tags) : json_array()));
		}
		free(f->page);
		f->page = kj_str(t->r.body, "nextPageToken")
			      ? strdup(kj_str(t->r.body, "nextPageToken"))
			      : NULL;
		if (!f->page)
			f->zone++;
		if (f->zone < json_array_size(f->zones) &&
		    json_array_size(j->hosts) < json_object_size(f->want))
			return list_zone(t, f);
		break;
	}
	if (json_array_size(j->hosts) == 0)
		return ccm_fail(t, "instance not found");
	if (json_array_size(j->hosts) < json_object_size(f->want))
		log_warn(
		    "ccm: getFoundInstanceByNames - input instances %zu, found %zu. Continuing "
		    "LoadBalancer Update",
		    json_object_size(f->want), json_array_size(j->hosts));
	return CCM_DONE;
}

/* ---- the pieces ---- */

/* A legacy HTTP health check wanted (makeHTTPHealthCheck). */
struct hc_want {
	char name[64];
	char path[64];
	unsigned port;
	bool nodes; /* the cluster's shared node health check */
	char self[512];
};

static json_t *hc_body(const struct hc_want *h)
{
	char desc[128];

	snprintf(desc, sizeof(desc), "{\"kubernetes.io/service-name\":\"%s\"}", h->name);
	return json_pack("{s:s, s:i, s:s, s:s, s:s, s:i, s:i, s:i, s:i}", "name", h->name, "port",
			 (int)h->port, "requestPath", h->path, "host", "", "description", desc,
			 "checkIntervalSec", HC_INTERVAL_S, "timeoutSec", HC_TIMEOUT_S,
			 "healthyThreshold", HC_HEALTHY, "unhealthyThreshold", HC_UNHEALTHY);
}

/* ensureHTTPHealthCheck: create it, or correct parameters that drifted (never lower). */
static int ensure_hc(struct ccm_task *t)
{
	struct hc_want *h = t->loc;

	switch (t->step) {
	case 0:
		return ccm_call(t, 1, "GET", NULL, "global/httpHealthChecks/%s", h->name);
	case 1:
		if (ccm_is(t, 404))
			return ccm_call(t, 2, "POST", hc_body(h), "global/httpHealthChecks");
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		{
			const json_t *live = t->r.body;
			json_t *want = hc_body(h);
			static const char *const mins[] = {"checkIntervalSec", "timeoutSec",
							   "unhealthyThreshold",
							   "healthyThreshold"};
			bool drift =
			    json_integer_value(json_object_get(live, "port")) != h->port ||
			    strcmp(kj_str(live, "requestPath") ?: "", h->path) ||
			    strcmp(kj_str(live, "description") ?: "", kj_str(want, "description"));

			for (size_t i = 0; i < 4; i++) {
				json_int_t lv = json_integer_value(json_object_get(live, mins[i])),
					   wv = json_integer_value(json_object_get(want, mins[i]));

				if (lv < wv)
					drift = true;
				else /* mergeHTTPHealthChecks: larger values are kept */
					json_object_set_new(want, mins[i], json_integer(lv));
			}
			if (!drift) {
				json_decref(want);
				snprintf(h->self, sizeof(h->self), "%s",
					 kj_str(live, "selfLink") ?: "");
				return CCM_DONE;
			}
			log_warn("ccm: health check %s exists but parameters have drifted - "
				 "updating...",
				 h->name);
			return ccm_call(t, 2, "PUT", want, "global/httpHealthChecks/%s", h->name);
		}
	case 2:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		return ccm_call(t, 3, "GET", NULL, "global/httpHealthChecks/%s", h->name);
	case 3:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		snprintf(h->self, sizeof(h->self), "%s", kj_str(t->r.body, "selfLink") ?: "");
		return CCM_DONE;
	}
	return CCM_DONE;
}

/* The firewall for Google's health checkers (ensureHTTPHealthCheckFirewall). */
struct hcfw {
	const struct hc_want *hc;
	const char *ip;
	char name[96];
	json_t *want;
};

/* MakeHealthCheckFirewallName */
static void hc_firewall_name(const struct ccm_job *j, const char *hc, bool nodes, char *out,
			     size_t len)
{
	if (nodes)
		snprintf(out, len, "k8s-%s-node-http-hc", j->cid);
	else
		snprintf(out, len, "k8s-%s-http-hc", hc);
}

json_t *ccm_firewall_body(const struct ccm_job *j, const char *name, const char *desc,
			  const char *ip, json_t *sources, const char *proto, json_t *ports,
			  json_t *tags)
{
	json_t *fw = json_pack("{s:s, s:s, s:s, s:o, s:o, s:[{s:s, s:o}], s:i}", "name", name,
			       "description", desc, "network", j->network, "sourceRanges", sources,
			       "targetTags", tags, "allowed", "IPProtocol", proto, "ports", ports,
			       "priority", FIREWALL_PRIORITY_DEFAULT);

	if (fw && ip && *ip)
		json_object_set_new(fw, "destinationRanges", json_pack("[s]", ip));
	return fw;
}

static int ensure_hc_firewall(struct ccm_task *t)
{
	struct ccm_job *j = t->job;
	struct hcfw *f = t->loc;
	char err[256], port[16], *desc;
	json_t *tags;

	switch (t->step) {
	case 0:
		hc_firewall_name(j, f->hc->name, f->hc->nodes, f->name, sizeof(f->name));
		tags = ccm_host_tags(j, err, sizeof(err));
		if (!tags)
			return ccm_fail(t, "%s", err);
		desc = f->hc->nodes ? str_printf("{\"kubernetes.io/cluster-id\":\"%s\"}", j->cid)
				    : ccm_firewall_description(j, f->ip);
		snprintf(port, sizeof(port), "%u", f->hc->port);
		f->want =
		    ccm_firewall_body(j, f->name, desc ? desc : "", f->ip, ccm_l4_source_ranges(),
				      "tcp", json_pack("[s]", port), tags);
		free(desc);
		return ccm_call(t, 1, "GET", NULL, "global/firewalls/%s", f->name);
	case 1:
		if (ccm_is(t, 404)) {
			log_info("ccm: creating firewall %s for health checks", f->name);
			return ccm_call(t, 2, "POST", json_incref(f->want), "global/firewalls");
		}
		if (!ccm_ok(t))
			return ccm_fail_call(t, "error getting firewall for health checks: ");
		if (!ccm_firewall_differs(t->r.body, f->want, false) &&
		    json_integer_value(json_object_get(t->r.body, "priority")) ==
			FIREWALL_PRIORITY_DEFAULT)
			return CCM_DONE;
		log_warn("ccm: firewall %s exists but parameters have drifted - updating...",
			 f->name);
		return ccm_call(t, 2, "PATCH", json_incref(f->want), "global/firewalls/%s",
				f->name);
	case 2:
		if (!ccm_ok(t) && !ccm_is(t, 409))
			return ccm_fail_call(t, "");
		return CCM_DONE;
	}
	return CCM_DONE;
}

/* updateTargetPool: the pool's instances become the hosts; read back and counted. */
struct tpupd {
	json_t *add, *remove; /* comparable paths "/zones/Z/instances/N" */
	size_t at;
};

static void tpupd_free(void *p)
{
	struct tpupd *u = p;

	if (!u)
		return;
	json_decref(u->add);
	json_decref(u->remove);
	free(u);
}

/* hostURLToComparablePath */
static const char *comparable(const char *url)
{
	const char *z = url ? strstr(url, "/zones/") : NULL;

	return z ? z : "";
}

static json_t *instance_refs(const json_t *paths, size_t from, size_t n)
{
	json_t *refs = json_array();

	for (size_t i = from; i < from + n && i < json_array_size(paths); i++)
		json_array_append_new(refs,
				      json_pack("{s:O}", "instance", json_array_get(paths, i)));
	return json_pack("{s:o}", "instances", refs);
}

static int update_target_pool(struct ccm_task *t)
{
	struct ccm_job *j = t->job;
	struct tpupd *u = t->loc;
	size_t i, n;

	switch (t->step) {
	case 0:
		return ccm_call(t, 1, "GET", NULL, "regions/%s/targetPools/%s", j->region, j->lb);
	case 1: {
		json_t *existing = json_object(), *h, *v;
		const char *key;

		if (!ccm_ok(t)) {
			json_decref(existing);
			return ccm_fail_call(t, "");
		}
		json_decref(u->add);
		json_decref(u->remove);
		u->add = json_array();
		u->remove = json_array();
		json_array_foreach(json_object_get(t->r.body, "instances"), i, v)
		    json_object_set_new(existing, comparable(json_string_value(v)), json_true());
		json_array_foreach(j->hosts, i, h)
		{
			char *link = str_printf("/zones/%s/instances/%s", kj_str(h, "zone"),
						kj_str(h, "name"));

			if (link && !json_object_get(existing, link))
				json_array_append_new(u->add, json_string(link));
			if (link)
				json_object_del(existing, link);
			free(link);
		}
		json_object_foreach(existing, key, v)
		    json_array_append_new(u->remove, json_string(key));
		json_decref(existing);
		u->at = 0;
	}
		__attribute__((fallthrough));
	case 2:
		if (t->step == 2 && !ccm_ok(t))
			return ccm_fail_call(t, "");
		/* At most maxInstancesPerTargetPoolUpdate per call: additions, then removals. */
		if (u->at < json_array_size(u->add)) {
			n = json_array_size(u->add) - u->at;
			if (n > TP_UPDATE_INSTANCES_MAX)
				n = TP_UPDATE_INSTANCES_MAX;
			i = u->at;
			u->at += n;
			return ccm_call(t, 2, "POST", instance_refs(u->add, i, n),
					"regions/%s/targetPools/%s/addInstance", j->region, j->lb);
		}
		u->at = 0;
		t->step = 3;
		return update_target_pool(t);
	case 3:
		if (u->at < json_array_size(u->remove)) {
			n = json_array_size(u->remove) - u->at;
			if (n > TP_UPDATE_INSTANCES_MAX)
				n = TP_UPDATE_INSTANCES_MAX;
			i = u->at;
			u->at += n;
			return ccm_call(t, 4, "POST", instance_refs(u->remove, i, n),
					"regions/%s/targetPools/%s/removeInstance", j->region,
					j->lb);
		}
		return ccm_call(t, 5, "GET", NULL, "regions/%s/targetPools/%s", j->region, j->lb);
	case 4:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		t->step = 3;
		return update_target_pool(t);
	case 5:
		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		/* "We've been bitten by a bug here before (#11327) where all nodes were
		 * accidentally removed": the count is checked. */
		n = json_array_size(json_object_get(t->r.body, "instances"));
		if (n != json_array_size(j->hosts))
			return ccm_fail(t,
					"unexpected number of instances (%zu) in target pool %s "
					"after update (expected %zu)",
					n, j->lb, json_array_size(j->hosts));
		return CCM_DONE;
	}
	return CCM_DONE;
}

/* DeleteExternalTargetPoolAndChecks: the pool, then each health check and its firewall. */
struct tpdel {
	char hcs[2][64];
	size_t nhcs;
	size_t at;
};

static int delete_pool_and_checks(struct ccm_task *t)
{
	struct ccm_job *j = t->job;
	struct tpdel *d = t->loc;
	char fw[96];
	const char *hc;

	switch (t->step) {
	case 0:
		return ccm_call(t, 1, "DELETE", NULL, "regions/%s/targetPools/%s", j->region,
				j->lb);
	case 1:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail_call(t, "");
		d->at = 0;
		t->step = 2;
		__attribute__((fallthrough));
	case 2:
		if (d->at >= d->nhcs)
			return CCM_DONE;
		log_info("ccm: deleting health check %s", d->hcs[d->at]);
		return ccm_call(t, 3, "DELETE", NULL, "global/httpHealthChecks/%s", d->hcs[d->at]);
	case 3:
		hc = d->hcs[d->at];
		if (ccm_in_use(t)) {
			/* "Delete nodes health checks will fail if any other target pool is using
			 * it": it stays, and so does its firewall. */
			d->at++;
			t->step = 2;
			return delete_pool_and_checks(t);
		}
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail_call(t, "");
		hc_firewall_name(j, hc, strcmp(hc, j->lb) != 0, fw, sizeof(fw));
		return ccm_call(t, 4, "DELETE", NULL, "global/firewalls/%s", fw);
	case 4:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail_call(t, "");
		d->at++;
		t->step = 2;
		return delete_pool_and_checks(t);
	}
	return CCM_DONE;
}

/* ---- ensureExternalLoadBalancer ---- */

struct ext {
	char proto[8];
	char port_range[32];
	char tier[16]; /* PREMIUM, STANDARD */
	bool tier_annotated;
	char requested[64];
	bool rule_exists, rule_needs_update;
	char rule_ip[64];
	bool user_owned, safe_release;
	char ip[64];
	bool tp_exists, tp_recreate;
	struct hc_want create, del;
	bool has_create, has_del;
	struct tpdel tpdel;
	struct hcfw hcfw;
	struct tpupd tpupd;
};

static void ext_free(void *p)
{
	struct ext *x = p;

	if (!x)
		return;
	json_decref(x->hcfw.want);
	json_decref(x->tpupd.add);
	json_decref(x->tpupd.remove);
	free(x);
}

enum {
	E_START,
	E_HOSTS,
	E_TIER_RULE,
	E_TIER_RULE_DELETED,
	E_TIER_ADDR,
	E_TIER_ADDR_DELETED,
	E_RULE,
	E_VERIFY,
	E_STATIC,
	E_STATIC_POSTED,
	E_STATIC_READ_IP,
	E_STATIC_READ_NAME,
	E_FW,
	E_FW_GOT,
	E_FW_WRITTEN,
	E_TP,
	E_HC,
	E_RULE_DELETED,
	E_TP_DELETED,
	E_CREATE_HCFW,
	E_CREATE_HC,
	E_CREATE_TP,
	E_CREATE_TP_MORE,
	E_UPDATE_TP,
	E_UPDATE_HC,
	E_UPDATE_HCFW,
	E_CREATE_RULE,
	E_RULE_CREATED,
	E_RELEASED,
};

/* The deferred release of the address it reserved (isSafeToReleaseIP), then the end. */
static int ext_finish(struct ccm_task *t)
{
	struct ext *x = t->loc;
	struct ccm_job *j = t->job;

	if (!x->user_owned && x->safe_release)
		return ccm_call(t, E_RELEASED, "DELETE", NULL, "regions/%s/addresses/%s", j->region,
				j->lb);
	return CCM_DONE;
}

static int ext_fail(struct ccm_task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ext_fail(struct ccm_task *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
	t->failed = true;
	return ext_finish(t);
}

/* "failed to create target pool for load balancer (LB(NS/NAME)): ..." for a child's error. */
static int ext_fail_child(struct ccm_task *t, const char *what)
{
	char err[sizeof(t->err)];

	snprintf(err, sizeof(err), "%s", t->err);
	return ext_fail(t, "%s for load balancer (%s(%s)): %s", what, t->job->lb, t->job->nsname,
			err);
}

static const char *rule_tier(const json_t *res)
{
	return kj_str(res, "networkTier") ?: "PREMIUM";
}

static json_t *address_by_ip(const json_t *list, const char *ip)
{
	const json_t *a;
	size_t i;

	json_array_foreach(json_object_get(list, "items"), i,
			   a) if (!strcmp(kj_str(a, "address") ?: "", ip)) return (json_t *)a;
	return NULL;
}

static int list_addresses_by_ip(struct ccm_task *t, int next, const char *ip)
{
	char *path = str_printf("regions/%s/addresses", t->job->region), *f = NULL;
	int ret;

	/* GetRegionAddressByIP: filter.Regexp("address", ip), then an exact match. */
	f = str_printf("address eq \"%s\"", ip);
	if (!path || !f || ccm_add_query(&path, "filter", f) < 0) {
		free(path);
		free(f);
		return ext_fail(t, "out of memory");
	}
	free(f);
	ret = ccm_call(t, next, "GET", NULL, "%s", path);
	free(path);
	return ret;
}

static json_t *rule_body(const struct ccm_job *j, const struct ext *x)
{
	char desc[400], *target = ccm_url(j, "regions/%s/targetPools/%s", j->region, j->lb);
	json_t *r;

	snprintf(desc, sizeof(desc), "{\"kubernetes.io/service-name\":\"%s\"}", j->nsname);
	r = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name", j->lb, "description", desc,
		      "IPAddress", x->ip, "IPProtocol", x->proto, "portRange", x->port_range,
		      "target", target ? target : "", "networkTier", x->tier);
	free(target);
	return r;
}

static json_t *pool_body(const struct ccm_job *j, const struct ext *x)
{
	char desc[400];
	json_t *inst = json_array(), *h;
	const char *aff = kj_str(j->svc, "spec.sessionAffinity") ?: "None";
	size_t i;

	snprintf(desc, sizeof(desc), "{\"kubernetes.io/service-name\":\"%s\"}", j->nsname);
	json_array_foreach(j->hosts, i, h)
	{
		char *link;

		if (i >= TP_CREATE_INSTANCES_MAX)
			break;
		link = str_printf("/zones/%s/instances/%s", kj_str(h, "zone"), kj_str(h, "name"));
		json_array_append_new(inst, json_string(link ? link : ""));
		free(link);
	}
	return json_pack("{s:s, s:s, s:o, s:s, s:[s]}", "name", j->lb, "description", desc,
			 "instances", inst, "sessionAffinity",
			 !strcmp(aff, "ClientIP") ? "CLIENT_IP" : "NONE", "healthChecks",
			 x->create.self);
}

static json_t *allow_firewall(struct ccm_task *t, const struct ext *x)
{
	struct ccm_job *j = t->job;
	char err[512], *desc;
	json_t *src, *tags, *fw;
	char fwname[64];

	src = ccm_source_ranges(j->svc, err, sizeof(err));
	if (!src) {
		snprintf(t->err, sizeof(t->err), "%s", err);
		return NULL;
	}
	tags = ccm_host_tags(j, err, sizeof(err));
	if (!tags) {
		json_decref(src);
		snprintf(t->err, sizeof(t->err), "%s", err);
		return NULL;
	}
	{
		char proto[8], lower[8];
		json_t *ranges = ccm_port_ranges(j->svc, proto, sizeof(proto));
		size_t i;

		for (i = 0; proto[i] && i + 1 < sizeof(lower); i++)
			lower[i] =
			    (char)(proto[i] >= 'A' && proto[i] <= 'Z' ? proto[i] + 32 : proto[i]);
		lower[i] = '\0';
		desc = ccm_firewall_description(j, x->ip);
		snprintf(fwname, sizeof(fwname), "k8s-fw-%s", j->lb);
		fw =
		    ccm_firewall_body(j, fwname, desc ? desc : "", x->ip, src, lower, ranges, tags);
		free(desc);
	}
	return fw;
}

/*
 * firewallNeedsUpdate: the ports may be listed one by one or as ranges ("to prevent
 * unnecessary noop updates to the firewall rule when the existing firewall rule is set up via
 * the previous pattern using enumerated ports").
 */
static bool same_allow_firewall(const json_t *live, const json_t *want, const json_t *svc)
{
	json_t *alt;
	bool same;

	if (json_integer_value(json_object_get(live, "priority")) != FIREWALL_PRIORITY_DEFAULT)
		return false;
	if (!ccm_firewall_differs(live, want, true))
		return true;
	alt = json_deep_copy(want);
	json_object_set_new(json_array_get(json_object_get(alt, "allowed"), 0), "ports",
			    port_numbers(svc));
	same = !ccm_firewall_differs(live, alt, true);
	json_decref(alt);
	return same;
}

int ccm_external_ensure(struct ccm_task *t)
{
	struct ccm_job *j = t->job;
	struct ext *x = t->loc;
	const json_t *svc = j->svc;
	json_t *want;
	int ret;

	switch (t->step) {
	case E_START: {
		const char *annot;
		const json_t *p;
		size_t i;
		int lo = 65536, hi = 0;

		annot = json_string_value(json_object_get(kj_path(svc, "metadata.annotations"),
							  "cloud.google.com/network-tier"));
		x = calloc(1, sizeof(*x));
		if (!x)
			return ccm_fail(t, "out of memory");
		t->loc = x;
		t->loc_free = ext_free;
		/* processMixedProtocolCheck, getProtocol */
		json_array_foreach(kj_path(svc, "spec.ports"), i, p)
		{
			const char *pr = kj_str(p, "protocol") ?: "TCP";
			int port = (int)json_integer_value(json_object_get(p, "port"));

			if (i == 0)
				snprintf(x->proto, sizeof(x->proto), "%s", pr);
			else if (strcmp(pr, x->proto))
				return ccm_fail(t,
						"mixed protocol is not supported for LoadBalancer");
			if (port < lo)
				lo = port;
			if (port > hi)
				hi = port;
		}
		if (!x->proto[0])
			return ccm_fail(t, "no ports specified for GCE load balancer");
		if (strcmp(x->proto, "TCP") && strcmp(x->proto, "UDP"))
			return ccm_fail(t, "invalid protocol %s, only TCP and UDP are supported",
					x->proto);
		snprintf(x->port_range, sizeof(x->port_range), "%d-%d", lo, hi);
		if (json_array_size(j->nodes) == 0)
			return ccm_fail(t, "cannot EnsureLoadBalancer() with no hosts");
		/* GetServiceNetworkTier */
		x->tier_annotated = annot != NULL;
		if (!annot || !strcmp(annot, "Premium"))
			snprintf(x->tier, sizeof(x->tier), "PREMIUM");
		else if (!strcmp(annot, "Standard"))
			snprintf(x->tier, sizeof(x->tier), "STANDARD");
		else
			return ccm_fail(t, "unsupported network tier: \"%s\"", annot);
		snprintf(x->requested, sizeof(x->requested), "%s",
			 kj_str(svc, "spec.loadBalancerIP") ?: "");
		ccm_spawn(t, ccm_find_hosts, NULL, NULL);
		t->step = E_HOSTS;
		return CCM_WAIT;
	}
	case E_HOSTS:
		if (t->failed)
			return CCM_DONE;
		log_info("ccm: ensureExternalLoadBalancer(%s(%s)): attaching %s finalizer", j->lb,
			 j->nsname, NETLB_FINALIZER);
		ret = ccm_finalizer(j, NETLB_FINALIZER, true);
		if (ret < 0)
			return ccm_fail(t, "failed to attach finalizer '%s' on service %s: %s",
					NETLB_FINALIZER, j->nsname, strerror(-ret));
		if (x->tier_annotated)
			return ccm_call(t, E_TIER_RULE, "GET", NULL,
					"regions/%s/forwardingRules/%s", j->region, j->lb);
		return ccm_call(t, E_RULE, "GET", NULL, "regions/%s/forwardingRules/%s", j->region,
				j->lb);
	case E_TIER_RULE:
		/* deleteWrongNetworkTieredResources (its error is not looked at) */
		if (ccm_ok(t) && strcmp(rule_tier(t->r.body), x->tier))
			return ccm_call(t, E_TIER_RULE_DELETED, "DELETE", NULL,
					"regions/%s/forwardingRules/%s", j->region, j->lb);
		__attribute__((fallthrough));
	case E_TIER_RULE_DELETED:
		return ccm_call(t, E_TIER_ADDR, "GET", NULL, "regions/%s/addresses/%s", j->region,
				j->lb);
	case E_TIER_ADDR:
		if (ccm_ok(t) && strcmp(rule_tier(t->r.body), x->tier))
			return ccm_call(t, E_TIER_ADDR_DELETED, "DELETE", NULL,
					"regions/%s/addresses/%s", j->region, j->lb);
		__attribute__((fallthrough));
	case E_TIER_ADDR_DELETED:
		return ccm_call(t, E_RULE, "GET", NULL, "regions/%s/forwardingRules/%s", j->region,
				j->lb);
	case E_RULE:
		/* forwardingRuleNeedsUpdate */
		if (ccm_is(t, 404)) {
			x->rule_exists = false;
			x->rule_needs_update = true;
		} else if (!ccm_ok(t)) {
			return ccm_fail_call(t, "error getting load balancer's forwarding rule: ");
		} else {
			const json_t *r = t->r.body;

			x->rule_exists = true;
			snprintf(x->rule_ip, sizeof(x->rule_ip), "%s",
				 kj_str(r, "IPAddress") ?: "");
			x->rule_needs_update =
			    (x->requested[0] && strcmp(x->requested, x->rule_ip)) ||
			    strcmp(kj_str(r, "portRange") ?: "", x->port_range) ||
			    strcmp(kj_str(r, "IPProtocol") ?: "", x->proto);
			if (x->rule_needs_update)
				log_info(
				    "ccm: forwarding rule %s: IP %s, port range %s, protocol %s; "
				    "want %s, %s, %s",
				    j->lb, x->rule_ip, kj_str(r, "portRange") ?: "",
				    kj_str(r, "IPProtocol") ?: "",
				    x->requested[0] ? x->requested : x->rule_ip, x->port_range,
				    x->proto);
		}
		if (x->requested[0])
			return list_addresses_by_ip(t, E_VERIFY, x->requested);
		t->step = E_STATIC;
		return ccm_external_ensure(t);
	case E_VERIFY: {
		/* verifyUserRequestedIP */
		const json_t *a;

		if (!ccm_ok(t))
			return ccm_fail_call(t, "");
		a = address_by_ip(t->r.body, x->requested);
		if (a) {
			if (strcmp(rule_tier(a), x->tier))
				return ccm_fail(
				    t,
				    "requested IP \"%s\" belongs to the %s network tier; "
				    "expected %s",
				    x->requested,
				    !strcmp(rule_tier(a), "STANDARD") ? "Standard" : "Premium",
				    !strcmp(x->tier, "STANDARD") ? "Standard" : "Premium");
			x->user_owned = true;
			snprintf(x->ip, sizeof(x->ip), "%s", x->requested);
			t->step = E_FW;
			return ccm_external_ensure(t);
		}
		if (strcmp(x->requested, x->rule_ip) != 0)
			return ccm_fail(
			    t, "requested ip \"%s\" is neither static nor assigned to the LB",
			    x->requested);
		snprintf(x->ip, sizeof(x->ip), "%s", x->requested);
	}
		__attribute__((fallthrough));
	case E_STATIC: {
		/* ensureStaticIP: reserve <lb> (promotes the rule's ephemeral IP, if any) */
		char desc[400];

		snprintf(desc, sizeof(desc), "{\"kubernetes.io/service-name\":\"%s\"}", j->nsname);
		want = json_pack("{s:s, s:s, s:s}", "name", j->lb, "description", desc,
				 "networkTier", x->tier);
		if (want && x->rule_ip[0])
			json_object_set_new(want, "address", json_string(x->rule_ip));
		return ccm_call(t, E_STATIC_POSTED, "POST", want, "regions/%s/addresses",
				j->region);
	}
	case E_STATIC_POSTED:
		/* "GCE returns StatusConflict if the name conflicts; it returns StatusBadRequest
		 * if the IP conflicts": either way the address existed. */
		if (!ccm_ok(t) && !ccm_is(t, 409) && !ccm_is(t, 400))
			return ext_fail(t,
					"failed to ensure a static IP for load balancer (%s(%s)): "
					"error creating gce static IP address: %s",
					j->lb, j->nsname, t->r.err);
		x->safe_release = ccm_ok(t); /* isSafeToReleaseIP = !existed */
		if (x->rule_ip[0])
			return list_addresses_by_ip(t, E_STATIC_READ_IP, x->rule_ip);
		return ccm_call(t, E_STATIC_READ_NAME, "GET", NULL, "regions/%s/addresses/%s",
				j->region, j->lb);
	case E_STATIC_READ_IP: {
		const json_t *a = ccm_ok(t) ? address_by_ip(t->r.body, x->rule_ip) : NULL;

		if (!a)
			return ext_fail(t,
					"failed to ensure a static IP for load balancer (%s(%s)): "
					"error getting static IP address: %s",
					j->lb, j->nsname,
					ccm_ok(t) ? "googleapi: Error 404: no address holds the IP"
						  : t->r.err);
		snprintf(x->ip, sizeof(x->ip), "%s", kj_str(a, "address") ?: "");
		t->step = E_FW;
		return ccm_external_ensure(t);
	}
	case E_STATIC_READ_NAME:
		if (!ccm_ok(t))
			return ext_fail(t,
					"failed to ensure a static IP for load balancer (%s(%s)): "
					"error getting static IP address: %s",
					j->lb, j->nsname, t->r.err);
		snprintf(x->ip, sizeof(x->ip), "%s", kj_str(t->r.body, "address") ?: "");
		t->step = E_FW;
		__attribute__((fallthrough));
	case E_FW:
		log_info(
		    "ccm: ensureExternalLoadBalancer(%s(%s)): ensured IP address %s (tier: %s)",
		    j->lb, j->nsname, x->ip, x->tier);
		return ccm_call(t, E_FW_GOT, "GET", NULL, "global/firewalls/k8s-fw-%s", j->lb);
	case E_FW_GOT: {
		/* ensureAllowNodeFirewall: firewallNeedsUpdate, then create or patch */
		bool exists = ccm_ok(t);
		json_t *fw;

		if (!exists && !ccm_is(t, 404))
			return ext_fail(
			    t,
			    "failed to ensure node firewall for load balancer (%s(%s)): "
			    "error getting load balancer's firewall: %s",
			    j->lb, j->nsname, t->r.err);
		fw = allow_firewall(t, x);
		if (!fw) {
			char err[sizeof(t->err)];

			snprintf(err, sizeof(err), "%s", t->err);
			return ext_fail(
			    t, "failed to ensure node firewall for load balancer (%s(%s)): %s",
			    j->lb, j->nsname, err);
		}
		if (exists && same_allow_firewall(t->r.body, fw, j->svc)) {
			json_decref(fw);
			t->r.status = 200;
			t->step = E_FW_WRITTEN;
			return ccm_external_ensure(t);
		}
		log_info("ccm: ensureExternalLoadBalancer(%s(%s)): %s firewall", j->lb, j->nsname,
			 exists ? "updating" : "creating");
		/* "Unlike forwarding rules and target pools, firewalls can be updated" */
		if (exists)
			return ccm_call(t, E_FW_WRITTEN, "PATCH", fw, "global/firewalls/k8s-fw-%s",
					j->lb);
		return ccm_call(t, E_FW_WRITTEN, "POST", fw, "global/firewalls");
	}
	case E_FW_WRITTEN:
		if (!ccm_ok(t) && !ccm_is(t, 409))
			return ext_fail(
			    t, "failed to ensure node firewall for load balancer (%s(%s)): %s",
			    j->lb, j->nsname, t->r.err);
		return ccm_call(t, E_TP, "GET", NULL, "regions/%s/targetPools/%s", j->region,
				j->lb);
	case E_TP: {
		/* targetPoolNeedsRecreation */
		const char *aff = kj_str(svc, "spec.sessionAffinity") ?: "None";

		if (ccm_is(t, 404)) {
			x->tp_exists = false;
			x->tp_recreate = true;
		} else if (!ccm_ok(t)) {
			return ext_fail(t, "error getting load balancer's target pool: %s",
					t->r.err);
		} else {
			const char *have = kj_str(t->r.body, "sessionAffinity") ?: "";

			x->tp_exists = true;
			x->tp_recreate =
			    have[0] &&
			    strcmp(have, !strcmp(aff, "ClientIP") ? "CLIENT_IP" : "NONE");
		}
		return ccm_call(t, E_HC, "GET", NULL, "global/httpHealthChecks/%s", j->lb);
	}
	case E_HC: {
		unsigned local = ccm_service_hc_port(svc);
		bool local_existing = ccm_ok(t);

		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ext_fail(
			    t,
			    "error checking HTTP health check for load balancer (%s(%s)): "
			    "%s",
			    j->lb, j->nsname, t->r.err);
		if (local) {
			if (!local_existing) {
				/* non-OnlyLocal -> OnlyLocal: the pool is made again with it */
				snprintf(x->del.name, sizeof(x->del.name), "k8s-%s-node", j->cid);
				snprintf(x->del.path, sizeof(x->del.path), NODES_HC_PATH);
				x->del.port = NODES_HC_PORT;
				x->del.nodes = true;
				x->has_del = true;
				x->tp_recreate = true;
			}
			snprintf(x->create.name, sizeof(x->create.name), "%s", j->lb);
			snprintf(x->create.path, sizeof(x->create.path), NODES_HC_PATH);
			x->create.port = local;
		} else {
			if (local_existing) {
				snprintf(x->del.name, sizeof(x->del.name), "%s", j->lb);
				x->has_del = true;
				x->tp_recreate = true;
			}
			snprintf(x->create.name, sizeof(x->create.name), "k8s-%s-node", j->cid);
			snprintf(x->create.path, sizeof(x->create.path), NODES_HC_PATH);
			x->create.port = NODES_HC_PORT;
			x->create.nodes = true;
		}
		x->has_create = true;
		/* Neither rules nor pools are updated in place, and a rule holds its pool. */
		if (x->rule_exists && (x->rule_needs_update || x->tp_recreate)) {
			x->safe_release = false;
			return ccm_call(t, E_RULE_DELETED, "DELETE", NULL,
					"regions/%s/forwardingRules/%s", j->region, j->lb);
		}
		t->step = E_RULE_DELETED;
		t->r.status = 200;
		return ccm_external_ensure(t);
	}
	case E_RULE_DELETED:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ext_fail(
			    t,
			    "failed to delete existing forwarding rule for load balancer "
			    "(%s(%s)) update: %s",
			    j->lb, j->nsname, t->r.err);
		/* ensureTargetPoolAndHealthCheck */
		if (x->tp_exists && x->tp_recreate) {
			x->tpdel.nhcs = 0;
			if (x->has_del)
				snprintf(x->tpdel.hcs[x->tpdel.nhcs++], sizeof(x->tpdel.hcs[0]),
					 "%s", x->del.name);
			ccm_spawn(t, delete_pool_and_checks, &x->tpdel, NULL);
			t->step = E_TP_DELETED;
			return CCM_WAIT;
		}
		t->step = E_TP_DELETED;
		__attribute__((fallthrough));
	case E_TP_DELETED:
		if (t->failed)
			return ext_fail_child(t, "failed to delete existing target pool");
		if (x->tp_recreate) {
			x->hcfw.hc = &x->create;
			x->hcfw.ip = x->ip;
			ccm_spawn(t, ensure_hc_firewall, &x->hcfw, NULL);
			t->step = E_CREATE_HCFW;
			return CCM_WAIT;
		}
		x->tpupd = (struct tpupd){0};
		ccm_spawn(t, update_target_pool, &x->tpupd, NULL);
		t->step = E_UPDATE_TP;
		return CCM_WAIT;
	case E_CREATE_HCFW:
		if (t->failed)
			return ext_fail_child(t, "failed to create target pool");
		ccm_spawn(t, ensure_hc, &x->create, NULL);
		t->step = E_CREATE_HC;
		return CCM_WAIT;
	case E_CREATE_HC:
		if (t->failed)
			return ext_fail_child(t, "failed to create target pool");
		log_info("ccm: creating targetpool %s with 1 healthchecks", j->lb);
		return ccm_call(t, E_CREATE_TP, "POST", pool_body(j, x), "regions/%s/targetPools",
				j->region);
	case E_CREATE_TP:
		if (!ccm_ok(t) && !ccm_is(t, 409))
			return ext_fail(
			    t, "failed to create target pool for load balancer (%s(%s)): %s", j->lb,
			    j->nsname, t->r.err);
		if (json_array_size(j->hosts) > TP_CREATE_INSTANCES_MAX) {
			x->tpupd = (struct tpupd){0};
			ccm_spawn(t, update_target_pool, &x->tpupd, NULL);
			t->step = E_CREATE_TP_MORE;
			return CCM_WAIT;
		}
		t->step = E_CREATE_RULE;
		return ccm_external_ensure(t);
	case E_CREATE_TP_MORE:
		if (t->failed)
			return ext_fail_child(t, "failed to update target pool");
		t->step = E_CREATE_RULE;
		return ccm_external_ensure(t);
	case E_UPDATE_TP:
		if (t->failed)
			return ext_fail_child(t, "failed to update target pool");
		ccm_spawn(t, ensure_hc, &x->create, NULL);
		t->step = E_UPDATE_HC;
		return CCM_WAIT;
	case E_UPDATE_HC:
		if (t->failed) {
			char err[sizeof(t->err)];

			snprintf(err, sizeof(err), "%s", t->err);
			return ext_fail(t,
					"failed to ensure health check for %s port %u path %s: %s",
					j->lb, x->create.port, x->create.path, err);
		}
		x->hcfw.hc = &x->create;
		x->hcfw.ip = x->ip;
		ccm_spawn(t, ensure_hc_firewall, &x->hcfw, NULL);
		t->step = E_UPDATE_HCFW;
		return CCM_WAIT;
	case E_UPDATE_HCFW:
		if (t->failed) {
			char err[sizeof(t->err)];

			snprintf(err, sizeof(err), "%s", t->err);
			return ext_fail(t, "failed to ensure health check firewall %s for %s: %s",
					x->create.name, j->lb, err);
		}
		t->step = E_CREATE_RULE;
		__attribute__((fallthrough));
	case E_CREATE_RULE:
		if (x->tp_recreate || x->rule_needs_update) {
			log_info(
			    "ccm: ensureExternalLoadBalancer(%s(%s)): creating forwarding rule, IP "
			    "%s (tier: %s)",
			    j->lb, j->nsname, x->ip, x->tier);
			return ccm_call(t, E_RULE_CREATED, "POST", rule_body(j, x),
					"regions/%s/forwardingRules", j->region);
		}
		t->r.status = 200;
		t->step = E_RULE_CREATED;
		return ccm_external_ensure(t);
	case E_RULE_CREATED:
		if (!ccm_ok(t) && !ccm_is(t, 409))
			return ext_fail(
			    t, "failed to create forwarding rule for load balancer (%s(%s)): %s",
			    j->lb, j->nsname, t->r.err);
		if (x->tp_recreate || x->rule_needs_update)
			x->safe_release = true; /* "End critical section" */
		json_decref(j->status);
		j->status = json_pack("{s:[{s:s}]}", "ingress", "ip", x->ip);
		return ext_finish(t);
	case E_RELEASED:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			log_warn(
			    "ccm: ensureExternalLoadBalancer(%s(%s)): failed to release static IP "
			    "%s in region %s: %s",
			    j->lb, j->nsname, x->ip, j->region, t->r.err);
		else if (ccm_ok(t))
			log_info("ccm: ensureExternalLoadBalancer(%s(%s)): released static IP %s",
				 j->lb, j->nsname, x->ip);
		return CCM_DONE;
	}
	return CCM_DONE;
}

/* ---- updateExternalLoadBalancer ---- */

int ccm_external_update(struct ccm_task *t)
{
	struct ccm_job *j = t->job;
	struct tpupd *u = t->loc;
	int ret;

	switch (t->step) {
	case 0:
		ret = ccm_finalizer(j, NETLB_FINALIZER, true);
		if (ret < 0)
			return ccm_fail(t, "failed to attach finalizer '%s' on service %s: %s",
					NETLB_FINALIZER, j->nsname, strerror(-ret));
		u = calloc(1, sizeof(*u));
		if (!u)
			return ccm_fail(t, "out of memory");
		t->loc = u;
		t->loc_free = tpupd_free;
		ccm_spawn(t, ccm_find_hosts, NULL, NULL);
		t->step = 1;
		return CCM_WAIT;
	case 1:
		if (t->failed)
			return CCM_DONE;
		ccm_spawn(t, update_target_pool, u, NULL);
		t->step = 2;
		return CCM_WAIT;
	}
	return CCM_DONE;
}

/* ---- ensureExternalLoadBalancerDeleted ---- */

static int delete_one(struct ccm_task *t)
{
	const char *path = t->loc;

	switch (t->step) {
	case 0:
		return ccm_call_path(t, 1, "DELETE", NULL, path);
	case 1:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail_call(t, "");
		return CCM_DONE;
	}
	return CCM_DONE;
}

struct extdel {
	struct tpdel tpdel;
};

/* The forwarding rule first: it holds the pool. */
static int delete_rule_and_pool(struct ccm_task *t)
{
	struct ccm_job *j = t->job;
	struct extdel *d = t->loc;

	switch (t->step) {
	case 0:
		log_info("ccm: ensureExternalLoadBalancerDeleted(%s(%s)): deleting forwarding rule",
			 j->lb, j->nsname);
		return ccm_call(t, 1, "DELETE", NULL, "regions/%s/forwardingRules/%s", j->region,
				j->lb);
	case 1:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail_call(t, "");
		log_info("ccm: ensureExternalLoadBalancerDeleted(%s(%s)): deleting target pool",
			 j->lb, j->nsname);
		ccm_spawn(t, delete_pool_and_checks, &d->tpdel, NULL);
		t->step = 2;
		return CCM_WAIT;
	}
	return CCM_DONE;
}

int ccm_external_delete(struct ccm_task *t)
{
	struct ccm_job *j = t->job;
	struct extdel *d = t->loc;
	char *fw, *addr;
	int ret;

	switch (t->step) {
	case 0:
		d = calloc(1, sizeof(*d));
		if (!d)
			return ccm_fail(t, "out of memory");
		t->loc = d;
		t->loc_free = free;
		if (ccm_service_hc_port(j->svc))
			return ccm_call(t, 1, "GET", NULL, "global/httpHealthChecks/%s", j->lb);
		/* Changed from LoadBalancer: either check may be the one; both are tried. */
		snprintf(d->tpdel.hcs[0], sizeof(d->tpdel.hcs[0]), "%s", j->lb);
		snprintf(d->tpdel.hcs[1], sizeof(d->tpdel.hcs[1]), "k8s-%s-node", j->cid);
		d->tpdel.nhcs = 2;
		t->step = 2;
		return ccm_external_delete(t);
	case 1:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail_call(t, "");
		if (ccm_ok(t))
			snprintf(d->tpdel.hcs[d->tpdel.nhcs++], sizeof(d->tpdel.hcs[0]), "%s",
				 kj_str(t->r.body, "name") ?: j->lb);
		t->step = 2;
		__attribute__((fallthrough));
	case 2:
		/* utilerrors.AggregateGoroutines: firewall, address, rule then pool. */
		fw = str_printf("/compute/v1/projects/%s/global/firewalls/k8s-fw-%s",
				ccm_kube(j->ccm)->emu->opt.project, j->lb);
		addr = str_printf("/compute/v1/projects/%s/regions/%s/addresses/%s",
				  ccm_kube(j->ccm)->emu->opt.project, j->region, j->lb);
		if (!fw || !addr) {
			free(fw);
			free(addr);
			return ccm_fail(t, "out of memory");
		}
		ccm_spawn(t, delete_one, fw, free);
		ccm_spawn(t, delete_one, addr, free);
		ccm_spawn(t, delete_rule_and_pool, d, NULL);
		t->step = 3;
		return CCM_WAIT;
	case 3:
		if (t->failed)
			return CCM_DONE;
		log_info("ccm: ensureExternalLoadBalancerDeleted(%s): removing %s finalizer", j->lb,
			 NETLB_FINALIZER);
		ret = ccm_finalizer(j, NETLB_FINALIZER, false);
		if (ret < 0 && ret != -ENOENT)
			return ccm_fail(t, "failed to remove finalizer '%s' from service %s: %s",
					NETLB_FINALIZER, j->nsname, strerror(-ret));
		return CCM_DONE;
	}
	return CCM_DONE;
}
