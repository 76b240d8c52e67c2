"""Helpers for the plan/up/down tests: cluster specs, running talos-gcp against an Emu, and
reading what the project holds through the Compute API (as any client would).

    p = Prov(emu, tmpdir)
    p.write(p.spec(workers={"count": 1}))
    r = p.up()                       # CompletedProcess
    inv = p.inventory()              # {"global/networks/demo": {...}, ...}
"""
import copy
import json
import os
import shutil
import subprocess

from emu import TALOS_GCP

# Aggregated lists for regional and zonal collections, plain lists for the global ones.
AGGREGATED = ("subnetworks", "routers", "addresses", "instances", "healthChecks",
              "instanceGroups", "backendServices", "targetTcpProxies", "forwardingRules")
GLOBAL = ("networks", "firewalls", "images")
MARKER = "talos-gcp-cluster"
READ_ONLY_POSTS = ("/wait", "/listInstances", "/getHealth")

CP_CONFIG = "version: v1alpha1\nmachine:\n  type: controlplane\n"
WORKER_CONFIG = "version: v1alpha1\nmachine:\n  type: worker\n"

BASE_SPEC = {
    "name": "demo",
    "project": "demo-project",
    "region": "us-central1",
    "zones": ["us-central1-a", "us-central1-b"],
    "network": {"nodeCidr": "10.0.0.0/24", "podCidr": "172.20.0.0/16",
                "serviceCidr": "10.96.0.0/12", "vip": "10.0.0.2", "mtu": 1460},
    "image": {"sourceUri": "gs://talos-images/gcp-amd64.raw.tar.gz"},
    "controlPlane": {"count": 3, "machineType": "e2-standard-4", "userData": "cp.yaml",
                     "external": "tcp-proxy"},
    "workers": {"count": 2, "machineType": "e2-standard-4", "userData": "worker.yaml"},
    "ingress": {"type": "tcp-proxy", "ports": [80], "targetPort": 30080},
}


GCLOUD = shutil.which("gcloud")


def gcloud_compute(env, *args):
    """gcloud compute ARGS with env (from test_gcloud_compute.gcloud_env): (rc, stdout, stderr)."""
    r = subprocess.run([GCLOUD, "compute", *args], env=env, capture_output=True, text=True,
                       timeout=120)
    return r.returncode, r.stdout, r.stderr


def merged(base, changes):
    """base with changes applied recursively (None removes a key)."""
    out = copy.deepcopy(base)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merged(out[k], v)
        else:
            out[k] = v
    return out


def mutations(stats):
    """Mutating Compute requests in /_emu/stats (reads, waits and getHealth excluded)."""
    n = 0
    for key, count in stats.get("requests", {}).items():
        method, path = key.split(" ", 1)
        if not path.startswith("/compute/v1/") or method == "GET":
            continue
        if method == "POST" and path.endswith(READ_ONLY_POSTS):
            continue
        n += count
    return n


class Prov:
    def __init__(self, emu, tmpdir):
        self.emu, self.tmpdir = emu, tmpdir
        self.path = os.path.join(tmpdir, "cluster.yaml")
        for name, text in (("cp.yaml", CP_CONFIG), ("worker.yaml", WORKER_CONFIG)):
            with open(os.path.join(tmpdir, name), "w") as f:
                f.write(text)

    @staticmethod
    def spec(**changes):
        return merged(BASE_SPEC, changes)

    def write(self, spec, name="cluster.yaml"):
        """A spec dict (written as JSON, which is YAML) or YAML text; returns the path."""
        path = os.path.join(self.tmpdir, name)
        with open(path, "w") as f:
            f.write(spec if isinstance(spec, str) else json.dumps(spec, indent=2))
        if name == "cluster.yaml":
            self.path = path
        return path

    def env(self):
        env = dict(os.environ)
        env.update({"CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
                    "TALOS_GCP_COMPUTE_ENDPOINT": self.emu.compute_endpoint})
        for k in ("CLOUDSDK_CORE_PROJECT", "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS"):
            env.pop(k, None)
        return env

    def run(self, *args, path=None, timeout=120):
        return subprocess.run([TALOS_GCP, *args, "-f", path or self.path], capture_output=True,
                              text=True, timeout=timeout, env=self.env())

    def popen(self, *args, path=None):
        return subprocess.Popen([TALOS_GCP, *args, "-f", path or self.path], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env())

    def up(self, *args, **kw):
        return self.run("up", *args, **kw)

    def down(self, *args, **kw):
        return self.run("down", *args, **kw)

    def plan(self, *args, **kw):
        return self.run("plan", *args, **kw)

    def plan_json(self, *args, **kw):
        r = self.run("plan", "-o", "json", *args, **kw)
        if r.returncode not in (0, 1):
            raise AssertionError(f"plan exited {r.returncode}: {r.stderr}")
        return r.returncode, json.loads(r.stdout)

    # --- the project, read through the Compute API ---
    def inventory(self):
        """Every resource of the project: {"SCOPE/COLLECTION/NAME": resource}."""
        out = {}
        p = f"projects/{self.emu.project}"
        for coll in AGGREGATED:
            st, body = self.emu.compute("GET", f"{p}/aggregated/{coll}")
            assert st == 200, (coll, st, body)
            for scope, v in body.get("items", {}).items():
                for r in v.get(coll, []):
                    key = f"{scope}/{coll}/{r['name']}"
                    assert key not in out, f"listed twice: {key}"
                    out[key] = r
        for coll in GLOBAL:
            st, body = self.emu.compute("GET", f"{p}/global/{coll}")
            assert st == 200, (coll, st, body)
            for r in body.get("items", []):
                out[f"global/{coll}/{r['name']}"] = r
        return out

    @staticmethod
    def owned(inv, cluster="demo"):
        def mine(r):
            if r.get("labels", {}).get(MARKER) == cluster:
                return True
            return f"{MARKER}={cluster}" in r.get("description", "")
        return {k: r for k, r in inv.items() if mine(r)}

    def members(self, key):
        """The instance keys of an instance group."""
        st, body = self.emu.compute("POST", f"projects/{self.emu.project}/{key}/listInstances", {})
        assert st == 200, body
        return sorted("zones/" + i["instance"].split("/zones/", 1)[1] for i in body.get("items", []))
