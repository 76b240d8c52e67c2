/* SPDX-License-Identifier: Apache-2.0 */
/*
 * instances.reset, instances.stop and instances.start, with the status transitions GCE
 * documents (https://cloud.google.com/compute/docs/instances/instance-lifecycle):
 *
 *   start  TERMINATED -> PROVISIONING -> STAGING -> RUNNING ("After you create, restart, or
 *          resume a compute instance, Compute Engine starts allocating resources ... and sets
 *          its state to PROVISIONING"; STAGING: "You ... have requested to restart or resume
 *          the instance"); the Operation is DONE once the instance is RUNNING. Starting a
 *          RUNNING (or booting) instance changes nothing.
 *   stop   RUNNING -> STOPPING -> TERMINATED ("STOPPING ... is a temporary status and the
 *          instance will move to TERMINATED once the instance has stopped"). Stopping a
 *          TERMINATED instance changes nothing. A stopped instance keeps its internal IP and
 *          alias ranges (they stay in the ip index).
 *   reset  "a hard reset of the VM ... Resetting an instance keeps the instance in RUNNING
 *          state throughout the process" (https://cloud.google.com/compute/docs/instances/
 *          suspend-stop-reset-instances-overview): only a RUNNING instance can be reset
 *          ("You can repeatedly ... reset a running instance"); anything else is 400
 *          resourceNotReady. The guest reboots when the Operation completes: the Kubernetes
 *          side is told (emu_kube_instance_reset), so its kubelet starts again.
 *
 * Each is POST .../instances/NAME/{reset,stop,start} without a body (gcloud sends none, or
 * {}), answered with an Operation of that operationType.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "emu/compute/compute.h"

bool instance_lifecycle_verb(const char *verb)
{
	return verb && (!strcmp(verb, "reset") || !strcmp(verb, "stop") || !strcmp(verb, "start"));
}

static const char *zone_name(const char *scope)
{
	return strncmp(scope, "zones/", 6) == 0 ? scope + 6 : scope;
}

static void set_status(struct compute *c, struct item *it, const char *status)
{
	json_object_set_new(it->res, "status", json_string(status));
	emu_state_changed(c->emu);
	instances_notify(c, zone_name(it->scope), it->name, it->res);
}

static int not_ready(struct compute *c, struct item *it, struct api_error *e)
{
	return api_fail(e, 400, "resourceNotReady",
			"The resource 'projects/%s/%s/instances/%s' is not ready",
			c->emu->opt.project, it->scope, it->name);
}

/* PROVISIONING -> STAGING halfway to the start Operation's completion. */
struct staging {
	struct compute *c;
	char *scope, *name;
};

static void staging_timer(struct emu *emu, void *arg)
{
	struct staging *s = arg;
	struct item *it = coll_find(compute_coll(s->c, "instances"), s->scope, s->name);

	(void)emu;
	if (it && !it->pending && !strcmp(jstr(it->res, "status") ?: "", "PROVISIONING"))
		set_status(s->c, it, "STAGING");
	free(s->scope);
	free(s->name);
	free(s);
}

static void schedule_staging(struct compute *c, struct item *it)
{
	struct staging *s = calloc(1, sizeof(*s));

	if (!s)
		return;
	*s = (struct staging){.c = c, .scope = strdup(it->scope), .name = strdup(it->name)};
	if (!s->scope || !s->name ||
	    emu_timer_add(c->emu, c->emu->opt.operation_delay_ms / 2, staging_timer, s) < 0) {
		free(s->scope);
		free(s->name);
		free(s);
	}
}

int instance_lifecycle_method(struct call *k, struct item *it, struct api_error *e)
{
	struct compute *c = k->c;
	const char *verb = k->verb, *status = jstr(it->res, "status") ?: "";

	if (strcmp(k->req->method, "POST") != 0)
		return api_fail(e, 404, "notFound",
				"The requested URL was not found on this server.");
	if (!strcmp(verb, "reset")) {
		if (strcmp(status, "RUNNING") != 0)
			return not_ready(c, it, e);
	} else if (!strcmp(verb, "stop")) {
		if (!strcmp(status, "RUNNING") || !strcmp(status, "PROVISIONING") ||
		    !strcmp(status, "STAGING"))
			set_status(c, it, "STOPPING");
	} else if (!strcmp(status, "STOPPING")) {
		/* start while the guest is still shutting down */
		return not_ready(c, it, e);
	} else if (!strcmp(status, "TERMINATED")) {
		set_status(c, it, "PROVISIONING");
		schedule_staging(c, it);
	}
	return op_start(k, verb, it->scope, it->name, "instances",
			json_incref(json_object_get(it->res, "id")),
			json_pack("{s:s, s:s, s:s, s:s, s:s}", "op", "method", "method", verb,
				  "collection", "instances", "scope", it->scope, "name", it->name));
}

int instance_lifecycle_apply(struct compute *c, struct item *it, const char *method,
			     struct api_error *e)
{
	const char *status = jstr(it->res, "status") ?: "";

	if (!strcmp(method, "reset")) {
		/* Stopped since the request was accepted: nothing to reset. */
		if (strcmp(status, "RUNNING") != 0)
			return not_ready(c, it, e);
		log_info("instance %s/%s: reset (the guest reboots)", it->scope, it->name);
		emu_kube_instance_reset(c->emu, zone_name(it->scope), it->name, it->res);
		emu_dataplane_instance_reset(c->emu, zone_name(it->scope), it->name);
		return 0;
	}
	if (!strcmp(method, "stop")) {
		if (!strcmp(status, "STOPPING")) {
			json_object_set_new(it->res, "lastStopTimestamp", json_now());
			set_status(c, it, "TERMINATED");
		}
		return 0;
	}
	/* start: a stop that came in meanwhile wins (its own Operation ends it). */
	if (!strcmp(status, "PROVISIONING") || !strcmp(status, "STAGING")) {
		json_object_set_new(it->res, "lastStartTimestamp", json_now());
		set_status(c, it, "RUNNING");
	}
	return 0;
}
