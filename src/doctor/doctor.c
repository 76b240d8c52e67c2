/* SPDX-License-Identifier: Apache-2.0 */
#include "doctor/doctor.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "doctor/internal.h"

#define MAX_FILE_SIZE_DEFAULT (32u << 20)
#define WALK_DEPTH_MAX        64

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

int doctor_new(struct doctor **out, const struct doctor_options *opt)
{
	struct doctor *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	if (opt)
		d->opt = *opt;
	if (!d->opt.max_file_size)
		d->opt.max_file_size = MAX_FILE_SIZE_DEFAULT;
	d->limits = d->opt.limits ? d->opt.limits : &yaml_default_limits;
	*out = d;
	return 0;
}

void doctor_free(struct doctor *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_sources; i++)
		free(d->sources[i].name);
	free(d->sources);
	for (size_t i = 0; i < d->n_findings; i++)
		free(d->findings[i].message);
	free(d->findings);
	for (size_t i = 0; i < d->n_problems; i++)
		free(d->problems[i].message);
	free(d->problems);
	for (size_t i = 0; i < d->n_streams; i++) {
		ystream_free(d->streams[i]);
		free(d->streams[i]);
	}
	free(d->streams);
	free(d->kept);
	free(d);
}

static int add_source(struct doctor *d, const char *name, uint32_t *index)
{
	if (grow((void **)&d->sources, &d->cap_sources, d->n_sources, sizeof(*d->sources)) < 0)
		return -ENOMEM;
	d->sources[d->n_sources].name = strdup(name);
	if (!d->sources[d->n_sources].name)
		return -ENOMEM;
	d->sources[d->n_sources].logical = !strncmp(name, "kube:", 5) || !strncmp(name, "gce:", 4);
	*index = (uint32_t)d->n_sources++;
	return 0;
}

static int add_problem_v(struct doctor *d, uint32_t source, uint32_t line, uint32_t col, bool error,
			 const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

static int add_problem_v(struct doctor *d, uint32_t source, uint32_t line, uint32_t col, bool error,
			 const char *fmt, va_list ap)
{
	struct doctor_problem *p;
	char *msg;

	if (grow((void **)&d->problems, &d->cap_problems, d->n_problems, sizeof(*d->problems)) < 0)
		return -ENOMEM;
	if (vasprintf(&msg, fmt, ap) < 0)
		return -ENOMEM;
	p = &d->problems[d->n_problems++];
	*p = (struct doctor_problem){
	    .source = source, .line = line, .col = col, .error = error, .message = msg};
	return 0;
}

static int add_problem(struct doctor *d, uint32_t source, uint32_t line, uint32_t col, bool error,
		       const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int add_problem(struct doctor *d, uint32_t source, uint32_t line, uint32_t col, bool error,
		       const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = add_problem_v(d, source, line, col, error, fmt, ap);
	va_end(ap);
	return ret;
}

int doctor_add_problem(struct doctor *d, const char *source, bool error, const char *fmt, ...)
{
	uint32_t src;
	va_list ap;
	int ret;

	if ((ret = add_source(d, source, &src)) < 0)
		return ret;
	va_start(ap, fmt);
	ret = add_problem_v(d, src, 0, 0, error, fmt, ap);
	va_end(ap);
	return ret;
}

int doctor_problem_at(struct doctor *d, uint32_t source, const struct ynode *at, bool error,
		      const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = add_problem_v(d, source, at ? at->line : 0, at ? at->col : 0, error, fmt, ap);
	va_end(ap);
	return ret;
}

int doctor_skip_document(struct doctor *d, uint32_t source, const struct ynode *at,
			 const char *reason)
{
	int ret;

	d->stats.skipped_documents++;
	ret = add_problem(d, source, at ? at->line : 0, at ? at->col : 0, false, "skipped: %s",
			  reason);
	if (ret == 0)
		d->problems[d->n_problems - 1].quiet = true;
	return ret;
}

int report(struct doctor *d, enum rule_id rule, uint32_t source, const struct ynode *at,
	   const char *fmt, ...)
{
	struct finding *f;
	va_list ap;
	char *msg;
	int n;

	if (d->opt.disabled[rule])
		return 0;
	if (grow((void **)&d->findings, &d->cap_findings, d->n_findings, sizeof(*d->findings)) < 0)
		return -ENOMEM;
	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	f = &d->findings[d->n_findings++];
	*f = (struct finding){.rule = rule,
			      .severity = rules[rule].severity,
			      .source = source,
			      .line = at ? at->line : 0,
			      .col = at ? at->col : 0,
			      .message = msg};
	return 0;
}

struct kept *keep(struct doctor *d, enum kept_kind kind, uint32_t source, const struct ynode *node)
{
	struct kept *k;

	if (grow((void **)&d->kept, &d->cap_kept, d->n_kept, sizeof(*d->kept)) < 0) {
		d->oom = true;
		return NULL;
	}
	k = &d->kept[d->n_kept++];
	memset(k, 0, sizeof(*k));
	k->kind = kind;
	k->source = source;
	k->node = node;
	return k;
}

/* Keeps s alive when one of its documents was kept; frees it otherwise. */
int doctor_settle_stream(struct doctor *d, struct ystream *s, size_t kept_before)
{
	if (d->n_kept == kept_before) {
		ystream_free(s);
		free(s);
		return 0;
	}
	if (grow((void **)&d->streams, &d->cap_streams, d->n_streams, sizeof(*d->streams)) < 0) {
		/* Kept documents point into s: drop them rather than leave them dangling. */
		d->n_kept = kept_before;
		ystream_free(s);
		free(s);
		return -ENOMEM;
	}
	d->streams[d->n_streams++] = s;
	return 0;
}

/* A Go template (Helm chart source) is not YAML until rendered. */
static bool looks_templated(const char *buf, size_t len)
{
	for (const char *p = buf; (p = memmem(p, len - (size_t)(p - buf), "{{", 2)); p += 2) {
		const char *q = p + 2;

		if (q < buf + len && (*q == ' ' || *q == '-' || *q == '.' || *q == '/'))
			return true;
	}
	return false;
}

static int load_buffer(struct doctor *d, uint32_t src, const char *buf, size_t len)
{
	struct error err = {0};
	struct ystream *s;
	size_t kept_before = d->n_kept;
	const char *nul;
	bool bom16 =
	    len >= 2 && (((unsigned char)buf[0] == 0xff && (unsigned char)buf[1] == 0xfe) ||
			 ((unsigned char)buf[0] == 0xfe && (unsigned char)buf[1] == 0xff));
	int ret, cret = 0;

	d->stats.files++;
	if (!bom16 && (nul = memchr(buf, '\0', len))) {
		d->stats.skipped_files++;
		return add_problem(d, src, 0, 0, false,
				   "skipped: binary file (NUL byte at offset %zu), not YAML",
				   (size_t)(nul - buf));
	}
	if (!bom16 && looks_templated(buf, len)) {
		d->stats.skipped_files++;
		return add_problem(
		    d, src, 0, 0, false,
		    "skipped: a template ('{{'), not YAML yet: lint its rendered output "
		    "(helm template ... | talos-gcp doctor -f -)");
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	ret = yaml_load(s, buf, len, d->limits, &err);
	d->cur_buf = buf;
	d->cur_len = len;
	for (size_t i = 0; i < s->n_docs && cret >= 0; i++) {
		d->stats.documents++;
		if (s->docs[i].root)
			cret = check_document(d, s, src, s->docs[i].root, 0);
	}
	d->cur_buf = NULL;
	d->cur_len = 0;
	if (d->oom)
		cret = -ENOMEM;
	if (doctor_settle_stream(d, s, kept_before) < 0 || cret == -ENOMEM)
		return -ENOMEM;
	if (ret == -ENOMEM)
		return -ENOMEM;
	if (ret < 0) {
		unsigned line = 0, col = 0;
		int off = 0;

		if (sscanf(err.msg, "%u:%u: %n", &line, &col, &off) < 2)
			off = 0;
		return add_problem(d, src, line, col, true, "%s YAML: %s",
				   ret == -E2BIG ? "refused" : "invalid", err.msg + off);
	}
	return 0;
}

int doctor_add_buffer(struct doctor *d, const char *name, const char *buf, size_t len)
{
	uint32_t src;
	int ret;

	if ((ret = add_source(d, name, &src)) < 0)
		return ret;
	if (len > d->opt.max_file_size) {
		d->stats.files++;
		return add_problem(d, src, 0, 0, true, "larger than %zu bytes: not checked",
				   d->opt.max_file_size);
	}
	return load_buffer(d, src, buf, len);
}

static int read_stream(FILE *f, size_t max, char **out, size_t *len)
{
	size_t cap = 0, n = 0;
	char *buf = NULL;

	for (;;) {
		if (cap - n < 4096) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *nb;

			if (cap > max + 1)
				break;
			nb = realloc(buf, ncap + 1);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap = ncap;
		}
		size_t r = fread(buf + n, 1, cap - n, f);

		n += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		return -EIO;
	}
	if (n > max) {
		free(buf);
		return -EFBIG;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int add_file(struct doctor *d, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	uint32_t src;
	int ret;

	if ((ret = add_source(d, path, &src)) < 0)
		return ret;
	if (!strcmp(path, "-"))
		ret = read_stream(stdin, d->opt.max_file_size, &buf, &len);
	else
		ret = file_read_all(path, d->opt.max_file_size, &buf, &len);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0) {
		d->stats.files++;
		if (ret == -EFBIG)
			return add_problem(d, src, 0, 0, true, "larger than %zu bytes: not checked",
					   d->opt.max_file_size);
		return add_problem(d, src, 0, 0, true, "cannot read: %s", strerror(-ret));
	}
	ret = load_buffer(d, src, buf, len);
	free(buf);
	return ret;
}

static bool lintable_name(const char *name)
{
	size_t n = strlen(name);

	return (n > 5 && !strcmp(name + n - 5, ".yaml")) ||
	       (n > 4 && !strcmp(name + n - 4, ".yml")) ||
	       (n > 5 && !strcmp(name + n - 5, ".json"));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk(struct doctor *d, const char *dir, unsigned depth)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	DIR *dh;
	int ret = 0;

	if (depth > WALK_DEPTH_MAX)
		return doctor_add_problem(
		    d, dir, false, "skipped: directories nested deeper than %d", WALK_DEPTH_MAX);
	dh = opendir(dir);
	if (!dh)
		return doctor_add_problem(d, dir, true, "cannot read directory: %s",
					  strerror(errno));
	while ((e = readdir(dh))) {
		if (e->d_name[0] == '.')
			continue; /* ".", "..", and hidden entries such as .git */
		if ((ret = grow((void **)&names, &cap, n, sizeof(*names))) < 0)
			goto cleanup;
		if (!(names[n] = strdup(e->d_name))) {
			ret = -ENOMEM;
			goto cleanup;
		}
		n++;
	}
	/* Name order, so that the report is the same on every machine. */
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n && ret >= 0; i++) {
		struct stat st;
		char *path;

		if (asprintf(&path, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
			     names[i]) < 0) {
			ret = -ENOMEM;
			break;
		}
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			ret = walk(d, path, depth + 1); /* symlinked directories are not followed */
		else if (lintable_name(names[i]) && stat(path, &st) == 0 && S_ISREG(st.st_mode))
			ret = add_file(d, path);
		free(path);
	}
cleanup:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(dh);
	return ret;
}

int doctor_add_path(struct doctor *d, const char *path)
{
	struct stat st;

	if (!strcmp(path, "-"))
		return add_file(d, path);
	if (stat(path, &st) < 0)
		return doctor_add_problem(d, path, true, "cannot read: %s", strerror(errno));
	if (S_ISDIR(st.st_mode))
		return walk(d, path, 0);
	if (!S_ISREG(st.st_mode))
		return doctor_add_problem(d, path, false, "skipped: not a regular file");
	return add_file(d, path);
}

/* ---- objects read from an API ---- */

static struct ynode *from_json(struct doctor *d, struct arena *a, const json_t *j, unsigned depth)
{
	struct ynode *n;
	char num[64];

	if (depth > d->limits->max_depth)
		return NULL;
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *v;
		size_t i = 0;

		n = ynode_new(a, YNODE_MAP, 0, 0);
		if (!n)
			return NULL;
		n->n = (uint32_t)json_object_size(j);
		n->pairs = arena_alloc(a, (n->n ? n->n : 1) * sizeof(*n->pairs));
		if (!n->pairs)
			return NULL;
		json_object_foreach((json_t *)j, key, v)
		{
			struct ynode *k = ynode_new(a, YNODE_SCALAR, 0, 0);

			if (!k || !(k->str = arena_strndup(a, key, strlen(key))))
				return NULL;
			k->n = (uint32_t)strlen(key);
			n->pairs[i].key = k;
			if (!(n->pairs[i].value = from_json(d, a, v, depth + 1)))
				return NULL;
			n->weight += n->pairs[i].value->weight + 1;
			i++;
		}
		return n;
	}
	case JSON_ARRAY:
		n = ynode_new(a, YNODE_SEQ, 0, 0);
		if (!n)
			return NULL;
		n->n = (uint32_t)json_array_size(j);
		n->items = arena_alloc(a, (n->n ? n->n : 1) * sizeof(*n->items));
		if (!n->items)
			return NULL;
		for (size_t i = 0; i < n->n; i++) {
			if (!(n->items[i] = from_json(d, a, json_array_get(j, i), depth + 1)))
				return NULL;
			n->weight += n->items[i]->weight;
		}
		return n;
	case JSON_STRING:
		n = ynode_new(a, YNODE_SCALAR, 0, 0);
		if (!n || !(n->str = arena_strndup(a, json_string_value(j), json_string_length(j))))
			return NULL;
		n->n = (uint32_t)json_string_length(j);
		n->quoted = 1;
		return n;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(j));
		break;
	case JSON_TRUE:
		strcpy(num, "true");
		break;
	case JSON_FALSE:
		strcpy(num, "false");
		break;
	default:
		strcpy(num, "null");
		break;
	}
	n = ynode_new(a, YNODE_SCALAR, 0, 0);
	if (!n || !(n->str = arena_strndup(a, num, strlen(num))))
		return NULL;
	n->n = (uint32_t)strlen(num);
	return n;
}

int doctor_add_json(struct doctor *d, const char *name, const json_t *obj)
{
	size_t kept_before = d->n_kept;
	struct ystream *s;
	struct ynode *root;
	uint32_t src;
	int ret;

	if ((ret = add_source(d, name, &src)) < 0)
		return ret;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	d->stats.documents++;
	root = from_json(d, &s->arena, obj, 0);
	if (!root) {
		ystream_free(s);
		free(s);
		return add_problem(d, src, 0, 0, true, "object too deep or out of memory");
	}
	ret = check_document(d, s, src, root, 0);
	if (d->oom)
		ret = -ENOMEM;
	if (doctor_settle_stream(d, s, kept_before) < 0)
		return -ENOMEM;
	return ret < 0 ? ret : 0;
}

void doctor_set_complete(struct doctor *d, const char *what)
{
	if (!strcmp(what, "addresses"))
		d->addresses_complete = true;
	else if (!strcmp(what, "pods"))
		d->pods_complete = true;
	else if (!strcmp(what, "firewalls"))
		d->firewalls_complete = true;
	else if (!strcmp(what, "workloads"))
		d->workloads_complete = true;
}

/* ---- results ---- */

static int cmp_finding(const void *a, const void *b)
{
	const struct finding *x = a, *y = b;

	if (x->source != y->source)
		return x->source < y->source ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	if (x->rule != y->rule)
		return x->rule < y->rule ? -1 : 1;
	return strcmp(x->message, y->message);
}

static int cmp_problem(const void *a, const void *b)
{
	const struct doctor_problem *x = a, *y = b;

	if (x->source != y->source)
		return x->source < y->source ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->col < y->col ? -1 : x->col > y->col;
}

int doctor_finish(struct doctor *d)
{
	int ret = 0;

	if (d->finished)
		return 0;
	d->finished = true;
	ret = check_set(d);
	if (d->n_findings > 1)
		qsort(d->findings, d->n_findings, sizeof(*d->findings), cmp_finding);
	/* One report per place and rule: the same problem reached twice (an alias) says it once. */
	size_t w = 0;
	for (size_t i = 0; i < d->n_findings; i++) {
		if (w && !cmp_finding(&d->findings[w - 1], &d->findings[i])) {
			free(d->findings[i].message);
			continue;
		}
		d->findings[w++] = d->findings[i];
	}
	d->n_findings = w;
	if (d->n_problems > 1)
		qsort(d->problems, d->n_problems, sizeof(*d->problems), cmp_problem);
	return ret;
}

const struct finding *doctor_findings(const struct doctor *d, size_t *n)
{
	*n = d->n_findings;
	return d->findings;
}

const struct doctor_problem *doctor_problems(const struct doctor *d, size_t *n)
{
	*n = d->n_problems;
	return d->problems;
}

const struct doctor_source *doctor_source(const struct doctor *d, uint32_t index)
{
	return index < d->n_sources ? &d->sources[index] : NULL;
}

const struct doctor_stats *doctor_stats(const struct doctor *d)
{
	return &d->stats;
}

size_t doctor_count(const struct doctor *d, enum severity min)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n_findings; i++)
		n += d->findings[i].severity >= min;
	return n;
}

bool doctor_had_errors(const struct doctor *d)
{
	for (size_t i = 0; i < d->n_problems; i++)
		if (d->problems[i].error)
			return true;
	return false;
}
