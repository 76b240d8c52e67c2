/* SPDX-License-Identifier: Apache-2.0 */
/* libmicrohttpd glue: our own listening socket, external epoll, request bodies, dispatch. */
#ifndef TALOS_GCP_EMU_HTTPD_H
#define TALOS_GCP_EMU_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emu/emu.h"

struct emu_httpd;

struct emu_tls {
	const char *key_pem;
	const char *cert_pem;
	const char *client_ca_pem; /* asks for (optional) client certificates signed by it */
};

/*
 * Binds listen ("127.0.0.1:PORT", port 0 picks one) and starts a daemon for port kind.
 * On failure writes a one-line reason into errbuf. bound receives "127.0.0.1:PORT".
 */
int emu_httpd_start(struct emu *emu, enum emu_port port, const char *listen,
		    const struct emu_tls *tls, struct emu_httpd **out, char *bound,
		    size_t bound_len, char *errbuf, size_t errlen);
/* A daemon on a listening socket made elsewhere (inside a network namespace); takes listen_fd. */
int emu_httpd_start_fd(struct emu *emu, enum emu_port port, int listen_fd,
		       const struct emu_tls *tls, struct emu_httpd **out);
void emu_httpd_stop(struct emu_httpd *h);
int emu_httpd_epoll_fd(const struct emu_httpd *h);
uint64_t emu_httpd_timeout_ms(const struct emu_httpd *h);
void emu_httpd_run(struct emu_httpd *h);
/* True (once) when a connection was resumed since the last call: run the daemons now. */
bool emu_httpd_resume_pending(void);

/* Largest request body accepted (a 413 past it). */
#define EMU_MAX_BODY (32u << 20)
/* The API server reads at most 3 MiB of a request body (apiserver's MaxRequestBodyBytes). */
#define EMU_MAX_KUBE_BODY (3u << 20)

#endif
