/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What vip-alias knows of the kernel, built from dumps and kept current from the monitor
 * socket, and the plan that brings it back to the desired state. Pure: no sockets here, so
 * the unit tests and the fuzzer drive it with crafted messages.
 *
 * Only what matters is kept: the configured link, every address equal to the VIP or owned
 * by us (on any interface), and the table-local routes to exactly the VIP.
 */
#ifndef TALOS_GCP_AGENT_STATE_H
#define TALOS_GCP_AGENT_STATE_H

#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "common/cidr.h"

#define VIP_MAX_ADDRS  16
#define VIP_MAX_ROUTES 8

struct vip_addr_entry {
	int ifindex;
	struct ip_addr addr;
	uint8_t prefixlen;
	bool has_proto;
	uint8_t proto;
	bool label_ours; /* IPv4 label "<ifname>:vip" */
};

struct vip_route_entry {
	int oif;
	uint8_t protocol;
	uint8_t type;
	uint8_t tos;
	uint32_t priority;
};

struct vip_state {
	int ifindex; /* of the configured interface; 0 while it does not exist */
	unsigned ifflags;
	bool link_ours; /* IFLA_IFALIAS says we created it */
	char link_kind[16];
	struct vip_addr_entry addrs[VIP_MAX_ADDRS];
	unsigned n_addrs;
	struct vip_route_entry routes[VIP_MAX_ROUTES];
	unsigned n_routes;
	bool overflow;             /* a table was full: resync rather than trust it */
	bool ifa_proto_supported;  /* the kernel keeps IFA_PROTO (seen, or Linux >= 6.1) */
	unsigned ignored_messages; /* malformed messages skipped */
};

/* What took the VIP away, for logs and vip_alias_restores_total{cause}. */
enum vip_cause {
	VIP_CAUSE_NONE = 0,
	VIP_CAUSE_ADDRESS_REMOVED,
	VIP_CAUSE_LINK_DOWN,
	VIP_CAUSE_LINK_REMOVED,
	VIP_CAUSE_ROUTE_REMOVED,
	VIP_CAUSE_RESYNC, /* found missing by a resync: an event was lost */
	VIP_CAUSE_COUNT,
};

const char *vip_cause_name(enum vip_cause cause);

/* Forgets everything (before a resync); keeps ifa_proto_supported. */
void vip_state_reset(struct vip_state *st);

/*
 * Applies one rtnetlink message (a dump reply or a notification). Returns the cause when
 * the message took away something the desired state needs, else VIP_CAUSE_NONE. Messages of
 * other types are ignored; malformed ones are counted in ignored_messages.
 */
enum vip_cause vip_state_apply(struct vip_state *st, const struct vip_config *cfg,
			       const struct nlmsghdr *nlh);

/*
 * Runs vip_state_apply over a buffer of netlink messages as read from a socket. Returns
 * the first cause seen (VIP_CAUSE_NONE if none). Stops at NLMSG_DONE or a truncated message.
 */
enum vip_cause vip_state_feed(struct vip_state *st, const struct vip_config *cfg, const void *buf,
			      size_t len);

/* Records what a request just did, before its notification arrives (which then confirms). */
void vip_state_note_addr(struct vip_state *st, const struct vip_addr_entry *e, bool present);
void vip_state_note_route(struct vip_state *st, const struct vip_route_entry *e, bool present);

/* Is the address entry ours: IFA_PROTO 66, else our IPv4 label, else (IPv6 on kernels
 * without IFA_PROTO) exactly the VIP on the configured interface. */
bool vip_addr_owned(const struct vip_state *st, const struct vip_config *cfg,
		    const struct vip_addr_entry *e);

/* The VIP is in place: traffic to it is delivered locally the way the mode wants. */
bool vip_in_place(const struct vip_state *st, const struct vip_config *cfg);

struct vip_plan {
	bool wait_link;   /* local-route mode: the interface is missing, nothing to do */
	bool create_link; /* address mode */
	bool set_up;      /* address mode */
	bool add_addr;
	bool add_route;
	bool replace_route;  /* our route exists but via another interface */
	int foreign_ifindex; /* address mode: the VIP is also on this interface, not ours */
	bool foreign_route;  /* local-route mode: a route to the VIP that is not ours */
	unsigned n_del;      /* owned addresses that are not the VIP: remove */
	struct vip_addr_entry del[VIP_MAX_ADDRS];
};

void vip_plan_make(const struct vip_state *st, const struct vip_config *cfg, struct vip_plan *plan);
bool vip_plan_empty(const struct vip_plan *plan);

/*
 * Startup conflicts: the VIP held by someone else where we would put it. 0, or -EEXIST
 * with a one-line message in err (the agent then exits 2 without changing anything).
 */
int vip_check_conflicts(const struct vip_state *st, const struct vip_config *cfg,
			struct error *err);

#endif
