/* SPDX-License-Identifier: Apache-2.0 */
#include "common/yaml_limits.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

const struct yaml_limits yaml_default_limits = {
    .max_depth = 256,
    .max_expanded = 1000000,
    .max_docs = 100000,
};

/* An anchor and the size of its node's expansion, for the aliases that name it. */
struct anchor {
	char *name;
	uint64_t weight;
};

struct scan {
	const struct yaml_limits *lim;
	uint64_t *weights; /* expansion of each open collection (its own node included) */
	uint32_t depth;
	char **open_anchors; /* anchor of each open collection, or NULL */
	struct anchor *anchors;
	size_t n_anchors, cap_anchors;
	uint64_t expanded; /* of the current document */
	struct error *err;
};

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int at(struct scan *s, int code, const yaml_mark_t *m, const char *what)
{
	return error_set(s->err, code, "%zu:%zu: %s", m->line + 1, m->column + 1, what);
}

static int check_expanded(struct scan *s, const yaml_mark_t *m)
{
	char msg[160];

	if (s->expanded <= s->lim->max_expanded)
		return 0;
	snprintf(msg, sizeof(msg),
		 "document expands to more than %llu nodes through aliases (refused: a \"billion "
		 "laughs\" document?)",
		 (unsigned long long)s->lim->max_expanded);
	return at(s, E2BIG, m, msg);
}

/*
 * A node is finished: its own nodes (own, those not counted yet) count towards the document,
 * its whole expansion (weight) towards its parent's.
 */
static int finish_node(struct scan *s, uint64_t own, uint64_t weight, const yaml_mark_t *m)
{
	s->expanded = sat_add(s->expanded, own);
	if (s->depth)
		s->weights[s->depth - 1] = sat_add(s->weights[s->depth - 1], weight);
	return check_expanded(s, m);
}

/* Records (or redefines: YAML allows it, the later one wins) an anchor's weight. */
static int set_anchor(struct scan *s, const char *name, uint64_t weight)
{
	for (size_t i = s->n_anchors; i-- > 0;) {
		if (!strcmp(s->anchors[i].name, name)) {
			s->anchors[i].weight = weight;
			return 0;
		}
	}
	if (s->n_anchors == s->cap_anchors) {
		size_t ncap = s->cap_anchors ? s->cap_anchors * 2 : 16;
		struct anchor *na = realloc(s->anchors, ncap * sizeof(*na));

		if (!na)
			return -ENOMEM;
		s->anchors = na;
		s->cap_anchors = ncap;
	}
	s->anchors[s->n_anchors].name = strdup(name);
	if (!s->anchors[s->n_anchors].name)
		return -ENOMEM;
	s->anchors[s->n_anchors++].weight = weight;
	return 0;
}

static uint64_t anchor_weight(const struct scan *s, const char *name)
{
	for (size_t i = s->n_anchors; i-- > 0;)
		if (!strcmp(s->anchors[i].name, name))
			return s->anchors[i].weight;
	return 1;
}

static int on_event(struct scan *s, yaml_event_t *ev)
{
	const yaml_mark_t *m = &ev->start_mark;
	const char *anchor = NULL;
	char msg[96];
	int ret;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		s->expanded = 0;
		return 0;
	case YAML_SCALAR_EVENT:
		ret = finish_node(s, 1, 1, m);
		if (ret == 0 && ev->data.scalar.anchor)
			ret = set_anchor(s, (const char *)ev->data.scalar.anchor, 1);
		return ret;
	case YAML_ALIAS_EVENT: {
		uint64_t w = anchor_weight(s, (const char *)ev->data.alias.anchor);

		return finish_node(s, w, w, m);
	}
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (s->depth >= s->lim->max_depth) {
			snprintf(msg, sizeof(msg), "nesting deeper than %u levels",
				 s->lim->max_depth);
			return at(s, E2BIG, m, msg);
		}
		anchor = (const char *)(ev->type == YAML_SEQUENCE_START_EVENT
					    ? ev->data.sequence_start.anchor
					    : ev->data.mapping_start.anchor);
		s->open_anchors[s->depth] = anchor ? strdup(anchor) : NULL;
		if (anchor && !s->open_anchors[s->depth])
			return -ENOMEM;
		s->weights[s->depth++] = 1; /* the collection's own node */
		return 0;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT: {
		uint64_t w = s->weights[--s->depth];
		char *name = s->open_anchors[s->depth];

		s->open_anchors[s->depth] = NULL;
		ret = name ? set_anchor(s, name, w) : 0;
		free(name);
		/* Its items were counted as they finished: only its own node is new. */
		return ret ? ret : finish_node(s, 1, w, m);
	}
	default:
		return 0;
	}
}

int yaml_check_limits(const char *buf, size_t len, const struct yaml_limits *lim, struct error *err)
{
	struct scan s = {.lim = lim ? lim : &yaml_default_limits, .err = err};
	yaml_parser_t parser;
	uint32_t docs = 0;
	int ret = 0;

	s.weights = calloc((size_t)s.lim->max_depth + 1, sizeof(*s.weights));
	s.open_anchors = calloc((size_t)s.lim->max_depth + 1, sizeof(*s.open_anchors));
	if (!s.weights || !s.open_anchors || !yaml_parser_initialize(&parser)) {
		free(s.weights);
		free(s.open_anchors);
		return error_set(err, ENOMEM, "out of memory");
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	for (bool done = false; !done && ret == 0;) {
		yaml_event_t ev;

		if (!yaml_parser_parse(&parser, &ev)) {
			ret = error_set(err, EINVAL, "%zu:%zu: %s", parser.problem_mark.line + 1,
					parser.problem_mark.column + 1,
					parser.problem ? parser.problem : "invalid YAML");
			break;
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT && ++docs > s.lim->max_docs) {
			char msg[64];

			snprintf(msg, sizeof(msg), "more than %u documents", s.lim->max_docs);
			ret = at(&s, E2BIG, &ev.start_mark, msg);
		} else {
			ret = on_event(&s, &ev);
			if (ret == -ENOMEM)
				ret = error_set(err, ENOMEM, "out of memory");
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	for (uint32_t i = 0; i < s.depth; i++)
		free(s.open_anchors[i]);
	for (size_t i = 0; i < s.n_anchors; i++)
		free(s.anchors[i].name);
	free(s.anchors);
	free(s.open_anchors);
	free(s.weights);
	return ret;
}
