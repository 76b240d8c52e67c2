#!/usr/bin/env python3
"""Builds an emulated Talos cluster in talos-gcp-emu through the real APIs.

The network, the subnetwork (with its `pods` secondary range) and the instances are
created with Compute v1 calls exactly as a client would make them against GCP
(instances.insert with `aliasIpRanges: [{subnetworkRangeName: pods, ipCidrRange: /24}]`,
the form of gcloud's `--aliases pods:/24`); the emulated kubelets then register their Nodes,
and the emulated CCM assigns podCIDRs according to the emulator's --ccm-allocator mode.

    emu_cluster.py --endpoint http://127.0.0.1:8080/compute/v1/ --kubeconfig KC --nodes 3

Stdlib only. Used by scripts/demo.sh and bench/verify.
"""
import argparse
import base64
import json
import os
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request

try:
    import yaml  # python3-yaml, installed by scripts/deps.sh
except ImportError:  # pragma: no cover
    yaml = None


class Api:
    def __init__(self, base, ctx=None, headers=None):
        self.base = base.rstrip("/") + "/"
        self.ctx = ctx
        self.headers = headers or {}
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx))

    def call(self, method, path, body=None, ok=(200,), content_type="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path.lstrip("/"), data=data, method=method)
        for k, v in self.headers.items():
            req.add_header(k, v)
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with self.opener.open(req, timeout=60) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        doc = json.loads(raw) if raw else None
        if status not in ok:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {raw[:300]!r}")
        return status, doc


class Compute:
    def __init__(self, endpoint, project):
        self.api = Api(endpoint)
        self.project = project

    def wait(self, op):
        """Waits for an Operation with POST .../wait until DONE; raises on its error."""
        scope = ""
        if op.get("zone"):
            scope = "zones/" + op["zone"].rsplit("/", 1)[1]
        elif op.get("region"):
            scope = "regions/" + op["region"].rsplit("/", 1)[1]
        else:
            scope = "global"
        while op.get("status") != "DONE":
            _, op = self.api.call("POST", f"projects/{self.project}/{scope}/operations/{op['name']}/wait")
        if op.get("error"):
            raise RuntimeError(f"operation {op['name']} failed: {json.dumps(op['error'])}")
        return op

    def insert(self, path, body, wait=True):
        _, op = self.api.call("POST", f"projects/{self.project}/{path}", body)
        return self.wait(op) if wait else op


def kube_api(kubeconfig):
    """An Api for the kubeconfig's current context (client certificate or token)."""
    with open(kubeconfig) as f:
        kc = yaml.safe_load(f)
    ctx_name = kc["current-context"]
    ctx = next(c["context"] for c in kc["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in kc["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in kc["users"] if u["name"] == ctx["user"])
    sslctx = ssl.create_default_context()
    tmp = tempfile.mkdtemp(prefix="emu-kube-")
    ca = os.path.join(tmp, "ca.crt")
    with open(ca, "wb") as f:
        f.write(base64.b64decode(cluster["certificate-authority-data"]))
    sslctx.load_verify_locations(ca)
    headers = {}
    if "client-certificate-data" in user:
        crt, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, base64.b64decode(user["client-key-data"]))
        os.close(fd)
        with open(crt, "wb") as f:
            f.write(base64.b64decode(user["client-certificate-data"]))
        sslctx.load_cert_chain(crt, key)
    elif "token" in user:
        headers["Authorization"] = "Bearer " + user["token"]
    return Api(cluster["server"], sslctx, headers)


def seed(args):
    c = Compute(args.endpoint, args.project)
    region = args.zone.rsplit("-", 1)[0]
    net = f"projects/{args.project}/global/networks/{args.network}"
    sub = f"projects/{args.project}/regions/{region}/subnetworks/{args.subnet}"
    c.insert("global/networks", {"name": args.network, "autoCreateSubnetworks": False,
                                 "mtu": 1460})
    c.insert(f"regions/{region}/subnetworks", {
        "name": args.subnet, "network": net, "ipCidrRange": args.nodes_cidr,
        "secondaryIpRanges": [{"rangeName": "pods", "ipCidrRange": args.pods_cidr},
                              {"rangeName": "services", "ipCidrRange": args.services_cidr}]})
    # The Talos image (an instance naming a missing image is refused, as on GCP).
    c.insert("global/images", {"name": "talos-v1-8", "family": "talos", "rawDisk": {
        "source": "https://storage.googleapis.com/talos-images/gcp-amd64.raw.tar.gz"}})
    ops = []
    # Instances round-robin over the zones (one subnetwork: the zones share the region).
    zones = getattr(args, "zones", None) or [args.zone]
    for i in range(args.nodes):
        zone = zones[i % len(zones)]
        role = "cp" if i < args.control_planes else "worker"
        name = f"{args.prefix}{role}-{i if role == 'cp' else i - args.control_planes}"
        body = {
            "name": name,
            "machineType": f"zones/{zone}/machineTypes/e2-standard-4",
            "disks": [{"boot": True, "autoDelete": True, "initializeParams": {
                "sourceImage": f"projects/{args.project}/global/images/talos-v1-8",
                "diskSizeGb": "20"}}],
            "networkInterfaces": [{"subnetwork": sub, "aliasIpRanges": [
                {"subnetworkRangeName": "pods", "ipCidrRange": "/24"}]}],
            "metadata": {"items": [{"key": "user-data", "value": f"# Talos {role} config\n"}]},
            "labels": {"talos-role": "controlplane" if role == "cp" else "worker"},
        }
        ops.append(c.insert(f"zones/{zone}/instances", body, wait=False))
    for op in ops:
        c.wait(op)
    print(f"created {args.nodes} instances in {', '.join(zones)}", file=sys.stderr)
    if args.kubeconfig:
        wait_nodes(args.kubeconfig, args.nodes, args.timeout, args.want_podcidr)


def wait_nodes(kubeconfig, n, timeout, want_podcidr):
    """Waits until n Nodes are registered (and, if asked, have a podCIDR)."""
    k = kube_api(kubeconfig)
    deadline = time.monotonic() + timeout
    while True:
        _, lst = k.call("GET", "api/v1/nodes")
        items = lst.get("items", [])
        ready = [i for i in items if not want_podcidr or i.get("spec", {}).get("podCIDR")]
        if len(ready) >= n:
            print(f"{len(ready)} Nodes registered", file=sys.stderr)
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(ready)} of {n} Nodes ready after {timeout}s")
        time.sleep(0.1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--endpoint", required=True, help="Compute endpoint, e.g. http://127.0.0.1:8080/compute/v1/")
    p.add_argument("--kubeconfig", help="wait for the Nodes through this kubeconfig")
    p.add_argument("--project", default="demo-project")
    p.add_argument("--zone", default="europe-west1-b")
    p.add_argument("--zones", type=lambda v: v.split(","), default=None,
                   help="comma-separated zones of one region, instances round-robin (default: --zone)")
    p.add_argument("--network", default="talos")
    p.add_argument("--subnet", default="talos-nodes")
    p.add_argument("--nodes-cidr", default="10.0.0.0/16")
    p.add_argument("--pods-cidr", default="172.20.0.0/14")
    p.add_argument("--services-cidr", default="172.24.0.0/16")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--control-planes", type=int, default=1)
    p.add_argument("--prefix", default="talos-")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--want-podcidr", action="store_true", help="also wait for every Node's podCIDR")
    args = p.parse_args()
    try:
        seed(args)
    except Exception as e:  # one line, non-zero exit
        print(f"emu_cluster.py: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
