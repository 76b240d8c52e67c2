/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plan: what differs between the desired and the live resources (create, update field by
 * field, replace, delete, as terraform plan prints them), and the API operations that close
 * the gap as a dependency graph. An operation waits for the ones it needs: a resource is
 * created after what it refers to, deleted after what refers to it (live references, and an
 * address's users), and one resource's operations run in order. A replaced resource takes
 * the live resources that refer to it along (they would keep it in use).
 */
#ifndef TALOS_GCP_PROVISION_PLAN_H
#define TALOS_GCP_PROVISION_PLAN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "provision/live.h"
#include "provision/model.h"
#include "provision/runner.h"

enum change_type { CH_CREATE, CH_UPDATE, CH_REPLACE, CH_DELETE };

struct field_diff {
	char field[48];
	json_t *old, *new; /* views' values; NULL when absent */
	bool replace;      /* this field forces the replacement */
};

struct change {
	enum change_type type;
	enum rkind kind;
	char key[224];
	struct field_diff *fields;
	size_t nfields;
	char because[224]; /* replaced along with this key (it refers to it) */
};

enum op_type { OP_INSERT, OP_DELETE, OP_CALL };

struct op {
	enum op_type type;
	enum rkind kind;
	char key[224];  /* the resource */
	char verb[32];  /* "insert", "delete", "patch", "setNamedPorts", "addInstances", ... */
	char method[8]; /* POST, PATCH, DELETE */
	char path[512]; /* "projects/P/..." */
	json_t *body;
	/* body.fingerprint must be current: on 412 it is read again from this path of the
	 * resource ("fingerprint", "metadata.fingerprint", "networkInterfaces.0.fingerprint"). */
	char fingerprint[48];
};

struct plan {
	char *cluster, *project;
	struct change *changes;
	size_t nchanges;
	struct op *ops;
	struct runner_job *jobs; /* the graph, one job per op */
	size_t nops;
	int critical_path; /* operations on the longest chain */
	size_t create, update, replace, destroy;
};

enum plan_flags {
	PLAN_DESTROY = 1 << 0,      /* down: delete everything owned */
	PLAN_KEEP_NETWORK = 1 << 1, /* down --keep-network: keep the network and subnetwork */
};

/*
 * Compares desired with live. Errors (exit 2): a foreign resource where the cluster wants
 * one ("not talos-gcp's"), an existing instance or image missing.
 */
int plan_make(const struct cluster_spec *s, const char *project, const struct resource_set *desired,
	      const struct live *live, unsigned flags, struct plan *out, struct error *err);
void plan_free(struct plan *p);

/* terraform-like text, or JSON (-o json). */
void plan_print_text(const struct plan *p, FILE *f, bool destroy);
int plan_print_json(const struct plan *p, FILE *f);

/* "instance zones/Z/instances/N" for messages. */
const char *plan_op_label(const struct op *op, char *buf, size_t len);

#endif
