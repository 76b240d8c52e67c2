/* SPDX-License-Identifier: Apache-2.0 */
/* talos-gcp render: the cluster's manifests and Talos patches, to stdout or --out DIR. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/subcommands.h"
#include "common/error.h"
#include "common/fileio.h"
#include "common/log.h"
#include "provision/spec.h"
#include "render/render.h"

enum { OPT_OUT = 0x2000, OPT_ONLY, OPT_LIST, OPT_VALUE_FIRST };

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: talos-gcp render --project ID --vip-alias-image IMAGE [-f SPEC] [--out DIR]\n"
	    "                        [--only NAME[,NAME...]] [VALUES]\n\n"
	    "Writes the cluster's Talos patches and manifests, to stdout (one YAML stream)\n"
	    "or as files under DIR. The output depends only on the values.\n\n"
	    "  -f, --file SPEC           values from a cluster spec (docs/cluster-spec.md);\n"
	    "                            the value flags below override it\n"
	    "  --out DIR                 write the files under DIR (created if missing)\n"
	    "  --only NAME[,NAME...]     only these components (see --list)\n"
	    "  --list                    list the components and their files\n"
	    "  -h, --help                this text\n\nValues:\n");
	for (size_t i = 0; render_keys[i][0]; i++)
		fprintf(f, "  --%-22s %s\n", render_keys[i][0], render_keys[i][1]);
	fprintf(f, "\nExit status: 0 written, 2 bad values or a file could not be written.\n");
}

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

int render_main(int argc, char **argv)
{
	struct option longopts[RENDER__COUNT + 32];
	struct render_values v;
	struct error err = {0};
	bool want[RENDER__COUNT] = {0}, any = false;
	const char *out_dir = NULL, *spec = NULL;
	const char *flags[RENDER__COUNT + 32][2];
	size_t n = 0, nflags = 0;
	int c, ret;

	render_values_default(&v);
	longopts[n++] = (struct option){"out", required_argument, NULL, OPT_OUT};
	longopts[n++] = (struct option){"only", required_argument, NULL, OPT_ONLY};
	longopts[n++] = (struct option){"list", no_argument, NULL, OPT_LIST};
	longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
	longopts[n++] = (struct option){"file", required_argument, NULL, 'f'};
	for (size_t i = 0; render_keys[i][0]; i++)
		longopts[n++] = (struct option){render_keys[i][0], required_argument, NULL,
						OPT_VALUE_FIRST + (int)i};
	longopts[n] = (struct option){0};

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hf:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			spec = optarg;
			break;
		case OPT_OUT:
			out_dir = optarg;
			break;
		case OPT_ONLY:
			if (parse_only(optarg, want) < 0)
				return 2;
			break;
		case OPT_LIST:
			for (size_t i = 0; i < RENDER__COUNT; i++)
				printf("%-20s %-26s %s\n", render_components[i].name,
				       render_components[i].path, render_components[i].what);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			log_error("%s: missing value", argv[optind - 1]);
			return 2;
		case '?':
			log_error("%s: unknown flag (see talos-gcp render --help)",
				  argv[optind - 1]);
			return 2;
		default:
			/* Applied after the spec's, whatever their order. */
			if (c >= OPT_VALUE_FIRST && nflags < sizeof(flags) / sizeof(flags[0])) {
				flags[nflags][0] = render_keys[c - OPT_VALUE_FIRST][0];
				flags[nflags++][1] = optarg;
			}
			break;
		}
	}
	if (optind < argc) {
		log_error("%s: unexpected argument (see talos-gcp render --help)", argv[optind]);
		return 2;
	}
	if (spec && values_from_spec(&v, spec, &err) < 0) {
		log_error("%s", err.msg);
		return 2;
	}
	for (size_t i = 0; i < nflags; i++) {
		if (render_set(&v, flags[i][0], flags[i][1], &err) < 0) {
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
