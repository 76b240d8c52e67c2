/* SPDX-License-Identifier: Apache-2.0 */
/* vip-alias: keeps the control-plane VIP local on this node (see docs and --help). */
#include <stdlib.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "common/log.h"

static const char *env(const char *name)
{
	return getenv(name);
}

int main(int argc, char **argv)
{
	struct vip_config cfg;
	struct error err = {0};
	char quoted[ERROR_MSG_MAX + 64];
	int r;

	log_init("vip-alias", LOG_FORMAT_LOGFMT, LOG_LEVEL_INFO);
	r = vip_config_parse(&cfg, argc, argv, env, &err);
	if (r == VIP_CONFIG_EXIT)
		return 0;
	if (r < 0) {
		log_error("event=bad_input error=%s",
			  vip_logfmt_value(err.msg, quoted, sizeof(quoted)));
		return VIP_EXIT_USAGE;
	}
	if (cfg.verbose)
		log_set_level(LOG_LEVEL_DEBUG);
	return vip_agent_run(&cfg);
}
