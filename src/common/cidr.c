/* SPDX-License-Identifier: Apache-2.0 */
#include "common/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static unsigned family_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

static size_t family_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static int ip_parse_n(const char *s, size_t len, struct ip_addr *out)
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct ip_addr ip = {0};

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	/* inet_pton would stop at nothing odd, but be explicit: only hex digits, '.' and ':'. */
	for (size_t i = 0; i < len; i++) {
		char ch = buf[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
		      (ch >= 'A' && ch <= 'F') || ch == '.' || ch == ':'))
			return -EINVAL;
	}
	if (memchr(buf, ':', len)) {
		ip.family = AF_INET6;
		if (inet_pton(AF_INET6, buf, ip.bytes) != 1)
			return -EINVAL;
	} else {
		/* glibc's inet_pton refuses leading zeros ("010.0.0.1"), as Go's netip does. */
		ip.family = AF_INET;
		if (inet_pton(AF_INET, buf, ip.bytes) != 1)
			return -EINVAL;
	}
	*out = ip;
	return 0;
}

int ip_parse(const char *s, struct ip_addr *out)
{
	if (!s)
		return -EINVAL;
	return ip_parse_n(s, strlen(s), out);
}

static bool host_bits_set(const struct cidr *c)
{
	size_t n = family_len(c->addr.family);

	for (size_t i = 0; i < n; i++) {
		unsigned bit0 = (unsigned)i * 8;
		uint8_t mask;

		if (bit0 + 8 <= c->prefix)
			continue;
		mask = bit0 >= c->prefix ? 0xff : (uint8_t)(0xff >> (c->prefix - bit0));
		if (c->addr.bytes[i] & mask)
			return true;
	}
	return false;
}

void cidr_mask(struct cidr *c)
{
	size_t n = family_len(c->addr.family);

	for (size_t i = 0; i < n; i++) {
		unsigned bit0 = (unsigned)i * 8;

		if (bit0 + 8 <= c->prefix)
			continue;
		if (bit0 >= c->prefix)
			c->addr.bytes[i] = 0;
		else
			c->addr.bytes[i] &= (uint8_t)(0xff << (8 - (c->prefix - bit0)));
	}
}

int cidr_parse_n(const char *s, size_t len, struct cidr *out, unsigned flags)
{
	const char *slash;
	struct cidr c = {0};
	unsigned prefix = 0;
	size_t iplen, plen;
	int ret;

	if (!s)
		return -EINVAL;
	slash = memchr(s, '/', len);
	iplen = slash ? (size_t)(slash - s) : len;
	ret = ip_parse_n(s, iplen, &c.addr);
	if (ret < 0)
		return ret;
	if (!slash) {
		if (!(flags & CIDR_ALLOW_BARE_IP))
			return -EINVAL;
		c.prefix = family_bits(c.addr.family);
		*out = c;
		return 0;
	}
	plen = len - iplen - 1;
	if (plen == 0 || plen > 3 || (plen > 1 && slash[1] == '0'))
		return -EINVAL;
	for (size_t i = 1; i <= plen; i++) {
		if (slash[i] < '0' || slash[i] > '9')
			return -EINVAL;
		prefix = prefix * 10 + (unsigned)(slash[i] - '0');
	}
	if (prefix > family_bits(c.addr.family))
		return -EINVAL;
	c.prefix = prefix;
	if (host_bits_set(&c)) {
		if (flags & CIDR_MASK_HOST_BITS)
			cidr_mask(&c);
		else if (flags & CIDR_STRICT)
			return -EDOM;
	}
	*out = c;
	return 0;
}

int cidr_parse(const char *s, struct cidr *out, unsigned flags)
{
	if (!s)
		return -EINVAL;
	return cidr_parse_n(s, strlen(s), out, flags);
}

const char *ip_format(const struct ip_addr *ip, char *buf, size_t len)
{
	if (!inet_ntop(ip->family == AF_INET ? AF_INET : AF_INET6, ip->bytes, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

const char *cidr_format(const struct cidr *c, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	snprintf(buf, len, "%s/%u", ip_format(&c->addr, ip, sizeof(ip)), c->prefix);
	return buf;
}

bool ip_equal(const struct ip_addr *a, const struct ip_addr *b)
{
	return a->family == b->family && memcmp(a->bytes, b->bytes, family_len(a->family)) == 0;
}

bool cidr_equal(const struct cidr *a, const struct cidr *b)
{
	return a->prefix == b->prefix && ip_equal(&a->addr, &b->addr);
}

int cidr_compare(const struct cidr *a, const struct cidr *b)
{
	int r;

	if (a->addr.family != b->addr.family)
		return a->addr.family == AF_INET ? -1 : 1;
	r = memcmp(a->addr.bytes, b->addr.bytes, family_len(a->addr.family));
	if (r)
		return r < 0 ? -1 : 1;
	if (a->prefix != b->prefix)
		return a->prefix < b->prefix ? -1 : 1;
	return 0;
}

/* True when the first `bits` bits of x and y agree. */
static bool prefix_equal(const uint8_t *x, const uint8_t *y, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(x, y, full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((x[full] & mask) != (y[full] & mask))
			return false;
	}
	return true;
}

bool cidr_contains_ip(const struct cidr *c, const struct ip_addr *ip)
{
	return c->addr.family == ip->family && prefix_equal(c->addr.bytes, ip->bytes, c->prefix);
}

bool cidr_contains(const struct cidr *outer, const struct cidr *inner)
{
	return outer->addr.family == inner->addr.family && outer->prefix <= inner->prefix &&
	       prefix_equal(outer->addr.bytes, inner->addr.bytes, outer->prefix);
}

bool cidr_overlaps(const struct cidr *a, const struct cidr *b)
{
	unsigned bits = a->prefix < b->prefix ? a->prefix : b->prefix;

	return a->addr.family == b->addr.family && prefix_equal(a->addr.bytes, b->addr.bytes, bits);
}

unsigned cidr_max_prefix(const struct cidr *c)
{
	return family_bits(c->addr.family);
}

uint64_t cidr_subnet_count(const struct cidr *parent, unsigned new_prefix)
{
	unsigned extra;

	if (new_prefix < parent->prefix || new_prefix > family_bits(parent->addr.family))
		return 0;
	extra = new_prefix - parent->prefix;
	return extra >= 64 ? UINT64_MAX : (uint64_t)1 << extra;
}

int cidr_subnet(const struct cidr *parent, unsigned new_prefix, uint64_t index, struct cidr *out)
{
	struct cidr c = *parent;
	unsigned extra;

	if (new_prefix < parent->prefix || new_prefix > family_bits(parent->addr.family))
		return -EINVAL;
	extra = new_prefix - parent->prefix;
	if (extra < 64 && index >= ((uint64_t)1 << extra))
		return -ERANGE;
	cidr_mask(&c);
	c.prefix = new_prefix;
	/* Add index << (bits - new_prefix) to the address, big-endian, carrying left. */
	{
		unsigned shift = family_bits(c.addr.family) - new_prefix;
		int byte = (int)family_len(c.addr.family) - 1 - (int)(shift / 8);
		unsigned bit = shift % 8;
		unsigned __int128 carry = (unsigned __int128)index << bit;

		for (; byte >= 0 && carry; byte--) {
			unsigned sum = c.addr.bytes[byte] + (unsigned)(carry & 0xff);
			c.addr.bytes[byte] = (uint8_t)sum;
			carry = (carry >> 8) + (sum >> 8);
		}
	}
	*out = c;
	return 0;
}
