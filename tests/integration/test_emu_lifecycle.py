"""instances.reset, stop and start in talos-gcp-emu, and what the emulated cluster does about
them: GCE's status transitions, and a kubelet that registers its Node only when it starts
(kubernetes/kubernetes#71398), stops posting while its instance is stopped, and reports a
new boot after a reset."""
import os
import shutil
import tempfile
import time
import unittest

from emu import Emu

FAST = ["--kubelet-delay", "50ms", "--ccm-delay", "20ms"]
ZONE = "us-central1-a"




def cond(node, type_):
    return next((c["status"] for c in node["status"]["conditions"] if c["type"] == type_), None)


class Lifecycle(unittest.TestCase):
    extra = FAST

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="emu-lifecycle-")
        self.emu = Emu(self.tmp, ccm="cloud", extra=self.extra).start()
        self.emu.create_network()
        self.emu.create_subnet()

    def tearDown(self):
        try:
            self.emu.stop()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def call(self, name, verb):
        return self.emu.compute("POST", f"projects/demo-project/zones/{ZONE}/instances/{name}/{verb}")

    def do(self, name, verb):
        status, op = self.call(name, verb)
        self.assertEqual((status, op["operationType"]), (200, verb), op)
        op = self.emu.wait_op(op)
        self.assertIsNone(op.get("error"), op)
        return op

    def status(self, name):
        return self.emu.get_instance(name)["status"]

    def node(self, name, pred=lambda n: True, what=None):
        return self.emu.wait_until(lambda: (lambda n: n if n and pred(n) else None)(self.emu.node(name)),
                                   timeout=15, what=what or f"node {name}")


class StatusTransitions(Lifecycle):
    # Operations stay RUNNING for a while, so the intermediate states can be seen.
    extra = FAST + ["--operation-delay", "400ms"]

    def test_stop_start_reset(self):
        self.emu.create_instance("vm-0", talos=False)
        # stop: STOPPING at once, TERMINATED when the Operation is DONE.
        status, op = self.call("vm-0", "stop")
        self.assertEqual(status, 200, op)
        self.assertEqual((op["status"], self.status("vm-0")), ("RUNNING", "STOPPING"))
        self.emu.wait_op(op)
        inst = self.emu.get_instance("vm-0")
        self.assertEqual(inst["status"], "TERMINATED")
        self.assertIn("lastStopTimestamp", inst)
        # A stopped instance keeps its internal IP and alias ranges.
        self.assertTrue(inst["networkInterfaces"][0]["aliasIpRanges"])
        # Only a running instance can be reset; stopping it again changes nothing.
        status, err = self.call("vm-0", "reset")
        self.assertEqual((status, err["error"]["errors"][0]["reason"]), (400, "resourceNotReady"))
        self.assertIsNone(self.do("vm-0", "stop").get("error"))
        self.assertEqual(self.status("vm-0"), "TERMINATED")
        # start: PROVISIONING, then STAGING, then RUNNING when DONE.
        status, op = self.call("vm-0", "start")
        self.assertEqual((status, self.status("vm-0")), (200, "PROVISIONING"))
        self.emu.wait_until(lambda: self.status("vm-0") == "STAGING", what="STAGING")
        self.assertEqual(self.emu.wait_op(op)["status"], "DONE")
        inst = self.emu.get_instance("vm-0")
        self.assertEqual(inst["status"], "RUNNING")
        self.assertGreater(inst["lastStartTimestamp"], inst["creationTimestamp"])
        # reset: a hard reset; the instance stays RUNNING throughout.
        status, op = self.call("vm-0", "reset")
        self.assertEqual((status, self.status("vm-0")), (200, "RUNNING"))
        self.emu.wait_op(op)
        self.assertEqual(self.status("vm-0"), "RUNNING")
        # start on a running instance changes nothing; a GET on the verb is no method.
        self.assertEqual(self.do("vm-0", "start")["status"], "DONE")
        status, _ = self.emu.compute("GET", f"projects/demo-project/zones/{ZONE}/instances/vm-0/reset")
        self.assertEqual(status, 404)
        status, _ = self.call("missing", "reset")
        self.assertEqual(status, 404)

    def test_stopped_instance_keeps_its_ranges(self):
        self.emu.create_instance("vm-1", talos=False, alias="172.20.9.0/24")
        self.do("vm-1", "stop")
        op = self.emu.insert("zones/us-central1-a/instances",
                             self.emu.instance_body("vm-2", alias="172.20.9.0/24", talos=False),
                             check=False)
        self.assertEqual(op["error"]["errors"][0]["code"], "IP_IN_USE_BY_ANOTHER_RESOURCE")


class KubeletLifecycle(Lifecycle):
    def test_deleted_node_stays_gone_until_the_instance_resets(self):
        self.emu.create_instance("w-0")
        first = self.node("w-0", lambda n: n["spec"].get("podCIDR"))
        self.assertEqual(self.emu.kube("DELETE", "/api/v1/nodes/w-0")[0], 200)
        # Neither time nor a change of the instance brings it back.
        self.emu.set_aliases("w-0", [])
        time.sleep(0.4)  # several --kubelet-delay periods
        self.assertIsNone(self.emu.node("w-0"))
        self.do("w-0", "reset")
        again = self.node("w-0", lambda n: n["spec"].get("podCIDR") or True)
        self.assertNotEqual(again["metadata"]["uid"], first["metadata"]["uid"])

    def test_reset_reports_a_new_boot_on_the_same_node(self):
        self.emu.create_instance("w-1")
        before = self.node("w-1", lambda n: n["spec"].get("podCIDR"))
        self.do("w-1", "reset")
        after = self.node("w-1", lambda n: n["status"]["nodeInfo"]["bootID"] != before["status"]["nodeInfo"]["bootID"],
                          what="a new boot ID")
        self.assertEqual(after["metadata"]["uid"], before["metadata"]["uid"])
        self.assertEqual((cond(after, "Ready"), after["spec"]["podCIDR"]), ("True", before["spec"]["podCIDR"]))

    def test_stopped_node_goes_unknown_and_comes_back(self):
        self.emu.create_instance("w-2")
        before = self.node("w-2", lambda n: n["spec"].get("podCIDR"))
        self.do("w-2", "stop")
        down = self.node("w-2", lambda n: cond(n, "Ready") == "Unknown", what="Ready=Unknown")
        ready = next(c for c in down["status"]["conditions"] if c["type"] == "Ready")
        self.assertEqual(ready["message"], "Kubelet stopped posting node status.")
        self.assertEqual(cond(down, "NetworkUnavailable"), "False")  # the CCM's, kept
        self.assertEqual(sorted(t["effect"] for t in down["spec"]["taints"]
                                if t["key"] == "node.kubernetes.io/unreachable"), ["NoExecute", "NoSchedule"])
        time.sleep(0.3)  # the CCM does not delete the Node of an instance that exists
        self.assertEqual(self.emu.node("w-2")["metadata"]["uid"], before["metadata"]["uid"])
        self.do("w-2", "start")
        up = self.node("w-2", lambda n: cond(n, "Ready") == "True", what="Ready again")
        self.assertEqual(up["metadata"]["uid"], before["metadata"]["uid"])
        self.assertFalse([t for t in up["spec"].get("taints", []) if t["key"] == "node.kubernetes.io/unreachable"])
        self.assertNotEqual(up["status"]["nodeInfo"]["bootID"], before["status"]["nodeInfo"]["bootID"])

    def test_emulator_start_registers_missing_nodes(self):
        state = os.path.join(self.tmp, "state.json")
        self.emu.stop()
        self.emu = Emu(self.tmp, ccm="cloud", extra=FAST + ["--state", state]).start()
        self.emu.create_network()
        self.emu.create_subnet()
        self.emu.create_instance("w-3")
        kept = self.node("w-3", lambda n: n["spec"].get("podCIDR"))
        self.emu.kube("DELETE", "/api/v1/nodes/w-3")
        time.sleep(0.2)
        self.assertIsNone(self.emu.node("w-3"))
        self.emu.stop()
        # The kubelets start with the emulator: the running instance registers its Node.
        self.emu = Emu(self.tmp, ccm="cloud", extra=FAST + ["--state", state]).start()
        back = self.node("w-3", lambda n: n["spec"].get("podCIDR"))
        self.assertNotEqual(back["metadata"]["uid"], kept["metadata"]["uid"])


if __name__ == "__main__":
    unittest.main()
