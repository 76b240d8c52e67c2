/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the project holds: every resource named like the cluster's (NAME or NAME-*), and the
 * existing instances the spec names, read with one list per collection (aggregated lists for
 * the regional and zonal ones, so a resource left in another region or zone is found too),
 * in parallel, plus the members of the cluster's instance groups.
 */
#ifndef TALOS_GCP_PROVISION_LIVE_H
#define TALOS_GCP_PROVISION_LIVE_H

#include "provision/model.h"
#include "provision/runner.h"
#include "provision/spec.h"

struct live {
	struct resource_set owned;  /* carry the cluster's marker */
	struct resource_set others; /* named like ours without the marker, or existing instances */
	unsigned requests;          /* API reads made */
};

/* Reads the live state; fills the zones of the spec's existing instances found by name. */
int live_read(struct runner *r, struct cluster_spec *s, const char *project, struct live *out,
	      struct error *err);
void live_free(struct live *l);

/* The live resource with key, owned or not; *owned says which. */
struct resource *live_find(const struct live *l, const char *key, bool *owned);

#endif
