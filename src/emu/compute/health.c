/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backendServices.getHealth (POST .../backendServices/NAME/getHealth {"group": URL}):
 * "Gets the most recent health check results for this BackendService"
 * (https://cloud.google.com/compute/docs/reference/rest/v1/backendServices/getHealth), one
 * HealthStatus per instance of the group: healthState HEALTHY or UNHEALTHY, instance,
 * ipAddress (nic0), port, and for an internal passthrough load balancer the forwarding rule.
 *
 * With --dataplane the answer is what its probes saw (emu_dataplane_health); without one no
 * packets are sent and health is a model:
 *   - The port probed is the backend service's first health check's: its port, else its
 *     portName or (portSpecification USE_SERVING_PORT) the backend service's portName looked
 *     up in the group's named ports, else the protocol's default (80 for TCP and HTTP, 443
 *     for SSL, HTTPS and HTTP2), as documented for health checks
 *     (https://cloud.google.com/load-balancing/docs/health-check-concepts#category_and_protocol).
 *   - An instance that is not RUNNING is UNHEALTHY.
 *   - Talos' apid (50000) and trustd (50001) answer while a Talos instance runs, whatever
 *     Kubernetes does: the origin's control-plane health check on 50000 passes while the API
 *     server is down, and this model shows it.
 *   - Every other port is Kubernetes' business: emu_kube_backend_healthy() (kube side) says
 *     HEALTHY on 6443 while the instance's Node is a Ready control plane, and on a port that a
 *     NodePort or LoadBalancer Service exposes while the Node is Ready.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"

static unsigned named_port(const struct item *group, const char *name)
{
	json_t *np;
	size_t i;

	json_array_foreach(json_object_get(group->res, "namedPorts"), i, np)
	{
		if (name && strcmp(jstr(np, "name") ?: "", name) == 0)
			return (unsigned)json_integer_value(json_object_get(np, "port"));
	}
	return 0;
}

/* The port a backend service's health check probes on group's instances; 0: none. */
static unsigned probe_port(struct compute *c, const struct item *bs, const struct item *group)
{
	static const struct {
		const char *type, *field;
		unsigned dflt;
	} types[] = {{"TCP", "tcpHealthCheck", 80},      {"SSL", "sslHealthCheck", 443},
		     {"HTTP", "httpHealthCheck", 80},    {"HTTPS", "httpsHealthCheck", 443},
		     {"HTTP2", "http2HealthCheck", 443}, {"GRPC", "grpcHealthCheck", 0}};
	json_t *hcs = json_object_get(bs->res, "healthChecks");
	struct item *hc = compute_ref_item(c, json_string_value(json_array_get(hcs, 0)),
					   "healthChecks", "global");
	const char *type, *spec;
	json_t *sub = NULL;
	unsigned dflt = 0;

	if (!hc)
		return 0;
	type = jstr(hc->res, "type") ?: "";
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(types[i].type, type) == 0) {
			sub = json_object_get(hc->res, types[i].field);
			dflt = types[i].dflt;
		}
	spec = jstr(sub, "portSpecification") ?: "";
	if (strcmp(spec, "USE_SERVING_PORT") == 0)
		return jstr(bs->res, "portName")
			   ? named_port(group, jstr(bs->res, "portName"))
			   : (unsigned)json_integer_value(json_object_get(bs->res, "port"));
	if (json_integer_value(json_object_get(sub, "port")) > 0)
		return (unsigned)json_integer_value(json_object_get(sub, "port"));
	if (jstr(sub, "portName"))
		return named_port(group, jstr(sub, "portName"));
	return dflt;
}

static bool is_backend(struct compute *c, const struct item *bs, const struct item *group)
{
	json_t *b;
	size_t i;

	json_array_foreach(json_object_get(bs->res, "backends"), i, b)
	{
		if (strcmp(compute_rel(c, jstr(b, "group")),
			   compute_rel(c, jstr(group->res, "selfLink"))) == 0)
			return true;
	}
	return false;
}

/* The forwarding rule that sends to this backend service, if any. */
static struct item *rule_of(struct compute *c, const struct item *bs)
{
	struct coll *frs = compute_coll(c, "forwardingRules");
	const char *self = jstr(bs->res, "selfLink") ?: "";

	for (size_t i = 0; i < frs->len; i++)
		if (!frs->items[i]->pending &&
		    strcmp(jstr(frs->items[i]->res, "backendService") ?: "", self) == 0)
			return frs->items[i];
	return NULL;
}

static bool instance_healthy(struct compute *c, const struct item *inst, unsigned port)
{
	const char *zone = inst->scope + strlen("zones/");
	json_t *md = json_object_get(inst->res, "metadata"), *kv;
	bool talos = false;
	size_t i;

	if (strcmp(jstr(inst->res, "status") ?: "", "RUNNING") != 0 || !port)
		return false;
	json_array_foreach(json_object_get(md, "items"), i,
			   kv) if (strcmp(jstr(kv, "key") ?: "", "user-data") == 0) talos = true;
	if (talos && (port == 50000 || port == 50001))
		return true;
	return emu_kube_backend_healthy(c->emu, zone, inst->name, port);
}

int backend_service_get_health(struct call *k, struct item *bs, struct api_error *e)
{
	struct compute *c = k->c;
	struct item *group, *rule;
	json_t *statuses, *url, *doc;
	char err[512];
	unsigned port;
	size_t i;

	if (!k->body)
		return api_fail(e, 400, "required", "Required field 'resource' not specified");
	if (sch_check(sch_find("ResourceGroupReference"), k->body, "resource", err, sizeof(err)) <
	    0)
		return api_fail(e, 400, "invalid", "%s", err);
	if (!jstr(k->body, "group"))
		return api_fail(e, 400, "required",
				"Required field 'resource.group' not specified");
	group = compute_ref_item(c, jstr(k->body, "group"), "instanceGroups", NULL);
	if (!group)
		return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
				     "The resource '%s' was not found", jstr(k->body, "group"));
	if (!is_backend(c, bs, group))
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.group': '%s'. It is not a "
				"backend of backend service '%s'.",
				jstr(k->body, "group"), bs->name);
	port = probe_port(c, bs, group);
	rule = rule_of(c, bs);
	statuses = json_array();
	json_array_foreach(instance_group_members(c, group, false), i, url)
	{
		struct item *inst =
		    compute_ref_item(c, json_string_value(url), "instances", group->scope);
		json_t *nic, *st;
		bool healthy;

		if (!inst)
			continue;
		/* With --dataplane, what its probes saw; else the model. */
		if (emu_dataplane_health(c->emu, jstr(bs->res, "selfLink"),
					 jstr(inst->res, "selfLink"), &healthy) != 1)
			healthy = instance_healthy(c, inst, port);
		nic = json_array_get(json_object_get(inst->res, "networkInterfaces"), 0);
		st = json_pack("{s:s, s:O, s:s, s:i}", "healthState",
			       healthy ? "HEALTHY" : "UNHEALTHY", "instance",
			       json_object_get(inst->res, "selfLink"), "ipAddress",
			       jstr(nic, "networkIP") ?: "", "port", (int)port);
		if (st && rule) {
			json_object_set(st, "forwardingRule",
					json_object_get(rule->res, "selfLink"));
			json_object_set(st, "forwardingRuleIp",
					json_object_get(rule->res, "IPAddress"));
		}
		json_array_append_new(statuses, st);
	}
	doc = json_pack("{s:s}", "kind", "compute#backendServiceGroupHealth");
	if (doc && json_array_size(statuses))
		json_object_set(doc, "healthStatus", statuses);
	json_decref(statuses);
	return compute_reply(k->req, 200, doc);
}
