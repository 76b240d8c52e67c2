/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster spec parser and what is built on it: any input parses or fails with one line;
 * a spec that parses gives desired resources with valid names, and a plan from an empty
 * project whose operations form a graph without cycles.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "provision/model.h"
#include "provision/plan.h"
#include "provision/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cluster_spec *s = NULL;
	struct resource_set desired = {0};
	struct live live = {0};
	struct plan plan;
	struct error err = {0};

	if (spec_parse((const char *)data, size, "fuzz.yaml", NULL, SPEC_NO_FILES, &s, &err) < 0) {
		if (s || !err.msg[0] || strchr(err.msg, '\n'))
			abort();
		return 0;
	}
	if (!s || !s->name || !s->region || s->nzones == 0 || !s->image.name == !s->image.family)
		abort();
	/* The zones of existing instances come from the live project; here, the first zone. */
	for (int w = 0; w < 2; w++) {
		struct spec_pool *p = w ? &s->workers : &s->control_plane;

		for (size_t i = 0; i < p->nexisting; i++)
			if (!p->existing[i].zone && !(p->existing[i].zone = strdup(s->zones[0])))
				abort();
	}
	if (model_desired(s, "fuzz-project", &desired, &err) < 0)
		abort();
	/* What the spec says exists (instances, an image) exists, and is not the cluster's. */
	for (size_t i = 0; i < desired.n; i++) {
		const struct resource *d = desired.items[i];
		struct resource *r;

		if (!d->existing)
			continue;
		r = resource_new(d->kind, d->scope, d->name);
		if (!r || !(r->body = json_pack("{s:s}", "name", d->name)) ||
		    rset_add(&live.others, r) < 0)
			abort();
	}
	for (size_t i = 0; i < desired.n; i++) {
		const char *n = desired.items[i]->name;

		if (!*n || strlen(n) > 63 || n[0] < 'a' || n[0] > 'z')
			abort();
		if (rset_find(&desired, desired.items[i]->key) != desired.items[i])
			abort(); /* two resources with one key */
	}
	if (plan_make(s, "fuzz-project", &desired, &live, 0, &plan, &err) < 0)
		abort();
	if (plan.nops == 0 || plan.critical_path < 1 || (size_t)plan.critical_path > plan.nops)
		abort();
	plan_free(&plan);
	live_free(&live);
	rset_free(&desired);
	spec_free(s);
	return 0;
}
