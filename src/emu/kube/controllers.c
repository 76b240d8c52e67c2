/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The emulated cluster's own components, driven by timers on the loop (never blocking):
 *
 * kubelet (one per Talos instance: an instance with a `user-data` metadata item)
 *   - registers its Node shortly (--kubelet-delay) after the instance is RUNNING: name =
 *     instance name, labels kubernetes.io/hostname, os and arch, the control-plane role,
 *     status.addresses InternalIP = nic0 networkIP and Hostname, the kubelet conditions
 *     (Ready), nodeInfo, and the taint node.cloudprovider.kubernetes.io/uninitialized that
 *     an external cloud provider's kubelet sets until the CCM initializes the Node;
 *   - registers only when it starts: the instance booted (insert, start, reset) or the
 *     emulator started; never by itself after the Node was deleted (kubernetes/kubernetes
 *     #71398: the kubelet registers at startup only). Starting with its Node present, it
 *     posts Ready again with a new bootID. While the instance is stopped it posts nothing:
 *     the Node goes Unknown after the grace (--kubelet-delay) and stays. It stops when the
 *     instance is deleted;
 *   - on control-plane nodes, runs kube-controller-manager as a static Pod (mirror Pod
 *     kube-system/kube-controller-manager-NODE owned by the Node), with Talos' arguments and
 *     --allocate-node-cidrs=false: the KCM allocates nothing.
 *   A Talos node is a control plane when its user-data machine config says
 *   `type: controlplane` (or init), when its instance label talos-role (or role) is
 *   controlplane, or when a dash-separated part of its name is cp, cpN, controlplane,
 *   control-plane or master.
 *
 * node lifecycle (KCM's, then the CCM's cloud node lifecycle controller)
 *   - a deleted instance's kubelet stops posting: after --kubelet-delay its Node's
 *     conditions turn Unknown ("Kubelet stopped posting node status.") with the unreachable
 *     taints; after --ccm-delay more the CCM finds no instance and deletes the Node (event
 *     DeletingNode). Deleting an instance deletes nothing else. The real controller polls
 *     every NotReady Node; this one acts on the instance deletions it is told about, so a
 *     Node created by hand for an instance that never existed is left alone.
 *
 * CCM node controller: initializes tainted Nodes (providerID gce://PROJECT/ZONE/NAME,
 *   topology.kubernetes.io/zone and region, node.kubernetes.io/instance-type, addresses
 *   with the ExternalIP of an access config) and removes the taint.
 *
 * CCM node IPAM (--ccm-allocator):
 *   cloud: CloudAllocator (cloud-provider-gcp pkg/controller/nodeipam/ipam/
 *     cloud_cidr_allocator.go): needs spec.providerID; no alias on nic0 -> event
 *     CIDRNotAvailable and a retry; else spec.podCIDR/podCIDRs := aliasIpRanges[0] by a
 *     strategic merge patch (PatchNodeCIDRs), then NetworkUnavailable=False reason
 *     RouteCreated. A Node that already holds another podCIDR refuses the patch
 *     (immutable), the allocator records CIDRAssignmentFailed and the mismatch stays.
 *     Retries back off from 250 ms to 5 s, 10 at most (updateRetryTimeout,
 *     maxUpdateRetryTimeout, updateMaxRetries), then wait for the next Node update.
 *   range: RangeAllocator (kubernetes pkg/controller/nodeipam/ipam/range_allocator.go and
 *     cidrset): /24s from --cluster-cidr, the next free one after the last allocated
 *     (cidrset's nextCandidate), released when the Node goes. It never looks at alias
 *     ranges; as a deterministic stand-in for that independence it also skips the range
 *     equal to the Node's own alias, so the split-brain of the design note always shows.
 *   off: nobody sets podCIDR.
 *   --cluster-cidr defaults to the secondary range (named as nic0's alias, `pods`) of the
 *   first Talos instance's subnetwork, read from the Compute state, else 172.20.0.0/16.
 *
 * Visible as in a real cluster: kube-system Deployment gcp-cloud-controller-manager whose
 * container args say the mode (--allocate-node-cidrs, --cidr-allocator-type, --cluster-cidr,
 * --configure-cloud-routes=false), the KCM static Pods above, and core/v1 Events.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <strings.h>

#include "common/cidr.h"
#include "common/log.h"
#include "emu/kube/kube.h"

#define DEFAULT_CLUSTER_CIDR "172.20.0.0/16"
#define NODE_MASK            24
#define RETRY_BASE_MS        250  /* updateRetryTimeout */
#define RETRY_MAX_MS         5000 /* maxUpdateRetryTimeout */
#define RETRY_MAX            10   /* updateMaxRetries */
#define BOOT_POLL_MS         100
#define CCM_NAME             "gcp-cloud-controller-manager"
#define UNINIT_TAINT         "node.cloudprovider.kubernetes.io/uninitialized"
#define IMAGE_TALOS          "Talos (v1.10.3)"

struct kinst {
	struct kube_ctrl *c;
	char *zone, *name;
	bool exists, talos;
	char status[20];    /* the instance's status when last seen; "" before (or after a load) */
	bool reboot;        /* the pending kubelet start follows a guest boot, not our own start */
	long kubelet_timer; /* registration (or status after a boot), or boot poll */
	long gone_timer;    /* lifecycle after the instance's deletion */
	int gone_stage;
	long down_timer; /* the instance stopped: its Node's status goes Unknown after the grace */
};

struct kube_ctrl {
	struct emu_kube *k;
	struct kinst **inst;
	size_t ninst;
	json_t *index;         /* "zone/name" -> position in inst */
	json_t *by_name;       /* "name" -> position in inst (the latest) */
	json_t *subnets_tried; /* subnetworks read for the cluster CIDR */
	json_t *queue;         /* node names for the CCM's next pass */
	long ccm_timer;
	json_t *delayed; /* node name -> due ms (retries) */
	long delayed_timer;
	uint64_t delayed_due;
	json_t *failures; /* node name -> failed attempts */
	long reconcile_timer;
	struct kube_workloads *workloads; /* pods and their controllers (workloads.c) */
	struct ccm *ccm;                  /* the CCM's service controller (ccm_services.c) */
	/* RangeAllocator */
	bool range_ready;
	struct cidr cluster;
	uint8_t *used; /* one bit per /24 */
	uint64_t nsub, next_candidate;
};

static struct kube_res *nodes_res(struct emu_kube *k)
{
	return kube_res_find(k, "", "v1", "nodes");
}

/* ---- instances ---- */
static struct kinst *inst_find(struct kube_ctrl *c, const char *zone, const char *name)
{
	char key[300];
	json_t *v;

	snprintf(key, sizeof(key), "%s/%s", zone, name);
	v = json_object_get(c->index, key);
	return v ? c->inst[json_integer_value(v)] : NULL;
}

static struct kinst *inst_by_name(struct kube_ctrl *c, const char *name)
{
	json_t *v = json_object_get(c->by_name, name);
	struct kinst *ki = v ? c->inst[json_integer_value(v)] : NULL;

	if (ki && !ki->exists) {
		/* The same name in another zone may be the live one. */
		for (size_t i = 0; i < c->ninst; i++)
			if (c->inst[i]->exists && !strcmp(c->inst[i]->name, name))
				return c->inst[i];
	}
	return ki;
}

static struct kinst *inst_get(struct kube_ctrl *c, const char *zone, const char *name)
{
	struct kinst *ki = inst_find(c, zone, name), **n;
	char key[300];

	if (ki)
		return ki;
	ki = calloc(1, sizeof(*ki));
	n = realloc(c->inst, (c->ninst + 1) * sizeof(*n));
	if (!ki || !n) {
		free(ki);
		if (n)
			c->inst = n;
		return NULL;
	}
	c->inst = n;
	ki->c = c;
	ki->zone = strdup(zone);
	ki->name = strdup(name);
	if (!ki->zone || !ki->name) {
		free(ki->zone);
		free(ki->name);
		free(ki);
		return NULL;
	}
	snprintf(key, sizeof(key), "%s/%s", zone, name);
	json_object_set_new(c->index, key, json_integer((json_int_t)c->ninst));
	json_object_set_new(c->by_name, name, json_integer((json_int_t)c->ninst));
	c->inst[c->ninst++] = ki;
	return ki;
}

static const json_t *instance_of(struct kinst *ki)
{
	return emu_compute_instance(ki->c->k->emu, ki->zone, ki->name);
}

static const char *metadata_item(const json_t *inst, const char *key)
{
	json_t *it;
	size_t i;

	json_array_foreach(kj_path(inst, "metadata.items"), i, it)
	{
		if (kj_str(it, "key") && !strcmp(kj_str(it, "key"), key))
			return kj_str(it, "value") ?: "";
	}
	return NULL;
}

static const char *last_segment(const char *url)
{
	const char *s = url ? strrchr(url, '/') : NULL;

	return s ? s + 1 : (url ? url : "");
}

static const json_t *nic0(const json_t *inst)
{
	json_t *nics = json_object_get(inst, "networkInterfaces"), *n;
	size_t i;

	json_array_foreach(nics, i, n)
	{
		if (kj_str(n, "name") && !strcmp(kj_str(n, "name"), "nic0"))
			return n;
	}
	return json_array_get(nics, 0);
}

static bool name_says_control_plane(const char *name)
{
	const char *p = name;

	while (*p) {
		const char *dash = strchr(p, '-');
		size_t n = dash ? (size_t)(dash - p) : strlen(p);
		char part[64];

		if (n < sizeof(part)) {
			memcpy(part, p, n);
			part[n] = '\0';
			if (!strcmp(part, "controlplane") || !strcmp(part, "master"))
				return true;
			if (!strncmp(part, "cp", 2) && strspn(part + 2, "0123456789") == n - 2)
				return true;
			if (!strcmp(part, "control") && dash && !strncmp(dash + 1, "plane", 5) &&
			    (dash[6] == '\0' || dash[6] == '-'))
				return true;
		}
		p += n + (dash ? 1 : 0);
	}
	return false;
}

/* The Talos machine config says `machine: type: controlplane|init|worker`. */
static int user_data_type(const char *ud)
{
	for (const char *p = ud; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		const char *q = p;

		while (q < p + n && (*q == ' ' || *q == '\t'))
			q++;
		if (q > p && !strncmp(q, "type:", 5)) {
			q += 5;
			while (*q == ' ')
				q++;
			if (!strncmp(q, "controlplane", 12) || !strncmp(q, "init", 4))
				return 1;
			if (!strncmp(q, "worker", 6))
				return 0;
		}
		p += n + (eol ? 1 : 0);
	}
	return -1;
}

static bool is_control_plane(const json_t *inst, const char *name)
{
	const char *ud = metadata_item(inst, "user-data");
	const char *role = kj_str(inst, "labels.talos-role") ?: kj_str(inst, "labels.role");
	int t = user_data_type(ud);

	if (t >= 0)
		return t == 1;
	if (role)
		return !strcmp(role, "controlplane") || !strcmp(role, "control-plane");
	return name_says_control_plane(name);
}

bool emu_kube_instance_control_plane(const json_t *instance, const char *name)
{
	return instance && name && is_control_plane(instance, name);
}

/* ---- cluster CIDR ---- */
/* Depth-first search of the Compute dump for the subnetwork whose selfLink ends as want. */
static const json_t *find_subnet(const json_t *v, const char *want, int depth)
{
	const char *key;
	json_t *x;
	size_t i;

	if (depth > 8)
		return NULL;
	if (json_is_object(v)) {
		const char *kind = kj_str(v, "kind"), *self = kj_str(v, "selfLink");
		if (kind && !strcmp(kind, "compute#subnetwork") && self) {
			size_t a = strlen(self), b = strlen(want);
			if (a >= b && !strcmp(self + a - b, want))
				return v;
		}
		json_object_foreach((json_t *)v, key, x)
		{
			const json_t *r = find_subnet(x, want, depth + 1);
			if (r)
				return r;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
		{
			const json_t *r = find_subnet(x, want, depth + 1);
			if (r)
				return r;
		}
	}
	return NULL;
}

static void update_config_objects(struct emu_kube *k);

/* The secondary range nic0's alias comes from (the `pods` range), from the Compute state. */
static void resolve_cluster_cidr(struct emu_kube *k, const json_t *inst)
{
	const json_t *nic = nic0(inst),
		     *alias = json_array_get(json_object_get(nic, "aliasIpRanges"), 0);
	const char *sub = kj_str(nic, "subnetwork"), *range_name, *p;
	const json_t *subnet, *r;
	json_t *dump;
	size_t i;

	if (k->cluster_cidr[0] || !sub || !k->ctrl || json_object_get(k->ctrl->subnets_tried, sub))
		return;
	/* Once per subnetwork: the whole Compute state is read. */
	json_object_set_new(k->ctrl->subnets_tried, sub, json_true());
	range_name = kj_str(alias, "subnetworkRangeName") ?: "pods";
	p = strstr(sub, "/regions/");
	if (!p)
		return;
	dump = emu_compute_dump(k->emu);
	subnet = find_subnet(dump, p, 0);
	json_array_foreach(json_object_get(subnet, "secondaryIpRanges"), i, r)
	{
		const char *cidr = kj_str(r, "ipCidrRange");
		struct cidr c;
		if (kj_str(r, "rangeName") && !strcmp(kj_str(r, "rangeName"), range_name) && cidr &&
		    cidr_parse(cidr, &c, CIDR_STRICT) == 0 && c.addr.family == AF_INET &&
		    c.prefix <= NODE_MASK) {
			snprintf(k->cluster_cidr, sizeof(k->cluster_cidr), "%s", cidr);
			log_info("kube: cluster CIDR %s (secondary range %s of subnetwork %s)",
				 cidr, range_name, last_segment(sub));
		}
	}
	json_decref(dump);
	if (k->cluster_cidr[0])
		update_config_objects(k);
}

static const char *cluster_cidr(struct emu_kube *k)
{
	return k->cluster_cidr[0] ? k->cluster_cidr : DEFAULT_CLUSTER_CIDR;
}

/* ---- objects the cluster shows about itself ---- */
static void put_object(struct emu_kube *k, const char *group, const char *resource, const char *ns,
		       json_t *obj, bool update_spec)
{
	struct kube_res *r = kube_res_find(k, group, "v1", resource);
	struct kube_err e = {0};
	char name[300];
	struct kobj *cur;

	snprintf(name, sizeof(name), "%s", kj_str(obj, "metadata.name") ?: "");
	cur = kube_get(r, ns, name);
	if (!cur) {
		kube_create(k, r, ns, obj, KWF_CONTROLLER, &e, NULL);
	} else if (update_spec) {
		json_t *n = json_deep_copy(cur->obj);
		json_object_set(n, "spec", json_object_get(obj, "spec"));
		if (json_object_get(obj, "status"))
			json_object_set(n, "status", json_object_get(obj, "status"));
		json_decref(obj);
		kube_update(k, r, ns, kobj_name(cur), n, KW_INTERNAL, KWF_CONTROLLER, &e, NULL);
	} else {
		json_decref(obj);
	}
	if (e.code)
		log_warn("kube: cannot write %s %s/%s: %s", resource, ns ? ns : "", name,
			 e.message);
	kube_err_clear(&e);
}

static json_t *ccm_args(struct emu_kube *k)
{
	json_t *args =
	    json_pack("[s, s, s, s, s]", "--cloud-provider=gce",
		      "--cloud-config=/etc/kubernetes/cloud.config", "--leader-elect=true",
		      "--use-service-account-credentials=true", "--v=2");
	char buf[128];

	switch (k->emu->opt.ccm_allocator) {
	case EMU_CCM_CLOUD:
	case EMU_CCM_RANGE:
		json_array_append_new(args, json_string("--allocate-node-cidrs=true"));
		snprintf(buf, sizeof(buf), "--cidr-allocator-type=%s",
			 k->emu->opt.ccm_allocator == EMU_CCM_CLOUD ? "CloudAllocator"
								    : "RangeAllocator");
		json_array_append_new(args, json_string(buf));
		snprintf(buf, sizeof(buf), "--cluster-cidr=%s", cluster_cidr(k));
		json_array_append_new(args, json_string(buf));
		if (k->emu->opt.ccm_allocator == EMU_CCM_RANGE)
			json_array_append_new(args, json_string("--node-cidr-mask-size=24"));
		break;
	case EMU_CCM_OFF:
		json_array_append_new(args, json_string("--allocate-node-cidrs=false"));
		break;
	}
	json_array_append_new(args, json_string("--configure-cloud-routes=false"));
	return args;
}

static json_t *kcm_args(struct emu_kube *k)
{
	char buf[128];
	json_t *rest,
	    *args = json_pack(
		"[s, s, s, s]", "--allocate-node-cidrs=false",
		"--authentication-kubeconfig=/system/secrets/kubernetes/kube-controller-manager/kubeconfig",
		"--authorization-kubeconfig=/system/secrets/kubernetes/kube-controller-manager/kubeconfig",
		"--bind-address=127.0.0.1");

	json_array_append_new(args, json_string("--cloud-provider=external"));
	snprintf(buf, sizeof(buf), "--cluster-cidr=%s", cluster_cidr(k));
	json_array_append_new(args, json_string(buf));
	rest = json_pack(
	    "[s, s, s, s, s, s, s, s, s, s, s]",
	    "--cluster-signing-cert-file=/system/secrets/kubernetes/kube-controller-manager/ca.crt",
	    "--cluster-signing-key-file=/system/secrets/kubernetes/kube-controller-manager/ca.key",
	    "--configure-cloud-routes=false", "--controllers=*,tokencleaner",
	    "--kubeconfig=/system/secrets/kubernetes/kube-controller-manager/kubeconfig",
	    "--leader-elect=true",
	    "--root-ca-file=/system/secrets/kubernetes/kube-controller-manager/ca.crt",
	    "--service-account-private-key-file=/system/secrets/kubernetes/kube-controller-manager/service-account.key",
	    "--service-cluster-ip-range=10.96.0.0/12", "--tls-min-version=VersionTLS13",
	    "--use-service-account-credentials");
	json_array_extend(args, rest);
	json_decref(rest);
	return args;
}

static json_t *ccm_deployment(struct emu_kube *k)
{
	json_t *d = json_pack(
	    "{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:{s:i, s:{s:{s:s}}, s:{s:{s:{s:s, s:s}}, "
	    "s:{s:s, s:b, s:s, s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s}], "
	    "s:{s:{s:{s:[{s:[{s:s, s:s}]}]}}}, s:[{s:s, s:s, s:o, s:{s:{s:s}}}]}}}, "
	    "s:{s:i, s:i, s:i, s:i, s:i, s:i}}",
	    "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name", CCM_NAME,
	    "namespace", "kube-system", "labels", "component", "cloud-controller-manager", "tier",
	    "control-plane", "spec", "replicas", 1, "selector", "matchLabels", "component",
	    "cloud-controller-manager", "template", "metadata", "labels", "component",
	    "cloud-controller-manager", "tier", "control-plane", "spec", "serviceAccountName",
	    "cloud-controller-manager", "hostNetwork", 1, "priorityClassName",
	    "system-cluster-critical", "tolerations", "key", UNINIT_TAINT, "value", "true",
	    "effect", "NoSchedule", "key", "node.kubernetes.io/not-ready", "operator", "Exists",
	    "effect", "NoSchedule", "key", "node-role.kubernetes.io/control-plane", "effect",
	    "NoSchedule", "affinity", "nodeAffinity",
	    "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms",
	    "matchExpressions", "key", "node-role.kubernetes.io/control-plane", "operator",
	    "Exists", "containers", "name", "cloud-controller-manager", "image",
	    "registry.k8s.io/cloud-provider-gcp/cloud-controller-manager:v33.1.1", "args",
	    ccm_args(k), "resources", "requests", "cpu", "50m", "status", "observedGeneration", 1,
	    "replicas", 1, "updatedReplicas", 1, "readyReplicas", 1, "availableReplicas", 1,
	    "unavailableReplicas", 0);

	if (d)
		json_object_del(json_object_get(d, "status"), "unavailableReplicas");
	return d;
}

static json_t *service_account(const char *name)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind", "ServiceAccount",
			 "metadata", "name", name, "namespace", "kube-system");
}

static void update_config_objects(struct emu_kube *k)
{
	struct kube_res *pods = kube_res_find(k, "", "v1", "pods");
	json_t *names = json_array(), *v;
	size_t i;

	put_object(k, "apps", "deployments", "kube-system", ccm_deployment(k), true);
	/* The KCM static Pods carry --cluster-cidr too. */
	for (i = kube_lower_bound(pods, "kube-system/kube-controller-manager-"); i < pods->len;
	     i++) {
		if (strncmp(pods->items[i].key, "kube-system/kube-controller-manager-", 36))
			break;
		json_array_append_new(names, json_string(kobj_name(pods->items[i].obj)));
	}
	json_array_foreach(names, i, v)
	{
		struct kobj *o = kube_get(pods, "kube-system", json_string_value(v));
		json_t *n, *c;
		struct kube_err e = {0};
		if (!o)
			continue;
		n = json_deep_copy(o->obj);
		c = json_array_get(kj_path(n, "spec.containers"), 0);
		json_object_set_new(c, "args", kcm_args(k));
		kube_update(k, pods, "kube-system", json_string_value(v), n, KW_INTERNAL,
			    KWF_CONTROLLER, &e, NULL);
		kube_err_clear(&e);
	}
	json_decref(names);
}

void kube_ctrl_bootstrap(struct emu_kube *k)
{
	static const char *const namespaces[] = {"default", "kube-system", "kube-public",
						 "kube-node-lease"};

	for (size_t i = 0; i < 4; i++)
		put_object(k, "", "namespaces", NULL,
			   json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
				     "metadata", "name", namespaces[i]),
			   false);
	put_object(k, "", "services", "default",
		   json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:{s:s, s:s, s:[{s:s, s:i, "
			     "s:s, s:i}]}}",
			     "apiVersion", "v1", "kind", "Service", "metadata", "name",
			     "kubernetes", "namespace", "default", "labels", "component",
			     "apiserver", "provider", "kubernetes", "spec", "type", "ClusterIP",
			     "clusterIP", "10.96.0.1", "ports", "name", "https", "port", 443,
			     "protocol", "TCP", "targetPort", 6443),
		   false);
	put_object(k, "", "serviceaccounts", "kube-system",
		   service_account("cloud-controller-manager"), false);
	put_object(k, "", "serviceaccounts", "kube-system", service_account("talos-gcp"), false);
	put_object(k, "apps", "deployments", "kube-system", ccm_deployment(k), true);
}

/* ---- the kubelet ---- */
/* Capacity from the machine type: N vCPUs, 4 GiB each (highmem 8, highcpu 1). */
static void capacity(const char *machine_type, json_t *status)
{
	long cpus = 2, mem_gib = 8;
	const char *p = strrchr(machine_type, '-');
	char cpu[32], mem[32], alloc_cpu[32];
	json_t *cap;

	if (p && p[1] >= '0' && p[1] <= '9') {
		cpus = strtol(p + 1, NULL, 10);
		if (cpus < 1 || cpus > 1024)
			cpus = 2;
		if (strstr(machine_type, "highmem"))
			mem_gib = cpus * 8;
		else if (strstr(machine_type, "highcpu"))
			mem_gib = cpus;
		else
			mem_gib = cpus * 4;
	} else if (strstr(machine_type, "medium")) {
		mem_gib = 4;
	} else if (strstr(machine_type, "small") || strstr(machine_type, "micro")) {
		mem_gib = 2;
	}
	snprintf(cpu, sizeof(cpu), "%ld", cpus);
	snprintf(mem, sizeof(mem), "%ldKi", mem_gib * 1024 * 1024 - 200 * 1024);
	snprintf(alloc_cpu, sizeof(alloc_cpu), "%ldm", cpus * 1000 - 50);
	cap =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "cpu", cpu, "ephemeral-storage", "20458Mi",
		      "hugepages-1Gi", "0", "hugepages-2Mi", "0", "memory", mem, "pods", "110");
	json_object_set_new(status, "allocatable", json_deep_copy(cap));
	json_object_set_new(json_object_get(status, "allocatable"), "cpu", json_string(alloc_cpu));
	json_object_set_new(status, "capacity", cap);
}

static json_t *kubelet_conditions(const char *status, const char *now)
{
	bool known = !strcmp(status, "ok");
	const char *cs = known ? "False" : "Unknown";
	const char *unknown_msg = "Kubelet stopped posting node status.";

	return json_pack(
	    "[{s:s, s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s, s:s}, "
	    "{s:s, s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s, s:s}]",
	    "type", "MemoryPressure", "status", cs, "lastHeartbeatTime", now, "lastTransitionTime",
	    now, "reason", known ? "KubeletHasSufficientMemory" : "NodeStatusUnknown", "message",
	    known ? "kubelet has sufficient memory available" : unknown_msg, "type", "DiskPressure",
	    "status", cs, "lastHeartbeatTime", now, "lastTransitionTime", now, "reason",
	    known ? "KubeletHasNoDiskPressure" : "NodeStatusUnknown", "message",
	    known ? "kubelet has no disk pressure" : unknown_msg, "type", "PIDPressure", "status",
	    cs, "lastHeartbeatTime", now, "lastTransitionTime", now, "reason",
	    known ? "KubeletHasSufficientPID" : "NodeStatusUnknown", "message",
	    known ? "kubelet has sufficient PID available" : unknown_msg, "type", "Ready", "status",
	    known ? "True" : "Unknown", "lastHeartbeatTime", now, "lastTransitionTime", now,
	    "reason", known ? "KubeletReady" : "NodeStatusUnknown", "message",
	    known ? "kubelet is posting ready status" : unknown_msg);
}

static void hex_id(char *out, size_t bytes)
{
	uint8_t b[32];

	kube_random_bytes(b, bytes);
	for (size_t i = 0; i < bytes; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static json_t *kubelet_node(struct emu_kube *k, struct kinst *ki, const json_t *inst, bool cp)
{
	const json_t *nic = nic0(inst);
	const char *ip = kj_str(nic, "networkIP") ?: "";
	char now[40], machine_id[33], boot[37], uuid[37];
	json_t *node, *labels, *taints, *status;

	emu_rfc3339(now, sizeof(now));
	hex_id(machine_id, 16);
	kube_uuid(boot);
	kube_uuid(uuid);
	labels = json_pack("{s:s, s:s, s:s, s:s, s:s}", "beta.kubernetes.io/arch", "amd64",
			   "beta.kubernetes.io/os", "linux", "kubernetes.io/arch", "amd64",
			   "kubernetes.io/hostname", ki->name, "kubernetes.io/os", "linux");
	taints = json_pack("[{s:s, s:s, s:s}]", "key", UNINIT_TAINT, "value", "true", "effect",
			   "NoSchedule");
	if (cp) {
		json_object_set_new(labels, "node-role.kubernetes.io/control-plane",
				    json_string(""));
		json_object_set_new(labels,
				    "node.kubernetes.io/exclude-from-external-load-balancers",
				    json_string(""));
		json_array_append_new(taints, json_pack("{s:s, s:s}", "key",
							"node-role.kubernetes.io/control-plane",
							"effect", "NoSchedule"));
	}
	status = json_object();
	capacity(last_segment(kj_str(inst, "machineType")), status);
	json_object_set_new(status, "conditions", kubelet_conditions("ok", now));
	json_object_set_new(status, "addresses",
			    json_pack("[{s:s, s:s}, {s:s, s:s}]", "type", "InternalIP", "address",
				      ip, "type", "Hostname", "address", ki->name));
	json_object_set_new(status, "daemonEndpoints",
			    json_pack("{s:{s:i}}", "kubeletEndpoint", "Port", 10250));
	json_object_set_new(status, "nodeInfo",
			    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
				      "machineID", machine_id, "systemUUID", uuid, "bootID", boot,
				      "kernelVersion", "6.12.31-talos", "osImage", IMAGE_TALOS,
				      "containerRuntimeVersion", "containerd://2.0.5",
				      "kubeletVersion", KUBE_GIT_VERSION, "kubeProxyVersion", "",
				      "operatingSystem", "linux", "architecture", "amd64"));
	node = json_pack("{s:s, s:s, s:{s:s, s:o, s:{s:s, s:s}}, s:{s:o}, s:o}", "apiVersion", "v1",
			 "kind", "Node", "metadata", "name", ki->name, "labels", labels,
			 "annotations", "node.alpha.kubernetes.io/ttl", "0",
			 "volumes.kubernetes.io/controller-managed-attach-detach", "true", "spec",
			 "taints", taints, "status", status);
	(void)k;
	return node;
}

/* The KCM's mirror Pod on a control-plane node, owned by the Node (as kubelets set it). */
static void kcm_static_pod(struct emu_kube *k, const struct kobj *node)
{
	struct kube_res *pods = kube_res_find(k, "", "v1", "pods");
	char name[300], now[40], hash[33];
	const char *ip = NULL;
	json_t *pod, *a;
	size_t i;

	snprintf(name, sizeof(name), "kube-controller-manager-%s", kobj_name(node));
	if (kube_get(pods, "kube-system", name))
		return;
	json_array_foreach(kj_path(node->obj, "status.addresses"), i, a)
	{
		if (!strcmp(kj_str(a, "type") ?: "", "InternalIP"))
			ip = kj_str(a, "address");
	}
	emu_rfc3339(now, sizeof(now));
	hex_id(hash, 16);
	pod = json_pack(
	    "{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s}, "
	    "s:[{s:s, s:s, s:s, s:s, s:b, s:b}]}, "
	    "s:{s:s, s:b, s:s, s:s, s:[{s:s, s:s, s:[s], s:o, s:{s:{s:s, s:s}}}], "
	    "s:[{s:s, s:s}]}, "
	    "s:{s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}], "
	    "s:[{s:s, s:b, s:i, s:s, s:s, s:b, s:{s:{s:s}}}]}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", name, "namespace", "kube-system",
	    "labels", "k8s-app", "kube-controller-manager", "tier", "control-plane", "annotations",
	    "kubernetes.io/config.hash", hash, "kubernetes.io/config.mirror", hash,
	    "kubernetes.io/config.seen", now, "kubernetes.io/config.source", "file",
	    "ownerReferences", "apiVersion", "v1", "kind", "Node", "name", kobj_name(node), "uid",
	    kobj_uid(node), "controller", 1, "blockOwnerDeletion", 0, "spec", "nodeName",
	    kobj_name(node), "hostNetwork", 1, "priorityClassName", "system-cluster-critical",
	    "restartPolicy", "Always", "containers", "name", "kube-controller-manager", "image",
	    "registry.k8s.io/kube-controller-manager:" KUBE_GIT_VERSION, "command",
	    "/usr/local/bin/kube-controller-manager", "args", kcm_args(k), "resources", "requests",
	    "cpu", "50m", "memory", "256Mi", "tolerations", "operator", "Exists", "effect",
	    "NoExecute", "status", "phase", "Running", "podIP", ip ? ip : "", "hostIP",
	    ip ? ip : "", "qosClass", "Burstable", "startTime", now, "conditions", "type", "Ready",
	    "status", "True", "type", "ContainersReady", "status", "True", "containerStatuses",
	    "name", "kube-controller-manager", "ready", 1, "restartCount", 0, "image",
	    "registry.k8s.io/kube-controller-manager:" KUBE_GIT_VERSION, "imageID", "", "started",
	    1, "state", "running", "startedAt", now);
	if (!pod)
		return;
	put_object(k, "", "pods", "kube-system", pod, false);
}

/*
 * The kubelet's Lease in kube-node-lease, owned by its Node (node heartbeats). Written once
 * at registration: the emulated kubelet does not renew it every 10 s.
 */
static void node_lease(struct emu_kube *k, const struct kobj *node)
{
	struct timespec ts;
	struct tm tm;
	char renew[96];
	json_t *lease;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(renew, sizeof(renew), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
	lease = json_pack("{s:s, s:s, s:{s:s, s:s, s:[{s:s, s:s, s:s, s:s}]}, "
			  "s:{s:s, s:i, s:s}}",
			  "apiVersion", "coordination.k8s.io/v1", "kind", "Lease", "metadata",
			  "name", kobj_name(node), "namespace", "kube-node-lease",
			  "ownerReferences", "apiVersion", "v1", "kind", "Node", "name",
			  kobj_name(node), "uid", kobj_uid(node), "spec", "holderIdentity",
			  kobj_name(node), "leaseDurationSeconds", 40, "renewTime", renew);
	if (lease)
		put_object(k, "coordination.k8s.io", "leases", "kube-node-lease", lease, false);
}

static void kubelet_timer(struct emu *emu, void *arg);

/*
 * The kubelet starts delay from now: after the instance booted (reboot: insert completed,
 * start, reset) or when the emulator itself starts (reboot false). A kubelet registers its
 * Node when it starts and never again by itself: after the Node is deleted it stays gone
 * until the kubelet restarts (kubernetes/kubernetes#71398: "kubelet only registers the node
 * at startup").
 */
static void schedule_kubelet(struct kinst *ki, uint64_t delay, bool reboot)
{
	ki->reboot |= reboot;
	if (ki->kubelet_timer)
		return;
	ki->kubelet_timer = emu_timer_add(ki->c->k->emu, delay, kubelet_timer, ki);
	if (ki->kubelet_timer < 0)
		ki->kubelet_timer = 0;
}

static void cancel_timer(struct emu_kube *k, long *timer)
{
	if (*timer) {
		emu_timer_cancel(k->emu, *timer);
		*timer = 0;
	}
}

static bool taint_is(const json_t *t, const char *key)
{
	return !strcmp(kj_str(t, "key") ?: "", key);
}

/*
 * The kubelet of a rebooted node found its Node (tryRegisterWithAPIServer: the Node exists,
 * it is reconciled, not re-created) and posts its status again: Ready, the new boot ID.
 * The node lifecycle controller then lifts the unreachable/not-ready taints it had set.
 */
static void kubelet_resume_node(struct emu_kube *k, struct kobj *node)
{
	struct kube_res *nodes = nodes_res(k);
	json_t *n = json_deep_copy(node->obj), *taints, *conds, *kept;
	const json_t *net = kube_condition(node->obj, "NetworkUnavailable");
	char now[40], boot[37];
	struct kube_err e = {0};

	emu_rfc3339(now, sizeof(now));
	kube_uuid(boot);
	conds = kubelet_conditions("ok", now);
	/* NetworkUnavailable belongs to the CCM (route controller / CloudAllocator). */
	if (net)
		json_array_insert(conds, 0, (json_t *)net);
	json_object_set_new(kj_obj(n, "status"), "conditions", conds);
	json_object_set_new(kj_obj(kj_obj(n, "status"), "nodeInfo"), "bootID", json_string(boot));
	taints = kj_path(n, "spec.taints");
	kept = json_array();
	for (size_t i = 0; i < json_array_size(taints); i++) {
		json_t *t = json_array_get(taints, i);
		if (!taint_is(t, "node.kubernetes.io/unreachable") &&
		    !taint_is(t, "node.kubernetes.io/not-ready"))
			json_array_append(kept, t);
	}
	if (json_array_size(kept))
		json_object_set_new(kj_obj(n, "spec"), "taints", kept);
	else {
		json_decref(kept);
		json_object_del(kj_obj(n, "spec"), "taints");
	}
	if (kube_update(k, nodes, NULL, kobj_name(node), n, KW_INTERNAL, KWF_CONTROLLER, &e, NULL) <
	    0)
		log_warn("kube: kubelet %s: cannot post status: %s", kobj_name(node), e.message);
	else
		log_info("kube: kubelet %s started: Node Ready (boot %s)", kobj_name(node), boot);
	kube_err_clear(&e);
}

static void kubelet_timer(struct emu *emu, void *arg)
{
	struct kinst *ki = arg;
	struct emu_kube *k = ki->c->k;
	struct kube_res *nodes = nodes_res(k);
	const json_t *inst = instance_of(ki);
	const char *status = kj_str(inst, "status");
	struct kobj *node;
	struct kube_err e = {0};
	bool cp, reboot = ki->reboot;

	(void)emu;
	ki->kubelet_timer = 0;
	if (!inst || !ki->talos)
		return;
	if (!status || strcmp(status, "RUNNING") != 0) {
		/* Booting: look again soon. Stopped: the next start schedules us. */
		if (!status || !strcmp(status, "PROVISIONING") || !strcmp(status, "STAGING"))
			schedule_kubelet(ki, BOOT_POLL_MS, false);
		return;
	}
	ki->reboot = false;
	resolve_cluster_cidr(k, inst);
	cp = is_control_plane(inst, ki->name);
	node = kube_get(nodes, NULL, ki->name);
	if (!node) {
		if (kube_create(k, nodes, NULL, kubelet_node(k, ki, inst, cp), KWF_CONTROLLER, &e,
				&node) < 0) {
			log_warn("kube: kubelet %s: cannot register: %s", ki->name, e.message);
			kube_err_clear(&e);
			return;
		}
		log_info("kube: kubelet registered node %s%s", ki->name,
			 cp ? " (control plane)" : "");
		kube_record_event(k, nodes, node, "Normal", "RegisteredNode", "node-controller",
				  "Node %s event: Registered Node %s in Controller", ki->name,
				  ki->name);
		kobj_unref(node);
		node = kube_get(nodes, NULL, ki->name);
	} else if (reboot) {
		kubelet_resume_node(k, node);
		node = kube_get(nodes, NULL, ki->name);
	}
	if (node)
		node_lease(k, node);
	if (cp && node)
		kcm_static_pod(k, node);
}

/*
 * The node lifecycle controller (KCM) once a kubelet stopped posting for the grace period
 * (--node-monitor-grace-period, 40 s by default; --kubelet-delay here): every condition
 * Unknown, "Kubelet stopped posting node status.", and the unreachable taints.
 */
static void mark_node_unknown(struct emu_kube *k, struct kobj *node)
{
	json_t *n = json_deep_copy(node->obj), *taints;
	char now[40];
	struct kube_err e = {0};
	const json_t *ready = kube_condition(node->obj, "Ready");
	const json_t *net = kube_condition(node->obj, "NetworkUnavailable");
	json_t *conds;

	if (ready && !strcmp(kj_str(ready, "status") ?: "", "Unknown")) {
		json_decref(n);
		return;
	}
	emu_rfc3339(now, sizeof(now));
	conds = kubelet_conditions("unknown", now);
	/* Only the kubelet's own conditions: NetworkUnavailable is the CCM's. */
	if (net)
		json_array_insert(conds, 0, (json_t *)net);
	json_object_set_new(kj_obj(n, "status"), "conditions", conds);
	taints = json_object_get(kj_obj(n, "spec"), "taints");
	if (!json_is_array(taints)) {
		taints = json_array();
		json_object_set_new(json_object_get(n, "spec"), "taints", taints);
	}
	json_array_append_new(taints,
			      json_pack("{s:s, s:s, s:s}", "key", "node.kubernetes.io/unreachable",
					"effect", "NoSchedule", "timeAdded", now));
	json_array_append_new(taints,
			      json_pack("{s:s, s:s, s:s}", "key", "node.kubernetes.io/unreachable",
					"effect", "NoExecute", "timeAdded", now));
	kube_update(k, nodes_res(k), NULL, kobj_name(node), n, KW_INTERNAL, KWF_CONTROLLER, &e,
		    NULL);
	kube_err_clear(&e);
}

/*
 * A stopped (STOPPING, TERMINATED) instance: its kubelet stopped, so its Node goes Unknown.
 * The Node stays: the GCE cloud provider reports a TERMINATED instance as existing
 * (InstanceExistsByProviderID) and has no shutdown detection (InstanceShutdownByProviderID
 * is NotImplemented in cloud-provider-gcp providers/gce/gce_instances.go), so no
 * node.cloudprovider.kubernetes.io/shutdown taint either.
 */
static void down_timer(struct emu *emu, void *arg)
{
	struct kinst *ki = arg;
	struct emu_kube *k = ki->c->k;
	const json_t *inst = instance_of(ki);
	struct kobj *node = kube_get(nodes_res(k), NULL, ki->name);
	const char *pid = node ? kj_str(node->obj, "spec.providerID") : NULL;
	char want[400];

	(void)emu;
	ki->down_timer = 0;
	if (!inst || !node || !strcmp(kj_str(inst, "status") ?: "", "RUNNING"))
		return;
	snprintf(want, sizeof(want), "gce://%s/%s/%s", k->emu->opt.project, ki->zone, ki->name);
	if (pid && pid[0] && strcmp(pid, want) != 0)
		return;
	log_info("kube: node %s: kubelet stopped posting (instance %s)", ki->name,
		 kj_str(inst, "status") ?: "?");
	mark_node_unknown(k, node);
}

/* ---- node lifecycle after an instance's deletion ---- */
static void gone_timer(struct emu *emu, void *arg)
{
	struct kinst *ki = arg;
	struct emu_kube *k = ki->c->k;
	struct kube_res *nodes = nodes_res(k);
	struct kobj *node = kube_get(nodes, NULL, ki->name);
	struct kube_err e = {0};

	(void)emu;
	ki->gone_timer = 0;
	if (ki->exists || instance_of(ki) || !node)
		return;
	if (ki->gone_stage == 0) {
		/* KCM node lifecycle: the kubelet stopped posting; Unknown and unreachable. */
		mark_node_unknown(k, node);
		ki->gone_stage = 1;
		ki->gone_timer = emu_timer_add(k->emu, k->ccm_delay_ms, gone_timer, ki);
		if (ki->gone_timer < 0)
			ki->gone_timer = 0;
		return;
	}
	/* The CCM's cloud node lifecycle controller: no instance, no Node. */
	{
		const char *pid = kj_str(node->obj, "spec.providerID");
		char want[400];
		bool deleted;
		snprintf(want, sizeof(want), "gce://%s/%s/%s", k->emu->opt.project, ki->zone,
			 ki->name);
		if (pid && pid[0] && strcmp(pid, want) != 0)
			return; /* another instance's Node by now */
		kube_record_event(
		    k, nodes, node, "Normal", "DeletingNode", "cloud-node-lifecycle-controller",
		    "Deleting node %s because it does not exist in the cloud provider", ki->name);
		kube_delete(k, nodes, NULL, ki->name, NULL, KWF_CONTROLLER, &e, NULL, &deleted);
		kube_err_clear(&e);
		log_info("kube: CCM deleted node %s (instance %s/%s is gone)", ki->name, ki->zone,
			 ki->name);
	}
}

/* ---- the CCM's work queue ---- */
static void ccm_timer(struct emu *emu, void *arg);

static void enqueue(struct kube_ctrl *c, const char *node)
{
	json_object_set_new(c->queue, node, json_true());
	if (!c->ccm_timer) {
		c->ccm_timer = emu_timer_add(c->k->emu, c->k->ccm_delay_ms, ccm_timer, c);
		if (c->ccm_timer < 0)
			c->ccm_timer = 0;
	}
}

static void delayed_timer(struct emu *emu, void *arg);

static void arm_delayed(struct kube_ctrl *c)
{
	uint64_t due = UINT64_MAX, now = emu_now_ms();
	const char *key;
	json_t *v;

	json_object_foreach(c->delayed, key, v)
	{
		uint64_t d = (uint64_t)json_integer_value(v);
		if (d < due)
			due = d;
	}
	if (due == UINT64_MAX)
		return;
	if (c->delayed_timer && c->delayed_due <= due)
		return;
	if (c->delayed_timer)
		emu_timer_cancel(c->k->emu, c->delayed_timer);
	c->delayed_due = due;
	c->delayed_timer = emu_timer_add(c->k->emu, due > now ? due - now : 0, delayed_timer, c);
	if (c->delayed_timer < 0)
		c->delayed_timer = 0;
}

static void delayed_timer(struct emu *emu, void *arg)
{
	struct kube_ctrl *c = arg;
	uint64_t now = emu_now_ms();
	const char *key;
	json_t *v, *due = json_array();
	size_t i;

	(void)emu;
	c->delayed_timer = 0;
	json_object_foreach(c->delayed, key, v)
	{
		if ((uint64_t)json_integer_value(v) <= now)
			json_array_append_new(due, json_string(key));
	}
	json_array_foreach(due, i, v)
	{
		json_object_del(c->delayed, json_string_value(v));
		enqueue(c, json_string_value(v));
	}
	json_decref(due);
	arm_delayed(c);
}

/* A failed attempt: retry with exponential backoff, RETRY_MAX times. */
static void retry_later(struct kube_ctrl *c, const char *node)
{
	json_int_t n = json_integer_value(json_object_get(c->failures, node)) + 1;
	uint64_t delay = RETRY_BASE_MS;

	if (n > RETRY_MAX) {
		log_debug("kube: CCM: giving up on node %s after %d retries", node, RETRY_MAX);
		json_object_del(c->failures, node);
		return;
	}
	json_object_set_new(c->failures, node, json_integer(n));
	for (json_int_t i = 1; i < n && delay < RETRY_MAX_MS; i++)
		delay *= 2;
	if (delay > RETRY_MAX_MS)
		delay = RETRY_MAX_MS;
	json_object_set_new(c->delayed, node, json_integer((json_int_t)(emu_now_ms() + delay)));
	arm_delayed(c);
}

static void succeeded(struct kube_ctrl *c, const char *node)
{
	json_object_del(c->failures, node);
	json_object_del(c->delayed, node);
}

/* The instance a Node is on: by providerID gce://PROJECT/ZONE/NAME, else by name. */
static struct kinst *node_instance(struct kube_ctrl *c, const json_t *node, bool by_name)
{
	const char *pid = kj_str(node, "spec.providerID");
	char zone[128], name[128];

	if (pid && !strncmp(pid, "gce://", 6)) {
		const char *p = pid + 6, *s1 = strchr(p, '/'),
			   *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
		if (!s1 || !s2 || (size_t)(s2 - s1 - 1) >= sizeof(zone) ||
		    strlen(s2 + 1) >= sizeof(name))
			return NULL;
		memcpy(zone, s1 + 1, (size_t)(s2 - s1 - 1));
		zone[s2 - s1 - 1] = '\0';
		snprintf(name, sizeof(name), "%s", s2 + 1);
		if (!emu_compute_instance(c->k->emu, zone, name))
			return NULL;
		return inst_get(c, zone, name);
	}
	if (pid && pid[0])
		return NULL;
	return by_name ? inst_by_name(c, kj_str(node, "metadata.name") ?: "") : NULL;
}

static bool has_taint(const json_t *node, const char *key)
{
	json_t *t;
	size_t i;

	json_array_foreach(kj_path(node, "spec.taints"), i, t)
	{
		if (!strcmp(kj_str(t, "key") ?: "", key))
			return true;
	}
	return false;
}

static char *zone_region(const char *zone)
{
	const char *dash = strrchr(zone, '-');

	return dash ? strndup(zone, (size_t)(dash - zone)) : strdup(zone);
}

/* CCM node controller: initialize a Node with the uninitialized taint. */
static void init_node(struct kube_ctrl *c, struct kobj *node)
{
	struct emu_kube *k = c->k;
	struct kinst *ki = node_instance(c, node->obj, true);
	const json_t *inst = ki ? instance_of(ki) : NULL, *nic;
	json_t *n, *labels, *taints, *addrs;
	char pid[400], *region;
	const char *ext = NULL;
	struct kube_err e = {0};

	if (!inst) {
		log_debug("kube: CCM: node %s: no instance to initialize it from", kobj_name(node));
		return;
	}
	n = json_deep_copy(node->obj);
	snprintf(pid, sizeof(pid), "gce://%s/%s/%s", k->emu->opt.project, ki->zone, ki->name);
	if (!kj_str(n, "spec.providerID") || !kj_str(n, "spec.providerID")[0])
		json_object_set_new(kj_obj(n, "spec"), "providerID", json_string(pid));
	labels = kj_obj(kj_obj(n, "metadata"), "labels");
	region = zone_region(ki->zone);
	json_object_set_new(labels, "topology.kubernetes.io/zone", json_string(ki->zone));
	json_object_set_new(labels, "topology.kubernetes.io/region", json_string(region ?: ""));
	json_object_set_new(labels, "failure-domain.beta.kubernetes.io/zone",
			    json_string(ki->zone));
	json_object_set_new(labels, "failure-domain.beta.kubernetes.io/region",
			    json_string(region ?: ""));
	json_object_set_new(labels, "node.kubernetes.io/instance-type",
			    json_string(last_segment(kj_str(inst, "machineType"))));
	free(region);
	/* Addresses: the instance's, as the GCE provider reports them, plus the Hostname. */
	nic = nic0(inst);
	ext = kj_str(json_array_get(json_object_get(nic, "accessConfigs"), 0), "natIP");
	addrs = json_pack("[{s:s, s:s}]", "type", "InternalIP", "address",
			  kj_str(nic, "networkIP") ?: "");
	if (ext && ext[0])
		json_array_append_new(
		    addrs, json_pack("{s:s, s:s}", "type", "ExternalIP", "address", ext));
	json_array_append_new(
	    addrs, json_pack("{s:s, s:s}", "type", "Hostname", "address", kobj_name(node)));
	json_object_set_new(kj_obj(n, "status"), "addresses", addrs);
	taints = kj_path(n, "spec.taints");
	for (size_t i = json_array_size(taints); i-- > 0;)
		if (!strcmp(kj_str(json_array_get(taints, i), "key") ?: "", UNINIT_TAINT))
			json_array_remove(taints, i);
	if (taints && !json_array_size(taints))
		json_object_del(json_object_get(n, "spec"), "taints");
	if (kube_update(k, nodes_res(k), NULL, kobj_name(node), n, KW_INTERNAL, KWF_CONTROLLER, &e,
			NULL) < 0)
		log_warn("kube: CCM: cannot initialize node %s: %s", kobj_name(node), e.message);
	else
		log_debug("kube: CCM initialized node %s (%s)", kobj_name(node), pid);
	kube_err_clear(&e);
}

/* PatchNodeCIDRs: a strategic merge patch {"spec":{"podCIDR":C,"podCIDRs":[C]}}. */
static int patch_node_cidr(struct emu_kube *k, struct kobj *node, const char *cidr,
			   struct kube_err *e)
{
	json_t *patch = json_pack("{s:{s:s, s:[s]}}", "spec", "podCIDR", cidr, "podCIDRs", cidr);
	json_t *result = NULL;
	char err[256];
	int ret;

	ret = kube_strategic_merge_patch(node->obj, patch, &result, err, sizeof(err));
	json_decref(patch);
	if (ret < 0)
		return kube_errf(e, 400, "BadRequest", "%s", err);
	return kube_update(k, nodes_res(k), NULL, kobj_name(node), result, KW_MAIN, KWF_CONTROLLER,
			   e, NULL);
}

/* SetNodeCondition: NetworkUnavailable=False, reason RouteCreated (a status patch). */
static void set_network_available(struct emu_kube *k, const char *name)
{
	struct kobj *node = kube_get(nodes_res(k), NULL, name);
	const json_t *cond = node ? kube_condition(node->obj, "NetworkUnavailable") : NULL;
	json_t *n, *conds;
	char now[40];
	struct kube_err e = {0};

	if (!node || (cond && !strcmp(kj_str(cond, "status") ?: "", "False") &&
		      !strcmp(kj_str(cond, "reason") ?: "", "RouteCreated")))
		return;
	emu_rfc3339(now, sizeof(now));
	n = json_deep_copy(node->obj);
	conds = json_object_get(kj_obj(n, "status"), "conditions");
	if (!json_is_array(conds)) {
		conds = json_array();
		json_object_set_new(json_object_get(n, "status"), "conditions", conds);
	}
	for (size_t i = json_array_size(conds); i-- > 0;)
		if (!strcmp(kj_str(json_array_get(conds, i), "type") ?: "", "NetworkUnavailable"))
			json_array_remove(conds, i);
	json_array_insert_new(
	    conds, 0,
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "NetworkUnavailable", "status",
		      "False", "lastHeartbeatTime", now, "lastTransitionTime", now, "reason",
		      "RouteCreated", "message", "NodeController create implicit route"));
	kube_update(k, nodes_res(k), NULL, name, n, KW_STATUS, KWF_CONTROLLER, &e, NULL);
	kube_err_clear(&e);
}

static void cloud_allocate(struct kube_ctrl *c, struct kobj *node)
{
	struct emu_kube *k = c->k;
	struct kube_res *nodes = nodes_res(k);
	const char *name = kobj_name(node), *pod_cidr = kj_str(node->obj, "spec.podCIDR");
	const json_t *cond = kube_condition(node->obj, "NetworkUnavailable"), *inst, *alias;
	struct kinst *ki;
	const char *cidr;
	struct kube_err e = {0};
	char nm[300];

	/* The informer's filter: nothing to do once podCIDR is set and the network is up. */
	if (pod_cidr && pod_cidr[0] && cond && !strcmp(kj_str(cond, "status") ?: "", "False")) {
		succeeded(c, name);
		return;
	}
	snprintf(nm, sizeof(nm), "%s", name);
	if (!kj_str(node->obj, "spec.providerID") || !kj_str(node->obj, "spec.providerID")[0]) {
		log_debug("kube: CloudAllocator: node %s doesn't have providerID", nm);
		retry_later(c, nm);
		return;
	}
	ki = node_instance(c, node->obj, false);
	inst = ki ? instance_of(ki) : NULL;
	if (!inst) {
		kube_record_event(k, nodes, node, "Normal", "CIDRNotAvailable", "cidrAllocator",
				  "Node %s status is now: CIDRNotAvailable", nm);
		retry_later(c, nm);
		return;
	}
	alias = json_array_get(json_object_get(nic0(inst), "aliasIpRanges"), 0);
	cidr = kj_str(alias, "ipCidrRange");
	if (!cidr || !cidr[0]) {
		kube_record_event(k, nodes, node, "Normal", "CIDRNotAvailable", "cidrAllocator",
				  "Node %s status is now: CIDRNotAvailable", nm);
		log_debug(
		    "kube: CloudAllocator: node %s has no ranges from which CIDRs can be allocated",
		    nm);
		retry_later(c, nm);
		return;
	}
	if (!pod_cidr || strcmp(pod_cidr, cidr) != 0) {
		if (patch_node_cidr(k, node, cidr, &e) < 0) {
			node = kube_get(nodes, NULL, nm);
			if (node)
				kube_record_event(k, nodes, node, "Normal", "CIDRAssignmentFailed",
						  "cidrAllocator",
						  "Node %s status is now: CIDRAssignmentFailed",
						  nm);
			log_info("kube: CloudAllocator: node %s: podCIDR %s, alias %s: %s", nm,
				 pod_cidr ? pod_cidr : "-", cidr, e.message);
			kube_err_clear(&e);
			retry_later(c, nm);
			return;
		}
		log_info("kube: CloudAllocator: node %s podCIDR %s", nm, cidr);
	}
	set_network_available(k, nm);
	succeeded(c, nm);
}

/* ---- RangeAllocator ---- */
static int range_setup(struct kube_ctrl *c)
{
	struct emu_kube *k = c->k;

	if (c->range_ready)
		return 0;
	if (cidr_parse(cluster_cidr(k), &c->cluster, CIDR_STRICT) < 0)
		return -EINVAL;
	c->nsub = cidr_subnet_count(&c->cluster, NODE_MASK);
	if (c->nsub == 0 || c->nsub > (1u << 24))
		return -ERANGE;
	c->used = calloc((size_t)(c->nsub + 7) / 8, 1);
	if (!c->used)
		return -ENOMEM;
	c->range_ready = true;
	/* Occupy what the Nodes already hold (the allocator's start-up pass). */
	{
		struct kube_res *nodes = nodes_res(k);
		for (size_t i = 0; i < nodes->len; i++) {
			const char *pc = kj_str(nodes->items[i].obj->obj, "spec.podCIDR");
			struct cidr x;
			if (pc && cidr_parse(pc, &x, 0) == 0 && x.addr.family == AF_INET &&
			    cidr_contains(&c->cluster, &x) && x.prefix == NODE_MASK) {
				uint32_t off = (ntohl(*(uint32_t *)x.addr.bytes) -
						ntohl(*(uint32_t *)c->cluster.addr.bytes)) >>
					       (32 - NODE_MASK);
				c->used[off / 8] |= (uint8_t)(1u << (off % 8));
			}
		}
	}
	return 0;
}

static long range_index(struct kube_ctrl *c, const char *cidr)
{
	struct cidr x;
	uint32_t a, b;

	if (!cidr || cidr_parse(cidr, &x, 0) < 0 || x.addr.family != AF_INET ||
	    x.prefix != NODE_MASK || !cidr_contains(&c->cluster, &x))
		return -1;
	memcpy(&a, x.addr.bytes, 4);
	memcpy(&b, c->cluster.addr.bytes, 4);
	return (long)((ntohl(a) - ntohl(b)) >> (32 - NODE_MASK));
}

static void range_mark(struct kube_ctrl *c, const char *cidr, bool used)
{
	long i = range_index(c, cidr);

	if (i < 0)
		return;
	if (used)
		c->used[i / 8] |= (uint8_t)(1u << (i % 8));
	else
		c->used[i / 8] &= (uint8_t) ~(1u << (i % 8));
}

static void range_allocate(struct kube_ctrl *c, struct kobj *node)
{
	struct emu_kube *k = c->k;
	struct kube_res *nodes = nodes_res(k);
	const char *name = kobj_name(node), *pod_cidr = kj_str(node->obj, "spec.podCIDR");
	struct kinst *ki;
	const char *alias = NULL;
	struct kube_err e = {0};
	char nm[300], buf[CIDR_STRLEN];
	long skip = -1;

	if (!c->range_ready) {
		ki = node_instance(c, node->obj, true);
		if (ki && instance_of(ki))
			resolve_cluster_cidr(k, instance_of(ki));
		if (range_setup(c) < 0)
			return;
	}
	if (pod_cidr && pod_cidr[0]) {
		range_mark(c, pod_cidr, true); /* occupy */
		return;
	}
	snprintf(nm, sizeof(nm), "%s", name);
	ki = node_instance(c, node->obj, true);
	if (ki && instance_of(ki))
		alias = kj_str(
		    json_array_get(json_object_get(nic0(instance_of(ki)), "aliasIpRanges"), 0),
		    "ipCidrRange");
	skip = range_index(c, alias);
	for (uint64_t n = 0; n < c->nsub; n++) {
		uint64_t cand = (c->next_candidate + n) % c->nsub;
		struct cidr sub;
		if ((c->used[cand / 8] & (1u << (cand % 8))) || (long)cand == skip)
			continue;
		c->next_candidate = (cand + 1) % c->nsub;
		cidr_subnet(&c->cluster, NODE_MASK, cand, &sub);
		cidr_format(&sub, buf, sizeof(buf));
		c->used[cand / 8] |= (uint8_t)(1u << (cand % 8));
		if (patch_node_cidr(k, node, buf, &e) < 0) {
			c->used[cand / 8] &= (uint8_t) ~(1u << (cand % 8));
			node = kube_get(nodes, NULL, nm);
			if (node)
				kube_record_event(k, nodes, node, "Normal", "CIDRAssignmentFailed",
						  "cidrAllocator",
						  "Node %s status is now: CIDRAssignmentFailed",
						  nm);
			kube_err_clear(&e);
			retry_later(c, nm);
			return;
		}
		log_info("kube: RangeAllocator: node %s podCIDR %s (alias %s)", nm, buf,
			 alias ? alias : "none");
		succeeded(c, nm);
		return;
	}
	kube_record_event(k, nodes, node, "Normal", "CIDRNotAvailable", "cidrAllocator",
			  "Node %s status is now: CIDRNotAvailable", nm);
}

static void process_node(struct kube_ctrl *c, const char *name)
{
	struct emu_kube *k = c->k;
	struct kobj *node = kube_get(nodes_res(k), NULL, name);

	if (!node || kj_str(node->obj, "metadata.deletionTimestamp"))
		return;
	if (has_taint(node->obj, UNINIT_TAINT)) {
		init_node(c, node);
		node = kube_get(nodes_res(k), NULL, name);
		if (!node)
			return;
	}
	switch (k->emu->opt.ccm_allocator) {
	case EMU_CCM_CLOUD:
		cloud_allocate(c, node);
		break;
	case EMU_CCM_RANGE:
		range_allocate(c, node);
		break;
	case EMU_CCM_OFF:
		break;
	}
}

static void ccm_timer(struct emu *emu, void *arg)
{
	struct kube_ctrl *c = arg;
	json_t *queue = c->queue;
	const char *name;
	json_t *v;

	(void)emu;
	c->ccm_timer = 0;
	c->queue = json_object();
	json_object_foreach(queue, name, v) process_node(c, name);
	json_decref(queue);
}

/* ---- events from the store ---- */
void kube_ctrl_on_event(struct emu_kube *k, const struct kube_event *ev)
{
	struct kube_ctrl *c = k->ctrl;
	const char *name;

	if (c && c->workloads)
		kube_workloads_on_event(c->workloads, ev);
	if (c && c->ccm)
		kube_ccm_on_event(c->ccm, ev);
	if (!c || strcmp(ev->res->def.resource, "nodes") || ev->res->def.group[0])
		return;
	name = kobj_name(ev->obj);
	if (ev->type != KEV_DELETED) {
		enqueue(c, name);
		return;
	}
	/*
	 * A Node is gone: the allocator releases its range. Its kubelet does not register it
	 * again by itself (kubernetes/kubernetes#71398): only a kubelet restart (instance start
	 * or reset) does.
	 */
	json_object_del(c->failures, name);
	json_object_del(c->delayed, name);
	if (c->range_ready)
		range_mark(c, kj_str(ev->obj->obj, "spec.podCIDR"), false);
}

void kube_ctrl_instance_changed(struct emu_kube *k, const char *zone, const char *name,
				const json_t *instance)
{
	struct kube_ctrl *c = k->ctrl;
	struct kinst *ki;
	struct kobj *node;
	const char *status;
	bool first, was_running;

	if (!c || !zone || !name)
		return;
	ki = inst_get(c, zone, name);
	if (!ki)
		return;
	node = kube_get(nodes_res(k), NULL, name);
	if (!instance) {
		bool was = ki->exists;
		ki->exists = false;
		ki->status[0] = '\0';
		cancel_timer(k, &ki->kubelet_timer);
		cancel_timer(k, &ki->down_timer);
		if (was && node && !ki->gone_timer) {
			ki->gone_stage = 0;
			ki->gone_timer = emu_timer_add(k->emu, k->kubelet_delay_ms, gone_timer, ki);
			if (ki->gone_timer < 0)
				ki->gone_timer = 0;
		}
		return;
	}
	status = kj_str(instance, "status") ?: "";
	/* First sight since this emulator (or a state load) started: its kubelet starts now. */
	first = !ki->exists || !ki->status[0];
	was_running = !strcmp(ki->status, "RUNNING");
	ki->exists = true;
	ki->talos = metadata_item(instance, "user-data") != NULL;
	snprintf(ki->status, sizeof(ki->status), "%s", status);
	cancel_timer(k, &ki->gone_timer);
	if (!strcmp(status, "RUNNING")) {
		if (!was_running) {
			/* Booted (created, started) or found running: its kubelet starts. */
			cancel_timer(k, &ki->down_timer);
			if (ki->talos)
				schedule_kubelet(ki, k->kubelet_delay_ms, !first);
		}
	} else if (was_running || (first && node)) {
		/* Stopping or stopped: the kubelet is gone with the guest. */
		cancel_timer(k, &ki->kubelet_timer);
		ki->reboot = false;
		if (node && !ki->down_timer) {
			ki->down_timer = emu_timer_add(k->emu, k->kubelet_delay_ms, down_timer, ki);
			if (ki->down_timer < 0)
				ki->down_timer = 0;
		}
	}
	/* Alias ranges may have changed: the CCM looks at the Node again. */
	if (node)
		enqueue(c, name);
}

void emu_kube_instance_reset(struct emu *emu, const char *zone, const char *name,
			     const json_t *instance)
{
	struct emu_kube *k = emu->kube;
	struct kinst *ki;

	if (!k || !k->ctrl || !zone || !name)
		return;
	kube_ctrl_instance_changed(k, zone, name, instance);
	ki = inst_find(k->ctrl, zone, name);
	/* A hard reset: the guest boots again, and so does its kubelet. */
	if (ki && ki->talos && instance) {
		cancel_timer(k, &ki->down_timer);
		cancel_timer(k, &ki->kubelet_timer);
		schedule_kubelet(ki, k->kubelet_delay_ms, true);
	}
}

/* Every instance in the Compute state (after a load): kubelets of running instances. */
static void reconcile_instances(const json_t *v, struct emu_kube *k, int depth)
{
	const char *key;
	json_t *x;
	size_t i;

	if (depth > 8)
		return;
	if (json_is_object(v)) {
		const char *kind = kj_str(v, "kind"), *zone = kj_str(v, "zone"),
			   *name = kj_str(v, "name");
		if (kind && !strcmp(kind, "compute#instance") && zone && name) {
			const json_t *inst = emu_compute_instance(k->emu, last_segment(zone), name);
			if (inst)
				kube_ctrl_instance_changed(k, last_segment(zone), name, inst);
			return;
		}
		json_object_foreach((json_t *)v, key, x) reconcile_instances(x, k, depth + 1);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x) reconcile_instances(x, k, depth + 1);
	}
}

static void reconcile_timer(struct emu *emu, void *arg)
{
	struct kube_ctrl *c = arg;
	json_t *dump;

	c->reconcile_timer = 0;
	/* Instances we knew that are gone now. */
	for (size_t i = 0; i < c->ninst; i++) {
		struct kinst *ki = c->inst[i];
		if (ki->exists && !instance_of(ki))
			kube_ctrl_instance_changed(c->k, ki->zone, ki->name, NULL);
	}
	dump = emu_compute_dump(emu);
	reconcile_instances(dump, c->k, 0);
	json_decref(dump);
	/* Nodes the CCM has not looked at yet. */
	{
		struct kube_res *nodes = nodes_res(c->k);
		for (size_t i = 0; i < nodes->len; i++)
			enqueue(c, kobj_name(nodes->items[i].obj));
	}
}

static void schedule_reconcile(struct kube_ctrl *c)
{
	if (!c->reconcile_timer) {
		c->reconcile_timer = emu_timer_add(c->k->emu, 0, reconcile_timer, c);
		if (c->reconcile_timer < 0)
			c->reconcile_timer = 0;
	}
}

/* ---- life cycle ---- */
int kube_ctrl_init(struct emu_kube *k)
{
	struct kube_ctrl *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->k = k;
	c->index = json_object();
	c->by_name = json_object();
	c->subnets_tried = json_object();
	c->queue = json_object();
	c->delayed = json_object();
	c->failures = json_object();
	k->ctrl = c;
	c->workloads = kube_workloads_new(k);
	c->ccm = kube_ccm_new(k);
	if (!c->index || !c->by_name || !c->subnets_tried || !c->queue || !c->delayed ||
	    !c->failures || !c->workloads || !c->ccm)
		return -ENOMEM;
	/* At the first turn of the loop (both states loaded): the running instances' kubelets. */
	schedule_reconcile(c);
	return 0;
}

static void reset_range(struct kube_ctrl *c)
{
	free(c->used);
	c->used = NULL;
	c->range_ready = false;
	c->nsub = 0;
}

void kube_ctrl_free(struct emu_kube *k)
{
	struct kube_ctrl *c = k->ctrl;

	if (!c)
		return;
	for (size_t i = 0; i < c->ninst; i++) {
		struct kinst *ki = c->inst[i];
		if (ki->kubelet_timer)
			emu_timer_cancel(k->emu, ki->kubelet_timer);
		if (ki->gone_timer)
			emu_timer_cancel(k->emu, ki->gone_timer);
		if (ki->down_timer)
			emu_timer_cancel(k->emu, ki->down_timer);
		free(ki->zone);
		free(ki->name);
		free(ki);
	}
	if (c->ccm_timer)
		emu_timer_cancel(k->emu, c->ccm_timer);
	if (c->delayed_timer)
		emu_timer_cancel(k->emu, c->delayed_timer);
	if (c->reconcile_timer)
		emu_timer_cancel(k->emu, c->reconcile_timer);
	kube_workloads_free(c->workloads);
	kube_ccm_free(c->ccm);
	free(c->inst);
	json_decref(c->index);
	json_decref(c->by_name);
	json_decref(c->subnets_tried);
	json_decref(c->queue);
	json_decref(c->delayed);
	json_decref(c->failures);
	reset_range(c);
	free(c);
	k->ctrl = NULL;
}

json_t *kube_ctrl_dump(struct emu_kube *k)
{
	struct kube_ctrl *c = k->ctrl;
	json_t *inst = json_array();

	for (size_t i = 0; i < c->ninst; i++)
		if (c->inst[i]->exists)
			json_array_append_new(inst,
					      json_pack("{s:s, s:s}", "zone", c->inst[i]->zone,
							"name", c->inst[i]->name));
	return json_pack("{s:o, s:s, s:I}", "instances", inst, "clusterCIDR", k->cluster_cidr,
			 "rangeNext", (json_int_t)c->next_candidate);
}

void kube_ctrl_load(struct emu_kube *k, const json_t *state)
{
	struct kube_ctrl *c = k->ctrl;
	const char *cc = kj_str(state, "clusterCIDR");
	json_t *v;
	size_t i;

	json_object_clear(c->queue);
	json_object_clear(c->delayed);
	json_object_clear(c->failures);
	json_object_clear(c->subnets_tried);
	reset_range(c);
	/* The world was replaced: every kubelet looks at its instance as when it starts. */
	for (i = 0; i < c->ninst; i++)
		c->inst[i]->status[0] = '\0';
	kube_workloads_reset(c->workloads);
	kube_ccm_reset(c->ccm);
	if (!k->emu->opt.cluster_cidr) {
		struct cidr x;
		k->cluster_cidr[0] = '\0';
		if (cc && cc[0] && cidr_parse(cc, &x, CIDR_STRICT) == 0)
			snprintf(k->cluster_cidr, sizeof(k->cluster_cidr), "%s", cc);
	}
	c->next_candidate = (uint64_t)json_integer_value(json_object_get(state, "rangeNext"));
	json_array_foreach(json_object_get(state, "instances"), i, v)
	{
		const char *zone = kj_str(v, "zone"), *name = kj_str(v, "name");
		struct kinst *ki = zone && name ? inst_get(c, zone, name) : NULL;
		if (ki)
			ki->exists = true;
	}
	schedule_reconcile(c);
}
