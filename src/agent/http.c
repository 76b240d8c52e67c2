/* SPDX-License-Identifier: Apache-2.0 */
#include "agent/http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool is_visible(char c)
{
	return c > 0x20 && c < 0x7f;
}

/* One line without its terminator; NULL when buf has no '\n'. */
static const char *line_end(const char *p, const char *end)
{
	return memchr(p, '\n', (size_t)(end - p));
}

int http_parse_request(const char *buf, size_t len, struct http_request *req)
{
	const char *end = buf + len, *p = buf, *eol, *sp, *target, *q;
	size_t n, tlen;

	memset(req, 0, sizeof(*req));
	/* Complete only once an empty line ends the headers. */
	for (const char *l = buf;;) {
		const char *e = line_end(l, end);

		if (!e)
			return len >= HTTP_MAX_REQUEST ? -E2BIG : -EAGAIN;
		if (e == l || (e == l + 1 && *l == '\r')) {
			if (l == buf)
				return -EINVAL; /* no request line */
			break;
		}
		l = e + 1;
	}
	if (len > HTTP_MAX_REQUEST)
		return -E2BIG;

	/* Request line: METHOD SP origin-form SP HTTP/1.x */
	eol = line_end(p, end);
	n = (size_t)(eol - p);
	if (n && p[n - 1] == '\r')
		n--;
	sp = memchr(p, ' ', n);
	if (!sp || sp == p || sp - p > 16)
		return -EINVAL;
	for (q = p; q < sp; q++)
		if (!is_upper(*q))
			return -EINVAL;
	if (sp - p == 3 && memcmp(p, "GET", 3) == 0)
		req->method = HTTP_GET;
	else if (sp - p == 4 && memcmp(p, "HEAD", 4) == 0)
		req->method = HTTP_HEAD;
	else
		req->method = HTTP_OTHER;
	target = sp + 1;
	sp = memchr(target, ' ', (size_t)(p + n - target));
	if (!sp || sp == target || *target != '/')
		return -EINVAL;
	for (q = target; q < sp; q++)
		if (!is_visible(*q))
			return -EINVAL;
	if ((size_t)(p + n - (sp + 1)) != 8 || memcmp(sp + 1, "HTTP/1.", 7) != 0 ||
	    (sp[8] != '0' && sp[8] != '1'))
		return -EINVAL;
	q = memchr(target, '?', (size_t)(sp - target));
	tlen = (size_t)((q ? q : sp) - target);
	if (tlen >= sizeof(req->path))
		return -ENAMETOOLONG;
	memcpy(req->path, target, tlen);
	req->path[tlen] = '\0';

	/* Headers: "name: value", no folding, visible characters, spaces and tabs only. */
	for (p = eol + 1;;) {
		const char *colon;

		eol = line_end(p, end);
		n = (size_t)(eol - p);
		if (n && p[n - 1] == '\r')
			n--;
		if (n == 0)
			break;
		colon = memchr(p, ':', n);
		if (!colon || colon == p || *p == ' ' || *p == '\t')
			return -EINVAL;
		for (q = p; q < colon; q++)
			if (!is_visible(*q))
				return -EINVAL;
		for (q = colon + 1; q < p + n; q++)
			if (!is_visible(*q) && *q != ' ' && *q != '\t')
				return -EINVAL;
		p = eol + 1;
	}
	return 0;
}

const char *vip_resync_reason_name(enum vip_resync_reason reason)
{
	static const char *const names[VIP_RESYNC_COUNT] = {
	    [VIP_RESYNC_STARTUP] = "startup", [VIP_RESYNC_TIMER] = "timer",
	    [VIP_RESYNC_SIGNAL] = "signal",   [VIP_RESYNC_ENOBUFS] = "enobufs",
	    [VIP_RESYNC_LINK] = "link",       [VIP_RESYNC_RETRY] = "retry",
	};

	return (unsigned)reason < VIP_RESYNC_COUNT ? names[reason] : "unknown";
}

struct out {
	char *buf;
	size_t size, len;
	bool full;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->size - o->len)
		o->full = true;
	else
		o->len += (size_t)n;
}

/* Prometheus label value: backslash, double quote and newline escaped. */
static void put_label(struct out *o, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			put(o, "\\%c", *v);
		else if (*v == '\n')
			put(o, "\\n");
		else
			put(o, "%c", *v);
	}
}

int vip_metrics_format(const struct vip_metrics *m, const struct vip_config *cfg, char *buf,
		       size_t size)
{
	struct out o = {buf, size, 0, false};
	char vip[CIDR_STRLEN];

	if (!size)
		return -ENOSPC;
	buf[0] = '\0';
	cidr_format(&cfg->vip, vip, sizeof(vip));
	put(&o,
	    "# HELP vip_alias_info The agent's configuration.\n"
	    "# TYPE vip_alias_info gauge\n"
	    "vip_alias_info{vip=\"%s\",interface=\"",
	    vip);
	put_label(&o, cfg->ifname);
	put(&o, "\",mode=\"%s\",ifa_proto=\"%s\",version=\"%s\"} 1\n", vip_mode_name(cfg->mode),
	    m->ifa_proto_supported ? "true" : "false", TALOS_GCP_VERSION);
	put(&o,
	    "# HELP vip_alias_vip_present 1 while the VIP is in place (address on the interface "
	    "and the link up, or the local route).\n"
	    "# TYPE vip_alias_vip_present gauge\n"
	    "vip_alias_vip_present %d\n",
	    m->present ? 1 : 0);
	put(&o, "# HELP vip_alias_restores_total Times the agent put the VIP back, by what had "
		"removed it.\n"
		"# TYPE vip_alias_restores_total counter\n");
	for (int c = VIP_CAUSE_NONE + 1; c < VIP_CAUSE_COUNT; c++)
		put(&o, "vip_alias_restores_total{cause=\"%s\"} %llu\n",
		    vip_cause_name((enum vip_cause)c), (unsigned long long)m->restores[c]);
	put(&o, "# HELP vip_alias_resyncs_total Full resyncs from the kernel's state, by reason.\n"
		"# TYPE vip_alias_resyncs_total counter\n");
	for (int r = 0; r < VIP_RESYNC_COUNT; r++)
		put(&o, "vip_alias_resyncs_total{reason=\"%s\"} %llu\n",
		    vip_resync_reason_name((enum vip_resync_reason)r),
		    (unsigned long long)m->resyncs[r]);
	put(&o,
	    "# HELP vip_alias_last_reconcile_timestamp_seconds When the agent last compared the "
	    "kernel's state with the desired one.\n"
	    "# TYPE vip_alias_last_reconcile_timestamp_seconds gauge\n"
	    "vip_alias_last_reconcile_timestamp_seconds %.3f\n",
	    m->last_reconcile);
	put(&o,
	    "# HELP vip_alias_netlink_errors_total Netlink requests the kernel refused and monitor "
	    "socket errors.\n"
	    "# TYPE vip_alias_netlink_errors_total counter\n"
	    "vip_alias_netlink_errors_total %llu\n",
	    (unsigned long long)m->netlink_errors);
	return o.full ? -ENOSPC : (int)o.len;
}

static int response(char *out, size_t size, int status, const char *reason, const char *extra,
		    const char *body, size_t body_len, bool head)
{
	struct out o = {out, size, 0, false};

	put(&o,
	    "HTTP/1.1 %d %s\r\nContent-Type: text/%s\r\nContent-Length: %zu\r\n%s"
	    "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
	    status, reason,
	    status == 200 && extra && strcmp(extra, "metrics") == 0
		? "plain; version=0.0.4; charset=utf-8"
		: "plain; charset=utf-8",
	    body_len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head && !o.full) {
		if (body_len >= o.size - o.len)
			return -ENOSPC;
		memcpy(out + o.len, body, body_len);
		o.len += body_len;
	}
	return o.full ? -ENOSPC : (int)o.len;
}

int http_respond(const char *reqbuf, size_t len, const struct vip_metrics *m,
		 const struct vip_config *cfg, char *out, size_t size)
{
	struct http_request req;
	char body[HTTP_MAX_RESPONSE - 256], vip[CIDR_STRLEN];
	bool head;
	int r, n;

	r = http_parse_request(reqbuf, len, &req);
	if (r == -EAGAIN)
		return 0;
	if (r == -E2BIG)
		return response(out, size, 431, "Request Header Fields Too Large", NULL,
				"request too large\n", 18, false);
	if (r == -ENAMETOOLONG)
		return response(out, size, 414, "URI Too Long", NULL, "path too long\n", 14, false);
	if (r < 0)
		return response(out, size, 400, "Bad Request", NULL, "bad request\n", 12, false);
	head = req.method == HTTP_HEAD;
	if (req.method == HTTP_OTHER)
		return response(out, size, 405, "Method Not Allowed", NULL, "GET or HEAD\n", 12,
				false);
	if (strcmp(req.path, "/healthz") == 0) {
		if (m->present)
			return response(out, size, 200, "OK", NULL, "ok\n", 3, head);
		n = snprintf(body, sizeof(body), "vip %s not in place\n",
			     cidr_format(&cfg->vip, vip, sizeof(vip)));
		return response(out, size, 503, "Service Unavailable", NULL, body, (size_t)n, head);
	}
	/*
	 * Liveness: the event loop answers. Whether the VIP is in place is /healthz (readiness):
	 * a VIP that cannot be placed is not cured by a restart.
	 */
	if (strcmp(req.path, "/livez") == 0)
		return response(out, size, 200, "OK", NULL, "alive\n", 6, head);
	if (strcmp(req.path, "/metrics") == 0) {
		n = vip_metrics_format(m, cfg, body, sizeof(body));
		if (n < 0)
			return n;
		return response(out, size, 200, "OK", "metrics", body, (size_t)n, head);
	}
	return response(out, size, 404, "Not Found", NULL, "not found\n", 10, head);
}
