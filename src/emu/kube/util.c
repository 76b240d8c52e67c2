/* SPDX-License-Identifier: Apache-2.0 */
/* Status errors, names, random identifiers and JSON helpers for the Kubernetes API. */
#include <errno.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu/kube/kube.h"

void kube_err_clear(struct kube_err *e)
{
	json_decref(e->details);
	*e = (struct kube_err){0};
}

__attribute__((format(printf, 4, 0))) static int
verrf(struct kube_err *e, unsigned code, const char *reason, const char *fmt, va_list ap)
{
	json_decref(e->details);
	e->details = NULL;
	e->code = code;
	e->reason = reason;
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	return code == 404 ? -ENOENT : code == 409 ? -EEXIST : -EINVAL;
}

int kube_errf(struct kube_err *e, unsigned code, const char *reason, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = verrf(e, code, reason, fmt, ap);
	va_end(ap);
	return ret;
}

const char *kube_qualified(const struct kube_res *r, char *buf, size_t len)
{
	if (r->def.group[0])
		snprintf(buf, len, "%s.%s", r->def.resource, r->def.group);
	else
		snprintf(buf, len, "%s", r->def.resource);
	return buf;
}

/* details {name, group, kind}: kind is the resource for NotFound/AlreadyExists/Conflict. */
static json_t *details(const struct kube_res *r, const char *name, const char *kind)
{
	json_t *d = json_object();

	if (name && name[0])
		json_object_set_new(d, "name", json_string(name));
	if (r && r->def.group[0])
		json_object_set_new(d, "group", json_string(r->def.group));
	if (kind)
		json_object_set_new(d, "kind", json_string(kind));
	return d;
}

int kube_err_not_found(struct kube_err *e, const struct kube_res *r, const char *name)
{
	char q[160];

	kube_errf(e, 404, "NotFound", "%s \"%s\" not found", kube_qualified(r, q, sizeof(q)), name);
	e->details = details(r, name, r->def.resource);
	return -ENOENT;
}

int kube_err_exists(struct kube_err *e, const struct kube_res *r, const char *name)
{
	char q[160];

	kube_errf(e, 409, "AlreadyExists", "%s \"%s\" already exists",
		  kube_qualified(r, q, sizeof(q)), name);
	e->details = details(r, name, r->def.resource);
	return -EEXIST;
}

int kube_err_conflict(struct kube_err *e, const struct kube_res *r, const char *name,
		      const char *why)
{
	char q[160];

	kube_errf(e, 409, "Conflict", "Operation cannot be fulfilled on %s \"%s\": %s",
		  kube_qualified(r, q, sizeof(q)), name, why);
	e->details = details(r, name, r->def.resource);
	return -EEXIST;
}

/*
 * 422 Invalid: 'Node "n" is invalid: spec.podCIDRs: Forbidden: ...' (one cause) or
 * 'Node "n" is invalid: [a, b]' (several), as apimachinery's NewInvalid words it: the
 * qualified kind ("Deployment.apps", "CreateOptions.meta.k8s.io") and the field errors.
 */
int kube_err_invalid_gk(struct kube_err *e, const char *group, const char *kind, const char *name,
			json_t *causes)
{
	size_t n = json_array_size(causes), i, off;
	json_t *c;

	kube_errf(e, 422, "Invalid", "%s%s%s \"%s\" is invalid: %s", kind, group[0] ? "." : "",
		  group, name, n > 1 ? "[" : "");
	off = strlen(e->message);
	json_array_foreach(causes, i, c)
	{
		const char *field = json_string_value(json_object_get(c, "field"));
		const char *msg = json_string_value(json_object_get(c, "message"));
		int w = snprintf(e->message + off, sizeof(e->message) - off, "%s%s%s%s",
				 i ? ", " : "", field && field[0] ? field : "",
				 field && field[0] ? ": " : "", msg ? msg : "");
		if (w < 0 || (size_t)w >= sizeof(e->message) - off)
			break;
		off += (size_t)w;
	}
	if (n > 1 && off + 2 < sizeof(e->message))
		strcat(e->message, "]");
	e->details = json_object();
	if (name[0])
		json_object_set_new(e->details, "name", json_string(name));
	if (group[0])
		json_object_set_new(e->details, "group", json_string(group));
	json_object_set_new(e->details, "kind", json_string(kind));
	json_object_set_new(e->details, "causes", causes);
	return -EINVAL;
}

int kube_err_invalid(struct kube_err *e, const struct kube_res *r, const char *name, json_t *causes)
{
	return kube_err_invalid_gk(e, r->def.group, r->def.kind, name, causes);
}

void kube_cause(json_t *causes, const char *reason, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_array_append_new(
	    causes, json_pack("{s:s, s:s, s:s}", "reason", reason, "message", msg, "field", field));
}

json_t *kube_status_json(const struct kube_err *e)
{
	json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s}", "kind", "Status", "apiVersion",
			       "v1", "metadata", "status", e->code < 300 ? "Success" : "Failure",
			       "message", e->message, "reason", e->reason ? e->reason : "");

	if (!st)
		return NULL;
	if (e->details)
		json_object_set(st, "details", e->details);
	json_object_set_new(st, "code", json_integer(e->code));
	return st;
}

void kube_random_bytes(void *buf, size_t len)
{
	if (RAND_bytes(buf, (int)len) != 1) {
		/* OpenSSL's DRBG does not fail on Linux; keep going with something unique. */
		static uint64_t counter;
		for (size_t i = 0; i < len; i++)
			((uint8_t *)buf)[i] = (uint8_t)(emu_now_ms() + counter++ * 131 + i);
	}
}

void kube_uuid(char out[37])
{
	uint8_t b[16];

	kube_random_bytes(b, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* apimachinery/pkg/util/rand: consonants and digits without vowels or look-alikes. */
void kube_name_suffix(char out[6], unsigned n)
{
	static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
	uint8_t b[5];

	if (n > 5)
		n = 5;
	kube_random_bytes(b, n);
	for (unsigned i = 0; i < n; i++)
		out[i] = alphabet[b[i] % (sizeof(alphabet) - 1)];
	out[n] = '\0';
}

static bool alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool kube_dns1123_label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || !alnum_lower(s[0]) || !alnum_lower(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!alnum_lower(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* RFC 1123 subdomain: labels of [a-z0-9-] joined by dots, at most 253 characters. */
bool kube_dns1123_subdomain(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || !alnum_lower(s[0]) || !alnum_lower(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (alnum_lower(s[i]) || s[i] == '-')
			continue;
		if (s[i] == '.' && alnum_lower(s[i - 1]) && alnum_lower(s[i + 1]))
			continue;
		return false;
	}
	return true;
}

json_t *kj_path(const json_t *o, const char *path)
{
	char seg[128];

	while (o && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);

		if (n >= sizeof(seg) || !json_is_object(o))
			return NULL;
		memcpy(seg, path, n);
		seg[n] = '\0';
		o = json_object_get(o, seg);
		path += n + (dot ? 1 : 0);
	}
	return (json_t *)o;
}

const char *kj_str(const json_t *o, const char *path)
{
	return json_string_value(kj_path(o, path));
}

json_t *kj_obj(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (json_is_object(v))
		return v;
	v = json_object();
	json_object_set_new(o, key, v);
	return v;
}

json_t *kj_now(void)
{
	char buf[40];

	return json_string(emu_rfc3339(buf, sizeof(buf)));
}
