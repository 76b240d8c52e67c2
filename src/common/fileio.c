/* SPDX-License-Identifier: Apache-2.0 */
#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int file_read_all(const char *path, size_t max, char **out, size_t *out_len)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			size_t ncap = cap ? cap * 2 : 8192;
			char *nbuf;

			if (ncap > max + 1)
				ncap = max + 1;
			if (ncap <= len) {
				ret = -EFBIG;
				goto cleanup;
			}
			nbuf = realloc(buf, ncap + 1);
			if (!nbuf) {
				ret = -ENOMEM;
				goto cleanup;
			}
			buf = nbuf;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto cleanup;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			ret = -EFBIG;
			goto cleanup;
		}
	}
	if (!buf) {
		buf = malloc(1);
		if (!buf) {
			ret = -ENOMEM;
			goto cleanup;
		}
	}
	buf[len] = '\0';
	*out = buf;
	if (out_len)
		*out_len = len;
	buf = NULL;
cleanup:
	free(buf);
	close(fd);
	return ret;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = NULL, *dircopy = NULL;
	const char *p = data;
	int fd = -1, dfd = -1, ret = 0;

	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	/* mkostemp creates the file 0600; fchmod only ever narrows to what was asked for. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto cleanup;
	}
	if (fchmod(fd, mode) < 0) {
		ret = -errno;
		goto cleanup;
	}
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto cleanup;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) < 0) {
		ret = -errno;
		goto cleanup;
	}
	if (close(fd) < 0) {
		fd = -1;
		ret = -errno;
		goto cleanup;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		ret = -errno;
		goto cleanup;
	}
	dircopy = strdup(path);
	if (dircopy) {
		dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0)
			fsync(dfd);
	}
cleanup:
	if (fd >= 0)
		close(fd);
	if (ret < 0 && tmp)
		unlink(tmp);
	if (dfd >= 0)
		close(dfd);
	free(dircopy);
	free(tmp);
	return ret;
}
