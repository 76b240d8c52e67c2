"""gcloud compute instances reset, stop and start against talos-gcp-emu: gcloud waits on each
Operation and reads the instance back; the emulated kubelet registers a deleted Node again
only after the reset. Labels and tags change in place (add-labels, add-tags and their removes)."""
import json
import os
import sys
import tempfile
import time
import unittest
import shutil

sys.path.insert(0, os.path.dirname(__file__))
from test_gcloud_compute import GCLOUD, ZONE, gcloud_env, run  # noqa: E402
from emu import Emu  # noqa: E402


@unittest.skipUnless(GCLOUD, "gcloud is not installed")
class TestGcloudLifecycle(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gcloud-lifecycle-")
        self.emu = Emu(self.tmp, ccm="cloud", extra=["--kubelet-delay", "50ms", "--ccm-delay", "20ms"]).start()
        self.emu.create_network("talos")
        self.emu.create_subnet("nodes")
        self.emu.create_instance("node-a")
        self.env = gcloud_env(self.emu.cloud_url.rsplit(":", 1)[1], self.tmp)

    def tearDown(self):
        self.emu.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def status(self):
        rc, out, err = run(self.env, "compute", "instances", "describe", "node-a", f"--zone={ZONE}",
                           "--format=json")
        self.assertEqual(rc, 0, err)
        return json.loads(out)["status"]

    def test_stop_start_reset(self):
        node = self.emu.wait_until(lambda: self.emu.node("node-a"), what="node-a registered")
        rc, out, err = run(self.env, "compute", "instances", "stop", "node-a", f"--zone={ZONE}")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.status(), "TERMINATED")
        rc, out, err = run(self.env, "compute", "instances", "reset", "node-a", f"--zone={ZONE}")
        self.assertNotEqual(rc, 0)
        self.assertIn("not ready", err)
        rc, out, err = run(self.env, "compute", "instances", "start", "node-a", f"--zone={ZONE}")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.status(), "RUNNING")
        # A deleted Node comes back when the instance is reset, and not before.
        self.assertEqual(self.emu.kube("DELETE", "/api/v1/nodes/node-a")[0], 200)
        time.sleep(0.3)
        self.assertIsNone(self.emu.node("node-a"))
        rc, out, err = run(self.env, "compute", "instances", "reset", "node-a", f"--zone={ZONE}")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.status(), "RUNNING")
        back = self.emu.wait_until(lambda: self.emu.node("node-a"), what="node-a registered again")
        self.assertNotEqual(back["metadata"]["uid"], node["metadata"]["uid"])

    def describe(self):
        rc, out, err = run(self.env, "compute", "instances", "describe", "node-a", f"--zone={ZONE}",
                           "--format=json")
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def test_labels_and_tags_in_place(self):
        # gcloud reads the fingerprint, then calls setLabels / setTags with it.
        before = self.describe()
        for args in (("add-labels", "--labels=team=net,env=dev"), ("remove-labels", "--labels=env"),
                     ("add-tags", "--tags=web,ssh"), ("remove-tags", "--tags=ssh")):
            rc, out, err = run(self.env, "compute", "instances", args[0], "node-a", f"--zone={ZONE}", args[1])
            self.assertEqual(rc, 0, (args, err))
        after = self.describe()
        self.assertEqual(after["id"], before["id"])
        self.assertEqual(after["labels"], {"team": "net"})
        self.assertEqual(after["tags"]["items"], ["web"])
        self.assertNotEqual(after["labelFingerprint"], before["labelFingerprint"])
        self.assertNotEqual(after["tags"]["fingerprint"], before["tags"]["fingerprint"])
        # A stale fingerprint is GCP's 412.
        st, err = self.emu.compute("POST", f"projects/demo-project/zones/{ZONE}/instances/node-a/setLabels",
                                   {"labels": {"a": "b"}, "labelFingerprint": before["labelFingerprint"]})
        self.assertEqual((st, err["error"]["errors"][0]["reason"]), (412, "conditionNotMet"))
        st, err = self.emu.compute("POST", f"projects/demo-project/zones/{ZONE}/instances/node-a/setTags",
                                   {"items": ["x"], "fingerprint": before["tags"]["fingerprint"]})
        self.assertEqual((st, err["error"]["errors"][0]["reason"]), (412, "conditionNotMet"))


if __name__ == "__main__":
    unittest.main()
