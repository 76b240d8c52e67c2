/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Several aggregated lists at once: a real list page takes hundreds of milliseconds and the
 * pages of one list come one after another (each needs the previous one's nextPageToken), so
 * lists that are independent (filtered ranges of one collection) are read side by side, one
 * connection each, and the cost approaches one round trip.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gcp/compute.h"

struct parallel {
	struct gcp_compute *c;
	const char *resource;
	const struct gcp_list_options *opts;
	size_t n, next;
	gcp_item_fn fn;
	void *arg;
	pthread_mutex_t lock; /* next, the first error, and every call of fn */
	int ret;
	struct error err;
};

struct worker {
	struct parallel *p;
	struct gcp_compute *client; /* a clone; the caller's own for worker 0 */
	pthread_t thread;
	bool started;
};

/* fn, one call at a time; nothing more once a list failed. */
static int locked_item(void *arg, const char *scope, json_t *item)
{
	struct parallel *p = arg;
	int ret;

	pthread_mutex_lock(&p->lock);
	ret = p->ret ? p->ret : p->fn(p->arg, scope, item);
	pthread_mutex_unlock(&p->lock);
	return ret;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct parallel *p = w->p;

	for (;;) {
		struct error err = {0};
		size_t i;
		int ret;

		pthread_mutex_lock(&p->lock);
		i = p->next++;
		ret = p->ret;
		pthread_mutex_unlock(&p->lock);
		if (ret || i >= p->n)
			return NULL;
		ret = gcp_compute_aggregated_list(w->client, p->resource, &p->opts[i], locked_item,
						  p, &err);
		if (ret) {
			pthread_mutex_lock(&p->lock);
			if (!p->ret) {
				p->ret = ret;
				p->err = err;
			}
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
	}
}

int gcp_compute_aggregated_list_parallel(struct gcp_compute *c, const char *resource,
					 const struct gcp_list_options *opts, size_t n,
					 gcp_item_fn fn, void *arg, struct error *err)
{
	struct parallel p = {
	    .c = c, .resource = resource, .opts = opts, .n = n, .fn = fn, .arg = arg};
	size_t nw = n < GCP_PARALLEL_MAX ? n : GCP_PARALLEL_MAX;
	struct worker *w;
	int ret = 0;

	if (n == 0)
		return 0;
	if (n == 1)
		return gcp_compute_aggregated_list(c, resource, opts, fn, arg, err);
	w = calloc(nw, sizeof(*w));
	if (!w)
		return error_set(err, ENOMEM, "out of memory");
	pthread_mutex_init(&p.lock, NULL);
	w[0] = (struct worker){.p = &p, .client = c};
	/* The others on threads of their own, each with its own connection. */
	for (size_t i = 1; i < nw; i++) {
		w[i].p = &p;
		if (gcp_compute_clone(c, &w[i].client, NULL) < 0)
			break; /* fewer workers: the lists are still all read */
		w[i].started = pthread_create(&w[i].thread, NULL, work, &w[i]) == 0;
		if (!w[i].started) {
			gcp_compute_clone_done(c, w[i].client);
			w[i].client = NULL;
			break;
		}
	}
	work(&w[0]);
	for (size_t i = 1; i < nw; i++) {
		if (w[i].started)
			pthread_join(w[i].thread, NULL);
		if (w[i].client)
			gcp_compute_clone_done(c, w[i].client);
	}
	if (p.ret) {
		ret = p.ret;
		if (err)
			*err = p.err;
	}
	pthread_mutex_destroy(&p.lock);
	free(w);
	return ret;
}
