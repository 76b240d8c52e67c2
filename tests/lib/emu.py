"""Test fixture: a talos-gcp-emu process on ephemeral loopback ports.

    with Emu(tmpdir, ccm="range") as emu:
        status, body = emu.compute("GET", "projects/demo-project/zones")

Binaries come from the environment meson sets (TALOS_GCP_EMU, TALOS_GCP, VIP_ALIAS).
Stopping checks the exit status and fails on sanitizer reports in stderr.
"""
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


class Emu:
    def __init__(self, tmpdir, kube=True, ccm="cloud", project="demo-project", extra=()):
        self.tmpdir = tmpdir
        self.project = project
        self.kubeconfig = os.path.join(tmpdir, "kubeconfig") if kube else None
        self.stderr_path = os.path.join(tmpdir, "emu.stderr")
        args = [EMU, "--listen", "127.0.0.1:0", "--project", project, "--ccm-allocator", ccm]
        if kube:
            args += ["--kube-listen", "127.0.0.1:0", "--kubeconfig-out", self.kubeconfig]
        self.args = args + list(extra)
        self.proc = None
        self.cloud_url = self.kube_url = None

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
            ch = self.proc.stdout.read(1)
            if not ch:
                self.proc.wait()
                raise EmuError(f"emulator exited {self.proc.returncode}: {self.stderr()}")
            line += ch
        fields = dict(f.split("=", 1) for f in line.decode().split()[1:])
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

    def stop(self, check=True):
        if not self.proc:
            return
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

    def control(self, method, path, body=None):
        return self.request(method, self.cloud_url + "/_emu/" + path.lstrip("/"), body)
