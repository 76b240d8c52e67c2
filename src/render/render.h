/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp render: the cluster's manifests and Talos patches, from a few values.
 *
 * Templates are C data (templates.c) with @NAME@ placeholders; every value is validated
 * before it is substituted (names, CIDRs, images), so the output is always valid YAML, and
 * it is a pure function of the values: the same values give the same bytes.
 */
#ifndef TALOS_GCP_RENDER_RENDER_H
#define TALOS_GCP_RENDER_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/cidr.h"
#include "common/error.h"

struct render_values {
	char cluster_name[64];
	char project[64];
	char region[64];
	char network[64];
	char subnetwork[64];
	char node_tag[64];
	struct cidr node_cidr;    /* the subnet's primary range */
	struct cidr pod_cidr;     /* the subnet's "pods" secondary range */
	struct cidr service_cidr; /* Kubernetes Services */
	struct ip_addr vip;       /* the control-plane VIP (internal forwarding rule) */
	unsigned mtu;             /* the VPC network's MTU */
	char ccm_image[256];
	char vip_alias_image[256];
	unsigned nodes;                    /* planned node count (--nodes): room for them */
	unsigned talos_major, talos_minor; /* --talos-version: the form of the VIP's link */
	bool project_set;                  /* --project was given: there is no default project */
	/* Named by their flag: an image without a registry is then the user's own choice. */
	bool ccm_image_set, vip_alias_image_set;
};

enum render_component {
	RENDER_TALOS_CONTROLPLANE = 0,
	RENDER_TALOS_WORKER,
	RENDER_CCM,
	RENDER_CILIUM_VALUES,
	RENDER_VIP_ALIAS,
	RENDER__COUNT
};

struct render_component_info {
	const char *name; /* for --only: "talos", "ccm", ... */
	const char *path; /* relative path under --out */
	const char *what; /* one line for --help */
};

extern const struct render_component_info render_components[RENDER__COUNT];

/*
 * The defaults (VIP 10.0.0.2, nodes 10.0.0.0/24, pods 172.20.0.0/16, 3 nodes, Talos v1.12,
 * ...). There is no default project: render_validate() wants --project.
 */
void render_values_default(struct render_values *v);
/*
 * Sets one value by its flag name ("vip", "pod-cidr", "cluster-name", ...). A bad value is
 * -EINVAL with a one-line error naming the flag. An unknown key is -ENOENT.
 */
int render_set(struct render_values *v, const char *key, const char *value, struct error *err);
/* The flag names render_set() knows, NULL-terminated, with a help line each. */
extern const char *const render_keys[][2];
/*
 * Checks the values together, as GCP will judge them: --project given; the VIP inside the
 * node range and not one of the four addresses GCP reserves in every subnet; a node range of
 * at least /29 with room for --nodes and the VIP, a pods range with a /24 per node; ranges
 * that do not overlap; a known region; and for the components want selects (NULL: all),
 * images that name their registry unless a flag named them. -EINVAL with a one-line error.
 */
int render_validate(const struct render_values *v, const bool *want, struct error *err);
/* The component's text (malloc'd, NUL-terminated). 0, -EINVAL or -ENOMEM. */
int render_component(const struct render_values *v, enum render_component c, char **out,
		     size_t *len);

#endif
