/* SPDX-License-Identifier: Apache-2.0 */
/* talos-gcp render: values, validation, determinism, and render -> doctor = clean. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* The defaults plus the two values render has no default for. */
static void values(struct render_values *v)
{
	struct error err = {0};

	render_values_default(v);
	assert_int_equal(render_set(v, "project", "my-project-123", &err), 0);
	assert_int_equal(render_set(v, "vip-alias-image", "ghcr.io/example/vip-alias:1", &err), 0);
}

static void test_defaults_are_clean(void **state)
{
	struct render_values v;
	struct error err = {0};

	(void)state;
	values(&v);
	assert_int_equal(render_validate(&v, NULL, &err), 0);
	assert_int_equal(doctor_findings_of(&v, NULL), 0);
	/* Both forms of the VIP's link: a DummyLinkConfig document, or interfaces[].dummy. */
	assert_int_equal(render_set(&v, "talos-version", "v1.11.5", &err), 0);
	assert_int_equal(render_validate(&v, NULL, &err), 0);
	assert_int_equal(doctor_findings_of(&v, NULL), 0);
}

static void test_vip_link_form_follows_talos_version(void **state)
{
	struct render_values v;
	struct error err = {0};
	char *text = NULL;

	(void)state;
	values(&v);
	assert_int_equal(render_component(&v, RENDER_TALOS_CONTROLPLANE, &text, NULL), 0);
	assert_non_null(strstr(text, "\n---\n"));
	assert_non_null(strstr(text, "\napiVersion: v1alpha1\nkind: DummyLinkConfig\nname: dummy0\n"
				     "addresses:\n  - address: 10.0.0.2/32\n"));
	assert_null(strstr(text, "dummy: true"));
	free(text);
	assert_int_equal(render_set(&v, "talos-version", "1.11", &err), 0);
	assert_int_equal(render_component(&v, RENDER_TALOS_CONTROLPLANE, &text, NULL), 0);
	assert_non_null(strstr(text, "      - interface: dummy0\n        dummy: true\n"
				     "        addresses:\n          - 10.0.0.2/32\n"));
	assert_null(strstr(text, "DummyLinkConfig"));
	assert_non_null(strstr(text, "--talos-version v1.11"));
	free(text);
	/* Workers do not carry the VIP. */
	assert_int_equal(render_component(&v, RENDER_TALOS_WORKER, &text, NULL), 0);
	assert_null(strstr(text, "dummy0"));
	free(text);
}

static void test_other_values_are_clean(void **state)
{
	struct render_values v;
	struct error err = {0};
	struct doctor_options opt = {.vpc_mtu = 8896};

	(void)state;
	values(&v);
	assert_int_equal(render_set(&v, "node-cidr", "10.128.0.0/20", &err), 0);
	assert_int_equal(render_set(&v, "vip", "10.128.0.10", &err), 0);
	assert_int_equal(render_set(&v, "pod-cidr", "10.64.0.0/14", &err), 0);
	assert_int_equal(render_set(&v, "service-cidr", "10.112.0.0/16", &err), 0);
	assert_int_equal(render_set(&v, "mtu", "8896", &err), 0);
	assert_int_equal(render_set(&v, "cluster-name", "prod", &err), 0);
	assert_int_equal(render_validate(&v, NULL, &err), 0);
	/* The doctor learns the VIP from the vip-alias manifest and the Talos endpoint. */
	assert_int_equal(doctor_findings_of(&v, &opt), 0);
}

static void test_deterministic_and_complete(void **state)
{
	struct render_values v;

	(void)state;
	values(&v);
	for (int c = 0; c < RENDER__COUNT; c++) {
		char *a = NULL, *b = NULL;
		size_t la, lb;

		assert_int_equal(render_component(&v, (enum render_component)c, &a, &la), 0);
		assert_int_equal(render_component(&v, (enum render_component)c, &b, &lb), 0);
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la);
		assert_non_null(strstr(a, "(--project my-project-123 --vip-alias-image "
					  "ghcr.io/example/vip-alias:1)"));
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

	assert_int_equal(render_set(&v, "region", "us-central9", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--region us-central9: not a Compute Engine region"));
	assert_int_equal(render_set(&v, "nodes", "0", &err), -EINVAL);
	assert_int_equal(render_set(&v, "talos-version", "2.0", &err), -EINVAL);

	/* Together, as GCP judges them. */
	static const struct {
		const char *key, *value, *want;
	} together[] = {
	    {"vip", "10.1.0.2", "not inside --node-cidr"},
	    {"vip", "10.0.0.0", "GCP reserves it in 10.0.0.0/24 (the network address)"},
	    {"vip", "10.0.0.1", "(the default gateway)"},
	    {"vip", "10.0.0.254", "(the second-to-last address)"},
	    {"vip", "10.0.0.255", "(the broadcast address)"},
	    {"node-cidr", "10.0.0.2/32", "a GCP subnet's primary range is /29 or larger"},
	    {"node-cidr", "10.0.0.0/30", "/29 or larger"},
	    {"nodes", "252",
	     "--node-cidr 10.0.0.0/24: 252 usable addresses, no room for --nodes 252"},
	    {"nodes", "257", "room for 256 nodes' /24 alias ranges, not --nodes 257"},
	    {"service-cidr", "172.20.128.0/20", "overlaps"},
	};
	for (size_t i = 0; i < sizeof(together) / sizeof(together[0]); i++) {
		values(&v);
		if (!strcmp(together[i].key, "nodes") && !strcmp(together[i].value, "257"))
			assert_int_equal(render_set(&v, "node-cidr", "10.0.0.0/16", &err), 0);
		assert_int_equal(render_set(&v, together[i].key, together[i].value, &err), 0);
		assert_int_equal(render_validate(&v, NULL, &err), -EINVAL);
		if (!strstr(err.msg, together[i].want))
			fail_msg("%s %s: \"%s\" lacks \"%s\"", together[i].key, together[i].value,
				 err.msg, together[i].want);
	}
	values(&v);
	assert_int_equal(render_set(&v, "nodes", "251", &err), 0);
	assert_int_equal(render_validate(&v, NULL, &err), 0);

	/* No default project; no default image without a registry. */
	render_values_default(&v);
	assert_int_equal(render_validate(&v, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--project: required"));
	assert_int_equal(render_set(&v, "project", "my-project-123", &err), 0);
	assert_int_equal(render_validate(&v, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--vip-alias-image: required: the default vip-alias:"));
	{
		bool want[RENDER__COUNT] = {[RENDER_CILIUM_VALUES] = true};

		assert_int_equal(render_validate(&v, want, &err), 0); /* the image is not used */
	}
	/* Named by its flag, a registry-less image is the user's choice. */
	assert_int_equal(render_set(&v, "vip-alias-image", "vip-alias:dev", &err), 0);
	assert_int_equal(render_validate(&v, NULL, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_are_clean),
	    cmocka_unit_test(test_vip_link_form_follows_talos_version),
	    cmocka_unit_test(test_other_values_are_clean),
	    cmocka_unit_test(test_deterministic_and_complete),
	    cmocka_unit_test(test_bad_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
