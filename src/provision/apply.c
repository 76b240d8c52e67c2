/* SPDX-License-Identifier: Apache-2.0 */
#include "provision/apply.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"

#define OP_TIMEOUT_MS     (10 * 60 * 1000)
#define MAX_ATTEMPTS      5
#define APPEAR_TIMEOUT_MS (10 * 60 * 1000)

struct apply_ctx {
	struct plan *p;
	const struct apply_options *o;
	uint64_t t0;
	pthread_mutex_t out_lock;
	size_t running, done, total;
	char status[160];
};

/* ---- progress ---- */

static const char *verb_text(const struct op *op, bool done)
{
	switch (op->type) {
	case OP_INSERT:
		return done ? "created" : "creating";
	case OP_DELETE:
		return done ? "deleted" : "deleting";
	default:
		return done ? "updated" : "updating";
	}
}

static void print_line(struct apply_ctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void print_line(struct apply_ctx *x, const char *fmt, ...)
{
	FILE *f = x->o->out;
	va_list ap;

	if (!f)
		return;
	pthread_mutex_lock(&x->out_lock);
	if (x->o->live_status)
		fputs("\r\033[K", f);
	fprintf(f, "[%6.1fs] ", (double)(now_ms() - x->t0) / 1000.0);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	if (x->o->live_status)
		fprintf(f, "  %zu/%zu done, %zu running ...", x->done, x->total, x->running);
	fflush(f);
	pthread_mutex_unlock(&x->out_lock);
}

static void count(struct apply_ctx *x, int running_delta, int done_delta)
{
	pthread_mutex_lock(&x->out_lock);
	x->running = (size_t)((long)x->running + running_delta);
	x->done = (size_t)((long)x->done + done_delta);
	pthread_mutex_unlock(&x->out_lock);
}

/* ---- one operation ---- */

static bool transient(int ret)
{
	return ret == -EAGAIN || ret == -ECONNRESET || ret == -ECONNREFUSED || ret == -EIO ||
	       ret == -ETIMEDOUT;
}

/* After a 409 on insert: the resource exists, or a run that was killed is creating it. */
static int await_existing(struct apply_ctx *x, struct op *op, struct gcp_compute *c,
			  struct error *err)
{
	uint64_t deadline = now_ms() + APPEAR_TIMEOUT_MS, pause = 100;
	char path[600];
	int ret;

	snprintf(path, sizeof(path), "projects/%s/%s", x->p->project, op->key);
	for (;;) {
		json_t *res = NULL;

		ret = gcp_compute_get(c, path, &res, err);
		if (ret == 0) {
			bool ours = model_owned(op->kind, res, x->o->cluster);

			json_decref(res);
			if (ours)
				return 0;
			return error_set(err, EEXIST,
					 "%s %s exists and is not talos-gcp's for cluster %s: "
					 "refusing to touch it",
					 rkinds[op->kind].label, op->key, x->o->cluster);
		}
		if (ret != -ENOENT && !transient(ret))
			return ret;
		if (now_ms() > deadline)
			return error_set(err, ETIMEDOUT,
					 "%s %s: the name is taken (409) but the resource did not "
					 "appear",
					 rkinds[op->kind].label, op->key);
		sleep_ms(pause);
		if (pause < 2000)
			pause *= 2;
	}
}

/* A stale fingerprint: read the resource again and take its current one. */
static int refresh_fingerprint(struct apply_ctx *x, struct op *op, struct gcp_compute *c,
			       struct error *err)
{
	char path[600];
	json_t *res = NULL, *fp;
	int ret;

	snprintf(path, sizeof(path), "projects/%s/%s", x->p->project, op->key);
	ret = gcp_compute_get(c, path, &res, err);
	if (ret < 0)
		return ret;
	fp = json_path(res, op->fingerprint);
	if (!json_is_string(fp)) {
		json_decref(res);
		return error_set(err, EBADMSG, "%s %s has no %s", rkinds[op->kind].label, op->key,
				 op->fingerprint);
	}
	/* The body names it as the resource's last path segment does ("labelFingerprint"). */
	json_object_set(op->body,
			strrchr(op->fingerprint, '.') ? strrchr(op->fingerprint, '.') + 1
						      : op->fingerprint,
			fp);
	json_decref(res);
	return 0;
}

static int run_op(void *arg, size_t index, struct gcp_compute *c, struct error *err)
{
	struct apply_ctx *x = arg;
	struct op *op = &x->p->ops[index];
	uint64_t t0 = now_ms(), timeout = x->o->op_timeout_ms ?: OP_TIMEOUT_MS;
	char label[300];
	int ret = 0;

	plan_op_label(op, label, sizeof(label));
	count(x, 1, 0);
	if (op->type == OP_CALL)
		print_line(x, "%s %s (%s) ...", verb_text(op, false), label, op->verb);
	else
		print_line(x, "%s %s ...", verb_text(op, false), label);
	for (unsigned attempt = 1;; attempt++) {
		struct gcp_operation gop;
		bool sent = false;

		error_clear(err);
		ret = gcp_compute_mutate(c, op->method, op->path, op->body, &gop, err);
		if (ret == 0) {
			sent = true;
			ret = gcp_compute_wait(c, &gop, timeout, err);
			/* The wait itself failed in transit: the operation may be fine, ask again.
			 */
			for (unsigned w = 0;
			     w < MAX_ATTEMPTS && transient(ret) && ret != -EIO && !gop.done; w++)
				ret = gcp_compute_wait(c, &gop, timeout, err);
		}
		if (ret == 0)
			break;
		if (op->type == OP_INSERT && ret == -EEXIST) {
			ret = await_existing(x, op, c, err);
			break;
		}
		if (op->type == OP_DELETE && ret == -ENOENT) {
			ret = 0; /* already gone (a run before us, or someone else) */
			break;
		}
		if (op->type == OP_CALL && ((strcmp(op->verb, "addInstances") == 0 &&
					     strstr(err->msg, "memberAlreadyExists")) ||
					    (strcmp(op->verb, "removeInstances") == 0 &&
					     strstr(err->msg, "memberNotFound")))) {
			ret = 0;
			break;
		}
		if (attempt >= MAX_ATTEMPTS)
			break;
		if (ret == -ESTALE && op->fingerprint[0]) {
			ret = refresh_fingerprint(x, op, c, err);
			if (ret < 0)
				break;
			continue;
		}
		/* In use while what uses it is going away, or not ready yet: try again soon. */
		if ((ret == -EBUSY && strstr(err->msg, "NOT_READY")) || (transient(ret) && !sent)) {
			sleep_ms(250u << attempt);
			continue;
		}
		break;
	}
	count(x, -1, ret == 0 ? 1 : 0);
	if (ret < 0) {
		error_prefix(err, "%s", label);
		print_line(x, "FAILED %s after %.1fs", label, (double)(now_ms() - t0) / 1000.0);
		return ret;
	}
	print_line(x, "%s %s%s%s%s (%.1fs)", verb_text(op, true), label,
		   op->type == OP_CALL ? " (" : "", op->type == OP_CALL ? op->verb : "",
		   op->type == OP_CALL ? ")" : "", (double)(now_ms() - t0) / 1000.0);
	return 0;
}

int apply_plan(struct runner *r, struct plan *p, const struct apply_options *o,
	       struct apply_stats *st, struct error *err)
{
	struct apply_ctx x = {.p = p, .o = o, .t0 = now_ms(), .total = p->nops};
	int ret;

	memset(st, 0, sizeof(*st));
	pthread_mutex_init(&x.out_lock, NULL);
	ret = runner_run(r, p->jobs, p->nops, run_op, &x, err);
	if (o->live_status && o->out) {
		fputs("\r\033[K", o->out);
		fflush(o->out);
	}
	pthread_mutex_destroy(&x.out_lock);
	st->wall_ms = now_ms() - x.t0;
	for (size_t i = 0; i < p->nops; i++) {
		if (p->jobs[i].ret == 0) {
			st->done++;
			st->sum_ms += p->jobs[i].ended_ms - p->jobs[i].started_ms;
		} else if (p->jobs[i].ret == -ECANCELED) {
			st->not_started++;
		} else {
			st->failed++;
		}
	}
	return ret;
}
