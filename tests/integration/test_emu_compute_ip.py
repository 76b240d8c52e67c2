"""talos-gcp-emu: who holds an internal IP of a VPC network, as GCP documents it.

Reserved internal addresses leave the dynamic pool; an IP is held once per network (instances'
primary IPs and alias ranges, reserved addresses, internal forwarding rules), except through
an address with purpose SHARED_LOADBALANCER_VIP; an address used by an instance or a rule is
IN_USE with its users and cannot be deleted while used.
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from emu import Emu

P = "projects/demo-project"
R = "regions/us-central1"
Z = "zones/us-central1-a"
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
VALIDATE = os.environ.get("GCE_VALIDATE",
                          os.path.join(SOURCE_ROOT, "..", "shared", "tools", "gce-validate.py"))
SDK_PYTHON = "/usr/lib/google-cloud-sdk/platform/bundledpythonunix/bin/python3"


class IpWorld(unittest.TestCase):
    """Network talos with subnet nodes (10.0.0.0/16, pods) and a tiny subnet tiny
    (10.9.0.0/29: 10.9.0.2 to 10.9.0.5 are usable), a regional internal backend service."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-ip-")
        e = cls.emu = Emu(cls.tmp, kube=False).start()
        try:
            e.create_network("talos")
            e.create_subnet("nodes")
            e.create_subnet("tiny", cidr="10.9.0.0/29", pods="172.30.0.0/16", services=None)
            e.insert(f"{R}/backendServices", {"name": "bes", "loadBalancingScheme": "INTERNAL",
                                              "protocol": "TCP", "network": "global/networks/talos"})
        except Exception:
            e.stop(check=False)  # tearDownClass does not run after a failed setUpClass
            raise

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def get(self, path, **q):
        return self.emu.compute("GET", f"{P}/{path}", query=q or None)

    def address(self, name, ip=None, subnet="nodes", purpose=None, check=True):
        body = {"name": name, "addressType": "INTERNAL", "subnetwork": f"{R}/subnetworks/{subnet}"}
        if ip:
            body["address"] = ip
        if purpose:
            body["purpose"] = purpose
        return self.emu.insert(f"{R}/addresses", body, check=check)

    def rule(self, name, ip=None, ports=("6443",), protocol="TCP", subnet="nodes", check=True):
        body = {"name": name, "loadBalancingScheme": "INTERNAL", "IPProtocol": protocol,
                "backendService": f"{R}/backendServices/bes",
                "subnetwork": f"{R}/subnetworks/{subnet}", "ports": list(ports)}
        if ip:
            body["IPAddress"] = ip
        return self.emu.insert(f"{R}/forwardingRules", body, check=check)

    def instance(self, name, ip=None, subnet="nodes", check=True, alias=None):
        body = Emu.instance_body(name, subnet=subnet, alias=alias, talos=False)
        if alias:  # from the primary range
            del body["networkInterfaces"][0]["aliasIpRanges"][0]["subnetworkRangeName"]
        if ip:
            body["networkInterfaces"][0]["networkIP"] = ip
        return self.emu.insert(f"{Z}/instances", body, check=check)

    def delete(self, path):
        st, op = self.emu.compute("DELETE", f"{P}/{path}")
        self.assertEqual(st, 200, op)
        op = self.emu.wait_op(op)
        self.assertNotIn("error", op)

    def assert_in_use(self, op, status=409):
        self.assertEqual(op["error"]["errors"][0]["code"], "IP_IN_USE_BY_ANOTHER_RESOURCE", op)
        self.assertRegex(op["error"]["errors"][0]["message"],
                         r"^IP '[0-9./]+' is already being used by another resource\.$")
        self.assertEqual(op["httpErrorStatusCode"], status)

    def ip_of(self, name):
        return self.emu.get_instance(name)["networkInterfaces"][0]["networkIP"]

    def addr(self, name):
        return self.get(f"{R}/addresses/{name}")[1]


class TestPool(IpWorld):
    def test_reserved_address_leaves_the_pool(self):
        self.address("tiny-vip", "10.9.0.2", subnet="tiny")
        self.instance("tiny-a", subnet="tiny")
        self.assertEqual(self.ip_of("tiny-a"), "10.9.0.3")
        # An address without an IP is allocated from the pool, past what is held.
        self.address("tiny-auto", subnet="tiny")
        self.assertEqual(self.addr("tiny-auto")["address"], "10.9.0.4")
        self.assertEqual(self.addr("tiny-auto")["purpose"], "GCE_ENDPOINT")
        self.rule("tiny-rule", subnet="tiny")
        self.assertEqual(self.get(f"{R}/forwardingRules/tiny-rule")[1]["IPAddress"], "10.9.0.5")
        # The pool is empty now: the next instance fails at completion.
        op = self.instance("tiny-b", subnet="tiny", check=False)
        self.assertEqual(op["error"]["errors"][0]["code"], "IP_SPACE_EXHAUSTED")
        self.assertIsNone(self.emu.get_instance("tiny-b"))
        # Releasing the reserved address gives its IP back.
        self.delete(f"{R}/addresses/tiny-vip")
        self.instance("tiny-c", subnet="tiny")
        self.assertEqual(self.ip_of("tiny-c"), "10.9.0.2")

    def test_address_outside_the_primary_range(self):
        for ip in ("10.1.0.0", "10.0.0.1", "10.0.255.254", "nope"):
            st, err = self.emu.compute("POST", f"{P}/{R}/addresses", {
                "name": "outside", "addressType": "INTERNAL", "address": ip,
                "subnetwork": f"{R}/subnetworks/nodes"})
            self.assertEqual(st, 400, ip)


class TestUniqueness(IpWorld):
    def test_two_addresses_one_ip(self):
        self.address("one", "10.0.7.1")
        op = self.address("two", "10.0.7.1", check=False)
        self.assert_in_use(op)
        self.assertEqual(self.get(f"{R}/addresses/two")[0], 404)
        # A shared VIP is shared by rules, not by two reservations either.
        self.assert_in_use(self.address("three", "10.0.7.1", purpose="SHARED_LOADBALANCER_VIP",
                                        check=False))

    def test_address_over_an_alias_range(self):
        self.instance("alias-holder", alias="10.0.8.0/30")
        nic = self.emu.get_instance("alias-holder")["networkInterfaces"][0]
        self.assertEqual(nic["aliasIpRanges"][0]["ipCidrRange"], "10.0.8.0/30")
        self.assert_in_use(self.address("over-alias", "10.0.8.2", check=False))

    def test_alias_over_reserved_address_and_rule_ip(self):
        self.address("alias-target", "10.0.9.5")
        self.rule("alias-rule", ip="10.0.9.6")
        self.instance("alias-b")
        for cidr in ("10.0.9.5/32", "10.0.9.6/32", "10.0.9.4/30"):
            fp = self.emu.get_instance("alias-b")["networkInterfaces"][0]["fingerprint"]
            st, op = self.emu.compute(
                "PATCH", f"{P}/{Z}/instances/alias-b/updateNetworkInterface",
                {"fingerprint": fp, "aliasIpRanges": [{"ipCidrRange": cidr}]},
                query={"networkInterface": "nic0"})
            self.assertEqual(st, 200, op)
            self.assert_in_use(self.emu.wait_op(op), status=400)
        self.assertNotIn("aliasIpRanges", self.emu.get_instance("alias-b")["networkInterfaces"][0])

    def test_rule_ip_unique(self):
        self.rule("eph")
        ip = self.get(f"{R}/forwardingRules/eph")[1]["IPAddress"]
        self.assertTrue(ip.startswith("10.0."), ip)
        self.assert_in_use(self.instance("on-rule-ip", ip=ip, check=False), status=400)
        self.instance("plain")
        self.assert_in_use(self.rule("on-instance-ip", ip=self.ip_of("plain"), check=False))
        self.assert_in_use(self.rule("on-rule", ip=ip, ports=("80",), check=False))
        # Deleting the rule frees its ephemeral IP.
        self.delete(f"{R}/forwardingRules/eph")
        self.instance("after-rule", ip=ip)
        self.assertEqual(self.ip_of("after-rule"), ip)

    def test_rule_ip_must_be_in_its_subnet(self):
        st, err = self.emu.compute("POST", f"{P}/{R}/forwardingRules", {
            "name": "elsewhere", "loadBalancingScheme": "INTERNAL",
            "backendService": f"{R}/backendServices/bes", "subnetwork": f"{R}/subnetworks/nodes",
            "IPAddress": "10.9.0.3", "ports": ["80"]})
        self.assertEqual(st, 400, err)


class TestInUse(IpWorld):
    def test_instance_uses_address_by_ip(self):
        self.address("by-ip", "10.0.10.10")
        self.assertEqual(self.addr("by-ip")["status"], "RESERVED")
        self.instance("user-ip", ip="10.0.10.10")
        a = self.addr("by-ip")
        self.assertEqual(a["status"], "IN_USE")
        self.assertEqual(a["users"], [self.emu.get_instance("user-ip")["selfLink"]])
        st, err = self.emu.compute("DELETE", f"{P}/{R}/addresses/by-ip")
        self.assertEqual(st, 400)
        self.assertEqual(err["error"]["errors"][0]["reason"], "resourceInUseByAnotherResource")
        self.assertIn(f"{P}/{Z}/instances/user-ip", err["error"]["message"])
        # One user at a time for a GCE_ENDPOINT address.
        self.assert_in_use(self.instance("user-ip-2", ip="10.0.10.10", check=False), status=400)
        self.assert_in_use(self.rule("rule-on-used", ip="10.0.10.10", check=False))
        self.delete(f"{Z}/instances/user-ip")
        a = self.addr("by-ip")
        self.assertEqual(a["status"], "RESERVED")
        self.assertNotIn("users", a)
        self.delete(f"{R}/addresses/by-ip")

    def test_instance_uses_address_by_url(self):
        self.address("by-url", "10.0.11.11")
        self.instance("user-url", ip=f"{R}/addresses/by-url")
        self.assertEqual(self.ip_of("user-url"), "10.0.11.11")
        self.assertEqual(self.addr("by-url")["users"],
                         [self.emu.get_instance("user-url")["selfLink"]])
        # The address's full URL (what gcloud --private-network-ip NAME sends) works too.
        self.address("by-full-url")
        url = self.addr("by-full-url")["selfLink"]
        self.instance("user-full-url", ip=url)
        self.assertEqual(self.ip_of("user-full-url"), self.addr("by-full-url")["address"])

    def test_address_url_errors(self):
        body = Emu.instance_body("bad-url", talos=False)
        body["networkInterfaces"][0]["networkIP"] = f"{R}/addresses/missing"
        st, err = self.emu.compute("POST", f"{P}/{Z}/instances", body)
        self.assertEqual(st, 404, err)
        self.address("other-subnet", subnet="tiny")
        body["networkInterfaces"][0]["networkIP"] = f"{R}/addresses/other-subnet"
        st, err = self.emu.compute("POST", f"{P}/{Z}/instances", body)
        self.assertEqual(st, 400, err)

    def test_promoting_an_instance_ip(self):
        self.instance("promoted")
        ip = self.ip_of("promoted")
        self.address("promote", ip)
        a = self.addr("promote")
        self.assertEqual((a["address"], a["status"]), (ip, "IN_USE"))
        self.assertEqual(a["users"], [self.emu.get_instance("promoted")["selfLink"]])
        # The instance leaves; the reservation keeps the IP out of the pool.
        self.delete(f"{Z}/instances/promoted")
        self.assertEqual(self.addr("promote")["status"], "RESERVED")
        self.instance("takes-promoted", ip=ip)  # by IP: it uses the reservation
        self.assertEqual(self.addr("promote")["status"], "IN_USE")

    def test_rule_on_address(self):
        self.address("fr-addr", "10.0.12.12")
        self.rule("fr-a", ip=f"{R}/addresses/fr-addr")
        fr = self.get(f"{R}/forwardingRules/fr-a")[1]
        self.assertEqual(fr["IPAddress"], "10.0.12.12")
        self.assertTrue(fr["network"].endswith("/global/networks/talos"))
        a = self.addr("fr-addr")
        self.assertEqual((a["status"], a["users"]), ("IN_USE", [fr["selfLink"]]))
        self.assert_in_use(self.rule("fr-b", ip="10.0.12.12", ports=("80",), check=False))
        self.assert_in_use(self.instance("fr-inst", ip="10.0.12.12", check=False), status=400)
        st, err = self.emu.compute("DELETE", f"{P}/{R}/addresses/fr-addr")
        self.assertEqual(st, 400)
        self.delete(f"{R}/forwardingRules/fr-a")
        self.assertEqual(self.addr("fr-addr")["status"], "RESERVED")


class TestSharedVip(IpWorld):
    def test_rules_share_a_vip_on_distinct_ports(self):
        self.address("shared", "10.0.13.13", purpose="SHARED_LOADBALANCER_VIP")
        self.rule("sh-api", ip=f"{R}/addresses/shared", ports=("6443",))
        self.rule("sh-talos", ip="10.0.13.13", ports=("50000", "50001"))
        self.rule("sh-udp", ip="10.0.13.13", ports=("6443",), protocol="UDP")
        a = self.addr("shared")
        self.assertEqual(a["status"], "IN_USE")
        self.assertEqual(sorted(u.rsplit("/", 1)[1] for u in a["users"]),
                         ["sh-api", "sh-talos", "sh-udp"])
        # Same [IPAddress, IPProtocol] and a shared port: refused at once.
        st, err = self.emu.compute("POST", f"{P}/{R}/forwardingRules", {
            "name": "sh-clash", "loadBalancingScheme": "INTERNAL", "IPProtocol": "TCP",
            "backendService": f"{R}/backendServices/bes", "subnetwork": f"{R}/subnetworks/nodes",
            "IPAddress": "10.0.13.13", "ports": ["50001"]})
        self.assertEqual(st, 400)
        self.assertIn("in-use and would result in a conflict", err["error"]["message"])
        # Instances never use a shared VIP.
        self.assert_in_use(self.instance("sh-inst", ip="10.0.13.13", check=False), status=400)
        for n in ("sh-api", "sh-talos"):
            self.delete(f"{R}/forwardingRules/{n}")
        self.assertEqual([u.rsplit("/", 1)[1] for u in self.addr("shared")["users"]], ["sh-udp"])
        self.delete(f"{R}/forwardingRules/sh-udp")
        self.assertEqual(self.addr("shared")["status"], "RESERVED")

    def test_gce_endpoint_address_is_not_shared(self):
        self.address("single", "10.0.14.14")
        self.rule("single-a", ip="10.0.14.14", ports=("80",))
        self.assert_in_use(self.rule("single-b", ip="10.0.14.14", ports=("443",), check=False))


class TestStateKeepsHolders(IpWorld):
    def test_reload_keeps_reservations_and_users(self):
        self.address("kept", "10.0.15.15")
        self.instance("kept-user", ip="10.0.15.15")
        self.address("kept-free", "10.0.15.16")
        st, state = self.emu.control("GET", "state")
        self.assertEqual(st, 200)
        st, _ = self.emu.control("PUT", "state", state)
        self.assertEqual(st, 200)
        self.assertEqual(self.addr("kept")["status"], "IN_USE")
        self.assert_in_use(self.address("kept-dup", "10.0.15.16", check=False))
        self.assert_in_use(self.instance("kept-3", ip="10.0.15.15", check=False), status=400)
        self.delete(f"{Z}/instances/kept-user")
        self.assertEqual(self.addr("kept")["status"], "RESERVED")


class TestSubnetDelete(IpWorld):
    def test_subnet_with_an_address_cannot_be_deleted(self):
        self.emu.create_subnet("holder", cidr="10.10.0.0/24", pods="172.31.0.0/24", services=None)
        self.address("in-holder", subnet="holder")
        st, err = self.emu.compute("DELETE", f"{P}/{R}/subnetworks/holder")
        self.assertEqual(st, 400)
        self.assertIn("addresses/in-holder", err["error"]["message"])


@unittest.skipUnless(os.path.exists(VALIDATE) and os.path.exists(SDK_PYTHON),
                     "gce-validate.py or the Cloud SDK's python is not installed")
class TestShapes(IpWorld):
    def test_addresses_and_rules_validate(self):
        self.address("shape-vip", "10.0.16.16", purpose="SHARED_LOADBALANCER_VIP")
        self.rule("shape-rule", ip="10.0.16.16")
        for type_name, path in (("Address", f"{R}/addresses/shape-vip"),
                                ("ForwardingRule", f"{R}/forwardingRules/shape-rule"),
                                ("AddressList", f"{R}/addresses")):
            st, doc = self.get(path)
            r = subprocess.run([SDK_PYTHON, VALIDATE, type_name, "-"], input=json.dumps(doc).encode(),
                               capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout.decode())


if __name__ == "__main__":
    unittest.main()
