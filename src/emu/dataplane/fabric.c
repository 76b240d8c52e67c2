/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VPC router namespace (PREFIX-vpc), the internet (PREFIX-internet), and the instances'
 * namespaces (PREFIX-NAME), as GCP's documentation describes the network a VM sees:
 *
 *   - "Each VM's network interface has a /32 address and a default route to the subnet's
 *     gateway" (https://cloud.google.com/vpc/docs/vpc#routing_for_instances: the guest gets
 *     its address by DHCP with a /32 netmask and a route to the gateway, the first address
 *     of the primary range): eth0 holds IP/32, `default via GW dev eth0 onlink`, MTU 1460.
 *   - The VPC is a software-defined network at layer 3: it delivers a packet only to the
 *     instance an API resource maps the destination to (the primary IP, an alias IP range,
 *     a forwarding rule), "ARP requests for other addresses are not answered"
 *     (https://cloud.google.com/vpc/docs/advanced-vpc: "Google Cloud doesn't support ...
 *     broadcast ... ARP requests are answered only for addresses the VPC knows"): each veth
 *     in the VPC holds the gateway address (the one ARP it answers), the VPC's neighbour
 *     entries are permanent (GCE derives MACs from addresses, 42:01:a.b.c.d), gratuitous
 *     ARP is dropped and nothing is learned from it, there is no proxy ARP and no redirect.
 *   - A route per mapped address only: IP/32 to the instance's veth, an alias range via the
 *     owner's IP; private destinations the VPC does not map are dropped (blackhole); the
 *     rest goes towards the internet, where only NAT'ed traffic is let through (firewall.c).
 */
#include <errno.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "emu/dataplane/dataplane.h"

/* ---- namespace set-up (runs inside the new namespace) ---- */

static const char *const common_sysctls[][2] = {
    /* No IPv6: the VPC networks emulated are IPv4 (no link-local noise, no DAD). */
    {"net/ipv6/conf/all/disable_ipv6", "1"},
    {"net/ipv6/conf/default/disable_ipv6", "1"},
    /* IPv4 settings are copied from the host's namespace at creation: set what matters. */
    {"net/ipv4/conf/all/rp_filter", "0"},
    {"net/ipv4/conf/default/rp_filter", "0"},
};

static const char *const vpc_sysctls[][2] = {
    {"net/ipv4/ip_forward", "1"},
    {"net/ipv4/conf/all/send_redirects", "0"},
    {"net/ipv4/conf/default/send_redirects", "0"},
    {"net/ipv4/conf/all/accept_redirects", "0"},
    {"net/ipv4/conf/default/accept_redirects", "0"},
    {"net/ipv4/conf/all/proxy_arp", "0"},
    {"net/ipv4/conf/default/proxy_arp", "0"},
    /* Answer ARP only for an address of the asking link (the gateway), as the VPC does. */
    {"net/ipv4/conf/all/arp_ignore", "1"},
    {"net/ipv4/conf/default/arp_ignore", "1"},
    {"net/ipv4/conf/all/arp_announce", "2"},
    {"net/ipv4/conf/default/arp_announce", "2"},
    /* Gratuitous ARP changes nothing (note §1). */
    {"net/ipv4/conf/all/arp_accept", "0"},
    {"net/ipv4/conf/default/arp_accept", "0"},
    {"net/ipv4/conf/all/drop_gratuitous_arp", "1"},
    {"net/ipv4/conf/default/drop_gratuitous_arp", "1"},
    /* Load balancing by 5-tuple hash, as sessionAffinity NONE. */
    {"net/ipv4/fib_multipath_hash_policy", "1"},
};

static const char *const inst_sysctls[][2] = {
    /* A guest forwards nothing unless it says so; pods are local addresses (below). */
    {"net/ipv4/ip_forward", "0"},
};

static const char *const node_sysctls[][2] = {
    /* A Kubernetes node (Talos) forwards: Services' endpoints may be on another node. */
    {"net/ipv4/ip_forward", "1"},
};

struct setup {
	const char *const (*sysctls)[2];
	size_t nsysctls;
	struct dp_nl *nl; /* out: a netlink socket inside */
};

static int ns_setup(void *arg)
{
	struct setup *s = arg;

	for (size_t i = 0; i < sizeof(common_sysctls) / sizeof(common_sysctls[0]); i++)
		dp_sysctl(common_sysctls[i][0], common_sysctls[i][1]);
	for (size_t i = 0; i < s->nsysctls; i++) {
		int ret = dp_sysctl(s->sysctls[i][0], s->sysctls[i][1]);

		if (ret < 0)
			return ret;
	}
	s->nl = dp_nl_open();
	return s->nl ? 0 : -ENOMEM;
}

static const uint8_t inet_mac[6] = {0x42, 0x01, 0xcb, 0x00, 0x71, 0x0a};
static const uint8_t inet_gw_mac[6] = {0x42, 0x01, 0xcb, 0x00, 0x71, 0x01};

int dp_fabric_start(struct emu_dataplane *dp)
{
	struct setup vs = {vpc_sysctls, sizeof(vpc_sysctls) / sizeof(vpc_sysctls[0]), NULL};
	struct setup is = {inst_sysctls, sizeof(inst_sysctls) / sizeof(inst_sysctls[0]), NULL};
	int ret;

	ret = dp_netns_create(dp->vpc_ns, ns_setup, &vs, &dp->vpc_fd);
	if (ret < 0) {
		log_error("dataplane: cannot create namespace %s: %s", dp->vpc_ns, strerror(-ret));
		return ret;
	}
	dp->vnl = vs.nl;
	ret = dp_netns_create(dp->inet_ns, ns_setup, &is, &dp->inet_fd);
	if (ret < 0) {
		log_error("dataplane: cannot create namespace %s: %s", dp->inet_ns, strerror(-ret));
		return ret;
	}
	/* The VPC: loopback (its addresses follow the model: lo_sync). */
	dp_nl_link_up(dp->vnl, 1);
	/* Its way out: "internet" in the VPC, eth0 in the world. */
	dp_nl_veth(dp->vnl, "internet", DP_FABRIC_INET, inet_gw_mac, "eth0", DP_INST_ETH0, inet_mac,
		   dp->inet_fd);
	dp_nl_addr(dp->vnl, true, DP_FABRIC_INET, DP_INET_GW, 32, RT_SCOPE_UNIVERSE);
	dp_nl_neigh(dp->vnl, DP_FABRIC_INET, DP_INET_CLIENT, inet_mac);
	ret = dp_nl_flush(dp->vnl);
	if (ret == 0) {
		/* The world: a client address, TEST-NET-2 as hosts on the internet (any address
		 * of 198.51.100.0/24 answers), everything else back to the VPC. */
		struct dp_nh gw = {DP_INET_GW, DP_INST_ETH0};
		struct dp_nh lo = {0, 1};
		struct dp_route def = {RT_TABLE_MAIN, 0, 0, RTN_UNICAST, RT_SCOPE_UNIVERSE, 1, &gw};
		struct dp_route hosts = {RT_TABLE_LOCAL, 0xc6336400u, 24, RTN_LOCAL,
					 RT_SCOPE_HOST,  1,           &lo};

		dp_nl_link_up(is.nl, 1);
		dp_nl_link_up(is.nl, DP_INST_ETH0);
		dp_nl_addr(is.nl, true, DP_INST_ETH0, DP_INET_CLIENT, 32, RT_SCOPE_UNIVERSE);
		dp_nl_route(is.nl, true, &def);
		dp_nl_route(is.nl, true, &hosts);
		ret = dp_nl_flush(is.nl);
	}
	dp_nl_close(is.nl);
	if (ret < 0)
		log_error("dataplane: cannot set up %s and %s", dp->vpc_ns, dp->inet_ns);
	return ret;
}

void dp_fabric_stop(struct emu_dataplane *dp)
{
	if (dp->vnl) {
		dp_nl_close(dp->vnl);
		dp->vnl = NULL;
	}
	if (dp->inet_fd >= 0) {
		dp_netns_delete(dp->inet_ns, dp->inet_fd);
		close(dp->inet_fd);
		dp->inet_fd = -1;
	}
	if (dp->vpc_fd >= 0) {
		dp_netns_delete(dp->vpc_ns, dp->vpc_fd);
		close(dp->vpc_fd);
		dp->vpc_fd = -1;
	}
}

/* ---- instances ---- */

static void pods_requests(struct dp_nl *nl, struct dp_range old, struct dp_range pods)
{
	struct dp_nh dev = {0, DP_INST_PODS};

	if (old.plen) {
		struct dp_route r = {RT_TABLE_LOCAL, old.lo, old.plen, RTN_LOCAL,
				     RT_SCOPE_HOST,  1,      &dev};

		dp_nl_route(nl, false, &r);
		dp_nl_addr(nl, false, DP_INST_PODS, old.lo + 1, 32, RT_SCOPE_UNIVERSE);
	}
	if (pods.plen) {
		/* Every address of the podCIDR is local (a pod), its first one the router's as
		 * Cilium's cilium_host holds it. */
		struct dp_route r = {RT_TABLE_LOCAL, pods.lo, pods.plen, RTN_LOCAL,
				     RT_SCOPE_HOST,  1,       &dev};

		dp_nl_addr(nl, true, DP_INST_PODS, pods.lo + 1, 32, RT_SCOPE_UNIVERSE);
		dp_nl_route(nl, true, &r);
	}
}

int dp_insts_create(struct emu_dataplane *dp, struct dp_inst **insts, size_t n)
{
	struct dp_nl **nls = calloc(n ? n : 1, sizeof(*nls));
	int ret = 0;

	if (!nls)
		return -ENOMEM;
	/* 1. The namespaces, each with a netlink socket inside. */
	for (size_t i = 0; i < n; i++) {
		struct dp_inst *in = insts[i];
		struct setup s = {in->talos ? node_sysctls : inst_sysctls, 1, NULL};
		int r;

		in->id = ++dp->next_inst_id;
		in->ifindex = DP_FABRIC_VETH0 + (int)in->id;
		snprintf(in->ifname, sizeof(in->ifname), "v%u", in->id);
		snprintf(in->ns, sizeof(in->ns), "%s-%s", dp->prefix, in->name);
		r = dp_netns_create(in->ns, ns_setup, &s, &in->nsfd);
		if (r < 0) {
			log_error("dataplane: cannot create namespace %s: %s", in->ns,
				  strerror(-r));
			in->nsfd = -1;
			ret = r;
			continue;
		}
		nls[i] = s.nl;
	}
	/* 2. One batch in the VPC: every veth (its far end lands in the instance), the
	 * gateway address on it, the instance's MAC as a permanent neighbour. */
	for (size_t i = 0; i < n; i++) {
		struct dp_inst *in = insts[i];
		uint8_t mac[6], gwmac[6];

		if (!nls[i])
			continue;
		dp_mac_of(in->ip, mac);
		dp_mac_of(in->gw, gwmac);
		dp_nl_veth(dp->vnl, in->ifname, in->ifindex, gwmac, "eth0", DP_INST_ETH0, mac,
			   in->nsfd);
		dp_nl_addr(dp->vnl, true, in->ifindex, in->gw, 32, RT_SCOPE_UNIVERSE);
		dp_nl_neigh(dp->vnl, in->ifindex, in->ip, mac);
	}
	if (dp_nl_flush(dp->vnl) < 0)
		ret = -EIO;
	/* 3. Each guest: loopback, eth0's /32 and default route, the pods' interface. */
	for (size_t i = 0; i < n; i++) {
		struct dp_inst *in = insts[i];
		struct dp_nh gw = {in->gw, DP_INST_ETH0};
		struct dp_route def = {RT_TABLE_MAIN, 0, 0, RTN_UNICAST, RT_SCOPE_UNIVERSE, 1, &gw};
		static const uint8_t pods_mac[6] = {0x02, 0, 0, 0, 0, 0x03};
		static const uint8_t peer_mac[6] = {0x02, 0, 0, 0, 0, 0x04};
		struct dp_range none = {0};

		if (!nls[i])
			continue;
		dp_nl_link_up(nls[i], 1);
		dp_nl_link_up(nls[i], DP_INST_ETH0);
		dp_nl_addr(nls[i], true, DP_INST_ETH0, in->ip, 32, RT_SCOPE_UNIVERSE);
		dp_nl_route(nls[i], true, &def);
		dp_nl_veth(nls[i], "pods", DP_INST_PODS, pods_mac, "pods-peer", DP_INST_PODS + 1,
			   peer_mac, -1);
		dp_nl_link_up(nls[i], DP_INST_PODS + 1);
		pods_requests(nls[i], none, in->pods);
	}
	for (size_t i = 0; i < n; i++) {
		if (!nls[i])
			continue;
		if (dp_nl_flush(nls[i]) < 0)
			ret = -EIO;
		dp_nl_close(nls[i]);
		dp->materialised++;
	}
	free(nls);
	return ret;
}

int dp_inst_set_pods(struct emu_dataplane *dp, struct dp_inst *in, struct dp_range pods)
{
	struct dp_nl *nl;
	int ret;

	(void)dp;
	if (in->pods.lo == pods.lo && in->pods.plen == pods.plen)
		return 0;
	ret = dp_netns_enter(in->nsfd);
	if (ret < 0)
		return ret;
	nl = dp_nl_open();
	dp_netns_leave();
	if (!nl)
		return -ENOMEM;
	pods_requests(nl, in->pods, pods);
	ret = dp_nl_flush(nl);
	dp_nl_close(nl);
	if (ret == 0)
		in->pods = pods;
	return ret;
}

/* The kernel dropped every route through a deleted link: so does our record. */
static void forget_routes_via(struct emu_dataplane *dp, int ifindex)
{
	size_t j = 0;

	for (size_t i = 0; i < dp->nroutes; i++) {
		struct dp_route *r = &dp->routes[i];
		bool via = false;

		for (size_t h = 0; h < r->nnh; h++)
			via |= r->nh[h].ifindex == ifindex;
		if (via)
			free(r->nh);
		else
			dp->routes[j++] = *r;
	}
	dp->nroutes = j;
}

void dp_inst_destroy(struct emu_dataplane *dp, struct dp_inst *in)
{
	if (in->nsfd >= 0) {
		/*
		 * The kernel deletes the veth pair with the namespace, in its cleanup worker a
		 * moment later and in batches (a RTM_DELLINK per instance costs tens of ms of
		 * unregistering each); with it every route through it. Ids are never reused, so
		 * a new instance of the same name never meets the dying link.
		 */
		forget_routes_via(dp, in->ifindex);
		dp_netns_delete(in->ns, in->nsfd);
		close(in->nsfd);
		in->nsfd = -1;
	}
}

/* ---- routes and policy rules of the VPC ---- */

static int route_cmp(const void *a, const void *b)
{
	const struct dp_route *x = a, *y = b;

	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	if (x->dst != y->dst)
		return x->dst < y->dst ? -1 : 1;
	return (int)x->plen - (int)y->plen;
}

static int nh_cmp(const void *a, const void *b)
{
	const struct dp_nh *x = a, *y = b;

	if (x->ifindex != y->ifindex)
		return x->ifindex < y->ifindex ? -1 : 1;
	return x->gw < y->gw ? -1 : x->gw > y->gw;
}

static bool route_same(const struct dp_route *a, const struct dp_route *b)
{
	if (a->type != b->type || a->scope != b->scope || a->nnh != b->nnh)
		return false;
	for (size_t i = 0; i < a->nnh; i++)
		if (nh_cmp(&a->nh[i], &b->nh[i]))
			return false;
	return true;
}

struct route_set {
	struct dp_route *r;
	size_t n, cap;
};

static struct dp_route *route_add(struct route_set *s, uint32_t table, uint32_t dst, uint8_t plen,
				  uint8_t type, uint8_t scope)
{
	struct dp_route *r;

	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct dp_route *n = realloc(s->r, ncap * sizeof(*n));

		if (!n)
			return NULL;
		s->r = n;
		s->cap = ncap;
	}
	r = &s->r[s->n++];
	*r = (struct dp_route){
	    .table = table, .dst = dst, .plen = plen, .type = type, .scope = scope};
	return r;
}

static int route_nh(struct dp_route *r, uint32_t gw, int ifindex)
{
	struct dp_nh *n = realloc(r->nh, (r->nnh + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	r->nh = n;
	r->nh[r->nnh++] = (struct dp_nh){gw, ifindex};
	return 0;
}

static void routes_free(struct dp_route *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(r[i].nh);
	free(r);
}

static int rule_cmp(const void *a, const void *b)
{
	const struct dp_rule_spec *x = a, *y = b;
	int c;

	if (x->prio != y->prio)
		return x->prio < y->prio ? -1 : 1;
	c = strcmp(x->iif, y->iif);
	if (c)
		return c;
	if (x->mark != y->mark)
		return x->mark < y->mark ? -1 : 1;
	if (x->src != y->src)
		return x->src < y->src ? -1 : 1;
	return x->table < y->table ? -1 : x->table > y->table;
}

struct rule_set {
	struct dp_rule_spec *r;
	size_t n, cap;
};

static int rule_src_add(struct rule_set *s, uint32_t prio, uint32_t src, uint32_t table);

static int rule_add(struct rule_set *s, uint32_t prio, const char *iif, uint32_t mark,
		    uint32_t table)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct dp_rule_spec *n = realloc(s->r, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->r = n;
		s->cap = ncap;
	}
	s->r[s->n] = (struct dp_rule_spec){.prio = prio, .mark = mark, .table = table};
	snprintf(s->r[s->n].iif, sizeof(s->r[s->n].iif), "%s", iif ? iif : "");
	s->n++;
	return 0;
}

static int rule_src_add(struct rule_set *s, uint32_t prio, uint32_t src, uint32_t table)
{
	int ret = rule_add(s, prio, NULL, 0, table);

	if (ret == 0)
		s->r[s->n - 1].src = src;
	return ret;
}

/* Private destinations the VPC maps nothing to are dropped, not sent to the internet. */
static const struct dp_range private_ranges[] = {
    {0x0a000000u, 8}, {0xac100000u, 12}, {0xc0a80000u, 16}, {0x64400000u, 10}};

static bool backend_healthy(struct emu_dataplane *dp, const struct dp_rule *lb,
			    const struct dp_want_inst *w)
{
	/* Without a health check every backend counts as healthy. */
	return lb->hc < 0 || dp_health_state(dp, lb->service_url, w->url) == 1;
}

static int desired(struct emu_dataplane *dp, const struct dp_model *m, struct route_set *rs,
		   struct rule_set *ru)
{
	bool *nets = calloc(dp->next_net_id + 1, sizeof(*nets));
	int ret = 0;

	if (!nets)
		return -ENOMEM;
	route_add(rs, DP_TABLE_PUBLIC, 0, 0, RTN_UNREACHABLE, RT_SCOPE_UNIVERSE);
	/* What the VPC itself sends without a mark or a proxy source (the proxies' answers to
	 * their clients) goes to the internet. */
	{
		struct dp_route *r =
		    route_add(rs, RT_TABLE_MAIN, 0, 0, RTN_UNICAST, RT_SCOPE_UNIVERSE);

		if (!r || route_nh(r, DP_INET_CLIENT, DP_FABRIC_INET) < 0)
			ret = -ENOMEM;
	}
	rule_add(ru, 210, "internet", 0, DP_TABLE_PUBLIC);
	for (size_t i = 0; i < dp->ninsts; i++) {
		struct dp_inst *in = dp->insts[i];
		const struct dp_want_inst *w = dp_model_inst(m, in->key);
		struct dp_route *r;

		if (in->nsfd < 0 || !w)
			continue;
		nets[in->net] = true;
		r = route_add(rs, DP_TABLE_NET(in->net), in->ip, 32, RTN_UNICAST, RT_SCOPE_LINK);
		if (!r || route_nh(r, 0, in->ifindex) < 0)
			ret = -ENOMEM;
		for (size_t a = 0; a < w->naliases; a++) {
			r = route_add(rs, DP_TABLE_NET(in->net), w->aliases[a].lo,
				      w->aliases[a].plen, RTN_UNICAST, RT_SCOPE_UNIVERSE);
			if (!r || route_nh(r, in->ip, in->ifindex) < 0)
				ret = -ENOMEM;
		}
		rule_add(ru, 100, in->ifname, 0, DP_TABLE_HAIRPIN(in->id));
		rule_add(ru, 110, NULL, DP_MARK_PROBE(in->id), DP_TABLE_PROBE(in->id));
		rule_add(ru, 200, in->ifname, 0, DP_TABLE_NET(in->net));
	}
	/*
	 * Passthrough forwarding rules: the rule's address to its healthy backends (all of them
	 * when none is healthy: "If all backends are unhealthy, the load balancer distributes new
	 * connections among all backends", https://cloud.google.com/load-balancing/docs/internal#
	 * traffic_distribution), destination preserved; and every backend's own packets to it
	 * back to itself, healthy or not (the hairpin: "a backend VM ... sending to the IP of the
	 * forwarding rule ... is always answered by itself").
	 */
	for (size_t i = 0; i < m->nrules; i++) {
		const struct dp_rule *lb = &m->rules[i];
		size_t healthy = 0;
		struct dp_route *r;

		if (lb->kind == DP_RULE_PROXY)
			continue;
		rule_add(ru, 120, NULL, DP_MARK_RULE(lb->id), DP_TABLE_RULE(lb->id));
		for (size_t b = 0; b < lb->nbackends; b++)
			healthy += backend_healthy(dp, lb, &m->insts[lb->backends[b].inst]);
		r = route_add(rs, DP_TABLE_RULE(lb->id), lb->ip, 32, RTN_UNICAST,
			      RT_SCOPE_UNIVERSE);
		if (!r)
			return -ENOMEM;
		for (size_t b = 0; b < lb->nbackends; b++) {
			const struct dp_want_inst *w = &m->insts[lb->backends[b].inst];
			struct dp_inst *in = dp_inst_find(dp, w->key);

			if (!in || in->nsfd < 0 || (healthy && !backend_healthy(dp, lb, w)))
				continue;
			if (route_nh(r, in->ip, in->ifindex) < 0)
				ret = -ENOMEM;
		}
		if (!r->nnh)
			rs->n--;
		for (size_t b = 0; b < lb->nbackends; b++) {
			const struct dp_want_inst *w = &m->insts[lb->backends[b].inst];
			struct dp_inst *in = dp_inst_find(dp, w->key);

			if (!in || in->nsfd < 0)
				continue;
			/* Health probes to the rule's address on this backend. */
			r = route_add(rs, DP_TABLE_PROBE(in->id), lb->ip, 32, RTN_UNICAST,
				      RT_SCOPE_UNIVERSE);
			if (!r || route_nh(r, in->ip, in->ifindex) < 0)
				ret = -ENOMEM;
			if (lb->kind != DP_RULE_INTERNAL)
				continue;
			r = route_add(rs, DP_TABLE_HAIRPIN(in->id), lb->ip, 32, RTN_UNICAST,
				      RT_SCOPE_UNIVERSE);
			if (!r || route_nh(r, in->ip, in->ifindex) < 0)
				ret = -ENOMEM;
		}
	}
	/* The proxies' connections to backends: from the network's proxy source. */
	for (size_t i = 0; i < m->nrules; i++)
		if (m->rules[i].kind == DP_RULE_PROXY && m->rules[i].net)
			rule_src_add(ru, 140, DP_PROXY_SRC(m->rules[i].net),
				     DP_TABLE_NET(m->rules[i].net));
	for (unsigned n = 1; n <= dp->next_net_id; n++) {
		struct dp_route *r;

		if (!nets[n])
			continue;
		for (size_t p = 0; p < sizeof(private_ranges) / sizeof(private_ranges[0]); p++)
			route_add(rs, DP_TABLE_NET(n), private_ranges[p].lo, private_ranges[p].plen,
				  RTN_BLACKHOLE, RT_SCOPE_UNIVERSE);
		r = route_add(rs, DP_TABLE_NET(n), 0, 0, RTN_UNICAST, RT_SCOPE_UNIVERSE);
		if (!r || route_nh(r, DP_INET_CLIENT, DP_FABRIC_INET) < 0)
			ret = -ENOMEM;
		rule_add(ru, 130, NULL, DP_MARK_NET(n), DP_TABLE_NET(n));
	}
	free(nets);
	return ret;
}

/* Rules sharing an address share its hairpin route; one copy each (sorted input). */
static void dedupe(struct route_set *rs, struct rule_set *ru)
{
	size_t j = 0;

	for (size_t i = 0; i < rs->n; i++) {
		if (j && route_cmp(&rs->r[j - 1], &rs->r[i]) == 0) {
			free(rs->r[i].nh);
			continue;
		}
		rs->r[j++] = rs->r[i];
	}
	rs->n = j;
	j = 0;
	for (size_t i = 0; i < ru->n; i++)
		if (!j || rule_cmp(&ru->r[j - 1], &ru->r[i]) != 0)
			ru->r[j++] = ru->r[i];
	ru->n = j;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The VPC's own addresses (on its loopback): the probers', each network's proxy source,
 * and the proxy load balancers' addresses, where the proxies listen.
 */
static int lo_sync(struct emu_dataplane *dp, const struct dp_model *m)
{
	uint32_t *want = calloc(2 + 2 * m->nrules, sizeof(*want));
	size_t n = 0, i = 0, j = 0;

	if (!want)
		return -ENOMEM;
	want[n++] = DP_PROBE_SRC_A;
	want[n++] = DP_PROBE_SRC_B;
	for (size_t r = 0; r < m->nrules; r++) {
		if (m->rules[r].kind != DP_RULE_PROXY)
			continue;
		want[n++] = m->rules[r].ip;
		if (m->rules[r].net)
			want[n++] = DP_PROXY_SRC(m->rules[r].net);
	}
	qsort(want, n, sizeof(*want), u32_cmp);
	for (size_t k = 1, w = 1; k <= n; k++) /* unique */
		if (k == n || want[k] != want[w - 1]) {
			if (k < n)
				want[w++] = want[k];
			else
				n = w;
		}
	while (i < dp->nlo || j < n) {
		if (j == n || (i < dp->nlo && dp->lo[i] < want[j]))
			dp_nl_addr(dp->vnl, false, 1, dp->lo[i++], 32, RT_SCOPE_UNIVERSE);
		else if (i == dp->nlo || want[j] < dp->lo[i])
			dp_nl_addr(dp->vnl, true, 1, want[j++], 32, RT_SCOPE_UNIVERSE);
		else {
			i++;
			j++;
		}
	}
	free(dp->lo);
	dp->lo = want;
	dp->nlo = n;
	return 0;
}

int dp_routes_sync(struct emu_dataplane *dp, const struct dp_model *m)
{
	struct route_set rs = {0};
	struct rule_set ru = {0};
	size_t i = 0, j = 0;
	int ret = desired(dp, m, &rs, &ru);

	if (ret == 0)
		ret = lo_sync(dp, m);
	if (ret < 0)
		goto cleanup;
	for (size_t k = 0; k < rs.n; k++)
		if (rs.r[k].nnh > 1)
			qsort(rs.r[k].nh, rs.r[k].nnh, sizeof(struct dp_nh), nh_cmp);
	if (rs.n > 1)
		qsort(rs.r, rs.n, sizeof(*rs.r), route_cmp);
	if (ru.n > 1)
		qsort(ru.r, ru.n, sizeof(*ru.r), rule_cmp);
	dedupe(&rs, &ru);
	/* Routes: deletions, additions and replacements in one batch. */
	while (i < dp->nroutes || j < rs.n) {
		int c = i == dp->nroutes ? 1 : j == rs.n ? -1 : route_cmp(&dp->routes[i], &rs.r[j]);

		if (c < 0) {
			dp_nl_route(dp->vnl, false, &dp->routes[i++]);
		} else if (c > 0) {
			dp_nl_route(dp->vnl, true, &rs.r[j++]);
		} else {
			if (!route_same(&dp->routes[i], &rs.r[j]))
				dp_nl_route(dp->vnl, true, &rs.r[j]);
			i++;
			j++;
		}
	}
	/* Rules: added before the old ones go, so a lookup never falls through meanwhile. */
	for (i = 0, j = 0; i < dp->niprules || j < ru.n;) {
		int c = i == dp->niprules ? 1
			: j == ru.n       ? -1
					  : rule_cmp(&dp->iprules[i], &ru.r[j]);

		if (c < 0)
			i++;
		else if (c > 0)
			dp_nl_rule(dp->vnl, true, &ru.r[j++]);
		else {
			i++;
			j++;
		}
	}
	for (i = 0, j = 0; i < dp->niprules; i++) {
		while (j < ru.n && rule_cmp(&ru.r[j], &dp->iprules[i]) < 0)
			j++;
		if (j == ru.n || rule_cmp(&ru.r[j], &dp->iprules[i]) != 0)
			dp_nl_rule(dp->vnl, false, &dp->iprules[i]);
	}
	ret = dp_nl_flush(dp->vnl);
	/* What the kernel has now is what we asked for (a failed request was logged). */
	routes_free(dp->routes, dp->nroutes);
	dp->routes = rs.r;
	dp->nroutes = rs.n;
	rs.r = NULL;
	rs.n = 0;
	free(dp->iprules);
	dp->iprules = ru.r;
	dp->niprules = ru.n;
	ru.r = NULL;
cleanup:
	routes_free(rs.r, rs.n);
	free(ru.r);
	return ret;
}
