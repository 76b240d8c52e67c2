/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli/options.c and cli/complete.c on a table with every kind of option: what cli_parse
 * hands the subcommand, what it refuses, how --help shows each option, what __complete
 * offers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/complete.h"
#include "cli/options.h"

enum { OPT_SWITCH = OPT_API_LAST, OPT_VALUE, OPT_LIST, OPT_ELECT };

static const struct cli_option test_options[] = {
    {.name = "file",
     .short_name = 'f',
     .code = 'f',
     .arg = "PATH",
     .help = "a file",
     .flags = CLI_OPT_REPEAT,
     .complete = CLI_COMPLETE_FILE},
    {.name = "switch", .code = OPT_SWITCH, .help = "a switch"},
    {.name = "value",
     .code = OPT_VALUE,
     .arg = "MODE",
     .def = "fast",
     .help = "a mode",
     .complete = CLI_COMPLETE_VALUES,
     .values = CLI_VALUES("fast", "slow")},
    {.name = "list",
     .code = OPT_LIST,
     .arg = "ITEM[,ITEM...]",
     .help = "items",
     .flags = CLI_OPT_LIST,
     .complete = CLI_COMPLETE_CALLBACK},
    {.name = "leader-elect",
     .code = OPT_ELECT,
     .arg = "BOOL",
     .def = "false",
     .help = "elect a leader",
     .flags = CLI_OPT_OPTIONAL},
    {0},
};

static void test_complete_items(int code, cli_emit_fn emit, void *ctx)
{
	if (code == OPT_LIST) {
		emit(ctx, "alpha", "the first");
		emit(ctx, "beta", NULL);
		emit(ctx, "gamma", NULL);
	}
}

static const struct cli_command test_command = {
    .name = "test",
    .summary = "a test",
    .synopsis = "[options] [PATH...]\n continued\n--other",
    .description = "Tests.\n",
    .options = test_options,
    .formats = CLI_FORMATS("table", "json"),
    .operands = "PATH",
    .operands_complete = CLI_COMPLETE_FILE,
    .flags = CLI_API,
    .exit_status = "0 fine, 2 not.",
    .complete = test_complete_items,
};

/* What the handler saw, in order: "code=value" (or "code" for a switch). */
struct seen {
	char log[1024];
};

static int record(void *arg, int code, const char *value)
{
	struct seen *s = arg;
	size_t n = strlen(s->log);

	snprintf(s->log + n, sizeof(s->log) - n, "%s%d%s%s", n ? " " : "", code, value ? "=" : "",
		 value ? value : "");
	return 0;
}

static int parse(struct seen *s, struct api_opts *api, ...)
{
	char *argv[32] = {"test"};
	int argc = 1;
	va_list ap;

	memset(s, 0, sizeof(*s));
	memset(api, 0, sizeof(*api));
	va_start(ap, api);
	for (char *a; (a = va_arg(ap, char *)) && argc < 31;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	return cli_parse(&test_command, argc, argv, api, record, s);
}

static void test_parse_hands_over_in_order(void **state)
{
	struct api_opts api;
	struct seen s;
	char want[256];

	(void)state;
	assert_int_equal(parse(&s, &api, "-f", "a", "--switch", "x", "--value=slow", "--list",
			       "a,b", "--leader-elect", "--leader-elect=true", "-o", "json",
			       "--project", "p", "--", "-y", NULL),
			 0);
	snprintf(want, sizeof(want), "%d=a %d %d=slow %d=a,b %d %d=true %d=x %d=-y", 'f',
		 OPT_SWITCH, OPT_VALUE, OPT_LIST, OPT_ELECT, OPT_ELECT, CLI_OPERAND, CLI_OPERAND);
	assert_string_equal(s.log, want);
	assert_string_equal(api.output, "json");
	assert_string_equal(api.project, "p");
	/* -o defaults to the first format. */
	assert_int_equal(parse(&s, &api, NULL), 0);
	assert_string_equal(api.output, "table");
}

static void test_parse_refuses(void **state)
{
	struct api_opts api;
	struct seen s;

	(void)state;
	assert_int_equal(parse(&s, &api, "--value=", NULL), -EINVAL);
	assert_int_equal(parse(&s, &api, "--value", "", NULL), -EINVAL);
	assert_int_equal(parse(&s, &api, "-f", "", NULL), -EINVAL);
	assert_int_equal(parse(&s, &api, "--leader-elect=", NULL), -EINVAL);
	assert_int_equal(parse(&s, &api, "--value", NULL), -EINVAL);
	assert_int_equal(parse(&s, &api, "--switch=1", NULL), -EINVAL);
	assert_int_equal(parse(&s, &api, "--nope", NULL), -EINVAL);
	assert_int_equal(parse(&s, &api, "--l", "x", NULL), -EINVAL); /* --list, --leader-elect */
	assert_int_equal(parse(&s, &api, "-o", "yaml", NULL), -EINVAL);
	assert_int_equal(parse(&s, &api, "--timeout", "0s", NULL), -EINVAL);
	/* Nothing reached the handler after the refusal. */
	assert_string_equal(s.log, "");
	/* A unique prefix is the option. */
	assert_int_equal(parse(&s, &api, "--sw", NULL), 0);
	assert_int_equal(parse(&s, &api, "-h", NULL), 1);
}

/* What fn writes to a FILE, as a malloc'd string. */
static char *capture(void (*fn)(FILE *, const void *), const void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	fn(f, arg);
	fclose(f);
	return buf;
}

static void usage_of(FILE *f, const void *cmd)
{
	cli_usage(cmd, f);
}

static void test_usage(void **state)
{
	char *text = capture(usage_of, &test_command);

	(void)state;
	assert_non_null(strstr(text, "Usage: talos-gcp test [options] [PATH...]\n"
				     "                      continued\n"
				     "       talos-gcp test --other\n"));
	assert_non_null(strstr(text, "\n  -f, --file PATH           a file; repeatable\n"));
	assert_non_null(strstr(text, "\n  --switch                  a switch\n"));
	assert_non_null(strstr(text, "\n  --value MODE              a mode (default fast)\n"));
	assert_non_null(
	    strstr(text, "\n  --leader-elect[=BOOL]     elect a leader (default false)\n"));
	assert_non_null(strstr(text, "\n  -o, --output FORMAT       output format: table or json "
				     "(default table)\n"));
	assert_non_null(strstr(text, "\nAPI options:\n  --project ID "));
	/* The command's options, then -o -v -h, then the API group. */
	assert_true(strstr(text, "--leader-elect") < strstr(text, "--output"));
	assert_true(strstr(text, "--help") < strstr(text, "API options:"));
	assert_non_null(strstr(text, "\nExit status: 0 fine, 2 not.\n"));
	/* No line is wider than a terminal. */
	for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1)
		assert_true(nl - line <= 80 || !memchr(line, ' ', (size_t)(nl - line - 1)) ||
			    strstr(line, "https://"));
	free(text);
}

static const struct cli_command *const test_commands[] = {&test_command};
static const struct cli_option no_options[] = {{0}};
static const struct cli_toplevel test_top = {test_commands, 1, no_options, NULL};

struct words {
	const char *w[8];
};

static void complete_of(FILE *f, const void *arg)
{
	const struct words *words = arg;
	char *argv[8];
	int argc = 0;

	while (argc < 8 && words->w[argc]) {
		argv[argc] = (char *)words->w[argc];
		argc++;
	}
	cli_complete(&test_top, argc, argv, f);
}

static void expect_complete(const char *want, struct words words)
{
	char *got = capture(complete_of, &words);

	assert_string_equal(got, want);
	free(got);
}

static void test_complete(void **state)
{
	(void)state;
	expect_complete("test\ta test\n:\n", (struct words){{""}});
	expect_complete("fast\nslow\n:\n", (struct words){{"test", "--value", ""}});
	expect_complete("slow\n:\n", (struct words){{"test", "--value=s"}});
	expect_complete(":files\n", (struct words){{"test", "-f", ""}});
	expect_complete(":files\n", (struct words){{"test", ""}});
	expect_complete("alpha,beta\nalpha,gamma\n:\n",
			(struct words){{"test", "--list", "alpha,"}});
	expect_complete("alpha\tthe first\n:\n", (struct words){{"test", "--list", "al"}});
	/* --leader-elect takes no separate value: the next word is anything. */
	expect_complete(":files\n", (struct words){{"test", "--leader-elect", ""}});
	/* Given once, not offered again, unless repeatable. */
	expect_complete("-f\ta file\n:\n", (struct words){{"test", "-f", "x", "-f"}});
	expect_complete("--file\ta file\n:\n", (struct words){{"test", "-f", "x", "--f"}});
	expect_complete(":\n", (struct words){{"test", "--switch", "--sw"}});
	expect_complete("--switch\ta switch\n:\n", (struct words){{"test", "--sw"}});
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_hands_over_in_order),
	    cmocka_unit_test(test_parse_refuses),
	    cmocka_unit_test(test_usage),
	    cmocka_unit_test(test_complete),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
