"""Test fixture: a talos-gcp-emu process on ephemeral loopback ports.

    with Emu(tmpdir, ccm="range") as emu:
        status, body = emu.compute("GET", "projects/demo-project/zones")

Binaries come from the environment meson sets (TALOS_GCP_EMU, TALOS_GCP, VIP_ALIAS).
Stopping checks the exit status and fails on sanitizer reports in stderr.
"""
import itertools
import json
import os
import select
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

EMU = os.environ.get("TALOS_GCP_EMU", "talos-gcp-emu")
TALOS_GCP = os.environ.get("TALOS_GCP", "talos-gcp")
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


class EmuError(Exception):
    pass


_instances = itertools.count(1)


def env_yes(name):
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


class Emu:
    def __init__(self, tmpdir, kube=True, ccm="cloud", project="demo-project", extra=()):
        self.tmpdir = tmpdir
        self.project = project
        self.kubeconfig = os.path.join(tmpdir, "kubeconfig") if kube else None
        self.stderr_path = os.path.join(tmpdir, "emu.stderr")
        # The control endpoint (/_emu/) wants this token; control() sends it. Several
        # emulators may share a tmpdir: the files are named after the instance.
        n = next(_instances)
        self.control_token_file = os.path.join(tmpdir, f"control-token-{n}")
        args = [EMU, "--listen", "127.0.0.1:0", "--project", project, "--ccm-allocator", ccm,
                "--control-token-file", self.control_token_file]
        if kube:
            args += ["--kube-listen", "127.0.0.1:0", "--kubeconfig-out", self.kubeconfig]
        # TALOS_GCP_EMU_STATE_CHECK=1: every emulator keeps a --state, and stopping it checks
        # that the database holds exactly what the emulator holds (a change nobody marked for
        # --state shows up as a difference; see item_changed in src/emu/compute/compute.h).
        self.state_check = env_yes("TALOS_GCP_EMU_STATE_CHECK") and "--state" not in extra
        if self.state_check:
            args += ["--state", os.path.join(tmpdir, f"emu-state-check-{n}.db")]
        self.args = args + list(extra)
        self.proc = None
        self.cloud_url = self.kube_url = None
        self.control_token = None

    def start(self, timeout=10.0):
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self._stderr)
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.stop(check=False)
                raise EmuError(f"emulator not ready within {timeout}s: {self.stderr()}")
            # os.read on the fd: a buffered read(1) would swallow the rest of the line
            # into Python's buffer, where select() cannot see it.
            ch = os.read(self.proc.stdout.fileno(), 1)
            if not ch:
                self.proc.wait()
                raise EmuError(f"emulator exited {self.proc.returncode}: {self.stderr()}")
            line += ch
        fields = dict(f.split("=", 1) for f in line.decode().split()[1:])
        with open(self.control_token_file) as f:
            self.control_token = f.read().strip()
        self.cloud_url = fields["cloud"]
        self.kube_url = fields.get("kube")
        self.compute_endpoint = self.cloud_url + "/compute/v1/"
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop(check=exc[0] is None)

    def stderr(self):
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def check_state(self):
        """GET /_emu/state/check: the database compared with memory; raises on differences."""
        status, report = self.control("GET", "state/check")
        if status != 200 or not report.get("ok"):
            raise EmuError(f"--state differs from the emulator's memory ({status}): "
                           f"{json.dumps(report)[:2000]}")
        return report

    def kill(self):
        """kill -9: no clean shutdown, nothing saved on the way out."""
        if not self.proc:
            return
        self.proc.kill()
        self.proc.wait()
        self._stderr.close()
        self.proc = None

    def stop(self, check=True):
        if not self.proc:
            return
        if check and self.state_check and self.proc.poll() is None:
            try:
                self.check_state()
            except EmuError:
                self.stop(check=False)
                raise
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise EmuError("emulator did not stop on SIGTERM")
        self._stderr.close()
        rc, self.proc = self.proc.returncode, None
        err = self.stderr()
        if check:
            if any(m in err for m in SANITIZER_MARKERS):
                raise EmuError("sanitizer report in emulator stderr:\n" + err)
            if rc != 0:
                raise EmuError(f"emulator exited {rc}:\n{err}")

    # --- raw HTTP helpers (stdlib only) ---
    def request(self, method, url, body=None, headers=None, timeout=30):
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def compute(self, method, path, body=None, query=None):
        url = self.compute_endpoint + path.lstrip("/")
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return self.request(method, url, body)

    def control(self, method, path, body=None, token=True):
        """A request to the control endpoint /_emu/PATH, with the control token (token=False:
        without it; a string: that one)."""
        headers = {}
        if token:
            headers["Authorization"] = "Bearer " + (token if isinstance(token, str) else self.control_token)
        return self.request(method, self.cloud_url + "/_emu/" + path.lstrip("/"), body, headers=headers)

    # --- Compute helpers (build a scenario through the real API, as any client would) ---
    def http(self):
        """A keep-alive connection to the cloud port, for tests that send many requests."""
        import http.client
        host, port = self.cloud_url.split("//", 1)[1].rsplit(":", 1)
        return ComputeSession(http.client.HTTPConnection(host, int(port), timeout=60), self.project)

    def wait_op(self, op, timeout=60):
        """POST .../operations/NAME/wait until DONE; returns the final Operation."""
        deadline = time.monotonic() + timeout
        while op.get("status") != "DONE":
            if time.monotonic() > deadline:
                raise EmuError(f"operation {op.get('name')} not DONE after {timeout}s")
            status, op = self.request("POST", op["selfLink"] + "/wait")
            if status != 200:
                raise EmuError(f"wait {status}: {op}")
        return op

    def insert(self, path, body, wait=True, check=True):
        """POST a resource; returns the Operation (waited on and checked by default)."""
        status, op = self.compute("POST", f"projects/{self.project}/{path}", body)
        if status != 200:
            raise EmuError(f"POST {path}: {status} {op}")
        if wait:
            op = self.wait_op(op)
            if check and op.get("error"):
                raise EmuError(f"POST {path}: operation failed: {op['error']}")
        return op

    def create_network(self, name="talos", auto=False):
        return self.insert("global/networks", {"name": name, "autoCreateSubnetworks": auto})

    def create_subnet(self, name="nodes", region="us-central1", network="talos",
                      cidr="10.0.0.0/16", pods="172.20.0.0/14", services="172.24.0.0/16"):
        """A subnetwork with a `pods` secondary range (and `services`, unless None)."""
        ranges = [{"rangeName": "pods", "ipCidrRange": pods}]
        if services:
            ranges.append({"rangeName": "services", "ipCidrRange": services})
        op = self.insert(f"regions/{region}/subnetworks", {
            "name": name, "network": f"global/networks/{network}", "ipCidrRange": cidr,
            "secondaryIpRanges": ranges})
        self.create_image()
        return op

    def create_image(self, name="talos"):
        """The image instance_body() boots from (instances naming a missing image are
        refused, as on GCP); created once."""
        status, _ = self.compute("GET", f"projects/{self.project}/global/images/{name}")
        if status == 404:
            self.insert("global/images", {"name": name, "rawDisk": {
                "source": "https://storage.googleapis.com/talos-images/gcp-amd64.raw.tar.gz"}})

    @staticmethod
    def instance_body(name, zone="us-central1-a", subnet="nodes", alias="/24", talos=True,
                      machine_type="e2-standard-4"):
        """instances.insert body: nic0 on subnet with a `pods` alias (alias=None: none)."""
        region = zone.rsplit("-", 1)[0]
        nic = {"subnetwork": f"regions/{region}/subnetworks/{subnet}"}
        if alias:
            nic["aliasIpRanges"] = [{"subnetworkRangeName": "pods", "ipCidrRange": alias}]
        body = {"name": name, "machineType": f"zones/{zone}/machineTypes/{machine_type}",
                "disks": [{"boot": True, "autoDelete": True,
                           "initializeParams": {"sourceImage": "projects/demo-project/global/images/talos"}}],
                "networkInterfaces": [nic]}
        if talos:
            body["metadata"] = {"items": [{"key": "user-data", "value": "# Talos machine config\n"}]}
        return body

    def create_instance(self, name, zone="us-central1-a", wait=True, **kw):
        return self.insert(f"zones/{zone}/instances", self.instance_body(name, zone, **kw), wait=wait)

    def get_instance(self, name, zone="us-central1-a"):
        status, body = self.compute("GET", f"projects/{self.project}/zones/{zone}/instances/{name}")
        return body if status == 200 else None

    def set_aliases(self, name, ranges, zone="us-central1-a", fingerprint=None, wait=True):
        """updateNetworkInterface on nic0; ranges is a list of (rangeName, cidr). Returns
        (HTTP status, Operation or error body)."""
        if fingerprint is None:
            fingerprint = self.get_instance(name, zone)["networkInterfaces"][0]["fingerprint"]
        body = {"fingerprint": fingerprint,
                "aliasIpRanges": [{"subnetworkRangeName": r, "ipCidrRange": c} for r, c in ranges]}
        status, op = self.compute(
            "PATCH", f"projects/{self.project}/zones/{zone}/instances/{name}/updateNetworkInterface",
            body, query={"networkInterface": "nic0"})
        if status == 200 and wait:
            op = self.wait_op(op)
        return status, op

    def add_fault(self, **fault):
        """POST /_emu/faults; returns the fault with its id."""
        status, body = self.control("POST", "faults", fault)
        if status != 200:
            raise EmuError(f"fault {fault}: {status} {body}")
        return body

    def clear_faults(self):
        self.control("DELETE", "faults")

    def stats(self, reset=False):
        return self.control("GET", "stats?reset=true" if reset else "stats")[1]


class ComputeSession:
    """Compute calls over one keep-alive connection: session.call("GET", "zones/z/instances")."""

    def __init__(self, conn, project):
        self.conn, self.project = conn, project

    def call(self, method, path, body=None, query=None):
        url = f"/compute/v1/projects/{self.project}/{path.lstrip('/')}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.conn.request(method, url, body=data, headers=headers)
        r = self.conn.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)

    def close(self):
        self.conn.close()


# --- Kubernetes API helpers (the kube port: HTTPS, client certificate or bearer token) ---
KUBECTL_DIR = os.environ.get("KUBECTL_DIR", "/usr/lib/google-cloud-sdk/bin")


def kubectl_path(version=None):
    """The kubectl binary for "1.27".."1.33" (None: the default one), or None if absent."""
    import shutil
    if version:
        p = os.path.join(KUBECTL_DIR, f"kubectl.{version}")
        return p if os.access(p, os.X_OK) else None
    p = os.path.join(KUBECTL_DIR, "kubectl")
    return p if os.access(p, os.X_OK) else shutil.which("kubectl")


def kubectl_versions():
    """The kubectl versions installed under KUBECTL_DIR, oldest first."""
    found = []
    for minor in range(20, 40):
        if kubectl_path(f"1.{minor}"):
            found.append(f"1.{minor}")
    return found


def _kubeconfig_fields(path):
    """server, CA, client cert/key and token of our own kubeconfig (stdlib only: no YAML)."""
    import base64
    import re
    text = open(path).read()
    out = {}
    for key in ("server", "certificate-authority-data", "client-certificate-data",
                "client-key-data", "token"):
        m = re.search(r"^\s*" + re.escape(key) + r":\s*(\S+)\s*$", text, re.M)
        if m:
            out[key] = m.group(1)
    for key in ("certificate-authority-data", "client-certificate-data", "client-key-data"):
        if key in out:
            out[key] = base64.b64decode(out[key])
    return out


class KubeSession:
    """Requests to the kube port over one keep-alive HTTPS connection."""

    def __init__(self, conn, headers):
        self.conn, self.headers = conn, headers

    def call(self, method, path, body=None, content_type="application/json", headers=None,
             raw=False):
        """Returns (status, parsed JSON or text). body: dict/list (JSON) or bytes."""
        hdrs = dict(self.headers)
        hdrs.update(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs["Content-Type"] = content_type
        self.conn.request(method, path, body=data, headers=hdrs)
        r = self.conn.getresponse()
        payload = r.read()
        if raw:
            return r.status, payload, r
        try:
            return r.status, json.loads(payload) if payload else None
        except ValueError:
            return r.status, payload.decode(errors="replace")

    def close(self):
        self.conn.close()


def _kube_methods():
    def kube_files(self):
        """Writes ca.crt, tls.crt, tls.key (0600) from the kubeconfig; returns their paths."""
        d = os.path.join(self.tmpdir, "kube-tls")
        if not os.path.isdir(d):
            os.makedirs(d, exist_ok=True)
            f = _kubeconfig_fields(self.kubeconfig)
            for name, key in (("ca.crt", "certificate-authority-data"),
                              ("tls.crt", "client-certificate-data"),
                              ("tls.key", "client-key-data")):
                fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.write(fd, f[key])
                os.close(fd)
        return (os.path.join(d, "ca.crt"), os.path.join(d, "tls.crt"), os.path.join(d, "tls.key"))

    def kube_token(self):
        return _kubeconfig_fields(self.kubeconfig)["token"]

    def kube_session(self, auth="cert", token=None, timeout=30):
        """auth: "cert" (admin client certificate), "token" (admin bearer token),
        "none", or a bearer token string via token=."""
        import http.client
        import ssl
        ca, crt, key = self.kube_files()
        ctx = ssl.create_default_context(cafile=ca)
        if auth == "cert":
            ctx.load_cert_chain(crt, key)
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        elif auth == "token":
            headers["Authorization"] = "Bearer " + self.kube_token()
        host, port = self.kube_url.split("//", 1)[1].rsplit(":", 1)
        return KubeSession(http.client.HTTPSConnection(host, int(port), context=ctx,
                                                       timeout=timeout), headers)

    def kube(self, method, path, body=None, auth="cert", **kw):
        """One request to the Kubernetes API: (status, JSON body)."""
        s = self.kube_session(auth)
        try:
            return s.call(method, path, body, **kw)
        finally:
            s.close()

    def kubectl(self, *args, version=None, input=None, context=None, timeout=60):
        """Runs kubectl against this emulator; returns CompletedProcess (text)."""
        exe = kubectl_path(version)
        if not exe:
            raise EmuError(f"kubectl {version or ''} not installed")
        cmd = [exe, "--kubeconfig", self.kubeconfig,
               "--cache-dir", os.path.join(self.tmpdir, "kube-cache")]
        if context:
            cmd += ["--context", context]
        env = dict(os.environ, HOME=self.tmpdir, KUBECTL_KUBERC="false")
        return subprocess.run(cmd + list(args), input=input, capture_output=True, text=True,
                              timeout=timeout, env=env)

    def wait_until(self, fn, timeout=10.0, interval=0.05, what="condition"):
        """Polls fn() until it returns something truthy; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            v = fn()
            if v:
                return v
            if time.monotonic() > deadline:
                raise EmuError(f"{what} not reached within {timeout}s")
            time.sleep(interval)

    def node(self, name):
        """The Node as the API serves it, or None."""
        status, body = self.kube("GET", f"/api/v1/nodes/{name}")
        return body if status == 200 else None

    def cpu_seconds(self):
        """utime+stime of the emulator process (for busy-loop checks)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    for fn in (kube_files, kube_token, kube_session, kube, kubectl, wait_until, node,
               cpu_seconds):
        setattr(Emu, fn.__name__, fn)


_kube_methods()
