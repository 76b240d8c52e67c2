/* SPDX-License-Identifier: Apache-2.0 */
/* gcp/credentials: ADC order, file parsing, the RS256 JWT, and the token exchanges. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/base64.h"
#include "gcp/credentials.h"
#include "mock_http.h"
#include "testcerts.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static char dir[256];
static char *rsa_key, *rsa_pub;
static struct mock_server *srv;

static const char *const env_vars[] = {
    "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_CONFIG",
    "GCE_METADATA_HOST",
    "GCE_METADATA_ROOT",
    "NO_GCE_CHECK",
    NULL,
};

/*
 * Every test starts with no credentials anywhere: a fresh $HOME and none of the variables.
 * (A stray well-known file would send a test to Google's real token endpoint.)
 */
static int setup(void **state)
{
	static int n;
	char home[300];

	(void)state;
	for (const char *const *v = env_vars; *v; v++)
		unsetenv(*v);
	snprintf(home, sizeof(home), "%s/home%d", dir, ++n);
	mkdir(home, 0700);
	setenv("HOME", home, 1);
	mock_reset(srv);
	return 0;
}

static void write_file(const char *name, const char *content, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

/* A service-account key file whose token_uri is token_uri (NULL: absent). */
static char *sa_json(const char *token_uri, const char *key)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", "service_account",
			      "project_id", "demo-project", "private_key_id", "kid-123",
			      "private_key", key ? key : rsa_key, "client_email",
			      "sa@demo-project.iam.gserviceaccount.com", "client_id", "42");
	char *s;

	if (token_uri)
		json_object_set_new(o, "token_uri", json_string(token_uri));
	s = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	return s;
}

static char token_url[128];

static const char *tok_url(void)
{
	snprintf(token_url, sizeof(token_url), "%s/token", mock_url(srv));
	return token_url;
}

static json_t *b64_json(const char *seg, size_t len)
{
	uint8_t *raw;
	size_t n;
	json_t *j;

	assert_int_equal(base64_decode(seg, len, BASE64_URL, &raw, &n), 0);
	j = json_loadb((const char *)raw, n, 0, NULL);
	free(raw);
	assert_non_null(j);
	return j;
}

/* Checks a JWT's shape, claims and RS256 signature against the test key. */
static void check_jwt(const char *jwt, time_t iat, const char *aud)
{
	const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	json_t *h, *c;
	uint8_t *sig;
	size_t siglen;
	BIO *bio;
	EVP_PKEY *pub;
	EVP_MD_CTX *md;

	assert_non_null(d2);
	assert_null(strchr(d2 + 1, '.'));
	assert_null(strpbrk(jwt, "=+/"));
	h = b64_json(jwt, (size_t)(d1 - jwt));
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "RS256");
	assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
	assert_string_equal(json_string_value(json_object_get(h, "kid")), "kid-123");
	c = b64_json(d1 + 1, (size_t)(d2 - d1 - 1));
	assert_string_equal(json_string_value(json_object_get(c, "iss")),
			    "sa@demo-project.iam.gserviceaccount.com");
	assert_string_equal(json_string_value(json_object_get(c, "scope")),
			    GCP_SCOPE_CLOUD_PLATFORM);
	assert_string_equal(json_string_value(json_object_get(c, "aud")), aud);
	if (iat) {
		assert_int_equal(json_integer_value(json_object_get(c, "iat")), iat);
		assert_int_equal(json_integer_value(json_object_get(c, "exp")), iat + 3600);
	} else {
		assert_int_equal(json_integer_value(json_object_get(c, "exp")) -
				     json_integer_value(json_object_get(c, "iat")),
				 3600);
	}
	json_decref(h);
	json_decref(c);
	assert_int_equal(base64_decode(d2 + 1, strlen(d2 + 1), BASE64_URL, &sig, &siglen), 0);
	bio = BIO_new_mem_buf(rsa_pub, -1);
	pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	assert_non_null(pub);
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
	assert_int_equal(
	    EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt, (size_t)(d2 - jwt)), 1);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pub);
	BIO_free(bio);
	free(sig);
}

static void test_service_account_parse_and_jwt(void **state)
{
	struct gcp_credentials *c = NULL;
	struct error err = {0};
	char *json = sa_json(NULL, NULL), *jwt = NULL;

	(void)state;
	assert_int_equal(gcp_credentials_parse(json, strlen(json), "sa.json", NULL, &c, &err), 0);
	assert_int_equal(gcp_credentials_kind(c), GCP_CRED_SERVICE_ACCOUNT);
	assert_string_equal(gcp_credentials_project(c), "demo-project");
	assert_string_equal(gcp_credentials_describe(c),
			    "service account sa@demo-project.iam.gserviceaccount.com from sa.json");
	assert_int_equal(gcp_credentials_jwt(c, 1700000000, &jwt, &err), 0);
	/* No token_uri in the file: Google's. */
	check_jwt(jwt, 1700000000, GCP_DEFAULT_TOKEN_URI);
	free(jwt);
	gcp_credentials_free(c);
	free(json);
}

static void test_parse_errors(void **state)
{
	static const struct {
		const char *json;
		int code;
		const char *msg;
	} cases[] = {
	    {"{\"type\":\"service_account\"", -EBADMSG, "f.json:1:25: invalid JSON: "},
	    {"[]", -EBADMSG, "f.json: expected a JSON object"},
	    {"{}", -EINVAL, "f.json: field \"type\" is missing"},
	    {"{\"type\":7}", -EINVAL, "f.json: field \"type\": expected a string"},
	    {"{\"type\":\"magic\"}", -EINVAL,
	     "f.json: field \"type\": \"magic\" is not service_account or authorized_user"},
	    {"{\"type\":\"external_account\"}", -EOPNOTSUPP,
	     "f.json: field \"type\": \"external_account\" credentials are not supported (use a "
	     "service_account key, authorized_user, or --access-token-file)"},
	    {"{\"type\":\"service_account\",\"private_key\":\"x\"}", -EINVAL,
	     "f.json: field \"client_email\" is missing"},
	    {"{\"type\":\"service_account\",\"client_email\":[],\"private_key\":\"x\"}", -EINVAL,
	     "f.json: field \"client_email\": expected a string"},
	    {"{\"type\":\"service_account\",\"client_email\":\"a@b\"}", -EINVAL,
	     "f.json: field \"private_key\" is missing"},
	    {"{\"type\":\"service_account\",\"client_email\":\"a@b\",\"private_key\":\"nope\"}",
	     -EINVAL, "f.json: field \"private_key\": not a PEM private key"},
	    {"{\"type\":\"authorized_user\",\"client_id\":\"i\",\"client_secret\":\"s\"}", -EINVAL,
	     "f.json: field \"refresh_token\" is missing"},
	    {"{\"type\":\"authorized_user\",\"client_id\":\"i\",\"client_secret\":\"s\","
	     "\"refresh_token\":\"r\",\"token_uri\":\"http://oauth.example.com/token\"}",
	     -EINVAL,
	     "f.json: field \"token_uri\": \"http://oauth.example.com/token\" is not an https:// "
	     "URL (http:// only on loopback)"},
	    {"{\"type\":\"authorized_user\",\"client_id\":\"i\",\"client_secret\":\"s\","
	     "\"refresh_token\":\"\"}",
	     -EINVAL, "f.json: field \"refresh_token\" is empty"},
	};
	struct gcp_credentials *c = NULL;
	struct error err = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		error_clear(&err);
		assert_int_equal(gcp_credentials_parse(cases[i].json, strlen(cases[i].json),
						       "f.json", NULL, &c, &err),
				 cases[i].code);
		assert_memory_equal(err.msg, cases[i].msg, strlen(cases[i].msg));
	}
	assert_null(c);
}

static void test_non_rsa_key(void **state)
{
	struct testcerts t;
	struct gcp_credentials *c = NULL;
	struct error err = {0};
	char *json;

	(void)state;
	testcerts_make(&t);
	json = sa_json(NULL, t.client_key); /* an EC key */
	assert_int_equal(gcp_credentials_parse(json, strlen(json), "ec.json", NULL, &c, &err),
			 -EINVAL);
	assert_string_equal(err.msg,
			    "ec.json: field \"private_key\": not an RSA key (RS256 needs one)");
	free(json);
	testcerts_free(&t);
}

/* The well-known file of the current $HOME, relative to dir. */
static const char *wk_rel(void)
{
	static char rel[300];

	snprintf(rel, sizeof(rel), "%s/.config/gcloud/application_default_credentials.json",
		 getenv("HOME") + strlen(dir) + 1);
	return rel;
}

static void test_adc_order(void **state)
{
	struct gcp_credentials *c = NULL;
	struct error err = {0};
	char tokf[512], gac[512], wk[512], cfg[512], *json;

	(void)state;
	write_file("token", "  ya29.from-file \n", tokf, sizeof(tokf));
	json = sa_json(tok_url(), NULL);
	write_file("gac.json", json, gac, sizeof(gac));
	free(json);
	snprintf(cfg, sizeof(cfg), "%s/.config", getenv("HOME"));
	mkdir(cfg, 0700);
	snprintf(cfg, sizeof(cfg), "%s/.config/gcloud", getenv("HOME"));
	mkdir(cfg, 0700);
	write_file(wk_rel(),
		   "{\"type\":\"authorized_user\",\"client_id\":\"cid\",\"client_secret\":\"cs\","
		   "\"refresh_token\":\"rt\",\"quota_project_id\":\"quota-proj\"}",
		   wk, sizeof(wk));
	setenv("GCE_METADATA_HOST", "127.0.0.1:9", 1);

	/* 4. Nothing but the metadata server. */
	unlink(wk);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), 0);
	assert_int_equal(gcp_credentials_kind(c), GCP_CRED_METADATA);
	assert_string_equal(gcp_credentials_describe(c), "metadata server 127.0.0.1:9");
	assert_null(gcp_credentials_project(c));
	gcp_credentials_free(c);
	setenv("NO_GCE_CHECK", "true", 1);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "NO_GCE_CHECK rules out the metadata server"));
	unsetenv("NO_GCE_CHECK");

	/* 3. The well-known file, under $HOME then $CLOUDSDK_CONFIG. */
	write_file(wk_rel(),
		   "{\"type\":\"authorized_user\",\"client_id\":\"cid\",\"client_secret\":\"cs\","
		   "\"refresh_token\":\"rt\",\"quota_project_id\":\"quota-proj\"}",
		   wk, sizeof(wk));
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), 0);
	assert_int_equal(gcp_credentials_kind(c), GCP_CRED_AUTHORIZED_USER);
	assert_string_equal(gcp_credentials_project(c), "quota-proj");
	gcp_credentials_free(c);
	setenv("CLOUDSDK_CONFIG", dir, 1); /* no ADC file there: on to the metadata server */
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), 0);
	assert_int_equal(gcp_credentials_kind(c), GCP_CRED_METADATA);
	gcp_credentials_free(c);
	setenv("CLOUDSDK_CONFIG", cfg, 1);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), 0);
	assert_int_equal(gcp_credentials_kind(c), GCP_CRED_AUTHORIZED_USER);
	gcp_credentials_free(c);

	/* 2. GOOGLE_APPLICATION_CREDENTIALS before the well-known file. */
	setenv("GOOGLE_APPLICATION_CREDENTIALS", gac, 1);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), 0);
	assert_int_equal(gcp_credentials_kind(c), GCP_CRED_SERVICE_ACCOUNT);
	gcp_credentials_free(c);
	/* Set but missing: an error naming it, no fallback. */
	setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json", 1);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), -ENOENT);
	assert_string_equal(err.msg, "GOOGLE_APPLICATION_CREDENTIALS /nonexistent/key.json: No "
				     "such file or directory");
	setenv("GOOGLE_APPLICATION_CREDENTIALS", gac, 1);

	/* 1. The token file, from the environment, then from the option. */
	setenv("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", "/nonexistent/token", 1);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), -ENOENT);
	assert_string_equal(err.msg,
			    "access token file /nonexistent/token: No such file or directory");
	assert_int_equal(
	    gcp_credentials_load(&(struct gcp_credentials_options){.access_token_file = tokf}, &c,
				 &err),
	    0);
	assert_int_equal(gcp_credentials_kind(c), GCP_CRED_TOKEN_FILE);
	gcp_credentials_free(c);
	setenv("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", tokf, 1);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), 0);
	assert_int_equal(gcp_credentials_kind(c), GCP_CRED_TOKEN_FILE);
	gcp_credentials_free(c);
}

static void test_token_file(void **state)
{
	struct gcp_credentials *c = NULL;
	struct error err = {0};
	const char *tok;
	char path[512];

	(void)state;
	write_file("tf", "\n  ya29.first\n", path, sizeof(path));
	assert_int_equal(
	    gcp_credentials_load(&(struct gcp_credentials_options){.access_token_file = path}, &c,
				 &err),
	    0);
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), 0);
	assert_string_equal(tok, "ya29.first");
	write_file("tf", "ya29.second", path, sizeof(path));
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), 0);
	assert_string_equal(tok, "ya29.first"); /* cached */
	assert_int_equal(gcp_credentials_token(c, true, &tok, &err), 0);
	assert_string_equal(tok, "ya29.second"); /* re-read after a 401 */
	write_file("tf", "two words", path, sizeof(path));
	assert_int_equal(gcp_credentials_token(c, true, &tok, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "expected one token on one line"));
	gcp_credentials_free(c);
	write_file("tf", "  \n", path, sizeof(path));
	assert_int_equal(
	    gcp_credentials_load(&(struct gcp_credentials_options){.access_token_file = path}, &c,
				 &err),
	    -EINVAL);
}

struct token_server {
	int n;
	unsigned expires_in;
	char body[256];
};

static void token_handler(void *arg, const struct mock_request *req, struct mock_response *out)
{
	struct token_server *t = arg;

	t->n++;
	snprintf(t->body, sizeof(t->body),
		 "{\"access_token\":\"ya29.tok-%d\",\"expires_in\":%u,\"token_type\":\"Bearer\"}",
		 t->n, t->expires_in);
	(void)req;
	out->status = 200;
	out->body = t->body;
}

/* Extracts form field name from an urlencoded body (no decoding: test values need none). */
static const char *form_get(const char *body, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	for (const char *p = body; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		if (!strncmp(p, name, n) && p[n] == '=') {
			size_t vl = strcspn(p + n + 1, "&");

			snprintf(buf, len, "%.*s", (int)vl, p + n + 1);
			return buf;
		}
	}
	return NULL;
}

static void test_service_account_exchange(void **state)
{
	struct token_server ts = {.expires_in = 3600};
	struct gcp_credentials *c = NULL;
	struct error err = {0};
	char path[512], v[4096], *json = sa_json(tok_url(), NULL);
	const struct mock_request *r;
	const char *tok;

	(void)state;
	write_file("sa.json", json, path, sizeof(path));
	free(json);
	setenv("GOOGLE_APPLICATION_CREDENTIALS", path, 1);
	mock_set_handler(srv, token_handler, &ts);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), 0);
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), 0);
	assert_string_equal(tok, "ya29.tok-1");
	r = mock_req(srv, 0);
	assert_string_equal(r->method, "POST");
	assert_string_equal(r->url, "/token");
	assert_string_equal(r->content_type, "application/x-www-form-urlencoded");
	assert_string_equal(r->authorization, "");
	assert_string_equal(form_get(r->body, "grant_type", v, sizeof(v)),
			    "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer");
	assert_non_null(form_get(r->body, "assertion", v, sizeof(v)));
	check_jwt(v, 0, tok_url());
	/* Cached until near expiry; a forced refresh asks again. */
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), 0);
	assert_string_equal(tok, "ya29.tok-1");
	assert_int_equal(mock_count(srv), 1);
	assert_int_equal(gcp_credentials_token(c, true, &tok, &err), 0);
	assert_string_equal(tok, "ya29.tok-2");
	assert_int_equal(gcp_credentials_requests(c), 2);
	gcp_credentials_free(c);

	/* A short-lived token is refreshed before it expires (at 3/4 of its life). */
	mock_reset(srv);
	ts.n = 0;
	ts.expires_in = 1;
	mock_set_handler(srv, token_handler, &ts);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), 0);
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), 0);
	assert_string_equal(tok, "ya29.tok-1");
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), 0);
	assert_string_equal(tok, "ya29.tok-1");
	usleep(800 * 1000);
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), 0);
	assert_string_equal(tok, "ya29.tok-2");
	gcp_credentials_free(c);
}

static void test_token_endpoint_errors(void **state)
{
	struct gcp_credentials *c = NULL;
	struct error err = {0};
	char path[512], want[600], *json = sa_json(tok_url(), NULL);
	const char *tok;

	(void)state;
	write_file("sa.json", json, path, sizeof(path));
	free(json);
	setenv("GOOGLE_APPLICATION_CREDENTIALS", path, 1);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), 0);
	mock_push(srv, &(struct mock_response){
			   .status = 400,
			   .body = "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid "
				   "JWT Signature.\"}"});
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), -EACCES);
	snprintf(want, sizeof(want),
		 "token endpoint %s (credentials %s): HTTP 400 invalid_grant: Invalid JWT "
		 "Signature.",
		 tok_url(), path);
	assert_string_equal(err.msg, want);
	/* Not a token response. */
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{\"expires_in\":3600}"});
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), -EBADMSG);
	assert_non_null(strstr(err.msg, "no usable \"access_token\""));
	mock_push(srv, &(struct mock_response){.status = 200, .body = "<html>"});
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), -EBADMSG);
	/* 503s are retried like any API call. */
	mock_push(srv, &(struct mock_response){.status = 503, .body = "{}"});
	mock_push(srv,
		  &(struct mock_response){.status = 200, .body = "{\"access_token\":\"ya29.ok\"}"});
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), 0);
	assert_string_equal(tok, "ya29.ok");
	gcp_credentials_free(c);
}

static void test_authorized_user_exchange(void **state)
{
	struct token_server ts = {.expires_in = 3600};
	struct gcp_credentials *c = NULL;
	struct error err = {0};
	const struct mock_request *r;
	char path[512], json[1024], v[256];
	const char *tok;

	(void)state;
	snprintf(json, sizeof(json),
		 "{\"type\":\"authorized_user\",\"client_id\":\"cid.apps\",\"client_secret\":"
		 "\"s&cr=t\",\"refresh_token\":\"1//rt\",\"token_uri\":\"%s\"}",
		 tok_url());
	write_file("au.json", json, path, sizeof(path));
	setenv("GOOGLE_APPLICATION_CREDENTIALS", path, 1);
	mock_set_handler(srv, token_handler, &ts);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), 0);
	assert_int_equal(gcp_credentials_kind(c), GCP_CRED_AUTHORIZED_USER);
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), 0);
	assert_string_equal(tok, "ya29.tok-1");
	r = mock_req(srv, 0);
	assert_string_equal(r->method, "POST");
	assert_string_equal(form_get(r->body, "grant_type", v, sizeof(v)), "refresh_token");
	assert_string_equal(form_get(r->body, "client_id", v, sizeof(v)), "cid.apps");
	assert_string_equal(form_get(r->body, "client_secret", v, sizeof(v)), "s%26cr%3Dt");
	assert_string_equal(form_get(r->body, "refresh_token", v, sizeof(v)), "1%2F%2Frt");
	gcp_credentials_free(c);
}

static void test_metadata_server(void **state)
{
	struct token_server ts = {.expires_in = 3599};
	struct gcp_credentials *c = NULL;
	struct error err = {0};
	const struct mock_request *r;
	const char *tok;
	char hostport[64];

	(void)state;
	snprintf(hostport, sizeof(hostport), "%s", mock_url(srv) + strlen("http://"));
	setenv("GCE_METADATA_HOST", hostport, 1);
	mock_set_handler(srv, token_handler, &ts);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), 0);
	assert_int_equal(gcp_credentials_kind(c), GCP_CRED_METADATA);
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), 0);
	assert_string_equal(tok, "ya29.tok-1");
	r = mock_req(srv, 0);
	assert_string_equal(r->method, "GET");
	assert_string_equal(r->url, "/computeMetadata/v1/instance/service-accounts/default/token");
	assert_string_equal(r->metadata_flavor, "Google");
	gcp_credentials_free(c);

	/* The older variable name works too. */
	unsetenv("GCE_METADATA_HOST");
	setenv("GCE_METADATA_ROOT", hostport, 1);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), 0);
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), 0);
	gcp_credentials_free(c);
}

static void test_metadata_unreachable(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	struct gcp_credentials *c = NULL;
	struct error err = {0};
	const char *tok;
	char hostport[64];
	int fd;

	(void)state;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	snprintf(hostport, sizeof(hostport), "127.0.0.1:%u", ntohs(sa.sin_port));
	setenv("GCE_METADATA_HOST", hostport, 1);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), 0);
	assert_int_equal(gcp_credentials_token(c, false, &tok, &err), -ECONNREFUSED);
	assert_memory_equal(err.msg, "no Google credentials: no --access-token-file", 45);
	assert_non_null(strstr(err.msg, "the metadata server failed: GET http://127.0.0.1:"));
	gcp_credentials_free(c);
}

static void test_with_http_client(void **state)
{
	/* The provider plugs into http_do(): a 401 makes it fetch a new token. */
	struct token_server ts = {.expires_in = 3600};
	struct gcp_credentials *c = NULL;
	struct http_client *h = NULL;
	struct http_response resp;
	struct error err = {0};
	char path[512], u[128], *json = sa_json(tok_url(), NULL);

	(void)state;
	write_file("sa.json", json, path, sizeof(path));
	free(json);
	setenv("GOOGLE_APPLICATION_CREDENTIALS", path, 1);
	assert_int_equal(gcp_credentials_load(NULL, &c, &err), 0);
	assert_int_equal(
	    http_client_new(&(struct http_options){.token = gcp_credentials_token, .token_arg = c},
			    &h, &err),
	    0);
	mock_push(srv,
		  &(struct mock_response){.status = 200, .body = "{\"access_token\":\"ya29.a\"}"});
	mock_push(srv, &(struct mock_response){.status = 401, .body = "{}"});
	mock_push(srv,
		  &(struct mock_response){.status = 200, .body = "{\"access_token\":\"ya29.b\"}"});
	mock_push(srv, &(struct mock_response){.status = 200, .body = "{}"});
	(void)ts;
	snprintf(u, sizeof(u), "%s/api", mock_url(srv));
	assert_int_equal(http_do(h, &(struct http_request){.url = u}, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(mock_count(srv), 4);
	assert_string_equal(mock_req(srv, 1)->authorization, "Bearer ya29.a");
	assert_string_equal(mock_req(srv, 3)->authorization, "Bearer ya29.b");
	http_response_free(&resp);
	http_client_free(h);
	gcp_credentials_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_service_account_parse_and_jwt, setup),
	    cmocka_unit_test_setup(test_parse_errors, setup),
	    cmocka_unit_test_setup(test_non_rsa_key, setup),
	    cmocka_unit_test_setup(test_adc_order, setup),
	    cmocka_unit_test_setup(test_token_file, setup),
	    cmocka_unit_test_setup(test_service_account_exchange, setup),
	    cmocka_unit_test_setup(test_token_endpoint_errors, setup),
	    cmocka_unit_test_setup(test_authorized_user_exchange, setup),
	    cmocka_unit_test_setup(test_metadata_server, setup),
	    cmocka_unit_test_setup(test_metadata_unreachable, setup),
	    cmocka_unit_test_setup(test_with_http_client, setup),
	};
	char cmd[300];
	int ret;

	snprintf(dir, sizeof(dir), "%s/test_gcp_credentials.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	rsa_key = testcerts_rsa_key();
	rsa_pub = testcerts_public_key(rsa_key);
	srv = mock_start(NULL);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	mock_stop(srv);
	free(rsa_key);
	free(rsa_pub);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return ret;
}
