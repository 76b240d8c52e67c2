/* SPDX-License-Identifier: Apache-2.0 */
/*
 * doctor --live: reads what the rules need from the Kubernetes API and the Compute API and
 * feeds it to the same checks as files (doctor_add_json), so a live cluster and its
 * manifests are judged by one set of rules. Objects are trimmed to the fields rules read
 * before they are kept: 5,000 Nodes cost a few megabytes.
 */
#ifndef TALOS_GCP_DOCTOR_LIVE_H
#define TALOS_GCP_DOCTOR_LIVE_H

#include "common/error.h"
#include "doctor/doctor.h"

struct kube_client;
struct gcp_compute;

/*
 * Reads the cluster (kube) and its project (compute; region: NULL to take it from the
 * nodes' zones). What cannot be read is recorded in d: an API error as an error (exit 2), a
 * kind the server does not serve (404: a CRD not installed, a Compute collection an
 * emulator lacks) as a note. Returns 0, or -ENOMEM.
 */
int doctor_live_collect(struct doctor *d, struct kube_client *kube, struct gcp_compute *compute,
			const char *region, struct error *err);

#endif
