/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vip-alias netlink parsing: a datagram of rtnetlink messages as the monitor or command
 * socket would read it, through the parsers, the state and the plan. The first byte picks
 * the configuration (IPv4/IPv6, address/local-route mode), the rest is the datagram.
 */
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "agent/nl.h"
#include "agent/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vip_config configs[4];

static void init(void)
{
	static const char *const vips[] = {"10.0.0.2/32", "2001:db8::2/128"};
	static const char *const modes[] = {"address", "local-route"};
	struct error err;

	for (int i = 0; i < 4; i++) {
		char *argv[] = {
		    "vip-alias",           "--vip",       (char *)vips[i & 1],        "--mode",
		    (char *)modes[i >> 1], "--interface", i >> 1 ? "eth0" : "dummy0", NULL};

		if (vip_config_parse(&configs[i], 7, argv, NULL, &err) != VIP_CONFIG_RUN)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint32_t buf[VIP_NL_BUFSIZE / 4]; /* aligned, as a socket buffer would be */
	static int ready;
	const struct vip_config *cfg;
	const struct nlmsghdr *nlh;
	struct vip_state st;
	struct vip_plan plan;
	struct error err;
	int len;

	if (!ready) {
		init();
		ready = 1;
	}
	if (size < 1 || size - 1 > sizeof(buf))
		return 0;
	cfg = &configs[data[0] & 3];
	memcpy(buf, data + 1, size - 1);
	len = (int)nl_valid_length(buf, size - 1);

	/* Every parser on every message, whatever its type claims. */
	for (nlh = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, len);
	     nlh = mnl_nlmsg_next(nlh, &len)) {
		struct nl_link l;
		struct nl_addr a;
		struct nl_route r;
		const char *msg;
		int code;

		nl_parse_link(nlh, &l);
		nl_parse_addr(nlh, &a);
		nl_parse_route(nlh, &r);
		if (nl_parse_error(nlh, &code, &msg) == 0 && msg && strlen(msg) >= size)
			abort();
	}

	/* The daemon's path: the state from the datagram, then what it would do. */
	memset(&st, 0, sizeof(st));
	st.ifa_proto_supported = data[0] & 4;
	vip_state_feed(&st, cfg, buf, size - 1);
	if (st.n_addrs > VIP_MAX_ADDRS || st.n_routes > VIP_MAX_ROUTES)
		abort();
	vip_plan_make(&st, cfg, &plan);
	if (plan.n_del > st.n_addrs)
		abort();
	if (vip_in_place(&st, cfg) && !st.ifindex)
		abort();
	if (cfg->mode == VIP_MODE_ADDRESS && vip_in_place(&st, cfg) &&
	    (plan.add_addr || plan.set_up || plan.create_link))
		abort();
	if (plan.foreign_ifindex)
		vip_check_conflicts(&st, cfg, &err);
	return 0;
}
