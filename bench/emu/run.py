#!/usr/bin/env python3
"""bench/emu: acknowledged mutations per second and their latency, with and without --state.

For each mode (in memory; --state FILE with --state-sync normal; optionally full) a fresh
talos-gcp-emu serves --clients client processes for --seconds: half insert Compute networks
(POST .../global/networks?requestId=UUID over one keep-alive connection each), half create
ConfigMaps on the kube port (HTTPS, client certificate). A mutation counts once its answer
(the Operation, or 201) is read: with --state it is committed by then. Reported per mode:
mutations per second, p50/p99/max latency, and the rate with --state against the rate in
memory (targets: at least half, p99 under 20 ms).

    python3 bench/emu/run.py [--build build] [--seconds 5] [--clients 4] [--full]
"""
import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import ssl
import sys
import tempfile
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import emu as emu_lib  # noqa: E402
from emu import Emu  # noqa: E402


def client(kind, url, tag, seconds, out, project=None, files=None):
    """One keep-alive connection making mutations for `seconds`; puts their latencies."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    if kind == "compute":
        c = http.client.HTTPConnection(host, int(port), timeout=30)
    else:
        ca, crt, key = files
        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(crt, key)
        c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
    lat, i, end = [], 0, time.monotonic() + seconds
    while time.monotonic() < end:
        if kind == "compute":
            path, want = f"/compute/v1/projects/{project}/global/networks?requestId={uuid.uuid4()}", 200
            body = {"name": f"n-{tag}-{i}", "autoCreateSubnetworks": False}
        else:
            path, want = "/api/v1/namespaces/default/configmaps", 201
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": f"cm-{tag}-{i}", "namespace": "default"}, "data": {"k": "v"}}
        t0 = time.monotonic()
        c.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != want:
            raise SystemExit(f"{kind}: {r.status}")
        lat.append(time.monotonic() - t0)
        i += 1
    out.put(lat)


def run(args, extra):
    """extra: the mode's flags; STATE stands for a file in the emulator's directory."""
    tmp = tempfile.mkdtemp(prefix="bench-emu-")
    state = os.path.join(tmp, "state.db")
    extra = [state if a == "STATE" else a for a in extra]
    try:
        emu = Emu(tmp, ccm="off", extra=extra).start()
        try:
            files = emu.kube_files()
            out = multiprocessing.Queue()
            procs = []
            for n in range(args.clients):
                if n % 2 == 0:
                    a = ("compute", emu.cloud_url, n, args.seconds, out, emu.project)
                else:
                    a = ("kube", emu.kube_url, n, args.seconds, out, None, files)
                procs.append(multiprocessing.Process(target=client, args=a))
            t0 = time.monotonic()
            for p in procs:
                p.start()
            lat = []
            for _ in procs:
                lat += out.get(timeout=args.seconds + 60)
            elapsed = time.monotonic() - t0
            for p in procs:
                p.join()
            size = os.path.getsize(state) if os.path.exists(state) else 0
        finally:
            emu.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lat.sort()
    return {"rate": len(lat) / elapsed, "n": len(lat), "p50": lat[len(lat) // 2] * 1000,
            "p99": lat[int(len(lat) * 0.99)] * 1000, "max": lat[-1] * 1000, "db": size}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=4, help="client processes (half Compute, half kube)")
    ap.add_argument("--full", action="store_true", help="also --state-sync full (an fsync per commit)")
    args = ap.parse_args()
    emu_lib.EMU = os.environ.get("TALOS_GCP_EMU", os.path.join(args.build, "src", "emu", "talos-gcp-emu"))
    os.environ.pop("TALOS_GCP_EMU_STATE_CHECK", None)
    print("$ " + " ".join(["python3", "bench/emu/run.py"] + sys.argv[1:]))
    print(f"# {args.clients} clients (half Compute inserts with requestId, half ConfigMap creates over TLS), "
          f"{args.seconds:g} s per mode, {os.cpu_count()} CPUs", flush=True)
    modes = [("memory", []), ("--state", ["--state", "STATE"])]
    if args.full:
        modes.append(("--state --state-sync full", ["--state", "STATE", "--state-sync", "full"]))
    results = {}
    for name, extra in modes:
        results[name] = res = run(args, extra)
        print(f"{name:28s} {res['rate']:8.0f} mutations/s  p50 {res['p50']:6.2f} ms  p99 {res['p99']:6.2f} ms  "
              f"max {res['max']:7.2f} ms  ({res['n']} acknowledged" +
              (f", database {res['db'] / (1 << 20):.1f} MiB)" if res["db"] else ")"), flush=True)
    base = results["memory"]["rate"]
    for name, res in results.items():
        if name != "memory":
            ok = res["rate"] >= base / 2 and res["p99"] < 20
            print(f"{name}: {100 * res['rate'] / base:.0f}% of the rate in memory, p99 {res['p99']:.2f} ms "
                  f"(targets: >= 50%, < 20 ms): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
