/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libmicrohttpd glue: our own listening socket and accept loop, external epoll, request
 * bodies, dispatch, and the limits that keep one port from being locked out.
 *
 * Connections are accepted here and handed to MHD (MHD_add_connection), so that:
 *   - past --max-connections a connection is still answered (503 on the cloud port, 429 on
 *     the kube port, then closed) instead of waiting in the backlog or being dropped; past
 *     that plus OVERFLOW_EXTRA it is closed at once (the fd budget);
 *   - the kube port can tell plain HTTP from TLS before the handshake: the first bytes are
 *     peeked, 0x16 (a TLS handshake record) goes to MHD, a request that looks like HTTP gets
 *     Go's answer (net/http server.go: "HTTP/1.0 400 Bad Request ... Client sent an HTTP
 *     request to an HTTPS server.", only for the first five bytes tlsRecordHeaderLooksLikeHTTP
 *     accepts), anything else is closed, as a real API server does;
 *   - a connection that sends no complete request for --idle-timeout is closed, also when it
 *     trickles bytes (MHD's own timeout counts any byte as activity). A request in progress
 *     is not idle: watches (suspended, heartbeats) and operations/wait are exempt.
 *
 * Request bodies: at most EMU_MAX_BODY each (EMU_MAX_KUBE_BODY on the kube port; 413), and
 * --body-budget bytes held by all connections together (429 past it). A declared Content-Length is
 * reserved when the headers arrive, so the answer comes before the body is sent; on the kube port a
 * request with a body is authenticated first and answered 401 without reading it.
 *
 * Every reply first commits --state (state/state.c): what a client is told is on disk. When
 * the commit fails the reply becomes 503 backendError (cloud) / 500 InternalError (kube).
 */
#include "emu/core/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/parse.h"
#include "emu/core/subreq.h"

#define OVERFLOW_EXTRA 64  /* connections past --max-connections that still get an answer */
#define ACCEPT_BATCH   128 /* accepts per run, so one port cannot starve the other */
#define SNIFF_MAX_MS   10000

enum slot_state { SLOT_FREE = 0, SLOT_SNIFF, SLOT_MHD };

/* Per file descriptor: what the accept loop and the idle sweep know of a connection. */
struct conn_slot {
	uint8_t state;
	bool overflow; /* past --max-connections: its first request is answered 503/429 */
	bool busy;     /* a request is in progress */
	bool closing;  /* shut down by the idle sweep */
	struct emu_httpd *h;
	uint64_t since_ms; /* accepted, or its last request completed */
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

static struct conn_slot *slots;
static size_t nslots;
static uint64_t bodies_held; /* bytes reserved by request bodies, all connections */
static int spare_fd = -1;    /* given up when accept() meets EMFILE */

struct emu_httpd {
	struct emu *emu;
	enum emu_port port;
	struct MHD_Daemon *daemon;
	int listen_fd;
	int ep; /* epoll: the listening socket, connections being sniffed, MHD's epoll fd */
	int mhd_ep;
	bool tls;
	unsigned active, overflow, sniffing;
	long sweep_timer;
};

static struct conn_slot *slot_get(int fd)
{
	if (fd < 0)
		return NULL;
	if ((size_t)fd >= nslots) {
		size_t n = nslots ? nslots : 1024;
		struct conn_slot *ns;

		while (n <= (size_t)fd)
			n *= 2;
		ns = realloc(slots, n * sizeof(*ns));
		if (!ns)
			return NULL;
		memset(ns + nslots, 0, (n - nslots) * sizeof(*ns));
		slots = ns;
		nslots = n;
	}
	return &slots[fd];
}

static int conn_fd(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

	return ci ? ci->connect_fd : -1;
}

static struct conn_slot *conn_slot(struct MHD_Connection *conn)
{
	int fd = conn_fd(conn);

	return fd >= 0 && (size_t)fd < nslots && slots[fd].state == SLOT_MHD ? &slots[fd] : NULL;
}

const char *emu_request_query(const struct emu_request *req, const char *key)
{
	if (req->sub)
		return emu_subreq_query(req, key);
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *emu_request_header(const struct emu_request *req, const char *name)
{
	if (req->sub)
		return emu_subreq_header(req, name);
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

int emu_reply_header(struct emu_request *req, const char *name, const char *value)
{
	if (!req->reply_headers)
		req->reply_headers = json_object();
	if (!req->reply_headers ||
	    json_object_set_new(req->reply_headers, name, json_string(value)))
		return -ENOMEM;
	return 0;
}

/* ---- errors the core answers itself ---- */

/*
 * Google's error shape on the cloud port, a Kubernetes Status on the kube port. reason is
 * errors[0].reason (cloud), kreason the Status reason (kube).
 */
static int reply_error(struct emu_request *req, unsigned status, const char *reason,
		       const char *grpc_status, const char *kreason, const char *message)
{
	json_t *body;

	if (req->port == EMU_PORT_KUBE)
		body = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status",
				 "apiVersion", "v1", "metadata", "status", "Failure", "message",
				 message, "reason", kreason, "code", (int)status);
	else
		body = json_pack("{s:{s:i, s:s, s:[{s:s, s:s, s:s}], s:s}}", "error", "code",
				 (int)status, "message", message, "errors", "message", message,
				 "domain", "global", "reason", reason, "status", grpc_status);
	return emu_reply_json(req, status, body);
}

static int reply_unsaved(struct emu_request *req)
{
	char msg[400];

	snprintf(msg, sizeof(msg), "The change could not be saved (--state: %s); retry later.",
		 emu_state_error(req->emu));
	emu_reply_header(req, "Retry-After", "1");
	return req->port == EMU_PORT_KUBE
		   ? reply_error(req, 500, NULL, NULL, "InternalError", msg)
		   : reply_error(req, 503, "backendError", "UNAVAILABLE", NULL, msg);
}

static int reply_busy(struct emu_request *req, const char *why)
{
	emu_reply_header(req, "Retry-After", "1");
	emu_reply_header(req, MHD_HTTP_HEADER_CONNECTION, "close");
	if (req->port == EMU_PORT_KUBE)
		return reply_error(req, 429, NULL, NULL, "TooManyRequests", why);
	return reply_error(req, 429, "rateLimitExceeded", "RESOURCE_EXHAUSTED", NULL, why);
}

/*
 * Whatever a client is told must be saved first: the marks of the state are committed
 * here. The control endpoint answers for itself (it reports the state's health).
 */
static bool state_gate(struct emu_request *req)
{
	if (req->gate_off || emu_state_flush(req->emu, EMU_STATE_REVEAL) == 0)
		return false;
	if (req->port == EMU_PORT_CLOUD && strncmp(req->path, "/_emu/", 6) == 0)
		return false;
	req->gate_off = true;
	reply_unsaved(req);
	return true;
}

static int queue(struct emu_request *req, unsigned status, struct MHD_Response *resp,
		 const char *content_type)
{
	const char *name;
	json_t *value;
	enum MHD_Result r;

	if (!resp)
		return -ENOMEM;
	if (state_gate(req)) {
		MHD_destroy_response(resp);
		return 0;
	}
	if (content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	json_object_foreach(req->reply_headers, name, value)
	    MHD_add_response_header(resp, name, json_string_value(value));
	r = MHD_queue_response(req->conn, status, resp);
	MHD_destroy_response(resp);
	req->responded = true;
	return r == MHD_YES ? 0 : -EIO;
}

int emu_reply(struct emu_request *req, unsigned status, const char *content_type, const void *body,
	      size_t len)
{
	struct MHD_Response *resp;

	if (req->responded)
		return -EALREADY;
	/* A part of a batch: its answer goes into the batch's, which commits the state. */
	if (req->sub)
		return emu_subreq_reply(req, status, content_type, body, len);
	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	return queue(req, status, resp, content_type);
}

int emu_reply_json(struct emu_request *req, unsigned status, json_t *body)
{
	struct MHD_Response *resp;
	char *text;

	if (req->responded) {
		json_decref(body);
		return -EALREADY;
	}
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text)
		return emu_reply(req, 500, "text/plain", "out of memory\n", 14);
	if (req->sub) {
		int ret = emu_subreq_reply(req, status, "application/json; charset=UTF-8", text,
					   strlen(text));

		free(text);
		return ret;
	}
	resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!resp)
		free(text);
	return queue(req, status, resp, "application/json; charset=UTF-8");
}

/*
 * Suspended requests, so that stopping a daemon can resume them first: MHD_stop_daemon()
 * aborts the process ("called while we have suspended connections") otherwise.
 */
static struct emu_request *suspended_head;
/*
 * A resume from a timer (or from a handler) does not wake our epoll_wait: libmicrohttpd
 * in external-epoll mode only handles it on its next run, so the loop asks here.
 */
static bool resume_pending;
static unsigned streams_held;

struct stream {
	emu_stream_read_fn read;
	void *cls;
	struct emu_request *req;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	long n;

	/* A watch event could tell of a change that is not saved: commit it first, or wait. */
	if (emu_state_flush(s->req->emu, EMU_STATE_REVEAL) < 0 || emu_state_unsaved(s->req->emu)) {
		if (!s->req->held) {
			s->req->held = true;
			streams_held++;
		}
		emu_request_suspend(s->req);
		return 0;
	}
	n = s->read(s->cls, pos, buf, max);
	if (n < 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return (ssize_t)n;
}

int emu_reply_stream(struct emu_request *req, unsigned status, const char *content_type,
		     emu_stream_read_fn read, void *cls)
{
	struct MHD_Response *resp;
	struct stream *s;

	if (req->responded)
		return -EALREADY;
	if (req->sub) /* a batch part's answer is one buffer */
		return emu_subreq_reply(req, 501, "text/plain", "no streams in a batch\n", 22);
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct stream){.read = read, .cls = cls, .req = req};
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, s, free);
	if (!resp)
		free(s);
	return queue(req, status, resp, content_type);
}

static void unlink_suspended(struct emu_request *req)
{
	if (!req->susp_pprev)
		return;
	*req->susp_pprev = req->susp_next;
	if (req->susp_next)
		req->susp_next->susp_pprev = req->susp_pprev;
	req->susp_next = NULL;
	req->susp_pprev = NULL;
}

void emu_request_suspend(struct emu_request *req)
{
	if (req->sub) {
		emu_subreq_suspend(req);
		return;
	}
	if (req->suspended)
		return;
	req->suspended = true;
	req->susp_next = suspended_head;
	if (suspended_head)
		suspended_head->susp_pprev = &req->susp_next;
	req->susp_pprev = &suspended_head;
	suspended_head = req;
	MHD_suspend_connection(req->conn);
}

void emu_request_resume(struct emu_request *req)
{
	if (req->sub) {
		emu_subreq_resume(req);
		return;
	}
	if (req->held) {
		req->held = false;
		streams_held--;
	}
	if (!req->suspended)
		return;
	req->suspended = false;
	req->resumed = true;
	unlink_suspended(req);
	MHD_resume_connection(req->conn);
	resume_pending = true;
}

bool emu_httpd_resume_pending(void)
{
	bool was = resume_pending;

	resume_pending = false;
	return was;
}

/* The state is saved again: the streams held meanwhile go on. */
static void release_held(struct emu *emu)
{
	struct emu_request *req, *next;

	if (!streams_held || emu_state_unsaved(emu))
		return;
	for (req = suspended_head; req; req = next) {
		next = req->susp_next;
		if (req->held)
			emu_request_resume(req);
	}
}

static int reply_not_found(struct emu_request *req)
{
	/* Google's error body shape for an unknown path on the cloud port. */
	json_t *body =
	    json_pack("{s:{s:i, s:s, s:[{s:s, s:s, s:s}]}}", "error", "code", 404, "message",
		      "The requested URL was not found on this server.", "errors", "message",
		      "Not Found", "domain", "global", "reason", "notFound");
	return emu_reply_json(req, 404, body);
}

_Static_assert(EMU_MAX_KUBE_BODY == 3145728, "the kube port's 413 message names the limit");

/* The largest body a port reads: past it the request is answered 413 unread. */
static size_t max_body(const struct emu_request *req)
{
	return req->port == EMU_PORT_KUBE ? EMU_MAX_KUBE_BODY : EMU_MAX_BODY;
}

static void dispatch(struct emu_request *req)
{
	struct emu *emu = req->emu;

	emu->requests_total++;
	if (req->too_large) {
		if (req->port == EMU_PORT_KUBE)
			reply_error(req, 413, NULL, NULL, "RequestEntityTooLarge",
				    "Request entity too large: limit is 3145728");
		else
			emu_reply(req, 413, "text/plain", "request body too large\n", 23);
		return;
	}
	if (req->over_budget) {
		reply_busy(req, "Too many requests, please try again later.");
		return;
	}
	if (emu_faults_intercept(req))
		return;
	emu_request_dispatch(req);
}

void emu_request_dispatch(struct emu_request *req)
{
	if (req->port == EMU_PORT_KUBE) {
		emu_kube_handle(req);
		return;
	}
	if (strncmp(req->path, "/_emu/", 6) == 0) {
		if (emu_control_authorize(req) == 0)
			emu_control_handle(req);
		return;
	}
	if (strcmp(req->path, "/batch/compute/v1") == 0) {
		emu_compute_batch(req);
		return;
	}
	if (emu_auth_handle(req))
		return;
	if (strncmp(req->path, "/compute/v1/", 12) == 0) {
		if (emu_auth_check(req))
			return;
		emu_compute_handle(req);
		return;
	}
	reply_not_found(req);
}

/* ---- request bodies ---- */

static bool reserve(struct emu_request *req, size_t n)
{
	if (bodies_held + n > req->emu->opt.body_budget)
		return false;
	bodies_held += n;
	req->reserved += n;
	return true;
}

static void release(struct emu_request *req)
{
	bodies_held -= req->reserved;
	req->reserved = 0;
}

static void drop_body(struct emu_request *req)
{
	free(req->body);
	req->body = NULL;
	req->body_len = req->body_cap = 0;
	release(req);
}

/*
 * The request's headers are in, its body is not: refuse now what would be refused anyway,
 * before a byte of the body is read. 1 when it answered.
 */
static int check_headers(struct emu_request *req, struct conn_slot *slot)
{
	const char *cl = emu_request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *te = emu_request_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	uint64_t len = 0;
	bool body;

	if (slot && slot->overflow) {
		char why[160];

		if (req->port == EMU_PORT_KUBE)
			return reply_busy(req, "Too many requests, please try again later."), 1;
		snprintf(why, sizeof(why),
			 "The service is currently unavailable: more than %u connections.",
			 req->emu->opt.max_connections);
		emu_reply_header(req, "Retry-After", "1");
		emu_reply_header(req, MHD_HTTP_HEADER_CONNECTION, "close");
		reply_error(req, 503, "backendError", "UNAVAILABLE", NULL, why);
		return 1;
	}
	if (cl && parse_u64(cl, UINT64_MAX, &len) < 0)
		len = 0;
	body = len > 0 || (te && strcasestr(te, "chunked"));
	if (!body)
		return 0;
	/* Kubernetes authenticates before it reads a body (filters run before the handler). */
	if (req->port == EMU_PORT_KUBE && emu_kube_authenticate(req) < 0) {
		emu_reply_header(req, MHD_HTTP_HEADER_CONNECTION, "close");
		reply_error(req, 401, NULL, NULL, "Unauthorized", "Unauthorized");
		return 1;
	}
	/*
	 * EMU_MAX_BODY is the largest declared Content-Length still read (and dropped past the
	 * port's limit) before the answer. The API server answers 413 once its handler has read
	 * limit+1 bytes, and Go's server then lets the client finish sending before it closes (it
	 * drains a little, then shuts down writing and lingers, net/http closeWriteAndWait), so a
	 * client gets its 413 rather than a reset. Closing here with the body unread would reset
	 * the connection over the client's answer: read and drop up to EMU_MAX_BODY, answer before
	 * the body only past that.
	 */
	if (len > EMU_MAX_BODY) {
		req->too_large = true;
		emu_reply_header(req, MHD_HTTP_HEADER_CONNECTION, "close");
		dispatch(req);
		return 1;
	}
	if (len && !reserve(req, (size_t)len + 1)) {
		req->emu->requests_total++;
		reply_busy(req, "Too many requests, please try again later.");
		return 1;
	}
	return 0;
}

static int append_body(struct emu_request *req, const char *data, size_t n)
{
	if (req->over_budget)
		return 0;
	if (!req->too_large && req->body_len + n > max_body(req)) {
		req->too_large = true;
		drop_body(req);
	}
	if (req->too_large) {
		/*
		 * Read to its end and dropped, then answered: answering and closing now would make
		 * the kernel reset the connection over the unread rest, and the client would
		 * lose the answer (Go's server shuts down writing and lingers for that reason).
		 */
		return 0;
	}
	if (req->body_len + n + 1 > req->body_cap) {
		size_t ncap = req->body_cap ? req->body_cap : 4096;
		char *nb;

		while (ncap < req->body_len + n + 1)
			ncap *= 2;
		/* A declared length is reserved whole: never allocate past it. */
		if (req->reserved && ncap > req->reserved && req->body_len + n + 1 <= req->reserved)
			ncap = req->reserved;
		if (ncap > req->reserved && !reserve(req, ncap - req->reserved)) {
			req->over_budget = true;
			drop_body(req);
			return 0;
		}
		nb = realloc(req->body, ncap);
		if (!nb)
			return -ENOMEM;
		req->body = nb;
		req->body_cap = ncap;
	}
	memcpy(req->body + req->body_len, data, n);
	req->body_len += n;
	req->body[req->body_len] = '\0';
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct emu_httpd *h = cls;
	struct emu_request *req = *con_cls;

	(void)version;
	if (!req) {
		struct conn_slot *slot = conn_slot(conn);

		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		req->emu = h->emu;
		req->conn = conn;
		req->port = h->port;
		req->method = method;
		req->path = url;
		*con_cls = req;
		if (slot)
			slot->busy = true;
		check_headers(req, slot);
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		return append_body(req, upload_data, n) < 0 ? MHD_NO : MHD_YES;
	}
	if (req->resumed) {
		req->resumed = false;
		if (req->on_resume && !req->responded)
			req->on_resume(req);
	} else if (!req->responded && !req->suspended) {
		if (!req->body) {
			req->body = calloc(1, 1);
			if (!req->body)
				return MHD_NO;
		}
		dispatch(req);
	}
	if (req->reset_connection)
		return MHD_NO;
	if (!req->responded && !req->suspended)
		emu_reply(req, 500, "text/plain", "no reply\n", 9);
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct emu_request *req = *con_cls;
	struct conn_slot *slot = conn_slot(conn);

	(void)cls;
	(void)toe;
	if (slot) {
		slot->busy = false;
		slot->since_ms = emu_now_ms();
	}
	if (!req)
		return;
	if (req->held) {
		req->held = false;
		streams_held--;
	}
	unlink_suspended(req);
	if (req->on_close)
		req->on_close(req);
	release(req);
	json_decref(req->reply_headers);
	json_decref(req->groups);
	free(req->user);
	free(req->body);
	free(req);
	*con_cls = NULL;
}

/* Connections in MHD: counted per port, past --max-connections answered and closed. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct emu_httpd *h = cls;
	int fd = conn_fd(conn);
	struct conn_slot *slot = fd >= 0 && (size_t)fd < nslots ? &slots[fd] : NULL;

	(void)socket_context;
	if (!slot || slot->h != h)
		return;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		slot->state = SLOT_MHD;
		slot->since_ms = emu_now_ms();
		if (slot->overflow)
			h->overflow++;
		else
			h->active++;
		return;
	}
	if (slot->state == SLOT_MHD) {
		if (slot->overflow)
			h->overflow--;
		else
			h->active--;
	}
	memset(slot, 0, sizeof(*slot));
}

/* ---- accepting ---- */

static void add_to_mhd(struct emu_httpd *h, int fd, struct conn_slot *slot)
{
	slot->state = SLOT_MHD;
	slot->h = h;
	slot->overflow = h->active >= h->emu->opt.max_connections;
	/* MHD closes the socket when it cannot take it. */
	if (MHD_add_connection(h->daemon, fd, (struct sockaddr *)&slot->addr, slot->addrlen) !=
	    MHD_YES) {
		log_debug("%s port: connection refused by libmicrohttpd: %s",
			  h->port == EMU_PORT_KUBE ? "kube" : "cloud", strerror(errno));
		memset(slot, 0, sizeof(*slot));
	}
}

static void sniff_drop(struct emu_httpd *h, int fd, struct conn_slot *slot)
{
	epoll_ctl(h->ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	memset(slot, 0, sizeof(*slot));
	h->sniffing--;
}

/* net/http tlsRecordHeaderLooksLikeHTTP: the only first bytes Go answers instead of closing. */
static bool looks_like_http(const char hdr[5])
{
	static const char *const starts[] = {"GET /", "HEAD ", "POST ", "PUT /", "OPTIO"};

	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
		if (memcmp(hdr, starts[i], 5) == 0)
			return true;
	return false;
}

static void answer_plain_http(int fd)
{
	static const char answer[] =
	    "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
	char sink[4096];

	/* Read what came, so that closing sends a FIN after the answer rather than a reset. */
	for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	if (send(fd, answer, sizeof(answer) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("kube port: cannot answer plain HTTP: %s", strerror(errno));
	shutdown(fd, SHUT_WR);
}

/* A connection on the TLS port has sent something: TLS goes to MHD, plain HTTP gets a 400. */
static void sniff(struct emu_httpd *h, int fd)
{
	struct conn_slot *slot = (size_t)fd < nslots ? &slots[fd] : NULL;
	char hdr[5];
	ssize_t n;

	if (!slot || slot->state != SLOT_SNIFF || slot->h != h)
		return;
	n = recv(fd, hdr, sizeof(hdr), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n > 0 && hdr[0] == 0x16) {
		epoll_ctl(h->ep, EPOLL_CTL_DEL, fd, NULL);
		h->sniffing--;
		add_to_mhd(h, fd, slot);
		return;
	}
	if (n > 0 && n < (ssize_t)sizeof(hdr))
		return; /* wait for five bytes (edge-triggered: the next ones wake us) */
	if (n == (ssize_t)sizeof(hdr) && looks_like_http(hdr))
		answer_plain_http(fd);
	sniff_drop(h, fd, slot);
}

/* 1 when a connection was taken (or refused), 0 when none waits, -errno. */
static int accept_one(struct emu_httpd *h)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);
	struct conn_slot *slot;
	struct epoll_event ev;
	int fd =
	    accept4(h->listen_fd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE) {
			/* Out of descriptors: take this one with the spare and close it, rather
			 * than leave it readable forever. */
			if (spare_fd >= 0) {
				close(spare_fd);
				fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);
				if (fd >= 0)
					close(fd);
				spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			}
			log_warn("%s port: out of file descriptors",
				 h->port == EMU_PORT_KUBE ? "kube" : "cloud");
			return -EMFILE;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return errno == ECONNABORTED || errno == EINTR ? 1 : -errno;
	}
	if (h->active + h->overflow + h->sniffing >= h->emu->opt.max_connections + OVERFLOW_EXTRA) {
		close(fd);
		return 1;
	}
	slot = slot_get(fd);
	if (!slot) {
		close(fd);
		return 1;
	}
	*slot = (struct conn_slot){.h = h, .since_ms = emu_now_ms(), .addrlen = len};
	memcpy(&slot->addr, &addr, len);
	if (!h->tls) {
		add_to_mhd(h, fd, slot);
		return 1;
	}
	slot->state = SLOT_SNIFF;
	ev = (struct epoll_event){.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = fd};
	if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		memset(slot, 0, sizeof(*slot));
		return 1;
	}
	h->sniffing++;
	sniff(h, fd); /* the ClientHello may be there already */
	return 1;
}

/* ---- the idle sweep ---- */

static void sweep(struct emu *emu, void *arg)
{
	struct emu_httpd *h = arg;
	uint64_t now = emu_now_ms(), idle = emu->opt.idle_timeout_ms;
	uint64_t sniff_max = idle && idle < SNIFF_MAX_MS ? idle : SNIFF_MAX_MS;

	for (size_t fd = 0; fd < nslots; fd++) {
		struct conn_slot *slot = &slots[fd];

		if (slot->h != h)
			continue;
		if (slot->state == SLOT_SNIFF && now - slot->since_ms >= sniff_max) {
			sniff_drop(h, (int)fd, slot);
		} else if (slot->state == SLOT_MHD && idle && !slot->busy && !slot->closing &&
			   now - slot->since_ms >= idle) {
			/* MHD notices the end of the stream and closes the connection itself. */
			slot->closing = true;
			shutdown((int)fd, SHUT_RDWR);
		}
	}
	h->sweep_timer = emu_timer_add(emu, idle && idle / 4 < 1000 ? idle / 4 : 1000, sweep, h);
	if (h->sweep_timer < 0)
		h->sweep_timer = 0;
}

static int bind_listen(const char *listen_addr, char *bound, size_t bound_len, char *errbuf,
		       size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd, one = 1;
	char host[INET6_ADDRSTRLEN];

	if (parse_listen_addr(listen_addr, &ss, &sslen) < 0) {
		snprintf(errbuf, errlen, "'%s' is not HOST:PORT with a numeric host", listen_addr);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(errbuf, errlen, "%s: socket: %s", listen_addr, strerror(errno));
		return -errno;
	}
	/* SO_REUSEADDR lets a restart reuse TIME_WAIT ports; it never lets two servers share one.
	 */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/*
	 * Accepted sockets inherit TCP_NODELAY: without it the small writes of a TLS handshake
	 * and the tail of each response wait for the peer's delayed ACK (tens of ms each).
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0 || listen(fd, 1024) < 0) {
		int e = errno;
		snprintf(errbuf, errlen, "%s: %s", listen_addr, strerror(e));
		close(fd);
		return -e;
	}
	sslen = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sslen);
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(bound, bound_len, "%s:%u", host, ntohs(sin->sin_port));
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(bound, bound_len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	}
	return fd;
}

static int watch_fd(int ep, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* A daemon serving listening socket fd (taken: closed on failure). */
static int start_on(struct emu *emu, enum emu_port port, int fd, const struct emu_tls *tls,
		    struct emu_httpd **out, const char *what, char *errbuf, size_t errlen)
{
	struct emu_httpd *h;
	unsigned flags =
	    MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET;
	unsigned timeout_s = (unsigned)(emu->opt.idle_timeout_ms / 1000);
	unsigned limit = emu->opt.max_connections + OVERFLOW_EXTRA;

	if (spare_fd < 0)
		spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->emu = emu;
	h->port = port;
	h->listen_fd = fd;
	h->tls = tls != NULL;
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	if (tls) {
		flags |= MHD_USE_TLS;
		h->daemon = MHD_start_daemon(
		    flags, 0, NULL, NULL, on_request, h, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
		    h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
		    MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_CONNECTION_LIMIT, limit,
		    MHD_OPTION_HTTPS_MEM_KEY, tls->key_pem, MHD_OPTION_HTTPS_MEM_CERT,
		    tls->cert_pem, MHD_OPTION_HTTPS_MEM_TRUST, tls->client_ca_pem, MHD_OPTION_END);
	} else {
		h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
					     MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
					     MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
					     MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
					     MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_END);
	}
	if (h->daemon) {
		const union MHD_DaemonInfo *info =
		    MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);

		h->mhd_ep = info ? info->epoll_fd : -1;
	}
	if (!h->daemon || h->ep < 0 || h->mhd_ep < 0 || watch_fd(h->ep, fd) < 0 ||
	    watch_fd(h->ep, h->mhd_ep) < 0) {
		snprintf(errbuf, errlen, "%s: cannot start the HTTP%s server", what,
			 tls ? "S" : "");
		if (h->daemon)
			MHD_stop_daemon(h->daemon);
		if (h->ep >= 0)
			close(h->ep);
		close(fd);
		free(h);
		return -EIO;
	}
	h->sweep_timer = emu_timer_add(emu, 250, sweep, h);
	if (h->sweep_timer < 0)
		h->sweep_timer = 0;
	*out = h;
	return 0;
}

int emu_httpd_start(struct emu *emu, enum emu_port port, const char *listen_addr,
		    const struct emu_tls *tls, struct emu_httpd **out, char *bound,
		    size_t bound_len, char *errbuf, size_t errlen)
{
	int fd = bind_listen(listen_addr, bound, bound_len, errbuf, errlen);

	if (fd < 0)
		return fd;
	return start_on(emu, port, fd, tls, out, listen_addr, errbuf, errlen);
}

int emu_httpd_start_fd(struct emu *emu, enum emu_port port, int listen_fd,
		       const struct emu_tls *tls, struct emu_httpd **out)
{
	char err[160];
	int one = 1;

	/* As bind_listen's: accepted sockets inherit TCP_NODELAY. */
	setsockopt(listen_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return start_on(emu, port, listen_fd, tls, out, "socket", err, sizeof(err));
}

void emu_httpd_stop(struct emu_httpd *h)
{
	if (!h)
		return;
	if (h->sweep_timer > 0)
		emu_timer_cancel(h->emu, h->sweep_timer);
	for (size_t fd = 0; fd < nslots; fd++)
		if (slots[fd].h == h && slots[fd].state == SLOT_SNIFF)
			sniff_drop(h, (int)fd, &slots[fd]);
	/*
	 * MHD closes resumed connections on stop (their on_close runs); suspended ones abort it.
	 * Only this daemon's: the others (a node's API server stops while the ports serve on)
	 * keep theirs suspended.
	 */
	for (struct emu_request *req = suspended_head, *next; req; req = next) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_DAEMON);

		next = req->susp_next;
		if (!ci || ci->daemon == h->daemon)
			emu_request_resume(req);
	}
	MHD_stop_daemon(h->daemon);
	close(h->ep);
	close(h->listen_fd);
	free(h);
}

int emu_httpd_epoll_fd(const struct emu_httpd *h)
{
	return h->ep;
}

uint64_t emu_httpd_timeout_ms(const struct emu_httpd *h)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (MHD_get_timeout(h->daemon, &t) != MHD_YES)
		return UINT64_MAX;
	return (uint64_t)t;
}

void emu_httpd_run(struct emu_httpd *h)
{
	struct epoll_event events[64];
	int n = epoll_wait(h->ep, events, 64, 0);

	for (int i = 0; i < n; i++) {
		int fd = events[i].data.fd;

		if (fd == h->listen_fd) {
			for (int j = 0; j < ACCEPT_BATCH && accept_one(h) > 0; j++)
				;
		} else if (fd != h->mhd_ep) {
			sniff(h, fd);
		}
	}
	release_held(h->emu);
	MHD_run(h->daemon);
}
