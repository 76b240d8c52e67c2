/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp verify: is every Node's spec.podCIDR its instance's alias IP range?
 * One Node list and one aggregated instance list, whatever the cluster's size.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/alignment.h"
#include "cli/options.h"
#include "cli/report.h"
#include "cli/session.h"
#include "cli/subcommands.h"
#include "cli/view_load.h"
#include "common/log.h"

static const char usage[] =
    "Usage: talos-gcp verify [options]\n"
    "\n"
    "Checks that every Node's spec.podCIDR equals nic0's first alias IP range of its\n"
    "instance (found by spec.providerID gce://PROJECT/ZONE/NAME), the single source of\n"
    "truth the CCM's CloudAllocator keeps. Per node: ok, mismatch, no-alias, no-podcidr,\n"
    "no-instance or duplicate; per instance without a Node that holds a range of the pods\n"
    "range on the cluster's network: orphan (it blocks repairs; repair --free-orphans).\n"
    "\n"
    "Options:\n"
    "  --node NAME               report only this Node\n" API_OPTIONS_HELP
    "                            verify: table (default) or json\n"
    "\n"
    "Exit status: 0 aligned, 1 not aligned (orphans included), 2 could not check.\n";

enum { OPT_NODE = OPT_API_LAST };

int verify_main(int argc, char **argv)
{
	static const struct option long_options[] = {
	    API_LONG_OPTIONS,
	    {"node", required_argument, NULL, OPT_NODE},
	    {NULL, 0, NULL, 0},
	};
	static const char *const formats[] = {"table", "json", NULL};
	struct api_opts o = {0};
	struct session s = {0};
	struct cluster_view view = {0};
	struct alignment a = {0};
	struct error err = {0};
	const char *node = NULL;
	int c, ret = 2;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":" API_SHORT_OPTIONS, long_options, NULL)) != -1) {
		int h = api_opts_handle(&o, c, optarg, argv);

		if (h < 0)
			return 2;
		if (h > 0)
			continue;
		if (c == OPT_NODE)
			node = optarg;
	}
	if (o.help) {
		fputs(usage, stdout);
		return 0;
	}
	if (optind < argc) {
		log_error("%s: unexpected argument (see --help)", argv[optind]);
		return 2;
	}
	if (api_opts_output(&o, formats) < 0)
		return 2;
	if (session_open(&s, &o, SESSION_GCP | SESSION_KUBE, &err) < 0) {
		log_error("%s", err.msg);
		return 2;
	}
	if (cluster_view_load(&s, 0, &view, &err) < 0) {
		log_error("%s", err.msg);
		goto cleanup;
	}
	if (!report_has_node(&view, node)) {
		log_error("--node %s: no such Node", node);
		goto cleanup;
	}
	if (alignment_compute(&view, &a) < 0) {
		log_error("out of memory");
		goto cleanup;
	}
	ret = report_alignment(stdout, &view, &a, o.output, node) ? 0 : 1;
cleanup:
	session_log_stats(&s);
	alignment_free(&a);
	cluster_view_free(&view);
	session_close(&s);
	return ret;
}
