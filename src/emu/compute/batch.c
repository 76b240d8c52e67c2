/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The batch endpoint, POST /batch/compute/v1, as gcloud and Google's client libraries use it
 * (https://cloud.google.com/compute/docs/api/how-tos/batch):
 *
 *   - "A batch request is a single standard HTTP request containing multiple Compute Engine
 *     API calls, using the multipart/mixed content type"; "Each part begins with its own
 *     Content-Type: application/http HTTP header. It can also have an optional Content-ID
 *     header"; "Each part's body is itself a complete HTTP request, with its own verb, URL,
 *     headers, and body", the URL being "only the path portion"; "All the inner requests
 *     must go to the same Google API"; "You're limited to 1000 calls in a single batch
 *     request";
 *   - the headers of the outer request, except Content-*, apply to every part unless the part
 *     has its own (core/subreq.c);
 *   - the answer is multipart/mixed, one application/http part per request in their order,
 *     each a complete HTTP response; "If a given part of the request had a Content-ID header,
 *     then the corresponding part of the response has a matching Content-ID header, with the
 *     original value preceded by the string response-".
 *
 * Parts run as sub-requests (core/subreq.h): the same faults, authentication and handlers as
 * requests of their own, counted one by one ("A set of n requests batched together counts
 * toward your usage limit as n requests"). A part that suspends (operations/wait, a delayed
 * fault) suspends the whole batch, which answers when its last part has; a part a fault
 * resets drops the batch's connection. Lines may end in CRLF or LF (gcloud's Python email
 * generator writes LF); the line break before a delimiter belongs to the delimiter
 * (RFC 2046 §5.1.1).
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "emu/compute/compute.h"
#include "emu/core/subreq.h"

#define BATCH_MAX    1000
#define BOUNDARY_MAX 70 /* RFC 2046 */
#define HEADERS_MAX  64 /* per part, and per inner request */

void batch_parts_free(struct batch_part *parts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(parts[i].content_id);
		free(parts[i].method);
		free(parts[i].target);
		for (size_t j = 0; j < parts[i].nheaders; j++)
			free(parts[i].headers[j]);
		free(parts[i].headers);
	}
	free(parts);
}

/* ---- parsing ---- */

static int fail_at(char *err, size_t errlen, size_t part, const char *what)
{
	if (part)
		snprintf(err, errlen, "part %zu: %s", part, what);
	else
		snprintf(err, errlen, "%s", what);
	return -EINVAL;
}

/* The boundary of "multipart/mixed; boundary=..." (a token or a quoted string). */
static int parse_content_type(const char *ct, char *boundary, size_t len)
{
	const char *p = ct ? ct : "";
	size_t n = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "multipart/mixed", 15) != 0)
		return -EINVAL;
	p += 15;
	boundary[0] = '\0';
	while (*p) {
		const char *name;
		size_t nlen;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ';')
			return -EINVAL;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		name = p;
		while (*p && *p != '=' && *p != ';' && *p != ' ')
			p++;
		nlen = (size_t)(p - name);
		if (*p != '=')
			return -EINVAL;
		p++;
		n = 0;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				if (n + 1 >= len)
					return -EINVAL;
				if (nlen == 8 && strncasecmp(name, "boundary", 8) == 0)
					boundary[n++] = *p;
			}
			if (*p != '"')
				return -EINVAL;
			p++;
		} else {
			for (; *p && *p != ';' && *p != ' ' && *p != '\t'; p++) {
				if (n + 1 >= len)
					return -EINVAL;
				if (nlen == 8 && strncasecmp(name, "boundary", 8) == 0)
					boundary[n++] = *p;
			}
		}
		if (nlen == 8 && strncasecmp(name, "boundary", 8) == 0)
			boundary[n] = '\0';
	}
	n = strlen(boundary);
	if (n == 0 || n > BOUNDARY_MAX || boundary[n - 1] == ' ')
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)boundary[i] < 0x20 || (unsigned char)boundary[i] > 0x7e)
			return -EINVAL;
	return 0;
}

/* The end of the line at p (its terminator excluded) and the start of the next one. */
static const char *line_end(const char *p, const char *end, const char **next)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	if (!nl) {
		*next = end;
		return end;
	}
	*next = nl + 1;
	return nl > p && nl[-1] == '\r' ? nl - 1 : nl;
}

/*
 * Is there a delimiter line "--boundary" starting at p (a line start)? *close tells "--" after
 * it; *next is the line after it. Transport padding (spaces, tabs) may follow.
 */
static bool delimiter_at(const char *p, const char *end, const char *b, size_t blen, bool *close,
			 const char **next)
{
	const char *q = p + 2 + blen, *eol;

	if ((size_t)(end - p) < 2 + blen || p[0] != '-' || p[1] != '-' ||
	    memcmp(p + 2, b, blen) != 0)
		return false;
	*close = (size_t)(end - q) >= 2 && q[0] == '-' && q[1] == '-';
	if (*close)
		q += 2;
	eol = line_end(q, end, next);
	while (q < eol && (*q == ' ' || *q == '\t'))
		q++;
	return q == eol;
}

/* Header lines until an empty line, unfolded, as "Name: value". *p moves past them. */
static int parse_headers(const char **p, const char *end, char ***out, size_t *n, size_t part,
			 char *err, size_t errlen)
{
	const char *next;

	while (*p < end) {
		const char *eol = line_end(*p, end, &next), *colon;

		if (eol == *p) {
			*p = next;
			return 0;
		}
		if ((**p == ' ' || **p == '\t') && *n) {
			/* A folded line continues the previous header. */
			char *joined = str_printf("%s %.*s", (*out)[*n - 1], (int)(eol - *p), *p);

			if (!joined)
				return -ENOMEM;
			free((*out)[*n - 1]);
			(*out)[*n - 1] = joined;
		} else {
			char **grown;

			colon = memchr(*p, ':', (size_t)(eol - *p));
			if (!colon || colon == *p)
				return fail_at(err, errlen, part, "a header line without a name");
			if (*n == HEADERS_MAX)
				return fail_at(err, errlen, part, "too many header lines");
			grown = realloc(*out, (*n + 1) * sizeof(char *));
			if (!grown)
				return -ENOMEM;
			*out = grown;
			(*out)[*n] = strndup(*p, (size_t)(eol - *p));
			if (!(*out)[*n])
				return -ENOMEM;
			(*n)++;
		}
		*p = next;
	}
	return 0;
}

/* The value of header name in "Name: value" lines, spaces trimmed; NULL if absent. */
static const char *header_value(char *const *h, size_t n, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < n; i++) {
		if (strncasecmp(h[i], name, len) == 0 && h[i][len] == ':') {
			const char *v = h[i] + len + 1;

			while (*v == ' ' || *v == '\t')
				v++;
			return v;
		}
	}
	return NULL;
}

/* One part: its MIME headers, then the HTTP request it holds. */
static int parse_part(const char *p, const char *end, size_t index, struct batch_part *out,
		      char *err, size_t errlen)
{
	char **mime = NULL;
	size_t nmime = 0, tlen;
	const char *ct, *cte, *cid, *next, *eol, *sp1, *sp2, *cl;
	int ret;

	ret = parse_headers(&p, end, &mime, &nmime, index, err, errlen);
	if (ret < 0)
		goto cleanup;
	ct = header_value(mime, nmime, "Content-Type");
	if (!ct || strncasecmp(ct, "application/http", 16) != 0 ||
	    (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
		ret =
		    fail_at(err, errlen, index, "the part's Content-Type is not application/http");
		goto cleanup;
	}
	cte = header_value(mime, nmime, "Content-Transfer-Encoding");
	if (cte && strcasecmp(cte, "binary") != 0 && strcasecmp(cte, "7bit") != 0 &&
	    strcasecmp(cte, "8bit") != 0) {
		ret = fail_at(err, errlen, index, "unsupported Content-Transfer-Encoding");
		goto cleanup;
	}
	cid = header_value(mime, nmime, "Content-ID");
	if (cid) {
		size_t n = strlen(cid);

		while (n && (cid[n - 1] == ' ' || cid[n - 1] == '\t'))
			n--;
		if (n >= 2 && cid[0] == '<' && cid[n - 1] == '>') {
			cid++;
			n -= 2;
		}
		out->content_id = strndup(cid, n);
		if (!out->content_id) {
			ret = -ENOMEM;
			goto cleanup;
		}
	}
	/* The request line: METHOD SP path [SP HTTP/1.x] (the docs' examples omit the version). */
	while (p < end && line_end(p, end, &next) == p)
		p = next;
	eol = line_end(p, end, &next);
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	if (!sp1 || sp1 == p) {
		ret = fail_at(err, errlen, index, "no request line (METHOD PATH HTTP/1.1)");
		goto cleanup;
	}
	for (const char *m = p; m < sp1; m++)
		if (*m < 'A' || *m > 'Z') {
			ret =
			    fail_at(err, errlen, index, "the request line's method is not a token");
			goto cleanup;
		}
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	tlen = (size_t)((sp2 ? sp2 : eol) - sp1 - 1);
	if (sp2 && !((size_t)(eol - sp2 - 1) == 8 && (memcmp(sp2 + 1, "HTTP/1.1", 8) == 0 ||
						      memcmp(sp2 + 1, "HTTP/1.0", 8) == 0))) {
		ret = fail_at(err, errlen, index, "the request line's version is not HTTP/1.1");
		goto cleanup;
	}
	if (tlen == 0 || sp1[1] != '/' || memchr(sp1 + 1, '\0', tlen)) {
		ret = fail_at(err, errlen, index,
			      "the request has no path (a batch holds paths, not full URLs)");
		goto cleanup;
	}
	out->method = strndup(p, (size_t)(sp1 - p));
	out->target = strndup(sp1 + 1, tlen);
	if (!out->method || !out->target) {
		ret = -ENOMEM;
		goto cleanup;
	}
	p = next;
	ret = parse_headers(&p, end, &out->headers, &out->nheaders, index, err, errlen);
	if (ret < 0)
		goto cleanup;
	out->body = p;
	out->body_len = (size_t)(end - p);
	cl = header_value(out->headers, out->nheaders, "Content-Length");
	if (cl) {
		char *e;
		unsigned long long v = strtoull(cl, &e, 10);

		while (*e == ' ' || *e == '\t')
			e++;
		if (*cl < '0' || *cl > '9' || *e || v > out->body_len) {
			ret = fail_at(err, errlen, index,
				      "the request's Content-Length does not fit the part");
			goto cleanup;
		}
		out->body_len = (size_t)v;
	}
	ret = 0;
cleanup:
	for (size_t i = 0; i < nmime; i++)
		free(mime[i]);
	free(mime);
	return ret;
}

int batch_parse(const char *content_type, const char *body, size_t len, struct batch_part **out,
		size_t *nout, char *err, size_t errlen)
{
	char boundary[BOUNDARY_MAX + 2];
	const char *p = body, *end = body + len, *next;
	struct batch_part *parts = NULL;
	size_t n = 0, blen;
	bool close = false;
	int ret;

	*out = NULL;
	*nout = 0;
	if (parse_content_type(content_type, boundary, sizeof(boundary)) < 0)
		return fail_at(err, errlen, 0,
			       "the Content-Type must be multipart/mixed with a boundary");
	blen = strlen(boundary);
	/* The first delimiter; a preamble before it is ignored. */
	for (;;) {
		if (p >= end)
			return fail_at(err, errlen, 0, "no multipart delimiter in the body");
		if (delimiter_at(p, end, boundary, blen, &close, &next))
			break;
		line_end(p, end, &p);
	}
	while (!close) {
		const char *start = next, *q = next, *stop = NULL;
		struct batch_part *grown;

		/* The part ends at the next delimiter line; the line break before it is its own. */
		for (p = start; p < end; p = q) {
			line_end(p, end, &q);
			if (p > start && delimiter_at(p, end, boundary, blen, &close, &next)) {
				stop = p - 1;
				if (stop > start && stop[-1] == '\r')
					stop--;
				break;
			}
		}
		if (!stop) {
			ret = fail_at(err, errlen, 0, "the body ends before the closing delimiter");
			goto fail;
		}
		if (n == BATCH_MAX) {
			ret = fail_at(err, errlen, 0, "a batch request is limited to 1000 calls");
			goto fail;
		}
		grown = realloc(parts, (n + 1) * sizeof(*parts));
		if (!grown) {
			ret = -ENOMEM;
			goto fail;
		}
		parts = grown;
		memset(&parts[n], 0, sizeof(parts[n]));
		n++;
		ret = parse_part(start, stop, n, &parts[n - 1], err, errlen);
		if (ret < 0)
			goto fail;
	}
	if (n == 0)
		return fail_at(err, errlen, 0, "the batch holds no request");
	*out = parts;
	*nout = n;
	return 0;
fail:
	if (ret == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	batch_parts_free(parts, n);
	return ret;
}

/* ---- running ---- */

struct batch {
	struct emu_request *req;
	struct batch_part *parts;
	struct emu_request **subs;
	size_t n, pending;
	bool starting; /* still running its parts: an end does not wake it */
	bool reset;
};

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; b->subs && i < b->n; i++)
		emu_subreq_free(b->subs[i]);
	free(b->subs);
	batch_parts_free(b->parts, b->n);
	free(b);
}

/* Appends text to a growing buffer; -ENOMEM leaves it as it was. */
struct buf {
	char *p;
	size_t len, cap;
};

static int put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 4096;
		char *np;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		np = realloc(b->p, ncap);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int putf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int putf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n, ret;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	ret = put(b, s, (size_t)n);
	free(s);
	return ret;
}

/* A boundary that none of the answers contains. */
static void new_boundary(const struct batch *b, char *out, size_t len)
{
	for (int attempt = 0; attempt < 8; attempt++) {
		uint8_t raw[18];
		char *text;
		bool clash = false;

		random_bytes(raw, sizeof(raw));
		text = b64_encode(raw, sizeof(raw), true, false);
		snprintf(out, len, "batch_%s", text ? text : "0123456789abcdef");
		free(text);
		for (size_t i = 0; i < b->n && !clash; i++) {
			size_t blen;
			const char *body = emu_subreq_body(b->subs[i], &blen);

			clash = memmem(body, blen, out, strlen(out)) != NULL;
		}
		if (!clash)
			return;
	}
}

static int batch_reply(struct batch *b)
{
	struct emu_request *req = b->req;
	struct buf out = {0};
	char boundary[64], ct[96];
	int ret = 0;

	new_boundary(b, boundary, sizeof(boundary));
	for (size_t i = 0; i < b->n && ret == 0; i++) {
		struct emu_request *sub = b->subs[i];
		unsigned status = emu_subreq_status(sub);
		const char *type = emu_subreq_content_type(sub), *name, *body;
		json_t *v;
		size_t blen;

		body = emu_subreq_body(sub, &blen);
		ret = putf(&out, "--%s\r\nContent-Type: application/http\r\n", boundary);
		if (ret == 0 && b->parts[i].content_id)
			ret = putf(&out, "Content-ID: <response-%s>\r\n", b->parts[i].content_id);
		/* The reason phrase: clients split the status line in three. */
		if (ret == 0)
			ret = putf(&out, "\r\nHTTP/1.1 %u %s\r\n", status,
				   MHD_get_reason_phrase_for(status));
		if (ret == 0 && type)
			ret = putf(&out, "Content-Type: %s\r\n", type);
		json_object_foreach(emu_subreq_reply_headers(sub), name, v) if (ret == 0) ret =
		    putf(&out, "%s: %s\r\n", name, json_string_value(v) ?: "");
		if (ret == 0)
			ret = putf(&out, "Content-Length: %zu\r\n\r\n", blen);
		if (ret == 0)
			ret = put(&out, body, blen);
		if (ret == 0)
			ret = put(&out, "\r\n", 2);
	}
	if (ret == 0)
		ret = putf(&out, "--%s--\r\n", boundary);
	if (ret < 0) {
		free(out.p);
		return emu_reply(req, 500, "text/plain", "out of memory\n", 14);
	}
	snprintf(ct, sizeof(ct), "multipart/mixed; boundary=%s", boundary);
	ret = emu_reply(req, 200, ct, out.p ? out.p : "", out.len);
	free(out.p);
	return ret;
}

static void part_done(struct emu_request *sub, void *arg)
{
	struct batch *b = arg;

	if (emu_subreq_status(sub) == 0)
		b->reset = true;
	/* The last one wakes the batch, unless it is still starting its parts. */
	if (--b->pending == 0 && !b->starting)
		emu_request_resume(b->req);
}

static int batch_resume(struct emu_request *req)
{
	struct batch *b = req->handler_data;

	if (b->reset) {
		req->reset_connection = true;
		return 0;
	}
	return batch_reply(b);
}

static void batch_close(struct emu_request *req)
{
	batch_free(req->handler_data);
	req->handler_data = NULL;
}

static int fail_batch(struct emu_request *req, unsigned status, const char *reason,
		      const char *what)
{
	struct api_error e;

	api_fail(&e, status, reason, "Invalid batch request: %s.", what);
	return api_reply_error(req, &e);
}

int emu_compute_batch(struct emu_request *req)
{
	struct batch *b;
	char err[256];
	int ret;

	if (req->sub) /* no batch inside a batch */
		return fail_batch(req, 400, "invalid", "a batch cannot hold a batch");
	if (strcmp(req->method, "POST") != 0)
		return fail_batch(req, 405, "httpMethodNotAllowed", "a batch is a POST");
	b = calloc(1, sizeof(*b));
	if (!b)
		return emu_reply(req, 500, "text/plain", "out of memory\n", 14);
	b->req = req;
	ret = batch_parse(emu_request_header(req, "Content-Type"), req->body, req->body_len,
			  &b->parts, &b->n, err, sizeof(err));
	if (ret < 0) {
		batch_free(b);
		if (ret == -ENOMEM)
			return emu_reply(req, 500, "text/plain", "out of memory\n", 14);
		return fail_batch(req, 400, "invalid", err);
	}
	b->subs = calloc(b->n, sizeof(*b->subs));
	for (size_t i = 0; b->subs && i < b->n; i++) {
		struct batch_part *pt = &b->parts[i];

		b->subs[i] =
		    emu_subreq_new(req, pt->method, pt->target, (const char *const *)pt->headers,
				   pt->nheaders, pt->body, pt->body_len, part_done, b);
		if (!b->subs[i]) {
			snprintf(err, sizeof(err), "part %zu: the path is not valid", i + 1);
			batch_free(b);
			return fail_batch(req, 400, "invalid", err);
		}
		/* "All the inner requests must go to the same Google API." */
		if (strncmp(b->subs[i]->path, COMPUTE_PREFIX, strlen(COMPUTE_PREFIX)) != 0) {
			snprintf(err, sizeof(err),
				 "part %zu: '%.100s' is not a Compute Engine v1 path (%s...)",
				 i + 1, b->subs[i]->path, COMPUTE_PREFIX);
			utf8_scrub(err);
			batch_free(b);
			return fail_batch(req, 400, "invalid", err);
		}
	}
	if (!b->subs) {
		batch_free(b);
		return emu_reply(req, 500, "text/plain", "out of memory\n", 14);
	}
	req->handler_data = b;
	req->on_resume = batch_resume;
	req->on_close = batch_close;
	b->pending = b->n;
	b->starting = true;
	for (size_t i = 0; i < b->n; i++)
		emu_subreq_run(b->subs[i]);
	b->starting = false;
	/* Every part answered at once (no part resumes before the loop runs again). */
	if (b->pending == 0)
		return batch_resume(req);
	emu_request_suspend(req);
	return 0;
}
