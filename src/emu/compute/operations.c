/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Operations (zoneOperations, regionOperations, globalOperations).
 *
 * A mutation returns an Operation with status RUNNING; its effect is applied when the
 * Operation completes, --operation-delay later (default 0: the next loop turn), so clients
 * have to wait for it as they do on GCP. Failures found at that point go into
 * Operation.error.errors[] with httpErrorStatusCode, as GCP reports them.
 *
 * POST .../operations/NAME/wait "waits for the specified Operation resource to return as
 * DONE or for the request to approach the 2 minute deadline"
 * (https://cloud.google.com/compute/docs/reference/rest/v1/zoneOperations/wait): the
 * connection is suspended and resumed on completion or at the deadline (--operation-wait-max),
 * never blocking the loop.
 *
 * requestId: "if you make the request again with the same request ID, the server can check if
 * original operation with the same request ID was received, and if so, will ignore the second
 * request" (instances/insert reference): a repeated requestId gets the original Operation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "emu/compute/compute.h"

struct pending_op {
	struct pending_op *next;
	struct compute *c;
	char *scope, *name; /* the Operation's */
	json_t *mutation;
	long timer;
};

struct waiter {
	struct waiter *next;
	struct compute *c;
	struct emu_request *req;
	char *scope, *name;
	long timer;
	bool linked;
};

static struct coll *ops(struct compute *c)
{
	return compute_coll(c, "operations");
}

static const char *http_reason(unsigned status)
{
	switch (status) {
	case 400:
		return "BAD REQUEST";
	case 403:
		return "FORBIDDEN";
	case 404:
		return "NOT FOUND";
	case 409:
		return "CONFLICT";
	case 412:
		return "PRECONDITION FAILED";
	case 429:
		return "TOO MANY REQUESTS";
	default:
		return "INTERNAL SERVER ERROR";
	}
}

/* ---- waiters ---- */

static void waiter_unlink(struct waiter *w)
{
	struct waiter **pp;

	if (!w->linked)
		return;
	for (pp = &w->c->waiters; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	w->linked = false;
	if (w->timer > 0)
		emu_timer_cancel(w->c->emu, w->timer);
	w->timer = 0;
}

static void waiter_wake(struct waiter *w)
{
	waiter_unlink(w);
	emu_request_resume(w->req);
}

static int wait_resume(struct emu_request *req)
{
	struct waiter *w = req->handler_data;
	struct item *it = coll_find(ops(w->c), w->scope, w->name);
	struct api_error e;

	if (!it) {
		char path[400];

		snprintf(path, sizeof(path), "projects/%s/%s/operations/%s", w->c->emu->opt.project,
			 w->scope, w->name);
		api_not_found(&e, path);
		return api_reply_error(req, &e);
	}
	/* At the deadline this is the current state, which "might be DONE or still in progress". */
	return compute_reply(req, 200, json_incref(it->res));
}

static void wait_close(struct emu_request *req)
{
	struct waiter *w = req->handler_data;

	if (!w)
		return;
	waiter_unlink(w);
	free(w->scope);
	free(w->name);
	free(w);
	req->handler_data = NULL;
}

static void wait_deadline(struct emu *emu, void *arg)
{
	struct waiter *w = arg;

	(void)emu;
	w->timer = 0;
	waiter_wake(w);
}

static void wake_waiters(struct compute *c, const char *scope, const char *name)
{
	struct waiter *w = c->waiters, *next;

	for (; w; w = next) {
		next = w->next;
		if (strcmp(w->scope, scope) == 0 && strcmp(w->name, name) == 0)
			waiter_wake(w);
	}
}

void op_release_waiters(struct compute *c)
{
	while (c->waiters)
		waiter_wake(c->waiters);
}

static int op_wait(struct call *k, struct item *it, struct api_error *e)
{
	struct compute *c = k->c;
	uint64_t max = c->emu->opt.operation_wait_max_ms;
	struct waiter *w;
	long t;

	if (strcmp(jstr(it->res, "status") ? jstr(it->res, "status") : "", "DONE") == 0 || max == 0)
		return compute_reply(k->req, 200, json_incref(it->res));
	w = calloc(1, sizeof(*w));
	if (!w)
		return api_fail(e, 500, "internalError", "out of memory");
	w->c = c;
	w->req = k->req;
	w->scope = strdup(it->scope);
	w->name = strdup(it->name);
	t = emu_timer_add(c->emu, max, wait_deadline, w);
	if (!w->scope || !w->name || t < 0) {
		free(w->scope);
		free(w->name);
		free(w);
		return api_fail(e, 500, "internalError", "out of memory");
	}
	w->timer = t;
	w->next = c->waiters;
	w->linked = true;
	c->waiters = w;
	k->req->handler_data = w;
	k->req->on_resume = wait_resume;
	k->req->on_close = wait_close;
	emu_request_suspend(k->req);
	return 0;
}

/* ---- completion ---- */

static void pending_free(struct pending_op *p)
{
	if (p->timer > 0)
		emu_timer_cancel(p->c->emu, p->timer);
	json_decref(p->mutation);
	free(p->scope);
	free(p->name);
	free(p);
}

static void pending_unlink(struct pending_op *p)
{
	struct pending_op **pp;

	for (pp = &p->c->pending; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

static void complete(struct emu *emu, void *arg)
{
	struct pending_op *p = arg;
	struct compute *c = p->c;
	struct api_error e = {0};
	struct item *it;
	int ret;

	(void)emu;
	p->timer = 0;
	pending_unlink(p);
	ret = compute_apply(c, p->mutation, &e);
	it = coll_find(ops(c), p->scope, p->name);
	if (it) {
		if (ret < 0) {
			json_object_set_new(it->res, "error", api_error_operation_json(&e));
			json_object_set_new(it->res, "httpErrorStatusCode", json_integer(e.status));
			json_object_set_new(it->res, "httpErrorMessage",
					    json_string(http_reason(e.status)));
			log_debug("operation %s failed: %s", p->name, e.message);
		}
		json_object_set_new(it->res, "status", json_string("DONE"));
		json_object_set_new(it->res, "progress", json_integer(100));
		json_object_set_new(it->res, "endTime", json_now());
		item_changed(c, it);
	}
	compute_state_pending(c, p->scope, p->name, NULL);
	compute_state_meta(c);
	wake_waiters(c, p->scope, p->name);
	pending_free(p);
	emu_dataplane_changed(c->emu);
}

static int schedule(struct compute *c, const char *scope, const char *name, json_t *mutation)
{
	struct pending_op *p = calloc(1, sizeof(*p));
	long t;

	if (!p) {
		json_decref(mutation);
		return -ENOMEM;
	}
	p->c = c;
	p->mutation = mutation;
	p->scope = strdup(scope);
	p->name = strdup(name);
	if (!p->scope || !p->name || !mutation) {
		pending_free(p);
		return -ENOMEM;
	}
	t = emu_timer_add(c->emu, c->emu->opt.operation_delay_ms, complete, p);
	if (t < 0) {
		pending_free(p);
		return (int)t;
	}
	p->timer = t;
	p->next = c->pending;
	c->pending = p;
	compute_state_pending(c, scope, name, mutation);
	return 0;
}

static json_t *new_op_name(void)
{
	uint8_t r[12];
	char buf[96];

	random_bytes(r, sizeof(r));
	/* GCP's shape: operation-<epoch ms>-<13 hex>-<8 hex>-<8 hex>. */
	snprintf(buf, sizeof(buf),
		 "operation-%llu-%02x%02x%02x%02x%02x%02x%x-%02x%02x%02x%02x-%02x%02x%02x%02x",
		 (unsigned long long)wall_ms(), r[0], r[1], r[2], r[3], r[4], r[5], r[6] & 15, r[7],
		 r[8], r[9], r[10], r[11], r[0] ^ r[11], r[1] ^ r[10], r[2] ^ r[9]);
	return json_string(buf);
}

int op_start(struct call *k, const char *operation_type, const char *target_scope,
	     const char *target_name, const char *target_collection, json_t *target_id,
	     json_t *mutation)
{
	struct compute *c = k->c;
	const char *project = c->emu->opt.project;
	json_t *name = new_op_name(), *op;
	struct api_error e;
	int ret;

	op = json_pack("{s:s, s:o, s:O, s:s, s:o, s:s, s:s, s:i, s:o, s:o, s:o}", "kind",
		       "compute#operation", "id", compute_new_id(c), "name", name, "operationType",
		       operation_type, "targetLink",
		       compute_url(c, "projects/%s/%s/%s/%s", project, target_scope,
				   target_collection, target_name),
		       "status", "RUNNING", "user", emu_auth_principal(k->req), "progress", 0,
		       "insertTime", json_now(), "startTime", json_now(), "selfLink",
		       compute_url(c, "projects/%s/%s/operations/%s", project, target_scope,
				   json_string_value(name)));
	if (op && target_id)
		json_object_set(op, "targetId", target_id);
	json_decref(target_id);
	if (op && strncmp(target_scope, "zones/", 6) == 0)
		json_object_set_new(op, "zone",
				    compute_url(c, "projects/%s/%s", project, target_scope));
	else if (op && strncmp(target_scope, "regions/", 8) == 0)
		json_object_set_new(op, "region",
				    compute_url(c, "projects/%s/%s", project, target_scope));
	if (!op || coll_add(ops(c), target_scope, json_string_value(name), json_incref(op), false,
			    NULL) < 0) {
		json_decref(op);
		json_decref(name);
		json_decref(mutation);
		api_fail(&e, 500, "internalError", "out of memory");
		return api_reply_error(k->req, &e);
	}
	ret = schedule(c, target_scope, json_string_value(name), mutation);
	if (ret < 0)
		log_error("operation %s: cannot schedule: %s", json_string_value(name),
			  strerror(-ret));
	if (k->request_id) {
		json_object_set_new(c->request_ids, k->request_id,
				    json_pack("[s, O]", target_scope, name));
		compute_state_request_id(c, k->request_id,
					 json_object_get(c->request_ids, k->request_id));
	}
	json_decref(name);
	compute_state_meta(c);
	return compute_reply(k->req, 200, op);
}

int op_replay(struct call *k)
{
	json_t *ref = k->request_id ? json_object_get(k->c->request_ids, k->request_id) : NULL;
	struct item *it;

	if (!ref)
		return 0;
	it = coll_find(ops(k->c), json_string_value(json_array_get(ref, 0)) ?: "",
		       json_string_value(json_array_get(ref, 1)) ?: "");
	if (!it)
		return 0;
	compute_reply(k->req, 200, json_incref(it->res));
	return 1;
}

int op_handle(struct call *k, struct api_error *e)
{
	struct emu_request *req = k->req;
	struct coll *co = ops(k->c);
	struct item *it;

	if (!k->name) {
		struct list_params p;
		json_t *doc;
		int ret;

		if (strcmp(req->method, "GET") != 0)
			return api_fail(e, 404, "notFound",
					"The requested URL was not found on this server.");
		ret = list_params_parse(req, &p, e);
		if (ret < 0)
			return ret;
		doc = coll_list(k->c, co, k->scope, &p);
		list_params_free(&p);
		return compute_reply(req, 200, doc);
	}
	it = coll_find(co, k->scope, k->name);
	if (!it) {
		char path[400];

		snprintf(path, sizeof(path), "projects/%s/%s/operations/%s", k->c->emu->opt.project,
			 k->scope, k->name);
		return api_not_found(e, path);
	}
	if (!k->verb && strcmp(req->method, "GET") == 0)
		return compute_reply(req, 200, json_incref(it->res));
	if (!k->verb && strcmp(req->method, "DELETE") == 0) {
		/* "If successful, the response body is empty"; a pending mutation still applies. */
		coll_remove(co, it);
		return emu_reply(req, 204, NULL, "", 0);
	}
	if (k->verb && strcmp(k->verb, "wait") == 0 && strcmp(req->method, "POST") == 0)
		return op_wait(k, it, e);
	return api_fail(e, 404, "notFound", "The requested URL was not found on this server.");
}

void op_free_all(struct compute *c)
{
	while (c->pending) {
		struct pending_op *p = c->pending;

		c->pending = p->next;
		pending_free(p);
	}
}

json_t *op_dump_pending(struct compute *c)
{
	json_t *arr = json_array();

	for (struct pending_op *p = c->pending; p; p = p->next)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:O}", "scope", p->scope, "name",
						     p->name, "mutation", p->mutation));
	return arr;
}

int op_load_pending(struct compute *c, json_t *pending)
{
	json_t *e;
	size_t i;

	json_array_foreach(pending, i, e)
	{
		const char *scope = jstr(e, "scope"), *name = jstr(e, "name");
		json_t *m = json_object_get(e, "mutation");

		if (!scope || !name || !json_is_object(m))
			return -EINVAL;
		/* Completes --operation-delay after the restart, as if it had been running. */
		if (schedule(c, scope, name, json_deep_copy(m)) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Operations are listed and fetched through op_handle; they are part of --state. */
const struct coll_type ct_operations = {
    .name = "operations",
    .kind = "compute#operation",
    .list_kind = "compute#operationList",
    .agg_kind = "compute#operationAggregatedList",
    .scopes = SCOPE_ZONE | SCOPE_REGION | SCOPE_GLOBAL,
};
