/* SPDX-License-Identifier: Apache-2.0 */
/* The doctor's output: text like a compiler, JSON, and SARIF 2.1.0 for code scanning. */
#include <errno.h>
#include <string.h>

#include "doctor/internal.h"

#define SARIF_SCHEMA "https://json.schemastore.org/sarif-2.1.0.json"

static void print_place(FILE *out, const struct doctor_source *src, uint32_t line, uint32_t col)
{
	if (line)
		fprintf(out, "%s:%u:%u: ", src->name, line, col);
	else
		fprintf(out, "%s: ", src->name);
}

static int write_text(const struct doctor *d, FILE *out)
{
	size_t nf, np, i = 0, j = 0;
	const struct finding *f = doctor_findings(d, &nf);
	const struct doctor_problem *p = doctor_problems(d, &np);

	/* Merged in source order, so a file's problems and findings stay together. */
	while (i < nf || j < np) {
		bool take_problem = j < np && (i >= nf || p[j].source <= f[i].source);

		if (take_problem) {
			const struct doctor_problem *q = &p[j++];

			if (q->quiet && !d->opt.verbose)
				continue;
			print_place(out, doctor_source(d, q->source), q->line, q->col);
			fprintf(out, "%s: %s\n", q->error ? "error" : "note", q->message);
		} else {
			const struct finding *g = &f[i++];

			print_place(out, doctor_source(d, g->source), g->line, g->col);
			fprintf(out, "%s: %s [%s]\n", severity_name(g->severity), g->message,
				rules[g->rule].id);
		}
	}
	return ferror(out) ? -EIO : 0;
}

static json_t *summary_json(const struct doctor *d)
{
	const struct doctor_stats *st = doctor_stats(d);
	size_t errors = doctor_count(d, SEV_ERROR);
	size_t warnings = doctor_count(d, SEV_WARNING) - errors;
	size_t notes = doctor_count(d, SEV_NOTE) - errors - warnings;

	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "files", (json_int_t)st->files,
			 "documents", (json_int_t)st->documents, "skipped_files",
			 (json_int_t)st->skipped_files, "skipped_documents",
			 (json_int_t)st->skipped_documents, "errors", (json_int_t)errors,
			 "warnings", (json_int_t)warnings, "notes", (json_int_t)notes,
			 "could_not_check", doctor_had_errors(d));
}

static int set_place(json_t *o, const struct doctor_source *src, uint32_t line, uint32_t col)
{
	int ret = json_object_set_new(o, "file", json_string(src->name));

	if (line) {
		ret |= json_object_set_new(o, "line", json_integer(line));
		ret |= json_object_set_new(o, "column", json_integer(col));
	}
	return ret ? -ENOMEM : 0;
}

static int write_json(const struct doctor *d, FILE *out)
{
	size_t nf, np;
	const struct finding *f = doctor_findings(d, &nf);
	const struct doctor_problem *p = doctor_problems(d, &np);
	json_t *root = json_object(), *fa = json_array(), *pa = json_array();
	int ret = -ENOMEM;

	if (!root || !fa || !pa)
		goto cleanup;
	for (size_t i = 0; i < nf; i++) {
		const struct rule *r = &rules[f[i].rule];
		json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "rule", r->id, "severity",
				      severity_name(f[i].severity), "message", f[i].message,
				      "section", r->section);

		if (!o || set_place(o, doctor_source(d, f[i].source), f[i].line, f[i].col) < 0 ||
		    json_array_append_new(fa, o) < 0)
			goto cleanup;
	}
	for (size_t i = 0; i < np; i++) {
		json_t *o = json_pack("{s:b,s:s}", "error", p[i].error, "message", p[i].message);

		if (!o || set_place(o, doctor_source(d, p[i].source), p[i].line, p[i].col) < 0 ||
		    json_array_append_new(pa, o) < 0)
			goto cleanup;
	}
	if (json_object_set_new(root, "version", json_integer(DOCTOR_JSON_VERSION)) < 0 ||
	    json_object_set(root, "findings", fa) < 0 ||
	    json_object_set(root, "problems", pa) < 0 ||
	    json_object_set_new(root, "summary", summary_json(d)) < 0)
		goto cleanup;
	ret = json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 ? -EIO : 0;
	fputc('\n', out);
cleanup:
	json_decref(fa);
	json_decref(pa);
	json_decref(root);
	return ret;
}

/* SARIF artifact URIs are URI references: a relative path with unsafe bytes percent-encoded. */
static char *uri_of(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(path);
	char *out = malloc(3 * n + 8), *o = out;

	if (!out)
		return NULL;
	if (path[0] == '.' && path[1] == '/')
		path += 2;
	if (path[0] == '/')
		o = stpcpy(o, "file://"); /* an absolute path is a file URI */
	for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr("-._~/", *s)) {
			*o++ = (char)*s;
		} else {
			*o++ = '%';
			*o++ = hex[*s >> 4];
			*o++ = hex[*s & 15];
		}
	}
	*o = '\0';
	return out;
}

static json_t *sarif_location(const struct doctor_source *src, uint32_t line, uint32_t col)
{
	json_t *loc;
	char *uri;

	if (src->logical)
		return json_pack("{s:[{s:s}]}", "logicalLocations", "fullyQualifiedName",
				 src->name);
	uri = uri_of(src->name);
	if (!uri)
		return NULL;
	if (line)
		loc = json_pack("{s:{s:{s:s},s:{s:i,s:i}}}", "physicalLocation", "artifactLocation",
				"uri", uri, "region", "startLine", (int)line, "startColumn",
				(int)(col ? col : 1));
	else
		loc =
		    json_pack("{s:{s:{s:s}}}", "physicalLocation", "artifactLocation", "uri", uri);
	free(uri);
	return loc;
}

static const char *sarif_level(enum severity s)
{
	return s == SEV_ERROR ? "error" : s == SEV_WARNING ? "warning" : "note";
}

static int write_sarif(const struct doctor *d, FILE *out)
{
	size_t nf, np;
	const struct finding *f = doctor_findings(d, &nf);
	const struct doctor_problem *p = doctor_problems(d, &np);
	json_t *root = NULL, *rules_a = json_array(), *results = json_array(),
	       *notes = json_array();
	int ret = -ENOMEM;

	if (!rules_a || !results || !notes)
		goto cleanup;
	for (size_t i = 0; i < R__COUNT; i++) {
		const struct rule *r = &rules[i];
		json_t *o =
		    json_pack("{s:s,s:{s:s},s:{s:s},s:{s:s},s:{s:s},s:{s:s,s:[s]}}", "id", r->id,
			      "shortDescription", "text", r->title, "fullDescription", "text",
			      r->rationale, "help", "text", r->rationale, "defaultConfiguration",
			      "level", sarif_level(r->severity), "properties", "section",
			      r->section, "tags", "networking");

		if (!o || json_array_append_new(rules_a, o) < 0)
			goto cleanup;
	}
	for (size_t i = 0; i < nf; i++) {
		json_t *loc = sarif_location(doctor_source(d, f[i].source), f[i].line, f[i].col);
		json_t *o = loc ? json_pack("{s:s,s:i,s:s,s:{s:s},s:[o]}", "ruleId",
					    rules[f[i].rule].id, "ruleIndex", (int)f[i].rule,
					    "level", sarif_level(f[i].severity), "message", "text",
					    f[i].message, "locations", loc)
				: NULL;

		if (!o || json_array_append_new(results, o) < 0)
			goto cleanup;
	}
	for (size_t i = 0; i < np; i++) {
		json_t *loc = sarif_location(doctor_source(d, p[i].source), p[i].line, p[i].col);
		json_t *o =
		    loc ? json_pack("{s:s,s:{s:s},s:[o]}", "level", p[i].error ? "error" : "note",
				    "message", "text", p[i].message, "locations", loc)
			: NULL;

		if (!o || json_array_append_new(notes, o) < 0)
			goto cleanup;
	}
	root =
	    json_pack("{s:s,s:s,s:[{s:{s:{s:s,s:s,s:O}},s:O,s:[{s:b,s:O}],s:s}]}", "$schema",
		      SARIF_SCHEMA, "version", "2.1.0", "runs", "tool", "driver", "name",
		      "talos-gcp doctor", "version", TALOS_GCP_VERSION, "rules", rules_a, "results",
		      results, "invocations", "executionSuccessful", !doctor_had_errors(d),
		      "toolExecutionNotifications", notes, "columnKind", "unicodeCodePoints");
	if (!root)
		goto cleanup;
	ret = json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 ? -EIO : 0;
	fputc('\n', out);
cleanup:
	json_decref(root);
	json_decref(rules_a);
	json_decref(results);
	json_decref(notes);
	return ret;
}

int doctor_write(const struct doctor *d, enum doctor_format fmt, FILE *out)
{
	switch (fmt) {
	case DOCTOR_JSON:
		return write_json(d, out);
	case DOCTOR_SARIF:
		return write_sarif(d, out);
	default:
		return write_text(d, out);
	}
}

void doctor_explain(const struct rule *r, FILE *out)
{
	const char *s = r->rationale;

	fprintf(out, "%s (%s, %s): %s\n\n", r->id, severity_name(r->severity), r->section,
		r->title);
	/* Wrapped at 80 columns, paragraph by paragraph. */
	while (*s) {
		size_t para = strcspn(s, "\n"), col = 0;
		const char *end = s + para;

		while (s < end) {
			size_t w = strcspn(s, " ");

			if (s + w > end)
				w = (size_t)(end - s);
			if (col && col + 1 + w > 80) {
				fputc('\n', out);
				col = 0;
			} else if (col) {
				fputc(' ', out);
				col++;
			}
			fwrite(s, 1, w, out);
			col += w;
			s += w;
			while (s < end && *s == ' ')
				s++;
		}
		fputc('\n', out);
		if (*s == '\n') {
			s++;
			fputc('\n', out);
		}
	}
	fprintf(out, "\nChecked in: %s%s%s\n", r->scope & SCOPE_FILE ? "files (-f)" : "",
		r->scope & SCOPE_FILE && r->scope & SCOPE_LIVE ? ", " : "",
		r->scope & SCOPE_LIVE ? "a live cluster (--live)" : "");
}
