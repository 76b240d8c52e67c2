"""talos-gcp up as gcloud sees it (forwarding-rules list, backend-services describe and
get-health, instance-groups list-instances, routers nats describe), and drift made with gcloud
behind talos-gcp's back: planned field by field, repaired by up, plan clean again."""
import concurrent.futures
import json
import os
import shutil
import sys
import tempfile
import unittest

from emu import Emu

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "conformance"))
from provision import Prov, gcloud_compute  # noqa: E402
from test_gcloud_compute import GCLOUD, gcloud_env  # noqa: E402

REGION = "us-central1"


@unittest.skipUnless(GCLOUD, "gcloud is not installed")
class TestGcloudViewsAndDrift(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="prov-gcloud-")
        cls.emu = Emu(cls.tmp, extra=("--kubelet-delay", "0s", "--ccm-delay", "0s")).start()
        cls.p = Prov(cls.emu, cls.tmp)
        cls.p.write(cls.p.spec())
        r = cls.p.up()
        assert r.returncode == 0, r.stdout + r.stderr
        cls.emu.wait_until(lambda: all(cls.emu.node(f"demo-cp-{i}") for i in range(3)),
                           what="control-plane Nodes")
        env = cls.env = gcloud_env(cls.emu.cloud_url.rsplit(":", 1)[1], cls.tmp)
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            views = {
                "rules": pool.submit(gcloud_compute, env, "forwarding-rules", "list", "--format=json"),
                "describe": pool.submit(gcloud_compute, env, "backend-services", "describe", "demo-cp",
                                        f"--region={REGION}", "--format=json"),
                "health": pool.submit(gcloud_compute, env, "backend-services", "get-health", "demo-cp",
                                      f"--region={REGION}", "--format=json"),
                "members": pool.submit(gcloud_compute, env, "instance-groups", "list-instances",
                                       "demo-cp-us-central1-a", "--zone=us-central1-a",
                                       "--format=value(instance.basename())"),
                "nat": pool.submit(gcloud_compute, env, "routers", "nats", "describe", "demo-nat",
                                   "--router=demo-router", f"--region={REGION}", "--format=json"),
            }
            cls.views = {k: f.result() for k, f in views.items()}
            # Drift, each change on another resource, all at once.
            drift = {
                "firewall": pool.submit(gcloud_compute, env, "firewall-rules", "update", "demo-iap-ssh",
                                        "--source-ranges=0.0.0.0/0"),
                "timeout": pool.submit(gcloud_compute, env, "backend-services", "update", "demo-cp-ext",
                                       "--global", "--timeout=30s"),
                "nat": pool.submit(gcloud_compute, env, "routers", "nats", "delete", "demo-nat",
                                   "--router=demo-router", f"--region={REGION}", "--quiet"),
                "member": pool.submit(gcloud_compute, env, "instance-groups", "unmanaged", "remove-instances",
                                      "demo-cp-us-central1-a", "--zone=us-central1-a",
                                      "--instances=demo-cp-2"),
                "header": pool.submit(gcloud_compute, env, "target-tcp-proxies", "update", "demo-ingress",
                                      "--proxy-header=PROXY_V1"),
                "hc": pool.submit(gcloud_compute, env, "health-checks", "update", "https", "demo-cp",
                                  f"--region={REGION}", "--request-path=/healthz"),
                "rule": pool.submit(gcloud_compute, env, "forwarding-rules", "delete", "demo-ingress-80",
                                    "--global", "--quiet"),
                "alias": pool.submit(gcloud_compute, env, "instances", "network-interfaces", "update",
                                     "demo-worker-1", "--zone=us-central1-b", "--aliases="),
            }
            cls.drift = {k: f.result() for k, f in drift.items()}

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ok(self, result):
        rc, out, err = result
        self.assertEqual(rc, 0, err)
        return out

    def test_gcloud_sees_what_up_made(self):
        rules = {r["name"]: r for r in json.loads(self.ok(self.views["rules"]))}
        self.assertEqual(set(rules), {"demo-cp", "demo-cp-ext", "demo-ingress-80"})
        self.assertEqual(rules["demo-cp"]["IPAddress"], "10.0.0.2")
        bs = json.loads(self.ok(self.views["describe"]))
        self.assertEqual((bs["loadBalancingScheme"], bs["protocol"], len(bs["backends"])), ("INTERNAL", "TCP", 2))
        health = json.loads(self.ok(self.views["health"]))
        states = sorted(s["healthState"] for h in health for s in h["status"]["healthStatus"])
        self.assertEqual(states, ["HEALTHY"] * 3)  # every control plane's Node is Ready
        self.assertEqual(sorted(self.ok(self.views["members"]).split()), ["demo-cp-0", "demo-cp-2"])
        nat = json.loads(self.ok(self.views["nat"]))
        self.assertEqual((nat["natIpAllocateOption"], nat["sourceSubnetworkIpRangesToNat"]),
                         ("AUTO_ONLY", "LIST_OF_SUBNETWORKS"))

    def test_drift_is_planned_and_repaired(self):
        for name, result in self.drift.items():
            self.assertEqual(result[0], 0, f"{name}: {result[2]}")
        code, plan = self.p.plan_json()
        self.assertEqual(code, 1)
        got = {(c["action"], c["key"]): [f["field"] for f in c["fields"]] for c in plan["changes"]}
        self.assertEqual(got, {
            ("update", "global/firewalls/demo-iap-ssh"): ["sourceRanges"],
            ("update", "global/backendServices/demo-cp-ext"): ["timeoutSec"],
            ("update", "regions/us-central1/routers/demo-router"): ["nats"],
            ("update", "zones/us-central1-a/instanceGroups/demo-cp-us-central1-a"): ["members"],
            ("update", "global/targetTcpProxies/demo-ingress"): ["proxyHeader"],
            ("update", "regions/us-central1/healthChecks/demo-cp"): ["requestPath"],
            ("create", "global/forwardingRules/demo-ingress-80"): [],
            ("update", "zones/us-central1-b/instances/demo-worker-1"): ["podsRange"],
        })
        r = self.p.up()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.p.plan().returncode, 0)
        rc, out, err = gcloud_compute(self.env, "firewall-rules", "describe", "demo-iap-ssh",
                           "--format=value(sourceRanges)")
        self.assertEqual(out.strip(), "35.235.240.0/20")


if __name__ == "__main__":
    unittest.main()
