/* SPDX-License-Identifier: Apache-2.0 */
/*
 * talos-gcp-emu: one process, one shared state, one thread.
 *
 * Every handler, timer and reconcile runs on the event loop thread (loop.c), so the state
 * needs no locks. Two HTTP daemons (libmicrohttpd, driven from our epoll loop):
 *   - the "cloud" port (--listen): Compute Engine v1 under /compute/v1/, the OAuth2 token
 *     endpoint, the metadata server, and the test control endpoint under /_emu/;
 *   - the "kube" port (--kube-listen): the Kubernetes API of the emulated cluster over HTTPS.
 *
 * This program is written from the public API documentation of GCP and Kubernetes and
 * shares no code with the talos-gcp clients (src/gcp, src/kube): a shared bug would hide
 * itself. It links only src/common.
 */
#ifndef TALOS_GCP_EMU_EMU_H
#define TALOS_GCP_EMU_EMU_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emu/state/state.h"

struct MHD_Connection;
struct emu_request;
struct emu_compute;
struct emu_kube;
struct emu_auth;
struct emu_faults;
struct emu_dataplane;
struct emu_subreq;

enum emu_ccm_allocator {
	EMU_CCM_CLOUD = 0, /* CloudAllocator: podCIDR copied from nic0 aliasIpRanges[0] */
	EMU_CCM_RANGE, /* RangeAllocator: allocates on its own from --cluster-cidr (split-brain) */
	EMU_CCM_OFF,   /* node IPAM off: nobody sets podCIDR */
};

struct emu_options {
	const char *listen;         /* "127.0.0.1:8080" */
	const char *kube_listen;    /* NULL: no Kubernetes API */
	const char *kubeconfig_out; /* written 0600 */
	const char *project;        /* "demo-project" */
	const char *state_path;     /* NULL: state lives in memory only */
	enum emu_state_sync state_sync;
	const char *control_token_file; /* NULL: the /_emu/ control endpoint is off */
	/* Limits (core/httpd.c) */
	uint64_t idle_timeout_ms; /* a connection without a request is closed after this */
	unsigned max_connections; /* per port; past it 503 (cloud) / 429 (kube) */
	uint64_t body_budget;     /* bytes of request bodies held at once, all connections */
	enum emu_ccm_allocator ccm_allocator;
	bool require_auth;           /* Compute API rejects requests without a valid token */
	uint64_t operation_delay_ms; /* how long an Operation stays RUNNING */
	/* Module flags: each module documents its own (see main.c usage). */
	const char *sa_key_out;     /* auth.c: service-account key file for the token endpoint */
	const char *adc_user_out;   /* auth.c: authorized_user credentials (refresh token) */
	uint64_t token_lifetime_ms; /* auth.c: access tokens expire after this (default 1h) */
	uint64_t
	    operation_wait_max_ms; /* compute: operations/wait returns by then (default 2 min) */
	const char
	    *serviceaccount_out;  /* kube.c: in-cluster token, ca.crt and namespace in a dir */
	const char *cluster_cidr; /* kube: RangeAllocator's --cluster-cidr (NULL: the pods range) */
	uint64_t kubelet_delay_ms;    /* kube: kubelet (re-)registration delay */
	uint64_t ccm_delay_ms;        /* kube: CCM reaction delay (init, IPAM, lifecycle) */
	uint64_t ccm_retry_delay_ms;  /* kube/ccm_services.c: first retry of a failed LB sync */
	bool dataplane;               /* dataplane/: the state materialised in network namespaces */
	const char *dataplane_prefix; /* dataplane/: namespace name prefix (default "tgemu") */
	uint64_t dataplane_probe_max_ms; /* dataplane/: shortens longer probe intervals (tests) */
};

struct emu {
	struct emu_options opt;
	struct emu_compute *compute;
	struct emu_kube *kube;
	struct emu_auth *auth;
	struct emu_faults *faults;
	struct emu_dataplane *dataplane; /* NULL without --dataplane */
	struct emu_state *state;         /* --state (state/state.c); allocated by the first table */
	char control_token[65];          /* --control-token-file's token, "" when off */
	uint64_t requests_total;         /* every request either daemon answered */
	char cloud_url[80];              /* "http://127.0.0.1:PORT" once bound */
	char kube_url[80];               /* "https://127.0.0.1:PORT" once bound, else "" */
	bool stopping;
};

/* Monotonic milliseconds (CLOCK_MONOTONIC) and wall-clock RFC 3339 with milliseconds. */
uint64_t emu_now_ms(void);
/* "2026-11-26T05:04:03.123-00:00" style as GCP prints creationTimestamp; buf >= 40 bytes. */
const char *emu_rfc3339_ms(char *buf, size_t len);
/* "2026-11-26T05:04:03Z" as Kubernetes prints metav1.Time; buf >= 24 bytes. */
const char *emu_rfc3339(char *buf, size_t len);

/* ---- timers (loop.c) ---- */
typedef void (*emu_timer_fn)(struct emu *emu, void *arg);
/* Runs fn(arg) on the loop after delay_ms. Returns a timer id (> 0) or -errno. */
long emu_timer_add(struct emu *emu, uint64_t delay_ms, emu_timer_fn fn, void *arg);
void emu_timer_cancel(struct emu *emu, long id);

/* ---- file descriptors (loop.c): fn(fd, epoll events) runs on the loop when fd is ready ---- */
typedef void (*emu_fd_fn)(struct emu *emu, int fd, uint32_t events, void *arg);
/* events: EPOLLIN, EPOLLOUT, ... (level-triggered). 0 or -errno. */
int emu_fd_watch(struct emu *emu, int fd, uint32_t events, emu_fd_fn fn, void *arg);
int emu_fd_modify(struct emu *emu, int fd, uint32_t events);
/* Before closing fd. Safe from inside a callback (also for other fds of the same batch). */
void emu_fd_unwatch(struct emu *emu, int fd);

/* ---- requests (httpd.c) ---- */
enum emu_port { EMU_PORT_CLOUD, EMU_PORT_KUBE };

typedef int (*emu_resume_fn)(struct emu_request *req);
typedef void (*emu_close_fn)(struct emu_request *req);

struct emu_request {
	struct emu *emu;
	struct MHD_Connection *conn;
	enum emu_port port;
	const char *method; /* "GET", "POST", ... */
	const char *path;   /* URL path without the query string, percent-decoded by MHD */
	char *body;         /* NUL-terminated; body_len bytes */
	size_t body_len;
	bool responded;
	/* Kubernetes authentication result (kube port only): user name and groups. */
	char *user;
	json_t *groups;
	/*
	 * Long-running requests (operations wait, watch): a handler may suspend the
	 * connection with emu_request_suspend() after setting on_resume; emu_request_resume()
	 * later makes the loop call on_resume, which must reply (or suspend again).
	 * on_close runs once when the connection is gone, whatever the reason.
	 */
	emu_resume_fn on_resume;
	emu_close_fn on_close;
	void *handler_data;
	/* Set by a fault: the connection is dropped without a reply (a reset). */
	bool reset_connection;
	/* A sub-request (a part of a batch, core/subreq.h): no connection of its own. */
	struct emu_subreq *sub;
	/* private to httpd.c */
	json_t *reply_headers;
	bool suspended;
	bool resumed;
	struct emu_request *susp_next, **susp_pprev; /* suspended ones, resumed before a stop */
	size_t body_cap;
	size_t reserved; /* bytes of the body budget this request holds */
	bool too_large;
	bool over_budget; /* the body budget ran out while reading: 429 */
	bool gate_off;    /* the reply is the "cannot save" error itself */
	bool held;        /* a stream waiting until the state is saved again */
};

const char *emu_request_query(const struct emu_request *req, const char *key);
const char *emu_request_header(const struct emu_request *req, const char *name);

/* Replies; each returns 0 or -errno. A request gets exactly one reply. */
int emu_reply(struct emu_request *req, unsigned status, const char *content_type, const void *body,
	      size_t len);
/* Steals body. Compact JSON, "application/json; charset=UTF-8". */
int emu_reply_json(struct emu_request *req, unsigned status, json_t *body);
/* Adds a response header to the reply that the next emu_reply* call makes. */
int emu_reply_header(struct emu_request *req, const char *name, const char *value);

/*
 * Streaming reply (watch): MHD calls read(cls, pos, buf, max); return bytes written,
 * 0 after suspending the connection (no data now), or -1 for end of stream.
 */
typedef long (*emu_stream_read_fn)(void *cls, uint64_t pos, char *buf, size_t max);
int emu_reply_stream(struct emu_request *req, unsigned status, const char *content_type,
		     emu_stream_read_fn read, void *cls);

void emu_request_suspend(struct emu_request *req);
void emu_request_resume(struct emu_request *req);

/* ---- modules: each owns its part of the state ---- */
/* compute.c: /compute/v1/... on the cloud port. */
int emu_compute_init(struct emu *emu);
void emu_compute_free(struct emu *emu);
int emu_compute_handle(struct emu_request *req);
/* batch.c: POST /batch/compute/v1, multipart/mixed parts run as sub-requests. */
int emu_compute_batch(struct emu_request *req);
json_t *emu_compute_dump(struct emu *emu);
/* Replaces the module's state (at start, and at runtime for PUT /_emu/state). */
int emu_compute_load(struct emu *emu, json_t *state);
/* After the cloud port is bound (cloud_url set): the catalogue, URLs moved from --state. */
int emu_compute_started(struct emu *emu);

/* auth.c: OAuth2 token endpoint, metadata server, --require-auth checks. */
int emu_auth_init(struct emu *emu);
void emu_auth_free(struct emu *emu);
/* After the cloud port is bound (cloud_url set): writes --sa-key-out. */
int emu_auth_started(struct emu *emu);
/* Returns 1 when it answered the request (its paths), 0 when the path is not its own. */
int emu_auth_handle(struct emu_request *req);
/* Compute API authentication under --require-auth: 0 ok, or it replied 401 and returns 1. */
int emu_auth_check(struct emu_request *req);

/* faults.c: injected faults, matched before any handler runs on either port. */
int emu_faults_init(struct emu *emu);
void emu_faults_free(struct emu *emu);
/* Returns 1 when a fault took the request over (replied, delayed or reset it). */
int emu_faults_intercept(struct emu_request *req);
/* httpd.c: runs the handlers for a request (what dispatch does after the faults). */
void emu_request_dispatch(struct emu_request *req);

/* control.c: /_emu/... test control endpoint (faults, fingerprints, state dump/load). */
int emu_control_handle(struct emu_request *req);
/* The control token (--control-token-file): 0 when the request may go on, 1 when it was
 * answered (401, or 403 when the endpoint is off). */
int emu_control_authorize(struct emu_request *req);

/* kube.c: the Kubernetes API on the kube port, and the cluster's own controllers. */
int emu_kube_init(struct emu *emu);
/* Authenticates a request from its headers and TLS session (sets user and groups): 0, or
 * -EACCES. httpd.c calls it before reading a body; emu_kube_handle() when not done yet. */
int emu_kube_authenticate(struct emu_request *req);
void emu_kube_free(struct emu *emu);
int emu_kube_handle(struct emu_request *req);
/* After the kube port is bound (kube_url set): writes --kubeconfig-out, --serviceaccount-out. */
int emu_kube_started(struct emu *emu);
/* PEM key and certificate the kube port serves, and the CA that signs client certificates. */
int emu_kube_tls_material(struct emu *emu, const char **key_pem, const char **cert_pem,
			  const char **client_ca_pem);
json_t *emu_kube_dump(struct emu *emu);
int emu_kube_load(struct emu *emu, json_t *state);

/*
 * Cross-module notifications, so the cluster reacts to the cloud as a real one does:
 * the kubelet of an instance with user-data registers its Node, the CCM copies alias
 * ranges. instance is the Instance resource as served (borrowed), NULL after a delete.
 */
void emu_kube_instance_changed(struct emu *emu, const char *zone, const char *name,
			       const json_t *instance);
/*
 * Backend health until a data plane exists (kube/backend_health.c, docs/emulator.md): would
 * the instance answer a health check on port? 6443 while its Node is a Ready control plane;
 * another port while its Node is Ready and a NodePort/LoadBalancer Service exposes it.
 */
bool emu_kube_backend_healthy(struct emu *emu, const char *zone, const char *instance,
			      unsigned port);
/* instances.reset completed: the guest rebooted (its status stayed RUNNING), so its kubelet
 * starts again. instance is borrowed. */
void emu_kube_instance_reset(struct emu *emu, const char *zone, const char *name,
			     const json_t *instance);
/*
 * Would the instance answer a legacy HTTP health check on port and path (a target pool's,
 * compute/targetpools.c)? kube/ccm_services.c: kube-proxy's /healthz on 10256 while the
 * instance's Node is Ready; a Service's healthCheckNodePort while a Ready endpoint of it runs
 * there (externalTrafficPolicy: Local). Nothing else answers.
 */
bool emu_kube_lb_healthy(struct emu *emu, const char *zone, const char *instance, unsigned port,
			 const char *path);
/* Borrowed reference to an instance, or NULL. For the emulated CCM and kubelet. */
const json_t *emu_compute_instance(struct emu *emu, const char *zone, const char *name);
/* Borrowed reference to the Node of that name as the API serves it, or NULL (data plane). */
const json_t *emu_kube_node(struct emu *emu, const char *name);
/* Calls fn on every stored object of a resource ("" "v1" "services"), borrowed (data plane). */
void emu_kube_each(struct emu *emu, const char *group, const char *version, const char *resource,
		   void (*fn)(const json_t *obj, void *arg), void *arg);
/* Does the emulated cluster run this Talos instance as a control-plane node (kubelet's rule)? */
bool emu_kube_instance_control_plane(const json_t *instance, const char *name);

/*
 * dataplane/ (--dataplane): the emulated state as network namespaces (docs/emulator.md).
 * start: after the ports are bound (removes what an earlier run left first); stop: removes
 * every namespace it made. changed: any Compute or Kubernetes change; the data plane follows
 * on the next loop turn (a no-op without --dataplane, so modules call it freely).
 */
int emu_dataplane_start(struct emu *emu);
void emu_dataplane_stop(struct emu *emu);
void emu_dataplane_changed(struct emu *emu);
/* instances.reset completed: the guest reboots (its namespace is made anew, what ran in it
 * and what it configured are gone), although its status stayed RUNNING. */
void emu_dataplane_instance_reset(struct emu *emu, const char *zone, const char *name);
/*
 * The health of an instance behind a backend service or target pool (URLs) as the data
 * plane's probes see it: 1 with *healthy set, or 0 when the data plane does not probe it
 * (not running, or no health check): the caller's model answers then.
 */
int emu_dataplane_health(struct emu *emu, const char *service_url, const char *instance_url,
			 bool *healthy);
/* /_emu/dataplane...: the data plane's namespaces and controls (control.c dispatches). */
int emu_dataplane_control(struct emu_request *req);

#endif
