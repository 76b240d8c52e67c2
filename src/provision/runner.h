/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Jobs run in parallel by worker threads, each with its own Compute client: a gcp_compute
 * (one libcurl handle, one connection) is not thread-safe, so every worker owns one, made on
 * first use by the caller's factory (credentials included: they cache their token per client).
 *
 * Jobs form a DAG (deps are indexes of jobs that must succeed first). A ready job with the
 * longest chain behind it (height) starts first, so a bounded pool still follows the critical
 * path. When a job fails, what depends on it (directly or not) never starts and the rest
 * goes on, as far as it can get; the first failure is returned and the others are logged.
 */
#ifndef TALOS_GCP_PROVISION_RUNNER_H
#define TALOS_GCP_PROVISION_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/error.h"
#include "gcp/compute.h"

struct runner;

typedef int (*runner_client_fn)(void *arg, struct gcp_compute **out, struct error *err);
typedef void (*runner_client_free_fn)(void *arg, struct gcp_compute *c);

struct runner_options {
	unsigned parallelism; /* worker threads (>= 1) */
	runner_client_fn client_new;
	runner_client_free_fn client_free;
	void *client_arg;
};

int runner_new(const struct runner_options *o, struct runner **out, struct error *err);
void runner_free(struct runner *r);

struct runner_job {
	size_t *deps; /* indexes into the job array */
	size_t ndeps;
	unsigned height; /* filled by runner_heights(): 1 + the longest chain of dependents */
	/* results */
	int ret;          /* 0 done, -errno failed, -ECANCELED never started */
	struct error err; /* the failure */
	uint64_t started_ms, ended_ms;
};

/* One job's work, on a worker thread with its client. */
typedef int (*runner_job_fn)(void *arg, size_t index, struct gcp_compute *c, struct error *err);

/*
 * Fills every job's height; returns the longest chain (the critical path, in jobs), or
 * -ELOOP when the dependencies have a cycle.
 */
int runner_heights(struct runner_job *jobs, size_t n);

/*
 * Runs every job (heights must be set) and returns when all are done or the run stopped
 * after a failure: 0, or the first failure's -errno with err = its message.
 */
int runner_run(struct runner *r, struct runner_job *jobs, size_t n, runner_job_fn fn, void *arg,
	       struct error *err);

#endif
