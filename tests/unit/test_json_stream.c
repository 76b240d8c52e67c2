/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/json_stream: projected items and extras equal a full jansson parse then reduce
 * (tests/unit/json_ref.c) on a corpus; malformed input refused with the exact message;
 * every truncation refused; yajl's laxities refused as jansson refuses them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/json_stream.h"
#include "json_ref.h"

/* A string literal and its length. */
#define LIT(s) s, sizeof(s) - 1

struct collect {
	json_t *items; /* [{"keys", "index", "item"}] as json_ref_run() gives them */
	int stop_at;   /* return 42 at this item (1-based), 0: never */
};

static int collect_item(void *arg, json_t *item, const struct json_stream_at *at)
{
	struct collect *c = arg;
	json_t *keys = json_array();

	for (size_t i = 0; i < at->n_keys; i++)
		json_array_append_new(keys, json_string(at->keys[i]));
	json_array_append_new(c->items, json_pack("{s:o, s:I, s:O}", "keys", keys, "index",
						  (json_int_t)at->index, "item", item));
	return (int)json_array_size(c->items) == c->stop_at ? 42 : 0;
}

/* 0: json_stream_parse(); N: the streaming reader fed N bytes at a time. */
static size_t chunk;

static int run(const char *doc, size_t len, const char *items, const char *const *fields,
	       const char *const *extras, unsigned flags, json_t **got, json_t **got_extras,
	       struct error *err)
{
	struct json_stream_options o = {
	    .items = items, .fields = fields, .extras = extras, .flags = flags};
	struct collect c = {.items = json_array()};
	struct json_stream *j;
	int ret = 0;

	error_clear(err);
	if (!chunk) {
		ret = json_stream_parse(doc, len, "doc", &o, collect_item, &c, got_extras, err);
		*got = c.items;
		return ret;
	}
	*got_extras = NULL;
	j = json_stream_new("doc", &o, collect_item, &c, err);
	if (!j) {
		*got = c.items;
		return -err->code;
	}
	for (size_t off = 0; ret == 0 && off < len; off += chunk)
		ret = json_stream_feed(j, doc + off, len - off < chunk ? len - off : chunk);
	if (ret == 0)
		ret = json_stream_finish(j, got_extras);
	json_stream_free(j);
	*got = c.items;
	return ret;
}

static void assert_json_equal(const json_t *a, const json_t *b, const char *what)
{
	if (!json_equal(a, b)) {
		char *x = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
		char *y = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);

		print_error("%s differs:\n stream:    %s\n reference: %s\n", what, x, y);
		free(x);
		free(y);
		fail();
	}
}

/* The stream reader against the reference on doc; returns the stream's code. */
static int check_same(const char *doc, const char *items, const char *const *fields,
		      const char *const *extras, unsigned flags)
{
	json_t *full = NULL, *got, *got_extras = NULL, *want, *want_extras;
	struct error err;
	int ret, ref;

	ret = run(doc, strlen(doc), items, fields, extras, flags, &got, &got_extras, &err);
	assert_int_equal(json_parse(doc, strlen(doc), "doc", &full, &err), 0);
	ref = json_ref_run(full, items, fields, extras, flags, &want, &want_extras);
	if (ref < 0) {
		/* A shape the item path refuses: the same error, after the same items. */
		if (ret != -EBADMSG)
			print_error("doc %s: want -EBADMSG, got %d\n", doc, ret);
		assert_int_equal(ret, -EBADMSG);
		assert_null(got_extras);
	} else {
		if (ret != 0)
			print_error("doc %s: %s\n", doc, err.msg);
		assert_int_equal(ret, 0);
		assert_json_equal(got_extras, want_extras, "extras");
	}
	assert_json_equal(got, want, "items");
	json_decref(full);
	json_decref(got);
	json_decref(got_extras);
	json_decref(want);
	json_decref(want_extras);
	return ret;
}

/* ---- the corpus ---- */

static const char *const corpus[] = {
    /* A NodeList page, escapes and Unicode in keys and values, numbers of every kind. */
    "{\"kind\":\"NodeList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"25010\","
    "\"continue\":\"eyJ2Ijoi\\u0041\"},\"items\":["
    "{\"metadata\":{\"name\":\"n1\",\"uid\":\"u-1\",\"labels\":{\"kubernetes.io\\/os\":\"linux\","
    "\"a\\\"b\":\"q\\\\\",\"caf\\u00e9\":\"\xc3\xa9t\xc3\xa9\",\"emoji\":\"\\ud83d\\ude00 "
    "\xf0\x9f\x98\x80\"}},\"spec\":{\"providerID\":\"gce://p/z/n1\",\"podCIDR\":\"10.0.0.0/24\","
    "\"taints\":[{\"key\":\"k\",\"effect\":\"NoSchedule\"}]},\"status\":{\"capacity\":{\"cpu\":\"4\","
    "\"pods\":110,\"big\":9223372036854775807,\"small\":-9223372036854775808,\"real\":1.5e300,"
    "\"tiny\":5e-324,\"negzero\":-0,\"zero\":0.0,\"frac\":-12.25E-2},\"images\":[{\"names\":[\"a\","
    "\"b\"],\"sizeBytes\":123456789012}],\"ok\":true,\"no\":false,\"none\":null}},"
    "{\"metadata\":{\"name\":\"n2\",\"labels\":{}},\"spec\":{}},"
    "{\"metadata\":\"not an object\",\"spec\":{\"podCIDR\":null,\"providerID\":[\"x\"]}},"
    "{\"meta\\u0064ata\":{\"name\":\"escaped key\"}}]}",
    /* Empty and missing lists. */
    "{\"kind\":\"NodeList\",\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[]}",
    "{\"kind\":\"NodeList\",\"metadata\":{},\"items\":null}",
    "{\"metadata\":{\"continue\":\"\"}}",
    "{}",
    /* An aggregated list: scopes with instances, warnings, both, nothing. */
    "{\"kind\":\"compute#instanceAggregatedList\",\"items\":{"
    "\"zones/a\":{\"instances\":[{\"name\":\"i1\",\"zone\":\"z/a\",\"id\":\"18446744073709551615\","
    "\"networkInterfaces\":[{\"name\":\"nic0\",\"fingerprint\":\"Zm9v\",\"aliasIpRanges\":"
    "[{\"ipCidrRange\":\"10.0.0.0/24\",\"subnetworkRangeName\":\"pods\"}],\"accessConfigs\":[{}]},"
    "\"scalar\",[{\"name\":\"nested\"}]],\"disks\":[{\"boot\":true}]},{\"name\":\"i2\"}]},"
    "\"zones/b\":{\"warning\":{\"code\":\"NO_RESULTS_ON_PAGE\",\"data\":[{\"key\":\"scope\","
    "\"value\":\"zones/b\"}]}},"
    "\"zones/c\":{\"instances\":[],\"warning\":{\"code\":\"X\"}},"
    "\"regions/r\":{\"instances\":null},"
    "\"zones/\\u00e9\":{\"instances\":[{\"name\":\"i3\"}]}},"
    "\"unreachables\":[],\"nextPageToken\":\"t2\",\"selfLink\":\"s\"}",
    "{\"items\":{},\"unreachables\":[\"zones/x\"]}",
    /* Top-level collections and nested arrays. */
    "[{\"a\":1,\"b\":{\"c\":[1,{\"c\":2,\"d\":3}],\"e\":4}},[],[[{\"a\":[{\"a\":1}]}]],\"s\",1,"
    "null,true,{}]",
    "[]",
    "  [ { \"a\" : { \"b\" : [ ] } } ]\r\n\t",
    /* A member no path selects, deeply nested, and keys that look like paths. */
    "{\"skip\":[[[[[[[[[[{\"items\":[1]}]]]]]]]]]],\"items\":[{\"a.b\":1,\"*\":2,\"a\":{\"b\":3}}],"
    "\"metadata\":{\"resourceVersion\":\"7\",\"continue\":{\"not\":\"a string\"}}}",
    /* Whitespace everywhere. */
    "{\r\n  \"items\" : [\n    { \"metadata\" : { \"name\" : \"n\" } }\n  ] ,\n"
    "  \"metadata\" : { }\n}\n",
};

static const char *const node_fields[] = {"metadata.name", "metadata.uid",    "spec.providerID",
					  "spec.podCIDR",  "metadata.labels", NULL};
static const char *const node_extras[] = {"metadata.continue", "metadata.resourceVersion", "kind",
					  NULL};
static const char *const inst_fields[] = {"name", "zone", "networkInterfaces.name",
					  "networkInterfaces.aliasIpRanges", NULL};
static const char *const inst_extras[] = {"items.*.warning", "nextPageToken", "unreachables", NULL};
static const char *const top_fields[] = {"a", "b.c", NULL};
static const char *const star_fields[] = {"*.b", "a", NULL};
static const char *const whole_fields[] = {"", NULL};
static const char *const no_fields[] = {NULL};

static const struct {
	const char *items;
	const char *const *fields, *const *extras;
	unsigned flags;
} option_sets[] = {
    {"items", node_fields, node_extras, JSON_STREAM_OBJECT_ITEMS},
    {"items", node_fields, node_extras, 0},
    {"items", NULL, node_extras, 0},
    {"items", whole_fields, NULL, 0},
    {"items", no_fields, NULL, 0},
    {"items", star_fields, NULL, 0},
    {"items.*.instances", inst_fields, inst_extras, JSON_STREAM_OBJECT_ITEMS},
    {"items.*.instances", NULL, inst_extras, 0},
    {"items.zones/a.instances", inst_fields, inst_extras, 0},
    {"", top_fields, NULL, 0},
    {"", NULL, NULL, 0},
    {"", star_fields, NULL, 0},
};

static void test_corpus_equals_reference(void **state)
{
	(void)state;
	for (size_t d = 0; d < sizeof(corpus) / sizeof(corpus[0]); d++)
		for (size_t o = 0; o < sizeof(option_sets) / sizeof(option_sets[0]); o++)
			check_same(corpus[d], option_sets[o].items, option_sets[o].fields,
				   option_sets[o].extras, option_sets[o].flags);
}

/* What the clients rely on, spelled out rather than compared. */
static void test_projection_and_places(void **state)
{
	json_t *got, *extras, *item;
	struct error err;

	(void)state;
	assert_int_equal(run(corpus[0], strlen(corpus[0]), "items", node_fields, node_extras,
			     JSON_STREAM_OBJECT_ITEMS, &got, &extras, &err),
			 0);
	assert_int_equal(json_array_size(got), 4);
	item = json_object_get(json_array_get(got, 0), "item");
	assert_string_equal(json_path_str(item, "metadata.name"), "n1");
	assert_string_equal(json_path_str(item, "spec.podCIDR"), "10.0.0.0/24");
	assert_string_equal(json_path_str(item, "metadata.labels.a\"b"), "q\\");
	assert_string_equal(json_path_str(item, "metadata.labels.emoji"),
			    "\xf0\x9f\x98\x80 \xf0\x9f\x98\x80");
	/* Only the selected fields: 2 members (metadata, spec), spec without taints. */
	assert_int_equal(json_object_size(item), 2);
	assert_null(json_path(item, "spec.taints"));
	assert_null(json_path(item, "status"));
	/* A field written with an escape in its key is the same key. */
	item = json_object_get(json_array_get(got, 3), "item");
	assert_string_equal(json_path_str(item, "metadata.name"), "escaped key");
	assert_string_equal(json_path_str(extras, "metadata.resourceVersion"), "25010");
	assert_string_equal(json_path_str(extras, "metadata.continue"), "eyJ2IjoiA");
	assert_string_equal(json_path_str(extras, "kind"), "NodeList");
	assert_null(json_object_get(extras, "items"));
	json_decref(got);
	json_decref(extras);

	/* Aggregated: the scope and the index within its array; warnings in the extras. */
	assert_int_equal(run(corpus[5], strlen(corpus[5]), "items.*.instances", inst_fields,
			     inst_extras, JSON_STREAM_OBJECT_ITEMS, &got, &extras, &err),
			 0);
	assert_int_equal(json_array_size(got), 3);
	assert_string_equal(json_path_str(json_array_get(got, 1), "keys.0"), "zones/a");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(got, 1), "index")), 1);
	assert_string_equal(json_path_str(json_array_get(got, 2), "keys.0"), "zones/\xc3\xa9");
	item = json_object_get(json_array_get(got, 0), "item");
	assert_string_equal(json_path_str(item, "networkInterfaces.0.name"), "nic0");
	assert_string_equal(json_path_str(item, "networkInterfaces.0.aliasIpRanges.0.ipCidrRange"),
			    "10.0.0.0/24");
	assert_null(json_path(item, "networkInterfaces.0.fingerprint"));
	assert_string_equal(json_path_str(item, "networkInterfaces.1"), "scalar");
	assert_string_equal(json_path_str(item, "networkInterfaces.2.0.name"), "nested");
	assert_string_equal(json_path_str(extras, "items.zones/b.warning.code"),
			    "NO_RESULTS_ON_PAGE");
	assert_string_equal(json_path_str(extras, "nextPageToken"), "t2");
	assert_null(json_path(extras, "items.zones/a.instances"));
	assert_true(json_is_null(json_path(extras, "items.regions/r.instances")) ||
		    !json_path(extras, "items.regions/r.instances"));
	json_decref(got);
	json_decref(extras);
}

static void test_callback_stops(void **state)
{
	struct json_stream_options o = {.items = ""};
	struct collect c = {.items = json_array(), .stop_at = 2};
	struct error err = {0};
	json_t *extras = (json_t *)1;

	(void)state;
	assert_int_equal(
	    json_stream_parse(LIT("[1,2,3,{\"a\":1}]"), "doc", &o, collect_item, &c, &extras, &err),
	    42);
	assert_int_equal(json_array_size(c.items), 2);
	assert_null(extras);
	json_decref(c.items);
}

/* ---- errors ---- */

/* Parses doc; true when it fails with code and exactly msg (a mismatch is printed). */
static bool fails_with(const char *doc, size_t len, const char *items, unsigned flags, int code,
		       const char *msg)
{
	static const char *const extras[] = {"metadata.continue", NULL};
	json_t *got, *got_extras = NULL;
	struct error err;
	bool ok;
	int ret;

	ret = run(doc, len, items, NULL, *items ? extras : NULL, flags, &got, &got_extras, &err);
	ok = ret == code && !strcmp(err.msg, msg) && !got_extras;
	if (!ok)
		print_error("input %.*s\n want %d \"%s\"\n got  %d \"%s\"\n", (int)len, doc, code,
			    msg, ret, err.msg);
	json_decref(got);
	json_decref(got_extras);
	return ok;
}

static void test_malformed(void **state)
{
	static const struct {
		const char *doc, *items, *msg;
	} cases[] = {
	    {"", "", "doc:1:1: invalid JSON (byte 0): parse error: premature EOF"},
	    {"  \n ", "", "doc:2:2: invalid JSON (byte 4): parse error: premature EOF"},
	    {"{\"items\":[", "items",
	     "doc:1:11: invalid JSON (byte 10): parse error: premature EOF"},
	    {"{\"items\":[1,]}", "items",
	     "doc:1:13: invalid JSON (byte 12): parse error: unallowed token at this point in "
	     "JSON text"},
	    {"{\"a\":1,}", "items",
	     "doc:1:8: invalid JSON (byte 7): parse error: invalid object key (must be a string)"},
	    {"{\"a\":1}x", "items",
	     "doc:1:8: invalid JSON (byte 7): parse error: trailing garbage"},
	    {"{\"a\":1} {}", "items",
	     "doc:1:9: invalid JSON (byte 8): parse error: trailing garbage"},
	    /* yajl alone would wait for the end of that string. */
	    {"{\"a\":1} \"x", "items",
	     "doc:1:9: invalid JSON (byte 8): parse error: trailing garbage"},
	    {"[1]\n\"", "", "doc:2:1: invalid JSON (byte 4): parse error: trailing garbage"},
	    {"{\"a\" 1}", "items",
	     "doc:1:6: invalid JSON (byte 5): parse error: object key and value must be separated "
	     "by a colon (':')"},
	    {"/* c */ {}", "items",
	     "doc:1:1: invalid JSON (byte 0): lexical error: probable comment found in input "
	     "text, comments are not enabled"},
	    {"{'a':1}", "items",
	     "doc:1:2: invalid JSON (byte 1): lexical error: invalid char in json text"},
	    {"[NaN]", "",
	     "doc:1:2: invalid JSON (byte 1): lexical error: invalid char in json text"},
	    {"[01]", "",
	     "doc:1:3: invalid JSON (byte 2): parse error: after array element, I expect ',' or "
	     "']'"},
	    {"[-]", "",
	     "doc:1:3: invalid JSON (byte 2): lexical error: malformed number, a digit is required "
	     "after the minus sign"},
	    {"[1.]", "",
	     "doc:1:4: invalid JSON (byte 3): lexical error: malformed number, a digit is required "
	     "after the decimal point"},
	    {"[tru]", "",
	     "doc:1:5: invalid JSON (byte 4): lexical error: invalid string in json text"},
	    {"[\"a\\x\"]", "",
	     "doc:1:5: invalid JSON (byte 4): lexical error: inside a string, '\\' occurs before a "
	     "character which it may not"},
	    {"[\"\\u12G4\"]", "",
	     "doc:1:7: invalid JSON (byte 6): lexical error: invalid (non-hex) character occurs "
	     "after '\\u' inside string"},
	    /* What yajl alone would take. */
	    {"{\"a\":1,\n\"b\":\f2}", "items",
	     "doc:2:5: invalid JSON (byte 12): control character 0x0c"},
	    {"[1,\v2]", "", "doc:1:4: invalid JSON (byte 3): control character 0x0b"},
	    {"[\"a\tb\"]", "",
	     "doc:1:4: invalid JSON (byte 3): lexical error: invalid character inside string"},
	    {"[\"\xc0\x80\"]", "", "doc:1:3: invalid JSON (byte 2): invalid UTF-8 (byte 0xc0)"},
	    {"[\"\xed\xa0\x80\"]", "", "doc:1:3: invalid JSON (byte 2): invalid UTF-8 (byte 0xed)"},
	    {"[\"\xf4\x90\x80\x80\"]", "",
	     "doc:1:3: invalid JSON (byte 2): invalid UTF-8 (byte 0xf4)"},
	    {"[\"\xe2\x82\"]", "", "doc:1:3: invalid JSON (byte 2): invalid UTF-8 (byte 0xe2)"},
	    {"[\"\xff\"]", "", "doc:1:3: invalid JSON (byte 2): invalid UTF-8 (byte 0xff)"},
	    {"[\"\\u0000\"]", "", "doc:1:3: invalid JSON (byte 2): \\u0000 is not allowed"},
	    {"[\"ab\\\\\\u0000\"]", "", "doc:1:7: invalid JSON (byte 6): \\u0000 is not allowed"},
	    {"[\"\\ud800\"]", "",
	     "doc:1:3: invalid JSON (byte 2): invalid Unicode escape '\\uD800' (a lone surrogate)"},
	    {"[\"\\ud800\\u0041\"]", "",
	     "doc:1:3: invalid JSON (byte 2): invalid Unicode escape '\\uD800' (a lone surrogate)"},
	    {"[\"\\udc00\"]", "",
	     "doc:1:3: invalid JSON (byte 2): invalid Unicode escape '\\uDC00'"},
	    {"[9223372036854775808]", "", "doc:1:2: invalid JSON (byte 1): too big integer"},
	    {"[-9223372036854775809]", "",
	     "doc:1:2: invalid JSON (byte 1): too big negative integer"},
	    {"[1e400]", "", "doc:1:2: invalid JSON (byte 1): real number overflow"},
	    /* In a member no path selects, too: the whole document is checked. */
	    {"{\"skip\":[1e999],\"items\":[]}", "items",
	     "doc:1:10: invalid JSON (byte 9): real number overflow"},
	    {"{\"skip\":{\"x\":\"\\ud800\"},\"items\":[]}", "items",
	     "doc:1:15: invalid JSON (byte 14): invalid Unicode escape '\\uD800' (a lone "
	     "surrogate)"},
	    /* Duplicate keys where they matter. */
	    {"{\"items\":[],\"items\":[]}", "items",
	     "doc:1:19: invalid JSON (byte 18): duplicate object key \"items\""},
	    {"{\"metadata\":{\"continue\":\"a\",\"continue\":\"b\"},\"items\":[]}", "items",
	     "doc:1:38: invalid JSON (byte 37): duplicate object key \"continue\""},
	    {"{\"items\":[{\"a\":{\"b\":1,\"b\":2}}]}", "items",
	     "doc:1:25: invalid JSON (byte 24): duplicate object key \"b\""},
	    {"[{\"\\u0062\":1,\"b\":2}]", "",
	     "doc:1:16: invalid JSON (byte 15): duplicate object key \"b\""},
	    /* Shapes the item path does not allow. */
	    {"{\"items\":{}}", "items", "doc: items is not an array"},
	    {"{\"items\":\"x\"}", "items", "doc: items is not an array"},
	    {"[]", "items", "doc: the top-level value is not an object"},
	    {"null", "items", "doc: the top-level value is not an object"},
	    {"{}", "", "doc: the top-level value is not an array"},
	};

	size_t failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		failed += !fails_with(cases[i].doc, strlen(cases[i].doc), cases[i].items, 0,
				      -EBADMSG, cases[i].msg);
	failed += !fails_with("{\"items\":[{},1]}", 16, "items", JSON_STREAM_OBJECT_ITEMS, -EBADMSG,
			      "doc: items[1] is not an object");
	failed += !fails_with("[{},[]]", 7, "", JSON_STREAM_OBJECT_ITEMS, -EBADMSG,
			      "doc: top-level array element 1 is not an object");
	/* A NUL byte in the text, and text after one. */
	failed += !fails_with("[1]\0", 4, "", 0, -EBADMSG,
			      "doc:1:4: invalid JSON (byte 3): control character 0x00");
	failed += !fails_with("[\"a\0\"]", 6, "", 0, -EBADMSG,
			      "doc:1:4: invalid JSON (byte 3): control character 0x00");
	assert_int_equal(failed, 0);
}

static void test_shapes_on_item_path(void **state)
{
	static const char *const extras[] = {"items.*.warning", NULL};
	struct json_stream_options o = {.items = "items.*.instances", .extras = extras};
	struct collect c = {.items = json_array()};
	struct error err = {0};

	(void)state;
	assert_int_equal(json_stream_parse(LIT("{\"items\":{\"zones/a\":{\"instances\":{}}}}"),
					   "GET u", &o, collect_item, &c, NULL, &err),
			 -EBADMSG);
	assert_string_equal(err.msg, "GET u: items.zones/a.instances is not an array");
	assert_int_equal(json_stream_parse(LIT("{\"items\":{\"zones/a\":[]}}"), "GET u", &o,
					   collect_item, &c, NULL, &err),
			 -EBADMSG);
	assert_string_equal(err.msg, "GET u: items.zones/a is not an object");
	assert_int_equal(
	    json_stream_parse(LIT("{\"items\":[]}"), "GET u", &o, collect_item, &c, NULL, &err),
	    -EBADMSG);
	assert_string_equal(err.msg, "GET u: items is not an object");
	/* A key that cannot be printed is named with '?'. */
	assert_int_equal(json_stream_parse(LIT("{\"items\":{\"a\\nb\":1}}"), "GET u", &o,
					   collect_item, &c, NULL, &err),
			 -EBADMSG);
	assert_string_equal(err.msg, "GET u: items.a?b is not an object");
	/* The same scope twice. */
	assert_int_equal(json_stream_parse(LIT("{\"items\":{\"z\":{},\"z\":{}}}"), "GET u", &o,
					   collect_item, &c, NULL, &err),
			 -EBADMSG);
	assert_string_equal(err.msg,
			    "GET u:1:20: invalid JSON (byte 19): duplicate object key \"z\"");
	assert_int_equal(json_array_size(c.items), 0);
	json_decref(c.items);
}

/*
 * Duplicates among keys no path selects are not seen (jansson would refuse the document):
 * the price of not remembering skipped keys, stated in the header.
 */
static void test_duplicates_outside_projection(void **state)
{
	static const char doc[] = "{\"items\":[{\"name\":\"a\",\"x\":1,\"x\":2}],\"y\":1,\"y\":2}";
	static const char *const fields[] = {"name", NULL};
	json_t *got, *extras, *full = NULL;
	struct error err;

	(void)state;
	assert_int_equal(json_parse(doc, strlen(doc), "doc", &full, &err), -EBADMSG);
	assert_int_equal(run(doc, strlen(doc), "items", fields, NULL, 0, &got, &extras, &err), 0);
	assert_string_equal(json_path_str(got, "0.item.name"), "a");
	json_decref(got);
	json_decref(extras);
}

static void test_bad_options(void **state)
{
	static const struct {
		const char *items, *extra, *field, *msg;
	} cases[] = {
	    {NULL, NULL, NULL, "no item path"},
	    {"items..x", NULL, NULL, "item path \"items..x\": empty path element"},
	    {"items", "a.", NULL, "path \"a.\": empty path element"},
	    {"items", NULL, ".a", "field \".a\": empty path element"},
	    {"items", "items", NULL, "path \"items\" leads into the items"},
	    {"items", "items.0", NULL, "path \"items.0\" leads into the items"},
	    {"items", "", NULL, "path \"\" leads into the items"},
	    {"items.*.instances", "items.*", NULL, "path \"items.*\" leads into the items"},
	    {"items.*.instances", "items.*.*", NULL, "path \"items.*.*\" leads into the items"},
	    {"items.*.instances", "items.z.instances.name", NULL,
	     "path \"items.z.instances.name\" leads into the items"},
	    {"", "a", NULL, "path \"a\" leads into the items"},
	};
	struct error err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *extras[] = {cases[i].extra, NULL}, *fields[] = {cases[i].field, NULL};
		struct json_stream_options o = {
		    .items = cases[i].items,
		    .extras = cases[i].extra ? extras : NULL,
		    .fields = cases[i].field ? fields : NULL,
		};
		json_t *x = (json_t *)1;

		error_clear(&err);
		assert_int_equal(json_stream_parse(LIT("{}"), "doc", &o, NULL, NULL, &x, &err),
				 -EINVAL);
		assert_string_equal(err.msg, cases[i].msg);
		assert_null(x);
	}
	/* Paths that share a prefix with the items without entering them are fine. */
	{
		static const char *const ok[] = {"items.*.warning", "items.z.warning", "itemsx",
						 NULL};
		struct json_stream_options o = {.items = "items.*.instances", .extras = ok};

		assert_int_equal(json_stream_parse(LIT("{}"), "doc", &o, NULL, NULL, NULL, &err),
				 0);
	}
}

/* Every proper prefix of a document is refused, and nothing is returned for it. */
static const char *const truncated_items[] = {
    "items", "items", "items", "items", "items", "items.*.instances", "items.*.instances",
    "",      "",      "",      "items", "items",
};

static void test_truncated(void **state)
{
	(void)state;
	assert_int_equal(sizeof(truncated_items) / sizeof(truncated_items[0]),
			 sizeof(corpus) / sizeof(corpus[0]));
	for (size_t d = 0; d < sizeof(corpus) / sizeof(corpus[0]); d++) {
		size_t len = strlen(corpus[d]);

		for (size_t n = 0; n < len; n++) {
			json_t *got, *extras = NULL;
			struct error err;
			int ret;

			/* Trailing white space is not part of the document. */
			if (strspn(corpus[d] + n, " \t\r\n") == len - n)
				break;
			ret = run(corpus[d], n, truncated_items[d], node_fields, NULL, 0, &got,
				  &extras, &err);
			if (ret != -EBADMSG)
				print_error("doc %zu cut at %zu: %d\n", d, n, ret);
			assert_int_equal(ret, -EBADMSG);
			assert_non_null(strstr(err.msg, "invalid JSON (byte"));
			assert_null(extras);
			json_decref(got);
		}
	}
}

/* jansson's limit: a value inside 2048 containers is refused; skipped values count too. */
static void test_depth(void **state)
{
	const size_t n = 2048;
	char *doc = malloc(2 * n + 64);
	json_t *got, *extras, *full;
	struct error err;
	size_t o;

	(void)state;
	for (int inner = 0; inner < 2; inner++) {
		o = 0;
		for (size_t i = 0; i < n; i++)
			doc[o++] = '[';
		if (inner)
			doc[o++] = '1';
		for (size_t i = 0; i < n; i++)
			doc[o++] = ']';
		full = NULL;
		assert_int_equal(json_parse(doc, o, "doc", &full, &err), inner ? -EBADMSG : 0);
		json_decref(full);
		assert_int_equal(run(doc, o, "", NULL, NULL, 0, &got, &extras, &err),
				 inner ? -EBADMSG : 0);
		if (inner)
			assert_string_equal(err.msg,
					    "doc:1:2049: invalid JSON (byte 2048): maximum "
					    "nesting depth reached");
		else
			assert_int_equal(json_array_size(got), 1);
		json_decref(got);
		json_decref(extras);
	}
	/* Under a member no path selects: the object and 2047 arrays, then one more. */
	o = (size_t)sprintf(doc, "{\"skip\":");
	for (size_t i = 0; i < n - 1; i++)
		doc[o++] = '[';
	for (size_t i = 0; i < n - 1; i++)
		doc[o++] = ']';
	o += (size_t)sprintf(doc + o, ",\"items\":[]}");
	assert_int_equal(run(doc, o, "items", NULL, NULL, 0, &got, &extras, &err), 0);
	json_decref(got);
	json_decref(extras);
	o = (size_t)sprintf(doc, "{\"skip\":");
	for (size_t i = 0; i < n; i++)
		doc[o++] = '[';
	for (size_t i = 0; i < n; i++)
		doc[o++] = ']';
	o += (size_t)sprintf(doc + o, ",\"items\":[]}");
	assert_int_equal(run(doc, o, "items", NULL, NULL, 0, &got, &extras, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "maximum nesting depth reached"));
	json_decref(got);
	free(doc);
}

/* A page the size of a real one: items are built one at a time and match the reference. */
static void test_large_page(void **state)
{
	static const char *const fields[] = {"metadata.name", "spec.podCIDR", NULL};
	static const char *const extras[] = {"metadata.continue", NULL};
	size_t cap = 4 << 20, o = 0;
	char *doc = malloc(cap);

	(void)state;
	o += (size_t)snprintf(doc + o, cap - o, "{\"metadata\":{\"continue\":\"c\"},\"items\":[");
	for (int i = 0; i < 2000; i++)
		o += (size_t)snprintf(
		    doc + o, cap - o,
		    "%s{\"metadata\":{\"name\":\"node-%d\",\"labels\":{\"k%d\":\"v\"}},"
		    "\"spec\":{\"podCIDR\":\"10.%d.%d.0/24\"},\"status\":{\"images\":"
		    "[{\"names\":[\"img:%d\"],\"sizeBytes\":%d}]}}",
		    i ? "," : "", i, i, i / 256, i % 256, i, i * 1000);
	o += (size_t)snprintf(doc + o, cap - o, "]}");
	assert_true(o < cap);
	check_same(doc, "items", fields, extras, JSON_STREAM_OBJECT_ITEMS);
	free(doc);
}

static void test_malformed(void **state);

/*
 * The streaming reader fed in pieces (1, 2, 3, 7 and 64 bytes: every sequence cut at every
 * place) gives what one call gives: the same items and extras, the same errors.
 */
static void test_chunked_equals_whole(void **state)
{
	static const size_t sizes[] = {1, 2, 3, 7, 64};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		chunk = sizes[i];
		test_corpus_equals_reference(state);
		test_malformed(state);
		test_truncated(state);
	}
	chunk = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_corpus_equals_reference),
	    cmocka_unit_test(test_projection_and_places),
	    cmocka_unit_test(test_callback_stops),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_shapes_on_item_path),
	    cmocka_unit_test(test_duplicates_outside_projection),
	    cmocka_unit_test(test_bad_options),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_large_page),
	    cmocka_unit_test(test_chunked_equals_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
