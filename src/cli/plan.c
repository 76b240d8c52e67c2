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
	int opt, ret = 2;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":" CLUSTER_SHORT_OPTIONS, long_options, NULL)) !=
	       -1) {
		int h = api_opts_handle(&c.api, opt, optarg, argv);

		if (h == 0)
			h = cluster_cmd_option(&c, opt, optarg);
		if (h < 0)
			return 2;
		if (h > 0)
			continue;
		if (opt == OPT_DESTROY)
			flags |= PLAN_DESTROY;
		else if (opt == OPT_KEEP_NETWORK)
			flags |= PLAN_KEEP_NETWORK;
	}
	if (c.api.help) {
		fputs(usage, stdout);
		return 0;
	}
	if (optind < argc) {
		log_error("%s: unexpected argument (see --help)", argv[optind]);
		return 2;
	}
	if (api_opts_output(&c.api, formats) < 0)
		return 2;
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
