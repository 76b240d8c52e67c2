"""The Kubernetes API of talos-gcp-emu over HTTPS: discovery, authentication, the object
store's semantics (resourceVersion, conflicts, immutability, subresources, deletion,
pagination, selectors), watches and Table output. Raw HTTP, so every answer is checked as a
client receives it. Nodes here are created through the API (--ccm-allocator off: no
controller writes to them)."""
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import time
import unittest

from emu import Emu

NODE_FORBIDDEN = 'Forbidden: node updates may not change podCIDR except from "" to valid'


def node_body(name, **spec):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"pool": "a"}},
            "spec": spec}


class KubeApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-kube-api-")
        cls.sa_dir = os.path.join(cls.tmp, "sa")
        cls.emu = Emu(cls.tmp, ccm="off", extra=["--serviceaccount-out", cls.sa_dir]).start()
        cls.s = cls.emu.kube_session()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def call(self, method, path, body=None, **kw):
        return self.s.call(method, path, body, **kw)

    def create_node(self, name, **spec):
        status, body = self.call("POST", "/api/v1/nodes", node_body(name, **spec))
        self.assertEqual(status, 201, body)
        return body

    # ---- discovery ----
    def test_discovery_documents(self):
        status, api = self.call("GET", "/api")
        self.assertEqual((status, api["kind"], api["versions"]), (200, "APIVersions", ["v1"]))
        status, groups = self.call("GET", "/apis")
        names = [g["name"] for g in groups["groups"]]
        for g in ("apps", "rbac.authorization.k8s.io", "coordination.k8s.io", "batch",
                  "networking.k8s.io", "apiextensions.k8s.io", "authorization.k8s.io"):
            self.assertIn(g, names)
        self.assertEqual(groups["groups"][names.index("apps")]["preferredVersion"]["groupVersion"],
                         "apps/v1")
        status, core = self.call("GET", "/api/v1")
        self.assertEqual((status, core["kind"], core["groupVersion"]), (200, "APIResourceList", "v1"))
        res = {r["name"]: r for r in core["resources"]}
        self.assertEqual(res["nodes"]["kind"], "Node")
        self.assertFalse(res["nodes"]["namespaced"])
        self.assertEqual(res["nodes"]["shortNames"], ["no"])
        self.assertIn("watch", res["nodes"]["verbs"])
        self.assertEqual(res["nodes/status"]["verbs"], ["get", "patch", "update"])
        for name in ("pods", "services", "configmaps", "secrets", "serviceaccounts", "events",
                     "namespaces", "endpoints"):
            self.assertIn(name, res)
        self.assertTrue(res["events"]["namespaced"])
        self.assertIn("all", res["pods"]["categories"])
        for gv, kinds in (("/apis/apps/v1", {"deployments": "Deployment", "daemonsets": "DaemonSet"}),
                          ("/apis/rbac.authorization.k8s.io/v1",
                           {"clusterroles": "ClusterRole", "rolebindings": "RoleBinding"}),
                          ("/apis/coordination.k8s.io/v1", {"leases": "Lease"})):
            status, doc = self.call("GET", gv)
            self.assertEqual(status, 200, gv)
            got = {r["name"]: r["kind"] for r in doc["resources"]}
            for k, v in kinds.items():
                self.assertEqual(got[k], v)
        status, body = self.call("GET", "/apis/nosuch.example.com/v1")
        self.assertEqual((status, body["kind"], body["reason"]), (404, "Status", "NotFound"))

    def test_version_openapi_health_without_credentials(self):
        anon = self.emu.kube_session(auth="none")
        try:
            status, v = anon.call("GET", "/version")
            self.assertEqual((status, v["major"], v["gitVersion"][:3]), (200, "1", "v1."))
            for path in ("/healthz", "/livez", "/readyz", "/readyz/ping"):
                status, body = anon.call("GET", path)
                self.assertEqual((status, body), (200, "ok"), path)
            status, body = anon.call("GET", "/api/v1/nodes")
            self.assertEqual((status, body["reason"], body["code"]), (401, "Unauthorized", 401))
        finally:
            anon.close()
        status, raw, r = self.call("GET", "/openapi/v2", raw=True)
        self.assertEqual(status, 200)
        self.assertEqual(r.getheader("Content-Type"), "application/octet-stream")
        self.assertEqual(self.call("GET", "/openapi/v3")[0], 404)

    # ---- authentication and the files written for clients ----
    def whoami(self, session):
        status, body = session.call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                    {"apiVersion": "authentication.k8s.io/v1",
                                     "kind": "SelfSubjectReview"})
        self.assertEqual(status, 201, body)
        return body["status"]["userInfo"]

    def test_authentication_paths(self):
        info = self.whoami(self.s)
        self.assertEqual(info["username"], "admin")
        self.assertIn("system:masters", info["groups"])
        tok = self.emu.kube_session(auth="token")
        try:
            self.assertEqual(self.whoami(tok)["username"], "admin")
        finally:
            tok.close()
        with open(os.path.join(self.sa_dir, "token")) as f:
            sa_token = f.read().strip()
        sa = self.emu.kube_session(auth="none", token=sa_token)
        try:
            info = self.whoami(sa)
            self.assertEqual(info["username"], "system:serviceaccount:kube-system:talos-gcp")
            self.assertIn("system:serviceaccounts", info["groups"])
        finally:
            sa.close()
        bad = self.emu.kube_session(auth="none", token="not-a-token")
        try:
            status, body = bad.call("GET", "/api/v1/nodes")
            self.assertEqual((status, body["message"]), (401, "Unauthorized"))
        finally:
            bad.close()

    def test_foreign_client_certificate_is_refused(self):
        d = os.path.join(self.tmp, "foreign")
        os.makedirs(d, exist_ok=True)
        key, crt = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                            "-days", "1", "-subj", "/O=system:masters/CN=admin"],
                           capture_output=True)
        if r.returncode != 0:
            self.skipTest("openssl cannot make a test certificate: " + r.stderr.decode()[:200])
        ca, _, _ = self.emu.kube_files()
        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(crt, key)
        import http.client
        host, port = self.emu.kube_url.split("//", 1)[1].rsplit(":", 1)
        try:
            c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
            c.request("GET", "/api/v1/nodes")
            status = c.getresponse().status
            c.close()
        except (ssl.SSLError, ConnectionError):
            status = "tls-refused"
        # Same subject as the admin, but not signed by the cluster CA: never authenticated.
        self.assertIn(status, (401, "tls-refused"))

    def test_kubeconfig_and_serviceaccount_files(self):
        mode = stat.S_IMODE(os.stat(self.emu.kubeconfig).st_mode)
        self.assertEqual(mode, 0o600)
        text = open(self.emu.kubeconfig).read()
        self.assertIn(f"server: {self.emu.kube_url}\n", text)
        self.assertIn("current-context: admin@talos-gcp-emu\n", text)
        for key in ("certificate-authority-data:", "client-certificate-data:", "client-key-data:",
                    "token:", "name: emu-token"):
            self.assertIn(key, text)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.sa_dir, "token")).st_mode), 0o600)
        with open(os.path.join(self.sa_dir, "namespace")) as f:
            self.assertEqual(f.read(), "kube-system")
        with open(os.path.join(self.sa_dir, "ca.crt")) as f:
            self.assertIn("BEGIN CERTIFICATE", f.read())
        # The server certificate names 127.0.0.1: verification against the CA succeeds.
        ca, _, _ = self.emu.kube_files()
        host, port = self.emu.kube_url.split("//", 1)[1].rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=ca)
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                self.assertTrue(tls.getpeercert())

    # ---- create / get / errors ----
    def test_create_get_conflict_notfound(self):
        created = self.create_node("crud-a", providerID="gce://p/z/crud-a")
        meta = created["metadata"]
        self.assertEqual((created["kind"], created["apiVersion"]), ("Node", "v1"))
        for key in ("uid", "resourceVersion", "creationTimestamp"):
            self.assertTrue(meta[key])
        status, got = self.call("GET", "/api/v1/nodes/crud-a")
        self.assertEqual((status, got["metadata"]["uid"]), (200, meta["uid"]))
        status, err = self.call("POST", "/api/v1/nodes", node_body("crud-a"))
        self.assertEqual(status, 409)
        self.assertEqual((err["kind"], err["status"], err["reason"], err["code"]),
                         ("Status", "Failure", "AlreadyExists", 409))
        self.assertEqual(err["message"], 'nodes "crud-a" already exists')
        self.assertEqual(err["details"], {"name": "crud-a", "kind": "nodes"})
        status, err = self.call("GET", "/api/v1/nodes/crud-none")
        self.assertEqual((status, err["reason"], err["message"]),
                         (404, "NotFound", 'nodes "crud-none" not found'))
        status, err = self.call("GET", "/apis/apps/v1/namespaces/default/deployments/none")
        self.assertEqual(err["message"], 'deployments.apps "none" not found')
        self.assertEqual(err["details"]["group"], "apps")
        status, err = self.call("POST", "/api/v1/nodes", node_body("Bad_Name"))
        self.assertEqual((status, err["reason"]), (422, "Invalid"))
        self.assertEqual(err["details"]["causes"][0]["field"], "metadata.name")
        status, err = self.call("POST", "/api/v1/nodes", {"apiVersion": "apps/v1", "kind": "Node",
                                                          "metadata": {"name": "x"}})
        self.assertEqual(status, 400)
        status, err = self.call("POST", "/api/v1/nodes", b"{not json", content_type="application/json")
        self.assertEqual((status, err["reason"]), (400, "BadRequest"))
        status, err = self.call("POST", "/api/v1/namespaces/nowhere/configmaps",
                                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
        self.assertEqual((status, err["message"]), (404, 'namespaces "nowhere" not found'))

    def test_generate_name_and_dry_run(self):
        status, cm = self.call("POST", "/api/v1/namespaces/default/configmaps",
                               {"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"generateName": "gen-"}, "data": {"a": "b"}})
        self.assertEqual(status, 201)
        self.assertRegex(cm["metadata"]["name"], r"^gen-[a-z0-9]{5}$")
        status, dry = self.call("POST", "/api/v1/namespaces/default/configmaps?dryRun=All",
                                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}})
        self.assertEqual(status, 201)
        self.assertEqual(self.call("GET", "/api/v1/namespaces/default/configmaps/dry")[0], 404)

    # ---- Node rules ----
    def test_podcidr_immutable_exact_status(self):
        self.create_node("imm-a", podCIDR="172.20.3.0/24")
        for patch, ctype in (({"spec": {"podCIDR": "172.20.9.0/24"}},
                              "application/strategic-merge-patch+json"),
                             ({"spec": {"podCIDR": "172.20.9.0/24", "podCIDRs": ["172.20.9.0/24"]}},
                              "application/merge-patch+json"),
                             ([{"op": "replace", "path": "/spec/podCIDR", "value": "172.20.9.0/24"}],
                              "application/json-patch+json")):
            status, err = self.call("PATCH", "/api/v1/nodes/imm-a", patch, content_type=ctype)
            self.assertEqual(status, 422, (ctype, err))
            self.assertEqual(err["reason"], "Invalid")
            self.assertEqual(err["message"],
                             f'Node "imm-a" is invalid: spec.podCIDRs: {NODE_FORBIDDEN}')
            self.assertEqual(err["details"]["kind"], "Node")
            self.assertEqual(err["details"]["causes"][0],
                             {"reason": "FieldValueForbidden", "message": NODE_FORBIDDEN,
                              "field": "spec.podCIDRs"})
        node = self.emu.node("imm-a")
        self.assertEqual((node["spec"]["podCIDR"], node["spec"]["podCIDRs"]),
                         ("172.20.3.0/24", ["172.20.3.0/24"]))
        # Clearing is a change too.
        status, err = self.call("PUT", "/api/v1/nodes/imm-a",
                                dict(node, spec={k: v for k, v in node["spec"].items()
                                                 if not k.startswith("podCIDR")}))
        self.assertEqual(status, 422)

    def test_podcidr_set_once_and_consistent(self):
        n = self.create_node("cons-a")
        self.assertNotIn("podCIDR", n["spec"])
        # From "" to valid is allowed (what the allocators do), podCIDRs follows podCIDR.
        status, n = self.call("PATCH", "/api/v1/nodes/cons-a", {"spec": {"podCIDR": "172.20.4.0/24"}},
                              content_type="application/strategic-merge-patch+json")
        self.assertEqual(status, 200, n)
        self.assertEqual(n["spec"]["podCIDRs"], ["172.20.4.0/24"])
        n = self.create_node("cons-b", podCIDRs=["172.20.5.0/24"])
        self.assertEqual(n["spec"]["podCIDR"], "172.20.5.0/24")
        # podCIDR is authoritative when both are given and differ (older clients).
        n = self.create_node("cons-c", podCIDR="172.20.6.0/24", podCIDRs=["172.20.7.0/24"])
        self.assertEqual(n["spec"]["podCIDRs"], ["172.20.6.0/24"])
        status, err = self.call("POST", "/api/v1/nodes", node_body("cons-d", podCIDR="172.20.300.0/24"))
        self.assertEqual((status, err["details"]["causes"][0]["field"]), (422, "spec.podCIDRs[0]"))
        status, err = self.call("POST", "/api/v1/nodes",
                                node_body("cons-e", podCIDRs=["172.20.8.0/24", "172.20.9.0/24"]))
        self.assertEqual(status, 422)
        self.assertIn("may specify no more than one CIDR for each IP family", err["message"])
        # A podCIDRs-only merge patch is dropped: podCIDR (unchanged) wins, nothing changes.
        rv = self.emu.node("cons-a")["metadata"]["resourceVersion"]
        status, n = self.call("PATCH", "/api/v1/nodes/cons-a", {"spec": {"podCIDRs": ["172.20.99.0/24"]}},
                              content_type="application/merge-patch+json")
        self.assertEqual((status, n["spec"]["podCIDR"], n["metadata"]["resourceVersion"]),
                         (200, "172.20.4.0/24", rv))

    def test_provider_id_immutable_and_taints_validated(self):
        self.create_node("pid-a", providerID="gce://demo-project/z/pid-a")
        status, err = self.call("PATCH", "/api/v1/nodes/pid-a", {"spec": {"providerID": "gce://x/y/z"}},
                                content_type="application/merge-patch+json")
        self.assertEqual((status, err["details"]["causes"][0]["field"]), (422, "spec.providerID"))
        status, err = self.call("PATCH", "/api/v1/nodes/pid-a",
                                {"spec": {"taints": [{"key": "a", "effect": "Sometimes"}]}},
                                content_type="application/merge-patch+json")
        self.assertEqual((status, err["details"]["causes"][0]["field"]), (422, "spec.taints[0].effect"))

    # ---- resourceVersion, updates, subresources ----
    def test_noop_patches_keep_resource_version(self):
        n = self.create_node("noop-a")
        rv = n["metadata"]["resourceVersion"]
        for patch, ctype in (({"metadata": {"labels": {"pool": "a"}}}, "application/merge-patch+json"),
                             ({"spec": {}}, "application/strategic-merge-patch+json"),
                             ([{"op": "test", "path": "/metadata/name", "value": "noop-a"}],
                              "application/json-patch+json")):
            status, got = self.call("PATCH", "/api/v1/nodes/noop-a", patch, content_type=ctype)
            self.assertEqual((status, got["metadata"]["resourceVersion"]), (200, rv), ctype)
        status, got = self.call("PATCH", "/api/v1/nodes/noop-a", {"spec": {"unschedulable": True}},
                                content_type="application/strategic-merge-patch+json")
        self.assertGreater(int(got["metadata"]["resourceVersion"]), int(rv))

    def test_optimistic_concurrency(self):
        n = self.create_node("occ-a")
        stale = json.loads(json.dumps(n))
        n["metadata"]["labels"]["x"] = "1"
        status, n2 = self.call("PUT", "/api/v1/nodes/occ-a", n)
        self.assertEqual(status, 200)
        stale["metadata"]["labels"]["x"] = "2"
        status, err = self.call("PUT", "/api/v1/nodes/occ-a", stale)
        self.assertEqual((status, err["reason"]), (409, "Conflict"))
        self.assertEqual(err["message"], 'Operation cannot be fulfilled on nodes "occ-a": the object '
                         'has been modified; please apply your changes to the latest version and try again')
        del stale["metadata"]["resourceVersion"]  # unconditional update
        self.assertEqual(self.call("PUT", "/api/v1/nodes/occ-a", stale)[0], 200)
        status, err = self.call("PUT", "/api/v1/nodes/occ-b", stale)
        self.assertEqual(status, 400)  # name in body and URL differ
        status, err = self.call("PUT", "/api/v1/nodes/occ-none", node_body("occ-none"))
        self.assertEqual(status, 404)

    def test_status_subresource(self):
        body = node_body("st-a")
        body["status"] = {"addresses": [{"type": "InternalIP", "address": "10.0.0.9"}]}
        n = self.create_node_full(body)
        self.assertEqual(n["status"]["addresses"][0]["address"], "10.0.0.9")
        n["status"]["addresses"][0]["address"] = "10.0.0.10"
        n["metadata"]["labels"]["y"] = "1"
        status, got = self.call("PUT", "/api/v1/nodes/st-a", n)
        self.assertEqual(got["status"]["addresses"][0]["address"], "10.0.0.9")  # main: status kept
        self.assertEqual(got["metadata"]["labels"]["y"], "1")
        status, got = self.call("PATCH", "/api/v1/nodes/st-a/status",
                                {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.11"}]},
                                 "spec": {"unschedulable": True}},
                                content_type="application/strategic-merge-patch+json")
        self.assertEqual(status, 200, got)
        self.assertEqual(got["status"]["addresses"][0]["address"], "10.0.0.11")
        self.assertNotIn("unschedulable", got["spec"])  # status: spec kept

    def create_node_full(self, body):
        status, n = self.call("POST", "/api/v1/nodes", body)
        self.assertEqual(status, 201, n)
        return n

    def test_generation_counts_spec_changes(self):
        dep = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "gen-d", "namespace": "default"},
               "spec": {"selector": {"matchLabels": {"app": "x"}},
                        "template": {"metadata": {"labels": {"app": "x"}},
                                     "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}
        status, d = self.call("POST", "/apis/apps/v1/namespaces/default/deployments", dep)
        self.assertEqual((status, d["metadata"]["generation"], d["spec"]["replicas"]), (201, 1, 1))
        status, d = self.call("PATCH", "/apis/apps/v1/namespaces/default/deployments/gen-d",
                              {"metadata": {"labels": {"a": "b"}}},
                              content_type="application/merge-patch+json")
        self.assertEqual(d["metadata"]["generation"], 1)
        # Strategic merge: containers merge by name.
        status, d = self.call("PATCH", "/apis/apps/v1/namespaces/default/deployments/gen-d",
                              {"spec": {"template": {"spec": {"containers": [
                                  {"name": "c", "image": "i:2"}, {"name": "side", "image": "s:1"}]}}}},
                              content_type="application/strategic-merge-patch+json")
        self.assertEqual(d["metadata"]["generation"], 2)
        self.assertEqual([(c["name"], c["image"]) for c in d["spec"]["template"]["spec"]["containers"]],
                         [("c", "i:2"), ("side", "s:1")])
        status, d = self.call("PATCH", "/apis/apps/v1/namespaces/default/deployments/gen-d",
                              {"spec": {"template": {"spec": {"containers": [
                                  {"name": "side", "$patch": "delete"}]}}}},
                              content_type="application/strategic-merge-patch+json")
        self.assertEqual([c["name"] for c in d["spec"]["template"]["spec"]["containers"]], ["c"])

    # ---- deletion ----
    def test_delete_preconditions_and_status(self):
        n = self.create_node("del-a")
        for pre in ({"uid": "00000000-0000-4000-8000-000000000000"}, {"resourceVersion": "1"}):
            status, err = self.call("DELETE", "/api/v1/nodes/del-a",
                                    {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": pre})
            self.assertEqual((status, err["reason"]), (409, "Conflict"))
            self.assertIn("Precondition failed", err["message"])
        status, st = self.call("DELETE", "/api/v1/nodes/del-a",
                               {"propagationPolicy": "Background",
                                "preconditions": {"uid": n["metadata"]["uid"],
                                                  "resourceVersion": n["metadata"]["resourceVersion"]}})
        self.assertEqual((status, st["kind"], st["status"]), (200, "Status", "Success"))
        self.assertEqual(st["details"]["uid"], n["metadata"]["uid"])
        self.assertEqual(self.call("GET", "/api/v1/nodes/del-a")[0], 404)
        self.assertEqual(self.call("DELETE", "/api/v1/nodes/del-a")[0], 404)
        status, err = self.call("DELETE", "/api/v1/namespaces/default")
        self.assertEqual(status, 403)

    def test_owner_references_and_finalizers(self):
        owner = self.create_node("own-a")
        ref = [{"apiVersion": "v1", "kind": "Node", "name": "own-a", "uid": owner["metadata"]["uid"]}]
        for name in ("dep-1", "dep-2"):
            status, _ = self.call("POST", "/api/v1/namespaces/default/configmaps",
                                  {"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": name, "ownerReferences": ref}})
            self.assertEqual(status, 201)
        # Orphan: the dependents stay, without the reference.
        owner2 = self.create_node("own-b")
        ref2 = [{"apiVersion": "v1", "kind": "Node", "name": "own-b", "uid": owner2["metadata"]["uid"]}]
        self.call("POST", "/api/v1/namespaces/default/configmaps",
                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dep-3", "ownerReferences": ref2}})
        self.assertEqual(self.call("DELETE", "/api/v1/nodes/own-b?propagationPolicy=Orphan")[0], 200)
        status, cm = self.call("GET", "/api/v1/namespaces/default/configmaps/dep-3")
        self.assertEqual(status, 200)
        self.assertNotIn("ownerReferences", cm["metadata"])
        # Background: the collector deletes them.
        self.assertEqual(self.call("DELETE", "/api/v1/nodes/own-a")[0], 200)
        for name in ("dep-1", "dep-2"):
            self.assertEqual(self.call("GET", f"/api/v1/namespaces/default/configmaps/{name}")[0], 404)
        # A finalizer holds the deletion until it is removed.
        status, cm = self.call("POST", "/api/v1/namespaces/default/configmaps",
                               {"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": "fin", "finalizers": ["example.com/hold"]}})
        status, got = self.call("DELETE", "/api/v1/namespaces/default/configmaps/fin")
        self.assertEqual(status, 200)
        status, got = self.call("GET", "/api/v1/namespaces/default/configmaps/fin")
        self.assertTrue(got["metadata"]["deletionTimestamp"])
        self.call("PATCH", "/api/v1/namespaces/default/configmaps/fin",
                  {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")
        self.assertEqual(self.call("GET", "/api/v1/namespaces/default/configmaps/fin")[0], 404)

    def test_namespace_deletion_empties_it(self):
        self.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": "gone"}})
        self.call("POST", "/api/v1/namespaces/gone/configmaps",
                  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
        status, ns = self.call("DELETE", "/api/v1/namespaces/gone")
        self.assertEqual((status, ns["status"]["phase"]), (200, "Terminating"))
        self.emu.wait_until(lambda: self.call("GET", "/api/v1/namespaces/gone")[0] == 404,
                            what="namespace gone")
        self.assertEqual(self.call("GET", "/api/v1/namespaces/gone/configmaps/c")[0], 404)

    # ---- lists ----
    def test_list_pages_selectors(self):
        for i in range(7):
            self.create_node(f"page-{i}")
        self.call("PATCH", "/api/v1/nodes/page-3", {"spec": {"unschedulable": True}},
                  content_type="application/strategic-merge-patch+json")
        status, full = self.call("GET", "/api/v1/nodes?labelSelector=pool%3Da")
        want = sorted(i["metadata"]["name"] for i in full["items"])
        seen, cont, rvs, pages = [], None, set(), 0
        while True:
            q = "/api/v1/nodes?labelSelector=pool%3Da&limit=3" + (f"&continue={cont}" if cont else "")
            status, page = self.call("GET", q)
            self.assertEqual((status, page["kind"]), (200, "NodeList"))
            self.assertLessEqual(len(page["items"]), 3)
            seen += [i["metadata"]["name"] for i in page["items"]]
            rvs.add(page["metadata"]["resourceVersion"])
            pages += 1
            cont = page["metadata"].get("continue")
            if not cont:
                break
        self.assertEqual(seen, want)  # key order, each once
        self.assertEqual(len(rvs), 1)  # every page reports the first page's version
        status, page = self.call("GET", "/api/v1/nodes?limit=2")
        self.assertEqual(page["metadata"]["remainingItemCount"], len(self.call("GET", "/api/v1/nodes")[1]["items"]) - 2)
        status, err = self.call("GET", "/api/v1/nodes?limit=2&continue=garbage")
        self.assertEqual((status, err["reason"]), (400, "BadRequest"))
        status, one = self.call("GET", "/api/v1/nodes?fieldSelector=metadata.name%3Dpage-5")
        self.assertEqual([i["metadata"]["name"] for i in one["items"]], ["page-5"])
        status, cordoned = self.call("GET", "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dtrue")
        self.assertEqual([i["metadata"]["name"] for i in cordoned["items"]], ["page-3"])
        status, err = self.call("GET", "/api/v1/nodes?fieldSelector=spec.podCIDR%3Dx")
        self.assertEqual((status, err["message"]), (400, "field label not supported: spec.podCIDR"))
        status, err = self.call("GET", "/api/v1/nodes?labelSelector=a%20in%20(b")
        self.assertEqual(status, 400)
        status, sel = self.call("GET", "/api/v1/nodes?labelSelector=pool%20in%20(a,b),!nosuch")
        self.assertEqual(len(sel["items"]), len(want))
        status, err = self.call("GET", f"/api/v1/nodes?resourceVersion=1&resourceVersionMatch=Exact")
        self.assertEqual((status, err["reason"], err["code"]), (410, "Expired", 410))

    def test_table_output(self):
        body = node_body("tab-a")
        body["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] = ""
        body["status"] = {"conditions": [{"type": "Ready", "status": "True"}],
                          "addresses": [{"type": "InternalIP", "address": "10.0.0.7"}],
                          "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Talos (v1.10.3)"}}
        body["spec"] = {"unschedulable": True}
        self.create_node_full(body)
        status, t = self.call("GET", "/api/v1/nodes/tab-a",
                              headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
        self.assertEqual((status, t["kind"], t["apiVersion"]), (200, "Table", "meta.k8s.io/v1"))
        cols = [(c["name"], c["priority"]) for c in t["columnDefinitions"]]
        self.assertEqual(cols, [("Name", 0), ("Status", 0), ("Roles", 0), ("Age", 0), ("Version", 0),
                                ("Internal-IP", 1), ("External-IP", 1), ("OS-Image", 1),
                                ("Kernel-Version", 1), ("Container-Runtime", 1)])
        cells = t["rows"][0]["cells"]
        self.assertEqual(cells[:3], ["tab-a", "Ready,SchedulingDisabled", "control-plane"])
        self.assertRegex(cells[3], r"^\d+s$")
        self.assertEqual(cells[4:8], ["v1.33.1", "10.0.0.7", "<none>", "Talos (v1.10.3)"])
        obj = t["rows"][0]["object"]
        self.assertEqual((obj["kind"], obj["metadata"]["name"]), ("PartialObjectMetadata", "tab-a"))
        status, t = self.call("GET", "/api/v1/nodes?limit=1",
                              headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
        self.assertTrue(t["metadata"]["resourceVersion"])
        self.assertTrue(t["metadata"]["continue"])

    # ---- custom resources and services ----
    def test_custom_resource_definition(self):
        crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "widgets.example.com"},
               "spec": {"group": "example.com", "scope": "Namespaced",
                        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                                  "shortNames": ["wd"]},
                        "versions": [{"name": "v1", "served": True, "storage": True,
                                      "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
        status, got = self.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        self.assertEqual(status, 201, got)
        conds = {c["type"]: c["status"] for c in got["status"]["conditions"]}
        self.assertEqual(conds["Established"], "True")
        status, doc = self.call("GET", "/apis/example.com/v1")
        self.assertEqual(doc["resources"][0]["shortNames"], ["wd"])
        status, w = self.call("POST", "/apis/example.com/v1/namespaces/default/widgets",
                              {"apiVersion": "example.com/v1", "kind": "Widget",
                               "metadata": {"name": "w1"}, "spec": {"size": 1}})
        self.assertEqual(status, 201, w)
        status, err = self.call("PATCH", "/apis/example.com/v1/namespaces/default/widgets/w1",
                                {"spec": {"size": 2}}, content_type="application/strategic-merge-patch+json")
        self.assertEqual(status, 415)
        status, w = self.call("PATCH", "/apis/example.com/v1/namespaces/default/widgets/w1",
                              {"spec": {"size": 2}}, content_type="application/merge-patch+json")
        self.assertEqual((status, w["spec"]["size"]), (200, 2))
        self.assertEqual(self.call("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")[0], 200)
        self.assertEqual(self.call("GET", "/apis/example.com/v1")[0], 404)

    def test_service_defaults(self):
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}}
        status, s = self.call("POST", "/api/v1/namespaces/default/services", svc)
        self.assertEqual(status, 201, s)
        port = s["spec"]["ports"][0]
        self.assertEqual((port["protocol"], port["targetPort"]), ("TCP", 80))
        self.assertTrue(30000 <= port["nodePort"] <= 32767)
        self.assertTrue(s["spec"]["clusterIP"].startswith("10."))
        svc2 = json.loads(json.dumps(svc))
        svc2["metadata"]["name"] = "web2"
        svc2["spec"]["ports"][0]["nodePort"] = port["nodePort"]
        status, err = self.call("POST", "/api/v1/namespaces/default/services", svc2)
        self.assertEqual(status, 422)
        self.assertIn("provided port is already allocated", err["message"])

    # ---- watch ----
    def watch(self, query, max_events, timeout=5):
        """Reads watch events (JSON lines) until max_events or the stream ends."""
        s = self.emu.kube_session(timeout=timeout)
        events = []
        try:
            s.conn.request("GET", "/api/v1/nodes?watch=true&" + query, headers=s.headers)
            r = s.conn.getresponse()
            self.assertEqual(r.status, 200)
            buf = b""
            while len(events) < max_events:
                chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        events.append(json.loads(line))
        except socket.timeout:
            pass
        finally:
            s.close()
        return events

    def test_watch_from_resource_version(self):
        n = self.create_node("w-a")
        rv = n["metadata"]["resourceVersion"]
        self.call("PATCH", "/api/v1/nodes/w-a", {"metadata": {"labels": {"x": "1"}}},
                  content_type="application/merge-patch+json")
        self.call("DELETE", "/api/v1/nodes/w-a")
        events = self.watch(f"resourceVersion={rv}&fieldSelector=metadata.name%3Dw-a", 2)
        self.assertEqual([e["type"] for e in events], ["MODIFIED", "DELETED"])
        self.assertEqual(events[0]["object"]["metadata"]["labels"]["x"], "1")
        self.assertGreater(int(events[1]["object"]["metadata"]["resourceVersion"]),
                           int(events[0]["object"]["metadata"]["resourceVersion"]))

    def test_watch_synthetic_added_and_timeout(self):
        self.create_node("w-b")
        t0 = time.monotonic()
        events = self.watch("resourceVersion=0&fieldSelector=metadata.name%3Dw-b&timeoutSeconds=1", 10)
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in events],
                         [("ADDED", "w-b")])
        self.assertLess(time.monotonic() - t0, 4)  # the stream ended at timeoutSeconds

    def test_watch_initial_events_bookmark(self):
        self.create_node("w-c")
        events = self.watch("sendInitialEvents=true&allowWatchBookmarks=true"
                            "&resourceVersionMatch=NotOlderThan&fieldSelector=metadata.name%3Dw-c", 2)
        self.assertEqual([e["type"] for e in events], ["ADDED", "BOOKMARK"])
        self.assertEqual(events[1]["object"]["metadata"]["annotations"],
                         {"k8s.io/initial-events-end": "true"})

    def test_watch_selector_transitions(self):
        self.create_node("w-d")
        rv = self.emu.node("w-d")["metadata"]["resourceVersion"]
        self.call("PATCH", "/api/v1/nodes/w-d", {"metadata": {"labels": {"pool": "b"}}},
                  content_type="application/merge-patch+json")
        self.call("PATCH", "/api/v1/nodes/w-d", {"metadata": {"labels": {"pool": "a"}}},
                  content_type="application/merge-patch+json")
        events = self.watch(f"resourceVersion={rv}&labelSelector=pool%3Da", 2)
        self.assertEqual([(e["type"], e["object"]["metadata"]["name"]) for e in events],
                         [("DELETED", "w-d"), ("ADDED", "w-d")])

    def test_idle_watch_does_not_spin(self):
        s = self.emu.kube_session(timeout=10)
        try:
            s.conn.request("GET", "/api/v1/nodes?watch=true&fieldSelector=metadata.name%3Didle",
                           headers=s.headers)
            r = s.conn.getresponse()
            self.assertEqual(r.status, 200)
            before = self.emu.cpu_seconds()
            time.sleep(1.0)
            used = self.emu.cpu_seconds() - before
            self.assertLess(used, 0.2, f"{used:.2f}s of CPU while a watch waited")
        finally:
            s.close()

    def test_table_watch(self):
        self.create_node("w-e")
        s = self.emu.kube_session(timeout=5)
        try:
            s.conn.request("GET", "/api/v1/nodes?watch=true&resourceVersion=0&fieldSelector="
                           "metadata.name%3Dw-e&timeoutSeconds=1",
                           headers=dict(s.headers, Accept="application/json;as=Table;v=v1;g=meta.k8s.io"))
            line = s.conn.getresponse().read().split(b"\n")[0]
            ev = json.loads(line)
            self.assertEqual((ev["type"], ev["object"]["kind"]), ("ADDED", "Table"))
            self.assertEqual(ev["object"]["rows"][0]["cells"][0], "w-e")
        finally:
            s.close()


class KubeStateTest(unittest.TestCase):
    """--state: a restart serves the same cluster with the same credentials."""

    def test_restart_keeps_objects_credentials_and_versions(self):
        tmp = tempfile.mkdtemp(prefix="emu-kube-state-")
        state = os.path.join(tmp, "state.json")
        try:
            with Emu(tmp, ccm="off", extra=["--state", state]) as emu:
                status, n = emu.kube("POST", "/api/v1/nodes", node_body("keep-a", podCIDR="172.20.1.0/24"))
                self.assertEqual(status, 201)
                emu.kube("POST", "/api/v1/namespaces/default/configmaps",
                         {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})
                port = emu.kube_url.rsplit(":", 1)[1]
                old_kc = open(emu.kubeconfig).read()
                rv = int(emu.kube("GET", "/api/v1/nodes")[1]["metadata"]["resourceVersion"])
            self.assertEqual(stat.S_IMODE(os.stat(state).st_mode), 0o600)
            # Same port, and the old kubeconfig (CA, client certificate, token) still works.
            tmp2 = os.path.join(tmp, "again")
            os.makedirs(tmp2)
            emu2 = Emu(tmp2, kube=False, ccm="off",
                       extra=["--state", state, "--kube-listen", f"127.0.0.1:{port}"])
            emu2.kubeconfig = os.path.join(tmp2, "old-kubeconfig")
            with open(emu2.kubeconfig, "w") as f:
                f.write(old_kc)
            with emu2:
                emu2.kube_url = f"https://127.0.0.1:{port}"
                node = emu2.node("keep-a")
                self.assertEqual((node["metadata"]["uid"], node["spec"]["podCIDR"]),
                                 (n["metadata"]["uid"], "172.20.1.0/24"))
                self.assertEqual(emu2.kube("GET", "/api/v1/nodes", auth="token")[0], 200)
                status, cm = emu2.kube("GET", "/api/v1/namespaces/default/configmaps/c")
                self.assertEqual(cm["data"], {"k": "v"})
                status, n2 = emu2.kube("POST", "/api/v1/nodes", node_body("keep-b"))
                self.assertGreater(int(n2["metadata"]["resourceVersion"]), rv)
                # A watch from before the restart is older than the event window.
                s = emu2.kube_session(timeout=5)
                try:
                    s.conn.request("GET", "/api/v1/nodes?watch=true&resourceVersion=2", headers=s.headers)
                    line = s.conn.getresponse().read().split(b"\n")[0]
                finally:
                    s.close()
                ev = json.loads(line)
                self.assertEqual((ev["type"], ev["object"]["code"], ev["object"]["reason"]),
                                 ("ERROR", 410, "Expired"))
                self.assertIn("too old resource version", ev["object"]["message"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class KubeRuntimeLoadTest(unittest.TestCase):
    """PUT /_emu/state with a "kube" part replaces the cluster's objects at run time."""

    def test_load_and_refuse(self):
        tmp = tempfile.mkdtemp(prefix="emu-kube-load-")
        try:
            with Emu(tmp, ccm="off") as emu:
                emu.kube("POST", "/api/v1/nodes", node_body("before"))
                s = emu.kube_session(timeout=10)
                s.conn.request("GET", "/api/v1/nodes?watch=true", headers=s.headers)
                r = s.conn.getresponse()
                status, body = emu.control("PUT", "state", {"version": 1, "kube": {"objects": [
                    node_body("loaded-a"), node_body("loaded-b"),
                    {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "c", "namespace": "default"}, "data": {"k": "v"}}]}})
                self.assertEqual(status, 200, body)
                r.read()  # the open watch ends: its client relists
                s.close()
                status, lst = emu.kube("GET", "/api/v1/nodes")
                self.assertEqual([i["metadata"]["name"] for i in lst["items"]], ["loaded-a", "loaded-b"])
                # The cluster's own objects are back too (namespaces, CCM Deployment).
                self.assertEqual(emu.kube("GET", "/api/v1/namespaces/kube-system")[0], 200)
                self.assertEqual(emu.kube("GET", "/api/v1/namespaces/default/configmaps/c")[1]["data"],
                                 {"k": "v"})
                status, body = emu.control("PUT", "state", {"version": 1, "kube": {"objects": [
                    node_body("x"), {"apiVersion": "v9", "kind": "Gizmo", "metadata": {"name": "g"}}]}})
                self.assertEqual(status, 400, body)
                status, lst = emu.kube("GET", "/api/v1/nodes")
                self.assertEqual(len(lst["items"]), 2)  # nothing replaced
                status, dump = emu.control("GET", "state")
                self.assertEqual(status, 200)
                kinds = {o["kind"] for o in dump["kube"]["objects"]}
                self.assertTrue({"Node", "Namespace", "Deployment", "ConfigMap"} <= kinds)
                self.assertIn("caCert", dump["kube"]["pki"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class KubeScaleTest(unittest.TestCase):
    """5,000 Nodes (loaded from a state file) list in pages of 500."""

    def test_5000_nodes_in_pages_of_500(self):
        tmp = tempfile.mkdtemp(prefix="emu-kube-scale-")
        state = os.path.join(tmp, "state.json")
        try:
            nodes = [{"apiVersion": "v1", "kind": "Node",
                      "metadata": {"name": f"n-{i:04d}", "labels": {"kubernetes.io/hostname": f"n-{i:04d}"}},
                      "spec": {"providerID": f"gce://demo-project/us-central1-a/n-{i:04d}",
                               "podCIDR": f"172.{20 + i // 256}.{i % 256}.0/24"},
                      "status": {"addresses": [{"type": "InternalIP", "address": f"10.0.{i // 250}.{i % 250 + 2}"}]}}
                     for i in range(5000)]
            with open(state, "w") as f:
                json.dump({"version": 1, "kube": {"objects": nodes}}, f)
            with Emu(tmp, ccm="off", extra=["--state", state]) as emu:
                s = emu.kube_session()
                try:
                    t0 = time.monotonic()
                    names, cont, pages = [], None, 0
                    while True:
                        status, page = s.call("GET", "/api/v1/nodes?limit=500" + (f"&continue={cont}" if cont else ""))
                        self.assertEqual(status, 200)
                        self.assertLessEqual(len(page["items"]), 500)
                        names += [i["metadata"]["name"] for i in page["items"]]
                        pages += 1
                        cont = page["metadata"].get("continue")
                        if not cont:
                            break
                    elapsed = time.monotonic() - t0
                finally:
                    s.close()
                self.assertEqual((len(names), pages), (5000, 10))
                self.assertEqual(names, sorted(names))
                print(f"# 5000 nodes in 10 pages of 500: {elapsed * 1000:.0f} ms (Python client, parse included)")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
