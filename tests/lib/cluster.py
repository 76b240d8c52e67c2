"""Scenario building for tests: an emulated Talos cluster made through the real APIs.

Builds on scripts/emu_cluster.py (the same code the demo and the benchmark use) and
tests/lib/emu.py. Instances are inserted with instances.insert, Nodes are created or
patched through the Kubernetes API, exactly as any client would.
"""
import json
import os
import subprocess
import sys
import time

from emu import SOURCE_ROOT, TALOS_GCP, Emu  # noqa: F401 (re-exported)

sys.path.insert(0, os.path.join(SOURCE_ROOT, "scripts"))
import emu_cluster  # noqa: E402

ZONE = "europe-west1-b"
REGION = "europe-west1"
PODS = "172.20.0.0/16"


class Cluster:
    def __init__(self, emu, project="demo-project"):
        self.emu = emu
        self.project = project
        self.compute = emu_cluster.Compute(emu.compute_endpoint, project)
        self.kube = emu_cluster.kube_api(emu.kubeconfig) if emu.kubeconfig else None
        self.subnet = f"projects/{project}/regions/{REGION}/subnetworks/nodes"

    def network(self, pods=PODS):
        self.compute.insert("global/networks", {"name": "talos", "autoCreateSubnetworks": False})
        self.compute.insert(f"regions/{REGION}/subnetworks", {
            "name": "nodes", "network": f"projects/{self.project}/global/networks/talos",
            "ipCidrRange": "10.0.0.0/16",
            "secondaryIpRanges": [{"rangeName": "pods", "ipCidrRange": pods}]})
        # The image instances boot from (a missing image is refused, as on GCP).
        self.compute.insert("global/images", {"name": "talos", "rawDisk": {
            "source": "https://storage.googleapis.com/talos-images/gcp-amd64.raw.tar.gz"}})
        return self

    def instance(self, name, alias="/24", talos=True, zone=ZONE, wait=True):
        """alias: "/24" (GCP picks), a CIDR, or None for no alias range."""
        nic = {"subnetwork": self.subnet}
        if alias:
            nic["aliasIpRanges"] = [{"subnetworkRangeName": "pods", "ipCidrRange": alias}]
        body = {
            "name": name,
            "machineType": f"zones/{zone}/machineTypes/e2-standard-2",
            "disks": [{"boot": True, "autoDelete": True, "initializeParams": {
                "sourceImage": f"projects/{self.project}/global/images/talos"}}],
            "networkInterfaces": [nic],
        }
        if talos:
            body["metadata"] = {"items": [{"key": "user-data", "value": "# talos\n"}]}
        return self.compute.insert(f"zones/{zone}/instances", body, wait=wait)

    def get_instance(self, name, zone=ZONE):
        _, inst = self.compute.api.call("GET", f"projects/{self.project}/zones/{zone}/instances/{name}")
        return inst

    def alias(self, name, zone=ZONE):
        ranges = self.get_instance(name, zone)["networkInterfaces"][0].get("aliasIpRanges", [])
        return ranges[0]["ipCidrRange"] if ranges else None

    def set_aliases(self, name, ranges, zone=ZONE):
        """updateNetworkInterface with the current fingerprint (ranges: list of CIDRs)."""
        nic = self.get_instance(name, zone)["networkInterfaces"][0]
        body = {"fingerprint": nic["fingerprint"],
                "aliasIpRanges": [{"subnetworkRangeName": "pods", "ipCidrRange": r} for r in ranges]}
        _, op = self.compute.api.call(
            "PATCH", f"projects/{self.project}/zones/{zone}/instances/{name}/updateNetworkInterface?networkInterface=nic0", body)
        return self.compute.wait(op)

    def move_alias(self, name, cidr, zone=ZONE):
        """Clear, then set: GCP refuses replacing a range in one request."""
        self.set_aliases(name, [], zone)
        self.set_aliases(name, [cidr], zone)

    def node(self, name):
        try:
            _, n = self.kube.call("GET", f"api/v1/nodes/{name}")
            return n
        except RuntimeError as e:
            if "HTTP 404" in str(e):
                return None
            raise

    def wait_node(self, name, podcidr=None, timeout=20, pred=None):
        """Waits for the Node (and its podCIDR when podcidr is True or a value)."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.node(name)
            pc = n and n.get("spec", {}).get("podCIDR")
            if n and (podcidr is None or (podcidr is True and pc) or pc == podcidr) and (
                    pred is None or pred(n)):
                return n
            if time.monotonic() > deadline:
                raise AssertionError(f"Node {name} not ready (podCIDR {pc!r}, want {podcidr!r})")
            time.sleep(0.05)

    def set_podcidr(self, name, cidr):
        """podCIDR may go from "" to a value once; Kubernetes refuses any later change."""
        _, n = self.kube.call("PATCH", f"api/v1/nodes/{name}",
                              {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}},
                              content_type="application/merge-patch+json")
        return n

    def create_node(self, name, provider_id, podcidr=None):
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                "spec": {"providerID": provider_id}}
        if podcidr:
            body["spec"]["podCIDR"] = podcidr
            body["spec"]["podCIDRs"] = [podcidr]
        _, n = self.kube.call("POST", "api/v1/nodes", body, ok=(201, 200))
        return n

    def provider_id(self, name, zone=ZONE):
        return f"gce://{self.project}/{zone}/{name}"


def cli_env(emu, env=None):
    """The environment the CLI runs in against the emulator."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("GOOGLE_", "CLOUDSDK_", "GCE_", "KUBE", "XDG_STATE_HOME"))}
    e.update({
        "HOME": emu.tmpdir,
        "TALOS_GCP_COMPUTE_ENDPOINT": emu.compute_endpoint,
        "KUBECONFIG": emu.kubeconfig or "",
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_CORE_PROJECT": emu.project,
        "NO_GCE_CHECK": "true",
    })
    e.update(env or {})
    return e


def check_sanitizers(args, stderr):
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        if marker in stderr:
            raise AssertionError(f"sanitizer report from talos-gcp {' '.join(args)}:\n{stderr}")


def talos_gcp(emu, *args, env=None, timeout=120, stdin=subprocess.DEVNULL):
    """Runs the CLI against the emulator; returns (exit code, stdout, stderr). stdin is not
    a terminal unless a test passes one (repair --apply asks on a terminal)."""
    p = subprocess.run([TALOS_GCP, *args], capture_output=True, text=True, env=cli_env(emu, env),
                       timeout=timeout, stdin=stdin)
    check_sanitizers(args, p.stderr)
    return p.returncode, p.stdout, p.stderr


def talos_gcp_start(emu, *args, env=None, stdin=subprocess.DEVNULL):
    """Starts the CLI in the background (Popen, text pipes): for tests that act meanwhile."""
    return subprocess.Popen([TALOS_GCP, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env(emu, env), stdin=stdin)
