/* SPDX-License-Identifier: Apache-2.0 */
/* talos-gcp: a table of subcommands, as wireguard-tools' wg.c. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/subcommands.h"
#include "common/log.h"

static const struct {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *summary;
} subcommands[] = {
    {"plan", plan_main, "what `up` would change in the cluster's GCP networking (its spec, -f)"},
    {"up", up_main, "create or update the cluster's GCP networking from its spec"},
    {"down", down_main, "delete what the cluster owns"},
    {"verify", verify_main, "check that every Node's podCIDR equals its instance's alias range"},
    {"repair", repair_main, "plan (and with --apply, make) the changes that restore alignment"},
    {"doctor", doctor_main, "find configurations that make traffic fail silently on GCP"},
    {"render", render_main, "write the cluster's Talos patches and manifests"},
};

/*
 * A report that did not reach its reader is a failure, whatever the subcommand decided
 * (talos-gcp verify > /dev/full): exit 2. As coreutils' close_stdout(): a stdout that was
 * never open is an error only if something was written to it.
 */
static int close_stdout(void)
{
	bool failed = fflush(stdout) != 0 || ferror(stdout);
	int e = errno;

	if (!failed && fclose(stdout) != 0 && errno != EBADF) {
		failed = true;
		e = errno;
	}
	if (!failed)
		return 0;
	log_error("writing to stdout: %s", strerror(e ? e : EIO));
	return -1;
}

static void show_usage(FILE *f)
{
	fprintf(f, "Usage: talos-gcp <subcommand> [options]\n\n"
		   "The networking layer of Talos Kubernetes clusters on Google Cloud.\n\n"
		   "Subcommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(f, "\n'talos-gcp <subcommand> --help' describes each one.\n");
}

static int run(int argc, char **argv)
{
	if (argc < 2) {
		show_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		show_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("talos-gcp %s\n", TALOS_GCP_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		if (!strcmp(argv[1], subcommands[i].name)) {
			log_init(NULL, LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
			return subcommands[i].main(argc - 1, argv + 1);
		}
	}
	log_error("'%s' is not a subcommand (see talos-gcp --help)", argv[1]);
	return 2;
}

int main(int argc, char **argv)
{
	int ret;

	log_init("talos-gcp", LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
	ret = run(argc, argv);
	return close_stdout() < 0 ? 2 : ret;
}
