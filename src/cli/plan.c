/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp plan: what `up` (or, with --destroy, `down`) would change, read from the live
 * project and printed as terraform plan does. Changes nothing.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cluster.h"
#include "cli/subcommands.h"
#include "common/log.h"

static const char usage[] =
    "Usage: talos-gcp plan -f FILE [options]\n"
    "\n"
    "Reads the cluster's resources in the project and prints what `talos-gcp up -f FILE`\n"
    "would create (+), update in place (~, field by field), replace (-/+) or delete (-).\n"
    "Changes nothing.\n"
    "\n"
    "Options:\n" CLUSTER_OPTIONS_HELP
    "  --destroy                 the plan of `down`: everything the cluster owns, deleted\n"
    "  --keep-network            with --destroy: keep the network and its subnetwork\n" API_OPTIONS_HELP
    "                            plan: text (default) or json\n"
    "\n"
    "Exit status: 0 no changes, 1 changes pending, 2 error (bad spec, a resource with one\n"
    "of the cluster's names that is not talos-gcp's, API errors).\n";

static int plan_option(void *arg, int opt)
{
	unsigned *flags = arg;

	if (opt == OPT_DESTROY)
		*flags |= PLAN_DESTROY;
	else if (opt == OPT_KEEP_NETWORK)
		*flags |= PLAN_KEEP_NETWORK;
	else
		return 0;
	return 1;
}

int plan_main(int argc, char **argv)
{
	static const struct option long_options[] = {
	    CLUSTER_LONG_OPTIONS,
	    {"destroy", no_argument, NULL, OPT_DESTROY},
	    {"keep-network", no_argument, NULL, OPT_KEEP_NETWORK},
	    {NULL, 0, NULL, 0},
	};
	static const char *const formats[] = {"text", "json", NULL};
	struct cluster_cmd c = {0};
	struct error err = {0};
	unsigned flags = 0;
	int ret;

	ret = cluster_cmd_args(&c, argc, argv, long_options, formats, usage, plan_option, &flags);
	if (ret)
		return ret > 0 ? 0 : 2;
	ret = 2;
	if ((flags & PLAN_KEEP_NETWORK) && !(flags & PLAN_DESTROY)) {
		log_error("--keep-network: only with --destroy");
		return 2;
	}
	if (cluster_cmd_open(&c, flags & PLAN_DESTROY ? SPEC_NO_FILES : 0, &err) < 0 ||
	    cluster_cmd_plan(&c, flags, &err) < 0) {
		log_error("%s", err.msg);
		goto cleanup;
	}
	if (strcmp(c.api.output, "json") == 0)
		plan_print_json(&c.plan, stdout);
	else
		plan_print_text(&c.plan, stdout, flags & PLAN_DESTROY);
	ret = c.plan.nops ? 1 : 0;
cleanup:
	cluster_cmd_close(&c);
	return ret;
}
