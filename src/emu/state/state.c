/* SPDX-License-Identifier: Apache-2.0 */
/*
 * --state FILE on SQLite (see state.h). One connection, WAL journal, exclusive locking (one
 * emulator per file; no -shm file), synchronous=NORMAL by default: a commit is durable once
 * sqlite3_step(COMMIT) returns, against a crash of the process (kill -9, OOM); against power
 * loss only with --state-sync full (https://www.sqlite.org/wal.html#durability: "transactions
 * committed in WAL mode with synchronous=NORMAL might roll back following a power loss").
 */
#include "emu/state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/str.h"
#include "emu/emu.h"

#define MAX_TABLES 16
#define RETRY_MS   100 /* a failed commit is retried this much later (replies and loop) */
#define FORMAT     "talos-gcp-emu state 1"
#define MAX_REPORT 50

struct slot {
	const struct emu_state_table *def;
	json_t *dirty;  /* key -> value (null: fetch it, or a deletion) */
	json_t *hashes; /* MEMBERS: key -> hash of the committed text (unchanged rows skipped) */
	json_t *staged; /* hashes of the commit in progress */
	bool rewrite;
	sqlite3_stmt *upsert, *del, *clear;
};

struct emu_state {
	struct emu *emu;
	sqlite3 *db;
	char *path;    /* --state FILE */
	char *db_path; /* what db has open: path, or path.importing during an import */
	enum emu_state_sync sync;
	struct slot slots[MAX_TABLES];
	size_t nslots;
	unsigned quiet;         /* emu_state_quiet() nesting */
	bool loading;           /* emu_state_loading() */
	bool fresh;             /* no file was there */
	json_t *import;         /* a JSON state file to import, until emu_state_read() */
	bool importing;         /* db is path.importing until the first commit */
	size_t pending;         /* immediate marks since the last commit */
	uint64_t pending_since; /* when the first of them was made */
	size_t lazy_marks;      /* lazy marks since the last lazy commit */
	uint64_t lazy_due;
	int error; /* the last commit: 0 or -errno */
	char error_text[256];
	uint64_t retry_at;
	uint64_t commits, rows, failures;
	sqlite3_stmt *begin, *commit, *rollback;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct emu_state *ensure(struct emu *emu)
{
	if (!emu->state) {
		emu->state = calloc(1, sizeof(*emu->state));
		if (emu->state)
			emu->state->emu = emu;
	}
	return emu->state;
}

static int sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
		return -EACCES;
	default:
		return -EIO;
	}
}

static int fail(struct emu_state *s, int rc, const char *what)
{
	snprintf(s->error_text, sizeof(s->error_text), "%s: %s", what,
		 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
	return sqlite_errno(rc);
}

static int step_reset(struct emu_state *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return fail(s, rc, what);
	return 0;
}

static int prepare(struct emu_state *s, sqlite3_stmt **st, const char *sql)
{
	int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);

	return rc == SQLITE_OK ? 0 : fail(s, rc, "prepare");
}

static void slot_finalize(struct slot *t)
{
	sqlite3_finalize(t->upsert);
	sqlite3_finalize(t->del);
	sqlite3_finalize(t->clear);
	t->upsert = t->del = t->clear = NULL;
}

/* CREATE TABLE and the statements of one slot (db open). */
static int slot_open(struct emu_state *s, struct slot *t)
{
	char *sql;
	int ret = 0;

	sql = sqlite3_mprintf(
	    "CREATE TABLE IF NOT EXISTS \"%w\" (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)",
	    t->def->name);
	if (!sql)
		return -ENOMEM;
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		ret = fail(s, SQLITE_ERROR, t->def->name);
	sqlite3_free(sql);
	if (ret < 0)
		return ret;
	sql = sqlite3_mprintf("INSERT INTO \"%w\" (key, value) VALUES (?1, ?2) ON CONFLICT(key) "
			      "DO UPDATE SET value = excluded.value",
			      t->def->name);
	ret = sql ? prepare(s, &t->upsert, sql) : -ENOMEM;
	sqlite3_free(sql);
	sql = ret ? NULL : sqlite3_mprintf("DELETE FROM \"%w\" WHERE key = ?1", t->def->name);
	if (!ret)
		ret = sql ? prepare(s, &t->del, sql) : -ENOMEM;
	sqlite3_free(sql);
	sql = ret ? NULL : sqlite3_mprintf("DELETE FROM \"%w\"", t->def->name);
	if (!ret)
		ret = sql ? prepare(s, &t->clear, sql) : -ENOMEM;
	sqlite3_free(sql);
	return ret;
}

static int register_one(struct emu_state *s, const struct emu_state_table *t)
{
	struct slot *slot;

	for (size_t i = 0; i < s->nslots; i++)
		if (s->slots[i].def == t)
			return 0;
	if (s->nslots == MAX_TABLES)
		return -ENOSPC;
	slot = &s->slots[s->nslots];
	*slot = (struct slot){.def = t, .dirty = json_object(), .hashes = json_object()};
	if (!slot->dirty || !slot->hashes) {
		json_decref(slot->dirty);
		json_decref(slot->hashes);
		return -ENOMEM;
	}
	s->nslots++;
	return s->db ? slot_open(s, slot) : 0;
}

int emu_state_register(struct emu *emu, const struct emu_state_table *const *tables)
{
	struct emu_state *s = ensure(emu);
	int ret = s ? 0 : -ENOMEM;

	for (; ret == 0 && *tables; tables++)
		ret = register_one(s, *tables);
	return ret;
}

static struct slot *slot_of(struct emu_state *s, const struct emu_state_table *t)
{
	for (size_t i = 0; i < s->nslots; i++)
		if (s->slots[i].def == t)
			return &s->slots[i];
	return NULL;
}

static void counted(struct emu_state *s, const struct slot *t)
{
	if (t->def->lazy_ms) {
		if (!s->lazy_marks++)
			s->lazy_due = now_ms() + t->def->lazy_ms;
	} else if (!s->pending++) {
		s->pending_since = now_ms();
	}
}

static void put(struct emu *emu, const struct emu_state_table *t, const char *key, json_t *value)
{
	struct emu_state *s = emu->state;
	struct slot *slot = s && s->db && !s->quiet ? slot_of(s, t) : NULL;

	if (!slot) {
		json_decref(value);
		return;
	}
	if (json_object_set_new(slot->dirty, key, value ? value : json_null()) < 0)
		log_error("state: out of memory marking %s %s", t->name, key);
	counted(s, slot);
}

void emu_state_mark(struct emu *emu, const struct emu_state_table *t, const char *key)
{
	put(emu, t, key, NULL);
}

void emu_state_put(struct emu *emu, const struct emu_state_table *t, const char *key, json_t *value)
{
	put(emu, t, key, value);
}

static void rewrite(struct emu_state *s, struct slot *t)
{
	t->rewrite = true;
	json_object_clear(t->dirty);
	counted(s, t);
}

void emu_state_rewrite(struct emu *emu, const struct emu_state_table *const *tables)
{
	struct emu_state *s = emu->state;

	if (!s || !s->db || s->quiet || s->loading)
		return;
	for (; *tables; tables++) {
		struct slot *slot = slot_of(s, *tables);

		if (slot)
			rewrite(s, slot);
	}
}

void emu_state_loading(struct emu *emu, bool on)
{
	if (emu->state)
		emu->state->loading = on;
}

void emu_state_quiet(struct emu *emu, bool quiet)
{
	struct emu_state *s = emu->state;

	if (!s)
		return;
	if (quiet)
		s->quiet++;
	else if (s->quiet)
		s->quiet--;
}

void emu_state_changed(struct emu *emu)
{
	struct emu_state *s = emu->state;

	if (!s || !s->db || s->quiet)
		return;
	for (size_t i = 0; i < s->nslots; i++) {
		struct slot *t = &s->slots[i];

		if (t->def->shape != EMU_STATE_MEMBERS)
			continue;
		for (const char *const *m = t->def->members; m && *m; m++)
			json_object_set_new(t->dirty, *m, json_null());
		counted(s, t);
	}
}

/* ---- opening ---- */

static int exec(struct emu_state *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : fail(s, rc, sql);
}

static void close_db(struct emu_state *s)
{
	for (size_t i = 0; i < s->nslots; i++)
		slot_finalize(&s->slots[i]);
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	sqlite3_finalize(s->rollback);
	s->begin = s->commit = s->rollback = NULL;
	if (s->db && sqlite3_close(s->db) != SQLITE_OK)
		log_error("state: %s: cannot close: %s", s->db_path, sqlite3_errmsg(s->db));
	s->db = NULL;
}

/* A file of ours: the format row, or an empty database. */
static int check_format(struct emu_state *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, ret = 0, others = 0;

	rc = sqlite3_prepare_v2(
	    s->db,
	    "SELECT (SELECT value FROM emu_format WHERE key = 'format'), "
	    "(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name != 'emu_format')",
	    -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		const char *f = (const char *)sqlite3_column_text(st, 0);

		others = sqlite3_column_int(st, 1);
		if (f && strcmp(f, FORMAT) != 0) {
			snprintf(err, errlen,
				 "--state %s: written by another version (%s), want %s", s->path, f,
				 FORMAT);
			ret = -EPROTO;
		} else if (!f && others) {
			snprintf(err, errlen,
				 "--state %s: an SQLite database, but not a talos-gcp-emu state",
				 s->path);
			ret = -EINVAL;
		}
	} else {
		snprintf(err, errlen, "--state %s: %s", s->path, sqlite3_errmsg(s->db));
		ret = sqlite_errno(rc);
	}
	sqlite3_finalize(st);
	if (ret == 0)
		ret = exec(
		    s, "INSERT OR IGNORE INTO emu_format (key, value) VALUES ('format', '" FORMAT
		       "')");
	return ret;
}

static int open_db(struct emu_state *s, const char *path, bool wal, char *err, size_t errlen)
{
	char pragma[64];
	int rc, ret;

	rc = sqlite3_open_v2(
	    path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "--state %s: %s", path,
			 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		ret = sqlite_errno(rc);
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	snprintf(pragma, sizeof(pragma), "PRAGMA synchronous = %s",
		 s->sync == EMU_STATE_SYNC_FULL ? "FULL" : "NORMAL");
	/*
	 * Exclusive locking: one emulator per file, and WAL without the -shm file. The first
	 * write takes the lock: a second emulator on the same file fails right here.
	 */
	ret = exec(s, "PRAGMA locking_mode = EXCLUSIVE");
	if (!ret)
		ret = exec(s, wal ? "PRAGMA journal_mode = WAL" : "PRAGMA journal_mode = DELETE");
	if (!ret)
		ret = exec(s, pragma);
	if (!ret)
		ret = exec(s, "BEGIN IMMEDIATE");
	if (ret == -EBUSY) {
		snprintf(err, errlen, "--state %s: in use by another process", path);
		goto fail;
	}
	if (!ret)
		ret =
		    exec(s, "CREATE TABLE IF NOT EXISTS emu_format (key TEXT PRIMARY KEY NOT NULL, "
			    "value TEXT NOT NULL)");
	if (ret < 0) {
		snprintf(err, errlen, "--state %s: %s", path, s->error_text);
		goto fail;
	}
	ret = check_format(s, err, errlen);
	if (ret < 0)
		goto fail;
	for (size_t i = 0; i < s->nslots && ret == 0; i++)
		ret = slot_open(s, &s->slots[i]);
	if (!ret)
		ret = exec(s, "COMMIT");
	if (!ret)
		ret = prepare(s, &s->begin, "BEGIN IMMEDIATE");
	if (!ret)
		ret = prepare(s, &s->commit, "COMMIT");
	if (!ret)
		ret = prepare(s, &s->rollback, "ROLLBACK");
	if (ret < 0) {
		snprintf(err, errlen, "--state %s: %s", path, s->error_text);
		goto fail;
	}
	return 0;
fail:
	close_db(s);
	return ret;
}

static char *sibling(const char *path, const char *suffix)
{
	return str_printf("%s%s", path, suffix);
}

/* Creates path 0600 when missing; narrows an existing file to 0600 (it holds secrets). */
static int private_file(const char *path, bool *created)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	*created = fd >= 0;
	if (fd >= 0)
		return close(fd) < 0 ? -errno : 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(path, &st) < 0)
		return -errno;
	if ((st.st_mode & 077) && chmod(path, st.st_mode & 0700) < 0)
		return -errno;
	return 0;
}

static void unlink_import_leftovers(const char *path)
{
	static const char *const suffixes[] = {".importing", ".importing-journal",
					       ".importing-wal"};

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char *p = sibling(path, suffixes[i]);

		if (p)
			unlink(p);
		free(p);
	}
}

static int read_json_state(struct emu_state *s, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc = json_load_file(s->path, JSON_REJECT_DUPLICATES, &jerr);

	if (!doc) {
		snprintf(err, errlen, "--state %s:%d:%d: %s", s->path, jerr.line, jerr.column,
			 jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(doc) || json_integer_value(json_object_get(doc, "version")) != 1) {
		snprintf(
		    err, errlen,
		    "--state %s: not a talos-gcp-emu state (an SQLite database, or JSON with \"version\": 1)",
		    s->path);
		json_decref(doc);
		return -EINVAL;
	}
	s->import = doc;
	return 0;
}

int emu_state_open(struct emu *emu, const char *path, enum emu_state_sync sync, char *err,
		   size_t errlen)
{
	struct emu_state *s = ensure(emu);
	char head[16] = {0};
	bool created;
	ssize_t n;
	int fd, ret;

	if (!s)
		return -ENOMEM;
	s->path = strdup(path);
	s->sync = sync;
	if (!s->path)
		return -ENOMEM;
	unlink_import_leftovers(path);
	ret = private_file(path, &created);
	if (ret < 0) {
		snprintf(err, errlen, "--state %s: %s", path, strerror(-ret));
		return ret;
	}
	s->fresh = created;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "--state %s: %s", path, strerror(-ret));
		return ret;
	}
	n = read(fd, head, sizeof(head));
	close(fd);
	if (n == 0) {
		s->fresh = true;
	} else if (n != sizeof(head) || memcmp(head, "SQLite format 3", 16) != 0) {
		/* Today's JSON state: imported into path.importing, renamed over it once saved. */
		ret = read_json_state(s, err, errlen);
		if (ret < 0)
			return ret;
		s->importing = true;
	}
	s->db_path = s->importing ? sibling(path, ".importing") : strdup(path);
	if (!s->db_path)
		return -ENOMEM;
	if (s->importing && (ret = private_file(s->db_path, &created)) < 0) {
		snprintf(err, errlen, "--state %s: %s", s->db_path, strerror(-ret));
		return ret;
	}
	return open_db(s, s->db_path, !s->importing, err, errlen);
}

/* ---- reading the document back ---- */

static json_t *member(json_t *parent, const char *key, bool array)
{
	json_t *v = json_object_get(parent, key);

	if (!v) {
		v = array ? json_array() : json_object();
		if (json_object_set_new(parent, key, v) < 0)
			return NULL;
	}
	return v;
}

/* Puts a row's value where its table says (value is stolen). */
static int place(const struct emu_state_table *t, json_t *doc, const char *key, json_t *value)
{
	json_t *part = member(doc, t->part, false), *f = NULL, *g;
	const char *slash;
	char *group;

	if (!json_is_object(part))
		goto fail;
	switch (t->shape) {
	case EMU_STATE_MEMBERS:
		return json_object_set_new(part, key, value) < 0 ? -EINVAL : 0;
	case EMU_STATE_LIST:
		f = member(part, t->field, true);
		if (!json_is_array(f))
			goto fail;
		return json_array_append_new(f, value) < 0 ? -ENOMEM : 0;
	case EMU_STATE_MAP:
		f = member(part, t->field, false);
		if (!json_is_object(f))
			goto fail;
		return json_object_set_new(f, key, value) < 0 ? -EINVAL : 0;
	case EMU_STATE_GROUPS:
		slash = strchr(key, '/');
		f = member(part, t->field, false);
		if (!slash || slash == key || !json_is_object(f))
			goto fail;
		group = strndup(key, (size_t)(slash - key));
		g = group ? member(f, group, true) : NULL;
		free(group);
		if (!json_is_array(g))
			goto fail;
		return json_array_append_new(g, value) < 0 ? -ENOMEM : 0;
	}
fail:
	json_decref(value);
	return -EINVAL;
}

static int read_table(struct emu_state *s, const struct emu_state_table *t, json_t *doc, char *err,
		      size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char *sql = sqlite3_mprintf("SELECT key, value FROM \"%w\" ORDER BY key", t->name);
	int rc, ret = 0;

	if (!sql)
		return -ENOMEM;
	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	sqlite3_free(sql);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "--state %s: table %s: %s", s->path, t->name,
			 sqlite3_errmsg(s->db));
		return sqlite_errno(rc);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);
		const char *text = (const char *)sqlite3_column_text(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		json_error_t jerr;
		json_t *v;

		if (!key || !text) {
			snprintf(err, errlen, "--state %s: table %s: a row without key or value",
				 s->path, t->name);
			ret = -EINVAL;
			break;
		}
		v = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
		if (!v) {
			snprintf(err, errlen, "--state %s: table %s, row '%.80s': %d:%d: %s",
				 s->path, t->name, key, jerr.line, jerr.column, jerr.text);
			ret = -EINVAL;
			break;
		}
		if (place(t, doc, key, v) < 0) {
			snprintf(err, errlen,
				 "--state %s: table %s, row '%.80s': does not fit %s.%s", s->path,
				 t->name, key, t->part, t->field ? t->field : key);
			ret = -EINVAL;
			break;
		}
	}
	if (ret == 0 && rc != SQLITE_DONE) {
		snprintf(err, errlen, "--state %s: table %s: %s", s->path, t->name,
			 sqlite3_errmsg(s->db));
		ret = sqlite_errno(rc);
	}
	sqlite3_finalize(st);
	return ret;
}

int emu_state_read(struct emu *emu, json_t **out, char *err, size_t errlen)
{
	struct emu_state *s = emu->state;
	json_t *doc;
	int ret = 0;

	*out = NULL;
	if (!s || !s->db)
		return 0;
	if (s->import) {
		*out = s->import;
		s->import = NULL;
		return 0;
	}
	if (s->fresh)
		return 0;
	doc = json_pack("{s:i}", "version", 1);
	if (!doc)
		return -ENOMEM;
	for (size_t i = 0; i < s->nslots && ret == 0; i++)
		ret = read_table(s, s->slots[i].def, doc, err, errlen);
	if (ret < 0) {
		json_decref(doc);
		return ret;
	}
	*out = doc;
	return 0;
}

void emu_state_loaded(struct emu *emu)
{
	struct emu_state *s = emu->state;

	if (!s || !s->db || !(s->fresh || s->importing))
		return;
	for (size_t i = 0; i < s->nslots; i++)
		rewrite(s, &s->slots[i]);
}

/* ---- committing ---- */

int emu_state_value_json(struct emu_state_value *out, json_t *v)
{
	if (!v)
		return -ENOENT;
	out->owned = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
	if (!out->owned)
		return -ENOMEM;
	out->text = out->owned;
	out->len = strlen(out->owned);
	return 0;
}

/* foreach() of a table, or its members fetched one by one. */
static int every_row(struct emu_state *s, const struct emu_state_table *t, emu_state_emit_fn emit,
		     void *ctx)
{
	if (t->foreach)
		return t->foreach (s->emu, emit, ctx);
	for (const char *const *m = t->members; t->fetch && m && *m; m++) {
		struct emu_state_value v = {0};
		int ret = t->fetch(s->emu, *m, &v);

		if (ret == 0)
			ret = emit(ctx, *m, v.text, v.len);
		free(v.owned);
		if (ret < 0 && ret != -ENOENT)
			return ret;
	}
	return 0;
}

static uint64_t text_hash(const char *text, size_t len)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)text[i]) * 1099511628211ull;
	return h;
}

struct emit_ctx {
	struct emu_state *s;
	struct slot *t;
};

static int upsert(struct emu_state *s, struct slot *t, const char *key, const char *text,
		  size_t len)
{
	if (t->def->shape == EMU_STATE_MEMBERS) {
		uint64_t h = text_hash(text, len);
		json_t *old = json_object_get(t->hashes, key);

		if (!t->rewrite && old && (uint64_t)json_integer_value(old) == h)
			return 0;
		if (!t->staged)
			t->staged = json_object();
		if (!t->staged || json_object_set_new(t->staged, key, json_integer((json_int_t)h)))
			return -ENOMEM;
	}
	sqlite3_bind_text(t->upsert, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(t->upsert, 2, text, (int)len, SQLITE_STATIC);
	s->rows++;
	return step_reset(s, t->upsert, t->def->name);
}

static int emit_row(void *cls, const char *key, const char *text, size_t len)
{
	struct emit_ctx *c = cls;

	return upsert(c->s, c->t, key, text, len);
}

static int delete_row(struct emu_state *s, struct slot *t, const char *key)
{
	if (t->def->shape == EMU_STATE_MEMBERS)
		json_object_del(t->hashes, key);
	sqlite3_bind_text(t->del, 1, key, -1, SQLITE_STATIC);
	return step_reset(s, t->del, t->def->name);
}

static int write_slot(struct emu_state *s, struct slot *t)
{
	struct emu *emu = s->emu;
	const char *key;
	json_t *v;
	int ret = 0;

	if (t->rewrite) {
		struct emit_ctx c = {.s = s, .t = t};

		json_object_clear(t->hashes);
		ret = step_reset(s, t->clear, t->def->name);
		if (ret == 0)
			ret = every_row(s, t->def, emit_row, &c);
		if (ret < 0)
			return ret;
	}
	json_object_foreach(t->dirty, key, v)
	{
		if (t->def->fetch) {
			struct emu_state_value val = {0};

			ret = t->def->fetch(emu, key, &val);
			if (ret == -ENOENT)
				ret = delete_row(s, t, key);
			else if (ret == 0)
				ret = upsert(s, t, key, val.text, val.len);
			free(val.owned);
		} else if (json_is_null(v)) {
			ret = delete_row(s, t, key);
		} else {
			char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

			ret = text ? upsert(s, t, key, text, strlen(text)) : -ENOMEM;
			free(text);
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

static bool wanted(const struct slot *t, bool lazy)
{
	return (t->rewrite || json_object_size(t->dirty)) && (!t->def->lazy_ms || lazy);
}

static int commit(struct emu_state *s, bool lazy)
{
	int ret = step_reset(s, s->begin, "begin");

	for (size_t i = 0; i < s->nslots && ret == 0; i++) {
		struct slot *t = &s->slots[i];

		if (wanted(t, lazy))
			ret = write_slot(s, t);
	}
	if (ret == 0)
		ret = step_reset(s, s->commit, "commit");
	if (ret < 0) {
		/* A failed COMMIT may have rolled back already. */
		if (!sqlite3_get_autocommit(s->db))
			step_reset(s, s->rollback, "rollback");
		for (size_t i = 0; i < s->nslots; i++) {
			json_decref(s->slots[i].staged);
			s->slots[i].staged = NULL;
		}
		return ret;
	}
	for (size_t i = 0; i < s->nslots; i++) {
		struct slot *t = &s->slots[i];

		if (!wanted(t, lazy))
			continue;
		json_object_clear(t->dirty);
		t->rewrite = false;
		if (t->staged)
			json_object_update(t->hashes, t->staged);
		json_decref(t->staged);
		t->staged = NULL;
	}
	s->pending = 0;
	if (lazy)
		s->lazy_marks = 0;
	s->commits++;
	return 0;
}

static int finish_import(struct emu_state *s)
{
	char *backup = sibling(s->path, ".json-imported"), *dir = strdup(s->path);
	char err[512];
	int ret = 0, dfd;

	if (!backup || !dir) {
		ret = -ENOMEM;
		goto cleanup;
	}
	close_db(s);
	/* Keep the JSON file: a hard link, so that path always names one complete state. */
	if (unlink(backup) < 0 && errno != ENOENT) {
		ret = -errno;
		goto cleanup;
	}
	if (link(s->path, backup) < 0) {
		char *text = NULL;
		size_t len;

		ret = file_read_all(s->path, SIZE_MAX / 2, &text, &len);
		if (ret == 0)
			ret = file_write_atomic(backup, text, len, 0600);
		free(text);
		if (ret < 0)
			goto cleanup;
	}
	if (rename(s->db_path, s->path) < 0) {
		ret = -errno;
		goto cleanup;
	}
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(s->db_path);
	s->db_path = strdup(s->path);
	s->importing = false;
	if (!s->db_path) {
		ret = -ENOMEM;
		goto cleanup;
	}
	ret = open_db(s, s->path, true, err, sizeof(err));
	if (ret < 0) {
		log_error("%s", err);
		goto cleanup;
	}
	log_info("--state %s: imported the JSON state into a database; the JSON file is kept as %s",
		 s->path, backup);
cleanup:
	if (ret < 0)
		snprintf(s->error_text, sizeof(s->error_text), "import: %s", strerror(-ret));
	free(backup);
	free(dir);
	return ret;
}

int emu_state_flush(struct emu *emu, enum emu_state_when when)
{
	struct emu_state *s = emu->state;
	uint64_t now;
	bool lazy, now_due;
	int ret;

	if (!s || !s->db)
		return 0;
	now = now_ms();
	lazy = s->lazy_marks && (when == EMU_STATE_ALL || now >= s->lazy_due);
	now_due = s->pending && (when != EMU_STATE_TICK || s->error ||
				 now >= s->pending_since + EMU_STATE_DEFER_MS);
	if (!now_due && !lazy)
		return 0;
	if (s->error && now < s->retry_at)
		return s->error;
	ret = commit(s, lazy);
	if (ret == 0 && s->importing)
		ret = finish_import(s);
	if (ret < 0) {
		if (!s->error)
			log_error("--state %s: cannot save: %s (the changes are kept and retried)",
				  s->path, s->error_text);
		s->failures++;
		s->error = ret;
		s->retry_at = now + RETRY_MS;
		return ret;
	}
	if (s->error)
		log_info("--state %s: saved again", s->path);
	s->error = 0;
	return 0;
}

bool emu_state_unsaved(const struct emu *emu)
{
	const struct emu_state *s = emu->state;

	return s && s->db && s->error && s->pending;
}

uint64_t emu_state_due_in_ms(const struct emu *emu)
{
	const struct emu_state *s = emu->state;
	uint64_t now = now_ms(), due = UINT64_MAX;

	if (!s || !s->db)
		return UINT64_MAX;
	if (s->pending && s->error)
		due = s->retry_at > now ? s->retry_at - now : 0;
	else if (s->pending)
		due = s->pending_since + EMU_STATE_DEFER_MS > now
			  ? s->pending_since + EMU_STATE_DEFER_MS - now
			  : 0;
	if (s->lazy_marks) {
		uint64_t l = s->lazy_due > now ? s->lazy_due - now : 0;

		if (s->error && s->retry_at > now && s->retry_at - now > l)
			l = s->retry_at - now;
		if (l < due)
			due = l;
	}
	return due;
}

const char *emu_state_error(const struct emu *emu)
{
	const struct emu_state *s = emu->state;

	return s && s->error ? s->error_text : "";
}

json_t *emu_state_status(const struct emu *emu)
{
	const struct emu_state *s = emu->state;

	if (!s || !s->db)
		return json_pack("{s:n}", "path");
	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:s?}", "path", s->path, "sync",
			 s->sync == EMU_STATE_SYNC_FULL ? "full" : "normal", "commits",
			 (json_int_t)s->commits, "rowsWritten", (json_int_t)s->rows, "failures",
			 (json_int_t)s->failures, "unsaved", s->error && s->pending, "lastError",
			 s->error ? s->error_text : NULL);
}

/* ---- consistency check ---- */

struct collect_ctx {
	json_t *rows;
	int bad;
};

static int collect_row(void *cls, const char *key, const char *text, size_t len)
{
	struct collect_ctx *c = cls;
	json_t *v = json_loadb(text, len, JSON_DECODE_ANY, NULL);

	if (!v) {
		c->bad++;
		v = json_string("(not JSON)");
	}
	return json_object_set_new(c->rows, key, v) < 0 ? -ENOMEM : 0;
}

static void differ(json_t *list, const char *table, const char *key, const char *problem)
{
	if (json_array_size(list) < MAX_REPORT)
		json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "table", table, "key", key,
						      "problem", problem));
}

static int check_slot(struct emu_state *s, struct slot *t, json_t *list, size_t *ndiff)
{
	struct collect_ctx c = {.rows = json_object()};
	sqlite3_stmt *st = NULL;
	char *sql = NULL;
	const char *key;
	json_t *v;
	int rc, ret;

	if (!c.rows)
		return -ENOMEM;
	ret = every_row(s, t->def, collect_row, &c);
	if (ret < 0)
		goto cleanup;
	sql = sqlite3_mprintf("SELECT key, value FROM \"%w\"", t->def->name);
	if (!sql || sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		ret = -ENOMEM;
		goto cleanup;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		json_t *db = json_loadb((const char *)sqlite3_column_text(st, 1),
					(size_t)sqlite3_column_bytes(st, 1), JSON_DECODE_ANY, NULL);
		json_t *mem = json_object_get(c.rows, k ? k : "");

		if (!mem) {
			differ(list, t->def->name, k ? k : "", "in the database, not in memory");
			++*ndiff;
		} else if (!db || !json_equal(db, mem)) {
			differ(list, t->def->name, k, "the database holds another value");
			++*ndiff;
		}
		if (mem)
			json_object_del(c.rows, k);
		json_decref(db);
	}
	json_object_foreach(c.rows, key, v)
	{
		differ(list, t->def->name, key, "in memory, not in the database");
		++*ndiff;
	}
cleanup:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	json_decref(c.rows);
	return ret;
}

int emu_state_check(struct emu *emu, json_t **report)
{
	struct emu_state *s = emu->state;
	json_t *list;
	size_t ndiff = 0;
	int ret;

	*report = NULL;
	if (!s || !s->db)
		return -ENOENT;
	ret = emu_state_flush(emu, EMU_STATE_ALL);
	if (ret < 0)
		return ret;
	list = json_array();
	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < s->nslots && ret == 0; i++)
		ret = check_slot(s, &s->slots[i], list, &ndiff);
	if (ret < 0) {
		json_decref(list);
		return ret;
	}
	*report = json_pack("{s:b, s:I, s:o}", "ok", ndiff == 0, "count", (json_int_t)ndiff,
			    "differences", list);
	return *report ? 0 : -ENOMEM;
}

int emu_state_close(struct emu *emu)
{
	struct emu_state *s = emu->state;
	int ret = 0;

	if (!s)
		return 0;
	if (s->db) {
		s->retry_at = 0;
		ret = emu_state_flush(emu, EMU_STATE_ALL);
		if (ret < 0)
			log_error("--state %s: the last changes are lost: %s", s->path,
				  s->error_text);
		if (s->importing) {
			/* Never saved: the JSON file stays what it was. */
			close_db(s);
			unlink_import_leftovers(s->path);
		}
		close_db(s);
	}
	for (size_t i = 0; i < s->nslots; i++) {
		json_decref(s->slots[i].dirty);
		json_decref(s->slots[i].hashes);
		json_decref(s->slots[i].staged);
	}
	json_decref(s->import);
	free(s->path);
	free(s->db_path);
	free(s);
	emu->state = NULL;
	return ret;
}
