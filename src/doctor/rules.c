/* SPDX-License-Identifier: Apache-2.0 */
#include "doctor/rules.h"

#include <errno.h>
#include <string.h>

#define F SCOPE_FILE
#define L SCOPE_LIVE

/* clang-format off: one rule per block, its text as written */
const struct rule rules[R__COUNT] = {
    [R_L2_CILIUM_POLICY] =
	{"l2-cilium-policy", SEV_ERROR, F | L, "note §1", "CiliumL2AnnouncementPolicy on GCP",
	 "A CiliumL2AnnouncementPolicy makes Cilium answer ARP for LoadBalancer addresses. A GCP "
	 "VPC is a layer-3 network: it ignores ARP and delivers a packet to an instance only when "
	 "a forwarding rule, route or alias IP maps the address to it. The policy is accepted, "
	 "the Service shows its address, and no traffic ever arrives.\n"
	 "Fix: delete the policy; expose the Service as type LoadBalancer through the GCP cloud "
	 "controller manager (a forwarding rule), or as a NodePort behind a managed load "
	 "balancer (note §2, §3)."},
    [R_L2_CILIUM_VALUES] =
	{"l2-cilium-values", SEV_WARNING, F | L, "note §1", "Cilium L2 announcements enabled",
	 "Cilium's Helm value l2announcements.enabled (cilium-config enable-l2-announcements) "
	 "turns on the ARP responder that CiliumL2AnnouncementPolicy objects use. On GCP it can "
	 "never attract traffic (the VPC answers no ARP), so it only adds leases and API load and "
	 "invites someone to write a policy.\n"
	 "Fix: set l2announcements.enabled: false (or remove it)."},
    [R_L2_METALLB] =
	{"l2-metallb", SEV_ERROR, F | L, "note §1", "MetalLB layer-2 mode on GCP",
	 "MetalLB's L2Advertisement (or a legacy address pool with protocol: layer2) announces "
	 "Service addresses with ARP/NDP. The GCP VPC ignores these announcements; the Service "
	 "gets an address that nothing routes to it.\n"
	 "Fix: remove the L2Advertisement; use type LoadBalancer through the GCP CCM, which "
	 "creates a forwarding rule (note §2)."},
    [R_L2_KUBE_VIP_ARP] =
	{"l2-kube-vip-arp", SEV_ERROR, F | L, "note §1", "kube-vip in ARP mode on GCP",
	 "kube-vip with vip_arp=true claims its address with gratuitous ARP. GCP delivers packets "
	 "for an address only to the instance an API resource maps it to (forwarding rule, route, "
	 "alias IP), never to whoever answers ARP: the address is unreachable from other "
	 "instances.\n"
	 "Fix: use the internal TCP load balancer for the control-plane VIP with the vip-alias "
	 "agent (note §4), and the GCP CCM for Services (note §2)."},
    [R_L2_TALOS_VIP] =
	{"l2-talos-vip", SEV_ERROR, F, "note §1",
	 "Talos shared VIP (machine.network.interfaces[].vip) on GCP",
	 "Talos' built-in shared VIP moves an address between control-plane nodes and announces "
	 "it with gratuitous ARP. On GCP the VPC ignores ARP, so the address only works on the "
	 "node that holds it.\n"
	 "Fix: remove the vip block; put the VIP on an internal TCP load balancer (forwarding "
	 "rule) and run vip-alias on control-plane nodes (note §4)."},
    [R_LB_PUBLIC_POOL] =
	{"lb-public-pool", SEV_ERROR, F | L, "note §1, §2",
	 "LoadBalancer IP pool with public addresses",
	 "A Cilium LB-IPAM pool (CiliumLoadBalancerIPPool) or a MetalLB IPAddressPool hands out "
	 "public addresses to Services, but on GCP a public address reaches the cluster only "
	 "through a forwarding rule that the GCP CCM creates for an address reserved in the "
	 "project. Addresses from the pool are shown on the Service and never receive traffic.\n"
	 "Fix: remove the pool (or limit it to private ranges you route yourself); let the GCP "
	 "CCM allocate LoadBalancer addresses, with spec.loadBalancerIP naming a reserved "
	 "regional address when it must be fixed."},
    [R_LB_IP_NOT_RESERVED] =
	{"lb-ip-not-reserved", SEV_ERROR, F | L, "note §2",
	 "Service loadBalancerIP is not a reserved address in the region",
	 "The GCP CCM creates the forwarding rule of a LoadBalancer Service at spec.loadBalancerIP "
	 "only when that address is reserved in the project and region (or is ephemeral and "
	 "free). Otherwise it keeps failing to sync the Service, which stays <pending>.\n"
	 "Fix: reserve it (gcloud compute addresses create NAME --region REGION --addresses IP), "
	 "or remove spec.loadBalancerIP to get an ephemeral address."},
    [R_VIP_ON_LO] =
	{"vip-on-lo", SEV_ERROR, F | L, "note §4", "VIP on the loopback interface",
	 "An address on lo is a candidate node address: the kubelet or the cloud controller "
	 "manager may register the VIP as the Node's address, which belongs to a forwarding rule, "
	 "not to the instance, and GCP validation of the node fails.\n"
	 "Fix: put the VIP on dummy0 (run vip-alias with --interface dummy0), never on lo."},
    [R_VIP_ON_PRIMARY] =
	{"vip-on-primary-interface", SEV_ERROR, F | L, "note §4",
	 "VIP as an address on the primary interface",
	 "An extra address on the primary interface (eth0, ens4) is taken for a node address just "
	 "as on lo, and the instance may answer for it on the wire where the forwarding rule, not "
	 "the instance, owns it.\n"
	 "Fix: put the VIP on dummy0 (vip-alias --mode address --interface dummy0); the guest "
	 "agent's alternative is a local route (vip-alias --mode local-route), not an address."},
    [R_VIP_KUBELET_NODEIP] =
	{"vip-kubelet-nodeip", SEV_ERROR, F, "note §4, design §3",
	 "VIP not excluded from machine.kubelet.nodeIP.validSubnets",
	 "On control-plane nodes the VIP is a local address (dummy0). Unless the kubelet's "
	 "node-IP selection excludes it, the kubelet may register the VIP as the Node's "
	 "InternalIP: the CCM then fails to match the node, and traffic to that node goes to the "
	 "load balancer instead.\n"
	 "Fix: machine.kubelet.nodeIP.validSubnets: [<node subnet>, \"!<VIP>/32\"]."},
    [R_VIP_ETCD_ADVERTISED] =
	{"vip-etcd-advertised", SEV_ERROR, F, "note §4, design §3",
	 "VIP not excluded from cluster.etcd.advertisedSubnets",
	 "etcd advertises a peer address picked from the node's addresses. If it picks the VIP, "
	 "the other members dial the load balancer instead of that member, and peer traffic lands "
	 "on whichever node the balancer chooses: the cluster loses quorum.\n"
	 "Fix: cluster.etcd.advertisedSubnets: [<node subnet>, \"!<VIP>/32\"]."},
    [R_VIP_CERTSANS] =
	{"vip-certsans", SEV_ERROR, F, "note §4", "VIP missing from cluster.apiServer.certSANs",
	 "Clients that reach the API server through the VIP (workers, kubectl, talosctl) verify "
	 "the server certificate against the VIP. Without it in the certificate's SANs every TLS "
	 "handshake through the load balancer fails.\n"
	 "Fix: add the VIP to cluster.apiServer.certSANs (or use it as "
	 "cluster.controlPlane.endpoint, which Talos adds)."},
    [R_KCM_ALLOCATES] =
	{"kcm-allocates-node-cidrs", SEV_ERROR, F | L, "note §5",
	 "kube-controller-manager allocates node CIDRs",
	 "With --allocate-node-cidrs=true (Talos' default for kube-controller-manager) the KCM "
	 "gives each Node a podCIDR of its own choosing while the GCP CCM assigns the alias IP "
	 "range: the two disagree, spec.podCIDR is immutable once set, and the VPC drops pod "
	 "traffic (split-brain, note §5).\n"
	 "Fix: cluster.controllerManager.extraArgs: {allocate-node-cidrs: \"false\"} in the Talos "
	 "control-plane config, and let the CCM (CloudAllocator) be the single source of truth."},
    [R_CCM_ALLOCATOR] =
	{"ccm-cidr-allocator", SEV_ERROR, F | L, "note §5, design §3",
	 "GCP CCM not allocating node CIDRs with the CloudAllocator",
	 "The single source of truth for a node's podCIDR is its alias IP range: the GCP CCM must "
	 "run with --allocate-node-cidrs=true --cidr-allocator-type=CloudAllocator, which copies "
	 "nic0's aliasIpRanges[0] into spec.podCIDR. Its default RangeAllocator picks a CIDR of "
	 "its own (the split-brain of note §5); with allocation off, Nodes never get a podCIDR "
	 "and Cilium (ipam.mode: kubernetes) never starts pods.\n"
	 "Fix: --allocate-node-cidrs=true --cidr-allocator-type=CloudAllocator "
	 "--cluster-cidr=<pods range> on the cloud-controller-manager."},
    [R_CCM_CLOUD_ROUTES] =
	{"ccm-cloud-routes", SEV_ERROR, F | L, "note §5, design §3",
	 "GCP CCM configures cloud routes together with alias IPs",
	 "--configure-cloud-routes defaults to true: the CCM's route controller then creates a "
	 "VPC route per node for its podCIDR. With alias IP ranges the VPC already routes those "
	 "ranges, and GCP refuses routes inside a subnet's secondary range, so the controller "
	 "fails forever and keeps Nodes' NetworkUnavailable condition flapping.\n"
	 "Fix: --configure-cloud-routes=false on the cloud-controller-manager."},
    [R_CLUSTER_CIDR_MISMATCH] =
	{"cluster-cidr-mismatch", SEV_ERROR, F | L, "note §5, design §3",
	 "Pod CIDR differs between the subnet's pods range, the CCM, Talos and Cilium",
	 "The pods secondary range of the subnet, the CCM's --cluster-cidr, Talos' "
	 "cluster.network.podSubnets and Cilium's ipv4NativeRoutingCIDR must be the same range: "
	 "the CloudAllocator refuses alias ranges outside --cluster-cidr, and Cilium masquerades "
	 "(or misroutes) pod traffic to addresses outside ipv4NativeRoutingCIDR.\n"
	 "Fix: use the subnet's pods range everywhere (talos-gcp render does)."},
    [R_CCM_SCHEDULING] =
	{"ccm-scheduling", SEV_ERROR, F | L, "note §5, design §3",
	 "GCP CCM cannot be scheduled before the network is up",
	 "With an external cloud provider every Node carries the "
	 "node.cloudprovider.kubernetes.io/uninitialized taint until the CCM has initialized "
	 "it, and the pod network (Cilium, ipam kubernetes) waits for the podCIDR that the CCM "
	 "assigns. A CCM that does not tolerate the taint, or that needs the pod network (no "
	 "hostNetwork), never starts, and neither does anything else.\n"
	 "Fix: hostNetwork: true, and tolerations for node.cloudprovider.kubernetes.io/"
	 "uninitialized, node.kubernetes.io/network-unavailable and the control-plane taint."},
    [R_TALOS_EXTERNAL_CLOUD] =
	{"talos-external-cloud-provider", SEV_ERROR, F, "note §2, §5",
	 "Talos without cluster.externalCloudProvider.enabled",
	 "Without the external cloud provider the kubelet neither waits for nor accepts the "
	 "CCM: Nodes get no providerID (gce://project/zone/instance), so the CloudAllocator cannot "
	 "find their instance and LoadBalancer Services get no backends.\n"
	 "Fix: cluster.externalCloudProvider.enabled: true on every node."},
    [R_NODE_NO_ALIAS] =
	{"node-no-alias", SEV_ERROR, F | L, "note §5, design §3",
	 "Node's instance has no alias IP range",
	 "The CloudAllocator copies nic0's aliasIpRanges[0] into spec.podCIDR. An instance "
	 "without one gets no podCIDR (CIDRNotAvailable events), and its pods cannot be reached "
	 "through the VPC.\n"
	 "Fix: gcloud compute instances network-interfaces update NODE --zone ZONE "
	 "--aliases \"pods:/24\"."},
    [R_CP_HEALTH_CHECK] =
	{"cp-health-check-port", SEV_ERROR, F | L, "note §4, design §3",
	 "Control-plane health check not on 6443",
	 "The internal load balancer sends API traffic (6443) only to backends its health check "
	 "finds healthy. A check on another port (Talos apid on 50000, say) keeps a node in "
	 "rotation while its API server is down: requests through the VIP time out.\n"
	 "Fix: an HTTPS health check on port 6443, request path /readyz."},
    [R_CP_FORWARDING_RULE] =
	{"cp-forwarding-rule-vip", SEV_ERROR, F | L, "note §4, design §3",
	 "Control-plane forwarding rule not on the VIP",
	 "The cluster endpoint is https://<VIP>:6443. If the internal forwarding rule for 6443 "
	 "listens on another address, nothing answers at the VIP (except each control-plane "
	 "node's own dummy0): workers cannot join and clients time out.\n"
	 "Fix: recreate the forwarding rule at the reserved internal address of the VIP."},
    [R_KUBEPRISM_DISABLED] =
	{"kubeprism-disabled", SEV_ERROR, F, "note §4, design §3",
	 "KubePrism disabled (or on another port) while Cilium uses localhost:7445",
	 "Cilium reaches the API server through KubePrism (k8sServiceHost: localhost, "
	 "k8sServicePort: 7445) because with kube-proxy replaced nothing else works before Cilium "
	 "runs. Without KubePrism on that port the agents cannot start and no pod gets a network.\n"
	 "Fix: machine.features.kubePrism: {enabled: true, port: 7445} on every node."},
    [R_CILIUM_API_VIA_VIP] =
	{"cilium-api-via-vip", SEV_ERROR, F | L, "note §4",
	 "Cilium reaches the API server through the VIP",
	 "A control-plane node is a backend of the internal load balancer: traffic it sends to "
	 "the VIP is answered by itself (hairpin), so while its own API server is down or before "
	 "vip-alias has put the VIP on dummy0, Cilium on that node cannot reach any API server.\n"
	 "Fix: k8sServiceHost: localhost, k8sServicePort: 7445 (KubePrism), which balances across "
	 "all API servers from every node."},
    [R_CILIUM_API_UNSET] =
	{"cilium-api-unset", SEV_ERROR, F, "design §3",
	 "Cilium replaces kube-proxy but has no k8sServiceHost",
	 "With kubeProxyReplacement the kubernetes Service's ClusterIP works only once Cilium "
	 "runs; an agent that must reach the API server through it never starts.\n"
	 "Fix: k8sServiceHost: localhost, k8sServicePort: 7445 (KubePrism)."},
    [R_CILIUM_IPAM_MODE] =
	{"cilium-ipam-mode", SEV_ERROR, F | L, "note §5, design §3",
	 "Cilium IPAM is not in kubernetes mode",
	 "Pod addresses must come from the node's podCIDR, which is its alias IP range: only those "
	 "are routed by the VPC. Cilium's default cluster-pool (and multi-pool) IPAM hands out "
	 "addresses from its own pool, which the VPC drops.\n"
	 "Fix: ipam.mode: kubernetes."},
    [R_CILIUM_ROUTING_MODE] =
	{"cilium-routing-mode", SEV_WARNING, F | L, "design §3", "Cilium in tunnel mode",
	 "With alias IP ranges the VPC routes pod addresses natively; VXLAN or Geneve tunnelling "
	 "(Cilium's default) works but costs 50 bytes of MTU and CPU per packet, and hides pod "
	 "addresses from VPC firewall rules and flow logs.\n"
	 "Fix: routingMode: native, ipv4NativeRoutingCIDR: <pods range>."},
    [R_CILIUM_NATIVE_CIDR] =
	{"cilium-native-cidr", SEV_ERROR, F | L, "design §3",
	 "Cilium native routing without ipv4NativeRoutingCIDR",
	 "In native routing mode Cilium must know which destinations are routed without "
	 "masquerading; without ipv4NativeRoutingCIDR (and with masquerading on, the default) the "
	 "agent refuses to start.\n"
	 "Fix: ipv4NativeRoutingCIDR: <pods range>."},
    [R_CILIUM_TALOS_COMPAT] =
	{"cilium-talos-compat", SEV_ERROR, F, "design §3", "Cilium values not adapted to Talos",
	 "Talos mounts cgroup v2 itself and forbids CAP_SYS_MODULE to every process. Cilium's "
	 "defaults try to mount cgroup2 (cgroup.autoMount.enabled) and ask for SYS_MODULE: its "
	 "pods fail to start (\"unable to apply caps: operation not permitted\").\n"
	 "Fix: cgroup.autoMount.enabled: false, cgroup.hostRoot: /sys/fs/cgroup, and "
	 "securityContext.capabilities.ciliumAgent / cleanCiliumState without SYS_MODULE."},
    [R_TALOS_CNI] =
	{"talos-cni", SEV_ERROR, F, "design §3", "Talos installs its own CNI next to Cilium",
	 "Talos deploys flannel unless cluster.network.cni.name is none. Two CNIs on a node fight "
	 "over pod interfaces and routes; flannel's VXLAN overlay also ignores the alias ranges.\n"
	 "Fix: cluster.network.cni.name: none, and install Cilium."},
    [R_TALOS_KUBE_PROXY] =
	{"talos-kube-proxy", SEV_WARNING, F, "design §3",
	 "kube-proxy runs although Cilium replaces it",
	 "With kubeProxyReplacement: true Cilium implements Services in eBPF; a kube-proxy that "
	 "still runs programs iptables rules for the same Services, which wastes resources and "
	 "confuses debugging.\n"
	 "Fix: cluster.proxy.disabled: true."},
    [R_TALOS_RP_FILTER] =
	{"talos-rp-filter", SEV_WARNING, F, "design §3",
	 "Strict reverse-path filtering with Cilium native routing",
	 "net.ipv4.conf.*.rp_filter=1 drops packets whose source is not routed back through the "
	 "interface they came in on; with native routing, replies and forwarded pod traffic can "
	 "arrive on an interface other than the route back, and are dropped silently.\n"
	 "Fix: machine.sysctls net.ipv4.conf.all.rp_filter and net.ipv4.conf.default.rp_filter "
	 "set to \"0\" (or \"2\", loose)."},
    [R_MTU_TOO_LARGE] =
	{"mtu-too-large", SEV_ERROR, F | L, "design §3", "MTU above what the VPC carries",
	 "A GCP VPC carries 1460-byte packets by default (the network's mtu). Larger packets "
	 "are dropped, so small requests work and large transfers hang. VXLAN/Geneve tunnelling "
	 "needs 50 more bytes: 1410 with the default VPC MTU.\n"
	 "Fix: MTU 1460 (native routing) or 1410 (tunnel), or raise the VPC network's MTU."},
    [R_VIP_ALIAS_MISSING] =
	{"vip-alias-missing", SEV_ERROR, F | L, "note §4",
	 "vip-alias not running on a control-plane node",
	 "Control-plane nodes are backends of the internal load balancer; without the VIP local "
	 "(vip-alias puts it on dummy0) their own traffic to the VIP hairpins and times out, and "
	 "load-balanced traffic for the VIP that GCP delivers to them is dropped.\n"
	 "Fix: deploy the vip-alias DaemonSet (talos-gcp render) and check that its pod runs on "
	 "every control-plane node."},
    [R_VIP_ALIAS_PRIVILEGED] =
	{"vip-alias-privileged", SEV_WARNING, F | L, "note §4", "vip-alias runs privileged",
	 "vip-alias needs CAP_NET_ADMIN and nothing else. A privileged container (or one with "
	 "more capabilities) can do anything to the node if compromised.\n"
	 "Fix: privileged: false, allowPrivilegeEscalation: false, capabilities: {add: "
	 "[NET_ADMIN], drop: [ALL]}."},
    [R_VIP_ALIAS_PLACEMENT] =
	{"vip-alias-placement", SEV_ERROR, F | L, "note §4", "vip-alias placed on the wrong nodes",
	 "vip-alias must run on every control-plane node and only there: without a toleration of "
	 "the control-plane taint it runs on none of them; without a control-plane node selector "
	 "it also runs on workers, where a local VIP captures the worker's own API traffic "
	 "(nothing listens there) and the node cannot reach the API server.\n"
	 "Fix: nodeSelector node-role.kubernetes.io/control-plane: \"\" and a toleration for "
	 "node-role.kubernetes.io/control-plane:NoSchedule."},
    [R_LB_PENDING] =
	{"lb-pending", SEV_ERROR, F | L, "note §2, design §3",
	 "LoadBalancer Service pending: the CCM keeps failing",
	 "A LoadBalancer Service has had no EXTERNAL-IP for longer than --pending-after (5m): the "
	 "GCP CCM's service controller could not build its load balancer. Its last "
	 "SyncLoadBalancerFailed event says why; the classic is a loadBalancerIP that is not "
	 "reserved in the region (or reserved in the other network tier), then nodes whose "
	 "instances have no tag that prefixes their names (the firewall has no target), or "
	 "quota.\n"
	 "Fix: what the event names (kubectl describe service NAME shows it); the CCM retries "
	 "with backoff once it is fixed."},
    [R_LB_WITHOUT_CCM] =
	{"lb-ip-without-ccm", SEV_ERROR, F | L, "note §2",
	 "Service loadBalancerIP but no cloud controller manager",
	 "spec.loadBalancerIP asks the GCP CCM for a forwarding rule at that address, but no "
	 "cloud-controller-manager runs in the cluster (or is among the files): nothing creates "
	 "the load balancer and the Service stays <pending> forever.\n"
	 "Fix: deploy the GCP CCM (talos-gcp render writes ccm.yaml; the Talos config needs "
	 "cluster.externalCloudProvider), or expose the Service as a NodePort behind the "
	 "ingress load balancer (note §3, talos-gcp expose)."},
    [R_INGRESS_HC_PORT] =
	{"ingress-health-check-port", SEV_ERROR, F | L, "note §3",
	 "ingress health check does not probe the Service's node port",
	 "The ingress load balancer sends traffic to the instance groups' named port (the "
	 "backend service's portName), the node port of the Service behind it, but its health "
	 "check probes another port: the backends are healthy while the Service does not answer, "
	 "or unhealthy (and get no traffic) while it does. This is the note's manual step done "
	 "halfway.\n"
	 "Fix: talos-gcp expose --service NS/NAME -f cluster.yaml (with --watch it keeps them "
	 "together), or set the health check's port to the node port."},
    [R_LB_FIREWALL_MISSING] =
	{"lb-firewall-missing", SEV_ERROR, F | L, "note §2",
	 "no firewall rule lets a LoadBalancer Service's port reach the nodes",
	 "A passthrough load balancer delivers clients' packets to the nodes unchanged, so a VPC "
	 "firewall rule must allow the Service's port (and protocol) to the nodes' instances. "
	 "The CCM creates k8s-fw-<lb> for it; when that rule is deleted, disabled, or targets "
	 "tags the nodes do not carry, the Service has an EXTERNAL-IP and every connection to "
	 "it times out.\n"
	 "Fix: let the CCM recreate it (edit the Service, or restart the CCM), or add an "
	 "ingress rule for the port to the nodes' tag."},
};
/* clang-format on */

const struct rule *rule_find(const char *id)
{
	for (size_t i = 0; i < R__COUNT; i++)
		if (!strcmp(rules[i].id, id))
			return &rules[i];
	return NULL;
}

static const char *const sev_names[] = {"note", "warning", "error"};

const char *severity_name(enum severity s)
{
	return (unsigned)s < 3 ? sev_names[s] : "?";
}

int severity_parse(const char *s, enum severity *out)
{
	for (unsigned i = 0; i < 3; i++) {
		if (!strcmp(s, sev_names[i])) {
			*out = (enum severity)i;
			return 0;
		}
	}
	return -EINVAL;
}
