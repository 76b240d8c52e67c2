/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The command line of talos-gcp, declared once per subcommand: a table of its options (name,
 * short letter, placeholder, default, help, how its value completes) and a struct cli_command
 * around it. getopt_long's tables, --help, `talos-gcp help SUBCOMMAND` and the shell
 * completion (`talos-gcp __complete`) all derive from it; tests check the man pages against
 * --help. Options are shown in two groups, as gcloud and kubectl group them: the command's
 * own (with -o, -v, -h), then the API options every subcommand that talks to an API takes
 * (--project, --compute-endpoint, --access-token-file, --kubeconfig, --context, --timeout).
 *
 *	enum { OPT_NODE = OPT_API_LAST };
 *	static const struct cli_option verify_options[] = {
 *	    {"node", 0, OPT_NODE, "NAME", NULL, "report only this Node"},
 *	    {0},
 *	};
 *	const struct cli_command verify_command = {
 *	    .name = "verify", .summary = "...", .options = verify_options,
 *	    .formats = CLI_FORMATS("table", "json"), .flags = CLI_API, .main = verify_main, ...
 *	};
 *	ret = cli_parse(&verify_command, argc, argv, &api, on_option, &state);
 *
 * A subcommand still on its own getopt_long loop adopts the table by moving the body of its
 * switch into the handler (it receives the same codes and optarg), its usage text into
 * description, and its struct option entries into the table; its API codes stay.
 */
#ifndef TALOS_GCP_CLI_OPTIONS_H
#define TALOS_GCP_CLI_OPTIONS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum {
	OPT_PROJECT = 0x1000,
	OPT_COMPUTE_ENDPOINT,
	OPT_ACCESS_TOKEN_FILE,
	OPT_KUBECONFIG,
	OPT_CONTEXT,
	OPT_TIMEOUT,
	OPT_API_LAST, /* subcommands number their own options from here */
};

/* The handler's code for a positional argument (cli_command.operands). */
#define CLI_OPERAND 1

/* How the shell completes an option's value. */
enum cli_complete {
	CLI_COMPLETE_NONE = 0, /* a free value: nothing is offered */
	CLI_COMPLETE_FILE,     /* file names (directories too) */
	CLI_COMPLETE_DIR,      /* directory names */
	CLI_COMPLETE_VALUES,   /* the option's values[] */
	CLI_COMPLETE_CALLBACK, /* what the command's complete() gives for the option's code */
};

enum cli_option_flags {
	CLI_OPT_REPEAT = 1 << 0,   /* may be given more than once */
	CLI_OPT_LIST = 1 << 1,     /* a comma-separated list: each item completes */
	CLI_OPT_EMPTY_OK = 1 << 2, /* an empty value means something (else it is an error) */
	CLI_OPT_OPTIONAL = 1 << 3, /* the value is optional and only as --name=VALUE */
};

struct cli_option {
	const char *name; /* the long name, without "--" */
	int short_name;   /* 'o', 'f', ... or 0 */
	int code;         /* what the handler is given: short_name if any, else an OPT_ value */
	const char *arg;  /* the value's placeholder (NAME, FILE, ...); NULL: a switch */
	const char *def;  /* the default, shown as "(default DEF)"; NULL: none to show */
	const char *help; /* a phrase, wrapped by the help printer */
	unsigned flags;   /* enum cli_option_flags */
	enum cli_complete complete;
	const char *const *values; /* CLI_COMPLETE_VALUES: NULL-terminated */
};

enum cli_command_flags {
	CLI_API = 1 << 0,     /* takes the API options */
	CLI_VERBOSE = 1 << 1, /* takes -v, --verbose (implied by CLI_API) */
};

/* Emits one completion candidate (value and a description, which may be NULL). */
typedef void (*cli_emit_fn)(void *ctx, const char *value, const char *description);

struct cli_command {
	const char *name;    /* "verify" */
	const char *summary; /* one line, for `talos-gcp --help` */
	/* What follows "talos-gcp NAME ": "[options]"; '\n' starts another form, "\n " goes on. */
	const char *synopsis;
	const char *description;          /* for --help: lines of at most 80 columns */
	const struct cli_option *options; /* the command's own, {0}-terminated */
	/* Instead of options, when the table is built at run time (render's values). */
	const struct cli_option *(*options_fn)(void);
	const char *const *formats; /* -o: the formats, the default first; NULL: no -o */
	const char *operands;       /* placeholder of positional arguments ("PATH"); NULL: none */
	enum cli_complete operands_complete;
	unsigned flags;          /* enum cli_command_flags */
	const char *api_when;    /* when the API options apply, e.g. "with --live" */
	const char *exit_status; /* "0 aligned, 1 not aligned, 2 could not check." */
	int (*main)(int argc, char **argv);
	/* The values of the option with this code (CLI_COMPLETE_CALLBACK). */
	void (*complete)(int code, cli_emit_fn emit, void *ctx);
};

#define CLI_FORMATS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define CLI_VALUES(...)  ((const char *const[]){__VA_ARGS__, NULL})

/* What every API subcommand takes, and -o, -v, -h (help: for the legacy getopt loops). */
struct api_opts {
	const char *project;
	const char *compute_endpoint;
	const char *access_token_file;
	const char *kubeconfig;
	const char *context;
	const char *output;
	uint64_t timeout_ms;
	bool verbose;
	bool help;
};

/* A subcommand's own option (or CLI_OPERAND): 0, or -EINVAL after one error line. */
typedef int (*cli_option_fn)(void *arg, int code, const char *value);

/*
 * Parses argv (argv[0] is the subcommand's name) by cmd's table: the API options, -o, -v
 * land in *api, the command's own options and its operands go to on_option, in order.
 * Returns 0 to go on, 1 after printing --help to stdout, -EINVAL after one error line on
 * stderr (an unknown flag, a missing or empty value, a bad -o, an unexpected argument).
 */
int cli_parse(const struct cli_command *cmd, int argc, char **argv, struct api_opts *api,
	      cli_option_fn on_option, void *arg);

/* The command's options in the order --help shows them, one group after the other. */
enum cli_group { CLI_GROUP_COMMAND, CLI_GROUP_API };
struct cli_option_iter {
	const struct cli_command *cmd;
	int stage;
	size_t i;
	struct cli_option output; /* -o, its values the command's formats */
};
void cli_options_begin(struct cli_option_iter *it, const struct cli_command *cmd);
/* The next option (and its group), or NULL at the end. */
const struct cli_option *cli_options_next(struct cli_option_iter *it, enum cli_group *group);
/* The option with this code (a short option's is its letter), or NULL; it may live in *it. */
const struct cli_option *cli_option_find(const struct cli_command *cmd, int code,
					 struct cli_option_iter *it);

/* --help: usage, description, options by group, exit status. */
void cli_usage(const struct cli_command *cmd, FILE *out);
/* One group of options, as --help prints them (the top-level help uses it too). */
void cli_usage_options(FILE *out, const struct cli_option *options);

/*
 * Handles one option code from getopt_long. Returns 1 when it was an API option (or -o,
 * -v, -h), 0 when the subcommand must handle it, -EINVAL after printing a one-line error
 * (bad value, unknown flag, missing value).
 */
int api_opts_handle(struct api_opts *o, int c, const char *arg, char **argv);

/* Checks -o against the allowed formats ("table", "json", NULL-terminated); sets default. */
int api_opts_output(struct api_opts *o, const char *const *formats);

/*
 * The API options' getopt_long entries and help, for subcommands that have not moved to a
 * cli_command table yet (their --help then misses placeholders and defaults the table gives).
 */
#define API_LONG_OPTIONS                                                                           \
	{"project", required_argument, NULL, OPT_PROJECT},                                         \
	    {"compute-endpoint", required_argument, NULL, OPT_COMPUTE_ENDPOINT},                   \
	    {"access-token-file", required_argument, NULL, OPT_ACCESS_TOKEN_FILE},                 \
	    {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},                               \
	    {"context", required_argument, NULL, OPT_CONTEXT},                                     \
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},                                     \
	    {"output", required_argument, NULL, 'o'}, {"verbose", no_argument, NULL, 'v'},         \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}

/* The short options API_LONG_OPTIONS implies, for getopt_long's optstring. */
#define API_SHORT_OPTIONS "o:vh"

#define API_OPTIONS_HELP                                                                              \
	"  --project ID              GCP project (default: $CLOUDSDK_CORE_PROJECT,\n"                 \
	"                            $GOOGLE_CLOUD_PROJECT, the credentials' project)\n"              \
	"  --compute-endpoint URL    Compute API root (default: $TALOS_GCP_COMPUTE_ENDPOINT or\n"     \
	"                            https://compute.googleapis.com/compute/v1/)\n"                   \
	"  --access-token-file FILE  use the OAuth2 access token in FILE (else ADC)\n"                \
	"  --kubeconfig FILE         kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)\n" \
	"  --context NAME            kubeconfig context (default: its current-context)\n"             \
	"  --timeout DURATION        per-request timeout (default 30s); retries stop after\n"         \
	"                            max(2m, 4 x DURATION)\n"                                         \
	"  -o, --output FORMAT       output format\n"                                                 \
	"  -v, --verbose             log requests and decisions to stderr\n"                          \
	"  -h, --help                this text\n"

#endif
