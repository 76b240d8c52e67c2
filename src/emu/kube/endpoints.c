/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Endpoints and EndpointSlices, as kube-controller-manager's endpoint and endpointslice
 * controllers and the API server's own endpoint reconciler keep them.
 *
 * Services with a selector (kubernetes pkg/controller/endpoint/endpoints_controller.go
 * syncService, pkg/controller/endpointslice with staging k8s.io/endpointslice reconciler.go):
 *   - the pods of the service's namespace whose labels match the selector and that
 *     ShouldPodBeInEndpoints: with a pod IP, not finished (by restartPolicy), and for
 *     Endpoints not terminating unless publishNotReadyAddresses;
 *   - each service port resolved on each pod (podutil.FindPort: a numeric targetPort as is,
 *     a named one from the pod's container ports; a pod without it is left out of that port);
 *   - Endpoints NAME: the service's labels (plus service.kubernetes.io/headless for a
 *     headless service), subsets repacked by port set (RepackSubsets), Ready pods in
 *     addresses, the others in notReadyAddresses, each with nodeName and a Pod targetRef;
 *     annotation endpoints.kubernetes.io/last-change-trigger-time; at most 1000 addresses
 *     (then endpoints.kubernetes.io/over-capacity: truncated);
 *   - EndpointSlices NAME-xxxxx (generateName), one per port set and 100 endpoints at most,
 *     addressType IPv4, labels kubernetes.io/service-name and
 *     endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io (with the
 *     service's own labels), owned by the Service (controller, blockOwnerDeletion);
 *     endpoints with conditions ready / serving / terminating, nodeName, zone (the Node's
 *     topology.kubernetes.io/zone) and targetRef; a service without endpoints keeps one
 *     empty placeholder slice.
 *   Services without a selector are left to their owners; ExternalName services get no
 *   slices. Deleting a Service deletes its Endpoints (its slices are collected as its
 *   dependents).
 *
 * default/kubernetes (pkg/controlplane/reconcilers endpointsadapter.go, lease reconciler):
 *   Endpoints with label endpointslice.kubernetes.io/skip-mirror=true and one subset, and an
 *   EndpointSlice named kubernetes with only kubernetes.io/service-name, endpoints ready,
 *   port https. The addresses are the API server's advertise addresses: on Talos each
 *   control plane runs kube-apiserver on its node IP, port 6443, so they are the InternalIPs
 *   of the Ready control-plane Nodes with port 6443. A cluster without such a Node (an API
 *   used without instances) is served by the emulator alone: its kube listen address and
 *   port, as a client reaches it.
 *
 * Changes are coalesced: an event marks services dirty and a zero-delay timer reconciles
 * them, writing only what differs (an unchanged reconcile writes nothing).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "emu/kube/kube.h"

#define MAX_ENDPOINTS_PER_SLICE 100  /* --max-endpoints-per-slice default */
#define MAX_ENDPOINTS_CAPACITY  1000 /* endpoints controller maxCapacity */
#define SLICE_MANAGER           "endpointslice-controller.k8s.io"
#define KCM                     "kube-controller-manager"
#define APISERVER_PORT          6443
#define LABEL_SERVICE_NAME      "kubernetes.io/service-name"
#define LABEL_MANAGED_BY        "endpointslice.kubernetes.io/managed-by"
#define LABEL_HEADLESS          "service.kubernetes.io/headless"
#define LABEL_SKIP_MIRROR       "endpointslice.kubernetes.io/skip-mirror"
#define ANNOT_TRIGGER           "endpoints.kubernetes.io/last-change-trigger-time"
#define ANNOT_OVER_CAPACITY     "endpoints.kubernetes.io/over-capacity"

struct kube_ep {
	struct emu_kube *k;
	json_t *dirty; /* "ns/name" -> true */
	long timer;
};

static struct kube_res *res(struct emu_kube *k, const char *group, const char *resource)
{
	return kube_res_find(k, group, "v1", resource);
}

static bool is_core(const struct kube_res *r, const char *resource)
{
	return !r->def.group[0] && !strcmp(r->def.resource, resource);
}

/* ---- helpers ---- */
static bool selector_matches(const json_t *selector, const json_t *labels)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)selector, key, v)
	{
		const char *have = json_string_value(json_object_get(labels, key));
		if (!have || !json_is_string(v) || strcmp(have, json_string_value(v)))
			return false;
	}
	return true;
}

static bool pod_ready(const json_t *pod)
{
	json_t *c;
	size_t i;

	json_array_foreach(kj_path(pod, "status.conditions"), i, c)
	{
		if (!strcmp(kj_str(c, "type") ?: "", "Ready"))
			return !strcmp(kj_str(c, "status") ?: "", "True");
	}
	return false;
}

/* The pod's IPv4 address (status.podIPs, else status.podIP), or NULL. */
static const char *pod_ipv4(const json_t *pod)
{
	json_t *p;
	size_t i;
	struct in_addr a;

	json_array_foreach(kj_path(pod, "status.podIPs"), i, p)
	{
		const char *ip = kj_str(p, "ip");
		if (ip && inet_pton(AF_INET, ip, &a) == 1)
			return ip;
	}
	if (kj_str(pod, "status.podIP") && inet_pton(AF_INET, kj_str(pod, "status.podIP"), &a) == 1)
		return kj_str(pod, "status.podIP");
	return NULL;
}

/* endpointsliceutil.ShouldPodBeInEndpoints */
static bool pod_in_endpoints(const json_t *pod, bool include_terminating)
{
	const char *policy = kj_str(pod, "spec.restartPolicy") ?: "Always";
	const char *phase = kj_str(pod, "status.phase") ?: "";

	if (!pod_ipv4(pod))
		return false;
	if (!include_terminating && kj_str(pod, "metadata.deletionTimestamp"))
		return false;
	if (!strcmp(policy, "Never"))
		return strcmp(phase, "Failed") && strcmp(phase, "Succeeded");
	if (!strcmp(policy, "OnFailure"))
		return strcmp(phase, "Succeeded") != 0;
	return true;
}

/* podutil.FindPort: the pod's port for a service port; -1 when it has none. */
static json_int_t find_port(const json_t *pod, const json_t *sp)
{
	const json_t *tp = json_object_get(sp, "targetPort");
	const char *proto = kj_str(sp, "protocol") ?: "TCP";
	json_t *c, *p;
	size_t i, j;

	if (!tp)
		tp = json_object_get(sp, "port");
	if (json_is_integer(tp))
		return json_integer_value(tp);
	if (!json_is_string(tp))
		return -1;
	json_array_foreach(kj_path(pod, "spec.containers"), i, c)
	{
		json_array_foreach(json_object_get(c, "ports"), j, p)
		{
			if (!strcmp(kj_str(p, "name") ?: "", json_string_value(tp)) &&
			    !strcmp(kj_str(p, "protocol") ?: "TCP", proto))
				return json_integer_value(json_object_get(p, "containerPort"));
		}
	}
	return -1;
}

static json_t *target_ref(const json_t *pod)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "kind", "Pod", "namespace",
			 kj_str(pod, "metadata.namespace") ?: "", "name",
			 kj_str(pod, "metadata.name") ?: "", "uid",
			 kj_str(pod, "metadata.uid") ?: "");
}

static bool headless(const json_t *svc)
{
	const char *ip = kj_str(svc, "spec.clusterIP");

	return !ip || !ip[0] || !strcmp(ip, "None");
}

/* RFC 3339 with nanoseconds, trailing zeros trimmed (time.RFC3339Nano). */
static void now_nano(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;
	char frac[16];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(frac, sizeof(frac), ".%09ld", ts.tv_nsec);
	for (size_t i = strlen(frac); i > 1 && frac[i - 1] == '0'; i--)
		frac[i - 1] = '\0';
	snprintf(buf + n, len - n, "%sZ", strlen(frac) > 1 ? frac : "");
}

/* Writes obj as the controller named manager: create, or update when it differs. */
static void put(struct emu_kube *k, struct kube_res *r, const char *ns, json_t *obj,
		const char *manager)
{
	struct kube_err e = {0};
	const char *prev = k->ctrl_manager;
	struct kobj *cur = kube_get(r, ns, kj_str(obj, "metadata.name") ?: "");

	k->ctrl_manager = manager;
	if (cur) {
		json_object_set(kj_obj(obj, "metadata"), "resourceVersion",
				kj_path(cur->obj, "metadata.resourceVersion"));
		json_object_set(kj_obj(obj, "metadata"), "managedFields",
				kj_path(cur->obj, "metadata.managedFields"));
		kube_update(k, r, ns, kobj_name(cur), obj, KW_INTERNAL, KWF_CONTROLLER, &e, NULL);
	} else {
		kube_create(k, r, ns, obj, KWF_CONTROLLER, &e, NULL);
	}
	k->ctrl_manager = prev;
	if (e.code && e.code != 403) /* 403: the namespace is terminating */
		log_warn("kube: endpoints: cannot write %s %s/%s: %s", r->def.resource, ns,
			 kj_str(obj, "metadata.name") ?: "?", e.message);
	kube_err_clear(&e);
}

static void drop(struct emu_kube *k, struct kube_res *r, const char *ns, const char *name,
		 const char *manager)
{
	struct kube_err e = {0};
	const char *prev = k->ctrl_manager;
	bool deleted;

	k->ctrl_manager = manager;
	kube_delete(k, r, ns, name, NULL, KWF_CONTROLLER, &e, NULL, &deleted);
	k->ctrl_manager = prev;
	kube_err_clear(&e);
}

/* Current metadata kept, the rest replaced: is anything different? */
static bool same_content(const json_t *cur, const json_t *want, const char *const *fields)
{
	for (; *fields; fields++) {
		const json_t *a = kj_path(cur, *fields), *b = kj_path(want, *fields);
		if (!a && !b)
			continue;
		if (!a || !b || !json_equal((json_t *)a, (json_t *)b))
			return false;
	}
	return true;
}

/* ---- Endpoints of a selected service ---- */
static int addr_cmp(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
	int c = strcmp(kj_str(x, "ip") ?: "", kj_str(y, "ip") ?: "");

	return c ? c : strcmp(kj_str(x, "targetRef.uid") ?: "", kj_str(y, "targetRef.uid") ?: "");
}

static void sort_array(json_t *arr, int (*cmp)(const void *, const void *))
{
	size_t n = json_array_size(arr);
	json_t **items;

	if (n < 2)
		return;
	items = malloc(n * sizeof(*items));
	if (!items)
		return;
	for (size_t i = 0; i < n; i++)
		items[i] = json_incref(json_array_get(arr, i));
	qsort(items, n, sizeof(*items), cmp);
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, items[i]);
	free(items);
}

static int port_cmp(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
	int c = strcmp(kj_str(x, "name") ?: "", kj_str(y, "name") ?: "");

	if (c)
		return c;
	c = (int)(json_integer_value(json_object_get(x, "port")) -
		  json_integer_value(json_object_get(y, "port")));
	return c ? c : strcmp(kj_str(x, "protocol") ?: "", kj_str(y, "protocol") ?: "");
}

static int subset_cmp(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
	const json_t *xa = json_array_get(json_object_get(x, "addresses"), 0)
			       ?: json_array_get(json_object_get(x, "notReadyAddresses"), 0);
	const json_t *ya = json_array_get(json_object_get(y, "addresses"), 0)
			       ?: json_array_get(json_object_get(y, "notReadyAddresses"), 0);

	return addr_cmp(&xa, &ya);
}

/* The pod's endpoint ports for the service (EndpointPort of core/v1), in service order. */
static json_t *pod_ports(const json_t *svc, const json_t *pod, bool slice)
{
	json_t *out = json_array(), *sp;
	size_t i;

	json_array_foreach(kj_path(svc, "spec.ports"), i, sp)
	{
		json_int_t port = find_port(pod, sp);
		json_t *p;
		if (port < 0)
			continue;
		p = json_object();
		if (slice || (kj_str(sp, "name") && kj_str(sp, "name")[0]))
			json_object_set_new(p, "name", json_string(kj_str(sp, "name") ?: ""));
		json_object_set_new(p, "port", json_integer(port));
		json_object_set_new(p, "protocol", json_string(kj_str(sp, "protocol") ?: "TCP"));
		if (kj_str(sp, "appProtocol"))
			json_object_set(p, "appProtocol", json_object_get(sp, "appProtocol"));
		json_array_append_new(out, p);
	}
	return out;
}

static bool hostname_for(const json_t *svc, const json_t *pod)
{
	/* ShouldSetHostname */
	return kj_str(pod, "spec.hostname") && kj_str(pod, "spec.hostname")[0] &&
	       !strcmp(kj_str(pod, "spec.subdomain") ?: "", kj_str(svc, "metadata.name") ?: "");
}

static json_t *endpoints_subsets(struct emu_kube *k, const json_t *svc, const json_t *pods)
{
	bool publish = json_is_true(kj_path(svc, "spec.publishNotReadyAddresses"));
	bool no_ports = !json_array_size(kj_path(svc, "spec.ports"));
	json_t *groups = json_object(), *subsets = json_array(), *pod, *g;
	const char *key;
	size_t i, total = 0;

	(void)k;
	/* RepackSubsets: addresses grouped by the set of ports they offer */
	json_array_foreach(pods, i, pod)
	{
		json_t *ports, *addr;
		char *gk;
		bool ready;
		if (!pod_in_endpoints(pod, publish))
			continue;
		if (no_ports && !headless(svc))
			continue;
		ports = no_ports ? json_array() : pod_ports(svc, pod, false);
		if (!no_ports && !json_array_size(ports)) {
			json_decref(ports);
			continue;
		}
		sort_array(ports, port_cmp);
		gk = json_dumps(ports, JSON_COMPACT | JSON_SORT_KEYS);
		g = json_object_get(groups, gk);
		if (!g) {
			g = json_pack("{s:[], s:[], s:O}", "addresses", "notReadyAddresses",
				      "ports", ports);
			json_object_set_new(groups, gk, g);
		}
		free(gk);
		json_decref(ports);
		addr = json_pack("{s:s}", "ip", pod_ipv4(pod));
		if (hostname_for(svc, pod))
			json_object_set(addr, "hostname", kj_path(pod, "spec.hostname"));
		if (kj_str(pod, "spec.nodeName"))
			json_object_set(addr, "nodeName", kj_path(pod, "spec.nodeName"));
		json_object_set_new(addr, "targetRef", target_ref(pod));
		ready = publish || pod_ready(pod);
		json_array_append_new(json_object_get(g, ready ? "addresses" : "notReadyAddresses"),
				      addr);
	}
	json_object_foreach(groups, key, g)
	{
		json_t *s = json_object();
		sort_array(json_object_get(g, "addresses"), addr_cmp);
		sort_array(json_object_get(g, "notReadyAddresses"), addr_cmp);
		if (json_array_size(json_object_get(g, "addresses")))
			json_object_set(s, "addresses", json_object_get(g, "addresses"));
		if (json_array_size(json_object_get(g, "notReadyAddresses")))
			json_object_set(s, "notReadyAddresses",
					json_object_get(g, "notReadyAddresses"));
		if (json_array_size(json_object_get(g, "ports")))
			json_object_set(s, "ports", json_object_get(g, "ports"));
		json_array_append_new(subsets, s);
	}
	json_decref(groups);
	sort_array(subsets, subset_cmp);
	/* truncateEndpoints: ready ones first, at most MAX_ENDPOINTS_CAPACITY */
	json_array_foreach(subsets, i, g)
	{
		total += json_array_size(json_object_get(g, "addresses")) +
			 json_array_size(json_object_get(g, "notReadyAddresses"));
	}
	if (total > MAX_ENDPOINTS_CAPACITY) {
		size_t room = MAX_ENDPOINTS_CAPACITY;
		json_array_foreach(subsets, i, g)
		{
			json_t *a = json_object_get(g, "addresses");
			while (json_array_size(a) > room)
				json_array_remove(a, json_array_size(a) - 1);
			room -= json_array_size(a);
		}
		json_array_foreach(subsets, i, g)
		{
			json_t *a = json_object_get(g, "notReadyAddresses");
			while (json_array_size(a) > room)
				json_array_remove(a, json_array_size(a) - 1);
			room -= json_array_size(a);
			if (!json_array_size(a))
				json_object_del(g, "notReadyAddresses");
		}
		return json_pack("{s:o, s:b}", "subsets", subsets, "truncated", 1);
	}
	return json_pack("{s:o, s:b}", "subsets", subsets, "truncated", 0);
}

static json_t *copy_labels(const json_t *svc)
{
	json_t *l = json_deep_copy(kj_path(svc, "metadata.labels"));

	return json_is_object(l) ? l : (json_decref(l), json_object());
}

static void sync_endpoints(struct emu_kube *k, const json_t *svc, const json_t *pods)
{
	struct kube_res *epr = res(k, "", "endpoints");
	const char *ns = kj_str(svc, "metadata.namespace"), *name = kj_str(svc, "metadata.name");
	struct kobj *cur = kube_get(epr, ns, name);
	json_t *computed = endpoints_subsets(k, svc, pods), *labels = copy_labels(svc), *want;
	json_t *subsets = json_object_get(computed, "subsets"), *annots;
	static const char *const fields[] = {"subsets", "metadata.labels", NULL};
	bool truncated = json_is_true(json_object_get(computed, "truncated"));
	char now[48];

	if (headless(svc))
		json_object_set_new(labels, LABEL_HEADLESS, json_string(""));
	want = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}}", "apiVersion", "v1", "kind", "Endpoints",
			 "metadata", "name", name, "namespace", ns, "labels", labels);
	if (json_array_size(subsets))
		json_object_set(want, "subsets", subsets);
	if (cur && same_content(cur->obj, want, fields) &&
	    !json_object_get(kj_path(cur->obj, "metadata.annotations"), ANNOT_OVER_CAPACITY) ==
		!truncated) {
		json_decref(want);
		json_decref(computed);
		return;
	}
	annots = cur ? json_deep_copy(kj_path(cur->obj, "metadata.annotations")) : NULL;
	if (!json_is_object(annots)) {
		json_decref(annots);
		annots = json_object();
	}
	now_nano(now, sizeof(now));
	json_object_set_new(annots, ANNOT_TRIGGER, json_string(now));
	if (truncated)
		json_object_set_new(annots, ANNOT_OVER_CAPACITY, json_string("truncated"));
	else
		json_object_del(annots, ANNOT_OVER_CAPACITY);
	json_object_set_new(json_object_get(want, "metadata"), "annotations", annots);
	put(k, epr, ns, want, KCM);
	json_decref(computed);
}

/* ---- EndpointSlices of a selected service ---- */
static json_t *slice_endpoint(struct emu_kube *k, const json_t *svc, const json_t *pod)
{
	bool publish = json_is_true(kj_path(svc, "spec.publishNotReadyAddresses"));
	bool terminating = kj_str(pod, "metadata.deletionTimestamp") != NULL;
	bool ready = pod_ready(pod);
	json_t *ep = json_pack("{s:[s], s:{s:b, s:b, s:b}}", "addresses", pod_ipv4(pod),
			       "conditions", "ready", publish || (ready && !terminating), "serving",
			       publish || ready, "terminating", terminating);
	const char *node = kj_str(pod, "spec.nodeName");

	if (hostname_for(svc, pod))
		json_object_set(ep, "hostname", kj_path(pod, "spec.hostname"));
	json_object_set_new(ep, "targetRef", target_ref(pod));
	if (node) {
		struct kobj *n = kube_get(res(k, "", "nodes"), NULL, node);
		const char *zone =
		    n ? json_string_value(json_object_get(kj_path(n->obj, "metadata.labels"),
							  "topology.kubernetes.io/zone"))
		      : NULL;
		json_object_set_new(ep, "nodeName", json_string(node));
		if (zone)
			json_object_set_new(ep, "zone", json_string(zone));
	}
	return ep;
}

static int endpoint_cmp(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;

	return strcmp(json_string_value(json_array_get(json_object_get(x, "addresses"), 0)) ?: "",
		      json_string_value(json_array_get(json_object_get(y, "addresses"), 0)) ?: "");
}

static json_t *slice_labels(const json_t *svc)
{
	json_t *l = copy_labels(svc);

	json_object_del(l, LABEL_SERVICE_NAME);
	json_object_del(l, LABEL_MANAGED_BY);
	json_object_set_new(l, LABEL_SERVICE_NAME, json_string(kj_str(svc, "metadata.name")));
	json_object_set_new(l, LABEL_MANAGED_BY, json_string(SLICE_MANAGER));
	if (headless(svc))
		json_object_set_new(l, LABEL_HEADLESS, json_string(""));
	else
		json_object_del(l, LABEL_HEADLESS);
	return l;
}

/* The slices this controller manages for the service, by name. */
static json_t *managed_slices(struct emu_kube *k, const char *ns, const char *svc_name)
{
	struct kube_res *sr = res(k, "discovery.k8s.io", "endpointslices");
	json_t *out = json_object();
	char prefix[300];
	size_t plen = (size_t)snprintf(prefix, sizeof(prefix), "%s/", ns);

	for (size_t i = kube_lower_bound(sr, prefix); i < sr->len; i++) {
		const json_t *o = sr->items[i].obj->obj;
		const json_t *labels = kj_path(o, "metadata.labels");
		if (strncmp(sr->items[i].key, prefix, plen))
			break;
		if (!strcmp(json_string_value(json_object_get(labels, LABEL_SERVICE_NAME)) ?: "",
			    svc_name) &&
		    !strcmp(json_string_value(json_object_get(labels, LABEL_MANAGED_BY)) ?: "",
			    SLICE_MANAGER))
			json_object_set(out, kobj_name(sr->items[i].obj), (json_t *)o);
	}
	return out;
}

static void sync_slices(struct emu_kube *k, const json_t *svc, const json_t *pods)
{
	struct kube_res *sr = res(k, "discovery.k8s.io", "endpointslices");
	const char *ns = kj_str(svc, "metadata.namespace"), *name = kj_str(svc, "metadata.name");
	json_t *have = managed_slices(k, ns, name), *groups = json_object(), *want = json_array();
	json_t *pod, *g, *labels = slice_labels(svc), *owner, *used = json_object();
	static const char *const fields[] = {
	    "endpoints", "ports", "addressType", "metadata.labels", "metadata.ownerReferences",
	    NULL};
	const char *key, *sname;
	size_t i;
	char prefix[300];

	owner = json_pack("[{s:s, s:s, s:s, s:s, s:b, s:b}]", "apiVersion", "v1", "kind", "Service",
			  "name", name, "uid", kj_str(svc, "metadata.uid") ?: "", "controller", 1,
			  "blockOwnerDeletion", 1);
	/* endpoints grouped by their port set */
	if (strcmp(kj_str(svc, "spec.type") ?: "", "ExternalName")) {
		json_array_foreach(pods, i, pod)
		{
			json_t *ports;
			char *gk;
			if (!pod_in_endpoints(pod, true))
				continue;
			ports = pod_ports(svc, pod, true);
			gk = json_dumps(ports, JSON_COMPACT | JSON_SORT_KEYS);
			g = json_object_get(groups, gk);
			if (!g) {
				g = json_pack("{s:O, s:[]}", "ports", ports, "endpoints");
				json_object_set_new(groups, gk, g);
			}
			free(gk);
			json_decref(ports);
			json_array_append_new(json_object_get(g, "endpoints"),
					      slice_endpoint(k, svc, pod));
		}
		json_object_foreach(groups, key, g)
		{
			json_t *eps = json_object_get(g, "endpoints");
			sort_array(eps, endpoint_cmp);
			for (size_t off = 0; off < json_array_size(eps);
			     off += MAX_ENDPOINTS_PER_SLICE) {
				json_t *chunk = json_array();
				for (size_t j = off;
				     j < json_array_size(eps) && j < off + MAX_ENDPOINTS_PER_SLICE;
				     j++)
					json_array_append(chunk, json_array_get(eps, j));
				json_array_append_new(want, json_pack("{s:O, s:o}", "ports",
								      json_object_get(g, "ports"),
								      "endpoints", chunk));
			}
		}
		if (!json_array_size(want)) /* the placeholder slice */
			json_array_append_new(want, json_pack("{s:n, s:n}", "ports", "endpoints"));
	}
	snprintf(prefix, sizeof(prefix), "%.250s-", name);
	json_array_foreach(want, i, g)
	{
		json_t *slice = json_pack(
		    "{s:s, s:s, s:{s:s, s:O, s:O}, s:s, s:O, s:O}", "apiVersion",
		    "discovery.k8s.io/v1", "kind", "EndpointSlice", "metadata", "namespace", ns,
		    "labels", labels, "ownerReferences", owner, "addressType", "IPv4", "endpoints",
		    json_object_get(g, "endpoints"), "ports", json_object_get(g, "ports"));
		json_t *match = NULL, *reuse = NULL, *h;
		/* reuse a slice with the same ports (then any spare one), as the reconciler does */
		json_object_foreach(have, sname, h)
		{
			if (json_object_get(used, sname))
				continue;
			if (json_equal(json_object_get(h, "ports") ?: json_null(),
				       json_object_get(slice, "ports") ?: json_null())) {
				match = json_string(sname);
				break;
			}
			if (!reuse)
				reuse = json_string(sname);
		}
		if (!match && reuse)
			match = json_incref(reuse);
		json_decref(reuse);
		if (match) {
			const json_t *cur = json_object_get(have, json_string_value(match));
			json_object_set_new(used, json_string_value(match), json_true());
			json_object_set(json_object_get(slice, "metadata"), "name", match);
			if (!same_content(cur, slice, fields)) {
				json_t *annots =
				    json_deep_copy(kj_path(cur, "metadata.annotations"));
				char now[48];
				if (!json_is_object(annots)) {
					json_decref(annots);
					annots = json_object();
				}
				now_nano(now, sizeof(now));
				json_object_set_new(annots, ANNOT_TRIGGER, json_string(now));
				json_object_set_new(json_object_get(slice, "metadata"),
						    "annotations", annots);
				put(k, sr, ns, json_incref(slice), KCM);
			}
			json_decref(match);
		} else {
			char now[48];
			now_nano(now, sizeof(now));
			json_object_set_new(json_object_get(slice, "metadata"), "generateName",
					    json_string(prefix));
			json_object_set_new(json_object_get(slice, "metadata"), "annotations",
					    json_pack("{s:s}", ANNOT_TRIGGER, now));
			put(k, sr, ns, json_incref(slice), KCM);
		}
		json_decref(slice);
	}
	json_object_foreach(have, sname, pod)
	{
		if (!json_object_get(used, sname))
			drop(k, sr, ns, sname, KCM);
	}
	json_decref(have);
	json_decref(groups);
	json_decref(want);
	json_decref(labels);
	json_decref(owner);
	json_decref(used);
}

static void sync_service(struct emu_kube *k, const char *key)
{
	struct kube_res *svcr = res(k, "", "services"), *podr = res(k, "", "pods");
	char ns[256], name[300], prefix[300];
	const char *slash = strchr(key, '/');
	struct kobj *svc;
	json_t *pods, *selector;
	size_t plen;

	if (!slash || (size_t)(slash - key) >= sizeof(ns))
		return;
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
	snprintf(name, sizeof(name), "%s", slash + 1);
	svc = kube_get(svcr, ns, name);
	if (!svc) {
		/* the service is gone: so are its Endpoints (its slices are its dependents) */
		if (kube_get(res(k, "", "endpoints"), ns, name))
			drop(k, res(k, "", "endpoints"), ns, name, KCM);
		return;
	}
	selector = kj_path(svc->obj, "spec.selector");
	if (!json_is_object(selector))
		return; /* no selector: endpoints are its owner's business */
	if (!strcmp(kj_str(svc->obj, "spec.type") ?: "", "ExternalName")) {
		sync_slices(k, svc->obj, NULL); /* removes what this controller made */
		return;
	}
	pods = json_array();
	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s/", ns);
	for (size_t i = kube_lower_bound(podr, prefix); i < podr->len; i++) {
		struct kobj *p = podr->items[i].obj;
		if (strncmp(podr->items[i].key, prefix, plen))
			break;
		if (selector_matches(selector, kj_path(p->obj, "metadata.labels")))
			json_array_append(pods, p->obj);
	}
	{
		json_t *svcobj = json_incref(svc->obj); /* writes below may replace svc */
		sync_endpoints(k, svcobj, pods);
		sync_slices(k, svcobj, pods);
		json_decref(svcobj);
	}
	json_decref(pods);
}

/* ---- default/kubernetes ---- */
static bool control_plane(const json_t *node)
{
	return json_object_get(kj_path(node, "metadata.labels"),
			       "node-role.kubernetes.io/control-plane") != NULL;
}

static bool node_ready(const json_t *node)
{
	json_t *c;
	size_t i;

	json_array_foreach(kj_path(node, "status.conditions"), i, c)
	{
		if (!strcmp(kj_str(c, "type") ?: "", "Ready"))
			return !strcmp(kj_str(c, "status") ?: "", "True");
	}
	return false;
}

static const char *internal_ip(const json_t *node)
{
	json_t *a;
	size_t i;
	struct in_addr x;

	json_array_foreach(kj_path(node, "status.addresses"), i, a)
	{
		const char *ip = kj_str(a, "address");
		if (!strcmp(kj_str(a, "type") ?: "", "InternalIP") && ip &&
		    inet_pton(AF_INET, ip, &x) == 1)
			return ip;
	}
	return NULL;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(json_string_value(*(const json_t *const *)a),
		      json_string_value(*(const json_t *const *)b));
}

static void sync_apiserver(struct emu_kube *k)
{
	struct kube_res *nodes = res(k, "", "nodes"), *epr = res(k, "", "endpoints");
	struct kube_res *sr = res(k, "discovery.k8s.io", "endpointslices");
	json_t *ips = json_array(), *addrs = json_array(), *eps = json_array(), *ip, *want;
	json_int_t port = APISERVER_PORT;
	struct kobj *cur;
	size_t i;
	static const char *const ep_fields[] = {"subsets", "metadata.labels", NULL};
	static const char *const slice_fields[] = {"endpoints", "ports", "metadata.labels",
						   "addressType", NULL};

	if (!kube_get(res(k, "", "services"), "default", "kubernetes"))
		return;
	for (i = 0; i < nodes->len; i++) {
		const json_t *n = nodes->items[i].obj->obj;
		const char *a = internal_ip(n);
		if (a && control_plane(n) && node_ready(n))
			json_array_append_new(ips, json_string(a));
	}
	if (!json_array_size(ips)) {
		/* no control plane Node: the emulator itself serves the API */
		const char *url = k->emu->kube_url, *host = strstr(url, "://");
		const char *colon = host ? strrchr(host + 3, ':') : NULL;
		char addr[64];
		struct in_addr x;
		if (colon && (size_t)(colon - host - 3) < sizeof(addr)) {
			snprintf(addr, sizeof(addr), "%.*s", (int)(colon - host - 3), host + 3);
			if (inet_pton(AF_INET, addr, &x) == 1) {
				json_array_append_new(ips, json_string(addr));
				port = strtol(colon + 1, NULL, 10);
			}
		}
	}
	sort_array(ips, str_cmp);
	json_array_foreach(ips, i, ip)
	{
		json_array_append_new(addrs, json_pack("{s:O}", "ip", ip));
		json_array_append_new(
		    eps, json_pack("{s:[O], s:{s:b}}", "addresses", ip, "conditions", "ready", 1));
	}
	want = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:[{s:O, s:[{s:s, s:I, s:s}]}]}",
			 "apiVersion", "v1", "kind", "Endpoints", "metadata", "name", "kubernetes",
			 "namespace", "default", "labels", LABEL_SKIP_MIRROR, "true", "subsets",
			 "addresses", addrs, "ports", "name", "https", "port", (json_int_t)port,
			 "protocol", "TCP");
	if (!json_array_size(addrs))
		json_object_del(want, "subsets");
	cur = kube_get(epr, "default", "kubernetes");
	if (!cur || !same_content(cur->obj, want, ep_fields))
		put(k, epr, "default", json_incref(want), "kube-apiserver");
	json_decref(want);
	want = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:s, s:O, s:[{s:s, s:I, s:s}]}",
			 "apiVersion", "discovery.k8s.io/v1", "kind", "EndpointSlice", "metadata",
			 "name", "kubernetes", "namespace", "default", "labels", LABEL_SERVICE_NAME,
			 "kubernetes", "addressType", "IPv4", "endpoints", eps, "ports", "name",
			 "https", "port", (json_int_t)port, "protocol", "TCP");
	cur = kube_get(sr, "default", "kubernetes");
	if (!cur || !same_content(cur->obj, want, slice_fields))
		put(k, sr, "default", json_incref(want), "kube-apiserver");
	json_decref(want);
	json_decref(ips);
	json_decref(addrs);
	json_decref(eps);
}

/* ---- the queue ---- */
static void ep_timer(struct emu *emu, void *arg)
{
	struct kube_ep *c = arg;
	json_t *dirty = c->dirty, *v;
	const char *key;

	(void)emu;
	c->timer = 0;
	c->dirty = json_object();
	json_object_foreach(dirty, key, v)
	{
		if (!strcmp(key, "default/kubernetes"))
			sync_apiserver(c->k);
		else
			sync_service(c->k, key);
	}
	json_decref(dirty);
}

static void mark(struct kube_ep *c, const char *ns, const char *name)
{
	char key[600];

	if (!c || !c->dirty)
		return;
	snprintf(key, sizeof(key), "%s/%s", ns, name);
	json_object_set_new(c->dirty, key, json_true());
	if (!c->timer) {
		c->timer = emu_timer_add(c->k->emu, 0, ep_timer, c);
		if (c->timer < 0)
			c->timer = 0;
	}
}

/* The services of ns whose selector matches one of the pod's versions. */
static void mark_services_of(struct emu_kube *k, const json_t *pod, const json_t *old)
{
	struct kube_res *svcr = res(k, "", "services");
	const char *ns = kj_str(pod, "metadata.namespace") ?: "";
	char prefix[300];
	size_t plen = (size_t)snprintf(prefix, sizeof(prefix), "%s/", ns);

	for (size_t i = kube_lower_bound(svcr, prefix); i < svcr->len; i++) {
		const json_t *s = svcr->items[i].obj->obj, *sel = kj_path(s, "spec.selector");
		if (strncmp(svcr->items[i].key, prefix, plen))
			break;
		if (!json_is_object(sel))
			continue;
		if (selector_matches(sel, kj_path(pod, "metadata.labels")) ||
		    (old && selector_matches(sel, kj_path(old, "metadata.labels"))))
			mark(k->ep, ns, kobj_name(svcr->items[i].obj));
	}
}

void kube_endpoints_on_event(struct emu_kube *k, const struct kube_event *ev)
{
	const struct kube_res *r = ev->res;
	const json_t *o = ev->obj->obj;

	if (!k->ep)
		return;
	if (is_core(r, "services")) {
		mark(k->ep, kobj_namespace(ev->obj), kobj_name(ev->obj));
	} else if (is_core(r, "pods")) {
		mark_services_of(k, o, ev->old ? ev->old->obj : NULL);
	} else if (is_core(r, "nodes")) {
		if (control_plane(o) || (ev->old && control_plane(ev->old->obj)))
			mark(k->ep, "default", "kubernetes");
	} else if (is_core(r, "endpoints")) {
		/* someone else's change to a managed object is undone */
		mark(k->ep, kobj_namespace(ev->obj), kobj_name(ev->obj));
	} else if (!strcmp(r->def.group, "discovery.k8s.io") &&
		   !strcmp(r->def.resource, "endpointslices")) {
		const char *svc = json_string_value(
		    json_object_get(kj_path(o, "metadata.labels"), LABEL_SERVICE_NAME));
		if (svc)
			mark(k->ep, kobj_namespace(ev->obj), svc);
	}
}

int kube_endpoints_init(struct emu_kube *k)
{
	struct kube_ep *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->k = k;
	c->dirty = json_object();
	k->ep = c;
	return c->dirty ? 0 : -ENOMEM;
}

/* Every service again (a start, a state load). */
void kube_endpoints_resync(struct emu_kube *k)
{
	struct kube_res *svcr = res(k, "", "services"), *epr = res(k, "", "endpoints");

	for (size_t i = 0; i < svcr->len; i++)
		mark(k->ep, kobj_namespace(svcr->items[i].obj), kobj_name(svcr->items[i].obj));
	/* Endpoints left without a service (checkLeftoverEndpoints) */
	for (size_t i = 0; i < epr->len; i++)
		if (!kube_get(svcr, kobj_namespace(epr->items[i].obj),
			      kobj_name(epr->items[i].obj)))
			mark(k->ep, kobj_namespace(epr->items[i].obj),
			     kobj_name(epr->items[i].obj));
}

void kube_endpoints_free(struct emu_kube *k)
{
	struct kube_ep *c = k->ep;

	if (!c)
		return;
	if (c->timer)
		emu_timer_cancel(k->emu, c->timer);
	json_decref(c->dirty);
	free(c);
	k->ep = NULL;
}
