"""Shell completion of talos-gcp, driven as the shells drive it.

bash: completion/talos-gcp.bash is sourced in `bash -c`, COMP_WORDS and COMP_CWORD are set
as bash splits a command line (COMP_WORDBREAKS splits "--flag=value" into "--flag" "=" and
"value"), _talos_gcp runs, and COMPREPLY is read back. zsh: completion/_talos-gcp runs with
words and CURRENT set and zsh's completion builtins (compset, _describe, _files) replaced by
functions that print what they were given. Both ask the binary (talos-gcp __complete), so
the candidates are compared with what the binary says elsewhere: --help, doctor
--list-rules, render --list.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from emu import SOURCE_ROOT, TALOS_GCP

BASH_SCRIPT = os.path.join(SOURCE_ROOT, "completion", "talos-gcp.bash")
ZSH_SCRIPT = os.path.join(SOURCE_ROOT, "completion", "_talos-gcp")


def run(*args):
    p = subprocess.run([TALOS_GCP, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def bash_complete(*words, cwd=None):
    """COMPREPLY for the command line `talos-gcp WORDS...`, the cursor at the end of the last
    word (give "" to complete a new word). "=" is its own word, as bash splits it."""
    script = (f'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); '
              f'_talos_gcp; printf "%s\\n" "${{COMPREPLY[@]}}"')
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "bash", BASH_SCRIPT,
                        TALOS_GCP, *words], capture_output=True, text=True, timeout=30, cwd=cwd)
    if p.returncode != 0 or p.stderr:
        raise AssertionError(f"bash completion of {words}: {p.returncode} {p.stderr}")
    return [w for w in p.stdout.split("\n") if w]


def long_flags(sub):
    text = run("help", sub)[1]
    return set(re.findall(r"^  (?:-\w, )?(--[\w-]+)", text, re.M))


def rule_ids():
    return {line.split()[0] for line in run("doctor", "--list-rules")[1].splitlines()}


def subcommands():
    out = run("--help")[1].split("Subcommands:\n", 1)[1].split("\n\n", 1)[0]
    return {line.split()[0] for line in out.splitlines()}


class BashTest(unittest.TestCase):
    def test_subcommands(self):
        self.assertEqual(set(bash_complete("")), subcommands())
        self.assertEqual(set(bash_complete("ve")), {"verify", "version"})
        self.assertEqual(set(bash_complete("help", "")), subcommands())
        self.assertEqual(set(bash_complete("--")), {"--help", "--version"})

    def test_flags_are_those_of_help(self):
        for sub in subcommands() - {"help", "version"}:
            with self.subTest(sub):
                self.assertEqual(set(bash_complete(sub, "--")), long_flags(sub))
        # A flag given once is not offered again; a repeatable one is.
        self.assertNotIn("--node", bash_complete("verify", "--node", "a-0", "--"))
        self.assertNotIn("--output", bash_complete("verify", "-o", "json", "--"))
        self.assertIn("--file", bash_complete("doctor", "-f", "a.yaml", "--"))
        self.assertEqual(bash_complete("repair", "--st"), ["--strategy"])

    def test_output_formats(self):
        self.assertEqual(bash_complete("verify", "-o", ""), ["table", "json"])
        self.assertEqual(bash_complete("verify", "--output", "=", ""), ["table", "json"])
        self.assertEqual(bash_complete("verify", "--output", "=", "j"), ["json"])
        self.assertEqual(bash_complete("doctor", "-o", "s"), ["sarif"])
        self.assertEqual(bash_complete("plan", "-o", ""), ["text", "json"])

    def test_values(self):
        self.assertEqual(bash_complete("repair", "--strategy", ""), ["gcp", "node"])
        self.assertEqual(set(bash_complete("doctor", "--fail-on", "")), {"error", "warning", "note", "none"})
        components = {line.split()[0] for line in run("render", "--list")[1].splitlines()}
        self.assertEqual(set(bash_complete("render", "--only", "")), components | {"talos"})
        # Nothing is made up for a free value.
        self.assertEqual(bash_complete("verify", "--node", ""), [])

    def test_doctor_rule_ids_come_from_the_binary(self):
        ids = rule_ids()
        self.assertGreater(len(ids), 10)
        self.assertEqual(set(bash_complete("doctor", "--explain", "")), ids)
        self.assertEqual(set(bash_complete("doctor", "--explain", "=", "")), ids)
        ccm = {i for i in ids if i.startswith("ccm-")}
        self.assertEqual(set(bash_complete("doctor", "--explain", "ccm-")), ccm)
        # --disable takes a list: the next item, without those already in it.
        first = sorted(ccm)[0]
        got = set(bash_complete("doctor", "--disable", first + ","))
        self.assertEqual(got, {f"{first},{i}" for i in ids - {first}})

    def test_files_and_directories(self):
        with tempfile.TemporaryDirectory() as d:
            for name in ("cluster.yaml", "config.json"):
                open(os.path.join(d, name), "w").close()
            os.mkdir(os.path.join(d, "conf.d"))
            self.assertEqual(set(bash_complete("doctor", "-f", "c", cwd=d)),
                             {"cluster.yaml", "config.json", "conf.d"})
            self.assertEqual(set(bash_complete("doctor", "--file", "=", "cl", cwd=d)), {"cluster.yaml"})
            self.assertEqual(set(bash_complete("doctor", "", cwd=d)),
                             {"cluster.yaml", "config.json", "conf.d"})  # operands are paths
            self.assertEqual(bash_complete("render", "--out", "c", cwd=d), ["conf.d"])
            self.assertEqual(set(bash_complete("plan", "-f", "cl", cwd=d)), {"cluster.yaml"})
            self.assertEqual(set(bash_complete("verify", "--kubeconfig", "co", cwd=d)),
                             {"config.json", "conf.d"})
            self.assertEqual(bash_complete("verify", "", cwd=d), [])  # verify takes no operand

    def test_complete_is_registered_for_talos_gcp(self):
        p = subprocess.run(["bash", "--norc", "-c", f'source "{BASH_SCRIPT}"; complete -p talos-gcp'],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stdout.strip(), "complete -F _talos_gcp talos-gcp")


ZSH_STUBS = r"""
_describe() { print -rl -- "describe" "${(@P)4}" }
_files() { print -r -- "files $*" }
compset() { print -r -- "compset $*" }
compdef() { print -r -- "compdef $*" }
"""


@unittest.skipUnless(shutil.which("zsh"), "zsh not installed (scripts/deps.sh installs it)")
class ZshTest(unittest.TestCase):
    def zsh_complete(self, *words):
        script = ZSH_STUBS + 'compdef() { : }; source "$1"; shift; words=("$@"); CURRENT=$#; _talos-gcp'
        p = subprocess.run(["zsh", "-f", "-c", script, "zsh", ZSH_SCRIPT, TALOS_GCP, *words],
                           capture_output=True, text=True, timeout=30)
        if p.returncode not in (0, 1) or p.stderr:
            raise AssertionError(f"zsh completion of {words}: {p.returncode} {p.stderr}")
        return p.stdout.splitlines()

    def test_subcommands_with_descriptions(self):
        out = self.zsh_complete("")
        self.assertEqual(out[0], "describe")
        got = dict(line.split(":", 1) for line in out[1:])
        self.assertEqual(set(got), subcommands())
        self.assertEqual(got["verify"], "check that every Node's podCIDR equals its instance's alias range")

    def test_values_and_files(self):
        out = self.zsh_complete("doctor", "--explain", "")
        self.assertEqual({line.split(":", 1)[0] for line in out[1:]}, rule_ids())
        out = self.zsh_complete("verify", "--output=j")
        self.assertEqual(out, ["compset -P *=", "describe", "json"])
        self.assertEqual(self.zsh_complete("doctor", "-f", ""), ["files "])
        self.assertEqual(self.zsh_complete("render", "--out", ""), ["files -/"])
        self.assertIn("--apply:make the changes (else print the plan only)",
                      self.zsh_complete("repair", "--"))

    def test_registers_itself(self):
        p = subprocess.run(["zsh", "-f", "-c", ZSH_STUBS + f'source "{ZSH_SCRIPT}"'],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stdout.strip(), "compdef _talos-gcp talos-gcp")


class CompleteProtocolTest(unittest.TestCase):
    """talos-gcp __complete itself: candidates, a tab and a description, then the directive."""

    def test_lines_and_directive(self):
        rc, out, err = run("__complete", "doctor", "-f", "")
        self.assertEqual((rc, out, err), (0, ":files\n", ""))
        rc, out, _ = run("__complete", "render", "--out", "")
        self.assertEqual(out, ":dirs\n")
        rc, out, _ = run("__complete", "repair", "--strategy", "")
        self.assertEqual(out, "gcp\nnode\n:\n")
        rc, out, _ = run("__complete", "nope", "")
        self.assertEqual((rc, out), (0, ":\n"))
        for line in run("__complete", "repair", "--")[1].splitlines()[:-1]:
            flag, desc = line.split("\t")
            self.assertTrue(flag.startswith("--") and desc and len(desc) <= 75, line)

    def test_hidden_from_help(self):
        self.assertNotIn("__complete", run("--help")[1])


if __name__ == "__main__":
    unittest.main()
