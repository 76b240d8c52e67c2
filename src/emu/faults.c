/* SPDX-License-Identifier: Apache-2.0 */
/* Injected faults. (Initial skeleton.) */
#include "emu/emu.h"

int emu_faults_init(struct emu *emu)
{
	(void)emu;
	return 0;
}

void emu_faults_free(struct emu *emu)
{
	(void)emu;
}

int emu_faults_intercept(struct emu_request *req)
{
	(void)req;
	return 0;
}
