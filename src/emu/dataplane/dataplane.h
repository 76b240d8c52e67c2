/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The data plane (--dataplane): GCP's VPC emulated in network namespaces, driven by the
 * emulator's Compute and Kubernetes state. Internal interfaces of src/emu/dataplane/:
 *
 *   dataplane.c  module entry points, the reconcile (desired state -> namespaces), control
 *   model.c      the desired state, read from the Compute collections and the Nodes
 *   netns.c      named network namespaces (iproute2's /run/netns convention), cleanup
 *   rtnl.c       rtnetlink requests in batches (libmnl): links, addresses, routes, rules
 *   fabric.c     the VPC router namespace and the instances' namespaces
 *   firewall.c   VPC firewall rules, anti-spoofing, Cloud NAT and LB marks (libnftables)
 *   health.c     health checks: real probes from 35.191.0.0/16 and 130.211.0.0/22
 *   apiserver.c  the control-plane nodes' API servers (the kube API on a socket in the node)
 *   proc.c       child processes in namespaces (HAProxy as KubePrism and as the TCP proxy)
 *
 * Everything runs on the loop thread. The thread enters a namespace only for the moment it
 * makes a socket or writes a sysctl there (a socket keeps the namespace it was made in) and
 * always returns to the emulator's own. Nothing is ever configured in that namespace: every
 * address the data plane uses lives inside the namespaces it creates.
 *
 * How GCP's rules map onto the kernel (docs/emulator.md has the contract):
 *   - an instance: namespace PREFIX-NAME, eth0 = one end of a veth, its primary IP as a /32,
 *     a default route to the subnet's gateway onlink; its Node's podCIDR local on "pods";
 *   - the VPC: namespace PREFIX-vpc, the other end of every veth, each holding the gateway
 *     address (the only ARP it answers); a routing table per network with routes only for
 *     mapped addresses (primary IPs, alias ranges to their owner) and permanent neighbour
 *     entries (nothing learned from ARP); a table per forwarding rule (its healthy backends,
 *     multipath), selected by a mark the rule's protocol and ports set; a hairpin table per
 *     instance (a backend's packets to its own rule's address come back to it);
 *   - the internet: namespace PREFIX-internet behind a veth of the VPC.
 */
#ifndef TALOS_GCP_EMU_DATAPLANE_H
#define TALOS_GCP_EMU_DATAPLANE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "emu/emu.h"

#define DP_PREFIX_MAX 12
#define DP_NS_MAX     96 /* PREFIX-NAME: a prefix and an instance name (<= 63) */

/* ---- fixed addresses of the emulated world (documented in docs/emulator.md) ---- */
#define DP_PROBE_SRC_A  0x23bf0001u                      /* 35.191.0.1: health checks and proxies */
#define DP_PROBE_SRC_B  0x82d30001u                      /* 130.211.0.1 */
#define DP_PROXY_SRC(n) (0x23bf000au | ((n)&0xffu) << 8) /* 35.191.N.10: proxies of network N */
#define DP_NAT_AUTO     0x23d00000u /* 35.208.0.0/16: Cloud NAT AUTO_ONLY addresses */
#define DP_INET_GW      0xcb007101u /* 203.0.113.1: the VPC's end towards the internet */
#define DP_INET_CLIENT  0xcb00710au /* 203.0.113.10: the client in PREFIX-internet */
#define DP_MTU          1460        /* GCE's default MTU */
#define DP_INST_ETH0    2           /* ifindex of eth0 in an instance namespace */
#define DP_INST_PODS    3           /* "pods" and its peer "pods-peer" */
#define DP_FABRIC_INET  10          /* ifindex of "internet" in the VPC namespace */
#define DP_FABRIC_VETH0 1000        /* instance veths: 1000 + instance id */
#define DP_ROUTE_PROTO  66          /* rtm_protocol of everything the data plane installs */

/* Routing tables and marks in the VPC namespace. */
#define DP_TABLE_NET(n)     (1000u + (n))       /* one per VPC network */
#define DP_TABLE_PUBLIC     3000u               /* packets from the internet */
#define DP_TABLE_HAIRPIN(i) (0x10000000u + (i)) /* per instance: its own rules' addresses */
#define DP_TABLE_RULE(r)    (0x20000000u + (r)) /* per forwarding rule: its backends */
#define DP_TABLE_PROBE(i)   (0x30000000u + (i)) /* per instance: the rules it backs (probes) */
#define DP_MARK_PROBE(i)    (0x01000000u | (i)) /* a probe to instance i through a rule IP */
#define DP_MARK_RULE(r)     (0x02000000u | (r)) /* traffic matching forwarding rule r */
#define DP_MARK_NET(n)      (0x03000000u | (n)) /* to an address of network n (DNAT, probes) */

/* ---- the desired state (model.c) ---- */
struct dp_range {
	uint32_t lo;
	uint8_t plen;
};

struct dp_want_inst {
	char *key; /* "zones/Z/NAME" */
	char *zone, *name;
	char *url; /* selfLink */
	unsigned net;
	uint32_t ip, gw;
	struct dp_range *aliases;
	size_t naliases;
	struct dp_range pods; /* the Node's spec.podCIDR; plen 0: none */
	bool talos, control_plane, can_ip_forward;
	uint32_t nat_ip; /* accessConfigs[0].natIP, 0: none */
	char *boot;      /* lastStartTimestamp: a new one is a new boot */
	json_t *tags;    /* tags.items (a reference) */
	json_t *sas;     /* serviceAccounts (a reference) */
};

/* A health check as probes need it. */
struct dp_hc {
	char *url;
	enum { DP_HC_TCP, DP_HC_SSL, DP_HC_HTTP, DP_HC_HTTPS, DP_HC_HTTP2 } type;
	unsigned port;   /* 0: not fixed (named or serving port) */
	char *port_name; /* USE_NAMED_PORT, or the serving port's name */
	bool serving;    /* USE_SERVING_PORT */
	char *path, *host, *request, *response;
	unsigned interval_ms, timeout_ms, healthy, unhealthy;
};

/* A backend of a forwarding rule: an instance (index into the model's) and where probes go. */
struct dp_backend {
	size_t inst;
	uint16_t port;  /* the probed port (fixed, named or serving) */
	uint16_t serve; /* proxies: where they connect (the backend service's named port) */
};

/* A forwarding rule the data plane carries. */
struct dp_rule {
	char *key; /* "regions/R/NAME" or "global/NAME" */
	char *url;
	enum { DP_RULE_INTERNAL, DP_RULE_EXTERNAL, DP_RULE_PROXY } kind;
	unsigned id; /* stable per run: its routing table and mark */
	uint32_t ip;
	unsigned net;
	char proto[8];        /* "tcp", "udp", ... ("": every protocol) */
	uint16_t ports[5][2]; /* [lo, hi]; nports 0: every port */
	size_t nports;
	char *service_url; /* the backend service (or target pool) health is kept for */
	ssize_t hc;        /* index into the model's hcs, -1: none */
	struct dp_backend *backends;
	size_t nbackends;
	/* proxies */
	bool proxy_v1;       /* targetTcpProxies proxyHeader PROXY_V1 */
	unsigned timeout_ms; /* the backend service's timeoutSec */
};

/* A Cloud NAT gateway (Router.nats[]): the ranges it translates, to its addresses. */
struct dp_nat {
	char *name; /* "regions/R/ROUTER/NAT" */
	unsigned net;
	uint32_t ips[8];
	size_t nips;
	struct dp_range *ranges;
	size_t nranges;
};

struct dp_fw_rule {
	json_t *res; /* the Firewall resource (a reference) */
	unsigned net;
	int priority;
	bool ingress, deny;
};

struct dp_model {
	struct dp_want_inst *insts; /* sorted by key */
	size_t ninsts;
	struct dp_rule *rules;
	size_t nrules;
	struct dp_hc *hcs;
	size_t nhcs;
	struct dp_fw_rule *fw; /* in evaluation order */
	size_t nfw;
	struct dp_nat *nats;
	size_t nnats;
};

/* ---- the module (dataplane.c) ---- */
struct dp_apiserver;
struct dp_proc;

/* A materialised instance. */
struct dp_inst {
	char *key; /* "zones/Z/NAME" */
	char *name, *zone, *url;
	char ns[DP_NS_MAX];
	int nsfd;
	unsigned id; /* its veth in the VPC: "v<id>", ifindex DP_FABRIC_VETH0 + id */
	char ifname[16];
	int ifindex;
	unsigned net;
	uint32_t ip, gw;
	struct dp_range pods; /* what the namespace has now */
	char *boot;
	bool talos, control_plane;
	struct dp_apiserver *api;
	bool api_down;  /* stopped through /_emu/dataplane/apiserver */
	bool rebooting; /* instances.reset: made anew on the next reconcile */
	struct dp_proc *kubeprism;
	char *kube_proxy; /* the node's kube-proxy ruleset as applied */
};

struct emu_dataplane {
	struct emu *emu;
	char prefix[DP_PREFIX_MAX + 1];
	char vpc_ns[DP_NS_MAX], inet_ns[DP_NS_MAX];
	int vpc_fd, inet_fd;
	struct dp_nl *vnl;      /* netlink in the VPC namespace */
	struct dp_inst **insts; /* sorted by key */
	size_t ninsts, cap;
	unsigned next_inst_id;
	json_t *net_ids, *rule_ids; /* name -> index, never reused in a run */
	json_t *warned;             /* keys of instances already warned about */
	unsigned next_net_id, next_rule_id;
	struct dp_route *routes; /* installed in the VPC namespace, sorted */
	size_t nroutes;
	struct dp_rule_spec *iprules; /* installed policy rules, sorted */
	size_t niprules;
	uint32_t *lo; /* the VPC's loopback addresses, sorted */
	size_t nlo;
	struct nft_ctx *nft;
	char *nft_text; /* the ruleset last applied */
	long timer;
	struct dp_model model; /* the desired state last reconciled */
	struct dp_health *health;
	struct dp_proc *proxy; /* the TCP proxy (HAProxy in PREFIX-vpc) */
	char rundir[128];      /* /run/talos-gcp-emu/PREFIX: child processes' files */
	uint64_t materialised; /* instances created since start */
	uint64_t reconciles;
	uint64_t last_reconcile_us, last_reconcile_end_us;
};

int dp_model_build(struct emu_dataplane *dp, struct dp_model *m);
void dp_model_free(struct dp_model *m);
const struct dp_want_inst *dp_model_inst(const struct dp_model *m, const char *key);
int dp_want_inst_cmp(const void *a, const void *b); /* by key */
/* A stable index for a network name (1..), assigned on first sight. */
unsigned dp_net_index(struct emu_dataplane *dp, const char *name);

/* ---- namespaces (netns.c) ---- */
int dp_netns_init(void);
/* Creates namespace name; runs setup(arg) inside it before returning to the emulator's. */
int dp_netns_create(const char *name, int (*setup)(void *arg), void *arg, int *nsfd);
int dp_netns_enter(int nsfd);
void dp_netns_leave(void);
/* SIGKILLs what runs inside, removes the name. */
int dp_netns_delete(const char *name, int nsfd);
/* Every namespace named PREFIX-*: what an earlier run left. Returns how many. */
int dp_netns_cleanup(const char *prefix);
/* Writes VALUE to /proc/sys/PATH in the current namespace. */
int dp_sysctl(const char *path, const char *value);
/* A socket made inside the namespace. */
int dp_netns_socket(int nsfd, int domain, int type, int protocol);

/* ---- rtnetlink batches (rtnl.c) ---- */
struct dp_nl;
/* A NETLINK_ROUTE socket in the current namespace. */
struct dp_nl *dp_nl_open(void);
void dp_nl_close(struct dp_nl *nl);
/* Sends what is queued and reads every answer: 0, or the first error (logged). */
int dp_nl_flush(struct dp_nl *nl);
size_t dp_nl_pending(const struct dp_nl *nl);

struct dp_nh {
	uint32_t gw; /* 0: directly connected */
	int ifindex;
};

struct dp_route {
	uint32_t table;
	uint32_t dst;
	uint8_t plen;
	uint8_t type;  /* RTN_UNICAST, RTN_LOCAL, RTN_BLACKHOLE, RTN_UNREACHABLE */
	uint8_t scope; /* RT_SCOPE_UNIVERSE, _LINK, _HOST */
	size_t nnh;
	struct dp_nh *nh; /* sorted; owned by whoever owns the route */
};

struct dp_rule_spec {
	uint32_t prio;
	char iif[16];  /* "" any */
	uint32_t mark; /* 0: none */
	uint32_t src;  /* 0: any, else this /32 */
	uint32_t table;
};

/* The first end is up at once; the peer needs dp_nl_link_up() where it lives. */
int dp_nl_veth(struct dp_nl *nl, const char *name, int ifindex, const uint8_t mac[6],
	       const char *peer, int peer_ifindex, const uint8_t peer_mac[6], int peer_nsfd);
int dp_nl_link_up(struct dp_nl *nl, int ifindex);
int dp_nl_link_del(struct dp_nl *nl, int ifindex);
int dp_nl_addr(struct dp_nl *nl, bool add, int ifindex, uint32_t ip, uint8_t plen, uint8_t scope);
int dp_nl_route(struct dp_nl *nl, bool add, const struct dp_route *r);
int dp_nl_rule(struct dp_nl *nl, bool add, const struct dp_rule_spec *r);
int dp_nl_neigh(struct dp_nl *nl, int ifindex, uint32_t ip, const uint8_t mac[6]);

/* ---- the VPC and the instances (fabric.c) ---- */
int dp_fabric_start(struct emu_dataplane *dp);
void dp_fabric_stop(struct emu_dataplane *dp);
/* Makes the namespaces of n instances (one batch). Each gets an id and namespace. */
int dp_insts_create(struct emu_dataplane *dp, struct dp_inst **insts, size_t n);
void dp_inst_destroy(struct emu_dataplane *dp, struct dp_inst *in);
/* Puts the Node's podCIDR on the instance's "pods" interface (plen 0: none). */
int dp_inst_set_pods(struct emu_dataplane *dp, struct dp_inst *in, struct dp_range pods);
/* Routes and policy rules of the VPC namespace to what the model wants. */
int dp_routes_sync(struct emu_dataplane *dp, const struct dp_model *m);
struct dp_inst *dp_inst_find(struct emu_dataplane *dp, const char *key);

/* ---- VPC firewall, NAT and forwarding-rule marks (firewall.c) ---- */
int dp_firewall_start(struct emu_dataplane *dp);
void dp_firewall_stop(struct emu_dataplane *dp);
int dp_firewall_sync(struct emu_dataplane *dp, const struct dp_model *m);
/* The VPC's nftables ruleset for the model and the materialised instances (malloc'd). */
char *dp_firewall_text(struct emu_dataplane *dp, const struct dp_model *m);

/* ---- health checks (health.c) ---- */
int dp_health_start(struct emu_dataplane *dp);
void dp_health_stop(struct emu_dataplane *dp);
/* Probes for every backend of every rule with a health check; the others stop. */
int dp_health_sync(struct emu_dataplane *dp, const struct dp_model *m);
/* 1 healthy, 0 unhealthy, -1 not probed. */
int dp_health_state(struct emu_dataplane *dp, const char *service_url, const char *instance_url);
json_t *dp_health_describe(struct emu_dataplane *dp);
/*
 * A probe's answer so far (buf NUL-terminated, len bytes; full: no room for more; eof: the
 * peer closed): 1 healthy, 0 unhealthy (*why says why), -1 read more (verdict.c).
 */
int dp_probe_verdict(bool http, const char *buf, size_t len, bool full, bool eof,
		     const char *response, const char **why);

/* ---- control-plane API servers (apiserver.c), processes (proc.c) ---- */
void dp_apiservers_sync(struct emu_dataplane *dp);
void dp_apiserver_stop(struct emu_dataplane *dp, struct dp_inst *in);
void dp_kubeprism_sync(struct emu_dataplane *dp);
/* Services on the Talos nodes, as kube-proxy makes them (kubeproxy.c). */
void dp_kubeproxy_sync(struct emu_dataplane *dp);
/* The TCP proxy load balancers: one HAProxy in PREFIX-vpc (none without them). */
void dp_proxies_sync(struct emu_dataplane *dp, const struct dp_model *m);
void dp_proc_stop(struct dp_proc *p);

/* ---- helpers ---- */
const char *dp_ip_str(uint32_t ip, char *buf); /* buf >= 16 */
int dp_ip_parse(const char *s, uint32_t *ip);
int dp_cidr_parse(const char *s, struct dp_range *r); /* also a bare address (/32) */
void dp_mac_of(uint32_t ip, uint8_t mac[6]);          /* 42:01:a.b.c.d, as GCE makes them */

#endif
