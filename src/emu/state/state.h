/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Durable state (--state FILE): an SQLite database in WAL mode, one row per stored object.
 *
 * A module registers its tables (every table is "key TEXT PRIMARY KEY, value TEXT": the
 * value is JSON) and marks rows as they change. The marks are committed in ONE transaction
 * right before anything leaves for a client (a reply, watch data: core/httpd.c), so whatever
 * a client saw is on disk; what timers changed unseen (Operations completing, controllers)
 * goes with the next reply or EMU_STATE_DEFER_MS later (a crash before redoes it: the
 * Operation is still pending). A commit that fails keeps its marks and is retried; meanwhile
 * replies are errors (503 backendError on the cloud port, a 500 Status on the kube port),
 * never a silent loss.
 *
 * The rows are the state document of GET /_emu/state cut into pieces: at start-up they are
 * assembled into that document (each table says where its rows go) and loaded through the
 * modules' own load functions, so a module persists whatever its stores hold with no
 * per-type code. A JSON state file (the format before SQLite) is imported once.
 *
 * Module glue: state/compute.c (Compute collections, pending Operations, requestIds,
 * counters, credentials), state/kube.c (Kubernetes objects, resourceVersion, PKI,
 * controllers' bookkeeping).
 */
#ifndef TALOS_GCP_EMU_STATE_STATE_H
#define TALOS_GCP_EMU_STATE_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct emu;

/* Where the rows of a table go in the state document {"version":1, PART: {...}}. */
enum emu_state_shape {
	EMU_STATE_MEMBERS, /* doc[part][key] = value: one row per member (counters, pki) */
	EMU_STATE_LIST,    /* doc[part][field] = [value, ...] (key order) */
	EMU_STATE_MAP,     /* doc[part][field][key] = value */
	EMU_STATE_GROUPS,  /* doc[part][field][key up to its first '/'] = [value, ...] */
};

/* A row's value as JSON text; owned (if set) is freed after use. */
struct emu_state_value {
	const char *text;
	size_t len;
	char *owned;
};

typedef int (*emu_state_emit_fn)(void *ctx, const char *key, const char *text, size_t len);

struct emu_state_table {
	const char *name;  /* SQL table */
	const char *part;  /* "compute", "kube" */
	const char *field; /* member of the part (all shapes but MEMBERS) */
	enum emu_state_shape shape;
	const char *const *members; /* MEMBERS: every key, NULL-terminated */
	/*
	 * 0: committed before the next reply. Else the marks wait up to this long and are
	 * committed at the end of a loop turn: only for bookkeeping that no client is answered
	 * from and that repairs itself after a restart (the controllers' instance list).
	 */
	unsigned lazy_ms;
	/*
	 * The row's value now, or -ENOENT when the row is gone. NULL for tables whose values are
	 * given to emu_state_put() instead.
	 */
	int (*fetch)(struct emu *emu, const char *key, struct emu_state_value *out);
	/*
	 * Every row: after a load the table is rewritten from this. 0 or what emit returned.
	 * NULL for MEMBERS tables: their members are fetched.
	 */
	int (*foreach)(struct emu *emu, emu_state_emit_fn emit, void *ctx);
};

/* For fetch(): out holds v as compact JSON (v is stolen); NULL v is -ENOENT. */
int emu_state_value_json(struct emu_state_value *out, json_t *v);

/* A module's tables (NULL-terminated), at its init (before or after emu_state_open). */
int emu_state_register(struct emu *emu, const struct emu_state_table *const *tables);

/*
 * Marks: cheap, and no-ops without --state. key is copied. mark: fetch() gives the value at
 * the commit; put: the value is given (stolen; NULL deletes the row); rewrite: every row is
 * replaced by foreach() at the next commit (after a load).
 */
void emu_state_mark(struct emu *emu, const struct emu_state_table *t, const char *key);
void emu_state_put(struct emu *emu, const struct emu_state_table *t, const char *key,
		   json_t *value);
void emu_state_rewrite(struct emu *emu, const struct emu_state_table *const *tables);
/* Between quiet(true) and quiet(false) (they nest) marks and rewrites are ignored: a load. */
void emu_state_quiet(struct emu *emu, bool quiet);
/* While on, rewrites are ignored: the start-up load of what the database already holds. */
void emu_state_loading(struct emu *emu, bool on);
/* Marks every row of every MEMBERS table (the small singletons: counters, credentials). */
void emu_state_changed(struct emu *emu);

enum emu_state_sync {
	EMU_STATE_SYNC_NORMAL = 0, /* WAL, synchronous=NORMAL: survives kill -9 */
	EMU_STATE_SYNC_FULL,       /* fsync at every commit: survives power loss too */
};

/*
 * Opens (or creates, 0600) the database at path, or prepares the one-time import of a JSON
 * state file found there. *doc receives the state document to load (NULL on a first start).
 * Errors are one line in err naming the file. 0 or -errno.
 */
int emu_state_open(struct emu *emu, const char *path, enum emu_state_sync sync, char *err,
		   size_t errlen);
int emu_state_read(struct emu *emu, json_t **doc, char *err, size_t errlen);
/* After the start-up load: every table is rewritten at the first commit when the file was
 * new or imported (nothing to compare against). */
void emu_state_loaded(struct emu *emu);

enum emu_state_when {
	/* Something is about to be told to a client (a reply, watch data): commit the marks. */
	EMU_STATE_REVEAL,
	/*
	 * A loop turn: commit the marks that waited EMU_STATE_DEFER_MS (changes no client has
	 * seen yet, made by timers: they are committed with the next reply, or by then) and the
	 * lazy ones that are due.
	 */
	EMU_STATE_TICK,
	/* Everything now, the lazy marks too (save, check, before 'ready', at exit). */
	EMU_STATE_ALL,
};
#define EMU_STATE_DEFER_MS 50

/*
 * Commits as `when` says. 0, or -errno when the commit failed: the marks are kept, and until
 * a retry is due (emu_state_due_in_ms) the same error is returned without trying.
 */
int emu_state_flush(struct emu *emu, enum emu_state_when when);
/* True when changes are in memory that no commit has saved yet (after a failure). */
bool emu_state_unsaved(const struct emu *emu);
/* ms until the loop should flush again (a retry, lazy marks); UINT64_MAX when nothing waits. */
uint64_t emu_state_due_in_ms(const struct emu *emu);
/* The last failure, for answers and logs ("database or disk is full"). */
const char *emu_state_error(const struct emu *emu);
/* {"path", "sync", "commits", "rowsWritten", "failures", "unsaved", "lastError"} */
json_t *emu_state_status(const struct emu *emu);
/*
 * Compares every row in the database with what the modules hold now (after a commit):
 * *report = {"ok": bool, "differences": [{"table", "key", "problem"}]} (at most 50 listed).
 */
int emu_state_check(struct emu *emu, json_t **report);
/* Last commit, close. 0, or -errno when the last commit failed (changes lost). */
int emu_state_close(struct emu *emu);

#endif
