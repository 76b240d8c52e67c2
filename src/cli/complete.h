/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shell completion from the commands' tables: `talos-gcp __complete WORD...` is given the
 * words after "talos-gcp" up to the one under the cursor (the last, maybe empty; bash's
 * script joins `--flag` `=` `value` back into `--flag=value`) and prints the candidates for
 * that last word, one a line as "VALUE<TAB>DESCRIPTION", then one line saying what the shell
 * adds itself: ":" nothing, ":files" file names, ":dirs" directory names.
 * completion/talos-gcp.bash and completion/_talos-gcp (zsh) call it.
 */
#ifndef TALOS_GCP_CLI_COMPLETE_H
#define TALOS_GCP_CLI_COMPLETE_H

#include <stddef.h>
#include <stdio.h>

#include "cli/options.h"

struct cli_toplevel {
	const struct cli_command *const *commands; /* the subcommands, in --help's order */
	size_t n_commands;
	const struct cli_option *options; /* talos-gcp's own (--help, --version), {0}-ended */
	const char *const (*extra)[2];    /* words that are not commands (help, version), {0} */
};

/* talos-gcp's (cli/commands.c). */
extern const struct cli_toplevel cli_toplevel;

int cli_complete(const struct cli_toplevel *top, int argc, char **argv, FILE *out);

#endif
