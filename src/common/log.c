/* SPDX-License-Identifier: Apache-2.0 */
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *log_prog = "talos-gcp";
static enum log_format log_fmt = LOG_FORMAT_TEXT;
static enum log_level log_lvl = LOG_LEVEL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_init(const char *prog, enum log_format format, enum log_level level)
{
	if (prog)
		log_prog = prog;
	log_fmt = format;
	log_lvl = level;
}

void log_set_level(enum log_level level)
{
	log_lvl = level;
}

enum log_level log_get_level(void)
{
	return log_lvl;
}

bool log_enabled(enum log_level level)
{
	return level <= log_lvl;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (s && strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	int n = 0;

	if (!log_enabled(level))
		return;
	if (log_fmt == LOG_FORMAT_LOGFMT) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, sizeof(line),
			     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ", tm.tm_year + 1900,
			     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			     ts.tv_nsec / 1000000, level_names[level]);
	} else if (level == LOG_LEVEL_INFO) {
		n = snprintf(line, sizeof(line), "%s: ", log_prog);
	} else {
		n = snprintf(line, sizeof(line), "%s: %s: ", log_prog, level_names[level]);
	}
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One event, one line: fold embedded newlines so a log line cannot be forged. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fprintf(stderr, "%s\n", line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
