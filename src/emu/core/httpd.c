/* SPDX-License-Identifier: Apache-2.0 */
#include "emu/core/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/parse.h"
#include "emu/core/subreq.h"

struct emu_httpd {
	struct emu *emu;
	enum emu_port port;
	struct MHD_Daemon *daemon;
	int listen_fd;
};

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

static int queue(struct emu_request *req, unsigned status, struct MHD_Response *resp,
		 const char *content_type)
{
	const char *name;
	json_t *value;
	enum MHD_Result r;

	if (!resp)
		return -ENOMEM;
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

struct stream {
	emu_stream_read_fn read;
	void *cls;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	long n = s->read(s->cls, pos, buf, max);

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
	*s = (struct stream){.read = read, .cls = cls};
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, s, free);
	if (!resp)
		free(s);
	return queue(req, status, resp, content_type);
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

static int reply_not_found(struct emu_request *req)
{
	/* Google's error body shape for an unknown path on the cloud port. */
	json_t *body =
	    json_pack("{s:{s:i, s:s, s:[{s:s, s:s, s:s}]}}", "error", "code", 404, "message",
		      "The requested URL was not found on this server.", "errors", "message",
		      "Not Found", "domain", "global", "reason", "notFound");
	return emu_reply_json(req, 404, body);
}

static void dispatch(struct emu_request *req)
{
	struct emu *emu = req->emu;

	emu->requests_total++;
	if (req->too_large) {
		emu_reply(req, 413, "text/plain", "request body too large\n", 23);
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct emu_httpd *h = cls;
	struct emu_request *req = *con_cls;

	(void)version;
	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		req->emu = h->emu;
		req->conn = conn;
		req->port = h->port;
		req->method = method;
		req->path = url;
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (req->too_large || req->body_len + n > EMU_MAX_BODY) {
			req->too_large = true;
			return MHD_YES;
		}
		if (req->body_len + n + 1 > req->body_cap) {
			size_t ncap = req->body_cap ? req->body_cap : 4096;
			char *nb;

			while (ncap < req->body_len + n + 1)
				ncap *= 2;
			nb = realloc(req->body, ncap);
			if (!nb)
				return MHD_NO;
			req->body = nb;
			req->body_cap = ncap;
		}
		memcpy(req->body + req->body_len, upload_data, n);
		req->body_len += n;
		req->body[req->body_len] = '\0';
		return MHD_YES;
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

	(void)cls;
	(void)conn;
	(void)toe;
	if (!req)
		return;
	unlink_suspended(req);
	if (req->on_close)
		req->on_close(req);
	json_decref(req->reply_headers);
	json_decref(req->groups);
	free(req->user);
	free(req->body);
	free(req);
	*con_cls = NULL;
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
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0 || listen(fd, 128) < 0) {
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

static int start_daemon(struct emu *emu, enum emu_port port, int fd, const struct emu_tls *tls,
			struct emu_httpd **out)
{
	struct emu_httpd *h;
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->emu = emu;
	h->port = port;
	h->listen_fd = fd;
	if (tls) {
		flags |= MHD_USE_TLS;
		h->daemon = MHD_start_daemon(
		    flags, 0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
		    MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned)0, MHD_OPTION_HTTPS_MEM_KEY, tls->key_pem, MHD_OPTION_HTTPS_MEM_CERT,
		    tls->cert_pem, MHD_OPTION_HTTPS_MEM_TRUST, tls->client_ca_pem, MHD_OPTION_END);
	} else {
		h->daemon =
		    MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET,
				     fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0, MHD_OPTION_END);
	}
	if (!h->daemon) {
		free(h);
		return -EIO;
	}
	*out = h;
	return 0;
}

int emu_httpd_start(struct emu *emu, enum emu_port port, const char *listen_addr,
		    const struct emu_tls *tls, struct emu_httpd **out, char *bound,
		    size_t bound_len, char *errbuf, size_t errlen)
{
	int fd, ret;

	fd = bind_listen(listen_addr, bound, bound_len, errbuf, errlen);
	if (fd < 0)
		return fd;
	ret = start_daemon(emu, port, fd, tls, out);
	if (ret < 0) {
		snprintf(errbuf, errlen, "%s: cannot start the HTTP%s server", listen_addr,
			 tls ? "S" : "");
		close(fd);
	}
	return ret;
}

int emu_httpd_start_fd(struct emu *emu, enum emu_port port, int listen_fd,
		       const struct emu_tls *tls, struct emu_httpd **out)
{
	int one = 1;

	setsockopt(listen_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return start_daemon(emu, port, listen_fd, tls, out);
}

void emu_httpd_stop(struct emu_httpd *h)
{
	if (!h)
		return;
	/*
	 * MHD closes resumed connections on stop (their on_close runs); suspended ones abort it.
	 * Only this daemon's: the others (a per-node API server stops while the ports serve on)
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
	close(h->listen_fd);
	free(h);
}

int emu_httpd_epoll_fd(const struct emu_httpd *h)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);

	return info ? info->epoll_fd : -1;
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
	MHD_run(h->daemon);
}
