/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What plan, up and down share: the flags, the spec, the API sessions (one per worker
 * thread), reading the live state and making the plan.
 */
#ifndef TALOS_GCP_CLI_CLUSTER_H
#define TALOS_GCP_CLI_CLUSTER_H

#include <pthread.h>

#include "cli/options.h"
#include "cli/session.h"
#include "provision/apply.h"
#include "provision/live.h"
#include "provision/plan.h"
#include "provision/runner.h"
#include "provision/spec.h"

#define CLUSTER_PARALLELISM 16

enum {
	OPT_FILE = OPT_API_LAST,
	OPT_PARALLELISM,
	OPT_KEEP_NETWORK,
	OPT_DESTROY,
	OPT_CLUSTER_LAST,
};

#define CLUSTER_LONG_OPTIONS                                                                       \
	{"file", required_argument, NULL, 'f'},                                                    \
	    {"parallelism", required_argument, NULL, OPT_PARALLELISM}, API_LONG_OPTIONS

#define CLUSTER_SHORT_OPTIONS "f:" API_SHORT_OPTIONS

#define CLUSTER_OPTIONS_HELP                                                                       \
	"  -f, --file FILE           the cluster spec (docs/cluster-spec.md)\n"                    \
	"  --parallelism N           operations (and reads) at a time (default 16)\n"

struct cluster_cmd {
	struct api_opts api;
	const char *spec_path;
	unsigned parallelism;
	struct cluster_spec *spec;
	struct session session; /* the first: resolves the project */
	const char *project;
	struct runner *runner;
	pthread_mutex_t lock; /* the workers' sessions */
	struct worker_session *workers;
	struct resource_set desired;
	struct live live;
	bool have_live;
	struct plan plan;
	bool have_plan;
};

/* A subcommand's own flag (--destroy, --keep-network): 1 handled, 0 not known. */
typedef int (*cluster_option_fn)(void *arg, int opt);

/*
 * The command line: the API flags, -f, --parallelism, and the subcommand's own through
 * on_option (may be NULL). 0 to go on; 1 after printing usage (--help); -EINVAL after one
 * error line.
 */
int cluster_cmd_args(struct cluster_cmd *c, int argc, char **argv, const struct option *longopts,
		     const char *const *formats, const char *usage, cluster_option_fn on_option,
		     void *arg);
/* Loads the spec (spec_flags: SPEC_NO_FILES for down), opens the API, starts the runner. */
int cluster_cmd_open(struct cluster_cmd *c, unsigned spec_flags, struct error *err);
/* Reads the live state and makes the plan (plan_flags: PLAN_DESTROY, PLAN_KEEP_NETWORK). */
int cluster_cmd_plan(struct cluster_cmd *c, unsigned plan_flags, struct error *err);
/* up and down: apply c->plan, then read again and check that nothing is left to do. */
int cluster_cmd_apply(struct cluster_cmd *c, unsigned plan_flags, const char *what);
void cluster_cmd_close(struct cluster_cmd *c);

#endif
