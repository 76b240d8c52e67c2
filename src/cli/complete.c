/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/complete.h"

#include <stdbool.h>
#include <string.h>

/* Longest description shown next to a candidate (zsh's menu). */
#define DESCRIPTION_MAX 72

/* Where candidates go: those that start with the word's text, with a prefix put back. */
struct emitter {
	FILE *out;
	const char *partial; /* what the user typed of this item */
	const char *prefix;  /* put before each candidate: a list's earlier items ("a,b,") */
	const char *taken;   /* a list's earlier items, which are not offered again */
};

/* Whether item is one of the comma-separated items of list. */
static bool in_list(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, ",");

		if (len == n && !strncmp(p, item, n))
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

static void emit(void *ctx, const char *value, const char *description)
{
	struct emitter *e = ctx;
	size_t n = strlen(e->partial);

	if (strncmp(value, e->partial, n) != 0 || (e->taken && in_list(e->taken, value)))
		return;
	/* One line per candidate: a description never breaks it. */
	fprintf(e->out, "%s%s", e->prefix, value);
	if (description && *description) {
		/* A menu line: the first clause, cut at a word past DESCRIPTION_MAX. */
		size_t len = strcspn(description, ";\n\t");

		if (len > DESCRIPTION_MAX) {
			len = DESCRIPTION_MAX;
			while (len > 0 && description[len] != ' ')
				len--;
			while (len > 0 && description[len - 1] == ',')
				len--;
		}
		fprintf(e->out, "\t%.*s%s", (int)len, description,
			description[len] && description[len] != ';' ? "..." : "");
	}
	fputc('\n', e->out);
}

static const struct cli_option *find_long(const struct cli_command *cmd, const char *name,
					  size_t len, struct cli_option_iter *it)
{
	const struct cli_option *o;

	cli_options_begin(it, cmd);
	while ((o = cli_options_next(it, NULL)))
		if (strlen(o->name) == len && !strncmp(o->name, name, len))
			return o;
	return NULL;
}

/* The value of option o; partial is what was typed of it. Returns the directive. */
static const char *complete_value(const struct cli_command *cmd, const struct cli_option *o,
				  const char *partial, FILE *out)
{
	struct emitter e = {out, partial, "", NULL};
	char prefix[512] = "";

	switch (o->complete) {
	case CLI_COMPLETE_FILE:
		return ":files";
	case CLI_COMPLETE_DIR:
		return ":dirs";
	case CLI_COMPLETE_NONE:
		return ":";
	default:
		break;
	}
	if (o->flags & CLI_OPT_LIST) {
		const char *comma = strrchr(partial, ',');

		if (comma && (size_t)(comma - partial + 1) < sizeof(prefix)) {
			memcpy(prefix, partial, (size_t)(comma - partial + 1));
			prefix[comma - partial + 1] = '\0';
			e.partial = comma + 1;
			e.prefix = prefix;
			e.taken = prefix;
		}
	}
	if (o->complete == CLI_COMPLETE_VALUES) {
		for (size_t i = 0; o->values && o->values[i]; i++)
			emit(&e, o->values[i], NULL);
	} else if (cmd->complete) {
		cmd->complete(o->code, emit, &e);
	}
	return ":";
}

/* Marks the options given so far, and says whether the last one still wants its value. */
struct scan {
	struct cli_option pending_opt;    /* a copy: -o lives in an iterator */
	const struct cli_option *pending; /* the next word is this option's value */
	bool operands_only;               /* after "--" */
	int used[128];                    /* the codes of the options given */
	size_t n_used;
};

static void use(struct scan *sc, const struct cli_option *o)
{
	if (sc->n_used < sizeof(sc->used) / sizeof(sc->used[0]))
		sc->used[sc->n_used++] = o->code;
}

static bool was_used(const struct scan *sc, const struct cli_option *o)
{
	for (size_t i = 0; i < sc->n_used; i++)
		if (sc->used[i] == o->code)
			return true;
	return false;
}

static void want_value(struct scan *sc, const struct cli_option *o)
{
	sc->pending_opt = *o;
	sc->pending = &sc->pending_opt;
}

static void scan_word(const struct cli_command *cmd, struct scan *sc, const char *w)
{
	struct cli_option_iter it;
	const struct cli_option *o;

	if (sc->pending) {
		sc->pending = NULL;
		return;
	}
	if (sc->operands_only || w[0] != '-' || !w[1])
		return;
	if (!strcmp(w, "--")) {
		sc->operands_only = true;
		return;
	}
	if (w[1] == '-') {
		size_t len = strcspn(w + 2, "=");

		o = find_long(cmd, w + 2, len, &it);
		if (o) {
			use(sc, o);
			if (o->arg && !w[2 + len] && !(o->flags & CLI_OPT_OPTIONAL))
				want_value(sc, o);
		}
		return;
	}
	for (const char *p = w + 1; *p; p++) {
		o = cli_option_find(cmd, *p, &it);
		if (!o)
			return;
		use(sc, o);
		if (o->arg) {
			if (!p[1])
				want_value(sc, o);
			return;
		}
	}
}

static const char *complete_flags(const struct cli_command *cmd, const struct scan *sc,
				  const char *cur, FILE *out)
{
	struct emitter e = {out, cur, "", NULL};
	struct cli_option_iter it;
	const struct cli_option *o;

	cli_options_begin(&it, cmd);
	while ((o = cli_options_next(&it, NULL))) {
		char name[80];

		if (was_used(sc, o) && !(o->flags & CLI_OPT_REPEAT))
			continue;
		snprintf(name, sizeof(name), "--%s", o->name);
		emit(&e, name, o->help);
		/* "-o" typed in full: offered as it is, so that it completes. */
		if (o->short_name && cur[1] == o->short_name && !cur[2]) {
			snprintf(name, sizeof(name), "-%c", o->short_name);
			emit(&e, name, o->help);
		}
	}
	return ":";
}

static const struct cli_command *find_command(const struct cli_toplevel *top, const char *name)
{
	for (size_t i = 0; i < top->n_commands; i++)
		if (!strcmp(top->commands[i]->name, name))
			return top->commands[i];
	return NULL;
}

static void complete_commands(const struct cli_toplevel *top, const char *cur, FILE *out)
{
	struct emitter e = {out, cur, "", NULL};

	for (size_t i = 0; i < top->n_commands; i++)
		emit(&e, top->commands[i]->name, top->commands[i]->summary);
	for (size_t i = 0; top->extra && top->extra[i][0]; i++)
		emit(&e, top->extra[i][0], top->extra[i][1]);
}

int cli_complete(const struct cli_toplevel *top, int argc, char **argv, FILE *out)
{
	const struct cli_command *cmd;
	struct scan sc = {0};
	const char *cur, *directive = ":";

	if (argc < 1)
		return 0;
	cur = argv[argc - 1];
	if (argc == 1) {
		struct emitter e = {out, cur, "", NULL};

		if (cur[0] == '-') {
			for (size_t i = 0; top->options[i].name; i++) {
				char name[80];

				snprintf(name, sizeof(name), "--%s", top->options[i].name);
				emit(&e, name, top->options[i].help);
			}
		} else {
			complete_commands(top, cur, out);
		}
	} else if (!strcmp(argv[0], "help")) {
		if (argc == 2)
			complete_commands(top, cur, out);
	} else if ((cmd = find_command(top, argv[0]))) {
		for (int i = 1; i < argc - 1; i++)
			scan_word(cmd, &sc, argv[i]);
		if (sc.pending) {
			directive = complete_value(cmd, sc.pending, cur, out);
		} else if (!sc.operands_only && !strncmp(cur, "--", 2) && strchr(cur, '=')) {
			struct cli_option_iter it;
			size_t len = strcspn(cur + 2, "=");
			const struct cli_option *o = find_long(cmd, cur + 2, len, &it);

			if (o && o->arg)
				directive = complete_value(cmd, o, cur + 3 + len, out);
		} else if (!sc.operands_only && cur[0] == '-') {
			directive = complete_flags(cmd, &sc, cur, out);
		} else if (cmd->operands) {
			directive = cmd->operands_complete == CLI_COMPLETE_DIR    ? ":dirs"
				    : cmd->operands_complete == CLI_COMPLETE_FILE ? ":files"
										  : ":";
		}
	}
	fprintf(out, "%s\n", directive);
	return 0;
}
