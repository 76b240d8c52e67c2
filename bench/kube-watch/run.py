#!/usr/bin/env python3
"""bench/kube-watch: what a large object costs the emulator when many clients watch it.

Starts talos-gcp-emu (TALOS_GCP_EMU, default build/src/emu/talos-gcp-emu), opens --watchers
watches on ConfigMaps, creates a ConfigMap of --size bytes of data, reads the event on every
watch, and prints the emulator's RSS (VmRSS) before and after and its peak (VmHWM), the
time until every watcher had the event, and what the API answers for a 20 MB ConfigMap.

    bench/kube-watch/run.py [--watchers 50] [--size 1048000]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "lib"))
os.environ.setdefault("TALOS_GCP_EMU", os.path.join(os.path.dirname(__file__), "..", "..",
                                                    "build", "src", "emu", "talos-gcp-emu"))
from emu import Emu  # noqa: E402


def status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024  # MiB
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--watchers", type=int, default=50)
    ap.add_argument("--size", type=int, default=1024 * 1024 - 576)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-kube-watch-")
    emu = Emu(tmp, ccm="off").start()
    try:
        cm = "/api/v1/namespaces/default/configmaps"
        rv = emu.kube("GET", cm)[1]["metadata"]["resourceVersion"]
        sessions = []
        for _ in range(args.watchers):
            s = emu.kube_session(timeout=60)
            s.conn.request("GET", f"{cm}?watch=true&resourceVersion={rv}", headers=s.headers)
            sessions.append(s)
        time.sleep(0.5)  # the watches are open (a figure, not a test: no polling needed)
        before = status(emu.proc.pid, "VmRSS")
        t0 = time.monotonic()
        st, _ = emu.kube("POST", cm, {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "big"}, "data": {"a": "x" * args.size}})
        assert st == 201, st
        after_write = status(emu.proc.pid, "VmRSS")
        for s in sessions:
            r = s.conn.getresponse()
            buf = b""
            while b"\n" not in buf:
                buf += r.read1(1 << 20)
            assert json.loads(buf.split(b"\n", 1)[0])["type"] == "ADDED"
        elapsed = time.monotonic() - t0
        after = status(emu.proc.pid, "VmRSS")
        peak = status(emu.proc.pid, "VmHWM")
        big = emu.kube("POST", cm, {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "huge"}, "data": {"a": "x" * (20 << 20)}})
        for s in sessions:
            s.close()
        print(f"command: bench/kube-watch/run.py --watchers {args.watchers} --size {args.size}")
        print(f"watchers={args.watchers} object_bytes={args.size}")
        print(f"rss_before_mib={before} rss_after_create_mib={after_write} "
              f"rss_after_delivery_mib={after} peak_rss_mib={peak}")
        print(f"delivered_to_all_s={elapsed:.3f}")
        print(f"20MB_configmap_answer={big[0]} {big[1].get('reason')}: {big[1].get('message')}")
    finally:
        emu.stop(check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
