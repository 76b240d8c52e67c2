/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/options.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "common/http.h"
#include "common/log.h"
#include "common/parse.h"

/* getopt_long's table of the largest command (render: its values and a few more). */
#define CLI_MAX_OPTIONS 96

/* Help columns: "  -o, --output FORMAT" padded to HELP_COLUMN, text wrapped at HELP_WIDTH. */
#define HELP_COLUMN 28
#define HELP_WIDTH  80

static const struct cli_option api_options[] = {
    {.name = "project",
     .code = OPT_PROJECT,
     .arg = "ID",
     .def = "$CLOUDSDK_CORE_PROJECT, $GOOGLE_CLOUD_PROJECT, the credentials' project",
     .help = "GCP project"},
    {.name = "compute-endpoint",
     .code = OPT_COMPUTE_ENDPOINT,
     .arg = "URL",
     .def = "$TALOS_GCP_COMPUTE_ENDPOINT, https://compute.googleapis.com/compute/v1/",
     .help = "Compute API root"},
    {.name = "access-token-file",
     .code = OPT_ACCESS_TOKEN_FILE,
     .arg = "FILE",
     .def = "$CLOUDSDK_AUTH_ACCESS_TOKEN_FILE, else Application Default Credentials",
     .help = "use the OAuth2 access token in FILE",
     .complete = CLI_COMPLETE_FILE},
    {.name = "kubeconfig",
     .code = OPT_KUBECONFIG,
     .arg = "FILE",
     .def = "$KUBECONFIG, ~/.kube/config, in-cluster",
     .help = "kubeconfig",
     .complete = CLI_COMPLETE_FILE},
    {.name = "context",
     .code = OPT_CONTEXT,
     .arg = "NAME",
     .def = "the kubeconfig's current-context",
     .help = "kubeconfig context"},
    {.name = "timeout",
     .code = OPT_TIMEOUT,
     .arg = "DURATION",
     .def = "30s",
     .help = "per-request timeout; retries stop after max(2m, 4 x DURATION)"},
    {0},
};

static const struct cli_option verbose_option = {.name = "verbose",
						 .short_name = 'v',
						 .code = 'v',
						 .help = "log requests and decisions to stderr"};
static const struct cli_option help_option = {
    .name = "help", .short_name = 'h', .code = 'h', .help = "show this help and exit"};

static const struct cli_option *command_options(const struct cli_command *cmd)
{
	static const struct cli_option none[] = {{0}};

	if (cmd->options_fn)
		return cmd->options_fn();
	return cmd->options ? cmd->options : none;
}

void cli_options_begin(struct cli_option_iter *it, const struct cli_command *cmd)
{
	memset(it, 0, sizeof(*it));
	it->cmd = cmd;
	if (cmd->formats)
		it->output = (struct cli_option){.name = "output",
						 .short_name = 'o',
						 .code = 'o',
						 .arg = "FORMAT",
						 .def = cmd->formats[0],
						 .help = "output format",
						 .complete = CLI_COMPLETE_VALUES,
						 .values = cmd->formats};
}

/* Stages: 0 the command's own, 1 -o, 2 -v, 3 -h, 4 the API options. */
const struct cli_option *cli_options_next(struct cli_option_iter *it, enum cli_group *group)
{
	const struct cli_command *cmd = it->cmd;
	const struct cli_option *own = command_options(cmd);

	if (group)
		*group = CLI_GROUP_COMMAND;
	if (it->stage == 0) {
		if (own[it->i].name)
			return &own[it->i++];
		it->stage = 1;
	}
	if (it->stage == 1) {
		it->stage = 2;
		if (cmd->formats)
			return &it->output;
	}
	if (it->stage == 2) {
		it->stage = 3;
		if (cmd->flags & (CLI_API | CLI_VERBOSE))
			return &verbose_option;
	}
	if (it->stage == 3) {
		it->stage = 4;
		it->i = 0;
		return &help_option;
	}
	if (!(cmd->flags & CLI_API) || !api_options[it->i].name)
		return NULL;
	if (group)
		*group = CLI_GROUP_API;
	return &api_options[it->i++];
}

const struct cli_option *cli_option_find(const struct cli_command *cmd, int code,
					 struct cli_option_iter *it)
{
	const struct cli_option *o;

	cli_options_begin(it, cmd);
	while ((o = cli_options_next(it, NULL)))
		if (o->code == code)
			return o;
	return NULL;
}

/*
 * getopt_long's tables from cmd's: longopts (n entries, the last {0}) and optstring (":"
 * and the short letters). -ENOSPC when too small.
 */
static int cli_getopt(const struct cli_command *cmd, struct option *longopts, size_t n,
		      char *optstring, size_t len)
{
	struct cli_option_iter it;
	const struct cli_option *o;
	size_t k = 0, m = 0;

	if (len < 2 || n < 1)
		return -ENOSPC;
	optstring[m++] = ':';
	cli_options_begin(&it, cmd);
	while ((o = cli_options_next(&it, NULL))) {
		if (k + 1 >= n)
			return -ENOSPC;
		longopts[k++] = (struct option){o->name,
						!o->arg                       ? no_argument
						: o->flags & CLI_OPT_OPTIONAL ? optional_argument
									      : required_argument,
						NULL, o->code};
		if (o->short_name) {
			if (m + 4 > len)
				return -ENOSPC;
			optstring[m++] = (char)o->short_name;
			if (o->arg)
				optstring[m++] = ':';
			if (o->arg && (o->flags & CLI_OPT_OPTIONAL))
				optstring[m++] = ':';
		}
	}
	longopts[k] = (struct option){0};
	optstring[m] = '\0';
	return 0;
}

/* "-o" when the user typed the short form, else "--output": errors name what was typed. */
static void spelling(const struct cli_option *o, const char *word, char *buf, size_t len)
{
	if (o->short_name && word && word[0] == '-' && word[1] != '-')
		snprintf(buf, len, "-%c", o->short_name);
	else
		snprintf(buf, len, "--%s", o->name);
}

/* An empty value for an option that needs one: one error line. */
static int check_empty(const struct cli_option *o, const char *word, const char *value)
{
	char flag[64];

	if (!o || !o->arg || !value || value[0] || (o->flags & CLI_OPT_EMPTY_OK))
		return 0;
	spelling(o, word, flag, sizeof(flag));
	log_error("%s: empty value (want %s)", flag, o->arg);
	return -EINVAL;
}

/* The long options that start with name (up to a '='), as "--a, --b". */
static const char *candidates(const struct cli_command *cmd, const char *name, char *buf,
			      size_t len)
{
	struct cli_option_iter it;
	const struct cli_option *o;
	size_t n = strcspn(name, "="), k = 0;

	buf[0] = '\0';
	cli_options_begin(&it, cmd);
	while ((o = cli_options_next(&it, NULL)))
		if (!strncmp(o->name, name, n) && k < len)
			k += (size_t)snprintf(buf + k, len - k, "%s--%s", k ? ", " : "", o->name);
	return buf;
}

/* Whether name (up to a '=') is the start of more than one long option. */
static bool ambiguous(const struct cli_command *cmd, const char *name)
{
	struct cli_option_iter it;
	const struct cli_option *o;
	size_t n = strcspn(name, "="), found = 0;

	cli_options_begin(&it, cmd);
	while ((o = cli_options_next(&it, NULL)))
		found += !strncmp(o->name, name, n);
	return n > 0 && found > 1;
}

int cli_parse(const struct cli_command *cmd, int argc, char **argv, struct api_opts *api,
	      cli_option_fn on_option, void *arg)
{
	struct option longopts[CLI_MAX_OPTIONS];
	char optstring[3 * CLI_MAX_OPTIONS + 2], flag[64], list[256];
	struct cli_option_iter it;
	const struct cli_option *o;
	int c, r;

	if (cli_getopt(cmd, longopts, CLI_MAX_OPTIONS, optstring, sizeof(optstring)) < 0) {
		log_error("talos-gcp %s: too many options", cmd->name);
		return -EINVAL;
	}
	opterr = 0;
	optind = 0; /* 0, not 1: glibc then forgets a previous parse's place in a "-vo" cluster */
	while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
		/* The word that named the option: the one before a value given separately. */
		const char *word = optarg && optind >= 2 && optarg == argv[optind - 1]
				       ? argv[optind - 2]
				       : argv[optind - 1];

		if (c == ':' || c == '?') {
			o = optopt ? cli_option_find(cmd, optopt, &it) : NULL;
			if (o)
				spelling(o, word, flag, sizeof(flag));
			else
				snprintf(flag, sizeof(flag), "%.*s", (int)strcspn(word, "="), word);
			if (c == ':')
				log_error("%s: needs a value (%s)", flag, o ? o->arg : "?");
			else if (o && !o->arg)
				log_error("%s: takes no value (see talos-gcp %s --help)", flag,
					  cmd->name);
			else if (optopt && optopt < 0x100)
				log_error("-%c: unknown flag (see talos-gcp %s --help)", optopt,
					  cmd->name);
			else if (!strncmp(word, "--", 2) && ambiguous(cmd, word + 2))
				log_error("%.*s: ambiguous, could be %s", (int)strcspn(word, "="),
					  word, candidates(cmd, word + 2, list, sizeof(list)));
			else
				log_error("%.*s: unknown flag (see talos-gcp %s --help)",
					  (int)strcspn(word, "="), word, cmd->name);
			return -EINVAL;
		}
		if (check_empty(cli_option_find(cmd, c, &it), word, optarg) < 0)
			return -EINVAL;
		r = api_opts_handle(api, c, optarg, argv);
		if (r == 0)
			r = on_option ? on_option(arg, c, optarg) : 0;
		if (r < 0)
			return -EINVAL;
	}
	if (api->help) {
		cli_usage(cmd, stdout);
		return 1;
	}
	for (; optind < argc; optind++) {
		if (!cmd->operands) {
			log_error("%s: unexpected argument (see talos-gcp %s --help)", argv[optind],
				  cmd->name);
			return -EINVAL;
		}
		if (on_option(arg, CLI_OPERAND, argv[optind]) < 0)
			return -EINVAL;
	}
	if (cmd->formats && api_opts_output(api, cmd->formats) < 0)
		return -EINVAL;
	return 0;
}

/* ---- --help ---- */

/* Writes text from column `at` (where the cursor is) wrapped at HELP_WIDTH, indented by col. */
static void wrap(FILE *out, const char *text, size_t at, size_t col)
{
	while (*text) {
		size_t room = HELP_WIDTH > at ? HELP_WIDTH - at : 1, n = strlen(text), cut = n;

		if (n > room) {
			cut = room;
			while (cut > 0 && text[cut] != ' ')
				cut--;
			if (cut == 0) /* one word longer than the room: as it is */
				cut = strcspn(text, " ");
		}
		fprintf(out, "%.*s\n", (int)cut, text);
		text += cut;
		while (*text == ' ')
			text++;
		if (*text)
			fprintf(out, "%*s", (int)col, "");
		at = col;
	}
}

static void print_option(FILE *out, const struct cli_option *o)
{
	/* --name ARG, or --name[=ARG] for an optional value */
	const char *sep = !o->arg ? "" : o->flags & CLI_OPT_OPTIONAL ? "[=" : " ";
	const char *end = o->arg && (o->flags & CLI_OPT_OPTIONAL) ? "]" : "";
	char left[96], text[512];
	int n;

	if (o->short_name)
		n = snprintf(left, sizeof(left), "  -%c, --%s%s%s%s", o->short_name, o->name, sep,
			     o->arg ? o->arg : "", end);
	else
		n = snprintf(left, sizeof(left), "  --%s%s%s%s", o->name, sep, o->arg ? o->arg : "",
			     end);
	if (o->values && o->code == 'o') {
		size_t k = (size_t)snprintf(text, sizeof(text), "%s: ", o->help);

		for (size_t i = 0; o->values[i] && k < sizeof(text); i++)
			k += (size_t)snprintf(text + k, sizeof(text) - k, "%s%s",
					      i == 0             ? ""
					      : o->values[i + 1] ? ", "
								 : " or ",
					      o->values[i]);
	} else {
		snprintf(text, sizeof(text), "%s", o->help);
	}
	if (o->def) {
		size_t k = strlen(text);

		snprintf(text + k, sizeof(text) - k, " (default %s)", o->def);
	}
	if (o->flags & CLI_OPT_REPEAT) {
		size_t k = strlen(text);

		snprintf(text + k, sizeof(text) - k, "; repeatable");
	}
	fputs(left, out);
	if (n + 1 >= HELP_COLUMN) {
		fprintf(out, "\n%*s", HELP_COLUMN, "");
	} else {
		fprintf(out, "%*s", HELP_COLUMN - n, "");
	}
	wrap(out, text, HELP_COLUMN, HELP_COLUMN);
}

void cli_usage_options(FILE *out, const struct cli_option *options)
{
	for (size_t i = 0; options[i].name; i++)
		print_option(out, &options[i]);
}

void cli_usage(const struct cli_command *cmd, FILE *out)
{
	struct cli_option_iter it;
	const struct cli_option *o;
	enum cli_group group, shown = CLI_GROUP_COMMAND;
	const char *s = cmd->synopsis ? cmd->synopsis : "[options]";
	bool first = true;

	while (*s) {
		size_t n = strcspn(s, "\n");

		if (*s == ' ') /* the form above, continued */
			fprintf(out, "%*s%.*s\n", (int)(18 + strlen(cmd->name)), "", (int)n - 1,
				s + 1);
		else
			fprintf(out, "%s talos-gcp %s %.*s\n", first ? "Usage:" : "      ",
				cmd->name, (int)n, s);
		first = false;
		s += n + (s[n] == '\n');
	}
	if (cmd->description)
		fprintf(out, "\n%s", cmd->description);
	fprintf(out, "\nOptions:\n");
	cli_options_begin(&it, cmd);
	while ((o = cli_options_next(&it, &group))) {
		if (group != shown) {
			fprintf(out, "\nAPI options%s%s%s:\n", cmd->api_when ? " (" : "",
				cmd->api_when ? cmd->api_when : "", cmd->api_when ? ")" : "");
			shown = group;
		}
		print_option(out, o);
	}
	if (cmd->exit_status) {
		fprintf(out, "\nExit status: ");
		wrap(out, cmd->exit_status, 13, 0);
	}
	fprintf(out, "\nSee talos-gcp-%s(1).\n", cmd->name);
}

/* ---- the API options ---- */

int api_opts_handle(struct api_opts *o, int c, const char *arg, char **argv)
{
	switch (c) {
	case OPT_PROJECT:
		o->project = arg;
		return 1;
	case OPT_COMPUTE_ENDPOINT: {
		struct error err = {0};

		/* Before anything connects: a URL with user information never reaches a socket. */
		if (http_url_check(arg, "--compute-endpoint", 0, NULL, &err) < 0) {
			log_error("%s", err.msg);
			return -EINVAL;
		}
		o->compute_endpoint = arg;
		return 1;
	}
	case OPT_ACCESS_TOKEN_FILE:
		o->access_token_file = arg;
		return 1;
	case OPT_KUBECONFIG:
		o->kubeconfig = arg;
		return 1;
	case OPT_CONTEXT:
		o->context = arg;
		return 1;
	case OPT_TIMEOUT:
		if (parse_duration_ms(arg, &o->timeout_ms) < 0 || o->timeout_ms == 0) {
			log_error("--timeout '%s': want a positive duration such as 30s or 500ms",
				  arg);
			return -EINVAL;
		}
		return 1;
	case 'o':
		o->output = arg;
		return 1;
	case 'v':
		o->verbose = true;
		log_set_level(LOG_LEVEL_DEBUG);
		return 1;
	case 'h':
		o->help = true;
		return 1;
	case ':':
		log_error("%s: missing value", argv[optind - 1]);
		return -EINVAL;
	case '?':
		if (optopt)
			log_error("-%c: unknown flag (see --help)", optopt);
		else
			log_error("%s: unknown flag (see --help)", argv[optind - 1]);
		return -EINVAL;
	default:
		return 0;
	}
}

int api_opts_output(struct api_opts *o, const char *const *formats)
{
	char list[128] = "";
	size_t n = 0;

	if (!o->output) {
		o->output = formats[0];
		return 0;
	}
	for (size_t i = 0; formats[i]; i++) {
		if (strcmp(o->output, formats[i]) == 0)
			return 0;
		if (n < sizeof(list))
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
					      formats[i]);
	}
	log_error("-o '%s': want one of %s", o->output, list);
	return -EINVAL;
}
