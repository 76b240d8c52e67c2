/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compute Engine v1, internal interfaces shared by the files of src/emu/compute/ (and
 * auth/auth.c, core/control.c).
 *
 * Every resource is kept as the JSON document the API serves, in a collection sorted by
 * (scope, name): "zones/us-central1-a", "regions/us-central1" or "global", then the name.
 * That order is the documented default list order ("results are returned in alphanumerical
 * order based on the resource name"), makes page tokens stable (a token is the key of the
 * last item returned) and makes get a binary search.
 *
 * Mutations are Operations: a request is checked synchronously (4xx errors), then its
 * effect is described as JSON (the "mutation") and applied when the Operation completes,
 * after --operation-delay. Conflicts found at that point (an alias range taken in the
 * meantime) end the Operation with an error, as GCP reports them. A pending mutation is
 * data, so --state keeps it across a restart.
 */
#ifndef TALOS_GCP_EMU_COMPUTE_H
#define TALOS_GCP_EMU_COMPUTE_H

#include <jansson.h>

#include "common/str.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emu/compute/schema.h"
#include "emu/emu.h"

#define COMPUTE_PREFIX "/compute/v1/"
#define PAGE_MAX       500 /* maxResults: "Acceptable values are 0 to 500, inclusive." */

/* ---- errors: Google's shape, {"error":{"code","message","errors":[{...}]}} ---- */
struct api_error {
	unsigned status;      /* HTTP status; 0 = no error */
	const char *reason;   /* errors[0].reason: notFound, invalid, conditionNotMet, ... */
	const char *code;     /* the same failure inside an Operation: RESOURCE_NOT_FOUND, ... */
	const char *location; /* errors[0].location, e.g. "If-Match" */
	const char *location_type; /* "header", "parameter" */
	char message[512];
};

/* Fills e and returns -EINVAL (so handlers can 'return api_fail(...)'). */
int api_fail(struct api_error *e, unsigned status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Same, for failures that surface in an Operation's error.errors[].code. */
int api_fail_code(struct api_error *e, unsigned status, const char *reason, const char *code,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int api_not_found(struct api_error *e, const char *path);
int api_reply_error(struct emu_request *req, const struct api_error *e);
/* {"errors":[{"code","message"}]} for Operation.error. */
json_t *api_error_operation_json(const struct api_error *e);

/* Replies with body (stolen) as compact JSON; a faster writer than json_dumps (json.c). */
int compute_reply(struct emu_request *req, unsigned status, json_t *body);
char *compute_json_text(const json_t *v, size_t *len);

/* ---- small helpers (util.c) ---- */
/* Base64, standard alphabet with padding on output; either alphabet, padding optional on input. */
char *b64_encode(const void *data, size_t len, bool url, bool pad);
/* 0 or -EINVAL; *out is malloc'd (NUL-terminated, not counted). */
int b64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len);
void random_bytes(void *buf, size_t len);
/* A fresh fingerprint: base64 of 8 random bytes. Caller frees. */
char *new_fingerprint(void);
/* Decoded comparison of two base64 fingerprints; false when either does not decode. */
bool fingerprint_equal(const char *a, const char *b);
/* RFC 1035 name as Compute requires: [a-z]([-a-z0-9]{0,61}[a-z0-9])? */
bool valid_name(const char *s);
/* UTF-8 as JSON needs it (RFC 3629): well-formed, no overlong forms or surrogates. */
bool utf8_valid(const char *s, size_t len);
/* Code points in a valid UTF-8 string (GCP's limits count characters). */
size_t utf8_chars(const char *s);
/* Replaces, in place, every byte that starts no well-formed sequence with '?'. */
void utf8_scrub(char *s);
/* True when s is a canonical UUID other than the zero UUID (requestId rule). */
bool valid_uuid(const char *s);
/* json_object_get(o, k) as a string, or NULL. */
const char *jstr(const json_t *o, const char *k);
/* "%s" formatting into a json_t string. */
json_t *jsonf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wall clock as "2026-11-26T05:04:03.123-08:00"-style text (GCP prints -07:00/-08:00; we use
 * -00:00). */
json_t *json_now(void);
/* Milliseconds since the epoch. */
uint64_t wall_ms(void);

/* ---- batch requests (batch.c) ---- */
/* One request of a multipart/mixed batch; body points into the batch's body. */
struct batch_part {
	char *content_id; /* without its <>, or NULL */
	char *method, *target;
	char **headers; /* "Name: value" */
	size_t nheaders;
	const char *body;
	size_t body_len;
};
/* Splits a batch body (content_type is the outer Content-Type). 0, -EINVAL with err, -ENOMEM. */
int batch_parse(const char *content_type, const char *body, size_t len, struct batch_part **parts,
		size_t *n, char *err, size_t errlen);
void batch_parts_free(struct batch_part *parts, size_t n);

/* ---- documented field limits (limits.c) ---- */
/* description (2,048 characters) and labels of any resource body. */
int limits_check_resource(const json_t *res, struct api_error *e);
/* Instance tags: RFC 1035 names, 1-63 characters, at most 64. field: "resource.tags". */
int limits_check_tags(const json_t *tags, const char *field, struct api_error *e);

/* ---- catalogue (catalog.c) ---- */
struct zone_info {
	const char *name;   /* "us-central1-a" */
	const char *region; /* "us-central1" */
};
extern const struct zone_info compute_zones[];
extern const size_t compute_nzones;
extern const char *const compute_regions[];
extern const size_t compute_nregions;
bool compute_zone_exists(const char *zone);
bool compute_region_exists(const char *region);
const char *compute_zone_region(const char *zone);

/* ---- collections (store.c) ---- */
enum scope_kind {
	SCOPE_GLOBAL = 1 << 0,
	SCOPE_REGION = 1 << 1,
	SCOPE_ZONE = 1 << 2,
};

struct compute;
struct item;
struct coll;

/* A request as the router parsed it. */
struct call {
	struct emu_request *req;
	struct compute *c;
	const char *scope; /* "zones/z", "regions/r", "global" (NULL for aggregated) */
	enum scope_kind skind;
	const char *scope_name; /* "z" / "r" / "" */
	const char *name;       /* resource name or NULL */
	const char *verb;       /* custom method after the name, or NULL */
	json_t *body;           /* parsed request body (POST/PATCH/PUT), owned by the router */
	const char *request_id; /* ?requestId= */
	struct coll *coll;      /* the collection addressed (NULL for operations, aggregated) */
};

/*
 * One kind of resource. The generic handlers (list, aggregated list, get, insert, delete)
 * call the hooks; a NULL hook means the generic behaviour.
 */
struct coll_type {
	const char *name;      /* URL segment and aggregated items key: "instances" */
	const char *kind;      /* "compute#instance" */
	const char *list_kind; /* "compute#instanceList" */
	const char *agg_kind;  /* "compute#instanceAggregatedList", NULL: no aggregated list */
	const char *schema;    /* request body message: "Instance" */
	unsigned scopes;       /* where it lives: SCOPE_* */
	bool readonly;         /* the catalogue: no insert/delete, not in --state */
	bool unscoped;         /* URL without scope: projects/P/zones (zones, regions) */
	/*
	 * insert: checks the body and builds the resource as served (name, id, selfLink,
	 * creationTimestamp are set by the caller). Returns 0 or -errno with e filled.
	 */
	int (*prepare_insert)(struct call *k, json_t *res, struct api_error *e);
	/* At completion: final checks (conflicts) and side effects; res is the pending item's. */
	int (*apply_insert)(struct compute *c, struct item *it, struct api_error *e);
	/* delete: synchronous refusal (in use), then the effect at completion. */
	int (*check_delete)(struct compute *c, struct item *it, struct api_error *e);
	void (*apply_delete)(struct compute *c, struct item *it);
	/* Custom methods (PATCH/POST on NAME or NAME/VERB); return a reply status or -errno. */
	int (*method)(struct call *k, struct item *it, struct api_error *e);
	/* A mutation of type "method" completing: applies it. */
	int (*apply_method)(struct compute *c, json_t *mutation, struct api_error *e);
	/* Called after load (rebuild indexes) and before free. */
	void (*on_load)(struct compute *c, struct item *it);
	/*
	 * Paths the generic code does not know (images/family/NAME): 1 when it replied, 0 to go
	 * on as usual, -errno with e filled.
	 */
	int (*route)(struct call *k, struct api_error *e);
};

struct item {
	char *scope; /* "zones/z" */
	char *name;
	json_t *res;  /* the resource as served */
	bool pending; /* insert accepted, Operation not done: invisible, name reserved */
	const struct coll_type *type; /* its collection's (set by coll_add) */
};

struct coll {
	const struct coll_type *type;
	struct item **items; /* sorted by (scope, name) */
	size_t len, cap;
	struct compute *c; /* for --state (coll_add and coll_remove mark the rows) */
};

struct coll *coll_new(const struct coll_type *type);
void coll_free(struct coll *co);
/* Includes pending items; callers check it->pending. */
struct item *coll_find(const struct coll *co, const char *scope, const char *name);
/* Steals res. 0, -EEXIST or -ENOMEM. */
int coll_add(struct coll *co, const char *scope, const char *name, json_t *res, bool pending,
	     struct item **out);
void coll_remove(struct coll *co, struct item *it);
/* Index of the first item with key > (scope, name) (strictly greater when after). */
size_t coll_lower_bound(const struct coll *co, const char *scope, const char *name, bool after);
struct coll *compute_coll(struct compute *c, const char *name);

/* List parameters: maxResults, pageToken, filter, orderBy, includeAllScopes. */
struct filter;
struct list_params {
	unsigned max;
	char *after_scope, *after_name; /* from pageToken */
	struct filter *filter;
	bool include_all_scopes;
};
int list_params_parse(struct emu_request *req, struct list_params *p, struct api_error *e);
void list_params_free(struct list_params *p);
/* Pages of one scope, and across scopes (aggregated). Return the list document. */
json_t *coll_list(struct compute *c, struct coll *co, const char *scope,
		  const struct list_params *p);
json_t *coll_aggregated(struct compute *c, struct coll *co, const struct list_params *p);

/* filter (filter.c): the regular-expression and AIP-160 forms Compute accepts. */
int filter_parse(const char *text, struct filter **out, char *err, size_t errlen);
bool filter_match(const struct filter *f, const json_t *res);
void filter_free(struct filter *f);
/*
 * The range of names a filter admits, from its top-level AND terms on "name" (=, <, <=, >,
 * >=), so that lists walk only that slice of a collection (sorted by name). lo/hi are NULL
 * when unbounded; borrowed from f. The filter is still applied to every item in the slice.
 */
struct name_range {
	const char *lo, *hi;
	bool lo_incl, hi_incl;
};
void filter_name_range(const struct filter *f, struct name_range *r);

/* ---- the Compute state ---- */
struct pending_op;

struct compute {
	struct emu *emu;
	struct coll **colls; /* every collection, by type */
	size_t ncolls;
	json_t *project;            /* the Project resource */
	json_t *request_ids;        /* requestId -> "scope/operations/name" */
	struct pending_op *pending; /* Operations not DONE yet */
	struct waiter *waiters;     /* suspended operations/wait requests */
	struct ipindex *ipidx;      /* addresses in use per network (ipindex.c) */
	json_t *ig_members;         /* instance groups: "zones/Z/NAME" -> [instance URLs] */
	char *old_base;             /* URL base found in --state, rewritten once bound */
	uint64_t nat_counter;       /* external addresses handed out */
};

struct compute *compute_of(struct emu *emu);

/* URLs: base "http://127.0.0.1:PORT/compute/v1/" + path. */
json_t *compute_url(struct compute *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *compute_url_str(struct compute *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * Reduces a resource reference (full URL with any host, "projects/p/...", "zones/z/...",
 * "global/...", or a bare name) to its parts. want is the collection ("subnetworks");
 * default_scope is used for bare names. Returns 0 or -EINVAL.
 */
int compute_parse_ref(struct compute *c, const char *ref, const char *want,
		      const char *default_scope, char *scope, size_t scope_len, char *name,
		      size_t name_len);
/* A new unique id ("1234567890123456789"). */
json_t *compute_new_id(struct compute *c);

/* ---- operations (operations.c) ---- */
/*
 * Creates an Operation for a mutation in scope (the scope of its target), records
 * requestId, schedules completion, and replies with it (200). mutation is stolen; it
 * holds at least "op", "collection", "scope", "name".
 */
int op_start(struct call *k, const char *operation_type, const char *target_scope,
	     const char *target_name, const char *target_collection, json_t *target_id,
	     json_t *mutation);
/* requestId seen before: replies with that Operation and returns 1; 0 when new. */
int op_replay(struct call *k);
int op_handle(struct call *k, struct api_error *e); /* .../operations[/NAME[/wait]] */
void op_free_all(struct compute *c);
json_t *op_dump_pending(struct compute *c);
int op_load_pending(struct compute *c, json_t *pending);
/* Fails every suspended wait (PUT /_emu/state replaces the world under them). */
void op_release_waiters(struct compute *c);

/* ---- resource types ---- */
extern const struct coll_type ct_zones, ct_regions, ct_machine_types, ct_operations;
extern const struct coll_type ct_networks, ct_subnetworks, ct_instances;
extern const struct coll_type ct_addresses, ct_forwarding_rules, ct_health_checks,
    ct_backend_services, ct_firewalls, ct_instance_groups, ct_instance_group_managers;
extern const struct coll_type ct_images, ct_routers, ct_target_tcp_proxies;
/* An instance is gone: it leaves its instance groups. */
void instance_groups_forget(struct compute *c, const char *instance_url);
/* The members of an instance group (created on demand with create). Borrowed. */
json_t *instance_group_members(struct compute *c, const struct item *g, bool create);

/* ---- references, in-use checks, updates (refs.c) ---- */
/* The existing (not pending) resource ref names in collection, or NULL. */
struct item *compute_ref_item(struct compute *c, const char *ref, const char *collection,
			      const char *default_scope);
/* 400 resourceInUseByAnotherResource when a resource of users[] refers to it (lb.c). */
int compute_check_unused(struct compute *c, struct item *it, const char *const *users, size_t n,
			 struct api_error *e);
/* The users GCP counts beyond each type's own check_delete hook (generic_delete calls it). */
int compute_check_in_use(struct compute *c, struct item *it, const char *collection,
			 struct api_error *e);
/* RFC 7396 JSON merge patch of target, in place. */
void compute_merge_patch(json_t *target, const json_t *patch);
/* 412 conditionNotMet unless body's fingerprint equals res's (decoded). */
int compute_check_fingerprint(const json_t *body, const json_t *res, const char *what,
			      struct api_error *e);
void compute_new_fingerprint(json_t *obj);

/* update (PUT) and patch (PATCH, JSON merge patch) of a whole resource. */
struct update_rules {
	const char *what;             /* "backend service", for messages */
	const char *const *immutable; /* NULL-terminated fields that cannot change */
	bool fingerprint;             /* an up-to-date fingerprint is required; it changes */
	/* Checks and normalizes the resource as it would be (the type's insert checks). */
	int (*prepare)(struct call *k, json_t *res, struct api_error *e);
};
int compute_update_method(struct call *k, struct item *it, const struct update_rules *r,
			  struct api_error *e);
/* Completes one (the type's apply_method for "update" and "patch"). */
int compute_update_apply(struct compute *c, json_t *mutation, struct api_error *e);

/* images.c: a disk's sourceImage must exist (or be a public image); its size in GB. */
int image_check_source(struct compute *c, const char *ref, const char *field, uint64_t *disk_gb,
		       struct api_error *e);

/* health.c: backendServices.getHealth, as the emulator models backend health. */
int backend_service_get_health(struct call *k, struct item *bs, struct api_error *e);

/* "projects/P/..." for a URL of this emulator (messages name resources that way). */
const char *compute_rel(const struct compute *c, const char *url);
int catalog_init(struct compute *c);
json_t *catalog_project(struct compute *c);
/* The project number as text (metadata server, default service account). Static buffer. */
const char *compute_project_number(struct compute *c);

/* Generic handlers (compute.c). */
int generic_insert(struct call *k, struct coll *co, struct api_error *e);
int generic_delete(struct call *k, struct coll *co, struct item *it, struct api_error *e);
/* Applies a completed mutation (insert, delete or a type's method). */
int compute_apply(struct compute *c, json_t *mutation, struct api_error *e);

/* networks (networks.c) */
struct item *compute_network(struct compute *c, const char *name);
struct item *compute_subnetwork(struct compute *c, const char *region, const char *name);

/* IPv4 ranges: "a.b.c.d/n" without host bits, as [lo, hi]. 0 or -EINVAL. */
int cidr4_parse(const char *s, uint32_t *lo, uint32_t *hi, unsigned *prefix);
char *cidr4_format(uint32_t lo, unsigned prefix);
char *ip4_format(uint32_t ip);
/* A subnetwork's primary range (range_name NULL) or named secondary range; -ENOENT if none. */
int subnet_range(const json_t *subnet, const char *range_name, uint32_t *lo, uint32_t *hi,
		 unsigned *prefix);
/* The network name a resource's "network" reference points at (into buf), or NULL. */
const char *network_name_of(struct compute *c, const json_t *res, char *buf, size_t len);

/* instances (instances.c) */
void instances_notify(struct compute *c, const char *zone, const char *name, const json_t *res);
/* reset, stop, start (lifecycle.c): the verb is one of them; the request; its completion. */
bool instance_lifecycle_verb(const char *verb);
int instance_lifecycle_method(struct call *k, struct item *it, struct api_error *e);
int instance_lifecycle_apply(struct compute *c, struct item *it, const char *method,
			     struct api_error *e);
/* /_emu/fingerprint: new nic fingerprint; returns it (borrowed) or NULL. */
const char *instances_bump_fingerprint(struct compute *c, const char *zone, const char *name,
				       const char *nic);

/* ip index (ipindex.c): IPv4 ranges in use, per network. */
struct ipindex;
struct ipindex *ipindex_new(void);
void ipindex_free(struct ipindex *x);
void ipindex_clear(struct ipindex *x);
/* Owner string is copied. -EEXIST when it overlaps an existing entry. */
int ipindex_add(struct ipindex *x, const char *network, uint32_t lo, uint32_t hi,
		const char *owner);
/* Removes every range of owner in network. */
void ipindex_remove_owner(struct ipindex *x, const char *network, const char *owner);
/* Removes the entry [lo, hi] of owner (the exact range), if there is one. */
void ipindex_remove_range(struct ipindex *x, const char *network, uint32_t lo, uint32_t hi,
			  const char *owner);
/* The owner of a range overlapping [lo, hi], or NULL. */
const char *ipindex_overlap(const struct ipindex *x, const char *network, uint32_t lo, uint32_t hi,
			    const char *ignore_owner);
/*
 * First free aligned block of 2^(32-prefix) addresses inside [range_lo, range_hi], skipping
 * [skip_lo, skip_hi] pairs in extra (n pairs, may be NULL). 0 and *out, or -ENOSPC.
 */
int ipindex_alloc(const struct ipindex *x, const char *network, uint32_t range_lo,
		  uint32_t range_hi, unsigned prefix, const char *ignore_owner,
		  const uint32_t *extra, size_t nextra, uint32_t *out);

/*
 * ---- --state (state/compute.c) ----
 *
 * THE RULE for code that changes a stored resource: coll_add() and coll_remove() record
 * themselves, and compute_apply() records the target of every completing Operation. Any
 * other change in place (json_object_set* on it->res, it->pending, an item changed as a side
 * effect of another one's Operation, a change outside an Operation) is followed by
 *
 *     item_changed(c, it);
 *
 * which makes --state save that item before the next reply leaves. Without it the change is
 * lost at a restart (tests/integration/test_emu_state.py checks the database against memory).
 */
void item_changed(struct compute *c, const struct item *it);
int compute_state_register(struct compute *c);
/* After a load: every Compute row is rewritten. */
void compute_state_loaded(struct compute *c);
/* A pending Operation's mutation (NULL: it completed). */
void compute_state_pending(struct compute *c, const char *scope, const char *name,
			   const json_t *mutation);
void compute_state_request_id(struct compute *c, const char *request_id, const json_t *ref);
/* The NAT counter and instance group members may have changed. */
void compute_state_meta(struct compute *c);

/* internal IP ownership (ipowner.c): instances, addresses, forwarding rules */
/* "SCOPE/COLLECTION/NAME", the owner key of a resource in the ip index. Caller frees. */
char *ip_owner_key(const char *scope, const char *collection, const char *name);
/* The resource an owner key names (possibly pending), and its collection's name. */
struct item *ip_owner_item(struct compute *c, const char *key, const char **collection);
/* "a.b.c.d" (no prefix). 0 or -EINVAL. */
int ip4_parse(const char *s, uint32_t *out);
/* The subnetwork a resource's "subnetwork" reference names, and its network's name. */
struct item *ip_subnet_of(struct compute *c, const json_t *res, char *net, size_t netlen);
/* ip is in the subnet's primary range, outside its first two and last two addresses. */
bool ip_in_primary(const json_t *subnet, uint32_t ip);
/* IP_IN_USE_BY_ANOTHER_RESOURCE with GCP's message; returns -EINVAL. */
int ip_in_use(struct api_error *e, unsigned status, const char *what);
/* purpose SHARED_LOADBALANCER_VIP: several forwarding rules may use it. */
bool address_shared(const json_t *addr);
bool address_has_user(const json_t *addr, const char *url);
/* No users, or url as the only one. */
bool address_free_for(const json_t *addr, const char *url);
/* users[] += url, status IN_USE. 0 or -ENOMEM. */
int address_add_user(struct compute *c, struct item *addr, const char *url);
/* users[] -= url; RESERVED when none is left. */
void address_drop_user(struct compute *c, struct item *addr, const char *url);
/* The same, on every address that lists url. */
void addresses_drop_user(struct compute *c, const char *url);
/* The (visible) address a reference with a '/' names, or NULL. */
struct item *address_by_ref(struct compute *c, const char *ref, const char *default_scope);
/* The reserved address holding ip in network, or NULL. */
struct item *address_holding(struct compute *c, const char *network, uint32_t ip);

/* auth/auth.c, for the Operation's "user" and the state file. */
const char *emu_auth_principal(struct emu_request *req);
json_t *emu_auth_dump(struct emu *emu);
int emu_auth_load(struct emu *emu, json_t *state);

#endif
