/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Watch streams: a chunked HTTP response of {"type":...,"object":...} lines.
 *
 * A stream replays the event ring from its resourceVersion, then waits. Waiting is a
 * suspended libmicrohttpd connection (no polling): a write wakes the streams of its type.
 * A timer sends a heartbeat every few idle seconds (a BOOKMARK when the client allows them,
 * else a bare newline, which JSON stream decoders skip), so a client that went away is
 * noticed on the write, and ends streams at their timeoutSeconds.
 *
 * resourceVersion semantics (https://kubernetes.io/docs/reference/using-api/api-concepts/):
 *   unset or "0": synthetic ADDED events for the current objects, then changes;
 *   "N": every change after N; N older than the ring: an ERROR event with a 410 Expired
 *        Status "too old resource version" and the end of the stream. This is what the
 *        API server's watch cache does rather than an HTTP 410 ("once we have passed
 *        authn/authz/admission ... other errors must fail with a watch event of type
 *        ERROR", staging/src/k8s.io/apiserver/pkg/storage/cacher/cacher.go);
 *   sendInitialEvents=true: the synthetic ADDED events end with a BOOKMARK annotated
 *        k8s.io/initial-events-end (streaming lists).
 * With a selector, an object that starts matching arrives as ADDED and one that stops as
 * DELETED, as the watch cache filters.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "emu/kube/kube.h"

#define TICK_MS      1000
#define HEARTBEAT_MS 5000
#define SHARE_BYTES  4096 /* object texts from this size are sent from the store, not copied */

/* A piece of what a stream is to send: bytes of its buffer, or an object's stored text
 * (referenced: fifty watchers of a 1 MiB object hold one copy, not fifty). */
struct wseg {
	struct kobj *o; /* NULL: buf[off, off + len) */
	size_t off, len;
};

struct kube_watch {
	struct kube_watch *next, **pprev;
	struct emu_kube *k;
	struct emu_request *req;
	struct kube_res *res;
	char *ns;
	struct kube_selector *labels, *fields;
	const char *only_name; /* borrowed from fields */
	bool table, bookmarks;
	char *include_object;
	uint64_t cursor; /* last ring resourceVersion looked at */
	struct kobj **initial;
	size_t ninitial, initial_pos;
	bool initial_end_bookmark;
	char *buf;
	size_t len, cap;
	struct wseg *segs;
	size_t nsegs, segcap, seg, seg_off;
	size_t pending;       /* bytes not yet sent */
	uint64_t deadline_ms; /* 0: none */
	uint64_t last_write_ms;
	bool heartbeat_due, ending, suspended;
};

static int seg_push(struct kube_watch *w, struct kobj *o, size_t off, size_t len)
{
	if (!o && w->nsegs && !w->segs[w->nsegs - 1].o &&
	    w->segs[w->nsegs - 1].off + w->segs[w->nsegs - 1].len == off) {
		w->segs[w->nsegs - 1].len += len; /* bytes right after bytes */
		w->pending += len;
		return 0;
	}
	if (w->nsegs == w->segcap) {
		size_t ncap = w->segcap ? w->segcap * 2 : 16;
		struct wseg *n = realloc(w->segs, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		w->segs = n;
		w->segcap = ncap;
	}
	w->segs[w->nsegs++] = (struct wseg){.o = o ? kobj_ref(o) : NULL, .off = off, .len = len};
	w->pending += len;
	return 0;
}

static int buf_add(struct kube_watch *w, const char *s, size_t n)
{
	size_t at = w->len;

	if (w->len + n + 1 > w->cap) {
		size_t ncap = w->cap ? w->cap : 4096;
		char *nb;
		while (ncap < w->len + n + 1)
			ncap *= 2;
		nb = realloc(w->buf, ncap);
		if (!nb)
			return -ENOMEM;
		w->buf = nb;
		w->cap = ncap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	return seg_push(w, NULL, at, n);
}

static bool matches(const struct kube_watch *w, const json_t *obj)
{
	if (w->ns && strcmp(kj_str(obj, "metadata.namespace") ?: "", w->ns) != 0)
		return false;
	if (w->only_name && strcmp(kj_str(obj, "metadata.name") ?: "", w->only_name) != 0)
		return false;
	return kube_selector_match(w->labels, obj) && kube_selector_match(w->fields, obj);
}

static void add_event(struct kube_watch *w, const char *type, struct kobj *o)
{
	static const char close[] = "}\n";
	char head[64];
	int n = snprintf(head, sizeof(head), "{\"type\":\"%s\",\"object\":", type);

	buf_add(w, head, (size_t)n);
	if (w->table) {
		struct kobj full = {.refs = 1, .obj = kobj_full(o)};
		struct kobj *one[1] = {&full};
		json_t *t = full.obj ? kube_table(w->k, w->res, one, 1, w->include_object) : NULL;

		json_decref(full.obj);
		char *text = t ? json_dumps(t, JSON_COMPACT) : NULL;
		if (text)
			buf_add(w, text, strlen(text));
		else
			buf_add(w, "{}", 2);
		free(text);
		json_decref(t);
	} else {
		size_t len;
		const char *text = kobj_text(o, &len);
		if (len >= SHARE_BYTES && o->text)
			seg_push(w, o, 0, len);
		else
			buf_add(w, text, len);
	}
	buf_add(w, close, sizeof(close) - 1);
}

static void add_json_event(struct kube_watch *w, const char *type, json_t *obj)
{
	json_t *ev = json_pack("{s:s, s:o}", "type", type, "object", obj);
	char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;

	if (text) {
		buf_add(w, text, strlen(text));
		buf_add(w, "\n", 1);
	}
	free(text);
	json_decref(ev);
}

static void add_bookmark(struct kube_watch *w, uint64_t rv, bool initial_end)
{
	char rvs[24];
	json_t *obj;

	snprintf(rvs, sizeof(rvs), "%llu", (unsigned long long)rv);
	obj = json_pack("{s:s, s:s, s:{s:s}}", "kind", w->res->def.kind, "apiVersion",
			w->res->api_version, "metadata", "resourceVersion", rvs);
	if (initial_end)
		json_object_set_new(json_object_get(obj, "metadata"), "annotations",
				    json_pack("{s:s}", "k8s.io/initial-events-end", "true"));
	add_json_event(w, "BOOKMARK", obj);
}

static void add_expired(struct kube_watch *w)
{
	struct kube_err e = {0};

	kube_errf(&e, 410, "Expired", "too old resource version: %llu (%llu)",
		  (unsigned long long)w->cursor, (unsigned long long)w->k->window_rv);
	add_json_event(w, "ERROR", kube_status_json(&e));
	kube_err_clear(&e);
	w->ending = true;
}

/* Moves what is to send into w->buf (bounded batches: MHD asks again). */
static void fill(struct kube_watch *w)
{
	struct emu_kube *k = w->k;

	while (w->initial_pos < w->ninitial && w->pending < 256 * 1024) {
		struct kobj *o = w->initial[w->initial_pos];
		w->initial[w->initial_pos++] = NULL;
		add_event(w, "ADDED", o);
		kobj_unref(o);
	}
	if (w->initial_pos < w->ninitial)
		return;
	if (w->initial_end_bookmark) {
		w->initial_end_bookmark = false;
		add_bookmark(w, w->cursor, true);
	}
	while (!w->ending && w->pending < 256 * 1024) {
		bool too_old;
		const struct kube_event *ev = kube_events_after(k, w->cursor, &too_old);
		bool now, before;

		if (too_old) {
			add_expired(w);
			break;
		}
		if (!ev)
			break;
		w->cursor = ev->rv;
		if (ev->res != w->res)
			continue;
		now = matches(w, ev->obj->obj);
		switch (ev->type) {
		case KEV_ADDED:
			if (now)
				add_event(w, "ADDED", ev->obj);
			break;
		case KEV_DELETED:
			if (now)
				add_event(w, "DELETED", ev->obj);
			break;
		case KEV_MODIFIED:
			before = ev->old && matches(w, ev->old->obj);
			if (now && before)
				add_event(w, "MODIFIED", ev->obj);
			else if (now)
				add_event(w, "ADDED", ev->obj);
			else if (before)
				add_event(w, "DELETED", ev->obj);
			break;
		}
	}
	if (!w->pending && w->heartbeat_due) {
		if (w->bookmarks)
			add_bookmark(w, w->cursor, false);
		else
			buf_add(w, "\n", 1);
	}
	w->heartbeat_due = false;
}

static long watch_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct kube_watch *w = cls;
	size_t n = 0;

	(void)pos;
	if (w->seg == w->nsegs) {
		w->len = w->nsegs = w->seg = w->seg_off = w->pending = 0;
		if (w->deadline_ms && emu_now_ms() >= w->deadline_ms)
			w->ending = true;
		if (!w->ending)
			fill(w);
	}
	while (n < max && w->seg < w->nsegs) {
		struct wseg *sg = &w->segs[w->seg];
		const char *src = sg->o ? sg->o->text : w->buf + sg->off;
		size_t k = sg->len - w->seg_off < max - n ? sg->len - w->seg_off : max - n;
		memcpy(out + n, src + w->seg_off, k);
		n += k;
		w->seg_off += k;
		w->pending -= k;
		if (w->seg_off == sg->len) {
			kobj_unref(sg->o);
			sg->o = NULL;
			w->seg++;
			w->seg_off = 0;
		}
	}
	if (n) {
		w->last_write_ms = emu_now_ms();
		return (long)n;
	}
	if (w->ending)
		return -1;
	/* Nothing to say: wait without polling until a write or the timer wakes us. */
	w->suspended = true;
	emu_request_suspend(w->req);
	return 0;
}

static void wake(struct kube_watch *w)
{
	if (!w->suspended)
		return;
	w->suspended = false;
	emu_request_resume(w->req);
}

static void watch_free(struct kube_watch *w)
{
	for (size_t i = w->initial_pos; i < w->ninitial; i++)
		kobj_unref(w->initial[i]);
	free(w->initial);
	kube_selector_free(w->labels);
	kube_selector_free(w->fields);
	free(w->ns);
	free(w->include_object);
	for (size_t i = w->seg; i < w->nsegs; i++)
		kobj_unref(w->segs[i].o);
	free(w->segs);
	free(w->buf);
	free(w);
}

static void unlink_watch(struct kube_watch *w)
{
	*w->pprev = w->next;
	if (w->next)
		w->next->pprev = w->pprev;
}

static void watch_closed(struct emu_request *req)
{
	struct kube_watch *w = req->handler_data;

	if (!w)
		return;
	req->handler_data = NULL;
	unlink_watch(w);
	log_debug("kube: watch on %s closed", w->res->def.resource);
	watch_free(w);
}

static void tick(struct emu *emu, void *arg)
{
	struct emu_kube *k = arg;
	uint64_t now = emu_now_ms();

	(void)emu;
	k->watch_timer = 0;
	for (struct kube_watch *w = k->watches; w; w = w->next) {
		if (w->deadline_ms && now >= w->deadline_ms) {
			w->ending = true;
			wake(w);
		} else if (now - w->last_write_ms >= HEARTBEAT_MS) {
			w->heartbeat_due = true;
			wake(w);
		}
	}
	if (k->watches)
		k->watch_timer = emu_timer_add(k->emu, TICK_MS, tick, k);
}

static int snapshot(struct kube_watch *w)
{
	struct kube_res *r = w->res;
	size_t i = 0, end = r->len, cap = 0;
	char prefix[300];

	if (w->only_name) {
		struct kobj *o = kube_get(r, w->ns, w->only_name);
		if (o && matches(w, o->obj)) {
			w->initial = malloc(sizeof(*w->initial));
			if (!w->initial)
				return -ENOMEM;
			w->initial[w->ninitial++] = kobj_ref(o);
		}
		return 0;
	}
	if (w->ns && (r->def.flags & KR_NAMESPACED)) {
		snprintf(prefix, sizeof(prefix), "%s/", w->ns);
		i = kube_lower_bound(r, prefix);
	}
	for (; i < end; i++) {
		struct kobj *o = r->items[i].obj;
		if (w->ns && (r->def.flags & KR_NAMESPACED) &&
		    strncmp(r->items[i].key, prefix, strlen(prefix)) != 0)
			break;
		if (!matches(w, o->obj))
			continue;
		if (w->ninitial == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct kobj **n = realloc(w->initial, ncap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			w->initial = n;
			cap = ncap;
		}
		w->initial[w->ninitial++] = kobj_ref(o);
	}
	return 0;
}

int kube_watch_start(struct emu_kube *k, struct emu_request *req, struct kube_watch_params *p)
{
	struct kube_watch *w = calloc(1, sizeof(*w));
	struct kube_err e = {0};
	bool initial = false;
	int ret;

	if (!w) {
		kube_selector_free(p->labels);
		kube_selector_free(p->fields);
		return -ENOMEM;
	}
	w->k = k;
	w->req = req;
	w->res = p->res;
	w->labels = p->labels;
	w->fields = p->fields;
	p->labels = p->fields = NULL;
	w->only_name = kube_selector_name(w->fields);
	w->table = p->table;
	w->bookmarks = p->bookmarks;
	w->ns = p->ns ? strdup(p->ns) : NULL;
	w->include_object = p->include_object ? strdup(p->include_object) : NULL;
	w->last_write_ms = emu_now_ms();
	if (p->timeout_s)
		w->deadline_ms = emu_now_ms() + p->timeout_s * 1000;
	if (!p->rv || !p->rv[0] || !strcmp(p->rv, "0")) {
		initial = true;
		w->cursor = k->rv;
	} else {
		char *end;
		unsigned long long v = strtoull(p->rv, &end, 10);
		if (*end || p->rv[0] == '-') {
			kube_errf(&e, 400, "BadRequest", "invalid resource version: %s", p->rv);
			goto fail;
		}
		w->cursor = v;
		/* sendInitialEvents with an explicit version: still the current objects. */
		if (p->send_initial)
			initial = true;
	}
	if (p->send_initial && !p->bookmarks) {
		json_t *causes = json_array();
		kube_cause(
		    causes, "FieldValueForbidden", "allowWatchBookmarks",
		    "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true");
		kube_err_invalid(&e, p->res, "", causes);
		goto fail;
	}
	if (initial && snapshot(w) < 0) {
		kube_errf(&e, 500, "InternalError", "out of memory");
		goto fail;
	}
	if (initial)
		w->cursor = k->rv;
	w->initial_end_bookmark = p->send_initial;
	ret = emu_reply_stream(req, 200, "application/json", watch_read, w);
	if (ret < 0) {
		watch_free(w);
		return ret;
	}
	req->handler_data = w;
	req->on_close = watch_closed;
	w->next = k->watches;
	if (w->next)
		w->next->pprev = &w->next;
	w->pprev = &k->watches;
	k->watches = w;
	if (!k->watch_timer)
		k->watch_timer = emu_timer_add(k->emu, TICK_MS, tick, k);
	return 0;
fail:
	ret = kube_reply_status(req, &e);
	kube_err_clear(&e);
	watch_free(w);
	return ret;
}

void kube_watch_notify(struct emu_kube *k)
{
	const struct kube_event *last;

	if (!k->watches || !k->ring_len)
		return;
	last = &k->ring[(k->ring_start + k->ring_len - 1) % k->ring_cap];
	for (struct kube_watch *w = k->watches; w; w = w->next)
		if (w->res == last->res)
			wake(w);
}

void kube_watch_close_all(struct emu_kube *k)
{
	for (struct kube_watch *w = k->watches; w; w = w->next) {
		w->ending = true;
		wake(w);
	}
}

void kube_watch_free_all(struct emu_kube *k)
{
	while (k->watches) {
		struct kube_watch *w = k->watches;
		unlink_watch(w);
		if (w->req) {
			w->req->handler_data = NULL;
			w->req->on_close = NULL;
		}
		watch_free(w);
	}
	if (k->watch_timer)
		emu_timer_cancel(k->emu, k->watch_timer);
	k->watch_timer = 0;
}
