"""talos-gcp verify at a size where its instance listing is split into filtered ranges read
at once (cli/view_load.c): every Node still finds its instance, in few requests."""
import argparse
import json
import math
import os
import sys
import tempfile
import unittest

from cluster import SOURCE_ROOT, Emu, talos_gcp

sys.path.insert(0, os.path.join(SOURCE_ROOT, "scripts"))
import emu_cluster  # noqa: E402

N = 2000  # VIEW_RANGE_NODES (900) cuts this into 3 ranges


class VerifyScale(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory()
        cls.emu = Emu(cls._tmp.name, ccm="cloud").start()
        try:
            cls.seed()
        except BaseException:
            cls.emu.stop(check=False)  # tearDownClass does not run when setUpClass fails
            cls._tmp.cleanup()
            raise

    @classmethod
    def seed(cls):
        emu_cluster.seed(argparse.Namespace(
            endpoint=cls.emu.compute_endpoint, kubeconfig=cls.emu.kubeconfig,
            project=cls.emu.project, zone="europe-west1-b",
            zones=["europe-west1-b", "europe-west1-c", "europe-west1-d"], network="talos",
            subnet="nodes", nodes_cidr="10.0.0.0/16", pods_cidr="10.64.0.0/12",
            services_cidr="172.24.0.0/16", nodes=N, control_planes=3, prefix="talos-",
            timeout=120, want_podcidr=True))

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        cls._tmp.cleanup()

    def test_every_node_finds_its_instance_in_few_requests(self):
        self.emu.control("DELETE", "stats")
        rc, out, err = talos_gcp(self.emu, "verify", "-o", "json", "-v")
        self.assertEqual(rc, 0, err[-2000:])
        doc = json.loads(out)
        self.assertEqual(len(doc["nodes"]), N)
        self.assertTrue(all(n["status"] == "ok" for n in doc["nodes"]))
        self.assertIn("instances read in 3 ranges at once", err)
        _, stats = self.emu.control("GET", "stats")
        agg = stats["requests"].get("GET /compute/v1/projects/demo-project/aggregated/instances")
        nodes = stats["requests"].get("GET /api/v1/nodes")
        # One Node request (the whole list); a first page, then 3 ranges of at most 2 pages.
        self.assertEqual(nodes, 1, stats)
        self.assertLessEqual(agg, 1 + 3 * 2, stats)
        self.assertGreaterEqual(agg, 4, stats)
        self.assertLessEqual(stats["total"], 2 * math.ceil(N / 500) + 4, stats)


if __name__ == "__main__":
    unittest.main()
