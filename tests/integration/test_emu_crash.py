"""talos-gcp-emu --state against kill -9 and a full disk: nothing acknowledged is lost.

An acknowledged write is one whose answer the client read: a Compute insert answered with
its Operation (RUNNING), a Kubernetes create answered 201. An Operation reported DONE stays
DONE. The seed of the random kill moments is printed, so a failure can be replayed with
EMU_CRASH_SEED=N.
"""
import http.client
import json
import os
import random
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

from emu import Emu, EmuError

P = "projects/demo-project"
ROUNDS = 20


def cm_body(name, size=16):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
            "data": {"k": "v" * size}}


class Writers:
    """Two clients writing as fast as they can until the emulator dies under them."""

    def __init__(self, emu, tag):
        self.emu, self.tag = emu, tag
        self.nets = {}      # network name -> (operation name, requestId), acknowledged
        self.done = set()   # operations reported DONE
        self.cms = set()    # ConfigMaps acknowledged (201)
        self.errors = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.compute), threading.Thread(target=self.kube)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def compute(self):
        s = self.emu.http()
        try:
            i = 0
            while not self.stop.is_set():
                name, rid = f"n-{self.tag}-{i}", str(uuid.uuid4())
                status, op = s.call("POST", "global/networks", {"name": name, "autoCreateSubnetworks": False},
                                    query={"requestId": rid})
                if status != 200:
                    self.errors.append(f"insert {name}: {status} {op}")
                    return
                self.nets[name] = (op["name"], rid)
                if i % 4 == 3:  # an earlier one: DONE by now, most likely
                    earlier = self.nets[f"n-{self.tag}-{i - 3}"][0]
                    status, o = s.call("GET", f"global/operations/{earlier}")
                    if status == 200 and o["status"] == "DONE":
                        self.done.add(earlier)
                i += 1
        except (OSError, http.client.HTTPException):
            pass  # killed
        finally:
            s.close()

    def kube(self):
        try:
            s = self.emu.kube_session(timeout=10)
        except OSError:
            return
        try:
            i = 0
            while not self.stop.is_set():
                name = f"cm-{self.tag}-{i}"
                status, body = s.call("POST", "/api/v1/namespaces/default/configmaps", cm_body(name))
                if status != 201:
                    self.errors.append(f"create {name}: {status} {body}")
                    return
                self.cms.add(name)
                i += 1
        except (OSError, http.client.HTTPException):
            pass
        finally:
            s.close()


def all_names(emu, path):
    names, token = set(), None
    while True:
        status, page = emu.compute("GET", f"{P}/{path}", query={"maxResults": 500, **({"pageToken": token} if token else {})})
        assert status == 200, (status, page)
        names |= {i["name"] for i in page.get("items", [])}
        token = page.get("nextPageToken")
        if not token:
            return names


class CrashTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="emu-crash-")
        self.dir = os.path.join(self.tmp, "state")
        os.mkdir(self.dir)
        self.state = os.path.join(self.dir, "state.db")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, *extra):
        return Emu(self.tmp, ccm="off", extra=("--state", self.state) + extra).start()

    def assert_only_the_database(self):
        # SQLite's own journal may be there after a kill -9 (it is replayed at the next
        # open); nothing else: no temporary file, no -shm (exclusive locking).
        left = set(os.listdir(self.dir)) - {"state.db", "state.db-wal"}
        self.assertEqual(left, set())

    def verify(self, emu, w):
        """Everything w acknowledged is there; what it saw DONE is DONE."""
        s = emu.http()
        try:
            for name, (op, rid) in w.nets.items():
                # The requestId was saved with its Operation: a retry gets the same one.
                status, again = s.call("POST", "global/networks", {"name": name, "autoCreateSubnetworks": False},
                                       query={"requestId": rid})
                self.assertEqual((status, again.get("name")), (200, op), name)
            for op in w.done:
                status, o = s.call("GET", f"global/operations/{op}")
                self.assertEqual((status, o["status"]), (200, "DONE"), op)
        finally:
            s.close()
        # Inserts acknowledged RUNNING complete after the restart.
        emu.wait_until(lambda: set(w.nets) <= all_names(emu, "global/networks"), timeout=20,
                       what="acknowledged networks present")
        status, lst = emu.kube("GET", "/api/v1/namespaces/default/configmaps")
        self.assertEqual(status, 200)
        missing = w.cms - {i["metadata"]["name"] for i in lst["items"]}
        self.assertEqual(missing, set())

    def test_kill_9_at_random_moments(self):
        seed = int(os.environ.get("EMU_CRASH_SEED", random.randrange(1 << 30)))
        print(f"# EMU_CRASH_SEED={seed}")
        rng = random.Random(seed)
        nets = cms = done = 0
        previous = None
        for r in range(ROUNDS):
            emu = self.start()
            try:
                if previous:
                    self.verify(emu, previous)
                w = Writers(emu, r).start()
                time.sleep(rng.uniform(0.05, 0.35))
            finally:
                emu.kill()
            w.join()
            self.assertEqual(w.errors, [])
            self.assertGreater(len(w.nets) + len(w.cms), 0)
            self.assert_only_the_database()
            nets, cms, done = nets + len(w.nets), cms + len(w.cms), done + len(w.done)
            previous = w
        emu = self.start()
        try:
            self.verify(emu, previous)
            self.assertGreaterEqual(len(all_names(emu, "global/networks")), nets)
            emu.check_state()
        finally:
            emu.stop()
        print(f"# {ROUNDS} kills: {nets} inserts and {cms} creates acknowledged, {done} operations seen DONE: none lost")
        self.assertEqual(sorted(os.listdir(self.dir)), ["state.db"])

    def test_kill_9_right_after_ready(self):
        """The CA, keys and tokens are saved before 'ready': the first kubeconfig works
        after a restart."""
        emu = self.start()
        first = emu.kubeconfig
        emu.kill()
        tmp2 = os.path.join(self.tmp, "again")
        os.mkdir(tmp2)
        emu2 = Emu(tmp2, ccm="off", extra=("--state", self.state)).start()
        try:
            emu2.kubeconfig = first  # its credentials, against the new port
            for auth in ("cert", "token"):
                status, body = emu2.kube("GET", "/api/v1/namespaces/default", auth=auth)
                self.assertEqual(status, 200, (auth, body))
        finally:
            emu2.stop()


class Watch:
    """A watch on the kube port read with a deadline (its own chunked decoding: a read that
    times out inside http.client would break the stream)."""

    def __init__(self, emu, path):
        ca, crt, key = emu.kube_files()
        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(crt, key)
        host, port = emu.kube_url.split("//", 1)[1].rsplit(":", 1)
        self.sock = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10),
                                    server_hostname=host)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode())
        self.raw, self.body, self.seen = b"", b"", []
        while b"\r\n\r\n" not in self.raw:
            self.raw += self.sock.recv(65536)
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200"), head

    def _decode(self):
        while True:
            if b"\r\n" not in self.raw:
                return
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self.raw = rest[size + 2:]

    def names(self, until, timeout):
        """The names of the objects reported so far, reading until `until` shows or timeout."""
        deadline = time.monotonic() + timeout
        while until not in self.seen:
            left = deadline - time.monotonic()
            if not self.sock.pending() and (left <= 0 or not select.select([self.sock], [], [], left)[0]):
                break
            data = self.sock.recv(1 << 20)
            if not data:
                break
            self.raw += data
            self._decode()
            while b"\n" in self.body:
                line, self.body = self.body.split(b"\n", 1)
                if line.strip():
                    self.seen.append(json.loads(line)["object"]["metadata"]["name"])
        return self.seen

    def close(self):
        self.sock.close()


class DiskFullTest(unittest.TestCase):
    """--state on a small tmpfs: errors are answered, nothing acknowledged is lost, writing
    resumes once there is space, and the exit code says when the last write failed."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="emu-diskfull-")
        self.mnt = os.path.join(self.tmp, "mnt")
        os.mkdir(self.mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.skipTest(f"cannot mount a tmpfs (needs root): {r.stderr.strip()}")
        self.state = os.path.join(self.mnt, "state.db")
        self.filler = os.path.join(self.mnt, "filler")

    def tearDown(self):
        subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fill(self):
        """Takes every free byte of the tmpfs (the database may have taken them already)."""
        for size in (65536, 512):
            try:
                with open(self.filler, "ab") as f:
                    while True:
                        f.write(b"\0" * size)
                        f.flush()
            except OSError:
                pass

    def create_until_refused(self, s, prefix, acked):
        """Creates ConfigMaps (200 KB) until one is refused; returns that one's name and
        answer. Each one commits more than the free space."""
        for i in range(40):
            name = f"{prefix}-{i}"
            status, body = s.call("POST", "/api/v1/namespaces/default/configmaps", cm_body(name, 200 * 1024))
            if status == 201:
                acked.add(name)
                continue
            return name, status, body
        self.fail("a full disk never refused a write")

    def test_disk_full(self):
        emu = Emu(self.tmp, ccm="off", extra=("--state", self.state)).start()
        acked = set()
        try:
            s = emu.kube_session()
            for i in range(3):
                self.assertEqual(s.call("POST", "/api/v1/namespaces/default/configmaps", cm_body(f"before-{i}"))[0], 201)
                acked.add(f"before-{i}")
            # A watch from here on: it must not tell of a change that is not saved.
            rv = s.call("GET", "/api/v1/namespaces/default/configmaps")[1]["metadata"]["resourceVersion"]
            w = Watch(emu, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}")
            self.fill()
            name, status, body = self.create_until_refused(s, "full", acked)
            self.assertEqual((status, body["kind"], body["reason"]), (500, "Status", "InternalError"), body)
            self.assertIn("could not be saved", body["message"])
            self.assertNotIn(name, w.names(until=name, timeout=0.5))  # held back while unsaved
            # Until it is saved nothing is answered from the unsaved state, on either port.
            status, err = emu.compute("GET", f"{P}/zones")
            self.assertEqual((status, err["error"]["errors"][0]["reason"]), (503, "backendError"), err)
            status, st = emu.control("GET", "state/status")
            self.assertEqual((status, st["unsaved"]), (200, True))
            self.assertIn("full", st["lastError"])
            # Space again: the change that was refused is kept and saved.
            if os.path.exists(self.filler):
                os.unlink(self.filler)
            emu.wait_until(lambda: not emu.control("GET", "state/status")[1]["unsaved"], timeout=5,
                           what="state saved again")
            self.assertEqual(emu.compute("GET", f"{P}/zones")[0], 200)
            self.assertEqual(s.call("GET", f"/api/v1/namespaces/default/configmaps/{name}")[0], 200)
            self.assertIn(name, w.names(until=name, timeout=5))  # saved: the watch goes on
            w.close()
            self.assertEqual(s.call("POST", "/api/v1/namespaces/default/configmaps", cm_body("after"))[0], 201)
            acked.add("after")
            # Full again, and stopped while the last write fails: exit code 1.
            self.fill()
            self.create_until_refused(s, "last", acked)
            s.close()
            emu.proc.send_signal(signal.SIGTERM)
            rc = emu.proc.wait(timeout=10)
            self.assertEqual(rc, 1)
            self.assertIn("the last changes are lost", emu.stderr())
        finally:
            try:
                emu.stop(check=False)
            except EmuError:
                pass
        if os.path.exists(self.filler):
            os.unlink(self.filler)
        emu = Emu(self.tmp, ccm="off", extra=("--state", self.state)).start()
        try:
            status, lst = emu.kube("GET", "/api/v1/namespaces/default/configmaps")
            self.assertEqual(acked - {i["metadata"]["name"] for i in lst["items"]}, set())
            emu.check_state()
        finally:
            emu.stop()


if __name__ == "__main__":
    unittest.main()
