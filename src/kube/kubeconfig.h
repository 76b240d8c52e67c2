/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where the Kubernetes API is and how to authenticate to it: a kubeconfig, or the in-cluster
 * service account. Follows client-go's loading rules:
 *
 *   1. opt->kubeconfig (--kubeconfig): that file only; it must exist;
 *   2. $KUBECONFIG: a ':'-separated list; missing files are skipped; the files are merged,
 *      the first to define a name (cluster, user, context) or current-context wins;
 *   3. $HOME/.kube/config, if it exists;
 *   4. in-cluster: $KUBERNETES_SERVICE_HOST and $KUBERNETES_SERVICE_PORT, with the token,
 *      ca.crt and namespace of the service-account directory
 *      /var/run/secrets/kubernetes.io/serviceaccount ($TALOS_GCP_SERVICEACCOUNT_DIR
 *      overrides it, for tests). The token is re-read when the server answers 401
 *      (bound tokens rotate).
 *
 * The context is opt->context (--context), else the files' current-context. From it: the
 * cluster's server, certificate-authority-data (base64 PEM) or certificate-authority (file),
 * insecure-skip-tls-verify; the user's client-certificate(-data), client-key(-data), token
 * or tokenFile. Relative file paths are resolved against the directory of the kubeconfig
 * that names them. As client-go, a CA together with insecure-skip-tls-verify: true is
 * refused, and so are both a *-data field and its file form. exec and auth-provider users
 * are not supported (a one-line error says so when the user has nothing else);
 * tls-server-name is accepted but not applied (a warning says so).
 *
 * The cluster's proxy-url (http, https, socks5, socks5h; proxy credentials allowed) is used
 * for every request, as client-go does (without it libcurl honours https_proxy and no_proxy).
 * The user's impersonation, as, as-uid, as-groups and as-user-extra, becomes the headers
 * Impersonate-User, Impersonate-Uid, Impersonate-Group (one per group) and
 * Impersonate-Extra-KEY (one per value, KEY percent-encoded as client-go's headerKeyEscape
 * does),
 * https://kubernetes.io/docs/reference/access-authn-authz/authentication/#user-impersonation.
 * Groups, uid or extras without a user are refused (the API server refuses them too), and so
 * are values with control characters (they would forge other headers).
 *
 * The YAML is read within doctor's limits (common/yaml_limits.h: nesting depth, nodes,
 * documents) before it is loaded: a deeply nested file is refused after reading its first
 * few hundred levels, in microseconds, instead of costing libyaml's loader a minute.
 *
 * Errors are one line naming the file, line and column (1-based) and the field:
 *   "/home/me/.kube/config:14:7: users[admin].user.client-key-data: invalid base64"
 * -EBADMSG for YAML that does not parse or has the wrong shape, -EINVAL for values that
 * are wrong (base64, unknown context, CA with insecure), -ENOENT when no configuration is
 * found, and the -errno of a referenced file that cannot be read (its path in the message).
 */
#ifndef TALOS_GCP_KUBE_KUBECONFIG_H
#define TALOS_GCP_KUBE_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define KUBE_SERVICEACCOUNT_DIR     "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBE_SERVICEACCOUNT_DIR_ENV "TALOS_GCP_SERVICEACCOUNT_DIR"

/* A resolved configuration: everything needed to talk to one API server. */
struct kube_config {
	char *server; /* "https://host:port", no trailing '/' */
	char *ca_pem; /* trusted CA bundle (PEM), NULL: the system's */
	size_t ca_pem_len;
	char *cert_pem; /* client certificate (PEM), or NULL */
	size_t cert_pem_len;
	char *key_pem; /* client key (PEM, a secret), or NULL */
	size_t key_pem_len;
	char *token;                   /* bearer token (a secret), or NULL */
	char *token_file;              /* where the token was read from, re-read on 401; or NULL */
	bool insecure_skip_tls_verify; /* only ever true when the kubeconfig says so */
	char *proxy_url;               /* the cluster's proxy-url (may hold credentials), or NULL */
	/*
	 * The user's impersonation as request headers ("Impersonate-User: jane", ...),
	 * NULL-terminated; NULL when the user impersonates no one.
	 */
	char **headers;
	char *impersonate_user; /* as, for messages; or NULL */
	char *namespace;        /* context's namespace, the service account's, or "default" */
	char *context;          /* context name; "in-cluster" for the service account */
	char *source;           /* the kubeconfig path(s) used, or the service-account directory */
	bool in_cluster;
};

struct kube_config_options {
	const char *kubeconfig; /* --kubeconfig, NULL: $KUBECONFIG, ~/.kube/config, in-cluster */
	const char *context;    /* --context, NULL: current-context */
};

/* Loads per the rules above. *out is freed with kube_config_free(). */
int kube_config_load(const struct kube_config_options *opt, struct kube_config **out,
		     struct error *err);

/*
 * Parses one kubeconfig document from memory and resolves context (NULL: its
 * current-context). path is used in messages and to resolve relative paths (NULL: "<input>"
 * and the current directory). Exposed for tests and the fuzzer.
 */
int kube_config_parse(const char *buf, size_t len, const char *path, const char *context,
		      struct kube_config **out, struct error *err);

/* The in-cluster configuration (rule 4). -ENOENT when not in a cluster. */
int kube_config_in_cluster(struct kube_config **out, struct error *err);

/* Frees c, zeroing its secrets. NULL is fine. */
void kube_config_free(struct kube_config *c);

#endif
