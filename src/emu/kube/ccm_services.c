/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The emulated CCM's service controller: k8s.io/cloud-provider controllers/service
 * (controller.go) driving the GCE provider (cloud-provider-gcp providers/gce
 * gce_loadbalancer.go; the schemes in ccm_external.c and ccm_internal.c).
 *
 * - Services: an added Service that wants a load balancer (type LoadBalancer, no
 *   loadBalancerClass) or needs cleanup, and an update that needsUpdate() (type, ports,
 *   loadBalancerIP, source ranges, annotations, externalTrafficPolicy, healthCheckNodePort,
 *   session affinity, UID, external IPs, IP families) or needs cleanup, is queued. One worker
 *   (--concurrent-service-syncs is 1) takes them in order:
 *     ensure: Event EnsuringLoadBalancer, the finalizer service.kubernetes.io/load-balancer-
 *       cleanup, the nodes (not being deleted, without the label node.kubernetes.io/exclude-
 *       from-external-load-balancers, without the autoscaler's ToBeDeletedByClusterAutoscaler
 *       taint; none: Warning UnAvailableLoadBalancer), EnsureLoadBalancer, Event
 *       EnsuredLoadBalancer, status.loadBalancer.ingress;
 *     delete (type changed, or deletionTimestamp with the finalizer): GetLoadBalancer, Event
 *       DeletingLoadBalancer, EnsureLoadBalancerDeleted, the finalizer removed (the Service
 *       goes only then), Event DeletedLoadBalancer;
 *   a failure is Warning SyncLoadBalancerFailed "Error syncing load balancer: ..." and a retry
 *   after --ccm-retry-delay (5 s, minRetryDelay), doubling up to 300 s (maxRetryDelay).
 * - Nodes: an added or deleted Node, or one whose exclusion label or providerID changed,
 *   syncs the node set of every load balancer: when it differs from the last one
 *   (nodesSufficientlyEqual: names and providerIDs), UpdateLoadBalancer moves the pool or the
 *   instance groups (Event UpdatedLoadBalancer; a failure is Warning UpdateLoadBalancerFailed
 *   and a full sync of that Service).
 * - EnsureLoadBalancer: the load balancer's name "a" + the UID without dashes, cut to 32
 *   (cloudprovider.DefaultLoadBalancerName); the cluster id from ConfigMap
 *   kube-system/ingress-uid (provider-uid, else uid; created with 8 random bytes in hex when
 *   absent, as ClusterID.getOrInitialize does); the forwarding rule <lb> read first, and a
 *   load balancer of the other scheme deleted before this one is ensured.
 *
 * The provider's configuration is what the CCM reads from its own instance's metadata: the
 * project, the region of the control plane it runs on (its Node's zone), that instance's
 * network and subnetwork (nic0). No node-tags are configured: firewall rules target each
 * instance's longest tag that prefixes its name (computeHostTags), e.g. NAME-worker.
 *
 * Health of what it made (emu_kube_lb_healthy): kube-proxy answers /healthz on 10256 while
 * its Node is Ready (and not marked ToBeDeletedByClusterAutoscaler); a Service's
 * healthCheckNodePort answers while a Ready endpoint Pod of the Service runs on the node.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/str.h"
#include "emu/kube/ccm.h"

#define RETRY_MAX_MS    300000 /* maxRetryDelay */
#define TOKEN_MARGIN_MS 60000
#define TO_BE_DELETED   "ToBeDeletedByClusterAutoscaler"
#define EXCLUDE_LABEL   "node.kubernetes.io/exclude-from-external-load-balancers"
#define NODE_NAMES_LOG  20 /* maxNodeNamesToLog */

struct lbsvc {
	char *key;      /* "NS/NAME" */
	json_t *state;  /* the Service last seen (cachedService.state) */
	json_t *synced; /* the node set last synced: name -> providerID, or NULL */
	unsigned failures;
	long retry_timer;
	bool want_sync, want_hosts, queued;
	struct ccm *c;
};

struct ccm {
	struct emu_kube *k;
	struct lbsvc **svcs;
	size_t nsvcs;
	json_t *queue; /* keys, in order */
	struct ccm_job *job;
	struct lbsvc *job_svc;
	struct sync_ctx *job_x; /* what the running job's turn is doing */
	long kick_timer, node_timer, resync_timer;
	char *token;
	uint64_t token_expiry;
	/* the provider's configuration, found once */
	char region[64], network[512], subnetwork[512];
};

static void kick(struct ccm *c);

struct emu_kube *ccm_kube(const struct ccm *c)
{
	return c->k;
}

const char *ccm_token(const struct ccm *c)
{
	if (!c->token || emu_now_ms() + TOKEN_MARGIN_MS >= c->token_expiry)
		return NULL;
	return c->token;
}

void ccm_set_token(struct ccm *c, const char *token, uint64_t lifetime_ms)
{
	free(c->token);
	c->token = strdup(token);
	/* A token shorter-lived than the margin is still used once. */
	c->token_expiry =
	    emu_now_ms() +
	    (lifetime_ms > TOKEN_MARGIN_MS ? lifetime_ms : TOKEN_MARGIN_MS + lifetime_ms / 2 + 1);
}

static struct kube_res *services_res(struct emu_kube *k)
{
	return kube_res_find(k, "", "v1", "services");
}

static struct kube_res *nodes_res(struct emu_kube *k)
{
	return kube_res_find(k, "", "v1", "nodes");
}

/* ---- the service cache ---- */

static struct lbsvc *svc_find(struct ccm *c, const char *key)
{
	for (size_t i = 0; i < c->nsvcs; i++)
		if (!strcmp(c->svcs[i]->key, key))
			return c->svcs[i];
	return NULL;
}

static struct lbsvc *svc_get(struct ccm *c, const char *key)
{
	struct lbsvc *s = svc_find(c, key), **n;

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	n = realloc(c->svcs, (c->nsvcs + 1) * sizeof(*n));
	if (!s || !n || !(s->key = strdup(key))) {
		if (n)
			c->svcs = n;
		free(s);
		return NULL;
	}
	s->c = c;
	c->svcs = n;
	c->svcs[c->nsvcs++] = s;
	return s;
}

static void svc_free(struct lbsvc *s)
{
	if (!s)
		return;
	if (s->retry_timer)
		emu_timer_cancel(s->c->k->emu, s->retry_timer);
	json_decref(s->state);
	json_decref(s->synced);
	free(s->key);
	free(s);
}

static void svc_forget(struct ccm *c, struct lbsvc *s)
{
	for (size_t i = 0; i < c->nsvcs; i++) {
		if (c->svcs[i] != s)
			continue;
		c->svcs[i] = c->svcs[--c->nsvcs];
		break;
	}
	if (c->job_svc == s)
		c->job_svc = NULL;
	for (size_t i = json_array_size(c->queue); i-- > 0;)
		if (!strcmp(json_string_value(json_array_get(c->queue, i)) ?: "", s->key))
			json_array_remove(c->queue, i);
	svc_free(s);
}

static void enqueue(struct ccm *c, struct lbsvc *s, bool sync)
{
	if (sync)
		s->want_sync = true;
	else
		s->want_hosts = true;
	if (!s->queued) {
		s->queued = true;
		json_array_append_new(c->queue, json_string(s->key));
	}
	kick(c);
}

/* ---- what the service controller reads ---- */

static const json_t *annotations(const json_t *svc)
{
	return kj_path(svc, "metadata.annotations");
}

static bool wants_lb(const json_t *svc)
{
	return svc && !strcmp(kj_str(svc, "spec.type") ?: "", "LoadBalancer") &&
	       !kj_path(svc, "spec.loadBalancerClass");
}

static bool has_finalizer(const json_t *obj, const char *f)
{
	const json_t *v;
	size_t i;

	json_array_foreach(kj_path(obj, "metadata.finalizers"), i,
			   v) if (!strcmp(json_string_value(v) ?: "", f)) return true;
	return false;
}

static bool needs_cleanup(const json_t *svc)
{
	if (!has_finalizer(svc, LB_CLEANUP_FINALIZER))
		return false;
	return kj_str(svc, "metadata.deletionTimestamp") ||
	       strcmp(kj_str(svc, "spec.type") ?: "", "LoadBalancer") != 0;
}

static bool same_field(const json_t *a, const json_t *b, const char *path)
{
	const json_t *x = kj_path(a, path), *y = kj_path(b, path);

	return (!x && !y) || (x && y && json_equal(x, y));
}

/* portEqualForLB: name, protocol, port, nodePort, targetPort, appProtocol, in order. */
static bool ports_equal(const json_t *a, const json_t *b)
{
	const json_t *pa = kj_path(a, "spec.ports"), *pb = kj_path(b, "spec.ports");
	static const char *const f[] = {"name",     "protocol",   "port",
					"nodePort", "targetPort", "appProtocol"};

	if (json_array_size(pa) != json_array_size(pb))
		return false;
	for (size_t i = 0; i < json_array_size(pa); i++)
		for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++)
			if (!same_field(json_array_get(pa, i), json_array_get(pb, i), f[k]))
				return false;
	return true;
}

/* controller.go needsUpdate */
static bool needs_update(const json_t *old, const json_t *svc)
{
	if (!wants_lb(old) && !wants_lb(svc))
		return false;
	if (wants_lb(old) != wants_lb(svc))
		return true;
	return !same_field(old, svc, "spec.loadBalancerSourceRanges") || !ports_equal(old, svc) ||
	       !same_field(old, svc, "spec.sessionAffinity") ||
	       !same_field(old, svc, "spec.sessionAffinityConfig") ||
	       !same_field(old, svc, "spec.loadBalancerIP") ||
	       !same_field(old, svc, "spec.externalIPs") ||
	       !same_field(old, svc, "metadata.annotations") ||
	       !same_field(old, svc, "metadata.uid") ||
	       !same_field(old, svc, "spec.externalTrafficPolicy") ||
	       !same_field(old, svc, "spec.healthCheckNodePort") ||
	       json_array_size(kj_path(old, "spec.ipFamilies")) !=
		   json_array_size(kj_path(svc, "spec.ipFamilies"));
}

/* strconv.ParseBool */
static int parse_bool(const char *s)
{
	static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};

	for (size_t i = 0; i < 6; i++) {
		if (!strcmp(s, t[i]))
			return 1;
		if (!strcmp(s, f[i]))
			return 0;
	}
	return -1;
}

/* nodeIncludedPredicate */
static bool node_included(const json_t *node)
{
	const json_t *v = json_object_get(kj_path(node, "metadata.labels"), EXCLUDE_LABEL);

	if (!v)
		return true;
	return parse_bool(json_string_value(v) ?: "") == 0;
}

static bool node_untainted(const json_t *node)
{
	const json_t *t;
	size_t i;

	json_array_foreach(kj_path(node, "spec.taints"), i,
			   t) if (!strcmp(kj_str(t, "key") ?: "", TO_BE_DELETED)) return false;
	return true;
}

/* stableNodeSetPredicates */
static bool node_stable(const json_t *node)
{
	return !kj_str(node, "metadata.deletionTimestamp") && node_included(node) &&
	       node_untainted(node);
}

static json_t *stable_nodes(struct emu_kube *k)
{
	struct kube_res *nodes = nodes_res(k);
	json_t *out = json_array();

	for (size_t i = 0; out && i < nodes->len; i++) {
		json_t *n = kobj_full(nodes->items[i].obj);

		if (n && node_stable(n))
			json_array_append(out, n);
		json_decref(n);
	}
	return out;
}

static json_t *node_set(const json_t *nodes)
{
	json_t *set = json_object(), *n;
	size_t i;

	json_array_foreach(nodes, i, n) json_object_set_new(
	    set, kj_str(n, "metadata.name") ?: "", json_string(kj_str(n, "spec.providerID") ?: ""));
	return set;
}

/* ---- writes: Events, finalizers, status ---- */

static void svc_event(struct ccm *c, const json_t *svc, const char *type, const char *reason,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void svc_event(struct ccm *c, const json_t *svc, const char *type, const char *reason,
		      const char *fmt, ...)
{
	struct kube_res *r = services_res(c->k);
	struct kobj *o;
	char msg[1024];
	va_list ap;

	if (!svc)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = kobj_new(json_deep_copy(svc));
	if (!o)
		return;
	kube_record_event(c->k, r, o, type, reason, CCM_COMPONENT, "%s", msg);
	kobj_unref(o);
}

static int write_finalizer(struct ccm *c, const char *nsname, const char *key, bool add)
{
	struct kube_res *r = services_res(c->k);
	char ns[256], name[256];
	const char *slash = strchr(nsname, '/');
	struct kube_err e = {0};
	struct kobj *o;
	json_t *svc, *list;
	int ret;

	if (!slash)
		return -EINVAL;
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - nsname), nsname);
	snprintf(name, sizeof(name), "%s", slash + 1);
	o = kube_get(r, ns, name);
	if (!o)
		return -ENOENT;
	if (has_finalizer(o->obj, key) == add)
		return 0;
	svc = json_deep_copy(o->obj);
	list = kj_path(svc, "metadata.finalizers");
	if (add) {
		if (!json_is_array(list)) {
			list = json_array();
			json_object_set_new(kj_obj(svc, "metadata"), "finalizers", list);
		}
		json_array_append_new(list, json_string(key));
	} else {
		for (size_t i = json_array_size(list); i-- > 0;)
			if (!strcmp(json_string_value(json_array_get(list, i)) ?: "", key))
				json_array_remove(list, i);
		if (!json_array_size(list))
			json_object_del(json_object_get(svc, "metadata"), "finalizers");
	}
	ret = kube_update(c->k, r, ns, name, svc, KW_MAIN, KWF_CONTROLLER, &e, NULL);
	if (ret < 0)
		log_warn("ccm: cannot %s finalizer %s on service %s: %s", add ? "add" : "remove",
			 key, nsname, e.message);
	kube_err_clear(&e);
	return ret;
}

int ccm_finalizer(struct ccm_job *j, const char *key, bool add)
{
	return write_finalizer(j->ccm, j->nsname, key, add);
}

/* patchStatus: status.loadBalancer, when it changed. NotFound is not an error. */
static void patch_status(struct ccm *c, const char *nsname, const json_t *lb)
{
	struct kube_res *r = services_res(c->k);
	char ns[256], name[256];
	const char *slash = strchr(nsname, '/');
	struct kube_err e = {0};
	struct kobj *o;
	json_t *svc;

	if (!slash)
		return;
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - nsname), nsname);
	snprintf(name, sizeof(name), "%s", slash + 1);
	o = kube_get(r, ns, name);
	if (!o)
		return;
	{
		const json_t *have = kj_path(o->obj, "status.loadBalancer");
		bool have_empty = !json_array_size(json_object_get(have, "ingress"));
		bool want_empty = !json_array_size(json_object_get(lb, "ingress"));

		if ((have_empty && want_empty) ||
		    (have && lb &&
		     json_equal(json_object_get(have, "ingress"), json_object_get(lb, "ingress"))))
			return;
	}
	svc = json_deep_copy(o->obj);
	json_object_set_new(kj_obj(svc, "status"), "loadBalancer",
			    lb ? json_deep_copy(lb) : json_object());
	if (kube_update(c->k, r, ns, name, svc, KW_STATUS, KWF_CONTROLLER, &e, NULL) < 0)
		log_warn("ccm: cannot patch the status of service %s: %s", nsname, e.message);
	kube_err_clear(&e);
}

/* ---- the provider's configuration ---- */

static bool zone_of_provider_id(const char *pid, char *zone, size_t zlen, char *name, size_t nlen)
{
	const char *p, *s1, *s2;

	if (!pid || strncmp(pid, "gce://", 6) != 0)
		return false;
	p = pid + 6;
	s1 = strchr(p, '/');
	s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	if (!s1 || !s2 || (size_t)(s2 - s1 - 1) >= zlen || strlen(s2 + 1) >= nlen)
		return false;
	snprintf(zone, zlen, "%.*s", (int)(s2 - s1 - 1), s1 + 1);
	snprintf(name, nlen, "%s", s2 + 1);
	return true;
}

/* The CCM's own instance: a control plane's, else any initialized node's. */
static int find_config(struct ccm *c, char *err, size_t errlen)
{
	struct kube_res *nodes = nodes_res(c->k);

	if (c->region[0])
		return 0;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < nodes->len; i++) {
			const json_t *n = nodes->items[i].obj->obj, *inst, *nic;
			char zone[128], name[128];
			const char *dash;
			bool cp = json_object_get(kj_path(n, "metadata.labels"),
						  "node-role.kubernetes.io/control-plane") != NULL;

			if ((pass == 0 && !cp) ||
			    !zone_of_provider_id(kj_str(n, "spec.providerID"), zone, sizeof(zone),
						 name, sizeof(name)))
				continue;
			inst = emu_compute_instance(c->k->emu, zone, name);
			nic = json_array_get(json_object_get(inst, "networkInterfaces"), 0);
			dash = strrchr(zone, '-');
			if (!nic || !dash)
				continue;
			snprintf(c->region, sizeof(c->region), "%.*s", (int)(dash - zone), zone);
			snprintf(c->network, sizeof(c->network), "%s",
				 kj_str(nic, "network") ?: "");
			snprintf(c->subnetwork, sizeof(c->subnetwork), "%s",
				 kj_str(nic, "subnetwork") ?: "");
			log_info(
			    "ccm: the GCE provider runs in region %s, network %s (instance %s)",
			    c->region, strrchr(c->network, '/') ? strrchr(c->network, '/') + 1 : "",
			    name);
			return 0;
		}
	}
	snprintf(err, errlen,
		 "the cloud provider has no configuration yet: no initialized Node tells its "
		 "instance (region, network)");
	return -EAGAIN;
}

/* ClusterID.GetID: kube-system/ingress-uid, created when absent. */
static int cluster_id(struct ccm *c, char *out, size_t len, char *err, size_t errlen)
{
	struct kube_res *cms = kube_res_find(c->k, "", "v1", "configmaps");
	struct kobj *o = kube_get(cms, "kube-system", "ingress-uid");
	const char *id;
	struct kube_err e = {0};
	unsigned char b[8];
	char hex[17];
	json_t *cm;

	if (o) {
		id = kj_str(o->obj, "data.provider-uid");
		if (!id)
			id = kj_str(o->obj, "data.uid");
		if (!id) {
			snprintf(err, errlen, "Could not retrieve cluster id");
			return -ENOENT;
		}
		snprintf(out, len, "%s", id);
		return 0;
	}
	kube_random_bytes(b, sizeof(b));
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(hex + 2 * i, 3, "%02x", b[i]);
	cm = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}}", "apiVersion", "v1", "kind",
		       "ConfigMap", "metadata", "name", "ingress-uid", "namespace", "kube-system",
		       "data", "uid", hex, "provider-uid", hex);
	if (kube_create(c->k, cms, "kube-system", cm, KWF_CONTROLLER, &e, NULL) < 0) {
		snprintf(err, errlen,
			 "GCE cloud provider failed to create kube-system/ingress-uid config map "
			 "to store cluster id: %.700s",
			 e.message);
		kube_err_clear(&e);
		return -EIO;
	}
	log_info("ccm: created a config map containing clusteriD: %s", hex);
	snprintf(out, len, "%s", hex);
	return 0;
}

/* cloudprovider.DefaultLoadBalancerName */
static void lb_name(const json_t *svc, char *out, size_t len)
{
	const char *uid = kj_str(svc, "metadata.uid") ?: "";
	size_t n = 0;

	if (len < 2)
		return;
	out[n++] = 'a';
	for (const char *p = uid; *p && n < 32 && n + 1 < len; p++)
		if (*p != '-')
			out[n++] = *p;
	out[n] = '\0';
}

static bool internal_scheme(const json_t *svc)
{
	const json_t *a = annotations(svc);
	const char *t =
	    json_string_value(json_object_get(a, "networking.gke.io/load-balancer-type"));

	if (!t)
		t = json_string_value(json_object_get(a, "cloud.google.com/load-balancer-type"));
	return t && (!strcmp(t, "Internal") || !strcmp(t, "internal"));
}

/* ---- the provider's entry points (gce_loadbalancer.go) ---- */

/* GetLoadBalancer: the rule exists, or a provider finalizer says cleanup is not done. */
static int provider_get(struct ccm_task *t)
{
	struct ccm_job *j = t->job;

	switch (t->step) {
	case 0:
		return ccm_call(t, 1, "GET", NULL, "regions/%s/forwardingRules/%s", j->region,
				j->lb);
	case 1:
		if (ccm_ok(t)) {
			j->exists = true;
			json_decref(j->status);
			j->status = json_pack("{s:[{s:s}]}", "ingress", "ip",
					      kj_str(t->r.body, "IPAddress") ?: "");
			return CCM_DONE;
		}
		if (!ccm_is(t, 404))
			return ccm_fail_call(t, "");
		j->exists =
		    has_finalizer(j->svc, ILB_FINALIZER) || has_finalizer(j->svc, NETLB_FINALIZER);
		return CCM_DONE;
	}
	return CCM_DONE;
}

/* EnsureLoadBalancer: the rule first, another scheme's load balancer deleted. */
static int provider_ensure(struct ccm_task *t)
{
	struct ccm_job *j = t->job;

	switch (t->step) {
	case 0:
		return ccm_call(t, 1, "GET", NULL, "regions/%s/forwardingRules/%s", j->region,
				j->lb);
	case 1:
		if (!ccm_ok(t) && !ccm_is(t, 404))
			return ccm_fail_call(t, "");
		json_decref(j->rule);
		j->rule = ccm_ok(t) ? json_incref(t->r.body) : NULL;
		if (j->rule) {
			bool was_internal =
			    !strcasecmp(kj_str(j->rule, "loadBalancingScheme") ?: "", "INTERNAL");

			if (was_internal != j->internal) {
				log_info("ccm: EnsureLoadBalancer(%s, %s): deleting existing %s "
					 "loadbalancer",
					 j->nsname, j->lb, was_internal ? "INTERNAL" : "EXTERNAL");
				json_decref(j->rule);
				j->rule = NULL;
				ccm_spawn(t,
					  was_internal ? ccm_internal_delete : ccm_external_delete,
					  NULL, NULL);
				t->step = 2;
				return CCM_WAIT;
			}
		}
		t->step = 2;
		__attribute__((fallthrough));
	case 2:
		if (t->failed)
			return CCM_DONE;
		ccm_spawn(t, j->internal ? ccm_internal_ensure : ccm_external_ensure, NULL, NULL);
		t->step = 3;
		return CCM_WAIT;
	}
	return CCM_DONE;
}

static int provider_update(struct ccm_task *t)
{
	if (t->step == 0) {
		ccm_spawn(t, t->job->internal ? ccm_internal_update : ccm_external_update, NULL,
			  NULL);
		t->step = 1;
		return CCM_WAIT;
	}
	return CCM_DONE;
}

static int provider_delete(struct ccm_task *t)
{
	if (t->step == 0) {
		ccm_spawn(t, t->job->internal ? ccm_internal_delete : ccm_external_delete, NULL,
			  NULL);
		t->step = 1;
		return CCM_WAIT;
	}
	return CCM_DONE;
}

/* ---- the worker ---- */

/* What the sync of one Service is doing, between its provider calls. */
enum sync_stage {
	STAGE_ENSURE,
	STAGE_GET,    /* before a delete */
	STAGE_DELETE, /* EnsureLoadBalancerDeleted */
	STAGE_HOSTS,
	STAGE_HOSTS_CHECK, /* an update failed: does the load balancer still exist? */
};

struct sync_ctx {
	enum sync_stage stage;
	bool deleted;  /* the Service is gone: the cached state is used */
	json_t *hosts; /* nodes the update was for */
	char err[1024];
};

static void job_done(struct ccm_job *j, bool ok, const char *err);

static void retry_timer(struct emu *emu, void *arg)
{
	struct lbsvc *s = arg;

	(void)emu;
	s->retry_timer = 0;
	enqueue(s->c, s, true);
}

/* AddRateLimited: retry-delay, doubling, up to maxRetryDelay. */
static void retry_later(struct ccm *c, struct lbsvc *s)
{
	uint64_t delay = c->k->emu->opt.ccm_retry_delay_ms ?: 5000;

	for (unsigned i = 0; i < s->failures && delay < RETRY_MAX_MS; i++)
		delay *= 2;
	if (delay > RETRY_MAX_MS)
		delay = RETRY_MAX_MS;
	s->failures++;
	if (s->retry_timer)
		emu_timer_cancel(c->k->emu, s->retry_timer);
	s->retry_timer = emu_timer_add(c->k->emu, delay, retry_timer, s);
	if (s->retry_timer < 0)
		s->retry_timer = 0;
	log_info("ccm: error processing service %s (retrying with exponential backoff in %llu ms)",
		 s->key, (unsigned long long)delay);
}

static struct ccm_job *job_new(struct ccm *c, enum ccm_job_kind kind, const json_t *svc, char *err,
			       size_t errlen)
{
	struct ccm_job *j = calloc(1, sizeof(*j));

	if (!j) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	j->ccm = c;
	j->kind = kind;
	j->svc = json_deep_copy(svc);
	snprintf(j->nsname, sizeof(j->nsname), "%s/%s", kj_str(svc, "metadata.namespace") ?: "",
		 kj_str(svc, "metadata.name") ?: "");
	lb_name(svc, j->lb, sizeof(j->lb));
	j->internal = internal_scheme(svc);
	j->done = job_done;
	if (find_config(c, err, errlen) < 0 ||
	    cluster_id(c, j->cid, sizeof(j->cid), err, errlen) < 0) {
		ccm_job_free(j);
		return NULL;
	}
	snprintf(j->region, sizeof(j->region), "%s", c->region);
	snprintf(j->network, sizeof(j->network), "%s", c->network);
	snprintf(j->subnetwork, sizeof(j->subnetwork), "%s", c->subnetwork);
	return j;
}

static int start(struct ccm *c, struct lbsvc *s, enum ccm_job_kind kind, const json_t *svc,
		 json_t *nodes, struct sync_ctx *x, char *err, size_t errlen)
{
	static ccm_step_fn const fns[] = {[CCM_JOB_ENSURE] = provider_ensure,
					  [CCM_JOB_UPDATE] = provider_update,
					  [CCM_JOB_DELETE] = provider_delete,
					  [CCM_JOB_GET] = provider_get};
	struct ccm_job *j = job_new(c, kind, svc, err, errlen);

	if (!j) {
		json_decref(nodes);
		return -EINVAL;
	}
	j->nodes = nodes;
	if (ccm_job_start(j, fns[kind], NULL, NULL) < 0) {
		ccm_job_free(j);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->job = j;
	c->job_svc = s;
	c->job_x = x;
	return 0;
}

/* The sync of a Service failed before or after its provider call. */
static void sync_failed(struct ccm *c, struct lbsvc *s, const json_t *svc, const char *err)
{
	svc_event(c, svc, "Warning", "SyncLoadBalancerFailed", "Error syncing load balancer: %s",
		  err);
	log_warn("ccm: service %s: %s", s->key, err);
	retry_later(c, s);
}

static void sync_ctx_free(struct sync_ctx *x)
{
	if (!x)
		return;
	json_decref(x->hosts);
	free(x);
}

/* The finish of one Service's turn. */
static void turn_over(struct ccm *c)
{
	c->job = NULL;
	c->job_svc = NULL;
	kick(c);
}

/* processServiceCreateOrUpdate / processServiceDeletion, from the start. */
static void sync_service(struct ccm *c, struct lbsvc *s)
{
	struct kube_res *r = services_res(c->k);
	char ns[256], name[256], err[1024] = "";
	const char *slash = strchr(s->key, '/');
	struct kobj *o;
	struct sync_ctx *x = calloc(1, sizeof(*x));
	json_t *svc;

	if (!x || !slash) {
		free(x);
		return;
	}
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - s->key), s->key);
	snprintf(name, sizeof(name), "%s", slash + 1);
	o = kube_get(r, ns, name);
	if (!o) {
		/* The watcher caught the deletion: the cached state says what to clean up. */
		if (!s->state || !wants_lb(s->state)) {
			free(x);
			svc_forget(c, s);
			return;
		}
		x->deleted = true;
		x->stage = STAGE_DELETE;
		svc_event(c, s->state, "Normal", "DeletingLoadBalancer", "Deleting load balancer");
		if (start(c, s, CCM_JOB_DELETE, s->state, json_array(), x, err, sizeof(err)) < 0) {
			svc_event(c, s->state, "Warning", "DeleteLoadBalancerFailed",
				  "Error deleting load balancer: %s", err);
			sync_ctx_free(x);
			retry_later(c, s);
			turn_over(c);
		}
		return;
	}
	svc = kobj_full(o);
	json_decref(s->state);
	s->state = json_incref(svc);
	if (!wants_lb(svc) || needs_cleanup(svc)) {
		x->stage = STAGE_GET;
		if (start(c, s, CCM_JOB_GET, svc, json_array(), x, err, sizeof(err)) < 0) {
			char msg[1100];

			snprintf(msg, sizeof(msg),
				 "failed to check if load balancer exists before cleanup: %s", err);
			sync_failed(c, s, svc, msg);
			sync_ctx_free(x);
			turn_over(c);
		}
		json_decref(svc);
		return;
	}
	svc_event(c, svc, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer");
	if (write_finalizer(c, s->key, LB_CLEANUP_FINALIZER, true) < 0) {
		sync_failed(c, s, svc, "failed to add load balancer cleanup finalizer");
		sync_ctx_free(x);
		json_decref(svc);
		turn_over(c);
		return;
	}
	{
		json_t *nodes = stable_nodes(c->k);

		if (!json_array_size(nodes))
			svc_event(c, svc, "Warning", "UnAvailableLoadBalancer",
				  "There are no available nodes for LoadBalancer");
		json_decref(s->synced);
		s->synced = node_set(nodes); /* storeLastSyncedNodes */
		x->stage = STAGE_ENSURE;
		if (start(c, s, CCM_JOB_ENSURE, svc, nodes, x, err, sizeof(err)) < 0) {
			char msg[1100];

			snprintf(msg, sizeof(msg), "failed to ensure load balancer: %s", err);
			sync_failed(c, s, svc, msg);
			sync_ctx_free(x);
			turn_over(c);
		}
	}
	json_decref(svc);
}

/* nodeSyncService's update, for one Service. */
static void sync_hosts(struct ccm *c, struct lbsvc *s)
{
	char err[1024];
	struct sync_ctx *x;
	json_t *nodes;

	if (!s->state || !wants_lb(s->state)) {
		turn_over(c);
		return;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return;
	nodes = stable_nodes(c->k);
	x->stage = STAGE_HOSTS;
	x->hosts = json_incref(nodes);
	if (start(c, s, CCM_JOB_UPDATE, s->state, nodes, x, err, sizeof(err)) < 0) {
		log_warn("ccm: failed to update load balancer hosts for service %s: %s", s->key,
			 err);
		sync_ctx_free(x);
		enqueue(c, s, true);
		turn_over(c);
	}
}

static void names_of(const json_t *nodes, char *out, size_t len)
{
	const json_t *n;
	size_t i, used = 0;

	out[0] = '\0';
	used += (size_t)snprintf(out, len, "[");
	json_array_foreach(nodes, i, n)
	{
		if (i == NODE_NAMES_LOG) {
			snprintf(out + used, used < len ? len - used : 0, " <%zu more>",
				 json_array_size(nodes) - i);
			used = strlen(out);
			break;
		}
		if (used < len)
			used += (size_t)snprintf(out + used, len - used, "%s%s", i ? " " : "",
						 kj_str(n, "metadata.name") ?: "");
	}
	if (used < len)
		snprintf(out + used, len - used, "]");
}

/* A provider call is over: the rest of the turn. */
static void job_done(struct ccm_job *j, bool ok, const char *err)
{
	struct ccm *c = j->ccm;
	struct lbsvc *s = c->job_svc;
	struct sync_ctx *x = c->job_x;
	const json_t *svc = j->svc;
	char msg[1200];

	c->job_x = NULL;
	if (!s) {
		/* Forgotten meanwhile (a state load). */
		sync_ctx_free(x);
		ccm_job_free(j);
		turn_over(c);
		return;
	}
	switch (x->stage) {
	case STAGE_ENSURE:
		if (!ok) {
			snprintf(msg, sizeof(msg), "failed to ensure load balancer: %s", err);
			sync_failed(c, s, svc, msg);
			break;
		}
		s->failures = 0;
		svc_event(c, svc, "Normal", "EnsuredLoadBalancer", "Ensured load balancer");
		patch_status(c, s->key, j->status);
		break;
	case STAGE_GET: {
		json_t *copy = json_incref(j->svc);

		if (!ok) {
			snprintf(msg, sizeof(msg),
				 "failed to check if load balancer exists before cleanup: %s", err);
			sync_failed(c, s, svc, msg);
			json_decref(copy);
			break;
		}
		if (j->exists) {
			/* Deleting: the provider's turn, then the finalizer. */
			char e2[1024];

			svc_event(c, copy, "Normal", "DeletingLoadBalancer",
				  "Deleting load balancer");
			x->stage = STAGE_DELETE;
			c->job = NULL;
			ccm_job_free(j);
			if (start(c, s, CCM_JOB_DELETE, copy, json_array(), x, e2, sizeof(e2)) <
			    0) {
				snprintf(msg, sizeof(msg), "failed to delete load balancer: %s",
					 e2);
				sync_failed(c, s, copy, msg);
				sync_ctx_free(x);
				json_decref(copy);
				turn_over(c);
			} else {
				json_decref(copy);
			}
			return;
		}
		/* nothing to delete */
		x->stage = STAGE_DELETE;
		json_decref(copy);
	}
		__attribute__((fallthrough));
	case STAGE_DELETE:
		if (!ok) {
			if (x->deleted) {
				svc_event(c, svc, "Warning", "DeleteLoadBalancerFailed",
					  "Error deleting load balancer: %s", err);
				retry_later(c, s);
			} else {
				snprintf(msg, sizeof(msg), "failed to delete load balancer: %s",
					 err);
				sync_failed(c, s, svc, msg);
			}
			break;
		}
		s->failures = 0;
		if (x->deleted) {
			svc_event(c, svc, "Normal", "DeletedLoadBalancer", "Deleted load balancer");
			sync_ctx_free(x);
			ccm_job_free(j);
			svc_forget(c, s);
			turn_over(c);
			return;
		}
		/* "Always remove finalizer when load balancer is deleted" */
		if (write_finalizer(c, s->key, LB_CLEANUP_FINALIZER, false) < 0 &&
		    kube_get(services_res(c->k), kj_str(svc, "metadata.namespace") ?: "",
			     kj_str(svc, "metadata.name") ?: "")) {
			sync_failed(c, s, svc, "failed to remove load balancer cleanup finalizer");
			break;
		}
		svc_event(c, svc, "Normal", "DeletedLoadBalancer", "Deleted load balancer");
		patch_status(c, s->key, NULL);
		/* "Only delete the cache upon successful load balancer deletion." */
		sync_ctx_free(x);
		ccm_job_free(j);
		svc_forget(c, s);
		turn_over(c);
		return;
	case STAGE_HOSTS:
		names_of(x->hosts, msg, sizeof(msg));
		if (ok) {
			if (!json_array_size(x->hosts))
				svc_event(c, svc, "Warning", "UnAvailableLoadBalancer",
					  "There are no available nodes for LoadBalancer");
			else
				svc_event(c, svc, "Normal", "UpdatedLoadBalancer",
					  "Updated load balancer with new hosts");
			break;
		}
		/* "It's only an actual error if the load balancer still exists." */
		snprintf(x->err, sizeof(x->err), "%s", err);
		x->stage = STAGE_HOSTS_CHECK;
		c->job = NULL;
		{
			char e2[1024];
			json_t *copy = json_incref(j->svc);

			ccm_job_free(j);
			if (start(c, s, CCM_JOB_GET, copy, json_array(), x, e2, sizeof(e2)) < 0) {
				json_decref(copy);
				sync_ctx_free(x);
				enqueue(c, s, true);
				turn_over(c);
				return;
			}
			json_decref(copy);
		}
		return;
	case STAGE_HOSTS_CHECK:
		if (ok && !j->exists)
			break;
		names_of(x->hosts, msg, sizeof(msg));
		svc_event(c, svc, "Warning", "UpdateLoadBalancerFailed",
			  "Error updating load balancer with new hosts %s [node names limited, "
			  "total number of nodes: %zu], error: %s",
			  msg, json_array_size(x->hosts), x->err);
		/* servicesToRetry: a full sync of the Service */
		s->want_sync = true;
		if (!s->queued) {
			s->queued = true;
			json_array_append_new(c->queue, json_string(s->key));
		}
		break;
	}
	sync_ctx_free(x);
	ccm_job_free(j);
	turn_over(c);
}

static void kick_timer(struct emu *emu, void *arg)
{
	struct ccm *c = arg;

	(void)emu;
	c->kick_timer = 0;
	while (!c->job && json_array_size(c->queue) && !c->k->emu->stopping) {
		char key[320];
		struct lbsvc *s;

		snprintf(key, sizeof(key), "%s",
			 json_string_value(json_array_get(c->queue, 0)) ?: "");
		json_array_remove(c->queue, 0);
		s = svc_find(c, key);
		if (!s)
			continue;
		s->queued = false;
		if (s->want_sync) {
			s->want_sync = false;
			s->want_hosts = false;
			sync_service(c, s);
		} else if (s->want_hosts) {
			s->want_hosts = false;
			sync_hosts(c, s);
		}
	}
}

static void kick(struct ccm *c)
{
	if (c->kick_timer || c->job)
		return;
	c->kick_timer = emu_timer_add(c->k->emu, 0, kick_timer, c);
	if (c->kick_timer < 0)
		c->kick_timer = 0;
}

/* ---- the informers ---- */

static void node_sync_timer(struct emu *emu, void *arg)
{
	struct ccm *c = arg;
	json_t *nodes, *now;

	(void)emu;
	c->node_timer = 0;
	nodes = stable_nodes(c->k);
	now = node_set(nodes);
	json_decref(nodes);
	for (size_t i = 0; i < c->nsvcs; i++) {
		struct lbsvc *s = c->svcs[i];

		if (!s->state || !wants_lb(s->state) || !s->synced)
			continue;
		if (json_equal(s->synced, now))
			continue;
		json_decref(s->synced);
		s->synced = json_incref(now);
		log_info("ccm: node set of service %s changed: updating its load balancer", s->key);
		enqueue(c, s, false);
	}
	json_decref(now);
}

static void node_changed(struct ccm *c)
{
	if (c->node_timer)
		return;
	c->node_timer = emu_timer_add(c->k->emu, c->k->ccm_delay_ms, node_sync_timer, c);
	if (c->node_timer < 0)
		c->node_timer = 0;
}

void kube_ccm_on_event(struct ccm *c, const struct kube_event *ev)
{
	const char *res = ev->res->def.resource;
	char key[320];

	if (!c || ev->res->def.group[0])
		return;
	if (!strcmp(res, "nodes")) {
		if (ev->type == KEV_MODIFIED && ev->old) {
			json_t *old = kobj_full(ev->old);
			const json_t *now = ev->obj->obj;
			bool changed = node_included(old) != node_included(now) ||
				       strcmp(kj_str(old, "spec.providerID") ?: "",
					      kj_str(now, "spec.providerID") ?: "");

			json_decref(old);
			if (!changed)
				return;
		}
		node_changed(c);
		return;
	}
	if (strcmp(res, "services"))
		return;
	snprintf(key, sizeof(key), "%s/%s", kobj_namespace(ev->obj), kobj_name(ev->obj));
	if (ev->type == KEV_DELETED) {
		struct lbsvc *s = svc_find(c, key);

		if (s)
			enqueue(c, s, true);
		return;
	}
	{
		json_t *now = kobj_full(ev->obj), *old = ev->old ? kobj_full(ev->old) : NULL;
		bool want = ev->type == KEV_ADDED ? wants_lb(now) || needs_cleanup(now)
						  : needs_update(old, now) || needs_cleanup(now);

		if (want) {
			struct lbsvc *s = svc_get(c, key);

			if (s)
				enqueue(c, s, true);
		}
		json_decref(now);
		json_decref(old);
	}
}

/* The informers' first list: every Service, after a start or a state load. */
static void resync_timer(struct emu *emu, void *arg)
{
	struct ccm *c = arg;
	struct kube_res *r = services_res(c->k);

	(void)emu;
	c->resync_timer = 0;
	for (size_t i = 0; i < r->len; i++) {
		json_t *svc = kobj_full(r->items[i].obj);

		if (svc && (wants_lb(svc) || needs_cleanup(svc))) {
			struct lbsvc *s = svc_get(c, r->items[i].key);

			if (s)
				enqueue(c, s, true);
		}
		json_decref(svc);
	}
}

static void schedule_resync(struct ccm *c)
{
	if (c->resync_timer)
		return;
	c->resync_timer = emu_timer_add(c->k->emu, 0, resync_timer, c);
	if (c->resync_timer < 0)
		c->resync_timer = 0;
}

struct ccm *kube_ccm_new(struct emu_kube *k)
{
	struct ccm *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->k = k;
	c->queue = json_array();
	if (!c->queue) {
		free(c);
		return NULL;
	}
	schedule_resync(c);
	return c;
}

static void forget_all(struct ccm *c)
{
	if (c->job) {
		ccm_job_free(c->job);
		c->job = NULL;
		c->job_svc = NULL;
		sync_ctx_free(c->job_x);
		c->job_x = NULL;
	}
	while (c->nsvcs)
		svc_forget(c, c->svcs[0]);
	json_array_clear(c->queue);
	if (c->kick_timer)
		emu_timer_cancel(c->k->emu, c->kick_timer);
	if (c->node_timer)
		emu_timer_cancel(c->k->emu, c->node_timer);
	c->kick_timer = c->node_timer = 0;
	c->region[0] = '\0';
}

void kube_ccm_reset(struct ccm *c)
{
	if (!c)
		return;
	forget_all(c);
	free(c->token);
	c->token = NULL;
	schedule_resync(c);
}

void kube_ccm_free(struct ccm *c)
{
	if (!c)
		return;
	forget_all(c);
	if (c->resync_timer)
		emu_timer_cancel(c->k->emu, c->resync_timer);
	json_decref(c->queue);
	free(c->svcs);
	free(c->token);
	free(c);
}

/* ---- the health of what it made ---- */

static const json_t *node_of_instance(struct emu_kube *k, const char *zone, const char *name)
{
	struct kube_res *nodes = nodes_res(k);
	char want[400];
	struct kobj *o;

	snprintf(want, sizeof(want), "gce://%s/%s/%s", k->emu->opt.project, zone, name);
	o = kube_get(nodes, NULL, name);
	if (o && (!kj_str(o->obj, "spec.providerID") ||
		  !strcmp(kj_str(o->obj, "spec.providerID"), want)))
		return o->obj;
	for (size_t i = 0; i < nodes->len; i++)
		if (!strcmp(kj_str(nodes->items[i].obj->obj, "spec.providerID") ?: "", want))
			return nodes->items[i].obj->obj;
	return NULL;
}

static bool local_endpoint(struct emu_kube *k, const json_t *svc, const char *node)
{
	struct kube_res *pods = kube_res_find(k, "", "v1", "pods");
	const json_t *sel = kj_path(svc, "spec.selector");
	const char *ns = kj_str(svc, "metadata.namespace") ?: "";
	json_t *ls;
	char prefix[300];
	bool found = false;

	if (!json_object_size(sel))
		return false;
	ls = json_pack("{s:O}", "matchLabels", sel);
	snprintf(prefix, sizeof(prefix), "%s/", ns);
	for (size_t i = kube_lower_bound(pods, prefix); !found && i < pods->len; i++) {
		json_t *p;

		if (strncmp(pods->items[i].key, prefix, strlen(prefix)))
			break;
		p = kobj_full(pods->items[i].obj);
		found = p && !strcmp(kj_str(p, "spec.nodeName") ?: "", node) &&
			!kj_str(p, "metadata.deletionTimestamp") &&
			kube_label_selector_json_match(ls, kj_path(p, "metadata.labels")) &&
			kube_pod_ready(p);
		json_decref(p);
	}
	json_decref(ls);
	return found;
}

bool emu_kube_lb_healthy(struct emu *emu, const char *zone, const char *instance, unsigned port,
			 const char *path)
{
	struct emu_kube *k = emu->kube;
	const json_t *node, *ready;
	struct kube_res *svcs;

	if (!k || !zone || !instance || !path)
		return false;
	node = node_of_instance(k, zone, instance);
	ready = node ? kube_condition(node, "Ready") : NULL;
	if (!ready || strcmp(kj_str(ready, "status") ?: "", "True") != 0 ||
	    kj_str(node, "metadata.deletionTimestamp"))
		return false;
	if (strcmp(path, NODES_HC_PATH) != 0)
		return false;
	if (port == NODES_HC_PORT)
		return node_untainted(node); /* kube-proxy: 503 once marked for deletion */
	svcs = services_res(k);
	for (size_t i = 0; i < svcs->len; i++) {
		json_t *svc = kobj_full(svcs->items[i].obj);
		bool ok = svc && ccm_service_hc_port(svc) == port &&
			  local_endpoint(k, svc, kj_str(node, "metadata.name") ?: "");

		json_decref(svc);
		if (ok)
			return true;
	}
	return false;
}
