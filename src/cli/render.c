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
#include "provision/spec.h"
#include "render/render.h"

enum { OPT_OUT = OPT_API_LAST, OPT_ONLY, OPT_LIST, OPT_VALUE_FIRST };

/* Room for render_keys (15 today). */
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
	static struct cli_option opts[RENDER_MAX_KEYS + 8];

	size_t n = 0;

	if (opts[0].name)
		return opts;
	opts[n++] =
	    (struct cli_option){.name = "file",
				.short_name = 'f',
				.code = 'f',
				.arg = "SPEC",
				.help = "values from a cluster spec (docs/cluster-spec.md); the "
					"value flags below override it",
				.complete = CLI_COMPLETE_FILE};
	opts[n++] = (struct cli_option){
	    .name = "out",
	    .code = OPT_OUT,
	    .arg = "DIR",
	    .help = "write the files under DIR (created if missing), not to stdout",
	    .complete = CLI_COMPLETE_DIR};
	opts[n++] = (struct cli_option){.name = "only",
					.code = OPT_ONLY,
					.arg = "NAME[,NAME...]",
					.help = "only these components (see --list)",
					.flags = CLI_OPT_LIST,
					.complete = CLI_COMPLETE_CALLBACK};
	opts[n++] = (struct cli_option){
	    .name = "list", .code = OPT_LIST, .help = "list the components and their files"};
	for (size_t i = 0; render_keys[i][0] && i < RENDER_MAX_KEYS; i++)
		opts[n++] = (struct cli_option){.name = render_keys[i][0],
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
    .synopsis = "--vip-alias-image IMAGE (--project ID | -f SPEC) [--out DIR]\n"
		" [--only NAME[,NAME...]] [VALUES]\n"
		"--list",
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

/* The values a cluster spec gives, as talos-gcp up names the resources. */
static int values_from_spec(struct render_values *v, const char *path, struct error *err)
{
	struct cluster_spec *s = NULL;
	char subnet[96], tag[96], mtu[16], nodes[16];
	int ret = spec_load(path, SPEC_NO_FILES, &s, err);

	if (ret < 0)
		return ret;
	snprintf(subnet, sizeof(subnet), "%s-nodes", s->name);
	snprintf(tag, sizeof(tag), "%s-node", s->name);
	snprintf(mtu, sizeof(mtu), "%u", s->network.mtu);
	snprintf(nodes, sizeof(nodes), "%zu",
		 (size_t)s->control_plane.count + s->control_plane.nexisting + s->workers.count +
		     s->workers.nexisting);
	const char *const pairs[][2] = {
	    {"cluster-name", s->name},
	    {"project", s->project},
	    {"region", s->region},
	    {"network", s->name},
	    {"subnetwork", subnet},
	    {"node-tag", tag},
	    {"node-cidr", s->network.node_cidr},
	    {"pod-cidr", s->network.pod_cidr},
	    {"service-cidr", s->network.service_cidr},
	    {"vip", s->network.vip},
	    {"mtu", mtu},
	    {"nodes", nodes},
	};
	for (size_t i = 0; ret == 0 && i < sizeof(pairs) / sizeof(pairs[0]); i++)
		if (pairs[i][1])
			ret = render_set(v, pairs[i][0], pairs[i][1], err);
	if (ret < 0)
		error_prefix(err, "%s", path);
	spec_free(s);
	return ret;
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
	bool want[RENDER__COUNT];
	const char *out_dir, *spec;
	bool list;
	const char *flags[RENDER_MAX_KEYS * 4][2]; /* the value flags, applied after -f's */
	size_t n_flags;
};

static int render_option(void *arg, int c, const char *value)
{
	struct render_args *a = arg;

	switch (c) {
	case 'f':
		a->spec = value;
		return 0;
	case OPT_OUT:
		a->out_dir = value;
		return 0;
	case OPT_ONLY:
		return parse_only(value, a->want);
	case OPT_LIST:
		a->list = true;
		return 0;
	default:
		if (c < OPT_VALUE_FIRST)
			return 0;
		if (a->n_flags == sizeof(a->flags) / sizeof(a->flags[0])) {
			log_error("--%s: too many value flags",
				  render_keys[c - OPT_VALUE_FIRST][0]);
			return -EINVAL;
		}
		a->flags[a->n_flags][0] = render_keys[c - OPT_VALUE_FIRST][0];
		a->flags[a->n_flags++][1] = value;
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

	ret = cli_parse(&render_command, argc, argv, &api, render_option, &a);
	if (ret)
		return ret > 0 ? 0 : 2;
	if (a.list) {
		for (size_t i = 0; i < RENDER__COUNT; i++)
			printf("%-20s %-26s %s\n", render_components[i].name,
			       render_components[i].path, render_components[i].what);
		return 0;
	}
	out_dir = a.out_dir;
	render_values_default(&v);
	if (a.spec && values_from_spec(&v, a.spec, &err) < 0) {
		log_error("%s", err.msg);
		return 2;
	}
	/* Applied after the spec's, whatever their order. */
	for (size_t i = 0; i < a.n_flags; i++) {
		if (render_set(&v, a.flags[i][0], a.flags[i][1], &err) < 0) {
			log_error("%s", err.msg);
			return 2;
		}
	}
	for (size_t i = 0; i < RENDER__COUNT; i++)
		any |= want[i];
	if (!any)
		for (size_t i = 0; i < RENDER__COUNT; i++)
			want[i] = true;
	if (render_validate(&v, want, &err) < 0) {
		log_error("%s", err.msg);
		return 2;
	}
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
	return 0; /* main() checks that stdout took it all */
}
