/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/str.h"

static void log_timeouts(const char *api, const struct http_client *http)
{
	uint64_t attempt, total;

	http_client_timeouts(http, &attempt, &total);
	log_debug("%s: a request times out after %llu ms, its retries after %llu ms", api,
		  (unsigned long long)attempt, (unsigned long long)total);
}

int session_open(struct session *s, const struct api_opts *o, unsigned needs, struct error *err)
{
	struct http_options http = {.timeout_ms = o->timeout_ms};
	int ret = 0;

	memset(s, 0, sizeof(*s));
	if (needs & SESSION_GCP) {
		struct gcp_credentials_options copt = {.access_token_file = o->access_token_file};
		struct gcp_compute_options gopt = {.endpoint = o->compute_endpoint, .http = &http};

		if (env_true("CLOUDSDK_AUTH_DISABLE_CREDENTIALS")) {
			if (o->access_token_file) {
				ret = error_set(
				    err, EINVAL,
				    "--access-token-file conflicts with CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true");
				goto cleanup;
			}
			log_debug("credentials disabled by CLOUDSDK_AUTH_DISABLE_CREDENTIALS");
		} else {
			ret = gcp_credentials_load(&copt, &s->creds, err);
			if (ret < 0)
				goto cleanup;
			log_debug("credentials: %s", gcp_credentials_describe(s->creds));
		}
		s->project = o->project;
		if (!s->project)
			s->project = env_nonempty("CLOUDSDK_CORE_PROJECT");
		if (!s->project)
			s->project = env_nonempty("GOOGLE_CLOUD_PROJECT");
		if (!s->project && s->creds)
			s->project = gcp_credentials_project(s->creds);
		if (!s->project) {
			ret = error_set(
			    err, EINVAL,
			    "--project: not given, and neither CLOUDSDK_CORE_PROJECT, GOOGLE_CLOUD_PROJECT nor the credentials name one");
			goto cleanup;
		}
		gopt.project = s->project;
		gopt.creds = s->creds;
		ret = gcp_compute_new(&gopt, &s->compute, err);
		if (ret < 0)
			goto cleanup;
		log_timeouts("compute", gcp_compute_http(s->compute));
	}
	if (needs & SESSION_KUBE) {
		struct kube_config_options kopt = {.kubeconfig = o->kubeconfig,
						   .context = o->context};

		ret = kube_config_load(&kopt, &s->kube_config, err);
		if (ret < 0)
			goto cleanup;
		log_debug("kubernetes: %s (context %s, from %s)", s->kube_config->server,
			  s->kube_config->context, s->kube_config->source);
		ret = kube_client_new(s->kube_config, &http, &s->kube, err);
		if (ret < 0)
			goto cleanup;
		log_timeouts("kubernetes", kube_client_http(s->kube));
	}
cleanup:
	if (ret < 0)
		session_close(s);
	return ret;
}

void session_close(struct session *s)
{
	kube_client_free(s->kube);
	kube_config_free(s->kube_config);
	gcp_compute_free(s->compute);
	gcp_credentials_free(s->creds);
	memset(s, 0, sizeof(*s));
}

void session_log_stats(const struct session *s)
{
	struct http_stats st;

	if (s->compute) {
		gcp_compute_stats(s->compute, &st);
		log_debug("compute: %llu requests (%llu retries, %llu connections, %llu bytes)",
			  (unsigned long long)st.requests, (unsigned long long)st.retries,
			  (unsigned long long)st.connections,
			  (unsigned long long)st.bytes_received);
	}
	if (s->kube) {
		kube_client_stats(s->kube, &st);
		log_debug("kubernetes: %llu requests (%llu retries, %llu connections, %llu bytes)",
			  (unsigned long long)st.requests, (unsigned long long)st.retries,
			  (unsigned long long)st.connections,
			  (unsigned long long)st.bytes_received);
	}
	if (s->creds)
		log_debug("token endpoint: %llu requests",
			  (unsigned long long)gcp_credentials_requests(s->creds));
}
