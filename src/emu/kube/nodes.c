/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Admission per kind: the defaults and validation the API server's registry strategies
 * apply before an object is stored.
 *
 * Node (kubernetes pkg/apis/core/v1/conversion.go, pkg/apis/core/validation/validation.go):
 *   - spec.podCIDR and spec.podCIDRs are one field internally (PodCIDRs): a request with
 *     only podCIDR sets podCIDRs = [podCIDR]; with both differing, podCIDR wins "for
 *     compatibility with older clients"; the answer always has podCIDR = podCIDRs[0];
 *   - podCIDRs: valid CIDRs, at most one per IP family, no duplicates;
 *   - once podCIDRs is set it may not change: 422 Invalid, cause FieldValueForbidden on
 *     spec.podCIDRs, "node updates may not change podCIDR except from \"\" to valid"
 *     (ValidateNodeUpdate reports the internal field, spec.podCIDRs, whichever of the two
 *     v1 fields the client wrote);
 *   - spec.providerID likewise ("... may not change providerID except from \"\" to valid");
 *   - taints: known effects, unique by key and effect.
 * Service: type ClusterIP, a cluster IP from 10.96.0.0/12, TCP ports with targetPort =
 * port, node ports from 30000-32767 for NodePort and LoadBalancer. Namespace: phase
 * Active, finalizer kubernetes. CRD: names accepted, Established.
 * Every kind: label keys and values as ValidateLabels checks them.
 * Reviews (SelfSubjectReview, ...AccessReview, TokenReview) are answered here: the
 * emulator authorizes every authenticated user.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <strings.h>

#include "common/cidr.h"
#include "emu/kube/kube.h"

/* Go's %#v of a []string, as field.Invalid prints the bad value. */
static void go_strings(const json_t *arr, char *buf, size_t len)
{
	json_t *v;
	size_t i;

	snprintf(buf, len, "[]string{");
	json_array_foreach(arr, i, v)
	{
		size_t n = strlen(buf);
		snprintf(buf + n, len - n, "%s\"%s\"", i ? ", " : "", json_string_value(v) ?: "");
	}
	strncat(buf, "}", len - strlen(buf) - 1);
}

/* v1 -> internal -> v1: podCIDRs authoritative, podCIDR its first element. */
static void node_pod_cidrs(json_t *node)
{
	json_t *spec = json_object_get(node, "spec"), *cidrs;
	const char *single;

	if (!json_is_object(spec))
		return;
	single = json_string_value(json_object_get(spec, "podCIDR"));
	cidrs = json_object_get(spec, "podCIDRs");
	if (single && single[0] &&
	    (!json_array_size(cidrs) ||
	     strcmp(json_string_value(json_array_get(cidrs, 0)) ?: "", single) != 0)) {
		json_object_set_new(spec, "podCIDRs", json_pack("[s]", single));
		cidrs = json_object_get(spec, "podCIDRs");
	}
	if (json_array_size(cidrs) && json_is_string(json_array_get(cidrs, 0))) {
		json_object_set(spec, "podCIDR", json_array_get(cidrs, 0));
	} else {
		json_object_del(spec, "podCIDR");
		if (cidrs && !json_array_size(cidrs))
			json_object_del(spec, "podCIDRs");
	}
}

static void validate_labels(const json_t *obj, json_t *causes)
{
	const char *key;
	json_t *v;

	json_object_foreach(kj_path(obj, "metadata.labels"), key, v)
	{
		const char *val = json_string_value(v);
		if (!kube_valid_label_key(key, strlen(key)))
			kube_cause(
			    causes, "FieldValueInvalid", "metadata.labels",
			    "Invalid value: \"%s\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
			    key);
		else if (!val || !kube_valid_label_value(val, strlen(val)))
			kube_cause(
			    causes, "FieldValueInvalid", "metadata.labels",
			    "Invalid value: \"%s\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
			    val ? val : "");
	}
}

static void validate_node(const json_t *node, json_t *causes)
{
	json_t *cidrs = kj_path(node, "spec.podCIDRs"), *v, *t;
	char bad[512];
	int families[2] = {0, 0};
	size_t i;

	json_array_foreach(cidrs, i, v)
	{
		struct cidr c;
		char field[64];
		const char *s = json_string_value(v);

		snprintf(field, sizeof(field), "spec.podCIDRs[%zu]", i);
		if (!s || cidr_parse(s, &c, 0) < 0) {
			go_strings(cidrs, bad, sizeof(bad));
			kube_cause(causes, "FieldValueInvalid", field,
				   "Invalid value: %s: must be valid CIDR", bad);
			continue;
		}
		families[c.addr.family == AF_INET6]++;
	}
	if (json_array_size(cidrs) > 1) {
		if (json_array_size(cidrs) > 2 || families[0] > 1 || families[1] > 1) {
			go_strings(cidrs, bad, sizeof(bad));
			kube_cause(
			    causes, "FieldValueInvalid", "spec.podCIDRs",
			    "Invalid value: %s: may specify no more than one CIDR for each IP family",
			    bad);
		}
		json_array_foreach(cidrs, i, v)
		{
			for (size_t j = 0; j < i; j++)
				if (json_equal(v, json_array_get(cidrs, j))) {
					char field[64];
					snprintf(field, sizeof(field), "spec.podCIDRs[%zu]", i);
					kube_cause(causes, "FieldValueDuplicate", field,
						   "Duplicate value: \"%s\"",
						   json_string_value(v) ?: "");
					break;
				}
		}
	}
	json_array_foreach(kj_path(node, "spec.taints"), i, t)
	{
		const char *key = kj_str(t, "key"), *effect = kj_str(t, "effect");
		char field[64];

		if (!key || !kube_valid_label_key(key, strlen(key))) {
			snprintf(field, sizeof(field), "spec.taints[%zu].key", i);
			kube_cause(
			    causes, "FieldValueInvalid", field,
			    "Invalid value: \"%s\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
			    key ? key : "");
		}
		if (!effect ||
		    (strcmp(effect, "NoSchedule") && strcmp(effect, "PreferNoSchedule") &&
		     strcmp(effect, "NoExecute"))) {
			snprintf(field, sizeof(field), "spec.taints[%zu].effect", i);
			kube_cause(
			    causes, effect ? "FieldValueNotSupported" : "FieldValueRequired", field,
			    effect
				? "Unsupported value: \"%s\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""
				: "Required value%s",
			    effect ? effect : "");
		}
		for (size_t j = 0; j < i && key && effect; j++) {
			json_t *u = json_array_get(kj_path(node, "spec.taints"), j);
			if (!strcmp(kj_str(u, "key") ?: "", key) &&
			    !strcmp(kj_str(u, "effect") ?: "", effect)) {
				snprintf(field, sizeof(field), "spec.taints[%zu]", i);
				kube_cause(
				    causes, "FieldValueDuplicate", field,
				    "Duplicate value: \"%s:%s\": taints must be unique by key and effect pair",
				    key, effect);
			}
		}
	}
}

/* ---- services ---- */
#define SERVICE_CIDR_BASE 0x0a600000u /* 10.96.0.0/12: addresses as data, never routed */
#define SERVICE_CIDR_SIZE (1u << 20)

static bool ip_in_use(struct kube_res *svc, const char *ip)
{
	for (size_t i = 0; i < svc->len; i++)
		if (!strcmp(kj_str(svc->items[i].obj->obj, "spec.clusterIP") ?: "", ip))
			return true;
	return false;
}

static int alloc_cluster_ip(struct kube_res *svc, char *buf, size_t len)
{
	for (uint32_t off = 1; off < SERVICE_CIDR_SIZE - 1; off++) {
		struct in_addr a = {.s_addr = htonl(SERVICE_CIDR_BASE + off)};
		inet_ntop(AF_INET, &a, buf, (socklen_t)len);
		if (!ip_in_use(svc, buf))
			return 0;
	}
	return -ENOSPC;
}

/* The service holding node port p (other than self), or NULL. */
static const char *node_port_owner(struct kube_res *svc, json_int_t p, const char *self_uid)
{
	for (size_t i = 0; i < svc->len; i++) {
		const json_t *o = svc->items[i].obj->obj;
		json_t *port;
		size_t j;
		if (self_uid && !strcmp(kj_str(o, "metadata.uid") ?: "", self_uid))
			continue;
		json_array_foreach(kj_path(o, "spec.ports"), j, port)
		{
			if (json_integer_value(json_object_get(port, "nodePort")) == p)
				return kj_str(o, "metadata.name");
		}
	}
	return NULL;
}

static int service_admit(struct emu_kube *k, struct kube_res *r, json_t *obj, const json_t *old,
			 json_t *causes)
{
	json_t *spec = kj_obj(obj, "spec"), *ports = json_object_get(spec, "ports"), *p;
	const char *type = kj_str(spec, "type"), *self = kj_str(obj, "metadata.uid");
	bool node_ports;
	size_t i;

	(void)k;
	if (!type) {
		type = "ClusterIP";
		json_object_set_new(spec, "type", json_string(type));
	}
	if (strcmp(type, "ClusterIP") && strcmp(type, "NodePort") && strcmp(type, "LoadBalancer") &&
	    strcmp(type, "ExternalName")) {
		kube_cause(
		    causes, "FieldValueNotSupported", "spec.type",
		    "Unsupported value: \"%s\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
		    type);
		return 0;
	}
	node_ports = !strcmp(type, "NodePort") || !strcmp(type, "LoadBalancer");
	if (!json_array_size(ports) && strcmp(type, "ExternalName") &&
	    strcmp(kj_str(spec, "clusterIP") ?: "", "None"))
		kube_cause(causes, "FieldValueRequired", "spec.ports", "Required value");
	json_array_foreach(ports, i, p)
	{
		json_t *np = json_object_get(p, "nodePort");
		char field[64];

		if (!json_is_integer(json_object_get(p, "port"))) {
			snprintf(field, sizeof(field), "spec.ports[%zu].port", i);
			kube_cause(causes, "FieldValueRequired", field, "Required value");
			continue;
		}
		if (!kj_str(p, "protocol"))
			json_object_set_new(p, "protocol", json_string("TCP"));
		if (!json_object_get(p, "targetPort"))
			json_object_set(p, "targetPort", json_object_get(p, "port"));
		if (!node_ports) {
			json_object_del(p, "nodePort");
			continue;
		}
		if (!np && old) {
			/* An update keeps the node port of the same port. */
			json_t *op;
			size_t j;
			json_array_foreach(kj_path(old, "spec.ports"), j, op)
			{
				if (json_equal(json_object_get(op, "port"),
					       json_object_get(p, "port")) &&
				    json_object_get(op, "nodePort"))
					json_object_set(p, "nodePort",
							json_object_get(op, "nodePort"));
			}
			np = json_object_get(p, "nodePort");
		}
		if (np) {
			json_int_t v = json_integer_value(np);
			snprintf(field, sizeof(field), "spec.ports[%zu].nodePort", i);
			if (v < 30000 || v > 32767)
				kube_cause(
				    causes, "FieldValueInvalid", field,
				    "Invalid value: %lld: provided port is not in the valid range. The range of valid ports is 30000-32767",
				    (long long)v);
			else if (node_port_owner(r, v, self))
				kube_cause(
				    causes, "FieldValueInvalid", field,
				    "Invalid value: %lld: provided port is already allocated",
				    (long long)v);
			continue;
		}
		for (json_int_t v = 30000; v <= 32767; v++) {
			bool taken = node_port_owner(r, v, self) != NULL;
			json_t *q;
			size_t j;
			json_array_foreach(ports, j, q) taken |=
			    j != i && json_integer_value(json_object_get(q, "nodePort")) == v;
			if (!taken) {
				json_object_set_new(p, "nodePort", json_integer(v));
				break;
			}
		}
	}
	if (strcmp(type, "ExternalName")) {
		const char *ip = kj_str(spec, "clusterIP");
		if (old && kj_str(old, "spec.clusterIP") && (!ip || !ip[0]))
			json_object_set(spec, "clusterIP", kj_path(old, "spec.clusterIP"));
		else if (!ip || !ip[0]) {
			char buf[INET_ADDRSTRLEN];
			if (alloc_cluster_ip(r, buf, sizeof(buf)) == 0)
				json_object_set_new(spec, "clusterIP", json_string(buf));
		}
		json_object_set_new(spec, "clusterIPs",
				    json_pack("[O]", json_object_get(spec, "clusterIP")));
		if (!json_object_get(spec, "ipFamilies"))
			json_object_set_new(spec, "ipFamilies", json_pack("[s]", "IPv4"));
		if (!json_object_get(spec, "ipFamilyPolicy"))
			json_object_set_new(spec, "ipFamilyPolicy", json_string("SingleStack"));
		if (!json_object_get(spec, "internalTrafficPolicy"))
			json_object_set_new(spec, "internalTrafficPolicy", json_string("Cluster"));
	}
	if (node_ports && !json_object_get(spec, "externalTrafficPolicy"))
		json_object_set_new(spec, "externalTrafficPolicy", json_string("Cluster"));
	if (!json_object_get(spec, "sessionAffinity"))
		json_object_set_new(spec, "sessionAffinity", json_string("None"));
	if (!old)
		json_object_set_new(obj, "status", json_pack("{s:{}}", "loadBalancer"));
	return 0;
}

/* ---- admission entry points ---- */
int kube_admit_create(struct emu_kube *k, struct kube_res *r, json_t *obj, struct kube_err *e)
{
	const char *res = r->def.resource;
	const char *name = kj_str(obj, "metadata.name") ?: "";
	json_t *causes = json_array();

	validate_labels(obj, causes);
	if (!strcmp(res, "nodes") && !r->def.group[0]) {
		node_pod_cidrs(obj);
		validate_node(obj, causes);
	} else if (!strcmp(res, "namespaces") && !r->def.group[0]) {
		json_t *spec = kj_obj(obj, "spec");
		if (!json_object_get(spec, "finalizers"))
			json_object_set_new(spec, "finalizers", json_pack("[s]", "kubernetes"));
		json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Active"));
		json_object_set_new(kj_obj(kj_obj(obj, "metadata"), "labels"),
				    "kubernetes.io/metadata.name", json_string(name));
	} else if (!strcmp(res, "services") && !r->def.group[0]) {
		service_admit(k, r, obj, NULL, causes);
	} else if (!strcmp(res, "pods") && !r->def.group[0]) {
		json_t *status = kj_obj(obj, "status");
		if (!json_object_get(status, "phase"))
			json_object_set_new(status, "phase", json_string("Pending"));
		if (!json_object_get(kj_obj(obj, "spec"), "restartPolicy"))
			json_object_set_new(kj_obj(obj, "spec"), "restartPolicy",
					    json_string("Always"));
	} else if (!strcmp(res, "deployments") || !strcmp(res, "replicasets") ||
		   !strcmp(res, "statefulsets")) {
		json_t *spec = kj_obj(obj, "spec");
		if (!json_object_get(spec, "replicas"))
			json_object_set_new(spec, "replicas", json_integer(1));
	} else if (!strcmp(res, "customresourcedefinitions")) {
		json_t *status = kj_obj(obj, "status"), *versions, *v, *stored = json_array();
		size_t i;
		char now[40];
		emu_rfc3339(now, sizeof(now));
		json_object_set(status, "acceptedNames", kj_path(obj, "spec.names"));
		json_object_set_new(
		    status, "conditions",
		    json_pack("[{s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s}]", "type",
			      "NamesAccepted", "status", "True", "reason", "NoConflicts", "message",
			      "no conflicts found", "lastTransitionTime", now, "type",
			      "Established", "status", "True", "reason", "InitialNamesAccepted",
			      "message", "the initial names have been accepted",
			      "lastTransitionTime", now));
		versions = kj_path(obj, "spec.versions");
		json_array_foreach(versions, i, v) if (json_is_true(json_object_get(v, "storage")))
		    json_array_append(stored, json_object_get(v, "name"));
		json_object_set_new(status, "storedVersions", stored);
		if (!kj_str(obj, "spec.group") || !kj_str(obj, "spec.names.plural") ||
		    !kj_str(obj, "spec.names.kind") || !json_array_size(versions))
			kube_cause(causes, "FieldValueRequired", "spec",
				   "Required value: group, names.plural, names.kind and versions");
	}
	if (json_array_size(causes))
		return kube_err_invalid(e, r, name, causes);
	json_decref(causes);
	return 0;
}

int kube_admit_update(struct emu_kube *k, struct kube_res *r, const json_t *old, json_t *obj,
		      struct kube_err *e)
{
	const char *res = r->def.resource;
	const char *name = kj_str(obj, "metadata.name") ?: "";
	json_t *causes = json_array();

	validate_labels(obj, causes);
	if (!strcmp(res, "nodes") && !r->def.group[0]) {
		json_t *oc = kj_path(old, "spec.podCIDRs"), *nc;
		const char *opid = kj_str(old, "spec.providerID");

		node_pod_cidrs(obj);
		validate_node(obj, causes);
		nc = kj_path(obj, "spec.podCIDRs");
		if (json_array_size(oc) > 0) {
			if (json_array_size(oc) != json_array_size(nc)) {
				kube_cause(
				    causes, "FieldValueForbidden", "spec.podCIDRs",
				    "Forbidden: node updates may not change podCIDR except from \"\" to valid");
			} else {
				for (size_t i = 0; i < json_array_size(oc); i++)
					if (!json_equal(json_array_get(oc, i),
							json_array_get(nc, i)))
						kube_cause(
						    causes, "FieldValueForbidden", "spec.podCIDRs",
						    "Forbidden: node updates may not change podCIDR except from \"\" to valid");
			}
		}
		if (opid && opid[0] && strcmp(opid, kj_str(obj, "spec.providerID") ?: ""))
			kube_cause(
			    causes, "FieldValueForbidden", "spec.providerID",
			    "Forbidden: node updates may not change providerID except from \"\" to valid");
	} else if (!strcmp(res, "services") && !r->def.group[0]) {
		const char *oip = kj_str(old, "spec.clusterIP"),
			   *nip = kj_str(obj, "spec.clusterIP");
		if (oip && nip && nip[0] && strcmp(oip, nip))
			kube_cause(causes, "FieldValueInvalid", "spec.clusterIPs[0]",
				   "Invalid value: []string{\"%s\"}: may not change once set", nip);
		else
			service_admit(k, r, obj, old, causes);
	} else if (!strcmp(res, "namespaces") && !r->def.group[0]) {
		json_object_set_new(kj_obj(kj_obj(obj, "metadata"), "labels"),
				    "kubernetes.io/metadata.name", json_string(name));
	}
	if (json_array_size(causes))
		return kube_err_invalid(e, r, name, causes);
	json_decref(causes);
	return 0;
}

/* ---- reviews ---- */
int kube_review(struct emu_kube *k, struct kube_res *r, struct emu_request *req, json_t *obj,
		struct kube_err *e)
{
	const char *kind = r->def.kind;

	if (!json_is_object(obj))
		return kube_errf(e, 400, "BadRequest",
				 "the body of the request is not a JSON object");
	json_object_set_new(obj, "kind", json_string(kind));
	json_object_set_new(obj, "apiVersion", json_string(r->api_version));
	kj_obj(obj, "metadata");
	if (!strcmp(kind, "SelfSubjectReview")) {
		json_object_set_new(
		    obj, "status",
		    json_pack("{s:{s:s, s:o}}", "userInfo", "username", req->user ? req->user : "",
			      "groups", req->groups ? json_deep_copy(req->groups) : json_array()));
	} else if (!strcmp(kind, "TokenReview")) {
		const char *tok = kj_str(obj, "spec.token") ?: "";
		if (k->pki.admin_token && !strcmp(tok, k->pki.admin_token))
			json_object_set_new(obj, "status",
					    json_pack("{s:b, s:{s:s, s:[s, s]}}", "authenticated",
						      1, "user", "username", "admin", "groups",
						      "system:masters", "system:authenticated"));
		else if (k->pki.sa_token && !strcmp(tok, k->pki.sa_token))
			json_object_set_new(obj, "status",
					    json_pack("{s:b, s:{s:s, s:[s, s, s]}}",
						      "authenticated", 1, "user", "username",
						      "system:serviceaccount:kube-system:talos-gcp",
						      "groups", "system:serviceaccounts",
						      "system:serviceaccounts:kube-system",
						      "system:authenticated"));
		else
			json_object_set_new(obj, "status",
					    json_pack("{s:b, s:s}", "authenticated", 0, "error",
						      "invalid bearer token"));
	} else if (!strcmp(kind, "SelfSubjectRulesReview")) {
		json_object_set_new(
		    obj, "status",
		    json_pack("{s:[{s:[s], s:[s], s:[s]}], s:[{s:[s], s:[s]}], s:b}",
			      "resourceRules", "verbs", "*", "apiGroups", "*", "resources", "*",
			      "nonResourceRules", "verbs", "*", "nonResourceURLs", "*",
			      "incomplete", 0));
	} else {
		/* Authorization: every authenticated user may do everything. */
		json_object_set_new(obj, "status",
				    json_pack("{s:b, s:s}", "allowed", 1, "reason",
					      "talos-gcp-emu: authenticated users are allowed"));
	}
	return 0;
}
