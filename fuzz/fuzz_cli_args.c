/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp's command line: the shell completion (cli_complete, over every subcommand's real
 * table) and cli_parse over a table with every kind of option, on words separated by NUL
 * bytes. No crash, and what cli_parse accepts is what the table allows.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/complete.h"
#include "cli/options.h"
#include "common/log.h"

#define MAX_WORDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { OPT_SWITCH = OPT_API_LAST, OPT_VALUE, OPT_LIST, OPT_EMPTY, OPT_OPTIONAL };

static const struct cli_option fuzz_options[] = {
    {.name = "file", .short_name = 'f', .code = 'f', .arg = "PATH", .flags = CLI_OPT_REPEAT},
    {.name = "switch", .code = OPT_SWITCH},
    {.name = "value", .code = OPT_VALUE, .arg = "V", .def = "d"},
    {.name = "list", .code = OPT_LIST, .arg = "A[,B]", .flags = CLI_OPT_LIST},
    {.name = "empty-ok", .code = OPT_EMPTY, .arg = "E", .flags = CLI_OPT_EMPTY_OK},
    {.name = "optional", .code = OPT_OPTIONAL, .arg = "BOOL", .flags = CLI_OPT_OPTIONAL},
    {0},
};

static const struct cli_command fuzz_command = {
    .name = "fuzz",
    .options = fuzz_options,
    .formats = CLI_FORMATS("table", "json"),
    .operands = "PATH",
    .flags = CLI_API,
};

static int on_option(void *arg, int code, const char *value)
{
	/* Every value an option with a placeholder gets is non-empty, unless it allows it. */
	if ((code == 'f' || code == OPT_VALUE || code == OPT_LIST) && (!value || !value[0]))
		abort();
	if (code == OPT_SWITCH && value)
		abort();
	if (code == OPT_OPTIONAL && value && !value[0])
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	char *buf = malloc(size + 1), *argv[MAX_WORDS + 2];
	struct api_opts api = {0};
	int argc = 0;

	if (!sink) {
		sink = fopen("/dev/null", "w");
		log_init("fuzz", LOG_FORMAT_TEXT, LOG_LEVEL_ERROR);
	}
	if (!buf || !sink) {
		free(buf);
		return 0;
	}
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[argc++] = "fuzz";
	for (size_t i = 0; i <= size && argc <= MAX_WORDS; i += strlen(buf + i) + 1)
		argv[argc++] = buf + i;
	argv[argc] = NULL;

	cli_complete(&cli_toplevel, argc - 1, argv + 1, sink);
	/* cli_parse prints --help to stdout: send it to the sink meanwhile. */
	fflush(stdout);
	FILE *saved = stdout;
	stdout = sink;
	if (cli_parse(&fuzz_command, argc, argv, &api, on_option, NULL) == 0 &&
	    strcmp(api.output, "table") && strcmp(api.output, "json"))
		abort();
	stdout = saved;
	for (size_t i = 0; i < cli_toplevel.n_commands; i++)
		cli_usage(cli_toplevel.commands[i], sink);
	free(buf);
	return 0;
}
