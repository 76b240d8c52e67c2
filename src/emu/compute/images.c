/* SPDX-License-Identifier: Apache-2.0 */
/*
 * images (global): insert, get, list, delete, and getFromFamily (GET images/family/NAME).
 *
 * https://cloud.google.com/compute/docs/reference/rest/v1/images/insert: an image comes from
 * exactly one of rawDisk.source ("The full Google Cloud Storage URL where the raw disk image
 * archive is stored": https://storage.googleapis.com/BUCKET/OBJECT; gcloud's --source-uri
 * gs://BUCKET/OBJECT is sent as https://storage.googleapis.com/storage/v1/b/BUCKET/o/OBJECT),
 * sourceImage, sourceDisk or sourceSnapshot. Talos' GCP guide creates its image from a raw
 * disk archive in a bucket (`gcloud compute images create talos --source-uri gs://...`).
 * Cloud Storage is not emulated: the object is not fetched, so the image's size is the
 * smallest boot disk (10 GB). Disks are not emulated either, so sourceDisk and sourceSnapshot
 * name resources that cannot exist here (404).
 *
 * getFromFamily: "Returns the latest image that is part of an image family and is not
 * deprecated" (https://cloud.google.com/compute/docs/reference/rest/v1/images/getFromFamily).
 *
 * Instances: a boot disk's initializeParams.sourceImage (an image, a family, or a zone's
 * imageFamilyViews/FAMILY, which gcloud sends for --image-family) must name an image that exists
 * (instances.insert fails with 404 "The resource '...' was not found" otherwise), and the
 * disk may not be smaller than the image. Images of Google's public image projects
 * (https://cloud.google.com/compute/docs/images/os-details) are accepted as data: this
 * emulator serves one project and holds no public images.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/compute/compute.h"

#define IMAGE_MIN_GB 10

/* Google's public image projects (https://cloud.google.com/compute/docs/images/os-details). */
static const char *const public_projects[] = {
    "centos-cloud",        "cos-cloud",         "debian-cloud",
    "fedora-coreos-cloud", "opensuse-cloud",    "rhel-cloud",
    "rhel-sap-cloud",      "rocky-linux-cloud", "suse-cloud",
    "suse-sap-cloud",      "ubuntu-os-cloud",   "ubuntu-os-pro-cloud",
    "windows-cloud",       "windows-sql-cloud", "almalinux-cloud",
    "oracle-linux-cloud",  "ml-images",         "deeplearning-platform-release",
};

static bool public_project(const char *p, size_t len)
{
	for (size_t i = 0; i < sizeof(public_projects) / sizeof(public_projects[0]); i++)
		if (strlen(public_projects[i]) == len && strncmp(public_projects[i], p, len) == 0)
			return true;
	return false;
}

/* "https://storage.googleapis.com/BUCKET/OBJECT" or the JSON API form gcloud sends. */
static bool storage_url(const char *s)
{
	static const char *const prefixes[] = {"https://storage.googleapis.com/storage/v1/b/",
					       "https://storage.googleapis.com/"};
	const char *rest = NULL, *slash;

	for (size_t i = 0; i < 2 && !rest; i++)
		if (strncmp(s, prefixes[i], strlen(prefixes[i])) == 0)
			rest = s + strlen(prefixes[i]);
	if (!rest)
		return false;
	slash = strchr(rest, '/');
	/* A bucket, then an object; the JSON form has "o/" in between. */
	if (!slash || slash == rest || !slash[1])
		return false;
	if (rest == s + strlen(prefixes[0]))
		return strncmp(slash, "/o/", 3) == 0 && slash[3];
	return true;
}

/* The newest image of family that is not deprecated, or NULL. */
static struct item *family_latest(struct compute *c, const char *family)
{
	struct coll *co = compute_coll(c, "images");
	struct item *best = NULL;

	for (size_t i = 0; i < co->len; i++) {
		struct item *it = co->items[i];
		json_t *dep = json_object_get(it->res, "deprecated");

		if (it->pending || strcmp(jstr(it->res, "family") ?: "", family) != 0)
			continue;
		if (dep && jstr(dep, "state") && strcmp(jstr(dep, "state"), "ACTIVE") != 0)
			continue;
		/* RFC 3339 text of one format orders by time. */
		if (!best || strcmp(jstr(it->res, "creationTimestamp") ?: "",
				    jstr(best->res, "creationTimestamp") ?: "") >= 0)
			best = it;
	}
	return best;
}

int image_check_source(struct compute *c, const char *ref, const char *field, uint64_t *disk_gb,
		       struct api_error *e)
{
	const char *project = c->emu->opt.project, *p = ref, *v1 = strstr(ref, COMPUTE_PREFIX);
	char scope[96], name[128];
	struct item *it;

	*disk_gb = IMAGE_MIN_GB;
	if (v1)
		p = v1 + strlen(COMPUTE_PREFIX);
	if (strncmp(p, "projects/", 9) == 0) {
		const char *q = p + 9, *slash = strchr(q, '/');

		if (slash && public_project(q, (size_t)(slash - q)) &&
		    ((strncmp(slash, "/global/images/", 15) == 0 && slash[15]) ||
		     (strncmp(slash, "/zones/", 7) == 0 && strstr(slash, "/imageFamilyViews/"))))
			return 0;
	}
	/* A family, directly or through a zone's image family view (gcloud sends those). */
	if (strstr(p, "global/images/family/") || strstr(p, "/imageFamilyViews/")) {
		const char *fam = strstr(p, "global/images/family/")
				      ? strstr(p, "global/images/family/") + 21
				      : strstr(p, "/imageFamilyViews/") + 18;
		size_t plen = strlen(project);
		bool ours = strncmp(p, "global/", 7) == 0 || strncmp(p, "zones/", 6) == 0 ||
			    (strncmp(p, "projects/", 9) == 0 &&
			     strncmp(p + 9, project, plen) == 0 && p[9 + plen] == '/');

		if (!ours || !valid_name(fam))
			return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
					     "The resource '%s' was not found", ref);
		it = family_latest(c, fam);
		if (!it)
			return api_fail_code(
			    e, 404, "notFound", "RESOURCE_NOT_FOUND",
			    "The resource 'projects/%s/global/images/family/%s' was not found",
			    project, fam);
	} else {
		int ret = compute_parse_ref(c, ref, "images", NULL, scope, sizeof(scope), name,
					    sizeof(name));

		if (ret == -ENOENT)
			return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
					     "The resource '%s' was not found", ref);
		if (ret < 0 || strcmp(scope, "global") != 0 || !strstr(ref, "images/"))
			return api_fail(e, 400, "invalid",
					"Invalid value for field '%s': '%s'. The URL is malformed.",
					field, ref);
		it = coll_find(compute_coll(c, "images"), "global", name);
		if (!it || it->pending)
			return api_fail_code(
			    e, 404, "notFound", "RESOURCE_NOT_FOUND",
			    "The resource 'projects/%s/global/images/%s' was not found", project,
			    name);
	}
	{
		json_t *dep = json_object_get(it->res, "deprecated");
		const char *state = dep ? jstr(dep, "state") : NULL;

		if (state && (strcmp(state, "OBSOLETE") == 0 || strcmp(state, "DELETED") == 0))
			return api_fail(e, 400, "invalid",
					"Invalid value for field '%s': '%s'. The image is %s.",
					field, ref, state);
	}
	*disk_gb = strtoull(jstr(it->res, "diskSizeGb") ?: "10", NULL, 10);
	return 0;
}

static int image_prepare(struct call *k, json_t *res, struct api_error *e)
{
	json_t *raw = json_object_get(res, "rawDisk");
	const char *src = raw ? jstr(raw, "source") : NULL;
	unsigned sources = 0;
	uint64_t gb = IMAGE_MIN_GB;
	int ret;

	sources += src != NULL;
	sources += jstr(res, "sourceImage") != NULL;
	sources += jstr(res, "sourceDisk") != NULL;
	sources += jstr(res, "sourceSnapshot") != NULL;
	if (sources != 1)
		return api_fail(
		    e, 400, sources ? "invalid" : "required",
		    "Invalid value for field 'resource': exactly one of rawDisk.source, sourceImage, sourceDisk and sourceSnapshot must be given.");
	if (src) {
		if (!storage_url(src))
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.rawDisk.source': '%s'. Must be a Cloud Storage URL such as https://storage.googleapis.com/BUCKET/OBJECT.",
			    src);
		if (jstr(raw, "containerType") && strcmp(jstr(raw, "containerType"), "TAR") != 0)
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field 'resource.rawDisk.containerType'.");
		json_object_set_new(raw, "containerType", json_string("TAR"));
		json_object_set_new(res, "sourceType", json_string("RAW"));
		/* Unknown without Cloud Storage; GCP reports the archive's size. */
		json_object_set_new(res, "archiveSizeBytes", json_string("0"));
	} else if (jstr(res, "sourceImage")) {
		ret = image_check_source(k->c, jstr(res, "sourceImage"), "resource.sourceImage",
					 &gb, e);
		if (ret < 0)
			return ret;
	} else {
		const char *what = jstr(res, "sourceDisk") ?: jstr(res, "sourceSnapshot");

		return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
				     "The resource '%s' was not found", what);
	}
	if (jstr(res, "family") && !valid_name(jstr(res, "family")))
		return api_fail(e, 400, "invalid",
				"Invalid value for field 'resource.family': '%s'.",
				jstr(res, "family"));
	if (!jstr(res, "diskSizeGb"))
		json_object_set_new(res, "diskSizeGb", jsonf("%llu", (unsigned long long)gb));
	if (!json_object_get(res, "storageLocations"))
		json_object_set_new(res, "storageLocations", json_pack("[s]", "us"));
	json_object_set_new(res, "status", json_string("READY"));
	json_object_set_new(res, "labelFingerprint", json_string("42WmSpB8rSM="));
	return 0;
}

/* GET images/family/NAME arrives as name "family", verb NAME. */
static int image_route(struct call *k, struct api_error *e)
{
	struct item *it;

	if (!k->name || strcmp(k->name, "family") != 0 || !k->verb ||
	    strcmp(k->req->method, "GET") != 0)
		return 0;
	it = family_latest(k->c, k->verb);
	if (!it) {
		char path[300];

		snprintf(path, sizeof(path), "projects/%s/global/images/family/%s",
			 k->c->emu->opt.project, k->verb);
		api_not_found(e, path);
		return -EINVAL;
	}
	compute_reply(k->req, 200, json_incref(it->res));
	return 1;
}

const struct coll_type ct_images = {
    .name = "images",
    .kind = "compute#image",
    .list_kind = "compute#imageList",
    .schema = "Image",
    .scopes = SCOPE_GLOBAL,
    .prepare_insert = image_prepare,
    .route = image_route,
};
