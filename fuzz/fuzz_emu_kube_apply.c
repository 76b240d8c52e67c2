/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Server-side apply and managedFields (kube/managed.c, kube/fieldset.c) on a live object
 * and a configuration from the input: "KIND\0LIVE\0CONFIG" (KIND picks the schema: a
 * served kind such as Deployment, or anything else for a custom resource). The live object
 * may carry any managedFields (cleaned as the state loader cleans them). Runs an apply (without and
 * with force) and an update, and checks that the managedFields written decode again as field sets.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emu/kube/kube.h"
#include "fuzz_emu_kube_fake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_managed(const json_t *obj)
{
	json_t *e;
	size_t i;

	json_array_foreach(kj_path(obj, "metadata.managedFields"), i, e)
	{
		json_t *set = kube_fset_from_fields(json_object_get(e, "fieldsV1"));
		if (!set)
			abort(); /* what we wrote must read back */
		json_decref(set);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct emu *emu;
	const char *p = (const char *)data, *end = p + size, *a, *b;
	char kind[64];
	json_t *live, *config;
	struct kube_res *r = NULL;
	struct kube_err e = {0};

	if (!emu)
		emu = fake_emu_new(EMU_CCM_OFF);
	a = memchr(p, '\0', size);
	if (!a || (size_t)(a - p) >= sizeof(kind))
		return 0;
	b = memchr(a + 1, '\0', (size_t)(end - a - 1));
	if (!b)
		return 0;
	memcpy(kind, p, (size_t)(a - p));
	kind[a - p] = '\0';
	for (size_t i = 0; i < kube_of(emu)->nres && !r; i++)
		if (!strcmp(kube_of(emu)->res[i]->def.kind, kind))
			r = kube_of(emu)->res[i];
	if (!r)
		r = kube_res_find(kube_of(emu), "", "v1", "configmaps");
	live = json_loadb(a + 1, (size_t)(b - a - 1), 0, NULL);
	config = json_loadb(b + 1, (size_t)(end - b - 1), 0, NULL);
	if (json_is_object(live) && config) {
		json_t *out;
		/* a stored object's managedFields decode (the loader sees to it) */
		kube_managed_sanitize(live);
		json_object_set_new(config, "apiVersion", json_string(r->api_version));
		json_object_set_new(config, "kind", json_string(r->def.kind));
		for (int force = 0; force < 2; force++) {
			out = kube_managed_apply(r, live, json_incref(config), KW_MAIN, "fuzz",
						 force, &e);
			kube_err_clear(&e);
			if (out) {
				check_managed(out);
				json_decref(out);
			}
		}
		out = kube_managed_apply(r, NULL, json_incref(config), KW_MAIN, "fuzz", false, &e);
		kube_err_clear(&e);
		json_decref(out);
		if (json_is_object(config)) {
			json_t *obj = json_deep_copy(config);
			kube_managed_update(r, live, obj,
					    json_incref(kj_path(live, "metadata.managedFields")),
					    NULL, KW_MAIN, "updater");
			check_managed(obj);
			json_decref(obj);
		}
	}
	json_decref(live);
	json_decref(config);
	return 0;
}
