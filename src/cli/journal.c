/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/str.h"

#define JOURNAL_MAX_BYTES (64u << 20)

int journal_default_path(const char *project, char *buf, size_t len, struct error *err)
{
	const char *state = env_nonempty("XDG_STATE_HOME"), *home = env_nonempty("HOME");
	char name[200];
	size_t i;
	int n;

	/* Project IDs are [a-z0-9-]; anything else would be a path component we do not want. */
	for (i = 0; project && project[i] && i + 1 < sizeof(name); i++)
		name[i] = (project[i] >= 'a' && project[i] <= 'z') ||
				  (project[i] >= '0' && project[i] <= '9') || project[i] == '-'
			      ? project[i]
			      : '_';
	name[i] = '\0';
	if (state && state[0] == '/')
		n = snprintf(buf, len, "%s/talos-gcp/repair-%s.json", state, name);
	else if (home)
		n = snprintf(buf, len, "%s/.local/state/talos-gcp/repair-%s.json", home, name);
	else
		return error_set(
		    err, ENOENT,
		    "--journal: not given, and neither XDG_STATE_HOME nor HOME is set");
	if (n < 0 || (size_t)n >= len)
		return error_set(err, ENAMETOOLONG, "journal path too long");
	return 0;
}

static int bad(struct error *err, const char *what, size_t i, const char *field)
{
	if (i == (size_t)-1)
		return error_set(err, EBADMSG, "%s: %s is missing or malformed", what, field);
	return error_set(err, EBADMSG, "%s[%zu]: %s is missing or malformed", what, i, field);
}

int journal_check(const json_t *doc, struct error *err)
{
	const char *strategy = json_str(doc, "strategy");
	json_t *v, *a;
	size_t i, j;

	if (!json_is_object(doc))
		return error_set(err, EBADMSG, "not a JSON object");
	if (json_integer_value(json_object_get(doc, "version")) != JOURNAL_VERSION)
		return error_set(err, EBADMSG, "version: want %d", JOURNAL_VERSION);
	if (!json_str(doc, "project"))
		return bad(err, "journal", (size_t)-1, "project");
	if (!strategy || (strcmp(strategy, "gcp") && strcmp(strategy, "node")))
		return bad(err, "journal", (size_t)-1, "strategy (gcp or node)");
	if (!json_is_array(json_object_get(doc, "instances")) ||
	    !json_is_array(json_object_get(doc, "steps")))
		return bad(err, "journal", (size_t)-1, "instances and steps");
	json_array_foreach(json_object_get(doc, "instances"), i, v)
	{
		if (!json_str(v, "zone") || !json_str(v, "name") ||
		    !json_is_array(json_object_get(v, "aliases")))
			return bad(err, "instances", i, "zone, name and aliases");
		json_array_foreach(
		    json_object_get(v, "aliases"), j,
		    a) if (!json_str(a, "ipCidrRange")) return bad(err, "instances", i,
								   "aliases[].ipCidrRange");
	}
	json_array_foreach(json_object_get(doc, "steps"), i, v)
	{
		const char *action = json_str(v, "action"), *state = json_str(v, "state");

		if (!action || !state)
			return bad(err, "steps", i, "action and state");
		if (!strcmp(action, "clear") || !strcmp(action, "set")) {
			if (!json_str(v, "zone") || !json_str(v, "instance") ||
			    !json_str(v, "range"))
				return bad(err, "steps", i, "zone, instance and range");
		} else if (!strcmp(action, "cordon") || !strcmp(action, "delete-node") ||
			   !strcmp(action, "uncordon")) {
			if (!json_str(v, "node"))
				return bad(err, "steps", i, "node");
		} else if (!strcmp(action, "reset")) {
			if (!json_str(v, "zone") || !json_str(v, "instance"))
				return bad(err, "steps", i, "zone and instance");
		} else {
			return bad(err, "steps", i, "action");
		}
	}
	return 0;
}

int journal_read(const char *path, json_t **doc, struct error *err)
{
	char *text = NULL;
	size_t len = 0;
	json_error_t jerr;
	int ret;

	*doc = NULL;
	ret = file_read_all(path, JOURNAL_MAX_BYTES, &text, &len);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return error_set(err, -ret, "%s: %s", path, strerror(-ret));
	*doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!*doc)
		return error_set(err, EBADMSG, "%s:%d: %s", path, jerr.line, jerr.text);
	ret = journal_check(*doc, err);
	if (ret < 0) {
		error_prefix(err, "%s", path);
		json_decref(*doc);
		*doc = NULL;
	}
	return ret;
}

/* mkdir -p of path's directory, 0700 for what we create. */
static int make_parent(const char *path)
{
	char *dir = strdup(path), *p;

	if (!dir)
		return -ENOMEM;
	for (p = strchr(dir + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			int ret = -errno;

			free(dir);
			return ret;
		}
		*p = '/';
	}
	free(dir);
	return 0;
}

int journal_write(const char *path, const json_t *doc, struct error *err)
{
	char *text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	int ret;

	if (!text)
		return error_set(err, ENOMEM, "out of memory");
	ret = make_parent(path);
	if (ret == 0)
		ret = file_write_atomic(path, text, strlen(text), 0600);
	free(text);
	if (ret < 0)
		return error_set(err, -ret, "writing the repair journal %s: %s", path,
				 strerror(-ret));
	return 0;
}

int journal_remove(const char *path, struct error *err)
{
	if (unlink(path) < 0 && errno != ENOENT)
		return error_set(err, errno, "removing the repair journal %s: %s", path,
				 strerror(errno));
	return 0;
}

size_t journal_unfinished(const json_t *doc)
{
	json_t *v;
	size_t i, n = 0;

	json_array_foreach(json_object_get(doc, "steps"), i, v)
	{
		const char *state = json_str(v, "state") ?: "";

		n += !strcmp(state, "pending") || !strcmp(state, "failed");
	}
	return n;
}

int journal_lock(const char *path, int *fd, struct error *err)
{
	char *lock = str_printf("%s.lock", path);
	int ret = lock ? make_parent(lock) : -ENOMEM;

	*fd = -1;
	if (ret == 0) {
		*fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (*fd < 0)
			ret = -errno;
	}
	if (ret == 0 && flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		ret = -errno;
		close(*fd);
		*fd = -1;
		if (ret == -EWOULDBLOCK)
			ret = error_set(err, EBUSY,
					"another talos-gcp repair --apply is running (it holds %s)",
					lock);
	}
	if (ret < 0 && err && !err->msg[0])
		error_set(err, -ret, "%s: %s", lock ? lock : path, strerror(-ret));
	free(lock);
	return ret;
}
