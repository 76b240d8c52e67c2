/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control-plane nodes' API servers: on every control-plane Talos instance, port 6443 on
 * all its addresses serves the emulated cluster's Kubernetes API (the same API, TLS material
 * and authentication as --kube-listen, /readyz included), as kube-apiserver does with
 * --bind-address 0.0.0.0 on Talos.
 *
 * A listening socket made inside a namespace stays there: the socket is made while the thread
 * visits the node's namespace, and the emulator's own libmicrohttpd glue serves it on the loop
 * like its two ports. No process per node.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "emu/core/httpd.h"
#include "emu/core/loop.h"
#include "emu/dataplane/dataplane.h"

#define APISERVER_PORT 6443

struct dp_apiserver {
	struct emu_httpd *httpd;
};

static int apiserver_start(struct emu_dataplane *dp, struct dp_inst *in)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(APISERVER_PORT)};
	struct emu_tls tls;
	struct dp_apiserver *a;
	int fd, one = 1, ret;

	if (emu_kube_tls_material(dp->emu, &tls.key_pem, &tls.cert_pem, &tls.client_ca_pem) < 0)
		return -EIO;
	fd = dp_netns_socket(in->nsfd, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fd;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 128) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		close(fd);
		return -ENOMEM;
	}
	ret = emu_httpd_start_fd(dp->emu, EMU_PORT_KUBE, fd, &tls, &a->httpd);
	if (ret < 0) {
		close(fd);
		free(a);
		return ret;
	}
	ret = emu_loop_add_httpd(dp->emu, a->httpd);
	if (ret < 0) {
		emu_httpd_stop(a->httpd);
		free(a);
		return ret;
	}
	in->api = a;
	log_debug("dataplane: %s: API server on 0.0.0.0:%d", in->ns, APISERVER_PORT);
	return 0;
}

void dp_apiserver_stop(struct emu_dataplane *dp, struct dp_inst *in)
{
	if (!in->api)
		return;
	emu_loop_remove_httpd(dp->emu, in->api->httpd);
	emu_httpd_stop(in->api->httpd);
	free(in->api);
	in->api = NULL;
}

void dp_apiservers_sync(struct emu_dataplane *dp)
{
	/* Without --kube-listen there is no Kubernetes API to serve. */
	bool kube = dp->emu->kube_url[0] != '\0';

	for (size_t i = 0; i < dp->ninsts; i++) {
		struct dp_inst *in = dp->insts[i];
		bool want =
		    kube && in->nsfd >= 0 && in->talos && in->control_plane && !in->api_down;

		if (want && !in->api) {
			int ret = apiserver_start(dp, in);

			if (ret < 0)
				log_error("dataplane: %s: cannot serve the API on 6443: %s", in->ns,
					  strerror(-ret));
		} else if (!want && in->api) {
			dp_apiserver_stop(dp, in);
		}
	}
}
