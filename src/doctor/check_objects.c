/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Classifying one document and the checks that need nothing but that document. Documents the
 * checks of the whole set need (check_set.c) are kept.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <strings.h>

#include "doctor/internal.h"

#define NEST_MAX 4 /* Lists, static pods, embedded manifests inside one another */

/* ---- small helpers ---- */

static bool scalar_contains(const struct ynode *n, const char *needle)
{
	return yis_scalar(n) && memmem(n->str, n->n, needle, strlen(needle)) != NULL;
}

static const char *base_name(const char *s)
{
	const char *slash = strrchr(s, '/');

	return slash ? slash + 1 : s;
}

bool seq_has_scalar(const struct ynode *seq, const char *s)
{
	if (!yis_seq(seq))
		return false;
	for (uint32_t i = 0; i < seq->n; i++)
		if (yscalar_eq(seq->items[i], s))
			return true;
	return false;
}

const struct ynode *args_flag(const struct ynode *args, const char *name, const char **value_out,
			      size_t *len_out)
{
	const struct ynode *found = NULL;
	size_t nlen = strlen(name);

	if (!yis_seq(args))
		return NULL;
	for (uint32_t i = 0; i < args->n; i++) {
		const struct ynode *a = args->items[i];
		const char *s = ystr(a);

		if (!s)
			continue;
		/* Go's flag packages accept -name and --name. */
		if (s[0] == '-' && s[1] == '-')
			s += 2;
		else if (s[0] == '-')
			s += 1;
		else
			continue;
		if (strncmp(s, name, nlen))
			continue;
		if (s[nlen] == '=') {
			found = a;
			*value_out = s + nlen + 1;
			*len_out = strlen(s + nlen + 1);
		} else if (s[nlen] == '\0') {
			const struct ynode *next = i + 1 < args->n ? args->items[i + 1] : NULL;

			/* A value in the next argument, unless that is a flag (a boolean alone). */
			if (ystr(next) && next->str[0] != '-') {
				found = next;
				*value_out = next->str;
				*len_out = next->n;
			} else {
				found = a;
				*value_out = "true";
				*len_out = 4;
			}
		}
	}
	return found;
}

static const struct cidr *private_blocks(size_t *n)
{
	static struct cidr blocks[16];
	static size_t count;
	static const char *const text[] = {
	    "10.0.0.0/8",     "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
	    "169.254.0.0/16", "0.0.0.0/8",     "192.0.0.0/24",   "198.18.0.0/15", "240.0.0.0/4",
	    "fc00::/7",       "fe80::/10",     "::1/128",        "::/128",
	};

	if (!count) {
		for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++)
			if (cidr_parse(text[i], &blocks[count], CIDR_STRICT) == 0)
				count++;
	}
	*n = count;
	return blocks;
}

bool addr_is_public(const struct cidr *c)
{
	size_t n;
	const struct cidr *b = private_blocks(&n);

	for (size_t i = 0; i < n; i++)
		if (b[i].addr.family == c->addr.family && cidr_contains(&b[i], c))
			return false;
	return true;
}

static bool range_is_public(const char *a, size_t alen, const char *b, size_t blen)
{
	struct cidr x, y;
	size_t n;
	const struct cidr *blocks = private_blocks(&n);

	if (cidr_parse_n(a, alen, &x, CIDR_ALLOW_BARE_IP) < 0 ||
	    cidr_parse_n(b, blen, &y, CIDR_ALLOW_BARE_IP) < 0)
		return false; /* not an address range we can judge */
	for (size_t i = 0; i < n; i++)
		if (blocks[i].addr.family == x.addr.family && cidr_contains(&blocks[i], &x) &&
		    cidr_contains(&blocks[i], &y))
			return false;
	return true;
}

static void trim(const char **s, size_t *len)
{
	while (*len && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*len)--;
	}
	while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
		(*len)--;
}

/* A pool entry: "CIDR", "ADDR", or "ADDR-ADDR". */
static bool pool_entry_public(const char *s, size_t len)
{
	const char *dash = memchr(s, '-', len);
	struct cidr c;

	if (dash) {
		const char *a = s, *b = dash + 1;
		size_t alen = (size_t)(dash - s), blen = len - alen - 1;

		trim(&a, &alen);
		trim(&b, &blen);
		return range_is_public(a, alen, b, blen);
	}
	trim(&s, &len);
	if (cidr_parse_n(s, len, &c, CIDR_ALLOW_BARE_IP | CIDR_MASK_HOST_BITS) < 0)
		return false;
	return addr_is_public(&c);
}

static const char *obj_name(const struct ynode *obj)
{
	const char *n = ystr(yget(obj, "metadata", "name", NULL));

	return n ? n : "(unnamed)";
}

/* ---- embedded YAML ---- */

/* Moves the positions of an embedded document into the outer file. */
static void shift_positions(struct ynode *n, uint32_t line0, uint32_t col0, bool exact,
			    uint32_t at_line, uint32_t at_col, unsigned depth)
{
	if (!n || n->mark || depth > 512)
		return;
	n->mark = 1;
	if (exact && n->line) {
		n->line += line0;
		n->col += col0;
	} else {
		n->line = at_line;
		n->col = at_col;
	}
	if (n->kind == YNODE_SEQ) {
		for (uint32_t i = 0; i < n->n; i++)
			shift_positions(n->items[i], line0, col0, exact, at_line, at_col,
					depth + 1);
	} else if (n->kind == YNODE_MAP) {
		for (uint32_t i = 0; i < n->n; i++) {
			shift_positions(n->pairs[i].key, line0, col0, exact, at_line, at_col,
					depth + 1);
			shift_positions(n->pairs[i].value, line0, col0, exact, at_line, at_col,
					depth + 1);
		}
	}
}

/* Offset of the start of 1-based line in buf, or SIZE_MAX. */
static size_t line_offset(const char *buf, size_t len, uint32_t line)
{
	size_t off = 0;

	for (uint32_t l = 1; l < line; l++) {
		const char *nl = memchr(buf + off, '\n', len - off);

		if (!nl)
			return SIZE_MAX;
		off = (size_t)(nl - buf) + 1;
	}
	return off;
}

static int check_values(struct doctor *d, uint32_t source, const struct ynode *values);

int check_embedded(struct doctor *d, struct ystream *outer, uint32_t source,
		   const struct ynode *text, unsigned depth, bool as_cilium_values)
{
	struct error err = {0};
	struct ystream *e;
	size_t kept_before = d->n_kept;
	uint32_t line0 = 0, col0 = 0;
	bool exact = false;
	int ret, cret = 0;

	(void)outer;
	if (!yis_scalar(text) || !text->n)
		return 0;
	if (depth > NEST_MAX)
		return doctor_skip_document(d, source, text,
					    "embedded manifests nested too deeply");
	/*
	 * A literal block scalar ("contents: |") keeps its lines: content line k is outer line
	 * text->line + k, indented by the block's indentation. Other styles fold or escape their
	 * text, so everything found inside is reported at the scalar itself.
	 */
	if (d->cur_buf && text->line) {
		size_t off = line_offset(d->cur_buf, d->cur_len, text->line);

		if (off != SIZE_MAX && off + text->col - 1 < d->cur_len &&
		    d->cur_buf[off + text->col - 1] == '|') {
			size_t next = line_offset(d->cur_buf, d->cur_len, text->line + 1);
			uint32_t indent = 0;

			while (next != SIZE_MAX && next + indent < d->cur_len &&
			       d->cur_buf[next + indent] == ' ')
				indent++;
			line0 = text->line;
			col0 = indent;
			exact = next != SIZE_MAX;
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	ret = yaml_load(e, text->str, text->n, d->limits, &err);
	{
		/* Positions: the documents of e are only reachable from here. */
		const char *saved_buf = d->cur_buf;
		size_t saved_len = d->cur_len;

		d->cur_buf = NULL; /* the embedded text has no block scalars we could place */
		d->cur_len = 0;
		for (size_t i = 0; i < e->n_docs && cret >= 0; i++) {
			struct ynode *root = e->docs[i].root;

			if (!root)
				continue;
			shift_positions(root, line0, col0, exact, text->line, text->col, 0);
			if (as_cilium_values) {
				if (yis_map(root))
					cret = check_values(d, source, root);
			} else {
				cret = check_document(d, e, source, root, depth + 1);
			}
		}
		d->cur_buf = saved_buf;
		d->cur_len = saved_len;
	}
	if (doctor_settle_stream(d, e, kept_before) < 0 || cret == -ENOMEM)
		return -ENOMEM;
	if (ret == -ENOMEM)
		return -ENOMEM;
	if (ret < 0)
		return doctor_problem_at(d, source, text, true,
					 "invalid YAML in an embedded manifest: %s", err.msg);
	return 0;
}

/* ---- Cilium ---- */

static bool looks_like_cilium_values(const struct ynode *root)
{
	static const char *const keys[] = {
	    "ipam",
	    "routingMode",
	    "kubeProxyReplacement",
	    "k8sServiceHost",
	    "ipv4NativeRoutingCIDR",
	    "l2announcements",
	    "tunnelProtocol",
	    "autoDirectNodeRoutes",
	    "hubble",
	    "bgpControlPlane",
	    "enableIPv4Masquerade",
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (ymap_get(root, keys[i]))
			return true;
	return yis_map(yget(root, "cgroup", "autoMount", NULL));
}

static int check_values(struct doctor *d, uint32_t source, const struct ynode *values)
{
	const struct ynode *l2 = yget(values, "l2announcements", "enabled", NULL);
	bool on;

	if (!keep(d, K_CILIUM_VALUES, source, values))
		return -ENOMEM;
	if (ybool(l2, &on) == 0 && on)
		return report(
		    d, R_L2_CILIUM_VALUES, source, l2,
		    "Cilium L2 announcements are enabled: on GCP the VPC ignores ARP, so no "
		    "address they announce ever attracts traffic; set "
		    "l2announcements.enabled: false");
	return 0;
}

static int check_cilium_configmap(struct doctor *d, uint32_t source, const struct ynode *data)
{
	const struct ynode *l2 = ymap_get(data, "enable-l2-announcements");
	bool on;

	if (!keep(d, K_CILIUM_CONFIGMAP, source, data))
		return -ENOMEM;
	if (ybool(l2, &on) == 0 && on)
		return report(
		    d, R_L2_CILIUM_VALUES, source, l2,
		    "cilium-config enables L2 announcements: on GCP the VPC ignores ARP, so "
		    "no address they announce ever attracts traffic; set "
		    "l2announcements.enabled: false in the Helm values");
	return 0;
}

/* ---- load balancer pools and L2 ---- */

static int check_pool_entries(struct doctor *d, uint32_t source, const char *what, const char *name,
			      const struct ynode *seq, const char *field)
{
	int ret = 0;

	if (!yis_seq(seq))
		return 0;
	for (uint32_t i = 0; i < seq->n && ret >= 0; i++) {
		const struct ynode *e = seq->items[i];
		const struct ynode *at = NULL;
		bool pub = false;
		char text[160];

		if (yis_scalar(e)) {
			pub = pool_entry_public(e->str, e->n);
			at = e;
			snprintf(text, sizeof(text), "%.*s", (int)(e->n > 100 ? 100 : e->n),
				 e->str);
		} else if (yis_map(e) && ystr(ymap_get(e, field))) {
			at = ymap_get(e, field);
			pub = pool_entry_public(at->str, at->n);
			snprintf(text, sizeof(text), "%.100s", at->str);
		} else if (yis_map(e) && ystr(ymap_get(e, "start"))) {
			const struct ynode *a = ymap_get(e, "start"), *b = ymap_get(e, "stop");

			if (!ystr(b))
				b = a;
			at = a;
			pub = range_is_public(a->str, a->n, b->str, b->n);
			snprintf(text, sizeof(text), "%.60s-%.60s", a->str, b->str);
		}
		if (pub)
			ret =
			    report(d, R_LB_PUBLIC_POOL, source, at,
				   "%s %s hands out the public address range %s: GCP routes public "
				   "addresses only through forwarding rules, so Services get "
				   "addresses that never receive traffic; remove the pool and let "
				   "the GCP CCM allocate LoadBalancer addresses",
				   what, name, text);
	}
	return ret;
}

static int check_metallb_legacy(struct doctor *d, uint32_t source, const struct ynode *cfg)
{
	const struct ynode *pools = ymap_get(cfg, "address-pools");
	int ret = 0;

	if (!yis_seq(pools))
		return 0;
	for (uint32_t i = 0; i < pools->n && ret >= 0; i++) {
		const struct ynode *p = pools->items[i];
		const struct ynode *proto = ymap_get(p, "protocol");
		const char *name = ystr(ymap_get(p, "name"));

		if (yscalar_ieq(proto, "layer2"))
			ret = report(
			    d, R_L2_METALLB, source, proto,
			    "MetalLB address pool %s uses protocol layer2: the GCP VPC ignores "
			    "its ARP announcements, so its addresses never receive traffic; "
			    "use type LoadBalancer through the GCP CCM instead",
			    name ? name : "(unnamed)");
		if (ret >= 0)
			ret = check_pool_entries(d, source, "MetalLB address pool",
						 name ? name : "(unnamed)",
						 ymap_get(p, "addresses"), "cidr");
	}
	return ret;
}

/* ---- workloads ---- */

/* "ip addr add ADDR dev IF" and "ifconfig IF ADDR" in container commands. */
static int scan_shell(struct doctor *d, uint32_t source, const struct ynode *container)
{
	const struct ynode *lists[2] = {ymap_get(container, "command"),
					ymap_get(container, "args")};
	char *joined = NULL, *save = NULL;
	size_t len = 0;
	int ret = 0;

	for (int l = 0; l < 2; l++) {
		if (!yis_seq(lists[l]))
			continue;
		for (uint32_t i = 0; i < lists[l]->n; i++) {
			const struct ynode *a = lists[l]->items[i];
			char *nj;

			if (!ystr(a) || a->n > 65536)
				continue;
			nj = realloc(joined, len + a->n + 2);
			if (!nj) {
				free(joined);
				return -ENOMEM;
			}
			joined = nj;
			memcpy(joined + len, a->str, a->n);
			len += a->n;
			joined[len++] = '\n';
			joined[len] = '\0';
		}
	}
	if (!joined)
		return 0;
	for (char *stmt = strtok_r(joined, ";&|\n()`", &save); stmt && ret >= 0;
	     stmt = strtok_r(NULL, ";&|\n()`", &save)) {
		char *tok[32], *tsave = NULL;
		size_t nt = 0;
		const char *addr = NULL, *dev = NULL;

		for (char *t = strtok_r(stmt, " \t\"'", &tsave); t && nt < 32;
		     t = strtok_r(NULL, " \t\"'", &tsave))
			tok[nt++] = t;
		for (size_t i = 0; i < nt; i++) {
			if (!strcmp(base_name(tok[i]), "ip")) {
				size_t j = i + 1;

				while (j < nt && tok[j][0] == '-')
					j++;
				if (j + 1 >= nt || strncmp(tok[j], "a", 1) || strlen(tok[j]) > 7 ||
				    strncmp("address", tok[j], strlen(tok[j])))
					continue;
				if (strcmp(tok[j + 1], "add") && strcmp(tok[j + 1], "replace"))
					continue;
				for (size_t k = j + 2; k < nt; k++) {
					struct cidr c;

					if (!strcmp(tok[k], "dev") && k + 1 < nt)
						dev = tok[++k];
					else if (!addr && cidr_parse(tok[k], &c,
								     CIDR_ALLOW_BARE_IP |
									 CIDR_MASK_HOST_BITS) == 0)
						addr = tok[k];
				}
				break;
			}
			if (!strcmp(base_name(tok[i]), "ifconfig") && i + 2 < nt) {
				dev = tok[i + 1];
				addr = tok[i + 2];
				break;
			}
		}
		if (addr && dev) {
			struct kept *k;
			struct ip_addr ip;
			char ipbuf[64];
			const char *slash = strchr(addr, '/');
			size_t alen = slash ? (size_t)(slash - addr) : strlen(addr);
			const struct ynode *at = NULL;

			if (alen >= sizeof(ipbuf))
				continue;
			memcpy(ipbuf, addr, alen);
			ipbuf[alen] = '\0';
			if (ip_parse(ipbuf, &ip) < 0)
				continue;
			/* Point at the argument that holds the address. */
			for (int l = 0; l < 2 && !at; l++)
				for (uint32_t i = 0; yis_seq(lists[l]) && i < lists[l]->n && !at;
				     i++)
					if (scalar_contains(lists[l]->items[i], ipbuf))
						at = lists[l]->items[i];
			k = keep(d, K_IFACE_ADDR, source, at);
			if (!k) {
				ret = -ENOMEM;
				break;
			}
			k->addr.addr = ip;
			k->addr.prefix = ip.family == AF_INET ? 32 : 128;
			snprintf(k->iface, sizeof(k->iface), "%.*s", (int)strcspn(dev, ":"), dev);
		}
	}
	free(joined);
	return ret;
}

static bool is_cap(const struct ynode *n, const char *cap)
{
	const char *s = ystr(n);

	if (!s)
		return false;
	if (!strncasecmp(s, "CAP_", 4))
		s += 4;
	return !strcasecmp(s, cap);
}

static bool tolerates(const struct ynode *podspec, const char *key)
{
	const struct ynode *tols = ymap_get(podspec, "tolerations");

	if (!yis_seq(tols))
		return false;
	for (uint32_t i = 0; i < tols->n; i++) {
		const struct ynode *t = tols->items[i];
		const struct ynode *k = ymap_get(t, "key");

		/* An empty key with operator Exists tolerates every taint. */
		if ((yis_null(k) || yscalar_eq(k, "")) &&
		    yscalar_eq(ymap_get(t, "operator"), "Exists"))
			return true;
		if (yscalar_eq(k, key))
			return true;
	}
	return false;
}

static bool selects_control_plane(const struct ynode *podspec)
{
	const struct ynode *sel = ymap_get(podspec, "nodeSelector");
	const struct ynode *terms =
	    yget(podspec, "affinity", "nodeAffinity",
		 "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms", NULL);

	if (ymap_get(sel, "node-role.kubernetes.io/control-plane") ||
	    ymap_get(sel, "node-role.kubernetes.io/master"))
		return true;
	if (!yis_seq(terms) || !terms->n)
		return false;
	/* Terms are ORed: every one of them must require the control-plane role. */
	for (uint32_t i = 0; i < terms->n; i++) {
		const struct ynode *exprs = ymap_get(terms->items[i], "matchExpressions");
		bool found = false;

		for (uint32_t j = 0; yis_seq(exprs) && j < exprs->n; j++) {
			const struct ynode *k = ymap_get(exprs->items[j], "key");
			const struct ynode *op = ymap_get(exprs->items[j], "operator");

			if ((yscalar_eq(k, "node-role.kubernetes.io/control-plane") ||
			     yscalar_eq(k, "node-role.kubernetes.io/master")) &&
			    (yscalar_eq(op, "Exists") || yscalar_eq(op, "In")))
				found = true;
		}
		if (!found)
			return false;
	}
	return true;
}

const struct ynode *env_value(const struct ynode *container, const char *name)
{
	const struct ynode *env = ymap_get(container, "env");
	const struct ynode *found = NULL;

	for (uint32_t i = 0; yis_seq(env) && i < env->n; i++)
		if (yscalar_eq(ymap_get(env->items[i], "name"), name))
			found = ymap_get(env->items[i], "value");
	return found;
}

const struct ynode *container_flag(const struct ynode *c, const char *name, const char **v,
				   size_t *len)
{
	const struct ynode *a = args_flag(ymap_get(c, "args"), name, v, len);

	return a ? a : args_flag(ymap_get(c, "command"), name, v, len);
}

static bool iface_is_primary(const char *name)
{
	return strcmp(name, "lo") && strncmp(name, "dummy", 5);
}

static int check_vip_alias(struct doctor *d, uint32_t source, const struct ynode *obj,
			   const struct ynode *kind, const struct ynode *podspec,
			   const struct ynode *c)
{
	const struct ynode *sc = ymap_get(c, "securityContext");
	const struct ynode *priv = ymap_get(sc, "privileged");
	const struct ynode *esc = ymap_get(sc, "allowPrivilegeEscalation");
	const struct ynode *add = yget(sc, "capabilities", "add", NULL);
	const struct ynode *iface_node, *mode_node;
	const char *iface = NULL, *mode = NULL;
	size_t ilen = 0, mlen = 0;
	struct kept *k;
	bool b;
	int ret = 0;

	k = keep(d, K_VIP_ALIAS, source, c);
	if (!k)
		return -ENOMEM;
	k->pod = podspec;
	k->obj = obj;
	if (ybool(priv, &b) == 0 && b)
		ret = report(d, R_VIP_ALIAS_PRIVILEGED, source, priv,
			     "vip-alias runs privileged: it needs CAP_NET_ADMIN only, and a "
			     "privileged container owns the node if compromised; set privileged: "
			     "false and capabilities {add: [NET_ADMIN], drop: [ALL]}");
	if (ret >= 0 && ybool(esc, &b) == 0 && b)
		ret = report(d, R_VIP_ALIAS_PRIVILEGED, source, esc,
			     "vip-alias allows privilege escalation; set allowPrivilegeEscalation: "
			     "false");
	for (uint32_t i = 0; ret >= 0 && yis_seq(add) && i < add->n; i++)
		if (!is_cap(add->items[i], "NET_ADMIN"))
			ret = report(d, R_VIP_ALIAS_PRIVILEGED, source, add->items[i],
				     "vip-alias is given capability %.40s: it needs CAP_NET_ADMIN "
				     "only; remove it",
				     ystr(add->items[i]) ? ystr(add->items[i]) : "?");
	if (ret < 0)
		return ret;

	/* Where it puts the VIP: --interface (or $VIP_ALIAS_INTERFACE), --mode. */
	iface_node = container_flag(c, "interface", &iface, &ilen);
	if (!iface_node && (iface_node = env_value(c, "VIP_ALIAS_INTERFACE")) && ystr(iface_node)) {
		iface = iface_node->str;
		ilen = iface_node->n;
	}
	mode_node = container_flag(c, "mode", &mode, &mlen);
	if (!mode_node && (mode_node = env_value(c, "VIP_ALIAS_MODE")) && ystr(mode_node)) {
		mode = mode_node->str;
		mlen = mode_node->n;
	}
	if (iface && ilen == 2 && !memcmp(iface, "lo", 2))
		ret = report(d, R_VIP_ON_LO, source, iface_node,
			     "vip-alias puts the VIP on lo: the kubelet or the CCM may take it as "
			     "the node's address, and GCP validation of the node fails; use "
			     "--interface dummy0");
	else if (iface && ilen < 32 && !(mode && mlen == 11 && !memcmp(mode, "local-route", 11))) {
		char name[32];

		memcpy(name, iface, ilen);
		name[ilen] = '\0';
		if (iface_is_primary(name))
			ret = report(d, R_VIP_ON_PRIMARY, source, iface_node,
				     "vip-alias puts the VIP as an address on %s, the primary "
				     "interface: it is taken for a node address; use --interface "
				     "dummy0, or --mode local-route for a local route instead",
				     name);
	}
	if (ret < 0)
		return ret;

	/* Placement: every control-plane node, and only those. */
	if (yscalar_eq(kind, "DaemonSet")) {
		if (!tolerates(podspec, "node-role.kubernetes.io/control-plane"))
			ret = report(
			    d, R_VIP_ALIAS_PLACEMENT, source, podspec,
			    "vip-alias DaemonSet %s does not tolerate the control-plane "
			    "taint, so it runs on no control-plane node: their traffic to the "
			    "VIP hairpins and times out; add a toleration for "
			    "node-role.kubernetes.io/control-plane:NoSchedule",
			    obj_name(obj));
		if (ret >= 0 && !selects_control_plane(podspec))
			ret = report(
			    d, R_VIP_ALIAS_PLACEMENT, source, podspec,
			    "vip-alias DaemonSet %s is not limited to control-plane nodes: "
			    "on a worker the local VIP captures the worker's own API traffic "
			    "and nothing answers; add nodeSelector "
			    "node-role.kubernetes.io/control-plane: \"\"",
			    obj_name(obj));
	} else if (yscalar_eq(kind, "Deployment") || yscalar_eq(kind, "StatefulSet") ||
		   yscalar_eq(kind, "ReplicaSet")) {
		ret = report(d, R_VIP_ALIAS_PLACEMENT, source, kind,
			     "vip-alias runs as a %s: it must run on every control-plane node, "
			     "which only a DaemonSet guarantees",
			     kind->str);
	}
	return ret;
}

static int check_ccm_scheduling(struct doctor *d, uint32_t source, const struct ynode *obj,
				const struct ynode *kind, const struct ynode *podspec)
{
	const struct ynode *hn = ymap_get(podspec, "hostNetwork");
	bool host = false;
	int ret = 0;

	if (!yscalar_eq(kind, "Deployment") && !yscalar_eq(kind, "DaemonSet"))
		return 0; /* a static or bare Pod is not scheduled */
	if (ybool(hn, &host) < 0 || !host)
		ret = report(
		    d, R_CCM_SCHEDULING, source, hn ? hn : podspec,
		    "the cloud-controller-manager %s does not use hostNetwork: it would need "
		    "the pod network, which waits for the podCIDRs it assigns; set "
		    "hostNetwork: true",
		    obj_name(obj));
	if (ret >= 0 && !tolerates(podspec, "node.cloudprovider.kubernetes.io/uninitialized"))
		ret =
		    report(d, R_CCM_SCHEDULING, source, podspec,
			   "the cloud-controller-manager %s does not tolerate "
			   "node.cloudprovider.kubernetes.io/uninitialized: every node keeps that "
			   "taint until the CCM runs, so it never runs; add the toleration",
			   obj_name(obj));
	return ret;
}

static int check_podspec(struct doctor *d, uint32_t source, const struct ynode *obj,
			 const struct ynode *kind, const struct ynode *podspec)
{
	static const char *const lists[] = {"initContainers", "containers"};
	int ret = 0;

	if (!yis_map(podspec))
		return 0;
	/* A controller's manifest (not a bare or static Pod): the inputs are a cluster's. */
	if (!yscalar_eq(kind, "Pod"))
		d->workloads_seen = true;
	for (size_t l = 0; l < 2 && ret >= 0; l++) {
		const struct ynode *cs = ymap_get(podspec, lists[l]);

		for (uint32_t i = 0; yis_seq(cs) && i < cs->n && ret >= 0; i++) {
			const struct ynode *c = cs->items[i];
			const struct ynode *image = ymap_get(c, "image");
			const struct ynode *cmd = ymap_get(c, "command");
			const char *cmd0 = yis_seq(cmd) && cmd->n ? ystr(cmd->items[0]) : NULL;
			const struct ynode *arp = env_value(c, "vip_arp");
			const char *v;
			size_t vlen;
			bool on;

			if (!yis_map(c))
				continue;
			/* kube-vip: vip_arp=true (or the --arp flag of older releases). */
			if (ybool(arp, &on) == 0 && on)
				ret = report(
				    d, R_L2_KUBE_VIP_ARP, source, arp,
				    "kube-vip runs in ARP mode (vip_arp=true): the GCP VPC "
				    "ignores ARP, so its address is unreachable from other "
				    "instances; use the internal load balancer and vip-alias "
				    "for the control plane, the GCP CCM for Services");
			else if (scalar_contains(image, "kube-vip") &&
				 (arp = container_flag(c, "arp", &v, &vlen)) && vlen == 4 &&
				 !memcmp(v, "true", 4))
				ret = report(
				    d, R_L2_KUBE_VIP_ARP, source, arp,
				    "kube-vip runs in ARP mode (--arp): the GCP VPC ignores "
				    "ARP, so its address is unreachable from other instances; "
				    "use the internal load balancer and vip-alias instead");
			if (ret < 0)
				break;
			if ((ret = scan_shell(d, source, c)) < 0)
				break;
			if (scalar_contains(image, "vip-alias") ||
			    (cmd0 && !strcmp(base_name(cmd0), "vip-alias")) ||
			    yscalar_eq(ymap_get(c, "name"), "vip-alias")) {
				ret = check_vip_alias(d, source, obj, kind, podspec, c);
			} else if ((scalar_contains(image, "cloud-controller-manager") ||
				    (cmd0 && strstr(cmd0, "cloud-controller-manager"))) &&
				   (scalar_contains(image, "cloud-provider-gcp") ||
				    ((container_flag(c, "cloud-provider", &v, &vlen)) &&
				     vlen == 3 && !memcmp(v, "gce", 3)))) {
				struct kept *k = keep(d, K_CCM, source, c);

				if (!k)
					return -ENOMEM;
				k->pod = podspec;
				k->obj = obj;
				ret = check_ccm_scheduling(d, source, obj, kind, podspec);
			} else if (scalar_contains(image, "kube-controller-manager") ||
				   (cmd0 && !strcmp(base_name(cmd0), "kube-controller-manager"))) {
				if (!keep(d, K_KCM, source, c))
					return -ENOMEM;
			} else if (scalar_contains(image, "cilium/cilium") &&
				   yscalar_eq(ymap_get(c, "name"), "cilium-agent")) {
				if (!keep(d, K_CILIUM_AGENT, source, c))
					return -ENOMEM;
			}
		}
	}
	return ret;
}

/* ---- Kubernetes objects ---- */

static bool group_is(const struct ynode *apiv, const char *group)
{
	size_t n = strlen(group);

	return yis_scalar(apiv) && apiv->n > n && !memcmp(apiv->str, group, n) &&
	       apiv->str[n] == '/';
}

static int check_helm_release(struct doctor *d, struct ystream *s, uint32_t source,
			      const struct ynode *root, const struct ynode *kind,
			      const struct ynode *apiv, unsigned depth)
{
	const struct ynode *spec = ymap_get(root, "spec");

	if (yscalar_eq(kind, "HelmRelease") && group_is(apiv, "helm.toolkit.fluxcd.io")) {
		if (yscalar_eq(yget(spec, "chart", "spec", "chart", NULL), "cilium") &&
		    yis_map(ymap_get(spec, "values")))
			return check_values(d, source, ymap_get(spec, "values"));
	} else if (yscalar_eq(kind, "Application") && group_is(apiv, "argoproj.io")) {
		const struct ynode *srcs = ymap_get(spec, "sources");
		const struct ynode *one = ymap_get(spec, "source");
		int ret = 0;

		for (uint32_t i = 0; ret >= 0 && i < (yis_seq(srcs) ? srcs->n : 1); i++) {
			const struct ynode *src = yis_seq(srcs) ? srcs->items[i] : one;
			const struct ynode *helm = ymap_get(src, "helm");

			if (!yscalar_eq(ymap_get(src, "chart"), "cilium"))
				continue;
			if (yis_map(ymap_get(helm, "valuesObject")))
				ret = check_values(d, source, ymap_get(helm, "valuesObject"));
			else if (ystr(ymap_get(helm, "values")))
				ret = check_embedded(d, s, source, ymap_get(helm, "values"), depth,
						     true);
		}
		return ret;
	} else if (yscalar_eq(kind, "HelmChart") && group_is(apiv, "helm.cattle.io")) {
		if (yscalar_eq(ymap_get(spec, "chart"), "cilium") &&
		    ystr(ymap_get(spec, "valuesContent")))
			return check_embedded(d, s, source, ymap_get(spec, "valuesContent"), depth,
					      true);
	}
	return 0;
}

static const struct ynode *pod_spec_of(const struct ynode *root, const struct ynode *kind)
{
	if (yscalar_eq(kind, "Pod"))
		return ymap_get(root, "spec");
	if (yscalar_eq(kind, "CronJob"))
		return yget(root, "spec", "jobTemplate", "spec", "template", "spec", NULL);
	if (yscalar_eq(kind, "Deployment") || yscalar_eq(kind, "DaemonSet") ||
	    yscalar_eq(kind, "StatefulSet") || yscalar_eq(kind, "ReplicaSet") ||
	    yscalar_eq(kind, "Job") || yscalar_eq(kind, "ReplicationController"))
		return yget(root, "spec", "template", "spec", NULL);
	return NULL;
}

/*
 * Talos' link documents (v1.12+): DummyLinkConfig and LinkConfig, {name, addresses:
 * [{address: CIDR}]} (docs.siderolabs.com/talos/v1.12/reference/configuration/network/
 * dummylinkconfig, .../linkconfig). Their addresses are judged as machine.network.interfaces'
 * are: the VIP on a dummy link satisfies the control-plane's need, on lo or a NIC it is wrong.
 */
static int check_talos_link(struct doctor *d, uint32_t source, const struct ynode *root, bool dummy)
{
	const struct ynode *addrs = ymap_get(root, "addresses");
	const char *name = ystr(ymap_get(root, "name"));

	if (!name)
		return 0;
	for (uint32_t i = 0; yis_seq(addrs) && i < addrs->n; i++) {
		const struct ynode *at = ymap_get(addrs->items[i], "address");
		const char *a = ystr(at);
		struct cidr c;
		struct kept *k;

		if (!a || cidr_parse(a, &c, CIDR_ALLOW_BARE_IP) < 0)
			continue;
		k = keep(d, K_IFACE_ADDR, source, at);
		if (!k)
			return -ENOMEM;
		k->addr.addr = c.addr;
		k->addr.prefix = c.addr.family == AF_INET ? 32 : 128;
		snprintf(k->iface, sizeof(k->iface), "%s", name);
		k->dummy = dummy || !strncmp(name, "dummy", 5);
	}
	return 0;
}

static int check_object(struct doctor *d, struct ystream *s, uint32_t source,
			const struct ynode *root, const struct ynode *apiv,
			const struct ynode *kind, unsigned depth)
{
	const struct ynode *spec = ymap_get(root, "spec");
	const struct ynode *podspec;
	int ret;

	if (group_is(apiv, "cilium.io")) {
		if (yscalar_eq(kind, "CiliumL2AnnouncementPolicy"))
			return report(d, R_L2_CILIUM_POLICY, source, kind,
				      "CiliumL2AnnouncementPolicy %s announces addresses with ARP, "
				      "which the GCP VPC ignores: traffic to them never arrives; "
				      "delete it and expose Services through the GCP CCM "
				      "(type LoadBalancer) or a NodePort behind a managed load "
				      "balancer",
				      obj_name(root));
		if (yscalar_eq(kind, "CiliumLoadBalancerIPPool")) {
			ret = check_pool_entries(d, source, "CiliumLoadBalancerIPPool",
						 obj_name(root), ymap_get(spec, "blocks"), "cidr");
			if (ret >= 0)
				ret = check_pool_entries(d, source, "CiliumLoadBalancerIPPool",
							 obj_name(root), ymap_get(spec, "cidrs"),
							 "cidr");
			return ret;
		}
		return 0;
	}
	if (group_is(apiv, "metallb.io")) {
		if (yscalar_eq(kind, "L2Advertisement"))
			return report(d, R_L2_METALLB, source, kind,
				      "MetalLB L2Advertisement %s announces Service addresses with "
				      "ARP, which the GCP VPC ignores: they never receive traffic; "
				      "delete it and use type LoadBalancer through the GCP CCM",
				      obj_name(root));
		if (yscalar_eq(kind, "IPAddressPool"))
			return check_pool_entries(d, source, "MetalLB IPAddressPool",
						  obj_name(root), ymap_get(spec, "addresses"),
						  "cidr");
		return 0;
	}
	if (yscalar_eq(apiv, "v1") && yscalar_eq(kind, "ConfigMap")) {
		const struct ynode *data = ymap_get(root, "data");
		const char *name = obj_name(root);

		if (!strcmp(name, "cilium-config") && yis_map(data))
			return check_cilium_configmap(d, source, data);
		if (ystr(ymap_get(data, "config")) &&
		    (yscalar_eq(yget(root, "metadata", "namespace", NULL), "metallb-system") ||
		     scalar_contains(ymap_get(data, "config"), "address-pools"))) {
			/* MetalLB < 0.13 configured itself from this ConfigMap. */
			struct error err = {0};
			struct ystream e = {0};
			const struct ynode *cfg = ymap_get(data, "config");

			ret = yaml_load(&e, cfg->str, cfg->n, d->limits, &err);
			if (ret >= 0 && e.n_docs && e.docs[0].root) {
				shift_positions(e.docs[0].root, 0, 0, false, cfg->line, cfg->col,
						0);
				ret = check_metallb_legacy(d, source, e.docs[0].root);
			} else if (ret < 0 && ret != -ENOMEM) {
				ret = doctor_problem_at(d, source, cfg, true,
							"invalid YAML in MetalLB's config: %s",
							err.msg);
			}
			ystream_free(&e);
			return ret;
		}
		return 0;
	}
	if (yscalar_eq(apiv, "v1") && yscalar_eq(kind, "Service")) {
		const struct ynode *ip = ymap_get(spec, "loadBalancerIP");

		if (yscalar_eq(ymap_get(spec, "type"), "LoadBalancer") && ystr(ip) && ip->n &&
		    !keep(d, K_SERVICE_LB, source, ip))
			return -ENOMEM;
		return 0;
	}
	if (yscalar_eq(apiv, "v1") && yscalar_eq(kind, "Node")) {
		struct kept *k = keep(d, K_NODE, source, root);

		if (!k)
			return -ENOMEM;
		k->obj = root;
		return 0;
	}
	if (yscalar_eq(apiv, "v1alpha1") &&
	    (yscalar_eq(kind, "DummyLinkConfig") || yscalar_eq(kind, "LinkConfig")))
		return check_talos_link(d, source, root, yscalar_eq(kind, "DummyLinkConfig"));
	if ((podspec = pod_spec_of(root, kind))) {
		size_t before = d->n_kept;

		ret = check_podspec(d, source, root, kind, podspec);
		if (ret >= 0 && yscalar_eq(kind, "Pod")) {
			/* A Pod of vip-alias (read live, or listed in a file): where it runs. */
			for (size_t i = before; i < d->n_kept; i++) {
				if (d->kept[i].kind == K_VIP_ALIAS) {
					struct kept *k = keep(d, K_POD, source, root);

					if (!k)
						return -ENOMEM;
					k->obj = root;
					break;
				}
			}
		}
		return ret;
	}
	return check_helm_release(d, s, source, root, kind, apiv, depth);
}

/* ---- Talos ---- */

static int keep_iface_addrs(struct doctor *d, uint32_t source, const struct ynode *iface,
			    const char *name, bool dummy)
{
	const struct ynode *addrs = ymap_get(iface, "addresses");
	const struct ynode *vip = ymap_get(iface, "vip");
	int ret = 0;

	if (yis_map(vip)) {
		const char *ip = ystr(ymap_get(vip, "ip"));

		ret = report(d, R_L2_TALOS_VIP, source, ymap_key(iface, "vip"),
			     "Talos shared VIP %.64s on %s is announced with gratuitous ARP, which "
			     "the GCP VPC ignores: only the node holding it can use it; remove the "
			     "vip block and use the internal load balancer with vip-alias",
			     ip ? ip : "", name);
		if (ret < 0)
			return ret;
	}
	for (uint32_t i = 0; yis_seq(addrs) && i < addrs->n; i++) {
		const char *a = ystr(addrs->items[i]);
		char ipbuf[64];
		struct ip_addr ip;
		struct kept *k;
		size_t alen;

		if (!a)
			continue;
		alen = strcspn(a, "/");
		if (alen >= sizeof(ipbuf))
			continue;
		memcpy(ipbuf, a, alen);
		ipbuf[alen] = '\0';
		if (ip_parse(ipbuf, &ip) < 0)
			continue;
		k = keep(d, K_IFACE_ADDR, source, addrs->items[i]);
		if (!k)
			return -ENOMEM;
		k->addr.addr = ip;
		k->addr.prefix = ip.family == AF_INET ? 32 : 128;
		snprintf(k->iface, sizeof(k->iface), "%s", name);
		k->dummy = dummy;
	}
	return 0;
}

static int check_talos(struct doctor *d, struct ystream *s, uint32_t source,
		       const struct ynode *root, unsigned depth)
{
	const struct ynode *machine = ymap_get(root, "machine");
	const struct ynode *ifaces = yget(machine, "network", "interfaces", NULL);
	const struct ynode *pods = ymap_get(machine, "pods");
	const struct ynode *inl = yget(root, "cluster", "inlineManifests", NULL);
	int ret = 0;

	if (!keep(d, K_TALOS, source, root))
		return -ENOMEM;
	for (uint32_t i = 0; yis_seq(ifaces) && i < ifaces->n && ret >= 0; i++) {
		const struct ynode *iface = ifaces->items[i];
		const struct ynode *vlans = ymap_get(iface, "vlans");
		const char *name = ystr(ymap_get(iface, "interface"));
		bool dummy = false;
		char label[32];

		if (ybool(ymap_get(iface, "dummy"), &dummy) < 0)
			dummy = false;
		snprintf(label, sizeof(label), "%s",
			 name                                ? name
			 : ymap_get(iface, "deviceSelector") ? "deviceSelector"
							     : "?");
		if (!strncmp(label, "dummy", 5))
			dummy = true;
		ret = keep_iface_addrs(d, source, iface, label, dummy);
		for (uint32_t j = 0; yis_seq(vlans) && j < vlans->n && ret >= 0; j++)
			ret = keep_iface_addrs(d, source, vlans->items[j], label, false);
	}
	for (uint32_t i = 0; yis_seq(pods) && i < pods->n && ret >= 0; i++)
		ret = check_document(d, s, source, pods->items[i], depth + 1);
	for (uint32_t i = 0; yis_seq(inl) && i < inl->n && ret >= 0; i++)
		ret =
		    check_embedded(d, s, source, ymap_get(inl->items[i], "contents"), depth, false);
	return ret;
}

/* ---- Compute Engine resources ---- */

static int check_gce(struct doctor *d, uint32_t source, const struct ynode *root,
		     const struct ynode *kind)
{
	static const struct {
		const char *kind;
		enum kept_kind k;
	} map[] = {
	    {"compute#forwardingRule", K_GCE_FORWARDING_RULE},
	    {"compute#backendService", K_GCE_BACKEND_SERVICE},
	    {"compute#healthCheck", K_GCE_HEALTH_CHECK},
	    {"compute#httpHealthCheck", K_GCE_HEALTH_CHECK},
	    {"compute#httpsHealthCheck", K_GCE_HEALTH_CHECK},
	    {"compute#subnetwork", K_GCE_SUBNETWORK},
	    {"compute#network", K_GCE_NETWORK},
	    {"compute#instance", K_GCE_INSTANCE},
	    {"compute#address", K_GCE_ADDRESS},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (yscalar_eq(kind, map[i].kind)) {
			struct kept *k = keep(d, map[i].k, source, root);

			if (!k)
				return -ENOMEM;
			k->obj = root;
			if (map[i].k == K_GCE_ADDRESS)
				d->addresses_complete = true;
			return 0;
		}
	}
	/* A list as the API returns it: items (or, aggregated, items.<scope>.<kind>s). */
	if (scalar_contains(kind, "List")) {
		const struct ynode *items = ymap_get(root, "items");
		int ret = 0;

		if (yscalar_eq(kind, "compute#addressList") ||
		    yscalar_eq(kind, "compute#addressAggregatedList"))
			d->addresses_complete = true;
		if (yis_seq(items)) {
			for (uint32_t i = 0; i < items->n && ret >= 0; i++)
				ret = check_gce(d, source, items->items[i],
						ymap_get(items->items[i], "kind"));
		} else if (yis_map(items)) {
			for (uint32_t i = 0; i < items->n && ret >= 0; i++) {
				const struct ynode *scope = items->pairs[i].value;

				for (uint32_t j = 0; yis_map(scope) && j < scope->n && ret >= 0;
				     j++) {
					const struct ynode *list = scope->pairs[j].value;

					for (uint32_t k = 0;
					     yis_seq(list) && k < list->n && ret >= 0; k++)
						ret = check_gce(d, source, list->items[k],
								ymap_get(list->items[k], "kind"));
				}
			}
		}
		return ret;
	}
	return doctor_skip_document(d, source, kind, "a Compute Engine resource no rule reads");
}

/* ---- entry point ---- */

int check_document(struct doctor *d, struct ystream *s, uint32_t source, const struct ynode *root,
		   unsigned depth)
{
	const struct ynode *kind, *apiv;

	if (depth > NEST_MAX)
		return doctor_skip_document(d, source, root, "nested too deeply");
	if (!yis_map(root)) {
		if (yis_seq(root) && root->n && ymap_get(root->items[0], "op") &&
		    ymap_get(root->items[0], "path"))
			return doctor_skip_document(
			    d, source, root,
			    "a JSON patch (RFC 6902) is not checked: lint the machine config it "
			    "produces (talosctl gen config ... -o DIR)");
		return doctor_skip_document(d, source, root,
					    yis_seq(root) ? "a list at top level, not an object"
							  : "a scalar, not an object");
	}
	kind = ymap_get(root, "kind");
	apiv = ymap_get(root, "apiVersion");
	if (ystr(kind) && !strncmp(kind->str, "compute#", 8))
		return check_gce(d, source, root, kind);
	if (ystr(kind) && ystr(apiv)) {
		const struct ynode *items = ymap_get(root, "items");

		if (kind->n > 4 && !strcmp(kind->str + kind->n - 4, "List") && yis_seq(items)) {
			int ret = 0;

			for (uint32_t i = 0; i < items->n && ret >= 0; i++)
				ret = check_document(d, s, source, items->items[i], depth + 1);
			return ret;
		}
		/* Talos' own documents (apiVersion v1alpha1, no group) carry no rule yet. */
		return check_object(d, s, source, root, apiv, kind, depth);
	}
	if (yis_map(ymap_get(root, "machine")) || yis_map(ymap_get(root, "cluster")))
		return check_talos(d, s, source, root, depth);
	if (looks_like_cilium_values(root))
		return check_values(d, source, root);
	return doctor_skip_document(d, source, root,
				    "not a Kubernetes object (apiVersion, kind), a Talos machine "
				    "config (machine, cluster), Cilium Helm values or a Compute "
				    "Engine resource");
}
