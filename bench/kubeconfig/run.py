#!/usr/bin/env python3
"""bench/kubeconfig: how long talos-gcp takes to refuse a deeply nested kubeconfig.

A 200 KB kubeconfig of 100,000 nested flow sequences ("preferences: [[[...]]]") and one of
100,000 nested flow mappings: libyaml's document loader costs the square of the depth (37 s
and 72 s before the bounds scan); talos-gcp now refuses them at level 257. Reported: median
and max wall time of `talos-gcp verify --kubeconfig FILE` (the whole process, nothing else
runs: the refusal comes before any connection), against the issue's target of 0.1 s.

    python3 bench/kubeconfig/run.py [--build build] [--runs 20] [--depth 100000]
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--depth", type=int, default=100000)
    args = p.parse_args()
    talos_gcp = os.path.join(args.build, "src", "cli", "talos-gcp")
    d = args.depth
    docs = {
        "sequences": "[" * d + "]" * d,
        "mappings": "{a: " * d + "1" + "}" * d,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "CLOUDSDK_"))}
    env["CLOUDSDK_AUTH_DISABLE_CREDENTIALS"] = "true"
    print(f"# bench/kubeconfig: {args.runs} runs, depth {d}, {talos_gcp}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, body in docs.items():
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write("apiVersion: v1\nkind: Config\npreferences: " + body + "\n")
            walls = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                r = subprocess.run([talos_gcp, "verify", "--kubeconfig", path, "--project",
                                    "demo-project", "--compute-endpoint", "http://127.0.0.1:9/"],
                                   capture_output=True, text=True, env=env, timeout=600)
                walls.append(time.perf_counter() - t0)
                if r.returncode != 2 or "nesting deeper than" not in r.stderr:
                    raise SystemExit(f"not refused: exit {r.returncode}: {r.stderr}")
            size = os.path.getsize(path)
            print(f"{name:>10}: {size / 1024:.0f} KB, refused in median "
                  f"{statistics.median(walls) * 1000:.1f} ms, max {max(walls) * 1000:.1f} ms "
                  f"(target < 100 ms: {'met' if max(walls) < 0.1 else 'NOT met'})")


if __name__ == "__main__":
    main()
