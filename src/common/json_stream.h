/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Streaming reader for large JSON lists (Kubernetes and Compute list pages): one pass of
 * yajl's event parser over the document, handing over the elements found at an item path
 * one at a time, each reduced to the fields the caller asked for. Only those fields become
 * jansson values, which is what makes it fast: a 1.4 MB NodeList page costs about a tenth
 * of jansson's full tree parse.
 *
 * Paths are dotted object keys ("metadata.name"); "*" matches any key. The reduction of a
 * value v by a set of paths P, the contract the tests check against a full jansson parse:
 *   - a path that ends here selects all of v (a copy of the whole subtree);
 *   - an object keeps the members whose key is the first element of a path in P, each
 *     reduced by the rest of those paths; it stays (maybe empty) when no member matches;
 *   - an array keeps every element, each reduced by P (as Google's "fields" selector maps
 *     "networkInterfaces/name" over the array), so indexes stay stable for json_path();
 *   - a string, number, true, false or null is kept as it is.
 * So json_path(item, "spec.podCIDR") on a reduced item is what it is on the full one, for
 * any path that the projection covers.
 *
 * Strict like json_parse() (jansson with JSON_REJECT_DUPLICATES): no comments, no trailing
 * commas or garbage, no control characters outside "\t\n\r", strict UTF-8 (no overlong
 * forms, no encoded surrogates, nothing past U+10FFFF), "\u" escapes that jansson takes (no
 * \u0000, surrogates in pairs), integers within int64, finite reals, nesting depth at most
 * 2048. Duplicate keys are refused wherever they matter: in every object that is built
 * (projected items, collected values, whole subtrees) and among the keys a path selects in
 * the objects the reader walks through. A duplicate among keys no path selects goes
 * unnoticed (jansson would refuse the document): the reader does not remember keys it
 * skips, which is the point.
 */
#ifndef TALOS_GCP_COMMON_JSON_STREAM_H
#define TALOS_GCP_COMMON_JSON_STREAM_H

#include <jansson.h>
#include <stddef.h>

#include "common/error.h"

/* Where an item was found. */
struct json_stream_at {
	size_t index;            /* its position in its array */
	const char *const *keys; /* the keys that the item path's "*" elements matched */
	size_t n_keys;           /* e.g. 1 key ("zones/us-central1-a") for "items.*.instances" */
};

/*
 * Called once per item, in document order. item is the reduced item, borrowed: it is freed
 * when the callback returns (json_incref() it to keep it). 0: go on; anything else stops
 * the parse and becomes json_stream_parse()'s return value.
 */
typedef int (*json_stream_item_fn)(void *arg, json_t *item, const struct json_stream_at *at);

/* An item that is not a JSON object is an error ("items[3] is not an object"). */
#define JSON_STREAM_OBJECT_ITEMS 0x1u

struct json_stream_options {
	/*
	 * Where the items are: a path to an array whose elements are the items ("items";
	 * "items.*.instances": the elements of every "instances" array under any key of the
	 * "items" object); "" for a top-level array. Every step must be an object and the end
	 * an array: anything else is -EBADMSG naming the path. null or absent: no items.
	 */
	const char *items;
	/* NULL-terminated projection of each item; NULL: whole items. */
	const char *const *fields;
	/*
	 * NULL-terminated paths to collect from outside the items ("metadata.continue",
	 * "nextPageToken", "items.*.warning"), reduced as above into *extras. A path may not
	 * lead into the items.
	 */
	const char *const *extras;
	unsigned flags; /* JSON_STREAM_* */
};

/*
 * Parses buf[0..len), one JSON document, and calls fn for each item. *extras (if not NULL)
 * receives the reduction of the document by opt->extras (an object, maybe empty; a new
 * reference) when the whole document was read without error.
 *
 * Returns 0, fn's non-zero value, or -errno with err filled:
 *   -EBADMSG  malformed JSON: "WHAT:LINE:COLUMN: invalid JSON (byte N): what is wrong",
 *             N the 0-based offset where it was noticed; or a document of another shape:
 *             "WHAT: items.zones/a.instances is not an array";
 *   -EINVAL   a bad path in opt (empty element, an extras path into the items);
 *   -ENOMEM.
 * Items handed over before an error stay handed over: a caller that must not act on part
 * of a document collects first and acts after a 0 return.
 * what names the source in messages ("GET https://...", a file name).
 */
int json_stream_parse(const char *buf, size_t len, const char *what,
		      const struct json_stream_options *opt, json_stream_item_fn fn, void *arg,
		      json_t **extras, struct error *err);

/*
 * The same, fed as the document arrives (an HTTP body read by chunks): items are handed
 * over as soon as they are complete, and nothing of the document is kept but what is being
 * built. feed() and finish() return what json_stream_parse() would (0, fn's value or
 * -errno with err filled); after a non-zero return the stream only frees. Text errors are
 * found chunk by chunk, so items of earlier chunks may have been handed over.
 */
struct json_stream;
struct json_stream *json_stream_new(const char *what, const struct json_stream_options *opt,
				    json_stream_item_fn fn, void *arg, struct error *err);
int json_stream_feed(struct json_stream *j, const char *data, size_t len);
/* The document is complete. *extras as for json_stream_parse(). */
int json_stream_finish(struct json_stream *j, json_t **extras);
void json_stream_free(struct json_stream *j);

#endif
