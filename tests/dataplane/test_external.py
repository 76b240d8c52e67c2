"""The way in and out: external addresses (one-to-one NAT) and the external passthrough
load balancer (a regional EXTERNAL backend service), from and to PREFIX-internet."""
import time
import unittest

from dp import DataplaneCase, Server, connect, ip, reaches

REGION, ZONE = "europe-west1", "europe-west1-b"
HC_RANGES = ["35.191.0.0/16", "130.211.0.0/22"]
WORLD = "198.51.100.7"  # a host on the internet (PREFIX-internet answers for 198.51.100.0/24)


class ExternalAddressTest(DataplaneCase):
    def test_one_to_one_nat_both_ways_and_no_way_out_without_it(self):
        self.c.network()
        self.firewall("allow-web", [{"IPProtocol": "tcp", "ports": ["80"]}], ["0.0.0.0/0"])
        self.instance("pub-0", networkInterfaces=[{
            "subnetwork": self.c.subnet,
            "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "name": "External NAT"}]}])
        priv = self.instance("priv-0")
        pub = self.wait_instance("pub-0")
        nat_ip = self.c.get_instance("pub-0")["networkInterfaces"][0]["accessConfigs"][0]["natIP"]
        inet = self.dataplane()["namespaces"]["internet"]
        client = self.dataplane()["internetClient"]
        srv = self.server("pub-0", 80)
        # In: the external address reaches the instance, the client's address preserved.
        self.wait_reach(inet, nat_ip, 80)
        self.assertEqual(srv.accepted[-1], (client, pub["ip"]))
        # Out: the world sees the external address.
        world = Server(inet, 80, addr=WORLD, name="world")
        self.addCleanup(world.close)
        self.assertEqual(connect(self.ns("pub-0"), WORLD, 80), "world")
        self.assertEqual(world.accepted[-1][0], nat_ip)
        # Without an external address (and without Cloud NAT) there is no way out.
        self.assertIsNone(reaches(self.ns("priv-0"), WORLD, 80, timeout=1.0))
        self.assertNotIn(priv["ip"], [a for a, _ in world.accepted])


class ExternalPassthroughTest(DataplaneCase):
    def test_external_passthrough_delivers_to_healthy_backends_with_the_address_local(self):
        self.c.network()
        p = f"projects/{self.emu.project}"
        self.firewall("allow-web", [{"IPProtocol": "tcp", "ports": ["80"]}], ["0.0.0.0/0"])
        self.firewall("allow-hc", [{"IPProtocol": "tcp", "ports": ["80"]}], HC_RANGES)
        servers = {}
        for n in ("web-0", "web-1"):
            self.instance(n)
            servers[n] = self.server(n, 80)
        self.c.compute.insert(f"zones/{ZONE}/instanceGroups", {
            "name": "web", "network": f"{p}/global/networks/talos"})
        _, op = self.c.compute.api.call(
            "POST", f"{p}/zones/{ZONE}/instanceGroups/web/addInstances",
            {"instances": [{"instance": f"{p}/zones/{ZONE}/instances/{n}"} for n in servers]})
        self.c.compute.wait(op)
        self.c.compute.insert(f"regions/{REGION}/healthChecks", {
            "name": "web", "type": "TCP", "tcpHealthCheck": {"port": 80},
            "checkIntervalSec": 1, "timeoutSec": 1, "healthyThreshold": 1,
            "unhealthyThreshold": 2})
        self.c.compute.insert(f"regions/{REGION}/backendServices", {
            "name": "web", "loadBalancingScheme": "EXTERNAL", "protocol": "TCP",
            "healthChecks": [f"{p}/regions/{REGION}/healthChecks/web"],
            "backends": [{"group": f"{p}/zones/{ZONE}/instanceGroups/web"}]})
        self.c.compute.insert(f"regions/{REGION}/forwardingRules", {
            "name": "web", "loadBalancingScheme": "EXTERNAL", "IPProtocol": "TCP",
            "portRange": "80", "backendService": f"{p}/regions/{REGION}/backendServices/web"})
        _, rule = self.c.compute.api.call("GET", f"{p}/regions/{REGION}/forwardingRules/web")
        lb_ip = rule["IPAddress"]
        inet = self.dataplane()["namespaces"]["internet"]
        # The backends drop what is not addressed to them: nothing answers yet.
        self.assertIsNone(reaches(inet, lb_ip, 80, timeout=1.0))
        # With the address local (what the guest agent, or kube-proxy, does): healthy, and
        # the world reaches them; the client's address and the destination are preserved.
        for n in servers:
            ip(self.ns(n), "route", "add", "local", lb_ip, "dev", "eth0", "table", "local")
        deadline = time.monotonic() + 15
        while True:
            _, body = self.emu.control("GET", "dataplane/health")
            states = {x["instance"].rsplit("/", 1)[1]: x["healthState"] for x in body["probes"]}
            if states == {"web-0": "HEALTHY", "web-1": "HEALTHY"}:
                break
            self.assertLess(time.monotonic(), deadline, f"health {states}")
            time.sleep(0.1)
        seen = {connect(inet, lb_ip, 80) for _ in range(30)}
        self.assertEqual(seen, {"web-0", "web-1"})
        client = self.dataplane()["internetClient"]
        from_world = {a for s in servers.values() for a in s.accepted
                      if not a[0].startswith(("35.191.", "130.211."))}
        self.assertEqual(from_world, {(client, lb_ip)})
        # The port is the rule's only: another one is not forwarded.
        other = self.server("web-0", 81)
        self.assertIsNone(reaches(inet, lb_ip, 81, timeout=1.0))
        self.assertEqual(other.accepted, [])


if __name__ == "__main__":
    unittest.main()
