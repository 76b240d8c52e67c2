/* SPDX-License-Identifier: Apache-2.0 */
#include "mock_http.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MAX 64

struct mock_server {
	struct MHD_Daemon *d;
	char url[64];
	pthread_mutex_t lock;
	struct mock_response queue[QUEUE_MAX];
	unsigned qhead, qtail;
	struct mock_request reqs[MOCK_MAX_REQUESTS];
	unsigned nreqs;
	mock_handler_fn fn;
	void *fn_arg;
	volatile bool stopping;
};

struct conn {
	char *body;
	size_t len;
};

static void die(const char *what)
{
	fprintf(stderr, "mock_http: %s\n", what);
	abort();
}

static void copy_header(struct MHD_Connection *c, const char *name, char *dst, size_t len)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);

	snprintf(dst, len, "%s", v ? v : "");
}

struct qs_ctx {
	char *dst;
	size_t len, o;
};

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *value)
{
	struct qs_ctx *q = cls;
	int n;

	(void)kind;
	n = snprintf(q->dst + q->o, q->len - q->o, "%c%s%s%s", q->o ? '&' : '?', key,
		     value ? "=" : "", value ? value : "");
	if (n > 0 && (size_t)n < q->len - q->o)
		q->o += (size_t)n;
	return MHD_YES;
}

static enum MHD_Result add_header_line(void *cls, enum MHD_ValueKind kind, const char *key,
				       const char *value)
{
	struct qs_ctx *q = cls;
	int n;

	(void)kind;
	n = snprintf(q->dst + q->o, q->len - q->o, "%s: %s\n", key, value ? value : "");
	if (n > 0 && (size_t)n < q->len - q->o)
		q->o += (size_t)n;
	return MHD_YES;
}

/* MHD decodes the query: rebuild a readable "path?k=v&..." for assertions. */
static void rebuild_url(struct MHD_Connection *c, const char *path, char *dst, size_t len)
{
	char args[1800] = "";
	struct qs_ctx q = {args, sizeof(args), 0};

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, &q);
	snprintf(dst, len, "%s%s", path, args);
}

static void sleep_slices(struct mock_server *m, unsigned ms)
{
	while (ms && !m->stopping) {
		unsigned s = ms < 20 ? ms : 20;
		struct timespec ts = {0, (long)s * 1000000};

		nanosleep(&ts, NULL);
		ms -= s;
	}
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct mock_server *m = cls;
	struct conn *cs = *con_cls;
	struct mock_response r = {.status = 404, .body = "{}"};
	struct mock_request *rec = NULL, copy;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	bool have = false;

	(void)version;
	if (!cs) {
		cs = calloc(1, sizeof(*cs));
		if (!cs)
			return MHD_NO;
		*con_cls = cs;
		return MHD_YES;
	}
	if (*upload_size) {
		char *n = realloc(cs->body, cs->len + *upload_size + 1);

		if (!n)
			return MHD_NO;
		cs->body = n;
		memcpy(cs->body + cs->len, upload, *upload_size);
		cs->len += *upload_size;
		cs->body[cs->len] = '\0';
		*upload_size = 0;
		return MHD_YES;
	}
	memset(&copy, 0, sizeof(copy));
	snprintf(copy.method, sizeof(copy.method), "%s", method);
	rebuild_url(conn, url, copy.url, sizeof(copy.url));
	copy_header(conn, "Authorization", copy.authorization, sizeof(copy.authorization));
	copy_header(conn, "Content-Type", copy.content_type, sizeof(copy.content_type));
	copy_header(conn, "Metadata-Flavor", copy.metadata_flavor, sizeof(copy.metadata_flavor));
	{
		struct qs_ctx q = {copy.headers, sizeof(copy.headers), 0};

		MHD_get_connection_values(conn, MHD_HEADER_KIND, add_header_line, &q);
	}
	copy.body = cs->body ? strdup(cs->body) : strdup("");
	copy.body_len = cs->len;
	{
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);

		if (ci && ci->tls_session) {
			unsigned n = 0;

			if (gnutls_certificate_get_peers(ci->tls_session, &n) && n > 0)
				copy.client_cert = true;
		}
	}
	pthread_mutex_lock(&m->lock);
	if (m->nreqs < MOCK_MAX_REQUESTS) {
		rec = &m->reqs[m->nreqs++];
		*rec = copy;
	} else {
		free(copy.body);
	}
	if (m->qhead != m->qtail) {
		r = m->queue[m->qhead++ % QUEUE_MAX];
		have = true;
	}
	pthread_mutex_unlock(&m->lock);
	if (!have && m->fn)
		m->fn(m->fn_arg, rec ? rec : &copy, &r);
	if (r.delay_ms)
		sleep_slices(m, r.delay_ms);
	if (r.status == 0)
		return MHD_NO; /* close without an answer */
	resp = MHD_create_response_from_buffer(
	    r.body ? strlen(r.body) : 0, (void *)(r.body ? r.body : ""), MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	for (size_t i = 0; i < 4 && r.headers[i]; i++) {
		char name[64];
		const char *colon = strchr(r.headers[i], ':');

		if (!colon || (size_t)(colon - r.headers[i]) >= sizeof(name))
			continue;
		memcpy(name, r.headers[i], (size_t)(colon - r.headers[i]));
		name[colon - r.headers[i]] = '\0';
		MHD_add_response_header(resp, name, colon + 1 + (colon[1] == ' '));
	}
	ret = MHD_queue_response(conn, (unsigned)r.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct conn *cs = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (cs) {
		free(cs->body);
		free(cs);
		*con_cls = NULL;
	}
}

struct mock_server *mock_start(const struct mock_tls *tls)
{
	struct mock_server *m = calloc(1, sizeof(*m));
	const union MHD_DaemonInfo *info;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;

	if (!m)
		die("out of memory");
	pthread_mutex_init(&m->lock, NULL);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (tls) {
		flags |= MHD_USE_TLS;
		if (tls->trust_pem)
			m->d = MHD_start_daemon(
			    flags, 0, NULL, NULL, handle, m, MHD_OPTION_SOCK_ADDR, &sa,
			    MHD_OPTION_NOTIFY_COMPLETED, completed, m, MHD_OPTION_HTTPS_MEM_CERT,
			    tls->cert_pem, MHD_OPTION_HTTPS_MEM_KEY, tls->key_pem,
			    MHD_OPTION_HTTPS_MEM_TRUST, tls->trust_pem, MHD_OPTION_END);
		else
			m->d = MHD_start_daemon(
			    flags, 0, NULL, NULL, handle, m, MHD_OPTION_SOCK_ADDR, &sa,
			    MHD_OPTION_NOTIFY_COMPLETED, completed, m, MHD_OPTION_HTTPS_MEM_CERT,
			    tls->cert_pem, MHD_OPTION_HTTPS_MEM_KEY, tls->key_pem, MHD_OPTION_END);
	} else {
		m->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, m, MHD_OPTION_SOCK_ADDR, &sa,
					MHD_OPTION_NOTIFY_COMPLETED, completed, m, MHD_OPTION_END);
	}
	if (!m->d)
		die("MHD_start_daemon failed");
	info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port)
		die("no port");
	snprintf(m->url, sizeof(m->url), "%s://127.0.0.1:%u", tls ? "https" : "http",
		 (unsigned)info->port);
	return m;
}

void mock_reset(struct mock_server *m)
{
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < m->nreqs; i++)
		free(m->reqs[i].body);
	m->nreqs = 0;
	m->qhead = m->qtail = 0;
	m->fn = NULL;
	pthread_mutex_unlock(&m->lock);
}

void mock_stop(struct mock_server *m)
{
	if (!m)
		return;
	m->stopping = true;
	MHD_stop_daemon(m->d);
	mock_reset(m);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

const char *mock_url(const struct mock_server *m)
{
	return m->url;
}

void mock_push(struct mock_server *m, const struct mock_response *r)
{
	pthread_mutex_lock(&m->lock);
	if (m->qtail - m->qhead >= QUEUE_MAX)
		die("response queue full");
	m->queue[m->qtail++ % QUEUE_MAX] = *r;
	pthread_mutex_unlock(&m->lock);
}

void mock_set_handler(struct mock_server *m, mock_handler_fn fn, void *arg)
{
	pthread_mutex_lock(&m->lock);
	m->fn = fn;
	m->fn_arg = arg;
	pthread_mutex_unlock(&m->lock);
}

unsigned mock_count(struct mock_server *m)
{
	unsigned n;

	pthread_mutex_lock(&m->lock);
	n = m->nreqs;
	pthread_mutex_unlock(&m->lock);
	return n;
}

const struct mock_request *mock_req(struct mock_server *m, unsigned i)
{
	const struct mock_request *r = NULL;

	pthread_mutex_lock(&m->lock);
	if (i < m->nreqs)
		r = &m->reqs[i];
	pthread_mutex_unlock(&m->lock);
	return r;
}
