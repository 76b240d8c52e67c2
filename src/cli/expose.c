/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp expose: points the cluster's ingress load balancer (the spec's ingress, made by
 * `up`) at a NodePort Service, the design note §3's manual step:
 *
 *   - every worker instance group's named port (the backend service's portName) carries the
 *     Service's node port: instanceGroups.setNamedPorts with the group's fingerprint;
 *   - the backend service's portName is that named port (patched with its fingerprint if not);
 *   - the ingress health check probes the node port (healthChecks.patch).
 *
 * A passthrough load balancer translates no ports: the node port must be one of the ports its
 * rules forward, else nothing is changed. Every write re-reads the resource first and carries
 * its fingerprint; a stale one (412) is read again and retried. --watch follows the Service
 * through a watch from the resourceVersion read (a 410 Gone lists again; a broken stream
 * reconnects with backoff) and does the same on every change of the node port.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cluster.h"
#include "cli/subcommands.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/parse.h"
#include "provision/model.h"

#define STALE_RETRIES  5
#define WATCH_TIMEOUT  60 /* seconds: the server ends each watch, we watch again */
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000

enum { OPT_SERVICE = OPT_CLUSTER_LAST, OPT_PORT, OPT_WATCH };

static const struct cli_option expose_options[] = {
    {.name = "file",
     .short_name = 'f',
     .code = 'f',
     .arg = "FILE",
     .help = "the cluster spec (docs/cluster-spec.md): its ingress, made by `talos-gcp up`",
     .complete = CLI_COMPLETE_FILE},
    {.name = "service",
     .code = OPT_SERVICE,
     .arg = "NAMESPACE/NAME",
     .help = "the Service (type NodePort)"},
    {.name = "port",
     .code = OPT_PORT,
     .arg = "PORT",
     .def = "its only one",
     .help = "which of the Service's ports (number or name)"},
    {.name = "watch", .code = OPT_WATCH, .help = "follow the Service and its node port"},
    {0},
};

const struct cli_command expose_command = {
    .name = "expose",
    .summary = "point the ingress load balancer at a NodePort Service (--watch)",
    .synopsis = "--service NAMESPACE/NAME -f FILE [--port PORT] [--watch] [options]",
    .description =
	"Points the cluster's ingress load balancer (ingress in FILE, made by `talos-gcp up`) at\n"
	"the node port of a NodePort Service: the worker instance groups' named port, the backend\n"
	"service's portName and the health check's port, each written with the resource's\n"
	"current fingerprint. With --watch it keeps following the Service (node port changes)\n"
	"until it is stopped (SIGINT, SIGTERM).\n",
    .options = expose_options,
    .formats = CLI_FORMATS("text", "json"),
    .flags = CLI_API,
    .exit_status = "0 the load balancer points at the Service, 2 error (bad input, a Service "
		   "that is missing or not NodePort, an API error): then nothing was changed by "
		   "the input.",
    .main = expose_main,
};

/* What the ingress load balancer is made of, from the spec's model (provision/model.c). */
struct ingress {
	bool passthrough;
	char port_name[64]; /* the groups' named port, the backend service's portName */
	char hc[224];       /* "global/healthChecks/NAME-ingress" */
	char backend_services[2][224];
	size_t nbackend_services;
	char groups[16][224]; /* "zones/Z/instanceGroups/NAME-workers-Z" */
	size_t ngroups;
	unsigned rule_ports[8]; /* passthrough: what the rules forward */
	size_t nrule_ports;
	unsigned target_port; /* the spec's ingress.targetPort */
};

struct expose {
	struct cluster_cmd c;
	struct session s;
	char ns[254], name[254];
	const char *port_arg;
	bool watch;
	bool json;
	struct ingress ing;
	unsigned synced; /* node port the load balancer points at, 0: not yet */
	char rv[64];
};

static volatile sig_atomic_t stop_requested, writing;

static void on_signal(int sig)
{
	(void)sig;
	/* Between writes nothing is half done: stop now; else once the write is over. */
	if (!writing)
		_exit(0);
	stop_requested = 1;
}

static int expose_option(void *arg, int opt, const char *value)
{
	struct expose *x = arg;
	const char *slash;

	switch (opt) {
	case OPT_SERVICE:
		slash = strchr(value, '/');
		if (!slash || slash == value || !slash[1] || strchr(slash + 1, '/') ||
		    (size_t)(slash - value) >= sizeof(x->ns) ||
		    strlen(slash + 1) >= sizeof(x->name)) {
			log_error("--service '%s': want NAMESPACE/NAME", value);
			return -EINVAL;
		}
		snprintf(x->ns, sizeof(x->ns), "%.*s", (int)(slash - value), value);
		snprintf(x->name, sizeof(x->name), "%s", slash + 1);
		return 1;
	case OPT_PORT:
		x->port_arg = value;
		return 1;
	case OPT_WATCH:
		x->watch = true;
		return 1;
	default:
		return 0;
	}
}

/* The ingress resources the spec's model names. */
static int ingress_of(const struct cluster_spec *s, const char *project, struct ingress *ing,
		      struct error *err)
{
	struct resource_set set;
	int ret;

	memset(ing, 0, sizeof(*ing));
	if (s->ingress.type == SPEC_INGRESS_NONE)
		return error_set(err, EINVAL, "%s: the spec has no ingress load balancer to point",
				 s->path);
	ret = model_desired(s, project, &set, err);
	if (ret < 0)
		return ret;
	ing->passthrough = s->ingress.type == SPEC_INGRESS_PASSTHROUGH;
	ing->target_port = s->ingress.target_port;
	for (size_t i = 0; i < s->ingress.nports && i < 8; i++)
		ing->rule_ports[ing->nrule_ports++] = s->ingress.ports[i];
	for (size_t i = 0; i < set.n; i++) {
		const struct resource *r = set.items[i];
		char want[128];

		snprintf(want, sizeof(want), "%s-workers-", s->name);
		if (r->kind == RK_INSTANCE_GROUP && !strncmp(r->name, want, strlen(want)) &&
		    ing->ngroups < 16) {
			snprintf(ing->groups[ing->ngroups++], sizeof(ing->groups[0]), "%s", r->key);
			snprintf(
			    ing->port_name, sizeof(ing->port_name), "%s",
			    json_string_value(json_object_get(
				json_array_get(json_object_get(r->body, "namedPorts"), 0), "name"))
				?: "");
		}
		snprintf(want, sizeof(want), "%s-ingress", s->name);
		if (r->kind == RK_HEALTH_CHECK && !strcmp(r->name, want))
			snprintf(ing->hc, sizeof(ing->hc), "%s", r->key);
		if (r->kind == RK_BACKEND_SERVICE && !strncmp(r->name, want, strlen(want)) &&
		    ing->nbackend_services < 2)
			snprintf(ing->backend_services[ing->nbackend_services++],
				 sizeof(ing->backend_services[0]), "%s", r->key);
	}
	rset_free(&set);
	if (!ing->ngroups || !ing->hc[0] || !ing->nbackend_services)
		return error_set(err, EINVAL, "%s: the spec's ingress has no worker groups",
				 s->path);
	return 0;
}

/* ---- the Service ---- */

/*
 * The node port of the chosen port of a NodePort Service. 0, or -ENOENT / -EINVAL with a
 * message for the operator.
 */
static int service_node_port(const struct expose *x, const json_t *svc, unsigned *node_port,
			     unsigned *port, struct error *err)
{
	const char *type = json_string_value(json_object_get(json_object_get(svc, "spec"), "type"));
	const json_t *ports = json_object_get(json_object_get(svc, "spec"), "ports"), *p,
		     *pick = NULL;
	size_t i;

	if (!type || strcmp(type, "NodePort") != 0)
		return error_set(err, EINVAL,
				 "service %s/%s is type %s, not NodePort: the ingress load "
				 "balancer reaches Services through a node port",
				 x->ns, x->name, type ? type : "ClusterIP");
	if (!x->port_arg && json_array_size(ports) != 1)
		return error_set(err, EINVAL,
				 "service %s/%s has %zu ports: choose one with --port (number or "
				 "name)",
				 x->ns, x->name, json_array_size(ports));
	json_array_foreach(ports, i, p)
	{
		char num[16];

		snprintf(num, sizeof(num), "%lld",
			 (long long)json_integer_value(json_object_get(p, "port")));
		if (!x->port_arg || !strcmp(x->port_arg, num) ||
		    !strcmp(x->port_arg, json_string_value(json_object_get(p, "name")) ?: "")) {
			pick = p;
			break;
		}
	}
	if (!pick)
		return error_set(err, EINVAL, "--port %s: service %s/%s has no such port",
				 x->port_arg, x->ns, x->name);
	*port = (unsigned)json_integer_value(json_object_get(pick, "port"));
	*node_port = (unsigned)json_integer_value(json_object_get(pick, "nodePort"));
	if (!*node_port)
		return error_set(err, EINVAL, "service %s/%s port %u has no node port yet", x->ns,
				 x->name, *port);
	return 0;
}

static int read_service(struct expose *x, json_t **out, struct error *err)
{
	char path[600];
	int ret;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services/%s", x->ns, x->name);
	ret = kube_get(x->s.kube, path, out, err);
	if (ret == -ENOENT)
		error_set(err, ENOENT, "service %s/%s not found", x->ns, x->name);
	return ret;
}

/* ---- the load balancer ---- */

static void change(json_t *changes, const char *resource, const char *field, json_int_t from,
		   json_int_t to)
{
	json_array_append_new(changes, json_pack("{s:s, s:s, s:I, s:I}", "resource", resource,
						 "field", field, "from", from, "to", to));
}

static int mutate_wait(struct expose *x, const char *method, const char *path, json_t *body,
		       struct error *err)
{
	struct gcp_operation op;
	int ret;

	writing = 1;
	ret = gcp_compute_mutate(x->s.compute, method, path, body, &op, err);
	if (ret == 0)
		ret = gcp_compute_wait(x->s.compute, &op, 0, err);
	writing = 0;
	json_decref(body);
	return ret;
}

/* setNamedPorts with the group's fingerprint: portName -> node port, the others kept. */
static int sync_group(struct expose *x, const char *key, unsigned node_port, json_t *changes,
		      struct error *err)
{
	char path[400];
	int ret = 0;

	snprintf(path, sizeof(path), "projects/%s/%s", x->s.project, key);
	for (int attempt = 0; attempt < STALE_RETRIES; attempt++) {
		json_t *g = NULL, *ports, *np;
		json_int_t from = -1;
		size_t i;

		ret = gcp_compute_get(x->s.compute, path, &g, err);
		if (ret < 0)
			return ret;
		ports = json_array();
		json_array_foreach(json_object_get(g, "namedPorts"), i, np)
		{
			if (!strcmp(json_string_value(json_object_get(np, "name")) ?: "",
				    x->ing.port_name))
				from = json_integer_value(json_object_get(np, "port"));
			else
				json_array_append(ports, np);
		}
		if (from == (json_int_t)node_port) {
			json_decref(ports);
			json_decref(g);
			return 0;
		}
		json_array_append_new(ports, json_pack("{s:s, s:i}", "name", x->ing.port_name,
						       "port", (int)node_port));
		{
			char verb[450];

			snprintf(verb, sizeof(verb), "%s/setNamedPorts", path);
			ret = mutate_wait(
			    x, "POST", verb,
			    json_pack("{s:o, s:s}", "namedPorts", ports, "fingerprint",
				      json_string_value(json_object_get(g, "fingerprint")) ?: ""),
			    err);
		}
		json_decref(g);
		if (ret == 0) {
			char field[96];

			snprintf(field, sizeof(field), "namedPorts[%s]", x->ing.port_name);
			change(changes, key, field, from < 0 ? 0 : from, node_port);
			return 0;
		}
		if (ret != -ESTALE)
			return ret;
		log_debug("%s: the fingerprint changed meanwhile: reading it again", key);
	}
	return ret;
}

/* The backend service's portName (passthrough backend services have none to set). */
static int sync_backend_service(struct expose *x, const char *key, json_t *changes,
				struct error *err)
{
	char path[400];
	int ret = 0;

	if (x->ing.passthrough)
		return 0;
	snprintf(path, sizeof(path), "projects/%s/%s", x->s.project, key);
	for (int attempt = 0; attempt < STALE_RETRIES; attempt++) {
		json_t *bs = NULL;
		const char *have;

		ret = gcp_compute_get(x->s.compute, path, &bs, err);
		if (ret < 0)
			return ret;
		have = json_string_value(json_object_get(bs, "portName"));
		if (have && !strcmp(have, x->ing.port_name)) {
			json_decref(bs);
			return 0;
		}
		ret = mutate_wait(
		    x, "PATCH", path,
		    json_pack("{s:s, s:s}", "portName", x->ing.port_name, "fingerprint",
			      json_string_value(json_object_get(bs, "fingerprint")) ?: ""),
		    err);
		json_decref(bs);
		if (ret == 0) {
			json_array_append_new(changes,
					      json_pack("{s:s, s:s, s:s}", "resource", key, "field",
							"portName", "to", x->ing.port_name));
			return 0;
		}
		if (ret != -ESTALE)
			return ret;
	}
	return ret;
}

/* The health check's port (TCP, HTTP or HTTPS check). */
static int sync_health_check(struct expose *x, unsigned node_port, json_t *changes,
			     struct error *err)
{
	static const char *const kinds[] = {"tcpHealthCheck", "httpHealthCheck", "httpsHealthCheck",
					    "http2HealthCheck", "sslHealthCheck"};
	char path[400];
	json_t *hc = NULL, *sub = NULL;
	const char *kind = NULL;
	json_int_t from;
	int ret;

	snprintf(path, sizeof(path), "projects/%s/%s", x->s.project, x->ing.hc);
	ret = gcp_compute_get(x->s.compute, path, &hc, err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && !kind; i++)
		if ((sub = json_object_get(hc, kinds[i])))
			kind = kinds[i];
	if (!kind) {
		json_decref(hc);
		return error_set(err, EINVAL, "%s: a health check without a port", x->ing.hc);
	}
	from = json_integer_value(json_object_get(sub, "port"));
	json_decref(hc);
	if (from == (json_int_t)node_port)
		return 0;
	ret = mutate_wait(x, "PATCH", path, json_pack("{s:{s:i}}", kind, "port", (int)node_port),
			  err);
	if (ret == 0)
		change(changes, x->ing.hc, "port", from, node_port);
	return ret;
}

/* Everything the load balancer needs to reach node_port. */
static int sync_lb(struct expose *x, unsigned node_port, json_t *changes, struct error *err)
{
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < x->ing.ngroups; i++)
		ret = sync_group(x, x->ing.groups[i], node_port, changes, err);
	for (size_t i = 0; ret == 0 && i < x->ing.nbackend_services; i++)
		ret = sync_backend_service(x, x->ing.backend_services[i], changes, err);
	if (ret == 0)
		ret = sync_health_check(x, node_port, changes, err);
	return ret;
}

static void report(const struct expose *x, unsigned port, unsigned node_port, const json_t *changes)
{
	const json_t *ch;
	size_t i;

	if (x->json) {
		json_t *doc =
		    json_pack("{s:i, s:s, s:i, s:i, s:O, s:b}", "version", 1, "service", "", "port",
			      (int)port, "nodePort", (int)node_port, "changes", changes, "changed",
			      json_array_size(changes) > 0);
		char svc[520], *text;

		snprintf(svc, sizeof(svc), "%s/%s", x->ns, x->name);
		json_object_set_new(doc, "service", json_string(svc));
		text = json_dumps(doc, JSON_COMPACT);
		printf("%s\n", text ? text : "{}");
		free(text);
		json_decref(doc);
	} else {
		printf("service %s/%s port %u: node port %u\n", x->ns, x->name, port, node_port);
		json_array_foreach(changes, i, ch)
		{
			if (json_object_get(ch, "from"))
				printf("  %s %s: %lld -> %lld\n",
				       json_string_value(json_object_get(ch, "resource")),
				       json_string_value(json_object_get(ch, "field")),
				       (long long)json_integer_value(json_object_get(ch, "from")),
				       (long long)json_integer_value(json_object_get(ch, "to")));
			else
				printf("  %s %s: %s\n",
				       json_string_value(json_object_get(ch, "resource")),
				       json_string_value(json_object_get(ch, "field")),
				       json_string_value(json_object_get(ch, "to")));
		}
		if (!json_array_size(changes))
			printf("  the ingress load balancer points at it already\n");
	}
	fflush(stdout);
}

/*
 * Reads what the Service says and makes the load balancer follow. Input errors (not
 * NodePort, no such port, a passthrough that cannot reach the port) are -EINVAL before any
 * change.
 */
static int follow(struct expose *x, const json_t *svc, struct error *err)
{
	unsigned node_port = 0, port = 0;
	json_t *changes;
	int ret = service_node_port(x, svc, &node_port, &port, err);

	if (ret < 0)
		return ret;
	if (x->ing.passthrough) {
		bool forwarded = false;

		for (size_t i = 0; i < x->ing.nrule_ports; i++)
			forwarded |= x->ing.rule_ports[i] == node_port;
		if (!forwarded)
			return error_set(
			    err, EINVAL,
			    "%s: the passthrough ingress forwards its ports as they are "
			    "and node port %u is not one of them (ingress.ports); use "
			    "ingress type tcp-proxy, or add the port",
			    x->c.spec->path, node_port);
	}
	if (x->synced == node_port)
		return 0;
	changes = json_array();
	ret = sync_lb(x, node_port, changes, err);
	if (ret == 0) {
		x->synced = node_port;
		report(x, port, node_port, changes);
		if (!x->ing.passthrough && x->ing.target_port != node_port) {
			struct error note = {0};

			spec_error(x->c.spec, "ingress.targetPort", &note, EINVAL,
				   "%u, but the Service's node port is %u: `talos-gcp up` would "
				   "point the load balancer back at %u",
				   x->ing.target_port, node_port, x->ing.target_port);
			log_warn("%s", note.msg);
		}
	}
	json_decref(changes);
	return ret;
}

/* ---- --watch ---- */

struct watch_ctx {
	struct expose *x;
	bool failed; /* a sync failed: try again */
};

static int on_event(void *arg, const char *type, json_t *obj)
{
	struct watch_ctx *w = arg;
	struct expose *x = w->x;
	const char *rv =
	    json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
	struct error err = {0};

	if (rv)
		snprintf(x->rv, sizeof(x->rv), "%s", rv);
	if (!strcmp(type, "DELETED")) {
		log_warn("service %s/%s was deleted: waiting for it to come back", x->ns, x->name);
		x->synced = 0;
		return 0;
	}
	if (strcmp(type, "ADDED") != 0 && strcmp(type, "MODIFIED") != 0)
		return stop_requested ? 1 : 0;
	if (follow(x, obj, &err) < 0) {
		log_error("%s", err.msg);
		w->failed = err.code != EINVAL; /* bad input waits for the next change */
	} else {
		w->failed = false;
	}
	return stop_requested ? 1 : 0;
}

static int ignore_item(void *arg, json_t *item)
{
	(void)arg;
	(void)item;
	return 0;
}

/* GET, then follow: where a watch starts again (after a 410, or a failed sync). */
static int relist(struct expose *x, struct watch_ctx *w, const char *fs)
{
	struct error err = {0};
	json_t *svc = NULL;
	int ret = read_service(x, &svc, &err);

	if (ret == 0) {
		const char *rv = json_string_value(
		    json_object_get(json_object_get(svc, "metadata"), "resourceVersion"));

		snprintf(x->rv, sizeof(x->rv), "%s", rv ? rv : "");
		ret = follow(x, svc, &err);
		json_decref(svc);
	} else if (ret == -ENOENT) {
		/* Not there (yet): watch for it from the list's version. */
		struct kube_list_options lo = {.field_selector = fs};
		char path[400];

		log_warn("%s: waiting for it", err.msg);
		x->synced = 0;
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services", x->ns);
		ret =
		    kube_list(x->s.kube, path, &lo, ignore_item, NULL, x->rv, sizeof(x->rv), &err);
		if (ret == 0)
			return 0;
	}
	if (ret < 0) {
		log_error("%s", err.msg);
		w->failed = err.code != EINVAL;
		return err.code == EINVAL ? 0 : ret;
	}
	w->failed = false;
	return 0;
}

static int watch_loop(struct expose *x)
{
	struct watch_ctx w = {.x = x};
	uint64_t backoff = BACKOFF_MIN_MS;
	char path[400], fs[300];
	bool list = !x->rv[0];

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services", x->ns);
	snprintf(fs, sizeof(fs), "metadata.name=%s", x->name);
	while (!stop_requested) {
		struct kube_watch_options wo = {.field_selector = fs,
						.timeout_seconds = WATCH_TIMEOUT,
						.allow_bookmarks = true};
		struct error err = {0};
		int ret;

		if (list || w.failed) {
			if (relist(x, &w, fs) < 0 || w.failed) {
				sleep_ms(backoff);
				backoff =
				    backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				list = true;
				continue;
			}
			list = false;
		}
		wo.resource_version = x->rv[0] ? x->rv : NULL;
		ret = kube_watch(x->s.kube, path, &wo, on_event, &w, &err);
		if (ret == 0 || ret == 1) {
			backoff = BACKOFF_MIN_MS; /* the server ended the stream: watch on */
			continue;
		}
		if (ret == -EKEYEXPIRED) {
			log_info("watch: resourceVersion %s is too old: listing again", x->rv);
			list = true;
			continue;
		}
		log_warn("watch: %s: reconnecting in %llu ms", err.msg,
			 (unsigned long long)backoff);
		sleep_ms(backoff);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	return 0;
}

int expose_main(int argc, char **argv)
{
	struct expose *x = calloc(1, sizeof(*x));
	struct error err = {0};
	json_t *svc = NULL;
	int ret;

	if (!x) {
		log_error("out of memory");
		return 2;
	}
	ret = cluster_cmd_args(&x->c, &expose_command, argc, argv, expose_option, x);
	if (ret) {
		free(x);
		return ret > 0 ? 0 : 2;
	}
	ret = 2;
	x->json = x->c.api.output && !strcmp(x->c.api.output, "json");
	if (!x->ns[0]) {
		log_error("--service NAMESPACE/NAME is required (see --help)");
		goto cleanup;
	}
	if (!x->c.spec_path) {
		log_error("-f FILE: the cluster spec is required (see --help)");
		goto cleanup;
	}
	if (spec_load(x->c.spec_path, SPEC_NO_FILES, &x->c.spec, &err) < 0)
		goto fail;
	if (x->c.spec->project && x->c.api.project &&
	    strcmp(x->c.spec->project, x->c.api.project) != 0) {
		log_error("--project %s: the spec %s says project %s", x->c.api.project,
			  x->c.spec_path, x->c.spec->project);
		goto cleanup;
	}
	if (x->c.spec->project)
		x->c.api.project = x->c.spec->project;
	if (session_open(&x->s, &x->c.api, SESSION_GCP | SESSION_KUBE, &err) < 0 ||
	    ingress_of(x->c.spec, x->s.project, &x->ing, &err) < 0)
		goto fail;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (x->watch) {
		/* The first state must be good: a wrong Service is the caller's to fix. */
		if (read_service(x, &svc, &err) < 0 || follow(x, svc, &err) < 0)
			goto fail;
		snprintf(x->rv, sizeof(x->rv), "%s",
			 json_string_value(
			     json_object_get(json_object_get(svc, "metadata"), "resourceVersion"))
			     ?: "");
		ret = watch_loop(x);
		goto cleanup;
	}
	if (read_service(x, &svc, &err) < 0 || follow(x, svc, &err) < 0)
		goto fail;
	ret = 0;
	goto cleanup;
fail:
	log_error("%s", err.msg);
	ret = 2;
cleanup:
	json_decref(svc);
	session_log_stats(&x->s);
	session_close(&x->s);
	spec_free(x->c.spec);
	free(x);
	return ret;
}
