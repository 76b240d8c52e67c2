"""talos-gcp-emu at 5,000 instances: aggregated/instances in 10 pages of 500, complete and stable.

Creates the instances through the real API (instances.insert with a pods:/24 alias each), then
walks aggregatedList as `talos-gcp verify` does. Timings are printed as TAP diagnostics, never
asserted (bench/ is where figures are judged).
"""
import shutil
import tempfile
import time
import unittest

from emu import Emu

N = 5000


class TestScale(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-scale-")
        cls.emu = Emu(cls.tmp, kube=False).start()
        cls.emu.create_network("talos")
        # A pods range with room for 5,000 /24s.
        cls.emu.create_subnet("nodes", cidr="10.0.0.0/16", pods="10.64.0.0/10", services=None)
        s = cls.emu.http()
        t0 = time.monotonic()
        last = None
        for i in range(N):
            st, op = s.call("POST", "zones/us-central1-a/instances",
                            Emu.instance_body(f"node-{i:05d}"))
            if st != 200:
                raise AssertionError(f"insert {i}: {st} {op}")
            last = op
        cls.emu.wait_op(last)
        cls.insert_s = time.monotonic() - t0
        s.close()
        print(f"# {N} instances.insert + wait: {cls.insert_s:.2f} s", flush=True)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def walk(self, session):
        names, aliases, pages, token = [], set(), 0, None
        while True:
            q = {"maxResults": "500", "includeAllScopes": "True", "returnPartialSuccess": "True"}
            if token:
                q["pageToken"] = token
            st, agg = session.call("GET", "aggregated/instances", query=q)
            self.assertEqual(st, 200)
            pages += 1
            for scope, v in agg["items"].items():
                for inst in v.get("instances", []):
                    names.append(inst["name"])
                    aliases.add(inst["networkInterfaces"][0]["aliasIpRanges"][0]["ipCidrRange"])
            token = agg.get("nextPageToken")
            if not token:
                return names, aliases, pages

    def test_aggregated_list_in_ten_pages(self):
        s = self.emu.http()
        self.emu.stats(reset=True)
        t0 = time.monotonic()
        names, aliases, pages = self.walk(s)
        elapsed = time.monotonic() - t0
        s.close()
        print(f"# aggregated/instances, {N} instances in {pages} pages: {elapsed * 1000:.0f} ms", flush=True)
        self.assertEqual(pages, 10)
        self.assertEqual(names, [f"node-{i:05d}" for i in range(N)])
        self.assertEqual(len(aliases), N)  # every /24 distinct
        self.assertEqual(self.emu.stats()["total"], 10)

    def test_partial_response_pages(self):
        # What a client that asks only for what it reads gets (the standard "fields").
        s = self.emu.http()
        t0, token, n, pages = time.monotonic(), None, 0, 0
        fields = ("items/*/instances(name,zone,networkInterfaces(name,aliasIpRanges)),"
                  "nextPageToken")
        while True:
            q = {"maxResults": "500", "fields": fields}
            if token:
                q["pageToken"] = token
            st, agg = s.call("GET", "aggregated/instances", query=q)
            self.assertEqual(st, 200)
            pages += 1
            for v in agg["items"].values():
                n += len(v.get("instances", []))
            token = agg.get("nextPageToken")
            if not token:
                break
        s.close()
        print(f"# aggregated/instances with fields=: {n} instances, {pages} pages, "
              f"{(time.monotonic() - t0) * 1000:.0f} ms", flush=True)
        self.assertEqual((n, pages), (N, 10))

    def test_conflict_check_uses_the_index(self):
        # A taken range is found among 5,000 without scanning: the Operation fails.
        held = self.emu.get_instance("node-04999")["networkInterfaces"][0]["aliasIpRanges"][0]["ipCidrRange"]
        op = self.emu.create_instance("late", alias=held, wait=False)
        self.assertEqual(self.emu.wait_op(op)["error"]["errors"][0]["code"], "IP_IN_USE_BY_ANOTHER_RESOURCE")


if __name__ == "__main__":
    unittest.main()
