/* SPDX-License-Identifier: Apache-2.0 */
/* talos-gcp-emu Compute internals: the address index, filters, base64, the JSON writer. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "emu/compute/compute.h"

static uint32_t ip(unsigned a, unsigned b, unsigned c, unsigned d)
{
	return (uint32_t)a << 24 | b << 16 | c << 8 | d;
}

static void test_ipindex_overlap_and_remove(void **state)
{
	struct ipindex *x = ipindex_new();

	(void)state;
	assert_int_equal(ipindex_add(x, "talos", ip(172, 20, 1, 0), ip(172, 20, 1, 255), "i/a"), 0);
	assert_int_equal(ipindex_add(x, "talos", ip(10, 0, 0, 2), ip(10, 0, 0, 2), "i/a"), 0);
	assert_int_equal(ipindex_add(x, "talos", ip(172, 20, 3, 0), ip(172, 20, 3, 255), "i/b"), 0);
	/* Overlaps, by the range before and after the query, and none in another network. */
	assert_string_equal(
	    ipindex_overlap(x, "talos", ip(172, 20, 1, 128), ip(172, 20, 1, 128), NULL), "i/a");
	assert_string_equal(ipindex_overlap(x, "talos", ip(172, 20, 0, 0), ip(172, 20, 3, 0), NULL),
			    "i/a");
	assert_string_equal(ipindex_overlap(x, "talos", ip(172, 20, 2, 0), ip(172, 20, 3, 0), NULL),
			    "i/b");
	assert_null(ipindex_overlap(x, "talos", ip(172, 20, 2, 0), ip(172, 20, 2, 255), NULL));
	assert_null(ipindex_overlap(x, "other", ip(172, 20, 1, 0), ip(172, 20, 1, 255), NULL));
	assert_null(ipindex_overlap(x, "talos", ip(172, 20, 1, 0), ip(172, 20, 1, 255), "i/a"));
	assert_int_equal(ipindex_add(x, "talos", ip(172, 20, 1, 7), ip(172, 20, 1, 7), "i/c"),
			 -EEXIST);
	ipindex_remove_owner(x, "talos", "i/a");
	assert_null(ipindex_overlap(x, "talos", ip(172, 20, 1, 0), ip(172, 20, 1, 255), NULL));
	assert_string_equal(ipindex_overlap(x, "talos", ip(172, 20, 3, 9), ip(172, 20, 3, 9), NULL),
			    "i/b");
	ipindex_free(x);
}

static void test_ipindex_alloc(void **state)
{
	struct ipindex *x = ipindex_new();
	uint32_t got, extra[2] = {ip(172, 20, 2, 0), ip(172, 20, 2, 255)};

	(void)state;
	/* The first free /24 of 172.20.0.0/22, skipping taken ones and the extra range. */
	assert_int_equal(
	    ipindex_alloc(x, "n", ip(172, 20, 0, 0), ip(172, 20, 3, 255), 24, NULL, NULL, 0, &got),
	    0);
	assert_int_equal(got, ip(172, 20, 0, 0));
	ipindex_add(x, "n", ip(172, 20, 0, 0), ip(172, 20, 0, 255), "a");
	ipindex_add(x, "n", ip(172, 20, 1, 17), ip(172, 20, 1, 17),
		    "b"); /* one address blocks a /24 */
	assert_int_equal(
	    ipindex_alloc(x, "n", ip(172, 20, 0, 0), ip(172, 20, 3, 255), 24, NULL, extra, 1, &got),
	    0);
	assert_int_equal(got, ip(172, 20, 3, 0));
	ipindex_add(x, "n", ip(172, 20, 3, 0), ip(172, 20, 3, 255), "c");
	assert_int_equal(
	    ipindex_alloc(x, "n", ip(172, 20, 0, 0), ip(172, 20, 3, 255), 24, NULL, extra, 1, &got),
	    -ENOSPC);
	/* A /32 from a primary range, after the addresses in use. */
	assert_int_equal(
	    ipindex_alloc(x, "n", ip(172, 20, 1, 16), ip(172, 20, 1, 20), 32, NULL, NULL, 0, &got),
	    0);
	assert_int_equal(got, ip(172, 20, 1, 16));
	ipindex_add(x, "n", ip(172, 20, 1, 16), ip(172, 20, 1, 16), "d");
	assert_int_equal(
	    ipindex_alloc(x, "n", ip(172, 20, 1, 16), ip(172, 20, 1, 20), 32, NULL, NULL, 0, &got),
	    0);
	assert_int_equal(got, ip(172, 20, 1, 18));
	/* Alignment: a /26 never straddles. */
	assert_int_equal(
	    ipindex_alloc(x, "n", ip(172, 20, 1, 1), ip(172, 20, 1, 255), 26, NULL, NULL, 0, &got),
	    0);
	assert_int_equal(got, ip(172, 20, 1, 64));
	ipindex_free(x);
}

static bool matches(const char *filter, const char *doc)
{
	struct filter *f = NULL;
	json_t *res = json_loads(doc, 0, NULL);
	char err[256];
	bool m;

	assert_non_null(res);
	assert_int_equal(filter_parse(filter, &f, err, sizeof(err)), 0);
	m = filter_match(f, res);
	filter_free(f);
	json_decref(res);
	return m;
}

static void test_filters(void **state)
{
	static const char vm[] =
	    "{\"name\":\"node-a\",\"status\":\"RUNNING\",\"zone\":\"https://x/zones/us-central1-a\","
	    "\"labels\":{\"role\":\"cp\"},\"scheduling\":{\"automaticRestart\":true},"
	    "\"networkInterfaces\":[{\"networkIP\":\"10.0.0.2\"},{\"networkIP\":\"10.1.0.2\"}],"
	    "\"cpus\":4}";
	struct filter *f = NULL;
	char err[256];

	(void)state;
	assert_true(matches("name eq 'node-.*'", vm));
	assert_false(matches("name eq 'node'", vm)); /* the whole value must match */
	assert_true(matches("name ne 'other'", vm));
	assert_true(matches("zone eq '.*us-central1-a'", vm));
	assert_true(matches("name = node-a", vm));
	assert_true(matches("name = \"node-*\"", vm));
	assert_true(matches("status != STOPPED", vm));
	assert_true(matches("labels.role = cp", vm));
	assert_true(matches("labels.role:*", vm));
	assert_false(matches("labels.env:*", vm));
	assert_true(matches("scheduling.automaticRestart = true", vm));
	assert_true(matches("networkInterfaces.networkIP = 10.1.0.2", vm)); /* any element */
	assert_true(matches("cpus > 2 AND cpus <= 4", vm));
	assert_true(matches("(name = x) OR (name = node-a)", vm));
	assert_true(matches("(status = RUNNING) (name:node)", vm));
	assert_false(matches("NOT name = node-a", vm));
	assert_true(matches("-name = other", vm));
	assert_true(matches("missing != x", vm)); /* nothing equals an absent field */
	assert_int_equal(filter_parse("name = (", &f, err, sizeof(err)), -EINVAL);
	assert_int_equal(filter_parse("name eq 'a++'", &f, err, sizeof(err)), -EINVAL);
	assert_int_equal(filter_parse("name eq '(a{100}){100}'", &f, err, sizeof(err)), -EINVAL);
	assert_int_equal(filter_parse("name", &f, err, sizeof(err)), -EINVAL);
}

static void test_fingerprints(void **state)
{
	char *fp = new_fingerprint();
	uint8_t *raw;
	size_t n;

	(void)state;
	assert_int_equal(strlen(fp), 12);
	assert_int_equal(b64_decode(fp, strlen(fp), &raw, &n), 0);
	assert_int_equal(n, 8);
	free(raw);
	/* gcloud re-encodes URL-safe without padding: the same bytes. */
	assert_true(fingerprint_equal("+/8AAAAAAAA=", "-_8AAAAAAAA"));
	assert_false(fingerprint_equal("+/8AAAAAAAA=", "-_8AAAAAAAB"));
	assert_false(fingerprint_equal("not base64!", "not base64!"));
	assert_int_equal(b64_decode("QQ==", 4, &raw, &n), 0);
	assert_int_equal(n, 1);
	free(raw);
	assert_int_equal(b64_decode("QR==", 4, &raw, &n), -EINVAL); /* stray bits */
	assert_int_equal(b64_decode("Q", 1, &raw, &n), -EINVAL);
	free(fp);
}

static void test_writer_matches_jansson(void **state)
{
	static const char *const docs[] = {
	    ("{\"a\":\"x\\\"y\\\\z\\n\\u0001\\u001f/\\u00e9\",\"b\":[1,-2,3.5,1e+20,1e-07,0.10000000000000001,true,false,null],"
	     "\"c\":{},\"d\":[],\"e\":{\"f\":{\"g\":[{}]}},\"h\":12345678901234567}"),
	    "[]",
	    "\"\\u2028\"",
	    "-0.0",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		json_t *v = json_loads(docs[i], JSON_DECODE_ANY, NULL);
		char *theirs, *ours;
		size_t len;

		assert_non_null(v);
		theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		ours = compute_json_text(v, &len);
		assert_int_equal(len, strlen(theirs));
		assert_memory_equal(ours, theirs, len);
		free(ours);
		free(theirs);
		json_decref(v);
	}
}

static void test_names_and_uuids(void **state)
{
	(void)state;
	assert_true(valid_name("node-a"));
	assert_true(valid_name("a"));
	assert_false(valid_name("Node"));
	assert_false(valid_name("node-"));
	assert_false(valid_name("1node"));
	assert_false(
	    valid_name("a-123456789-123456789-123456789-123456789-123456789-123456789-12"));
	assert_true(valid_uuid("8f0f6a2e-1b7c-4a57-9a3d-1c2b3d4e5f60"));
	assert_false(valid_uuid("00000000-0000-0000-0000-000000000000"));
	assert_false(valid_uuid("8f0f6a2e1b7c4a579a3d1c2b3d4e5f60"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ipindex_overlap_and_remove),
	    cmocka_unit_test(test_ipindex_alloc),
	    cmocka_unit_test(test_filters),
	    cmocka_unit_test(test_fingerprints),
	    cmocka_unit_test(test_writer_matches_jansson),
	    cmocka_unit_test(test_names_and_uuids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
