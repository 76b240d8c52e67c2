#!/usr/bin/env python3
"""bench/doctor: time and peak RSS of `talos-gcp doctor` on a large GitOps repository.

A generator writes a repository of --manifests Kubernetes manifests (default 10,000) into a
temporary directory: per application a Deployment, a Service, a ConfigMap, an HPA and an
Ingress (some files multi-document), kustomization.yaml files (not Kubernetes objects: skipped
documents), plus the cluster's own configuration (talos-gcp render output, a Cilium
HelmRelease) and a few misconfigurations (a CiliumL2AnnouncementPolicy, a public MetalLB pool),
so the rules have work to do. Then `talos-gcp doctor -f DIR -o json` runs --runs times;
reported: median and max wall time and peak RSS (wait4 rusage of the doctor process) against
the issue's targets (10,000 manifests in under 2 s and 64 MiB).

    python3 bench/doctor/run.py [--build build] [--manifests 10000] [--runs 5] [--keep DIR]
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

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  namespace: {ns}
  labels: &labels
    app.kubernetes.io/name: {app}
    app.kubernetes.io/part-of: {ns}
spec:
  replicas: 3
  selector:
    matchLabels: *labels
  template:
    metadata:
      labels: *labels
      annotations:
        prometheus.io/scrape: "true"
    spec:
      serviceAccountName: {app}
      securityContext:
        runAsNonRoot: true
        seccompProfile: {{type: RuntimeDefault}}
      containers:
        - name: {app}
          image: registry.example.com/{ns}/{app}:1.{i}.0
          args: [--listen=:8080, --log-level=info]
          ports:
            - {{name: http, containerPort: 8080}}
          env:
            - {{name: DATABASE_URL, valueFrom: {{secretKeyRef: {{name: {app}-db, key: url}}}}}}
            - {{name: CACHE_TTL, value: "300"}}
          readinessProbe:
            httpGet: {{path: /ready, port: http}}
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
            limits: {{memory: 512Mi}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
"""
SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: {app}
  namespace: {ns}
spec:
  type: {type}
  selector:
    app.kubernetes.io/name: {app}
  ports:
    - name: http
      port: 80
      targetPort: http
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {app}
  namespace: {ns}
"""
CONFIG = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {app}-config
  namespace: {ns}
data:
  config.yaml: |
    server:
      port: 8080
      timeout: 30s
    features: [a, b, c]
  LOG_FORMAT: json
"""
EXTRA = """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {app}
  namespace: {ns}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {app}}}
  minReplicas: 3
  maxReplicas: 12
  metrics:
    - type: Resource
      resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 70}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {app}
  namespace: {ns}
spec:
  rules:
    - host: {app}.{ns}.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {{service: {{name: {app}, port: {{name: http}}}}}}
"""
KUSTOMIZATION = """apiVersion: kustomize.config.k8s.io/v1beta1
resources: [deployment.yaml, service.yaml, config.yaml, extra.yaml]
"""
MISCONFIG = """apiVersion: cilium.io/v2alpha1
kind: CiliumL2AnnouncementPolicy
metadata:
  name: public
spec:
  loadBalancerIPs: true
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: public
  namespace: metallb-system
spec:
  addresses: [34.120.1.0/28]
"""


def generate(root, talos_gcp, manifests):
    """Writes the repository; returns the number of Kubernetes objects written."""
    objects = 0
    i = 0
    while objects < manifests:
        ns, app = f"team-{i % 40:02d}", f"app-{i:05d}"
        d = os.path.join(root, "apps", ns, app)
        os.makedirs(d)
        fields = dict(app=app, ns=ns, i=i, type="LoadBalancer" if i % 97 == 0 else "ClusterIP")
        for name, tmpl, n in (("deployment.yaml", DEPLOYMENT, 1), ("service.yaml", SERVICE, 2),
                              ("config.yaml", CONFIG, 1), ("extra.yaml", EXTRA, 2)):
            with open(os.path.join(d, name), "w") as f:
                f.write(tmpl.format(**fields))
            objects += n
        with open(os.path.join(d, "kustomization.yaml"), "w") as f:
            f.write(KUSTOMIZATION)
        i += 1
    cluster = os.path.join(root, "cluster")
    subprocess.run([talos_gcp, "render", "--project", "demo-project", "--vip-alias-image",
                    "vip-alias:0.1.0", "--out", cluster], check=True)
    with open(os.path.join(cluster, "misconfig.yaml"), "w") as f:
        f.write(MISCONFIG)
    return objects + 10 + 2


def run_once(talos_gcp, corpus):
    """(wall seconds, peak RSS KiB, exit code, report)."""
    out = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    p = subprocess.Popen([talos_gcp, "doctor", "-o", "json", "-f", corpus], stdout=out,
                         stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    return wall, ru.ru_maxrss, p.returncode, json.loads(out.read())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--manifests", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", help="write the corpus here and keep it")
    args = ap.parse_args()
    talos_gcp = os.path.join(args.build, "src", "cli", "talos-gcp")
    if not os.access(talos_gcp, os.X_OK):
        sys.exit(f"{talos_gcp}: not built (meson setup {args.build} && ninja -C {args.build})")
    tmp = args.keep or tempfile.mkdtemp(prefix="doctor-bench-")
    try:
        corpus = os.path.join(tmp, "repo")
        t0 = time.perf_counter()
        objects = generate(corpus, talos_gcp, args.manifests)
        files = sum(len(fs) for _, _, fs in os.walk(corpus))
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(corpus) for f in fs)
        print(f"corpus: {objects} Kubernetes objects in {files} files, {size / 2**20:.1f} MiB "
              f"(generated in {time.perf_counter() - t0:.1f} s)")
        walls, rss = [], []
        for _ in range(args.runs):
            wall, maxrss, rc, report = run_once(talos_gcp, corpus)
            walls.append(wall)
            rss.append(maxrss)
        s = report["summary"]
        print(f"doctor: exit {rc}, {s['files']} files, {s['documents']} documents "
              f"({s['skipped_documents']} skipped), {s['errors']} errors, {s['warnings']} warnings")
        print(f"wall: median {statistics.median(walls):.3f} s, max {max(walls):.3f} s "
              f"over {args.runs} runs (target < 2 s)")
        print(f"peak RSS: max {max(rss) / 1024:.1f} MiB (target < 64 MiB)")
        print(f"command: talos-gcp doctor -o json -f {corpus}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
