/* SPDX-License-Identifier: Apache-2.0 */
#include "agent/nl.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Copies a validated NUL-terminated attribute; -EBADMSG when it does not fit. */
static int copy_str(const struct nlattr *attr, char *dst, size_t size)
{
	const char *s = mnl_attr_get_str(attr);
	size_t n = strnlen(s, mnl_attr_get_payload_len(attr));

	if (n >= size)
		return -EBADMSG;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

static int family_len(int family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : -1;
}

/* An address attribute of exactly the family's length. */
static int copy_ip(const struct nlattr *attr, int family, struct ip_addr *out)
{
	int len = family_len(family);

	if (len < 0 || mnl_attr_get_payload_len(attr) != (uint16_t)len)
		return -EBADMSG;
	memset(out, 0, sizeof(*out));
	out->family = family;
	memcpy(out->bytes, mnl_attr_get_payload(attr), (size_t)len);
	return 0;
}

struct attr_table {
	const struct nlattr **tb;
	uint16_t max;
};

/* Collects attributes up to max; unknown types are skipped, as new kernels add them. */
static int collect_attr(const struct nlattr *attr, void *data)
{
	struct attr_table *t = data;
	uint16_t type = mnl_attr_get_type(attr);

	if (type > t->max)
		return MNL_CB_OK;
	t->tb[type] = attr;
	return MNL_CB_OK;
}

static int parse_attrs(const struct nlmsghdr *nlh, size_t hdrlen, const struct nlattr **tb,
		       uint16_t max)
{
	struct attr_table t = {tb, max};

	memset(tb, 0, sizeof(*tb) * (max + 1u));
	if (nlh->nlmsg_len < mnl_nlmsg_size(hdrlen))
		return -EBADMSG;
	if (mnl_attr_parse(nlh, (unsigned)hdrlen, collect_attr, &t) != MNL_CB_OK)
		return -EBADMSG;
	return 0;
}

static int valid(const struct nlattr *attr, enum mnl_attr_data_type type)
{
	return attr && mnl_attr_validate(attr, type) < 0 ? -EBADMSG : 0;
}

size_t nl_valid_length(const void *buf, size_t len)
{
	size_t off = 0;

	while (len - off >= sizeof(struct nlmsghdr)) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)((const char *)buf + off);

		if (nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > len - off)
			break;
		off += nlh->nlmsg_len;
		if (off < len)
			off = MNL_ALIGN(off) < len ? MNL_ALIGN(off) : len;
	}
	return off;
}

int nl_parse_link(const struct nlmsghdr *nlh, struct nl_link *out)
{
	const struct nlattr *tb[IFLA_MAX + 1], *info[IFLA_INFO_MAX + 1];
	const struct ifinfomsg *ifi;

	memset(out, 0, sizeof(*out));
	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return -EBADMSG;
	if (parse_attrs(nlh, sizeof(*ifi), tb, IFLA_MAX) < 0)
		return -EBADMSG;
	ifi = mnl_nlmsg_get_payload(nlh);
	out->ifindex = ifi->ifi_index;
	out->flags = ifi->ifi_flags;
	if (valid(tb[IFLA_IFNAME], MNL_TYPE_NUL_STRING) < 0 ||
	    valid(tb[IFLA_IFALIAS], MNL_TYPE_NUL_STRING) < 0 ||
	    valid(tb[IFLA_LINKINFO], MNL_TYPE_NESTED) < 0)
		return -EBADMSG;
	if (tb[IFLA_IFNAME] && copy_str(tb[IFLA_IFNAME], out->ifname, sizeof(out->ifname)) < 0)
		return -EBADMSG;
	/* An alias longer than ours is simply not ours: keep a truncated copy. */
	if (tb[IFLA_IFALIAS])
		snprintf(out->ifalias, sizeof(out->ifalias), "%.*s",
			 (int)strnlen(mnl_attr_get_str(tb[IFLA_IFALIAS]),
				      mnl_attr_get_payload_len(tb[IFLA_IFALIAS])),
			 mnl_attr_get_str(tb[IFLA_IFALIAS]));
	if (tb[IFLA_LINKINFO]) {
		struct attr_table t = {info, IFLA_INFO_MAX};

		memset(info, 0, sizeof(info));
		if (mnl_attr_parse_nested(tb[IFLA_LINKINFO], collect_attr, &t) != MNL_CB_OK)
			return -EBADMSG;
		if (valid(info[IFLA_INFO_KIND], MNL_TYPE_NUL_STRING) < 0)
			return -EBADMSG;
		if (info[IFLA_INFO_KIND] &&
		    copy_str(info[IFLA_INFO_KIND], out->kind, sizeof(out->kind)) < 0)
			return -EBADMSG;
	}
	return 0;
}

int nl_parse_addr(const struct nlmsghdr *nlh, struct nl_addr *out)
{
	const struct nlattr *tb[VIP_IFA_PROTO_ATTR + 1];
	const struct ifaddrmsg *ifa;
	const struct nlattr *a;

	memset(out, 0, sizeof(*out));
	if (nlh->nlmsg_type != RTM_NEWADDR && nlh->nlmsg_type != RTM_DELADDR)
		return -EBADMSG;
	if (parse_attrs(nlh, sizeof(*ifa), tb, VIP_IFA_PROTO_ATTR) < 0)
		return -EBADMSG;
	ifa = mnl_nlmsg_get_payload(nlh);
	if (family_len(ifa->ifa_family) < 0 || ifa->ifa_prefixlen > 8 * family_len(ifa->ifa_family))
		return -EBADMSG;
	out->ifindex = (int)ifa->ifa_index;
	out->prefixlen = ifa->ifa_prefixlen;
	out->scope = ifa->ifa_scope;
	out->flags = ifa->ifa_flags;
	a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || copy_ip(a, ifa->ifa_family, &out->addr) < 0)
		return -EBADMSG;
	if (tb[IFA_ADDRESS] && copy_ip(tb[IFA_ADDRESS], ifa->ifa_family, &(struct ip_addr){0}) < 0)
		return -EBADMSG;
	if (valid(tb[IFA_FLAGS], MNL_TYPE_U32) < 0 ||
	    valid(tb[IFA_LABEL], MNL_TYPE_NUL_STRING) < 0 ||
	    valid(tb[VIP_IFA_PROTO_ATTR], MNL_TYPE_U8) < 0)
		return -EBADMSG;
	if (tb[IFA_FLAGS])
		out->flags = mnl_attr_get_u32(tb[IFA_FLAGS]);
	if (tb[IFA_LABEL] && copy_str(tb[IFA_LABEL], out->label, sizeof(out->label)) < 0)
		return -EBADMSG;
	if (tb[VIP_IFA_PROTO_ATTR]) {
		out->has_proto = true;
		out->proto = mnl_attr_get_u8(tb[VIP_IFA_PROTO_ATTR]);
	}
	return 0;
}

int nl_parse_route(const struct nlmsghdr *nlh, struct nl_route *out)
{
	const struct nlattr *tb[RTA_MAX + 1];
	const struct rtmsg *rtm;

	memset(out, 0, sizeof(*out));
	if (nlh->nlmsg_type != RTM_NEWROUTE && nlh->nlmsg_type != RTM_DELROUTE)
		return -EBADMSG;
	if (parse_attrs(nlh, sizeof(*rtm), tb, RTA_MAX) < 0)
		return -EBADMSG;
	rtm = mnl_nlmsg_get_payload(nlh);
	out->family = rtm->rtm_family;
	out->dst_len = rtm->rtm_dst_len;
	out->tos = rtm->rtm_tos;
	out->protocol = rtm->rtm_protocol;
	out->scope = rtm->rtm_scope;
	out->type = rtm->rtm_type;
	out->table = rtm->rtm_table;
	/* Only IP routes concern us; others (MPLS, multicast families) parse to family 0. */
	if (family_len(rtm->rtm_family) < 0) {
		out->family = 0;
		return 0;
	}
	if (rtm->rtm_dst_len > 8 * family_len(rtm->rtm_family))
		return -EBADMSG;
	out->dst.family = rtm->rtm_family;
	if (tb[RTA_DST] && copy_ip(tb[RTA_DST], rtm->rtm_family, &out->dst) < 0)
		return -EBADMSG;
	if (valid(tb[RTA_TABLE], MNL_TYPE_U32) < 0 || valid(tb[RTA_PRIORITY], MNL_TYPE_U32) < 0 ||
	    valid(tb[RTA_OIF], MNL_TYPE_U32) < 0)
		return -EBADMSG;
	if (tb[RTA_TABLE])
		out->table = mnl_attr_get_u32(tb[RTA_TABLE]);
	if (tb[RTA_PRIORITY])
		out->priority = mnl_attr_get_u32(tb[RTA_PRIORITY]);
	if (tb[RTA_OIF])
		out->oif = (int)mnl_attr_get_u32(tb[RTA_OIF]);
	return 0;
}

struct extack {
	const char *msg;
};

static int extack_attr(const struct nlattr *attr, void *data)
{
	struct extack *e = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
		e->msg = mnl_attr_get_str(attr);
	return MNL_CB_OK;
}

int nl_parse_error(const struct nlmsghdr *nlh, int *code, const char **msg)
{
	const struct nlmsgerr *err;
	size_t payload, offset;
	struct extack e = {NULL};

	*code = 0;
	*msg = NULL;
	if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err)))
		return -EBADMSG;
	err = mnl_nlmsg_get_payload(nlh);
	/* The kernel sends -errno; some subsystems a positive value. INT_MIN has no negation. */
	if (err->error == INT32_MIN)
		return -EBADMSG;
	*code = err->error < 0 ? -err->error : err->error;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return 0;
	/* TLVs follow the echoed request: its header only when NLM_F_CAPPED, else all of it. */
	payload = mnl_nlmsg_get_payload_len(nlh);
	offset = sizeof(*err);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
		if (err->msg.nlmsg_len < sizeof(struct nlmsghdr))
			return 0;
		offset += err->msg.nlmsg_len - sizeof(struct nlmsghdr);
	}
	if (MNL_ALIGN(offset) >= payload)
		return 0;
	mnl_attr_parse(nlh, (unsigned)offset, extack_attr, &e);
	*msg = e.msg;
	return 0;
}

static struct nlmsghdr *put_header(void *buf, uint32_t seq, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh;

	memset(buf, 0, MNL_NLMSG_HDRLEN);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = seq;
	return nlh;
}

struct nlmsghdr *nl_build_getlink(void *buf, uint32_t seq, const char *ifname)
{
	struct nlmsghdr *nlh = put_header(buf, seq, RTM_GETLINK, NLM_F_ACK);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	/* Ask for IFLA_IFALIAS and kind without the stats of every queue. */
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	return nlh;
}

struct nlmsghdr *nl_build_newlink(void *buf, uint32_t seq, const char *ifname, const char *kind)
{
	struct nlmsghdr *nlh = put_header(buf, seq, RTM_NEWLINK, NLM_F_ACK);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	struct nlattr *linkinfo;

	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind);
	mnl_attr_nest_end(nlh, linkinfo);
	return nlh;
}

struct nlmsghdr *nl_build_setlink_up(void *buf, uint32_t seq, int ifindex, const char *alias)
{
	struct nlmsghdr *nlh = put_header(buf, seq, RTM_NEWLINK, NLM_F_ACK);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	if (alias)
		mnl_attr_put_strz(nlh, IFLA_IFALIAS, alias);
	return nlh;
}

struct nlmsghdr *nl_build_dellink(void *buf, uint32_t seq, int ifindex)
{
	struct nlmsghdr *nlh = put_header(buf, seq, RTM_DELLINK, NLM_F_ACK);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	return nlh;
}

struct nlmsghdr *nl_build_getaddr_dump(void *buf, uint32_t seq, int ifindex)
{
	struct nlmsghdr *nlh = put_header(buf, seq, RTM_GETADDR, NLM_F_DUMP);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));

	ifa->ifa_family = AF_UNSPEC;
	ifa->ifa_index = (uint32_t)ifindex;
	return nlh;
}

struct nlmsghdr *nl_build_getroute_dump(void *buf, uint32_t seq, int family, uint32_t table)
{
	struct nlmsghdr *nlh = put_header(buf, seq, RTM_GETROUTE, NLM_F_DUMP);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

	rtm->rtm_family = (uint8_t)family;
	rtm->rtm_table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
	mnl_attr_put_u32(nlh, RTA_TABLE, table);
	return nlh;
}

struct nlmsghdr *nl_build_addr(void *buf, uint32_t seq, uint16_t type, uint16_t flags, int ifindex,
			       const struct ip_addr *addr, uint8_t prefixlen, uint8_t proto,
			       const char *label)
{
	struct nlmsghdr *nlh = put_header(buf, seq, type, NLM_F_ACK | flags);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	size_t len = addr->family == AF_INET ? 4 : 16;

	ifa->ifa_family = (uint8_t)addr->family;
	ifa->ifa_prefixlen = prefixlen;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (uint32_t)ifindex;
	mnl_attr_put(nlh, IFA_LOCAL, len, addr->bytes);
	mnl_attr_put(nlh, IFA_ADDRESS, len, addr->bytes);
	if (type == RTM_NEWADDR) {
		/* A VIP is shared with the load balancer by design: duplicate detection is wrong.
		 */
		uint32_t aflags = addr->family == AF_INET6 ? IFA_F_NODAD : 0;

		ifa->ifa_flags = (uint8_t)aflags;
		mnl_attr_put_u32(nlh, IFA_FLAGS, aflags);
		if (proto)
			mnl_attr_put_u8(nlh, VIP_IFA_PROTO_ATTR, proto);
		if (label && addr->family == AF_INET)
			mnl_attr_put_strz(nlh, IFA_LABEL, label);
	}
	return nlh;
}

struct nlmsghdr *nl_build_local_route(void *buf, uint32_t seq, uint16_t type, uint16_t flags,
				      int oif, const struct ip_addr *dst, uint8_t dst_len,
				      uint8_t protocol)
{
	struct nlmsghdr *nlh = put_header(buf, seq, type, NLM_F_ACK | flags);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

	rtm->rtm_family = (uint8_t)dst->family;
	rtm->rtm_dst_len = dst_len;
	rtm->rtm_table = RT_TABLE_LOCAL;
	rtm->rtm_protocol = protocol;
	rtm->rtm_scope = RT_SCOPE_HOST;
	rtm->rtm_type = RTN_LOCAL;
	mnl_attr_put(nlh, RTA_DST, dst->family == AF_INET ? 4 : 16, dst->bytes);
	mnl_attr_put_u32(nlh, RTA_TABLE, RT_TABLE_LOCAL);
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)oif);
	return nlh;
}

const char *nl_type_name(uint16_t type)
{
	static char other[16];

	switch (type) {
	case RTM_NEWLINK:
		return "RTM_NEWLINK";
	case RTM_DELLINK:
		return "RTM_DELLINK";
	case RTM_NEWADDR:
		return "RTM_NEWADDR";
	case RTM_DELADDR:
		return "RTM_DELADDR";
	case RTM_NEWROUTE:
		return "RTM_NEWROUTE";
	case RTM_DELROUTE:
		return "RTM_DELROUTE";
	default:
		snprintf(other, sizeof(other), "type-%u", type);
		return other;
	}
}
