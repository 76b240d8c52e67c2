/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp subcommands: one file each, each described by a struct cli_command (its options,
 * help and main; cli/options.h), listed in main.c's table.
 */
#ifndef TALOS_GCP_CLI_SUBCOMMANDS_H
#define TALOS_GCP_CLI_SUBCOMMANDS_H

#include "cli/options.h"

/*
 * Each main returns the process exit code. Conventions (README "Exit codes"): 0 success /
 * aligned / clean, 1 the check found problems, 2 could not check (bad input, API errors).
 */
int verify_main(int argc, char **argv);
int repair_main(int argc, char **argv);
int render_main(int argc, char **argv);
int doctor_main(int argc, char **argv);
int expose_main(int argc, char **argv);
int plan_main(int argc, char **argv);
int up_main(int argc, char **argv);
int down_main(int argc, char **argv);

extern const struct cli_command verify_command;
extern const struct cli_command repair_command;
extern const struct cli_command doctor_command;
extern const struct cli_command render_command;
extern const struct cli_command plan_command;
extern const struct cli_command up_command;
extern const struct cli_command down_command;
extern const struct cli_command expose_command;

#endif
