#!/usr/bin/env python3
"""bench/up: talos-gcp up from empty, a no-op up, and down, with emulated operation latency.

A fresh talos-gcp-emu with --operation-delay (default 1s: every Operation stays RUNNING that
long, as GCP's take about that) for each run. The plan (`plan -o json`) gives the number of
operations and the dependency graph's critical path; reported for each step:

  - wall time of the talos-gcp process, against the critical path times the latency (the
    best any client can do) and the sum of the operations' latencies (what a script running
    gcloud commands one after another pays, before each command's own start-up of about 2 s);
  - the mutating requests the emulator answered (/_emu/stats: POST/PUT/PATCH/DELETE except
    operations/wait, listInstances, getHealth) and all requests.

Targets (issue 9): up within 1.2x the critical path; a no-op up under 1 s with zero mutating
requests; down within 1.2x its critical path.

    python3 bench/up/run.py [--build build] [--spec examples/cluster.yaml] [--delay 1s]
                            [--runs 3] [--parallelism 16,4,1]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import emu as emu_lib  # noqa: E402
from emu import Emu  # noqa: E402
from provision import mutations  # noqa: E402


def seconds(text):
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    if text.endswith("s"):
        return float(text[:-1])
    raise SystemExit(f"--delay {text}: want e.g. 1s or 250ms")


def env_for(emu):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_"))}
    env.update(CLOUDSDK_AUTH_DISABLE_CREDENTIALS="true", TALOS_GCP_COMPUTE_ENDPOINT=emu.compute_endpoint)
    return env


def talos(args, cmd, spec, env, *extra):
    t0 = time.perf_counter()
    r = subprocess.run([args.talos_gcp, cmd, "-f", spec, *extra], capture_output=True, text=True,
                       env=env, timeout=600)
    wall = time.perf_counter() - t0
    return r, wall


def plan_json(args, spec, env, *extra):
    r, _ = talos(args, "plan", spec, env, "-o", "json", *extra)
    if r.returncode not in (0, 1):
        raise SystemExit(f"plan failed: {r.stderr}")
    return json.loads(r.stdout)


def one_run(args, parallelism):
    tmp = tempfile.mkdtemp(prefix="bench-up-")
    try:
        emu = Emu(tmp, kube=False, extra=("--operation-delay", args.delay)).start()
        try:
            env = env_for(emu)
            spec = os.path.abspath(args.spec)
            par = ("--parallelism", str(parallelism))
            up_plan = plan_json(args, spec, env)
            out = {}
            emu.stats(reset=True)
            r, wall = talos(args, "up", spec, env, *par)
            if r.returncode != 0:
                raise SystemExit(f"up failed: {r.stdout}\n{r.stderr}")
            st = emu.stats()
            out["up"] = dict(wall=wall, ops=up_plan["summary"]["operations"],
                             critical=up_plan["summary"]["criticalPath"], mutating=mutations(st),
                             requests=sum(st["requests"].values()))
            emu.stats(reset=True)
            r, wall = talos(args, "up", spec, env, *par)
            st = emu.stats()
            if r.returncode != 0:
                raise SystemExit(f"no-op up failed: {r.stderr}")
            out["noop"] = dict(wall=wall, ops=0, critical=0, mutating=mutations(st),
                               requests=sum(st["requests"].values()))
            down_plan = plan_json(args, spec, env, "--destroy")
            emu.stats(reset=True)
            r, wall = talos(args, "down", spec, env, *par)
            if r.returncode != 0:
                raise SystemExit(f"down failed: {r.stdout}\n{r.stderr}")
            st = emu.stats()
            out["down"] = dict(wall=wall, ops=down_plan["summary"]["operations"],
                               critical=down_plan["summary"]["criticalPath"], mutating=mutations(st),
                               requests=sum(st["requests"].values()))
            return out
        finally:
            emu.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--spec", default=os.path.join(ROOT, "examples", "cluster.yaml"))
    ap.add_argument("--delay", default="1s")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parallelism", default="16")
    args = ap.parse_args()
    args.talos_gcp = os.path.join(args.build, "src", "cli", "talos-gcp")
    emu_lib.EMU = os.environ.get("TALOS_GCP_EMU", os.path.join(args.build, "src", "emu", "talos-gcp-emu"))
    latency = seconds(args.delay)
    print(f"# {' '.join(sys.argv)}")
    print(f"# spec {os.path.relpath(args.spec, ROOT)}, operation latency {args.delay}, "
          f"{args.runs} runs (median)")
    print(f"{'step':<8} {'par':>4} {'ops':>4} {'wall s':>8} {'crit s':>7} {'x crit':>7} "
          f"{'bound s':>8} {'sum s':>7} {'mutating':>9} {'requests':>9}  target")
    for par in [int(p) for p in args.parallelism.split(",")]:
        runs = [one_run(args, par) for _ in range(args.runs)]
        for step in ("up", "noop", "down"):
            wall = statistics.median(r[step]["wall"] for r in runs)
            first = runs[0][step]
            crit = first["critical"] * latency
            ratio = wall / crit if crit else 0.0
            # With fewer workers than the widest step needs, no schedule beats ops/par.
            bound = max(first["critical"], -(-first["ops"] // par)) * latency
            if step == "noop":
                met = wall < 1.0 and all(r[step]["mutating"] == 0 for r in runs)
                target = f"< 1 s, 0 mutating: {'met' if met else 'MISSED'}"
            elif bound > crit:
                target = f"(parallelism-bound: {wall / bound:.2f}x the bound)"
            else:
                target = f"<= 1.2x critical path: {'met' if ratio <= 1.2 else 'MISSED'}"
            print(f"{step:<8} {par:>4} {first['ops']:>4} {wall:>8.2f} {crit:>7.1f} "
                  f"{ratio:>7.2f} {bound:>8.1f} {first['ops'] * latency:>7.1f} "
                  f"{first['mutating']:>9} {first['requests']:>9}  {target}")


if __name__ == "__main__":
    main()
