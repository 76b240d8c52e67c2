/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp repair: restore PodCIDR <-> alias IP alignment.
 *
 *   --strategy gcp (default, the design note's recovery): move each instance's alias range
 *     to its Node's podCIDR. GCP refuses to replace a range in one request, so each move
 *     is clear-then-set, each step waited on; the fingerprint is re-read before every step
 *     and a stale one (412) is re-read and retried; a state that differs from the plan's
 *     assumptions is re-planned from fresh lists (bounded).
 *   --strategy node: cordon and delete the Node, so that it re-registers and the CCM's
 *     CloudAllocator assigns its podCIDR from the alias. Refused unless the CCM visibly
 *     runs CloudAllocator as the only allocator (or --force).
 *
 * Without --apply it prints the plan and changes nothing. With --apply it carries the plan
 * out, verifies again, and exits 0 only when aligned.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/alignment.h"
#include "cli/controllers.h"
#include "cli/options.h"
#include "cli/report.h"
#include "cli/session.h"
#include "cli/subcommands.h"
#include "cli/view_load.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/parse.h"

static const char usage[] =
    "Usage: talos-gcp repair [options]\n"
    "\n"
    "Plans the changes that make every Node's podCIDR equal its instance's alias IP range,\n"
    "and with --apply makes them, then verifies again.\n"
    "\n"
    "Options:\n"
    "  --strategy gcp|node       gcp (default): move the instance's `pods` alias to the Node's\n"
    "                            podCIDR (clear, then set); node: cordon and delete the Node so\n"
    "                            that it re-registers and the CCM copies the alias\n"
    "  --apply                   make the changes (default: print the plan only)\n"
    "  --force                   --strategy node even when the CCM is not seen to run\n"
    "                            CloudAllocator as the only PodCIDR allocator\n"
    "  --node NAME               repair only this Node\n"
    "  --wait-timeout DURATION   per operation / re-registration (default 5m)\n" API_OPTIONS_HELP
    "                            repair: table (default) or json\n"
    "\n"
    "Exit status: 0 aligned (or nothing to do), 1 changes pending, refused or still not\n"
    "aligned, 2 could not check or a change failed.\n";

enum {
	OPT_STRATEGY = OPT_API_LAST,
	OPT_APPLY,
	OPT_FORCE,
	OPT_NODE,
	OPT_WAIT_TIMEOUT,
};

enum strategy { STRATEGY_GCP, STRATEGY_NODE };

/* Re-plans after the world moved under us; each round re-reads both lists. */
#define MAX_ROUNDS 3
/* Stale fingerprints (412) re-read and retried, per step. */
#define MAX_STALE 5
/* A step found the world not as planned: start a new round. */
#define REPLAN 1

struct repair {
	struct api_opts o;
	enum strategy strategy;
	bool apply, force;
	const char *node;
	uint64_t wait_ms;
	struct session s;
	json_t *applied; /* steps carried out, for -o json */
};

/* ---- planning ---- */

/* Keeps only the rows of --node (others become ok: not ours to touch). */
static void narrow_rows(const struct cluster_view *view, struct alignment *a, const char *node)
{
	if (!node)
		return;
	for (size_t i = 0; i < a->n_rows; i++)
		if (strcmp(view->nodes[a->rows[i].node].name, node) != 0)
			a->rows[i].status = ALIGN_OK;
}

struct node_plan {
	size_t *nodes; /* view->nodes indices to cordon and delete */
	size_t n;
	struct repair_refusal *refusals;
	size_t n_refusals;
};

static int plan_node_refuse(struct node_plan *p, size_t node, const char *why)
{
	struct repair_refusal *r = realloc(p->refusals, (p->n_refusals + 1) * sizeof(*r));

	if (!r)
		return -ENOMEM;
	p->refusals = r;
	r[p->n_refusals].node = node;
	snprintf(r[p->n_refusals].reason, sizeof(r->reason), "%s", why);
	p->n_refusals++;
	return 0;
}

static int plan_node(const struct cluster_view *view, const struct alignment *a,
		     struct node_plan *p)
{
	char why[sizeof(((struct repair_refusal *)0)->reason)];
	int ret = 0;

	memset(p, 0, sizeof(*p));
	p->nodes = calloc(a->n_rows + 1, sizeof(*p->nodes));
	if (!p->nodes)
		return -ENOMEM;
	for (size_t i = 0; i < a->n_rows && ret == 0; i++) {
		const struct align_row *row = &a->rows[i];

		switch (row->status) {
		case ALIGN_OK:
			break;
		case ALIGN_MISMATCH:
			if (!view->nodes[row->node].pod_cidr_valid ||
			    !view->instances[row->instance].aliases_valid) {
				ret = plan_node_refuse(p, row->node, row->reason);
				break;
			}
			p->nodes[p->n++] = row->node;
			break;
		case ALIGN_NO_ALIAS:
			ret = plan_node_refuse(
			    p, row->node,
			    "the instance has no alias range: a re-registered Node would get no podCIDR (CIDRNotAvailable); use --strategy gcp");
			break;
		case ALIGN_NO_PODCIDR:
			ret = plan_node_refuse(
			    p, row->node,
			    "the Node has no podCIDR yet: the CCM assigns one; nothing to delete");
			break;
		default:
			snprintf(why, sizeof(why), "%s: %s", align_status_name(row->status),
				 row->reason);
			ret = plan_node_refuse(p, row->node, why);
			break;
		}
	}
	return ret;
}

static void node_plan_free(struct node_plan *p)
{
	free(p->nodes);
	free(p->refusals);
	memset(p, 0, sizeof(*p));
}

/* ---- printing ---- */

static void print_refusals(const struct cluster_view *view, const struct repair_refusal *r,
			   size_t n)
{
	if (!n)
		return;
	printf("Refused (%zu):\n", n);
	for (size_t i = 0; i < n; i++)
		printf("  %s: %s\n", view->nodes[r[i].node].name, r[i].reason);
}

static void print_gcp_plan(const struct cluster_view *view, const struct repair_plan *p)
{
	char text[CIDR_STRLEN];

	printf("Plan (strategy gcp): %zu node%s to align in %zu step%s\n", p->n_nodes_fixed,
	       p->n_nodes_fixed == 1 ? "" : "s", p->n_steps, p->n_steps == 1 ? "" : "s");
	for (size_t i = 0; i < p->n_steps; i++) {
		const struct repair_step *st = &p->steps[i];
		const struct view_instance *in = &view->instances[st->instance];

		cidr_format(&st->range, text, sizeof(text));
		if (st->kind == STEP_CLEAR)
			printf("  %2zu. clear  %s (%s) %s alias %s\n", i + 1, in->name, in->zone,
			       in->nic_name, text);
		else
			printf("  %2zu. set    %s (%s) %s alias %s:%s  = Node %s's podCIDR\n",
			       i + 1, in->name, in->zone, in->nic_name, st->range_name, text,
			       view->nodes[st->node].name);
	}
	print_refusals(view, p->refusals, p->n_refusals);
}

static void print_node_plan(const struct cluster_view *view, const struct node_plan *p,
			    const char *ccm_why)
{
	printf("Plan (strategy node): %zu Node%s to cordon, delete and let re-register\n", p->n,
	       p->n == 1 ? "" : "s");
	printf("  (%s)\n", ccm_why);
	for (size_t i = 0; i < p->n; i++) {
		const struct view_node *n = &view->nodes[p->nodes[i]];
		printf("  %2zu. cordon and delete Node %s (podCIDR %s; uid %s)\n", i + 1, n->name,
		       n->pod_cidr, n->uid);
	}
	print_refusals(view, p->refusals, p->n_refusals);
}

static json_t *refusals_json(const struct cluster_view *view, const struct repair_refusal *r,
			     size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr,
				      json_pack("{s:s, s:s}", "node", view->nodes[r[i].node].name,
						"reason", r[i].reason));
	return arr;
}

static json_t *gcp_plan_json(const struct cluster_view *view, const struct repair_plan *p)
{
	json_t *steps = json_array();
	char text[CIDR_STRLEN];

	for (size_t i = 0; i < p->n_steps; i++) {
		const struct repair_step *st = &p->steps[i];
		const struct view_instance *in = &view->instances[st->instance];

		json_array_append_new(
		    steps, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?}", "action",
				     st->kind == STEP_CLEAR ? "clear" : "set", "instance", in->name,
				     "zone", in->zone, "node", view->nodes[st->node].name, "range",
				     cidr_format(&st->range, text, sizeof(text)), "rangeName",
				     st->kind == STEP_SET ? st->range_name : NULL));
	}
	return json_pack("{s:s, s:o, s:o}", "strategy", "gcp", "steps", steps, "refused",
			 refusals_json(view, p->refusals, p->n_refusals));
}

static json_t *node_plan_json(const struct cluster_view *view, const struct node_plan *p)
{
	json_t *steps = json_array();

	for (size_t i = 0; i < p->n; i++)
		json_array_append_new(steps, json_pack("{s:s, s:s}", "action", "delete-node",
						       "node", view->nodes[p->nodes[i]].name));
	return json_pack("{s:s, s:o, s:o}", "strategy", "node", "steps", steps, "refused",
			 refusals_json(view, p->refusals, p->n_refusals));
}

/* ---- --strategy gcp: one step ---- */

static bool same_ranges(const struct view_alias *a, size_t na, const struct view_alias *b,
			size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!cidr_equal(&a[i].range, &b[i].range))
			return false;
	return true;
}

/*
 * Carries out one step on the instance as it is now. expected is what the plan believes
 * nic0's aliases are before the step; anything else means someone else moved: REPLAN.
 * On success *expected is updated to the aliases after the step.
 */
static int apply_step(struct repair *r, struct view_instance *planned, const struct repair_step *st,
		      struct error *err)
{
	struct gcp_alias_range ranges[16];
	struct view_instance cur = {0};
	char target[CIDR_STRLEN];
	uint64_t deadline = now_ms() + r->wait_ms, backoff = 1000;
	int ret = 0;

	cidr_format(&st->range, target, sizeof(target));
	for (unsigned stale = 0;;) {
		struct gcp_operation op;
		json_t *inst = NULL;
		size_t n = 0;

		view_instance_free(&cur);
		ret = gcp_compute_get_instance(r->s.compute, planned->zone, planned->name, &inst,
					       err);
		if (ret == 0)
			ret = view_instance_from_json(NULL, inst, &cur, err);
		json_decref(inst);
		if (ret < 0)
			goto cleanup;
		if (!cur.aliases_valid) {
			ret = error_set(err, EBADMSG, "instance %s: an alias range does not parse",
					cur.name);
			goto cleanup;
		}
		/* Crash-safe re-runs: a step already done is not done twice. */
		if (st->kind == STEP_SET && cur.n_aliases &&
		    cidr_equal(&cur.aliases[0].range, &st->range) &&
		    same_ranges(cur.aliases + 1, cur.n_aliases - 1, planned->aliases,
				planned->n_aliases))
			goto done;
		if (!same_ranges(cur.aliases, cur.n_aliases, planned->aliases,
				 planned->n_aliases)) {
			log_warn(
			    "instance %s changed since it was read (its alias ranges differ): planning again",
			    cur.name);
			ret = REPLAN;
			goto cleanup;
		}
		if (cur.n_aliases + 1 > sizeof(ranges) / sizeof(ranges[0])) {
			ret = error_set(err, E2BIG, "instance %s has too many alias ranges",
					cur.name);
			goto cleanup;
		}
		/* The new list: the first range removed (clear), or the target put first (set). */
		if (st->kind == STEP_SET)
			ranges[n++] = (struct gcp_alias_range){
			    target, st->range_name[0] ? st->range_name : NULL};
		for (size_t i = st->kind == STEP_CLEAR ? 1 : 0; i < cur.n_aliases; i++)
			ranges[n++] = (struct gcp_alias_range){
			    cur.aliases[i].text,
			    cur.aliases[i].range_name[0] ? cur.aliases[i].range_name : NULL};

		ret = gcp_compute_set_alias_ranges(r->s.compute, cur.zone, cur.name, cur.nic_name,
						   cur.fingerprint, ranges, n, &op, err);
		if (ret == 0)
			ret = gcp_compute_wait(r->s.compute, &op, r->wait_ms, err);
		if (ret == -ESTALE && ++stale < MAX_STALE) {
			/* The fingerprint changed between our read and our write: read again. */
			log_warn(
			    "instance %s: fingerprint changed under us (412); re-reading (%u/%d)",
			    cur.name, stale, MAX_STALE);
			continue;
		}
		if (ret == -EADDRINUSE && st->kind == STEP_SET && now_ms() + backoff < deadline) {
			/*
			 * "When an alias IP range is removed from a VM, it can take up to a
			 * minute before the range can be used by another VM" (GCP alias IP
			 * documentation): the range we freed may not be usable yet.
			 */
			log_warn("instance %s: %s is still in use (%s); retrying in %llus",
				 cur.name, target, err->msg, (unsigned long long)backoff / 1000);
			sleep_ms(backoff);
			backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
			continue;
		}
		if (ret < 0)
			goto cleanup;
		log_info("instance %s (%s): %s %s alias %s", cur.name, cur.zone,
			 st->kind == STEP_CLEAR ? "cleared" : "set", cur.nic_name, target);
		break;
	}
done:
	/* What nic0 holds now, for the next step's expectations. */
	if (st->kind == STEP_CLEAR) {
		view_alias_remove_first(planned);
	} else {
		ret = view_alias_prepend(planned, &st->range, target, st->range_name);
		if (ret < 0)
			goto cleanup;
	}
	json_array_append_new(r->applied,
			      json_pack("{s:s, s:s, s:s, s:s}", "action",
					st->kind == STEP_CLEAR ? "clear" : "set", "instance",
					planned->name, "zone", planned->zone, "range", target));
	ret = 0;
cleanup:
	view_instance_free(&cur);
	return ret;
}

static int apply_gcp(struct repair *r, struct cluster_view *view, const struct repair_plan *p,
		     struct error *err)
{
	for (size_t i = 0; i < p->n_steps; i++) {
		int ret = apply_step(r, &view->instances[p->steps[i].instance], &p->steps[i], err);

		if (ret != 0)
			return ret;
	}
	return 0;
}

/* ---- --strategy node ---- */

static int wait_reregistered(struct repair *r, const char *name, const char *old_uid,
			     struct error *err)
{
	char path[512];
	uint64_t deadline = now_ms() + r->wait_ms;

	snprintf(path, sizeof(path), "/api/v1/nodes/%s", name);
	for (;;) {
		json_t *node = NULL;
		int ret = kube_get(r->s.kube, path, &node, err);

		if (ret == 0) {
			const char *uid = json_path_str(node, "metadata.uid");
			const char *pod = json_path_str(node, "spec.podCIDR");
			bool back = uid && strcmp(uid, old_uid) != 0 && pod && *pod;

			if (back)
				log_info("Node %s re-registered with podCIDR %s", name, pod);
			json_decref(node);
			if (back)
				return 0;
		} else if (ret != -ENOENT) {
			return ret;
		}
		if (now_ms() > deadline)
			return error_set(
			    err, ETIMEDOUT,
			    "Node %s did not re-register with a podCIDR within --wait-timeout",
			    name);
		sleep_ms(500);
	}
}

static int apply_node(struct repair *r, const struct cluster_view *view, const struct node_plan *p,
		      struct error *err)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct view_node *n = &view->nodes[p->nodes[i]];
		json_t *patch = json_pack("{s:{s:b}}", "spec", "unschedulable", 1), *node = NULL;
		struct kube_delete_options dopt = {.uid = n->uid};
		char path[512];
		int ret;

		snprintf(path, sizeof(path), "/api/v1/nodes/%s", n->name);
		/* Cordon only the incarnation we planned for: test the uid first. */
		ret = kube_get(r->s.kube, path, &node, err);
		if (ret == 0) {
			const char *uid = json_path_str(node, "metadata.uid");
			if (!uid || strcmp(uid, n->uid) != 0)
				ret = REPLAN;
		}
		json_decref(node);
		node = NULL;
		if (ret == 0)
			ret = kube_patch(r->s.kube, path, KUBE_PATCH_STRATEGIC, patch, &node, err);
		json_decref(patch);
		if (ret == 0) {
			/* Delete exactly what we cordoned: uid and resourceVersion preconditions.
			 */
			dopt.resource_version = json_path_str(node, "metadata.resourceVersion");
			ret = kube_delete(r->s.kube, path, &dopt, err);
		}
		json_decref(node);
		if (ret == -ESTALE || ret == -ENOENT || ret == REPLAN) {
			log_warn("Node %s changed since it was read: planning again", n->name);
			return REPLAN;
		}
		if (ret < 0)
			return ret;
		log_info("Node %s cordoned and deleted; waiting for it to re-register", n->name);
		json_array_append_new(
		    r->applied, json_pack("{s:s, s:s}", "action", "delete-node", "node", n->name));
		ret = wait_reregistered(r, n->name, n->uid, err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---- the command ---- */

static int parse_args(struct repair *r, int argc, char **argv)
{
	static const struct option long_options[] = {
	    API_LONG_OPTIONS,
	    {"strategy", required_argument, NULL, OPT_STRATEGY},
	    {"apply", no_argument, NULL, OPT_APPLY},
	    {"force", no_argument, NULL, OPT_FORCE},
	    {"node", required_argument, NULL, OPT_NODE},
	    {"wait-timeout", required_argument, NULL, OPT_WAIT_TIMEOUT},
	    {NULL, 0, NULL, 0},
	};
	static const char *const formats[] = {"table", "json", NULL};
	int c;

	r->wait_ms = 5 * 60 * 1000;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":" API_SHORT_OPTIONS, long_options, NULL)) != -1) {
		int h = api_opts_handle(&r->o, c, optarg, argv);

		if (h < 0)
			return -EINVAL;
		if (h > 0)
			continue;
		switch (c) {
		case OPT_STRATEGY:
			if (!strcmp(optarg, "gcp"))
				r->strategy = STRATEGY_GCP;
			else if (!strcmp(optarg, "node"))
				r->strategy = STRATEGY_NODE;
			else {
				log_error("--strategy '%s': want gcp or node", optarg);
				return -EINVAL;
			}
			break;
		case OPT_APPLY:
			r->apply = true;
			break;
		case OPT_FORCE:
			r->force = true;
			break;
		case OPT_NODE:
			r->node = optarg;
			break;
		case OPT_WAIT_TIMEOUT:
			if (parse_duration_ms(optarg, &r->wait_ms) < 0 || !r->wait_ms) {
				log_error(
				    "--wait-timeout '%s': want a positive duration such as 5m",
				    optarg);
				return -EINVAL;
			}
			break;
		}
	}
	if (r->o.help)
		return 0;
	if (optind < argc) {
		log_error("%s: unexpected argument (see --help)", argv[optind]);
		return -EINVAL;
	}
	if (r->force && r->strategy != STRATEGY_NODE) {
		log_error("--force applies to --strategy node only");
		return -EINVAL;
	}
	return api_opts_output(&r->o, formats);
}

/*
 * One round: read, plan, print, and with --apply carry out. Returns 0 when the round
 * ended (aligned, nothing it may do, or plan shown), REPLAN to go again, or -errno.
 * *pending: whether misaligned rows remain that this round did not fix.
 */
static int round_once(struct repair *r, int round, json_t **plan_out, bool *pending,
		      bool *did_something, struct error *err)
{
	struct cluster_view view = {0};
	struct alignment a = {0};
	struct repair_plan gp = {0};
	struct node_plan np = {0};
	struct controller_flags ccm, kcm;
	char ccm_why[256] = "";
	bool json = !strcmp(r->o.output, "json");
	int ret;

	*did_something = false;
	ret = cluster_view_load(&r->s, r->strategy == STRATEGY_GCP ? VIEW_LOAD_SUBNETS : 0, &view,
				err);
	if (ret < 0)
		goto cleanup;
	if (!report_has_node(&view, r->node)) {
		ret = error_set(err, ENOENT, "--node %s: no such Node", r->node);
		goto cleanup;
	}
	ret = alignment_compute(&view, &a);
	if (ret < 0)
		goto cleanup;
	narrow_rows(&view, &a, r->node);
	if (r->strategy == STRATEGY_GCP) {
		ret = repair_plan_gcp(&view, &a, &gp);
		if (ret < 0)
			goto cleanup;
		*pending = gp.n_steps || gp.n_refusals;
		if (round == 0 || gp.n_steps) {
			if (json) {
				json_decref(*plan_out);
				*plan_out = gcp_plan_json(&view, &gp);
			} else if (gp.n_steps || gp.n_refusals) {
				print_gcp_plan(&view, &gp);
				fflush(stdout);
			}
		}
		if (r->apply && gp.n_steps) {
			*did_something = true;
			ret = apply_gcp(r, &view, &gp, err);
		}
	} else {
		ret = plan_node(&view, &a, &np);
		if (ret < 0)
			goto cleanup;
		*pending = np.n || np.n_refusals;
		if (np.n) {
			ret = controllers_read(r->s.kube, &ccm, &kcm, err);
			if (ret < 0)
				goto cleanup;
			if (!controllers_cloud_allocator(&ccm, &kcm, ccm_why, sizeof(ccm_why)) &&
			    !r->force) {
				/* A refusal, not a failure to check: exit 1 like other refusals. */
				ret = error_set(
				    err, EPERM,
				    "refusing --strategy node: %s, so a re-registered Node would come back with another wrong podCIDR (fix the CCM, or pass --force)",
				    ccm_why);
				goto cleanup;
			}
		}
		if (round == 0 || np.n) {
			if (json) {
				json_decref(*plan_out);
				*plan_out = node_plan_json(&view, &np);
			} else if (np.n || np.n_refusals) {
				print_node_plan(&view, &np,
						ccm_why[0] ? ccm_why : "nothing to delete");
				fflush(stdout);
			}
		}
		if (r->apply && np.n) {
			*did_something = true;
			ret = apply_node(r, &view, &np, err);
		}
	}
	if (!r->apply && !json && !*pending)
		printf("Nothing to do: every Node is aligned.\n");
	else if (!r->apply && !json && (gp.n_steps || np.n))
		printf("Run again with --apply to make these changes.\n");
cleanup:
	repair_plan_free(&gp);
	node_plan_free(&np);
	alignment_free(&a);
	cluster_view_free(&view);
	return ret;
}

/* After --apply: read everything again and report as verify does. */
static int final_verify(struct repair *r, json_t *doc, struct error *err)
{
	struct cluster_view view = {0};
	struct alignment a = {0};
	bool aligned;
	int ret;

	ret = cluster_view_load(&r->s, 0, &view, err);
	if (ret == 0)
		ret = alignment_compute(&view, &a);
	if (ret < 0)
		goto cleanup;
	if (doc) {
		aligned = true;
		for (size_t i = 0; i < a.n_rows; i++)
			if (!r->node || !strcmp(view.nodes[a.rows[i].node].name, r->node))
				aligned &= a.rows[i].status == ALIGN_OK;
		json_object_set_new(doc, "aligned", json_boolean(aligned));
	} else {
		printf("\nAfter repair:\n");
		aligned = report_alignment(stdout, &view, &a, "table", r->node);
	}
	ret = aligned ? 0 : 1;
cleanup:
	alignment_free(&a);
	cluster_view_free(&view);
	return ret;
}

int repair_main(int argc, char **argv)
{
	struct repair r = {0};
	struct error err = {0};
	json_t *plan = NULL;
	bool pending = false, did = false;
	int ret, exit_code = 2;

	if (parse_args(&r, argc, argv) < 0)
		return 2;
	if (r.o.help) {
		fputs(usage, stdout);
		return 0;
	}
	r.applied = json_array();
	if (session_open(&r.s, &r.o, SESSION_GCP | SESSION_KUBE, &err) < 0) {
		log_error("%s", err.msg);
		goto cleanup;
	}
	for (int round = 0;; round++) {
		ret = round_once(&r, round, &plan, &pending, &did, &err);
		if (ret < 0) {
			log_error("%s", err.msg);
			if (ret == -EPERM)
				exit_code = 1;
			goto cleanup;
		}
		if (!r.apply)
			break;
		/* After a round that changed things, the next round re-reads and re-checks. */
		if ((ret == REPLAN || did) && round + 1 < MAX_ROUNDS)
			continue;
		if (ret == REPLAN) {
			log_error(
			    "the cluster kept changing under the repair; gave up after %d rounds",
			    MAX_ROUNDS);
			goto cleanup;
		}
		break;
	}
	if (r.apply) {
		json_t *doc = !strcmp(r.o.output, "json") ? json_object() : NULL;

		ret = final_verify(&r, doc, &err);
		if (doc) {
			json_object_set(doc, "plan", plan ? plan : json_null());
			json_object_set(doc, "applied", r.applied);
			json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
			json_decref(doc);
		}
		if (ret < 0) {
			log_error("%s", err.msg);
			goto cleanup;
		}
		exit_code = ret;
	} else {
		if (plan) {
			json_object_set_new(plan, "pending", json_boolean(pending));
			json_dumpf(plan, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
		}
		exit_code = pending ? 1 : 0;
	}
cleanup:
	session_log_stats(&r.s);
	session_close(&r.s);
	json_decref(plan);
	json_decref(r.applied);
	return exit_code;
}
