/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Applying a plan: its operations run on the runner's workers as soon as what they need is
 * done, each waited on (POST .../operations/NAME/wait), with a progress line per operation
 * and elapsed times (a live status line when the output is a terminal).
 *
 * Every insert carries a requestId (gcp_compute_mutate); a retried request is therefore
 * harmless, and so is an operation a killed run left behind:
 *   - insert answered 409: the resource exists or is being created (a run killed after
 *     sending it); wait for it to appear and accept it only if it carries the marker;
 *   - delete answered 404 (or its operation RESOURCE_NOT_FOUND): already gone;
 *   - a stale fingerprint (412, or CONDITION_NOT_MET at completion): read the resource
 *     again, take its fingerprint, send again;
 *   - addInstances of a member / removeInstances of a non-member: nothing to do.
 */
#ifndef TALOS_GCP_PROVISION_APPLY_H
#define TALOS_GCP_PROVISION_APPLY_H

#include <stdio.h>

#include "provision/plan.h"
#include "provision/runner.h"

struct apply_options {
	const char *cluster;    /* for the marker check after a 409 */
	FILE *out;              /* progress lines */
	bool live_status;       /* a status line redrawn in place (a terminal) */
	uint64_t op_timeout_ms; /* each operation's wait, 0: 10 minutes */
};

struct apply_stats {
	size_t done, failed, not_started;
	uint64_t wall_ms;
	uint64_t sum_ms; /* the operations' own times, added up */
};

int apply_plan(struct runner *r, struct plan *p, const struct apply_options *o,
	       struct apply_stats *st, struct error *err);

#endif
