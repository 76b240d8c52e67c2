/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One thread, one epoll loop. Two netlink sockets: the monitor socket only listens (link,
 * address and, in local-route mode, route groups) and the command socket only talks (requests
 * and dumps, synchronously), so a reply is never mistaken for an event. Our own changes come
 * back as events too; they leave the state in place, so they cause nothing more.
 *
 * Idle, the process sleeps in epoll_wait: the only timer armed is the periodic resync
 * (retries and HTTP deadlines are armed only while something is pending).
 */
#include "agent/agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent/http.h"
#include "agent/nl.h"
#include "agent/state.h"
#include "common/clock.h"
#include "common/log.h"

#define MAX_CONNS       16
#define CONN_TIMEOUT_MS 5000
/*
 * The monitor socket's receive buffer: room for a burst of notifications (a node starting
 * hundreds of pods adds and removes as many veth links), as iproute2's `ip monitor` sizes
 * its own. keepalived sizes its monitor socket the same way (netlink_set_rx_buf_size(),
 * SO_RCVBUFFORCE when allowed, else SO_RCVBUF within net.core.rmem_max).
 */
#define MONITOR_RCVBUF (1 << 20)
/*
 * Reads per wakeup of the monitor socket: a flood of events cannot keep the loop from the
 * signals, timers and HTTP connections it also serves (epoll is level-triggered: the rest
 * is read on the next turn).
 */
#define MONITOR_BATCH_READS 64
#define RETRY_MIN_MS        200
#define RETRY_MAX_MS        30000
#define CMD_TIMEOUT_S       5

enum tag {
	TAG_MONITOR = 1,
	TAG_SIGNAL,
	TAG_RESYNC,
	TAG_RETRY,
	TAG_LISTEN,
	TAG_CONN_TIMER,
	TAG_CONN
};

struct conn {
	int fd; /* -1: free */
	uint64_t accepted_ms;
	size_t in_len;
	char in[HTTP_MAX_REQUEST];
	size_t out_len, out_off;
	char out[HTTP_MAX_RESPONSE];
	uint64_t deadline_ms;
};

struct agent {
	const struct vip_config *cfg;
	struct vip_state st;
	struct vip_metrics m;
	struct mnl_socket *cmd, *mon;
	uint32_t cmd_portid, seq;
	int epfd, sigfd, resync_fd, retry_fd, listen_fd, conn_timer_fd;
	uint64_t retry_ms;
	enum vip_cause lost_cause; /* what took the VIP away, until it is back */
	bool stop;
	char vip[CIDR_STRLEN];
	char why[256]; /* the kernel's extended-ACK message of the last refused request */
	/* Logged once per change, not once per event. */
	int warned_foreign_ifindex;
	bool warned_foreign_route, warned_wait_link, warned_overflow;
	struct conn conns[MAX_CONNS];
	size_t mon_rcvbuf; /* the monitor socket's receive buffer, as the kernel reports it */
	char buf[VIP_NL_BUFSIZE];
	char req[VIP_NL_BUFSIZE];
};

const char *vip_logfmt_value(const char *s, char *buf, size_t size)
{
	size_t n = 0;
	bool plain = *s != '\0';

	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
			plain = false;
	if (plain || size < 3)
		return s;
	buf[n++] = '"';
	for (const char *p = s; *p && n + 3 < size; p++) {
		if (*p == '"' || *p == '\\')
			buf[n++] = '\\';
		buf[n++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
	}
	buf[n++] = '"';
	buf[n] = '\0';
	return buf;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static double wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- netlink requests on the command socket ---- */

/*
 * Sends a request and reads until its ACK, or the end of a dump; data messages go to cb.
 * Replies to earlier requests (one that timed out, say) are skipped by sequence number, and
 * an interrupted dump is read to its end before -EINTR tells the caller to ask again.
 * Returns 0 or -errno (the kernel's explanation, if any, in a->why).
 */
static int nl_talk(struct agent *a, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	uint32_t seq = nlh->nlmsg_seq;
	bool done = false, interrupted = false;
	int code = 0;

	a->why[0] = '\0';
	if (mnl_socket_sendto(a->cmd, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	while (!done) {
		ssize_t n = mnl_socket_recvfrom(a->cmd, a->buf, sizeof(a->buf));
		size_t len;
		int left;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		len = nl_valid_length(a->buf, (size_t)n);
		left = (int)len;
		for (const struct nlmsghdr *m = (const struct nlmsghdr *)a->buf;
		     !done && mnl_nlmsg_ok(m, left); m = mnl_nlmsg_next(m, &left)) {
			const char *msg;

			if (m->nlmsg_seq != seq || (m->nlmsg_pid && m->nlmsg_pid != a->cmd_portid))
				continue;
			if (m->nlmsg_flags & NLM_F_DUMP_INTR)
				interrupted = true;
			switch (m->nlmsg_type) {
			case NLMSG_ERROR:
				if (nl_parse_error(m, &code, &msg) < 0)
					code = EBADMSG;
				else if (msg)
					snprintf(a->why, sizeof(a->why), "%s", msg);
				done = true;
				break;
			case NLMSG_DONE:
				/* A dump may end with an error in NLMSG_DONE's payload. */
				if (mnl_nlmsg_get_payload_len(m) >= sizeof(int)) {
					int err = *(const int *)mnl_nlmsg_get_payload(m);

					if (err < 0 && err != INT32_MIN)
						code = -err;
				}
				done = true;
				break;
			case NLMSG_NOOP:
			case NLMSG_OVERRUN:
				break;
			default:
				if (cb && !code)
					cb(m, data);
			}
		}
	}
	if (code)
		return -code;
	return interrupted ? -EINTR : 0;
}

static uint32_t next_seq(struct agent *a)
{
	return ++a->seq ? a->seq : ++a->seq;
}

static int state_cb(const struct nlmsghdr *nlh, void *data)
{
	struct agent *a = data;

	vip_state_apply(&a->st, a->cfg, nlh);
	return MNL_CB_OK;
}

/* ---- resync ---- */

/*
 * Throws away queued events: a dump that follows supersedes them. Bounded by what the buffer
 * can hold: under a flood, what arrives meanwhile is read (and applied on top of the dump,
 * which it postdates) after the dump, as any event is.
 */
static void drain_monitor(struct agent *a)
{
	int fd = mnl_socket_get_fd(a->mon);
	size_t budget = a->mon_rcvbuf ? a->mon_rcvbuf : MONITOR_RCVBUF;

	for (size_t read = 0; read < budget;) {
		ssize_t n = recv(fd, a->buf, sizeof(a->buf), MSG_DONTWAIT);

		if (n > 0)
			read += (size_t)n;
		else if (n < 0 && (errno == ENOBUFS || errno == EINTR))
			read += sizeof(a->buf); /* counts against the budget too */
		else
			break;
	}
}

static int resync(struct agent *a, enum vip_resync_reason reason)
{
	const struct vip_config *cfg = a->cfg;
	struct nlmsghdr *nlh;
	int r, attempts = 0;

again:
	drain_monitor(a);
	vip_state_reset(&a->st);
	nlh = nl_build_getlink(a->req, next_seq(a), cfg->ifname);
	r = nl_talk(a, nlh, state_cb, a);
	if (r < 0 && r != -ENODEV)
		goto fail;
	nlh = nl_build_getaddr_dump(a->req, next_seq(a), 0);
	r = nl_talk(a, nlh, state_cb, a);
	if (r < 0)
		goto fail;
	if (cfg->mode == VIP_MODE_LOCAL_ROUTE) {
		nlh = nl_build_getroute_dump(a->req, next_seq(a), cfg->vip.addr.family,
					     RT_TABLE_LOCAL);
		r = nl_talk(a, nlh, state_cb, a);
		if (r < 0)
			goto fail;
	}
	a->m.resyncs[reason]++;
	a->m.ifa_proto_supported = a->st.ifa_proto_supported;
	if (a->st.overflow && !a->warned_overflow) {
		log_warn("event=state_overflow msg=\"more addresses or routes match the VIP than "
			 "tracked; some are ignored\"");
		a->warned_overflow = true;
	}
	log_debug("event=resync reason=%s ifindex=%d addresses=%u routes=%u",
		  vip_resync_reason_name(reason), a->st.ifindex, a->st.n_addrs, a->st.n_routes);
	return 0;
fail:
	/* The kernel's state changed during a dump: simply take it again. */
	if (r == -EINTR && ++attempts < 5)
		goto again;
	a->m.netlink_errors++;
	log_error("event=resync_failed reason=%s error=\"%s\"", vip_resync_reason_name(reason),
		  strerror(-r));
	return r;
}

/* ---- reconciliation ---- */

struct actions {
	char text[160];
	size_t len;
};

static void did(struct actions *ac, const char *what)
{
	int n = snprintf(ac->text + ac->len, sizeof(ac->text) - ac->len, "%s%s", ac->len ? "," : "",
			 what);

	if (n > 0 && (size_t)n < sizeof(ac->text) - ac->len)
		ac->len += (size_t)n;
}

/* Logs a refused request as one line and returns r. */
static int refused(struct agent *a, const char *op, int r)
{
	char why[300];

	a->m.netlink_errors++;
	log_error("event=netlink_error op=%s vip=%s interface=%s error=\"%s\"%s%s", op, a->vip,
		  a->cfg->ifname, strerror(-r), a->why[0] ? " kernel=" : "",
		  a->why[0] ? vip_logfmt_value(a->why, why, sizeof(why)) : "");
	return r;
}

static void kind_config_name(const char *kind, char *buf, size_t size)
{
	size_t n = 0;

	n += (size_t)snprintf(buf, size, "CONFIG_");
	for (const char *p = kind; *p && n + 1 < size; p++)
		buf[n++] =
		    (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : (*p == '-' ? '_' : *p);
	buf[n] = '\0';
}

static int create_link(struct agent *a)
{
	const struct vip_config *cfg = a->cfg;
	struct nlmsghdr *nlh;
	char config[32];
	int r;

	nlh = nl_build_newlink(a->req, next_seq(a), cfg->ifname, cfg->link_kind);
	nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_EXCL;
	r = nl_talk(a, nlh, NULL, NULL);
	if (r == -EOPNOTSUPP) {
		kind_config_name(cfg->link_kind, config, sizeof(config));
		a->m.netlink_errors++;
		log_error("event=link_create_failed interface=%s kind=%s error=\"--interface %s: "
			  "cannot create it: this kernel has no '%s' link type (%s); load the "
			  "module, create %s beforehand, or use --mode local-route\"",
			  cfg->ifname, cfg->link_kind, cfg->ifname, cfg->link_kind, config,
			  cfg->ifname);
		return r;
	}
	if (r < 0 && r != -EEXIST)
		return refused(a, "create_link", r);
	/* Learn its index (the reply is an RTM_NEWLINK the state takes as is). */
	nlh = nl_build_getlink(a->req, next_seq(a), cfg->ifname);
	r = nl_talk(a, nlh, state_cb, a);
	if (r == -ENODEV || (r == 0 && !a->st.ifindex))
		return -ENODEV;
	if (r < 0)
		return refused(a, "get_link", r);
	return 0;
}

static int set_up(struct agent *a, bool mark_ours)
{
	struct nlmsghdr *nlh;
	int r;

	nlh = nl_build_setlink_up(a->req, next_seq(a), a->st.ifindex,
				  mark_ours ? VIP_LINK_ALIAS : NULL);
	r = nl_talk(a, nlh, NULL, NULL);
	if (r == -ENODEV)
		return r;
	if (r < 0)
		return refused(a, "link_up", r);
	a->st.ifflags |= IFF_UP;
	if (mark_ours)
		a->st.link_ours = true;
	return 0;
}

static int add_addr(struct agent *a)
{
	const struct vip_config *cfg = a->cfg;
	struct vip_addr_entry e = {0};
	struct nlmsghdr *nlh;
	int r;

	/*
	 * NLM_F_EXCL, never NLM_F_REPLACE: if someone (Talos' DummyLinkConfig, say) has put the
	 * VIP back meanwhile, theirs is left as it is, not taken over.
	 */
	nlh = nl_build_addr(a->req, next_seq(a), RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
			    a->st.ifindex, &cfg->vip.addr, (uint8_t)cfg->vip.prefix, VIP_IFAPROT,
			    cfg->label[0] ? cfg->label : NULL);
	r = nl_talk(a, nlh, NULL, NULL);
	if (r == -ENODEV || r == -EEXIST)
		return r;
	if (r < 0)
		return refused(a, "add_address", r);
	e.ifindex = a->st.ifindex;
	e.addr = cfg->vip.addr;
	e.prefixlen = (uint8_t)cfg->vip.prefix;
	e.has_proto = a->st.ifa_proto_supported;
	e.proto = VIP_IFAPROT;
	e.label_ours = cfg->vip.addr.family == AF_INET && cfg->label[0];
	vip_state_note_addr(&a->st, &e, true);
	return 0;
}

static int del_addr(struct agent *a, const struct vip_addr_entry *e)
{
	char ip[CIDR_STRLEN];
	struct nlmsghdr *nlh;
	int r;

	nlh = nl_build_addr(a->req, next_seq(a), RTM_DELADDR, 0, e->ifindex, &e->addr, e->prefixlen,
			    0, NULL);
	r = nl_talk(a, nlh, NULL, NULL);
	if (r < 0 && r != -EADDRNOTAVAIL && r != -ENODEV && r != -ENOENT)
		return refused(a, "delete_address", r);
	vip_state_note_addr(&a->st, e, false);
	log_info("event=address_removed address=%s/%u ifindex=%d reason=owned_not_wanted",
		 ip_format(&e->addr, ip, sizeof(ip)), e->prefixlen, e->ifindex);
	return 0;
}

static int route(struct agent *a, uint16_t type, uint16_t flags, int oif)
{
	const struct vip_config *cfg = a->cfg;
	struct vip_route_entry e = {oif, VIP_RTPROT, RTN_LOCAL, 0, 0};
	struct nlmsghdr *nlh;
	int r;

	nlh = nl_build_local_route(a->req, next_seq(a), type, flags, oif, &cfg->vip.addr,
				   (uint8_t)cfg->vip.prefix, VIP_RTPROT);
	r = nl_talk(a, nlh, NULL, NULL);
	if (type == RTM_DELROUTE && r == -ESRCH)
		r = 0;
	if (r == -ENODEV)
		return r;
	if (r < 0)
		return refused(a, type == RTM_NEWROUTE ? "add_route" : "delete_route", r);
	if (flags & NLM_F_REPLACE) {
		/* The replaced route (ours via another interface) is gone. */
		for (unsigned i = 0; i < a->st.n_routes; i++)
			if (a->st.routes[i].protocol == VIP_RTPROT)
				vip_state_note_route(&a->st, &a->st.routes[i--], false);
	}
	vip_state_note_route(&a->st, &e, type == RTM_NEWROUTE);
	return 0;
}

static void arm_timer(int fd, uint64_t first_ms, uint64_t interval_ms)
{
	struct itimerspec its = {
	    .it_value = {(time_t)(first_ms / 1000), (long)(first_ms % 1000) * 1000000},
	    .it_interval = {(time_t)(interval_ms / 1000), (long)(interval_ms % 1000) * 1000000},
	};

	timerfd_settime(fd, 0, &its, NULL);
}

static void schedule_retry(struct agent *a)
{
	if (a->retry_fd < 0)
		return;
	a->retry_ms = a->retry_ms ? a->retry_ms * 2 : RETRY_MIN_MS;
	if (a->retry_ms > RETRY_MAX_MS)
		a->retry_ms = RETRY_MAX_MS;
	arm_timer(a->retry_fd, a->retry_ms, 0);
	log_info("event=retry_scheduled in_ms=%llu", (unsigned long long)a->retry_ms);
}

static void warn_conflicts(struct agent *a, const struct vip_plan *plan)
{
	char name[IF_NAMESIZE];

	if (plan->foreign_ifindex && plan->foreign_ifindex != a->warned_foreign_ifindex)
		log_warn("event=conflict vip=%s other_interface=%s other_ifindex=%d msg=\"the VIP "
			 "is also an address there, not ours; left alone\"",
			 a->vip, if_indextoname((unsigned)plan->foreign_ifindex, name) ? name : "?",
			 plan->foreign_ifindex);
	a->warned_foreign_ifindex = plan->foreign_ifindex;
	if (plan->foreign_route && !a->warned_foreign_route)
		log_warn("event=conflict vip=%s msg=\"table local has a route to the VIP that is "
			 "not ours; left alone\"",
			 a->vip);
	a->warned_foreign_route = plan->foreign_route;
	if (plan->wait_link && !a->warned_wait_link)
		log_warn("event=waiting vip=%s interface=%s msg=\"interface missing or down; the "
			 "route comes back with it\"",
			 a->vip, a->cfg->ifname);
	a->warned_wait_link = plan->wait_link;
}

static int apply_route_plan(struct agent *a, const struct vip_plan *plan, struct actions *ac)
{
	int r = 0;

	/* Stale addresses first: one of ours holding the VIP would block the route. */
	for (unsigned i = 0; i < plan->n_del && r == 0; i++)
		if ((r = del_addr(a, &plan->del[i])) == 0)
			did(ac, "stale_address_removed");
	if (r < 0 || !plan->add_route)
		return r;
	r = route(a, RTM_NEWROUTE,
		  NLM_F_CREATE | (plan->replace_route ? NLM_F_REPLACE : NLM_F_EXCL), a->st.ifindex);
	if (r == -EEXIST) {
		/* Someone added one meanwhile: look again. */
		r = resync(a, VIP_RESYNC_RETRY);
		if (r == 0 && !vip_in_place(&a->st, a->cfg))
			r = refused(a, "add_route", -EEXIST);
	} else if (r == 0) {
		did(ac, plan->replace_route ? "route_replaced" : "route_added");
	}
	return r;
}

static int apply_address_plan(struct agent *a, struct vip_plan *plan, struct actions *ac)
{
	int r = 0;

	if (plan->create_link) {
		r = create_link(a);
		if (r == 0) {
			did(ac, "link_created");
			r = set_up(a, true);
			if (r == 0)
				did(ac, "link_up");
		}
	} else if (plan->set_up) {
		r = set_up(a, false);
		if (r == 0)
			did(ac, "link_up");
	}
	if (r < 0)
		return r;
	/*
	 * The link was down or new: a down link lost its IPv6 addresses, and the notifications
	 * of that flush may still be on their way. The kernel is done with it (our request
	 * waited for the same lock), so read its state now and act on that, once: one event
	 * says everything that was restored.
	 */
	if (plan->create_link || plan->set_up) {
		r = resync(a, VIP_RESYNC_LINK);
		if (r < 0)
			return r;
	}
	vip_plan_make(&a->st, a->cfg, plan);
	if (plan->add_addr) {
		r = add_addr(a);
		if (r == -EEXIST) {
			/* Put back by someone else meanwhile: look, and take it as present. */
			r = resync(a, VIP_RESYNC_RETRY);
			if (r == 0 && !vip_in_place(&a->st, a->cfg))
				r = refused(a, "add_address", -EEXIST);
			if (r == 0)
				vip_plan_make(&a->st, a->cfg, plan);
		} else if (r == 0) {
			did(ac, "address_added");
		}
	}
	for (unsigned i = 0; i < plan->n_del && r == 0; i++)
		if ((r = del_addr(a, &plan->del[i])) == 0)
			did(ac, "stale_address_removed");
	return r;
}

/*
 * Brings the kernel to the desired state. a->lost_cause says what took the VIP away
 * (NONE at startup or when nothing did); t0_us is when we learnt of it, for the log.
 */
static int reconcile(struct agent *a, uint64_t t0_us, bool startup)
{
	const struct vip_config *cfg = a->cfg;
	struct actions ac = {{0}, 0};
	struct vip_plan plan;
	bool was_present = a->m.present;
	int r = 0;

	vip_plan_make(&a->st, cfg, &plan);
	a->m.last_reconcile = wall_seconds();
	warn_conflicts(a, &plan);
	/* Deleting a link first takes it down: when it is gone, say so. */
	if (plan.create_link && a->lost_cause == VIP_CAUSE_LINK_DOWN)
		a->lost_cause = VIP_CAUSE_LINK_REMOVED;
	/*
	 * A link deleted under us shows first as "down": ENODEV then means it is gone, not
	 * that something failed. Look again and create it (a bounded number of times).
	 */
	for (int attempt = 0; attempt < 3 && !vip_plan_empty(&plan); attempt++) {
		r = cfg->mode == VIP_MODE_LOCAL_ROUTE ? apply_route_plan(a, &plan, &ac)
						      : apply_address_plan(a, &plan, &ac);
		if (r != -ENODEV)
			break;
		log_info("event=link_vanished interface=%s msg=\"looking again\"", cfg->ifname);
		if (a->lost_cause == VIP_CAUSE_NONE || a->lost_cause == VIP_CAUSE_LINK_DOWN)
			a->lost_cause = startup ? VIP_CAUSE_NONE : VIP_CAUSE_LINK_REMOVED;
		r = resync(a, VIP_RESYNC_LINK);
		if (r < 0)
			break;
		vip_plan_make(&a->st, cfg, &plan);
		r = -ENODEV;
	}
	if (r == -ENODEV)
		refused(a, "link", r);
	if (r < 0) {
		schedule_retry(a);
		goto done;
	}
	if (ac.len) {
		enum vip_cause cause = a->lost_cause;

		if (!startup && cause == VIP_CAUSE_NONE)
			cause = VIP_CAUSE_RESYNC;
		if (!startup)
			a->m.restores[cause]++;
		log_info("event=%s vip=%s interface=%s mode=%s cause=%s actions=%s latency_us=%llu",
			 startup ? "applied" : "restored", a->vip, cfg->ifname,
			 vip_mode_name(cfg->mode), startup ? "startup" : vip_cause_name(cause),
			 ac.text, (unsigned long long)(now_us() - t0_us));
	}
done:
	a->m.present = vip_in_place(&a->st, cfg);
	if (r == 0) {
		if (a->retry_ms) {
			a->retry_ms = 0;
			arm_timer(a->retry_fd, 0, 0);
		}
		if (a->m.present)
			a->lost_cause = VIP_CAUSE_NONE;
	}
	if (!startup && a->m.present != was_present && !ac.len)
		log_info("event=%s vip=%s interface=%s", a->m.present ? "in_place" : "not_in_place",
			 a->vip, cfg->ifname);
	else if (startup && !ac.len && a->m.present)
		log_info("event=in_place vip=%s interface=%s mode=%s msg=\"already in place; "
			 "nothing changed\"",
			 a->vip, cfg->ifname, vip_mode_name(cfg->mode));
	return r;
}

/* ---- monitor ---- */

struct monitor_ctx {
	struct agent *a;
	enum vip_cause cause;
	uint16_t type;
	uint32_t portid;
	bool link_event;
};

static int monitor_cb(const struct nlmsghdr *nlh, void *data)
{
	struct monitor_ctx *m = data;
	int before = m->a->st.ifindex;
	enum vip_cause c = vip_state_apply(&m->a->st, m->a->cfg, nlh);

	if (c != VIP_CAUSE_NONE && m->cause == VIP_CAUSE_NONE) {
		m->cause = c;
		m->type = nlh->nlmsg_type;
		m->portid = nlh->nlmsg_pid;
	}
	if ((nlh->nlmsg_type == RTM_NEWLINK || nlh->nlmsg_type == RTM_DELLINK) &&
	    nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(struct ifinfomsg))) {
		const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

		/* Only our link: other links come and go by the hundred on a busy node. */
		if (ifi->ifi_index &&
		    (ifi->ifi_index == before || ifi->ifi_index == m->a->st.ifindex))
			m->link_event = true;
	}
	log_debug("event=netlink type=%s portid=%u", nl_type_name(nlh->nlmsg_type), nlh->nlmsg_pid);
	return MNL_CB_OK;
}

static void on_monitor(struct agent *a)
{
	struct monitor_ctx m = {a, VIP_CAUSE_NONE, 0, 0, false};
	int fd = mnl_socket_get_fd(a->mon);
	uint64_t t0 = now_us();
	bool overflowed = false, was = vip_in_place(&a->st, a->cfg);

	for (int reads = 0; reads < MONITOR_BATCH_READS; reads++) {
		ssize_t n = recv(fd, a->buf, sizeof(a->buf), MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/*
			 * The kernel dropped notifications: the state can no longer be trusted, a
			 * full resync replaces it. NETLINK_NO_ENOBUFS stays off (as keepalived
			 * leaves it), so that such a loss is always reported.
			 */
			if (errno == ENOBUFS) {
				overflowed = true;
				continue;
			}
			if (errno != EAGAIN)
				log_error("event=monitor_error error=\"%s\"", strerror(errno));
			break;
		}
		if (n == 0)
			break;
		mnl_cb_run(a->buf, nl_valid_length(a->buf, (size_t)n), 0, 0, monitor_cb, &m);
	}
	if (overflowed) {
		a->m.netlink_errors++;
		log_warn("event=monitor_overflow msg=\"events lost (ENOBUFS); resyncing\"");
		if (resync(a, VIP_RESYNC_ENOBUFS) < 0) {
			schedule_retry(a);
			return;
		}
	} else if (m.link_event && a->cfg->mode == VIP_MODE_LOCAL_ROUTE) {
		/* The kernel flushes routes of a link without telling: look at the table. */
		if (resync(a, VIP_RESYNC_LINK) < 0) {
			schedule_retry(a);
			return;
		}
	}
	if (vip_in_place(&a->st, a->cfg)) {
		/* Gone and back within one batch (our own changes echoed, say): nothing to do. */
		reconcile(a, t0, false);
		return;
	}
	if (m.cause == VIP_CAUSE_NONE && was) {
		/* Found by a resync: after an event of our link, the link was the cause. */
		if (m.link_event)
			m.cause = a->st.ifindex ? VIP_CAUSE_LINK_DOWN : VIP_CAUSE_LINK_REMOVED;
		else
			m.cause = VIP_CAUSE_RESYNC;
	}
	/* A link that went down or away takes addresses and routes with it: name the link. */
	if (m.cause != VIP_CAUSE_NONE && m.link_event && !a->st.ifindex)
		m.cause = VIP_CAUSE_LINK_REMOVED;
	else if (m.cause != VIP_CAUSE_NONE && m.link_event && !(a->st.ifflags & IFF_UP))
		m.cause = VIP_CAUSE_LINK_DOWN;
	if (m.cause != VIP_CAUSE_NONE) {
		a->lost_cause = m.cause;
		log_info("event=vip_lost vip=%s interface=%s cause=%s trigger=%s by_portid=%u",
			 a->vip, a->cfg->ifname, vip_cause_name(m.cause),
			 m.type ? nl_type_name(m.type) : "resync", m.portid);
	}
	reconcile(a, t0, false);
}

/* ---- HTTP ---- */

static void conn_close(struct agent *a, struct conn *c)
{
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
}

static void arm_conn_timer(struct agent *a)
{
	uint64_t earliest = 0, now = now_ms();

	for (int i = 0; i < MAX_CONNS; i++)
		if (a->conns[i].fd >= 0 && (!earliest || a->conns[i].deadline_ms < earliest))
			earliest = a->conns[i].deadline_ms;
	arm_timer(a->conn_timer_fd, earliest ? (earliest > now ? earliest - now : 1) : 0, 0);
}

static void on_accept(struct agent *a)
{
	for (;;) {
		int fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c = NULL;
		struct epoll_event ev;

		if (fd < 0)
			break;
		for (int i = 0; i < MAX_CONNS && !c; i++)
			if (a->conns[i].fd < 0)
				c = &a->conns[i];
		if (!c) {
			/*
			 * Full: the oldest connection makes room. Idle connections that never send
			 * a request cannot keep the kubelet's probe out.
			 */
			c = &a->conns[0];
			for (int i = 1; i < MAX_CONNS; i++)
				if (a->conns[i].accepted_ms < c->accepted_ms)
					c = &a->conns[i];
			log_debug("event=http_evicted msg=\"all connections busy; the oldest is "
				  "closed\"");
			conn_close(a, c);
		}
		c->fd = fd;
		c->in_len = c->out_len = c->out_off = 0;
		c->accepted_ms = now_ms();
		c->deadline_ms = c->accepted_ms + CONN_TIMEOUT_MS;
		ev.events = EPOLLIN;
		ev.data.u64 = TAG_CONN | ((uint64_t)(c - a->conns) << 32);
		if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			c->fd = -1;
		}
	}
	arm_conn_timer(a);
}

static void conn_write(struct agent *a, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct epoll_event ev = {.events = EPOLLOUT,
						 .data.u64 =
						     TAG_CONN | ((uint64_t)(c - a->conns) << 32)};

			epoll_ctl(a->epfd, EPOLL_CTL_MOD, c->fd, &ev);
			return;
		}
		if (n <= 0)
			break;
		c->out_off += (size_t)n;
	}
	conn_close(a, c);
	arm_conn_timer(a);
}

static void on_conn(struct agent *a, struct conn *c)
{
	int r;

	if (c->out_len) {
		conn_write(a, c);
		return;
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			conn_close(a, c);
			arm_conn_timer(a);
			return;
		}
		c->in_len += (size_t)n;
		if (c->in_len == sizeof(c->in))
			break;
	}
	a->m.present = vip_in_place(&a->st, a->cfg);
	r = http_respond(c->in, c->in_len, &a->m, a->cfg, c->out, sizeof(c->out));
	if (r == 0)
		return; /* incomplete: wait for more */
	if (r < 0) {
		conn_close(a, c);
		arm_conn_timer(a);
		return;
	}
	c->out_len = (size_t)r;
	conn_write(a, c);
}

static void on_conn_timer(struct agent *a)
{
	uint64_t now = now_ms(), expirations;

	if (read(a->conn_timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return;
	for (int i = 0; i < MAX_CONNS; i++)
		if (a->conns[i].fd >= 0 && a->conns[i].deadline_ms <= now)
			conn_close(a, &a->conns[i]);
	arm_conn_timer(a);
}

static int open_listener(struct agent *a)
{
	const struct vip_config *cfg = a->cfg;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[64];
	int one = 1, fd, port;

	fd = socket(cfg->metrics_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&cfg->metrics_addr, cfg->metrics_addr_len) < 0 ||
	    listen(fd, 16) < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		host[0] = '[';
		inet_ntop(AF_INET6, &s6->sin6_addr, host + 1, sizeof(host) - 2);
		strcat(host, "]");
		port = ntohs(s6->sin6_port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
	}
	snprintf(a->why, sizeof(a->why), "%s:%d", host, port);
	a->listen_fd = fd;
	return 0;
}

/* ---- cleanup on exit ---- */

struct count_ctx {
	int ifindex;
	unsigned others;
};

static int count_foreign_cb(const struct nlmsghdr *nlh, void *data)
{
	struct count_ctx *c = data;
	struct nl_addr ad;

	/* Link-local and host addresses the kernel made do not keep a link alive. */
	if (nl_parse_addr(nlh, &ad) == 0 && ad.ifindex == c->ifindex && ad.scope < RT_SCOPE_LINK)
		c->others++;
	return MNL_CB_OK;
}

static void cleanup(struct agent *a)
{
	const struct vip_config *cfg = a->cfg;
	struct actions ac = {{0}, 0};
	int r;

	if (resync(a, VIP_RESYNC_SIGNAL) < 0)
		return;
	/* Everything we own is unwanted now. */
	for (unsigned i = 0; i < a->st.n_addrs; i++) {
		struct vip_addr_entry e = a->st.addrs[i];

		if (vip_addr_owned(&a->st, cfg, &e) && del_addr(a, &e) == 0) {
			did(&ac, "address_removed");
			i--;
		}
	}
	if (cfg->mode == VIP_MODE_LOCAL_ROUTE) {
		for (unsigned i = 0; i < a->st.n_routes; i++) {
			const struct vip_route_entry *e = &a->st.routes[i];

			if (e->protocol == VIP_RTPROT && e->type == RTN_LOCAL &&
			    route(a, RTM_DELROUTE, 0, e->oif) == 0) {
				did(&ac, "route_removed");
				i--;
			}
		}
	} else if (a->st.ifindex && a->st.link_ours) {
		struct count_ctx c = {a->st.ifindex, 0};
		struct nlmsghdr *nlh = nl_build_getaddr_dump(a->req, next_seq(a), a->st.ifindex);

		r = nl_talk(a, nlh, count_foreign_cb, &c);
		if (r == 0 && c.others == 0) {
			nlh = nl_build_dellink(a->req, next_seq(a), a->st.ifindex);
			r = nl_talk(a, nlh, NULL, NULL);
			if (r == 0)
				did(&ac, "link_removed");
			else
				refused(a, "delete_link", r);
		} else if (r == 0) {
			log_info("event=link_kept interface=%s msg=\"other addresses on it\"",
				 cfg->ifname);
		}
	}
	log_info("event=cleanup vip=%s interface=%s actions=%s", a->vip, cfg->ifname,
		 ac.len ? ac.text : "none");
}

/* ---- setup ---- */

static struct mnl_socket *open_netlink(unsigned groups, int flags)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, flags | SOCK_CLOEXEC);

	if (!nl)
		return NULL;
	if (mnl_socket_bind(nl, groups, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;

		mnl_socket_close(nl);
		errno = e;
		return NULL;
	}
	return nl;
}

/* The kernel keeps IFA_PROTO since Linux 6.1; seeing the attribute also proves it. */
static bool kernel_has_ifa_proto(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;

	if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return false;
	return major > 6 || (major == 6 && minor >= 1);
}

static int epoll_add(int epfd, int fd, enum tag tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int setup(struct agent *a)
{
	const struct vip_config *cfg = a->cfg;
	unsigned groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
	int one = 1;
	sigset_t mask;

	if (cfg->mode == VIP_MODE_LOCAL_ROUTE)
		groups |= RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	a->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (a->sigfd < 0 || a->epfd < 0)
		return -errno;

	/* Subscribe before the first dump, so nothing happens unseen in between. */
	a->mon = open_netlink(groups, SOCK_NONBLOCK);
	a->cmd = open_netlink(0, 0);
	if (!a->mon || !a->cmd)
		return -errno;
	a->cmd_portid = mnl_socket_get_portid(a->cmd);
	{
		int fd = mnl_socket_get_fd(a->mon), size = MONITOR_RCVBUF, zero = 0, got = 0;
		socklen_t len = sizeof(got);

		/* SO_RCVBUFFORCE needs CAP_NET_ADMIN, which we have; else within rmem_max. */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		mnl_socket_setsockopt(a->mon, NETLINK_NO_ENOBUFS, &zero, sizeof(zero));
		if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0 && got > 0)
			a->mon_rcvbuf = (size_t)got;
	}
	/* Best effort: the kernel's reason for a refusal, and dumps it filters itself. */
	mnl_socket_setsockopt(a->cmd, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(a->cmd, NETLINK_CAP_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(a->cmd, NETLINK_GET_STRICT_CHK, &one, sizeof(one));
	{
		struct timeval tv = {CMD_TIMEOUT_S, 0};

		setsockopt(mnl_socket_get_fd(a->cmd), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	if (epoll_add(a->epfd, mnl_socket_get_fd(a->mon), TAG_MONITOR) < 0 ||
	    epoll_add(a->epfd, a->sigfd, TAG_SIGNAL) < 0)
		return -errno;
	if (cfg->once)
		return 0;
	a->retry_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (a->retry_fd < 0 || epoll_add(a->epfd, a->retry_fd, TAG_RETRY) < 0)
		return -errno;
	if (cfg->resync_ms) {
		a->resync_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (a->resync_fd < 0 || epoll_add(a->epfd, a->resync_fd, TAG_RESYNC) < 0)
			return -errno;
	}
	return 0;
}

static int setup_http(struct agent *a)
{
	char addr[256];
	int r;

	a->conn_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (a->conn_timer_fd < 0 || epoll_add(a->epfd, a->conn_timer_fd, TAG_CONN_TIMER) < 0)
		return -errno;
	r = open_listener(a);
	if (r < 0)
		return r;
	snprintf(addr, sizeof(addr), "%s", a->why);
	a->why[0] = '\0';
	if (epoll_add(a->epfd, a->listen_fd, TAG_LISTEN) < 0)
		return -errno;
	snprintf(a->why, sizeof(a->why), "%s", addr);
	return 0;
}

static void resync_and_reconcile(struct agent *a, enum vip_resync_reason reason);

static void on_signal(struct agent *a)
{
	struct signalfd_siginfo si;

	while (read(a->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_info("event=signal signal=SIGHUP action=resync");
			resync_and_reconcile(a, VIP_RESYNC_SIGNAL);
		} else {
			log_info("event=signal signal=%s action=%s",
				 si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT",
				 a->cfg->cleanup_on_exit ? "cleanup_and_exit" : "exit_leaving_vip");
			a->stop = true;
		}
	}
}

static void resync_and_reconcile(struct agent *a, enum vip_resync_reason reason)
{
	bool was = a->m.present;

	if (resync(a, reason) < 0) {
		schedule_retry(a);
		return;
	}
	if (was && !vip_in_place(&a->st, a->cfg) && a->lost_cause == VIP_CAUSE_NONE)
		a->lost_cause = VIP_CAUSE_RESYNC;
	reconcile(a, now_us(), false);
}

static void on_timer(struct agent *a, int fd, enum vip_resync_reason reason)
{
	uint64_t expirations;

	if (read(fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return;
	resync_and_reconcile(a, reason);
}

static void loop(struct agent *a)
{
	struct epoll_event evs[8];

	while (!a->stop) {
		int n = epoll_wait(a->epfd, evs, 8, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("event=epoll_failed error=\"%s\"", strerror(errno));
			return;
		}
		for (int i = 0; i < n && !a->stop; i++) {
			uint64_t tag = evs[i].data.u64;

			switch ((enum tag)(tag & 0xffffffffu)) {
			case TAG_MONITOR:
				on_monitor(a);
				break;
			case TAG_SIGNAL:
				on_signal(a);
				break;
			case TAG_RESYNC:
				on_timer(a, a->resync_fd, VIP_RESYNC_TIMER);
				break;
			case TAG_RETRY:
				on_timer(a, a->retry_fd, VIP_RESYNC_RETRY);
				break;
			case TAG_LISTEN:
				on_accept(a);
				break;
			case TAG_CONN_TIMER:
				on_conn_timer(a);
				break;
			case TAG_CONN: {
				struct conn *c = &a->conns[tag >> 32];

				if (c->fd >= 0)
					on_conn(a, c);
				break;
			}
			}
		}
	}
}

static void teardown(struct agent *a)
{
	int fds[] = {a->epfd, a->sigfd, a->resync_fd, a->retry_fd, a->listen_fd, a->conn_timer_fd};

	for (int i = 0; i < MAX_CONNS; i++)
		if (a->conns[i].fd >= 0)
			close(a->conns[i].fd);
	if (a->mon)
		mnl_socket_close(a->mon);
	if (a->cmd)
		mnl_socket_close(a->cmd);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int vip_agent_run(const struct vip_config *cfg)
{
	/* Static: the buffers are large, and there is one agent per process. */
	static struct agent agent;
	struct agent *a = &agent;
	struct error err = {0};
	char listen_addr[256] = "off";
	int r, status = VIP_EXIT_FAILURE;

	memset(a, 0, sizeof(*a));
	a->cfg = cfg;
	a->epfd = a->sigfd = a->resync_fd = a->retry_fd = a->listen_fd = a->conn_timer_fd = -1;
	for (int i = 0; i < MAX_CONNS; i++)
		a->conns[i].fd = -1;
	cidr_format(&cfg->vip, a->vip, sizeof(a->vip));
	a->st.ifa_proto_supported = kernel_has_ifa_proto();

	r = setup(a);
	if (r < 0) {
		log_error("event=setup_failed error=\"%s\"", strerror(-r));
		goto out;
	}
	if (!cfg->once && cfg->metrics_enabled) {
		r = setup_http(a);
		if (r < 0) {
			log_error("event=setup_failed error=\"--metrics-addr: cannot listen: %s\"",
				  strerror(-r));
			goto out;
		}
		snprintf(listen_addr, sizeof(listen_addr), "%s", a->why);
	}
	if (resync(a, VIP_RESYNC_STARTUP) < 0)
		goto out;
	/* Conflicts are found before anything is changed. */
	if (vip_check_conflicts(&a->st, cfg, &err) < 0) {
		char v[600];

		log_error("event=conflict error=%s", vip_logfmt_value(err.msg, v, sizeof(v)));
		status = VIP_EXIT_USAGE;
		goto out;
	}
	if (cfg->mode == VIP_MODE_LOCAL_ROUTE && !a->st.ifindex) {
		log_error("event=bad_input error=\"--interface %s: no such interface (local-route "
			  "mode needs an existing one)\"",
			  cfg->ifname);
		status = VIP_EXIT_USAGE;
		goto out;
	}
	log_info("event=start vip=%s interface=%s mode=%s resync_ms=%llu once=%s "
		 "cleanup_on_exit=%s ifa_proto=%s link_exists=%s monitor_rcvbuf=%zu",
		 a->vip, cfg->ifname, vip_mode_name(cfg->mode), (unsigned long long)cfg->resync_ms,
		 cfg->once ? "true" : "false", cfg->cleanup_on_exit ? "true" : "false",
		 a->st.ifa_proto_supported ? "true" : "false", a->st.ifindex ? "true" : "false",
		 a->mon_rcvbuf);
	if (reconcile(a, now_us(), true) < 0)
		goto out;
	if (cfg->once) {
		status = a->m.present ? VIP_EXIT_OK : VIP_EXIT_FAILURE;
		goto out;
	}
	if (a->resync_fd >= 0)
		arm_timer(a->resync_fd, cfg->resync_ms, cfg->resync_ms);
	log_info("event=ready vip=%s interface=%s listen=%s present=%s", a->vip, cfg->ifname,
		 listen_addr, a->m.present ? "true" : "false");
	loop(a);
	if (cfg->cleanup_on_exit)
		cleanup(a);
	status = VIP_EXIT_OK;
out:
	teardown(a);
	return status;
}
