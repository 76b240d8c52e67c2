/* SPDX-License-Identifier: Apache-2.0 */
/* IPv4/IPv6 addresses and CIDR ranges: strict parsing, formatting and set relations. */
#ifndef TALOS_GCP_COMMON_CIDR_H
#define TALOS_GCP_COMMON_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ip_addr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t bytes[16];
};

struct cidr {
	struct ip_addr addr;
	unsigned prefix;
};

/* Longest text form: an IPv6 address, '/', three digits, NUL. */
#define CIDR_STRLEN 50

enum cidr_parse_flags {
	/* Host bits must be zero ("10.0.0.1/24" is refused), as Kubernetes and GCP require. */
	CIDR_STRICT = 1 << 0,
	/* A bare address means a host route (/32 or /128). */
	CIDR_ALLOW_BARE_IP = 1 << 1,
	/* Host bits are silently cleared (only for ranges we compute, never for input). */
	CIDR_MASK_HOST_BITS = 1 << 2,
};

/* Dotted-quad or RFC 4291 text. No leading zeros, no spaces, no zone index. 0 or -EINVAL. */
int ip_parse(const char *s, struct ip_addr *out);
/* "addr/len". 0, -EINVAL (syntax) or -EDOM (host bits set with CIDR_STRICT). */
int cidr_parse(const char *s, struct cidr *out, unsigned flags);
/* Bounded-length variant for text that is not NUL-terminated (fuzzers, JSON). */
int cidr_parse_n(const char *s, size_t len, struct cidr *out, unsigned flags);

const char *ip_format(const struct ip_addr *ip, char *buf, size_t len);
const char *cidr_format(const struct cidr *c, char *buf, size_t len);

bool ip_equal(const struct ip_addr *a, const struct ip_addr *b);
bool cidr_equal(const struct cidr *a, const struct cidr *b);
/* Orders by family, then address, then prefix (shorter first). */
int cidr_compare(const struct cidr *a, const struct cidr *b);
bool cidr_contains_ip(const struct cidr *c, const struct ip_addr *ip);
/* outer contains every address of inner. */
bool cidr_contains(const struct cidr *outer, const struct cidr *inner);
bool cidr_overlaps(const struct cidr *a, const struct cidr *b);
/* Clears the host bits. */
void cidr_mask(struct cidr *c);
/* Max prefix length for the family: 32 or 128. */
unsigned cidr_max_prefix(const struct cidr *c);
/*
 * The index-th subnet of length new_prefix inside parent (0-based, in address order).
 * 0, -EINVAL (new_prefix shorter than parent's or too long) or -ERANGE (index past the end).
 */
int cidr_subnet(const struct cidr *parent, unsigned new_prefix, uint64_t index, struct cidr *out);
/* How many subnets of new_prefix fit in parent, saturating at UINT64_MAX. */
uint64_t cidr_subnet_count(const struct cidr *parent, unsigned new_prefix);

#endif
