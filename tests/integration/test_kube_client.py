"""src/kube against talos-gcp-emu's Kubernetes API over HTTPS: kubeconfig (client
certificate, token, CA, insecure-skip-tls-verify, relative paths), in-cluster configuration,
pages, Status errors and preconditions. Driven through tests/tools/kube-get.
"""
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from emu import Emu

KUBE_GET = os.environ.get("KUBE_GET")


def node(name, pod_cidr=None):
    n = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
    if pod_cidr:
        n["spec"] = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
    return json.dumps(n)


@unittest.skipUnless(KUBE_GET, "KUBE_GET (tests/tools/kube-get) not built")
class KubeClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kube-client-")
        cls.sa_dir = os.path.join(cls.tmp, "serviceaccount")
        cls.emu = Emu(cls.tmp, kube=True, extra=["--serviceaccount-out", cls.sa_dir]).start()
        with open(cls.emu.kubeconfig) as f:
            text = f.read()
        # The emulator's own kubeconfig, taken apart with plain regexes (stdlib only).
        cls.ca_b64 = re.search(r"certificate-authority-data: (\S+)", text).group(1)
        cls.cert_b64 = re.search(r"client-certificate-data: (\S+)", text).group(1)
        cls.key_b64 = re.search(r"client-key-data: (\S+)", text).group(1)
        cls.token = re.search(r"token: (\S+)", text).group(1)
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def env(self, **extra):
        KubeClient.n += 1
        home = os.path.join(self.tmp, f"home{KubeClient.n}")
        os.makedirs(home)
        env = {k: v for k, v in os.environ.items()
               if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
                            "TALOS_GCP_SERVICEACCOUNT_DIR", "https_proxy", "HTTPS_PROXY")}
        env["HOME"] = home
        env.update(extra)
        return env

    def kube(self, *args, kubeconfig=None, env=None, cwd=None):
        cmd = [KUBE_GET]
        if kubeconfig is not False:
            cmd += ["--kubeconfig", kubeconfig or self.emu.kubeconfig]
        p = subprocess.run(cmd + list(args), env=env or self.env(), capture_output=True,
                           text=True, timeout=60, cwd=cwd)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args, **kw):
        rc, out, err = self.kube(*args, **kw)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")
        return out

    def kubeconfig(self, name, cluster_extra, user):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: emu\n  cluster:\n"
                    f"    server: {self.emu.kube_url}\n{cluster_extra}"
                    f"users:\n- name: u\n  user:\n{user}"
                    "contexts:\n- name: c\n  context: {cluster: emu, user: u}\n"
                    "current-context: c\n")
        os.chmod(path, 0o600)
        return path

    def cert_user(self):
        return (f"    client-certificate-data: {self.cert_b64}\n"
                f"    client-key-data: {self.key_b64}\n")

    # --- authentication and TLS ---
    def test_client_certificate_and_pages(self):
        for i in range(3):
            self.ok("create", "/api/v1/nodes", node(f"page-{i}"))
        out = self.ok("--limit", "1", "list", "/api/v1/nodes")
        names = re.search(r"names=(\S*)", out).group(1).split(",")
        pages = [n for n in names if n.startswith("page-")]
        self.assertEqual(pages, ["page-0", "page-1", "page-2"])
        # One request per item with limit=1: the continue token was followed.
        requests = int(re.search(r"requests=(\d+)", out).group(1))
        self.assertEqual(requests, len(names))
        self.assertRegex(out, r"resourceVersion=\d+")

    def test_token_context(self):
        self.ok("create", "/api/v1/nodes", node("tok-1"))
        out = self.ok("--context", "emu-token", "get", "/api/v1/nodes/tok-1")
        self.assertEqual(json.loads(out.splitlines()[0])["metadata"]["name"], "tok-1")

    def test_bad_token_is_refused(self):
        kc = self.kubeconfig("bad-token", f"    certificate-authority-data: {self.ca_b64}\n",
                             "    token: not-a-token\n")
        rc, out, err = self.kube("list", "/api/v1/nodes", kubeconfig=kc)
        self.assertEqual(rc, 1)
        self.assertTrue(err.startswith("kube-get: EACCES: "), err)
        self.assertIn("401", err)

    def test_in_cluster(self):
        host, port = self.emu.kube_url.split("//", 1)[1].rsplit(":", 1)
        env = self.env(KUBERNETES_SERVICE_HOST=host, KUBERNETES_SERVICE_PORT=port,
                       TALOS_GCP_SERVICEACCOUNT_DIR=self.sa_dir)
        self.ok("create", "/api/v1/nodes", node("ic-1"))
        out = self.ok("get", "/api/v1/nodes/ic-1", kubeconfig=False, env=env)
        self.assertIn('"ic-1"', out)
        # A kubeconfig, when there is one, comes before the service account.
        kc = self.kubeconfig("not-in-cluster", "    certificate-authority-data: AAAA\n",
                             self.cert_user())
        rc, out, err = self.kube("get", "/api/v1/nodes/ic-1", kubeconfig=False,
                                 env=dict(env, KUBECONFIG=kc))
        self.assertEqual(rc, 1)
        self.assertIn("kube-get: EPROTO: ", err)

    def test_ca_is_verified(self):
        other = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", os.devnull, "-subj", "/CN=other", "-days", "1"],
            capture_output=True, text=True, check=True).stdout
        kc = self.kubeconfig("other-ca", "    certificate-authority-data: "
                             + base64.b64encode(other.encode()).decode() + "\n", self.cert_user())
        rc, out, err = self.kube("list", "/api/v1/nodes", kubeconfig=kc)
        self.assertEqual(rc, 1)
        self.assertTrue(err.startswith("kube-get: EPROTO: GET " + self.emu.kube_url), err)

    def test_insecure_only_when_the_file_says_so(self):
        # No CA at all: the system store does not know the emulator's CA.
        kc = self.kubeconfig("no-ca", "", self.cert_user())
        rc, out, err = self.kube("list", "/api/v1/nodes", kubeconfig=kc)
        self.assertEqual(rc, 1)
        self.assertIn("EPROTO", err)
        kc = self.kubeconfig("insecure", "    insecure-skip-tls-verify: true\n", self.cert_user())
        rc, out, err = self.kube("list", "/api/v1/nodes", kubeconfig=kc)
        self.assertEqual(rc, 0, err)
        self.assertIn("TLS certificate verification is off", err)

    def test_relative_paths(self):
        d = os.path.join(self.tmp, "rel")
        os.makedirs(os.path.join(d, "pki"))
        for name, b64 in (("ca.crt", self.ca_b64), ("client.crt", self.cert_b64),
                          ("client.key", self.key_b64)):
            with open(os.path.join(d, "pki", name), "wb") as f:
                f.write(base64.b64decode(b64))
        with open(os.path.join(d, "token"), "w") as f:
            f.write(self.token + "\n")
        kc = os.path.join(d, "config")
        with open(kc, "w") as f:
            f.write("clusters:\n- name: emu\n  cluster:\n"
                    f"    server: {self.emu.kube_url}\n    certificate-authority: pki/ca.crt\n"
                    "users:\n- name: cert\n  user:\n    client-certificate: pki/client.crt\n"
                    "    client-key: pki/client.key\n- name: tok\n  user:\n    tokenFile: token\n"
                    "contexts:\n- {name: cert, context: {cluster: emu, user: cert}}\n"
                    "- {name: tok, context: {cluster: emu, user: tok}}\n"
                    "current-context: cert\n")
        self.ok("list", "/api/v1/nodes", kubeconfig=kc, cwd="/")
        self.ok("--context", "tok", "list", "/api/v1/nodes", kubeconfig=kc, cwd="/")

    # --- errors ---
    def test_malformed_kubeconfig(self):
        bad = os.path.join(self.tmp, "bad-kubeconfig")
        with open(bad, "w") as f:
            f.write("clusters:\n- name: emu\n  cluster:\n    server: https://127.0.0.1:1\n"
                    "    certificate-authority-data: not*base64\n")
        rc, out, err = self.kube("list", "/api/v1/nodes", kubeconfig=bad)
        self.assertEqual(rc, 2)
        self.assertEqual(err, f"kube-get: EINVAL: {bad}:5:33: clusters[emu].cluster."
                              "certificate-authority-data: invalid base64\n")
        rc, out, err = self.kube("--context", "nope", "list", "/api/v1/nodes")
        self.assertEqual(rc, 2)
        self.assertIn('context "nope" not found', err)

    def test_status_errors(self):
        rc, out, err = self.kube("get", "/api/v1/nodes/absent")
        self.assertEqual(rc, 1)
        self.assertTrue(err.startswith('kube-get: ENOENT: nodes "absent" not found (404 NotFound; '
                                       f"GET {self.emu.kube_url}/api/v1/nodes/absent)"), err)
        self.ok("create", "/api/v1/nodes", node("dup-1"))
        rc, out, err = self.kube("create", "/api/v1/nodes", node("dup-1"))
        self.assertEqual(rc, 1)
        self.assertIn("kube-get: EEXIST: ", err)

    def test_pod_cidr_is_immutable(self):
        self.ok("create", "/api/v1/nodes", node("imm-1", "10.64.1.0/24"))
        rc, out, err = self.kube("patch-merge", "/api/v1/nodes/imm-1",
                                 json.dumps({"spec": {"podCIDR": "10.64.2.0/24"}}))
        self.assertEqual(rc, 1)
        self.assertTrue(err.startswith("kube-get: EINVAL: "), err)
        self.assertIn("spec.podCIDR", err)
        self.assertIn("422", err)
        out = self.ok("patch-strategic", "/api/v1/nodes/imm-1",
                      json.dumps({"metadata": {"labels": {"a": "b"}}}))
        self.assertEqual(json.loads(out.splitlines()[0])["metadata"]["labels"]["a"], "b")

    def test_delete_preconditions(self):
        out = self.ok("create", "/api/v1/nodes", node("del-1"))
        uid = json.loads(out.splitlines()[0])["metadata"]["uid"]
        rc, out, err = self.kube("--uid", "00000000-0000-0000-0000-000000000000", "delete",
                                 "/api/v1/nodes/del-1")
        self.assertEqual(rc, 1)
        self.assertIn("kube-get: ESTALE: ", err)
        self.ok("get", "/api/v1/nodes/del-1")
        self.ok("--uid", uid, "delete", "/api/v1/nodes/del-1")
        rc, out, err = self.kube("get", "/api/v1/nodes/del-1")
        self.assertEqual(rc, 1)
        self.assertIn("ENOENT", err)


if __name__ == "__main__":
    unittest.main()
