"""The API clients' security and input rules, end to end through talos-gcp verify.

URLs with user information are refused before any connection; kubeconfig impersonation and
proxy-url reach the wire (observed by local listeners the test runs, which forward to the
emulator); a deeply nested kubeconfig is refused; --timeout is honoured past the old 2-minute
cap; a report that cannot be written is exit 2.
"""
import base64
import http.server
import os
import select
import socket
import socketserver
import ssl
import tempfile
import threading
import unittest

from cluster import Cluster, Emu, talos_gcp
from emu import _kubeconfig_fields


class Forwarder(http.server.ThreadingHTTPServer):
    """Plain HTTP on 127.0.0.1 that records each request's headers and forwards the request
    to the emulator's Kubernetes API over HTTPS (verified against the emulator's CA)."""

    daemon_threads = True

    def __init__(self, target, ca_pem):
        self.target = target
        self.ctx = ssl.create_default_context(cadata=ca_pem.decode())
        self.seen = []  # [(method, path, [(name, value), ...])]
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), ForwardHandler)


class ForwardHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_any(self):
        import http.client
        srv = self.server
        with srv.lock:
            srv.seen.append((self.command, self.path, list(self.headers.items())))
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        host, port = srv.target.split("//", 1)[1].rsplit(":", 1)
        conn = http.client.HTTPSConnection(host, int(port), context=srv.ctx, timeout=30)
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() not in ("host", "connection", "accept-encoding")}
        conn.request(self.command, self.path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        self.send_response(r.status)
        self.send_header("Content-Type", r.getheader("Content-Type") or "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_any


class ConnectProxy(socketserver.ThreadingTCPServer):
    """An HTTP CONNECT proxy on 127.0.0.1 that records the tunnels asked for."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.tunnels = []
        super().__init__(("127.0.0.1", 0), ConnectHandler)


class ConnectHandler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                return
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode()
        method, target, _ = line.split(" ", 2)
        self.server.tunnels.append((method, target))
        if method != "CONNECT":
            s.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        host, port = target.rsplit(":", 1)
        if host not in ("127.0.0.1", "localhost"):  # the traffic rule: loopback only
            s.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        up = socket.create_connection((host, int(port)), timeout=30)
        s.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        rest = head.split(b"\r\n\r\n", 1)[1]
        if rest:
            up.sendall(rest)
        socks = [s, up]
        while True:
            r, _, _ = select.select(socks, [], [], 30)
            if not r:
                break
            for x in r:
                data = x.recv(65536)
                if not data:
                    up.close()
                    return
                (up if x is s else s).sendall(data)


class ClientInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory()
        cls.tmp = cls._tmp.name
        cls.emu = Emu(cls.tmp, ccm="cloud").start()
        try:
            cls.c = Cluster(cls.emu).network()
            cls.c.instance("n-0")
            cls.c.wait_node("n-0", podcidr=True)
            cls.kc = _kubeconfig_fields(cls.emu.kubeconfig)
        except BaseException:
            cls.emu.stop(check=False)  # tearDownClass does not run when setUpClass fails
            cls._tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        cls._tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, text.encode())
        os.close(fd)
        return path

    def kubeconfig(self, name, cluster, user):
        return self.write(name, "apiVersion: v1\nkind: Config\n"
                          f"clusters:\n- name: c\n  cluster:\n{cluster}"
                          f"users:\n- name: u\n  user:\n{user}"
                          "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                          "current-context: x\n")

    def cert_user(self):
        b64 = lambda k: base64.b64encode(self.kc[k]).decode()  # noqa: E731
        return (f"    client-certificate-data: {b64('client-certificate-data')}\n"
                f"    client-key-data: {b64('client-key-data')}\n")

    def ca_line(self):
        return f"    certificate-authority-data: {base64.b64encode(self.kc['certificate-authority-data']).decode()}\n"

    def verify(self, *args, env=None, **kw):
        return talos_gcp(self.emu, "verify", *args, env=env, **kw)

    def test_userinfo_refused_before_any_connection(self):
        listener = socket.socket()
        listener.bind(("127.0.0.2", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        try:
            url = f"http://localhost:x@127.0.0.2:{port}/"
            for args, env in (((f"--compute-endpoint={url}",), None),
                              ((), {"TALOS_GCP_COMPUTE_ENDPOINT": url})):
                with self.subTest(args=args, env=env):
                    rc, out, err = self.verify(*args, env=env)
                    self.assertEqual(rc, 2, err)
                    self.assertEqual(out, "")
                    self.assertEqual(len(err.splitlines()), 1, err)
                    self.assertIn("user information (user:password@) in the URL is refused", err)
                    self.assertIn(f"http://***:***@127.0.0.2:{port}/", err)  # password hidden
                    # Nothing connected: a connection would wait in the backlog.
                    self.assertEqual(select.select([listener], [], [], 0)[0], [])
        finally:
            listener.close()

    def test_impersonation_headers_reach_the_server(self):
        fwd = Forwarder(self.emu.kube_url, self.kc["certificate-authority-data"])
        t = threading.Thread(target=fwd.serve_forever, daemon=True)
        t.start()
        try:
            # A bearer token over plain http:// is allowed to loopback only.
            kc = self.kubeconfig(
                "kc-impersonate", f"    server: http://127.0.0.1:{fwd.server_address[1]}\n",
                f"    token: {self.kc['token']}\n"
                "    as: jane\n"
                "    as-uid: \"1234\"\n"
                "    as-groups: [developers, \"system:authenticated\"]\n"
                "    as-user-extra:\n"
                "      scopes: [view, development]\n"
                "      \"example.com/team\": [net]\n")
            rc, out, err = self.verify("--kubeconfig", kc, "-o", "json")
            self.assertEqual(rc, 0, err)
            self.assertTrue(fwd.seen)
            for method, path, headers in fwd.seen:
                with self.subTest(path=path):
                    got = [(k, v) for k, v in headers if k.lower().startswith("impersonate-")]
                    self.assertEqual(sorted(got), sorted([
                        ("Impersonate-User", "jane"),
                        ("Impersonate-Uid", "1234"),
                        ("Impersonate-Group", "developers"),
                        ("Impersonate-Group", "system:authenticated"),
                        ("Impersonate-Extra-scopes", "view"),
                        ("Impersonate-Extra-scopes", "development"),
                        ("Impersonate-Extra-example.com%2Fteam", "net"),
                    ]))
        finally:
            fwd.shutdown()
            fwd.server_close()

    def test_impersonation_needs_a_user(self):
        kc = self.kubeconfig("kc-groups", f"    server: {self.emu.kube_url}\n{self.ca_line()}",
                             self.cert_user() + "    as-groups: [admins]\n")
        rc, out, err = self.verify("--kubeconfig", kc)
        self.assertEqual(rc, 2)
        self.assertIn(f"{kc}:", err)
        self.assertIn("users[u].user.as-groups: impersonating a uid, groups or extras needs a user", err)

    def test_proxy_url_is_used(self):
        proxy = ConnectProxy()
        t = threading.Thread(target=proxy.serve_forever, daemon=True)
        t.start()
        try:
            kc = self.kubeconfig(
                "kc-proxy", f"    server: {self.emu.kube_url}\n{self.ca_line()}"
                f"    proxy-url: http://127.0.0.1:{proxy.server_address[1]}\n", self.cert_user())
            # no_proxy would exempt the API server; proxy-url ignores it, as client-go does.
            rc, out, err = self.verify("--kubeconfig", kc, env={"no_proxy": "*", "NO_PROXY": "*"})
            self.assertEqual(rc, 0, err)
            target = self.emu.kube_url.split("//", 1)[1]
            self.assertIn(("CONNECT", target), proxy.tunnels)
        finally:
            proxy.shutdown()
            proxy.server_close()

    def test_bad_proxy_url_refused(self):
        kc = self.kubeconfig("kc-badproxy", f"    server: {self.emu.kube_url}\n{self.ca_line()}"
                             "    proxy-url: ftp://127.0.0.1:21\n", self.cert_user())
        rc, out, err = self.verify("--kubeconfig", kc)
        self.assertEqual(rc, 2)
        self.assertIn("clusters[c].cluster.proxy-url \"ftp://127.0.0.1:21\": want an http(s):// "
                      "or socks5(h):// URL", err)

    def test_deeply_nested_kubeconfig_refused(self):
        # 100,000 levels in 200 KB: refused at level 257 (bench/kubeconfig times it).
        path = self.write("kc-deep", "apiVersion: v1\nkind: Config\npreferences: "
                          + "[" * 100000 + "]" * 100000 + "\n")
        rc, out, err = self.verify("--kubeconfig", path, timeout=30)
        self.assertEqual(rc, 2)
        self.assertEqual(err.strip(), f"talos-gcp: error: {path}:3:269: nesting deeper than 256 levels")

    def test_long_timeout_honoured(self):
        rc, out, err = self.verify("--timeout", "300s", "-v")
        self.assertEqual(rc, 0, err)
        for api in ("compute", "kubernetes"):
            self.assertIn(f"{api}: a request times out after 300000 ms, its retries after 1200000 ms", err)

    def test_unwritable_stdout_is_exit_2(self):
        rc, out, err = self.verify()
        self.assertEqual(rc, 0, err)  # aligned: 0 when the report is written
        with open("/dev/full", "w") as full:
            import subprocess
            from emu import TALOS_GCP
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("GOOGLE_", "CLOUDSDK_", "GCE_", "KUBE"))}
            env.update(HOME=self.tmp, TALOS_GCP_COMPUTE_ENDPOINT=self.emu.compute_endpoint,
                       KUBECONFIG=self.emu.kubeconfig, CLOUDSDK_AUTH_DISABLE_CREDENTIALS="true",
                       CLOUDSDK_CORE_PROJECT=self.emu.project)
            for fmt in ("table", "json"):
                p = subprocess.run([TALOS_GCP, "verify", "-o", fmt], stdout=full,
                                   stderr=subprocess.PIPE, text=True, env=env, timeout=60)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("writing to stdout: No space left on device", p.stderr)


if __name__ == "__main__":
    unittest.main()
