/* SPDX-License-Identifier: Apache-2.0 */
/* OAuth2 token endpoint and metadata server. (Initial skeleton.) */
#include "emu/emu.h"

int emu_auth_init(struct emu *emu)
{
	(void)emu;
	return 0;
}

void emu_auth_free(struct emu *emu)
{
	(void)emu;
}

int emu_auth_started(struct emu *emu)
{
	(void)emu;
	return 0;
}

int emu_auth_handle(struct emu_request *req)
{
	(void)req;
	return 0;
}

int emu_auth_check(struct emu_request *req)
{
	(void)req;
	return 0;
}
