#!/usr/bin/env python3
"""bench/verify: talos-gcp verify at 50 to 15,000 nodes, with and without API latency.

For each size: a fresh talos-gcp-emu (CCM in cloud mode), N Talos instances inserted through
the Compute API (in 1 or 3 zones of europe-west1, round-robin), their Nodes registered by the
emulated kubelets and given podCIDRs by the emulated CloudAllocator (pods range 10.64.0.0/10:
16,384 /24s). Then `talos-gcp verify -o json` runs --runs times; reported: median and max
wall time, peak RSS of the talos-gcp process (wait4 rusage), and the number of HTTP requests
the emulator answered for one run (its /_emu/stats counter), against the issue's targets.

--latency MS adds MS milliseconds to every request on both ports (the emulator's delayMs
fault), as a real API's list pages take: the cost is then the number of round trips one
after another. Targets (issue 7): 15,000 nodes in under 0.8 s without added latency and
1.5 s with 100 ms, at most 2*ceil(N/500)+4 requests, RSS under 96 MiB.

The design note's check (§5: one `kubectl get node` and one `gcloud compute instances
describe` per node) runs at --note-nodes nodes for the ratio, when kubectl and gcloud exist.

    python3 bench/verify/run.py [--build build] [--sizes 50,500,5000,15000] [--runs 5]
                                [--latency 0,100] [--zones 1,3] [--note-nodes 20]
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import emu_cluster  # noqa: E402
from emu import Emu  # noqa: E402

ZONE = "europe-west1-b"
ZONES = ["europe-west1-b", "europe-west1-c", "europe-west1-d"]


def seed(emu, n, zones=1):
    ns = argparse.Namespace(endpoint=emu.compute_endpoint, kubeconfig=emu.kubeconfig,
                            project=emu.project, zone=ZONE, zones=ZONES[:zones], network="talos",
                            subnet="nodes", nodes_cidr="10.0.0.0/16", pods_cidr="10.64.0.0/10",
                            services_cidr="172.24.0.0/16", nodes=n, control_planes=3,
                            prefix="talos-", timeout=max(60, n / 20), want_podcidr=True)
    emu_cluster.seed(ns)


def cli_env(emu, tmp):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_", "KUBE"))}
    env.update(HOME=tmp, TALOS_GCP_COMPUTE_ENDPOINT=emu.compute_endpoint, KUBECONFIG=emu.kubeconfig,
               CLOUDSDK_AUTH_DISABLE_CREDENTIALS="true", CLOUDSDK_CORE_PROJECT=emu.project)
    return env


def run_verify(talos_gcp, env):
    """One run: (wall seconds, peak RSS KiB, exit code, stdout)."""
    r, w = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.dup2(w, 1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(r)
        os.execve(talos_gcp, [talos_gcp, "verify", "-o", "json"], env)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 1 << 20)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    return wall, ru.ru_maxrss, os.waitstatus_to_exitcode(status), b"".join(chunks)


def bench_size(args, n, zones=1, latencies=(0,)):
    """One emulator seeded with n nodes; verify measured at each added latency."""
    tmp = tempfile.mkdtemp(prefix=f"bench-verify-{n}-")
    emu = Emu(tmp, ccm="cloud").start()
    results = []
    try:
        t0 = time.perf_counter()
        seed(emu, n, zones)
        seed_s = time.perf_counter() - t0
        env = cli_env(emu, tmp)
        for latency in latencies:
            emu.clear_faults()
            if latency:
                emu.add_fault(pathPrefix="/", delayMs=latency)
            walls, rss, reqs = [], [], None
            for i in range(args.runs):
                emu.control("DELETE", "stats")
                wall, maxrss, rc, out = run_verify(args.talos_gcp, env)
                if rc != 0:
                    raise RuntimeError(f"verify exited {rc} at {n} nodes")
                doc = json.loads(out)
                if len(doc["nodes"]) != n or not doc["aligned"]:
                    raise RuntimeError(f"verify saw {len(doc['nodes'])} nodes, aligned={doc['aligned']}")
                _, stats = emu.control("GET", "stats")
                reqs = stats["total"]
                walls.append(wall)
                rss.append(maxrss)
            results.append({"nodes": n, "zones": zones, "latency": latency, "seed_s": seed_s,
                            "median_s": statistics.median(walls), "max_s": max(walls),
                            "rss_kib": max(rss), "requests": reqs,
                            "budget": 2 * math.ceil(n / 500) + 4})
        emu.clear_faults()
        return results
    finally:
        emu.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def bench_note_way(args, n):
    """The design note's loop: kubectl + gcloud per node (§5 'Verify')."""
    kubectl, gcloud = shutil.which("kubectl"), shutil.which("gcloud")
    gcloud_env = os.path.join(ROOT, "..", "shared", "tools", "gcloud-env.sh")
    if not kubectl or not gcloud:
        return None, "kubectl or gcloud not installed"
    if not os.path.exists(gcloud_env):
        return None, f"{gcloud_env} not found"
    tmp = tempfile.mkdtemp(prefix="bench-note-")
    emu = Emu(tmp, ccm="cloud").start()
    try:
        seed(emu, n)
        port = emu.cloud_url.rsplit(":", 1)[1]
        env = dict(os.environ)
        out = subprocess.run(["sh", gcloud_env, port], capture_output=True, text=True, check=True)
        for line in out.stdout.splitlines():
            k, v = line.replace("export ", "", 1).split("=", 1)
            env[k] = v
        env["KUBECONFIG"] = emu.kubeconfig
        _, nodes = emulator_nodes(emu)
        t0 = time.perf_counter()
        for name in nodes:
            subprocess.run([kubectl, "get", "node", name, "-o", "jsonpath={.spec.podCIDR}"],
                           env=env, capture_output=True, check=True)
            subprocess.run([gcloud, "compute", "instances", "describe", name, "--zone", ZONE,
                            "--format=value(networkInterfaces[0].aliasIpRanges)"],
                           env=env, capture_output=True, check=True)
        return time.perf_counter() - t0, None
    finally:
        emu.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def emulator_nodes(emu):
    k = emu_cluster.kube_api(emu.kubeconfig)
    _, lst = k.call("GET", "api/v1/nodes")
    return lst, [i["metadata"]["name"] for i in lst["items"]]


def target_s(n, latency):
    """The issue's wall-time targets, scaled to n where it names 15,000 nodes."""
    if latency == 0:
        return 0.8 if n >= 15000 else 1.0 if n >= 5000 else None
    if latency == 100:
        return 1.5 if n >= 5000 else None
    return None


def main():
    p = argparse.ArgumentParser(description="talos-gcp verify benchmark")
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--sizes", default="50,500,5000,15000")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--latency", default="0,100",
                   help="comma-separated milliseconds added to every request (0: none)")
    p.add_argument("--zones", default="1,3", help="comma-separated zone counts (1 to 3)")
    p.add_argument("--note-nodes", type=int, default=20)
    args = p.parse_args()
    args.talos_gcp = os.path.join(args.build, "src", "cli", "talos-gcp")
    os.environ["TALOS_GCP_EMU"] = os.path.join(args.build, "src", "emu", "talos-gcp-emu")
    import emu as emu_mod
    emu_mod.EMU = os.environ["TALOS_GCP_EMU"]
    latencies = [int(x) for x in args.latency.split(",")]
    zone_counts = [int(x) for x in args.zones.split(",")]

    print(f"# bench/verify: {args.runs} runs per size, build {args.build}")
    print(f"# {' '.join(sys.argv)}")
    print(f"{'nodes':>6} {'zones':>5} {'latency':>7} {'median':>9} {'max':>9} {'peak RSS':>10} "
          f"{'requests':>9} {'budget':>7}  seed  targets")
    for n in [int(x) for x in args.sizes.split(",")]:
        for zones in zone_counts:
            for r in bench_size(args, n, zones, latencies):
                t = target_s(n, r["latency"])
                ok = (r["requests"] <= r["budget"] and r["rss_kib"] < 96 * 1024 and
                      (t is None or r["max_s"] < t))
                print(f"{r['nodes']:>6} {r['zones']:>5} {r['latency']:>5}ms "
                      f"{r['median_s']*1000:>7.1f}ms {r['max_s']*1000:>7.1f}ms "
                      f"{r['rss_kib']/1024:>7.1f}MiB {r['requests']:>9} {r['budget']:>7}  "
                      f"{r['seed_s']:.0f}s  {'met' if ok else 'NOT met'}"
                      f"{f' (<{t} s)' if t else ''}", flush=True)
    if args.note_nodes:
        ours = bench_size(argparse.Namespace(**{**vars(args), "runs": 3}), args.note_nodes)[0]
        note, why = bench_note_way(args, args.note_nodes)
        if note is None:
            print(f"design note's way: skipped ({why})")
        else:
            print(f"design note's way at {args.note_nodes} nodes: {note:.2f}s "
                  f"({note/args.note_nodes:.2f}s per node); talos-gcp verify: "
                  f"{ours['median_s']*1000:.1f}ms; ratio {note/ours['median_s']:.0f}x")


if __name__ == "__main__":
    main()
