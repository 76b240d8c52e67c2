/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gcp-token: a test-only program that drives src/gcp the way the CLI does, for the Python
 * integration tests of every credential path (tests/integration/test_credentials.py).
 *
 *   gcp-token [--access-token-file FILE] [--compute-endpoint URL] [--project ID]
 *             [--calls N] [--interval-ms MS] [--token-only]
 *
 * Loads credentials in ADC order, then makes N aggregated instance listings (or, with
 * --token-only, asks for a token N times). Prints, never a token:
 *   credentials kind=KIND
 *   described SOURCE
 *   ok calls=N instances=I compute_requests=C token_requests=T
 * Exit 0 on success, 1 when an API call failed, 2 when the credentials could not be loaded;
 * errors are one line on stderr: "gcp-token: ERRNO: message".
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "gcp/compute.h"
#include "gcp/credentials.h"

static const char *kind_name(enum gcp_cred_kind k)
{
	switch (k) {
	case GCP_CRED_TOKEN_FILE:
		return "token_file";
	case GCP_CRED_SERVICE_ACCOUNT:
		return "service_account";
	case GCP_CRED_AUTHORIZED_USER:
		return "authorized_user";
	case GCP_CRED_METADATA:
		return "metadata";
	}
	return "?";
}

static const char *errno_name(int e)
{
	static const struct {
		int e;
		const char *name;
	} names[] = {
	    {EACCES, "EACCES"},
	    {ENOENT, "ENOENT"},
	    {EINVAL, "EINVAL"},
	    {EBADMSG, "EBADMSG"},
	    {ECONNREFUSED, "ECONNREFUSED"},
	    {ETIMEDOUT, "ETIMEDOUT"},
	    {EAGAIN, "EAGAIN"},
	    {EIO, "EIO"},
	    {EOPNOTSUPP, "EOPNOTSUPP"},
	    {EHOSTUNREACH, "EHOSTUNREACH"},
	    {ECONNRESET, "ECONNRESET"},
	    {EPROTO, "EPROTO"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].e == e)
			return names[i].name;
	return "E?";
}

static int count(void *arg, const char *scope, json_t *item)
{
	(void)scope;
	(void)item;
	(*(unsigned long *)arg)++;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"access-token-file", required_argument, NULL, 'a'},
	    {"compute-endpoint", required_argument, NULL, 'e'},
	    {"project", required_argument, NULL, 'p'},
	    {"calls", required_argument, NULL, 'n'},
	    {"interval-ms", required_argument, NULL, 'i'},
	    {"token-only", no_argument, NULL, 't'},
	    {"verbose", no_argument, NULL, 'v'},
	    {NULL, 0, NULL, 0},
	};
	struct gcp_credentials_options copt = {0};
	struct gcp_compute_options gopt = {.project = "demo-project"};
	struct gcp_credentials *creds = NULL;
	struct gcp_compute *compute = NULL;
	struct error err = {0};
	struct http_stats st = {0};
	unsigned long instances = 0, calls = 1, interval_ms = 0;
	bool token_only = false;
	int c, ret, status = 0;

	log_init("gcp-token", LOG_FORMAT_TEXT, LOG_LEVEL_WARN);
	while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			copt.access_token_file = optarg;
			break;
		case 'e':
			gopt.endpoint = optarg;
			break;
		case 'p':
			gopt.project = optarg;
			break;
		case 'n':
			calls = strtoul(optarg, NULL, 10);
			break;
		case 'i':
			interval_ms = strtoul(optarg, NULL, 10);
			break;
		case 't':
			token_only = true;
			break;
		case 'v':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		default:
			fprintf(stderr,
				"usage: gcp-token [--access-token-file F] [--compute-endpoint "
				"URL] [--project ID] [--calls N] [--interval-ms MS] "
				"[--token-only]\n");
			return 2;
		}
	}
	ret = gcp_credentials_load(&copt, &creds, &err);
	if (ret < 0) {
		fprintf(stderr, "gcp-token: %s: %s\n", errno_name(-ret), err.msg);
		return 2;
	}
	printf("credentials kind=%s\ndescribed %s\n", kind_name(gcp_credentials_kind(creds)),
	       gcp_credentials_describe(creds));
	fflush(stdout);
	gopt.creds = creds;
	if (!token_only) {
		ret = gcp_compute_new(&gopt, &compute, &err);
		if (ret < 0) {
			fprintf(stderr, "gcp-token: %s: %s\n", errno_name(-ret), err.msg);
			status = 2;
			goto cleanup;
		}
	}
	for (unsigned long i = 0; i < calls; i++) {
		if (i && interval_ms) {
			struct timespec ts = {(time_t)(interval_ms / 1000),
					      (long)(interval_ms % 1000) * 1000000};

			nanosleep(&ts, NULL);
		}
		if (token_only) {
			const char *tok;

			ret = gcp_credentials_token(creds, false, &tok, &err);
		} else {
			ret = gcp_compute_list_instances(compute, NULL, count, &instances, &err);
		}
		if (ret < 0) {
			fprintf(stderr, "gcp-token: %s: %s\n", errno_name(-ret), err.msg);
			status = 1;
			goto cleanup;
		}
	}
	if (compute)
		gcp_compute_stats(compute, &st);
	printf("ok calls=%lu instances=%lu compute_requests=%llu token_requests=%llu\n", calls,
	       instances, (unsigned long long)st.requests,
	       (unsigned long long)gcp_credentials_requests(creds));
cleanup:
	gcp_compute_free(compute);
	gcp_credentials_free(creds);
	return status;
}
