/* SPDX-License-Identifier: Apache-2.0 */
/* talos-gcp: a table of subcommands, as wireguard-tools' wg.c. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/complete.h"
#include "cli/options.h"
#include "cli/subcommands.h"
#include "common/log.h"

static const struct cli_command *const commands[] = {
    &plan_command,   &up_command,     &down_command,   &verify_command,
    &repair_command, &doctor_command, &render_command,
};

static const struct cli_option toplevel_options[] = {
    {.name = "help", .short_name = 'h', .code = 'h', .help = "show this help and exit"},
    {.name = "version", .help = "print the version and exit"},
    {0},
};

/* Words that are not subcommands but are completed as one. */
static const char *const extra_words[][2] = {
    {"help", "describe a subcommand: talos-gcp help SUBCOMMAND"},
    {"version", "print the version"},
    {NULL, NULL},
};

static const struct cli_toplevel toplevel = {
    commands,
    sizeof(commands) / sizeof(commands[0]),
    toplevel_options,
    extra_words,
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
	fprintf(f, "Usage: talos-gcp SUBCOMMAND [options]\n"
		   "       talos-gcp help [SUBCOMMAND]\n"
		   "       talos-gcp --version\n\n"
		   "The networking layer of Talos Kubernetes clusters on Google Cloud.\n\n"
		   "Subcommands:\n");
	for (size_t i = 0; i < toplevel.n_commands; i++)
		fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	for (size_t i = 0; extra_words[i][0]; i++)
		fprintf(f, "  %-10s %s\n", extra_words[i][0], extra_words[i][1]);
	fprintf(f, "\nOptions:\n");
	cli_usage_options(f, toplevel_options);
	fprintf(f, "\n'talos-gcp help SUBCOMMAND' (or 'talos-gcp SUBCOMMAND --help') describes "
		   "each one.\nSee talos-gcp(1).\n");
}

static const struct cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < toplevel.n_commands; i++)
		if (!strcmp(name, commands[i]->name))
			return commands[i];
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
		return cli_complete(&toplevel, argc - 2, argv + 2, stdout) < 0 ? 2 : 0;
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
