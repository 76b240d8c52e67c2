/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster spec (docs/cluster-spec.md, examples/cluster.yaml): what a cluster's GCP
 * networking should be, declared in YAML. Parsed with libyaml (doctor/ytree: every node
 * keeps its line and column), checked completely before anything talks to an API: unknown
 * keys, wrong types and impossible values (overlapping ranges, a VIP outside the node range or
 * reserved by GCP, more nodes than /24s in the pods range, names too long once suffixed) are
 * errors "FILE:LINE:COL: message".
 */
#ifndef TALOS_GCP_PROVISION_SPEC_H
#define TALOS_GCP_PROVISION_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define SPEC_NAME_MAX 64 /* RFC 1035 labels as Compute names them: 63 characters */

/* Where a value came from, for errors found after parsing (live checks included). */
struct spec_where {
	char path[96]; /* "workers.existing[1]" */
	uint32_t line, col;
};

struct spec_label {
	char *key, *value;
};

/* An instance that exists already: referenced (instance groups), never changed or deleted. */
struct spec_existing {
	char *name;
	char *zone; /* NULL: found by name in the project */
};

struct spec_pool {
	unsigned count;     /* instances talos-gcp creates: NAME-cp-N / NAME-worker-N */
	char *machine_type; /* default e2-standard-4 */
	unsigned disk_size_gb;
	char *disk_type; /* default pd-balanced */
	char **tags;
	size_t ntags;
	struct spec_label *labels;
	size_t nlabels;
	char *user_data_path; /* as written (relative to the spec's directory) */
	char *user_data;      /* the file's content: a Talos machine config, secret */
	size_t user_data_len;
	/* "default", an e-mail address, or NULL (none). Control planes: "default". */
	char *service_account;
	struct spec_existing *existing;
	size_t nexisting;
};

enum spec_ingress { SPEC_INGRESS_NONE = 0, SPEC_INGRESS_TCP_PROXY, SPEC_INGRESS_PASSTHROUGH };

struct cluster_spec {
	char *path; /* the file, as given */
	char *name, *project, *region;
	char **zones;
	size_t nzones;
	struct {
		char node_cidr[20], pod_cidr[20], service_cidr[20], vip[16];
		unsigned mtu;
	} network;
	struct {
		char *name;       /* the image instances boot from */
		char *project;    /* of an existing image; NULL: the spec's project */
		char *family;     /* an existing family instead of a name */
		char *source_uri; /* https://storage.googleapis.com/BUCKET/OBJECT: up creates it */
	} image;
	struct spec_pool control_plane, workers;
	bool cp_external; /* controlPlane.external: tcp-proxy (Talos guide: 443 -> 6443) */
	unsigned cp_external_port;
	struct {
		enum spec_ingress type;
		unsigned ports[8];
		size_t nports;
		unsigned target_port; /* on the workers */
		bool tcp, udp;        /* passthrough protocols */
		unsigned addresses;   /* passthrough: how many external addresses */
	} ingress;
	struct spec_where *where; /* locations of the values, for later errors */
	size_t nwhere;
};

enum spec_flags {
	/* Do not read userData files (down, fuzzing): only their names are checked. */
	SPEC_NO_FILES = 1 << 0,
};

/* Reads and checks path. *out is freed with spec_free(). 0, or -EINVAL/-errno with err. */
int spec_load(const char *path, unsigned flags, struct cluster_spec **out, struct error *err);
/* The same on a buffer; path names it in messages, base_dir resolves userData. */
int spec_parse(const char *buf, size_t len, const char *path, const char *base_dir, unsigned flags,
	       struct cluster_spec **out, struct error *err);
void spec_free(struct cluster_spec *s);

/*
 * An error about the value at path ("workers.existing[0]"): "FILE:LINE:COL: path: message",
 * or "FILE: path: message" when the path has no recorded place. Returns -code.
 */
int spec_error(const struct cluster_spec *s, const char *path, struct error *err, int code,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Instances of a pool spread over the zones: the zone of the i-th created one. */
const char *spec_zone_of(const struct cluster_spec *s, unsigned i);

#endif
