#!/usr/bin/env python3
"""bench/emu-batch: talos-gcp-emu's batch endpoint (POST /batch/compute/v1) under batches of
2, 100 and 1,000 parts (gcloud's limit), one keep-alive connection.

Each batch is --runs requests of N instances.get parts as gcloud writes them (LF lines,
Content-ID <uuid+i>); every answer is parsed as apitools parses it and checked (N parts, all
200). Reported per size: median and max wall time per batch, parts per second, answer size.

    python3 bench/emu-batch/run.py [--build build] [--runs 20]
"""
import argparse
import http.client
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path[:0] = [os.path.join(ROOT, "tests", "lib"), os.path.join(ROOT, "tests", "integration")]

from emu import Emu  # noqa: E402
from test_emu_compute_batch import BOUNDARY, build, parse  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    os.environ.setdefault("TALOS_GCP_EMU", os.path.join(args.build, "src", "emu", "talos-gcp-emu"))
    import emu as emu_mod
    emu_mod.EMU = os.environ["TALOS_GCP_EMU"]
    tmp = tempfile.mkdtemp(prefix="bench-emu-batch-")
    e = Emu(tmp, kube=False).start()
    try:
        e.create_network("talos")
        e.create_subnet("nodes")
        e.create_instance("n1")
        host, port = e.cloud_url.split("//", 1)[1].rsplit(":", 1)
        path = f"/compute/v1/projects/{e.project}/zones/us-central1-a/instances/n1"
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        print(f"python3 bench/emu-batch/run.py --runs {args.runs}  ({emu_mod.EMU})")
        for n in (2, 100, 1000):
            body = build([("GET", path, None)] * n)
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                conn.request("POST", "/batch/compute/v1", body=body,
                             headers={"Content-Type": f'multipart/mixed; boundary="{BOUNDARY}"'})
                r = conn.getresponse()
                data = r.read()
                times.append(time.perf_counter() - t0)
                if r.status != 200:
                    raise SystemExit(f"batch of {n}: HTTP {r.status}")
            parts = parse(r.getheader("Content-Type"), data)
            if len(parts) != n or any(p[1] != 200 for p in parts):
                raise SystemExit(f"batch of {n}: wrong answer")
            med = statistics.median(times)
            print(f"{n:5d} parts: median {med * 1000:7.1f} ms  max {max(times) * 1000:7.1f} ms  "
                  f"{n / med:9.0f} parts/s  answer {len(data) / 1024:6.0f} KiB")
        conn.close()
    finally:
        e.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
