/* SPDX-License-Identifier: Apache-2.0 */
#include "common/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/str.h"

#define DEFAULT_TIMEOUT_MS         30000
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_TOTAL_TIMEOUT_MS   120000
#define DEFAULT_MAX_ATTEMPTS       5
#define DEFAULT_BACKOFF_BASE_MS    250
#define DEFAULT_BACKOFF_MAX_MS     8000
#define DEFAULT_RETRY_AFTER_MAX_MS 30000
#define DEFAULT_MAX_BODY           ((size_t)256 << 20)

struct http_client {
	CURL *curl;
	struct http_options opt;
	/* Owned copies of the TLS material named in opt.tls. */
	char *ca_file, *cert_file, *key_file;
	void *ca_pem, *cert_pem, *key_pem;
	char *user_agent;
	char **headers; /* opt.headers, copied */
	char *proxy;    /* opt.proxy, copied (may hold credentials) */
	uint64_t rng;
	struct http_stats stats;
	char errbuf[CURL_ERROR_SIZE];
};

/* State of one attempt, filled by the libcurl callbacks. */
struct attempt {
	struct http_client *c;
	const struct http_request *req;
	char *body;
	size_t len, cap;
	bool too_big;
	bool streamed; /* at least one chunk went to on_data */
	int sink_ret;  /* on_data's -errno when it stopped the transfer */
	char retry_after[64];
	char content_type[128];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_ret;

static void curl_init_once(void)
{
	curl_init_ret = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* xorshift64*: jitter only needs to be spread out, not unpredictable. */
static uint64_t rng_next(struct http_client *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 0x2545F4914F6CDD1DULL;
}

static void *memdup(const void *p, size_t len)
{
	void *q = malloc(len ? len : 1);

	if (q && len)
		memcpy(q, p, len);
	return q;
}

int http_client_new(const struct http_options *opt, struct http_client **out, struct error *err)
{
	static const struct http_options none;
	const struct http_tls *tls;
	struct http_client *c;
	CURLcode cc = CURLE_OK;
	int ret = -ENOMEM;

	if (!opt)
		opt = &none;
	tls = &opt->tls;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_ret != CURLE_OK)
		return error_set(err, EIO, "libcurl: %s", curl_easy_strerror(curl_init_ret));
	c = calloc(1, sizeof(*c));
	if (!c)
		return error_set(err, ENOMEM, "out of memory");
	c->opt = *opt;
	memset(&c->opt.tls, 0, sizeof(c->opt.tls));
	c->opt.tls.insecure_skip_verify = tls->insecure_skip_verify;
	if (!c->opt.timeout_ms)
		c->opt.timeout_ms = DEFAULT_TIMEOUT_MS;
	if (!c->opt.connect_timeout_ms)
		c->opt.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
	/*
	 * The default total deadline leaves room for 4 full-length attempts (the 2 minutes of
	 * 30 s attempts): a longer --timeout is never cut short by it (--timeout 300s is 300 s).
	 */
	if (!c->opt.total_timeout_ms) {
		c->opt.total_timeout_ms = DEFAULT_TOTAL_TIMEOUT_MS;
		if (c->opt.timeout_ms > DEFAULT_TOTAL_TIMEOUT_MS / 4)
			c->opt.total_timeout_ms = c->opt.timeout_ms * 4;
	}
	if (!c->opt.max_attempts)
		c->opt.max_attempts = DEFAULT_MAX_ATTEMPTS;
	if (!c->opt.backoff_base_ms)
		c->opt.backoff_base_ms = DEFAULT_BACKOFF_BASE_MS;
	if (!c->opt.backoff_max_ms)
		c->opt.backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
	if (!c->opt.retry_after_max_ms)
		c->opt.retry_after_max_ms = DEFAULT_RETRY_AFTER_MAX_MS;
	if (!c->opt.max_body)
		c->opt.max_body = DEFAULT_MAX_BODY;
	if (opt->user_agent)
		c->user_agent = strdup(opt->user_agent);
	else if (asprintf(&c->user_agent, "talos-gcp/%s", TALOS_GCP_VERSION) < 0)
		c->user_agent = NULL;
	if (!c->user_agent)
		goto fail;
	if (getrandom(&c->rng, sizeof(c->rng), GRND_NONBLOCK) != sizeof(c->rng))
		c->rng = now_ms() ^ ((uint64_t)getpid() << 32);
	c->rng |= 1;

	c->curl = curl_easy_init();
	if (!c->curl)
		goto fail;
	if ((tls->ca_file && !(c->ca_file = strdup(tls->ca_file))) ||
	    (tls->cert_file && !(c->cert_file = strdup(tls->cert_file))) ||
	    (tls->key_file && !(c->key_file = strdup(tls->key_file))))
		goto fail;
	if ((tls->ca_pem && !(c->ca_pem = memdup(tls->ca_pem, tls->ca_pem_len))) ||
	    (tls->cert_pem && !(c->cert_pem = memdup(tls->cert_pem, tls->cert_pem_len))) ||
	    (tls->key_pem && !(c->key_pem = memdup(tls->key_pem, tls->key_pem_len))))
		goto fail;
	c->opt.tls.ca_pem_len = tls->ca_pem_len;
	c->opt.tls.cert_pem_len = tls->cert_pem_len;
	c->opt.tls.key_pem_len = tls->key_pem_len;

	/* Options that hold for every request of this client. */
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(c->curl, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L); /* never carry a token elsewhere */
	curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)c->opt.connect_timeout_ms);
	cc = curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if (cc != CURLE_OK)
		goto curl_fail;
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, tls->insecure_skip_verify ? 0L : 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, tls->insecure_skip_verify ? 0L : 2L);
	if (c->ca_pem || c->ca_file) {
		/* Trust exactly the CAs given, as client-go does: not the system store too. */
		curl_easy_setopt(c->curl, CURLOPT_CAPATH, NULL);
		if (c->ca_pem) {
			struct curl_blob blob = {c->ca_pem, tls->ca_pem_len, CURL_BLOB_NOCOPY};

			cc = curl_easy_setopt(c->curl, CURLOPT_CAINFO_BLOB, &blob);
		} else {
			cc = curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->ca_file);
		}
		if (cc != CURLE_OK)
			goto curl_fail;
	}
	if (c->cert_pem) {
		struct curl_blob blob = {c->cert_pem, tls->cert_pem_len, CURL_BLOB_NOCOPY};

		curl_easy_setopt(c->curl, CURLOPT_SSLCERTTYPE, "PEM");
		cc = curl_easy_setopt(c->curl, CURLOPT_SSLCERT_BLOB, &blob);
	} else if (c->cert_file) {
		curl_easy_setopt(c->curl, CURLOPT_SSLCERTTYPE, "PEM");
		cc = curl_easy_setopt(c->curl, CURLOPT_SSLCERT, c->cert_file);
	}
	if (cc != CURLE_OK)
		goto curl_fail;
	if (c->key_pem) {
		struct curl_blob blob = {c->key_pem, tls->key_pem_len, CURL_BLOB_NOCOPY};

		curl_easy_setopt(c->curl, CURLOPT_SSLKEYTYPE, "PEM");
		cc = curl_easy_setopt(c->curl, CURLOPT_SSLKEY_BLOB, &blob);
	} else if (c->key_file) {
		curl_easy_setopt(c->curl, CURLOPT_SSLKEYTYPE, "PEM");
		cc = curl_easy_setopt(c->curl, CURLOPT_SSLKEY, c->key_file);
	}
	if (cc != CURLE_OK)
		goto curl_fail;
	if (opt->headers) {
		size_t n = 0;

		while (opt->headers[n])
			n++;
		c->headers = calloc(n + 1, sizeof(*c->headers));
		if (!c->headers)
			goto fail;
		for (size_t i = 0; i < n; i++) {
			if (opt->headers[i][strcspn(opt->headers[i], "\r\n")]) {
				http_client_free(c);
				return error_set(err, EINVAL, "a header contains a line break");
			}
			if (!(c->headers[i] = strdup(opt->headers[i])))
				goto fail;
		}
	}
	c->opt.headers = NULL;
	c->opt.proxy = NULL;
	if (opt->proxy) {
		if (!(c->proxy = strdup(opt->proxy)))
			goto fail;
		/* "" for no_proxy: the proxy is used for every host, whatever no_proxy says. */
		if ((cc = curl_easy_setopt(c->curl, CURLOPT_PROXY, c->proxy)) != CURLE_OK ||
		    (cc = curl_easy_setopt(c->curl, CURLOPT_NOPROXY, "")) != CURLE_OK) {
			ret = error_set(err, EINVAL, "libcurl refused the proxy: %s",
					curl_easy_strerror(cc));
			http_client_free(c);
			return ret;
		}
	}
	*out = c;
	return 0;

curl_fail:
	ret = error_set(err, EINVAL, "libcurl refused a TLS option: %s", curl_easy_strerror(cc));
	http_client_free(c);
	return ret;
fail:
	http_client_free(c);
	return error_set(err, -ret, "out of memory");
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->ca_pem);
	free(c->cert_pem);
	free_secret(c->key_pem, c->opt.tls.key_pem_len);
	free(c->user_agent);
	for (size_t i = 0; c->headers && c->headers[i]; i++)
		free(c->headers[i]);
	free(c->headers);
	free_secret_str(c->proxy);
	free(c);
}

void http_client_timeouts(const struct http_client *c, uint64_t *attempt_ms, uint64_t *total_ms)
{
	*attempt_ms = c->opt.timeout_ms;
	*total_ms = c->opt.total_timeout_ms;
}

void http_client_stats(const struct http_client *c, struct http_stats *out)
{
	*out = c->stats;
}

void http_response_free(struct http_response *resp)
{
	if (!resp)
		return;
	free_secret(resp->body, resp->body_len);
	resp->body = NULL;
	resp->body_len = 0;
}

int http_status_errno(long status)
{
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 400:
	case 422:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 405:
		return -EOPNOTSUPP;
	case 408:
	case 504:
		return -ETIMEDOUT;
	case 409:
		return -EEXIST;
	case 410:
		return -EKEYEXPIRED;
	case 412:
		return -ESTALE;
	case 413:
		return -EFBIG;
	case 429:
	case 503:
		return -EAGAIN;
	}
	if (status >= 400 && status < 500)
		return -EINVAL;
	return -EIO;
}

int http_status_error(long status, const char *body, size_t len, const char *what, int code,
		      struct error *err)
{
	char snippet[121];

	if (!code) {
		code = -http_status_errno(status);
		if (!code)
			code =
			    EBADMSG; /* a 2xx handed here is a response the caller could not use */
	}
	if (!what)
		what = "request";
	if (body && len)
		return error_set(err, code, "HTTP %ld: %s (%s)", status,
				 str_printable(snippet, sizeof(snippet), body, len), what);
	return error_set(err, code, "HTTP %ld with an empty body (%s)", status, what);
}

int http_call(struct http_client *c, const struct http_request *req, const json_t *json,
	      http_error_fn on_error, struct http_response *resp, struct error *err)
{
	struct http_request r = *req;
	char *text = NULL, what[600];
	int ret;

	memset(resp, 0, sizeof(*resp));
	if (json && !r.body) {
		text = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!text)
			return error_set(err, ENOMEM, "out of memory");
		r.body = text;
		r.body_len = strlen(text);
	}
	ret = http_do(c, &r, resp, err);
	free_secret_str(text); /* a body may carry a secret (a token request) */
	if (ret < 0)
		return ret;
	if (resp->status >= 200 && resp->status < 300)
		return 0;
	snprintf(what, sizeof(what), "%s %s", r.method ? r.method : "GET", r.url);
	if (on_error)
		return on_error(resp->status, resp->body, resp->body_len, what, err);
	return http_status_error(resp->status, resp->body, resp->body_len, what, 0, err);
}

int http_call_json(struct http_client *c, const struct http_request *req, const json_t *json,
		   http_error_fn on_error, json_t **out, struct error *err)
{
	struct http_response resp;
	json_t *root = NULL;
	char what[600];
	int ret;

	ret = http_call(c, req, json, on_error, &resp, err);
	if (ret < 0 || !out)
		goto cleanup;
	if (resp.body_len == 0) {
		root = json_null();
	} else {
		snprintf(what, sizeof(what), "%s %s", req->method ? req->method : "GET", req->url);
		ret = json_parse(resp.body, resp.body_len, what, &root, err);
		if (ret < 0)
			goto cleanup;
	}
	*out = root;
cleanup:
	http_response_free(&resp);
	return ret;
}

char *http_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

int http_url_add_query(char **url, const char *key, const char *value)
{
	char *esc = http_escape(value), *n = NULL;

	if (!esc)
		return -ENOMEM;
	if (asprintf(&n, "%s%c%s=%s", *url, strchr(*url, '?') ? '&' : '?', key, esc) < 0)
		n = NULL;
	free(esc);
	if (!n)
		return -ENOMEM;
	free(*url);
	*url = n;
	return 0;
}

int http_parse_retry_after(const char *value, time_t now, uint64_t *out_ms)
{
	/* IMF-fixdate, then the two obsolete forms recipients must accept (RFC 9110 §5.6.7). */
	static const char *const formats[] = {
	    "%a, %d %b %Y %H:%M:%S GMT",
	    "%A, %d-%b-%y %H:%M:%S GMT",
	    "%a %b %e %H:%M:%S %Y",
	};
	const char *p = value;
	uint64_t secs = 0;

	if (!value)
		return -EINVAL;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p >= '0' && *p <= '9') {
		for (; *p >= '0' && *p <= '9'; p++) {
			secs = secs * 10 + (uint64_t)(*p - '0');
			if (secs > 100000000) /* years: saturate, the caller caps it anyway */
				secs = 100000000;
		}
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p)
			return -EINVAL;
		*out_ms = secs * 1000;
		return 0;
	}
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		struct tm tm;
		const char *end;
		time_t t;

		memset(&tm, 0, sizeof(tm));
		end = strptime(p, formats[i], &tm);
		if (!end)
			continue;
		while (*end == ' ' || *end == '\t')
			end++;
		if (*end)
			continue;
		t = timegm(&tm);
		if (t == (time_t)-1)
			return -EINVAL;
		*out_ms = t > now ? (uint64_t)(t - now) * 1000 : 0;
		return 0;
	}
	return -EINVAL;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct attempt *a = arg;
	size_t len = size * nmemb, n;
	const char *v;

	/* A new status line (100 Continue, then the real one): forget the previous headers. */
	if (len >= 5 && !strncmp(data, "HTTP/", 5)) {
		a->retry_after[0] = '\0';
		a->content_type[0] = '\0';
		return len;
	}
	if (len > 12 && !strncasecmp(data, "Retry-After:", 12)) {
		v = data + 12;
		n = len - 12;
		while (n && (v[n - 1] == '\r' || v[n - 1] == '\n'))
			n--;
		if (n >= sizeof(a->retry_after))
			n = sizeof(a->retry_after) - 1;
		memcpy(a->retry_after, v, n);
		a->retry_after[n] = '\0';
	} else if (len > 13 && !strncasecmp(data, "Content-Type:", 13)) {
		v = data + 13;
		n = len - 13;
		while (n && (*v == ' ' || *v == '\t')) {
			v++;
			n--;
		}
		while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
			n--;
		if (n >= sizeof(a->content_type))
			n = sizeof(a->content_type) - 1;
		memcpy(a->content_type, v, n);
		a->content_type[n] = '\0';
	}
	return len;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct attempt *a = arg;
	size_t len = size * nmemb;

	a->c->stats.bytes_received += len;
	if (a->req->on_data) {
		long status = 0;

		curl_easy_getinfo(a->c->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300) {
			int r = a->req->on_data(a->req->on_data_arg, data, len);

			a->streamed = true;
			if (r < 0) {
				a->sink_ret = r;
				return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
			}
			return len;
		}
	}
	if (a->len + len > a->c->opt.max_body) {
		a->too_big = true;
		return 0;
	}
	if (a->len + len + 1 > a->cap) {
		size_t ncap = a->cap ? a->cap : 16384;
		char *nbody;

		while (ncap < a->len + len + 1)
			ncap *= 2;
		nbody = malloc(ncap);
		if (!nbody)
			return 0;
		/* Copy by hand rather than realloc so that no stale copy of a secret stays behind.
		 */
		if (a->body) {
			memcpy(nbody, a->body, a->len);
			free_secret(a->body, a->cap);
		}
		a->body = nbody;
		a->cap = ncap;
	}
	memcpy(a->body + a->len, data, len);
	a->len += len;
	a->body[a->len] = '\0';
	return len;
}

static bool method_is_idempotent(const char *m)
{
	return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PUT") ||
	       !strcmp(m, "DELETE") || !strcmp(m, "OPTIONS");
}

static int curl_errno(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return -ECONNRESET;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_USE_SSL_FAILED:
		return -EPROTO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static bool transport_retryable(int ret, bool idempotent)
{
	if (ret == -ECONNREFUSED)
		return true; /* nothing reached the server */
	return idempotent && (ret == -ETIMEDOUT || ret == -ECONNRESET);
}

static bool status_retryable(const struct http_client *c, long status, bool idempotent,
			     const char *body, size_t len)
{
	if (status == 429 || status == 503)
		return true;
	if (status == 500 || status == 502 || status == 504)
		return idempotent;
	if (c->opt.retry_response && status >= 400)
		return c->opt.retry_response(status, body ? body : "", len);
	return false;
}

static uint64_t backoff_ms(struct http_client *c, unsigned attempt)
{
	uint64_t ceiling = c->opt.backoff_base_ms;

	for (unsigned i = 1; i < attempt && ceiling < c->opt.backoff_max_ms; i++)
		ceiling *= 2;
	if (ceiling > c->opt.backoff_max_ms)
		ceiling = c->opt.backoff_max_ms;
	return rng_next(c) % (ceiling + 1);
}

static void wipe_headers(struct curl_slist *h)
{
	for (struct curl_slist *p = h; p; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(h);
}

/* One send. Returns 0 with a->... and *status filled, or the transport -errno. */
static int perform_once(struct http_client *c, const struct http_request *req, const char *method,
			const char *token, uint64_t timeout_ms, struct attempt *a, long *status,
			struct error *err)
{
	struct curl_slist *hdrs = NULL, *h;
	char *auth = NULL;
	char ctype[160];
	long conns = 0;
	CURLcode cc;
	int ret = 0;

	c->errbuf[0] = '\0';
	curl_easy_setopt(c->curl, CURLOPT_URL, req->url);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, a);
	if (req->body || !strcmp(method, "POST") || !strcmp(method, "PATCH") ||
	    !strcmp(method, "PUT")) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(req->body ? req->body_len : 0));
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST,
				 strcmp(method, "POST") ? method : NULL);
		snprintf(ctype, sizeof(ctype), "Content-Type: %s",
			 req->content_type ? req->content_type : "application/json");
		if (!(h = curl_slist_append(hdrs, ctype)))
			goto nomem;
		hdrs = h;
	} else {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST,
				 strcmp(method, "GET") ? method : NULL);
	}
	curl_easy_setopt(c->curl, CURLOPT_NOBODY, strcmp(method, "HEAD") ? 0L : 1L);
	/* No "Expect: 100-continue" round trip before larger bodies. */
	if (!(h = curl_slist_append(hdrs, "Expect:")))
		goto nomem;
	hdrs = h;
	if (!(h = curl_slist_append(hdrs, "Accept: application/json")))
		goto nomem;
	hdrs = h;
	for (char **p = c->headers; p && *p; p++) {
		if (!(h = curl_slist_append(hdrs, *p)))
			goto nomem;
		hdrs = h;
	}
	for (const char *const *p = req->headers; p && *p; p++) {
		if (!(h = curl_slist_append(hdrs, *p)))
			goto nomem;
		hdrs = h;
	}
	if (token) {
		/* A token is one header value: a line break would let it forge other headers. */
		if (token[strcspn(token, "\r\n")]) {
			wipe_headers(hdrs);
			return error_set(err, EINVAL,
					 "%s %s: the bearer token contains a line break", method,
					 req->url);
		}
		if (asprintf(&auth, "Authorization: Bearer %s", token) < 0) {
			auth = NULL;
			goto nomem;
		}
		h = curl_slist_append(hdrs, auth);
		explicit_bzero(auth, strlen(auth));
		free(auth);
		if (!h)
			goto nomem;
		hdrs = h;
	}
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);

	c->stats.requests++;
	cc = curl_easy_perform(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	wipe_headers(hdrs);
	if (curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK && conns > 0)
		c->stats.connections += (uint64_t)conns;
	*status = 0;
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
	if (cc == CURLE_OK)
		return 0;
	if (a->sink_ret)
		return a->sink_ret;
	if (a->too_big)
		return error_set(err, EFBIG, "%s %s: response body larger than %zu bytes", method,
				 req->url, c->opt.max_body);
	ret = curl_errno(cc);
	error_set(err, -ret, "%s %s: %s", method, req->url,
		  c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
	return ret;
nomem:
	wipe_headers(hdrs);
	return error_set(err, ENOMEM, "out of memory");
}

int http_do(struct http_client *c, const struct http_request *req, struct http_response *resp,
	    struct error *err)
{
	const char *method = req->method ? req->method : "GET";
	bool idempotent, refreshed = false;
	uint64_t start = now_ms(), deadline, total;
	unsigned attempt = 0;
	struct attempt a;
	int ret;

	memset(resp, 0, sizeof(*resp));
	memset(&a, 0, sizeof(a));
	/* The request's own URL passes the checks every configured endpoint passed. */
	ret = http_url_check(req->url, method, 0, NULL, err);
	if (ret < 0)
		return ret;
	idempotent = req->idempotent == HTTP_IDEMPOTENT_YES ||
		     (req->idempotent == HTTP_IDEMPOTENT_AUTO && method_is_idempotent(method));
	total = c->opt.total_timeout_ms;
	if (req->timeout_ms > total)
		total = req->timeout_ms;
	deadline = start + total;

	for (;;) {
		const char *token = NULL;
		uint64_t now = now_ms(), timeout, wait;
		long status = 0;

		if (now >= deadline) {
			ret = error_set(err, ETIMEDOUT,
					"%s %s: no answer within %llu ms (%u attempts)", method,
					req->url, (unsigned long long)total, attempt);
			goto cleanup;
		}
		timeout = req->timeout_ms ? req->timeout_ms : c->opt.timeout_ms;
		if (timeout > deadline - now)
			timeout = deadline - now;
		if (c->opt.token && !req->no_auth) {
			ret = c->opt.token(c->opt.token_arg, refreshed, &token, err);
			if (ret < 0)
				goto cleanup;
		}
		free_secret(a.body, a.cap);
		memset(&a, 0, sizeof(a));
		a.c = c;
		a.req = req;
		attempt++;
		if (attempt > 1)
			c->stats.retries++;
		resp->attempts++;
		ret = perform_once(c, req, method, token, timeout, &a, &status, err);
		log_debug("http: %s %s -> %ld%s (attempt %u, %llu ms)", method, req->url, status,
			  ret < 0 ? " transport error" : "", resp->attempts,
			  (unsigned long long)(now_ms() - now));
		if (ret < 0) {
			if (a.streamed || attempt >= c->opt.max_attempts ||
			    !transport_retryable(ret, idempotent))
				goto cleanup;
			wait = backoff_ms(c, attempt);
		} else {
			if (status == 401 && c->opt.token && !req->no_auth && !refreshed &&
			    !a.streamed) {
				/* The token may have been revoked or rotated: one fresh try. */
				refreshed = true;
				attempt--;
				continue;
			}
			if (a.streamed || attempt >= c->opt.max_attempts ||
			    !status_retryable(c, status, idempotent, a.body, a.len))
				break;
			wait = backoff_ms(c, attempt);
			if ((status == 429 || status == 503) && a.retry_after[0]) {
				uint64_t ra;

				if (http_parse_retry_after(a.retry_after, time(NULL), &ra) == 0)
					wait = ra < c->opt.retry_after_max_ms
						   ? ra
						   : c->opt.retry_after_max_ms;
			}
		}
		if (now_ms() + wait >= deadline) {
			if (ret < 0)
				goto cleanup;
			break; /* the last response is the answer */
		}
		if (wait) {
			sleep_ms(wait);
			c->stats.wait_ms += wait;
		}
	}
	/* A response was received. */
	resp->status = 0;
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &resp->status);
	if (!a.body) {
		a.body = malloc(1);
		if (!a.body) {
			ret = error_set(err, ENOMEM, "out of memory");
			goto cleanup;
		}
		a.body[0] = '\0';
		a.cap = 1;
	}
	resp->body = a.body;
	resp->body_len = a.len;
	memcpy(resp->content_type, a.content_type, sizeof(resp->content_type));
	a.body = NULL;
	ret = 0;
cleanup:
	free_secret(a.body, a.cap);
	return ret;
}

/* "127.0.0.0/8", "[::1]" or "localhost": host as libcurl's URL parser returns it. */
static bool host_is_loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(host);

	if (!strcmp(host, "localhost"))
		return true;
	/* libcurl has normalised numeric IPv4 forms (127.1, 0x7f.0.0.1) to dotted quads. */
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n < 3 || n >= sizeof(buf) || host[0] != '[' || host[n - 1] != ']')
		return false;
	memcpy(buf, host + 1, n - 2);
	buf[n - 2] = '\0';
	return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* url for messages: user and password, if any, as "***". malloc'd (NULL on ENOMEM). */
static char *url_redacted(CURLU *h, const char *url)
{
	static const CURLUPart parts[] = {CURLUPART_USER, CURLUPART_PASSWORD};
	char *part = NULL, *out = NULL, *copy;
	bool any = false;

	for (size_t i = 0; i < 2; i++) {
		if (curl_url_get(h, parts[i], &part, 0) != CURLUE_OK || !part)
			continue;
		curl_free(part);
		part = NULL;
		any = true;
		if (curl_url_set(h, parts[i], "***", 0) != CURLUE_OK)
			return strdup("(a URL with user information)");
	}
	if (!any)
		return strdup(url);
	if (curl_url_get(h, CURLUPART_URL, &out, 0) != CURLUE_OK)
		return strdup("(a URL with user information)");
	copy = strdup(out);
	curl_free(out);
	return copy;
}

int http_url_check(const char *url, const char *what, unsigned flags, struct http_url_info *info,
		   struct error *err)
{
	static const char *const api_schemes[] = {"http", "https", NULL};
	static const char *const proxy_schemes[] = {"http", "https", "socks5", "socks5h", NULL};
	const char *const *schemes = flags & HTTP_URL_PROXY ? proxy_schemes : api_schemes;
	char *scheme = NULL, *host = NULL, *shown = NULL;
	struct http_url_info found = {0};
	bool known = false, userinfo = false;
	CURLUcode uc;
	CURLU *h;
	int ret = 0;

	if (!what)
		what = "URL";
	if (!url || !*url)
		return error_set(err, EINVAL, "%s: empty URL", what);
	h = curl_url();
	if (!h)
		return error_set(err, ENOMEM, "out of memory");
	/* No default scheme: "example.com:443" is not a URL here. */
	uc = curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (uc != CURLUE_OK) {
		char printable[128];

		ret = error_set(err, EINVAL, "%s \"%s\": not a URL (%s)", what,
				str_printable(printable, sizeof(printable), url, strlen(url)),
				curl_url_strerror(uc));
		goto cleanup;
	}
	for (size_t i = 0; i < 2; i++) {
		char *part = NULL;

		if (curl_url_get(h, i ? CURLUPART_PASSWORD : CURLUPART_USER, &part, 0) ==
			CURLUE_OK &&
		    part)
			userinfo = true;
		curl_free(part);
	}
	shown = url_redacted(h, url);
	if (!shown) {
		ret = error_set(err, ENOMEM, "out of memory");
		goto cleanup;
	}
	if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
		ret = error_set(err, EINVAL, "%s \"%.200s\": names no host", what, shown);
		goto cleanup;
	}
	for (size_t i = 0; schemes[i]; i++)
		known |= !strcasecmp(scheme, schemes[i]);
	if (!known) {
		ret =
		    error_set(err, EINVAL, "%s \"%.200s\": want an %s URL", what, shown,
			      flags & HTTP_URL_PROXY ? "http(s):// or socks5(h)://" : "http(s)://");
		goto cleanup;
	}
	if (!(flags & HTTP_URL_PROXY) && userinfo) {
		ret = error_set(
		    err, EINVAL,
		    "%s \"%.200s\": user information (user:password@) in the URL is "
		    "refused: it would be sent as credentials, and the host is what follows "
		    "the '@'",
		    what, shown);
		goto cleanup;
	}
	found.https = !strcasecmp(scheme, "https");
	found.loopback = host_is_loopback(host);
	if (info)
		*info = found;
cleanup:
	curl_free(scheme);
	curl_free(host);
	free(shown);
	curl_url_cleanup(h);
	return ret;
}

bool http_url_is_loopback(const char *url)
{
	struct http_url_info info;

	return http_url_check(url, NULL, 0, &info, NULL) == 0 && info.loopback;
}
