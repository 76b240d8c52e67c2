/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A scripted HTTP(S) server on 127.0.0.1:0 for client unit tests (libmicrohttpd, one thread
 * per connection so that a hanging answer does not block the next connection). Each request
 * is recorded; the answer comes from a queue of scripted responses, else from a handler,
 * else 404.
 */
#ifndef TALOS_GCP_TESTS_MOCK_HTTP_H
#define TALOS_GCP_TESTS_MOCK_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define MOCK_MAX_REQUESTS 256

struct mock_response {
	int status;             /* 0: drop the connection without an answer */
	const char *body;       /* NULL: empty */
	const char *headers[4]; /* "Name: value" */
	unsigned delay_ms;      /* hang this long before answering */
};

struct mock_request {
	char method[16];
	char url[2048]; /* path and query, as sent */
	char authorization[2048];
	char content_type[128];
	char metadata_flavor[32];
	char headers[4096]; /* every header, "Name: value\n" each, in order */
	char *body;         /* NUL-terminated */
	size_t body_len;
	bool client_cert; /* TLS: the client presented a certificate */
};

/* Fills *out for req; runs on the server's threads. */
typedef void (*mock_handler_fn)(void *arg, const struct mock_request *req,
				struct mock_response *out);

struct mock_tls {
	const char *cert_pem; /* server certificate and key */
	const char *key_pem;
	const char *trust_pem; /* NULL: do not ask for client certificates */
};

struct mock_server;

/* tls NULL: plain HTTP. Aborts the test program on failure. */
struct mock_server *mock_start(const struct mock_tls *tls);
void mock_stop(struct mock_server *m);
/* "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT" */
const char *mock_url(const struct mock_server *m);
void mock_push(struct mock_server *m, const struct mock_response *r);
void mock_set_handler(struct mock_server *m, mock_handler_fn fn, void *arg);
unsigned mock_count(struct mock_server *m);
/* The i-th recorded request (0-based); valid until mock_reset()/mock_stop(). */
const struct mock_request *mock_req(struct mock_server *m, unsigned i);
/* Forgets queued responses and recorded requests. */
void mock_reset(struct mock_server *m);

#endif
