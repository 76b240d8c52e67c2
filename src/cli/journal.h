/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The repair journal: what `talos-gcp repair --apply` is about to change, written before
 * the first change and after every step, so that a repair that failed or was killed can be
 * finished (or rolled back) by the next one. One JSON document, rewritten atomically (0600):
 *
 *   {"version": 1, "project": "P", "strategy": "gcp"|"node", "started": "RFC 3339",
 *    "instances": [{"zone", "name", "nic", "aliases": [{"ipCidrRange",
 *                   "subnetworkRangeName"?}]}],     prior aliases of every touched instance
 *    "steps": [{"action", "state", ...}]}
 *
 * gcp steps: {"action": "clear"|"set", "zone", "instance", "nic", "range", "rangeName"?,
 * "node"?, "nodeUid"?}. node steps: {"action": "cordon"|"delete-node"|"reset"|"uncordon",
 * "node", "nodeUid"?, "zone"?, "instance"?}. "state": pending, done, failed, skipped,
 * rolled-back.
 */
#ifndef TALOS_GCP_CLI_JOURNAL_H
#define TALOS_GCP_CLI_JOURNAL_H

#include <jansson.h>
#include <stddef.h>

#include "common/error.h"

#define JOURNAL_VERSION 1

/*
 * $XDG_STATE_HOME/talos-gcp/repair-PROJECT.json (XDG_STATE_HOME defaults to
 * ~/.local/state). 0 or -errno (no HOME) with err.
 */
int journal_default_path(const char *project, char *buf, size_t len, struct error *err);

/* Reads and checks path. 0 with *doc (NULL when the file does not exist), or -errno. */
int journal_read(const char *path, json_t **doc, struct error *err);

/* Checks a journal document (exposed for the fuzzer): 0 or -EBADMSG naming the field. */
int journal_check(const json_t *doc, struct error *err);

/* Writes doc to path atomically, 0600, creating its directory (0700) if needed. */
int journal_write(const char *path, const json_t *doc, struct error *err);

/* Removes path (absent is fine). */
int journal_remove(const char *path, struct error *err);

/*
 * Takes PATH.lock (created 0600, with its directory), flock'ed exclusively: one repair
 * --apply at a time per journal; the kernel lets go when the process ends, even by
 * SIGKILL. -EBUSY (err says who holds it) when another repair runs.
 */
int journal_lock(const char *path, int *fd, struct error *err);

/* Steps of doc not done yet (pending or failed). */
size_t journal_unfinished(const json_t *doc);

#endif
