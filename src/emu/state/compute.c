/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Compute side of --state (see state.h): every collection's items, the pending
 * Operations, the requestIds, and the small singletons (URL base, instance group members,
 * the NAT counter, the credentials of auth/auth.c). The rows are the members of
 * emu_compute_dump()'s document, so emu_compute_load() reads them back unchanged.
 *
 *   compute_resources   "COLLECTION/SCOPE/NAME" -> {"scope","name","pending","resource"}
 *   compute_pending     "SCOPE/NAME"            -> {"scope","name","mutation"}
 *   compute_request_ids REQUEST_ID              -> [SCOPE, OPERATION]
 *   compute_meta        base, instanceGroupMembers, natCounter, auth
 *
 * Any collection (coll_add, coll_remove, item_changed) is persisted with no code of its own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"

static int resources_fetch(struct emu *emu, const char *key, struct emu_state_value *out);
static int resources_foreach(struct emu *emu, emu_state_emit_fn emit, void *ctx);
static int pending_foreach(struct emu *emu, emu_state_emit_fn emit, void *ctx);
static int request_ids_foreach(struct emu *emu, emu_state_emit_fn emit, void *ctx);
static int meta_fetch(struct emu *emu, const char *key, struct emu_state_value *out);

static const struct emu_state_table resources_table = {
    .name = "compute_resources",
    .part = "compute",
    .field = "collections",
    .shape = EMU_STATE_GROUPS,
    .fetch = resources_fetch,
    .foreach = resources_foreach,
};

static const struct emu_state_table pending_table = {
    .name = "compute_pending",
    .part = "compute",
    .field = "pending",
    .shape = EMU_STATE_LIST,
    .foreach = pending_foreach,
};

static const struct emu_state_table request_ids_table = {
    .name = "compute_request_ids",
    .part = "compute",
    .field = "requestIds",
    .shape = EMU_STATE_MAP,
    .foreach = request_ids_foreach,
};

static const char *const meta_members[] = {"base", "instanceGroupMembers", "natCounter", "auth",
					   NULL};

static const struct emu_state_table meta_table = {
    .name = "compute_meta",
    .part = "compute",
    .shape = EMU_STATE_MEMBERS,
    .members = meta_members,
    .fetch = meta_fetch,
};

static const struct emu_state_table *const tables[] = {&resources_table, &pending_table,
						       &request_ids_table, &meta_table, NULL};

int compute_state_register(struct compute *c)
{
	return emu_state_register(c->emu, tables);
}

void compute_state_loaded(struct compute *c)
{
	emu_state_rewrite(c->emu, tables);
}

/* ---- resources ---- */

static char *item_key(const struct coll_type *type, const char *scope, const char *name)
{
	return str_printf("%s/%s/%s", type->name, scope, name);
}

void item_changed(struct compute *c, const struct item *it)
{
	char buf[320], *key = buf;

	if (!it->type || it->type->readonly)
		return;
	if ((size_t)snprintf(buf, sizeof(buf), "%s/%s/%s", it->type->name, it->scope, it->name) >=
	    sizeof(buf))
		key = item_key(it->type, it->scope, it->name);
	if (key)
		emu_state_mark(c->emu, &resources_table, key);
	if (key != buf)
		free(key);
}

static char *item_text(const struct item *it, size_t *len)
{
	json_t *row = json_pack("{s:s, s:s, s:b, s:O}", "scope", it->scope, "name", it->name,
				"pending", it->pending, "resource", it->res);
	char *text = row ? compute_json_text(row, len) : NULL;

	json_decref(row);
	return text;
}

static int resources_fetch(struct emu *emu, const char *key, struct emu_state_value *out)
{
	struct compute *c = compute_of(emu);
	const char *slash = strchr(key, '/'), *last = strrchr(key, '/');
	char cname[64], scope[160];
	struct coll *co;
	struct item *it;
	size_t n;

	if (!slash || last == slash || (size_t)(slash - key) >= sizeof(cname) ||
	    (size_t)(last - slash - 1) >= sizeof(scope))
		return -ENOENT;
	memcpy(cname, key, (size_t)(slash - key));
	cname[slash - key] = '\0';
	memcpy(scope, slash + 1, (size_t)(last - slash - 1));
	scope[last - slash - 1] = '\0';
	co = compute_coll(c, cname);
	it = co && !co->type->readonly ? coll_find(co, scope, last + 1) : NULL;
	if (!it)
		return -ENOENT;
	out->owned = item_text(it, &n);
	if (!out->owned)
		return -ENOMEM;
	out->text = out->owned;
	out->len = n;
	return 0;
}

static int resources_foreach(struct emu *emu, emu_state_emit_fn emit, void *ctx)
{
	struct compute *c = compute_of(emu);

	for (size_t i = 0; i < c->ncolls; i++) {
		struct coll *co = c->colls[i];

		if (co->type->readonly)
			continue;
		for (size_t j = 0; j < co->len; j++) {
			struct item *it = co->items[j];
			char *key = item_key(co->type, it->scope, it->name), *text;
			size_t n;
			int ret;

			text = key ? item_text(it, &n) : NULL;
			ret = text ? emit(ctx, key, text, n) : -ENOMEM;
			free(key);
			free(text);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/* ---- pending Operations and requestIds ---- */

void compute_state_pending(struct compute *c, const char *scope, const char *name,
			   const json_t *mutation)
{
	char *key = str_printf("%s/%s", scope, name);

	if (!key)
		return;
	emu_state_put(c->emu, &pending_table, key,
		      mutation ? json_pack("{s:s, s:s, s:O}", "scope", scope, "name", name,
					   "mutation", mutation)
			       : NULL);
	free(key);
}

static int emit_json(emu_state_emit_fn emit, void *ctx, const char *key, const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	int ret = text ? emit(ctx, key, text, strlen(text)) : -ENOMEM;

	free(text);
	return ret;
}

static int pending_foreach(struct emu *emu, emu_state_emit_fn emit, void *ctx)
{
	json_t *all = op_dump_pending(compute_of(emu)), *e;
	size_t i;
	int ret = all ? 0 : -ENOMEM;

	json_array_foreach(all, i, e)
	{
		char *key = str_printf("%s/%s", jstr(e, "scope"), jstr(e, "name"));

		ret = key ? emit_json(emit, ctx, key, e) : -ENOMEM;
		free(key);
		if (ret < 0)
			break;
	}
	json_decref(all);
	return ret;
}

void compute_state_request_id(struct compute *c, const char *request_id, const json_t *ref)
{
	emu_state_put(c->emu, &request_ids_table, request_id, json_deep_copy(ref));
}

static int request_ids_foreach(struct emu *emu, emu_state_emit_fn emit, void *ctx)
{
	struct compute *c = compute_of(emu);
	const char *id;
	json_t *ref;

	json_object_foreach(c->request_ids, id, ref)
	{
		int ret = emit_json(emit, ctx, id, ref);

		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---- singletons ---- */

void compute_state_meta(struct compute *c)
{
	emu_state_mark(c->emu, &meta_table, "instanceGroupMembers");
	emu_state_mark(c->emu, &meta_table, "natCounter");
}

static json_t *meta_value(struct emu *emu, const char *key)
{
	struct compute *c = compute_of(emu);

	if (strcmp(key, "base") == 0)
		return jsonf("%s%s", emu->cloud_url, COMPUTE_PREFIX);
	if (strcmp(key, "instanceGroupMembers") == 0)
		return json_incref(c->ig_members);
	if (strcmp(key, "natCounter") == 0)
		return json_integer((json_int_t)c->nat_counter);
	if (strcmp(key, "auth") == 0)
		return emu_auth_dump(emu);
	return NULL;
}

static int meta_fetch(struct emu *emu, const char *key, struct emu_state_value *out)
{
	return emu_state_value_json(out, meta_value(emu, key));
}
