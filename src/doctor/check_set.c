/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checks of the set as a whole: what one document says is only wrong (or only missing) given
 * the others. Talos patches merge, Helm values files override each other, and a live cluster
 * is a set too, so a setting is looked for across every document of its kind.
 *
 * An absence is reported only when the set holds a control-plane Talos config (machine.type
 * controlplane, or cluster.apiServer/etcd/controllerManager/scheduler): linting one small
 * patch on its own says nothing about what other patches provide.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <strings.h>

#include "doctor/internal.h"

#define DEFAULT_VIP     "10.0.0.2"
#define DEFAULT_VPC_MTU 1460
#define TUNNEL_OVERHEAD 50
#define KUBEPRISM_PORT  7445

struct set {
	struct doctor *d;
	struct ip_addr vip;
	char vip_text[CIDR_STRLEN];
	const char *vip_from;
	const struct kept *first_cp; /* first Talos document with control-plane settings */
	bool cilium;                 /* Cilium values or cilium-config among the inputs */
	bool tunnel;                 /* Cilium routes in tunnel mode */
	unsigned vpc_mtu;
	const struct ynode *endpoint_host; /* Talos cluster.controlPlane.endpoint */
	char endpoint[256];
};

/* A loop over the kept documents of one kind; break leaves it. (No arithmetic on a NULL
 * array: nothing may have been kept.) */
#define FOR_KEPT(s, k, kind_)                                                                      \
	for (const struct kept *k = (s)->d->kept, *k##_end = k ? k + (s)->d->n_kept : NULL;        \
	     k && k < k##_end; k++)                                                                \
		if (k->kind == (kind_))

/* ---- helpers ---- */

static const char *or_q(const char *s)
{
	return s ? s : "?";
}

static int ip_of(const char *s, size_t len, struct ip_addr *out)
{
	char buf[64];
	size_t n = strcspn(s, "/");

	if (n > len)
		n = len;
	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return ip_parse(buf, out);
}

static bool node_is_vip(const struct set *s, const struct ynode *n)
{
	struct ip_addr ip;

	return ystr(n) && ip_of(n->str, n->n, &ip) == 0 && ip_equal(&ip, &s->vip);
}

static bool talos_worker(const struct ynode *root)
{
	const struct ynode *t = yget(root, "machine", "type", NULL);

	return yscalar_eq(t, "worker") || yscalar_eq(t, "join");
}

static bool talos_cp(const struct ynode *root)
{
	const struct ynode *t = yget(root, "machine", "type", NULL);
	const struct ynode *c = ymap_get(root, "cluster");

	if (yscalar_eq(t, "controlplane") || yscalar_eq(t, "init"))
		return true;
	if (talos_worker(root))
		return false;
	return ymap_get(c, "apiServer") || ymap_get(c, "etcd") ||
	       ymap_get(c, "controllerManager") || ymap_get(c, "scheduler");
}

/* "https://host:6443" -> host (brackets of an IPv6 literal removed). */
static bool endpoint_host(const char *url, char *out, size_t len)
{
	const char *p = strstr(url, "://");
	size_t n;

	p = p ? p + 3 : url;
	if (*p == '[') {
		p++;
		n = strcspn(p, "]");
	} else {
		n = strcspn(p, ":/");
	}
	if (!n || n >= len)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* Talos subnet filters: an address passes when it is in a listed subnet (or none is listed)
 * and in no "!"-excluded one. Lists of several patches add up. */
struct filter {
	bool any_positive, positive_match, negative_match;
};

static void filter_add(struct filter *f, const struct ynode *list, const struct ip_addr *ip)
{
	for (uint32_t i = 0; yis_seq(list) && i < list->n; i++) {
		const char *s = ystr(list->items[i]);
		bool neg;
		struct cidr c;

		if (!s)
			continue;
		neg = s[0] == '!';
		if (cidr_parse(s + neg, &c, CIDR_ALLOW_BARE_IP | CIDR_MASK_HOST_BITS) < 0)
			continue;
		if (neg) {
			f->negative_match |= cidr_contains_ip(&c, ip);
		} else {
			f->any_positive = true;
			f->positive_match |= cidr_contains_ip(&c, ip);
		}
	}
}

static bool filter_passes(const struct filter *f)
{
	return !f->negative_match && (!f->any_positive || f->positive_match);
}

static const char *last_segment(const char *url)
{
	const char *slash = url ? strrchr(url, '/') : NULL;

	return slash ? slash + 1 : url;
}

/* A reference (URL or name) to a resource: same selfLink, or same last segment. */
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

/* ---- Cilium settings, wherever they come from ---- */

enum cprop {
	C_IPAM,
	C_ROUTING,
	C_TUNNEL_LEGACY,
	C_NATIVE_CIDR,
	C_HOST,
	C_PORT,
	C_KPR,
	C_MTU,
	C_MASQ,
	C__COUNT
};

static const char *const values_path[C__COUNT][3] = {
    [C_IPAM] = {"ipam", "mode", NULL},
    [C_ROUTING] = {"routingMode", NULL, NULL},
    [C_TUNNEL_LEGACY] = {"tunnel", NULL, NULL},
    [C_NATIVE_CIDR] = {"ipv4NativeRoutingCIDR", NULL, NULL},
    [C_HOST] = {"k8sServiceHost", NULL, NULL},
    [C_PORT] = {"k8sServicePort", NULL, NULL},
    [C_KPR] = {"kubeProxyReplacement", NULL, NULL},
    [C_MTU] = {"MTU", NULL, NULL},
    [C_MASQ] = {"enableIPv4Masquerade", NULL, NULL},
};

static const char *const configmap_key[C__COUNT] = {
    [C_IPAM] = "ipam",
    [C_ROUTING] = "routing-mode",
    [C_TUNNEL_LEGACY] = "tunnel",
    [C_NATIVE_CIDR] = "ipv4-native-routing-cidr",
    [C_KPR] = "kube-proxy-replacement",
    [C_MTU] = "mtu",
    [C_MASQ] = "enable-ipv4-masquerade",
};

/* The setting and the source it is in; Helm's later values files win. */
static const struct ynode *cilium_get(const struct set *s, enum cprop p, uint32_t *src)
{
	const struct doctor *d = s->d;

	for (size_t i = d->n_kept; i-- > 0;) {
		const struct kept *k = &d->kept[i];
		const struct ynode *n = NULL;

		if (k->kind != K_CILIUM_VALUES)
			continue;
		n = k->node;
		for (int j = 0; j < 3 && values_path[p][j] && n; j++)
			n = ymap_get(n, values_path[p][j]);
		if (n && !yis_null(n)) {
			*src = k->source;
			return n;
		}
	}
	for (size_t i = 0; i < d->n_kept; i++) {
		const struct kept *k = &d->kept[i];
		const struct ynode *n = NULL;

		if (k->kind == K_CILIUM_CONFIGMAP && configmap_key[p])
			n = ymap_get(k->node, configmap_key[p]);
		else if (k->kind == K_CILIUM_AGENT && p == C_HOST)
			n = env_value(k->node, "KUBERNETES_SERVICE_HOST");
		else if (k->kind == K_CILIUM_AGENT && p == C_PORT)
			n = env_value(k->node, "KUBERNETES_SERVICE_PORT");
		if (n && !yis_null(n)) {
			*src = k->source;
			return n;
		}
	}
	return NULL;
}

/* The first Cilium values (or cilium-config) document, for reporting an absence. */
static const struct kept *cilium_first(const struct set *s)
{
	FOR_KEPT(s, k, K_CILIUM_VALUES)
	return k;
	FOR_KEPT(s, k, K_CILIUM_CONFIGMAP)
	return k;
	return NULL;
}

static bool truthy(const struct ynode *n)
{
	bool b;

	if (yscalar_ieq(n, "strict"))
		return true; /* kubeProxyReplacement before Cilium 1.14 */
	return ybool(n, &b) == 0 && b;
}

/* ---- VIP ---- */

static void resolve_vip(struct set *s)
{
	struct doctor *d = s->d;
	const char *text = d->opt.vip;

	s->vip_from = "--vip";
	if (!text) {
		FOR_KEPT(s, k, K_VIP_ALIAS)
		{
			const char *v = NULL;
			size_t vl = 0;
			const struct ynode *n = container_flag(k->node, "vip", &v, &vl);

			if (!n && ystr(n = env_value(k->node, "VIP_ALIAS_VIP"))) {
				v = n->str;
				vl = n->n;
			}
			if (n && v) {
				if (ip_of(v, vl, &s->vip) == 0) {
					s->vip_from = "the vip-alias manifest";
					ip_format(&s->vip, s->vip_text, sizeof(s->vip_text));
					goto endpoint;
				}
			}
		}
	}
	if (text && ip_of(text, strlen(text), &s->vip) == 0) {
		ip_format(&s->vip, s->vip_text, sizeof(s->vip_text));
		goto endpoint;
	}
	text = NULL;
endpoint:
	FOR_KEPT(s, k, K_TALOS)
	{
		const struct ynode *ep = yget(k->node, "cluster", "controlPlane", "endpoint", NULL);
		struct ip_addr ip;

		if (ystr(ep) && endpoint_host(ep->str, s->endpoint, sizeof(s->endpoint))) {
			s->endpoint_host = ep;
			if (!s->vip_text[0] && ip_parse(s->endpoint, &ip) == 0) {
				s->vip = ip;
				s->vip_from = "cluster.controlPlane.endpoint";
				ip_format(&s->vip, s->vip_text, sizeof(s->vip_text));
			}
			break;
		}
	}
	if (!s->vip_text[0]) {
		ip_parse(DEFAULT_VIP, &s->vip);
		s->vip_from = "the default";
		snprintf(s->vip_text, sizeof(s->vip_text), "%s", DEFAULT_VIP);
	}
}

/* ---- Talos ---- */

/* The key node of the last element of a path, to point at "validSubnets:" rather than at
 * the first item of its list. */
static const struct ynode *key_of(const struct ynode *root, const char *const *path, size_t n)
{
	const struct ynode *parent = root;

	for (size_t i = 0; i + 1 < n && parent; i++)
		parent = ymap_get(parent, path[i]);
	return ymap_key(parent, path[n - 1]);
}

static int check_talos_subnets(struct set *s, enum rule_id rule, const char *const path[4],
			       const char *field, const char *what)
{
	const struct ynode *last = NULL, *last_key = NULL;
	uint32_t last_src = 0;
	struct filter f = {0};

	FOR_KEPT(s, k, K_TALOS)
	{
		const struct ynode *list;

		if (talos_worker(k->node))
			continue;
		list = yget(k->node, path[0], path[1], path[2], path[3], NULL);
		if (yis_seq(list)) {
			filter_add(&f, list, &s->vip);
			last = list;
			last_key = key_of(k->node, path, path[3] ? 4 : 3);
			last_src = k->source;
		}
	}
	if (last && filter_passes(&f))
		return report(
		    s->d, rule, last_src, last_key ? last_key : last,
		    "%s lets %s pick the VIP %s (local on dummy0 on control-plane nodes); "
		    "add \"!%s/32\"",
		    field, what, s->vip_text, s->vip_text);
	if (!last && s->first_cp)
		return report(s->d, rule, s->first_cp->source, s->first_cp->node,
			      "no %s in the control-plane config: %s may pick the VIP %s (local on "
			      "dummy0); set it to [<node subnet>, \"!%s/32\"]",
			      field, what, s->vip_text, s->vip_text);
	return 0;
}

static int check_certsans(struct set *s)
{
	const struct ynode *last = NULL;
	uint32_t last_src = 0;
	bool ok = false;

	if (s->endpoint_host) {
		struct ip_addr ip;

		if (ip_parse(s->endpoint, &ip) == 0 && ip_equal(&ip, &s->vip))
			ok = true; /* Talos puts the endpoint's host in the certificate */
	}
	FOR_KEPT(s, k, K_TALOS)
	{
		const struct ynode *sans = yget(k->node, "cluster", "apiServer", "certSANs", NULL);

		if (talos_worker(k->node) || !yis_seq(sans))
			continue;
		last = ymap_key(yget(k->node, "cluster", "apiServer", NULL), "certSANs");
		last_src = k->source;
		for (uint32_t i = 0; i < sans->n; i++)
			ok |= node_is_vip(s, sans->items[i]);
	}
	if (ok)
		return 0;
	if (last)
		return report(s->d, R_VIP_CERTSANS, last_src, last,
			      "cluster.apiServer.certSANs lacks the VIP %s: TLS to the API server "
			      "through the load balancer fails for workers and clients; add it",
			      s->vip_text);
	if (s->first_cp)
		return report(
		    s->d, R_VIP_CERTSANS, s->first_cp->source, s->first_cp->node,
		    "the VIP %s is neither in cluster.apiServer.certSANs nor the "
		    "controlPlane endpoint: TLS through the load balancer fails; add it to "
		    "certSANs",
		    s->vip_text);
	return 0;
}

static bool controllers_disable_ipam(const struct ynode *n, const char *v, size_t len)
{
	const char *s = v;

	if (ystr(n)) {
		s = n->str;
		len = n->n;
	}
	if (!s)
		return false;
	return memmem(s, len, "-nodeipam", 9) || memmem(s, len, "-node-ipam-controller", 21);
}

static int check_kcm(struct set *s)
{
	const struct ynode *bad = NULL;
	uint32_t bad_src = 0;
	bool off = false;
	int ret = 0;

	FOR_KEPT(s, k, K_TALOS)
	{
		const struct ynode *ea =
		    yget(k->node, "cluster", "controllerManager", "extraArgs", NULL);
		const struct ynode *v = ymap_get(ea, "allocate-node-cidrs");
		bool b;

		if (talos_worker(k->node))
			continue;
		if (controllers_disable_ipam(ymap_get(ea, "controllers"), NULL, 0))
			off = true;
		else if (ybool(v, &b) == 0 && !b)
			off = true;
		else if (ybool(v, &b) == 0 && b) {
			bad = v;
			bad_src = k->source;
		}
	}
	if (bad)
		ret = report(
		    s->d, R_KCM_ALLOCATES, bad_src, bad,
		    "kube-controller-manager allocates node CIDRs: it gives Nodes podCIDRs "
		    "that differ from the alias ranges the CCM assigns, and the VPC drops pod "
		    "traffic (split-brain); set allocate-node-cidrs: \"false\"");
	else if (!off && s->first_cp)
		ret =
		    report(s->d, R_KCM_ALLOCATES, s->first_cp->source, s->first_cp->node,
			   "Talos runs kube-controller-manager with --allocate-node-cidrs=true "
			   "unless told otherwise: it gives Nodes podCIDRs that differ from their "
			   "alias ranges (split-brain); set cluster.controllerManager.extraArgs "
			   "allocate-node-cidrs: \"false\"");
	FOR_KEPT(s, k, K_KCM)
	{
		const char *v = NULL, *cv = NULL;
		size_t len = 0, clen = 0;
		const struct ynode *a = container_flag(k->node, "allocate-node-cidrs", &v, &len);
		const struct ynode *c = container_flag(k->node, "controllers", &cv, &clen);

		if (ret < 0)
			break;
		if (a && len == 4 && !memcmp(v, "true", 4) &&
		    !(c && controllers_disable_ipam(NULL, cv, clen)))
			ret =
			    report(s->d, R_KCM_ALLOCATES, k->source, a,
				   "kube-controller-manager runs with --allocate-node-cidrs=true: "
				   "it gives Nodes podCIDRs that differ from their alias ranges "
				   "(split-brain); set it to false");
	}
	return ret;
}

static int check_talos_misc(struct set *s)
{
	const struct ynode *ecp_false = NULL, *cni_bad = NULL, *proxy_false = NULL;
	uint32_t ecp_src = 0, cni_src = 0, proxy_src = 0;
	bool ecp_on = false, cni_set = false, proxy_off = false;
	uint32_t src;
	bool kpr = truthy(cilium_get(s, C_KPR, &src));
	int ret = 0;

	FOR_KEPT(s, k, K_TALOS)
	{
		const struct ynode *ecp =
		    yget(k->node, "cluster", "externalCloudProvider", "enabled", NULL);
		const struct ynode *cni = yget(k->node, "cluster", "network", "cni", "name", NULL);
		const struct ynode *px = yget(k->node, "cluster", "proxy", "disabled", NULL);
		const struct ynode *sys = yget(k->node, "machine", "sysctls", NULL);
		static const char *const rp[] = {"net.ipv4.conf.all.rp_filter",
						 "net.ipv4.conf.default.rp_filter"};
		bool b;

		if (ybool(ecp, &b) == 0) {
			if (b)
				ecp_on = true;
			else if (!ecp_false) {
				ecp_false = ecp;
				ecp_src = k->source;
			}
		}
		if (ystr(cni)) {
			cni_set = true;
			if (yscalar_eq(cni, "flannel") && !cni_bad) {
				cni_bad = cni;
				cni_src = k->source;
			}
		}
		if (ybool(px, &b) == 0) {
			if (b)
				proxy_off = true;
			else if (!proxy_false) {
				proxy_false = px;
				proxy_src = k->source;
			}
		}
		for (size_t i = 0; i < 2 && ret >= 0; i++) {
			const struct ynode *v = ymap_get(sys, rp[i]);

			if (yscalar_eq(v, "1"))
				ret =
				    report(s->d, R_TALOS_RP_FILTER, k->source, v,
					   "%s=1 (strict) drops natively routed pod traffic that "
					   "arrives on another interface than the route back; set "
					   "\"0\" (or \"2\", loose)",
					   rp[i]);
		}
	}
	if (ret >= 0 && ecp_false)
		ret = report(s->d, R_TALOS_EXTERNAL_CLOUD, ecp_src, ecp_false,
			     "the external cloud provider is disabled: Nodes get no providerID, so "
			     "the CCM's CloudAllocator cannot find their instances; set "
			     "cluster.externalCloudProvider.enabled: true");
	else if (ret >= 0 && !ecp_on && s->first_cp)
		ret = report(s->d, R_TALOS_EXTERNAL_CLOUD, s->first_cp->source, s->first_cp->node,
			     "cluster.externalCloudProvider.enabled is not set: Nodes get no "
			     "providerID, so the CCM's CloudAllocator cannot find their instances; "
			     "set it to true");
	if (ret >= 0 && cni_bad)
		ret = report(s->d, R_TALOS_CNI, cni_src, cni_bad,
			     "Talos installs flannel, which fights Cilium over pod networking and "
			     "ignores the alias ranges; set cluster.network.cni.name: none");
	else if (ret >= 0 && !cni_set && s->first_cp)
		ret =
		    report(s->d, R_TALOS_CNI, s->first_cp->source, s->first_cp->node,
			   "cluster.network.cni.name is not set, so Talos installs flannel next to "
			   "Cilium; set it to none");
	if (ret >= 0 && kpr && !proxy_off && (proxy_false || s->first_cp))
		ret =
		    report(s->d, R_TALOS_KUBE_PROXY, proxy_false ? proxy_src : s->first_cp->source,
			   proxy_false ? proxy_false : s->first_cp->node,
			   "kube-proxy runs although Cilium replaces it (kubeProxyReplacement): "
			   "both program the same Services; set cluster.proxy.disabled: true");
	return ret;
}

/* ---- CCM ---- */

static bool flag_is(const char *v, size_t len, const char *want)
{
	return v && len == strlen(want) && !strncasecmp(v, want, len);
}

static int check_ccm(struct set *s)
{
	int ret = 0;

	FOR_KEPT(s, k, K_CCM)
	{
		const char *alloc = NULL, *type = NULL, *routes = NULL;
		size_t alen = 0, tlen = 0, rlen = 0;
		const struct ynode *a =
		    container_flag(k->node, "allocate-node-cidrs", &alloc, &alen);
		const struct ynode *t =
		    container_flag(k->node, "cidr-allocator-type", &type, &tlen);
		const struct ynode *r =
		    container_flag(k->node, "configure-cloud-routes", &routes, &rlen);
		const struct ynode *where = ymap_key(k->node, "args");

		if (!where)
			where = ymap_get(k->node, "name");
		if (ret < 0)
			break;
		if (!a || !flag_is(alloc, alen, "true"))
			ret = report(
			    s->d, R_CCM_ALLOCATOR, k->source, a ? a : where,
			    "the GCP CCM does not allocate node CIDRs: Nodes never get a "
			    "podCIDR and Cilium (ipam kubernetes) never starts their pods; add "
			    "--allocate-node-cidrs=true --cidr-allocator-type=CloudAllocator");
		else if (!t || !flag_is(type, tlen, "CloudAllocator"))
			ret = report(
			    s->d, R_CCM_ALLOCATOR, k->source, t ? t : a,
			    "the GCP CCM allocates node CIDRs with the %.*s: it picks podCIDRs "
			    "of its own that differ from the instances' alias ranges, and the "
			    "VPC drops pod traffic (split-brain); add "
			    "--cidr-allocator-type=CloudAllocator",
			    t ? (int)tlen : 28, t ? type : "default RangeAllocator");
		if (ret >= 0 && (!r || flag_is(routes, rlen, "true")))
			ret = report(
			    s->d, R_CCM_CLOUD_ROUTES, k->source, r ? r : where,
			    "the GCP CCM configures cloud routes (--configure-cloud-routes "
			    "defaults to true): with alias IP ranges the route controller fails "
			    "forever, as GCP refuses routes inside the pods range; add "
			    "--configure-cloud-routes=false");
	}
	return ret;
}

/* ---- pod CIDR agreement ---- */

struct cidr_claim {
	const char *what;
	const struct ynode *at;
	uint32_t src;
	struct cidr range;
};

static int check_cluster_cidr(struct set *s)
{
	struct cidr_claim claims[16];
	size_t n = 0;
	uint32_t src;
	const struct ynode *nd;
	int ret = 0;

	FOR_KEPT(s, k, K_GCE_SUBNETWORK)
	{
		const struct ynode *sec = ymap_get(k->obj, "secondaryIpRanges");

		for (uint32_t i = 0; yis_seq(sec) && i < sec->n && !n; i++) {
			const struct ynode *r = ymap_get(sec->items[i], "ipCidrRange");

			if (yscalar_eq(ymap_get(sec->items[i], "rangeName"), "pods") && ystr(r) &&
			    cidr_parse(r->str, &claims[n].range, CIDR_MASK_HOST_BITS) == 0) {
				claims[n].what = "the subnet's pods range";
				claims[n].at = r;
				claims[n].src = k->source;
				n++;
			}
		}
		if (n)
			break;
	}
	FOR_KEPT(s, k, K_CCM)
	{
		const char *v = NULL;
		size_t len = 0;
		const struct ynode *a = container_flag(k->node, "cluster-cidr", &v, &len);
		char buf[CIDR_STRLEN];

		if (n >= 14)
			break; /* room for Talos and Cilium */
		if (a && len < sizeof(buf)) {
			memcpy(buf, v, len);
			buf[len] = '\0';
			if (cidr_parse(buf, &claims[n].range, CIDR_MASK_HOST_BITS) == 0) {
				claims[n].what = "the CCM's --cluster-cidr";
				claims[n].at = a;
				claims[n].src = k->source;
				n++;
			}
		}
	}
	FOR_KEPT(s, k, K_TALOS)
	{
		const struct ynode *ps = yget(k->node, "cluster", "network", "podSubnets", NULL);

		if (yis_seq(ps) && ps->n && ystr(ps->items[0]) &&
		    cidr_parse(ps->items[0]->str, &claims[n].range, CIDR_MASK_HOST_BITS) == 0) {
			claims[n].what = "Talos' cluster.network.podSubnets";
			claims[n].at = ps->items[0];
			claims[n].src = k->source;
			n++;
			break;
		}
	}
	nd = cilium_get(s, C_NATIVE_CIDR, &src);
	if (ystr(nd) && cidr_parse(nd->str, &claims[n].range, CIDR_MASK_HOST_BITS) == 0) {
		claims[n].what = "Cilium's ipv4NativeRoutingCIDR";
		claims[n].at = nd;
		claims[n].src = src;
		n++;
	}
	for (size_t i = 1; i < n && ret >= 0; i++) {
		char a[CIDR_STRLEN], b[CIDR_STRLEN];

		if (cidr_equal(&claims[i].range, &claims[0].range))
			continue;
		cidr_format(&claims[i].range, a, sizeof(a));
		cidr_format(&claims[0].range, b, sizeof(b));
		ret = report(s->d, R_CLUSTER_CIDR_MISMATCH, claims[i].src, claims[i].at,
			     "%s is %s but %s is %s: pod traffic outside the range is dropped or "
			     "masqueraded; use %s everywhere",
			     claims[i].what, a, claims[0].what, b, b);
	}
	return ret;
}

/* ---- Cilium ---- */

static int check_cilium(struct set *s)
{
	const struct kept *first = cilium_first(s);
	uint32_t src = 0, psrc = 0, hsrc = 0;
	const struct ynode *ipam, *rm, *tun, *host, *port, *kpr, *mtu, *masq;
	bool native;
	int ret = 0;

	if (!first)
		return 0;
	ipam = cilium_get(s, C_IPAM, &src);
	if (ipam && !yscalar_eq(ipam, "kubernetes"))
		ret = report(s->d, R_CILIUM_IPAM_MODE, src, ipam,
			     "Cilium IPAM mode %.40s hands out pod addresses from its own pool, "
			     "outside the alias ranges the VPC routes; set ipam.mode: kubernetes",
			     ystr(ipam) ? ystr(ipam) : "?");
	else if (!ipam)
		ret = report(s->d, R_CILIUM_IPAM_MODE, first->source, first->node,
			     "ipam.mode is not set: Cilium's default cluster-pool hands out pod "
			     "addresses outside the alias ranges the VPC routes; set ipam.mode: "
			     "kubernetes");
	if (ret < 0)
		return ret;

	rm = cilium_get(s, C_ROUTING, &src);
	tun = cilium_get(s, C_TUNNEL_LEGACY, &psrc);
	native = yscalar_eq(rm, "native") || (!rm && yscalar_eq(tun, "disabled"));
	s->tunnel = !native;
	if (!native)
		ret = report(
		    s->d, R_CILIUM_ROUTING_MODE, rm ? src : first->source, rm ? rm : first->node,
		    "Cilium tunnels pod traffic (%s): it works, but wastes 50 bytes of MTU "
		    "and hides pod addresses from the VPC although the alias ranges route "
		    "them natively; set routingMode: native",
		    rm ? "routingMode tunnel" : "the default");
	masq = cilium_get(s, C_MASQ, &psrc);
	if (ret >= 0 && native && !cilium_get(s, C_NATIVE_CIDR, &psrc) && !(masq && !truthy(masq)))
		ret = report(
		    s->d, R_CILIUM_NATIVE_CIDR, rm ? src : first->source, rm ? rm : first->node,
		    "native routing without ipv4NativeRoutingCIDR: the Cilium agent refuses "
		    "to start; set ipv4NativeRoutingCIDR to the pods range");
	if (ret < 0)
		return ret;

	host = cilium_get(s, C_HOST, &hsrc);
	port = cilium_get(s, C_PORT, &psrc);
	kpr = cilium_get(s, C_KPR, &src);
	if (!host && truthy(kpr))
		ret = report(s->d, R_CILIUM_API_UNSET, src, kpr,
			     "Cilium replaces kube-proxy but has no k8sServiceHost: the kubernetes "
			     "Service only works once Cilium runs, so the agent cannot start; set "
			     "k8sServiceHost: localhost, k8sServicePort: 7445 (KubePrism)");
	if (ret >= 0 && host &&
	    (node_is_vip(s, host) ||
	     (s->endpoint_host && ystr(host) && !strcmp(host->str, s->endpoint))))
		ret =
		    report(s->d, R_CILIUM_API_VIA_VIP, hsrc, host,
			   "Cilium reaches the API server through the VIP %s: on control-plane "
			   "nodes that traffic hairpins to the node itself and fails while its API "
			   "server (or vip-alias) is not up; use k8sServiceHost: localhost, "
			   "k8sServicePort: 7445 (KubePrism)",
			   ystr(host));
	if (ret >= 0 && host &&
	    (yscalar_eq(host, "localhost") || yscalar_eq(host, "127.0.0.1") ||
	     yscalar_eq(host, "::1"))) {
		uint64_t p = 0;
		bool talos_set_port = false;

		if (yuint(port, 65535, &p) < 0)
			p = 0;
		FOR_KEPT(s, k, K_TALOS)
		{
			const struct ynode *kp =
			    yget(k->node, "machine", "features", "kubePrism", NULL);
			const struct ynode *en = ymap_get(kp, "enabled");
			const struct ynode *tp = ymap_get(kp, "port");
			uint64_t q = KUBEPRISM_PORT;
			bool b;

			if (ret < 0)
				break;
			if (ybool(en, &b) == 0 && !b) {
				ret = report(
				    s->d, R_KUBEPRISM_DISABLED, k->source, en,
				    "KubePrism is disabled but Cilium reaches the API server at "
				    "%s:%.10s: the agents cannot start and no pod gets a network; "
				    "set machine.features.kubePrism.enabled: true",
				    host->str, ystr(port) ? port->str : "?");
				continue;
			}
			if (tp && yuint(tp, 65535, &q) == 0) {
				talos_set_port = true;
				if (p && q != p)
					ret = report(
					    s->d, R_KUBEPRISM_DISABLED, k->source, tp,
					    "KubePrism listens on %llu but Cilium connects to "
					    "port %llu: the agents cannot reach the API server; "
					    "use the same port (7445)",
					    (unsigned long long)q, (unsigned long long)p);
			}
		}
		if (ret >= 0 && p && p != KUBEPRISM_PORT && !talos_set_port)
			ret =
			    report(s->d, R_KUBEPRISM_DISABLED, psrc, port,
				   "Cilium connects to localhost:%llu but KubePrism listens on %d "
				   "unless machine.features.kubePrism.port says otherwise; set "
				   "k8sServicePort: %d",
				   (unsigned long long)p, KUBEPRISM_PORT, KUBEPRISM_PORT);
	}
	if (ret < 0)
		return ret;

	mtu = cilium_get(s, C_MTU, &src);
	{
		uint64_t m = 0;
		unsigned limit = s->vpc_mtu - (s->tunnel ? TUNNEL_OVERHEAD : 0);

		if (mtu && yuint(mtu, UINT32_MAX, &m) == 0 && m > limit)
			ret =
			    report(s->d, R_MTU_TOO_LARGE, src, mtu,
				   "Cilium MTU %llu is above %u (VPC MTU %u%s): larger packets are "
				   "dropped, so big transfers hang; set MTU: %u",
				   (unsigned long long)m, limit, s->vpc_mtu,
				   s->tunnel ? " minus 50 for the tunnel" : "", limit);
	}
	return ret;
}

static int check_cilium_talos(struct set *s)
{
	static const struct {
		const char *path[3];
		const char *want;
		const char *msg;
	} checks[] = {
	    {{"cgroup", "autoMount", "enabled"},
	     "false",
	     "Cilium mounts cgroup2 itself (cgroup.autoMount.enabled is not false), which Talos "
	     "does not allow: its pods fail to start; set cgroup.autoMount.enabled: false"},
	    {{"cgroup", "hostRoot", NULL},
	     "/sys/fs/cgroup",
	     "cgroup.hostRoot is not /sys/fs/cgroup, where Talos mounts cgroup v2: Cilium cannot "
	     "attach its programs; set cgroup.hostRoot: /sys/fs/cgroup"},
	};
	static const char *const caps[] = {"ciliumAgent", "cleanCiliumState"};
	const struct kept *first = NULL;
	int ret = 0;

	FOR_KEPT(s, k, K_CILIUM_VALUES)
	{
		first = k;
		break;
	}
	if (!first)
		return 0;
	for (size_t c = 0; c < sizeof(checks) / sizeof(checks[0]) && ret >= 0; c++) {
		const struct ynode *found = NULL;
		uint32_t src = 0;

		for (size_t i = s->d->n_kept; i-- > 0 && !found;) {
			const struct kept *k = &s->d->kept[i];
			const struct ynode *n = k->node;

			if (k->kind != K_CILIUM_VALUES)
				continue;
			for (int j = 0; j < 3 && checks[c].path[j] && n; j++)
				n = ymap_get(n, checks[c].path[j]);
			if (n) {
				found = n;
				src = k->source;
			}
		}
		if (found ? !yscalar_ieq(found, checks[c].want) : true)
			ret = report(s->d, R_CILIUM_TALOS_COMPAT, found ? src : first->source,
				     found ? found : first->node, "%s", checks[c].msg);
	}
	for (size_t c = 0; c < 2 && ret >= 0; c++) {
		const struct ynode *found = NULL;
		uint32_t src = 0;

		for (size_t i = s->d->n_kept; i-- > 0 && !found;) {
			const struct kept *k = &s->d->kept[i];

			if (k->kind == K_CILIUM_VALUES &&
			    (found =
				 yget(k->node, "securityContext", "capabilities", caps[c], NULL)))
				src = k->source;
		}
		if (!found) {
			ret =
			    report(s->d, R_CILIUM_TALOS_COMPAT, first->source, first->node,
				   "securityContext.capabilities.%s is not set: Cilium's default "
				   "includes SYS_MODULE, which Talos forbids, so its pods fail to "
				   "start; list the capabilities without SYS_MODULE",
				   caps[c]);
			continue;
		}
		if ((yis_scalar(found) && strcasestr(found->str, "SYS_MODULE")) ||
		    seq_has_scalar(found, "SYS_MODULE") || seq_has_scalar(found, "CAP_SYS_MODULE"))
			ret = report(
			    s->d, R_CILIUM_TALOS_COMPAT, src, found,
			    "securityContext.capabilities.%s asks for SYS_MODULE, which Talos "
			    "forbids to every process: the pods fail to start; remove it",
			    caps[c]);
	}
	return ret;
}

/* ---- interfaces, MTU ---- */

static int check_iface_addrs(struct set *s)
{
	int ret = 0;

	FOR_KEPT(s, k, K_IFACE_ADDR)
	{
		if (ret < 0)
			break;
		if (!ip_equal(&k->addr.addr, &s->vip) || k->dummy)
			continue;
		if (!strcmp(k->iface, "lo"))
			ret = report(
			    s->d, R_VIP_ON_LO, k->source, k->node,
			    "the VIP %s is put on lo: the kubelet or the CCM may take it as "
			    "the node's address, and GCP validation of the node fails; put it "
			    "on dummy0 (vip-alias)",
			    s->vip_text);
		else if (strncmp(k->iface, "dummy", 5))
			ret = report(
			    s->d, R_VIP_ON_PRIMARY, k->source, k->node,
			    "the VIP %s is put on %s, the primary interface: it is taken for "
			    "a node address; put it on dummy0 (vip-alias) instead",
			    s->vip_text, k->iface);
	}
	return ret;
}

static int check_talos_mtu(struct set *s)
{
	int ret = 0;

	FOR_KEPT(s, k, K_TALOS)
	{
		const struct ynode *ifaces =
		    yget(k->node, "machine", "network", "interfaces", NULL);

		for (uint32_t i = 0; yis_seq(ifaces) && i < ifaces->n && ret >= 0; i++) {
			const struct ynode *vlans = ymap_get(ifaces->items[i], "vlans");
			const struct ynode *list[2] = {ifaces->items[i], NULL};

			for (uint32_t j = 0; ret >= 0 && j <= (yis_seq(vlans) ? vlans->n : 0);
			     j++) {
				const struct ynode *iface = j ? vlans->items[j - 1] : list[0];
				const struct ynode *mtu = ymap_get(iface, "mtu");
				uint64_t m;

				if (yuint(mtu, UINT32_MAX, &m) == 0 && m > s->vpc_mtu)
					ret = report(
					    s->d, R_MTU_TOO_LARGE, k->source, mtu,
					    "interface MTU %llu is above the VPC's %u: larger "
					    "packets are dropped, so big transfers hang; set "
					    "mtu: %u",
					    (unsigned long long)m, s->vpc_mtu, s->vpc_mtu);
			}
		}
	}
	return ret;
}

/* ---- Compute Engine ---- */

static bool port_listed(const struct ynode *fr, const char *port)
{
	const struct ynode *range = ymap_get(fr, "portRange");
	bool all;

	if (seq_has_scalar(ymap_get(fr, "ports"), port))
		return true;
	if (ybool(ymap_get(fr, "allPorts"), &all) == 0 && all)
		return true;
	if (ystr(range)) {
		unsigned a = 0, b = 0, p = (unsigned)atoi(port);

		if (sscanf(range->str, "%u-%u", &a, &b) == 2)
			return a <= p && p <= b;
		return a == p;
	}
	return false;
}

static const struct kept *find_gce(const struct set *s, enum kept_kind kind, const char *ref)
{
	FOR_KEPT(s, k, kind)
	if (refers_to(ref, k->obj))
		return k;
	return NULL;
}

static int check_health_check(struct set *s, const struct kept *hc)
{
	static const char *const sub[] = {"tcpHealthCheck", "httpsHealthCheck", "httpHealthCheck",
					  "sslHealthCheck", "http2HealthCheck", "grpcHealthCheck"};
	/* Without a port, a check probes its protocol's default: 80, or 443 over TLS. */
	static const unsigned default_port[] = {80, 443, 80, 443, 443, 80};
	const struct ynode *port = ymap_get(hc->obj, "port"); /* legacy HTTP(S) health checks */
	const char *name = ystr(ymap_get(hc->obj, "name"));
	uint64_t p = yscalar_eq(ymap_get(hc->obj, "kind"), "compute#httpsHealthCheck") ? 443 : 80;

	for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]) && !port; i++) {
		const struct ynode *o = ymap_get(hc->obj, sub[i]);

		if (!o)
			continue;
		if (yscalar_eq(ymap_get(o, "portSpecification"), "USE_SERVING_PORT"))
			return 0; /* the backend's own port: 6443 for the API servers */
		port = ymap_get(o, "port");
		p = default_port[i];
	}
	if (port && yuint(port, 65535, &p) < 0)
		return 0;
	if (p == 6443)
		return 0;
	return report(
	    s->d, R_CP_HEALTH_CHECK, hc->source, port ? port : ymap_get(hc->obj, "name"),
	    "health check %s of the control-plane load balancer probes port %llu, not the "
	    "API server's 6443: a node whose API server is down stays in rotation and "
	    "requests through the VIP time out; check HTTPS /readyz on 6443",
	    name ? name : "?", (unsigned long long)p);
}

static int check_gce_lb(struct set *s)
{
	int ret = 0;

	FOR_KEPT(s, k, K_GCE_FORWARDING_RULE)
	{
		const struct ynode *ip = ymap_get(k->obj, "IPAddress");
		const struct kept *bs;
		const struct ynode *hcs;

		if (ret < 0)
			break;
		if (!yscalar_eq(ymap_get(k->obj, "loadBalancingScheme"), "INTERNAL") ||
		    !port_listed(k->obj, "6443"))
			continue;
		if (ystr(ip) && !node_is_vip(s, ip))
			ret =
			    report(s->d, R_CP_FORWARDING_RULE, k->source, ip,
				   "the control-plane forwarding rule %s listens on %s, not on the "
				   "VIP %s (%s): nothing answers at the cluster endpoint; recreate "
				   "it at the VIP's reserved internal address",
				   or_q(ystr(ymap_get(k->obj, "name"))), ip->str, s->vip_text,
				   s->vip_from);
		bs = find_gce(s, K_GCE_BACKEND_SERVICE, ystr(ymap_get(k->obj, "backendService")));
		hcs = bs ? ymap_get(bs->obj, "healthChecks") : NULL;
		for (uint32_t i = 0; yis_seq(hcs) && i < hcs->n && ret >= 0; i++) {
			const struct kept *hc =
			    find_gce(s, K_GCE_HEALTH_CHECK, ystr(hcs->items[i]));

			if (hc)
				ret = check_health_check(s, hc);
		}
	}
	return ret;
}

static int check_nodes(struct set *s)
{
	bool pods_known = s->d->pods_complete;
	int ret = 0;

	FOR_KEPT(s, k, K_POD)
	pods_known = true;
	FOR_KEPT(s, k, K_NODE)
	{
		const struct ynode *name = yget(k->obj, "metadata", "name", NULL);
		const struct ynode *labels = yget(k->obj, "metadata", "labels", NULL);
		const char *pid = ystr(yget(k->obj, "spec", "providerID", NULL));
		bool cp = ymap_get(labels, "node-role.kubernetes.io/control-plane") ||
			  ymap_get(labels, "node-role.kubernetes.io/master");

		if (ret < 0)
			break;
		/* The instance behind the Node (gce://project/zone/name), when it was read. */
		if (pid && !strncmp(pid, "gce://", 6)) {
			const char *zone_end = strrchr(pid, '/');
			const char *zone_start = zone_end;

			while (zone_start > pid + 6 && zone_start[-1] != '/')
				zone_start--;
			FOR_KEPT(s, in, K_GCE_INSTANCE)
			{
				const char *iname = ystr(ymap_get(in->obj, "name"));
				const char *izone = last_segment(ystr(ymap_get(in->obj, "zone")));
				const struct ynode *nics = ymap_get(in->obj, "networkInterfaces");
				const struct ynode *alias;

				if (!iname || strcmp(iname, zone_end + 1) || !izone ||
				    strlen(izone) != (size_t)(zone_end - zone_start) ||
				    strncmp(izone, zone_start, (size_t)(zone_end - zone_start)))
					continue;
				alias = yis_seq(nics) && nics->n
					    ? ymap_get(nics->items[0], "aliasIpRanges")
					    : NULL;
				if (!yis_seq(alias) || !alias->n)
					ret = report(
					    s->d, R_NODE_NO_ALIAS, in->source,
					    ymap_get(in->obj, "name"),
					    "instance %s (Node %s) has no alias IP range on nic0: "
					    "the CloudAllocator cannot give the Node a podCIDR and "
					    "its pods are unreachable; add one (gcloud compute "
					    "instances network-interfaces update %s --zone %s "
					    "--aliases \"pods:/24\")",
					    iname, or_q(ystr(name)), iname, izone);
				break;
			}
		}
		if (ret < 0 || !pods_known)
			continue;
		/* vip-alias pods: one running on every control-plane node, none elsewhere. */
		bool running = false;
		FOR_KEPT(s, p, K_POD)
		{
			const struct ynode *on = yget(p->obj, "spec", "nodeName", NULL);
			const struct ynode *phase = yget(p->obj, "status", "phase", NULL);

			if (!ystr(on) || !ystr(name) || strcmp(on->str, name->str))
				continue;
			if (!cp) {
				ret = report(
				    s->d, R_VIP_ALIAS_PLACEMENT, p->source, on,
				    "vip-alias runs on %s, which is not a control-plane node: "
				    "the local VIP captures its API traffic and nothing answers; "
				    "limit the DaemonSet to control-plane nodes",
				    on->str);
				break;
			}
			if (!phase || yscalar_eq(phase, "Running"))
				running = true;
		}
		if (ret >= 0 && cp && !running)
			ret = report(
			    s->d, R_VIP_ALIAS_MISSING, k->source, name,
			    "control-plane node %s runs no vip-alias pod: its traffic to the "
			    "VIP %s hairpins and times out, and load-balanced traffic it "
			    "receives for the VIP is dropped; check the DaemonSet's placement "
			    "and the pod's events",
			    or_q(ystr(name)), s->vip_text);
	}
	return ret;
}

static int check_vip_alias_present(struct set *s)
{
	FOR_KEPT(s, k, K_VIP_ALIAS)
	return 0;
	FOR_KEPT(s, k, K_IFACE_ADDR)
	if (k->dummy && ip_equal(&k->addr.addr, &s->vip))
		return 0; /* the Talos config puts the VIP on a dummy interface itself */
	if (!s->first_cp || !s->d->workloads_seen)
		return 0;
	return report(s->d, R_VIP_ALIAS_MISSING, s->first_cp->source, s->first_cp->node,
		      "no vip-alias DaemonSet among the inputs: on control-plane nodes traffic to "
		      "the VIP %s hairpins and times out; deploy it (talos-gcp render writes "
		      "vip-alias.yaml)",
		      s->vip_text);
}

static int check_lb_addresses(struct set *s)
{
	int ret = 0;

	if (!s->d->addresses_complete)
		return 0;
	FOR_KEPT(s, k, K_SERVICE_LB)
	{
		struct ip_addr ip;
		bool found = false;

		if (ret < 0)
			break;
		if (ip_of(k->node->str, k->node->n, &ip) < 0)
			continue; /* a placeholder such as 35.x.x.x */
		FOR_KEPT(s, a, K_GCE_ADDRESS)
		{
			const struct ynode *addr = ymap_get(a->obj, "address");
			struct ip_addr aip;

			if (ystr(addr) && ip_of(addr->str, addr->n, &aip) == 0 &&
			    ip_equal(&aip, &ip))
				found = true;
		}
		if (!found)
			ret = report(
			    s->d, R_LB_IP_NOT_RESERVED, k->source, k->node,
			    "loadBalancerIP %s is not an address reserved in the region: the "
			    "CCM cannot create the forwarding rule and the Service stays "
			    "pending; reserve it (gcloud compute addresses create) or remove "
			    "loadBalancerIP",
			    k->node->str);
	}
	return ret;
}

int check_set(struct doctor *d)
{
	struct set s = {.d = d};
	int ret;

	resolve_vip(&s);
	s.vpc_mtu = d->opt.vpc_mtu;
	if (!s.vpc_mtu) {
		s.vpc_mtu = DEFAULT_VPC_MTU;
		FOR_KEPT(&s, k, K_GCE_NETWORK)
		{
			uint64_t m;

			if (yuint(ymap_get(k->obj, "mtu"), 65535, &m) == 0 && m >= 576) {
				s.vpc_mtu = (unsigned)m;
				break;
			}
		}
	}
	FOR_KEPT(&s, k, K_TALOS)
	{
		if (talos_cp(k->node)) {
			s.first_cp = k;
			break;
		}
	}
	s.cilium = cilium_first(&s) != NULL;

	static const char *const nodeip[4] = {"machine", "kubelet", "nodeIP", "validSubnets"};
	static const char *const etcd[4] = {"cluster", "etcd", "advertisedSubnets", NULL};

	if ((ret = check_talos_subnets(&s, R_VIP_KUBELET_NODEIP, nodeip,
				       "machine.kubelet.nodeIP.validSubnets", "the kubelet")) < 0 ||
	    (ret = check_talos_subnets(&s, R_VIP_ETCD_ADVERTISED, etcd,
				       "cluster.etcd.advertisedSubnets", "etcd")) < 0 ||
	    (ret = check_certsans(&s)) < 0 || (ret = check_kcm(&s)) < 0 ||
	    (ret = check_talos_misc(&s)) < 0 || (ret = check_ccm(&s)) < 0 ||
	    (ret = check_cluster_cidr(&s)) < 0 || (ret = check_cilium(&s)) < 0 ||
	    (ret = check_cilium_talos(&s)) < 0 || (ret = check_iface_addrs(&s)) < 0 ||
	    (ret = check_talos_mtu(&s)) < 0 || (ret = check_gce_lb(&s)) < 0 ||
	    (ret = check_nodes(&s)) < 0 || (ret = check_vip_alias_present(&s)) < 0 ||
	    (ret = check_lb_addresses(&s)) < 0 || (ret = check_services(d)) < 0)
		return ret;
	return 0;
}
