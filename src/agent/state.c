/* SPDX-License-Identifier: Apache-2.0 */
#include "agent/state.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "agent/nl.h"

const char *vip_cause_name(enum vip_cause cause)
{
	static const char *const names[VIP_CAUSE_COUNT] = {
	    [VIP_CAUSE_NONE] = "none",
	    [VIP_CAUSE_ADDRESS_REMOVED] = "address_removed",
	    [VIP_CAUSE_LINK_DOWN] = "link_down",
	    [VIP_CAUSE_LINK_REMOVED] = "link_removed",
	    [VIP_CAUSE_ROUTE_REMOVED] = "route_removed",
	    [VIP_CAUSE_RESYNC] = "resync",
	};

	return (unsigned)cause < VIP_CAUSE_COUNT ? names[cause] : "unknown";
}

void vip_state_reset(struct vip_state *st)
{
	bool proto = st->ifa_proto_supported;

	memset(st, 0, sizeof(*st));
	st->ifa_proto_supported = proto;
}

static bool is_vip_addr(const struct vip_config *cfg, const struct ip_addr *a)
{
	return ip_equal(a, &cfg->vip.addr);
}

static bool is_exact_vip(const struct vip_state *st, const struct vip_config *cfg,
			 const struct vip_addr_entry *e)
{
	return st->ifindex && e->ifindex == st->ifindex && e->prefixlen == cfg->vip.prefix &&
	       is_vip_addr(cfg, &e->addr);
}

bool vip_addr_owned(const struct vip_state *st, const struct vip_config *cfg,
		    const struct vip_addr_entry *e)
{
	if (e->has_proto)
		return e->proto == VIP_IFAPROT;
	if (e->label_ours)
		return true;
	/* IPv6 has no labels: where the kernel drops IFA_PROTO, the exact VIP is taken as ours. */
	return e->addr.family == AF_INET6 && !st->ifa_proto_supported && is_exact_vip(st, cfg, e);
}

static bool has_vip_route(const struct vip_state *st)
{
	for (unsigned i = 0; i < st->n_routes; i++)
		if (st->routes[i].type == RTN_LOCAL)
			return true;
	return false;
}

bool vip_in_place(const struct vip_state *st, const struct vip_config *cfg)
{
	if (!st->ifindex)
		return false;
	if (cfg->mode == VIP_MODE_LOCAL_ROUTE)
		return has_vip_route(st);
	if (!(st->ifflags & IFF_UP))
		return false;
	for (unsigned i = 0; i < st->n_addrs; i++)
		if (is_exact_vip(st, cfg, &st->addrs[i]))
			return true;
	return false;
}

static void forget_ifindex(struct vip_state *st, int ifindex)
{
	unsigned j = 0;

	for (unsigned i = 0; i < st->n_addrs; i++)
		if (st->addrs[i].ifindex != ifindex)
			st->addrs[j++] = st->addrs[i];
	st->n_addrs = j;
	j = 0;
	for (unsigned i = 0; i < st->n_routes; i++)
		if (st->routes[i].oif != ifindex)
			st->routes[j++] = st->routes[i];
	st->n_routes = j;
}

static int apply_link(struct vip_state *st, const struct vip_config *cfg,
		      const struct nlmsghdr *nlh)
{
	struct nl_link l;

	if (nl_parse_link(nlh, &l) < 0 || l.ifindex <= 0)
		return -1;
	if (nlh->nlmsg_type == RTM_DELLINK) {
		forget_ifindex(st, l.ifindex);
		if (l.ifindex == st->ifindex) {
			st->ifindex = 0;
			st->ifflags = 0;
			st->link_ours = false;
			st->link_kind[0] = '\0';
			return VIP_CAUSE_LINK_REMOVED;
		}
		return VIP_CAUSE_NONE;
	}
	if (l.ifname[0] && strcmp(l.ifname, cfg->ifname) != 0) {
		/* Renamed away from the configured name: for us it is gone. */
		if (l.ifindex == st->ifindex) {
			st->ifindex = 0;
			st->ifflags = 0;
			st->link_ours = false;
			return VIP_CAUSE_LINK_REMOVED;
		}
		return VIP_CAUSE_NONE;
	}
	if (!l.ifname[0] && l.ifindex != st->ifindex)
		return VIP_CAUSE_NONE;
	if (st->ifindex && st->ifindex != l.ifindex)
		forget_ifindex(st, st->ifindex);
	st->ifindex = l.ifindex;
	st->ifflags = l.flags;
	st->link_ours = strcmp(l.ifalias, VIP_LINK_ALIAS) == 0;
	if (l.kind[0])
		snprintf(st->link_kind, sizeof(st->link_kind), "%s", l.kind);
	return (l.flags & IFF_UP) ? VIP_CAUSE_NONE : VIP_CAUSE_LINK_DOWN;
}

static int apply_addr(struct vip_state *st, const struct vip_config *cfg,
		      const struct nlmsghdr *nlh)
{
	struct vip_addr_entry e = {0};
	struct nl_addr a;
	unsigned i;

	if (nl_parse_addr(nlh, &a) < 0)
		return -1;
	if (a.has_proto)
		st->ifa_proto_supported = true;
	e.ifindex = a.ifindex;
	e.addr = a.addr;
	e.prefixlen = a.prefixlen;
	e.has_proto = a.has_proto;
	e.proto = a.proto;
	e.label_ours =
	    a.addr.family == AF_INET && cfg->label[0] && strcmp(a.label, cfg->label) == 0;
	for (i = 0; i < st->n_addrs; i++) {
		const struct vip_addr_entry *o = &st->addrs[i];

		if (o->ifindex == e.ifindex && o->prefixlen == e.prefixlen &&
		    ip_equal(&o->addr, &e.addr))
			break;
	}
	if (nlh->nlmsg_type == RTM_DELADDR) {
		if (i == st->n_addrs)
			return VIP_CAUSE_NONE;
		st->addrs[i] = st->addrs[--st->n_addrs];
		return VIP_CAUSE_ADDRESS_REMOVED;
	}
	if (!is_vip_addr(cfg, &e.addr) && !(e.has_proto && e.proto == VIP_IFAPROT) &&
	    !e.label_ours) {
		/* No longer interesting (its proto changed): forget it. */
		if (i < st->n_addrs)
			st->addrs[i] = st->addrs[--st->n_addrs];
		return VIP_CAUSE_NONE;
	}
	if (i == st->n_addrs) {
		if (st->n_addrs == VIP_MAX_ADDRS) {
			st->overflow = true;
			return VIP_CAUSE_NONE;
		}
		st->n_addrs++;
	}
	st->addrs[i] = e;
	return VIP_CAUSE_NONE;
}

/*
 * Same route for us: the priority is left out, as IPv6 gives routes added without one a
 * metric of 1024 and our own record of a route we added must match the kernel's.
 */
static bool route_equal(const struct vip_route_entry *a, const struct vip_route_entry *b)
{
	return a->oif == b->oif && a->protocol == b->protocol && a->type == b->type &&
	       a->tos == b->tos;
}

static int apply_route(struct vip_state *st, const struct vip_config *cfg,
		       const struct nlmsghdr *nlh)
{
	struct vip_route_entry e;
	struct nl_route r;
	unsigned i;

	if (nl_parse_route(nlh, &r) < 0)
		return -1;
	if (r.family != cfg->vip.addr.family || r.table != RT_TABLE_LOCAL ||
	    r.dst_len != cfg->vip.prefix || !is_vip_addr(cfg, &r.dst))
		return VIP_CAUSE_NONE;
	e = (struct vip_route_entry){r.oif, r.protocol, r.type, r.tos, r.priority};
	if (nlh->nlmsg_type == RTM_NEWROUTE && (nlh->nlmsg_flags & NLM_F_REPLACE)) {
		/* A replace drops the old route with the same key without a notification. */
		unsigned j = 0;

		for (i = 0; i < st->n_routes; i++)
			if (st->routes[i].tos != e.tos || st->routes[i].priority != e.priority)
				st->routes[j++] = st->routes[i];
		st->n_routes = j;
	}
	for (i = 0; i < st->n_routes; i++)
		if (route_equal(&st->routes[i], &e))
			break;
	if (nlh->nlmsg_type == RTM_DELROUTE) {
		if (i == st->n_routes)
			return VIP_CAUSE_NONE;
		st->routes[i] = st->routes[--st->n_routes];
		return VIP_CAUSE_ROUTE_REMOVED;
	}
	if (i == st->n_routes) {
		if (st->n_routes == VIP_MAX_ROUTES) {
			st->overflow = true;
			return VIP_CAUSE_NONE;
		}
		st->n_routes++;
	}
	st->routes[i] = e;
	return VIP_CAUSE_NONE;
}

enum vip_cause vip_state_apply(struct vip_state *st, const struct vip_config *cfg,
			       const struct nlmsghdr *nlh)
{
	bool before = vip_in_place(st, cfg);
	int cause;

	switch (nlh->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK:
		cause = apply_link(st, cfg, nlh);
		break;
	case RTM_NEWADDR:
	case RTM_DELADDR:
		cause = apply_addr(st, cfg, nlh);
		break;
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
		cause = apply_route(st, cfg, nlh);
		break;
	default:
		return VIP_CAUSE_NONE;
	}
	if (cause < 0) {
		st->ignored_messages++;
		return VIP_CAUSE_NONE;
	}
	/* A cause counts only when this message is what took the VIP away. */
	return before && !vip_in_place(st, cfg) ? (enum vip_cause)cause : VIP_CAUSE_NONE;
}

struct feed_ctx {
	struct vip_state *st;
	const struct vip_config *cfg;
	enum vip_cause cause;
};

static int feed_cb(const struct nlmsghdr *nlh, void *data)
{
	struct feed_ctx *f = data;
	enum vip_cause c = vip_state_apply(f->st, f->cfg, nlh);

	if (f->cause == VIP_CAUSE_NONE)
		f->cause = c;
	return MNL_CB_OK;
}

enum vip_cause vip_state_feed(struct vip_state *st, const struct vip_config *cfg, const void *buf,
			      size_t len)
{
	struct feed_ctx f = {st, cfg, VIP_CAUSE_NONE};

	mnl_cb_run(buf, nl_valid_length(buf, len), 0, 0, feed_cb, &f);
	return f.cause;
}

void vip_state_note_addr(struct vip_state *st, const struct vip_addr_entry *e, bool present)
{
	unsigned i;

	for (i = 0; i < st->n_addrs; i++)
		if (st->addrs[i].ifindex == e->ifindex && st->addrs[i].prefixlen == e->prefixlen &&
		    ip_equal(&st->addrs[i].addr, &e->addr))
			break;
	if (!present) {
		if (i < st->n_addrs)
			st->addrs[i] = st->addrs[--st->n_addrs];
		return;
	}
	if (i == st->n_addrs) {
		if (i == VIP_MAX_ADDRS) {
			st->overflow = true;
			return;
		}
		st->n_addrs++;
	}
	st->addrs[i] = *e;
}

void vip_state_note_route(struct vip_state *st, const struct vip_route_entry *e, bool present)
{
	unsigned i;

	for (i = 0; i < st->n_routes; i++)
		if (route_equal(&st->routes[i], e))
			break;
	if (!present) {
		if (i < st->n_routes)
			st->routes[i] = st->routes[--st->n_routes];
		return;
	}
	if (i == st->n_routes) {
		if (i == VIP_MAX_ROUTES) {
			st->overflow = true;
			return;
		}
		st->routes[st->n_routes++] = *e;
	}
}

void vip_plan_make(const struct vip_state *st, const struct vip_config *cfg, struct vip_plan *plan)
{
	memset(plan, 0, sizeof(*plan));
	for (unsigned i = 0; i < st->n_addrs; i++) {
		const struct vip_addr_entry *e = &st->addrs[i];
		bool owned = vip_addr_owned(st, cfg, e);
		bool wanted = cfg->mode == VIP_MODE_ADDRESS && is_exact_vip(st, cfg, e);

		if (owned && !wanted)
			plan->del[plan->n_del++] = *e;
		if (!owned && is_vip_addr(cfg, &e->addr) && e->ifindex != st->ifindex &&
		    !plan->foreign_ifindex)
			plan->foreign_ifindex = e->ifindex;
	}
	if (cfg->mode == VIP_MODE_ADDRESS) {
		bool present = false;

		for (unsigned i = 0; i < st->n_addrs; i++)
			present = present || is_exact_vip(st, cfg, &st->addrs[i]);
		plan->create_link = !st->ifindex;
		plan->set_up = !st->ifindex || !(st->ifflags & IFF_UP);
		plan->add_addr = !present;
		return;
	}
	/* No interface, or (IPv6 only) a down one: the kernel refuses the route until then. */
	if (!st->ifindex || (cfg->vip.addr.family == AF_INET6 && !(st->ifflags & IFF_UP))) {
		plan->wait_link = true;
		return;
	}
	for (unsigned i = 0; i < st->n_routes; i++) {
		const struct vip_route_entry *r = &st->routes[i];

		if (r->type != RTN_LOCAL)
			continue;
		if (r->protocol == VIP_RTPROT && r->oif == st->ifindex)
			return;
	}
	for (unsigned i = 0; i < st->n_routes; i++) {
		const struct vip_route_entry *r = &st->routes[i];

		if (r->type != RTN_LOCAL)
			continue;
		if (r->protocol == VIP_RTPROT)
			plan->replace_route = true;
		else
			plan->foreign_route = true;
	}
	/* A foreign local route already makes the VIP local: leave it alone. */
	plan->add_route = !plan->foreign_route;
}

bool vip_plan_empty(const struct vip_plan *plan)
{
	return !plan->create_link && !plan->set_up && !plan->add_addr && !plan->add_route &&
	       !plan->n_del;
}

static const char *ifname_of(int ifindex, char *buf)
{
	if (!if_indextoname((unsigned)ifindex, buf))
		snprintf(buf, IF_NAMESIZE, "?");
	return buf;
}

int vip_check_conflicts(const struct vip_state *st, const struct vip_config *cfg, struct error *err)
{
	char vip[CIDR_STRLEN], name[IF_NAMESIZE];
	struct vip_plan plan;

	cidr_format(&cfg->vip, vip, sizeof(vip));
	vip_plan_make(st, cfg, &plan);
	if (cfg->mode == VIP_MODE_ADDRESS && plan.foreign_ifindex)
		return error_set(err, EEXIST,
				 "--vip %s: already an address on interface %s (index %d), not "
				 "owned by vip-alias; remove it there or pick another VIP",
				 vip, ifname_of(plan.foreign_ifindex, name), plan.foreign_ifindex);
	if (cfg->mode == VIP_MODE_LOCAL_ROUTE) {
		for (unsigned i = 0; i < st->n_addrs; i++) {
			const struct vip_addr_entry *e = &st->addrs[i];

			if (is_vip_addr(cfg, &e->addr) && !vip_addr_owned(st, cfg, e))
				return error_set(
				    err, EEXIST,
				    "--vip %s: already an address on interface %s "
				    "(index %d), not owned by vip-alias; remove it there "
				    "or use --mode address",
				    vip, ifname_of(e->ifindex, name), e->ifindex);
		}
		for (unsigned i = 0; i < st->n_routes; i++) {
			const struct vip_route_entry *r = &st->routes[i];

			if (r->protocol != VIP_RTPROT)
				return error_set(err, EEXIST,
						 "--vip %s: table local already has a route to it "
						 "(proto %u, dev %s), not owned by vip-alias",
						 vip, r->protocol, ifname_of(r->oif, name));
		}
	}
	return 0;
}
