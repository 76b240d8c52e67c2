/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The doctor's engine: the rule table, inputs it must not choke on, embedded manifests,
 * objects read from an API, and the three output formats. (Every rule's failing and passing
 * fixture runs through the CLI in tests/integration/test_doctor.py.)
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "doctor/doctor.h"

static struct doctor *run(const char *name, const char *text, const struct doctor_options *opt)
{
	struct doctor *d = NULL;

	assert_int_equal(doctor_new(&d, opt), 0);
	assert_int_equal(doctor_add_buffer(d, name, text, strlen(text)), 0);
	assert_int_equal(doctor_finish(d), 0);
	return d;
}

static const struct finding *find(const struct doctor *d, const char *rule)
{
	size_t n;
	const struct finding *f = doctor_findings(d, &n);

	for (size_t i = 0; i < n; i++)
		if (!strcmp(rules[f[i].rule].id, rule))
			return &f[i];
	return NULL;
}

static void test_rule_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < R__COUNT; i++) {
		const struct rule *r = &rules[i];

		assert_non_null(r->id);
		for (const char *p = r->id; *p; p++)
			assert_true(islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
				    *p == '-');
		assert_true(!strncmp(r->section, "note §", 7) ||
			    !strncmp(r->section, "design §", 9));
		assert_non_null(strstr(r->rationale, "Fix:"));
		assert_true(r->scope & (SCOPE_FILE | SCOPE_LIVE));
		assert_ptr_equal(rule_find(r->id), r);
		for (size_t j = i + 1; j < R__COUNT; j++)
			assert_string_not_equal(r->id, rules[j].id);
	}
	assert_null(rule_find("no-such-rule"));
}

static void test_bad_inputs(void **state)
{
	static const char binary[] = "apiVersion: v1\0\x01\x02";
	struct doctor *d = NULL;
	const struct doctor_problem *p;
	size_t n;

	(void)state;
	assert_int_equal(doctor_new(&d, NULL), 0);
	assert_int_equal(doctor_add_buffer(d, "bin.yaml", binary, sizeof(binary)), 0);
	assert_int_equal(doctor_add_buffer(d, "tmpl.yaml", "name: {{ .Values.name }}\n", 25), 0);
	assert_int_equal(doctor_add_buffer(d, "bad.yaml", "a: 1\nb: [\n", 10), 0);
	assert_int_equal(doctor_add_buffer(d, "unknown.yaml", "foo: bar\n", 9), 0);
	assert_int_equal(
	    doctor_add_buffer(d, "patch.yaml", "- op: add\n  path: /machine/x\n  value: 1\n", 39),
	    0);
	assert_int_equal(doctor_add_buffer(d, "utf8.yaml", "a: \xff\xfe\n", 6), 0);
	assert_int_equal(doctor_finish(d), 0);
	p = doctor_problems(d, &n);
	assert_int_equal(n, 6);
	/* binary and template: skipped (not an error); invalid YAML: an error with a place. */
	assert_false(p[0].error);
	assert_non_null(strstr(p[0].message, "binary"));
	assert_false(p[1].error);
	assert_non_null(strstr(p[1].message, "template"));
	assert_true(p[2].error);
	assert_int_equal(p[2].line, 3);
	assert_non_null(strstr(p[2].message, "invalid YAML"));
	assert_false(p[3].error);
	assert_true(p[3].quiet);
	assert_false(p[4].error);
	assert_non_null(strstr(p[4].message, "JSON patch"));
	assert_true(p[5].error);
	assert_true(doctor_had_errors(d));
	assert_int_equal(doctor_count(d, SEV_NOTE), 0);
	doctor_free(d);
}

static void test_inline_manifest_positions(void **state)
{
	static const char text[] = "cluster:\n"
				   "  inlineManifests:\n"
				   "    - name: pol\n"
				   "      contents: |\n"
				   "        apiVersion: cilium.io/v2alpha1\n"
				   "        kind: CiliumL2AnnouncementPolicy\n"
				   "        metadata:\n"
				   "          name: x\n";
	struct doctor *d = run("talos.yaml", text, NULL);
	const struct finding *f = find(d, "l2-cilium-policy");

	(void)state;
	assert_non_null(f);
	assert_int_equal(f->line, 6);
	assert_int_equal(f->col, 15);
	doctor_free(d);
}

static void test_live_object(void **state)
{
	json_t *ccm = json_loads(
	    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"ccm\","
	    "\"namespace\":\"kube-system\"},\"spec\":{\"template\":{\"spec\":{\"hostNetwork\":true,"
	    "\"tolerations\":[{\"operator\":\"Exists\"}],\"containers\":[{\"name\":\"ccm\","
	    "\"image\":\"registry.k8s.io/cloud-provider-gcp/cloud-controller-manager:v32.2.5\","
	    "\"args\":[\"--cloud-provider=gce\",\"--allocate-node-cidrs=true\","
	    "\"--configure-cloud-routes=false\"]}]}}}}",
	    0, NULL);
	struct doctor *d = NULL;
	const struct finding *f;

	(void)state;
	assert_non_null(ccm);
	assert_int_equal(doctor_new(&d, NULL), 0);
	assert_int_equal(doctor_add_json(d, "kube:kube-system/Deployment/ccm", ccm), 0);
	assert_int_equal(doctor_finish(d), 0);
	f = find(d, "ccm-cidr-allocator");
	assert_non_null(f);
	assert_int_equal(f->line, 0);
	assert_true(doctor_source(d, f->source)->logical);
	assert_null(find(d, "ccm-cloud-routes"));
	assert_null(find(d, "ccm-scheduling"));
	json_decref(ccm);
	doctor_free(d);
}

static void test_disable_and_vip(void **state)
{
	static const char text[] = "cluster:\n  apiServer:\n    certSANs: [10.0.0.9]\n";
	struct doctor_options opt = {0};
	struct doctor *d;

	(void)state;
	d = run("a.yaml", text, &opt);
	assert_non_null(find(d, "vip-certsans"));
	doctor_free(d);
	opt.vip = "10.0.0.9";
	d = run("a.yaml", text, &opt);
	assert_null(find(d, "vip-certsans"));
	doctor_free(d);
	opt.vip = NULL;
	opt.disabled[R_VIP_CERTSANS] = true;
	d = run("a.yaml", text, &opt);
	assert_null(find(d, "vip-certsans"));
	doctor_free(d);
}

static char *write_to_string(const struct doctor *d, enum doctor_format fmt)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(doctor_write(d, fmt, f), 0);
	fclose(f);
	return buf;
}

static void test_formats(void **state)
{
	static const char text[] = "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\n"
				   "metadata: {name: x}\n---\nnot: [valid\n";
	struct doctor *d = run("dir/my file.yaml", text, NULL);
	char *out;
	json_t *j, *run0, *res;

	(void)state;
	out = write_to_string(d, DOCTOR_TEXT);
	assert_non_null(strstr(out, "dir/my file.yaml:2:7: error: MetalLB L2Advertisement x"));
	assert_non_null(strstr(out, "[l2-metallb]\n"));
	assert_non_null(strstr(out, "error: invalid YAML"));
	free(out);

	out = write_to_string(d, DOCTOR_JSON);
	j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "findings")), 1);
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(j, "findings"), 0), "rule")),
			    "l2-metallb");
	assert_true(
	    json_is_true(json_object_get(json_object_get(j, "summary"), "could_not_check")));
	json_decref(j);
	free(out);

	out = write_to_string(d, DOCTOR_SARIF);
	j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "version")), "2.1.0");
	run0 = json_array_get(json_object_get(j, "runs"), 0);
	assert_int_equal(json_array_size(json_object_get(
			     json_object_get(json_object_get(run0, "tool"), "driver"), "rules")),
			 R__COUNT);
	res = json_array_get(json_object_get(run0, "results"), 0);
	assert_int_equal(json_integer_value(json_object_get(res, "ruleIndex")), R_L2_METALLB);
	assert_string_equal(json_string_value(json_object_get(res, "level")), "error");
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(
		    json_object_get(json_array_get(json_object_get(res, "locations"), 0),
				    "physicalLocation"),
		    "artifactLocation"),
		"uri")),
	    "dir/my%20file.yaml");
	assert_true(json_is_false(json_object_get(
	    json_array_get(json_object_get(run0, "invocations"), 0), "executionSuccessful")));
	json_decref(j);
	free(out);
	doctor_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rule_table),
	    cmocka_unit_test(test_bad_inputs),
	    cmocka_unit_test(test_inline_manifest_positions),
	    cmocka_unit_test(test_live_object),
	    cmocka_unit_test(test_disable_and_vip),
	    cmocka_unit_test(test_formats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
