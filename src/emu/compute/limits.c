/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GCP's documented limits on field values, checked on every insert (and by the methods that
 * replace the same fields):
 *   - description: at most 2,048 characters;
 *   - labels (https://cloud.google.com/compute/docs/labeling-resources#requirements): "up to
 *     a maximum of 64" per resource; keys 1-63 characters, values 0-63, "only lowercase
 *     letters, numeric characters, underscores, and dashes ... international characters are
 *     allowed"; keys "must start with a lowercase letter or international character";
 *   - network tags (Tags.items in the Compute v1 messages): "Each tag must be 1-63
 *     characters long, and comply with RFC1035"; at most 64 per instance
 *     (https://cloud.google.com/vpc/docs/add-remove-network-tags).
 * Metadata limits live with the instances (instances.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "emu/compute/compute.h"

#define DESCRIPTION_MAX 2048
#define LABELS_MAX      64
#define LABEL_MAX       63
#define TAGS_MAX        64

/* Lowercase ASCII letters, digits, '_' and '-', or any non-ASCII character. */
static bool label_chars(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (!(*p >= 0x80 || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '-'))
			return false;
	return true;
}

static int check_labels(const json_t *labels, const char *field, struct api_error *e)
{
	const char *key;
	json_t *v;

	if (json_object_size(labels) > LABELS_MAX)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field '%s': ''. A resource can have at most %d labels, not %zu.",
		    field, LABELS_MAX, json_object_size(labels));
	json_object_foreach((json_t *)labels, key, v)
	{
		const char *value = json_string_value(v) ?: "";
		size_t n = utf8_chars(key);

		/* The wording is GCP's (a label value it refused: 'head.default'). */
		if (n < 1 || n > LABEL_MAX || !label_chars(key) ||
		    (key[0] >= '0' && key[0] <= '9') || key[0] == '_' || key[0] == '-')
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field '%s': ''. Label key '%s' violates format constraints. The key must start with a lowercase character, can only contain lowercase letters, numeric characters, underscores and dashes. The key can be at most 63 characters long. International characters are allowed.",
			    field, key);
		if (utf8_chars(value) > LABEL_MAX || !label_chars(value))
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field '%s': ''. Label value '%s' violates format constraints. The value can only contain lowercase letters, numeric characters, underscores and dashes. The value can be at most 63 characters long. International characters are allowed.",
			    field, value);
	}
	return 0;
}

int limits_check_resource(const json_t *res, struct api_error *e)
{
	const char *desc = jstr(res, "description");
	json_t *labels = json_object_get(res, "labels");

	if (desc && utf8_chars(desc) > DESCRIPTION_MAX)
		return api_fail(
		    e, 400, "invalid",
		    "Invalid value for field 'resource.description': the value is %zu characters long. Must be at most %d characters.",
		    utf8_chars(desc), DESCRIPTION_MAX);
	if (labels)
		return check_labels(labels, "resource.labels", e);
	return 0;
}

int limits_check_tags(const json_t *tags, const char *field, struct api_error *e)
{
	json_t *items = json_object_get(tags, "items"), *t;
	size_t i;

	if (json_array_size(items) > TAGS_MAX)
		return api_fail(e, 400, "invalid",
				"Invalid value for field '%s.items': at most %d tags, not %zu.",
				field, TAGS_MAX, json_array_size(items));
	json_array_foreach(items, i, t)
	{
		if (!valid_name(json_string_value(t)))
			return api_fail(
			    e, 400, "invalid",
			    "Invalid value for field '%s.items[%zu]': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'",
			    field, i, json_string_value(t) ?: "");
	}
	return 0;
}
