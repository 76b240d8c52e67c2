"""gcloud against the resources `talos-gcp up` makes: images from a storage URI, Cloud Router
and NAT, health checks, backend services (update, get-health), target TCP proxies, global
and regional forwarding rules, instance groups' named ports and members, firewall updates.

Each gcloud run costs about two seconds, so independent chains of commands run in parallel
threads during setUpClass and the test methods check what they printed.
"""
import concurrent.futures
import json
import os
import shutil
import sys
import tempfile
import unittest

from emu import Emu

sys.path.insert(0, os.path.dirname(__file__))
from test_gcloud_compute import GCLOUD, gcloud_env  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from provision import gcloud_compute  # noqa: E402

R = "regions/us-central1"
Z = "zones/us-central1-a"
ZONE = "us-central1-a"
REGION = "us-central1"


@unittest.skipUnless(GCLOUD, "gcloud is not installed")
class TestGcloudProvision(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gcloud-prov-")
        e = cls.emu = Emu(cls.tmp, extra=("--kubelet-delay", "0s", "--ccm-delay", "0s")).start()
        e.create_network("talos")
        e.create_subnet("nodes", cidr="10.0.0.0/24", pods="172.20.0.0/16", services="10.96.0.0/12")
        body = Emu.instance_body("cp-0")
        body["metadata"]["items"][0]["value"] = "machine:\n  type: controlplane\n"
        e.insert(f"{Z}/instances", body)
        e.create_instance("worker-0")
        e.wait_until(lambda: e.node("cp-0") and e.node("worker-0"), what="Nodes registered")
        env = cls.env = gcloud_env(cls.emu.cloud_url.rsplit(":", 1)[1], cls.tmp)

        def image():
            return {
                "create": gcloud_compute(env, "images", "create", "talos-v1", "--source-uri",
                              "gs://talos-bucket/gcp-amd64.raw.tar.gz",
                              "--guest-os-features=VIRTIO_SCSI_MULTIQUEUE", "--family=talos"),
                "list": gcloud_compute(env, "images", "list", "--no-standard-images", "--format=value(name,status)"),
                "instance": gcloud_compute(env, "instances", "create", "from-family", f"--zone={ZONE}",
                                "--subnet=nodes", "--image-family=talos", "--format=value(name,status)"),
                "missing": gcloud_compute(env, "instances", "create", "no-image", f"--zone={ZONE}",
                               "--subnet=nodes", "--image=nope"),
            }

        def nat():
            return {
                "router": gcloud_compute(env, "routers", "create", "rt", "--network=talos", f"--region={REGION}"),
                "nat": gcloud_compute(env, "routers", "nats", "create", "nat", "--router=rt", f"--region={REGION}",
                           "--auto-allocate-nat-external-ips", "--nat-all-subnet-ip-ranges"),
                "describe": gcloud_compute(env, "routers", "nats", "describe", "nat", "--router=rt",
                                f"--region={REGION}", "--format=json"),
                "in-use": gcloud_compute(env, "networks", "delete", "talos", "--quiet"),
            }

        # Two phases of parallel chains: what each load balancer's backend joins needs first.
        def cp_group():
            return {
                "group": gcloud_compute(env, "instance-groups", "unmanaged", "create", "cp", f"--zone={ZONE}"),
                "add": gcloud_compute(env, "instance-groups", "unmanaged", "add-instances", "cp",
                                      f"--zone={ZONE}", "--instances=cp-0"),
                "ports": gcloud_compute(env, "instance-groups", "unmanaged", "set-named-ports", "cp",
                                        f"--zone={ZONE}", "--named-ports=tcp6443:6443"),
            }

        def cp_service():
            return {
                "hc": gcloud_compute(env, "health-checks", "create", "https", "cp", f"--region={REGION}",
                                     "--port=6443", "--request-path=/readyz"),
                "bs": gcloud_compute(env, "backend-services", "create", "cp", f"--region={REGION}",
                                     "--load-balancing-scheme=INTERNAL", "--protocol=TCP",
                                     f"--health-checks-region={REGION}", "--health-checks=cp",
                                     "--network=talos"),
            }

        def cp_join():
            return {
                "backend": gcloud_compute(env, "backend-services", "add-backend", "cp", f"--region={REGION}",
                                          "--instance-group=cp", f"--instance-group-zone={ZONE}"),
                "rule": gcloud_compute(env, "forwarding-rules", "create", "cp", f"--region={REGION}",
                                       "--load-balancing-scheme=INTERNAL", "--network=talos", "--subnet=nodes",
                                       "--address=10.0.0.250", "--ip-protocol=TCP", "--ports=6443,50000",
                                       f"--backend-service-region={REGION}", "--backend-service=cp"),
                "health": gcloud_compute(env, "backend-services", "get-health", "cp", f"--region={REGION}",
                                         "--format=json"),
                "describe": gcloud_compute(env, "backend-services", "describe", "cp", f"--region={REGION}",
                                           "--format=json"),
            }

        def ingress_group():
            return {
                "group": gcloud_compute(env, "instance-groups", "unmanaged", "create", "workers", f"--zone={ZONE}"),
                "add": gcloud_compute(env, "instance-groups", "unmanaged", "add-instances", "workers",
                                      f"--zone={ZONE}", "--instances=worker-0"),
                "ports": gcloud_compute(env, "instance-groups", "unmanaged", "set-named-ports", "workers",
                                        f"--zone={ZONE}", "--named-ports=ingress:30080"),
            }

        def ingress_service():
            return {
                "hc": gcloud_compute(env, "health-checks", "create", "tcp", "ing", "--port=30080"),
                "bs": gcloud_compute(env, "backend-services", "create", "ing", "--global", "--protocol=TCP",
                                     "--port-name=ingress", "--health-checks=ing", "--timeout=5m"),
                "address": gcloud_compute(env, "addresses", "create", "ing", "--global"),
            }

        def ingress_join():
            return {
                "backend": gcloud_compute(env, "backend-services", "add-backend", "ing", "--global",
                                          "--instance-group=workers", f"--instance-group-zone={ZONE}"),
                "proxy": gcloud_compute(env, "target-tcp-proxies", "create", "ing", "--backend-service=ing",
                                        "--proxy-header=NONE"),
                "rule": gcloud_compute(env, "forwarding-rules", "create", "ing-80", "--global",
                                       "--target-tcp-proxy=ing", "--address=ing", "--ports=80"),
                "hc-update": gcloud_compute(env, "health-checks", "update", "tcp", "ing", "--port=30081"),
                "health": gcloud_compute(env, "backend-services", "get-health", "ing", "--global",
                                         "--format=json"),
                "proxy-in-use": gcloud_compute(env, "target-tcp-proxies", "delete", "ing", "--quiet"),
            }

        def firewall():
            return {
                "create": gcloud_compute(env, "firewall-rules", "create", "iap", "--network=talos",
                                         "--allow=tcp:22", "--source-ranges=35.235.240.0/20"),
                "update": gcloud_compute(env, "firewall-rules", "update", "iap", "--allow=tcp:22,tcp:2222"),
                "describe": gcloud_compute(env, "firewall-rules", "describe", "iap", "--format=json"),
            }

        def run_all(chains):
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(chains)) as pool:
                futures = {n: pool.submit(f) for n, f in chains}
                return {n: f.result() for n, f in futures.items()}

        first = run_all((("image", image), ("nat", nat), ("cp", cp_group), ("cps", cp_service),
                         ("ingress", ingress_group), ("ingresss", ingress_service),
                         ("firewall", firewall)))
        second = run_all((("cp", cp_join), ("ingress", ingress_join)))
        cls.results = {"image": first["image"], "nat": first["nat"], "firewall": first["firewall"],
                       "cp": {**first["cp"], **first["cps"], **second["cp"]},
                       "ingress": {**first["ingress"], **first["ingresss"], **second["ingress"]}}

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ok(self, result):
        rc, out, err = result
        self.assertEqual(rc, 0, err)
        return out

    def test_images_from_a_storage_uri(self):
        r = self.results["image"]
        self.ok(r["create"])
        self.assertIn("talos-v1\tREADY", self.ok(r["list"]))
        self.assertIn("from-family\tRUNNING", self.ok(r["instance"]))
        rc, out, err = r["missing"]
        self.assertNotEqual(rc, 0)
        self.assertIn("images/nope' was not found", err)
        img = self.emu.compute("GET", "projects/demo-project/global/images/talos-v1")[1]
        self.assertEqual(img["rawDisk"]["source"],
                         "https://storage.googleapis.com/storage/v1/b/talos-bucket/o/gcp-amd64.raw.tar.gz")

    def test_router_and_nat(self):
        r = self.results["nat"]
        self.ok(r["router"])
        self.ok(r["nat"])
        nat = json.loads(self.ok(r["describe"]))
        self.assertEqual((nat["name"], nat["natIpAllocateOption"], nat["sourceSubnetworkIpRangesToNat"]),
                         ("nat", "AUTO_ONLY", "ALL_SUBNETWORKS_ALL_IP_RANGES"))
        rc, out, err = r["in-use"]
        self.assertNotEqual(rc, 0)
        self.assertIn("already being used by", err)

    def test_control_plane_ilb(self):
        r = self.results["cp"]
        for step in ("group", "add", "ports", "hc", "bs", "backend", "rule"):
            self.ok(r[step])
        health = json.loads(self.ok(r["health"]))
        states = [s["healthState"] for h in health for s in h["status"]["healthStatus"]]
        self.assertEqual(states, ["HEALTHY"])  # the Node is a Ready control plane
        bs = json.loads(self.ok(r["describe"]))
        self.assertEqual((bs["loadBalancingScheme"], bs["protocol"]), ("INTERNAL", "TCP"))
        self.assertTrue(bs["backends"][0]["group"].endswith("/instanceGroups/cp"))

    def test_ingress_tcp_proxy(self):
        r = self.results["ingress"]
        for step in ("group", "add", "ports", "hc", "bs", "backend", "proxy", "address", "rule",
                     "hc-update"):
            self.ok(r[step])
        rule = self.emu.compute("GET", "projects/demo-project/global/forwardingRules/ing-80")[1]
        self.assertTrue(rule["target"].endswith("/global/targetTcpProxies/ing"))
        health = json.loads(self.ok(r["health"]))
        # No Service exposes the node port (and the check moved to 30081): UNHEALTHY.
        self.assertEqual([s["healthState"] for h in health for s in h["status"]["healthStatus"]],
                         ["UNHEALTHY"])
        rc, out, err = r["proxy-in-use"]
        self.assertNotEqual(rc, 0)
        self.assertIn("already being used by", err)
        hc = self.emu.compute("GET", "projects/demo-project/global/healthChecks/ing")[1]
        self.assertEqual(hc["tcpHealthCheck"]["port"], 30081)

    def test_firewall_update(self):
        r = self.results["firewall"]
        self.ok(r["create"])
        self.ok(r["update"])
        fw = json.loads(self.ok(r["describe"]))
        self.assertEqual(sorted(p for a in fw["allowed"] for p in a["ports"]), ["22", "2222"])


if __name__ == "__main__":
    unittest.main()
