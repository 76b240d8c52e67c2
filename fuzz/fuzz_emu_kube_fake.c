/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The emulator's core, faked for the kube harnesses: requests without libmicrohttpd
 * (query and headers from the input), replies recorded, streams pulled a few times,
 * timers run at once, and a Compute side with one Talos instance. Linked with kube*.c only
 * (never httpd.c, loop.c or compute*.c), so every handler runs as in the emulator.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "emu/core/subreq.h"
#include "emu/kube/kube.h"
#include "fuzz_emu_kube_fake.h"

/* ---- requests ---- */
const char *emu_request_query(const struct emu_request *req, const char *key)
{
	const struct fake_conn *c = (const struct fake_conn *)req->conn;

	for (size_t i = 0; i < c->nquery; i++)
		if (!strcmp(c->query[i][0], key))
			return c->query[i][1];
	return NULL;
}

const char *emu_request_header(const struct emu_request *req, const char *name)
{
	const struct fake_conn *c = (const struct fake_conn *)req->conn;

	for (size_t i = 0; i < c->nheaders; i++)
		if (!strcasecmp(c->headers[i][0], name))
			return c->headers[i][1];
	return NULL;
}

int emu_reply(struct emu_request *req, unsigned status, const char *content_type, const void *body,
	      size_t len)
{
	struct fake_conn *c = (struct fake_conn *)req->conn;

	(void)content_type;
	(void)body;
	if (req->responded)
		return -1;
	req->responded = true;
	c->status = status;
	c->bytes += len;
	return 0;
}

int emu_reply_json(struct emu_request *req, unsigned status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);
	int ret = emu_reply(req, status, "application/json", text, text ? strlen(text) : 0);

	free(text);
	json_decref(body);
	return ret;
}

int emu_reply_header(struct emu_request *req, const char *name, const char *value)
{
	(void)req;
	(void)name;
	(void)value;
	return 0;
}

int emu_reply_stream(struct emu_request *req, unsigned status, const char *content_type,
		     emu_stream_read_fn read, void *cls)
{
	struct fake_conn *c = (struct fake_conn *)req->conn;

	(void)content_type;
	if (req->responded)
		return -1;
	req->responded = true;
	c->status = status;
	c->stream = read;
	c->stream_cls = cls;
	return 0;
}

void emu_request_suspend(struct emu_request *req)
{
	req->suspended = true;
}

void emu_request_resume(struct emu_request *req)
{
	req->suspended = false;
}

/* The peer has no TLS session: authentication is by bearer token. */
const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *connection,
							enum MHD_ConnectionInfoType info_type, ...)
{
	(void)connection;
	(void)info_type;
	return NULL;
}

/* ---- loop ---- */
static struct {
	long id;
	emu_timer_fn fn;
	void *arg;
} timers[256];
static size_t ntimers;
static long next_timer;
static uint64_t fake_ms;

uint64_t emu_now_ms(void)
{
	return fake_ms += 7;
}

const char *emu_rfc3339(char *buf, size_t len)
{
	snprintf(buf, len, "2026-01-02T03:04:05Z");
	return buf;
}

const char *emu_rfc3339_ms(char *buf, size_t len)
{
	snprintf(buf, len, "2026-01-02T03:04:05.678-00:00");
	return buf;
}

long emu_timer_add(struct emu *emu, uint64_t delay_ms, emu_timer_fn fn, void *arg)
{
	(void)emu;
	(void)delay_ms;
	if (ntimers == sizeof(timers) / sizeof(timers[0]))
		return -1;
	timers[ntimers].id = ++next_timer;
	timers[ntimers].fn = fn;
	timers[ntimers].arg = arg;
	ntimers++;
	return next_timer;
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

void fake_run_timers(struct emu *emu, int rounds)
{
	while (rounds-- > 0 && ntimers) {
		long id = timers[0].id;
		emu_timer_fn fn = timers[0].fn;
		void *arg = timers[0].arg;
		emu_timer_cancel(emu, id);
		fn(emu, arg);
	}
}

static void fake_drop_timers(void)
{
	ntimers = 0;
}

void emu_dataplane_changed(struct emu *emu)
{
	(void)emu; /* no data plane in the harnesses */
}

/* ---- Compute: one Talos instance with an alias, and its subnetwork ---- */
static json_t *instance, *dump;

const json_t *emu_compute_instance(struct emu *emu, const char *zone, const char *name)
{
	(void)emu;
	if (!instance)
		instance = json_loads(
		    "{\"kind\":\"compute#instance\",\"name\":\"talos-cp-0\",\"status\":\"RUNNING\","
		    "\"zone\":\"https://x/compute/v1/projects/demo-project/zones/us-central1-a\","
		    "\"machineType\":\"zones/us-central1-a/machineTypes/e2-standard-4\","
		    "\"metadata\":{\"items\":[{\"key\":\"user-data\",\"value\":\"machine:\\n  type: controlplane\\n\"}]},"
		    "\"networkInterfaces\":[{\"name\":\"nic0\",\"networkIP\":\"10.0.0.2\","
		    "\"subnetwork\":\"https://x/compute/v1/projects/demo-project/regions/us-central1/subnetworks/nodes\","
		    "\"aliasIpRanges\":[{\"subnetworkRangeName\":\"pods\",\"ipCidrRange\":\"172.20.0.0/24\"}]}]}",
		    0, NULL);
	if (zone && name && !strcmp(zone, "us-central1-a") && !strcmp(name, "talos-cp-0"))
		return instance;
	return NULL;
}

/*
 * The CCM's Compute calls (kube/ccm_call.c): no cloud port here, so none can be made and its
 * load balancers fail (and are retried), as when the API is unreachable.
 */
struct emu_request *emu_subreq_new_internal(struct emu *emu, const char *method, const char *target,
					    const char *const *headers, size_t nheaders,
					    const char *body, size_t body_len,
					    emu_subreq_done_fn done, void *arg)
{
	(void)emu, (void)method, (void)target, (void)headers, (void)nheaders, (void)body;
	(void)body_len, (void)done, (void)arg;
	return NULL;
}

void emu_subreq_run(struct emu_request *sub)
{
	(void)sub;
	abort(); /* never made */
}

unsigned emu_subreq_status(const struct emu_request *sub)
{
	(void)sub;
	abort();
}

const char *emu_subreq_body(const struct emu_request *sub, size_t *len)
{
	(void)sub, (void)len;
	abort();
}

void emu_subreq_free(struct emu_request *sub)
{
	if (sub)
		abort();
}

json_t *emu_compute_dump(struct emu *emu)
{
	(void)emu;
	if (!dump)
		dump = json_loads(
		    "{\"subnetworks\":[{\"kind\":\"compute#subnetwork\",\"selfLink\":\"https://x/compute/v1/projects/demo-project/regions/us-central1/subnetworks/nodes\","
		    "\"secondaryIpRanges\":[{\"rangeName\":\"pods\",\"ipCidrRange\":\"172.20.0.0/14\"}]}],"
		    "\"instances\":[{\"kind\":\"compute#instance\",\"name\":\"talos-cp-0\",\"zone\":\"zones/us-central1-a\"}]}",
		    0, NULL);
	return json_incref(dump);
}

/* ---- one emulator ---- */
static struct kube_pki pki;

struct emu *fake_emu_new(enum emu_ccm_allocator mode)
{
	struct emu *emu = calloc(1, sizeof(*emu));

	emu->opt.project = "demo-project";
	emu->opt.ccm_allocator = mode;
	emu->opt.kubelet_delay_ms = 1;
	emu->opt.ccm_delay_ms = 1;
	snprintf(emu->kube_url, sizeof(emu->kube_url), "https://127.0.0.1:6443");
	if (emu_kube_init(emu) < 0)
		abort();
	/* One CA for every run: key generation is not what is fuzzed. */
	if (!pki.ca_cert && kube_pki_generate(&pki) < 0)
		abort();
	{
		struct kube_pki *p = &emu->kube->pki;
		p->ca_key = strdup(pki.ca_key);
		p->ca_cert = strdup(pki.ca_cert);
		p->server_key = strdup(pki.server_key);
		p->server_cert = strdup(pki.server_cert);
		p->admin_key = strdup(pki.admin_key);
		p->admin_cert = strdup(pki.admin_cert);
		p->admin_token = strdup(pki.admin_token);
		p->sa_token = strdup(pki.sa_token);
		emu->kube->pki_ready = true;
	}
	return emu;
}

void fake_emu_free(struct emu *emu)
{
	fake_drop_timers();
	emu_kube_free(emu);
	emu_state_close(emu); /* the tables the kube side registered (no --state here) */
	free(emu);
}

/* Percent-decoding of a query component. */
static char *decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n + 0 && s[i + 1] && s[i + 2]) {
			char hex[3] = {s[i + 1], s[i + 2], 0};
			*o++ = (char)strtol(hex, NULL, 16);
			i += 2;
		} else if (s[i] == '+') {
			*o++ = ' ';
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/*
 * One request: "METHOD PATH[?QUERY]\nHeader: value\n...\n\nBODY". Runs it, pulls a stream
 * a few times, closes it, then runs due timers. Returns the HTTP status.
 */
unsigned fake_request(struct emu *emu, const char *text, size_t len, bool auth)
{
	struct fake_conn c = {0};
	struct emu_request *req = calloc(1, sizeof(*req));
	char *copy = strndup(text, len), *line, *save = NULL, *body, *q, *path;
	char method[16] = "GET";
	unsigned status;

	body = strstr(copy, "\n\n");
	if (body) {
		*body = '\0';
		body += 2;
	}
	line = strtok_r(copy, "\n", &save);
	path = line ? strchr(line, ' ') : NULL;
	if (path) {
		size_t ml = (size_t)(path - line) < sizeof(method) - 1 ? (size_t)(path - line)
								       : sizeof(method) - 1;
		memcpy(method, line, ml);
		method[ml] = '\0';
		path++;
	} else {
		path = line ? line : (char *)"/";
	}
	q = strchr(path, '?');
	if (q) {
		*q++ = '\0';
		for (char *kv = strtok_r(q, "&", &q); kv && c.nquery < FAKE_MAX;
		     kv = strtok_r(NULL, "&", &q)) {
			char *eq = strchr(kv, '=');
			c.query[c.nquery][0] = decode(kv, eq ? (size_t)(eq - kv) : strlen(kv));
			c.query[c.nquery][1] = eq ? decode(eq + 1, strlen(eq + 1)) : strdup("");
			c.nquery++;
		}
	}
	while ((line = strtok_r(NULL, "\n", &save)) && c.nheaders < FAKE_MAX - 1) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		c.headers[c.nheaders][0] = strdup(line);
		c.headers[c.nheaders][1] = strdup(colon + 1 + (colon[1] == ' '));
		c.nheaders++;
	}
	if (auth) {
		c.headers[c.nheaders][0] = strdup("Authorization");
		c.headers[c.nheaders][1] = malloc(strlen(emu->kube->pki.admin_token) + 8);
		sprintf(c.headers[c.nheaders][1], "Bearer %s", emu->kube->pki.admin_token);
		c.nheaders++;
	}
	req->emu = emu;
	req->conn = (struct MHD_Connection *)&c;
	req->port = EMU_PORT_KUBE;
	req->method = method;
	req->path = path;
	req->body = strdup(body ? body : "");
	req->body_len = strlen(req->body);
	emu_kube_handle(req);
	if (c.stream) {
		char buf[4096];
		for (int i = 0; i < 8; i++) {
			long n = c.stream(c.stream_cls, 0, buf, sizeof(buf));
			if (n < 0)
				break;
			if (n == 0) {
				/* Suspended: run the loop (timers, writes) and pull again. */
				fake_run_timers(emu, 4);
				req->suspended = false;
			}
		}
	}
	status = c.status;
	if (req->on_close)
		req->on_close(req);
	fake_run_timers(emu, 64);
	for (size_t i = 0; i < c.nquery; i++) {
		free(c.query[i][0]);
		free(c.query[i][1]);
	}
	for (size_t i = 0; i < c.nheaders; i++) {
		free(c.headers[i][0]);
		free(c.headers[i][1]);
	}
	json_decref(req->groups);
	free(req->user);
	free(req->body);
	free(req);
	free(copy);
	return status;
}
