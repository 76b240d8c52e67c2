/* SPDX-License-Identifier: Apache-2.0 */
/* kube/kubeconfig: client-go's rules, and one-line errors with file:line:column and field. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base64.h"
#include "kube/kubeconfig.h"

/* Test paths are short; the compiler cannot know that. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static char dir[256];

/* Base64 of short PEM-looking texts: enough for the loader, which does not parse PEM. */
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"
#define CERT_B64                                                                                   \
	"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNMSUVOVAotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg=="
#define KEY_B64  "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCktFWQotLS0tLUVORCBQUklWQVRFIEtFWS0tLS0tCg=="
#define CA_PEM   "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n"
#define KEY_PEM  "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"

static const char good[] = "apiVersion: v1\n"
			   "kind: Config\n"
			   "clusters:\n"
			   "- name: c1\n"
			   "  cluster:\n"
			   "    server: https://127.0.0.1:6443/\n"
			   "    certificate-authority-data: " CA_B64 "\n"
			   "- name: c2\n"
			   "  cluster:\n"
			   "    server: 127.0.0.2:6443\n"
			   "    insecure-skip-tls-verify: true\n"
			   "users:\n"
			   "- name: admin\n"
			   "  user:\n"
			   "    client-certificate-data: " CERT_B64 "\n"
			   "    client-key-data: " KEY_B64 "\n"
			   "- name: bot\n"
			   "  user:\n"
			   "    token: s3cr3t\n"
			   "contexts:\n"
			   "- name: main\n"
			   "  context:\n"
			   "    cluster: c1\n"
			   "    user: admin\n"
			   "- name: other\n"
			   "  context: {cluster: c2, user: bot, namespace: kube-system}\n"
			   "current-context: main\n";

static void write_file(const char *name, const char *content, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static int parse(const char *text, const char *ctx, struct kube_config **out, struct error *err)
{
	char path[512];

	write_file("config", text, path, sizeof(path));
	return kube_config_load(&(struct kube_config_options){.kubeconfig = path, .context = ctx},
				out, err);
}

/* Asserts that loading text fails with code and a message equal to "DIR/config:" + rest. */
static void assert_error(const char *text, const char *ctx, int code, const char *rest)
{
	struct kube_config *c = NULL;
	struct error err = {0};
	char want[1024];

	snprintf(want, sizeof(want), "%s/config:%s", dir, rest);
	assert_int_equal(parse(text, ctx, &c, &err), code);
	assert_null(c);
	assert_string_equal(err.msg, want);
}

static void test_good_data_fields(void **state)
{
	struct kube_config *c = NULL;
	struct error err = {0};

	(void)state;
	assert_int_equal(parse(good, NULL, &c, &err), 0);
	assert_string_equal(c->server, "https://127.0.0.1:6443");
	assert_string_equal(c->context, "main");
	assert_string_equal(c->namespace, "default");
	assert_int_equal(c->ca_pem_len, strlen(CA_PEM));
	assert_memory_equal(c->ca_pem, CA_PEM, strlen(CA_PEM));
	assert_memory_equal(c->cert_pem, CERT_PEM, strlen(CERT_PEM));
	assert_memory_equal(c->key_pem, KEY_PEM, strlen(KEY_PEM));
	assert_null(c->token);
	assert_false(c->insecure_skip_tls_verify);
	assert_false(c->in_cluster);
	kube_config_free(c);
}

static void test_context_flag(void **state)
{
	struct kube_config *c = NULL;
	struct error err = {0};

	(void)state;
	assert_int_equal(parse(good, "other", &c, &err), 0);
	/* A bare host:port is https, as in client-go. */
	assert_string_equal(c->server, "https://127.0.0.2:6443");
	assert_string_equal(c->token, "s3cr3t");
	assert_string_equal(c->namespace, "kube-system");
	assert_null(c->ca_pem);
	assert_null(c->cert_pem);
	/* The file says insecure-skip-tls-verify: true for this cluster only. */
	assert_true(c->insecure_skip_tls_verify);
	kube_config_free(c);
	assert_error(good, "nope", -EINVAL, " context \"nope\" not found (contexts: main, other)");
}

static void test_relative_paths(void **state)
{
	static const char text[] = "clusters:\n"
				   "- name: c\n"
				   "  cluster:\n"
				   "    server: https://127.0.0.1:1\n"
				   "    certificate-authority: pki/ca.crt\n"
				   "users:\n"
				   "- name: u\n"
				   "  user:\n"
				   "    client-certificate: pki/client.crt\n"
				   "    client-key: pki/client.key\n"
				   "    tokenFile: token\n"
				   "contexts:\n"
				   "- name: x\n"
				   "  context: {cluster: c, user: u}\n"
				   "current-context: x\n";
	struct kube_config *c = NULL;
	struct error err = {0};
	char p[512], tok[512];

	(void)state;
	snprintf(p, sizeof(p), "%s/pki", dir);
	mkdir(p, 0700);
	write_file("pki/ca.crt", CA_PEM, p, sizeof(p));
	write_file("pki/client.crt", CERT_PEM, p, sizeof(p));
	write_file("pki/client.key", KEY_PEM, p, sizeof(p));
	write_file("token", "  tok-from-file\n", tok, sizeof(tok));
	/* Run from elsewhere: the paths follow the kubeconfig, not the working directory. */
	assert_int_equal(chdir("/"), 0);
	assert_int_equal(parse(text, NULL, &c, &err), 0);
	assert_memory_equal(c->ca_pem, CA_PEM, strlen(CA_PEM));
	assert_memory_equal(c->cert_pem, CERT_PEM, strlen(CERT_PEM));
	assert_memory_equal(c->key_pem, KEY_PEM, strlen(KEY_PEM));
	assert_string_equal(c->token, "tok-from-file");
	assert_string_equal(c->token_file, tok);
	kube_config_free(c);

	/* A missing file is named, with where the kubeconfig refers to it. */
	unlink(tok);
	snprintf(p, sizeof(p), "11:16: users[u].user.tokenFile: %s: No such file or directory",
		 tok);
	assert_error(text, NULL, -ENOENT, p);
}

static void test_missing_current_context(void **state)
{
	static const char text[] = "clusters:\n"
				   "- name: c\n"
				   "  cluster: {server: https://127.0.0.1:1}\n"
				   "contexts:\n"
				   "- name: x\n"
				   "  context: {cluster: c}\n";
	static const char undefined[] = "clusters: []\n"
					"contexts: []\n"
					"current-context: gone\n";
	struct kube_config *c = NULL;
	struct error err = {0};
	char want[600];

	(void)state;
	assert_int_equal(parse(text, NULL, &c, &err), -EINVAL);
	snprintf(want, sizeof(want), "%s/config: no current-context set and no --context given",
		 dir);
	assert_string_equal(err.msg, want);
	/* --context picks one; a context without a user is anonymous. */
	assert_int_equal(parse(text, "x", &c, &err), 0);
	assert_null(c->token);
	assert_null(c->cert_pem);
	kube_config_free(c);
	assert_error(undefined, NULL, -EINVAL,
		     "3:18: current-context: context \"gone\" is not defined (contexts: none)");
}

static void test_wrong_types(void **state)
{
	(void)state;
	assert_error("clusters: {}\n", NULL, -EBADMSG,
		     "1:11: kubeconfig.clusters: expected a list");
	assert_error("clusters:\n- name: c\n  cluster:\n    server: [a]\n", NULL, -EBADMSG,
		     "4:13: clusters[c].cluster.server: expected a string");
	/* Quoted "true" is a string in YAML, as client-go reads it: refused, not guessed. */
	assert_error("clusters:\n- name: c\n  cluster:\n    server: https://h\n"
		     "    insecure-skip-tls-verify: \"true\"\n",
		     NULL, -EBADMSG,
		     "5:31: clusters[c].cluster.insecure-skip-tls-verify: expected a boolean (true "
		     "or false)");
	assert_error("users:\n- name: u\n  user: token\n", NULL, -EBADMSG,
		     "3:9: users[0].user: expected a mapping");
	assert_error("contexts:\n- context: {cluster: c}\n", NULL, -EBADMSG,
		     "2:3: contexts[0].name: missing");
	assert_error("- a\n- b\n", NULL, -EBADMSG, "1:1: kubeconfig: expected a mapping");
	assert_error("current-context: a\ncurrent-context: b\n", NULL, -EBADMSG,
		     "2:1: kubeconfig.current-context: duplicate key");
	assert_error("clusters:\n- name: c\n  cluster: {server: https://h}\n"
		     "- name: c\n  cluster: {server: https://i}\n",
		     NULL, -EBADMSG, "4:3: clusters[c]: defined twice in this file");
}

static void test_invalid_base64(void **state)
{
	(void)state;
	assert_error("clusters:\n- name: c\n  cluster:\n    server: https://h\n"
		     "    certificate-authority-data: not*base64\n",
		     NULL, -EINVAL,
		     "5:33: clusters[c].cluster.certificate-authority-data: invalid base64");
	assert_error("users:\n- name: u\n  user:\n    client-key-data: QUJD=\n", NULL, -EINVAL,
		     "4:22: users[u].user.client-key-data: invalid base64");
}

static void test_invalid_yaml(void **state)
{
	struct kube_config *c = NULL;
	struct error err = {0};
	char want[600];

	(void)state;
	assert_int_equal(parse("clusters:\n- name: c\n  cluster: {server: [}\n", NULL, &c, &err),
			 -EBADMSG);
	snprintf(want, sizeof(want), "%s/config:3:22: invalid YAML: ", dir);
	assert_non_null(err.msg); /* the loader's message, as before the bounds scan */
	assert_memory_equal(err.msg, want, strlen(want));
}

static void test_insecure_rules(void **state)
{
	static const char ca_and_insecure[] = "clusters:\n- name: c\n  cluster:\n"
					      "    server: https://h\n"
					      "    insecure-skip-tls-verify: true\n"
					      "    certificate-authority-data: " CA_B64 "\n"
					      "contexts:\n- name: x\n  context: {cluster: c}\n"
					      "current-context: x\n";
	static const char both_ca[] = "clusters:\n- name: c\n  cluster:\n"
				      "    server: https://h\n"
				      "    certificate-authority: /nonexistent\n"
				      "    certificate-authority-data: " CA_B64 "\n"
				      "contexts:\n- name: x\n  context: {cluster: c}\n"
				      "current-context: x\n";
	static const char explicit_false[] = "clusters:\n- name: c\n  cluster:\n"
					     "    server: https://h\n"
					     "    insecure-skip-tls-verify: false\n"
					     "contexts:\n- name: x\n  context: {cluster: c}\n"
					     "current-context: x\n";
	struct kube_config *c = NULL;
	struct error err = {0};

	(void)state;
	assert_error(ca_and_insecure, NULL, -EINVAL,
		     "5:31: clusters[c].cluster: insecure-skip-tls-verify with a certificate "
		     "authority: specifying a root certificates file with the insecure flag is "
		     "not allowed");
	assert_error(both_ca, NULL, -EINVAL,
		     "5:28: clusters[c].cluster: both certificate-authority and "
		     "certificate-authority-data are set: use one");
	assert_int_equal(parse(explicit_false, NULL, &c, &err), 0);
	assert_false(c->insecure_skip_tls_verify);
	assert_null(c->ca_pem);
	kube_config_free(c);
}

static void test_user_rules(void **state)
{
	(void)state;
	assert_error("clusters:\n- name: c\n  cluster: {server: https://h}\n"
		     "users:\n- name: u\n  user:\n    client-certificate-data: " CERT_B64 "\n"
		     "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
		     "current-context: x\n",
		     NULL, -EINVAL, "7:5: users[u].user: client-certificate without client-key");
	assert_error(
	    "clusters:\n- name: c\n  cluster: {server: https://h}\n"
	    "users:\n- name: u\n  user:\n    exec:\n      command: gke-gcloud-auth-plugin\n"
	    "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	    "current-context: x\n",
	    NULL, -EOPNOTSUPP,
	    "8:7: users[u].user.exec: credential plugins are not supported; use a client "
	    "certificate or a token");
	assert_error("clusters:\n- name: c\n  cluster: {server: https://h}\n"
		     "contexts:\n- name: x\n  context: {cluster: c, user: ghost}\n"
		     "current-context: x\n",
		     NULL, -EINVAL,
		     "6:31: contexts[x].context.user: user \"ghost\" is not defined");
	assert_error("clusters:\n- name: c\n  cluster: {}\n"
		     "contexts:\n- name: x\n  context: {cluster: c}\n"
		     "current-context: x\n",
		     NULL, -EINVAL, "3:12: clusters[c].cluster.server: missing");
	assert_error("clusters:\n- name: c\n  cluster: {server: ftp://h}\n"
		     "contexts:\n- name: x\n  context: {cluster: c}\n"
		     "current-context: x\n",
		     NULL, -EINVAL,
		     "3:21: clusters[c].cluster.server \"ftp://h\": want an http(s):// URL");
	/* The host is what follows the '@': refused, not read as localhost. */
	assert_error(
	    "clusters:\n- name: c\n  cluster: {server: \"http://localhost:x@evil.example/\"}\n"
	    "contexts:\n- name: x\n  context: {cluster: c}\n"
	    "current-context: x\n",
	    NULL, -EINVAL,
	    "3:21: clusters[c].cluster.server \"http://***:***@evil.example/\": user "
	    "information (user:password@) in the URL is refused: it would be sent as "
	    "credentials, and the host is what follows the '@'");
}

#define IMP_HEAD                                                                                   \
	"clusters:\n- name: c\n  cluster: {server: https://h}\n"                                   \
	"contexts:\n- name: x\n  context: {cluster: c, user: u}\n"                                 \
	"current-context: x\n"                                                                     \
	"users:\n- name: u\n  user:\n    token: t\n"

static void test_impersonation(void **state)
{
	struct kube_config *c = NULL;
	struct error err = {0};

	(void)state;
	assert_int_equal(parse(IMP_HEAD "    as: jane\n"
					"    as-uid: \"42\"\n"
					"    as-groups: [developers, \"system:authenticated\"]\n"
					"    as-user-extra:\n"
					"      scopes: [view, development]\n"
					"      \"example.com/team name\": [a]\n"
					"      \"100%\": [x]\n",
			       NULL, &c, &err),
			 0);
	assert_string_equal(c->impersonate_user, "jane");
	assert_non_null(c->headers);
	assert_string_equal(c->headers[0], "Impersonate-User: jane");
	assert_string_equal(c->headers[1], "Impersonate-Uid: 42");
	assert_string_equal(c->headers[2], "Impersonate-Group: developers");
	assert_string_equal(c->headers[3], "Impersonate-Group: system:authenticated");
	assert_string_equal(c->headers[4], "Impersonate-Extra-scopes: view");
	assert_string_equal(c->headers[5], "Impersonate-Extra-scopes: development");
	/* client-go's headerKeyEscape: '/', ' ' and '%' are not token characters of a name. */
	assert_string_equal(c->headers[6], "Impersonate-Extra-example.com%2Fteam%20name: a");
	assert_string_equal(c->headers[7], "Impersonate-Extra-100%25: x");
	assert_null(c->headers[8]);
	kube_config_free(c);
	c = NULL;

	assert_int_equal(parse(IMP_HEAD, NULL, &c, &err), 0);
	assert_null(c->headers);
	assert_null(c->impersonate_user);
	kube_config_free(c);

	assert_error(IMP_HEAD "    as-groups: [g]\n", NULL, -EINVAL,
		     "12:16: users[u].user.as-groups: impersonating a uid, groups or extras needs "
		     "a user (set users[u].user.as)");
	assert_error(IMP_HEAD "    as: \"jane\\r\\nX-Evil: 1\"\n", NULL, -EINVAL,
		     "12:9: users[u].user.as: control characters are not allowed");
	assert_error(IMP_HEAD "    as: jane\n    as-groups: [[a]]\n", NULL, -EBADMSG,
		     "13:17: users[u].user.as-groups[0]: expected a string");
	assert_error(IMP_HEAD "    as: jane\n    as-user-extra: {k: v}\n", NULL, -EBADMSG,
		     "13:24: users[u].user.as-user-extra.k: expected a list of strings");
}

static void test_proxy_url(void **state)
{
	struct kube_config *c = NULL;
	struct error err = {0};

	(void)state;
	assert_int_equal(
	    parse("clusters:\n- name: c\n  cluster:\n    server: https://h\n"
		  "    proxy-url: socks5://u:p@127.0.0.1:1080\n"
		  "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
		  NULL, &c, &err),
	    0);
	assert_string_equal(c->proxy_url, "socks5://u:p@127.0.0.1:1080");
	kube_config_free(c);
	assert_error("clusters:\n- name: c\n  cluster:\n    server: https://h\n"
		     "    proxy-url: ftp://p\n"
		     "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
		     NULL, -EINVAL,
		     "5:16: clusters[c].cluster.proxy-url \"ftp://p\": want an http(s):// or "
		     "socks5(h):// URL");
}

static void test_yaml_bounds(void **state)
{
	/*
	 * 100,000 levels of "[" (200 KB): libyaml's loader would take about a minute; the scan
	 * refuses it at level 257 (bench/kubeconfig measures how fast).
	 */
	size_t depth = 100000, o = 0;
	char *text = malloc(2 * depth + 64);

	(void)state;
	assert_non_null(text);
	o += (size_t)sprintf(text, "preferences: ");
	memset(text + o, '[', depth);
	memset(text + o + depth, ']', depth);
	strcpy(text + o + 2 * depth, "\n");
	assert_error(text, NULL, -E2BIG, "1:269: nesting deeper than 256 levels");
	free(text);
	/* Aliases count as what they expand to. */
	assert_error("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
		     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
		     NULL, -E2BIG,
		     "6:36: document expands to more than 1000000 nodes through aliases (refused: "
		     "a \"billion laughs\" document?)");
}

static void test_kubeconfig_env_merge(void **state)
{
	static const char first[] =
	    "clusters:\n- name: shared\n  cluster: {server: https://first}\n"
	    "contexts:\n- name: ctx\n  context: {cluster: shared}\n";
	static const char second[] =
	    "clusters:\n- name: shared\n  cluster: {server: https://second}\n"
	    "- name: only2\n  cluster: {server: https://only2}\n"
	    "contexts:\n- name: ctx2\n  context: {cluster: only2}\n"
	    "current-context: ctx\n";
	struct kube_config *c = NULL;
	struct error err = {0};
	char a[512], b[512], env[1600];

	(void)state;
	write_file("first", first, a, sizeof(a));
	write_file("second", second, b, sizeof(b));
	snprintf(env, sizeof(env), "%s/missing:%s:%s", dir, a, b);
	setenv("KUBECONFIG", env, 1);
	/* current-context from the second file, cluster "shared" from the first. */
	assert_int_equal(kube_config_load(NULL, &c, &err), 0);
	assert_string_equal(c->server, "https://first");
	kube_config_free(c);
	assert_int_equal(
	    kube_config_load(&(struct kube_config_options){.context = "ctx2"}, &c, &err), 0);
	assert_string_equal(c->server, "https://only2");
	kube_config_free(c);
	/* --kubeconfig wins over $KUBECONFIG: alone, the second file lacks context "ctx". */
	assert_int_equal(kube_config_load(&(struct kube_config_options){.kubeconfig = b}, &c, &err),
			 -EINVAL);
	snprintf(env, sizeof(env),
		 "%s:9:18: current-context: context \"ctx\" is not defined (contexts: ctx2)", b);
	assert_string_equal(err.msg, env);
	assert_int_equal(
	    kube_config_load(&(struct kube_config_options){.kubeconfig = b, .context = "ctx2"}, &c,
			     &err),
	    0);
	assert_string_equal(c->server, "https://only2");
	kube_config_free(c);
	snprintf(a, sizeof(a), "%s/absent", dir);
	assert_int_equal(kube_config_load(&(struct kube_config_options){.kubeconfig = a}, &c, &err),
			 -ENOENT);
	snprintf(env, sizeof(env), "kubeconfig %s: No such file or directory", a);
	assert_string_equal(err.msg, env);
	unsetenv("KUBECONFIG");
}

static void test_home_and_in_cluster(void **state)
{
	struct kube_config *c = NULL;
	struct error err = {0};
	char p[512], sa[512];

	(void)state;
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	snprintf(p, sizeof(p), "%s/home", dir);
	mkdir(p, 0700);
	setenv("HOME", p, 1);
	/* Nothing anywhere. */
	assert_int_equal(kube_config_load(NULL, &c, &err), -ENOENT);
	assert_string_equal(err.msg, "no Kubernetes configuration: no --kubeconfig, no "
				     "~/.kube/config, and not in a cluster "
				     "(KUBERNETES_SERVICE_HOST unset)");
	/* In a cluster. */
	snprintf(sa, sizeof(sa), "%s/sa", dir);
	mkdir(sa, 0700);
	write_file("sa/token", "sa-token\n", p, sizeof(p));
	write_file("sa/ca.crt", CA_PEM, p, sizeof(p));
	write_file("sa/namespace", "talos-gcp\n", p, sizeof(p));
	setenv(KUBE_SERVICEACCOUNT_DIR_ENV, sa, 1);
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	assert_int_equal(kube_config_load(NULL, &c, &err), 0);
	assert_true(c->in_cluster);
	assert_string_equal(c->server, "https://127.0.0.1:6443");
	assert_string_equal(c->token, "sa-token");
	snprintf(p, sizeof(p), "%s/token", sa);
	assert_string_equal(c->token_file, p);
	assert_memory_equal(c->ca_pem, CA_PEM, strlen(CA_PEM));
	assert_string_equal(c->namespace, "talos-gcp");
	assert_false(c->insecure_skip_tls_verify);
	kube_config_free(c);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	assert_int_equal(kube_config_in_cluster(&c, &err), 0);
	assert_string_equal(c->server, "https://[fd00::1]:6443");
	kube_config_free(c);
	/* ~/.kube/config comes before in-cluster. */
	snprintf(p, sizeof(p), "%s/home/.kube", dir);
	mkdir(p, 0700);
	write_file("home/.kube/config", good, p, sizeof(p));
	assert_int_equal(kube_config_load(NULL, &c, &err), 0);
	assert_false(c->in_cluster);
	assert_string_equal(c->context, "main");
	kube_config_free(c);
	/* A missing token file in the service-account directory is named. */
	unlink(p);
	snprintf(p, sizeof(p), "%s/token", sa);
	unlink(p);
	assert_int_equal(kube_config_load(NULL, &c, &err), -ENOENT);
	snprintf(sa, sizeof(sa), "in-cluster service account token %s: No such file or directory",
		 p);
	assert_string_equal(err.msg, sa);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

static void test_parse_from_memory(void **state)
{
	struct kube_config *c = NULL;
	struct error err = {0};

	(void)state;
	assert_int_equal(kube_config_parse(good, strlen(good), NULL, "other", &c, &err), 0);
	assert_string_equal(c->source, "<input>");
	kube_config_free(c);
	assert_int_equal(kube_config_parse("", 0, NULL, NULL, &c, &err), -EINVAL);
	assert_string_equal(err.msg, "<input>: no current-context set and no --context given");
	/* A NUL byte inside a scalar is not silently cut. */
	assert_int_equal(
	    kube_config_parse("current-context: \"a\\0b\"\n", 24, NULL, NULL, &c, &err), -EBADMSG);
	assert_string_equal(err.msg, "<input>:1:18: kubeconfig.current-context: expected a string");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_data_fields),
	    cmocka_unit_test(test_context_flag),
	    cmocka_unit_test(test_relative_paths),
	    cmocka_unit_test(test_missing_current_context),
	    cmocka_unit_test(test_wrong_types),
	    cmocka_unit_test(test_invalid_base64),
	    cmocka_unit_test(test_invalid_yaml),
	    cmocka_unit_test(test_insecure_rules),
	    cmocka_unit_test(test_user_rules),
	    cmocka_unit_test(test_impersonation),
	    cmocka_unit_test(test_proxy_url),
	    cmocka_unit_test(test_yaml_bounds),
	    cmocka_unit_test(test_kubeconfig_env_merge),
	    cmocka_unit_test(test_home_and_in_cluster),
	    cmocka_unit_test(test_parse_from_memory),
	};
	char cmd[300];
	int ret;

	snprintf(dir, sizeof(dir), "%s/test_kubeconfig.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	unsetenv("KUBECONFIG");
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return ret;
}
