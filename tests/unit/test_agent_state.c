/* SPDX-License-Identifier: Apache-2.0 */
/* vip-alias: netlink parsing, the state kept from events, and the plan made from it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>

#include "agent/config.h"
#include "agent/nl.h"
#include "agent/state.h"

static char buf[VIP_NL_BUFSIZE];

static struct vip_config config(const char *vip, enum vip_mode mode)
{
	struct vip_config cfg;
	struct error err;
	char *argv[] = {"vip-alias",
			"--vip",
			(char *)vip,
			"--mode",
			mode == VIP_MODE_ADDRESS ? "address" : "local-route",
			NULL};

	assert_int_equal(vip_config_parse(&cfg, 5, argv, NULL, &err), VIP_CONFIG_RUN);
	return cfg;
}

static struct nlmsghdr *link_msg(uint16_t type, int ifindex, unsigned flags, const char *name,
				 const char *alias)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(memset(buf, 0, sizeof(buf)));
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	struct nlattr *nest;

	nlh->nlmsg_type = type;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = flags;
	if (name)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	if (alias)
		mnl_attr_put_strz(nlh, IFLA_IFALIAS, alias);
	nest = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "dummy");
	mnl_attr_nest_end(nlh, nest);
	return nlh;
}

/* An address notification as the kernel sends it; proto 0 means no IFA_PROTO attribute. */
static struct nlmsghdr *addr_msg(uint16_t type, int ifindex, const char *cidr, uint8_t proto,
				 const char *label)
{
	struct cidr c;
	struct nlmsghdr *nlh;

	assert_int_equal(cidr_parse(cidr, &c, 0), 0);
	nlh = nl_build_addr(buf, 1, RTM_NEWADDR, 0, ifindex, &c.addr, (uint8_t)c.prefix, proto,
			    label);
	nlh->nlmsg_type = type;
	return nlh;
}

static struct nlmsghdr *route_msg(uint16_t type, int oif, const char *cidr, uint8_t proto)
{
	struct cidr c;
	struct nlmsghdr *nlh;

	assert_int_equal(cidr_parse(cidr, &c, 0), 0);
	nlh = nl_build_local_route(buf, 1, RTM_NEWROUTE, 0, oif, &c.addr, (uint8_t)c.prefix, proto);
	nlh->nlmsg_type = type;
	return nlh;
}

#define APPLY(st, cfg, msg) vip_state_apply(st, cfg, msg)

static void test_parse_roundtrip(void **state)
{
	struct nl_addr a;
	struct nl_link l;
	struct nl_route r;
	char ip[CIDR_STRLEN];

	(void)state;
	assert_int_equal(nl_parse_link(link_msg(RTM_NEWLINK, 7, IFF_UP, "dummy0", "vip-alias"), &l),
			 0);
	assert_int_equal(l.ifindex, 7);
	assert_string_equal(l.ifname, "dummy0");
	assert_string_equal(l.ifalias, "vip-alias");
	assert_string_equal(l.kind, "dummy");
	assert_int_equal(
	    nl_parse_addr(addr_msg(RTM_NEWADDR, 7, "10.0.0.2/32", 66, "dummy0:vip"), &a), 0);
	assert_string_equal(ip_format(&a.addr, ip, sizeof(ip)), "10.0.0.2");
	assert_int_equal(a.prefixlen, 32);
	assert_true(a.has_proto);
	assert_int_equal(a.proto, 66);
	assert_string_equal(a.label, "dummy0:vip");
	assert_int_equal(nl_parse_addr(addr_msg(RTM_NEWADDR, 7, "2001:db8::2/128", 0, NULL), &a),
			 0);
	assert_false(a.has_proto);
	assert_int_equal(a.flags & IFA_F_NODAD, IFA_F_NODAD);
	assert_int_equal(nl_parse_route(route_msg(RTM_NEWROUTE, 3, "10.0.0.2/32", 66), &r), 0);
	assert_int_equal(r.table, RT_TABLE_LOCAL);
	assert_int_equal(r.type, RTN_LOCAL);
	assert_int_equal(r.scope, RT_SCOPE_HOST);
	assert_int_equal(r.protocol, 66);
	assert_int_equal(r.oif, 3);
	assert_string_equal(ip_format(&r.dst, ip, sizeof(ip)), "10.0.0.2");
}

static void test_parse_rejects_malformed(void **state)
{
	struct nlmsghdr *nlh;
	struct nl_addr a;
	struct nl_link l;
	struct nlattr *attr;

	(void)state;
	/* Truncated family header. */
	nlh = addr_msg(RTM_NEWADDR, 7, "10.0.0.2/32", 0, NULL);
	nlh->nlmsg_len = MNL_NLMSG_HDRLEN + 4;
	assert_int_equal(nl_parse_addr(nlh, &a), -EBADMSG);
	/* An IPv4 message with a 16-byte address. */
	nlh = addr_msg(RTM_NEWADDR, 7, "10.0.0.2/32", 0, NULL);
	attr = (struct nlattr *)((char *)mnl_nlmsg_get_payload(nlh) + sizeof(struct ifaddrmsg));
	attr->nla_len = 4 + 16;
	nlh->nlmsg_len += 12;
	assert_int_equal(nl_parse_addr(nlh, &a), -EBADMSG);
	/* Prefix longer than the family allows. */
	nlh = addr_msg(RTM_NEWADDR, 7, "10.0.0.2/32", 0, NULL);
	((struct ifaddrmsg *)mnl_nlmsg_get_payload(nlh))->ifa_prefixlen = 33;
	assert_int_equal(nl_parse_addr(nlh, &a), -EBADMSG);
	/* An interface name without its NUL. */
	nlh = link_msg(RTM_NEWLINK, 7, 0, NULL, NULL);
	nlh->nlmsg_len = MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct ifinfomsg));
	mnl_attr_put(nlh, IFLA_IFNAME, 4, "eth0");
	assert_int_equal(nl_parse_link(nlh, &l), -EBADMSG);
	/* Wrong type for the parser. */
	assert_int_equal(nl_parse_link(addr_msg(RTM_NEWADDR, 7, "10.0.0.2/32", 0, NULL), &l),
			 -EBADMSG);
}

static void test_parse_error_extack(void **state)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(memset(buf, 0, sizeof(buf)));
	struct nlmsgerr *e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	const char *msg;
	int code;

	(void)state;
	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_flags = NLM_F_CAPPED | NLM_F_ACK_TLVS;
	e->error = -EOPNOTSUPP;
	e->msg.nlmsg_len = 200; /* the request, not echoed (capped) */
	mnl_attr_put_strz(nlh, NLMSGERR_ATTR_MSG, "Unknown device type");
	assert_int_equal(nl_parse_error(nlh, &code, &msg), 0);
	assert_int_equal(code, EOPNOTSUPP);
	assert_string_equal(msg, "Unknown device type");
	/* Not capped: the TLVs sit after the echoed request, which here claims to be huge. */
	nlh->nlmsg_flags = NLM_F_ACK_TLVS;
	e->msg.nlmsg_len = 0xffffff00u;
	assert_int_equal(nl_parse_error(nlh, &code, &msg), 0);
	assert_null(msg);
	/* A plain ACK. */
	nlh->nlmsg_flags = 0;
	e->error = 0;
	assert_int_equal(nl_parse_error(nlh, &code, &msg), 0);
	assert_int_equal(code, 0);
	nlh->nlmsg_len = MNL_NLMSG_HDRLEN + 2;
	assert_int_equal(nl_parse_error(nlh, &code, &msg), -EBADMSG);
}

static void test_address_mode_events(void **state)
{
	struct vip_config cfg = config("10.0.0.2/32", VIP_MODE_ADDRESS);
	struct vip_state st = {0};
	struct vip_plan plan;

	(void)state;
	/* Nothing yet: create the link, bring it up, add the VIP. */
	vip_plan_make(&st, &cfg, &plan);
	assert_true(plan.create_link && plan.set_up && plan.add_addr);
	assert_false(vip_in_place(&st, &cfg));

	assert_int_equal(APPLY(&st, &cfg, link_msg(RTM_NEWLINK, 5, IFF_UP, "dummy0", NULL)),
			 VIP_CAUSE_NONE);
	assert_int_equal(APPLY(&st, &cfg, addr_msg(RTM_NEWADDR, 5, "10.0.0.2/32", 66, NULL)),
			 VIP_CAUSE_NONE);
	assert_true(vip_in_place(&st, &cfg));
	vip_plan_make(&st, &cfg, &plan);
	assert_true(vip_plan_empty(&plan));

	/* Other interfaces and addresses do not matter. */
	assert_int_equal(APPLY(&st, &cfg, link_msg(RTM_NEWLINK, 9, 0, "eth0", NULL)),
			 VIP_CAUSE_NONE);
	assert_int_equal(APPLY(&st, &cfg, addr_msg(RTM_DELADDR, 9, "192.0.2.1/32", 0, NULL)),
			 VIP_CAUSE_NONE);
	assert_int_equal(APPLY(&st, &cfg, addr_msg(RTM_NEWADDR, 5, "192.0.2.1/32", 0, NULL)),
			 VIP_CAUSE_NONE);
	assert_int_equal(st.n_addrs, 1);

	/* VIP deleted. */
	assert_int_equal(APPLY(&st, &cfg, addr_msg(RTM_DELADDR, 5, "10.0.0.2/32", 66, NULL)),
			 VIP_CAUSE_ADDRESS_REMOVED);
	vip_plan_make(&st, &cfg, &plan);
	assert_true(plan.add_addr && !plan.set_up && !plan.create_link);
	APPLY(&st, &cfg, addr_msg(RTM_NEWADDR, 5, "10.0.0.2/32", 66, NULL));

	/* Link down: only bring it up (IPv4 addresses stay). */
	assert_int_equal(APPLY(&st, &cfg, link_msg(RTM_NEWLINK, 5, 0, "dummy0", NULL)),
			 VIP_CAUSE_LINK_DOWN);
	vip_plan_make(&st, &cfg, &plan);
	assert_true(plan.set_up && !plan.add_addr && !plan.create_link);
	/* Already down: a second down message is no new cause. */
	assert_int_equal(APPLY(&st, &cfg, link_msg(RTM_NEWLINK, 5, 0, "dummy0", NULL)),
			 VIP_CAUSE_NONE);
	APPLY(&st, &cfg, link_msg(RTM_NEWLINK, 5, IFF_UP, "dummy0", NULL));
	assert_true(vip_in_place(&st, &cfg));

	/* Link deleted: its addresses are forgotten with it. */
	assert_int_equal(APPLY(&st, &cfg, link_msg(RTM_DELLINK, 5, 0, "dummy0", NULL)),
			 VIP_CAUSE_LINK_REMOVED);
	assert_int_equal(st.ifindex, 0);
	assert_int_equal(st.n_addrs, 0);
	vip_plan_make(&st, &cfg, &plan);
	assert_true(plan.create_link && plan.set_up && plan.add_addr);

	/* Recreated with another index and renamed away. */
	APPLY(&st, &cfg, link_msg(RTM_NEWLINK, 6, IFF_UP, "dummy0", "vip-alias"));
	assert_true(st.link_ours);
	APPLY(&st, &cfg, addr_msg(RTM_NEWADDR, 6, "10.0.0.2/32", 66, NULL));
	assert_int_equal(APPLY(&st, &cfg, link_msg(RTM_NEWLINK, 6, IFF_UP, "old0", NULL)),
			 VIP_CAUSE_LINK_REMOVED);
	assert_false(vip_in_place(&st, &cfg));
	assert_int_equal(st.ignored_messages, 0);
}

static void test_ownership(void **state)
{
	struct vip_config cfg = config("10.0.0.2/32", VIP_MODE_ADDRESS);
	struct vip_config cfg6 = config("2001:db8::2/128", VIP_MODE_ADDRESS);
	struct vip_state st = {0};
	struct vip_plan plan;
	struct error err;

	(void)state;
	APPLY(&st, &cfg, link_msg(RTM_NEWLINK, 5, IFF_UP, "dummy0", NULL));
	/* The exact VIP without our mark is in place but not ours. */
	APPLY(&st, &cfg, addr_msg(RTM_NEWADDR, 5, "10.0.0.2/32", 0, NULL));
	assert_true(vip_in_place(&st, &cfg));
	assert_false(vip_addr_owned(&st, &cfg, &st.addrs[0]));
	/* Our IPv4 label marks it where the kernel has no IFA_PROTO. */
	APPLY(&st, &cfg, addr_msg(RTM_NEWADDR, 5, "10.0.0.2/32", 0, "dummy0:vip"));
	assert_true(vip_addr_owned(&st, &cfg, &st.addrs[0]));
	/* IFA_PROTO decides when present. */
	APPLY(&st, &cfg, addr_msg(RTM_NEWADDR, 5, "10.0.0.2/32", 3, "dummy0:vip"));
	assert_false(vip_addr_owned(&st, &cfg, &st.addrs[0]));
	assert_true(st.ifa_proto_supported);

	/* Owned addresses that are not the VIP go; foreign ones stay. */
	APPLY(&st, &cfg, addr_msg(RTM_NEWADDR, 5, "10.0.0.9/32", 66, NULL));
	APPLY(&st, &cfg, addr_msg(RTM_NEWADDR, 5, "10.0.0.10/32", 4, NULL));
	APPLY(&st, &cfg, addr_msg(RTM_NEWADDR, 8, "10.0.0.11/32", 66, NULL));
	vip_plan_make(&st, &cfg, &plan);
	assert_int_equal(plan.n_del, 2);
	assert_int_equal(plan.foreign_ifindex, 0);

	/* The VIP on another interface, not ours: a conflict at startup. */
	APPLY(&st, &cfg, addr_msg(RTM_NEWADDR, 8, "10.0.0.2/24", 0, NULL));
	vip_plan_make(&st, &cfg, &plan);
	assert_int_equal(plan.foreign_ifindex, 8);
	assert_int_equal(vip_check_conflicts(&st, &cfg, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "--vip 10.0.0.2/32: already an address on interface"));
	assert_non_null(strstr(err.msg, "(index 8)"));

	/* IPv6 on a kernel without IFA_PROTO: the exact VIP on our interface counts as ours. */
	memset(&st, 0, sizeof(st));
	APPLY(&st, &cfg6, link_msg(RTM_NEWLINK, 5, IFF_UP, "dummy0", NULL));
	APPLY(&st, &cfg6, addr_msg(RTM_NEWADDR, 5, "2001:db8::2/128", 0, NULL));
	assert_true(vip_addr_owned(&st, &cfg6, &st.addrs[0]));
	st.ifa_proto_supported = true;
	assert_false(vip_addr_owned(&st, &cfg6, &st.addrs[0]));
}

static void test_local_route_mode(void **state)
{
	struct vip_config cfg = config("10.0.0.2/32", VIP_MODE_LOCAL_ROUTE);
	struct vip_state st = {0};
	struct vip_plan plan;
	struct error err;

	(void)state;
	snprintf(cfg.ifname, sizeof(cfg.ifname), "eth0");
	vip_plan_make(&st, &cfg, &plan);
	assert_true(plan.wait_link);
	assert_true(vip_plan_empty(&plan));
	APPLY(&st, &cfg, link_msg(RTM_NEWLINK, 2, IFF_UP, "eth0", NULL));
	vip_plan_make(&st, &cfg, &plan);
	assert_true(plan.add_route && !plan.replace_route);

	/* Routes to other destinations or in other tables are not ours to track. */
	APPLY(&st, &cfg, route_msg(RTM_NEWROUTE, 2, "10.0.0.3/32", 66));
	APPLY(&st, &cfg, route_msg(RTM_NEWROUTE, 2, "10.0.0.2/31", 66));
	assert_int_equal(st.n_routes, 0);

	APPLY(&st, &cfg, route_msg(RTM_NEWROUTE, 2, "10.0.0.2/32", 66));
	assert_true(vip_in_place(&st, &cfg));
	vip_plan_make(&st, &cfg, &plan);
	assert_true(vip_plan_empty(&plan));
	assert_int_equal(APPLY(&st, &cfg, route_msg(RTM_DELROUTE, 2, "10.0.0.2/32", 66)),
			 VIP_CAUSE_ROUTE_REMOVED);

	/* Ours via another interface: replace. */
	APPLY(&st, &cfg, route_msg(RTM_NEWROUTE, 4, "10.0.0.2/32", 66));
	vip_plan_make(&st, &cfg, &plan);
	assert_true(plan.add_route && plan.replace_route);
	APPLY(&st, &cfg, route_msg(RTM_DELROUTE, 4, "10.0.0.2/32", 66));

	/* A foreign local route: in place, left alone, and a conflict at startup. */
	APPLY(&st, &cfg, route_msg(RTM_NEWROUTE, 4, "10.0.0.2/32", RTPROT_KERNEL));
	assert_true(vip_in_place(&st, &cfg));
	vip_plan_make(&st, &cfg, &plan);
	assert_true(plan.foreign_route && !plan.add_route);
	assert_int_equal(vip_check_conflicts(&st, &cfg, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "table local already has a route to it"));

	/* Link removed: its routes are forgotten (the kernel flushes them silently). */
	APPLY(&st, &cfg, route_msg(RTM_DELROUTE, 4, "10.0.0.2/32", RTPROT_KERNEL));
	APPLY(&st, &cfg, route_msg(RTM_NEWROUTE, 2, "10.0.0.2/32", 66));
	assert_int_equal(APPLY(&st, &cfg, link_msg(RTM_DELLINK, 2, 0, "eth0", NULL)),
			 VIP_CAUSE_LINK_REMOVED);
	assert_int_equal(st.n_routes, 0);
	vip_plan_make(&st, &cfg, &plan);
	assert_true(plan.wait_link);
}

static void test_feed_and_limits(void **state)
{
	static char stream[VIP_NL_BUFSIZE];
	struct vip_config cfg = config("10.0.0.2/32", VIP_MODE_ADDRESS);
	struct vip_state st = {0};
	size_t len = 0, two;
	struct nlmsghdr *nlh;
	char cidr[32];

	(void)state;
	/* Several messages in one datagram, as the kernel batches them. */
	nlh = link_msg(RTM_NEWLINK, 5, IFF_UP, "dummy0", NULL);
	memcpy(stream + len, nlh, nlh->nlmsg_len);
	len += MNL_ALIGN(nlh->nlmsg_len);
	nlh = addr_msg(RTM_NEWADDR, 5, "10.0.0.2/32", 66, NULL);
	memcpy(stream + len, nlh, nlh->nlmsg_len);
	len += MNL_ALIGN(nlh->nlmsg_len);
	two = len;
	nlh = addr_msg(RTM_DELADDR, 5, "10.0.0.2/32", 66, NULL);
	memcpy(stream + len, nlh, nlh->nlmsg_len);
	len += MNL_ALIGN(nlh->nlmsg_len);
	assert_int_equal(vip_state_feed(&st, &cfg, stream, len), VIP_CAUSE_ADDRESS_REMOVED);
	assert_int_equal(st.ifindex, 5);
	assert_int_equal(st.n_addrs, 0);
	/* A truncated tail is ignored, not read past. */
	assert_int_equal(vip_state_feed(&st, &cfg, stream, len - 3), VIP_CAUSE_NONE);
	assert_int_equal(nl_valid_length(stream, len), len);
	assert_int_equal(nl_valid_length(stream, len - 3), two);
	/* An nlmsg_len above INT_MAX (libmnl would take it as negative) ends the walk. */
	((struct nlmsghdr *)stream)->nlmsg_len = 0x80000010u;
	assert_int_equal(nl_valid_length(stream, len), 0);
	assert_int_equal(vip_state_feed(&st, &cfg, stream, len), VIP_CAUSE_NONE);

	/* More matching addresses than tracked: the overflow is flagged. */
	memset(&st, 0, sizeof(st));
	for (int i = 0; i < VIP_MAX_ADDRS + 2; i++) {
		snprintf(cidr, sizeof(cidr), "10.1.0.%d/32", i + 1);
		APPLY(&st, &cfg, addr_msg(RTM_NEWADDR, 5, cidr, 66, NULL));
	}
	assert_int_equal(st.n_addrs, VIP_MAX_ADDRS);
	assert_true(st.overflow);
	vip_state_reset(&st);
	assert_int_equal(st.n_addrs, 0);
	assert_true(st.ifa_proto_supported);
	assert_string_equal(vip_cause_name(VIP_CAUSE_LINK_DOWN), "link_down");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_roundtrip),
	    cmocka_unit_test(test_parse_rejects_malformed),
	    cmocka_unit_test(test_parse_error_extack),
	    cmocka_unit_test(test_address_mode_events),
	    cmocka_unit_test(test_ownership),
	    cmocka_unit_test(test_local_route_mode),
	    cmocka_unit_test(test_feed_and_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
