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

/* An alias range of another interface (nic1...): only its network matters (who holds what). */
struct view_nic_alias {
	struct cidr range;
	char *network; /* that interface's network URL */
	char *nic;     /* its name, "nic1" */
};

struct view_instance {
	char *zone;
	char *name;
	char *nic_name;             /* nic0 */
	char *fingerprint;          /* nic0's fingerprint as served (base64) */
	char *subnetwork;           /* nic0's subnetwork URL */
	char *network;              /* nic0's network URL, "" when not served */
	struct view_alias *aliases; /* nic0's aliasIpRanges, in order */
	size_t n_aliases;
	struct view_nic_alias *other; /* the other interfaces' alias ranges */
	size_t n_other;
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
	ALIGN_ORPHAN,      /* an instance (no Node) holding a range of the cluster's pods range */
};

struct align_row {
	size_t node;
	ssize_t instance; /* index into view->instances, -1 when none */
	enum align_status status;
	char reason[256]; /* one line for humans; "" when ok */
};

/*
 * An orphan: an instance no Node claims, on a network of the cluster's instances, holding
 * an alias range of the pods range (one that overlaps a Node's podCIDR, or comes from the
 * same subnetwork's secondary range as the Nodes' aliases). The VPC routes that range to
 * it, and it blocks any Node that should get the range.
 */
struct align_orphan {
	size_t instance;
	ssize_t alias; /* index into its nic0 aliases, or -1: another interface's (other[]) */
	size_t other;  /* index into other[] when alias is -1 */
	struct cidr range;
	char reason[256];
};

struct alignment {
	struct align_row *rows; /* one per node, in view->nodes order */
	size_t n_rows;
	struct align_orphan *orphans; /* by instance order */
	size_t n_orphans;
	bool aligned; /* every row ok, and no orphan */
};

const char *align_status_name(enum align_status s);

/* Parses "gce://project/zone/name". Returns 0 or -EINVAL; outputs point into a copy in buf. */
int provider_id_parse(const char *provider_id, char *buf, size_t buflen, const char **project,
		      const char **zone, const char **name);

/*
 * Sorts instances by zone/name (needed by lookups) and computes every row and the orphans.
 * 0 or -ENOMEM.
 */
int alignment_compute(struct cluster_view *view, struct alignment *out);
void alignment_free(struct alignment *a);

/* Index of the instance zone/name in the sorted view, or -1. */
ssize_t view_find_instance(const struct cluster_view *view, const char *zone, const char *name);
/* The subnet whose self_link is url, or NULL. */
const struct view_subnet *view_find_subnet(const struct cluster_view *view, const char *url);

void cluster_view_free(struct cluster_view *view);
void view_node_free(struct view_node *n);
void view_instance_free(struct view_instance *in);
/* nic0's alias list edits, as a step of repair leaves it (remove: that range, if there). */
void view_alias_remove(struct view_instance *in, const struct cidr *range);
int view_alias_prepend(struct view_instance *in, const struct cidr *range, const char *text,
		       const char *range_name);
/* The network part of a network URL ("projects/P/global/networks/N"), for comparisons. */
const char *view_network_key(const char *url);

/* ---- repair --strategy gcp ---- */

enum repair_step_kind {
	STEP_CLEAR, /* remove `range` from nic0's alias ranges; every other range stays */
	STEP_SET,   /* add `range` (from `range_name`) as nic0's first alias range; others stay */
};

#define STEP_NO_NODE ((size_t)-1)

struct repair_step {
	enum repair_step_kind kind;
	size_t instance;
	size_t node; /* the Node the step aligns, STEP_NO_NODE for an orphan's range */
	bool orphan; /* frees an orphan's range (--free-orphans) */
	struct cidr range;
	char range_name[64]; /* the range's subnetworkRangeName, "" for the primary range */
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

enum repair_plan_flags {
	/* Free the orphans' nic0 ranges first (clear steps without a Node). */
	REPAIR_FREE_ORPHANS = 1 << 0,
};

/*
 * Plans the moves that make every fixable Node's instance carry the Node's podCIDR as
 * nic0's first alias range (what the CloudAllocator copies): per instance, the alias that
 * lies in the secondary range holding the target is cleared (every other range stays, sent
 * unchanged), then the target is set first (GCP refuses to replace a range in one request).
 * Moves are ordered so that a range is set only once its holder has cleared it; swaps and
 * longer cycles are broken by clearing one member first. Holders are the instances whose
 * interfaces on the same network (nic0's) hold an overlapping range, of any size. Refuses
 * (with a reason) a podCIDR outside the subnet's secondary ranges, one held by an instance
 * outside the cluster (an orphan, unless REPAIR_FREE_ORPHANS) or by a Node that is not
 * being moved, and rows that are not mismatch/no-alias. 0 or -ENOMEM.
 */
int repair_plan_gcp(const struct cluster_view *view, const struct alignment *a, unsigned flags,
		    struct repair_plan *out);
/* Distinct instances a plan changes. */
size_t repair_plan_instances(const struct repair_plan *p);
void repair_plan_free(struct repair_plan *p);

#endif
