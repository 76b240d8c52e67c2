/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The emulated CCM's service controller: internal interfaces of
 *
 *   ccm_services.c     the service controller of k8s.io/cloud-provider (controllers/service):
 *                      queue, finalizer, Events, status, node sync, retries; the backend
 *                      health model of the load balancers it makes
 *   ccm_call.c         its Compute calls, made as internal sub-requests through the cloud
 *                      port (faults, --require-auth, handlers, Operations waited on), and the
 *                      tasks that string them together
 *   ccm_external.c     cloud-provider-gcp's external load balancer (target pool, legacy HTTP
 *                      health check, firewalls, address, forwarding rule)
 *   ccm_internal.c     cloud-provider-gcp's internal load balancer (instance groups, health
 *                      check, regional backend service, firewalls, forwarding rule)
 *
 * Everything runs on the loop: a sync is a tree of tasks, each a step function that issues
 * one call (or starts child tasks) and is resumed with its answer.
 */
#ifndef TALOS_GCP_EMU_KUBE_CCM_H
#define TALOS_GCP_EMU_KUBE_CCM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emu/kube/kube.h"

/* What the CCM's API calls say they are (the GCE provider's "Kubernetes/VERSION (OS ARCH)"
 * and google-api-go-client's own), plus its name, so that faults can pick its calls. */
#define CCM_USER_AGENT                                                                             \
	"Kubernetes/" KUBE_GIT_VERSION " (linux amd64) google-api-go-client/0.5 "                  \
	"gcp-cloud-controller-manager"
#define CCM_COMPONENT "service-controller"

/* Finalizers: the service controller's, and the GCE provider's per scheme. */
#define LB_CLEANUP_FINALIZER "service.kubernetes.io/load-balancer-cleanup"
#define NETLB_FINALIZER      "gke.networking.io/l4-netlb-v1"
#define ILB_FINALIZER        "gke.networking.io/l4-ilb-v1"

/* cloud-provider-gcp gce.go, gce_loadbalancer.go, gce_healthchecks.go */
#define HC_INTERVAL_S             8
#define HC_TIMEOUT_S              1
#define HC_HEALTHY                1
#define HC_UNHEALTHY              3
#define NODES_HC_PORT             10256
#define NODES_HC_PATH             "/healthz"
#define TP_CREATE_INSTANCES_MAX   200
#define TP_UPDATE_INSTANCES_MAX   1000
#define FIREWALL_PRIORITY_DEFAULT 1000
#define ILB_PORTS_MAX             5

struct ccm;
struct ccm_task;
struct ccm_call;

enum ccm_job_kind {
	CCM_JOB_ENSURE,  /* EnsureLoadBalancer */
	CCM_JOB_UPDATE,  /* UpdateLoadBalancer: the node set changed */
	CCM_JOB_DELETE,  /* EnsureLoadBalancerDeleted */
	CCM_JOB_GET,     /* GetLoadBalancer: does its forwarding rule exist */
	CCM_JOB_CLUSTER, /* read the cluster id (nothing else) */
};

/* One provider operation on one Service, and what its tasks share. */
struct ccm_job {
	struct ccm *ccm;
	enum ccm_job_kind kind;
	json_t *svc;   /* the Service, a copy */
	json_t *nodes; /* the Nodes to balance to (stable node set), copies */
	char nsname[320];
	char lb[40];  /* "a" + the Service's UID without dashes, 32 characters at most */
	char cid[40]; /* cluster id (ConfigMap kube-system/ingress-uid) */
	char region[64];
	char network[512];    /* URL of the cluster's network */
	char subnetwork[512]; /* URL of the cluster's subnetwork */
	bool internal;        /* networking.gke.io/load-balancer-type: Internal */
	json_t *hosts;        /* instances of the nodes: [{name, zone, url, tags: []}] */
	json_t *status;       /* EnsureLoadBalancer: the LoadBalancerStatus */
	bool exists;          /* GET: the forwarding rule exists */
	json_t *rule;         /* the existing forwarding rule, if any */
	struct ccm_task *root;
	struct ccm_task *tasks; /* every task of the job, to end them all at once */
	void (*done)(struct ccm_job *j, bool ok, const char *err);
	char err[1024];
};

/* ---- tasks (ccm_call.c) ---- */
enum { CCM_WAIT = 0, CCM_DONE = 1 };
typedef int (*ccm_step_fn)(struct ccm_task *t);

struct ccm_reply {
	unsigned status; /* HTTP status, or the Operation's httpErrorStatusCode; 0: no answer */
	json_t *body;    /* the answer (the resource, or the Operation when it was one) */
	char err[768];   /* googleapi's message for an error ("googleapi: Error 404: ...") */
};

struct ccm_task {
	struct ccm_job *job;
	struct ccm_task *parent;
	ccm_step_fn fn;
	int step;
	unsigned children; /* running */
	bool failed;
	char err[1024];
	struct ccm_reply r; /* the last call's */
	struct ccm_call *call;
	long start_timer;
	struct ccm_task *next, **pprev; /* the job's tasks */
	void *loc;                      /* the step function's own state */
	void (*loc_free)(void *loc);
	size_t i; /* a loop counter for the step function */
};

/* Starts a job's root task (from the loop). */
int ccm_job_start(struct ccm_job *j, ccm_step_fn fn, void *loc, void (*loc_free)(void *));
/* Stops what runs (the calls in flight are ended) and frees the job. */
void ccm_job_free(struct ccm_job *j);
/*
 * A Compute call: method on a path under projects/PROJECT/ (fmt), with a body (stolen; NULL
 * for none). A mutation's Operation is waited on. The task resumes at step next with t->r.
 */
int ccm_call(struct ccm_task *t, int next, const char *method, json_t *body, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The same with a full path ("/compute/v1/..."; from a selfLink). */
int ccm_call_path(struct ccm_task *t, int next, const char *method, json_t *body, const char *path);
/* The task fails with this message (wrapped by its callers as the Go code wraps errors). */
int ccm_fail(struct ccm_task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fails with the last call's error, prefixed. */
int ccm_fail_call(struct ccm_task *t, const char *prefix);
/*
 * A child task (run from the loop); the parent returns CCM_WAIT with its step set and is
 * resumed once all its children are done, failed when one failed (errors joined).
 */
void ccm_spawn(struct ccm_task *t, ccm_step_fn fn, void *loc, void (*loc_free)(void *));
bool ccm_ok(const struct ccm_task *t);
bool ccm_is(const struct ccm_task *t, unsigned status);
/* googleapi "being used by" (isInUsedByError): 400 naming a user. */
bool ccm_in_use(const struct ccm_task *t);
/* Appends ?key=value (or &key=value) to the malloc'd *path, value percent-encoded. */
int ccm_add_query(char **path, const char *key, const char *value);
/* The path of a Compute URL, for ccm_call_path ("/compute/v1/projects/..."), or NULL. */
const char *ccm_url_path(const char *url);
/* The emulator's URL of a path under projects/PROJECT/ (caller frees). */
char *ccm_url(const struct ccm_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The controller's (ccm_services.c): its cluster, and the credentials its calls carry. */
struct emu_kube *ccm_kube(const struct ccm *c);
/* The access token from the metadata server, NULL when there is none or it is about to end. */
const char *ccm_token(const struct ccm *c);
void ccm_set_token(struct ccm *c, const char *token, uint64_t lifetime_ms);

/* ---- shared by the two schemes (ccm_external.c) ---- */
/* The instances of the job's nodes, found by name in the region's zones (getInstancesByNames). */
int ccm_find_hosts(struct ccm_task *t);
/* The instances' tags: the longest tag that prefixes each instance's name (computeHostTags). */
json_t *ccm_host_tags(const struct ccm_job *j, char *err, size_t errlen);
/* ["80", "8080-8081"]: the ports as ranges (getPortRanges), and the protocol. */
json_t *ccm_port_ranges(const json_t *svc, char *proto, size_t len);
/* spec.loadBalancerSourceRanges, its annotation, or 0.0.0.0/0 (GetLoadBalancerSourceRanges). */
json_t *ccm_source_ranges(const json_t *svc, char *err, size_t errlen);
/* externalTrafficPolicy Local with a health check node port: "/healthz" and the port. */
unsigned ccm_service_hc_port(const json_t *svc);
/* Google's L4 health checkers: 130.211.0.0/22, 35.191.0.0/16, 209.85.152.0/22, 209.85.204.0/22. */
json_t *ccm_l4_source_ranges(void);
/* {"kubernetes.io/service-name":"NS/NAME", "kubernetes.io/service-ip":"IP"} */
char *ccm_firewall_description(const struct ccm_job *j, const char *ip);
/* Two arrays of strings hold the same set (equalStringSets); NULL is the empty set. */
bool ccm_same_set(const json_t *a, const json_t *b);
/* A firewall rule allowing proto/ports from sources to the tagged nodes (destination ip). All
 * json_t arguments are stolen. */
json_t *ccm_firewall_body(const struct ccm_job *j, const char *name, const char *desc,
			  const char *ip, json_t *sources, const char *proto, json_t *ports,
			  json_t *tags);
/* Does the live firewall differ from the wanted one (firewallRuleEqual's fields)? */
bool ccm_firewall_differs(const json_t *live, const json_t *want, bool check_destination);
/* Removes the key from the Service's finalizers / adds it (a store write). 0 or -errno. */
int ccm_finalizer(struct ccm_job *j, const char *key, bool add);

/* ---- the provider's operations ---- */
int ccm_external_ensure(struct ccm_task *t);
int ccm_external_update(struct ccm_task *t);
int ccm_external_delete(struct ccm_task *t);
int ccm_internal_ensure(struct ccm_task *t);
int ccm_internal_update(struct ccm_task *t);
int ccm_internal_delete(struct ccm_task *t);

#endif
