/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/controllers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"

/* "true", "false", or a bare flag (true), as Go's pflag parses booleans. */
static bool parse_bool(const char *v, bool bare)
{
	if (bare)
		return true;
	return !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "t");
}

static void apply_flag(struct controller_flags *out, const char *arg, const char *next,
		       bool *consumed_next)
{
	const char *name = arg, *eq;
	char key[64];
	size_t klen;
	const char *value;
	bool bare;

	*consumed_next = false;
	if (strncmp(name, "--", 2) == 0)
		name += 2;
	else if (name[0] == '-')
		name += 1;
	else
		return;
	eq = strchr(name, '=');
	klen = eq ? (size_t)(eq - name) : strlen(name);
	if (klen >= sizeof(key))
		return;
	memcpy(key, name, klen);
	key[klen] = '\0';
	value = eq ? eq + 1 : NULL;
	bare = !value;

	if (!strcmp(key, "allocate-node-cidrs")) {
		/* pflag: a bare bool flag is true; "--flag false" is not how pflag reads bools. */
		out->allocate_node_cidrs = parse_bool(value ? value : "", bare);
	} else if (!strcmp(key, "configure-cloud-routes")) {
		out->configure_cloud_routes = parse_bool(value ? value : "", bare);
	} else if (!strcmp(key, "cidr-allocator-type") || !strcmp(key, "cluster-cidr")) {
		bool is_type = !strcmp(key, "cidr-allocator-type");
		char *dst = is_type ? out->cidr_allocator_type : out->cluster_cidr;
		size_t cap = is_type ? sizeof(out->cidr_allocator_type) : sizeof(out->cluster_cidr);

		if (!value && next) {
			value = next;
			*consumed_next = true;
		}
		snprintf(dst, cap, "%s", value ? value : "");
	}
}

bool controller_flags_from_container(const json_t *container, const char *binary,
				     struct controller_flags *out)
{
	static const char *const lists[] = {"command", "args"};
	const char *name = json_str(container, "name"), *image = json_str(container, "image");
	bool runs = (name && strstr(name, binary)) || (image && strstr(image, binary));

	for (size_t l = 0; l < 2 && !runs; l++) {
		json_t *arr = json_object_get(container, lists[l]);
		for (size_t i = 0; i < json_array_size(arr); i++) {
			const char *s = json_string_value(json_array_get(arr, i));
			if (s && strstr(s, binary))
				runs = true;
		}
	}
	if (!runs)
		return false;
	out->found = true;
	out->allocate_node_cidrs = false;
	snprintf(out->cidr_allocator_type, sizeof(out->cidr_allocator_type), "RangeAllocator");
	out->cluster_cidr[0] = '\0';
	out->configure_cloud_routes = !strcmp(binary, "cloud-controller-manager");
	for (size_t l = 0; l < 2; l++) {
		json_t *arr = json_object_get(container, lists[l]);
		for (size_t i = 0; i < json_array_size(arr); i++) {
			const char *s = json_string_value(json_array_get(arr, i));
			const char *next = json_string_value(json_array_get(arr, i + 1));
			bool consumed;

			if (!s)
				continue;
			apply_flag(out, s, next, &consumed);
			if (consumed)
				i++;
		}
	}
	return true;
}

struct scan {
	const char *kind;
	struct controller_flags *ccm, *kcm;
};

static void scan_containers(struct scan *sc, const json_t *obj, const json_t *containers)
{
	const char *name = json_path_str(obj, "metadata.name");

	for (size_t i = 0; i < json_array_size(containers); i++) {
		const json_t *c = json_array_get(containers, i);
		struct controller_flags f = {0};
		struct controller_flags *dst = NULL;

		if (!sc->ccm->found &&
		    controller_flags_from_container(c, "cloud-controller-manager", &f))
			dst = sc->ccm;
		else if (!sc->kcm->found &&
			 controller_flags_from_container(c, "kube-controller-manager", &f))
			dst = sc->kcm;
		if (!dst)
			continue;
		snprintf(f.where, sizeof(f.where), "kube-system/%s/%s", sc->kind,
			 name ? name : "?");
		*dst = f;
	}
}

static int on_workload(void *arg, json_t *item)
{
	scan_containers(arg, item, json_path(item, "spec.template.spec.containers"));
	return 0;
}

static int on_pod(void *arg, json_t *item)
{
	scan_containers(arg, item, json_path(item, "spec.containers"));
	return 0;
}

int controllers_read(struct kube_client *kube, struct controller_flags *ccm,
		     struct controller_flags *kcm, struct error *err)
{
	static const struct {
		const char *kind, *path;
		kube_item_fn fn;
	} sources[] = {
	    {"deployment", "/apis/apps/v1/namespaces/kube-system/deployments", on_workload},
	    {"daemonset", "/apis/apps/v1/namespaces/kube-system/daemonsets", on_workload},
	    {"pod", "/api/v1/namespaces/kube-system/pods", on_pod},
	};
	struct kube_list_options opt = {.limit = KUBE_DEFAULT_LIMIT};

	memset(ccm, 0, sizeof(*ccm));
	memset(kcm, 0, sizeof(*kcm));
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		struct scan sc = {.kind = sources[i].kind, .ccm = ccm, .kcm = kcm};
		int ret = kube_list(kube, sources[i].path, &opt, sources[i].fn, &sc, NULL, 0, err);

		if (ret < 0)
			return ret;
	}
	return 0;
}

bool controllers_cloud_allocator(const struct controller_flags *ccm,
				 const struct controller_flags *kcm, char *why, size_t why_len)
{
	if (!ccm->found) {
		snprintf(why, why_len, "no cloud-controller-manager is visible in kube-system");
		return false;
	}
	if (!ccm->allocate_node_cidrs) {
		snprintf(why, why_len, "the CCM (%s) runs without --allocate-node-cidrs=true",
			 ccm->where);
		return false;
	}
	if (strcmp(ccm->cidr_allocator_type, "CloudAllocator") != 0) {
		snprintf(why, why_len,
			 "the CCM (%s) runs --cidr-allocator-type=%s, not CloudAllocator",
			 ccm->where, ccm->cidr_allocator_type);
		return false;
	}
	if (kcm->found && kcm->allocate_node_cidrs) {
		snprintf(
		    why, why_len,
		    "the kube-controller-manager (%s) also allocates node CIDRs (--allocate-node-cidrs=true)",
		    kcm->where);
		return false;
	}
	snprintf(why, why_len, "the CCM (%s) allocates with CloudAllocator", ccm->where);
	return true;
}
