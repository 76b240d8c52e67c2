"""talos-gcp-emu --state FILE and /_emu/state: the same world after a restart."""
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

from emu import EMU, Emu

P = "projects/demo-project"


class StateTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="emu-state-")
        self.state = os.path.join(self.tmp, "state.json")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, *extra):
        return Emu(self.tmp, kube=False, extra=("--state", self.state) + extra).start()

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
        finally:
            emu.stop()

    def test_pending_operation_completes_after_restart(self):
        emu = self.start("--operation-delay", "30s")
        emu.insert("global/networks", {"name": "talos", "autoCreateSubnetworks": False}, wait=False)
        status, _ = emu.control("POST", "state/save")
        self.assertEqual(status, 200)
        emu.stop()
        emu = self.start("--operation-delay", "100ms")
        try:
            status, lst = emu.compute("GET", f"{P}/global/operations")
            op = lst["items"][0]
            self.assertEqual(op["status"], "RUNNING")
            done = emu.wait_op(op)
            self.assertEqual(done["status"], "DONE")
            self.assertEqual(emu.compute("GET", f"{P}/global/networks/talos")[0], 200)
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
            status, body = emu.control("PUT", "state", {"version": 7})
            self.assertEqual(status, 400)
            status, body = emu.control("PUT", "state", {"version": 1, "compute": {"collections": {"zones": []}}})
            self.assertEqual(status, 400)
        finally:
            emu.stop()

    def test_state_file_written_soon_after_a_change(self):
        emu = self.start()
        try:
            emu.create_network("talos")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if os.path.exists(self.state):
                    with open(self.state) as f:
                        doc = json.load(f)
                    if "networks" in doc["compute"].get("collections", {}):
                        break
                time.sleep(0.05)
            self.assertIn("networks", doc["compute"]["collections"])
        finally:
            emu.stop()

    def test_corrupt_state_is_a_one_line_error(self):
        with open(self.state, "w") as f:
            f.write("{not json")
        r = subprocess.run([EMU, "--listen", "127.0.0.1:0", "--state", self.state],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        lines = r.stderr.decode().strip().splitlines()
        self.assertEqual(len(lines), 1)
        self.assertIn(self.state, lines[0])


if __name__ == "__main__":
    unittest.main()
