"""talos-gcp plan/up/down against the emulator: every resource type created, updated,
replaced and deleted; a second up makes no mutating call; drift through the API planned and
repaired; a foreign resource with a wanted name refused; malformed specs refused with
FILE:LINE:COL before anything is created; the VIP never given to an instance; passthrough
ingress, existing instances and --keep-network."""
import os
import re
import shutil
import sys
import tempfile
import unittest

from emu import Emu

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from provision import MARKER, Prov, mutations  # noqa: E402

P = "projects/demo-project"
R = "regions/us-central1"
ZA, ZB = "zones/us-central1-a", "zones/us-central1-b"

# The resources of Prov.BASE_SPEC, written out by hand (an independent statement of the model).
BASE_KEYS = {
    "global/networks/demo", f"{R}/subnetworks/demo-nodes", f"{R}/routers/demo-router",
    "global/firewalls/demo-internal", "global/firewalls/demo-health-checks",
    "global/firewalls/demo-iap-ssh", "global/firewalls/demo-talos-api",
    "global/images/demo-talos", f"{R}/addresses/demo-vip",
    f"{ZA}/instances/demo-cp-0", f"{ZB}/instances/demo-cp-1", f"{ZA}/instances/demo-cp-2",
    f"{ZA}/instances/demo-worker-0", f"{ZB}/instances/demo-worker-1",
    f"{ZA}/instanceGroups/demo-cp-us-central1-a", f"{ZB}/instanceGroups/demo-cp-us-central1-b",
    f"{ZA}/instanceGroups/demo-workers-us-central1-a", f"{ZB}/instanceGroups/demo-workers-us-central1-b",
    f"{R}/healthChecks/demo-cp", f"{R}/backendServices/demo-cp", f"{R}/forwardingRules/demo-cp",
    "global/addresses/demo-cp-ext", "global/healthChecks/demo-cp-ext",
    "global/backendServices/demo-cp-ext", "global/targetTcpProxies/demo-cp-ext",
    "global/forwardingRules/demo-cp-ext",
    "global/healthChecks/demo-ingress", "global/addresses/demo-ingress",
    "global/backendServices/demo-ingress", "global/targetTcpProxies/demo-ingress",
    "global/forwardingRules/demo-ingress-80",
}


def suffix(url):
    return url.split("/compute/v1/projects/demo-project/", 1)[-1]


class ProvisionCase(unittest.TestCase):
    kube = False
    extra = ()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="prov-")
        self.emu = Emu(self.tmp, kube=self.kube, extra=self.extra).start()
        self.p = Prov(self.emu, self.tmp)
        self.p.write(self.p.spec())

    def tearDown(self):
        self.emu.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def ok(self, r, code=0):
        self.assertEqual(r.returncode, code, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def up_and_check(self):
        self.ok(self.p.up())
        self.assertEqual(self.p.plan().returncode, 0)

    def changes(self, plan):
        return {(c["action"], c["key"]) for c in plan["changes"]}


class TestLifecycle(ProvisionCase):
    def test_up_creates_everything_plan_is_clean_noop_and_down(self):
        code, plan = self.p.plan_json()
        self.assertEqual(code, 1)
        self.assertEqual(self.changes(plan), {("create", k) for k in BASE_KEYS})
        self.assertEqual(plan["summary"]["criticalPath"], 5)
        r = self.ok(self.p.up())
        self.assertIn("up complete", r.stdout)
        inv = self.p.inventory()
        self.assertEqual(set(Prov.owned(inv)), BASE_KEYS)
        self.assertEqual(set(inv), BASE_KEYS)  # nothing else was made

        # What the resources say, as the design note and DESIGN.md §3 want them.
        hc = inv[f"{R}/healthChecks/demo-cp"]
        self.assertEqual((hc["type"], hc["httpsHealthCheck"]["port"], hc["httpsHealthCheck"]["requestPath"]),
                         ("HTTPS", 6443, "/readyz"))
        bs = inv[f"{R}/backendServices/demo-cp"]
        self.assertEqual((bs["loadBalancingScheme"], bs["protocol"]), ("INTERNAL", "TCP"))
        self.assertEqual(sorted(suffix(b["group"]) for b in bs["backends"]),
                         [f"{ZA}/instanceGroups/demo-cp-us-central1-a",
                          f"{ZB}/instanceGroups/demo-cp-us-central1-b"])
        fr = inv[f"{R}/forwardingRules/demo-cp"]
        self.assertEqual((fr["IPAddress"], sorted(fr["ports"]), fr["loadBalancingScheme"]),
                         ("10.0.0.2", ["50000", "6443"], "INTERNAL"))
        self.assertEqual(inv[f"{R}/addresses/demo-vip"]["status"], "IN_USE")
        sub = inv[f"{R}/subnetworks/demo-nodes"]
        self.assertEqual(sorted((s["rangeName"], s["ipCidrRange"]) for s in sub["secondaryIpRanges"]),
                         [("pods", "172.20.0.0/16"), ("services", "10.96.0.0/12")])
        nat = inv[f"{R}/routers/demo-router"]["nats"]
        self.assertEqual([n["name"] for n in nat], ["demo-nat"])
        fw = inv["global/firewalls/demo-health-checks"]
        self.assertEqual(sorted(fw["sourceRanges"]), ["130.211.0.0/22", "35.191.0.0/16"])
        self.assertEqual(sorted(fw["allowed"][0]["ports"]), ["30080", "6443"])
        self.assertEqual(inv["global/firewalls/demo-iap-ssh"]["sourceRanges"], ["35.235.240.0/20"])
        for key in ("global/forwardingRules/demo-cp-ext", "global/forwardingRules/demo-ingress-80"):
            self.assertTrue(inv[key]["target"].endswith(key.replace("forwardingRules", "targetTcpProxies")
                                                        .replace("-80", "")))
        self.assertIn(inv["global/forwardingRules/demo-cp-ext"]["portRange"], ("443", "443-443"))
        ext = inv["global/backendServices/demo-cp-ext"]
        self.assertEqual((ext["portName"], ext["timeoutSec"], ext["protocol"]), ("tcp6443", 300, "TCP"))
        self.assertEqual(inv["global/backendServices/demo-ingress"]["portName"], "tcp30080")
        for key, r in inv.items():
            if "/instances/" in key:
                nic = r["networkInterfaces"][0]
                self.assertNotIn("accessConfigs", nic)  # no external address: Cloud NAT
                self.assertEqual(nic["aliasIpRanges"][0]["subnetworkRangeName"], "pods")
                self.assertTrue(nic["aliasIpRanges"][0]["ipCidrRange"].endswith("/24"))
                self.assertTrue(r["disks"][0]["boot"])
        self.assertEqual(self.p.members(f"{ZA}/instanceGroups/demo-cp-us-central1-a"),
                         [f"{ZA}/instances/demo-cp-0", f"{ZA}/instances/demo-cp-2"])
        self.assertEqual(self.p.members(f"{ZB}/instanceGroups/demo-workers-us-central1-b"),
                         [f"{ZB}/instances/demo-worker-1"])

        # plan exits 0; a second up changes nothing and sends no mutating request.
        r = self.p.plan()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("No changes", r.stdout)
        self.emu.stats(reset=True)
        self.ok(self.p.up())
        self.assertEqual(mutations(self.emu.stats()), 0)

        # down leaves nothing the cluster owned.
        code, plan = self.p.plan_json("--destroy")
        self.assertEqual(self.changes(plan), {("delete", k) for k in BASE_KEYS})
        self.ok(self.p.down())
        self.assertEqual(self.p.inventory(), {})
        self.assertEqual(self.p.plan("--destroy").returncode, 0)

    def test_vip_never_given_to_an_instance(self):
        # The VIP is the first address GCP would hand out: reserved before any instance.
        self.ok(self.p.up())
        inv = self.p.inventory()
        ips = {k: r["networkInterfaces"][0]["networkIP"] for k, r in inv.items() if "/instances/" in k}
        self.assertEqual(len(ips), 5)
        self.assertNotIn("10.0.0.2", ips.values())
        self.assertEqual(inv[f"{R}/addresses/demo-vip"]["address"], "10.0.0.2")
        for k, r in inv.items():
            for ar in r.get("networkInterfaces", [{}])[0].get("aliasIpRanges", []):
                self.assertNotEqual(ar["ipCidrRange"], "10.0.0.2/32", k)

    def test_keep_network(self):
        self.ok(self.p.up())
        self.ok(self.p.down("--keep-network"))
        self.assertEqual(set(self.p.inventory()), {"global/networks/demo", f"{R}/subnetworks/demo-nodes"})
        self.assertEqual(self.p.plan("--destroy", "--keep-network").returncode, 0)
        self.ok(self.p.down())
        self.assertEqual(self.p.inventory(), {})


class TestUpdates(ProvisionCase):
    def step(self, expect, **changes):
        """Applies spec changes; the plan must be exactly expect {(action, key)}; up converges."""
        self.p.write(self.p.spec(**changes))
        code, plan = self.p.plan_json()
        self.assertEqual(self.changes(plan), expect, plan)
        self.assertEqual(code, 1 if expect else 0)
        self.up_and_check()
        return plan

    def test_each_type_updated_replaced_and_deleted(self):
        self.up_and_check()
        base = self.p.spec()
        # Ingress target port: health check, named ports, backend service portName, firewall.
        plan = self.step({("update", "global/healthChecks/demo-ingress"),
                          ("update", f"{ZA}/instanceGroups/demo-workers-us-central1-a"),
                          ("update", f"{ZB}/instanceGroups/demo-workers-us-central1-b"),
                          ("update", "global/backendServices/demo-ingress"),
                          ("update", "global/firewalls/demo-health-checks")},
                         ingress=dict(base["ingress"], targetPort=30443))
        fields = {c["key"]: [f["field"] for f in c["fields"]] for c in plan["changes"]}
        self.assertEqual(fields["global/healthChecks/demo-ingress"], ["port"])
        self.assertEqual(fields["global/backendServices/demo-ingress"], ["portName"])
        inv = self.p.inventory()
        self.assertEqual(inv["global/healthChecks/demo-ingress"]["tcpHealthCheck"]["port"], 30443)
        self.assertEqual(inv[f"{ZA}/instanceGroups/demo-workers-us-central1-a"]["namedPorts"],
                         [{"name": "tcp30443", "port": 30443}])
        # Subnetwork secondary range (patch with its fingerprint).
        self.step({("update", f"{R}/subnetworks/demo-nodes"), ("update", "global/firewalls/demo-internal")},
                  network=dict(base["network"], serviceCidr="10.112.0.0/12"),
                  ingress=dict(base["ingress"], targetPort=30443))
        # One worker fewer: its instance goes, its group goes with its last member.
        self.step({("delete", f"{ZB}/instances/demo-worker-1"),
                   ("delete", f"{ZB}/instanceGroups/demo-workers-us-central1-b"),
                   ("update", "global/backendServices/demo-ingress")},
                  network=dict(base["network"], serviceCidr="10.112.0.0/12"),
                  ingress=dict(base["ingress"], targetPort=30443),
                  workers=dict(base["workers"], count=1))
        # An instance's machine config (setMetadata), a machine type (replace).
        with open(os.path.join(self.tmp, "worker2.yaml"), "w") as f:
            f.write("version: v1alpha1\nmachine:\n  type: worker\n  # v2\n")
        cur = dict(network=dict(base["network"], serviceCidr="10.112.0.0/12"),
                   ingress=dict(base["ingress"], targetPort=30443))
        self.step({("update", f"{ZA}/instances/demo-worker-0")},
                  workers=dict(base["workers"], count=1, userData="worker2.yaml"), **cur)
        inv = self.p.inventory()
        self.assertIn("# v2", inv[f"{ZA}/instances/demo-worker-0"]["metadata"]["items"][0]["value"])
        # Labels and network tags change in place (setLabels, setTags): the node stays.
        before = inv[f"{ZA}/instances/demo-worker-0"]
        plan = self.step({("update", f"{ZA}/instances/demo-worker-0")},
                         workers=dict(base["workers"], count=1, userData="worker2.yaml",
                                      labels={"team": "net"}, tags=["ingress", "extra"]), **cur)
        fields = {c["key"]: sorted(f["field"] for f in c["fields"]) for c in plan["changes"]}
        self.assertEqual(fields[f"{ZA}/instances/demo-worker-0"], ["labels", "tags"])
        after = self.p.inventory()[f"{ZA}/instances/demo-worker-0"]
        self.assertEqual(after["id"], before["id"])
        self.assertEqual(after["labels"].get("team"), "net")
        self.assertEqual(after["labels"].get(MARKER), "demo")
        self.assertLessEqual({"extra", "ingress"}, set(after["tags"]["items"]))
        self.assertLessEqual(set(before["tags"]["items"]), set(after["tags"]["items"]))
        self.assertNotEqual(after["labelFingerprint"], before["labelFingerprint"])
        plan = self.step({("replace", f"{ZA}/instances/demo-worker-0"),
                          ("update", f"{ZA}/instanceGroups/demo-workers-us-central1-a")},
                         workers=dict(base["workers"], count=1, userData="worker2.yaml",
                                      machineType="e2-standard-8"), **cur)
        self.assertEqual(self.p.members(f"{ZA}/instanceGroups/demo-workers-us-central1-a"),
                         [f"{ZA}/instances/demo-worker-0"])
        cur["workers"] = dict(base["workers"], count=1, userData="worker2.yaml", machineType="e2-standard-8")
        # The VIP moves: the address is replaced, and the rule that uses it with it.
        plan = self.step({("replace", f"{R}/addresses/demo-vip"), ("replace", f"{R}/forwardingRules/demo-cp")},
                         **dict(cur, network=dict(cur["network"], vip="10.0.0.250")))
        reasons = {c["key"]: c.get("replacedWith") for c in plan["changes"]}
        self.assertEqual(reasons[f"{R}/forwardingRules/demo-cp"], f"{R}/addresses/demo-vip")
        self.assertEqual(self.p.inventory()[f"{R}/forwardingRules/demo-cp"]["IPAddress"], "10.0.0.250")
        cur["network"] = dict(cur["network"], vip="10.0.0.250")
        # A new image source replaces the image (instances keep their disks).
        self.step({("replace", "global/images/demo-talos")},
                  **dict(cur, image={"sourceUri": "gs://talos-images/v2/gcp-amd64.raw.tar.gz"}))
        cur["image"] = {"sourceUri": "gs://talos-images/v2/gcp-amd64.raw.tar.gz"}
        # Another external port: the external rule is replaced.
        self.step({("replace", "global/forwardingRules/demo-cp-ext")},
                  **dict(cur, controlPlane=dict(base["controlPlane"], externalPort=8443)))
        cur["controlPlane"] = dict(base["controlPlane"], externalPort=8443)
        # Two ingress ports: a rule more.
        self.step({("create", "global/forwardingRules/demo-ingress-443")},
                  **dict(cur, ingress=dict(cur["ingress"], ports=[80, 443])))
        # No external control plane and no ingress: their resources are deleted.
        self.step({("delete", k) for k in (
            "global/addresses/demo-cp-ext", "global/healthChecks/demo-cp-ext",
            "global/backendServices/demo-cp-ext", "global/targetTcpProxies/demo-cp-ext",
            "global/forwardingRules/demo-cp-ext", "global/healthChecks/demo-ingress",
            "global/addresses/demo-ingress", "global/backendServices/demo-ingress",
            "global/targetTcpProxies/demo-ingress", "global/forwardingRules/demo-ingress-80",
            "global/forwardingRules/demo-ingress-443",
            f"{ZA}/instanceGroups/demo-workers-us-central1-a")} | {
            ("update", "global/firewalls/demo-health-checks")},
            **dict(cur, controlPlane=dict(base["controlPlane"], external="none"), ingress=None))
        # The MTU is fixed when a network is made: replacing it replaces what is in it.
        code, plan = self.p.plan_json()
        self.p.write(self.p.spec(**dict(cur, controlPlane=dict(base["controlPlane"], external="none"),
                                        ingress=None, network=dict(cur["network"], mtu=1500))))
        code, plan = self.p.plan_json()
        kinds = {c["kind"] for c in plan["changes"] if c["action"] == "replace"}
        self.assertTrue({"networks", "subnetworks", "routers", "firewalls", "instances",
                         "instanceGroups", "addresses", "forwardingRules"} <= kinds, kinds)
        self.up_and_check()
        self.assertEqual(self.p.inventory()["global/networks/demo"]["mtu"], 1500)
        self.ok(self.p.down())
        self.assertEqual(self.p.inventory(), {})

    def test_drift_through_the_api_is_planned_and_repaired(self):
        self.up_and_check()
        e = self.emu
        inv = self.p.inventory()
        # A firewall widened, a backend service's timeout, a NAT removed, a member removed,
        # a proxy header, a health check deleted out from under nobody (it is in use: refused),
        # a firewall deleted, an instance's pods range cleared.
        st, op = e.compute("PATCH", f"{P}/global/firewalls/demo-iap-ssh", {"sourceRanges": ["0.0.0.0/0"]})
        e.wait_op(op)
        bs = inv["global/backendServices/demo-cp-ext"]
        st, op = e.compute("PATCH", f"{P}/global/backendServices/demo-cp-ext",
                           {"fingerprint": bs["fingerprint"], "timeoutSec": 30})
        e.wait_op(op)
        st, op = e.compute("PATCH", f"{P}/{R}/routers/demo-router", {"nats": []})
        e.wait_op(op)
        st, op = e.compute("POST", f"{P}/{ZA}/instanceGroups/demo-cp-us-central1-a/removeInstances",
                           {"instances": [{"instance": f"{ZA}/instances/demo-cp-2"}]})
        e.wait_op(op)
        st, op = e.compute("POST", f"{P}/global/targetTcpProxies/demo-ingress/setProxyHeader",
                           {"proxyHeader": "PROXY_V1"})
        e.wait_op(op)
        st, op = e.compute("DELETE", f"{P}/global/firewalls/demo-talos-api")
        e.wait_op(op)
        e.set_aliases("demo-worker-1", [], zone="us-central1-b")
        code, plan = self.p.plan_json()
        self.assertEqual(code, 1)
        self.assertEqual(self.changes(plan), {
            ("update", "global/firewalls/demo-iap-ssh"),
            ("update", "global/backendServices/demo-cp-ext"),
            ("update", f"{R}/routers/demo-router"),
            ("update", f"{ZA}/instanceGroups/demo-cp-us-central1-a"),
            ("update", "global/targetTcpProxies/demo-ingress"),
            ("create", "global/firewalls/demo-talos-api"),
            ("update", f"{ZB}/instances/demo-worker-1")})
        text = self.p.plan().stdout
        self.assertIn('sourceRanges: ["0.0.0.0/0"] -> ["35.235.240.0/20"]', text)
        self.assertIn("timeoutSec: 30 -> 300", text)
        self.up_and_check()
        inv = self.p.inventory()
        self.assertEqual(inv["global/firewalls/demo-iap-ssh"]["sourceRanges"], ["35.235.240.0/20"])
        self.assertEqual(inv["global/backendServices/demo-cp-ext"]["timeoutSec"], 300)
        self.assertEqual(inv["global/targetTcpProxies/demo-ingress"]["proxyHeader"], "NONE")
        self.assertEqual(len(inv[f"{R}/routers/demo-router"]["nats"]), 1)
        self.assertIn(f"{ZA}/instances/demo-cp-2", self.p.members(f"{ZA}/instanceGroups/demo-cp-us-central1-a"))
        self.assertEqual(inv[f"{ZB}/instances/demo-worker-1"]["networkInterfaces"][0]["aliasIpRanges"][0]
                         ["subnetworkRangeName"], "pods")
        # Deleted resources are created again (an instance, out of its groups: added back).
        st, op = e.compute("DELETE", f"{P}/{ZB}/instances/demo-cp-1")
        e.wait_op(op)
        code, plan = self.p.plan_json()
        self.assertEqual(self.changes(plan), {("create", f"{ZB}/instances/demo-cp-1"),
                                              ("update", f"{ZB}/instanceGroups/demo-cp-us-central1-b")})
        self.up_and_check()
        self.assertEqual(self.p.members(f"{ZB}/instanceGroups/demo-cp-us-central1-b"),
                         [f"{ZB}/instances/demo-cp-1"])


class TestOwnership(ProvisionCase):
    def test_foreign_resource_with_a_wanted_name_is_refused(self):
        self.emu.create_network("other")
        self.emu.insert("global/firewalls", {"name": "demo-iap-ssh", "network": "global/networks/other",
                                             "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]})
        self.emu.stats(reset=True)
        for cmd in ("plan", "up"):
            r = self.p.run(cmd)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn("global/firewalls/demo-iap-ssh exists and is not talos-gcp's", r.stderr)
        self.assertEqual(mutations(self.emu.stats()), 0)
        self.assertEqual(set(self.p.inventory()), {"global/networks/other", "global/firewalls/demo-iap-ssh"})
        # down never touches it either.
        self.ok(self.p.down())
        self.assertEqual(set(self.p.inventory()), {"global/networks/other", "global/firewalls/demo-iap-ssh"})

    def test_other_cluster_is_not_ours(self):
        self.ok(self.p.up())
        other = self.p.write(self.p.spec(name="demo-2", network={"nodeCidr": "10.1.0.0/24",
                                                                "vip": "10.1.0.2"}), "other.yaml")
        code, plan = self.p.plan_json(path=other)
        # demo-2's names start with demo-: demo's resources are listed, never planned.
        self.assertEqual({c["action"] for c in plan["changes"]}, {"create"})
        self.assertTrue(all(c["name"].startswith("demo-2") for c in plan["changes"]))
        self.ok(self.p.down(path=other))
        self.assertEqual(set(Prov.owned(self.p.inventory())), BASE_KEYS)

    def test_existing_instances_are_used_never_changed(self):
        self.ok(self.p.up())
        # An instance made elsewhere, on the cluster's subnet.
        body = Emu.instance_body("legacy-worker", zone="us-central1-b", subnet="demo-nodes")
        body["disks"][0]["initializeParams"]["sourceImage"] = f"{P}/global/images/demo-talos"
        self.emu.insert(f"{ZB}/instances", body)
        before = self.emu.get_instance("legacy-worker", "us-central1-b")
        spec = self.p.spec(workers=dict(self.p.spec()["workers"], existing=["legacy-worker"]))
        self.p.write(spec)
        code, plan = self.p.plan_json()
        self.assertEqual(self.changes(plan), {("update", f"{ZB}/instanceGroups/demo-workers-us-central1-b")})
        self.up_and_check()
        self.assertIn(f"{ZB}/instances/legacy-worker",
                      self.p.members(f"{ZB}/instanceGroups/demo-workers-us-central1-b"))
        self.assertEqual(self.emu.get_instance("legacy-worker", "us-central1-b"), before)
        # down deletes the rest; the subnetwork (and so the network) stays in use by the
        # instance that is not the cluster's: GCP refuses, down says so.
        r = self.p.down()
        self.assertEqual(r.returncode, 2)
        self.assertIn("resourceInUseByAnotherResource", r.stderr)
        self.assertIn("instances/legacy-worker", r.stderr)
        self.assertEqual(set(self.p.inventory()), {f"{ZB}/instances/legacy-worker", "global/networks/demo",
                                                   f"{R}/subnetworks/demo-nodes"})
        self.ok(self.p.down("--keep-network"))
        self.assertEqual(self.emu.get_instance("legacy-worker", "us-central1-b"), before)
        # A missing existing instance is an error at its place in the spec.
        text = open(self.p.path).read().replace('"legacy-worker"', '"ghost"')
        self.p.write(text)
        r = self.p.plan()
        self.assertEqual(r.returncode, 2)
        self.assertRegex(r.stderr, r"cluster\.yaml:\d+:\d+: workers\.existing\[0\]: instance ghost not found")


class TestPassthrough(ProvisionCase):
    def test_regional_passthrough_tcp_and_udp_on_two_addresses(self):
        self.p.write(self.p.spec(ingress={"type": "passthrough", "ports": [443, 8443], "targetPort": None,
                                          "protocols": ["TCP", "UDP"], "addresses": 2},
                                 controlPlane=dict(self.p.spec()["controlPlane"], external="none")))
        self.up_and_check()
        inv = self.p.inventory()
        rules = {k: r for k, r in inv.items() if "/forwardingRules/demo-ingress" in k}
        self.assertEqual(set(rules), {f"{R}/forwardingRules/demo-ingress-tcp", f"{R}/forwardingRules/demo-ingress-udp",
                                      f"{R}/forwardingRules/demo-ingress-1-tcp", f"{R}/forwardingRules/demo-ingress-1-udp"})
        for k, r in rules.items():
            self.assertEqual(sorted(r["ports"]), ["443", "8443"])
            self.assertEqual(r["loadBalancingScheme"], "EXTERNAL")
            self.assertTrue(r["backendService"].endswith("-" + r["IPProtocol"].lower()))
        self.assertEqual(rules[f"{R}/forwardingRules/demo-ingress-tcp"]["IPAddress"],
                         inv[f"{R}/addresses/demo-ingress"]["address"])
        fw = inv["global/firewalls/demo-ingress"]
        self.assertEqual(fw["sourceRanges"], ["0.0.0.0/0"])
        self.assertEqual(fw["targetTags"], ["demo-worker"])
        self.ok(self.p.down())
        self.assertEqual(self.p.inventory(), {})


class TestMalformedSpecs(ProvisionCase):
    GOOD = """name: demo
region: us-central1
zones: [us-central1-a]
image:
  name: talos
controlPlane:
  count: 1
"""
    CASES = [
        ("name: demo\nregion: us-central1\nzones: [us-central1-a]\nimage: {name: talos}\n"
         "controlPlane: {count: 1}\nwrokers: {count: 1}\n", r"cluster\.yaml:6:1: unknown key 'wrokers'"),
        (GOOD.replace("count: 1", "count: three"), r"cluster\.yaml:7:10: controlPlane\.count: want a number"),
        (GOOD + "network:\n  nodeCidr: 10.0.0.0/24\n  podCidr: 10.0.0.0/16\n",
         r"cluster\.yaml:10:12: network\.podCidr: 10\.0\.0\.0/16 overlaps nodeCidr"),
        (GOOD + "network:\n  vip: 10.0.1.2\n", r"cluster\.yaml:9:8: network\.vip: 10\.0\.1\.2 is outside nodeCidr"),
        (GOOD + "network:\n  vip: 10.0.0.255\n", r"cluster\.yaml:9:8: network\.vip: 10\.0\.0\.255 is reserved by GCP"),
        (GOOD + "network:\n  vip: 10.0.0.1\n", r"cluster\.yaml:9:8: network\.vip: 10\.0\.0\.1 is reserved by GCP"),
        (GOOD.replace("count: 1", "count: 300") + "network:\n  nodeCidr: 10.0.0.0/20\n  podCidr: 172.20.0.0/24\n",
         r"cluster\.yaml:10:12: network\.podCidr: 172\.20\.0\.0/24 holds 1 /24s, and the spec has 300 nodes"),
        (GOOD + "network:\n  nodeCidr: 10.0.0.1/24\n", r"cluster\.yaml:9:13: network\.nodeCidr: '10\.0\.0\.1/24' has host bits"),
        (GOOD.replace("zones: [us-central1-a]", "zones: [europe-west1-b]"),
         r"cluster\.yaml:3:9: zones\[0\]: 'europe-west1-b' is not a zone of us-central1"),
        (GOOD + "ingress:\n  type: passthrough\n  ports: [80]\n  targetPort: 30080\n",
         r"cluster\.yaml:11:15: ingress\.targetPort: a passthrough load balancer does not translate"),
        (GOOD + "ingress: {type: tcp-proxy, ports: [80]}\n", r"cluster\.yaml:8:10: ingress: ingress needs workers"),
        (GOOD.replace("name: demo", "name: Demo_1"), r"cluster\.yaml:1:7: name: 'Demo_1': want a lowercase"),
        (GOOD.replace("name: demo", "name: " + "x" * 50), r"cluster\.yaml:1:7: name: '.*' is too long"),
        (GOOD.replace("  name: talos", "  sourceUri: http://example.com/talos.tar.gz"),
         r"cluster\.yaml:5:14: image\.sourceUri: 'http://example\.com/talos\.tar\.gz': want gs://"),
        (GOOD.replace("count: 1", "count: 1\n  userData: missing.yaml"),
         r"cluster\.yaml:8:13: controlPlane\.userData: cannot read .*missing\.yaml"),
        (GOOD + "controlPlane: {count: 2}\n", r"cluster\.yaml:8:1: duplicate key 'controlPlane'"),
        ("name: [demo\n", r"cluster\.yaml:\d+:\d+:"),
        ("- a\n- b\n", r"cluster\.yaml:1:1: the spec is a mapping"),
        (GOOD.replace("zones: [us-central1-a]", "zones: us-central1-a"),
         r"cluster\.yaml:3:8: zones: want a list"),
    ]

    def test_malformed_specs_name_file_line_col_and_change_nothing(self):
        self.emu.stats(reset=True)
        wrong = []
        for text, want in self.CASES:
            self.p.write(text)
            for cmd in ("plan", "up"):
                r = self.p.run(cmd)
                lines = r.stderr.strip().splitlines()
                if r.returncode != 2 or len(lines) != 1 or not re.search(want, r.stderr):
                    wrong.append(f"{cmd} {want!r}: exit {r.returncode}, stderr {r.stderr!r}")
        self.assertEqual(wrong, [])
        self.assertEqual(self.p.inventory(), {})
        self.assertEqual(mutations(self.emu.stats()), 0)


class TestRenderFromSpec(unittest.TestCase):
    def render(self, *args):
        from emu import TALOS_GCP
        import subprocess
        return subprocess.run([TALOS_GCP, "render", *args], capture_output=True, text=True, timeout=60)

    def test_render_takes_the_spec(self):
        tmp = tempfile.mkdtemp(prefix="prov-render-")
        try:
            spec = os.path.join(tmp, "c.yaml")
            with open(spec, "w") as f:
                f.write("name: edge\nproject: my-proj-1\nregion: europe-west1\nzones: [europe-west1-b]\n"
                        "network: {nodeCidr: 10.10.0.0/20, podCidr: 10.64.0.0/14, vip: 10.10.0.10, mtu: 1500}\n"
                        "image: {name: talos}\ncontrolPlane: {count: 1, userData: not-read.yaml}\n")
            from_spec = self.render("-f", spec, "--vip-alias-image", "vip-alias:test")
            self.assertEqual(from_spec.returncode, 0, from_spec.stderr)
            flags = self.render("--cluster-name", "edge", "--project", "my-proj-1", "--region", "europe-west1",
                                "--network", "edge", "--subnetwork", "edge-nodes", "--node-tag", "edge-node",
                                "--node-cidr", "10.10.0.0/20", "--pod-cidr", "10.64.0.0/14",
                                "--service-cidr", "10.96.0.0/12", "--vip", "10.10.0.10", "--mtu", "1500",
                                "--nodes", "1", "--vip-alias-image", "vip-alias:test")
            self.assertEqual(flags.returncode, 0, flags.stderr)
            # The same output but for the header naming the flags.
            self.assertEqual(from_spec.stdout.split("\n", 1)[1], flags.stdout.split("\n", 1)[1])
            # A flag overrides the spec, wherever it is.
            over = self.render("--vip", "10.10.0.20", "-f", spec, "--only", "talos",
                               "--vip-alias-image", "vip-alias:test")
            self.assertEqual(over.returncode, 0, over.stderr)
            self.assertIn("10.10.0.20", over.stdout)
            self.assertNotIn("10.10.0.10", over.stdout)
            with open(spec, "a") as f:
                f.write("ingress: {type: bogus}\n")
            bad = self.render("-f", spec, "--vip-alias-image", "vip-alias:test")
            self.assertEqual(bad.returncode, 2)
            self.assertRegex(bad.stderr, r"c\.yaml:8:17: ingress\.type: 'bogus'")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
