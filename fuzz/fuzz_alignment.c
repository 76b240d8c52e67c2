/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CLI's reading of API objects and its planning, on arbitrary JSON:
 * {"nodes": [Node...], "instances": [Instance...], "containers": [Container...]}.
 * Beyond "no crash": every repair plan, with and without freeing orphans, must be one GCP
 * would accept step by step (a range is cleared only where it is, and set only when no
 * interface on the same network holds an overlapping range), must leave every node it
 * claims to fix aligned, and must keep every range it does not clear.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/alignment.h"
#include "cli/controllers.h"
#include "cli/view_load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_net(const struct view_instance *a, const char *net)
{
	return !strcmp(view_network_key(a->network), view_network_key(net));
}

/*
 * Replays the plan on a model of nic0's alias lists: a clear removes a range that is
 * there; a set adds a range that overlaps nothing on the same network (any interface of
 * any instance, this one's other ranges included); a Node the plan fixes ends with its
 * podCIDR first; nothing the plan did not clear disappears.
 */
static void check_plan(const struct cluster_view *v, const struct alignment *a,
		       const struct repair_plan *p)
{
	size_t n = v->n_instances;
	size_t *len = calloc(n + 1, sizeof(*len));
	struct cidr **cur = calloc(n + 1, sizeof(*cur));

	for (size_t i = 0; i < n; i++) {
		cur[i] = calloc(v->instances[i].n_aliases + p->n_steps + 1, sizeof(**cur));
		len[i] = v->instances[i].n_aliases;
		for (size_t k = 0; k < len[i]; k++)
			cur[i][k] = v->instances[i].aliases[k].range;
	}
	for (size_t s = 0; s < p->n_steps; s++) {
		const struct repair_step *st = &p->steps[s];
		size_t i = st->instance, k;

		if (st->kind == STEP_CLEAR) {
			for (k = 0; k < len[i] && !cidr_equal(&cur[i][k], &st->range); k++)
				;
			if (k == len[i])
				abort();
			memmove(&cur[i][k], &cur[i][k + 1], (len[i] - k - 1) * sizeof(**cur));
			len[i]--;
			continue;
		}
		for (size_t j = 0; j < n; j++) {
			for (k = 0; k < len[j]; k++)
				if ((j == i ||
				     same_net(&v->instances[j], v->instances[i].network)) &&
				    cidr_overlaps(&cur[j][k], &st->range))
					abort();
			for (k = 0; k < v->instances[j].n_other; k++)
				if (same_net(&v->instances[i], v->instances[j].other[k].network) &&
				    cidr_overlaps(&v->instances[j].other[k].range, &st->range))
					abort();
		}
		memmove(&cur[i][1], &cur[i][0], len[i] * sizeof(**cur));
		cur[i][0] = st->range;
		len[i]++;
	}
	for (size_t s = 0; s < p->n_steps; s++) {
		const struct repair_step *st = &p->steps[s];

		if (st->kind == STEP_SET &&
		    (!len[st->instance] ||
		     !cidr_equal(&cur[st->instance][0], &v->nodes[st->node].pod)))
			abort();
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < v->instances[i].n_aliases; k++) {
			const struct cidr *c = &v->instances[i].aliases[k].range;
			bool cleared = false, there = false;

			for (size_t s = 0; s < p->n_steps; s++)
				cleared |= p->steps[s].kind == STEP_CLEAR &&
					   p->steps[s].instance == i &&
					   cidr_equal(&p->steps[s].range, c);
			for (size_t j = 0; j < len[i]; j++)
				there |= cidr_equal(&cur[i][j], c);
			if (!cleared && !there)
				abort();
		}
	(void)a;
	for (size_t i = 0; i < n; i++)
		free(cur[i]);
	free(cur);
	free(len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cluster_view v = {0};
	struct alignment a = {0};
	struct repair_plan p = {0};
	struct error err;
	json_error_t jerr;
	json_t *doc = json_loadb((const char *)data, size, 0, &jerr), *arr;
	struct view_subnet *sub;

	if (!json_is_object(doc))
		goto cleanup;
	v.project = strdup("p");
	arr = json_object_get(doc, "nodes");
	v.nodes = calloc(json_array_size(arr) + 1, sizeof(*v.nodes));
	for (size_t i = 0; i < json_array_size(arr); i++)
		if (view_node_from_json(json_array_get(arr, i), &v.nodes[v.n_nodes], &err) == 0)
			v.n_nodes++;
	arr = json_object_get(doc, "instances");
	v.instances = calloc(json_array_size(arr) + 1, sizeof(*v.instances));
	for (size_t i = 0; i < json_array_size(arr); i++)
		if (view_instance_from_json("zones/z", json_array_get(arr, i),
					    &v.instances[v.n_instances], &err) == 0)
			v.n_instances++;
	/* One subnet that every instance may name: "s", pods 172.20.0.0/16. */
	sub = v.subnets = calloc(1, sizeof(*v.subnets));
	v.n_subnets = 1;
	sub->self_link = strdup("s");
	cidr_parse("10.0.0.0/24", &sub->primary, 0);
	sub->secondary = calloc(1, sizeof(*sub->secondary));
	sub->n_secondary = 1;
	sub->secondary[0].name = strdup("pods");
	cidr_parse("172.20.0.0/16", &sub->secondary[0].range, 0);

	if (alignment_compute(&v, &a) == 0) {
		for (unsigned flags = 0; flags <= REPAIR_FREE_ORPHANS;
		     flags += REPAIR_FREE_ORPHANS) {
			if (repair_plan_gcp(&v, &a, flags, &p) == 0)
				check_plan(&v, &a, &p);
			repair_plan_free(&p);
		}
	}

	arr = json_object_get(doc, "containers");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		struct controller_flags f = {0}, ccm = {0}, kcm = {0};
		char why[256];

		controller_flags_from_container(json_array_get(arr, i), "cloud-controller-manager",
						&f);
		ccm = f;
		controller_flags_from_container(json_array_get(arr, i), "kube-controller-manager",
						&kcm);
		controllers_cloud_allocator(&ccm, &kcm, why, sizeof(why));
	}
cleanup:
	repair_plan_free(&p);
	alignment_free(&a);
	cluster_view_free(&v);
	json_decref(doc);
	return 0;
}
