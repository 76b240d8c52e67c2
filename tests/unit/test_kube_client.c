/* SPDX-License-Identifier: Apache-2.0 */
/* kube/client over TLS: pages, Status errors, patch types, preconditions, watch, token re-read. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/base64.h"
#include "kube/client.h"
#include "mock_http.h"
#include "testcerts.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static struct testcerts certs;
static struct mock_server *srv;
static char dir[256];

static int setup(void **state)
{
	(void)state;
	mock_reset(srv);
	return 0;
}

static char *b64(const char *s)
{
	char *out = malloc(base64_encoded_size(strlen(s)));

	base64_encode(s, strlen(s), out, 0);
	return out;
}

/* A kubeconfig for the mock server; user: "cert" (client certificate) or "token". */
static struct kube_client *client_for(const char *user, bool with_ca, bool insecure)
{
	char *ca = b64(certs.ca_cert), *cert = b64(certs.client_cert), *key = b64(certs.client_key);
	char *text = NULL, path[512];
	struct kube_config *cfg = NULL;
	struct kube_client *c = NULL;
	struct error err = {0};
	FILE *f;

	assert_true(asprintf(&text,
			     "apiVersion: v1\nkind: Config\n"
			     "clusters:\n- name: emu\n  cluster:\n    server: %s\n%s%s%s%s"
			     "users:\n- name: cert\n  user:\n    client-certificate-data: %s\n"
			     "    client-key-data: %s\n"
			     "- name: token\n  user:\n    tokenFile: token\n"
			     "contexts:\n- name: cert\n  context: {cluster: emu, user: cert}\n"
			     "- name: token\n  context: {cluster: emu, user: token}\n"
			     "current-context: cert\n",
			     mock_url(srv), with_ca ? "    certificate-authority-data: " : "",
			     with_ca ? ca : "", with_ca ? "\n" : "",
			     insecure ? "    insecure-skip-tls-verify: true\n" : "", cert,
			     key) > 0);
	snprintf(path, sizeof(path), "%s/kubeconfig", dir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	assert_int_equal(
	    kube_config_load(&(struct kube_config_options){.kubeconfig = path, .context = user},
			     &cfg, &err),
	    0);
	assert_int_equal(kube_client_new(cfg,
					 &(struct http_options){.backoff_base_ms = 5,
								.backoff_max_ms = 10,
								.max_attempts = 2},
					 &c, &err),
			 0);
	kube_config_free(cfg);
	free(text);
	free(ca);
	free(cert);
	free(key);
	return c;
}

static void set_token(const char *t)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/token", dir);
	f = fopen(path, "w");
	fputs(t, f);
	fclose(f);
}

static void test_tls_and_client_cert(void **state)
{
	struct kube_client *c;
	struct error err = {0};
	json_t *j = NULL;

	(void)state;
	c = client_for("cert", true, false);
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{\"kind\":\"Node\"}"});
	assert_int_equal(kube_get(c, "/api/v1/nodes/n1", &j, &err), 0);
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "Node");
	json_decref(j);
	assert_true(mock_req(srv, 0)->client_cert);
	assert_string_equal(mock_req(srv, 0)->authorization, "");
	kube_client_free(c);
	/* Without the CA (and without insecure) the server is not trusted. */
	c = client_for("cert", false, false);
	assert_int_equal(kube_get(c, "/api/v1/nodes/n1", &j, &err), -EPROTO);
	kube_client_free(c);
	/* The kubeconfig's insecure-skip-tls-verify: true is honoured. */
	c = client_for("cert", false, true);
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	assert_int_equal(kube_get(c, "/api/v1/nodes/n1", &j, &err), 0);
	json_decref(j);
	kube_client_free(c);
}

static void test_token_reread_on_401(void **state)
{
	struct kube_client *c;
	struct error err = {0};
	json_t *j = NULL;

	(void)state;
	set_token("old-token\n");
	c = client_for("token", true, false);
	set_token("new-token\n"); /* rotated after the client read it */
	mock_push(srv, &(struct mock_response){.status = 401,
					       .body = "{\"kind\":\"Status\",\"code\":401,"
						       "\"reason\":\"Unauthorized\"}"});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	assert_int_equal(kube_get(c, "/api", &j, &err), 0);
	json_decref(j);
	assert_string_equal(mock_req(srv, 0)->authorization, "Bearer old-token");
	assert_string_equal(mock_req(srv, 1)->authorization, "Bearer new-token");
	/* Still 401 after the re-read: -EACCES with the Status message. */
	mock_push(srv,
		  &(struct mock_response){.status = 401,
					  .body = "{\"kind\":\"Status\",\"code\":401,\"message\":"
						  "\"Unauthorized\",\"reason\":\"Unauthorized\"}"});
	mock_push(srv,
		  &(struct mock_response){.status = 401,
					  .body = "{\"kind\":\"Status\",\"code\":401,\"message\":"
						  "\"Unauthorized\",\"reason\":\"Unauthorized\"}"});
	assert_int_equal(kube_get(c, "/api", &j, &err), -EACCES);
	assert_memory_equal(err.msg, "Unauthorized (401 Unauthorized; GET https://127.0.0.1:", 53);
	kube_client_free(c);
}

static const char *node_pages[] = {
    "{\"kind\":\"NodeList\",\"metadata\":{\"resourceVersion\":\"100\",\"continue\":\"c2\"},"
    "\"items\":[{\"metadata\":{\"name\":\"n1\"}},{\"metadata\":{\"name\":\"n2\"}}]}",
    "{\"kind\":\"NodeList\",\"metadata\":{\"resourceVersion\":\"100\"},"
    "\"items\":[{\"metadata\":{\"name\":\"n3\"}}]}",
};

static void pages_handler(void *arg, const struct mock_request *req, struct mock_response *out)
{
	(void)arg;
	out->status = 200;
	out->body = strstr(req->url, "continue=c2") ? node_pages[1] : node_pages[0];
}

static int count_items(void *arg, json_t *item)
{
	int *n = arg;

	(void)item;
	(*n)++;
	return 0;
}

static void test_list_pages(void **state)
{
	struct kube_client *c = client_for("cert", true, false);
	struct error err = {0};
	char rv[32];
	int n = 0;

	(void)state;
	mock_set_handler(srv, pages_handler, NULL);
	assert_int_equal(kube_list(c, "/api/v1/nodes",
				   &(struct kube_list_options){.limit = 2,
							       .label_selector = "role=cp",
							       .field_selector = "metadata.name!=x",
							       .resource_version = "0"},
				   count_items, &n, rv, sizeof(rv), &err),
			 0);
	assert_int_equal(n, 3);
	assert_string_equal(rv, "100");
	assert_int_equal(mock_count(srv), 2);
	assert_string_equal(mock_req(srv, 0)->url,
			    "/api/v1/nodes?limit=2&labelSelector=role=cp&"
			    "fieldSelector=metadata.name!=x&resourceVersion=0");
	/* The continue token replaces resourceVersion on later pages. */
	assert_string_equal(mock_req(srv, 1)->url, "/api/v1/nodes?limit=2&labelSelector=role=cp&"
						   "fieldSelector=metadata.name!=x&continue=c2");
	/* An expired continue token. */
	mock_reset(srv);
	mock_push(srv, &(struct mock_response){.status = 200, .body = node_pages[0]});
	mock_push(srv, &(struct mock_response){
			   .status = 410,
			   .body = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":"
				   "\"Failure\",\"message\":\"The provided continue parameter is "
				   "too old to display a consistent list result.\",\"reason\":"
				   "\"Expired\",\"code\":410}"});
	n = 0;
	assert_int_equal(kube_list(c, "/api/v1/nodes", NULL, count_items, &n, NULL, 0, &err),
			 -EKEYEXPIRED);
	assert_int_equal(n, 2);
	assert_string_equal(mock_req(srv, 0)->url, "/api/v1/nodes?limit=500");
	kube_client_free(c);
}

/* Pages with more in them than the caller asked for. */
static const char *full_pages[] = {
    "{\"kind\":\"NodeList\",\"metadata\":{\"resourceVersion\":\"7\",\"continue\":\"c2\"},"
    "\"items\":[{\"metadata\":{\"name\":\"n1\",\"labels\":{\"a\":\"b\"}},\"spec\":{\"podCIDR\":"
    "\"10.0.0.0/24\",\"taints\":[{\"key\":\"k\"}]},\"status\":{\"images\":[{\"names\":[\"x\"]}]}},"
    "{\"metadata\":{\"name\":\"n2\"},\"spec\":{}}]}",
    "{\"kind\":\"NodeList\",\"metadata\":{\"resourceVersion\":\"8\"},\"items\":[{\"metadata\":"
    "{\"name\":\"n3\"},\"spec\":{\"podCIDR\":\"10.0.1.0/24\"},\"status\":{}}]}",
};

static void full_pages_handler(void *arg, const struct mock_request *req, struct mock_response *out)
{
	(void)arg;
	out->status = 200;
	out->body = strstr(req->url, "continue=c2") ? full_pages[1] : full_pages[0];
}

struct dumped {
	char text[4][160];
	int n;
};

static int dump_item(void *arg, json_t *item)
{
	struct dumped *d = arg;
	char *s = json_dumps(item, JSON_COMPACT | JSON_SORT_KEYS);

	snprintf(d->text[d->n++ % 4], sizeof(d->text[0]), "%s", s);
	free(s);
	return 0;
}

/* With fields, each item is reduced to them; the page's continue and resourceVersion work. */
static void test_list_fields(void **state)
{
	static const char *const fields[] = {"metadata.name", "spec.podCIDR", NULL};
	struct kube_client *c = client_for("cert", true, false);
	struct error err = {0};
	struct dumped d = {0};
	char rv[32];

	(void)state;
	mock_set_handler(srv, full_pages_handler, NULL);
	assert_int_equal(kube_list(c, "/api/v1/nodes",
				   &(struct kube_list_options){.fields = fields}, dump_item, &d, rv,
				   sizeof(rv), &err),
			 0);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.text[0], "{\"metadata\":{\"name\":\"n1\"},\"spec\":{\"podCIDR\":"
				       "\"10.0.0.0/24\"}}");
	assert_string_equal(d.text[1], "{\"metadata\":{\"name\":\"n2\"},\"spec\":{}}");
	assert_string_equal(d.text[2], "{\"metadata\":{\"name\":\"n3\"},\"spec\":{\"podCIDR\":"
				       "\"10.0.1.0/24\"}}");
	assert_string_equal(rv, "8");
	assert_int_equal(mock_count(srv), 2);
	assert_string_equal(mock_req(srv, 1)->url, "/api/v1/nodes?limit=500&continue=c2");

	/* Without fields, whole items, as before. */
	mock_reset(srv);
	mock_set_handler(srv, full_pages_handler, NULL);
	memset(&d, 0, sizeof(d));
	assert_int_equal(kube_list(c, "/api/v1/nodes", NULL, dump_item, &d, NULL, 0, &err), 0);
	assert_int_equal(d.n, 3);
	assert_non_null(strstr(d.text[0], "\"taints\":[{\"key\":\"k\"}]"));
	kube_client_free(c);
}

/* Pages that are not lists, or not JSON: one-line errors naming the request. */
static void test_list_bad_pages(void **state)
{
	static const char *const fields[] = {"metadata.name", NULL};
	struct kube_client *c = client_for("cert", true, false);
	struct kube_list_options opt = {.fields = fields};
	struct error err = {0};
	char want[300];
	int n = 0;

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{\"items\":{}}"});
	assert_int_equal(kube_list(c, "/api/v1/nodes", &opt, count_items, &n, NULL, 0, &err),
			 -EBADMSG);
	snprintf(want, sizeof(want), "GET %s/api/v1/nodes?limit=500: items is not an array",
		 mock_url(srv));
	assert_string_equal(err.msg, want);
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{\"items\":[1]}"});
	assert_int_equal(kube_list(c, "/api/v1/nodes", &opt, count_items, &n, NULL, 0, &err),
			 -EBADMSG);
	snprintf(want, sizeof(want), "GET %s/api/v1/nodes?limit=500: items[0] is not an object",
		 mock_url(srv));
	assert_string_equal(err.msg, want);
	mock_push(srv, &(struct mock_response){.status = 200, .body = ""});
	assert_int_equal(kube_list(c, "/api/v1/nodes", NULL, count_items, &n, NULL, 0, &err),
			 -EBADMSG);
	snprintf(want, sizeof(want),
		 "GET %s/api/v1/nodes?limit=500:1:1: invalid JSON (byte 0): parse error: "
		 "premature EOF",
		 mock_url(srv));
	assert_string_equal(err.msg, want);
	assert_int_equal(n, 0);
	/* A page cut short: the items before the cut were handed over, then the error. */
	mock_push(srv, &(struct mock_response){
			   .status = 200,
			   .body = "{\"items\":[{\"metadata\":{\"name\":\"n1\"}},{\"metadata\":"});
	assert_int_equal(kube_list(c, "/api/v1/nodes", &opt, count_items, &n, NULL, 0, &err),
			 -EBADMSG);
	assert_int_equal(n, 1);
	assert_non_null(
	    strstr(err.msg, ":1:50: invalid JSON (byte 49): parse error: premature EOF"));
	kube_client_free(c);
}

static void test_status_errors(void **state)
{
	static const struct {
		long status;
		const char *body;
		int code;
		const char *msg;
	} cases[] = {
	    {404,
	     "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"nodes \\\"n9\\\" not "
	     "found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"n9\",\"kind\":\"nodes\"},"
	     "\"code\":404}",
	     -ENOENT, "nodes \"n9\" not found (404 NotFound; W)"},
	    {409,
	     "{\"kind\":\"Status\",\"message\":\"nodes \\\"n1\\\" already exists\",\"reason\":"
	     "\"AlreadyExists\",\"code\":409}",
	     -EEXIST, "nodes \"n1\" already exists (409 AlreadyExists; W)"},
	    {409,
	     "{\"kind\":\"Status\",\"message\":\"Precondition failed: UID in precondition: "
	     "u1, UID in object meta: u2\",\"reason\":\"Conflict\",\"code\":409}",
	     -ESTALE,
	     "Precondition failed: UID in precondition: u1, UID in object meta: u2 (409 "
	     "Conflict; W)"},
	    {422,
	     "{\"kind\":\"Status\",\"message\":\"Node \\\"n1\\\" is invalid\",\"reason\":"
	     "\"Invalid\",\"details\":{\"name\":\"n1\",\"kind\":\"Node\",\"causes\":[{"
	     "\"reason\":\"FieldValueForbidden\",\"message\":\"Forbidden: node updates may not "
	     "change podCIDR except from \\\"\\\" to valid\",\"field\":\"spec.podCIDR\"}]},"
	     "\"code\":422}",
	     -EINVAL,
	     "Node \"n1\" is invalid: spec.podCIDR: Forbidden: node updates may not change "
	     "podCIDR except from \"\" to valid (422 Invalid; W)"},
	    {415,
	     "{\"kind\":\"Status\",\"message\":\"the body of the request was in an unknown "
	     "format\",\"reason\":\"UnsupportedMediaType\",\"code\":415}",
	     -EOPNOTSUPP,
	     "the body of the request was in an unknown format (415 UnsupportedMediaType; W)"},
	    {403,
	     "{\"kind\":\"Status\",\"message\":\"nodes is forbidden\",\"reason\":"
	     "\"Forbidden\",\"code\":403}",
	     -EACCES, "nodes is forbidden (403 Forbidden; W)"},
	    {500, "oops", -EIO, "HTTP 500: oops (W)"},
	    {0,
	     "{\"kind\":\"Status\",\"message\":\"too old resource version: 1 (5)\",\"reason\":"
	     "\"Expired\",\"code\":410}",
	     -EKEYEXPIRED, "too old resource version: 1 (5) (410 Expired; W)"},
	};
	struct error err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		error_clear(&err);
		assert_int_equal(kube_status_error(cases[i].status, cases[i].body,
						   strlen(cases[i].body), "W", &err),
				 cases[i].code);
		assert_string_equal(err.msg, cases[i].msg);
	}
}

static void test_create_patch_delete(void **state)
{
	struct kube_client *c = client_for("cert", true, false);
	struct error err = {0};
	json_t *obj = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Node",
				"metadata", "name", "n1");
	json_t *patch = json_pack("{s:{s:b}}", "spec", "unschedulable", 1);
	json_t *jp = json_pack("[{s:s, s:s}]", "op", "remove", "path", "/spec/taints");
	json_t *out = NULL, *body;

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 201, .body = "{\"kind\":\"Node\"}"});
	assert_int_equal(kube_create(c, "/api/v1/nodes", obj, &out, &err), 0);
	json_decref(out);
	assert_string_equal(mock_req(srv, 0)->method, "POST");
	assert_string_equal(mock_req(srv, 0)->content_type, "application/json");
	mock_push(srv, &(struct mock_response){.status = 409,
					       .body = "{\"kind\":\"Status\",\"reason\":"
						       "\"AlreadyExists\",\"code\":409}"});
	assert_int_equal(kube_create(c, "/api/v1/nodes", obj, NULL, &err), -EEXIST);

	mock_reset(srv);
	for (int i = 0; i < 3; i++)
		mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	assert_int_equal(kube_patch(c, "/api/v1/nodes/n1", KUBE_PATCH_STRATEGIC, patch, NULL, &err),
			 0);
	assert_int_equal(kube_patch(c, "/api/v1/nodes/n1", KUBE_PATCH_MERGE, patch, NULL, &err), 0);
	assert_int_equal(kube_patch(c, "/api/v1/nodes/n1", KUBE_PATCH_JSON, jp, NULL, &err), 0);
	assert_string_equal(mock_req(srv, 0)->method, "PATCH");
	assert_string_equal(mock_req(srv, 0)->content_type,
			    "application/strategic-merge-patch+json");
	assert_string_equal(mock_req(srv, 1)->content_type, "application/merge-patch+json");
	assert_string_equal(mock_req(srv, 2)->content_type, "application/json-patch+json");
	assert_string_equal(mock_req(srv, 0)->body, "{\"spec\":{\"unschedulable\":true}}");
	assert_int_equal(kube_patch(c, "/api/v1/nodes/n1", KUBE_PATCH_JSON, patch, NULL, &err),
			 -EINVAL);

	mock_reset(srv);
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{\"kind\":\"Status\"}"});
	assert_int_equal(
	    kube_delete(c, "/api/v1/nodes/n1",
			&(struct kube_delete_options){.uid = "u-1",
						      .resource_version = "42",
						      .propagation_policy = "Background"},
			&err),
	    0);
	assert_string_equal(mock_req(srv, 0)->method, "DELETE");
	body = json_loads(mock_req(srv, 0)->body, 0, NULL);
	assert_non_null(body);
	assert_string_equal(json_string_value(json_object_get(body, "kind")), "DeleteOptions");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(body, "preconditions"), "uid")),
	    "u-1");
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(body, "preconditions"), "resourceVersion")),
			    "42");
	assert_string_equal(json_string_value(json_object_get(body, "propagationPolicy")),
			    "Background");
	assert_null(json_object_get(body, "gracePeriodSeconds"));
	json_decref(body);
	mock_push(srv, &(struct mock_response){
			   .status = 409,
			   .body = "{\"kind\":\"Status\",\"message\":\"Precondition failed\","
				   "\"reason\":\"Conflict\",\"code\":409}"});
	assert_int_equal(
	    kube_delete(c, "/api/v1/nodes/n1", &(struct kube_delete_options){.uid = "u-0"}, &err),
	    -ESTALE);
	assert_int_equal(kube_get(c, "nodes", &out, &err), -EINVAL);
	json_decref(obj);
	json_decref(patch);
	json_decref(jp);
	kube_client_free(c);
}

struct events {
	char log[512];
	int n, stop_at;
};

static int on_event(void *arg, const char *type, json_t *object)
{
	struct events *e = arg;
	size_t o = strlen(e->log);

	snprintf(e->log + o, sizeof(e->log) - o, "%s:%s ", type,
		 json_string_value(json_object_get(json_object_get(object, "metadata"), "name")));
	return ++e->n == e->stop_at ? 5 : 0;
}

static void test_watch(void **state)
{
	static const char stream[] =
	    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n1\"}}}\n"
	    "\n"
	    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"n1\"}}}\n"
	    "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"n2\"}}}";
	static const char expired[] =
	    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n1\"}}}\n"
	    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"message\":\"too old resource "
	    "version: 5 (9)\",\"reason\":\"Expired\",\"code\":410}}\n";
	struct kube_client *c = client_for("cert", true, false);
	struct events e = {0};
	struct error err = {0};

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 200, .body = stream});
	assert_int_equal(kube_watch(c, "/api/v1/nodes",
				    &(struct kube_watch_options){.resource_version = "100",
								 .allow_bookmarks = true,
								 .timeout_seconds = 60},
				    on_event, &e, &err),
			 0);
	assert_string_equal(e.log, "ADDED:n1 MODIFIED:n1 DELETED:n2 ");
	assert_string_equal(mock_req(srv, 0)->url,
			    "/api/v1/nodes?watch=true&timeoutSeconds=60&resourceVersion=100&"
			    "allowWatchBookmarks=true");
	memset(&e, 0, sizeof(e));
	mock_push(srv, &(struct mock_response){.status = 200, .body = expired});
	assert_int_equal(kube_watch(c, "/api/v1/nodes", NULL, on_event, &e, &err), -EKEYEXPIRED);
	assert_string_equal(e.log, "ADDED:n1 ");
	assert_memory_equal(err.msg, "too old resource version: 5 (9) (410 Expired; watch ", 52);
	memset(&e, 0, sizeof(e));
	e.stop_at = 2;
	mock_push(srv, &(struct mock_response){.status = 200, .body = stream});
	assert_int_equal(kube_watch(c, "/api/v1/nodes", NULL, on_event, &e, &err), 5);
	assert_string_equal(e.log, "ADDED:n1 MODIFIED:n1 ");
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{\"type\":\"ADDED\"}\n"});
	assert_int_equal(kube_watch(c, "/api/v1/nodes", NULL, on_event, &e, &err), -EBADMSG);
	mock_push(srv,
		  &(struct mock_response){.status = 403,
					  .body = "{\"kind\":\"Status\",\"reason\":\"Forbidden\","
						  "\"message\":\"no\",\"code\":403}"});
	assert_int_equal(kube_watch(c, "/api/v1/nodes", NULL, on_event, &e, &err), -EACCES);
	kube_client_free(c);
}

static void test_token_not_sent_in_clear(void **state)
{
	/*
	 * A bearer token over plain http:// goes to loopback only; the refusal happens before any
	 * connection (kube_client_new() connects to nothing), so the host never needs to exist.
	 */
	struct kube_config cfg = {.server = "http://kube.invalid:8080", .token = "secret"};
	struct kube_client *c = NULL;
	struct error err = {0};

	(void)state;
	assert_int_equal(kube_client_new(&cfg, NULL, &c, &err), -EINVAL);
	assert_null(c);
	assert_non_null(strstr(err.msg, "plain http:// would send the bearer token in clear"));
	assert_null(strstr(err.msg, "secret"));
	cfg.server = "http://127.0.0.1:8080";
	assert_int_equal(kube_client_new(&cfg, NULL, &c, &err), 0);
	kube_client_free(c);
	cfg.server = "http://kube.invalid:8080";
	cfg.token = NULL; /* nothing secret to send */
	assert_int_equal(kube_client_new(&cfg, NULL, &c, &err), 0);
	kube_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_tls_and_client_cert, setup),
	    cmocka_unit_test_setup(test_token_reread_on_401, setup),
	    cmocka_unit_test_setup(test_list_pages, setup),
	    cmocka_unit_test_setup(test_list_fields, setup),
	    cmocka_unit_test_setup(test_list_bad_pages, setup),
	    cmocka_unit_test(test_status_errors),
	    cmocka_unit_test(test_token_not_sent_in_clear),
	    cmocka_unit_test_setup(test_create_patch_delete, setup),
	    cmocka_unit_test_setup(test_watch, setup),
	};
	struct mock_tls tls;
	char cmd[300];
	int ret;

	snprintf(dir, sizeof(dir), "%s/test_kube_client.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	testcerts_make(&certs);
	tls = (struct mock_tls){
	    .cert_pem = certs.server_cert, .key_pem = certs.server_key, .trust_pem = certs.ca_cert};
	srv = mock_start(&tls);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	mock_stop(srv);
	testcerts_free(&certs);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return ret;
}
