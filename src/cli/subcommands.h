/* SPDX-License-Identifier: Apache-2.0 */
/* talos-gcp subcommands: one file each, dispatched from the table in main.c. */
#ifndef TALOS_GCP_CLI_SUBCOMMANDS_H
#define TALOS_GCP_CLI_SUBCOMMANDS_H

/*
 * Each returns the process exit code. Conventions (README "Exit codes"): 0 success /
 * aligned / clean, 1 the check found problems, 2 could not check (bad input, API errors).
 */
int verify_main(int argc, char **argv);
int repair_main(int argc, char **argv);
int render_main(int argc, char **argv);
int doctor_main(int argc, char **argv);
int plan_main(int argc, char **argv);
int up_main(int argc, char **argv);
int down_main(int argc, char **argv);

#endif
