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
#include "../tests/unit/plan_replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The plan, replayed as GCP would take it (tests/unit/plan_replay.c), must hold. */
static void check_plan(const struct cluster_view *v, const struct alignment *a,
		       const struct repair_plan *p)
{
	char why[512];

	if (plan_replay(v, a, p, why, sizeof(why)) < 0)
		abort();
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
