/* SPDX-License-Identifier: Apache-2.0 */
/* The subcommands of talos-gcp, in the order --help lists them. */
#include "cli/complete.h"
#include "cli/subcommands.h"

static const struct cli_command *const commands[] = {
    &plan_command,   &up_command,     &down_command,   &expose_command,
    &verify_command, &repair_command, &doctor_command, &render_command,
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

const struct cli_toplevel cli_toplevel = {
    commands,
    sizeof(commands) / sizeof(commands[0]),
    toplevel_options,
    extra_words,
};
