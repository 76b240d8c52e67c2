/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Table output (meta.k8s.io/v1 Table) for `kubectl get`, with the columns and cell
 * formats of the API server's printers (kubernetes pkg/printers/internalversion/printers.go):
 * priority-1 columns are the ones `-o wide` adds. The server always fills every column.
 * Ages are apimachinery's duration.HumanDuration, computed when the request is answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "emu/kube/kube.h"

const char *kube_human_duration(int64_t s, char *buf, size_t len)
{
	int64_t m, h;

	if (s < -1) {
		snprintf(buf, len, "<invalid>");
		return buf;
	}
	if (s < 0)
		s = 0;
	if (s < 120) {
		snprintf(buf, len, "%llds", (long long)s);
		return buf;
	}
	m = s / 60;
	if (m < 10) {
		if (s % 60 == 0)
			snprintf(buf, len, "%lldm", (long long)m);
		else
			snprintf(buf, len, "%lldm%llds", (long long)m, (long long)(s % 60));
		return buf;
	}
	if (m < 180) {
		snprintf(buf, len, "%lldm", (long long)m);
		return buf;
	}
	h = s / 3600;
	if (h < 8) {
		if (m % 60 == 0)
			snprintf(buf, len, "%lldh", (long long)h);
		else
			snprintf(buf, len, "%lldh%lldm", (long long)h, (long long)(m % 60));
	} else if (h < 48) {
		snprintf(buf, len, "%lldh", (long long)h);
	} else if (h < 24 * 8) {
		if (h % 24 == 0)
			snprintf(buf, len, "%lldd", (long long)(h / 24));
		else
			snprintf(buf, len, "%lldd%lldh", (long long)(h / 24), (long long)(h % 24));
	} else if (h < 24 * 365 * 2) {
		snprintf(buf, len, "%lldd", (long long)(h / 24));
	} else if (h < 24 * 365 * 8) {
		int64_t dy = (h / 24) % 365;
		if (dy == 0)
			snprintf(buf, len, "%lldy", (long long)(h / 24 / 365));
		else
			snprintf(buf, len, "%lldy%lldd", (long long)(h / 24 / 365), (long long)dy);
	} else {
		snprintf(buf, len, "%lldy", (long long)(h / 24 / 365));
	}
	return buf;
}

int64_t kube_age_seconds(const char *ts)
{
	struct tm tm = {0};
	const char *end;

	if (!ts)
		return -1;
	end = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return -1;
	return (int64_t)time(NULL) - (int64_t)timegm(&tm);
}

static json_t *age_cell(const char *ts)
{
	char buf[32];
	int64_t s = kube_age_seconds(ts);

	if (s == -1 && !ts)
		return json_string("<unknown>");
	return json_string(kube_human_duration(s, buf, sizeof(buf)));
}

static json_t *col(const char *name, const char *type, const char *format, int priority,
		   const char *description)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", name, "type", type, "format", format,
			 "description", description, "priority", priority);
}

static const char *or_none(const char *s)
{
	return s && s[0] ? s : "<none>";
}

static const char *name_desc = "Name must be unique within a namespace.";
static const char *age_desc =
    "CreationTimestamp is a timestamp representing the server time when this object was created.";

/* ---- nodes ---- */
static json_t *node_columns(void)
{
	return json_pack(
	    "[o, o, o, o, o, o, o, o, o, o]", col("Name", "string", "name", 0, name_desc),
	    col("Status", "string", "", 0, "The status of the node"),
	    col("Roles", "string", "", 0, "The roles of the node"),
	    col("Age", "string", "", 0, age_desc),
	    col("Version", "string", "", 0, "Kubelet Version reported by the node."),
	    col("Internal-IP", "string", "", 1, "List of addresses reachable to the node."),
	    col("External-IP", "string", "", 1, "List of addresses reachable to the node."),
	    col("OS-Image", "string", "", 1, "OS Image reported by the node from /etc/os-release."),
	    col("Kernel-Version", "string", "", 1, "Kernel Version reported by the node."),
	    col("Container-Runtime", "string", "", 1,
		"ContainerRuntime Version reported by the node through runtime remote API."));
}

static const char *node_address(const json_t *o, const char *type)
{
	json_t *a;
	size_t i;

	json_array_foreach(kj_path(o, "status.addresses"), i, a)
	{
		if (kj_str(a, "type") && !strcmp(kj_str(a, "type"), type))
			return kj_str(a, "address");
	}
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *node_cells(const json_t *o)
{
	char status[128] = "", roles[512] = "";
	const char *role_list[32];
	size_t nroles = 0;
	const char *key;
	json_t *c, *v;
	size_t i;

	json_array_foreach(kj_path(o, "status.conditions"), i, c)
	{
		if (kj_str(c, "type") && !strcmp(kj_str(c, "type"), "Ready"))
			snprintf(status, sizeof(status), "%s",
				 kj_str(c, "status") && !strcmp(kj_str(c, "status"), "True")
				     ? "Ready"
				     : "NotReady");
	}
	if (!status[0])
		snprintf(status, sizeof(status), "Unknown");
	if (json_is_true(kj_path(o, "spec.unschedulable")))
		strncat(status, ",SchedulingDisabled", sizeof(status) - strlen(status) - 1);
	/* Roles: node-role.kubernetes.io/ROLE labels and kubernetes.io/role=ROLE. */
	json_object_foreach(kj_path(o, "metadata.labels"), key, v)
	{
		const char *role = NULL;
		if (!strncmp(key, "node-role.kubernetes.io/", 24) && key[24])
			role = key + 24;
		else if (!strcmp(key, "kubernetes.io/role") && json_string_value(v))
			role = json_string_value(v);
		if (role && nroles < 32)
			role_list[nroles++] = role;
	}
	qsort(role_list, nroles, sizeof(role_list[0]), cmp_str);
	for (i = 0; i < nroles; i++) {
		if (i && !strcmp(role_list[i], role_list[i - 1]))
			continue;
		if (roles[0])
			strncat(roles, ",", sizeof(roles) - strlen(roles) - 1);
		strncat(roles, role_list[i], sizeof(roles) - strlen(roles) - 1);
	}
	return json_pack(
	    "[s, s, s, o, s, s, s, s, s, s]", kobj_name(&(struct kobj){.obj = (json_t *)o}), status,
	    or_none(roles), age_cell(kj_str(o, "metadata.creationTimestamp")),
	    kj_str(o, "status.nodeInfo.kubeletVersion") ?: "",
	    or_none(node_address(o, "InternalIP")), or_none(node_address(o, "ExternalIP")),
	    kj_str(o, "status.nodeInfo.osImage") ?: "<unknown>",
	    kj_str(o, "status.nodeInfo.kernelVersion") ?: "<unknown>",
	    kj_str(o, "status.nodeInfo.containerRuntimeVersion") ?: "<unknown>");
}

/* ---- events ---- */
static json_t *event_columns(void)
{
	return json_pack(
	    "[o, o, o, o, o, o, o, o, o, o]",
	    col("Last Seen", "string", "", 0,
		"The time at which the most recent occurrence of this event was recorded."),
	    col("Type", "string", "", 0,
		"Type of this event (Normal, Warning), new types could be added in the future"),
	    col("Reason", "string", "", 0,
		"This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
	    col("Object", "string", "", 0, "The object that this event is about."),
	    col("Subobject", "string", "", 1,
		"If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement."),
	    col("Source", "string", "", 1, "The component reporting this event."),
	    col("Message", "string", "", 0,
		"A human-readable description of the status of this operation."),
	    col("First Seen", "string", "", 1, "The time at which the event was first recorded."),
	    col("Count", "string", "", 1, "The number of times this event has occurred."),
	    col("Name", "string", "name", 1, name_desc));
}

static json_t *event_cells(const json_t *o)
{
	const char *first = kj_str(o, "firstTimestamp") ?: kj_str(o, "eventTime");
	const char *last = kj_str(o, "lastTimestamp") ?: first;
	const char *kind = kj_str(o, "involvedObject.kind") ?: "";
	const char *name = kj_str(o, "involvedObject.name");
	char target[512], lower[128], source[256];
	size_t i;

	for (i = 0; kind[i] && i + 1 < sizeof(lower); i++)
		lower[i] = (char)((kind[i] >= 'A' && kind[i] <= 'Z') ? kind[i] + 32 : kind[i]);
	lower[i] = '\0';
	if (name && name[0])
		snprintf(target, sizeof(target), "%s/%s", lower, name);
	else
		snprintf(target, sizeof(target), "%s", lower);
	if (kj_str(o, "source.host") && kj_str(o, "source.host")[0])
		snprintf(source, sizeof(source), "%s, %s", kj_str(o, "source.component") ?: "",
			 kj_str(o, "source.host"));
	else
		snprintf(source, sizeof(source), "%s",
			 kj_str(o, "source.component") ?: kj_str(o, "reportingComponent") ?: "");
	return json_pack("[o, s, s, s, s, s, s, o, I, s]", age_cell(last), kj_str(o, "type") ?: "",
			 kj_str(o, "reason") ?: "", target,
			 kj_str(o, "involvedObject.fieldPath") ?: "", source,
			 kj_str(o, "message") ?: "", age_cell(first),
			 (json_int_t)json_integer_value(json_object_get(o, "count")),
			 kj_str(o, "metadata.name") ?: "");
}

/* ---- workloads ---- */
static void containers_images(const json_t *podspec, char *containers, size_t clen, char *images,
			      size_t ilen)
{
	json_t *c;
	size_t i;

	containers[0] = images[0] = '\0';
	json_array_foreach(json_object_get(podspec, "containers"), i, c)
	{
		if (i) {
			strncat(containers, ",", clen - strlen(containers) - 1);
			strncat(images, ",", ilen - strlen(images) - 1);
		}
		strncat(containers, kj_str(c, "name") ?: "", clen - strlen(containers) - 1);
		strncat(images, kj_str(c, "image") ?: "", ilen - strlen(images) - 1);
	}
}

static void selector_text(const json_t *sel, char *buf, size_t len)
{
	const char *key;
	json_t *v;

	buf[0] = '\0';
	json_object_foreach(json_object_get(sel, "matchLabels"), key, v)
	{
		if (buf[0])
			strncat(buf, ",", len - strlen(buf) - 1);
		strncat(buf, key, len - strlen(buf) - 1);
		strncat(buf, "=", len - strlen(buf) - 1);
		strncat(buf, json_string_value(v) ?: "", len - strlen(buf) - 1);
	}
	if (!buf[0])
		snprintf(buf, len, "<none>");
}

static json_int_t ival(const json_t *o, const char *path)
{
	return json_integer_value(kj_path(o, path));
}

static json_t *deployment_columns(void)
{
	return json_pack(
	    "[o, o, o, o, o, o, o, o]", col("Name", "string", "name", 0, name_desc),
	    col("Ready", "string", "", 0, "Number of the pod with ready state"),
	    col("Up-to-date", "string", "", 0,
		"Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
	    col("Available", "string", "", 0,
		"Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
	    col("Age", "string", "", 0, age_desc),
	    col("Containers", "string", "", 1, "Names of each container in the template."),
	    col("Images", "string", "", 1, "Images referenced by each container in the template."),
	    col("Selector", "string", "", 1,
		"Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment."));
}

static json_t *deployment_cells(const json_t *o)
{
	char ready[64], containers[512], images[1024], sel[512];
	json_t *replicas = kj_path(o, "spec.replicas");

	snprintf(ready, sizeof(ready), "%lld/%lld", (long long)ival(o, "status.readyReplicas"),
		 (long long)(replicas ? json_integer_value(replicas) : 1));
	containers_images(kj_path(o, "spec.template.spec"), containers, sizeof(containers), images,
			  sizeof(images));
	selector_text(kj_path(o, "spec.selector"), sel, sizeof(sel));
	return json_pack("[s, s, I, I, o, s, s, s]", kj_str(o, "metadata.name") ?: "", ready,
			 ival(o, "status.updatedReplicas"), ival(o, "status.availableReplicas"),
			 age_cell(kj_str(o, "metadata.creationTimestamp")), containers, images,
			 sel);
}

static json_t *daemonset_columns(void)
{
	return json_pack(
	    "[o, o, o, o, o, o, o, o, o, o, o]", col("Name", "string", "name", 0, name_desc),
	    col("Desired", "integer", "", 0,
		"The total number of nodes that should be running the daemon pod."),
	    col("Current", "integer", "", 0,
		"The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
	    col("Ready", "integer", "", 0,
		"The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
	    col("Up-to-date", "integer", "", 0,
		"The total number of nodes that are running updated daemon pod"),
	    col("Available", "integer", "", 0,
		"The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available."),
	    col("Node Selector", "string", "", 0,
		"NodeSelector is a selector which must be true for the pod to fit on a node."),
	    col("Age", "string", "", 0, age_desc),
	    col("Containers", "string", "", 1, "Names of each container in the template."),
	    col("Images", "string", "", 1, "Images referenced by each container in the template."),
	    col("Selector", "string", "", 1,
		"A label query over pods that are managed by the daemon set."));
}

static json_t *daemonset_cells(const json_t *o)
{
	char containers[512], images[1024], sel[512], nodesel[512] = "";
	const char *key;
	json_t *v;

	containers_images(kj_path(o, "spec.template.spec"), containers, sizeof(containers), images,
			  sizeof(images));
	selector_text(kj_path(o, "spec.selector"), sel, sizeof(sel));
	json_object_foreach(kj_path(o, "spec.template.spec.nodeSelector"), key, v)
	{
		if (nodesel[0])
			strncat(nodesel, ",", sizeof(nodesel) - strlen(nodesel) - 1);
		strncat(nodesel, key, sizeof(nodesel) - strlen(nodesel) - 1);
		strncat(nodesel, "=", sizeof(nodesel) - strlen(nodesel) - 1);
		strncat(nodesel, json_string_value(v) ?: "", sizeof(nodesel) - strlen(nodesel) - 1);
	}
	return json_pack(
	    "[s, I, I, I, I, I, s, o, s, s, s]", kj_str(o, "metadata.name") ?: "",
	    ival(o, "status.desiredNumberScheduled"), ival(o, "status.currentNumberScheduled"),
	    ival(o, "status.numberReady"), ival(o, "status.updatedNumberScheduled"),
	    ival(o, "status.numberAvailable"), or_none(nodesel),
	    age_cell(kj_str(o, "metadata.creationTimestamp")), containers, images, sel);
}

static json_t *replicaset_columns(void)
{
	return json_pack(
	    "[o, o, o, o, o, o, o, o]", col("Name", "string", "name", 0, name_desc),
	    col("Desired", "integer", "", 0, "Replicas is the number of desired replicas."),
	    col("Current", "integer", "", 0,
		"Replicas is the most recently observed number of replicas."),
	    col("Ready", "integer", "", 0, "The number of ready replicas for this replica set."),
	    col("Age", "string", "", 0, age_desc),
	    col("Containers", "string", "", 1, "Names of each container in the template."),
	    col("Images", "string", "", 1, "Images referenced by each container in the template."),
	    col("Selector", "string", "", 1,
		"Selector is a label query over pods that should match the replica count."));
}

static json_t *replicaset_cells(const json_t *o)
{
	char containers[512], images[1024], sel[512];
	json_t *replicas = kj_path(o, "spec.replicas");

	containers_images(kj_path(o, "spec.template.spec"), containers, sizeof(containers), images,
			  sizeof(images));
	selector_text(kj_path(o, "spec.selector"), sel, sizeof(sel));
	return json_pack("[s, I, I, I, o, s, s, s]", kj_str(o, "metadata.name") ?: "",
			 (json_int_t)(replicas ? json_integer_value(replicas) : 1),
			 ival(o, "status.replicas"), ival(o, "status.readyReplicas"),
			 age_cell(kj_str(o, "metadata.creationTimestamp")), containers, images,
			 sel);
}

static json_t *pod_columns(void)
{
	return json_pack(
	    "[o, o, o, o, o, o, o, o, o]", col("Name", "string", "name", 0, name_desc),
	    col("Ready", "string", "", 0,
		"The aggregate readiness state of this pod for accepting traffic."),
	    col("Status", "string", "", 0, "The aggregate status of the containers in this pod."),
	    col("Restarts", "string", "", 0,
		"The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
	    col("Age", "string", "", 0, age_desc),
	    col("IP", "string", "", 1,
		"IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
	    col("Node", "string", "", 1,
		"NodeName is a request to schedule this pod onto a specific node."),
	    col("Nominated Node", "string", "", 1,
		"nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods."),
	    col("Readiness Gates", "string", "", 1,
		"If specified, all readiness gates will be evaluated for pod readiness."));
}

static json_t *pod_cells(const json_t *o)
{
	size_t total = json_array_size(kj_path(o, "spec.containers")), ready = 0, i;
	json_int_t restarts = 0;
	char readys[32];
	const char *status = kj_str(o, "status.phase") ?: "Pending";
	json_t *cs;

	json_array_foreach(kj_path(o, "status.containerStatuses"), i, cs)
	{
		restarts += json_integer_value(json_object_get(cs, "restartCount"));
		if (json_is_true(json_object_get(cs, "ready")))
			ready++;
	}
	if (kj_str(o, "status.reason"))
		status = kj_str(o, "status.reason");
	if (kj_str(o, "metadata.deletionTimestamp"))
		status = "Terminating";
	snprintf(readys, sizeof(readys), "%zu/%zu", ready, total);
	return json_pack("[s, s, s, I, o, s, s, s, s]", kj_str(o, "metadata.name") ?: "", readys,
			 status, restarts, age_cell(kj_str(o, "metadata.creationTimestamp")),
			 or_none(kj_str(o, "status.podIP")), or_none(kj_str(o, "spec.nodeName")),
			 or_none(kj_str(o, "status.nominatedNodeName")), "<none>");
}

static json_t *service_columns(void)
{
	return json_pack(
	    "[o, o, o, o, o, o, o]", col("Name", "string", "name", 0, name_desc),
	    col("Type", "string", "", 0, "type determines how the Service is exposed."),
	    col("Cluster-IP", "string", "", 0,
		"clusterIP is the IP address of the service and is usually assigned randomly."),
	    col("External-IP", "string", "", 0,
		"externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
	    col("Port(s)", "string", "", 0, "The list of ports that are exposed by this service."),
	    col("Age", "string", "", 0, age_desc),
	    col("Selector", "string", "", 1,
		"Route service traffic to pods with label keys and values matching this selector."));
}

static json_t *service_cells(const json_t *o)
{
	const char *type = kj_str(o, "spec.type") ?: "ClusterIP";
	char ports[512] = "", external[512] = "", sel[512] = "";
	const char *key;
	json_t *p, *v;
	size_t i;

	json_array_foreach(kj_path(o, "spec.ports"), i, p)
	{
		char one[96];
		if (json_integer_value(json_object_get(p, "nodePort")))
			snprintf(one, sizeof(one), "%lld:%lld/%s", (long long)ival(p, "port"),
				 (long long)ival(p, "nodePort"), kj_str(p, "protocol") ?: "TCP");
		else
			snprintf(one, sizeof(one), "%lld/%s", (long long)ival(p, "port"),
				 kj_str(p, "protocol") ?: "TCP");
		if (ports[0])
			strncat(ports, ",", sizeof(ports) - strlen(ports) - 1);
		strncat(ports, one, sizeof(ports) - strlen(ports) - 1);
	}
	json_array_foreach(kj_path(o, "status.loadBalancer.ingress"), i, p)
	{
		const char *ip = kj_str(p, "ip") ?: kj_str(p, "hostname");
		if (!ip)
			continue;
		if (external[0])
			strncat(external, ",", sizeof(external) - strlen(external) - 1);
		strncat(external, ip, sizeof(external) - strlen(external) - 1);
	}
	json_array_foreach(kj_path(o, "spec.externalIPs"), i, p)
	{
		if (external[0])
			strncat(external, ",", sizeof(external) - strlen(external) - 1);
		strncat(external, json_string_value(p) ?: "",
			sizeof(external) - strlen(external) - 1);
	}
	if (!external[0] && !strcmp(type, "LoadBalancer"))
		snprintf(external, sizeof(external), "<pending>");
	json_object_foreach(kj_path(o, "spec.selector"), key, v)
	{
		if (sel[0])
			strncat(sel, ",", sizeof(sel) - strlen(sel) - 1);
		strncat(sel, key, sizeof(sel) - strlen(sel) - 1);
		strncat(sel, "=", sizeof(sel) - strlen(sel) - 1);
		strncat(sel, json_string_value(v) ?: "", sizeof(sel) - strlen(sel) - 1);
	}
	return json_pack("[s, s, s, s, s, o, s]", kj_str(o, "metadata.name") ?: "", type,
			 or_none(kj_str(o, "spec.clusterIP")), or_none(external), or_none(ports),
			 age_cell(kj_str(o, "metadata.creationTimestamp")), or_none(sel));
}

/* "a,b,c + 2 more..." as the printers' formatEndpoints and formatDiscovery* write lists. */
struct short_list {
	char buf[512];
	int count, max;
};

static void sl_add(struct short_list *l, const char *item)
{
	if (l->count++ < l->max) {
		if (l->buf[0])
			strncat(l->buf, ",", sizeof(l->buf) - strlen(l->buf) - 1);
		strncat(l->buf, item, sizeof(l->buf) - strlen(l->buf) - 1);
	}
}

static const char *sl_text(struct short_list *l, const char *none)
{
	size_t n = strlen(l->buf);

	if (!l->count)
		return none;
	if (l->count > l->max)
		snprintf(l->buf + n, sizeof(l->buf) - n, " + %d more...", l->count - l->max);
	return l->buf;
}

/* formatEndpoints: the ready addresses with each port, three at most. */
static json_t *endpoints_cells(const json_t *o)
{
	struct short_list l = {.max = 3};
	json_t *ss, *port, *addr;
	size_t i, j, m;
	char one[80];

	json_array_foreach(json_object_get(o, "subsets"), i, ss)
	{
		json_t *ports = json_object_get(ss, "ports");
		if (!json_array_size(ports)) {
			json_array_foreach(json_object_get(ss, "addresses"), m, addr)
			    sl_add(&l, kj_str(addr, "ip") ?: "");
			continue;
		}
		json_array_foreach(ports, j, port)
		{
			json_array_foreach(json_object_get(ss, "addresses"), m, addr)
			{
				const char *ip = kj_str(addr, "ip") ?: "";
				snprintf(
				    one, sizeof(one), strchr(ip, ':') ? "[%s]:%lld" : "%s:%lld", ip,
				    (long long)json_integer_value(json_object_get(port, "port")));
				sl_add(&l, one);
			}
		}
	}
	return json_pack("[s, s, o]", kj_str(o, "metadata.name") ?: "", sl_text(&l, "<none>"),
			 age_cell(kj_str(o, "metadata.creationTimestamp")));
}

/* formatDiscoveryPorts and formatDiscoveryEndpoints */
static json_t *endpointslice_cells(const json_t *o)
{
	struct short_list ports = {.max = 3}, eps = {.max = 3};
	json_t *p, *ep, *a;
	size_t i, j;
	char one[32];

	json_array_foreach(json_object_get(o, "ports"), i, p)
	{
		json_t *port = json_object_get(p, "port");
		if (json_is_integer(port))
			snprintf(one, sizeof(one), "%lld", (long long)json_integer_value(port));
		else
			snprintf(one, sizeof(one), "<unset>");
		sl_add(&ports, one);
	}
	json_array_foreach(json_object_get(o, "endpoints"), i, ep)
	{
		json_array_foreach(json_object_get(ep, "addresses"), j, a)
		    sl_add(&eps, json_string_value(a) ?: "");
	}
	return json_pack("[s, s, s, s, o]", kj_str(o, "metadata.name") ?: "",
			 kj_str(o, "addressType") ?: "", sl_text(&ports, "<unset>"),
			 sl_text(&eps, "<unset>"),
			 age_cell(kj_str(o, "metadata.creationTimestamp")));
}

static json_t *simple_columns(enum kube_printer p)
{
	switch (p) {
	case KP_ENDPOINTS:
		return json_pack("[o, o, o]", col("Name", "string", "name", 0, name_desc),
				 col("Endpoints", "string", "", 0,
				     "Endpoints is the list of endpoints in the service."),
				 col("Age", "string", "", 0, age_desc));
	case KP_ENDPOINTSLICE:
		return json_pack(
		    "[o, o, o, o, o]", col("Name", "string", "name", 0, name_desc),
		    col("AddressType", "string", "", 0,
			"addressType specifies the type of address carried by this EndpointSlice."),
		    col("Ports", "string", "", 0,
			"ports specifies the list of network ports exposed."),
		    col("Endpoints", "string", "", 0,
			"endpoints is a list of unique endpoints in this slice."),
		    col("Age", "string", "", 0, age_desc));
	case KP_NAMESPACE:
		return json_pack("[o, o, o]", col("Name", "string", "name", 0, name_desc),
				 col("Status", "string", "", 0, "The status of the namespace"),
				 col("Age", "string", "", 0, age_desc));
	case KP_CONFIGMAP:
		return json_pack(
		    "[o, o, o]", col("Name", "string", "name", 0, name_desc),
		    col("Data", "string", "", 0, "Data contains the configuration data."),
		    col("Age", "string", "", 0, age_desc));
	case KP_SECRET:
		return json_pack("[o, o, o, o]", col("Name", "string", "name", 0, name_desc),
				 col("Type", "string", "", 0,
				     "Used to facilitate programmatic handling of secret data."),
				 col("Data", "string", "", 0, "Data contains the secret data."),
				 col("Age", "string", "", 0, age_desc));
	case KP_SERVICEACCOUNT:
		return json_pack(
		    "[o, o, o]", col("Name", "string", "name", 0, name_desc),
		    col("Secrets", "string", "", 0,
			"Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."),
		    col("Age", "string", "", 0, age_desc));
	case KP_LEASE:
		return json_pack(
		    "[o, o, o]", col("Name", "string", "name", 0, name_desc),
		    col("Holder", "string", "", 0,
			"holderIdentity contains the identity of the holder of a current lease."),
		    col("Age", "string", "", 0, age_desc));
	case KP_ROLEBINDING:
		return json_pack(
		    "[o, o, o, o, o, o]", col("Name", "string", "name", 0, name_desc),
		    col("Role", "string", "", 0, "Role referenced by this binding"),
		    col("Age", "string", "", 0, age_desc),
		    col("Users", "string", "", 1, "Users in the binding"),
		    col("Groups", "string", "", 1, "Groups in the binding"),
		    col("ServiceAccounts", "string", "", 1, "ServiceAccounts in the binding"));
	case KP_CREATED_AT:
		return json_pack("[o, o]", col("Name", "string", "name", 0, name_desc),
				 col("Created At", "date", "", 0, age_desc));
	default:
		return json_pack("[o, o]", col("Name", "string", "name", 0, name_desc),
				 col("Age", "string", "", 0, age_desc));
	}
}

static void subjects(const json_t *o, const char *kind, char *buf, size_t len)
{
	json_t *s;
	size_t i;

	buf[0] = '\0';
	json_array_foreach(json_object_get(o, "subjects"), i, s)
	{
		char one[300];
		if (!kj_str(s, "kind") || strcmp(kj_str(s, "kind"), kind))
			continue;
		if (!strcmp(kind, "ServiceAccount"))
			snprintf(one, sizeof(one), "%s/%s", kj_str(s, "namespace") ?: "",
				 kj_str(s, "name") ?: "");
		else
			snprintf(one, sizeof(one), "%s", kj_str(s, "name") ?: "");
		if (buf[0])
			strncat(buf, ", ", len - strlen(buf) - 1);
		strncat(buf, one, len - strlen(buf) - 1);
	}
}

static json_t *simple_cells(enum kube_printer p, const json_t *o)
{
	const char *name = kj_str(o, "metadata.name") ?: "";
	json_t *age = age_cell(kj_str(o, "metadata.creationTimestamp"));

	switch (p) {
	case KP_ENDPOINTS:
		json_decref(age);
		return endpoints_cells(o);
	case KP_ENDPOINTSLICE:
		json_decref(age);
		return endpointslice_cells(o);
	case KP_NAMESPACE:
		return json_pack("[s, s, o]", name, kj_str(o, "status.phase") ?: "Active", age);
	case KP_CONFIGMAP:
		return json_pack("[s, I, o]", name,
				 (json_int_t)(json_object_size(json_object_get(o, "data")) +
					      json_object_size(json_object_get(o, "binaryData"))),
				 age);
	case KP_SECRET:
		return json_pack("[s, s, I, o]", name, kj_str(o, "type") ?: "Opaque",
				 (json_int_t)json_object_size(json_object_get(o, "data")), age);
	case KP_SERVICEACCOUNT:
		return json_pack("[s, I, o]", name,
				 (json_int_t)json_array_size(json_object_get(o, "secrets")), age);
	case KP_LEASE:
		return json_pack("[s, s, o]", name, kj_str(o, "spec.holderIdentity") ?: "", age);
	case KP_ROLEBINDING: {
		char role[300], users[512], groups[512], sas[512];
		snprintf(role, sizeof(role), "%s/%s", kj_str(o, "roleRef.kind") ?: "",
			 kj_str(o, "roleRef.name") ?: "");
		subjects(o, "User", users, sizeof(users));
		subjects(o, "Group", groups, sizeof(groups));
		subjects(o, "ServiceAccount", sas, sizeof(sas));
		return json_pack("[s, s, o, s, s, s]", name, role, age, users, groups, sas);
	}
	case KP_CREATED_AT:
		json_decref(age);
		return json_pack("[s, s]", name, kj_str(o, "metadata.creationTimestamp") ?: "");
	default:
		return json_pack("[s, o]", name, age);
	}
}

static json_t *columns(enum kube_printer p)
{
	switch (p) {
	case KP_NODE:
		return node_columns();
	case KP_EVENT:
		return event_columns();
	case KP_POD:
		return pod_columns();
	case KP_DEPLOYMENT:
		return deployment_columns();
	case KP_DAEMONSET:
		return daemonset_columns();
	case KP_REPLICASET:
		return replicaset_columns();
	case KP_SERVICE:
		return service_columns();
	default:
		return simple_columns(p);
	}
}

static json_t *cells(enum kube_printer p, const json_t *o)
{
	switch (p) {
	case KP_NODE:
		return node_cells(o);
	case KP_EVENT:
		return event_cells(o);
	case KP_POD:
		return pod_cells(o);
	case KP_DEPLOYMENT:
		return deployment_cells(o);
	case KP_DAEMONSET:
		return daemonset_cells(o);
	case KP_REPLICASET:
		return replicaset_cells(o);
	case KP_SERVICE:
		return service_cells(o);
	default:
		return simple_cells(p, o);
	}
}

json_t *kube_table(struct emu_kube *k, struct kube_res *r, struct kobj *const *objs, size_t n,
		   const char *include_object)
{
	json_t *rows = json_array();

	(void)k;
	for (size_t i = 0; i < n; i++) {
		const json_t *o = objs[i]->obj;
		json_t *row = json_pack("{s:o}", "cells", cells(r->def.printer, o));

		if (include_object && !strcmp(include_object, "None")) {
			/* no object */
		} else if (include_object && !strcmp(include_object, "Object")) {
			json_object_set(row, "object", (json_t *)o);
		} else {
			json_object_set_new(row, "object",
					    json_pack("{s:s, s:s, s:O}", "kind",
						      "PartialObjectMetadata", "apiVersion",
						      "meta.k8s.io/v1", "metadata",
						      json_object_get(o, "metadata")));
		}
		json_array_append_new(rows, row);
	}
	return json_pack("{s:s, s:s, s:{}, s:o, s:o}", "kind", "Table", "apiVersion",
			 "meta.k8s.io/v1", "metadata", "columnDefinitions", columns(r->def.printer),
			 "rows", rows);
}
