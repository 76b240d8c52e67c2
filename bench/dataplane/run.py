#!/usr/bin/env python3
"""bench/dataplane: instances materialised per second by talos-gcp-emu --dataplane (root).

Two ways instances arrive, each on a fresh emulator with its own namespace prefix:
  - stream: N instances.insert calls over one keep-alive connection, one after the other;
    measured from the first insert to the moment GET /_emu/dataplane lists all N;
  - batch: a state with N instances loaded at once (PUT /_emu/state): one reconcile makes
    them all; measured from the PUT to all N listed.
Reported: wall time, instances per second, the emulator's last reconcile time, and the
namespaces left after the emulator exits (must be 0). Target (issue 12): 100 in under 5 s.

    sudo python3 bench/dataplane/run.py [--build build] [--instances 100] [--runs 3]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
Emu = None  # tests/lib/emu.py, imported once --build is known (it reads TALOS_GCP_EMU)

ZONE = "us-central1-a"


def listed(emu):
    status, body = emu.control("GET", "dataplane")
    if status != 200:
        raise SystemExit(f"GET /_emu/dataplane: {status} {body}")
    return body


def wait_all(emu, n, timeout):
    deadline = time.monotonic() + timeout
    while True:
        body = listed(emu)
        if len(body["instances"]) >= n and not body["pending"]:
            return body
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(body['instances'])} of {n} materialised in {timeout}s")
        time.sleep(0.01)


def namespaces(prefix):
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [l.split()[0] for l in out.splitlines() if l.startswith(prefix + "-")]


def network(emu):
    emu.create_network()
    emu.create_subnet(cidr="10.0.0.0/16", pods="172.20.0.0/14")


def run_stream(args, n, prefix):
    tmp = tempfile.mkdtemp(prefix="bench-dp-")
    emu = Emu(tmp, kube=False, extra=["--dataplane", "--dataplane-prefix", prefix]).start()
    try:
        network(emu)
        s = emu.http()
        t0 = time.perf_counter()
        for i in range(n):
            st, op = s.call("POST", f"zones/{ZONE}/instances",
                            Emu.instance_body(f"bench-{i}", ZONE, talos=False))
            if st != 200:
                raise SystemExit(f"insert: {st} {op}")
        body = wait_all(emu, n, 120)
        wall = time.perf_counter() - t0
        s.close()
    finally:
        emu.stop()
    return wall, body["lastReconcileMs"], len(namespaces(prefix))


def run_batch(args, n, prefix):
    tmp = tempfile.mkdtemp(prefix="bench-dp-")
    # Build the state without a data plane, then load it into one that has one.
    src = Emu(tmp, kube=False).start()
    try:
        network(src)
        s = src.http()
        for i in range(n):
            s.call("POST", f"zones/{ZONE}/instances", Emu.instance_body(f"bench-{i}", ZONE, talos=False))
        s.close()
        deadline = time.monotonic() + 60
        while len(src.compute("GET", f"projects/{src.project}/zones/{ZONE}/instances")[1].get("items", [])) < n:
            if time.monotonic() > deadline:
                raise SystemExit("instances not inserted")
            time.sleep(0.05)
        state = src.control("GET", "state")[1]
    finally:
        src.stop()
    emu = Emu(tmp, kube=False, extra=["--dataplane", "--dataplane-prefix", prefix]).start()
    try:
        t0 = time.perf_counter()
        st, body = emu.control("PUT", "state", state)
        if st != 200:
            raise SystemExit(f"PUT /_emu/state: {st} {body}")
        body = wait_all(emu, n, 120)
        wall = time.perf_counter() - t0
    finally:
        emu.stop()
    return wall, body["lastReconcileMs"], len(namespaces(prefix))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--instances", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/dataplane needs root (network namespaces)")
    os.environ.setdefault("TALOS_GCP_EMU", os.path.join(args.build, "src", "emu", "talos-gcp-emu"))
    global Emu
    from emu import Emu
    n = args.instances
    print(f"# talos-gcp-emu --dataplane, {n} instances, {args.runs} runs each "
          f"(sudo python3 bench/dataplane/run.py --instances {n} --runs {args.runs})")
    for name, fn in (("stream", run_stream), ("batch", run_batch)):
        walls, recs, left = [], [], []
        for r in range(args.runs):
            w, rec, l = fn(args, n, f"tgbench{os.getpid() % 10000}{r}")
            walls.append(w)
            recs.append(rec)
            left.append(l)
        med = statistics.median(walls)
        print(f"{name:7s} median {med:6.3f} s  max {max(walls):6.3f} s  "
              f"{n / med:7.1f} instances/s  last reconcile {statistics.median(recs):7.1f} ms  "
              f"namespaces left {max(left)}")


if __name__ == "__main__":
    main()
