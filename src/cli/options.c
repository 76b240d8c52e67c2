/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/options.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "common/http.h"
#include "common/log.h"
#include "common/parse.h"

int api_opts_handle(struct api_opts *o, int c, const char *arg, char **argv)
{
	switch (c) {
	case OPT_PROJECT:
		o->project = arg;
		return 1;
	case OPT_COMPUTE_ENDPOINT: {
		struct error err = {0};

		/* Before anything connects: a URL with user information never reaches a socket. */
		if (http_url_check(arg, "--compute-endpoint", 0, NULL, &err) < 0) {
			log_error("%s", err.msg);
			return -EINVAL;
		}
		o->compute_endpoint = arg;
		return 1;
	}
	case OPT_ACCESS_TOKEN_FILE:
		o->access_token_file = arg;
		return 1;
	case OPT_KUBECONFIG:
		o->kubeconfig = arg;
		return 1;
	case OPT_CONTEXT:
		o->context = arg;
		return 1;
	case OPT_TIMEOUT:
		if (parse_duration_ms(arg, &o->timeout_ms) < 0 || o->timeout_ms == 0) {
			log_error("--timeout '%s': want a positive duration such as 30s or 500ms",
				  arg);
			return -EINVAL;
		}
		return 1;
	case 'o':
		o->output = arg;
		return 1;
	case 'v':
		o->verbose = true;
		log_set_level(LOG_LEVEL_DEBUG);
		return 1;
	case 'h':
		o->help = true;
		return 1;
	case ':':
		log_error("%s: missing value", argv[optind - 1]);
		return -EINVAL;
	case '?':
		if (optopt)
			log_error("-%c: unknown flag (see --help)", optopt);
		else
			log_error("%s: unknown flag (see --help)", argv[optind - 1]);
		return -EINVAL;
	default:
		return 0;
	}
}

int api_opts_output(struct api_opts *o, const char *const *formats)
{
	char list[128] = "";
	size_t n = 0;

	if (!o->output) {
		o->output = formats[0];
		return 0;
	}
	for (size_t i = 0; formats[i]; i++) {
		if (strcmp(o->output, formats[i]) == 0)
			return 0;
		if (n < sizeof(list))
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
					      formats[i]);
	}
	log_error("-o '%s': want one of %s", o->output, list);
	return -EINVAL;
}
