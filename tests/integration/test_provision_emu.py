"""talos-gcp-emu: the resources `talos-gcp up` creates beyond the control-plane ILB (images,
routers and NATs, target TCP proxies), the update/patch/getHealth methods, forwarding-rule
targets, resourceInUseByAnotherResource, and the operation latency (--operation-delay)."""
import datetime
import json
import os
import shutil
import subprocess
import tempfile
import threading
import unittest

from emu import Emu

P = "projects/demo-project"
R = "regions/us-central1"
Z = "zones/us-central1-a"
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
VALIDATE = os.environ.get("GCE_VALIDATE",
                          os.path.join(SOURCE_ROOT, "..", "shared", "tools", "gce-validate.py"))
SDK_PYTHON = "/usr/lib/google-cloud-sdk/platform/bundledpythonunix/bin/python3"
RAW = "https://storage.googleapis.com/talos-images/gcp-amd64.raw.tar.gz"


def reason(body):
    return body["error"]["errors"][0]["reason"]


def ts(text):
    return datetime.datetime.fromisoformat(text.replace("-00:00", "+00:00"))


class World(unittest.TestCase):
    """A network, a subnet, a Talos image, a control plane and a worker (Nodes registered)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-prov-")
        e = cls.emu = Emu(cls.tmp, extra=("--kubelet-delay", "0s", "--ccm-delay", "0s")).start()
        e.create_network("talos")
        e.create_subnet("nodes", cidr="10.0.0.0/24", pods="172.20.0.0/16", services="10.96.0.0/12")
        body = Emu.instance_body("cp-0")
        body["metadata"]["items"][0]["value"] = "machine:\n  type: controlplane\n"
        e.insert(f"{Z}/instances", body)
        e.create_instance("worker-0")
        e.insert(f"{Z}/instanceGroups", {"name": "cp", "network": "global/networks/talos",
                                         "namedPorts": [{"name": "tcp6443", "port": 6443}]})
        e.insert(f"{Z}/instanceGroups/cp/addInstances", {"instances": [{"instance": f"{Z}/instances/cp-0"}]})
        e.insert(f"{Z}/instanceGroups", {"name": "workers", "network": "global/networks/talos",
                                         "namedPorts": [{"name": "ingress", "port": 30080}]})
        e.insert(f"{Z}/instanceGroups/workers/addInstances",
                 {"instances": [{"instance": f"{Z}/instances/worker-0"}]})
        e.wait_until(lambda: e.node("cp-0") and e.node("worker-0"), what="Nodes registered")

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def get(self, path, **q):
        return self.emu.compute("GET", f"{P}/{path}", query=q or None)

    def call(self, method, path, body=None, wait=True):
        st, op = self.emu.compute(method, f"{P}/{path}", body)
        if st == 200 and wait and op.get("kind") == "compute#operation":
            op = self.emu.wait_op(op)
        return st, op


class TestImages(World):
    def test_insert_from_storage_uri_both_forms(self):
        for name, uri in (("img-a", RAW),
                          ("img-b", "https://storage.googleapis.com/storage/v1/b/bkt/o/talos.raw.tar.gz")):
            self.emu.insert("global/images", {"name": name, "family": "talos-test",
                                              "rawDisk": {"source": uri}})
            st, img = self.get(f"global/images/{name}")
            self.assertEqual(st, 200)
            self.assertEqual((img["status"], img["sourceType"], img["rawDisk"]["containerType"]),
                             ("READY", "RAW", "TAR"))
        st, fam = self.get("global/images/family/talos-test")
        self.assertEqual((st, fam["name"]), (200, "img-b"))
        st, lst = self.get("global/images")
        self.assertTrue({"img-a", "img-b", "talos"} <= {i["name"] for i in lst["items"]})
        st, _ = self.get("global/images/family/none")
        self.assertEqual(st, 404)

    def test_bad_sources_refused(self):
        for body in ({"name": "x1", "rawDisk": {"source": "gs://bkt/obj"}},
                     {"name": "x2", "rawDisk": {"source": "https://example.com/x.tar.gz"}},
                     {"name": "x3"},
                     {"name": "x4", "rawDisk": {"source": RAW}, "sourceImage": "global/images/talos"}):
            st, err = self.call("POST", "global/images", body)
            self.assertEqual(st, 400, body)
        st, err = self.call("POST", "global/images", {"name": "x5", "sourceImage": "global/images/none"})
        self.assertEqual(st, 404)

    def test_instance_needs_its_image(self):
        body = Emu.instance_body("no-image")
        body["disks"][0]["initializeParams"]["sourceImage"] = f"{P}/global/images/missing"
        st, err = self.call("POST", f"{Z}/instances", body)
        self.assertEqual(st, 404)
        self.assertIn("images/missing", err["error"]["message"])
        self.assertEqual(self.get(f"{Z}/instances/no-image")[0], 404)
        body["disks"][0]["initializeParams"]["sourceImage"] = "global/images/talos"
        body["disks"][0]["initializeParams"]["diskSizeGb"] = "5"
        st, err = self.call("POST", f"{Z}/instances", body)
        self.assertEqual(st, 400)
        self.assertIn("smaller than the image", err["error"]["message"])
        # Google's public images are accepted as data.
        body["disks"][0]["initializeParams"] = {
            "sourceImage": "projects/debian-cloud/global/images/family/debian-12"}
        st, op = self.call("POST", f"{Z}/instances", body)
        self.assertEqual(st, 200, op)
        self.assertNotIn("error", op)
        self.call("DELETE", f"{Z}/instances/no-image")


class TestRouters(World):
    def test_router_with_nat_patch_update_delete(self):
        st, op = self.call("POST", f"{R}/routers", {
            "name": "r1", "network": "global/networks/talos",
            "nats": [{"name": "nat1", "natIpAllocateOption": "AUTO_ONLY",
                      "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_IP_RANGES"}]})
        self.assertEqual(st, 200, op)
        st, r = self.get(f"{R}/routers/r1")
        self.assertEqual(r["nats"][0]["type"], "PUBLIC")
        self.assertTrue(r["network"].endswith("/global/networks/talos"))
        # A second NAT over the same subnetworks is refused; a list one on its own is fine.
        st, err = self.call("PATCH", f"{R}/routers/r1", {"nats": r["nats"] + [
            {"name": "nat2", "natIpAllocateOption": "AUTO_ONLY",
             "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_PRIMARY_IP_RANGES"}]})
        self.assertEqual(st, 400, err)
        st, op = self.call("PATCH", f"{R}/routers/r1", {"nats": [
            {"name": "nat1", "natIpAllocateOption": "AUTO_ONLY",
             "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
             "subnetworks": [{"name": f"{R}/subnetworks/nodes",
                              "sourceIpRangesToNat": ["LIST_OF_SECONDARY_IP_RANGES"],
                              "secondaryIpRangeNames": ["pods"]}]}]})
        self.assertEqual(st, 200, op)
        self.assertNotIn("error", op)
        st, r = self.get(f"{R}/routers/r1")
        self.assertTrue(r["nats"][0]["subnetworks"][0]["name"].endswith(f"{R}/subnetworks/nodes"))
        # The subnet is used by the NAT; the network by the router.
        for path in (f"{R}/subnetworks/nodes", "global/networks/talos"):
            st, err = self.call("DELETE", path)
            self.assertEqual((st, reason(err)), (400, "resourceInUseByAnotherResource"), path)
        st, op = self.call("PUT", f"{R}/routers/r1", {"name": "r1", "network": r["network"]})
        self.assertEqual(st, 200, op)
        self.assertNotIn("nats", self.get(f"{R}/routers/r1")[1])
        st, op = self.call("DELETE", f"{R}/routers/r1")
        self.assertEqual(st, 200)
        self.assertEqual(self.get(f"{R}/routers/r1")[0], 404)

    def test_nat_validation(self):
        cases = [
            {"name": "n", "natIpAllocateOption": "MANUAL_ONLY",
             "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_IP_RANGES"},
            {"name": "n", "natIpAllocateOption": "MANUAL_ONLY", "natIps": [f"{R}/addresses/none"],
             "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_IP_RANGES"},
            {"name": "n", "natIpAllocateOption": "AUTO_ONLY",
             "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS"},
            {"name": "n", "natIpAllocateOption": "AUTO_ONLY",
             "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
             "subnetworks": [{"name": f"{R}/subnetworks/nodes",
                              "sourceIpRangesToNat": ["LIST_OF_SECONDARY_IP_RANGES"],
                              "secondaryIpRangeNames": ["nope"]}]},
            {"name": "n", "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_IP_RANGES"},
        ]
        for nat in cases:
            st, err = self.call("POST", f"{R}/routers", {"name": "rbad", "network": "global/networks/talos",
                                                        "nats": [nat]})
            self.assertIn(st, (400, 404), nat)
        st, err = self.call("POST", f"{R}/routers", {"name": "rbad", "network": "global/networks/none"})
        self.assertEqual(st, 404)

    def test_manual_nat_address_in_use(self):
        self.emu.insert(f"{R}/addresses", {"name": "nat-ip"})
        self.emu.insert(f"{R}/routers", {
            "name": "r2", "network": "global/networks/talos",
            "nats": [{"name": "nat", "natIpAllocateOption": "MANUAL_ONLY", "natIps": [f"{R}/addresses/nat-ip"],
                      "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
                      "subnetworks": [{"name": f"{R}/subnetworks/nodes",
                                       "sourceIpRangesToNat": ["PRIMARY_IP_RANGE"]}]}]})
        st, err = self.call("DELETE", f"{R}/addresses/nat-ip")
        self.assertEqual((st, reason(err)), (400, "resourceInUseByAnotherResource"))
        self.call("DELETE", f"{R}/routers/r2")
        st, op = self.call("DELETE", f"{R}/addresses/nat-ip")
        self.assertEqual(st, 200)


class TestProxyAndRules(World):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        e = cls.emu
        e.insert("global/healthChecks", {"name": "ing", "type": "TCP", "tcpHealthCheck": {"port": 30080}})
        e.insert("global/backendServices", {
            "name": "ing", "protocol": "TCP", "loadBalancingScheme": "EXTERNAL", "portName": "ingress",
            "timeoutSec": 300, "healthChecks": ["global/healthChecks/ing"],
            "backends": [{"group": f"{Z}/instanceGroups/workers"}]})
        e.insert("global/backendServices", {"name": "http-bs", "protocol": "HTTP"})
        e.insert("global/targetTcpProxies", {"name": "ing", "service": "global/backendServices/ing"})
        e.insert("global/addresses", {"name": "ing"})

    def test_proxy_needs_a_tcp_external_service(self):
        st, p = self.get("global/targetTcpProxies/ing")
        self.assertEqual(p["proxyHeader"], "NONE")
        for body in ({"name": "p1"}, {"name": "p2", "service": "global/backendServices/http-bs"}):
            st, err = self.call("POST", "global/targetTcpProxies", body)
            self.assertEqual(st, 400, body)
        st, err = self.call("POST", "global/targetTcpProxies",
                            {"name": "p3", "service": "global/backendServices/none"})
        self.assertEqual(st, 404)

    def test_set_proxy_header_and_backend_service(self):
        st, op = self.call("POST", "global/targetTcpProxies/ing/setProxyHeader", {"proxyHeader": "PROXY_V1"})
        self.assertEqual(st, 200, op)
        self.assertEqual(self.get("global/targetTcpProxies/ing")[1]["proxyHeader"], "PROXY_V1")
        self.call("POST", "global/targetTcpProxies/ing/setProxyHeader", {"proxyHeader": "NONE"})
        st, err = self.call("POST", "global/targetTcpProxies/ing/setBackendService",
                            {"service": "global/backendServices/http-bs"})
        self.assertEqual(st, 400)
        st, op = self.call("POST", "global/targetTcpProxies/ing/setBackendService",
                           {"service": "global/backendServices/ing"})
        self.assertEqual(st, 200, op)

    def test_rule_targets_validated(self):
        good = {"name": "r-ok", "target": "global/targetTcpProxies/ing", "IPAddress": "global/addresses/ing",
                "IPProtocol": "TCP", "portRange": "80"}
        bad = [({"target": "global/targetTcpProxies/none"}, 404),
               ({"target": "global/targetPools/none"}, 404),
               ({"IPProtocol": "UDP"}, 400),
               ({"portRange": "80-81"}, 400),
               ({"loadBalancingScheme": "INTERNAL"}, 400),
               ({"target": None, "backendService": "global/backendServices/ing"}, 400),
               ({"target": None}, 400)]
        for change, status in bad:
            body = dict(good, name="r-bad", **change)
            body = {k: v for k, v in body.items() if v is not None}
            st, err = self.call("POST", "global/forwardingRules", body)
            self.assertEqual(st, status, change)
        st, op = self.call("POST", "global/forwardingRules", good)
        self.assertEqual(st, 200, op)
        self.assertNotIn("error", op)
        st, err = self.call("DELETE", "global/targetTcpProxies/ing")
        self.assertEqual((st, reason(err)), (400, "resourceInUseByAnotherResource"))
        st, err = self.call("DELETE", "global/backendServices/ing")
        self.assertEqual((st, reason(err)), (400, "resourceInUseByAnotherResource"))
        self.call("DELETE", "global/forwardingRules/r-ok")

    def test_regional_rule_backend_service_must_match(self):
        self.emu.insert(f"{R}/healthChecks", {"name": "cp", "type": "HTTPS",
                                              "httpsHealthCheck": {"port": 6443, "requestPath": "/readyz"}})
        self.emu.insert(f"{R}/backendServices", {
            "name": "cp", "loadBalancingScheme": "INTERNAL", "protocol": "TCP",
            "network": "global/networks/talos", "healthChecks": [f"{R}/healthChecks/cp"],
            "backends": [{"group": f"{Z}/instanceGroups/cp"}]})
        base = {"name": "cp-bad", "loadBalancingScheme": "INTERNAL", "backendService": f"{R}/backendServices/cp",
                "subnetwork": f"{R}/subnetworks/nodes", "ports": ["6443"], "IPProtocol": "TCP"}
        for change in ({"loadBalancingScheme": "EXTERNAL", "subnetwork": None},
                       {"backendService": "global/backendServices/ing"}):
            body = {k: v for k, v in dict(base, **change).items() if v is not None}
            st, err = self.call("POST", f"{R}/forwardingRules", body)
            self.assertEqual(st, 400, change)

    def test_get_health(self):
        st, h = self.call("POST", "global/backendServices/ing/getHealth", {"group": f"{Z}/instanceGroups/workers"})
        self.assertEqual(st, 200, h)
        self.assertEqual([s["healthState"] for s in h["healthStatus"]], ["UNHEALTHY"])
        self.assertEqual(h["healthStatus"][0]["port"], 30080)
        st, svc = self.emu.kube("POST", "/api/v1/namespaces/default/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "ingress"},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}})
        self.assertEqual(st, 201, svc)
        try:
            st, h = self.call("POST", "global/backendServices/ing/getHealth",
                              {"group": f"{Z}/instanceGroups/workers"})
            self.assertEqual([s["healthState"] for s in h["healthStatus"]], ["HEALTHY"])
            self.assertEqual(h["healthStatus"][0]["ipAddress"],
                             self.emu.get_instance("worker-0")["networkInterfaces"][0]["networkIP"])
        finally:
            self.emu.kube("DELETE", "/api/v1/namespaces/default/services/ingress")
        st, err = self.call("POST", "global/backendServices/ing/getHealth", {"group": f"{Z}/instanceGroups/cp"})
        self.assertEqual(st, 400)

    def test_control_plane_health_follows_the_node(self):
        self.emu.insert(f"{R}/healthChecks", {"name": "cp-h", "type": "HTTPS",
                                              "httpsHealthCheck": {"port": 6443, "requestPath": "/readyz"}})
        self.emu.insert(f"{R}/healthChecks", {"name": "apid", "type": "TCP", "tcpHealthCheck": {"port": 50000}})
        for name, hc in (("cp-h", "cp-h"), ("cp-apid", "apid")):
            self.emu.insert(f"{R}/backendServices", {
                "name": name, "loadBalancingScheme": "INTERNAL", "protocol": "TCP",
                "network": "global/networks/talos", "healthChecks": [f"{R}/healthChecks/{hc}"],
                "backends": [{"group": f"{Z}/instanceGroups/cp"}, {"group": f"{Z}/instanceGroups/workers"}]})

        def states(bs, group="cp"):
            st, h = self.call("POST", f"{R}/backendServices/{bs}/getHealth", {"group": f"{Z}/instanceGroups/{group}"})
            self.assertEqual(st, 200, h)
            return [s["healthState"] for s in h["healthStatus"]]

        self.assertEqual(states("cp-h"), ["HEALTHY"])
        self.assertEqual(states("cp-h", "workers"), ["UNHEALTHY"])  # no API server on a worker
        # The Node goes NotReady: 6443 fails, apid (the origin's health check) still passes.
        node = self.emu.node("cp-0")
        conds = [dict(c, status="False") if c["type"] == "Ready" else c
                 for c in node["status"]["conditions"]]
        st, body = self.emu.kube("PATCH", "/api/v1/nodes/cp-0/status", {"status": {"conditions": conds}},
                                 content_type="application/merge-patch+json")
        self.assertEqual(st, 200, body)
        try:
            self.assertEqual(states("cp-h"), ["UNHEALTHY"])
            self.assertEqual(states("cp-apid"), ["HEALTHY"])
        finally:
            conds = [dict(c, status="True") if c["type"] == "Ready" else c for c in conds]
            self.emu.kube("PATCH", "/api/v1/nodes/cp-0/status", {"status": {"conditions": conds}},
                          content_type="application/merge-patch+json")


class TestUpdates(World):
    def test_backend_service_update_and_patch_need_the_fingerprint(self):
        self.emu.insert("global/healthChecks", {"name": "u-hc", "type": "TCP", "tcpHealthCheck": {"port": 80}})
        self.emu.insert("global/backendServices", {"name": "u", "protocol": "TCP",
                                                   "healthChecks": ["global/healthChecks/u-hc"]})
        st, bs = self.get("global/backendServices/u")
        fp = bs["fingerprint"]
        st, err = self.call("PATCH", "global/backendServices/u", {"timeoutSec": 60})
        self.assertEqual((st, reason(err)), (412, "conditionNotMet"))
        st, op = self.call("PATCH", "global/backendServices/u",
                           {"fingerprint": fp, "timeoutSec": 60, "portName": "ingress",
                            "backends": [{"group": f"{Z}/instanceGroups/workers"}]})
        self.assertEqual(st, 200, op)
        self.assertNotIn("error", op)
        st, bs = self.get("global/backendServices/u")
        self.assertEqual((bs["timeoutSec"], bs["portName"]), (60, "ingress"))
        self.assertNotEqual(bs["fingerprint"], fp)
        self.assertTrue(bs["backends"][0]["group"].endswith("/instanceGroups/workers"))
        st, err = self.call("PATCH", "global/backendServices/u", {"fingerprint": fp, "timeoutSec": 1})
        self.assertEqual(st, 412)
        st, err = self.call("PATCH", "global/backendServices/u",
                            {"fingerprint": bs["fingerprint"], "loadBalancingScheme": "INTERNAL"})
        self.assertEqual(st, 400)
        st, err = self.call("PATCH", "global/backendServices/u",
                            {"fingerprint": bs["fingerprint"], "healthChecks": ["global/healthChecks/none"]})
        self.assertEqual(st, 404)
        # update replaces: what the body omits goes back to the defaults.
        body = dict(bs)
        body.pop("portName")
        st, op = self.call("PUT", "global/backendServices/u", body)
        self.assertEqual(st, 200, op)
        st, bs2 = self.get("global/backendServices/u")
        self.assertNotIn("portName", bs2)
        # Two updates with one fingerprint: the second fails, at once (412) or, when it was
        # accepted before the first completed, in its Operation.
        st, op1 = self.call("PATCH", "global/backendServices/u",
                            {"fingerprint": bs2["fingerprint"], "timeoutSec": 10}, wait=False)
        st2, op2 = self.call("PATCH", "global/backendServices/u",
                             {"fingerprint": bs2["fingerprint"], "timeoutSec": 20}, wait=False)
        self.assertNotIn("error", self.emu.wait_op(op1))
        if st2 == 200:
            self.assertEqual(self.emu.wait_op(op2)["error"]["errors"][0]["code"], "CONDITION_NOT_MET")
        else:
            self.assertEqual(st2, 412)
        self.assertEqual(self.get("global/backendServices/u")[1]["timeoutSec"], 10)

    def test_health_check_and_firewall_patch(self):
        self.emu.insert("global/healthChecks", {"name": "p-hc", "type": "TCP", "tcpHealthCheck": {"port": 80}})
        st, op = self.call("PATCH", "global/healthChecks/p-hc",
                           {"type": "HTTPS", "tcpHealthCheck": None,
                            "httpsHealthCheck": {"port": 6443, "requestPath": "/readyz"}})
        self.assertEqual(st, 200, op)
        st, hc = self.get("global/healthChecks/p-hc")
        self.assertEqual((hc["type"], hc["httpsHealthCheck"]["port"]), ("HTTPS", 6443))
        self.assertNotIn("tcpHealthCheck", hc)
        st, err = self.call("PATCH", "global/healthChecks/p-hc", {"timeoutSec": 50})
        self.assertEqual(st, 400)  # timeoutSec > checkIntervalSec
        self.emu.insert("global/firewalls", {"name": "p-fw", "network": "global/networks/talos",
                                             "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
                                             "sourceRanges": ["35.235.240.0/20"]})
        st, op = self.call("PATCH", "global/firewalls/p-fw", {"sourceRanges": ["10.0.0.0/24"]})
        self.assertEqual(st, 200, op)
        self.assertEqual(self.get("global/firewalls/p-fw")[1]["sourceRanges"], ["10.0.0.0/24"])
        self.emu.create_network("other")
        st, err = self.call("PATCH", "global/firewalls/p-fw", {"network": "global/networks/other"})
        self.assertEqual(st, 400)
        st, op = self.call("PUT", "global/firewalls/p-fw", {
            "name": "p-fw", "allowed": [{"IPProtocol": "tcp", "ports": ["6443"]}],
            "sourceRanges": ["35.191.0.0/16", "130.211.0.0/22"]})
        self.assertEqual(st, 200, op)
        fw = self.get("global/firewalls/p-fw")[1]
        self.assertEqual(fw["allowed"], [{"IPProtocol": "tcp", "ports": ["6443"]}])
        self.assertTrue(fw["network"].endswith("/global/networks/talos"))

    def test_subnet_in_use_by_address_and_group(self):
        self.emu.insert(f"{R}/addresses", {"name": "vip", "addressType": "INTERNAL", "address": "10.0.0.200",
                                           "subnetwork": f"{R}/subnetworks/nodes"})
        st, err = self.call("DELETE", f"{R}/subnetworks/nodes")
        self.assertEqual((st, reason(err)), (400, "resourceInUseByAnotherResource"))
        self.assertIn("addresses/vip", err["error"]["message"])
        self.call("DELETE", f"{R}/addresses/vip")
        # The instance groups keep the network (and their instances the subnet) in use.
        st, err = self.call("DELETE", "global/networks/talos")
        self.assertEqual((st, reason(err)), (400, "resourceInUseByAnotherResource"))


class TestOperationDelay(unittest.TestCase):
    """--operation-delay: Operations stay RUNNING that long, complete independently, and
    operations/wait returns at completion."""

    def test_operations_run_concurrently(self):
        tmp = tempfile.mkdtemp(prefix="emu-delay-")
        try:
            with Emu(tmp, kube=False, extra=("--operation-delay", "400ms")) as e:
                ops = []
                st, op = e.compute("POST", f"{P}/global/networks", {"name": "n", "autoCreateSubnetworks": False})
                self.assertEqual(op["status"], "RUNNING")
                st, got = e.compute("GET", op["selfLink"].split("/compute/v1/", 1)[1])
                self.assertEqual(got["status"], "RUNNING")
                self.assertEqual(e.compute("GET", f"{P}/global/networks/n")[0], 404)
                done = e.wait_op(op)
                self.assertEqual(done["status"], "DONE")
                # Timestamps have millisecond resolution.
                self.assertGreaterEqual((ts(done["endTime"]) - ts(done["startTime"])).total_seconds(), 0.398)
                for i in range(6):
                    st, op = e.compute("POST", f"{P}/global/firewalls", {
                        "name": f"fw-{i}", "network": "global/networks/n", "allowed": [{"IPProtocol": "tcp"}]})
                    self.assertEqual(st, 200, op)
                    ops.append(op)
                results = [None] * len(ops)

                def wait(i):
                    results[i] = e.wait_op(ops[i])

                threads = [threading.Thread(target=wait, args=(i,)) for i in range(len(ops))]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                # Every operation started before any finished: they ran side by side.
                self.assertLess(max(ts(r["startTime"]) for r in results),
                                min(ts(r["endTime"]) for r in results))
                for r in results:
                    self.assertGreaterEqual((ts(r["endTime"]) - ts(r["startTime"])).total_seconds(), 0.398)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


@unittest.skipUnless(os.path.exists(VALIDATE) and os.path.exists(SDK_PYTHON),
                     "gce-validate.py or the Cloud SDK's python is not installed")
class TestShapes(World):
    def test_shapes_validate(self):
        e = self.emu
        e.insert(f"{R}/routers", {"name": "shape", "network": "global/networks/talos", "bgp": {"asn": 64512},
                                  "nats": [{"name": "nat", "natIpAllocateOption": "AUTO_ONLY",
                                            "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_IP_RANGES"}]})
        e.insert("global/healthChecks", {"name": "shape", "type": "TCP", "tcpHealthCheck": {"port": 6443}})
        e.insert("global/backendServices", {"name": "shape", "protocol": "TCP", "portName": "tcp6443",
                                            "healthChecks": ["global/healthChecks/shape"],
                                            "backends": [{"group": f"{Z}/instanceGroups/cp"}]})
        e.insert("global/targetTcpProxies", {"name": "shape", "service": "global/backendServices/shape"})
        st, health = self.call("POST", "global/backendServices/shape/getHealth", {"group": f"{Z}/instanceGroups/cp"})
        docs = [("Image", "global/images/talos"), ("ImageList", "global/images"),
                ("Router", f"{R}/routers/shape"), ("RouterAggregatedList", "aggregated/routers"),
                ("TargetTcpProxy", "global/targetTcpProxies/shape"),
                ("TargetTcpProxyAggregatedList", "aggregated/targetTcpProxies"),
                ("BackendService", "global/backendServices/shape")]
        wrong = []
        for type_name, path in docs + [("BackendServiceGroupHealth", None)]:
            doc = health if path is None else self.get(path)[1]
            r = subprocess.run([SDK_PYTHON, VALIDATE, type_name, "-"], input=json.dumps(doc).encode(),
                               capture_output=True, timeout=60)
            if r.returncode != 0:
                wrong.append(f"{type_name}: {r.stdout.decode()} {json.dumps(doc)}")
        self.assertEqual(wrong, [])


if __name__ == "__main__":
    unittest.main()
