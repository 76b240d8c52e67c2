/* SPDX-License-Identifier: Apache-2.0 */
/* Certificates made at test time (OpenSSL): a CA, a server certificate for 127.0.0.1, a client. */
#ifndef TALOS_GCP_TESTS_TESTCERTS_H
#define TALOS_GCP_TESTS_TESTCERTS_H

struct testcerts {
	char *ca_cert, *ca_key;         /* PEM */
	char *server_cert, *server_key; /* CN=127.0.0.1, SAN IP:127.0.0.1, signed by the CA */
	char *client_cert, *client_key; /* CN=tester, O=system:masters, signed by the CA */
	char *other_ca_cert;            /* an unrelated CA: verification against it must fail */
};

/* Aborts on failure. */
void testcerts_make(struct testcerts *t);
void testcerts_free(struct testcerts *t);
/* A fresh RSA-2048 private key in PKCS#8 PEM (service-account keys). malloc'd. */
char *testcerts_rsa_key(void);
/* The public key of an RSA PEM private key, PEM. malloc'd. */
char *testcerts_public_key(const char *private_pem);

#endif
