/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rtnetlink messages vip-alias sends and reads: builders that fill a caller's buffer and
 * parsers that validate every attribute (their input comes from the kernel, but the parsers
 * are fuzzed as if it came from anyone).
 */
#ifndef TALOS_GCP_AGENT_NL_H
#define TALOS_GCP_AGENT_NL_H

#include <linux/netlink.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cidr.h"

/* Route protocol of the local route: the guest agent's, so both recognise the same route. */
#define VIP_RTPROT 66
/* Address protocol (IFA_PROTO, Linux 6.1+) marking the addresses vip-alias owns. */
#define VIP_IFAPROT 66
/* IPv4 label fallback: "<ifname>:vip" marks the address where IFA_PROTO is missing. */
#define VIP_LABEL_SUFFIX ":vip"
/* IFLA_IFALIAS of a link vip-alias created (so --cleanup-on-exit may delete it). */
#define VIP_LINK_ALIAS "vip-alias"
/* Attribute number of IFA_PROTO, for headers older than Linux 6.1. */
#define VIP_IFA_PROTO_ATTR 11

/* Big enough for any request we build and for one datagram of a dump. */
#define VIP_NL_BUFSIZE 32768

struct nl_link {
	int ifindex;
	unsigned flags; /* IFF_* */
	char ifname[IFNAMSIZ];
	char ifalias[64]; /* empty when absent */
	char kind[16];    /* IFLA_INFO_KIND, empty when absent */
};

struct nl_addr {
	int ifindex;
	struct ip_addr addr; /* IFA_LOCAL, or IFA_ADDRESS when there is no IFA_LOCAL */
	uint8_t prefixlen;
	uint8_t scope;
	uint32_t flags; /* IFA_FLAGS when present, else ifa_flags */
	bool has_proto;
	uint8_t proto;
	char label[IFNAMSIZ]; /* IPv4 only; empty when absent */
};

struct nl_route {
	int family;
	struct ip_addr dst; /* all zero when RTA_DST is absent */
	uint8_t dst_len;
	uint8_t tos;
	uint8_t protocol;
	uint8_t scope;
	uint8_t type;
	uint32_t table; /* RTA_TABLE when present, else rtm_table */
	uint32_t priority;
	int oif;
};

/*
 * How many leading bytes of buf hold whole messages. libmnl's own walk takes an nlmsg_len
 * above INT_MAX for a negative one and steps out of the buffer; every buffer is cut to this
 * length before libmnl walks it.
 */
size_t nl_valid_length(const void *buf, size_t len);

/* Parsers: 0, or -EBADMSG (truncated, wrong type or malformed attribute). */
int nl_parse_link(const struct nlmsghdr *nlh, struct nl_link *out);
int nl_parse_addr(const struct nlmsghdr *nlh, struct nl_addr *out);
int nl_parse_route(const struct nlmsghdr *nlh, struct nl_route *out);
/*
 * NLMSG_ERROR: *code is the positive errno (0 for an ACK); *msg the kernel's extended-ACK
 * text when there is one (pointing into the message), else NULL. 0 or -EBADMSG.
 */
int nl_parse_error(const struct nlmsghdr *nlh, int *code, const char **msg);

/*
 * Builders. Each writes one request at the start of buf (VIP_NL_BUFSIZE bytes) with the
 * given sequence number and returns it. Flags other than NLM_F_REQUEST|NLM_F_ACK are the
 * caller's (NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE).
 */
struct nlmsghdr *nl_build_getlink(void *buf, uint32_t seq, const char *ifname);
struct nlmsghdr *nl_build_newlink(void *buf, uint32_t seq, const char *ifname, const char *kind);
/* Sets IFF_UP (and, when alias is not NULL, IFLA_IFALIAS) on an existing link. */
struct nlmsghdr *nl_build_setlink_up(void *buf, uint32_t seq, int ifindex, const char *alias);
struct nlmsghdr *nl_build_dellink(void *buf, uint32_t seq, int ifindex);
/* Dumps: family AF_UNSPEC for both. With strict checking the kernel filters for us. */
struct nlmsghdr *nl_build_getaddr_dump(void *buf, uint32_t seq, int ifindex);
struct nlmsghdr *nl_build_getroute_dump(void *buf, uint32_t seq, int family, uint32_t table);
/*
 * RTM_NEWADDR / RTM_DELADDR for addr/prefixlen on ifindex. For RTM_NEWADDR: IFA_PROTO when
 * proto is not 0, IFA_LABEL when label is not NULL (IPv4 only), IFA_F_NODAD for IPv6.
 */
struct nlmsghdr *nl_build_addr(void *buf, uint32_t seq, uint16_t type, uint16_t flags, int ifindex,
			       const struct ip_addr *addr, uint8_t prefixlen, uint8_t proto,
			       const char *label);
/* RTM_NEWROUTE / RTM_DELROUTE: "local DST dev OIF table local scope host proto PROTOCOL". */
struct nlmsghdr *nl_build_local_route(void *buf, uint32_t seq, uint16_t type, uint16_t flags,
				      int oif, const struct ip_addr *dst, uint8_t dst_len,
				      uint8_t protocol);

/* "RTM_NEWADDR" etc., for logs; "type-N" for others (static buffer: single-threaded use). */
const char *nl_type_name(uint16_t type);

#endif
