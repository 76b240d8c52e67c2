/* SPDX-License-Identifier: Apache-2.0 */
#include "provision/runner.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct runner {
	struct runner_options opt;
	struct gcp_compute **clients; /* one per worker, kept from one run to the next */
};

struct run {
	struct runner *r;
	struct runner_job *jobs;
	size_t n;
	runner_job_fn fn;
	void *arg;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	unsigned *waiting;    /* unfinished dependencies per job */
	unsigned char *state; /* 0 waiting, 1 running, 2 finished */
	size_t **dependents;  /* reverse edges */
	size_t *ndependents;
	size_t finished, running;
	size_t failed_first; /* index of the first failure, or n */
};

struct worker {
	struct run *run;
	unsigned index;
};

int runner_new(const struct runner_options *o, struct runner **out, struct error *err)
{
	struct runner *r = calloc(1, sizeof(*r));

	if (!r)
		return error_set(err, ENOMEM, "out of memory");
	r->opt = *o;
	if (r->opt.parallelism == 0)
		r->opt.parallelism = 1;
	r->clients = calloc(r->opt.parallelism, sizeof(*r->clients));
	if (!r->clients) {
		free(r);
		return error_set(err, ENOMEM, "out of memory");
	}
	*out = r;
	return 0;
}

void runner_free(struct runner *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < r->opt.parallelism; i++)
		if (r->clients[i] && r->opt.client_free)
			r->opt.client_free(r->opt.client_arg, r->clients[i]);
	free(r->clients);
	free(r);
}

int runner_heights(struct runner_job *jobs, size_t n)
{
	/* Kahn's algorithm on the reverse graph: a job's height is 1 + its dependents' max. */
	size_t *order = calloc(n ? n : 1, sizeof(*order)),
	       *indeg = calloc(n ? n : 1, sizeof(*indeg));
	size_t head = 0, tail = 0;
	int longest = 0;

	if (!order || !indeg) {
		free(order);
		free(indeg);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		indeg[i] = jobs[i].ndeps;
	for (size_t i = 0; i < n; i++) {
		jobs[i].height = 1;
		if (indeg[i] == 0)
			order[tail++] = i;
	}
	/* Topological order from the roots (no dependencies) ... */
	while (head < tail) {
		size_t j = order[head++];

		for (size_t k = 0; k < n; k++)
			for (size_t d = 0; d < jobs[k].ndeps; d++)
				if (jobs[k].deps[d] == j && --indeg[k] == 0)
					order[tail++] = k;
	}
	if (tail != n) {
		free(order);
		free(indeg);
		return -ELOOP;
	}
	/* ... then heights from the sinks back. */
	for (size_t i = n; i-- > 0;) {
		struct runner_job *j = &jobs[order[i]];

		for (size_t d = 0; d < j->ndeps; d++)
			if (jobs[j->deps[d]].height < j->height + 1)
				jobs[j->deps[d]].height = j->height + 1;
	}
	for (size_t i = 0; i < n; i++)
		if ((int)jobs[i].height > longest)
			longest = (int)jobs[i].height;
	free(order);
	free(indeg);
	return longest;
}

/* The ready job with the longest chain behind it; n when none. Under the lock. */
static size_t pick(struct run *run)
{
	size_t best = run->n;

	for (size_t i = 0; i < run->n; i++)
		if (run->state[i] == 0 && run->waiting[i] == 0 &&
		    (best == run->n || run->jobs[i].height > run->jobs[best].height))
			best = i;
	return best;
}

/* What needs a failed job never starts; the rest goes on. Under the lock. */
static void cancel_dependents(struct run *run, size_t j)
{
	for (size_t d = 0; d < run->ndependents[j]; d++) {
		size_t k = run->dependents[j][d];

		if (run->state[k] != 0)
			continue;
		run->state[k] = 2;
		run->finished++;
		run->jobs[k].ret = -ECANCELED;
		cancel_dependents(run, k);
	}
}

static void *work(void *p)
{
	struct worker *w = p;
	struct run *run = w->run;
	struct runner *r = run->r;

	pthread_mutex_lock(&run->lock);
	for (;;) {
		size_t j = run->n;
		int ret;

		while (run->finished < run->n && (j = pick(run)) == run->n)
			pthread_cond_wait(&run->changed, &run->lock);
		if (run->finished == run->n)
			break;
		run->state[j] = 1;
		run->running++;
		pthread_mutex_unlock(&run->lock);

		run->jobs[j].started_ms = now_ms();
		error_clear(&run->jobs[j].err);
		ret = 0;
		if (!r->clients[w->index])
			ret = r->opt.client_new(r->opt.client_arg, &r->clients[w->index],
						&run->jobs[j].err);
		if (ret == 0)
			ret = run->fn(run->arg, j, r->clients[w->index], &run->jobs[j].err);
		run->jobs[j].ret = ret;
		run->jobs[j].ended_ms = now_ms();

		pthread_mutex_lock(&run->lock);
		run->state[j] = 2;
		run->running--;
		run->finished++;
		if (ret < 0) {
			if (run->failed_first == run->n)
				run->failed_first = j;
			cancel_dependents(run, j);
		} else {
			for (size_t d = 0; d < run->ndependents[j]; d++)
				run->waiting[run->dependents[j][d]]--;
		}
		pthread_cond_broadcast(&run->changed);
	}
	pthread_mutex_unlock(&run->lock);
	return NULL;
}

int runner_run(struct runner *r, struct runner_job *jobs, size_t n, runner_job_fn fn, void *arg,
	       struct error *err)
{
	struct run run = {.r = r, .jobs = jobs, .n = n, .fn = fn, .arg = arg, .failed_first = n};
	unsigned nthreads = r->opt.parallelism;
	pthread_t *threads = NULL;
	struct worker *workers = NULL;
	unsigned started = 0;
	int ret = 0;

	if (n == 0)
		return 0;
	if (nthreads > n)
		nthreads = (unsigned)n;
	run.waiting = calloc(n, sizeof(*run.waiting));
	run.state = calloc(n, 1);
	run.dependents = calloc(n, sizeof(*run.dependents));
	run.ndependents = calloc(n, sizeof(*run.ndependents));
	threads = calloc(nthreads, sizeof(*threads));
	workers = calloc(nthreads, sizeof(*workers));
	if (!run.waiting || !run.state || !run.dependents || !run.ndependents || !threads ||
	    !workers) {
		ret = error_set(err, ENOMEM, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		jobs[i].ret = -ECANCELED;
		run.waiting[i] = (unsigned)jobs[i].ndeps;
		for (size_t d = 0; d < jobs[i].ndeps; d++) {
			size_t p = jobs[i].deps[d];
			size_t *list =
			    realloc(run.dependents[p], (run.ndependents[p] + 1) * sizeof(*list));

			if (!list) {
				ret = error_set(err, ENOMEM, "out of memory");
				goto cleanup;
			}
			run.dependents[p] = list;
			list[run.ndependents[p]++] = i;
		}
	}
	pthread_mutex_init(&run.lock, NULL);
	pthread_cond_init(&run.changed, NULL);
	for (unsigned i = 0; i < nthreads; i++) {
		workers[i] = (struct worker){.run = &run, .index = i};
		if (pthread_create(&threads[i], NULL, work, &workers[i]) != 0)
			break;
		started++;
	}
	if (started == 0) {
		ret = error_set(err, EAGAIN, "cannot start worker threads");
	} else {
		for (unsigned i = 0; i < started; i++)
			pthread_join(threads[i], NULL);
	}
	pthread_cond_destroy(&run.changed);
	pthread_mutex_destroy(&run.lock);
	if (ret == 0 && run.failed_first < n) {
		struct runner_job *f = &jobs[run.failed_first];

		ret = f->ret;
		if (err)
			*err = f->err;
		for (size_t i = 0; i < n; i++)
			if (i != run.failed_first && jobs[i].ret < 0 && jobs[i].ret != -ECANCELED)
				log_error("%s", jobs[i].err.msg);
	}
cleanup:
	for (size_t i = 0; run.dependents && i < n; i++)
		free(run.dependents[i]);
	free(run.dependents);
	free(run.ndependents);
	free(run.waiting);
	free(run.state);
	free(threads);
	free(workers);
	return ret;
}
