/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Health checks by real probes, as Google's probers send them
 * (https://cloud.google.com/load-balancing/docs/health-check-concepts):
 *
 *   - from 35.191.0.0/16 and 130.211.0.0/22 ("probe IP ranges"), here 35.191.0.1 and
 *     130.211.0.1 in turn, inside PREFIX-vpc: the instances' ingress firewall rules apply, and
 *     a rule that allows only one of the ranges fails every other probe, as on GCP;
 *   - to the forwarding rule's address for passthrough load balancers ("Destination for
 *     probe packets: the IP address of the forwarding rule"), delivered to one backend (a mark
 *     selects that backend's hairpin table), so a backend without the address local fails
 *     them; to the instance's primary address for the proxies;
 *   - TCP: the connection is established (then the optional request is sent and the
 *     response, when set, must begin the answer); SSL: the TLS handshake completes; HTTP,
 *     HTTPS (no certificate check, as documented) and HTTP2 (spoken as HTTP/1.1 over TLS
 *     here): `GET requestPath` must answer 200, and contain response when set;
 *   - every checkIntervalSec, each probe given timeoutSec; a backend turns healthy after
 *     healthyThreshold consecutive successes and unhealthy after unhealthyThreshold
 *     consecutive failures; a new backend starts unhealthy.
 *
 * Probes run on the loop: non-blocking sockets, OpenSSL in non-blocking mode, a timer each.
 */
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/str.h"
#include "emu/dataplane/dataplane.h"

enum phase { IDLE, CONNECTING, HANDSHAKE, SENDING, READING };

struct probe {
	struct probe *next;
	struct emu_dataplane *dp;
	char *key; /* service URL "|" instance URL */
	char *service_url, *instance_url;
	/* what and where */
	int type;       /* DP_HC_* */
	char *request;  /* the bytes to send (HTTP request or TCP/SSL request), or NULL */
	char *response; /* expected in the answer, or NULL */
	uint32_t dst, mark;
	uint16_t port;
	unsigned interval_ms, timeout_ms, healthy_threshold, unhealthy_threshold;
	/* state */
	bool healthy, seen;
	unsigned ok_run, fail_run;
	uint64_t probes, failures;
	char last_error[96];
	unsigned turn; /* alternates the source range */
	/* the probe in flight */
	enum phase phase;
	int fd;
	SSL *ssl;
	size_t sent;
	char buf[4096];
	size_t len;
	long timer; /* next probe, or this probe's timeout */
	uint64_t started_ms;
	bool watched;
	bool keep;
};

struct dp_health {
	struct probe *probes;
	SSL_CTX *tls;
};

static const char *hc_name(int type)
{
	switch (type) {
	case DP_HC_TCP:
		return "TCP";
	case DP_HC_SSL:
		return "SSL";
	case DP_HC_HTTP:
		return "HTTP";
	case DP_HC_HTTPS:
		return "HTTPS";
	default:
		return "HTTP2";
	}
}

static void probe_close(struct probe *p)
{
	if (p->ssl) {
		SSL_free(p->ssl);
		p->ssl = NULL;
	}
	if (p->fd >= 0) {
		if (p->watched)
			emu_fd_unwatch(p->dp->emu, p->fd);
		close(p->fd);
	}
	p->fd = -1;
	p->watched = false;
	p->phase = IDLE;
	p->sent = p->len = 0;
}

static void schedule(struct probe *p, uint64_t delay_ms);

/* One probe's result: the thresholds decide the state. */
static void finish(struct probe *p, bool ok, const char *why)
{
	bool was = p->healthy;

	probe_close(p);
	if (p->timer)
		emu_timer_cancel(p->dp->emu, p->timer);
	p->timer = 0;
	p->probes++;
	p->seen = true;
	if (ok) {
		p->ok_run++;
		p->fail_run = 0;
		p->last_error[0] = '\0';
		if (!p->healthy && p->ok_run >= p->healthy_threshold)
			p->healthy = true;
	} else {
		p->failures++;
		p->fail_run++;
		p->ok_run = 0;
		snprintf(p->last_error, sizeof(p->last_error), "%s", why);
		if (p->healthy && p->fail_run >= p->unhealthy_threshold)
			p->healthy = false;
	}
	if (was != p->healthy) {
		char a[16];

		log_info("dataplane: health check %s %s:%u: %s is now %s%s%s", hc_name(p->type),
			 dp_ip_str(p->dst, a), p->port, p->instance_url,
			 p->healthy ? "HEALTHY" : "UNHEALTHY", p->healthy ? "" : ": ",
			 p->healthy ? "" : why);
		emu_dataplane_changed(p->dp->emu); /* the load balancers' routes follow */
	}
	/* Every checkIntervalSec from the start of one probe to the start of the next. */
	{
		uint64_t spent = emu_now_ms() - p->started_ms;

		schedule(p, spent < p->interval_ms ? p->interval_ms - spent : 0);
	}
}

static void watch(struct probe *p, uint32_t events);

static bool is_http(const struct probe *p)
{
	return p->type == DP_HC_HTTP || p->type == DP_HC_HTTPS || p->type == DP_HC_HTTP2;
}

static bool is_tls(const struct probe *p)
{
	return p->type == DP_HC_SSL || p->type == DP_HC_HTTPS || p->type == DP_HC_HTTP2;
}

/* Moves the probe on as far as the socket allows. */
static void advance(struct probe *p)
{
	const char *why = "";
	int r;

	if (p->phase == CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			finish(p, false, strerror(err));
			return;
		}
		if (is_tls(p)) {
			p->ssl = SSL_new(p->dp->health->tls);
			if (!p->ssl || SSL_set_fd(p->ssl, p->fd) != 1) {
				finish(p, false, "TLS: out of memory");
				return;
			}
			SSL_set_connect_state(p->ssl);
			p->phase = HANDSHAKE;
		} else {
			p->phase = p->request ? SENDING : READING;
			if (!p->request && !p->response) {
				finish(p, true, ""); /* TCP: "a TCP connection is established" */
				return;
			}
		}
	}
	if (p->phase == HANDSHAKE) {
		r = SSL_do_handshake(p->ssl);
		if (r != 1) {
			int e = SSL_get_error(p->ssl, r);

			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				watch(p, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
				return;
			}
			finish(p, false, "TLS handshake failed");
			return;
		}
		p->phase = p->request ? SENDING : READING;
		if (!p->request && !p->response) {
			finish(p, true, ""); /* SSL: the handshake completed */
			return;
		}
	}
	while (p->phase == SENDING) {
		size_t left = strlen(p->request) - p->sent;
		ssize_t n;

		if (!left) {
			p->phase = READING;
			if (!p->response && !is_http(p)) {
				finish(p, true, "");
				return;
			}
			break;
		}
		if (p->ssl) {
			r = SSL_write(p->ssl, p->request + p->sent, (int)left);
			if (r <= 0) {
				int e = SSL_get_error(p->ssl, r);

				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
					watch(p, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
					return;
				}
				finish(p, false, "TLS write failed");
				return;
			}
			n = r;
		} else {
			n = send(p->fd, p->request + p->sent, left, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				watch(p, EPOLLOUT);
				return;
			}
			if (n < 0) {
				finish(p, false, strerror(errno));
				return;
			}
		}
		p->sent += (size_t)n;
	}
	while (p->phase == READING) {
		size_t room = sizeof(p->buf) - 1 - p->len;
		bool eof = false;
		ssize_t n = 0;
		int v;

		if (room) {
			if (p->ssl) {
				r = SSL_read(p->ssl, p->buf + p->len, (int)room);
				if (r <= 0) {
					int e = SSL_get_error(p->ssl, r);

					if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
						watch(p, e == SSL_ERROR_WANT_READ ? EPOLLIN
										  : EPOLLOUT);
						return;
					}
					eof = true;
				} else {
					n = r;
				}
			} else {
				n = recv(p->fd, p->buf + p->len, room, 0);
				if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
					watch(p, EPOLLIN);
					return;
				}
				eof = n <= 0;
			}
		}
		if (n > 0)
			p->len += (size_t)n;
		p->buf[p->len] = '\0';
		v = dp_probe_verdict(is_http(p), p->buf, p->len, p->len == sizeof(p->buf) - 1, eof,
				     p->response, &why);
		if (v >= 0) {
			finish(p, v == 1, why);
			return;
		}
		if (eof) {
			finish(p, false, "connection closed");
			return;
		}
	}
}

static void on_fd(struct emu *emu, int fd, uint32_t events, void *arg)
{
	(void)emu;
	(void)fd;
	(void)events;
	advance(arg);
}

static void watch(struct probe *p, uint32_t events)
{
	int r = p->watched ? emu_fd_modify(p->dp->emu, p->fd, events)
			   : emu_fd_watch(p->dp->emu, p->fd, events, on_fd, p);

	if (r < 0) {
		finish(p, false, "cannot watch the socket");
		return;
	}
	p->watched = true;
}

static void on_timeout(struct emu *emu, void *arg)
{
	struct probe *p = arg;

	(void)emu;
	p->timer = 0;
	finish(p, false, "timeout");
}

static void start(struct emu *emu, void *arg)
{
	struct probe *p = arg;
	struct emu_dataplane *dp = p->dp;
	struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
	int fd;

	(void)emu;
	p->timer = 0;
	p->started_ms = emu_now_ms();
	fd = dp_netns_socket(dp->vpc_fd, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		finish(p, false, "no socket");
		return;
	}
	p->fd = fd;
	/* A probe goes to one backend: the mark picks its table (dataplane.h). */
	setsockopt(fd, SOL_SOCKET, SO_MARK, &p->mark, sizeof(p->mark));
	src.sin_addr.s_addr = htonl(p->turn++ % 2 ? DP_PROBE_SRC_B : DP_PROBE_SRC_A);
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
		finish(p, false, strerror(errno));
		return;
	}
	dst.sin_addr.s_addr = htonl(p->dst);
	dst.sin_port = htons(p->port);
	p->timer = emu_timer_add(dp->emu, p->timeout_ms, on_timeout, p);
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS) {
		finish(p, false, strerror(errno));
		return;
	}
	p->phase = CONNECTING;
	watch(p, EPOLLOUT);
}

static void schedule(struct probe *p, uint64_t delay_ms)
{
	long t = emu_timer_add(p->dp->emu, delay_ms, start, p);

	p->timer = t > 0 ? t : 0;
}

static void probe_free(struct probe *p)
{
	probe_close(p);
	if (p->timer)
		emu_timer_cancel(p->dp->emu, p->timer);
	free(p->key);
	free(p->service_url);
	free(p->instance_url);
	free(p->request);
	free(p->response);
	free(p);
}

static struct probe *find(struct dp_health *h, const char *key)
{
	for (struct probe *p = h->probes; p; p = p->next)
		if (strcmp(p->key, key) == 0)
			return p;
	return NULL;
}

static struct probe *find_keyed(struct dp_health *h, const char *service_url,
				const char *instance_url)
{
	char *key = str_printf("%s|%s", service_url, instance_url);
	struct probe *p = key ? find(h, key) : NULL;

	free(key);
	return p;
}

static char *request_of(const struct dp_hc *hc, uint32_t dst, uint16_t port)
{
	char a[16];

	if (hc->type == DP_HC_HTTP || hc->type == DP_HC_HTTPS || hc->type == DP_HC_HTTP2) {
		if (hc->host)
			return str_printf(
			    "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: GoogleHC/1.0\r\n"
			    "Connection: close\r\n\r\n",
			    hc->path, hc->host);
		return str_printf("GET %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: GoogleHC/1.0\r\n"
				  "Connection: close\r\n\r\n",
				  hc->path, dp_ip_str(dst, a), port);
	}
	return hc->request && *hc->request ? strdup(hc->request) : NULL;
}

/* Makes (or updates) the probe of one backend; returns it. */
static struct probe *ensure(struct emu_dataplane *dp, const struct dp_rule *r,
			    const struct dp_hc *hc, const char *instance_url, uint32_t dst,
			    uint32_t mark, uint16_t port)
{
	struct dp_health *h = dp->health;
	char *key = str_printf("%s|%s", r->service_url, instance_url);
	uint64_t max = dp->emu->opt.dataplane_probe_max_ms;
	struct probe *p;

	if (!key)
		return NULL;
	p = find(h, key);
	if (p &&
	    (p->dst != dst || p->mark != mark || p->port != port || p->type != (int)hc->type)) {
		/* Probing something else now: a new check from scratch. */
		struct probe **pp = &h->probes;

		while (*pp != p)
			pp = &(*pp)->next;
		*pp = p->next;
		probe_free(p);
		p = NULL;
	}
	if (p) {
		free(key);
	} else {
		p = calloc(1, sizeof(*p));
		if (!p) {
			free(key);
			return NULL;
		}
		p->dp = dp;
		p->fd = -1;
		p->key = key;
		p->service_url = strdup(r->service_url);
		p->instance_url = strdup(instance_url);
		p->type = (int)hc->type;
		p->dst = dst;
		p->mark = mark;
		p->port = port;
		p->next = h->probes;
		h->probes = p;
		schedule(p, 0);
	}
	free(p->request);
	free(p->response);
	p->request = request_of(hc, dst, port);
	p->response = hc->response && *hc->response ? strdup(hc->response) : NULL;
	p->interval_ms = hc->interval_ms;
	p->timeout_ms = hc->timeout_ms;
	/* --dataplane-probe-max: the same checks, sooner (the thresholds still count probes). */
	if (max && p->interval_ms > max)
		p->interval_ms = (unsigned)max;
	if (max && p->timeout_ms > max)
		p->timeout_ms = (unsigned)max;
	p->healthy_threshold = hc->healthy;
	p->unhealthy_threshold = hc->unhealthy;
	p->keep = true;
	return p;
}

int dp_health_start(struct emu_dataplane *dp)
{
	dp->health = calloc(1, sizeof(*dp->health));
	if (!dp->health)
		return -ENOMEM;
	dp->health->tls = SSL_CTX_new(TLS_client_method());
	if (!dp->health->tls)
		return -ENOMEM;
	/* "Google Cloud health checks don't validate certificates." */
	SSL_CTX_set_verify(dp->health->tls, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_min_proto_version(dp->health->tls, TLS1_2_VERSION);
	return 0;
}

void dp_health_stop(struct emu_dataplane *dp)
{
	struct dp_health *h = dp->health;

	if (!h)
		return;
	while (h->probes) {
		struct probe *p = h->probes;

		h->probes = p->next;
		probe_free(p);
	}
	if (h->tls)
		SSL_CTX_free(h->tls);
	free(h);
	dp->health = NULL;
}

int dp_health_sync(struct emu_dataplane *dp, const struct dp_model *m)
{
	struct dp_health *h = dp->health;

	for (struct probe *p = h->probes; p; p = p->next)
		p->keep = false;
	for (size_t i = 0; i < m->nrules; i++) {
		const struct dp_rule *r = &m->rules[i];
		const struct dp_hc *hc = r->hc >= 0 ? &m->hcs[r->hc] : NULL;

		if (!hc)
			continue;
		for (size_t b = 0; b < r->nbackends; b++) {
			const struct dp_want_inst *w = &m->insts[r->backends[b].inst];
			struct dp_inst *in = dp_inst_find(dp, w->key);
			struct probe *p;

			if (!in || in->nsfd < 0 || !r->backends[b].port)
				continue;
			/* Several rules may share a backend service: the first one's address. */
			p = find_keyed(h, r->service_url, w->url);
			if (p && p->keep)
				continue;
			if (r->kind == DP_RULE_PROXY)
				ensure(dp, r, hc, w->url, w->ip, DP_MARK_NET(w->net),
				       r->backends[b].port);
			else
				ensure(dp, r, hc, w->url, r->ip, DP_MARK_PROBE(in->id),
				       r->backends[b].port);
		}
	}
	for (struct probe **pp = &h->probes; *pp;) {
		struct probe *p = *pp;

		if (p->keep) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		probe_free(p);
	}
	return 0;
}

int dp_health_state(struct emu_dataplane *dp, const char *service_url, const char *instance_url)
{
	struct probe *p = dp->health ? find_keyed(dp->health, service_url, instance_url) : NULL;

	return p ? p->healthy : -1;
}

json_t *dp_health_describe(struct emu_dataplane *dp)
{
	json_t *out = json_array();
	char a[16];

	for (struct probe *p = dp->health ? dp->health->probes : NULL; p; p = p->next)
		json_array_append_new(
		    out,
		    json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:b, s:I, s:I, s:s}", "service",
			      p->service_url, "instance", p->instance_url, "type", hc_name(p->type),
			      "destination", dp_ip_str(p->dst, a), "port", (int)p->port,
			      "healthState", p->healthy ? "HEALTHY" : "UNHEALTHY", "probed",
			      p->seen, "probes", (json_int_t)p->probes, "failures",
			      (json_int_t)p->failures, "lastError", p->last_error));
	return out;
}
