/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shapes of Compute v1 messages (compute/schema.c, generated from the API definition by
 * compute/schema_gen.py) and the request-body check built on them: Compute refuses unknown
 * fields, wrong JSON types, unknown enum values and bad base64 with 400, and so do we.
 */
#ifndef TALOS_GCP_EMU_COMPUTE_SCHEMA_H
#define TALOS_GCP_EMU_COMPUTE_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sch_type {
	SCH_STRING,
	SCH_INT64, /* JSON string (a number is accepted on input and normalized to a string) */
	SCH_UINT64,
	SCH_INT32, /* JSON number (a decimal string is accepted and normalized) */
	SCH_UINT32,
	SCH_BOOL,
	SCH_DOUBLE,
	SCH_BYTES, /* base64, either alphabet, padding optional (proto3 JSON) */
	SCH_ENUM,
	SCH_MESSAGE,
	SCH_ANY, /* google.protobuf.Value: anything */
};

struct sch_field {
	const char *name;
	uint8_t type; /* enum sch_type */
	bool repeated;
	uint16_t ref; /* SCH_MESSAGE: index in sch_messages; SCH_ENUM: index in sch_enums */
};

struct sch_message {
	const char *name;
	const struct sch_field *fields; /* sorted by name; a map has one field, its value */
	uint16_t nfields;
	bool is_map; /* a JSON object with free keys (labels, ...) */
};

struct sch_enum {
	const char *const *values; /* sorted */
	uint16_t n;
};

extern const struct sch_message sch_messages[]; /* sorted by name */
extern const unsigned sch_nmessages;
extern const struct sch_enum sch_enums[];

const struct sch_message *sch_find(const char *name);

/*
 * Checks value (a request body) against message m and normalizes it in place: int64 as
 * strings, int32 as numbers, JSON nulls dropped (proto3 JSON reads null as "absent").
 * path names the value in messages ("resource"). 0, or -EINVAL with a message in err.
 */
int sch_check(const struct sch_message *m, json_t *value, const char *path, char *err,
	      size_t errlen);

#endif
