/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The API connections of one subcommand run: GCP credentials and the Compute client, the
 * kubeconfig and the Kubernetes client, opened from the common flags (cli/options.h).
 */
#ifndef TALOS_GCP_CLI_SESSION_H
#define TALOS_GCP_CLI_SESSION_H

#include "cli/options.h"
#include "common/error.h"
#include "gcp/compute.h"
#include "gcp/credentials.h"
#include "kube/client.h"
#include "kube/kubeconfig.h"

enum session_needs {
	SESSION_GCP = 1 << 0,
	SESSION_KUBE = 1 << 1,
};

struct session {
	const char *project;           /* resolved: --project, env, or the credentials' project */
	struct gcp_credentials *creds; /* NULL with CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true */
	struct gcp_compute *compute;
	struct kube_config *kube_config;
	struct kube_client *kube;
};

/*
 * Opens what `needs` asks for. Errors are one line naming the flag, file or variable;
 * nothing is sent over the network here except what loading requires (no token yet).
 * CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true sends Compute requests without credentials, as
 * gcloud does with that setting (for emulators).
 */
int session_open(struct session *s, const struct api_opts *o, unsigned needs, struct error *err);
void session_close(struct session *s);
/* Logs (debug) the requests each API received: the benchmark and -v read it. */
void session_log_stats(const struct session *s);

#endif
