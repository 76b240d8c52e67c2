#!/usr/bin/env python3
"""bench/services: a LoadBalancer Service through the emulated CCM, with emulated operation
latency (--operation-delay, default 1s: every Operation stays RUNNING that long).

For each run, on a fresh emulator with a control plane and --workers nodes:

  - kubectl apply of the design note's §2 Service (a reserved loadBalancerIP; --ephemeral:
    none, the CCM reserves and releases its own) -> the Service's EXTERNAL-IP;
  - kubectl delete (which waits for the finalizer) -> nothing of the load balancer left;

against the critical path of the CCM's calls: the Operations it started (every Operation of
the project inserted in the interval), and the longest chain of them where each one was
started after the previous one ended (the calls it could not make at once), times the
latency. The difference is the CCM's own work: reads (not delayed), its 1-turn hops, and the
service controller's reaction (--ccm-delay).

    python3 bench/services/run.py [--build build] [--delay 1s] [--runs 3] [--workers 3]
                                  [--ephemeral]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import emu as emu_lib  # noqa: E402
from emu import Emu  # noqa: E402

P = "projects/demo-project"
R = "regions/us-central1"
YAML = """apiVersion: v1
kind: Service
metadata:
  name: traefik
  namespace: kube-system
spec:
  type: LoadBalancer
{ip}  ports:
    - port: 80
      targetPort: 80
"""


def seconds(text):
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    if text.endswith("s"):
        return float(text[:-1])
    raise SystemExit(f"--delay {text}: want e.g. 1s or 250ms")


def rfc3339(s):
    # "2026-12-04T23:06:32.198-00:00"
    import datetime
    return datetime.datetime.fromisoformat(s.replace("-00:00", "+00:00")).timestamp()


def operations(emu, t0_wall):
    st, agg = emu.compute("GET", f"{P}/aggregated/operations")
    assert st == 200, agg
    ops = []
    for scope in agg.get("items", {}).values():
        for op in scope.get("operations", []):
            if op.get("endTime") and rfc3339(op["insertTime"]) >= t0_wall - 0.001:
                ops.append((rfc3339(op["insertTime"]), rfc3339(op["endTime"]), op["operationType"],
                            op["targetLink"].rsplit("/", 2)[-2]))
    return ops


def chain(ops):
    """The longest chain of Operations each inserted after the previous one ended."""
    ops = sorted(ops)
    best = [1] * len(ops)
    for i, (ins, _, _, _) in enumerate(ops):
        for j in range(i):
            if ops[j][1] <= ins + 0.0005:
                best[i] = max(best[i], best[j] + 1)
    return max(best, default=0)


def world(tmp, args):
    emu = Emu(tmp, extra=["--operation-delay", args.delay, "--kubelet-delay", "50ms",
                          "--ccm-delay", "20ms"]).start()
    emu.create_network()
    emu.create_subnet(cidr="10.0.0.0/24", pods="172.20.0.0/16")
    names = ["demo-cp-0"] + [f"demo-worker-{i}" for i in range(args.workers)]
    for n in names:
        body = Emu.instance_body(n)
        body["tags"] = {"items": ["demo-controlplane" if "cp" in n else "demo-worker"]}
        emu.insert("zones/us-central1-a/instances", body, wait=False)
    for n in names:
        emu.wait_until(lambda: (lambda x: x and x["spec"].get("providerID"))(emu.node(n)),
                       timeout=60, what=f"node {n}")
    ip = None
    if not args.ephemeral:
        emu.insert(f"{R}/addresses", {"name": "traefik-ip"})
        ip = emu.compute("GET", f"{P}/{R}/addresses/traefik-ip")[1]["address"]
    return emu, ip


def ingress(emu):
    st, s = emu.kube("GET", "/api/v1/namespaces/kube-system/services/traefik")
    ing = s.get("status", {}).get("loadBalancer", {}).get("ingress") if st == 200 else None
    return ing[0]["ip"] if ing else None


def left(emu, lb, cid):
    paths = [f"{R}/forwardingRules/{lb}", f"{R}/targetPools/{lb}", f"{R}/addresses/{lb}",
             f"global/firewalls/k8s-fw-{lb}", f"global/httpHealthChecks/k8s-{cid}-node",
             f"global/firewalls/k8s-{cid}-node-http-hc"]
    return [p for p in paths if emu.compute("GET", f"{P}/{p}")[0] == 200]


def one(args):
    tmp = tempfile.mkdtemp(prefix="bench-services-")
    emu, ip = world(tmp, args)
    try:
        text = YAML.format(ip=f"  loadBalancerIP: {ip}\n" if ip else "")
        t0_wall, t0 = time.time(), time.perf_counter()
        r = emu.kubectl("apply", "-f", "-", input=text)
        assert r.returncode == 0, r.stderr
        got = emu.wait_until(lambda: ingress(emu), timeout=600, interval=0.01, what="EXTERNAL-IP")
        up = time.perf_counter() - t0
        up_ops = operations(emu, t0_wall)
        assert not ip or got == ip
        st, s = emu.kube("GET", "/api/v1/namespaces/kube-system/services/traefik")
        lb = ("a" + s["metadata"]["uid"].replace("-", ""))[:32]
        cid = emu.kube("GET", "/api/v1/namespaces/kube-system/configmaps/ingress-uid")[1]["data"]["uid"]
        t1_wall, t1 = time.time(), time.perf_counter()
        r = emu.kubectl("delete", "-n", "kube-system", "svc", "traefik", timeout=600)
        assert r.returncode == 0, r.stderr
        emu.wait_until(lambda: not left(emu, lb, cid), timeout=600, interval=0.01, what="nothing left")
        down = time.perf_counter() - t1
        down_ops = operations(emu, t1_wall)
        return up, up_ops, down, down_ops
    finally:
        emu.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--delay", default="1s")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--ephemeral", action="store_true", help="no loadBalancerIP")
    args = ap.parse_args()
    emu_lib.EMU = os.path.join(args.build, "src", "emu", "talos-gcp-emu")
    delay = seconds(args.delay)
    ups, downs = [], []
    for i in range(args.runs):
        up, up_ops, down, down_ops = one(args)
        ups.append(up)
        downs.append(down)
        cu, cd = chain(up_ops), chain(down_ops)
        print(f"run {i + 1}: apply -> EXTERNAL-IP {up:.2f}s ({len(up_ops)} Operations, critical "
              f"path {cu} x {args.delay} = {cu * delay:.1f}s); delete -> nothing left {down:.2f}s "
              f"({len(down_ops)} Operations, critical path {cd} = {cd * delay:.1f}s)")
        if i == 0:
            for name, ops in (("apply", up_ops), ("delete", down_ops)):
                base = min((o[0] for o in ops), default=0)
                print(f"  {name}: " + ", ".join(f"{t}:{c}@{s - base:.1f}s" for s, _, t, c in sorted(ops)))
    print(f"\n{args.runs} runs, {args.workers} workers, operation delay {args.delay}"
          f"{', ephemeral address' if args.ephemeral else ', reserved loadBalancerIP'}: "
          f"apply -> EXTERNAL-IP median {statistics.median(ups):.2f}s, "
          f"delete -> nothing left median {statistics.median(downs):.2f}s")


if __name__ == "__main__":
    main()
