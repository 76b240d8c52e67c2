/* SPDX-License-Identifier: Apache-2.0 */
/* Compute Engine v1. (Initial skeleton: every path is unknown until the collections land.) */
#include "emu/emu.h"

int emu_compute_init(struct emu *emu)
{
	(void)emu;
	return 0;
}

void emu_compute_free(struct emu *emu)
{
	(void)emu;
}

int emu_compute_handle(struct emu_request *req)
{
	json_t *body = json_pack("{s:{s:i, s:s}}", "error", "code", 404, "message", "not found");
	return emu_reply_json(req, 404, body);
}

json_t *emu_compute_dump(struct emu *emu)
{
	(void)emu;
	return json_object();
}

int emu_compute_load(struct emu *emu, json_t *state)
{
	(void)emu;
	(void)state;
	return 0;
}

const json_t *emu_compute_instance(struct emu *emu, const char *zone, const char *name)
{
	(void)emu;
	(void)zone;
	(void)name;
	return NULL;
}
