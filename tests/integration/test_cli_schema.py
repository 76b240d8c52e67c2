"""The -o json documents against their JSON Schemas (docs/schema/, draft 2020-12).

Real outputs of verify, repair and doctor against talos-gcp-emu, failures included (repair's
document when a change fails or the session cannot open, doctor's when a file cannot be read),
are validated: every verify status and the failure shapes are produced here; the other
suites' -o json runs (repair --strategy node, the journal, --reset-after, doctor --live...)
are validated too, by cluster.talos_gcp() and test_doctor's run().
The schemas must also refuse what is not a real document, or they check nothing.
"""
import copy
import json
import os
import re
import subprocess
import tempfile
import unittest

from cluster import ZONE, Cluster, Emu, talos_gcp
from emu import SOURCE_ROOT, TALOS_GCP
import schema

UNI = f"/compute/v1/projects/demo-project/zones/{ZONE}/instances/%s/updateNetworkInterface"
FIXTURES = os.path.join(SOURCE_ROOT, "tests", "fixtures", "doctor")


def run(*args, stdin=None):
    p = subprocess.run([TALOS_GCP, *args], input=stdin, capture_output=True, text=True,
                       timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("KUBE")})
    schema.check_output(args, p.stdout)
    return p.returncode, p.stdout, p.stderr


class SchemasTest(unittest.TestCase):
    def test_every_schema_is_draft_2020_12_with_a_version(self):
        names = schema.schema_names()
        self.assertGreaterEqual(set(names), {"verify", "repair", "doctor"})
        for name in names:
            s = schema.schema(name)
            self.assertEqual(s["$schema"], "https://json-schema.org/draft/2020-12/schema", name)
            schema.validator(name)  # check_schema: a valid 2020-12 schema
            self.assertIn("version", s["required"], name)
            self.assertIsInstance(s["properties"]["version"]["const"], int, name)
            self.assertFalse(s["additionalProperties"], f"{name}: a field the schema does not name "
                             "must fail the tests, not pass unseen")

    def test_every_subcommand_with_json_output_has_a_schema(self):
        rc, out, _ = run("help")
        self.assertEqual(rc, 0)
        subcommands = re.findall(r"^  ([a-z]+) ", out.split("Subcommands:")[1].split("\n\n")[0], re.M)
        with_json = []
        for sub in subcommands:
            if sub in ("help", "version"):
                continue
            rc, text, _ = run("help", sub)
            self.assertEqual(rc, 0, sub)
            m = re.search(r"-o, --output FORMAT\s+output format: ([^(]*)", text)
            if m and "json" in re.split(r",\s*|\s+or\s+", m.group(1).strip()):
                with_json.append(sub)
        self.assertIn("verify", with_json)
        self.assertEqual(sorted(set(with_json) - set(schema.schema_names())), [],
                         "subcommands with -o json but no docs/schema/NAME.schema.json")


class RefusesTest(unittest.TestCase):
    """Documents that are not what talos-gcp prints fail: the schemas are not vacuous."""

    VERIFY = {"version": 1, "aligned": False, "nodes": [
        {"node": "a", "instance": "a", "zone": ZONE, "podCIDR": "172.20.1.0/24",
         "aliasRange": "172.20.2.0/24", "status": "mismatch", "reason": "differ"}],
        "summary": {"ok": 0, "mismatch": 1, "no-alias": 0, "no-podcidr": 0, "no-instance": 0,
                    "duplicate": 0, "orphan": 0}}

    def broken(self, name, doc, mutate):
        d = copy.deepcopy(doc)
        mutate(d)
        return schema.errors(name, d)

    def test_verify(self):
        self.assertEqual(schema.errors("verify", self.VERIFY), [])
        self.assertTrue(self.broken("verify", self.VERIFY, lambda d: d.pop("version")))
        self.assertTrue(self.broken("verify", self.VERIFY, lambda d: d.update(version=2)))
        self.assertTrue(self.broken("verify", self.VERIFY, lambda d: d["nodes"][0].update(status="weird")))
        self.assertTrue(self.broken("verify", self.VERIFY, lambda d: d["nodes"][0].pop("instance")))
        self.assertTrue(self.broken("verify", self.VERIFY, lambda d: d["nodes"][0].update(extra=1)))
        self.assertTrue(self.broken("verify", self.VERIFY, lambda d: d["nodes"][0].update(podCIDR="172.20.1.0")))
        # An ok row has no reason; an orphan has no Node; a mismatch says why.
        self.assertTrue(self.broken("verify", self.VERIFY, lambda d: d["nodes"][0].update(status="ok")))
        self.assertTrue(self.broken("verify", self.VERIFY, lambda d: d["nodes"][0].update(status="orphan")))
        self.assertTrue(self.broken("verify", self.VERIFY, lambda d: d["nodes"][0].update(reason=None)))

    def test_repair(self):
        ok = {"version": 1, "strategy": "node", "steps": [{"action": "recreate-node", "node": "a"}],
              "refused": [], "pending": True, "applied": [], "failed": [], "skipped": []}
        self.assertEqual(schema.errors("repair", ok), [])
        self.assertTrue(self.broken("repair", ok, lambda d: d.update(orphans=[])))  # gcp only
        self.assertTrue(self.broken("repair", ok, lambda d: d.pop("pending")))  # aligned or pending
        self.assertTrue(self.broken("repair", ok, lambda d: d.update(aligned=True)))  # not both
        self.assertTrue(self.broken("repair", ok, lambda d: d.pop("strategy")))  # only with an error
        self.assertTrue(self.broken("repair", ok, lambda d: d["applied"].append({"action": "drain", "node": "a"})))
        self.assertTrue(self.broken("repair", ok, lambda d: d.update(strategy="gcp")))  # no orphans
        failed = {"version": 1, "pending": False, "applied": [], "failed": [], "skipped": [], "error": "x"}
        self.assertEqual(schema.errors("repair", failed), [])

    def test_doctor(self):
        ok = {"version": 1, "findings": [{"rule": "ccm-cidr-allocator", "severity": "error", "message": "m",
                                          "section": "note §5", "file": "a.yaml", "line": 3, "column": 1}],
              "problems": [], "summary": {"files": 1, "documents": 1, "skipped_files": 0,
                                          "skipped_documents": 0, "errors": 1, "warnings": 0,
                                          "notes": 0, "could_not_check": False}}
        self.assertEqual(schema.errors("doctor", ok), [])
        self.assertTrue(self.broken("doctor", ok, lambda d: d["findings"][0].update(severity="fatal")))
        self.assertTrue(self.broken("doctor", ok, lambda d: d["findings"][0].pop("column")))
        self.assertTrue(self.broken("doctor", ok, lambda d: d["findings"][0].update(line=0)))
        self.assertTrue(self.broken("doctor", ok, lambda d: d["summary"].pop("notes")))


class Base(unittest.TestCase):
    ccm = "off"

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.emu = Emu(self._tmp.name, ccm=self.ccm,
                       extra=["--kubelet-delay", "50ms", "--ccm-delay", "20ms"]).start()
        self.c = Cluster(self.emu).network()

    def tearDown(self):
        try:
            self.emu.stop()
        finally:
            self._tmp.cleanup()

    def pair(self, name, alias, podcidr=None):
        self.c.instance(name, alias=alias)
        self.c.wait_node(name, pred=lambda n: n.get("spec", {}).get("providerID"))
        if podcidr:
            self.c.set_podcidr(name, podcidr)

    def json_cli(self, *args, rc):
        """Runs with -o json; talos_gcp() has validated the document against its schema."""
        code, out, err = talos_gcp(self.emu, *args, "-o", "json")
        self.assertEqual(code, rc, out + err)
        doc = json.loads(out)
        self.assertEqual(doc["version"], schema.schema(args[0])["properties"]["version"]["const"])
        return doc


class VerifyTest(Base):
    def test_rows_and_orphans(self):
        # (Every Node status is made by test_verify_repair, validated there by talos_gcp().)
        self.pair("ok-0", alias="172.20.1.0/24", podcidr="172.20.1.0/24")
        self.c.create_node("ni-0", self.c.provider_id("gone"), "172.20.5.0/24")
        self.c.instance("leftover", alias="172.20.7.0/24", talos=False)
        doc = self.json_cli("verify", rc=1)
        self.assertEqual(sorted(n["status"] for n in doc["nodes"]), ["no-instance", "ok", "orphan"])
        doc = self.json_cli("verify", "--node", "ok-0", rc=0)
        self.assertEqual([n["node"] for n in doc["nodes"]], ["ok-0"])
        # Could not check: nothing on stdout, the reason on stderr.
        rc, out, err = talos_gcp(self.emu, "verify", "-o", "json", "--node", "nope")
        self.assertEqual((rc, out), (2, ""))
        self.assertIn("--node nope: no such Node", err)


class RepairTest(Base):
    def test_plan_with_refusals_and_orphans(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.2.0/24")
        self.pair("b-0", alias="172.20.3.0/24", podcidr="10.99.0.0/24")  # outside the pods range
        self.c.instance("leftover", alias="172.20.9.0/24", talos=False)
        doc = self.json_cli("repair", rc=1)
        self.assertTrue(doc["pending"])
        self.assertEqual([s["action"] for s in doc["steps"]], ["clear", "set"])
        self.assertEqual([r["node"] for r in doc["refused"]], ["b-0"])
        self.assertEqual([o["instance"] for o in doc["orphans"]], ["leftover"])
        doc = self.json_cli("repair", "--free-orphans", "--node", "a-0", rc=1)
        self.assertTrue(any(s.get("orphan") for s in doc["steps"]))

    def test_failure_documents(self):
        self.pair("a-0", alias="172.20.1.0/24", podcidr="172.20.2.0/24")
        # --strategy node refused (no CloudAllocator seen): exit 1, with the reason.
        doc = self.json_cli("repair", "--strategy", "node", rc=1)
        self.assertIn("refusing --strategy node", doc["error"])
        # The set is refused and the put-back too: a-0 is left without its range.
        self.emu.add_fault(method="PATCH", path=UNI % "a-0", skip=1, count=2, status=400,
                           reason="invalid", message="Injected refusal.")
        doc = self.json_cli("repair", "--apply", rc=2)
        self.assertIn("Injected refusal", doc["error"])
        self.assertEqual([s["action"] for s in doc["failed"]], ["set"])
        self.assertIn("error", doc["failed"][0])
        # The next run finds the journal (pending, named) and, with --apply, finishes it.
        doc = self.json_cli("repair", rc=1)
        self.assertTrue(doc["pending"])
        self.assertIn("journal", doc)
        doc = self.json_cli("repair", "--apply", rc=0)
        self.assertTrue(doc["aligned"])
        # No session: the document still comes, with the error and nothing done.
        bad = os.path.join(self.emu.tmpdir, "bad-kubeconfig")
        with open(bad, "w") as f:
            f.write("apiVersion: v1\nclusters: [unclosed\n")
        doc = self.json_cli("repair", "--kubeconfig", bad, rc=2)
        self.assertIn(bad, doc["error"])
        self.assertNotIn("strategy", doc)


class DoctorTest(unittest.TestCase):
    def test_fixtures_and_rule_ids(self):
        rc, out, err = run("doctor", "-o", "json", "--fail-on", "none", FIXTURES)
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertTrue(any("line" in f for f in doc["findings"]))
        rc, rules, _ = run("doctor", "--list-rules")
        ids = {line.split()[0] for line in rules.splitlines()}
        self.assertLessEqual({f["rule"] for f in doc["findings"]}, ids)
        self.assertGreater(len({f["rule"] for f in doc["findings"]}), 10)

    def test_unreadable_input(self):
        rc, out, err = run("doctor", "-o", "json", "-f", "-", stdin="a: [unclosed\n")
        self.assertEqual(rc, 2, err)
        doc = json.loads(out)
        self.assertTrue(doc["summary"]["could_not_check"])
        self.assertTrue(any(p["error"] and p["file"] == "-" for p in doc["problems"]))
        rc, out, err = run("doctor", "-o", "json", "-f", "/nonexistent/x.yaml")
        self.assertEqual(rc, 2, err)
        self.assertTrue(json.loads(out)["problems"][0]["error"])


if __name__ == "__main__":
    unittest.main()
