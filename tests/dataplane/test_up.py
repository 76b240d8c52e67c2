"""A cluster made by `talos-gcp up`, by packets: the control plane through the VIP, the
health checks and the firewall rule they need (drift that `plan` shows and `up` repairs), and
the ingress TCP proxy to a NodePort Service on the workers.
"""
import http.client
import os
import socket
import ssl
import sys
import time
import unittest

from dp import DataplaneCase, connect, in_netns, reaches

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "netns"))
from agent import Agent  # noqa: E402

try:
    from provision import Prov  # tests/lib/provision.py (the provisioner issue)
except ImportError:  # pragma: no cover - until it is merged
    Prov = None

VIP = "10.0.0.2"
NODE_PORT = 30080


class UpCase(DataplaneCase):
    # up's health checks probe every 5 s and want 2 in a row; the same checks, 1 s apart.
    extra = ("--dataplane-probe-max", "1s")

    def setUp(self):
        if Prov is None:
            self.skipTest("talos-gcp up is not in this build (provisioner issue)")
        super().setUp()
        self.p = Prov(self.emu, self._tmp.name)
        # Two control planes, one worker, one zone: enough for every claim, small.
        self.p.write(self.p.spec(zones=["us-central1-a"],
                                 controlPlane={"count": 2, "external": None},
                                 workers={"count": 1}))
        r = self.p.up()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.cps = [self.wait_instance(f"demo-cp-{i}", lambda i: i["apiServer"])
                    for i in range(2)]
        self.worker = self.wait_instance("demo-worker-0", lambda i: i.get("podCIDR"))

    def health(self, service):
        _, body = self.emu.control("GET", "dataplane/health")
        return {p["instance"].rsplit("/", 1)[1]: p["healthState"] for p in body["probes"]
                if p["service"].endswith("/backendServices/" + service)}

    def get_health(self, service, scope, group):
        """backendServices.getHealth as a client sees it."""
        status, body = self.emu.compute(
            "POST", f"projects/demo-project/{scope}/backendServices/{service}/getHealth",
            {"group": f"projects/demo-project/zones/us-central1-a/instanceGroups/{group}"})
        self.assertEqual(status, 200, body)
        return {s["instance"].rsplit("/", 1)[1]: s["healthState"]
                for s in body.get("healthStatus", [])}

    def wait_health(self, service, want, timeout=20.0):
        deadline = time.monotonic() + timeout
        while self.health(service) != want:
            self.assertLess(time.monotonic(), deadline,
                            f"{service}: {self.health(service)}, want {want}")
            time.sleep(0.1)

    def api_via_vip(self, node, timeout=2.0):
        """GET /readyz through the VIP from inside node (certificate checked), or None."""
        ca, _, _ = self.emu.kube_files()
        sock = in_netns(self.ns(node), lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sock.settimeout(timeout)
        try:
            sock.connect((VIP, 6443))
            tsock = ssl.create_default_context(cafile=ca).wrap_socket(
                sock, server_hostname="kubernetes.default.svc")
            conn = http.client.HTTPSConnection(VIP, 6443, timeout=timeout)
            conn.sock = tsock
            conn.request("GET", "/readyz")
            return conn.getresponse().status
        except OSError:
            return None
        finally:
            sock.close()


class ControlPlaneUpTest(UpCase):
    def test_vip_health_checks_and_firewall_drift(self):
        cp = "demo-cp"
        # Talos has no guest agent: nothing makes the VIP local, every probe fails.
        self.wait_health(cp, {"demo-cp-0": "UNHEALTHY", "demo-cp-1": "UNHEALTHY"})
        self.assertIsNone(self.api_via_vip("demo-worker-0", timeout=1.0))
        for n in ("demo-cp-0", "demo-cp-1"):
            a = Agent(self.ns(n), "--vip", VIP + "/32", "--mode", "local-route",
                      "--interface", "eth0", "--metrics-addr", "off")
            self.addCleanup(a.kill)
            a.wait_ready()
        self.wait_health(cp, {"demo-cp-0": "HEALTHY", "demo-cp-1": "HEALTHY"})
        self.assertEqual(self.get_health(cp, "regions/us-central1", "demo-cp-us-central1-a"),
                         {"demo-cp-0": "HEALTHY", "demo-cp-1": "HEALTHY"})
        for node in ("demo-worker-0", "demo-cp-0"):
            self.assertEqual(self.api_via_vip(node), 200, node)
        # The health checks' firewall rule removed behind up's back.
        _, op = self.emu.compute(
            "DELETE", "projects/demo-project/global/firewalls/demo-health-checks")
        self.p_wait(op)
        self.wait_health(cp, {"demo-cp-0": "UNHEALTHY", "demo-cp-1": "UNHEALTHY"})
        self.assertEqual(self.get_health(cp, "regions/us-central1", "demo-cp-us-central1-a"),
                         {"demo-cp-0": "UNHEALTHY", "demo-cp-1": "UNHEALTHY"})
        code, plan = self.p.plan_json()
        self.assertEqual(code, 1)
        self.assertIn(("create", "global/firewalls/demo-health-checks"),
                      {(c["action"], c["key"]) for c in plan["changes"]})
        r = self.p.up()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_health(cp, {"demo-cp-0": "HEALTHY", "demo-cp-1": "HEALTHY"})
        self.assertEqual(self.api_via_vip("demo-worker-0"), 200)

    def p_wait(self, op):
        while op.get("status") != "DONE":
            _, op = self.emu.request("POST", op["selfLink"] + "/wait")
        self.assertNotIn("error", op)


class IngressUpTest(UpCase):
    def test_tcp_proxy_to_a_node_port_service(self):
        pod = self.worker["podCIDR"].rsplit(".", 1)[0] + ".10"
        web = self.server("demo-worker-0", 8080, addr=pod)
        for method, path, body in (
                ("POST", "/api/v1/namespaces/default/services", {
                    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                    "spec": {"type": "NodePort", "ports": [
                        {"name": "http", "port": 80, "targetPort": 8080,
                         "nodePort": NODE_PORT}]}}),
                ("POST", "/api/v1/namespaces/default/endpoints", {
                    "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
                    "subsets": [{"addresses": [{"ip": pod, "nodeName": "demo-worker-0"}],
                                 "ports": [{"name": "http", "port": 8080}]}]})):
            status, out = self.emu.kube(method, path, body)
            self.assertIn(status, (200, 201), out)
        self.wait_health("demo-ingress", {"demo-worker-0": "HEALTHY"})
        _, addr = self.emu.compute("GET", "projects/demo-project/global/addresses/demo-ingress")
        inet = self.dataplane()["namespaces"]["internet"]
        self.wait_reach(inet, addr["address"], 80, what="the ingress TCP proxy")
        self.assertEqual(connect(inet, addr["address"], 80), "demo-worker-0")
        # The pod saw the proxy (from the proxy ranges), through the node port.
        self.assertTrue(web.accepted[-1][0].startswith(("35.191.", "130.211.", "10.0.0.")))
        # The node port moved: the proxy's health check fails, the ingress stops working.
        self.emu.kube("DELETE", "/api/v1/namespaces/default/services/web")
        self.wait_health("demo-ingress", {"demo-worker-0": "UNHEALTHY"})
        self.wait_reach(inet, addr["address"], 80, want=False, what="ingress without a backend")


if __name__ == "__main__":
    unittest.main()
