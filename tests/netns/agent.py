"""Runs vip-alias inside a test's network namespace and reads its logfmt lines."""
import http.client
import os
import re
import signal
import socket
import subprocess
import threading
import time

from rtnl import in_netns


def binary():
    path = os.environ.get("VIP_ALIAS")
    if not path:
        raise RuntimeError("VIP_ALIAS is not set (run through meson test)")
    return path


def logfmt(line):
    """Parses one logfmt line into a dict (quoted values unescaped)."""
    out = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        v = m.group(2)
        if v.startswith('"'):
            v = re.sub(r'\\(.)', r'\1', v[1:-1])
        out[m.group(1)] = v
    return out


class Agent:
    """vip-alias in namespace ns. Lines of stderr accumulate in .lines."""

    def __init__(self, ns, *args, env=None):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("VIP_ALIAS_")}
        full_env.update(env or {})
        self.ns = ns
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, binary(), *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=full_env)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.port = None

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        self.proc.stderr.close()
        with self.cond:
            self.cond.notify_all()

    def events(self, name=None):
        with self.cond:
            evs = [logfmt(line) for line in self.lines]
        return [e for e in evs if name is None or e.get("event") == name]

    def wait_event(self, name, timeout=5.0, count=1, **match):
        """Waits until `count` lines have event=name and the given key=value pairs."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                hits = [e for e in (logfmt(line) for line in self.lines)
                        if e.get("event") == name
                        and all(e.get(k) == v for k, v in match.items())]
                if len(hits) >= count:
                    return hits[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise AssertionError(f"no event={name} {match} within {timeout}s; log:\n"
                                         + "\n".join(self.lines))
                self.cond.wait(min(left, 0.05))

    def wait_ready(self, timeout=5.0):
        ev = self.wait_event("ready", timeout)
        listen = ev.get("listen", "off")
        if listen != "off":
            self.port = int(listen.rsplit(":", 1)[1])
        return ev

    def send(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=5.0):
        rc = self.proc.wait(timeout)
        self.reader.join(timeout)
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()

    def log(self):
        with self.cond:
            return "\n".join(self.lines)

    def get(self, path, method="GET"):
        """An HTTP request to the agent's listener inside the namespace: (status, body)."""
        sock = in_netns(self.ns, lambda: socket.create_connection(("127.0.0.1", self.port), 2))
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        conn.sock = sock
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def metric(self, name, labels=""):
        """A sample's value from /metrics, e.g. metric('vip_alias_restores_total',
        'cause="address_removed"')."""
        _, body = self.get("/metrics")
        key = f"{name}{{{labels}}}" if labels else name
        for line in body.splitlines():
            if line.startswith(key + " "):
                return float(line.split()[-1])
        raise AssertionError(f"{key} not in /metrics:\n{body}")


def run_once(ns, *args, env=None, timeout=10):
    """Runs vip-alias to completion: (exit status, stderr lines)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VIP_ALIAS_")}
    full_env.update(env or {})
    r = subprocess.run(["ip", "netns", "exec", ns, binary(), *args], capture_output=True,
                       text=True, env=full_env, timeout=timeout)
    return r.returncode, r.stderr.splitlines()
