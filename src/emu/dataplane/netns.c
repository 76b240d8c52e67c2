/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Named network namespaces, kept the way iproute2 keeps them (ip-netns(8)): the namespace
 * bind-mounted on /run/netns/NAME, /run/netns itself a shared mount point so that the names
 * propagate to every mount namespace. `ip netns exec NAME ...` (tests, operators) and this
 * file see the same names.
 *
 * A namespace is made with unshare(CLONE_NEWNET) on the calling thread, which then sets it up
 * (sysctls, sockets) and returns to the emulator's own namespace with setns(). Only the
 * calling thread changes namespace; the emulator has one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "emu/dataplane/dataplane.h"

#define NETNS_RUN_DIR "/run/netns"

static int root_ns = -1; /* the emulator's own namespace */

int dp_netns_init(void)
{
	if (root_ns < 0) {
		root_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (root_ns < 0)
			return -errno;
	}
	if (mkdir(NETNS_RUN_DIR, 0755) < 0 && errno != EEXIST)
		return -errno;
	/*
	 * As iproute2: make /run/netns a shared mount point (bind-mount it on itself first if it
	 * is not a mount point yet), so namespaces mounted below are seen everywhere.
	 */
	if (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	if (mount(NETNS_RUN_DIR, NETNS_RUN_DIR, "none", MS_BIND | MS_REC, NULL) < 0)
		return -errno;
	if (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) < 0)
		return -errno;
	return 0;
}

int dp_netns_enter(int nsfd)
{
	return setns(nsfd, CLONE_NEWNET) < 0 ? -errno : 0;
}

void dp_netns_leave(void)
{
	/* Cannot fail for a namespace we hold a descriptor of; if it did, nothing is safe. */
	if (setns(root_ns, CLONE_NEWNET) < 0) {
		log_error("dataplane: cannot return to the emulator's network namespace: %s",
			  strerror(errno));
		abort();
	}
}

int dp_netns_create(const char *name, int (*setup)(void *arg), void *arg, int *nsfd)
{
	char path[sizeof(NETNS_RUN_DIR) + DP_NS_MAX + 2];
	int fd, ret = 0;

	*nsfd = -1;
	snprintf(path, sizeof(path), NETNS_RUN_DIR "/%s", name);
	fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	close(fd);
	if (unshare(CLONE_NEWNET) < 0) {
		ret = -errno;
		unlink(path);
		return ret;
	}
	if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) < 0)
		ret = -errno;
	if (ret == 0) {
		*nsfd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (*nsfd < 0)
			ret = -errno;
	}
	if (ret == 0 && setup)
		ret = setup(arg);
	dp_netns_leave();
	if (ret < 0) {
		if (*nsfd >= 0)
			close(*nsfd);
		*nsfd = -1;
		umount2(path, MNT_DETACH);
		unlink(path);
	}
	return ret;
}

/* Sends SIGKILL to every process whose network namespace is the one of nsfd. */
static void kill_inside(int nsfd)
{
	struct stat want, st;
	struct dirent *de;
	DIR *d;

	if (fstat(nsfd, &want) < 0)
		return;
	d = opendir("/proc");
	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[300];
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 1 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
		if (stat(path, &st) < 0 || st.st_ino != want.st_ino || st.st_dev != want.st_dev)
			continue;
		log_debug("dataplane: killing process %ld left in a namespace", pid);
		kill((pid_t)pid, SIGKILL);
	}
	closedir(d);
}

int dp_netns_delete(const char *name, int nsfd)
{
	char path[sizeof(NETNS_RUN_DIR) + DP_NS_MAX + 2];
	int fd = nsfd, ret = 0;

	snprintf(path, sizeof(path), NETNS_RUN_DIR "/%s", name);
	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		kill_inside(fd);
		if (fd != nsfd)
			close(fd);
	}
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		ret = -errno;
	if (unlink(path) < 0 && errno != ENOENT && ret == 0)
		ret = -errno;
	return ret;
}

int dp_netns_cleanup(const char *prefix)
{
	size_t plen = strlen(prefix);
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(NETNS_RUN_DIR);

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		/* Our names are PREFIX-NAME and a prefix has no '-': "tg1-" never matches tg1x-. */
		if (strncmp(de->d_name, prefix, plen) != 0 || de->d_name[plen] != '-')
			continue;
		if (dp_netns_delete(de->d_name, -1) == 0)
			n++;
	}
	closedir(d);
	return n;
}

int dp_sysctl(const char *path, const char *value)
{
	char full[256];
	size_t len = strlen(value);
	int fd, ret = 0;

	snprintf(full, sizeof(full), "/proc/sys/%s", path);
	fd = open(full, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, value, len) != (ssize_t)len)
		ret = -errno;
	close(fd);
	if (ret < 0)
		log_warn("dataplane: sysctl %s=%s: %s", path, value, strerror(-ret));
	return ret;
}

int dp_netns_socket(int nsfd, int domain, int type, int protocol)
{
	int fd, ret = dp_netns_enter(nsfd);

	if (ret < 0)
		return ret;
	fd = socket(domain, type | SOCK_CLOEXEC, protocol);
	ret = fd < 0 ? -errno : fd;
	dp_netns_leave();
	return ret;
}
