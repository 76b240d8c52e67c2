/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --dataplane: the module's entry points and the reconcile.
 *
 * Level-triggered, as a controller: any change of the Compute or Kubernetes state schedules
 * one reconcile on the next loop turn (a burst of changes costs one), which reads the whole
 * desired state (model.c) and moves the namespaces to it: instances that left the network
 * (deleted, stopped, rebooted) are removed, new ones are made in one batch, the VPC's routes,
 * rules and firewall follow. Health probes change routes on their own schedule (health.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/str.h"
#include "emu/dataplane/dataplane.h"

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int inst_key_cmp(const void *a, const void *b)
{
	return strcmp((*(struct dp_inst *const *)a)->key, (*(struct dp_inst *const *)b)->key);
}

static void inst_free(struct dp_inst *in)
{
	if (!in)
		return;
	free(in->key);
	free(in->name);
	free(in->zone);
	free(in->url);
	free(in->boot);
	free(in->kube_proxy);
	free(in);
}

/* Takes the instance off the network: its servers, its processes, its namespace. */
static void inst_teardown(struct emu_dataplane *dp, struct dp_inst *in)
{
	dp_apiserver_stop(dp, in);
	dp_proc_stop(in->kubeprism);
	in->kubeprism = NULL;
	dp_inst_destroy(dp, in);
	inst_free(in);
}

static struct dp_inst *inst_new(const struct dp_want_inst *w)
{
	struct dp_inst *in = calloc(1, sizeof(*in));

	if (!in)
		return NULL;
	in->nsfd = -1;
	in->key = strdup(w->key);
	in->name = strdup(w->name);
	in->zone = strdup(w->zone);
	in->url = strdup(w->url);
	in->boot = strdup(w->boot);
	in->net = w->net;
	in->ip = w->ip;
	in->gw = w->gw;
	in->pods = w->pods;
	in->talos = w->talos;
	in->control_plane = w->control_plane;
	if (!in->key || !in->name || !in->zone || !in->url || !in->boot) {
		inst_free(in);
		return NULL;
	}
	return in;
}

/* Has the instance left the network as we built it (deleted, stopped, rebooted, moved)? */
static bool inst_gone(const struct dp_inst *in, const struct dp_want_inst *w)
{
	return !w || w->ip != in->ip || w->gw != in->gw || w->net != in->net ||
	       strcmp(w->boot, in->boot) != 0 || in->nsfd < 0 || in->rebooting;
}

static void reconcile(struct emu_dataplane *dp)
{
	struct dp_model m;
	struct dp_inst **fresh = NULL;
	size_t nfresh = 0, j = 0;
	uint64_t t0 = now_us(), t1, t2, t3;
	int ret;

	ret = dp_model_build(dp, &m);
	if (ret < 0) {
		log_error("dataplane: cannot read the state: %s", strerror(-ret));
		return;
	}
	/* Instances that left. */
	for (size_t i = 0; i < dp->ninsts; i++) {
		struct dp_inst *in = dp->insts[i];

		if (inst_gone(in, dp_model_inst(&m, in->key))) {
			log_debug("dataplane: %s leaves the network", in->key);
			inst_teardown(dp, in);
		} else {
			dp->insts[j++] = in;
		}
	}
	dp->ninsts = j;
	/* New ones, in one batch. */
	fresh = calloc(m.ninsts ? m.ninsts : 1, sizeof(*fresh));
	if (!fresh)
		goto cleanup;
	for (size_t i = 0; i < m.ninsts; i++) {
		struct dp_inst *in;

		if (dp_inst_find(dp, m.insts[i].key))
			continue;
		in = inst_new(&m.insts[i]);
		if (in)
			fresh[nfresh++] = in;
	}
	if (nfresh) {
		if (dp->ninsts + nfresh > dp->cap) {
			size_t ncap = dp->cap ? dp->cap : 64;
			struct dp_inst **n;

			while (ncap < dp->ninsts + nfresh)
				ncap *= 2;
			n = realloc(dp->insts, ncap * sizeof(*n));
			if (!n)
				goto cleanup;
			dp->insts = n;
			dp->cap = ncap;
		}
		dp_insts_create(dp, fresh, nfresh);
		for (size_t i = 0; i < nfresh; i++)
			dp->insts[dp->ninsts++] = fresh[i];
		nfresh = 0;
		qsort(dp->insts, dp->ninsts, sizeof(*dp->insts), inst_key_cmp);
	}
	/* What changes in place: the Node's podCIDR, the role. */
	for (size_t i = 0; i < dp->ninsts; i++) {
		struct dp_inst *in = dp->insts[i];
		const struct dp_want_inst *w = dp_model_inst(&m, in->key);

		if (!w || in->nsfd < 0)
			continue;
		if (dp_inst_set_pods(dp, in, w->pods) < 0)
			log_warn("dataplane: %s: cannot set the pods' range", in->key);
		in->control_plane = w->control_plane;
	}
	t1 = now_us();
	dp_health_sync(dp, &m);
	dp_routes_sync(dp, &m);
	t2 = now_us();
	dp_firewall_sync(dp, &m);
	t3 = now_us();
	dp_apiservers_sync(dp);
	dp_kubeprism_sync(dp);
	dp_kubeproxy_sync(dp);
	dp_proxies_sync(dp, &m);
	dp_model_free(&dp->model);
	dp->model = m;
	memset(&m, 0, sizeof(m));
	dp->reconciles++;
	dp->last_reconcile_end_us = now_us();
	dp->last_reconcile_us = dp->last_reconcile_end_us - t0;
	log_debug("dataplane: reconciled %zu instances in %.1f ms (namespaces %.1f, routes "
		  "%.1f, nftables %.1f)",
		  dp->ninsts, (double)dp->last_reconcile_us / 1000.0, (double)(t1 - t0) / 1000.0,
		  (double)(t2 - t1) / 1000.0, (double)(t3 - t2) / 1000.0);
cleanup:
	for (size_t i = 0; i < nfresh; i++)
		inst_free(fresh[i]);
	free(fresh);
	dp_model_free(&m);
}

static void reconcile_timer(struct emu *emu, void *arg)
{
	struct emu_dataplane *dp = arg;

	(void)emu;
	dp->timer = 0;
	reconcile(dp);
}

void emu_dataplane_changed(struct emu *emu)
{
	struct emu_dataplane *dp = emu->dataplane;
	long t;

	uint64_t now, gap, delay = 0;

	if (!dp || dp->timer || emu->stopping)
		return;
	/*
	 * On the next loop turn when idle; under a stream of changes (an instance per request)
	 * the loop stays free at least as long as the last reconcile took, so each one takes
	 * in what came meanwhile (100 instances in a handful of reconciles, not 100).
	 */
	now = now_us();
	gap = now - dp->last_reconcile_end_us;
	if (dp->reconciles && gap < dp->last_reconcile_us)
		delay = (dp->last_reconcile_us - gap + 999) / 1000;
	if (delay > 100)
		delay = 100;
	t = emu_timer_add(emu, delay, reconcile_timer, dp);
	if (t > 0)
		dp->timer = t;
}

void emu_dataplane_instance_reset(struct emu *emu, const char *zone, const char *name)
{
	struct emu_dataplane *dp = emu->dataplane;
	char *key = dp && zone && name ? str_printf("zones/%s/%s", zone, name) : NULL;
	struct dp_inst *in = key ? dp_inst_find(dp, key) : NULL;

	free(key);
	if (!in)
		return;
	log_info("dataplane: %s reboots (instances.reset)", in->ns);
	in->rebooting = true;
	emu_dataplane_changed(emu);
}

int emu_dataplane_health(struct emu *emu, const char *service_url, const char *instance_url,
			 bool *healthy)
{
	int s = emu->dataplane && service_url && instance_url
		    ? dp_health_state(emu->dataplane, service_url, instance_url)
		    : -1;

	if (s < 0)
		return 0;
	*healthy = s == 1;
	return 1;
}

/* Removes what the data plane made: instances, then the VPC and the internet. */
static void teardown(struct emu_dataplane *dp)
{
	for (size_t i = 0; i < dp->ninsts; i++)
		inst_teardown(dp, dp->insts[i]);
	dp->ninsts = 0;
	dp_proc_stop(dp->proxy);
	dp->proxy = NULL;
	dp_health_stop(dp);
	dp_firewall_stop(dp);
	dp_fabric_stop(dp);
}

static void dp_free(struct emu_dataplane *dp)
{
	if (!dp)
		return;
	for (size_t i = 0; i < dp->nroutes; i++)
		free(dp->routes[i].nh);
	free(dp->routes);
	free(dp->iprules);
	free(dp->lo);
	free(dp->insts);
	free(dp->nft_text);
	json_decref(dp->net_ids);
	json_decref(dp->rule_ids);
	json_decref(dp->warned);
	dp_model_free(&dp->model);
	free(dp);
}

/* The files of our child processes (configurations, logs): only ours live there. */
static void rundir_clear(const char *dir, bool remove)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d) {
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	if (remove)
		rmdir(dir);
}

static bool valid_prefix(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > DP_PREFIX_MAX || p[0] < 'a' || p[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')))
			return false;
	return true;
}

int emu_dataplane_start(struct emu *emu)
{
	const char *prefix = emu->opt.dataplane_prefix ? emu->opt.dataplane_prefix : "tgemu";
	struct emu_dataplane *dp;
	struct rlimit rl;
	int ret, left;

	if (!emu->opt.dataplane)
		return 0;
	if (!valid_prefix(prefix)) {
		log_error(
		    "--dataplane-prefix '%s': want 1-%d lowercase letters and digits, starting "
		    "with a letter",
		    prefix, DP_PREFIX_MAX);
		return -EINVAL;
	}
	if (geteuid() != 0) {
		log_error("--dataplane: needs root (network namespaces: CAP_SYS_ADMIN and "
			  "CAP_NET_ADMIN)");
		return -EPERM;
	}
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp->emu = emu;
	dp->vpc_fd = dp->inet_fd = -1;
	snprintf(dp->prefix, sizeof(dp->prefix), "%s", prefix);
	snprintf(dp->vpc_ns, sizeof(dp->vpc_ns), "%s-vpc", prefix);
	snprintf(dp->inet_ns, sizeof(dp->inet_ns), "%s-internet", prefix);
	snprintf(dp->rundir, sizeof(dp->rundir), "/run/talos-gcp-emu/%s", prefix);
	dp->net_ids = json_object();
	dp->rule_ids = json_object();
	dp->warned = json_object();
	if (!dp->net_ids || !dp->rule_ids || !dp->warned) {
		dp_free(dp);
		return -ENOMEM;
	}
	/* A namespace per instance holds descriptors (namespace, sockets): room for many. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	ret = dp_netns_init();
	if (ret < 0) {
		log_error("--dataplane: cannot use /run/netns: %s", strerror(-ret));
		dp_free(dp);
		return ret;
	}
	left = dp_netns_cleanup(prefix);
	if (left > 0)
		log_info("dataplane: removed %d namespaces %s-* an earlier run left", left, prefix);
	mkdir("/run/talos-gcp-emu", 0700);
	mkdir(dp->rundir, 0700);
	rundir_clear(dp->rundir, false);
	ret = dp_fabric_start(dp);
	if (ret == 0)
		ret = dp_firewall_start(dp);
	if (ret == 0)
		ret = dp_health_start(dp);
	if (ret < 0) {
		teardown(dp);
		dp_free(dp);
		return ret;
	}
	emu->dataplane = dp;
	reconcile(dp);
	log_info("dataplane: namespaces %s-vpc, %s-internet and %s-INSTANCE", prefix, prefix,
		 prefix);
	return 0;
}

void emu_dataplane_stop(struct emu *emu)
{
	struct emu_dataplane *dp = emu->dataplane;

	if (!dp)
		return;
	if (dp->timer)
		emu_timer_cancel(emu, dp->timer);
	teardown(dp);
	rundir_clear(dp->rundir, true);
	emu->dataplane = NULL;
	dp_free(dp);
}

/* ---- /_emu/dataplane ---- */

static json_t *describe(struct emu_dataplane *dp)
{
	json_t *insts = json_array();
	char a[16], b[16];

	for (size_t i = 0; i < dp->ninsts; i++) {
		struct dp_inst *in = dp->insts[i];
		char pods[24] = "";

		if (in->nsfd < 0)
			continue;
		if (in->pods.plen)
			snprintf(pods, sizeof(pods), "%s/%u", dp_ip_str(in->pods.lo, a),
				 in->pods.plen);
		json_array_append_new(
		    insts, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s*, s:b, s:b, s:b}", "name",
				     in->name, "zone", in->zone, "namespace", in->ns, "ip",
				     dp_ip_str(in->ip, a), "gateway", dp_ip_str(in->gw, b), "veth",
				     in->ifname, "podCIDR", pods[0] ? pods : NULL, "controlPlane",
				     in->control_plane, "apiServer", in->api != NULL, "kubePrism",
				     in->kubeprism != NULL));
	}
	return json_pack("{s:s, s:{s:s, s:s}, s:s, s:o, s:I, s:I, s:f, s:b}", "prefix", dp->prefix,
			 "namespaces", "vpc", dp->vpc_ns, "internet", dp->inet_ns, "internetClient",
			 dp_ip_str(DP_INET_CLIENT, a), "instances", insts, "materialised",
			 (json_int_t)dp->materialised, "reconciles", (json_int_t)dp->reconciles,
			 "lastReconcileMs", (double)dp->last_reconcile_us / 1000.0, "pending",
			 dp->timer != 0);
}

/* POST /_emu/dataplane/apiserver {"instance": NAME[, "zone": Z], "running": BOOL} */
static int apiserver_post(struct emu_request *req, struct emu_dataplane *dp)
{
	json_t *body = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
	const char *name = json_string_value(json_object_get(body, "instance"));
	const char *zone = json_string_value(json_object_get(body, "zone"));
	json_t *running = json_object_get(body, "running");
	struct dp_inst *found = NULL;
	int ret;

	for (size_t i = 0; name && i < dp->ninsts; i++)
		if (!strcmp(dp->insts[i]->name, name) &&
		    (!zone || !strcmp(dp->insts[i]->zone, zone)))
			found = dp->insts[i];
	if (!name || !json_is_boolean(running)) {
		ret =
		    emu_reply_json(req, 400,
				   json_pack("{s:{s:i, s:s}}", "error", "code", 400, "message",
					     "want {\"instance\": NAME, \"running\": true|false}"));
	} else if (!found || !found->talos || !found->control_plane) {
		ret = emu_reply_json(
		    req, 404,
		    json_pack("{s:{s:i, s:s}}", "error", "code", 404, "message",
			      "no control-plane node of that name on the data plane"));
	} else {
		found->api_down = !json_is_true(running);
		dp_apiservers_sync(dp);
		log_info("dataplane: %s: API server %s", found->ns,
			 found->api_down ? "stopped" : "started");
		ret = emu_reply_json(req, 200,
				     json_pack("{s:s, s:b}", "instance", found->name, "running",
					       found->api != NULL));
	}
	json_decref(body);
	return ret;
}

int emu_dataplane_control(struct emu_request *req)
{
	struct emu_dataplane *dp = req->emu->dataplane;

	if (!dp)
		return emu_reply_json(req, 404,
				      json_pack("{s:{s:i, s:s}}", "error", "code", 404, "message",
						"the emulator runs without --dataplane"));
	/* What a test observes is in effect: a change seen (a health state) is applied first. */
	if (dp->timer) {
		emu_timer_cancel(req->emu, dp->timer);
		dp->timer = 0;
		reconcile(dp);
	}
	if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/_emu/dataplane") == 0)
		return emu_reply_json(req, 200, describe(dp));
	if (strcmp(req->method, "POST") == 0 && strcmp(req->path, "/_emu/dataplane/apiserver") == 0)
		return apiserver_post(req, dp);
	if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/_emu/dataplane/health") == 0)
		return emu_reply_json(req, 200,
				      json_pack("{s:o}", "probes", dp_health_describe(dp)));
	if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/_emu/dataplane/ruleset") == 0)
		return emu_reply(req, 200, "text/plain; charset=utf-8", dp->nft_text ?: "",
				 dp->nft_text ? strlen(dp->nft_text) : 0);
	return emu_reply_json(req, 404,
			      json_pack("{s:{s:i, s:s}}", "error", "code", 404, "message",
					"unknown data plane endpoint (see docs/emulator.md)"));
}
