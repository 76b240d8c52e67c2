/* SPDX-License-Identifier: Apache-2.0 */
/* talos-gcp render: the cluster's manifests and Talos patches, to stdout or --out DIR. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/options.h"
#include "cli/subcommands.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "render/render.h"

enum { OPT_OUT = OPT_API_LAST, OPT_ONLY, OPT_LIST, OPT_VALUE_FIRST };

/* Room for render_keys (13 today). */
#define RENDER_MAX_KEYS 48

/* The placeholder of a value flag, from its name: --pod-cidr CIDR, --vip ADDR. */
static const char *value_placeholder(const char *key)
{
	size_t n = strlen(key);

	if (n > 5 && !strcmp(key + n - 5, "-cidr"))
		return "CIDR";
	if (n > 6 && !strcmp(key + n - 6, "-image"))
		return "IMAGE";
	if (!strcmp(key, "vip"))
		return "ADDR";
	if (!strcmp(key, "project"))
		return "ID";
	if (!strcmp(key, "mtu") || !strcmp(key, "nodes"))
		return "N";
	if (n > 8 && !strcmp(key + n - 8, "-version"))
		return "VERSION";
	return "NAME";
}

/* --out, --only, --list, then one flag per value render_set() knows. */
static const struct cli_option *render_options(void)
{
	static struct cli_option opts[RENDER_MAX_KEYS + 4];

	if (opts[0].name)
		return opts;
	opts[0] = (struct cli_option){
	    .name = "out",
	    .code = OPT_OUT,
	    .arg = "DIR",
	    .help = "write the files under DIR (created if missing), not to stdout",
	    .complete = CLI_COMPLETE_DIR};
	opts[1] = (struct cli_option){.name = "only",
				      .code = OPT_ONLY,
				      .arg = "NAME[,NAME...]",
				      .help = "only these components (see --list)",
				      .flags = CLI_OPT_LIST,
				      .complete = CLI_COMPLETE_CALLBACK};
	opts[2] = (struct cli_option){
	    .name = "list", .code = OPT_LIST, .help = "list the components and their files"};
	for (size_t i = 0; render_keys[i][0] && i < RENDER_MAX_KEYS; i++)
		opts[3 + i] = (struct cli_option){.name = render_keys[i][0],
						  .code = OPT_VALUE_FIRST + (int)i,
						  .arg = value_placeholder(render_keys[i][0]),
						  .help = render_keys[i][1]};
	return opts;
}

/* --only: the components, and "talos" for both Talos patches. */
static void render_complete(int code, cli_emit_fn emit, void *ctx)
{
	if (code != OPT_ONLY)
		return;
	emit(ctx, "talos", "both Talos patches");
	for (size_t i = 0; i < RENDER__COUNT; i++)
		emit(ctx, render_components[i].name, render_components[i].what);
}

const struct cli_command render_command = {
    .name = "render",
    .summary = "write the cluster's Talos patches and manifests",
    .synopsis = "[--out DIR] [--only NAME[,NAME...]] [VALUES]\n--list",
    .description =
	"Writes the cluster's Talos patches and manifests, to stdout (one YAML stream) or as\n"
	"files under DIR. The output depends only on the values: each has a flag below (the\n"
	"defaults are the design note's).\n",
    .options_fn = render_options,
    .exit_status = "0 written, 2 bad values or a file could not be written.",
    .main = render_main,
    .complete = render_complete,
};

static int mkdirs(const char *dir)
{
	char path[4096];
	size_t n = strlen(dir);

	if (n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int parse_only(const char *arg, bool *want)
{
	char *copy = strdup(arg), *save = NULL;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool found = false;

		for (size_t i = 0; i < RENDER__COUNT; i++) {
			/* "talos" selects both Talos patches. */
			if (!strcmp(t, render_components[i].name) ||
			    (!strcmp(t, "talos") &&
			     !strncmp(render_components[i].name, "talos-", 6))) {
				want[i] = true;
				found = true;
			}
		}
		if (!found) {
			log_error("--only %s: no such component (see --list)", t);
			ret = -EINVAL;
			break;
		}
	}
	free(copy);
	return ret;
}

struct render_args {
	struct render_values v;
	bool want[RENDER__COUNT];
	const char *out_dir;
	bool list;
};

static int render_option(void *arg, int c, const char *value)
{
	struct render_args *a = arg;
	struct error err = {0};

	switch (c) {
	case OPT_OUT:
		a->out_dir = value;
		return 0;
	case OPT_ONLY:
		return parse_only(value, a->want);
	case OPT_LIST:
		a->list = true;
		return 0;
	default:
		if (c >= OPT_VALUE_FIRST &&
		    render_set(&a->v, render_keys[c - OPT_VALUE_FIRST][0], value, &err) < 0) {
			log_error("%s", err.msg);
			return -EINVAL;
		}
		return 0;
	}
}

int render_main(int argc, char **argv)
{
	struct render_args a = {0};
	struct api_opts api = {0};
	struct render_values v;
	struct error err = {0};
	bool *want = a.want, any = false;
	const char *out_dir;
	int ret;

	render_values_default(&a.v);
	ret = cli_parse(&render_command, argc, argv, &api, render_option, &a);
	if (ret)
		return ret > 0 ? 0 : 2;
	if (a.list) {
		for (size_t i = 0; i < RENDER__COUNT; i++)
			printf("%-20s %-26s %s\n", render_components[i].name,
			       render_components[i].path, render_components[i].what);
		return 0;
	}
	v = a.v;
	out_dir = a.out_dir;
	if (render_validate(&v, &err) < 0) {
		log_error("%s", err.msg);
		return 2;
	}
	for (size_t i = 0; i < RENDER__COUNT; i++)
		any |= want[i];
	if (!any)
		for (size_t i = 0; i < RENDER__COUNT; i++)
			want[i] = true;
	if (out_dir && (ret = mkdirs(out_dir)) < 0) {
		log_error("--out %s: %s", out_dir, strerror(-ret));
		return 2;
	}

	bool first = true;
	for (size_t i = 0; i < RENDER__COUNT; i++) {
		char *text = NULL, *path = NULL;
		size_t len = 0;

		if (!want[i])
			continue;
		if ((ret = render_component(&v, (enum render_component)i, &text, &len)) < 0) {
			log_error("rendering %s: %s", render_components[i].path, strerror(-ret));
			return 2;
		}
		if (!out_dir) {
			/* One stream: every file is a YAML document (or several) of its own. */
			if (!first)
				fputs("---\n", stdout);
			fwrite(text, 1, len, stdout);
			first = false;
			free(text);
			continue;
		}
		if (asprintf(&path, "%s/%s", out_dir, render_components[i].path) < 0) {
			free(text);
			return 2;
		}
		char *slash = strrchr(path, '/');

		*slash = '\0';
		ret = mkdirs(path);
		*slash = '/';
		if (ret == 0)
			ret = file_write_atomic(path, text, len, 0644);
		if (ret < 0)
			log_error("%s: %s", path, strerror(-ret));
		free(path);
		free(text);
		if (ret < 0)
			return 2;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		log_error("writing to stdout: %s", strerror(errno));
		return 2;
	}
	return 0;
}
