/* SPDX-License-Identifier: Apache-2.0 */
/* vip-alias /healthz and /metrics: request parsing and responses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "agent/http.h"

static int parse(const char *s, struct http_request *req)
{
	return http_parse_request(s, strlen(s), req);
}

static void test_parse_valid(void **state)
{
	struct http_request req;

	(void)state;
	assert_int_equal(parse("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:9365\r\n"
			       "User-Agent: kube-probe/1.30\r\nAccept: */*\r\n\r\n",
			       &req),
			 0);
	assert_int_equal(req.method, HTTP_GET);
	assert_string_equal(req.path, "/healthz");
	assert_int_equal(parse("HEAD /metrics?x=1 HTTP/1.0\n\n", &req), 0);
	assert_int_equal(req.method, HTTP_HEAD);
	assert_string_equal(req.path, "/metrics");
	assert_int_equal(parse("DELETE / HTTP/1.1\r\nX:\t y \r\n\r\nbody", &req), 0);
	assert_int_equal(req.method, HTTP_OTHER);
}

static void test_parse_incomplete_and_invalid(void **state)
{
	static const char *const bad[] = {
	    "\r\n\r\n",
	    "get / HTTP/1.1\r\n\r\n",
	    "GET  / HTTP/1.1\r\n\r\n",
	    "GET healthz HTTP/1.1\r\n\r\n",
	    "GET / HTTP/2.0\r\n\r\n",
	    "GET / HTTP/1.1 \r\n\r\n",
	    "GET /\x01 HTTP/1.1\r\n\r\n",
	    "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
	    "GET / HTTP/1.1\r\n folded: x\r\n\r\n",
	    "GET / HTTP/1.1\r\n: empty-name\r\n\r\n",
	    "GET / HTTP/1.1\r\nA: \x7f\r\n\r\n",
	    "GETTINGVERYLONGMETHOD / HTTP/1.1\r\n\r\n",
	};
	struct http_request req;
	char big[HTTP_MAX_REQUEST + 16], path[300];

	(void)state;
	assert_int_equal(parse("", &req), -EAGAIN);
	assert_int_equal(parse("GET /healthz HTTP/1.1\r\n", &req), -EAGAIN);
	assert_int_equal(parse("GET /healthz HTTP/1.1\r\nHost: x\r\n\r", &req), -EAGAIN);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], &req) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(http_parse_request(big, HTTP_MAX_REQUEST, &req), -E2BIG);
	snprintf(path, sizeof(path), "GET /%0200d HTTP/1.1\r\n\r\n", 0);
	assert_int_equal(parse(path, &req), -ENAMETOOLONG);
}

static struct vip_config cfg(void)
{
	struct vip_config c;
	struct error err;
	char *argv[] = {"vip-alias", "--vip", "10.0.0.2/32", "--interface", "du\"m", NULL};

	assert_int_equal(vip_config_parse(&c, 5, argv, NULL, &err), VIP_CONFIG_RUN);
	return c;
}

static const char *respond(const char *req, const struct vip_metrics *m, char *out, size_t size)
{
	struct vip_config c = cfg();
	int n = http_respond(req, strlen(req), m, &c, out, size);

	assert_true(n > 0);
	out[n] = '\0';
	return out;
}

static void test_responses(void **state)
{
	struct vip_metrics m = {0};
	static char out[HTTP_MAX_RESPONSE + 1];
	struct vip_config c = cfg();

	(void)state;
	m.present = true;
	assert_string_equal(respond("GET /healthz HTTP/1.1\r\n\r\n", &m, out, sizeof(out)),
			    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
			    "Content-Length: 3\r\nCache-Control: no-store\r\nConnection: close\r\n"
			    "\r\nok\n");
	m.present = false;
	respond("GET /healthz HTTP/1.1\r\n\r\n", &m, out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 503 Service Unavailable\r\n"));
	assert_non_null(strstr(out, "\r\n\r\nvip 10.0.0.2/32 not in place\n"));
	respond("HEAD /healthz HTTP/1.1\r\n\r\n", &m, out, sizeof(out));
	assert_non_null(strstr(out, "Content-Length: 29\r\n"));
	assert_string_equal(strstr(out, "\r\n\r\n"), "\r\n\r\n");
	/* Liveness is not the VIP: alive while the VIP is not in place. */
	assert_string_equal(respond("GET /livez HTTP/1.1\r\n\r\n", &m, out, sizeof(out)),
			    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
			    "Content-Length: 6\r\nCache-Control: no-store\r\nConnection: close\r\n"
			    "\r\nalive\n");
	respond("GET /other HTTP/1.1\r\n\r\n", &m, out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 404 Not Found\r\n"));
	respond("POST /healthz HTTP/1.1\r\n\r\n", &m, out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(out, "Allow: GET, HEAD\r\n"));
	respond("BAD\r\n\r\n", &m, out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.1 400 Bad Request\r\n"));
	/* Incomplete: no response yet. */
	assert_int_equal(http_respond("GET /", 5, &m, &c, out, sizeof(out)), 0);
	/* Too small a buffer is an error, never a truncated response. */
	assert_int_equal(http_respond("GET /metrics HTTP/1.1\r\n\r\n", 26, &m, &c, out, 100),
			 -ENOSPC);
}

static void test_metrics(void **state)
{
	struct vip_metrics m = {0};
	struct vip_config c = cfg();
	char out[HTTP_MAX_RESPONSE];
	int n;

	(void)state;
	m.present = true;
	m.ifa_proto_supported = true;
	m.restores[VIP_CAUSE_ADDRESS_REMOVED] = 3;
	m.restores[VIP_CAUSE_LINK_REMOVED] = 1;
	m.resyncs[VIP_RESYNC_ENOBUFS] = 2;
	m.netlink_errors = 4;
	m.last_reconcile = 1700000000.25;
	n = vip_metrics_format(&m, &c, out, sizeof(out));
	assert_true(n > 0 && (size_t)n == strlen(out));
	assert_non_null(strstr(
	    out, "vip_alias_info{vip=\"10.0.0.2/32\",interface=\"du\\\"m\","
		 "mode=\"address\",ifa_proto=\"true\",version=\"" TALOS_GCP_VERSION "\"} 1\n"));
	assert_non_null(strstr(out, "\nvip_alias_vip_present 1\n"));
	assert_non_null(strstr(out, "\nvip_alias_restores_total{cause=\"address_removed\"} 3\n"));
	assert_non_null(strstr(out, "\nvip_alias_restores_total{cause=\"link_down\"} 0\n"));
	assert_non_null(strstr(out, "\nvip_alias_restores_total{cause=\"link_removed\"} 1\n"));
	assert_non_null(strstr(out, "\nvip_alias_restores_total{cause=\"route_removed\"} 0\n"));
	assert_non_null(strstr(out, "\nvip_alias_restores_total{cause=\"resync\"} 0\n"));
	assert_null(strstr(out, "cause=\"none\""));
	assert_non_null(strstr(out, "\nvip_alias_resyncs_total{reason=\"enobufs\"} 2\n"));
	assert_non_null(
	    strstr(out, "\nvip_alias_last_reconcile_timestamp_seconds 1700000000.250\n"));
	assert_non_null(strstr(out, "# TYPE vip_alias_netlink_errors_total counter\n"
				    "vip_alias_netlink_errors_total 4\n"));
	assert_int_equal(vip_metrics_format(&m, &c, out, 64), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_valid),
	    cmocka_unit_test(test_parse_incomplete_and_invalid),
	    cmocka_unit_test(test_responses),
	    cmocka_unit_test(test_metrics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
