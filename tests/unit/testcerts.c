/* SPDX-License-Identifier: Apache-2.0 */
#include "testcerts.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what)
{
	fprintf(stderr, "testcerts: %s\n", what);
	abort();
}

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (!k)
		die("EC key");
	return k;
}

static char *bio_string(BIO *b)
{
	char *data, *out;
	long n = BIO_get_mem_data(b, &data);

	out = malloc((size_t)n + 1);
	if (!out)
		die("oom");
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	BIO_free(b);
	return out;
}

static char *key_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (!PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
		die("write key");
	return bio_string(b);
}

static char *cert_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (!PEM_write_bio_X509(b, x))
		die("write cert");
	return bio_string(b);
}

static void add_ext(X509 *issuer, X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext || !X509_add_ext(x, ext, -1))
		die("extension");
	X509_EXTENSION_free(ext);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *org, X509 *issuer,
		       EVP_PKEY *issuer_key, bool ca, const char *san, long serial)
{
	X509 *x = X509_new();
	X509_NAME *name;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	if (org)
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)org, -1,
					   -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	if (ca) {
		add_ext(issuer, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(issuer, x, NID_key_usage, "critical,keyCertSign,cRLSign");
		add_ext(issuer, x, NID_subject_key_identifier, "hash");
	} else {
		add_ext(issuer, x, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(issuer, x, NID_key_usage, "critical,digitalSignature,keyEncipherment");
		add_ext(issuer, x, NID_ext_key_usage, san ? "serverAuth" : "clientAuth");
		add_ext(issuer, x, NID_authority_key_identifier, "keyid");
	}
	if (san)
		add_ext(issuer, x, NID_subject_alt_name, san);
	if (!X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()))
		die("sign");
	return x;
}

void testcerts_make(struct testcerts *t)
{
	EVP_PKEY *cak = ec_key(), *sk = ec_key(), *ck = ec_key(), *ok = ec_key();
	X509 *ca = make_cert(cak, "talos-gcp test CA", NULL, NULL, NULL, true, NULL, 1);
	X509 *srv = make_cert(sk, "127.0.0.1", NULL, ca, cak, false, "IP:127.0.0.1", 2);
	X509 *cli = make_cert(ck, "tester", "system:masters", ca, cak, false, NULL, 3);
	X509 *other = make_cert(ok, "unrelated CA", NULL, NULL, NULL, true, NULL, 4);

	t->ca_cert = cert_pem(ca);
	t->ca_key = key_pem(cak);
	t->server_cert = cert_pem(srv);
	t->server_key = key_pem(sk);
	t->client_cert = cert_pem(cli);
	t->client_key = key_pem(ck);
	t->other_ca_cert = cert_pem(other);
	X509_free(ca);
	X509_free(srv);
	X509_free(cli);
	X509_free(other);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(sk);
	EVP_PKEY_free(ck);
	EVP_PKEY_free(ok);
}

void testcerts_free(struct testcerts *t)
{
	free(t->ca_cert);
	free(t->ca_key);
	free(t->server_cert);
	free(t->server_key);
	free(t->client_cert);
	free(t->client_key);
	free(t->other_ca_cert);
	memset(t, 0, sizeof(*t));
}

char *testcerts_rsa_key(void)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	char *pem;

	if (!k)
		die("RSA key");
	pem = key_pem(k);
	EVP_PKEY_free(k);
	return pem;
}

char *testcerts_public_key(const char *private_pem)
{
	BIO *in = BIO_new_mem_buf(private_pem, -1), *out = BIO_new(BIO_s_mem());
	EVP_PKEY *k = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);

	if (!k || !PEM_write_bio_PUBKEY(out, k))
		die("public key");
	EVP_PKEY_free(k);
	BIO_free(in);
	return bio_string(out);
}
