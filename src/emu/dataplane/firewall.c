/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VPC's packet filter, NAT and forwarding-rule classification: one nftables table
 * (`table ip vpc` in PREFIX-vpc), generated from the model as text and replaced in one
 * transaction through libnftables whenever it changes.
 *
 * VPC firewall rules (https://cloud.google.com/firewall/docs/firewalls):
 *   - they are stateful: "Firewall rules are stateful ... return traffic is allowed"
 *     (`ct state established,related accept` first);
 *   - "the implied allow egress rule ... and implied deny ingress rule" with the lowest
 *     priority: an instance's ingress chain ends in drop, its egress chain returns;
 *   - evaluation order: the lowest priority number first, a deny before an allow of the same
 *     priority ("a deny rule takes precedence over an allow rule of the same priority"); the
 *     first match decides;
 *   - a rule applies to an instance of its network whose network tags meet targetTags, or
 *     whose service account is one of targetServiceAccounts, or to all when neither is set;
 *   - ingress sources: sourceRanges, or the primary internal IPs of the instances that carry
 *     one of sourceTags / run as one of sourceServiceAccounts (either matches);
 *     destinationRanges narrow both directions; allowed/denied [{IPProtocol, ports}].
 * Anti-spoofing (https://cloud.google.com/vpc/docs/using-routes#canipforward): "By default,
 * Google Cloud performs strict source and destination checking": an instance may send only
 * from its own addresses (primary, alias ranges, and the addresses of the passthrough
 * forwarding rules it backs, whose traffic it answers) unless canIpForward is set.
 *
 * The probes and proxies (from 35.191.0.0/16 and 130.211.0.0/22) start inside PREFIX-vpc:
 * the output hook runs the same ingress chains on them.
 */
#include <errno.h>
#include <nftables/libnftables.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "emu/dataplane/dataplane.h"

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ---- a growing text buffer ---- */
struct text {
	char *s;
	size_t len, cap;
	bool oom;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->oom)
		return;
	for (;;) {
		size_t room = t->cap - t->len;

		va_start(ap, fmt);
		n = vsnprintf(t->s ? t->s + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		size_t ncap = t->cap ? t->cap * 2 : 8192;
		while (ncap < t->len + (size_t)n + 1)
			ncap *= 2;
		char *ns = realloc(t->s, ncap);
		if (!ns) {
			t->oom = true;
			return;
		}
		t->s = ns;
		t->cap = ncap;
	}
}

/* A firewall rule's name in a comment: RFC 1035 names, anything else left out. */
static void put_name(struct text *t, const char *name)
{
	for (size_t i = 0; name[i] && i < 63; i++)
		if ((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		    name[i] == '-')
			put(t, "%c", name[i]);
}

/* ---- address sets: merged intervals, as nft wants them (no overlaps) ---- */
struct ivl {
	uint32_t lo, hi;
};

struct ivls {
	struct ivl *v;
	size_t n, cap;
	bool any; /* 0.0.0.0/0 */
};

static void ivl_add(struct ivls *s, uint32_t lo, uint8_t plen)
{
	uint32_t hi = plen ? lo | (uint32_t)((1ull << (32 - plen)) - 1) : 0xffffffffu;

	if (plen == 0)
		s->any = true;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		struct ivl *n = realloc(s->v, ncap * sizeof(*n));

		if (!n)
			return;
		s->v = n;
		s->cap = ncap;
	}
	s->v[s->n++] = (struct ivl){lo, hi};
}

static int ivl_cmp(const void *a, const void *b)
{
	const struct ivl *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void ivl_merge(struct ivls *s)
{
	size_t j = 0;

	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof(*s->v), ivl_cmp);
	for (size_t i = 1; i < s->n; i++) {
		if (s->v[i].lo <= s->v[j].hi ||
		    (s->v[j].hi != 0xffffffffu && s->v[i].lo == s->v[j].hi + 1)) {
			if (s->v[i].hi > s->v[j].hi)
				s->v[j].hi = s->v[i].hi;
		} else {
			s->v[++j] = s->v[i];
		}
	}
	s->n = j + 1;
}

/* "{ a, b-c }" */
static void put_set(struct text *t, struct ivls *s)
{
	char a[16], b[16];

	ivl_merge(s);
	put(t, "{ ");
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].lo == s->v[i].hi)
			put(t, "%s%s", i ? ", " : "", dp_ip_str(s->v[i].lo, a));
		else
			put(t, "%s%s-%s", i ? ", " : "", dp_ip_str(s->v[i].lo, a),
			    dp_ip_str(s->v[i].hi, b));
	}
	put(t, " }");
}

static void ivls_free(struct ivls *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* ---- firewall rules ---- */

static bool json_has_string(const json_t *arr, const char *s)
{
	json_t *v;
	size_t i;

	json_array_foreach(arr, i, v) if (json_is_string(v) &&
					  strcmp(json_string_value(v), s) == 0) return true;
	return false;
}

static bool any_common(const json_t *a, const json_t *b)
{
	json_t *v;
	size_t i;

	json_array_foreach(a, i, v) if (json_is_string(v) &&
					json_has_string(b, json_string_value(v))) return true;
	return false;
}

static bool runs_as(const struct dp_want_inst *w, const json_t *accounts)
{
	json_t *sa;
	size_t i;

	json_array_foreach(w->sas, i,
			   sa) if (json_has_string(accounts, jstr(sa, "email") ?: "")) return true;
	return false;
}

static bool applies_to(const struct dp_fw_rule *f, const struct dp_want_inst *w)
{
	const json_t *tt = json_object_get(f->res, "targetTags");
	const json_t *ts = json_object_get(f->res, "targetServiceAccounts");

	if (f->net != w->net)
		return false;
	if (json_array_size(tt))
		return any_common(w->tags, tt);
	if (json_array_size(ts))
		return runs_as(w, ts);
	return true;
}

static void ranges_of(const json_t *arr, struct ivls *s)
{
	json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
	{
		struct dp_range r;

		if (dp_cidr_parse(json_string_value(v), &r) == 0)
			ivl_add(s, r.lo, r.plen);
	}
}

/* Ingress sources of a rule: ranges, and the primary IPs of tagged instances. */
static void sources_of(const struct dp_fw_rule *f, const struct dp_model *m, struct ivls *s)
{
	const json_t *st = json_object_get(f->res, "sourceTags");
	const json_t *ss = json_object_get(f->res, "sourceServiceAccounts");

	ranges_of(json_object_get(f->res, "sourceRanges"), s);
	for (size_t i = 0; i < m->ninsts && (json_array_size(st) || json_array_size(ss)); i++) {
		const struct dp_want_inst *w = &m->insts[i];

		if (w->net != f->net)
			continue;
		if ((json_array_size(st) && any_common(w->tags, st)) ||
		    (json_array_size(ss) && runs_as(w, ss)))
			ivl_add(s, w->ip, 32);
	}
}

static bool valid_ports(const char *p)
{
	unsigned lo, hi;
	char tail;

	if (sscanf(p, "%u-%u%c", &lo, &hi, &tail) == 2)
		return lo >= 1 && lo <= hi && hi <= 65535;
	return sscanf(p, "%u%c", &lo, &tail) == 1 && lo >= 1 && lo <= 65535;
}

/* One nft statement per allowed/denied entry of f, with verdict. */
static void put_fw_rule(struct text *t, const struct dp_fw_rule *f, const struct dp_model *m,
			const char *verdict)
{
	json_t *entries = json_object_get(f->res, f->deny ? "denied" : "allowed"), *e;
	struct ivls src = {0}, dst = {0};
	size_t i;

	if (f->ingress) {
		sources_of(f, m, &src);
		if (!src.n)
			goto cleanup; /* source tags that match no instance: the rule matches
					 nothing */
	}
	ranges_of(json_object_get(f->res, "destinationRanges"), &dst);
	json_array_foreach(entries, i, e)
	{
		const char *proto = jstr(e, "IPProtocol") ?: "all";
		json_t *ports = json_object_get(e, "ports"), *p;
		bool l4 = !strcmp(proto, "tcp") || !strcmp(proto, "udp") ||
			  !strcmp(proto, "sctp") || !strcmp(proto, "6") || !strcmp(proto, "17") ||
			  !strcmp(proto, "132");
		size_t k;

		put(t, "\t\t");
		if (src.n && !src.any) {
			put(t, "ip saddr ");
			put_set(t, &src);
			put(t, " ");
		}
		if (dst.n && !dst.any) {
			put(t, "ip daddr ");
			put_set(t, &dst);
			put(t, " ");
		}
		if (strcmp(proto, "all") != 0) {
			char *end;
			long num = strtol(proto, &end, 10);

			if (*end == '\0' && num >= 0 && num <= 255)
				put(t, "meta l4proto %ld ", num);
			else if (!strcmp(proto, "tcp") || !strcmp(proto, "udp") ||
				 !strcmp(proto, "icmp") || !strcmp(proto, "esp") ||
				 !strcmp(proto, "ah") || !strcmp(proto, "sctp") ||
				 !strcmp(proto, "ipip"))
				put(t, "meta l4proto %s ",
				    !strcmp(proto, "ipip") ? "ipencap" : proto);
			else {
				put(t, "meta l4proto 255 "); /* unknown to GCP: matches nothing */
			}
		}
		if (l4 && json_array_size(ports)) {
			bool first = true;

			put(t, "th dport { ");
			json_array_foreach(ports, k, p)
			{
				if (!json_is_string(p) || !valid_ports(json_string_value(p)))
					continue;
				put(t, "%s%s", first ? "" : ", ", json_string_value(p));
				first = false;
			}
			if (first)
				put(t, "0");
			put(t, " } ");
		}
		put(t, "%s comment \"", verdict);
		put_name(t, jstr(f->res, "name") ?: "");
		put(t, "\"\n");
	}
cleanup:
	ivls_free(&src);
	ivls_free(&dst);
}

static void put_inst_chains(struct text *t, const struct dp_inst *in, const struct dp_want_inst *w,
			    const struct dp_model *m)
{
	struct ivls own = {0};

	/* Egress: anti-spoofing, then the egress rules; the implied allow is the return. */
	put(t, "\tchain egress_%u {\n", in->id);
	if (!w->can_ip_forward) {
		ivl_add(&own, w->ip, 32);
		for (size_t a = 0; a < w->naliases; a++)
			ivl_add(&own, w->aliases[a].lo, w->aliases[a].plen);
		for (size_t r = 0; r < m->nrules; r++)
			for (size_t b = 0; b < m->rules[r].nbackends; b++)
				if (&m->insts[m->rules[r].backends[b].inst] == w)
					ivl_add(&own, m->rules[r].ip, 32);
		put(t, "\t\tip saddr != ");
		put_set(t, &own);
		put(t, " drop comment \"source not of this instance\"\n");
	}
	for (size_t i = 0; i < m->nfw; i++)
		if (!m->fw[i].ingress && applies_to(&m->fw[i], w))
			put_fw_rule(t, &m->fw[i], m, m->fw[i].deny ? "drop" : "return");
	put(t, "\t}\n");
	/* Ingress: the rules, then the implied deny. */
	put(t, "\tchain ingress_%u {\n", in->id);
	for (size_t i = 0; i < m->nfw; i++)
		if (m->fw[i].ingress && applies_to(&m->fw[i], w))
			put_fw_rule(t, &m->fw[i], m, m->fw[i].deny ? "drop" : "accept");
	put(t, "\t\tdrop comment \"implied deny ingress\"\n\t}\n");
	ivls_free(&own);
}

char *dp_firewall_text(struct emu_dataplane *dp, const struct dp_model *m)
{
	struct text t = {0};
	struct ivls natted = {0};
	char a[16], b[16];
	size_t any = 0;

	/* Replaced in one transaction: create (a no-op when there), delete, define. */
	put(&t, "table ip vpc {}\ndelete table ip vpc\ntable ip vpc {\n");
	/* Forwarding rules: their protocol and ports pick the rule's routing table. */
	put(&t, "\tchain classify {\n\t\ttype filter hook prerouting priority mangle; policy "
		"accept;\n");
	/* A NAT'ed connection's network (set on its first packet, below) for every packet. */
	put(&t, "\t\tct mark != 0 meta mark set ct mark\n");
	for (size_t r = 0; r < m->nrules; r++) {
		const struct dp_rule *ru = &m->rules[r];

		if (ru->kind == DP_RULE_PROXY)
			continue;
		/* An external rule's address is reached from the internet (a VM goes out, NAT'ed,
		 * and comes back, as on GCP). */
		if (ru->kind == DP_RULE_EXTERNAL)
			put(&t, "\t\tiifname \"internet\" ");
		else
			put(&t, "\t\t");
		put(&t, "ip daddr %s ", dp_ip_str(ru->ip, a));
		if (ru->proto[0])
			put(&t, "meta l4proto %s ", ru->proto);
		if (ru->proto[0] && ru->nports) {
			put(&t, "th dport { ");
			for (size_t p = 0; p < ru->nports; p++) {
				if (ru->ports[p][0] == ru->ports[p][1])
					put(&t, "%s%u", p ? ", " : "", ru->ports[p][0]);
				else
					put(&t, "%s%u-%u", p ? ", " : "", ru->ports[p][0],
					    ru->ports[p][1]);
			}
			put(&t, " } ");
		}
		put(&t, "meta mark set %#x\n", DP_MARK_RULE(ru->id));
	}
	put(&t, "\t}\n");
	/* External IPs of instances: one-to-one NAT (accessConfigs ONE_TO_ONE_NAT). */
	put(&t, "\tchain nat_in {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n");
	for (size_t i = 0; i < dp->ninsts; i++) {
		const struct dp_want_inst *w = dp_model_inst(m, dp->insts[i]->key);

		if (!w || !w->nat_ip || dp->insts[i]->nsfd < 0)
			continue;
		put(&t,
		    "\t\tiifname \"internet\" ip daddr %s meta mark set %#x ct mark set meta mark "
		    "dnat to %s\n",
		    dp_ip_str(w->nat_ip, a), DP_MARK_NET(w->net), dp_ip_str(w->ip, b));
	}
	put(&t, "\t}\n\tchain nat_out {\n\t\ttype nat hook postrouting priority srcnat; policy "
		"accept;\n");
	for (size_t i = 0; i < dp->ninsts; i++) {
		const struct dp_want_inst *w = dp_model_inst(m, dp->insts[i]->key);

		if (!w || !w->nat_ip || dp->insts[i]->nsfd < 0)
			continue;
		/* The answers come back from the internet: the mark routes them home. */
		put(&t, "\t\toifname \"internet\" ip saddr %s ct mark set %#x snat to %s\n",
		    dp_ip_str(w->ip, a), DP_MARK_NET(w->net), dp_ip_str(w->nat_ip, b));
		ivl_add(&natted, w->ip, 32);
	}
	/* Cloud NAT: what has no external address of its own (the rules above come first). */
	for (size_t i = 0; i < m->nnats; i++) {
		const struct dp_nat *n = &m->nats[i];
		struct ivls ranges = {0};

		if (!n->nips || !n->nranges)
			continue;
		for (size_t r = 0; r < n->nranges; r++) {
			ivl_add(&ranges, n->ranges[r].lo, n->ranges[r].plen);
			ivl_add(&natted, n->ranges[r].lo, n->ranges[r].plen);
		}
		put(&t, "\t\toifname \"internet\" ip saddr ");
		put_set(&t, &ranges);
		put(&t, " ct mark set %#x snat to ", DP_MARK_NET(n->net));
		if (n->nips == 1) {
			put(&t, "%s", dp_ip_str(n->ips[0], a));
		} else {
			put(&t, "jhash ip saddr mod %zu map { ", n->nips);
			for (size_t k = 0; k < n->nips; k++)
				put(&t, "%s%zu : %s", k ? ", " : "", k, dp_ip_str(n->ips[k], a));
			put(&t, " }");
		}
		put(&t, " comment \"");
		put_name(&t, strrchr(n->name, '/') ? strrchr(n->name, '/') + 1 : n->name);
		put(&t, "\"\n");
		ivls_free(&ranges);
	}
	put(&t, "\t}\n");
	/* Forwarding between instances and to the world. */
	put(&t, "\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n"
		"\t\tct state established,related accept\n\t\tct state invalid drop\n");
	put(&t, "\t\tiifname vmap { ");
	for (size_t i = 0; i < dp->ninsts; i++)
		if (dp->insts[i]->nsfd >= 0 && dp_model_inst(m, dp->insts[i]->key))
			put(&t, "%s\"%s\" : jump egress_%u", any++ ? ", " : "",
			    dp->insts[i]->ifname, dp->insts[i]->id);
	if (!any)
		put(&t, "\"-\" : drop");
	put(&t, " }\n\t\toifname vmap { \"internet\" : jump to_internet");
	for (size_t i = 0; i < dp->ninsts; i++)
		if (dp->insts[i]->nsfd >= 0 && dp_model_inst(m, dp->insts[i]->key))
			put(&t, ", \"%s\" : jump ingress_%u", dp->insts[i]->ifname,
			    dp->insts[i]->id);
	put(&t, " }\n\t}\n");
	/* Probes and proxies start here: the instances' ingress rules apply to them too. */
	put(&t,
	    "\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n"
	    "\t\tct state established,related accept\n\t\toifname vmap { \"internet\" : accept");
	for (size_t i = 0; i < dp->ninsts; i++)
		if (dp->insts[i]->nsfd >= 0 && dp_model_inst(m, dp->insts[i]->key))
			put(&t, ", \"%s\" : jump ingress_%u", dp->insts[i]->ifname,
			    dp->insts[i]->id);
	put(&t, " }\n\t}\n");
	/* The world: only what is NAT'ed leaves (an instance without an external address and
	 * without Cloud NAT has no way out). */
	put(&t, "\tchain to_internet {\n");
	if (natted.n) {
		put(&t, "\t\tip saddr ");
		put_set(&t, &natted);
		put(&t, " accept\n");
	}
	put(&t, "\t\tdrop comment \"no external address, no Cloud NAT\"\n\t}\n");
	/*
	 * The VPC's own addresses (the TCP proxies'): from the internet; from an instance only
	 * when it has a way out (on GCP it reaches them through the internet).
	 */
	put(&t, "\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n"
		"\t\tct state established,related accept\n\t\tiifname { \"lo\", \"internet\" } "
		"accept\n");
	if (natted.n) {
		put(&t, "\t\tip saddr ");
		put_set(&t, &natted);
		put(&t, " accept\n");
	}
	put(&t, "\t}\n");
	for (size_t i = 0; i < dp->ninsts; i++) {
		const struct dp_want_inst *w = dp_model_inst(m, dp->insts[i]->key);

		if (w && dp->insts[i]->nsfd >= 0)
			put_inst_chains(&t, dp->insts[i], w, m);
	}
	put(&t, "}\n");
	ivls_free(&natted);
	if (t.oom) {
		free(t.s);
		return NULL;
	}
	return t.s;
}

int dp_firewall_start(struct emu_dataplane *dp)
{
	int ret = dp_netns_enter(dp->vpc_fd);

	if (ret < 0)
		return ret;
	/* libnftables opens its netlink socket here: in PREFIX-vpc. */
	dp->nft = nft_ctx_new(NFT_CTX_DEFAULT);
	dp_netns_leave();
	if (!dp->nft)
		return -ENOMEM;
	nft_ctx_buffer_error(dp->nft);
	nft_ctx_buffer_output(dp->nft);
	return 0;
}

void dp_firewall_stop(struct emu_dataplane *dp)
{
	if (dp->nft)
		nft_ctx_free(dp->nft);
	dp->nft = NULL;
}

int dp_firewall_sync(struct emu_dataplane *dp, const struct dp_model *m)
{
	char *text = dp_firewall_text(dp, m);
	int ret;

	if (!text)
		return -ENOMEM;
	if (dp->nft_text && strcmp(dp->nft_text, text) == 0) {
		free(text);
		return 0;
	}
	ret = dp_netns_enter(dp->vpc_fd);
	if (ret < 0) {
		free(text);
		return ret;
	}
	ret = nft_run_cmd_from_buffer(dp->nft, text);
	dp_netns_leave();
	if (ret != 0) {
		log_error("dataplane: nftables refused the VPC ruleset: %s",
			  nft_ctx_get_error_buffer(dp->nft));
		free(text);
		return -EINVAL;
	}
	free(dp->nft_text);
	dp->nft_text = text;
	return 0;
}
