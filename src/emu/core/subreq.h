/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal sub-requests: a request that arrived inside another one (a part of a batch) and
 * runs through the same faults, authentication and handlers as a request of its own, on the
 * cloud port. It has no connection: its query, headers and body are its own, a header it lacks
 * comes from the outer request (except Content-*), and its one reply is kept for the caller.
 * A handler may suspend it (operations/wait, a delay fault) like any request; resuming it runs
 * on_resume from the loop. The caller learns of its end through done().
 */
#ifndef TALOS_GCP_EMU_SUBREQ_H
#define TALOS_GCP_EMU_SUBREQ_H

#include <stdbool.h>
#include <stddef.h>

#include "emu/emu.h"

/* The sub-request ended: it has its reply, or it asked to drop the connection. */
typedef void (*emu_subreq_done_fn)(struct emu_request *sub, void *arg);

/*
 * A sub-request of outer: method, the request target "/path?query" (percent-encoded, as on
 * the wire), headers as "Name: value" lines (NULL: none), and the body (copied). Returns NULL
 * when out of memory, or when the target is not a path or decodes to a NUL byte.
 */
struct emu_request *emu_subreq_new(struct emu_request *outer, const char *method,
				   const char *target, const char *const *headers, size_t nheaders,
				   const char *body, size_t body_len, emu_subreq_done_fn done,
				   void *arg);
/* Runs it as the server runs a request: counted, faults, then the handlers. */
void emu_subreq_run(struct emu_request *sub);
/* Its reply once done(): status (0 when it asked for a reset), type, body, extra headers. */
unsigned emu_subreq_status(const struct emu_request *sub);
const char *emu_subreq_content_type(const struct emu_request *sub);
const char *emu_subreq_body(const struct emu_request *sub, size_t *len);
json_t *emu_subreq_reply_headers(const struct emu_request *sub);
/* Ends it, finished or not (on_close runs, a pending resume is cancelled). NULL is fine. */
void emu_subreq_free(struct emu_request *sub);

/* The request hooks (httpd.c, and the fuzz fakes): what emu_request_* do for a sub-request. */
const char *emu_subreq_query(const struct emu_request *sub, const char *key);
const char *emu_subreq_header(const struct emu_request *sub, const char *name);
int emu_subreq_reply(struct emu_request *sub, unsigned status, const char *content_type,
		     const void *body, size_t len);
void emu_subreq_suspend(struct emu_request *sub);
void emu_subreq_resume(struct emu_request *sub);

#endif
