/* SPDX-License-Identifier: Apache-2.0 */
/* vip-alias /healthz and /metrics: any bytes a client sends get one well-formed response. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[HTTP_MAX_RESPONSE];
	static struct vip_config cfg;
	static int ready;
	struct vip_metrics m = {0};
	struct http_request req;
	char *copy;
	int n, r;

	if (!ready) {
		char *argv[] = {"vip-alias", "--vip", "10.0.0.2/32", NULL};
		struct error err;

		if (vip_config_parse(&cfg, 3, argv, NULL, &err) != VIP_CONFIG_RUN)
			abort();
		ready = 1;
	}
	if (size > HTTP_MAX_REQUEST)
		return 0;
	/* An exact-size copy, so reading one byte past the request is caught. */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	m.present = size & 1;
	r = http_parse_request(copy, size, &req);
	if (r == 0 && (req.path[0] != '/' || strlen(req.path) >= sizeof(req.path)))
		abort();
	n = http_respond(copy, size, &m, &cfg, out, sizeof(out));
	if (n > 0 && (memcmp(out, "HTTP/1.1 ", 9) != 0 || !memmem(out, (size_t)n, "\r\n\r\n", 4)))
		abort();
	if ((r == -EAGAIN) != (n == 0))
		abort();
	free(copy);
	return 0;
}
