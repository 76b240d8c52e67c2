"""talos-gcp doctor on files: every rule's fixtures, the design note's own YAML, the
rendered set, bad inputs, exit codes and the three output formats.

Fixtures: tests/fixtures/doctor/RULE/fail*.yaml must report RULE, and every line marked
"# <- RULE" must carry a finding of that rule on that line; pass.yaml must be clean.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from emu import SOURCE_ROOT, TALOS_GCP

FIXTURES = os.path.join(SOURCE_ROOT, "tests", "fixtures", "doctor")
NOTE_COPY = os.path.join(SOURCE_ROOT, "tests", "fixtures", "doctor-note", "section2-service.yaml")
NOTE = os.path.join(SOURCE_ROOT, "..", "shared", "spec", "networking-gcp-talos.md")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")
TEXT_LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning|note): "
                       r"(?P<msg>.+) \[(?P<rule>[a-z0-9-]+)\]$")


def run(*args, stdin=None, timeout=60):
    p = subprocess.run([TALOS_GCP, *args], input=stdin, capture_output=True, text=True,
                       timeout=timeout, env={k: v for k, v in os.environ.items()
                                             if not k.startswith("KUBE")})
    for m in SANITIZER_MARKERS:
        if m in p.stderr:
            raise AssertionError(f"sanitizer report from talos-gcp {' '.join(args)}:\n{p.stderr}")
    return p.returncode, p.stdout, p.stderr


def doctor_json(*args, stdin=None):
    rc, out, err = run("doctor", "-o", "json", *args, stdin=stdin)
    return rc, json.loads(out), err


# render has no default project, and no registry for vip-alias: name them.
RENDER_REQUIRED = ("--project", "my-project-1", "--vip-alias-image", "ghcr.io/example/vip-alias:0.1.0")
# What deploy/ is rendered with (scripts and README say the same).
RENDER_DEPLOY = ("--project", "demo-project", "--vip-alias-image", "vip-alias:0.1.0")


def rule_ids():
    rc, out, _ = run("doctor", "--list-rules")
    assert rc == 0
    return [line.split()[0] for line in out.splitlines()]


class Fixtures(unittest.TestCase):
    def test_every_rule_has_a_failing_and_a_passing_fixture(self):
        ids = rule_ids()
        self.assertGreaterEqual(len(ids), 30)
        self.assertEqual(sorted(ids), sorted(os.listdir(FIXTURES)))
        for rule in ids:
            self.assertTrue(os.path.exists(os.path.join(FIXTURES, rule, "pass.yaml")), rule)
            self.assertTrue(glob.glob(os.path.join(FIXTURES, rule, "fail*.yaml")), rule)

    def test_failing_fixtures_report_their_rule_where_marked(self):
        for rule in rule_ids():
            for path in sorted(glob.glob(os.path.join(FIXTURES, rule, "fail*.yaml"))):
                with self.subTest(fixture=os.path.relpath(path, FIXTURES)):
                    rc, doc, err = doctor_json("-f", path)
                    self.assertEqual(rc, 1, err)
                    self.assertFalse(doc["summary"]["could_not_check"])
                    got = {(f["rule"], f.get("line")) for f in doc["findings"]}
                    self.assertIn(rule, {r for r, _ in got})
                    marks = []
                    with open(path) as f:
                        for n, line in enumerate(f, 1):
                            marks += [(m, n) for m in re.findall(r"# <- ([a-z0-9-]+)", line)]
                    self.assertTrue(marks, "a failing fixture marks where its findings are")
                    for mark in marks:
                        self.assertIn(mark, got)
                    for f in doc["findings"]:
                        self.assertTrue(f["message"] and f["section"], f)

    def test_passing_fixtures_are_clean(self):
        for rule in rule_ids():
            path = os.path.join(FIXTURES, rule, "pass.yaml")
            with self.subTest(fixture=rule):
                rc, doc, err = doctor_json("-f", path)
                self.assertEqual(doc["findings"], [], err)
                self.assertEqual(rc, 0, err)

    def test_design_note_snippet_gives_no_false_positive(self):
        rc, doc, err = doctor_json("-f", NOTE_COPY)
        self.assertEqual((rc, doc["findings"], doc["problems"]), (0, [], []), err)
        if not os.path.exists(NOTE):
            self.skipTest("the design note (../shared/spec) is not next to this checkout; "
                          "its committed copy was checked")
        with open(NOTE) as f:
            blocks = re.findall(r"```yaml\n(.*?)```", f.read(), re.S)
        with open(NOTE_COPY) as f:
            self.assertEqual(blocks, [f.read()], "the committed copy is the note's YAML")


class RenderedSet(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_render_then_doctor_is_clean(self):
        rc, out, err = run("render", *RENDER_REQUIRED)
        self.assertEqual(rc, 0, err)
        rc, doc, err = doctor_json("-f", "-", stdin=out)
        self.assertEqual((rc, doc["findings"], doc["problems"]), (0, [], []), err)
        self.assertEqual(doc["summary"]["skipped_documents"], 0)
        self.assertGreaterEqual(doc["summary"]["documents"], 10)

    def test_render_with_other_values_then_doctor_is_clean(self):
        flags = ["--node-cidr", "10.128.0.0/20", "--vip", "10.128.0.10", "--pod-cidr",
                 "10.64.0.0/14", "--service-cidr", "10.112.0.0/16", "--cluster-name", "prod"]
        rc, out, err = run("render", *RENDER_REQUIRED, *flags)
        self.assertEqual(rc, 0, err)
        rc, doc, err = doctor_json("-f", "-", stdin=out)
        self.assertEqual((rc, doc["findings"]), (0, []), err)
        # The VIP came from the rendered files: the default 10.0.0.2 would be wrong here.
        rc, doc, err = doctor_json("--vip", "10.0.0.2", "-f", "-", stdin=out)
        self.assertEqual(rc, 1)
        self.assertIn("vip-certsans", {f["rule"] for f in doc["findings"]})

    def test_vip_on_dummy0_from_talos_satisfies_the_control_plane(self):
        # A control-plane config with the VIP on dummy0 from boot (Talos v1.12's
        # DummyLinkConfig, or interfaces[].dummy before) needs no vip-alias to be local.
        with open(os.path.join(FIXTURES, "vip-alias-missing", "fail-2.yaml")) as f:
            cp = f.read()
        rc, doc, err = doctor_json("-f", "-", stdin=cp)
        self.assertIn("vip-alias-missing", {f["rule"] for f in doc["findings"]})
        for extra in ("---\napiVersion: v1alpha1\nkind: DummyLinkConfig\nname: dummy0\n"
                      "addresses:\n  - address: 10.0.0.2/32\n",):
            rc, doc, err = doctor_json("-f", "-", stdin=cp + extra)
            self.assertEqual((rc, doc["findings"]), (0, []), err)
        for version in ("v1.11", "v1.12"):
            with self.subTest(talos=version):
                rc, out, err = run("render", *RENDER_REQUIRED, "--talos-version", version,
                                   "--only", "talos-controlplane")
                self.assertEqual(rc, 0, err)
                rc, doc, err = doctor_json("-f", "-", stdin=out)
                self.assertEqual((rc, doc["findings"]), (0, []), err)

    def test_committed_deploy_equals_render(self):
        rc, _, err = run("render", *RENDER_DEPLOY, "--out", self.tmp)
        self.assertEqual(rc, 0, err)
        deploy = os.path.join(SOURCE_ROOT, "deploy")
        for path in sorted(glob.glob(os.path.join(self.tmp, "**", "*.yaml"), recursive=True)):
            rel = os.path.relpath(path, self.tmp)
            with self.subTest(file=rel):
                with open(path) as a, open(os.path.join(deploy, rel)) as b:
                    self.assertEqual(b.read(), a.read(),
                                     f"deploy/{rel} drifted: run talos-gcp render {' '.join(RENDER_DEPLOY)} --out deploy")

    def test_committed_deploy_passes_doctor(self):
        rc, doc, err = doctor_json(os.path.join(SOURCE_ROOT, "deploy"))
        self.assertEqual((rc, doc["findings"], doc["problems"]), (0, [], []), err)


class Inputs(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    def test_malformed_yaml_is_an_error_with_its_place_and_the_rest_is_checked(self):
        bad = self.write("a/bad.yaml", "kind: Service\nspec: [1, 2\nx: 1\n")
        self.write("b/l2.yaml", "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\n"
                                "metadata: {name: x}\n")
        rc, out, err = run("doctor", self.tmp)
        self.assertEqual(rc, 2, out + err)
        self.assertRegex(out, re.escape(bad) + r":3:\d+: error: invalid YAML: .+")
        self.assertIn("[l2-metallb]", out)

    def test_binary_template_unknown_and_other_files_are_skipped_with_a_reason(self):
        self.write("bin.yaml", b"\x7fELF\x00\x01\x02binary")
        self.write("chart/templates/x.yaml", "name: {{ .Values.name }}\n")
        self.write("misc.yaml", "foo: bar\n")
        self.write("README.md", "not YAML: [")
        self.write(".git/config.yaml", "[core]\n")
        self.write("patch.yaml", "- op: add\n  path: /machine/network\n  value: {}\n")
        rc, out, err = run("doctor", self.tmp)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("bin.yaml: note: skipped: binary file (NUL byte at offset 4)", out)
        self.assertIn("x.yaml: note: skipped: a template", out)
        self.assertNotIn("misc.yaml", out)  # a document no rule reads: only with -v
        self.assertIn("4 files", err)  # README.md and .git are not read
        rc, out, err = run("doctor", "-v", self.tmp)
        self.assertIn("misc.yaml:1:1: note: skipped: not a Kubernetes object", out)
        self.assertIn("patch.yaml:1:1: note: skipped: a JSON patch", out)

    def test_billion_laughs_is_refused_quickly(self):
        lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for i in range(1, 12):
            lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i-1}"] * 9) + "]")
        path = self.write("lol.yaml", "\n".join(lines) + "\n")
        rc, out, err = run("doctor", "-f", path, timeout=20)
        self.assertEqual(rc, 2, out + err)
        self.assertIn("billion laughs", out)

    def test_missing_file_and_bad_flags_exit_2(self):
        rc, out, err = run("doctor", "-f", os.path.join(self.tmp, "nope.yaml"))
        self.assertEqual(rc, 2)
        self.assertIn("nope.yaml: error: cannot read: No such file or directory", out)
        for args in (["doctor"], ["doctor", "--fail-on", "loud", "x"], ["doctor", "-o", "xml", "x"],
                     ["doctor", "--vip", "10.0.0", "x"], ["doctor", "--explain", "no-such-rule"],
                     ["doctor", "--disable", "nope", "x"], ["doctor", "--bogus"]):
            with self.subTest(args=args):
                rc, out, err = run(*args)
                self.assertEqual(rc, 2)
                self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_fail_on(self):
        warn = self.write("w.yaml", "l2announcements:\n  enabled: true\nipam: {mode: kubernetes}\n"
                                    "routingMode: native\nipv4NativeRoutingCIDR: 172.20.0.0/16\n")
        doc = json.loads(run("doctor", "-o", "json", "--disable", "cilium-talos-compat", warn)[1])
        self.assertEqual({f["severity"] for f in doc["findings"]}, {"warning"})
        base = ["doctor", "--disable", "cilium-talos-compat", warn]
        self.assertEqual(run(*base)[0], 1)
        self.assertEqual(run(*base, "--fail-on", "error")[0], 0)
        self.assertEqual(run(*base, "--fail-on", "none")[0], 0)
        self.assertEqual(run(*base, "--fail-on", "note")[0], 1)

    def test_stdin(self):
        rc, out, _ = run("doctor", "-f", "-", stdin="apiVersion: cilium.io/v2alpha1\n"
                                                    "kind: CiliumL2AnnouncementPolicy\n"
                                                    "metadata: {name: p}\n")
        self.assertEqual(rc, 1)
        self.assertTrue(out.startswith("-:2:7: error: CiliumL2AnnouncementPolicy p"), out)


class Output(unittest.TestCase):
    FIXTURE = os.path.join(FIXTURES, "cluster-cidr-mismatch", "fail.yaml")

    def test_text_is_one_finding_per_line_like_a_compiler(self):
        rc, out, err = run("doctor", self.FIXTURE)
        self.assertEqual(rc, 1)
        lines = out.splitlines()
        self.assertGreaterEqual(len(lines), 3)
        for line in lines:
            m = TEXT_LINE.match(line)
            self.assertIsNotNone(m, line)
            self.assertEqual(m["file"], self.FIXTURE)
        self.assertRegex(err, r"^talos-gcp doctor: \d+ errors?, \d+ warnings?, \d+ notes? in 1 file ")

    def test_json(self):
        rc, doc, _ = doctor_json(self.FIXTURE)
        self.assertEqual(rc, 1)
        f = doc["findings"][0]
        self.assertEqual(set(f), {"rule", "severity", "message", "section", "file", "line", "column"})
        self.assertEqual(doc["summary"]["errors"], len(doc["findings"]))

    def test_sarif(self):
        rc, out, _ = run("doctor", "-o", "sarif", self.FIXTURE)
        self.assertEqual(rc, 1)
        sarif = json.loads(out)
        self.assertEqual(sarif["version"], "2.1.0")
        self.assertIn("sarif-2.1.0", sarif["$schema"])
        run0 = sarif["runs"][0]
        rules = run0["tool"]["driver"]["rules"]
        self.assertEqual([r["id"] for r in rules], rule_ids())
        for r in rules:
            self.assertTrue(r["shortDescription"]["text"] and r["fullDescription"]["text"])
            self.assertIn(r["defaultConfiguration"]["level"], ("error", "warning", "note"))
        self.assertTrue(run0["results"])
        for res in run0["results"]:
            self.assertEqual(rules[res["ruleIndex"]]["id"], res["ruleId"])
            self.assertIn(res["level"], ("error", "warning", "note"))
            self.assertTrue(res["message"]["text"])
            loc = res["locations"][0]["physicalLocation"]
            self.assertEqual(loc["artifactLocation"]["uri"], "file://" + self.FIXTURE)
            self.assertGreaterEqual(loc["region"]["startLine"], 1)
            self.assertGreaterEqual(loc["region"]["startColumn"], 1)
        self.assertTrue(run0["invocations"][0]["executionSuccessful"])

    def test_explain_every_rule(self):
        for rule in rule_ids():
            rc, out, _ = run("doctor", "--explain", rule)
            self.assertEqual(rc, 0)
            self.assertTrue(out.startswith(rule + " ("), out)
            self.assertRegex(out, r"(note|design) §\d")
            self.assertIn("Fix:", out)
            # The rationale is wrapped at 80 columns (the title line is as long as it is).
            self.assertTrue(all(len(line) <= 80 for line in out.splitlines()[1:]), out)
