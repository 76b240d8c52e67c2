/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Backend health as the emulator models it until a data plane exists: the Compute side's
 * backendServices.getHealth asks whether an instance would answer a health check on a port.
 *
 *   - 6443 (the API server): healthy while the instance's Node is a Ready control plane
 *     (label node-role.kubernetes.io/control-plane, condition Ready=True);
 *   - any other port: healthy while the Node is Ready and a Service of type NodePort or
 *     LoadBalancer exposes that port as a nodePort (kube-proxy, or Cilium's replacement,
 *     listens for it on every node), as design note §3's NodePort ingress relies on.
 *
 * A Node belongs to an instance by spec.providerID gce://PROJECT/ZONE/NAME, else by name.
 */
#include <stdio.h>
#include <string.h>

#include "emu/kube/kube.h"

static bool node_ready(const json_t *node)
{
	json_t *c;
	size_t i;

	json_array_foreach(kj_path(node, "status.conditions"), i, c)
	{
		if (strcmp(kj_str(c, "type") ?: "", "Ready") == 0)
			return strcmp(kj_str(c, "status") ?: "", "True") == 0;
	}
	return false;
}

static json_t *instance_node(struct emu_kube *k, const char *zone, const char *instance)
{
	struct kube_res *nodes = kube_res_find(k, "", "v1", "nodes");
	char pid[512];

	snprintf(pid, sizeof(pid), "gce://%s/%s/%s", k->emu->opt.project, zone, instance);
	for (size_t i = 0; nodes && i < nodes->len; i++) {
		json_t *n = kobj_full(nodes->items[i].obj);
		const char *p = kj_str(n, "spec.providerID");

		if ((p && strcmp(p, pid) == 0) ||
		    (!p && strcmp(kj_str(n, "metadata.name") ?: "", instance) == 0))
			return n;
		json_decref(n);
	}
	return NULL;
}

static bool node_port_exposed(struct emu_kube *k, unsigned port)
{
	struct kube_res *svcs = kube_res_find(k, "", "v1", "services");
	bool found = false;

	for (size_t i = 0; svcs && i < svcs->len && !found; i++) {
		json_t *s = kobj_full(svcs->items[i].obj), *p;
		const char *type = kj_str(s, "spec.type") ?: "ClusterIP";
		size_t j;

		if (strcmp(type, "NodePort") == 0 || strcmp(type, "LoadBalancer") == 0) {
			json_array_foreach(kj_path(s, "spec.ports"), j, p)
			{
				if (json_integer_value(json_object_get(p, "nodePort")) ==
				    (json_int_t)port)
					found = true;
			}
		}
		json_decref(s);
	}
	return found;
}

bool emu_kube_backend_healthy(struct emu *emu, const char *zone, const char *instance,
			      unsigned port)
{
	struct emu_kube *k = emu->kube;
	json_t *node;
	bool healthy = false;

	if (!k || !port)
		return false;
	node = instance_node(k, zone, instance);
	if (!node)
		return false;
	if (node_ready(node)) {
		if (port == 6443)
			healthy = kj_path(node, "metadata.labels") &&
				  json_object_get(kj_path(node, "metadata.labels"),
						  "node-role.kubernetes.io/control-plane");
		else
			healthy = node_port_exposed(k, port);
	}
	json_decref(node);
	return healthy;
}
