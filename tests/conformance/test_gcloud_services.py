"""gcloud against what the emulated CCM makes for a LoadBalancer Service (the design note's §2
example: forwarding rule on the reserved address, target pool with every node, firewall, legacy
HTTP health check, get-health), and against the target pool and HTTP health check APIs
themselves (create, update, add/remove instances, in-use refusals, network tiers). The
documents are also checked against gcloud's own Compute v1 messages (gce-validate.py).

Each gcloud run costs about two seconds: the two chains run in parallel in setUpClass and the
test methods check what they printed.
"""
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from emu import Emu

sys.path.insert(0, os.path.dirname(__file__))
from test_gcloud_compute import GCLOUD, gcloud_env  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from provision import gcloud_compute  # noqa: E402

REGION = "us-central1"
ZONE = "us-central1-a"
P = "projects/demo-project"
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
VALIDATE = os.environ.get("GCE_VALIDATE",
                          os.path.join(SOURCE_ROOT, "..", "shared", "tools", "gce-validate.py"))
SDK_PYTHON = "/usr/lib/google-cloud-sdk/platform/bundledpythonunix/bin/python3"
YAML = """apiVersion: v1
kind: Service
metadata:
  name: traefik
  namespace: kube-system
spec:
  type: LoadBalancer
  loadBalancerIP: {ip}
  ports:
    - port: 80
      targetPort: 80
"""


def ready(obj):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in obj.get("status", {}).get("conditions", []))


@unittest.skipUnless(GCLOUD, "gcloud is not installed")
class TestGcloudServices(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gcloud-svc-")
        e = cls.emu = Emu(cls.tmp, extra=("--kubelet-delay", "0s", "--ccm-delay", "0s",
                                          "--ccm-retry-delay", "100ms")).start()
        e.create_network("talos")
        e.create_subnet("nodes", cidr="10.0.0.0/24", pods="172.20.0.0/16")
        for name, tag in (("demo-cp-0", "demo-controlplane"), ("demo-worker-0", "demo-worker"),
                          ("demo-worker-1", "demo-worker")):
            body = Emu.instance_body(name)
            body["tags"] = {"items": [tag]}
            e.insert(f"zones/{ZONE}/instances", body)
        for name in ("demo-cp-0", "demo-worker-0", "demo-worker-1"):
            e.wait_until(lambda: (lambda n: n and n["spec"].get("providerID") and ready(n))(e.node(name)),
                         timeout=15, what=f"node {name}")
        env = cls.env = gcloud_env(e.cloud_url.rsplit(":", 1)[1], cls.tmp)

        def g(*args):
            return gcloud_compute(env, *args)

        def ccm():
            out = {"address": g("addresses", "create", "traefik-ip", f"--region={REGION}")}
            rc, ip, _ = g("addresses", "describe", "traefik-ip", f"--region={REGION}",
                          "--format=value(address)")
            ip = out["ip"] = ip.strip()
            out["apply"] = e.kubectl("apply", "-f", "-", input=YAML.format(ip=ip))

            def ingress():
                st, s = e.kube("GET", "/api/v1/namespaces/kube-system/services/traefik")
                return s.get("status", {}).get("loadBalancer", {}).get("ingress")
            e.wait_until(ingress, timeout=20, what="EXTERNAL-IP")
            st, s = e.kube("GET", "/api/v1/namespaces/kube-system/services/traefik")
            lb = out["lb"] = ("a" + s["metadata"]["uid"].replace("-", ""))[:32]
            st, cm = e.kube("GET", "/api/v1/namespaces/kube-system/configmaps/ingress-uid")
            cid = out["cid"] = cm["data"]["provider-uid"]
            out["svc"] = e.kubectl("get", "svc", "-n", "kube-system", "traefik")
            out["rule"] = g("forwarding-rules", "describe", lb, f"--region={REGION}", "--format=json")
            out["rules"] = g("forwarding-rules", "list", "--format=value(name,IPAddress,target.basename())")
            out["pool"] = g("target-pools", "describe", lb, f"--region={REGION}", "--format=json")
            out["pools"] = g("target-pools", "list", "--format=value(name,region.basename())")
            out["health"] = g("target-pools", "get-health", lb, f"--region={REGION}", "--format=json")
            out["hc"] = g("http-health-checks", "describe", f"k8s-{cid}-node", "--format=json")
            out["fw"] = g("firewall-rules", "describe", f"k8s-fw-{lb}", "--format=json")
            out["hcfw"] = g("firewall-rules", "describe", f"k8s-{cid}-node-http-hc", "--format=json")
            out["docs"] = {t: e.compute("GET", f"{P}/{p}")[1] for t, p in (
                ("TargetPool", f"regions/{REGION}/targetPools/{lb}"),
                ("TargetPoolAggregatedList", "aggregated/targetPools"),
                ("HttpHealthCheck", f"global/httpHealthChecks/k8s-{cid}-node"),
                ("HttpHealthCheckList", "global/httpHealthChecks"),
                ("ForwardingRule", f"regions/{REGION}/forwardingRules/{lb}"))}
            out["delete"] = e.kubectl("delete", "-n", "kube-system", "svc", "traefik")
            out["after"] = {c: g(c, "list", "--format=value(name)",
                                 f"--filter=name~'^({lb}|k8s-{cid}-node)$'")
                            for c in ("forwarding-rules", "target-pools", "http-health-checks")}
            out["fw-after"] = g("firewall-rules", "list", "--format=value(name)")
            out["address-after"] = g("addresses", "describe", "traefik-ip", f"--region={REGION}",
                                     "--format=value(status)")
            return out

        def apis():
            return {
                "hc": g("http-health-checks", "create", "hc1", "--port=8080", "--request-path=/ready",
                        "--check-interval=10s", "--timeout=2s"),
                "hc-update": g("http-health-checks", "update", "hc1", "--port=8081"),
                "hc-describe": g("http-health-checks", "describe", "hc1", "--format=json"),
                "hc-bad": g("http-health-checks", "create", "hc2", "--check-interval=2s", "--timeout=5s"),
                "tp": g("target-pools", "create", "tp1", f"--region={REGION}", "--http-health-check=hc1",
                        "--session-affinity=CLIENT_IP"),
                "add": g("target-pools", "add-instances", "tp1", f"--region={REGION}",
                         "--instances=demo-worker-0,demo-worker-1", f"--instances-zone={ZONE}"),
                "remove": g("target-pools", "remove-instances", "tp1", f"--region={REGION}",
                            "--instances=demo-worker-1", f"--instances-zone={ZONE}"),
                "tp-describe": g("target-pools", "describe", "tp1", f"--region={REGION}", "--format=json"),
                "addr": g("addresses", "create", "std", f"--region={REGION}", "--network-tier=STANDARD"),
                "fr-wrong-tier": g("forwarding-rules", "create", "fr-premium", f"--region={REGION}",
                                   "--target-pool=tp1", "--ports=80", "--address=std",
                                   "--network-tier=PREMIUM"),
                "fr": g("forwarding-rules", "create", "fr1", f"--region={REGION}", "--target-pool=tp1",
                        "--ports=80", "--address=std", "--network-tier=STANDARD"),
                "fr-describe": g("forwarding-rules", "describe", "fr1", f"--region={REGION}", "--format=json"),
                "hc-in-use": g("http-health-checks", "delete", "hc1", "--quiet"),
                "tp-in-use": g("target-pools", "delete", "tp1", f"--region={REGION}", "--quiet"),
                "fr-delete": g("forwarding-rules", "delete", "fr1", f"--region={REGION}", "--quiet"),
                "tp-delete": g("target-pools", "delete", "tp1", f"--region={REGION}", "--quiet"),
                "hc-delete": g("http-health-checks", "delete", "hc1", "--quiet"),
                "std-global": g("addresses", "create", "std-global", "--global", "--network-tier=STANDARD"),
            }

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            f1, f2 = pool.submit(ccm), pool.submit(apis)
            cls.ccm, cls.apis = f1.result(), f2.result()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ok(self, res):
        rc, out, err = res
        self.assertEqual(rc, 0, err)
        return out

    def failed(self, res, *words):
        rc, out, err = res
        self.assertNotEqual(rc, 0, out)
        for w in words:
            self.assertIn(w, err)

    def test_the_note_example_as_gcloud_sees_it(self):
        c = self.ccm
        ip, lb, cid = c["ip"], c["lb"], c["cid"]
        self.assertEqual(c["apply"].returncode, 0, c["apply"].stderr)
        self.assertRegex(c["svc"].stdout, rf"traefik\s+LoadBalancer\s+\S+\s+{ip}\s+80:")
        rule = json.loads(self.ok(c["rule"]))
        self.assertEqual((rule["IPAddress"], rule["portRange"], rule["IPProtocol"]), (ip, "80-80", "TCP"))
        self.assertIn(f"{lb}\t{ip}\t{lb}", self.ok(c["rules"]))
        pool = json.loads(self.ok(c["pool"]))
        self.assertEqual(sorted(u.rsplit("/", 1)[1] for u in pool["instances"]),
                         ["demo-worker-0", "demo-worker-1"])
        self.assertIn(f"{lb}\t{REGION}", self.ok(c["pools"]))
        health = json.loads(self.ok(c["health"]))
        states = sorted((h["healthStatus"][0]["instance"].rsplit("/", 1)[1], h["healthStatus"][0]["healthState"],
                         h["healthStatus"][0]["ipAddress"]) for h in health)
        self.assertEqual(states, [("demo-worker-0", "HEALTHY", ip), ("demo-worker-1", "HEALTHY", ip)])
        hc = json.loads(self.ok(c["hc"]))
        self.assertEqual((hc["port"], hc["requestPath"], hc["checkIntervalSec"], hc["timeoutSec"]),
                         (10256, "/healthz", 8, 1))
        fw = json.loads(self.ok(c["fw"]))
        self.assertEqual((fw["allowed"], fw["targetTags"]), ([{"IPProtocol": "tcp", "ports": ["80"]}],
                                                             ["demo-worker"]))
        self.ok(c["hcfw"])
        self.assertEqual(c["delete"].returncode, 0, c["delete"].stderr)
        for coll, res in c["after"].items():
            self.assertEqual(self.ok(res).strip(), "", coll)
        self.assertNotIn(lb, self.ok(c["fw-after"]))
        self.assertEqual(self.ok(c["address-after"]).strip(), "RESERVED")

    @unittest.skipUnless(os.path.exists(VALIDATE) and os.path.exists(SDK_PYTHON),
                         "gce-validate.py or the Cloud SDK's python is not installed")
    def test_documents_validate(self):
        for type_name, doc in self.ccm["docs"].items():
            with self.subTest(type_name):
                r = subprocess.run([SDK_PYTHON, VALIDATE, type_name, "-"], input=json.dumps(doc).encode(),
                                   capture_output=True, timeout=60)
                self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())

    def test_http_health_checks(self):
        a = self.apis
        self.ok(a["hc"])
        self.ok(a["hc-update"])
        hc = json.loads(self.ok(a["hc-describe"]))
        self.assertEqual((hc["port"], hc["requestPath"], hc["checkIntervalSec"], hc["timeoutSec"],
                          hc["healthyThreshold"], hc["unhealthyThreshold"]), (8081, "/ready", 10, 2, 2, 2))
        self.failed(a["hc-bad"], "timeoutSec")
        self.failed(a["hc-in-use"], "being used by")
        self.ok(a["hc-delete"])

    def test_target_pools(self):
        a = self.apis
        self.ok(a["tp"])
        self.ok(a["add"])
        self.ok(a["remove"])
        tp = json.loads(self.ok(a["tp-describe"]))
        self.assertEqual(tp["sessionAffinity"], "CLIENT_IP")
        self.assertEqual([u.rsplit("/", 1)[1] for u in tp["instances"]], ["demo-worker-0"])
        self.assertTrue(tp["healthChecks"][0].endswith("/global/httpHealthChecks/hc1"))
        self.failed(a["tp-in-use"], "being used by")
        self.ok(a["fr-delete"])
        self.ok(a["tp-delete"])

    def test_network_tiers(self):
        a = self.apis
        self.ok(a["addr"])
        self.failed(a["fr-wrong-tier"], "network tier")
        fr = json.loads(self.ok(a["fr-describe"]))
        self.assertEqual((fr["networkTier"], fr["portRange"]), ("STANDARD", "80-80"))
        self.failed(a["std-global"], "PREMIUM")


if __name__ == "__main__":
    unittest.main()
