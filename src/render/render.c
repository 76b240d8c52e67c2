/* SPDX-License-Identifier: Apache-2.0 */
#include "render/render.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdint.h>
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
    {"project", "GCP project, for the CCM's cloud config (required)"},
    {"region", "GCP region (default us-central1)"},
    {"network", "VPC network name (default talos)"},
    {"subnetwork", "subnetwork name (default talos-nodes)"},
    {"node-tag", "network tag of the nodes, for the CCM's firewall rules (default talos-node)"},
    {"node-cidr", "the subnet's primary range (default 10.0.0.0/24)"},
    {"pod-cidr", "the subnet's pods secondary range (default 172.20.0.0/16)"},
    {"service-cidr", "Kubernetes Service range (default 10.96.0.0/12)"},
    {"vip", "control-plane VIP, the internal forwarding rule's address (default 10.0.0.2)"},
    {"mtu", "the VPC network's MTU (default 1460)"},
    {"nodes", "planned number of nodes: the node and pods ranges must hold them (default 3)"},
    {"talos-version", "Talos version the patches are for, e.g. v1.11 (default v1.12)"},
    {"ccm-image", "GCP CCM image"},
    {"vip-alias-image", "vip-alias image, with its registry (required: none is published)"},
    {NULL, NULL},
};

#define DEFAULT_CCM_IMAGE "registry.k8s.io/cloud-provider-gcp/cloud-controller-manager:v32.2.5"
/* As deploy/vip-alias.Containerfile builds it; push it to your registry and pass the name. */
#define DEFAULT_VIP_ALIAS_IMAGE "vip-alias:" TALOS_GCP_VERSION

/* Talos v1.12 brought link documents (DummyLinkConfig); before, machine.network.interfaces. */
#define TALOS_LINK_DOCUMENTS_MINOR 12
#define DEFAULT_TALOS_MAJOR        1
#define DEFAULT_TALOS_MINOR        12
#define DEFAULT_NODES              3
#define MAX_NODES                  100000

/*
 * Compute Engine's regions, https://cloud.google.com/compute/docs/regions-zones#available
 * (42 as of 2025). A region GCP does not have fails every insert later; refuse it here.
 */
static const char *const gcp_regions[] = {
    "africa-south1",
    "asia-east1",
    "asia-east2",
    "asia-northeast1",
    "asia-northeast2",
    "asia-northeast3",
    "asia-south1",
    "asia-south2",
    "asia-southeast1",
    "asia-southeast2",
    "australia-southeast1",
    "australia-southeast2",
    "europe-central2",
    "europe-north1",
    "europe-north2",
    "europe-southwest1",
    "europe-west1",
    "europe-west10",
    "europe-west12",
    "europe-west2",
    "europe-west3",
    "europe-west4",
    "europe-west6",
    "europe-west8",
    "europe-west9",
    "me-central1",
    "me-central2",
    "me-west1",
    "northamerica-northeast1",
    "northamerica-northeast2",
    "northamerica-south1",
    "southamerica-east1",
    "southamerica-west1",
    "us-central1",
    "us-east1",
    "us-east4",
    "us-east5",
    "us-south1",
    "us-west1",
    "us-west2",
    "us-west3",
    "us-west4",
};

void render_values_default(struct render_values *v)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->cluster_name, sizeof(v->cluster_name), "talos");
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
	v->nodes = DEFAULT_NODES;
	v->talos_major = DEFAULT_TALOS_MAJOR;
	v->talos_minor = DEFAULT_TALOS_MINOR;
}

static bool region_known(const char *s)
{
	for (size_t i = 0; i < sizeof(gcp_regions) / sizeof(gcp_regions[0]); i++)
		if (!strcmp(s, gcp_regions[i]))
			return true;
	return false;
}

/*
 * Whether an image reference names its registry: as the container runtimes read it, the part
 * before the first '/' is a registry when it has a '.' or a ':' or is "localhost"; otherwise
 * (vip-alias:1.0, library/x) the runtime silently pulls from docker.io.
 */
static bool image_has_registry(const char *s)
{
	const char *slash = strchr(s, '/');
	size_t n;

	if (!slash)
		return false;
	n = (size_t)(slash - s);
	return memchr(s, '.', n) || memchr(s, ':', n) || (n == 9 && !memcmp(s, "localhost", 9));
}

/* "v1.12", "1.12" or "v1.12.3": major and minor. */
static int parse_talos_version(const char *s, unsigned *major, unsigned *minor)
{
	unsigned long a, b;
	char *end;

	if (*s == 'v')
		s++;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	a = strtoul(s, &end, 10);
	if (*end != '.' || end[1] < '0' || end[1] > '9')
		return -EINVAL;
	b = strtoul(end + 1, &end, 10);
	if (*end == '.') {
		if (end[1] < '0' || end[1] > '9')
			return -EINVAL;
		strtoul(end + 1, &end, 10);
	}
	if (*end || a != 1 || b > 99)
		return -EINVAL;
	*major = (unsigned)a;
	*minor = (unsigned)b;
	return 0;
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
	if (!strcmp(key, "project")) {
		int r = set_name(v->project, sizeof(v->project), key, value, err, project_valid,
				 "not a GCP project id (6-30 of a-z, 0-9, '-', starting with a "
				 "letter)");

		v->project_set = v->project_set || r == 0;
		return r;
	}
	if (!strcmp(key, "region")) {
		if (!region_known(value))
			return error_set(err, EINVAL,
					 "--region %.100s: not a Compute Engine region (e.g. "
					 "us-central1; gcloud compute regions list)",
					 value);
		return set_name(v->region, sizeof(v->region), key, value, err, name_valid,
				"not a GCP region name (e.g. us-central1)");
	}
	if (!strcmp(key, "nodes")) {
		uint64_t n;

		if (parse_u64(value, MAX_NODES, &n) < 0 || n == 0)
			return error_set(err, EINVAL, "--nodes %.100s: want 1 to %d", value,
					 MAX_NODES);
		v->nodes = (unsigned)n;
		return 0;
	}
	if (!strcmp(key, "talos-version")) {
		if (parse_talos_version(value, &v->talos_major, &v->talos_minor) < 0)
			return error_set(
			    err, EINVAL,
			    "--talos-version %.100s: want a Talos version such as v1.12", value);
		return 0;
	}
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
	if (!strcmp(key, "ccm-image")) {
		int r = set_name(v->ccm_image, sizeof(v->ccm_image), key, value, err, image_valid,
				 "not an image reference");

		v->ccm_image_set = v->ccm_image_set || r == 0;
		return r;
	}
	if (!strcmp(key, "vip-alias-image")) {
		int r = set_name(v->vip_alias_image, sizeof(v->vip_alias_image), key, value, err,
				 image_valid, "not an image reference");

		v->vip_alias_image_set = v->vip_alias_image_set || r == 0;
		return r;
	}
	return -ENOENT;
}

static uint32_t ipv4_of(const struct ip_addr *ip)
{
	return (uint32_t)ip->bytes[0] << 24 | (uint32_t)ip->bytes[1] << 16 |
	       (uint32_t)ip->bytes[2] << 8 | ip->bytes[3];
}

/* An image no flag named must say where it comes from. */
static int check_image(const char *image, bool set, const char *flag, struct error *err)
{
	if (set || image_has_registry(image))
		return 0;
	return error_set(err, EINVAL,
			 "%s: required: the default %s names no registry (the runtime would pull "
			 "it from docker.io); build deploy/vip-alias.Containerfile, push it, and "
			 "name it (e.g. %s ghcr.io/you/vip-alias:%s)",
			 flag, image, flag, TALOS_GCP_VERSION);
}

int render_validate(const struct render_values *v, const bool *want, struct error *err)
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
	uint32_t first, last, addr;
	uint64_t usable;
	int ret;

	if (!v->project_set)
		return error_set(
		    err, EINVAL,
		    "--project: required (the CCM's cloud config names the project the "
		    "cluster runs in)");
	if (!region_known(v->region))
		return error_set(err, EINVAL, "--region %s: not a Compute Engine region",
				 v->region);
	ip_format(&v->vip, vip, sizeof(vip));
	cidr_format(&v->node_cidr, a, sizeof(a));
	/* Subnet primary ranges are /29 or larger (cloud.google.com/vpc/docs/subnets#valid-ranges).
	 */
	if (v->node_cidr.prefix > 29)
		return error_set(err, EINVAL,
				 "--node-cidr %s: a GCP subnet's primary range is /29 or larger "
				 "(4 of its addresses are reserved)",
				 a);
	if (!cidr_contains_ip(&v->node_cidr, &v->vip))
		return error_set(
		    err, EINVAL,
		    "--vip %s: not inside --node-cidr %s (an internal forwarding rule's "
		    "address comes from the subnet's primary range)",
		    vip, a);
	/*
	 * GCP reserves four addresses of every primary range: the network address, the default
	 * gateway (the second), the second-to-last and the broadcast address
	 * (cloud.google.com/vpc/docs/subnets#unusable-ip-addresses-in-every-subnet).
	 */
	first = ipv4_of(&v->node_cidr.addr);
	last = first | (uint32_t)((1ull << (32 - v->node_cidr.prefix)) - 1);
	addr = ipv4_of(&v->vip);
	if (addr == first || addr == first + 1 || addr == last - 1 || addr == last)
		return error_set(err, EINVAL,
				 "--vip %s: GCP reserves it in %s (%s); use another address "
				 "of the range",
				 vip, a,
				 addr == first       ? "the network address"
				 : addr == first + 1 ? "the default gateway"
				 : addr == last      ? "the broadcast address"
						     : "the second-to-last address");
	usable = (1ull << (32 - v->node_cidr.prefix)) - 4;
	if (usable < (uint64_t)v->nodes + 1)
		return error_set(err, EINVAL,
				 "--node-cidr %s: %llu usable addresses, no room for --nodes %u "
				 "and the VIP",
				 a, (unsigned long long)usable, v->nodes);
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
	if (cidr_subnet_count(&v->pod_cidr, 24) < v->nodes)
		return error_set(
		    err, EINVAL,
		    "--pod-cidr %s: room for %llu nodes' /24 alias ranges, not --nodes %u",
		    cidr_format(&v->pod_cidr, a, sizeof(a)),
		    (unsigned long long)cidr_subnet_count(&v->pod_cidr, 24), v->nodes);
	if ((!want || want[RENDER_CCM]) &&
	    (ret = check_image(v->ccm_image, v->ccm_image_set, "--ccm-image", err)) < 0)
		return ret;
	if ((!want || want[RENDER_VIP_ALIAS]) &&
	    (ret = check_image(v->vip_alias_image, v->vip_alias_image_set, "--vip-alias-image",
			       err)) < 0)
		return ret;
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
	if (v->nodes != def.nodes)
		ADD(" --nodes %u", v->nodes);
	if (v->talos_major != def.talos_major || v->talos_minor != def.talos_minor)
		ADD(" --talos-version v%u.%u", v->talos_major, v->talos_minor);
	/* Named images are always said: the command in the header must run as it is. */
	if (v->ccm_image_set || strcmp(v->ccm_image, def.ccm_image))
		ADD(" --ccm-image %s", v->ccm_image);
	if (v->vip_alias_image_set || strcmp(v->vip_alias_image, def.vip_alias_image))
		ADD(" --vip-alias-image %s", v->vip_alias_image);
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
	if (IS("VIP_LINK_LEGACY") || IS("VIP_LINK_DOCUMENT")) {
		/* A fragment, itself a template: the caller expands what this names. */
		bool documents = v->talos_major > 1 || v->talos_minor >= TALOS_LINK_DOCUMENTS_MINOR;

		if (IS("VIP_LINK_LEGACY"))
			return documents ? "" : template_vip_link_legacy;
		return documents ? template_vip_link_document : "";
	}
	return NULL;
#undef IS
}

/* Appends tpl with its @NAME@ placeholders replaced; fragments are expanded in turn. */
static int expand(const struct render_values *v, const char *tpl, const char *flags, unsigned depth,
		  struct strbuf *b)
{
	char tmp[CIDR_STRLEN];
	const char *p;
	int ret = 0;

	if (depth > 2)
		return -ELOOP;
	for (p = tpl; *p && ret == 0;) {
		const char *at = strchr(p, '@'), *end;
		size_t n = 0;

		if (!at)
			return sb_add(b, p, strlen(p));
		/* @NAME@ with NAME in [A-Z_]; any other '@' is text. */
		for (end = at + 1; (*end >= 'A' && *end <= 'Z') || *end == '_'; end++)
			n++;
		if (n && *end == '@') {
			const char *val = lookup(v, at + 1, n, tmp, sizeof(tmp), flags);

			if (!val)
				return -EINVAL;
			if ((ret = sb_add(b, p, (size_t)(at - p))) < 0)
				break;
			if (!strncmp(at + 1, "VIP_LINK_", 9))
				ret = expand(v, val, flags, depth + 1, b);
			else
				ret = sb_add(b, val, strlen(val));
			p = end + 1;
		} else {
			ret = sb_add(b, p, (size_t)(at - p) + 1);
			p = at + 1;
		}
	}
	return ret;
}

int render_component(const struct render_values *v, enum render_component c, char **out,
		     size_t *len)
{
	struct strbuf b = {0};
	char flags[1024];
	int ret;

	if ((unsigned)c >= RENDER__COUNT)
		return -EINVAL;
	describe_flags(v, flags, sizeof(flags));
	ret = expand(v, templates[c], flags, 0, &b);
	if (ret == 0 && !b.s)
		ret = sb_add(&b, "", 0);
	if (ret < 0) {
		free(b.s);
		return ret;
	}
	*out = b.s;
	if (len)
		*len = b.len;
	return 0;
}
