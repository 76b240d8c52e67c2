"""The data plane tests' fixture: talos-gcp-emu --dataplane with a namespace prefix of its own,
and TCP inside the namespaces it makes.

Every address these tests use lives inside the namespaces the emulator creates for them
(PREFIX-vpc, PREFIX-internet, PREFIX-INSTANCE): sockets are made inside a namespace (a
socket keeps the namespace it was made in) and used from the test's threads. Nothing is
sent from, or routed in, the root namespace.

Prefixes are unique per test (process id and a counter): several test runs on one machine
never share a namespace.
"""
import ctypes
import itertools
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "netns"))
from cluster import Cluster, Emu, talos_gcp  # noqa: E402,F401
from rtnl import in_netns  # noqa: E402

_counter = itertools.count()
ETH_P_ALL = 0x0003


def unique_prefix():
    """Letters and digits, at most 12: 'tg' + the pid in base 36 + a counter."""
    n, digits = os.getpid(), ""
    while n:
        n, r = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + digits
    return f"tg{digits}x{next(_counter)}"[:12]


def namespaces(prefix):
    """Names under /run/netns that start with PREFIX-."""
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith(prefix + "-"))
    except FileNotFoundError:
        return []


class Server:
    """A TCP listener inside a namespace; answers each connection with its name, closes."""

    def __init__(self, ns, port, addr="0.0.0.0", name=None):
        self.name = (name or ns).encode()
        self.accepted = []  # (peer address, local address)

        def make():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
            s.listen(64)
            return s

        self.sock = in_netns(ns, make)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                r, _, _ = select.select([self.sock], [], [], 0.1)
                if not r:
                    continue
                c, peer = self.sock.accept()
            except OSError:
                return
            self.accepted.append((peer[0], c.getsockname()[0]))
            try:
                c.sendall(self.name + b"\n")
            except OSError:
                pass
            c.close()

    def close(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()


def connect(ns, ip, port, timeout=3.0, src=None):
    """Connects from inside ns (optionally from address src); returns the first line the
    server sends, or raises OSError (timeout, refused, unreachable)."""
    def make():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if src:
            s.bind((src, 0))
        return s

    s = in_netns(ns, make)
    try:
        s.settimeout(timeout)
        s.connect((ip, port))
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
        return data.decode().strip()
    finally:
        s.close()


def reaches(ns, ip, port, timeout=1.0, src=None):
    """The server's name, or None when the connection fails."""
    try:
        return connect(ns, ip, port, timeout, src)
    except OSError:
        return None


class Capture:
    """Frames arriving on an interface inside a namespace (AF_PACKET), as tcpdump sees them."""

    def __init__(self, ns, ifname="eth0"):
        def make():
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            s.bind((ifname, 0))
            s.setblocking(False)
            return s

        self.sock = in_netns(ns, make)

    def ipv4_to(self, dst):
        """(src, dst, protocol) of the IPv4 packets to dst received so far."""
        out = []
        want = socket.inet_aton(dst)
        while True:
            try:
                frame, addr = self.sock.recvfrom(65535)
            except BlockingIOError:
                return out
            if addr[2] == socket.PACKET_OUTGOING or len(frame) < 34:
                continue
            if frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:34]
            if ip[16:20] == want:
                out.append((socket.inet_ntoa(ip[12:16]), dst, ip[9]))

    def close(self):
        self.sock.close()


def gratuitous_arp(ns, ip, ifname="eth0"):
    """Sends a gratuitous ARP (a broadcast reply claiming ip) from ifname inside ns."""
    def send():
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
        s.bind((ifname, 0))
        mac = s.getsockname()[4]
        ipb = socket.inet_aton(ip)
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, mac, ipb, b"\xff" * 6, ipb)
        frame = b"\xff" * 6 + mac + b"\x08\x06" + arp
        for _ in range(3):
            s.send(frame)
        request = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, ipb, b"\x00" * 6, ipb)
        s.send(b"\xff" * 6 + mac + b"\x08\x06" + request)
        s.close()
        return True

    return in_netns(ns, send)


def run_inside(ns, *cmd):
    """Starts cmd inside ns and returns once it runs there (a Popen)."""
    p = subprocess.Popen(["ip", "netns", "exec", ns, "sh", "-c", 'echo in; exec "$@"', "sh",
                          *cmd], stdout=subprocess.PIPE, text=True)
    if p.stdout.readline().strip() != "in":
        p.wait()
        raise AssertionError(f"cannot run {cmd} in {ns}")
    return p


def ip(ns, *args):
    """iproute2 inside a namespace; returns stdout (raises on failure)."""
    p = subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True, timeout=10)
    if p.returncode != 0:
        raise AssertionError(f"ip -n {ns} {' '.join(args)}: {p.stderr}")
    return p.stdout


class DataplaneCase(unittest.TestCase):
    """One emulator with --dataplane per test; the namespaces are checked gone after it."""

    ccm = "cloud"
    extra = ()

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to create network namespaces")
        if not shutil.which("ip"):
            self.skipTest("iproute2 (ip) not installed")
        self._tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self._tmp.cleanup)
        self.prefix = unique_prefix()
        self.emu = Emu(self._tmp.name, ccm=self.ccm,
                       extra=["--dataplane", "--dataplane-prefix", self.prefix, *self.extra])
        self.emu.start()
        self.addCleanup(self._stop)
        self.c = Cluster(self.emu)

    def _stop(self):
        try:
            self.emu.stop()
        finally:
            left = namespaces(self.prefix)
            rundir = f"/run/talos-gcp-emu/{self.prefix}"
            leftover_dir = os.path.exists(rundir)
            # Whatever happened, nothing of this test stays on the machine.
            for name in left:
                subprocess.run(["ip", "netns", "del", name], capture_output=True)
            shutil.rmtree(rundir, ignore_errors=True)
        self.assertEqual(left, [], "namespaces left after the emulator exited")
        self.assertFalse(leftover_dir, "the emulator's run directory is left")

    # -- the emulator's view --
    def ns(self, name):
        return f"{self.prefix}-{name}"

    def dataplane(self):
        status, body = self.emu.control("GET", "dataplane")
        self.assertEqual(status, 200, body)
        return body

    def dp_instance(self, name):
        for i in self.dataplane()["instances"]:
            if i["name"] == name:
                return i
        return None

    def wait_instance(self, name, pred=lambda i: True, timeout=10.0, what=None):
        """Waits until the data plane carries instance name (and pred holds); returns it."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.dp_instance(name)
            if i and pred(i):
                return i
            if time.monotonic() > deadline:
                self.fail(f"data plane: {what or name} not reached within {timeout}s: {i}")
            time.sleep(0.02)

    def wait_gone(self, name, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.dp_instance(name) or self.ns(name) in namespaces(self.prefix):
            if time.monotonic() > deadline:
                self.fail(f"data plane: {name} still there after {timeout}s")
            time.sleep(0.02)

    def wait_reach(self, ns, ip, port, want=True, timeout=10.0, src=None, what=""):
        """Polls until a connection succeeds (want=True) or fails (want=False)."""
        deadline = time.monotonic() + timeout
        while True:
            got = reaches(ns, ip, port, timeout=0.5, src=src)
            if bool(got) == want:
                return got
            if time.monotonic() > deadline:
                self.fail(f"{what or f'{ns} -> {ip}:{port}'}: still "
                          f"{'unreachable' if want else 'reachable'} after {timeout}s")
            time.sleep(0.05)

    def server(self, name, port, addr="0.0.0.0"):
        s = Server(self.ns(name), port, addr, name=name)
        self.addCleanup(s.close)
        return s

    def capture(self, name, ifname="eth0"):
        cap = Capture(self.ns(name), ifname)
        self.addCleanup(cap.close)
        return cap

    # -- scenario building through the real API --
    def firewall(self, name, allowed, source_ranges=None, direction="INGRESS", priority=1000,
                 deny=False, target_tags=None, source_tags=None, network="talos", **extra):
        body = {"name": name, "network": f"projects/{self.emu.project}/global/networks/{network}",
                "direction": direction, "priority": priority,
                ("denied" if deny else "allowed"): allowed}
        if source_ranges is not None:
            body["sourceRanges" if direction == "INGRESS" else "destinationRanges"] = source_ranges
        if target_tags:
            body["targetTags"] = target_tags
        if source_tags:
            body["sourceTags"] = source_tags
        body.update(extra)
        return self.c.compute.insert("global/firewalls", body)

    def delete_firewall(self, name):
        _, op = self.c.compute.api.call(
            "DELETE", f"projects/{self.emu.project}/global/firewalls/{name}")
        return self.c.compute.wait(op)

    def allow_internal(self, name="allow-internal", ranges=("10.0.0.0/16", "172.20.0.0/16")):
        """What `talos-gcp up` creates: the cluster talks to itself."""
        return self.firewall(name, [{"IPProtocol": "tcp"}, {"IPProtocol": "udp"},
                                    {"IPProtocol": "icmp"}], list(ranges))

    def instance(self, name, alias="/24", talos=True, tags=None, zone="europe-west1-b",
                 wait=True, **fields):
        """instances.insert (a Talos node by default) and wait until the data plane has it."""
        nic = {"subnetwork": self.c.subnet}
        if alias:
            nic["aliasIpRanges"] = [{"subnetworkRangeName": "pods", "ipCidrRange": alias}]
        body = {"name": name, "machineType": f"zones/{zone}/machineTypes/e2-standard-2",
                "disks": [{"boot": True, "autoDelete": True, "initializeParams": {
                    "sourceImage": f"projects/{self.emu.project}/global/images/talos"}}],
                "networkInterfaces": [nic]}
        if talos:
            body["metadata"] = {"items": [{"key": "user-data", "value": talos if isinstance(
                talos, str) else "# talos\n"}]}
        if tags:
            body["tags"] = {"items": list(tags)}
        body.update(fields)
        self.c.compute.insert(f"zones/{zone}/instances", body)
        return self.wait_instance(name) if wait else None
