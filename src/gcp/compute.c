/* SPDX-License-Identifier: Apache-2.0 */
#include "gcp/compute.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/base64.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/json_stream.h"
#include "common/log.h"

#define OPERATION_TIMEOUT_MS 300000
/* POST .../wait answers within about two minutes even if the operation is not DONE. */
#define WAIT_CALL_TIMEOUT_MS 130000
#define MAX_PAGES            100000

struct gcp_compute {
	char *endpoint; /* ends in '/' */
	char *project;
	struct gcp_credentials *creds;
	struct http_client *http;
	struct http_options http_opt; /* what http was made with, for clones */
	struct http_stats clones;     /* requests made by clones, counted here when freed */
};

/* Letters, digits and - . _ : only: what project, zone, region and resource names use. */
static bool safe_segment(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '_' || *s == ':'))
			return false;
	return true;
}

const char *gcp_basename(const char *url)
{
	const char *slash;

	if (!url)
		return "";
	slash = strrchr(url, '/');
	return slash ? slash + 1 : url;
}

int gcp_compute_new(const struct gcp_compute_options *opt, struct gcp_compute **out,
		    struct error *err)
{
	struct http_options hopt = {0};
	struct http_url_info info;
	struct gcp_compute *c;
	const char *ep, *what;
	size_t n;
	int ret;

	ep = opt->endpoint;
	what = "--compute-endpoint";
	if (!ep || !*ep) {
		ep = getenv(GCP_COMPUTE_ENDPOINT_ENV);
		what = GCP_COMPUTE_ENDPOINT_ENV;
	}
	if (!ep || !*ep) {
		ep = GCP_COMPUTE_DEFAULT_ENDPOINT;
		what = "compute endpoint";
	}
	ret = http_url_check(ep, what, 0, &info, err);
	if (ret < 0)
		return ret;
	if (!info.https && opt->creds && !info.loopback)
		return error_set(err, EINVAL,
				 "%s \"%s\": plain http:// would send the access token in clear "
				 "(only loopback may use it: 127.0.0.0/8, [::1], localhost)",
				 what, ep);
	if (!safe_segment(opt->project))
		return error_set(err, EINVAL, "project \"%s\": not a valid project ID",
				 opt->project ? opt->project : "");
	c = calloc(1, sizeof(*c));
	if (!c)
		return error_set(err, ENOMEM, "out of memory");
	n = strlen(ep);
	if (asprintf(&c->endpoint, "%s%s", ep, ep[n - 1] == '/' ? "" : "/") < 0) {
		c->endpoint = NULL;
		ret = error_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	c->project = strdup(opt->project);
	if (!c->project) {
		ret = error_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	c->creds = opt->creds;
	if (opt->http)
		hopt = *opt->http;
	memset(&hopt.tls, 0, sizeof(hopt.tls)); /* system CAs, verification on */
	hopt.token = opt->creds ? gcp_credentials_token : NULL;
	hopt.token_arg = opt->creds;
	hopt.retry_response = gcp_is_rate_limited;
	c->http_opt = hopt;
	ret = http_client_new(&hopt, &c->http, err);
	if (ret < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	gcp_compute_free(c);
	return ret;
}

int gcp_compute_clone(const struct gcp_compute *c, struct gcp_compute **out, struct error *err)
{
	struct gcp_compute *n = calloc(1, sizeof(*n));
	int ret;

	if (!n)
		return error_set(err, ENOMEM, "out of memory");
	n->endpoint = strdup(c->endpoint);
	n->project = strdup(c->project);
	n->creds = c->creds;
	n->http_opt = c->http_opt;
	if (!n->endpoint || !n->project) {
		ret = error_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	ret = http_client_new(&n->http_opt, &n->http, err);
	if (ret < 0)
		goto fail;
	*out = n;
	return 0;
fail:
	gcp_compute_free(n);
	return ret;
}

void gcp_compute_clone_done(struct gcp_compute *c, struct gcp_compute *clone)
{
	struct http_stats st;

	if (!clone)
		return;
	if (clone->http) {
		http_client_stats(clone->http, &st);
		c->clones.requests += st.requests;
		c->clones.retries += st.retries;
		c->clones.connections += st.connections;
		c->clones.bytes_received += st.bytes_received;
		c->clones.wait_ms += st.wait_ms;
	}
	gcp_compute_free(clone);
}

void gcp_compute_free(struct gcp_compute *c)
{
	if (!c)
		return;
	http_client_free(c->http);
	free(c->endpoint);
	free(c->project);
	free(c);
}

const char *gcp_compute_endpoint(const struct gcp_compute *c)
{
	return c->endpoint;
}

const char *gcp_compute_project(const struct gcp_compute *c)
{
	return c->project;
}

const struct http_client *gcp_compute_http(const struct gcp_compute *c)
{
	return c->http;
}

void gcp_compute_stats(const struct gcp_compute *c, struct http_stats *out)
{
	http_client_stats(c->http, out);
	out->requests += c->clones.requests;
	out->retries += c->clones.retries;
	out->connections += c->clones.connections;
	out->bytes_received += c->clones.bytes_received;
	out->wait_ms += c->clones.wait_ms;
}

/* ---- errors ---- */

bool gcp_is_rate_limited(long status, const char *body, size_t len)
{
	json_t *root = NULL, *errors;
	bool limited = false;
	size_t i;
	json_t *e;

	if (status != 403 || !body || !len)
		return false;
	/* Cheap test first: most 403s are permission errors. */
	if (!memmem(body, len, "ateLimitExceeded", 16))
		return false;
	if (json_parse(body, len, NULL, &root, NULL) < 0)
		return false;
	errors = json_path(root, "error.errors");
	json_array_foreach(errors, i, e)
	{
		const char *r = json_str(e, "reason");

		if (r && (!strcmp(r, "rateLimitExceeded") || !strcmp(r, "userRateLimitExceeded")))
			limited = true;
	}
	json_decref(root);
	return limited;
}

static int reason_errno(const char *r)
{
	static const struct {
		const char *reason;
		int err;
	} map[] = {
	    {"conditionNotMet", ESTALE},
	    {"CONDITION_NOT_MET", ESTALE},
	    {"notFound", ENOENT},
	    {"RESOURCE_NOT_FOUND", ENOENT},
	    {"alreadyExists", EEXIST},
	    {"RESOURCE_ALREADY_EXISTS", EEXIST},
	    {"ALREADY_EXISTS", EEXIST},
	    {"resourceInUseByAnotherResource", EBUSY},
	    {"RESOURCE_IN_USE_BY_ANOTHER_RESOURCE", EBUSY},
	    {"resourceNotReady", EBUSY},
	    {"RESOURCE_NOT_READY", EBUSY},
	    {"rateLimitExceeded", EAGAIN},
	    {"userRateLimitExceeded", EAGAIN},
	    {"RATE_LIMIT_EXCEEDED", EAGAIN},
	    {"quotaExceeded", EDQUOT},
	    {"QUOTA_EXCEEDED", EDQUOT},
	    {"IP_IN_USE_BY_ANOTHER_RESOURCE", EADDRINUSE},
	    {"ipInUseByAnotherResource", EADDRINUSE},
	    {"forbidden", EACCES},
	    {"insufficientPermissions", EACCES},
	    {"PERMISSIONS_ERROR", EACCES},
	};

	if (!r)
		return 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(r, map[i].reason))
			return -map[i].err;
	return 0;
}

int gcp_api_error(long status, const char *body, size_t len, const char *what, struct error *err)
{
	const char *msg = NULL, *reason = NULL;
	json_t *root = NULL, *errors, *e;
	int ret, specific = 0;
	size_t i;

	ret = http_status_errno(status);
	if (ret == 0)
		ret = -EBADMSG; /* a 2xx handed here is a response we could not use */
	if (!what)
		what = "request";
	if (body && len && json_parse(body, len, NULL, &root, NULL) == 0 && json_is_object(root)) {
		msg = json_path_str(root, "error.message");
		errors = json_path(root, "error.errors");
		/* The first reason names the error; a known one wins, IP_IN_USE above all. */
		json_array_foreach(errors, i, e)
		{
			const char *r = json_str(e, "reason");
			int m = reason_errno(r);

			if (!reason)
				reason = r;
			if (!msg)
				msg = json_str(e, "message");
			if (m && (!specific || m == -EADDRINUSE)) {
				specific = m;
				reason = r;
			}
		}
		if (specific)
			ret = specific;
		if (!reason)
			reason = json_path_str(root, "error.status");
		if (msg && strstr(msg, "IP_IN_USE_BY_ANOTHER_RESOURCE"))
			ret = -EADDRINUSE;
		if ((status == 401 || status == 403) && ret != -EAGAIN && ret != -EDQUOT)
			ret = -EACCES;
		if (status == 412)
			ret = -ESTALE;
		error_set(err, -ret, "HTTP %ld%s%s: %.300s (%s)", status, reason ? " " : "",
			  reason ? reason : "", msg ? msg : "no message", what);
	} else {
		http_status_error(status, body, len, what, -ret, err);
	}
	json_decref(root);
	return ret;
}

int gcp_operation_error(const json_t *op, struct error *err)
{
	const json_t *errors = json_path(op, "error.errors"), *first;
	const char *code, *msg, *name;
	int64_t http_status = 0;
	int ret;

	if (!json_is_array(errors) || json_array_size(errors) == 0) {
		if (json_path(op, "error"))
			return error_set(err, EIO, "operation %s failed without details",
					 json_str(op, "name") ? json_str(op, "name") : "?");
		return 0;
	}
	first = json_array_get(errors, 0);
	code = json_str(first, "code");
	msg = json_str(first, "message");
	name = json_str(op, "name");
	ret = reason_errno(code);
	if (!ret && msg && strstr(msg, "IP_IN_USE_BY_ANOTHER_RESOURCE"))
		ret = -EADDRINUSE;
	if (!ret && json_path_int64(op, "httpErrorStatusCode", &http_status) == 0)
		ret = http_status_errno((long)http_status);
	if (!ret)
		ret = -EIO;
	error_set(err, -ret, "operation %s (%s %s): %s: %.300s%s", name ? name : "?",
		  json_str(op, "operationType") ? json_str(op, "operationType") : "?",
		  gcp_basename(json_str(op, "targetLink")), code ? code : "error",
		  msg ? msg : "no message",
		  json_array_size(errors) > 1 ? " (and more errors)" : "");
	return ret;
}

int gcp_operation_parse(const json_t *json, struct gcp_operation *op, struct error *err)
{
	const char *name = json_str(json, "name"), *status = json_str(json, "status");
	const char *zone = json_str(json, "zone"), *region = json_str(json, "region");

	memset(op, 0, sizeof(*op));
	if (!name || !status || strlen(name) >= sizeof(op->name) || !safe_segment(name))
		return error_set(err, EBADMSG,
				 "response is not an Operation (no valid name/status)");
	snprintf(op->name, sizeof(op->name), "%s", name);
	snprintf(op->status, sizeof(op->status), "%s", status);
	snprintf(op->operation_type, sizeof(op->operation_type), "%s",
		 json_str(json, "operationType") ? json_str(json, "operationType") : "");
	snprintf(op->target_link, sizeof(op->target_link), "%s",
		 json_str(json, "targetLink") ? json_str(json, "targetLink") : "");
	if (zone && safe_segment(gcp_basename(zone)))
		snprintf(op->scope, sizeof(op->scope), "zones/%s", gcp_basename(zone));
	else if (region && safe_segment(gcp_basename(region)))
		snprintf(op->scope, sizeof(op->scope), "regions/%s", gcp_basename(region));
	else
		snprintf(op->scope, sizeof(op->scope), "global");
	op->done = !strcmp(status, "DONE");
	return 0;
}

/* ---- requests ---- */

/* The full URL for a path relative to the endpoint, or for a selfLink. malloc'd. */
static int resolve_url(struct gcp_compute *c, const char *path, char **out, struct error *err)
{
	const char *rest = path;

	if (!strncmp(path, "https://", 8) || !strncmp(path, "http://", 7)) {
		rest = strstr(path, "/compute/v1/");
		if (!rest)
			return error_set(err, EINVAL, "\"%s\" is not a Compute v1 URL", path);
		rest += strlen("/compute/v1/");
	}
	while (*rest == '/')
		rest++;
	if (strstr(rest, "..") || strpbrk(rest, " \t\r\n#"))
		return error_set(err, EINVAL, "\"%s\": not a resource path", path);
	if (asprintf(out, "%s%s", c->endpoint, rest) < 0)
		return error_set(err, ENOMEM, "out of memory");
	return 0;
}

/*
 * method url [body] -> *out (the JSON object of a 2xx answer; out NULL: discard it), or the
 * API error mapped by gcp_api_error().
 */
static int call(struct gcp_compute *c, const char *method, const char *url, const json_t *body,
		enum http_idempotency idem, uint64_t timeout_ms, json_t **out, struct error *err)
{
	struct http_request req = {
	    .method = method, .url = url, .idempotent = idem, .timeout_ms = timeout_ms};
	int ret;

	ret = http_call_json(c->http, &req, body, gcp_api_error, out, err);
	if (ret == 0 && out && !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		ret = error_set(err, EBADMSG, "%s %s: expected a JSON object", method, url);
	}
	return ret;
}

int gcp_compute_get(struct gcp_compute *c, const char *path_or_url, json_t **out, struct error *err)
{
	char *url = NULL;
	int ret;

	ret = resolve_url(c, path_or_url, &url, err);
	if (ret < 0)
		return ret;
	ret = call(c, "GET", url, NULL, HTTP_IDEMPOTENT_AUTO, 0, out, err);
	free(url);
	return ret;
}

int gcp_compute_get_instance(struct gcp_compute *c, const char *zone, const char *name,
			     json_t **out, struct error *err)
{
	char path[512];

	zone = gcp_basename(zone);
	if (!safe_segment(zone) || !safe_segment(name))
		return error_set(err, EINVAL, "instance \"%s\" in zone \"%s\": invalid name",
				 name ? name : "", zone);
	snprintf(path, sizeof(path), "projects/%s/zones/%s/instances/%s", c->project, zone, name);
	return gcp_compute_get(c, path, out, err);
}

int gcp_compute_get_subnetwork(struct gcp_compute *c, const char *region, const char *name,
			       json_t **out, struct error *err)
{
	char path[512];

	region = gcp_basename(region);
	if (!safe_segment(region) || !safe_segment(name))
		return error_set(err, EINVAL, "subnetwork \"%s\" in region \"%s\": invalid name",
				 name ? name : "", region);
	snprintf(path, sizeof(path), "projects/%s/regions/%s/subnetworks/%s", c->project, region,
		 name);
	return gcp_compute_get(c, path, out, err);
}

struct page_items {
	gcp_item_fn fn;
	void *arg;
};

/* json_stream_item_fn: the scope is the key the "*" of "items.*.RESOURCE" matched. */
static int page_item(void *arg, json_t *item, const struct json_stream_at *at)
{
	struct page_items *pi = arg;

	return pi->fn(pi->arg, at->n_keys ? at->keys[0] : NULL, item);
}

/*
 * What a page (reduced to nextPageToken, unreachables and the scopes' warnings) says about
 * its completeness: a scope that could not be read fails the listing, since a partial
 * answer would pass for a complete one.
 */
static int page_check(const json_t *page, bool aggregated, const char *what, struct error *err)
{
	json_t *unreachables = json_object_get(page, "unreachables"), *scoped;
	const char *scope;

	if (json_is_array(unreachables) && json_array_size(unreachables) > 0)
		return error_set(err, EIO, "%s: %s unreachable: the list would be incomplete", what,
				 json_string_value(json_array_get(unreachables, 0))
				     ? json_string_value(json_array_get(unreachables, 0))
				     : "a scope");
	if (!aggregated)
		return 0;
	json_object_foreach(json_object_get(page, "items"), scope, scoped)
	{
		const char *code = json_path_str(scoped, "warning.code");

		if (code && !strcmp(code, "UNREACHABLE"))
			return error_set(err, EIO, "%s: %s unreachable: %.200s", what, scope,
					 json_path_str(scoped, "warning.message")
					     ? json_path_str(scoped, "warning.message")
					     : "no message");
		if (code && strcmp(code, "NO_RESULTS_ON_PAGE"))
			log_debug("compute: %s: warning %s", scope, code);
	}
	return 0;
}

/*
 * The caller's partial-response selector plus what paging needs: the token to follow
 * pages, and for aggregated lists the scopes' warnings and unreachables that say whether a
 * page is complete. Selector syntax: https://cloud.google.com/compute/docs/api/how-tos/
 * performance ("a/b" nested, "a(b,c)" sub-selection, "*" any key). NULL on ENOMEM.
 */
static char *page_fields(const char *fields, bool aggregated)
{
	static const struct {
		const char *present, *add;
		bool aggregated_only;
	} need[] = {
	    {"nextPageToken", "nextPageToken", false},
	    {"warning", "items/*/warning", true},
	    {"unreachables", "unreachables", true},
	};
	char *out = strdup(fields);

	for (size_t i = 0; out && i < sizeof(need) / sizeof(need[0]); i++) {
		char *n;

		if ((need[i].aggregated_only && !aggregated) || strstr(out, need[i].present))
			continue;
		if (asprintf(&n, "%s,%s", out, need[i].add) < 0)
			n = NULL;
		free(out);
		out = n;
	}
	return out;
}

/* resource NULL: a plain list ("items" is an array); else "items" is an object of scopes. */
static int list_pages(struct gcp_compute *c, const char *path, const char *resource,
		      const struct gcp_list_options *opt, gcp_item_fn fn, void *arg,
		      struct error *err)
{
	static const char *const plain_fields[] = {"nextPageToken", "unreachables", NULL};
	static const char *const aggregated_fields[] = {"nextPageToken", "unreachables",
							"items.*.warning", NULL};
	char *base = NULL, *url = NULL, *token = NULL, maxr[16], what[600], items[160];
	unsigned max_results = opt && opt->max_results ? opt->max_results : GCP_MAX_RESULTS;
	struct json_stream_options sopt = {
	    .items = items,
	    .fields = opt ? opt->projection : NULL,
	    .extras = resource ? aggregated_fields : plain_fields,
	    .flags = JSON_STREAM_OBJECT_ITEMS,
	};
	struct page_items pi = {.fn = fn, .arg = arg};
	struct http_response resp = {0};
	json_t *page = NULL;
	int ret;

	if (max_results > GCP_MAX_RESULTS)
		max_results = GCP_MAX_RESULTS;
	snprintf(items, sizeof(items), "items%s%s", resource ? ".*." : "",
		 resource ? resource : "");
	ret = resolve_url(c, path, &base, err);
	if (ret < 0)
		return ret;
	snprintf(maxr, sizeof(maxr), "%u", max_results);
	ret = http_url_add_query(&base, "maxResults", maxr);
	if (!ret && opt && opt->filter)
		ret = http_url_add_query(&base, "filter", opt->filter);
	if (!ret && opt && opt->fields) {
		char *f = page_fields(opt->fields, resource != NULL);

		ret = f ? http_url_add_query(&base, "fields", f) : -ENOMEM;
		free(f);
	}
	if (ret < 0) {
		ret = error_set(err, ENOMEM, "out of memory");
		goto cleanup;
	}
	for (unsigned pages = 0;; pages++) {
		const char *next;

		if (pages >= MAX_PAGES) {
			ret =
			    error_set(err, EBADMSG, "GET %s: more than %u pages", base, MAX_PAGES);
			goto cleanup;
		}
		free(url);
		url = strdup(base);
		if (!url || (token && http_url_add_query(&url, "pageToken", token) < 0)) {
			ret = error_set(err, ENOMEM, "out of memory");
			goto cleanup;
		}
		snprintf(what, sizeof(what), "GET %s", url);
		json_decref(page);
		page = NULL;
		http_response_free(&resp);
		ret = http_call(c->http, &(struct http_request){.url = url}, NULL, gcp_api_error,
				&resp, err);
		if (ret < 0)
			goto cleanup;
		/*
		 * Items one at a time, reduced to opt->projection even when the server ignored
		 * opt->fields; of the page itself only what paging needs.
		 */
		ret = json_stream_parse(resp.body, resp.body_len, what, &sopt, page_item, &pi,
					&page, err);
		if (ret)
			goto cleanup;
		ret = page_check(page, resource != NULL, what, err);
		if (ret)
			goto cleanup;
		next = json_str(page, "nextPageToken");
		if (opt && opt->more)
			*opt->more = next && *next;
		if (!next || !*next || (opt && opt->max_pages && pages + 1 >= opt->max_pages))
			break;
		if (token && !strcmp(token, next)) {
			ret = error_set(err, EBADMSG, "%s: nextPageToken repeats itself", what);
			goto cleanup;
		}
		free(token);
		token = strdup(next);
		if (!token) {
			ret = error_set(err, ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	ret = 0;
cleanup:
	http_response_free(&resp);
	json_decref(page);
	free(token);
	free(url);
	free(base);
	return ret;
}

int gcp_compute_aggregated_list(struct gcp_compute *c, const char *resource,
				const struct gcp_list_options *opt, gcp_item_fn fn, void *arg,
				struct error *err)
{
	char path[512];

	/* A '.' would read as a path step in "items.*.RESOURCE". */
	if (!safe_segment(resource) || strchr(resource, '.'))
		return error_set(err, EINVAL, "aggregated list of \"%s\": invalid resource",
				 resource ? resource : "");
	snprintf(path, sizeof(path), "projects/%s/aggregated/%s", c->project, resource);
	return list_pages(c, path, resource, opt, fn, arg, err);
}

int gcp_compute_list_instances(struct gcp_compute *c, const struct gcp_list_options *opt,
			       gcp_item_fn fn, void *arg, struct error *err)
{
	return gcp_compute_aggregated_list(c, "instances", opt, fn, arg, err);
}

int gcp_compute_list(struct gcp_compute *c, const char *path, const struct gcp_list_options *opt,
		     gcp_item_fn fn, void *arg, struct error *err)
{
	return list_pages(c, path, NULL, opt, fn, arg, err);
}

/* ---- mutations and operations ---- */

void gcp_request_id(char out[37])
{
	uint8_t b[16];
	size_t got = 0;

	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

		if (n <= 0) {
			/* getrandom(2) does not fail once the pool is up; be safe anyway. */
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			for (size_t i = got; i < sizeof(b); i++)
				b[i] = (uint8_t)((uint64_t)ts.tv_nsec >> (i % 8 * 8)) ^ (uint8_t)i;
			break;
		}
		got += (size_t)n;
	}
	b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

int gcp_compute_mutate(struct gcp_compute *c, const char *method, const char *path,
		       const json_t *body, struct gcp_operation *op, struct error *err)
{
	char *url = NULL, rid[37];
	json_t *resp = NULL;
	int ret;

	ret = resolve_url(c, path, &url, err);
	if (ret < 0)
		return ret;
	gcp_request_id(rid);
	if (http_url_add_query(&url, "requestId", rid) < 0) {
		ret = error_set(err, ENOMEM, "out of memory");
		goto cleanup;
	}
	/* The requestId makes a repeated send harmless: retry as an idempotent request. */
	ret = call(c, method, url, body, HTTP_IDEMPOTENT_YES, 0, &resp, err);
	if (ret < 0)
		goto cleanup;
	ret = gcp_operation_parse(resp, op, err);
	if (ret < 0) {
		error_prefix(err, "%s %s", method, url);
		goto cleanup;
	}
	if (op->done)
		ret = gcp_operation_error(resp, err);
	log_debug("compute: %s %s -> operation %s %s", method, path, op->name, op->status);
cleanup:
	json_decref(resp);
	free(url);
	return ret;
}

int gcp_compute_update_network_interface(struct gcp_compute *c, const char *zone,
					 const char *instance, const char *nic, const json_t *body,
					 struct gcp_operation *op, struct error *err)
{
	char path[640];

	zone = gcp_basename(zone);
	if (!nic)
		nic = "nic0";
	if (!safe_segment(zone) || !safe_segment(instance) || !safe_segment(nic))
		return error_set(err, EINVAL, "instance \"%s\" in zone \"%s\" (%s): invalid name",
				 instance ? instance : "", zone, nic);
	if (!json_is_object(body))
		return error_set(err, EINVAL, "updateNetworkInterface: the body must be an object");
	snprintf(path, sizeof(path),
		 "projects/%s/zones/%s/instances/%s/updateNetworkInterface?networkInterface=%s",
		 c->project, zone, instance, nic);
	return gcp_compute_mutate(c, "PATCH", path, body, op, err);
}

int gcp_compute_set_alias_ranges(struct gcp_compute *c, const char *zone, const char *instance,
				 const char *nic, const char *fingerprint,
				 const struct gcp_alias_range *ranges, size_t n,
				 struct gcp_operation *op, struct error *err)
{
	json_t *body, *arr;
	int ret;

	if (!fingerprint || !*fingerprint)
		return error_set(err, EINVAL,
				 "instance %s: no fingerprint (read the instance first)",
				 instance ? instance : "?");
	arr = json_array();
	body = json_pack("{s:s, s:o}", "fingerprint", fingerprint, "aliasIpRanges", arr);
	if (!body) {
		json_decref(arr);
		return error_set(err, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		json_t *r = json_pack("{s:s}", "ipCidrRange", ranges[i].ip_cidr_range);

		if (!r ||
		    (ranges[i].subnetwork_range_name &&
		     json_object_set_new(r, "subnetworkRangeName",
					 json_string(ranges[i].subnetwork_range_name))) ||
		    json_array_append_new(arr, r)) {
			json_decref(body);
			return error_set(err, ENOMEM, "out of memory");
		}
	}
	ret = gcp_compute_update_network_interface(c, zone, instance, nic, body, op, err);
	json_decref(body);
	return ret;
}

int gcp_compute_wait(struct gcp_compute *c, struct gcp_operation *op, uint64_t timeout_ms,
		     struct error *err)
{
	uint64_t deadline = now_ms() + (timeout_ms ? timeout_ms : OPERATION_TIMEOUT_MS);
	uint64_t pause = 100;
	char path[512], *url = NULL;
	json_t *resp = NULL;
	int ret;

	/* Already DONE when returned (gcp_compute_mutate() then reported its error). */
	if (op->done)
		return 0;
	if (!safe_segment(op->name))
		return error_set(err, EINVAL, "operation \"%s\": invalid name", op->name);
	snprintf(path, sizeof(path), "projects/%s/%s/operations/%s/wait", c->project, op->scope,
		 op->name);
	ret = resolve_url(c, path, &url, err);
	if (ret < 0)
		return ret;
	for (;;) {
		uint64_t now = now_ms(), left;

		if (now >= deadline) {
			ret = error_set(
			    err, ETIMEDOUT, "operation %s (%s) not DONE after %llu ms", op->name,
			    op->operation_type,
			    (unsigned long long)(timeout_ms ? timeout_ms : OPERATION_TIMEOUT_MS));
			goto cleanup;
		}
		left = deadline - now;
		json_decref(resp);
		resp = NULL;
		ret = call(c, "POST", url, NULL, HTTP_IDEMPOTENT_YES,
			   left < WAIT_CALL_TIMEOUT_MS ? left : WAIT_CALL_TIMEOUT_MS, &resp, err);
		if (ret == -ETIMEDOUT && now_ms() < deadline)
			continue; /* the wait call itself ran out: ask again */
		if (ret < 0)
			goto cleanup;
		ret = gcp_operation_parse(resp, op, err);
		if (ret < 0) {
			error_prefix(err, "POST %s", url);
			goto cleanup;
		}
		if (op->done)
			break;
		/* Not done yet although the server answered: do not spin. */
		sleep_ms(pause);
		if (pause < 2000)
			pause *= 2;
	}
	ret = gcp_operation_error(resp, err);
cleanup:
	json_decref(resp);
	free(url);
	return ret;
}

/* ---- small helpers ---- */

bool gcp_fingerprint_equal(const char *a, const char *b)
{
	uint8_t *da = NULL, *db = NULL;
	size_t la, lb;
	bool eq;

	if (!a || !b)
		return a == b;
	if (base64_decode(a, strlen(a), BASE64_ANY_ALPHABET, &da, &la) < 0 ||
	    base64_decode(b, strlen(b), BASE64_ANY_ALPHABET, &db, &lb) < 0) {
		free(da);
		return strcmp(a, b) == 0;
	}
	eq = la == lb && memcmp(da, db, la) == 0;
	free(da);
	free(db);
	return eq;
}

json_t *gcp_instance_nic(const json_t *instance, const char *nic)
{
	json_t *nics = json_object_get(instance, "networkInterfaces"), *n;
	size_t i;

	if (!json_is_array(nics))
		return NULL;
	if (!nic)
		return json_is_object(json_array_get(nics, 0)) ? json_array_get(nics, 0) : NULL;
	json_array_foreach(nics, i, n)
	{
		const char *name = json_str(n, "name");

		if (name && !strcmp(name, nic))
			return n;
	}
	return NULL;
}

/* ---- instance group members (talos-gcp plan/up/down) ---- */

int gcp_compute_list_group_instances(struct gcp_compute *c, const char *zone, const char *group,
				     gcp_item_fn fn, void *arg, struct error *err)
{
	char path[512], *url = NULL, *token = NULL;
	json_t *page = NULL, *item;
	size_t i;
	int ret;

	zone = gcp_basename(zone);
	if (!safe_segment(zone) || !safe_segment(group))
		return error_set(err, EINVAL, "instance group \"%s\" in zone \"%s\": invalid name",
				 group ? group : "", zone);
	snprintf(path, sizeof(path), "projects/%s/zones/%s/instanceGroups/%s/listInstances",
		 c->project, zone, group);
	for (unsigned pages = 0;; pages++) {
		char *base = NULL;
		const char *next;
		json_t *body = json_pack("{s:s}", "instanceState", "ALL");

		if (pages >= MAX_PAGES) {
			json_decref(body);
			ret =
			    error_set(err, EBADMSG, "POST %s: more than %u pages", path, MAX_PAGES);
			goto cleanup;
		}
		ret = resolve_url(c, path, &base, err);
		if (ret == 0 && (http_url_add_query(&base, "maxResults", "500") < 0 ||
				 (token && http_url_add_query(&base, "pageToken", token) < 0)))
			ret = error_set(err, ENOMEM, "out of memory");
		free(url);
		url = base;
		json_decref(page);
		page = NULL;
		/* listInstances reads; a repeated POST is harmless. */
		if (ret == 0)
			ret = call(c, "POST", url, body, HTTP_IDEMPOTENT_YES, 0, &page, err);
		json_decref(body);
		if (ret < 0)
			goto cleanup;
		json_array_foreach(json_object_get(page, "items"), i, item)
		{
			ret = fn(arg, NULL, item);
			if (ret)
				goto cleanup;
		}
		next = json_str(page, "nextPageToken");
		if (!next || !*next)
			break;
		if (token && !strcmp(token, next)) {
			ret = error_set(err, EBADMSG, "POST %s: nextPageToken repeats itself", url);
			goto cleanup;
		}
		free(token);
		token = strdup(next);
		if (!token) {
			ret = error_set(err, ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	ret = 0;
cleanup:
	json_decref(page);
	free(token);
	free(url);
	return ret;
}

int gcp_compute_instance_action(struct gcp_compute *c, const char *zone, const char *instance,
				const char *action, struct gcp_operation *op, struct error *err)
{
	char path[512];

	zone = gcp_basename(zone);
	if (!safe_segment(zone) || !safe_segment(instance) || !action ||
	    (strcmp(action, "reset") && strcmp(action, "stop") && strcmp(action, "start")))
		return error_set(err, EINVAL, "instance \"%s\" in zone \"%s\": invalid request",
				 instance ? instance : "", zone);
	snprintf(path, sizeof(path), "projects/%s/zones/%s/instances/%s/%s", c->project, zone,
		 instance, action);
	return gcp_compute_mutate(c, "POST", path, NULL, op, err);
}
