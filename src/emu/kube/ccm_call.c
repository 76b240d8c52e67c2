/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The emulated CCM's Compute calls and the tasks that chain them (ccm.h).
 *
 * A call is an internal sub-request on the cloud port (core/subreq.h): it meets the injected
 * faults, --require-auth and the handlers as any client's request does, and its answer is
 * what the API answered. Like the GCE provider's client (k8s-cloud-provider), a mutation's
 * Operation is waited on with POST .../operations/NAME/wait until it is DONE, and an
 * Operation that failed is an error with its httpErrorStatusCode and "CODE - message"
 * (k8s-cloud-provider pkg/cloud/op.go). The credentials are the instance's service account
 * from the metadata server, as the CCM on a GCE node gets them (Metadata-Flavor: Google),
 * renewed before they expire. A call that gets no answer (a reset, or nothing before the
 * timeout) fails; the service controller retries the sync later.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/str.h"
#include "emu/core/subreq.h"
#include "emu/kube/ccm.h"

#define TOKEN_PATH      "/computeMetadata/v1/instance/service-accounts/default/token"
#define TOKEN_MARGIN_MS 60000 /* renewed this long before it expires */
#define CALL_SLACK_MS   60000 /* beyond the longest operations/wait answer */

struct ccm_call {
	struct ccm_task *t;
	int next;
	char *method, *path;
	char *body; /* JSON text, or NULL */
	bool token_fetch;
	bool waiting; /* polling an Operation */
	bool unsent;  /* the request could not be made */
	struct emu_request *sub;
	long timeout_timer, done_timer;
	unsigned status;
	char *reply;
	size_t reply_len;
};

static void task_run(struct ccm_task *t);
static void call_send(struct ccm_call *c);

/* ---- replies ---- */

static void reply_clear(struct ccm_reply *r)
{
	json_decref(r->body);
	r->body = NULL;
	r->status = 0;
	r->err[0] = '\0';
}

/* googleapi.Error's text: "googleapi: Error 404: MESSAGE, REASON". */
static void google_error(struct ccm_reply *r, const char *what)
{
	const json_t *e = json_object_get(r->body, "error");
	const char *msg = kj_str(e, "message"),
		   *reason = kj_str(json_array_get(json_object_get(e, "errors"), 0), "reason");

	if (msg)
		snprintf(r->err, sizeof(r->err), "googleapi: Error %u: %s%s%s", r->status, msg,
			 reason ? ", " : "", reason ? reason : "");
	else
		snprintf(r->err, sizeof(r->err), "googleapi: got HTTP response code %u (%s)",
			 r->status, what);
}

static void call_free(struct ccm_call *c)
{
	struct emu *emu;

	if (!c)
		return;
	emu = ccm_kube(c->t->job->ccm)->emu;
	if (c->timeout_timer)
		emu_timer_cancel(emu, c->timeout_timer);
	if (c->done_timer)
		emu_timer_cancel(emu, c->done_timer);
	emu_subreq_free(c->sub);
	free(c->method);
	free(c->path);
	free(c->body);
	free(c->reply);
	free(c);
}

/* The call is over: its task goes on with the answer in t->r. */
static void call_finish(struct ccm_call *c, unsigned status, json_t *body, const char *err)
{
	struct ccm_task *t = c->t;

	reply_clear(&t->r);
	t->r.status = status;
	t->r.body = body;
	if (err)
		snprintf(t->r.err, sizeof(t->r.err), "%s", err);
	else if (status >= 300)
		google_error(&t->r, c->path);
	t->step = c->next;
	t->call = NULL;
	call_free(c);
	task_run(t);
}

/* An Operation that is DONE: its error, as k8s-cloud-provider's op.go reports it. */
static void operation_done(struct ccm_call *c, json_t *op)
{
	const json_t *e0 = json_array_get(kj_path(op, "error.errors"), 0);
	char err[768];
	unsigned code;

	if (!e0) {
		call_finish(c, 200, op, NULL);
		return;
	}
	code = (unsigned)json_integer_value(json_object_get(op, "httpErrorStatusCode"));
	if (!code)
		code = 400;
	snprintf(err, sizeof(err), "googleapi: Error %u: %s - %s", code, kj_str(e0, "code") ?: "",
		 kj_str(e0, "message") ?: "");
	call_finish(c, code, op, err);
}

static void token_taken(struct ccm_call *c, json_t *body);

static void call_answered(struct ccm_call *c)
{
	json_t *body = c->reply_len ? json_loadb(c->reply, c->reply_len, 0, NULL) : NULL;
	unsigned status = c->status;
	char err[512];

	emu_subreq_free(c->sub);
	c->sub = NULL;
	if (c->timeout_timer) {
		emu_timer_cancel(ccm_kube(c->t->job->ccm)->emu, c->timeout_timer);
		c->timeout_timer = 0;
	}
	if (status == 0) {
		json_decref(body);
		snprintf(err, sizeof(err), "%s \"%s\": %s", c->method, c->path,
			 c->unsent ? "cannot make the request" : "read: connection reset by peer");
		c->token_fetch = false;
		call_finish(c, 0, NULL, err);
		return;
	}
	if (c->token_fetch) {
		token_taken(c, body);
		return;
	}
	if (status == 200 && strcmp(kj_str(body, "kind") ?: "", "compute#operation") == 0 &&
	    (c->waiting || strcmp(c->method, "GET") != 0)) {
		const char *self = ccm_url_path(kj_str(body, "selfLink"));

		if (!strcmp(kj_str(body, "status") ?: "", "DONE")) {
			operation_done(c, body);
			return;
		}
		if (!self) {
			json_decref(body);
			call_finish(c, 0, NULL, "operation without a selfLink");
			return;
		}
		/* POST .../operations/NAME/wait until DONE (each answer comes by 2 minutes). */
		free(c->path);
		c->path = str_printf("%s/wait", self);
		free(c->method);
		c->method = strdup("POST");
		free(c->body);
		c->body = NULL;
		c->waiting = true;
		json_decref(body);
		if (!c->path || !c->method) {
			call_finish(c, 0, NULL, "out of memory");
			return;
		}
		call_send(c);
		return;
	}
	call_finish(c, status, body, NULL);
}

static void done_timer(struct emu *emu, void *arg)
{
	struct ccm_call *c = arg;

	(void)emu;
	c->done_timer = 0;
	call_answered(c);
}

/* The sub-request has its answer (possibly inside emu_subreq_run): go on from the loop. */
static void sub_done(struct emu_request *sub, void *arg)
{
	struct ccm_call *c = arg;
	const char *body;
	size_t len;

	c->status = emu_subreq_status(sub);
	body = emu_subreq_body(sub, &len);
	free(c->reply);
	c->reply = malloc(len + 1);
	c->reply_len = c->reply ? len : 0;
	if (c->reply) {
		memcpy(c->reply, body, len);
		c->reply[len] = '\0';
	}
	if (!c->done_timer) {
		c->done_timer = emu_timer_add(sub->emu, 0, done_timer, c);
		if (c->done_timer < 0)
			c->done_timer = 0;
	}
}

static void timeout_timer(struct emu *emu, void *arg)
{
	struct ccm_call *c = arg;
	char err[512];

	(void)emu;
	c->timeout_timer = 0;
	if (c->done_timer)
		return; /* answered meanwhile */
	snprintf(err, sizeof(err), "%s \"%s\": context deadline exceeded", c->method, c->path);
	emu_subreq_free(c->sub);
	c->sub = NULL;
	c->token_fetch = false;
	call_finish(c, 0, NULL, err);
}

static void call_send(struct ccm_call *c)
{
	struct ccm *ccm = c->t->job->ccm;
	struct emu *emu = ccm_kube(ccm)->emu;
	const char *token = ccm_token(ccm);
	char *auth = NULL;
	const char *headers[4];
	size_t n = 0;

	headers[n++] = "User-Agent: " CCM_USER_AGENT;
	if (c->token_fetch) {
		headers[n++] = "Metadata-Flavor: Google";
	} else {
		if (token) {
			auth = str_printf("Authorization: Bearer %s", token);
			if (auth)
				headers[n++] = auth;
		}
		if (c->body)
			headers[n++] = "Content-Type: application/json";
	}
	c->status = 0;
	c->sub = emu_subreq_new_internal(
	    emu, c->token_fetch ? "GET" : c->method, c->token_fetch ? TOKEN_PATH : c->path, headers,
	    n, c->token_fetch || !c->body ? "" : c->body,
	    c->token_fetch || !c->body ? 0 : strlen(c->body), sub_done, c);
	free(auth);
	if (!c->sub) {
		/* Answered from the loop, never from inside the step that made the call. */
		c->unsent = true;
		c->status = 0;
		c->done_timer = emu_timer_add(emu, 0, done_timer, c);
		if (c->done_timer < 0)
			c->done_timer = 0;
		return;
	}
	c->timeout_timer =
	    emu_timer_add(emu, emu->opt.operation_wait_max_ms + CALL_SLACK_MS, timeout_timer, c);
	if (c->timeout_timer < 0)
		c->timeout_timer = 0;
	emu_subreq_run(c->sub);
}

/* The metadata server's token answer: kept, then the call itself goes. */
static void token_taken(struct ccm_call *c, json_t *body)
{
	const char *tok = kj_str(body, "access_token");
	json_int_t life = json_integer_value(json_object_get(body, "expires_in"));

	if (c->status != 200 || !tok) {
		char err[256];

		snprintf(err, sizeof(err),
			 "oauth2: cannot fetch token from the metadata server: HTTP %u", c->status);
		json_decref(body);
		c->token_fetch = false;
		call_finish(c, 0, NULL, err);
		return;
	}
	ccm_set_token(c->t->job->ccm, tok, (uint64_t)(life > 0 ? life : 1) * 1000);
	json_decref(body);
	c->token_fetch = false;
	call_send(c);
}

int ccm_call_path(struct ccm_task *t, int next, const char *method, json_t *body, const char *path)
{
	struct ccm_call *c = calloc(1, sizeof(*c));

	if (!c || !(c->method = strdup(method)) || !(c->path = strdup(path)) ||
	    (body && !(c->body = json_dumps(body, JSON_COMPACT)))) {
		json_decref(body);
		if (c) {
			free(c->method);
			free(c->path);
			free(c);
		}
		return ccm_fail(t, "out of memory");
	}
	json_decref(body);
	c->t = t;
	c->next = next;
	t->call = c;
	c->token_fetch = !ccm_token(t->job->ccm);
	call_send(c);
	return CCM_WAIT;
}

int ccm_call(struct ccm_task *t, int next, const char *method, json_t *body, const char *fmt, ...)
{
	struct emu *emu = ccm_kube(t->job->ccm)->emu;
	char rel[1024], *path;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	path = str_printf("/compute/v1/projects/%s/%s", emu->opt.project, rel);
	if (!path) {
		json_decref(body);
		return ccm_fail(t, "out of memory");
	}
	ret = ccm_call_path(t, next, method, body, path);
	free(path);
	return ret;
}

static void call_abort(struct ccm_call *c)
{
	c->t->call = NULL;
	call_free(c);
}

int ccm_add_query(char **path, const char *key, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(value), k = 0;
	char *esc = malloc(3 * n + 1), *out;

	if (!esc)
		return -ENOMEM;
	/* RFC 3986 unreserved characters stay; the rest is %XX (the emulator links no libcurl). */
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)value[i];

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			esc[k++] = (char)ch;
		} else {
			esc[k++] = '%';
			esc[k++] = hex[ch >> 4];
			esc[k++] = hex[ch & 15];
		}
	}
	esc[k] = '\0';
	out = str_printf("%s%c%s=%s", *path, strchr(*path, '?') ? '&' : '?', key, esc);
	free(esc);
	if (!out)
		return -ENOMEM;
	free(*path);
	*path = out;
	return 0;
}

const char *ccm_url_path(const char *url)
{
	const char *p = url ? strstr(url, "/compute/v1/") : NULL;

	return p;
}

char *ccm_url(const struct ccm_job *j, const char *fmt, ...)
{
	struct emu *emu = ccm_kube(j->ccm)->emu;
	char rel[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	return str_printf("%s/compute/v1/projects/%s/%s", emu->cloud_url, emu->opt.project, rel);
}

bool ccm_ok(const struct ccm_task *t)
{
	return t->r.status >= 200 && t->r.status < 300;
}

bool ccm_is(const struct ccm_task *t, unsigned status)
{
	return t->r.status == status;
}

bool ccm_in_use(const struct ccm_task *t)
{
	return t->r.status == 400 && strstr(t->r.err, "being used by") != NULL;
}

/* ---- tasks ---- */

int ccm_fail(struct ccm_task *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
	t->failed = true;
	return CCM_DONE;
}

int ccm_fail_call(struct ccm_task *t, const char *prefix)
{
	return ccm_fail(t, "%s%s", prefix ? prefix : "", t->r.err[0] ? t->r.err : "no answer");
}

static void task_free(struct ccm_task *t)
{
	if (!t)
		return;
	if (t->call)
		call_abort(t->call);
	if (t->start_timer)
		emu_timer_cancel(ccm_kube(t->job->ccm)->emu, t->start_timer);
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	reply_clear(&t->r);
	if (t->loc_free)
		t->loc_free(t->loc);
	free(t);
}

/* utilerrors.Flatten of the goroutines' errors: "[a, b]" once there are two. */
static void join_error(struct ccm_task *p, const char *err)
{
	size_t n = strlen(p->err);
	char *joined;

	if (!p->failed)
		joined = strdup(err);
	else if (n > 1 && p->err[0] == '[' && p->err[n - 1] == ']')
		joined = str_printf("%.*s, %s]", (int)(n - 1), p->err, err);
	else
		joined = str_printf("[%s, %s]", p->err, err);
	snprintf(p->err, sizeof(p->err), "%s", joined ? joined : err);
	free(joined);
	p->failed = true;
}

static void task_run(struct ccm_task *t);

/* A task ended: its parent hears of it, or the job is over. */
static void task_end(struct ccm_task *t)
{
	struct ccm_task *p = t->parent;
	struct ccm_job *j = t->job;

	if (!p) {
		bool ok = !t->failed;

		snprintf(j->err, sizeof(j->err), "%s", t->failed ? t->err : "");
		j->root = NULL;
		task_free(t);
		j->done(j, ok, ok ? NULL : j->err);
		return;
	}
	if (t->failed)
		join_error(p, t->err);
	task_free(t);
	if (--p->children == 0)
		task_run(p);
}

static void task_run(struct ccm_task *t)
{
	int ret = t->fn(t);

	if (t->call || t->children)
		return;
	if (ret == CCM_WAIT && !t->failed)
		ccm_fail(t, "internal error: a step waits for nothing");
	task_end(t);
}

static void start_timer(struct emu *emu, void *arg)
{
	struct ccm_task *t = arg;

	(void)emu;
	t->start_timer = 0;
	task_run(t);
}

static struct ccm_task *task_new(struct ccm_job *j, struct ccm_task *parent, ccm_step_fn fn,
				 void *loc, void (*loc_free)(void *))
{
	struct ccm_task *t = calloc(1, sizeof(*t));

	if (!t) {
		if (loc_free)
			loc_free(loc);
		return NULL;
	}
	t->job = j;
	t->parent = parent;
	t->fn = fn;
	t->loc = loc;
	t->loc_free = loc_free;
	t->next = j->tasks;
	if (t->next)
		t->next->pprev = &t->next;
	t->pprev = &j->tasks;
	j->tasks = t;
	t->start_timer = emu_timer_add(ccm_kube(j->ccm)->emu, 0, start_timer, t);
	if (t->start_timer < 0) {
		t->start_timer = 0;
		task_free(t);
		return NULL;
	}
	return t;
}

void ccm_spawn(struct ccm_task *t, ccm_step_fn fn, void *loc, void (*loc_free)(void *))
{
	if (!task_new(t->job, t, fn, loc, loc_free)) {
		join_error(t, "out of memory");
		return;
	}
	t->children++;
}

int ccm_job_start(struct ccm_job *j, ccm_step_fn fn, void *loc, void (*loc_free)(void *))
{
	j->root = task_new(j, NULL, fn, loc, loc_free);
	return j->root ? 0 : -ENOMEM;
}

void ccm_job_free(struct ccm_job *j)
{
	if (!j)
		return;
	/* Tasks never look at their parent when freed: any order will do. */
	while (j->tasks)
		task_free(j->tasks);
	j->root = NULL;
	json_decref(j->svc);
	json_decref(j->nodes);
	json_decref(j->hosts);
	json_decref(j->status);
	json_decref(j->rule);
	free(j);
}
