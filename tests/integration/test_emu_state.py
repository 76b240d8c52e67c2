"""talos-gcp-emu --state FILE (an SQLite database) and /_emu/state: the same world after a
restart, every acknowledged change committed before its answer, a JSON state imported once."""
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import unittest

from emu import EMU, Emu

P = "projects/demo-project"


def node_body(name):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


class StateTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="emu-state-")
        self.state = os.path.join(self.tmp, "state.db")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, *extra, kube=False):
        return Emu(self.tmp, kube=kube, extra=("--state", self.state) + extra).start()

    def world(self, emu):
        """What a client can observe: instances (ids, fingerprints, aliases), networks,
        subnets and operations."""
        out = {}
        for path in ("aggregated/instances", "global/networks", "aggregated/subnetworks",
                     "aggregated/operations"):
            status, body = emu.compute("GET", f"{P}/{path}")
            self.assertEqual(status, 200)
            out[path] = body.get("items")
        return json.loads(json.dumps(out).replace(emu.cloud_url, "URL"))

    def test_restart_gives_the_same_world(self):
        emu = self.start()
        emu.create_network("talos")
        emu.create_subnet("nodes")
        emu.create_instance("node-a")
        emu.create_instance("node-b", alias="172.21.7.0/24")
        emu.set_aliases("node-a", [])
        before = self.world(emu)
        emu.stop()
        self.assertEqual(stat.S_IMODE(os.stat(self.state).st_mode), 0o600)
        with open(self.state, "rb") as f:
            self.assertEqual(f.read(16), b"SQLite format 3\0")
        # A clean stop leaves the database alone: no -wal, -shm or temporary file.
        self.assertEqual(sorted(f for f in os.listdir(self.tmp) if f.startswith("state")), ["state.db"])

        emu = self.start()  # a new port, the same world
        try:
            self.assertEqual(self.world(emu), before)
            inst = emu.get_instance("node-b")
            self.assertTrue(inst["selfLink"].startswith(emu.cloud_url))
            # The address index came back too: the range is still taken.
            op = emu.create_instance("node-c", alias="172.21.7.0/24", wait=False)
            op = emu.wait_op(op)
            self.assertEqual(op["error"]["errors"][0]["code"], "IP_IN_USE_BY_ANOTHER_RESOURCE")
            # Fingerprints survived: the one read before the restart still works.
            fp = before["aggregated/instances"]["zones/us-central1-a"]["instances"][0]["networkInterfaces"][0]["fingerprint"]
            status, op = emu.set_aliases("node-a", [("pods", "172.21.9.0/24")], fingerprint=fp)
            self.assertEqual(status, 200)
            self.assertFalse(op.get("error"))
            emu.check_state()
        finally:
            emu.stop()

    def test_acknowledged_is_saved_without_a_clean_stop(self):
        """kill -9 right after the answers: the Operation, its requestId and the pending
        insert were committed before the client read them."""
        emu = self.start("--operation-delay", "30s")
        rid = "6f1b7e8a-3c2d-4e5f-9a0b-1c2d3e4f5a6b"
        status, op = emu.compute("POST", f"{P}/global/networks", {"name": "talos", "autoCreateSubnetworks": False},
                                 query={"requestId": rid})
        self.assertEqual((status, op["status"]), (200, "RUNNING"))
        emu.kill()
        emu = self.start("--operation-delay", "100ms")
        try:
            status, again = emu.compute("POST", f"{P}/global/networks",
                                        {"name": "talos", "autoCreateSubnetworks": False}, query={"requestId": rid})
            self.assertEqual((status, again["name"]), (200, op["name"]))  # the same Operation
            done = emu.wait_op(again)
            self.assertEqual(done["status"], "DONE")
            self.assertFalse(done.get("error"))
            self.assertEqual(emu.compute("GET", f"{P}/global/networks/talos")[0], 200)
        finally:
            emu.stop()
        emu = self.start()
        try:  # DONE stays DONE
            status, op2 = emu.compute("GET", f"{P}/global/operations/{op['name']}")
            self.assertEqual((status, op2["status"]), (200, "DONE"))
        finally:
            emu.stop()

    def test_get_and_put_state(self):
        emu = self.start()
        try:
            emu.create_network("talos")
            status, doc = emu.control("GET", "state")
            self.assertEqual((status, doc["version"]), (200, 1))
            emu.create_network("second")
            status, _ = emu.control("PUT", "state", {"version": 1, "compute": doc["compute"]})
            self.assertEqual(status, 200)
            self.assertEqual(emu.compute("GET", f"{P}/global/networks/second")[0], 404)
            self.assertEqual(emu.compute("GET", f"{P}/global/networks/talos")[0], 200)
            emu.check_state()  # the database was rewritten from the loaded state
            status, body = emu.control("PUT", "state", {"version": 7})
            self.assertEqual(status, 400)
            status, body = emu.control("PUT", "state", {"version": 1, "compute": {"collections": {"zones": []}}})
            self.assertEqual(status, 400)
            status, saved = emu.control("POST", "state/save")
            self.assertEqual((status, saved), (200, {"saved": self.state}))
            status, st = emu.control("GET", "state/status")
            self.assertEqual((status, st["path"], st["unsaved"], st["failures"]), (200, self.state, False, 0))
            self.assertGreater(st["commits"], 0)
        finally:
            emu.stop()
        emu = self.start()
        try:
            self.assertEqual(emu.compute("GET", f"{P}/global/networks/second")[0], 404)
            self.assertEqual(emu.compute("GET", f"{P}/global/networks/talos")[0], 200)
        finally:
            emu.stop()

    def test_json_state_is_imported_once(self):
        """A state file of the JSON format becomes a database; the original is kept."""
        with Emu(self.tmp, kube=True, ccm="off") as emu:
            emu.create_network("talos")
            emu.kube("POST", "/api/v1/nodes", node_body("imported"))
            status, doc = emu.control("GET", "state")
            self.assertEqual(status, 200)
        text = json.dumps(doc)
        with open(self.state, "w") as f:
            f.write(text)
        emu = self.start(kube=True)
        try:
            self.assertEqual(emu.compute("GET", f"{P}/global/networks/talos")[0], 200)
            self.assertEqual(emu.node("imported")["metadata"]["name"], "imported")
            emu.check_state()
        finally:
            emu.stop()
        with open(self.state, "rb") as f:
            self.assertEqual(f.read(16), b"SQLite format 3\0")
        with open(self.state + ".json-imported") as f:
            self.assertEqual(f.read(), text)
        self.assertEqual(stat.S_IMODE(os.stat(self.state + ".json-imported").st_mode) & 0o077, 0)
        emu = self.start(kube=True)  # the database now, not the JSON again
        try:
            self.assertEqual(emu.node("imported")["metadata"]["name"], "imported")
            emu.create_network("after")
        finally:
            emu.stop()
        self.assertFalse(os.path.exists(self.state + ".importing"))

    def test_database_holds_what_memory_holds(self):
        """Every kind of change of both sides is in the database (GET /_emu/state/check)."""
        emu = self.start("--kubelet-delay", "20ms", "--ccm-delay", "20ms", kube=True)
        try:
            emu.create_network("talos")
            emu.create_subnet("nodes")
            emu.create_instance("talos-cp-1")
            emu.create_instance("w-1", alias="172.21.3.0/24")
            emu.set_aliases("w-1", [])
            emu.set_aliases("w-1", [("pods", "172.21.4.0/24")])
            emu.control("POST", "fingerprint", {"zone": "us-central1-a", "instance": "w-1"})
            emu.insert("regions/us-central1/addresses", {"name": "vip", "addressType": "INTERNAL",
                                                         "subnetwork": "regions/us-central1/subnetworks/nodes",
                                                         "address": "10.0.0.200"})
            emu.insert("regions/us-central1/healthChecks", {"name": "hc", "type": "TCP",
                                                            "tcpHealthCheck": {"port": 6443}})
            emu.insert("zones/us-central1-a/instanceGroups", {"name": "cp", "network": "global/networks/talos"})
            status, op = emu.compute("POST", f"{P}/zones/us-central1-a/instanceGroups/cp/addInstances",
                                     {"instances": [{"instance": "zones/us-central1-a/instances/talos-cp-1"}]})
            self.assertEqual(status, 200, op)
            emu.wait_op(op)
            emu.insert("regions/us-central1/backendServices", {
                "name": "cp", "loadBalancingScheme": "INTERNAL", "protocol": "TCP",
                "healthChecks": ["regions/us-central1/healthChecks/hc"],
                "backends": [{"group": "zones/us-central1-a/instanceGroups/cp"}]})
            emu.insert("regions/us-central1/forwardingRules", {
                "name": "cp", "loadBalancingScheme": "INTERNAL", "IPAddress": "regions/us-central1/addresses/vip",
                "ports": ["6443"], "backendService": "regions/us-central1/backendServices/cp",
                "subnetwork": "regions/us-central1/subnetworks/nodes"})
            emu.insert("global/firewalls", {"name": "fw", "network": "global/networks/talos",
                                            "allowed": [{"IPProtocol": "tcp", "ports": ["6443"]}]})
            emu.wait_until(lambda: (emu.node("w-1") or {}).get("spec", {}).get("podCIDR"), what="node w-1")
            # Kubernetes: create, update, patch, status, a CRD and its objects, deletes.
            cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"},
                  "data": {"k": "v"}}
            self.assertEqual(emu.kube("POST", "/api/v1/namespaces/default/configmaps", cm)[0], 201)
            self.assertEqual(emu.kube("PATCH", "/api/v1/namespaces/default/configmaps/c", {"data": {"k": "w"}},
                                      content_type="application/merge-patch+json")[0], 200)
            crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": "widgets.example.com"},
                   "spec": {"group": "example.com", "scope": "Namespaced",
                            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                            "versions": [{"name": "v1", "served": True, "storage": True,
                                          "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
            self.assertEqual(emu.kube("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)[0], 201)
            w = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}}
            emu.wait_until(lambda: emu.kube("POST", "/apis/example.com/v1/namespaces/default/widgets", w)[0] == 201,
                           what="widget created")
            emu.check_state()
            # The CRD goes, its objects with it (no events): their rows go too.
            self.assertEqual(emu.kube("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")[0], 200)
            self.assertEqual(emu.kube("DELETE", "/api/v1/namespaces/default/configmaps/c")[0], 200)
            for path in ("regions/us-central1/forwardingRules/cp", "regions/us-central1/addresses/vip",
                         "zones/us-central1-a/instances/w-1"):
                status, op = emu.compute("DELETE", f"{P}/{path}")
                self.assertEqual(status, 200, op)
                emu.wait_op(op)
            emu.wait_until(lambda: emu.node("w-1") is None, what="node w-1 deleted")
            report = emu.check_state()
            self.assertEqual(report["count"], 0)
        finally:
            emu.stop()
        emu = self.start(kube=True)  # and it loads back
        try:
            self.assertIsNone(emu.node("w-1"))
            self.assertEqual(emu.kube("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")[1]["items"], [])
            emu.check_state()
        finally:
            emu.stop()

    def test_one_emulator_per_file(self):
        emu = self.start()
        try:
            r = subprocess.run([EMU, "--listen", "127.0.0.1:0", "--state", self.state],
                               capture_output=True, timeout=10)
            self.assertEqual(r.returncode, 2)
            self.assertIn(f"--state {self.state}: in use by another process", r.stderr.decode())
        finally:
            emu.stop()

    def test_bad_state_is_a_one_line_error(self):
        with open(self.state, "w") as f:
            f.write("{not json")
        r = subprocess.run([EMU, "--listen", "127.0.0.1:0", "--state", self.state],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        lines = r.stderr.decode().strip().splitlines()
        self.assertEqual(len(lines), 1)
        self.assertIn(self.state + ":1:", lines[0])
        with open(self.state) as f:
            self.assertEqual(f.read(), "{not json")  # nothing changed
        # A database row that is not JSON: named by table and key.
        os.unlink(self.state)
        self.start().stop()
        db = sqlite3.connect(self.state)
        db.execute("INSERT INTO compute_resources (key, value) VALUES ('networks/global/x', '{broken')")
        db.commit()
        db.close()
        r = subprocess.run([EMU, "--listen", "127.0.0.1:0", "--state", self.state],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        lines = r.stderr.decode().strip().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("table compute_resources, row 'networks/global/x'", lines[0])
        # Another SQLite database is not taken over.
        other = os.path.join(self.tmp, "other.db")
        db = sqlite3.connect(other)
        db.execute("CREATE TABLE t (a)")
        db.commit()
        db.close()
        r = subprocess.run([EMU, "--listen", "127.0.0.1:0", "--state", other], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("not a talos-gcp-emu state", r.stderr.decode())


if __name__ == "__main__":
    unittest.main()
