"""talos-gcp doctor --live on Services and what publishes them: a LoadBalancer Service that
stays pending (with the CCM's last failure), a loadBalancerIP that is not reserved, the
ingress health check off the Service's node port (and fixed by expose), a LoadBalancer
port no firewall lets in, and a loadBalancerIP with no cloud controller manager. The cluster
is made by `talos-gcp up`, the load balancers by the emulated CCM."""
import json
import shutil
import subprocess
import tempfile
import unittest

from cluster import talos_gcp
from emu import TALOS_GCP, Emu
from provision import Prov

FAST = ["--kubelet-delay", "50ms", "--ccm-delay", "20ms", "--ccm-retry-delay", "100ms"]
P = "projects/demo-project"


class DoctorServices(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="doctor-svc-")
        cls.emu = Emu(cls.tmp, extra=FAST).start()
        cls.p = Prov(cls.emu, cls.tmp)
        cls.p.write(cls.p.spec(controlPlane={"count": 1, "external": None}))
        r = cls.p.up()
        if r.returncode != 0:
            cls.emu.stop(check=False)
            raise AssertionError(f"up: {r.stderr}")
        for n in ("demo-cp-0", "demo-worker-0", "demo-worker-1"):
            cls.emu.wait_until(lambda: (lambda x: x and x["spec"].get("providerID"))(cls.emu.node(n)),
                               timeout=15, what=f"node {n}")

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def doctor(self, *args):
        rc, out, err = talos_gcp(self.emu, "doctor", "--live", "-o", "json", "--pending-after", "1s",
                                 *args)
        self.assertIn(rc, (0, 1), out + err)
        doc = json.loads(out)
        self.assertEqual([p for p in doc["problems"] if p["error"]], [], err)
        return doc

    def findings(self, rule, doc=None):
        doc = doc or self.doctor()
        return [f["message"] for f in doc["findings"] if f["rule"] == rule]

    def service(self, name, **spec):
        spec.setdefault("ports", [{"port": 80, "targetPort": 8080}])
        st, body = self.emu.kube("POST", "/api/v1/namespaces/default/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
        self.assertEqual(st, 201, body)
        self.addCleanup(self.emu.kube, "DELETE", f"/api/v1/namespaces/default/services/{name}")
        return body

    def ingress(self, name):
        def ip():
            st, s = self.emu.kube("GET", f"/api/v1/namespaces/default/services/{name}")
            ing = s.get("status", {}).get("loadBalancer", {}).get("ingress")
            return ing[0]["ip"] if ing else None
        return self.emu.wait_until(ip, timeout=15, what=f"{name} EXTERNAL-IP")

    def test_pending_names_the_ccm_failure(self):
        self.service("stuck", type="LoadBalancer", loadBalancerIP="34.77.77.77")
        want = 'requested ip "34.77.77.77" is neither static nor assigned to the LB'
        msgs = self.emu.wait_until(
            lambda: [m for m in self.findings("lb-pending") if "default/stuck" in m and want in m],
            timeout=15, what="lb-pending with the CCM's failure")
        self.assertIn("has been pending for", msgs[0])
        self.assertTrue([m for m in self.findings("lb-ip-not-reserved") if "34.77.77.77" in m])
        # A Service that got its address is not pending.
        self.service("fine", type="LoadBalancer")
        self.ingress("fine")
        self.assertFalse([m for m in self.findings("lb-pending") if "default/fine" in m])

    def test_ingress_health_check_off_the_node_port(self):
        self.service("web", type="NodePort", ports=[{"port": 80, "targetPort": 8080, "nodePort": 31500}])
        r = subprocess_run(self.p, "expose", "--service", "default/web")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.findings("ingress-health-check-port"), [])
        # Someone puts the health check back on the old port.
        st, op = self.emu.compute("PATCH", f"{P}/global/healthChecks/demo-ingress",
                                  {"tcpHealthCheck": {"port": 30080}})
        self.assertEqual(st, 200, op)
        self.emu.wait_op(op)
        msgs = self.findings("ingress-health-check-port")
        self.assertEqual(len(msgs), 1, msgs)
        self.assertIn("probes port 30080", msgs[0])
        self.assertIn("node port of Service default/web", msgs[0])
        r = subprocess_run(self.p, "expose", "--service", "default/web")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.findings("ingress-health-check-port"), [])

    def test_firewall_missing_for_a_port(self):
        svc = self.service("open", type="LoadBalancer",
                           ports=[{"name": "http", "port": 80}, {"name": "https", "port": 443}])
        self.ingress("open")
        self.assertFalse([m for m in self.findings("lb-firewall-missing") if "default/open" in m])
        lb = ("a" + svc["metadata"]["uid"].replace("-", ""))[:32]
        st, fw = self.emu.compute("GET", f"{P}/global/firewalls/k8s-fw-{lb}")
        self.assertEqual(st, 200, fw)
        st, op = self.emu.compute("PATCH", f"{P}/global/firewalls/k8s-fw-{lb}",
                                  {"allowed": [{"IPProtocol": "tcp", "ports": ["80"]}]})
        self.assertEqual(st, 200, op)
        self.emu.wait_op(op)
        msgs = [m for m in self.findings("lb-firewall-missing") if "default/open" in m]
        self.assertEqual(len(msgs), 1, msgs)
        self.assertIn("port 443/TCP", msgs[0])

    def test_z_load_balancer_ip_without_ccm(self):
        # (last: the cluster's CCM Deployment goes)
        self.service("needs-ccm", type="LoadBalancer", loadBalancerIP="34.66.66.66")
        self.assertEqual(self.findings("lb-ip-without-ccm"), [])
        st, _ = self.emu.kube("DELETE", "/apis/apps/v1/namespaces/kube-system/deployments/gcp-cloud-controller-manager",
                              {"propagationPolicy": "Background"})
        self.assertEqual(st, 200)
        self.emu.wait_until(lambda: not [p for p in self.emu.kube(
            "GET", "/api/v1/namespaces/kube-system/pods")[1]["items"]
            if p["metadata"]["name"].startswith("gcp-cloud-controller-manager")],
            what="the CCM's pods gone")
        msgs = self.findings("lb-ip-without-ccm")
        self.assertTrue([m for m in msgs if "34.66.66.66" in m and "runs in the cluster" in m], msgs)


def subprocess_run(p, *args):
    env = p.env()
    env["KUBECONFIG"] = p.emu.kubeconfig
    return subprocess.run([TALOS_GCP, *args, "-f", p.path], capture_output=True, text=True,
                          timeout=60, env=env)


if __name__ == "__main__":
    unittest.main()
