/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/view_load.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

int view_node_from_json(const json_t *node, struct view_node *out, struct error *err)
{
	const char *name = json_path_str(node, "metadata.name");

	memset(out, 0, sizeof(*out));
	if (!name)
		return error_set(err, EBADMSG, "a Node without metadata.name");
	out->name = strdup(name);
	out->provider_id = dup_or_empty(json_path_str(node, "spec.providerID"));
	out->pod_cidr = dup_or_empty(json_path_str(node, "spec.podCIDR"));
	out->uid = dup_or_empty(json_path_str(node, "metadata.uid"));
	out->resource_version = dup_or_empty(json_path_str(node, "metadata.resourceVersion"));
	if (!out->name || !out->provider_id || !out->pod_cidr || !out->uid ||
	    !out->resource_version) {
		view_node_free(out);
		return -ENOMEM;
	}
	out->pod_cidr_valid =
	    out->pod_cidr[0] && cidr_parse(out->pod_cidr, &out->pod, CIDR_STRICT) == 0;
	if (out->pod_cidr[0] && !out->pod_cidr_valid) {
		/* Kubernetes validates podCIDR: a value that does not parse is not ours to judge.
		 */
		int ret = error_set(err, EBADMSG, "Node %s: spec.podCIDR '%s' is not a CIDR range",
				    out->name, out->pod_cidr);
		view_node_free(out);
		return ret;
	}
	return 0;
}

/*
 * The alias ranges of the interfaces other than nic0, with their networks: another VM's
 * nic1 may sit on the cluster's network and hold a pods range (who holds what is per
 * network). A range that does not parse is skipped: it cannot be routed either.
 */
static int other_nics(const json_t *inst, const json_t *nic0, struct view_instance *out,
		      struct error *err)
{
	json_t *nics = json_object_get(inst, "networkInterfaces"), *nic, *a;
	size_t i, j, n = 0;

	(void)err;
	json_array_foreach(nics, i, nic) if (nic != nic0) n +=
	    json_array_size(json_object_get(nic, "aliasIpRanges"));
	if (!n)
		return 0;
	out->other = calloc(n, sizeof(*out->other));
	if (!out->other)
		return -ENOMEM;
	json_array_foreach(nics, i, nic)
	{
		if (nic == nic0)
			continue;
		json_array_foreach(json_object_get(nic, "aliasIpRanges"), j, a)
		{
			struct view_nic_alias *o = &out->other[out->n_other];

			if (cidr_parse(json_str(a, "ipCidrRange") ?: "", &o->range,
				       CIDR_STRICT | CIDR_ALLOW_BARE_IP) < 0)
				continue;
			o->network = dup_or_empty(json_str(nic, "network"));
			o->nic = dup_or_empty(json_str(nic, "name"));
			out->n_other++;
			if (!o->network || !o->nic)
				return -ENOMEM;
		}
	}
	return 0;
}

int view_instance_from_json(const char *scope, const json_t *inst, struct view_instance *out,
			    struct error *err)
{
	const char *name = json_str(inst, "name"), *zone = json_str(inst, "zone");
	json_t *nic, *aliases;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	/* The zone field is a URL; the aggregated scope "zones/Z" names it too. */
	if (zone)
		zone = gcp_basename(zone);
	else if (scope && !strncmp(scope, "zones/", 6))
		zone = scope + 6;
	if (!name || !zone)
		return error_set(err, EBADMSG, "an instance without name or zone");
	nic = gcp_instance_nic(inst, NULL);
	out->name = strdup(name);
	out->zone = strdup(zone);
	out->nic_name = dup_or_empty(nic ? json_str(nic, "name") : NULL);
	out->fingerprint = dup_or_empty(nic ? json_str(nic, "fingerprint") : NULL);
	out->subnetwork = dup_or_empty(nic ? json_str(nic, "subnetwork") : NULL);
	out->network = dup_or_empty(nic ? json_str(nic, "network") : NULL);
	out->aliases_valid = true;
	if (!out->name || !out->zone || !out->nic_name || !out->fingerprint || !out->subnetwork ||
	    !out->network) {
		ret = -ENOMEM;
		goto cleanup;
	}
	ret = other_nics(inst, nic, out, err);
	if (ret < 0)
		goto cleanup;
	aliases = nic ? json_object_get(nic, "aliasIpRanges") : NULL;
	if (json_array_size(aliases)) {
		out->aliases = calloc(json_array_size(aliases), sizeof(*out->aliases));
		if (!out->aliases) {
			ret = -ENOMEM;
			goto cleanup;
		}
	}
	for (size_t i = 0; i < json_array_size(aliases); i++) {
		json_t *a = json_array_get(aliases, i);
		struct view_alias *va = &out->aliases[out->n_aliases];
		const char *text = json_str(a, "ipCidrRange");

		va->text = dup_or_empty(text);
		va->range_name = dup_or_empty(json_str(a, "subnetworkRangeName"));
		out->n_aliases++;
		if (!va->text || !va->range_name) {
			ret = -ENOMEM;
			goto cleanup;
		}
		/* GCP prints a single address as "10.1.2.3/32", older answers as "10.1.2.3". */
		if (cidr_parse(va->text, &va->range, CIDR_STRICT | CIDR_ALLOW_BARE_IP) < 0) {
			ret = error_set(
			    err, EBADMSG,
			    "instance %s: networkInterfaces[0].aliasIpRanges[%zu].ipCidrRange '%s' is not a CIDR range",
			    out->name, i, va->text);
			goto cleanup;
		}
	}
cleanup:
	if (ret < 0)
		view_instance_free(out);
	return ret;
}

struct grow {
	void **items;
	size_t *n, cap, size;
};

static void *grow_slot(struct grow *g)
{
	if (*g->n == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 64;
		void *n = realloc(*g->items, ncap * g->size);

		if (!n)
			return NULL;
		*g->items = n;
		g->cap = ncap;
	}
	return (char *)*g->items + (*g->n)++ * g->size;
}

/* One list being read: where its items go and where its error is said. */
struct load_ctx {
	struct grow items;
	struct error *err;
};

static int on_node(void *arg, json_t *item)
{
	struct load_ctx *ctx = arg;
	struct view_node *n = grow_slot(&ctx->items);
	int ret;

	if (!n)
		return error_set(ctx->err, ENOMEM, "out of memory");
	ret = view_node_from_json(item, n, ctx->err);
	if (ret < 0)
		(*ctx->items.n)--;
	return ret;
}

static int on_instance(void *arg, const char *scope, json_t *item)
{
	struct load_ctx *ctx = arg;
	struct view_instance *in = grow_slot(&ctx->items);
	int ret;

	if (!in)
		return error_set(ctx->err, ENOMEM, "out of memory");
	ret = view_instance_from_json(scope, item, in, ctx->err);
	if (ret < 0)
		(*ctx->items.n)--;
	return ret;
}

static int load_subnet(struct session *s, const char *url, struct view_subnet *out,
		       struct error *err)
{
	json_t *sub = NULL, *secondary;
	const char *primary;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = gcp_compute_get(s->compute, url, &sub, err);
	if (ret < 0)
		return ret;
	out->self_link = strdup(url);
	primary = json_str(sub, "ipCidrRange");
	if (!out->self_link) {
		ret = -ENOMEM;
		goto cleanup;
	}
	if (!primary || cidr_parse(primary, &out->primary, CIDR_STRICT) < 0) {
		ret = error_set(err, EBADMSG, "subnetwork %s: ipCidrRange '%s' is not a CIDR range",
				url, primary ? primary : "");
		goto cleanup;
	}
	secondary = json_object_get(sub, "secondaryIpRanges");
	out->secondary = calloc(json_array_size(secondary) + 1, sizeof(*out->secondary));
	if (!out->secondary) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < json_array_size(secondary); i++) {
		json_t *r = json_array_get(secondary, i);
		const char *name = json_str(r, "rangeName"), *range = json_str(r, "ipCidrRange");

		if (!name || !range ||
		    cidr_parse(range, &out->secondary[out->n_secondary].range, CIDR_STRICT) < 0) {
			ret =
			    error_set(err, EBADMSG,
				      "subnetwork %s: secondaryIpRanges[%zu] is malformed", url, i);
			goto cleanup;
		}
		out->secondary[out->n_secondary].name = strdup(name);
		if (!out->secondary[out->n_secondary].name) {
			ret = -ENOMEM;
			goto cleanup;
		}
		out->n_secondary++;
	}
cleanup:
	json_decref(sub);
	if (ret < 0) {
		for (size_t i = 0; i < out->n_secondary; i++)
			free(out->secondary[i].name);
		free(out->secondary);
		free(out->self_link);
		memset(out, 0, sizeof(*out));
	}
	return ret;
}

/* The subnetworks nic0 of a Node's instance uses, each read once. */
static int load_subnets(struct session *s, struct cluster_view *view, struct error *err)
{
	char buf[512];
	int ret = 0;

	for (size_t i = 0; i < view->n_nodes; i++) {
		const char *project, *zone, *name;
		struct view_subnet *slot;
		ssize_t k;

		if (provider_id_parse(view->nodes[i].provider_id, buf, sizeof(buf), &project, &zone,
				      &name) < 0)
			continue;
		k = view_find_instance(view, zone, name);
		if (k < 0 || !view->instances[k].subnetwork[0] ||
		    view_find_subnet(view, view->instances[k].subnetwork))
			continue;
		slot = realloc(view->subnets, (view->n_subnets + 1) * sizeof(*slot));
		if (!slot)
			return -ENOMEM;
		view->subnets = slot;
		ret = load_subnet(s, view->instances[k].subnetwork, &view->subnets[view->n_subnets],
				  err);
		if (ret < 0)
			return ret;
		view->n_subnets++;
	}
	return 0;
}

static int instance_sort_cmp(const void *x, const void *y)
{
	const struct view_instance *a = x, *b = y;
	int r = strcmp(a->zone, b->zone);

	return r ? r : strcmp(a->name, b->name);
}

/*
 * What view_node_from_json() and view_instance_from_json() read, and nothing else: list
 * pages are parsed as a stream that builds only these fields (a Node page is ~1.4 MB of
 * which these are a few percent). Keep them in step with those two functions.
 */
static const char *const node_fields[] = {
    "metadata.name",   "metadata.uid", "metadata.resourceVersion",
    "spec.providerID", "spec.podCIDR", NULL,
};
static const char *const instance_fields[] = {"name", "zone", "networkInterfaces", NULL};
/*
 * The same for GCP to send less (partial response, see gcp/compute.h); the client adds what
 * paging needs and applies instance_fields whether the server honours this or not.
 */
static const char instance_selector[] =
    "items/*/instances(name,zone,networkInterfaces),items/*/warning,nextPageToken,"
    "unreachables";

static int list_nodes(struct session *s, struct load_ctx *ctx)
{
	struct kube_list_options opt = {.limit = KUBE_DEFAULT_LIMIT, .fields = node_fields};
	int ret;

	ret = kube_list(s->kube, "/api/v1/nodes", &opt, on_node, ctx, NULL, 0, ctx->err);
	if (ret < 0)
		error_prefix(ctx->err, "listing Nodes");
	return ret;
}

static int list_instances(struct session *s, struct load_ctx *ctx)
{
	struct gcp_list_options opt = {
	    .max_results = GCP_MAX_RESULTS,
	    .fields = instance_selector,
	    .projection = instance_fields,
	};
	int ret;

	ret = gcp_compute_list_instances(s->compute, &opt, on_instance, ctx, ctx->err);
	if (ret < 0)
		error_prefix(ctx->err, "listing instances of project %s", s->project);
	return ret;
}

struct node_job {
	struct session *s;
	struct load_ctx ctx;
	struct error err;
	int ret;
};

static void *node_job_run(void *arg)
{
	struct node_job *j = arg;

	j->ret = list_nodes(j->s, &j->ctx);
	return NULL;
}

int cluster_view_load(struct session *s, unsigned flags, struct cluster_view *view,
		      struct error *err)
{
	struct node_job nodes = {
	    .s = s,
	    .ctx = {.items = {.items = (void **)&view->nodes,
			      .n = &view->n_nodes,
			      .size = sizeof(struct view_node)},
		    .err = &nodes.err},
	};
	struct load_ctx instances = {
	    .items = {.items = (void **)&view->instances,
		      .n = &view->n_instances,
		      .size = sizeof(struct view_instance)},
	    .err = err,
	};
	pthread_t thread;
	bool threaded;
	int ret;

	memset(view, 0, sizeof(*view));
	view->project = strdup(s->project);
	if (!view->project)
		return -ENOMEM;
	/*
	 * Both lists at once, one client each (each has its own connection; neither is
	 * shared): while one thread parses a page, the other's next page is on its way.
	 * Without a thread, one after the other.
	 */
	threaded = pthread_create(&thread, NULL, node_job_run, &nodes) == 0;
	if (!threaded)
		node_job_run(&nodes);
	ret = list_instances(s, &instances);
	if (threaded)
		pthread_join(thread, NULL);
	/* The Nodes' error first, as when they were read first. */
	if (nodes.ret < 0) {
		if (err)
			*err = nodes.err;
		ret = nodes.ret;
		goto cleanup;
	}
	if (ret < 0)
		goto cleanup;
	/* Lookups (view_find_instance) need the instances sorted by zone/name. */
	if (view->n_instances)
		qsort(view->instances, view->n_instances, sizeof(*view->instances),
		      instance_sort_cmp);
	if (flags & VIEW_LOAD_SUBNETS) {
		ret = load_subnets(s, view, err);
		if (ret < 0) {
			error_prefix(err, "reading subnetworks");
			goto cleanup;
		}
	}
	log_debug("read %zu Nodes, %zu instances, %zu subnetworks", view->n_nodes,
		  view->n_instances, view->n_subnets);
cleanup:
	if (ret < 0)
		cluster_view_free(view);
	return ret;
}
