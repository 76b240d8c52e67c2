/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The doctor's rules: stable ids (never renamed, never reused), a severity, the section of
 * the design note (../shared/spec/networking-gcp-talos.md, "note §N") or of DESIGN.md §3
 * ("design §3") that the rule comes from, and the rationale `--explain` prints.
 *
 * Severity: anything that makes traffic fail (or the cluster never come up) is an error; a
 * configuration that works but is fragile, pointless on GCP or unsafe is a warning.
 */
#ifndef TALOS_GCP_DOCTOR_RULES_H
#define TALOS_GCP_DOCTOR_RULES_H

#include <stdbool.h>
#include <stddef.h>

enum severity { SEV_NOTE = 0, SEV_WARNING, SEV_ERROR };

enum rule_id {
	R_L2_CILIUM_POLICY,
	R_L2_CILIUM_VALUES,
	R_L2_METALLB,
	R_L2_KUBE_VIP_ARP,
	R_L2_TALOS_VIP,
	R_LB_PUBLIC_POOL,
	R_LB_IP_NOT_RESERVED,
	R_VIP_ON_LO,
	R_VIP_ON_PRIMARY,
	R_VIP_KUBELET_NODEIP,
	R_VIP_ETCD_ADVERTISED,
	R_VIP_CERTSANS,
	R_KCM_ALLOCATES,
	R_CCM_ALLOCATOR,
	R_CCM_CLOUD_ROUTES,
	R_CLUSTER_CIDR_MISMATCH,
	R_CCM_SCHEDULING,
	R_TALOS_EXTERNAL_CLOUD,
	R_NODE_NO_ALIAS,
	R_CP_HEALTH_CHECK,
	R_CP_FORWARDING_RULE,
	R_KUBEPRISM_DISABLED,
	R_CILIUM_API_VIA_VIP,
	R_CILIUM_API_UNSET,
	R_CILIUM_IPAM_MODE,
	R_CILIUM_ROUTING_MODE,
	R_CILIUM_NATIVE_CIDR,
	R_CILIUM_TALOS_COMPAT,
	R_TALOS_CNI,
	R_TALOS_KUBE_PROXY,
	R_TALOS_RP_FILTER,
	R_MTU_TOO_LARGE,
	R_VIP_ALIAS_MISSING,
	R_VIP_ALIAS_PRIVILEGED,
	R_VIP_ALIAS_PLACEMENT,
	R_LB_PENDING,
	R_LB_WITHOUT_CCM,
	R_INGRESS_HC_PORT,
	R_LB_FIREWALL_MISSING,
	R__COUNT
};

enum rule_scope {
	SCOPE_FILE = 1 << 0, /* checked in files (-f) */
	SCOPE_LIVE = 1 << 1, /* checked against a live cluster (--live) */
};

struct rule {
	const char *id;
	enum severity severity;
	unsigned scope;
	const char *section;   /* "note §1", "design §3" */
	const char *title;     /* one line */
	const char *rationale; /* paragraphs for --explain: what happens, why, how to fix */
};

extern const struct rule rules[R__COUNT];

const struct rule *rule_find(const char *id);
const char *severity_name(enum severity s);
/* "error", "warning", "note". 0 or -EINVAL. */
int severity_parse(const char *s, enum severity *out);

#endif
