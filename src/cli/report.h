/* SPDX-License-Identifier: Apache-2.0 */
/* Printing an alignment: the verify table and its JSON form (also after repair --apply). */
#ifndef TALOS_GCP_CLI_REPORT_H
#define TALOS_GCP_CLI_REPORT_H

#include <stdio.h>

#include "cli/alignment.h"

/*
 * The "version" of verify's -o json document (docs/schema/verify.schema.json): raised when
 * a change could break a script that reads it (a field removed, renamed or retyped).
 */
#define VERIFY_JSON_VERSION 1

/*
 * Prints the rows (only node_filter's when not NULL) as "table" or "json"
 * ({"version": 1, "aligned": bool, "nodes": [...], "summary": {...}}, where aligned covers
 * the printed rows).
 * Returns whether the printed rows are all ok.
 */
bool report_alignment(FILE *out, const struct cluster_view *view, const struct alignment *a,
		      const char *format, const char *node_filter);

/* True when node_filter is NULL or names a Node of the view. */
bool report_has_node(const struct cluster_view *view, const char *node_filter);

#endif
