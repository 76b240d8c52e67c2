/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster's credentials, generated on first start (or read from --state):
 *   - a CA (CN=talos-gcp-emu-ca), as a cluster's kubernetes CA;
 *   - the API server's serving certificate: subjectAltName IP:127.0.0.1, IP:::1,
 *     DNS:localhost and the in-cluster names (kubernetes.default.svc...);
 *   - an admin client certificate, CN=admin, O=system:masters (what `talosctl kubeconfig`
 *     hands out), and an admin bearer token;
 *   - a service-account token, written with ca.crt and namespace by --serviceaccount-out as
 *     /var/run/secrets/kubernetes.io/serviceaccount holds them in a pod.
 * Keys are ECDSA P-256 (quick to generate, accepted by Go, GnuTLS and OpenSSL clients).
 *
 * Authentication (kube_authenticate): the kube port asks for client certificates
 * (MHD_OPTION_HTTPS_MEM_TRUST), but TLS lets a client send none, so each request checks
 * the GnuTLS session itself: a certificate that verifies against the CA gives the user
 * (CN) and groups (O), as the API server's x509 authenticator does; otherwise
 * "Authorization: Bearer" must carry one of the tokens. Authorization is "authenticated =
 * allowed" (docs/emulator.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/fileio.h"
#include "common/log.h"
#include "emu/kube/kube.h"

#define VALIDITY_DAYS 3650

static char *bio_string(BIO *b)
{
	char *data, *out;
	long n = BIO_get_mem_data(b, &data);

	if (n < 0)
		return NULL;
	out = malloc((size_t)n + 1);
	if (!out)
		return NULL;
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	return out;
}

static char *key_pem(EVP_PKEY *key)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (b && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
		s = bio_string(b);
	BIO_free(b);
	return s;
}

static char *cert_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (b && PEM_write_bio_X509(b, x))
		s = bio_string(b);
	BIO_free(b);
	return s;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -EINVAL;
	X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return 0;
}

/*
 * A certificate for key, signed by issuer_key (self-signed when issuer is NULL).
 * subject: CN and optional O values.
 */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *const *orgs, X509 *issuer,
		       EVP_PKEY *issuer_key, const char *const exts[][2], size_t next)
{
	X509 *x = X509_new();
	X509_NAME *name;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *sn = NULL;

	if (!x)
		return NULL;
	X509_set_version(x, 2);
	kube_random_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	if (!sn)
		goto fail;
	X509_set_serialNumber(x, sn);
	/* An hour back: clients whose clock is a little behind accept it too. */
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)VALIDITY_DAYS * 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	for (size_t i = 0; orgs && orgs[i]; i++)
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)orgs[i],
					   -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	for (size_t i = 0; i < next; i++) {
		int nid = OBJ_txt2nid(exts[i][0]);
		if (nid == NID_undef || add_ext(x, issuer ? issuer : x, nid, exts[i][1]) < 0)
			goto fail;
	}
	if (!X509_sign(x, issuer_key, EVP_sha256()))
		goto fail;
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	return x;
fail:
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	X509_free(x);
	return NULL;
}

static char *random_token(void)
{
	uint8_t b[32];
	char *s = malloc(base64_encoded_size(sizeof(b)));

	if (!s)
		return NULL;
	kube_random_bytes(b, sizeof(b));
	base64_encode(b, sizeof(b), s, BASE64_URL | BASE64_NO_PAD);
	return s;
}

void kube_pki_free(struct kube_pki *p)
{
	char **fields[] = {&p->ca_key,    &p->ca_cert,    &p->server_key,  &p->server_cert,
			   &p->admin_key, &p->admin_cert, &p->admin_token, &p->sa_token};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (*fields[i])
			OPENSSL_cleanse(*fields[i], strlen(*fields[i]));
		free(*fields[i]);
		*fields[i] = NULL;
	}
}

int kube_pki_generate(struct kube_pki *p)
{
	static const char *const ca_exts[][2] = {
	    {"basicConstraints", "critical,CA:TRUE"},
	    {"keyUsage", "critical,keyCertSign,cRLSign,digitalSignature"},
	    {"subjectKeyIdentifier", "hash"},
	};
	static const char *const server_exts[][2] = {
	    {"basicConstraints", "critical,CA:FALSE"},
	    {"keyUsage", "critical,digitalSignature,keyEncipherment"},
	    {"extendedKeyUsage", "serverAuth"},
	    {"authorityKeyIdentifier", "keyid"},
	    {"subjectAltName",
	     "IP:127.0.0.1,IP:::1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
	     "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"},
	};
	static const char *const client_exts[][2] = {
	    {"basicConstraints", "critical,CA:FALSE"},
	    {"keyUsage", "critical,digitalSignature,keyEncipherment"},
	    {"extendedKeyUsage", "clientAuth"},
	    {"authorityKeyIdentifier", "keyid"},
	};
	static const char *const masters[] = {"system:masters", NULL};
	EVP_PKEY *ca_key = NULL, *srv_key = NULL, *adm_key = NULL;
	X509 *ca = NULL, *srv = NULL, *adm = NULL;
	int ret = -ENOMEM;

	kube_pki_free(p);
	ca_key = EVP_EC_gen("P-256");
	srv_key = EVP_EC_gen("P-256");
	adm_key = EVP_EC_gen("P-256");
	if (!ca_key || !srv_key || !adm_key)
		goto cleanup;
	ca = make_cert(ca_key, "talos-gcp-emu-ca", NULL, NULL, ca_key, ca_exts, 3);
	if (!ca)
		goto cleanup;
	srv = make_cert(srv_key, "kube-apiserver", NULL, ca, ca_key, server_exts, 5);
	adm = make_cert(adm_key, "admin", masters, ca, ca_key, client_exts, 4);
	if (!srv || !adm)
		goto cleanup;
	p->ca_key = key_pem(ca_key);
	p->ca_cert = cert_pem(ca);
	p->server_key = key_pem(srv_key);
	p->server_cert = cert_pem(srv);
	p->admin_key = key_pem(adm_key);
	p->admin_cert = cert_pem(adm);
	p->admin_token = random_token();
	p->sa_token = random_token();
	if (p->ca_key && p->ca_cert && p->server_key && p->server_cert && p->admin_key &&
	    p->admin_cert && p->admin_token && p->sa_token)
		ret = 0;
cleanup:
	if (ret < 0)
		kube_pki_free(p);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(adm_key);
	X509_free(ca);
	X509_free(srv);
	X509_free(adm);
	return ret;
}

static const char *const pki_names[] = {
    "caKey",    "caCert",    "serverKey",  "serverCert",
    "adminKey", "adminCert", "adminToken", "serviceAccountToken"};

static char **pki_field(struct kube_pki *p, size_t i)
{
	char **f[] = {&p->ca_key,    &p->ca_cert,    &p->server_key,  &p->server_cert,
		      &p->admin_key, &p->admin_cert, &p->admin_token, &p->sa_token};
	return f[i];
}

json_t *kube_pki_dump(const struct kube_pki *p)
{
	json_t *o = json_object();

	for (size_t i = 0; i < 8; i++) {
		const char *v = *pki_field((struct kube_pki *)p, i);
		if (v)
			json_object_set_new(o, pki_names[i], json_string(v));
	}
	return o;
}

int kube_pki_load(struct kube_pki *p, const json_t *state)
{
	struct kube_pki n = {0};

	for (size_t i = 0; i < 8; i++) {
		const char *v = kj_str(state, pki_names[i]);
		if (!v || !(*pki_field(&n, i) = strdup(v))) {
			kube_pki_free(&n);
			return -EINVAL;
		}
	}
	kube_pki_free(p);
	*p = n;
	return 0;
}

static char *b64(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(base64_encoded_size(n));

	if (out)
		base64_encode(s, n, out, 0);
	return out;
}

/*
 * Two users: the admin's client certificate (current context) and the admin's bearer
 * token (context emu-token), so both authentication paths are usable from one file.
 */
int kube_write_kubeconfig(struct emu_kube *k, const char *path)
{
	char *ca = b64(k->pki.ca_cert), *crt = b64(k->pki.admin_cert), *key = b64(k->pki.admin_key);
	char *text = NULL;
	int ret = -ENOMEM;

	if (!ca || !crt || !key)
		goto cleanup;
	text = str_printf("apiVersion: v1\n"
			  "kind: Config\n"
			  "clusters:\n"
			  "- name: talos-gcp-emu\n"
			  "  cluster:\n"
			  "    server: %s\n"
			  "    certificate-authority-data: %s\n"
			  "contexts:\n"
			  "- name: admin@talos-gcp-emu\n"
			  "  context:\n"
			  "    cluster: talos-gcp-emu\n"
			  "    user: admin@talos-gcp-emu\n"
			  "- name: emu-token\n"
			  "  context:\n"
			  "    cluster: talos-gcp-emu\n"
			  "    user: emu-token\n"
			  "current-context: admin@talos-gcp-emu\n"
			  "preferences: {}\n"
			  "users:\n"
			  "- name: admin@talos-gcp-emu\n"
			  "  user:\n"
			  "    client-certificate-data: %s\n"
			  "    client-key-data: %s\n"
			  "- name: emu-token\n"
			  "  user:\n"
			  "    token: %s\n",
			  k->emu->kube_url, ca, crt, key, k->pki.admin_token);
	if (!text)
		goto cleanup;
	ret = file_write_atomic(path, text, strlen(text), 0600);
	if (ret < 0)
		log_error("--kubeconfig-out %s: %s", path, strerror(-ret));
	else
		log_info("wrote kubeconfig %s (client certificate and token contexts)", path);
cleanup:
	if (key)
		OPENSSL_cleanse(key, strlen(key));
	if (text)
		OPENSSL_cleanse(text, strlen(text));
	free(ca);
	free(crt);
	free(key);
	free(text);
	return ret;
}

/* What a pod sees in /var/run/secrets/kubernetes.io/serviceaccount. */
int kube_write_serviceaccount(struct emu_kube *k, const char *dir)
{
	char path[4096];
	int ret;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		log_error("--serviceaccount-out %s: %s", dir, strerror(errno));
		return ret;
	}
	snprintf(path, sizeof(path), "%s/token", dir);
	ret = file_write_atomic(path, k->pki.sa_token, strlen(k->pki.sa_token), 0600);
	if (ret == 0) {
		snprintf(path, sizeof(path), "%s/ca.crt", dir);
		ret = file_write_atomic(path, k->pki.ca_cert, strlen(k->pki.ca_cert), 0644);
	}
	if (ret == 0) {
		snprintf(path, sizeof(path), "%s/namespace", dir);
		ret = file_write_atomic(path, "kube-system", 11, 0644);
	}
	if (ret < 0)
		log_error("--serviceaccount-out %s: %s", path, strerror(-ret));
	else
		log_info("wrote service-account token, ca.crt and namespace in %s", dir);
	return ret;
}

/* ---- authentication ---- */
static bool token_equal(const char *a, const char *b)
{
	size_t n;

	if (!a || !b)
		return false;
	n = strlen(b);
	return strlen(a) == n && CRYPTO_memcmp(a, b, n) == 0;
}

static void set_identity(struct emu_request *req, const char *user, json_t *groups)
{
	free(req->user);
	json_decref(req->groups);
	req->user = strdup(user);
	req->groups = groups;
	/* Every authenticated request is in system:authenticated. */
	json_array_append_new(req->groups, json_string("system:authenticated"));
}

static char *dn_part(gnutls_x509_crt_t crt, const char *oid, unsigned idx)
{
	char buf[512];
	size_t len = sizeof(buf);

	if (gnutls_x509_crt_get_dn_by_oid(crt, oid, idx, 0, buf, &len) < 0)
		return NULL;
	return strndup(buf, len);
}

/* 1 with an identity from a verified client certificate, 0 without one. */
static int client_cert(struct emu_request *req)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t session;
	const gnutls_datum_t *certs;
	unsigned int ncerts = 0, status = 0;
	gnutls_x509_crt_t crt = NULL;
	char *cn = NULL;
	json_t *groups;
	int ret = 0;

	if (!ci || !ci->tls_session)
		return 0;
	session = ci->tls_session;
	certs = gnutls_certificate_get_peers(session, &ncerts);
	if (!certs || ncerts == 0)
		return 0;
	/* Against the trust list MHD_OPTION_HTTPS_MEM_TRUST installed (our CA only). */
	if (gnutls_certificate_verify_peers2(session, &status) < 0 || status != 0) {
		log_debug("kube: client certificate rejected (status 0x%x)", status);
		return 0;
	}
	if (gnutls_x509_crt_init(&crt) < 0)
		return 0;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) < 0)
		goto cleanup;
	cn = dn_part(crt, GNUTLS_OID_X520_COMMON_NAME, 0);
	if (!cn || !cn[0])
		goto cleanup;
	groups = json_array();
	for (unsigned i = 0; i < 16; i++) {
		char *o = dn_part(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, i);
		if (!o)
			break;
		json_array_append_new(groups, json_string(o));
		free(o);
	}
	set_identity(req, cn, groups);
	ret = 1;
cleanup:
	free(cn);
	gnutls_x509_crt_deinit(crt);
	return ret;
}

int kube_authenticate(struct emu_kube *k, struct emu_request *req)
{
	const char *auth;

	if (client_cert(req))
		return 0;
	auth = emu_request_header(req, "Authorization");
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
		const char *tok = auth + 7;
		while (*tok == ' ')
			tok++;
		if (token_equal(tok, k->pki.admin_token)) {
			set_identity(req, "admin", json_pack("[s]", "system:masters"));
			return 0;
		}
		if (token_equal(tok, k->pki.sa_token)) {
			set_identity(req, "system:serviceaccount:kube-system:talos-gcp",
				     json_pack("[s, s]", "system:serviceaccounts",
					       "system:serviceaccounts:kube-system"));
			return 0;
		}
	}
	return -EACCES;
}
