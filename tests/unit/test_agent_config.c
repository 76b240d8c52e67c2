/* SPDX-License-Identifier: Apache-2.0 */
/* vip-alias flags and environment variables. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "agent/config.h"

static const char *const *fake_env;

static const char *getenv_fake(const char *name)
{
	size_t n = strlen(name);

	for (const char *const *e = fake_env; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

#define ARGV(...) ((char *const[]){"vip-alias", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((const char *[]){"vip-alias", __VA_ARGS__}) / sizeof(char *)))

static int parse(struct vip_config *cfg, struct error *err, int argc, char *const argv[],
		 const char *const *env)
{
	fake_env = env;
	error_clear(err);
	return vip_config_parse(cfg, argc, argv, getenv_fake, err);
}

static void expect_error(const char *const *env, int argc, char *const argv[], const char *want)
{
	struct vip_config cfg;
	struct error err;

	assert_int_equal(parse(&cfg, &err, argc, argv, env), -EINVAL);
	assert_string_equal(err.msg, want);
}

#define EXPECT_ERROR(want, ...) expect_error(NULL, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), want)

static void test_defaults(void **state)
{
	struct vip_config cfg;
	struct error err;
	char buf[CIDR_STRLEN];
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&cfg.metrics_addr;

	(void)state;
	assert_int_equal(
	    parse(&cfg, &err, ARGC("--vip", "10.0.0.2/32"), ARGV("--vip", "10.0.0.2/32"), NULL),
	    VIP_CONFIG_RUN);
	assert_string_equal(cidr_format(&cfg.vip, buf, sizeof(buf)), "10.0.0.2/32");
	assert_string_equal(cfg.ifname, "dummy0");
	assert_int_equal(cfg.mode, VIP_MODE_ADDRESS);
	assert_true(cfg.metrics_enabled);
	assert_int_equal(ntohs(sin->sin_port), 9365);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(cfg.resync_ms, 60000);
	assert_false(cfg.cleanup_on_exit);
	assert_false(cfg.once);
	assert_false(cfg.verbose);
	assert_string_equal(cfg.link_kind, "dummy");
	assert_string_equal(cfg.label, "dummy0:vip");
}

static void test_all_flags(void **state)
{
	struct vip_config cfg;
	struct error err;
	char buf[CIDR_STRLEN];

	(void)state;
	assert_int_equal(parse(&cfg, &err,
			       ARGC("--vip=2001:db8::2", "--interface", "eth0", "--mode",
				    "local-route", "--metrics-addr", "[::1]:0", "--resync", "1m30s",
				    "--cleanup-on-exit", "-v", "--link-kind", "veth"),
			       ARGV("--vip=2001:db8::2", "--interface", "eth0", "--mode",
				    "local-route", "--metrics-addr", "[::1]:0", "--resync", "1m30s",
				    "--cleanup-on-exit", "-v", "--link-kind", "veth"),
			       NULL),
			 VIP_CONFIG_RUN);
	/* A bare address is a host address. */
	assert_string_equal(cidr_format(&cfg.vip, buf, sizeof(buf)), "2001:db8::2/128");
	assert_string_equal(cfg.ifname, "eth0");
	assert_int_equal(cfg.mode, VIP_MODE_LOCAL_ROUTE);
	assert_int_equal(cfg.metrics_addr.ss_family, AF_INET6);
	assert_int_equal(cfg.resync_ms, 90000);
	assert_true(cfg.cleanup_on_exit);
	assert_true(cfg.verbose);
	assert_string_equal(cfg.link_kind, "veth");
	assert_string_equal(cfg.label, "eth0:vip");
}

static void test_environment_and_precedence(void **state)
{
	static const char *const env[] = {
	    "VIP_ALIAS_VIP=10.0.0.5",
	    "VIP_ALIAS_INTERFACE=vip0",
	    "VIP_ALIAS_MODE=local-route",
	    "VIP_ALIAS_RESYNC=0",
	    "VIP_ALIAS_METRICS_ADDR=off",
	    "VIP_ALIAS_ONCE=true",
	    "VIP_ALIAS_VERBOSE=1",
	    "VIP_ALIAS_CLEANUP_ON_EXIT=false",
	    NULL,
	};
	struct vip_config cfg;
	struct error err;
	char buf[CIDR_STRLEN];

	(void)state;
	fake_env = env;
	assert_int_equal(
	    vip_config_parse(&cfg, 1, (char *const[]){"vip-alias", NULL}, getenv_fake, &err),
	    VIP_CONFIG_RUN);
	assert_string_equal(cidr_format(&cfg.vip, buf, sizeof(buf)), "10.0.0.5/32");
	assert_string_equal(cfg.ifname, "vip0");
	assert_int_equal(cfg.mode, VIP_MODE_LOCAL_ROUTE);
	assert_int_equal(cfg.resync_ms, 0);
	assert_false(cfg.metrics_enabled);
	assert_true(cfg.once);
	assert_true(cfg.verbose);
	/* Flags win over the environment. */
	assert_int_equal(parse(&cfg, &err, ARGC("--vip", "10.0.0.9/32", "--mode", "address"),
			       ARGV("--vip", "10.0.0.9/32", "--mode", "address"), env),
			 VIP_CONFIG_RUN);
	assert_string_equal(cidr_format(&cfg.vip, buf, sizeof(buf)), "10.0.0.9/32");
	assert_int_equal(cfg.mode, VIP_MODE_ADDRESS);
	/* A flag spares its variable from being read at all. */
	assert_int_equal(parse(&cfg, &err, ARGC("--vip=10.0.0.3"), ARGV("--vip=10.0.0.3"),
			       (const char *const[]){"VIP_ALIAS_VIP=garbage", NULL}),
			 VIP_CONFIG_RUN);
	assert_int_equal(parse(&cfg, &err, ARGC("--vip", "10.0.0.3", "-v"),
			       ARGV("--vip", "10.0.0.3", "-v"),
			       (const char *const[]){"VIP_ALIAS_VERBOSE=maybe", NULL}),
			 VIP_CONFIG_RUN);
	assert_true(cfg.verbose);
	/* Empty variables are unset. */
	expect_error((const char *const[]){"VIP_ALIAS_VIP=", NULL}, 1,
		     (char *const[]){"vip-alias", NULL},
		     "--vip: required (e.g. --vip 10.0.0.2/32)");
}

static void test_bad_vip(void **state)
{
	(void)state;
	EXPECT_ERROR("--vip 10.0.0.300/32: not an IPv4 or IPv6 address (e.g. 10.0.0.2/32)", "--vip",
		     "10.0.0.300/32");
	EXPECT_ERROR("--vip abc: not an IPv4 or IPv6 address (e.g. 10.0.0.2/32)", "--vip", "abc");
	EXPECT_ERROR("--vip 10.0.0.2/24: must be a single address (/32 or /128)", "--vip",
		     "10.0.0.2/24");
	EXPECT_ERROR("--vip fd00::/64: must be a single address (/32 or /128)", "--vip",
		     "fd00::/64");
	EXPECT_ERROR("--vip: missing address", "--vip", "");
	EXPECT_ERROR("--vip: needs a value", "--vip");
	for (size_t i = 0; i < 6; i++) {
		static const char *const bad[] = {"0.0.0.0", "127.0.0.1",       "224.0.0.1",
						  "::1",     "169.254.169.254", "fe80::1"};
		struct vip_config cfg;
		struct error err;

		assert_int_equal(parse(&cfg, &err, 3,
				       (char *const[]){"vip-alias", "--vip", (char *)bad[i], NULL},
				       NULL),
				 -EINVAL);
		assert_non_null(strstr(err.msg, "not usable as a VIP"));
	}
	expect_error((const char *const[]){"VIP_ALIAS_VIP=10.0.0.2/99", NULL}, 1,
		     (char *const[]){"vip-alias", NULL},
		     "VIP_ALIAS_VIP=10.0.0.2/99: not an IPv4 or IPv6 address (e.g. 10.0.0.2/32)");
}

static void test_bad_interface(void **state)
{
	(void)state;
	EXPECT_ERROR("--interface: missing interface name", "--vip", "10.0.0.2", "--interface", "");
	EXPECT_ERROR("--interface: missing interface name", "--vip", "10.0.0.2", "--interface");
	EXPECT_ERROR("--interface a/b: not a valid interface name (1-15 bytes, no '/', ':' or "
		     "whitespace)",
		     "--vip", "10.0.0.2", "--interface", "a/b");
	EXPECT_ERROR(
	    "--interface 0123456789abcdef: not a valid interface name (1-15 bytes, no '/', "
	    "':' or whitespace)",
	    "--vip", "10.0.0.2", "--interface", "0123456789abcdef");
	EXPECT_ERROR("--interface lo: the VIP must not go on lo: node address detection (kubelet, "
		     "CCM) would take it for the node's address; use dummy0",
		     "--vip", "10.0.0.2", "--interface", "lo");
	EXPECT_ERROR("--interface lo: the VIP must not go on lo: node address detection (kubelet, "
		     "CCM) would take it for the node's address; use dummy0",
		     "--vip", "10.0.0.2", "--mode", "local-route", "--interface", "lo");
	EXPECT_ERROR("--interface ..: not a valid interface name (1-15 bytes, no '/', ':' or "
		     "whitespace)",
		     "--vip", "10.0.0.2", "--interface", "..");
	assert_true(vip_ifname_valid("0123456789abcde"));
	assert_false(vip_ifname_valid("eth0:1"));
	assert_false(vip_ifname_valid("a b"));
}

static void test_other_errors(void **state)
{
	struct vip_config cfg;
	struct error err;

	(void)state;
	EXPECT_ERROR("--mode bgp: want 'address' or 'local-route'", "--vip", "10.0.0.2", "--mode",
		     "bgp");
	EXPECT_ERROR("--resync 5: want a duration such as 60s or 5m (0 disables, at most 24h)",
		     "--vip", "10.0.0.2", "--resync", "5");
	EXPECT_ERROR("--resync 10ms: too short: at least 100ms (0 disables)", "--vip", "10.0.0.2",
		     "--resync", "10ms");
	EXPECT_ERROR("--resync 25h: want a duration such as 60s or 5m (0 disables, at most 24h)",
		     "--vip", "10.0.0.2", "--resync", "25h");
	EXPECT_ERROR("--metrics-addr localhost:9365: want HOST:PORT or [V6]:PORT with a numeric "
		     "host, or 'off'",
		     "--vip", "10.0.0.2", "--metrics-addr", "localhost:9365");
	EXPECT_ERROR("--nope: unknown flag (see --help)", "--vip", "10.0.0.2", "--nope");
	EXPECT_ERROR("-x: unknown flag (see --help)", "--vip", "10.0.0.2", "-x");
	EXPECT_ERROR("extra: unexpected argument (see --help)", "--vip", "10.0.0.2", "extra");
	EXPECT_ERROR("--once: takes no value", "--vip", "10.0.0.2", "--once=yes");
	EXPECT_ERROR("--cleanup-on-exit: cannot be combined with --once (nothing would stay)",
		     "--vip", "10.0.0.2", "--once", "--cleanup-on-exit");
	EXPECT_ERROR("--link-kind Dummy!: not a link kind", "--vip", "10.0.0.2", "--link-kind",
		     "Dummy!");
	expect_error((const char *const[]){"VIP_ALIAS_VIP=10.0.0.2", "VIP_ALIAS_ONCE=maybe", NULL},
		     1, (char *const[]){"vip-alias", NULL},
		     "VIP_ALIAS_ONCE=maybe: want true or false");
	/* A 15-byte name leaves no room for the ":vip" label: none is used. */
	assert_int_equal(parse(&cfg, &err,
			       ARGC("--vip", "10.0.0.2", "--interface", "vip-interface01"),
			       ARGV("--vip", "10.0.0.2", "--interface", "vip-interface01"), NULL),
			 VIP_CONFIG_RUN);
	assert_string_equal(cfg.label, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_all_flags),
	    cmocka_unit_test(test_environment_and_precedence),
	    cmocka_unit_test(test_bad_vip),
	    cmocka_unit_test(test_bad_interface),
	    cmocka_unit_test(test_other_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
