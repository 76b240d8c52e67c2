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


if __name__ == "__main__":
    unittest.main()
