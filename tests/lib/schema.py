"""The JSON Schemas of talos-gcp's -o json documents (docs/schema/NAME.schema.json), and
checking a run's output against its subcommand's schema.

Every test that runs the CLI through cluster.talos_gcp() (and test_doctor's run()) with
-o json has its stdout checked here, so the schemas are held to every real output the
suites produce, failures included. python3-jsonschema is Debian's (scripts/deps.sh).
"""
import functools
import json
import os

from jsonschema import Draft202012Validator

from emu import SOURCE_ROOT

SCHEMA_DIR = os.path.join(SOURCE_ROOT, "docs", "schema")


def schema_names():
    return sorted(f[:-len(".schema.json")] for f in os.listdir(SCHEMA_DIR)
                  if f.endswith(".schema.json"))


@functools.lru_cache(maxsize=None)
def schema(name):
    with open(os.path.join(SCHEMA_DIR, name + ".schema.json")) as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def validator(name):
    s = schema(name)
    Draft202012Validator.check_schema(s)
    return Draft202012Validator(s)


def errors(name, doc):
    """The schema's complaints about doc, one line each ("path: message")."""
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in sorted(validator(name).iter_errors(doc), key=lambda e: list(e.absolute_path))]


def validate(name, doc):
    errs = errors(name, doc)
    if errs:
        raise AssertionError(f"talos-gcp {name} -o json does not follow docs/schema/{name}.schema.json:\n  "
                             + "\n  ".join(errs[:10]) + "\n" + json.dumps(doc, indent=1)[:3000])


def output_format(args):
    """The -o of an argument list, as getopt_long reads it (the last one wins)."""
    fmt = None
    args = list(args)
    for i, a in enumerate(args):
        if a == "--":
            break
        if a in ("-o", "--output") and i + 1 < len(args):
            fmt = args[i + 1]
        elif a.startswith("--output="):
            fmt = a.split("=", 1)[1]
        elif a.startswith("-o") and len(a) > 2 and not a.startswith("--"):
            fmt = a[2:]
    return fmt


def check_output(args, stdout):
    """A -o json run of a subcommand with a schema: stdout is one document that follows it
    (or nothing, when the run stopped before it had anything to say)."""
    if not args or output_format(args) != "json" or args[0] not in schema_names():
        return
    if not stdout.strip():
        return
    try:
        doc = json.loads(stdout)
    except ValueError as e:
        raise AssertionError(f"talos-gcp {' '.join(args)}: -o json printed what is not one JSON "
                             f"document ({e}):\n{stdout[:2000]}")
    validate(args[0], doc)
