"""Kubernetes fidelity of talos-gcp-emu (issue 8), checked as raw HTTP against the rules of the
API server: managedFields and server-side apply (structured-merge-diff's semantics),
dryRun options, Endpoints and EndpointSlices (their content and watch events),
healthCheckNodePort, protobuf request bodies, and object size limits."""
import json
import shutil
import socket
import tempfile
import unittest
import urllib.parse

from emu import Emu

CM = "/api/v1/namespaces/default/configmaps"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
SMP = "application/strategic-merge-patch+json"


def managers(obj):
    """{(manager, operation, subresource): fieldsV1} of an object's managedFields."""
    return {(m["manager"], m["operation"], m.get("subresource", "")): m["fieldsV1"]
            for m in obj["metadata"].get("managedFields", [])}


# ---- protobuf, written by hand from the field numbers of k8s.io/api generated.proto ----
def varint(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, payload):
    """A length-delimited field (strings, bytes, messages, map entries)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def vfield(num, n):
    return varint(num << 3) + varint(n)


def unknown(api_version, kind, raw):
    """The "k8s\\0" magic and runtime.Unknown{typeMeta, raw} as client-go writes them."""
    return b"k8s\x00" + field(1, field(1, api_version) + field(2, kind)) + field(2, raw) + \
        field(3, b"") + field(4, b"")


def object_meta(name, labels=None):
    # ObjectMeta: name=1 generateName=2 namespace=3 selfLink=4 uid=5 resourceVersion=6
    # generation=7 creationTimestamp=8 labels=11 (map entries key=1 value=2)
    out = field(1, name) + field(2, "") + field(3, "") + field(4, "") + field(5, "") + \
        field(6, "") + vfield(7, 0) + field(8, b"")
    for k, v in (labels or {}).items():
        out += field(11, field(1, k) + field(2, v))
    return out


class KubeFidelityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-kube-fidelity-")
        cls.emu = Emu(cls.tmp, ccm="off").start()
        cls.s = cls.emu.kube_session()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def call(self, method, path, body=None, query=None, **kw):
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return self.s.call(method, path, body, **kw)

    def ok(self, status, body, want=(200, 201)):
        self.assertIn(status, want if isinstance(want, tuple) else (want,), body)
        return body

    def apply(self, path, obj, manager="test", force=None, want=(200, 201)):
        q = {"fieldManager": manager}
        if force is not None:
            q["force"] = "true" if force else "false"
        status, body = self.call("PATCH", path, json.dumps(obj).encode(), query=q,
                                 content_type=APPLY)
        if want is None:
            return status, body
        return self.ok(status, body, want)

    def cm(self, name, data, **meta):
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": dict({"name": name}, **meta), "data": data}

    # ---- managedFields of Update operations ----
    def test_create_and_update_record_managers(self):
        st, o = self.call("POST", CM, self.cm("mf-a", {"a": "1"}, labels={"app": "x"}),
                          query={"fieldManager": "creator"})
        self.ok(st, o, 201)
        m = managers(o)
        # Update from the empty object: containers added are members (".") as encoding
        # the zero ConfigMap has no data and no labels.
        self.assertEqual(m, {("creator", "Update", ""): {
            "f:data": {".": {}, "f:a": {}},
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}}}})
        self.assertEqual(o["metadata"]["managedFields"][0]["apiVersion"], "v1")
        self.assertEqual(o["metadata"]["managedFields"][0]["fieldsType"], "FieldsV1")
        self.assertRegex(o["metadata"]["managedFields"][0]["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # A second writer takes what it changes; the creator keeps the rest.
        st, o = self.call("PATCH", CM + "/mf-a", {"data": {"a": "2", "b": "3"}}, query={"fieldManager": "editor"},
                          content_type=MERGE)
        m = managers(self.ok(st, o))
        self.assertEqual(m[("creator", "Update", "")], {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:data": {}})
        self.assertEqual(m[("editor", "Update", "")], {"f:data": {"f:a": {}, "f:b": {}}})
        # A write that changes nothing changes nothing (no new resourceVersion, same times).
        rv = o["metadata"]["resourceVersion"]
        st, o2 = self.call("PATCH", CM + "/mf-a", {"data": {"a": "2"}}, query={"fieldManager": "third"},
                           content_type=MERGE)
        self.assertEqual(self.ok(st, o2)["metadata"]["resourceVersion"], rv)
        self.assertNotIn(("third", "Update", ""), managers(o2))
        # Removing a field removes it from its owner.
        st, o = self.call("PATCH", CM + "/mf-a", {"data": {"b": None}}, query={"fieldManager": "third"},
                          content_type=MERGE)
        m = managers(self.ok(st, o))
        self.assertEqual(m[("editor", "Update", "")], {"f:data": {"f:a": {}}})
        self.assertNotIn(("third", "Update", ""), m)

    def test_user_agent_names_the_manager(self):
        st, o = self.call("POST", CM, self.cm("mf-ua", {"a": "1"}),
                          headers={"User-Agent": "my-tool/1.2 (linux)"})
        self.assertIn(("my-tool", "Update", ""), managers(self.ok(st, o, 201)))
        st, o = self.call("POST", CM, self.cm("mf-noua", {"a": "1"}))
        self.assertIn(("unknown", "Update", ""), managers(self.ok(st, o, 201)))

    def test_status_writes_have_subresource(self):
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mf-ns"}}
        self.ok(*self.call("POST", "/api/v1/namespaces", ns, query={"fieldManager": "mk"}))
        st, o = self.call("PUT", "/api/v1/namespaces/mf-ns/status",
                          dict(ns, status={"phase": "Active", "conditions": [
                              {"type": "X", "status": "True"}]}), query={"fieldManager": "st"})
        m = managers(self.ok(st, o))
        self.assertEqual(m[("st", "Update", "status")],
                         {"f:status": {"f:conditions": {".": {}, 'k:{"type":"X"}': {".": {}, "f:status": {}, "f:type": {}}}}})
        # the namespace's finalizer is the registry's, its name label a default: owned
        self.assertEqual(m[("mk", "Update", "")],
                         {"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}}})

    def test_managed_fields_reset_and_untracked(self):
        self.ok(*self.call("POST", CM, self.cm("mf-r", {"a": "1"}), query={"fieldManager": "c"}))
        # [{}] resets them: the object stays untracked afterwards
        obj = self.call("GET", CM + "/mf-r")[1]
        obj["metadata"]["managedFields"] = [{}]
        st, o = self.call("PUT", CM + "/mf-r", obj, query={"fieldManager": "r"})
        self.assertNotIn("managedFields", self.ok(st, o)["metadata"])
        st, o = self.call("PATCH", CM + "/mf-r", {"data": {"a": "9"}}, query={"fieldManager": "u"},
                          content_type=MERGE)
        self.assertNotIn("managedFields", self.ok(st, o)["metadata"])
        # the first apply hands the existing fields to before-first-apply
        o = self.apply(CM + "/mf-r", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mf-r"},
                                      "data": {"b": "2"}}, manager="ap")
        m = managers(o)
        self.assertEqual(m[("before-first-apply", "Update", "")], {"f:data": {".": {}, "f:a": {}}})
        self.assertEqual(m[("ap", "Apply", "")], {"f:data": {"f:b": {}}})

    def test_loaded_managed_fields(self):
        # A state file's objects keep managedFields that decode; ones that do not are dropped
        # (the API server's next write would drop them), so the object is untracked.
        good = self.cm("mf-load-good", {"a": "1"}, namespace="default", managedFields=[
            {"manager": "loader", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {".": {}, "f:a": {}}}}])
        bad = self.cm("mf-load-bad", {"a": "1"}, namespace="default", managedFields=[
            {"manager": "loader", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"x:a": {}}}}])
        st, doc = self.emu.control("GET", "state")
        self.assertEqual(st, 200)
        doc["kube"]["objects"] += [good, bad]
        self.assertEqual(self.emu.control("PUT", "state", {"kube": doc["kube"]})[0], 200)
        self.s.close()
        type(self).s = self.emu.kube_session()
        o = self.call("GET", CM + "/mf-load-good")[1]
        self.assertEqual(managers(o), {("loader", "Update", ""): {"f:data": {".": {}, "f:a": {}}}})
        o = self.call("GET", CM + "/mf-load-bad")[1]
        self.assertNotIn("managedFields", o["metadata"])
        st, o = self.call("PATCH", CM + "/mf-load-good", {"data": {"a": "2"}}, query={"fieldManager": "w"},
                          content_type=MERGE)
        self.assertEqual(managers(self.ok(st, o)), {("loader", "Update", ""): {"f:data": {}},
                                                    ("w", "Update", ""): {"f:data": {"f:a": {}}}})

    def test_update_managers_are_capped(self):
        self.ok(*self.call("POST", CM, self.cm("mf-cap", {"k0": "0"}), query={"fieldManager": "m0"}))
        for i in range(1, 12):
            self.ok(*self.call("PATCH", CM + "/mf-cap", {"data": {f"k{i}": str(i)}},
                               query={"fieldManager": f"m{i}"}, content_type=MERGE))
        entries = self.call("GET", CM + "/mf-cap")[1]["metadata"]["managedFields"]
        names = [e["manager"] for e in entries]
        self.assertEqual(len(entries), 10, names)
        self.assertIn("ancient-changes", names)
        # nothing is lost: every key is still owned by someone
        owned = set()
        for e in entries:
            owned |= {k[2:] for k in e["fieldsV1"]["f:data"] if k.startswith("f:")}
        self.assertEqual(owned, {f"k{i}" for i in range(12)})

    # ---- server-side apply ----
    def test_apply_creates_prunes_and_conflicts(self):
        path = CM + "/ssa-a"
        cfg = self.cm("ssa-a", {"a": "1", "b": "2"})
        st, o = self.apply(path, cfg, manager="alice", want=None)
        self.assertEqual(st, 201, o)
        self.assertEqual(managers(o), {("alice", "Apply", ""): {"f:data": {"f:a": {}, "f:b": {}}}})
        # dropped from the configuration: removed
        o = self.apply(path, self.cm("ssa-a", {"a": "1"}), manager="alice")
        self.assertEqual(o["data"], {"a": "1"})
        # co-owned values stay while anyone applies them
        self.apply(path, self.cm("ssa-a", {"a": "1", "c": "3"}), manager="bob")
        o = self.apply(path, self.cm("ssa-a", {"c": "3"}), manager="alice")
        self.assertEqual(o["data"], {"a": "1", "c": "3"})
        # another manager's value: a conflict, answered as the API server words it
        st, err = self.apply(path, self.cm("ssa-a", {"a": "changed"}), manager="alice", want=None)
        self.assertEqual(st, 409, err)
        self.assertEqual(err["reason"], "Conflict")
        self.assertEqual(err["message"], 'Apply failed with 1 conflict: conflict with "bob": .data.a')
        self.assertEqual(err["details"]["causes"],
                         [{"reason": "FieldManagerConflict", "message": 'conflict with "bob"', "field": ".data.a"}])
        self.assertEqual(self.call("GET", path)[1]["data"]["a"], "1")
        # force takes it over
        o = self.apply(path, self.cm("ssa-a", {"a": "changed"}), manager="alice", force=True)
        self.assertEqual(o["data"]["a"], "changed")
        m = managers(o)
        self.assertEqual(m[("alice", "Apply", "")], {"f:data": {"f:a": {}}})
        self.assertEqual(m[("bob", "Apply", "")], {"f:data": {"f:c": {}}})

    def test_apply_conflict_with_updater_names_version(self):
        path = CM + "/ssa-u"
        self.ok(*self.call("POST", CM, self.cm("ssa-u", {"x": "1", "y": "1"}), query={"fieldManager": "kubectl-edit"}))
        st, err = self.apply(path, self.cm("ssa-u", {"x": "2", "y": "2"}), manager="kubectl", want=None)
        self.assertEqual(st, 409)
        self.assertEqual(err["message"], 'Apply failed with 2 conflicts: conflicts with "kubectl-edit" using v1:\n- .data.x\n- .data.y')
        self.assertEqual([c["field"] for c in err["details"]["causes"]], [".data.x", ".data.y"])

    def test_apply_lists_by_key(self):
        path = "/apis/apps/v1/namespaces/default/deployments/ssa-d"

        def deploy(containers):
            return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssa-d"},
                    "spec": {"selector": {"matchLabels": {"app": "d"}},
                             "template": {"metadata": {"labels": {"app": "d"}},
                                          "spec": {"containers": containers}}}}
        app = {"name": "app", "image": "app:1", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
               "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
        o = self.apply(path, deploy([app, {"name": "sidecar", "image": "side:1"}]), manager="ci")
        f = managers(o)[("ci", "Apply", "")]
        cs = f["f:spec"]["f:template"]["f:spec"]["f:containers"]
        self.assertEqual(sorted(cs), ['k:{"name":"app"}', 'k:{"name":"sidecar"}'])
        # the key field protocol has a default (TCP): items are keyed with it
        self.assertEqual(sorted(cs['k:{"name":"app"}']["f:ports"]),
                         ['k:{"containerPort":53,"protocol":"UDP"}', 'k:{"containerPort":80,"protocol":"TCP"}'])
        self.assertEqual(f["f:spec"]["f:selector"], {})  # LabelSelector is atomic
        # someone else adds a container: kept when ci drops its sidecar and env B
        self.ok(*self.call("PATCH", path, {"spec": {"template": {"spec": {"containers": [
            {"name": "debug", "image": "busybox"}]}}}}, query={"fieldManager": "human"}, content_type=SMP))
        app2 = dict(app, env=[{"name": "A", "value": "1"}])
        o = self.apply(path, deploy([app2]), manager="ci")
        names = [c["name"] for c in o["spec"]["template"]["spec"]["containers"]]
        self.assertEqual(names, ["app", "debug"])
        self.assertEqual(o["spec"]["template"]["spec"]["containers"][0]["env"], [{"name": "A", "value": "1"}])
        # conflicting image with another applier: the path names the item by its key
        st, err = self.apply(path, deploy([dict(app2, image="app:2")]), manager="other", want=None)
        self.assertEqual(st, 409)
        self.assertEqual(err["details"]["causes"][0]["field"], '.spec.template.spec.containers[name="app"].image')
        self.assertEqual(err["details"]["causes"][0]["message"], 'conflict with "ci"')

    def test_apply_validation(self):
        path = CM + "/ssa-v"
        st, err = self.call("PATCH", path, b'{"apiVersion":"v1","kind":"ConfigMap"}', content_type=APPLY)
        self.assertEqual((st, err["reason"]), (422, "Invalid"), err)
        self.assertEqual(err["message"], 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch')
        st, err = self.apply(path, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ssa-v"}}, want=None)
        self.assertEqual((st, err["message"]), (400, "invalid object type: /v1, Kind=Secret"))
        st, err = self.apply(path, {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "ssa-v", "managedFields": [{"manager": "x"}]}}, want=None)
        self.assertEqual((st, err["message"]), (400, "metadata.managedFields must be nil"))
        st, err = self.call("PATCH", path, {"data": {"a": "1"}}, query={"force": "true"}, content_type=MERGE)
        self.assertEqual(st, 422)
        self.assertIn("force: Forbidden: may not be specified for non-apply patch", err["message"])

    def test_apply_yaml_scalars(self):
        # sigs.k8s.io/yaml (YAML 1.1): yes is true; quoted stays a string. A ConfigMap
        # wants strings, so a typed value is refused, a quoted one accepted.
        path = CM + "/ssa-y"
        st, err = self.call("PATCH", path, b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa-y\ndata:\n  a: yes\n",
                            query={"fieldManager": "y"}, content_type=APPLY)
        self.assertEqual(st, 400, err)
        st, o = self.call("PATCH", path, b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa-y\ndata:\n  a: 'yes'\n  b: \"0x10\"\n",
                          query={"fieldManager": "y"}, content_type=APPLY)
        self.assertEqual((st, o["data"]), (201, {"a": "yes", "b": "0x10"}))

    def test_apply_last_applied_upgrade(self):
        # kubectl's client-side apply then server-side apply: no conflict on what the
        # last-applied-configuration still holds, and the annotation follows.
        path = CM + "/ssa-la"
        la = json.dumps(self.cm("ssa-la", {"a": "1"}), separators=(",", ":"))
        self.ok(*self.call("POST", CM, self.cm("ssa-la", {"a": "1"}, annotations={
            "kubectl.kubernetes.io/last-applied-configuration": la}), query={"fieldManager": "kubectl-client-side-apply"}))
        o = self.apply(path, self.cm("ssa-la", {"a": "2"}), manager="kubectl")
        self.assertEqual(o["data"], {"a": "2"})
        self.assertEqual(json.loads(o["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]),
                         self.cm("ssa-la", {"a": "2"}))
        # any other manager still conflicts
        st, _ = self.apply(path, self.cm("ssa-la", {"a": "3"}), manager="someone", want=None)
        self.assertEqual(st, 409)

    def test_apply_dry_run(self):
        path = CM + "/ssa-dry"
        status, o = self.call("PATCH", path, json.dumps(self.cm("ssa-dry", {"a": "1"})).encode(),
                              query={"fieldManager": "d", "dryRun": "All"}, content_type=APPLY)
        self.assertEqual(status, 201)
        self.assertIn(("d", "Apply", ""), managers(o))
        self.assertEqual(self.call("GET", path)[0], 404)

    # ---- dryRun and DeleteOptions ----
    def test_dry_run_values(self):
        st, err = self.call("POST", CM, self.cm("dr-bad", {}), query={"dryRun": "Everything"})
        self.assertEqual(st, 422)
        self.assertEqual(err["message"], 'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"Everything"}: supported values: "All"')
        self.assertEqual(err["details"], {"group": "meta.k8s.io", "kind": "CreateOptions", "causes": [
            {"reason": "FieldValueNotSupported", "message": 'Unsupported value: []string{"Everything"}: supported values: "All"', "field": "dryRun"}]})
        self.assertEqual(self.call("GET", CM + "/dr-bad")[0], 404)
        st, o = self.call("POST", CM, self.cm("dr-ok", {"a": "1"}), query={"dryRun": "All"})
        self.assertEqual((st, o["metadata"]["name"]), (201, "dr-ok"))
        self.assertEqual(self.call("GET", CM + "/dr-ok")[0], 404)
        st, err = self.call("POST", CM, self.cm("dr-fv", {}), query={"fieldValidation": "Loose"})
        self.assertEqual(st, 422)
        self.assertIn('fieldValidation: Unsupported value: "Loose"', err["message"])

    def test_delete_options_from_the_body(self):
        self.ok(*self.call("POST", CM, self.cm("del-a", {"a": "1"})))
        # kubectl 1.33: the dry run is in the DeleteOptions body
        st, o = self.call("DELETE", CM + "/del-a", {"propagationPolicy": "Background", "dryRun": ["All"]})
        self.assertEqual((st, o["status"]), (200, "Success"), o)
        self.assertEqual(self.call("GET", CM + "/del-a")[0], 200)
        # with a body, the query is not read (handlers/delete.go): this really deletes
        st, o = self.call("DELETE", CM + "/del-a?dryRun=All", {"propagationPolicy": "Background"})
        self.assertEqual(st, 200)
        self.assertEqual(self.call("GET", CM + "/del-a")[0], 404)
        self.ok(*self.call("POST", CM, self.cm("del-b", {"a": "1"})))
        st, err = self.call("DELETE", CM + "/del-b", {"dryRun": ["Some"]})
        self.assertEqual(st, 422)
        self.assertEqual(err["message"], 'DeleteOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"Some"}: supported values: "All"')
        st, err = self.call("DELETE", CM + "/del-b", {"dryRun": "All"})
        self.assertEqual(st, 400, err)
        st, err = self.call("DELETE", CM + "/del-b", {"orphanDependents": True, "propagationPolicy": "Foreground"})
        self.assertEqual(st, 422)
        self.assertIn("orphanDependents and deletionPropagation cannot be both set", err["message"])
        # without a body: the query
        self.assertEqual(self.call("DELETE", CM + "/del-b?dryRun=All")[0], 200)
        self.assertEqual(self.call("GET", CM + "/del-b")[0], 200)
        # a dry-run deletecollection deletes nothing
        st, o = self.call("DELETE", CM + "?dryRun=All&fieldSelector=metadata.name%3Ddel-b")
        self.assertEqual((st, [i["metadata"]["name"] for i in o["items"]]), (200, ["del-b"]))
        self.assertEqual(self.call("GET", CM + "/del-b")[0], 200)

    # ---- size limits ----
    def test_data_limits(self):
        exact = "x" * (1024 * 1024)
        self.ok(*self.call("POST", CM, self.cm("lim-exact", {"a": exact})))
        st, err = self.call("POST", CM, self.cm("lim-over", {"a": exact, "b": "y"}))
        self.assertEqual(st, 422)
        self.assertEqual(err["message"], 'ConfigMap "lim-over" is invalid: []: Too long: may not be more than 1048576 bytes')
        self.assertEqual(err["details"]["causes"], [{"reason": "FieldValueTooLong", "message": "Too long: may not be more than 1048576 bytes", "field": "[]"}])
        # binaryData counts decoded: 786432 bytes of base64 are 589824 bytes
        import base64
        bin_ = base64.b64encode(b"\0" * 589824).decode()
        self.ok(*self.call("POST", CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "lim-bin"},
                                        "data": {"a": "x" * (1024 * 1024 - 589824)}, "binaryData": {"b": bin_}}))
        st, err = self.call("POST", CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "lim-bin2"},
                                         "data": {"a": "x" * (1024 * 1024 - 589823)}, "binaryData": {"b": bin_}})
        self.assertEqual(st, 422)
        # an update over the limit is refused too, the stored object unchanged
        st, err = self.call("PATCH", CM + "/lim-exact", {"data": {"b": "z"}}, content_type=MERGE)
        self.assertEqual(st, 422)
        self.assertNotIn("b", self.call("GET", CM + "/lim-exact")[1]["data"])
        # Secrets: stringData is data, the limit is on data
        st, err = self.call("POST", "/api/v1/namespaces/default/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "lim-s"}, "stringData": {"a": exact + "!"}})
        self.assertEqual((st, err["message"]), (422, 'Secret "lim-s" is invalid: data: Too long: may not be more than 1048576 bytes'))
        st, o = self.call("POST", "/api/v1/namespaces/default/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "lim-s2"}, "stringData": {"a": "hi"},
            "data": {"a": "b2xk", "b": "Yg=="}})
        self.assertEqual(st, 201, o)
        self.assertEqual((o["data"], o["type"], "stringData" in o), ({"a": "aGk=", "b": "Yg=="}, "Opaque", False))
        st, err = self.call("POST", "/api/v1/namespaces/default/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "lim-s3"}, "data": {"a": "not base64!"}})
        self.assertEqual((st, err["message"]), (400, 'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'))

    def test_request_body_limit(self):
        body = json.dumps(self.cm("lim-body", {"a": "x" * (3 * 1024 * 1024)})).encode()
        for method, path in (("POST", CM), ("PUT", CM + "/lim-body"), ("PATCH", CM + "/lim-body")):
            st, err = self.call(method, path, body, content_type=MERGE if method == "PATCH" else "application/json")
            self.assertEqual(st, 413, (method, err))
            self.assertEqual(err["reason"], "RequestEntityTooLarge")
            self.assertEqual(err["message"], "Request entity too large: limit is 3145728")
        # just under the limit reaches validation (and the 1 MiB data limit)
        under = json.dumps(self.cm("lim-body", {"a": "x" * (3 * 1024 * 1024 - 200)})).encode()
        self.assertLessEqual(len(under), 3 * 1024 * 1024)
        self.assertEqual(self.call("POST", CM, under)[0], 422)

    def test_large_object_watchers_share_it(self):
        # 50 watchers of a 1 MiB ConfigMap all receive it whole (the size limit bounds what
        # each stream can be made to hold).
        sessions = []
        try:
            st, base = self.call("GET", CM)
            rv = base["metadata"]["resourceVersion"]
            for _ in range(50):
                s = self.emu.kube_session(timeout=15)
                s.conn.request("GET", CM + f"?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dlim-w",
                               headers=s.headers)
                sessions.append(s)
            self.ok(*self.call("POST", CM, self.cm("lim-w", {"a": "w" * (1024 * 1024 - 10)})))
            for s in sessions:
                r = s.conn.getresponse()
                buf = b""
                while b"\n" not in buf:
                    chunk = r.read1(1 << 20)
                    self.assertTrue(chunk)
                    buf += chunk
                ev = json.loads(buf.split(b"\n", 1)[0])
                self.assertEqual((ev["type"], len(ev["object"]["data"]["a"])), ("ADDED", 1024 * 1024 - 10))
        finally:
            for s in sessions:
                s.close()

    # ---- protobuf bodies ----
    def test_protobuf_configmap(self):
        raw = field(1, object_meta("pb-cm", {"b": "2", "a": "1"})) + \
            field(2, field(1, "k") + field(2, "v")) + field(3, field(1, "bin") + field(2, b"\x00\xff"))
        st, o = self.call("POST", CM, unknown("v1", "ConfigMap", raw), query={"fieldManager": "pb"},
                          content_type="application/vnd.kubernetes.protobuf")
        self.assertEqual(st, 201, o)
        self.assertEqual((o["data"], o["binaryData"]), ({"k": "v"}, {"bin": "AP8="}))
        self.assertEqual(list(o["metadata"]["labels"]), ["a", "b"])  # map keys sorted
        # empty strings and zero numbers of non-pointer fields were omitempty'd
        self.assertNotIn("generateName", o["metadata"])
        self.assertIn(("pb", "Update", ""), managers(o))

    def test_protobuf_errors(self):
        pb = "application/vnd.kubernetes.protobuf"
        st, err = self.call("POST", CM, b'{"kind":"ConfigMap"}', content_type=pb)
        self.assertEqual((st, err["message"]), (400, "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"))
        st, err = self.call("POST", CM, unknown("v1", "Frobnicator", b""), content_type=pb)
        self.assertEqual(st, 400)
        self.assertIn('no kind "Frobnicator" is registered for version "v1"', err["message"])
        # a length past the end of the buffer
        st, err = self.call("POST", CM, unknown("v1", "ConfigMap", b"\x0a\x7f\x0a"), content_type=pb)
        self.assertEqual(st, 400)
        self.assertIn("ConfigMap", err["message"])
        st, err = self.call("POST", CM, b"k8s\x00" + field(1, field(1, "v1") + field(2, "ConfigMap")) + b"\x12\xff\xff\xff\xff\x0f", content_type=pb)
        self.assertEqual(st, 400)
        st, err = self.call("POST", CM, b"x", content_type="application/x-protobuf")
        self.assertEqual(st, 415)

    def test_protobuf_eviction(self):
        # client-go's typed clients send the Eviction subresource's body as protobuf too
        self.ok(*self.call("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pb-n"}}))
        self.ok(*self.call("POST", "/api/v1/namespaces/default/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pb-ev"},
            "spec": {"nodeName": "pb-n", "containers": [{"name": "c", "image": "i"}]}}))
        # Eviction: metadata=1 deleteOptions=2 (DeleteOptions dryRun=5)
        body = unknown("policy/v1", "Eviction", field(1, object_meta("pb-ev")) + field(2, field(5, "All")))
        st, o = self.call("POST", "/api/v1/namespaces/default/pods/pb-ev/eviction", body,
                          content_type="application/vnd.kubernetes.protobuf")
        self.assertEqual(st, 201, o)
        self.assertEqual(self.call("GET", "/api/v1/namespaces/default/pods/pb-ev")[0], 200)  # dry run
        body = unknown("policy/v1", "Eviction", field(1, object_meta("pb-ev")))
        st, o = self.call("POST", "/api/v1/namespaces/default/pods/pb-ev/eviction", body,
                          content_type="application/vnd.kubernetes.protobuf")
        self.assertEqual(st, 201, o)

    def test_protobuf_delete_options(self):
        self.ok(*self.call("POST", CM, self.cm("pb-del", {"a": "1"})))
        # DeleteOptions: gracePeriodSeconds=1 preconditions=2 orphanDependents=3 propagationPolicy=4 dryRun=5
        body = unknown("v1", "DeleteOptions", field(4, "Background") + field(5, "All"))
        st, o = self.call("DELETE", CM + "/pb-del", body, content_type="application/vnd.kubernetes.protobuf")
        self.assertEqual(st, 200, o)
        self.assertEqual(self.call("GET", CM + "/pb-del")[0], 200)


class KubeEndpointsTest(unittest.TestCase):
    """Endpoints and EndpointSlices kept by the emulated controllers. Pods are bound to
    Nodes made here: a Ready one (its kubelet keeps them running and Ready) and one that is not
    (they stay as their status says, not Ready); a pod bound to no Node would be collected."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-kube-ep-")
        cls.emu = Emu(cls.tmp, ccm="off").start()
        cls.s = cls.emu.kube_session()
        cls.port = cls.emu.kube_url.rsplit(":", 1)[1]
        for name, ready in (("n-up", "True"), ("n-down", "False")):
            cls.node(name, ready)

    @classmethod
    def node(cls, name, ready):
        st, o = cls.s.call("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {
                "topology.kubernetes.io/zone": "us-central1-a"}},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.1.1"}],
                       "conditions": [{"type": "Ready", "status": ready}]}})
        assert st == 201, o

    def node_ready(self, name):
        st, o = self.call("PATCH", f"/api/v1/nodes/{name}/status", {"status": {"conditions": [
            {"type": "Ready", "status": "True"}]}}, content_type=SMP)
        self.assertEqual(st, 200, o)

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def call(self, method, path, body=None, **kw):
        return self.s.call(method, path, body, **kw)

    def ns(self, name):
        st, _ = self.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": name}})
        self.assertIn(st, (201, 409))
        return name

    def service(self, ns, name, selector, ports, **spec):
        body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"team": "t"}},
                "spec": dict({"selector": selector, "ports": ports}, **spec)}
        st, o = self.call("POST", f"/api/v1/namespaces/{ns}/services", body)
        self.assertEqual(st, 201, o)
        return o

    def pod(self, ns, name, ip, ready=True, labels=None, node=None, ports=None):
        node = node or ("n-up" if ready else "n-down")
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": "web"}},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx",
                                                           "ports": ports or [{"name": "http", "containerPort": 8080}]}]}}
        st, o = self.call("POST", f"/api/v1/namespaces/{ns}/pods", body)
        self.assertEqual(st, 201, o)
        self.set_pod(ns, name, ip, ready)

    def set_pod(self, ns, name, ip, ready):
        st, o = self.call("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", {"status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}},
            content_type=MERGE)
        self.assertEqual(st, 200, o)

    def endpoints(self, ns, name):
        st, o = self.call("GET", f"/api/v1/namespaces/{ns}/endpoints/{name}")
        return o if st == 200 else None

    def slices(self, ns, name):
        st, o = self.call("GET", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D{name}")
        self.assertEqual(st, 200)
        return o["items"]

    def ips(self, ep, key="addresses"):
        return sorted(a["ip"] for s in (ep or {}).get("subsets", []) for a in s.get(key, []))

    def test_selected_pods(self):
        ns = self.ns("ep-sel")
        svc = self.service(ns, "web", {"app": "web"}, [{"name": "http", "port": 80, "targetPort": "http"},
                                                       {"name": "m", "port": 9090}])
        self.node("n-web1", "False")
        self.pod(ns, "web-0", "10.244.1.10")
        self.pod(ns, "web-1", "10.244.1.11", ready=False, node="n-web1")
        self.pod(ns, "other", "10.244.1.12", labels={"app": "db"})
        ep = self.emu.wait_until(lambda: (lambda e: e if len(self.ips(e)) == 1 and self.ips(e, "notReadyAddresses") else None)(self.endpoints(ns, "web")),
                                 what="endpoints")
        self.assertEqual(self.ips(ep), ["10.244.1.10"])
        self.assertEqual(self.ips(ep, "notReadyAddresses"), ["10.244.1.11"])
        sub = ep["subsets"][0]
        self.assertEqual(sub["ports"], [{"name": "http", "port": 8080, "protocol": "TCP"},
                                        {"name": "m", "port": 9090, "protocol": "TCP"}])
        addr = sub["addresses"][0]
        self.assertEqual((addr["nodeName"], addr["targetRef"]["kind"], addr["targetRef"]["name"]), ("n-up", "Pod", "web-0"))
        self.assertEqual(ep["metadata"]["labels"], {"team": "t"})
        self.assertIn("endpoints.kubernetes.io/last-change-trigger-time", ep["metadata"]["annotations"])
        self.assertIn(("kube-controller-manager", "Update", ""), managers(ep))
        [sl] = self.slices(ns, "web")
        self.assertTrue(sl["metadata"]["name"].startswith("web-"))
        self.assertEqual(sl["addressType"], "IPv4")
        self.assertEqual(sl["metadata"]["labels"], {"team": "t", "kubernetes.io/service-name": "web",
                                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"})
        self.assertEqual(sl["metadata"]["ownerReferences"], [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                              "uid": svc["metadata"]["uid"], "controller": True,
                                                              "blockOwnerDeletion": True}])
        byip = {e["addresses"][0]: e for e in sl["endpoints"]}
        self.assertEqual(byip["10.244.1.10"]["conditions"], {"ready": True, "serving": True, "terminating": False})
        self.assertEqual((byip["10.244.1.10"]["nodeName"], byip["10.244.1.10"]["zone"]), ("n-up", "us-central1-a"))
        self.assertEqual(byip["10.244.1.11"]["conditions"], {"ready": False, "serving": False, "terminating": False})
        self.assertEqual(sl["ports"], [{"name": "http", "port": 8080, "protocol": "TCP"},
                                       {"name": "m", "port": 9090, "protocol": "TCP"}])
        # a pod that turns ready (its Node does, its kubelet runs it) moves; a deleted
        # service takes its endpoints and slices
        self.node_ready("n-web1")
        self.emu.wait_until(lambda: self.ips(self.endpoints(ns, "web")) == ["10.244.1.10", "10.244.1.11"], what="ready")
        self.assertEqual(self.call("DELETE", f"/api/v1/namespaces/{ns}/services/web")[0], 200)
        self.emu.wait_until(lambda: self.endpoints(ns, "web") is None, what="endpoints deleted")
        self.assertEqual(self.slices(ns, "web"), [])

    def test_watch_events(self):
        ns = self.ns("ep-watch")
        rv = self.call("GET", f"/api/v1/namespaces/{ns}/endpoints")[1]["metadata"]["resourceVersion"]
        self.service(ns, "api", {"app": "api"}, [{"port": 443, "targetPort": 8443}])
        self.emu.wait_until(lambda: self.endpoints(ns, "api"), what="endpoints")
        self.node("n-api", "False")
        self.pod(ns, "api-0", "10.244.2.5", labels={"app": "api"}, ready=False, node="n-api")
        self.emu.wait_until(lambda: self.ips(self.endpoints(ns, "api"), "notReadyAddresses"), what="not ready")
        self.node_ready("n-api")
        self.emu.wait_until(lambda: self.ips(self.endpoints(ns, "api")), what="ready")
        s = self.emu.kube_session(timeout=5)
        events = []
        try:
            s.conn.request("GET", f"/api/v1/namespaces/{ns}/endpoints?watch=true&resourceVersion={rv}&timeoutSeconds=1",
                           headers=s.headers)
            r = s.conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertIn("v1 Endpoints is deprecated", r.getheader("Warning") or "")
            for line in r.read().split(b"\n"):
                if line.strip():
                    events.append(json.loads(line))
        except socket.timeout:
            pass
        finally:
            s.close()
        seen = [(e["type"], self.ips(e["object"]), self.ips(e["object"], "notReadyAddresses")) for e in events]
        self.assertEqual(seen, [("ADDED", [], []), ("MODIFIED", [], ["10.244.2.5"]),
                                ("MODIFIED", ["10.244.2.5"], [])])

    def test_placeholder_terminating_and_headless(self):
        ns = self.ns("ep-misc")
        self.service(ns, "empty", {"app": "none"}, [{"port": 80}])
        [sl] = self.emu.wait_until(lambda: self.slices(ns, "empty"), what="placeholder")
        self.assertEqual((sl["endpoints"], sl["ports"]), (None, None))
        ep = self.endpoints(ns, "empty")
        self.assertNotIn("subsets", ep)
        # a terminating pod (a finalizer holds it): out of Endpoints, terminating in slices
        self.service(ns, "term", {"app": "term"}, [{"port": 80, "targetPort": 8080}], clusterIP="None")
        self.pod(ns, "t-0", "10.244.3.1", labels={"app": "term"})
        self.emu.wait_until(lambda: self.ips(self.endpoints(ns, "term")), what="term endpoints")
        self.assertEqual(self.endpoints(ns, "term")["metadata"]["labels"]["service.kubernetes.io/headless"], "")
        self.call("PATCH", f"/api/v1/namespaces/{ns}/pods/t-0", {"metadata": {"finalizers": ["test/hold"]}},
                  content_type=MERGE)
        self.assertEqual(self.call("DELETE", f"/api/v1/namespaces/{ns}/pods/t-0")[0], 200)
        self.emu.wait_until(lambda: not self.ips(self.endpoints(ns, "term")), what="terminating out")
        [sl] = self.slices(ns, "term")
        self.assertEqual(sl["endpoints"][0]["conditions"], {"ready": False, "serving": True, "terminating": True})
        self.call("PATCH", f"/api/v1/namespaces/{ns}/pods/t-0", {"metadata": {"finalizers": None}}, content_type=MERGE)
        # a named targetPort a pod does not have leaves that pod out
        self.service(ns, "named", {"app": "named"}, [{"port": 80, "targetPort": "nope"}])
        self.pod(ns, "n-0", "10.244.3.2", labels={"app": "named"})
        [sl] = self.emu.wait_until(lambda: self.slices(ns, "named"), what="named")
        self.assertEqual(self.endpoints(ns, "named").get("subsets"), None)
        # no selector: endpoints belong to whoever writes them
        self.service(ns, "manual", None, [{"port": 80}])
        st, _ = self.call("POST", f"/api/v1/namespaces/{ns}/endpoints", {"apiVersion": "v1", "kind": "Endpoints",
                          "metadata": {"name": "manual"}, "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]})
        self.assertEqual(st, 201)
        self.call("PATCH", f"/api/v1/namespaces/{ns}/services/manual", {"metadata": {"labels": {"x": "y"}}}, content_type=MERGE)
        # a later service's endpoints mean the controller has run past that change
        self.service(ns, "marker", {"app": "marker"}, [{"port": 80}])
        self.emu.wait_until(lambda: self.endpoints(ns, "marker"), what="marker")
        self.assertEqual(self.ips(self.endpoints(ns, "manual")), ["192.0.2.1"])
        self.assertEqual(self.slices(ns, "manual"), [])

    def test_controller_repairs_its_objects(self):
        ns = self.ns("ep-fix")
        self.service(ns, "fix", {"app": "fix"}, [{"port": 80}])
        self.pod(ns, "f-0", "10.244.4.1", labels={"app": "fix"})
        self.emu.wait_until(lambda: self.ips(self.endpoints(ns, "fix")), what="endpoints")
        self.assertEqual(self.call("DELETE", f"/api/v1/namespaces/{ns}/endpoints/fix")[0], 200)
        self.emu.wait_until(lambda: self.ips(self.endpoints(ns, "fix")) == ["10.244.4.1"], what="recreated")
        [sl] = self.slices(ns, "fix")
        self.call("PATCH", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/{sl['metadata']['name']}",
                  {"endpoints": []}, content_type=MERGE)
        self.emu.wait_until(lambda: (self.slices(ns, "fix") or [{}])[0].get("endpoints"), what="slice repaired")

    def test_kubernetes_service(self):
        # no control-plane Node: the emulator itself, where a client reaches it
        ep = self.emu.wait_until(lambda: self.endpoints("default", "kubernetes"), what="kubernetes")
        self.assertEqual(ep["metadata"]["labels"], {"endpointslice.kubernetes.io/skip-mirror": "true"})
        self.assertEqual(ep["subsets"], [{"addresses": [{"ip": "127.0.0.1"}],
                                          "ports": [{"name": "https", "port": int(self.port), "protocol": "TCP"}]}])
        st, sl = self.call("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
        self.assertEqual(st, 200)
        self.assertEqual(sl["metadata"]["labels"], {"kubernetes.io/service-name": "kubernetes"})
        self.assertNotIn("ownerReferences", sl["metadata"])
        self.assertEqual(sl["endpoints"], [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}])
        self.assertIn(("kube-apiserver", "Update", ""), managers(sl))
        # Ready control planes: their InternalIPs on 6443, as kube-apiserver advertises them
        for name, ip, ready in (("cp-b", "10.0.0.12", "True"), ("cp-a", "10.0.0.11", "True"), ("cp-c", "10.0.0.13", "False")):
            st, o = self.call("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": name, "labels": {"node-role.kubernetes.io/control-plane": ""}},
                "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                           "conditions": [{"type": "Ready", "status": ready}]}})
            self.assertEqual(st, 201, o)
        st, o = self.call("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker"},
                          "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.20"}],
                                     "conditions": [{"type": "Ready", "status": "True"}]}})
        want = [{"addresses": [{"ip": "10.0.0.11"}, {"ip": "10.0.0.12"}],
                 "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
        self.emu.wait_until(lambda: self.endpoints("default", "kubernetes")["subsets"] == want, what="control planes")
        sl = self.call("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")[1]
        self.assertEqual([e["addresses"] for e in sl["endpoints"]], [["10.0.0.11"], ["10.0.0.12"]])
        self.assertEqual(sl["ports"], [{"name": "https", "port": 6443, "protocol": "TCP"}])
        for name in ("cp-a", "cp-b", "cp-c", "worker"):
            self.call("DELETE", f"/api/v1/nodes/{name}")
        self.emu.wait_until(lambda: self.endpoints("default", "kubernetes")["subsets"][0]["addresses"] == [{"ip": "127.0.0.1"}],
                            what="back to the emulator")


class KubeServiceTest(unittest.TestCase):
    """healthCheckNodePort as the service registry allocates it."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-kube-svc-")
        cls.emu = Emu(cls.tmp, ccm="off").start()
        cls.s = cls.emu.kube_session()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def svc(self, name, **spec):
        body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": dict({"selector": {"app": name}, "ports": [{"port": 80}]}, **spec)}
        return self.s.call("POST", "/api/v1/namespaces/default/services", body)

    def patch(self, name, spec):
        return self.s.call("PATCH", f"/api/v1/namespaces/default/services/{name}", {"spec": spec},
                           content_type=SMP)

    def test_allocated_kept_released(self):
        st, o = self.svc("hc-a", type="LoadBalancer", externalTrafficPolicy="Local")
        self.assertEqual(st, 201, o)
        hc = o["spec"]["healthCheckNodePort"]
        self.assertTrue(30000 <= hc <= 32767)
        self.assertNotEqual(hc, o["spec"]["ports"][0]["nodePort"])
        self.assertTrue(o["spec"]["allocateLoadBalancerNodePorts"])
        # the registry's, not the creator's
        self.assertNotIn("f:healthCheckNodePort", json.dumps(o["metadata"]["managedFields"]))
        # an update without it keeps it
        st, o2 = self.s.call("PUT", "/api/v1/namespaces/default/services/hc-a",
                             dict(o, spec={k: v for k, v in o["spec"].items() if k != "healthCheckNodePort"}))
        self.assertEqual((st, o2["spec"]["healthCheckNodePort"]), (200, hc), o2)
        # immutable while needed
        st, err = self.patch("hc-a", {"healthCheckNodePort": hc + 1})
        self.assertEqual(st, 422)
        self.assertEqual(err["message"], 'Service "hc-a" is invalid: spec.healthCheckNodePort: Forbidden: field is immutable')
        # released when the policy changes, and free for others
        st, o = self.patch("hc-a", {"externalTrafficPolicy": "Cluster"})
        self.assertEqual(st, 200)
        self.assertNotIn("healthCheckNodePort", o["spec"])
        st, o = self.svc("hc-b", type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=hc)
        self.assertEqual((st, o["spec"].get("healthCheckNodePort")), (201, hc), o)
        # unique across node ports and health checks
        st, err = self.svc("hc-c", type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=hc)
        self.assertEqual(st, 422)
        self.assertEqual(err["message"], f'Service "hc-c" is invalid: spec.healthCheckNodePort: Invalid value: {hc}: provided port is already allocated')
        st, err = self.svc("hc-d", type="NodePort", ports=[{"port": 80, "nodePort": hc}])
        self.assertEqual(st, 422, err)
        # and only where it means something
        st, err = self.svc("hc-e", type="NodePort", healthCheckNodePort=31000)
        self.assertEqual(st, 422)
        self.assertIn("may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'", err["message"])
        st, err = self.svc("hc-f", externalTrafficPolicy="Local")
        self.assertEqual(st, 422)
        self.assertIn("spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services", err["message"])
        # the type going back to ClusterIP takes the load-balancer fields with it
        st, o = self.patch("hc-b", {"type": "ClusterIP"})
        self.assertEqual(st, 200, o)
        for f in ("healthCheckNodePort", "externalTrafficPolicy", "allocateLoadBalancerNodePorts"):
            self.assertNotIn(f, o["spec"])
        self.assertNotIn("nodePort", o["spec"]["ports"][0])


if __name__ == "__main__":
    unittest.main()
