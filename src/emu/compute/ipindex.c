/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IPv4 ranges in use in each VPC network: instances' primary addresses (networkIP, as /32)
 * and alias ranges. Addresses are unique within a network, whatever the subnet ("Alias IP
 * ranges ... must not conflict with ... other VMs' alias IP ranges",
 * https://cloud.google.com/vpc/docs/alias-ip), so one sorted array per network answers
 * "does [lo, hi] overlap anything?" in O(log n) and allocates /N blocks without scanning
 * JSON. Entries never overlap each other, which the overlap query relies on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"

struct range {
	uint32_t lo, hi;
	char *owner;
};

struct net {
	char *name;
	struct range *r; /* sorted by lo, disjoint */
	size_t len, cap;
};

struct ipindex {
	struct net *nets;
	size_t len, cap;
};

struct ipindex *ipindex_new(void)
{
	return calloc(1, sizeof(struct ipindex));
}

void ipindex_clear(struct ipindex *x)
{
	for (size_t i = 0; i < x->len; i++) {
		for (size_t j = 0; j < x->nets[i].len; j++)
			free(x->nets[i].r[j].owner);
		free(x->nets[i].r);
		free(x->nets[i].name);
	}
	free(x->nets);
	x->nets = NULL;
	x->len = x->cap = 0;
}

void ipindex_free(struct ipindex *x)
{
	if (!x)
		return;
	ipindex_clear(x);
	free(x);
}

static struct net *find_net(const struct ipindex *x, const char *network)
{
	for (size_t i = 0; i < x->len; i++)
		if (strcmp(x->nets[i].name, network) == 0)
			return &x->nets[i];
	return NULL;
}

/* First index whose lo >= value. */
static size_t lower(const struct net *n, uint32_t value)
{
	size_t a = 0, b = n->len;

	while (a < b) {
		size_t m = a + (b - a) / 2;

		if (n->r[m].lo < value)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

/* The entry overlapping [lo, hi] (the one before lo may reach into it), or NULL. */
static const struct range *overlap(const struct net *n, uint32_t lo, uint32_t hi,
				   const char *ignore_owner)
{
	size_t i = lower(n, lo);

	if (i > 0 && n->r[i - 1].hi >= lo &&
	    (!ignore_owner || strcmp(n->r[i - 1].owner, ignore_owner) != 0))
		return &n->r[i - 1];
	for (; i < n->len && n->r[i].lo <= hi; i++)
		if (!ignore_owner || strcmp(n->r[i].owner, ignore_owner) != 0)
			return &n->r[i];
	return NULL;
}

const char *ipindex_overlap(const struct ipindex *x, const char *network, uint32_t lo, uint32_t hi,
			    const char *ignore_owner)
{
	const struct net *n = find_net(x, network);
	const struct range *r = n ? overlap(n, lo, hi, ignore_owner) : NULL;

	return r ? r->owner : NULL;
}

int ipindex_add(struct ipindex *x, const char *network, uint32_t lo, uint32_t hi, const char *owner)
{
	struct net *n = find_net(x, network);
	size_t i;

	if (!n) {
		if (x->len == x->cap) {
			size_t ncap = x->cap ? x->cap * 2 : 4;
			struct net *nn = realloc(x->nets, ncap * sizeof(*nn));

			if (!nn)
				return -ENOMEM;
			x->nets = nn;
			x->cap = ncap;
		}
		n = &x->nets[x->len];
		*n = (struct net){.name = strdup(network)};
		if (!n->name)
			return -ENOMEM;
		x->len++;
	}
	if (overlap(n, lo, hi, NULL))
		return -EEXIST;
	if (n->len == n->cap) {
		size_t ncap = n->cap ? n->cap * 2 : 64;
		struct range *nr = realloc(n->r, ncap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		n->r = nr;
		n->cap = ncap;
	}
	i = lower(n, lo);
	memmove(&n->r[i + 1], &n->r[i], (n->len - i) * sizeof(n->r[0]));
	n->r[i] = (struct range){.lo = lo, .hi = hi, .owner = strdup(owner)};
	if (!n->r[i].owner) {
		memmove(&n->r[i], &n->r[i + 1], (n->len - i) * sizeof(n->r[0]));
		return -ENOMEM;
	}
	n->len++;
	return 0;
}

void ipindex_remove_owner(struct ipindex *x, const char *network, const char *owner)
{
	struct net *n = find_net(x, network);
	size_t w = 0;

	if (!n)
		return;
	for (size_t i = 0; i < n->len; i++) {
		if (strcmp(n->r[i].owner, owner) == 0) {
			free(n->r[i].owner);
			continue;
		}
		n->r[w++] = n->r[i];
	}
	n->len = w;
}

static bool hits_extra(uint32_t lo, uint32_t hi, const uint32_t *extra, size_t nextra,
		       uint32_t *next)
{
	for (size_t i = 0; i < nextra; i++) {
		if (extra[2 * i] <= hi && extra[2 * i + 1] >= lo) {
			*next = extra[2 * i + 1];
			return true;
		}
	}
	return false;
}

int ipindex_alloc(const struct ipindex *x, const char *network, uint32_t range_lo,
		  uint32_t range_hi, unsigned prefix, const char *ignore_owner,
		  const uint32_t *extra, size_t nextra, uint32_t *out)
{
	const struct net *n = find_net(x, network);
	uint64_t size = 1ull << (32 - prefix), cand;
	size_t i = 0;

	/*
	 * Aligned candidates in address order; the ranges are walked once, in order, so a
	 * run of n taken addresses costs O(n), not O(n log n) per candidate.
	 */
	cand = ((uint64_t)range_lo + size - 1) & ~(size - 1);
	if (n) {
		i = lower(n, (uint32_t)(cand > UINT32_MAX ? UINT32_MAX : cand));
		if (i > 0)
			i--;
	}
	while (cand + size - 1 <= range_hi) {
		uint64_t hi = cand + size - 1;
		uint32_t next;
		bool blocked = false;

		for (; n && i < n->len && n->r[i].lo <= hi; i++) {
			if (n->r[i].hi < cand ||
			    (ignore_owner && strcmp(n->r[i].owner, ignore_owner) == 0))
				continue;
			blocked = true;
			next = n->r[i].hi;
			break;
		}
		if (!blocked && !hits_extra((uint32_t)cand, (uint32_t)hi, extra, nextra, &next)) {
			*out = (uint32_t)cand;
			return 0;
		}
		cand = (((uint64_t)next + 1) + size - 1) & ~(size - 1);
	}
	return -ENOSPC;
}

void ipindex_remove_range(struct ipindex *x, const char *network, uint32_t lo, uint32_t hi,
			  const char *owner)
{
	struct net *n = find_net(x, network);
	size_t i;

	if (!n)
		return;
	i = lower(n, lo);
	if (i < n->len && n->r[i].lo == lo && n->r[i].hi == hi &&
	    strcmp(n->r[i].owner, owner) == 0) {
		free(n->r[i].owner);
		memmove(&n->r[i], &n->r[i + 1], (n->len - i - 1) * sizeof(n->r[0]));
		n->len--;
	}
}
