#!/usr/bin/env python3
"""Counts individual test cases in meson's testlog.json files and prints the closing line.

Usage: tally.py NAME=path/testlog.json ...
TAP tests count each 'ok' / 'not ok' line ('# SKIP' counts as skipped); other tests count
once by their result. A TAP test that crashed after some cases counts one more failure.
Exit 0 when nothing failed.
"""
import json
import re
import sys

TAP = re.compile(r"^(not ok|ok)\b(?:\s+\d+)?(?:\s*-?\s*)?(.*)$")

passed = failed = skipped = 0
failures = []
for arg in sys.argv[1:]:
    name, _, path = arg.partition("=")
    try:
        with open(path) as f:
            entries = [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        print(f"tally: {path}: {e}", file=sys.stderr)
        failed += 1
        failures.append(f"[{name}] no test log")
        continue
    for e in entries:
        result = e.get("result")
        out = e.get("stdout") or e.get("stdo") or ""
        tap = [m for m in (TAP.match(l) for l in out.splitlines()) if m]
        if tap:
            for m in tap:
                desc = m.group(2)
                if re.search(r"#\s*SKIP", desc, re.I):
                    skipped += 1
                elif m.group(1) == "ok":
                    passed += 1
                else:
                    failed += 1
                    failures.append(f"[{name}] {e['name']}: {desc}")
            if result not in ("OK", "SKIP", "EXPECTEDFAIL") and not any(
                    m.group(1) == "not ok" for m in tap):
                failed += 1
                failures.append(f"[{name}] {e['name']}: exited {result}")
        elif result == "OK":
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
            failures.append(f"[{name}] {e['name']}: {result}")

for f in failures:
    print(f"FAILED {f}")
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
