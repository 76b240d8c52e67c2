"""The emulated CCM's service controller: LoadBalancer Services get their GCP load balancer
through the Compute API, as cloud-provider-gcp makes it (external: address, firewalls, legacy
HTTP health check, target pool, forwarding rule; internal: instance groups, health check,
regional backend service, rule), with the finalizer, Events, status, node-set updates,
retries, and faults injected on the CCM's own calls."""
import json
import shutil
import tempfile
import time
import unittest
import urllib.parse

from emu import Emu

FAST = ["--kubelet-delay", "50ms", "--ccm-delay", "20ms", "--ccm-retry-delay", "100ms"]
P = "projects/demo-project"
R = "regions/us-central1"
CCM_UA = "gcp-cloud-controller-manager"
WORKERS = {"demo-worker-0": "us-central1-a", "demo-worker-1": "us-central1-a",
           "demo-worker-2": "us-central1-b"}
L4_RANGES = sorted(["130.211.0.0/22", "35.191.0.0/16", "209.85.152.0/22", "209.85.204.0/22"])

NOTE_YAML = """apiVersion: v1
kind: Service
metadata:
  name: traefik
  namespace: kube-system
spec:
  type: LoadBalancer
  loadBalancerIP: {ip}  # Optional: Request specific static IP
  ports:
    - port: 80
      targetPort: 80
"""


def ready(obj):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in obj.get("status", {}).get("conditions", []))


class CcmServices(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-ccm-")
        cls.emu = Emu(cls.tmp, extra=FAST).start()
        cls.emu.create_network()
        cls.emu.create_subnet(cidr="10.0.0.0/24", pods="172.20.0.0/16")
        cls.instance("demo-cp-0", "us-central1-a", "demo-controlplane")
        for name, zone in WORKERS.items():
            cls.instance(name, zone, "demo-worker")
        for name in ["demo-cp-0", *WORKERS]:
            cls.emu.wait_until(lambda: (lambda n: n and n["spec"].get("providerID") and ready(n))(
                cls.emu.node(name)), timeout=15, what=f"node {name}")

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def instance(cls, name, zone, tag):
        body = Emu.instance_body(name, zone=zone)
        body["tags"] = {"items": [tag, "demo-node"]}
        return cls.emu.insert(f"zones/{zone}/instances", body)

    def tearDown(self):
        self.emu.clear_faults()

    # ---- helpers ----
    def get(self, path):
        return self.emu.compute("GET", f"{P}/{path}")

    def exists(self, path):
        return self.get(path)[0] == 200

    def names(self, path):
        st, body = self.get(path)
        self.assertEqual(st, 200, body)
        return sorted(x["name"] for x in body.get("items", []))

    def reserve(self, name, tier=None, address=None):
        body = {"name": name}
        if tier:
            body["networkTier"] = tier
        if address:
            body["address"] = address
        self.emu.insert(f"{R}/addresses", body)
        self.addCleanup(self.emu.compute, "DELETE", f"{P}/{R}/addresses/{name}")
        return self.get(f"{R}/addresses/{name}")[1]["address"]

    def service(self, name, ns="default", ports=(80,), **spec):
        spec.setdefault("type", "LoadBalancer")
        spec["ports"] = [{"name": f"p{p}", "port": p, "targetPort": 8080} for p in ports]
        annotations = spec.pop("annotations", None)
        meta = {"name": name}
        if annotations:
            meta["annotations"] = annotations
        st, body = self.emu.kube("POST", f"/api/v1/namespaces/{ns}/services",
                                 {"apiVersion": "v1", "kind": "Service", "metadata": meta,
                                  "spec": spec})
        self.assertEqual(st, 201, body)
        self.addCleanup(self.gone, name, ns)
        return body

    def svc(self, name, ns="default"):
        st, body = self.emu.kube("GET", f"/api/v1/namespaces/{ns}/services/{name}")
        return body if st == 200 else None

    def gone(self, name, ns="default"):
        """Deletes the Service and waits until it is gone (its load balancer with it)."""
        self.emu.kube("DELETE", f"/api/v1/namespaces/{ns}/services/{name}")
        self.emu.wait_until(lambda: self.svc(name, ns) is None, timeout=20,
                            what=f"service {ns}/{name} gone")

    def patch(self, name, patch, ns="default"):
        st, body = self.emu.kube("PATCH", f"/api/v1/namespaces/{ns}/services/{name}", patch,
                                 content_type="application/merge-patch+json")
        self.assertEqual(st, 200, body)
        return body

    def ingress(self, name, ns="default", timeout=15):
        def ip():
            s = self.svc(name, ns) or {}
            ing = s.get("status", {}).get("loadBalancer", {}).get("ingress")
            return ing[0]["ip"] if ing else None
        return self.emu.wait_until(ip, timeout=timeout, what=f"{ns}/{name} EXTERNAL-IP")

    def events(self, name, ns="default"):
        sel = urllib.parse.quote(f"involvedObject.name={name},involvedObject.kind=Service")
        st, body = self.emu.kube("GET", f"/api/v1/namespaces/{ns}/events?fieldSelector={sel}")
        return [(e["reason"], e["message"], e["source"]["component"], e.get("count", 1))
                for e in body.get("items", [])]

    def reasons(self, name, ns="default"):
        return [e[0] for e in self.events(name, ns)]

    def wait_event(self, name, reason, ns="default", contains="", timeout=15):
        return self.emu.wait_until(
            lambda: [e for e in self.events(name, ns) if e[0] == reason and contains in e[1]],
            timeout=timeout, what=f"event {reason} on {ns}/{name}")

    @staticmethod
    def lb(svc):
        return ("a" + svc["metadata"]["uid"].replace("-", ""))[:32]

    def cid(self):
        st, cm = self.emu.kube("GET", "/api/v1/namespaces/kube-system/configmaps/ingress-uid")
        self.assertEqual(st, 200, cm)
        return cm["data"]["provider-uid"]

    def pool_members(self, lb):
        st, tp = self.get(f"{R}/targetPools/{lb}")
        return sorted(u.rsplit("/", 1)[1] for u in tp.get("instances", [])) if st == 200 else None

    def nothing_left(self, lb, internal=False):
        cid = self.cid()
        left = [p for p in (f"{R}/forwardingRules/{lb}", f"{R}/targetPools/{lb}",
                            f"{R}/addresses/{lb}", f"global/firewalls/k8s-fw-{lb}",
                            f"global/httpHealthChecks/{lb}", f"global/firewalls/k8s-{lb}-http-hc",
                            f"{R}/backendServices/{lb}", f"global/healthChecks/{lb}",
                            f"global/firewalls/{lb}-hc")
                if self.exists(p)]
        if internal:
            left += [f"instanceGroups in {z}" for z in ("us-central1-a", "us-central1-b")
                     if self.exists(f"zones/{z}/instanceGroups/k8s-ig--{cid}")]
        return left

    # ---- the design note's example ----
    def test_note_example_with_a_reserved_address(self):
        ip = self.reserve("traefik-ip")
        out = self.emu.kubectl("apply", "-f", "-", input=NOTE_YAML.format(ip=ip))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.addCleanup(self.gone, "traefik", "kube-system")
        self.assertEqual(self.ingress("traefik", "kube-system"), ip)
        out = self.emu.kubectl("get", "svc", "-n", "kube-system", "traefik")
        self.assertRegex(out.stdout, rf"traefik\s+LoadBalancer\s+\S+\s+{ip}\s+80:\d+/TCP")
        svc = self.svc("traefik", "kube-system")
        lb, cid = self.lb(svc), self.cid()
        self.assertEqual(sorted(svc["metadata"]["finalizers"]),
                         ["gke.networking.io/l4-netlb-v1",
                          "service.kubernetes.io/load-balancer-cleanup"])
        st, fr = self.get(f"{R}/forwardingRules/{lb}")
        self.assertEqual((fr["IPAddress"], fr["IPProtocol"], fr["portRange"], fr["networkTier"]),
                         (ip, "TCP", "80-80", "PREMIUM"))
        self.assertTrue(fr["target"].endswith(f"{R}/targetPools/{lb}"))
        self.assertEqual(json.loads(fr["description"]), {"kubernetes.io/service-name": "kube-system/traefik"})
        # every node but the control plane (excluded from external load balancers)
        self.assertEqual(self.pool_members(lb), sorted(WORKERS))
        st, tp = self.get(f"{R}/targetPools/{lb}")
        self.assertEqual(tp["sessionAffinity"], "NONE")
        self.assertTrue(tp["healthChecks"][0].endswith(f"global/httpHealthChecks/k8s-{cid}-node"))
        st, hc = self.get(f"global/httpHealthChecks/k8s-{cid}-node")
        self.assertEqual((hc["port"], hc["requestPath"], hc["checkIntervalSec"], hc["timeoutSec"],
                          hc["healthyThreshold"], hc["unhealthyThreshold"]),
                         (10256, "/healthz", 8, 1, 1, 3))
        st, fw = self.get(f"global/firewalls/k8s-fw-{lb}")
        self.assertEqual((fw["allowed"], fw["sourceRanges"], fw["targetTags"], fw["destinationRanges"]),
                         ([{"IPProtocol": "tcp", "ports": ["80"]}], ["0.0.0.0/0"], ["demo-worker"], [ip]))
        self.assertTrue(fw["network"].endswith("global/networks/talos"))
        st, hcfw = self.get(f"global/firewalls/k8s-{cid}-node-http-hc")
        self.assertEqual((hcfw["allowed"], sorted(hcfw["sourceRanges"])),
                         ([{"IPProtocol": "tcp", "ports": ["10256"]}], L4_RANGES))
        st, addr = self.get(f"{R}/addresses/traefik-ip")
        self.assertEqual((addr["status"], addr["users"]), ("IN_USE", [fr["selfLink"]]))
        # the user's address was used, not one of the CCM's own
        self.assertFalse(self.exists(f"{R}/addresses/{lb}"))
        self.assertEqual([r for r in self.reasons("traefik", "kube-system")
                          if r.endswith("LoadBalancer")][:2],
                         ["EnsuringLoadBalancer", "EnsuredLoadBalancer"])
        # deleting the Service removes what the CCM made and leaves the address reserved
        out = self.emu.kubectl("delete", "-n", "kube-system", "svc", "traefik")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.nothing_left(lb), [])
        self.assertFalse(self.exists(f"global/httpHealthChecks/k8s-{cid}-node"))
        self.assertFalse(self.exists(f"global/firewalls/k8s-{cid}-node-http-hc"))
        st, addr = self.get(f"{R}/addresses/traefik-ip")
        self.assertEqual(addr["status"], "RESERVED")
        self.assertNotIn("users", addr)
        self.assertIn("DeletedLoadBalancer", self.reasons("traefik", "kube-system"))

    def test_unreserved_address_stays_pending_and_says_why(self):
        self.service("pending", loadBalancerIP="34.99.99.99")
        want = 'requested ip "34.99.99.99" is neither static nor assigned to the LB'
        self.wait_event("pending", "SyncLoadBalancerFailed", contains=want)
        out = self.emu.kubectl("get", "svc", "pending")
        self.assertRegex(out.stdout, r"pending\s+LoadBalancer\s+\S+\s+<pending>")
        out = self.emu.kubectl("describe", "svc", "pending")
        self.assertIn("SyncLoadBalancerFailed", out.stdout)
        self.assertIn("Error syncing load balancer: failed to ensure load balancer: " + want,
                      out.stdout)
        lb = self.lb(self.svc("pending"))
        self.assertFalse(self.exists(f"{R}/forwardingRules/{lb}"))
        self.assertFalse(self.exists(f"{R}/targetPools/{lb}"))
        # The retries (with backoff) pick the address up once it is reserved.
        self.reserve("late", address="34.99.99.99")
        self.assertEqual(self.ingress("pending"), "34.99.99.99")

    def test_ephemeral_address_and_port_changes(self):
        svc = self.service("web", ports=(80,))
        lb = self.lb(svc)
        ip = self.ingress("web")
        # The CCM reserved <lb> while it built the load balancer, then released it: the
        # rule keeps the IP.
        self.assertFalse(self.exists(f"{R}/addresses/{lb}"))
        st, fr = self.get(f"{R}/forwardingRules/{lb}")
        self.assertEqual((fr["IPAddress"], fr["portRange"]), (ip, "80-80"))
        # Rules are not updated in place: a new port makes a new rule, on the same IP.
        self.patch("web", {"spec": {"ports": [{"name": "p80", "port": 80, "targetPort": 8080},
                                              {"name": "p81", "port": 81, "targetPort": 8080},
                                              {"name": "p443", "port": 443, "targetPort": 8443}]}})
        self.emu.wait_until(lambda: self.get(f"{R}/forwardingRules/{lb}")[1].get("portRange") == "80-443",
                            what="rule with the new ports")
        st, fr2 = self.get(f"{R}/forwardingRules/{lb}")
        self.assertNotEqual(fr2["id"], fr["id"])
        self.assertEqual(fr2["IPAddress"], ip)
        st, fw = self.get(f"global/firewalls/k8s-fw-{lb}")
        self.assertEqual(fw["allowed"], [{"IPProtocol": "tcp", "ports": ["80-81", "443"]}])
        self.assertEqual(self.ingress("web"), ip)
        self.assertFalse(self.exists(f"{R}/addresses/{lb}"))
        # loadBalancerSourceRanges narrow the firewall (updated in place)
        self.patch("web", {"spec": {"loadBalancerSourceRanges": ["203.0.113.0/24"]}})
        self.emu.wait_until(lambda: self.get(f"global/firewalls/k8s-fw-{lb}")[1]["sourceRanges"]
                            == ["203.0.113.0/24"], what="source ranges")
        st, fw2 = self.get(f"global/firewalls/k8s-fw-{lb}")
        self.assertEqual(fw2["id"], fw["id"])
        self.gone("web")
        self.assertEqual(self.nothing_left(lb), [])

    def test_external_traffic_policy_local(self):
        st, dep = self.emu.kube("POST", "/apis/apps/v1/namespaces/default/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "local-app"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "local-app"}},
                     "template": {"metadata": {"labels": {"app": "local-app"}},
                                  "spec": {"containers": [{"name": "c", "image": "app:1"}]}}}})
        self.assertEqual(st, 201, dep)
        self.addCleanup(self.emu.kube, "DELETE", "/apis/apps/v1/namespaces/default/deployments/local-app",
                        {"propagationPolicy": "Background"})

        def pod_node():
            st, pods = self.emu.kube("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dlocal-app")
            ok = [p for p in pods.get("items", []) if ready(p)]
            return ok[0]["spec"]["nodeName"] if ok else None
        where = self.emu.wait_until(pod_node, what="a Ready pod")
        svc = self.service("local", externalTrafficPolicy="Local", selector={"app": "local-app"})
        lb, cid, hcport = self.lb(svc), self.cid(), svc["spec"]["healthCheckNodePort"]
        self.ingress("local")
        st, tp = self.get(f"{R}/targetPools/{lb}")
        self.assertTrue(tp["healthChecks"][0].endswith(f"global/httpHealthChecks/{lb}"))
        st, hc = self.get(f"global/httpHealthChecks/{lb}")
        self.assertEqual((hc["port"], hc["requestPath"]), (hcport, "/healthz"))
        st, hcfw = self.get(f"global/firewalls/k8s-{lb}-http-hc")
        self.assertEqual(hcfw["allowed"], [{"IPProtocol": "tcp", "ports": [str(hcport)]}])
        # Only the node with a Ready endpoint answers the Service's health check.
        for name, zone in WORKERS.items():
            st, h = self.emu.compute("POST", f"{P}/{R}/targetPools/{lb}/getHealth",
                                     {"instance": f"zones/{zone}/instances/{name}"})
            self.assertEqual(st, 200, h)
            self.assertEqual(h["healthStatus"][0]["healthState"],
                             "HEALTHY" if name == where else "UNHEALTHY", name)
            self.assertEqual(h["healthStatus"][0]["ipAddress"], self.ingress("local"))
        # Back to Cluster: the pool is made again with the nodes' health check.
        self.patch("local", {"spec": {"externalTrafficPolicy": "Cluster"}})
        self.emu.wait_until(lambda: self.get(f"{R}/targetPools/{lb}")[1].get("healthChecks", [""])[0]
                            .endswith(f"httpHealthChecks/k8s-{cid}-node"), what="nodes health check")
        self.emu.wait_until(lambda: not self.exists(f"global/httpHealthChecks/{lb}"),
                            what="local health check gone")
        self.assertFalse(self.exists(f"global/firewalls/k8s-{lb}-http-hc"))
        for name, zone in WORKERS.items():
            st, h = self.emu.compute("POST", f"{P}/{R}/targetPools/{lb}/getHealth",
                                     {"instance": f"zones/{zone}/instances/{name}"})
            self.assertEqual(h["healthStatus"][0]["healthState"], "HEALTHY", name)

    def test_nodes_added_and_removed(self):
        svc = self.service("nodes-lb")
        lb = self.lb(svc)
        self.ingress("nodes-lb")
        self.assertEqual(self.pool_members(lb), sorted(WORKERS))
        self.instance("demo-worker-9", "us-central1-c", "demo-worker")
        self.addCleanup(self.emu.compute, "DELETE", f"{P}/zones/us-central1-c/instances/demo-worker-9")
        self.emu.wait_until(lambda: self.pool_members(lb) == sorted([*WORKERS, "demo-worker-9"]),
                            timeout=15, what="new node in the pool")
        self.wait_event("nodes-lb", "UpdatedLoadBalancer")
        # A node labelled for exclusion leaves the pool, and comes back.
        label = "node.kubernetes.io/exclude-from-external-load-balancers"
        self.emu.kube("PATCH", "/api/v1/nodes/demo-worker-1", {"metadata": {"labels": {label: "true"}}},
                      content_type="application/merge-patch+json")
        self.emu.wait_until(lambda: "demo-worker-1" not in self.pool_members(lb), what="excluded")
        self.emu.kube("PATCH", "/api/v1/nodes/demo-worker-1", {"metadata": {"labels": {label: None}}},
                      content_type="application/merge-patch+json")
        self.emu.wait_until(lambda: "demo-worker-1" in self.pool_members(lb), what="included again")
        # The instance goes, its Node goes (lifecycle controller), the pool follows.
        st, op = self.emu.compute("DELETE", f"{P}/zones/us-central1-c/instances/demo-worker-9")
        self.emu.wait_op(op)
        self.emu.wait_until(lambda: self.pool_members(lb) == sorted(WORKERS), timeout=15,
                            what="deleted node out of the pool")

    def test_internal_scheme(self):
        svc = self.service("ilb", annotations={"networking.gke.io/load-balancer-type": "Internal"},
                           ports=(8080, 9090))
        lb = self.lb(svc)
        ip = self.ingress("ilb")
        cid = self.cid()
        self.assertTrue(ip.startswith("10.0.0."), ip)
        self.assertIn("gke.networking.io/l4-ilb-v1", self.svc("ilb")["metadata"]["finalizers"])
        for zone, members in (("us-central1-a", ["demo-worker-0", "demo-worker-1"]),
                              ("us-central1-b", ["demo-worker-2"])):
            st, items = self.emu.compute("POST", f"{P}/zones/{zone}/instanceGroups/k8s-ig--{cid}/listInstances", {})
            self.assertEqual(st, 200, items)
            self.assertEqual(sorted(i["instance"].rsplit("/", 1)[1] for i in items.get("items", [])), members)
        st, hc = self.get(f"global/healthChecks/k8s-{cid}-node")
        self.assertEqual((hc["type"], hc["httpHealthCheck"]["port"], hc["httpHealthCheck"]["requestPath"]),
                         ("HTTP", 10256, "/healthz"))
        st, bs = self.get(f"{R}/backendServices/{lb}")
        self.assertEqual((bs["loadBalancingScheme"], bs["protocol"]), ("INTERNAL", "TCP"))
        self.assertEqual(sorted(b["group"].rsplit("/", 1)[1] for b in bs["backends"]), [f"k8s-ig--{cid}"] * 2)
        st, fr = self.get(f"{R}/forwardingRules/{lb}")
        self.assertEqual((fr["IPAddress"], fr["loadBalancingScheme"], fr["ports"]), (ip, "INTERNAL", ["8080", "9090"]))
        self.assertTrue(fr["backendService"].endswith(f"{R}/backendServices/{lb}"))
        st, fw = self.get(f"global/firewalls/k8s-fw-{lb}")
        self.assertEqual(fw["allowed"], [{"IPProtocol": "tcp", "ports": ["8080", "9090"]}])
        self.assertTrue(self.exists(f"global/firewalls/k8s-{cid}-node-hc"))
        self.assertFalse(self.exists(f"{R}/addresses/{lb}"))  # held while building, released
        st, h = self.emu.compute("POST", f"{P}/{R}/backendServices/{lb}/getHealth",
                                 {"group": bs["backends"][0]["group"]})
        self.assertEqual(st, 200, h)
        self.assertTrue(h["healthStatus"] and all(x["healthState"] == "HEALTHY" for x in h["healthStatus"]), h)
        self.gone("ilb")
        self.assertEqual(self.nothing_left(lb, internal=True), [])
        self.assertFalse(self.exists(f"global/healthChecks/k8s-{cid}-node"))

    def test_faults_on_the_ccm_calls_converge(self):
        rules = f"/compute/v1/{P}/{R}/forwardingRules"
        f1 = self.emu.add_fault(method="POST", path=rules, userAgent=CCM_UA, status=503,
                                reason="backendError", message="Injected outage.", count=2)
        f2 = self.emu.add_fault(method="POST", path=f"/compute/v1/{P}/{R}/targetPools",
                                userAgent=CCM_UA, reset=True, count=1)
        # A client that is not the CCM is not affected.
        st, _ = self.emu.compute("GET", f"{P}/{R}/forwardingRules")
        self.assertEqual(st, 200)
        svc = self.service("flaky")
        ip = self.ingress("flaky", timeout=20)
        fails = [e for e in self.events("flaky") if e[0] == "SyncLoadBalancerFailed"]
        self.assertTrue(fails, self.events("flaky"))
        self.assertTrue(any("Injected outage." in e[1] for e in fails) or
                        any("connection reset" in e[1] for e in fails), fails)
        st, faults = self.emu.control("GET", "faults")
        self.assertFalse([f for f in faults["faults"] if f["id"] in (f1["id"], f2["id"])],
                         "the faults fired their count")
        self.assertIn("EnsuredLoadBalancer", self.reasons("flaky"))
        st, fr = self.get(f"{R}/forwardingRules/{self.lb(svc)}")
        self.assertEqual(fr["IPAddress"], ip)

    def test_finalizer_holds_the_service_until_its_load_balancer_is_gone(self):
        svc = self.service("held")
        lb = self.lb(svc)
        self.ingress("held")
        self.emu.add_fault(method="DELETE", pathPrefix=f"/compute/v1/{P}/{R}/forwardingRules/{lb}",
                           userAgent=CCM_UA, status=503, count=3)
        st, _ = self.emu.kube("DELETE", "/api/v1/namespaces/default/services/held")
        self.assertEqual(st, 200)
        held = self.svc("held")
        self.assertIsNotNone(held, "the finalizer holds the deletion")
        self.assertIn("deletionTimestamp", held["metadata"])
        self.wait_event("held", "SyncLoadBalancerFailed", contains="failed to delete load balancer")
        self.assertIsNotNone(self.svc("held"))
        self.assertTrue(self.exists(f"{R}/forwardingRules/{lb}"))
        # Once the deletes go through, the Service goes, and nothing is left behind it.
        self.emu.wait_until(lambda: self.svc("held") is None, timeout=20, what="service gone")
        self.assertEqual(self.nothing_left(lb), [])

    def test_network_tiers(self):
        premium = self.reserve("tier-premium")
        standard = self.reserve("tier-standard", tier="STANDARD")
        std = {"cloud.google.com/network-tier": "Standard"}
        self.service("tiered", loadBalancerIP=premium, annotations=std)
        self.wait_event("tiered", "SyncLoadBalancerFailed",
                        contains=f'requested IP "{premium}" belongs to the Premium network tier; expected Standard')
        self.patch("tiered", {"spec": {"loadBalancerIP": standard}})
        self.assertEqual(self.ingress("tiered"), standard)
        st, fr = self.get(f"{R}/forwardingRules/{self.lb(self.svc('tiered'))}")
        self.assertEqual(fr["networkTier"], "STANDARD")

    def test_type_change_deletes_the_load_balancer(self):
        svc = self.service("shrink")
        lb = self.lb(svc)
        self.ingress("shrink")
        self.patch("shrink", {"spec": {"type": "ClusterIP"}})
        self.emu.wait_until(lambda: "finalizers" not in self.svc("shrink")["metadata"],
                            what="finalizers removed")
        self.assertEqual(self.nothing_left(lb), [])
        self.assertNotIn("ingress", self.svc("shrink").get("status", {}).get("loadBalancer", {}))
        self.assertIn("DeletedLoadBalancer", self.reasons("shrink"))


if __name__ == "__main__":
    unittest.main()


class CcmWithAuth(unittest.TestCase):
    """--require-auth: the CCM's calls carry the instance service account's token from the
    metadata server, as on a GCE node; a node whose instance has no tag that prefixes its
    name leaves the firewall without a target, and the Service pending with that reason."""

    def test_token_from_the_metadata_server_and_untagged_nodes(self):
        tmp = tempfile.mkdtemp(prefix="emu-ccm-auth-")
        self.addCleanup(shutil.rmtree, tmp, True)
        e = Emu(tmp, extra=FAST + ["--require-auth", "--sa-key-out", f"{tmp}/sa.json"]).start()
        self.addCleanup(e.stop)
        st, tok = e.request("GET", e.cloud_url + "/computeMetadata/v1/instance/service-accounts/default/token",
                            headers={"Metadata-Flavor": "Google"})
        self.assertEqual(st, 200, tok)
        auth = {"Authorization": "Bearer " + tok["access_token"]}

        def call(method, path, body=None):
            st, out = e.request(method, e.compute_endpoint + path, body, headers=auth)
            if st == 200 and out.get("kind") == "compute#operation":
                while out.get("status") != "DONE":
                    st, out = e.request("POST", out["selfLink"] + "/wait", headers=auth)
            return st, out
        self.assertEqual(call("POST", f"{P}/global/images", {"name": "talos", "rawDisk": {
            "source": "https://storage.googleapis.com/talos-images/gcp-amd64.raw.tar.gz"}})[0], 200)
        self.assertEqual(call("POST", f"{P}/global/networks", {"name": "talos", "autoCreateSubnetworks": False})[0], 200)
        self.assertEqual(call("POST", f"{P}/{R}/subnetworks", {
            "name": "nodes", "network": "global/networks/talos", "ipCidrRange": "10.0.0.0/24",
            "secondaryIpRanges": [{"rangeName": "pods", "ipCidrRange": "172.20.0.0/16"}]})[0], 200)
        for name, tags in (("demo-cp-0", ["demo-controlplane"]), ("demo-worker-0", ["other"])):
            body = Emu.instance_body(name)
            body["tags"] = {"items": tags}
            self.assertEqual(call("POST", f"{P}/zones/us-central1-a/instances", body)[0], 200)
        for name in ("demo-cp-0", "demo-worker-0"):
            e.wait_until(lambda: (lambda n: n and n["spec"].get("providerID"))(e.node(name)),
                         timeout=15, what=f"node {name}")
        st, svc = e.kube("POST", "/api/v1/namespaces/default/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "untagged"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
        self.assertEqual(st, 201, svc)

        def failed():
            sel = urllib.parse.quote("involvedObject.name=untagged")
            evs = e.kube("GET", f"/api/v1/namespaces/default/events?fieldSelector={sel}")[1]["items"]
            return [x["message"] for x in evs if x["reason"] == "SyncLoadBalancerFailed"]
        msgs = e.wait_until(failed, timeout=15, what="SyncLoadBalancerFailed")
        self.assertIn("failed to parse the given lists of hosts for tags", msgs[0])
        # The calls went through authenticated (a 401 would say so instead).
        self.assertNotIn("401", msgs[0])
        stats = e.stats()["requests"]
        self.assertGreaterEqual(stats.get("GET /computeMetadata/v1/instance/service-accounts/default/token", 0), 1)
        # Tagged as the CCM expects, the node is reached.
        st, inst = call("GET", f"{P}/zones/us-central1-a/instances/demo-worker-0")
        st, op = call("POST", f"{P}/zones/us-central1-a/instances/demo-worker-0/setTags",
                      {"items": ["demo-worker"], "fingerprint": inst["tags"]["fingerprint"]})
        self.assertEqual(st, 200, op)
        st, s = e.kube("PATCH", "/api/v1/namespaces/default/services/untagged",
                       {"metadata": {"annotations": {"retry": "now"}}},
                       content_type="application/merge-patch+json")
        self.assertEqual(st, 200, s)
        e.wait_until(lambda: e.kube("GET", "/api/v1/namespaces/default/services/untagged")[1]
                     .get("status", {}).get("loadBalancer", {}).get("ingress"), timeout=15,
                     what="EXTERNAL-IP")
