/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compute Engine v1 client: lists that follow pages and hand over one item at a time,
 * gets, mutations that return Operations (with a requestId so that retries are
 * idempotent), waiting on operations, and Google's error bodies turned into one-line
 * messages and distinct errnos.
 *
 * Errors (every function returns 0 or one of these, with err filled):
 *   -EINVAL       400 (invalid argument, missing fingerprint, ...), bad local argument
 *   -EADDRINUSE   IP_IN_USE_BY_ANOTHER_RESOURCE (an alias range held by another instance),
 *                 from a 400 or from an operation's error
 *   -EACCES       401, 403 (not rate limiting)
 *   -ENOENT       404 / RESOURCE_NOT_FOUND
 *   -EEXIST       409 (alreadyExists) / RESOURCE_ALREADY_EXISTS
 *   -EBUSY        409 resourceInUseByAnotherResource / resourceNotReady
 *   -ESTALE       412 conditionNotMet / CONDITION_NOT_MET: stale fingerprint, re-read and retry
 *   -EDQUOT       quotaExceeded / QUOTA_EXCEEDED
 *   -EAGAIN       429, 503, 403 rateLimitExceeded / userRateLimitExceeded, after retries
 *   -ETIMEDOUT    504, request timeout, operation not DONE by the deadline
 *   -EIO          500, 502, other operation errors
 *   -EBADMSG      a response that is not the JSON expected
 *   transport errnos of http_do() (-ECONNREFUSED, -ECONNRESET, -EPROTO, ...), and the
 *   credentials' errnos (gcp/credentials.h).
 * Messages read "HTTP 412 conditionNotMet: <Google's message> (GET URL)" and
 * "operation NAME: IP_IN_USE_BY_ANOTHER_RESOURCE: <message>".
 *
 * A struct gcp_compute is not thread-safe (one HTTP connection); use one per thread
 * (gcp_compute_clone()).
 */
#ifndef TALOS_GCP_GCP_COMPUTE_H
#define TALOS_GCP_GCP_COMPUTE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/http.h"
#include "gcp/credentials.h"

#define GCP_COMPUTE_DEFAULT_ENDPOINT "https://compute.googleapis.com/compute/v1/"
#define GCP_COMPUTE_ENDPOINT_ENV     "TALOS_GCP_COMPUTE_ENDPOINT"
/* Largest page the API serves. */
#define GCP_MAX_RESULTS 500

struct gcp_compute;

struct gcp_compute_options {
	/* API root; NULL: $TALOS_GCP_COMPUTE_ENDPOINT, else GCP_COMPUTE_DEFAULT_ENDPOINT. */
	const char *endpoint;
	const char *project;           /* required */
	struct gcp_credentials *creds; /* borrowed; NULL: requests carry no Authorization */
	/* Timeouts and retries (NULL: defaults). token and retry_response are set here. */
	const struct http_options *http;
};

int gcp_compute_new(const struct gcp_compute_options *opt, struct gcp_compute **out,
		    struct error *err);
void gcp_compute_free(struct gcp_compute *c);
/*
 * Another client to the same endpoint and project, with the same credentials (shared: they
 * are thread-safe) and HTTP options, for another thread. Free it with
 * gcp_compute_clone_done(), which counts its requests in c's statistics.
 */
int gcp_compute_clone(const struct gcp_compute *c, struct gcp_compute **out, struct error *err);
void gcp_compute_clone_done(struct gcp_compute *c, struct gcp_compute *clone);
/* The API root in use, always ending in '/'. */
const char *gcp_compute_endpoint(const struct gcp_compute *c);
const char *gcp_compute_project(const struct gcp_compute *c);
/*
 * Requests made to the Compute API, its clones' included (token requests are counted by the
 * credentials).
 */
void gcp_compute_stats(const struct gcp_compute *c, struct http_stats *out);
/* The client's HTTP client (timeouts, for -v). */
const struct http_client *gcp_compute_http(const struct gcp_compute *c);

/*
 * Called once per listed item. scope is the aggregated list's key ("zones/us-central1-a",
 * "regions/...", "global"), or NULL for a plain list. item is borrowed for the call only
 * (json_incref() it to keep it). Return 0 to go on; anything else stops the listing and
 * becomes the listing's return value (use a negative errno, or a positive "found it").
 */
typedef int (*gcp_item_fn)(void *arg, const char *scope, json_t *item);

struct gcp_list_options {
	const char *filter;   /* the API's filter expression, NULL: none */
	unsigned max_results; /* page size, 0: GCP_MAX_RESULTS (the API caps it at 500) */
	/*
	 * Partial response selector sent as the "fields" parameter, e.g.
	 * "items/\*\/instances(name,zone),nextPageToken" (NULL: none). What paging needs is
	 * added when missing: nextPageToken, and for aggregated lists items/\*\/warning and
	 * unreachables. A server may ignore it (the emulator does): set projection too.
	 */
	const char *fields;
	/*
	 * NULL-terminated dotted paths of each item to keep ("name", "networkInterfaces"),
	 * applied here whatever the server sent; the callback sees the item reduced to them,
	 * as common/json_stream.h defines. NULL: whole items.
	 */
	const char *const *projection;
	/*
	 * Stop after this many pages (0: read them all); *more (if not NULL) then says whether
	 * the list went on.
	 */
	unsigned max_pages;
	bool *more;
};

/*
 * GET projects/P/aggregated/RESOURCE (e.g. "instances"), following nextPageToken, and
 * calls fn for each item of each scope. Scopes with a NO_RESULTS_ON_PAGE warning are
 * skipped; a scope with an UNREACHABLE warning, or a non-empty "unreachables", fails the
 * listing with -EIO (a partial answer would pass for a complete one). Pages are read with
 * the streaming reader (common/json_stream.h): one item is built at a time, and a page's
 * warnings are only known once it has been read, so items handed over before a failure
 * (that page's included) stay handed over; the caller drops what it collected.
 */
int gcp_compute_aggregated_list(struct gcp_compute *c, const char *resource,
				const struct gcp_list_options *opt, gcp_item_fn fn, void *arg,
				struct error *err);
/* Most connections gcp_compute_aggregated_list_parallel() opens at once. */
#define GCP_PARALLEL_MAX 32

/*
 * n aggregated lists of resource at once (opts[i]: the i-th list's filter, fields, ...), on
 * up to GCP_PARALLEL_MAX connections (clones of c, on threads of their own). fn sees every
 * item of every list, one call at a time (in no particular order across lists). The first
 * list to fail stops the others (they stop between pages) and is the return value; items
 * handed over before stay handed over, as for one list.
 */
int gcp_compute_aggregated_list_parallel(struct gcp_compute *c, const char *resource,
					 const struct gcp_list_options *opts, size_t n,
					 gcp_item_fn fn, void *arg, struct error *err);
/* gcp_compute_aggregated_list(c, "instances", ...). */
int gcp_compute_list_instances(struct gcp_compute *c, const struct gcp_list_options *opt,
			       gcp_item_fn fn, void *arg, struct error *err);
/* A plain list: path relative to the endpoint ("projects/P/regions/R/subnetworks"). */
int gcp_compute_list(struct gcp_compute *c, const char *path, const struct gcp_list_options *opt,
		     gcp_item_fn fn, void *arg, struct error *err);

/*
 * GET of a resource. path_or_url is relative to the endpoint ("projects/P/zones/Z/...") or
 * a selfLink: any URL whose path contains "/compute/v1/" is re-rooted on this client's
 * endpoint (selfLinks name www.googleapis.com even when the API is reached elsewhere).
 * *out is a new reference.
 */
int gcp_compute_get(struct gcp_compute *c, const char *path_or_url, json_t **out,
		    struct error *err);
/* zone and region may be a name, "zones/NAME" or a URL. */
int gcp_compute_get_instance(struct gcp_compute *c, const char *zone, const char *name,
			     json_t **out, struct error *err);
int gcp_compute_get_subnetwork(struct gcp_compute *c, const char *region, const char *name,
			       json_t **out, struct error *err);

/* An Operation as returned by a mutation and updated by gcp_compute_wait(). */
struct gcp_operation {
	char name[128];
	char scope[160]; /* "zones/Z", "regions/R" or "global" */
	char operation_type[64];
	char target_link[512];
	char status[16]; /* PENDING, RUNNING, DONE */
	bool done;
};

/*
 * A mutation: method (POST, PATCH, PUT, DELETE) on path (relative or selfLink) with an
 * optional JSON body; adds requestId=<UUID v4> so that a retry after a lost answer does
 * not act twice. On success *op describes the returned Operation. When that Operation is
 * already DONE with an error, the error is returned (mapped as above) with *op filled.
 */
int gcp_compute_mutate(struct gcp_compute *c, const char *method, const char *path,
		       const json_t *body, struct gcp_operation *op, struct error *err);

/*
 * PATCH projects/P/zones/Z/instances/I/updateNetworkInterface?networkInterface=NIC with
 * body (a NetworkInterface: "fingerprint" required by the API). -ESTALE on a stale
 * fingerprint, -EADDRINUSE if a range is held by another resource.
 */
int gcp_compute_update_network_interface(struct gcp_compute *c, const char *zone,
					 const char *instance, const char *nic, const json_t *body,
					 struct gcp_operation *op, struct error *err);

struct gcp_alias_range {
	const char *ip_cidr_range;         /* "10.4.1.0/24", or "/24" to let GCP pick */
	const char *subnetwork_range_name; /* "pods", or NULL: the primary range */
};

/*
 * Sets the interface's aliasIpRanges to exactly ranges[0..n) (n = 0 clears them) with
 * fingerprint (the nic's current one, as read): body {"fingerprint", "aliasIpRanges"}.
 * GCP refuses replacing a range by another in one call: clear, wait, re-read, then set.
 */
int gcp_compute_set_alias_ranges(struct gcp_compute *c, const char *zone, const char *instance,
				 const char *nic, const char *fingerprint,
				 const struct gcp_alias_range *ranges, size_t n,
				 struct gcp_operation *op, struct error *err);

/*
 * Waits for op to be DONE: POST .../operations/NAME/wait (which answers when the operation
 * is done or after a while) in a loop, until timeout_ms (0: 300 s) has passed. Then maps
 * the operation's error, if any (see the table above). 0 only when DONE without error.
 * An op that was already DONE when the mutation returned is not asked again (the mutation
 * itself returned its error).
 */
int gcp_compute_wait(struct gcp_compute *c, struct gcp_operation *op, uint64_t timeout_ms,
		     struct error *err);

/*
 * POST projects/P/zones/ZONE/instanceGroups/GROUP/listInstances (instanceState ALL),
 * following nextPageToken: fn is called with each InstanceWithNamedPorts ({"instance": URL,
 * "status", "namedPorts"}) and a NULL scope.
 */
int gcp_compute_list_group_instances(struct gcp_compute *c, const char *zone, const char *group,
				     gcp_item_fn fn, void *arg, struct error *err);

/*
 * POST projects/P/zones/Z/instances/I/ACTION, ACTION one of "reset" (a hard reset: the
 * instance stays RUNNING and its guest reboots), "stop", "start". *op as for mutations.
 */
int gcp_compute_instance_action(struct gcp_compute *c, const char *zone, const char *instance,
				const char *action, struct gcp_operation *op, struct error *err);

/* ---- helpers, exposed for callers, tests and fuzzers ---- */

/*
 * Turns an API error response into -errno and "HTTP 412 conditionNotMet: message (what)".
 * Copes with bodies that are not Google's error shape (proxies, HTML).
 */
int gcp_api_error(long status, const char *body, size_t len, const char *what, struct error *err);
/* An Operation's error (error.errors[]) as -errno and a message; 0 if it has none. */
int gcp_operation_error(const json_t *op, struct error *err);
/* Google's 403 rate limiting (reasons rateLimitExceeded, userRateLimitExceeded). */
bool gcp_is_rate_limited(long status, const char *body, size_t len);
/* Parses an Operation resource into *op. -EBADMSG if it lacks name or status. */
int gcp_operation_parse(const json_t *json, struct gcp_operation *op, struct error *err);

/*
 * Fingerprints are base64 of opaque bytes; GCP prints the standard alphabet, gcloud may
 * re-encode URL-safe: compare the decoded bytes. Text that is not base64 compares as text.
 */
bool gcp_fingerprint_equal(const char *a, const char *b);
/* A random (v4) UUID, 36 characters and a NUL. */
void gcp_request_id(char out[37]);
/* The last path segment of a URL or path ("https://.../zones/us-a" -> "us-a"). Borrowed. */
const char *gcp_basename(const char *url);
/* networkInterfaces[] entry whose name is nic (NULL: the first), or NULL. Borrowed. */
json_t *gcp_instance_nic(const json_t *instance, const char *nic);

#endif
