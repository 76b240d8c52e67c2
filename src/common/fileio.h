/* SPDX-License-Identifier: Apache-2.0 */
/* Whole-file reads with a size cap, and atomic writes (temp file, fsync, rename). */
#ifndef TALOS_GCP_COMMON_FILEIO_H
#define TALOS_GCP_COMMON_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* Reads path into a NUL-terminated malloc'd buffer. -EFBIG past max bytes. 0 or -errno. */
int file_read_all(const char *path, size_t max, char **out, size_t *out_len);
/*
 * Writes data to path atomically with the given mode (created with it, never widened
 * later: 0600 for anything holding a secret). A crash leaves the old file or the new one.
 */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

#endif
