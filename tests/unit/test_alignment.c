/* SPDX-License-Identifier: Apache-2.0 */
/* The alignment model and repair planning, on hand-built views. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/alignment.h"
#include "plan_replay.h"

#define SUBNET    "https://compute.googleapis.com/compute/v1/projects/p1/regions/r1/subnetworks/nodes"
#define NETWORK   "https://compute.googleapis.com/compute/v1/projects/p1/global/networks/talos"
#define OTHER_NET "https://www.googleapis.com/compute/v1/projects/p1/global/networks/other"

static struct cluster_view *view_new(void)
{
	struct cluster_view *v = calloc(1, sizeof(*v));

	v->project = strdup("p1");
	v->subnets = calloc(1, sizeof(*v->subnets));
	v->n_subnets = 1;
	v->subnets[0].self_link = strdup(SUBNET);
	assert_int_equal(cidr_parse("10.0.0.0/24", &v->subnets[0].primary, CIDR_STRICT), 0);
	v->subnets[0].secondary = calloc(1, sizeof(*v->subnets[0].secondary));
	v->subnets[0].n_secondary = 1;
	v->subnets[0].secondary[0].name = strdup("pods");
	assert_int_equal(
	    cidr_parse("172.20.0.0/16", &v->subnets[0].secondary[0].range, CIDR_STRICT), 0);
	return v;
}

static void add_node(struct cluster_view *v, const char *name, const char *provider_id,
		     const char *pod)
{
	struct view_node *n;

	v->nodes = realloc(v->nodes, (v->n_nodes + 1) * sizeof(*v->nodes));
	n = &v->nodes[v->n_nodes++];
	memset(n, 0, sizeof(*n));
	n->name = strdup(name);
	n->provider_id = strdup(provider_id);
	n->pod_cidr = strdup(pod);
	n->pod_cidr_valid = pod[0] && cidr_parse(pod, &n->pod, CIDR_STRICT) == 0;
	n->uid = strdup("uid");
	n->resource_version = strdup("1");
}

/* aliases: NULL-terminated list of CIDR strings, all in range "pods". */
static void add_instance(struct cluster_view *v, const char *zone, const char *name, ...)
{
	struct view_instance *in;
	const char *alias;
	va_list ap;

	v->instances = realloc(v->instances, (v->n_instances + 1) * sizeof(*v->instances));
	in = &v->instances[v->n_instances++];
	memset(in, 0, sizeof(*in));
	in->zone = strdup(zone);
	in->name = strdup(name);
	in->nic_name = strdup("nic0");
	in->fingerprint = strdup("AAAAAAAAAAA=");
	in->subnetwork = strdup(SUBNET);
	in->network = strdup(NETWORK);
	in->aliases_valid = true;
	va_start(ap, name);
	while ((alias = va_arg(ap, const char *))) {
		in->aliases = realloc(in->aliases, (in->n_aliases + 1) * sizeof(*in->aliases));
		in->aliases[in->n_aliases].text = strdup(alias);
		in->aliases[in->n_aliases].range_name = strdup("pods");
		assert_int_equal(cidr_parse(alias, &in->aliases[in->n_aliases].range, CIDR_STRICT),
				 0);
		in->n_aliases++;
	}
	va_end(ap);
}

/*
 * An instance on a network with nic0 aliases given as "RANGENAME:CIDR" (":CIDR" for the
 * primary range), NULL-terminated.
 */
static struct view_instance *add_instance_on(struct cluster_view *v, const char *name,
					     const char *network, ...)
{
	struct view_instance *in;
	const char *alias;
	va_list ap;

	add_instance(v, "z1", name, (const char *)NULL);
	in = &v->instances[v->n_instances - 1];
	free(in->network);
	in->network = strdup(network);
	va_start(ap, network);
	while ((alias = va_arg(ap, const char *))) {
		const char *colon = strchr(alias, ':');

		in->aliases = realloc(in->aliases, (in->n_aliases + 1) * sizeof(*in->aliases));
		in->aliases[in->n_aliases].text = strdup(colon + 1);
		in->aliases[in->n_aliases].range_name = strndup(alias, (size_t)(colon - alias));
		assert_int_equal(
		    cidr_parse(colon + 1, &in->aliases[in->n_aliases].range, CIDR_STRICT), 0);
		in->n_aliases++;
	}
	va_end(ap);
	return in;
}

/* nic1 of an instance, on network, holding range. */
static void add_other_nic(struct view_instance *in, const char *network, const char *range)
{
	in->other = realloc(in->other, (in->n_other + 1) * sizeof(*in->other));
	in->other[in->n_other].network = strdup(network);
	in->other[in->n_other].nic = strdup("nic1");
	assert_int_equal(cidr_parse(range, &in->other[in->n_other].range, CIDR_STRICT), 0);
	in->n_other++;
}

/* A node n<i> on instance n<i> in zone z1 with the given podCIDR and alias. */
static void add_pair(struct cluster_view *v, const char *name, const char *pod, const char *alias)
{
	char pid[128];

	snprintf(pid, sizeof(pid), "gce://p1/z1/%s", name);
	add_node(v, name, pid, pod);
	if (alias)
		add_instance(v, "z1", name, alias, (const char *)NULL);
	else
		add_instance(v, "z1", name, (const char *)NULL);
}

static void view_destroy(struct cluster_view *v)
{
	cluster_view_free(v);
	free(v);
}

static const struct align_row *row_of(const struct cluster_view *v, const struct alignment *a,
				      const char *node)
{
	for (size_t i = 0; i < a->n_rows; i++)
		if (!strcmp(v->nodes[a->rows[i].node].name, node))
			return &a->rows[i];
	fail_msg("no row for %s", node);
	return NULL;
}

static void test_statuses(void **state)
{
	struct cluster_view *v = view_new();
	struct alignment a;

	(void)state;
	add_pair(v, "ok", "172.20.1.0/24", "172.20.1.0/24");
	add_pair(v, "mm", "172.20.7.0/24", "172.20.14.0/24");
	add_pair(v, "na", "172.20.3.0/24", NULL);
	add_pair(v, "np", "", "172.20.4.0/24");
	add_node(v, "ni-missing", "gce://p1/z1/gone", "172.20.5.0/24");
	add_node(v, "ni-empty", "", "172.20.6.0/24");
	add_node(v, "ni-bad", "aws:///i-123", "172.20.8.0/24");
	add_node(v, "ni-project", "gce://other/z1/ok", "172.20.9.0/24");
	add_pair(v, "d1", "172.20.20.0/24", "172.20.20.0/24");
	add_node(v, "d2", "gce://p1/z1/d1", "172.20.21.0/24");
	add_pair(v, "s1", "172.20.30.0/24", "172.20.30.0/24");
	add_pair(v, "s2", "172.20.30.0/24", "172.20.31.0/24");
	add_pair(v, "bad", "not-a-cidr", "172.20.40.0/24");

	assert_int_equal(alignment_compute(v, &a), 0);
	assert_false(a.aligned);
	assert_int_equal(a.n_rows, v->n_nodes);
	assert_int_equal(row_of(v, &a, "ok")->status, ALIGN_OK);
	assert_string_equal(row_of(v, &a, "ok")->reason, "");
	assert_int_equal(row_of(v, &a, "mm")->status, ALIGN_MISMATCH);
	assert_non_null(strstr(row_of(v, &a, "mm")->reason, "172.20.14.0/24"));
	assert_int_equal(row_of(v, &a, "na")->status, ALIGN_NO_ALIAS);
	assert_int_equal(row_of(v, &a, "np")->status, ALIGN_NO_PODCIDR);
	assert_int_equal(row_of(v, &a, "ni-missing")->status, ALIGN_NO_INSTANCE);
	assert_int_equal(row_of(v, &a, "ni-empty")->status, ALIGN_NO_INSTANCE);
	assert_int_equal(row_of(v, &a, "ni-bad")->status, ALIGN_NO_INSTANCE);
	assert_int_equal(row_of(v, &a, "ni-project")->status, ALIGN_NO_INSTANCE);
	assert_int_equal(row_of(v, &a, "d1")->status, ALIGN_DUPLICATE);
	assert_int_equal(row_of(v, &a, "d2")->status, ALIGN_DUPLICATE);
	assert_int_equal(row_of(v, &a, "s1")->status, ALIGN_DUPLICATE);
	assert_int_equal(row_of(v, &a, "s2")->status, ALIGN_DUPLICATE);
	assert_int_equal(row_of(v, &a, "bad")->status, ALIGN_MISMATCH);
	assert_string_equal(align_status_name(ALIGN_NO_PODCIDR), "no-podcidr");
	alignment_free(&a);
	view_destroy(v);
}

static void test_aligned_and_empty(void **state)
{
	struct cluster_view *v = view_new();
	struct alignment a;
	struct repair_plan p;

	(void)state;
	assert_int_equal(alignment_compute(v, &a), 0);
	assert_true(a.aligned);
	alignment_free(&a);
	add_pair(v, "a", "172.20.1.0/24", "172.20.1.0/24");
	add_pair(v, "b", "172.20.2.0/24", "172.20.2.0/24");
	assert_int_equal(alignment_compute(v, &a), 0);
	assert_true(a.aligned);
	assert_int_equal(repair_plan_gcp(v, &a, 0, &p), 0);
	assert_int_equal(p.n_steps, 0);
	assert_int_equal(p.n_refusals, 0);
	repair_plan_free(&p);
	alignment_free(&a);
	view_destroy(v);
}

static void test_provider_id(void **state)
{
	char buf[128];
	const char *p, *z, *n;

	(void)state;
	assert_int_equal(
	    provider_id_parse("gce://proj/europe-west1-b/cp-0", buf, sizeof(buf), &p, &z, &n), 0);
	assert_string_equal(p, "proj");
	assert_string_equal(z, "europe-west1-b");
	assert_string_equal(n, "cp-0");
	assert_int_equal(provider_id_parse("gce://proj/zone", buf, sizeof(buf), &p, &z, &n),
			 -EINVAL);
	assert_int_equal(provider_id_parse("gce://proj//n", buf, sizeof(buf), &p, &z, &n), -EINVAL);
	assert_int_equal(provider_id_parse("gce://p/z/n/x", buf, sizeof(buf), &p, &z, &n), -EINVAL);
	assert_int_equal(provider_id_parse("gce:/p/z/n", buf, sizeof(buf), &p, &z, &n), -EINVAL);
	assert_int_equal(provider_id_parse(NULL, buf, sizeof(buf), &p, &z, &n), -EINVAL);
}

/* The plan as GCP would take it, step by step (plan_replay.c); its sets are in "pods". */
static void simulate(struct cluster_view *v, const struct alignment *a, const struct repair_plan *p)
{
	char why[512];

	if (plan_replay(v, a, p, why, sizeof(why)) < 0)
		fail_msg("%s", why);
	for (size_t s = 0; s < p->n_steps; s++)
		if (p->steps[s].kind == STEP_SET)
			assert_string_equal(p->steps[s].range_name, "pods");
}

static void plan_flags(struct cluster_view *v, struct alignment *a, struct repair_plan *p,
		       unsigned flags)
{
	assert_int_equal(alignment_compute(v, a), 0);
	assert_int_equal(repair_plan_gcp(v, a, flags, p), 0);
	simulate(v, a, p);
}

static void plan(struct cluster_view *v, struct alignment *a, struct repair_plan *p)
{
	plan_flags(v, a, p, 0);
}

static void expect_step(const struct cluster_view *v, const struct repair_plan *p, size_t i,
			enum repair_step_kind kind, const char *instance, const char *range)
{
	char buf[CIDR_STRLEN];

	assert_true(i < p->n_steps);
	assert_int_equal(p->steps[i].kind, kind);
	assert_string_equal(v->instances[p->steps[i].instance].name, instance);
	assert_string_equal(cidr_format(&p->steps[i].range, buf, sizeof(buf)), range);
}

static void test_plan_simple(void **state)
{
	struct cluster_view *v = view_new();
	struct alignment a;
	struct repair_plan p;

	(void)state;
	add_pair(v, "mm", "172.20.7.0/24", "172.20.14.0/24");
	add_pair(v, "na", "172.20.3.0/24", NULL);
	add_pair(v, "ok", "172.20.1.0/24", "172.20.1.0/24");
	plan(v, &a, &p);
	assert_int_equal(p.n_refusals, 0);
	assert_int_equal(p.n_steps, 3);
	assert_int_equal(p.n_nodes_fixed, 2);
	expect_step(v, &p, 0, STEP_CLEAR, "mm", "172.20.14.0/24");
	expect_step(v, &p, 1, STEP_SET, "mm", "172.20.7.0/24");
	expect_step(v, &p, 2, STEP_SET, "na", "172.20.3.0/24");
	repair_plan_free(&p);
	alignment_free(&a);
	view_destroy(v);
}

static void test_plan_swap(void **state)
{
	struct cluster_view *v = view_new();
	struct alignment a;
	struct repair_plan p;

	(void)state;
	add_pair(v, "a", "172.20.2.0/24", "172.20.1.0/24");
	add_pair(v, "b", "172.20.1.0/24", "172.20.2.0/24");
	plan(v, &a, &p);
	assert_int_equal(p.n_refusals, 0);
	assert_int_equal(p.n_steps, 4);
	assert_int_equal(p.n_nodes_fixed, 2);
	expect_step(v, &p, 0, STEP_CLEAR, "a", "172.20.1.0/24");
	repair_plan_free(&p);
	alignment_free(&a);
	view_destroy(v);
}

static void test_plan_cycle_and_chain(void **state)
{
	struct cluster_view *v = view_new();
	struct alignment a;
	struct repair_plan p;

	(void)state;
	/* 3-cycle a->b->c->a, and a chain d wants e's range, e wants a free one. */
	add_pair(v, "a", "172.20.2.0/24", "172.20.1.0/24");
	add_pair(v, "b", "172.20.3.0/24", "172.20.2.0/24");
	add_pair(v, "c", "172.20.1.0/24", "172.20.3.0/24");
	add_pair(v, "d", "172.20.5.0/24", "172.20.4.0/24");
	add_pair(v, "e", "172.20.6.0/24", "172.20.5.0/24");
	plan(v, &a, &p);
	assert_int_equal(p.n_refusals, 0);
	assert_int_equal(p.n_nodes_fixed, 5);
	assert_int_equal(p.n_steps, 10);
	repair_plan_free(&p);
	alignment_free(&a);
	view_destroy(v);
}

static void test_plan_refusals(void **state)
{
	struct cluster_view *v = view_new();
	struct alignment a;
	struct repair_plan p;

	(void)state;
	/* Held by a foreign instance. */
	add_pair(v, "f", "172.20.9.0/24", "172.20.10.0/24");
	add_instance(v, "z1", "foreign-vm", "172.20.9.0/24", (const char *)NULL);
	/* Outside the pods range. */
	add_pair(v, "out", "10.99.0.0/24", "172.20.11.0/24");
	/* Waits on "f"'s range, which stays because f was refused. */
	add_pair(v, "w", "172.20.10.0/24", "172.20.12.0/24");
	/* No podCIDR, no instance. */
	add_pair(v, "np", "", "172.20.13.0/24");
	add_node(v, "gone", "gce://p1/z1/gone", "172.20.14.0/24");
	/* Held by a node with no podCIDR yet (which the CCM would give it). */
	add_pair(v, "steal", "172.20.13.0/24", "172.20.15.0/24");
	plan(v, &a, &p);
	assert_int_equal(p.n_steps, 0);
	assert_int_equal(p.n_refusals, 6);
	for (size_t i = 0; i < p.n_refusals; i++) {
		const char *node = v->nodes[p.refusals[i].node].name, *why = p.refusals[i].reason;

		if (!strcmp(node, "f"))
			assert_non_null(strstr(why, "not a node of this cluster"));
		else if (!strcmp(node, "out"))
			assert_non_null(strstr(why, "outside every secondary range"));
		else if (!strcmp(node, "w"))
			assert_non_null(strstr(why, "whose own move was refused"));
		else if (!strcmp(node, "np"))
			assert_non_null(strstr(why, "no podCIDR"));
		else if (!strcmp(node, "gone"))
			assert_non_null(strstr(why, "no-instance"));
		else if (!strcmp(node, "steal"))
			assert_non_null(strstr(why, "which is not being moved"));
		else
			fail_msg("unexpected refusal for %s: %s", node, why);
	}
	repair_plan_free(&p);
	alignment_free(&a);
	view_destroy(v);
}

static void test_plan_unknown_subnet(void **state)
{
	struct cluster_view *v = view_new();
	struct alignment a;
	struct repair_plan p;

	(void)state;
	add_pair(v, "a", "172.20.2.0/24", "172.20.1.0/24");
	free(v->instances[0].subnetwork);
	v->instances[0].subnetwork = strdup("https://example.invalid/other");
	plan(v, &a, &p);
	assert_int_equal(p.n_steps, 0);
	assert_int_equal(p.n_refusals, 1);
	assert_non_null(strstr(p.refusals[0].reason, "could not be read"));
	repair_plan_free(&p);
	alignment_free(&a);
	view_destroy(v);
}

static const struct repair_refusal *refusal_of(const struct cluster_view *v,
					       const struct repair_plan *p, const char *node)
{
	for (size_t i = 0; i < p->n_refusals; i++)
		if (!strcmp(v->nodes[p->refusals[i].node].name, node))
			return &p->refusals[i];
	return NULL;
}

/* Only the pods alias is cleared; a /32 from the primary range (first or not) stays. */
static void test_plan_keeps_other_aliases(void **state)
{
	struct cluster_view *v = view_new();
	struct alignment a;
	struct repair_plan p;

	(void)state;
	add_node(v, "first", "gce://p1/z1/first", "172.20.7.0/24");
	add_instance_on(v, "first", NETWORK, "pods:172.20.14.0/24", ":10.0.0.50/32",
			(const char *)NULL);
	add_node(v, "behind", "gce://p1/z1/behind", "172.20.9.0/24");
	add_instance_on(v, "behind", NETWORK, ":10.0.0.60/32", "pods:172.20.8.0/24",
			(const char *)NULL);
	add_node(v, "none", "gce://p1/z1/none", "172.20.10.0/24");
	add_instance_on(v, "none", NETWORK, ":10.0.0.70/32", (const char *)NULL);
	plan(v, &a, &p);
	assert_int_equal(p.n_refusals, 0);
	assert_int_equal(p.n_nodes_fixed, 3);
	assert_int_equal(p.n_steps, 5);
	for (size_t i = 0; i < p.n_steps; i++)
		if (p.steps[i].kind == STEP_CLEAR) {
			char buf[CIDR_STRLEN];

			cidr_format(&p.steps[i].range, buf, sizeof(buf));
			assert_true(!strcmp(buf, "172.20.14.0/24") ||
				    !strcmp(buf, "172.20.8.0/24"));
			assert_string_equal(p.steps[i].range_name, "pods");
		}
	repair_plan_free(&p);
	alignment_free(&a);
	view_destroy(v);
}

/* The same pods range reused in another VPC holds nothing of ours. */
static void test_holders_per_network(void **state)
{
	struct cluster_view *v = view_new();
	struct alignment a;
	struct repair_plan p;

	(void)state;
	add_pair(v, "a", "172.20.7.0/24", "172.20.1.0/24");
	add_instance_on(v, "elsewhere", OTHER_NET, "pods:172.20.7.0/24", (const char *)NULL);
	/* Another VM's nic1 on our network does hold: refused (and an orphan). */
	add_pair(v, "b", "172.20.8.0/24", "172.20.2.0/24");
	add_other_nic(add_instance_on(v, "appliance", OTHER_NET, (const char *)NULL), NETWORK,
		      "172.20.8.0/25");
	plan(v, &a, &p);
	assert_int_equal(p.n_refusals, 1);
	assert_non_null(refusal_of(v, &p, "b"));
	assert_non_null(strstr(refusal_of(v, &p, "b")->reason, "appliance"));
	assert_non_null(strstr(refusal_of(v, &p, "b")->reason, "nic1"));
	expect_step(v, &p, 0, STEP_CLEAR, "a", "172.20.1.0/24");
	expect_step(v, &p, 1, STEP_SET, "a", "172.20.7.0/24");
	assert_int_equal(a.n_orphans, 1);
	assert_string_equal(v->instances[a.orphans[0].instance].name, "appliance");
	assert_int_equal(a.orphans[0].alias, -1);
	repair_plan_free(&p);
	alignment_free(&a);
	view_destroy(v);
}

/* A holder of a wider (or narrower) overlapping range is found, whatever its size. */
static void test_overlaps_of_other_sizes(void **state)
{
	struct cluster_view *v = view_new();
	struct alignment a;
	struct repair_plan p;

	(void)state;
	add_pair(v, "a", "172.20.7.0/24", "172.20.1.0/24");
	add_instance(v, "z1", "wide", "172.20.4.0/22", (const char *)NULL);
	add_pair(v, "b", "172.20.16.0/22", "172.20.2.0/24");
	add_instance(v, "z1", "narrow", "172.20.18.0/28", (const char *)NULL);
	/* Nested data (not what GCP serves, but the lookups must not depend on it). */
	add_pair(v, "c", "172.20.33.0/24", "172.20.3.0/24");
	add_instance(v, "z1", "nested", "172.20.32.0/20", (const char *)NULL);
	add_instance(v, "z1", "inside", "172.20.40.0/24", (const char *)NULL);
	plan(v, &a, &p);
	assert_int_equal(p.n_steps, 0);
	assert_int_equal(p.n_refusals, 3);
	assert_non_null(strstr(refusal_of(v, &p, "a")->reason, "wide"));
	assert_non_null(strstr(refusal_of(v, &p, "b")->reason, "narrow"));
	assert_non_null(strstr(refusal_of(v, &p, "c")->reason, "nested"));
	repair_plan_free(&p);
	alignment_free(&a);
	view_destroy(v);
}

/* Orphans: reported, refused as holders, freed first with REPAIR_FREE_ORPHANS. */
static void test_orphans(void **state)
{
	struct cluster_view *v = view_new();
	struct alignment a;
	struct repair_plan p;

	(void)state;
	add_pair(v, "a", "172.20.9.0/24", "172.20.1.0/24");
	add_instance(v, "z1", "leftover", "172.20.9.0/24", (const char *)NULL);
	/* Not in the pods range, not overlapping a podCIDR: not an orphan. */
	add_instance_on(v, "web", NETWORK, ":10.0.0.80/32", (const char *)NULL);
	/* Same range, another VPC: not ours either. */
	add_instance_on(v, "other-vpc", OTHER_NET, "pods:172.20.50.0/24", (const char *)NULL);
	plan(v, &a, &p);
	assert_false(a.aligned);
	assert_int_equal(a.n_orphans, 1);
	assert_string_equal(v->instances[a.orphans[0].instance].name, "leftover");
	assert_non_null(strstr(a.orphans[0].reason, "no Node claims it"));
	assert_int_equal(p.n_steps, 0);
	assert_non_null(strstr(refusal_of(v, &p, "a")->reason, "--free-orphans"));
	repair_plan_free(&p);
	alignment_free(&a);

	plan_flags(v, &a, &p, REPAIR_FREE_ORPHANS);
	assert_int_equal(p.n_refusals, 0);
	assert_int_equal(p.n_steps, 3);
	expect_step(v, &p, 0, STEP_CLEAR, "leftover", "172.20.9.0/24");
	assert_true(p.steps[0].orphan);
	assert_int_equal(p.steps[0].node, STEP_NO_NODE);
	expect_step(v, &p, 2, STEP_SET, "a", "172.20.9.0/24");
	assert_int_equal(repair_plan_instances(&p), 2);
	repair_plan_free(&p);
	alignment_free(&a);
	view_destroy(v);
}

/* Random permutations of ranges over many nodes: every plan is valid and complete. */
static void test_plan_random_permutations(void **state)
{
	(void)state;
	srand(42);
	for (int round = 0; round < 200; round++) {
		struct cluster_view *v = view_new();
		struct alignment a;
		struct repair_plan p;
		int n = 2 + rand() % 30, perm[32];

		for (int i = 0; i < n; i++)
			perm[i] = i;
		for (int i = n - 1; i > 0; i--) {
			int j = rand() % (i + 1), t = perm[i];
			perm[i] = perm[j];
			perm[j] = t;
		}
		for (int i = 0; i < n; i++) {
			char name[16], pod[32], alias[32];

			snprintf(name, sizeof(name), "n%02d", i);
			snprintf(pod, sizeof(pod), "172.20.%d.0/24", perm[i]);
			/* Some nodes have no alias; some aliases are spare ranges nobody wants. */
			snprintf(alias, sizeof(alias), "172.20.%d.0/24",
				 rand() % 4 == 0 ? 100 + i : i);
			add_pair(v, name, pod, rand() % 10 == 0 ? NULL : alias);
		}
		plan(v, &a, &p);
		assert_int_equal(p.n_refusals, 0);
		repair_plan_free(&p);
		alignment_free(&a);
		view_destroy(v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_statuses),
	    cmocka_unit_test(test_aligned_and_empty),
	    cmocka_unit_test(test_provider_id),
	    cmocka_unit_test(test_plan_simple),
	    cmocka_unit_test(test_plan_swap),
	    cmocka_unit_test(test_plan_cycle_and_chain),
	    cmocka_unit_test(test_plan_refusals),
	    cmocka_unit_test(test_plan_unknown_subnet),
	    cmocka_unit_test(test_plan_keeps_other_aliases),
	    cmocka_unit_test(test_holders_per_network),
	    cmocka_unit_test(test_overlaps_of_other_sizes),
	    cmocka_unit_test(test_orphans),
	    cmocka_unit_test(test_plan_random_permutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
