"""Pods in the emulated cluster: the Deployment, ReplicaSet and DaemonSet controllers, the
scheduler, the kubelet's pod status, the pod garbage collector, the Eviction API and the
disruption controller's PodDisruptionBudget status, through the Kubernetes API; kubectl
drain as the judge."""
import shutil
import tempfile
import time
import unittest
import ipaddress

from emu import Emu, kubectl_path

FAST = ["--kubelet-delay", "50ms", "--ccm-delay", "20ms"]
ZONE = "us-central1-a"
BUDGET = "Cannot evict pod as it would violate the pod's disruption budget."




def ready(obj):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in obj.get("status", {}).get("conditions", []))


class Workloads(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-workloads-")
        cls.emu = Emu(cls.tmp, ccm="cloud", extra=FAST).start()
        cls.emu.create_network()
        cls.emu.create_subnet()
        for n in ("talos-cp-0", "w-0", "w-1", "w-2"):
            cls.emu.create_instance(n)
        for n in ("talos-cp-0", "w-0", "w-1", "w-2"):
            cls.emu.wait_until(lambda: (lambda x: x and x["spec"].get("podCIDR") and ready(x))(cls.emu.node(n)),
                               timeout=15, what=f"node {n}")

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def k(self, method, path, body=None, **kw):
        return self.emu.kube(method, path, body, **kw)

    def create(self, path, obj):
        """Creates obj; the test's end deletes it (and what it owns: the collector's)."""
        status, body = self.k("POST", path, obj)
        self.assertEqual(status, 201, body)
        self.addCleanup(self.k, "DELETE", f"{path}/{body['metadata']['name']}",
                        {"propagationPolicy": "Background"})
        return body

    def pods(self, ns, selector):
        return self.k("GET", f"/api/v1/namespaces/{ns}/pods?labelSelector={selector}")[1]["items"]

    def running(self, ns, selector, n):
        return self.emu.wait_until(lambda: (lambda p: p if len(p) == n else None)(
            [x for x in self.pods(ns, selector) if ready(x) and x["status"]["phase"] == "Running"]),
            what=f"{n} running pods {selector}")

    def deployment(self, ns, name, replicas, **spec):
        pod = {"containers": [{"name": "c", "image": "app:1"}]}
        pod.update(spec)
        return self.create(f"/apis/apps/v1/namespaces/{ns}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod}}})

    def pdb(self, ns, name, app, **spec):
        spec["selector"] = {"matchLabels": {"app": app}}
        return self.create(f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets", {
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": spec})

    def pdb_status(self, ns, name, **want):
        def check():
            st = self.k("GET", f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/{name}")[1].get("status", {})
            return st if all(st.get(k) == v for k, v in want.items()) else None
        return self.emu.wait_until(check, what=f"budget {name} {want}")

    def evict(self, ns, name, **extra):
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}}
        body.update(extra)
        return self.k("POST", f"/api/v1/namespaces/{ns}/pods/{name}/eviction", body)

    def test_deployment_pods_are_scheduled_and_run(self):
        self.deployment("default", "spread", 3)
        pods = self.running("default", "app%3Dspread", 3)
        # The workers, one each (the control plane's taint keeps them off talos-cp-0).
        self.assertEqual(sorted(p["spec"]["nodeName"] for p in pods), ["w-0", "w-1", "w-2"])
        for p in pods:
            node = self.emu.node(p["spec"]["nodeName"])
            self.assertIn(ipaddress.ip_address(p["status"]["podIP"]),
                          ipaddress.ip_network(node["spec"]["podCIDR"]))
            self.assertEqual(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet")
            self.assertIn("pod-template-hash", p["metadata"]["labels"])
        d = self.emu.wait_until(lambda: (lambda d: d if d.get("status", {}).get("availableReplicas") == 3 else None)(
            self.k("GET", "/apis/apps/v1/namespaces/default/deployments/spread")[1]), what="available")
        self.assertEqual((d["status"]["replicas"], d["status"]["updatedReplicas"]), (3, 3))

    def test_daemonset_runs_on_every_node_even_cordoned(self):
        self.k("PATCH", "/api/v1/nodes/w-2", {"spec": {"unschedulable": True}},
               content_type="application/merge-patch+json")
        try:
            self.create("/apis/apps/v1/namespaces/kube-system/daemonsets", {
                "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
                "spec": {"selector": {"matchLabels": {"app": "agent"}},
                         "template": {"metadata": {"labels": {"app": "agent"}},
                                      "spec": {"hostNetwork": True,
                                               "tolerations": [{"key": "node-role.kubernetes.io/control-plane",
                                                                "operator": "Exists", "effect": "NoSchedule"}],
                                               "containers": [{"name": "a", "image": "agent:1"}]}}}})
            pods = self.running("kube-system", "app%3Dagent", 4)
            self.assertEqual(sorted(p["spec"]["nodeName"] for p in pods), ["talos-cp-0", "w-0", "w-1", "w-2"])
            for p in pods:
                self.assertEqual(p["status"]["podIP"], p["status"]["hostIP"])
            ds = self.emu.wait_until(lambda: (lambda d: d if d.get("status", {}).get("numberReady") == 4 else None)(
                self.k("GET", "/apis/apps/v1/namespaces/kube-system/daemonsets/agent")[1]), what="ds status")
            self.assertEqual(ds["status"]["desiredNumberScheduled"], 4)
            # A new replica is not scheduled onto the cordoned node.
            self.deployment("default", "avoid", 4)
            self.assertNotIn("w-2", [p["spec"]["nodeName"] for p in self.running("default", "app%3Davoid", 4)])
        finally:
            self.k("PATCH", "/api/v1/nodes/w-2", {"spec": {"unschedulable": False}},
                   content_type="application/merge-patch+json")

    def test_eviction_honours_the_budget(self):
        self.deployment("default", "web", 3)
        pods = self.running("default", "app%3Dweb", 3)
        self.pdb("default", "web", "web", minAvailable=3)
        self.pdb_status("default", "web", currentHealthy=3, desiredHealthy=3, expectedPods=3,
                        disruptionsAllowed=0)
        name = pods[0]["metadata"]["name"]
        status, st = self.evict("default", name)
        self.assertEqual((status, st["reason"], st["message"]), (429, "TooManyRequests", BUDGET))
        self.assertEqual(st["details"]["causes"], [{"reason": "DisruptionBudget", "message":
                         "The disruption budget web needs 3 healthy pods and has 3 currently"}])
        self.assertEqual(self.k("GET", f"/api/v1/namespaces/default/pods/{name}")[0], 200)
        # maxUnavailable 1 of the Deployment's 3: one may go.
        self.k("PATCH", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web",
               {"spec": {"minAvailable": None, "maxUnavailable": 1}},
               content_type="application/merge-patch+json")
        self.pdb_status("default", "web", desiredHealthy=2, disruptionsAllowed=1, observedGeneration=2)
        status, st = self.evict("default", name, deleteOptions={"dryRun": ["All"]})
        self.assertEqual(status, 201, st)
        self.assertEqual(self.k("GET", f"/api/v1/namespaces/default/pods/{name}")[0], 200)  # dry run
        status, st = self.evict("default", name)
        self.assertEqual((status, st["status"]), (201, "Success"))
        self.assertEqual(self.k("GET", f"/api/v1/namespaces/default/pods/{name}")[0], 404)
        # The ReplicaSet replaces it; the budget counts it again once it runs.
        self.running("default", "app%3Dweb", 3)
        st = self.pdb_status("default", "web", currentHealthy=3, disruptionsAllowed=1)
        self.assertNotIn("disruptedPods", st)

    def test_eviction_errors(self):
        self.deployment("default", "two", 1)
        pod = self.running("default", "app%3Dtwo", 1)[0]["metadata"]["name"]
        self.assertEqual(self.evict("default", "nope")[0], 404)
        status, st = self.k("POST", f"/api/v1/namespaces/default/pods/{pod}/eviction",
                            {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}})
        self.assertEqual((status, st["message"]), (400, "name in URL does not match name in Eviction object"))
        self.assertEqual(self.k("GET", f"/api/v1/namespaces/default/pods/{pod}/eviction")[0], 405)
        self.pdb("default", "two-a", "two", minAvailable=0)
        self.pdb("default", "two-b", "two", maxUnavailable="50%")
        status, st = self.evict("default", pod)
        self.assertEqual((status, st["message"]), (500, "This pod has more than one PodDisruptionBudget, "
                                                        "which the eviction subresource does not support."))

    def test_pod_gc_and_daemon_pods_after_node_deletion(self):
        self.create("/apis/apps/v1/namespaces/kube-system/daemonsets", {
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "net"},
            "spec": {"selector": {"matchLabels": {"app": "net"}},
                     "template": {"metadata": {"labels": {"app": "net"}},
                                  "spec": {"nodeSelector": {"kubernetes.io/hostname": "w-1"},
                                           "containers": [{"name": "n", "image": "net:1"}]}}}})
        first = self.running("kube-system", "app%3Dnet", 1)[0]
        self.assertEqual(first["spec"]["nodeName"], "w-1")
        self.assertEqual(self.k("DELETE", "/api/v1/nodes/w-1")[0], 200)
        # Bound to a Node that does not exist: the pod garbage collector deletes it.
        self.emu.wait_until(lambda: not self.pods("kube-system", "app%3Dnet"), what="pod collected")
        status, op = self.emu.compute("POST", f"projects/demo-project/zones/{ZONE}/instances/w-1/reset")
        self.assertEqual(status, 200)
        self.emu.wait_op(op)
        again = self.running("kube-system", "app%3Dnet", 1)[0]
        self.assertNotEqual(again["metadata"]["uid"], first["metadata"]["uid"])

    def test_discovery_lists_the_eviction_subresource(self):
        res = self.k("GET", "/api/v1")[1]["resources"]
        ev = next(r for r in res if r["name"] == "pods/eviction")
        self.assertEqual((ev["group"], ev["version"], ev["kind"], ev["verbs"]), ("policy", "v1", "Eviction", ["create"]))

    @unittest.skipUnless(kubectl_path(), "kubectl not installed")
    def test_kubectl_drain(self):
        self.deployment("default", "drainme", 2)
        pods = self.running("default", "app%3Ddrainme", 2)
        node = pods[0]["spec"]["nodeName"]
        self.pdb("default", "drainme", "drainme", minAvailable=2)
        self.pdb_status("default", "drainme", disruptionsAllowed=0)
        p = self.emu.kubectl("drain", node, "--ignore-daemonsets", "--timeout=3s")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(BUDGET, p.stderr)
        self.k("PATCH", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/drainme",
               {"spec": {"minAvailable": 1}}, content_type="application/merge-patch+json")
        self.pdb_status("default", "drainme", disruptionsAllowed=1)
        p = self.emu.kubectl("drain", node, "--ignore-daemonsets", "--timeout=30s")
        try:
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn(f"node/{node} drained", p.stdout)
            self.assertTrue(self.emu.node(node)["spec"]["unschedulable"])
            left = [x for x in self.pods("default", "app%3Ddrainme") if x["spec"].get("nodeName") == node]
            self.assertEqual(left, [])
        finally:
            self.emu.kubectl("uncordon", node)


if __name__ == "__main__":
    unittest.main()
