/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Kubernetes side of --state (see state.h): one row per stored object, the cluster-wide
 * resourceVersion, the PKI and tokens, and the controllers' bookkeeping. The rows are the
 * members of emu_kube_dump()'s document, read back by emu_kube_load().
 *
 *   kube_objects     "GROUP/VERSION/RESOURCE/KEY" -> the object (KEY: "ns/name" or "name")
 *   kube_meta        resourceVersion, pki
 *   kube_controllers controllers (lazy: which instances the kubelets and the CCM know;
 *                    reconciled with the Compute state after every start anyway)
 *
 * Every write of the store passes its event ring (store.c ring_push), which marks the row:
 * any kind, built in or defined by a CRD, is persisted with no code of its own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/kube/kube.h"

static int objects_fetch(struct emu *emu, const char *key, struct emu_state_value *out);
static int objects_foreach(struct emu *emu, emu_state_emit_fn emit, void *ctx);
static int meta_fetch(struct emu *emu, const char *key, struct emu_state_value *out);

static const struct emu_state_table objects_table = {
    .name = "kube_objects",
    .part = "kube",
    .field = "objects",
    .shape = EMU_STATE_LIST,
    .fetch = objects_fetch,
    .foreach = objects_foreach,
};

static const char *const meta_members[] = {"resourceVersion", "pki", NULL};

static const struct emu_state_table meta_table = {
    .name = "kube_meta",
    .part = "kube",
    .shape = EMU_STATE_MEMBERS,
    .members = meta_members,
    .fetch = meta_fetch,
};

static const char *const ctrl_members[] = {"controllers", NULL};

static const struct emu_state_table ctrl_table = {
    .name = "kube_controllers",
    .part = "kube",
    .shape = EMU_STATE_MEMBERS,
    .members = ctrl_members,
    .lazy_ms = 100,
    .fetch = meta_fetch,
};

static const struct emu_state_table *const tables[] = {&objects_table, &meta_table, &ctrl_table,
						       NULL};

int kube_state_register(struct emu_kube *k)
{
	return emu_state_register(k->emu, tables);
}

void kube_state_loaded(struct emu_kube *k)
{
	emu_state_rewrite(k->emu, tables);
}

/* ---- objects ---- */

static char *row_key(const struct kube_res *r, const char *entry_key)
{
	return str_printf("%s/%s/%s/%s", r->def.group, r->def.version, r->def.resource, entry_key);
}

static void mark(struct emu_kube *k, const struct kube_res *r, const char *entry_key)
{
	char *key = row_key(r, entry_key);

	if (key)
		emu_state_mark(k->emu, &objects_table, key);
	free(key);
}

void kube_state_event(struct emu_kube *k, const struct kube_res *r, const struct kobj *o)
{
	char entry[600];

	if (!k->emu->state)
		return;
	kube_key(r, kobj_namespace(o), kobj_name(o), entry, sizeof(entry));
	mark(k, r, entry);
	emu_state_mark(k->emu, &meta_table, "resourceVersion");
	/* The controllers react to events: their bookkeeping follows, lazily. */
	emu_state_mark(k->emu, &ctrl_table, "controllers");
}

void kube_state_res_cleared(struct emu_kube *k, const struct kube_res *r)
{
	for (size_t i = 0; k->emu->state && i < r->len; i++)
		mark(k, r, r->items[i].key);
}

void kube_state_instance_changed(struct emu_kube *k)
{
	emu_state_mark(k->emu, &ctrl_table, "controllers");
}

/* GROUP/VERSION/RESOURCE/KEY into its resource and the stored version (borrowed). */
static struct kobj *object_of(struct emu_kube *k, const char *key)
{
	const char *p[3], *q = key;
	char group[128], version[64], resource[128], ns[256];
	struct kube_res *r;
	const char *name;

	for (int i = 0; i < 3; i++) {
		p[i] = strchr(q, '/');
		if (!p[i])
			return NULL;
		q = p[i] + 1;
	}
	if ((size_t)(p[0] - key) >= sizeof(group) || (size_t)(p[1] - p[0] - 1) >= sizeof(version) ||
	    (size_t)(p[2] - p[1] - 1) >= sizeof(resource))
		return NULL;
	snprintf(group, sizeof(group), "%.*s", (int)(p[0] - key), key);
	snprintf(version, sizeof(version), "%.*s", (int)(p[1] - p[0] - 1), p[0] + 1);
	snprintf(resource, sizeof(resource), "%.*s", (int)(p[2] - p[1] - 1), p[1] + 1);
	r = kube_res_find(k, group, version, resource);
	if (!r)
		return NULL;
	name = p[2] + 1;
	if (!(r->def.flags & KR_NAMESPACED))
		return kube_get(r, NULL, name);
	q = strchr(name, '/');
	if (!q || (size_t)(q - name) >= sizeof(ns))
		return NULL;
	snprintf(ns, sizeof(ns), "%.*s", (int)(q - name), name);
	return kube_get(r, ns, q + 1);
}

static int objects_fetch(struct emu *emu, const char *key, struct emu_state_value *out)
{
	struct kobj *o = object_of(kube_of(emu), key);

	if (!o)
		return -ENOENT;
	out->text = kobj_text(o, &out->len);
	return out->text ? 0 : -ENOMEM;
}

static int objects_foreach(struct emu *emu, emu_state_emit_fn emit, void *ctx)
{
	struct emu_kube *k = kube_of(emu);

	for (size_t i = 0; i < k->nres; i++) {
		struct kube_res *r = k->res[i];

		if (r->removed)
			continue;
		for (size_t j = 0; j < r->len; j++) {
			char *key = row_key(r, r->items[j].key);
			size_t len;
			const char *text = kobj_text(r->items[j].obj, &len);
			int ret = key && text ? emit(ctx, key, text, len) : -ENOMEM;

			free(key);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/* ---- singletons ---- */

static json_t *meta_value(struct emu_kube *k, const char *key)
{
	if (strcmp(key, "resourceVersion") == 0)
		return json_integer((json_int_t)k->rv);
	if (strcmp(key, "pki") == 0)
		return k->pki_ready ? kube_pki_dump(&k->pki) : NULL;
	if (strcmp(key, "controllers") == 0)
		return kube_ctrl_dump(k);
	return NULL;
}

static int meta_fetch(struct emu *emu, const char *key, struct emu_state_value *out)
{
	return emu_state_value_json(out, meta_value(kube_of(emu), key));
}
