/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp repair, shared by repair.c (the command, --strategy gcp, the journal) and
 * repair_node.c (--strategy node: drain, delete, reset; the control-plane quorum guard,
 * also used by --reset-after).
 */
#ifndef TALOS_GCP_CLI_REPAIR_H
#define TALOS_GCP_CLI_REPAIR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli/alignment.h"
#include "cli/options.h"
#include "cli/session.h"
#include "common/error.h"

enum strategy { STRATEGY_GCP, STRATEGY_NODE };

/* A step found the world not as planned: start a new round. */
#define REPLAN 1
/* Stale fingerprints (412) re-read and retried, per request. */
#define MAX_STALE 5

struct repair {
	struct api_opts o;
	enum strategy strategy;
	bool apply, force, yes, free_orphans, reset_after, json;
	bool unfinished; /* without --apply: an unfinished journal was found */
	const char *node, *selector, *journal_opt;
	long max_changes; /* -1: no limit */
	size_t changed;   /* instances (gcp) or Nodes (node) changed by this run so far */
	uint64_t wait_ms, drain_ms;
	char journal_path[4096];
	struct session s;
	json_t *journal;                    /* this run's journal, NULL until the first change */
	json_t *applied, *failed, *skipped; /* step records, for -o json and the report */
	json_t *changed_nodes;              /* {"zone", "instance", "node"} whose alias moved */
};

/*
 * The journal of this run: steps (an array of step objects, stolen) are appended in state
 * "pending" and the file is written before anything changes. 0 or -errno.
 */
int repair_journal_add(struct repair *r, json_t *steps, struct error *err);
/* Sets a journaled step's state (and error), records it, rewrites the journal. */
int repair_journal_state(struct repair *r, json_t *step, const char *state, const char *error,
			 struct error *err);

/* ---- repair_node.c ---- */
struct node_plan {
	size_t *nodes; /* view->nodes indices to drain, delete and bring back */
	size_t n;
	struct repair_refusal *refusals;
	size_t n_refusals;
};

/* Which misaligned Nodes can be recreated, and why not the others. 0 or -errno. */
int node_plan_build(struct repair *r, const struct cluster_view *view, const struct alignment *a,
		    struct node_plan *p, struct error *err);
void node_plan_free(struct node_plan *p);
/* Carries the plan out, one Node at a time. 0, REPLAN or -errno. */
int node_apply(struct repair *r, const struct cluster_view *view, const struct node_plan *p,
	       struct error *err);
/* Finishes or rolls back the node steps of an unfinished journal. 0 or -errno. */
int node_resume(struct repair *r, json_t *journal, struct error *err);

/*
 * The control-plane guard: taking Node name down must leave every other control-plane
 * Node Ready and a quorum of them. 0 when allowed; 1 when refused (why says so with the
 * numbers); -errno when the Nodes could not be read.
 */
int quorum_check(struct repair *r, const char *name, char *why, size_t why_len, struct error *err);

/* instances.reset, waited on. 0 or -errno. */
int reset_instance(struct repair *r, const char *zone, const char *name, struct error *err);

/*
 * --reset-after: resets each instance of r->changed_nodes one at a time (quorum guard
 * first), waiting for its Node to report a new boot and Ready. 0 or -errno.
 */
int reset_after(struct repair *r, struct error *err);

#endif
