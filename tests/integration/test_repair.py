"""talos-gcp repair under the conditions a real cluster has, against talos-gcp-emu.

--strategy node: the emulated kubelet registers a Node only when it starts, so the Node
comes back only because repair resets the instance; PodDisruptionBudgets hold the drain;
the control-plane quorum guard. --strategy gcp: the journal (failures on the second PATCH,
kill -9 at ten points), other alias ranges kept, holders per network, orphans, --selector,
--max-changes, the confirmation on a terminal, --reset-after.
"""
import json
import os
import pty
import signal
import subprocess
import tempfile
import time
import unittest

from cluster import ZONE, Cluster, Emu, talos_gcp, talos_gcp_start

FAST = ["--kubelet-delay", "50ms", "--ccm-delay", "20ms"]
UNI_REL = f"projects/demo-project/zones/{ZONE}/instances/%s/updateNetworkInterface"
UNI = "/compute/v1/" + UNI_REL




class Base(unittest.TestCase):
    ccm = "off"
    extra = FAST

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.emu = Emu(self._tmp.name, ccm=self.ccm, extra=self.extra).start()
        self.c = Cluster(self.emu).network()
        self.journal = os.path.join(self.emu.tmpdir, ".local/state/talos-gcp/repair-demo-project.json")

    def tearDown(self):
        try:
            self.emu.stop()
        finally:
            self._tmp.cleanup()

    def wait_for(self, fn, timeout=30, what="condition"):
        return self.emu.wait_until(fn, timeout=timeout, what=what)

    def cli(self, *args, **kw):
        return talos_gcp(self.emu, *args, **kw)

    def json_cli(self, *args, rc=None):
        code, out, err = self.cli(*args, "-o", "json")
        if rc is not None:
            self.assertEqual(code, rc, out + err)
        return code, json.loads(out), err

    def kube(self, method, path, body=None, ok=(200,), ct="application/json"):
        return self.c.kube.call(method, path, body, ok=ok, content_type=ct)[1]

    def pair(self, name, alias, podcidr=None):
        self.c.instance(name, alias=alias)
        self.c.wait_node(name, pred=lambda n: n.get("spec", {}).get("providerID"))
        if podcidr:
            self.c.set_podcidr(name, podcidr)

    def nic0(self, name):
        return self.c.get_instance(name)["networkInterfaces"][0]

    def aliases(self, name):
        return [(a.get("subnetworkRangeName", ""), a["ipCidrRange"])
                for a in self.nic0(name).get("aliasIpRanges", [])]

    def set_nic0(self, name, ranges):
        """updateNetworkInterface with [(rangeName or "", cidr)] (clear first to replace)."""
        body = {"fingerprint": self.nic0(name)["fingerprint"], "aliasIpRanges": [
            dict({"ipCidrRange": c}, **({"subnetworkRangeName": r} if r else {})) for r, c in ranges]}
        _, op = self.c.compute.api.call("PATCH", UNI_REL % name + "?networkInterface=nic0", body)
        return self.c.compute.wait(op)

    def instance_call(self, name, verb):
        _, op = self.c.compute.api.call(
            "POST", f"projects/{self.emu.project}/zones/{ZONE}/instances/{name}/{verb}")
        return self.c.compute.wait(op)

    def stats(self, key):
        return self.emu.stats()["requests"].get(key, 0)

    def assert_aligned(self):
        rc, doc, _ = self.json_cli("verify")
        self.assertEqual((rc, doc["aligned"]), (0, True), json.dumps(doc))


def ready(n):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (n or {}).get("status", {}).get("conditions", []))


class NodeStrategyTest(Base):
    ccm = "cloud"

    def misaligned(self, name):
        """Aligned at registration; the alias moved afterwards cannot change the Node's
        (immutable) podCIDR: the mismatch stays, as in a real cluster."""
        n = self.c.wait_node(name, podcidr=True, pred=ready)
        old = n["spec"]["podCIDR"]
        new = "172.20.%d.0/24" % (200 + int(old.split(".")[2]))
        self.c.move_alias(name, new)
        return new

    def test_pdb_holds_the_drain_then_node_comes_back_aligned(self):
        for n in ("talos-cp-0", "w-0", "w-1"):
            self.c.instance(n)
        for n in ("talos-cp-0", "w-0", "w-1"):
            self.c.wait_node(n, podcidr=True, pred=ready)
        # Two replicas of an application (spread over the workers) and a budget that
        # allows no disruption; a host-network DaemonSet on every node (as Cilium is).
        self.kube("POST", "apis/apps/v1/namespaces/default/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}},
            ok=(201,))
        self.kube("POST", "apis/apps/v1/namespaces/kube-system/daemonsets", {
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"hostNetwork": True,
                                           "tolerations": [{"operator": "Exists"}],
                                           "containers": [{"name": "a", "image": "agent:1"}]}}}},
            ok=(201,))
        self.kube("POST", "apis/policy/v1/namespaces/default/poddisruptionbudgets", {
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}, ok=(201,))

        def pods(ns, sel):
            return self.kube("GET", f"api/v1/namespaces/{ns}/pods?labelSelector={sel}")["items"]

        def web_running():
            p = [x for x in pods("default", "app%3Dweb") if ready(x)]
            return p if len(p) == 2 else None

        web = self.wait_for(web_running, what="2 web pods running")
        self.assertEqual(sorted(p["spec"]["nodeName"] for p in web), ["w-0", "w-1"])
        victim = next(p["metadata"]["name"] for p in web if p["spec"]["nodeName"] == "w-0")
        self.wait_for(lambda: self.kube("GET", "apis/policy/v1/namespaces/default/poddisruptionbudgets/web")
                 .get("status", {}).get("currentHealthy") == 2, what="budget status")
        agent_w0 = self.wait_for(lambda: [p for p in pods("kube-system", "app%3Dagent")
                                     if p["spec"]["nodeName"] == "w-0" and ready(p)], what="agent on w-0")
        alias = self.misaligned("w-0")
        old = self.c.node("w-0")

        proc = talos_gcp_start(self.emu, "repair", "--strategy", "node", "--node", "w-0", "--apply",
                               "--drain-timeout", "90s", "--wait-timeout", "60s", "-o", "json")
        try:
            evict = f"POST /api/v1/namespaces/default/pods/{victim}/eviction"
            self.wait_for(lambda: self.stats(evict) >= 1, what="an eviction attempt")
            # The budget holds: the pod is still there, the Node cordoned but not deleted.
            self.assertIsNotNone(self.kube("GET", f"api/v1/namespaces/default/pods/{victim}"))
            n = self.c.node("w-0")
            self.assertEqual(n["metadata"]["uid"], old["metadata"]["uid"])
            self.assertTrue(n["spec"].get("unschedulable"))
            self.assertEqual(self.stats(f"POST /compute/v1/projects/demo-project/zones/{ZONE}/instances/w-0/reset"), 0)
            self.kube("PATCH", "apis/policy/v1/namespaces/default/poddisruptionbudgets/web",
                      {"spec": {"minAvailable": 1}}, ct="application/merge-patch+json")
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertEqual(proc.returncode, 0, out + err)
        # Refused (429) while the budget said no, accepted once it allowed one.
        self.assertGreaterEqual(self.stats(evict), 2)
        doc = json.loads(out)
        self.assertTrue(doc["aligned"])
        self.assertEqual([s["action"] for s in doc["applied"]],
                         ["cordon", "drain", "delete-node", "reset", "registered", "uncordon"])
        drained = doc["applied"][1]
        self.assertEqual([p["name"] for p in drained["evicted"]], [victim])
        self.assertGreaterEqual(drained["kept"], 1)  # the DaemonSet's pod stayed
        # The instance was reset once; the Node came back (new uid), Ready, with the alias.
        self.assertEqual(self.stats(f"POST /compute/v1/projects/demo-project/zones/{ZONE}/instances/w-0/reset"), 1)
        n = self.c.node("w-0")
        self.assertNotEqual(n["metadata"]["uid"], old["metadata"]["uid"])
        self.assertEqual(n["spec"]["podCIDR"], alias)
        self.assertTrue(ready(n))
        self.assertFalse(n["spec"].get("unschedulable", False))
        # The evicted replica was replaced elsewhere; the DaemonSet is back on w-0.
        web = self.wait_for(web_running, what="web back to 2")
        self.assertNotIn(victim, [p["metadata"]["name"] for p in web])
        back = self.wait_for(lambda: [p for p in pods("kube-system", "app%3Dagent")
                                 if p["spec"]["nodeName"] == "w-0" and ready(p)], what="agent back on w-0")
        self.assertNotEqual(back[0]["metadata"]["uid"], agent_w0[0]["metadata"]["uid"])
        self.assertFalse(os.path.exists(self.journal))
        self.assert_aligned()

    def test_control_plane_quorum_guard(self):
        for n in ("talos-cp-0", "talos-cp-1", "talos-cp-2"):
            self.c.instance(n)
        for n in ("talos-cp-0", "talos-cp-1", "talos-cp-2"):
            self.c.wait_node(n, podcidr=True, pred=ready)
        self.misaligned("talos-cp-1")
        # talos-cp-0 stops: its kubelet stops posting and the Node goes NotReady.
        self.instance_call("talos-cp-0", "stop")
        self.wait_for(lambda: not ready(self.c.node("talos-cp-0")), what="talos-cp-0 NotReady")
        before = self.c.node("talos-cp-1")
        for apply in ((), ("--apply",)):
            rc, out, err = self.cli("repair", "--strategy", "node", *apply)
            self.assertEqual(rc, 1, out + err)
            self.assertIn("refusing to take down control-plane Node talos-cp-1: control-plane "
                          "Node talos-cp-0 is not Ready (2 of 3 control-plane Nodes Ready)", out)
        after = self.c.node("talos-cp-1")
        self.assertEqual(after["metadata"]["uid"], before["metadata"]["uid"])
        self.assertFalse(after["spec"].get("unschedulable", False))
        # With talos-cp-0 gone for good, two control planes remain: one down leaves 1 of 2.
        _, op = self.c.compute.api.call("DELETE", f"projects/demo-project/zones/{ZONE}/instances/talos-cp-0")
        self.c.compute.wait(op)
        self.wait_for(lambda: self.c.node("talos-cp-0") is None, what="talos-cp-0 deleted")
        rc, out, err = self.cli("repair", "--strategy", "node", "--apply")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("1 of 2 control-plane Nodes would stay Ready, fewer than a quorum of 2", out)
        self.assertEqual(self.c.node("talos-cp-1")["metadata"]["uid"], before["metadata"]["uid"])

    def test_unmanaged_pod_refused_unless_force(self):
        self.c.instance("w-0")
        self.c.wait_node("w-0", podcidr=True, pred=ready)
        self.misaligned("w-0")
        self.kube("POST", "api/v1/namespaces/default/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pet"},
            "spec": {"nodeName": "w-0", "containers": [{"name": "c", "image": "i:1"}]}}, ok=(201,))
        rc, out, err = self.cli("repair", "--strategy", "node", "--apply")
        self.assertEqual(rc, 1, out + err)
        self.assertIn('pods without a controller would be lost for good: ["default/pet"]', out)
        self.assertTrue(self.kube("GET", "api/v1/namespaces/default/pods/pet"))
        rc, out, err = self.cli("repair", "--strategy", "node", "--apply", "--force")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.c.kube.call("GET", "api/v1/namespaces/default/pods/pet", ok=(404,))[0], 404)

    def test_killed_after_delete_is_finished_by_the_next_run(self):
        self.c.instance("w-0")
        self.c.wait_node("w-0", podcidr=True, pred=ready)
        alias = self.misaligned("w-0")
        old = self.c.node("w-0")
        # Hold the reset: the Node is deleted, the instance not reset yet, then kill -9.
        path = f"/compute/v1/projects/demo-project/zones/{ZONE}/instances/w-0/reset"
        self.emu.add_fault(method="POST", path=path, hang=True)
        proc = talos_gcp_start(self.emu, "repair", "--strategy", "node", "--apply")
        try:
            self.wait_for(lambda: self.stats("POST " + path) >= 1, what="the reset request")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        self.emu.clear_faults()
        self.assertIsNone(self.c.node("w-0"))
        time.sleep(0.3)  # well past --kubelet-delay: the kubelet does not re-register alone
        self.assertIsNone(self.c.node("w-0"))
        with open(self.journal) as f:
            j = json.load(f)
        self.assertEqual([(s["action"], s["state"]) for s in j["steps"]],
                         [("cordon", "done"), ("delete-node", "done"), ("reset", "pending"),
                          ("uncordon", "pending")])
        self.assertEqual(os.stat(self.journal).st_mode & 0o777, 0o600)
        rc, out, err = self.cli("repair", "--strategy", "node")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("an unfinished repair", err)
        rc, out, err = self.cli("repair", "--strategy", "node", "--apply")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("finishing the unfinished repair", err)
        n = self.c.node("w-0")
        self.assertNotEqual(n["metadata"]["uid"], old["metadata"]["uid"])
        self.assertEqual(n["spec"]["podCIDR"], alias)
        self.assertFalse(os.path.exists(self.journal))


class JournalTest(Base):
    """--strategy gcp: what a failed or killed repair leaves, and how the next one ends it."""

    def test_failed_second_patch_is_put_back(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.2.0/24")
        # The first PATCH (clear) goes through; the second (set) is refused once.
        self.emu.add_fault(method="PATCH", path=UNI % "a-0", skip=1, count=1, status=400,
                           reason="invalid", message="Injected refusal.")
        rc, doc, err = self.json_cli("repair", "--apply", rc=2)
        self.assertIn("Injected refusal", doc["error"])
        self.assertIn("put back 172.20.1.0/24", err)
        self.assertEqual([s["action"] for s in doc["applied"]], ["clear", "put-back"])
        self.assertEqual([(s["action"], s["range"]) for s in doc["failed"]], [("set", "172.20.2.0/24")])
        self.assertEqual(doc["skipped"], [])
        self.assertEqual(self.aliases("a-0"), [("pods", "172.20.1.0/24")])  # as before
        with open(self.journal) as f:
            states = [(s["action"], s["state"]) for s in json.load(f)["steps"]]
        self.assertEqual(states, [("clear", "rolled-back"), ("set", "failed")])
        # The next run finds the journal, ends it, and plans again.
        rc, out, err = self.cli("repair", "--apply")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("finishing the unfinished repair", err)
        self.assertEqual(self.aliases("a-0"), [("pods", "172.20.2.0/24")])
        self.assertFalse(os.path.exists(self.journal))

    def test_failed_put_back_names_the_instance_and_next_run_finishes(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.2.0/24")
        self.pair("b-0", alias="172.20.5.0/24", podcidr="172.20.5.0/24")
        # The set and the put-back are both refused: a-0 is left without its range.
        self.emu.add_fault(method="PATCH", path=UNI % "a-0", skip=1, count=2, status=400,
                           reason="invalid", message="Injected refusal.")
        rc, doc, err = self.json_cli("repair", "--apply", rc=2)
        self.assertIn(f"left without their alias range: a-0 (zone {ZONE}, was 172.20.1.0/24)", doc["error"])
        self.assertIn("talos-gcp repair --apply", doc["error"])
        self.assertIn(self.journal, doc["error"])
        self.assertIn(f"gcloud compute instances network-interfaces update a-0 --zone {ZONE} "
                      "--aliases pods:172.20.1.0/24", err)
        self.assertEqual(self.aliases("a-0"), [])
        rc, doc, err = self.json_cli("repair", "--apply", rc=0)
        self.assertIn("journal: set 172.20.2.0/24 on instance a-0", err)
        self.assertEqual(self.aliases("a-0"), [("pods", "172.20.2.0/24")])
        self.assertEqual(self.aliases("b-0"), [("pods", "172.20.5.0/24")])
        self.assertTrue(doc["aligned"])
        self.assertFalse(os.path.exists(self.journal))

    def test_one_repair_at_a_time(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.2.0/24")
        self.emu.add_fault(method="PATCH", path=UNI % "a-0", hang=True)
        first = talos_gcp_start(self.emu, "repair", "--apply")
        try:
            self.wait_for(lambda: self.stats("PATCH " + UNI % "a-0") >= 1, what="the first PATCH")
            rc, out, err = self.cli("repair", "--apply")
            self.assertEqual(rc, 2, out + err)
            self.assertIn("another talos-gcp repair --apply is running", err)
        finally:
            first.send_signal(signal.SIGKILL)
            first.communicate()
        self.emu.clear_faults()
        # The kernel let go of the lock with the killed process.
        rc, out, err = self.cli("repair", "--apply")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.aliases("a-0"), [("pods", "172.20.2.0/24")])

    def test_kill_at_ten_points_then_repair_converges(self):
        # A three-node cycle: six steps (three clears, three sets), each PATCH then wait.
        want = {"a-0": "172.20.2.0/24", "b-0": "172.20.3.0/24", "c-0": "172.20.1.0/24"}
        start = {"a-0": "172.20.1.0/24", "b-0": "172.20.2.0/24", "c-0": "172.20.3.0/24"}
        for n in want:
            self.pair(n, alias=start[n], podcidr=want[n])
        ops = f"/compute/v1/projects/demo-project/zones/{ZONE}/operations/"
        points = ([("PATCH", "/compute/v1/projects/demo-project/zones/", k) for k in range(6)] +
                  [("POST", ops, k) for k in range(4)])
        for method, prefix, skip in points:
            with self.subTest(kill=f"{method} #{skip + 1}"):
                for n in want:  # back to the cycle
                    self.set_nic0(n, [])
                for n in want:
                    self.set_nic0(n, [("pods", start[n])])
                fault = self.emu.add_fault(method=method, pathPrefix=prefix, hang=True, skip=skip)
                proc = talos_gcp_start(self.emu, "repair", "--apply")

                def fired():
                    return [f for f in self.emu.control("GET", "faults")[1]["faults"]
                            if f["id"] == fault["id"] and f["hits"] >= 1]
                try:
                    self.wait_for(fired, what=f"{method} #{skip + 1}")
                finally:
                    proc.send_signal(signal.SIGKILL)
                    proc.communicate()
                self.emu.clear_faults()
                rc, out, err = self.cli("repair", "--apply")
                self.assertEqual(rc, 0, out + err)
                got = {n: self.aliases(n) for n in want}
                self.assertEqual(got, {n: [("pods", want[n])] for n in want})  # none lost or doubled
                self.assertFalse(os.path.exists(self.journal))


class AliasesTest(Base):
    def test_second_alias_range_survives(self):
        # One instance with its pods alias first and a /32 of the primary range second,
        # another with the /32 first: only the pods range moves, the /32s stay.
        self.pair("a-0", alias="172.20.14.0/24", podcidr="172.20.7.0/24")
        self.set_nic0("a-0", [])
        self.set_nic0("a-0", [("pods", "172.20.14.0/24"), ("", "10.0.0.50/32")])
        self.pair("b-0", alias="172.20.15.0/24", podcidr="172.20.8.0/24")
        self.set_nic0("b-0", [])
        self.set_nic0("b-0", [("", "10.0.0.60/32"), ("pods", "172.20.15.0/24")])
        rc, out, err = self.cli("repair")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("clear  a-0 (europe-west1-b) nic0 alias pods:172.20.14.0/24", out)
        self.assertIn("clear  b-0 (europe-west1-b) nic0 alias pods:172.20.15.0/24", out)
        self.assertNotIn("10.0.0.", out)
        rc, out, err = self.cli("repair", "--apply")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.aliases("a-0"), [("pods", "172.20.7.0/24"), ("", "10.0.0.50/32")])
        self.assertEqual(self.aliases("b-0"), [("pods", "172.20.8.0/24"), ("", "10.0.0.60/32")])

    def test_two_vpcs_reusing_the_pods_range(self):
        self.c.compute.insert("global/networks", {"name": "other", "autoCreateSubnetworks": False})
        self.c.compute.insert("regions/europe-west1/subnetworks", {
            "name": "other-nodes", "network": "projects/demo-project/global/networks/other",
            "ipCidrRange": "10.1.0.0/16",
            "secondaryIpRanges": [{"rangeName": "pods", "ipCidrRange": "172.20.0.0/16"}]})
        body = {"name": "other-vm", "machineType": f"zones/{ZONE}/machineTypes/e2-standard-2",
                "disks": [{"boot": True, "initializeParams": {"sourceImage": "projects/demo-project/global/images/talos"}}],
                "networkInterfaces": [{"subnetwork": "projects/demo-project/regions/europe-west1/subnetworks/other-nodes",
                                       "aliasIpRanges": [{"subnetworkRangeName": "pods", "ipCidrRange": "172.20.7.0/24"}]}]}
        self.c.compute.insert(f"zones/{ZONE}/instances", body)
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.7.0/24")
        before = self.c.get_instance("other-vm")["networkInterfaces"]
        rc, doc, _ = self.json_cli("verify", rc=1)
        self.assertEqual([n["status"] for n in doc["nodes"]], ["mismatch"])  # no orphan
        rc, out, err = self.cli("repair", "--apply")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.aliases("a-0"), [("pods", "172.20.7.0/24")])
        self.assertEqual(self.c.get_instance("other-vm")["networkInterfaces"], before)


class OrphanTest(Base):
    def test_orphan_blocks_then_is_freed(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.9.0/24")
        self.c.instance("leftover", alias="172.20.9.0/24", talos=False)
        rc, doc, _ = self.json_cli("verify", rc=1)
        rows = {(n["node"], n["instance"]): n for n in doc["nodes"]}
        orphan = rows[(None, "leftover")]
        self.assertEqual((orphan["status"], orphan["aliasRange"]), ("orphan", "172.20.9.0/24"))
        self.assertEqual(doc["summary"]["orphan"], 1)
        rc, out, _ = self.cli("verify")
        self.assertIn("leftover: orphan: instance leftover holds pods:172.20.9.0/24", out)
        rc, out, err = self.cli("repair", "--apply")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("--free-orphans frees it", out)
        self.assertEqual(self.aliases("leftover"), [("pods", "172.20.9.0/24")])
        rc, out, err = self.cli("repair", "--free-orphans")
        self.assertIn("clear  leftover (europe-west1-b) nic0 alias pods:172.20.9.0/24  (orphan: no Node)", out)
        rc, doc, err = self.json_cli("repair", "--free-orphans", "--apply", rc=0)
        self.assertEqual(self.aliases("leftover"), [])
        self.assertEqual(self.aliases("a-0"), [("pods", "172.20.9.0/24")])
        self.assertTrue(doc["aligned"])


class LimitsTest(Base):
    def test_selector_and_max_changes(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.2.0/24")
        self.pair("b-0", alias="172.20.5.0/24", podcidr="172.20.6.0/24")
        self.kube("PATCH", "api/v1/nodes/a-0", {"metadata": {"labels": {"pool": "blue"}}},
                  ct="application/merge-patch+json")
        rc, out, err = self.cli("repair", "--apply", "--max-changes", "1")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("the plan changes 2 instances, more than --max-changes 1", err)
        self.assertEqual(self.aliases("a-0"), [("pods", "172.20.1.0/24")])
        self.assertEqual(self.aliases("b-0"), [("pods", "172.20.5.0/24")])
        rc, out, err = self.cli("repair", "--apply", "--max-changes", "1", "--selector", "pool=blue")
        self.assertEqual(rc, 1, out + err)  # b-0 is still misaligned
        self.assertEqual(self.aliases("a-0"), [("pods", "172.20.2.0/24")])
        self.assertEqual(self.aliases("b-0"), [("pods", "172.20.5.0/24")])
        rc, out, err = self.cli("repair", "--selector", "pool in (")
        self.assertEqual(rc, 2, out + err)
        self.assertIn("--selector pool in (", err)

    def test_confirmation_on_a_terminal(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.2.0/24")
        for answer, rc_want, alias in ((b"n\n", 1, "172.20.1.0/24"), (b"y\n", 0, "172.20.2.0/24")):
            master, slave = pty.openpty()
            try:
                proc = talos_gcp_start(self.emu, "repair", "--apply", stdin=slave)
                os.write(master, answer)
                out, err = proc.communicate(timeout=60)
            finally:
                os.close(master)
                os.close(slave)
            self.assertEqual(proc.returncode, rc_want, out + err)
            self.assertIn("Apply 2 changes to 1 instance? [y/N]", err)
            self.assertEqual(self.aliases("a-0"), [("pods", alias)])
            if rc_want:
                self.assertIn("not confirmed: nothing was changed", err)
        # --yes does not ask, and without a terminal nothing is asked either.
        rc, out, err = self.cli("repair", "--apply", "--yes")
        self.assertEqual(rc, 0, out + err)
        self.assertNotIn("[y/N]", err)


class ResetAfterTest(Base):
    def test_reset_after_one_at_a_time(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.2.0/24")
        self.pair("b-0", alias="172.20.5.0/24", podcidr="172.20.5.0/24")
        boot = {n: self.c.wait_node(n, pred=ready)["status"]["nodeInfo"]["bootID"] for n in ("a-0", "b-0")}
        rc, doc, err = self.json_cli("repair", "--apply", "--reset-after", rc=0)
        self.assertEqual([s["action"] for s in doc["applied"]], ["clear", "set", "reset"])
        self.assertEqual(doc["applied"][2]["instance"], "a-0")
        reset = f"POST /compute/v1/projects/demo-project/zones/{ZONE}/instances/%s/reset"
        self.assertEqual((self.stats(reset % "a-0"), self.stats(reset % "b-0")), (1, 0))
        a = self.c.node("a-0")
        self.assertNotEqual(a["status"]["nodeInfo"]["bootID"], boot["a-0"])
        self.assertTrue(ready(a))
        self.assertEqual(self.c.node("b-0")["status"]["nodeInfo"]["bootID"], boot["b-0"])
        self.assertFalse(os.path.exists(self.journal))


if __name__ == "__main__":
    unittest.main()
