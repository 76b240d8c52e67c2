/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cidr.h"

static void roundtrip(const char *in, const char *want)
{
	struct cidr c;
	char buf[CIDR_STRLEN];

	assert_int_equal(cidr_parse(in, &c, CIDR_STRICT), 0);
	assert_string_equal(cidr_format(&c, buf, sizeof(buf)), want);
}

static void test_parse_valid(void **state)
{
	(void)state;
	roundtrip("10.0.0.0/8", "10.0.0.0/8");
	roundtrip("172.20.14.0/24", "172.20.14.0/24");
	roundtrip("0.0.0.0/0", "0.0.0.0/0");
	roundtrip("10.0.0.2/32", "10.0.0.2/32");
	roundtrip("fd00::/64", "fd00::/64");
	roundtrip("FD00:0:0:0::/64", "fd00::/64");
	roundtrip("::/0", "::/0");
}

static void test_parse_invalid(void **state)
{
	static const char *const bad[] = {
	    "",
	    "/",
	    "10.0.0.0",
	    "10.0.0.0/",
	    "10.0.0.0/33",
	    "10.0.0.0/-1",
	    "10.0.0.0/+8",
	    "10.0.0.0/08",
	    "10.0.0.0/ 8",
	    " 10.0.0.0/8",
	    "10.0.0.0/8 ",
	    "010.0.0.0/8",
	    "10.0.0/8",
	    "10.0.0.0.0/8",
	    "256.0.0.0/8",
	    "fe80::1%eth0/64",
	    "fd00::/129",
	    "10.0.0.0/1000",
	    "10.0.0.0//8",
	    "abc",
	    "1.2.3.4/8x",
	};
	struct cidr c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = cidr_parse(bad[i], &c, CIDR_STRICT);
		if (r != -EINVAL)
			fail_msg("'%s' gave %d, want -EINVAL", bad[i], r);
	}
	assert_int_equal(cidr_parse(NULL, &c, 0), -EINVAL);
}

static void test_host_bits(void **state)
{
	struct cidr c;
	char buf[CIDR_STRLEN];

	(void)state;
	assert_int_equal(cidr_parse("10.0.0.1/24", &c, CIDR_STRICT), -EDOM);
	assert_int_equal(cidr_parse("10.0.0.1/24", &c, 0), 0);
	assert_string_equal(cidr_format(&c, buf, sizeof(buf)), "10.0.0.1/24");
	assert_int_equal(cidr_parse("10.0.0.1/24", &c, CIDR_MASK_HOST_BITS), 0);
	assert_string_equal(cidr_format(&c, buf, sizeof(buf)), "10.0.0.0/24");
	assert_int_equal(cidr_parse("10.0.0.2", &c, CIDR_ALLOW_BARE_IP), 0);
	assert_string_equal(cidr_format(&c, buf, sizeof(buf)), "10.0.0.2/32");
	assert_int_equal(cidr_parse("fd00::2", &c, CIDR_ALLOW_BARE_IP), 0);
	assert_int_equal(c.prefix, 128);
}

static struct cidr P(const char *s) {
	struct cidr c;
	assert_int_equal(cidr_parse(s, &c, 0), 0);
	return c;
}

static void
test_relations(void **state)
{
	struct cidr pods = P("172.20.0.0/16"), a = P("172.20.14.0/24"), b = P("172.20.7.0/24");
	struct cidr other = P("10.0.0.0/8"), v6 = P("::/0"), a2 = P("172.20.14.128/25");
	struct ip_addr ip;

	(void)state;
	assert_true(cidr_contains(&pods, &a));
	assert_false(cidr_contains(&a, &pods));
	assert_true(cidr_overlaps(&a, &pods));
	assert_true(cidr_overlaps(&pods, &a));
	assert_false(cidr_overlaps(&a, &b));
	assert_false(cidr_overlaps(&pods, &other));
	assert_false(cidr_overlaps(&v6, &pods));
	assert_true(cidr_overlaps(&a, &a2));
	assert_true(cidr_contains(&a, &a2));
	assert_true(cidr_equal(&a, &a));
	assert_false(cidr_equal(&a, &b));
	assert_true(cidr_compare(&b, &a) < 0);
	assert_true(cidr_compare(&pods, &a) < 0);
	assert_int_equal(cidr_compare(&a, &a), 0);
	assert_int_equal(ip_parse("172.20.14.9", &ip), 0);
	assert_true(cidr_contains_ip(&a, &ip));
	assert_false(cidr_contains_ip(&b, &ip));
}

static void test_subnet(void **state)
{
	struct cidr pods = P("172.20.0.0/16"), out, v6 = P("fd00::/48");
	char buf[CIDR_STRLEN];

	(void)state;
	assert_int_equal(cidr_subnet_count(&pods, 24), 256);
	assert_int_equal(cidr_subnet(&pods, 24, 0, &out), 0);
	assert_string_equal(cidr_format(&out, buf, sizeof(buf)), "172.20.0.0/24");
	assert_int_equal(cidr_subnet(&pods, 24, 14, &out), 0);
	assert_string_equal(cidr_format(&out, buf, sizeof(buf)), "172.20.14.0/24");
	assert_int_equal(cidr_subnet(&pods, 24, 255, &out), 0);
	assert_string_equal(cidr_format(&out, buf, sizeof(buf)), "172.20.255.0/24");
	assert_int_equal(cidr_subnet(&pods, 24, 256, &out), -ERANGE);
	assert_int_equal(cidr_subnet(&pods, 8, 0, &out), -EINVAL);
	assert_int_equal(cidr_subnet(&pods, 26, 5, &out), 0);
	assert_string_equal(cidr_format(&out, buf, sizeof(buf)), "172.20.1.64/26");
	assert_int_equal(cidr_subnet(&v6, 64, 0x1234, &out), 0);
	assert_string_equal(cidr_format(&out, buf, sizeof(buf)), "fd00:0:0:1234::/64");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_valid), cmocka_unit_test(test_parse_invalid),
	    cmocka_unit_test(test_host_bits),   cmocka_unit_test(test_relations),
	    cmocka_unit_test(test_subnet),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
