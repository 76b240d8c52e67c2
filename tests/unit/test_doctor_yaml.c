/* SPDX-License-Identifier: Apache-2.0 */
/* The doctor's YAML trees: positions, documents, anchors, merge keys and the limits. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "doctor/ytree.h"

static int load(struct ystream *s, const char *text, struct error *err)
{
	memset(s, 0, sizeof(*s));
	error_clear(err);
	return yaml_load(s, text, strlen(text), NULL, err);
}

static void test_positions(void **state)
{
	struct ystream s;
	struct error err;
	const struct ynode *n;

	(void)state;
	assert_int_equal(load(&s, "a: 1\nb:\n  c: [x, \"y\"]\n  d: |\n    text\n", &err), 0);
	assert_int_equal(s.n_docs, 1);
	n = yget(s.docs[0].root, "b", "c", NULL);
	assert_true(yis_seq(n));
	assert_int_equal(n->n, 2);
	assert_int_equal(n->line, 3);
	assert_int_equal(n->col, 6);
	assert_int_equal(n->items[1]->col, 10);
	assert_false(n->items[0]->quoted);
	assert_true(n->items[1]->quoted);
	n = ymap_key(ymap_get(s.docs[0].root, "b"), "d");
	assert_int_equal(n->line, 4);
	assert_int_equal(n->col, 3);
	assert_string_equal(ystr(yget(s.docs[0].root, "b", "d", NULL)), "text\n");
	ystream_free(&s);
}

static void test_documents(void **state)
{
	struct ystream s;
	struct error err;

	(void)state;
	assert_int_equal(load(&s, "a: 1\n---\n---\nb: 2\n...\n---\n- 3\n", &err), 0);
	assert_int_equal(s.n_docs, 4);
	assert_non_null(s.docs[0].root);
	assert_null(s.docs[1].root); /* empty document */
	assert_int_equal(s.docs[2].line, 3);
	assert_true(yis_seq(s.docs[3].root));
	ystream_free(&s);
}

static void test_syntax_error_keeps_earlier_documents(void **state)
{
	struct ystream s;
	struct error err;

	(void)state;
	assert_int_equal(load(&s, "a: 1\n---\nb: [1, 2\nc: 3\n", &err), -EINVAL);
	assert_int_equal(s.n_docs, 1);
	assert_non_null(strstr(err.msg, ":"));
	/* "LINE:COL: problem" */
	assert_true(err.msg[0] >= '1' && err.msg[0] <= '9');
	ystream_free(&s);
}

static void test_aliases_and_merge(void **state)
{
	struct ystream s;
	struct error err;
	const struct ynode *root, *b;

	(void)state;
	assert_int_equal(load(&s,
			      "base: &b {x: 1, y: 2}\n"
			      "other: &o {z: 3}\n"
			      "m:\n  <<: [*b, *o]\n  y: 9\n"
			      "ref: *b\n",
			      &err),
			 0);
	root = s.docs[0].root;
	b = ymap_get(root, "base");
	/* An alias is the same node, not a copy. */
	assert_ptr_equal(ymap_get(root, "ref"), b);
	assert_string_equal(ystr(yget(root, "m", "x", NULL)), "1");
	assert_string_equal(ystr(yget(root, "m", "y", NULL)), "9"); /* own key wins */
	assert_string_equal(ystr(yget(root, "m", "z", NULL)), "3");
	assert_null(yget(root, "m", "w", NULL));
	ystream_free(&s);
}

static void test_billion_laughs_refused(void **state)
{
	struct ystream s;
	struct error err;
	char text[2048];
	size_t n = 0;

	(void)state;
	n += (size_t)snprintf(text + n, sizeof(text) - n,
			      "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
	for (int i = 1; i < 10; i++)
		n += (size_t)snprintf(
		    text + n, sizeof(text) - n,
		    "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i,
		    i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	assert_int_equal(load(&s, text, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "billion laughs"));
	ystream_free(&s);
}

static void test_recursive_alias_refused(void **state)
{
	struct ystream s;
	struct error err;

	(void)state;
	assert_int_equal(load(&s, "a: &x [1, *x]\n", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "recursive"));
	ystream_free(&s);
	assert_int_equal(load(&s, "a: *nope\n", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "names no anchor"));
	ystream_free(&s);
}

static void test_depth_limit(void **state)
{
	struct ystream s;
	struct error err;
	char *deep = malloc(20001);

	(void)state;
	memset(deep, '[', 10000);
	memset(deep + 10000, ']', 10000);
	deep[20000] = '\0';
	assert_int_equal(load(&s, deep, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "nesting"));
	ystream_free(&s);
	free(deep);
}

static void test_scalars(void **state)
{
	struct ystream s;
	struct error err;
	const struct ynode *r;
	bool b;
	uint64_t u;

	(void)state;
	assert_int_equal(
	    load(&s, "t: yes\nf: \"false\"\nn: ~\ne:\nq: \"\"\ni: 1460\nx: 1.5\n", &err), 0);
	r = s.docs[0].root;
	assert_int_equal(ybool(ymap_get(r, "t"), &b), 0);
	assert_true(b);
	assert_int_equal(ybool(ymap_get(r, "f"), &b), 0);
	assert_false(b);
	assert_true(yis_null(ymap_get(r, "n")));
	assert_true(yis_null(ymap_get(r, "e")));
	assert_false(yis_null(ymap_get(r, "q")));
	assert_int_equal(yuint(ymap_get(r, "i"), 65535, &u), 0);
	assert_int_equal(u, 1460);
	assert_int_equal(yuint(ymap_get(r, "x"), 65535, &u), -EINVAL);
	assert_int_equal(ybool(ymap_get(r, "i"), &b), -EINVAL);
	ystream_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_positions),
	    cmocka_unit_test(test_documents),
	    cmocka_unit_test(test_syntax_error_keeps_earlier_documents),
	    cmocka_unit_test(test_aliases_and_merge),
	    cmocka_unit_test(test_billion_laughs_refused),
	    cmocka_unit_test(test_recursive_alias_refused),
	    cmocka_unit_test(test_depth_limit),
	    cmocka_unit_test(test_scalars),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
