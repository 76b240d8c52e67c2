/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/json_stream.h"
#include "common/log.h"
#include "common/str.h"

#define WATCH_DEFAULT_TIMEOUT_S 300
#define WATCH_LINE_MAX          (16 << 20)
#define MAX_PAGES               1000000

struct kube_client {
	struct http_client *http;
	char *server;
	char *token;
	char *token_file;
};

/* http_token_fn: the kubeconfig's token; re-read from its file when the server says 401. */
static int kube_token(void *arg, bool refresh, const char **token, struct error *err)
{
	struct kube_client *c = arg;

	if (refresh && c->token_file) {
		char *buf = NULL, *s;
		size_t len = 0, n;
		int ret;

		ret = file_read_all(c->token_file, 1 << 20, &buf, &len);
		if (ret < 0)
			return error_set(err, -ret, "token file %s: %s", c->token_file,
					 strerror(-ret));
		for (s = buf; *s == ' ' || *s == '\n' || *s == '\r' || *s == '\t'; s++)
			;
		n = strcspn(s, " \r\n\t");
		if (n == 0) {
			free_secret(buf, len);
			return error_set(err, EINVAL, "token file %s: empty", c->token_file);
		}
		free_secret_str(c->token);
		c->token = strndup(s, n);
		free_secret(buf, len);
		if (!c->token)
			return error_set(err, ENOMEM, "out of memory");
		log_debug("kube: re-read the token from %s", c->token_file);
	}
	*token = c->token;
	return 0;
}

int kube_client_new(const struct kube_config *cfg, const struct http_options *http,
		    struct kube_client **out, struct error *err)
{
	struct http_options hopt = {0};
	struct http_url_info info;
	struct kube_client *c;
	int ret;

	if (!cfg || !cfg->server)
		return error_set(err, EINVAL, "kube client: no server");
	ret = http_url_check(cfg->server, "kube server", 0, &info, err);
	if (ret < 0)
		return ret;
	c = calloc(1, sizeof(*c));
	if (!c)
		return error_set(err, ENOMEM, "out of memory");
	c->server = strdup(cfg->server);
	if (!c->server || (cfg->token && !(c->token = strdup(cfg->token))) ||
	    (cfg->token_file && !(c->token_file = strdup(cfg->token_file)))) {
		ret = error_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	if (http)
		hopt = *http;
	memset(&hopt.tls, 0, sizeof(hopt.tls));
	hopt.tls.ca_pem = cfg->ca_pem;
	hopt.tls.ca_pem_len = cfg->ca_pem_len;
	hopt.tls.cert_pem = cfg->cert_pem;
	hopt.tls.cert_pem_len = cfg->cert_pem_len;
	hopt.tls.key_pem = cfg->key_pem;
	hopt.tls.key_pem_len = cfg->key_pem_len;
	hopt.tls.insecure_skip_verify = cfg->insecure_skip_tls_verify;
	hopt.token = (c->token || c->token_file) ? kube_token : NULL;
	hopt.token_arg = c;
	hopt.retry_response = NULL;
	hopt.headers = (const char *const *)cfg->headers;
	hopt.proxy = cfg->proxy_url;
	if (!info.https && hopt.token && !info.loopback) {
		ret =
		    error_set(err, EINVAL,
			      "kube server %s: plain http:// would send the bearer token in clear "
			      "(only loopback may use it: 127.0.0.0/8, [::1], localhost)",
			      cfg->server);
		goto fail;
	}
	if (cfg->impersonate_user)
		log_debug("kube: impersonating %s (%s)", cfg->impersonate_user,
			  cfg->source ? cfg->source : "kubeconfig");
	if (cfg->insecure_skip_tls_verify)
		log_warn("kube: TLS certificate verification is off for %s "
			 "(insecure-skip-tls-verify in %s)",
			 cfg->server, cfg->source ? cfg->source : "the kubeconfig");
	ret = http_client_new(&hopt, &c->http, err);
	if (ret < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	kube_client_free(c);
	return ret;
}

void kube_client_free(struct kube_client *c)
{
	if (!c)
		return;
	http_client_free(c->http);
	free(c->server);
	free_secret_str(c->token);
	free(c->token_file);
	free(c);
}

const char *kube_client_server(const struct kube_client *c)
{
	return c->server;
}

const struct http_client *kube_client_http(const struct kube_client *c)
{
	return c->http;
}

void kube_client_stats(const struct kube_client *c, struct http_stats *out)
{
	http_client_stats(c->http, out);
}

int kube_status_error(long status, const char *body, size_t len, const char *what,
		      struct error *err)
{
	const char *msg = NULL, *reason = NULL;
	json_t *root = NULL, *causes, *cause;
	char extra[300] = "";
	int64_t code = 0;
	size_t i, o = 0;
	int ret;

	if (!what)
		what = "request";
	if (body && len && json_parse(body, len, NULL, &root, NULL) == 0 && json_is_object(root)) {
		msg = json_str(root, "message");
		reason = json_str(root, "reason");
		if (json_path_int64(root, "code", &code) == 0 && status < 400 && code >= 400)
			status = (long)code; /* a Status inside a watch ERROR event */
		/* When the message does not carry the causes, add them (422 Invalid). */
		causes = json_path(root, "details.causes");
		json_array_foreach(causes, i, cause)
		{
			const char *field = json_str(cause, "field"),
				   *cm = json_str(cause, "message");
			int n;

			if (!cm || (msg && strstr(msg, cm)) || o + 4 >= sizeof(extra))
				continue;
			n = snprintf(extra + o, sizeof(extra) - o, "%s%s%s%s", o ? "; " : ": ",
				     field ? field : "", field ? ": " : "", cm);
			if (n < 0 || (size_t)n >= sizeof(extra) - o)
				break;
			o += (size_t)n;
		}
	}
	ret = http_status_errno(status);
	if (ret == 0)
		ret = -EBADMSG;
	if (status == 409)
		ret = reason && !strcmp(reason, "AlreadyExists") ? -EEXIST : -ESTALE;
	else if (status == 405 || status == 415)
		ret = -EOPNOTSUPP;
	else if (status == 410)
		ret = -EKEYEXPIRED;
	if (root && (msg || reason))
		error_set(err, -ret, "%.300s%s (%ld %s; %s)", msg ? msg : reason, extra, status,
			  reason ? reason : "error", what);
	else
		http_status_error(status, body, len, what, -ret, err);
	json_decref(root);
	return ret;
}

static int make_url(struct kube_client *c, const char *path, char **out, struct error *err)
{
	if (!path || path[0] != '/' || strpbrk(path, " \t\r\n#"))
		return error_set(err, EINVAL, "\"%s\": not an API path", path ? path : "");
	if (asprintf(out, "%s%s", c->server, path) < 0)
		return error_set(err, ENOMEM, "out of memory");
	return 0;
}

int kube_request(struct kube_client *c, const char *method, const char *path,
		 const char *content_type, const json_t *body, json_t **out, struct error *err)
{
	char *url = NULL;
	int ret;

	ret = make_url(c, path, &url, err);
	if (ret < 0)
		return ret;
	ret = http_call_json(
	    c->http,
	    &(struct http_request){.method = method, .url = url, .content_type = content_type},
	    body, kube_status_error, out, err);
	free(url);
	return ret;
}

struct list_items {
	kube_item_fn fn;
	void *arg;
};

static int list_item(void *arg, json_t *item, const struct json_stream_at *at)
{
	struct list_items *li = arg;

	(void)at;
	return li->fn(li->arg, item);
}

struct streamed {
	struct json_stream *js;
	int ret; /* the reader's non-zero answer, which stopped the transfer */
};

static int streamed_data(void *arg, const char *data, size_t len)
{
	struct streamed *st = arg;

	st->ret = json_stream_feed(st->js, data, len);
	return st->ret ? -ECANCELED : 0;
}

/*
 * GET url with the body parsed as it arrives: nothing of a 40 MB list is kept but the
 * fields asked for, and parsing overlaps the transfer. Once bytes were handed over the
 * request is not retried (the items went to the caller already).
 */
static int get_streamed(struct kube_client *c, const char *url, const char *what,
			const struct json_stream_options *sopt, struct list_items *li,
			json_t **page, struct error *err)
{
	struct streamed st = {0};
	struct http_response resp;
	int ret;

	st.js = json_stream_new(what, sopt, list_item, li, err);
	if (!st.js)
		return err && err->code ? -err->code : -ENOMEM;
	ret = http_call(
	    c->http,
	    &(struct http_request){.url = url, .on_data = streamed_data, .on_data_arg = &st}, NULL,
	    kube_status_error, &resp, err);
	if (st.ret)
		ret = st.ret; /* the reader's error, in err */
	else if (ret == 0)
		ret = json_stream_finish(st.js, page);
	http_response_free(&resp);
	json_stream_free(st.js);
	return ret;
}

int kube_list(struct kube_client *c, const char *path, const struct kube_list_options *opt,
	      kube_item_fn fn, void *arg, char *resource_version, size_t rv_len, struct error *err)
{
	static const char *const page_fields[] = {"metadata.continue", "metadata.resourceVersion",
						  NULL};
	unsigned limit = opt && opt->limit ? opt->limit : KUBE_DEFAULT_LIMIT;
	bool whole = limit == KUBE_LIST_ALL;
	struct json_stream_options sopt = {
	    .items = "items",
	    .fields = opt ? opt->fields : NULL,
	    .extras = page_fields,
	    .flags = JSON_STREAM_OBJECT_ITEMS,
	};
	struct list_items li = {.fn = fn, .arg = arg};
	char *base = NULL, *url = NULL, *cont = NULL, num[16], what[600];
	struct http_response resp = {0};
	json_t *page = NULL;
	int ret;

	ret = make_url(c, path, &base, err);
	if (ret < 0)
		return ret;
	snprintf(num, sizeof(num), "%u", limit);
	if ((!whole && http_url_add_query(&base, "limit", num) < 0) ||
	    (opt && opt->label_selector &&
	     http_url_add_query(&base, "labelSelector", opt->label_selector) < 0) ||
	    (opt && opt->field_selector &&
	     http_url_add_query(&base, "fieldSelector", opt->field_selector) < 0)) {
		ret = error_set(err, ENOMEM, "out of memory");
		goto cleanup;
	}
	for (unsigned pages = 0;; pages++) {
		const char *next, *rv;

		if (pages >= MAX_PAGES) {
			ret = error_set(err, EBADMSG, "GET %s: too many pages", base);
			goto cleanup;
		}
		free(url);
		url = strdup(base);
		/* resourceVersion goes with the first page only; continue carries it after. */
		if (!url || (cont && http_url_add_query(&url, "continue", cont) < 0) ||
		    (!cont && opt && opt->resource_version &&
		     http_url_add_query(&url, "resourceVersion", opt->resource_version) < 0)) {
			ret = error_set(err, ENOMEM, "out of memory");
			goto cleanup;
		}
		snprintf(what, sizeof(what), "GET %s", url);
		json_decref(page);
		page = NULL;
		http_response_free(&resp);
		if (whole) {
			ret = get_streamed(c, url, what, &sopt, &li, &page, err);
		} else {
			ret = http_call(c->http, &(struct http_request){.url = url}, NULL,
					kube_status_error, &resp, err);
			/* Items one at a time; of the page itself only what paging needs. */
			if (ret == 0)
				ret = json_stream_parse(resp.body, resp.body_len, what, &sopt,
							list_item, &li, &page, err);
		}
		if (ret)
			goto cleanup;
		rv = json_path_str(page, "metadata.resourceVersion");
		if (resource_version && rv_len) {
			if (rv && strlen(rv) >= rv_len) {
				ret =
				    error_set(err, ERANGE, "GET %s: resourceVersion too long", url);
				goto cleanup;
			}
			snprintf(resource_version, rv_len, "%s", rv ? rv : "");
		}
		next = json_path_str(page, "metadata.continue");
		if (!next || !*next)
			break;
		if (cont && !strcmp(cont, next)) {
			ret = error_set(err, EBADMSG, "GET %s: continue token repeats itself", url);
			goto cleanup;
		}
		free(cont);
		cont = strdup(next);
		if (!cont) {
			ret = error_set(err, ENOMEM, "out of memory");
			goto cleanup;
		}
	}
	ret = 0;
cleanup:
	http_response_free(&resp);
	json_decref(page);
	free(cont);
	free(url);
	free(base);
	return ret;
}

int kube_get(struct kube_client *c, const char *path, json_t **out, struct error *err)
{
	return kube_request(c, "GET", path, NULL, NULL, out, err);
}

int kube_create(struct kube_client *c, const char *path, const json_t *obj, json_t **out,
		struct error *err)
{
	if (!json_is_object(obj))
		return error_set(err, EINVAL, "create %s: the object must be a JSON object", path);
	return kube_request(c, "POST", path, NULL, obj, out, err);
}

int kube_patch(struct kube_client *c, const char *path, enum kube_patch_type type,
	       const json_t *patch, json_t **out, struct error *err)
{
	static const char *const types[] = {
	    [KUBE_PATCH_STRATEGIC] = "application/strategic-merge-patch+json",
	    [KUBE_PATCH_MERGE] = "application/merge-patch+json",
	    [KUBE_PATCH_JSON] = "application/json-patch+json",
	};

	if ((unsigned)type > KUBE_PATCH_JSON)
		return error_set(err, EINVAL, "patch %s: unknown patch type", path);
	if (type == KUBE_PATCH_JSON ? !json_is_array(patch) : !json_is_object(patch))
		return error_set(err, EINVAL, "patch %s: a %s patch must be a JSON %s", path,
				 type == KUBE_PATCH_JSON ? "JSON" : "merge",
				 type == KUBE_PATCH_JSON ? "array" : "object");
	return kube_request(c, "PATCH", path, types[type], patch, out, err);
}

int kube_delete(struct kube_client *c, const char *path, const struct kube_delete_options *opt,
		struct error *err)
{
	json_t *body, *pre = NULL;
	int ret;

	body = json_pack("{s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1");
	if (!body)
		return error_set(err, ENOMEM, "out of memory");
	if (opt && (opt->uid || opt->resource_version)) {
		pre = json_object();
		if (!pre || json_object_set_new(body, "preconditions", pre))
			goto nomem;
		if (opt->uid && json_object_set_new(pre, "uid", json_string(opt->uid)))
			goto nomem;
		if (opt->resource_version &&
		    json_object_set_new(pre, "resourceVersion", json_string(opt->resource_version)))
			goto nomem;
	}
	if (opt && opt->propagation_policy &&
	    json_object_set_new(body, "propagationPolicy", json_string(opt->propagation_policy)))
		goto nomem;
	if (opt && opt->set_grace_period && opt->grace_period_seconds >= 0 &&
	    json_object_set_new(body, "gracePeriodSeconds",
				json_integer(opt->grace_period_seconds)))
		goto nomem;
	ret = kube_request(c, "DELETE", path, NULL, body, NULL, err);
	json_decref(body);
	return ret;
nomem:
	json_decref(body);
	return error_set(err, ENOMEM, "out of memory");
}

/* ---- watch ---- */

struct watch_state {
	kube_event_fn fn;
	void *arg;
	char *line;
	size_t len, cap;
	int stop; /* fn's non-zero return, or our own -errno */
	struct error *err;
	const char *what;
};

static int watch_line(struct watch_state *w, const char *line, size_t len)
{
	json_t *ev = NULL, *obj;
	const char *type;
	int ret;

	while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (!len)
		return 0; /* heartbeat */
	ret = json_parse(line, len, w->what, &ev, w->err);
	if (ret < 0)
		return ret;
	type = json_str(ev, "type");
	obj = json_object_get(ev, "object");
	if (!type || !json_is_object(obj)) {
		json_decref(ev);
		return error_set(w->err, EBADMSG, "%s: event without type or object", w->what);
	}
	if (!strcmp(type, "ERROR")) {
		char *text = json_dumps(obj, JSON_COMPACT);

		ret = kube_status_error(0, text ? text : "", text ? strlen(text) : 0, w->what,
					w->err);
		free(text);
		json_decref(ev);
		return ret;
	}
	ret = w->fn(w->arg, type, obj);
	json_decref(ev);
	return ret;
}

static int watch_data(void *arg, const char *data, size_t len)
{
	struct watch_state *w = arg;

	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			int ret = watch_line(w, w->line ? w->line : "", w->len);

			w->len = 0;
			if (ret) {
				w->stop = ret;
				return -ECANCELED;
			}
			continue;
		}
		if (w->len + 1 >= w->cap) {
			size_t ncap = w->cap ? w->cap * 2 : 4096;
			char *n;

			if (ncap > WATCH_LINE_MAX) {
				w->stop = error_set(w->err, EFBIG, "%s: event larger than %d bytes",
						    w->what, WATCH_LINE_MAX);
				return -ECANCELED;
			}
			n = realloc(w->line, ncap);
			if (!n) {
				w->stop = error_set(w->err, ENOMEM, "out of memory");
				return -ECANCELED;
			}
			w->line = n;
			w->cap = ncap;
		}
		w->line[w->len++] = data[i];
	}
	return 0;
}

int kube_watch(struct kube_client *c, const char *path, const struct kube_watch_options *opt,
	       kube_event_fn fn, void *arg, struct error *err)
{
	unsigned timeout_s =
	    opt && opt->timeout_seconds ? opt->timeout_seconds : WATCH_DEFAULT_TIMEOUT_S;
	struct watch_state w = {.fn = fn, .arg = arg, .err = err};
	struct http_request req = {0};
	struct http_response resp;
	char *url = NULL, num[16], what[600];
	int ret;

	ret = make_url(c, path, &url, err);
	if (ret < 0)
		return ret;
	snprintf(num, sizeof(num), "%u", timeout_s);
	if (http_url_add_query(&url, "watch", "true") < 0 ||
	    http_url_add_query(&url, "timeoutSeconds", num) < 0 ||
	    (opt && opt->resource_version &&
	     http_url_add_query(&url, "resourceVersion", opt->resource_version) < 0) ||
	    (opt && opt->label_selector &&
	     http_url_add_query(&url, "labelSelector", opt->label_selector) < 0) ||
	    (opt && opt->field_selector &&
	     http_url_add_query(&url, "fieldSelector", opt->field_selector) < 0) ||
	    (opt && opt->allow_bookmarks &&
	     http_url_add_query(&url, "allowWatchBookmarks", "true") < 0)) {
		free(url);
		return error_set(err, ENOMEM, "out of memory");
	}
	snprintf(what, sizeof(what), "watch %s", url);
	w.what = what;
	req.url = url;
	req.timeout_ms = (uint64_t)timeout_s * 1000 + 30000;
	req.on_data = watch_data;
	req.on_data_arg = &w;
	ret = http_call(c->http, &req, NULL, kube_status_error, &resp, err);
	if (w.stop) {
		ret = w.stop;
		goto cleanup;
	}
	if (ret < 0)
		goto cleanup;
	if (w.len) /* a last event without its newline */
		ret = watch_line(&w, w.line, w.len);
cleanup:
	http_response_free(&resp);
	free(w.line);
	free(url);
	return ret;
}

int kube_evict(struct kube_client *c, const char *ns, const char *name, struct error *err)
{
	json_t *body;
	char path[700];
	int ret;

	if (!ns || !name || !*ns || !*name || strchr(ns, '/') || strchr(name, '/') ||
	    strchr(ns, '?') || strchr(name, '?'))
		return error_set(err, EINVAL, "pod \"%s/%s\": invalid name", ns ? ns : "",
				 name ? name : "");
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s/eviction", ns, name);
	body = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "policy/v1", "kind", "Eviction",
			 "metadata", "name", name, "namespace", ns);
	if (!body)
		return error_set(err, ENOMEM, "out of memory");
	ret = kube_request(c, "POST", path, NULL, body, NULL, err);
	json_decref(body);
	return ret;
}
