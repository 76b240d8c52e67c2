/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request bodies in application/vnd.kubernetes.protobuf, as client-go sends them when a client
 * asks for protobuf (kubectl 1.32+ does for its typed clients: create namespace, configmap,
 * secret, deployment, service, serviceaccount, job, role ..., auth can-i, drain's Eviction).
 *
 * The wire format (k8s.io/apimachinery pkg/runtime/serializer/protobuf): the 4-byte magic
 * "k8s\0", then a runtime.Unknown message { TypeMeta typeMeta = 1 { apiVersion = 1; kind = 2 };
 * bytes raw = 2; string contentEncoding = 3; string contentType = 4 } whose raw is the object's
 * own message, encoded with the field numbers of k8s.io/api generated.proto (kube/types.c).
 *
 * The result is the JSON object encoding/json writes for the same Go value, which is what a
 * JSON client would have sent: fields in declaration order; omitempty zero scalars left out
 * (gogo-protobuf writes every non-pointer field, zero or not); non-pointer structs always
 * present; metav1.Time as RFC 3339 (null when zero); []byte as base64; IntOrString as a
 * number or a string; map keys sorted. Unknown field numbers are skipped, as the generated
 * Unmarshal does. Bad input is an error naming the message and field, never a crash: every
 * length is checked against the buffer and nesting is bounded.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/base64.h"
#include "emu/kube/kube.h"

#define PB_MAX_DEPTH 48

static const uint8_t magic[4] = {'k', '8', 's', 0};

struct pberr {
	char *buf;
	size_t len;
	bool set;
};

__attribute__((format(printf, 2, 3))) static int fail(struct pberr *e, const char *fmt, ...)
{
	va_list ap;

	if (!e->set) {
		va_start(ap, fmt);
		vsnprintf(e->buf, e->len, fmt, ap);
		va_end(ap);
		e->set = true;
	}
	return -EINVAL;
}

struct reader {
	const uint8_t *p, *end;
};

static int read_varint(struct reader *r, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t b;
		if (r->p >= r->end)
			return -EINVAL;
		b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -EINVAL; /* more than 10 bytes */
}

/* Length-delimited payload: *p and *n. */
static int read_bytes(struct reader *r, const uint8_t **p, size_t *n)
{
	uint64_t len;

	if (read_varint(r, &len) < 0 || len > (uint64_t)(r->end - r->p))
		return -EINVAL;
	*p = r->p;
	*n = (size_t)len;
	r->p += len;
	return 0;
}

static int skip_field(struct reader *r, unsigned wire)
{
	uint64_t v;
	const uint8_t *p;
	size_t n;

	switch (wire) {
	case 0:
		return read_varint(r, &v);
	case 1:
		if (r->end - r->p < 8)
			return -EINVAL;
		r->p += 8;
		return 0;
	case 2:
		return read_bytes(r, &p, &n);
	case 5:
		if (r->end - r->p < 4)
			return -EINVAL;
		r->p += 4;
		return 0;
	default:
		return -EINVAL; /* groups are not used by Kubernetes */
	}
}

/* A JSON string of arbitrary bytes: invalid UTF-8 becomes U+FFFD, as encoding/json writes. */
static json_t *string_of(const uint8_t *p, size_t n)
{
	char *buf;
	size_t o = 0;
	json_t *s;

	s = json_stringn((const char *)p, n);
	if (s)
		return s;
	buf = malloc(n * 3 + 1);
	if (!buf)
		return NULL;
	for (size_t i = 0; i < n;) {
		uint8_t c = p[i];
		size_t len = c < 0x80             ? 1
			     : (c & 0xe0) == 0xc0 ? 2
			     : (c & 0xf0) == 0xe0 ? 3
			     : (c & 0xf8) == 0xf0 ? 4
						  : 0;
		json_t *probe = len && i + len <= n ? json_stringn((const char *)p + i, len) : NULL;
		if (probe) {
			memcpy(buf + o, p + i, len);
			o += len;
			i += len;
			json_decref(probe);
		} else {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	s = json_stringn(buf, o);
	free(buf);
	return s;
}

/* metav1.Time (RFC 3339, seconds) and MicroTime (microseconds), UTC. */
static json_t *time_of(int64_t secs, int64_t nanos, bool micro)
{
	char buf[64];
	struct tm tm;
	time_t t = (time_t)secs;

	if (secs == 0 && nanos == 0)
		return json_null(); /* the zero time marshals as null */
	/* Go's zero time.Time is year 1 (seconds -62135596800); proto holds Unix seconds. */
	if (!gmtime_r(&t, &tm))
		return json_null();
	if (micro) {
		size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(buf + n, sizeof(buf) - n, ".%06lldZ", (long long)(nanos / 1000));
	} else {
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	return json_string(buf);
}

/* Go's time.Duration.String(): "1h2m3.5s", "1.5ms", "0s". */
static void go_duration(int64_t d, char *buf, size_t len)
{
	uint64_t u = d < 0 ? (uint64_t)(-(d + 1)) + 1 : (uint64_t)d;
	const char *sign = d < 0 ? "-" : "";
	char frac[32] = "";

	if (u == 0) {
		snprintf(buf, len, "0s");
	} else if (u < 1000000000ull) {
		/* Below a second: ns, µs or ms with a fraction. */
		const char *unit = u < 1000 ? "ns" : u < 1000000 ? "\xc2\xb5s" : "ms";
		uint64_t div = u < 1000 ? 1 : u < 1000000 ? 1000 : 1000000;
		uint64_t whole = u / div, rest = u % div;
		if (rest) {
			int digits = div == 1000 ? 3 : 6;
			snprintf(frac, sizeof(frac), ".%0*llu", digits, (unsigned long long)rest);
			for (size_t i = strlen(frac); i > 1 && frac[i - 1] == '0'; i--)
				frac[i - 1] = '\0';
		}
		snprintf(buf, len, "%s%llu%s%s", sign, (unsigned long long)whole, frac, unit);
	} else {
		uint64_t secs = u / 1000000000ull, ns = u % 1000000000ull;
		uint64_t h = secs / 3600, m = (secs / 60) % 60, s = secs % 60;
		char hm[48] = "";
		if (ns) {
			snprintf(frac, sizeof(frac), ".%09llu", (unsigned long long)ns);
			for (size_t i = strlen(frac); i > 1 && frac[i - 1] == '0'; i--)
				frac[i - 1] = '\0';
		}
		if (h)
			snprintf(hm, sizeof(hm), "%lluh%llum", (unsigned long long)h,
				 (unsigned long long)m);
		else if (m)
			snprintf(hm, sizeof(hm), "%llum", (unsigned long long)m);
		snprintf(buf, len, "%s%s%llu%ss", sign, hm, (unsigned long long)s, frac);
	}
}

static json_t *decode_struct(const uint8_t *p, size_t n, unsigned type, int depth, struct pberr *e);

/* The small messages of apimachinery with a JSON form of their own. */
static json_t *decode_special(const uint8_t *p, size_t n, unsigned kind, const char *where,
			      struct pberr *e)
{
	struct reader r = {p, p + n};
	int64_t a = 0, b = 0;
	json_t *s = NULL, *items = NULL, *out = NULL;
	const uint8_t *bp = NULL;
	size_t bn = 0;
	bool have_bytes = false;

	if (kind == KT_STRINGS)
		items = json_array();
	while (r.p < r.end) {
		uint64_t tag, v;
		unsigned num, wire;
		if (read_varint(&r, &tag) < 0)
			goto bad;
		num = (unsigned)(tag >> 3);
		wire = (unsigned)(tag & 7);
		if (wire == 0 && (num == 1 || num == 2)) {
			if (read_varint(&r, &v) < 0)
				goto bad;
			if (num == 1)
				a = (int64_t)v;
			else
				b = (int64_t)v;
		} else if (wire == 2 && (num == 1 || num == 3)) {
			if (read_bytes(&r, &bp, &bn) < 0)
				goto bad;
			if (kind == KT_STRINGS && num == 1) {
				json_array_append_new(items, string_of(bp, bn));
			} else {
				json_decref(s);
				s = string_of(bp, bn);
				have_bytes = true;
			}
		} else if (skip_field(&r, wire) < 0) {
			goto bad;
		}
	}
	switch (kind) {
	case KT_QUANTITY: /* Quantity { string string = 1 } */
		out = s ? s : json_string("0");
		s = NULL;
		break;
	case KT_INTSTR: /* IntOrString { int64 type = 1; int32 intVal = 2; string strVal = 3 } */
		if (a == 1)
			out = s ? json_incref(s) : json_string("");
		else
			out = json_integer((int32_t)b);
		break;
	case KT_TIME: /* Timestamp { int64 seconds = 1; int32 nanos = 2 } */
	case KT_MICROTIME:
		out = time_of(a, (int32_t)b, kind == KT_MICROTIME);
		break;
	case KT_DURATION: { /* Duration { int64 duration = 1 } (nanoseconds) */
		char buf[64];
		go_duration(a, buf, sizeof(buf));
		out = json_string(buf);
		break;
	}
	case KT_RAWEXT:   /* RawExtension { bytes raw = 1 } */
	case KT_FIELDSV1: /* FieldsV1 { bytes Raw = 1 } */
		if (!have_bytes || !bn) {
			out = json_null();
			break;
		}
		out = json_loadb((const char *)bp, bn, 0, NULL);
		if (!out) {
			json_decref(s);
			json_decref(items);
			return fail(e, "%s: embedded raw data is not JSON", where), NULL;
		}
		break;
	case KT_STRINGS:
		out = items;
		items = NULL;
		break;
	}
	json_decref(s);
	json_decref(items);
	return out;
bad:
	json_decref(s);
	json_decref(items);
	fail(e, "%s: truncated or malformed message", where);
	return NULL;
}

/* A Go zero value: "" / 0 / false / empty, which omitempty leaves out. */
static bool is_zero(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		return json_string_length(v) == 0;
	case JSON_INTEGER:
		return json_integer_value(v) == 0;
	case JSON_REAL:
		return json_real_value(v) == 0;
	case JSON_FALSE:
	case JSON_NULL:
		return true;
	case JSON_ARRAY:
		return json_array_size(v) == 0;
	case JSON_OBJECT:
		return false;
	default:
		return false;
	}
}

/* What encoding/json writes for the zero value of kind (omitempty aside). */
static json_t *zero_value(unsigned type)
{
	switch (kube_types[type].kind) {
	case KT_STRUCT:
		return kube_type_zero(type);
	case KT_STRING:
		return json_string("");
	case KT_BOOL:
		return json_false();
	case KT_INT32:
	case KT_INT64:
	case KT_INTSTR:
		return json_integer(0);
	case KT_DOUBLE:
		return json_real(0);
	case KT_QUANTITY:
		return json_string("0");
	case KT_DURATION:
		return json_string("0s");
	default: /* Time, MicroTime, RawExtension, []byte, FieldsV1: null */
		return json_null();
	}
}

/* Go structs (and the special types, structs in Go) are written even with omitempty. */
static bool go_struct(unsigned kind)
{
	return kind == KT_STRUCT || kind == KT_TIME || kind == KT_MICROTIME ||
	       kind == KT_QUANTITY || kind == KT_INTSTR || kind == KT_DURATION || kind == KT_RAWEXT;
}

/* One value of field f (wire type already checked to fit). */
static json_t *decode_value(struct reader *r, unsigned wire, const struct kube_tfield *f,
			    const char *where, int depth, struct pberr *e)
{
	const struct kube_type *t = &kube_types[f->type];
	uint64_t v;
	const uint8_t *p;
	size_t n;

	if (t->kind == KT_BOOL || t->kind == KT_INT32 || t->kind == KT_INT64) {
		if (wire != 0 || read_varint(r, &v) < 0)
			return fail(e, "%s: want a varint", where), NULL;
		if (t->kind == KT_BOOL)
			return json_boolean(v != 0);
		if (t->kind == KT_INT32)
			return json_integer((int32_t)v);
		return json_integer((json_int_t)v);
	}
	if (t->kind == KT_DOUBLE) {
		double d;
		if (wire != 1 || r->end - r->p < 8)
			return fail(e, "%s: want a 64-bit double", where), NULL;
		v = 0;
		for (int i = 7; i >= 0; i--)
			v = (v << 8) | r->p[i];
		r->p += 8;
		memcpy(&d, &v, sizeof(d));
		return json_real(d);
	}
	if (wire != 2 || read_bytes(r, &p, &n) < 0)
		return fail(e, "%s: want a length-delimited value", where), NULL;
	switch (t->kind) {
	case KT_STRING:
		return string_of(p, n);
	case KT_BYTES: {
		char *b64 = malloc(base64_encoded_size(n));
		json_t *s;
		if (!b64)
			return NULL;
		base64_encode(p, n, b64, 0);
		s = json_string(b64);
		free(b64);
		return s;
	}
	case KT_STRUCT:
		return decode_struct(p, n, f->type, depth + 1, e);
	default:
		return decode_special(p, n, t->kind, where, e);
	}
}

/* map<string, T> entry { key = 1; value = 2 } into obj. */
static int decode_map_entry(struct reader *r, unsigned wire, const struct kube_tfield *f,
			    json_t *obj, const char *where, int depth, struct pberr *e)
{
	const uint8_t *p;
	size_t n;
	struct reader er;
	json_t *key = NULL, *val = NULL;

	if (wire != 2 || read_bytes(r, &p, &n) < 0)
		return fail(e, "%s: want a map entry", where);
	er = (struct reader){p, p + n};
	while (er.p < er.end) {
		uint64_t tag;
		unsigned num, w;
		if (read_varint(&er, &tag) < 0)
			goto bad;
		num = (unsigned)(tag >> 3);
		w = (unsigned)(tag & 7);
		if (num == 1 && w == 2) {
			const uint8_t *kp;
			size_t kn;
			if (read_bytes(&er, &kp, &kn) < 0)
				goto bad;
			json_decref(key);
			key = string_of(kp, kn);
		} else if (num == 2) {
			json_decref(val);
			val = decode_value(&er, w, f, where, depth, e);
			if (!val)
				goto fail;
		} else if (skip_field(&er, w) < 0) {
			goto bad;
		}
	}
	if (!val)
		val = zero_value(f->type); /* an absent value is the zero value */
	json_object_set_new(obj, key ? json_string_value(key) : "", val);
	json_decref(key);
	return 0;
bad:
	fail(e, "%s: malformed map entry", where);
fail:
	json_decref(key);
	json_decref(val);
	return -EINVAL;
}

static bool packable(unsigned kind)
{
	return kind == KT_BOOL || kind == KT_INT32 || kind == KT_INT64 || kind == KT_DOUBLE;
}

static json_t *sorted_object(json_t *obj)
{
	size_t n = json_object_size(obj), i = 0;
	const char **keys = n ? malloc(n * sizeof(*keys)) : NULL;
	const char *key;
	json_t *v, *out;

	if (!keys)
		return obj;
	json_object_foreach(obj, key, v) keys[i++] = key;
	for (i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
			const char *t = keys[j];
			keys[j] = keys[j - 1];
			keys[j - 1] = t;
		}
	out = json_object();
	for (i = 0; i < n; i++)
		json_object_set(out, keys[i], json_object_get(obj, keys[i]));
	free(keys);
	json_decref(obj);
	return out;
}

/* Appends the fields of type (values by field index) to out in declaration order, applying
 * encoding/json's rules for what is written. Inline fields add their own fields. */
static void assemble(unsigned type, json_t **vals, json_t *out)
{
	const struct kube_type *t = &kube_types[type];

	for (unsigned i = 0; i < t->nfields; i++) {
		const struct kube_tfield *f = &t->fields[i];
		unsigned kind = kube_types[f->type].kind;
		json_t *v = vals[i];

		vals[i] = NULL;
		if (f->flags & KF_INLINE) {
			const char *key;
			json_t *x, *in = v ? v : kube_type_zero(f->type);
			json_object_foreach(in, key, x) json_object_set(out, key, x);
			json_decref(in);
			continue;
		}
		if (!v) {
			/* Not on the wire: what Go writes for the zero value. */
			json_t *zero = NULL;
			if (f->flags & (KF_LIST | KF_MAP | KF_PTR))
				zero = (f->flags & KF_OMIT) ? NULL : json_null();
			else if (go_struct(kind) || !(f->flags & KF_OMIT))
				zero = zero_value(f->type);
			if (zero)
				json_object_set_new(out, f->name, zero);
			continue;
		}
		if (f->flags & KF_MAP)
			v = sorted_object(v);
		else if ((f->flags & KF_OMIT) && !(f->flags & (KF_PTR | KF_LIST)) &&
			 !go_struct(kind) && is_zero(v)) {
			json_decref(v);
			continue;
		}
		json_object_set_new(out, f->name, v);
	}
}

static json_t *decode_struct(const uint8_t *p, size_t n, unsigned type, int depth, struct pberr *e)
{
	const struct kube_type *t = &kube_types[type];
	struct reader r = {p, p + n};
	json_t **vals, *out = NULL;
	char where[160];

	if (depth > PB_MAX_DEPTH) {
		fail(e, "%s: nested too deeply", t->name);
		return NULL;
	}
	vals = calloc(t->nfields ? t->nfields : 1, sizeof(*vals));
	if (!vals)
		return NULL;
	while (r.p < r.end) {
		uint64_t tag;
		unsigned num, wire, i;
		const struct kube_tfield *f = NULL;

		if (read_varint(&r, &tag) < 0) {
			fail(e, "%s: truncated field tag", t->name);
			goto cleanup;
		}
		num = (unsigned)(tag >> 3);
		wire = (unsigned)(tag & 7);
		for (i = 0; i < t->nfields; i++)
			if (t->fields[i].num == num) {
				f = &t->fields[i];
				break;
			}
		if (!f) {
			/* Unknown fields are skipped, as the generated Unmarshal does. */
			if (num == 0 || skip_field(&r, wire) < 0) {
				fail(e, "%s: malformed field %u", t->name, num);
				goto cleanup;
			}
			continue;
		}
		snprintf(where, sizeof(where), "%s.%s", t->name, f->name);
		if (f->flags & KF_MAP) {
			if (!vals[i])
				vals[i] = json_object();
			if (decode_map_entry(&r, wire, f, vals[i], where, depth, e) < 0)
				goto cleanup;
		} else if (f->flags & KF_LIST) {
			if (!vals[i])
				vals[i] = json_array();
			if (wire == 2 && packable(kube_types[f->type].kind)) {
				/* packed repeated scalars */
				const uint8_t *pp;
				size_t pn;
				struct reader pr;
				if (read_bytes(&r, &pp, &pn) < 0) {
					fail(e, "%s: truncated packed list", where);
					goto cleanup;
				}
				pr = (struct reader){pp, pp + pn};
				while (pr.p < pr.end) {
					json_t *x = decode_value(
					    &pr, kube_types[f->type].kind == KT_DOUBLE ? 1 : 0, f,
					    where, depth, e);
					if (!x)
						goto cleanup;
					json_array_append_new(vals[i], x);
				}
			} else {
				json_t *x = decode_value(&r, wire, f, where, depth, e);
				if (!x)
					goto cleanup;
				json_array_append_new(vals[i], x);
			}
		} else {
			json_t *x = decode_value(&r, wire, f, where, depth, e);
			if (!x)
				goto cleanup;
			if (json_is_object(x) && json_is_object(vals[i])) {
				/* A message given twice is merged (protobuf semantics). */
				json_object_update(vals[i], x);
				json_decref(x);
			} else {
				json_decref(vals[i]);
				vals[i] = x;
			}
		}
	}
	out = json_object();
	if (out)
		assemble(type, vals, out);
cleanup:
	for (unsigned i = 0; i < t->nfields; i++)
		json_decref(vals[i]);
	free(vals);
	return out;
}

bool kube_protobuf_content_type(const char *ct)
{
	static const char pb[] = "application/vnd.kubernetes.protobuf";
	size_t n = sizeof(pb) - 1;

	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	return !strncasecmp(ct, pb, n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

int kube_protobuf_decode(const void *data, size_t len, json_t **out, char *err, size_t errlen)
{
	struct pberr e = {err, errlen, false};
	struct reader r = {(const uint8_t *)data, (const uint8_t *)data + len};
	const uint8_t *raw = NULL, *tm = NULL;
	size_t raw_len = 0, tm_len = 0;
	char api_version[256] = "", kind[128] = "", encoding[64] = "";
	json_t *obj, *doc;
	int type;

	*out = NULL;
	if (len < 4 || memcmp(data, magic, 4) != 0)
		return fail(&e, "provided data does not appear to be a protobuf message, expected "
				"prefix [107 56 115 0]");
	r.p += 4;
	/* runtime.Unknown */
	while (r.p < r.end) {
		uint64_t tag;
		const uint8_t *p;
		size_t n;
		unsigned num, wire;
		if (read_varint(&r, &tag) < 0)
			return fail(&e, "Unknown: truncated field tag");
		num = (unsigned)(tag >> 3);
		wire = (unsigned)(tag & 7);
		if (wire != 2 || num < 1 || num > 4) {
			if (num == 0 || skip_field(&r, wire) < 0)
				return fail(&e, "Unknown: malformed field %u", num);
			continue;
		}
		if (read_bytes(&r, &p, &n) < 0)
			return fail(&e, "Unknown: truncated field %u", num);
		if (num == 1) {
			tm = p;
			tm_len = n;
		} else if (num == 2) {
			raw = p;
			raw_len = n;
		} else if (num == 3) {
			snprintf(encoding, sizeof(encoding), "%.*s", (int)(n < 63 ? n : 63), p);
		}
	}
	if (tm) {
		struct reader tr = {tm, tm + tm_len};
		while (tr.p < tr.end) {
			uint64_t tag;
			const uint8_t *p;
			size_t n;
			unsigned num, wire;
			if (read_varint(&tr, &tag) < 0)
				return fail(&e, "TypeMeta: truncated field tag");
			num = (unsigned)(tag >> 3);
			wire = (unsigned)(tag & 7);
			if (wire != 2 || (num != 1 && num != 2)) {
				if (num == 0 || skip_field(&tr, wire) < 0)
					return fail(&e, "TypeMeta: malformed field %u", num);
				continue;
			}
			if (read_bytes(&tr, &p, &n) < 0)
				return fail(&e, "TypeMeta: truncated field %u", num);
			if (num == 1 && n < sizeof(api_version))
				snprintf(api_version, sizeof(api_version), "%.*s", (int)n, p);
			else if (num == 2 && n < sizeof(kind))
				snprintf(kind, sizeof(kind), "%.*s", (int)n, p);
		}
	}
	if (encoding[0])
		return fail(&e, "unsupported contentEncoding %s", encoding);
	if (!kind[0])
		return fail(&e, "Object 'Kind' is missing in the protobuf envelope");
	type = kube_type_of(api_version, kind);
	if (type < 0)
		return fail(&e, "no kind \"%s\" is registered for version \"%s\" in protobuf", kind,
			    api_version);
	obj = decode_struct(raw ? raw : (const uint8_t *)"", raw_len, (unsigned)type, 0, &e);
	if (!obj)
		return e.set ? -EINVAL : -ENOMEM;
	/* TypeMeta first, as encoding/json writes the inlined TypeMeta. */
	doc = json_pack("{s:s, s:s}", "kind", kind, "apiVersion", api_version);
	if (doc)
		json_object_update(doc, obj);
	json_decref(obj);
	if (!doc)
		return -ENOMEM;
	*out = doc;
	return 0;
}
