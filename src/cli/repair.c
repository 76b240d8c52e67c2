/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp repair: restore PodCIDR <-> alias IP alignment.
 *
 *   --strategy gcp (default, the design note's recovery): move each instance's pods alias
 *     to its Node's podCIDR. GCP refuses to replace a range in one request, so each move
 *     is clear-then-set, each step waited on; only the alias of the secondary range that
 *     holds the target is cleared, every other range of nic0 is sent unchanged. The
 *     fingerprint is re-read before every step and a stale one (412) is re-read and
 *     retried; a state that differs from the plan's assumptions is re-planned from fresh
 *     lists (bounded). A failed set puts back what its instance had; what cannot be put
 *     back is named with the command that finishes the job.
 *   --strategy node (repair_node.c): drain the Node, delete it, reset its instance so that
 *     its kubelet registers it again and the CCM's CloudAllocator copies the alias.
 *
 * Before the first change the plan and the prior aliases of every instance it touches go
 * to a journal (--journal, default $XDG_STATE_HOME/talos-gcp/repair-PROJECT.json, 0600),
 * updated after every step; the next `repair --apply` finds an unfinished journal and
 * completes it (or rolls back what is no longer wanted) before planning anew.
 *
 * Without --apply it prints the plan and changes nothing. With --apply it carries the plan
 * out (asking first on a terminal, unless --yes), verifies again, and exits 0 only when
 * aligned. -o json prints one document at the end, whatever happened: the plan, the
 * applied, failed and skipped steps, and the error if any.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/alignment.h"
#include "cli/controllers.h"
#include "cli/journal.h"
#include "cli/options.h"
#include "cli/repair.h"
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
    "                            podCIDR (clear, then set; other ranges stay); node: drain the\n"
    "                            Node, delete it and reset its instance so that it registers\n"
    "                            again and the CCM copies the alias\n"
    "  --apply                   make the changes (default: print the plan only)\n"
    "  --yes                     do not ask before --apply on a terminal\n"
    "  --force                   --strategy node even when the CCM is not seen to run\n"
    "                            CloudAllocator as the only PodCIDR allocator, and even when\n"
    "                            a Node runs pods without a controller (they are lost)\n"
    "  --node NAME               repair only this Node\n"
    "  --selector LABELS         repair only the Nodes with these labels (k=v,k2!=v2,...)\n"
    "  --max-changes N           refuse to change more than N instances (gcp) or Nodes (node)\n"
    "  --free-orphans            also free the ranges that instances without a Node hold\n"
    "                            in the pods range (verify: orphan)\n"
    "  --reset-after             gcp: then reset each changed instance, one at a time,\n"
    "                            waiting for its Node to be Ready again\n"
    "  --journal FILE            the repair journal (default:\n"
    "                            $XDG_STATE_HOME/talos-gcp/repair-PROJECT.json)\n"
    "  --wait-timeout DURATION   per operation / Node to come back (default 5m)\n"
    "  --drain-timeout DURATION  node: evicting a Node's pods (default 5m)\n" API_OPTIONS_HELP
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
	OPT_DRAIN_TIMEOUT,
	OPT_YES,
	OPT_SELECTOR,
	OPT_MAX_CHANGES,
	OPT_FREE_ORPHANS,
	OPT_RESET_AFTER,
	OPT_JOURNAL,
};

/* Re-plans after the world moved under us; each round re-reads both lists. */
#define MAX_ROUNDS 3

static const char *rfc3339_now(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* ---- the journal of this run ---- */

int repair_journal_add(struct repair *r, json_t *steps, struct error *err)
{
	json_t *all, *step;
	char now[32];
	size_t i;

	if (!r->journal) {
		r->journal = json_pack("{s:i, s:s, s:s, s:s, s:i, s:[], s:[]}", "version",
				       JOURNAL_VERSION, "project", r->s.project, "strategy",
				       r->strategy == STRATEGY_GCP ? "gcp" : "node", "started",
				       rfc3339_now(now, sizeof(now)), "pid", (int)getpid(),
				       "instances", "steps");
		if (!r->journal) {
			json_decref(steps);
			return error_set(err, ENOMEM, "out of memory");
		}
	}
	all = json_object_get(r->journal, "steps");
	json_array_foreach(steps, i, step)
	{
		json_t *prior = json_object_get(step, "prior"), *insts, *v;
		const char *zone = json_str(step, "zone"), *name = json_str(step, "instance");
		bool seen = false;
		size_t j;

		json_object_set_new(step, "state", json_string("pending"));
		json_array_append(all, step);
		if (!prior || !zone || !name)
			continue;
		/* Every touched instance's aliases before this run changed anything. */
		insts = json_object_get(r->journal, "instances");
		json_array_foreach(insts, j, v) seen |= !strcmp(json_str(v, "zone") ?: "", zone) &&
							!strcmp(json_str(v, "name") ?: "", name);
		if (!seen)
			json_array_append_new(insts, json_pack("{s:s, s:s, s:s, s:O}", "zone", zone,
							       "name", name, "nic",
							       json_str(step, "nic") ?: "nic0",
							       "aliases", prior));
	}
	json_decref(steps);
	return journal_write(r->journal_path, r->journal, err);
}

static json_t *step_record(const json_t *step, const char *error)
{
	json_t *rec = json_deep_copy(step);

	json_object_del(rec, "prior");
	json_object_del(rec, "state");
	json_object_del(rec, "round");
	if (error)
		json_object_set_new(rec, "error", json_string(error));
	return rec;
}

int repair_journal_state(struct repair *r, json_t *step, const char *state, const char *error,
			 struct error *err)
{
	json_object_set_new(step, "state", json_string(state));
	if (error)
		json_object_set_new(step, "error", json_string(error));
	if (!strcmp(state, "done")) {
		json_array_append_new(r->applied, step_record(step, NULL));
	} else if (!strcmp(state, "rolled-back")) {
		/* What undid it: a cleared range put back, a cordon lifted. */
		const char *action = json_str(step, "action") ?: "";
		json_t *rec = step_record(step, NULL);

		json_object_set_new(rec, "action",
				    json_string(!strcmp(action, "clear")    ? "put-back"
						: !strcmp(action, "cordon") ? "uncordon"
									    : "undo"));
		json_array_append_new(r->applied, rec);
	}
	if (!strcmp(state, "failed"))
		json_array_append_new(r->failed, step_record(step, error));
	else if (!strcmp(state, "skipped"))
		json_array_append_new(r->skipped, step_record(step, error));
	return r->journal ? journal_write(r->journal_path, r->journal, err) : 0;
}

/* Removes the journal once nothing it describes is left to do. */
static int journal_finish(struct repair *r, struct error *err)
{
	if (!r->journal || journal_unfinished(r->journal))
		return 0;
	json_decref(r->journal);
	r->journal = NULL;
	return journal_remove(r->journal_path, err);
}

/* ---- alias lists (nic0's aliasIpRanges as sent) ---- */
#define MAX_ALIASES 128

struct alias_list {
	size_t n;
	struct {
		struct cidr range;
		char text[CIDR_STRLEN];
		char name[64];
	} a[MAX_ALIASES];
};

static void list_of_view(const struct view_instance *in, struct alias_list *l)
{
	l->n = 0;
	for (size_t k = 0; k < in->n_aliases && l->n < MAX_ALIASES; k++, l->n++) {
		l->a[l->n].range = in->aliases[k].range;
		cidr_format(&in->aliases[k].range, l->a[l->n].text, sizeof(l->a[l->n].text));
		snprintf(l->a[l->n].name, sizeof(l->a[l->n].name), "%s", in->aliases[k].range_name);
	}
}

/* From the journal's [{"ipCidrRange", "subnetworkRangeName"}]. */
static int list_of_json(const json_t *arr, struct alias_list *l)
{
	json_t *v;
	size_t i;

	l->n = 0;
	json_array_foreach(arr, i, v)
	{
		if (l->n == MAX_ALIASES ||
		    cidr_parse(json_str(v, "ipCidrRange") ?: "", &l->a[l->n].range,
			       CIDR_STRICT | CIDR_ALLOW_BARE_IP) < 0)
			return -EBADMSG;
		cidr_format(&l->a[l->n].range, l->a[l->n].text, sizeof(l->a[l->n].text));
		snprintf(l->a[l->n].name, sizeof(l->a[l->n].name), "%s",
			 json_str(v, "subnetworkRangeName") ?: "");
		l->n++;
	}
	return 0;
}

static json_t *list_json(const struct alias_list *l)
{
	json_t *arr = json_array();

	for (size_t k = 0; k < l->n; k++)
		json_array_append_new(arr, json_pack("{s:s, s:s?}", "ipCidrRange", l->a[k].text,
						     "subnetworkRangeName",
						     l->a[k].name[0] ? l->a[k].name : NULL));
	return arr;
}

static bool list_equal(const struct alias_list *x, const struct alias_list *y)
{
	if (x->n != y->n)
		return false;
	for (size_t k = 0; k < x->n; k++)
		if (!cidr_equal(&x->a[k].range, &y->a[k].range))
			return false;
	return true;
}

static ssize_t list_find(const struct alias_list *l, const struct cidr *range)
{
	for (size_t k = 0; k < l->n; k++)
		if (cidr_equal(&l->a[k].range, range))
			return (ssize_t)k;
	return -1;
}

static void list_remove(struct alias_list *l, const struct cidr *range)
{
	ssize_t k = list_find(l, range);

	if (k < 0)
		return;
	memmove(&l->a[k], &l->a[k + 1], (l->n - (size_t)k - 1) * sizeof(l->a[0]));
	l->n--;
}

static int list_prepend(struct alias_list *l, const struct cidr *range, const char *name)
{
	if (l->n == MAX_ALIASES)
		return -E2BIG;
	memmove(&l->a[1], &l->a[0], l->n * sizeof(l->a[0]));
	l->a[0].range = *range;
	cidr_format(range, l->a[0].text, sizeof(l->a[0].text));
	snprintf(l->a[0].name, sizeof(l->a[0].name), "%s", name ? name : "");
	l->n++;
	return 0;
}

/* The instance as it is now (nic0). */
static int read_instance(struct repair *r, const char *zone, const char *name,
			 struct view_instance *out, struct error *err)
{
	json_t *inst = NULL;
	int ret = gcp_compute_get_instance(r->s.compute, zone, name, &inst, err);

	if (ret == 0)
		ret = view_instance_from_json(NULL, inst, out, err);
	json_decref(inst);
	if (ret == 0 && !out->aliases_valid) {
		view_instance_free(out);
		ret = error_set(err, EBADMSG, "instance %s: an alias range does not parse", name);
	}
	return ret;
}

/* updateNetworkInterface with exactly l, at cur's fingerprint, and waits for it. */
static int list_send(struct repair *r, const struct view_instance *cur, const struct alias_list *l,
		     struct error *err)
{
	struct gcp_alias_range ranges[MAX_ALIASES];
	struct gcp_operation op;
	int ret;

	for (size_t k = 0; k < l->n; k++)
		ranges[k] =
		    (struct gcp_alias_range){l->a[k].text, l->a[k].name[0] ? l->a[k].name : NULL};
	ret = gcp_compute_set_alias_ranges(r->s.compute, cur->zone, cur->name, cur->nic_name,
					   cur->fingerprint, ranges, l->n, &op, err);
	if (ret == 0)
		ret = gcp_compute_wait(r->s.compute, &op, r->wait_ms, err);
	return ret;
}

/*
 * Puts nic0 of zone/name back to exactly prior: what is not in prior is removed first (one
 * update), then what is missing is added (another): GCP adds or removes, never replaces.
 */
static int restore_instance(struct repair *r, const char *zone, const char *name,
			    const struct alias_list *prior, struct error *err)
{
	for (unsigned attempt = 0; attempt < 2 * MAX_STALE; attempt++) {
		struct view_instance cur = {0};
		struct alias_list now, next;
		bool extra = false;
		int ret = read_instance(r, zone, name, &cur, err);

		if (ret < 0)
			return ret;
		list_of_view(&cur, &now);
		if (list_equal(&now, prior)) {
			view_instance_free(&cur);
			return 0;
		}
		next.n = 0;
		for (size_t k = 0; k < now.n; k++) {
			if (list_find(prior, &now.a[k].range) < 0)
				extra = true;
			else
				next.a[next.n++] = now.a[k];
		}
		ret = list_send(r, &cur, extra ? &next : prior, err);
		view_instance_free(&cur);
		if (ret == -ESTALE || ret == 0)
			continue;
		return ret;
	}
	return error_set(err, ESTALE, "instance %s: its aliases kept changing", name);
}

/* ---- planning: which Nodes ---- */

static int on_name(void *arg, json_t *item)
{
	const char *name = json_path_str(item, "metadata.name");

	if (name)
		json_object_set_new(arg, name, json_true());
	return 0;
}

/* Keeps only the rows of --node / --selector (others become ok: not ours to touch). */
static int narrow_rows(struct repair *r, const struct cluster_view *view, struct alignment *a,
		       struct error *err)
{
	json_t *names = NULL;
	int ret;

	if (r->selector) {
		static const char *const fields[] = {"metadata.name", NULL};
		struct kube_list_options opt = {
		    .label_selector = r->selector, .limit = KUBE_DEFAULT_LIMIT, .fields = fields};

		names = json_object();
		ret = kube_list(r->s.kube, "/api/v1/nodes", &opt, on_name, names, NULL, 0, err);
		if (ret < 0) {
			json_decref(names);
			return error_prefix(err, "--selector %s", r->selector);
		}
	}
	for (size_t i = 0; i < a->n_rows; i++) {
		const char *name = view->nodes[a->rows[i].node].name;

		if ((r->node && strcmp(name, r->node)) || (names && !json_object_get(names, name)))
			a->rows[i].status = ALIGN_OK;
	}
	json_decref(names);
	return 0;
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

static void print_orphans(const struct cluster_view *view, const struct alignment *a, bool freeing)
{
	if (!a->n_orphans || freeing)
		return;
	printf("Orphans (%zu, not changed; --free-orphans frees them):\n", a->n_orphans);
	for (size_t i = 0; i < a->n_orphans; i++)
		printf("  %s: %s\n", view->instances[a->orphans[i].instance].name,
		       a->orphans[i].reason);
}

static const char *step_node(const struct cluster_view *view, const struct repair_step *st)
{
	return st->node == STEP_NO_NODE ? NULL : view->nodes[st->node].name;
}

static void print_gcp_plan(const struct cluster_view *view, const struct alignment *a,
			   const struct repair_plan *p, bool freeing)
{
	char text[CIDR_STRLEN];

	printf("Plan (strategy gcp): %zu node%s to align in %zu step%s\n", p->n_nodes_fixed,
	       p->n_nodes_fixed == 1 ? "" : "s", p->n_steps, p->n_steps == 1 ? "" : "s");
	for (size_t i = 0; i < p->n_steps; i++) {
		const struct repair_step *st = &p->steps[i];
		const struct view_instance *in = &view->instances[st->instance];

		cidr_format(&st->range, text, sizeof(text));
		if (st->kind == STEP_CLEAR)
			printf("  %2zu. clear  %s (%s) %s alias %s%s%s%s\n", i + 1, in->name,
			       in->zone, in->nic_name, st->range_name, st->range_name[0] ? ":" : "",
			       text, st->orphan ? "  (orphan: no Node)" : "");
		else
			printf("  %2zu. set    %s (%s) %s alias %s:%s  = Node %s's podCIDR\n",
			       i + 1, in->name, in->zone, in->nic_name, st->range_name, text,
			       view->nodes[st->node].name);
	}
	print_refusals(view, p->refusals, p->n_refusals);
	print_orphans(view, a, freeing);
}

static void print_node_plan(const struct cluster_view *view, const struct node_plan *p,
			    const char *ccm_why)
{
	printf("Plan (strategy node): %zu Node%s to drain, delete and bring back by an instance "
	       "reset, one at a time\n",
	       p->n, p->n == 1 ? "" : "s");
	printf("  (%s)\n", ccm_why);
	for (size_t i = 0; i < p->n; i++) {
		const struct view_node *n = &view->nodes[p->nodes[i]];
		printf("  %2zu. cordon, drain and delete Node %s (podCIDR %s; uid %s), reset its "
		       "instance, wait for it Ready with its alias, uncordon\n",
		       i + 1, n->name, n->pod_cidr, n->uid);
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

static json_t *orphans_json(const struct cluster_view *view, const struct alignment *a)
{
	json_t *arr = json_array();
	char text[CIDR_STRLEN];

	for (size_t i = 0; i < a->n_orphans; i++) {
		const struct view_instance *in = &view->instances[a->orphans[i].instance];

		json_array_append_new(
		    arr, json_pack("{s:s, s:s, s:s, s:s}", "instance", in->name, "zone", in->zone,
				   "range", cidr_format(&a->orphans[i].range, text, sizeof(text)),
				   "reason", a->orphans[i].reason));
	}
	return arr;
}

/* One gcp step as the journal and -o json record it. */
static json_t *gcp_step_json(const struct cluster_view *view, const struct repair_step *st,
			     int round)
{
	const struct view_instance *in = &view->instances[st->instance];
	const char *node = step_node(view, st);
	char text[CIDR_STRLEN];
	struct alias_list prior;
	json_t *j;

	list_of_view(in, &prior);
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:i}", "action",
		      st->kind == STEP_CLEAR ? "clear" : "set", "instance", in->name, "zone",
		      in->zone, "nic", in->nic_name, "range",
		      cidr_format(&st->range, text, sizeof(text)), "rangeName",
		      st->range_name[0] ? st->range_name : NULL, "node", node, "nodeUid",
		      node ? view->nodes[st->node].uid : NULL, "round", round);
	if (j && st->orphan)
		json_object_set_new(j, "orphan", json_true());
	if (j)
		json_object_set_new(j, "prior", list_json(&prior));
	return j;
}

static json_t *gcp_plan_json(const struct cluster_view *view, const struct alignment *a,
			     const struct repair_plan *p)
{
	json_t *steps = json_array();

	for (size_t i = 0; i < p->n_steps; i++) {
		json_t *s = gcp_step_json(view, &p->steps[i], 0);

		json_object_del(s, "prior");
		json_object_del(s, "round");
		json_array_append_new(steps, s);
	}
	return json_pack("{s:s, s:o, s:o, s:o}", "strategy", "gcp", "steps", steps, "refused",
			 refusals_json(view, p->refusals, p->n_refusals), "orphans",
			 orphans_json(view, a));
}

static json_t *node_plan_json(const struct cluster_view *view, const struct node_plan *p)
{
	json_t *steps = json_array();

	for (size_t i = 0; i < p->n; i++)
		json_array_append_new(steps, json_pack("{s:s, s:s}", "action", "recreate-node",
						       "node", view->nodes[p->nodes[i]].name));
	return json_pack("{s:s, s:o, s:o}", "strategy", "node", "steps", steps, "refused",
			 refusals_json(view, p->refusals, p->n_refusals));
}

/* ---- --strategy gcp: one step ---- */

/*
 * Carries out one step on the instance as it is now. planned is what the plan believes
 * nic0's aliases are before the step; anything else (but the step already done) means
 * someone else moved: REPLAN. On success planned is updated to the aliases after the step.
 */
static int apply_step(struct repair *r, struct view_instance *planned, const struct repair_step *st,
		      struct error *err)
{
	struct alias_list before, after;
	char target[CIDR_STRLEN];
	uint64_t deadline = now_ms() + r->wait_ms, backoff = 1000;
	int ret = 0;

	cidr_format(&st->range, target, sizeof(target));
	list_of_view(planned, &before);
	after = before;
	if (st->kind == STEP_CLEAR)
		list_remove(&after, &st->range);
	else if (list_prepend(&after, &st->range, st->range_name) < 0)
		return error_set(err, E2BIG, "instance %s has too many alias ranges",
				 planned->name);
	for (unsigned stale = 0;;) {
		struct view_instance cur = {0};
		struct alias_list now;

		ret = read_instance(r, planned->zone, planned->name, &cur, err);
		if (ret < 0)
			return ret;
		list_of_view(&cur, &now);
		/* Crash-safe re-runs: a step already done is not done twice. */
		if (list_equal(&now, &after)) {
			view_instance_free(&cur);
			break;
		}
		if (!list_equal(&now, &before)) {
			log_warn(
			    "instance %s changed since it was read (its alias ranges differ): planning again",
			    cur.name);
			view_instance_free(&cur);
			return REPLAN;
		}
		ret = list_send(r, &cur, &after, err);
		if (ret == -ESTALE && ++stale < MAX_STALE) {
			/* The fingerprint changed between our read and our write: read again. */
			log_warn(
			    "instance %s: fingerprint changed under us (412); re-reading (%u/%d)",
			    cur.name, stale, MAX_STALE);
			view_instance_free(&cur);
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
			view_instance_free(&cur);
			sleep_ms(backoff);
			backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
			continue;
		}
		if (ret == 0)
			log_info("instance %s (%s): %s %s alias %s", cur.name, cur.zone,
				 st->kind == STEP_CLEAR ? "cleared" : "set", cur.nic_name, target);
		view_instance_free(&cur);
		if (ret < 0)
			return ret;
		break;
	}
	/* What nic0 holds now, for the next step's expectations. */
	if (st->kind == STEP_CLEAR)
		view_alias_remove(planned, &st->range);
	else
		ret = view_alias_prepend(planned, &st->range, target, st->range_name);
	return ret;
}

/*
 * A change failed: every instance of this round whose range was cleared and not set again
 * gets back what it had (its "prior"). What cannot be put back is named, with what finishes
 * the job. Returns how many were left without their range.
 */
static size_t put_back(struct repair *r, json_t *steps, size_t failed_at, char *left, size_t len)
{
	size_t n_left = 0, off = 0;
	json_t *st;
	size_t i;

	left[0] = '\0';
	json_array_foreach(steps, i, st)
	{
		const char *zone = json_str(st, "zone"), *name = json_str(st, "instance");
		bool set = false;
		struct alias_list prior;
		struct error e = {0};
		json_t *other;
		size_t j;

		if (i > failed_at || strcmp(json_str(st, "action") ?: "", "clear") ||
		    strcmp(json_str(st, "state") ?: "", "done"))
			continue;
		json_array_foreach(steps, j, other)
		{
			if (!strcmp(json_str(other, "action") ?: "", "set") &&
			    !strcmp(json_str(other, "instance") ?: "", name) &&
			    !strcmp(json_str(other, "zone") ?: "", zone) &&
			    !strcmp(json_str(other, "state") ?: "", "done"))
				set = true;
		}
		if (set || json_object_get(st, "putBack"))
			continue;
		json_object_set_new(st, "putBack", json_true());
		if (list_of_json(json_object_get(st, "prior"), &prior) < 0 ||
		    restore_instance(r, zone, name, &prior, &e) < 0) {
			int w;

			log_error(
			    "instance %s (zone %s) is left without its alias range %s%s%s: %s; run 'talos-gcp repair --apply' to finish from the journal %s (by hand: gcloud compute instances network-interfaces update %s --zone %s --aliases %s%s%s)",
			    name, zone, json_str(st, "rangeName") ?: "",
			    json_str(st, "rangeName") ? ":" : "", json_str(st, "range"),
			    e.msg[0] ? e.msg : "unreadable prior aliases", r->journal_path, name,
			    zone, json_str(st, "rangeName") ?: "",
			    json_str(st, "rangeName") ? ":" : "", json_str(st, "range"));
			w = snprintf(left + off, len - off, "%s%s (zone %s, was %s)",
				     n_left ? ", " : "", name, zone, json_str(st, "range"));
			if (w > 0 && (size_t)w < len - off)
				off += (size_t)w;
			n_left++;
			json_object_set_new(st, "leftWithout", json_true());
			continue;
		}
		log_warn("instance %s (zone %s): put back %s, which the failed change had cleared",
			 name, zone, json_str(st, "range"));
		repair_journal_state(r, st, "rolled-back", NULL, &e);
	}
	return n_left;
}

static int apply_gcp(struct repair *r, struct cluster_view *view, const struct repair_plan *p,
		     int round, struct error *err)
{
	json_t *steps = json_array(), *jsteps;
	size_t first;
	int ret;

	for (size_t i = 0; i < p->n_steps; i++)
		json_array_append_new(steps, gcp_step_json(view, &p->steps[i], round));
	first = r->journal ? json_array_size(json_object_get(r->journal, "steps")) : 0;
	ret = repair_journal_add(r, steps, err);
	if (ret < 0)
		return ret;
	jsteps = json_object_get(r->journal, "steps");
	for (size_t i = 0; i < p->n_steps; i++) {
		json_t *st = json_array_get(jsteps, first + i);
		const struct repair_step *ps = &p->steps[i];
		struct error e = {0};
		char left[ERROR_MSG_MAX];

		ret = apply_step(r, &view->instances[ps->instance], ps, err);
		if (ret == 0) {
			ret = repair_journal_state(r, st, "done", NULL, err);
			if (ret < 0)
				return ret;
			if (ps->kind == STEP_SET)
				json_array_append_new(
				    r->changed_nodes,
				    json_pack("{s:s, s:s, s:s}", "zone",
					      view->instances[ps->instance].zone, "instance",
					      view->instances[ps->instance].name, "node",
					      view->nodes[ps->node].name));
			continue;
		}
		/* Replanned or failed: the rest of this round is not done. */
		if (ret == REPLAN)
			repair_journal_state(r, st, "skipped",
					     "the instance changed: planned again", &e);
		else
			repair_journal_state(r, st, "failed", err->msg, &e);
		for (size_t k = i + 1; k < p->n_steps; k++)
			repair_journal_state(
			    r, json_array_get(jsteps, first + k), "skipped",
			    ret == REPLAN ? "planned again" : "an earlier step failed", &e);
		if (ret == REPLAN)
			return REPLAN;
		/* Everything this round cleared and did not set again goes back. */
		{
			json_t *round_steps = json_array();
			size_t n_left;

			for (size_t k = 0; k < p->n_steps; k++)
				json_array_append(round_steps, json_array_get(jsteps, first + k));
			n_left = put_back(r, round_steps, p->n_steps, left, sizeof(left));
			json_decref(round_steps);
			journal_write(r->journal_path, r->journal, &e);
			if (n_left) {
				char why[ERROR_MSG_MAX];

				snprintf(why, sizeof(why), "%s", err->msg);
				return error_set(
				    err, EIO,
				    "%s; left without their alias range: %s; run 'talos-gcp repair --apply' to finish from the journal %s",
				    why, left, r->journal_path);
			}
		}
		return ret;
	}
	return 0;
}

/* ---- an unfinished journal: complete it, or roll back what is no longer wanted ---- */

/* Does the Node still want range (same incarnation, same podCIDR)? */
static bool set_still_wanted(struct repair *r, const json_t *st)
{
	const char *node = json_str(st, "node"), *uid = json_str(st, "nodeUid");
	char path[512];
	json_t *n = NULL;
	bool want;

	if (!node)
		return false;
	snprintf(path, sizeof(path), "/api/v1/nodes/%s", node);
	if (kube_get(r->s.kube, path, &n, NULL) < 0)
		return false;
	want = (!uid || !strcmp(json_path_str(n, "metadata.uid") ?: "", uid)) &&
	       !strcmp(json_path_str(n, "spec.podCIDR") ?: "", json_str(st, "range") ?: "");
	json_decref(n);
	return want;
}

/* One journaled gcp step, as the instance is now (idempotent). */
static int resume_step(struct repair *r, const json_t *st, struct error *err)
{
	const char *zone = json_str(st, "zone"), *name = json_str(st, "instance");
	bool set = !strcmp(json_str(st, "action") ?: "", "set");
	struct cidr range;

	if (cidr_parse(json_str(st, "range") ?: "", &range, CIDR_STRICT | CIDR_ALLOW_BARE_IP) < 0)
		return error_set(err, EBADMSG, "journal: range '%s' is not a CIDR range",
				 json_str(st, "range") ?: "");
	for (unsigned stale = 0; stale < MAX_STALE; stale++) {
		struct view_instance cur = {0};
		struct alias_list now;
		int ret = read_instance(r, zone, name, &cur, err);

		if (ret < 0)
			return ret;
		list_of_view(&cur, &now);
		if ((list_find(&now, &range) >= 0) == set) {
			view_instance_free(&cur);
			return 0; /* done already */
		}
		if (set)
			list_prepend(&now, &range, json_str(st, "rangeName"));
		else
			list_remove(&now, &range);
		ret = list_send(r, &cur, &now, err);
		view_instance_free(&cur);
		if (ret != -ESTALE)
			return ret;
	}
	return error_set(err, ESTALE, "instance %s: its fingerprint kept changing", name);
}

static int gcp_resume(struct repair *r, json_t *journal, struct error *err)
{
	json_t *steps = json_object_get(journal, "steps"), *st, *unwanted = json_object();
	json_t *rolled = json_object();
	char left[ERROR_MSG_MAX] = "", key[400];
	size_t i, n_left = 0, off = 0, n_failed = 0;
	int ret = 0;

	/*
	 * An instance whose failed change was put back already starts over: the next round
	 * plans it from what it has. One whose pending sets are no longer wanted is rolled
	 * back, not completed.
	 */
	json_array_foreach(steps, i, st)
	{
		snprintf(key, sizeof(key), "%s/%s", json_str(st, "zone"), json_str(st, "instance"));
		if (!strcmp(json_str(st, "state"), "rolled-back"))
			json_object_set_new(rolled, key, json_true());
	}
	json_array_foreach(steps, i, st)
	{
		const char *state = json_str(st, "state");

		if (strcmp(state, "pending") && strcmp(state, "failed"))
			continue;
		snprintf(key, sizeof(key), "%s/%s", json_str(st, "zone"), json_str(st, "instance"));
		if (!strcmp(json_str(st, "action"), "set") && !json_object_get(rolled, key) &&
		    !set_still_wanted(r, st))
			json_object_set_new(unwanted, key, json_true());
	}
	json_array_foreach(steps, i, st)
	{
		const char *state = json_str(st, "state"), *zone = json_str(st, "zone"),
			   *name = json_str(st, "instance");
		struct error e = {0};

		if (strcmp(state, "pending") && strcmp(state, "failed"))
			continue;
		snprintf(key, sizeof(key), "%s/%s", zone, name);
		if (json_object_get(rolled, key)) {
			repair_journal_state(r, st, "skipped", "put back earlier: planned again",
					     &e);
			continue;
		}
		if (json_object_get(unwanted, key)) {
			struct alias_list prior;

			/* Once per instance: back to what it had before that round. */
			if (json_object_get(unwanted, key) == json_true()) {
				json_object_set_new(unwanted, key, json_false());
				if (list_of_json(json_object_get(st, "prior"), &prior) < 0 ||
				    restore_instance(r, zone, name, &prior, &e) < 0) {
					int w = snprintf(left + off, sizeof(left) - off,
							 "%s%s (zone %s): %s", n_left ? ", " : "",
							 name, zone, e.msg);
					if (w > 0 && (size_t)w < sizeof(left) - off)
						off += (size_t)w;
					n_left++;
					repair_journal_state(r, st, "failed", e.msg, &e);
					continue;
				}
				log_info("journal: instance %s (zone %s) rolled back (its Node no "
					 "longer wants %s)",
					 name, zone, json_str(st, "range"));
			}
			repair_journal_state(r, st, "rolled-back", NULL, &e);
			continue;
		}
		/* A --reset-after reset not known to be done: done now (a reboot more is safe). */
		if (!strcmp(json_str(st, "action"), "reset"))
			ret = reset_instance(r, zone, name, &e);
		else
			ret = resume_step(r, st, &e);
		if (ret < 0) {
			n_failed++;
			log_error("journal: %s %s on instance %s (zone %s): %s",
				  json_str(st, "action"), json_str(st, "range"), name, zone, e.msg);
			repair_journal_state(r, st, "failed", e.msg, &e);
			continue;
		}
		log_info("journal: %s %s on instance %s (zone %s): done", json_str(st, "action"),
			 json_str(st, "range") ?: "", name, zone);
		repair_journal_state(r, st, "done", NULL, &e);
	}
	json_decref(unwanted);
	json_decref(rolled);
	if (n_left || n_failed)
		return error_set(err, EIO,
				 "the unfinished repair in %s could not be finished%s%s; nothing "
				 "else was changed (run 'talos-gcp repair --apply' again)",
				 r->journal_path, n_left ? "; left without their range: " : "",
				 left);
	return 0;
}

static bool confirmed(struct repair *r, const char *question);

/* Finds an unfinished journal: without --apply it is reported, with --apply finished. */
static int journal_resume(struct repair *r, bool *unfinished, struct error *err)
{
	char question[sizeof(r->journal_path) + 64];
	json_t *doc = NULL;
	int ret;

	*unfinished = false;
	ret = journal_read(r->journal_path, &doc, err);
	if (ret < 0 || !doc)
		return ret;
	if (strcmp(json_str(doc, "project"), r->s.project)) {
		ret = error_set(
		    err, EINVAL,
		    "%s: an unfinished repair of project %s; finish it with --project %s, or pass another --journal",
		    r->journal_path, json_str(doc, "project"), json_str(doc, "project"));
		json_decref(doc);
		return ret;
	}
	if (!journal_unfinished(doc)) {
		json_decref(doc);
		return journal_remove(r->journal_path, err);
	}
	*unfinished = r->unfinished = true;
	if (!r->apply) {
		log_warn("an unfinished repair (strategy %s, started %s) is in %s: %zu step%s "
			 "not done; 'talos-gcp repair --apply' finishes it first",
			 json_str(doc, "strategy"), json_str(doc, "started") ?: "?",
			 r->journal_path, journal_unfinished(doc),
			 journal_unfinished(doc) == 1 ? "" : "s");
		json_decref(doc);
		return 0;
	}
	snprintf(question, sizeof(question), "Finish the unfinished repair in %s (%zu step%s)?",
		 r->journal_path, journal_unfinished(doc), journal_unfinished(doc) == 1 ? "" : "s");
	if (!confirmed(r, question)) {
		json_decref(doc);
		return error_set(err, ECANCELED,
				 "not confirmed: the unfinished repair in %s stays as it is",
				 r->journal_path);
	}
	log_info("finishing the unfinished repair in %s (started %s)", r->journal_path,
		 json_str(doc, "started") ?: "?");
	/* The old journal is this run's until finished: its states are rewritten in place. */
	r->journal = doc;
	if (!strcmp(json_str(doc, "strategy"), "gcp"))
		ret = gcp_resume(r, doc, err);
	else
		ret = node_resume(r, doc, err);
	if (ret == 0) {
		ret = journal_finish(r, err);
		json_decref(r->journal);
		r->journal = NULL;
	}
	return ret;
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
	    {"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
	    {"yes", no_argument, NULL, OPT_YES},
	    {"selector", required_argument, NULL, OPT_SELECTOR},
	    {"max-changes", required_argument, NULL, OPT_MAX_CHANGES},
	    {"free-orphans", no_argument, NULL, OPT_FREE_ORPHANS},
	    {"reset-after", no_argument, NULL, OPT_RESET_AFTER},
	    {"journal", required_argument, NULL, OPT_JOURNAL},
	    {NULL, 0, NULL, 0},
	};
	static const char *const formats[] = {"table", "json", NULL};
	uint64_t n;
	int c;

	r->wait_ms = 5 * 60 * 1000;
	r->drain_ms = 5 * 60 * 1000;
	r->max_changes = -1;
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
		case OPT_YES:
			r->yes = true;
			break;
		case OPT_SELECTOR:
			if (!optarg[0]) {
				log_error("--selector: want labels such as role=worker");
				return -EINVAL;
			}
			r->selector = optarg;
			break;
		case OPT_MAX_CHANGES:
			if (parse_u64(optarg, 1000000, &n) < 0) {
				log_error(
				    "--max-changes '%s': want a number of changes (0 or more)",
				    optarg);
				return -EINVAL;
			}
			r->max_changes = (long)n;
			break;
		case OPT_FREE_ORPHANS:
			r->free_orphans = true;
			break;
		case OPT_RESET_AFTER:
			r->reset_after = true;
			break;
		case OPT_JOURNAL:
			if (!optarg[0]) {
				log_error("--journal: want a file name");
				return -EINVAL;
			}
			r->journal_opt = optarg;
			break;
		case OPT_WAIT_TIMEOUT:
		case OPT_DRAIN_TIMEOUT:
			if (parse_duration_ms(optarg, c == OPT_WAIT_TIMEOUT ? &r->wait_ms
									    : &r->drain_ms) < 0 ||
			    !(c == OPT_WAIT_TIMEOUT ? r->wait_ms : r->drain_ms)) {
				log_error("--%s '%s': want a positive duration such as 5m",
					  c == OPT_WAIT_TIMEOUT ? "wait-timeout" : "drain-timeout",
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
	if (r->reset_after && r->strategy != STRATEGY_GCP) {
		log_error("--reset-after applies to --strategy gcp only (node resets anyway)");
		return -EINVAL;
	}
	if (r->free_orphans && r->strategy != STRATEGY_GCP) {
		log_error("--free-orphans applies to --strategy gcp only");
		return -EINVAL;
	}
	return api_opts_output(&r->o, formats);
}

/* On a terminal, --apply asks first (unless --yes). True when the user said yes. */
static bool confirmed(struct repair *r, const char *question)
{
	char line[32];

	if (r->yes || !isatty(STDIN_FILENO))
		return true;
	fflush(stdout);
	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	return !strcmp(line, "y\n") || !strcmp(line, "yes\n") || !strcmp(line, "Y\n");
}

/* "Apply 2 changes to 1 instance?" */
static bool confirm_plan(struct repair *r, size_t steps, size_t targets)
{
	char question[128];

	snprintf(question, sizeof(question), "Apply %zu change%s to %zu %s%s?", steps,
		 steps == 1 ? "" : "s", targets, r->strategy == STRATEGY_GCP ? "instance" : "Node",
		 targets == 1 ? "" : "s");
	return confirmed(r, question);
}

/* --max-changes: this round's changes on top of what the run changed already. */
static int within_limit(struct repair *r, size_t more, struct error *err)
{
	if (r->max_changes < 0 || r->changed + more <= (size_t)r->max_changes)
		return 0;
	return error_set(
	    err, EPERM,
	    "the plan changes %zu %s%s, more than --max-changes %ld: nothing (more) "
	    "was changed (narrow it with --node or --selector, or raise --max-changes)",
	    r->changed + more, r->strategy == STRATEGY_GCP ? "instance" : "Node",
	    r->changed + more == 1 ? "" : "s", r->max_changes);
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
	if (ret == 0)
		ret = narrow_rows(r, &view, &a, err);
	if (ret < 0)
		goto cleanup;
	if (r->strategy == STRATEGY_GCP) {
		size_t touched;

		ret = repair_plan_gcp(&view, &a, r->free_orphans ? REPAIR_FREE_ORPHANS : 0, &gp);
		if (ret < 0)
			goto cleanup;
		*pending = gp.n_steps || gp.n_refusals || (a.n_orphans && !r->free_orphans);
		if (round == 0 || gp.n_steps) {
			if (r->json) {
				json_decref(*plan_out);
				*plan_out = gcp_plan_json(&view, &a, &gp);
			} else if (gp.n_steps || gp.n_refusals || a.n_orphans) {
				print_gcp_plan(&view, &a, &gp, r->free_orphans);
				fflush(stdout);
			}
		}
		if (r->apply && gp.n_steps) {
			touched = repair_plan_instances(&gp);
			ret = within_limit(r, touched, err);
			if (ret < 0)
				goto cleanup;
			if (round == 0 && !confirm_plan(r, gp.n_steps, touched)) {
				ret =
				    error_set(err, ECANCELED, "not confirmed: nothing was changed");
				goto cleanup;
			}
			*did_something = true;
			r->changed += touched;
			ret = apply_gcp(r, &view, &gp, round, err);
		}
	} else {
		ret = node_plan_build(r, &view, &a, &np, err);
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
			if (r->json) {
				json_decref(*plan_out);
				*plan_out = node_plan_json(&view, &np);
			} else if (np.n || np.n_refusals) {
				print_node_plan(&view, &np,
						ccm_why[0] ? ccm_why : "nothing to recreate");
				fflush(stdout);
			}
		}
		if (r->apply && np.n) {
			ret = within_limit(r, np.n, err);
			if (ret < 0)
				goto cleanup;
			if (round == 0 && !confirm_plan(r, np.n, np.n)) {
				ret =
				    error_set(err, ECANCELED, "not confirmed: nothing was changed");
				goto cleanup;
			}
			*did_something = true;
			ret = node_apply(r, &view, &np, err);
		}
	}
	if (!r->apply && !r->json && !*pending && !r->unfinished)
		printf("Nothing to do: every Node is aligned.\n");
	else if (!r->apply && !r->json && (gp.n_steps || np.n))
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
		aligned = !r->node ? a.n_orphans == 0 : true;
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
	json_t *plan = NULL, *doc = NULL;
	bool pending = false, did = false, unfinished = false, failed = false;
	int ret, exit_code = 2, lock_fd = -1;

	if (parse_args(&r, argc, argv) < 0)
		return 2;
	if (r.o.help) {
		fputs(usage, stdout);
		return 0;
	}
	r.json = !strcmp(r.o.output, "json");
	r.applied = json_array();
	r.failed = json_array();
	r.skipped = json_array();
	r.changed_nodes = json_array();
	doc = r.json ? json_object() : NULL;
	if (session_open(&r.s, &r.o, SESSION_GCP | SESSION_KUBE, &err) < 0)
		goto fail;
	if (r.journal_opt)
		snprintf(r.journal_path, sizeof(r.journal_path), "%s", r.journal_opt);
	else if (journal_default_path(r.s.project, r.journal_path, sizeof(r.journal_path), &err) <
		 0)
		goto fail;
	/* One repair at a time per journal: a second one would interleave its changes. */
	if (r.apply && journal_lock(r.journal_path, &lock_fd, &err) < 0)
		goto fail;
	if (journal_resume(&r, &unfinished, &err) < 0)
		goto fail;
	for (int round = 0;; round++) {
		ret = round_once(&r, round, &plan, &pending, &did, &err);
		if (ret < 0) {
			if (ret == -EPERM || ret == -ECANCELED)
				exit_code = 1;
			goto fail;
		}
		if (!r.apply)
			break;
		/* After a round that changed things, the next round re-reads and re-checks. */
		if ((ret == REPLAN || did) && round + 1 < MAX_ROUNDS)
			continue;
		if (ret == REPLAN) {
			error_set(
			    &err, EAGAIN,
			    "the cluster kept changing under the repair; gave up after %d rounds",
			    MAX_ROUNDS);
			goto fail;
		}
		break;
	}
	if (journal_finish(&r, &err) < 0)
		goto fail;
	if (!r.apply) {
		exit_code = pending || unfinished ? 1 : 0;
		goto out;
	}
	if (r.reset_after && json_array_size(r.changed_nodes)) {
		json_t *scratch = json_object(); /* not printed: only whether it is aligned */

		ret = final_verify(&r, scratch, &err);
		json_decref(scratch);
		if (ret != 0) {
			if (ret > 0)
				error_set(
				    &err, EAGAIN,
				    "--reset-after: not resetting anything, the cluster is not "
				    "aligned");
			goto fail;
		}
		if (reset_after(&r, &err) < 0)
			goto fail;
		if (journal_finish(&r, &err) < 0)
			goto fail;
	}
	ret = final_verify(&r, doc, &err);
	if (ret < 0)
		goto fail;
	exit_code = ret;
	goto out;
fail:
	failed = true;
	log_error("%s", err.msg);
out:
	if (doc) {
		if (json_is_object(plan))
			json_object_update(doc, plan);
		if (!r.apply)
			json_object_set_new(doc, "pending", json_boolean(pending || unfinished));
		if (unfinished)
			json_object_set_new(doc, "journal", json_string(r.journal_path));
		json_object_set(doc, "applied", r.applied);
		json_object_set(doc, "failed", r.failed);
		json_object_set(doc, "skipped", r.skipped);
		if (failed)
			json_object_set_new(doc, "error", json_string(err.msg));
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
	}
	if (lock_fd >= 0)
		close(lock_fd);
	session_log_stats(&r.s);
	session_close(&r.s);
	json_decref(doc);
	json_decref(plan);
	json_decref(r.journal);
	json_decref(r.applied);
	json_decref(r.failed);
	json_decref(r.skipped);
	json_decref(r.changed_nodes);
	return exit_code;
}
