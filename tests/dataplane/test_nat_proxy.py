"""Cloud NAT and the global TCP proxy load balancer, by packets from and to PREFIX-internet.

Both need the Compute resources of the provisioner issue (routers with NAT gateways, target
TCP proxies); until the emulator serves them the tests say so and skip.
"""
import time
import unittest

from dp import DataplaneCase, Server, connect, reaches

REGION, ZONE = "europe-west1", "europe-west1-b"
HC_RANGES = ["35.191.0.0/16", "130.211.0.0/22"]
WORLD = "198.51.100.7"


class Base(DataplaneCase):
    def setUp(self):
        super().setUp()
        self.c.network()
        self.p = f"projects/{self.emu.project}"

    def need(self, collection, scope="global"):
        status, _ = self.raw("GET", f"{self.p}/{scope}/{collection}")
        if status == 404:
            self.skipTest(f"{collection} not emulated in this build (provisioner issue)")

    def raw(self, method, path, body=None):
        return self.emu.compute(method, path, body)

    def wait_health(self, service, want, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            _, body = self.emu.control("GET", "dataplane/health")
            got = {p["instance"].rsplit("/", 1)[1]: p["healthState"] for p in body["probes"]
                   if p["service"].endswith("/backendServices/" + service)}
            if got == want:
                return
            self.assertLess(time.monotonic(), deadline, f"health {got}, want {want}")
            time.sleep(0.1)


class CloudNatTest(Base):
    def test_cloud_nat_lets_private_instances_out_and_nothing_in(self):
        self.need("routers", f"regions/{REGION}")
        self.instance("priv-0")
        priv = self.wait_instance("priv-0", lambda i: i.get("podCIDR"))
        inet = self.dataplane()["namespaces"]["internet"]
        world = Server(inet, 80, addr=WORLD, name="world")
        self.addCleanup(world.close)
        self.assertIsNone(reaches(self.ns("priv-0"), WORLD, 80, timeout=0.5))
        self.c.compute.insert(f"regions/{REGION}/addresses", {"name": "nat-ip"})
        _, addr = self.raw("GET", f"{self.p}/regions/{REGION}/addresses/nat-ip")
        self.c.compute.insert(f"regions/{REGION}/routers", {
            "name": "nat", "network": f"{self.p}/global/networks/talos",
            "nats": [{"name": "nat", "natIpAllocateOption": "MANUAL_ONLY",
                      "natIps": [addr["selfLink"]],
                      "sourceSubnetworkIpRangesToNat": "ALL_SUBNETWORKS_ALL_IP_RANGES"}]})
        self.wait_reach(self.ns("priv-0"), WORLD, 80, what="out through Cloud NAT")
        self.assertEqual(world.accepted[-1][0], addr["address"])
        # Pods' addresses (the secondary range) are translated too.
        pod = priv["podCIDR"].rsplit(".", 1)[0] + ".9"
        self.assertEqual(connect(self.ns("priv-0"), WORLD, 80, src=pod), "world")
        # Nothing comes in through the NAT address unasked.
        self.server("priv-0", 80)
        self.assertIsNone(reaches(inet, addr["address"], 80, timeout=0.5))


class TcpProxyTest(Base):
    def test_tcp_proxy_to_the_named_port_of_healthy_backends(self):
        self.need("targetTcpProxies")
        self.firewall("allow-proxy", [{"IPProtocol": "tcp", "ports": ["32080"]}], HC_RANGES)
        servers = {}
        for n in ("w-0", "w-1"):
            self.instance(n)
            servers[n] = self.server(n, 32080)
        self.c.compute.insert(f"zones/{ZONE}/instanceGroups", {
            "name": "workers", "network": f"{self.p}/global/networks/talos"})
        _, op = self.raw("POST", f"{self.p}/zones/{ZONE}/instanceGroups/workers/addInstances",
                         {"instances": [{"instance": f"{self.p}/zones/{ZONE}/instances/{n}"}
                                        for n in servers]})
        self.c.compute.wait(op)
        _, op = self.raw("POST", f"{self.p}/zones/{ZONE}/instanceGroups/workers/setNamedPorts",
                         {"namedPorts": [{"name": "http", "port": 32080}]})
        self.c.compute.wait(op)
        self.c.compute.insert("global/healthChecks", {
            "name": "workers", "type": "TCP",
            "tcpHealthCheck": {"portSpecification": "USE_SERVING_PORT"},
            "checkIntervalSec": 1, "timeoutSec": 1, "healthyThreshold": 1,
            "unhealthyThreshold": 2})
        self.c.compute.insert("global/backendServices", {
            "name": "workers", "protocol": "TCP", "loadBalancingScheme": "EXTERNAL",
            "portName": "http", "timeoutSec": 30,
            "healthChecks": [f"{self.p}/global/healthChecks/workers"],
            "backends": [{"group": f"{self.p}/zones/{ZONE}/instanceGroups/workers"}]})
        self.c.compute.insert("global/targetTcpProxies", {
            "name": "workers", "service": f"{self.p}/global/backendServices/workers"})
        self.c.compute.insert("global/addresses", {"name": "ingress"})
        _, addr = self.raw("GET", f"{self.p}/global/addresses/ingress")
        self.c.compute.insert("global/forwardingRules", {
            "name": "ingress", "loadBalancingScheme": "EXTERNAL", "IPProtocol": "TCP",
            "IPAddress": addr["address"], "portRange": "80",
            "target": f"{self.p}/global/targetTcpProxies/workers"})
        self.wait_health("workers", {"w-0": "HEALTHY", "w-1": "HEALTHY"})
        inet = self.dataplane()["namespaces"]["internet"]
        import subprocess, glob
        time.sleep(1)
        print(subprocess.run("cat /run/talos-gcp-emu/%s/tcp-proxy.*; ip -n %s addr show lo; ip -n %s rule" % (self.prefix, self.ns("vpc"), self.ns("vpc")), shell=True, capture_output=True, text=True).stdout)
        self.wait_reach(inet, addr["address"], 80, what="through the TCP proxy")
        seen = {connect(inet, addr["address"], 80) for _ in range(20)}
        self.assertEqual(seen, {"w-0", "w-1"})
        # The backends see the proxy, from the proxy ranges, on their named port (besides
        # the health checks' probes).
        peers = {a for s in servers.values() for a, _ in s.accepted}
        proxied = peers - {"35.191.0.1", "130.211.0.1"}
        self.assertTrue(proxied and all(p.startswith("35.191.") for p in proxied), peers)
        self.assertNotIn(self.dataplane()["internetClient"], peers)
        # One backend down: the proxy sends only to the other once its health check says so.
        servers["w-1"].close()
        self.wait_health("workers", {"w-0": "HEALTHY", "w-1": "UNHEALTHY"})
        deadline = time.monotonic() + 5
        while True:  # the proxy is reloaded with the healthy backends only
            got = [reaches(inet, addr["address"], 80) for _ in range(10)]
            if got == ["w-0"] * 10:
                break
            self.assertLess(time.monotonic(), deadline, got)
        # The health-check firewall rule removed behind the cluster's back: nothing passes.
        self.delete_firewall("allow-proxy")
        self.wait_health("workers", {"w-0": "UNHEALTHY", "w-1": "UNHEALTHY"})


if __name__ == "__main__":
    unittest.main()
