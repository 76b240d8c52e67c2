/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Kubernetes API of the emulated cluster (HTTPS on --kube-listen): module entry
 * points, the router and authentication. See kube.h for the map of kube*.c.
 *
 * Open without credentials, as the system:public-info-viewer role allows anyone on a real
 * cluster: /healthz, /livez, /readyz, /version. Everything else needs a client certificate
 * signed by the cluster CA or a bearer token (401 otherwise); any authenticated user may do
 * anything (no RBAC evaluation).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cidr.h"
#include "common/log.h"
#include "emu/kube/kube.h"

struct emu_kube *kube_of(struct emu *emu)
{
	return emu->kube;
}

static int ensure_pki(struct emu_kube *k)
{
	int ret;

	if (k->pki_ready)
		return 0;
	ret = kube_pki_generate(&k->pki);
	if (ret < 0) {
		log_error("kube: cannot generate the cluster CA and certificates: %s",
			  strerror(-ret));
		return ret;
	}
	k->pki_ready = true;
	emu_state_changed(k->emu);
	return 0;
}

int emu_kube_init(struct emu *emu)
{
	struct emu_kube *k = calloc(1, sizeof(*k));
	int ret;

	if (!k)
		return -ENOMEM;
	k->emu = emu;
	emu->kube = k;
	k->kubelet_delay_ms = emu->opt.kubelet_delay_ms;
	k->ccm_delay_ms = emu->opt.ccm_delay_ms;
	if (emu->opt.cluster_cidr) {
		struct cidr c;
		if (cidr_parse(emu->opt.cluster_cidr, &c, CIDR_STRICT) < 0 ||
		    c.addr.family != AF_INET || c.prefix > 24) {
			log_error(
			    "--cluster-cidr '%s': want an IPv4 range such as 172.20.0.0/16 (a /24 or wider)",
			    emu->opt.cluster_cidr);
			return -EINVAL;
		}
		snprintf(k->cluster_cidr, sizeof(k->cluster_cidr), "%s", emu->opt.cluster_cidr);
	}
	ret = kube_store_init(k);
	if (ret == 0)
		ret = kube_state_register(k);
	if (ret == 0)
		ret = kube_ctrl_init(k);
	if (ret == 0)
		ret = kube_endpoints_init(k);
	if (ret == 0) {
		kube_ctrl_bootstrap(k);
		kube_endpoints_resync(k);
	}
	return ret;
}

void emu_kube_free(struct emu *emu)
{
	struct emu_kube *k = emu->kube;

	if (!k)
		return;
	kube_watch_free_all(k);
	kube_endpoints_free(k);
	kube_ctrl_free(k);
	kube_store_free(k);
	kube_pki_free(&k->pki);
	free(k);
	emu->kube = NULL;
}

int emu_kube_tls_material(struct emu *emu, const char **key_pem, const char **cert_pem,
			  const char **client_ca_pem)
{
	struct emu_kube *k = emu->kube;
	int ret = ensure_pki(k);

	*key_pem = *cert_pem = *client_ca_pem = NULL;
	if (ret < 0)
		return ret;
	*key_pem = k->pki.server_key;
	*cert_pem = k->pki.server_cert;
	*client_ca_pem = k->pki.ca_cert;
	return 0;
}

int emu_kube_started(struct emu *emu)
{
	struct emu_kube *k = emu->kube;
	int ret = ensure_pki(k);

	if (ret == 0 && emu->opt.kubeconfig_out)
		ret = kube_write_kubeconfig(k, emu->opt.kubeconfig_out);
	if (ret == 0 && emu->opt.serviceaccount_out)
		ret = kube_write_serviceaccount(k, emu->opt.serviceaccount_out);
	return ret;
}

static int reply_text(struct emu_request *req, unsigned code, const char *text)
{
	return emu_reply(req, code, "text/plain; charset=utf-8", text, strlen(text));
}

static int version(struct emu_request *req)
{
	static const char body[] =
	    "{\"major\":\"" KUBE_MAJOR "\",\"minor\":\"" KUBE_MINOR
	    "\",\"gitVersion\":\"" KUBE_GIT_VERSION
	    "\",\"gitCommit\":\"8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828\",\"gitTreeState\":\"clean\","
	    "\"buildDate\":\"2025-05-15T08:19:08Z\",\"goVersion\":\"go1.24.2\",\"compiler\":\"gc\","
	    "\"platform\":\"linux/amd64\"}";

	return emu_reply(req, 200, "application/json", body, sizeof(body) - 1);
}

/* /healthz, /livez, /readyz and their /NAME checks. */
static int health(struct emu_request *req)
{
	const char *verbose = emu_request_query(req, "verbose");

	if (verbose) {
		const char *p = req->path + 1, *slash = strchr(p, '/');
		char text[256];
		snprintf(text, sizeof(text),
			 "[+]ping ok\n[+]log ok\n[+]etcd ok\n%.*s check passed\n",
			 slash ? (int)(slash - p) : (int)strlen(p), p);
		return reply_text(req, 200, text);
	}
	return reply_text(req, 200, "ok");
}

static bool is_health(const char *p)
{
	static const char *const roots[] = {"/healthz", "/livez", "/readyz"};

	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(roots[i]);
		if (!strncmp(p, roots[i], n) && (p[n] == '\0' || p[n] == '/'))
			return true;
	}
	return false;
}

int emu_kube_authenticate(struct emu_request *req)
{
	return kube_authenticate(req->emu->kube, req);
}

int emu_kube_handle(struct emu_request *req)
{
	struct emu_kube *k = req->emu->kube;
	struct kube_err e = {0};
	int ret;

	if (!strcmp(req->method, "GET") && is_health(req->path))
		return health(req);
	if (!strcmp(req->method, "GET") && !strcmp(req->path, "/version"))
		return version(req);
	if (!req->user && kube_authenticate(k, req) < 0) {
		log_debug("kube: %s %s: 401 (no valid client certificate or token)", req->method,
			  req->path);
		kube_errf(&e, 401, "Unauthorized", "Unauthorized");
		ret = kube_reply_status(req, &e);
		kube_err_clear(&e);
		return ret;
	}
	log_debug("kube: %s %s user=%s", req->method, req->path, req->user);
	if (kube_discovery_handle(k, req))
		return 0;
	if (kube_eviction_handle(k, req))
		return 0;
	return kube_rest_handle(k, req);
}

/* ---- --state ---- */
json_t *emu_kube_dump(struct emu *emu)
{
	struct emu_kube *k = emu->kube;
	json_t *objects = json_array(), *doc;

	for (size_t i = 0; i < k->nres; i++) {
		struct kube_res *r = k->res[i];
		if (r->removed)
			continue;
		for (size_t j = 0; j < r->len; j++)
			json_array_append(objects, r->items[j].obj->obj);
	}
	doc = json_pack("{s:i, s:I, s:o, s:o}", "version", 1, "resourceVersion", (json_int_t)k->rv,
			"objects", objects, "controllers", kube_ctrl_dump(k));
	if (k->pki_ready)
		json_object_set_new(doc, "pki", kube_pki_dump(&k->pki));
	return doc;
}

static int load_objects(struct emu_kube *k, const json_t *objects, bool crds)
{
	json_t *o;
	size_t i;

	json_array_foreach(objects, i, o)
	{
		const char *av = kj_str(o, "apiVersion"), *kind = kj_str(o, "kind");
		bool is_crd = kind && !strcmp(kind, "CustomResourceDefinition");
		struct kube_res *r;

		if (is_crd != crds)
			continue;
		r = kube_res_by_kind(k, av, kind);
		if (!r || (r->def.flags & KR_CREATE_ONLY)) {
			log_error("kube state: objects[%zu]: unknown kind %s %s", i, av ? av : "?",
				  kind ? kind : "?");
			return -EINVAL;
		}
		if (kube_store_put_loaded(k, r, json_deep_copy(o)) < 0) {
			log_error("kube state: objects[%zu]: %s without a name (or namespace)", i,
				  kind);
			return -EINVAL;
		}
		if (is_crd)
			kube_res_add_custom(k, o);
	}
	return 0;
}

/* A kind the document defines itself with a CustomResourceDefinition. */
static bool defined_by_crd(const json_t *objects, const char *av, const char *kind)
{
	json_t *o, *v;
	size_t i, j;

	json_array_foreach(objects, i, o)
	{
		const char *group = kj_str(o, "spec.group");
		if (strcmp(kj_str(o, "kind") ?: "", "CustomResourceDefinition") || !group ||
		    strcmp(kj_str(o, "spec.names.kind") ?: "", kind))
			continue;
		json_array_foreach(kj_path(o, "spec.versions"), j, v)
		{
			char gv[300];
			snprintf(gv, sizeof(gv), "%s/%s", group, kj_str(v, "name") ?: "");
			if (!strcmp(gv, av))
				return true;
		}
	}
	return false;
}

/* Every object has a known kind and a name: checked before anything is replaced. */
static int check_objects(struct emu_kube *k, const json_t *objects)
{
	json_t *o;
	size_t i;

	json_array_foreach(objects, i, o)
	{
		const char *av = kj_str(o, "apiVersion"), *kind = kj_str(o, "kind");
		const char *name = kj_str(o, "metadata.name");
		struct kube_res *r;

		if (!av || !kind || !name || !name[0]) {
			log_error(
			    "kube state: objects[%zu]: want apiVersion, kind and metadata.name", i);
			return -EINVAL;
		}
		r = kube_res_by_kind(k, av, kind);
		if (r && (r->def.flags & KR_CREATE_ONLY))
			r = NULL;
		if (!r && !defined_by_crd(objects, av, kind)) {
			log_error("kube state: objects[%zu]: unknown kind %s %s", i, av, kind);
			return -EINVAL;
		}
		if (r && (r->def.flags & KR_NAMESPACED) && !kj_str(o, "metadata.namespace")) {
			log_error("kube state: objects[%zu]: %s %s has no namespace", i, kind,
				  name);
			return -EINVAL;
		}
	}
	return 0;
}

int emu_kube_load(struct emu *emu, json_t *state)
{
	struct emu_kube *k = emu->kube;
	const json_t *objects, *pki;
	bool running = emu->kube_url[0] != '\0';
	int ret;

	if (!json_is_object(state))
		return 0;
	objects = json_object_get(state, "objects");
	if (objects && !json_is_array(objects)) {
		log_error("kube state: objects is not an array");
		return -EINVAL;
	}
	ret = check_objects(k, objects);
	if (ret < 0)
		return ret;
	pki = json_object_get(state, "pki");
	if (pki && !running) {
		/* The serving certificate is fixed once the port listens: a load at run time
		 * keeps the credentials clients already hold. */
		ret = kube_pki_load(&k->pki, pki);
		if (ret < 0) {
			log_error("kube state: pki is incomplete");
			return ret;
		}
		k->pki_ready = true;
	}
	kube_watch_close_all(k);
	kube_store_clear(k);
	k->rv = (uint64_t)json_integer_value(json_object_get(state, "resourceVersion"));
	ret = load_objects(k, objects, true);
	if (ret == 0)
		ret = load_objects(k, objects, false);
	kube_store_sort(k);
	kube_ctrl_load(k, json_object_get(state, "controllers"));
	kube_ctrl_bootstrap(k);
	kube_endpoints_resync(k);
	kube_state_loaded(k);
	emu_state_changed(emu);
	return ret;
}

void emu_kube_instance_changed(struct emu *emu, const char *zone, const char *name,
			       const json_t *instance)
{
	if (emu->kube) {
		kube_ctrl_instance_changed(emu->kube, zone, name, instance);
		kube_state_instance_changed(emu->kube);
	}
}

const json_t *emu_kube_node(struct emu *emu, const char *name)
{
	struct emu_kube *k = emu->kube;
	struct kube_res *r = k ? kube_res_find(k, "", "v1", "nodes") : NULL;
	struct kobj *o = r && name ? kube_get(r, NULL, name) : NULL;

	return o ? o->obj : NULL;
}

void emu_kube_each(struct emu *emu, const char *group, const char *version, const char *resource,
		   void (*fn)(const json_t *obj, void *arg), void *arg)
{
	struct emu_kube *k = emu->kube;
	struct kube_res *r = k ? kube_res_find(k, group, version, resource) : NULL;

	for (size_t i = 0; r && i < r->len; i++)
		if (r->items[i].obj && r->items[i].obj->obj && !r->items[i].obj->slim)
			fn(r->items[i].obj->obj, arg);
}
