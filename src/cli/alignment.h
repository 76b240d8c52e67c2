/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PodCIDR <-> alias IP alignment: the model behind verify, repair (and later watch).
 *
 * Pure functions over a cluster_view (Nodes and instances as read from the APIs), so the
 * rules are unit-tested without any server. The single source of truth (DESIGN §3): the
 * CCM's CloudAllocator copies nic0's aliasIpRanges[0] into spec.podCIDR, so a Node is
 * aligned when its podCIDR equals its instance's first alias range on nic0.
 */
#ifndef TALOS_GCP_CLI_ALIGNMENT_H
#define TALOS_GCP_CLI_ALIGNMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/cidr.h"

struct view_node {
	char *name;
	char *provider_id; /* gce://project/zone/instance, "" when unset */
	char *pod_cidr;    /* spec.podCIDR as served, "" when unset */
	bool pod_cidr_valid;
	struct cidr pod;
	char *uid;
	char *resource_version;
};

struct view_alias {
	struct cidr range;
	char *text;       /* ipCidrRange as served */
	char *range_name; /* subnetworkRangeName, "" for the primary range */
};

struct view_instance {
	char *zone;
	char *name;
	char *nic_name;             /* nic0 */
	char *fingerprint;          /* nic0's fingerprint as served (base64) */
	char *subnetwork;           /* nic0's subnetwork URL */
	struct view_alias *aliases; /* nic0's aliasIpRanges, in order */
	size_t n_aliases;
	bool aliases_valid; /* false when an ipCidrRange could not be parsed */
};

struct view_subnet {
	char *self_link;
	struct cidr primary;
	struct {
		char *name;
		struct cidr range;
	} * secondary;
	size_t n_secondary;
};

struct cluster_view {
	char *project;
	struct view_node *nodes;
	size_t n_nodes;
	struct view_instance *instances;
	size_t n_instances;
	struct view_subnet *subnets; /* only those nic0 of a mapped instance uses, when read */
	size_t n_subnets;
};

enum align_status {
	ALIGN_OK = 0,
	ALIGN_MISMATCH,    /* podCIDR and aliasIpRanges[0] differ */
	ALIGN_NO_ALIAS,    /* the instance has no alias range on nic0 */
	ALIGN_NO_PODCIDR,  /* the Node has no spec.podCIDR (yet) */
	ALIGN_NO_INSTANCE, /* no instance matches the providerID */
	ALIGN_DUPLICATE,   /* another Node claims the same instance or the same podCIDR */
};

struct align_row {
	size_t node;
	ssize_t instance; /* index into view->instances, -1 when none */
	enum align_status status;
	char reason[256]; /* one line for humans; "" when ok */
};

struct alignment {
	struct align_row *rows; /* one per node, in view->nodes order */
	size_t n_rows;
	bool aligned; /* every row ok */
};

const char *align_status_name(enum align_status s);

/* Parses "gce://project/zone/name". Returns 0 or -EINVAL; outputs point into a copy in buf. */
int provider_id_parse(const char *provider_id, char *buf, size_t buflen, const char **project,
		      const char **zone, const char **name);

/* Sorts instances by zone/name (needed by lookups) and computes every row. 0 or -ENOMEM. */
int alignment_compute(struct cluster_view *view, struct alignment *out);
void alignment_free(struct alignment *a);

/* Index of the instance zone/name in the sorted view, or -1. */
ssize_t view_find_instance(const struct cluster_view *view, const char *zone, const char *name);
/* The subnet whose self_link is url, or NULL. */
const struct view_subnet *view_find_subnet(const struct cluster_view *view, const char *url);

void cluster_view_free(struct cluster_view *view);
void view_node_free(struct view_node *n);
void view_instance_free(struct view_instance *in);
/* nic0's alias list edits, as a step of repair leaves it. */
void view_alias_remove_first(struct view_instance *in);
int view_alias_prepend(struct view_instance *in, const struct cidr *range, const char *text,
		       const char *range_name);

/* ---- repair --strategy gcp ---- */

enum repair_step_kind {
	STEP_CLEAR, /* remove nic0's first alias range (`range`) */
	STEP_SET,   /* add `range` (from `range_name`) as nic0's first alias range */
};

struct repair_step {
	enum repair_step_kind kind;
	size_t instance;
	size_t node;
	struct cidr range;
	char range_name[64];
};

struct repair_refusal {
	size_t node;
	char reason[320];
};

struct repair_plan {
	struct repair_step *steps;
	size_t n_steps;
	struct repair_refusal *refusals;
	size_t n_refusals;
	size_t n_nodes_fixed; /* nodes the steps align */
};

/*
 * Plans the moves that make every fixable Node's instance carry the Node's podCIDR:
 * clear-then-set per instance (GCP refuses to replace a range in one request), ordered
 * so that a range is set only once its holder has cleared it; swaps and longer cycles are
 * broken by clearing one member first. Refuses (with a reason) a podCIDR outside the
 * subnet's secondary ranges, one held by an instance outside the cluster or by a Node
 * that is not being moved, and rows that are not mismatch/no-alias.
 * 0 or -ENOMEM.
 */
int repair_plan_gcp(const struct cluster_view *view, const struct alignment *a,
		    struct repair_plan *out);
void repair_plan_free(struct repair_plan *p);

#endif
