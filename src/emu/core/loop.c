/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The event loop: one epoll set holding both libmicrohttpd daemons' epoll fds and a
 * signalfd; timers in a binary min-heap. Everything runs on this thread.
 */
#include "emu/core/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "emu/core/httpd.h"

struct timer {
	uint64_t due_ms;
	long id;
	emu_timer_fn fn;
	void *arg;
};

static struct {
	struct timer *heap;
	size_t len, cap;
	long next_id;
} timers;

/*
 * Sources besides the two ports' daemons (the data plane's probes, child processes and
 * per-node API servers): file descriptors with a callback, and daemons started at run time.
 * Registered before the loop runs too, so the epoll set is made on first use.
 */
struct fd_watch {
	int fd;
	emu_fd_fn fn;
	void *arg;
	bool dead; /* unwatched during a batch of events: freed after it */
	struct fd_watch *next;
};

static struct {
	int ep;
	struct fd_watch *watches, *graveyard;
	struct emu_httpd **daemons; /* emu_loop_add_httpd() */
	size_t ndaemons, cap;
} srcs = {.ep = -1};

static char daemon_marker; /* epoll data of the daemons' fds: run every daemon */

static int loop_epoll(void)
{
	if (srcs.ep < 0)
		srcs.ep = epoll_create1(EPOLL_CLOEXEC);
	return srcs.ep < 0 ? -errno : srcs.ep;
}

int emu_fd_watch(struct emu *emu, int fd, uint32_t events, emu_fd_fn fn, void *arg)
{
	struct fd_watch *w;
	struct epoll_event ev;
	int ep = loop_epoll();

	(void)emu;
	if (ep < 0)
		return ep;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct fd_watch){.fd = fd, .fn = fn, .arg = arg, .next = srcs.watches};
	ev = (struct epoll_event){.events = events, .data.ptr = w};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = -errno;

		free(w);
		return e;
	}
	srcs.watches = w;
	return 0;
}

static struct fd_watch **watch_find(int fd)
{
	for (struct fd_watch **p = &srcs.watches; *p; p = &(*p)->next)
		if ((*p)->fd == fd)
			return p;
	return NULL;
}

int emu_fd_modify(struct emu *emu, int fd, uint32_t events)
{
	struct fd_watch **p = watch_find(fd);
	struct epoll_event ev;

	(void)emu;
	if (!p)
		return -ENOENT;
	ev = (struct epoll_event){.events = events, .data.ptr = *p};
	return epoll_ctl(srcs.ep, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void emu_fd_unwatch(struct emu *emu, int fd)
{
	struct fd_watch **p = watch_find(fd), *w;

	(void)emu;
	if (!p)
		return;
	w = *p;
	*p = w->next;
	epoll_ctl(srcs.ep, EPOLL_CTL_DEL, fd, NULL);
	w->dead = true;
	w->next = srcs.graveyard;
	srcs.graveyard = w;
}

static void bury_watches(void)
{
	while (srcs.graveyard) {
		struct fd_watch *w = srcs.graveyard;

		srcs.graveyard = w->next;
		free(w);
	}
}

int emu_loop_add_httpd(struct emu *emu, struct emu_httpd *h)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &daemon_marker};
	int ep = loop_epoll();

	(void)emu;
	if (ep < 0)
		return ep;
	if (srcs.ndaemons == srcs.cap) {
		size_t ncap = srcs.cap ? srcs.cap * 2 : 8;
		struct emu_httpd **n = realloc(srcs.daemons, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		srcs.daemons = n;
		srcs.cap = ncap;
	}
	if (epoll_ctl(ep, EPOLL_CTL_ADD, emu_httpd_epoll_fd(h), &ev) < 0)
		return -errno;
	srcs.daemons[srcs.ndaemons++] = h;
	return 0;
}

void emu_loop_remove_httpd(struct emu *emu, struct emu_httpd *h)
{
	(void)emu;
	for (size_t i = 0; i < srcs.ndaemons; i++) {
		if (srcs.daemons[i] != h)
			continue;
		epoll_ctl(srcs.ep, EPOLL_CTL_DEL, emu_httpd_epoll_fd(h), NULL);
		srcs.daemons[i] = srcs.daemons[--srcs.ndaemons];
		return;
	}
}

uint64_t emu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *emu_rfc3339_ms(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	/* GCP prints creationTimestamp with milliseconds and a numeric offset. */
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ld-00:00", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	return buf;
}

const char *emu_rfc3339(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static void heap_swap(size_t a, size_t b)
{
	struct timer t = timers.heap[a];

	timers.heap[a] = timers.heap[b];
	timers.heap[b] = t;
}

static bool heap_less(size_t a, size_t b)
{
	if (timers.heap[a].due_ms != timers.heap[b].due_ms)
		return timers.heap[a].due_ms < timers.heap[b].due_ms;
	return timers.heap[a].id < timers.heap[b].id; /* FIFO among equal deadlines */
}

static void heap_up(size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!heap_less(i, parent))
			break;
		heap_swap(i, parent);
		i = parent;
	}
}

static void heap_down(size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < timers.len && heap_less(l, m))
			m = l;
		if (r < timers.len && heap_less(r, m))
			m = r;
		if (m == i)
			break;
		heap_swap(i, m);
		i = m;
	}
}

static void heap_remove(size_t i)
{
	timers.len--;
	if (i == timers.len)
		return;
	timers.heap[i] = timers.heap[timers.len];
	heap_down(i);
	heap_up(i);
}

long emu_timer_add(struct emu *emu, uint64_t delay_ms, emu_timer_fn fn, void *arg)
{
	(void)emu;
	if (timers.len == timers.cap) {
		size_t ncap = timers.cap ? timers.cap * 2 : 64;
		struct timer *n = realloc(timers.heap, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		timers.heap = n;
		timers.cap = ncap;
	}
	timers.heap[timers.len] = (struct timer){
	    .due_ms = emu_now_ms() + delay_ms, .id = ++timers.next_id, .fn = fn, .arg = arg};
	heap_up(timers.len++);
	return timers.next_id;
}

void emu_timer_cancel(struct emu *emu, long id)
{
	(void)emu;
	for (size_t i = 0; i < timers.len; i++) {
		if (timers.heap[i].id == id) {
			heap_remove(i);
			return;
		}
	}
}

/* Runs due timers; returns ms until the next one, or UINT64_MAX. */
static uint64_t run_timers(struct emu *emu)
{
	for (;;) {
		uint64_t now = emu_now_ms();
		struct timer t;

		if (!timers.len)
			return UINT64_MAX;
		if (timers.heap[0].due_ms > now)
			return timers.heap[0].due_ms - now;
		t = timers.heap[0];
		heap_remove(0);
		t.fn(emu, t.arg);
	}
}

int emu_loop_run(struct emu *emu, struct emu_httpd *const *daemons, size_t n)
{
	struct epoll_event ev, events[16];
	sigset_t mask;
	int ep, sfd = -1, ret = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	ep = loop_epoll();
	if (sfd < 0 || ep < 0) {
		ret = sfd < 0 ? -errno : ep;
		goto cleanup;
	}
	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = NULL};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) < 0) {
		ret = -errno;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &daemon_marker};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, emu_httpd_epoll_fd(daemons[i]), &ev) < 0) {
			ret = -errno;
			goto cleanup;
		}
	}
	while (!emu->stopping) {
		uint64_t wait_ms = run_timers(emu), t;
		int nev, timeout;

		/* What the timers changed (Operations completing, controllers) is committed with
		 * the next reply, or when it has waited EMU_STATE_DEFER_MS. */
		emu_state_flush(emu, EMU_STATE_TICK);
		t = emu_state_due_in_ms(emu);
		if (t < wait_ms)
			wait_ms = t;

		for (size_t i = 0; i < n; i++) {
			t = emu_httpd_timeout_ms(daemons[i]);
			if (t < wait_ms)
				wait_ms = t;
		}
		for (size_t i = 0; i < srcs.ndaemons; i++) {
			t = emu_httpd_timeout_ms(srcs.daemons[i]);
			if (t < wait_ms)
				wait_ms = t;
		}
		timeout = wait_ms > 60000 ? 60000 : (int)wait_ms;
		if (emu_httpd_resume_pending())
			timeout = 0; /* resumed connections are handled by the runs below */
		nev = epoll_wait(ep, events, 16, timeout);
		if (nev < 0 && errno != EINTR) {
			ret = -errno;
			goto cleanup;
		}
		for (int i = 0; i < nev; i++) {
			void *src = events[i].data.ptr;

			if (src == NULL) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					log_info("signal %u: stopping", si.ssi_signo);
					emu->stopping = true;
				}
			} else if (src != &daemon_marker) {
				struct fd_watch *w = src;

				if (!w->dead)
					w->fn(emu, w->fd, events[i].events, w->arg);
			}
		}
		bury_watches();
		/* MHD_run is cheap when nothing is ready; resumed connections need it too. */
		for (size_t i = 0; i < n; i++)
			emu_httpd_run(daemons[i]);
		for (size_t i = 0; i < srcs.ndaemons; i++)
			emu_httpd_run(srcs.daemons[i]);
		/* Replies committed their changes; this catches handlers that did not reply. */
		emu_state_flush(emu, EMU_STATE_TICK);
	}
cleanup:
	for (size_t i = 0; i < n; i++)
		epoll_ctl(srcs.ep, EPOLL_CTL_DEL, emu_httpd_epoll_fd(daemons[i]), NULL);
	bury_watches();
	if (sfd >= 0) {
		epoll_ctl(srcs.ep, EPOLL_CTL_DEL, sfd, NULL);
		close(sfd);
	}
	free(timers.heap);
	timers.heap = NULL;
	timers.len = timers.cap = 0;
	return ret;
}
