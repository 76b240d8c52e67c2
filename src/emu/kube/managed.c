/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metadata.managedFields and server-side apply, as the API server's field manager keeps them
 * (k8s.io/apimachinery pkg/util/managedfields/internal, v0.33: fieldmanager.go,
 * managedfieldsupdater.go, stripmeta.go, capmanagers.go, skipnonapplied.go,
 * lastappliedmanager.go, lastappliedupdater.go, conflict.go, managedfields.go; and
 * structured-merge-diff merge/update.go for the algebra, in kube/fieldset.c).
 *
 * Every write records who set what:
 *   - create, update and patch are "Update" operations of the writer's field manager (the
 *     fieldManager parameter, else the User-Agent up to its first "/": "kubectl"). The
 *     fields the write added or changed become the writer's and are taken from every other
 *     manager; fields it removed are removed from everyone. Defaults are owned by the
 *     creator (they are set when the body is decoded); what the registry allocates
 *     (clusterIP, node ports, a namespace's finalizer) is owned by nobody. A write that takes
 *     nothing leaves the writer's timestamp alone. managedFields sent with an update are the
 *     new baseline ([] or [{}] resets them); an object updated that had none stays untracked.
 *     At most 10 Update managers are kept: older ones merge into "ancient-changes".
 *   - apply (PATCH application/apply-patch+yaml) is an "Apply" operation: the applied
 *     configuration is merged into the live object (lists by key); the manager's fields
 *     become exactly those of the configuration; fields it applied before, no longer applies
 *     and nobody else owns are removed; changing a field another manager owns is a conflict
 *     (409, causes FieldManagerConflict) unless force=true takes it over. The first apply to
 *     an object without managedFields hands its existing fields to "before-first-apply".
 *     For "kubectl", fields kubectl's last-applied-configuration annotation still holds do
 *     not conflict, and the annotation follows the applied configuration.
 * The apiVersion, kind and the server-set metadata (name, namespace, uid, resourceVersion,
 * generation, creationTimestamp, managedFields) are never owned; status is not owned by
 * writes to the main resource of a kind with a status subresource, and status writes are
 * recorded with subresource "status".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/kube/kube.h"

#define MAX_UPDATE_MANAGERS 10
#define LAST_APPLIED        "kubectl.kubernetes.io/last-applied-configuration"

/* An annotation's value (keys hold dots: no kj_str). */
static const char *annotation(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(kj_path(obj, "metadata.annotations"), key));
}

/*
 * Decoded managedFields: identity -> {"manager","operation","apiVersion","subresource",
 * "time", and "set" (the field set) or, until a write needs it, "fields" (the entry's stored
 * FieldsV1, kept as it is: most writes touch one manager's fields only)}.
 */
static char *identity(const char *manager, const char *operation, const char *api_version,
		      const char *subresource)
{
	/* BuildManagerIdentifier: the entry without fieldsType, fieldsV1 and time; appliers
	 * without apiVersion. */
	json_t *id = json_pack("{s:s, s:s}", "manager", manager, "operation", operation);
	char *s;

	if (strcmp(operation, "Apply") && api_version && api_version[0])
		json_object_set_new(id, "apiVersion", json_string(api_version));
	if (subresource && subresource[0])
		json_object_set_new(id, "subresource", json_string(subresource));
	s = json_dumps(id, JSON_COMPACT);
	json_decref(id);
	return s;
}

/* Puts (replaces) an entry; returns it (borrowed), NULL when out of memory. */
static json_t *put_entry(json_t *managed, const char *manager, const char *operation,
			 const char *api_version, const char *subresource, json_t *time,
			 json_t *set)
{
	char *id = identity(manager, operation, api_version, subresource);
	json_t *e = json_pack("{s:s, s:s, s:s, s:o}", "manager", manager, "operation", operation,
			      "apiVersion", api_version ? api_version : "", "set", set);

	if (subresource && subresource[0])
		json_object_set_new(e, "subresource", json_string(subresource));
	if (time)
		json_object_set(e, "time", time);
	if (id && e)
		json_object_set_new(managed, id, e);
	else {
		json_decref(e);
		e = NULL;
	}
	free(id);
	return e;
}

/* The entry's field set, decoded from its FieldsV1 the first time it is needed. */
static json_t *entry_set(json_t *e)
{
	json_t *set = json_object_get(e, "set");

	if (!set) {
		set = kube_fset_from_fields(json_object_get(e, "fields"));
		if (!set)
			set = json_object(); /* the request's were checked when taken (eager) */
		json_object_set_new(e, "set", set);
		json_object_del(e, "fields");
	}
	return set;
}

/* Does the FieldsV1 tree f hold a member of the set s? (f's leaf {} is a member.) */
static bool fields_touch(const json_t *f, const json_t *s, bool root)
{
	const char *key;
	json_t *sv;

	json_object_foreach((json_t *)s, key, sv)
	{
		json_t *fv;
		if (!strcmp(key, ".")) {
			if (!root && (!json_object_size(f) || json_object_get(f, ".")))
				return true;
			continue;
		}
		fv = json_object_get(f, key);
		if (json_is_object(fv) && fields_touch(fv, sv, false))
			return true;
	}
	return false;
}

/* Does the entry's set (decoded or not) hold a member of s? */
static bool entry_touches(json_t *e, const json_t *s)
{
	json_t *set = json_object_get(e, "set");

	if (set) {
		json_t *both = kube_fset_intersection(set, s);
		bool any = !kube_fset_empty(both);
		json_decref(both);
		return any;
	}
	return fields_touch(json_object_get(e, "fields"), s, true);
}

static bool entry_empty(const json_t *e)
{
	json_t *set = json_object_get(e, "set");

	return set ? kube_fset_empty(set) : !json_object_size(json_object_get(e, "fields"));
}

/*
 * DecodeManagedFields: NULL when an entry is malformed. eager: every field set is decoded
 * (and so checked) now, as for managedFields a client sent; otherwise (the stored object's
 * own) an entry's FieldsV1 is decoded when a write touches it.
 */
static json_t *decode(const json_t *mf, bool eager)
{
	json_t *managed = json_object(), *e;
	size_t i;

	json_array_foreach(mf, i, e)
	{
		const char *op = kj_str(e, "operation"), *av = kj_str(e, "apiVersion");
		const char *ft = kj_str(e, "fieldsType"), *manager = kj_str(e, "manager");
		json_t *set, *time = json_object_get(e, "time");

		if (!op || (strcmp(op, "Apply") && strcmp(op, "Update")) || !av || !av[0] || !ft ||
		    strcmp(ft, "FieldsV1") || (time && !json_is_string(time))) {
			json_decref(managed);
			return NULL;
		}
		if (!eager && json_is_object(json_object_get(e, "fieldsV1"))) {
			/* "fields": the stored FieldsV1, decoded when a write needs it */
			json_t *x = put_entry(managed, manager ? manager : "", op, av,
					      kj_str(e, "subresource"), time, json_object());
			if (x) {
				json_object_del(x, "set");
				json_object_set(x, "fields", json_object_get(e, "fieldsV1"));
			}
			continue;
		}
		set = json_object_get(e, "fieldsV1") ? kube_fset_from_fields(kj_path(e, "fieldsV1"))
						     : json_object();
		if (!set) {
			json_decref(managed);
			return NULL;
		}
		put_entry(managed, manager ? manager : "", op, av, kj_str(e, "subresource"), time,
			  set);
	}
	return managed;
}

/* isResetManagedFields: [] or [{}]. */
static bool is_reset(const json_t *mf)
{
	return json_is_array(mf) &&
	       (json_array_size(mf) == 0 ||
		(json_array_size(mf) == 1 && json_is_object(json_array_get(mf, 0)) &&
		 json_object_size(json_array_get(mf, 0)) == 0));
}

static int entry_cmp(const void *pa, const void *pb)
{
	const json_t *a = *(const json_t *const *)pa, *b = *(const json_t *const *)pb;
	int c;

	/* sortEncodedManagedFields: operation, time, manager, apiVersion, subresource */
	if ((c = strcmp(kj_str(a, "operation") ?: "", kj_str(b, "operation") ?: "")))
		return c;
	if ((c = strcmp(kj_str(a, "time") ?: "", kj_str(b, "time") ?: "")))
		return c;
	if ((c = strcmp(kj_str(a, "manager") ?: "", kj_str(b, "manager") ?: "")))
		return c;
	if ((c = strcmp(kj_str(a, "apiVersion") ?: "", kj_str(b, "apiVersion") ?: "")))
		return c;
	return strcmp(kj_str(a, "subresource") ?: "", kj_str(b, "subresource") ?: "");
}

/* The managedFields to store, sorted; NULL when there are none. */
static json_t *encode(const json_t *managed)
{
	size_t n = json_object_size(managed), k = 0;
	json_t **entries, *out, *e;
	const char *id;

	if (!n)
		return NULL;
	entries = calloc(n, sizeof(*entries));
	if (!entries)
		return NULL;
	json_object_foreach((json_t *)managed, id, e) entries[k++] = e;
	qsort(entries, k, sizeof(*entries), entry_cmp);
	out = json_array();
	for (size_t i = 0; i < k; i++) {
		/* ManagedFieldsEntry's field order */
		json_t *x = json_pack("{s:s, s:s, s:s}", "manager", kj_str(entries[i], "manager"),
				      "operation", kj_str(entries[i], "operation"), "apiVersion",
				      kj_str(entries[i], "apiVersion"));
		if (json_object_get(entries[i], "time"))
			json_object_set(x, "time", json_object_get(entries[i], "time"));
		json_object_set_new(x, "fieldsType", json_string("FieldsV1"));
		if (json_object_get(entries[i], "set"))
			json_object_set_new(
			    x, "fieldsV1", kube_fset_to_fields(json_object_get(entries[i], "set")));
		else
			json_object_set(x, "fieldsV1", json_object_get(entries[i], "fields"));
		if (kj_str(entries[i], "subresource"))
			json_object_set(x, "subresource", kj_path(entries[i], "subresource"));
		json_array_append_new(out, x);
	}
	free(entries);
	return out;
}

static void store_managed(json_t *obj, const json_t *managed)
{
	json_t *meta = kj_obj(obj, "metadata"), *mf = encode(managed);

	if (mf)
		json_object_set_new(meta, "managedFields", mf);
	else
		json_object_del(meta, "managedFields");
}

/* The object without metadata.managedFields (a shallow copy where it matters). */
static json_t *without_managed(const json_t *obj)
{
	json_t *c = json_copy((json_t *)obj), *meta;

	if (!c)
		return NULL;
	meta = json_object_get(c, "metadata");
	if (json_is_object(meta) && json_object_get(meta, "managedFields")) {
		meta = json_copy(meta);
		json_object_del(meta, "managedFields");
		json_object_set_new(c, "metadata", meta);
	}
	return c;
}

static void drop_member(json_t *set, int n, const char *const *pes)
{
	json_t *node = set, *parents[8];

	for (int i = 0; i < n && node; i++) {
		parents[i] = node;
		node = json_object_get(node, pes[i]);
	}
	if (!node)
		return;
	json_object_del(node, ".");
	for (int i = n - 1; i >= 0; i--) {
		json_t *child = json_object_get(parents[i], pes[i]);
		if (child && kube_fset_empty(child))
			json_object_del(parents[i], pes[i]);
	}
}

/* stripMetaManager's set: never owned. */
static void strip_meta(json_t *set)
{
	static const char *const meta[] = {"f:name",       "f:namespace",     "f:creationTimestamp",
					   "f:selfLink",   "f:uid",           "f:clusterName",
					   "f:generation", "f:managedFields", "f:resourceVersion"};
	const char *top[] = {"f:apiVersion"};

	drop_member(set, 1, top);
	top[0] = "f:kind";
	drop_member(set, 1, top);
	top[0] = "f:metadata";
	drop_member(set, 1, top);
	for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++) {
		const char *p[2] = {"f:metadata", meta[i]};
		drop_member(set, 2, p);
	}
}

/* The reset fields of the main resource: its status (GetResetFields of the strategies). */
static void drop_status(json_t *set)
{
	json_object_del(set, "f:status");
}

static bool present(const json_t *v)
{
	return v && !json_is_null(v) && !(json_is_string(v) && !json_string_length(v)) &&
	       !(json_is_array(v) && !json_array_size(v));
}

/* What the registry allocated and the request did not ask for is nobody's. */
static void drop_allocated(const struct kube_res *r, json_t *set, const json_t *pre)
{
	const json_t *spec = json_object_get(pre, "spec");

	if (r->def.group[0])
		return;
	if (!strcmp(r->def.resource, "services")) {
		static const char *const alloc[] = {"f:clusterIP", "f:clusterIPs", "f:ipFamilies",
						    "f:ipFamilyPolicy", "f:healthCheckNodePort"};
		json_t *ports, *key, *k;
		const char *name;
		for (size_t i = 0; i < sizeof(alloc) / sizeof(alloc[0]); i++) {
			const char *p[2] = {"f:spec", alloc[i]};
			if (!present(json_object_get(spec, alloc[i] + 2)))
				drop_member(set, 2, p);
		}
		/* node ports: the items of spec.ports keyed by port and protocol */
		ports = kj_path(set, "f:spec.f:ports");
		if (!json_is_object(ports))
			return;
		json_object_foreach(ports, name, key)
		{
			json_t *want, *x;
			size_t i;
			bool asked = false;
			if (strncmp(name, "k:", 2))
				continue;
			want = json_loads(name + 2, 0, NULL);
			json_array_foreach(json_object_get(spec, "ports"), i, x)
			{
				const char *proto = kj_str(x, "protocol") ?: "TCP";
				if (json_equal(json_object_get(x, "port"),
					       json_object_get(want, "port")) &&
				    !strcmp(proto, kj_str(want, "protocol") ?: "TCP"))
					asked = present(json_object_get(x, "nodePort"));
			}
			json_decref(want);
			if (!asked) {
				k = json_object_get(key, "f:nodePort");
				if (k)
					json_object_del(k, ".");
			}
		}
		/* prune what became empty */
		{
			json_t *tmp = kube_fset_difference(set, NULL);
			json_object_clear(set);
			json_object_update(set, tmp);
			json_decref(tmp);
		}
	} else if (!strcmp(r->def.resource, "namespaces")) {
		const char *p[2] = {"f:spec", "f:finalizers"};
		if (!present(json_object_get(spec, "finalizers")))
			drop_member(set, 2, p);
	}
}

static int type_for(const struct kube_res *r)
{
	if (r->def.flags & KR_CUSTOM)
		return kube_type_custom();
	return kube_type_of(r->api_version, r->def.kind);
}

static json_t *zero_object(const struct kube_res *r)
{
	int type = type_for(r);

	return type >= 0 ? kube_type_zero((unsigned)type) : json_object();
}

/* capManagersManager: at most MAX_UPDATE_MANAGERS Update entries per apiVersion bucket. */
static void cap_updaters(json_t *managed)
{
	json_t *list = json_array(), *e;
	const char *id;
	size_t n, i;

	json_object_foreach(managed, id, e)
	{
		if (strcmp(kj_str(e, "operation") ?: "", "Apply"))
			json_array_append_new(list, json_pack("{s:s, s:O}", "id", id, "e", e));
	}
	n = json_array_size(list);
	if (n <= MAX_UPDATE_MANAGERS) {
		json_decref(list);
		return;
	}
	/* oldest first (time, then identity) */
	for (i = 1; i < n; i++)
		for (size_t j = i; j > 0; j--) {
			json_t *a = json_array_get(list, j - 1), *b = json_array_get(list, j);
			int c = strcmp(kj_str(a, "e.time") ?: "", kj_str(b, "e.time") ?: "");
			if (!c)
				c = strcmp(kj_str(a, "id"), kj_str(b, "id"));
			if (c <= 0)
				break;
			json_incref(b);
			json_array_set(list, j, a);
			json_array_set_new(list, j - 1, b);
		}
	{
		json_t *first = json_object(); /* apiVersion -> id of the first one kept */
		size_t len = n;
		for (i = 0; i < n && len > MAX_UPDATE_MANAGERS; i++) {
			json_t *x = json_array_get(list, i);
			const char *xid = kj_str(x, "id"), *av = kj_str(x, "e.apiVersion") ?: "";
			json_t *ent = json_object_get(managed, xid);
			char *bucket = identity("ancient-changes", "Update", av, NULL);
			if (!ent || !bucket) {
				free(bucket);
				continue;
			}
			if (json_object_get(first, av)) {
				json_t *b = json_object_get(managed, bucket);
				if (!b) {
					/* the first one of this version becomes the bucket */
					const char *fid = kj_str(first, av);
					json_t *f = json_incref(json_object_get(managed, fid));
					json_object_del(managed, fid);
					json_object_set_new(f, "manager",
							    json_string("ancient-changes"));
					json_object_del(f, "subresource");
					json_object_set_new(managed, bucket, f);
					b = f;
				}
				kube_fset_union(entry_set(b), entry_set(ent));
				if (json_object_get(ent, "time"))
					json_object_set(b, "time", json_object_get(ent, "time"));
				json_object_del(managed, xid);
				len--;
			} else {
				json_object_set_new(first, av, json_string(xid));
			}
			free(bucket);
		}
		json_decref(first);
	}
	json_decref(list);
}

static void drop_empty(json_t *managed)
{
	void *it = json_object_iter(managed);

	while (it) {
		json_t *e = json_object_iter_value(it);
		void *next = json_object_iter_next(managed, it);
		if (entry_empty(e))
			json_object_del(managed, json_object_iter_key(it));
		it = next;
	}
}

/* Takes set from every manager but skip (conflicts resolved by force, fields removed). */
static void take_from_others(json_t *managed, const char *skip, const json_t *set)
{
	const char *id;
	json_t *e;

	if (kube_fset_empty(set))
		return;
	json_object_foreach(managed, id, e)
	{
		if (skip && !strcmp(id, skip))
			continue;
		if (!json_object_get(e, "set") && !entry_touches(e, set))
			continue; /* untouched: stays as stored */
		kube_fset_subtract(entry_set(e), set);
	}
}

/* The Update operation's part: managed (modified in place) after lhs -> rhs by id. */
static int record_update(const struct kube_res *r, const json_t *lhs, const json_t *rhs,
			 const json_t *pre, enum kube_write_mode mode, json_t *managed,
			 const char *manager, const char *subresource)
{
	json_t *added = NULL, *modified = NULL, *removed = NULL, *cur;
	const char *err = NULL;
	char *id;

	kube_fset_compare(lhs, rhs, type_for(r), &added, &modified, &removed, &err);
	if (mode == KW_MAIN && (r->def.flags & KR_STATUS)) {
		drop_status(added);
		drop_status(modified);
		drop_status(removed);
	}
	if (pre) {
		drop_allocated(r, added, pre);
		drop_allocated(r, modified, pre);
	}
	cur = json_object();
	kube_fset_union(cur, modified);
	kube_fset_union(cur, added);
	strip_meta(cur);
	take_from_others(managed, NULL, cur);
	take_from_others(managed, NULL, removed);
	id = identity(manager, "Update", r->api_version, subresource);
	if (id && !kube_fset_empty(cur)) {
		json_t *prev = json_object_get(managed, id), *time = kj_now();
		if (prev)
			kube_fset_union(entry_set(prev), cur);
		else
			put_entry(managed, manager, "Update", r->api_version, subresource, NULL,
				  json_incref(cur));
		json_object_set_new(json_object_get(managed, id), "time", time);
	}
	free(id);
	drop_empty(managed);
	json_decref(cur);
	json_decref(added);
	json_decref(modified);
	json_decref(removed);
	return 0;
}

bool kube_managed_sanitize(json_t *obj)
{
	json_t *meta = json_object_get(obj, "metadata"),
	       *mf = json_object_get(meta, "managedFields");
	json_t *managed;

	if (!mf)
		return true;
	managed = json_is_array(mf) ? decode(mf, true) : NULL;
	json_decref(managed);
	if (managed)
		return true;
	/* DecodeManagedFields fails: the API server's next write of it drops them too */
	json_object_del(meta, "managedFields");
	return false;
}

void kube_managed_update(struct kube_res *r, const json_t *old, json_t *obj, json_t *req_mf,
			 const json_t *pre, enum kube_write_mode mode, const char *manager)
{
	const char *subresource = mode == KW_STATUS ? "status" : NULL;
	const json_t *live_mf = old ? kj_path(old, "metadata.managedFields") : NULL;
	json_t *managed = NULL, *lhs, *rhs;

	/* decodeLiveOrNew: a subresource write keeps the live ones; a reset clears them; the
	 * request's are the baseline when they decode and are not empty. */
	if (!subresource && is_reset(req_mf)) {
		managed = json_object();
	} else {
		/* a client's own managedFields are checked now; the stored ones when needed */
		if (!subresource && req_mf)
			managed =
			    decode(req_mf, !live_mf || !json_equal(req_mf, (json_t *)live_mf));
		if (!managed || !json_object_size(managed)) {
			json_decref(managed);
			managed = live_mf ? decode(live_mf, false) : NULL;
			if (!managed)
				managed = json_object();
		}
	}
	json_decref(req_mf);
	/* skipNonAppliedManager: an existing object without managedFields stays untracked. */
	if (!json_object_size(managed) && old) {
		json_object_del(kj_obj(obj, "metadata"), "managedFields");
		json_decref(managed);
		return;
	}
	lhs = old ? without_managed(old) : zero_object(r);
	rhs = without_managed(obj);
	record_update(r, lhs, rhs, pre, mode, managed, manager && manager[0] ? manager : "unknown",
		      subresource);
	cap_updaters(managed);
	store_managed(obj, managed);
	json_decref(lhs);
	json_decref(rhs);
	json_decref(managed);
}

/* ---- apply ---- */
static const char *print_manager(const char *id, char *buf, size_t len)
{
	json_t *e = json_loads(id, 0, NULL);
	const char *sub = kj_str(e, "subresource");
	int n;

	n = snprintf(buf, len, "\"%s\"", kj_str(e, "manager") ?: "");
	if (sub && n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, " with subresource \"%s\"", sub);
	if (!strcmp(kj_str(e, "operation") ?: "", "Update") && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " using %s", kj_str(e, "apiVersion") ?: "");
	json_decref(e);
	return buf;
}

/* NewConflictError: 409 with a FieldManagerConflict cause per field. */
static int conflict_error(struct kube_err *e, json_t *conflicts)
{
	json_t *causes = json_array(), *paths, *p;
	const char *id;
	size_t total = 0, i, off;
	char who[300];

	json_object_foreach(conflicts, id, paths) total += json_array_size(paths);
	json_object_foreach(conflicts, id, paths)
	{
		print_manager(id, who, sizeof(who));
		json_array_foreach(paths, i, p)
		{
			char msg[340];
			snprintf(msg, sizeof(msg), "conflict with %s", who);
			json_array_append_new(causes, json_pack("{s:s, s:s, s:O}", "reason",
								"FieldManagerConflict", "message",
								msg, "field", p));
		}
	}
	if (total == 1) {
		json_t *c = json_array_get(causes, 0);
		kube_errf(e, 409, "Conflict", "Apply failed with 1 conflict: %s: %s",
			  kj_str(c, "message"), kj_str(c, "field"));
	} else {
		kube_errf(e, 409, "Conflict", "Apply failed with %zu conflicts: ", total);
		off = strlen(e->message);
		/* managers in sorted order, then their paths */
		json_object_foreach(conflicts, id, paths)
		{
			int w = snprintf(e->message + off, sizeof(e->message) - off,
					 "%sconflicts with %s:", off > 40 ? "\n" : "",
					 print_manager(id, who, sizeof(who)));
			if (w < 0 || (size_t)w >= sizeof(e->message) - off)
				break;
			off += (size_t)w;
			json_array_foreach(paths, i, p)
			{
				w = snprintf(e->message + off, sizeof(e->message) - off, "\n- %s",
					     json_string_value(p));
				if (w < 0 || (size_t)w >= sizeof(e->message) - off)
					break;
				off += (size_t)w;
			}
		}
	}
	e->details = json_pack("{s:o}", "causes", causes);
	return -EEXIST;
}

static int id_qsort(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* conflicts: id -> [paths], sorted by id (a JSON object keeps insertion order). */
static json_t *find_conflicts(const json_t *managed, const char *self, const json_t *changed)
{
	size_t n = json_object_size(managed), k = 0;
	const char **ids = n ? malloc(n * sizeof(*ids)) : NULL;
	json_t *out = json_object(), *e;
	const char *id;

	if (n && !ids)
		return out;
	json_object_foreach((json_t *)managed, id, e)
	{
		if (strcmp(id, self))
			ids[k++] = id;
	}
	qsort(ids, k, sizeof(*ids), id_qsort);
	for (size_t i = 0; i < k; i++) {
		json_t *ent = json_object_get(managed, ids[i]), *both;
		if (!entry_touches(ent, changed))
			continue;
		both = kube_fset_intersection(entry_set(ent), changed);
		if (!kube_fset_empty(both))
			json_object_set_new(out, ids[i], kube_fset_paths(both));
		json_decref(both);
	}
	free(ids);
	return out;
}

/* lastAppliedManager: the fields kubectl's last-applied-configuration still holds. */
static json_t *allowed_by_last_applied(const struct kube_res *r, const json_t *live)
{
	const char *text = annotation(live, LAST_APPLIED);
	json_t *la, *set, *added = NULL, *modified = NULL, *removed = NULL, *out, *tmp;
	const char *err = NULL;

	if (!text || !text[0])
		return NULL;
	la = json_loads(text, 0, NULL);
	if (!la || strcmp(kj_str(la, "apiVersion") ?: "", r->api_version)) {
		json_decref(la);
		return NULL;
	}
	set = kube_fset_of(la, type_for(r), &err);
	kube_fset_compare(la, live, type_for(r), &added, &modified, &removed, &err);
	out = kube_fset_difference(set, modified);
	tmp = kube_fset_difference(out, added);
	json_decref(out);
	out = kube_fset_difference(tmp, removed);
	json_decref(tmp);
	json_decref(set);
	json_decref(added);
	json_decref(modified);
	json_decref(removed);
	json_decref(la);
	return out;
}

/* Removes from conflicts the paths in allowed (a set); true when none is left. */
static bool allow_conflicts(json_t *conflicts, const json_t *allowed)
{
	json_t *allowed_paths = kube_fset_paths(allowed), *paths, *p;
	const char *id;
	bool none = true;
	size_t i, j;

	json_object_foreach(conflicts, id, paths)
	{
		for (i = json_array_size(paths); i-- > 0;) {
			bool ok = false;
			json_array_foreach(allowed_paths, j, p) ok |= !strcmp(
			    json_string_value(p), json_string_value(json_array_get(paths, i)));
			if (ok)
				json_array_remove(paths, i);
		}
		none &= json_array_size(paths) == 0;
	}
	json_decref(allowed_paths);
	return none;
}

static int apply_once(const struct kube_res *r, const json_t *live, const json_t *config,
		      enum kube_write_mode mode, json_t *managed, const char *manager,
		      const char *subresource, const char *id, bool force, json_t **result,
		      json_t **conflicts, struct kube_err *e)
{
	int type = type_for(r);
	const char *err = NULL;
	json_t *merged, *set, *last, *all, *remove, *named_last, *named_all, *pruned;
	json_t *added = NULL, *modified = NULL, *removed = NULL, *changed, *entry;

	*result = NULL;
	*conflicts = NULL;
	merged = kube_fset_merge(live, config, type, &err);
	if (!merged)
		return kube_errf(e, 500, "InternalError", "failed to merge config: %s", err);
	set = kube_fset_of(config, type, &err);
	if (err) {
		json_decref(merged);
		json_decref(set);
		return kube_errf(e, 500, "InternalError", "failed to get field set: %s", err);
	}
	if (mode == KW_MAIN && (r->def.flags & KR_STATUS))
		drop_status(set);
	entry = json_object_get(managed, id);
	last = entry ? json_incref(entry_set(entry)) : NULL;
	put_entry(managed, manager, "Apply", r->api_version, subresource,
		  entry ? json_object_get(entry, "time") : NULL, set);
	/* prune: what this manager applied last time, does not now, and nobody else owns */
	pruned = merged;
	if (last && !kube_fset_empty(last)) {
		const char *mid;
		json_t *me;
		all = json_object();
		json_object_foreach(managed, mid, me) kube_fset_union(all, entry_set(me));
		named_last = kube_fset_named(last, type);
		named_all = kube_fset_named(all, type);
		remove = kube_fset_difference(named_last, named_all);
		pruned = kube_fset_remove(merged, remove, type);
		json_decref(merged);
		json_decref(all);
		json_decref(named_last);
		json_decref(named_all);
		json_decref(remove);
	}
	json_decref(last);
	/* conflicts: what changes from the live object that others own */
	kube_fset_compare(live, pruned, type, &added, &modified, &removed, &err);
	if (mode == KW_MAIN && (r->def.flags & KR_STATUS)) {
		drop_status(added);
		drop_status(modified);
		drop_status(removed);
	}
	changed = json_object();
	kube_fset_union(changed, modified);
	kube_fset_union(changed, added);
	*conflicts = find_conflicts(managed, id, changed);
	if (json_object_size(*conflicts) && !force) {
		json_decref(pruned);
		json_decref(changed);
		json_decref(added);
		json_decref(modified);
		json_decref(removed);
		return -EEXIST;
	}
	json_decref(*conflicts);
	*conflicts = NULL;
	take_from_others(managed, id, changed);
	take_from_others(managed, id, removed);
	drop_empty(managed);
	json_decref(changed);
	json_decref(added);
	json_decref(modified);
	json_decref(removed);
	*result = pruned;
	return 0;
}

json_t *kube_managed_apply(struct kube_res *r, const json_t *live, json_t *config,
			   enum kube_write_mode mode, const char *manager, bool force,
			   struct kube_err *e)
{
	const char *subresource = mode == KW_STATUS ? "status" : NULL;
	const char *av = kj_str(config, "apiVersion"), *kind = kj_str(config, "kind");
	json_t *managed = NULL, *base = NULL, *result = NULL, *conflicts = NULL, *saved = NULL;
	char *id = NULL;
	int ret;

	if (!json_is_object(config)) {
		kube_errf(e, 400, "BadRequest", "the applied configuration is not an object");
		goto cleanup;
	}
	/* versionCheckManager */
	if (!av || !kind || strcmp(av, r->api_version) || strcmp(kind, r->def.kind)) {
		char gv[200];
		const char *slash = av ? strchr(av, '/') : NULL;
		if (slash)
			snprintf(gv, sizeof(gv), "%s", av);
		else
			snprintf(gv, sizeof(gv), "/%s", av ? av : "");
		kube_errf(e, 400, "BadRequest", "invalid object type: %s, Kind=%s", gv,
			  kind ? kind : "");
		goto cleanup;
	}
	if (kj_path(config, "metadata.managedFields") &&
	    !json_is_null(kj_path(config, "metadata.managedFields"))) {
		kube_errf(e, 400, "BadRequest", "metadata.managedFields must be nil");
		goto cleanup;
	}
	if (live && kj_path(live, "metadata.managedFields")) {
		managed = decode(kj_path(live, "metadata.managedFields"), false);
		if (!managed) {
			kube_errf(e, 500, "InternalError",
				  "failed to decode managed fields: malformed managedFields entry");
			goto cleanup;
		}
	} else {
		managed = json_object();
	}
	base = live ? without_managed(live) : zero_object(r);
	/* skipNonAppliedManager: the fields of an untracked object go to before-first-apply */
	if (!json_object_size(managed) && live) {
		json_t *zero = zero_object(r);
		record_update(r, zero, base, NULL, mode, managed, "before-first-apply",
			      subresource);
		json_decref(zero);
	}
	id = identity(manager, "Apply", r->api_version, subresource);
	saved = json_deep_copy(managed);
	ret = apply_once(r, base, config, mode, managed, manager, subresource, id, force, &result,
			 &conflicts, e);
	if (ret == -EEXIST && !strcmp(manager, "kubectl") && live) {
		/* lastAppliedManager: conflicts with what kubectl applied client-side are not */
		json_t *allowed = allowed_by_last_applied(r, base);
		if (allowed && allow_conflicts(conflicts, allowed)) {
			json_decref(conflicts);
			conflicts = NULL;
			json_decref(managed);
			managed = json_deep_copy(saved);
			ret = apply_once(r, base, config, mode, managed, manager, subresource, id,
					 true, &result, &conflicts, e);
		}
		json_decref(allowed);
	}
	if (ret == -EEXIST) {
		conflict_error(e, conflicts);
		goto cleanup;
	}
	if (ret < 0)
		goto cleanup;
	/* stripMetaManager, then the time when the object changes */
	strip_meta(entry_set(json_object_get(managed, id)));
	drop_empty(managed);
	/* managedFieldsUpdater: the time moves only when the object changes */
	if (json_object_get(managed, id) && !json_equal(result, base))
		json_object_set_new(json_object_get(managed, id), "time", kj_now());
	/* lastAppliedUpdater */
	if (!strcmp(manager, "kubectl") && annotation(result, LAST_APPLIED) &&
	    annotation(result, LAST_APPLIED)[0]) {
		json_t *la = json_deep_copy(config), *an = kj_path(la, "metadata.annotations");
		char *text;
		if (json_is_object(an)) {
			json_object_del(an, LAST_APPLIED);
			if (!json_object_size(an))
				json_object_del(kj_obj(la, "metadata"), "annotations");
		}
		text = kube_go_json(la);
		if (text)
			json_object_set_new(kj_obj(kj_obj(result, "metadata"), "annotations"),
					    LAST_APPLIED, json_string(text));
		free(text);
		json_decref(la);
	}
	store_managed(result, managed);
cleanup:
	json_decref(config);
	json_decref(managed);
	json_decref(saved);
	json_decref(base);
	json_decref(conflicts);
	free(id);
	if (e->code) {
		json_decref(result);
		return NULL;
	}
	return result;
}
