/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/cluster.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/parse.h"

/* One API session per worker thread: credentials and Compute client are not shared. */
struct worker_session {
	struct worker_session *next;
	struct session s;
};

static int cluster_cmd_option(struct cluster_cmd *c, int opt, const char *arg)
{
	uint64_t n;

	switch (opt) {
	case 'f':
		c->spec_path = arg;
		return 1;
	case OPT_PARALLELISM:
		if (parse_u64(arg, 256, &n) < 0 || n == 0) {
			log_error("--parallelism '%s': want a number from 1 to 256", arg);
			return -EINVAL;
		}
		c->parallelism = (unsigned)n;
		return 1;
	default:
		return 0;
	}
}

int cluster_cmd_args(struct cluster_cmd *c, int argc, char **argv, const struct option *longopts,
		     const char *const *formats, const char *usage, cluster_option_fn on_option,
		     void *arg)
{
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":" CLUSTER_SHORT_OPTIONS, longopts, NULL)) != -1) {
		int h = api_opts_handle(&c->api, opt, optarg, argv);

		if (h == 0)
			h = cluster_cmd_option(c, opt, optarg);
		if (h == 0 && on_option)
			h = on_option(arg, opt);
		if (h < 0)
			return -EINVAL;
		if (h == 0) {
			log_error("%s: unknown flag (see --help)", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (c->api.help) {
		fputs(usage, stdout);
		return 1;
	}
	if (optind < argc) {
		log_error("%s: unexpected argument (see --help)", argv[optind]);
		return -EINVAL;
	}
	return api_opts_output(&c->api, formats) < 0 ? -EINVAL : 0;
}

static int worker_client(void *arg, struct gcp_compute **out, struct error *err)
{
	struct cluster_cmd *c = arg;
	struct worker_session *w = calloc(1, sizeof(*w));
	struct api_opts o = c->api;
	int ret;

	if (!w)
		return error_set(err, ENOMEM, "out of memory");
	o.project = c->project;
	ret = session_open(&w->s, &o, SESSION_GCP, err);
	if (ret < 0) {
		free(w);
		return ret;
	}
	pthread_mutex_lock(&c->lock);
	w->next = c->workers;
	c->workers = w;
	pthread_mutex_unlock(&c->lock);
	*out = w->s.compute;
	return 0;
}

static void worker_client_free(void *arg, struct gcp_compute *compute)
{
	struct cluster_cmd *c = arg;
	struct worker_session **pp;

	pthread_mutex_lock(&c->lock);
	for (pp = &c->workers; *pp; pp = &(*pp)->next) {
		if ((*pp)->s.compute == compute) {
			struct worker_session *w = *pp;

			*pp = w->next;
			session_log_stats(&w->s);
			session_close(&w->s);
			free(w);
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
}

int cluster_cmd_open(struct cluster_cmd *c, unsigned spec_flags, struct error *err)
{
	struct runner_options ro = {
	    .client_new = worker_client, .client_free = worker_client_free, .client_arg = c};
	int ret;

	pthread_mutex_init(&c->lock, NULL);
	if (!c->spec_path)
		return error_set(err, EINVAL, "-f FILE: the cluster spec is required (see --help)");
	ret = spec_load(c->spec_path, spec_flags, &c->spec, err);
	if (ret < 0)
		return ret;
	if (c->spec->project && c->api.project && strcmp(c->spec->project, c->api.project) != 0)
		return error_set(err, EINVAL, "--project %s: the spec %s says project %s",
				 c->api.project, c->spec_path, c->spec->project);
	if (c->spec->project)
		c->api.project = c->spec->project;
	ret = session_open(&c->session, &c->api, SESSION_GCP, err);
	if (ret < 0)
		return ret;
	c->project = c->session.project;
	if (!c->spec->project) {
		c->spec->project = strdup(c->project);
		if (!c->spec->project)
			return error_set(err, ENOMEM, "out of memory");
	}
	ro.parallelism = c->parallelism ? c->parallelism : CLUSTER_PARALLELISM;
	return runner_new(&ro, &c->runner, err);
}

int cluster_cmd_plan(struct cluster_cmd *c, unsigned plan_flags, struct error *err)
{
	int ret;

	if (c->have_plan) {
		plan_free(&c->plan);
		c->have_plan = false;
	}
	if (c->have_live) {
		live_free(&c->live);
		c->have_live = false;
	}
	rset_free(&c->desired);
	ret = live_read(c->runner, c->spec, c->project, &c->live, err);
	if (ret < 0)
		return ret;
	c->have_live = true;
	if (!(plan_flags & PLAN_DESTROY)) {
		ret = model_desired(c->spec, c->project, &c->desired, err);
		if (ret < 0)
			return ret;
	}
	ret = plan_make(c->spec, c->project, &c->desired, &c->live, plan_flags, &c->plan, err);
	if (ret == 0)
		c->have_plan = true;
	return ret;
}

int cluster_cmd_apply(struct cluster_cmd *c, unsigned plan_flags, const char *what)
{
	struct apply_options ao = {
	    .cluster = c->spec->name, .out = stdout, .live_status = isatty(STDOUT_FILENO) == 1};
	struct apply_stats st;
	struct error err = {0};
	size_t ops = c->plan.nops;
	int cp = c->plan.critical_path, ret;

	if (ops == 0)
		return 0;
	printf("\n");
	fflush(stdout);
	ret = apply_plan(c->runner, &c->plan, &ao, &st, &err);
	if (ret < 0) {
		log_error("%s", err.msg);
		log_error("%s stopped: %zu operations done, %zu failed, %zu not started; run it "
			  "again to go on from here",
			  what, st.done, st.failed, st.not_started);
		return 2;
	}
	/* What the API says now: nothing may be left to do. */
	ret = cluster_cmd_plan(c, plan_flags, &err);
	if (ret < 0) {
		log_error("%s", err.msg);
		return 2;
	}
	if (c->plan.nops) {
		plan_print_text(&c->plan, stderr, plan_flags & PLAN_DESTROY);
		log_error("%s: %zu changes remain after applying (is something else changing "
			  "these resources?)",
			  what, c->plan.nchanges);
		return 2;
	}
	printf("\n%s complete: %zu operation%s in %.1fs (critical path %d; the operations took "
	       "%.1fs in all).\n",
	       what, ops, ops == 1 ? "" : "s", (double)st.wall_ms / 1000.0, cp,
	       (double)st.sum_ms / 1000.0);
	return 0;
}

void cluster_cmd_close(struct cluster_cmd *c)
{
	runner_free(c->runner);
	if (c->have_plan)
		plan_free(&c->plan);
	if (c->have_live)
		live_free(&c->live);
	rset_free(&c->desired);
	session_log_stats(&c->session);
	session_close(&c->session);
	spec_free(c->spec);
	c->spec = NULL;
	c->runner = NULL;
}
