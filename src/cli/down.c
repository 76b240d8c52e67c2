/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp down: deletes what the cluster owns, referrers before what they refer to, in
 * parallel where possible. Resources without the cluster's marker are never touched.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cluster.h"
#include "cli/subcommands.h"
#include "common/log.h"

static const char usage[] =
    "Usage: talos-gcp down -f FILE [options]\n"
    "\n"
    "Deletes every resource that carries the cluster's talos-gcp marker (the cluster named in\n"
    "FILE): forwarding rules, proxies, backend services, health checks, instance groups,\n"
    "instances, addresses, firewalls, the router and its NAT, the subnetwork and the network.\n"
    "Existing instances the spec refers to and anything else not talos-gcp's stay. Preview\n"
    "it with `talos-gcp plan --destroy -f FILE`.\n"
    "\n"
    "Options:\n" CLUSTER_OPTIONS_HELP
    "  --keep-network            keep the network and its subnetwork\n" API_OPTIONS_HELP
    "                            down: text\n"
    "\n"
    "Exit status: 0 nothing of the cluster is left, 2 error.\n";

static int down_option(void *arg, int opt)
{
	if (opt != OPT_KEEP_NETWORK)
		return 0;
	*(unsigned *)arg |= PLAN_KEEP_NETWORK;
	return 1;
}

int down_main(int argc, char **argv)
{
	static const struct option long_options[] = {
	    CLUSTER_LONG_OPTIONS,
	    {"keep-network", no_argument, NULL, OPT_KEEP_NETWORK},
	    {NULL, 0, NULL, 0},
	};
	static const char *const formats[] = {"text", NULL};
	struct cluster_cmd c = {0};
	struct error err = {0};
	unsigned flags = PLAN_DESTROY;
	int ret;

	ret = cluster_cmd_args(&c, argc, argv, long_options, formats, usage, down_option, &flags);
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
