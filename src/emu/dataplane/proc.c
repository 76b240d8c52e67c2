/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Child processes inside namespaces: HAProxy (Debian's) plays the parts that are not ours to
 * write, configured and reloaded by the emulator:
 *
 *   - KubePrism on every Talos node: Talos' machine.features.kubePrism listens on
 *     127.0.0.1:7445 and balances over the control-plane endpoints, health-checking them
 *     (https://www.talos.dev/v1.10/kubernetes-guides/configuration/kubeprism/); here a TCP
 *     frontend on 127.0.0.1:7445, every control-plane node's address:6443 as a server with a
 *     TCP check, a failed connection retried on another server (`option redispatch`);
 *   - Google's TCP proxy (one process in PREFIX-vpc for every target TCP proxy): it
 *     "terminates TCP connections from clients and opens new connections to backends" on the
 *     forwarding rule's address and port, connecting from the proxy range (35.191.N.10 for
 *     network N) to the backend service's named port of the healthy backends only (the health
 *     checks are the data plane's probes, not HAProxy's), with the PROXY v1 header when the
 *     target proxy says PROXY_V1 and the backend service's timeoutSec.
 *
 * HAProxy runs in master-worker mode in the foreground (-Ws -db): a new configuration is a
 * SIGUSR2 to the master, which starts new workers and lets the old ones finish. A SIGUSR2
 * before the master has set up its handlers would kill it: the master says READY=1 on a
 * notify socket (systemd's protocol, which -Ws speaks) when it is loaded and after each
 * reload, and a reload is sent only to a ready master (else it waits for the READY). Children die
 * with the emulator (PR_SET_PDEATHSIG), even after kill -9; the next start removes the
 * namespaces, and with them anything left. Exits are seen through a pidfd on the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/str.h"
#include "emu/dataplane/dataplane.h"

#define RESTART_DELAY_MS 1000

struct dp_proc {
	struct emu_dataplane *dp;
	char *name; /* "kubeprism-NODE" */
	pid_t pid;
	int pidfd;
	char *cfg_path, *log_path;
	char *cfg; /* what the running master has, or will have once reloaded */
	uint64_t started_ms;
	bool exited;
	int notify_fd; /* READY=1 comes here */
	char *notify_path;
	bool ready, reload_pending;
};

static const char *haproxy_path(void)
{
	static char found[256];
	static bool looked;
	const char *path = getenv("PATH");

	if (looked)
		return found[0] ? found : NULL;
	looked = true;
	for (const char *p = path ? path : ""; p && *p;) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);

		snprintf(found, sizeof(found), "%.*s/haproxy", (int)n, p);
		if (n && access(found, X_OK) == 0)
			return found;
		p = colon ? colon + 1 : NULL;
	}
	snprintf(found, sizeof(found), "/usr/sbin/haproxy");
	if (access(found, X_OK) == 0)
		return found;
	found[0] = '\0';
	log_warn("dataplane: haproxy not found (apt-get install haproxy): no KubePrism");
	return NULL;
}

static void on_exit_fd(struct emu *emu, int fd, uint32_t events, void *arg)
{
	struct dp_proc *p = arg;
	int status = 0;

	(void)events;
	if (waitpid(p->pid, &status, WNOHANG) != p->pid)
		return;
	emu_fd_unwatch(emu, fd);
	close(fd);
	p->pidfd = -1;
	p->exited = true;
	p->ready = false;
	log_warn("dataplane: %s (haproxy %d) exited with status %d; see %s", p->name, (int)p->pid,
		 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), p->log_path);
	p->pid = 0;
	emu_dataplane_changed(emu); /* started again, after RESTART_DELAY_MS */
}

static void reload(struct dp_proc *p)
{
	if (!p->ready) {
		p->reload_pending = true;
		return;
	}
	p->ready = false;
	p->reload_pending = false;
	kill(p->pid, SIGUSR2);
}

static void on_notify(struct emu *emu, int fd, uint32_t events, void *arg)
{
	struct dp_proc *p = arg;
	char buf[256];
	ssize_t n;

	(void)emu;
	(void)events;
	while ((n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
		buf[n] = '\0';
		if (strstr(buf, "READY=1") && p->pid > 0) {
			p->ready = true;
			if (p->reload_pending)
				reload(p);
		}
	}
}

/* A datagram socket on a path of the run directory (not per network namespace). */
static int notify_open(struct dp_proc *p)
{
	static unsigned counter;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	free(p->notify_path);
	p->notify_path = str_printf("%s/n%u.sock", p->dp->rundir, ++counter);
	if (!p->notify_path || strlen(p->notify_path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p->notify_path);
	unlink(p->notify_path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    emu_fd_watch(p->dp->emu, fd, EPOLLIN, on_notify, p) < 0) {
		close(fd);
		return -errno;
	}
	p->notify_fd = fd;
	return 0;
}

static void notify_close(struct dp_proc *p)
{
	if (p->notify_fd >= 0) {
		emu_fd_unwatch(p->dp->emu, p->notify_fd);
		close(p->notify_fd);
		p->notify_fd = -1;
	}
	if (p->notify_path)
		unlink(p->notify_path);
}

static int spawn(struct dp_proc *p, int nsfd, const char *exe)
{
	pid_t parent = getpid(), pid;
	int logfd, pidfd;

	notify_close(p);
	if (notify_open(p) < 0)
		return -EIO;
	logfd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return -errno;
	p->ready = p->reload_pending = false;
	pid = fork();
	if (pid < 0) {
		close(logfd);
		return -errno;
	}
	if (pid == 0) {
		sigset_t none;
		int devnull = open("/dev/null", O_RDONLY);

		/* Dies with the emulator, whatever kills it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (setns(nsfd, CLONE_NEWNET) < 0)
			_exit(126);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		dup2(devnull, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		close_range(3, ~0u, 0);
		setenv("NOTIFY_SOCKET", p->notify_path, 1);
		execl(exe, exe, "-Ws", "-db", "-f", p->cfg_path, (char *)NULL);
		_exit(127);
	}
	close(logfd);
	p->pid = pid;
	p->exited = false;
	p->started_ms = emu_now_ms();
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd >= 0 && emu_fd_watch(p->dp->emu, pidfd, EPOLLIN, on_exit_fd, p) == 0)
		p->pidfd = pidfd;
	else if (pidfd >= 0)
		close(pidfd);
	return 0;
}

static void proc_free(struct dp_proc *p)
{
	if (!p)
		return;
	if (p->pidfd >= 0) {
		emu_fd_unwatch(p->dp->emu, p->pidfd);
		close(p->pidfd);
	}
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
	if (p->cfg_path)
		unlink(p->cfg_path);
	notify_close(p);
	free(p->notify_path);
	free(p->name);
	free(p->cfg_path);
	free(p->log_path);
	free(p->cfg);
	free(p);
}

void dp_proc_stop(struct dp_proc *p)
{
	proc_free(p);
}

static void changed_later(struct emu *emu, void *arg)
{
	(void)arg;
	emu_dataplane_changed(emu);
}

/* Runs (or reloads) HAProxy with configuration cfg in namespace nsfd. */
static int proc_apply(struct emu_dataplane *dp, struct dp_proc **slot, const char *name, int nsfd,
		      const char *cfg)
{
	struct dp_proc *p = *slot;
	const char *exe = haproxy_path();
	int ret;

	if (!exe)
		return -ENOENT;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		p->dp = dp;
		p->pidfd = -1;
		p->notify_fd = -1;
		p->name = strdup(name);
		p->cfg_path = str_printf("%s/%s.cfg", dp->rundir, name);
		p->log_path = str_printf("%s/%s.log", dp->rundir, name);
		if (!p->name || !p->cfg_path || !p->log_path) {
			proc_free(p);
			return -ENOMEM;
		}
		*slot = p;
	}
	if (p->pid > 0 && p->cfg && strcmp(p->cfg, cfg) == 0)
		return 0;
	if (p->pid <= 0 && p->exited && emu_now_ms() - p->started_ms < RESTART_DELAY_MS) {
		/* It just died: again in a moment, not in a tight loop. */
		emu_timer_add(dp->emu, RESTART_DELAY_MS, changed_later, NULL);
		return 0;
	}
	ret = file_write_atomic(p->cfg_path, cfg, strlen(cfg), 0600);
	if (ret < 0)
		return ret;
	free(p->cfg);
	p->cfg = strdup(cfg);
	if (p->pid > 0) {
		/* Master-worker reload: new workers on the new configuration. */
		reload(p);
		return 0;
	}
	return spawn(p, nsfd, exe);
}

/* ---- KubePrism ---- */

static char *kubeprism_cfg(struct emu_dataplane *dp)
{
	char *cfg = str_printf(
	    "# KubePrism (Talos machine.features.kubePrism), played by HAProxy; written by "
	    "talos-gcp-emu --dataplane\n"
	    "global\n\tmaxconn 512\n\thard-stop-after 2s\n"
	    "defaults\n\tmode tcp\n\ttimeout connect 1s\n\ttimeout client 1h\n"
	    "\ttimeout server 1h\n\tretries 3\n\toption redispatch 1\n"
	    "frontend kubeprism\n\tbind 127.0.0.1:7445\n\tdefault_backend control_plane\n"
	    "backend control_plane\n\tbalance roundrobin\n"
	    "\tdefault-server check inter 500ms fall 2 rise 1\n");

	for (size_t i = 0; cfg && i < dp->ninsts; i++) {
		struct dp_inst *in = dp->insts[i];
		char a[16], *n;

		if (in->nsfd < 0 || !in->talos || !in->control_plane)
			continue;
		n = str_printf("%s\tserver %s %s:6443\n", cfg, in->name, dp_ip_str(in->ip, a));
		free(cfg);
		cfg = n;
	}
	return cfg;
}

void dp_kubeprism_sync(struct emu_dataplane *dp)
{
	bool kube = dp->emu->kube_url[0] != '\0';
	char *cfg = kube ? kubeprism_cfg(dp) : NULL;

	for (size_t i = 0; i < dp->ninsts; i++) {
		struct dp_inst *in = dp->insts[i];
		char name[DP_NS_MAX + 16];

		if (!cfg || in->nsfd < 0 || !in->talos) {
			dp_proc_stop(in->kubeprism);
			in->kubeprism = NULL;
			continue;
		}
		snprintf(name, sizeof(name), "kubeprism-%s", in->name);
		if (proc_apply(dp, &in->kubeprism, name, in->nsfd, cfg) == -ENOENT)
			break;
	}
	free(cfg);
}

/* ---- the TCP proxy ---- */

static char *proxy_cfg(struct emu_dataplane *dp, const struct dp_model *m)
{
	char *cfg = str_printf(
	    "# Google's TCP proxy (targetTcpProxies), played by HAProxy; written by talos-gcp-emu "
	    "--dataplane\n"
	    "global\n\tmaxconn 4096\n\thard-stop-after 5s\n"
	    "defaults\n\tmode tcp\n\ttimeout connect 5s\n\ttimeout client 1h\n"
	    "\ttimeout server 30s\n");
	size_t proxies = 0;

	for (size_t i = 0; cfg && i < m->nrules; i++) {
		const struct dp_rule *r = &m->rules[i];
		char a[16], s[16], *n;

		if (r->kind != DP_RULE_PROXY || !r->nports)
			continue;
		proxies++;
		n = str_printf("%sfrontend rule-%u\n\tbind %s:%u\n\tdefault_backend rule-%u\n"
			       "backend rule-%u\n\ttimeout server %ums\n\tsource %s\n",
			       cfg, r->id, dp_ip_str(r->ip, a), r->ports[0][0], r->id, r->id,
			       r->timeout_ms, dp_ip_str(DP_PROXY_SRC(r->net), s));
		free(cfg);
		cfg = n;
		for (size_t b = 0; cfg && b < r->nbackends; b++) {
			const struct dp_want_inst *w = &m->insts[r->backends[b].inst];
			struct dp_inst *in = dp_inst_find(dp, w->key);

			/* Only to healthy backends ("no healthy backend": nothing is served). */
			if (!in || in->nsfd < 0 || !r->backends[b].serve ||
			    (r->hc >= 0 && dp_health_state(dp, r->service_url, w->url) != 1))
				continue;
			n = str_printf("%s\tserver %s %s:%u%s\n", cfg, w->name, dp_ip_str(w->ip, a),
				       r->backends[b].serve, r->proxy_v1 ? " send-proxy" : "");
			free(cfg);
			cfg = n;
		}
	}
	if (!proxies) {
		free(cfg);
		return NULL;
	}
	return cfg;
}

void dp_proxies_sync(struct emu_dataplane *dp, const struct dp_model *m)
{
	char *cfg = proxy_cfg(dp, m);

	if (!cfg) {
		dp_proc_stop(dp->proxy);
		dp->proxy = NULL;
		return;
	}
	proc_apply(dp, &dp->proxy, "tcp-proxy", dp->vpc_fd, cfg);
	free(cfg);
}
