/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp doctor: a linter for the configuration of a Talos cluster on GCP.
 *
 * Inputs are YAML (or JSON) streams: Kubernetes objects, Talos machine configs and patches,
 * Cilium Helm values, and Compute Engine resources (as gcloud prints them with --format=yaml,
 * or as --live reads them). Each document is classified, checked on its own, and the
 * documents that matter across the set (Talos, Cilium, CCM, kube-controller-manager,
 * vip-alias, load balancer resources, Nodes) are kept until doctor_finish() checks the set
 * as a whole. Files are loaded one at a time and freed unless one of their documents is kept,
 * so memory follows the size of the cluster's configuration, not of the repository.
 */
#ifndef TALOS_GCP_DOCTOR_DOCTOR_H
#define TALOS_GCP_DOCTOR_DOCTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "doctor/rules.h"
#include "doctor/ytree.h"

enum doctor_format { DOCTOR_TEXT = 0, DOCTOR_JSON, DOCTOR_SARIF };

/* The "version" of the DOCTOR_JSON document (docs/schema/doctor.schema.json). */
#define DOCTOR_JSON_VERSION 1

struct doctor_options {
	const char *vip;  /* "10.0.0.2": NULL to take it from the inputs (default 10.0.0.2) */
	unsigned vpc_mtu; /* 0: 1460, or the network's mtu when a compute#network is read */
	bool disabled[R__COUNT];          /* --disable RULE */
	size_t max_file_size;             /* 0: 32 MiB */
	const struct yaml_limits *limits; /* NULL: yaml_default_limits */
	bool verbose;                     /* text output lists skipped documents too */
	uint64_t lb_pending_after_s;      /* lb-pending: 0 means 300 (5 minutes) */
	int64_t now;                      /* seconds since the epoch; 0: the clock's */
};

struct finding {
	enum rule_id rule;
	enum severity severity;
	uint32_t source;    /* index into doctor.sources */
	uint32_t line, col; /* 0 when the source has no positions (objects read from an API) */
	char *message;
};

/* A file that could not be checked (error) or was left out (skip), with the reason. */
struct doctor_problem {
	uint32_t source;
	uint32_t line, col;
	bool error; /* true: could not check (exit 2); false: skipped on purpose */
	bool quiet; /* a document no rule reads: shown in text output only when verbose */
	char *message;
};

struct doctor_source {
	char *name;   /* a path as given, or "kube:..." / "gce:..." for what --live reads */
	bool logical; /* not a file: reported without a physical location */
};

struct doctor_stats {
	size_t files, documents, skipped_files, skipped_documents;
};

struct doctor;

int doctor_new(struct doctor **out, const struct doctor_options *opt);
void doctor_free(struct doctor *d);

/* A file, a directory (walked in name order: *.yaml, *.yml, *.json; hidden entries skipped), or
 * "-" for stdin. Problems are recorded, not returned: only -ENOMEM is fatal. */
int doctor_add_path(struct doctor *d, const char *path);
/* A YAML stream held in memory, named name in the report. */
int doctor_add_buffer(struct doctor *d, const char *name, const char *buf, size_t len);
/* An object read from an API (Kubernetes or Compute JSON), named name in the report. */
int doctor_add_json(struct doctor *d, const char *name, const json_t *obj);
/* Records that the inputs hold the complete list of a kind of live state (so that an absence
 * means something): the region's addresses, the cluster's pods, its workloads (Deployments,
 * DaemonSets), the network's firewall rules. */
void doctor_set_complete(struct doctor *d, const char *what);
/* Records a problem that is not tied to a document (a live API call failed, say); source
 * names starting with "kube:" or "gce:" are logical (not files). */
int doctor_add_problem(struct doctor *d, const char *source, bool error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Runs the checks on the set as a whole and sorts the findings. Call once, after the inputs. */
int doctor_finish(struct doctor *d);

const struct finding *doctor_findings(const struct doctor *d, size_t *n);
const struct doctor_problem *doctor_problems(const struct doctor *d, size_t *n);
const struct doctor_source *doctor_source(const struct doctor *d, uint32_t index);
const struct doctor_stats *doctor_stats(const struct doctor *d);
/* Findings at or above min. */
size_t doctor_count(const struct doctor *d, enum severity min);
/* True when an input could not be checked (exit 2). */
bool doctor_had_errors(const struct doctor *d);

/* Text (like a compiler), JSON, or SARIF 2.1.0. 0 or -errno. */
int doctor_write(const struct doctor *d, enum doctor_format fmt, FILE *out);
/* Prints a rule's id, severity, section and rationale. */
void doctor_explain(const struct rule *r, FILE *out);

#endif
