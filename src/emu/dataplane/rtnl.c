/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rtnetlink in batches (libmnl): requests are queued in one buffer and sent together (the
 * kernel handles every message of a sendmsg() in turn and acknowledges each one), then the
 * answers are read. A hundred instances cost a few system calls per namespace instead of a
 * process per step. Each request says which errno is fine (a route already gone, a rule
 * already there); anything else is logged with the kernel's extended ack message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "emu/dataplane/dataplane.h"

#define MSG_ROOM   16384 /* largest request: a multipath route with many nexthops */
#define CHUNK_SIZE 49152 /* a send stays well under the socket's buffer */

struct nl_req {
	uint32_t seq;
	int ok_errno; /* this -errno is success too (0: none) */
	char what[80];
};

struct dp_nl {
	struct mnl_socket *sock;
	unsigned portid;
	uint32_t seq;
	char *buf;
	size_t len, cap;
	size_t cur; /* offset of the message being built, or SIZE_MAX */
	struct nl_req *reqs;
	size_t nreqs, reqs_cap;
};

struct dp_nl *dp_nl_open(void)
{
	struct dp_nl *nl = calloc(1, sizeof(*nl));
	int one = 1, rcvbuf = 4 << 20;

	if (!nl)
		return NULL;
	nl->cur = SIZE_MAX;
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sock || mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		if (nl->sock)
			mnl_socket_close(nl->sock);
		free(nl);
		return NULL;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL);
	/* Short answers (no copy of our request) with the kernel's reason for a refusal. */
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(mnl_socket_get_fd(nl->sock), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	return nl;
}

void dp_nl_close(struct dp_nl *nl)
{
	if (!nl)
		return;
	mnl_socket_close(nl->sock);
	free(nl->buf);
	free(nl->reqs);
	free(nl);
}

size_t dp_nl_pending(const struct dp_nl *nl)
{
	return nl->nreqs;
}

static void finish_msg(struct dp_nl *nl)
{
	if (nl->cur == SIZE_MAX)
		return;
	nl->len = nl->cur + MNL_ALIGN(((struct nlmsghdr *)(nl->buf + nl->cur))->nlmsg_len);
	nl->cur = SIZE_MAX;
}

static struct nlmsghdr *msg(struct dp_nl *nl, uint16_t type, uint16_t flags, int ok_errno,
			    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static struct nlmsghdr *msg(struct dp_nl *nl, uint16_t type, uint16_t flags, int ok_errno,
			    const char *fmt, ...)
{
	struct nlmsghdr *nlh;
	struct nl_req *r;
	va_list ap;

	finish_msg(nl);
	if (nl->len + MSG_ROOM > nl->cap) {
		size_t ncap = nl->cap ? nl->cap * 2 : 4 * MSG_ROOM;
		char *nb;

		while (nl->len + MSG_ROOM > ncap)
			ncap *= 2;
		nb = realloc(nl->buf, ncap);
		if (!nb)
			return NULL;
		nl->buf = nb;
		nl->cap = ncap;
	}
	if (nl->nreqs == nl->reqs_cap) {
		size_t ncap = nl->reqs_cap ? nl->reqs_cap * 2 : 64;
		struct nl_req *nr = realloc(nl->reqs, ncap * sizeof(*nr));

		if (!nr)
			return NULL;
		nl->reqs = nr;
		nl->reqs_cap = ncap;
	}
	memset(nl->buf + nl->len, 0, MSG_ROOM);
	nlh = mnl_nlmsg_put_header(nl->buf + nl->len);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++nl->seq;
	nlh->nlmsg_pid = 0;
	r = &nl->reqs[nl->nreqs++];
	r->seq = nlh->nlmsg_seq;
	r->ok_errno = ok_errno;
	va_start(ap, fmt);
	vsnprintf(r->what, sizeof(r->what), fmt, ap);
	va_end(ap);
	nl->cur = nl->len;
	return nlh;
}

/* The kernel's message in an extended ack, or "". */
static const char *ext_ack_msg(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*err);
	const struct nlattr *attr;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return "";
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += mnl_nlmsg_get_payload_len(&err->msg);
	if (mnl_nlmsg_size(off) > nlh->nlmsg_len)
		return "";
	mnl_attr_for_each(attr, nlh, off)
	{
		if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
			return mnl_attr_get_str(attr);
	}
	return "";
}

/* Reads answers until every request of [first, last) is answered. */
static int read_acks(struct dp_nl *nl, size_t first, size_t last)
{
	static char buf[32768]; /* one thread: the loop */
	size_t answered = 0, want = last - first;
	uint32_t seq0 = nl->reqs[first].seq;
	int ret = 0;

	while (answered < want) {
		ssize_t n = mnl_socket_recvfrom(nl->sock, buf, sizeof(buf));
		const struct nlmsghdr *nlh;
		int len;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("dataplane: netlink: %s", strerror(errno));
			return -errno;
		}
		len = (int)n;
		for (nlh = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			const struct nlmsgerr *err;
			struct nl_req *r;
			uint32_t i = nlh->nlmsg_seq - seq0;

			if (nlh->nlmsg_type != NLMSG_ERROR || i >= want)
				continue;
			err = mnl_nlmsg_get_payload(nlh);
			r = &nl->reqs[first + i];
			answered++;
			if (err->error == 0 || err->error == -r->ok_errno)
				continue;
			log_error("dataplane: %s: %s%s%s", r->what, strerror(-err->error),
				  *ext_ack_msg(nlh) ? ": " : "", ext_ack_msg(nlh));
			if (ret == 0)
				ret = err->error;
		}
	}
	return ret;
}

int dp_nl_flush(struct dp_nl *nl)
{
	size_t off = 0, first = 0;
	int ret = 0;

	finish_msg(nl);
	while (off < nl->len) {
		size_t end = off, count = 0;
		int r;

		/* Whole messages up to CHUNK_SIZE (at least one). */
		while (end < nl->len) {
			const struct nlmsghdr *nlh = (const struct nlmsghdr *)(nl->buf + end);
			size_t l = MNL_ALIGN(nlh->nlmsg_len);

			if (count && end - off + l > CHUNK_SIZE)
				break;
			end += l;
			count++;
		}
		if (mnl_socket_sendto(nl->sock, nl->buf + off, end - off) < 0) {
			log_error("dataplane: netlink send: %s", strerror(errno));
			ret = -errno;
			break;
		}
		r = read_acks(nl, first, first + count);
		if (r < 0 && ret == 0)
			ret = r;
		off = end;
		first += count;
	}
	nl->len = 0;
	nl->nreqs = 0;
	return ret;
}

/* ---- requests ---- */

static struct ifinfomsg *put_ifinfo(struct nlmsghdr *nlh, int ifindex, bool up)
{
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	if (up) {
		ifi->ifi_flags = IFF_UP;
		ifi->ifi_change = IFF_UP;
	}
	return ifi;
}

int dp_nl_veth(struct dp_nl *nl, const char *name, int ifindex, const uint8_t mac[6],
	       const char *peer, int peer_ifindex, const uint8_t peer_mac[6], int peer_nsfd)
{
	struct nlmsghdr *nlh =
	    msg(nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, "veth %s/%s", name, peer);
	struct nlattr *info, *data, *p;
	struct ifinfomsg *pifi;

	if (!nlh)
		return -ENOMEM;
	put_ifinfo(nlh, ifindex, true);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
	mnl_attr_put_u32(nlh, IFLA_MTU, DP_MTU);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	p = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	/* The peer's attributes follow its own ifinfomsg inside the nest. */
	pifi = mnl_nlmsg_get_payload_tail(nlh);
	memset(pifi, 0, sizeof(*pifi));
	pifi->ifi_family = AF_UNSPEC;
	/* Not up yet: the kernel opens the peer before pairing it (veth_open: -ENOTCONN). */
	pifi->ifi_index = peer_ifindex;
	nlh->nlmsg_len += MNL_ALIGN(sizeof(*pifi));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
	mnl_attr_put(nlh, IFLA_ADDRESS, 6, peer_mac);
	mnl_attr_put_u32(nlh, IFLA_MTU, DP_MTU);
	if (peer_nsfd >= 0)
		mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_nsfd);
	mnl_attr_nest_end(nlh, p);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, info);
	return 0;
}

int dp_nl_link_up(struct dp_nl *nl, int ifindex)
{
	struct nlmsghdr *nlh = msg(nl, RTM_NEWLINK, 0, 0, "link %d up", ifindex);

	if (!nlh)
		return -ENOMEM;
	put_ifinfo(nlh, ifindex, true);
	return 0;
}

int dp_nl_link_del(struct dp_nl *nl, int ifindex)
{
	struct nlmsghdr *nlh = msg(nl, RTM_DELLINK, 0, ENODEV, "delete link %d", ifindex);

	if (!nlh)
		return -ENOMEM;
	put_ifinfo(nlh, ifindex, false);
	return 0;
}

int dp_nl_addr(struct dp_nl *nl, bool add, int ifindex, uint32_t ip, uint8_t plen, uint8_t scope)
{
	char a[16];
	struct nlmsghdr *nlh =
	    msg(nl, add ? RTM_NEWADDR : RTM_DELADDR, add ? NLM_F_CREATE | NLM_F_REPLACE : 0,
		add ? 0 : EADDRNOTAVAIL, "%s address %s/%u on link %d", add ? "add" : "delete",
		dp_ip_str(ip, a), plen, ifindex);
	struct ifaddrmsg *ifa;
	uint32_t be = htonl(ip);

	if (!nlh)
		return -ENOMEM;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = plen;
	ifa->ifa_scope = scope;
	ifa->ifa_index = (unsigned)ifindex;
	mnl_attr_put(nlh, IFA_LOCAL, 4, &be);
	mnl_attr_put(nlh, IFA_ADDRESS, 4, &be);
	return 0;
}

int dp_nl_route(struct dp_nl *nl, bool add, const struct dp_route *r)
{
	char d[16];
	struct nlmsghdr *nlh =
	    msg(nl, add ? RTM_NEWROUTE : RTM_DELROUTE, add ? NLM_F_CREATE | NLM_F_REPLACE : 0,
		add ? 0 : ESRCH, "%s route %s/%u table %u", add ? "add" : "delete",
		dp_ip_str(r->dst, d), r->plen, r->table);
	struct rtmsg *rtm;
	uint32_t be = htonl(r->dst);

	if (!nlh)
		return -ENOMEM;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = r->plen;
	rtm->rtm_table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = DP_ROUTE_PROTO;
	rtm->rtm_scope = add ? r->scope : RT_SCOPE_NOWHERE;
	rtm->rtm_type = r->type;
	mnl_attr_put_u32(nlh, RTA_TABLE, r->table);
	if (r->plen)
		mnl_attr_put(nlh, RTA_DST, 4, &be);
	if (!add)
		return 0;
	if (r->nnh == 1) {
		mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)r->nh[0].ifindex);
		if (r->nh[0].gw) {
			uint32_t gw = htonl(r->nh[0].gw);

			mnl_attr_put(nlh, RTA_GATEWAY, 4, &gw);
			/* The gateway is an instance's /32, not on any subnet of ours. */
			rtm->rtm_flags |= RTNH_F_ONLINK;
		}
	} else if (r->nnh > 1) {
		struct nlattr *mp = mnl_attr_nest_start(nlh, RTA_MULTIPATH);

		for (size_t i = 0; i < r->nnh; i++) {
			struct rtnexthop *rtnh = mnl_nlmsg_get_payload_tail(nlh);
			size_t start = nlh->nlmsg_len;

			memset(rtnh, 0, sizeof(*rtnh));
			rtnh->rtnh_ifindex = r->nh[i].ifindex;
			rtnh->rtnh_flags = r->nh[i].gw ? RTNH_F_ONLINK : 0;
			nlh->nlmsg_len += MNL_ALIGN(sizeof(*rtnh));
			if (r->nh[i].gw) {
				uint32_t gw = htonl(r->nh[i].gw);

				mnl_attr_put(nlh, RTA_GATEWAY, 4, &gw);
			}
			rtnh->rtnh_len = (unsigned short)(nlh->nlmsg_len - start);
		}
		mnl_attr_nest_end(nlh, mp);
	}
	return 0;
}

int dp_nl_rule(struct dp_nl *nl, bool add, const struct dp_rule_spec *r)
{
	struct nlmsghdr *nlh =
	    msg(nl, add ? RTM_NEWRULE : RTM_DELRULE, add ? NLM_F_CREATE | NLM_F_EXCL : 0,
		add ? EEXIST : ENOENT, "%s rule %u iif '%s' mark %#x table %u",
		add ? "add" : "delete", r->prio, r->iif, r->mark, r->table);
	struct fib_rule_hdr *frh;

	if (!nlh)
		return -ENOMEM;
	frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	frh->family = AF_INET;
	frh->action = FR_ACT_TO_TBL;
	frh->table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC;
	mnl_attr_put_u32(nlh, FRA_PRIORITY, r->prio);
	mnl_attr_put_u32(nlh, FRA_TABLE, r->table);
	if (r->iif[0])
		mnl_attr_put_strz(nlh, FRA_IIFNAME, r->iif);
	if (r->mark) {
		mnl_attr_put_u32(nlh, FRA_FWMARK, r->mark);
		mnl_attr_put_u32(nlh, FRA_FWMASK, 0xffffffffu);
	}
	if (r->src) {
		uint32_t be = htonl(r->src);

		frh->src_len = 32;
		mnl_attr_put(nlh, FRA_SRC, 4, &be);
	}
	return 0;
}

int dp_nl_neigh(struct dp_nl *nl, int ifindex, uint32_t ip, const uint8_t mac[6])
{
	char a[16];
	struct nlmsghdr *nlh = msg(nl, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, 0,
				   "neighbour %s on link %d", dp_ip_str(ip, a), ifindex);
	struct ndmsg *nd;
	uint32_t be = htonl(ip);

	if (!nlh)
		return -ENOMEM;
	nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
	nd->ndm_family = AF_INET;
	nd->ndm_ifindex = ifindex;
	nd->ndm_state = NUD_PERMANENT;
	nd->ndm_type = RTN_UNICAST;
	mnl_attr_put(nlh, NDA_DST, 4, &be);
	mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
	return 0;
}
