"""talos-gcp-emu: the batch endpoint POST /batch/compute/v1 (multipart/mixed), as gcloud and
Google's client libraries send it (https://cloud.google.com/compute/docs/api/how-tos/batch):
parts are answered in order, Content-ID "response-" + the request's, through the same faults,
authentication and handlers as direct requests; a part that suspends (operations/wait) holds
the batch without blocking the emulator."""
import email.parser
import http.client
import json
import os
import shutil
import tempfile
import threading
import unittest
import urllib.parse

from emu import Emu

P = "/compute/v1/projects/demo-project"
Z = "zones/us-central1-a"
BOUNDARY = "===============5296667207076499776=="


def build(requests, crlf=False, version=True, boundary=BOUNDARY):
    """A batch body as apitools writes it (LF, Content-ID <uuid+N>), or CRLF as other
    clients do. requests: (method, path, body or None[, headers])."""
    nl = "\r\n" if crlf else "\n"
    out = []
    for i, r in enumerate(requests):
        method, path, body = r[:3]
        headers = dict(r[3]) if len(r) > 3 else {}
        data = json.dumps(body) if body is not None else ""
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        headers.setdefault("content-length", str(len(data.encode())))
        line = f"{method} {path}" + (" HTTP/1.1" if version else "")
        out.append(f"--{boundary}{nl}Content-Type: application/http{nl}MIME-Version: 1.0{nl}"
                   f"Content-Transfer-Encoding: binary{nl}Content-ID: <c0ffee+{i}>{nl}{nl}"
                   f"{line}{nl}" + "".join(f"{k}: {v}{nl}" for k, v in headers.items())
                   + f"{nl}{data}{nl}")
    return ("".join(out) + f"--{boundary}--{nl}").encode()


def parse(content_type, payload):
    """The answer as apitools parses it: [(content-id, status, headers, body)]."""
    msg = email.parser.Parser().parsestr(f"content-type: {content_type}\r\n\r\n" + payload.decode())
    assert msg.is_multipart(), payload[:200]
    parts = []
    for part in msg.get_payload():
        status_line, rest = part.get_payload().split("\n", 1)
        _, status, _reason = status_line.split(" ", 2)
        inner = email.parser.Parser().parsestr(rest)
        body = inner.get_payload()
        parts.append((part["Content-ID"], int(status), dict(inner),
                      json.loads(body) if body.strip() else None))
    return parts


class BatchWorld(unittest.TestCase):
    extra = ()
    world = True  # a network and a subnet (not under --require-auth)

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="emu-batch-")
        cls.emu = Emu(cls.tmp, kube=False, extra=cls.extra).start()
        try:
            if cls.world:
                cls.emu.create_network("talos")
                cls.emu.create_subnet("nodes")
        except Exception:
            cls.emu.stop(check=False)  # tearDownClass does not run after a failed setUpClass
            raise
        cls.host, cls.port = cls.emu.cloud_url.split("//", 1)[1].rsplit(":", 1)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def batch(self, body, content_type=f'multipart/mixed; boundary="{BOUNDARY}"', headers=None,
              method="POST", timeout=60):
        """(status, content type, raw body) of one batch request."""
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=timeout)
        try:
            h = {"Content-Type": content_type}
            h.update(headers or {})
            conn.request(method, "/batch/compute/v1", body=body, headers=h)
            r = conn.getresponse()
            return r.status, r.getheader("Content-Type"), r.read()
        finally:
            conn.close()

    def parts(self, requests, **kw):
        st, ct, payload = self.batch(build(requests, **kw))
        self.assertEqual(st, 200, payload)
        self.assertTrue(ct.startswith("multipart/mixed; boundary="), ct)
        return parse(ct, payload)


class TestBatch(BatchWorld):
    def test_gcloud_list_two_zones(self):
        self.emu.create_instance("in-a", zone="us-central1-b")
        self.emu.create_instance("in-b", zone="us-central1-c")
        parts = self.parts([("GET", f"{P}/zones/us-central1-b/instances?alt=json&maxResults=500", None),
                            ("GET", f"{P}/zones/us-central1-c/instances?alt=json&maxResults=500", None)])
        self.assertEqual([p[0] for p in parts], ["<response-c0ffee+0>", "<response-c0ffee+1>"])
        self.assertEqual([p[1] for p in parts], [200, 200])
        self.assertEqual([i["name"] for i in parts[0][3]["items"]], ["in-a"])
        self.assertEqual([i["name"] for i in parts[1][3]["items"]], ["in-b"])
        self.assertEqual(parts[0][2]["Content-Type"], "application/json; charset=UTF-8")

    def test_inserts_then_gets_in_order(self):
        bodies = [Emu.instance_body(n, talos=False) for n in ("ins-a", "ins-b")]
        parts = self.parts([("POST", f"{P}/{Z}/instances?alt=json", b) for b in bodies])
        self.assertEqual([p[3]["kind"] for p in parts], ["compute#operation"] * 2)
        for p in parts:
            self.emu.wait_op(p[3])
        parts = self.parts([("GET", f"{P}/{Z}/instances/ins-a", None),
                            ("GET", f"{P}/{Z}/instances/ins-b", None),
                            ("DELETE", f"{P}/{Z}/instances/ins-a", None),
                            ("GET", f"{P}/{Z}/instances/nope", None)])
        self.assertEqual([p[1] for p in parts], [200, 200, 200, 404])
        self.assertNotEqual(parts[0][3]["networkInterfaces"][0]["networkIP"],
                            parts[1][3]["networkInterfaces"][0]["networkIP"])
        self.assertEqual(parts[3][3]["error"]["errors"][0]["reason"], "notFound")

    def test_crlf_and_request_lines_without_version(self):
        parts = self.parts([("GET", f"{P}/{Z}", None), ("GET", f"{P}/global/networks/talos", None)],
                           crlf=True, version=False)
        self.assertEqual([p[3]["name"] for p in parts], ["us-central1-a", "talos"])

    def test_answer_as_google_api_python_client_reads_it(self):
        st, ct, payload = self.batch(build([("GET", f"{P}/{Z}", None)]))
        # googleapiclient: the body after the first CRLF CRLF of the inner response.
        part = payload.decode().split("\r\n--", 1)[0].split("Content-ID: <response-c0ffee+0>\r\n\r\n", 1)[1]
        status_line, rest = part.split("\n", 1)
        self.assertEqual(status_line.split(" ", 2)[:2], ["HTTP/1.1", "200"])
        self.assertEqual(json.loads(rest.split("\r\n\r\n", 1)[1])["name"], "us-central1-a")

    def test_filters_and_queries_are_decoded(self):
        self.emu.create_instance("q-one", alias=None)
        q = urllib.parse.urlencode({"filter": "name eq (q-one|q-two)", "maxResults": "1"})
        parts = self.parts([("GET", f"{P}/{Z}/instances?{q}", None)])
        self.assertEqual([i["name"] for i in parts[0][3]["items"]], ["q-one"])

    def test_parts_go_through_faults_and_are_counted(self):
        self.emu.stats(reset=True)
        fault = self.emu.add_fault(method="GET", path=f"{P}/global/networks/talos", status=503,
                                   reason="backendError", count=1)
        parts = self.parts([("GET", f"{P}/global/networks/talos", None), ("GET", f"{P}/{Z}", None)])
        self.assertEqual([p[1] for p in parts], [503, 200])
        self.assertEqual(parts[0][3]["error"]["errors"][0]["reason"], "backendError")
        stats = self.emu.stats()
        self.assertEqual(stats["requests"].get("POST /batch/compute/v1"), 1)
        self.assertEqual(stats["requests"].get(f"GET {P}/global/networks/talos"), 1)
        self.assertEqual(stats["requests"].get(f"GET {P}/{Z}"), 1)
        self.assertNotIn(str(fault["id"]), json.dumps(self.emu.control("GET", "faults")[1]))
        # A delay on a part holds the batch, then it goes on to its handler.
        self.emu.add_fault(method="GET", path=f"{P}/{Z}", delayMs=200, count=1)
        parts = self.parts([("GET", f"{P}/{Z}", None), ("GET", f"{P}/global/networks/talos", None)])
        self.assertEqual([p[1] for p in parts], [200, 200])

    def test_reset_on_a_part_drops_the_connection(self):
        self.emu.add_fault(path=f"{P}/regions/us-central1", reset=True, count=1)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            self.batch(build([("GET", f"{P}/{Z}", None), ("GET", f"{P}/regions/us-central1", None)]))
        self.assertEqual(self.parts([("GET", f"{P}/regions/us-central1", None)])[0][1], 200)

    def test_bad_batches(self):
        ok = build([("GET", f"{P}/{Z}", None)])
        cases = [
            (ok, "application/json", "multipart/mixed"),
            (ok, "multipart/mixed", "multipart/mixed"),
            (ok, 'multipart/mixed; boundary="other"', "delimiter"),
            (ok[:-8], None, "closing delimiter"),
            (b"", None, "delimiter"),
            (build([("GET", "http://example.com/compute/v1/projects/demo-project", None)]), None,
             "full URL"),
            (build([("GET", "/_emu/state", None)]), None, "not a Compute Engine v1 path"),
            (build([("POST", "/batch/compute/v1", None)]), None, "not a Compute Engine v1 path"),
            (build([("GET", "/token", None)]), None, "not a Compute Engine v1 path"),
            (build([("GET", f"{P}/{Z}", None)] * 1001), None, "1000 calls"),
            (ok.replace(b"Content-Type: application/http", b"Content-Type: text/plain"), None,
             "application/http"),
            (ok.replace(b"binary", b"base64"), None, "Content-Transfer-Encoding"),
            (ok.replace(b"GET /", b"get /"), None, "method"),
            (ok.replace(b" HTTP/1.1", b" HTTP/2"), None, "version"),
            (ok.replace(b"content-length: 0", b"content-length: 99"), None, "Content-Length"),
            (ok.replace(f"{P}/{Z}".encode(), b"/compute/v1/%00"), None, "path"),
        ]
        for body, ct, what in cases:
            with self.subTest(what):
                kw = {"content_type": ct} if ct else {}
                st, rct, payload = self.batch(body, **kw)
                self.assertEqual(st, 400, payload[:300])
                err = json.loads(payload)
                self.assertEqual(err["error"]["errors"][0]["reason"], "invalid")
                self.assertIn(what, err["error"]["message"])
        st, _, payload = self.batch(b"", method="GET")
        self.assertEqual(st, 405, payload)

    def test_preamble_epilogue_padding_and_folding(self):
        body = (f"preamble\r\n--{BOUNDARY}  \r\nContent-Type: application/http\r\n"
                f"Content-ID:\r\n <folded>\r\n\r\nGET {P}/{Z} HTTP/1.1\r\n\r\n\r\n"
                f"--{BOUNDARY}--\r\nepilogue").encode()
        st, ct, payload = self.batch(body)
        self.assertEqual(st, 200, payload)
        parts = parse(ct, payload)
        self.assertEqual((parts[0][0], parts[0][1]), ("<response-folded>", 200))


class TestBatchWaits(BatchWorld):
    # Operations stay RUNNING for a minute: a wait in a batch is suspended until released.
    extra = ("--operation-delay", "60s")
    world = False

    def test_wait_suspends_the_batch_not_the_emulator(self):
        op = self.emu.insert("global/networks", {"name": "slow", "autoCreateSubnetworks": False},
                             wait=False)
        self.assertEqual(op["status"], "RUNNING")
        wait = urllib.parse.urlsplit(op["selfLink"]).path + "/wait"
        self.emu.stats(reset=True)
        result = {}
        t = threading.Thread(target=lambda: result.update(
            r=self.batch(build([("POST", wait, None), ("GET", f"{P}/{Z}", None)]), timeout=120)))
        t.start()
        try:
            self.emu.wait_until(lambda: self.emu.stats()["requests"].get(f"POST {wait}"),
                                timeout=30, what="the wait part reached its handler")
            # The emulator answers others while the batch waits.
            self.assertEqual(self.emu.compute("GET", f"projects/demo-project/{Z}")[0], 200)
            self.assertTrue(t.is_alive())
        finally:
            # Replacing the state wakes every suspended wait (they answer what they see).
            st, state = self.emu.control("GET", "state")
            self.emu.control("PUT", "state", state)
            t.join(60)
        self.assertFalse(t.is_alive())
        st, ct, payload = result["r"]
        self.assertEqual(st, 200, payload)
        parts = parse(ct, payload)
        self.assertEqual([p[1] for p in parts], [200, 200])
        self.assertEqual(parts[0][3]["name"], op["name"])
        self.assertEqual(parts[1][3]["name"], "us-central1-a")

    def test_client_gone_while_waiting(self):
        op = self.emu.insert("global/networks", {"name": "gone", "autoCreateSubnetworks": False},
                             wait=False)
        wait = urllib.parse.urlsplit(op["selfLink"]).path + "/wait"
        self.emu.stats(reset=True)
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        conn.request("POST", "/batch/compute/v1", body=build([("POST", wait, None)]),
                     headers={"Content-Type": f'multipart/mixed; boundary="{BOUNDARY}"'})
        self.emu.wait_until(lambda: self.emu.stats()["requests"].get(f"POST {wait}"), timeout=30,
                            what="the wait part reached its handler")
        conn.close()
        # The emulator lives on (sanitizers check the cleanup when it stops).
        self.assertEqual(self.emu.compute("GET", f"projects/demo-project/{Z}")[0], 200)


class TestBatchAuth(BatchWorld):
    world = False

    @classmethod
    def setUpClass(cls):
        tmp = tempfile.mkdtemp(prefix="emu-batch-auth-")
        cls.adc_path = os.path.join(tmp, "adc.json")
        cls.extra = ("--require-auth", "--adc-user-out", cls.adc_path)
        cls.tmp_auth = tmp
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.tmp_auth, ignore_errors=True)

    def token(self):
        with open(self.adc_path) as f:
            u = json.load(f)
        form = urllib.parse.urlencode({"grant_type": "refresh_token", "client_id": u["client_id"],
                                       "client_secret": u["client_secret"],
                                       "refresh_token": u["refresh_token"]}).encode()
        st, body = self.emu.request("POST", u["token_uri"], form,
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 200, body)
        return body["access_token"]

    def test_outer_authorization_applies_and_parts_may_override(self):
        token = self.token()
        req = [("GET", f"{P}/{Z}", None),
               ("GET", f"{P}/{Z}", None, {"Authorization": "Bearer not-a-token"})]
        st, ct, payload = self.batch(build(req))
        self.assertEqual([p[1] for p in parse(ct, payload)], [401, 401])
        st, ct, payload = self.batch(build(req), headers={"Authorization": f"Bearer {token}"})
        self.assertEqual([p[1] for p in parse(ct, payload)], [200, 401])


if __name__ == "__main__":
    unittest.main()
