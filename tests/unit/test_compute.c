/* SPDX-License-Identifier: Apache-2.0 */
/* gcp/compute: error bodies, operations, fingerprints, pages, mutations with requestId. */
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

#include "gcp/compute.h"
#include "mock_http.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static struct mock_server *srv;

static int setup(void **state)
{
	(void)state;
	mock_reset(srv);
	unsetenv(GCP_COMPUTE_ENDPOINT_ENV);
	return 0;
}

static struct gcp_compute *client(void)
{
	struct gcp_compute *c = NULL;
	struct error err = {0};
	char ep[128];

	snprintf(ep, sizeof(ep), "%s/compute/v1", mock_url(srv)); /* no trailing slash: added */
	assert_int_equal(
	    gcp_compute_new(
		&(struct gcp_compute_options){
		    .endpoint = ep,
		    .project = "demo-project",
		    .http = &(struct http_options){.backoff_base_ms = 5, .backoff_max_ms = 10},
		},
		&c, &err),
	    0);
	return c;
}

static void test_api_errors(void **state)
{
	static const struct {
		long status;
		const char *body;
		int code;
		const char *msg;
	} cases[] = {
	    {412,
	     "{\"error\":{\"code\":412,\"message\":\"Supplied fingerprint does not match current "
	     "fingerprint.\",\"errors\":[{\"message\":\"Supplied fingerprint does not match "
	     "current fingerprint.\",\"domain\":\"global\",\"reason\":\"conditionNotMet\","
	     "\"location\":\"If-Match\",\"locationType\":\"header\"}]}}",
	     -ESTALE,
	     "HTTP 412 conditionNotMet: Supplied fingerprint does not match current fingerprint. "
	     "(PATCH u)"},
	    {400,
	     "{\"error\":{\"code\":400,\"message\":\"IP_IN_USE_BY_ANOTHER_RESOURCE: IP "
	     "'10.4.1.0/24' is already being used by another resource.\",\"errors\":[{\"reason\":"
	     "\"badRequest\",\"domain\":\"global\",\"message\":\"x\"}]}}",
	     -EADDRINUSE,
	     "HTTP 400 badRequest: IP_IN_USE_BY_ANOTHER_RESOURCE: IP '10.4.1.0/24' is already "
	     "being used by another resource. (PATCH u)"},
	    {400,
	     "{\"error\":{\"code\":400,\"message\":\"Invalid value for field "
	     "'resource.fingerprint': ''.\",\"errors\":[{\"reason\":\"invalid\"}]}}",
	     -EINVAL,
	     "HTTP 400 invalid: Invalid value for field 'resource.fingerprint': ''. (PATCH u)"},
	    {403,
	     "{\"error\":{\"code\":403,\"message\":\"Rate Limit Exceeded\",\"errors\":[{\"reason\":"
	     "\"rateLimitExceeded\"}]}}",
	     -EAGAIN, "HTTP 403 rateLimitExceeded: Rate Limit Exceeded (PATCH u)"},
	    {403,
	     "{\"error\":{\"code\":403,\"message\":\"Required 'compute.instances.get' permission\","
	     "\"errors\":[{\"reason\":\"forbidden\"}],\"status\":\"PERMISSION_DENIED\"}}",
	     -EACCES, "HTTP 403 forbidden: Required 'compute.instances.get' permission (PATCH u)"},
	    {403,
	     "{\"error\":{\"code\":403,\"message\":\"Quota exceeded\",\"errors\":[{\"reason\":"
	     "\"quotaExceeded\"}]}}",
	     -EDQUOT, "HTTP 403 quotaExceeded: Quota exceeded (PATCH u)"},
	    {404,
	     "{\"error\":{\"code\":404,\"message\":\"The resource 'projects/p/zones/z/instances/i' "
	     "was not found\",\"errors\":[{\"reason\":\"notFound\"}]}}",
	     -ENOENT,
	     "HTTP 404 notFound: The resource 'projects/p/zones/z/instances/i' was not found "
	     "(PATCH u)"},
	    {409,
	     "{\"error\":{\"code\":409,\"message\":\"exists\",\"errors\":[{\"reason\":"
	     "\"alreadyExists\"}]}}",
	     -EEXIST, "HTTP 409 alreadyExists: exists (PATCH u)"},
	    {401,
	     "{\"error\":{\"code\":401,\"message\":\"Request had invalid authentication "
	     "credentials.\",\"status\":\"UNAUTHENTICATED\"}}",
	     -EACCES,
	     "HTTP 401 UNAUTHENTICATED: Request had invalid authentication credentials. (PATCH "
	     "u)"},
	    {502, "<html>Bad\ngateway</html>", -EIO,
	     "HTTP 502: <html>Bad?gateway</html> (PATCH u)"},
	    {503, "", -EAGAIN, "HTTP 503 with an empty body (PATCH u)"},
	    {500, "{\"error\":\"weird\"}", -EIO, "HTTP 500: no message (PATCH u)"},
	};
	struct error err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		error_clear(&err);
		assert_int_equal(gcp_api_error(cases[i].status, cases[i].body,
					       strlen(cases[i].body), "PATCH u", &err),
				 cases[i].code);
		assert_string_equal(err.msg, cases[i].msg);
	}
	assert_true(gcp_is_rate_limited(403, cases[3].body, strlen(cases[3].body)));
	assert_false(gcp_is_rate_limited(403, cases[4].body, strlen(cases[4].body)));
	assert_false(gcp_is_rate_limited(400, cases[3].body, strlen(cases[3].body)));
}

static void test_operation_errors(void **state)
{
	struct gcp_operation op;
	struct error err = {0};
	json_t *j;

	(void)state;
	j = json_loads("{\"kind\":\"compute#operation\",\"name\":\"operation-1\",\"zone\":"
		       "\"https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a\","
		       "\"operationType\":\"updateNetworkInterface\",\"targetLink\":"
		       "\"https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a/"
		       "instances/node-1\",\"status\":\"DONE\",\"httpErrorStatusCode\":400,"
		       "\"error\":{\"errors\":[{\"code\":\"IP_IN_USE_BY_ANOTHER_RESOURCE\","
		       "\"message\":\"IP '10.4.1.0/24' is already being used by another "
		       "resource.\"}]}}",
		       0, NULL);
	assert_non_null(j);
	assert_int_equal(gcp_operation_parse(j, &op, &err), 0);
	assert_string_equal(op.name, "operation-1");
	assert_string_equal(op.scope, "zones/us-central1-a");
	assert_string_equal(op.operation_type, "updateNetworkInterface");
	assert_true(op.done);
	assert_int_equal(gcp_operation_error(j, &err), -EADDRINUSE);
	assert_string_equal(err.msg, "operation operation-1 (updateNetworkInterface node-1): "
				     "IP_IN_USE_BY_ANOTHER_RESOURCE: IP '10.4.1.0/24' is already "
				     "being used by another resource.");
	json_decref(j);
	j = json_loads("{\"name\":\"op2\",\"status\":\"DONE\",\"region\":\"regions/r1\"}", 0, NULL);
	assert_int_equal(gcp_operation_parse(j, &op, &err), 0);
	assert_string_equal(op.scope, "regions/r1");
	assert_int_equal(gcp_operation_error(j, &err), 0);
	json_decref(j);
	j = json_loads(
	    "{\"name\":\"op3\",\"status\":\"DONE\",\"httpErrorStatusCode\":412,\"error\":"
	    "{\"errors\":[{\"code\":\"SOMETHING_NEW\",\"message\":\"m\"}]}}",
	    0, NULL);
	assert_int_equal(gcp_operation_parse(j, &op, &err), 0);
	assert_string_equal(op.scope, "global");
	assert_int_equal(gcp_operation_error(j, &err), -ESTALE);
	json_decref(j);
	j = json_loads("{\"status\":\"DONE\"}", 0, NULL);
	assert_int_equal(gcp_operation_parse(j, &op, &err), -EBADMSG);
	json_decref(j);
	j = json_loads("{\"name\":\"../../x\",\"status\":\"DONE\"}", 0, NULL);
	assert_int_equal(gcp_operation_parse(j, &op, &err), -EBADMSG);
	json_decref(j);
}

static void test_fingerprints_and_helpers(void **state)
{
	char id[37], id2[37];
	json_t *inst;

	(void)state;
	/* 8 bytes 00 01 02 ... fb fc ff: '+' and '/' in the standard alphabet. */
	assert_true(gcp_fingerprint_equal("AAEC+/z/AAA=", "AAEC+/z/AAA="));
	assert_true(gcp_fingerprint_equal("AAEC+/z/AAA=", "AAEC-_z_AAA="));
	assert_true(gcp_fingerprint_equal("AAEC+/z/AAA=", "AAEC-_z_AAA"));
	assert_false(gcp_fingerprint_equal("AAEC+/z/AAA=", "AAEC+/z/AAE="));
	assert_false(gcp_fingerprint_equal("AAEC+/z/AAA=", NULL));
	assert_true(gcp_fingerprint_equal("not base64!", "not base64!"));
	assert_false(gcp_fingerprint_equal("not base64!", "AAEC+/z/AAA="));
	gcp_request_id(id);
	gcp_request_id(id2);
	assert_int_equal(strlen(id), 36);
	assert_int_equal(id[14], '4');
	assert_true(strchr("89ab", id[19]) != NULL);
	assert_true(id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-');
	assert_string_not_equal(id, id2);
	assert_string_equal(gcp_basename("https://x/compute/v1/projects/p/zones/us-a"), "us-a");
	assert_string_equal(gcp_basename("us-a"), "us-a");
	inst = json_loads("{\"networkInterfaces\":[{\"name\":\"nic0\",\"fingerprint\":\"a\"},"
			  "{\"name\":\"nic1\"}]}",
			  0, NULL);
	assert_string_equal(
	    json_string_value(json_object_get(gcp_instance_nic(inst, NULL), "name")), "nic0");
	assert_string_equal(
	    json_string_value(json_object_get(gcp_instance_nic(inst, "nic1"), "name")), "nic1");
	assert_null(gcp_instance_nic(inst, "nic2"));
	json_decref(inst);
}

/* Three pages of an aggregated list; scopes with NO_RESULTS_ON_PAGE in between. */
static const char *pages[] = {
    "{\"kind\":\"compute#instanceAggregatedList\",\"id\":\"projects/demo-project/aggregated/"
    "instances\",\"items\":{\"zones/a\":{\"instances\":[{\"name\":\"i1\"},{\"name\":\"i2\"}]},"
    "\"zones/b\":{\"warning\":{\"code\":\"NO_RESULTS_ON_PAGE\",\"message\":\"none\"}}},"
    "\"nextPageToken\":\"p2\"}",
    "{\"items\":{\"zones/b\":{\"instances\":[{\"name\":\"i3\"}]}},\"nextPageToken\":\"p3\"}",
    ("{\"items\":{\"zones/c\":{\"instances\":[{\"name\":\"i4\"}]},\"regions/r\":{\"warning\":{"
     "\"code\":\"NO_RESULTS_ON_PAGE\"}}}}"),
};

static void pages_handler(void *arg, const struct mock_request *req, struct mock_response *out)
{
	(void)arg;
	out->status = 200;
	if (strstr(req->url, "pageToken=p3"))
		out->body = pages[2];
	else if (strstr(req->url, "pageToken=p2"))
		out->body = pages[1];
	else
		out->body = pages[0];
}

struct seen {
	char names[16][32];
	char scopes[16][32];
	int n, stop_at;
};

static int collect(void *arg, const char *scope, json_t *item)
{
	struct seen *s = arg;

	snprintf(s->names[s->n], 32, "%s", json_string_value(json_object_get(item, "name")));
	snprintf(s->scopes[s->n], 32, "%s", scope ? scope : "-");
	s->n++;
	return s->n == s->stop_at ? 7 : 0;
}

static void test_aggregated_pages(void **state)
{
	struct gcp_compute *c = client();
	struct seen s = {0};
	struct http_stats st;
	struct error err = {0};

	(void)state;
	mock_set_handler(srv, pages_handler, NULL);
	assert_int_equal(gcp_compute_list_instances(c, NULL, collect, &s, &err), 0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.names[0], "i1");
	assert_string_equal(s.scopes[0], "zones/a");
	assert_string_equal(s.names[2], "i3");
	assert_string_equal(s.scopes[2], "zones/b");
	assert_string_equal(s.names[3], "i4");
	assert_string_equal(s.scopes[3], "zones/c");
	assert_int_equal(mock_count(srv), 3);
	assert_string_equal(
	    mock_req(srv, 0)->url,
	    "/compute/v1/projects/demo-project/aggregated/instances?maxResults=500");
	assert_string_equal(
	    mock_req(srv, 2)->url,
	    "/compute/v1/projects/demo-project/aggregated/instances?maxResults=500&pageToken=p3");
	gcp_compute_stats(c, &st);
	assert_int_equal(st.requests, 3);

	/* The callback stops the listing: its value comes back, no more pages are read. */
	mock_reset(srv);
	mock_set_handler(srv, pages_handler, NULL);
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	assert_int_equal(gcp_compute_list_instances(
			     c, &(struct gcp_list_options){.filter = "name = i*", .max_results = 2},
			     collect, &s, &err),
			 7);
	assert_int_equal(mock_count(srv), 1);
	assert_string_equal(mock_req(srv, 0)->url, "/compute/v1/projects/demo-project/aggregated/"
						   "instances?maxResults=2&filter=name = i*");
	gcp_compute_free(c);
}

static void test_list_failures(void **state)
{
	struct gcp_compute *c = client();
	struct seen s = {0};
	struct error err = {0};

	(void)state;
	mock_push(srv, &(struct mock_response){
			   .status = 200,
			   .body = "{\"items\":{\"zones/x\":{\"warning\":{\"code\":\"UNREACHABLE\","
				   "\"message\":\"zone down\"}}}}"});
	assert_int_equal(gcp_compute_list_instances(c, NULL, collect, &s, &err), -EIO);
	assert_non_null(strstr(err.msg, "zones/x unreachable: zone down"));
	mock_push(srv, &(struct mock_response){
			   .status = 200, .body = "{\"items\":{},\"unreachables\":[\"zones/y\"]}"});
	assert_int_equal(gcp_compute_list_instances(c, NULL, collect, &s, &err), -EIO);
	mock_push(srv, &(struct mock_response){
			   .status = 200, .body = "{\"items\":{\"zones/a\":{\"instances\":{}}}}"});
	assert_int_equal(gcp_compute_list_instances(c, NULL, collect, &s, &err), -EBADMSG);
	mock_push(srv, &(struct mock_response){.status = 200,
					       .body = "{\"items\":[],\"nextPageToken\":\"t\"}"});
	mock_push(srv, &(struct mock_response){.status = 200,
					       .body = "{\"items\":[],\"nextPageToken\":\"t\"}"});
	assert_int_equal(
	    gcp_compute_list(c, "projects/demo-project/global/networks", NULL, collect, &s, &err),
	    -EBADMSG);
	assert_non_null(strstr(err.msg, "nextPageToken repeats itself"));
	mock_push(srv,
		  &(struct mock_response){.status = 403,
					  .body = "{\"error\":{\"code\":403,\"message\":\"no\","
						  "\"errors\":[{\"reason\":\"forbidden\"}]}}"});
	assert_int_equal(gcp_compute_list_instances(c, NULL, collect, &s, &err), -EACCES);
	assert_int_equal(s.n, 0);
	gcp_compute_free(c);
}

/* Instances with more than the caller wants, as a server that ignores "fields" sends them. */
static const char *full_pages[] = {
    "{\"items\":{\"zones/a\":{\"instances\":[{\"name\":\"i1\",\"zone\":\"https://x/zones/a\","
    "\"id\":\"18446744073709551615\",\"networkInterfaces\":[{\"name\":\"nic0\",\"aliasIpRanges\":"
    "[{\"ipCidrRange\":\"10.0.0.0/24\"}]}],\"disks\":[{\"boot\":true}],\"metadata\":{\"items\":[{"
    "\"key\":\"user-data\",\"value\":\"...\"}]}}]},\"zones/b\":{\"warning\":{\"code\":"
    "\"NO_RESULTS_ON_PAGE\"}}},\"nextPageToken\":\"p2\"}",
    "{\"items\":{\"zones/b\":{\"instances\":[{\"name\":\"i2\",\"status\":\"RUNNING\"}]}}}",
};

static void full_pages_handler(void *arg, const struct mock_request *req, struct mock_response *out)
{
	(void)arg;
	out->status = 200;
	out->body = strstr(req->url, "pageToken=p2") ? full_pages[1] : full_pages[0];
}

struct dumped {
	char text[4][200];
	char scope[4][32];
	int n;
};

static int dump_item(void *arg, const char *scope, json_t *item)
{
	struct dumped *d = arg;
	char *s = json_dumps(item, JSON_COMPACT | JSON_SORT_KEYS);

	snprintf(d->text[d->n % 4], sizeof(d->text[0]), "%s", s);
	snprintf(d->scope[d->n++ % 4], sizeof(d->scope[0]), "%s", scope ? scope : "-");
	free(s);
	return 0;
}

/*
 * projection reduces items whatever the server sent; fields goes to the server with what
 * paging needs added (the token; for aggregated lists the warnings and unreachables).
 */
static void test_list_projection_and_fields(void **state)
{
	static const char *const projection[] = {"name", "networkInterfaces", NULL};
	struct gcp_compute *c = client();
	struct error err = {0};
	struct dumped d = {0};

	(void)state;
	mock_set_handler(srv, full_pages_handler, NULL);
	assert_int_equal(
	    gcp_compute_list_instances(
		c,
		&(struct gcp_list_options){.fields = "items/*/instances(name,networkInterfaces)",
					   .projection = projection},
		dump_item, &d, &err),
	    0);
	assert_int_equal(d.n, 2);
	assert_string_equal(d.text[0], "{\"name\":\"i1\",\"networkInterfaces\":[{\"aliasIpRanges\":"
				       "[{\"ipCidrRange\":\"10.0.0.0/24\"}],\"name\":\"nic0\"}]}");
	assert_string_equal(d.scope[0], "zones/a");
	assert_string_equal(d.text[1], "{\"name\":\"i2\"}");
	assert_string_equal(d.scope[1], "zones/b");
	assert_int_equal(mock_count(srv), 2);
	/* (The mock server shows the query decoded.) */
	assert_string_equal(mock_req(srv, 0)->url,
			    "/compute/v1/projects/demo-project/aggregated/instances?maxResults=500&"
			    "fields=items/*/instances(name,networkInterfaces),"
			    "nextPageToken,items/*/warning,unreachables");
	assert_string_equal(mock_req(srv, 1)->url,
			    "/compute/v1/projects/demo-project/aggregated/instances?maxResults=500&"
			    "fields=items/*/instances(name,networkInterfaces),"
			    "nextPageToken,items/*/warning,unreachables&pageToken=p2");

	/* What is there already is not added twice; a plain list only needs the token. */
	mock_reset(srv);
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{\"items\":[]}"});
	assert_int_equal(
	    gcp_compute_list_instances(
		c,
		&(struct gcp_list_options){
		    .fields = "nextPageToken,unreachables,items/*/warning,items/*/instances/name"},
		dump_item, &d, &err),
	    0);
	assert_int_equal(gcp_compute_list(c, "projects/demo-project/global/networks",
					  &(struct gcp_list_options){.fields = "items/name"},
					  dump_item, &d, &err),
			 0);
	assert_string_equal(mock_req(srv, 0)->url,
			    "/compute/v1/projects/demo-project/aggregated/instances?maxResults=500&"
			    "fields=nextPageToken,unreachables,items/*/warning,"
			    "items/*/instances/name");
	assert_string_equal(mock_req(srv, 1)->url,
			    "/compute/v1/projects/demo-project/global/networks?maxResults=500&"
			    "fields=items/name,nextPageToken");

	/* A projection does not hide an unreachable scope. */
	mock_push(srv, &(struct mock_response){
			   .status = 200,
			   .body = "{\"items\":{\"zones/a\":{\"instances\":[{\"name\":\"i1\"}]},"
				   "\"zones/x\":{\"warning\":{\"code\":\"UNREACHABLE\",\"message\":"
				   "\"zone down\"}}}}"});
	d.n = 0;
	assert_int_equal(
	    gcp_compute_list_instances(c, &(struct gcp_list_options){.projection = projection},
				       dump_item, &d, &err),
	    -EIO);
	assert_non_null(strstr(err.msg, "zones/x unreachable: zone down"));
	/* Handed over before the page was known to be incomplete: the caller drops it. */
	assert_int_equal(d.n, 1);
	gcp_compute_free(c);
}

static void test_get_and_self_links(void **state)
{
	struct gcp_compute *c = client();
	struct error err = {0};
	json_t *j = NULL;

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{\"name\":\"i1\"}"});
	assert_int_equal(gcp_compute_get_instance(c, "zones/us-a", "i1", &j, &err), 0);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "i1");
	json_decref(j);
	assert_string_equal(mock_req(srv, 0)->url,
			    "/compute/v1/projects/demo-project/zones/us-a/instances/i1");
	/* A selfLink naming www.googleapis.com is re-rooted on our endpoint. */
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{\"name\":\"s\"}"});
	assert_int_equal(
	    gcp_compute_get(c,
			    "https://www.googleapis.com/compute/v1/projects/demo-project/"
			    "regions/us/subnetworks/s",
			    &j, &err),
	    0);
	json_decref(j);
	assert_string_equal(mock_req(srv, 1)->url,
			    "/compute/v1/projects/demo-project/regions/us/subnetworks/s");
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{\"name\":\"s\"}"});
	assert_int_equal(gcp_compute_get_subnetwork(c,
						    "https://x/compute/v1/projects/demo-project/"
						    "regions/us",
						    "s", &j, &err),
			 0);
	json_decref(j);
	assert_string_equal(mock_req(srv, 2)->url,
			    "/compute/v1/projects/demo-project/regions/us/subnetworks/s");
	/* Names are checked before they reach a URL. */
	assert_int_equal(gcp_compute_get_instance(c, "us-a", "../x", &j, &err), -EINVAL);
	assert_int_equal(gcp_compute_get(c, "https://evil.example.com/other", &j, &err), -EINVAL);
	mock_push(srv, &(struct mock_response){.status = 200, .body = "[1]"});
	assert_int_equal(gcp_compute_get_instance(c, "us-a", "i1", &j, &err), -EBADMSG);
	gcp_compute_free(c);
}

static void test_set_alias_ranges_and_wait(void **state)
{
	struct gcp_compute *c = client();
	struct gcp_alias_range r = {.ip_cidr_range = "10.4.1.0/24",
				    .subnetwork_range_name = "pods"};
	struct gcp_operation op;
	struct error err = {0};
	const struct mock_request *q;
	json_t *body;
	char rid1[64], rid2[64];

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 503, .body = "{}"});
	mock_push(srv, &(struct mock_response){
			   .status = 200,
			   .body = "{\"kind\":\"compute#operation\",\"name\":\"op-1\",\"zone\":"
				   "\"https://www.googleapis.com/compute/v1/projects/demo-project/"
				   "zones/us-a\",\"status\":\"RUNNING\",\"operationType\":"
				   "\"updateNetworkInterface\"}"});
	assert_int_equal(gcp_compute_set_alias_ranges(c, "us-a", "node-1", NULL, "AAEC+/z/AAA=", &r,
						      1, &op, &err),
			 0);
	assert_string_equal(op.name, "op-1");
	assert_false(op.done);
	/* Retried with the same requestId, so GCP applies it at most once. */
	assert_int_equal(mock_count(srv), 2);
	q = mock_req(srv, 1);
	assert_string_equal(q->method, "PATCH");
	assert_memory_equal(q->url,
			    "/compute/v1/projects/demo-project/zones/us-a/instances/node-1/"
			    "updateNetworkInterface?networkInterface=nic0&requestId=",
			    109);
	sscanf(strstr(mock_req(srv, 0)->url, "requestId=") + 10, "%63s", rid1);
	sscanf(strstr(q->url, "requestId=") + 10, "%63s", rid2);
	assert_string_equal(rid1, rid2);
	assert_int_equal(strlen(rid1), 36);
	body = json_loads(q->body, 0, NULL);
	assert_non_null(body);
	assert_string_equal(json_string_value(json_object_get(body, "fingerprint")),
			    "AAEC+/z/AAA=");
	assert_string_equal(
	    json_string_value(json_object_get(
		json_array_get(json_object_get(body, "aliasIpRanges"), 0), "ipCidrRange")),
	    "10.4.1.0/24");
	assert_string_equal(
	    json_string_value(json_object_get(
		json_array_get(json_object_get(body, "aliasIpRanges"), 0), "subnetworkRangeName")),
	    "pods");
	json_decref(body);

	/* Wait: RUNNING once more, then DONE with an error. */
	mock_reset(srv);
	mock_push(srv, &(struct mock_response){.status = 200,
					       .body = "{\"name\":\"op-1\",\"status\":\"RUNNING\","
						       "\"zone\":\"zones/us-a\"}"});
	mock_push(srv, &(struct mock_response){
			   .status = 200,
			   .body = "{\"name\":\"op-1\",\"status\":\"DONE\",\"zone\":\"zones/us-a\","
				   "\"error\":{\"errors\":[{\"code\":"
				   "\"IP_IN_USE_BY_ANOTHER_RESOURCE\",\"message\":\"in use\"}]}}"});
	assert_int_equal(gcp_compute_wait(c, &op, 5000, &err), -EADDRINUSE);
	assert_true(op.done);
	assert_int_equal(mock_count(srv), 2);
	assert_string_equal(mock_req(srv, 0)->method, "POST");
	assert_string_equal(mock_req(srv, 0)->url,
			    "/compute/v1/projects/demo-project/zones/us-a/operations/op-1/wait");

	/* A stale fingerprint: 412, not retried, -ESTALE. */
	mock_reset(srv);
	mock_push(srv, &(struct mock_response){
			   .status = 412,
			   .body = "{\"error\":{\"code\":412,\"message\":\"stale\",\"errors\":[{"
				   "\"reason\":\"conditionNotMet\"}]}}"});
	assert_int_equal(gcp_compute_set_alias_ranges(c, "us-a", "node-1", "nic0",
						      "AAAAAAAAAAA=", NULL, 0, &op, &err),
			 -ESTALE);
	assert_int_equal(mock_count(srv), 1);
	body = json_loads(mock_req(srv, 0)->body, 0, NULL);
	assert_int_equal(json_array_size(json_object_get(body, "aliasIpRanges")), 0);
	assert_non_null(json_object_get(body, "aliasIpRanges"));
	json_decref(body);
	assert_int_equal(
	    gcp_compute_set_alias_ranges(c, "us-a", "node-1", "nic0", "", NULL, 0, &op, &err),
	    -EINVAL);
	gcp_compute_free(c);
}

static void test_done_operation(void **state)
{
	struct gcp_compute *c = client();
	struct gcp_operation op;
	struct error err = {0};

	(void)state;
	/* Synchronously DONE: no wait request; DONE with an error: the error at once. */
	mock_push(srv, &(struct mock_response){.status = 200,
					       .body = "{\"name\":\"op-d\",\"status\":\"DONE\","
						       "\"zone\":\"zones/z\"}"});
	assert_int_equal(gcp_compute_mutate(c, "POST", "projects/demo-project/zones/z/instances",
					    NULL, &op, &err),
			 0);
	assert_true(op.done);
	assert_int_equal(gcp_compute_wait(c, &op, 1000, &err), 0);
	assert_int_equal(mock_count(srv), 1);
	mock_push(srv,
		  &(struct mock_response){
		      .status = 200,
		      .body = "{\"name\":\"op-e\",\"status\":\"DONE\",\"error\":{\"errors\":[{"
			      "\"code\":\"RESOURCE_ALREADY_EXISTS\",\"message\":\"exists\"}]}}"});
	assert_int_equal(gcp_compute_mutate(c, "POST", "projects/demo-project/zones/z/instances",
					    NULL, &op, &err),
			 -EEXIST);
	assert_string_equal(op.name, "op-e");
	gcp_compute_free(c);
}

static void test_wait_deadline(void **state)
{
	struct gcp_compute *c = client();
	struct gcp_operation op = {.name = "op-9", .scope = "zones/z"};
	struct error err = {0};

	(void)state;
	for (int i = 0; i < 20; i++)
		mock_push(srv,
			  &(struct mock_response){
			      .status = 200, .body = "{\"name\":\"op-9\",\"status\":\"RUNNING\"}"});
	assert_int_equal(gcp_compute_wait(c, &op, 300, &err), -ETIMEDOUT);
	assert_memory_equal(err.msg, "operation op-9", 14);
	gcp_compute_free(c);
}

static void test_endpoint_rules(void **state)
{
	struct gcp_compute *c = NULL;
	struct gcp_credentials *creds = NULL;
	struct error err = {0};
	char path[] = "/tmp/test_compute_token.XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "ya29.t\n", 7), 7);
	close(fd);
	assert_int_equal(
	    gcp_credentials_load(&(struct gcp_credentials_options){.access_token_file = path},
				 &creds, &err),
	    0);
	setenv(GCP_COMPUTE_ENDPOINT_ENV, "http://127.0.0.1:1/compute/v1/", 1);
	assert_int_equal(gcp_compute_new(&(struct gcp_compute_options){.project = "p"}, &c, &err),
			 0);
	assert_string_equal(gcp_compute_endpoint(c), "http://127.0.0.1:1/compute/v1/");
	gcp_compute_free(c);
	unsetenv(GCP_COMPUTE_ENDPOINT_ENV);
	assert_int_equal(gcp_compute_new(&(struct gcp_compute_options){.project = "p"}, &c, &err),
			 0);
	assert_string_equal(gcp_compute_endpoint(c), GCP_COMPUTE_DEFAULT_ENDPOINT);
	gcp_compute_free(c);
	/* A token never goes over plain http to anything but loopback. */
	assert_int_equal(
	    gcp_compute_new(
		&(struct gcp_compute_options){.endpoint = "http://compute.example.com/compute/v1/",
					      .project = "p",
					      .creds = creds},
		&c, &err),
	    -EINVAL);
	assert_int_equal(gcp_compute_new(&(struct gcp_compute_options){.project = "p q"}, &c, &err),
			 -EINVAL);
	assert_int_equal(
	    gcp_compute_new(&(struct gcp_compute_options){.endpoint = "ftp://x", .project = "p"},
			    &c, &err),
	    -EINVAL);
	/* With credentials, requests carry the bearer token. */
	{
		char ep[128];
		json_t *j = NULL;

		snprintf(ep, sizeof(ep), "%s/compute/v1/", mock_url(srv));
		assert_int_equal(gcp_compute_new(&(struct gcp_compute_options){.endpoint = ep,
									       .project = "p",
									       .creds = creds},
						 &c, &err),
				 0);
		mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
		assert_int_equal(gcp_compute_get(c, "projects/p", &j, &err), 0);
		assert_string_equal(mock_req(srv, 0)->authorization, "Bearer ya29.t");
		json_decref(j);
		gcp_compute_free(c);
	}
	gcp_credentials_free(creds);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_api_errors),
	    cmocka_unit_test(test_operation_errors),
	    cmocka_unit_test(test_fingerprints_and_helpers),
	    cmocka_unit_test_setup(test_aggregated_pages, setup),
	    cmocka_unit_test_setup(test_list_failures, setup),
	    cmocka_unit_test_setup(test_list_projection_and_fields, setup),
	    cmocka_unit_test_setup(test_get_and_self_links, setup),
	    cmocka_unit_test_setup(test_set_alias_ranges_and_wait, setup),
	    cmocka_unit_test_setup(test_done_operation, setup),
	    cmocka_unit_test_setup(test_wait_deadline, setup),
	    cmocka_unit_test_setup(test_endpoint_rules, setup),
	};
	int ret;

	srv = mock_start(NULL);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	mock_stop(srv);
	return ret;
}
