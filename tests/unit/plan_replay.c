/* SPDX-License-Identifier: Apache-2.0 */
#include "plan_replay.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool same_net(const char *a, const char *b)
{
	return !strcmp(view_network_key(a), view_network_key(b));
}

static int fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -1;
}

/* Does instance j hold something overlapping r, on instance i's network (or i itself)? */
static const struct cidr *held(const struct cluster_view *v, struct cidr *const *cur,
			       const size_t *len, size_t i, size_t j, const struct cidr *r)
{
	const struct view_instance *ii = &v->instances[i], *jj = &v->instances[j];

	for (size_t k = 0; (i == j || same_net(jj->network, ii->network)) && k < len[j]; k++)
		if (cidr_overlaps(&cur[j][k], r))
			return &cur[j][k];
	for (size_t k = 0; k < jj->n_other; k++)
		if (j != i && same_net(jj->other[k].network, ii->network) &&
		    cidr_overlaps(&jj->other[k].range, r))
			return &jj->other[k].range;
	return NULL;
}

int plan_replay(const struct cluster_view *v, const struct alignment *a,
		const struct repair_plan *p, char *why, size_t len_why)
{
	size_t n = v->n_instances, *len = calloc(n + 1, sizeof(*len));
	struct cidr **cur = calloc(n + 1, sizeof(*cur));
	char t1[CIDR_STRLEN], t2[CIDR_STRLEN];
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		cur[i] = calloc(v->instances[i].n_aliases + p->n_steps + 1, sizeof(**cur));
		len[i] = v->instances[i].n_aliases;
		for (size_t k = 0; k < len[i]; k++)
			cur[i][k] = v->instances[i].aliases[k].range;
	}
	for (size_t s = 0; s < p->n_steps && ret == 0; s++) {
		const struct repair_step *st = &p->steps[s];
		size_t i = st->instance, k;
		const struct cidr *h;

		cidr_format(&st->range, t1, sizeof(t1));
		if (st->kind == STEP_CLEAR) {
			for (k = 0; k < len[i] && !cidr_equal(&cur[i][k], &st->range); k++)
				;
			if (k == len[i]) {
				ret = fail(why, len_why,
					   "step %zu clears %s from %s, which does not hold it", s,
					   t1, v->instances[i].name);
				break;
			}
			memmove(&cur[i][k], &cur[i][k + 1], (len[i] - k - 1) * sizeof(**cur));
			len[i]--;
			continue;
		}
		for (size_t j = 0; j < n && ret == 0; j++)
			if ((h = held(v, cur, len, i, j, &st->range)))
				ret = fail(why, len_why, "step %zu sets %s on %s while %s holds %s",
					   s, t1, v->instances[i].name, v->instances[j].name,
					   cidr_format(h, t2, sizeof(t2)));
		if (ret)
			break;
		memmove(&cur[i][1], &cur[i][0], len[i] * sizeof(**cur));
		cur[i][0] = st->range;
		len[i]++;
	}
	for (size_t r = 0; r < a->n_rows && ret == 0; r++) {
		const struct align_row *row = &a->rows[r];
		bool refused = false;

		for (size_t k = 0; k < p->n_refusals; k++)
			refused |= p->refusals[k].node == row->node;
		if (row->status == ALIGN_OK || refused || row->instance < 0)
			continue;
		if (!len[row->instance] ||
		    !cidr_equal(&cur[row->instance][0], &v->nodes[row->node].pod))
			ret = fail(why, len_why, "node %s not aligned after the plan",
				   v->nodes[row->node].name);
	}
	for (size_t i = 0; i < n && ret == 0; i++)
		for (size_t k = 0; k < v->instances[i].n_aliases && ret == 0; k++) {
			const struct cidr *c = &v->instances[i].aliases[k].range;
			bool cleared = false, there = false;

			for (size_t s = 0; s < p->n_steps; s++)
				cleared |= p->steps[s].kind == STEP_CLEAR &&
					   p->steps[s].instance == i &&
					   cidr_equal(&p->steps[s].range, c);
			for (size_t j = 0; j < len[i]; j++)
				there |= cidr_equal(&cur[i][j], c);
			if (!cleared && !there)
				ret = fail(why, len_why, "%s lost %s", v->instances[i].name,
					   cidr_format(c, t1, sizeof(t1)));
		}
	for (size_t i = 0; i < n; i++)
		free(cur[i]);
	free(cur);
	free(len);
	return ret;
}
