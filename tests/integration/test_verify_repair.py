"""talos-gcp verify and repair against talos-gcp-emu, end to end.

Every scenario is built through the real APIs (instances.insert, updateNetworkInterface,
the Kubernetes API); the assertions read the emulator's state back through the same APIs.
"""
import json
import tempfile
import time
import unittest

from cluster import Cluster, Emu, talos_gcp


class Base(unittest.TestCase):
    ccm = "off"

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.emu = Emu(self._tmp.name, ccm=self.ccm).start()
        self.c = Cluster(self.emu).network()

    def tearDown(self):
        try:
            self.emu.stop()
        finally:
            self._tmp.cleanup()

    def run_cli(self, *args, **kw):
        return talos_gcp(self.emu, *args, **kw)

    def verify_json(self, *extra):
        rc, out, err = self.run_cli("verify", "-o", "json", *extra)
        self.assertIn(rc, (0, 1), err)
        doc = json.loads(out)
        return rc, doc, {n["node"]: n for n in doc["nodes"]}

    def pair(self, name, alias="/24", podcidr=None):
        """An instance (Talos node) and its Node; podcidr: set it by hand (ccm off)."""
        self.c.instance(name, alias=alias)
        # The CCM's node controller sets providerID when it initialises the Node.
        self.c.wait_node(name, pred=lambda n: n.get("spec", {}).get("providerID"))
        if podcidr:
            self.c.set_podcidr(name, podcidr)


class VerifyTest(Base):
    def test_every_status(self):
        self.pair("ok-0", alias="172.20.1.0/24", podcidr="172.20.1.0/24")
        self.pair("mm-0", alias="172.20.14.0/24", podcidr="172.20.7.0/24")
        self.pair("na-0", alias=None, podcidr="172.20.3.0/24")
        self.pair("np-0", alias="172.20.4.0/24")
        self.c.create_node("ni-0", self.c.provider_id("gone"), "172.20.5.0/24")
        self.pair("dup-a", alias="172.20.6.0/24", podcidr="172.20.6.0/24")
        self.c.create_node("dup-b", self.c.provider_id("dup-a"), "172.20.8.0/24")

        rc, doc, nodes = self.verify_json()
        self.assertEqual(rc, 1)
        self.assertFalse(doc["aligned"])
        want = {"ok-0": "ok", "mm-0": "mismatch", "na-0": "no-alias", "np-0": "no-podcidr",
                "ni-0": "no-instance", "dup-a": "duplicate", "dup-b": "duplicate"}
        self.assertEqual({k: v["status"] for k, v in nodes.items()}, want)
        mm = nodes["mm-0"]
        self.assertEqual((mm["instance"], mm["zone"], mm["podCIDR"], mm["aliasRange"]),
                         ("mm-0", "europe-west1-b", "172.20.7.0/24", "172.20.14.0/24"))
        self.assertIsNone(nodes["ni-0"]["instance"])  # a stable schema: null, not absent
        self.assertEqual(doc["summary"]["duplicate"], 2)

        rc, out, _ = self.run_cli("verify")
        self.assertEqual(rc, 1)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["NODE", "INSTANCE", "ZONE", "PODCIDR", "ALIAS", "STATUS"])
        row = next(l.split() for l in lines if l.startswith("mm-0 "))
        self.assertEqual(row, ["mm-0", "mm-0", "europe-west1-b", "172.20.7.0/24", "172.20.14.0/24", "mismatch"])
        self.assertIn("NOT aligned", lines[-1])

    def test_node_filter_and_aligned_exit(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.1.0/24")
        self.pair("b-0", alias="172.20.2.0/24", podcidr="172.20.9.0/24")
        rc, doc, nodes = self.verify_json("--node", "a-0")
        self.assertEqual((rc, doc["aligned"], list(nodes)), (0, True, ["a-0"]))
        rc, doc, nodes = self.verify_json("--node", "b-0")
        self.assertEqual((rc, nodes["b-0"]["status"]), (1, "mismatch"))
        rc, out, err = self.run_cli("verify", "--node", "nope")
        self.assertEqual(rc, 2)
        self.assertIn("--node nope: no such Node", err)

    def test_empty_cluster_is_aligned(self):
        rc, doc, nodes = self.verify_json()
        self.assertEqual((rc, doc["aligned"], nodes), (0, True, {}))

    def test_request_count_is_two_lists(self):
        for i in range(3):
            self.pair(f"n-{i}", alias=f"172.20.{i}.0/24", podcidr=f"172.20.{i}.0/24")
        self.emu.control("DELETE", "stats")
        rc, _, err = self.run_cli("verify", "-v")
        self.assertEqual(rc, 0, err)
        _, stats = self.emu.control("GET", "stats")
        # One Node list and one aggregated instance list: nothing per node.
        self.assertEqual(stats["total"], 2, stats)


class RepairGcpTest(Base):
    def assert_aligned(self):
        rc, doc, nodes = self.verify_json()
        self.assertEqual(rc, 0, json.dumps(doc))
        return nodes

    def test_plan_changes_nothing_then_apply_then_nothing_to_do(self):
        self.pair("a-0", alias="172.20.14.0/24", podcidr="172.20.7.0/24")
        self.pair("b-0", alias=None, podcidr="172.20.3.0/24")
        rc, out, err = self.run_cli("repair")
        self.assertEqual(rc, 1, err)
        self.assertIn("clear  a-0", out)
        self.assertIn("set    a-0", out)
        self.assertIn("pods:172.20.7.0/24", out)
        self.assertIn("--apply", out)
        self.assertEqual(self.c.alias("a-0"), "172.20.14.0/24")  # plan changed nothing
        self.assertIsNone(self.c.alias("b-0"))

        rc, out, err = self.run_cli("repair", "--apply")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("(aligned)", out)
        self.assertEqual(self.c.alias("a-0"), "172.20.7.0/24")
        self.assertEqual(self.c.alias("b-0"), "172.20.3.0/24")
        self.assert_aligned()

        rc, out, err = self.run_cli("repair")
        self.assertEqual(rc, 0, err)
        self.assertIn("Nothing to do", out)
        rc, out, err = self.run_cli("repair", "--apply", "-o", "json")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual((doc["aligned"], doc["applied"]), (True, []))

    def test_two_node_swap(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.2.0/24")
        self.pair("b-0", alias="172.20.2.0/24", podcidr="172.20.1.0/24")
        rc, out, err = self.run_cli("repair", "--apply", "-o", "json")
        self.assertEqual(rc, 0, out + err)
        doc = json.loads(out)
        actions = [(s["action"], s["instance"]) for s in doc["applied"]]
        self.assertEqual(len(actions), 4)
        self.assertEqual(actions[0][0], "clear")  # a range is freed before it is reused
        self.assertEqual(self.c.alias("a-0"), "172.20.2.0/24")
        self.assertEqual(self.c.alias("b-0"), "172.20.1.0/24")
        self.assert_aligned()

    def test_three_node_cycle(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.2.0/24")
        self.pair("b-0", alias="172.20.2.0/24", podcidr="172.20.3.0/24")
        self.pair("c-0", alias="172.20.3.0/24", podcidr="172.20.1.0/24")
        rc, out, err = self.run_cli("repair", "--apply")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual([self.c.alias(n) for n in ("a-0", "b-0", "c-0")],
                         ["172.20.2.0/24", "172.20.3.0/24", "172.20.1.0/24"])
        self.assert_aligned()

    def test_foreign_instance_is_refused_and_untouched(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.9.0/24")
        self.c.instance("foreign-vm", alias="172.20.9.0/24", talos=False)
        before = self.c.get_instance("foreign-vm")
        rc, out, err = self.run_cli("repair", "--apply")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("held by instance foreign-vm", out)
        self.assertIn("not a node of this cluster", out)
        after = self.c.get_instance("foreign-vm")
        self.assertEqual(before["networkInterfaces"], after["networkInterfaces"])
        self.assertEqual(self.c.alias("a-0"), "172.20.1.0/24")

    def test_podcidr_outside_pods_range_is_refused(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="10.99.0.0/24")
        rc, out, err = self.run_cli("repair", "--apply")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("outside every secondary range", out)
        self.assertEqual(self.c.alias("a-0"), "172.20.1.0/24")

    def test_stale_fingerprint_between_read_and_write(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.2.0/24")
        # Another client's update lands between the CLI's read and its first write: the
        # fault gives the interface a new fingerprint as the first PATCH arrives, so that
        # PATCH carries a stale one (412); the CLI reads again and goes on.
        path = f"/compute/v1/projects/{self.emu.project}/zones/europe-west1-b/instances/a-0/updateNetworkInterface"
        fault = self.emu.add_fault(method="PATCH", path=path, changeFingerprint=True, count=1)
        self.assertTrue(fault["changeFingerprint"])
        rc, out, err = self.run_cli("repair", "--apply")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("fingerprint changed under us (412)", err)
        self.assertEqual(err.count("(412)"), 1, err)
        self.assertEqual(self.emu.control("GET", "faults")[1]["faults"], [])  # it fired
        self.assertEqual(self.c.alias("a-0"), "172.20.2.0/24")


class RepairNodeTest(Base):
    ccm = "cloud"

    def misaligned_node(self, name):
        """Cloud mode aligns the Node at registration; moving the alias afterwards cannot
        change the (immutable) podCIDR: the mismatch stays, as in a real cluster."""
        self.c.instance(name, alias="172.20.1.0/24")
        self.c.wait_node(name, podcidr="172.20.1.0/24")
        self.c.move_alias(name, "172.20.5.0/24")

    def test_node_strategy_deletes_and_reregisters(self):
        # The emulated kubelet registers only when it starts: the Node comes back because
        # repair resets its instance, not by itself.
        self.misaligned_node("a-0")
        old = self.c.node("a-0")
        rc, out, err = self.run_cli("repair", "--strategy", "node")
        self.assertEqual(rc, 1, err)
        self.assertIn("cordon, drain and delete Node a-0", out)
        self.assertIn("reset its instance", out)
        self.assertEqual(self.c.node("a-0")["metadata"]["uid"], old["metadata"]["uid"])  # plan only
        rc, out, err = self.run_cli("repair", "--strategy", "node", "--apply", "--wait-timeout", "30s",
                                    "-o", "json")
        self.assertEqual(rc, 0, out + err)
        doc = json.loads(out)
        self.assertTrue(doc["aligned"])
        self.assertEqual([s["action"] for s in doc["applied"]],
                         ["cordon", "drain", "delete-node", "reset", "registered", "uncordon"])
        n = self.c.node("a-0")
        self.assertNotEqual(n["metadata"]["uid"], old["metadata"]["uid"])
        self.assertEqual(n["spec"]["podCIDR"], "172.20.5.0/24")
        self.assertFalse(n["spec"].get("unschedulable", False))


class RepairNodeRefusedTest(Base):
    ccm = "range"

    def test_node_strategy_refused_without_cloud_allocator(self):
        self.c.instance("a-0", alias="172.20.1.0/24")
        self.c.wait_node("a-0", podcidr=True)
        uid = self.c.node("a-0")["metadata"]["uid"]
        rc, out, err = self.run_cli("repair", "--strategy", "node", "--apply")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("refusing --strategy node", err)
        self.assertIn("RangeAllocator", err)
        self.assertEqual(self.c.node("a-0")["metadata"]["uid"], uid)


class RepairRangeModeTest(Base):
    ccm = "range"

    def test_split_brain_fixed_by_gcp_strategy(self):
        for i in range(3):
            self.c.instance(f"n-{i}")
        for i in range(3):
            self.c.wait_node(f"n-{i}", podcidr=True)
        rc, doc, nodes = self.verify_json()
        self.assertEqual(rc, 1)
        self.assertTrue(all(n["status"] == "mismatch" for n in nodes.values()), nodes)
        rc, out, err = self.run_cli("repair", "--apply")
        self.assertEqual(rc, 0, out + err)
        rc, doc, nodes = self.verify_json()
        self.assertEqual(rc, 0)


class FailureTest(Base):
    def test_retry_after_429_and_503(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.1.0/24")
        path = f"/compute/v1/projects/{self.emu.project}/aggregated/instances"
        self.emu.control("POST", "faults", {"method": "GET", "path": path, "status": 429,
                                            "reason": "rateLimitExceeded", "retryAfter": "1", "count": 1})
        self.emu.control("POST", "faults", {"method": "GET", "path": "/api/v1/nodes", "status": 503,
                                            "retryAfter": "1", "count": 1})
        t0 = time.monotonic()
        rc, out, err = self.run_cli("verify", "-v")
        self.assertEqual(rc, 0, err)
        self.assertGreaterEqual(time.monotonic() - t0, 1.0)  # Retry-After was honoured

    def test_hanging_endpoint_times_out(self):
        path = f"/compute/v1/projects/{self.emu.project}/aggregated/instances"
        self.emu.control("POST", "faults", {"method": "GET", "path": path, "delayMs": 60000})
        t0 = time.monotonic()
        rc, out, err = self.run_cli("verify", "--timeout", "1s")
        self.assertEqual(rc, 2, err)
        self.assertLess(time.monotonic() - t0, 30)
        self.assertIn("timed out", err.lower())
        self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_malformed_kubeconfig(self):
        bad = f"{self.emu.tmpdir}/bad-kubeconfig"
        with open(bad, "w") as f:
            f.write("apiVersion: v1\nclusters:\n- name: x\n  cluster: [unclosed\n")
        rc, out, err = self.run_cli("verify", "--kubeconfig", bad)
        self.assertEqual((rc, out), (2, ""))
        self.assertIn(bad + ":", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_malformed_credentials_json(self):
        bad = f"{self.emu.tmpdir}/sa.json"
        with open(bad, "w") as f:
            f.write('{"type": "service_account", "client_email": ')
        rc, out, err = self.run_cli("repair", "--apply", env={
            "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "", "GOOGLE_APPLICATION_CREDENTIALS": bad})
        self.assertEqual((rc, out), (2, ""))
        self.assertIn(bad, err)

    def test_malformed_json_response(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.2.0/24")
        path = f"/compute/v1/projects/{self.emu.project}/aggregated/instances"
        self.emu.control("POST", "faults", {"method": "GET", "path": path, "status": 200,
                                            "body": "{\"items\": {", "count": 1})
        rc, out, err = self.run_cli("repair", "--apply")
        self.assertEqual(rc, 2, out + err)
        self.assertEqual(self.c.alias("a-0"), "172.20.1.0/24")  # nothing changed

    def test_malformed_cidr_from_api(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.2.0/24")
        path = f"/compute/v1/projects/{self.emu.project}/aggregated/instances"
        _, good = self.emu.compute("GET", f"projects/{self.emu.project}/aggregated/instances")
        for scope in good["items"].values():
            for inst in scope.get("instances", []):
                inst["networkInterfaces"][0]["aliasIpRanges"][0]["ipCidrRange"] = "172.20.1.0/33"
        self.emu.control("POST", "faults", {"method": "GET", "path": path, "status": 200,
                                            "body": json.dumps(good), "count": 1})
        rc, out, err = self.run_cli("repair", "--apply")
        self.assertEqual(rc, 2, out + err)
        self.assertIn("'172.20.1.0/33' is not a CIDR range", err)
        self.assertEqual(self.c.alias("a-0"), "172.20.1.0/24")


if __name__ == "__main__":
    unittest.main()
