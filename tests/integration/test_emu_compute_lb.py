"""talos-gcp-emu: the control-plane load balancer's resources (health checks, instance groups,
backend services, forwarding rules, addresses) and firewalls."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from emu import Emu

P = "projects/demo-project"
R = "regions/us-central1"
Z = "zones/us-central1-a"
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
VALIDATE = os.environ.get("GCE_VALIDATE",
                          os.path.join(SOURCE_ROOT, "..", "shared", "tools", "gce-validate.py"))
SDK_PYTHON = "/usr/lib/google-cloud-sdk/platform/bundledpythonunix/bin/python3"


class TestLoadBalancer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-lb-")
        e = cls.emu = Emu(cls.tmp, kube=False).start()
        e.create_network("talos")
        e.create_subnet("nodes")
        for n in ("cp-0", "cp-1", "worker-0"):
            e.create_instance(n)
        e.insert(f"{R}/healthChecks", {"name": "kube-apiserver", "type": "HTTPS",
                                       "httpsHealthCheck": {"port": 6443, "requestPath": "/readyz"}})
        e.insert(f"{Z}/instanceGroups", {"name": "cp", "network": "global/networks/talos",
                                         "namedPorts": [{"name": "https", "port": 6443}]})
        e.insert(f"{Z}/instanceGroups/cp/addInstances",
                 {"instances": [{"instance": f"{Z}/instances/cp-0"}, {"instance": f"{Z}/instances/cp-1"}]})
        e.insert(f"{R}/backendServices", {
            "name": "cp", "loadBalancingScheme": "INTERNAL", "protocol": "TCP",
            "network": "global/networks/talos",
            "healthChecks": [f"{R}/healthChecks/kube-apiserver"],
            "backends": [{"group": f"{Z}/instanceGroups/cp"}]})
        e.insert(f"{R}/addresses", {"name": "vip", "addressType": "INTERNAL", "address": "10.0.0.250",
                                    "subnetwork": f"{R}/subnetworks/nodes", "purpose": "GCE_ENDPOINT"})
        e.insert(f"{R}/forwardingRules", {
            "name": "cp", "loadBalancingScheme": "INTERNAL", "IPProtocol": "TCP",
            "backendService": f"{R}/backendServices/cp", "subnetwork": f"{R}/subnetworks/nodes",
            "IPAddress": f"{R}/addresses/vip", "ports": ["6443", "50000"]})
        e.insert("global/firewalls", {"name": "health-checks", "network": "global/networks/talos",
                                      "allowed": [{"IPProtocol": "tcp", "ports": ["6443"]}],
                                      "sourceRanges": ["35.191.0.0/16", "130.211.0.0/22"]})

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def get(self, path, **q):
        return self.emu.compute("GET", f"{P}/{path}", query=q or None)

    def members(self, group="cp"):
        st, body = self.emu.compute("POST", f"{P}/{Z}/instanceGroups/{group}/listInstances", {})
        self.assertEqual(st, 200, body)
        return [i["instance"].rsplit("/", 1)[1] for i in body.get("items", [])]

    def test_instance_group_membership(self):
        st, g = self.get(f"{Z}/instanceGroups/cp")
        self.assertEqual(g["size"], 2)
        self.assertEqual(self.members(), ["cp-0", "cp-1"])
        st, err = self.emu.compute("POST", f"{P}/{Z}/instanceGroups/cp/addInstances",
                                   {"instances": [{"instance": f"{Z}/instances/cp-0"}]})
        self.assertEqual(st, 400)
        st, err = self.emu.compute("POST", f"{P}/{Z}/instanceGroups/cp/addInstances",
                                   {"instances": [{"instance": f"{Z}/instances/ghost"}]})
        self.assertEqual(st, 404)

    def test_deleted_instance_leaves_its_group(self):
        self.emu.create_instance("cp-2")
        self.emu.insert(f"{Z}/instanceGroups/cp/addInstances",
                        {"instances": [{"instance": f"{Z}/instances/cp-2"}]})
        self.assertIn("cp-2", self.members())
        st, op = self.emu.compute("DELETE", f"{P}/{Z}/instances/cp-2")
        self.emu.wait_op(op)
        self.assertNotIn("cp-2", self.members())

    def test_named_ports_with_fingerprint(self):
        st, g = self.get(f"{Z}/instanceGroups/cp")
        self.emu.insert(f"{Z}/instanceGroups/cp/setNamedPorts",
                        {"fingerprint": g["fingerprint"], "namedPorts": [{"name": "https", "port": 6443},
                                                                         {"name": "talos", "port": 50000}]})
        st, err = self.emu.compute("POST", f"{P}/{Z}/instanceGroups/cp/setNamedPorts",
                                   {"fingerprint": g["fingerprint"], "namedPorts": []})
        self.assertEqual(st, 412)
        st, g2 = self.get(f"{Z}/instanceGroups/cp")
        self.assertEqual([p["port"] for p in g2["namedPorts"]], [6443, 50000])

    def test_forwarding_rule_takes_the_address(self):
        st, fr = self.get(f"{R}/forwardingRules/cp")
        self.assertEqual(fr["IPAddress"], "10.0.0.250")
        self.assertTrue(fr["backendService"].endswith(f"{R}/backendServices/cp"))
        st, a = self.get(f"{R}/addresses/vip")
        self.assertEqual(a["status"], "IN_USE")
        self.assertTrue(a["users"][0].endswith(f"{R}/forwardingRules/cp"))

    def test_references_must_exist_and_block_deletes(self):
        st, err = self.emu.compute("POST", f"{P}/{R}/backendServices", {
            "name": "broken", "healthChecks": [f"{R}/healthChecks/nope"]})
        self.assertEqual(st, 404)
        for path in (f"{R}/healthChecks/kube-apiserver", f"{R}/backendServices/cp",
                     f"{Z}/instanceGroups/cp"):
            st, err = self.emu.compute("DELETE", f"{P}/{path}")
            self.assertEqual(st, 400, path)
            self.assertEqual(err["error"]["errors"][0]["reason"], "resourceInUseByAnotherResource")
            self.assertIn("projects/demo-project/", err["error"]["message"])

    def test_health_check_validation(self):
        for body in ({"name": "x", "type": "TCP"},
                     {"name": "x", "type": "UDP", "tcpHealthCheck": {"port": 1}},
                     {"name": "x", "type": "TCP", "tcpHealthCheck": {"port": 1}, "timeoutSec": 10,
                      "checkIntervalSec": 5}):
            st, err = self.emu.compute("POST", f"{P}/global/healthChecks", body)
            self.assertEqual(st, 400, body)

    def test_firewall_defaults_and_validation(self):
        st, fw = self.get("global/firewalls/health-checks")
        self.assertEqual((fw["direction"], fw["priority"]), ("INGRESS", 1000))
        st, err = self.emu.compute("POST", f"{P}/global/firewalls", {
            "name": "bad", "network": "global/networks/talos", "allowed": [{"IPProtocol": "tcp"}],
            "sourceRanges": ["10.0.0.0/33"]})
        self.assertEqual(st, 400)

    def test_aggregated_lists(self):
        for coll, key in (("forwardingRules", "forwardingRules"), ("backendServices", "backendServices"),
                          ("healthChecks", "healthChecks"), ("instanceGroups", "instanceGroups"),
                          ("addresses", "addresses")):
            st, agg = self.get(f"aggregated/{coll}", includeAllScopes="True")
            self.assertEqual(st, 200)
            self.assertTrue(any(v.get(key) for v in agg["items"].values()), coll)
        st, lst = self.get(f"{Z}/instanceGroupManagers")
        self.assertEqual(st, 200)
        self.assertNotIn("items", lst)

    @unittest.skipUnless(os.path.exists(VALIDATE) and os.path.exists(SDK_PYTHON),
                         "gce-validate.py or the Cloud SDK's python is not installed")
    def test_shapes_validate(self):
        docs = [("HealthCheck", f"{R}/healthChecks/kube-apiserver"), ("InstanceGroup", f"{Z}/instanceGroups/cp"),
                ("BackendService", f"{R}/backendServices/cp"), ("ForwardingRule", f"{R}/forwardingRules/cp"),
                ("Address", f"{R}/addresses/vip"), ("Firewall", "global/firewalls/health-checks"),
                ("FirewallList", "global/firewalls"),
                ("ForwardingRuleAggregatedList", "aggregated/forwardingRules"),
                ("BackendServiceAggregatedList", "aggregated/backendServices"),
                ("HealthChecksAggregatedList", "aggregated/healthChecks"),
                ("InstanceGroupAggregatedList", "aggregated/instanceGroups"),
                ("AddressAggregatedList", "aggregated/addresses"),
                ("InstanceGroupManagerList", f"{Z}/instanceGroupManagers")]
        for type_name, path in docs:
            with self.subTest(type_name):
                st, doc = self.get(path)
                self.assertEqual(st, 200)
                r = subprocess.run([SDK_PYTHON, VALIDATE, type_name, "-"], input=json.dumps(doc).encode(),
                                   capture_output=True, timeout=60)
                self.assertEqual(r.returncode, 0, r.stdout.decode())
        st, doc = self.emu.compute("POST", f"{P}/{Z}/instanceGroups/cp/listInstances", {})
        r = subprocess.run([SDK_PYTHON, VALIDATE, "InstanceGroupsListInstances", "-"],
                           input=json.dumps(doc).encode(), capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode())


if __name__ == "__main__":
    unittest.main()
