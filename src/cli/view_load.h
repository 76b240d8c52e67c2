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
 * Lists Nodes (pages of 500) and instances (aggregated/instances, pages of 500), and
 * computes nothing: alignment_compute() does. At most 2*ceil(N/500) requests, plus one per
 * distinct subnetwork with VIEW_LOAD_SUBNETS. 0 or -errno with err.
 */
int cluster_view_load(struct session *s, unsigned flags, struct cluster_view *view,
		      struct error *err);

/* Parses one Instance resource into a view_instance (exposed for tests). 0 or -errno. */
int view_instance_from_json(const char *scope, const json_t *inst, struct view_instance *out,
			    struct error *err);
/* Parses one Node into a view_node. 0 or -errno. */
int view_node_from_json(const json_t *node, struct view_node *out, struct error *err);

#endif
