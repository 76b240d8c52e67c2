/* SPDX-License-Identifier: Apache-2.0 */
#include "provision/plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/str.h"

/* What the plan does to each key, while it is made. */
enum fate { F_KEEP = 0, F_CREATE, F_UPDATE, F_REPLACE, F_DELETE };

struct ref_list {
	char **keys;
	size_t n;
};

struct maker {
	const struct cluster_spec *s;
	const char *project;
	const struct resource_set *desired;
	const struct live *live;
	unsigned flags;
	struct plan *p;
	struct error *err;
	size_t cap_changes, cap_ops;
	/* per live owned resource (same index as live->owned): what it refers to */
	struct ref_list *refs;
	enum fate *live_fate;    /* per live owned resource */
	enum fate *desired_fate; /* per desired resource */
};

/* ---- small helpers ---- */

static int add_key(struct ref_list *l, const char *key)
{
	char **k;

	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->keys[i], key) == 0)
			return 0;
	k = realloc(l->keys, (l->n + 1) * sizeof(*k));
	if (!k)
		return -ENOMEM;
	l->keys = k;
	l->keys[l->n] = strdup(key);
	return l->keys[l->n++] ? 0 : -ENOMEM;
}

static bool has_key(const struct ref_list *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->keys[i], key) == 0)
			return true;
	return false;
}

static ssize_t owned_index(const struct maker *m, const char *key)
{
	for (size_t i = 0; i < m->live->owned.n; i++)
		if (strcmp(m->live->owned.items[i]->key, key) == 0)
			return (ssize_t)i;
	return -1;
}

static ssize_t desired_index(const struct maker *m, const char *key)
{
	for (size_t i = 0; i < m->desired->n; i++)
		if (strcmp(m->desired->items[i]->key, key) == 0)
			return (ssize_t)i;
	return -1;
}

/* Every string of v that is the URL of another owned live resource, into l. */
static int scan_refs(const struct maker *m, const json_t *v, const char *self, bool top,
		     enum rkind kind, struct ref_list *l)
{
	const char *key;
	json_t *x;
	size_t i;
	int ret = 0;

	switch (json_typeof(v)) {
	case JSON_STRING: {
		char buf[256];
		const char *k = model_key_of(json_string_value(v), m->project, buf, sizeof(buf));

		if (k && strcmp(k, self) != 0 && owned_index(m, k) >= 0)
			ret = add_key(l, k);
		break;
	}
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, key, x)
		{
			/* Back references, not uses: a network lists its subnetworks, an address
			 * its users (turned around below). */
			if (strcmp(key, "selfLink") == 0 || strcmp(key, "selfLinkWithId") == 0 ||
			    (top && strcmp(key, "users") == 0) ||
			    (top && kind == RK_NETWORK && strcmp(key, "subnetworks") == 0))
				continue;
			ret = scan_refs(m, x, self, false, kind, l);
			if (ret < 0)
				break;
		}
		break;
	case JSON_ARRAY:
		json_array_foreach(v, i, x)
		{
			ret = scan_refs(m, x, self, false, kind, l);
			if (ret < 0)
				break;
		}
		break;
	default:
		break;
	}
	return ret;
}

static int live_refs(struct maker *m)
{
	const struct resource_set *owned = &m->live->owned;
	int ret = 0;

	m->refs = calloc(owned->n ? owned->n : 1, sizeof(*m->refs));
	m->live_fate = calloc(owned->n ? owned->n : 1, sizeof(*m->live_fate));
	m->desired_fate = calloc(m->desired->n ? m->desired->n : 1, sizeof(*m->desired_fate));
	if (!m->refs || !m->live_fate || !m->desired_fate)
		return -ENOMEM;
	for (size_t i = 0; i < owned->n && ret == 0; i++)
		ret = scan_refs(m, owned->items[i]->body, owned->items[i]->key, true,
				owned->items[i]->kind, &m->refs[i]);
	/* An address's users refer to it (a forwarding rule may name it by IP only). */
	for (size_t i = 0; i < owned->n && ret == 0; i++) {
		const struct resource *a = owned->items[i];
		json_t *u;
		size_t j;

		if (a->kind != RK_ADDRESS)
			continue;
		json_array_foreach(json_object_get(a->body, "users"), j, u)
		{
			char buf[256];
			const char *k =
			    model_key_of(json_string_value(u), m->project, buf, sizeof(buf));
			ssize_t ui = k ? owned_index(m, k) : -1;

			if (ui >= 0 && (ret = add_key(&m->refs[ui], a->key)) < 0)
				break;
		}
	}
	return ret;
}

static struct change *new_change(struct maker *m, enum change_type type, enum rkind kind,
				 const char *key)
{
	struct plan *p = m->p;
	struct change *c;

	if (p->nchanges == m->cap_changes) {
		size_t cap = m->cap_changes ? m->cap_changes * 2 : 32;
		struct change *n = realloc(p->changes, cap * sizeof(*n));

		if (!n)
			return NULL;
		p->changes = n;
		m->cap_changes = cap;
	}
	c = &p->changes[p->nchanges++];
	memset(c, 0, sizeof(*c));
	c->type = type;
	c->kind = kind;
	snprintf(c->key, sizeof(c->key), "%s", key);
	return c;
}

static int add_field(struct change *c, const char *field, const json_t *old, const json_t *new,
		     bool replace)
{
	struct field_diff *f = realloc(c->fields, (c->nfields + 1) * sizeof(*f));

	if (!f)
		return -ENOMEM;
	c->fields = f;
	f = &c->fields[c->nfields++];
	memset(f, 0, sizeof(*f));
	snprintf(f->field, sizeof(f->field), "%s", field);
	f->old = old ? json_deep_copy(old) : NULL;
	f->new = new ? json_deep_copy(new) : NULL;
	f->replace = replace;
	return 0;
}

static struct op *new_op(struct maker *m, enum op_type type, const struct resource *r,
			 const char *verb, const char *method, json_t *body)
{
	struct plan *p = m->p;
	struct op *o;

	if (p->nops == m->cap_ops) {
		size_t cap = m->cap_ops ? m->cap_ops * 2 : 64;
		struct op *n = realloc(p->ops, cap * sizeof(*n));

		if (!n) {
			json_decref(body);
			return NULL;
		}
		p->ops = n;
		m->cap_ops = cap;
	}
	o = &p->ops[p->nops++];
	memset(o, 0, sizeof(*o));
	o->type = type;
	o->kind = r->kind;
	snprintf(o->key, sizeof(o->key), "%s", r->key);
	snprintf(o->verb, sizeof(o->verb), "%s", verb);
	snprintf(o->method, sizeof(o->method), "%s", method);
	if (type == OP_INSERT)
		snprintf(o->path, sizeof(o->path), "projects/%s/%s/%s", m->project, r->scope,
			 rkinds[r->kind].collection);
	else if (type == OP_DELETE || strcmp(verb, "patch") == 0)
		snprintf(o->path, sizeof(o->path), "projects/%s/%s", m->project, r->key);
	else
		snprintf(o->path, sizeof(o->path), "projects/%s/%s/%s", m->project, r->key, verb);
	o->body = body;
	return o;
}

/* ---- the body of each update ---- */

/* null for each member of live that desired lacks (a JSON merge patch removes those). */
static json_t *patch_of(const json_t *desired, const json_t *live, const char *const *fields)
{
	json_t *patch = json_object();

	for (size_t i = 0; patch && fields[i]; i++) {
		json_t *v = json_object_get(desired, fields[i]);

		if (v)
			json_object_set(patch, fields[i], v);
		else if (json_object_get(live, fields[i]))
			json_object_set_new(patch, fields[i], json_null());
	}
	return patch;
}

static int update_ops(struct maker *m, const struct resource *d, const struct resource *l,
		      const struct change *c)
{
	static const char *const fw_fields[] = {"allowed", "sourceRanges", "targetTags", "priority",
						NULL};
	static const char *const hc_fields[] = {"type",
						"checkIntervalSec",
						"timeoutSec",
						"healthyThreshold",
						"unhealthyThreshold",
						"tcpHealthCheck",
						"sslHealthCheck",
						"httpHealthCheck",
						"httpsHealthCheck",
						"http2HealthCheck",
						"grpcHealthCheck",
						NULL};
	static const char *const bs_fields[] = {"protocol",     "portName", "timeoutSec",
						"healthChecks", "backends", NULL};
	bool done[MU_SET_TAGS + 1] = {false};

	for (size_t i = 0; i < c->nfields; i++) {
		enum model_update u = strcmp(c->fields[i].field, "members") == 0
					  ? MU_REPLACE
					  : model_field_update(d->kind, c->fields[i].field);
		struct op *o = NULL;
		json_t *body;

		if (u == MU_REPLACE || done[u])
			continue;
		done[u] = true;
		switch (u) {
		case MU_PATCH:
			switch (d->kind) {
			case RK_SUBNETWORK:
				body = json_pack("{s:O, s:O?}", "secondaryIpRanges",
						 json_object_get(d->body, "secondaryIpRanges"),
						 "fingerprint",
						 json_object_get(l->body, "fingerprint"));
				o = new_op(m, OP_CALL, d, "patch", "PATCH", body);
				if (o)
					snprintf(o->fingerprint, sizeof(o->fingerprint),
						 "fingerprint");
				break;
			case RK_ROUTER:
				o = new_op(
				    m, OP_CALL, d, "patch", "PATCH",
				    json_pack("{s:O}", "nats", json_object_get(d->body, "nats")));
				break;
			case RK_FIREWALL:
				o = new_op(m, OP_CALL, d, "patch", "PATCH",
					   patch_of(d->body, l->body, fw_fields));
				break;
			case RK_HEALTH_CHECK:
				o = new_op(m, OP_CALL, d, "patch", "PATCH",
					   patch_of(d->body, l->body, hc_fields));
				break;
			case RK_BACKEND_SERVICE:
				body = patch_of(d->body, l->body, bs_fields);
				if (body)
					json_object_set(body, "fingerprint",
							json_object_get(l->body, "fingerprint"));
				o = new_op(m, OP_CALL, d, "patch", "PATCH", body);
				if (o)
					snprintf(o->fingerprint, sizeof(o->fingerprint),
						 "fingerprint");
				break;
			default:
				break;
			}
			break;
		case MU_NAMED_PORTS:
			o = new_op(m, OP_CALL, d, "setNamedPorts", "POST",
				   json_pack("{s:O, s:O?}", "namedPorts",
					     json_object_get(d->body, "namedPorts"), "fingerprint",
					     json_object_get(l->body, "fingerprint")));
			if (o)
				snprintf(o->fingerprint, sizeof(o->fingerprint), "fingerprint");
			break;
		case MU_SET_SERVICE:
			o = new_op(
			    m, OP_CALL, d, "setBackendService", "POST",
			    json_pack("{s:O}", "service", json_object_get(d->body, "service")));
			break;
		case MU_PROXY_HEADER:
			o = new_op(m, OP_CALL, d, "setProxyHeader", "POST",
				   json_pack("{s:O}", "proxyHeader",
					     json_object_get(d->body, "proxyHeader")));
			break;
		case MU_SET_METADATA:
			o = new_op(m, OP_CALL, d, "setMetadata", "POST",
				   json_pack("{s:O, s:O?}", "items",
					     json_path(d->body, "metadata.items") ?: json_array(),
					     "fingerprint",
					     json_path(l->body, "metadata.fingerprint")));
			if (o)
				snprintf(o->fingerprint, sizeof(o->fingerprint),
					 "metadata.fingerprint");
			break;
		case MU_ADD_POD_RANGE: {
			json_t *nic =
			    json_array_get(json_object_get(l->body, "networkInterfaces"), 0);
			json_t *ranges =
			    json_deep_copy(json_object_get(nic, "aliasIpRanges")) ?: json_array();

			json_array_append_new(ranges, json_pack("{s:s, s:s}", "subnetworkRangeName",
								"pods", "ipCidrRange", "/24"));
			o = new_op(m, OP_CALL, d, "updateNetworkInterface", "PATCH",
				   json_pack("{s:o, s:O?}", "aliasIpRanges", ranges, "fingerprint",
					     json_object_get(nic, "fingerprint")));
			if (o) {
				snprintf(
				    o->path, sizeof(o->path),
				    "projects/%s/%s/updateNetworkInterface?networkInterface=nic0",
				    m->project, d->key);
				snprintf(o->fingerprint, sizeof(o->fingerprint),
					 "networkInterfaces.0.fingerprint");
			}
			break;
		}
		case MU_SET_LABELS:
			o = new_op(m, OP_CALL, d, "setLabels", "POST",
				   json_pack("{s:O, s:O?}", "labels",
					     json_object_get(d->body, "labels") ?: json_object(),
					     "labelFingerprint",
					     json_object_get(l->body, "labelFingerprint")));
			if (o)
				snprintf(o->fingerprint, sizeof(o->fingerprint),
					 "labelFingerprint");
			break;
		case MU_SET_TAGS:
			o = new_op(m, OP_CALL, d, "setTags", "POST",
				   json_pack("{s:O, s:O?}", "items",
					     json_path(d->body, "tags.items") ?: json_array(),
					     "fingerprint",
					     json_path(l->body, "tags.fingerprint")));
			if (o)
				snprintf(o->fingerprint, sizeof(o->fingerprint),
					 "tags.fingerprint");
			break;
		default:
			break;
		}
		if (!o)
			return -ENOMEM;
	}
	return 0;
}

/* ---- members of instance groups ---- */

static bool instance_going(const struct maker *m, const char *key)
{
	ssize_t i = owned_index(m, key);

	return i >= 0 && (m->live_fate[i] == F_DELETE || m->live_fate[i] == F_REPLACE);
}

static json_t *members_json(const struct ref_list *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->keys[i]));
	return a;
}

static int member_ops(struct maker *m, size_t di, struct change **change)
{
	const struct resource *d = m->desired->items[di];
	ssize_t li = owned_index(m, d->key);
	const struct resource *l = li >= 0 ? m->live->owned.items[li] : NULL;
	struct ref_list cur = {0}, add = {0}, del = {0};
	json_t *k;
	size_t i;
	int ret = 0;

	if (l && m->desired_fate[di] != F_REPLACE)
		json_array_foreach(l->members, i,
				   k) if (!instance_going(m, json_string_value(k)) &&
					  (ret = add_key(&cur, json_string_value(k))) <
					      0) goto cleanup;
	json_array_foreach(d->members, i, k)
	{
		if (!has_key(&cur, json_string_value(k)) &&
		    (ret = add_key(&add, json_string_value(k))) < 0)
			goto cleanup;
	}
	for (i = 0; i < cur.n; i++) {
		bool wanted = false;
		json_t *w;
		size_t j;

		json_array_foreach(d->members, j, w) wanted |=
		    strcmp(json_string_value(w), cur.keys[i]) == 0;
		if (!wanted && (ret = add_key(&del, cur.keys[i])) < 0)
			goto cleanup;
	}
	for (int pass = 0; pass < 2; pass++) {
		struct ref_list *list = pass ? &del : &add;
		json_t *refs;
		struct op *o;

		if (!list->n)
			continue;
		refs = json_array();
		for (i = 0; i < list->n; i++)
			json_array_append_new(
			    refs,
			    json_pack("{s:o}", "instance",
				      json_sprintf("projects/%s/%s", m->project, list->keys[i])));
		o = new_op(m, OP_CALL, d, pass ? "removeInstances" : "addInstances", "POST",
			   json_pack("{s:o}", "instances", refs));
		if (!o) {
			ret = -ENOMEM;
			goto cleanup;
		}
	}
	if ((add.n || del.n) && l && m->desired_fate[di] != F_CREATE &&
	    m->desired_fate[di] != F_REPLACE) {
		json_t *old = members_json(&cur), *new = json_deep_copy(d->members);

		if (!*change) {
			*change = new_change(m, CH_UPDATE, d->kind, d->key);
			m->desired_fate[di] = F_UPDATE;
		}
		ret = *change ? add_field(*change, "members", old, new, false) : -ENOMEM;
		json_decref(old);
		json_decref(new);
	}
cleanup:
	for (i = 0; i < cur.n; i++)
		free(cur.keys[i]);
	for (i = 0; i < add.n; i++)
		free(add.keys[i]);
	for (i = 0; i < del.n; i++)
		free(del.keys[i]);
	free(cur.keys);
	free(add.keys);
	free(del.keys);
	return ret;
}

/* ---- the graph ---- */

static int edge(struct plan *p, size_t from, size_t to)
{
	struct runner_job *j = &p->jobs[to];
	size_t *d;

	if (from == to)
		return 0;
	for (size_t i = 0; i < j->ndeps; i++)
		if (j->deps[i] == from)
			return 0;
	d = realloc(j->deps, (j->ndeps + 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	j->deps = d;
	j->deps[j->ndeps++] = from;
	return 0;
}

static ssize_t find_op(const struct plan *p, enum op_type type, const char *key)
{
	for (size_t i = 0; i < p->nops; i++)
		if (p->ops[i].type == type && strcmp(p->ops[i].key, key) == 0)
			return (ssize_t)i;
	return -1;
}

static int build_graph(struct maker *m)
{
	struct plan *p = m->p;
	int ret = 0;

	p->jobs = calloc(p->nops ? p->nops : 1, sizeof(*p->jobs));
	if (!p->jobs)
		return -ENOMEM;
	for (size_t i = 0; i < p->nops && ret == 0; i++) {
		struct op *o = &p->ops[i];
		ssize_t di = desired_index(m, o->key), li = owned_index(m, o->key);

		/* One resource's operations in the order they were planned. */
		for (size_t j = i; j-- > 0;) {
			if (strcmp(p->ops[j].key, o->key) == 0) {
				ret = edge(p, j, i);
				break;
			}
		}
		/* Created after what it refers to. */
		if (ret == 0 && di >= 0 && o->type != OP_DELETE) {
			const struct resource *d = m->desired->items[di];

			for (size_t n = 0; n < d->nneeds && ret == 0; n++) {
				ssize_t ins = find_op(p, OP_INSERT, d->needs[n]);

				if (ins >= 0)
					ret = edge(p, (size_t)ins, i);
			}
		}
		/* Members join once they exist. */
		if (ret == 0 && strcmp(o->verb, "addInstances") == 0) {
			json_t *ref;
			size_t j;

			json_array_foreach(json_object_get(o->body, "instances"), j, ref)
			{
				char buf[256];
				const char *k = model_key_of(json_str(ref, "instance"), m->project,
							     buf, sizeof(buf));
				ssize_t ins = k ? find_op(p, OP_INSERT, k) : -1;

				if (ins >= 0 && (ret = edge(p, (size_t)ins, i)) < 0)
					break;
			}
		}
		/* Deleted after what refers to it lets go: deleted, or updated. */
		if (ret == 0 && o->type == OP_DELETE && li >= 0) {
			for (size_t y = 0; y < m->live->owned.n && ret == 0; y++) {
				const char *ykey = m->live->owned.items[y]->key;

				if (!has_key(&m->refs[y], o->key))
					continue;
				for (size_t j = 0; j < p->nops && ret == 0; j++) {
					const struct op *yo = &p->ops[j];

					if (strcmp(yo->key, ykey) != 0)
						continue;
					if (m->live_fate[y] == F_DELETE ||
						    m->live_fate[y] == F_REPLACE
						? yo->type == OP_DELETE
						: yo->type == OP_CALL)
						ret = edge(p, j, i);
				}
			}
		}
	}
	if (ret < 0)
		return ret;
	p->critical_path = runner_heights(p->jobs, p->nops);
	return p->critical_path < 0 ? p->critical_path : 0;
}

/* ---- the diff ---- */

static int check_desired(struct maker *m)
{
	const struct cluster_spec *s = m->s;
	unsigned problems = 0;
	struct error first = {0};

	for (size_t i = 0; i < m->desired->n; i++) {
		const struct resource *d = m->desired->items[i];
		bool owned;
		struct resource *l = live_find(m->live, d->key, &owned);
		struct error e = {0};

		if (d->existing && !l)
			spec_error(s, d->where, &e, ENOENT, "%s %s not found in project %s",
				   rkinds[d->kind].label, d->name, m->project);
		else if (!d->existing && l && !owned)
			error_set(
			    &e, EEXIST,
			    "%s %s exists and is not talos-gcp's for cluster %s (no " MARKER_LABEL
			    "=%s marker): refusing to touch it; delete or rename "
			    "it, or choose another cluster name",
			    rkinds[d->kind].label, d->key, s->name, s->name);
		if (!e.code)
			continue;
		if (!problems++)
			first = e;
		else
			log_error("%s", e.msg);
	}
	if (!problems)
		return 0;
	*m->err = first;
	if (problems > 1)
		error_prefix(m->err, "%u problems; the first", problems);
	return -first.code;
}

static int diff(struct maker *m)
{
	const struct resource_set *desired = m->desired;
	const struct resource_set *owned = &m->live->owned;
	struct change **changes = calloc(desired->n ? desired->n : 1, sizeof(*changes));
	bool grew;
	int ret = 0;

	if (!changes)
		return -ENOMEM;
	/* Fields of each desired resource against its live self. */
	for (size_t i = 0; i < desired->n && ret == 0; i++) {
		const struct resource *d = desired->items[i];
		ssize_t li = owned_index(m, d->key);
		json_t *dv, *lv;
		const char *field;
		json_t *v;

		if (d->existing)
			continue;
		if (li < 0) {
			m->desired_fate[i] = F_CREATE;
			continue;
		}
		dv = model_view(d, true, owned, m->project);
		lv = model_view(owned->items[li], false, owned, m->project);
		json_object_foreach(dv, field, v)
		{
			json_t *lvv = json_object_get(lv, field);
			bool replace;

			if (lvv && json_equal(v, lvv))
				continue;
			replace = model_field_update(d->kind, field) == MU_REPLACE;
			if (!changes[i]) {
				changes[i] = new_change(m, CH_UPDATE, d->kind, d->key);
				if (!changes[i]) {
					ret = -ENOMEM;
					break;
				}
				m->desired_fate[i] = F_UPDATE;
			}
			ret = add_field(changes[i], field, lvv, v, replace);
			if (ret < 0)
				break;
			if (replace) {
				changes[i]->type = CH_REPLACE;
				m->desired_fate[i] = F_REPLACE;
				m->live_fate[li] = F_REPLACE;
			}
		}
		json_decref(dv);
		json_decref(lv);
	}
	/* Owned resources nothing wants any more. */
	for (size_t i = 0; i < owned->n && ret == 0; i++) {
		const struct resource *l = owned->items[i];

		if (desired_index(m, l->key) >= 0)
			continue;
		if ((m->flags & PLAN_KEEP_NETWORK) &&
		    (l->kind == RK_NETWORK || l->kind == RK_SUBNETWORK))
			continue;
		m->live_fate[i] = F_DELETE;
	}
	/* A replaced resource takes along the live ones that refer to it. */
	do {
		grew = false;
		for (size_t y = 0; y < owned->n && ret == 0; y++) {
			ssize_t di;

			if (m->live_fate[y] == F_DELETE || m->live_fate[y] == F_REPLACE)
				continue;
			for (size_t r = 0; r < m->refs[y].n; r++) {
				ssize_t x = owned_index(m, m->refs[y].keys[r]);

				if (x < 0 || m->live_fate[x] != F_REPLACE)
					continue;
				di = desired_index(m, owned->items[y]->key);
				m->live_fate[y] = F_REPLACE;
				if (di >= 0) {
					m->desired_fate[di] = F_REPLACE;
					if (!changes[di])
						changes[di] =
						    new_change(m, CH_REPLACE, owned->items[y]->kind,
							       owned->items[y]->key);
					if (!changes[di]) {
						ret = -ENOMEM;
						break;
					}
					changes[di]->type = CH_REPLACE;
					snprintf(changes[di]->because, sizeof(changes[di]->because),
						 "%s", owned->items[x]->key);
				}
				grew = true;
				break;
			}
		}
	} while (grew && ret == 0);
	if (ret < 0)
		goto cleanup;
	/* Operations, resource by resource: delete (replace), insert, then updates. */
	for (size_t i = 0; i < desired->n && ret == 0; i++) {
		const struct resource *d = desired->items[i];
		ssize_t li = owned_index(m, d->key);

		if (d->existing)
			continue;
		switch (m->desired_fate[i]) {
		case F_CREATE:
			if (!new_change(m, CH_CREATE, d->kind, d->key) ||
			    !new_op(m, OP_INSERT, d, "insert", "POST", json_deep_copy(d->body)))
				ret = -ENOMEM;
			break;
		case F_REPLACE:
			if (!new_op(m, OP_DELETE, d, "delete", "DELETE", NULL) ||
			    !new_op(m, OP_INSERT, d, "insert", "POST", json_deep_copy(d->body)))
				ret = -ENOMEM;
			break;
		case F_UPDATE:
			ret = update_ops(m, d, owned->items[li], changes[i]);
			break;
		default:
			break;
		}
		if (ret == 0 && d->kind == RK_INSTANCE_GROUP)
			ret = member_ops(m, i, &changes[i]);
	}
	for (size_t i = 0; i < owned->n && ret == 0; i++) {
		const struct resource *l = owned->items[i];

		if (m->live_fate[i] != F_DELETE)
			continue;
		if (!new_change(m, CH_DELETE, l->kind, l->key) ||
		    !new_op(m, OP_DELETE, l, "delete", "DELETE", NULL))
			ret = -ENOMEM;
	}
cleanup:
	free(changes);
	return ret;
}

int plan_make(const struct cluster_spec *s, const char *project, const struct resource_set *desired,
	      const struct live *live, unsigned flags, struct plan *out, struct error *err)
{
	struct resource_set none = {0};
	struct maker m = {.s = s,
			  .project = project,
			  .desired = desired,
			  .live = live,
			  .flags = flags,
			  .p = out,
			  .err = err};
	int ret;

	memset(out, 0, sizeof(*out));
	out->cluster = strdup(s->name);
	out->project = strdup(project);
	if (!out->cluster || !out->project)
		return error_set(err, ENOMEM, "out of memory");
	if (flags & PLAN_DESTROY) {
		/* down: nothing is wanted; kept ones are neither wanted nor deleted. */
		m.desired = &none;
	} else {
		ret = check_desired(&m);
		if (ret < 0)
			goto fail;
	}
	ret = live_refs(&m);
	if (ret == 0)
		ret = diff(&m);
	if (ret == 0)
		ret = build_graph(&m);
	if (ret == -ELOOP) {
		ret = error_set(err, ELOOP, "internal error: the plan's operations form a cycle");
		goto fail;
	}
	if (ret < 0) {
		ret = error_set(err, -ret, "cannot make the plan: %s", strerror(-ret));
		goto fail;
	}
	for (size_t i = 0; i < out->nchanges; i++) {
		switch (out->changes[i].type) {
		case CH_CREATE:
			out->create++;
			break;
		case CH_UPDATE:
			out->update++;
			break;
		case CH_REPLACE:
			out->replace++;
			break;
		case CH_DELETE:
			out->destroy++;
			break;
		}
	}
	goto cleanup;
fail:
	plan_free(out);
cleanup:
	for (size_t i = 0; m.refs && i < live->owned.n; i++) {
		for (size_t j = 0; j < m.refs[i].n; j++)
			free(m.refs[i].keys[j]);
		free(m.refs[i].keys);
	}
	free(m.refs);
	free(m.live_fate);
	free(m.desired_fate);
	return ret;
}

void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->nchanges; i++) {
		for (size_t j = 0; j < p->changes[i].nfields; j++) {
			json_decref(p->changes[i].fields[j].old);
			json_decref(p->changes[i].fields[j].new);
		}
		free(p->changes[i].fields);
	}
	for (size_t i = 0; i < p->nops; i++) {
		json_decref(p->ops[i].body);
		if (p->jobs)
			free(p->jobs[i].deps);
	}
	free(p->changes);
	free(p->ops);
	free(p->jobs);
	free(p->cluster);
	free(p->project);
	memset(p, 0, sizeof(*p));
}

/* ---- printing ---- */

const char *plan_op_label(const struct op *op, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", rkinds[op->kind].label, op->key);
	return buf;
}

static const char *symbol(enum change_type t)
{
	switch (t) {
	case CH_CREATE:
		return "+";
	case CH_UPDATE:
		return "~";
	case CH_REPLACE:
		return "-/+";
	default:
		return "-";
	}
}

static const char *action(enum change_type t)
{
	switch (t) {
	case CH_CREATE:
		return "create";
	case CH_UPDATE:
		return "update";
	case CH_REPLACE:
		return "replace";
	default:
		return "delete";
	}
}

static void print_value(FILE *f, const json_t *v)
{
	char *text;

	if (!v || json_is_null(v)) {
		fputs("(none)", f);
		return;
	}
	text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	fputs(text ? text : "?", f);
	free(text);
}

void plan_print_text(const struct plan *p, FILE *f, bool destroy)
{
	if (p->nchanges == 0) {
		fprintf(f, "No changes: cluster %s in project %s is as its spec says.\n",
			p->cluster, p->project);
		return;
	}
	fprintf(f, "%s of cluster %s in project %s:\n\n", destroy ? "Deletion plan" : "Plan",
		p->cluster, p->project);
	for (size_t i = 0; i < p->nchanges; i++) {
		const struct change *c = &p->changes[i];

		fprintf(f, "  %-3s %s %s", symbol(c->type), rkinds[c->kind].label, c->key);
		if (c->type == CH_REPLACE) {
			const char *why = NULL;

			for (size_t j = 0; j < c->nfields && !why; j++)
				if (c->fields[j].replace)
					why = c->fields[j].field;
			if (why)
				fprintf(f, " (%s forces replacement)", why);
			else if (c->because[0])
				fprintf(f, " (it uses %s, which is replaced)", c->because);
		}
		fputc('\n', f);
		for (size_t j = 0; j < c->nfields; j++) {
			fprintf(f, "        %s: ", c->fields[j].field);
			print_value(f, c->fields[j].old);
			fputs(" -> ", f);
			print_value(f, c->fields[j].new);
			fputc('\n', f);
		}
	}
	fprintf(f,
		"\nPlan: %zu to create, %zu to update, %zu to replace, %zu to delete "
		"(%zu operations, critical path %d).\n",
		p->create, p->update, p->replace, p->destroy, p->nops, p->critical_path);
}

int plan_print_json(const struct plan *p, FILE *f)
{
	json_t *doc, *changes = json_array(), *ops = json_array();
	int ret;

	for (size_t i = 0; i < p->nchanges; i++) {
		const struct change *c = &p->changes[i];
		json_t *fields = json_array();
		const char *slash = strrchr(c->key, '/');

		for (size_t j = 0; j < c->nfields; j++)
			json_array_append_new(
			    fields, json_pack("{s:s, s:O?, s:O?, s:b}", "field", c->fields[j].field,
					      "old", c->fields[j].old, "new", c->fields[j].new,
					      "forcesReplacement", c->fields[j].replace));
		json_array_append_new(
		    changes, json_pack("{s:s, s:s, s:s, s:s, s:o}", "action", action(c->type),
				       "kind", rkinds[c->kind].collection, "key", c->key, "name",
				       slash ? slash + 1 : c->key, "fields", fields));
		if (c->because[0])
			json_object_set_new(json_array_get(changes, json_array_size(changes) - 1),
					    "replacedWith", json_string(c->because));
	}
	for (size_t i = 0; i < p->nops; i++) {
		const struct op *o = &p->ops[i];
		json_t *after = json_array();

		for (size_t d = 0; p->jobs && d < p->jobs[i].ndeps; d++)
			json_array_append_new(after, json_integer((json_int_t)p->jobs[i].deps[d]));
		json_array_append_new(ops, json_pack("{s:s, s:s, s:s, s:s, s:o}", "key", o->key,
						     "verb", o->verb, "method", o->method, "path",
						     o->path, "after", after));
	}
	doc = json_pack("{s:s, s:s, s:o, s:o, s:{s:i, s:i, s:i, s:i, s:i, s:i}}", "cluster",
			p->cluster, "project", p->project, "changes", changes, "operations", ops,
			"summary", "create", (int)p->create, "update", (int)p->update, "replace",
			(int)p->replace, "delete", (int)p->destroy, "operations", (int)p->nops,
			"criticalPath", p->critical_path);
	if (!doc)
		return -ENOMEM;
	ret = json_dumpf(doc, f, JSON_INDENT(2));
	fputc('\n', f);
	json_decref(doc);
	return ret < 0 ? -EIO : 0;
}
