/* SPDX-License-Identifier: Apache-2.0 */
/* vip-alias flags and their environment variables (the DaemonSet sets the latter). */
#ifndef TALOS_GCP_AGENT_CONFIG_H
#define TALOS_GCP_AGENT_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/cidr.h"
#include "common/error.h"

enum vip_mode {
	VIP_MODE_ADDRESS = 0, /* the VIP as an address on a dummy interface */
	VIP_MODE_LOCAL_ROUTE, /* "local VIP dev IF table local scope host proto 66" */
};

struct vip_config {
	struct cidr vip; /* /32 or /128 */
	char ifname[IFNAMSIZ];
	enum vip_mode mode;
	bool metrics_enabled;
	struct sockaddr_storage metrics_addr;
	socklen_t metrics_addr_len;
	uint64_t resync_ms; /* 0: no periodic resync */
	bool cleanup_on_exit;
	bool once;
	bool verbose;
	/*
	 * Link kind created in address mode: "dummy". Hidden and for tests only
	 * (--link-kind): the test kernel has no dummy type, so the tests create a veth.
	 */
	char link_kind[16];
	/* IPv4 label marking our address where the kernel has no IFA_PROTO; "" if too long. */
	char label[IFNAMSIZ];
};

enum vip_config_result {
	VIP_CONFIG_RUN = 0,
	VIP_CONFIG_EXIT = 1, /* --help or --version printed: exit 0 */
};

/*
 * Parses argv (flags win) over the environment read through getenv_fn (NULL: no
 * environment). Returns VIP_CONFIG_RUN, VIP_CONFIG_EXIT, or -EINVAL with a one-line error
 * naming the flag or variable in err.
 */
int vip_config_parse(struct vip_config *cfg, int argc, char *const argv[],
		     const char *(*getenv_fn)(const char *name), struct error *err);

const char *vip_mode_name(enum vip_mode mode);
/* Kernel rule for interface names: 1-15 bytes, not "." or "..", no '/', ':' or space. */
bool vip_ifname_valid(const char *name);

#endif
