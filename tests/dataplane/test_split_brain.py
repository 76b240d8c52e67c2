"""Split-brain routing (design note §5), by packets.

The CCM runs the RangeAllocator: each Node's podCIDR is picked independently of the alias
IP range GCP routes to the node. Then, exactly as the note says:
  - pods on one node cannot reach pods on another (i/o timeout);
  - traffic for the Node's podCIDR is dropped by the VPC (no alias maps it);
  - traffic for the alias range arrives at the node, which has no local route for it;
`talos-gcp verify` shows the mismatch, `talos-gcp repair --apply` moves the aliases to the
Nodes' podCIDRs, and pod-to-pod traffic flows.
"""
import json
import unittest

from dp import DataplaneCase, reaches, talos_gcp

PORT = 8080


def addr(cidr, host):
    """host-th address of a /24."""
    base = cidr.split("/")[0].rsplit(".", 1)[0]
    return f"{base}.{host}"


class SplitBrainTest(DataplaneCase):
    ccm = "range"

    def test_pod_to_pod_fails_as_the_note_says_and_repair_restores_it(self):
        self.c.network()
        self.allow_internal()
        # The note's example: GCP routes 172.20.14.0/24 to the node, Kubernetes says 172.20.x.
        self.instance("a-0", alias="172.20.14.0/24")
        self.instance("b-0", alias="172.20.15.0/24")
        a = self.wait_instance("a-0", lambda i: i.get("podCIDR"), what="a-0's Node podCIDR")
        b = self.wait_instance("b-0", lambda i: i.get("podCIDR"), what="b-0's Node podCIDR")
        self.assertNotEqual(a["podCIDR"], "172.20.14.0/24")
        self.assertNotEqual(b["podCIDR"], "172.20.15.0/24")
        self.server("a-0", PORT)
        pod_a, pod_b = addr(a["podCIDR"], 10), addr(b["podCIDR"], 10)
        cap = self.capture("a-0")

        # Pods on b-0 cannot reach pods on a-0.
        self.assertIsNone(reaches(self.ns("b-0"), pod_a, PORT, src=pod_b, timeout=1.0))
        # The node itself (its own address is routable) cannot either: the VPC maps nothing
        # to a-0's podCIDR, the packet never arrives.
        self.assertIsNone(reaches(self.ns("b-0"), pod_a, PORT, timeout=1.0))
        self.assertEqual(cap.ipv4_to(pod_a), [])
        # The alias range is routed to a-0, and arrives, but a-0 has no route for it.
        alias_a = addr("172.20.14.0/24", 10)
        self.assertIsNone(reaches(self.ns("b-0"), alias_a, PORT, timeout=1.0))
        arrived = cap.ipv4_to(alias_a)
        self.assertTrue(arrived, "the VPC should deliver the alias range to a-0")
        self.assertEqual(arrived[0][0], b["ip"])

        # verify says why.
        rc, out, err = talos_gcp(self.emu, "verify", "-o", "json")
        self.assertEqual(rc, 1, err)
        nodes = {n["node"]: n for n in json.loads(out)["nodes"]}
        self.assertEqual((nodes["a-0"]["status"], nodes["a-0"]["podCIDR"],
                          nodes["a-0"]["aliasRange"]), ("mismatch", a["podCIDR"], "172.20.14.0/24"))
        self.assertEqual(nodes["b-0"]["status"], "mismatch")

        # repair --apply moves the aliases to the Nodes' podCIDRs (clear, then set).
        rc, out, err = talos_gcp(self.emu, "repair", "--apply")
        self.assertEqual(rc, 0, out + err)
        self.wait_reach(self.ns("b-0"), pod_a, PORT, src=pod_b, what="pod-to-pod after repair")
        self.assertEqual(reaches(self.ns("a-0"), pod_b, PORT, src=pod_a), None)  # no server on b
        self.server("b-0", PORT)
        self.wait_reach(self.ns("a-0"), pod_b, PORT, src=pod_a, what="pod-to-pod, the other way")
        rc, _, err = talos_gcp(self.emu, "verify")
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    unittest.main()
