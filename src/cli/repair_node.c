/* SPDX-License-Identifier: Apache-2.0 */
/*
 * repair --strategy node, as a real cluster needs it. A kubelet registers its Node only when
 * it starts (kubernetes/kubernetes#71398), and the pod garbage collector deletes every pod
 * bound to a Node that no longer exists, so for each misaligned Node, one at a time:
 *
 *   1. the control-plane guard: no other control-plane Node may be NotReady, and a quorum
 *      of them must stay Ready (etcd runs on them);
 *   2. cordon (spec.unschedulable);
 *   3. drain through the Eviction API, as kubectl drain does: mirror pods and DaemonSet pods
 *      stay (the kubelet and the DaemonSet controller own them), pods without a controller
 *      are refused unless --force (nothing would bring them back), a 429 (a
 *      PodDisruptionBudget says no) is retried every 5 s until --drain-timeout; then wait
 *      until the evicted pods are gone. A drain that times out uncordons the Node again;
 *   4. delete the Node with uid and resourceVersion preconditions (only what we drained);
 *   5. reset the instance (instances.reset, Operation waited on): its kubelet starts and
 *      registers the Node again, and the CloudAllocator copies nic0's first alias range;
 *   6. wait until the Node is back (new uid), Ready, with the alias as its podCIDR;
 *   7. uncordon it if it came back unschedulable.
 * Each step is journaled (cordon, delete-node, reset, uncordon), so a killed repair is
 * finished by the next one: a deleted Node's instance is reset; a Node only cordoned is
 * uncordoned.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/repair.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"

#define CP_LABEL       "node-role.kubernetes.io/control-plane"
#define EVICT_RETRY_MS 5000 /* kubectl drain: "will retry after 5s" */
#define POLL_MS        250

static bool condition_true(const json_t *obj, const char *type)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_path(obj, "status.conditions"), i, c)
	{
		if (!strcmp(json_str(c, "type") ?: "", type))
			return !strcmp(json_str(c, "status") ?: "", "True");
	}
	return false;
}

static int node_path(char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, "/api/v1/nodes/%s", name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- the control-plane guard ---- */

struct cp_list {
	json_t *ready; /* name -> true/false */
};

static int on_cp(void *arg, json_t *item)
{
	struct cp_list *l = arg;
	const char *name = json_path_str(item, "metadata.name");

	if (name)
		json_object_set_new(l->ready, name, json_boolean(condition_true(item, "Ready")));
	return 0;
}

int quorum_check(struct repair *r, const char *name, char *why, size_t why_len, struct error *err)
{
	static const char *const fields[] = {"metadata.name", "status.conditions", NULL};
	struct kube_list_options opt = {
	    .label_selector = CP_LABEL, .limit = KUBE_DEFAULT_LIMIT, .fields = fields};
	struct cp_list l = {.ready = json_object()};
	size_t total, ready = 0, others_ready = 0, quorum;
	const char *not_ready = NULL, *key;
	json_t *v;
	int ret;

	ret = kube_list(r->s.kube, "/api/v1/nodes", &opt, on_cp, &l, NULL, 0, err);
	if (ret < 0) {
		json_decref(l.ready);
		return error_prefix(err, "listing the control-plane Nodes");
	}
	if (!json_object_get(l.ready, name)) {
		json_decref(l.ready);
		return 0; /* a worker */
	}
	total = json_object_size(l.ready);
	json_object_foreach(l.ready, key, v)
	{
		ready += json_is_true(v);
		if (!strcmp(key, name))
			continue;
		if (json_is_true(v))
			others_ready++;
		else if (!not_ready)
			not_ready = key;
	}
	quorum = total / 2 + 1;
	ret = 0;
	if (not_ready) {
		snprintf(why, why_len,
			 "refusing to take down control-plane Node %s: control-plane Node %s is "
			 "not Ready (%zu of %zu control-plane Nodes Ready)",
			 name, not_ready, ready, total);
		ret = 1;
	} else if (others_ready < quorum) {
		snprintf(why, why_len,
			 "refusing to take down control-plane Node %s: %zu of %zu control-plane "
			 "Nodes would stay Ready, fewer than a quorum of %zu",
			 name, others_ready, total, quorum);
		ret = 1;
	}
	json_decref(l.ready);
	return ret;
}

/* ---- the pods of a Node ---- */

struct pod_scan {
	json_t *evict;     /* [{"namespace", "name", "uid"}] */
	json_t *unmanaged; /* ["ns/name"] */
	size_t kept;       /* mirror and DaemonSet pods */
	bool force;
};

static const json_t *controller_of(const json_t *pod)
{
	json_t *ref;
	size_t i;

	json_array_foreach(json_path(pod, "metadata.ownerReferences"), i, ref)
	{
		if (json_is_true(json_object_get(ref, "controller")))
			return ref;
	}
	return NULL;
}

static int on_pod(void *arg, json_t *pod)
{
	struct pod_scan *s = arg;
	const char *ns = json_path_str(pod, "metadata.namespace"),
		   *name = json_path_str(pod, "metadata.name");
	const char *phase = json_path_str(pod, "status.phase") ?: "";
	const json_t *ctl = controller_of(pod);
	char key[600];

	if (!ns || !name)
		return 0;
	/* kubectl drain's filters (k8s.io/kubectl/pkg/drain/filters.go). */
	if (json_object_get(json_path(pod, "metadata.annotations"),
			    "kubernetes.io/config.mirror") ||
	    (ctl && !strcmp(json_str(ctl, "kind") ?: "", "DaemonSet"))) {
		s->kept++;
		return 0;
	}
	if (!ctl && strcmp(phase, "Succeeded") && strcmp(phase, "Failed") && !s->force) {
		snprintf(key, sizeof(key), "%s/%s", ns, name);
		json_array_append_new(s->unmanaged, json_string(key));
		return 0;
	}
	json_array_append_new(s->evict, json_pack("{s:s, s:s, s:s}", "namespace", ns, "name", name,
						  "uid", json_path_str(pod, "metadata.uid") ?: ""));
	return 0;
}

static int scan_pods(struct repair *r, const char *node, struct pod_scan *s, struct error *err)
{
	static const char *const fields[] = {"metadata.name",
					     "metadata.namespace",
					     "metadata.uid",
					     "metadata.annotations",
					     "metadata.ownerReferences",
					     "status.phase",
					     NULL};
	char sel[400];
	struct kube_list_options opt = {
	    .field_selector = sel, .limit = KUBE_DEFAULT_LIMIT, .fields = fields};
	int ret;

	snprintf(sel, sizeof(sel), "spec.nodeName=%s", node);
	s->evict = json_array();
	s->unmanaged = json_array();
	s->kept = 0;
	s->force = r->force;
	ret = kube_list(r->s.kube, "/api/v1/pods", &opt, on_pod, s, NULL, 0, err);
	if (ret < 0)
		error_prefix(err, "listing the pods of Node %s", node);
	return ret;
}

static void scan_free(struct pod_scan *s)
{
	json_decref(s->evict);
	json_decref(s->unmanaged);
	s->evict = s->unmanaged = NULL;
}

/* ---- planning ---- */

static int refuse(struct node_plan *p, size_t node, const char *why)
{
	struct repair_refusal *r = realloc(p->refusals, (p->n_refusals + 1) * sizeof(*r));

	if (!r)
		return -ENOMEM;
	p->refusals = r;
	r[p->n_refusals].node = node;
	snprintf(r[p->n_refusals].reason, sizeof(r->reason), "%s", why);
	p->n_refusals++;
	return 0;
}

int node_plan_build(struct repair *r, const struct cluster_view *view, const struct alignment *a,
		    struct node_plan *p, struct error *err)
{
	char why[sizeof(((struct repair_refusal *)0)->reason)];
	int ret = 0;

	memset(p, 0, sizeof(*p));
	p->nodes = calloc(a->n_rows + 1, sizeof(*p->nodes));
	if (!p->nodes)
		return -ENOMEM;
	for (size_t i = 0; i < a->n_rows && ret == 0; i++) {
		const struct align_row *row = &a->rows[i];
		const struct view_node *n = &view->nodes[row->node];
		struct pod_scan s = {0};

		switch (row->status) {
		case ALIGN_OK:
			break;
		case ALIGN_MISMATCH:
			if (!n->pod_cidr_valid || !view->instances[row->instance].aliases_valid) {
				ret = refuse(p, row->node, row->reason);
				break;
			}
			ret = quorum_check(r, n->name, why, sizeof(why), err);
			if (ret < 0)
				break;
			if (ret > 0) {
				ret = refuse(p, row->node, why);
				break;
			}
			ret = scan_pods(r, n->name, &s, err);
			if (ret == 0 && json_array_size(s.unmanaged)) {
				char *list = json_dumps(s.unmanaged, JSON_COMPACT);

				snprintf(why, sizeof(why),
					 "pods without a controller would be lost for good: %s "
					 "(kubectl drain refuses them too; move or delete them, or "
					 "pass --force)",
					 list ? list : "?");
				free(list);
				ret = refuse(p, row->node, why);
			} else if (ret == 0) {
				p->nodes[p->n++] = row->node;
			}
			scan_free(&s);
			break;
		case ALIGN_NO_ALIAS:
			ret = refuse(
			    p, row->node,
			    "the instance has no alias range: a re-registered Node would get no podCIDR (CIDRNotAvailable); use --strategy gcp");
			break;
		case ALIGN_NO_PODCIDR:
			ret = refuse(
			    p, row->node,
			    "the Node has no podCIDR yet: the CCM assigns one; nothing to delete");
			break;
		default:
			snprintf(why, sizeof(why), "%s: %s", align_status_name(row->status),
				 row->reason);
			ret = refuse(p, row->node, why);
			break;
		}
	}
	return ret;
}

void node_plan_free(struct node_plan *p)
{
	free(p->nodes);
	free(p->refusals);
	memset(p, 0, sizeof(*p));
}

/* ---- the steps ---- */

static int set_unschedulable(struct repair *r, const char *name, bool on, struct error *err)
{
	json_t *patch = json_pack("{s:{s:b}}", "spec", "unschedulable", on);
	char path[512];
	int ret = node_path(path, sizeof(path), name);

	if (ret == 0)
		ret = kube_patch(r->s.kube, path, KUBE_PATCH_STRATEGIC, patch, NULL, err);
	json_decref(patch);
	return ret;
}

static bool pod_gone(struct repair *r, const json_t *pod, struct error *err)
{
	char path[700];
	json_t *cur = NULL;
	bool gone;
	int ret;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", json_str(pod, "namespace"),
		 json_str(pod, "name"));
	ret = kube_get(r->s.kube, path, &cur, err);
	if (ret == -ENOENT)
		return true;
	/* Another pod of the same name (a StatefulSet's) is a new one: ours is gone. */
	gone = ret == 0 &&
	       strcmp(json_path_str(cur, "metadata.uid") ?: "", json_str(pod, "uid") ?: "");
	json_decref(cur);
	return gone;
}

/* Evicts every pod of the scan, honouring disruption budgets, and waits until they are gone. */
static int drain(struct repair *r, const char *node, struct pod_scan *s, struct error *err)
{
	uint64_t deadline = now_ms() + r->drain_ms;
	json_t *todo = json_deep_copy(s->evict), *pod;
	char last[2 * ERROR_MSG_MAX] = "";
	size_t i;
	int ret = 0;

	/* Evict; a 429 (a PodDisruptionBudget forbids it now) is tried again later. */
	while (json_array_size(todo)) {
		json_t *again = json_array();

		json_array_foreach(todo, i, pod)
		{
			struct error e = {0};

			ret = kube_evict(r->s.kube, json_str(pod, "namespace"),
					 json_str(pod, "name"), &e);
			if (ret == 0 || ret == -ENOENT) {
				log_info("Node %s: pod %s/%s evicted", node,
					 json_str(pod, "namespace"), json_str(pod, "name"));
				continue;
			}
			if (ret != -EAGAIN) {
				json_decref(again);
				json_decref(todo);
				return error_set(err, -ret, "Node %s: evicting pod %s/%s: %s", node,
						 json_str(pod, "namespace"), json_str(pod, "name"),
						 e.msg);
			}
			snprintf(last, sizeof(last), "%.200s/%.200s: %s",
				 json_str(pod, "namespace"), json_str(pod, "name"), e.msg);
			json_array_append(again, pod);
		}
		json_decref(todo);
		todo = again;
		if (!json_array_size(todo))
			break;
		if (now_ms() + EVICT_RETRY_MS > deadline) {
			json_decref(todo);
			return error_set(err, ETIMEDOUT,
					 "draining Node %s: not done within --drain-timeout; %s",
					 node, last);
		}
		log_warn("Node %s: %s (will retry after %ds)", node, last, EVICT_RETRY_MS / 1000);
		sleep_ms(EVICT_RETRY_MS);
	}
	json_decref(todo);
	/* Then wait until the evicted pods are gone (graceful termination). */
	json_array_foreach(s->evict, i, pod)
	{
		while (!pod_gone(r, pod, err)) {
			if (now_ms() > deadline)
				return error_set(err, ETIMEDOUT,
						 "draining Node %s: pod %s/%s still there after "
						 "--drain-timeout",
						 node, json_str(pod, "namespace"),
						 json_str(pod, "name"));
			sleep_ms(POLL_MS);
		}
	}
	return 0;
}

/* Deletes exactly the incarnation we drained: uid and resourceVersion preconditions. */
static int delete_node(struct repair *r, const char *name, const char *uid, struct error *err)
{
	char path[512];
	int ret = node_path(path, sizeof(path), name);

	for (int attempt = 0; ret == 0 && attempt < 5; attempt++) {
		json_t *n = NULL;
		struct kube_delete_options opt = {.uid = uid};

		ret = kube_get(r->s.kube, path, &n, err);
		if (ret == -ENOENT)
			return 0; /* gone already */
		if (ret < 0)
			return ret;
		if (strcmp(json_path_str(n, "metadata.uid") ?: "", uid)) {
			json_decref(n);
			return 0; /* another incarnation: ours is gone */
		}
		opt.resource_version = json_path_str(n, "metadata.resourceVersion");
		ret = kube_delete(r->s.kube, path, &opt, err);
		json_decref(n);
		/* The kubelet or a controller wrote the Node since we read it: read again. */
		if (ret == -ESTALE) {
			ret = 0;
			continue;
		}
		return ret;
	}
	return ret < 0 ? ret : error_set(err, ESTALE, "Node %s kept changing; not deleted", name);
}

int reset_instance(struct repair *r, const char *zone, const char *name, struct error *err)
{
	struct gcp_operation op;
	int ret = gcp_compute_instance_action(r->s.compute, zone, name, "reset", &op, err);

	if (ret == 0)
		ret = gcp_compute_wait(r->s.compute, &op, r->wait_ms, err);
	if (ret == 0)
		log_info("instance %s (%s): reset", name, zone);
	return ret;
}

/* The alias the CloudAllocator will copy: nic0's first range now. */
static int current_alias(struct repair *r, const char *zone, const char *name, char *out,
			 size_t len, struct error *err)
{
	json_t *inst = NULL, *nic;
	int ret = gcp_compute_get_instance(r->s.compute, zone, name, &inst, err);

	if (ret < 0)
		return ret;
	nic = gcp_instance_nic(inst, NULL);
	snprintf(out, len, "%s",
		 json_str(json_array_get(json_object_get(nic, "aliasIpRanges"), 0), "ipCidrRange")
		     ?: "");
	json_decref(inst);
	return 0;
}

/*
 * Waits until Node name exists, is Ready, and (each when given) has another uid than
 * old_uid, another boot than old_boot, podCIDR want_pod. *unschedulable: as it came back.
 */
static int wait_node(struct repair *r, const char *name, const char *old_uid, const char *old_boot,
		     const char *want_pod, bool *unschedulable, struct error *err)
{
	uint64_t deadline = now_ms() + r->wait_ms;
	char path[512];
	int ret = node_path(path, sizeof(path), name);

	while (ret == 0) {
		json_t *n = NULL;

		ret = kube_get(r->s.kube, path, &n, err);
		if (ret == 0) {
			const char *uid = json_path_str(n, "metadata.uid") ?: "";
			const char *boot = json_path_str(n, "status.nodeInfo.bootID") ?: "";
			const char *pod = json_path_str(n, "spec.podCIDR") ?: "";
			bool back = (!old_uid || strcmp(uid, old_uid)) &&
				    (!old_boot || strcmp(boot, old_boot)) &&
				    condition_true(n, "Ready") &&
				    (!want_pod || !strcmp(pod, want_pod));

			if (unschedulable)
				*unschedulable = json_is_true(json_path(n, "spec.unschedulable"));
			json_decref(n);
			if (back)
				return 0;
		} else if (ret != -ENOENT) {
			return ret;
		}
		if (now_ms() > deadline)
			return error_set(
			    err, ETIMEDOUT,
			    "Node %s did not come back Ready%s%s within --wait-timeout", name,
			    want_pod ? " with podCIDR " : "", want_pod ? want_pod : "");
		ret = 0;
		sleep_ms(POLL_MS);
	}
	return ret;
}

static json_t *step(const char *action, const char *node, const char *uid, const char *zone,
		    const char *instance)
{
	return json_pack("{s:s, s:s, s:s?, s:s?, s:s?}", "action", action, "node", node, "nodeUid",
			 uid, "zone", zone, "instance", instance);
}

/* Drain, delete, reset, wait, uncordon one Node. 0, REPLAN or -errno. */
static int recreate_node(struct repair *r, const struct view_node *n,
			 const struct view_instance *in, struct error *err)
{
	struct pod_scan s = {0};
	json_t *steps, *js;
	size_t first;
	char why[320], path[512], alias[64];
	json_t *cur = NULL;
	bool unschedulable = false;
	struct error e = {0};
	int ret;

	ret = quorum_check(r, n->name, why, sizeof(why), err);
	if (ret < 0)
		return ret;
	if (ret > 0)
		return error_set(err, EPERM, "%s", why);
	/* Only the incarnation we planned for. */
	ret = node_path(path, sizeof(path), n->name);
	if (ret == 0)
		ret = kube_get(r->s.kube, path, &cur, err);
	if (ret == -ENOENT ||
	    (ret == 0 && strcmp(json_path_str(cur, "metadata.uid") ?: "", n->uid))) {
		json_decref(cur);
		log_warn("Node %s changed since it was read: planning again", n->name);
		return REPLAN;
	}
	json_decref(cur);
	if (ret < 0)
		return ret;

	steps = json_pack("[o, o, o, o]", step("cordon", n->name, n->uid, NULL, NULL),
			  step("delete-node", n->name, n->uid, in->zone, in->name),
			  step("reset", n->name, n->uid, in->zone, in->name),
			  step("uncordon", n->name, NULL, NULL, NULL));
	first = r->journal ? json_array_size(json_object_get(r->journal, "steps")) : 0;
	ret = repair_journal_add(r, steps, err);
	if (ret < 0)
		return ret;
	js = json_object_get(r->journal, "steps");

	ret = set_unschedulable(r, n->name, true, err);
	if (ret < 0)
		goto failed;
	log_info("Node %s cordoned", n->name);
	repair_journal_state(r, json_array_get(js, first), "done", NULL, &e);

	ret = scan_pods(r, n->name, &s, err);
	if (ret == 0 && json_array_size(s.unmanaged)) {
		char *list = json_dumps(s.unmanaged, JSON_COMPACT);

		ret = error_set(err, EPERM,
				"Node %s: pods without a controller appeared: %s (pass --force to "
				"drain them anyway)",
				n->name, list ? list : "?");
		free(list);
	}
	if (ret == 0)
		ret = drain(r, n->name, &s, err);
	if (ret < 0) {
		/* Not deleting it after all: make it schedulable again. */
		if (set_unschedulable(r, n->name, false, &e) == 0)
			repair_journal_state(r, json_array_get(js, first), "rolled-back", NULL, &e);
		goto failed;
	}
	json_array_append_new(r->applied,
			      json_pack("{s:s, s:s, s:O, s:i}", "action", "drain", "node", n->name,
					"evicted", s.evict, "kept", (int)s.kept));
	scan_free(&s);

	ret = delete_node(r, n->name, n->uid, err);
	if (ret < 0)
		goto failed;
	log_info("Node %s deleted; resetting instance %s so that its kubelet registers it again",
		 n->name, in->name);
	repair_journal_state(r, json_array_get(js, first + 1), "done", NULL, &e);

	ret = reset_instance(r, in->zone, in->name, err);
	if (ret < 0) {
		repair_journal_state(r, json_array_get(js, first + 2), "failed", err->msg, &e);
		return error_prefix(err,
				    "Node %s is deleted and its instance was not reset; run "
				    "'talos-gcp repair --apply --strategy node' to finish from the "
				    "journal %s",
				    n->name, r->journal_path);
	}
	repair_journal_state(r, json_array_get(js, first + 2), "done", NULL, &e);

	ret = current_alias(r, in->zone, in->name, alias, sizeof(alias), err);
	if (ret == 0)
		ret = wait_node(r, n->name, n->uid, NULL, alias[0] ? alias : NULL, &unschedulable,
				err);
	if (ret < 0) {
		repair_journal_state(r, json_array_get(js, first + 3), "skipped", err->msg, &e);
		return ret;
	}
	log_info("Node %s is back, Ready, podCIDR %s", n->name, alias);
	json_array_append_new(r->applied, json_pack("{s:s, s:s, s:s}", "action", "registered",
						    "node", n->name, "podCIDR", alias));
	if (unschedulable)
		ret = set_unschedulable(r, n->name, false, err);
	if (ret < 0) {
		repair_journal_state(r, json_array_get(js, first + 3), "failed", err->msg, &e);
		return ret;
	}
	repair_journal_state(r, json_array_get(js, first + 3), "done", NULL, &e);
	r->changed++;
	return 0;
failed:
	scan_free(&s);
	for (size_t k = 1; k < 4; k++)
		repair_journal_state(r, json_array_get(js, first + k), "skipped", err->msg, &e);
	return ret;
}

int node_apply(struct repair *r, const struct cluster_view *view, const struct node_plan *p,
	       struct error *err)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct view_node *n = &view->nodes[p->nodes[i]];
		const struct view_instance *in = NULL;
		int ret;

		{
			char buf[512];
			const char *project, *zone, *name;
			ssize_t idx = -1;

			if (provider_id_parse(n->provider_id, buf, sizeof(buf), &project, &zone,
					      &name) == 0)
				idx = view_find_instance(view, zone, name);
			if (idx < 0)
				return REPLAN;
			in = &view->instances[idx];
		}
		ret = recreate_node(r, n, in, err);
		if (ret != 0)
			return ret;
	}
	return 0;
}

/* ---- an unfinished journal ---- */

static json_t *find_step(json_t *steps, size_t from, const char *action, const char *node)
{
	for (size_t i = from; i < json_array_size(steps) && i < from + 4; i++) {
		json_t *s = json_array_get(steps, i);

		if (!strcmp(json_str(s, "action") ?: "", action) &&
		    !strcmp(json_str(s, "node") ?: "", node))
			return s;
	}
	return NULL;
}

static bool is(const json_t *step, const char *state)
{
	return step && !strcmp(json_str(step, "state") ?: "", state);
}

static bool journal_unfinished_step(const json_t *step)
{
	return is(step, "pending") || is(step, "failed");
}

int node_resume(struct repair *r, json_t *journal, struct error *err)
{
	json_t *steps = json_object_get(journal, "steps"), *st;
	size_t i;
	int ret = 0;

	json_array_foreach(steps, i, st)
	{
		const char *node = json_str(st, "node"), *uid = json_str(st, "nodeUid");
		json_t *cordon, *del, *reset, *uncordon, *cur = NULL;
		bool gone, unschedulable = false;
		char path[512], alias[64];
		struct error e = {0};

		if (strcmp(json_str(st, "action") ?: "", "cordon"))
			continue;
		cordon = st;
		del = find_step(steps, i, "delete-node", node);
		reset = find_step(steps, i, "reset", node);
		uncordon = find_step(steps, i, "uncordon", node);
		if (!del || !reset || !uncordon ||
		    (!journal_unfinished_step(cordon) && !journal_unfinished_step(del) &&
		     !journal_unfinished_step(reset) && !journal_unfinished_step(uncordon)))
			continue;
		ret = node_path(path, sizeof(path), node);
		if (ret == 0)
			ret = kube_get(r->s.kube, path, &cur, err);
		if (ret < 0 && ret != -ENOENT)
			return ret;
		gone = ret == -ENOENT ||
		       (uid && strcmp(json_path_str(cur, "metadata.uid") ?: "", uid));
		json_decref(cur);
		ret = 0;
		if (!is(reset, "done") && (is(del, "done") || gone)) {
			/* Deleted and not reset: the kubelet will not register it by itself. */
			ret = reset_instance(r, json_str(reset, "zone"),
					     json_str(reset, "instance"), err);
			if (ret < 0)
				return error_prefix(err, "journal: Node %s", node);
			if (!is(del, "done"))
				repair_journal_state(r, del, "done", NULL, &e);
			repair_journal_state(r, reset, "done", NULL, &e);
		} else if (!is(del, "done") && !gone) {
			/* Only cordoned: nothing was taken down; make it schedulable again. */
			if (is(cordon, "done")) {
				ret = set_unschedulable(r, node, false, err);
				if (ret < 0)
					return error_prefix(err, "journal: uncordoning Node %s",
							    node);
				repair_journal_state(r, cordon, "rolled-back", NULL, &e);
			} else if (!is(cordon, "rolled-back")) {
				repair_journal_state(r, cordon, "skipped", "never done", &e);
			}
			if (!is(del, "skipped"))
				repair_journal_state(r, del, "skipped", "rolled back", &e);
			if (!is(reset, "skipped"))
				repair_journal_state(r, reset, "skipped", "rolled back", &e);
			if (!is(uncordon, "skipped"))
				repair_journal_state(r, uncordon, "skipped", "rolled back", &e);
			continue;
		}
		if (is(uncordon, "done"))
			continue;
		ret = current_alias(r, json_str(reset, "zone"), json_str(reset, "instance"), alias,
				    sizeof(alias), err);
		if (ret == 0)
			ret = wait_node(r, node, uid, NULL, alias[0] ? alias : NULL, &unschedulable,
					err);
		if (ret == 0 && unschedulable)
			ret = set_unschedulable(r, node, false, err);
		if (ret < 0)
			return error_prefix(err, "journal: Node %s", node);
		repair_journal_state(r, uncordon, "done", NULL, &e);
		if (!is(cordon, "done"))
			repair_journal_state(r, cordon, "done", NULL, &e);
	}
	return 0;
}

/* ---- --reset-after ---- */

int reset_after(struct repair *r, struct error *err)
{
	json_t *v;
	size_t i;

	json_array_foreach(r->changed_nodes, i, v)
	{
		const char *node = json_str(v, "node"), *zone = json_str(v, "zone"),
			   *inst = json_str(v, "instance");
		char why[320], path[512], boot[128] = "";
		json_t *n = NULL, *steps, *st;
		struct error e = {0};
		bool seen = false;
		int ret;

		for (size_t k = 0; k < i; k++)
			seen |= !strcmp(json_str(json_array_get(r->changed_nodes, k), "node") ?: "",
					node);
		if (seen)
			continue;
		ret = quorum_check(r, node, why, sizeof(why), err);
		if (ret < 0)
			return ret;
		if (ret > 0)
			return error_set(err, EPERM, "--reset-after: %s", why);
		ret = node_path(path, sizeof(path), node);
		if (ret == 0)
			ret = kube_get(r->s.kube, path, &n, err);
		if (ret < 0)
			return ret;
		snprintf(boot, sizeof(boot), "%s",
			 json_path_str(n, "status.nodeInfo.bootID") ?: "");
		json_decref(n);
		steps = json_pack("[o]", step("reset", node, NULL, zone, inst));
		ret = repair_journal_add(r, steps, err);
		if (ret < 0)
			return ret;
		st = json_array_get(json_object_get(r->journal, "steps"),
				    json_array_size(json_object_get(r->journal, "steps")) - 1);
		ret = reset_instance(r, zone, inst, err);
		if (ret < 0) {
			repair_journal_state(r, st, "failed", err->msg, &e);
			return ret;
		}
		repair_journal_state(r, st, "done", NULL, &e);
		ret = wait_node(r, node, NULL, boot[0] ? boot : NULL, NULL, NULL, err);
		if (ret < 0)
			return ret;
		log_info("Node %s is Ready again after the reset of %s", node, inst);
	}
	return 0;
}
