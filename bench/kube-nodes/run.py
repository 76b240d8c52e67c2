#!/usr/bin/env python3
"""bench/kube-nodes: N Talos instances inserted through the Compute API until N Nodes are
registered by the emulated kubelets and given their podCIDR by the emulated CCM.

Prints the time from the first insert until every Node has its podCIDR, the size of one full
Node list, the time of three more, and the emulator's RSS and peak RSS.

    bench/kube-nodes/run.py [--nodes 5000] [--emu build/src/emu/talos-gcp-emu]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "lib"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--emu", default=os.path.join(HERE, "..", "..", "build", "src", "emu", "talos-gcp-emu"))
    args = ap.parse_args()
    import emu as emu_mod
    emu_mod.EMU = args.emu
    from emu import Emu
    tmp = tempfile.mkdtemp(prefix="bench-kube-nodes-")
    e = Emu(tmp, ccm="cloud", extra=["--kubelet-delay", "0ms", "--ccm-delay", "0ms"]).start()
    try:
        e.create_network("talos")
        e.create_subnet("nodes", cidr="10.0.0.0/16", pods="10.64.0.0/10", services=None)
        s = e.http()
        t0 = time.monotonic()
        last = None
        for i in range(args.nodes):
            _, last = s.call("POST", "zones/us-central1-a/instances", Emu.instance_body(f"node-{i:05d}"))
        e.wait_op(last)
        inserted = time.monotonic() - t0
        ks = e.kube_session(timeout=120)

        def with_cidr():
            cont, n = None, 0
            while True:
                _, o = ks.call("GET", "/api/v1/nodes?limit=500" + ("&continue=" + cont if cont else ""))
                n += sum(1 for x in o["items"] if x["spec"].get("podCIDR"))
                cont = o["metadata"].get("continue")
                if not cont:
                    return n >= args.nodes
        e.wait_until(with_cidr, timeout=600, interval=0.5, what="podCIDRs")
        done = time.monotonic() - t0
        _, raw, _ = ks.call("GET", "/api/v1/nodes", raw=True)
        t1 = time.monotonic()
        for _ in range(3):
            ks.call("GET", "/api/v1/nodes", raw=True)
        lists = time.monotonic() - t1
        with open(f"/proc/{e.proc.pid}/status") as f:
            mem = {l.split(":")[0]: int(l.split()[1]) // 1024 for l in f if l.startswith(("VmRSS", "VmHWM"))}
        print(f"command: bench/kube-nodes/run.py --nodes {args.nodes}")
        print(f"nodes={args.nodes} inserted_s={inserted:.2f} all_with_podcidr_s={done:.2f}")
        print(f"list_bytes={len(raw)} bytes_per_node={len(raw) // args.nodes} three_lists_s={lists:.2f}")
        print(f"rss_mib={mem['VmRSS']} peak_rss_mib={mem['VmHWM']}")
    finally:
        e.stop(check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
