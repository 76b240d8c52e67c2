/* SPDX-License-Identifier: Apache-2.0 */
#include "doctor/live.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gcp/compute.h"
#include "kube/client.h"

struct live {
	struct doctor *d;
	struct kube_client *kube;
	struct gcp_compute *compute;
	const char *api_version; /* set on listed items, which carry none */
	const char *kind;
	bool only_load_balancers;   /* Services: only type LoadBalancer */
	const char *selector;       /* label selector of the list, or NULL */
	const char *skip_namespace; /* items of this namespace were read already */
	char zone[64];              /* a zone of the nodes, for the region */
	char subnetwork[512];       /* nic0 subnetwork / network of a node's instance */
	char network[512];
	int ret; /* -ENOMEM once memory ran out */
};

/* Drops what no rule reads and can be large (managedFields, last-applied, most status). */
static void trim_object(json_t *obj)
{
	json_t *meta = json_object_get(obj, "metadata");
	json_t *status = json_object_get(obj, "status");

	json_object_del(meta, "managedFields");
	json_object_del(json_object_get(meta, "annotations"),
			"kubectl.kubernetes.io/last-applied-configuration");
	if (status) {
		json_t *phase = json_incref(json_object_get(status, "phase"));

		json_object_clear(status);
		if (phase)
			json_object_set_new(status, "phase", phase);
	}
}

static int add_object(struct live *l, const char *prefix, json_t *obj)
{
	const char *ns =
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace"));
	const char *name =
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
	char source[512];
	int ret;

	snprintf(source, sizeof(source), "kube:%s%s%s/%s", ns ? ns : "", ns ? "/" : "", prefix,
		 name ? name : "?");
	ret = doctor_add_json(l->d, source, obj);
	if (ret == -ENOMEM)
		l->ret = ret;
	return ret == -ENOMEM ? ret : 0;
}

/*
 * A Pod its controller made (a ReplicaSet's, a DaemonSet's): that controller's object is
 * checked, and its Pods would only repeat its findings. Static (mirror) Pods, owned by
 * their Node, and bare Pods are checked themselves.
 */
static bool controlled_pod(const json_t *pod)
{
	json_t *ref;
	size_t i;

	json_array_foreach(json_object_get(json_object_get(pod, "metadata"), "ownerReferences"), i,
			   ref)
	{
		const char *kind = json_string_value(json_object_get(ref, "kind"));

		if (json_is_true(json_object_get(ref, "controller")) && kind &&
		    strcmp(kind, "Node"))
			return true;
	}
	return false;
}

static int on_kube_item(void *arg, json_t *item)
{
	struct live *l = arg;
	char prefix[64];

	const char *type =
	    json_string_value(json_object_get(json_object_get(item, "spec"), "type"));

	const char *ns =
	    json_string_value(json_object_get(json_object_get(item, "metadata"), "namespace"));

	if (l->only_load_balancers && (!type || strcmp(type, "LoadBalancer")))
		return 0;
	if (l->skip_namespace && ns && !strcmp(ns, l->skip_namespace))
		return 0;
	if (!strcmp(l->kind, "Pod") && controlled_pod(item))
		return 0;
	json_object_set_new(item, "apiVersion", json_string(l->api_version));
	json_object_set_new(item, "kind", json_string(l->kind));
	trim_object(item);
	snprintf(prefix, sizeof(prefix), "%s", l->kind);
	return add_object(l, prefix, item);
}

static int on_node(void *arg, json_t *item)
{
	struct live *l = arg;
	json_t *meta = json_object_get(item, "metadata");
	json_t *labels = json_object_get(meta, "labels");
	const char *pid =
	    json_string_value(json_object_get(json_object_get(item, "spec"), "providerID"));
	json_t *small, *keep_labels = json_object();
	static const char *const roles[] = {"node-role.kubernetes.io/control-plane",
					    "node-role.kubernetes.io/master"};
	int ret;

	for (size_t i = 0; i < 2; i++)
		if (json_object_get(labels, roles[i]))
			json_object_set(keep_labels, roles[i], json_object_get(labels, roles[i]));
	small = json_pack("{s:s,s:s,s:{s:O,s:o},s:{s:s?}}", "apiVersion", "v1", "kind", "Node",
			  "metadata", "name", json_object_get(meta, "name"), "labels", keep_labels,
			  "spec", "providerID", pid);
	if (!small) {
		l->ret = -ENOMEM;
		return -ENOMEM;
	}
	/* gce://project/zone/name: the zone gives the region. */
	if (pid && !strncmp(pid, "gce://", 6) && !l->zone[0]) {
		const char *z = strchr(pid + 6, '/');
		const char *e = z ? strchr(z + 1, '/') : NULL;

		if (e && (size_t)(e - z - 1) < sizeof(l->zone))
			snprintf(l->zone, sizeof(l->zone), "%.*s", (int)(e - z - 1), z + 1);
	}
	ret = add_object(l, "Node", small);
	json_decref(small);
	return ret;
}

/* Reads one Kubernetes collection; a kind the server does not serve is noted, not an error. */
static int kube_collect(struct live *l, const char *path, const char *api_version, const char *kind,
			kube_item_fn fn)
{
	struct kube_list_options opt = {.label_selector = l->selector};
	struct error err = {0};
	char source[512];
	int ret;

	l->api_version = api_version;
	l->kind = kind;
	ret = kube_list(l->kube, path, &opt, fn, l, NULL, 0, &err);
	if (l->ret == -ENOMEM)
		return -ENOMEM;
	snprintf(source, sizeof(source), "kube:%s", path);
	if (ret == -ENOENT)
		return doctor_add_problem(
		    l->d, source, false,
		    "skipped: not served (404: %s not installed?); its rules are "
		    "not checked live",
		    kind);
	if (ret < 0)
		return doctor_add_problem(l->d, source, true, "cannot list: %s", err.msg);
	return 0;
}

static int kube_get_one(struct live *l, const char *path, const char *prefix)
{
	struct error err = {0};
	json_t *obj = NULL;
	int ret = kube_get(l->kube, path, &obj, &err);

	if (ret == -ENOENT)
		return 0; /* e.g. no cilium-config: Cilium not installed (yet) */
	if (ret < 0) {
		char source[512];

		snprintf(source, sizeof(source), "kube:%s", path);
		return doctor_add_problem(l->d, source, true, "cannot read: %s", err.msg);
	}
	trim_object(obj);
	ret = add_object(l, prefix, obj);
	json_decref(obj);
	return ret;
}

/* ---- Compute ---- */

static int add_gce(struct live *l, const char *what, json_t *item)
{
	const char *name = json_string_value(json_object_get(item, "name"));
	char source[512];
	int ret;

	snprintf(source, sizeof(source), "gce:%s/%s", what, name ? name : "?");
	ret = doctor_add_json(l->d, source, item);
	if (ret == -ENOMEM)
		l->ret = ret;
	return ret == -ENOMEM ? ret : 0;
}

static int on_instance(void *arg, const char *scope, json_t *item)
{
	struct live *l = arg;
	json_t *nics = json_object_get(item, "networkInterfaces");
	json_t *small = json_pack(
	    "{s:s,s:O,s:O,s:O}", "kind", "compute#instance", "name", json_object_get(item, "name"),
	    "zone", json_object_get(item, "zone"), "networkInterfaces", nics ? nics : json_array());
	json_t *nic0 = json_array_get(nics, 0);
	int ret;

	(void)scope;
	if (!small) {
		l->ret = -ENOMEM;
		return -ENOMEM;
	}
	if (!l->zone[0]) {
		/* No Node named its zone (no providerID yet): the project's instances do. */
		const char *z = json_string_value(json_object_get(item, "zone"));
		const char *slash = z ? strrchr(z, '/') : NULL;

		if (slash && strlen(slash + 1) < sizeof(l->zone))
			snprintf(l->zone, sizeof(l->zone), "%s", slash + 1);
	}
	if (nic0 && !l->subnetwork[0]) {
		const char *sn = json_string_value(json_object_get(nic0, "subnetwork"));
		const char *nw = json_string_value(json_object_get(nic0, "network"));

		snprintf(l->subnetwork, sizeof(l->subnetwork), "%s", sn ? sn : "");
		snprintf(l->network, sizeof(l->network), "%s", nw ? nw : "");
	}
	ret = add_gce(l, "instances", small);
	json_decref(small);
	return ret;
}

static int on_gce_item(void *arg, const char *scope, json_t *item)
{
	struct live *l = arg;

	(void)scope;
	return add_gce(l, l->kind, item);
}

static int gce_collect(struct live *l, const char *path, const char *what, bool *served)
{
	struct error err = {0};
	char source[1100];
	int ret;

	l->kind = what;
	ret = gcp_compute_list(l->compute, path, NULL, on_gce_item, l, &err);
	if (served)
		*served = ret == 0;
	if (l->ret == -ENOMEM)
		return -ENOMEM;
	snprintf(source, sizeof(source), "gce:%s", path);
	if (ret == -ENOENT)
		return doctor_add_problem(l->d, source, false,
					  "skipped: not served by this Compute endpoint (404); its "
					  "rules are not checked live");
	if (ret < 0)
		return doctor_add_problem(l->d, source, true, "cannot list: %s", err.msg);
	return 0;
}

static int gce_get(struct live *l, const char *url, const char *what)
{
	struct error err = {0};
	json_t *obj = NULL;
	int ret;

	if (!url[0])
		return 0;
	ret = gcp_compute_get(l->compute, url, &obj, &err);
	if (ret == -ENOENT || ret < 0) {
		char source[600];

		snprintf(source, sizeof(source), "gce:%s", url);
		return doctor_add_problem(l->d, source, ret != -ENOENT, "%s%s",
					  ret == -ENOENT ? "skipped: not found (404)"
							 : "cannot read: ",
					  ret == -ENOENT ? "" : err.msg);
	}
	ret = add_gce(l, what, obj);
	json_decref(obj);
	return ret;
}

int doctor_live_collect(struct doctor *d, struct kube_client *kube, struct gcp_compute *compute,
			const char *region, struct error *err)
{
	static const struct {
		const char *path, *api_version, *kind;
	} kinds[] = {
	    {"/apis/apps/v1/deployments", "apps/v1", "Deployment"},
	    {"/apis/apps/v1/daemonsets", "apps/v1", "DaemonSet"},
	    {"/api/v1/namespaces/kube-system/pods", "v1", "Pod"},
	    {"/apis/cilium.io/v2alpha1/ciliuml2announcementpolicies", "cilium.io/v2alpha1",
	     "CiliumL2AnnouncementPolicy"},
	    {"/apis/cilium.io/v2alpha1/ciliumloadbalancerippools", "cilium.io/v2alpha1",
	     "CiliumLoadBalancerIPPool"},
	    {"/apis/metallb.io/v1beta1/l2advertisements", "metallb.io/v1beta1", "L2Advertisement"},
	    {"/apis/metallb.io/v1beta1/ipaddresspools", "metallb.io/v1beta1", "IPAddressPool"},
	};
	struct live l = {.d = d, .kube = kube, .compute = compute};
	char path[1024], reg[64] = "";
	bool addresses = false;
	int ret = 0;

	(void)err;
	if (kube) {
		if ((ret = kube_collect(&l, "/api/v1/nodes", "v1", "Node", on_node)) < 0)
			return ret;
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if ((ret = kube_collect(&l, kinds[i].path, kinds[i].api_version,
						kinds[i].kind, on_kube_item)) < 0)
				return ret;
		/* vip-alias Pods in any other namespace (kube-system's were listed whole). */
		l.selector = "app.kubernetes.io/name=vip-alias";
		l.skip_namespace = "kube-system";
		ret = kube_collect(&l, "/api/v1/pods", "v1", "Pod", on_kube_item);
		l.selector = NULL;
		l.skip_namespace = NULL;
		if (ret < 0)
			return ret;
		doctor_set_complete(d, "pods");
		l.only_load_balancers = true;
		ret = kube_collect(&l, "/api/v1/services", "v1", "Service", on_kube_item);
		l.only_load_balancers = false;
		if (ret < 0 ||
		    (ret =
			 kube_get_one(&l, "/api/v1/namespaces/kube-system/configmaps/cilium-config",
				      "ConfigMap")) < 0 ||
		    (ret = kube_get_one(&l, "/api/v1/namespaces/metallb-system/configmaps/config",
					"ConfigMap")) < 0)
			return ret;
	}
	if (!compute)
		return 0;

	const char *project = gcp_compute_project(compute);
	struct error lerr = {0};

	ret = gcp_compute_list_instances(compute, NULL, on_instance, &l, &lerr);
	if (l.ret == -ENOMEM)
		return -ENOMEM;
	if (ret < 0 && (ret = doctor_add_problem(d, "gce:aggregated/instances", true,
						 "cannot list: %s", lerr.msg)) < 0)
		return ret;
	if ((ret = gce_get(&l, l.subnetwork, "subnetworks")) < 0 ||
	    (ret = gce_get(&l, l.network, "networks")) < 0)
		return ret;
	if (region) {
		snprintf(reg, sizeof(reg), "%s", region);
	} else if (l.zone[0]) {
		/* us-central1-a -> us-central1 */
		char *dash = strrchr(l.zone, '-');

		snprintf(reg, sizeof(reg), "%.*s",
			 dash ? (int)(dash - l.zone) : (int)strlen(l.zone), l.zone);
	}
	if (!reg[0])
		return doctor_add_problem(
		    d, "gce:regions", false,
		    "skipped: no region (no node has a gce:// providerID; use "
		    "--region): load balancer and address rules not checked live");
	static const char *const regional[] = {"forwardingRules", "backendServices", "healthChecks",
					       "addresses"};
	for (size_t i = 0; i < sizeof(regional) / sizeof(regional[0]); i++) {
		bool served = false;

		snprintf(path, sizeof(path), "projects/%s/regions/%s/%s", project, reg,
			 regional[i]);
		if ((ret = gce_collect(&l, path, regional[i], &served)) < 0)
			return ret;
		if (!strcmp(regional[i], "addresses"))
			addresses = served;
	}
	/* An internal backend service may use a global health check. */
	snprintf(path, sizeof(path), "projects/%s/global/healthChecks", project);
	if ((ret = gce_collect(&l, path, "healthChecks", NULL)) < 0)
		return ret;
	if (addresses)
		doctor_set_complete(d, "addresses");
	return 0;
}
