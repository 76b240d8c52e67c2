/* SPDX-License-Identifier: Apache-2.0 */
/*
 * HTTP client on libcurl for API clients (GCP, Kubernetes): timeouts, bounded retries with
 * exponential backoff and full jitter, Retry-After, TLS verification always on, a bearer
 * token hook refreshed once on 401, and request counters.
 *
 * One struct http_client owns one CURL easy handle, so connections (and TLS sessions) are
 * reused from one request to the next. A client is not thread-safe: use one per thread.
 *
 * Retry policy of http_do() (at most max_attempts sends, within total_timeout_ms):
 *   - 429 and 503, and any response the client's retry_response hook accepts (Google's
 *     403 rateLimitExceeded), are retried for every method: the server refused the request
 *     before acting on it;
 *   - 500, 502 and 504 are retried for idempotent requests only;
 *   - "could not connect" is retried for every method (nothing was sent); timeouts, resets
 *     and empty replies for idempotent requests only; DNS and TLS failures are not retried.
 *   The wait before attempt n+1 is the response's Retry-After (delta-seconds or HTTP-date,
 *   on 429/503, capped at retry_after_max_ms), else a uniformly random time in
 *   [0, min(backoff_max_ms, backoff_base_ms * 2^(n-1))] ("full jitter"). A wait that would
 *   pass the total deadline is not taken: the last outcome is returned instead.
 *   - 401 with a token provider: the provider is asked for a fresh token and the request is
 *     re-sent once, immediately.
 *   (Below this layer, libcurl re-sends a request once by itself when a reused keep-alive
 *   connection turns out to be closed before any byte of the answer, as browsers do.)
 *
 * Nothing here logs headers or bodies (they carry tokens and keys): debug logs name the
 * method, URL, status, attempt and time only. Response bodies are zeroed when freed.
 */
#ifndef TALOS_GCP_COMMON_HTTP_H
#define TALOS_GCP_COMMON_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "common/error.h"

struct http_client;

/*
 * Bearer token provider. Sets *token to a NUL-terminated token that stays valid until the
 * provider's next call (the provider owns it). refresh = true asks for a new token even if
 * a cached one looks valid (the server answered 401). Returns 0 or -errno with err filled.
 */
typedef int (*http_token_fn)(void *arg, bool refresh, const char **token, struct error *err);

/* Extra retry rule on a complete response, e.g. Google's 403 rateLimitExceeded reasons. */
typedef bool (*http_retry_fn)(long status, const char *body, size_t len);

/*
 * Streaming body sink (watches): called with each chunk of a 2xx body instead of buffering
 * it. Returns 0 to go on, or -errno to stop the transfer (http_do then returns that -errno).
 * A streamed request is never retried once the first byte was delivered.
 */
typedef int (*http_data_fn)(void *arg, const char *data, size_t len);

/* TLS material. Every pointer may be NULL; in-memory PEM wins over the matching file. */
struct http_tls {
	const char *ca_file; /* PEM bundle of trusted CAs; neither this nor ca_pem: system CAs */
	const void *ca_pem;  /* in-memory PEM CA bundle (kubeconfig certificate-authority-data) */
	size_t ca_pem_len;
	const char *cert_file; /* client certificate (PEM) */
	const void *cert_pem;
	size_t cert_pem_len;
	const char *key_file; /* client private key (PEM) */
	const void *key_pem;
	size_t key_pem_len;
	/*
	 * Turns certificate verification off. Only ever set from a kubeconfig cluster that says
	 * insecure-skip-tls-verify: true; never a default, never for GCP.
	 */
	bool insecure_skip_verify;
};

/* Client options. Every zero field means "the default" named in its comment. */
struct http_options {
	uint64_t timeout_ms;         /* one attempt, connect to last byte: 30000 */
	uint64_t connect_timeout_ms; /* TCP + TLS handshake: 10000 */
	/* Every attempt and wait of one http_do(): max(120000, 4 * timeout_ms). */
	uint64_t total_timeout_ms;
	unsigned max_attempts;       /* sends per http_do(), including the first: 5 */
	uint64_t backoff_base_ms;    /* first backoff ceiling: 250 */
	uint64_t backoff_max_ms;     /* largest backoff ceiling: 8000 */
	uint64_t retry_after_max_ms; /* cap on an honoured Retry-After: 30000 */
	size_t max_body;             /* largest buffered response body: 256 MiB (-EFBIG beyond) */
	const char *user_agent;      /* "talos-gcp/VERSION" */
	struct http_tls tls;         /* copied by http_client_new(): the caller may free its own */
	http_token_fn token;         /* NULL: no Authorization header */
	void *token_arg;
	http_retry_fn retry_response; /* NULL: status rules only */
	/*
	 * "Name: value" headers sent with every request (Impersonate-*), NULL-terminated; copied
	 * by http_client_new(). NULL: none.
	 */
	const char *const *headers;
	/*
	 * Proxy for every request (a kubeconfig's proxy-url: http, https, socks5, socks5h,
	 * credentials allowed), no_proxy not consulted, as client-go does with proxy-url. Copied.
	 * NULL: libcurl's environment (https_proxy, no_proxy, ...).
	 */
	const char *proxy;
};

enum http_idempotency {
	HTTP_IDEMPOTENT_AUTO = 0, /* by method: GET, HEAD, PUT, DELETE, OPTIONS are (RFC 9110) */
	HTTP_IDEMPOTENT_YES,      /* e.g. a POST carrying a requestId, an operation wait */
	HTTP_IDEMPOTENT_NO,
};

struct http_request {
	const char *method;         /* NULL: "GET" */
	const char *url;            /* http:// or https:// only */
	const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
	const char *content_type;   /* with a body; NULL: "application/json" */
	const void *body;           /* NULL: no body (POST then sends an empty one) */
	size_t body_len;
	enum http_idempotency idempotent;
	uint64_t timeout_ms;  /* 0: the client's; watches pass a longer one */
	bool no_auth;         /* do not call the token provider (token endpoints themselves) */
	http_data_fn on_data; /* NULL: buffer the body into the response */
	void *on_data_arg;
};

struct http_response {
	long status; /* final HTTP status; 0 if none was received */
	char *body;  /* NUL-terminated (malloc'd, zeroed on free); never NULL after 0 */
	size_t body_len;
	char content_type[128]; /* "" when absent */
	unsigned attempts;      /* sends made, including the 401 re-send */
};

struct http_stats {
	uint64_t requests;    /* requests sent (every attempt counts) */
	uint64_t retries;     /* attempts after the first, for any reason */
	uint64_t connections; /* new TCP connections opened (reuse keeps this low) */
	uint64_t bytes_received;
	uint64_t wait_ms; /* total time slept between attempts */
};

/* 0, -ENOMEM, or -EINVAL (bad option, e.g. a TLS blob that libcurl refuses) with err. */
int http_client_new(const struct http_options *opt, struct http_client **out, struct error *err);
void http_client_free(struct http_client *c);

/*
 * Performs req with the retry policy above. Returns 0 when an HTTP response was received
 * (whatever its status: the caller maps statuses to errors; after exhausted retries the
 * last response is returned), or -errno with err = "METHOD URL: what failed":
 *   -ETIMEDOUT    timed out (an attempt or the total deadline)
 *   -ECONNREFUSED could not connect
 *   -ECONNRESET   connection reset, or closed without a reply
 *   -EHOSTUNREACH host name not resolved
 *   -EPROTO       TLS failure (certificate not trusted, bad client certificate or key)
 *   -EFBIG        body larger than max_body
 *   -EINVAL       bad request (NULL url, unsupported scheme)
 *   -ENOMEM, -EIO (anything else), or the -errno of the token provider / on_data sink.
 * resp is always initialised; free it with http_response_free() in every case.
 */
int http_do(struct http_client *c, const struct http_request *req, struct http_response *resp,
	    struct error *err);
void http_response_free(struct http_response *resp);

void http_client_stats(const struct http_client *c, struct http_stats *out);
/* The timeouts in force once defaults are applied: one attempt, one http_do(). */
void http_client_timeouts(const struct http_client *c, uint64_t *attempt_ms, uint64_t *total_ms);

/*
 * Maps a non-2xx response of an API to -errno with err filled (gcp_api_error(),
 * kube_status_error()). what names the request: "METHOD URL".
 */
typedef int (*http_error_fn)(long status, const char *body, size_t len, const char *what,
			     struct error *err);

/*
 * The one call path of the API clients. Sends req; with json (and no req->body) the body is
 * json encoded compactly (any JSON value). Returns 0 only for a 2xx answer, whose body is
 * then in *resp; a non-2xx answer is on_error's -errno (NULL: http_status_error()); a
 * transport failure is http_do()'s. resp is always initialised: free it with
 * http_response_free() in every case.
 */
int http_call(struct http_client *c, const struct http_request *req, const json_t *json,
	      http_error_fn on_error, struct http_response *resp, struct error *err);
/*
 * http_call(), then the answer parsed into *out (a new reference; JSON null for an empty
 * body). out NULL: the answer is only checked for its status.
 */
int http_call_json(struct http_client *c, const struct http_request *req, const json_t *json,
		   http_error_fn on_error, json_t **out, struct error *err);

/*
 * The message of a response an API's own error format did not explain: "HTTP 502: <the
 * start of the body, printable> (what)" or "HTTP 502 with an empty body (what)". Returns
 * -code, or http_status_errno(status) when code is 0 (-EBADMSG for a 2xx).
 */
int http_status_error(long status, const char *body, size_t len, const char *what, int code,
		      struct error *err);

/*
 * Default mapping of an HTTP status to a negative errno, for clients to refine:
 * 2xx 0; 400 -EINVAL; 401, 403 -EACCES; 404 -ENOENT; 405 -EOPNOTSUPP; 408 -ETIMEDOUT;
 * 409 -EEXIST; 410 -EKEYEXPIRED; 412 -ESTALE; 413 -EFBIG; 422 -EINVAL; 429 -EAGAIN;
 * 503 -EAGAIN; 504 -ETIMEDOUT; other 4xx -EINVAL; other 5xx and anything else -EIO.
 */
int http_status_errno(long status);

/*
 * Percent-encodes s for a query value or a path segment (RFC 3986 unreserved characters
 * stay as they are). malloc'd, NULL on ENOMEM.
 */
char *http_escape(const char *s);

/* Appends "?key=value" (or "&key=value") to the malloc'd *url, value percent-encoded. */
int http_url_add_query(char **url, const char *key, const char *value);

/* What http_url_check() found out about a URL. */
struct http_url_info {
	bool https;
	/* The host is in 127.0.0.0/8 (any form libcurl reads as such), [::1] or "localhost". */
	bool loopback;
};

enum http_url_flags {
	/*
	 * A proxy URL (kubeconfig proxy-url): http, https, socks5 or socks5h, and user:password
	 * allowed (proxy credentials, sent to the proxy only).
	 */
	HTTP_URL_PROXY = 1 << 0,
};

/*
 * Parses url with libcurl's URL API (the parser that will send the request, so what is checked
 * is what is used): an http:// or https:// URL with a host, and no user information
 * ("user:password@", which libcurl would send as Basic credentials, and which hides the real
 * host from a reader: http://localhost:x@evil.example/ goes to evil.example). what names the
 * flag or field for the message; the URL is quoted with any password replaced by "***".
 * 0 or -EINVAL (-ENOMEM) with err.
 */
int http_url_check(const char *url, const char *what, unsigned flags, struct http_url_info *info,
		   struct error *err);

/*
 * True when url passes http_url_check() and its host is loopback: the only hosts clients
 * may send credentials to over plain http://.
 */
bool http_url_is_loopback(const char *url);

/*
 * Parses a Retry-After value: delta-seconds or an IMF-fixdate HTTP-date (RFC 9110 §10.2.3),
 * relative to now (seconds since the epoch). A date in the past is 0 ms. 0 or -EINVAL.
 */
int http_parse_retry_after(const char *value, time_t now, uint64_t *out_ms);

#endif
