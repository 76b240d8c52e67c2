/* SPDX-License-Identifier: Apache-2.0 */
#include "gcp/credentials.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/clock.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"
#include "common/str.h"

#define CREDENTIALS_MAX_BYTES (1 << 20)
#define TOKEN_FILE_MAX_BYTES  (64 << 10)
#define JWT_LIFETIME_S        3600
/* Google's libraries refresh 3 min 45 s before expiry. */
#define REFRESH_MARGIN_MS   225000
#define DEFAULT_EXPIRES_S   3600
#define METADATA_TOKEN_PATH "/computeMetadata/v1/instance/service-accounts/default/token"

struct gcp_credentials {
	enum gcp_cred_kind kind;
	char *source; /* file path or metadata URL */
	char *describe;
	char *scope;
	/* service_account */
	char *client_email, *private_key_id, *project_id;
	EVP_PKEY *pkey;
	/* authorized_user */
	char *client_id, *client_secret, *refresh_token, *quota_project_id;
	/* service_account and authorized_user */
	char *token_uri;
	/* where ADC looked before settling on the metadata server (for its error) */
	char *chain;
	/* cached token */
	char *token;
	uint64_t refresh_at_ms, expires_at_ms; /* CLOCK_MONOTONIC */
	/*
	 * Clients on several threads share the credentials (parallel lists): the lock makes one
	 * of them fetch while the others wait, and a replaced token is kept (retired) until the
	 * credentials are freed, since another thread may still be copying it into a header.
	 */
	pthread_mutex_t lock;
	char **retired;
	size_t n_retired;
	struct http_options http_opt;
	struct http_client *http;
};

/* Zeroes a jansson string in place before the document is freed (it held a secret). */
static void wipe_json_string(json_t *v)
{
	const char *s = json_string_value(v);

	if (s)
		explicit_bzero((char *)s, json_string_length(v));
}

void gcp_credentials_free(struct gcp_credentials *c)
{
	if (!c)
		return;
	free(c->source);
	free(c->describe);
	free(c->scope);
	free(c->client_email);
	free(c->private_key_id);
	free(c->project_id);
	EVP_PKEY_free(c->pkey);
	free(c->client_id);
	free_secret_str(c->client_secret);
	free_secret_str(c->refresh_token);
	free(c->quota_project_id);
	free(c->token_uri);
	free(c->chain);
	free_secret_str(c->token);
	for (size_t i = 0; i < c->n_retired; i++)
		free_secret_str(c->retired[i]);
	free(c->retired);
	http_client_free(c->http);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Sets the token to tok (owned), keeping the previous one until the credentials go. */
static int replace_token(struct gcp_credentials *c, char *tok)
{
	if (c->token) {
		char **n = realloc(c->retired, (c->n_retired + 1) * sizeof(*n));

		if (!n) {
			free_secret_str(tok);
			return -ENOMEM;
		}
		c->retired = n;
		c->retired[c->n_retired++] = c->token;
	}
	c->token = tok;
	return 0;
}

static struct gcp_credentials *creds_new(enum gcp_cred_kind kind, const char *source,
					 const struct gcp_credentials_options *opt)
{
	struct gcp_credentials *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->kind = kind;
	c->source = strdup(source);
	c->scope = strdup(opt && opt->scope ? opt->scope : GCP_SCOPE_CLOUD_PLATFORM);
	if (opt && opt->http)
		c->http_opt = *opt->http;
	/* The token endpoints use the system CAs and no token of their own. */
	memset(&c->http_opt.tls, 0, sizeof(c->http_opt.tls));
	c->http_opt.token = NULL;
	c->http_opt.token_arg = NULL;
	c->http_opt.retry_response = NULL;
	if (!c->source || !c->scope) {
		gcp_credentials_free(c);
		return NULL;
	}
	return c;
}

enum gcp_cred_kind gcp_credentials_kind(const struct gcp_credentials *c)
{
	return c->kind;
}

const char *gcp_credentials_describe(const struct gcp_credentials *c)
{
	return c->describe ? c->describe : c->source;
}

const char *gcp_credentials_project(const struct gcp_credentials *c)
{
	if (c->kind == GCP_CRED_SERVICE_ACCOUNT)
		return c->project_id;
	if (c->kind == GCP_CRED_AUTHORIZED_USER)
		return c->quota_project_id;
	return NULL;
}

uint64_t gcp_credentials_requests(const struct gcp_credentials *c)
{
	struct http_stats st = {0};

	if (c->http)
		http_client_stats(c->http, &st);
	return st.requests;
}

/*
 * Reads member key of obj as a string into *out (strdup'd). required: absent is an error.
 * Returns 0 (also when optional and absent), or -EINVAL with "PATH: field \"key\": ...".
 */
static int get_field(const json_t *obj, const char *key, bool required, const char *path,
		     char **out, struct error *err)
{
	const json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return error_set(err, EINVAL, "%s: field \"%s\" is missing", path, key);
		return 0;
	}
	if (!json_is_string(v))
		return error_set(err, EINVAL, "%s: field \"%s\": expected a string", path, key);
	if (required && json_string_length(v) == 0)
		return error_set(err, EINVAL, "%s: field \"%s\" is empty", path, key);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return error_set(err, EINVAL, "%s: field \"%s\": contains a NUL byte", path, key);
	*out = strdup(json_string_value(v));
	if (!*out)
		return error_set(err, ENOMEM, "out of memory");
	return 0;
}

/* Plain http:// carries the assertion or refresh token in clear: loopback only. */
static int check_token_uri(const char *uri, const char *path, struct error *err)
{
	struct http_url_info info;
	char what[600];

	snprintf(what, sizeof(what), "%s: field \"token_uri\"", path);
	if (http_url_check(uri, what, 0, &info, err) < 0)
		return -EINVAL;
	if (info.https || info.loopback)
		return 0;
	return error_set(err, EINVAL,
			 "%s: \"%s\" is not an https:// URL (http:// only on loopback)", what, uri);
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int load_rsa_key(const char *pem, size_t len, const char *path, EVP_PKEY **out,
			struct error *err)
{
	EVP_PKEY_CTX *ctx;
	unsigned long e;
	EVP_PKEY *pkey;
	char why[160] = "";
	bool ok;
	BIO *bio;

	if (len > INT32_MAX)
		return error_set(err, EINVAL, "%s: field \"private_key\": too long", path);
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return error_set(err, ENOMEM, "out of memory");
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (!pkey) {
		e = ERR_peek_last_error();
		if (e)
			ERR_error_string_n(e, why, sizeof(why));
		ERR_clear_error();
		return error_set(err, EINVAL,
				 "%s: field \"private_key\": not a PEM private key%s%s", path,
				 why[0] ? ": " : "", why);
	}
	ERR_clear_error();
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pkey);
		return error_set(err, EINVAL,
				 "%s: field \"private_key\": not an RSA key (RS256 needs one)",
				 path);
	}
	/* A damaged key can parse and still fail to sign: find out now, naming the file. */
	ctx = EVP_PKEY_CTX_new(pkey, NULL);
	ok = ctx && EVP_PKEY_check(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	if (!ok) {
		EVP_PKEY_free(pkey);
		return error_set(err, EINVAL, "%s: field \"private_key\": inconsistent RSA key",
				 path);
	}
	*out = pkey;
	return 0;
}

static int parse_service_account(struct gcp_credentials *c, json_t *root, const char *path,
				 struct error *err)
{
	json_t *pk = json_object_get(root, "private_key");
	int ret;

	if ((ret = get_field(root, "client_email", true, path, &c->client_email, err)) < 0 ||
	    (ret = get_field(root, "private_key_id", false, path, &c->private_key_id, err)) < 0 ||
	    (ret = get_field(root, "project_id", false, path, &c->project_id, err)) < 0 ||
	    (ret = get_field(root, "token_uri", false, path, &c->token_uri, err)) < 0)
		return ret;
	if (!pk || json_is_null(pk))
		return error_set(err, EINVAL, "%s: field \"private_key\" is missing", path);
	if (!json_is_string(pk))
		return error_set(err, EINVAL, "%s: field \"private_key\": expected a string", path);
	ret = load_rsa_key(json_string_value(pk), json_string_length(pk), path, &c->pkey, err);
	if (ret < 0)
		return ret;
	if (!c->token_uri && !(c->token_uri = strdup(GCP_DEFAULT_TOKEN_URI)))
		return error_set(err, ENOMEM, "out of memory");
	if ((ret = check_token_uri(c->token_uri, path, err)) < 0)
		return ret;
	if (asprintf(&c->describe, "service account %s from %s", c->client_email, path) < 0) {
		c->describe = NULL;
		return error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

static int parse_authorized_user(struct gcp_credentials *c, json_t *root, const char *path,
				 struct error *err)
{
	int ret;

	if ((ret = get_field(root, "client_id", true, path, &c->client_id, err)) < 0 ||
	    (ret = get_field(root, "client_secret", true, path, &c->client_secret, err)) < 0 ||
	    (ret = get_field(root, "refresh_token", true, path, &c->refresh_token, err)) < 0 ||
	    (ret = get_field(root, "quota_project_id", false, path, &c->quota_project_id, err)) <
		0 ||
	    (ret = get_field(root, "token_uri", false, path, &c->token_uri, err)) < 0)
		return ret;
	if (!c->token_uri && !(c->token_uri = strdup(GCP_DEFAULT_TOKEN_URI)))
		return error_set(err, ENOMEM, "out of memory");
	if ((ret = check_token_uri(c->token_uri, path, err)) < 0)
		return ret;
	if (asprintf(&c->describe, "user credentials (client %s) from %s", c->client_id, path) <
	    0) {
		c->describe = NULL;
		return error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

int gcp_credentials_parse(const char *json, size_t len, const char *path,
			  const struct gcp_credentials_options *opt, struct gcp_credentials **out,
			  struct error *err)
{
	struct gcp_credentials *c = NULL;
	json_t *root = NULL;
	const json_t *type;
	const char *t;
	int ret;

	if (!path)
		path = "<input>";
	ret = json_parse(json, len, path, &root, err);
	if (ret < 0)
		return ret;
	if (!json_is_object(root)) {
		ret = error_set(err, EBADMSG, "%s: expected a JSON object", path);
		goto cleanup;
	}
	type = json_object_get(root, "type");
	if (!type) {
		ret = error_set(err, EINVAL, "%s: field \"type\" is missing", path);
		goto cleanup;
	}
	t = json_string_value(type);
	if (!t) {
		ret = error_set(err, EINVAL, "%s: field \"type\": expected a string", path);
		goto cleanup;
	}
	if (!strcmp(t, "service_account")) {
		c = creds_new(GCP_CRED_SERVICE_ACCOUNT, path, opt);
		ret = c ? parse_service_account(c, root, path, err) : -ENOMEM;
	} else if (!strcmp(t, "authorized_user")) {
		c = creds_new(GCP_CRED_AUTHORIZED_USER, path, opt);
		ret = c ? parse_authorized_user(c, root, path, err) : -ENOMEM;
	} else if (!strcmp(t, "external_account") || !strcmp(t, "impersonated_service_account") ||
		   !strcmp(t, "external_account_authorized_user")) {
		ret = error_set(err, EOPNOTSUPP,
				"%s: field \"type\": \"%s\" credentials are not supported (use a "
				"service_account key, authorized_user, or --access-token-file)",
				path, t);
	} else {
		ret = error_set(err, EINVAL,
				"%s: field \"type\": \"%.64s\" is not service_account or "
				"authorized_user",
				path, t);
	}
	if (ret == -ENOMEM)
		error_set(err, ENOMEM, "out of memory");
	if (ret < 0)
		goto cleanup;
	*out = c;
	c = NULL;
cleanup:
	/* Secrets must not outlive this function in jansson's copies. */
	if (json_is_object(root)) {
		wipe_json_string(json_object_get(root, "private_key"));
		wipe_json_string(json_object_get(root, "client_secret"));
		wipe_json_string(json_object_get(root, "refresh_token"));
	}
	json_decref(root);
	gcp_credentials_free(c);
	return ret;
}

static int load_file(const char *path, const struct gcp_credentials_options *opt, const char *what,
		     struct gcp_credentials **out, struct error *err)
{
	char *buf = NULL;
	size_t len = 0;
	int ret;

	ret = file_read_all(path, CREDENTIALS_MAX_BYTES, &buf, &len);
	if (ret < 0)
		return error_set(err, -ret, "%s %s: %s", what, path, strerror(-ret));
	ret = gcp_credentials_parse(buf, len, path, opt, out, err);
	free_secret(buf, len);
	if (ret == 0)
		log_debug("credentials: %s (%s)", gcp_credentials_describe(*out), what);
	return ret;
}

/* Reads and trims an access-token file. -errno with err naming the file. */
static int read_token_file(const char *path, char **out, struct error *err)
{
	char *buf = NULL, *s, *e, *p;
	size_t len = 0;
	int ret;

	ret = file_read_all(path, TOKEN_FILE_MAX_BYTES, &buf, &len);
	if (ret < 0)
		return error_set(err, -ret, "access token file %s: %s", path, strerror(-ret));
	for (s = buf; *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'; s++)
		;
	for (e = buf + len;
	     e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r');)
		e--;
	for (p = s; p<e && * p> 0x20 && *p < 0x7f; p++)
		;
	if (e == s || p != e) {
		ret = error_set(err, EINVAL, "access token file %s: expected one token on one line",
				path);
		goto cleanup;
	}
	*out = strndup(s, (size_t)(e - s));
	ret = *out ? 0 : error_set(err, ENOMEM, "out of memory");
cleanup:
	free_secret(buf, len);
	return ret;
}

int gcp_credentials_load(const struct gcp_credentials_options *opt, struct gcp_credentials **out,
			 struct error *err)
{
	const char *token_file, *gac, *dir, *host;
	char *wellknown = NULL, *url = NULL, *tok = NULL;
	struct gcp_credentials *c = NULL;
	int ret;

	token_file = opt && opt->access_token_file
			 ? opt->access_token_file
			 : env_nonempty("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE");
	if (token_file) {
		/* Read now so that a wrong path fails before any API call. */
		ret = read_token_file(token_file, &tok, err);
		if (ret < 0)
			return ret;
		c = creds_new(GCP_CRED_TOKEN_FILE, token_file, opt);
		if (!c || asprintf(&c->describe, "access token from %s", token_file) < 0) {
			if (c)
				c->describe = NULL;
			free_secret_str(tok);
			gcp_credentials_free(c);
			return error_set(err, ENOMEM, "out of memory");
		}
		c->token = tok;
		c->expires_at_ms = c->refresh_at_ms = UINT64_MAX;
		log_debug("credentials: %s", c->describe);
		*out = c;
		return 0;
	}

	gac = env_nonempty("GOOGLE_APPLICATION_CREDENTIALS");
	if (gac)
		return load_file(gac, opt, "GOOGLE_APPLICATION_CREDENTIALS", out, err);

	dir = env_nonempty("CLOUDSDK_CONFIG");
	if (dir)
		ret = asprintf(&wellknown, "%s/application_default_credentials.json", dir);
	else if (env_nonempty("HOME"))
		ret = asprintf(&wellknown, "%s/.config/gcloud/application_default_credentials.json",
			       getenv("HOME"));
	else
		ret = 0;
	if (ret < 0)
		return error_set(err, ENOMEM, "out of memory");
	if (wellknown && access(wellknown, F_OK) == 0) {
		ret = load_file(wellknown, opt, "gcloud application default credentials", out, err);
		free(wellknown);
		return ret;
	}

	if (env_true("NO_GCE_CHECK")) {
		ret = error_set(
		    err, ENOENT,
		    "no Google credentials: no --access-token-file or "
		    "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE, GOOGLE_APPLICATION_CREDENTIALS unset, "
		    "no %s, and NO_GCE_CHECK rules out the metadata server",
		    wellknown ? wellknown : "$HOME");
		free(wellknown);
		return ret;
	}
	host = env_nonempty("GCE_METADATA_HOST");
	if (!host)
		host = env_nonempty("GCE_METADATA_ROOT");
	if (!host)
		host = GCP_METADATA_HOST;
	if (asprintf(&url, "http://%s%s", host, METADATA_TOKEN_PATH) < 0) {
		free(wellknown);
		return error_set(err, ENOMEM, "out of memory");
	}
	c = creds_new(GCP_CRED_METADATA, url, opt);
	if (!c || asprintf(&c->describe, "metadata server %s", host) < 0 ||
	    asprintf(&c->chain,
		     "no --access-token-file or CLOUDSDK_AUTH_ACCESS_TOKEN_FILE, "
		     "GOOGLE_APPLICATION_CREDENTIALS unset, no %s; ",
		     wellknown ? wellknown : "$HOME") < 0) {
		free(url);
		free(wellknown);
		gcp_credentials_free(c);
		return error_set(err, ENOMEM, "out of memory");
	}
	if (!opt || !opt->http) {
		/* Off GCE the name does not resolve or nothing answers: fail fast. */
		c->http_opt.connect_timeout_ms = 3000;
		c->http_opt.timeout_ms = 5000;
		c->http_opt.total_timeout_ms = 10000;
		c->http_opt.max_attempts = 3;
	}
	free(url);
	free(wellknown);
	log_debug("credentials: %s (no credentials file found)", c->describe);
	*out = c;
	return 0;
}

static int b64url_json(const json_t *v, char **out)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	size_t n;

	if (!text)
		return -ENOMEM;
	n = strlen(text);
	*out = malloc(base64_encoded_size(n));
	if (!*out) {
		free(text);
		return -ENOMEM;
	}
	base64_encode(text, n, *out, BASE64_URL | BASE64_NO_PAD);
	free(text);
	return 0;
}

int gcp_credentials_jwt(const struct gcp_credentials *c, time_t now, char **out, struct error *err)
{
	json_t *header = NULL, *claims = NULL;
	char *h64 = NULL, *c64 = NULL, *signing = NULL, *jwt = NULL;
	unsigned char *sig = NULL;
	EVP_MD_CTX *md = NULL;
	size_t siglen = 0, n;
	int ret = -ENOMEM;

	if (c->kind != GCP_CRED_SERVICE_ACCOUNT || !c->pkey)
		return error_set(err, EINVAL, "%s: not a service account key", c->source);
	header = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	claims = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", c->client_email, "scope", c->scope,
			   "aud", c->token_uri, "iat", (json_int_t)now, "exp",
			   (json_int_t)now + JWT_LIFETIME_S);
	if (!header || !claims)
		goto cleanup;
	if (c->private_key_id && json_object_set_new(header, "kid", json_string(c->private_key_id)))
		goto cleanup;
	if (b64url_json(header, &h64) < 0 || b64url_json(claims, &c64) < 0)
		goto cleanup;
	if (asprintf(&signing, "%s.%s", h64, c64) < 0) {
		signing = NULL;
		goto cleanup;
	}
	md = EVP_MD_CTX_new();
	if (!md)
		goto cleanup;
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, c->pkey) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)signing, strlen(signing)) !=
		1 ||
	    !(sig = malloc(siglen)) ||
	    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)signing, strlen(signing)) !=
		1) {
		ERR_clear_error();
		ret = error_set(err, EIO, "%s: signing the JWT failed", c->source);
		goto cleanup_noerr;
	}
	n = strlen(signing);
	jwt = malloc(n + 1 + base64_encoded_size(siglen));
	if (!jwt)
		goto cleanup;
	memcpy(jwt, signing, n);
	jwt[n] = '.';
	base64_encode(sig, siglen, jwt + n + 1, BASE64_URL | BASE64_NO_PAD);
	*out = jwt;
	ret = 0;
	goto cleanup_noerr;
cleanup:
	error_set(err, ENOMEM, "out of memory");
cleanup_noerr:
	EVP_MD_CTX_free(md);
	free(sig);
	free(signing);
	free(h64);
	free(c64);
	json_decref(header);
	json_decref(claims);
	return ret;
}

static int ensure_http(struct gcp_credentials *c, struct error *err)
{
	if (c->http)
		return 0;
	return http_client_new(&c->http_opt, &c->http, err);
}

/*
 * Reads {"access_token", "expires_in"} from a token endpoint or metadata server answer,
 * or turns an OAuth2 error ({"error", "error_description"}) into a message.
 */
static int take_token_response(struct gcp_credentials *c, const char *what,
			       const struct http_response *resp, struct error *err)
{
	json_t *root = NULL, *at;
	int64_t expires_s = DEFAULT_EXPIRES_S;
	uint64_t now = now_ms(), lifetime_ms, margin;
	int ret;

	if (resp->status < 200 || resp->status >= 300) {
		const char *e = NULL, *d = NULL;

		if (json_parse(resp->body, resp->body_len, what, &root, NULL) == 0) {
			e = json_str(root, "error");
			d = json_str(root, "error_description");
			if (!e)
				e = json_path_str(root, "error.status");
			if (!d)
				d = json_path_str(root, "error.message");
		}
		ret = http_status_errno(resp->status);
		if (resp->status == 400 || resp->status == 401 || resp->status == 403)
			ret = -EACCES;
		if (resp->status == 404 && c->kind == GCP_CRED_METADATA)
			ret = -ENOENT;
		error_set(err, -ret, "%s: HTTP %ld%s%.64s%s%.200s", what, resp->status,
			  e ? " " : "", e ? e : "", d ? ": " : "", d ? d : "");
		goto cleanup;
	}
	ret = json_parse(resp->body, resp->body_len, what, &root, err);
	if (ret < 0)
		goto cleanup;
	at = json_object_get(root, "access_token");
	if (!json_is_string(at) || json_string_length(at) == 0 ||
	    strlen(json_string_value(at)) != json_string_length(at) ||
	    strpbrk(json_string_value(at), "\r\n")) {
		ret = error_set(err, EBADMSG, "%s: response has no usable \"access_token\"", what);
		goto cleanup;
	}
	if (json_object_get(root, "expires_in") &&
	    (json_path_int64(root, "expires_in", &expires_s) < 0 || expires_s <= 0 ||
	     expires_s > 366 * 86400)) {
		ret = error_set(err, EBADMSG, "%s: response has an invalid \"expires_in\"", what);
		goto cleanup;
	}
	if (replace_token(c, strdup(json_string_value(at))) < 0 || !c->token) {
		ret = error_set(err, ENOMEM, "out of memory");
		goto cleanup;
	}
	lifetime_ms = (uint64_t)expires_s * 1000;
	margin = lifetime_ms >= 4 * REFRESH_MARGIN_MS ? REFRESH_MARGIN_MS : lifetime_ms / 4;
	c->expires_at_ms = now + lifetime_ms;
	c->refresh_at_ms = now + lifetime_ms - margin;
	ret = 0;
cleanup:
	if (root) {
		wipe_json_string(json_object_get(root, "access_token"));
		json_decref(root);
	}
	return ret;
}

static char *form_escape(const char *s)
{
	return http_escape(s);
}

static int fetch_token(struct gcp_credentials *c, struct error *err)
{
	struct http_response resp = {0};
	struct http_request req = {0};
	char *body = NULL, *a = NULL, *b = NULL, *d = NULL, *what = NULL;
	static const char *const metadata_headers[] = {"Metadata-Flavor: Google", NULL};
	int ret;

	ret = ensure_http(c, err);
	if (ret < 0)
		return ret;
	req.no_auth = true;
	req.idempotent = HTTP_IDEMPOTENT_YES; /* a token exchange changes nothing */
	if (c->kind == GCP_CRED_METADATA) {
		req.url = c->source;
		req.headers = metadata_headers;
		if (asprintf(&what, "metadata server %s", c->source) < 0)
			what = NULL;
	} else {
		if (asprintf(&what, "token endpoint %s (credentials %s)", c->token_uri, c->source) <
		    0)
			what = NULL;
		if (c->kind == GCP_CRED_SERVICE_ACCOUNT) {
			ret = gcp_credentials_jwt(c, time(NULL), &a, err);
			if (ret < 0)
				goto cleanup;
			if (asprintf(&body, "grant_type=%s&assertion=%s",
				     "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer",
				     a) < 0)
				body = NULL;
		} else {
			a = form_escape(c->client_id);
			b = form_escape(c->client_secret);
			d = form_escape(c->refresh_token);
			if (a && b && d &&
			    asprintf(&body,
				     "grant_type=refresh_token&client_id=%s&client_secret=%s&"
				     "refresh_token=%s",
				     a, b, d) < 0)
				body = NULL;
		}
		if (!body) {
			ret = error_set(err, ENOMEM, "out of memory");
			goto cleanup;
		}
		req.method = "POST";
		req.url = c->token_uri;
		req.content_type = "application/x-www-form-urlencoded";
		req.body = body;
		req.body_len = strlen(body);
	}
	if (!what) {
		ret = error_set(err, ENOMEM, "out of memory");
		goto cleanup;
	}
	ret = http_do(c->http, &req, &resp, err);
	if (ret < 0) {
		if (c->kind == GCP_CRED_METADATA)
			error_prefix(err, "no Google credentials: %sthe metadata server failed",
				     c->chain ? c->chain : "");
		goto cleanup;
	}
	ret = take_token_response(c, what, &resp, err);
	if (ret == 0)
		log_debug("credentials: new access token from %s",
			  c->kind == GCP_CRED_METADATA ? "the metadata server" : c->token_uri);
cleanup:
	http_response_free(&resp);
	free_secret_str(body);
	free_secret_str(a);
	free_secret_str(b);
	free_secret_str(d);
	free(what);
	return ret;
}

static int token_locked(struct gcp_credentials *c, bool refresh, const char **token,
			struct error *err)
{
	uint64_t now = now_ms();
	int ret;

	if (c->token && !refresh && now < c->refresh_at_ms) {
		*token = c->token;
		return 0;
	}
	if (c->kind == GCP_CRED_TOKEN_FILE) {
		char *tok = NULL;

		/* The file may have been rotated by whoever writes it. */
		ret = read_token_file(c->source, &tok, err);
		if (ret < 0)
			return ret;
		if (replace_token(c, tok) < 0)
			return error_set(err, ENOMEM, "out of memory");
		*token = c->token;
		return 0;
	}
	ret = fetch_token(c, err);
	if (ret < 0) {
		/* A failed early refresh is no reason to drop a token that still works. */
		if (c->token && !refresh && now < c->expires_at_ms) {
			log_debug("credentials: refresh failed, keeping the current token");
			*token = c->token;
			return 0;
		}
		return ret;
	}
	*token = c->token;
	return 0;
}

int gcp_credentials_token(void *arg, bool refresh, const char **token, struct error *err)
{
	struct gcp_credentials *c = arg;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = token_locked(c, refresh, token, err);
	pthread_mutex_unlock(&c->lock);
	return ret;
}
