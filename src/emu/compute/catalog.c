/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every project sees without creating anything: regions, zones, machine types and the
 * Project resource. A representative subset of the real ones (names as GCP spells them), so
 * aggregated lists have the empty scopes real clients must skip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"

const struct zone_info compute_zones[] = {
    {"asia-northeast1-a", "asia-northeast1"},
    {"asia-northeast1-b", "asia-northeast1"},
    {"asia-northeast1-c", "asia-northeast1"},
    {"europe-west1-b", "europe-west1"},
    {"europe-west1-c", "europe-west1"},
    {"europe-west1-d", "europe-west1"},
    {"europe-west4-a", "europe-west4"},
    {"europe-west4-b", "europe-west4"},
    {"europe-west4-c", "europe-west4"},
    {"us-central1-a", "us-central1"},
    {"us-central1-b", "us-central1"},
    {"us-central1-c", "us-central1"},
    {"us-central1-f", "us-central1"},
    {"us-east1-b", "us-east1"},
    {"us-east1-c", "us-east1"},
    {"us-east1-d", "us-east1"},
    {"us-west1-a", "us-west1"},
    {"us-west1-b", "us-west1"},
    {"us-west1-c", "us-west1"},
};
const size_t compute_nzones = sizeof(compute_zones) / sizeof(compute_zones[0]);

const char *const compute_regions[] = {
    "asia-northeast1", "europe-west1", "europe-west4", "us-central1", "us-east1", "us-west1",
};
const size_t compute_nregions = sizeof(compute_regions) / sizeof(compute_regions[0]);

struct machine_type {
	const char *name;
	int cpus;
	int memory_mb;
	bool shared;
};

static const struct machine_type machine_types[] = {
    {"e2-medium", 2, 4096, true},         {"e2-micro", 2, 1024, true},
    {"e2-small", 2, 2048, true},          {"e2-standard-2", 2, 8192, false},
    {"e2-standard-4", 4, 16384, false},   {"e2-standard-8", 8, 32768, false},
    {"e2-standard-16", 16, 65536, false}, {"n1-standard-1", 1, 3840, false},
    {"n1-standard-2", 2, 7680, false},    {"n1-standard-4", 4, 15360, false},
    {"n2-standard-2", 2, 8192, false},    {"n2-standard-4", 4, 16384, false},
    {"n2-standard-8", 8, 32768, false},
};

/* GCP shows this creationTimestamp on regions and zones. */
static const char epoch_ts[] = "1969-12-31T16:00:00.000-08:00";

bool compute_zone_exists(const char *zone)
{
	return compute_zone_region(zone) != NULL;
}

const char *compute_zone_region(const char *zone)
{
	for (size_t i = 0; i < compute_nzones; i++)
		if (strcmp(compute_zones[i].name, zone) == 0)
			return compute_zones[i].region;
	return NULL;
}

bool compute_region_exists(const char *region)
{
	for (size_t i = 0; i < compute_nregions; i++)
		if (strcmp(compute_regions[i], region) == 0)
			return true;
	return false;
}

/* Stable ids for the catalogue: FNV-1a of the name, kept below 2^63 and 19 digits long. */
static json_t *stable_id(const char *salt, const char *name)
{
	uint64_t h = 1469598103934665603ull;
	char buf[24];

	for (const char *p = salt; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	h = 1000000000000000000ull + h % 8000000000000000000ull;
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)h);
	return json_string(buf);
}

static json_t *quota(const char *metric, double limit)
{
	return json_pack("{s:s, s:f, s:f}", "metric", metric, "limit", limit, "usage", 0.0);
}

int catalog_init(struct compute *c)
{
	struct coll *zones = compute_coll(c, "zones"), *regions = compute_coll(c, "regions");
	struct coll *mts = compute_coll(c, "machineTypes");
	const char *project = c->emu->opt.project;

	for (size_t i = 0; i < compute_nregions; i++) {
		const char *r = compute_regions[i];
		json_t *zlist = json_array(), *res;

		for (size_t j = 0; j < compute_nzones; j++)
			if (strcmp(compute_zones[j].region, r) == 0)
				json_array_append_new(zlist,
						      compute_url(c, "projects/%s/zones/%s",
								  project, compute_zones[j].name));
		res = json_pack("{s:s, s:o, s:s, s:s, s:s, s:o, s:s, s:o, s:b, s:[o,o,o,o]}",
				"kind", "compute#region", "id", stable_id("region", r),
				"creationTimestamp", epoch_ts, "name", r, "description", r,
				"selfLink", compute_url(c, "projects/%s/regions/%s", project, r),
				"status", "UP", "zones", zlist, "supportsPzs", 0, "quotas",
				quota("CPUS", 2400), quota("DISKS_TOTAL_GB", 409600),
				quota("IN_USE_ADDRESSES", 8000), quota("SUBNETWORKS", 1000));
		if (!res || coll_add(regions, "global", r, res, false, NULL) < 0)
			return -1;
	}
	for (size_t i = 0; i < compute_nzones; i++) {
		const struct zone_info *z = &compute_zones[i];
		json_t *res;

		res = json_pack(
		    "{s:s, s:o, s:s, s:s, s:s, s:o, s:s, s:o, s:[s,s,s], s:b}", "kind",
		    "compute#zone", "id", stable_id("zone", z->name), "creationTimestamp", epoch_ts,
		    "name", z->name, "description", z->name, "region",
		    compute_url(c, "projects/%s/regions/%s", project, z->region), "status", "UP",
		    "selfLink", compute_url(c, "projects/%s/zones/%s", project, z->name),
		    "availableCpuPlatforms", "Intel Broadwell", "Intel Cascade Lake", "AMD Milan",
		    "supportsPzs", 0);
		if (!res || coll_add(zones, "global", z->name, res, false, NULL) < 0)
			return -1;
		for (size_t j = 0; j < sizeof(machine_types) / sizeof(machine_types[0]); j++) {
			const struct machine_type *m = &machine_types[j];
			char scope[96], desc[96];

			snprintf(scope, sizeof(scope), "zones/%s", z->name);
			snprintf(desc, sizeof(desc), "%d vCPU%s, %g GB RAM", m->cpus,
				 m->cpus > 1 ? "s" : "", m->memory_mb / 1024.0);
			res = json_pack(
			    "{s:s, s:o, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:s, s:s, s:o, s:b, s:s}",
			    "kind", "compute#machineType", "id", stable_id(z->name, m->name),
			    "creationTimestamp", epoch_ts, "name", m->name, "description", desc,
			    "guestCpus", m->cpus, "memoryMb", m->memory_mb, "imageSpaceGb", 0,
			    "maximumPersistentDisks", 128, "maximumPersistentDisksSizeGb", "263168",
			    "zone", z->name, "selfLink",
			    compute_url(c, "projects/%s/zones/%s/machineTypes/%s", project, z->name,
					m->name),
			    "isSharedCpu", m->shared, "architecture", "X86_64");
			if (!res || coll_add(mts, scope, m->name, res, false, NULL) < 0)
				return -1;
		}
	}
	return 0;
}

/* The Project resource; its number is derived from the id, so it is the same on every start. */
json_t *catalog_project(struct compute *c)
{
	const char *project = c->emu->opt.project;
	json_t *id = stable_id("project", project);
	char email[128];
	unsigned long long number = strtoull(json_string_value(id), NULL, 10) % 1000000000000ull;

	snprintf(email, sizeof(email), "%llu-compute@developer.gserviceaccount.com", number);
	return json_pack("{s:s, s:o, s:s, s:s, s:s, s:o, s:{s:s, s:s, s:[]}, s:s, s:s, s:s, s:s, "
			 "s:[o,o,o,o,o]}",
			 "kind", "compute#project", "id", id, "creationTimestamp",
			 "2024-01-01T00:00:00.000-08:00", "name", project, "description", "",
			 "selfLink", compute_url(c, "projects/%s", project),
			 "commonInstanceMetadata", "kind", "compute#metadata", "fingerprint",
			 "AAAAAAAAAAA=", "items", "defaultServiceAccount", email,
			 "xpnProjectStatus", "UNSPECIFIED_XPN_PROJECT_STATUS", "defaultNetworkTier",
			 "PREMIUM", "vmDnsSetting", "ZONAL_DEFAULT", "quotas",
			 quota("NETWORKS", 15), quota("SUBNETWORKS", 100), quota("FIREWALLS", 200),
			 quota("FORWARDING_RULES", 75), quota("HEALTH_CHECKS", 150));
}

const char *compute_project_number(struct compute *c)
{
	static char buf[24];
	const char *id = jstr(c->project, "id");

	snprintf(buf, sizeof(buf), "%llu", id ? strtoull(id, NULL, 10) % 1000000000000ull : 0ull);
	return buf;
}

const struct coll_type ct_zones = {
    .name = "zones",
    .kind = "compute#zone",
    .list_kind = "compute#zoneList",
    .scopes = SCOPE_GLOBAL,
    .readonly = true,
    .unscoped = true,
};

const struct coll_type ct_regions = {
    .name = "regions",
    .kind = "compute#region",
    .list_kind = "compute#regionList",
    .scopes = SCOPE_GLOBAL,
    .readonly = true,
    .unscoped = true,
};

const struct coll_type ct_machine_types = {
    .name = "machineTypes",
    .kind = "compute#machineType",
    .list_kind = "compute#machineTypeList",
    .agg_kind = "compute#machineTypeAggregatedList",
    .scopes = SCOPE_ZONE,
    .readonly = true,
};
