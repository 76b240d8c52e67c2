/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VPC's nftables ruleset from any firewall rules, instances and forwarding rules
 * (dataplane/firewall.c): no crash, and text nft can take: printable, braces balanced,
 * quotes paired on every line. Input: JSON
 *   {"instances": [{"ip", "aliases": [CIDR], "tags": [..], "serviceAccounts": [{"email"}],
 *                   "canIpForward", "natIP", "net"}],
 *    "firewalls": [Firewall resources, with "net"],
 *    "rules": [{"ip", "external", "proto", "ports": [[lo, hi]], "backends": [index]}]}
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/dataplane/dataplane.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* firewall.c enters the VPC's namespace only to apply a ruleset: never here. */
int dp_netns_enter(int nsfd)
{
	(void)nsfd;
	abort();
}

void dp_netns_leave(void)
{
	abort();
}

static uint32_t ip_of(const json_t *v)
{
	uint32_t ip = 0;

	if (dp_ip_parse(json_string_value(v), &ip) < 0)
		ip = 0;
	return ip;
}

static void check(const char *text)
{
	long depth = 0;
	size_t quotes = 0;

	for (const char *p = text; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch < 0x20 && ch != '\n' && ch != '\t')
			abort();
		if (ch == '{')
			depth++;
		if (ch == '}' && --depth < 0)
			abort();
		if (ch == '"')
			quotes++;
		if (ch == '\n' && quotes % 2)
			abort();
	}
	if (depth != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = json_loadb((const char *)data, size, 0, NULL), *v;
	struct emu_dataplane dp = {0};
	struct dp_model m = {0};
	struct dp_inst *insts[16], store[16];
	char keys[16][16];
	size_t i, n;
	char *text;

	if (!json_is_object(doc)) {
		json_decref(doc);
		return 0;
	}
	n = json_array_size(json_object_get(doc, "instances"));
	n = n > 16 ? 16 : n;
	m.insts = calloc(n ? n : 1, sizeof(*m.insts));
	m.fw = calloc(json_array_size(json_object_get(doc, "firewalls")) + 1, sizeof(*m.fw));
	m.rules = calloc(json_array_size(json_object_get(doc, "rules")) + 1, sizeof(*m.rules));
	if (!m.insts || !m.fw || !m.rules)
		goto cleanup;
	for (i = 0; i < n; i++) {
		json_t *in = json_array_get(json_object_get(doc, "instances"), i), *a;
		struct dp_want_inst *w = &m.insts[m.ninsts++];
		size_t k;

		snprintf(keys[i], sizeof(keys[i]), "zones/z/i%02zu", i);
		w->key = keys[i];
		w->url = keys[i];
		w->ip = ip_of(json_object_get(in, "ip"));
		w->net = (unsigned)json_integer_value(json_object_get(in, "net"));
		w->nat_ip = ip_of(json_object_get(in, "natIP"));
		w->can_ip_forward = json_is_true(json_object_get(in, "canIpForward"));
		w->tags = json_object_get(in, "tags");
		w->sas = json_object_get(in, "serviceAccounts");
		w->aliases = calloc(json_array_size(json_object_get(in, "aliases")) + 1,
				    sizeof(*w->aliases));
		json_array_foreach(json_object_get(in, "aliases"), k,
				   a) if (w->aliases && dp_cidr_parse(json_string_value(a),
								      &w->aliases[w->naliases]) ==
							    0) w->naliases++;
		store[i] = (struct dp_inst){
		    .key = keys[i], .nsfd = 1, .id = (unsigned)i + 1, .net = w->net};
		snprintf(store[i].ifname, sizeof(store[i].ifname), "v%zu", i + 1);
		insts[i] = &store[i];
	}
	dp.insts = insts;
	dp.ninsts = n;
	json_array_foreach(json_object_get(doc, "firewalls"), i, v)
	{
		struct dp_fw_rule *f = &m.fw[m.nfw++];

		f->res = v;
		f->net = (unsigned)json_integer_value(json_object_get(v, "net"));
		f->priority = (int)json_integer_value(json_object_get(v, "priority"));
		f->ingress = !json_is_string(json_object_get(v, "direction")) ||
			     strcmp(json_string_value(json_object_get(v, "direction")), "EGRESS");
		f->deny = json_object_get(v, "denied") != NULL;
	}
	json_array_foreach(json_object_get(doc, "rules"), i, v)
	{
		struct dp_rule *r = &m.rules[m.nrules];
		json_t *p, *b;
		size_t k;

		r->id = (unsigned)i + 1;
		r->ip = ip_of(json_object_get(v, "ip"));
		r->kind = json_is_true(json_object_get(v, "external")) ? DP_RULE_EXTERNAL
								       : DP_RULE_INTERNAL;
		snprintf(r->proto, sizeof(r->proto), "%s",
			 json_string_value(json_object_get(v, "proto")) ?: "");
		for (size_t c = 0; r->proto[c]; c++)
			if (r->proto[c] < 'a' || r->proto[c] > 'z')
				r->proto[c] = 'x'; /* the model lowers an API enum */
		json_array_foreach(json_object_get(v, "ports"), k, p)
		{
			if (r->nports == 5)
				break;
			r->ports[r->nports][0] = (uint16_t)json_integer_value(json_array_get(p, 0));
			r->ports[r->nports][1] = (uint16_t)json_integer_value(json_array_get(p, 1));
			r->nports++;
		}
		r->backends = calloc(json_array_size(json_object_get(v, "backends")) + 1,
				     sizeof(*r->backends));
		json_array_foreach(json_object_get(v, "backends"), k, b)
		{
			json_int_t bi = json_integer_value(b);

			if (r->backends && bi >= 0 && (size_t)bi < m.ninsts)
				r->backends[r->nbackends++].inst = (size_t)bi;
		}
		m.nrules++;
	}
	text = dp_firewall_text(&dp, &m);
	if (text)
		check(text);
	free(text);
cleanup:
	for (i = 0; i < m.ninsts; i++)
		free(m.insts[i].aliases);
	for (i = 0; i < m.nrules; i++)
		free(m.rules[i].backends);
	free(m.insts);
	free(m.fw);
	free(m.rules);
	json_decref(doc);
	return 0;
}
