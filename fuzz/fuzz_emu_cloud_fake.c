/* SPDX-License-Identifier: Apache-2.0 */
/* The emulator core faked for the cloud-port harnesses (see fuzz_emu_cloud_fake.h). */
#include "fuzz_emu_cloud_fake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emu/compute/compute.h"
#include "emu/core/faults.h"
#include "emu/core/loop.h"
#include "emu/core/subreq.h"

#define MAX_PAIRS    32
#define MAX_REQUESTS 8
#define MAX_TIMERS   4096

/* Stands in for the MHD connection of a request. */
struct fake_conn {
	char *query[MAX_PAIRS][2];
	size_t nquery;
	char *headers[MAX_PAIRS][2];
	size_t nheaders;
	unsigned status;
	char *body;
	size_t body_len;
	bool json;
	char boundary[80]; /* a multipart/mixed reply (a batch) */
	int replies;
};

static struct fake_conn *conn_of(const struct emu_request *req)
{
	return (struct fake_conn *)req->conn;
}

const char *emu_request_query(const struct emu_request *req, const char *key)
{
	struct fake_conn *c = conn_of(req);

	if (req->sub)
		return emu_subreq_query(req, key);
	for (size_t i = 0; i < c->nquery; i++)
		if (strcmp(c->query[i][0], key) == 0)
			return c->query[i][1];
	return NULL;
}

const char *emu_request_header(const struct emu_request *req, const char *name)
{
	struct fake_conn *c = conn_of(req);

	if (req->sub)
		return emu_subreq_header(req, name);
	for (size_t i = 0; i < c->nheaders; i++)
		if (strcasecmp(c->headers[i][0], name) == 0)
			return c->headers[i][1];
	return NULL;
}

int emu_reply(struct emu_request *req, unsigned status, const char *content_type, const void *body,
	      size_t len)
{
	struct fake_conn *c = conn_of(req);

	if (req->responded)
		abort(); /* a request gets exactly one reply */
	if (req->sub)
		return emu_subreq_reply(req, status, content_type, body, len);
	req->responded = true;
	c->replies++;
	c->status = status;
	c->json = content_type && strncmp(content_type, "application/json", 16) == 0;
	c->boundary[0] = '\0';
	if (content_type && strncmp(content_type, "multipart/mixed; boundary=", 26) == 0)
		snprintf(c->boundary, sizeof(c->boundary), "%s", content_type + 26);
	c->body = malloc(len + 1);
	if (c->body) {
		memcpy(c->body, body, len);
		c->body[len] = '\0';
		c->body_len = len;
	}
	return 0;
}

int emu_reply_json(struct emu_request *req, unsigned status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	int ret;

	json_decref(body);
	if (!text)
		abort();
	ret = emu_reply(req, status, "application/json; charset=UTF-8", text, strlen(text));
	free(text);
	return ret;
}

int emu_reply_header(struct emu_request *req, const char *name, const char *value)
{
	(void)req;
	if (!name || !value)
		abort();
	return 0;
}

int emu_reply_stream(struct emu_request *req, unsigned status, const char *content_type,
		     emu_stream_read_fn read, void *cls)
{
	(void)read;
	(void)cls;
	return emu_reply(req, status, content_type, "", 0);
}

void emu_request_suspend(struct emu_request *req)
{
	if (req->sub) {
		emu_subreq_suspend(req);
		return;
	}
	req->suspended = true;
}

void emu_request_resume(struct emu_request *req)
{
	if (req->sub) {
		emu_subreq_resume(req);
		return;
	}
	if (!req->suspended)
		return;
	req->suspended = false;
	req->resumed = true;
}

/* ---- time and timers ---- */

uint64_t emu_now_ms(void)
{
	static uint64_t now = 1000;

	return now++;
}

const char *emu_rfc3339_ms(char *buf, size_t len)
{
	snprintf(buf, len, "2026-01-01T00:00:00.000-00:00");
	return buf;
}

const char *emu_rfc3339(char *buf, size_t len)
{
	snprintf(buf, len, "2026-01-01T00:00:00Z");
	return buf;
}

struct timer {
	long id;
	uint64_t due;
	emu_timer_fn fn;
	void *arg;
};

static struct timer timers[MAX_TIMERS];
static size_t ntimers;
static long next_timer_id;

long emu_timer_add(struct emu *emu, uint64_t delay_ms, emu_timer_fn fn, void *arg)
{
	(void)emu;
	if (ntimers == MAX_TIMERS)
		return -12; /* -ENOMEM: callers must cope */
	timers[ntimers++] =
	    (struct timer){.id = ++next_timer_id, .due = delay_ms, .fn = fn, .arg = arg};
	return next_timer_id;
}

void emu_timer_cancel(struct emu *emu, long id)
{
	(void)emu;
	for (size_t i = 0; i < ntimers; i++) {
		if (timers[i].id == id) {
			timers[i] = timers[--ntimers];
			return;
		}
	}
}

/* Runs every timer, earliest due first (timers added meanwhile run too). */
static void run_timers(struct emu *emu)
{
	for (int rounds = 0; ntimers && rounds < 100000; rounds++) {
		size_t best = 0;
		struct timer t;

		for (size_t i = 1; i < ntimers; i++)
			if (timers[i].due < timers[best].due ||
			    (timers[i].due == timers[best].due && timers[i].id < timers[best].id))
				best = i;
		t = timers[best];
		timers[best] = timers[--ntimers];
		t.fn(emu, t.arg);
	}
}

/* ---- the data plane and the Kubernetes side, stubbed ---- */

void emu_dataplane_changed(struct emu *emu)
{
	(void)emu;
}

void emu_dataplane_instance_reset(struct emu *emu, const char *zone, const char *name)
{
	(void)emu;
	if (!zone || !name)
		abort();
}

int emu_dataplane_health(struct emu *emu, const char *service_url, const char *instance_url,
			 bool *healthy)
{
	(void)emu;
	(void)service_url;
	(void)instance_url;
	(void)healthy;
	return 0; /* not probed: the model answers */
}

int emu_dataplane_control(struct emu_request *req)
{
	return emu_reply(req, 404, "text/plain", "no data plane\n", 14);
}

void emu_kube_instance_changed(struct emu *emu, const char *zone, const char *name,
			       const json_t *instance)
{
	(void)emu;
	if (!zone || !name)
		abort();
	/* The instance as served must be well-formed for the kubelet and CCM to read. */
	if (instance && !json_is_object(instance))
		abort();
}

bool emu_kube_backend_healthy(struct emu *emu, const char *zone, const char *instance,
			      unsigned port)
{
	(void)emu;
	if (!zone || !instance)
		abort();
	return port == 6443;
}

void emu_kube_instance_reset(struct emu *emu, const char *zone, const char *name,
			     const json_t *instance)
{
	emu_kube_instance_changed(emu, zone, name, instance);
}

bool emu_kube_lb_healthy(struct emu *emu, const char *zone, const char *instance, unsigned port,
			 const char *path)
{
	(void)emu;
	if (!zone || !instance || !path)
		abort();
	return port == 10256;
}

json_t *emu_kube_dump(struct emu *emu)
{
	(void)emu;
	return json_object();
}

int emu_kube_load(struct emu *emu, json_t *state)
{
	(void)emu;
	(void)state;
	return 0;
}

/* ---- dispatch, as httpd.c does it ---- */

void emu_request_dispatch(struct emu_request *req)
{
	if (strncmp(req->path, "/_emu/", 6) == 0) {
		emu_control_handle(req);
		return;
	}
	if (strcmp(req->path, "/batch/compute/v1") == 0) {
		emu_compute_batch(req);
		return;
	}
	if (emu_auth_handle(req))
		return;
	if (strncmp(req->path, "/compute/v1/", 12) == 0) {
		if (emu_auth_check(req))
			return;
		emu_compute_handle(req);
		return;
	}
	emu_reply(req, 404, "text/plain", "not found\n", 10);
}

static void dispatch(struct emu_request *req)
{
	if (emu_faults_intercept(req))
		return;
	emu_request_dispatch(req);
}

/* ---- requests ---- */

static char *decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	if (!out)
		abort();
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (s[i] == '%' && i + 2 < n && sscanf(s + i + 1, "%2x", &v) == 1) {
			*o++ = (char)v;
			i += 2;
		} else {
			*o++ = s[i] == '+' ? ' ' : s[i];
		}
	}
	*o = '\0';
	return out;
}

static void parse_query(struct fake_conn *c, const char *q)
{
	while (q && *q && c->nquery < MAX_PAIRS) {
		const char *amp = strchr(q, '&'), *eq;
		size_t n = amp ? (size_t)(amp - q) : strlen(q);

		eq = memchr(q, '=', n);
		if (eq) {
			c->query[c->nquery][0] = decode(q, (size_t)(eq - q));
			c->query[c->nquery][1] = decode(eq + 1, n - (size_t)(eq - q) - 1);
			c->nquery++;
		}
		q = amp ? amp + 1 : NULL;
	}
}

static void conn_free(struct fake_conn *c)
{
	for (size_t i = 0; i < c->nquery; i++) {
		free(c->query[i][0]);
		free(c->query[i][1]);
	}
	for (size_t i = 0; i < c->nheaders; i++) {
		free(c->headers[i][0]);
		free(c->headers[i][1]);
	}
	free(c->body);
}

/*
 * A batch's answer: "--B" parts, each "Content-Type: application/http", an optional
 * Content-ID, then "HTTP/1.1 NNN Reason", headers, a Content-Length that is the body's length;
 * JSON bodies parse. Then "--B--".
 */
static void check_multipart(const struct fake_conn *c)
{
	const char *p = c->body, *end = c->body + c->body_len;
	char delim[96];
	size_t dlen = (size_t)snprintf(delim, sizeof(delim), "--%s\r\n", c->boundary);

	while ((size_t)(end - p) >= dlen && memcmp(p, delim, dlen) == 0) {
		const char *head, *http, *body, *cl;
		unsigned status;
		size_t n;

		p += dlen;
		head = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
		if (!head || strncmp(p, "Content-Type: application/http\r\n", 32) != 0)
			abort();
		http = head + 4;
		if (sscanf(http, "HTTP/1.1 %3u ", &status) != 1 || status < 100)
			abort();
		body = memmem(http, (size_t)(end - http), "\r\n\r\n", 4);
		cl = body ? memmem(http, (size_t)(body - http), "Content-Length: ", 16) : NULL;
		if (!cl)
			abort();
		n = strtoul(cl + 16, NULL, 10);
		body += 4;
		if ((size_t)(end - body) < n + 2 || memcmp(body + n, "\r\n", 2) != 0)
			abort();
		if (memmem(http, (size_t)(body - http), "Content-Type: application/json", 30)) {
			json_t *doc = json_loadb(body, n, 0, NULL);

			if (!doc)
				abort();
			json_decref(doc);
		}
		p = body + n + 2;
	}
	snprintf(delim, sizeof(delim), "--%s--\r\n", c->boundary);
	if ((size_t)(end - p) != strlen(delim) || memcmp(p, delim, strlen(delim)) != 0)
		abort();
}

/* A JSON reply parses, and the Compute writer agrees with jansson on it. */
static void check_reply(const struct fake_conn *c)
{
	json_error_t jerr;
	json_t *doc;
	char *ours, *theirs;
	size_t len;

	if (c->boundary[0] && c->body)
		check_multipart(c);
	if (!c->json || !c->body)
		return;
	doc = json_loadb(c->body, c->body_len, 0, &jerr);
	if (!doc) {
		fprintf(stderr, "reply is not JSON: %s\n%s\n", jerr.text, c->body);
		abort();
	}
	ours = compute_json_text(doc, &len);
	theirs = json_dumps(doc, JSON_COMPACT);
	if (!ours || !theirs || strlen(theirs) != len || memcmp(ours, theirs, len) != 0) {
		fprintf(stderr, "writers disagree:\nours   %.*s\ntheirs %s\n", ours ? (int)len : 0,
			ours ? ours : "", theirs ? theirs : "");
		abort();
	}
	free(ours);
	free(theirs);
	json_decref(doc);
}

struct one {
	struct emu_request req;
	struct fake_conn conn;
	char *method, *path;
};

static void start_one(struct emu *emu, struct one *o, const char *text, size_t len,
		      const char *prefix)
{
	const char *nl = memchr(text, '\n', len), *sp, *q, *line, *end = text + len;
	size_t first = nl ? (size_t)(nl - text) : len;
	char *target;

	memset(o, 0, sizeof(*o));
	sp = memchr(text, ' ', first);
	o->method = strndup(text, sp ? (size_t)(sp - text) : first);
	target = sp ? strndup(sp + 1, first - (size_t)(sp + 1 - text)) : strdup("/");
	if (!o->method || !target)
		abort();
	q = strchr(target, '?');
	if (q) {
		parse_query(&o->conn, q + 1);
		target[q - target] = '\0';
	}
	o->path = target[0] == '/' ? strdup(target) : str_printf("%s%s", prefix, target);
	free(target);
	if (!o->path)
		abort();
	/* Headers until an empty line; the rest is the body. */
	line = nl ? nl + 1 : end;
	while (line < end) {
		const char *eol = memchr(line, '\n', (size_t)(end - line)), *colon;
		size_t n = eol ? (size_t)(eol - line) : (size_t)(end - line);

		if (n == 0) {
			line++;
			break;
		}
		colon = memchr(line, ':', n);
		if (colon && o->conn.nheaders < MAX_PAIRS) {
			const char *v = colon + 1;

			while (v < line + n && *v == ' ')
				v++;
			o->conn.headers[o->conn.nheaders][0] =
			    strndup(line, (size_t)(colon - line));
			o->conn.headers[o->conn.nheaders][1] = strndup(v, (size_t)(line + n - v));
			o->conn.nheaders++;
		}
		line = eol ? eol + 1 : end;
	}
	o->req.emu = emu;
	o->req.conn = (struct MHD_Connection *)&o->conn;
	o->req.port = EMU_PORT_CLOUD;
	o->req.method = o->method;
	o->req.path = o->path;
	o->req.body_len = line < end ? (size_t)(end - line) : 0;
	o->req.body = malloc(o->req.body_len + 1);
	if (!o->req.body)
		abort();
	memcpy(o->req.body, line < end ? line : "", o->req.body_len);
	o->req.body[o->req.body_len] = '\0';
	dispatch(&o->req);
}

/* Calls on_resume for resumed requests until nothing moves. */
static void settle(struct one *reqs, size_t n)
{
	for (int rounds = 0; rounds < 16; rounds++) {
		bool moved = false;

		for (size_t i = 0; i < n; i++) {
			struct emu_request *req = &reqs[i].req;

			if (!req->resumed)
				continue;
			req->resumed = false;
			moved = true;
			if (req->on_resume && !req->responded)
				req->on_resume(req);
			if (!req->responded && !req->suspended && !req->reset_connection)
				abort(); /* resumed and left without a reply */
		}
		if (!moved)
			return;
	}
}

static void finish_one(struct one *o)
{
	struct emu_request *req = &o->req;

	if (req->responded)
		check_reply(&o->conn);
	else if (!req->suspended && !req->reset_connection)
		abort(); /* no reply, not suspended, not reset */
	/* The connection ends (a hung request: the client gave up). */
	if (req->on_close)
		req->on_close(req);
	conn_free(&o->conn);
	json_decref(req->reply_headers);
	free(req->body);
	free(o->method);
	free(o->path);
}

void cloud_fake_run(struct emu *emu, const uint8_t *data, size_t size, const char *prefix)
{
	struct one reqs[MAX_REQUESTS];
	const char *p = (const char *)data, *end = p + size;
	size_t n = 0;

	while (p < end && n < MAX_REQUESTS) {
		const char *sep = memmem(p, (size_t)(end - p), "\n~~~\n", 5);
		size_t len = sep ? (size_t)(sep - p) : (size_t)(end - p);
		char *text = strndup(p, len);

		if (!text)
			abort();
		start_one(emu, &reqs[n++], text, strlen(text), prefix);
		free(text);
		run_timers(emu);
		settle(reqs, n);
		p = sep ? sep + 5 : end;
	}
	run_timers(emu);
	settle(reqs, n);
	for (size_t i = 0; i < n; i++)
		finish_one(&reqs[i]);
	run_timers(emu);
}

/* ---- the world ---- */

static json_t *seed;

static void must(struct emu *emu, const char *text)
{
	struct one o;

	start_one(emu, &o, text, strlen(text), "");
	run_timers(emu);
	settle(&o, 1);
	if (!o.req.responded || o.conn.status != 200) {
		fprintf(stderr, "seed request failed (%u): %s\n%s\n", o.conn.status, text,
			o.conn.body ? o.conn.body : "");
		abort();
	}
	finish_one(&o);
}

struct emu *cloud_fake_world(bool require_auth)
{
	static struct emu emu;
	static char key_path[] = "/tmp/fuzz-emu-sa-XXXXXX";
	int fd;

	if (seed)
		return &emu;
	emu.opt.project = "demo-project";
	emu.opt.listen = "127.0.0.1:8080";
	emu.opt.require_auth = false;
	emu.opt.token_lifetime_ms = 3600 * 1000;
	emu.opt.operation_wait_max_ms = 120 * 1000;
	snprintf(emu.cloud_url, sizeof(emu.cloud_url), "http://127.0.0.1:8080");
	/* The key file is written once; its key is what signatures are checked against. */
	fd = mkstemp(key_path);
	if (fd >= 0)
		close(fd);
	emu.opt.sa_key_out = key_path;
	if (emu_faults_init(&emu) < 0 || emu_auth_init(&emu) < 0 || emu_compute_init(&emu) < 0 ||
	    emu_compute_started(&emu) < 0 || emu_auth_started(&emu) < 0)
		abort();
	unlink(key_path);
	must(&emu, "POST /compute/v1/projects/demo-project/global/networks\n\n"
		   "{\"name\":\"talos\",\"autoCreateSubnetworks\":false}");
	must(
	    &emu,
	    "POST /compute/v1/projects/demo-project/regions/us-central1/subnetworks\n\n"
	    "{\"name\":\"nodes\",\"network\":\"global/networks/talos\",\"ipCidrRange\":\"10.0.0.0/16\","
	    "\"secondaryIpRanges\":[{\"rangeName\":\"pods\",\"ipCidrRange\":\"172.20.0.0/14\"},"
	    "{\"rangeName\":\"services\",\"ipCidrRange\":\"172.24.0.0/16\"}]}");
	must(&emu, "POST /compute/v1/projects/demo-project/global/images\n\n"
		   "{\"name\":\"talos\",\"rawDisk\":{\"source\":"
		   "\"https://storage.googleapis.com/b/talos.raw.tar.gz\"}}");
	for (int i = 0; i < 2; i++) {
		char *req = str_printf(
		    "POST /compute/v1/projects/demo-project/zones/us-central1-a/instances\n\n"
		    "{\"name\":\"node-%c\",\"machineType\":\"zones/us-central1-a/machineTypes/e2-small\","
		    "\"disks\":[{\"boot\":true,\"initializeParams\":{\"sourceImage\":\"global/images/talos\"}}],"
		    "\"networkInterfaces\":[{\"subnetwork\":\"regions/us-central1/subnetworks/nodes\","
		    "\"aliasIpRanges\":[{\"subnetworkRangeName\":\"pods\",\"ipCidrRange\":\"/24\"}]}],"
		    "\"metadata\":{\"items\":[{\"key\":\"user-data\",\"value\":\"x\"}]}}",
		    'a' + i);

		if (!req)
			abort();
		must(&emu, req);
		free(req);
	}
	seed = emu_compute_dump(&emu);
	/* The key stays loaded; reloading its PEM for every input would dominate the run. */
	json_object_del(seed, "auth");
	emu.opt.require_auth = require_auth;
	return &emu;
}

void cloud_fake_reset(struct emu *emu)
{
	emu_faults_clear(emu);
	json_decref(emu_stats(emu, true));
	json_t *no_tokens = json_pack("{s:{}}", "tokens");

	if (emu_compute_load(emu, seed) < 0 || emu_auth_load(emu, no_tokens) < 0)
		abort();
	json_decref(no_tokens);
	ntimers = 0;
}
