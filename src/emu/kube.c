/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes API of the emulated cluster. (Initial skeleton: no TLS material yet.) */
#include <errno.h>

#include "emu/emu.h"

int emu_kube_init(struct emu *emu)
{
	(void)emu;
	return 0;
}

void emu_kube_free(struct emu *emu)
{
	(void)emu;
}

int emu_kube_started(struct emu *emu)
{
	(void)emu;
	return 0;
}

int emu_kube_tls_material(struct emu *emu, const char **key_pem, const char **cert_pem,
			  const char **client_ca_pem)
{
	(void)emu;
	*key_pem = *cert_pem = *client_ca_pem = NULL;
	return -ENOTSUP;
}

int emu_kube_handle(struct emu_request *req)
{
	return emu_reply(req, 404, "text/plain", "not found\n", 10);
}

json_t *emu_kube_dump(struct emu *emu)
{
	(void)emu;
	return json_object();
}

int emu_kube_load(struct emu *emu, json_t *state)
{
	(void)emu;
	(void)state;
	return 0;
}

void emu_kube_instance_changed(struct emu *emu, const char *zone, const char *name,
			       const json_t *instance)
{
	(void)emu;
	(void)zone;
	(void)name;
	(void)instance;
}
