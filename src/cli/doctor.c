/* SPDX-License-Identifier: Apache-2.0 */
/* talos-gcp doctor: lint files (-f) and a live cluster (--live) for misconfigurations. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "cli/session.h"
#include "cli/subcommands.h"
#include "common/cidr.h"
#include "common/error.h"
#include "common/log.h"
#include "common/parse.h"
#include "doctor/doctor.h"
#include "doctor/live.h"

enum {
	OPT_LIVE = OPT_API_LAST,
	OPT_FAIL_ON,
	OPT_EXPLAIN,
	OPT_LIST_RULES,
	OPT_DISABLE,
	OPT_VIP,
	OPT_VPC_MTU,
	OPT_REGION,
	OPT_PENDING_AFTER,
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: talos-gcp doctor [-f FILE|DIR|-]... [--live] [options]\n"
	    "       talos-gcp doctor --explain RULE | --list-rules\n\n"
	    "Finds configurations that make traffic fail silently on GCP: in YAML files\n"
	    "(Kubernetes objects, Talos machine configs and patches, Cilium Helm values,\n"
	    "gcloud --format=yaml output) and, with --live, in a running cluster.\n\n"
	    "  -f, --file PATH           a file, a directory (*.yaml, *.yml, *.json, walked in\n"
	    "                            name order) or - for stdin; repeatable; also as arguments\n"
	    "  --live                    read the cluster (Kubernetes API) and its project\n"
	    "                            (Compute API) and check them too\n"
	    "  -o, --output FORMAT       text (default, like a compiler), json or sarif\n"
	    "  --fail-on SEVERITY        exit 1 on findings at or above: error, warning (default),\n"
	    "                            note, or none\n"
	    "  --explain RULE            print what a rule checks, why, and how to fix it\n"
	    "  --list-rules              list the rules\n"
	    "  --disable RULE[,RULE]     do not report these rules\n"
	    "  --vip ADDR                the control-plane VIP (default: from the inputs' vip-alias\n"
	    "                            manifest or Talos endpoint, else 10.0.0.2)\n"
	    "  --vpc-mtu N               the VPC network's MTU (default: the network's, else 1460)\n"
	    "  --region NAME             region of the load balancer and addresses (--live;\n"
	    "                            default: from the nodes' zones)\n"
	    "  --pending-after DURATION  a LoadBalancer Service without EXTERNAL-IP this long is\n"
	    "                            pending (lb-pending; --live; default 5m)\n"
	    "API options (--live):\n" API_OPTIONS_HELP
	    "\nExit status: 0 clean, 1 findings at or above --fail-on, 2 something could not be\n"
	    "checked (unreadable file, invalid YAML, API error).\n");
}

static int list_rules(void)
{
	for (size_t i = 0; i < R__COUNT; i++) {
		/* Pad by characters, not bytes: sections contain '§'. */
		size_t width = 0;

		for (const char *p = rules[i].section; *p; p++)
			width += ((unsigned char)*p & 0xc0) != 0x80;
		printf("%-30s %-8s %s%*s %s%s\n", rules[i].id, severity_name(rules[i].severity),
		       rules[i].section, (int)(width < 18 ? 18 - width : 0), "", rules[i].title,
		       rules[i].scope == SCOPE_LIVE ? " (--live)" : "");
	}
	return 0;
}

static int disable_rules(struct doctor_options *opt, const char *arg)
{
	char *copy = strdup(arg), *save = NULL;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		const struct rule *r = rule_find(t);

		if (!r) {
			log_error("--disable %s: no such rule (see --list-rules)", t);
			ret = -EINVAL;
			break;
		}
		opt->disabled[r - rules] = true;
	}
	free(copy);
	return ret;
}

static void print_summary(const struct doctor *d)
{
	const struct doctor_stats *st = doctor_stats(d);
	size_t errors = doctor_count(d, SEV_ERROR);
	size_t warnings = doctor_count(d, SEV_WARNING) - errors;
	size_t notes = doctor_count(d, SEV_NOTE) - errors - warnings;

	fprintf(stderr,
		"talos-gcp doctor: %zu error%s, %zu warning%s, %zu note%s in %zu file%s (%zu "
		"document%s, %zu skipped%s)\n",
		errors, errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s", notes,
		notes == 1 ? "" : "s", st->files, st->files == 1 ? "" : "s", st->documents,
		st->documents == 1 ? "" : "s", st->skipped_files + st->skipped_documents,
		st->skipped_documents && !log_enabled(LOG_LEVEL_DEBUG) ? ": -v lists them" : "");
}

int doctor_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    API_LONG_OPTIONS,
	    {"file", required_argument, NULL, 'f'},
	    {"live", no_argument, NULL, OPT_LIVE},
	    {"fail-on", required_argument, NULL, OPT_FAIL_ON},
	    {"explain", required_argument, NULL, OPT_EXPLAIN},
	    {"list-rules", no_argument, NULL, OPT_LIST_RULES},
	    {"disable", required_argument, NULL, OPT_DISABLE},
	    {"vip", required_argument, NULL, OPT_VIP},
	    {"vpc-mtu", required_argument, NULL, OPT_VPC_MTU},
	    {"region", required_argument, NULL, OPT_REGION},
	    {"pending-after", required_argument, NULL, OPT_PENDING_AFTER},
	    {NULL, 0, NULL, 0},
	};
	static const char *const formats[] = {"text", "json", "sarif", NULL};
	struct api_opts api = {0};
	struct doctor_options opt = {0};
	struct doctor *d = NULL;
	const char **paths = NULL;
	size_t n_paths = 0;
	enum severity fail_on = SEV_WARNING;
	bool fail_never = false, live = false;
	const char *region = NULL;
	enum doctor_format fmt;
	int c, r, rc = 2;

	paths = calloc((size_t)argc + 1, sizeof(*paths));
	if (!paths)
		return 2;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":" API_SHORT_OPTIONS "f:", longopts, NULL)) != -1) {
		r = api_opts_handle(&api, c, optarg, argv);
		if (r < 0)
			goto cleanup;
		if (r > 0)
			continue;
		switch (c) {
		case 'f':
			paths[n_paths++] = optarg;
			break;
		case OPT_LIVE:
			live = true;
			break;
		case OPT_FAIL_ON:
			if (!strcmp(optarg, "none")) {
				fail_never = true;
			} else if (severity_parse(optarg, &fail_on) < 0) {
				log_error("--fail-on %s: want error, warning, note or none",
					  optarg);
				goto cleanup;
			}
			break;
		case OPT_EXPLAIN: {
			const struct rule *rule = rule_find(optarg);

			if (!rule) {
				log_error("--explain %s: no such rule (see --list-rules)", optarg);
				goto cleanup;
			}
			doctor_explain(rule, stdout);
			rc = 0;
			goto cleanup;
		}
		case OPT_LIST_RULES:
			rc = list_rules();
			goto cleanup;
		case OPT_DISABLE:
			if (disable_rules(&opt, optarg) < 0)
				goto cleanup;
			break;
		case OPT_VIP: {
			struct cidr v;

			if (cidr_parse(optarg, &v, CIDR_ALLOW_BARE_IP) < 0 ||
			    v.prefix != cidr_max_prefix(&v)) {
				log_error("--vip %s: not an IP address (e.g. 10.0.0.2)", optarg);
				goto cleanup;
			}
			opt.vip = optarg;
			break;
		}
		case OPT_VPC_MTU: {
			uint64_t m;

			if (parse_u64(optarg, 8896, &m) < 0 || m < 1300) {
				log_error(
				    "--vpc-mtu %s: GCP networks have an MTU from 1300 to 8896",
				    optarg);
				goto cleanup;
			}
			opt.vpc_mtu = (unsigned)m;
			break;
		}
		case OPT_REGION:
			region = optarg;
			break;
		case OPT_PENDING_AFTER: {
			uint64_t ms;

			if (parse_duration_ms(optarg, &ms) < 0 || ms < 1000) {
				log_error(
				    "--pending-after %s: want a duration of a second or more, "
				    "such as 90s or 5m",
				    optarg);
				goto cleanup;
			}
			opt.lb_pending_after_s = ms / 1000;
			break;
		}
		default:
			log_error("%s: unknown flag (see talos-gcp doctor --help)",
				  argv[optind - 1]);
			goto cleanup;
		}
	}
	if (api.help) {
		usage(stdout);
		rc = 0;
		goto cleanup;
	}
	while (optind < argc)
		paths[n_paths++] = argv[optind++];
	if (api_opts_output(&api, formats) < 0)
		goto cleanup;
	fmt = !strcmp(api.output, "json")    ? DOCTOR_JSON
	      : !strcmp(api.output, "sarif") ? DOCTOR_SARIF
					     : DOCTOR_TEXT;
	if (!n_paths && !live) {
		log_error("nothing to check: give -f FILE|DIR (or -) and/or --live");
		goto cleanup;
	}
	opt.verbose = api.verbose;
	if (doctor_new(&d, &opt) < 0)
		goto cleanup;
	for (size_t i = 0; i < n_paths; i++)
		if (doctor_add_path(d, paths[i]) < 0)
			goto oom;
	if (live) {
		/* Each API on its own: without GCP credentials the cluster is still checked. */
		struct session kube = {0}, gcp = {0};
		struct error err = {0};
		bool have_kube, have_gcp;

		have_kube = session_open(&kube, &api, SESSION_KUBE, &err) == 0;
		if (!have_kube && doctor_add_problem(d, "kube:kubeconfig", true, "%s", err.msg) < 0)
			goto oom;
		error_clear(&err);
		have_gcp = session_open(&gcp, &api, SESSION_GCP, &err) == 0;
		if (!have_gcp && doctor_add_problem(d, "gce:credentials", true, "%s", err.msg) < 0)
			goto oom;
		r = doctor_live_collect(d, have_kube ? kube.kube : NULL,
					have_gcp ? gcp.compute : NULL, region, &err);
		if (have_kube) {
			session_log_stats(&kube);
			session_close(&kube);
		}
		if (have_gcp) {
			session_log_stats(&gcp);
			session_close(&gcp);
		}
		if (r == -ENOMEM)
			goto oom;
	}
	if (doctor_finish(d) < 0)
		goto oom;
	if (doctor_write(d, fmt, stdout) < 0 || fflush(stdout) != 0) {
		log_error("writing the report: %s", strerror(errno));
		goto cleanup;
	}
	if (fmt == DOCTOR_TEXT)
		print_summary(d);
	if (doctor_had_errors(d))
		rc = 2;
	else if (!fail_never && doctor_count(d, fail_on) > 0)
		rc = 1;
	else
		rc = 0;
	goto cleanup;
oom:
	log_error("out of memory");
cleanup:
	doctor_free(d);
	free(paths);
	return rc;
}
