/* SPDX-License-Identifier: Apache-2.0 */
/* talos-gcp: a table of subcommands, as wireguard-tools' wg.c. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/complete.h"
#include "cli/options.h"
#include "common/log.h"

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
	fprintf(f, "Usage: talos-gcp SUBCOMMAND [options]\n"
		   "       talos-gcp help [SUBCOMMAND]\n"
		   "       talos-gcp --version\n\n"
		   "The networking layer of Talos Kubernetes clusters on Google Cloud.\n\n"
		   "Subcommands:\n");
	for (size_t i = 0; i < cli_toplevel.n_commands; i++)
		fprintf(f, "  %-10s %s\n", cli_toplevel.commands[i]->name,
			cli_toplevel.commands[i]->summary);
	for (size_t i = 0; cli_toplevel.extra[i][0]; i++)
		fprintf(f, "  %-10s %s\n", cli_toplevel.extra[i][0], cli_toplevel.extra[i][1]);
	fprintf(f, "\nOptions:\n");
	cli_usage_options(f, cli_toplevel.options);
	fprintf(f, "\n'talos-gcp help SUBCOMMAND' (or 'talos-gcp SUBCOMMAND --help') describes "
		   "each one.\nSee talos-gcp(1).\n");
}

static const struct cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < cli_toplevel.n_commands; i++)
		if (!strcmp(name, cli_toplevel.commands[i]->name))
			return cli_toplevel.commands[i];
	return NULL;
}

/* talos-gcp help [SUBCOMMAND] */
static int help(int argc, char **argv)
{
	const struct cli_command *cmd;

	if (argc == 1) {
		show_usage(stdout);
		return 0;
	}
	if (argc > 2) {
		log_error("%s: unexpected argument (see talos-gcp help)", argv[2]);
		return 2;
	}
	cmd = find_command(argv[1]);
	if (!cmd) {
		log_error("help: '%s' is not a subcommand (see talos-gcp help)", argv[1]);
		return 2;
	}
	cli_usage(cmd, stdout);
	return 0;
}

static int run(int argc, char **argv)
{
	const struct cli_command *cmd;

	if (argc < 2) {
		show_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return help(1, argv + 1);
	if (!strcmp(argv[1], "help"))
		return help(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		if (argc > 2) {
			log_error("%s: unexpected argument (see talos-gcp help)", argv[2]);
			return 2;
		}
		printf("talos-gcp %s\n", TALOS_GCP_VERSION);
		return 0;
	}
	/* For the shell completion scripts; not a command anyone types. */
	if (!strcmp(argv[1], "__complete"))
		return cli_complete(&cli_toplevel, argc - 2, argv + 2, stdout) < 0 ? 2 : 0;
	cmd = find_command(argv[1]);
	if (cmd) {
		log_init(NULL, LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
		return cmd->main(argc - 1, argv + 1);
	}
	if (argv[1][0] == '-')
		log_error("%s: unknown flag (see talos-gcp help)", argv[1]);
	else
		log_error("'%s' is not a subcommand (see talos-gcp help)", argv[1]);
	return 2;
}

int main(int argc, char **argv)
{
	int ret;

	log_init("talos-gcp", LOG_FORMAT_TEXT, LOG_LEVEL_INFO);
	ret = run(argc, argv);
	return close_stdout() < 0 ? 2 : ret;
}
