/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Eviction subresource: POST /api/v1/namespaces/NS/pods/NAME/eviction with a
 * policy/v1 (or v1beta1) Eviction {"metadata": {"name"}, "deleteOptions": {...}}, as the API
 * server's EvictionREST answers it (kubernetes pkg/registry/core/pod/storage/eviction.go):
 *
 *   - the name in the body must be the URL's (400), the pod must exist (404);
 *   - a pod that is Succeeded, Failed or Pending, or already being deleted, is deleted
 *     without looking at budgets (canIgnorePDB);
 *   - the PodDisruptionBudgets of the pod's namespace whose selector matches it: more than
 *     one is 500 "This pod has more than one PodDisruptionBudget, which the eviction
 *     subresource does not support."; none: the pod is deleted;
 *   - one: a pod that is not Ready is deleted without using the budget when the budget is
 *     met (currentHealthy >= desiredHealthy > 0) or its unhealthyPodEvictionPolicy is
 *     AlwaysAllow; otherwise checkAndDecrement: a budget not yet processed
 *     (status.observedGeneration < metadata.generation) is 429 with a DisruptionBudget cause
 *     "The disruption budget NAME is still being processed by the server." and Retry-After
 *     10; disruptionsAllowed < 0 or more than 2000 disruptedPods is 403; 0 is 429 "Cannot
 *     evict pod as it would violate the pod's disruption budget." with the cause "The
 *     disruption budget NAME needs D healthy pods and has C currently"; else the budget's
 *     status is written first (disruptionsAllowed - 1, the pod in disruptedPods) and then
 *     the pod is deleted;
 *   - success is 201 with a Status "Success". dryRun=All (query or deleteOptions) decides
 *     without writing.
 *
 * PodDisruptionBudget selectors follow the policy/v1 API reference: "A null selector will
 * match no pods, while an empty ({}) selector will select all pods within the namespace."
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "emu/kube/kube.h"

#define MAX_DISRUPTED_PODS 2000 /* MaxDisruptedPodSize */
#define BUDGET_MESSAGE     "Cannot evict pod as it would violate the pod's disruption budget."

/* "/api/v1/namespaces/NS/pods/NAME/eviction" -> ns, name. */
static bool eviction_path(const char *path, char *ns, size_t ns_len, char *name, size_t name_len)
{
	static const char head[] = "/api/v1/namespaces/";
	const char *p = path, *slash;
	size_t n;

	if (strncmp(p, head, sizeof(head) - 1))
		return false;
	p += sizeof(head) - 1;
	slash = strchr(p, '/');
	if (!slash || slash == p || (size_t)(slash - p) >= ns_len || strncmp(slash, "/pods/", 6))
		return false;
	memcpy(ns, p, (size_t)(slash - p));
	ns[slash - p] = '\0';
	p = slash + 6;
	slash = strchr(p, '/');
	if (!slash || slash == p || strcmp(slash, "/eviction"))
		return false;
	n = (size_t)(slash - p);
	if (n >= name_len)
		return false;
	memcpy(name, p, n);
	name[n] = '\0';
	return true;
}

/* A Status as the API server writes it; causes (stolen) may be NULL. */
static int reply(struct emu_request *req, unsigned code, const char *reason, const char *message,
		 json_t *causes, int retry_after)
{
	json_t *st = json_pack("{s:s, s:s, s:{}, s:s}", "kind", "Status", "apiVersion", "v1",
			       "metadata", "status", code < 300 ? "Success" : "Failure");
	char *text;
	int ret;

	if (message)
		json_object_set_new(st, "message", json_string(message));
	if (reason)
		json_object_set_new(st, "reason", json_string(reason));
	if (causes || retry_after) {
		json_t *d = json_object();

		if (causes)
			json_object_set_new(d, "causes", causes);
		if (retry_after) {
			char ra[16];

			json_object_set_new(d, "retryAfterSeconds", json_integer(retry_after));
			snprintf(ra, sizeof(ra), "%d", retry_after);
			emu_reply_header(req, "Retry-After", ra);
		}
		json_object_set_new(st, "details", d);
	}
	json_object_set_new(st, "code", json_integer(code));
	text = json_dumps(st, JSON_COMPACT);
	json_decref(st);
	if (!text)
		return emu_reply(req, 500, "text/plain", "out of memory\n", 14);
	ret = emu_reply(req, code, "application/json", text, strlen(text));
	free(text);
	return ret;
}

static int reply_kerr(struct emu_request *req, struct kube_err *e)
{
	int ret = kube_reply_status(req, e);

	kube_err_clear(e);
	return ret;
}

static json_t *budget_cause(const char *msg)
{
	return json_pack("[{s:s, s:s}]", "reason", "DisruptionBudget", "message", msg);
}

static bool terminal_or_pending(const json_t *pod)
{
	const char *phase = kj_str(pod, "status.phase") ?: "";

	return !strcmp(phase, "Succeeded") || !strcmp(phase, "Failed") || !strcmp(phase, "Pending");
}

/* Deletes the pod with the eviction's options; rv: add a resourceVersion precondition. */
static int delete_pod(struct emu_kube *k, struct emu_request *req, const char *ns, const char *name,
		      const json_t *opts, const char *rv, bool dry)
{
	struct kube_res *pods = kube_res_find(k, "", "v1", "pods");
	json_t *o = json_is_object(opts) ? json_deep_copy(opts) : json_object();
	struct kube_err e = {0};
	bool deleted;

	if (rv && !kj_str(o, "preconditions.resourceVersion"))
		json_object_set_new(kj_obj(o, "preconditions"), "resourceVersion", json_string(rv));
	json_object_del(o, "dryRun");
	if (kube_delete(k, pods, ns, name, o, dry ? KWF_DRY_RUN : 0, &e, NULL, &deleted) < 0) {
		json_decref(o);
		return reply_kerr(req, &e);
	}
	json_decref(o);
	log_info("kube: pod %s/%s evicted%s", ns, name, dry ? " (dry run)" : "");
	return reply(req, 201, NULL, NULL, NULL, 0);
}

int kube_eviction_handle(struct emu_kube *k, struct emu_request *req)
{
	struct kube_res *pods = kube_res_find(k, "", "v1", "pods");
	struct kube_res *pdbs = kube_res_find(k, "policy", "v1", "poddisruptionbudgets");
	char ns[256], name[300], prefix[300];
	const char *av, *kind, *bname;
	const char *qdry = emu_request_query(req, "dryRun");
	json_t *body = NULL, *opts, *pdb_obj, *status, *dp, *odry;
	struct kobj *pod, *pdb = NULL;
	struct kube_err e = {0};
	size_t matched = 0;
	bool dry;
	int ret;

	if (!eviction_path(req->path, ns, sizeof(ns), name, sizeof(name)))
		return 0;
	if (strcmp(req->method, "POST") != 0) {
		reply(req, 405, "MethodNotAllowed",
		      "the server does not allow this method on the requested resource", NULL, 0);
		return 1;
	}
	/* JSON, YAML or protobuf (client-go's typed clients), as every body (rest.c) */
	body = req->body_len ? kube_parse_body(req, &e) : NULL;
	if (!body && e.code) {
		reply_kerr(req, &e);
		return 1;
	}
	if (!json_is_object(body)) {
		reply(req, 400, "BadRequest",
		      req->body_len
			  ? "the object provided is unrecognized (must be of type Eviction)"
			  : "the request body is empty",
		      NULL, 0);
		goto done;
	}
	av = kj_str(body, "apiVersion");
	kind = kj_str(body, "kind");
	if ((kind && strcmp(kind, "Eviction")) ||
	    (av && strcmp(av, "policy/v1") && strcmp(av, "policy/v1beta1"))) {
		reply(req, 400, "BadRequest", "not a Eviction object", NULL, 0);
		goto done;
	}
	bname = kj_str(body, "metadata.name");
	if (!bname || strcmp(bname, name)) {
		reply(req, 400, "BadRequest", "name in URL does not match name in Eviction object",
		      NULL, 0);
		goto done;
	}
	opts = json_object_get(body, "deleteOptions");
	odry = kj_path(opts, "dryRun");
	dry = (qdry && !strcmp(qdry, "All")) ||
	      (json_is_array(odry) && json_array_size(odry) &&
	       !strcmp(json_string_value(json_array_get(odry, 0)) ?: "", "All"));
	pod = kube_get(pods, ns, name);
	if (!pod) {
		kube_err_not_found(&e, pods, name);
		reply_kerr(req, &e);
		goto done;
	}
	if (terminal_or_pending(pod->obj) || kj_str(pod->obj, "metadata.deletionTimestamp")) {
		delete_pod(k, req, ns, name, opts, NULL, dry);
		goto done;
	}
	/* The budgets of the namespace that select this pod. */
	snprintf(prefix, sizeof(prefix), "%s/", ns);
	for (size_t i = kube_lower_bound(pdbs, prefix); i < pdbs->len; i++) {
		struct kobj *b = pdbs->items[i].obj;

		if (strncmp(pdbs->items[i].key, prefix, strlen(prefix)))
			break;
		if (kube_label_selector_json_match(kj_path(b->obj, "spec.selector"),
						   kj_path(pod->obj, "metadata.labels"))) {
			pdb = b;
			matched++;
		}
	}
	if (matched > 1) {
		reply(
		    req, 500, NULL,
		    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
		    NULL, 0);
		goto done;
	}
	if (!pdb) {
		delete_pod(k, req, ns, name, opts, kj_str(pod->obj, "metadata.resourceVersion"),
			   dry);
		goto done;
	}
	status = json_object_get(pdb->obj, "status");
	if (!kube_pod_ready(pod->obj)) {
		json_int_t cur = json_integer_value(json_object_get(status, "currentHealthy"));
		json_int_t des = json_integer_value(json_object_get(status, "desiredHealthy"));
		const char *policy = kj_str(pdb->obj, "spec.unhealthyPodEvictionPolicy");

		if ((policy && !strcmp(policy, "AlwaysAllow")) || (cur >= des && des > 0)) {
			delete_pod(k, req, ns, name, opts,
				   kj_str(pod->obj, "metadata.resourceVersion"), dry);
			goto done;
		}
	}
	/* checkAndDecrement */
	if (json_integer_value(json_object_get(status, "observedGeneration")) <
	    json_integer_value(kj_path(pdb->obj, "metadata.generation"))) {
		char msg[400];

		snprintf(msg, sizeof(msg),
			 "The disruption budget %s is still being processed by the server.",
			 kobj_name(pdb));
		reply(req, 429, "TooManyRequests", BUDGET_MESSAGE, budget_cause(msg), 10);
		goto done;
	}
	if (json_integer_value(json_object_get(status, "disruptionsAllowed")) < 0 ||
	    json_object_size(json_object_get(status, "disruptedPods")) > MAX_DISRUPTED_PODS) {
		char msg[600];

		snprintf(
		    msg, sizeof(msg), "poddisruptionbudgets.policy \"%s\" is forbidden: %s",
		    kobj_name(pdb),
		    json_integer_value(json_object_get(status, "disruptionsAllowed")) < 0
			? "pdb disruptions allowed is negative"
			: "DisruptedPods map too big - too many evictions not confirmed by PDB controller");
		reply(req, 403, "Forbidden", msg, NULL, 0);
		goto done;
	}
	if (json_integer_value(json_object_get(status, "disruptionsAllowed")) == 0) {
		char msg[400];

		snprintf(msg, sizeof(msg),
			 "The disruption budget %s needs %lld healthy pods and has %lld currently",
			 kobj_name(pdb),
			 (long long)json_integer_value(json_object_get(status, "desiredHealthy")),
			 (long long)json_integer_value(json_object_get(status, "currentHealthy")));
		reply(req, 429, "TooManyRequests", BUDGET_MESSAGE, budget_cause(msg), 0);
		goto done;
	}
	if (!dry) {
		char now[40];

		pdb_obj = json_deep_copy(pdb->obj);
		status = kj_obj(pdb_obj, "status");
		json_object_set_new(
		    status, "disruptionsAllowed",
		    json_integer(json_integer_value(json_object_get(status, "disruptionsAllowed")) -
				 1));
		if (json_integer_value(json_object_get(status, "disruptionsAllowed")) == 0) {
			json_t *c;
			size_t i;

			/* UpdateDisruptionAllowedCondition */
			json_array_foreach(json_object_get(status, "conditions"), i, c)
			{
				if (strcmp(kj_str(c, "type") ?: "", "DisruptionAllowed"))
					continue;
				json_object_set_new(c, "status", json_string("False"));
				json_object_set_new(c, "reason", json_string("InsufficientPods"));
				json_object_set_new(c, "lastTransitionTime", kj_now());
			}
		}
		dp = kj_obj(status, "disruptedPods");
		json_object_set_new(dp, name, json_string(emu_rfc3339(now, sizeof(now))));
		ret = kube_update(k, pdbs, ns, kobj_name(pdb), pdb_obj, KW_STATUS, 0, &e, NULL);
		if (ret < 0) {
			reply_kerr(req, &e);
			goto done;
		}
	}
	delete_pod(k, req, ns, name, opts, NULL, dry);
done:
	json_decref(body);
	return 1;
}
