/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp verify: is every Node's spec.podCIDR its instance's alias IP range?
 * One Node list and one aggregated instance list, whatever the cluster's size.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/alignment.h"
#include "cli/options.h"
#include "cli/report.h"
#include "cli/session.h"
#include "cli/subcommands.h"
#include "cli/view_load.h"
#include "common/log.h"

enum { OPT_NODE = OPT_API_LAST };

static const struct cli_option verify_options[] = {
    {.name = "node", .code = OPT_NODE, .arg = "NAME", .help = "report only this Node"},
    {0},
};

const struct cli_command verify_command = {
    .name = "verify",
    .summary = "check that every Node's podCIDR equals its instance's alias range",
    .description =
	"Checks that every Node's spec.podCIDR equals nic0's first alias IP range of its\n"
	"instance (found by spec.providerID gce://PROJECT/ZONE/NAME), the single source of\n"
	"truth the CCM's CloudAllocator keeps. Per node: ok, mismatch, no-alias, no-podcidr,\n"
	"no-instance or duplicate; per instance without a Node that holds a range of the pods\n"
	"range on the cluster's network: orphan (it blocks repairs; repair --free-orphans).\n",
    .options = verify_options,
    .formats = CLI_FORMATS("table", "json"),
    .flags = CLI_API,
    .exit_status = "0 aligned, 1 not aligned (orphans included), 2 could not check.",
    .main = verify_main,
};

static int verify_option(void *arg, int code, const char *value)
{
	if (code == OPT_NODE)
		*(const char **)arg = value;
	return 0;
}

int verify_main(int argc, char **argv)
{
	struct api_opts o = {0};
	struct session s = {0};
	struct cluster_view view = {0};
	struct alignment a = {0};
	struct error err = {0};
	const char *node = NULL;
	int ret;

	ret = cli_parse(&verify_command, argc, argv, &o, verify_option, &node);
	if (ret)
		return ret > 0 ? 0 : 2;
	ret = 2;
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
