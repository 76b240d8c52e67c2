"""talos-gcp render: flags, components, files, and the properties the issue asks of each
rendered file (the doctor's view of them is in test_doctor.py)."""
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from emu import TALOS_GCP

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


# The two values render has no default for.
REQUIRED = ("--project", "my-project-1", "--vip-alias-image", "ghcr.io/example/vip-alias:0.1.0")
HEADER = "--project my-project-1 --vip-alias-image ghcr.io/example/vip-alias:0.1.0"


def run(*args, required=True):
    p = subprocess.run([TALOS_GCP, "render", *(REQUIRED if required else ()), *args],
                       capture_output=True, text=True, timeout=60)
    for m in SANITIZER_MARKERS:
        if m in p.stderr:
            raise AssertionError(f"sanitizer report:\n{p.stderr}")
    return p.returncode, p.stdout, p.stderr


def load_all(text):
    try:
        import yaml
    except ImportError:
        raise unittest.SkipTest("python3-yaml not installed")
    return [d for d in yaml.safe_load_all(text) if d is not None]


class Render(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def only(self, name, *flags):
        rc, out, err = run("--only", name, *flags)
        self.assertEqual(rc, 0, err)
        return out

    def test_out_writes_every_component_and_nothing_else(self):
        rc, out, err = run("--out", os.path.join(self.tmp, "new", "dir"))
        self.assertEqual((rc, out, err), (0, "", ""))
        files = sorted(os.path.relpath(os.path.join(d, f), os.path.join(self.tmp, "new", "dir"))
                       for d, _, fs in os.walk(self.tmp) for f in fs)
        self.assertEqual(files, ["ccm.yaml", "cilium-values.yaml", "talos/controlplane.yaml",
                                 "talos/worker.yaml", "vip-alias.yaml"])
        mode = stat.S_IMODE(os.stat(os.path.join(self.tmp, "new", "dir", "ccm.yaml")).st_mode)
        self.assertEqual(mode, 0o644)
        rc, listing, _ = run("--list")
        self.assertEqual(len(listing.splitlines()), 5)

    def test_deterministic_and_valid_yaml(self):
        a, b = run()[1], run()[1]
        self.assertEqual(a, b)
        self.assertNotRegex(a, r"@[A-Z_]+@")
        docs = load_all(a)
        kinds = sorted(d.get("kind", "-") for d in docs)
        self.assertEqual(kinds, sorted(["-", "-", "-", "DummyLinkConfig", "ServiceAccount", "ClusterRole",
                                        "ClusterRoleBinding", "RoleBinding", "ConfigMap",
                                        "Deployment", "DaemonSet"]))

    def test_talos_patches(self):
        cp, link = load_all(self.only("talos-controlplane", "--vip", "10.0.0.9", "--pod-cidr", "10.64.0.0/14"))
        self.assertEqual(link, {"apiVersion": "v1alpha1", "kind": "DummyLinkConfig", "name": "dummy0",
                                "addresses": [{"address": "10.0.0.9/32"}]})
        old, = load_all(self.only("talos-controlplane", "--vip", "10.0.0.9", "--talos-version", "v1.11"))
        self.assertIn({"interface": "dummy0", "dummy": True, "addresses": ["10.0.0.9/32"]},
                      old["machine"]["network"]["interfaces"])
        m, c = cp["machine"], cp["cluster"]
        self.assertEqual(m["features"]["kubePrism"], {"enabled": True, "port": 7445})
        self.assertEqual(m["kubelet"]["nodeIP"]["validSubnets"], ["10.0.0.0/24", "!10.0.0.9/32"])
        self.assertEqual(c["etcd"]["advertisedSubnets"], ["10.0.0.0/24", "!10.0.0.9/32"])
        self.assertIn("10.0.0.9", c["apiServer"]["certSANs"])
        self.assertEqual(c["controllerManager"]["extraArgs"]["allocate-node-cidrs"], "false")
        self.assertEqual(c["network"]["cni"]["name"], "none")
        self.assertEqual(c["network"]["podSubnets"], ["10.64.0.0/14"])
        self.assertTrue(c["proxy"]["disabled"])
        self.assertTrue(c["externalCloudProvider"]["enabled"])
        self.assertEqual(m["network"]["interfaces"][0]["mtu"], 1460)
        self.assertEqual(m["sysctls"]["net.ipv4.conf.all.rp_filter"], "0")
        worker, = load_all(self.only("talos-worker"))
        self.assertNotIn("controllerManager", worker["cluster"])
        self.assertTrue(worker["machine"]["features"]["kubePrism"]["enabled"])

    def test_ccm(self):
        docs = load_all(self.only("ccm", "--pod-cidr", "10.64.0.0/14", "--project", "my-proj-1"))
        dep = next(d for d in docs if d["kind"] == "Deployment")
        spec = dep["spec"]["template"]["spec"]
        args = spec["containers"][0]["args"]
        for a in ("--allocate-node-cidrs=true", "--cidr-allocator-type=CloudAllocator",
                  "--cluster-cidr=10.64.0.0/14", "--configure-cloud-routes=false",
                  "--leader-elect=true", "--cloud-provider=gce"):
            self.assertIn(a, args)
        keys = {t["key"] for t in spec["tolerations"]}
        self.assertTrue({"node.cloudprovider.kubernetes.io/uninitialized",
                         "node.kubernetes.io/network-unavailable"} <= keys)
        self.assertTrue(spec["hostNetwork"])
        cfg = next(d for d in docs if d["kind"] == "ConfigMap")
        self.assertIn("project-id = my-proj-1", cfg["data"]["gce.conf"])
        self.assertEqual({d["kind"] for d in docs}, {"ServiceAccount", "ClusterRole",
                         "ClusterRoleBinding", "RoleBinding", "ConfigMap", "Deployment"})

    def test_cilium_values(self):
        v, = load_all(self.only("cilium", "--mtu", "8896", "--pod-cidr", "10.64.0.0/14"))
        self.assertEqual(v["ipam"]["mode"], "kubernetes")
        self.assertEqual(v["routingMode"], "native")
        self.assertEqual(v["ipv4NativeRoutingCIDR"], "10.64.0.0/14")
        self.assertEqual((v["k8sServiceHost"], v["k8sServicePort"]), ("localhost", 7445))
        self.assertIs(v["kubeProxyReplacement"], True)
        self.assertEqual(v["MTU"], 8896)
        self.assertIs(v["cgroup"]["autoMount"]["enabled"], False)
        self.assertEqual(v["cgroup"]["hostRoot"], "/sys/fs/cgroup")
        self.assertNotIn("SYS_MODULE", v["securityContext"]["capabilities"]["ciliumAgent"])

    def test_vip_alias(self):
        ds, = load_all(self.only("vip-alias", "--vip", "10.0.0.9"))
        spec = ds["spec"]["template"]["spec"]
        c = spec["containers"][0]
        env = {e["name"]: e["value"] for e in c["env"]}
        self.assertEqual(env["VIP_ALIAS_VIP"], "10.0.0.9/32")
        self.assertEqual(env["VIP_ALIAS_INTERFACE"], "dummy0")
        self.assertTrue(spec["hostNetwork"])
        self.assertEqual(c["securityContext"]["capabilities"], {"add": ["NET_ADMIN"], "drop": ["ALL"]})
        self.assertIs(c["securityContext"]["privileged"], False)
        self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        self.assertEqual(c["livenessProbe"]["httpGet"]["host"], "127.0.0.1")
        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/livez")
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/healthz")
        self.assertIn("node-role.kubernetes.io/control-plane", spec["nodeSelector"])

    def test_header_names_the_flags(self):
        out = self.only("cilium", "--mtu", "1500")
        self.assertTrue(out.startswith("# Generated by talos-gcp render (--project my-project-1 "
                                       "--mtu 1500 --vip-alias-image ghcr.io/example/vip-alias:0.1.0)."), out)
        self.assertIn(f"({HEADER})", self.only("cilium"))

    def test_impossible_values_refused(self):
        """Each value GCP (or the runtime) would refuse later: exit 2, one line, no output."""
        cases = [
            ((), False, "--project: required"),
            (("--project", "my-project-1"), False, "--vip-alias-image: required: the default vip-alias:"),
            (("--vip", "10.0.0.0"), True, "GCP reserves it in 10.0.0.0/24 (the network address)"),
            (("--vip", "10.0.0.1"), True, "(the default gateway)"),
            (("--vip", "10.0.0.254"), True, "(the second-to-last address)"),
            (("--vip", "10.0.0.255"), True, "(the broadcast address)"),
            (("--node-cidr", "10.0.0.2/32", "--vip", "10.0.0.2"), True, "primary range is /29 or larger"),
            (("--nodes", "252"), True, "252 usable addresses, no room for --nodes 252 and the VIP"),
            (("--node-cidr", "10.0.0.0/16", "--nodes", "300"), True,
             "--pod-cidr 172.20.0.0/16: room for 256 nodes' /24 alias ranges, not --nodes 300"),
            (("--region", "us-central9"), True, "--region us-central9: not a Compute Engine region"),
            (("--region", "mars-north1"), True, "not a Compute Engine region"),
            (("--talos-version", "latest"), True, "--talos-version latest"),
            (("--nodes", "0"), True, "--nodes 0"),
        ]
        for args, required, want in cases:
            with self.subTest(args=args):
                rc, out, err = run(*args, "--out", os.path.join(self.tmp, "o"), required=required)
                self.assertEqual(rc, 2, err)
                self.assertEqual(out, "")
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(want, err)
                self.assertFalse(os.path.exists(os.path.join(self.tmp, "o")), "wrote files")
        # The edges that are fine: the last usable address, a full /24, a named image.
        for args in (("--vip", "10.0.0.253"), ("--nodes", "251"),
                     ("--vip-alias-image", "vip-alias:dev")):
            with self.subTest(args=args):
                rc, _, err = run(*args)
                self.assertEqual(rc, 0, err)
        rc, _, err = run("--project", "my-project-1", "--only", "cilium", required=False)
        self.assertEqual(rc, 0, err)  # no vip-alias image needed for Cilium's values

    def test_bad_values_exit_2_with_one_line(self):
        cases = {
            ("--vip", "10.0.0.300"): "--vip 10.0.0.300",
            ("--vip", "10.9.0.2"): "not inside --node-cidr",
            ("--pod-cidr", "172.20.1.0/16"): "host bits",
            ("--service-cidr", "10.0.0.0/16"): "overlaps",
            ("--cluster-name", "Prod"): "--cluster-name Prod",
            ("--mtu", "9001"): "--mtu 9001",
            ("--ccm-image", "a b"): "--ccm-image",
            ("--only", "nope"): "--only nope",
            ("--bogus",): "--bogus",
            ("extra",): "extra",
        }
        for args, want in cases.items():
            with self.subTest(args=args):
                rc, out, err = run(*args)
                self.assertEqual(rc, 2)
                self.assertEqual(out, "")
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(want, err)

    def test_unwritable_out_exits_2(self):
        blocker = os.path.join(self.tmp, "file")
        open(blocker, "w").close()
        rc, _, err = run("--out", os.path.join(blocker, "sub"))
        self.assertEqual(rc, 2)
        self.assertIn("--out", err)
