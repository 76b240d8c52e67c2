/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compute's error body:
 *   {"error": {"code": 412, "message": "...",
 *              "errors": [{"message": "...", "domain": "global", "reason": "conditionNotMet"}]}}
 * and the Operation form of the same failure: {"errors": [{"code": "...", "message": "..."}]}.
 * https://cloud.google.com/compute/docs/api/handling-errors
 */
#include <errno.h>
#include <stdio.h>

#include "emu/compute/compute.h"

static int vfail(struct api_error *e, unsigned status, const char *reason, const char *code,
		 const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static int vfail(struct api_error *e, unsigned status, const char *reason, const char *code,
		 const char *fmt, va_list ap)
{
	*e = (struct api_error){.status = status, .reason = reason, .code = code};
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	/* Messages quote what clients sent (and may be cut short): JSON needs valid UTF-8. */
	utf8_scrub(e->message);
	return -EINVAL;
}

int api_fail(struct api_error *e, unsigned status, const char *reason, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(e, status, reason, NULL, fmt, ap);
	va_end(ap);
	return ret;
}

int api_fail_code(struct api_error *e, unsigned status, const char *reason, const char *code,
		  const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(e, status, reason, code, fmt, ap);
	va_end(ap);
	return ret;
}

int api_not_found(struct api_error *e, const char *path)
{
	return api_fail_code(e, 404, "notFound", "RESOURCE_NOT_FOUND",
			     "The resource '%s' was not found", path);
}

/* Operation error codes for the reasons that have no explicit one. */
static const char *default_code(const struct api_error *e)
{
	if (e->code)
		return e->code;
	switch (e->status) {
	case 404:
		return "RESOURCE_NOT_FOUND";
	case 409:
		return "RESOURCE_ALREADY_EXISTS";
	case 412:
		return "CONDITION_NOT_MET";
	default:
		return "INVALID_USAGE";
	}
}

int api_reply_error(struct emu_request *req, const struct api_error *e)
{
	json_t *item, *body;

	item = json_pack("{s:s, s:s, s:s}", "message", e->message, "domain", "global", "reason",
			 e->reason ? e->reason : "invalid");
	if (item && e->location)
		json_object_set_new(item, "location", json_string(e->location));
	if (item && e->location_type)
		json_object_set_new(item, "locationType", json_string(e->location_type));
	body = json_pack("{s:{s:i, s:s, s:[o]}}", "error", "code", (int)e->status, "message",
			 e->message, "errors", item);
	return compute_reply(req, e->status ? e->status : 500, body);
}

json_t *api_error_operation_json(const struct api_error *e)
{
	return json_pack("{s:[{s:s, s:s}]}", "errors", "code", default_code(e), "message",
			 e->message);
}
