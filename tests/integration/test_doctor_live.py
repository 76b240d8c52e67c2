"""talos-gcp doctor --live against talos-gcp-emu, and kubectl against the rendered objects.

The cluster-level rules read state through the APIs: the CCM Deployment and KCM static Pods
the emulated cluster shows, Nodes and their instances, the control-plane load balancer,
reserved addresses, vip-alias Pods. Every scenario is built through the real APIs.
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from cluster import REGION, Cluster, Emu, talos_gcp

KUBECTLS = [k for k in (shutil.which("kubectl"),
                        "/usr/lib/google-cloud-sdk/bin/kubectl.1.27",
                        "/usr/lib/google-cloud-sdk/bin/kubectl.1.33") if k and os.access(k, os.X_OK)]


def has_provider_id(node):
    return bool(node.get("spec", {}).get("providerID"))


class Live(unittest.TestCase):
    ccm = "cloud"

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name
        self.emu = Emu(self.tmp, ccm=self.ccm).start()
        self.c = Cluster(self.emu).network()

    def tearDown(self):
        try:
            self.emu.stop()
        finally:
            self._tmp.cleanup()

    def nodes(self, cp_alias="/24", worker_alias="/24"):
        self.c.instance("talos-cp-0", alias=cp_alias)
        self.c.instance("talos-worker-0", alias=worker_alias)
        for n in ("talos-cp-0", "talos-worker-0"):
            self.c.wait_node(n, pred=has_provider_id)

    def doctor(self, *args):
        rc, out, err = talos_gcp(self.emu, "doctor", "--live", "-o", "json", *args)
        self.assertIn(rc, (0, 1), out + err)
        doc = json.loads(out)
        self.assertEqual([p for p in doc["problems"] if p["error"]], [], err)
        return rc, doc

    def found(self, doc):
        return {(f["rule"], f["file"]) for f in doc["findings"]}

    def kube(self, method, path, body=None):
        ok = (200, 201) if method == "POST" else (200,)
        return self.c.kube.call(method, path, body, ok=ok)[1]

    def compute(self, collection, body):
        return self.c.compute.insert(f"regions/{REGION}/{collection}", body)

    def vip_alias_pod(self, node):
        self.kube("POST", "api/v1/namespaces/kube-system/pods", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"vip-alias-{node}", "namespace": "kube-system",
                         "labels": {"app.kubernetes.io/name": "vip-alias"}},
            "spec": {"nodeName": node, "hostNetwork": True, "containers": [
                {"name": "vip-alias", "image": "ghcr.io/talos-gcp/vip-alias:0.1.0",
                 "securityContext": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}}]}})
        # Nothing runs containers here: report it Running, as its kubelet would.
        self.c.kube.call("PATCH", f"api/v1/namespaces/kube-system/pods/vip-alias-{node}/status",
                         {"status": {"phase": "Running"}},
                         content_type="application/merge-patch+json")

    def reserve_vip(self, ip="10.0.0.2"):
        """The VIP is reserved before the nodes exist, or the first of them gets it (as on
        GCP: reserving takes it out of the pool, not away from an instance)."""
        self.compute("addresses", {"name": "talos-vip", "addressType": "INTERNAL", "address": ip,
                                   "subnetwork": self.c.subnet})
        self.vip_reserved = True

    def control_plane_lb(self, ip="10.0.0.2", hc_port=6443):
        base = f"projects/{self.emu.project}/regions/{REGION}"
        self.compute("healthChecks", {"name": "talos-cp", "type": "HTTPS", "httpsHealthCheck": {
            "port": hc_port, "requestPath": "/readyz"}})
        self.compute("backendServices", {"name": "talos-cp", "loadBalancingScheme": "INTERNAL",
                                         "protocol": "TCP", "healthChecks": [f"{base}/healthChecks/talos-cp"]})
        if not getattr(self, "vip_reserved", False):
            self.reserve_vip(ip)
        self.compute("forwardingRules", {
            "name": "talos-cp", "IPAddress": ip, "IPProtocol": "TCP", "loadBalancingScheme": "INTERNAL",
            "ports": ["6443", "50000"], "backendService": f"{base}/backendServices/talos-cp",
            "subnetwork": self.c.subnet})


class Rendered(Live):
    def setUp(self):
        super().setUp()
        rc, _, err = talos_gcp(self.emu, "render", "--project", self.emu.project,
                               "--vip-alias-image", "vip-alias:0.1.0",
                               "--out", os.path.join(self.tmp, "r"))
        self.assertEqual(rc, 0, err)
        self.files = [os.path.join(self.tmp, "r", f) for f in ("ccm.yaml", "vip-alias.yaml")]

    def kubectl(self, kubectl, *args):
        p = subprocess.run([kubectl, "--kubeconfig", self.emu.kubeconfig, *args],
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def test_kubectl_accepts_every_rendered_object(self):
        if not KUBECTLS:
            self.skipTest("kubectl not installed")
        for kubectl in KUBECTLS:
            for f in self.files:
                with self.subTest(kubectl=os.path.basename(kubectl), file=os.path.basename(f)):
                    rc, out, err = self.kubectl(kubectl, "apply", "--dry-run=client", "-f", f)
                    self.assertEqual(rc, 0, err)
                    with open(f) as fh:
                        objects = fh.read().count("\nkind: ")
                    self.assertEqual(out.count("(dry run)"), objects, out)

    def test_applied_objects_are_read_back_clean(self):
        if not KUBECTLS:
            self.skipTest("kubectl not installed")
        self.reserve_vip()
        self.nodes()
        for f in self.files:
            rc, out, err = self.kubectl(KUBECTLS[0], "apply", "-f", f)
            self.assertEqual(rc, 0, err)
        self.vip_alias_pod("talos-cp-0")
        self.control_plane_lb()
        rc, doc = self.doctor()
        self.assertEqual((rc, doc["findings"]), (0, []))
        self.assertGreaterEqual(doc["summary"]["documents"], 8)


class SplitBrain(Live):
    ccm = "range"

    def test_ccm_range_allocator_is_found(self):
        self.nodes()
        rc, doc = self.doctor()
        self.assertEqual(rc, 1)
        self.assertIn(("ccm-cidr-allocator",
                       "kube:kube-system/Deployment/gcp-cloud-controller-manager"), self.found(doc))
        f = next(f for f in doc["findings"] if f["rule"] == "ccm-cidr-allocator")
        self.assertIn("RangeAllocator", f["message"])
        self.assertNotIn("line", f)


class NoIpam(Live):
    ccm = "off"

    def test_ccm_not_allocating_is_found(self):
        self.nodes()
        rc, doc = self.doctor()
        self.assertEqual(rc, 1)
        self.assertIn("does not allocate", next(f["message"] for f in doc["findings"]
                                                 if f["rule"] == "ccm-cidr-allocator"))


class ClusterRules(Live):
    def test_healthy_cluster_is_clean(self):
        self.reserve_vip()
        self.nodes()
        self.vip_alias_pod("talos-cp-0")
        self.control_plane_lb()
        rc, doc = self.doctor()
        self.assertEqual((rc, doc["findings"]), (0, []))

    def test_node_without_alias_range(self):
        self.nodes(worker_alias=None)
        self.vip_alias_pod("talos-cp-0")
        rc, doc = self.doctor()
        self.assertEqual(self.found(doc), {("node-no-alias", "gce:instances/talos-worker-0")})

    def test_load_balancer_off_the_vip_with_a_health_check_on_apid(self):
        self.nodes()
        self.vip_alias_pod("talos-cp-0")
        self.control_plane_lb(ip="10.0.0.9", hc_port=50000)
        rc, doc = self.doctor()
        self.assertEqual(self.found(doc), {("cp-forwarding-rule-vip", "gce:forwardingRules/talos-cp"),
                                           ("cp-health-check-port", "gce:healthChecks/talos-cp")})
        # With --vip naming the forwarding rule's address, only the health check is wrong.
        rc, doc = self.doctor("--vip", "10.0.0.9")
        self.assertEqual(self.found(doc), {("cp-health-check-port", "gce:healthChecks/talos-cp")})

    def test_vip_alias_missing_and_misplaced(self):
        self.nodes()
        self.vip_alias_pod("talos-worker-0")
        rc, doc = self.doctor()
        self.assertEqual(rc, 1)
        self.assertEqual(self.found(doc), {
            ("vip-alias-missing", "kube:Node/talos-cp-0"),
            ("vip-alias-placement", "kube:kube-system/Pod/vip-alias-talos-worker-0")})

    def test_load_balancer_ip_must_be_reserved(self):
        self.nodes()
        self.vip_alias_pod("talos-cp-0")
        self.kube("POST", "api/v1/namespaces/default/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "loadBalancerIP": "35.1.2.3",
                     "ports": [{"port": 80, "targetPort": 80}]}})
        rc, doc = self.doctor()
        self.assertEqual(self.found(doc), {("lb-ip-not-reserved", "kube:default/Service/web")})
        self.compute("addresses", {"name": "web", "addressType": "EXTERNAL", "address": "35.1.2.3"})
        rc, doc = self.doctor()
        self.assertEqual((rc, doc["findings"]), (0, []))

    def test_cluster_cidr_differs_from_the_pods_range(self):
        self.nodes()
        self.vip_alias_pod("talos-cp-0")
        rc, out, err = talos_gcp(self.emu, "render", "--project", self.emu.project, "--only", "ccm",
                                 "--pod-cidr", "10.64.0.0/14")
        docs = out.split("\n---\n")
        dep = next(d for d in docs if "kind: Deployment" in d)
        path = os.path.join(self.tmp, "ccm.yaml")
        with open(path, "w") as f:
            f.write(dep)
        if not KUBECTLS:
            self.skipTest("kubectl not installed")
        p = subprocess.run([KUBECTLS[0], "--kubeconfig", self.emu.kubeconfig, "apply", "-f", path],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        rc, doc = self.doctor()
        self.assertEqual(self.found(doc), {
            ("cluster-cidr-mismatch", "kube:kube-system/Deployment/cloud-controller-manager")})
        self.assertIn("172.20.0.0/16", doc["findings"][0]["message"])

    def test_l2_policy_read_live(self):
        self.nodes()
        self.vip_alias_pod("talos-cp-0")
        self.kube("POST", "apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "ciliuml2announcementpolicies.cilium.io"},
            "spec": {"group": "cilium.io", "scope": "Cluster",
                     "names": {"plural": "ciliuml2announcementpolicies", "singular": "ciliuml2announcementpolicy",
                               "kind": "CiliumL2AnnouncementPolicy", "listKind": "CiliumL2AnnouncementPolicyList"},
                     "versions": [{"name": "v2alpha1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]}})
        self.kube("POST", "apis/cilium.io/v2alpha1/ciliuml2announcementpolicies", {
            "apiVersion": "cilium.io/v2alpha1", "kind": "CiliumL2AnnouncementPolicy",
            "metadata": {"name": "public"}, "spec": {"loadBalancerIPs": True}})
        rc, doc = self.doctor()
        self.assertEqual(self.found(doc), {("l2-cilium-policy", "kube:CiliumL2AnnouncementPolicy/public")})

    def test_unreachable_api_is_exit_2(self):
        self.nodes()
        self.emu.stop()
        rc, out, err = talos_gcp(self.emu, "doctor", "--live")
        self.assertEqual(rc, 2, out + err)
        self.assertRegex(out, r"kube:/api/v1/nodes: error: cannot list: ")

    def test_cluster_checked_without_gcp_access(self):
        self.nodes()
        rc, out, err = talos_gcp(self.emu, "doctor", "--live",
                                 env={"CLOUDSDK_CORE_PROJECT": "", "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true"})
        self.assertEqual(rc, 2, out + err)
        self.assertIn("gce:credentials: error: --project: not given", out)
        self.assertIn("[vip-alias-missing]", out)  # the Kubernetes side was still read

    def test_kcm_allocating_is_read_from_its_static_pod(self):
        self.nodes()
        self.vip_alias_pod("talos-cp-0")
        self.kube("POST", "api/v1/namespaces/kube-system/pods", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "kube-controller-manager-talos-cp-9", "namespace": "kube-system"},
            "spec": {"nodeName": "talos-cp-0", "hostNetwork": True, "containers": [
                {"name": "kube-controller-manager", "image": "registry.k8s.io/kube-controller-manager:v1.33.1",
                 "command": ["/usr/local/bin/kube-controller-manager"],
                 "args": ["--allocate-node-cidrs=true", "--cluster-cidr=172.20.0.0/16"]}]}})
        rc, doc = self.doctor()
        # The emulated cluster's own KCM Pods run with --allocate-node-cidrs=false.
        self.assertEqual(self.found(doc), {
            ("kcm-allocates-node-cidrs", "kube:kube-system/Pod/kube-controller-manager-talos-cp-9")})

    def test_cilium_config_read_live(self):
        self.nodes()
        self.vip_alias_pod("talos-cp-0")
        self.kube("POST", "api/v1/namespaces/kube-system/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cilium-config", "namespace": "kube-system"},
            "data": {"ipam": "cluster-pool", "routing-mode": "native",
                     "ipv4-native-routing-cidr": "172.20.0.0/16", "mtu": "9000",
                     "enable-l2-announcements": "true"}})
        rc, doc = self.doctor()
        src = "kube:kube-system/ConfigMap/cilium-config"
        self.assertEqual(self.found(doc), {("cilium-ipam-mode", src), ("mtu-too-large", src),
                                           ("l2-cilium-values", src)})
