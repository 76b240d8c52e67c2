"""The control plane behind an internal passthrough load balancer, by packets.

The cluster as the design note (§4) and DESIGN §3 lay it out: two control-plane nodes in an
unmanaged instance group, a regional INTERNAL backend service with an HTTPS health check on
6443 /readyz, a forwarding rule at the reserved address 10.0.0.2, firewall rules for the
nodes and for Google's health-check ranges. The emulator serves the Kubernetes API on 6443 in
each control-plane node and runs KubePrism (HAProxy) on 127.0.0.1:7445 in every node; the
tests run the real vip-alias inside the control-plane nodes.
"""
import http.client
import os
import socket
import ssl
import time
import unittest

from dp import DataplaneCase, Server, connect, in_netns, ip, reaches

HERE = os.path.dirname(os.path.abspath(__file__))
import sys  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "netns"))
from agent import Agent  # noqa: E402

REGION, ZONE = "europe-west1", "europe-west1-b"
VIP = "10.0.0.2"
NODES = {"cp-0": "10.0.0.10", "cp-1": "10.0.0.11", "w-0": "10.0.0.20"}
HC_RANGES = ["35.191.0.0/16", "130.211.0.0/22"]


class ControlPlaneCase(DataplaneCase):
    hc = {"type": "HTTPS", "httpsHealthCheck": {"port": 6443, "requestPath": "/readyz"}}

    def setUp(self):
        super().setUp()
        self.c.network()
        p = f"projects/{self.emu.project}"
        # Shared: the tests put a second rule (another port) on the same address.
        self.c.compute.insert(f"regions/{REGION}/addresses", {
            "name": "cp-vip", "addressType": "INTERNAL", "address": VIP,
            "purpose": "SHARED_LOADBALANCER_VIP", "subnetwork": self.c.subnet})
        self.allow_internal()
        self.firewall("allow-health-checks", [{"IPProtocol": "tcp", "ports": ["6443"]}],
                      HC_RANGES)
        for name, addr in NODES.items():
            self.instance(name, networkInterfaces=[{
                "subnetwork": self.c.subnet, "networkIP": addr,
                "aliasIpRanges": [{"subnetworkRangeName": "pods", "ipCidrRange": "/24"}]}])
        self.c.compute.insert(f"zones/{ZONE}/instanceGroups", {
            "name": "cp", "network": f"{p}/global/networks/talos"})
        _, op = self.c.compute.api.call(
            "POST", f"{p}/zones/{ZONE}/instanceGroups/cp/addInstances",
            {"instances": [{"instance": f"{p}/zones/{ZONE}/instances/{n}"}
                           for n in ("cp-0", "cp-1")]})
        self.c.compute.wait(op)
        self.c.compute.insert("global/healthChecks", dict(
            name="cp-hc", checkIntervalSec=1, timeoutSec=1, healthyThreshold=1,
            unhealthyThreshold=2, **self.hc))
        self.c.compute.insert(f"regions/{REGION}/backendServices", {
            "name": "cp", "loadBalancingScheme": "INTERNAL", "protocol": "TCP",
            "healthChecks": [f"{p}/global/healthChecks/cp-hc"],
            "backends": [{"group": f"{p}/zones/{ZONE}/instanceGroups/cp"}]})
        self.c.compute.insert(f"regions/{REGION}/forwardingRules", {
            "name": "cp", "loadBalancingScheme": "INTERNAL", "IPAddress": VIP,
            "IPProtocol": "TCP", "ports": ["6443"], "subnetwork": self.c.subnet,
            "backendService": f"{p}/regions/{REGION}/backendServices/cp"})

    # -- helpers --
    def health(self):
        """{instance name: healthState} as the data plane's probes see it."""
        _, body = self.emu.control("GET", "dataplane/health")
        return {p["instance"].rsplit("/", 1)[1]: p["healthState"] for p in body["probes"]
                if p["service"].endswith("/backendServices/cp")}

    def wait_health(self, want, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            got = self.health()
            if got == want:
                return
            if time.monotonic() > deadline:
                self.fail(f"health {got}, want {want} (after {timeout}s)")
            time.sleep(0.1)

    def vip_alias(self, node, *args):
        a = Agent(self.ns(node), "--vip", VIP + "/32", "--metrics-addr", "off", *args)
        self.addCleanup(a.kill)
        a.wait_ready()
        return a

    def tls(self):
        ca, _, _ = self.emu.kube_files()
        return ssl.create_default_context(cafile=ca)

    def api_get(self, node, host, port, path="/readyz", server_hostname=None, timeout=2.0):
        """An HTTPS request from inside node to host:port, the certificate verified."""
        sock = in_netns(self.ns(node), lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
            tsock = self.tls().wrap_socket(sock, server_hostname=server_hostname or host)
        except OSError:
            sock.close()
            raise
        conn = http.client.HTTPSConnection(host, port, timeout=timeout)
        conn.sock = tsock
        try:
            headers = {"Authorization": "Bearer " + self.emu.kube_token()}
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()

    def api_via_vip(self, node, timeout=2.0):
        try:
            return self.api_get(node, VIP, 6443, server_hostname="kubernetes.default.svc",
                                timeout=timeout)[0]
        except OSError:
            return None


class VipTest(ControlPlaneCase):
    def test_without_vip_alias_no_node_reaches_the_api_through_the_vip(self):
        """No guest agent on Talos: the ILB's packets (destination 10.0.0.2) are dropped."""
        self.wait_instance("cp-0", lambda i: i["apiServer"])
        # The API server runs and answers on the node's own address.
        self.assertEqual(self.api_get("w-0", NODES["cp-0"], 6443,
                                      server_hostname="kubernetes.default.svc")[0], 200)
        self.wait_health({"cp-0": "UNHEALTHY", "cp-1": "UNHEALTHY"})
        self.assertIsNone(self.api_via_vip("w-0", timeout=1.0))
        self.assertIsNone(self.api_via_vip("cp-0", timeout=1.0))

    def check_both_modes(self, *args):
        for node in ("cp-0", "cp-1"):
            self.vip_alias(node, *args)
        self.wait_health({"cp-0": "HEALTHY", "cp-1": "HEALTHY"})
        # A worker reaches the API through the VIP, and a control plane through its own.
        for node in ("w-0", "cp-0", "cp-1"):
            self.assertEqual(self.api_via_vip(node), 200, node)
        _, body = self.api_get("w-0", VIP, 6443, "/api/v1/nodes",
                               server_hostname="kubernetes.default.svc")
        self.assertIn('"cp-0"', body)

    def test_with_vip_alias_address_mode(self):
        """vip-alias puts 10.0.0.2 on dummy0 (a veth here: this kernel has no dummy)."""
        self.check_both_modes("--link-kind", "veth")

    def test_with_vip_alias_local_route_mode(self):
        """The guest agent's way: `local 10.0.0.2 dev eth0 table local proto 66`."""
        self.check_both_modes("--mode", "local-route", "--interface", "eth0")


class HairpinTest(ControlPlaneCase):
    hc = {"type": "TCP", "tcpHealthCheck": {"port": 7000}}

    def test_a_backend_gets_its_own_packets_back_healthy_or_not(self):
        servers = {n: self.server(n, 7000) for n in ("cp-0", "cp-1")}
        self.firewall("allow-hc-7000", [{"IPProtocol": "tcp", "ports": ["7000"]}], HC_RANGES)
        self.c.compute.insert(f"regions/{REGION}/forwardingRules", {
            "name": "cp-7000", "loadBalancingScheme": "INTERNAL", "IPAddress": VIP,
            "IPProtocol": "TCP", "ports": ["7000"], "subnetwork": self.c.subnet,
            "backendService": f"projects/{self.emu.project}/regions/{REGION}/backendServices/cp"})
        # Only cp-1 holds the VIP: only it passes the health check.
        self.vip_alias("cp-1", "--mode", "local-route", "--interface", "eth0")
        self.wait_health({"cp-0": "UNHEALTHY", "cp-1": "HEALTHY"})
        # A worker's connections all go to the healthy backend, destination preserved.
        for _ in range(10):
            self.assertEqual(connect(self.ns("w-0"), VIP, 7000), "cp-1")
        self.assertEqual({local for _, local in servers["cp-1"].accepted}, {VIP})
        # cp-0's packets to the VIP come back to cp-0, which drops them (no VIP there),
        # although cp-1 would answer: the hairpin.
        cap = self.capture("cp-0")
        self.assertIsNone(reaches(self.ns("cp-0"), VIP, 7000, timeout=1.0))
        self.assertTrue([p for p in cap.ipv4_to(VIP) if p[0] == NODES["cp-0"]],
                        "cp-0's own packet should come back to cp-0")
        self.assertEqual(servers["cp-0"].accepted, [])
        # With the VIP local, cp-0 answers itself, even while unhealthy for the balancer.
        ip(self.ns("cp-0"), "route", "add", "local", VIP, "dev", "eth0", "table", "local")
        for _ in range(5):
            self.assertEqual(connect(self.ns("cp-0"), VIP, 7000), "cp-0")

    def test_traffic_follows_health(self):
        self.server("cp-0", 7000)
        srv1 = self.server("cp-1", 7000)
        self.firewall("allow-hc-7000", [{"IPProtocol": "tcp", "ports": ["7000"]}], HC_RANGES)
        self.c.compute.insert(f"regions/{REGION}/forwardingRules", {
            "name": "cp-7000", "loadBalancingScheme": "INTERNAL", "IPAddress": VIP,
            "IPProtocol": "TCP", "ports": ["7000"], "subnetwork": self.c.subnet,
            "backendService": f"projects/{self.emu.project}/regions/{REGION}/backendServices/cp"})
        for node in ("cp-0", "cp-1"):
            self.vip_alias(node, "--mode", "local-route", "--interface", "eth0")
        self.wait_health({"cp-0": "HEALTHY", "cp-1": "HEALTHY"})
        seen = {connect(self.ns("w-0"), VIP, 7000) for _ in range(40)}
        self.assertEqual(seen, {"cp-0", "cp-1"}, "5-tuple hashing spreads connections")
        srv1.close()
        self.wait_health({"cp-0": "HEALTHY", "cp-1": "UNHEALTHY"})
        for _ in range(20):
            self.assertEqual(connect(self.ns("w-0"), VIP, 7000), "cp-0")
        # A firewall rule removed behind the cluster's back: every probe fails.
        self.delete_firewall("allow-hc-7000")
        self.wait_health({"cp-0": "UNHEALTHY", "cp-1": "UNHEALTHY"})


class ApiServerDownTest(ControlPlaneCase):
    def kubeprism(self, node):
        try:
            return self.api_get(node, "127.0.0.1", 7445, timeout=2.0)[0]
        except OSError as e:
            return repr(e)

    def test_kubeprism_keeps_working_and_the_ilb_drops_the_node(self):
        for node in ("cp-0", "cp-1"):
            self.vip_alias(node, "--link-kind", "veth")
        self.wait_health({"cp-0": "HEALTHY", "cp-1": "HEALTHY"})
        self.wait_instance("w-0", lambda i: i["kubePrism"])
        deadline = time.monotonic() + 10
        while self.kubeprism("w-0") != 200:
            self.assertLess(time.monotonic(), deadline, "KubePrism never answered")
            time.sleep(0.1)
        status, body = self.emu.control("POST", "dataplane/apiserver",
                                        {"instance": "cp-1", "running": False})
        self.assertEqual((status, body["running"]), (200, False))
        # Its API port is closed now (the VIP is still local on cp-1).
        self.assertIsNone(reaches(self.ns("w-0"), NODES["cp-1"], 6443, timeout=1.0))
        # KubePrism clients on every node keep working, from the first request on.
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            for node in ("w-0", "cp-0", "cp-1"):
                self.assertEqual(self.kubeprism(node), 200, node)
        # The ILB stops sending to cp-1 once the health check says so.
        self.wait_health({"cp-0": "HEALTHY", "cp-1": "UNHEALTHY"})
        for _ in range(20):
            self.assertEqual(self.api_via_vip("w-0"), 200)
        self.emu.control("POST", "dataplane/apiserver", {"instance": "cp-1", "running": True})
        self.wait_health({"cp-0": "HEALTHY", "cp-1": "HEALTHY"})


if __name__ == "__main__":
    unittest.main()
