/* SPDX-License-Identifier: Apache-2.0 */
/* Internal sub-requests (see subreq.h). */
#include "emu/core/subreq.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/str.h"

struct emu_subreq {
	struct emu_request *outer;
	char *method, *path;
	char **query; /* key, value, key, value ... (decoded) */
	size_t nquery;
	char **headers; /* name, value, ... */
	size_t nheaders;
	emu_subreq_done_fn done;
	void *done_arg;
	long resume_timer;
	bool finished;
	/* the reply */
	unsigned status;
	char *content_type;
	char *body;
	size_t len;
};

static struct emu_subreq *sub_of(const struct emu_request *req)
{
	return req->sub;
}

/* Percent-decoding as libmicrohttpd does it (and '+' as a space in the query). */
static char *decode(const char *s, size_t n, bool plus, bool *nul)
{
	char *out = strndup(s, n);
	size_t len;

	if (!out)
		return NULL;
	if (plus)
		for (char *p = out; *p; p++)
			if (*p == '+')
				*p = ' ';
	len = MHD_http_unescape(out);
	*nul = len != strlen(out);
	return out;
}

static int push_pair(char ***list, size_t *n, char *k, char *v)
{
	char **nl = realloc(*list, (*n + 2) * sizeof(char *));

	if (!nl || !k || !v) {
		if (nl)
			*list = nl;
		free(k);
		free(v);
		return -ENOMEM;
	}
	*list = nl;
	nl[(*n)++] = k;
	nl[(*n)++] = v;
	return 0;
}

static int parse_query(struct emu_subreq *s, const char *q)
{
	while (q && *q) {
		const char *amp = strchr(q, '&'), *eq;
		size_t n = amp ? (size_t)(amp - q) : strlen(q);
		bool nul;

		eq = memchr(q, '=', n);
		/* A key without '=' has no value: lookups find nothing, as with MHD. */
		if (eq && push_pair(&s->query, &s->nquery, decode(q, (size_t)(eq - q), true, &nul),
				    decode(eq + 1, n - (size_t)(eq - q) - 1, true, &nul)) < 0)
			return -ENOMEM;
		q = amp ? amp + 1 : NULL;
	}
	return 0;
}

static void sub_release(struct emu_subreq *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nquery; i++)
		free(s->query[i]);
	for (size_t i = 0; i < s->nheaders; i++)
		free(s->headers[i]);
	free(s->query);
	free(s->headers);
	free(s->method);
	free(s->path);
	free(s->content_type);
	free(s->body);
	free(s);
}

struct emu_request *emu_subreq_new(struct emu_request *outer, const char *method,
				   const char *target, const char *const *headers, size_t nheaders,
				   const char *body, size_t body_len, emu_subreq_done_fn done,
				   void *arg)
{
	struct emu_request *req = calloc(1, sizeof(*req));
	struct emu_subreq *s = calloc(1, sizeof(*s));
	const char *q = strchr(target, '?');
	bool nul = false;

	if (!req || !s || target[0] != '/')
		goto fail;
	s->outer = outer;
	s->done = done;
	s->done_arg = arg;
	s->method = strdup(method);
	s->path = decode(target, q ? (size_t)(q - target) : strlen(target), false, &nul);
	if (!s->method || !s->path || nul || parse_query(s, q ? q + 1 : NULL) < 0)
		goto fail;
	for (size_t i = 0; i < nheaders; i++) {
		const char *colon = strchr(headers[i], ':'), *v;

		if (!colon)
			continue;
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		if (push_pair(&s->headers, &s->nheaders,
			      strndup(headers[i], (size_t)(colon - headers[i])), strdup(v)) < 0)
			goto fail;
	}
	req->body = malloc(body_len + 1);
	if (!req->body)
		goto fail;
	memcpy(req->body, body, body_len);
	req->body[body_len] = '\0';
	req->body_len = body_len;
	req->emu = outer->emu;
	req->port = outer->port;
	req->method = s->method;
	req->path = s->path;
	req->sub = s;
	return req;
fail:
	sub_release(s);
	if (req)
		free(req->body);
	free(req);
	return NULL;
}

/* The end of a handler's turn: a request left without a reply gets one, as httpd does. */
static void settle(struct emu_request *req)
{
	struct emu_subreq *s = sub_of(req);

	if (req->responded || req->suspended || s->finished)
		return;
	if (req->reset_connection) {
		s->finished = true;
		s->status = 0;
		s->done(req, s->done_arg);
		return;
	}
	emu_subreq_reply(req, 500, "text/plain", "no reply\n", 9);
}

void emu_subreq_run(struct emu_request *req)
{
	req->emu->requests_total++;
	if (!emu_faults_intercept(req))
		emu_request_dispatch(req);
	settle(req);
}

const char *emu_subreq_query(const struct emu_request *req, const char *key)
{
	const struct emu_subreq *s = sub_of(req);

	for (size_t i = 0; i < s->nquery; i += 2)
		if (strcmp(s->query[i], key) == 0)
			return s->query[i + 1];
	return NULL;
}

const char *emu_subreq_header(const struct emu_request *req, const char *name)
{
	const struct emu_subreq *s = sub_of(req);

	for (size_t i = 0; i < s->nheaders; i += 2)
		if (strcasecmp(s->headers[i], name) == 0)
			return s->headers[i + 1];
	/*
	 * "The HTTP headers for the outer batch request, except for the Content- headers such as
	 * Content-Type, apply to every request in the batch"
	 * (https://cloud.google.com/compute/docs/api/how-tos/batch).
	 */
	if (strncasecmp(name, "Content-", 8) == 0)
		return NULL;
	return emu_request_header(s->outer, name);
}

int emu_subreq_reply(struct emu_request *req, unsigned status, const char *content_type,
		     const void *body, size_t len)
{
	struct emu_subreq *s = sub_of(req);

	if (req->responded || s->finished)
		return -EALREADY;
	s->body = malloc(len + 1);
	s->content_type = content_type ? strdup(content_type) : NULL;
	if (!s->body || (content_type && !s->content_type))
		return -ENOMEM;
	memcpy(s->body, body, len);
	s->body[len] = '\0';
	s->len = len;
	s->status = status;
	req->responded = true;
	s->finished = true;
	s->done(req, s->done_arg);
	return 0;
}

void emu_subreq_suspend(struct emu_request *req)
{
	req->suspended = true;
}

static void resume_now(struct emu *emu, void *arg)
{
	struct emu_request *req = arg;

	(void)emu;
	sub_of(req)->resume_timer = 0;
	req->resumed = false;
	if (req->on_resume && !req->responded)
		req->on_resume(req);
	settle(req);
}

void emu_subreq_resume(struct emu_request *req)
{
	struct emu_subreq *s = sub_of(req);
	long t;

	if (!req->suspended || s->resume_timer)
		return;
	req->suspended = false;
	req->resumed = true;
	/* From the loop, as a connection's resume is: the caller may be deep in a handler. */
	t = emu_timer_add(req->emu, 0, resume_now, req);
	if (t > 0) {
		s->resume_timer = t;
		return;
	}
	/* No timer to be had: the request ends now rather than never. */
	req->on_resume = NULL;
	emu_subreq_reply(req, 503, "text/plain", "cannot resume\n", 14);
}

unsigned emu_subreq_status(const struct emu_request *req)
{
	return sub_of(req)->status;
}

const char *emu_subreq_content_type(const struct emu_request *req)
{
	return sub_of(req)->content_type;
}

const char *emu_subreq_body(const struct emu_request *req, size_t *len)
{
	*len = sub_of(req)->len;
	return sub_of(req)->body ? sub_of(req)->body : "";
}

json_t *emu_subreq_reply_headers(const struct emu_request *req)
{
	return req->reply_headers;
}

void emu_subreq_free(struct emu_request *req)
{
	struct emu_subreq *s;

	if (!req)
		return;
	s = sub_of(req);
	if (s->resume_timer)
		emu_timer_cancel(req->emu, s->resume_timer);
	if (req->on_close)
		req->on_close(req);
	json_decref(req->reply_headers);
	json_decref(req->groups);
	free(req->user);
	free(req->body);
	sub_release(s);
	free(req);
}
