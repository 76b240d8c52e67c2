/* SPDX-License-Identifier: Apache-2.0 */
/* Reads a cluster_view from the APIs: one Node list and one aggregated instance list. */
#ifndef TALOS_GCP_CLI_VIEW_LOAD_H
#define TALOS_GCP_CLI_VIEW_LOAD_H

#include "cli/alignment.h"
#include "cli/session.h"
#include "common/error.h"

enum view_load_flags {
	/* Also GET each subnetwork that a mapped instance's nic0 uses (repair needs ranges). */
	VIEW_LOAD_SUBNETS = 1 << 0,
};

/*
 * Nodes' instances per filtered range of instances read at once: two pages of 500 with
 * room for instances that are no Node. One page per range would save a round trip, but
 * every filtered list costs the server a pass over the collection (the emulator's cost
 * triples at 15,000 instances with 34 ranges), so two pages, half the ranges.
 */
#define VIEW_RANGE_NODES 900

/*
 * Lists Nodes (one request, the whole list streamed) and instances (aggregated/instances:
 * a first page alongside the Nodes; when there is more, every range of the name space at
 * once, cut every VIEW_RANGE_NODES of the Nodes' instance names), and computes nothing:
 * alignment_compute() does. Two round trips whatever the size; ceil(N/450) + 2 requests
 * (a range holding more than a page takes more), plus one per distinct subnetwork with
 * VIEW_LOAD_SUBNETS. 0 or -errno with err.
 */
int cluster_view_load(struct session *s, unsigned flags, struct cluster_view *view,
		      struct error *err);

/* Parses one Instance resource into a view_instance (exposed for tests). 0 or -errno. */
int view_instance_from_json(const char *scope, const json_t *inst, struct view_instance *out,
			    struct error *err);
/*
 * The filters that cut the instance name space into ranges of per_range of the Nodes'
 * instances (from their providerIDs): "name < \"B1\"", "(name >= \"B1\") AND (name <
 * \"B2\")", ..., "name >= \"Bk\""; a single "" (no filter) when one range holds them all.
 * Exposed for tests. 0 or -ENOMEM; free with view_ranges_free().
 */
int view_instance_ranges(const struct view_node *nodes, size_t n_nodes, size_t per_range,
			 char ***out, size_t *n_out);
void view_ranges_free(char **filters, size_t n);
/* Parses one Node into a view_node. 0 or -errno. */
int view_node_from_json(const json_t *node, struct view_node *out, struct error *err);

#endif
