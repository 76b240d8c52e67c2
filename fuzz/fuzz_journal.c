/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The repair journal's reader (cli/journal.c) on arbitrary bytes: a journal is a file a
 * crash may have left anywhere between two writes, or that someone edited. No crash, and
 * a document accepted by journal_check() is one repair can walk: every step has an action
 * and a state, gcp steps a zone, an instance and a range, node steps a node.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/journal.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL), *st;
	struct error err = {0};
	size_t i;

	if (doc && journal_check(doc, &err) == 0) {
		json_array_foreach(json_object_get(doc, "steps"), i, st)
		{
			const char *action = json_str(st, "action");

			if (!action || !json_str(st, "state"))
				abort();
			if ((!strcmp(action, "clear") || !strcmp(action, "set")) &&
			    (!json_str(st, "zone") || !json_str(st, "instance") ||
			     !json_str(st, "range")))
				abort();
		}
		(void)journal_unfinished(doc);
	} else if (doc && !err.msg[0]) {
		abort(); /* a refusal always says why */
	}
	json_decref(doc);
	return 0;
}
