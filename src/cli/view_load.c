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
	/* One request: the API server serves the whole list, read as it arrives. */
	struct kube_list_options opt = {.limit = KUBE_LIST_ALL, .fields = node_fields};
	int ret;

	ret = kube_list(s->kube, "/api/v1/nodes", &opt, on_node, ctx, NULL, 0, ctx->err);
	if (ret < 0)
		error_prefix(ctx->err, "listing Nodes");
	return ret;
}

static void instances_drop(struct cluster_view *view)
{
	for (size_t i = 0; i < view->n_instances; i++)
		view_instance_free(&view->instances[i]);
	view->n_instances = 0;
}

/* A GCP resource name: what may go between quotes in a filter as it is. */
static bool gcp_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static int name_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

void view_ranges_free(char **filters, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(filters[i]);
	free(filters);
}

int view_instance_ranges(const struct view_node *nodes, size_t n_nodes, size_t per_range,
			 char ***out, size_t *n_out)
{
	char **names = NULL, **filters = NULL, buf[512];
	const char **bounds = NULL, *project, *zone, *name;
	size_t n = 0, n_bounds = 0, k = 0;
	int ret = -ENOMEM;

	*out = NULL;
	*n_out = 0;
	names = calloc(n_nodes + 1, sizeof(*names));
	bounds = calloc(n_nodes + 1, sizeof(*bounds));
	if (!names || !bounds)
		goto cleanup;
	for (size_t i = 0; i < n_nodes; i++) {
		if (provider_id_parse(nodes[i].provider_id, buf, sizeof(buf), &project, &zone,
				      &name) < 0 ||
		    !gcp_name(name))
			continue; /* a name no filter can quote only makes the ranges less even */
		if (!(names[n] = strdup(name)))
			goto cleanup;
		n++;
	}
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	/* Bounds: every per_range-th name after the first range, each distinct. */
	for (size_t i = per_range; per_range && i < n; i += per_range)
		if (!n_bounds || strcmp(names[i], bounds[n_bounds - 1]))
			bounds[n_bounds++] = names[i];
	filters = calloc(n_bounds + 1, sizeof(*filters));
	if (!filters)
		goto cleanup;
	for (k = 0; k <= n_bounds; k++) {
		int r;

		if (n_bounds == 0)
			r = (filters[k] = strdup("")) ? 0 : -1;
		else if (k == 0)
			r = asprintf(&filters[k], "name < \"%s\"", bounds[0]);
		else if (k == n_bounds)
			r = asprintf(&filters[k], "name >= \"%s\"", bounds[k - 1]);
		else
			r = asprintf(&filters[k], "(name >= \"%s\") AND (name < \"%s\")",
				     bounds[k - 1], bounds[k]);
		if (r < 0) {
			filters[k] = NULL;
			goto cleanup;
		}
	}
	*out = filters;
	*n_out = n_bounds + 1;
	filters = NULL;
	ret = 0;
cleanup:
	if (filters)
		view_ranges_free(filters, k);
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	free(bounds);
	return ret;
}

static int list_instances(struct session *s, bool *done, struct load_ctx *ctx)
{
	/*
	 * One page of everything, side by side with the Node list: a cluster of up to 500
	 * instances is then read in one round trip.
	 */
	struct gcp_list_options opt = {
	    .max_results = GCP_MAX_RESULTS,
	    .fields = instance_selector,
	    .projection = instance_fields,
	    .max_pages = 1,
	    .more = done,
	};
	int ret;

	ret = gcp_compute_list_instances(s->compute, &opt, on_instance, ctx, ctx->err);
	if (ret < 0)
		error_prefix(ctx->err, "listing instances of project %s", s->project);
	*done = ret == 0 && !*done;
	return ret;
}

/*
 * The rest, once the Nodes are known: the name space cut into ranges of about
 * VIEW_RANGE_NODES of the Nodes' instances (a page with room for instances that are no
 * Node), all read at once. Filters: AIP-160's `name < "B"` and `name >= "B"` (Compute's
 * filter parameter takes =, !=, >, <, <=, >= and :, cloud.google.com/compute/docs/reference/
 * rest/v1/instances/aggregatedList). Whatever order the server compares names in, the two
 * are complements: the ranges are disjoint and hold every name between them, so no
 * instance is missed (a range that holds more than a page is simply read page by page).
 */
static int list_instance_ranges(struct session *s, struct cluster_view *view, struct load_ctx *ctx)
{
	struct gcp_list_options *opts = NULL;
	char **filters = NULL;
	size_t n = 0;
	int ret;

	ret = view_instance_ranges(view->nodes, view->n_nodes, VIEW_RANGE_NODES, &filters, &n);
	if (ret < 0)
		return error_set(ctx->err, -ret, "out of memory");
	opts = calloc(n, sizeof(*opts));
	if (!opts) {
		ret = error_set(ctx->err, ENOMEM, "out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++)
		opts[i] = (struct gcp_list_options){
		    .filter = filters[i][0] ? filters[i] : NULL,
		    .max_results = GCP_MAX_RESULTS,
		    .fields = instance_selector,
		    .projection = instance_fields,
		};
	ret = gcp_compute_aggregated_list_parallel(s->compute, "instances", opts, n, on_instance,
						   ctx, ctx->err);
	if (ret < 0)
		error_prefix(ctx->err, "listing instances of project %s", s->project);
	log_debug("instances read in %zu ranges at once", n);
cleanup:
	free(opts);
	view_ranges_free(filters, n);
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

/* Two instances with one zone and name (an instance in two ranges): keep one. */
static void instances_dedup(struct cluster_view *view)
{
	size_t j = 0;

	for (size_t i = 0; i < view->n_instances; i++) {
		if (j && !instance_sort_cmp(&view->instances[j - 1], &view->instances[i])) {
			view_instance_free(&view->instances[i]);
			continue;
		}
		view->instances[j++] = view->instances[i];
	}
	view->n_instances = j;
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
	bool threaded, all_read = false;
	int ret;

	memset(view, 0, sizeof(*view));
	view->project = strdup(s->project);
	if (!view->project)
		return -ENOMEM;
	/*
	 * Round trip 1: the whole Node list and the first page of instances, at once, one
	 * client each (each has its own connection). Round trip 2, when there were more
	 * instances: every range of the rest at once, cut where the Nodes' names say.
	 */
	threaded = pthread_create(&thread, NULL, node_job_run, &nodes) == 0;
	if (!threaded)
		node_job_run(&nodes);
	ret = list_instances(s, &all_read, &instances);
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
	if (!all_read) {
		instances_drop(view);
		ret = list_instance_ranges(s, view, &instances);
		if (ret < 0)
			goto cleanup;
	}
	/* Lookups (view_find_instance) need the instances sorted by zone/name. */
	if (view->n_instances) {
		qsort(view->instances, view->n_instances, sizeof(*view->instances),
		      instance_sort_cmp);
		instances_dedup(view);
	}
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
