/* SPDX-License-Identifier: Apache-2.0 */
/* Replaying a repair plan on a model of the VPC: shared by the unit test and the fuzzer. */
#ifndef TALOS_GCP_TESTS_PLAN_REPLAY_H
#define TALOS_GCP_TESTS_PLAN_REPLAY_H

#include <stddef.h>

#include "cli/alignment.h"

/*
 * Applies p step by step to nic0's alias lists, refusing what GCP would refuse: a clear of
 * a range that is not there; a set of a range that overlaps one of the same interface, or
 * one that any interface on the same network holds. Then checks that every Node the plan
 * sets, and every misaligned row it does not refuse, ends with its podCIDR first, and that
 * no range the plan did not clear went away. 0, or -1 with why.
 */
int plan_replay(const struct cluster_view *v, const struct alignment *a,
		const struct repair_plan *p, char *why, size_t len);

#endif
