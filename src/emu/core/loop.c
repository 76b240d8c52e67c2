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
	int ep = -1, sfd = -1, ret = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ep < 0) {
		ret = -errno;
		goto cleanup;
	}
	ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = NULL};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) < 0) {
		ret = -errno;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = daemons[i]};
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
		timeout = wait_ms > 60000 ? 60000 : (int)wait_ms;
		if (emu_httpd_resume_pending())
			timeout = 0; /* resumed connections are handled by the runs below */
		nev = epoll_wait(ep, events, 16, timeout);
		if (nev < 0 && errno != EINTR) {
			ret = -errno;
			goto cleanup;
		}
		for (int i = 0; i < nev; i++) {
			if (events[i].data.ptr == NULL) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					log_info("signal %u: stopping", si.ssi_signo);
					emu->stopping = true;
				}
			}
		}
		/* MHD_run is cheap when nothing is ready; resumed connections need it too. */
		for (size_t i = 0; i < n; i++)
			emu_httpd_run(daemons[i]);
		/* Replies committed their changes; this catches handlers that did not reply. */
		emu_state_flush(emu, EMU_STATE_TICK);
	}
cleanup:
	if (ep >= 0)
		close(ep);
	if (sfd >= 0)
		close(sfd);
	free(timers.heap);
	timers.heap = NULL;
	timers.len = timers.cap = 0;
	return ret;
}
