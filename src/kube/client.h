/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kubernetes API client: list (pages of `limit` followed through `continue`, one item at a
 * time), get, create, patch (strategic-merge, merge, JSON patch), delete with
 * preconditions, and watch. Paths are API paths: "/api/v1/nodes", "/api/v1/nodes/NAME",
 * "/apis/apps/v1/namespaces/kube-system/deployments".
 *
 * Errors (0 or one of these, err holding the Status message and the request):
 *   -EINVAL       400 BadRequest, 422 Invalid (the message carries the causes, e.g.
 *                 "spec.podCIDR: Forbidden: node updates may not change podCIDR ...")
 *   -EACCES       401 Unauthorized (after one token re-read), 403 Forbidden
 *   -ENOENT       404 NotFound
 *   -EEXIST       409 AlreadyExists (create)
 *   -ESTALE       409 Conflict: resourceVersion or uid precondition not met: re-read
 *   -EKEYEXPIRED  410 Gone / Expired: a continue token or watch resourceVersion too old:
 *                 list again from the start
 *   -EOPNOTSUPP   405, 415 (e.g. a patch type the resource does not take)
 *   -EAGAIN       429, 503 after retries;  -ETIMEDOUT 504 or timeouts;  -EIO other 5xx
 *   -EBADMSG      a response that is not the JSON expected
 *   and the transport errnos of http_do() (-ECONNREFUSED, -EPROTO for TLS failures, ...).
 *
 * Not thread-safe (one HTTP connection): one client per thread.
 */
#ifndef TALOS_GCP_KUBE_CLIENT_H
#define TALOS_GCP_KUBE_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>

#include "common/error.h"
#include "common/http.h"
#include "kube/kubeconfig.h"

#define KUBE_DEFAULT_LIMIT 500
/*
 * kube_list_options.limit: one request without limit, as the API server serves a whole
 * list, its body parsed as it arrives (the fewest round trips; nothing kept but the fields
 * asked for). A continue token in the answer is still followed.
 */
#define KUBE_LIST_ALL UINT_MAX

struct kube_client;

/*
 * cfg is copied (the caller may free it). http: timeouts and retries (NULL: defaults); its
 * tls, token and retry fields are ignored (they come from cfg).
 */
int kube_client_new(const struct kube_config *cfg, const struct http_options *http,
		    struct kube_client **out, struct error *err);
void kube_client_free(struct kube_client *c);
const char *kube_client_server(const struct kube_client *c);
void kube_client_stats(const struct kube_client *c, struct http_stats *out);
/* The client's HTTP client (timeouts, for -v). */
const struct http_client *kube_client_http(const struct kube_client *c);

/*
 * Any request: method on path (which may carry a query), optional JSON body sent with
 * content_type (NULL: application/json). On 2xx, *out (if not NULL) gets the parsed
 * response (a new reference; JSON null for an empty body). Errors as above.
 */
int kube_request(struct kube_client *c, const char *method, const char *path,
		 const char *content_type, const json_t *body, json_t **out, struct error *err);

/* Called once per listed item (borrowed for the call). 0: go on; else stop and return it. */
typedef int (*kube_item_fn)(void *arg, json_t *item);

struct kube_list_options {
	const char *label_selector;   /* "k=v,k2 in (a,b)", NULL: none */
	const char *field_selector;   /* "metadata.name=n1", NULL: none */
	unsigned limit;               /* page size, 0: KUBE_DEFAULT_LIMIT; KUBE_LIST_ALL */
	const char *resource_version; /* NULL: most recent */
	/*
	 * NULL-terminated dotted paths of each item to keep ("metadata.name", "spec.podCIDR";
	 * a path keeps its whole subtree); the callback sees the item reduced to them, as
	 * common/json_stream.h defines. NULL: whole items.
	 */
	const char *const *fields;
};

/*
 * Lists path page by page and calls fn for each item. resource_version (if not NULL,
 * rv_len bytes) receives the list's metadata.resourceVersion, the point to watch from.
 * Pages are read with the streaming reader (common/json_stream.h): one item is built at a
 * time, and with opt->fields only those fields are. Items already handed over stay handed
 * over when a later page, or the rest of the same page, fails: a continue token that
 * expired mid-list is -EKEYEXPIRED (the caller restarts); a malformed page is -EBADMSG.
 */
int kube_list(struct kube_client *c, const char *path, const struct kube_list_options *opt,
	      kube_item_fn fn, void *arg, char *resource_version, size_t rv_len, struct error *err);

int kube_get(struct kube_client *c, const char *path, json_t **out, struct error *err);
/* POST obj to a collection path. *out (if not NULL): the created object. */
int kube_create(struct kube_client *c, const char *path, const json_t *obj, json_t **out,
		struct error *err);

enum kube_patch_type {
	KUBE_PATCH_STRATEGIC = 0, /* application/strategic-merge-patch+json (kubectl's default) */
	KUBE_PATCH_MERGE,         /* application/merge-patch+json (RFC 7386) */
	KUBE_PATCH_JSON,          /* application/json-patch+json (RFC 6902): patch is an array */
};
int kube_patch(struct kube_client *c, const char *path, enum kube_patch_type type,
	       const json_t *patch, json_t **out, struct error *err);

struct kube_delete_options {
	const char *uid;                /* precondition: delete only this incarnation */
	const char *resource_version;   /* precondition: delete only this version */
	const char *propagation_policy; /* "Foreground", "Background", "Orphan", NULL: server's */
	long grace_period_seconds; /* < 0: the server's default (pass -1 with designated inits) */
	bool set_grace_period;     /* grace_period_seconds is meaningful */
};
/* DELETE path with a DeleteOptions body. -ESTALE when a precondition does not hold. */
int kube_delete(struct kube_client *c, const char *path, const struct kube_delete_options *opt,
		struct error *err);

/*
 * POST /api/v1/namespaces/NS/pods/NAME/eviction (a policy/v1 Eviction): the API server
 * deletes the pod unless a PodDisruptionBudget forbids it, which is -EAGAIN (429, after the
 * client's retries: try again later, as kubectl drain does every 5 s); -ENOENT when the pod
 * is gone already.
 */
int kube_evict(struct kube_client *c, const char *ns, const char *name, struct error *err);

/* One watch event: type ADDED, MODIFIED, DELETED, BOOKMARK; object borrowed. 0: go on. */
typedef int (*kube_event_fn)(void *arg, const char *type, json_t *object);

struct kube_watch_options {
	const char *label_selector;
	const char *field_selector;
	const char
	    *resource_version;    /* from kube_list(); NULL: "start now" semantics of the server */
	unsigned timeout_seconds; /* server-side end of the stream, 0: 300 */
	bool allow_bookmarks;
};

/*
 * GET path?watch=true... and calls fn for each event until the server ends the stream
 * (returns 0), fn returns non-zero (returned), or an error. An ERROR event carrying a 410
 * Status is -EKEYEXPIRED (list again). Never retried once events have been delivered.
 */
int kube_watch(struct kube_client *c, const char *path, const struct kube_watch_options *opt,
	       kube_event_fn fn, void *arg, struct error *err);

/*
 * A Status (or any) error response as -errno and "message (CODE Reason; what)". Exposed for
 * tests and the fuzzer.
 */
int kube_status_error(long status, const char *body, size_t len, const char *what,
		      struct error *err);

#endif
