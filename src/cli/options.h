/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Flags every subcommand that talks to an API takes: --project, --compute-endpoint,
 * --access-token-file, --kubeconfig, --context, -o, -v. Each subcommand appends its own
 * getopt_long entries after API_LONG_OPTIONS and hands unknown codes to api_opts_handle().
 */
#ifndef TALOS_GCP_CLI_OPTIONS_H
#define TALOS_GCP_CLI_OPTIONS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

enum {
	OPT_PROJECT = 0x1000,
	OPT_COMPUTE_ENDPOINT,
	OPT_ACCESS_TOKEN_FILE,
	OPT_KUBECONFIG,
	OPT_CONTEXT,
	OPT_TIMEOUT,
	OPT_API_LAST, /* subcommands number their own options from here */
};

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

/*
 * Handles one option code from getopt_long. Returns 1 when it was an API option, 0 when
 * the subcommand must handle it, -EINVAL after printing a one-line error (bad value,
 * unknown flag, missing value).
 */
int api_opts_handle(struct api_opts *o, int c, const char *arg, char **argv);

/* Checks -o against the allowed formats ("table", "json", NULL-terminated); sets default. */
int api_opts_output(struct api_opts *o, const char *const *formats);

#endif
