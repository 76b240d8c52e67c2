"""Compute Engine v1 in talos-gcp-emu: resources, operations, errors, as GCP documents them."""
import base64
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import uuid

from emu import Emu

P = "projects/demo-project"
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
# The project's shared tools live next to the repository (../shared); CI may not have them.
VALIDATE = os.environ.get("GCE_VALIDATE",
                          os.path.join(SOURCE_ROOT, "..", "shared", "tools", "gce-validate.py"))
SDK_PYTHON = "/usr/lib/google-cloud-sdk/platform/bundledpythonunix/bin/python3"


def error_reason(body):
    return body["error"]["errors"][0]["reason"]


class ComputeWorld(unittest.TestCase):
    """One emulator with a network, a subnet (pods + services ranges) and two Talos nodes."""

    extra = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-compute-")
        cls.emu = Emu(cls.tmp, kube=False, extra=cls.extra).start()
        cls.emu.create_network("talos")
        cls.emu.create_subnet("nodes")
        cls.emu.create_instance("node-a")
        cls.emu.create_instance("node-b")

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def get(self, path, **query):
        return self.emu.compute("GET", f"{P}/{path}", query=query or None)

    def aliases(self, name):
        nic = self.emu.get_instance(name)["networkInterfaces"][0]
        return [(a.get("subnetworkRangeName"), a["ipCidrRange"]) for a in nic.get("aliasIpRanges", [])]


class TestCatalogue(ComputeWorld):
    def test_zone_get_and_list(self):
        status, z = self.get("zones/us-central1-a")
        self.assertEqual(status, 200)
        self.assertEqual(z["kind"], "compute#zone")
        self.assertTrue(z["region"].endswith("/regions/us-central1"))
        self.assertEqual(z["status"], "UP")
        self.assertIsInstance(z["id"], str)
        status, lst = self.get("zones")
        self.assertEqual(status, 200)
        names = [i["name"] for i in lst["items"]]
        self.assertIn("europe-west1-b", names)
        self.assertEqual(names, sorted(names))

    def test_region_get(self):
        status, r = self.get("regions/europe-west1")
        self.assertEqual(status, 200)
        self.assertTrue(any(z.endswith("/zones/europe-west1-b") for z in r["zones"]))

    def test_unknown_zone_is_404_in_googles_shape(self):
        status, body = self.get("zones/mars-north1-a")
        self.assertEqual(status, 404)
        self.assertEqual(body["error"]["code"], 404)
        self.assertEqual(error_reason(body), "notFound")
        self.assertIn("mars-north1-a", body["error"]["message"])
        status, body = self.get("zones/mars-north1-a/instances")
        self.assertEqual(status, 404)

    def test_other_project_is_404(self):
        status, body = self.emu.compute("GET", "projects/someone-else/zones")
        self.assertEqual(status, 404)
        self.assertIn("projects/someone-else", body["error"]["message"])

    def test_project_get(self):
        status, p = self.emu.compute("GET", P)
        self.assertEqual(status, 200)
        self.assertEqual(p["name"], "demo-project")
        self.assertTrue(p["defaultServiceAccount"].endswith("-compute@developer.gserviceaccount.com"))


class TestNetworks(ComputeWorld):
    def test_network_shape(self):
        status, n = self.get("global/networks/talos")
        self.assertEqual(status, 200)
        self.assertEqual(n["kind"], "compute#network")
        self.assertFalse(n["autoCreateSubnetworks"])
        self.assertEqual(n["mtu"], 1460)
        self.assertTrue(any(s.endswith("/regions/us-central1/subnetworks/nodes") for s in n["subnetworks"]))

    def test_subnet_shape(self):
        status, s = self.get("regions/us-central1/subnetworks/nodes")
        self.assertEqual(status, 200)
        self.assertEqual(s["ipCidrRange"], "10.0.0.0/16")
        self.assertEqual(s["gatewayAddress"], "10.0.0.1")
        self.assertEqual({r["rangeName"]: r["ipCidrRange"] for r in s["secondaryIpRanges"]},
                         {"pods": "172.20.0.0/14", "services": "172.24.0.0/16"})
        self.assertEqual(len(base64.b64decode(s["fingerprint"])), 8)

    def test_duplicate_name_is_409(self):
        status, body = self.emu.compute("POST", f"{P}/global/networks",
                                        {"name": "talos", "autoCreateSubnetworks": False})
        self.assertEqual(status, 409)
        self.assertEqual(error_reason(body), "alreadyExists")

    def test_bad_name_is_400(self):
        for name in ("Talos", "-x", "x" * 64, "a_b", ""):
            status, body = self.emu.compute("POST", f"{P}/global/networks", {"name": name})
            self.assertEqual(status, 400, name)

    def test_overlapping_subnet_refused(self):
        for cidr, pods in (("10.0.128.0/24", "192.168.0.0/24"),   # inside nodes
                           ("10.9.0.0/24", "172.21.0.0/24"),      # pods inside the other pods
                           ("10.9.0.0/24", "10.9.0.0/25")):       # secondary overlaps primary
            status, body = self.emu.compute("POST", f"{P}/regions/us-central1/subnetworks", {
                "name": "other", "network": "global/networks/talos", "ipCidrRange": cidr,
                "secondaryIpRanges": [{"rangeName": "pods", "ipCidrRange": pods}]})
            self.assertEqual(status, 400, (cidr, pods, body))

    def test_bad_ranges_refused(self):
        for cidr in ("10.0.0.1/16", "10.0.0.0/30", "banana", "127.0.0.0/8", "fd00::/64"):
            status, body = self.emu.compute("POST", f"{P}/regions/us-west1/subnetworks", {
                "name": "bad", "network": "global/networks/talos", "ipCidrRange": cidr})
            self.assertEqual(status, 400, cidr)

    def test_subnet_of_missing_network_is_404(self):
        status, body = self.emu.compute("POST", f"{P}/regions/us-west1/subnetworks", {
            "name": "lost", "network": "global/networks/nope", "ipCidrRange": "10.50.0.0/24"})
        self.assertEqual(status, 404)

    def test_in_use_cannot_be_deleted(self):
        status, body = self.emu.compute("DELETE", f"{P}/regions/us-central1/subnetworks/nodes")
        self.assertEqual(status, 400)
        self.assertEqual(error_reason(body), "resourceInUseByAnotherResource")
        status, body = self.emu.compute("DELETE", f"{P}/global/networks/talos")
        self.assertEqual(status, 400)
        self.assertEqual(error_reason(body), "resourceInUseByAnotherResource")

    def test_auto_mode_network(self):
        self.emu.create_network("auto", auto=True)
        status, s = self.get("regions/europe-west1/subnetworks/auto")
        self.assertEqual(status, 200)
        self.assertEqual(s["ipCidrRange"], "10.132.0.0/20")
        op = self.emu.insert("zones/europe-west1-b/instances", {
            "name": "auto-vm", "machineType": "zones/europe-west1-b/machineTypes/e2-small",
            "disks": [{"boot": True, "initializeParams": {
                "sourceImage": "projects/debian-cloud/global/images/family/debian-12"}}],
            "networkInterfaces": [{"network": "global/networks/auto"}]})
        self.assertEqual(op["status"], "DONE")
        vm = self.emu.get_instance("auto-vm", "europe-west1-b")
        self.assertTrue(vm["networkInterfaces"][0]["subnetwork"].endswith("/regions/europe-west1/subnetworks/auto"))
        self.assertEqual(vm["networkInterfaces"][0]["networkIP"], "10.132.0.2")
        status, op = self.emu.compute("DELETE", f"{P}/zones/europe-west1-b/instances/auto-vm")
        self.emu.wait_op(op)
        status, op = self.emu.compute("DELETE", f"{P}/global/networks/auto")
        self.assertEqual(status, 200, op)
        self.assertFalse(self.emu.wait_op(op).get("error"))
        status, _ = self.get("regions/europe-west1/subnetworks/auto")
        self.assertEqual(status, 404)

    def test_subnet_patch_adds_a_range_with_fingerprint(self):
        self.emu.insert("regions/us-west1/subnetworks", {
            "name": "patchme", "network": "global/networks/talos", "ipCidrRange": "10.60.0.0/24"})
        _, s = self.get("regions/us-west1/subnetworks/patchme")
        body = {"fingerprint": s["fingerprint"],
                "secondaryIpRanges": [{"rangeName": "pods", "ipCidrRange": "10.61.0.0/20"}]}
        path = f"{P}/regions/us-west1/subnetworks/patchme"
        status, op = self.emu.compute("PATCH", path, body)
        self.assertEqual(status, 200, op)
        self.emu.wait_op(op)
        status, err = self.emu.compute("PATCH", path, body)  # the fingerprint changed
        self.assertEqual(status, 412)
        self.assertEqual(error_reason(err), "conditionNotMet")
        _, s2 = self.get("regions/us-west1/subnetworks/patchme")
        self.assertEqual(s2["secondaryIpRanges"], body["secondaryIpRanges"])


class TestInstances(ComputeWorld):
    def test_instance_shape(self):
        vm = self.emu.get_instance("node-a")
        self.assertEqual(vm["kind"], "compute#instance")
        self.assertEqual(vm["status"], "RUNNING")
        self.assertIsInstance(vm["id"], str)
        self.assertTrue(vm["id"].isdigit())
        self.assertTrue(vm["zone"].endswith("/projects/demo-project/zones/us-central1-a"))
        self.assertTrue(vm["selfLink"].endswith("/zones/us-central1-a/instances/node-a"))
        self.assertTrue(vm["machineType"].endswith("/zones/us-central1-a/machineTypes/e2-standard-4"))
        nic = vm["networkInterfaces"][0]
        self.assertEqual(nic["name"], "nic0")
        self.assertTrue(nic["networkIP"].startswith("10.0.0."))
        self.assertEqual(len(base64.b64decode(nic["fingerprint"])), 8)
        self.assertEqual(vm["metadata"]["items"][0]["key"], "user-data")
        self.assertIn("creationTimestamp", vm)

    def test_alias_netmask_allocated_from_pods(self):
        a, b = self.aliases("node-a"), self.aliases("node-b")
        self.assertEqual(a[0][0], "pods")
        self.assertTrue(a[0][1].endswith("/24"))
        self.assertNotEqual(a, b)
        ips = {self.emu.get_instance(n)["networkInterfaces"][0]["networkIP"] for n in ("node-a", "node-b")}
        self.assertEqual(len(ips), 2)
        self.assertNotIn("10.0.0.0", ips)
        self.assertNotIn("10.0.0.1", ips)  # the gateway

    def test_get_missing_instance(self):
        status, body = self.get("zones/us-central1-a/instances/ghost")
        self.assertEqual(status, 404)
        self.assertEqual(body["error"]["message"],
                         "The resource 'projects/demo-project/zones/us-central1-a/instances/ghost' was not found")

    def test_explicit_alias_and_conflict(self):
        self.emu.create_instance("explicit", alias="172.22.5.0/24")
        self.assertEqual(self.aliases("explicit"), [("pods", "172.22.5.0/24")])
        # The same range on another instance: the Operation fails, nothing is created.
        op = self.emu.create_instance("clash", alias="172.22.5.128/25", wait=False)
        op = self.emu.wait_op(op)
        self.assertEqual(op["error"]["errors"][0]["code"], "IP_IN_USE_BY_ANOTHER_RESOURCE")
        self.assertEqual(op["httpErrorStatusCode"], 400)
        self.assertIsNone(self.emu.get_instance("clash"))

    def test_alias_outside_range_refused(self):
        for alias in ("10.200.0.0/24", "172.24.0.0/24", "172.20.0.1/24", "/8", "x/24"):
            status, body = self.emu.compute("POST", f"{P}/zones/us-central1-a/instances",
                                            Emu.instance_body("outside", alias=alias))
            self.assertEqual(status, 400, (alias, body))

    def test_unknown_range_name_refused(self):
        body = Emu.instance_body("norange")
        body["networkInterfaces"][0]["aliasIpRanges"][0]["subnetworkRangeName"] = "nope"
        status, err = self.emu.compute("POST", f"{P}/zones/us-central1-a/instances", body)
        self.assertEqual(status, 400)
        self.assertIn("nope", err["error"]["message"])

    def test_instance_needs_existing_subnet_in_region(self):
        body = Emu.instance_body("wrongregion", zone="europe-west1-b")
        status, err = self.emu.compute("POST", f"{P}/zones/europe-west1-b/instances", body)
        self.assertEqual(status, 404)
        body = Emu.instance_body("badmt", machine_type="z9-huge")
        status, err = self.emu.compute("POST", f"{P}/zones/us-central1-a/instances", body)
        self.assertEqual(status, 400)
        self.assertIn("z9-huge", err["error"]["message"])

    def test_insert_takes_effect_when_operation_completes(self):
        # The next loop turn with the default --operation-delay 0s.
        op = self.emu.create_instance("soon", wait=False)
        self.assertIn(op["status"], ("PENDING", "RUNNING"))
        self.assertEqual(op["operationType"], "insert")
        self.assertTrue(op["targetLink"].endswith("/instances/soon"))
        self.assertTrue(op["zone"].endswith("/zones/us-central1-a"))
        done = self.emu.wait_op(op)
        self.assertEqual(done["status"], "DONE")
        self.assertEqual(done["targetId"], self.emu.get_instance("soon")["id"])
        for k in ("insertTime", "startTime", "endTime", "user", "selfLink", "id"):
            self.assertIn(k, done)

    def test_delete(self):
        self.emu.create_instance("doomed", alias="172.23.250.0/24")
        status, op = self.emu.compute("DELETE", f"{P}/zones/us-central1-a/instances/doomed")
        self.assertEqual(status, 200)
        self.assertEqual(op["operationType"], "delete")
        self.emu.wait_op(op)
        self.assertIsNone(self.emu.get_instance("doomed"))
        # Its range is free again.
        self.emu.create_instance("heir", alias="172.23.250.0/24")
        status, body = self.emu.compute("DELETE", f"{P}/zones/us-central1-a/instances/doomed")
        self.assertEqual(status, 404)

    def test_body_is_checked_against_the_api(self):
        cases = [({"bogus": 1}, "Unknown name"),
                 ({"canIpForward": "yes"}, "TYPE_BOOL"),
                 ({"scheduling": {"onHostMaintenance": "SOMETIMES"}}, "TYPE_ENUM"),
                 ({"networkInterfaces": [{"fingerprint": "not base64!"}]}, "TYPE_BYTES")]
        for extra, words in cases:
            body = Emu.instance_body("checked")
            body.update(extra)
            status, err = self.emu.compute("POST", f"{P}/zones/us-central1-a/instances", body)
            self.assertEqual(status, 400, extra)
            self.assertIn(words, err["error"]["message"])
        status, err = self.emu.request("POST", self.emu.compute_endpoint + f"{P}/zones/us-central1-a/instances",
                                       b"{not json")
        self.assertEqual(status, 400)
        self.assertEqual(error_reason(err), "parseError")

    def test_no_boot_disk_refused(self):
        body = Emu.instance_body("diskless")
        del body["disks"]
        status, err = self.emu.compute("POST", f"{P}/zones/us-central1-a/instances", body)
        self.assertEqual(status, 400)


class TestUpdateNetworkInterface(ComputeWorld):
    def setUp(self):
        self.emu.create_instance(self.id().rsplit(".", 1)[1].replace("_", "-")[:40], alias=None)
        self.name = self.id().rsplit(".", 1)[1].replace("_", "-")[:40]

    def test_set_clear_set(self):
        st, op = self.emu.set_aliases(self.name, [("pods", "172.23.1.0/24")])
        self.assertEqual(st, 200)
        self.assertFalse(op.get("error"))
        self.assertEqual(op["operationType"], "updateNetworkInterface")
        self.assertEqual(self.aliases(self.name), [("pods", "172.23.1.0/24")])
        st, op = self.emu.set_aliases(self.name, [])
        self.assertEqual((st, self.aliases(self.name)), (200, []))
        st, op = self.emu.set_aliases(self.name, [("pods", "172.23.2.0/24")])
        self.assertEqual(self.aliases(self.name), [("pods", "172.23.2.0/24")])

    def test_replacing_a_range_in_one_request_is_refused(self):
        self.emu.set_aliases(self.name, [("pods", "172.23.3.0/24")])
        st, err = self.emu.set_aliases(self.name, [("pods", "172.23.4.0/24")])
        self.assertEqual(st, 400)
        self.assertIn("remove", err["error"]["message"])
        self.assertEqual(self.aliases(self.name), [("pods", "172.23.3.0/24")])

    def test_missing_fingerprint_is_400(self):
        path = f"{P}/zones/us-central1-a/instances/{self.name}/updateNetworkInterface"
        st, err = self.emu.compute("PATCH", path, {"aliasIpRanges": []}, query={"networkInterface": "nic0"})
        self.assertEqual(st, 400)

    def test_stale_fingerprint_is_412(self):
        old = self.emu.get_instance(self.name)["networkInterfaces"][0]["fingerprint"]
        st, op = self.emu.set_aliases(self.name, [("pods", "172.23.5.0/24")], fingerprint=old)
        self.assertEqual(st, 200)
        new = self.emu.get_instance(self.name)["networkInterfaces"][0]["fingerprint"]
        self.assertNotEqual(old, new)  # every success changes it
        st, err = self.emu.set_aliases(self.name, [], fingerprint=old)
        self.assertEqual(st, 412)
        self.assertEqual(err["error"]["code"], 412)
        self.assertEqual(error_reason(err), "conditionNotMet")

    def test_fingerprint_compared_decoded(self):
        fp = self.emu.get_instance(self.name)["networkInterfaces"][0]["fingerprint"]
        urlsafe = base64.urlsafe_b64encode(base64.b64decode(fp)).decode().rstrip("=")
        st, op = self.emu.set_aliases(self.name, [("pods", "172.23.6.0/24")], fingerprint=urlsafe)
        self.assertEqual(st, 200, op)

    def test_fingerprint_changed_under_the_client(self):
        fp = self.emu.get_instance(self.name)["networkInterfaces"][0]["fingerprint"]
        st, body = self.emu.control("POST", "fingerprint", {"zone": "us-central1-a", "instance": self.name})
        self.assertEqual(st, 200)
        self.assertNotEqual(body["fingerprint"], fp)
        st, err = self.emu.set_aliases(self.name, [("pods", "172.23.7.0/24")], fingerprint=fp)
        self.assertEqual(st, 412)

    def test_range_held_by_another_instance(self):
        held = self.aliases("node-a")[0][1]
        st, op = self.emu.set_aliases(self.name, [("pods", held)])
        self.assertEqual(st, 200)
        self.assertEqual(op["error"]["errors"][0]["code"], "IP_IN_USE_BY_ANOTHER_RESOURCE")
        self.assertEqual(self.aliases(self.name), [])
        # A failed change changes nothing, the fingerprint included.
        fp = self.emu.get_instance(self.name)["networkInterfaces"][0]["fingerprint"]
        st, op = self.emu.set_aliases(self.name, [("pods", "172.23.8.0/24")], fingerprint=fp)
        self.assertFalse(op.get("error"))

    def test_netmask_only_update_allocates(self):
        st, op = self.emu.set_aliases(self.name, [("pods", "/26")])
        self.assertFalse(op.get("error"))
        got = self.aliases(self.name)
        self.assertTrue(got[0][1].endswith("/26") and got[0][1].startswith("172.2"))

    def test_only_aliases_and_network_may_change(self):
        fp = self.emu.get_instance(self.name)["networkInterfaces"][0]["fingerprint"]
        path = f"{P}/zones/us-central1-a/instances/{self.name}/updateNetworkInterface"
        st, err = self.emu.compute("PATCH", path, {"fingerprint": fp, "networkIP": "10.0.99.99"},
                                   query={"networkInterface": "nic0"})
        self.assertEqual(st, 400)
        st, err = self.emu.compute("PATCH", path, {"fingerprint": fp, "aliasIpRanges": []},
                                   query={"networkInterface": "nic7"})
        self.assertEqual(st, 400)

class TestLists(ComputeWorld):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.emu.create_subnet("east", region="us-east1", cidr="10.1.0.0/16", pods="172.28.0.0/16",
                              services=None)
        for i in range(7):
            cls.emu.create_instance(f"page-{i}", zone="us-east1-b", subnet="east", alias=None)

    def test_pages_follow_tokens(self):
        seen, token, pages = [], None, 0
        while True:
            q = {"maxResults": "3"}
            if token:
                q["pageToken"] = token
            st, lst = self.get("zones/us-east1-b/instances", **q)
            self.assertEqual(st, 200)
            pages += 1
            self.assertLessEqual(len(lst.get("items", [])), 3)
            seen += [i["name"] for i in lst.get("items", [])]
            token = lst.get("nextPageToken")
            if not token:
                break
        self.assertEqual(seen, [f"page-{i}" for i in range(7)])
        self.assertEqual(pages, 3)

    def test_max_results_bounds(self):
        st, err = self.get("zones/us-east1-b/instances", maxResults="501")
        self.assertEqual(st, 400)
        st, err = self.get("zones/us-east1-b/instances", maxResults="-1")
        self.assertEqual(st, 400)
        st, lst = self.get("zones/us-east1-b/instances", maxResults="500")
        self.assertEqual(len(lst["items"]), 7)

    def test_bad_page_token(self):
        st, err = self.get("zones/us-east1-b/instances", pageToken="garbage!")
        self.assertEqual(st, 400)

    def test_empty_list_has_no_items(self):
        st, lst = self.get("zones/asia-northeast1-c/instances")
        self.assertEqual(st, 200)
        self.assertNotIn("items", lst)
        self.assertEqual(lst["kind"], "compute#instanceList")

    def test_aggregated_scopes_and_warnings(self):
        st, agg = self.get("aggregated/instances", maxResults="4", includeAllScopes="True",
                           returnPartialSuccess="True")
        self.assertEqual(st, 200)
        self.assertEqual(agg["kind"], "compute#instanceAggregatedList")
        items = agg["items"]
        self.assertIn("zones/us-east1-b", items)
        got = sum(len(v.get("instances", [])) for v in items.values())
        self.assertEqual(got, 4)
        empty = items["zones/asia-northeast1-a"]
        self.assertEqual(empty["warning"]["code"], "NO_RESULTS_ON_PAGE")
        self.assertEqual(empty["warning"]["data"], [{"key": "scope", "value": "zones/asia-northeast1-a"}])
        self.assertIn("nextPageToken", agg)
        # includeAllScopes lists region and global scopes too; without it, zones only.
        self.assertIn("regions/us-central1", items)
        st, agg = self.get("aggregated/instances")
        self.assertTrue(all(k.startswith("zones/") for k in agg["items"]))

    def test_aggregated_walk_is_complete_and_stable(self):
        names, token = [], None
        while True:
            q = {"maxResults": "2"}
            if token:
                q["pageToken"] = token
            st, agg = self.get("aggregated/instances", **q)
            for scope, v in agg["items"].items():
                names += [(scope, i["name"]) for i in v.get("instances", [])]
            token = agg.get("nextPageToken")
            if not token:
                break
        self.assertEqual(len(names), len(set(names)))
        self.assertEqual(sum(1 for s, _ in names if s == "zones/us-east1-b"), 7)
        self.assertEqual(names, sorted(names))

    def test_filter(self):
        st, lst = self.get("zones/us-east1-b/instances", filter='name eq "page-[12]"')
        self.assertEqual([i["name"] for i in lst["items"]], ["page-1", "page-2"])
        st, lst = self.get("zones/us-east1-b/instances", filter="name = page-3")
        self.assertEqual([i["name"] for i in lst["items"]], ["page-3"])
        st, lst = self.get("zones/us-east1-b/instances", filter='(status = RUNNING) (name != page-0)')
        self.assertEqual(len(lst["items"]), 6)
        st, lst = self.get("aggregated/instances", filter='zone eq ".*us-east1-b"')
        self.assertEqual(sum(len(v.get("instances", [])) for v in lst["items"].values()), 7)
        st, err = self.get("zones/us-east1-b/instances", filter="name = (")
        self.assertEqual(st, 400)

    def walk(self, path, **q):
        names, token = [], None
        while True:
            if token:
                q["pageToken"] = token
            st, doc = self.get(path, maxResults="2", **q)
            self.assertEqual(st, 200, doc)
            if path.startswith("aggregated/"):
                for scope, v in doc["items"].items():
                    names += [(scope, i["name"]) for i in v.get("instances", [])]
            else:
                names += [i["name"] for i in doc.get("items", [])]
            token = doc.get("nextPageToken")
            if not token:
                return names

    def test_name_range_filters_select_exactly_their_slice(self):
        # Lists walk only the slice of names a range filter admits (verify's parallel
        # ranges); the answer must be what evaluating the filter on every item gives.
        every = self.walk("aggregated/instances")
        zonal = [n for s, n in every if s == "zones/us-east1-b"]
        cases = [
            ("name >= page-2 AND name < page-5", lambda n: "page-2" <= n < "page-5"),
            ("name > page-2", lambda n: n > "page-2"),
            ("name <= page-1", lambda n: n <= "page-1"),
            ("name < page-4 AND name >= page-4", lambda n: False),
            ("name >= a AND name < page-3 AND status = RUNNING", lambda n: "a" <= n < "page-3"),
            ("name = page-3", lambda n: n == "page-3"),
            ("name >= page-1 OR name < a", lambda n: n >= "page-1" or n < "a"),
            ("NOT name < page-3", lambda n: n >= "page-3"),
        ]
        for flt, pred in cases:
            with self.subTest(filter=flt):
                self.assertEqual(self.walk("zones/us-east1-b/instances", filter=flt),
                                 [n for n in zonal if pred(n)])
                self.assertEqual(self.walk("aggregated/instances", filter=flt),
                                 [(s, n) for s, n in every if pred(n)])

    def test_partial_response_fields(self):
        st, agg = self.get("aggregated/instances", maxResults="3",
                           fields="items/*/instances(name,networkInterfaces/networkIP),nextPageToken")
        self.assertEqual(st, 200)
        self.assertEqual(set(agg), {"items", "nextPageToken"})
        got = [i for v in agg["items"].values() for i in v.get("instances", [])]
        self.assertEqual(len(got), 3)
        for inst in got:
            self.assertEqual(set(inst), {"name", "networkInterfaces"})
            self.assertEqual(set(inst["networkInterfaces"][0]), {"networkIP"})
        st, z = self.get("zones/us-east1-b", fields="name,region")
        self.assertEqual(set(z), {"name", "region"})
        st, err = self.get("zones/us-east1-b", fields="name,(")
        self.assertEqual(st, 400)

    def test_operations_list(self):
        st, lst = self.get("zones/us-east1-b/operations")
        self.assertEqual(st, 200)
        self.assertEqual(len([o for o in lst["items"] if o["operationType"] == "insert"]), 7)
        st, agg = self.get("aggregated/operations")
        self.assertIn("global", agg["items"])


class TestRequestId(ComputeWorld):
    def test_same_request_id_same_operation(self):
        rid = str(uuid.uuid4())
        path = f"{P}/zones/us-central1-a/instances"
        body = Emu.instance_body("idem", alias=None)
        s1, op1 = self.emu.compute("POST", path, body, query={"requestId": rid})
        s2, op2 = self.emu.compute("POST", path, body, query={"requestId": rid})
        self.assertEqual((s1, s2), (200, 200))
        self.assertEqual(op1["name"], op2["name"])
        self.emu.wait_op(op1)
        # After completion too: the retry is ignored, not a 409.
        s3, op3 = self.emu.compute("POST", path, body, query={"requestId": rid})
        self.assertEqual((s3, op3["name"], op3["status"]), (200, op1["name"], "DONE"))
        # Without it, the same body is a conflict.
        s4, err = self.emu.compute("POST", path, body)
        self.assertEqual(s4, 409)

    def test_request_id_must_be_a_uuid(self):
        for rid in ("nope", "00000000-0000-0000-0000-000000000000"):
            st, err = self.emu.compute("POST", f"{P}/zones/us-central1-a/instances",
                                       Emu.instance_body("badrid", alias=None), query={"requestId": rid})
            self.assertEqual(st, 400, rid)


class TestSlowOperations(ComputeWorld):
    extra = ("--operation-delay", "400ms", "--operation-wait-max", "150ms")

    def test_invisible_until_done_and_wait_is_bounded(self):
        op = self.emu.create_instance("slow", wait=False)
        self.assertIsNone(self.emu.get_instance("slow"))
        t0 = time.monotonic()
        st, waited = self.emu.request("POST", op["selfLink"] + "/wait")
        elapsed = time.monotonic() - t0
        self.assertEqual(st, 200)
        self.assertEqual(waited["status"], "RUNNING")  # the deadline came first
        self.assertGreaterEqual(elapsed, 0.1)
        done = self.emu.wait_op(op)
        self.assertEqual(done["status"], "DONE")
        self.assertIsNotNone(self.emu.get_instance("slow"))

    def test_wait_returns_at_completion(self):
        # Within one wait: completion wakes the waiter before the deadline.
        st, op = self.emu.compute("DELETE", f"{P}/zones/us-central1-a/instances/node-b")
        deadline = time.monotonic() + 5
        while op["status"] != "DONE" and time.monotonic() < deadline:
            st, op = self.emu.request("POST", op["selfLink"] + "/wait")
        self.assertEqual(op["status"], "DONE")
        self.assertIsNone(self.emu.get_instance("node-b"))

    def test_two_changes_accepted_with_one_fingerprint(self):
        # With a slow Operation both requests pass the synchronous check; the second one
        # must fail at completion, as the first one changed the fingerprint.
        self.emu.create_instance("twofp", alias=None)
        self.name = "twofp"
        fp = self.emu.get_instance(self.name)["networkInterfaces"][0]["fingerprint"]
        s1, op1 = self.emu.set_aliases(self.name, [("pods", "172.23.9.0/24")], fingerprint=fp, wait=False)
        s2, op2 = self.emu.set_aliases(self.name, [("pods", "172.23.10.0/24")], fingerprint=fp, wait=False)
        self.assertEqual((s1, s2), (200, 200))
        op1, op2 = self.emu.wait_op(op1), self.emu.wait_op(op2)
        self.assertFalse(op1.get("error"))
        self.assertEqual(op2["error"]["errors"][0]["code"], "CONDITION_NOT_MET")
        self.assertEqual(self.aliases(self.name), [("pods", "172.23.9.0/24")])

    def test_name_reserved_while_pending(self):
        self.emu.create_instance("twice", wait=False)
        st, err = self.emu.compute("POST", f"{P}/zones/us-central1-a/instances",
                                   Emu.instance_body("twice"))
        self.assertEqual(st, 409)


@unittest.skipUnless(os.path.exists(VALIDATE) and os.path.exists(SDK_PYTHON),
                     "gce-validate.py or the Cloud SDK's python is not installed")
class TestShapesValidate(ComputeWorld):
    """Every document type the emulator serves decodes as gcloud's own message classes."""

    def validate(self, type_name, doc):
        import json
        r = subprocess.run([SDK_PYTHON, VALIDATE, type_name, "-"], input=json.dumps(doc).encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, f"{type_name}: {r.stdout.decode()} {r.stderr.decode()[-500:]}")

    def test_all_types(self):
        op = self.emu.create_instance("shape", wait=False)
        docs = [
            ("Operation", op),
            ("Operation", self.emu.wait_op(op)),
            ("Instance", self.emu.get_instance("shape")),
            ("InstanceList", self.get("zones/us-central1-a/instances")[1]),
            ("InstanceAggregatedList", self.get("aggregated/instances", includeAllScopes="True", maxResults="1")[1]),
            ("Network", self.get("global/networks/talos")[1]),
            ("NetworkList", self.get("global/networks")[1]),
            ("Subnetwork", self.get("regions/us-central1/subnetworks/nodes")[1]),
            ("SubnetworkList", self.get("regions/us-central1/subnetworks")[1]),
            ("SubnetworkAggregatedList", self.get("aggregated/subnetworks", includeAllScopes="True")[1]),
            ("Zone", self.get("zones/us-central1-a")[1]),
            ("ZoneList", self.get("zones")[1]),
            ("Region", self.get("regions/us-central1")[1]),
            ("RegionList", self.get("regions")[1]),
            ("Project", self.emu.compute("GET", P)[1]),
            ("OperationList", self.get("zones/us-central1-a/operations")[1]),
            ("OperationAggregatedList", self.get("aggregated/operations")[1]),
            ("MachineType", self.get("zones/us-central1-a/machineTypes/e2-standard-4")[1]),
            ("MachineTypeAggregatedList", self.get("aggregated/machineTypes", maxResults="20")[1]),
        ]
        # A failed Operation (error.errors[], httpErrorStatusCode).
        held = self.aliases("node-a")[0][1]
        failed = self.emu.create_instance("shape-clash", alias=held, wait=False)
        docs.append(("Operation", self.emu.wait_op(failed)))
        for type_name, doc in docs:
            with self.subTest(type_name):
                self.validate(type_name, doc)


if __name__ == "__main__":
    unittest.main()
