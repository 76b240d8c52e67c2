/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Injected faults and request statistics, for tests. Matched before any handler on both
 * ports (never on /_emu/ itself, so a test cannot lock itself out).
 *
 * A fault (POST /_emu/faults, see docs/emulator.md):
 *   method      "GET", ... or absent for any method
 *   path        exact URL path (no query), or
 *   pathPrefix  any path starting with it
 *   port        "cloud", "kube" or absent for both
 *   status      HTTP status to answer with (Google's error shape on the cloud port, a
 *               Kubernetes Status on the kube port); absent: the request goes on to its
 *               handler after the delay
 *   reason      errors[0].reason / Status.reason, message: the error message
 *   retryAfter  Retry-After header value
 *   body        the reply's exact text (string) or a JSON value (status defaults to 200),
 *   contentType with this Content-Type (default application/json)
 *   delayMs     answer (or go on) after this long; the loop never blocks
 *   hang        never answer (until the client gives up or the emulator stops)
 *   reset       drop the connection without an answer
 *   changeFingerprint  give the instance's network interface (the path's zones/Z/instances/I,
 *               the networkInterface parameter or nic0) a new fingerprint, then let the
 *               request go on: another client's update landed between a read and this write
 *   skip        let the first N matching requests through untouched
 *   count       fire N times, then the fault is removed (absent or 0: until deleted)
 * The first fault that matches (in creation order) applies.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "emu/compute/compute.h"
#include "emu/core/faults.h"

struct fault {
	long id;
	char *method, *path, *prefix, *reason, *message, *retry_after, *body, *content_type;
	int port; /* -1 both */
	unsigned status;
	uint64_t delay_ms;
	bool hang, reset, change_fingerprint;
	long skip, count, hits, seen;
};

struct emu_faults {
	struct fault **list;
	size_t len, cap;
	long next_id;
	/* statistics */
	uint64_t total, by_port[2];
	json_t *by_request; /* "METHOD /path" -> count */
};

/* What a matched fault does to one request; outlives the fault when count runs out. */
struct action {
	struct emu_request *req;
	unsigned status;
	char *reason, *message, *retry_after, *body, *content_type;
	bool reset, hang;
	long timer;
};

static struct emu_faults *faults_of(struct emu *emu)
{
	return emu->faults;
}

int emu_faults_init(struct emu *emu)
{
	struct emu_faults *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->by_request = json_object();
	emu->faults = f;
	return f->by_request ? 0 : -ENOMEM;
}

static void fault_free(struct fault *ft)
{
	if (!ft)
		return;
	free(ft->method);
	free(ft->path);
	free(ft->prefix);
	free(ft->reason);
	free(ft->message);
	free(ft->retry_after);
	free(ft->body);
	free(ft->content_type);
	free(ft);
}

void emu_faults_clear(struct emu *emu)
{
	struct emu_faults *f = faults_of(emu);

	for (size_t i = 0; i < f->len; i++)
		fault_free(f->list[i]);
	f->len = 0;
}

void emu_faults_free(struct emu *emu)
{
	struct emu_faults *f = faults_of(emu);

	if (!f)
		return;
	emu_faults_clear(emu);
	free(f->list);
	json_decref(f->by_request);
	free(f);
	emu->faults = NULL;
}

static char *dup_opt(const json_t *o, const char *k)
{
	const char *v = jstr(o, k);

	return v ? strdup(v) : NULL;
}

static json_t *fault_json(const struct fault *ft)
{
	json_t *j = json_pack("{s:I, s:I, s:I}", "id", (json_int_t)ft->id, "hits",
			      (json_int_t)ft->hits, "seen", (json_int_t)ft->seen);

	if (!j)
		return NULL;
	if (ft->method)
		json_object_set_new(j, "method", json_string(ft->method));
	if (ft->path)
		json_object_set_new(j, "path", json_string(ft->path));
	if (ft->prefix)
		json_object_set_new(j, "pathPrefix", json_string(ft->prefix));
	if (ft->port >= 0)
		json_object_set_new(j, "port", json_string(ft->port ? "kube" : "cloud"));
	if (ft->status)
		json_object_set_new(j, "status", json_integer(ft->status));
	if (ft->reason)
		json_object_set_new(j, "reason", json_string(ft->reason));
	if (ft->message)
		json_object_set_new(j, "message", json_string(ft->message));
	if (ft->retry_after)
		json_object_set_new(j, "retryAfter", json_string(ft->retry_after));
	if (ft->body)
		json_object_set_new(j, "body", json_string(ft->body));
	if (ft->content_type)
		json_object_set_new(j, "contentType", json_string(ft->content_type));
	if (ft->delay_ms)
		json_object_set_new(j, "delayMs", json_integer((json_int_t)ft->delay_ms));
	if (ft->hang)
		json_object_set_new(j, "hang", json_true());
	if (ft->reset)
		json_object_set_new(j, "reset", json_true());
	if (ft->change_fingerprint)
		json_object_set_new(j, "changeFingerprint", json_true());
	if (ft->skip)
		json_object_set_new(j, "skip", json_integer(ft->skip));
	if (ft->count)
		json_object_set_new(j, "count", json_integer(ft->count));
	return j;
}

static bool known_key(const char *k)
{
	static const char *const keys[] = {"method",  "path",   "pathPrefix",  "port",
					   "status",  "reason", "message",     "retryAfter",
					   "delayMs", "hang",   "reset",       "skip",
					   "count",   "body",   "contentType", "changeFingerprint"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(k, keys[i]) == 0)
			return true;
	return false;
}

static bool nonneg_int(const json_t *v)
{
	return !v || (json_is_integer(v) && json_integer_value(v) >= 0);
}

json_t *emu_faults_add(struct emu *emu, const json_t *spec, char *err, size_t errlen)
{
	struct emu_faults *f = faults_of(emu);
	const json_t *ra = json_object_get(spec, "retryAfter");
	const char *port = jstr(spec, "port"), *key;
	struct fault *ft;
	json_t *v;

	if (!json_is_object(spec)) {
		snprintf(err, errlen, "a fault is a JSON object");
		return NULL;
	}
	json_object_foreach((json_t *)spec, key, v)
	{
		if (!known_key(key)) {
			snprintf(err, errlen, "unknown field '%s'", key);
			return NULL;
		}
	}
	if (!jstr(spec, "path") == !jstr(spec, "pathPrefix")) {
		snprintf(err, errlen, "give exactly one of 'path' (exact) or 'pathPrefix'");
		return NULL;
	}
	if (!nonneg_int(json_object_get(spec, "status")) ||
	    !nonneg_int(json_object_get(spec, "delayMs")) ||
	    !nonneg_int(json_object_get(spec, "skip")) ||
	    !nonneg_int(json_object_get(spec, "count"))) {
		snprintf(err, errlen, "status, delayMs, skip and count are non-negative integers");
		return NULL;
	}
	if (json_object_get(spec, "status") &&
	    (json_integer_value(json_object_get(spec, "status")) < 100 ||
	     json_integer_value(json_object_get(spec, "status")) > 599)) {
		snprintf(err, errlen, "status must be an HTTP status (100-599)");
		return NULL;
	}
	if (port && strcmp(port, "cloud") != 0 && strcmp(port, "kube") != 0) {
		snprintf(err, errlen, "port must be 'cloud' or 'kube'");
		return NULL;
	}
	if (ra && !json_is_string(ra) && !json_is_integer(ra)) {
		snprintf(err, errlen, "retryAfter is a string or an integer");
		return NULL;
	}
	if (!json_object_get(spec, "status") && !json_is_true(json_object_get(spec, "reset")) &&
	    !json_is_true(json_object_get(spec, "hang")) && !json_object_get(spec, "delayMs") &&
	    !json_object_get(spec, "body") &&
	    !json_is_true(json_object_get(spec, "changeFingerprint"))) {
		snprintf(err, errlen,
			 "a fault needs status, body, delayMs, hang, reset or changeFingerprint");
		return NULL;
	}
	if (json_object_get(spec, "contentType") && !jstr(spec, "contentType")) {
		snprintf(err, errlen, "contentType is a string");
		return NULL;
	}
	ft = calloc(1, sizeof(*ft));
	if (!ft) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ft->id = ++f->next_id;
	ft->method = dup_opt(spec, "method");
	ft->path = dup_opt(spec, "path");
	ft->prefix = dup_opt(spec, "pathPrefix");
	ft->reason = dup_opt(spec, "reason");
	ft->message = dup_opt(spec, "message");
	if (json_is_integer(ra))
		ft->retry_after = str_printf("%" JSON_INTEGER_FORMAT, json_integer_value(ra));
	else
		ft->retry_after = dup_opt(spec, "retryAfter");
	/* body: the reply's exact text (a string), or a JSON value written out. */
	if (json_is_string(json_object_get(spec, "body")))
		ft->body = dup_opt(spec, "body");
	else if (json_object_get(spec, "body"))
		ft->body =
		    json_dumps(json_object_get(spec, "body"), JSON_COMPACT | JSON_ENCODE_ANY);
	ft->content_type = dup_opt(spec, "contentType");
	ft->port = port ? strcmp(port, "kube") == 0 : -1;
	ft->status = (unsigned)json_integer_value(json_object_get(spec, "status"));
	if (ft->body && !ft->status)
		ft->status = 200;
	ft->delay_ms = (uint64_t)json_integer_value(json_object_get(spec, "delayMs"));
	ft->hang = json_is_true(json_object_get(spec, "hang"));
	ft->reset = json_is_true(json_object_get(spec, "reset"));
	ft->change_fingerprint = json_is_true(json_object_get(spec, "changeFingerprint"));
	ft->skip = (long)json_integer_value(json_object_get(spec, "skip"));
	ft->count = (long)json_integer_value(json_object_get(spec, "count"));
	if (f->len == f->cap) {
		size_t ncap = f->cap ? 2 * f->cap : 8;
		struct fault **n = realloc(f->list, ncap * sizeof(*n));

		if (!n) {
			fault_free(ft);
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		f->list = n;
		f->cap = ncap;
	}
	f->list[f->len++] = ft;
	log_info("fault %ld added: %s %s%s", ft->id, ft->method ? ft->method : "*",
		 ft->path ? ft->path : ft->prefix, ft->path ? "" : "*");
	return fault_json(ft);
}

json_t *emu_faults_list(struct emu *emu)
{
	struct emu_faults *f = faults_of(emu);
	json_t *arr = json_array();

	for (size_t i = 0; i < f->len; i++)
		json_array_append_new(arr, fault_json(f->list[i]));
	return json_pack("{s:o}", "faults", arr);
}

static void remove_at(struct emu_faults *f, size_t i)
{
	fault_free(f->list[i]);
	memmove(&f->list[i], &f->list[i + 1], (f->len - i - 1) * sizeof(f->list[0]));
	f->len--;
}

int emu_faults_delete(struct emu *emu, long id)
{
	struct emu_faults *f = faults_of(emu);

	for (size_t i = 0; i < f->len; i++) {
		if (f->list[i]->id == id) {
			remove_at(f, i);
			return 0;
		}
	}
	return -ENOENT;
}

/* ---- statistics ---- */

static void count(struct emu_faults *f, const struct emu_request *req)
{
	char *key = str_printf("%s %s", req->method, req->path);
	json_t *v;

	f->total++;
	f->by_port[req->port == EMU_PORT_KUBE]++;
	if (!key)
		return;
	v = json_object_get(f->by_request, key);
	if (v)
		json_integer_set(v, json_integer_value(v) + 1);
	else
		json_object_set_new(f->by_request, key, json_integer(1));
	free(key);
}

json_t *emu_stats(struct emu *emu, bool reset)
{
	struct emu_faults *f = faults_of(emu);
	json_t *doc = json_pack("{s:I, s:{s:I, s:I}, s:O}", "total", (json_int_t)f->total, "byPort",
				"cloud", (json_int_t)f->by_port[0], "kube",
				(json_int_t)f->by_port[1], "requests", f->by_request);

	if (reset) {
		f->total = f->by_port[0] = f->by_port[1] = 0;
		json_decref(f->by_request);
		f->by_request = json_object();
	}
	return doc;
}

/* ---- interception ---- */

static bool matches(const struct fault *ft, const struct emu_request *req)
{
	if (ft->port >= 0 && ft->port != (req->port == EMU_PORT_KUBE))
		return false;
	if (ft->method && strcmp(ft->method, req->method) != 0)
		return false;
	if (ft->path)
		return strcmp(ft->path, req->path) == 0;
	return strncmp(ft->prefix, req->path, strlen(ft->prefix)) == 0;
}

static void action_free(struct action *a)
{
	free(a->reason);
	free(a->message);
	free(a->retry_after);
	free(a->body);
	free(a->content_type);
	free(a);
}

static const char *grpc_status(unsigned status)
{
	switch (status) {
	case 400:
		return "INVALID_ARGUMENT";
	case 401:
		return "UNAUTHENTICATED";
	case 403:
		return "PERMISSION_DENIED";
	case 404:
		return "NOT_FOUND";
	case 409:
		return "ABORTED";
	case 412:
		return "FAILED_PRECONDITION";
	case 429:
		return "RESOURCE_EXHAUSTED";
	case 501:
		return "UNIMPLEMENTED";
	case 503:
		return "UNAVAILABLE";
	case 504:
		return "DEADLINE_EXCEEDED";
	default:
		return status >= 500 ? "INTERNAL" : "UNKNOWN";
	}
}

static const char *kube_reason(unsigned status)
{
	switch (status) {
	case 400:
		return "BadRequest";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "NotFound";
	case 409:
		return "Conflict";
	case 429:
		return "TooManyRequests";
	case 503:
		return "ServiceUnavailable";
	case 504:
		return "Timeout";
	default:
		return "InternalError";
	}
}

/* changeFingerprint: .../zones/Z/instances/I[/...] gets a new nic fingerprint now. */
static void change_fingerprint(struct emu_request *req)
{
	const char *z = strstr(req->path, "/zones/"), *i = strstr(req->path, "/instances/");
	char zone[128], name[128];
	int zn, in;

	if (!z || !i || i < z)
		return;
	zn = (int)strcspn(z + 7, "/");
	in = (int)strcspn(i + 11, "/");
	if (zn <= 0 || in <= 0 || zn >= (int)sizeof(zone) || in >= (int)sizeof(name))
		return;
	snprintf(zone, sizeof(zone), "%.*s", zn, z + 7);
	snprintf(name, sizeof(name), "%.*s", in, i + 11);
	if (!instances_bump_fingerprint(compute_of(req->emu), zone, name,
					emu_request_query(req, "networkInterface")))
		log_warn("fault: no instance %s/%s (or interface) to change the fingerprint of",
			 zone, name);
}

/* Carries out a fault's answer now: reset, or an error reply. */
static void act(struct action *a)
{
	struct emu_request *req = a->req;
	const char *msg = a->message ? a->message : "Injected fault.";
	json_t *body;

	if (a->reset) {
		req->reset_connection = true;
		return;
	}
	if (a->retry_after)
		emu_reply_header(req, "Retry-After", a->retry_after);
	if (a->body) {
		/* A canned answer: malformed JSON, odd shapes, whatever the test needs. */
		emu_reply(req, a->status,
			  a->content_type ? a->content_type : "application/json; charset=UTF-8",
			  a->body, strlen(a->body));
		return;
	}
	if (req->port == EMU_PORT_KUBE) {
		body = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status",
				 "apiVersion", "v1", "metadata", "status", "Failure", "message",
				 msg, "reason", a->reason ? a->reason : kube_reason(a->status),
				 "code", (int)a->status);
		if (body && a->retry_after)
			json_object_set_new(
			    body, "details",
			    json_pack("{s:i}", "retryAfterSeconds", atoi(a->retry_after)));
	} else {
		body = json_pack("{s:{s:i, s:s, s:[{s:s, s:s, s:s}], s:s}}", "error", "code",
				 (int)a->status, "message", msg, "errors", "message", msg, "domain",
				 "global", "reason", a->reason ? a->reason : "backendError",
				 "status", grpc_status(a->status));
	}
	emu_reply_json(req, a->status, body);
}

static int delayed_resume(struct emu_request *req)
{
	struct action *a = req->handler_data;

	req->handler_data = NULL;
	req->on_resume = NULL;
	req->on_close = NULL;
	if (a->status || a->reset)
		act(a);
	else
		emu_request_dispatch(req); /* only a delay: the request goes on as usual */
	action_free(a);
	return 0;
}

static void delayed_close(struct emu_request *req)
{
	struct action *a = req->handler_data;

	if (!a)
		return;
	if (a->timer > 0)
		emu_timer_cancel(req->emu, a->timer);
	action_free(a);
	req->handler_data = NULL;
}

static void delay_done(struct emu *emu, void *arg)
{
	struct action *a = arg;

	(void)emu;
	a->timer = 0;
	emu_request_resume(a->req);
}

int emu_faults_intercept(struct emu_request *req)
{
	struct emu_faults *f = faults_of(req->emu);
	struct fault *ft = NULL;
	struct action *a;
	uint64_t delay;
	size_t i;

	if (strncmp(req->path, "/_emu/", 6) == 0)
		return 0;
	count(f, req);
	for (i = 0; i < f->len; i++) {
		if (!matches(f->list[i], req))
			continue;
		f->list[i]->seen++;
		if (f->list[i]->seen <= f->list[i]->skip)
			continue;
		ft = f->list[i];
		break;
	}
	if (!ft)
		return 0;
	a = calloc(1, sizeof(*a));
	if (!a)
		return 0;
	*a =
	    (struct action){.req = req, .status = ft->status, .reset = ft->reset, .hang = ft->hang};
	a->reason = ft->reason ? strdup(ft->reason) : NULL;
	a->message = ft->message ? strdup(ft->message) : NULL;
	a->retry_after = ft->retry_after ? strdup(ft->retry_after) : NULL;
	a->body = ft->body ? strdup(ft->body) : NULL;
	a->content_type = ft->content_type ? strdup(ft->content_type) : NULL;
	delay = ft->delay_ms;
	log_debug("fault %ld fires on %s %s", ft->id, req->method, req->path);
	ft->hits++;
	if (ft->change_fingerprint)
		change_fingerprint(req);
	if (ft->count && ft->hits >= ft->count)
		remove_at(f, i); /* ft is gone: the action carries what is left to do */
	if (!a->status && !a->reset && !a->hang && !delay && !a->body) {
		/* Only the fingerprint changed: the request goes on to its handler. */
		action_free(a);
		return 0;
	}
	if (!a->hang && !delay) {
		act(a);
		action_free(a);
		return 1;
	}
	/* Delay or hang: suspend; a timer resumes it (a hang waits for the client or the end). */
	if (!a->hang) {
		long t = emu_timer_add(req->emu, delay, delay_done, a);

		if (t < 0) {
			action_free(a);
			return 0;
		}
		a->timer = t;
	}
	req->handler_data = a;
	req->on_resume = delayed_resume;
	req->on_close = delayed_close;
	emu_request_suspend(req);
	return 1;
}
