/* SPDX-License-Identifier: Apache-2.0 */
/* Small strict parsers for flag values: numbers, durations, listen addresses. */
#ifndef TALOS_GCP_COMMON_PARSE_H
#define TALOS_GCP_COMMON_PARSE_H

#include <stdint.h>
#include <sys/socket.h>

/* Decimal, no sign, no spaces, <= max. 0 or -EINVAL / -ERANGE. */
int parse_u64(const char *s, uint64_t max, uint64_t *out);
/*
 * Go-style duration: "60s", "500ms", "1m30s", "2h", "0". Units ms, s, m, h.
 * Result in milliseconds. 0 or -EINVAL / -ERANGE.
 */
int parse_duration_ms(const char *s, uint64_t *out_ms);
/*
 * "HOST:PORT" or "[V6]:PORT" with a numeric host (no name lookups: daemons bind where they
 * are told, 127.0.0.1 by default). Port 0 is allowed (the kernel picks one).
 */
int parse_listen_addr(const char *s, struct sockaddr_storage *out, socklen_t *out_len);

#endif
