/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Discovery, as kubectl reads it: /api (APIVersions), /apis (APIGroupList), /apis/G
 * (APIGroup) and an APIResourceList per group version, with verbs, short names,
 * categories and the /status subresources. Aggregated discovery
 * (Accept: ...;g=apidiscovery.k8s.io;as=APIGroupDiscoveryList) is not served: clients fall
 * back to these documents when the answer is plain application/json.
 * /openapi/v2 answers an empty protobuf document (valid, and enough for kubectl create and
 * apply), /openapi/v3 is 404 (kubectl then uses v2).
 */
#include <stdio.h>
#include <string.h>

#include "emu/kube/kube.h"

static json_t *verbs(const struct kube_res *r)
{
	if (r->def.flags & KR_CREATE_ONLY)
		return json_pack("[s]", "create");
	return json_pack("[s, s, s, s, s, s, s, s]", "create", "delete", "deletecollection", "get",
			 "list", "patch", "update", "watch");
}

static json_t *split(const char *list)
{
	json_t *a = json_array();

	for (const char *p = list; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		json_array_append_new(a, json_stringn(p, len));
		p += len + (comma ? 1 : 0);
	}
	return a;
}

static json_t *resource_list(struct emu_kube *k, const char *group, const char *version)
{
	json_t *list = json_array();
	char gv[128];
	bool any = false;

	for (size_t i = 0; i < k->nres; i++) {
		const struct kube_res *r = k->res[i];
		json_t *e;

		if (r->removed || strcmp(r->def.group, group) || strcmp(r->def.version, version))
			continue;
		any = true;
		e = json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", r->def.resource, "singularName",
			      r->def.singular, "namespaced", !!(r->def.flags & KR_NAMESPACED),
			      "kind", r->def.kind, "verbs", verbs(r));
		if (r->def.short_names[0])
			json_object_set_new(e, "shortNames", split(r->def.short_names));
		if (r->def.categories[0])
			json_object_set_new(e, "categories", split(r->def.categories));
		json_array_append_new(list, e);
		if (r->def.flags & KR_STATUS) {
			char sub[160];
			snprintf(sub, sizeof(sub), "%s/status", r->def.resource);
			json_array_append_new(
			    list, json_pack("{s:s, s:s, s:b, s:s, s:[s, s, s]}", "name", sub,
					    "singularName", "", "namespaced",
					    !!(r->def.flags & KR_NAMESPACED), "kind", r->def.kind,
					    "verbs", "get", "patch", "update"));
		}
		if (!strcmp(r->def.resource, "pods") && !r->def.group[0])
			/* kubectl drain looks for this entry (CheckEvictionSupport). */
			json_array_append_new(
			    list, json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:[s]}", "name",
					    "pods/eviction", "singularName", "", "namespaced", 1,
					    "group", "policy", "version", "v1", "kind", "Eviction",
					    "verbs", "create"));
	}
	if (!any) {
		json_decref(list);
		return NULL;
	}
	if (group[0])
		snprintf(gv, sizeof(gv), "%s/%s", group, version);
	else
		snprintf(gv, sizeof(gv), "%s", version);
	return json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList", "apiVersion", "v1",
			 "groupVersion", gv, "resources", list);
}

/* The versions of group, in registration order (the first is preferred). */
static json_t *group_doc(struct emu_kube *k, const char *group)
{
	json_t *versions = json_array(), *g;

	for (size_t i = 0; i < k->nres; i++) {
		const struct kube_res *r = k->res[i];
		bool seen = false;
		json_t *v;
		size_t j;

		if (r->removed || strcmp(r->def.group, group))
			continue;
		json_array_foreach(versions, j, v) seen |=
		    !strcmp(kj_str(v, "version"), r->def.version);
		if (!seen)
			json_array_append_new(versions,
					      json_pack("{s:s, s:s}", "groupVersion",
							r->api_version, "version", r->def.version));
	}
	if (!json_array_size(versions)) {
		json_decref(versions);
		return NULL;
	}
	g = json_pack("{s:s, s:o, s:O}", "name", group, "versions", versions, "preferredVersion",
		      json_array_get(versions, 0));
	return g;
}

static json_t *group_list(struct emu_kube *k)
{
	json_t *groups = json_array(), *seen = json_object();

	for (size_t i = 0; i < k->nres; i++) {
		const struct kube_res *r = k->res[i];
		json_t *g;

		if (r->removed || !r->def.group[0] || json_object_get(seen, r->def.group))
			continue;
		json_object_set_new(seen, r->def.group, json_true());
		g = group_doc(k, r->def.group);
		if (g)
			json_array_append_new(groups, g);
	}
	json_decref(seen);
	return json_pack("{s:s, s:s, s:o}", "kind", "APIGroupList", "apiVersion", "v1", "groups",
			 groups);
}

static int reply(struct emu_request *req, json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	int ret;

	json_decref(doc);
	if (!text)
		return emu_reply(req, 500, "text/plain", "out of memory\n", 14);
	ret = emu_reply(req, 200, "application/json", text, strlen(text));
	free(text);
	return ret;
}

static int not_found(struct emu_request *req)
{
	struct kube_err e = {0};
	int ret;

	kube_errf(&e, 404, "NotFound", "the server could not find the requested resource");
	ret = kube_reply_status(req, &e);
	kube_err_clear(&e);
	return ret;
}

int kube_discovery_handle(struct emu_kube *k, struct emu_request *req)
{
	const char *p = req->path;
	char group[128], version[64];
	const char *host;

	if (strcmp(req->method, "GET") != 0)
		return 0;
	if (!strcmp(p, "/api") || !strcmp(p, "/api/")) {
		host = strchr(k->emu->kube_url, '/');
		host = host ? host + 2 : "127.0.0.1";
		reply(req, json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind", "APIVersions",
				     "versions", "v1", "serverAddressByClientCIDRs", "clientCIDR",
				     "0.0.0.0/0", "serverAddress", host));
		return 1;
	}
	if (!strcmp(p, "/api/v1") || !strcmp(p, "/api/v1/")) {
		reply(req, resource_list(k, "", "v1"));
		return 1;
	}
	if (!strcmp(p, "/apis") || !strcmp(p, "/apis/")) {
		reply(req, group_list(k));
		return 1;
	}
	if (!strncmp(p, "/apis/", 6)) {
		const char *g = p + 6, *slash = strchr(g, '/');
		size_t gl = slash ? (size_t)(slash - g) : strlen(g);

		if (gl == 0 || gl >= sizeof(group))
			return 0;
		memcpy(group, g, gl);
		group[gl] = '\0';
		if (!slash || !slash[1]) {
			json_t *doc = group_doc(k, group);
			if (!doc) {
				not_found(req);
				return 1;
			}
			json_object_set_new(doc, "kind", json_string("APIGroup"));
			json_object_set_new(doc, "apiVersion", json_string("v1"));
			reply(req, doc);
			return 1;
		}
		{
			const char *v = slash + 1, *end = strchr(v, '/');
			size_t vl = end ? (size_t)(end - v) : strlen(v);
			json_t *doc;

			if (end && end[1])
				return 0; /* a resource path */
			if (vl == 0 || vl >= sizeof(version))
				return 0;
			memcpy(version, v, vl);
			version[vl] = '\0';
			doc = resource_list(k, group, version);
			if (!doc) {
				not_found(req);
				return 1;
			}
			reply(req, doc);
			return 1;
		}
	}
	if (!strcmp(p, "/openapi/v2")) {
		emu_reply(req, 200, "application/octet-stream", "", 0);
		return 1;
	}
	if (!strncmp(p, "/openapi/v3", 11)) {
		not_found(req);
		return 1;
	}
	return 0;
}
