/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers without dependencies (the fuzz harnesses link them alone): IPv4 text and
 * ranges, GCE's MACs, lookups in the model and in the materialised instances. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "emu/dataplane/dataplane.h"

const char *dp_ip_str(uint32_t ip, char *buf)
{
	uint32_t be = htonl(ip);

	return inet_ntop(AF_INET, &be, buf, 16) ? buf : "?";
}

int dp_ip_parse(const char *s, uint32_t *ip)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*ip = ntohl(a.s_addr);
	return 0;
}

int dp_cidr_parse(const char *s, struct dp_range *r)
{
	char buf[32];
	const char *slash;
	char *end;
	long plen = 32;
	uint32_t ip;

	if (!s)
		return -EINVAL;
	slash = strchr(s, '/');
	if (slash) {
		if ((size_t)(slash - s) >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, s, (size_t)(slash - s));
		buf[slash - s] = '\0';
		plen = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || plen < 0 || plen > 32)
			return -EINVAL;
		s = buf;
	}
	if (dp_ip_parse(s, &ip) < 0)
		return -EINVAL;
	r->plen = (uint8_t)plen;
	r->lo = plen ? ip & (uint32_t)(0xffffffffu << (32 - plen)) : 0;
	return 0;
}

void dp_mac_of(uint32_t ip, uint8_t mac[6])
{
	/* GCE derives a NIC's MAC from its address: 42:01:0a:80:00:02 for 10.128.0.2. */
	mac[0] = 0x42;
	mac[1] = 0x01;
	mac[2] = (uint8_t)(ip >> 24);
	mac[3] = (uint8_t)(ip >> 16);
	mac[4] = (uint8_t)(ip >> 8);
	mac[5] = (uint8_t)ip;
}

int dp_want_inst_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dp_want_inst *)a)->key, ((const struct dp_want_inst *)b)->key);
}

const struct dp_want_inst *dp_model_inst(const struct dp_model *m, const char *key)
{
	struct dp_want_inst k = {.key = (char *)key};

	return m->ninsts ? bsearch(&k, m->insts, m->ninsts, sizeof(k), dp_want_inst_cmp) : NULL;
}

struct dp_inst *dp_inst_find(struct emu_dataplane *dp, const char *key)
{
	size_t a = 0, b = dp->ninsts;

	while (a < b) {
		size_t m = a + (b - a) / 2;
		int r = strcmp(dp->insts[m]->key, key);

		if (r == 0)
			return dp->insts[m];
		if (r < 0)
			a = m + 1;
		else
			b = m;
	}
	return NULL;
}
