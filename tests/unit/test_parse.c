/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/parse.h"

static void test_duration(void **state)
{
	uint64_t ms;

	(void)state;
	assert_int_equal(parse_duration_ms("60s", &ms), 0);
	assert_int_equal(ms, 60000);
	assert_int_equal(parse_duration_ms("1m30s", &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(parse_duration_ms("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(parse_duration_ms("2h", &ms), 0);
	assert_int_equal(ms, 7200000);
	assert_int_equal(parse_duration_ms("0", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(parse_duration_ms("", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("60", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("s", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("5d", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("-5s", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("99999999999999999999h", &ms), -ERANGE);
}

static void test_u64(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse_u64("500", 500, &v), 0);
	assert_int_equal(v, 500);
	assert_int_equal(parse_u64("501", 500, &v), -ERANGE);
	assert_int_equal(parse_u64("", 500, &v), -EINVAL);
	assert_int_equal(parse_u64("1e3", 5000, &v), -EINVAL);
	assert_int_equal(parse_u64("18446744073709551616", UINT64_MAX, &v), -ERANGE);
}

static void test_listen(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;

	(void)state;
	assert_int_equal(parse_listen_addr("127.0.0.1:8080", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
	assert_int_equal(parse_listen_addr("[::1]:0", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(parse_listen_addr("localhost:80", &ss, &len), -EINVAL);
	assert_int_equal(parse_listen_addr("127.0.0.1", &ss, &len), -EINVAL);
	assert_int_equal(parse_listen_addr("127.0.0.1:65536", &ss, &len), -EINVAL);
	assert_int_equal(parse_listen_addr("::1:80", &ss, &len), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_duration),
	    cmocka_unit_test(test_u64),
	    cmocka_unit_test(test_listen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
