"""gcloud (a client nobody here wrote) against talos-gcp-emu's Compute API.

The commands of the design note (describe ... aliasIpRanges, network-interfaces update
--aliases "pods:CIDR", clearing with --aliases ""), the list commands, instances create with
aliases=pods:/24, and gcloud's own service-account login through the emulator's token
endpoint. Each gcloud run costs about two seconds, so independent groups of commands run in
parallel threads while the scenario is set up, and the test methods check their results.
"""
import concurrent.futures
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from emu import Emu

GCLOUD = shutil.which("gcloud")
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
ENV_SCRIPT = os.path.join(SOURCE_ROOT, "..", "shared", "tools", "gcloud-env.sh")
ZONE = "us-central1-a"


def gcloud_env(port, tmp):
    """The environment of ../shared/tools/gcloud-env.sh PORT (isolated config, no credentials,
    Compute endpoint override), built here when the script is not next to the repository."""
    env = dict(os.environ)
    if os.path.exists(ENV_SCRIPT):
        out = subprocess.run(["sh", ENV_SCRIPT, str(port)], capture_output=True, check=True,
                             text=True).stdout
        for line in out.splitlines():
            if line.startswith("export "):
                k, v = line[len("export "):].split("=", 1)
                env[k] = v
    else:
        env.update({"CLOUDSDK_CORE_PROJECT": "demo-project",
                    "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
                    "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": f"http://127.0.0.1:{port}/compute/v1/",
                    "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
                    "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
                    "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"})
    # Each scenario gets its own config directory (gcloud writes to it).
    env["CLOUDSDK_CONFIG"] = tempfile.mkdtemp(prefix="gcloud-cfg-", dir=tmp)
    return env


def run(env, *args):
    r = subprocess.run([GCLOUD, *args], env=env, capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


@unittest.skipUnless(GCLOUD, "gcloud is not installed")
class TestGcloudCompute(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gcloud-conf-")
        cls.emu = Emu(cls.tmp, kube=False).start()
        cls.emu.create_network("talos")
        cls.emu.create_subnet("nodes")
        for n in ("node-a", "node-b", "node-c", "node-d"):
            cls.emu.create_instance(n)
        cls.emu.set_aliases("node-c", [])  # node-c holds no range
        port = cls.emu.cloud_url.rsplit(":", 1)[1]
        cls.env = gcloud_env(port, cls.tmp)
        cls.a_range = cls.emu.get_instance("node-a")["networkInterfaces"][0]["aliasIpRanges"][0]["ipCidrRange"]

        # Auth: a second emulator that requires tokens; gcloud logs in with the key file.
        cls.sa = os.path.join(cls.tmp, "sa.json")
        cls.auth_emu = Emu(cls.tmp, kube=False, extra=("--require-auth", "--sa-key-out", cls.sa)).start()
        cls.auth_env = gcloud_env(cls.auth_emu.cloud_url.rsplit(":", 1)[1], cls.tmp)
        cls.auth_env.pop("CLOUDSDK_AUTH_DISABLE_CREDENTIALS", None)

        g, e = cls.g, cls.env
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=6)
        cls.results = {
            "lists": pool.submit(lambda: {
                "instances": run(e, "compute", "instances", "list", "--format=json"),
                "paged": run(e, "compute", "instances", "list", "--page-size=1", "--format=value(name)"),
                "zonal": run(e, "compute", "instances", "list", f"--zones={ZONE}", "--format=value(name)"),
                "networks": run(e, "compute", "networks", "list", "--format=value(name,x_gcloud_subnet_mode)"),
            }),
            "subnets": pool.submit(lambda: {
                "list": run(e, "compute", "networks", "subnets", "list", "--format=value(name,region)"),
                "describe": run(e, "compute", "networks", "subnets", "describe", "nodes",
                                "--region=us-central1", "--format=json"),
            }),
            "describe": pool.submit(lambda: {
                "aliases": g("describe", "node-a"),
                "replace": run(e, "compute", "instances", "network-interfaces", "update", "node-a",
                               f"--zone={ZONE}", "--aliases=pods:172.23.0.0/24"),
                "conflict": run(e, "compute", "instances", "network-interfaces", "update", "node-c",
                                f"--zone={ZONE}", f"--aliases=pods:{cls.a_range}"),
            }),
            # The design note's recovery on node-b: clear, then set, then read back.
            "recovery": pool.submit(lambda: {
                "clear": run(e, "compute", "instances", "network-interfaces", "update", "node-b",
                             f"--zone={ZONE}", "--aliases="),
                "cleared": cls.emu.get_instance("node-b")["networkInterfaces"][0].get("aliasIpRanges"),
                "set": run(e, "compute", "instances", "network-interfaces", "update", "node-b",
                           f"--zone={ZONE}", "--aliases=pods:172.22.42.0/24"),
                "after": g("describe", "node-b"),
            }),
            "create": pool.submit(lambda: {
                "create": run(e, "compute", "instances", "create", "gc-new", f"--zone={ZONE}",
                              "--network-interface=subnet=nodes,aliases=pods:/24",
                              "--metadata=user-data=#talos", "--format=json"),
                "delete": run(e, "compute", "instances", "delete", "gc-new", f"--zone={ZONE}", "--quiet"),
            }),
            "auth": pool.submit(lambda: {
                "activate": run(cls.auth_env, "auth", "activate-service-account", f"--key-file={cls.sa}"),
                "list": run(cls.auth_env, "compute", "zones", "list", "--format=value(name)"),
            }),
        }
        pool.shutdown(wait=True)
        cls.results = {k: f.result() for k, f in cls.results.items()}

    @classmethod
    def g(cls, what, name):
        if what == "describe":
            return run(cls.env, "compute", "instances", "describe", name, f"--zone={ZONE}",
                       "--format=value(networkInterfaces[0].aliasIpRanges)")
        raise ValueError(what)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        cls.auth_emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ok(self, result):
        rc, out, err = result
        self.assertEqual(rc, 0, err)
        return out

    def test_instances_list(self):
        r = self.results["lists"]
        names = sorted(i["name"] for i in json.loads(self.ok(r["instances"])))
        self.assertEqual([n for n in names if n.startswith("node-")],
                         ["node-a", "node-b", "node-c", "node-d"])
        # --page-size=1: every aggregated page followed, NO_RESULTS_ON_PAGE scopes skipped.
        self.assertEqual([n for n in self.ok(r["paged"]).split() if n.startswith("node-")],
                         ["node-a", "node-b", "node-c", "node-d"])
        self.assertIn("node-a", self.ok(r["zonal"]).split())

    def test_networks_and_subnets(self):
        self.assertIn("talos", self.ok(self.results["lists"]["networks"]))
        s = self.results["subnets"]
        self.assertIn("nodes\tus-central1", self.ok(s["list"]))
        sub = json.loads(self.ok(s["describe"]))
        self.assertEqual(sub["ipCidrRange"], "10.0.0.0/16")
        self.assertIn({"rangeName": "pods", "ipCidrRange": "172.20.0.0/14"}, sub["secondaryIpRanges"])

    def test_describe_alias_ranges(self):
        out = self.ok(self.results["describe"]["aliases"])
        self.assertIn(f"'ipCidrRange': '{self.a_range}'", out)
        self.assertIn("'subnetworkRangeName': 'pods'", out)

    def test_replacing_a_range_is_refused(self):
        rc, out, err = self.results["describe"]["replace"]
        self.assertNotEqual(rc, 0)
        self.assertIn("remove", err)

    def test_range_held_by_another_instance(self):
        rc, out, err = self.results["describe"]["conflict"]
        self.assertNotEqual(rc, 0)
        self.assertIn("already being used by another resource", err)

    def test_clear_then_set(self):
        r = self.results["recovery"]
        self.ok(r["clear"])
        self.assertIsNone(r["cleared"])
        self.ok(r["set"])
        self.assertIn("'ipCidrRange': '172.22.42.0/24'", self.ok(r["after"]))
        nic = self.emu.get_instance("node-b")["networkInterfaces"][0]
        self.assertEqual(nic["aliasIpRanges"], [{"subnetworkRangeName": "pods", "ipCidrRange": "172.22.42.0/24"}])

    def test_create_with_netmask_alias_and_delete(self):
        r = self.results["create"]
        created = json.loads(self.ok(r["create"]))
        alias = created[0]["networkInterfaces"][0]["aliasIpRanges"][0]
        self.assertEqual(alias["subnetworkRangeName"], "pods")
        self.assertRegex(alias["ipCidrRange"], r"^172\.2[0-3]\.\d+\.0/24$")
        self.ok(r["delete"])
        self.assertIsNone(self.emu.get_instance("gc-new"))

    def test_service_account_login_through_token_endpoint(self):
        r = self.results["auth"]
        self.ok(r["activate"])
        self.assertIn("us-central1-a", self.ok(r["list"]).split())


SOURCE_VALIDATE = os.environ.get("GCE_VALIDATE",
                                 os.path.join(SOURCE_ROOT, "..", "shared", "tools", "gce-validate.py"))
SDK_PYTHON = "/usr/lib/google-cloud-sdk/platform/bundledpythonunix/bin/python3"
R = "us-central1"


@unittest.skipUnless(GCLOUD, "gcloud is not installed")
class TestGcloudComputeFidelity(unittest.TestCase):
    """Issue 8's Compute fidelity as gcloud 528 sees it: reserved addresses and their users,
    the batch endpoint (every command with several requests), forwarding-rule ports, the
    filters gcloud sends, GCP's field limits."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gcloud-fid-")
        e = cls.emu = Emu(cls.tmp, kube=False).start()
        # Runs even when setUpClass fails (tearDownClass would not); a second stop is a no-op.
        cls.addClassCleanup(e.stop, check=False)
        e.create_network("talos")
        e.create_subnet("nodes")
        e.create_subnet("vips", cidr="10.8.0.0/24", pods="172.28.0.0/16", services=None)
        for name, zone in (("f-a", ZONE), ("f-b", ZONE), ("f-c", "us-central1-b")):
            e.create_instance(name, zone=zone, alias=None, talos=False)
        e.insert(f"regions/{R}/backendServices", {"name": "bs-ext", "loadBalancingScheme": "EXTERNAL",
                                                  "protocol": "TCP"})
        e.insert(f"regions/{R}/backendServices", {"name": "bs-int", "loadBalancingScheme": "INTERNAL",
                                                  "protocol": "TCP", "network": "global/networks/talos"})
        e.stats(reset=True)
        env = cls.env = gcloud_env(e.cloud_url.rsplit(":", 1)[1], cls.tmp)
        reg, zone = f"--region={R}", f"--zone={ZONE}"
        big = os.path.join(cls.tmp, "big")
        with open(big, "w") as f:
            f.write("v" * (256 * 1024 + 1))

        def seq(*cmds):
            return [run(env, *c) for c in cmds]

        pool = concurrent.futures.ThreadPoolExecutor(max_workers=6)
        jobs = {
            "reserve": pool.submit(seq,
                ("compute", "addresses", "create", "vip", reg, "--subnet=vips", "--addresses=10.8.0.2"),
                ("compute", "instances", "create", "gc-pool", zone, "--subnet=vips",
                 "--format=value(networkInterfaces[0].networkIP)"),
                ("compute", "addresses", "create", "dup", reg, "--subnet=vips", "--addresses=10.8.0.2"),
                ("compute", "addresses", "describe", "vip", reg, "--format=value(status)")),
            "users": pool.submit(seq,
                ("compute", "addresses", "create", "used", reg, "--subnet=vips", "--addresses=10.8.0.20"),
                ("compute", "instances", "create", "gc-user", zone, "--subnet=vips",
                 "--private-network-ip=used", "--format=value(networkInterfaces[0].networkIP)"),
                ("compute", "addresses", "describe", "used", reg, "--format=json"),
                ("compute", "addresses", "delete", "used", reg, "--quiet"),
                ("compute", "instances", "delete", "gc-user", zone, "--quiet"),
                ("compute", "addresses", "describe", "used", reg, "--format=value(status,users)")),
            "batch": pool.submit(seq,
                ("compute", "instances", "create", "gc-b1", "gc-b2", zone, "--subnet=nodes",
                 "--format=value(name,networkInterfaces[0].networkIP)"),
                ("compute", "instances", "list", f"--zones={ZONE},us-central1-b",
                 "--format=value(name)"),
                ("compute", "instances", "delete", "gc-b1", "gc-b2", zone, "--quiet")),
            "ports": pool.submit(seq,
                ("compute", "forwarding-rules", "create", "fr80", reg, "--ports=80",
                 "--backend-service=bs-ext", f"--backend-service-region={R}"),
                ("compute", "forwarding-rules", "describe", "fr80", reg, "--format=value(portRange)"),
                ("compute", "addresses", "create", "shared", reg, "--subnet=vips",
                 "--addresses=10.8.0.30", "--purpose=SHARED_LOADBALANCER_VIP"),
                ("compute", "forwarding-rules", "create", "fr-api", reg, "--load-balancing-scheme=INTERNAL",
                 "--backend-service=bs-int", "--subnet=vips", "--address=shared", "--ports=6443"),
                ("compute", "forwarding-rules", "create", "fr-talos", reg, "--load-balancing-scheme=INTERNAL",
                 "--backend-service=bs-int", "--subnet=vips", "--address=10.8.0.30", "--ports=50000"),
                ("compute", "forwarding-rules", "create", "fr-clash", reg, "--load-balancing-scheme=INTERNAL",
                 "--backend-service=bs-int", "--subnet=vips", "--address=10.8.0.30", "--ports=6443"),
                ("compute", "addresses", "describe", "shared", reg, "--format=json")),
            "filters": pool.submit(seq,
                ("compute", "instances", "list", f"--zones={ZONE},us-central1-b",
                 "--filter=name~'^f-(a|c)$'", "--format=value(name)"),
                ("compute", "instances", "list", f"--zones={ZONE}", "--regexp=f-[ab]",
                 "--format=value(name)"),
                ("compute", "instances", "list", "f-a", "f-c", f"--zones={ZONE},us-central1-b",
                 "--format=value(name)"),
                ("compute", "addresses", "list", f"--regions={R}", "--filter=address=10.8.0.2",
                 "--format=value(name)")),
            "limits": pool.submit(seq,
                ("compute", "instances", "create", "gc-desc", zone, "--subnet=nodes",
                 "--description=" + "x" * 2049),
                ("compute", "instances", "create", "gc-tags", zone, "--subnet=nodes", "--tags=Web"),
                ("compute", "instances", "create", "gc-md", zone, "--subnet=nodes",
                 f"--metadata-from-file=big={big}"),
                ("compute", "instances", "create", "gc-desc-ok", zone, "--subnet=nodes",
                 "--description=" + "é" * 2048, "--format=value(description)")),
        }
        pool.shutdown(wait=True)
        cls.r = {k: f.result() for k, f in jobs.items()}

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ok(self, result):
        rc, out, err = result
        self.assertEqual(rc, 0, err)
        return out

    def refused(self, result, text):
        rc, out, err = result
        self.assertNotEqual(rc, 0, out)
        self.assertIn(text, err)

    def validate(self, type_name, doc):
        if not (os.path.exists(SOURCE_VALIDATE) and os.path.exists(SDK_PYTHON)):
            return
        r = subprocess.run([SDK_PYTHON, SOURCE_VALIDATE, type_name, "-"], input=json.dumps(doc).encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode())

    def test_reserved_address_leaves_the_pool(self):
        create, instance, dup, describe = self.r["reserve"]
        self.ok(create)
        # 10.8.0.2 is the subnet's first free address: the instance gets the next one.
        self.assertEqual(self.ok(instance).strip(), "10.8.0.3")
        self.refused(dup, "IP '10.8.0.2' is already being used by another resource.")
        self.assertEqual(self.ok(describe).strip(), "RESERVED")

    def test_address_in_use_by_an_instance(self):
        create, instance, describe, delete, gone, after = self.r["users"]
        self.ok(create)
        self.assertEqual(self.ok(instance).strip(), "10.8.0.20")
        a = json.loads(self.ok(describe))
        self.assertEqual(a["status"], "IN_USE")
        self.assertEqual([u.rsplit("/", 3)[1:] for u in a["users"]],
                         [[ZONE, "instances", "gc-user"]])
        self.validate("Address", a)
        self.refused(delete, "is already being used by 'projects/demo-project/zones/"
                             f"{ZONE}/instances/gc-user'")
        self.ok(gone)
        self.assertEqual(self.ok(after).strip(), "RESERVED")

    def test_several_requests_go_through_the_batch_endpoint(self):
        create, listed, delete = self.r["batch"]
        rows = [line.split("\t") for line in self.ok(create).split("\n") if line]
        self.assertEqual(sorted(r[0] for r in rows), ["gc-b1", "gc-b2"])
        self.assertNotEqual(rows[0][1], rows[1][1])
        names = self.ok(listed).split()
        self.assertTrue({"gc-b1", "gc-b2", "f-a", "f-c"} <= set(names), names)
        self.ok(delete)
        self.assertIsNone(self.emu.get_instance("gc-b1"))
        self.assertIsNone(self.emu.get_instance("gc-b2"))
        self.assertGreater(self.emu.stats()["requests"].get("POST /batch/compute/v1", 0), 0)

    def test_forwarding_rule_ports(self):
        create, describe, shared, api, talos, clash, shared_doc = self.r["ports"]
        self.ok(create)
        self.assertEqual(self.ok(describe).strip(), "80-80")
        st, fr = self.emu.compute("GET", f"projects/demo-project/regions/{R}/forwardingRules/fr80")
        self.validate("ForwardingRule", fr)
        self.ok(shared)
        self.ok(api)
        self.ok(talos)
        self.refused(clash, "Specified IP address is in-use and would result in a conflict.")
        a = json.loads(self.ok(shared_doc))
        self.assertEqual(a["status"], "IN_USE")
        self.assertEqual(sorted(u.rsplit("/", 1)[1] for u in a["users"]), ["fr-api", "fr-talos"])
        self.validate("Address", a)

    def test_filters_gcloud_sends(self):
        regex, regexp, names, address = self.r["filters"]
        self.assertEqual(sorted(self.ok(regex).split()), ["f-a", "f-c"])
        self.assertEqual(sorted(self.ok(regexp).split()), ["f-a", "f-b"])
        self.assertEqual(sorted(self.ok(names).split()), ["f-a", "f-c"])
        self.ok(address)

    def test_field_limits(self):
        desc, tags, md, ok = self.r["limits"]
        self.refused(desc, "Must be at most 2048 characters.")
        self.refused(tags, "'resource.tags.items[0]': 'Web'")
        self.refused(md, "Must be at most 262144 bytes (256 KiB).")
        self.assertEqual(self.ok(ok).strip(), "é" * 2048)


if __name__ == "__main__":
    unittest.main()
