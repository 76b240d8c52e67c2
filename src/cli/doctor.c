/* SPDX-License-Identifier: Apache-2.0 */
/* talos-gcp doctor: lint files (-f) and a live cluster (--live) for misconfigurations. */
#include <errno.h>
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

static const struct cli_option doctor_options[] = {
    {.name = "file",
     .short_name = 'f',
     .code = 'f',
     .arg = "PATH",
     .help = "a file, a directory (*.yaml, *.yml, *.json, walked in name order) or - for stdin; "
	     "also as arguments",
     .flags = CLI_OPT_REPEAT,
     .complete = CLI_COMPLETE_FILE},
    {.name = "live",
     .code = OPT_LIVE,
     .help = "read the cluster (Kubernetes API) and its project (Compute API) and check them too"},
    {.name = "fail-on",
     .code = OPT_FAIL_ON,
     .arg = "SEVERITY",
     .def = "warning",
     .help = "exit 1 on findings at or above: error, warning, note, or none",
     .complete = CLI_COMPLETE_VALUES,
     .values = CLI_VALUES("error", "warning", "note", "none")},
    {.name = "explain",
     .code = OPT_EXPLAIN,
     .arg = "RULE",
     .help = "print what a rule checks, why, and how to fix it",
     .complete = CLI_COMPLETE_CALLBACK},
    {.name = "list-rules", .code = OPT_LIST_RULES, .help = "list the rules"},
    {.name = "disable",
     .code = OPT_DISABLE,
     .arg = "RULE[,RULE...]",
     .help = "do not report these rules",
     .flags = CLI_OPT_REPEAT | CLI_OPT_LIST,
     .complete = CLI_COMPLETE_CALLBACK},
    {.name = "vip",
     .code = OPT_VIP,
     .arg = "ADDR",
     .def = "from the inputs' vip-alias manifest or Talos endpoint, else 10.0.0.2",
     .help = "the control-plane VIP"},
    {.name = "vpc-mtu",
     .code = OPT_VPC_MTU,
     .arg = "N",
     .def = "the network's with --live, else 1460",
     .help = "the VPC network's MTU"},
    {.name = "region",
     .code = OPT_REGION,
     .arg = "NAME",
     .def = "from the nodes' zones",
     .help = "with --live: the region of the load balancer and addresses"},
    {.name = "pending-after",
     .code = OPT_PENDING_AFTER,
     .arg = "DURATION",
     .def = "5m",
     .help = "with --live: a LoadBalancer Service without EXTERNAL-IP this long is pending "
	     "(lb-pending)"},
    {0},
};

/* --explain and --disable complete to the rule ids, with their titles. */
static void doctor_complete(int code, cli_emit_fn emit, void *ctx)
{
	if (code == OPT_EXPLAIN || code == OPT_DISABLE)
		for (size_t i = 0; i < R__COUNT; i++)
			emit(ctx, rules[i].id, rules[i].title);
}

const struct cli_command doctor_command = {
    .name = "doctor",
    .summary = "find configurations that make traffic fail silently on GCP",
    .synopsis = "[-f PATH]... [PATH...] [--live] [options]\n"
		"--explain RULE\n"
		"--list-rules",
    .description = "Finds configurations that make traffic fail silently on GCP: in YAML files\n"
		   "(Kubernetes objects, Talos machine configs and patches, Cilium Helm values,\n"
		   "gcloud --format=yaml output) and, with --live, in a running cluster.\n",
    .options = doctor_options,
    .formats = CLI_FORMATS("text", "json", "sarif"),
    .operands = "PATH",
    .operands_complete = CLI_COMPLETE_FILE,
    .flags = CLI_API,
    .api_when = "with --live",
    .exit_status = "0 clean, 1 findings at or above --fail-on, 2 something could not be "
		   "checked (unreadable file, invalid YAML, API error).",
    .main = doctor_main,
    .complete = doctor_complete,
};

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

struct doctor_args {
	struct doctor_options opt;
	const char **paths;
	size_t n_paths;
	enum severity fail_on;
	bool fail_never, live, list;
	const char *region;
	const struct rule *explain;
};

static int doctor_option(void *arg, int c, const char *value)
{
	struct doctor_args *a = arg;

	switch (c) {
	case 'f':
	case CLI_OPERAND:
		a->paths[a->n_paths++] = value;
		return 0;
	case OPT_LIVE:
		a->live = true;
		return 0;
	case OPT_FAIL_ON:
		if (!strcmp(value, "none")) {
			a->fail_never = true;
		} else if (severity_parse(value, &a->fail_on) < 0) {
			log_error("--fail-on %s: want error, warning, note or none", value);
			return -EINVAL;
		}
		return 0;
	case OPT_EXPLAIN:
		a->explain = rule_find(value);
		if (!a->explain) {
			log_error("--explain %s: no such rule (see --list-rules)", value);
			return -EINVAL;
		}
		return 0;
	case OPT_LIST_RULES:
		a->list = true;
		return 0;
	case OPT_DISABLE:
		return disable_rules(&a->opt, value);
	case OPT_VIP: {
		struct cidr v;

		if (cidr_parse(value, &v, CIDR_ALLOW_BARE_IP) < 0 ||
		    v.prefix != cidr_max_prefix(&v)) {
			log_error("--vip %s: not an IP address (e.g. 10.0.0.2)", value);
			return -EINVAL;
		}
		a->opt.vip = value;
		return 0;
	}
	case OPT_VPC_MTU: {
		uint64_t m;

		if (parse_u64(value, 8896, &m) < 0 || m < 1300) {
			log_error("--vpc-mtu %s: GCP networks have an MTU from 1300 to 8896",
				  value);
			return -EINVAL;
		}
		a->opt.vpc_mtu = (unsigned)m;
		return 0;
	}
	case OPT_REGION:
		a->region = value;
		return 0;
	case OPT_PENDING_AFTER: {
		uint64_t ms;

		if (parse_duration_ms(value, &ms) < 0 || ms < 1000) {
			log_error(
			    "--pending-after %s: want a duration of a second or more, such as "
			    "90s or 5m",
			    value);
			return -EINVAL;
		}
		a->opt.lb_pending_after_s = ms / 1000;
		return 0;
	}
	default:
		return 0;
	}
}

int doctor_main(int argc, char **argv)
{
	struct api_opts api = {0};
	struct doctor_args a = {.fail_on = SEV_WARNING};
	struct doctor *d = NULL;
	enum doctor_format fmt;
	int r, rc = 2;

	a.paths = calloc((size_t)argc + 1, sizeof(*a.paths));
	if (!a.paths)
		return 2;
	r = cli_parse(&doctor_command, argc, argv, &api, doctor_option, &a);
	if (r) {
		rc = r > 0 ? 0 : 2;
		goto cleanup;
	}
	if (a.explain && a.list) {
		log_error("--explain and --list-rules: give one of them");
		goto cleanup;
	}
	if (a.explain) {
		doctor_explain(a.explain, stdout);
		rc = 0;
		goto cleanup;
	}
	if (a.list) {
		rc = list_rules();
		goto cleanup;
	}
	fmt = !strcmp(api.output, "json")    ? DOCTOR_JSON
	      : !strcmp(api.output, "sarif") ? DOCTOR_SARIF
					     : DOCTOR_TEXT;
	if (!a.n_paths && !a.live) {
		log_error(
		    "nothing to check: give -f PATH (a file, a directory or -) and/or --live");
		goto cleanup;
	}
	a.opt.verbose = api.verbose;
	if (doctor_new(&d, &a.opt) < 0)
		goto cleanup;
	for (size_t i = 0; i < a.n_paths; i++)
		if (doctor_add_path(d, a.paths[i]) < 0)
			goto oom;
	if (a.live) {
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
					have_gcp ? gcp.compute : NULL, a.region, &err);
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
	else if (!a.fail_never && doctor_count(d, a.fail_on) > 0)
		rc = 1;
	else
		rc = 0;
	goto cleanup;
oom:
	log_error("out of memory");
cleanup:
	doctor_free(d);
	free(a.paths);
	return rc;
}
