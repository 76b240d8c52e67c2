"""talos-gcp-emu: GCP's documented field limits, forwarding-rule ports, list filters in the forms
Compute accepts, and URLs that are not UTF-8."""
import shutil
import tempfile
import unittest
import urllib.request

from emu import Emu

P = "projects/demo-project"
R = "regions/us-central1"
Z = "zones/us-central1-a"


def reason(body):
    return body["error"]["errors"][0]["reason"]


class FieldWorld(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-fields-")
        e = cls.emu = Emu(cls.tmp, kube=False).start()
        try:
            e.create_network("talos")
            e.create_subnet("nodes")
            e.insert(f"{R}/backendServices", {"name": "ext", "loadBalancingScheme": "EXTERNAL",
                                              "protocol": "TCP"})
            e.insert(f"{R}/backendServices", {"name": "int", "loadBalancingScheme": "INTERNAL",
                                              "protocol": "TCP", "network": "global/networks/talos"})
        except Exception:
            e.stop(check=False)  # tearDownClass does not run after a failed setUpClass
            raise

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def post(self, path, body):
        return self.emu.compute("POST", f"{P}/{path}", body)

    def get(self, path, **q):
        return self.emu.compute("GET", f"{P}/{path}", query=q or None)


class TestLimits(FieldWorld):
    def test_description(self):
        st, err = self.post("global/networks", {"name": "long", "description": "d" * 2049})
        self.assertEqual(st, 400, err)
        self.assertIn("'resource.description'", err["error"]["message"])
        self.assertIn("2048", err["error"]["message"])
        # Characters, not bytes: 2,048 two-byte characters are fine.
        self.emu.insert("global/networks", {"name": "exact", "description": "é" * 2048})
        self.assertEqual(len(self.get("global/networks/exact")[1]["description"]), 2048)

    def test_huge_description_refused_before_storing(self):
        body = ('{"name": "huge", "description": "' + "x" * (31 << 20) + '"}').encode()
        st, err = self.emu.request("POST", self.emu.compute_endpoint + f"{P}/global/networks",
                                   body, headers={"Content-Type": "application/json"})
        self.assertEqual(st, 400)
        self.assertEqual(self.get("global/networks/huge")[0], 404)

    def test_labels(self):
        good = {"env": "prod", "team_a-1": "", "région": "île", "k" * 63: "v" * 63}
        self.emu.insert(f"{R}/addresses", {"name": "labelled", "labels": good})
        self.assertEqual(self.get(f"{R}/addresses/labelled")[1]["labels"], good)
        for labels, what in (({"Env": "x"}, "Label key 'Env'"), ({"1env": "x"}, "Label key '1env'"),
                             ({"": "x"}, "Label key ''"), ({"k" * 64: "x"}, "Label key"),
                             ({"env": "Prod"}, "Label value 'Prod'"),
                             ({"env": "head.default"}, "Label value 'head.default'"),
                             ({"env": "v" * 64}, "Label value"),
                             ({f"k{i}": "" for i in range(65)}, "at most 64 labels")):
            with self.subTest(what):
                st, err = self.post(f"{R}/addresses", {"name": "bad-labels", "labels": labels})
                self.assertEqual(st, 400, err)
                self.assertEqual(reason(err), "invalid")
                self.assertIn(what, err["error"]["message"])

    def test_tags(self):
        body = Emu.instance_body("tagged", talos=False)
        body["tags"] = {"items": ["web", "k8s-node-1"]}
        self.emu.insert(f"{Z}/instances", body)
        self.assertEqual(self.emu.get_instance("tagged")["tags"]["items"], ["web", "k8s-node-1"])
        for items in (["Web"], ["-x"], ["x-"], ["a" * 64], ["a_b"], [f"t{i}" for i in range(65)]):
            with self.subTest(items[0]):
                body = Emu.instance_body("bad-tags", talos=False)
                body["tags"] = {"items": items}
                st, err = self.post(f"{Z}/instances", body)
                self.assertEqual(st, 400, err)
                self.assertIn("resource.tags.items", err["error"]["message"])

    def test_metadata_value_and_total(self):
        body = Emu.instance_body("md-ok", talos=False)
        body["metadata"] = {"items": [{"key": "big", "value": "v" * (256 << 10)}]}
        self.emu.insert(f"{Z}/instances", body)
        body = Emu.instance_body("md-value", talos=False)
        body["metadata"] = {"items": [{"key": "big", "value": "v" * ((256 << 10) + 1)}]}
        st, err = self.post(f"{Z}/instances", body)
        self.assertEqual(st, 400, err)
        self.assertIn("262144 bytes", err["error"]["message"])
        body = Emu.instance_body("md-total", talos=False)
        body["metadata"] = {"items": [{"key": f"k{i}", "value": "v" * (200 << 10)} for i in range(3)]}
        st, err = self.post(f"{Z}/instances", body)
        self.assertEqual(st, 400, err)
        self.assertIn("512 KB", err["error"]["message"])
        # setMetadata applies the same limits.
        md = self.emu.get_instance("md-ok")["metadata"]
        st, err = self.post(f"{Z}/instances/md-ok/setMetadata", {
            "fingerprint": md["fingerprint"],
            "items": [{"key": "big", "value": "v" * ((256 << 10) + 1)}]})
        self.assertEqual(st, 400, err)


class TestPorts(FieldWorld):
    def rule(self, name, **fields):
        body = {"name": name, "IPProtocol": "TCP", "backendService": f"{R}/backendServices/ext"}
        body.update(fields)
        return self.post(f"{R}/forwardingRules", body)

    def test_port_range_reads_back_lo_hi(self):
        for name, given, served in (("pr-one", "80", "80-80"), ("pr-range", "8000-8080", "8000-8080"),
                                    ("pr-lead", "0443", "443-443")):
            st, op = self.rule(name, portRange=given)
            self.assertEqual(st, 200, op)
            self.emu.wait_op(op)
            self.assertEqual(self.get(f"{R}/forwardingRules/{name}")[1]["portRange"], served)

    def test_port_rules(self):
        for fields in ({"portRange": "0"}, {"portRange": "90-80"}, {"portRange": "65536"},
                       {"portRange": "80-"}, {"portRange": "http"},
                       {"portRange": "80", "ports": ["80"]}, {"ports": ["80"], "allPorts": True},
                       {"ports": ["1", "2", "3", "4", "5", "6"]}, {"ports": ["x"]},
                       {"portRange": "80", "IPProtocol": "ICMP"},
                       {"IPProtocol": "L3_DEFAULT"}, {"allPorts": True, "IPProtocol": "ICMP"}):
            with self.subTest(fields):
                st, err = self.rule("bad-ports", **fields)
                self.assertEqual(st, 400, err)
        # Internal passthrough rules take ports (or allPorts), not portRange.
        st, err = self.post(f"{R}/forwardingRules", {
            "name": "int-range", "loadBalancingScheme": "INTERNAL",
            "backendService": f"{R}/backendServices/int", "subnetwork": f"{R}/subnetworks/nodes",
            "portRange": "80"})
        self.assertEqual(st, 400, err)
        st, op = self.post(f"{R}/forwardingRules", {
            "name": "int-l3", "loadBalancingScheme": "INTERNAL", "IPProtocol": "L3_DEFAULT",
            "allPorts": True, "backendService": f"{R}/backendServices/int",
            "subnetwork": f"{R}/subnetworks/nodes"})
        self.assertEqual(st, 200, op)
        self.assertNotIn("error", self.emu.wait_op(op))


class TestFilters(FieldWorld):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for n in ("web-a", "web-b", "db-a", "node-x"):
            cls.emu.create_instance(n, alias=None, talos=False)

    def names(self, flt, path=f"{Z}/instances"):
        st, lst = self.get(path, filter=flt)
        self.assertEqual(st, 200, lst)
        if "items" in lst and isinstance(lst["items"], dict):
            return sorted(i["name"] for v in lst["items"].values() for i in v.get("instances", []))
        return [i["name"] for i in lst.get("items", [])]

    def test_unquoted_regular_expressions(self):
        self.assertEqual(self.names("name eq (web-a|db-a)"), ["db-a", "web-a"])
        self.assertEqual(self.names("name eq web-.*"), ["web-a", "web-b"])
        self.assertEqual(self.names("name ne .*-a"), ["node-x", "web-b"])
        self.assertEqual(self.names("(name eq (web|db)-a) (status eq RUNNING)"), ["db-a", "web-a"])
        self.assertEqual(self.names("name eq ((web|db)-(a|b))"), ["db-a", "web-a", "web-b"])
        self.assertEqual(self.names(r"name eq web-[ab\]]"), ["web-a", "web-b"])

    def test_quoted_forms_and_re2_syntax(self):
        self.assertEqual(self.names("name eq 'web-a'"), ["web-a"])
        # What gcloud sends: "name ~ ^node-" with --zones becomes a word-anchored RE.
        self.assertEqual(self.names(r'name eq ".*(^node-).*"'), ["node-x"])
        self.assertEqual(self.names(r'name eq ".*\bweb\-a\b.*"'), ["web-a"])
        self.assertEqual(self.names(r'name eq "(?i)WEB-A"'), ["web-a"])
        self.assertEqual(self.names(r'name eq "(?:web|db)-\w"'), ["db-a", "web-a", "web-b"])
        self.assertEqual(self.names(r'name eq "node-\D"'), ["node-x"])
        self.assertEqual(self.names(r'name eq "(?P<kind>web|db)-a"'), ["db-a", "web-a"])
        self.assertEqual(self.names(r'name eq "[[:alpha:]]+-[\x61]"'), ["db-a", "web-a"])
        self.assertEqual(self.names(r'name eq "\Qweb-a\E"'), ["web-a"])
        self.assertEqual(self.names(r'name eq "web-a{1}"'), ["web-a"])
        self.assertEqual(self.names(r'name eq "[^w]{2}-.*"'), ["db-a"])
        self.assertEqual(self.names(r'name eq "web-a*?"'), ["web-a"])
        self.assertEqual(self.names('zone eq ".*us-central1-a"', "aggregated/instances"),
                         ["db-a", "node-x", "web-a", "web-b"])

    def test_bad_filters(self):
        # Unbalanced, what RE2 refuses (a repeated quantifier, look-ahead, backreferences),
        # and what the translation to POSIX does not cover (\p classes).
        for flt in ("name eq (web", "name eq web)", "name eq a**", "name eq (?=web)",
                    r"name eq (a)\1", r"name eq \p{Greek}", "name eq [a", "name =",
                    "name eq ''x", "name eq a{1000}"):
            with self.subTest(flt):
                st, err = self.get(f"{Z}/instances", filter=flt)
                self.assertEqual(st, 400, err)
                self.assertIn("'filter'", err["error"]["message"])


class TestUtf8(FieldWorld):
    def raw_get(self, path):
        try:
            with urllib.request.urlopen(self.emu.cloud_url + path, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def test_non_utf8_path_is_400(self):
        import json
        for path in (f"/compute/v1/{P}/zones/%ff%fe", f"/compute/v1/{P}/global/networks/%C0%80",
                     f"/compute/v1/{P}/%ed%a0%80/x"):
            with self.subTest(path):
                st, body = self.raw_get(path)
                self.assertEqual(st, 400, body)
                err = json.loads(body)
                self.assertEqual(err["error"]["code"], 400)
                self.assertIn("UTF-8", err["error"]["message"])
        # Valid UTF-8 that names nothing is still a 404.
        self.assertEqual(self.raw_get(f"/compute/v1/{P}/zones/%C3%A9")[0], 404)

    def test_non_utf8_query_is_answered(self):
        st, body = self.raw_get(f"/compute/v1/{P}/{Z}/instances?filter=name%20eq%20%ff(")
        self.assertEqual(st, 400, body)


if __name__ == "__main__":
    unittest.main()
