/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OAuth2 token endpoint, metadata server and --require-auth, so every credential path of a
 * client is exercised for real.
 *
 * POST /token (https://developers.google.com/identity/protocols/oauth2/service-account#httprest):
 *   grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT
 *     The JWT is RS256-signed with the service-account key this emulator wrote
 *     (--sa-key-out); the signature is verified with OpenSSL against its public key, then
 *     iss (the client_email), aud (the token_uri), iat/exp ("a maximum of 1 hour after the
 *     issued time") and scope are checked.
 *   grant_type=refresh_token&client_id&client_secret&refresh_token
 *     for authorized_user credentials (--adc-user-out).
 *   Success: {"access_token", "expires_in", "token_type": "Bearer"}; errors are OAuth's
 *   {"error": "invalid_grant", "error_description": ...}.
 *
 * Metadata server (https://cloud.google.com/compute/docs/metadata/querying-metadata): every
 * /computeMetadata/v1/ request needs "Metadata-Flavor: Google" (403 without it, or with
 * X-Forwarded-For); answers carry "Metadata-Flavor: Google", which is how Google's libraries
 * recognise a metadata server.
 *
 * --require-auth: Compute requests need "Authorization: Bearer TOKEN" for a token issued here
 * and not expired, with a scope that grants Compute; 401/403 otherwise, in Google's shape.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/fileio.h"
#include "common/log.h"
#include "emu/compute/compute.h"

#define TOKEN_PATH     "/token"
#define METADATA_V1    "/computeMetadata/v1/"
#define SCOPE_PLATFORM "https://www.googleapis.com/auth/cloud-platform"

struct emu_auth {
	EVP_PKEY *key; /* the service account's key pair */
	char *key_pem; /* PKCS#8 PEM of key */
	char *key_id;
	char *sa_email;
	char *sa_client_id;
	char *user_client_id, *user_client_secret, *user_refresh_token;
	json_t *tokens; /* access token -> {"email", "exp" (unix s), "scope"} */
};

static struct emu_auth *auth_of(struct emu *emu)
{
	return emu->auth;
}

static char *random_hex(size_t nbytes)
{
	uint8_t raw[32];
	char *out = malloc(2 * nbytes + 1);

	if (!out || nbytes > sizeof(raw)) {
		free(out);
		return NULL;
	}
	random_bytes(raw, nbytes);
	for (size_t i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return out;
}

static char *random_digits(size_t n)
{
	uint8_t raw[32];
	char *out = malloc(n + 1);

	if (!out || n > sizeof(raw)) {
		free(out);
		return NULL;
	}
	random_bytes(raw, n);
	for (size_t i = 0; i < n; i++)
		out[i] = (char)('0' + raw[i] % 10);
	if (out[0] == '0')
		out[0] = '1';
	out[n] = '\0';
	return out;
}

int emu_auth_init(struct emu *emu)
{
	struct emu_auth *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->tokens = json_object();
	emu->auth = a;
	return a->tokens ? 0 : -ENOMEM;
}

void emu_auth_free(struct emu *emu)
{
	struct emu_auth *a = auth_of(emu);

	if (!a)
		return;
	EVP_PKEY_free(a->key);
	free(a->key_pem);
	free(a->key_id);
	free(a->sa_email);
	free(a->sa_client_id);
	free(a->user_client_id);
	free(a->user_client_secret);
	free(a->user_refresh_token);
	json_decref(a->tokens);
	free(a);
	emu->auth = NULL;
}

static const char *default_sa(struct emu *emu, char *buf, size_t len)
{
	snprintf(buf, len, "%s-compute@developer.gserviceaccount.com",
		 compute_project_number(compute_of(emu)));
	return buf;
}

/* ---- keys ---- */

static char *pem_of(EVP_PKEY *key)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (!bio)
		return NULL;
	if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1) {
		n = BIO_get_mem_data(bio, &data);
		out = n > 0 ? strndup(data, (size_t)n) : NULL;
	}
	BIO_free(bio);
	return out;
}

static EVP_PKEY *key_from_pem(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *key;

	if (!bio)
		return NULL;
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return key;
}

/* The service-account key pair and the authorized_user secrets, made once per state. */
static int ensure_credentials(struct emu *emu)
{
	struct emu_auth *a = auth_of(emu);

	if (!a->key) {
		a->key = EVP_RSA_gen(2048);
		a->key_pem = a->key ? pem_of(a->key) : NULL;
		a->key_id = random_hex(20);
		a->sa_email =
		    str_printf("talos-gcp-emu@%s.iam.gserviceaccount.com", emu->opt.project);
		a->sa_client_id = random_digits(21);
		if (!a->key || !a->key_pem || !a->key_id || !a->sa_email || !a->sa_client_id)
			return -ENOMEM;
		emu_state_changed(emu);
	}
	if (!a->user_refresh_token) {
		char *n = random_digits(12), *h = random_hex(16);

		a->user_client_id = n ? str_printf("%s-emu.apps.googleusercontent.com", n) : NULL;
		a->user_client_secret = random_hex(12);
		a->user_refresh_token = h ? str_printf("1//emu-%s", h) : NULL;
		free(n);
		free(h);
		if (!a->user_client_id || !a->user_client_secret || !a->user_refresh_token)
			return -ENOMEM;
		emu_state_changed(emu);
	}
	return 0;
}

static int write_json_0600(const char *path, json_t *doc)
{
	char *text = json_dumps(doc, JSON_INDENT(2));
	int ret;

	if (!text)
		return -ENOMEM;
	ret = file_write_atomic(path, text, strlen(text), 0600);
	free(text);
	return ret;
}

int emu_auth_started(struct emu *emu)
{
	struct emu_auth *a = auth_of(emu);
	char token_uri[128];
	json_t *doc;
	int ret;

	if (!emu->opt.sa_key_out && !emu->opt.adc_user_out)
		return 0;
	ret = ensure_credentials(emu);
	if (ret < 0) {
		log_error("cannot make service-account credentials: %s", strerror(-ret));
		return ret;
	}
	snprintf(token_uri, sizeof(token_uri), "%s%s", emu->cloud_url, TOKEN_PATH);
	if (emu->opt.sa_key_out) {
		doc = json_pack(
		    "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s}", "type",
		    "service_account", "project_id", emu->opt.project, "private_key_id", a->key_id,
		    "private_key", a->key_pem, "client_email", a->sa_email, "client_id",
		    a->sa_client_id, "auth_uri", "https://accounts.google.com/o/oauth2/auth",
		    "token_uri", token_uri, "auth_provider_x509_cert_url",
		    "https://www.googleapis.com/oauth2/v1/certs", "client_x509_cert_url",
		    jsonf("https://www.googleapis.com/robot/v1/metadata/x509/%s", a->sa_email),
		    "universe_domain", "googleapis.com");
		ret = doc ? write_json_0600(emu->opt.sa_key_out, doc) : -ENOMEM;
		json_decref(doc);
		if (ret < 0) {
			log_error("--sa-key-out %s: %s", emu->opt.sa_key_out, strerror(-ret));
			return ret;
		}
		log_info("service-account key for %s written to %s", a->sa_email,
			 emu->opt.sa_key_out);
	}
	if (emu->opt.adc_user_out) {
		doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "type", "authorized_user",
				"client_id", a->user_client_id, "client_secret",
				a->user_client_secret, "refresh_token", a->user_refresh_token,
				"token_uri", token_uri, "quota_project_id", emu->opt.project,
				"universe_domain", "googleapis.com");
		ret = doc ? write_json_0600(emu->opt.adc_user_out, doc) : -ENOMEM;
		json_decref(doc);
		if (ret < 0) {
			log_error("--adc-user-out %s: %s", emu->opt.adc_user_out, strerror(-ret));
			return ret;
		}
		log_info("authorized_user credentials written to %s", emu->opt.adc_user_out);
	}
	return 0;
}

/* ---- tokens ---- */

static void expire_tokens(struct emu_auth *a)
{
	time_t now = time(NULL);
	const char *key;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(a->tokens, tmp, key,
				 v) if (json_integer_value(json_object_get(v, "exp")) <= now)
	    json_object_del(a->tokens, key);
}

/* A new access token for email; returns the Google-style response body. */
static json_t *issue_token(struct emu *emu, const char *email, const char *scope)
{
	struct emu_auth *a = auth_of(emu);
	uint64_t life_s = emu->opt.token_lifetime_ms / 1000;
	char *hex = random_hex(24), *tok;
	json_t *body;

	if (!hex)
		return NULL;
	if (life_s == 0)
		life_s = 1;
	tok = str_printf("ya29.emu-%s", hex);
	free(hex);
	if (!tok)
		return NULL;
	expire_tokens(a);
	json_object_set_new(a->tokens, tok,
			    json_pack("{s:s, s:I, s:s}", "email", email, "exp",
				      (json_int_t)(time(NULL) + (time_t)life_s), "scope",
				      scope ? scope : ""));
	/* Google answers 3599 for an hour: the time left, rounded down. */
	body = json_pack("{s:s, s:I, s:s}", "access_token", tok, "expires_in",
			 (json_int_t)(life_s > 1 ? life_s - 1 : 1), "token_type", "Bearer");
	if (body && scope && *scope)
		json_object_set_new(body, "scope", json_string(scope));
	free(tok);
	emu_state_changed(emu);
	return body;
}

static const json_t *token_info(struct emu *emu, const struct emu_request *req)
{
	const char *h = emu_request_header(req, "Authorization");
	const json_t *info;

	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	info = json_object_get(auth_of(emu)->tokens, h + 7);
	if (!info || json_integer_value(json_object_get(info, "exp")) <= time(NULL))
		return NULL;
	return info;
}

const char *emu_auth_principal(struct emu_request *req)
{
	const json_t *info = token_info(req->emu, req);
	const char *email = info ? json_string_value(json_object_get(info, "email")) : NULL;
	struct emu_auth *a = auth_of(req->emu);

	static char fallback[128];

	if (email)
		return email;
	if (a->sa_email)
		return a->sa_email;
	/* Without a token (no --require-auth), as if this emulator's own account had called. */
	snprintf(fallback, sizeof(fallback), "talos-gcp-emu@%s.iam.gserviceaccount.com",
		 req->emu->opt.project);
	return fallback;
}

/* ---- request bodies ---- */

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static char *url_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			*o++ = ' ';
		} else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
			   hexval(s[i + 2]) >= 0) {
			*o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* application/x-www-form-urlencoded (or a JSON object) into a JSON object of strings. */
static json_t *parse_form(const char *body, size_t len)
{
	json_t *form;
	size_t i = 0;

	if (len && body[0] == '{') {
		form = json_loadb(body, len, 0, NULL);
		if (json_is_object(form))
			return form;
		json_decref(form);
		return NULL;
	}
	form = json_object();
	while (form && i < len) {
		const char *pair = body + i, *amp = memchr(pair, '&', len - i), *eq;
		size_t plen = amp ? (size_t)(amp - pair) : len - i;
		char *k, *v;

		eq = memchr(pair, '=', plen);
		if (eq) {
			k = url_decode(pair, (size_t)(eq - pair));
			v = url_decode(eq + 1, plen - (size_t)(eq - pair) - 1);
			if (k && v && !json_object_get(form, k))
				json_object_set_new(form, k, json_string(v));
			free(k);
			free(v);
		}
		i += plen + 1;
	}
	return form;
}

static int oauth_error(struct emu_request *req, unsigned status, const char *error,
		       const char *description)
{
	return emu_reply_json(
	    req, status, json_pack("{s:s, s:s}", "error", error, "error_description", description));
}

/* ---- JWT bearer grant ---- */

static json_t *b64_json(const char *s, size_t n)
{
	uint8_t *raw;
	size_t len;
	json_t *j;

	if (b64_decode(s, n, &raw, &len) < 0)
		return NULL;
	j = json_loadb((const char *)raw, len, 0, NULL);
	free(raw);
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static bool verify_rs256(EVP_PKEY *key, const char *data, size_t len, const uint8_t *sig,
			 size_t siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = false;

	if (ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1)
		ok = EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)data, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

static bool good_audience(struct emu *emu, const char *aud)
{
	char mine[128];

	snprintf(mine, sizeof(mine), "%s%s", emu->cloud_url, TOKEN_PATH);
	/* Google's libraries sign for the token_uri of the file, or Google's well-known one. */
	return aud &&
	       (strcmp(aud, mine) == 0 || strcmp(aud, "https://oauth2.googleapis.com/token") == 0 ||
		strcmp(aud, "https://www.googleapis.com/oauth2/v4/token") == 0 ||
		strcmp(aud, "https://accounts.google.com/o/oauth2/token") == 0);
}

static int jwt_grant(struct emu_request *req, const char *assertion)
{
	struct emu *emu = req->emu;
	struct emu_auth *a = auth_of(emu);
	const char *dot1, *dot2, *alg, *kid, *iss, *scope;
	json_t *header = NULL, *claims = NULL, *body;
	uint8_t *sig = NULL;
	size_t siglen;
	json_int_t iat, exp;
	time_t now = time(NULL);
	int ret;

	dot1 = assertion ? strchr(assertion, '.') : NULL;
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot1 || !dot2 || strchr(dot2 + 1, '.')) {
		ret = oauth_error(req, 400, "invalid_grant", "Invalid JWT: not three segments.");
		goto cleanup;
	}
	header = b64_json(assertion, (size_t)(dot1 - assertion));
	claims = b64_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (!header || !claims || b64_decode(dot2 + 1, strlen(dot2 + 1), &sig, &siglen) < 0) {
		ret = oauth_error(req, 400, "invalid_grant", "Invalid JWT: malformed segment.");
		goto cleanup;
	}
	alg = jstr(header, "alg");
	kid = jstr(header, "kid");
	if (!alg || strcmp(alg, "RS256") != 0) {
		ret = oauth_error(req, 400, "invalid_grant", "Invalid JWT: alg must be RS256.");
		goto cleanup;
	}
	/* Only a key this emulator issued can sign; an unknown kid is an unknown key. */
	if (!a->key || (kid && strcmp(kid, a->key_id) != 0) ||
	    !verify_rs256(a->key, assertion, (size_t)(dot2 - assertion), sig, siglen)) {
		ret = oauth_error(req, 400, "invalid_grant", "Invalid JWT Signature.");
		goto cleanup;
	}
	iss = jstr(claims, "iss");
	if (!iss || strcmp(iss, a->sa_email) != 0) {
		ret = oauth_error(req, 400, "invalid_grant", "Invalid grant: account not found");
		goto cleanup;
	}
	if (!good_audience(emu, jstr(claims, "aud"))) {
		ret = oauth_error(req, 400, "invalid_grant", "Invalid JWT: Failed audience check.");
		goto cleanup;
	}
	iat = json_integer_value(json_object_get(claims, "iat"));
	exp = json_integer_value(json_object_get(claims, "exp"));
	if (!json_is_integer(json_object_get(claims, "iat")) ||
	    !json_is_integer(json_object_get(claims, "exp")) || exp <= now || iat > now + 300 ||
	    exp <= iat || exp - iat > 3600) {
		ret = oauth_error(
		    req, 400, "invalid_grant",
		    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.");
		goto cleanup;
	}
	scope = jstr(claims, "scope");
	if (!scope || !*scope) {
		ret = oauth_error(req, 400, "invalid_scope", "Empty or missing scope not allowed.");
		goto cleanup;
	}
	body = issue_token(emu, iss, scope);
	ret = body ? emu_reply_json(req, 200, body)
		   : oauth_error(req, 500, "internal_failure", "out of memory");
	log_info("token issued to %s (jwt-bearer)", iss);
cleanup:
	json_decref(header);
	json_decref(claims);
	free(sig);
	return ret;
}

static int refresh_grant(struct emu_request *req, json_t *form)
{
	struct emu *emu = req->emu;
	struct emu_auth *a = auth_of(emu);
	const char *id = jstr(form, "client_id"), *secret = jstr(form, "client_secret");
	const char *rt = jstr(form, "refresh_token");
	json_t *body;
	char email[128];

	if (!a->user_client_id || !id || !secret || strcmp(id, a->user_client_id) != 0 ||
	    strcmp(secret, a->user_client_secret) != 0)
		return oauth_error(req, 401, "invalid_client", "The OAuth client was not found.");
	if (!rt || strcmp(rt, a->user_refresh_token) != 0)
		return oauth_error(req, 400, "invalid_grant", "Token has been expired or revoked.");
	snprintf(email, sizeof(email), "user@%s.example", emu->opt.project);
	body = issue_token(emu, email, jstr(form, "scope") ?: SCOPE_PLATFORM);
	log_info("token issued to %s (refresh_token)", email);
	return body ? emu_reply_json(req, 200, body)
		    : oauth_error(req, 500, "internal_failure", "out of memory");
}

static int token_endpoint(struct emu_request *req)
{
	json_t *form;
	const char *grant;
	int ret;

	if (strcmp(req->method, "POST") != 0)
		return oauth_error(req, 405, "invalid_request", "Use POST.");
	form = parse_form(req->body, req->body_len);
	if (!form)
		return oauth_error(req, 400, "invalid_request", "Malformed request body.");
	grant = jstr(form, "grant_type");
	if (!grant)
		ret = oauth_error(req, 400, "invalid_request",
				  "Missing required parameter: grant_type");
	else if (strcmp(grant, "urn:ietf:params:oauth:grant-type:jwt-bearer") == 0)
		ret = jwt_grant(req, jstr(form, "assertion"));
	else if (strcmp(grant, "refresh_token") == 0)
		ret = refresh_grant(req, form);
	else {
		char msg[160];

		snprintf(msg, sizeof(msg), "Invalid grant_type: %.100s", grant);
		ret = oauth_error(req, 400, "unsupported_grant_type", msg);
	}
	json_decref(form);
	return ret;
}

/* ---- metadata server ---- */

static int md_text(struct emu_request *req, unsigned status, const char *text)
{
	emu_reply_header(req, "Metadata-Flavor", "Google");
	emu_reply_header(req, "Server", "Metadata Server for VM");
	return emu_reply(req, status, "application/text", text, strlen(text));
}

static int md_json(struct emu_request *req, json_t *doc)
{
	emu_reply_header(req, "Metadata-Flavor", "Google");
	emu_reply_header(req, "Server", "Metadata Server for VM");
	return emu_reply_json(req, 200, doc);
}

static int metadata(struct emu_request *req)
{
	struct emu *emu = req->emu;
	const char *flavor = emu_request_header(req, "Metadata-Flavor");
	const char *p = req->path + strlen(METADATA_V1), *rest;
	static const char scopes[] = SCOPE_PLATFORM "\n";
	char email[128], *text;
	int ret;

	if (emu_request_header(req, "X-Forwarded-For"))
		return md_text(req, 403, "Request denied: X-Forwarded-For header present.\n");
	if (!flavor || strcmp(flavor, "Google") != 0)
		return md_text(req, 403, "Missing Metadata-Flavor:Google header.\n");
	if (strcmp(req->method, "GET") != 0)
		return md_text(req, 405, "Method not allowed.\n");
	default_sa(emu, email, sizeof(email));
	if (strcmp(p, "") == 0)
		return md_text(req, 200, "instance/\noauth/\nproject/\n");
	if (strcmp(p, "project/") == 0)
		return md_text(req, 200, "numeric-project-id\nproject-id\n");
	if (strcmp(p, "project/project-id") == 0)
		return md_text(req, 200, emu->opt.project);
	if (strcmp(p, "project/numeric-project-id") == 0)
		return md_text(req, 200, compute_project_number(compute_of(emu)));
	if (strcmp(p, "instance/") == 0)
		return md_text(req, 200, "service-accounts/\n");
	if (strcmp(p, "instance/service-accounts/") == 0) {
		text = str_printf("default/\n%s/\n", email);
		ret = md_text(req, 200, text ? text : "");
		free(text);
		return ret;
	}
	if (strncmp(p, "instance/service-accounts/", 26) != 0)
		return md_text(req, 404, "Not Found\n");
	p += 26;
	if (strncmp(p, "default/", 8) == 0)
		rest = p + 8;
	else if (strncmp(p, email, strlen(email)) == 0 && p[strlen(email)] == '/')
		rest = p + strlen(email) + 1;
	else
		return md_text(req, 404, "Not Found\n");
	if (strcmp(rest, "") == 0) {
		const char *rec = emu_request_query(req, "recursive");

		if (rec && strcmp(rec, "true") == 0)
			return md_json(req, json_pack("{s:[s], s:s, s:[s]}", "aliases", "default",
						      "email", email, "scopes", SCOPE_PLATFORM));
		return md_text(req, 200, "aliases\nemail\nidentity\nscopes\ntoken\n");
	}
	if (strcmp(rest, "email") == 0)
		return md_text(req, 200, email);
	if (strcmp(rest, "aliases") == 0)
		return md_text(req, 200, "default\n");
	if (strcmp(rest, "scopes") == 0)
		return md_text(req, 200, scopes);
	if (strcmp(rest, "token") == 0) {
		const char *want = emu_request_query(req, "scopes");
		char *scope = want ? strdup(want) : strdup(SCOPE_PLATFORM);
		json_t *body;

		/* ?scopes= is comma-separated; tokens carry them space-separated. */
		for (char *q = scope; q && *q; q++)
			if (*q == ',')
				*q = ' ';
		body = scope ? issue_token(emu, email, scope) : NULL;
		free(scope);
		if (body)
			json_object_del(body, "scope");
		return body ? md_json(req, body) : md_text(req, 500, "out of memory\n");
	}
	return md_text(req, 404, "Not Found\n");
}

int emu_auth_handle(struct emu_request *req)
{
	if (strcmp(req->path, TOKEN_PATH) == 0) {
		token_endpoint(req);
		return 1;
	}
	if (strncmp(req->path, METADATA_V1, strlen(METADATA_V1)) == 0) {
		metadata(req);
		return 1;
	}
	if (strcmp(req->path, "/") == 0 || strcmp(req->path, "/computeMetadata/") == 0 ||
	    strcmp(req->path, "/computeMetadata/v1") == 0) {
		/* Google's libraries ping the root and look for this response header. */
		md_text(req, 200, "computeMetadata/\n");
		return 1;
	}
	return 0;
}

/* ---- --require-auth ---- */

static bool scope_grants(const char *scopes, bool read_only)
{
	static const char *const rw[] = {SCOPE_PLATFORM, "https://www.googleapis.com/auth/compute"};
	static const char *const ro[] = {"https://www.googleapis.com/auth/cloud-platform.read-only",
					 "https://www.googleapis.com/auth/compute.readonly"};
	char *copy = strdup(scopes ? scopes : ""), *save = NULL, *s;
	bool ok = false;

	for (s = strtok_r(copy, " ", &save); s && !ok; s = strtok_r(NULL, " ", &save)) {
		for (size_t i = 0; i < 2; i++)
			if (strcmp(s, rw[i]) == 0 || (read_only && strcmp(s, ro[i]) == 0))
				ok = true;
	}
	free(copy);
	return ok;
}

int emu_auth_check(struct emu_request *req)
{
	const char *h = emu_request_header(req, "Authorization");
	const json_t *info;
	json_t *body;

	if (!req->emu->opt.require_auth)
		return 0;
	info = token_info(req->emu, req);
	if (info) {
		if (scope_grants(json_string_value(json_object_get(info, "scope")),
				 strcmp(req->method, "GET") == 0))
			return 0;
		body =
		    json_pack("{s:{s:i, s:s, s:[{s:s, s:s, s:s}], s:s}}", "error", "code", 403,
			      "message", "Request had insufficient authentication scopes.",
			      "errors", "message", "Insufficient Permission", "domain", "global",
			      "reason", "insufficientPermissions", "status", "PERMISSION_DENIED");
		emu_reply_json(req, 403, body);
		return 1;
	}
	emu_reply_header(
	    req, "WWW-Authenticate",
	    h ? "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\""
	      : "Bearer realm=\"https://accounts.google.com/\"");
	if (h)
		body = json_pack(
		    "{s:{s:i, s:s, s:[{s:s, s:s, s:s, s:s, s:s}], s:s}}", "error", "code", 401,
		    "message",
		    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
		    "errors", "message", "Invalid Credentials", "domain", "global", "reason",
		    "authError", "location", "Authorization", "locationType", "header", "status",
		    "UNAUTHENTICATED");
	else
		body = json_pack(
		    "{s:{s:i, s:s, s:[{s:s, s:s, s:s, s:s, s:s}], s:s}}", "error", "code", 401,
		    "message",
		    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
		    "errors", "message", "Login Required.", "domain", "global", "reason",
		    "required", "location", "Authorization", "locationType", "header", "status",
		    "UNAUTHENTICATED");
	emu_reply_json(req, 401, body);
	return 1;
}

/* ---- state ---- */

json_t *emu_auth_dump(struct emu *emu)
{
	struct emu_auth *a = auth_of(emu);
	json_t *doc = json_pack("{s:O}", "tokens", a->tokens);

	if (doc && a->key)
		json_object_set_new(doc, "serviceAccount",
				    json_pack("{s:s, s:s, s:s, s:s}", "privateKey", a->key_pem,
					      "keyId", a->key_id, "email", a->sa_email, "clientId",
					      a->sa_client_id));
	if (doc && a->user_refresh_token)
		json_object_set_new(doc, "authorizedUser",
				    json_pack("{s:s, s:s, s:s}", "clientId", a->user_client_id,
					      "clientSecret", a->user_client_secret, "refreshToken",
					      a->user_refresh_token));
	return doc ? doc : json_object();
}

static int dup_field(char **dst, const json_t *obj, const char *key)
{
	const char *v = jstr(obj, key);

	free(*dst);
	*dst = v ? strdup(v) : NULL;
	return *dst ? 0 : -EINVAL;
}

int emu_auth_load(struct emu *emu, json_t *state)
{
	struct emu_auth *a = auth_of(emu);
	json_t *sa, *user;
	int ret = 0;

	if (!state)
		return 0;
	sa = json_object_get(state, "serviceAccount");
	if (sa) {
		EVP_PKEY *key = key_from_pem(jstr(sa, "privateKey") ?: "");

		if (!key)
			return -EINVAL;
		EVP_PKEY_free(a->key);
		a->key = key;
		ret = dup_field(&a->key_pem, sa, "privateKey");
		ret = ret ?: dup_field(&a->key_id, sa, "keyId");
		ret = ret ?: dup_field(&a->sa_email, sa, "email");
		ret = ret ?: dup_field(&a->sa_client_id, sa, "clientId");
		if (ret < 0)
			return ret;
	}
	user = json_object_get(state, "authorizedUser");
	if (user) {
		ret = dup_field(&a->user_client_id, user, "clientId");
		ret = ret ?: dup_field(&a->user_client_secret, user, "clientSecret");
		ret = ret ?: dup_field(&a->user_refresh_token, user, "refreshToken");
		if (ret < 0)
			return ret;
	}
	json_object_clear(a->tokens);
	if (json_is_object(json_object_get(state, "tokens")))
		json_object_update(a->tokens, json_object_get(state, "tokens"));
	return 0;
}
