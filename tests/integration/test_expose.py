"""talos-gcp expose: the ingress load balancer `up` made follows a NodePort Service's node port
(instance groups' named port, backend service portName, health check port), one-shot and with
--watch (through a node port change, a 410 Gone and a dropped stream); a Service that is not
NodePort, or missing, is exit 2 with nothing changed."""
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from emu import TALOS_GCP, Emu
from provision import Prov, mutations
import schema

FAST = ["--kubelet-delay", "50ms", "--ccm-delay", "20ms"]
P = "projects/demo-project"
GROUPS = ["zones/us-central1-a/instanceGroups/demo-workers-us-central1-a",
          "zones/us-central1-b/instanceGroups/demo-workers-us-central1-b"]
HC = "global/healthChecks/demo-ingress"
BS = "global/backendServices/demo-ingress"


class Expose(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="expose-")
        cls.emu = Emu(cls.tmp, extra=FAST).start()
        cls.p = Prov(cls.emu, cls.tmp)
        cls.p.write(cls.p.spec(controlPlane={"count": 1, "external": None}))
        r = cls.p.up()
        if r.returncode != 0:
            cls.emu.stop(check=False)
            raise AssertionError(f"up: {r.stderr}")

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def env(self):
        env = self.p.env()
        env["KUBECONFIG"] = self.emu.kubeconfig
        return env

    def expose(self, *args, path=None):
        return subprocess.run([TALOS_GCP, "expose", *args, "-f", path or self.p.path],
                              capture_output=True, text=True, timeout=60, env=self.env())

    def service(self, name, node_ports=(31000,), type="NodePort"):
        ports = [{"name": f"p{i}", "port": 80 + i, "targetPort": 8080} for i in range(len(node_ports))]
        if type == "NodePort":
            for p, n in zip(ports, node_ports):
                p["nodePort"] = n
        st, body = self.emu.kube("POST", "/api/v1/namespaces/default/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": type, "selector": {"app": name}, "ports": ports}})
        self.assertEqual(st, 201, body)
        self.addCleanup(self.emu.kube, "DELETE", f"/api/v1/namespaces/default/services/{name}")
        return body

    def set_node_port(self, name, port):
        st, body = self.emu.kube("PATCH", f"/api/v1/namespaces/default/services/{name}",
                                 {"spec": {"ports": [{"name": "p0", "port": 80, "targetPort": 8080,
                                                      "nodePort": port}]}},
                                 content_type="application/merge-patch+json")
        self.assertEqual(st, 200, body)

    def named_ports(self):
        out = []
        for g in GROUPS:
            st, body = self.emu.compute("GET", f"{P}/{g}")
            self.assertEqual(st, 200, body)
            out.append(sorted((n["name"], n["port"]) for n in body.get("namedPorts", [])))
        return out

    def hc_port(self):
        return self.emu.compute("GET", f"{P}/{HC}")[1]["tcpHealthCheck"]["port"]

    def points_at(self, port):
        return self.named_ports() == [[("tcp30080", port)]] * 2 and self.hc_port() == port

    def mutating(self):
        return mutations(self.emu.stats())

    def test_one_shot_and_again(self):
        self.service("one", (31001,))
        r = self.expose("--service", "default/one")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(self.points_at(31001))
        self.assertIn("node port 31001", r.stdout)
        for g in GROUPS:
            self.assertIn(f"{g} namedPorts[tcp30080]:", r.stdout)
        self.assertIn(f"{HC} port:", r.stdout)
        # the spec still says 30080: the warning names the place
        self.assertIn("cluster.yaml:", r.stderr)
        self.assertIn("ingress.targetPort", r.stderr)
        st, bs = self.emu.compute("GET", f"{P}/{BS}")
        self.assertEqual(bs["portName"], "tcp30080")
        before = self.mutating()
        r = self.expose("--service", "default/one", "-o", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        schema.validate("expose", doc)
        self.assertEqual((doc["service"], doc["port"], doc["nodePort"], doc["changes"], doc["changed"]),
                         ("default/one", 80, 31001, [], False))
        self.assertEqual(self.mutating(), before, "nothing to change, nothing changed")

    def test_fingerprints_are_current(self):
        """A group changed by someone else between the read and the write (stale fingerprint)
        is read again and written with the new one."""
        self.service("fp", (31002,))
        for g in GROUPS:
            self.emu.add_fault(method="POST", path=f"/compute/v1/{P}/{g}/setNamedPorts",
                               status=412, reason="conditionNotMet",
                               message="Supplied fingerprint does not match current instance group fingerprint.",
                               count=1)
        self.addCleanup(self.emu.clear_faults)
        r = self.expose("--service", "default/fp")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(self.points_at(31002))

    def test_watch_follows_the_node_port(self):
        self.service("watched", (31003,))
        wpath = "/api/v1/namespaces/default/services"
        # The first watch is answered "too old" (410: list again), the next one is dropped
        # (reconnect with backoff), the third one holds.
        self.emu.add_fault(method="GET", path=wpath, port="kube", count=1, body={
            "type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                        "message": "too old resource version: 1 (2)",
                                        "reason": "Expired", "code": 410}})
        self.emu.add_fault(method="GET", path=wpath, port="kube", count=1, reset=True)
        self.addCleanup(self.emu.clear_faults)
        proc = subprocess.Popen([TALOS_GCP, "expose", "--service", "default/watched", "--watch",
                                 "-o", "json", "-f", self.p.path], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env(), text=True)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))

        def line(timeout=15):
            r, _, _ = select.select([proc.stdout], [], [], timeout)
            self.assertTrue(r, "expose --watch printed nothing")
            doc = json.loads(proc.stdout.readline())
            schema.validate("expose", doc)
            return doc
        self.assertEqual(line()["nodePort"], 31003)
        self.assertTrue(self.points_at(31003))
        # Both faults fired: the watch is established now.
        self.emu.wait_until(lambda: not self.emu.control("GET", "faults")[1]["faults"], timeout=15,
                            what="the watch faults consumed")
        t0 = time.monotonic()
        self.set_node_port("watched", 31004)
        # "the backend service follows within 2 s"
        self.emu.wait_until(lambda: self.points_at(31004), timeout=2.0, interval=0.02,
                            what="the load balancer on the new node port")
        elapsed = time.monotonic() - t0
        doc = line()
        self.assertEqual((doc["nodePort"], doc["changed"]), (31004, True))
        self.assertEqual(len(doc["changes"]), 3, doc)
        # A change that is not NodePort any more is refused, and waits for the next change.
        st, _ = self.emu.kube("PATCH", "/api/v1/namespaces/default/services/watched",
                              {"spec": {"type": "ClusterIP", "ports": [{"name": "p0", "port": 80,
                                                                       "targetPort": 8080,
                                                                       "nodePort": None}]}},
                              content_type="application/merge-patch+json")
        self.assertEqual(st, 200)
        err = ""
        deadline = time.monotonic() + 15
        while "not NodePort" not in err and time.monotonic() < deadline:
            if select.select([proc.stderr], [], [], 0.5)[0]:
                err += proc.stderr.readline()
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=15), 0)
        err += proc.stderr.read()
        self.assertIn("listing again", err)
        # the 410, the dropped stream, and the watch that held
        self.assertGreaterEqual(self.emu.stats()["requests"].get(f"GET {wpath}", 0), 3)
        self.assertIn("not NodePort", err)
        self.assertTrue(self.points_at(31004), "a refused change changed nothing")
        self.assertLess(elapsed, 2.0)

    def test_not_nodeport_or_missing_is_exit_2_and_nothing_changed(self):
        self.service("plain", type="ClusterIP")
        self.service("two", (31010, 31011))
        before = self.mutating()
        for args, want in ((["--service", "default/plain"], "is type ClusterIP, not NodePort"),
                           (["--service", "default/nope"], "service default/nope not found"),
                           (["--service", "default/two"], "has 2 ports: choose one with --port"),
                           (["--service", "default/two", "--port", "8443"], "--port 8443: service default/two has no such port"),
                           (["--service", "nope"], "--service 'nope': want NAMESPACE/NAME"),
                           ([], "--service NAMESPACE/NAME is required")):
            with self.subTest(args):
                r = self.expose(*args)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn(want, r.stderr)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        r = self.expose("--service", "default/two", "--port", "p1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(self.points_at(31011))
        self.assertEqual(self.mutating() - before, 3)

    def test_passthrough_forwards_no_other_port(self):
        self.service("pt", (31020,))
        path = self.p.write(self.p.spec(controlPlane={"count": 1, "external": None},
                                        ingress={"type": "passthrough", "ports": [80], "targetPort": None}),
                            name="passthrough.yaml")
        before = self.mutating()
        r = self.expose("--service", "default/pt", path=path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("node port 31020 is not one of them", r.stderr)
        self.assertEqual(self.mutating(), before)


if __name__ == "__main__":
    unittest.main()
