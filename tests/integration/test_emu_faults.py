"""talos-gcp-emu: fault injection, request statistics and the /_emu control endpoint."""
import http.client
import json
import shutil
import socket
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from emu import Emu

P = "projects/demo-project"
ZONES = f"/compute/v1/{P}/zones"


class FaultWorld(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-faults-")
        cls.emu = Emu(cls.tmp, kube=False).start()
        cls.emu.create_network("talos")
        cls.emu.create_subnet("nodes")
        cls.emu.create_instance("node-a")

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def tearDown(self):
        self.emu.clear_faults()

    def get(self, path=ZONES, timeout=30, method="GET"):
        """(status, headers, parsed body)."""
        req = urllib.request.Request(self.emu.cloud_url + path, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.headers, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, e.headers, json.loads(raw)
            except ValueError:
                return e.code, e.headers, raw


class TestFaults(FaultWorld):
    def test_status_reason_retry_after_count(self):
        f = self.emu.add_fault(method="GET", path=ZONES, status=503, reason="rateLimitExceeded",
                               retryAfter="2", count=2)
        self.assertIn("id", f)
        for _ in range(2):
            status, hdrs, body = self.get()
            self.assertEqual(status, 503)
            self.assertEqual(hdrs["Retry-After"], "2")
            self.assertEqual(body["error"]["code"], 503)
            self.assertEqual(body["error"]["errors"][0]["reason"], "rateLimitExceeded")
            self.assertEqual(body["error"]["status"], "UNAVAILABLE")
        self.assertEqual(self.get()[0], 200)  # count ran out: the fault is gone
        self.assertEqual(self.emu.control("GET", "faults")[1]["faults"], [])

    def test_429(self):
        self.emu.add_fault(path=ZONES, status=429, reason="rateLimitExceeded", retryAfter=1, count=1)
        status, hdrs, body = self.get()
        self.assertEqual((status, hdrs["Retry-After"], body["error"]["status"]),
                         (429, "1", "RESOURCE_EXHAUSTED"))

    def test_canned_body(self):
        self.emu.add_fault(path=ZONES, body='{"items": {', count=1)
        req = urllib.request.Request(self.emu.cloud_url + ZONES)
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual((r.status, r.read()), (200, b'{"items": {'))
        self.emu.add_fault(path=ZONES, status=502, body="<html>bad gateway</html>",
                           contentType="text/html", count=1)
        status, hdrs, body = self.get()
        self.assertEqual((status, hdrs["Content-Type"], body), (502, "text/html", b"<html>bad gateway</html>"))
        self.emu.add_fault(path=ZONES, body={"kind": "compute#zoneList"}, count=1)
        self.assertEqual(self.get()[2], {"kind": "compute#zoneList"})

    def test_skip_then_fire(self):
        self.emu.add_fault(path=ZONES, status=500, skip=1, count=1)
        self.assertEqual([self.get()[0] for _ in range(3)], [200, 500, 200])

    def test_method_and_prefix_match(self):
        self.emu.add_fault(method="POST", pathPrefix=f"/compute/v1/{P}/zones/", status=500)
        self.assertEqual(self.get(f"/compute/v1/{P}/zones/us-central1-a/instances")[0], 200)
        status, op = self.emu.compute("POST", f"{P}/zones/us-central1-a/instances",
                                      Emu.instance_body("faulted"))
        self.assertEqual(status, 500)
        self.assertIsNone(self.emu.get_instance("faulted"))

    def test_port_filter(self):
        self.emu.add_fault(pathPrefix="/", port="kube", status=500)
        self.assertEqual(self.get()[0], 200)

    def test_delay_then_normal_answer(self):
        self.emu.add_fault(path=ZONES, delayMs=400, count=1)
        t0 = time.monotonic()
        status, _, body = self.get()
        self.assertGreaterEqual(time.monotonic() - t0, 0.35)
        self.assertEqual((status, body["kind"]), (200, "compute#zoneList"))

    def test_delay_does_not_block_others(self):
        self.emu.add_fault(path=ZONES, delayMs=1500, count=1)
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("slow", self.get()[0]))
        t.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        self.assertEqual(self.get(f"/compute/v1/{P}/regions")[0], 200)
        self.assertLess(time.monotonic() - t0, 1.0)
        t.join(5)
        self.assertEqual(result["slow"], 200)

    def test_delay_with_status(self):
        self.emu.add_fault(path=ZONES, delayMs=200, status=504, count=1)
        t0 = time.monotonic()
        self.assertEqual(self.get()[0], 504)
        self.assertGreaterEqual(time.monotonic() - t0, 0.15)

    def test_reset(self):
        self.emu.add_fault(path=ZONES, reset=True, count=1)
        with self.assertRaises((ConnectionError, http.client.HTTPException, urllib.error.URLError)):
            self.get()
        self.assertEqual(self.get()[0], 200)

    def test_hang_times_the_client_out(self):
        self.emu.add_fault(path=ZONES, hang=True, count=1)
        t0 = time.monotonic()
        with self.assertRaises((socket.timeout, TimeoutError, urllib.error.URLError)):
            self.get(timeout=0.5)
        self.assertLess(time.monotonic() - t0, 3)
        self.assertEqual(self.get()[0], 200)  # the loop is free

    def test_token_endpoint_and_metadata_can_fail_too(self):
        self.emu.add_fault(path="/token", status=503, count=1)
        status, _, _ = self.get("/token", method="POST")
        self.assertEqual(status, 503)

    def test_control_endpoint_is_never_faulted(self):
        self.emu.add_fault(pathPrefix="/", status=500)
        status, body = self.emu.control("GET", "faults")
        self.assertEqual(status, 200)
        self.assertEqual(len(body["faults"]), 1)
        self.emu.clear_faults()
        self.assertEqual(self.get()[0], 200)

    def test_list_and_delete_one(self):
        a = self.emu.add_fault(path="/a", status=500)
        b = self.emu.add_fault(path="/b", status=500)
        status, body = self.emu.control("DELETE", f"faults/{a['id']}")
        self.assertEqual(status, 200)
        ids = [f["id"] for f in self.emu.control("GET", "faults")[1]["faults"]]
        self.assertEqual(ids, [b["id"]])
        self.assertEqual(self.emu.control("DELETE", "faults/999999")[0], 404)

    def test_bad_specs(self):
        for spec in ({"path": "/x"},                                  # nothing to do
                     {"status": 500},                                 # no path
                     {"path": "/x", "pathPrefix": "/", "status": 500},
                     {"path": "/x", "status": 99},
                     {"path": "/x", "status": 500, "bogus": 1},
                     {"path": "/x", "delayMs": -1}):
            status, body = self.emu.control("POST", "faults", spec)
            self.assertEqual(status, 400, spec)
        status, body = self.emu.control("POST", "faults", [{"path": "/x", "status": 500},
                                                          {"path": "/y", "status": 501}])
        self.assertEqual((status, len(body["faults"])), (200, 2))

    def test_stale_fingerprint_between_read_and_write(self):
        inst = self.emu.get_instance("node-a")
        fp = inst["networkInterfaces"][0]["fingerprint"]
        status, body = self.emu.control("POST", "fingerprint",
                                        {"zone": "us-central1-a", "instance": "node-a"})
        self.assertEqual(status, 200)
        status, err = self.emu.set_aliases("node-a", [], fingerprint=fp)
        self.assertEqual(status, 412)
        status, _ = self.emu.control("POST", "fingerprint", {"zone": "us-central1-a", "instance": "ghost"})
        self.assertEqual(status, 404)


class TestStats(FaultWorld):
    def test_counts_and_reset(self):
        self.emu.stats(reset=True)
        for _ in range(3):
            self.get()
        self.get(f"/compute/v1/{P}/aggregated/instances")
        s = self.emu.stats()
        self.assertEqual(s["total"], 4)
        self.assertEqual(s["byPort"], {"cloud": 4, "kube": 0})
        self.assertEqual(s["requests"][f"GET {ZONES}"], 3)
        self.assertEqual(s["requests"][f"GET /compute/v1/{P}/aggregated/instances"], 1)
        self.assertFalse(any(k.split(" ", 1)[1].startswith("/_emu/") for k in s["requests"]))
        self.emu.control("DELETE", "stats")
        self.assertEqual(self.emu.stats()["total"], 0)

    def test_unknown_control_path(self):
        status, body = self.emu.control("GET", "nope")
        self.assertEqual(status, 404)
        self.assertEqual(self.emu.control("GET", "healthz")[0], 200)


if __name__ == "__main__":
    unittest.main()
