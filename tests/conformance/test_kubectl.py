"""kubectl, a client nobody here wrote, against the emulated cluster's Kubernetes API.

The commands of the design note (`kubectl get node N -o jsonpath='{.spec.podCIDR}'`), the
list and watch commands, create/patch/cordon/delete as an operator types them, the errors
kubectl prints from Status objects, `apply` of the kinds `talos-gcp render` produces (dry
run and for real), both authentication paths of the written kubeconfig, and a core set of
commands with every installed kubectl version (1.27-1.33)."""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from emu import Emu, kubectl_path, kubectl_versions

NODE_YAML = """apiVersion: v1
kind: Node
metadata:
  name: {name}
  labels:
    node-role.kubernetes.io/control-plane: ""
spec:
  providerID: gce://demo-project/us-central1-a/{name}
  podCIDR: {cidr}
status:
  addresses:
  - type: InternalIP
    address: 10.0.0.{ip}
  conditions:
  - type: Ready
    status: "True"
    reason: KubeletReady
    message: kubelet is posting ready status
  nodeInfo:
    kubeletVersion: v1.33.1
    osImage: Talos (v1.10.3)
    kernelVersion: 6.12.31-talos
    containerRuntimeVersion: containerd://2.0.5
"""

RENDERED = """apiVersion: v1
kind: Namespace
metadata:
  name: talos-gcp
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: talos-gcp
  namespace: talos-gcp
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: talos-gcp
rules:
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get", "list", "watch", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: talos-gcp
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: talos-gcp}
subjects:
- {kind: ServiceAccount, name: talos-gcp, namespace: talos-gcp}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: leader
  namespace: talos-gcp
rules:
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: leader
  namespace: talos-gcp
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: leader}
subjects:
- {kind: ServiceAccount, name: talos-gcp, namespace: talos-gcp}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cloud-config
  namespace: talos-gcp
data:
  cloud.config: "[global]\\nproject-id = demo-project\\n"
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: talos-gcp
type: Opaque
stringData:
  key.json: "{}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: talos-gcp-watch
  namespace: talos-gcp
spec:
  replicas: 1
  selector: {matchLabels: {app: talos-gcp-watch}}
  template:
    metadata: {labels: {app: talos-gcp-watch}}
    spec:
      serviceAccountName: talos-gcp
      containers:
      - name: watch
        image: ghcr.io/example/talos-gcp:0.1.0
        args: ["watch"]
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: vip-alias
  namespace: talos-gcp
spec:
  selector: {matchLabels: {app: vip-alias}}
  template:
    metadata: {labels: {app: vip-alias}}
    spec:
      hostNetwork: true
      nodeSelector: {node-role.kubernetes.io/control-plane: ""}
      containers:
      - name: vip-alias
        image: ghcr.io/example/vip-alias:0.1.0
        securityContext: {capabilities: {add: ["NET_ADMIN"]}}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: talos-gcp
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
"""


def node_json(name, cidr, ip):
    """NODE_YAML as JSON, for nodes created through the API (no YAML parser in the stdlib)."""
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"providerID": f"gce://demo-project/us-central1-a/{name}", "podCIDR": cidr},
            "status": {"addresses": [{"type": "InternalIP", "address": f"10.0.0.{ip}"}],
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "message": "kubelet is posting ready status"}],
                       "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Talos (v1.10.3)",
                                    "kernelVersion": "6.12.31-talos",
                                    "containerRuntimeVersion": "containerd://2.0.5"}}}


def cols(line):
    """Header cells of kubectl's table output (columns are separated by 2+ spaces)."""
    import re
    return re.split(r"\s{2,}", line.strip())


class KubectlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not kubectl_path():
            raise unittest.SkipTest("kubectl not installed")
        cls.tmp = tempfile.mkdtemp(prefix="emu-kubectl-")
        cls.emu = Emu(cls.tmp, ccm="off").start()
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def k(self, *args, ok=True, **kw):
        r = self.emu.kubectl(*args, **kw)
        if ok:
            self.assertEqual(r.returncode, 0, f"kubectl {' '.join(args)}: {r.stderr}")
        return r

    def new_node(self, name, cidr=None, version=None, kubectl=True):
        """A Node from NODE_YAML: with `kubectl create -f` (checked), or through the API."""
        KubectlTest.n += 1
        text = NODE_YAML.format(name=name, cidr=cidr or f"172.20.{self.n}.0/24", ip=self.n + 10)
        path = os.path.join(self.tmp, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(text)
        if kubectl:
            r = self.k("create", "-f", path, version=version)
            self.assertEqual(r.stdout.strip(), f"node/{name} created")
        else:
            status, body = self.emu.kube("POST", "/api/v1/nodes", node_json(name, cidr or f"172.20.{self.n}.0/24", self.n + 10))
            self.assertEqual(status, 201, body)
        return path

    def test_get_nodes_table(self):
        self.new_node("tbl-a", "172.20.200.0/24")
        r = self.k("get", "nodes")
        lines = r.stdout.splitlines()
        self.assertEqual(cols(lines[0]), ["NAME", "STATUS", "ROLES", "AGE", "VERSION"])
        row = [cols(l) for l in lines[1:] if l.startswith("tbl-a ")][0]
        self.assertEqual(row[:3], ["tbl-a", "Ready", "control-plane"])
        self.assertEqual(row[4], "v1.33.1")
        r = self.k("get", "nodes", "-o", "wide")
        lines = r.stdout.splitlines()
        self.assertEqual(cols(lines[0]), ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP",
                                          "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"])
        row = [cols(l) for l in lines[1:] if l.startswith("tbl-a ")][0]
        self.assertEqual(row[6:], ["<none>", "Talos (v1.10.3)", "6.12.31-talos", "containerd://2.0.5"])

    def test_jsonpath_podcidr_and_json(self):
        self.new_node("jp-a", "172.20.201.0/24", kubectl=False)
        r = self.k("get", "node", "jp-a", "-o", "jsonpath={.spec.podCIDR}")
        self.assertEqual(r.stdout, "172.20.201.0/24")
        r = self.k("get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name} {.spec.podCIDR}{\"\\n\"}{end}")
        self.assertIn("jp-a 172.20.201.0/24\n", r.stdout)

    def test_create_twice_and_not_found(self):
        path = self.new_node("dup-a")
        r = self.k("create", "-f", path, ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.strip(),
                         f'Error from server (AlreadyExists): error when creating "{path}": nodes "dup-a" already exists')
        r = self.k("get", "node", "nosuch", ok=False)
        self.assertEqual(r.stderr.strip(), 'Error from server (NotFound): nodes "nosuch" not found')

    def test_patch_podcidr_is_refused(self):
        self.new_node("imm-k", "172.20.202.0/24", kubectl=False)
        r = self.k("patch", "node", "imm-k", "-p", '{"spec":{"podCIDR":"172.20.99.0/24"}}', ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.strip(), 'The Node "imm-k" is invalid: spec.podCIDRs: Forbidden: '
                         'node updates may not change podCIDR except from "" to valid')
        r = self.k("get", "node", "imm-k", "-o", "jsonpath={.spec.podCIDR}")
        self.assertEqual(r.stdout, "172.20.202.0/24")

    def test_cordon_uncordon(self):
        self.new_node("cord-a", kubectl=False)
        self.assertEqual(self.k("cordon", "cord-a").stdout.strip(), "node/cord-a cordoned")
        self.assertIn("Ready,SchedulingDisabled", self.k("get", "node", "cord-a").stdout)
        self.assertEqual(self.k("cordon", "cord-a").stdout.strip(), "node/cord-a already cordoned")
        self.assertEqual(self.k("uncordon", "cord-a").stdout.strip(), "node/cord-a uncordoned")
        self.assertNotIn("SchedulingDisabled", self.k("get", "node", "cord-a").stdout)

    def test_delete_waits_until_gone(self):
        self.new_node("del-k", kubectl=False)
        t0 = time.monotonic()
        r = self.k("delete", "node", "del-k", timeout=30)
        self.assertEqual(r.stdout.strip(), 'node "del-k" deleted')
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(self.k("get", "node", "del-k", ok=False).returncode, 1)

    def test_labels_selectors_chunks(self):
        for i in range(5):
            self.new_node(f"chunk-{i}", kubectl=False)
        self.k("label", "node", "chunk-1", "chunk-3", "tier=gold")
        r = self.k("get", "nodes", "-l", "tier=gold", "-o", "name")
        self.assertEqual(r.stdout.split(), ["node/chunk-1", "node/chunk-3"])
        r = self.k("get", "nodes", "--chunk-size=2", "-o", "name")
        names = [l for l in r.stdout.split() if l.startswith("node/chunk-")]
        self.assertEqual(names, [f"node/chunk-{i}" for i in range(5)])
        r = self.k("get", "nodes", "--field-selector", "metadata.name=chunk-4", "-o", "name")
        self.assertEqual(r.stdout.split(), ["node/chunk-4"])

    def test_watch(self):
        self.new_node("watched-a", kubectl=False)
        exe = kubectl_path()
        p = subprocess.Popen([exe, "--kubeconfig", self.emu.kubeconfig, "--cache-dir",
                              os.path.join(self.tmp, "kube-cache"), "get", "node", "watched-a", "-w",
                              "-o", "jsonpath={.metadata.name} {.metadata.labels.seen}{\"\\n\"}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, HOME=self.tmp))
        try:
            import select
            out = ""

            def read_until(pred, timeout=15):
                nonlocal out
                deadline = time.monotonic() + timeout
                while not pred(out) and time.monotonic() < deadline:
                    if select.select([p.stdout], [], [], 0.2)[0]:
                        out += os.read(p.stdout.fileno(), 4096).decode()
                return pred(out)

            # The list comes first; the watch starts from its resourceVersion: nothing is lost.
            self.assertTrue(read_until(lambda o: "watched-a \n" in o), out)
            self.k("label", "node", "watched-a", "seen=yes")
            self.assertTrue(read_until(lambda o: "watched-a yes\n" in o), out)
        finally:
            p.terminate()
            p.wait(timeout=5)

    def test_apply_rendered_kinds(self):
        r = self.k("apply", "--dry-run=client", "-f", "-", input=RENDERED)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 11, r.stdout)
        self.assertTrue(all(l.endswith("created (dry run)") for l in lines), r.stdout)
        r = self.k("apply", "--dry-run=server", "-f", "-", input=RENDERED.split("---")[0])
        self.assertIn("namespace/talos-gcp created (server dry run)", r.stdout)
        r = self.k("apply", "-f", "-", input=RENDERED)
        self.assertEqual(r.stdout.count(" created"), 11, r.stdout)
        r = self.k("apply", "-f", "-", input=RENDERED)
        # The API server writes stringData into data, so kubectl's three-way patch always
        # carries stringData again: a Secret applied with stringData is "configured" every
        # time on a real cluster too (kubernetes/kubernetes#87736).
        self.assertEqual(r.stdout.count(" unchanged"), 10, r.stdout)
        self.assertIn("secret/creds configured", r.stdout)
        r = self.k("get", "secret", "creds", "-n", "talos-gcp", "-o", "jsonpath={.data.key\\.json} {.stringData} {.type}")
        self.assertEqual(r.stdout, "e30=  Opaque")
        r = self.k("get", "deploy,ds,svc,cm,secret,sa,role,rolebinding", "-n", "talos-gcp", "-o", "name")
        for want in ("deployment.apps/talos-gcp-watch", "daemonset.apps/vip-alias", "service/web",
                     "configmap/cloud-config", "secret/creds", "serviceaccount/talos-gcp",
                     "role.rbac.authorization.k8s.io/leader", "rolebinding.rbac.authorization.k8s.io/leader"):
            self.assertIn(want, r.stdout.split())
        r = self.k("get", "svc", "web", "-n", "talos-gcp")
        self.assertRegex(r.stdout, r"web\s+NodePort\s+10\.\d+\.\d+\.\d+\s+<none>\s+80:3\d{4}/TCP")
        changed = RENDERED.replace("replicas: 1", "replicas: 2")
        r = self.k("apply", "-f", "-", input=changed)
        self.assertIn("deployment.apps/talos-gcp-watch configured", r.stdout)
        r = self.k("get", "deploy", "talos-gcp-watch", "-n", "talos-gcp", "-o",
                   "jsonpath={.spec.replicas} {.metadata.generation}")
        self.assertEqual(r.stdout, "2 2")
        r = self.k("delete", "-f", "-", input=RENDERED, timeout=60)
        self.assertIn('namespace "talos-gcp" deleted', r.stdout)
        self.assertEqual(self.k("get", "ns", "talos-gcp", ok=False).returncode, 1)

    def test_auth_both_contexts(self):
        for ctx in (None, "emu-token"):
            r = self.k("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", context=ctx)
            self.assertEqual(r.stdout, "admin", ctx)
            r = self.k("get", "nodes", "-o", "name", context=ctx)
        self.assertEqual(self.k("auth", "can-i", "delete", "nodes").stdout.strip(), "yes")

    def test_api_resources_and_version(self):
        r = self.k("api-resources")
        rows = [cols(l) for l in r.stdout.splitlines()]
        self.assertIn(["nodes", "no", "v1", "false", "Node"], rows)
        self.assertIn(["deployments", "deploy", "apps/v1", "true", "Deployment"], rows)
        self.assertIn(["leases", "coordination.k8s.io/v1", "true", "Lease"], rows)
        r = self.k("version", "-o", "json")
        self.assertIn('"serverVersion"', r.stdout)

    def test_every_kubectl_version(self):
        versions = kubectl_versions()
        if not versions:
            self.skipTest("no versioned kubectl binaries under " + os.path.dirname(kubectl_path() or "."))
        for v in versions:
            with self.subTest(kubectl=v):
                name = "ver-" + v.replace(".", "-")
                edge = v in (versions[0], versions[-1])
                self.new_node(name, version=v, kubectl=edge)
                r = self.k("get", "nodes", name, "-o", "wide", version=v)
                self.assertEqual(cols(r.stdout.splitlines()[0])[:6],
                                 ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"])
                r = self.k("patch", "node", name, "-p", '{"spec":{"podCIDR":"10.9.9.0/24"}}', ok=False,
                           version=v)
                self.assertIn("spec.podCIDRs: Forbidden", r.stderr)
                # create -f, cordon and delete (which waits for the 404): oldest and newest.
                if edge:
                    self.assertIn("cordoned", self.k("cordon", name, version=v).stdout)
                    r = self.k("delete", "node", name, version=v)
                    self.assertEqual(r.stdout.strip(), f'node "{name}" deleted')


class KubectlClusterTest(unittest.TestCase):
    """The design note's commands on a cluster built through the Compute API."""

    @classmethod
    def setUpClass(cls):
        if not kubectl_path():
            raise unittest.SkipTest("kubectl not installed")
        cls.tmp = tempfile.mkdtemp(prefix="emu-kubectl-cluster-")
        cls.emu = Emu(cls.tmp, ccm="range", extra=["--kubelet-delay", "50ms", "--ccm-delay", "20ms"]).start()
        cls.emu.create_network()
        cls.emu.create_subnet()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_design_note_commands(self):
        names = ["talos-cp-0", "talos-worker-0"]
        for n in names:
            self.emu.create_instance(n)
        for n in names:
            self.emu.wait_until(lambda: (self.emu.node(n) or {}).get("spec", {}).get("podCIDR"),
                                what=f"{n} podCIDR")
        for n in names:
            r = self.emu.kubectl("get", "node", n, "-o", "jsonpath={.spec.podCIDR}")
            self.assertEqual(r.returncode, 0, r.stderr)
            alias = self.emu.get_instance(n)["networkInterfaces"][0]["aliasIpRanges"][0]["ipCidrRange"]
            # RangeAllocator: the split-brain of the note, visible with its own commands.
            self.assertRegex(r.stdout, r"^172\.2[0-3]\.\d+\.0/24$")
            self.assertNotEqual(r.stdout, alias)
        r = self.emu.kubectl("get", "nodes", "-o", "wide")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"talos-cp-0\s+Ready\s+control-plane")
        r = self.emu.kubectl("-n", "kube-system", "get", "deployment", "gcp-cloud-controller-manager",
                             "-o", "jsonpath={.spec.template.spec.containers[0].args}")
        self.assertIn("--cidr-allocator-type=RangeAllocator", r.stdout)
        r = self.emu.kubectl("-n", "kube-system", "get", "pod", "kube-controller-manager-talos-cp-0",
                             "-o", "jsonpath={.spec.containers[0].args}")
        self.assertIn("--allocate-node-cidrs=false", r.stdout)

    def test_events_visible(self):
        self.emu.create_instance("talos-ev-0")
        self.emu.wait_until(lambda: self.emu.node("talos-ev-0"), what="talos-ev-0")
        r = self.emu.kubectl("get", "events")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(cols(r.stdout.splitlines()[0]), ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"])
        self.assertRegex(r.stdout, r"Normal\s+RegisteredNode\s+node/talos-ev-0")


class KubectlCloudEventsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not kubectl_path():
            raise unittest.SkipTest("kubectl not installed")
        cls.tmp = tempfile.mkdtemp(prefix="emu-kubectl-events-")
        cls.emu = Emu(cls.tmp, ccm="cloud", extra=["--kubelet-delay", "50ms", "--ccm-delay", "20ms"]).start()
        cls.emu.create_network()
        cls.emu.create_subnet()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_cidr_events(self):
        self.emu.create_instance("talos-na", alias=None)
        status, _ = self.emu.kube("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "talos-other"},
            "spec": {"providerID": "gce://demo-project/us-central1-a/talos-other", "podCIDR": "172.23.9.0/24"}})
        self.assertEqual(status, 201)
        self.emu.create_instance("talos-other")

        def seen():
            r = self.emu.kubectl("get", "events", "--field-selector", "type=Normal")
            return r.stdout if ("CIDRNotAvailable" in r.stdout and "CIDRAssignmentFailed" in r.stdout) else None
        out = self.emu.wait_until(seen, timeout=15, interval=0.3, what="CIDR events")
        self.assertRegex(out, r"Normal\s+CIDRNotAvailable\s+node/talos-na\s+Node talos-na status is now: CIDRNotAvailable")
        self.assertRegex(out, r"Normal\s+CIDRAssignmentFailed\s+node/talos-other\s+"
                              r"Node talos-other status is now: CIDRAssignmentFailed")


CM_SSA = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
data:
{data}"""

DEPLOY_SSA = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
{containers}"""


def normalized(obj):
    """What a create's body made of an object: without what the server sets per object (ids,
    times, allocations) and what the emulated controllers write afterwards (status, their
    managedFields entries), which depends on when they ran."""
    meta = obj["metadata"]
    for k in ("uid", "resourceVersion", "creationTimestamp", "namespace", "generation"):
        meta.pop(k, None)
    meta["managedFields"] = [dict(m, time=None) for m in meta.get("managedFields", [])
                             if m["manager"] == "kubectl-create"]
    obj.pop("status", None)
    spec = obj.get("spec", {})
    if obj["kind"] == "Service":
        for k in ("clusterIP", "clusterIPs"):
            spec.pop(k, None)
    return obj


class KubectlFidelityTest(unittest.TestCase):
    """Issue 8's Kubernetes fidelity as kubectl 1.27-1.33 meet it: server dry runs, server-side
    apply, Endpoints and EndpointSlices, healthCheckNodePort, protobuf bodies, size limits."""

    @classmethod
    def setUpClass(cls):
        if not kubectl_path():
            raise unittest.SkipTest("kubectl not installed")
        cls.tmp = tempfile.mkdtemp(prefix="emu-kubectl-fidelity-")
        cls.emu = Emu(cls.tmp, ccm="off").start()
        cls.versions = kubectl_versions() or [None]

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def k(self, *args, ok=True, **kw):
        r = self.emu.kubectl(*args, **kw)
        if ok:
            self.assertEqual(r.returncode, 0, f"kubectl {' '.join(args)}: {r.stderr}")
        return r

    def get(self, *args, **kw):
        import json
        return json.loads(self.k("get", *args, "-o", "json", **kw).stdout)

    def test_delete_dry_run_server_keeps_the_object(self):
        for v in self.versions:
            with self.subTest(kubectl=v):
                name = "dry-" + (v or "x").replace(".", "-")
                self.k("create", "configmap", name, "--from-literal=a=b", version=v)
                r = self.k("delete", "configmap", name, "--dry-run=server", version=v)
                self.assertEqual(r.stdout.strip(), f'configmap "{name}" deleted (server dry run)')
                self.assertEqual(self.k("get", "configmap", name, "-o", "name", version=v).stdout.strip(),
                                 f"configmap/{name}")
                r = self.k("delete", "configmap", name, version=v)
                self.assertEqual(r.stdout.strip(), f'configmap "{name}" deleted')
                self.assertEqual(self.k("get", "configmap", name, ok=False, version=v).returncode, 1)
                # the other writes kubectl can dry-run on the server create nothing either
                r = self.k("create", "configmap", name, "--from-literal=a=b", "--dry-run=server", version=v)
                self.assertEqual(r.stdout.strip(), f"configmap/{name} created (server dry run)")
                r = self.k("apply", "--server-side", "--dry-run=server", "-f", "-", version=v,
                           input=CM_SSA.format(name=name, data='  a: "1"\n'))
                self.assertEqual(r.stdout.strip(), f"configmap/{name} serverside-applied (server dry run)")
                self.assertEqual(self.k("get", "configmap", name, ok=False, version=v).returncode, 1)

    def test_apply_server_side_prunes_and_conflicts(self):
        for v in sorted({self.versions[0], self.versions[-1]}, key=str):
            with self.subTest(kubectl=v):
                name = "ssa-" + (v or "x").replace(".", "-")
                r = self.k("apply", "--server-side", "-f", "-", version=v,
                           input=CM_SSA.format(name=name, data='  a: "1"\n  b: "2"\n'))
                self.assertEqual(r.stdout.strip(), f"configmap/{name} serverside-applied")
                # b dropped from the configuration: removed
                self.k("apply", "--server-side", "-f", "-", version=v,
                       input=CM_SSA.format(name=name, data='  a: "1"\n'))
                self.assertEqual(self.get("configmap", name)["data"], {"a": "1"})
                # another manager changes a: the next apply conflicts
                self.k("patch", "configmap", name, "-p", '{"data":{"a":"patched"}}', version=v)
                r = self.k("apply", "--server-side", "-f", "-", ok=False, version=v,
                           input=CM_SSA.format(name=name, data='  a: "1"\n'))
                self.assertEqual(r.returncode, 1)
                self.assertIn('Apply failed with 1 conflict: conflict with "kubectl-patch" using v1: .data.a',
                              r.stderr)
                self.assertEqual(self.get("configmap", name)["data"], {"a": "patched"})
                r = self.k("apply", "--server-side", "--force-conflicts", "-f", "-", version=v,
                           input=CM_SSA.format(name=name, data='  a: "1"\n'))
                self.assertEqual(r.stdout.strip(), f"configmap/{name} serverside-applied")
                obj = self.get("configmap", name, "--show-managed-fields")
                self.assertEqual(obj["data"], {"a": "1"})
                self.assertEqual([(m["manager"], m["operation"], m["fieldsV1"]) for m in obj["metadata"]["managedFields"]],
                                 [("kubectl", "Apply", {"f:data": {"f:a": {}}})])

    def test_apply_server_side_lists_by_key(self):
        app = ("      - name: app\n        image: app:1\n        env:\n        - {name: A, value: '1'}\n"
               "        - {name: B, value: '2'}\n        ports:\n        - containerPort: 80\n")
        side = "      - name: sidecar\n        image: side:1\n"
        self.k("apply", "--server-side", "-f", "-", input=DEPLOY_SSA.format(name="ssa-deploy", containers=app + side))
        app_a = app.replace("        - {name: B, value: '2'}\n", "")
        self.k("apply", "--server-side", "-f", "-", input=DEPLOY_SSA.format(name="ssa-deploy", containers=app_a))
        spec = self.get("deployment", "ssa-deploy")["spec"]["template"]["spec"]
        self.assertEqual([c["name"] for c in spec["containers"]], ["app"])
        self.assertEqual(spec["containers"][0]["env"], [{"name": "A", "value": "1"}])
        r = self.k("apply", "--server-side", "--field-manager=ci", "-f", "-", ok=False,
                   input=DEPLOY_SSA.format(name="ssa-deploy", containers=app_a.replace("app:1", "app:2")))
        self.assertIn('conflict with "kubectl": .spec.template.spec.containers[name="app"].image', r.stderr)

    def test_apply_client_side_then_server_side(self):
        # kubectl's migration: fields the last-applied annotation holds do not conflict.
        self.k("apply", "-f", "-", input=CM_SSA.format(name="csa", data='  a: "1"\n'))
        r = self.k("apply", "--server-side", "-f", "-", input=CM_SSA.format(name="csa", data='  a: "2"\n'))
        self.assertEqual(r.stdout.strip(), "configmap/csa serverside-applied")
        self.assertEqual(self.get("configmap", "csa")["data"], {"a": "2"})

    def wait_endpoints(self, name, want):
        import json

        def ready():
            st, o = self.emu.kube("GET", f"/api/v1/namespaces/default/endpoints/{name}")
            ips = sorted(a["ip"] for s in (o or {}).get("subsets", []) for a in s.get("addresses", []))
            return st == 200 and ips == want
        self.emu.wait_until(ready, what=f"endpoints {name} {want}")

    def test_endpoints_and_endpointslices(self):
        self.k("create", "service", "clusterip", "web", "--tcp=80:8080")
        # pods bound to a Ready Node (its kubelet keeps them Ready) and to one that is not
        for node, ready in (("ep-up", "True"), ("ep-down", "False")):
            st, o = self.emu.kube("POST", "/api/v1/nodes", {
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": node},
                "status": {"conditions": [{"type": "Ready", "status": ready}]}})
            self.assertEqual(st, 201, o)
        for i, ready in enumerate([True, True, False]):
            st, o = self.emu.kube("POST", "/api/v1/namespaces/default/pods", {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"web-{i}", "labels": {"app": "web"}},
                "spec": {"nodeName": "ep-up" if ready else "ep-down", "containers": [{"name": "c", "image": "nginx"}]}})
            self.assertEqual(st, 201, o)
            st, o = self.emu.kube("PATCH", f"/api/v1/namespaces/default/pods/web-{i}/status", {"status": {
                "phase": "Running", "podIP": f"10.244.0.{10 + i}",
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}},
                content_type="application/merge-patch+json")
            self.assertEqual(st, 200, o)
        self.wait_endpoints("web", ["10.244.0.10", "10.244.0.11"])
        r = self.k("get", "endpoints", "web")
        self.assertEqual(cols(r.stdout.splitlines()[0]), ["NAME", "ENDPOINTS", "AGE"])
        self.assertRegex(r.stdout, r"web\s+10\.244\.0\.10:8080,10\.244\.0\.11:8080\s")
        self.assertIn("Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice", r.stderr)
        r = self.k("get", "endpointslices", "-l", "kubernetes.io/service-name=web")
        self.assertEqual(cols(r.stdout.splitlines()[0]), ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"])
        self.assertRegex(r.stdout, r"web-[a-z0-9]{5}\s+IPv4\s+8080\s+10\.244\.0\.10,10\.244\.0\.11,10\.244\.0\.12\s")
        r = self.k("get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o",
                   "jsonpath={.items[0].metadata.labels.endpointslice\\.kubernetes\\.io/managed-by} "
                   "{.items[0].metadata.ownerReferences[0].kind}/{.items[0].metadata.ownerReferences[0].name} "
                   "{.items[0].endpoints[2].conditions.ready}")
        self.assertEqual(r.stdout, "endpointslice-controller.k8s.io Service/web false")
        r = self.k("describe", "service", "web")
        self.assertRegex(r.stdout, r"Endpoints:\s+10\.244\.0\.10:8080,10\.244\.0\.11:8080")
        for v in (self.versions[0], self.versions[-1]):
            r = self.k("get", "endpoints,endpointslices", version=v)
            self.assertIn("endpoints/web", r.stdout)
            self.assertIn("endpointslice.discovery.k8s.io/kubernetes", r.stdout)

    def test_kubernetes_service_endpoints(self):
        port = self.emu.kube_url.rsplit(":", 1)[1]
        self.wait_endpoints("kubernetes", ["127.0.0.1"])
        r = self.k("get", "endpoints", "kubernetes")
        self.assertRegex(r.stdout, rf"kubernetes\s+127\.0\.0\.1:{port}\s")
        st, o = self.emu.kube("POST", "/api/v1/nodes", node_json("kcp-0", "172.20.90.0/24", 90))
        self.assertEqual(st, 201, o)
        self.wait_endpoints("kubernetes", ["10.0.0.90"])
        r = self.k("get", "endpoints,endpointslices", "kubernetes")
        self.assertRegex(r.stdout, r"endpoints/kubernetes\s+10\.0\.0\.90:6443\s")
        self.assertRegex(r.stdout, r"endpointslice\.discovery\.k8s\.io/kubernetes\s+IPv4\s+6443\s+10\.0\.0\.90\s")
        self.k("delete", "node", "kcp-0")
        self.wait_endpoints("kubernetes", ["127.0.0.1"])

    def test_health_check_node_port(self):
        self.k("create", "service", "loadbalancer", "lb-local", "--tcp=80:8080")
        self.assertEqual(self.k("get", "svc", "lb-local", "-o", "jsonpath={.spec.healthCheckNodePort}").stdout, "")
        self.k("patch", "svc", "lb-local", "-p", '{"spec":{"externalTrafficPolicy":"Local"}}')
        hc = self.k("get", "svc", "lb-local", "-o", "jsonpath={.spec.healthCheckNodePort}").stdout
        self.assertTrue(30000 <= int(hc) <= 32767, hc)
        self.assertRegex(self.k("describe", "svc", "lb-local").stdout, rf"HealthCheck NodePort:\s+{hc}\n")
        self.k("label", "svc", "lb-local", "tier=edge")  # an update that does not name it keeps it
        self.assertEqual(self.k("get", "svc", "lb-local", "-o", "jsonpath={.spec.healthCheckNodePort}").stdout, hc)
        r = self.k("patch", "svc", "lb-local", "-p", '{"spec":{"healthCheckNodePort":%d}}' % (int(hc) + 1), ok=False)
        self.assertIn("spec.healthCheckNodePort: Forbidden: field is immutable", r.stderr)
        self.k("patch", "svc", "lb-local", "-p", '{"spec":{"externalTrafficPolicy":"Cluster"}}')
        self.assertEqual(self.k("get", "svc", "lb-local", "-o", "jsonpath={.spec.healthCheckNodePort}").stdout, "")

    def test_create_kinds_as_protobuf(self):
        """kubectl 1.32+ sends these as protobuf: the objects must be the ones an older kubectl's
        JSON makes (kubectl 1.31 or older is the reference)."""
        json_v = [v for v in self.versions if v and tuple(map(int, v.split("."))) < (1, 32)]
        pb_v = [v for v in self.versions if v and tuple(map(int, v.split("."))) >= (1, 32)]
        if not json_v or not pb_v:
            self.skipTest("needs a kubectl before 1.32 and one of 1.32+ (installed: %s)" % self.versions)
        cmds = [
            ("configmap", "cm", ["--from-literal=a=b", "--from-literal=z=y"]),
            ("secret", "sec", ["generic", "--from-literal=pw=hunter2"]),
            ("deployment", "dep", ["--image=nginx:1.27", "--port=80", "--replicas=2"]),
            ("service", "svc", ["clusterip", "--tcp=80:8080"]),
            ("serviceaccount", "sa", []),
            ("job", "job", ["--image=busybox", "--", "echo", "hi"]),
            ("cronjob", "cj", ["--image=busybox", "--schedule=*/5 * * * *"]),
            ("role", "role", ["--verb=get", "--resource=pods"]),
            ("poddisruptionbudget", "pdb", ["--selector=app=x", "--min-available=1"]),
            ("ingress", "ing", ["--rule=foo.com/bar=svc1:8080"]),
            ("quota", "q", ["--hard=cpu=1,memory=1G"]),
        ]
        kinds = {"configmap": "configmap", "secret": "secret", "deployment": "deployment",
                 "service": "service", "serviceaccount": "serviceaccount", "job": "job",
                 "cronjob": "cronjob", "role": "role", "poddisruptionbudget": "pdb",
                 "ingress": "ingress", "quota": "resourcequota"}
        for v in [json_v[-1]] + pb_v:
            self.k("create", "namespace", "ns-" + v.replace(".", "-"), version=v)
        for what, name, args in cmds:
            objs = {}
            for v in [json_v[-1]] + pb_v:
                ns = "ns-" + v.replace(".", "-")
                if what in ("secret", "service"):
                    argv = ["create", what, args[0], name] + args[1:]
                else:
                    argv = ["create", what, name] + args
                r = self.k("-n", ns, *argv, version=v)
                self.assertIn(" created", r.stdout)
                objs[v] = normalized(self.get(kinds[what], name, "-n", ns, "--show-managed-fields"))
            for v in pb_v:
                with self.subTest(kind=what, kubectl=v):
                    # kubectl-create owns what it set (an empty ServiceAccount: nothing)
                    want = 0 if what == "serviceaccount" else 1
                    self.assertEqual(len(objs[v]["metadata"]["managedFields"]), want, objs[v])
                    self.assertEqual(objs[v], objs[json_v[-1]])
        # namespaces themselves, and what kubectl auth asks with protobuf
        for v in pb_v:
            ns = self.get("namespace", "ns-" + v.replace(".", "-"))
            self.assertEqual(ns["metadata"]["labels"], {"kubernetes.io/metadata.name": "ns-" + v.replace(".", "-")})
            self.assertEqual(self.k("auth", "can-i", "create", "pods", version=v).stdout.strip(), "yes")

    def test_size_limits(self):
        big = os.path.join(self.tmp, "big.bin")
        with open(big, "wb") as f:
            f.write(b"x" * (1024 * 1024 + 1))
        exact = os.path.join(self.tmp, "exact.bin")
        with open(exact, "wb") as f:
            f.write(b"x" * (1024 * 1024))
        for v in sorted({self.versions[0], self.versions[-1]}, key=str):
            with self.subTest(kubectl=v):
                suffix = (v or "x").replace(".", "-")
                r = self.k("create", "configmap", "big-" + suffix, "--from-file=" + big, ok=False, version=v)
                self.assertEqual(r.stderr.strip(), f'error: failed to create configmap: ConfigMap "big-{suffix}" is invalid: '
                                 "[]: Too long: may not be more than 1048576 bytes")
                self.k("create", "configmap", "exact-" + suffix, "--from-file=" + exact, version=v)
                r = self.k("create", "secret", "generic", "big-" + suffix, "--from-file=" + big, ok=False, version=v)
                self.assertIn(f'Secret "big-{suffix}" is invalid: data: Too long: may not be more than 1048576 bytes', r.stderr)
                huge = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: huge\ndata:\n  a: " + "y" * (4 * 1024 * 1024) + "\n"
                r = self.k("apply", "-f", "-", input=huge, ok=False, version=v)
                self.assertEqual(r.stderr.strip(), 'Error from server (RequestEntityTooLarge): error when creating "STDIN": '
                                 "Request entity too large: limit is 3145728")


if __name__ == "__main__":
    unittest.main()
