/* SPDX-License-Identifier: Apache-2.0 */
#include "provision/live.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/str.h"

struct list_job {
	enum rkind kind;
	char *filter;
	struct resource_set found;
	unsigned requests;
};

struct read_ctx {
	const char *project;
	const char *cluster;
	struct list_job jobs[RK_COUNT];
	/* second pass: members of instance groups */
	struct resource **groups;
	size_t ngroups;
};

struct list_arg {
	struct list_job *job;
	const char *project;
};

static int on_item(void *p, const char *scope, json_t *item)
{
	struct list_arg *a = p;
	const char *name = json_str(item, "name");
	struct resource *r;

	if (!name)
		return 0;
	r = resource_new(a->job->kind, scope ? scope : "global", name);
	if (!r)
		return -ENOMEM;
	r->body = json_incref(item);
	return rset_add(&a->job->found, r);
}

static int list_one(void *p, size_t index, struct gcp_compute *c, struct error *err)
{
	struct read_ctx *ctx = p;
	struct list_job *job = &ctx->jobs[index];
	struct list_arg a = {.job = job, .project = ctx->project};
	struct gcp_list_options opt = {.filter = job->filter};
	char path[256];

	if (rkinds[job->kind].aggregated)
		return gcp_compute_aggregated_list(c, rkinds[job->kind].collection, &opt, on_item,
						   &a, err);
	snprintf(path, sizeof(path), "projects/%s/global/%s", ctx->project,
		 rkinds[job->kind].collection);
	return gcp_compute_list(c, path, &opt, on_item, &a, err);
}

struct member_arg {
	struct resource *group;
	const char *project;
};

static int on_member(void *p, const char *scope, json_t *item)
{
	struct member_arg *a = p;
	char buf[256];
	const char *k = model_key_of(json_str(item, "instance"), a->project, buf, sizeof(buf));

	(void)scope;
	if (k)
		json_array_append_new(a->group->members, json_string(k));
	return 0;
}

static int members_one(void *p, size_t index, struct gcp_compute *c, struct error *err)
{
	struct read_ctx *ctx = p;
	struct resource *g = ctx->groups[index];
	struct member_arg a = {.group = g, .project = ctx->project};

	int ret;

	g->members = json_array();
	if (!g->members)
		return error_set(err, ENOMEM, "out of memory");
	ret = gcp_compute_list_group_instances(c, g->scope, g->name, on_member, &a, err);
	if (ret == -ENOENT) {
		/* Deleted since the list (a delete sent by a run before ours finished): gone. */
		json_decref(g->members);
		g->members = NULL;
		error_clear(err);
		return 0;
	}
	return ret;
}

/* "NAME|NAME-.*" and the extra names: RE2 alternatives, each matching the whole name. */
static char *name_filter(const struct cluster_spec *s, enum rkind kind)
{
	char *f = str_printf("name eq '%s|%s-.*", s->name, s->name), *n;

	for (int w = 0; f && kind == RK_INSTANCE && w < 2; w++) {
		const struct spec_pool *pool = w ? &s->workers : &s->control_plane;

		for (size_t i = 0; f && i < pool->nexisting; i++) {
			n = str_printf("%s|%s", f, pool->existing[i].name);
			free(f);
			f = n;
		}
	}
	if (f && kind == RK_IMAGE && s->image.name && !s->image.source_uri) {
		n = str_printf("%s|%s", f, s->image.name);
		free(f);
		f = n;
	}
	n = f ? str_printf("%s'", f) : NULL;
	free(f);
	return n;
}

static int resolve_existing(struct cluster_spec *s, struct live *l, struct error *err)
{
	for (int w = 0; w < 2; w++) {
		struct spec_pool *pool = w ? &s->workers : &s->control_plane;

		for (size_t i = 0; i < pool->nexisting; i++) {
			struct spec_existing *e = &pool->existing[i];
			char where[64];
			const char *zone = NULL;
			unsigned found = 0;

			snprintf(where, sizeof(where), "%s.existing[%zu]",
				 w ? "workers" : "controlPlane", i);
			for (int set = 0; set < 2; set++) {
				struct resource_set *rs = set ? &l->others : &l->owned;

				for (size_t j = 0; j < rs->n; j++) {
					struct resource *r = rs->items[j];

					if (r->kind != RK_INSTANCE || strcmp(r->name, e->name) != 0)
						continue;
					if (e->zone && strcmp(r->scope + 6, e->zone) != 0)
						continue;
					zone = r->scope + 6;
					found++;
				}
			}
			if (found == 0)
				return spec_error(s, where, err, ENOENT,
						  "instance %s not found%s%s in project %s",
						  e->name, e->zone ? " in zone " : "",
						  e->zone ? e->zone : "",
						  s->project ? s->project : "");
			if (found > 1)
				return spec_error(
				    s, where, err, EINVAL,
				    "instance %s exists in several zones: give its zone", e->name);
			if (strncmp(zone, s->region, strlen(s->region)) != 0)
				return spec_error(s, where, err, EINVAL,
						  "instance %s is in zone %s, outside region %s",
						  e->name, zone, s->region);
			if (!e->zone) {
				e->zone = strdup(zone);
				if (!e->zone)
					return error_set(err, ENOMEM, "out of memory");
			}
		}
	}
	return 0;
}

int live_read(struct runner *r, struct cluster_spec *s, const char *project, struct live *out,
	      struct error *err)
{
	struct read_ctx ctx = {.project = project, .cluster = s->name};
	struct runner_job jobs[RK_COUNT], *mjobs = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	memset(jobs, 0, sizeof(jobs));
	for (int k = 0; k < RK_COUNT; k++) {
		ctx.jobs[k].kind = (enum rkind)k;
		ctx.jobs[k].filter = name_filter(s, (enum rkind)k);
		if (!ctx.jobs[k].filter) {
			ret = error_set(err, ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	runner_heights(jobs, RK_COUNT);
	ret = runner_run(r, jobs, RK_COUNT, list_one, &ctx, err);
	if (ret < 0)
		goto cleanup;
	out->requests += RK_COUNT;
	for (int k = 0; k < RK_COUNT; k++) {
		struct resource_set *found = &ctx.jobs[k].found;

		for (size_t i = 0; i < found->n; i++) {
			struct resource *res = found->items[i];
			bool owned = model_owned(res->kind, res->body, s->name);

			found->items[i] = NULL;
			ret = rset_add(owned ? &out->owned : &out->others, res);
			if (ret < 0) {
				ret = error_set(err, ENOMEM, "out of memory");
				goto cleanup;
			}
			if (owned && res->kind == RK_INSTANCE_GROUP) {
				struct resource **g =
				    realloc(ctx.groups, (ctx.ngroups + 1) * sizeof(*g));

				if (!g) {
					ret = error_set(err, ENOMEM, "out of memory");
					goto cleanup;
				}
				ctx.groups = g;
				ctx.groups[ctx.ngroups++] = res;
			}
		}
		found->n = 0;
	}
	if (ctx.ngroups) {
		mjobs = calloc(ctx.ngroups, sizeof(*mjobs));
		if (!mjobs) {
			ret = error_set(err, ENOMEM, "out of memory");
			goto cleanup;
		}
		runner_heights(mjobs, ctx.ngroups);
		ret = runner_run(r, mjobs, ctx.ngroups, members_one, &ctx, err);
		if (ret < 0)
			goto cleanup;
		out->requests += (unsigned)ctx.ngroups;
		for (size_t i = 0; i < out->owned.n;) {
			struct resource *res = out->owned.items[i];

			if (res->kind == RK_INSTANCE_GROUP && !res->members) {
				resource_free(res);
				out->owned.items[i] = out->owned.items[--out->owned.n];
				continue;
			}
			i++;
		}
	}
	ret = resolve_existing(s, out, err);
cleanup:
	for (int k = 0; k < RK_COUNT; k++) {
		free(ctx.jobs[k].filter);
		rset_free(&ctx.jobs[k].found);
	}
	free(ctx.groups);
	free(mjobs);
	if (ret < 0)
		live_free(out);
	return ret;
}

void live_free(struct live *l)
{
	rset_free(&l->owned);
	rset_free(&l->others);
}

struct resource *live_find(const struct live *l, const char *key, bool *owned)
{
	struct resource *r = rset_find(&l->owned, key);

	if (owned)
		*owned = r != NULL;
	return r ? r : rset_find(&l->others, key);
}
