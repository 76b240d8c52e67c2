/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reference for json_stream_parse(): a full jansson parse, then the items and extras
 * read off the tree and reduced by the rules of common/json_stream.h, written the obvious
 * (recursive) way. The unit tests and the fuzzer compare the stream reader with it.
 */
#ifndef TALOS_GCP_TESTS_JSON_REF_H
#define TALOS_GCP_TESTS_JSON_REF_H

#include <jansson.h>
#include <stddef.h>

/* The reduction of v by paths[0..n) (a new reference). */
json_t *json_ref_reduce(const json_t *v, const char *const *paths, size_t n);

/*
 * What json_stream_parse() should produce for doc (already parsed) with these options:
 * *items an array of {"keys": [...], "index": N, "item": reduced}, *extras the reduced
 * extras. Returns 0, or -1 when the document's shape is refused (then *items holds the
 * items before the fault, as the stream reader would have handed them over).
 */
int json_ref_run(const json_t *doc, const char *item_path, const char *const *fields,
		 const char *const *extras, unsigned flags, json_t **items, json_t **extras_out);

#endif
