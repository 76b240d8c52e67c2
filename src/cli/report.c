/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/report.h"

#include <jansson.h>
#include <string.h>

static bool selected(const struct cluster_view *view, const struct align_row *row,
		     const char *node_filter)
{
	return !node_filter || !strcmp(view->nodes[row->node].name, node_filter);
}

bool report_has_node(const struct cluster_view *view, const char *node_filter)
{
	if (!node_filter)
		return true;
	for (size_t i = 0; i < view->n_nodes; i++)
		if (!strcmp(view->nodes[i].name, node_filter))
			return true;
	return false;
}

/* The alias a row compares with (aliasIpRanges[0]), or "". */
static const char *row_alias(const struct cluster_view *view, const struct align_row *row)
{
	const struct view_instance *in;

	if (row->instance < 0)
		return "";
	in = &view->instances[row->instance];
	return in->n_aliases ? in->aliases[0].text : "";
}

static bool report_json(FILE *out, const struct cluster_view *view, const struct alignment *a,
			const char *node_filter)
{
	json_t *doc = json_object(), *nodes = json_array();
	size_t counts[ALIGN_ORPHAN + 1] = {0};
	json_t *summary = json_object();
	bool aligned = true;

	for (size_t i = 0; i < a->n_rows; i++) {
		const struct align_row *row = &a->rows[i];
		const struct view_node *n = &view->nodes[row->node];
		const struct view_instance *in =
		    row->instance >= 0 ? &view->instances[row->instance] : NULL;

		if (!selected(view, row, node_filter))
			continue;
		counts[row->status]++;
		aligned &= row->status == ALIGN_OK;
		json_array_append_new(
		    nodes, json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s, s:s?}", "node", n->name,
				     "instance", in ? in->name : NULL, "zone", in ? in->zone : NULL,
				     "podCIDR", n->pod_cidr[0] ? n->pod_cidr : NULL, "aliasRange",
				     row_alias(view, row)[0] ? row_alias(view, row) : NULL,
				     "status", align_status_name(row->status), "reason",
				     row->reason[0] ? row->reason : NULL));
	}
	/* Orphans have no Node: shown unless one Node was asked for. */
	for (size_t i = 0; !node_filter && i < a->n_orphans; i++) {
		const struct align_orphan *o = &a->orphans[i];
		const struct view_instance *in = &view->instances[o->instance];
		char text[CIDR_STRLEN];

		counts[ALIGN_ORPHAN]++;
		aligned = false;
		json_array_append_new(
		    nodes, json_pack("{s:n, s:s, s:s, s:n, s:s, s:s, s:s}", "node", "instance",
				     in->name, "zone", in->zone, "podCIDR", "aliasRange",
				     cidr_format(&o->range, text, sizeof(text)), "status",
				     align_status_name(ALIGN_ORPHAN), "reason", o->reason));
	}
	for (int s = ALIGN_OK; s <= ALIGN_ORPHAN; s++)
		json_object_set_new(summary, align_status_name(s),
				    json_integer((json_int_t)counts[s]));
	json_object_set_new(doc, "aligned", json_boolean(aligned));
	json_object_set_new(doc, "nodes", nodes);
	json_object_set_new(doc, "summary", summary);
	json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', out);
	json_decref(doc);
	return aligned;
}

static size_t max_sz(size_t a, size_t b)
{
	return a > b ? a : b;
}

static bool report_table(FILE *out, const struct cluster_view *view, const struct alignment *a,
			 const char *node_filter)
{
	size_t w[5] = {4, 8, 4, 7, 5}; /* NODE INSTANCE ZONE PODCIDR ALIAS */
	size_t counts[ALIGN_ORPHAN + 1] = {0}, shown = 0;
	bool aligned = true;

	for (size_t i = 0; i < a->n_rows; i++) {
		const struct align_row *row = &a->rows[i];
		const struct view_instance *in =
		    row->instance >= 0 ? &view->instances[row->instance] : NULL;

		if (!selected(view, row, node_filter))
			continue;
		w[0] = max_sz(w[0], strlen(view->nodes[row->node].name));
		w[1] = max_sz(w[1], in ? strlen(in->name) : 1);
		w[2] = max_sz(w[2], in ? strlen(in->zone) : 1);
		w[3] = max_sz(w[3], max_sz(1, strlen(view->nodes[row->node].pod_cidr)));
		w[4] = max_sz(w[4], max_sz(1, strlen(row_alias(view, row))));
	}
	for (size_t i = 0; !node_filter && i < a->n_orphans; i++) {
		const struct view_instance *in = &view->instances[a->orphans[i].instance];

		char text[CIDR_STRLEN];

		w[1] = max_sz(w[1], strlen(in->name));
		w[2] = max_sz(w[2], strlen(in->zone));
		w[4] = max_sz(w[4], strlen(cidr_format(&a->orphans[i].range, text, sizeof(text))));
	}
	fprintf(out, "%-*s  %-*s  %-*s  %-*s  %-*s  %s\n", (int)w[0], "NODE", (int)w[1], "INSTANCE",
		(int)w[2], "ZONE", (int)w[3], "PODCIDR", (int)w[4], "ALIAS", "STATUS");
	for (size_t i = 0; i < a->n_rows; i++) {
		const struct align_row *row = &a->rows[i];
		const struct view_node *n = &view->nodes[row->node];
		const struct view_instance *in =
		    row->instance >= 0 ? &view->instances[row->instance] : NULL;
		const char *alias = row_alias(view, row);

		if (!selected(view, row, node_filter))
			continue;
		shown++;
		counts[row->status]++;
		aligned &= row->status == ALIGN_OK;
		fprintf(out, "%-*s  %-*s  %-*s  %-*s  %-*s  %s\n", (int)w[0], n->name, (int)w[1],
			in ? in->name : "-", (int)w[2], in ? in->zone : "-", (int)w[3],
			n->pod_cidr[0] ? n->pod_cidr : "-", (int)w[4], alias[0] ? alias : "-",
			align_status_name(row->status));
	}
	for (size_t i = 0; !node_filter && i < a->n_orphans; i++) {
		const struct align_orphan *o = &a->orphans[i];
		const struct view_instance *in = &view->instances[o->instance];
		char text[CIDR_STRLEN];

		counts[ALIGN_ORPHAN]++;
		aligned = false;
		fprintf(out, "%-*s  %-*s  %-*s  %-*s  %-*s  %s\n", (int)w[0], "-", (int)w[1],
			in->name, (int)w[2], in->zone, (int)w[3], "-", (int)w[4],
			cidr_format(&o->range, text, sizeof(text)),
			align_status_name(ALIGN_ORPHAN));
	}
	/* Why, for each row that is not ok: the table stays one line per node. */
	for (size_t i = 0; i < a->n_rows; i++) {
		const struct align_row *row = &a->rows[i];

		if (selected(view, row, node_filter) && row->status != ALIGN_OK)
			fprintf(out, "%s: %s: %s\n", view->nodes[row->node].name,
				align_status_name(row->status), row->reason);
	}
	for (size_t i = 0; !node_filter && i < a->n_orphans; i++)
		fprintf(out, "%s: orphan: %s\n", view->instances[a->orphans[i].instance].name,
			a->orphans[i].reason);
	fprintf(out, "%zu node%s: ", shown, shown == 1 ? "" : "s");
	for (int s = ALIGN_OK, first = 1; s <= ALIGN_ORPHAN; s++) {
		if (!counts[s] && s != ALIGN_OK)
			continue;
		fprintf(out, "%s%zu %s", first ? "" : ", ", counts[s], align_status_name(s));
		first = 0;
	}
	fprintf(out, "%s\n", aligned ? " (aligned)" : " (NOT aligned)");
	return aligned;
}

bool report_alignment(FILE *out, const struct cluster_view *view, const struct alignment *a,
		      const char *format, const char *node_filter)
{
	if (!strcmp(format, "json"))
		return report_json(out, view, a, node_filter);
	return report_table(out, view, a, node_filter);
}
