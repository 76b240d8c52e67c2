/* SPDX-License-Identifier: Apache-2.0 */
/* Printing an alignment: the verify table and its JSON form (also after repair --apply). */
#ifndef TALOS_GCP_CLI_REPORT_H
#define TALOS_GCP_CLI_REPORT_H

#include <stdio.h>

#include "cli/alignment.h"

/*
 * Prints the rows (only node_filter's when not NULL) as "table" or "json"
 * ({"aligned": bool, "nodes": [...]}, where aligned covers the printed rows).
 * Returns whether the printed rows are all ok.
 */
bool report_alignment(FILE *out, const struct cluster_view *view, const struct alignment *a,
		      const char *format, const char *node_filter);

/* True when node_filter is NULL or names a Node of the view. */
bool report_has_node(const struct cluster_view *view, const char *node_filter);

#endif
