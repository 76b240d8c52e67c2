/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Kubernetes API of the emulated cluster: internal interfaces shared by the files of
 * src/emu/kube/.
 *
 *   kube.c             module entry points, router, authentication
 *   tls.c              PKI (CA, serving and client certificates), tokens, kubeconfig
 *   store.c            generic object store: resource types, resourceVersion, events, GC
 *   select.c           label and field selectors
 *   rest.c             get/list/create/update/patch/delete handlers, Status errors
 *   patch.c            JSON merge patch, JSON patch, strategic merge patch
 *   watch.c            watch streams (suspend/resume, heartbeats)
 *   table.c            Table output for kubectl get
 *   discovery.c        /api, /apis, APIResourceLists, /version, /openapi/v2
 *   nodes.c            per-kind admission: Node validation, Service and Namespace defaults
 *   controllers.c      kubelet, CCM (node controller, node IPAM, lifecycle), KCM
 *   endpoints.c        Endpoints and EndpointSlices (KCM's controllers, the API server's own)
 *   types.c            the Go types of the served kinds: JSON, protobuf, apply semantics
 *   protobuf.c         application/vnd.kubernetes.protobuf request bodies
 *   yaml.c             application/yaml and apply-patch+yaml request bodies
 *   fieldset.c         field sets and typed merge/compare for server-side apply
 *   managed.c          metadata.managedFields, server-side apply, conflicts
 *   workloads.c        pods: kubelet side, DaemonSet/ReplicaSet/Deployment controllers,
 *                      scheduler, pod GC, disruption controller (PDB status)
 *   eviction.c         the Eviction subresource (policy/v1), PodDisruptionBudgets honoured
 *
 * One thread (the loop's), so no locks. Objects are immutable once stored: a write builds
 * a new version (struct kobj) and the event ring keeps references to old ones, so a watch
 * can replay what happened after a resourceVersion.
 */
#ifndef TALOS_GCP_EMU_KUBE_H
#define TALOS_GCP_EMU_KUBE_H

#include <jansson.h>

#include "common/str.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emu/emu.h"

/* What /version and the emulated kubelets report (Talos 1.10 ships Kubernetes 1.33). */
#define KUBE_MAJOR       "1"
#define KUBE_MINOR       "33"
#define KUBE_GIT_VERSION "v1.33.1"

/* ---- resource types ---- */
enum {
	KR_NAMESPACED = 1 << 0,
	KR_STATUS = 1 << 1,      /* a /status subresource: main writes keep status, and back */
	KR_GENERATION = 1 << 2,  /* metadata.generation counts changes outside metadata/status */
	KR_CREATE_ONLY = 1 << 3, /* reviews: create answers, nothing is stored */
	KR_CUSTOM = 1 << 4,      /* defined by a CustomResourceDefinition (strings owned) */
};

enum kube_printer {
	KP_DEFAULT = 0, /* NAME AGE */
	KP_NODE,
	KP_EVENT,
	KP_POD,
	KP_DEPLOYMENT,
	KP_DAEMONSET,
	KP_REPLICASET,
	KP_SERVICE,
	KP_NAMESPACE,
	KP_CONFIGMAP,
	KP_SECRET,
	KP_SERVICEACCOUNT,
	KP_LEASE,
	KP_ROLEBINDING,
	KP_CREATED_AT, /* NAME CREATED AT (roles, CRDs) */
	KP_ENDPOINTS,
	KP_ENDPOINTSLICE,
};

struct kube_rdef {
	const char *group;        /* "" for the core group */
	const char *version;      /* "v1" */
	const char *resource;     /* plural, the URL segment: "nodes" */
	const char *singular;     /* "node" */
	const char *kind;         /* "Node" */
	unsigned flags;           /* KR_* */
	const char *short_names;  /* comma-separated, "" for none */
	const char *categories;   /* comma-separated ("all") */
	const char *field_labels; /* fieldSelector fields besides metadata.name/namespace */
	enum kube_printer printer;
};

struct kobj;

struct kube_entry {
	char *key; /* "name" or "namespace/name": the list (and continue token) order */
	struct kobj *obj;
};

struct kube_res {
	struct kube_rdef def;
	char api_version[96]; /* "v1", "apps/v1" */
	char list_kind[80];   /* "NodeList" */
	struct kube_entry *items;
	size_t len, cap;
	size_t owned; /* objects with ownerReferences */
	size_t index; /* position in emu_kube.res */
	bool removed; /* a custom type whose CRD was deleted (kept: watches may point at it) */
};

/* One immutable version of an object. */
struct kobj {
	unsigned refs;
	json_t *obj; /* slim: only metadata and the field-selector fields */
	char *text;  /* compact JSON, built on first use (always there once slim) */
	size_t text_len;
	bool slim;
};

struct kobj *kobj_new(json_t *obj); /* steals obj */
struct kobj *kobj_ref(struct kobj *o);
void kobj_unref(struct kobj *o);
const char *kobj_text(struct kobj *o, size_t *len);
/*
 * An old version (no longer stored, kept by the event ring) keeps its text and a small tree
 * for watch filtering; kobj_full() parses the whole object again (new reference).
 */
void kobj_slim(struct kobj *o, const struct kube_res *r);
json_t *kobj_full(struct kobj *o);
const char *kobj_name(const struct kobj *o);
const char *kobj_namespace(const struct kobj *o);
const char *kobj_uid(const struct kobj *o);

/*
 * ---- Go types of the served kinds (kube/types.c) ----
 * The shapes of the k8s.io/api v1 types (and meta/v1) the API server decodes bodies into:
 * JSON names, protobuf field numbers, Go pointer-ness and omitempty (what json.Marshal
 * writes), and the list and map semantics server-side apply uses (+listType, +listMapKey,
 * +mapType, +structType, patchStrategy). Entries below KT_NSCALAR are the scalar shapes.
 */
enum kube_scalar {
	KT_STRING,
	KT_BYTES, /* []byte: base64 in JSON */
	KT_BOOL,
	KT_INT32,
	KT_INT64,
	KT_DOUBLE,
	KT_QUANTITY,  /* resource.Quantity: a string in JSON */
	KT_INTSTR,    /* intstr.IntOrString */
	KT_TIME,      /* metav1.Time: RFC 3339 seconds, null when zero */
	KT_MICROTIME, /* metav1.MicroTime: RFC 3339 microseconds */
	KT_DURATION,  /* metav1.Duration: Go's "1h2m3s" */
	KT_RAWEXT,    /* runtime.RawExtension: embedded JSON */
	KT_FIELDSV1,  /* metav1.FieldsV1: embedded JSON */
	KT_STRINGS,   /* a named []string in a map (authentication ExtraValue) */
	KT_NSCALAR,
};
#define KT_STRUCT KT_NSCALAR /* kube_type.kind of a struct */

enum {
	KF_PTR = 1 << 0,     /* a Go pointer: written when set, zero values included */
	KF_OMIT = 1 << 1,    /* json omitempty */
	KF_INLINE = 1 << 2,  /* json ",inline": the struct's fields are the parent's */
	KF_LIST = 1 << 3,    /* a slice of the type */
	KF_MAP = 1 << 4,     /* map[string] of the type */
	KF_ASSOC = 1 << 5,   /* list: +listType=map, items keyed by .keys */
	KF_SET = 1 << 6,     /* list: +listType=set */
	KF_ATOMIC = 1 << 7,  /* list or map: replaced as a whole */
	KTF_ATOMIC = 1 << 0, /* kube_type.flags: +structType=atomic */
};

struct kube_tfield {
	const char *name; /* JSON name */
	unsigned num;     /* protobuf field number */
	unsigned type;    /* index in kube_types[] (the element type of lists and maps) */
	unsigned flags;   /* KF_* */
	const char *keys; /* KF_ASSOC: the list-map keys, comma-separated */
	const char *def;  /* +default as JSON, or NULL */
};

struct kube_type {
	const char *name;
	unsigned kind;  /* KT_STRUCT, or the enum kube_scalar of a scalar shape */
	unsigned flags; /* KTF_* */
	unsigned nfields;
	const struct kube_tfield *fields;
};

extern const struct kube_type kube_types[];
/* The type of apiVersion/kind, or -1 for a kind without a Go type here (custom resources). */
int kube_type_of(const char *api_version, const char *kind);
/* The type of a custom resource: metadata typed, the rest without a schema. */
int kube_type_custom(void);
/* A struct's field by JSON name (inline fields are searched too), or NULL. */
const struct kube_tfield *kube_type_field(unsigned type, const char *name);
/* The JSON encoding/json writes for a zero value of the type (new reference). */
json_t *kube_type_zero(unsigned type);

/* ---- events (the watch window) ---- */
enum kube_event_type { KEV_ADDED, KEV_MODIFIED, KEV_DELETED };

struct kube_event {
	uint64_t rv;
	enum kube_event_type type;
	struct kube_res *res;
	struct kobj *obj; /* the new version; DELETED: the last one, with the deletion's RV */
	struct kobj *old; /* MODIFIED: the previous version (selector transitions) */
};

/* ---- PKI and tokens (kube/tls.c) ---- */
struct kube_pki {
	char *ca_key, *ca_cert;         /* PEM */
	char *server_key, *server_cert; /* SAN IP:127.0.0.1, DNS:localhost, kubernetes.default... */
	char *admin_key, *admin_cert;   /* CN=admin, O=system:masters */
	char *admin_token;              /* bearer token of the admin */
	char *sa_token; /* in-cluster service-account token (--serviceaccount-out) */
};

/* ---- errors: Kubernetes Status objects ---- */
struct kube_err {
	unsigned code;      /* HTTP status */
	const char *reason; /* NotFound, AlreadyExists, Conflict, Invalid, BadRequest, ... */
	char message[1024];
	json_t *details; /* owned; NULL for none */
};

/* ---- the module state ---- */
struct kube_watch;
struct kube_ctrl;
struct kube_ep;

struct emu_kube {
	struct emu *emu;
	struct kube_pki pki;
	bool pki_ready;
	uint64_t rv; /* cluster-wide counter, as etcd's revision */
	struct kube_res **res;
	size_t nres;
	/* Event ring: events with rv > window_rv are all retained. */
	struct kube_event *ring;
	size_t ring_cap, ring_start, ring_len;
	uint64_t window_rv;
	json_t *ns_pending; /* namespaces being emptied (namespace controller) */
	json_t *owners;     /* owner uid -> {"RESINDEX/KEY": true}: the collector's index */
	long ns_timer;
	struct kube_watch *watches;
	long watch_timer;
	struct kube_ctrl *ctrl;
	struct kube_ep *ep;    /* Endpoints and EndpointSlice controllers (kube/endpoints.c) */
	char cluster_cidr[64]; /* --cluster-cidr, or "" until read from the pods range */
	/* The field manager of the write in progress: the client's (rest.c, for the request)
	 * or a controller's (for its writes); NULL: KUBE_CTRL_MANAGER / "unknown". */
	const char *manager, *ctrl_manager;
	uint64_t kubelet_delay_ms, ccm_delay_ms;
};

struct emu_kube *kube_of(struct emu *emu);

/* kube/store.c */
int kube_store_init(struct emu_kube *k);
void kube_store_free(struct emu_kube *k);
/* Drops every object and event (load); keeps resource types. */
void kube_store_clear(struct emu_kube *k);
struct kube_res *kube_res_find(struct emu_kube *k, const char *group, const char *version,
			       const char *resource);
struct kube_res *kube_res_by_kind(struct emu_kube *k, const char *api_version, const char *kind);
/* By plural, singular, kind (case-insensitive) or short name; first match in table order. */
struct kube_res *kube_res_lookup(struct emu_kube *k, const char *name);
int kube_res_add_custom(struct emu_kube *k, const json_t *crd);
void kube_res_remove_custom(struct emu_kube *k, const json_t *crd);
/* Borrowed; NULL when absent. */
struct kobj *kube_get(struct kube_res *r, const char *ns, const char *name);
/* First index whose key is > after ("" = from the start), in r->items. */
size_t kube_lower_bound(const struct kube_res *r, const char *after);
/* Key of ns/name into buf. */
const char *kube_key(const struct kube_res *r, const char *ns, const char *name, char *buf,
		     size_t len);

enum kube_write_mode {
	KW_MAIN,     /* PUT/PATCH on the resource: status kept */
	KW_STATUS,   /* PUT/PATCH on /status: everything but status kept */
	KW_INTERNAL, /* controllers: the whole object */
};

enum {
	KWF_DRY_RUN = 1 << 0,
	KWF_CONTROLLER = 1 << 1, /* written by the emulated cluster itself */
	KWF_APPLIED = 1 << 2,    /* server-side apply: managedFields already computed */
	KWF_UNTRACKED = 1 << 3,  /* not a field manager's write (deletion metadata) */
};

/* The field manager of the emulated cluster's own writes, unless a controller names one. */
#define KUBE_CTRL_MANAGER "talos-gcp-emu"

/*
 * Writes. obj is stolen. On success *out (may be NULL) receives a new reference to the
 * stored version. 0 or -errno with e filled (the Status to answer).
 */
int kube_create(struct emu_kube *k, struct kube_res *r, const char *ns, json_t *obj, unsigned flags,
		struct kube_err *e, struct kobj **out);
int kube_update(struct emu_kube *k, struct kube_res *r, const char *ns, const char *name,
		json_t *obj, enum kube_write_mode mode, unsigned flags, struct kube_err *e,
		struct kobj **out);
/*
 * Delete with DeleteOptions (may be NULL): preconditions, propagationPolicy. *deleted is
 * true when the object is gone (false: finalizers pending, *out is the updated object).
 */
int kube_delete(struct emu_kube *k, struct kube_res *r, const char *ns, const char *name,
		const json_t *opts, unsigned flags, struct kube_err *e, struct kobj **out,
		bool *deleted);
/* Sets ns/name's object in a state file load: no events, no admission. */
int kube_store_put_loaded(struct emu_kube *k, struct kube_res *r, json_t *obj);
/* Sorts after a bulk load. */
void kube_store_sort(struct emu_kube *k);
/* The ring entry right after rv, or NULL; *too_old when rv predates the window. */
const struct kube_event *kube_events_after(struct emu_kube *k, uint64_t rv, bool *too_old);

/* Records a core/v1 Event about obj (namespace "default" for cluster-scoped objects),
 * aggregating repeats as the client-go event correlator does (count, lastTimestamp). */
void kube_record_event(struct emu_kube *k, struct kube_res *r, const struct kobj *obj,
		       const char *type, const char *reason, const char *component, const char *fmt,
		       ...) __attribute__((format(printf, 7, 8)));

/* kube/select.c */
struct kube_selector;
int kube_label_selector_parse(const char *text, struct kube_selector **out, char *err,
			      size_t errlen);
int kube_field_selector_parse(const char *text, const struct kube_res *r,
			      struct kube_selector **out, char *err, size_t errlen);
bool kube_selector_match(const struct kube_selector *s, const json_t *obj);
/* metadata.name=X in a field selector: X, so a get can replace a scan. */
const char *kube_selector_name(const struct kube_selector *s);
void kube_selector_free(struct kube_selector *s);
/* Label keys (qualified names) and values, as ValidateLabels checks them. */
bool kube_valid_label_key(const char *k, size_t n);
bool kube_valid_label_value(const char *v, size_t n);
/* A field of obj as a field selector sees it ("" when absent). buf for numbers/bools. */
const char *kube_field_value(const json_t *obj, const char *path, char *buf, size_t len);

/* kube/patch.c */
json_t *kube_merge_patch(const json_t *target, const json_t *patch);
int kube_json_patch(const json_t *target, const json_t *ops, json_t **out, char *err,
		    size_t errlen);
int kube_strategic_merge_patch(const json_t *target, const json_t *patch, json_t **out, char *err,
			       size_t errlen);

/* kube/table.c */
json_t *kube_table(struct emu_kube *k, struct kube_res *r, struct kobj *const *objs, size_t n,
		   const char *include_object);
/* Human duration as kubectl prints AGE ("5m", "3h2m"). buf >= 16. */
const char *kube_human_duration(int64_t seconds, char *buf, size_t len);
/* Seconds since a metav1.Time ("2026-01-02T03:04:05Z"); -1 when unparsable. */
int64_t kube_age_seconds(const char *ts);

/* kube/watch.c */
struct kube_watch_params {
	struct kube_res *res;
	const char *ns;                        /* NULL: all namespaces */
	struct kube_selector *labels, *fields; /* stolen */
	const char *rv;                        /* resourceVersion parameter, may be NULL */
	bool table, bookmarks, send_initial;
	const char *include_object;
	uint64_t timeout_s; /* 0: none */
};
int kube_watch_start(struct emu_kube *k, struct emu_request *req, struct kube_watch_params *p);
/* New events are in the ring: wake the streams that wait. */
void kube_watch_notify(struct emu_kube *k);
/* Ends every stream (state load): clients relist. */
void kube_watch_close_all(struct emu_kube *k);
void kube_watch_free_all(struct emu_kube *k);

/* kube/discovery.c: 1 when it answered (its paths), 0 otherwise. */
int kube_discovery_handle(struct emu_kube *k, struct emu_request *req);

/* kube/rest.c */
/* The API server's limit on request bodies (--max-request-bytes default: 3 MiB). */
#define KUBE_MAX_REQUEST_BYTES (3u * 1024 * 1024)
/* A request body (JSON or protobuf) as JSON; NULL with e filled (400, 413, 415). */
json_t *kube_parse_body(struct emu_request *req, struct kube_err *e);
int kube_rest_handle(struct emu_kube *k, struct emu_request *req);
int kube_reply_status(struct emu_request *req, struct kube_err *e);
int kube_reply_kobj(struct emu_request *req, unsigned code, struct kobj *o);

/* kube/nodes.c: admission per kind, before a write is stored. */
/* Create: defaults and validation of a new object. 0 or -EINVAL (e filled). */
int kube_admit_create(struct emu_kube *k, struct kube_res *r, json_t *obj, struct kube_err *e);
/* Update: old is the stored object. 0 or -EINVAL. */
int kube_admit_update(struct emu_kube *k, struct kube_res *r, const json_t *old, json_t *obj,
		      struct kube_err *e);
/* Reviews (KR_CREATE_ONLY): fills the status of the request object. */
int kube_review(struct emu_kube *k, struct kube_res *r, struct emu_request *req, json_t *obj,
		struct kube_err *e);

/*
 * kube/fieldset.c: field sets (the tree metadata.managedFields' FieldsV1 writes) and the
 * typed operations of server-side apply, after structured-merge-diff. type: a kube_types
 * index, or -1 for a value without a schema. Sets are JSON objects: children by path
 * element ("f:name", "k:{...}", "v:...", "i:N") and "." for a member.
 */
bool kube_fset_empty(const json_t *set);
void kube_fset_union(json_t *dst, const json_t *src);
json_t *kube_fset_difference(const json_t *a, const json_t *b);
void kube_fset_subtract(json_t *a, const json_t *b); /* in place */
json_t *kube_fset_intersection(const json_t *a, const json_t *b);
/* FieldsV1 <-> set; from_fields: NULL when malformed. */
json_t *kube_fset_to_fields(const json_t *set);
json_t *kube_fset_from_fields(const json_t *fields);
/* The member paths as fieldpath prints them (".spec.containers[name=\"x\"].image"). */
json_t *kube_fset_paths(const json_t *set);
/* ToFieldSet: the fields a value sets. *err: a schema error (an item without keys) or NULL. */
json_t *kube_fset_of(const json_t *obj, int type, const char **err);
/* Compare: what changed from lhs to rhs (lhs NULL: everything added). */
int kube_fset_compare(const json_t *lhs, const json_t *rhs, int type, json_t **added,
		      json_t **modified, json_t **removed, const char **err);
/* Merge rhs onto lhs (lists by key); NULL with *err on a bad list. */
json_t *kube_fset_merge(const json_t *lhs, const json_t *rhs, int type, const char **err);
/* The value without the members of set. */
json_t *kube_fset_remove(const json_t *v, const json_t *set, int type);
/* EnsureNamedFieldsAreMembers: struct fields with members below become members. */
json_t *kube_fset_named(const json_t *set, int type);

/* JSON as Go's encoding/json writes it (map keys sorted, <>& escaped); malloc'd. */
char *kube_go_json(const json_t *v);

/*
 * kube/managed.c: metadata.managedFields and server-side apply.
 * kube_managed_update: after an admitted create (old NULL) or update, sets obj's
 * managedFields for an Update by manager. req_mf: the managedFields the request carried
 * (stolen; NULL when none); pre: the object before admission (what the registry allocated
 * there is nobody's), or NULL.
 * kube_managed_apply: the object an apply makes of live (NULL: create) and the configuration
 * (stolen), managedFields included; NULL with e filled (409 with FieldManagerConflict causes
 * unless force, 400).
 */
/*
 * Stored objects hold managedFields that decode (the field manager relies on it and reads an
 * entry only when a write touches it): one loaded from a state file with ones that do not
 * loses them (false), as the API server's next write of it would.
 */
bool kube_managed_sanitize(json_t *obj);
void kube_managed_update(struct kube_res *r, const json_t *old, json_t *obj, json_t *req_mf,
			 const json_t *pre, enum kube_write_mode mode, const char *manager);
json_t *kube_managed_apply(struct kube_res *r, const json_t *live, json_t *config,
			   enum kube_write_mode mode, const char *manager, bool force,
			   struct kube_err *e);

/* kube/yaml.c: one YAML document as JSON (sigs.k8s.io/yaml's conversion). */
int kube_yaml_to_json(const void *text, size_t len, json_t **out, char *err, size_t errlen);

/* kube/protobuf.c */
/* Content-Type application/vnd.kubernetes.protobuf (parameters allowed). */
bool kube_protobuf_content_type(const char *content_type);
/*
 * A request body in the Kubernetes protobuf encoding ("k8s\0" + runtime.Unknown) as the JSON
 * object encoding/json writes for the same value. 0, or -EINVAL with err filled.
 */
int kube_protobuf_decode(const void *data, size_t len, json_t **out, char *err, size_t errlen);

/* kube/util.c */
int kube_errf(struct kube_err *e, unsigned code, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int kube_err_not_found(struct kube_err *e, const struct kube_res *r, const char *name);
int kube_err_exists(struct kube_err *e, const struct kube_res *r, const char *name);
int kube_err_conflict(struct kube_err *e, const struct kube_res *r, const char *name,
		      const char *why);
/* 422: causes is an array of {reason, message, field}, stolen. */
int kube_err_invalid(struct kube_err *e, const struct kube_res *r, const char *name,
		     json_t *causes);
/* The same for any group and kind ("meta.k8s.io", "CreateOptions"). */
int kube_err_invalid_gk(struct kube_err *e, const char *group, const char *kind, const char *name,
			json_t *causes);
/* Appends a field error to causes: reason FieldValueForbidden etc., message as kubectl prints. */
void kube_cause(json_t *causes, const char *reason, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void kube_err_clear(struct kube_err *e);
json_t *kube_status_json(const struct kube_err *e);
/* "resource" or "resource.group" as Kubernetes names a group resource in messages. */
const char *kube_qualified(const struct kube_res *r, char *buf, size_t len);
void kube_random_bytes(void *buf, size_t len);
void kube_uuid(char out[37]);
/* Five characters of the alphabet generateName uses. */
void kube_name_suffix(char out[6], unsigned n);
bool kube_dns1123_subdomain(const char *s);
bool kube_dns1123_label(const char *s);
/* json helpers */
const char *kj_str(const json_t *o, const char *path); /* dotted path, NULL if not a string */
json_t *kj_path(const json_t *o, const char *path);
json_t *kj_obj(json_t *o, const char *key); /* gets or creates an object member */
json_t *kj_now(void);                       /* metav1.Time now */

/* kube/tls.c */
int kube_pki_generate(struct kube_pki *p);
void kube_pki_free(struct kube_pki *p);
json_t *kube_pki_dump(const struct kube_pki *p);
int kube_pki_load(struct kube_pki *p, const json_t *state);
int kube_write_kubeconfig(struct emu_kube *k, const char *path);
int kube_write_serviceaccount(struct emu_kube *k, const char *dir);
/*
 * Client certificate signed by the CA (CN = user, O = groups) or a bearer token: sets
 * req->user and req->groups. 0, or -EACCES when neither is valid.
 */
int kube_authenticate(struct emu_kube *k, struct emu_request *req);

/* kube/endpoints.c: Endpoints and EndpointSlices of Services and of default/kubernetes. */
int kube_endpoints_init(struct emu_kube *k);
void kube_endpoints_free(struct emu_kube *k);
void kube_endpoints_on_event(struct emu_kube *k, const struct kube_event *ev);
/* Looks at every Service again (a start, a state load). */
void kube_endpoints_resync(struct emu_kube *k);
/*
 * state/kube.c: --state rows. Every store write passes ring_push(), which calls
 * kube_state_event(); a store change that makes no event (a CRD's objects going with it)
 * calls kube_state_res_cleared() first.
 */
int kube_state_register(struct emu_kube *k);
void kube_state_event(struct emu_kube *k, const struct kube_res *r, const struct kobj *o);
void kube_state_res_cleared(struct emu_kube *k, const struct kube_res *r);
void kube_state_instance_changed(struct emu_kube *k);
/* After a load: every Kubernetes row is rewritten. */
void kube_state_loaded(struct emu_kube *k);

/*
 * kube/workloads.c: what runs on the emulated nodes. The kubelet's side of pods (phase,
 * Ready, IPs), the DaemonSet, ReplicaSet and Deployment controllers, a minimal scheduler,
 * the pod garbage collector and the disruption controller (PodDisruptionBudget status).
 * Fed every stored event by controllers.c.
 */
struct kube_workloads;
struct kube_workloads *kube_workloads_new(struct emu_kube *k);
void kube_workloads_free(struct kube_workloads *w);
void kube_workloads_on_event(struct kube_workloads *w, const struct kube_event *ev);
/* After a state load: forget what was pending, look at everything again. */
void kube_workloads_reset(struct kube_workloads *w);
/* A policy/v1 LabelSelector (matchLabels, matchExpressions) against labels. NULL matches
 * nothing; {} matches everything. */
bool kube_label_selector_json_match(const json_t *selector, const json_t *labels);
/* status.conditions[] entry of that type (a Node's, a Pod's), or NULL. Borrowed. */
const json_t *kube_condition(const json_t *obj, const char *type);
/* The pod's Ready condition is True. */
bool kube_pod_ready(const json_t *pod);

/* kube/eviction.c: POST .../pods/NAME/eviction. 1 when the path was its own (answered). */
int kube_eviction_handle(struct emu_kube *k, struct emu_request *req);

/* kube/controllers.c */
int kube_ctrl_init(struct emu_kube *k);
void kube_ctrl_free(struct emu_kube *k);
/* Called for every stored event (after the write): controllers schedule their work. */
void kube_ctrl_on_event(struct emu_kube *k, const struct kube_event *ev);
void kube_ctrl_instance_changed(struct emu_kube *k, const char *zone, const char *name,
				const json_t *instance);
/* The cluster's own objects (CCM Deployment, ...) on a fresh start or after a load. */
void kube_ctrl_bootstrap(struct emu_kube *k);
json_t *kube_ctrl_dump(struct emu_kube *k);
void kube_ctrl_load(struct emu_kube *k, const json_t *state);

#endif
