/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/json_stream: never a crash, errors on one line, and on what jansson takes the
 * same items and extras as a full parse then reduce (tests/unit/json_ref.c). The only
 * document jansson refuses and the reader may take is one with a duplicate key that no
 * path selects (json_stream.h says why). The only one jansson takes and the reader refuses
 * has a raw NUL byte, which JSON never allows: jansson 2.14 skips one after a token
 * ("[1\0]" loads as [1]).
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_stream.h"
#include "../tests/unit/json_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const node_fields[] = {"metadata.name", "metadata.labels", "spec.podCIDR", NULL};
static const char *const node_extras[] = {"metadata.continue", "metadata.resourceVersion", NULL};
static const char *const inst_fields[] = {"name", "networkInterfaces.aliasIpRanges", NULL};
static const char *const inst_extras[] = {"items.*.warning", "nextPageToken", "unreachables", NULL};
static const char *const top_fields[] = {"a", "*.b", NULL};

static const struct {
	const char *items;
	const char *const *fields, *const *extras;
	unsigned flags;
} sets[] = {
    {"items", node_fields, node_extras, JSON_STREAM_OBJECT_ITEMS},
    {"items", NULL, node_extras, 0},
    {"items.*.instances", inst_fields, inst_extras, JSON_STREAM_OBJECT_ITEMS},
    {"", top_fields, NULL, 0},
};

static int collect(void *arg, json_t *item, const struct json_stream_at *at)
{
	json_t *keys = json_array();

	for (size_t i = 0; i < at->n_keys; i++)
		json_array_append_new(keys, json_string(at->keys[i]));
	json_array_append_new(arg, json_pack("{s:o, s:I, s:O}", "keys", keys, "index",
					     (json_int_t)at->index, "item", item));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	bool nul = memchr(data, 0, size) != NULL;
	json_error_t jerr;
	json_t *full;

	full = json_loadb(text, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		struct json_stream_options o = {.items = sets[i].items,
						.fields = sets[i].fields,
						.extras = sets[i].extras,
						.flags = sets[i].flags};
		json_t *got = json_array(), *extras = NULL, *want = NULL, *want_extras = NULL;
		struct error err = {0};
		int ret, ref;

		ret = json_stream_parse(text, size, "fuzz", &o, collect, got, &extras, &err);
		if (ret != 0 && ret != -EBADMSG && ret != -ENOMEM)
			abort();
		if (ret < 0 &&
		    (extras || !err.msg[0] || strchr(err.msg, '\n') || strchr(err.msg, '\r')))
			abort();
		if (nul) {
			if (ret == 0)
				abort();
		} else if (!full) {
			/* Taken although jansson refused it: only for a duplicate key. */
			if (ret == 0 && !strstr(jerr.text, "duplicate object key"))
				abort();
		} else {
			ref = json_ref_run(full, o.items, o.fields, o.extras, o.flags, &want,
					   &want_extras);
			if (ref < 0 ? ret != -EBADMSG || !strstr(err.msg, " is not ")
				    : ret != 0 || !json_equal(extras, want_extras))
				abort();
			if (!json_equal(got, want))
				abort();
		}
		/*
		 * The streaming reader, fed in pieces of a size the input picks: what one call
		 * takes it takes with the same items and extras; what one call refuses it
		 * refuses (maybe for another of the document's faults, found first).
		 */
		{
			size_t piece = size ? (size_t)data[0] % 13 + 1 : 1;
			json_t *got2 = json_array(), *extras2 = NULL;
			struct error err2 = {0};
			struct json_stream *j = json_stream_new("fuzz", &o, collect, got2, &err2);
			int ret2 = 0;

			if (!j)
				abort();
			for (size_t off = 0; ret2 == 0 && off < size; off += piece)
				ret2 = json_stream_feed(j, text + off,
							size - off < piece ? size - off : piece);
			if (ret2 == 0)
				ret2 = json_stream_finish(j, &extras2);
			json_stream_free(j);
			if ((ret == 0) != (ret2 == 0) ||
			    (ret2 && ret2 != -EBADMSG && ret2 != -ENOMEM))
				abort();
			if (ret == 0 && (!json_equal(got, got2) || !json_equal(extras, extras2)))
				abort();
			if (ret2 && (!err2.msg[0] || strchr(err2.msg, '\n')))
				abort();
			json_decref(got2);
			json_decref(extras2);
		}
		json_decref(got);
		json_decref(extras);
		json_decref(want);
		json_decref(want_extras);
	}
	json_decref(full);
	return 0;
}
