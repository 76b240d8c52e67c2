/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster's GCP resources: what the spec wants (desired), what the project holds (live),
 * and the normalized views the plan compares.
 *
 * Names are deterministic from the cluster name (NAME, NAME-nodes, NAME-cp-0, ...), so a
 * second run finds what the first made. Every resource talos-gcp creates carries the
 * ownership marker: the label talos-gcp-cluster=NAME where the resource has labels
 * (addresses, forwarding rules, images, instances), else "talos-gcp-cluster=NAME" in its
 * description. Only marked resources are ever changed or deleted; a resource that has a
 * wanted name without the marker is a foreign one, and the plan refuses to go on.
 *
 * References in request bodies are partial URLs ("projects/P/regions/R/subnetworks/N"), which
 * the Compute API accepts; views reduce the URLs the API returns to the same form.
 */
#ifndef TALOS_GCP_PROVISION_MODEL_H
#define TALOS_GCP_PROVISION_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "provision/spec.h"

#define MARKER_LABEL "talos-gcp-cluster"
#define ROLE_LABEL   "talos-gcp-role"

enum rkind {
	RK_NETWORK,
	RK_SUBNETWORK,
	RK_ROUTER,
	RK_FIREWALL,
	RK_ADDRESS,
	RK_IMAGE,
	RK_INSTANCE,
	RK_HEALTH_CHECK,
	RK_INSTANCE_GROUP,
	RK_BACKEND_SERVICE,
	RK_TARGET_TCP_PROXY,
	RK_FORWARDING_RULE,
	RK_COUNT
};

struct rkind_info {
	const char *collection; /* URL segment, aggregated list key: "forwardingRules" */
	const char *label;      /* what plan prints: "forwarding rule" */
	bool labels;            /* the marker is a label (else in the description) */
	bool aggregated;        /* listed with aggregated/ (else a global list) */
};
extern const struct rkind_info rkinds[RK_COUNT];

struct resource {
	enum rkind kind;
	char scope[96]; /* "global", "regions/R", "zones/Z" */
	char name[64];
	char key[224]; /* "SCOPE/COLLECTION/NAME": unique, and a path under projects/P/ */
	json_t *body;  /* desired: the insert body; live: the resource as the API returned it */
	bool existing; /* desired: referenced, not talos-gcp's (must exist; never touched) */
	char **needs;  /* desired: keys of the resources its body refers to */
	size_t nneeds;
	json_t *members; /* instance groups: instance keys (desired: wanted; live: current) */
	char where[64];  /* desired: the spec value it comes from, for errors */
};

struct resource_set {
	struct resource **items;
	size_t n, cap;
};

struct resource *resource_new(enum rkind kind, const char *scope, const char *name);
void resource_free(struct resource *r);
int rset_add(struct resource_set *set, struct resource *r); /* takes r, even on error */
struct resource *rset_find(const struct resource_set *set, const char *key);
void rset_free(struct resource_set *set);

/* "global/networks/N" from a URL or partial URL of this project; NULL if not Compute's. */
const char *model_key_of(const char *url, const char *project, char *buf, size_t len);

/* The desired resources of s in project (existing instances must have their zones set). */
int model_desired(const struct cluster_spec *s, const char *project, struct resource_set *out,
		  struct error *err);

/* Is a live resource talos-gcp's for cluster? */
bool model_owned(enum rkind kind, const json_t *res, const char *cluster);

/*
 * The fields the plan compares, normalized (URLs as keys, sets sorted, defaults filled), as
 * an object of field name -> value. For a desired resource, live resolves references whose
 * value only the API knows (the IP of an address a forwarding rule uses). New reference.
 */
json_t *model_view(const struct resource *r, bool desired, const struct resource_set *live,
		   const char *project);

/* How a field that differs is brought back. */
enum model_update {
	MU_REPLACE = 0,   /* delete and create */
	MU_PATCH,         /* the collection's patch (with the fingerprint where it has one) */
	MU_NAMED_PORTS,   /* instanceGroups.setNamedPorts */
	MU_SET_SERVICE,   /* targetTcpProxies.setBackendService */
	MU_PROXY_HEADER,  /* targetTcpProxies.setProxyHeader */
	MU_SET_METADATA,  /* instances.setMetadata */
	MU_ADD_POD_RANGE, /* instances.updateNetworkInterface: add the pods /24 */
	MU_SET_LABELS,    /* instances.setLabels */
	MU_SET_TAGS,      /* instances.setTags */
};
enum model_update model_field_update(enum rkind kind, const char *field);
/* Fields whose values are secrets (shown as a digest). */
bool model_field_sensitive(enum rkind kind, const char *field);

#endif
