/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Services on the nodes, as kube-proxy (or Cilium's replacement for it) makes them: every
 * Talos node gets an nftables table `kube-proxy` (in its namespace) built from the emulated
 * cluster's Services and Endpoints
 * (https://kubernetes.io/docs/reference/networking/virtual-ips/):
 *
 *   - a ClusterIP:port goes to one of the Service's ready endpoints (random choice);
 *   - a node port on any of the node's addresses, and a LoadBalancer Service's ingress IPs
 *     (status.loadBalancer.ingress[].ip: what the forwarding rule delivers, destination
 *     preserved) likewise; with externalTrafficPolicy Cluster the node masquerades (the
 *     answer comes back through it), with Local only the node's own endpoints serve and the
 *     client's address is kept (no local endpoint: dropped);
 *   - a Service without endpoints has no rule: the packet goes where it was sent.
 *
 * The endpoints' addresses are pods' (an address of their Node's podCIDR, local on that
 * node): what listens there is the test's or the operator's business. Talos nodes forward
 * (ip_forward=1), as Kubernetes needs.
 */
#include <errno.h>
#include <nftables/libnftables.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/str.h"
#include "emu/dataplane/dataplane.h"

#define MASQ_MARK 0x4000u /* kube-proxy's masquerade mark */

struct kp_ep {
	uint32_t ip;
	uint16_t port;
	char node[64];
};

struct kp_port {
	char proto[8]; /* "tcp", "udp", "sctp" */
	uint16_t port, node_port;
	struct kp_ep *eps;
	size_t neps;
};

struct kp_svc {
	uint32_t cluster_ip;
	uint32_t lb[4];
	size_t nlb;
	bool local; /* externalTrafficPolicy Local */
	struct kp_port *ports;
	size_t nports;
};

struct kp_world {
	json_t *endpoints; /* "ns/name" -> Endpoints (borrowed) */
	struct kp_svc *svcs;
	size_t nsvcs;
	bool oom;
};

static const char *js(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void collect_endpoints(const json_t *ep, void *arg)
{
	struct kp_world *w = arg;
	const json_t *md = json_object_get(ep, "metadata");
	char *key = str_printf("%s/%s", js(md, "namespace") ?: "", js(md, "name") ?: "");

	if (!key) {
		w->oom = true;
		return;
	}
	json_object_set(w->endpoints, key, (json_t *)ep);
	free(key);
}

static void lower(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src && src[i] && i + 1 < len; i++)
		dst[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] + 32 : src[i]);
	dst[i] = '\0';
}

/* The ready endpoints of one Service port: subsets whose ports carry its name. */
static void port_endpoints(const json_t *endpoints, const json_t *sp, struct kp_port *p)
{
	const char *name = js(sp, "name") ?: "";
	json_t *subset, *ep_port, *addr;
	size_t i, j, k;

	json_array_foreach(json_object_get(endpoints, "subsets"), i, subset)
	{
		json_t *ports = json_object_get(subset, "ports");

		json_array_foreach(ports, j, ep_port)
		{
			char proto[8];

			lower(proto, sizeof(proto), js(ep_port, "protocol") ?: "TCP");
			if (strcmp(js(ep_port, "name") ?: "", name) != 0 || strcmp(proto, p->proto))
				continue;
			json_array_foreach(json_object_get(subset, "addresses"), k, addr)
			{
				struct kp_ep *n = realloc(p->eps, (p->neps + 1) * sizeof(*n));
				uint32_t ip;

				if (!n || dp_ip_parse(js(addr, "ip"), &ip) < 0) {
					if (n)
						p->eps = n;
					continue;
				}
				p->eps = n;
				p->eps[p->neps] =
				    (struct kp_ep){.ip = ip,
						   .port = (uint16_t)json_integer_value(
						       json_object_get(ep_port, "port"))};
				snprintf(p->eps[p->neps].node, sizeof(p->eps[p->neps].node), "%s",
					 js(addr, "nodeName") ?: "");
				p->neps++;
			}
		}
	}
}

static void collect_service(const json_t *svc, void *arg)
{
	struct kp_world *w = arg;
	const json_t *md = json_object_get(svc, "metadata"), *spec = json_object_get(svc, "spec");
	const char *type = js(spec, "type") ?: "ClusterIP";
	json_t *endpoints, *sp, *ing;
	struct kp_svc *s, *n;
	char *key;
	size_t i;

	if (!strcmp(type, "ExternalName"))
		return;
	n = realloc(w->svcs, (w->nsvcs + 1) * sizeof(*n));
	if (!n) {
		w->oom = true;
		return;
	}
	w->svcs = n;
	s = &w->svcs[w->nsvcs++];
	memset(s, 0, sizeof(*s));
	if (dp_ip_parse(js(spec, "clusterIP"), &s->cluster_ip) < 0)
		s->cluster_ip = 0; /* headless ("None") */
	s->local = !strcmp(js(spec, "externalTrafficPolicy") ?: "Cluster", "Local");
	json_array_foreach(
	    json_object_get(json_object_get(json_object_get(svc, "status"), "loadBalancer"),
			    "ingress"),
	    i, ing)
	{
		if (s->nlb < 4 && dp_ip_parse(js(ing, "ip"), &s->lb[s->nlb]) == 0 &&
		    strcmp(type, "LoadBalancer") == 0)
			s->nlb++;
	}
	key = str_printf("%s/%s", js(md, "namespace") ?: "", js(md, "name") ?: "");
	endpoints = key ? json_object_get(w->endpoints, key) : NULL;
	free(key);
	s->ports = calloc(json_array_size(json_object_get(spec, "ports")) + 1, sizeof(*s->ports));
	if (!s->ports) {
		w->oom = true;
		return;
	}
	json_array_foreach(json_object_get(spec, "ports"), i, sp)
	{
		struct kp_port *p = &s->ports[s->nports++];

		lower(p->proto, sizeof(p->proto), js(sp, "protocol") ?: "TCP");
		p->port = (uint16_t)json_integer_value(json_object_get(sp, "port"));
		if (strcmp(type, "ClusterIP") != 0)
			p->node_port =
			    (uint16_t)json_integer_value(json_object_get(sp, "nodePort"));
		port_endpoints(endpoints, sp, p);
	}
}

static void world_free(struct kp_world *w)
{
	for (size_t i = 0; i < w->nsvcs; i++) {
		for (size_t j = 0; j < w->svcs[i].nports; j++)
			free(w->svcs[i].ports[j].eps);
		free(w->svcs[i].ports);
	}
	free(w->svcs);
	json_decref(w->endpoints);
}

/* A port mapping needs the protocol matched in the same rule (nft). */
static void put_dnat(char **text, const char *proto, const struct kp_ep *const *eps, size_t n)
{
	char a[16], *t;

	if (n == 1) {
		t = str_printf("%s\t\tmeta l4proto %s dnat ip to %s:%u\n", *text, proto,
			       dp_ip_str(eps[0]->ip, a), eps[0]->port);
	} else {
		t = str_printf("%s\t\tmeta l4proto %s dnat ip to numgen random mod %zu map { ",
			       *text, proto, n);
		for (size_t i = 0; t && i < n; i++) {
			char *u = str_printf("%s%s%zu : %s . %u", t, i ? ", " : "", i,
					     dp_ip_str(eps[i]->ip, a), eps[i]->port);

			free(t);
			t = u;
		}
		if (t) {
			char *u = str_printf("%s }\n", t);

			free(t);
			t = u;
		}
	}
	free(*text);
	*text = t;
}

static char *append(char *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *append(char *text, const char *fmt, ...)
{
	char *more = NULL, *out;
	va_list ap;

	if (!text)
		return NULL;
	va_start(ap, fmt);
	if (vasprintf(&more, fmt, ap) < 0)
		more = NULL;
	va_end(ap);
	out = more ? str_printf("%s%s", text, more) : NULL;
	free(more);
	free(text);
	return out;
}

/* The table of node `node`: every Service, its local endpoints for Local policies. */
static char *node_text(const struct kp_world *w, const char *node)
{
	char *text = strdup("table ip kube-proxy {}\ndelete table ip kube-proxy\n"
			    "table ip kube-proxy {\n"
			    "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; "
			    "policy accept;\n\t\tjump services\n\t}\n"
			    "\tchain output {\n\t\ttype nat hook output priority -100; policy "
			    "accept;\n\t\tjump services\n\t}\n"
			    "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; "
			    "policy accept;\n\t\tmeta mark & 0x4000 == 0x4000 masquerade\n\t}\n");
	char *services = strdup("\tchain services {\n"), a[16];
	const struct kp_ep **all = NULL, **mine = NULL;

	for (size_t i = 0; text && services && i < w->nsvcs; i++) {
		const struct kp_svc *s = &w->svcs[i];

		for (size_t j = 0; text && services && j < s->nports; j++) {
			const struct kp_port *p = &s->ports[j];
			size_t nall = 0, nmine = 0;

			if (!p->neps)
				continue;
			free(all);
			free(mine);
			all = calloc(p->neps, sizeof(*all));
			mine = calloc(p->neps, sizeof(*mine));
			if (!all || !mine) {
				free(text);
				text = NULL;
				break;
			}
			for (size_t e = 0; e < p->neps; e++) {
				all[nall++] = &p->eps[e];
				if (!strcmp(p->eps[e].node, node))
					mine[nmine++] = &p->eps[e];
			}
			/* Inside the cluster: every endpoint. */
			text = append(text, "\tchain svc_%zu_%zu {\n", i, j);
			put_dnat(&text, p->proto, all, nall);
			text = append(text, "\t}\n\tchain ext_%zu_%zu {\n", i, j);
			if (!s->local) {
				text =
				    append(text, "\t\tmeta mark set meta mark | %#x\n", MASQ_MARK);
				put_dnat(&text, p->proto, all, nall);
			} else if (nmine) {
				put_dnat(&text, p->proto, mine, nmine);
			} else {
				text = append(text, "\t\tdrop\n");
			}
			text = append(text, "\t}\n");
			if (s->cluster_ip)
				services = append(
				    services, "\t\tip daddr %s %s dport %u jump svc_%zu_%zu\n",
				    dp_ip_str(s->cluster_ip, a), p->proto, p->port, i, j);
			for (size_t l = 0; l < s->nlb; l++)
				services = append(services,
						  "\t\tip daddr %s %s dport %u jump ext_%zu_%zu\n",
						  dp_ip_str(s->lb[l], a), p->proto, p->port, i, j);
			if (p->node_port)
				services = append(
				    services,
				    "\t\tfib daddr type local %s dport %u jump ext_%zu_%zu\n",
				    p->proto, p->node_port, i, j);
		}
	}
	free(all);
	free(mine);
	if (!text || !services) {
		free(text);
		free(services);
		return NULL;
	}
	text = append(text, "%s\t}\n}\n", services);
	free(services);
	return text;
}

static int apply(struct dp_inst *in, const char *text)
{
	struct nft_ctx *nft;
	int ret = dp_netns_enter(in->nsfd);

	if (ret < 0)
		return ret;
	nft = nft_ctx_new(NFT_CTX_DEFAULT); /* its socket is made here: in the node */
	if (nft) {
		nft_ctx_buffer_error(nft);
		if (nft_run_cmd_from_buffer(nft, text) != 0) {
			log_error("dataplane: %s: nftables refused kube-proxy's rules: %s", in->ns,
				  nft_ctx_get_error_buffer(nft));
			ret = -EINVAL;
		}
		nft_ctx_free(nft);
	} else {
		ret = -ENOMEM;
	}
	dp_netns_leave();
	return ret;
}

void dp_kubeproxy_sync(struct emu_dataplane *dp)
{
	struct kp_world w = {.endpoints = json_object()};

	if (!w.endpoints || dp->emu->kube_url[0] == '\0') {
		json_decref(w.endpoints);
		return;
	}
	emu_kube_each(dp->emu, "", "v1", "endpoints", collect_endpoints, &w);
	emu_kube_each(dp->emu, "", "v1", "services", collect_service, &w);
	for (size_t i = 0; !w.oom && i < dp->ninsts; i++) {
		struct dp_inst *in = dp->insts[i];
		char *text;

		if (in->nsfd < 0 || !in->talos)
			continue;
		text = node_text(&w, in->name);
		if (!text)
			break;
		if (in->kube_proxy && strcmp(in->kube_proxy, text) == 0) {
			free(text);
			continue;
		}
		if (apply(in, text) == 0) {
			free(in->kube_proxy);
			in->kube_proxy = text;
		} else {
			free(text);
		}
	}
	world_free(&w);
}
