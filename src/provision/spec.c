/* SPDX-License-Identifier: Apache-2.0 */
#include "provision/spec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cidr.h"
#include "common/fileio.h"
#include "common/str.h"
#include "doctor/ytree.h"

/* GCP: "the total size of all keys and values must be less than 512 KB" per instance, a
 * value at most 256 KB (https://cloud.google.com/compute/docs/metadata/setting-custom-metadata). */
#define USER_DATA_MAX (256 * 1024)
#define SPEC_FILE_MAX (1024 * 1024)
/* Longest suffix added to the cluster name ("-workers-" + a zone name). */
#define LONGEST_SUFFIX "-workers-"

struct parser {
	struct cluster_spec *s;
	const char *file;
	const char *base_dir;
	unsigned flags;
	struct error *err;
};

static int vfail(struct parser *p, const struct ynode *n, const char *path, const char *fmt,
		 va_list ap) __attribute__((format(printf, 4, 0)));

static int vfail(struct parser *p, const struct ynode *n, const char *path, const char *fmt,
		 va_list ap)
{
	char msg[ERROR_MSG_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (path && !*path)
		path = NULL;
	if (n && n->line)
		return error_set(p->err, EINVAL, "%s:%u:%u: %s%s%s", p->file, n->line, n->col,
				 path ? path : "", path ? ": " : "", msg);
	return error_set(p->err, EINVAL, "%s: %s%s%s", p->file, path ? path : "", path ? ": " : "",
			 msg);
}

static int fail(struct parser *p, const struct ynode *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct parser *p, const struct ynode *n, const char *path, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(p, n, path, fmt, ap);
	va_end(ap);
	return ret;
}

static int record(struct parser *p, const char *path, const struct ynode *n)
{
	struct cluster_spec *s = p->s;
	struct spec_where *w;

	if (!n)
		return 0;
	w = realloc(s->where, (s->nwhere + 1) * sizeof(*w));
	if (!w)
		return error_set(p->err, ENOMEM, "out of memory");
	s->where = w;
	w = &s->where[s->nwhere++];
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->line = n->line;
	w->col = n->col;
	return 0;
}

static const char *kind_name(const struct ynode *n)
{
	if (yis_map(n))
		return "a mapping";
	if (yis_seq(n))
		return "a list";
	return "a scalar";
}

/* The mapping's keys are all in allowed (NULL-terminated), each once. */
static int check_keys(struct parser *p, const struct ynode *map, const char *path,
		      const char *const *allowed)
{
	char list[256] = "";
	size_t len = 0;

	for (size_t i = 0; allowed[i]; i++)
		len += (size_t)snprintf(list + len, len < sizeof(list) ? sizeof(list) - len : 0,
					"%s%s", i ? ", " : "", allowed[i]);
	for (uint32_t i = 0; i < map->n; i++) {
		const struct ynode *k = map->pairs[i].key;
		const char *key = ystr(k);
		bool ok = false;

		if (!key || strlen(key) != k->n)
			return fail(p, k, path, "keys must be strings");
		for (size_t j = 0; allowed[j] && !ok; j++)
			ok = strcmp(allowed[j], key) == 0;
		if (!ok)
			return fail(p, k, path, "unknown key '%s' (known: %s)", key, list);
		for (uint32_t j = 0; j < i; j++)
			if (yscalar_eq(map->pairs[j].key, key))
				return fail(p, k, path, "duplicate key '%s'", key);
	}
	return 0;
}

static char *join(const char *path, const char *key)
{
	return *path ? str_printf("%s.%s", path, key) : strdup(key);
}

/* A string value (plain or quoted scalar, not empty). *out is malloc'd; NULL when absent. */
static int get_str(struct parser *p, const struct ynode *map, const char *path, const char *key,
		   bool required, char **out)
{
	const struct ynode *v = ymap_get(map, key);
	char *full = join(path, key);
	int ret = 0;

	if (!full)
		return error_set(p->err, ENOMEM, "out of memory");
	if (!v || yis_null(v)) {
		if (required)
			ret = fail(p, map, full, "required");
		goto cleanup;
	}
	if (!yis_scalar(v) || strlen(v->str) != v->n || v->n == 0) {
		ret = fail(p, v, full, "want a non-empty string, not %s",
			   yis_scalar(v) ? "this" : kind_name(v));
		goto cleanup;
	}
	*out = strdup(v->str);
	ret = *out ? record(p, full, v) : error_set(p->err, ENOMEM, "out of memory");
cleanup:
	free(full);
	return ret;
}

static int get_uint(struct parser *p, const struct ynode *map, const char *path, const char *key,
		    uint64_t min, uint64_t max, unsigned *out)
{
	const struct ynode *v = ymap_get(map, key);
	char *full = join(path, key);
	uint64_t n;
	int ret = 0;

	if (!full)
		return error_set(p->err, ENOMEM, "out of memory");
	if (!v || yis_null(v))
		goto cleanup;
	if (!yis_scalar(v) || v->quoted || yuint(v, UINT32_MAX, &n) < 0) {
		ret = fail(p, v, full, "want a number");
		goto cleanup;
	}
	if (n < min || n > max) {
		ret = fail(p, v, full, "%llu is out of range (%llu to %llu)", (unsigned long long)n,
			   (unsigned long long)min, (unsigned long long)max);
		goto cleanup;
	}
	*out = (unsigned)n;
	ret = record(p, full, v);
cleanup:
	free(full);
	return ret;
}

/* A list of scalars (a single scalar is not a list). */
static int get_list(struct parser *p, const struct ynode *map, const char *path, const char *key,
		    const struct ynode **out)
{
	const struct ynode *v = ymap_get(map, key);
	char *full = join(path, key);
	int ret = 0;

	*out = NULL;
	if (!full)
		return error_set(p->err, ENOMEM, "out of memory");
	if (!v || yis_null(v))
		goto cleanup;
	if (!yis_seq(v)) {
		ret = fail(p, v, full, "want a list, not %s", kind_name(v));
		goto cleanup;
	}
	for (uint32_t i = 0; i < v->n; i++) {
		if (!yis_scalar(v->items[i]) || v->items[i]->n == 0 ||
		    strlen(v->items[i]->str) != v->items[i]->n) {
			ret = fail(p, v->items[i], full, "item %u: want a non-empty string", i);
			goto cleanup;
		}
	}
	*out = v;
	ret = record(p, full, v);
cleanup:
	free(full);
	return ret;
}

static const struct ynode *get_map(struct parser *p, const struct ynode *map, const char *key,
				   int *ret)
{
	const struct ynode *v = ymap_get(map, key);

	*ret = 0;
	if (!v || yis_null(v))
		return NULL;
	if (!yis_map(v)) {
		*ret = fail(p, v, key, "want a mapping, not %s", kind_name(v));
		return NULL;
	}
	return v;
}

/* ---- value rules ---- */

/* RFC 1035 as Compute names resources: [a-z]([-a-z0-9]*[a-z0-9])?, at most max. */
static bool rfc1035(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || s[0] < 'a' || s[0] > 'z' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* Label keys and values (https://cloud.google.com/compute/docs/labeling-resources). */
static bool label_ok(const char *s, bool key)
{
	size_t n = strlen(s);

	if (n > 63 || (key && (n == 0 || s[0] < 'a' || s[0] > 'z')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_'))
			return false;
	return true;
}

static int get_cidr(struct parser *p, const struct ynode *map, const char *key, const char *dflt,
		    char *buf, size_t len, struct cidr *c)
{
	char *text = NULL, path[64];
	const char *use;
	int ret;

	snprintf(path, sizeof(path), "network.%s", key);
	ret = get_str(p, map, "network", key, false, &text);
	if (ret < 0)
		return ret;
	use = text ? text : dflt;
	ret = cidr_parse(use, c, CIDR_STRICT);
	if (ret == 0 && c->addr.family != AF_INET)
		ret = -EINVAL;
	if (ret < 0) {
		ret =
		    fail(p, ymap_get(map, key), path,
			 ret == -EDOM ? "'%s' has host bits set" : "'%s' is not an IPv4 CIDR range",
			 use);
		goto cleanup;
	}
	if (c->prefix < 8 || c->prefix > 29) {
		ret = fail(
		    p, ymap_get(map, key), path,
		    "'%s': GCP ranges are /8 to /29 (https://cloud.google.com/vpc/docs/subnets)",
		    use);
		goto cleanup;
	}
	snprintf(buf, len, "%s", use);
cleanup:
	free(text);
	return ret;
}

static uint32_t v4(const struct ip_addr *a)
{
	uint32_t x;

	memcpy(&x, a->bytes, 4);
	return ntohl(x);
}

/* Ranges a subnet may never use (https://cloud.google.com/vpc/docs/subnets#valid-ranges). */
static const char *forbidden(const struct cidr *c)
{
	static const struct {
		const char *range, *why;
	} bad[] = {{"0.0.0.0/8", "the current network"},
		   {"127.0.0.0/8", "loopback"},
		   {"169.254.0.0/16", "link-local (the metadata server)"},
		   {"224.0.0.0/3", "multicast and reserved"}};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cidr b;

		if (cidr_parse(bad[i].range, &b, CIDR_STRICT) == 0 && cidr_overlaps(c, &b))
			return bad[i].why;
	}
	return NULL;
}

/* ---- sections ---- */

static int parse_network(struct parser *p, const struct ynode *net)
{
	static const char *const keys[] = {"nodeCidr", "podCidr", "serviceCidr",
					   "vip",      "mtu",     NULL};
	struct cluster_spec *s = p->s;
	struct ynode empty = {.kind = YNODE_MAP};
	struct cidr node, pods, svc;
	struct ip_addr vip;
	char *vip_text = NULL;
	const char *why;
	int ret;

	if (!net)
		net = &empty;
	ret = check_keys(p, net, "network", keys);
	if (ret == 0)
		ret = get_cidr(p, net, "nodeCidr", "10.0.0.0/24", s->network.node_cidr,
			       sizeof(s->network.node_cidr), &node);
	if (ret == 0)
		ret = get_cidr(p, net, "podCidr", "172.20.0.0/16", s->network.pod_cidr,
			       sizeof(s->network.pod_cidr), &pods);
	if (ret == 0)
		ret = get_cidr(p, net, "serviceCidr", "10.96.0.0/12", s->network.service_cidr,
			       sizeof(s->network.service_cidr), &svc);
	if (ret < 0)
		return ret;
	if ((why = forbidden(&node)) || (why = forbidden(&pods)) || (why = forbidden(&svc)))
		return fail(p, net, "network", "a range overlaps %s addresses", why);
	if (cidr_overlaps(&node, &pods))
		return fail(p, ymap_get(net, "podCidr"), "network.podCidr",
			    "%s overlaps nodeCidr %s", s->network.pod_cidr, s->network.node_cidr);
	if (cidr_overlaps(&node, &svc))
		return fail(p, ymap_get(net, "serviceCidr"), "network.serviceCidr",
			    "%s overlaps nodeCidr %s", s->network.service_cidr,
			    s->network.node_cidr);
	if (cidr_overlaps(&pods, &svc))
		return fail(p, ymap_get(net, "serviceCidr"), "network.serviceCidr",
			    "%s overlaps podCidr %s", s->network.service_cidr, s->network.pod_cidr);
	if (pods.prefix > 24)
		return fail(p, ymap_get(net, "podCidr"), "network.podCidr",
			    "%s is smaller than the /24 each node takes", s->network.pod_cidr);
	s->network.mtu = 1460;
	ret = get_uint(p, net, "network", "mtu", 1300, 8896, &s->network.mtu);
	if (ret < 0)
		return ret;
	ret = get_str(p, net, "network", "vip", false, &vip_text);
	if (ret < 0)
		return ret;
	if (vip_text) {
		if (ip_parse(vip_text, &vip) < 0 || vip.family != AF_INET) {
			ret = fail(p, ymap_get(net, "vip"), "network.vip",
				   "'%s' is not an IPv4 address", vip_text);
			goto cleanup;
		}
	} else {
		/* The first address GCP gives out: the network address + 2 (10.0.0.2). */
		uint32_t a = htonl(v4(&node.addr) + 2);

		vip = node.addr;
		memcpy(vip.bytes, &a, 4);
	}
	ip_format(&vip, s->network.vip, sizeof(s->network.vip));
	{
		uint32_t lo = v4(&node.addr),
			 hi = lo + (uint32_t)((1ull << (32 - node.prefix)) - 1);
		uint32_t x = v4(&vip);

		if (!cidr_contains_ip(&node, &vip)) {
			ret =
			    fail(p, ymap_get(net, "vip"), "network.vip",
				 "%s is outside nodeCidr %s", s->network.vip, s->network.node_cidr);
			goto cleanup;
		}
		/* "the first two and last two IPv4 addresses of a primary range are reserved". */
		if (x < lo + 2 || x > hi - 2) {
			ret = fail(p, ymap_get(net, "vip"), "network.vip",
				   "%s is reserved by GCP in %s (network, gateway, second-to-last "
				   "and broadcast addresses)",
				   s->network.vip, s->network.node_cidr);
			goto cleanup;
		}
	}
cleanup:
	free(vip_text);
	return ret;
}

static int parse_image(struct parser *p, const struct ynode *img)
{
	static const char *const keys[] = {"name", "project", "family", "sourceUri", NULL};
	struct cluster_spec *s = p->s;
	char *uri = NULL;
	int ret;

	if (!img)
		return fail(p, NULL, "image",
			    "required: the Talos image (name: an existing image, or sourceUri: "
			    "the gcp-amd64.raw.tar.gz in Cloud Storage)");
	ret = check_keys(p, img, "image", keys);
	if (ret == 0)
		ret = get_str(p, img, "image", "name", false, &s->image.name);
	if (ret == 0)
		ret = get_str(p, img, "image", "project", false, &s->image.project);
	if (ret == 0)
		ret = get_str(p, img, "image", "family", false, &s->image.family);
	if (ret == 0)
		ret = get_str(p, img, "image", "sourceUri", false, &uri);
	if (ret < 0)
		goto cleanup;
	if (!s->image.name && !s->image.family && !uri) {
		ret = fail(p, img, "image", "give name (an existing image), family, or sourceUri");
		goto cleanup;
	}
	if (s->image.family && (s->image.name || uri)) {
		ret = fail(p, ymap_get(img, "family"), "image.family",
			   "a family names an existing image: no name or sourceUri with it");
		goto cleanup;
	}
	if (uri && s->image.project) {
		ret = fail(p, ymap_get(img, "project"), "image.project",
			   "an image made from sourceUri lives in the spec's project");
		goto cleanup;
	}
	if ((s->image.name && !rfc1035(s->image.name, 63)) ||
	    (s->image.family && !rfc1035(s->image.family, 63))) {
		ret = fail(p, ymap_get(img, s->image.name ? "name" : "family"), "image",
			   "'%s' is not a valid image name", s->image.name ?: s->image.family);
		goto cleanup;
	}
	if (uri) {
		/* gs://BUCKET/OBJECT or https://storage.googleapis.com/BUCKET/OBJECT. */
		const char *rest = NULL, *slash;

		if (strncmp(uri, "gs://", 5) == 0)
			rest = uri + 5;
		else if (strncmp(uri, "https://storage.googleapis.com/", 31) == 0)
			rest = uri + 31;
		slash = rest ? strchr(rest, '/') : NULL;
		if (!slash || slash == rest || !slash[1] || strpbrk(uri, " \t\r\n?#")) {
			ret = fail(p, ymap_get(img, "sourceUri"), "image.sourceUri",
				   "'%s': want gs://BUCKET/OBJECT (the Talos gcp-amd64.raw.tar.gz)",
				   uri);
			goto cleanup;
		}
		s->image.source_uri = str_printf("https://storage.googleapis.com/%s", rest);
		if (!s->image.source_uri) {
			ret = error_set(p->err, ENOMEM, "out of memory");
			goto cleanup;
		}
		if (!s->image.name) {
			s->image.name = str_printf("%s-talos", s->name);
			if (!s->image.name)
				ret = error_set(p->err, ENOMEM, "out of memory");
		}
	}
cleanup:
	free(uri);
	return ret;
}

static int read_user_data(struct parser *p, const struct ynode *at, const char *path,
			  struct spec_pool *pool)
{
	char *file;
	int ret;

	if (p->flags & SPEC_NO_FILES)
		return 0;
	if (pool->user_data_path[0] == '/' || !p->base_dir)
		file = strdup(pool->user_data_path);
	else
		file = str_printf("%s/%s", p->base_dir, pool->user_data_path);
	if (!file)
		return error_set(p->err, ENOMEM, "out of memory");
	ret = file_read_all(file, USER_DATA_MAX, &pool->user_data, &pool->user_data_len);
	if (ret == -EFBIG)
		ret = fail(p, at, path, "%s is larger than GCP's 256 KB metadata value", file);
	else if (ret < 0)
		ret = fail(p, at, path, "cannot read %s: %s", file, strerror(-ret));
	free(file);
	return ret;
}

static int parse_existing(struct parser *p, const struct ynode *list, const char *path,
			  struct spec_pool *pool)
{
	char item_path[96];

	if (!list || yis_null(list))
		return 0;
	if (!yis_seq(list))
		return fail(p, list, path, "want a list of instance names or {name, zone}");
	pool->existing = calloc(list->n ? list->n : 1, sizeof(*pool->existing));
	if (!pool->existing)
		return error_set(p->err, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < list->n; i++) {
		const struct ynode *it = list->items[i];
		struct spec_existing *e = &pool->existing[pool->nexisting++];
		int ret;

		snprintf(item_path, sizeof(item_path), "%s[%u]", path, i);
		if (yis_map(it)) {
			static const char *const keys[] = {"name", "zone", NULL};

			ret = check_keys(p, it, item_path, keys);
			if (ret == 0)
				ret = get_str(p, it, item_path, "name", true, &e->name);
			if (ret == 0)
				ret = get_str(p, it, item_path, "zone", false, &e->zone);
			if (ret < 0)
				return ret;
		} else if (yis_scalar(it) && it->n && strlen(it->str) == it->n) {
			e->name = strdup(it->str);
			if (!e->name)
				return error_set(p->err, ENOMEM, "out of memory");
		} else {
			return fail(p, it, item_path, "want an instance name or {name, zone}");
		}
		ret = record(p, item_path, it);
		if (ret < 0)
			return ret;
		if (!rfc1035(e->name, 63))
			return fail(p, it, item_path, "'%s' is not a valid instance name", e->name);
		if (e->zone && strncmp(e->zone, p->s->region, strlen(p->s->region)) != 0)
			return fail(p, it, item_path, "zone %s is not in region %s", e->zone,
				    p->s->region);
		for (size_t j = 0; j + 1 < pool->nexisting; j++)
			if (strcmp(pool->existing[j].name, e->name) == 0)
				return fail(p, it, item_path, "%s is listed twice", e->name);
	}
	return 0;
}

static int parse_pool(struct parser *p, const struct ynode *m, const char *path,
		      struct spec_pool *pool, bool cp)
{
	static const char *const cp_keys[] = {
	    "count",    "machineType",    "diskSizeGb", "diskType", "tags",         "labels",
	    "userData", "serviceAccount", "existing",   "external", "externalPort", NULL};
	const char *const *keys = cp_keys;
	const struct ynode *tags, *labels;
	char full[64];
	int ret;

	static const char *const worker_keys[] = {
	    "count",  "machineType", "diskSizeGb",     "diskType", "tags",
	    "labels", "userData",    "serviceAccount", "existing", NULL};

	if (!cp)
		keys = worker_keys;
	pool->disk_size_gb = 20;
	if (!m)
		return cp ? fail(p, NULL, path, "required (count: the control-plane nodes)") : 0;
	ret = check_keys(p, m, path, keys);
	if (ret == 0)
		ret = get_uint(p, m, path, "count", 0, 1000, &pool->count);
	if (ret == 0)
		ret = get_str(p, m, path, "machineType", false, &pool->machine_type);
	if (ret == 0)
		ret = get_uint(p, m, path, "diskSizeGb", 10, 65536, &pool->disk_size_gb);
	if (ret == 0)
		ret = get_str(p, m, path, "diskType", false, &pool->disk_type);
	if (ret == 0)
		ret = get_str(p, m, path, "userData", false, &pool->user_data_path);
	if (ret == 0)
		ret = get_str(p, m, path, "serviceAccount", false, &pool->service_account);
	if (ret == 0)
		ret = get_list(p, m, path, "tags", &tags);
	if (ret < 0)
		return ret;
	if ((pool->machine_type && !rfc1035(pool->machine_type, 63)) ||
	    (pool->disk_type && !rfc1035(pool->disk_type, 63))) {
		const char *k = pool->machine_type && !rfc1035(pool->machine_type, 63)
				    ? "machineType"
				    : "diskType";

		snprintf(full, sizeof(full), "%s.%s", path, k);
		return fail(p, ymap_get(m, k), full, "not a valid name");
	}
	if (tags) {
		pool->tags = calloc(tags->n ? tags->n : 1, sizeof(char *));
		if (!pool->tags)
			return error_set(p->err, ENOMEM, "out of memory");
		for (uint32_t i = 0; i < tags->n; i++) {
			snprintf(full, sizeof(full), "%s.tags[%u]", path, i);
			if (!rfc1035(tags->items[i]->str, 63))
				return fail(p, tags->items[i], full,
					    "'%s': network tags are RFC 1035 names",
					    tags->items[i]->str);
			pool->tags[pool->ntags] = strdup(tags->items[i]->str);
			if (!pool->tags[pool->ntags++])
				return error_set(p->err, ENOMEM, "out of memory");
		}
	}
	labels = ymap_get(m, "labels");
	if (labels && !yis_null(labels)) {
		snprintf(full, sizeof(full), "%s.labels", path);
		if (!yis_map(labels))
			return fail(p, labels, full, "want a mapping of label: value");
		pool->labels = calloc(labels->n ? labels->n : 1, sizeof(*pool->labels));
		if (!pool->labels)
			return error_set(p->err, ENOMEM, "out of memory");
		for (uint32_t i = 0; i < labels->n; i++) {
			const struct ynode *k = labels->pairs[i].key, *v = labels->pairs[i].value;
			struct spec_label *l = &pool->labels[pool->nlabels];

			if (!yis_scalar(k) || !label_ok(k->str, true))
				return fail(p, k, full, "'%s' is not a valid label key",
					    ystr(k) ?: "");
			if (strncmp(k->str, "talos-gcp-", 10) == 0)
				return fail(p, k, full,
					    "'%s': talos-gcp-* labels are talos-gcp's own", k->str);
			if (!yis_scalar(v) || !label_ok(yis_null(v) ? "" : v->str, false))
				return fail(p, v, full, "%s: '%s' is not a valid label value",
					    k->str, ystr(v) ?: "");
			for (uint32_t j = 0; j < i; j++)
				if (yscalar_eq(labels->pairs[j].key, k->str))
					return fail(p, k, full, "duplicate label '%s'", k->str);
			l->key = strdup(k->str);
			l->value = strdup(yis_null(v) ? "" : v->str);
			pool->nlabels++;
			if (!l->key || !l->value)
				return error_set(p->err, ENOMEM, "out of memory");
		}
	}
	if (pool->user_data_path) {
		snprintf(full, sizeof(full), "%s.userData", path);
		ret = read_user_data(p, ymap_get(m, "userData"), full, pool);
		if (ret < 0)
			return ret;
	}
	if (pool->service_account && strcmp(pool->service_account, "none") == 0) {
		free(pool->service_account);
		pool->service_account = NULL;
	} else if (pool->service_account && strcmp(pool->service_account, "default") != 0 &&
		   !strchr(pool->service_account, '@')) {
		snprintf(full, sizeof(full), "%s.serviceAccount", path);
		return fail(p, ymap_get(m, "serviceAccount"), full,
			    "want default, none, or a service account e-mail address");
	} else if (!ymap_get(m, "serviceAccount") && cp) {
		/* The CCM on the control planes calls the Compute API as the instance. */
		pool->service_account = strdup("default");
		if (!pool->service_account)
			return error_set(p->err, ENOMEM, "out of memory");
	}
	snprintf(full, sizeof(full), "%s.existing", path);
	ret = parse_existing(p, ymap_get(m, "existing"), full, pool);
	if (ret < 0)
		return ret;
	if (cp) {
		char *ext = NULL;

		p->s->cp_external_port = 443;
		ret = get_str(p, m, path, "external", false, &ext);
		if (ret == 0)
			ret =
			    get_uint(p, m, path, "externalPort", 1, 65535, &p->s->cp_external_port);
		if (ret == 0 && ext && strcmp(ext, "tcp-proxy") == 0)
			p->s->cp_external = true;
		else if (ret == 0 && ext && strcmp(ext, "none") != 0)
			ret =
			    fail(p, ymap_get(m, "external"), "controlPlane.external",
				 "'%s': want tcp-proxy (a global TCP proxy to 6443) or none", ext);
		free(ext);
		if (ret < 0)
			return ret;
		if (pool->count + pool->nexisting == 0)
			return fail(p, m, path, "a cluster needs at least one control-plane node");
	}
	return 0;
}

static int parse_ingress(struct parser *p, const struct ynode *m)
{
	static const char *const keys[] = {"type",      "ports",     "targetPort",
					   "protocols", "addresses", NULL};
	struct cluster_spec *s = p->s;
	const struct ynode *ports, *protos;
	char *type = NULL, full[64];
	int ret;

	if (!m)
		return 0;
	ret = check_keys(p, m, "ingress", keys);
	if (ret == 0)
		ret = get_str(p, m, "ingress", "type", true, &type);
	if (ret < 0)
		goto cleanup;
	if (strcmp(type, "tcp-proxy") == 0) {
		s->ingress.type = SPEC_INGRESS_TCP_PROXY;
	} else if (strcmp(type, "passthrough") == 0) {
		s->ingress.type = SPEC_INGRESS_PASSTHROUGH;
	} else if (strcmp(type, "none") == 0) {
		goto cleanup;
	} else {
		ret = fail(p, ymap_get(m, "type"), "ingress.type",
			   "'%s': want tcp-proxy (the design note's global TCP proxy), passthrough "
			   "(regional external, TCP and UDP) or none",
			   type);
		goto cleanup;
	}
	ports = ymap_get(m, "ports");
	if (!ports || !yis_seq(ports) || ports->n == 0) {
		ret = fail(p, ports ? ports : m, "ingress.ports",
			   "want a list of ports, e.g. [80, 443]");
		goto cleanup;
	}
	if (ports->n > sizeof(s->ingress.ports) / sizeof(s->ingress.ports[0]) ||
	    (s->ingress.type == SPEC_INGRESS_PASSTHROUGH && ports->n > 5)) {
		ret = fail(p, ports, "ingress.ports", "at most %u ports",
			   s->ingress.type == SPEC_INGRESS_PASSTHROUGH ? 5 : 8);
		goto cleanup;
	}
	ret = record(p, "ingress.ports", ports);
	for (uint32_t i = 0; ret == 0 && i < ports->n; i++) {
		uint64_t n;

		snprintf(full, sizeof(full), "ingress.ports[%u]", i);
		if (ports->items[i]->quoted || yuint(ports->items[i], 65535, &n) < 0 || n == 0) {
			ret = fail(p, ports->items[i], full, "want a port number (1 to 65535)");
			break;
		}
		for (size_t j = 0; j < s->ingress.nports; j++)
			if (s->ingress.ports[j] == n)
				ret = fail(p, ports->items[i], full, "port %llu is listed twice",
					   (unsigned long long)n);
		s->ingress.ports[s->ingress.nports++] = (unsigned)n;
	}
	if (ret == 0)
		ret = get_uint(p, m, "ingress", "targetPort", 1, 65535, &s->ingress.target_port);
	if (ret < 0)
		goto cleanup;
	if (s->ingress.type == SPEC_INGRESS_PASSTHROUGH) {
		/* A passthrough load balancer delivers packets unchanged: no port translation. */
		if (s->ingress.target_port &&
		    (s->ingress.nports != 1 || s->ingress.target_port != s->ingress.ports[0])) {
			ret = fail(p, ymap_get(m, "targetPort"), "ingress.targetPort",
				   "a passthrough load balancer does not translate ports: the "
				   "workers serve the ports themselves");
			goto cleanup;
		}
		s->ingress.target_port = s->ingress.ports[0];
		s->ingress.addresses = 1;
		ret = get_uint(p, m, "ingress", "addresses", 1, 8, &s->ingress.addresses);
		if (ret == 0)
			ret = get_list(p, m, "ingress", "protocols", &protos);
		if (ret < 0)
			goto cleanup;
		for (uint32_t i = 0; protos && i < protos->n; i++) {
			snprintf(full, sizeof(full), "ingress.protocols[%u]", i);
			if (yscalar_eq(protos->items[i], "TCP"))
				s->ingress.tcp = true;
			else if (yscalar_eq(protos->items[i], "UDP"))
				s->ingress.udp = true;
			else {
				ret = fail(p, protos->items[i], full, "want TCP or UDP");
				goto cleanup;
			}
		}
		if (!protos)
			s->ingress.tcp = true;
	} else {
		if (ymap_get(m, "protocols") || ymap_get(m, "addresses")) {
			const char *k = ymap_get(m, "protocols") ? "protocols" : "addresses";

			snprintf(full, sizeof(full), "ingress.%s", k);
			ret = fail(
			    p, ymap_get(m, k), full,
			    "only for type passthrough (a TCP proxy takes TCP on one address)");
			goto cleanup;
		}
		s->ingress.tcp = true;
		s->ingress.addresses = 1;
		if (!s->ingress.target_port)
			s->ingress.target_port = s->ingress.ports[0];
	}
	if (s->workers.count + s->workers.nexisting == 0)
		ret = fail(p, m, "ingress", "ingress needs workers to send traffic to");
cleanup:
	free(type);
	return ret;
}

/* Every name talos-gcp derives must fit Compute's 63 characters. */
static int check_lengths(struct parser *p, const struct ynode *root)
{
	struct cluster_spec *s = p->s;
	const char *longest = "";

	for (size_t i = 0; i < s->nzones; i++)
		if (strlen(s->zones[i]) > strlen(longest))
			longest = s->zones[i];
	if (strlen(s->name) + strlen(LONGEST_SUFFIX) + strlen(longest) > 63)
		return fail(p, ymap_get(root, "name"), "name",
			    "'%s' is too long: '%s%s%s' would pass Compute's 63 characters",
			    s->name, s->name, LONGEST_SUFFIX, longest);
	return 0;
}

static int parse_root(struct parser *p, const struct ynode *root)
{
	static const char *const keys[] = {"apiVersion",   "kind",    "name",    "project",
					   "region",       "zones",   "network", "image",
					   "controlPlane", "workers", "ingress", NULL};
	struct cluster_spec *s = p->s;
	const struct ynode *zones, *m;
	char *api = NULL, *kind = NULL;
	uint64_t nodes, fit;
	struct cidr pods, node;
	int ret;

	if (!yis_map(root))
		return fail(p, root, NULL, "the spec is a mapping (name, region, zones, ...)");
	ret = check_keys(p, root, "", keys);
	if (ret == 0)
		ret = get_str(p, root, "", "apiVersion", false, &api);
	if (ret == 0)
		ret = get_str(p, root, "", "kind", false, &kind);
	if (ret == 0 && api && strcmp(api, "talos-gcp/v1") != 0)
		ret = fail(p, ymap_get(root, "apiVersion"), "apiVersion",
			   "'%s': this talos-gcp reads talos-gcp/v1", api);
	if (ret == 0 && kind && strcmp(kind, "Cluster") != 0)
		ret = fail(p, ymap_get(root, "kind"), "kind", "'%s': want Cluster", kind);
	free(api);
	free(kind);
	if (ret == 0)
		ret = get_str(p, root, "", "name", true, &s->name);
	if (ret == 0 && !rfc1035(s->name, 63))
		ret = fail(p, ymap_get(root, "name"), "name",
			   "'%s': want a lowercase RFC 1035 name (letters, digits, '-')", s->name);
	if (ret == 0)
		ret = get_str(p, root, "", "project", false, &s->project);
	if (ret == 0 && s->project && (!rfc1035(s->project, 30) || strlen(s->project) < 6))
		ret = fail(p, ymap_get(root, "project"), "project", "'%s' is not a project ID",
			   s->project);
	if (ret == 0)
		ret = get_str(p, root, "", "region", true, &s->region);
	if (ret == 0 && !rfc1035(s->region, 63))
		ret = fail(p, ymap_get(root, "region"), "region", "'%s' is not a region name",
			   s->region);
	if (ret == 0)
		ret = get_list(p, root, "", "zones", &zones);
	if (ret < 0)
		return ret;
	if (!zones || zones->n == 0)
		return fail(p, zones ? zones : root, "zones",
			    "required: the zones to spread the nodes over, e.g. [%s-a]", s->region);
	s->zones = calloc(zones->n, sizeof(char *));
	if (!s->zones)
		return error_set(p->err, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < zones->n; i++) {
		const char *z = zones->items[i]->str;
		size_t rl = strlen(s->region);
		char full[32];

		snprintf(full, sizeof(full), "zones[%u]", i);
		if (strncmp(z, s->region, rl) != 0 || z[rl] != '-' || !rfc1035(z, 63))
			return fail(p, zones->items[i], full, "'%s' is not a zone of %s", z,
				    s->region);
		for (size_t j = 0; j < s->nzones; j++)
			if (strcmp(s->zones[j], z) == 0)
				return fail(p, zones->items[i], full, "%s is listed twice", z);
		s->zones[s->nzones] = strdup(z);
		if (!s->zones[s->nzones++])
			return error_set(p->err, ENOMEM, "out of memory");
		ret = record(p, full, zones->items[i]);
		if (ret < 0)
			return ret;
	}
	ret = check_lengths(p, root);
	if (ret < 0)
		return ret;
	m = get_map(p, root, "network", &ret);
	if (ret == 0)
		ret = parse_network(p, m);
	if (ret < 0)
		return ret;
	m = get_map(p, root, "image", &ret);
	if (ret == 0)
		ret = parse_image(p, m);
	if (ret < 0)
		return ret;
	m = get_map(p, root, "controlPlane", &ret);
	if (ret == 0)
		ret = parse_pool(p, m, "controlPlane", &s->control_plane, true);
	if (ret < 0)
		return ret;
	m = get_map(p, root, "workers", &ret);
	if (ret == 0)
		ret = parse_pool(p, m, "workers", &s->workers, false);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < s->control_plane.nexisting; i++)
		for (size_t j = 0; j < s->workers.nexisting; j++)
			if (strcmp(s->control_plane.existing[i].name,
				   s->workers.existing[j].name) == 0)
				return fail(p, ymap_get(ymap_get(root, "workers"), "existing"),
					    "workers.existing", "%s is also a control-plane node",
					    s->workers.existing[j].name);
	m = get_map(p, root, "ingress", &ret);
	if (ret == 0)
		ret = parse_ingress(p, m);
	if (ret < 0)
		return ret;
	/* A /24 of the pods range per node, and an address of the node range. */
	nodes = (uint64_t)s->control_plane.count + s->control_plane.nexisting + s->workers.count +
		s->workers.nexisting;
	cidr_parse(s->network.pod_cidr, &pods, CIDR_STRICT);
	cidr_parse(s->network.node_cidr, &node, CIDR_STRICT);
	fit = cidr_subnet_count(&pods, 24);
	if (nodes > fit)
		return fail(p, ymap_get(ymap_get(root, "network"), "podCidr"), "network.podCidr",
			    "%s holds %llu /24s, and the spec has %llu nodes (each takes a /24)",
			    s->network.pod_cidr, (unsigned long long)fit,
			    (unsigned long long)nodes);
	/* Usable: the range less GCP's four reserved addresses and the VIP. */
	if (nodes > (1ull << (32 - node.prefix)) - 5)
		return fail(p, ymap_get(ymap_get(root, "network"), "nodeCidr"), "network.nodeCidr",
			    "%s has room for %llu nodes besides the VIP, and the spec has %llu",
			    s->network.node_cidr, (1ull << (32 - node.prefix)) - 5,
			    (unsigned long long)nodes);
	return 0;
}

int spec_parse(const char *buf, size_t len, const char *path, const char *base_dir, unsigned flags,
	       struct cluster_spec **out, struct error *err)
{
	struct ystream ys = {0};
	struct parser p = {
	    .file = path ? path : "-", .base_dir = base_dir, .flags = flags, .err = err};
	struct yaml_limits lim = yaml_default_limits;
	struct error yerr = {0};
	int ret;

	*out = NULL;
	p.s = calloc(1, sizeof(*p.s));
	if (!p.s)
		return error_set(err, ENOMEM, "out of memory");
	p.s->path = strdup(p.file);
	if (!p.s->path) {
		ret = error_set(err, ENOMEM, "out of memory");
		goto cleanup;
	}
	/* A spec is small: a document that expands past 100,000 nodes is not one. */
	lim.max_expanded = 100000;
	lim.max_depth = 32;
	ret = yaml_load(&ys, buf, len, &lim, &yerr);
	if (ret < 0) {
		ret = error_set(err, -ret, "%s:%s", p.file, yerr.msg);
		goto cleanup;
	}
	if (ys.n_docs != 1 || !ys.docs[0].root) {
		ret = error_set(err, EINVAL,
				"%s: want one YAML document (the cluster spec), found %zu", p.file,
				ys.n_docs && ys.docs[0].root ? ys.n_docs : 0);
		goto cleanup;
	}
	ret = parse_root(&p, ys.docs[0].root);
cleanup:
	ystream_free(&ys);
	if (ret < 0) {
		spec_free(p.s);
		return ret;
	}
	*out = p.s;
	return 0;
}

int spec_load(const char *path, unsigned flags, struct cluster_spec **out, struct error *err)
{
	char *buf = NULL, *copy = NULL;
	size_t len;
	int ret;

	ret = file_read_all(path, SPEC_FILE_MAX, &buf, &len);
	if (ret < 0)
		return error_set(err, -ret, "%s: %s", path,
				 ret == -EFBIG ? "larger than 1 MiB: not a cluster spec"
					       : strerror(-ret));
	copy = strdup(path);
	if (!copy) {
		free(buf);
		return error_set(err, ENOMEM, "out of memory");
	}
	ret = spec_parse(buf, len, path, dirname(copy), flags, out, err);
	free(copy);
	free(buf);
	return ret;
}

static void pool_free(struct spec_pool *p)
{
	free(p->machine_type);
	free(p->disk_type);
	for (size_t i = 0; i < p->ntags; i++)
		free(p->tags[i]);
	free(p->tags);
	for (size_t i = 0; i < p->nlabels; i++) {
		free(p->labels[i].key);
		free(p->labels[i].value);
	}
	free(p->labels);
	free(p->user_data_path);
	if (p->user_data) {
		/* A Talos machine config holds the cluster's keys. */
		explicit_bzero(p->user_data, p->user_data_len);
		free(p->user_data);
	}
	free(p->service_account);
	for (size_t i = 0; i < p->nexisting; i++) {
		free(p->existing[i].name);
		free(p->existing[i].zone);
	}
	free(p->existing);
}

void spec_free(struct cluster_spec *s)
{
	if (!s)
		return;
	free(s->path);
	free(s->name);
	free(s->project);
	free(s->region);
	for (size_t i = 0; i < s->nzones; i++)
		free(s->zones[i]);
	free(s->zones);
	free(s->image.name);
	free(s->image.project);
	free(s->image.family);
	free(s->image.source_uri);
	pool_free(&s->control_plane);
	pool_free(&s->workers);
	free(s->where);
	free(s);
}

int spec_error(const struct cluster_spec *s, const char *path, struct error *err, int code,
	       const char *fmt, ...)
{
	char msg[ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < s->nwhere; i++)
		if (strcmp(s->where[i].path, path) == 0)
			return error_set(err, code, "%s:%u:%u: %s: %s", s->path, s->where[i].line,
					 s->where[i].col, path, msg);
	return error_set(err, code, "%s: %s: %s", s->path, path, msg);
}

const char *spec_zone_of(const struct cluster_spec *s, unsigned i)
{
	return s->zones[i % s->nzones];
}
