/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp up: makes the cluster's GCP networking what its spec says, as a parallel
 * dependency graph of operations; a second run with nothing to change makes no mutating call.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cluster.h"
#include "cli/subcommands.h"
#include "common/log.h"

static const char usage[] =
    "Usage: talos-gcp up -f FILE [options]\n"
    "\n"
    "Creates, updates and replaces the cluster's resources (network, subnetwork, Cloud NAT,\n"
    "firewalls, instances, the control-plane internal load balancer at the VIP, ingress) so\n"
    "that they match FILE, then reads them again to check. Independent operations run in\n"
    "parallel. Only resources carrying the cluster's talos-gcp marker are ever changed; a\n"
    "resource with one of the cluster's names that is not talos-gcp's stops the run before\n"
    "anything changes. Killed at any point, run it again: it goes on from where things are.\n"
    "\n"
    "Options:\n" CLUSTER_OPTIONS_HELP API_OPTIONS_HELP "                            up: text\n"
    "\n"
    "Exit status: 0 the cluster matches its spec, 2 error.\n";

int up_main(int argc, char **argv)
{
	static const struct option long_options[] = {
	    CLUSTER_LONG_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	static const char *const formats[] = {"text", NULL};
	struct cluster_cmd c = {0};
	struct error err = {0};
	int ret;

	ret = cluster_cmd_args(&c, argc, argv, long_options, formats, usage, NULL, NULL);
	if (ret)
		return ret > 0 ? 0 : 2;
	ret = 2;
	if (cluster_cmd_open(&c, 0, &err) < 0 || cluster_cmd_plan(&c, 0, &err) < 0) {
		log_error("%s", err.msg);
		goto cleanup;
	}
	plan_print_text(&c.plan, stdout, false);
	ret = cluster_cmd_apply(&c, 0, "up");
cleanup:
	cluster_cmd_close(&c);
	return ret;
}
