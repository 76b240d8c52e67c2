"""The man pages (man/*.scd, scdoc) against the programs' --help, and as man renders them.

For talos-gcp (and each subcommand), vip-alias and talos-gcp-emu: every flag --help lists is
in the page's OPTIONS sections with the same placeholder, and every flag the page lists is in
--help; talos-gcp's defaults and exit codes are the page's too. Each page builds with scdoc,
renders with `man --warnings` without a warning, and has the sections an operator looks for.
"""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from emu import EMU, SOURCE_ROOT, TALOS_GCP

VIP_ALIAS = os.environ.get("VIP_ALIAS", "vip-alias")
MAN_DIR = os.path.join(SOURCE_ROOT, "man")
SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "ENVIRONMENT",
            "FILES", "EXAMPLES", "SEE ALSO")
# "-o, --output FORMAT", "--vip ADDR", "-h, --help, --version"
# "--leader-elect[=BOOL]": an optional value.
ENTRY = re.compile(r"^((?:-[\w-]+, )*-[\w-]+)(?: (\S+)|(\[=[^\]\s]+\]))?(?:\s{2,}(.*))?$")
DEFAULT = re.compile(r"\(default ((?:[^()]|\([^()]*\))*)\)")


def run(prog, *args):
    p = subprocess.run([prog, *args], capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if not k.startswith("VIP_ALIAS_")})
    return p.returncode, p.stdout, p.stderr


def help_entries(text):
    """{flag: (placeholder, text)} of the option lines of a --help (2 to 6 spaces in)."""
    entries, last = {}, None
    for line in text.splitlines():
        m = re.match(r"^ {2,6}(-.*)$", line)
        e = ENTRY.match(m.group(1)) if m else None
        if e:
            last = e.group(1).split(", ")
            for flag in last:
                entries[flag] = [e.group(2) or e.group(3), e.group(4) or ""]
        elif last and re.match(r"^ {20,}\S", line):
            for flag in last:
                entries[flag][1] += " " + line.strip()
        else:
            last = None
    return {f: (arg, " ".join(t.split())) for f, (arg, t) in entries.items()}


def exit_codes(help_text):
    m = re.search(r"Exit status: (.*?)(?:\n\n|\Z)", help_text, re.S)
    return set(re.findall(r"(?:^|, )(\d) ", " ".join(m.group(1).split()))) if m else None


class Page:
    """A man page built with scdoc and rendered by man, as text."""

    def __init__(self, name, tmpdir):
        self.name = name
        self.source = os.path.join(MAN_DIR, name + ".scd")
        roff = os.path.join(tmpdir, name)
        with open(self.source) as src, open(roff, "w") as out:
            p = subprocess.run(["scdoc"], stdin=src, stdout=out, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise AssertionError(f"scdoc {self.source}: {p.stderr}")
        env = dict(os.environ, MANWIDTH="400", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
        env.pop("MANPAGER", None)
        env.pop("PAGER", None)
        p = subprocess.run(["man", "--warnings", "--no-hyphenation", "--no-justification",
                            "-l", roff], capture_output=True, text=True, env=env, timeout=60)
        self.rc, self.warnings, self.text = p.returncode, p.stderr, p.stdout
        self.sections = {}
        current = None
        for line in self.text.splitlines():
            if re.match(r"^[A-Z][A-Z ]+$", line):
                current = line.strip()
                self.sections[current] = []
            elif current:
                self.sections[current].append(line)

    def options(self):
        """{flag: (placeholder, text)} of the entries of every section named *OPTIONS."""
        entries, last = {}, None
        for name, lines in self.sections.items():
            if not name.endswith("OPTIONS"):
                continue
            for line in lines:
                e = ENTRY.match(line[7:]) if re.match(r"^ {7}-", line) else None
                if e:
                    last = e.group(1).split(", ")
                    for flag in last:
                        entries[flag] = [e.group(2) or e.group(3), ""]
                elif last and re.match(r"^ {8,}\S", line):
                    for flag in last:
                        entries[flag][1] += " " + line.strip()
                elif line.strip():
                    last = None
        return {f: (arg, " ".join(t.split())) for f, (arg, t) in entries.items()}

    def exit_codes(self):
        return {l.strip() for l in self.sections.get("EXIT STATUS", []) if re.match(r"^ {7}\d$", l)}


def subcommands():
    out = run(TALOS_GCP, "--help")[1].split("Subcommands:\n", 1)[1].split("\n\n", 1)[0]
    return [l.split()[0] for l in out.splitlines() if l.split()[0] not in ("help", "version")]


def programs():
    """(page, [program, args...] printing its --help, whether its help comes from a table)."""
    yield "talos-gcp.1", [TALOS_GCP, "--help"], True
    for sub in subcommands():
        yield f"talos-gcp-{sub}.1", [TALOS_GCP, "help", sub], True
    yield "vip-alias.8", [VIP_ALIAS, "--help"], False
    yield "talos-gcp-emu.1", [EMU, "--help"], False


@unittest.skipUnless(shutil.which("scdoc") and shutil.which("man"),
                     "scdoc or man not installed (scripts/deps.sh installs them)")
class ManTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory()
        cls.pages = {os.path.basename(p)[:-4]: Page(os.path.basename(p)[:-4], cls._tmp.name)
                     for p in sorted(glob.glob(os.path.join(MAN_DIR, "*.scd")))}

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def test_one_page_per_program_and_subcommand_all_installed(self):
        want = {page for page, _, _ in programs()}
        self.assertEqual(set(self.pages), want)
        with open(os.path.join(MAN_DIR, "meson.build")) as f:
            self.assertEqual(set(re.findall(r"^  '([\w.-]+)',$", f.read(), re.M)), want)

    def test_renders_without_warnings_and_has_the_sections(self):
        for name, page in self.pages.items():
            with self.subTest(name):
                self.assertEqual((page.rc, page.warnings), (0, ""))
                self.assertEqual([s for s in SECTIONS if s not in page.sections], [])
                title = name.rsplit(".", 1)
                self.assertTrue(page.text.startswith(f"{title[0]}({title[1]})"), page.text[:80])
                self.assertRegex("\n".join(page.sections["NAME"]), rf"^\s+{re.escape(title[0])} - \S")

    def test_flags_are_those_of_help_and_the_other_way_round(self):
        for name, argv, tabled in programs():
            with self.subTest(name):
                rc, text, err = run(*argv)
                self.assertEqual(rc, 0, err)
                helped = help_entries(text)
                documented = self.pages[name].options()
                self.assertTrue(helped, text)
                self.assertEqual(sorted(set(helped) - set(documented)), [],
                                 f"in {' '.join(argv[1:])} but not in {name}")
                self.assertEqual(sorted(set(documented) - set(helped)), [],
                                 f"in {name} but not in {' '.join(argv[1:])}")
                for flag, (arg, _) in helped.items():
                    self.assertEqual(documented[flag][0], arg, f"{name}: {flag}'s placeholder")
                if not tabled:
                    continue
                # The defaults --help shows are the page's, word for word.
                for flag, (_, desc) in helped.items():
                    for default in DEFAULT.findall(desc):
                        self.assertIn(f"(default {default})", documented[flag][1], f"{name}: {flag}")

    def test_exit_status_codes(self):
        for name, argv, _ in programs():
            with self.subTest(name):
                codes = exit_codes(run(*argv)[1])
                if codes is None:
                    continue
                self.assertEqual(self.pages[name].exit_codes(), codes)

    def test_builds_as_meson_installs_it(self):
        """The pages meson built (build/man/) are the sources', if this build made them."""
        built = os.path.join(os.environ.get("BUILD_ROOT", ""), "man")
        if not os.path.isdir(built):
            self.skipTest("this build has no man pages (-Dman=disabled or no scdoc)")
        for name in self.pages:
            with self.subTest(name):
                self.assertTrue(os.path.exists(os.path.join(built, name)), name)


if __name__ == "__main__":
    unittest.main()
