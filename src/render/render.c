/* SPDX-License-Identifier: Apache-2.0 */
#include "render/render.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/parse.h"
#include "render/templates.h"

const struct render_component_info render_components[RENDER__COUNT] = {
    [RENDER_TALOS_CONTROLPLANE] = {"talos-controlplane", "talos/controlplane.yaml",
				   "Talos machine-config patch for control-plane nodes"},
    [RENDER_TALOS_WORKER] = {"talos-worker", "talos/worker.yaml",
			     "Talos machine-config patch for worker nodes"},
    [RENDER_CCM] = {"ccm", "ccm.yaml",
		    "GCP cloud controller manager: ServiceAccount, RBAC, cloud config, Deployment"},
    [RENDER_CILIUM_VALUES] = {"cilium", "cilium-values.yaml", "Cilium Helm values"},
    [RENDER_VIP_ALIAS] = {"vip-alias", "vip-alias.yaml", "vip-alias DaemonSet"},
};

static const char *const templates[RENDER__COUNT] = {
    [RENDER_TALOS_CONTROLPLANE] = template_talos_controlplane,
    [RENDER_TALOS_WORKER] = template_talos_worker,
    [RENDER_CCM] = template_ccm,
    [RENDER_CILIUM_VALUES] = template_cilium_values,
    [RENDER_VIP_ALIAS] = template_vip_alias,
};

const char *const render_keys[][2] = {
    {"cluster-name", "cluster name (default talos)"},
    {"project", "GCP project, for the CCM's cloud config (default demo-project)"},
    {"region", "GCP region (default us-central1)"},
    {"network", "VPC network name (default talos)"},
    {"subnetwork", "subnetwork name (default talos-nodes)"},
    {"node-tag", "network tag of the nodes, for the CCM's firewall rules (default talos-node)"},
    {"node-cidr", "the subnet's primary range (default 10.0.0.0/24)"},
    {"pod-cidr", "the subnet's pods secondary range (default 172.20.0.0/16)"},
    {"service-cidr", "Kubernetes Service range (default 10.96.0.0/12)"},
    {"vip", "control-plane VIP, the internal forwarding rule's address (default 10.0.0.2)"},
    {"mtu", "the VPC network's MTU (default 1460)"},
    {"ccm-image", "GCP CCM image"},
    {"vip-alias-image", "vip-alias image"},
    {NULL, NULL},
};

#define DEFAULT_CCM_IMAGE "registry.k8s.io/cloud-provider-gcp/cloud-controller-manager:v32.2.5"
/* As deploy/vip-alias.Containerfile builds it; push it to your registry and pass the name. */
#define DEFAULT_VIP_ALIAS_IMAGE "vip-alias:" TALOS_GCP_VERSION

void render_values_default(struct render_values *v)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->cluster_name, sizeof(v->cluster_name), "talos");
	snprintf(v->project, sizeof(v->project), "demo-project");
	snprintf(v->region, sizeof(v->region), "us-central1");
	snprintf(v->network, sizeof(v->network), "talos");
	snprintf(v->subnetwork, sizeof(v->subnetwork), "talos-nodes");
	snprintf(v->node_tag, sizeof(v->node_tag), "talos-node");
	cidr_parse("10.0.0.0/24", &v->node_cidr, CIDR_STRICT);
	cidr_parse("172.20.0.0/16", &v->pod_cidr, CIDR_STRICT);
	cidr_parse("10.96.0.0/12", &v->service_cidr, CIDR_STRICT);
	ip_parse("10.0.0.2", &v->vip);
	v->mtu = 1460;
	snprintf(v->ccm_image, sizeof(v->ccm_image), "%s", DEFAULT_CCM_IMAGE);
	snprintf(v->vip_alias_image, sizeof(v->vip_alias_image), "%s", DEFAULT_VIP_ALIAS_IMAGE);
}

/* RFC 1035 label: what GCP accepts for resource names (and Kubernetes for most names). */
static bool name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 63 || s[0] < 'a' || s[0] > 'z' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* GCP project ids: 6-30 characters of [a-z0-9-], starting with a letter. */
static bool project_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 6 && n <= 30 && name_valid(s);
}

/* An image reference, conservatively: registry/path:tag or @sha256:..., plain YAML-safe. */
static bool image_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 255 || s[0] == '-' || s[0] == '.' || s[0] == ':' || s[0] == '@')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("-._/:@", s[i])))
			return false;
	return true;
}

static int set_name(char *dst, size_t len, const char *key, const char *value, struct error *err,
		    bool (*valid)(const char *), const char *rule)
{
	if (!valid(value) || strlen(value) >= len)
		return error_set(err, EINVAL, "--%s %.100s: %s", key, value, rule);
	snprintf(dst, len, "%s", value);
	return 0;
}

static int set_cidr(struct cidr *dst, const char *key, const char *value, struct error *err)
{
	struct cidr c;
	int r = cidr_parse(value, &c, CIDR_STRICT);

	if (r == -EDOM)
		return error_set(err, EINVAL,
				 "--%s %.100s: host bits are set (a range, such as %s, "
				 "starts at its network address)",
				 key, value, "10.0.0.0/24");
	if (r < 0 || c.addr.family != AF_INET)
		return error_set(err, EINVAL,
				 "--%s %.100s: not an IPv4 CIDR range (e.g. 10.0.0.0/24)", key,
				 value);
	*dst = c;
	return 0;
}

int render_set(struct render_values *v, const char *key, const char *value, struct error *err)
{
	if (!strcmp(key, "cluster-name"))
		return set_name(v->cluster_name, sizeof(v->cluster_name), key, value, err,
				name_valid,
				"lowercase letters, digits and '-', starting with a letter");
	if (!strcmp(key, "project"))
		return set_name(
		    v->project, sizeof(v->project), key, value, err, project_valid,
		    "not a GCP project id (6-30 of a-z, 0-9, '-', starting with a letter)");
	if (!strcmp(key, "region"))
		return set_name(v->region, sizeof(v->region), key, value, err, name_valid,
				"not a GCP region name (e.g. us-central1)");
	if (!strcmp(key, "network"))
		return set_name(v->network, sizeof(v->network), key, value, err, name_valid,
				"not a GCP resource name");
	if (!strcmp(key, "subnetwork"))
		return set_name(v->subnetwork, sizeof(v->subnetwork), key, value, err, name_valid,
				"not a GCP resource name");
	if (!strcmp(key, "node-tag"))
		return set_name(v->node_tag, sizeof(v->node_tag), key, value, err, name_valid,
				"not a GCP network tag");
	if (!strcmp(key, "node-cidr"))
		return set_cidr(&v->node_cidr, key, value, err);
	if (!strcmp(key, "pod-cidr"))
		return set_cidr(&v->pod_cidr, key, value, err);
	if (!strcmp(key, "service-cidr"))
		return set_cidr(&v->service_cidr, key, value, err);
	if (!strcmp(key, "vip")) {
		struct cidr c;

		if (cidr_parse(value, &c, CIDR_ALLOW_BARE_IP) < 0 || c.addr.family != AF_INET ||
		    c.prefix != 32)
			return error_set(err, EINVAL,
					 "--vip %.100s: not an IPv4 address (e.g. 10.0.0.2)",
					 value);
		v->vip = c.addr;
		return 0;
	}
	if (!strcmp(key, "mtu")) {
		uint64_t m;

		/* GCP VPC networks allow 1300 to 8896. */
		if (parse_u64(value, 8896, &m) < 0 || m < 1300)
			return error_set(err, EINVAL, "--mtu %.100s: GCP allows 1300 to 8896",
					 value);
		v->mtu = (unsigned)m;
		return 0;
	}
	if (!strcmp(key, "ccm-image"))
		return set_name(v->ccm_image, sizeof(v->ccm_image), key, value, err, image_valid,
				"not an image reference");
	if (!strcmp(key, "vip-alias-image"))
		return set_name(v->vip_alias_image, sizeof(v->vip_alias_image), key, value, err,
				image_valid, "not an image reference");
	return -ENOENT;
}

int render_validate(const struct render_values *v, struct error *err)
{
	char a[CIDR_STRLEN], b[CIDR_STRLEN], vip[CIDR_STRLEN];
	const struct {
		const struct cidr *c;
		const char *flag;
	} ranges[] = {
	    {&v->node_cidr, "--node-cidr"},
	    {&v->pod_cidr, "--pod-cidr"},
	    {&v->service_cidr, "--service-cidr"},
	};

	ip_format(&v->vip, vip, sizeof(vip));
	if (!cidr_contains_ip(&v->node_cidr, &v->vip))
		return error_set(
		    err, EINVAL,
		    "--vip %s: not inside --node-cidr %s (an internal forwarding rule's "
		    "address comes from the subnet's primary range)",
		    vip, cidr_format(&v->node_cidr, a, sizeof(a)));
	for (size_t i = 0; i < 3; i++)
		for (size_t j = i + 1; j < 3; j++)
			if (cidr_overlaps(ranges[i].c, ranges[j].c))
				return error_set(
				    err, EINVAL, "%s %s overlaps %s %s", ranges[j].flag,
				    cidr_format(ranges[j].c, a, sizeof(a)), ranges[i].flag,
				    cidr_format(ranges[i].c, b, sizeof(b)));
	if (v->pod_cidr.prefix > 24)
		return error_set(err, EINVAL,
				 "--pod-cidr %s: smaller than one node's /24 alias range",
				 cidr_format(&v->pod_cidr, a, sizeof(a)));
	return 0;
}

/* The flags that differ from the defaults, for the header of every file. */
static void describe_flags(const struct render_values *v, char *buf, size_t len)
{
	struct render_values def;
	size_t n = 0;
	char t[CIDR_STRLEN];

	render_values_default(&def);
	buf[0] = '\0';
#define ADD(...)                                                                                   \
	do {                                                                                       \
		int w_ = snprintf(buf + n, len - n, __VA_ARGS__);                                  \
		if (w_ > 0 && (size_t)w_ < len - n)                                                \
			n += (size_t)w_;                                                           \
	} while (0)
#define STR(field, flag)                                                                           \
	if (strcmp(v->field, def.field))                                                           \
	ADD(" --" flag " %s", v->field)
#define CIDR(field, flag)                                                                          \
	if (!cidr_equal(&v->field, &def.field))                                                    \
	ADD(" --" flag " %s", cidr_format(&v->field, t, sizeof(t)))
	STR(cluster_name, "cluster-name");
	STR(project, "project");
	STR(region, "region");
	STR(network, "network");
	STR(subnetwork, "subnetwork");
	STR(node_tag, "node-tag");
	CIDR(node_cidr, "node-cidr");
	CIDR(pod_cidr, "pod-cidr");
	CIDR(service_cidr, "service-cidr");
	if (!ip_equal(&v->vip, &def.vip))
		ADD(" --vip %s", ip_format(&v->vip, t, sizeof(t)));
	if (v->mtu != def.mtu)
		ADD(" --mtu %u", v->mtu);
	STR(ccm_image, "ccm-image");
	STR(vip_alias_image, "vip-alias-image");
#undef STR
#undef CIDR
#undef ADD
	if (!n)
		snprintf(buf, len, "default values");
	else
		memmove(buf, buf + 1, n); /* drop the leading space */
}

struct strbuf {
	char *s;
	size_t len, cap;
};

static int sb_add(struct strbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 4096;
		char *ns;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		ns = realloc(b->s, ncap);
		if (!ns)
			return -ENOMEM;
		b->s = ns;
		b->cap = ncap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
	return 0;
}

static const char *lookup(const struct render_values *v, const char *name, size_t n, char *tmp,
			  size_t tmplen, const char *flags)
{
#define IS(s) (n == strlen(s) && !memcmp(name, s, n))
	if (IS("CLUSTER"))
		return v->cluster_name;
	if (IS("PROJECT"))
		return v->project;
	if (IS("REGION"))
		return v->region;
	if (IS("NETWORK"))
		return v->network;
	if (IS("SUBNETWORK"))
		return v->subnetwork;
	if (IS("NODE_TAG"))
		return v->node_tag;
	if (IS("NODE_CIDR"))
		return cidr_format(&v->node_cidr, tmp, tmplen);
	if (IS("POD_CIDR"))
		return cidr_format(&v->pod_cidr, tmp, tmplen);
	if (IS("SERVICE_CIDR"))
		return cidr_format(&v->service_cidr, tmp, tmplen);
	if (IS("VIP"))
		return ip_format(&v->vip, tmp, tmplen);
	if (IS("MTU")) {
		snprintf(tmp, tmplen, "%u", v->mtu);
		return tmp;
	}
	if (IS("CCM_IMAGE"))
		return v->ccm_image;
	if (IS("VIP_ALIAS_IMAGE"))
		return v->vip_alias_image;
	if (IS("FLAGS"))
		return flags;
	return NULL;
#undef IS
}

int render_component(const struct render_values *v, enum render_component c, char **out,
		     size_t *len)
{
	struct strbuf b = {0};
	char flags[1024], tmp[CIDR_STRLEN];
	const char *p;
	int ret = 0;

	if ((unsigned)c >= RENDER__COUNT)
		return -EINVAL;
	describe_flags(v, flags, sizeof(flags));
	for (p = templates[c]; *p && ret == 0;) {
		const char *at = strchr(p, '@'), *end;
		size_t n = 0;

		if (!at) {
			ret = sb_add(&b, p, strlen(p));
			break;
		}
		/* @NAME@ with NAME in [A-Z_]; any other '@' is text. */
		for (end = at + 1; (*end >= 'A' && *end <= 'Z') || *end == '_'; end++)
			n++;
		if (n && *end == '@') {
			const char *val = lookup(v, at + 1, n, tmp, sizeof(tmp), flags);

			if (!val) {
				ret = -EINVAL;
				break;
			}
			if ((ret = sb_add(&b, p, (size_t)(at - p))) < 0 ||
			    (ret = sb_add(&b, val, strlen(val))) < 0)
				break;
			p = end + 1;
		} else {
			ret = sb_add(&b, p, (size_t)(at - p) + 1);
			p = at + 1;
		}
	}
	if (ret < 0) {
		free(b.s);
		return ret;
	}
	*out = b.s;
	if (len)
		*len = b.len;
	return 0;
}
