"""Kubernetes Services on the emulated nodes (kube-proxy's rules), by packets.

A Service without a selector and its Endpoints written by hand (as a controller of one's own
would), a "pod" that is a server on an address of a node's podCIDR: ClusterIP and node port
from inside the cluster, and a LoadBalancer Service reached on its ingress address through
an external passthrough load balancer, with externalTrafficPolicy Cluster and Local.
"""
import time
import unittest

from dp import DataplaneCase, connect, reaches

REGION, ZONE = "europe-west1", "europe-west1-b"
HC_RANGES = ["35.191.0.0/16", "130.211.0.0/22"]
NODE_PORT = 30080


class ServicesTest(DataplaneCase):
    def setUp(self):
        super().setUp()
        self.c.network()
        self.allow_internal()
        self.firewall("allow-web", [{"IPProtocol": "tcp", "ports": ["80", str(NODE_PORT)]}],
                      ["0.0.0.0/0"])
        self.a = self.wait_instance(self.instance("a-0")["name"], lambda i: i.get("podCIDR"))
        self.b = self.wait_instance(self.instance("b-0")["name"], lambda i: i.get("podCIDR"))
        self.pod = self.a["podCIDR"].rsplit(".", 1)[0] + ".10"
        self.web = self.server("a-0", 8080, addr=self.pod)

    def kube(self, method, path, body=None, ok=(200, 201)):
        kw = {"content_type": "application/merge-patch+json"} if method == "PATCH" else {}
        status, out = self.emu.kube(method, path, body, **kw)
        self.assertIn(status, ok, out)
        return out

    def service(self, policy="Cluster", lb_ip=None):
        svc = self.kube("POST", "/api/v1/namespaces/default/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer" if lb_ip else "NodePort",
                     "externalTrafficPolicy": policy,
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                                "nodePort": NODE_PORT}]}})
        self.kube("POST", "/api/v1/namespaces/default/endpoints", {
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
            "subsets": [{"addresses": [{"ip": self.pod, "nodeName": "a-0"}],
                         "ports": [{"name": "http", "port": 8080}]}]})
        if lb_ip:
            self.kube("PATCH", "/api/v1/namespaces/default/services/web/status",
                      {"status": {"loadBalancer": {"ingress": [{"ip": lb_ip}]}}})
        return svc["spec"]["clusterIP"]

    def test_cluster_ip_and_node_port_reach_the_pod_on_another_node(self):
        cluster_ip = self.service()
        self.wait_reach(self.ns("b-0"), cluster_ip, 80, what="ClusterIP from another node")
        self.assertEqual(self.web.accepted[-1], (self.b["ip"], self.pod))
        # The node port on any node's address, from a node and from a pod.
        for node in (self.a, self.b):
            self.assertEqual(connect(self.ns("b-0"), node["ip"], NODE_PORT), "a-0")
        b_pod = self.b["podCIDR"].rsplit(".", 1)[0] + ".20"
        self.assertEqual(connect(self.ns("b-0"), cluster_ip, 80, src=b_pod), "a-0")
        # Endpoints gone: nothing answers the Service any more.
        self.kube("DELETE", "/api/v1/namespaces/default/endpoints/web")
        self.wait_reach(self.ns("b-0"), cluster_ip, 80, want=False, what="no endpoints")

    def load_balancer(self):
        """An external passthrough load balancer to both nodes, as the CCM makes one."""
        p = f"projects/{self.emu.project}"
        self.c.compute.insert(f"zones/{ZONE}/instanceGroups", {
            "name": "nodes", "network": f"{p}/global/networks/talos"})
        _, op = self.emu.compute(
            "POST", f"{p}/zones/{ZONE}/instanceGroups/nodes/addInstances",
            {"instances": [{"instance": f"{p}/zones/{ZONE}/instances/{n}"}
                           for n in ("a-0", "b-0")]})
        self.c.compute.wait(op)
        self.c.compute.insert(f"regions/{REGION}/backendServices", {
            "name": "web", "loadBalancingScheme": "EXTERNAL", "protocol": "TCP",
            "backends": [{"group": f"{p}/zones/{ZONE}/instanceGroups/nodes"}]})
        self.c.compute.insert(f"regions/{REGION}/forwardingRules", {
            "name": "web", "loadBalancingScheme": "EXTERNAL", "IPProtocol": "TCP",
            "portRange": "80", "backendService": f"{p}/regions/{REGION}/backendServices/web"})
        _, rule = self.emu.compute("GET", f"{p}/regions/{REGION}/forwardingRules/web")
        return rule["IPAddress"]

    def test_load_balancer_ingress_cluster_and_local(self):
        lb_ip = self.load_balancer()
        inet = self.dataplane()["namespaces"]["internet"]
        client = self.dataplane()["internetClient"]
        self.service("Cluster", lb_ip)
        # Every node takes the LoadBalancer's packets; b-0 forwards to the pod on a-0 and
        # masquerades (the answer comes back through it).
        self.wait_reach(inet, lb_ip, 80, what="the LoadBalancer Service from the internet")
        peers = set()
        for _ in range(20):
            self.assertEqual(connect(inet, lb_ip, 80), "a-0")
            peers.add(self.web.accepted[-1][0])
        self.assertEqual(peers, {client, self.b["ip"]})
        # Local: the client's address is kept; b-0 has no endpoint and drops.
        self.kube("PATCH", "/api/v1/namespaces/default/services/web",
                  {"spec": {"externalTrafficPolicy": "Local"}})
        deadline = time.monotonic() + 10
        while True:  # until a whole round shows the new policy
            before = len(self.web.accepted)
            got = [reaches(inet, lb_ip, 80, timeout=0.3) for _ in range(20)]
            peers = {p for p, _ in self.web.accepted[before:]}
            if "a-0" in got and None in got and peers == {client}:
                break
            self.assertLess(time.monotonic(), deadline,
                            f"Local not in effect: {got}, peers {peers}")


if __name__ == "__main__":
    unittest.main()
