/* SPDX-License-Identifier: Apache-2.0 */
/* talos-gcp render: values, validation, determinism, and render -> doctor = clean. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "doctor/doctor.h"
#include "render/render.h"

static size_t doctor_findings_of(const struct render_values *v, struct doctor_options *opt)
{
	struct doctor *d = NULL;
	size_t n;

	assert_int_equal(doctor_new(&d, opt), 0);
	for (int c = 0; c < RENDER__COUNT; c++) {
		char *text = NULL;
		size_t len = 0;

		assert_int_equal(render_component(v, (enum render_component)c, &text, &len), 0);
		assert_int_equal(doctor_add_buffer(d, render_components[c].path, text, len), 0);
		free(text);
	}
	assert_int_equal(doctor_finish(d), 0);
	doctor_findings(d, &n);
	if (n) {
		size_t k;
		const struct finding *f = doctor_findings(d, &k);

		for (size_t i = 0; i < k; i++)
			fprintf(stderr, "# %s:%u: %s [%s]\n", doctor_source(d, f[i].source)->name,
				f[i].line, f[i].message, rules[f[i].rule].id);
	}
	n += doctor_had_errors(d);
	doctor_free(d);
	return n;
}

static void test_defaults_are_clean(void **state)
{
	struct render_values v;
	struct error err = {0};

	(void)state;
	render_values_default(&v);
	assert_int_equal(render_validate(&v, &err), 0);
	assert_int_equal(doctor_findings_of(&v, NULL), 0);
}

static void test_other_values_are_clean(void **state)
{
	struct render_values v;
	struct error err = {0};
	struct doctor_options opt = {.vpc_mtu = 8896};

	(void)state;
	render_values_default(&v);
	assert_int_equal(render_set(&v, "node-cidr", "10.128.0.0/20", &err), 0);
	assert_int_equal(render_set(&v, "vip", "10.128.0.10", &err), 0);
	assert_int_equal(render_set(&v, "pod-cidr", "10.64.0.0/14", &err), 0);
	assert_int_equal(render_set(&v, "service-cidr", "10.112.0.0/16", &err), 0);
	assert_int_equal(render_set(&v, "mtu", "8896", &err), 0);
	assert_int_equal(render_set(&v, "cluster-name", "prod", &err), 0);
	assert_int_equal(render_validate(&v, &err), 0);
	/* The doctor learns the VIP from the vip-alias manifest and the Talos endpoint. */
	assert_int_equal(doctor_findings_of(&v, &opt), 0);
}

static void test_deterministic_and_complete(void **state)
{
	struct render_values v;
	struct error err = {0};

	(void)state;
	render_values_default(&v);
	assert_int_equal(render_set(&v, "project", "my-project-123", &err), 0);
	for (int c = 0; c < RENDER__COUNT; c++) {
		char *a = NULL, *b = NULL;
		size_t la, lb;

		assert_int_equal(render_component(&v, (enum render_component)c, &a, &la), 0);
		assert_int_equal(render_component(&v, (enum render_component)c, &b, &lb), 0);
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la);
		assert_non_null(strstr(a, "(--project my-project-123)"));
		/* No placeholder left behind. */
		for (const char *p = strchr(a, '@'); p; p = strchr(p + 1, '@')) {
			const char *q = p + 1;

			while ((*q >= 'A' && *q <= 'Z') || *q == '_')
				q++;
			assert_false(q > p + 1 && *q == '@');
		}
		free(a);
		free(b);
	}
}

static void test_bad_values(void **state)
{
	struct render_values v;
	struct error err = {0};

	(void)state;
	render_values_default(&v);
	assert_int_equal(render_set(&v, "vip", "10.0.0.300", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--vip 10.0.0.300"));
	assert_int_equal(render_set(&v, "pod-cidr", "172.20.1.0/16", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "host bits"));
	assert_int_equal(render_set(&v, "cluster-name", "Bad_Name", &err), -EINVAL);
	assert_int_equal(render_set(&v, "project", "abc", &err), -EINVAL);
	assert_int_equal(render_set(&v, "mtu", "9000", &err), -EINVAL);
	assert_int_equal(render_set(&v, "ccm-image", "x\ny", &err), -EINVAL);
	assert_int_equal(render_set(&v, "no-such-key", "x", &err), -ENOENT);

	assert_int_equal(render_set(&v, "vip", "10.1.0.2", &err), 0);
	assert_int_equal(render_validate(&v, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not inside --node-cidr"));
	render_values_default(&v);
	assert_int_equal(render_set(&v, "service-cidr", "172.20.128.0/20", &err), 0);
	assert_int_equal(render_validate(&v, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "overlaps"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_are_clean),
	    cmocka_unit_test(test_other_values_are_clean),
	    cmocka_unit_test(test_deterministic_and_complete),
	    cmocka_unit_test(test_bad_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
