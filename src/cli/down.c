/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp down: deletes what the cluster owns, referrers before what they refer to, in
 * parallel where possible. Resources without the cluster's marker are never touched.
 */
#include <stdio.h>

#include "cli/cluster.h"
#include "cli/subcommands.h"
#include "common/log.h"

static const struct cli_option down_options[] = {
    CLUSTER_CLI_OPTIONS,
    {.name = "keep-network",
     .code = OPT_KEEP_NETWORK,
     .help = "keep the network and its subnetwork"},
    {0},
};

const struct cli_command down_command = {
    .name = "down",
    .summary = "delete what the cluster owns",
    .synopsis = "-f FILE [--keep-network] [options]",
    .description =
	"Deletes every resource that carries the cluster's talos-gcp marker (the cluster named in\n"
	"FILE): forwarding rules, proxies, backend services, health checks, instance groups,\n"
	"instances, addresses, firewalls, the router and its NAT, the subnetwork and the network.\n"
	"Existing instances the spec refers to and anything else not talos-gcp's stay. Preview\n"
	"it with `talos-gcp plan --destroy -f FILE`.\n",
    .options = down_options,
    .formats = CLI_FORMATS("text"),
    .flags = CLI_API,
    .exit_status = "0 nothing of the cluster is left, 2 error.",
    .main = down_main,
};

static int down_option(void *arg, int opt, const char *value)
{
	(void)value;
	if (opt != OPT_KEEP_NETWORK)
		return 0;
	*(unsigned *)arg |= PLAN_KEEP_NETWORK;
	return 1;
}

int down_main(int argc, char **argv)
{
	struct cluster_cmd c = {0};
	struct error err = {0};
	unsigned flags = PLAN_DESTROY;
	int ret;

	ret = cluster_cmd_args(&c, &down_command, argc, argv, down_option, &flags);
	if (ret)
		return ret > 0 ? 0 : 2;
	ret = 2;
	if (cluster_cmd_open(&c, SPEC_NO_FILES, &err) < 0 ||
	    cluster_cmd_plan(&c, flags, &err) < 0) {
		log_error("%s", err.msg);
		goto cleanup;
	}
	plan_print_text(&c.plan, stdout, true);
	ret = cluster_cmd_apply(&c, flags, "down");
cleanup:
	cluster_cmd_close(&c);
	return ret;
}
