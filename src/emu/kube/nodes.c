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

#include "common/base64.h"
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

/*
 * The service holding node port p (other than self), or NULL. Node ports and health check
 * node ports share one allocator (pkg/registry/core/service/portallocator).
 */
static const char *node_port_owner(struct kube_res *svc, json_int_t p, const char *self_uid)
{
	for (size_t i = 0; i < svc->len; i++) {
		const json_t *o = svc->items[i].obj->obj;
		json_t *port;
		size_t j;
		if (self_uid && !strcmp(kj_str(o, "metadata.uid") ?: "", self_uid))
			continue;
		if (json_integer_value(kj_path(o, "spec.healthCheckNodePort")) == p)
			return kj_str(o, "metadata.name");
		json_array_foreach(kj_path(o, "spec.ports"), j, port)
		{
			if (json_integer_value(json_object_get(port, "nodePort")) == p)
				return kj_str(o, "metadata.name");
		}
	}
	return NULL;
}

/* A free node port: not another service's, not one of this spec's ports or health check. */
static json_int_t free_node_port(struct kube_res *r, const json_t *spec, const char *self)
{
	for (json_int_t v = 30000; v <= 32767; v++) {
		bool taken = node_port_owner(r, v, self) != NULL ||
			     json_integer_value(json_object_get(spec, "healthCheckNodePort")) == v;
		json_t *q;
		size_t j;
		json_array_foreach(json_object_get(spec, "ports"), j, q) taken |=
		    json_integer_value(json_object_get(q, "nodePort")) == v;
		if (!taken)
			return v;
	}
	return 0;
}

/* apiservice.NeedsHealthCheck: a LoadBalancer that keeps the client's source IP. */
static bool needs_health_check(const json_t *svc)
{
	return !strcmp(kj_str(svc, "spec.type") ?: "ClusterIP", "LoadBalancer") &&
	       !strcmp(kj_str(svc, "spec.externalTrafficPolicy") ?: "", "Local");
}

static bool externally_accessible(const json_t *svc)
{
	const char *type = kj_str(svc, "spec.type") ?: "ClusterIP";

	return !strcmp(type, "LoadBalancer") || !strcmp(type, "NodePort") ||
	       (!strcmp(type, "ClusterIP") && json_array_size(kj_path(svc, "spec.externalIPs")));
}

/*
 * spec.healthCheckNodePort (pkg/registry/core/service/storage: alloc.go allocHealthCheckNodePort,
 * storage.go dropTypeDependentFields and patchAllocatedValues; validation.go
 * validateServiceExternalTrafficPolicy and validateServiceExternalTrafficFieldsUpdate):
 * allocated from the node-port range while type is LoadBalancer and externalTrafficPolicy
 * Local, kept on updates that omit it, dropped when the policy or type changes and the client
 * left the old value in place, immutable while needed.
 */
static void health_check_node_port(struct kube_res *r, json_t *obj, const json_t *old,
				   json_t *causes)
{
	json_t *spec = kj_obj(obj, "spec"), *hv = json_object_get(spec, "healthCheckNodePort");
	bool need = needs_health_check(obj), needed = old && needs_health_check(old);
	json_int_t hc = json_integer_value(hv),
		   oldhc = old ? json_integer_value(kj_path(old, "spec.healthCheckNodePort")) : 0;
	const char *self = kj_str(obj, "metadata.uid");

	if (hv && !json_is_integer(hv)) {
		kube_cause(causes, "FieldValueInvalid", "spec.healthCheckNodePort",
			   "Invalid value: must be an integer");
		return;
	}
	if (!need && needed && hc == oldhc) {
		json_object_del(spec, "healthCheckNodePort"); /* released with the old type */
		return;
	}
	if (need && needed && !hc && oldhc) {
		json_object_set_new(spec, "healthCheckNodePort", json_integer(oldhc));
		return;
	}
	if (!need) {
		if (hc)
			kube_cause(
			    causes, "FieldValueInvalid", "spec.healthCheckNodePort",
			    "Invalid value: %lld: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
			    (long long)hc);
		return;
	}
	if (needed && hc != oldhc) {
		kube_cause(causes, "FieldValueForbidden", "spec.healthCheckNodePort",
			   "Forbidden: field is immutable");
		return;
	}
	if (needed)
		return; /* kept */
	if (!hc) {
		json_int_t v = free_node_port(r, spec, self);
		if (v)
			json_object_set_new(spec, "healthCheckNodePort", json_integer(v));
		else
			kube_cause(causes, "FieldValueInvalid", "spec.healthCheckNodePort",
				   "Invalid value: 0: range is full");
		return;
	}
	if (hc < 30000 || hc > 32767)
		kube_cause(
		    causes, "FieldValueInvalid", "spec.healthCheckNodePort",
		    "Invalid value: %lld: provided port is not in the valid range. The range of valid ports is 30000-32767",
		    (long long)hc);
	else if (node_port_owner(r, hc, self))
		kube_cause(causes, "FieldValueInvalid", "spec.healthCheckNodePort",
			   "Invalid value: %lld: provided port is already allocated",
			   (long long)hc);
	else {
		json_t *q;
		size_t j;
		json_array_foreach(json_object_get(spec, "ports"), j, q)
		{
			if (json_integer_value(json_object_get(q, "nodePort")) == hc) {
				kube_cause(
				    causes, "FieldValueInvalid", "spec.healthCheckNodePort",
				    "Invalid value: %lld: provided port is already allocated",
				    (long long)hc);
				break;
			}
		}
	}
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
	/* SetDefaults_Service; dropTypeDependentFields when the type changes */
	if (!strcmp(type, "LoadBalancer") &&
	    !json_object_get(spec, "allocateLoadBalancerNodePorts"))
		json_object_set_new(spec, "allocateLoadBalancerNodePorts", json_true());
	if (strcmp(type, "LoadBalancer") &&
	    json_object_get(spec, "allocateLoadBalancerNodePorts")) {
		if (old && json_equal(json_object_get(spec, "allocateLoadBalancerNodePorts"),
				      kj_path(old, "spec.allocateLoadBalancerNodePorts")))
			json_object_del(spec, "allocateLoadBalancerNodePorts");
		else
			kube_cause(causes, "FieldValueForbidden",
				   "spec.allocateLoadBalancerNodePorts",
				   "Forbidden: may only be used when `type` is 'LoadBalancer'");
	}
	if (!strcmp(type, "LoadBalancer") &&
	    json_is_false(json_object_get(spec, "allocateLoadBalancerNodePorts")))
		node_ports = false; /* only the node ports the client gives */
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
			if (strcmp(type, "LoadBalancer"))
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
		{
			json_int_t v = free_node_port(r, spec, self);
			if (v)
				json_object_set_new(p, "nodePort", json_integer(v));
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
	if (!externally_accessible(obj) && kj_str(spec, "externalTrafficPolicy")) {
		if (old && externally_accessible(old) &&
		    !strcmp(kj_str(old, "spec.externalTrafficPolicy") ?: "",
			    kj_str(spec, "externalTrafficPolicy")))
			json_object_del(spec, "externalTrafficPolicy"); /* dropped with the type */
		else
			kube_cause(
			    causes, "FieldValueInvalid", "spec.externalTrafficPolicy",
			    "Invalid value: \"%s\": may only be set for externally-accessible services",
			    kj_str(spec, "externalTrafficPolicy"));
	}
	if (externally_accessible(obj) && !json_object_get(spec, "externalTrafficPolicy"))
		json_object_set_new(spec, "externalTrafficPolicy", json_string("Cluster"));
	if (externally_accessible(obj) &&
	    strcmp(kj_str(spec, "externalTrafficPolicy") ?: "", "Cluster") &&
	    strcmp(kj_str(spec, "externalTrafficPolicy") ?: "", "Local"))
		kube_cause(causes, "FieldValueNotSupported", "spec.externalTrafficPolicy",
			   "Unsupported value: \"%s\": supported values: \"Cluster\", \"Local\"",
			   kj_str(spec, "externalTrafficPolicy") ?: "");
	health_check_node_port(r, obj, old, causes);
	if (!json_object_get(spec, "sessionAffinity"))
		json_object_set_new(spec, "sessionAffinity", json_string("None"));
	if (!old)
		json_object_set_new(obj, "status", json_pack("{s:{}}", "loadBalancer"));
	return 0;
}

/* ---- ConfigMap and Secret data ---- */
#define MAX_DATA_BYTES (1024 * 1024) /* core.MaxSecretSize, for ConfigMaps too */

/*
 * The length of base64 text once decoded, as encoding/json decodes a []byte (StdEncoding,
 * padding required, CR and LF ignored). -1 with *bad the offset of the first bad byte.
 */
static long base64_len(const char *s, size_t n, size_t *bad)
{
	size_t q = 0, pad = 0, out = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			if (q < 2) {
				*bad = i;
				return -1;
			}
			pad++;
			q++;
		} else if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				    (c >= '0' && c <= '9') || c == '+' || c == '/')) {
			*bad = i;
			return -1;
		} else {
			q++;
		}
		if (q == 4) {
			out += 3 - pad;
			q = 0;
			if (pad) {
				/* nothing but newlines may follow the padding */
				for (size_t j = i + 1; j < n; j++)
					if (s[j] != '\r' && s[j] != '\n') {
						*bad = j;
						return -1;
					}
				return (long)out;
			}
		}
	}
	if (q) {
		*bad = n;
		return -1;
	}
	return (long)out;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* validation.IsConfigMapKey */
static bool config_key(const char *k)
{
	size_t n = strlen(k);

	if (!n || n > 253 || !strcmp(k, ".") || !strcmp(k, "..") || !strncmp(k, "..", 2))
		return false;
	for (const char *p = k; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

static void check_keys(const json_t *map, const char *field, json_t *causes)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)map, key, v)
	{
		char f[320];
		if (config_key(key))
			continue;
		snprintf(f, sizeof(f), "%s[%s]", field, key);
		kube_cause(
		    causes, "FieldValueInvalid", f,
		    "Invalid value: \"%s\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
		    key);
	}
}

/* A map of strings, as the Go type decodes it: 400 otherwise. */
static int string_map(const json_t *map, const char *kind, const char *field, struct kube_err *e)
{
	const char *key;
	json_t *v;

	if (map && !json_is_object(map) && !json_is_null(map))
		return kube_errf(
		    e, 400, "BadRequest",
		    "%s in version \"v1\" cannot be handled as a %s: json: cannot unmarshal into Go struct field %s.%s of type map[string]",
		    kind, kind, kind, field);
	json_object_foreach((json_t *)map, key, v)
	{
		if (!json_is_string(v))
			return kube_errf(
			    e, 400, "BadRequest",
			    "%s in version \"v1\" cannot be handled as a %s: json: cannot unmarshal into Go struct field %s.%s of type string",
			    kind, kind, kind, field);
	}
	return 0;
}

/* Total decoded size of a map of base64 values; -1 with e filled (400) when one is bad. */
static long base64_total(const json_t *map, const char *kind, struct kube_err *e)
{
	const char *key;
	json_t *v;
	long total = 0;

	json_object_foreach((json_t *)map, key, v)
	{
		size_t bad = 0;
		long n = base64_len(json_string_value(v), json_string_length(v), &bad);
		if (n < 0) {
			kube_errf(
			    e, 400, "BadRequest",
			    "%s in version \"v1\" cannot be handled as a %s: illegal base64 data at input byte %zu",
			    kind, kind, bad);
			return -1;
		}
		total += n;
	}
	return total;
}

/*
 * ConfigMap (ValidateConfigMap): string data, base64 binaryData, valid keys present once,
 * data and binaryData together at most 1 MiB ("[]: Too long"). Secret: SetDefaults_Secret
 * (type Opaque), stringData written into data (it wins, as the v1 conversion does), and
 * ValidateSecret: keys, data at most 1 MiB ("data: Too long"). Both immutable once
 * immutable is true (ValidateConfigMapUpdate, ValidateSecretUpdate).
 */
static int data_admit(struct kube_res *r, json_t *obj, const json_t *old, json_t *causes,
		      struct kube_err *e)
{
	bool secret = !strcmp(r->def.resource, "secrets");
	const char *kind = r->def.kind, *key;
	json_t *data = json_object_get(obj, "data"), *v;
	long total = 0, n;

	if (string_map(data, kind, "data", e) < 0)
		return -EINVAL;
	if (secret) {
		json_t *sd = json_object_get(obj, "stringData");
		if (string_map(sd, kind, "stringData", e) < 0)
			return -EINVAL;
		if (!kj_str(obj, "type") || !kj_str(obj, "type")[0])
			json_object_set_new(obj, "type", json_string("Opaque"));
		if (json_object_size(sd)) {
			if (!json_is_object(data)) {
				data = json_object();
				json_object_set_new(obj, "data", data);
			}
			json_object_foreach(sd, key, v)
			{
				size_t len = json_string_length(v);
				char *b64 = malloc(base64_encoded_size(len));
				if (!b64)
					return kube_errf(e, 500, "InternalError", "out of memory");
				base64_encode(json_string_value(v), len, b64, 0);
				json_object_set_new(data, key, json_string(b64));
				free(b64);
			}
		}
		json_object_del(obj, "stringData");
		if (json_object_size(data) > 1) {
			/* the map as encoding/json writes it: keys sorted */
			const char **keys = malloc(json_object_size(data) * sizeof(*keys));
			size_t nk = 0;
			json_t *sorted = json_object();
			if (!keys)
				return kube_errf(e, 500, "InternalError", "out of memory");
			json_object_foreach(data, key, v) keys[nk++] = key;
			qsort(keys, nk, sizeof(*keys), cmp_str);
			for (size_t i = 0; i < nk; i++)
				json_object_set(sorted, keys[i], json_object_get(data, keys[i]));
			free(keys);
			json_object_set_new(obj, "data", sorted);
			data = sorted;
		}
		check_keys(data, "data", causes);
		n = base64_total(data, kind, e);
		if (n < 0)
			return -EINVAL;
		if (n > MAX_DATA_BYTES)
			kube_cause(causes, "FieldValueTooLong", "data",
				   "Too long: may not be more than %d bytes", MAX_DATA_BYTES);
	} else {
		json_t *bin = json_object_get(obj, "binaryData");
		if (string_map(bin, kind, "binaryData", e) < 0)
			return -EINVAL;
		check_keys(data, "data", causes);
		check_keys(bin, "binaryData", causes);
		json_object_foreach(data, key, v)
		{
			char f[320];
			total += (long)json_string_length(v);
			if (!json_object_get(bin, key))
				continue;
			snprintf(f, sizeof(f), "data[%s]", key);
			kube_cause(causes, "FieldValueInvalid", f,
				   "Invalid value: \"%s\": duplicate of key present in binaryData",
				   key);
		}
		n = base64_total(bin, kind, e);
		if (n < 0)
			return -EINVAL;
		if (total + n > MAX_DATA_BYTES)
			kube_cause(causes, "FieldValueTooLong", "[]",
				   "Too long: may not be more than %d bytes", MAX_DATA_BYTES);
	}
	if (old && json_is_true(json_object_get(old, "immutable"))) {
		if (!json_is_true(json_object_get(obj, "immutable")))
			kube_cause(causes, "FieldValueForbidden", "immutable",
				   "Forbidden: field is immutable when `immutable` is set");
		if (!json_equal(json_object_get(obj, "data") ?: json_object(),
				json_object_get(old, "data") ?: json_object()) ||
		    (!secret && !json_equal(json_object_get(obj, "binaryData") ?: json_object(),
					    json_object_get(old, "binaryData") ?: json_object())))
			kube_cause(causes, "FieldValueForbidden", secret ? "data" : "data",
				   "Forbidden: field is immutable when `immutable` is set");
	}
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
	} else if ((!strcmp(res, "configmaps") || !strcmp(res, "secrets")) && !r->def.group[0]) {
		if (data_admit(r, obj, NULL, causes, e) < 0) {
			json_decref(causes);
			return -EINVAL;
		}
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
	} else if ((!strcmp(res, "configmaps") || !strcmp(res, "secrets")) && !r->def.group[0]) {
		if (data_admit(r, obj, old, causes, e) < 0) {
			json_decref(causes);
			return -EINVAL;
		}
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
