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
	int family;
	unsigned __int128 first, last;
	size_t owner; /* node or instance index */
	size_t sub;   /* alias index for instance intervals */
};

static struct interval to_interval(const struct cidr *c, size_t owner, size_t sub)
{
	unsigned bits = cidr_max_prefix(c), n = bits / 8;
	unsigned __int128 v = 0, hostmask;
	struct interval iv;

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

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->first != b->first)
		return a->first < b->first ? -1 : 1;
	if (a->last != b->last)
		return a->last < b->last ? -1 : 1;
	return a->owner < b->owner ? -1 : a->owner > b->owner;
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
	out->aligned = true;
	for (size_t i = 0; i < view->n_nodes; i++)
		if (rows[i].status != ALIGN_OK)
			out->aligned = false;
	rows = NULL;
cleanup:
	free(rows);
	free(pods);
	free(order);
	return ret;
}

void alignment_free(struct alignment *a)
{
	free(a->rows);
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
	for (size_t k = 0; k < in->n_aliases; k++) {
		free(in->aliases[k].text);
		free(in->aliases[k].range_name);
	}
	free(in->aliases);
	memset(in, 0, sizeof(*in));
}

void view_alias_remove_first(struct view_instance *in)
{
	if (!in->n_aliases)
		return;
	free(in->aliases[0].text);
	free(in->aliases[0].range_name);
	memmove(in->aliases, in->aliases + 1, (in->n_aliases - 1) * sizeof(*in->aliases));
	in->n_aliases--;
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
	bool has_current; /* aliases[0] present: must be cleared first */
	ssize_t blocker;  /* move index whose current alias overlaps our target, -1 if none */
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

static int add_step(struct repair_plan *p, enum repair_step_kind kind, const struct move *m,
		    const struct cidr *range, const struct alignment *a)
{
	struct repair_step *s = realloc(p->steps, (p->n_steps + 1) * sizeof(*s));

	if (!s)
		return -ENOMEM;
	p->steps = s;
	s = &p->steps[p->n_steps++];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->instance = m->instance;
	s->node = a->rows[m->row].node;
	s->range = *range;
	if (m->range_name)
		snprintf(s->range_name, sizeof(s->range_name), "%s", m->range_name);
	return 0;
}

/* The subnet range of nic0 that contains target: its name ("" = primary), or NULL. */
static const char *range_for(const struct cluster_view *view, const struct view_instance *inst,
			     const struct cidr *target, bool *subnet_known)
{
	const struct view_subnet *s = view_find_subnet(view, inst->subnetwork);

	*subnet_known = s != NULL;
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n_secondary; i++)
		if (cidr_contains(&s->secondary[i].range, target))
			return s->secondary[i].name;
	return NULL;
}

/*
 * Alias intervals (sorted; GCP keeps them disjoint) overlapping iv: they form one run
 * ending at the returned index. Returns how many (0 when none); *last is the run's end.
 */
static size_t find_overlaps(const struct interval *ivs, size_t n, const struct interval *iv,
			    size_t *last)
{
	size_t lo = 0, hi = n, count = 0;

	/* One past the last interval whose first <= iv->last. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ivs[mid].family < iv->family ||
		    (ivs[mid].family == iv->family && ivs[mid].first <= iv->last))
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = lo; k-- > 0;) {
		if (ivs[k].family != iv->family || ivs[k].last < iv->first)
			break;
		if (!count)
			*last = k;
		count++;
	}
	return count;
}

int repair_plan_gcp(const struct cluster_view *view, const struct alignment *a,
		    struct repair_plan *out)
{
	struct interval *aliases = NULL;
	struct move *moves = NULL;
	ssize_t *move_of_instance = NULL;
	size_t n_aliases = 0, n_moves = 0, remaining;
	char text[CIDR_STRLEN];
	int ret = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < view->n_instances; i++)
		n_aliases += view->instances[i].n_aliases;
	aliases = calloc(n_aliases ? n_aliases : 1, sizeof(*aliases));
	moves = calloc(a->n_rows ? a->n_rows : 1, sizeof(*moves));
	move_of_instance = malloc((view->n_instances ? view->n_instances : 1) * sizeof(ssize_t));
	if (!aliases || !moves || !move_of_instance) {
		ret = -ENOMEM;
		goto cleanup;
	}
	n_aliases = 0;
	for (size_t i = 0; i < view->n_instances; i++) {
		move_of_instance[i] = -1;
		for (size_t k = 0; k < view->instances[i].n_aliases; k++)
			aliases[n_aliases++] =
			    to_interval(&view->instances[i].aliases[k].range, i, k);
	}
	qsort(aliases, n_aliases, sizeof(*aliases), interval_cmp);

	/* Which rows can be fixed by moving an alias; refuse the others with a reason. */
	for (size_t r = 0; r < a->n_rows; r++) {
		const struct align_row *row = &a->rows[r];
		const struct view_node *n = &view->nodes[row->node];
		const struct view_instance *inst;
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
		range_name = range_for(view, inst, &n->pod, &subnet_known);
		if (!range_name) {
			ret = add_refusal(
			    out, row->node,
			    subnet_known
				? "podCIDR %s lies outside every secondary range of the instance's subnetwork; moving the alias there is impossible"
				: "podCIDR %s: the instance's subnetwork could not be read, so the target range is unknown",
			    n->pod_cidr);
			goto next;
		}
		moves[n_moves] = (struct move){.row = r,
					       .instance = (size_t)row->instance,
					       .target = n->pod,
					       .range_name = range_name,
					       .has_current = inst->n_aliases > 0,
					       .blocker = -1};
		move_of_instance[row->instance] = (ssize_t)n_moves;
		n_moves++;
		continue;
next:
		if (ret < 0)
			goto cleanup;
	}

	/*
	 * Who holds each target now. Only the first alias of an instance being moved is
	 * released; anything else (another range of a moved instance, an instance outside the
	 * cluster, a Node that stays) makes the move impossible without touching what we
	 * must not touch.
	 */
	for (size_t m = 0; m < n_moves; m++) {
		struct move *mv = &moves[m];
		struct interval t = to_interval(&mv->target, 0, 0);
		size_t k = 0, count = find_overlaps(aliases, n_aliases, &t, &k);
		size_t node = a->rows[mv->row].node, owner;
		const struct view_instance *holder;
		const char *holder_node = NULL;
		ssize_t hm;

		if (count == 0)
			continue;
		cidr_format(&mv->target, text, sizeof(text));
		owner = aliases[k].owner;
		holder = &view->instances[owner];
		hm = move_of_instance[owner];
		if (count == 1 && hm >= 0 && aliases[k].sub == 0) {
			if ((size_t)hm != m)
				mv->blocker = hm;
			continue;
		}
		for (size_t r = 0; r < a->n_rows; r++)
			if (a->rows[r].instance == (ssize_t)owner)
				holder_node = view->nodes[a->rows[r].node].name;
		if (count > 1)
			ret = add_refusal(
			    out, node,
			    "podCIDR %s overlaps %zu alias ranges; refusing to guess which to free",
			    text, count);
		else if (owner == mv->instance)
			ret = add_refusal(
			    out, node,
			    "podCIDR %s overlaps another alias range (%s) of the same instance",
			    text, holder->aliases[aliases[k].sub].text);
		else if (!holder_node)
			ret = add_refusal(
			    out, node,
			    "podCIDR %s is held by instance %s (zone %s), which is not a node of this cluster; refusing to touch it",
			    text, holder->name, holder->zone);
		else
			ret = add_refusal(
			    out, node,
			    "podCIDR %s is held by instance %s of Node %s, which is not being moved",
			    text, holder->name, holder_node);
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
			if (mv->has_current && !mv->cleared) {
				ret = add_step(out, STEP_CLEAR, mv, &inst->aliases[0].range, a);
				if (ret < 0)
					goto cleanup;
				mv->cleared = true;
			}
			ret = add_step(out, STEP_SET, mv, &mv->target, a);
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
		for (size_t m = 0; m < n_moves; m++) {
			struct move *mv = &moves[m];

			if (mv->done || mv->cleared || !mv->has_current)
				continue;
			ret = add_step(out, STEP_CLEAR, mv,
				       &view->instances[mv->instance].aliases[0].range, a);
			if (ret < 0)
				goto cleanup;
			mv->cleared = true;
			break;
		}
	}
cleanup:
	if (ret < 0)
		repair_plan_free(out);
	free(aliases);
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
