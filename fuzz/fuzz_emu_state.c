/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The --state loader of talos-gcp-emu (src/emu/state/state.c, state/compute.c and the
 * Compute side's load): whatever the file holds, opening and loading it ends in an error or
 * a loaded state, never a crash or a leak; a loaded state is written back (every table
 * rewritten, as after a PUT /_emu/state) and the database then matches memory
 * (emu_state_check): what the rows give back is what was written.
 *
 * Input, by its first byte:
 *   'R' rows: lines "TABLE\tKEY\tVALUE" put into a database of the right format first
 *       (tables compute_resources, compute_pending, compute_request_ids, compute_meta, ...);
 *   'J' a JSON state file (the format before SQLite), imported;
 *   anything else: the file's bytes as they are (a damaged database, say).
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emu/compute/compute.h"
#include "fuzz_emu_cloud_fake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void write_file(const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
}

/* A database in the state's format holding the input's rows. */
static void write_rows(const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	sqlite3 *db;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		abort();
	sqlite3_exec(db,
		     "CREATE TABLE emu_format (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"
		     "INSERT INTO emu_format VALUES ('format', 'talos-gcp-emu state 1');",
		     NULL, NULL, NULL);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *t1, *t2;
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *sql;

		t1 = memchr(p, '\t', n);
		t2 = t1 ? memchr(t1 + 1, '\t', n - (size_t)(t1 + 1 - p)) : NULL;
		if (t2) {
			sql = sqlite3_mprintf(
			    "CREATE TABLE IF NOT EXISTS \"%.*w\" (key TEXT PRIMARY KEY "
			    "NOT NULL, value TEXT NOT NULL);"
			    "INSERT OR REPLACE INTO \"%.*w\" VALUES (%.*Q, %.*Q)",
			    (int)(t1 - p), p, (int)(t1 - p), p, (int)(t2 - t1 - 1), t1 + 1,
			    (int)(p + n - t2 - 1), t2 + 1);
			if (sql)
				sqlite3_exec(db, sql, NULL, NULL, NULL);
			sqlite3_free(sql);
		}
		p += n + 1;
	}
	sqlite3_close(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct emu *emu = cloud_fake_world(false);
	char err[512];
	json_t *doc = NULL, *report = NULL;

	if (!path[0])
		snprintf(path, sizeof(path), "%s/fuzz-emu-state-%d.db",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (int)getpid());
	unlink(path);
	if (size && data[0] == 'R')
		write_rows((const char *)data + 1, size - 1);
	else if (size && data[0] == 'J')
		write_file(data + 1, size - 1);
	else
		write_file(data, size);
	if (compute_state_register(compute_of(emu)) < 0)
		abort();
	if (emu_state_open(emu, path, EMU_STATE_SYNC_NORMAL, err, sizeof(err)) == 0 &&
	    emu_state_read(emu, &doc, err, sizeof(err)) == 0) {
		emu_state_loading(emu, true);
		if (!doc || emu_compute_load(emu, json_object_get(doc, "compute")) == 0) {
			emu_state_loading(emu, false);
			emu_state_loaded(emu);
			compute_state_loaded(compute_of(emu));
			/* Written back whole, the database is what memory holds. */
			if (emu_state_check(emu, &report) == 0 &&
			    !json_is_true(json_object_get(report, "ok"))) {
				char *text = json_dumps(report, JSON_COMPACT);

				fprintf(stderr, "the database differs from memory: %s\n", text);
				abort();
			}
		}
		emu_state_loading(emu, false);
	}
	json_decref(report);
	json_decref(doc);
	emu_state_close(emu);
	unlink(path);
	cloud_fake_reset(emu);
	return 0;
}
