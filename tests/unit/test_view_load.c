/* SPDX-License-Identifier: Apache-2.0 */
/* cli/view_load: the filtered ranges that split the instance listing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/view_load.h"

static struct view_node node(const char *provider_id)
{
	return (struct view_node){.name = (char *)"n", .provider_id = (char *)provider_id};
}

/* What GCP's AIP-160 filters below select for name, by strcmp order. */
static bool matches(const char *filter, const char *name)
{
	char a[128], b[128];

	if (!*filter)
		return true;
	if (sscanf(filter, "(name >= \"%127[^\"]\") AND (name < \"%127[^\"]\")", a, b) == 2)
		return strcmp(name, a) >= 0 && strcmp(name, b) < 0;
	if (sscanf(filter, "name >= \"%127[^\"]\"", a) == 1)
		return strcmp(name, a) >= 0;
	if (sscanf(filter, "name < \"%127[^\"]\"", a) == 1)
		return strcmp(name, a) < 0;
	fail_msg("unexpected filter %s", filter);
	return false;
}

static void test_ranges(void **state)
{
	struct view_node nodes[] = {
	    node("gce://p/z/w-3"),       node("gce://p/z/w-1"),
	    node("gce://p/z/w-5"),       node("gce://p/z/w-2"),
	    node("gce://p/z/w-4"),       node("gce://p/z/w-4"), /* twice */
	    node("gce://p/z/Bad\"Name"), node(""),
	    node("aws:///i-1"),
	};
	static const char *const probes[] = {"",    "a",   "w-0", "w-1", "w-2", "w-3",
					     "w-4", "w-5", "w-6", "x",   "zzzz"};
	char **f = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(view_instance_ranges(nodes, 9, 2, &f, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(f[0], "name < \"w-3\"");
	assert_string_equal(f[1], "(name >= \"w-3\") AND (name < \"w-4\")");
	assert_string_equal(f[2], "name >= \"w-4\"");
	/* Every name in exactly one range: nothing is missed, nothing read twice. */
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		unsigned hits = 0;

		for (size_t k = 0; k < n; k++)
			hits += matches(f[k], probes[i]);
		assert_int_equal(hits, 1);
	}
	view_ranges_free(f, n);

	/* Fewer names than a range: one list, no filter. */
	assert_int_equal(view_instance_ranges(nodes, 2, 900, &f, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(f[0], "");
	view_ranges_free(f, n);
	assert_int_equal(view_instance_ranges(NULL, 0, 900, &f, &n), 0);
	assert_int_equal(n, 1);
	view_ranges_free(f, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ranges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
