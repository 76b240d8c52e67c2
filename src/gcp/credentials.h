/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Google OAuth2 access tokens, found the Application Default Credentials way:
 *
 *   1. an explicit access-token file: opt->access_token_file (--access-token-file), else
 *      $CLOUDSDK_AUTH_ACCESS_TOKEN_FILE (as gcloud's auth/access_token_file). The file holds
 *      the token itself; surrounding whitespace is ignored; it is re-read on refresh;
 *   2. $GOOGLE_APPLICATION_CREDENTIALS: a JSON key file of "type" service_account (an RS256
 *      JWT signed with the file's private_key, exchanged at the file's token_uri with the
 *      jwt-bearer grant) or authorized_user (refresh_token exchanged at token_uri, default
 *      https://oauth2.googleapis.com/token). Set but unreadable is an error: no fallback;
 *   3. gcloud's well-known file $CLOUDSDK_CONFIG/application_default_credentials.json, else
 *      $HOME/.config/gcloud/application_default_credentials.json, same formats, used when
 *      it exists;
 *   4. the metadata server: GET http://$GCE_METADATA_HOST/computeMetadata/v1/instance/
 *      service-accounts/default/token with "Metadata-Flavor: Google" ($GCE_METADATA_HOST
 *      defaults to metadata.google.internal; $GCE_METADATA_ROOT is the older name). Not
 *      probed at load time: the first token request says why it failed, naming the chain.
 *      NO_GCE_CHECK=true (as Google's libraries) removes this step: nothing found is then
 *      an error at load time.
 *
 * Tokens are cached with their expiry and refreshed 225 s before it (a quarter of the
 * lifetime for short-lived tokens), or on demand after a 401. Nothing here logs a token,
 * key or refresh token; load logs (debug) which source was chosen.
 */
#ifndef TALOS_GCP_GCP_CREDENTIALS_H
#define TALOS_GCP_GCP_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"
#include "common/http.h"

#define GCP_SCOPE_CLOUD_PLATFORM "https://www.googleapis.com/auth/cloud-platform"
#define GCP_DEFAULT_TOKEN_URI    "https://oauth2.googleapis.com/token"
#define GCP_METADATA_HOST        "metadata.google.internal"

enum gcp_cred_kind {
	GCP_CRED_TOKEN_FILE = 1,  /* --access-token-file / CLOUDSDK_AUTH_ACCESS_TOKEN_FILE */
	GCP_CRED_SERVICE_ACCOUNT, /* JSON key, type service_account */
	GCP_CRED_AUTHORIZED_USER, /* JSON, type authorized_user (gcloud auth application-default
				     login) */
	GCP_CRED_METADATA,        /* the GCE metadata server */
};

struct gcp_credentials;

struct gcp_credentials_options {
	const char *access_token_file; /* NULL: $CLOUDSDK_AUTH_ACCESS_TOKEN_FILE, then ADC */
	const char *scope;             /* NULL: GCP_SCOPE_CLOUD_PLATFORM */
	/*
	 * Timeouts and retries for the token endpoint and metadata server (the client has no
	 * token provider of its own; tls is ignored: system CAs). NULL: http defaults, except a
	 * 10 s total budget for the metadata server.
	 */
	const struct http_options *http;
};

/*
 * Finds credentials in the order above and reads the chosen file (no network). 0, or
 * -ENOENT (nothing found: err lists where it looked), -EINVAL / -EBADMSG (file malformed:
 * err names the file and the field), -EACCES / other -errno (file unreadable: err names it).
 */
int gcp_credentials_load(const struct gcp_credentials_options *opt, struct gcp_credentials **out,
			 struct error *err);
void gcp_credentials_free(struct gcp_credentials *c);

/*
 * The current access token (cached; fetched or re-read when missing, near expiry, or when
 * refresh is true). Has the http_token_fn signature: pass gcp_credentials_token as
 * http_options.token and the credentials as token_arg. The string stays valid until the
 * next call. -EACCES when the token endpoint refused the credentials (err carries the
 * endpoint's error and error_description), transport errnos as http_do(), -EBADMSG on a
 * malformed token response.
 */
int gcp_credentials_token(void *creds, bool refresh, const char **token, struct error *err);

enum gcp_cred_kind gcp_credentials_kind(const struct gcp_credentials *c);
/* "service account NAME@P.iam.gserviceaccount.com from FILE" and the like: no secret. */
const char *gcp_credentials_describe(const struct gcp_credentials *c);
/*
 * The project the credentials name: a service-account key's project_id, an authorized_user
 * file's quota_project_id; NULL otherwise (the metadata server is not asked).
 */
const char *gcp_credentials_project(const struct gcp_credentials *c);
/* Token-endpoint / metadata requests made so far (the benchmark counts them too). */
uint64_t gcp_credentials_requests(const struct gcp_credentials *c);

/*
 * Parses a credentials JSON document (service_account or authorized_user) without
 * touching the network. path names it in messages. Same errors as gcp_credentials_load().
 * Exposed for tests and the fuzzer.
 */
int gcp_credentials_parse(const char *json, size_t len, const char *path,
			  const struct gcp_credentials_options *opt, struct gcp_credentials **out,
			  struct error *err);

/*
 * The signed JWT assertion a service account exchanges for a token, issued at now:
 * header {"alg":"RS256","typ":"JWT","kid":private_key_id}, claims iss = client_email,
 * scope, aud = token_uri, iat = now, exp = now + 3600. malloc'd. -EINVAL if the
 * credentials are not a service account. Exposed for tests.
 */
int gcp_credentials_jwt(const struct gcp_credentials *c, time_t now, char **out, struct error *err);

#endif
