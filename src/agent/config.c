/* SPDX-License-Identifier: Apache-2.0 */
#include "agent/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/nl.h"
#include "common/parse.h"

#define DEFAULT_METRICS_ADDR "127.0.0.1:9365"
#define DEFAULT_RESYNC       "60s"
#define MAX_RESYNC_MS        (24ull * 3600 * 1000)

static const char usage[] =
    "Usage: vip-alias --vip ADDR[/32|/128] [options]\n"
    "Keeps a control-plane VIP local on this node and puts it back the moment it goes.\n"
    "\n"
    "  --vip ADDR             the VIP, IPv4 or IPv6 (env VIP_ALIAS_VIP)\n"
    "  --interface NAME       interface for the VIP, never lo (default dummy0;\n"
    "                         env VIP_ALIAS_INTERFACE)\n"
    "  --mode MODE            address: the VIP as an address on NAME, created as a dummy\n"
    "                         interface when missing (default); local-route: a route\n"
    "                         'local VIP dev NAME table local scope host proto 66'\n"
    "                         (env VIP_ALIAS_MODE)\n"
    "  --metrics-addr A:P     /healthz (VIP in place), /livez (agent alive) and /metrics\n"
    "                         listener, or 'off'\n"
    "                         (default " DEFAULT_METRICS_ADDR "; env VIP_ALIAS_METRICS_ADDR)\n"
    "  --resync DURATION      full resync period, e.g. 60s, 5m; 0 disables (default " DEFAULT_RESYNC
    "; env VIP_ALIAS_RESYNC)\n"
    "  --cleanup-on-exit      on SIGTERM/SIGINT remove what vip-alias owns (default: leave the\n"
    "                         VIP in place; env VIP_ALIAS_CLEANUP_ON_EXIT=true)\n"
    "  --once                 apply once and exit (init containers; env VIP_ALIAS_ONCE=true)\n"
    "  -v, --verbose          debug logs (env VIP_ALIAS_VERBOSE=true)\n"
    "  -h, --help, --version\n"
    "\n"
    "Exit status: 0 done, 1 the kernel refused a change, 2 bad input or a conflict (nothing\n"
    "was changed). SIGHUP forces a resync.\n";

const char *vip_mode_name(enum vip_mode mode)
{
	return mode == VIP_MODE_LOCAL_ROUTE ? "local-route" : "address";
}

bool vip_ifname_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= IFNAMSIZ || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == ':' || *p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/* Where a value came from, for error messages: "--vip 1.2.3" or "VIP_ALIAS_VIP=1.2.3". */
struct source {
	const char *flag;
	const char *env;
	bool from_env;
};

static int fail(struct error *err, const struct source *src, const char *value, const char *why)
{
	if (src->from_env)
		return error_set(err, EINVAL, "%s=%s: %s", src->env, value ? value : "", why);
	if (value)
		return error_set(err, EINVAL, "%s %s: %s", src->flag, value, why);
	return error_set(err, EINVAL, "%s: %s", src->flag, why);
}

static bool in_prefix(const struct ip_addr *ip, const char *prefix)
{
	struct cidr c;

	return cidr_parse(prefix, &c, 0) == 0 && cidr_contains_ip(&c, ip);
}

static int set_vip(struct vip_config *cfg, const char *v, const struct source *src,
		   struct error *err)
{
	static const char *const refused[] = {
	    "0.0.0.0/32", "::/128",         "127.0.0.0/8", "::1/128",           "224.0.0.0/4",
	    "ff00::/8",   "169.254.0.0/16", "fe80::/10",   "255.255.255.255/32"};
	struct cidr c;

	if (!*v)
		return fail(err, src, NULL, "missing address");
	if (cidr_parse(v, &c, CIDR_ALLOW_BARE_IP) < 0)
		return fail(err, src, v, "not an IPv4 or IPv6 address (e.g. 10.0.0.2/32)");
	if (c.prefix != cidr_max_prefix(&c))
		return fail(err, src, v, "must be a single address (/32 or /128)");
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (in_prefix(&c.addr, refused[i]))
			return fail(
			    err, src, v,
			    "not usable as a VIP (unspecified, loopback, multicast, link-local "
			    "or broadcast)");
	cfg->vip = c;
	return 0;
}

static int set_interface(struct vip_config *cfg, const char *v, const struct source *src,
			 struct error *err)
{
	if (!*v)
		return fail(err, src, NULL, "missing interface name");
	if (!vip_ifname_valid(v))
		return fail(err, src, v,
			    "not a valid interface name (1-15 bytes, no '/', ':' or whitespace)");
	/*
	 * The design note (§4): on lo the kubelet or the CCM may take the VIP for the node's
	 * address, and GCP's validation of the node then fails. Never there, in either mode.
	 */
	if (!strcmp(v, "lo"))
		return fail(err, src, v,
			    "the VIP must not go on lo: node address detection (kubelet, CCM) "
			    "would take it for the node's address; use dummy0");
	snprintf(cfg->ifname, sizeof(cfg->ifname), "%s", v);
	return 0;
}

static int set_mode(struct vip_config *cfg, const char *v, const struct source *src,
		    struct error *err)
{
	if (strcmp(v, "address") == 0)
		cfg->mode = VIP_MODE_ADDRESS;
	else if (strcmp(v, "local-route") == 0)
		cfg->mode = VIP_MODE_LOCAL_ROUTE;
	else
		return fail(err, src, v, "want 'address' or 'local-route'");
	return 0;
}

static int set_metrics_addr(struct vip_config *cfg, const char *v, const struct source *src,
			    struct error *err)
{
	if (strcmp(v, "off") == 0) {
		cfg->metrics_enabled = false;
		return 0;
	}
	if (parse_listen_addr(v, &cfg->metrics_addr, &cfg->metrics_addr_len) < 0)
		return fail(err, src, v,
			    "want HOST:PORT or [V6]:PORT with a numeric host, or 'off'");
	cfg->metrics_enabled = true;
	return 0;
}

static int set_resync(struct vip_config *cfg, const char *v, const struct source *src,
		      struct error *err)
{
	uint64_t ms;

	if (parse_duration_ms(v, &ms) < 0 || ms > MAX_RESYNC_MS)
		return fail(err, src, v,
			    "want a duration such as 60s or 5m (0 disables, at most 24h)");
	if (ms > 0 && ms < 100)
		return fail(err, src, v, "too short: at least 100ms (0 disables)");
	cfg->resync_ms = ms;
	return 0;
}

static int set_link_kind(struct vip_config *cfg, const char *v, const struct source *src,
			 struct error *err)
{
	size_t n = strlen(v);

	if (n == 0 || n >= sizeof(cfg->link_kind) ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n)
		return fail(err, src, v, "not a link kind");
	memcpy(cfg->link_kind, v, n + 1);
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

typedef int (*setter_fn)(struct vip_config *, const char *, const struct source *, struct error *);

struct option_def {
	const char *flag;
	const char *env;
	setter_fn set; /* NULL: a boolean switch */
	size_t bool_offset;
};

static const struct option_def options[] = {
    {"--vip", "VIP_ALIAS_VIP", set_vip, 0},
    {"--interface", "VIP_ALIAS_INTERFACE", set_interface, 0},
    {"--mode", "VIP_ALIAS_MODE", set_mode, 0},
    {"--metrics-addr", "VIP_ALIAS_METRICS_ADDR", set_metrics_addr, 0},
    {"--resync", "VIP_ALIAS_RESYNC", set_resync, 0},
    {"--cleanup-on-exit", "VIP_ALIAS_CLEANUP_ON_EXIT", NULL,
     offsetof(struct vip_config, cleanup_on_exit)},
    {"--once", "VIP_ALIAS_ONCE", NULL, offsetof(struct vip_config, once)},
    {"--verbose", "VIP_ALIAS_VERBOSE", NULL, offsetof(struct vip_config, verbose)},
    /* Hidden, for tests on kernels without the dummy type. */
    {"--link-kind", NULL, set_link_kind, 0},
};

static const struct option_def *find_option(const char *flag, size_t len)
{
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
		if (strlen(options[i].flag) == len && strncmp(options[i].flag, flag, len) == 0)
			return &options[i];
	return NULL;
}

/* Whether argv sets this option: then its variable is not even read. */
static bool given_as_flag(int argc, char *const argv[], const struct option_def *o)
{
	size_t n = strlen(o->flag);

	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], o->flag, n) == 0 && (argv[i][n] == '\0' || argv[i][n] == '='))
			return true;
		if (strcmp(o->flag, "--verbose") == 0 && strcmp(argv[i], "-v") == 0)
			return true;
	}
	return false;
}

static int apply_env(struct vip_config *cfg, int argc, char *const argv[],
		     const char *(*getenv_fn)(const char *), bool *vip_set, struct error *err)
{
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		const struct option_def *o = &options[i];
		struct source src = {o->flag, o->env, true};
		const char *v;
		int r;

		if (!o->env || !getenv_fn || given_as_flag(argc, argv, o) ||
		    !(v = getenv_fn(o->env)) || !*v)
			continue;
		if (o->set) {
			r = o->set(cfg, v, &src, err);
		} else {
			r = parse_bool(v, (bool *)((char *)cfg + o->bool_offset));
			if (r < 0)
				r = fail(err, &src, v, "want true or false");
		}
		if (r < 0)
			return r;
		if (o->set == set_vip)
			*vip_set = true;
	}
	return 0;
}

static void set_defaults(struct vip_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->ifname, sizeof(cfg->ifname), "dummy0");
	cfg->mode = VIP_MODE_ADDRESS;
	parse_listen_addr(DEFAULT_METRICS_ADDR, &cfg->metrics_addr, &cfg->metrics_addr_len);
	cfg->metrics_enabled = true;
	parse_duration_ms(DEFAULT_RESYNC, &cfg->resync_ms);
	snprintf(cfg->link_kind, sizeof(cfg->link_kind), "dummy");
}

int vip_config_parse(struct vip_config *cfg, int argc, char *const argv[],
		     const char *(*getenv_fn)(const char *name), struct error *err)
{
	bool vip_set = false;
	int r;

	set_defaults(cfg);
	r = apply_env(cfg, argc, argv, getenv_fn, &vip_set, err);
	if (r < 0)
		return r;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *eq, *value = NULL;
		const struct option_def *o;
		struct source src;
		size_t len;

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			fputs(usage, stdout);
			return VIP_CONFIG_EXIT;
		}
		if (strcmp(arg, "--version") == 0) {
			printf("vip-alias %s\n", TALOS_GCP_VERSION);
			return VIP_CONFIG_EXIT;
		}
		if (strcmp(arg, "-v") == 0)
			arg = "--verbose";
		if (arg[0] == '-' && arg[1] != '-')
			return error_set(err, EINVAL, "%s: unknown flag (see --help)", arg);
		if (strncmp(arg, "--", 2) != 0)
			return error_set(err, EINVAL, "%s: unexpected argument (see --help)", arg);
		eq = strchr(arg, '=');
		len = eq ? (size_t)(eq - arg) : strlen(arg);
		o = find_option(arg, len);
		if (!o)
			return error_set(err, EINVAL, "%.*s: unknown flag (see --help)", (int)len,
					 arg);
		src = (struct source){o->flag, o->env, false};
		if (!o->set) {
			if (eq)
				return error_set(err, EINVAL, "%s: takes no value", o->flag);
			*(bool *)((char *)cfg + o->bool_offset) = true;
			continue;
		}
		if (eq)
			value = eq + 1;
		else if (i + 1 < argc)
			value = argv[++i];
		else if (o->set == set_interface)
			return fail(err, &src, NULL, "missing interface name");
		else
			return fail(err, &src, NULL, "needs a value");
		r = o->set(cfg, value, &src, err);
		if (r < 0)
			return r;
		if (o->set == set_vip)
			vip_set = true;
	}
	if (!vip_set)
		return error_set(err, EINVAL, "--vip: required (e.g. --vip 10.0.0.2/32)");
	if (cfg->once && cfg->cleanup_on_exit)
		return error_set(
		    err, EINVAL,
		    "--cleanup-on-exit: cannot be combined with --once (nothing would stay)");
	if (strlen(cfg->ifname) + strlen(VIP_LABEL_SUFFIX) < sizeof(cfg->label))
		snprintf(cfg->label, sizeof(cfg->label), "%s%s", cfg->ifname, VIP_LABEL_SUFFIX);
	return VIP_CONFIG_RUN;
}
