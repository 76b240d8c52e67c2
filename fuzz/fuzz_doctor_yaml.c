/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The doctor on arbitrary bytes: YAML loading (anchors, aliases, merge keys, embedded
 * manifests), classification, every rule, and the three output formats. No crash, no leak,
 * and no blow-up: a document that would expand too far is refused, not expanded.
 * The first byte picks options (a VIP, a VPC MTU) so that both code paths are explored.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor/doctor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct yaml_limits limits = {
	    .max_depth = 64, .max_expanded = 100000, .max_docs = 1000};
	struct doctor_options opt = {.limits = &limits};
	struct doctor *d = NULL;
	FILE *sink;

	if (size && (data[0] & 1))
		opt.vip = "10.0.0.9";
	if (size && (data[0] & 2))
		opt.vpc_mtu = 8896;
	if (doctor_new(&d, &opt) < 0)
		return 0;
	doctor_add_buffer(d, "fuzz.yaml", (const char *)data, size);
	doctor_finish(d);
	sink = fopen("/dev/null", "w");
	if (sink) {
		doctor_write(d, DOCTOR_TEXT, sink);
		doctor_write(d, DOCTOR_JSON, sink);
		doctor_write(d, DOCTOR_SARIF, sink);
		fclose(sink);
	}
	doctor_free(d);
	return 0;
}
