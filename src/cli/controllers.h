/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How the cluster's controllers allocate PodCIDRs, read the way an operator would: from the
 * command lines of the cloud-controller-manager and kube-controller-manager in kube-system
 * (Deployments, DaemonSets, and Pods, which include the static Pods Talos runs).
 */
#ifndef TALOS_GCP_CLI_CONTROLLERS_H
#define TALOS_GCP_CLI_CONTROLLERS_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "kube/client.h"

struct controller_flags {
	bool found;
	char where[160];              /* "kube-system/deployment/gcp-cloud-controller-manager" */
	bool allocate_node_cidrs;     /* --allocate-node-cidrs (default false) */
	char cidr_allocator_type[32]; /* --cidr-allocator-type (default RangeAllocator) */
	char cluster_cidr[64];        /* --cluster-cidr, "" when unset */
	bool configure_cloud_routes;  /* --configure-cloud-routes (CCM default true) */
};

/* What is running in kube-system. 0 or -errno (listing failed). */
int controllers_read(struct kube_client *kube, struct controller_flags *ccm,
		     struct controller_flags *kcm, struct error *err);

/*
 * Reads the flags of one container ({"command": [...], "args": [...]}) into out when it
 * runs the named binary ("cloud-controller-manager" or "kube-controller-manager").
 * Returns true when it does. Exposed for tests.
 */
bool controller_flags_from_container(const json_t *container, const char *binary,
				     struct controller_flags *out);

/* True when the CCM is the single PodCIDR allocator through CloudAllocator. */
bool controllers_cloud_allocator(const struct controller_flags *ccm,
				 const struct controller_flags *kcm, char *why, size_t why_len);

#endif
