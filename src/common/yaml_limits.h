/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bounds on YAML input, one set for every reader (doctor's tree loader, the kubeconfig
 * loader): nesting depth, nodes per document once aliases are expanded, documents per stream.
 *
 * libyaml's document loader (yaml_parser_load) has no such bounds, and its cost grows with
 * the square of the nesting depth (a 200 KB file of 100,000 nested "[" costs it a minute).
 * yaml_check_limits() reads the events only, stops at the first limit passed, and so costs
 * what the prefix up to that point costs: run it before yaml_parser_load().
 */
#ifndef TALOS_GCP_COMMON_YAML_LIMITS_H
#define TALOS_GCP_COMMON_YAML_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct yaml_limits {
	uint32_t max_depth;    /* nesting of collections */
	uint64_t max_expanded; /* nodes per document once aliases are expanded */
	uint32_t max_docs;     /* documents per stream */
};

/* 256 levels, 1,000,000 expanded nodes per document, 100,000 documents. */
extern const struct yaml_limits yaml_default_limits;

/*
 * Reads buf[0..len) as a YAML stream and checks it against lim (NULL: the defaults). 0, or
 * -E2BIG (a limit: "LINE:COL: nesting deeper than 256 levels"), -EINVAL (syntax: "LINE:COL:
 * libyaml's problem"), -ENOMEM, with err. An alias to an anchor not defined (yet) is left to
 * the loader to refuse.
 */
int yaml_check_limits(const char *buf, size_t len, const struct yaml_limits *lim,
		      struct error *err);

#endif
