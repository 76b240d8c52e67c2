/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the doctor's engine (doctor.c), its checks (check_*.c) and its output. */
#ifndef TALOS_GCP_DOCTOR_INTERNAL_H
#define TALOS_GCP_DOCTOR_INTERNAL_H

#include "common/cidr.h"
#include "doctor/doctor.h"

/* What a kept document is; the checks of the whole set run over these at the end. */
enum kept_kind {
	K_TALOS,            /* node: the machine config (or patch) root */
	K_CILIUM_VALUES,    /* node: the values mapping */
	K_CILIUM_CONFIGMAP, /* node: the ConfigMap's data */
	K_CILIUM_AGENT,     /* node: the cilium-agent container (env KUBERNETES_SERVICE_*) */
	K_CCM,              /* node: container; pod: pod spec; obj: the object */
	K_KCM,              /* node: container */
	K_VIP_ALIAS,        /* node: container; pod: pod spec; obj: the object */
	K_NODE,             /* obj: the Node */
	K_POD,              /* obj: a Pod of vip-alias */
	K_SERVICE_LB,       /* node: spec.loadBalancerIP */
	K_SERVICE,          /* obj: a Service of type LoadBalancer or NodePort */
	K_LB_EVENT, /* obj: an Event of the CCM's service controller (SyncLoadBalancerFailed) */
	K_GCE_FIREWALL,
	K_GCE_INSTANCE_GROUP,
	K_GCE_FORWARDING_RULE,
	K_GCE_BACKEND_SERVICE,
	K_GCE_HEALTH_CHECK,
	K_GCE_SUBNETWORK,
	K_GCE_NETWORK,
	K_GCE_INSTANCE,
	K_GCE_ADDRESS,
	K_IFACE_ADDR, /* an address put on an interface (Talos config, shell command, vip-alias) */
};

struct kept {
	enum kept_kind kind;
	uint32_t source;
	const struct ynode *node;
	const struct ynode *pod;
	const struct ynode *obj;
	/* K_IFACE_ADDR */
	struct cidr addr;
	char iface[32];
	bool dummy; /* Talos: the interface is a dummy one */
};

struct doctor {
	struct doctor_options opt;
	const struct yaml_limits *limits;
	struct doctor_source *sources;
	size_t n_sources, cap_sources;
	struct finding *findings;
	size_t n_findings, cap_findings;
	struct doctor_problem *problems;
	size_t n_problems, cap_problems;
	struct kept *kept;
	size_t n_kept, cap_kept;
	struct ystream **streams; /* streams holding kept documents */
	size_t n_streams, cap_streams;
	struct doctor_stats stats;
	bool addresses_complete, pods_complete, firewalls_complete, workloads_complete;
	bool workloads_seen; /* a Kubernetes workload is among the inputs */
	bool finished;
	bool oom;
	/* The raw text of the buffer being loaded (to place embedded manifests), or NULL. */
	const char *cur_buf;
	size_t cur_len;
};

/* Records a finding (unless the rule is disabled). Returns 0 or -ENOMEM. */
int report(struct doctor *d, enum rule_id rule, uint32_t source, const struct ynode *at,
	   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Keeps a document for the checks of the whole set. Returns a pointer to fill in, or NULL. */
struct kept *keep(struct doctor *d, enum kept_kind kind, uint32_t source, const struct ynode *node);

/* Records a document that no rule reads, with the reason (shown with -v, in JSON and SARIF). */
int doctor_skip_document(struct doctor *d, uint32_t source, const struct ynode *at,
			 const char *reason);
/* Keeps s alive when documents were kept from it since kept_before, frees it otherwise. */
int doctor_settle_stream(struct doctor *d, struct ystream *s, size_t kept_before);
/* Records an input that could not be checked (error) at a place in a source. */
int doctor_problem_at(struct doctor *d, uint32_t source, const struct ynode *at, bool error,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* check_objects.c: one document (depth: nesting through Lists and embedded manifests). */
int check_document(struct doctor *d, struct ystream *s, uint32_t source, const struct ynode *root,
		   unsigned depth);
/* Parses YAML embedded in a string (Talos inlineManifests, MetalLB's legacy config, HelmChart
 * valuesContent) and checks what it holds; the documents stay alive with the outer stream. */
int check_embedded(struct doctor *d, struct ystream *s, uint32_t source, const struct ynode *text,
		   unsigned depth, bool as_cilium_values);

/* check_set.c */
int check_set(struct doctor *d);
/* check_services.c: the rules about Services and their load balancers (part of check_set). */
int check_services(struct doctor *d);

/* Helpers shared by the checks. */
bool seq_has_scalar(const struct ynode *seq, const char *s);
/* Command-line flag value in a list of args (--name=value, --name value, or --name alone: "true").
 * Returns the scalar node holding it (value_out points into it) or NULL. */
const struct ynode *args_flag(const struct ynode *args, const char *name, const char **value_out,
			      size_t *len_out);
bool addr_is_public(const struct cidr *c);
/* args_flag over a container's args, then its command. */
const struct ynode *container_flag(const struct ynode *c, const char *name, const char **v,
				   size_t *len);
/* The value of an environment variable of a container (value only, not valueFrom), or NULL. */
const struct ynode *env_value(const struct ynode *container, const char *name);

#endif
