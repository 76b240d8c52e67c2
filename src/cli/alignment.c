/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/alignment.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char *const status_names[] = {
    [ALIGN_OK] = "ok",
    [ALIGN_MISMATCH] = "mismatch",
    [ALIGN_NO_ALIAS] = "no-alias",
    [ALIGN_NO_PODCIDR] = "no-podcidr",
    [ALIGN_NO_INSTANCE] = "no-instance",
    [ALIGN_DUPLICATE] = "duplicate",
    [ALIGN_ORPHAN] = "orphan",
};

const char *align_status_name(enum align_status s)
{
	return status_names[s];
}

int provider_id_parse(const char *provider_id, char *buf, size_t buflen, const char **project,
		      const char **zone, const char **name)
{
	static const char scheme[] = "gce://";
	char *p, *z, *n;

	if (!provider_id || strncmp(provider_id, scheme, sizeof(scheme) - 1) != 0)
		return -EINVAL;
	if ((size_t)snprintf(buf, buflen, "%s", provider_id + sizeof(scheme) - 1) >= buflen)
		return -EINVAL;
	p = buf;
	z = strchr(p, '/');
	if (!z)
		return -EINVAL;
	*z++ = '\0';
	n = strchr(z, '/');
	if (!n)
		return -EINVAL;
	*n++ = '\0';
	if (!*p || !*z || !*n || strchr(n, '/'))
		return -EINVAL;
	*project = p;
	*zone = z;
	*name = n;
	return 0;
}

static int instance_cmp_key(const struct view_instance *a, const char *zone, const char *name)
{
	int r = strcmp(a->zone, zone);

	return r ? r : strcmp(a->name, name);
}

static int instance_cmp(const void *x, const void *y)
{
	const struct view_instance *a = x, *b = y;

	return instance_cmp_key(a, b->zone, b->name);
}

ssize_t view_find_instance(const struct cluster_view *view, const char *zone, const char *name)
{
	size_t lo = 0, hi = view->n_instances;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = instance_cmp_key(&view->instances[mid], zone, name);

		if (r == 0)
			return (ssize_t)mid;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

const struct view_subnet *view_find_subnet(const struct cluster_view *view, const char *url)
{
	for (size_t i = 0; url && i < view->n_subnets; i++)
		if (strcmp(view->subnets[i].self_link, url) == 0)
			return &view->subnets[i];
	return NULL;
}

/* Address ranges as [first, last] 128-bit integers, for sweeps over sorted intervals. */
struct interval {
	unsigned net; /* network id (networks_of), 0 when not tracked */
	int family;
	unsigned __int128 first, last;
	size_t owner; /* node or instance index */
	size_t sub;   /* alias index (nic0) or other[] index (other) for instance intervals */
	bool other;   /* another interface's range */
};

static struct interval to_interval(const struct cidr *c, size_t owner, size_t sub)
{
	unsigned bits = cidr_max_prefix(c), n = bits / 8;
	unsigned __int128 v = 0, hostmask;
	struct interval iv = {0};

	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | c->addr.bytes[i];
	hostmask = (bits - c->prefix) >= 128 ? ~(unsigned __int128)0
					     : (((unsigned __int128)1 << (bits - c->prefix)) - 1);
	iv.family = c->addr.family;
	iv.first = v & ~hostmask;
	iv.last = iv.first | hostmask;
	iv.owner = owner;
	iv.sub = sub;
	return iv;
}

static int interval_cmp(const void *x, const void *y)
{
	const struct interval *a = x, *b = y;

	if (a->net != b->net)
		return a->net < b->net ? -1 : 1;
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->first != b->first)
		return a->first < b->first ? -1 : 1;
	if (a->last != b->last)
		return a->last < b->last ? -1 : 1;
	return a->owner < b->owner ? -1 : a->owner > b->owner;
}

/*
 * Sorted intervals with, per (network, family) block, the largest `last` so far: finds
 * every interval overlapping a query, nested or not, whatever their sizes (data as served
 * may overlap; GCP keeps one network's ranges disjoint, the lookups do not rely on it).
 */
struct ivset {
	struct interval *iv;
	unsigned __int128 *maxlast;
	size_t n;
};

static int ivset_build(struct ivset *s)
{
	if (s->n)
		qsort(s->iv, s->n, sizeof(*s->iv), interval_cmp);
	s->maxlast = malloc((s->n ? s->n : 1) * sizeof(*s->maxlast));
	if (!s->maxlast)
		return -ENOMEM;
	for (size_t k = 0; k < s->n; k++) {
		bool same =
		    k && s->iv[k - 1].net == s->iv[k].net && s->iv[k - 1].family == s->iv[k].family;

		s->maxlast[k] =
		    same && s->maxlast[k - 1] > s->iv[k].last ? s->maxlast[k - 1] : s->iv[k].last;
	}
	return 0;
}

static void ivset_free(struct ivset *s)
{
	free(s->iv);
	free(s->maxlast);
	memset(s, 0, sizeof(*s));
}

/*
 * Calls fn for each interval of s overlapping q (same network and family), last first.
 * fn returns false to stop. Returns how many were seen.
 */
static size_t ivset_overlaps(const struct ivset *s, const struct interval *q,
			     bool (*fn)(void *arg, const struct interval *iv), void *arg)
{
	size_t lo = 0, hi = s->n, count = 0;

	/* One past the last interval whose (net, family, first) <= (q.net, q.family, q.last). */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct interval *m = &s->iv[mid];
		bool le = m->net < q->net ||
			  (m->net == q->net && (m->family < q->family ||
						(m->family == q->family && m->first <= q->last)));

		if (le)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = lo; k-- > 0;) {
		const struct interval *iv = &s->iv[k];

		if (iv->net != q->net || iv->family != q->family || s->maxlast[k] < q->first)
			break;
		if (iv->last < q->first)
			continue;
		count++;
		if (fn && !fn(arg, iv))
			break;
	}
	return count;
}

/* ---- networks ---- */
const char *view_network_key(const char *url)
{
	const char *p = url ? strstr(url, "projects/") : NULL;

	return p ? p : (url ? url : "");
}

static int strptr_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Every network key of the view, sorted and unique; an id is its index + 1. */
struct networks {
	const char **keys;
	size_t n;
};

static int networks_of(const struct cluster_view *view, struct networks *out)
{
	size_t n = 0, cap = 1;

	for (size_t i = 0; i < view->n_instances; i++)
		cap += 1 + view->instances[i].n_other;
	out->keys = malloc(cap * sizeof(*out->keys));
	out->n = 0;
	if (!out->keys)
		return -ENOMEM;
	for (size_t i = 0; i < view->n_instances; i++) {
		const struct view_instance *in = &view->instances[i];

		out->keys[n++] = view_network_key(in->network);
		for (size_t k = 0; k < in->n_other; k++)
			out->keys[n++] = view_network_key(in->other[k].network);
	}
	if (n)
		qsort(out->keys, n, sizeof(*out->keys), strptr_cmp);
	for (size_t i = 0; i < n; i++)
		if (!out->n || strcmp(out->keys[out->n - 1], out->keys[i]))
			out->keys[out->n++] = out->keys[i];
	return 0;
}

static unsigned network_id(const struct networks *nets, const char *url)
{
	const char *key = view_network_key(url);
	size_t lo = 0, hi = nets->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(nets->keys[mid], key);

		if (!r)
			return (unsigned)mid + 1;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Every alias range of every instance (nic0's and the other interfaces'), by network. */
static int alias_intervals(const struct cluster_view *view, const struct networks *nets,
			   struct ivset *out)
{
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < view->n_instances; i++)
		n += view->instances[i].n_aliases + view->instances[i].n_other;
	out->iv = calloc(n ? n : 1, sizeof(*out->iv));
	if (!out->iv)
		return -ENOMEM;
	for (size_t i = 0; i < view->n_instances; i++) {
		const struct view_instance *in = &view->instances[i];
		unsigned net = network_id(nets, in->network);

		for (size_t k = 0; k < in->n_aliases; k++) {
			struct interval iv = to_interval(&in->aliases[k].range, i, k);

			iv.net = net;
			out->iv[out->n++] = iv;
		}
		for (size_t k = 0; k < in->n_other; k++) {
			struct interval iv = to_interval(&in->other[k].range, i, k);

			iv.net = network_id(nets, in->other[k].network);
			iv.other = true;
			out->iv[out->n++] = iv;
		}
	}
	return ivset_build(out);
}

static void set_row(struct align_row *row, enum align_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_row(struct align_row *row, enum align_status status, const char *fmt, ...)
{
	va_list ap;

	row->status = status;
	va_start(ap, fmt);
	vsnprintf(row->reason, sizeof(row->reason), fmt, ap);
	va_end(ap);
}

/* A secondary range the cluster's pod aliases come from: (subnetwork, range name). */
struct pod_source {
	const char *subnetwork, *range_name;
};

static int pod_source_cmp(const void *x, const void *y)
{
	const struct pod_source *a = x, *b = y;
	int r = strcmp(a->subnetwork, b->subnetwork);

	return r ? r : strcmp(a->range_name, b->range_name);
}

static int add_orphan(struct alignment *a, size_t instance, ssize_t alias, size_t other,
		      const struct cidr *range, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int add_orphan(struct alignment *a, size_t instance, ssize_t alias, size_t other,
		      const struct cidr *range, const char *fmt, ...)
{
	struct align_orphan *o = realloc(a->orphans, (a->n_orphans + 1) * sizeof(*o));
	va_list ap;

	if (!o)
		return -ENOMEM;
	a->orphans = o;
	o = &a->orphans[a->n_orphans++];
	*o = (struct align_orphan){
	    .instance = instance, .alias = alias, .other = other, .range = *range};
	va_start(ap, fmt);
	vsnprintf(o->reason, sizeof(o->reason), fmt, ap);
	va_end(ap);
	return 0;
}

/*
 * Instances no Node claims that hold a range of the pods range on one of the cluster's
 * networks (those of the claimed instances' nic0): a range overlapping a Node's podCIDR,
 * or a nic0 alias from a secondary range the claimed instances' aliases come from.
 * pods: the Nodes' podCIDR intervals (taken, freed here).
 */
static int find_orphans(const struct cluster_view *view, struct alignment *a, struct interval *pods,
			size_t n_pods)
{
	struct ivset podset = {.iv = pods, .n = n_pods};
	struct networks nets = {0};
	struct pod_source *src = NULL;
	bool *claimed = NULL, *cluster_net = NULL;
	size_t n_src = 0;
	char text[CIDR_STRLEN];
	int ret;

	ret = networks_of(view, &nets);
	if (ret == 0)
		ret = ivset_build(&podset);
	claimed = calloc(view->n_instances + 1, sizeof(*claimed));
	cluster_net = calloc(nets.n + 2, sizeof(*cluster_net));
	src = calloc(view->n_instances + 1, sizeof(*src));
	if (ret < 0 || !claimed || !cluster_net || !src) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (size_t r = 0; r < a->n_rows; r++) {
		const struct view_instance *in;

		if (a->rows[r].instance < 0)
			continue;
		in = &view->instances[a->rows[r].instance];
		if (claimed[a->rows[r].instance])
			continue;
		claimed[a->rows[r].instance] = true;
		cluster_net[network_id(&nets, in->network)] = true;
		/* What the CloudAllocator copies comes from the pods range. */
		if (in->n_aliases && in->aliases[0].range_name[0])
			src[n_src++] =
			    (struct pod_source){in->subnetwork, in->aliases[0].range_name};
	}
	if (n_src)
		qsort(src, n_src, sizeof(*src), pod_source_cmp);
	for (size_t i = 0; i < view->n_instances; i++) {
		const struct view_instance *in = &view->instances[i];

		if (claimed[i])
			continue;
		for (size_t k = 0; k < in->n_aliases && cluster_net[network_id(&nets, in->network)];
		     k++) {
			const struct view_alias *al = &in->aliases[k];
			struct interval q = to_interval(&al->range, i, k);
			struct pod_source key = {in->subnetwork, al->range_name};
			bool overlaps = ivset_overlaps(&podset, &q, NULL, NULL) > 0;
			bool from_pods = al->range_name[0] &&
					 bsearch(&key, src, n_src, sizeof(*src), pod_source_cmp);

			if (!overlaps && !from_pods)
				continue;
			ret = add_orphan(a, i, (ssize_t)k, 0, &al->range,
					 "instance %s holds %s%s%s on %s but no Node claims it%s",
					 in->name, al->range_name[0] ? al->range_name : "",
					 al->range_name[0] ? ":" : "",
					 cidr_format(&al->range, text, sizeof(text)), in->nic_name,
					 overlaps ? " (it overlaps a Node's podCIDR)" : "");
			if (ret < 0)
				goto cleanup;
		}
		for (size_t k = 0; k < in->n_other; k++) {
			const struct view_nic_alias *al = &in->other[k];
			struct interval q = to_interval(&al->range, i, k);

			if (!cluster_net[network_id(&nets, al->network)] ||
			    !ivset_overlaps(&podset, &q, NULL, NULL))
				continue;
			ret = add_orphan(a, i, -1, k, &al->range,
					 "instance %s holds %s on %s, which overlaps a Node's "
					 "podCIDR, but no Node claims it",
					 in->name, cidr_format(&al->range, text, sizeof(text)),
					 al->nic);
			if (ret < 0)
				goto cleanup;
		}
	}
cleanup:
	ivset_free(&podset);
	free(nets.keys);
	free(claimed);
	free(cluster_net);
	free(src);
	return ret;
}

static int cmp_instance_of_row(const void *x, const void *y, void *rows_)
{
	const struct align_row *rows = rows_;
	ssize_t a = rows[*(const size_t *)x].instance, b = rows[*(const size_t *)y].instance;

	return a < b ? -1 : a > b;
}

int alignment_compute(struct cluster_view *view, struct alignment *out)
{
	struct align_row *rows = NULL;
	struct interval *pods = NULL;
	size_t *order = NULL, n_pods = 0;
	char buf[512], text[CIDR_STRLEN];
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (view->n_instances) /* qsort's base may not be NULL, even for zero elements */
		qsort(view->instances, view->n_instances, sizeof(*view->instances), instance_cmp);
	rows = calloc(view->n_nodes ? view->n_nodes : 1, sizeof(*rows));
	pods = calloc(view->n_nodes ? view->n_nodes : 1, sizeof(*pods));
	order = calloc(view->n_nodes ? view->n_nodes : 1, sizeof(*order));
	if (!rows || !pods || !order) {
		ret = -ENOMEM;
		goto cleanup;
	}

	/* Map each Node to its instance by providerID. */
	for (size_t i = 0; i < view->n_nodes; i++) {
		const struct view_node *n = &view->nodes[i];
		const char *project, *zone, *name;

		rows[i].node = i;
		rows[i].instance = -1;
		order[i] = i;
		if (!n->provider_id[0]) {
			set_row(&rows[i], ALIGN_NO_INSTANCE, "the Node has no spec.providerID");
			continue;
		}
		if (provider_id_parse(n->provider_id, buf, sizeof(buf), &project, &zone, &name) <
		    0) {
			set_row(&rows[i], ALIGN_NO_INSTANCE,
				"providerID '%s' is not gce://project/zone/name", n->provider_id);
			continue;
		}
		if (strcmp(project, view->project) != 0) {
			set_row(&rows[i], ALIGN_NO_INSTANCE,
				"providerID names project '%s', not '%s'", project, view->project);
			continue;
		}
		rows[i].instance = view_find_instance(view, zone, name);
		if (rows[i].instance < 0)
			set_row(&rows[i], ALIGN_NO_INSTANCE, "no instance %s in zone %s", name,
				zone);
	}

	/* Two Nodes claiming one instance: sort row indices by instance and compare neighbours. */
	qsort_r(order, view->n_nodes, sizeof(*order), cmp_instance_of_row, rows);
	for (size_t k = 1; k < view->n_nodes; k++) {
		struct align_row *a = &rows[order[k - 1]], *b = &rows[order[k]];

		if (a->instance < 0 || a->instance != b->instance)
			continue;
		set_row(a, ALIGN_DUPLICATE, "Nodes %s and %s both claim instance %s",
			view->nodes[a->node].name, view->nodes[b->node].name,
			view->instances[a->instance].name);
		set_row(b, ALIGN_DUPLICATE, "Nodes %s and %s both claim instance %s",
			view->nodes[a->node].name, view->nodes[b->node].name,
			view->instances[b->instance].name);
	}

	/* Two Nodes with overlapping podCIDRs: sweep the sorted intervals. */
	for (size_t i = 0; i < view->n_nodes; i++)
		if (view->nodes[i].pod_cidr_valid)
			pods[n_pods++] = to_interval(&view->nodes[i].pod, i, 0);
	qsort(pods, n_pods, sizeof(*pods), interval_cmp);
	for (size_t k = 1, reach = 0; k < n_pods; k++) {
		if (pods[k].family == pods[reach].family && pods[k].first <= pods[reach].last) {
			struct align_row *a = &rows[pods[reach].owner], *b = &rows[pods[k].owner];
			const char *pa = view->nodes[a->node].pod_cidr;

			if (a->status != ALIGN_DUPLICATE)
				set_row(a, ALIGN_DUPLICATE, "podCIDR %s overlaps Node %s's %s", pa,
					view->nodes[b->node].name, view->nodes[b->node].pod_cidr);
			if (b->status != ALIGN_DUPLICATE)
				set_row(b, ALIGN_DUPLICATE, "podCIDR %s overlaps Node %s's %s",
					view->nodes[b->node].pod_cidr, view->nodes[a->node].name,
					pa);
		}
		if (pods[k].family != pods[reach].family || pods[k].last > pods[reach].last)
			reach = k;
	}

	for (size_t i = 0; i < view->n_nodes; i++) {
		struct align_row *row = &rows[i];
		const struct view_node *n = &view->nodes[i];
		const struct view_instance *inst;

		if (row->status != ALIGN_OK || row->instance < 0)
			continue;
		inst = &view->instances[row->instance];
		if (!n->pod_cidr[0]) {
			set_row(row, ALIGN_NO_PODCIDR, "the Node has no spec.podCIDR yet");
		} else if (!n->pod_cidr_valid) {
			set_row(row, ALIGN_MISMATCH, "podCIDR '%s' is not a CIDR range",
				n->pod_cidr);
		} else if (!inst->aliases_valid) {
			set_row(row, ALIGN_MISMATCH, "an alias range of %s/%s is not a CIDR range",
				inst->zone, inst->name);
		} else if (!inst->n_aliases) {
			set_row(row, ALIGN_NO_ALIAS, "instance %s has no alias IP range on %s",
				inst->name, inst->nic_name);
		} else if (!cidr_equal(&inst->aliases[0].range, &n->pod)) {
			set_row(
			    row, ALIGN_MISMATCH, "the VPC routes %s to this node, the Node uses %s",
			    cidr_format(&inst->aliases[0].range, text, sizeof(text)), n->pod_cidr);
		}
	}

	out->rows = rows;
	out->n_rows = view->n_nodes;
	rows = NULL;
	ret = find_orphans(view, out, pods, n_pods);
	pods = NULL; /* find_orphans took it */
	if (ret < 0) {
		alignment_free(out);
		goto cleanup;
	}
	out->aligned = out->n_orphans == 0;
	for (size_t i = 0; i < view->n_nodes; i++)
		if (out->rows[i].status != ALIGN_OK)
			out->aligned = false;
cleanup:
	free(rows);
	free(pods);
	free(order);
	return ret;
}

void alignment_free(struct alignment *a)
{
	free(a->rows);
	free(a->orphans);
	memset(a, 0, sizeof(*a));
}

void view_node_free(struct view_node *n)
{
	free(n->name);
	free(n->provider_id);
	free(n->pod_cidr);
	free(n->uid);
	free(n->resource_version);
	memset(n, 0, sizeof(*n));
}

void view_instance_free(struct view_instance *in)
{
	free(in->zone);
	free(in->name);
	free(in->nic_name);
	free(in->fingerprint);
	free(in->subnetwork);
	free(in->network);
	for (size_t k = 0; k < in->n_aliases; k++) {
		free(in->aliases[k].text);
		free(in->aliases[k].range_name);
	}
	free(in->aliases);
	for (size_t k = 0; k < in->n_other; k++) {
		free(in->other[k].network);
		free(in->other[k].nic);
	}
	free(in->other);
	memset(in, 0, sizeof(*in));
}

void view_alias_remove(struct view_instance *in, const struct cidr *range)
{
	for (size_t k = 0; k < in->n_aliases; k++) {
		if (!cidr_equal(&in->aliases[k].range, range))
			continue;
		free(in->aliases[k].text);
		free(in->aliases[k].range_name);
		memmove(in->aliases + k, in->aliases + k + 1,
			(in->n_aliases - k - 1) * sizeof(*in->aliases));
		in->n_aliases--;
		return;
	}
}

int view_alias_prepend(struct view_instance *in, const struct cidr *range, const char *text,
		       const char *range_name)
{
	struct view_alias *n = realloc(in->aliases, (in->n_aliases + 1) * sizeof(*n));
	char *t, *rn;

	if (!n)
		return -ENOMEM;
	in->aliases = n;
	t = strdup(text);
	rn = strdup(range_name ? range_name : "");
	if (!t || !rn) {
		free(t);
		free(rn);
		return -ENOMEM;
	}
	memmove(in->aliases + 1, in->aliases, in->n_aliases * sizeof(*n));
	in->aliases[0] = (struct view_alias){.range = *range, .text = t, .range_name = rn};
	in->n_aliases++;
	return 0;
}

void cluster_view_free(struct cluster_view *view)
{
	for (size_t i = 0; i < view->n_nodes; i++)
		view_node_free(&view->nodes[i]);
	for (size_t i = 0; i < view->n_instances; i++)
		view_instance_free(&view->instances[i]);
	for (size_t i = 0; i < view->n_subnets; i++) {
		free(view->subnets[i].self_link);
		for (size_t k = 0; k < view->subnets[i].n_secondary; k++)
			free(view->subnets[i].secondary[k].name);
		free(view->subnets[i].secondary);
	}
	free(view->nodes);
	free(view->instances);
	free(view->subnets);
	free(view->project);
	memset(view, 0, sizeof(*view));
}

/* ---- repair planning ---- */

struct move {
	size_t row;         /* row being fixed */
	size_t instance;    /* its instance */
	struct cidr target; /* the Node's podCIDR */
	const char *range_name;
	ssize_t current; /* nic0's alias in the target's secondary range: cleared first; -1 none */
	ssize_t blocker; /* move index whose current alias overlaps our target, -1 if none */
	bool cleared, done, refused;
};

static int add_refusal(struct repair_plan *p, size_t node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int add_refusal(struct repair_plan *p, size_t node, const char *fmt, ...)
{
	struct repair_refusal *r;
	va_list ap;

	r = realloc(p->refusals, (p->n_refusals + 1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	p->refusals = r;
	r = &p->refusals[p->n_refusals++];
	r->node = node;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	return 0;
}

static int push_step(struct repair_plan *p, const struct repair_step *st)
{
	struct repair_step *s = realloc(p->steps, (p->n_steps + 1) * sizeof(*s));

	if (!s)
		return -ENOMEM;
	p->steps = s;
	p->steps[p->n_steps++] = *st;
	return 0;
}

static int add_step(struct repair_plan *p, enum repair_step_kind kind, const struct move *m,
		    const struct cidr *range, const char *range_name, const struct alignment *a)
{
	struct repair_step st = {
	    .kind = kind, .instance = m->instance, .node = a->rows[m->row].node, .range = *range};

	if (range_name)
		snprintf(st.range_name, sizeof(st.range_name), "%s", range_name);
	return push_step(p, &st);
}

/* The secondary range of nic0's subnet that contains target: its name, or NULL. */
static const char *range_for(const struct cluster_view *view, const struct view_instance *inst,
			     const struct cidr *target, bool *subnet_known,
			     const struct cidr **secondary)
{
	const struct view_subnet *s = view_find_subnet(view, inst->subnetwork);

	*subnet_known = s != NULL;
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n_secondary; i++)
		if (cidr_contains(&s->secondary[i].range, target)) {
			*secondary = &s->secondary[i].range;
			return s->secondary[i].name;
		}
	return NULL;
}

/* nic0's alias from that secondary range (by name, or by address), or -1. */
static ssize_t alias_in_range(const struct view_instance *inst, const char *range_name,
			      const struct cidr *secondary)
{
	for (size_t k = 0; k < inst->n_aliases; k++)
		if (!strcmp(inst->aliases[k].range_name, range_name) ||
		    cidr_contains(secondary, &inst->aliases[k].range))
			return (ssize_t)k;
	return -1;
}

/* What one overlap with a move's target means. */
struct holder_scan {
	const struct cluster_view *view;
	const struct alignment *a;
	const struct move *moves;
	const ssize_t *move_of_instance;
	bool free_orphans; /* the orphans' nic0 ranges are cleared first */
	const struct move *mv;
	size_t mv_index;
	ssize_t blocker;
	size_t n_blockers;
	const struct interval *bad; /* the first holder we may not touch */
};

static bool orphan_alias(const struct alignment *a, size_t instance, size_t alias)
{
	for (size_t o = 0; o < a->n_orphans; o++)
		if (a->orphans[o].instance == instance && a->orphans[o].alias == (ssize_t)alias)
			return true;
	return false;
}

static bool scan_holder(void *arg, const struct interval *iv)
{
	struct holder_scan *h = arg;
	ssize_t hm = h->move_of_instance[iv->owner];

	if (!iv->other && iv->owner == h->mv->instance && (ssize_t)iv->sub == h->mv->current)
		return true; /* our own alias, cleared first */
	if (!iv->other && h->free_orphans && orphan_alias(h->a, iv->owner, iv->sub))
		return true; /* an orphan's range being freed first */
	if (!iv->other && hm >= 0 && (size_t)hm != h->mv_index &&
	    (ssize_t)iv->sub == h->moves[hm].current) {
		if (h->blocker != hm) {
			h->blocker = hm;
			h->n_blockers++;
		}
		return true;
	}
	if (!h->bad)
		h->bad = iv;
	return true;
}

static int refuse_holder(struct repair_plan *out, const struct holder_scan *h, size_t node,
			 const char *text)
{
	const struct cluster_view *view = h->view;
	const struct interval *iv = h->bad;
	const struct view_instance *holder = &view->instances[iv->owner];
	const char *holder_node = NULL;
	char other[CIDR_STRLEN];

	for (size_t r = 0; r < h->a->n_rows; r++)
		if (h->a->rows[r].instance == (ssize_t)iv->owner)
			holder_node = view->nodes[h->a->rows[r].node].name;
	cidr_format(iv->other ? &holder->other[iv->sub].range : &holder->aliases[iv->sub].range,
		    other, sizeof(other));
	if (iv->owner == h->mv->instance)
		return add_refusal(
		    out, node, "podCIDR %s overlaps another alias range (%s) of the same instance",
		    text, other);
	if (!holder_node)
		return add_refusal(
		    out, node,
		    "podCIDR %s is held by instance %s (zone %s, range %s on %s), which is not a node of this cluster; refusing to touch it%s",
		    text, holder->name, holder->zone, other,
		    iv->other ? holder->other[iv->sub].nic : holder->nic_name,
		    iv->other ? "" : " (verify reports it as orphan; --free-orphans frees it)");
	return add_refusal(out, node,
			   "podCIDR %s is held by instance %s of Node %s, which is not being moved",
			   text, holder->name, holder_node);
}

size_t repair_plan_instances(const struct repair_plan *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n_steps; i++) {
		bool seen = false;

		for (size_t j = 0; j < i && !seen; j++)
			seen = p->steps[j].instance == p->steps[i].instance;
		n += !seen;
	}
	return n;
}

int repair_plan_gcp(const struct cluster_view *view, const struct alignment *a, unsigned flags,
		    struct repair_plan *out)
{
	struct ivset aliases = {0};
	struct networks nets = {0};
	struct move *moves = NULL;
	ssize_t *move_of_instance = NULL;
	size_t n_moves = 0, remaining;
	char text[CIDR_STRLEN];
	int ret = 0;

	memset(out, 0, sizeof(*out));
	ret = networks_of(view, &nets);
	if (ret == 0)
		ret = alias_intervals(view, &nets, &aliases);
	moves = calloc(a->n_rows ? a->n_rows : 1, sizeof(*moves));
	move_of_instance = malloc((view->n_instances ? view->n_instances : 1) * sizeof(ssize_t));
	if (ret < 0 || !moves || !move_of_instance) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < view->n_instances; i++)
		move_of_instance[i] = -1;

	/* --free-orphans: their nic0 ranges go first (another interface's is not ours). */
	for (size_t o = 0; (flags & REPAIR_FREE_ORPHANS) && o < a->n_orphans; o++) {
		const struct align_orphan *orph = &a->orphans[o];
		const struct view_instance *in = &view->instances[orph->instance];
		struct repair_step st = {.kind = STEP_CLEAR,
					 .instance = orph->instance,
					 .node = STEP_NO_NODE,
					 .orphan = true,
					 .range = orph->range};

		if (orph->alias < 0 || !in->aliases_valid)
			continue;
		snprintf(st.range_name, sizeof(st.range_name), "%s",
			 in->aliases[orph->alias].range_name);
		ret = push_step(out, &st);
		if (ret < 0)
			goto cleanup;
	}

	/* Which rows can be fixed by moving an alias; refuse the others with a reason. */
	for (size_t r = 0; r < a->n_rows; r++) {
		const struct align_row *row = &a->rows[r];
		const struct view_node *n = &view->nodes[row->node];
		const struct view_instance *inst;
		const struct cidr *secondary = NULL;
		const char *range_name;
		bool subnet_known;

		switch (row->status) {
		case ALIGN_OK:
			continue;
		case ALIGN_MISMATCH:
		case ALIGN_NO_ALIAS:
			break;
		case ALIGN_NO_PODCIDR:
			ret = add_refusal(
			    out, row->node,
			    "the Node has no podCIDR to copy; with the CCM in CloudAllocator mode it gets its alias range");
			goto next;
		default:
			ret = add_refusal(out, row->node, "%s: %s", align_status_name(row->status),
					  row->reason);
			goto next;
		}
		inst = &view->instances[row->instance];
		if (!n->pod_cidr_valid || !inst->aliases_valid) {
			ret = add_refusal(out, row->node, "%s", row->reason);
			goto next;
		}
		range_name = range_for(view, inst, &n->pod, &subnet_known, &secondary);
		if (!range_name) {
			ret = add_refusal(
			    out, row->node,
			    subnet_known
				? "podCIDR %s lies outside every secondary range of the instance's subnetwork; moving the alias there is impossible"
				: "podCIDR %s: the instance's subnetwork could not be read, so the target range is unknown",
			    n->pod_cidr);
			goto next;
		}
		moves[n_moves] =
		    (struct move){.row = r,
				  .instance = (size_t)row->instance,
				  .target = n->pod,
				  .range_name = range_name,
				  .current = alias_in_range(inst, range_name, secondary),
				  .blocker = -1};
		move_of_instance[row->instance] = (ssize_t)n_moves;
		n_moves++;
		continue;
next:
		if (ret < 0)
			goto cleanup;
	}

	/*
	 * Who holds each target now, on the same network. Only the pods alias of an instance
	 * being moved (or an orphan being freed) is released; anything else (another range of
	 * a moved instance, an instance outside the cluster, a Node that stays) makes the move
	 * impossible without touching what we must not touch.
	 */
	for (size_t m = 0; m < n_moves; m++) {
		struct move *mv = &moves[m];
		struct interval t = to_interval(&mv->target, 0, 0);
		struct holder_scan h = {.view = view,
					.a = a,
					.moves = moves,
					.move_of_instance = move_of_instance,
					.free_orphans = (flags & REPAIR_FREE_ORPHANS) != 0,
					.mv = mv,
					.mv_index = m,
					.blocker = -1};
		size_t node = a->rows[mv->row].node;

		t.net = network_id(&nets, view->instances[mv->instance].network);
		ivset_overlaps(&aliases, &t, scan_holder, &h);
		if (!h.bad && h.n_blockers <= 1) {
			mv->blocker = h.blocker;
			continue;
		}
		cidr_format(&mv->target, text, sizeof(text));
		if (h.bad)
			ret = refuse_holder(out, &h, node, text);
		else
			ret = add_refusal(
			    out, node,
			    "podCIDR %s overlaps %zu alias ranges of instances being moved; refusing to guess which to free first",
			    text, h.n_blockers);
		if (ret < 0)
			goto cleanup;
		mv->done = mv->refused = true;
	}
	/* A refused move keeps its alias: whoever waits for that range is refused too. */
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t m = 0; m < n_moves; m++) {
			struct move *mv = &moves[m];

			if (mv->done || mv->blocker < 0 || !moves[mv->blocker].refused)
				continue;
			ret = add_refusal(
			    out, a->rows[mv->row].node,
			    "podCIDR %s is held by instance %s, whose own move was refused",
			    cidr_format(&mv->target, text, sizeof(text)),
			    view->instances[moves[mv->blocker].instance].name);
			if (ret < 0)
				goto cleanup;
			mv->done = mv->refused = true;
			changed = true;
		}
	}

	/* Order: set a target only once its holder has cleared it; break cycles by clearing. */
	remaining = 0;
	for (size_t m = 0; m < n_moves; m++)
		if (!moves[m].done)
			remaining++;
	while (remaining) {
		bool progressed = false;

		for (size_t m = 0; m < n_moves; m++) {
			struct move *mv = &moves[m];
			const struct view_instance *inst = &view->instances[mv->instance];

			if (mv->done)
				continue;
			if (mv->blocker >= 0 && !moves[mv->blocker].cleared)
				continue;
			if (mv->current >= 0 && !mv->cleared) {
				const struct view_alias *cur = &inst->aliases[mv->current];

				ret =
				    add_step(out, STEP_CLEAR, mv, &cur->range, cur->range_name, a);
				if (ret < 0)
					goto cleanup;
				mv->cleared = true;
			}
			ret = add_step(out, STEP_SET, mv, &mv->target, mv->range_name, a);
			if (ret < 0)
				goto cleanup;
			mv->done = true;
			out->n_nodes_fixed++;
			remaining--;
			progressed = true;
		}
		if (progressed)
			continue;
		/*
		 * Every pending move waits on another: a swap or a longer cycle. Free one range;
		 * some pending move still holds its alias, or nothing would be waiting.
		 */
		progressed = false;
		for (size_t m = 0; m < n_moves && !progressed; m++) {
			struct move *mv = &moves[m];
			const struct view_alias *cur;

			if (mv->done || mv->cleared || mv->current < 0)
				continue;
			cur = &view->instances[mv->instance].aliases[mv->current];
			ret = add_step(out, STEP_CLEAR, mv, &cur->range, cur->range_name, a);
			if (ret < 0)
				goto cleanup;
			mv->cleared = true;
			progressed = true;
		}
		if (!progressed)
			break; /* cannot happen (a blocker holds its alias); never spin */
	}
cleanup:
	if (ret < 0)
		repair_plan_free(out);
	ivset_free(&aliases);
	free(nets.keys);
	free(moves);
	free(move_of_instance);
	return ret;
}

void repair_plan_free(struct repair_plan *p)
{
	free(p->steps);
	free(p->refusals);
	memset(p, 0, sizeof(*p));
}
