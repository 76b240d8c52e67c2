/* SPDX-License-Identifier: Apache-2.0 */
/* /_emu control endpoint. (Initial skeleton.) */
#include <string.h>

#include "emu/emu.h"

int emu_control_handle(struct emu_request *req)
{
	if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/_emu/healthz") == 0)
		return emu_reply(req, 200, "text/plain", "ok\n", 3);
	return emu_reply(req, 404, "text/plain", "not found\n", 10);
}
