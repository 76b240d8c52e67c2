/* SPDX-License-Identifier: Apache-2.0 */
/* common/http: retries, backoff, Retry-After, timeouts, resets, token refresh, TLS. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/http.h"
#include "mock_http.h"
#include "testcerts.h"

static struct mock_server *srv;
static struct testcerts certs;

static int setup(void **state)
{
	(void)state;
	mock_reset(srv);
	return 0;
}

/* Fast backoff so that retry tests take milliseconds. */
static struct http_client *client(const struct http_options *extra)
{
	struct http_options o = {.backoff_base_ms = 5, .backoff_max_ms = 20, .timeout_ms = 5000};
	struct http_client *c = NULL;
	struct error err = {0};

	if (extra)
		o = *extra;
	if (!o.backoff_base_ms)
		o.backoff_base_ms = 5;
	if (!o.backoff_max_ms)
		o.backoff_max_ms = 20;
	assert_int_equal(http_client_new(&o, &c, &err), 0);
	return c;
}

static char *url(const char *path)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s%s", mock_url(srv), path);
	return buf;
}

static int get(struct http_client *c, const char *path, struct http_response *resp,
	       struct error *err)
{
	struct http_request req = {.url = url(path)};

	return http_do(c, &req, resp, err);
}

static void test_get_ok(void **state)
{
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct http_stats st;
	struct error err = {0};

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{\"ok\":true}"});
	assert_int_equal(get(c, "/x?a=b", &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.body, "{\"ok\":true}");
	assert_int_equal(resp.body_len, 11);
	assert_string_equal(resp.content_type, "application/json");
	assert_int_equal(resp.attempts, 1);
	assert_string_equal(mock_req(srv, 0)->method, "GET");
	assert_string_equal(mock_req(srv, 0)->url, "/x?a=b");
	assert_string_equal(mock_req(srv, 0)->authorization, "");
	http_response_free(&resp);
	http_client_stats(c, &st);
	assert_int_equal(st.requests, 1);
	assert_int_equal(st.retries, 0);
	http_client_free(c);
}

static void test_retry_5xx_then_ok(void **state)
{
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct http_stats st;
	struct error err = {0};

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 503, .body = "{}"});
	mock_push(srv, &(struct mock_response){.status = 502, .body = "{}"});
	mock_push(srv, &(struct mock_response){.status = 429, .body = "{}"});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "done"});
	assert_int_equal(get(c, "/r", &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.body, "done");
	assert_int_equal(resp.attempts, 4);
	assert_int_equal(mock_count(srv), 4);
	http_client_stats(c, &st);
	assert_int_equal(st.requests, 4);
	assert_int_equal(st.retries, 3);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_retry_exhausted_returns_last(void **state)
{
	struct http_client *c = client(&(struct http_options){.max_attempts = 3});
	struct http_response resp;
	struct error err = {0};

	(void)state;
	for (int i = 0; i < 5; i++)
		mock_push(srv, &(struct mock_response){.status = 503, .body = "{\"n\":1}"});
	assert_int_equal(get(c, "/r", &resp, &err), 0);
	assert_int_equal(resp.status, 503);
	assert_int_equal(resp.attempts, 3);
	assert_int_equal(mock_count(srv), 3);
	assert_int_equal(http_status_errno(resp.status), -EAGAIN);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_no_retry_on_client_errors(void **state)
{
	static const int codes[] = {400, 401, 403, 404, 409, 412, 422};
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct error err = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		mock_reset(srv);
		mock_push(srv, &(struct mock_response){.status = codes[i], .body = "{}"});
		mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
		assert_int_equal(get(c, "/e", &resp, &err), 0);
		assert_int_equal(resp.status, codes[i]);
		assert_int_equal(resp.attempts, 1);
		http_response_free(&resp);
	}
	http_client_free(c);
}

static void test_500_retried_only_when_idempotent(void **state)
{
	struct http_client *c = client(NULL);
	struct http_request req = {.method = "POST", .url = url("/p"), .body = "{}", .body_len = 2};
	struct http_response resp;
	struct error err = {0};

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 500, .body = "{}"});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 500);
	assert_int_equal(resp.attempts, 1);
	assert_string_equal(mock_req(srv, 0)->body, "{}");
	assert_string_equal(mock_req(srv, 0)->content_type, "application/json");
	http_response_free(&resp);

	/* A POST with a requestId is idempotent: retried. */
	mock_reset(srv);
	req.idempotent = HTTP_IDEMPOTENT_YES;
	mock_push(srv, &(struct mock_response){.status = 500, .body = "{}"});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.attempts, 2);
	http_response_free(&resp);

	/* 503 and 429 are retried even for a plain POST: the server did not act. */
	mock_reset(srv);
	req.idempotent = HTTP_IDEMPOTENT_AUTO;
	mock_push(srv, &(struct mock_response){.status = 503, .body = "{}"});
	mock_push(srv, &(struct mock_response){.status = 201, .body = "{}"});
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 201);
	assert_int_equal(resp.attempts, 2);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_retry_after_seconds(void **state)
{
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct http_stats st;
	struct error err = {0};
	uint64_t t0, dt;

	(void)state;
	mock_push(srv, &(struct mock_response){
			   .status = 429, .body = "{}", .headers = {"Retry-After: 1"}});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	t0 = now_ms();
	assert_int_equal(get(c, "/ra", &resp, &err), 0);
	dt = now_ms() - t0;
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.attempts, 2);
	assert_true(dt >= 1000);
	assert_true(dt < 3000);
	http_client_stats(c, &st);
	assert_int_equal(st.wait_ms, 1000);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_retry_after_http_date(void **state)
{
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct error err = {0};
	char hdr[80];
	time_t t = time(NULL) + 2;
	struct tm tm;
	uint64_t t0, dt;

	(void)state;
	gmtime_r(&t, &tm);
	strftime(hdr, sizeof(hdr), "Retry-After: %a, %d %b %Y %H:%M:%S GMT", &tm);
	mock_push(srv, &(struct mock_response){.status = 503, .body = "{}", .headers = {hdr}});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	t0 = now_ms();
	assert_int_equal(get(c, "/ra", &resp, &err), 0);
	dt = now_ms() - t0;
	assert_int_equal(resp.status, 200);
	/* Whole seconds: 2 s from a time taken somewhere inside the current second. */
	assert_true(dt >= 900);
	assert_true(dt < 3500);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_retry_after_capped(void **state)
{
	struct http_client *c = client(&(struct http_options){.retry_after_max_ms = 150});
	struct http_response resp;
	struct http_stats st;
	struct error err = {0};
	uint64_t t0, dt;

	(void)state;
	mock_push(srv, &(struct mock_response){
			   .status = 429, .body = "{}", .headers = {"Retry-After: 3600"}});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	t0 = now_ms();
	assert_int_equal(get(c, "/ra", &resp, &err), 0);
	dt = now_ms() - t0;
	assert_int_equal(resp.status, 200);
	assert_true(dt >= 150);
	assert_true(dt < 2000);
	http_client_stats(c, &st);
	assert_int_equal(st.wait_ms, 150);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_retry_after_beyond_deadline(void **state)
{
	/* A wait that would pass the total deadline is not taken: the 503 is the answer. */
	struct http_client *c = client(&(struct http_options){.total_timeout_ms = 500});
	struct http_response resp;
	struct error err = {0};
	uint64_t t0 = now_ms();

	(void)state;
	mock_push(srv, &(struct mock_response){
			   .status = 503, .body = "{}", .headers = {"Retry-After: 10"}});
	assert_int_equal(get(c, "/ra", &resp, &err), 0);
	assert_int_equal(resp.status, 503);
	assert_int_equal(resp.attempts, 1);
	assert_true(now_ms() - t0 < 400);
	http_response_free(&resp);
	http_client_free(c);
}

static bool rate_limited(long status, const char *body, size_t len)
{
	(void)len;
	return status == 403 && strstr(body, "rateLimitExceeded");
}

static void test_retry_hook(void **state)
{
	static const char *limited =
	    "{\"error\":{\"code\":403,\"message\":\"Rate Limit Exceeded\",\"errors\":[{"
	    "\"reason\":\"rateLimitExceeded\"}]}}";
	struct http_client *c = client(&(struct http_options){.retry_response = rate_limited});
	struct http_client *plain = client(NULL);
	struct http_response resp;
	struct error err = {0};

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 403, .body = limited});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	assert_int_equal(get(c, "/rl", &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.attempts, 2);
	http_response_free(&resp);
	/* An ordinary 403 is final, and without the hook so is the rate-limit one. */
	mock_reset(srv);
	mock_push(srv, &(struct mock_response){.status = 403, .body = "{\"error\":{}}"});
	assert_int_equal(get(c, "/rl", &resp, &err), 0);
	assert_int_equal(resp.attempts, 1);
	http_response_free(&resp);
	mock_reset(srv);
	mock_push(srv, &(struct mock_response){.status = 403, .body = limited});
	assert_int_equal(get(plain, "/rl", &resp, &err), 0);
	assert_int_equal(resp.status, 403);
	assert_int_equal(resp.attempts, 1);
	http_response_free(&resp);
	http_client_free(c);
	http_client_free(plain);
}

static void test_hanging_endpoint_times_out(void **state)
{
	struct http_client *c =
	    client(&(struct http_options){.timeout_ms = 200, .max_attempts = 2});
	struct http_request post = {.method = "POST", .url = url("/hang")};
	struct http_response resp;
	struct http_stats st;
	struct error err = {0};
	uint64_t t0, dt;

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}", .delay_ms = 3000});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}", .delay_ms = 3000});
	t0 = now_ms();
	assert_int_equal(get(c, "/hang", &resp, &err), -ETIMEDOUT);
	dt = now_ms() - t0;
	assert_true(dt >= 400);
	assert_true(dt < 1500);
	assert_int_equal(resp.attempts, 2);
	assert_non_null(strstr(err.msg, "GET http://127.0.0.1:"));
	assert_non_null(strstr(err.msg, "/hang"));
	http_client_stats(c, &st);
	assert_int_equal(st.requests, 2);
	http_response_free(&resp);

	/* A plain POST that timed out may have been acted on: not re-sent. */
	mock_reset(srv);
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}", .delay_ms = 3000});
	assert_int_equal(http_do(c, &post, &resp, &err), -ETIMEDOUT);
	assert_int_equal(resp.attempts, 1);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_total_deadline(void **state)
{
	struct http_client *c =
	    client(&(struct http_options){.timeout_ms = 5000, .total_timeout_ms = 300});
	struct http_response resp;
	struct error err = {0};
	uint64_t t0 = now_ms();

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}", .delay_ms = 3000});
	assert_int_equal(get(c, "/hang", &resp, &err), -ETIMEDOUT);
	assert_true(now_ms() - t0 < 1500);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_connection_reset(void **state)
{
	struct http_client *c = client(NULL);
	struct http_request post = {.method = "POST",
				    .url = url("/reset"),
				    .body = "x",
				    .body_len = 1,
				    .content_type = "text/plain"};
	struct http_response resp;
	struct error err = {0};

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 0});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "again"});
	assert_int_equal(get(c, "/reset", &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.attempts, 2);
	http_response_free(&resp);

	/*
	 * A plain POST that got no answer may have been acted on: not re-sent. (A fresh client:
	 * on a reused keep-alive connection libcurl itself re-sends once, as browsers do.)
	 */
	http_client_free(c);
	c = client(NULL);
	mock_reset(srv);
	mock_push(srv, &(struct mock_response){.status = 0});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "again"});
	assert_int_equal(http_do(c, &post, &resp, &err), -ECONNRESET);
	assert_int_equal(resp.attempts, 1);
	assert_string_equal(mock_req(srv, 0)->content_type, "text/plain");
	http_response_free(&resp);
	http_client_free(c);
}

static void test_connection_refused(void **state)
{
	struct http_client *c = client(&(struct http_options){.max_attempts = 3});
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	struct http_request req = {.method = "POST"};
	struct http_response resp;
	struct http_stats st;
	struct error err = {0};
	char u[64];
	int fd;

	(void)state;
	/* A port that was free a moment ago: bound then closed, nothing listens. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	snprintf(u, sizeof(u), "http://127.0.0.1:%u/x", ntohs(sa.sin_port));
	req.url = u;
	/* Nothing was sent: even a POST is retried. */
	assert_int_equal(http_do(c, &req, &resp, &err), -ECONNREFUSED);
	assert_int_equal(resp.attempts, 3);
	http_client_stats(c, &st);
	assert_int_equal(st.requests, 3);
	http_response_free(&resp);
	http_client_free(c);
}

struct tok {
	int calls, refreshes;
	char buf[32];
};

static int token_fn(void *arg, bool refresh, const char **token, struct error *err)
{
	struct tok *t = arg;

	(void)err;
	t->calls++;
	if (refresh)
		t->refreshes++;
	snprintf(t->buf, sizeof(t->buf), "tok-%d", t->refreshes);
	*token = t->buf;
	return 0;
}

static int failing_token(void *arg, bool refresh, const char **token, struct error *err)
{
	(void)arg;
	(void)refresh;
	(void)token;
	return error_set(err, EACCES, "token endpoint said no");
}

static void test_token_refresh_on_401(void **state)
{
	struct tok t = {0};
	struct http_client *c = client(&(struct http_options){.token = token_fn, .token_arg = &t});
	struct http_client *f = client(&(struct http_options){.token = failing_token});
	struct http_request noauth = {.url = url("/na"), .no_auth = true};
	struct http_response resp;
	struct error err = {0};

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 401, .body = "{}"});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	assert_int_equal(get(c, "/a", &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.attempts, 2);
	assert_string_equal(mock_req(srv, 0)->authorization, "Bearer tok-0");
	assert_string_equal(mock_req(srv, 1)->authorization, "Bearer tok-1");
	assert_int_equal(t.refreshes, 1);
	http_response_free(&resp);

	/* Refreshed once only: a second 401 is the answer. */
	mock_reset(srv);
	mock_push(srv, &(struct mock_response){.status = 401, .body = "{}"});
	mock_push(srv, &(struct mock_response){.status = 401, .body = "{}"});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	assert_int_equal(get(c, "/a", &resp, &err), 0);
	assert_int_equal(resp.status, 401);
	assert_int_equal(resp.attempts, 2);
	http_response_free(&resp);

	/* no_auth requests do not ask the provider. */
	mock_reset(srv);
	t.calls = 0;
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	assert_int_equal(http_do(c, &noauth, &resp, &err), 0);
	assert_int_equal(t.calls, 0);
	assert_string_equal(mock_req(srv, 0)->authorization, "");
	http_response_free(&resp);

	/* A provider failure is the request's failure, with its message. */
	mock_reset(srv);
	assert_int_equal(get(f, "/a", &resp, &err), -EACCES);
	assert_string_equal(err.msg, "token endpoint said no");
	assert_int_equal(mock_count(srv), 0);
	http_response_free(&resp);
	http_client_free(c);
	http_client_free(f);
}

static int evil_token(void *arg, bool refresh, const char **token, struct error *err)
{
	(void)arg;
	(void)refresh;
	(void)err;
	*token = "abc\r\nX-Injected: 1";
	return 0;
}

static void test_token_with_line_break_refused(void **state)
{
	struct http_client *c = client(&(struct http_options){.token = evil_token});
	struct http_response resp;
	struct error err = {0};

	(void)state;
	assert_int_equal(get(c, "/t", &resp, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "the bearer token contains a line break"));
	assert_int_equal(mock_count(srv), 0);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_methods(void **state)
{
	static const char *const methods[] = {"HEAD", "DELETE", "PUT", "PATCH", "GET", "POST"};
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct error err = {0};

	(void)state;
	/* One client, every method in turn: no option of one request leaks into the next. */
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		struct http_request req = {.method = methods[i], .url = url("/m")};

		mock_push(srv, &(struct mock_response){.status = 200, .body = "{\"x\":1}"});
		assert_int_equal(http_do(c, &req, &resp, &err), 0);
		assert_int_equal(resp.status, 200);
		assert_string_equal(mock_req(srv, (unsigned)i)->method, methods[i]);
		assert_int_equal(resp.body_len, strcmp(methods[i], "HEAD") ? 7 : 0);
		http_response_free(&resp);
	}
	http_client_free(c);
}

static void test_connection_reuse(void **state)
{
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct http_stats st;
	struct error err = {0};

	(void)state;
	for (int i = 0; i < 5; i++) {
		mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
		assert_int_equal(get(c, "/k", &resp, &err), 0);
		http_response_free(&resp);
	}
	http_client_stats(c, &st);
	assert_int_equal(st.requests, 5);
	assert_int_equal(st.connections, 1);
	http_client_free(c);
}

static void test_body_limit(void **state)
{
	struct http_client *c = client(&(struct http_options){.max_body = 8});
	struct http_response resp;
	struct error err = {0};

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 200, .body = "0123456789abcdef"});
	assert_int_equal(get(c, "/big", &resp, &err), -EFBIG);
	http_response_free(&resp);
	http_client_free(c);
}

struct sink {
	char buf[256];
	size_t len;
	int stop_after;
};

static int sink_fn(void *arg, const char *data, size_t len)
{
	struct sink *s = arg;

	if (s->len + len < sizeof(s->buf)) {
		memcpy(s->buf + s->len, data, len);
		s->len += len;
	}
	return s->stop_after ? -ECANCELED : 0;
}

static void test_streaming(void **state)
{
	struct http_client *c = client(NULL);
	struct sink s = {0};
	struct http_request req = {.url = url("/s"), .on_data = sink_fn, .on_data_arg = &s};
	struct http_response resp;
	struct error err = {0};

	(void)state;
	mock_push(srv, &(struct mock_response){.status = 200, .body = "line1\nline2\n"});
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.body_len, 0);
	assert_int_equal(s.len, 12);
	assert_memory_equal(s.buf, "line1\nline2\n", 12);
	http_response_free(&resp);
	/* Error bodies are buffered, not streamed. */
	memset(&s, 0, sizeof(s));
	mock_push(srv, &(struct mock_response){.status = 404, .body = "{\"kind\":\"Status\"}"});
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 404);
	assert_string_equal(resp.body, "{\"kind\":\"Status\"}");
	assert_int_equal(s.len, 0);
	http_response_free(&resp);
	/* The sink can stop the transfer. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	mock_push(srv, &(struct mock_response){.status = 200, .body = "x"});
	assert_int_equal(http_do(c, &req, &resp, &err), -ECANCELED);
	assert_int_equal(resp.attempts, 1);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_bad_url(void **state)
{
	struct http_client *c = client(NULL);
	struct http_request req = {.url = "file:///etc/passwd"};
	struct http_response resp;
	struct error err = {0};

	(void)state;
	assert_int_equal(http_do(c, &req, &resp, &err), -EINVAL);
	http_response_free(&resp);
	req.url = NULL;
	assert_int_equal(http_do(c, &req, &resp, &err), -EINVAL);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_tls(void **state)
{
	struct mock_tls tls = {
	    .cert_pem = certs.server_cert, .key_pem = certs.server_key, .trust_pem = certs.ca_cert};
	struct mock_server *s = mock_start(&tls);
	struct http_options o = {.max_attempts = 1};
	struct http_request req = {0};
	struct http_response resp;
	struct http_client *c;
	struct error err = {0};
	char u[128];

	(void)state;
	snprintf(u, sizeof(u), "%s/tls", mock_url(s));
	req.url = u;
	/* System CAs do not know the test CA: verification fails. */
	c = client(&o);
	assert_int_equal(http_do(c, &req, &resp, &err), -EPROTO);
	http_response_free(&resp);
	http_client_free(c);
	/* An unrelated CA fails too. */
	o.tls.ca_pem = certs.other_ca_cert;
	o.tls.ca_pem_len = strlen(certs.other_ca_cert);
	c = client(&o);
	assert_int_equal(http_do(c, &req, &resp, &err), -EPROTO);
	http_response_free(&resp);
	http_client_free(c);
	/* The right CA in memory: verified. */
	o.tls.ca_pem = certs.ca_cert;
	o.tls.ca_pem_len = strlen(certs.ca_cert);
	c = client(&o);
	mock_push(s, &(struct mock_response){.status = 200, .body = "{}"});
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_false(mock_req(s, mock_count(s) - 1)->client_cert);
	http_response_free(&resp);
	http_client_free(c);
	/* With a client certificate and key from memory. */
	o.tls.cert_pem = certs.client_cert;
	o.tls.cert_pem_len = strlen(certs.client_cert);
	o.tls.key_pem = certs.client_key;
	o.tls.key_pem_len = strlen(certs.client_key);
	c = client(&o);
	mock_push(s, &(struct mock_response){.status = 200, .body = "{}"});
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_true(mock_req(s, mock_count(s) - 1)->client_cert);
	http_response_free(&resp);
	http_client_free(c);
	/* insecure_skip_verify: only when asked. */
	memset(&o.tls, 0, sizeof(o.tls));
	o.tls.insecure_skip_verify = true;
	c = client(&o);
	mock_push(s, &(struct mock_response){.status = 200, .body = "{}"});
	assert_int_equal(http_do(c, &req, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	http_response_free(&resp);
	http_client_free(c);
	mock_stop(s);
}

static void test_retry_after_parse(void **state)
{
	uint64_t ms;
	time_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */

	(void)state;
	assert_int_equal(http_parse_retry_after("120", now, &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(http_parse_retry_after(" 0 ", now, &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(http_parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now, &ms), 0);
	assert_int_equal(ms, 10000);
	assert_int_equal(http_parse_retry_after("Sunday, 06-Nov-94 08:50:37 GMT", now, &ms), 0);
	assert_int_equal(ms, 60000);
	assert_int_equal(http_parse_retry_after("Sun Nov  6 08:49:38 1994", now, &ms), 0);
	assert_int_equal(ms, 1000);
	/* In the past: retry now. */
	assert_int_equal(http_parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now, &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(http_parse_retry_after("99999999999999999999", now, &ms), 0);
	assert_true(ms >= 100000000000ULL);
	assert_int_equal(http_parse_retry_after("", now, &ms), -EINVAL);
	assert_int_equal(http_parse_retry_after("-1", now, &ms), -EINVAL);
	assert_int_equal(http_parse_retry_after("1.5", now, &ms), -EINVAL);
	assert_int_equal(http_parse_retry_after("soon", now, &ms), -EINVAL);
	assert_int_equal(http_parse_retry_after("Sun, 06 Nov 1994 08:49:47 PST", now, &ms),
			 -EINVAL);
}

static void test_url_check(void **state)
{
	struct http_url_info info;
	struct error err = {0};

	(void)state;
	assert_int_equal(
	    http_url_check("https://compute.googleapis.com/compute/v1/", "--x", 0, &info, &err), 0);
	assert_true(info.https);
	assert_false(info.loopback);
	assert_int_equal(
	    http_url_check("http://localhost:x@127.0.0.2:9/", "--compute-endpoint", 0, &info, &err),
	    -EINVAL);
	/* Named, with the password hidden. */
	assert_string_equal(
	    err.msg, "--compute-endpoint \"http://***:***@127.0.0.2:9/\": user information "
		     "(user:password@) in the URL is refused: it would be sent as credentials, "
		     "and the host is what follows the '@'");
	assert_int_equal(http_url_check("http://tok@h/", "x", 0, NULL, &err), -EINVAL);
	assert_null(strstr(err.msg, "tok"));
	assert_int_equal(http_url_check("example.com:443", "x", 0, NULL, &err), -EINVAL);
	assert_int_equal(http_url_check("http://:80/", "x", 0, NULL, &err), -EINVAL);
	assert_int_equal(http_url_check("https://a b/", "x", 0, NULL, &err), -EINVAL);
	assert_int_equal(http_url_check("", "x", 0, NULL, &err), -EINVAL);
	assert_int_equal(http_url_check("socks5://127.0.0.1:1080", "x", 0, NULL, &err), -EINVAL);
	/* Proxies: socks and credentials are fine. */
	assert_int_equal(
	    http_url_check("socks5h://u:p@127.0.0.1:1080", "x", HTTP_URL_PROXY, NULL, &err), 0);
	assert_int_equal(http_url_check("ftp://p/", "x", HTTP_URL_PROXY, NULL, &err), -EINVAL);
}

static void test_userinfo_never_sent(void **state)
{
	/* http_do() itself refuses a URL with user information: nothing reaches the server. */
	struct http_client *c = client(NULL);
	struct http_response resp;
	struct error err = {0};
	char url[128];

	(void)state;
	snprintf(url, sizeof(url), "http://localhost:x@%s/x", mock_url(srv) + strlen("http://"));
	assert_int_equal(http_do(c, &(struct http_request){.url = url}, &resp, &err), -EINVAL);
	assert_int_equal(resp.attempts, 0);
	assert_int_equal(mock_count(srv), 0);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_default_deadline_follows_timeout(void **state)
{
	/* --timeout 300s: the default 2-minute deadline of retries no longer cuts it short. */
	struct http_client *c = client(&(struct http_options){.timeout_ms = 300000});
	uint64_t attempt, total;

	(void)state;
	http_client_timeouts(c, &attempt, &total);
	assert_int_equal(attempt, 300000);
	assert_int_equal(total, 1200000);
	http_client_free(c);
	c = client(&(struct http_options){.timeout_ms = 0});
	http_client_timeouts(c, &attempt, &total);
	assert_int_equal(attempt, 30000);
	assert_int_equal(total, 120000);
	http_client_free(c);
	c = client(&(struct http_options){.timeout_ms = 300000, .total_timeout_ms = 1000});
	http_client_timeouts(c, &attempt, &total);
	assert_int_equal(total, 1000); /* an explicit deadline is kept */
	http_client_free(c);
}

static void test_client_headers_and_proxy(void **state)
{
	/*
	 * Headers of the client go with every request; a proxy is used for every host (the mock
	 * server acts as an HTTP proxy here: libcurl sends it the absolute URL).
	 */
	static const char *const headers[] = {"Impersonate-User: jane", NULL};
	struct http_options o = {.headers = headers, .proxy = mock_url(srv)};
	struct http_client *c = client(&o);
	struct http_response resp;
	struct error err = {0};
	const struct mock_request *r;

	(void)state;
	setenv("no_proxy", "*", 1);
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	assert_int_equal(
	    http_do(c, &(struct http_request){.url = "http://api.invalid/x"}, &resp, &err), 0);
	unsetenv("no_proxy");
	assert_int_equal(resp.status, 200);
	assert_int_equal(mock_count(srv), 1);
	r = mock_req(srv, 0);
	assert_non_null(strstr(r->headers, "Impersonate-User: jane\n"));
	assert_non_null(strstr(r->headers, "Host: api.invalid\n"));
	http_response_free(&resp);
	http_client_free(c);
}

static void test_helpers(void **state)
{
	char *e;

	(void)state;
	e = http_escape("a b&c=d/é~._-");
	assert_string_equal(e, "a%20b%26c%3Dd%2F%C3%A9~._-");
	free(e);
	assert_true(http_url_is_loopback("http://127.0.0.1:8080/x"));
	assert_true(http_url_is_loopback("http://127.1.2.3/"));
	assert_true(http_url_is_loopback("http://127.255.255.255/"));
	/* Numeric forms libcurl connects to as 127.x: what it reads is what is judged. */
	assert_true(http_url_is_loopback("http://127.1/"));
	assert_true(http_url_is_loopback("http://0x7f.0.0.1/"));
	assert_true(http_url_is_loopback("http://2130706433/"));
	assert_true(http_url_is_loopback("http://localhost"));
	assert_true(http_url_is_loopback("http://[::1]:80/"));
	assert_true(http_url_is_loopback("http://[0:0:0:0:0:0:0:1]/"));
	/* The host is what follows the '@': user information is refused, loopback or not. */
	assert_false(http_url_is_loopback("http://localhost:x@evil.example/"));
	assert_false(http_url_is_loopback("http://localhost@evil.example/"));
	assert_false(http_url_is_loopback("http://user@127.0.0.1/"));
	assert_false(http_url_is_loopback("http://localhost:x@127.0.0.2:8080/"));
	assert_false(http_url_is_loopback("http://127.0.0.1.evil.com/"));
	assert_false(http_url_is_loopback("http://localhost.evil.example/"));
	assert_false(http_url_is_loopback("http://localhost./"));
	assert_false(http_url_is_loopback("http://[::ffff:127.0.0.1]/"));
	assert_false(http_url_is_loopback("http://128.0.0.1/"));
	assert_false(http_url_is_loopback("http://10.0.0.1/"));
	assert_false(http_url_is_loopback("127.0.0.1"));
	assert_false(http_url_is_loopback("ftp://127.0.0.1/"));
	assert_false(http_url_is_loopback(NULL));
	assert_int_equal(http_status_errno(200), 0);
	assert_int_equal(http_status_errno(404), -ENOENT);
	assert_int_equal(http_status_errno(409), -EEXIST);
	assert_int_equal(http_status_errno(410), -EKEYEXPIRED);
	assert_int_equal(http_status_errno(412), -ESTALE);
	assert_int_equal(http_status_errno(401), -EACCES);
	assert_int_equal(http_status_errno(403), -EACCES);
	assert_int_equal(http_status_errno(429), -EAGAIN);
	assert_int_equal(http_status_errno(504), -ETIMEDOUT);
	assert_int_equal(http_status_errno(500), -EIO);
	assert_int_equal(http_status_errno(418), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_get_ok, setup),
	    cmocka_unit_test_setup(test_retry_5xx_then_ok, setup),
	    cmocka_unit_test_setup(test_retry_exhausted_returns_last, setup),
	    cmocka_unit_test_setup(test_no_retry_on_client_errors, setup),
	    cmocka_unit_test_setup(test_500_retried_only_when_idempotent, setup),
	    cmocka_unit_test_setup(test_retry_after_seconds, setup),
	    cmocka_unit_test_setup(test_retry_after_http_date, setup),
	    cmocka_unit_test_setup(test_retry_after_capped, setup),
	    cmocka_unit_test_setup(test_retry_after_beyond_deadline, setup),
	    cmocka_unit_test_setup(test_retry_hook, setup),
	    cmocka_unit_test_setup(test_hanging_endpoint_times_out, setup),
	    cmocka_unit_test_setup(test_total_deadline, setup),
	    cmocka_unit_test_setup(test_connection_reset, setup),
	    cmocka_unit_test_setup(test_connection_refused, setup),
	    cmocka_unit_test_setup(test_token_refresh_on_401, setup),
	    cmocka_unit_test_setup(test_token_with_line_break_refused, setup),
	    cmocka_unit_test_setup(test_methods, setup),
	    cmocka_unit_test_setup(test_connection_reuse, setup),
	    cmocka_unit_test_setup(test_body_limit, setup),
	    cmocka_unit_test_setup(test_streaming, setup),
	    cmocka_unit_test_setup(test_bad_url, setup),
	    cmocka_unit_test(test_tls),
	    cmocka_unit_test(test_retry_after_parse),
	    cmocka_unit_test(test_url_check),
	    cmocka_unit_test(test_userinfo_never_sent),
	    cmocka_unit_test(test_default_deadline_follows_timeout),
	    cmocka_unit_test(test_client_headers_and_proxy),
	    cmocka_unit_test(test_helpers),
	};
	int ret;

	testcerts_make(&certs);
	srv = mock_start(NULL);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	mock_stop(srv);
	testcerts_free(&certs);
	return ret;
}
