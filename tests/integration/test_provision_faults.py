"""talos-gcp up/down under faults: 429 and 503 on every mutation and read, requests that hang
(timeouts) or whose answer is lost after the server acted, operation errors at each step
(up stops with the resource named, the next up converges), and kill -9 of up (and down) at
random points, each followed by a run that converges with no duplicates and no leaks."""
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import unittest

from emu import Emu

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from provision import Prov  # noqa: E402

P = "/compute/v1/projects/demo-project/"


def op_error(kind_path):
    """A DONE Operation whose error is what GCP reports for an exhausted quota."""
    return {"kind": "compute#operation", "id": "1", "name": "operation-fault-1", "status": "DONE",
            "operationType": "insert", "targetLink": kind_path,
            "error": {"errors": [{"code": "QUOTA_EXCEEDED",
                                  "message": "Quota 'IN_USE_ADDRESSES' exceeded. Limit: 8.0"}]},
            "httpErrorStatusCode": 403, "httpErrorMessage": "FORBIDDEN"}


class FaultCase(unittest.TestCase):
    delay = "0s"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="prov-faults-")
        self.emu = Emu(self.tmp, kube=False, extra=("--operation-delay", self.delay)).start()
        self.p = Prov(self.emu, self.tmp)
        self.p.write(self.p.spec())
        code, plan = self.p.plan_json()
        self.plan = plan
        self.expected = {c["key"] for c in plan["changes"]}

    def tearDown(self):
        self.emu.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def paths(self):
        """(method, path) of every mutation of the plan from empty, once each."""
        seen = []
        for o in self.plan["operations"]:
            pair = (o["method"], "/compute/v1/" + o["path"].split("?", 1)[0])
            if pair not in seen:
                seen.append(pair)
        return seen

    def converged(self, why=""):
        """The project holds exactly the cluster, once each, and plan has nothing to do."""
        r = self.p.plan()
        self.assertEqual(r.returncode, 0, f"{why}\n{r.stdout}\n{r.stderr}")
        inv = self.p.inventory()
        self.assertEqual(set(inv), self.expected, why)
        self.assertEqual(set(Prov.owned(inv)), self.expected, why)
        for key, res in inv.items():
            if "/backendServices/" in key:
                groups = [b["group"] for b in res.get("backends", [])]
                self.assertEqual(len(groups), len(set(groups)), f"{why}: {key} {groups}")
            if "/routers/" in key:
                self.assertEqual([n["name"] for n in res.get("nats", [])], ["demo-nat"], why)
            if "/addresses/" in key:
                users = res.get("users", [])
                self.assertEqual(len(users), len(set(users)), why)
            if "/instanceGroups/" in key:
                members = self.p.members(key)
                self.assertEqual(len(members), len(set(members)), why)
                self.assertEqual(res["size"], len(members), why)
        ips = [r["networkInterfaces"][0]["networkIP"] for k, r in inv.items() if "/instances/" in k]
        self.assertEqual(len(ips), len(set(ips)), why)

    def faults_left(self):
        return self.emu.control("GET", "faults")[1]["faults"]


class TestTransientFaults(FaultCase):
    def test_429_and_503_on_every_request_are_retried(self):
        faults = []
        for i, (method, path) in enumerate(self.paths()):
            faults.append({"method": method, "path": path, "status": 429 if i % 2 else 503,
                           "reason": "rateLimitExceeded" if i % 2 else "backendError",
                           "count": 1})
        # The reads too: the lists, a group's members, and an operation's wait.
        faults.append({"method": "GET", "pathPrefix": P + "aggregated/", "status": 503, "count": 3})
        faults.append({"method": "GET", "path": P + "global/networks", "status": 429, "count": 1})
        faults.append({"method": "POST", "pathPrefix": P + "regions/us-central1/operations/",
                       "status": 503, "count": 2})
        self.emu.add_fault(**faults[0])
        for f in faults[1:]:
            self.emu.add_fault(**f)
        r = self.p.up()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.faults_left(), [])  # every fault fired
        self.converged()

    def test_hung_requests_and_lost_answers_are_retried_with_the_request_id(self):
        # Half the mutations hang (the client times out and sends again); the other half
        # reach the server after the client gave up: the retry, with the same requestId,
        # gets the same Operation, and nothing happens twice.
        for i, (method, path) in enumerate(self.paths()):
            if i % 2:
                self.emu.add_fault(method=method, path=path, hang=True, count=1)
            else:
                self.emu.add_fault(method=method, path=path, delayMs=1300, count=1)
        r = self.p.up("--timeout", "1s")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.faults_left(), [])
        self.converged()


class TestOperationErrors(FaultCase):
    def test_an_operation_error_at_each_step(self):
        steps = self.paths() + [("POST", P + "zones/us-central1-a/operations/"),
                                ("POST", P + "global/operations/")]
        for method, path in steps:
            where = f"{method} {path}"
            if path.endswith("/operations/"):
                self.emu.add_fault(method=method, pathPrefix=path, body=op_error(path), count=1)
            else:
                self.emu.add_fault(method=method, path=path, body=op_error(path), count=1)
            r = self.p.up()
            self.assertEqual(r.returncode, 2, f"{where}\n{r.stdout}\n{r.stderr}")
            self.assertIn("QUOTA_EXCEEDED", r.stderr, where)
            self.assertIn("up stopped", r.stderr, where)
            self.assertEqual(self.faults_left(), [], where)
            r = self.p.up()
            self.assertEqual(r.returncode, 0, f"{where}\n{r.stdout}\n{r.stderr}")
            self.converged(where)
            r = self.p.down()
            self.assertEqual(r.returncode, 0, f"{where}\n{r.stdout}\n{r.stderr}")
            self.assertEqual(self.p.inventory(), {}, where)

    def test_down_stops_on_an_error_and_finishes_on_the_next_run(self):
        self.assertEqual(self.p.up().returncode, 0)
        self.emu.add_fault(method="DELETE", path=P + "regions/us-central1/subnetworks/demo-nodes",
                           body=op_error("subnetworks/demo-nodes"), count=1)
        r = self.p.down()
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("subnetworks/demo-nodes", r.stderr)
        # Everything that did not wait for the subnetwork is gone; the network waits with it.
        self.assertEqual(set(self.p.inventory()), {"global/networks/demo",
                                                   "regions/us-central1/subnetworks/demo-nodes"})
        self.assertEqual(self.faults_left(), [])
        self.assertEqual(self.p.down().returncode, 0)
        self.assertEqual(self.p.inventory(), {})


class TestKill(FaultCase):
    # Operations stay RUNNING a little, so that a kill leaves some behind.
    delay = "40ms"

    def kill_at(self, cmd, at):
        proc = self.p.popen(cmd)
        time.sleep(at)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        return proc.returncode

    def test_kill_9_of_up_at_20_random_points_then_up_converges(self):
        seed = int(os.environ.get("PROVISION_KILL_SEED", str(int(time.time()))))
        rnd = random.Random(seed)
        t0 = time.monotonic()
        self.assertEqual(self.p.up().returncode, 0)
        full = time.monotonic() - t0
        self.converged()
        killed = 0
        for i in range(20):
            why = f"seed {seed}, kill {i}"
            self.assertEqual(self.p.down().returncode, 0, why)
            self.assertEqual(self.p.inventory(), {}, why)
            at = rnd.uniform(0, full)
            rc = self.kill_at("up", at)
            killed += rc == -signal.SIGKILL
            r = self.p.up()
            self.assertEqual(r.returncode, 0, f"{why} at {at:.3f}s\n{r.stdout}\n{r.stderr}")
            self.converged(f"{why} at {at:.3f}s")
        # Most kills landed while up was running (the others found it done).
        self.assertGreaterEqual(killed, 10, f"seed {seed}: only {killed} kills interrupted up")

    def test_kill_9_of_down_then_down_finishes(self):
        seed = int(os.environ.get("PROVISION_KILL_SEED", str(int(time.time()))))
        rnd = random.Random(seed)
        for i in range(5):
            why = f"seed {seed}, kill {i}"
            self.assertEqual(self.p.up().returncode, 0, why)
            self.kill_at("down", rnd.uniform(0.02, 0.3))
            r = self.p.down()
            self.assertEqual(r.returncode, 0, f"{why}\n{r.stdout}\n{r.stderr}")
            self.assertEqual(self.p.inventory(), {}, why)


if __name__ == "__main__":
    unittest.main()
