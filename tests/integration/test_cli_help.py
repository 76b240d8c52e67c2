"""talos-gcp's command line as an operator meets it: help, --version, the option groups, and
the one-line errors for what getopt_long alone would let through (empty values, ambiguous
prefixes, values given to switches).
"""
import os
import re
import subprocess
import unittest

from emu import TALOS_GCP


def run(*args):
    p = subprocess.run([TALOS_GCP, *args], capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if not k.startswith("KUBE")})
    return p.returncode, p.stdout, p.stderr


def subcommands():
    rc, out, _ = run("--help")
    block = out.split("Subcommands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines() if line.split()[0] not in ("help", "version")]


OPTION_LINE = re.compile(r"^  ((?:-[\w-]+, )*-[\w-]+)(?: (\S+)|\[=([^\]\s]+)\])?(?:\s{2,}(.*))?$")


def options(help_text):
    """[(group, flags, placeholder, text)] of a --help: group "" (the command's) or "API"."""
    group, rows = None, []
    for line in help_text.splitlines():
        if line == "Options:" or line.startswith("API options"):
            group = "API" if line.startswith("API") else ""
        elif group is not None and (m := OPTION_LINE.match(line)):
            rows.append([group, m.group(1).split(", "), m.group(2) or m.group(3), m.group(4) or ""])
        elif group is not None and line.startswith(" " * 28) and rows:
            rows[-1][3] = (rows[-1][3] + " " + line.strip()).strip()
        elif line.strip() and not line.startswith(" "):
            group = None
    return rows


class HelpTest(unittest.TestCase):
    def test_help_subcommand_is_that_subcommand_help(self):
        for sub in subcommands():
            with self.subTest(sub):
                rc, via_help, err = run("help", sub)
                self.assertEqual(rc, 0, err)
                rc2, via_flag, _ = run(sub, "--help")
                self.assertEqual((rc2, via_flag), (0, via_help))
                self.assertTrue(via_help.startswith(f"Usage: talos-gcp {sub} "), via_help[:80])
                self.assertIn(f"talos-gcp-{sub}(1)", via_help)
        rc, out, err = run("help", "nope")
        self.assertEqual((rc, out), (2, ""))
        self.assertEqual(err.strip(), "talos-gcp: error: help: 'nope' is not a subcommand (see talos-gcp help)")

    def test_top_level_usage_names_version_and_help(self):
        rc, out, _ = run("--help")
        self.assertEqual(rc, 0)
        self.assertIn("talos-gcp --version", out)
        self.assertIn("talos-gcp help [SUBCOMMAND]", out)
        self.assertEqual(run("help")[1], out)
        rc, out, _ = run("--version")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^talos-gcp \d+\.\d+\.\d+\n$")
        rc, out, err = run()
        self.assertEqual((rc, out), (2, ""))
        self.assertIn("Usage: talos-gcp", err)

    def test_every_option_once_with_placeholder_and_in_its_group(self):
        for sub in subcommands():
            with self.subTest(sub):
                text = run("help", sub)[1]
                rows = options(text)
                self.assertTrue(rows, text)
                names = [f for r in rows for f in r[1]]
                self.assertEqual(len(names), len(set(names)), f"listed twice: {names}")
                self.assertIn("--help", names)
                for group, flags, arg, desc in rows:
                    self.assertTrue(desc, f"{flags}: no help text")
                    # Every value flag shows its placeholder (upper case, or a|b values).
                    if arg:
                        self.assertRegex(arg, r"^[A-Z][A-Z0-9_:/|.,\[\]]*$|^[a-z]+(\|[a-z]+)+$", flags)
                # The API options come after the command's, as their own group.
                groups = [r[0] for r in rows]
                self.assertEqual(groups, sorted(groups, key=lambda g: g == "API"))
                api = {f for r in rows if r[0] == "API" for f in r[1]}
                if "--project" in api:
                    self.assertEqual(api, {"--project", "--compute-endpoint", "--access-token-file",
                                           "--kubeconfig", "--context", "--timeout"})
                # -o's formats are in -o's own line, and nowhere under -h.
                out = [r for r in rows if "--output" in r[1]]
                if out:
                    self.assertRegex(out[0][3], r"^output format: [a-z]+((, | or )[a-z]+)* \(default [a-z]+\)$")
                helprow = next(r for r in rows if "--help" in r[1])
                self.assertNotIn("json", helprow[3])

    def test_defaults_are_shown(self):
        def table(sub):
            return {f: (r[2], r[3]) for r in options(run("help", sub)[1]) for f in r[1]}
        repair = table("repair")
        self.assertEqual(repair["--wait-timeout"][0], "DURATION")
        self.assertTrue(repair["--wait-timeout"][1].endswith("(default 5m)"))
        self.assertTrue(repair["--timeout"][1].endswith("(default 30s)"))
        self.assertTrue(repair["--strategy"][1].endswith("(default gcp)"))
        self.assertIn("(default $XDG_STATE_HOME/talos-gcp/repair-PROJECT.json)", repair["--journal"][1])
        doctor = table("doctor")
        self.assertTrue(doctor["--fail-on"][1].endswith("(default warning)"))
        self.assertEqual(doctor["-o"], ("FORMAT", "output format: text, json or sarif (default text)"))
        render = table("render")
        for flag, arg in (("--cluster-name", "NAME"), ("--pod-cidr", "CIDR"), ("--vip", "ADDR"),
                          ("--mtu", "N"), ("--ccm-image", "IMAGE"), ("--out", "DIR"), ("-f", "SPEC")):
            self.assertEqual(render[flag][0], arg, flag)
        self.assertIn("(default 172.20.0.0/16)", render["--pod-cidr"][1])
        self.assertIn("(default registry.k8s.io/", render["--ccm-image"][1])


class ErrorsTest(unittest.TestCase):
    def refused(self, args, line):
        rc, out, err = run(*args)
        self.assertEqual((rc, out), (2, ""), err)
        self.assertEqual(err.strip().splitlines(), ["talos-gcp: error: " + line])

    def test_empty_values(self):
        self.refused(["verify", "--node="], "--node: empty value (want NAME)")
        self.refused(["verify", "--node", ""], "--node: empty value (want NAME)")
        self.refused(["verify", "-o", ""], "-o: empty value (want FORMAT)")
        self.refused(["repair", "--journal="], "--journal: empty value (want FILE)")
        self.refused(["repair", "--selector="], "--selector: empty value (want LABELS)")
        self.refused(["doctor", "-f", ""], "-f: empty value (want PATH)")
        self.refused(["render", "--vip="], "--vip: empty value (want ADDR)")
        self.refused(["verify", "--kubeconfig="], "--kubeconfig: empty value (want FILE)")
        self.refused(["plan", "-f", ""], "-f: empty value (want FILE)")

    def test_missing_unknown_ambiguous(self):
        self.refused(["verify", "--node"], "--node: needs a value (NAME)")
        self.refused(["verify", "-o"], "-o: needs a value (FORMAT)")
        self.refused(["verify", "--nope"], "--nope: unknown flag (see talos-gcp verify --help)")
        self.refused(["verify", "--nope=1"], "--nope: unknown flag (see talos-gcp verify --help)")
        self.refused(["verify", "-x"], "-x: unknown flag (see talos-gcp verify --help)")
        self.refused(["repair", "--apply=yes"], "--apply: takes no value (see talos-gcp repair --help)")
        self.refused(["repair", "--s", "x"], "--s: ambiguous, could be --strategy, --selector")
        self.refused(["verify", "extra"], "extra: unexpected argument (see talos-gcp verify --help)")
        self.refused(["verify", "-o", "yaml"], "-o 'yaml': want one of table, json")
        self.refused(["nope"], "'nope' is not a subcommand (see talos-gcp help)")
        self.refused(["--nope"], "--nope: unknown flag (see talos-gcp help)")
        self.refused(["doctor", "--explain", "ccm-cidr-allocator", "--list-rules"],
                     "--explain and --list-rules: give one of them")

    def test_unique_prefix_and_equals_forms_work(self):
        rc, out, err = run("doctor", "--expl=ccm-cidr-allocator")
        self.assertEqual(rc, 0, err)
        self.assertIn("ccm-cidr-allocator", out)
        rc, out, err = run("render", "--list")
        self.assertEqual(rc, 0, err)
        self.assertIn("vip-alias.yaml", out)


if __name__ == "__main__":
    unittest.main()
