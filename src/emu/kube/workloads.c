/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What runs on the emulated nodes: the smallest set of Kubernetes' own controllers that makes
 * draining a node mean what it means on a real cluster. One pass (a timer shortly after any
 * change to pods, nodes, DaemonSets, ReplicaSets, Deployments or PodDisruptionBudgets) runs,
 * in order:
 *
 * Deployment controller (pkg/controller/deployment): one ReplicaSet per pod template,
 *   named DEPLOYMENT-HASH with the label pod-template-hash (FNV-32a of the template, encoded
 *   as rand.SafeEncodeString does); the current one gets spec.replicas, older ones are
 *   scaled to 0. Simplification: every update is a Recreate (no maxSurge/maxUnavailable).
 * ReplicaSet controller (pkg/controller/replicaset): creates pods from the template (owned,
 *   controller: true) up to spec.replicas, deletes the surplus (unscheduled, then not Ready,
 *   then the newest first, as getPodsToDelete ranks them).
 * DaemonSet controller (pkg/controller/daemon): one pod per Node the pod may run on
 *   (nodeSelector, required node affinity, taints), with the tolerations the controller adds
 *   to every daemon pod (not-ready and unreachable NoExecute; disk-, memory-, pid-pressure
 *   and unschedulable NoSchedule; network-unavailable for host-network pods): a cordoned
 *   Node keeps its daemon pods, which is why kubectl drain must skip them.
 * Scheduler (a minimal kube-scheduler): binds pending pods without spec.nodeName to a Ready
 *   Node whose taints they tolerate (spec.unschedulable counts as the taint
 *   node.kubernetes.io/unschedulable:NoSchedule, as TaintNodesByCondition makes it) and that
 *   matches nodeSelector and required node affinity; the Node with the fewest pods wins.
 * kubelet: a pod bound to a Ready Node runs (phase Running, conditions True, hostIP, podIP:
 *   the Node's address for host-network pods, else the next free address of the Node's
 *   podCIDR; without a podCIDR the CNI cannot give one and the pod stays Pending). When a
 *   Node stops being Ready the node lifecycle controller marks its pods not Ready
 *   (MarkPodsNotReady); they keep their phase.
 * Pod garbage collector (pkg/controller/podgc, gcOrphaned): a pod bound to a Node that does
 *   not exist is deleted after a quarantine (40 s upstream; --ccm-delay here). This is why a
 *   Node must be drained before it is deleted: everything on it goes, not just to another
 *   node.
 * Disruption controller (pkg/controller/disruption): PodDisruptionBudget status:
 *   expectedPods, desiredHealthy (minAvailable, or expected minus maxUnavailable; percentages
 *   of the controllers' scale, rounded up), currentHealthy (Ready pods not being deleted and
 *   not in disruptedPods), disruptionsAllowed = max(0, currentHealthy - desiredHealthy),
 *   observedGeneration, the DisruptionAllowed condition (SufficientPods, InsufficientPods,
 *   SyncFailed), and disruptedPods entries dropped once the pod's deletion is seen or after
 *   DeletionTimeout (2 minutes).
 *
 * Every write goes through the store like a client's; a write that changes nothing makes no
 * event, so the passes stop once the cluster is settled.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "common/cidr.h"
#include "common/log.h"
#include "emu/kube/kube.h"

#define SYNC_DELAY_MS          10
#define DISRUPTION_TIMEOUT_S   120 /* disruption controller's DeletionTimeout */
#define TEMPLATE_HASH_LABEL    "pod-template-hash"
#define MIRROR_ANNOTATION      "kubernetes.io/config.mirror"
#define DEFAULT_SCHEDULER_NAME "default-scheduler"

struct kube_workloads {
	struct emu_kube *k;
	long timer;
	long gc_timer;   /* the next quarantine or disruptedPods expiry */
	json_t *orphans; /* "ns/name" -> emu_now_ms() when first seen bound to a missing Node */
	uint64_t next_due;
};

/* One pass's view: pods by node, counts for the scheduler. */
struct pass {
	json_t *by_node; /* node name -> [pod keys "ns/name"] */
};

static struct kube_res *res(struct emu_kube *k, const char *group, const char *resource)
{
	return kube_res_find(k, group, "v1", resource);
}

static void sync_timer(struct emu *emu, void *arg);

static void schedule_sync(struct kube_workloads *w, uint64_t delay)
{
	if (w->timer)
		return;
	w->timer = emu_timer_add(w->k->emu, delay, sync_timer, w);
	if (w->timer < 0)
		w->timer = 0;
}

struct kube_workloads *kube_workloads_new(struct emu_kube *k)
{
	struct kube_workloads *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->k = k;
	w->orphans = json_object();
	if (!w->orphans) {
		free(w);
		return NULL;
	}
	return w;
}

void kube_workloads_free(struct kube_workloads *w)
{
	if (!w)
		return;
	if (w->timer)
		emu_timer_cancel(w->k->emu, w->timer);
	if (w->gc_timer)
		emu_timer_cancel(w->k->emu, w->gc_timer);
	json_decref(w->orphans);
	free(w);
}

void kube_workloads_reset(struct kube_workloads *w)
{
	json_object_clear(w->orphans);
	schedule_sync(w, SYNC_DELAY_MS);
}

void kube_workloads_on_event(struct kube_workloads *w, const struct kube_event *ev)
{
	static const char *const watched[] = {"pods",        "nodes",       "daemonsets",
					      "replicasets", "deployments", "poddisruptionbudgets"};
	const char *r = ev->res->def.resource;

	for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]); i++)
		if (!strcmp(r, watched[i])) {
			schedule_sync(w, SYNC_DELAY_MS);
			return;
		}
}

/* ---- small readers ---- */
const json_t *kube_condition(const json_t *obj, const char *type)
{
	json_t *c;
	size_t i;

	json_array_foreach(kj_path(obj, "status.conditions"), i, c)
	{
		if (!strcmp(kj_str(c, "type") ?: "", type))
			return c;
	}
	return NULL;
}

static bool cond_true(const json_t *obj, const char *type)
{
	const json_t *c = kube_condition(obj, type);

	return c && !strcmp(kj_str(c, "status") ?: "", "True");
}

bool kube_pod_ready(const json_t *pod)
{
	return cond_true(pod, "Ready");
}

static bool node_ready(const json_t *node)
{
	return cond_true(node, "Ready");
}

static bool deleting(const json_t *obj)
{
	return kj_str(obj, "metadata.deletionTimestamp") != NULL;
}

static bool terminal(const json_t *pod)
{
	const char *phase = kj_str(pod, "status.phase") ?: "";

	return !strcmp(phase, "Succeeded") || !strcmp(phase, "Failed");
}

/* Pods a controller counts: not finished, not being deleted (controller.IsPodActive). */
static bool active(const json_t *pod)
{
	return !terminal(pod) && !deleting(pod);
}

/* The ownerReference with controller: true, or NULL. */
static const json_t *controller_ref(const json_t *obj)
{
	json_t *ref;
	size_t i;

	json_array_foreach(kj_path(obj, "metadata.ownerReferences"), i, ref)
	{
		if (json_is_true(json_object_get(ref, "controller")))
			return ref;
	}
	return NULL;
}

static bool controlled_by(const json_t *obj, const char *uid)
{
	const json_t *ref = controller_ref(obj);

	return ref && uid && !strcmp(kj_str(ref, "uid") ?: "", uid);
}

static json_int_t ival(const json_t *o, const char *path, json_int_t dflt)
{
	json_t *v = kj_path(o, path);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static const char *name_of(const json_t *obj)
{
	return kj_str(obj, "metadata.name") ?: "";
}

static const char *node_internal_ip(const json_t *node)
{
	json_t *a;
	size_t i;

	json_array_foreach(kj_path(node, "status.addresses"), i, a)
	{
		if (!strcmp(kj_str(a, "type") ?: "", "InternalIP"))
			return kj_str(a, "address");
	}
	return NULL;
}

/* Keys of a resource's objects (a pass writes while it walks: walk a copy). */
static json_t *keys_of(const struct kube_res *r)
{
	json_t *keys = json_array();

	for (size_t i = 0; i < r->len; i++)
		json_array_append_new(keys, json_pack("[s, s]", kobj_namespace(r->items[i].obj),
						      kobj_name(r->items[i].obj)));
	return keys;
}

static struct kobj *get_key(struct kube_res *r, const json_t *key)
{
	const char *ns = json_string_value(json_array_get(key, 0));

	return kube_get(r, ns && ns[0] ? ns : NULL, json_string_value(json_array_get(key, 1)));
}

/* ---- selectors, affinity, taints ---- */
static bool expr_match(const json_t *expr, const json_t *labels)
{
	const char *key = kj_str(expr, "key") ?: "", *op = kj_str(expr, "operator") ?: "";
	const char *have = json_string_value(json_object_get(labels, key));
	json_t *values = json_object_get(expr, "values"), *v;
	bool in = false;
	size_t i;

	json_array_foreach(values, i, v)
	{
		if (have && json_string_value(v) && !strcmp(have, json_string_value(v)))
			in = true;
	}
	if (!strcmp(op, "In"))
		return have && in;
	if (!strcmp(op, "NotIn"))
		return !have || !in;
	if (!strcmp(op, "Exists"))
		return have != NULL;
	if (!strcmp(op, "DoesNotExist"))
		return have == NULL;
	if (!strcmp(op, "Gt") || !strcmp(op, "Lt")) {
		/* node selector requirements only: one integer value */
		const char *want = json_string_value(json_array_get(values, 0));
		char *e1, *e2;
		long long a, b;

		if (!have || !want)
			return false;
		a = strtoll(have, &e1, 10);
		b = strtoll(want, &e2, 10);
		if (*e1 || *e2)
			return false;
		return !strcmp(op, "Gt") ? a > b : a < b;
	}
	return false;
}

bool kube_label_selector_json_match(const json_t *selector, const json_t *labels)
{
	const char *key;
	json_t *v, *e;
	size_t i;

	if (!json_is_object(selector))
		return false;
	json_object_foreach((json_t *)json_object_get(selector, "matchLabels"), key, v)
	{
		const char *have = json_string_value(json_object_get(labels, key));

		if (!have || !json_string_value(v) || strcmp(have, json_string_value(v)))
			return false;
	}
	json_array_foreach(json_object_get(selector, "matchExpressions"), i, e)
	{
		if (!expr_match(e, labels))
			return false;
	}
	return true;
}

/* requiredDuringSchedulingIgnoredDuringExecution: any term matches (each term: all). */
static bool node_affinity_match(const json_t *pod_spec, const json_t *node)
{
	const json_t *req = kj_path(pod_spec, "affinity.nodeAffinity."
					      "requiredDuringSchedulingIgnoredDuringExecution");
	const json_t *labels = kj_path(node, "metadata.labels");
	json_t *term, *e;
	size_t i, j;

	if (!req)
		return true;
	json_array_foreach(json_object_get(req, "nodeSelectorTerms"), i, term)
	{
		bool ok = true;

		json_array_foreach(json_object_get(term, "matchExpressions"), j, e) ok &=
		    expr_match(e, labels);
		json_array_foreach(json_object_get(term, "matchFields"), j, e)
		{
			/* The only field a node selector term may name. */
			json_t *fields = json_pack("{s:s}", "metadata.name", name_of(node));

			if (strcmp(kj_str(e, "key") ?: "", "metadata.name"))
				ok = false;
			else
				ok &= expr_match(e, fields);
			json_decref(fields);
		}
		if (ok && (json_array_size(json_object_get(term, "matchExpressions")) ||
			   json_array_size(json_object_get(term, "matchFields"))))
			return true;
	}
	return false;
}

static bool node_selector_match(const json_t *pod_spec, const json_t *node)
{
	const json_t *labels = kj_path(node, "metadata.labels");
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)json_object_get(pod_spec, "nodeSelector"), key, v)
	{
		const char *have = json_string_value(json_object_get(labels, key));

		if (!have || !json_string_value(v) || strcmp(have, json_string_value(v)))
			return false;
	}
	return true;
}

/* v1.Toleration.ToleratesTaint */
static bool tolerates(const json_t *tolerations, const char *key, const char *value,
		      const char *effect)
{
	json_t *t;
	size_t i;

	json_array_foreach(tolerations, i, t)
	{
		const char *tk = kj_str(t, "key") ?: "", *op = kj_str(t, "operator") ?: "Equal";
		const char *te = kj_str(t, "effect") ?: "";

		if (te[0] && strcmp(te, effect))
			continue;
		if (!tk[0] && !strcmp(op, "Exists"))
			return true;
		if (strcmp(tk, key))
			continue;
		if (!strcmp(op, "Exists"))
			return true;
		if (!strcmp(op, "Equal") && !strcmp(kj_str(t, "value") ?: "", value ?: ""))
			return true;
	}
	return false;
}

/*
 * Whether a pod with this spec may be placed on node. daemon: the DaemonSet controller's
 * view (NotReady Nodes count; the daemon tolerations are in the spec already).
 */
static bool fits(const json_t *spec, const json_t *node, bool daemon)
{
	const json_t *tols = json_object_get(spec, "tolerations");
	json_t *t;
	size_t i;

	if (deleting(node))
		return false;
	if (!daemon && !node_ready(node) &&
	    !tolerates(tols, "node.kubernetes.io/not-ready", "", "NoSchedule"))
		return false;
	if (json_is_true(kj_path(node, "spec.unschedulable")) &&
	    !tolerates(tols, "node.kubernetes.io/unschedulable", "", "NoSchedule"))
		return false;
	json_array_foreach(kj_path(node, "spec.taints"), i, t)
	{
		const char *effect = kj_str(t, "effect") ?: "";

		if (strcmp(effect, "NoSchedule") && strcmp(effect, "NoExecute"))
			continue;
		if (!tolerates(tols, kj_str(t, "key") ?: "", kj_str(t, "value"), effect))
			return false;
	}
	return node_selector_match(spec, node) && node_affinity_match(spec, node);
}

/* ---- creating pods from a template ---- */
static json_t *pod_from_template(const json_t *tmpl, const char *ns, const char *prefix,
				 const struct kobj *owner, const char *owner_api,
				 const char *owner_kind)
{
	json_t *pod, *meta, *spec;
	char gen[300];

	snprintf(gen, sizeof(gen), "%.240s-", prefix);
	spec = json_deep_copy(kj_path(tmpl, "spec"));
	if (!json_is_object(spec)) {
		json_decref(spec);
		spec = json_object();
	}
	meta = json_pack("{s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:b, s:b}]}", "generateName", gen,
			 "namespace", ns, "ownerReferences", "apiVersion", owner_api, "kind",
			 owner_kind, "name", kobj_name(owner), "uid", kobj_uid(owner), "controller",
			 1, "blockOwnerDeletion", 1);
	if (kj_path(tmpl, "metadata.labels"))
		json_object_set_new(meta, "labels",
				    json_deep_copy(kj_path(tmpl, "metadata.labels")));
	if (kj_path(tmpl, "metadata.annotations"))
		json_object_set_new(meta, "annotations",
				    json_deep_copy(kj_path(tmpl, "metadata.annotations")));
	/* The defaults the API server fills in (pkg/apis/core/v1/defaults.go). */
	if (!json_object_get(spec, "schedulerName"))
		json_object_set_new(spec, "schedulerName", json_string(DEFAULT_SCHEDULER_NAME));
	if (!json_object_get(spec, "restartPolicy"))
		json_object_set_new(spec, "restartPolicy", json_string("Always"));
	if (!json_object_get(spec, "dnsPolicy"))
		json_object_set_new(spec, "dnsPolicy", json_string("ClusterFirst"));
	if (!json_object_get(spec, "terminationGracePeriodSeconds"))
		json_object_set_new(spec, "terminationGracePeriodSeconds", json_integer(30));
	pod = json_pack("{s:s, s:s, s:o, s:o, s:{s:s}}", "apiVersion", "v1", "kind", "Pod",
			"metadata", meta, "spec", spec, "status", "phase", "Pending");
	return pod;
}

static void add_toleration(json_t *spec, const char *key, const char *effect)
{
	json_t *tols = json_object_get(spec, "tolerations");

	if (!json_is_array(tols)) {
		tols = json_array();
		json_object_set_new(spec, "tolerations", tols);
	}
	if (!tolerates(tols, key, "", effect))
		json_array_append_new(tols, json_pack("{s:s, s:s, s:s}", "key", key, "operator",
						      "Exists", "effect", effect));
}

/* AddOrUpdateDaemonPodTolerations (pkg/controller/daemon/util). */
static void daemon_tolerations(json_t *spec)
{
	add_toleration(spec, "node.kubernetes.io/not-ready", "NoExecute");
	add_toleration(spec, "node.kubernetes.io/unreachable", "NoExecute");
	add_toleration(spec, "node.kubernetes.io/disk-pressure", "NoSchedule");
	add_toleration(spec, "node.kubernetes.io/memory-pressure", "NoSchedule");
	add_toleration(spec, "node.kubernetes.io/pid-pressure", "NoSchedule");
	add_toleration(spec, "node.kubernetes.io/unschedulable", "NoSchedule");
	if (json_is_true(json_object_get(spec, "hostNetwork")))
		add_toleration(spec, "node.kubernetes.io/network-unavailable", "NoSchedule");
}

static void create_pod(struct emu_kube *k, json_t *pod, const char *what)
{
	struct kube_res *pods = res(k, "", "pods");
	const char *ns = kj_str(pod, "metadata.namespace");
	struct kube_err e = {0};
	char nsbuf[256];

	snprintf(nsbuf, sizeof(nsbuf), "%s", ns ? ns : "default");
	if (kube_create(k, pods, nsbuf, pod, KWF_CONTROLLER, &e, NULL) < 0)
		log_warn("kube: %s: cannot create a pod: %s", what, e.message);
	kube_err_clear(&e);
}

static void delete_obj(struct emu_kube *k, struct kube_res *r, const struct kobj *o,
		       const char *why)
{
	json_t *opts = json_pack("{s:i}", "gracePeriodSeconds", 0);
	struct kube_err e = {0};
	char ns[256], name[300];
	bool deleted;

	snprintf(ns, sizeof(ns), "%s", kobj_namespace(o) ?: "");
	snprintf(name, sizeof(name), "%s", kobj_name(o));
	if (kube_delete(k, r, ns[0] ? ns : NULL, name, opts, KWF_CONTROLLER, &e, NULL, &deleted) ==
	    0)
		log_info("kube: %s %s/%s deleted (%s)", r->def.singular, ns, name, why);
	kube_err_clear(&e);
	json_decref(opts);
}

static void write_status(struct emu_kube *k, struct kube_res *r, const struct kobj *o,
			 json_t *status)
{
	json_t *n = json_deep_copy(o->obj);
	struct kube_err e = {0};
	char ns[256], name[300];

	snprintf(ns, sizeof(ns), "%s", kobj_namespace(o) ?: "");
	snprintf(name, sizeof(name), "%s", kobj_name(o));
	json_object_set_new(n, "status", status);
	if (kube_update(k, r, ns[0] ? ns : NULL, name, n, KW_STATUS, KWF_CONTROLLER, &e, NULL) < 0)
		log_warn("kube: cannot write the status of %s %s/%s: %s", r->def.singular, ns, name,
			 e.message);
	kube_err_clear(&e);
}

static void write_spec(struct emu_kube *k, struct kube_res *r, const struct kobj *o, json_t *obj)
{
	struct kube_err e = {0};
	char ns[256], name[300];

	snprintf(ns, sizeof(ns), "%s", kobj_namespace(o) ?: "");
	snprintf(name, sizeof(name), "%s", kobj_name(o));
	if (kube_update(k, r, ns[0] ? ns : NULL, name, obj, KW_INTERNAL, KWF_CONTROLLER, &e, NULL) <
	    0)
		log_warn("kube: cannot update %s %s/%s: %s", r->def.singular, ns, name, e.message);
	kube_err_clear(&e);
}

/*
 * A condition as the controllers write it: the previous lastTransitionTime is kept when the
 * status does not change (so a settled object is written with the same bytes: no event).
 */
static json_t *condition(const json_t *old_obj, const char *type, const char *status,
			 const char *reason, const char *message, bool update_time)
{
	const json_t *old = kube_condition(old_obj, type);
	json_t *c = json_pack("{s:s, s:s}", "type", type, "status", status);
	char now[40];

	emu_rfc3339(now, sizeof(now));
	if (reason)
		json_object_set_new(c, "reason", json_string(reason));
	if (message)
		json_object_set_new(c, "message", json_string(message));
	if (old && !strcmp(kj_str(old, "status") ?: "", status) &&
	    kj_str(old, "lastTransitionTime")) {
		json_object_set(c, "lastTransitionTime",
				json_object_get(old, "lastTransitionTime"));
		if (update_time && kj_str(old, "lastUpdateTime"))
			json_object_set(c, "lastUpdateTime",
					json_object_get(old, "lastUpdateTime"));
	} else {
		json_object_set_new(c, "lastTransitionTime", json_string(now));
		if (update_time)
			json_object_set_new(c, "lastUpdateTime", json_string(now));
	}
	return c;
}

/* ---- Deployment controller ---- */
/* FNV-32a of the template, written as rand.SafeEncodeString(fmt.Sprint(hash)). */
static void template_hash(const json_t *tmpl, char out[16])
{
	static const char alphanums[] = "bcdfghjklmnpqrstvwxz2456789";
	char *text = json_dumps(tmpl, JSON_COMPACT | JSON_SORT_KEYS), digits[16];
	uint32_t h = 2166136261u;

	for (const char *p = text ? text : ""; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	free(text);
	snprintf(digits, sizeof(digits), "%u", h);
	for (size_t i = 0; digits[i]; i++)
		out[i] = alphanums[(uint8_t)digits[i] % (sizeof(alphanums) - 1)];
	out[strlen(digits)] = '\0';
}

static void sync_deployment(struct kube_workloads *w, struct kobj *d, const json_t *pods_of)
{
	struct emu_kube *k = w->k;

	struct kube_res *rss = res(k, "apps", "replicasets");
	const char *ns = kobj_namespace(d);
	json_t *tmpl = json_deep_copy(kj_path(d->obj, "spec.template")), *keys, *key;
	json_int_t replicas = ival(d->obj, "spec.replicas", 1);
	char hash[16], name[300], prefix[300];
	bool found = false;
	size_t i;

	if (!json_is_object(tmpl) || deleting(d->obj)) {
		json_decref(tmpl);
		return;
	}
	template_hash(tmpl, hash);
	snprintf(name, sizeof(name), "%.240s-%s", kobj_name(d), hash);
	snprintf(prefix, sizeof(prefix), "%s/", ns);
	keys = keys_of(rss);
	json_array_foreach(keys, i, key)
	{
		struct kobj *rs = get_key(rss, key);
		json_t *n;

		if (!rs || strcmp(kobj_namespace(rs), ns) || !controlled_by(rs->obj, kobj_uid(d)))
			continue;
		if (!strcmp(kobj_name(rs), name)) {
			found = true;
			if (ival(rs->obj, "spec.replicas", 1) == replicas)
				continue;
			n = json_deep_copy(rs->obj);
			json_object_set_new(kj_obj(n, "spec"), "replicas", json_integer(replicas));
		} else {
			/* An older template: scaled down (Recreate). */
			if (ival(rs->obj, "spec.replicas", 1) == 0)
				continue;
			n = json_deep_copy(rs->obj);
			json_object_set_new(kj_obj(n, "spec"), "replicas", json_integer(0));
		}
		write_spec(k, rss, rs, n);
	}
	json_decref(keys);
	if (!found) {
		json_t *labels = kj_obj(kj_obj(tmpl, "metadata"), "labels");
		json_t *selector = json_deep_copy(kj_path(d->obj, "spec.selector"));
		json_t *rs;
		struct kube_err e = {0};

		json_object_set_new(labels, TEMPLATE_HASH_LABEL, json_string(hash));
		if (!json_is_object(selector)) {
			json_decref(selector);
			selector = json_object();
		}
		json_object_set_new(kj_obj(selector, "matchLabels"), TEMPLATE_HASH_LABEL,
				    json_string(hash));
		rs = json_pack("{s:s, s:s, s:{s:s, s:s, s:O, s:{s:s}, s:[{s:s, s:s, s:s, s:s, s:b, "
			       "s:b}]}, s:{s:I, s:o, s:O}}",
			       "apiVersion", "apps/v1", "kind", "ReplicaSet", "metadata", "name",
			       name, "namespace", ns, "labels", labels, "annotations",
			       "deployment.kubernetes.io/revision", "1", "ownerReferences",
			       "apiVersion", "apps/v1", "kind", "Deployment", "name", kobj_name(d),
			       "uid", kobj_uid(d), "controller", 1, "blockOwnerDeletion", 1, "spec",
			       "replicas", replicas, "selector", selector, "template", tmpl);
		if (rs && kube_create(k, rss, ns, rs, KWF_CONTROLLER, &e, NULL) == 0)
			log_info("kube: deployment %s/%s: replica set %s", ns, kobj_name(d), name);
		else if (e.code)
			log_warn("kube: deployment %s/%s: %s", ns, kobj_name(d), e.message);
		kube_err_clear(&e);
	}
	json_decref(tmpl);
}

/* ---- ReplicaSet controller ---- */
/* getPodsToDelete's ranking: unscheduled < scheduled, pending < running, not ready < ready. */
static int delete_rank(const json_t *pod)
{
	if (!kj_str(pod, "spec.nodeName") || !kj_str(pod, "spec.nodeName")[0])
		return 0;
	if (strcmp(kj_str(pod, "status.phase") ?: "", "Running"))
		return 1;
	if (!kube_pod_ready(pod))
		return 2;
	return 3;
}

static void sync_replicaset(struct kube_workloads *w, struct kobj *rs, const json_t *pods_of)
{
	struct emu_kube *k = w->k;

	struct kube_res *pods = res(k, "", "pods");
	json_int_t want = ival(rs->obj, "spec.replicas", 1);
	json_t *mine = json_object_get(pods_of, kobj_uid(rs)), *key;
	json_int_t have = 0;
	size_t i;

	if (deleting(rs->obj) || !json_is_object(kj_path(rs->obj, "spec.template")))
		return;
	json_array_foreach(mine, i, key)
	{
		struct kobj *p = get_key(pods, key);

		if (p && active(p->obj))
			have++;
	}
	for (; have < want; have++) {
		json_t *pod =
		    pod_from_template(kj_path(rs->obj, "spec.template"), kobj_namespace(rs),
				      kobj_name(rs), rs, "apps/v1", "ReplicaSet");
		create_pod(k, pod, kobj_name(rs));
	}
	while (have > want) {
		struct kobj *victim = NULL;
		int best = 99;

		json_array_foreach(mine, i, key)
		{
			struct kobj *p = get_key(pods, key);
			int rank;

			if (!p || !active(p->obj))
				continue;
			rank = delete_rank(p->obj);
			/* Equal ranks: the newest goes (keys are creation-ordered names: last). */
			if (rank <= best) {
				best = rank;
				victim = p;
			}
		}
		if (!victim)
			break;
		delete_obj(k, pods, victim, "replica set scaled down");
		have--;
	}
}

static void replicaset_status(struct kube_workloads *w, struct kobj *rs, const json_t *pods_of)
{
	struct emu_kube *k = w->k;

	struct kube_res *pods = res(k, "", "pods");
	json_t *mine = json_object_get(pods_of, kobj_uid(rs)), *key, *status;
	json_int_t n = 0, ready = 0;
	size_t i;

	json_array_foreach(mine, i, key)
	{
		struct kobj *p = get_key(pods, key);

		if (!p || !active(p->obj))
			continue;
		n++;
		ready += kube_pod_ready(p->obj);
	}
	status = json_pack("{s:I, s:I, s:I}", "replicas", n, "fullyLabeledReplicas", n,
			   "observedGeneration", ival(rs->obj, "metadata.generation", 1));
	if (ready) {
		json_object_set_new(status, "readyReplicas", json_integer(ready));
		json_object_set_new(status, "availableReplicas", json_integer(ready));
	}
	write_status(k, res(k, "apps", "replicasets"), rs, status);
}

static void deployment_status(struct kube_workloads *w, struct kobj *d, const json_t *pods_of)
{
	struct emu_kube *k = w->k;

	struct kube_res *rss = res(k, "apps", "replicasets");
	json_int_t want = ival(d->obj, "spec.replicas", 1), replicas = 0, updated = 0, ready = 0,
		   available = 0;
	json_t *tmpl = kj_path(d->obj, "spec.template"), *status, *conds;
	char hash[16], name[300];
	bool complete;

	if (!json_is_object(tmpl))
		return;
	template_hash(tmpl, hash);
	snprintf(name, sizeof(name), "%.240s-%s", kobj_name(d), hash);
	for (size_t i = 0; i < rss->len; i++) {
		struct kobj *rs = rss->items[i].obj;

		if (strcmp(kobj_namespace(rs), kobj_namespace(d)) ||
		    !controlled_by(rs->obj, kobj_uid(d)))
			continue;
		replicas += ival(rs->obj, "status.replicas", 0);
		ready += ival(rs->obj, "status.readyReplicas", 0);
		available += ival(rs->obj, "status.availableReplicas", 0);
		if (!strcmp(kobj_name(rs), name))
			updated = ival(rs->obj, "status.replicas", 0);
	}
	complete = updated == want && available >= want;
	conds = json_array();
	json_array_append_new(
	    conds,
	    condition(d->obj, "Available", available >= want ? "True" : "False",
		      available >= want ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
		      available >= want ? "Deployment has minimum availability."
					: "Deployment does not have minimum availability.",
		      true));
	json_array_append_new(conds,
			      condition(d->obj, "Progressing", "True",
					complete ? "NewReplicaSetAvailable" : "ReplicaSetUpdated",
					NULL, true));
	status = json_pack("{s:I, s:I, s:I, s:o}", "observedGeneration",
			   ival(d->obj, "metadata.generation", 1), "replicas", replicas,
			   "updatedReplicas", updated, "conditions", conds);
	if (ready)
		json_object_set_new(status, "readyReplicas", json_integer(ready));
	if (available)
		json_object_set_new(status, "availableReplicas", json_integer(available));
	if (want > available)
		json_object_set_new(status, "unavailableReplicas", json_integer(want - available));
	write_status(k, res(k, "apps", "deployments"), d, status);
}

/* ---- DaemonSet controller ---- */
static void sync_daemonset(struct kube_workloads *w, struct kobj *ds, const json_t *pods_of)
{
	struct emu_kube *k = w->k;

	struct kube_res *pods = res(k, "", "pods"), *nodes = res(k, "", "nodes");
	json_t *tmpl = json_deep_copy(kj_path(ds->obj, "spec.template")), *on = json_object();
	json_t *mine = json_object_get(pods_of, kobj_uid(ds)), *key, *keys, *spec;
	json_int_t desired = 0, current = 0, misscheduled = 0, ready = 0;
	size_t i;

	if (!json_is_object(tmpl) || deleting(ds->obj)) {
		json_decref(tmpl);
		json_decref(on);
		return;
	}
	spec = kj_obj(tmpl, "spec");
	daemon_tolerations(spec);
	/* Existing daemon pods by node; a node that should not run one loses it. */
	keys = json_array();
	json_array_foreach(mine, i, key) json_array_append(keys, key);
	json_array_foreach(keys, i, key)
	{
		struct kobj *p = get_key(pods, key), *node;
		const char *nn;

		if (!p || !active(p->obj))
			continue;
		nn = kj_str(p->obj, "spec.nodeName") ?: "";
		node = nn[0] ? kube_get(nodes, NULL, nn) : NULL;
		if (!node)
			continue; /* the pod garbage collector's */
		if (!fits(spec, node->obj, true) || json_object_get(on, nn)) {
			delete_obj(k, pods, p, "daemon set: not for this node");
			misscheduled++;
			continue;
		}
		json_object_set_new(on, nn, json_true());
		current++;
		ready += kube_pod_ready(p->obj);
	}
	json_decref(keys);
	for (i = 0; i < nodes->len; i++) {
		struct kobj *node = nodes->items[i].obj;
		json_t *pod;

		if (!fits(spec, node->obj, true))
			continue;
		desired++;
		if (json_object_get(on, kobj_name(node)))
			continue;
		pod = pod_from_template(tmpl, kobj_namespace(ds), kobj_name(ds), ds, "apps/v1",
					"DaemonSet");
		/* Bound where it belongs (the controller's node affinity, already resolved). */
		json_object_set_new(kj_obj(pod, "spec"), "nodeName", json_string(kobj_name(node)));
		create_pod(k, pod, kobj_name(ds));
	}
	json_decref(tmpl);
	json_decref(on);
	{
		json_t *status =
		    json_pack("{s:I, s:I, s:I, s:I, s:I}", "currentNumberScheduled", current,
			      "desiredNumberScheduled", desired, "numberMisscheduled", misscheduled,
			      "numberReady", ready, "observedGeneration",
			      ival(ds->obj, "metadata.generation", 1));

		if (current)
			json_object_set_new(status, "updatedNumberScheduled",
					    json_integer(current));
		if (ready)
			json_object_set_new(status, "numberAvailable", json_integer(ready));
		if (desired > ready)
			json_object_set_new(status, "numberUnavailable",
					    json_integer(desired - ready));
		write_status(k, res(k, "apps", "daemonsets"), ds, status);
	}
}

/* ---- scheduler ---- */
static size_t pods_on(const struct pass *p, const char *node)
{
	return json_array_size(json_object_get(p->by_node, node));
}

static void schedule_pod(struct emu_kube *k, struct pass *p, struct kobj *pod)
{
	struct kube_res *nodes = res(k, "", "nodes"), *pods = res(k, "", "pods");
	const json_t *spec = json_object_get(pod->obj, "spec");
	struct kobj *best = NULL;
	json_t *n, *conds, *kept;
	char msg[160];

	for (size_t i = 0; i < nodes->len; i++) {
		struct kobj *node = nodes->items[i].obj;

		if (!fits(spec, node->obj, false))
			continue;
		if (!best || pods_on(p, kobj_name(node)) < pods_on(p, kobj_name(best)))
			best = node;
	}
	n = json_deep_copy(pod->obj);
	conds = json_array();
	kept = kj_path(n, "status.conditions");
	for (size_t i = 0; i < json_array_size(kept); i++)
		if (strcmp(kj_str(json_array_get(kept, i), "type") ?: "", "PodScheduled"))
			json_array_append(conds, json_array_get(kept, i));
	if (!best) {
		const json_t *was = kube_condition(pod->obj, "PodScheduled");

		/* Said once: a new count of Nodes alone is no news (and no write). */
		if (was && !strcmp(kj_str(was, "reason") ?: "", "Unschedulable")) {
			json_decref(conds);
			json_decref(n);
			return;
		}
		snprintf(msg, sizeof(msg), "0/%zu nodes are available.", nodes->len);
		json_array_append_new(conds, condition(pod->obj, "PodScheduled", "False",
						       "Unschedulable", msg, false));
	} else {
		json_t *on = json_object_get(p->by_node, kobj_name(best));

		json_object_set_new(kj_obj(n, "spec"), "nodeName", json_string(kobj_name(best)));
		json_array_append_new(
		    conds, condition(pod->obj, "PodScheduled", "True", NULL, NULL, false));
		/* Counted at once, so the next pod of this pass spreads to another Node. */
		if (!on)
			json_object_set_new(p->by_node, kobj_name(best), on = json_array());
		json_array_append_new(on, json_pack("[s, s]", kobj_namespace(pod), kobj_name(pod)));
		log_info("kube: scheduler: pod %s/%s bound to %s", kobj_namespace(pod),
			 kobj_name(pod), kobj_name(best));
	}
	json_object_set_new(kj_obj(n, "status"), "conditions", conds);
	write_spec(k, pods, pod, n);
}

/* ---- kubelet ---- */
/* The next address of the Node's podCIDR that no pod on it uses (the CNI's host-local IPAM). */
static bool pod_ip(struct emu_kube *k, const struct pass *p, const json_t *node, char *out,
		   size_t len)
{
	struct kube_res *pods = res(k, "", "pods");
	const char *cidr_text = kj_str(node, "spec.podCIDR");
	json_t *on = json_object_get(p->by_node, name_of(node)), *key;
	struct cidr cidr, sub;
	size_t i;

	if (!cidr_text || cidr_parse(cidr_text, &cidr, CIDR_STRICT) < 0 ||
	    cidr.addr.family != AF_INET || cidr.prefix > 30)
		return false;
	for (uint64_t n = 2; n < cidr_subnet_count(&cidr, 32) - 1; n++) {
		bool used = false;

		cidr_subnet(&cidr, 32, n, &sub);
		inet_ntop(AF_INET, sub.addr.bytes, out, (socklen_t)len);
		json_array_foreach(on, i, key)
		{
			struct kobj *o = get_key(pods, key);

			if (o && !strcmp(kj_str(o->obj, "status.podIP") ?: "", out))
				used = true;
		}
		if (!used)
			return true;
	}
	return false;
}

static void run_pod(struct emu_kube *k, const struct pass *p, struct kobj *pod, const json_t *node)
{
	struct kube_res *pods = res(k, "", "pods");
	bool host = json_is_true(kj_path(pod->obj, "spec.hostNetwork"));
	const char *hip = node_internal_ip(node) ?: "", *phase = kj_str(pod->obj, "status.phase");
	char ip[64], now[40];
	json_t *status, *conds, *cs, *c;
	size_t i;

	if (!node_ready(node)) {
		/* nodelifecycle MarkPodsNotReady: Ready and ContainersReady go False. */
		if (!kube_pod_ready(pod->obj))
			return;
		status = json_deep_copy(json_object_get(pod->obj, "status"));
		json_array_foreach(json_object_get(status, "conditions"), i, c)
		{
			const char *t = kj_str(c, "type") ?: "";
			if (!strcmp(t, "Ready") || !strcmp(t, "ContainersReady")) {
				json_object_set_new(c, "status", json_string("False"));
				json_object_set_new(c, "lastTransitionTime", kj_now());
			}
		}
		write_status(k, pods, pod, status);
		return;
	}
	if (phase && !strcmp(phase, "Running") && kube_pod_ready(pod->obj) &&
	    kj_str(pod->obj, "status.podIP"))
		return;
	if (host)
		snprintf(ip, sizeof(ip), "%s", hip);
	else if (kj_str(pod->obj, "status.podIP"))
		snprintf(ip, sizeof(ip), "%s", kj_str(pod->obj, "status.podIP"));
	else if (!pod_ip(k, p, node, ip, sizeof(ip)))
		return; /* no podCIDR yet: the CNI has nothing to give (ContainerCreating) */
	emu_rfc3339(now, sizeof(now));
	conds = json_array();
	json_array_append_new(
	    conds, condition(pod->obj, "PodReadyToStartContainers", "True", NULL, NULL, false));
	json_array_append_new(conds, condition(pod->obj, "Initialized", "True", NULL, NULL, false));
	json_array_append_new(conds, condition(pod->obj, "Ready", "True", NULL, NULL, false));
	json_array_append_new(conds,
			      condition(pod->obj, "ContainersReady", "True", NULL, NULL, false));
	json_array_append_new(conds,
			      condition(pod->obj, "PodScheduled", "True", NULL, NULL, false));
	cs = json_array();
	json_array_foreach(kj_path(pod->obj, "spec.containers"), i, c)
	{
		json_array_append_new(cs, json_pack("{s:s, s:b, s:b, s:i, s:s, s:s, s:{s:{s:s}}}",
						    "name", kj_str(c, "name") ?: "", "ready", 1,
						    "started", 1, "restartCount", 0, "image",
						    kj_str(c, "image") ?: "", "imageID", "",
						    "state", "running", "startedAt",
						    kj_str(pod->obj, "status.startTime") ?: now));
	}
	status = json_pack(
	    "{s:s, s:o, s:s, s:[{s:s}], s:s, s:[{s:s}], s:s, s:s, s:o}", "phase", "Running",
	    "conditions", conds, "hostIP", hip, "hostIPs", "ip", hip, "podIP", ip, "podIPs", "ip",
	    ip, "startTime", kj_str(pod->obj, "status.startTime") ?: now, "qosClass",
	    kj_str(pod->obj, "status.qosClass") ?: "BestEffort", "containerStatuses", cs);
	write_status(k, pods, pod, status);
}

/* ---- pod garbage collector ---- */
static void gc_timer(struct emu *emu, void *arg)
{
	struct kube_workloads *w = arg;

	(void)emu;
	w->gc_timer = 0;
	w->next_due = 0;
	schedule_sync(w, 0);
}

static void arm_gc(struct kube_workloads *w, uint64_t due)
{
	uint64_t now = emu_now_ms();

	if (w->gc_timer && w->next_due <= due)
		return;
	if (w->gc_timer)
		emu_timer_cancel(w->k->emu, w->gc_timer);
	w->next_due = due;
	w->gc_timer = emu_timer_add(w->k->emu, due > now ? due - now : 0, gc_timer, w);
	if (w->gc_timer < 0)
		w->gc_timer = 0;
}

/* ---- disruption controller ---- */
/* GetScaledValueFromIntOrPercent: an int, or "N%" of total (rounded up or down). */
static bool int_or_percent(const json_t *v, json_int_t total, bool round_up, json_int_t *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return true;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		long pct = strtol(s, &end, 10);

		if (end == s || strcmp(end, "%") || pct < 0)
			return false;
		*out = round_up ? (pct * total + 99) / 100 : pct * total / 100;
		return true;
	}
	return false;
}

static bool is_percent(const json_t *v)
{
	return json_is_string(v) && strchr(json_string_value(v), '%');
}

/*
 * getExpectedScale: the pods' controllers' replicas, each counted once (a ReplicaSet of a
 * Deployment counts as the Deployment). -ENOENT when a pod has no controller with a scale
 * (DaemonSet pods have none).
 */
static int expected_scale(struct emu_kube *k, const json_t *pods_list, json_int_t *out)
{
	struct kube_res *rss = res(k, "apps", "replicasets"), *deps = res(k, "apps", "deployments"),
			*sts = res(k, "apps", "statefulsets"),
			*rcs = res(k, "", "replicationcontrollers");
	json_t *seen = json_object(), *pod;
	json_int_t total = 0;
	size_t i;
	int ret = 0;

	json_array_foreach(pods_list, i, pod)
	{
		const json_t *ref = controller_ref(pod);
		const char *kind = kj_str(ref, "kind") ?: "", *name = kj_str(ref, "name") ?: "";
		const char *ns = kj_str(pod, "metadata.namespace") ?: "";
		struct kobj *owner = NULL;

		if (!ref) {
			ret = -ENOENT;
			break;
		}
		if (!strcmp(kind, "ReplicaSet")) {
			owner = kube_get(rss, ns, name);
			if (owner && controller_ref(owner->obj) &&
			    !strcmp(kj_str(controller_ref(owner->obj), "kind") ?: "",
				    "Deployment")) {
				struct kobj *d = kube_get(
				    deps, ns, kj_str(controller_ref(owner->obj), "name") ?: "");
				if (d)
					owner = d;
			}
		} else if (!strcmp(kind, "StatefulSet")) {
			owner = kube_get(sts, ns, name);
		} else if (!strcmp(kind, "ReplicationController")) {
			owner = kube_get(rcs, ns, name);
		}
		if (!owner) {
			ret = -ENOENT;
			break;
		}
		if (json_object_get(seen, kobj_uid(owner)))
			continue;
		json_object_set_new(seen, kobj_uid(owner), json_true());
		total += ival(owner->obj, "spec.replicas", 1);
	}
	json_decref(seen);
	*out = total;
	return ret;
}

/* Pods of the namespace a PDB selects. policy/v1: a null selector selects none, {} all. */
static json_t *pdb_pods(struct emu_kube *k, const struct kobj *pdb)
{
	struct kube_res *pods = res(k, "", "pods");
	const json_t *sel = kj_path(pdb->obj, "spec.selector");
	json_t *list = json_array();
	char prefix[300];

	snprintf(prefix, sizeof(prefix), "%s/", kobj_namespace(pdb));
	for (size_t i = kube_lower_bound(pods, prefix); i < pods->len; i++) {
		struct kobj *p = pods->items[i].obj;

		if (strncmp(pods->items[i].key, prefix, strlen(prefix)))
			break;
		if (kube_label_selector_json_match(sel, kj_path(p->obj, "metadata.labels")))
			json_array_append(list, p->obj);
	}
	return list;
}

static void sync_pdb(struct kube_workloads *w, struct kobj *pdb, const json_t *pods_of)
{
	struct emu_kube *k = w->k;
	json_t *list = pdb_pods(k, pdb), *pod, *disrupted = json_object(), *status, *conds;
	const json_t *old = kj_path(pdb->obj, "status.disruptedPods"), *v;
	const json_t *min = kj_path(pdb->obj, "spec.minAvailable"),
		     *max = kj_path(pdb->obj, "spec.maxUnavailable");
	json_int_t expected = (json_int_t)json_array_size(list), desired = 0, healthy = 0, n;
	const char *name, *reason = NULL;
	bool failed = false;
	size_t i;

	/* disruptedPods: an eviction the API granted, until the deletion is seen (or 2 min). */
	json_object_foreach((json_t *)old, name, v)
	{
		int64_t age = kube_age_seconds(json_string_value(v));
		bool present = false;

		json_array_foreach(list, i, pod)
		{
			if (!strcmp(kj_str(pod, "metadata.name") ?: "", name) && !deleting(pod))
				present = true;
		}
		if (!present || age < 0 || age >= DISRUPTION_TIMEOUT_S)
			continue;
		json_object_set(disrupted, name, (json_t *)v);
		arm_gc(w, emu_now_ms() + (uint64_t)(DISRUPTION_TIMEOUT_S - age) * 1000);
	}
	json_array_foreach(list, i, pod)
	{
		if (kube_pod_ready(pod) && !deleting(pod) &&
		    !json_object_get(disrupted, kj_str(pod, "metadata.name") ?: ""))
			healthy++;
	}
	if (max || is_percent(min)) {
		if (expected_scale(k, list, &expected) < 0) {
			failed = true;
		} else if (max) {
			if (!int_or_percent(max, expected, true, &n))
				failed = true;
			desired = expected - n < 0 ? 0 : expected - n;
		} else if (!int_or_percent(min, expected, true, &desired)) {
			failed = true;
		}
	} else if (min && !int_or_percent(min, expected, true, &desired)) {
		failed = true;
	}
	n = failed || healthy < desired ? 0 : healthy - desired;
	reason = failed ? "SyncFailed" : n > 0 ? "SufficientPods" : "InsufficientPods";
	conds = json_pack("[o]",
			  condition(pdb->obj, "DisruptionAllowed", n > 0 ? "True" : "False", reason,
				    failed ? "found no controllers for a pod" : NULL, false));
	json_object_set_new(json_array_get(conds, 0), "observedGeneration",
			    json_integer(ival(pdb->obj, "metadata.generation", 1)));
	status = json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}", "observedGeneration",
			   ival(pdb->obj, "metadata.generation", 1), "disruptionsAllowed", n,
			   "currentHealthy", healthy, "desiredHealthy", desired, "expectedPods",
			   expected, "conditions", conds);
	if (json_object_size(disrupted))
		json_object_set_new(status, "disruptedPods", disrupted);
	else
		json_decref(disrupted);
	json_decref(list);
	write_status(k, res(k, "policy", "poddisruptionbudgets"), pdb, status);
}

/* ---- the pass ---- */
static void index_pods(struct emu_kube *k, struct pass *p, json_t *pods_of)
{
	struct kube_res *pods = res(k, "", "pods");

	json_object_clear(p->by_node);
	json_object_clear(pods_of);
	for (size_t i = 0; i < pods->len; i++) {
		struct kobj *o = pods->items[i].obj;
		const char *nn = kj_str(o->obj, "spec.nodeName");
		const json_t *ref = controller_ref(o->obj);
		json_t *key = json_pack("[s, s]", kobj_namespace(o), kobj_name(o)), *a;

		if (nn && nn[0] && !terminal(o->obj)) {
			a = json_object_get(p->by_node, nn);
			if (!a)
				json_object_set_new(p->by_node, nn, a = json_array());
			json_array_append(a, key);
		}
		if (ref && kj_str(ref, "uid")) {
			a = json_object_get(pods_of, kj_str(ref, "uid"));
			if (!a)
				json_object_set_new(pods_of, kj_str(ref, "uid"), a = json_array());
			json_array_append(a, key);
		}
		json_decref(key);
	}
}

typedef void (*obj_fn)(struct kube_workloads *w, struct kobj *o, const json_t *pods_of);

/* fn for each object of r that still exists when its turn comes (a pass writes as it walks). */
static void each(struct kube_workloads *w, struct kube_res *r, obj_fn fn, const json_t *pods_of)
{
	json_t *keys = keys_of(r), *key;
	size_t i;

	json_array_foreach(keys, i, key)
	{
		struct kobj *o = get_key(r, key);

		if (o)
			fn(w, o, pods_of);
	}
	json_decref(keys);
}

static void sync_all(struct kube_workloads *w)
{
	struct emu_kube *k = w->k;
	struct kube_res *pods = res(k, "", "pods"), *nodes = res(k, "", "nodes");
	struct kube_res *deps = res(k, "apps", "deployments"), *rss = res(k, "apps", "replicasets");
	struct kube_res *dss = res(k, "apps", "daemonsets");
	struct kube_res *pdbs = res(k, "policy", "poddisruptionbudgets");
	struct pass p = {.by_node = json_object()};
	json_t *pods_of = json_object(), *keys, *key, *seen = json_object();
	uint64_t now = emu_now_ms(), quarantine = k->ccm_delay_ms;
	size_t i;

	each(w, deps, sync_deployment, NULL);
	index_pods(k, &p, pods_of);
	each(w, rss, sync_replicaset, pods_of);
	each(w, dss, sync_daemonset, pods_of);

	/* Scheduler, kubelets, pod GC: one walk over the pods. */
	index_pods(k, &p, pods_of);
	keys = keys_of(pods);
	json_array_foreach(keys, i, key)
	{
		struct kobj *pod = get_key(pods, key), *node;
		const char *nn, *sched;
		char okey[600];

		if (!pod || terminal(pod->obj))
			continue;
		nn = kj_str(pod->obj, "spec.nodeName");
		if (!nn || !nn[0]) {
			sched = kj_str(pod->obj, "spec.schedulerName");
			if (!deleting(pod->obj) &&
			    (!sched || !strcmp(sched, DEFAULT_SCHEDULER_NAME)))
				schedule_pod(k, &p, pod);
			continue;
		}
		node = kube_get(nodes, NULL, nn);
		snprintf(okey, sizeof(okey), "%s/%s", kobj_namespace(pod), kobj_name(pod));
		if (!node) {
			/* gcOrphaned: bound to a Node that does not exist. */
			json_t *first = json_object_get(w->orphans, okey);
			uint64_t since = first ? (uint64_t)json_integer_value(first) : now;

			if (!first)
				json_object_set_new(w->orphans, okey,
						    json_integer((json_int_t)now));
			json_object_set_new(seen, okey, json_true());
			if (now - since >= quarantine) {
				delete_obj(k, pods, pod, "its Node does not exist");
				json_object_del(w->orphans, okey);
			} else {
				arm_gc(w, since + quarantine);
			}
			continue;
		}
		if (!deleting(pod->obj))
			run_pod(k, &p, pod, node->obj);
	}
	json_decref(keys);
	/* Orphans that found their Node again (or are gone) leave the quarantine. */
	{
		json_t *drop = json_array();
		const char *okey;
		json_t *v;

		json_object_foreach(w->orphans, okey, v) if (!json_object_get(seen, okey))
		    json_array_append_new(drop, json_string(okey));
		json_array_foreach(drop, i, v) json_object_del(w->orphans, json_string_value(v));
		json_decref(drop);
	}

	/* Statuses, from the pods as they are now. */
	index_pods(k, &p, pods_of);
	each(w, rss, replicaset_status, pods_of);
	each(w, deps, deployment_status, NULL);
	each(w, pdbs, sync_pdb, NULL);
	json_decref(seen);
	json_decref(pods_of);
	json_decref(p.by_node);
}

static void sync_timer(struct emu *emu, void *arg)
{
	struct kube_workloads *w = arg;

	(void)emu;
	w->timer = 0;
	sync_all(w);
}
