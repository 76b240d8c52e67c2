/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The generic object store of the emulated cluster.
 *
 * Every resource type (built in, or defined by a CustomResourceDefinition) keeps its
 * objects in an array sorted by key ("name" or "namespace/name"), the order etcd lists
 * them in, so a continue token is simply the last key returned and get is a binary search.
 *
 * resourceVersion is one cluster-wide counter, as etcd's revision is: every write takes
 * the next value, whatever the type. Each write appends an event to a ring that watches
 * replay from; events older than the ring are forgotten and a watch from before them gets
 * "410 Gone: too old resource version", as the watch cache answers.
 *
 * Semantics follow the API conventions
 * (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md):
 * optimistic concurrency on metadata.resourceVersion, generation bumped by spec changes,
 * status written through /status only, finalizers holding a deletion (deletionTimestamp),
 * ownerReferences collected in the background (garbage collector), and writes that change
 * nothing leave the object, its resourceVersion included, untouched.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "emu/kube/kube.h"

#define RING_CAP              16384 /* events kept for watches (grows from RING_MIN) */
#define RING_MIN              256
#define NAMESPACE_FINALIZE_MS 1000

/* ---- built-in resource types ---- */
#define ALL "all"
static const struct kube_rdef builtin[] = {
    /* core/v1 */
    {"", "v1", "configmaps", "configmap", "ConfigMap", KR_NAMESPACED, "cm", "", "", KP_CONFIGMAP},
    {"", "v1", "endpoints", "endpoints", "Endpoints", KR_NAMESPACED, "ep", "", "", KP_ENDPOINTS},
    {"", "v1", "events", "event", "Event", KR_NAMESPACED, "ev", "",
     "involvedObject.kind,involvedObject.namespace,involvedObject.name,involvedObject.uid,"
     "involvedObject.apiVersion,involvedObject.resourceVersion,involvedObject.fieldPath,"
     "reason,reportingComponent,source,type",
     KP_EVENT},
    {"", "v1", "limitranges", "limitrange", "LimitRange", KR_NAMESPACED, "limits", "", "",
     KP_DEFAULT},
    {"", "v1", "namespaces", "namespace", "Namespace", KR_STATUS, "ns", "", "status.phase",
     KP_NAMESPACE},
    {"", "v1", "nodes", "node", "Node", KR_STATUS, "no", "", "spec.unschedulable", KP_NODE},
    {"", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim",
     KR_NAMESPACED | KR_STATUS, "pvc", "", "", KP_DEFAULT},
    {"", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", KR_STATUS, "pv", "", "",
     KP_DEFAULT},
    {"", "v1", "pods", "pod", "Pod", KR_NAMESPACED | KR_STATUS, "po", ALL,
     "spec.nodeName,spec.restartPolicy,spec.schedulerName,spec.serviceAccountName,"
     "spec.hostNetwork,status.phase,status.podIP,status.podIPs,status.nominatedNodeName",
     KP_POD},
    {"", "v1", "podtemplates", "podtemplate", "PodTemplate", KR_NAMESPACED, "", "", "", KP_DEFAULT},
    {"", "v1", "replicationcontrollers", "replicationcontroller", "ReplicationController",
     KR_NAMESPACED | KR_STATUS | KR_GENERATION, "rc", ALL, "status.replicas", KP_DEFAULT},
    {"", "v1", "resourcequotas", "resourcequota", "ResourceQuota", KR_NAMESPACED | KR_STATUS,
     "quota", "", "", KP_DEFAULT},
    {"", "v1", "secrets", "secret", "Secret", KR_NAMESPACED, "", "", "type", KP_SECRET},
    {"", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", KR_NAMESPACED, "sa", "", "",
     KP_SERVICEACCOUNT},
    {"", "v1", "services", "service", "Service", KR_NAMESPACED | KR_STATUS, "svc", ALL,
     "spec.clusterIP,spec.type", KP_SERVICE},
    /* apps/v1 */
    {"apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", KR_NAMESPACED,
     "", "", "", KP_DEFAULT},
    {"apps", "v1", "daemonsets", "daemonset", "DaemonSet",
     KR_NAMESPACED | KR_STATUS | KR_GENERATION, "ds", ALL, "", KP_DAEMONSET},
    {"apps", "v1", "deployments", "deployment", "Deployment",
     KR_NAMESPACED | KR_STATUS | KR_GENERATION, "deploy", ALL, "", KP_DEPLOYMENT},
    {"apps", "v1", "replicasets", "replicaset", "ReplicaSet",
     KR_NAMESPACED | KR_STATUS | KR_GENERATION, "rs", ALL, "status.replicas", KP_REPLICASET},
    {"apps", "v1", "statefulsets", "statefulset", "StatefulSet",
     KR_NAMESPACED | KR_STATUS | KR_GENERATION, "sts", ALL, "", KP_DEFAULT},
    /* batch/v1 */
    {"batch", "v1", "cronjobs", "cronjob", "CronJob", KR_NAMESPACED | KR_STATUS | KR_GENERATION,
     "cj", ALL, "", KP_DEFAULT},
    {"batch", "v1", "jobs", "job", "Job", KR_NAMESPACED | KR_STATUS | KR_GENERATION, "", ALL,
     "status.successful", KP_DEFAULT},
    /* coordination.k8s.io/v1 */
    {"coordination.k8s.io", "v1", "leases", "lease", "Lease", KR_NAMESPACED, "", "", "", KP_LEASE},
    /* discovery.k8s.io/v1 */
    {"discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", KR_NAMESPACED,
     "", "", "", KP_ENDPOINTSLICE},
    /* networking.k8s.io/v1 */
    {"networking.k8s.io", "v1", "ingressclasses", "ingressclass", "IngressClass", 0, "", "", "",
     KP_DEFAULT},
    {"networking.k8s.io", "v1", "ingresses", "ingress", "Ingress",
     KR_NAMESPACED | KR_STATUS | KR_GENERATION, "ing", "", "", KP_DEFAULT},
    {"networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy",
     KR_NAMESPACED | KR_GENERATION, "netpol", "", "", KP_DEFAULT},
    /* policy/v1 */
    {"policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget",
     KR_NAMESPACED | KR_STATUS | KR_GENERATION, "pdb", "", "", KP_DEFAULT},
    /* rbac.authorization.k8s.io/v1 */
    {"rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding",
     "ClusterRoleBinding", 0, "", "", "", KP_ROLEBINDING},
    {"rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", 0, "", "", "",
     KP_CREATED_AT},
    {"rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", KR_NAMESPACED,
     "", "", "", KP_ROLEBINDING},
    {"rbac.authorization.k8s.io", "v1", "roles", "role", "Role", KR_NAMESPACED, "", "", "",
     KP_CREATED_AT},
    /* scheduling.k8s.io/v1 */
    {"scheduling.k8s.io", "v1", "priorityclasses", "priorityclass", "PriorityClass", 0, "pc", "",
     "", KP_DEFAULT},
    /* storage.k8s.io/v1 */
    {"storage.k8s.io", "v1", "csidrivers", "csidriver", "CSIDriver", 0, "", "", "", KP_DEFAULT},
    {"storage.k8s.io", "v1", "csinodes", "csinode", "CSINode", 0, "", "", "", KP_DEFAULT},
    {"storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", 0, "sc", "", "",
     KP_DEFAULT},
    /* apiextensions.k8s.io/v1 */
    {"apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition",
     "CustomResourceDefinition", KR_STATUS | KR_GENERATION, "crd,crds", "", "", KP_CREATED_AT},
    /* authentication.k8s.io/v1 and authorization.k8s.io/v1: reviews, answered, never stored */
    {"authentication.k8s.io", "v1", "selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview",
     KR_CREATE_ONLY, "", "", "", KP_DEFAULT},
    {"authentication.k8s.io", "v1", "tokenreviews", "tokenreview", "TokenReview", KR_CREATE_ONLY,
     "", "", "", KP_DEFAULT},
    {"authorization.k8s.io", "v1", "localsubjectaccessreviews", "localsubjectaccessreview",
     "LocalSubjectAccessReview", KR_CREATE_ONLY | KR_NAMESPACED, "", "", "", KP_DEFAULT},
    {"authorization.k8s.io", "v1", "selfsubjectaccessreviews", "selfsubjectaccessreview",
     "SelfSubjectAccessReview", KR_CREATE_ONLY, "", "", "", KP_DEFAULT},
    {"authorization.k8s.io", "v1", "selfsubjectrulesreviews", "selfsubjectrulesreview",
     "SelfSubjectRulesReview", KR_CREATE_ONLY, "", "", "", KP_DEFAULT},
    {"authorization.k8s.io", "v1", "subjectaccessreviews", "subjectaccessreview",
     "SubjectAccessReview", KR_CREATE_ONLY, "", "", "", KP_DEFAULT},
};

/* ---- versions ---- */
struct kobj *kobj_new(json_t *obj)
{
	struct kobj *o;

	if (!obj)
		return NULL;
	o = calloc(1, sizeof(*o));
	if (!o) {
		json_decref(obj);
		return NULL;
	}
	o->refs = 1;
	o->obj = obj;
	return o;
}

struct kobj *kobj_ref(struct kobj *o)
{
	if (o)
		o->refs++;
	return o;
}

void kobj_unref(struct kobj *o)
{
	if (!o || --o->refs)
		return;
	json_decref(o->obj);
	free(o->text);
	free(o);
}

const char *kobj_text(struct kobj *o, size_t *len)
{
	if (!o->text) {
		o->text = json_dumps(o->obj, JSON_COMPACT);
		o->text_len = o->text ? strlen(o->text) : 0;
	}
	if (len)
		*len = o->text_len;
	return o->text ? o->text : "{}";
}

void kobj_slim(struct kobj *o, const struct kube_res *r)
{
	const char *p = r->def.field_labels;
	json_t *slim, *meta;

	if (!o || o->slim || !kobj_text(o, NULL) || !o->text)
		return;
	/* metadata without managedFields: selectors never look at them, and an old version
	 * in the ring should hold as little as it can */
	meta = json_copy(json_object_get(o->obj, "metadata"));
	if (meta)
		json_object_del(meta, "managedFields");
	slim = json_pack("{s:s, s:s, s:o}", "kind", r->def.kind, "apiVersion", r->api_version,
			 "metadata", meta ? meta : json_object());
	/* The fields a field selector may name, at their paths. */
	while (slim && p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char path[128];
		json_t *v, *parent = slim;
		char *dot, *seg;

		if (n < sizeof(path)) {
			memcpy(path, p, n);
			path[n] = '\0';
			v = kj_path(o->obj, strcmp(path, "source") ? path : "source.component");
			if (v && !strcmp(path, "source"))
				snprintf(path, sizeof(path), "source.component");
			for (seg = path; v && (dot = strchr(seg, '.')); seg = dot + 1) {
				*dot = '\0';
				parent = kj_obj(parent, seg);
			}
			if (v)
				json_object_set(parent, seg, v);
		}
		p += n + (comma ? 1 : 0);
	}
	if (!slim)
		return;
	json_decref(o->obj);
	o->obj = slim;
	o->slim = true;
}

json_t *kobj_full(struct kobj *o)
{
	if (!o->slim)
		return json_incref(o->obj);
	return json_loadb(o->text, o->text_len, 0, NULL);
}

const char *kobj_name(const struct kobj *o)
{
	const char *s = kj_str(o->obj, "metadata.name");
	return s ? s : "";
}

const char *kobj_namespace(const struct kobj *o)
{
	const char *s = kj_str(o->obj, "metadata.namespace");
	return s ? s : "";
}

const char *kobj_uid(const struct kobj *o)
{
	const char *s = kj_str(o->obj, "metadata.uid");
	return s ? s : "";
}

/* ---- resource types ---- */
static struct kube_res *res_new(const struct kube_rdef *def)
{
	struct kube_res *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->def = *def;
	if (def->group[0])
		snprintf(r->api_version, sizeof(r->api_version), "%s/%s", def->group, def->version);
	else
		snprintf(r->api_version, sizeof(r->api_version), "%s", def->version);
	snprintf(r->list_kind, sizeof(r->list_kind), "%sList", def->kind);
	return r;
}

static int res_append(struct emu_kube *k, struct kube_res *r)
{
	struct kube_res **n = realloc(k->res, (k->nres + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	k->res = n;
	r->index = k->nres;
	k->res[k->nres++] = r;
	return 0;
}

static void res_clear(struct kube_res *r)
{
	for (size_t i = 0; i < r->len; i++) {
		free(r->items[i].key);
		kobj_unref(r->items[i].obj);
	}
	r->len = 0;
	r->owned = 0;
}

static void res_free(struct kube_res *r)
{
	if (!r)
		return;
	res_clear(r);
	free(r->items);
	if (r->def.flags & KR_CUSTOM) {
		free((char *)r->def.group);
		free((char *)r->def.version);
		free((char *)r->def.resource);
		free((char *)r->def.singular);
		free((char *)r->def.kind);
		free((char *)r->def.short_names);
		free((char *)r->def.categories);
	}
	free(r);
}

int kube_store_init(struct emu_kube *k)
{
	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
		struct kube_res *r = res_new(&builtin[i]);
		if (!r || res_append(k, r) < 0) {
			free(r);
			return -ENOMEM;
		}
	}
	k->ring_cap = RING_MIN;
	k->ring = calloc(k->ring_cap, sizeof(*k->ring));
	k->ns_pending = json_array();
	k->owners = json_object();
	return k->ring && k->ns_pending && k->owners ? 0 : -ENOMEM;
}

static void ring_clear(struct emu_kube *k)
{
	for (size_t i = 0; i < k->ring_len; i++) {
		struct kube_event *ev = &k->ring[(k->ring_start + i) % k->ring_cap];
		kobj_unref(ev->obj);
		kobj_unref(ev->old);
	}
	k->ring_start = k->ring_len = 0;
	k->window_rv = k->rv;
}

void kube_store_clear(struct emu_kube *k)
{
	json_array_clear(k->ns_pending);
	json_object_clear(k->owners);
	ring_clear(k);
	for (size_t i = 0; i < k->nres; i++)
		res_clear(k->res[i]);
}

void kube_store_free(struct emu_kube *k)
{
	if (k->ring)
		ring_clear(k);
	free(k->ring);
	k->ring = NULL;
	if (k->ns_timer)
		emu_timer_cancel(k->emu, k->ns_timer);
	k->ns_timer = 0;
	json_decref(k->ns_pending);
	k->ns_pending = NULL;
	json_decref(k->owners);
	k->owners = NULL;
	for (size_t i = 0; i < k->nres; i++)
		res_free(k->res[i]);
	free(k->res);
	k->res = NULL;
	k->nres = 0;
}

/* Custom resources stay in the table once defined (a removed one is marked, not freed:
 * a watch may still point at it). */
static bool res_live(const struct kube_res *r)
{
	return !r->removed;
}

struct kube_res *kube_res_find(struct emu_kube *k, const char *group, const char *version,
			       const char *resource)
{
	for (size_t i = 0; i < k->nres; i++) {
		struct kube_res *r = k->res[i];
		if (res_live(r) && strcmp(r->def.group, group) == 0 &&
		    strcmp(r->def.version, version) == 0 && strcmp(r->def.resource, resource) == 0)
			return r;
	}
	return NULL;
}

struct kube_res *kube_res_by_kind(struct emu_kube *k, const char *api_version, const char *kind)
{
	if (!api_version || !kind)
		return NULL;
	for (size_t i = 0; i < k->nres; i++) {
		struct kube_res *r = k->res[i];
		if (res_live(r) && strcmp(r->api_version, api_version) == 0 &&
		    strcmp(r->def.kind, kind) == 0)
			return r;
	}
	return NULL;
}

static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && strncasecmp(p, name, n) == 0)
			return true;
		p += len + (comma ? 1 : 0);
	}
	return false;
}

struct kube_res *kube_res_lookup(struct emu_kube *k, const char *name)
{
	for (size_t i = 0; i < k->nres; i++) {
		struct kube_res *r = k->res[i];
		if (!res_live(r))
			continue;
		if (strcasecmp(r->def.resource, name) == 0 ||
		    strcasecmp(r->def.singular, name) == 0 || strcasecmp(r->def.kind, name) == 0 ||
		    in_list(r->def.short_names, name))
			return r;
	}
	return NULL;
}

static char *join_strings(const json_t *arr)
{
	size_t i, len = 1;
	json_t *v;
	char *s;

	json_array_foreach(arr, i, v) len += strlen(json_string_value(v) ?: "") + 1;
	s = calloc(1, len);
	if (!s)
		return NULL;
	json_array_foreach(arr, i, v)
	{
		if (!json_string_value(v))
			continue;
		if (s[0])
			strcat(s, ",");
		strcat(s, json_string_value(v));
	}
	return s;
}

/* Registers each served version of a CRD as a resource type (apiextensions.k8s.io/v1). */
int kube_res_add_custom(struct emu_kube *k, const json_t *crd)
{
	const json_t *spec = json_object_get(crd, "spec"), *names, *versions, *v;
	const char *group, *plural, *kind, *singular, *scope;
	size_t i;

	names = json_object_get(spec, "names");
	versions = json_object_get(spec, "versions");
	group = kj_str(spec, "group");
	plural = kj_str(names, "plural");
	kind = kj_str(names, "kind");
	singular = kj_str(names, "singular");
	scope = kj_str(spec, "scope");
	if (!group || !plural || !kind)
		return -EINVAL;
	json_array_foreach(versions, i, v)
	{
		const char *ver = kj_str(v, "name");
		struct kube_rdef def = {0};
		struct kube_res *r = NULL;

		if (!ver || !json_is_true(json_object_get(v, "served")))
			continue;
		for (size_t j = 0; j < k->nres; j++) {
			struct kube_res *x = k->res[j];
			if ((x->def.flags & KR_CUSTOM) && strcmp(x->def.group, group) == 0 &&
			    strcmp(x->def.version, ver) == 0 &&
			    strcmp(x->def.resource, plural) == 0)
				r = x;
		}
		if (r) {
			r->removed = false; /* defined again */
			continue;
		}
		def.group = strdup(group);
		def.version = strdup(ver);
		def.resource = strdup(plural);
		def.singular = strdup(singular ? singular : "");
		def.kind = strdup(kind);
		def.short_names = join_strings(json_object_get(names, "shortNames"));
		def.categories = join_strings(json_object_get(names, "categories"));
		def.field_labels = "";
		def.flags = KR_CUSTOM | KR_GENERATION;
		if (!scope || strcmp(scope, "Namespaced") == 0)
			def.flags |= KR_NAMESPACED;
		if (kj_path(v, "subresources.status"))
			def.flags |= KR_STATUS;
		def.printer = KP_DEFAULT;
		r = res_new(&def);
		if (!r || !def.group || !def.version || !def.resource || !def.singular ||
		    !def.kind || !def.short_names || !def.categories || res_append(k, r) < 0) {
			if (r) {
				res_free(r);
			} else {
				free((char *)def.group);
				free((char *)def.version);
				free((char *)def.resource);
				free((char *)def.singular);
				free((char *)def.kind);
				free((char *)def.short_names);
				free((char *)def.categories);
			}
			return -ENOMEM;
		}
	}
	return 0;
}

void kube_res_remove_custom(struct emu_kube *k, const json_t *crd)
{
	const char *group = kj_str(crd, "spec.group"), *plural = kj_str(crd, "spec.names.plural");

	if (!group || !plural)
		return;
	for (size_t i = 0; i < k->nres; i++) {
		struct kube_res *r = k->res[i];
		if ((r->def.flags & KR_CUSTOM) && strcmp(r->def.group, group) == 0 &&
		    strcmp(r->def.resource, plural) == 0) {
			/* Objects of a deleted CRD are deleted with it (no events: the type is
			 * gone). */
			kube_state_res_cleared(k, r);
			res_clear(r);
			r->removed = true;
		}
	}
}

/* ---- lookups ---- */
const char *kube_key(const struct kube_res *r, const char *ns, const char *name, char *buf,
		     size_t len)
{
	if (r->def.flags & KR_NAMESPACED)
		snprintf(buf, len, "%s/%s", ns ? ns : "", name);
	else
		snprintf(buf, len, "%s", name);
	return buf;
}

size_t kube_lower_bound(const struct kube_res *r, const char *after)
{
	size_t lo = 0, hi = r->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(r->items[mid].key, after) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of key, or -1 with *ins the insertion point. */
static long find_index(const struct kube_res *r, const char *key, size_t *ins)
{
	size_t lo = 0, hi = r->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->items[mid].key, key);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (ins)
		*ins = lo;
	return -1;
}

struct kobj *kube_get(struct kube_res *r, const char *ns, const char *name)
{
	char key[600];
	long i;

	kube_key(r, ns, name, key, sizeof(key));
	i = find_index(r, key, NULL);
	return i < 0 ? NULL : r->items[i].obj;
}

/* ---- events ---- */
static void ring_push(struct emu_kube *k, enum kube_event_type type, struct kube_res *r,
		      struct kobj *obj, struct kobj *old)
{
	struct kube_event *ev;

	if (k->ring_len == k->ring_cap && k->ring_cap < RING_CAP) {
		/* Grow, unwrapping the circular buffer. */
		struct kube_event *n = calloc(k->ring_cap * 2, sizeof(*n));
		if (n) {
			for (size_t i = 0; i < k->ring_len; i++)
				n[i] = k->ring[(k->ring_start + i) % k->ring_cap];
			free(k->ring);
			k->ring = n;
			k->ring_start = 0;
			k->ring_cap *= 2;
		}
	}
	if (k->ring_len == k->ring_cap) {
		ev = &k->ring[k->ring_start];
		k->window_rv = ev->rv;
		kobj_unref(ev->obj);
		kobj_unref(ev->old);
		k->ring_start = (k->ring_start + 1) % k->ring_cap;
		k->ring_len--;
	}
	ev = &k->ring[(k->ring_start + k->ring_len) % k->ring_cap];
	*ev = (struct kube_event){
	    .rv = k->rv, .type = type, .res = r, .obj = kobj_ref(obj), .old = kobj_ref(old)};
	k->ring_len++;
	kube_state_event(k, r, obj);
	kube_ctrl_on_event(k, ev);
	kube_endpoints_on_event(k, ev);
	kube_watch_notify(k);
	/* Node podCIDRs are the pods' addresses; Services and Endpoints, kube-proxy's rules. */
	if (!strcmp(r->def.resource, "nodes") || !strcmp(r->def.resource, "services") ||
	    !strcmp(r->def.resource, "endpoints"))
		emu_dataplane_changed(k->emu);
}

const struct kube_event *kube_events_after(struct emu_kube *k, uint64_t rv, bool *too_old)
{
	size_t lo = 0, hi = k->ring_len;

	*too_old = rv < k->window_rv;
	if (*too_old)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (k->ring[(k->ring_start + mid) % k->ring_cap].rv <= rv)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < k->ring_len ? &k->ring[(k->ring_start + lo) % k->ring_cap] : NULL;
}

/* ---- helpers for writes ---- */
static void set_rv(json_t *obj, uint64_t rv)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)rv);
	json_object_set_new(kj_obj(obj, "metadata"), "resourceVersion", json_string(buf));
}

static bool has_owner_refs(const json_t *obj)
{
	return json_array_size(kj_path(obj, "metadata.ownerReferences")) > 0;
}

/* The collector's index: which objects name each owner uid. */
static void index_owners(struct emu_kube *k, const struct kube_res *r, const char *key,
			 const json_t *obj, bool add)
{
	json_t *ref, *set;
	char entry[700];
	size_t i;

	if (!k->owners)
		return;
	snprintf(entry, sizeof(entry), "%zu/%s", r->index, key);
	json_array_foreach(kj_path(obj, "metadata.ownerReferences"), i, ref)
	{
		const char *uid = kj_str(ref, "uid");
		if (!uid)
			continue;
		set = json_object_get(k->owners, uid);
		if (add) {
			if (!set) {
				set = json_object();
				json_object_set_new(k->owners, uid, set);
			}
			json_object_set_new(set, entry, json_true());
		} else if (set) {
			json_object_del(set, entry);
			if (!json_object_size(set))
				json_object_del(k->owners, uid);
		}
	}
}

static int insert_entry(struct emu_kube *k, struct kube_res *r, size_t at, const char *key,
			struct kobj *o)
{
	char *dup = strdup(key);

	if (!dup)
		return -ENOMEM;
	if (r->len == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 16;
		struct kube_entry *n = realloc(r->items, ncap * sizeof(*n));
		if (!n) {
			free(dup);
			return -ENOMEM;
		}
		r->items = n;
		r->cap = ncap;
	}
	memmove(&r->items[at + 1], &r->items[at], (r->len - at) * sizeof(r->items[0]));
	r->items[at] = (struct kube_entry){.key = dup, .obj = o};
	r->len++;
	if (has_owner_refs(o->obj)) {
		r->owned++;
		index_owners(k, r, key, o->obj, true);
	}
	return 0;
}

static void remove_entry(struct emu_kube *k, struct kube_res *r, size_t at)
{
	if (has_owner_refs(r->items[at].obj->obj)) {
		r->owned--;
		index_owners(k, r, r->items[at].key, r->items[at].obj->obj, false);
	}
	free(r->items[at].key);
	kobj_unref(r->items[at].obj);
	memmove(&r->items[at], &r->items[at + 1], (r->len - at - 1) * sizeof(r->items[0]));
	r->len--;
}

static bool check_type(struct kube_res *r, const json_t *obj, struct kube_err *e)
{
	const char *av = kj_str(obj, "apiVersion"), *kind = kj_str(obj, "kind");

	if (!json_is_object(obj)) {
		kube_errf(e, 400, "BadRequest", "the body of the request is not a JSON object");
		return false;
	}
	if ((av && strcmp(av, r->api_version) != 0) || (kind && strcmp(kind, r->def.kind) != 0)) {
		kube_errf(
		    e, 400, "BadRequest",
		    "the API version in the data (%s) does not match the expected API version (%s)",
		    av ? av : "", r->api_version);
		if (kind && strcmp(kind, r->def.kind) != 0 && (!av || !strcmp(av, r->api_version)))
			kube_errf(e, 400, "BadRequest",
				  "the kind in the data (%s) does not match the expected kind (%s)",
				  kind, r->def.kind);
		return false;
	}
	return true;
}

/* Object order as the API server writes it: kind, apiVersion, metadata, then the rest. */
static json_t *canonical(struct kube_res *r, json_t *obj)
{
	static const char *const order[] = {"name",
					    "generateName",
					    "namespace",
					    "uid",
					    "resourceVersion",
					    "generation",
					    "creationTimestamp",
					    "deletionTimestamp",
					    "deletionGracePeriodSeconds",
					    "labels",
					    "annotations",
					    "ownerReferences",
					    "finalizers",
					    "managedFields"};
	json_t *out = json_pack("{s:s, s:s}", "kind", r->def.kind, "apiVersion", r->api_version);
	json_t *meta = kj_obj(obj, "metadata"), *m = json_object();
	const char *key;
	json_t *v;

	/* metadata in ObjectMeta's field order, unknown keys after. */
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if ((v = json_object_get(meta, order[i])))
			json_object_set(m, order[i], v);
	json_object_foreach(meta, key, v)
	{
		if (!json_object_get(m, key))
			json_object_set(m, key, v);
	}
	json_object_set_new(out, "metadata", m);
	json_object_foreach(obj, key, v)
	{
		if (strcmp(key, "kind") && strcmp(key, "apiVersion") && strcmp(key, "metadata"))
			json_object_set(out, key, v);
	}
	json_decref(obj);
	return out;
}

static bool valid_path_segment(const char *s)
{
	return s[0] && strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/') && !strchr(s, '%') &&
	       strlen(s) <= 253;
}

static bool valid_name(const struct kube_res *r, const char *name, const char **why)
{
	if (strcmp(r->def.group, "rbac.authorization.k8s.io") == 0) {
		*why = "may not be '.' or '..' and may not contain '/' or '%'";
		return valid_path_segment(name);
	}
	if (!strcmp(r->def.resource, "namespaces") || !strcmp(r->def.resource, "services")) {
		*why = "a lowercase RFC 1123 label must consist of lower case alphanumeric "
		       "characters or '-', and must start and end with an alphanumeric character "
		       "(e.g. 'my-name',  or '123-abc', regex used for validation is "
		       "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
		return kube_dns1123_label(name);
	}
	*why = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
	       "'-' or '.', and must start and end with an alphanumeric character (e.g. "
	       "'example.com', regex used for validation is "
	       "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
	return kube_dns1123_subdomain(name);
}

static struct kube_res *namespaces_res(struct emu_kube *k)
{
	return kube_res_find(k, "", "v1", "namespaces");
}

/* Fields the server owns, never taken from a client's body; returns the body's
 * managedFields (new reference, NULL when none), which the field manager reads. */
static json_t *strip_server_fields(json_t *meta, unsigned flags)
{
	json_t *mf = NULL;

	json_object_del(meta, "selfLink");
	if (flags & (KWF_APPLIED | KWF_UNTRACKED))
		return NULL; /* computed by apply, or the stored object's own */
	mf = json_incref(json_object_get(meta, "managedFields"));
	json_object_del(meta, "managedFields");
	return mf;
}

static const char *writer(const struct emu_kube *k, unsigned flags)
{
	if (flags & KWF_CONTROLLER)
		return k->ctrl_manager ? k->ctrl_manager : KUBE_CTRL_MANAGER;
	/* buildManagerInfoManager: a writer without a name is "unknown" */
	return k->manager && k->manager[0] ? k->manager : "unknown";
}

/* What the registry allocates on these kinds is nobody's: the decoded body, kept for the
 * field manager (kube/managed.c). */
static json_t *before_admission(const struct kube_res *r, const json_t *obj, unsigned flags)
{
	if ((flags & (KWF_APPLIED | KWF_UNTRACKED)) || r->def.group[0] ||
	    (strcmp(r->def.resource, "services") && strcmp(r->def.resource, "namespaces")))
		return NULL;
	return json_pack("{s:o*}", "spec", json_deep_copy(json_object_get(obj, "spec")));
}

/* ---- create ---- */
int kube_create(struct emu_kube *k, struct kube_res *r, const char *ns, json_t *obj, unsigned flags,
		struct kube_err *e, struct kobj **out)
{
	json_t *meta, *causes, *req_mf = NULL, *pre = NULL;
	const char *name, *why, *body_ns;
	char key[600], uid[37], gen_name[300];
	struct kobj *o = NULL;
	size_t at = 0;
	int ret;

	if (out)
		*out = NULL;
	if (!check_type(r, obj, e)) {
		ret = -EINVAL;
		goto cleanup;
	}
	meta = kj_obj(obj, "metadata");
	req_mf = strip_server_fields(meta, flags);
	body_ns = kj_str(meta, "namespace");
	if (r->def.flags & KR_NAMESPACED) {
		if (body_ns && body_ns[0] && ns && strcmp(body_ns, ns) != 0) {
			ret = kube_errf(
			    e, 400, "BadRequest",
			    "the namespace of the provided object does not match the namespace sent on the request");
			goto cleanup;
		}
		if (!ns)
			ns = body_ns && body_ns[0] ? body_ns : "default";
		json_object_set_new(meta, "namespace", json_string(ns));
	} else {
		json_object_del(meta, "namespace");
		ns = NULL;
	}
	name = kj_str(meta, "name");
	if ((!name || !name[0]) && kj_str(meta, "generateName") &&
	    kj_str(meta, "generateName")[0]) {
		char suffix[6];
		kube_name_suffix(suffix, 5);
		snprintf(gen_name, sizeof(gen_name), "%.250s%s", kj_str(meta, "generateName"),
			 suffix);
		json_object_set_new(meta, "name", json_string(gen_name));
		name = kj_str(meta, "name");
	}
	if (!name || !name[0]) {
		causes = json_array();
		kube_cause(causes, "FieldValueRequired", "metadata.name",
			   "Required value: name or generateName is required");
		ret = kube_err_invalid(e, r, "", causes);
		goto cleanup;
	}
	if (!valid_name(r, name, &why)) {
		causes = json_array();
		kube_cause(causes, "FieldValueInvalid", "metadata.name",
			   "Invalid value: \"%s\": %s", name, why);
		ret = kube_err_invalid(e, r, name, causes);
		goto cleanup;
	}
	if (ns) {
		struct kobj *nso = kube_get(namespaces_res(k), NULL, ns);
		if (!nso) {
			ret = kube_err_not_found(e, namespaces_res(k), ns);
			goto cleanup;
		}
		if (kj_str(nso->obj, "metadata.deletionTimestamp") && !(flags & KWF_CONTROLLER)) {
			ret = kube_errf(
			    e, 403, "Forbidden",
			    "%s \"%s\" is forbidden: unable to create new content in namespace %s because it is being terminated",
			    r->def.resource, name, ns);
			goto cleanup;
		}
	}
	kube_key(r, ns, name, key, sizeof(key));
	if (find_index(r, key, &at) >= 0) {
		ret = kube_err_exists(e, r, name);
		goto cleanup;
	}
	/* Server-set metadata. */
	kube_uuid(uid);
	json_object_set_new(meta, "uid", json_string(uid));
	json_object_set_new(meta, "creationTimestamp", kj_now());
	json_object_del(meta, "resourceVersion");
	json_object_del(meta, "deletionTimestamp");
	json_object_del(meta, "deletionGracePeriodSeconds");
	if (r->def.flags & KR_GENERATION)
		json_object_set_new(meta, "generation", json_integer(1));
	else
		json_object_del(meta, "generation");
	pre = before_admission(r, obj, flags);
	ret = kube_admit_create(k, r, obj, e);
	if (ret < 0)
		goto cleanup;
	obj = canonical(r, obj);
	if (!(flags & (KWF_APPLIED | KWF_UNTRACKED)))
		kube_managed_update(r, NULL, obj, json_incref(req_mf), pre, KW_MAIN,
				    writer(k, flags));
	json_decref(req_mf);
	json_decref(pre);
	req_mf = pre = NULL;
	if (flags & KWF_DRY_RUN) {
		o = kobj_new(obj);
		obj = NULL;
		if (!o)
			return -ENOMEM;
		if (out)
			*out = o;
		else
			kobj_unref(o);
		return 0;
	}
	set_rv(obj, ++k->rv);
	o = kobj_new(obj);
	obj = NULL;
	if (!o)
		return -ENOMEM;
	ret = insert_entry(k, r, at, key, kobj_ref(o));
	if (ret < 0) {
		kobj_unref(o);
		kobj_unref(o);
		return kube_errf(e, 500, "InternalError", "out of memory");
	}
	if (!strcmp(r->def.resource, "customresourcedefinitions"))
		kube_res_add_custom(k, o->obj);
	ring_push(k, KEV_ADDED, r, o, NULL);
	if (out)
		*out = o;
	else
		kobj_unref(o);
	return 0;
cleanup:
	json_decref(obj);
	json_decref(req_mf);
	json_decref(pre);
	return ret;
}

/* ---- delete (and the garbage collector) ---- */
static void really_delete(struct emu_kube *k, struct kube_res *r, size_t at, const char *policy);

static bool refers_to(const json_t *obj, const char *uid)
{
	json_t *ref;
	size_t i;

	json_array_foreach(kj_path(obj, "metadata.ownerReferences"), i, ref)
	{
		if (kj_str(ref, "uid") && strcmp(kj_str(ref, "uid"), uid) == 0)
			return true;
	}
	return false;
}

/*
 * The garbage collector, for the dependents of uid: Background (and Foreground) deletes
 * them, Orphan drops the reference. Two passes: deleting may cascade into any array.
 */
static void collect_dependents(struct emu_kube *k, const char *uid, bool orphan)
{
	json_t *todo = json_array(), *t, *v;
	const char *entry;
	size_t i;

	json_object_foreach(json_object_get(k->owners, uid), entry, v)
	{
		char *slash;
		size_t ridx = strtoul(entry, &slash, 10);
		if (*slash != '/' || ridx >= k->nres)
			continue;
		json_array_append_new(todo, json_pack("[i, s]", (json_int_t)ridx, slash + 1));
	}
	json_array_foreach(todo, i, t)
	{
		struct kube_res *r = k->res[json_integer_value(json_array_get(t, 0))];
		long at = find_index(r, json_string_value(json_array_get(t, 1)), NULL);
		struct kobj *o;
		json_t *nobj, *refs;
		struct kube_err ie = {0};

		if (at < 0 || !refers_to(r->items[at].obj->obj, uid))
			continue;
		if (!orphan) {
			really_delete(k, r, (size_t)at, "Background");
			continue;
		}
		o = r->items[at].obj;
		nobj = json_deep_copy(o->obj);
		refs = kj_path(nobj, "metadata.ownerReferences");
		for (size_t idx = json_array_size(refs); idx-- > 0;) {
			const char *u = kj_str(json_array_get(refs, idx), "uid");
			if (u && strcmp(u, uid) == 0)
				json_array_remove(refs, idx);
		}
		if (!json_array_size(refs))
			json_object_del(kj_obj(nobj, "metadata"), "ownerReferences");
		kube_update(k, r, kobj_namespace(o), kobj_name(o), nobj, KW_INTERNAL,
			    KWF_CONTROLLER, &ie, NULL);
		kube_err_clear(&ie);
	}
	json_decref(todo);
}

static bool any_owned(struct emu_kube *k)
{
	for (size_t i = 0; i < k->nres; i++)
		if (k->res[i]->owned)
			return true;
	return false;
}

static void namespace_finalize(struct emu *emu, void *arg);

static void really_delete(struct emu_kube *k, struct kube_res *r, size_t at, const char *policy)
{
	struct kobj *o = r->items[at].obj, *dead;
	json_t *copy;
	char uid[64];

	snprintf(uid, sizeof(uid), "%s", kobj_uid(o));
	copy = json_deep_copy(o->obj);
	set_rv(copy, ++k->rv);
	dead = kobj_new(copy);
	if (!strcmp(r->def.resource, "customresourcedefinitions"))
		kube_res_remove_custom(k, o->obj);
	remove_entry(k, r, at);
	if (dead) {
		ring_push(k, KEV_DELETED, r, dead, NULL);
		kobj_slim(dead, r);
		kobj_unref(dead);
	}
	/* The garbage collector: dependents go in the background, or are orphaned. */
	if (uid[0] && any_owned(k))
		collect_dependents(k, uid, policy && strcmp(policy, "Orphan") == 0);
}

static void del_deletion_meta(json_t *meta)
{
	json_object_set_new(meta, "deletionTimestamp", kj_now());
	json_object_set_new(meta, "deletionGracePeriodSeconds", json_integer(0));
}

int kube_delete(struct emu_kube *k, struct kube_res *r, const char *ns, const char *name,
		const json_t *opts, unsigned flags, struct kube_err *e, struct kobj **out,
		bool *deleted)
{
	const char *policy = kj_str(opts, "propagationPolicy"), *pre_uid, *pre_rv;
	char key[600];
	struct kobj *o;
	json_t *copy, *finalizers;
	long at;

	if (out)
		*out = NULL;
	*deleted = false;
	kube_key(r, ns, name, key, sizeof(key));
	at = find_index(r, key, NULL);
	if (at < 0)
		return kube_err_not_found(e, r, name);
	o = r->items[at].obj;
	if (policy && strcmp(policy, "Orphan") && strcmp(policy, "Background") &&
	    strcmp(policy, "Foreground")) {
		json_t *causes = json_array();
		kube_cause(
		    causes, "FieldValueNotSupported", "propagationPolicy",
		    "Unsupported value: \"%s\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
		    policy);
		return kube_err_invalid(e, r, name, causes);
	}
	if (!policy && json_is_true(json_object_get(opts, "orphanDependents")))
		policy = "Orphan";
	pre_uid = kj_str(opts, "preconditions.uid");
	pre_rv = kj_str(opts, "preconditions.resourceVersion");
	if (pre_uid && strcmp(pre_uid, kobj_uid(o)) != 0) {
		char why[300];
		snprintf(why, sizeof(why),
			 "Precondition failed: UID in precondition: %s, UID in object meta: %s",
			 pre_uid, kobj_uid(o));
		return kube_err_conflict(e, r, name, why);
	}
	if (pre_rv && strcmp(pre_rv, kj_str(o->obj, "metadata.resourceVersion") ?: "") != 0) {
		char why[300];
		snprintf(
		    why, sizeof(why),
		    "Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s",
		    pre_rv, kj_str(o->obj, "metadata.resourceVersion") ?: "");
		return kube_err_conflict(e, r, name, why);
	}
	if (!(flags & KWF_CONTROLLER) && !strcmp(r->def.resource, "namespaces") &&
	    (!strcmp(name, "default") || !strcmp(name, "kube-system") ||
	     !strcmp(name, "kube-public"))) {
		/* NamespaceLifecycle admission: immortal namespaces. */
		return kube_errf(
		    e, 403, "Forbidden",
		    "namespaces \"%s\" is forbidden: this namespace may not be deleted", name);
	}
	if (flags & KWF_DRY_RUN) {
		if (out)
			*out = kobj_ref(o);
		*deleted = true;
		return 0;
	}
	if (kj_str(o->obj, "metadata.deletionTimestamp")) {
		/* Already being deleted: finalizers pending. */
		if (out)
			*out = kobj_ref(o);
		return 0;
	}
	finalizers = kj_path(o->obj, "metadata.finalizers");
	if (!strcmp(r->def.resource, "namespaces")) {
		/* The namespace controller empties it first: phase Terminating, then gone. */
		copy = json_deep_copy(o->obj);
		del_deletion_meta(kj_obj(copy, "metadata"));
		json_object_set_new(kj_obj(copy, "status"), "phase", json_string("Terminating"));
		if (kube_update(k, r, NULL, name, copy, KW_INTERNAL, KWF_CONTROLLER | KWF_UNTRACKED,
				e, out) < 0)
			return -EINVAL;
		/*
		 * The namespace controller empties it shortly after (a second here; seconds on a
		 * real cluster): a client deleting a manifest that holds its namespace still
		 * finds the other objects, as it does on a real cluster.
		 */
		json_array_append_new(k->ns_pending, json_string(name));
		if (!k->ns_timer)
			k->ns_timer =
			    emu_timer_add(k->emu, NAMESPACE_FINALIZE_MS, namespace_finalize, k);
		return 0;
	}
	if (json_array_size(finalizers) > 0) {
		copy = json_deep_copy(o->obj);
		del_deletion_meta(kj_obj(copy, "metadata"));
		return kube_update(k, r, ns, name, copy, KW_INTERNAL,
				   KWF_CONTROLLER | KWF_UNTRACKED, e, out);
	}
	if (out)
		*out = kobj_ref(o);
	/* Foreground: the collector deletes the dependents first; with ours synchronous,
	 * that is the same as Background seen from the outside. */
	really_delete(k, r, (size_t)at, policy);
	*deleted = true;
	return 0;
}

static void finalize_one(struct emu_kube *k, const char *ns)
{
	struct kube_res *nsr = namespaces_res(k);
	char prefix[300];
	size_t plen;
	long at;

	/* Only a namespace still being deleted (a load may have replaced it meanwhile). */
	at = find_index(nsr, ns, NULL);
	if (at < 0 || !kj_str(nsr->items[at].obj->obj, "metadata.deletionTimestamp"))
		return;
	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s/", ns);
	for (size_t i = 0; i < k->nres; i++) {
		struct kube_res *r = k->res[i];
		size_t j;
		if (!(r->def.flags & KR_NAMESPACED))
			continue;
		/* Keys "ns/name" sort right after "ns/" (found again: the collector may cascade).
		 */
		while ((j = kube_lower_bound(r, prefix)) < r->len &&
		       strncmp(r->items[j].key, prefix, plen) == 0)
			really_delete(k, r, j, "Background");
	}
	at = find_index(nsr, ns, NULL);
	if (at >= 0 && kj_str(nsr->items[at].obj->obj, "metadata.deletionTimestamp"))
		really_delete(k, nsr, (size_t)at, "Background");
}

/* The namespace controller: empties namespaces being deleted, then removes them. */
static void namespace_finalize(struct emu *emu, void *arg)
{
	struct emu_kube *k = arg;
	json_t *pending = k->ns_pending, *v;
	size_t i;

	(void)emu;
	k->ns_timer = 0;
	k->ns_pending = json_array();
	json_array_foreach(pending, i, v) finalize_one(k, json_string_value(v));
	json_decref(pending);
}

/* ---- update ---- */
static bool spec_changed(const json_t *a, const json_t *b)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)a, key, v)
	{
		if (!strcmp(key, "metadata") || !strcmp(key, "status") || !strcmp(key, "kind") ||
		    !strcmp(key, "apiVersion"))
			continue;
		if (!json_equal(v, json_object_get(b, key)))
			return true;
	}
	json_object_foreach((json_t *)b, key, v)
	{
		if (!strcmp(key, "metadata") || !strcmp(key, "status") || !strcmp(key, "kind") ||
		    !strcmp(key, "apiVersion"))
			continue;
		if (!json_object_get(a, key))
			return true;
	}
	return false;
}

int kube_update(struct emu_kube *k, struct kube_res *r, const char *ns, const char *name,
		json_t *obj, enum kube_write_mode mode, unsigned flags, struct kube_err *e,
		struct kobj **out)
{
	const json_t *old, *ometa;
	json_t *meta, *nobj = NULL, *req_mf = NULL, *pre = NULL;
	const char *body_name, *body_ns, *body_rv, *old_rv;
	static const char *const kept[] = {"uid", "creationTimestamp", "deletionTimestamp",
					   "deletionGracePeriodSeconds", "generation"};
	struct kobj *o;
	char key[600];
	long at;
	int ret;

	if (out)
		*out = NULL;
	if (!check_type(r, obj, e)) {
		ret = -EINVAL;
		goto cleanup;
	}
	meta = kj_obj(obj, "metadata");
	req_mf = strip_server_fields(meta, flags);
	body_name = kj_str(meta, "name");
	if (body_name && strcmp(body_name, name) != 0) {
		ret =
		    kube_errf(e, 400, "BadRequest",
			      "the name of the object (%s) does not match the name on the URL (%s)",
			      body_name, name);
		goto cleanup;
	}
	kube_key(r, ns, name, key, sizeof(key));
	at = find_index(r, key, NULL);
	if (at < 0) {
		ret = kube_err_not_found(e, r, name);
		goto cleanup;
	}
	old = r->items[at].obj->obj;
	ometa = json_object_get(old, "metadata");
	body_ns = kj_str(meta, "namespace");
	if ((r->def.flags & KR_NAMESPACED) && body_ns && body_ns[0] && strcmp(body_ns, ns) != 0) {
		ret = kube_errf(
		    e, 400, "BadRequest",
		    "the namespace of the provided object does not match the namespace sent on the request");
		goto cleanup;
	}
	body_rv = kj_str(meta, "resourceVersion");
	old_rv = kj_str(ometa, "resourceVersion");
	if (body_rv && body_rv[0] && strcmp(body_rv, old_rv ? old_rv : "") != 0) {
		ret = kube_err_conflict(
		    e, r, name,
		    "the object has been modified; please apply your changes to the latest version and try again");
		goto cleanup;
	}
	if (mode == KW_STATUS) {
		/* Status writes change status only (ResetObjectMetaForStatus keeps metadata). */
		nobj = json_deep_copy(old);
		if (json_object_get(obj, "status"))
			json_object_set(nobj, "status", json_object_get(obj, "status"));
		else
			json_object_del(nobj, "status");
		json_decref(obj);
		obj = nobj;
		nobj = NULL;
		meta = kj_obj(obj, "metadata");
	} else if (mode == KW_MAIN && (r->def.flags & KR_STATUS)) {
		if (json_object_get(old, "status"))
			json_object_set_new(obj, "status",
					    json_deep_copy(json_object_get(old, "status")));
		else
			json_object_del(obj, "status");
	}
	/* Immutable metadata comes from the stored object. */
	json_object_set_new(meta, "name", json_string(name));
	if (r->def.flags & KR_NAMESPACED)
		json_object_set_new(meta, "namespace", json_string(ns));
	else
		json_object_del(meta, "namespace");
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		json_t *v = json_object_get(ometa, kept[i]);
		if (mode == KW_INTERNAL && json_object_get(meta, kept[i]) &&
		    strcmp(kept[i], "uid") && strcmp(kept[i], "creationTimestamp"))
			continue; /* the controllers' deletion path sets deletionTimestamp */
		if (v)
			json_object_set_new(meta, kept[i], json_deep_copy(v));
		else
			json_object_del(meta, kept[i]);
	}
	json_object_set_new(meta, "resourceVersion", json_string(old_rv ? old_rv : ""));
	pre = before_admission(r, obj, flags);
	/* Controllers pass the same validation: the CCM's patch is refused like anyone's. */
	ret = kube_admit_update(k, r, old, obj, e);
	if (ret < 0)
		goto cleanup;
	obj = canonical(r, obj);
	if (!(flags & (KWF_APPLIED | KWF_UNTRACKED)))
		kube_managed_update(r, old, obj, json_incref(req_mf), pre, mode, writer(k, flags));
	json_decref(req_mf);
	json_decref(pre);
	req_mf = pre = NULL;
	meta = kj_obj(obj, "metadata");
	if (json_equal(obj, old)) {
		/* Nothing changed: no new resourceVersion, no event. */
		json_decref(obj);
		if (out)
			*out = kobj_ref(r->items[at].obj);
		return 0;
	}
	if ((r->def.flags & KR_GENERATION) && spec_changed(obj, old))
		json_object_set_new(
		    meta, "generation",
		    json_integer(json_integer_value(json_object_get(ometa, "generation")) + 1));
	if (flags & KWF_DRY_RUN) {
		o = kobj_new(obj);
		if (out)
			*out = o;
		else
			kobj_unref(o);
		return o ? 0 : -ENOMEM;
	}
	/* The last finalizer of an object being deleted is gone: it goes now. */
	if (json_object_get(meta, "deletionTimestamp") &&
	    json_array_size(json_object_get(meta, "finalizers")) == 0 &&
	    strcmp(r->def.resource, "namespaces") != 0) {
		json_decref(obj);
		if (out)
			*out = kobj_ref(r->items[at].obj);
		really_delete(k, r, (size_t)at, "Background");
		return 0;
	}
	set_rv(obj, ++k->rv);
	o = kobj_new(obj);
	if (!o)
		return kube_errf(e, 500, "InternalError", "out of memory");
	{
		struct kobj *prev = r->items[at].obj;
		r->owned += (size_t)has_owner_refs(o->obj) - (size_t)has_owner_refs(prev->obj);
		index_owners(k, r, r->items[at].key, prev->obj, false);
		index_owners(k, r, r->items[at].key, o->obj, true);
		r->items[at].obj = kobj_ref(o);
		ring_push(k, KEV_MODIFIED, r, o, prev);
		/* Out of the store: the ring keeps it small (a caller may still read its
		 * metadata, which stays). */
		kobj_slim(prev, r);
		kobj_unref(prev);
	}
	if (out)
		*out = o;
	else
		kobj_unref(o);
	return 0;
cleanup:
	json_decref(obj);
	json_decref(nobj);
	json_decref(req_mf);
	json_decref(pre);
	return ret;
}

/* ---- loading ---- */
int kube_store_put_loaded(struct emu_kube *k, struct kube_res *r, json_t *obj)
{
	json_t *meta = kj_obj(obj, "metadata");
	const char *name = kj_str(meta, "name"), *ns = kj_str(meta, "namespace"), *rv;
	char key[600], uid[37];
	struct kobj *o;
	uint64_t v;

	if (!name || !name[0] || ((r->def.flags & KR_NAMESPACED) && (!ns || !ns[0]))) {
		json_decref(obj);
		return -EINVAL;
	}
	if (!kj_str(meta, "uid")) {
		kube_uuid(uid);
		json_object_set_new(meta, "uid", json_string(uid));
	}
	if (!kj_str(meta, "creationTimestamp"))
		json_object_set_new(meta, "creationTimestamp", kj_now());
	if (!kube_managed_sanitize(obj))
		log_warn("kube state: %s %s%s%s: managedFields that do not decode, dropped",
			 r->def.kind, ns ? ns : "", ns ? "/" : "", name);
	rv = kj_str(meta, "resourceVersion");
	v = rv ? strtoull(rv, NULL, 10) : 0;
	if (!v)
		set_rv(obj, ++k->rv);
	else if (v > k->rv)
		k->rv = v;
	obj = canonical(r, obj);
	kube_key(r, ns, name, key, sizeof(key));
	o = kobj_new(obj);
	if (!o)
		return -ENOMEM;
	if (insert_entry(k, r, r->len, key, o) < 0) {
		kobj_unref(o);
		return -ENOMEM;
	}
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kube_entry *)a)->key, ((const struct kube_entry *)b)->key);
}

void kube_store_sort(struct emu_kube *k)
{
	for (size_t i = 0; i < k->nres; i++) {
		struct kube_res *r = k->res[i];
		size_t out = 0;
		if (r->len < 2)
			continue;
		qsort(r->items, r->len, sizeof(r->items[0]), entry_cmp);
		/* Duplicate keys in a hand-written state: the last one wins. */
		for (size_t j = 0; j < r->len; j++) {
			if (out && strcmp(r->items[out - 1].key, r->items[j].key) == 0) {
				free(r->items[out - 1].key);
				kobj_unref(r->items[out - 1].obj);
				r->items[out - 1] = r->items[j];
				continue;
			}
			r->items[out++] = r->items[j];
		}
		r->len = out;
	}
	k->window_rv = k->rv;
}

/* ---- events about objects (core/v1 Event, as client-go's recorder writes them) ---- */
void kube_record_event(struct emu_kube *k, struct kube_res *r, const struct kobj *obj,
		       const char *type, const char *reason, const char *component, const char *fmt,
		       ...)
{
	struct kube_res *evr = kube_res_find(k, "", "v1", "events");
	const char *ns = (r->def.flags & KR_NAMESPACED) ? kobj_namespace(obj) : "default";
	char message[1024], name[400], prefix[300];
	struct timespec ts;
	json_t *ev, *involved;
	struct kube_err ie = {0};
	size_t i;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	/* The correlator: the same event again bumps count and lastTimestamp. */
	snprintf(prefix, sizeof(prefix), "%s/%s.", ns, kobj_name(obj));
	for (i = kube_lower_bound(evr, prefix); i < evr->len; i++) {
		const json_t *x = evr->items[i].obj->obj;
		if (strncmp(evr->items[i].key, prefix, strlen(prefix)) != 0)
			break;
		if (!strcmp(kj_str(x, "reason") ?: "", reason) &&
		    !strcmp(kj_str(x, "message") ?: "", message) &&
		    !strcmp(kj_str(x, "involvedObject.uid") ?: "", kobj_uid(obj)) &&
		    !strcmp(kj_str(x, "source.component") ?: "", component)) {
			json_t *n = json_deep_copy(x);
			json_object_set_new(
			    n, "count",
			    json_integer(json_integer_value(json_object_get(x, "count")) + 1));
			json_object_set_new(n, "lastTimestamp", kj_now());
			kube_update(k, evr, ns, kobj_name(evr->items[i].obj), n, KW_INTERNAL,
				    KWF_CONTROLLER, &ie, NULL);
			kube_err_clear(&ie);
			return;
		}
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(name, sizeof(name), "%s.%llx", kobj_name(obj),
		 (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec);
	involved = json_pack("{s:s, s:s, s:s, s:s}", "kind", r->def.kind, "name", kobj_name(obj),
			     "uid", kobj_uid(obj), "apiVersion", r->api_version);
	if (r->def.flags & KR_NAMESPACED)
		json_object_set_new(involved, "namespace", json_string(kobj_namespace(obj)));
	ev = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o, s:s, s:s, s:{s:s}, s:o, s:o, s:i, s:s, s:n, "
		       "s:s, s:s}",
		       "kind", "Event", "apiVersion", "v1", "metadata", "name", name, "namespace",
		       ns, "involvedObject", involved, "reason", reason, "message", message,
		       "source", "component", component, "firstTimestamp", kj_now(),
		       "lastTimestamp", kj_now(), "count", 1, "type", type, "eventTime",
		       "reportingComponent", component, "reportingInstance", "");
	if (!ev)
		return;
	kube_create(k, evr, ns, ev, KWF_CONTROLLER, &ie, NULL);
	kube_err_clear(&ie);
}
