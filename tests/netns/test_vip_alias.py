"""vip-alias in network namespaces each test creates (and deletes, also on failure).

The kernel here has no `dummy` link type. Tests that need vip-alias to create its interface
pass the hidden test-only flag `--link-kind veth` (the creation code path is the same, only
IFLA_INFO_KIND differs); tests of an existing interface pre-create a veth named dummy0; and
test_dummy0_creation_error_names_config_dummy runs the real default (`dummy`) to check the
error. Traffic goes only to addresses inside the test's namespace.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from agent import Agent, logfmt, run_once
from rtnl import (RTM_DELADDR, RTM_DELLINK, RTM_NEWADDR, RTM_NEWLINK, RTMGRP_IPV4_IFADDR,
                  RTMGRP_IPV6_IFADDR, RTMGRP_LINK, RT_TABLE_LOCAL, RTN_LOCAL, Netns, in_netns)

VIP4 = "10.0.0.2/32"
VIP6 = "2001:db8::2/128"
PROTO = 66
RT_SCOPE_HOST = 254


class NetnsCase(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to create network namespaces")
        if not shutil.which("ip"):
            self.skipTest("iproute2 (ip) not installed")
        self.ns = Netns()
        self.addCleanup(self.ns.close)
        self.nl = self.ns.rtnl()
        self.addCleanup(self.nl.close)

    # -- helpers --

    def agent(self, *args, env=None, ready=True):
        a = Agent(self.ns.name, *args, env=env)
        self.addCleanup(a.kill)
        if ready:
            a.wait_ready()
        return a

    def wait_until(self, pred, timeout=3.0, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.005)
        self.fail(f"timed out waiting for {what}")

    def addrs(self, cidr=None, ifname=None):
        index = self.ifindex(ifname) if ifname else None
        return [a for a in self.nl.addrs()
                if (cidr is None or a["cidr"] == cidr.lower())
                and (index is None or a["index"] == index)]

    def ifindex(self, name):
        link = self.nl.link(name)
        return link["index"] if link else None

    def vip_on(self, ifname, cidr=VIP4):
        return bool(self.addrs(cidr, ifname)) and self.nl.link(ifname)["up"]

    def local_routes(self, cidr):
        dst, plen = cidr.split("/")
        family = socket.AF_INET6 if ":" in dst else socket.AF_INET
        return [r for r in self.nl.routes(family)
                if r["table"] == RT_TABLE_LOCAL and r["dst"] == dst and r["dst_len"] == int(plen)]

    def snapshot(self):
        """Everything vip-alias could change, to compare before and after."""
        links = sorted((l["name"], l["index"], l["up"], l["alias"]) for l in self.nl.links())
        addrs = sorted((a["index"], a["cidr"], a["proto"], a["label"]) for a in self.nl.addrs())
        routes = sorted((r["family"], r["table"], str(r["dst"]), r["dst_len"], r["protocol"],
                         r["type"], r["oif"]) for r in self.nl.routes())
        return links, addrs, routes

    def veth(self, name, up=True):
        self.ns.ip("link", "add", name, "type", "veth", "peer", "name", name + "p")
        # No IPv6 link-local addresses: their DAD finishing later would look like a change.
        self.ns.ip("link", "set", name, "addrgenmode", "none")
        self.ns.ip("link", "set", name + "p", "addrgenmode", "none")
        if up:
            self.ns.ip("link", "set", name, "up")
            self.ns.ip("link", "set", name + "p", "up")
        return self.ifindex(name)

    def assert_local(self, cidr):
        """A TCP connection to the VIP inside the namespace is answered locally."""
        ip = cidr.split("/")[0]
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        # IPv6 installs an address's local route asynchronously, after (skipped) DAD.
        self.wait_until(lambda: any(r["type"] == RTN_LOCAL for r in self.local_routes(cidr)),
                        what=f"local route to {cidr}")

        def probe():
            with socket.socket(family, socket.SOCK_STREAM) as srv:
                srv.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
                srv.listen(1)
                port = srv.getsockname()[1]
                with socket.create_connection((ip, port), timeout=2):
                    conn, _ = srv.accept()
                    conn.close()
            return True

        self.assertTrue(in_netns(self.ns.name, probe))

    def events_since(self, mon, timeout=0.2):
        msgs = []
        while True:
            batch = mon.recv_msgs(timeout)
            if not batch:
                return msgs
            msgs += batch


class AddressMode(NetnsCase):
    def start(self, *extra, vip=VIP4):
        return self.agent("--vip", vip, "--link-kind", "veth", "--metrics-addr", "127.0.0.1:0",
                          *extra)

    def test_creates_link_brings_it_up_and_marks_the_vip(self):
        a = self.start()
        link = self.nl.link("dummy0")
        self.assertIsNotNone(link, "dummy0 not created")
        self.assertTrue(link["up"])
        self.assertEqual(link["alias"], "vip-alias")
        (addr,) = self.addrs(VIP4, "dummy0")
        self.assertEqual(addr["proto"], PROTO)
        self.assertEqual(addr["label"], "dummy0:vip")
        self.assertEqual(a.get("/healthz"), (200, "ok\n"))
        self.assertEqual(a.metric("vip_alias_vip_present"), 1)
        applied = a.events("applied")[0]
        self.assertEqual(applied["actions"], "link_created,link_up,address_added")
        self.assert_local(VIP4)

    def test_vip_deleted_is_restored(self):
        a = self.start()
        for n in range(1, 4):
            self.ns.ip("addr", "del", VIP4, "dev", "dummy0")
            ev = a.wait_event("restored", count=n)
            self.assertEqual(ev["cause"], "address_removed")
            self.assertEqual(ev["actions"], "address_added")
            self.wait_until(lambda: self.vip_on("dummy0"), what="VIP back")
        self.assertEqual(a.metric("vip_alias_restores_total", 'cause="address_removed"'), 3)
        self.assertEqual(a.metric("vip_alias_netlink_errors_total"), 0)

    def test_link_set_down_is_brought_up(self):
        a = self.start()
        self.ns.ip("link", "set", "dummy0", "down")
        ev = a.wait_event("restored")
        self.assertEqual(ev["cause"], "link_down")
        self.wait_until(lambda: self.vip_on("dummy0"), what="link up with the VIP")
        self.assertEqual(a.metric("vip_alias_restores_total", 'cause="link_down"'), 1)

    def test_link_deleted_is_recreated(self):
        a = self.start()
        old = self.ifindex("dummy0")
        self.ns.ip("link", "del", "dummy0")
        ev = a.wait_event("restored")
        self.assertEqual(ev["cause"], "link_removed", a.log())
        self.assertEqual(ev["actions"], "link_created,link_up,address_added")
        self.wait_until(lambda: self.ifindex("dummy0") not in (None, old), what="new dummy0")
        self.wait_until(lambda: self.vip_on("dummy0"), what="VIP on the new dummy0")
        self.assertEqual(a.metric("vip_alias_restores_total", 'cause="link_removed"'), 1)
        self.assertEqual(a.metric("vip_alias_netlink_errors_total"), 0)
        self.assertEqual(a.get("/healthz")[0], 200)

    def test_ipv6_vip_survives_deletion_and_link_down(self):
        a = self.start(vip=VIP6)
        (addr,) = self.addrs(VIP6, "dummy0")
        self.assertEqual(addr["proto"], PROTO)
        self.assertTrue(addr["flags"] & 0x02, "IPv6 VIP without IFA_F_NODAD")
        self.assert_local(VIP6)
        self.ns.ip("-6", "addr", "del", VIP6, "dev", "dummy0")
        self.assertEqual(a.wait_event("restored")["cause"], "address_removed")
        self.wait_until(lambda: self.vip_on("dummy0", VIP6), what="IPv6 VIP back")
        # Down flushes IPv6 addresses: both must come back. The flush's notifications may
        # arrive after the link's; the agent reads the kernel's state once the link is up
        # again, so one restore says it all, whatever the order (this failed by chance
        # before: 'link_up' != 'link_up,address_added').
        self.ns.ip("link", "set", "dummy0", "down")
        ev = a.wait_event("restored", count=2)
        self.assertEqual(ev["cause"], "link_down")
        self.assertEqual(ev["actions"], "link_up,address_added")
        self.wait_until(lambda: self.vip_on("dummy0", VIP6), timeout=2,
                        what="IPv6 VIP after link down")
        self.assert_local(VIP6)
        time.sleep(0.2)  # a late, separate restore would show here
        self.assertEqual(len(a.events("restored")), 2, a.log())
        self.assertEqual(a.metric("vip_alias_restores_total", 'cause="address_removed"'), 1)
        self.assertEqual(a.metric("vip_alias_restores_total", 'cause="link_down"'), 1)
        self.assertEqual(a.metric("vip_alias_netlink_errors_total"), 0)

    def test_existing_interface_is_used_and_foreign_addresses_left_alone(self):
        index = self.veth("dummy0")
        self.ns.ip("addr", "add", "192.0.2.10/32", "dev", "dummy0")
        self.ns.ip("addr", "add", "10.0.0.2/24", "dev", "dummy0")  # the VIP's address, other prefix
        self.ns.ip("-6", "addr", "add", "2001:db8::10/128", "dev", "dummy0", "nodad")
        self.nl.add_addr("198.51.100.7/32", index, proto=5)  # someone else's protocol
        foreign = {"192.0.2.10/32", "10.0.0.2/24", "2001:db8::10/128", "198.51.100.7/32"}
        # No --link-kind: the interface exists, nothing is created.
        a = self.agent("--vip", VIP4, "--metrics-addr", "127.0.0.1:0", "--cleanup-on-exit")
        self.assertEqual(self.ifindex("dummy0"), index)
        self.assertIsNone(self.nl.link("dummy0")["alias"], "marked a link it did not create")
        self.ns.ip("addr", "add", "192.0.2.11/32", "dev", "dummy0")
        foreign.add("192.0.2.11/32")
        self.ns.ip("addr", "del", VIP4, "dev", "dummy0")
        a.wait_event("restored")
        self.wait_until(lambda: self.vip_on("dummy0"), what="VIP back")
        self.ns.ip("addr", "del", "192.0.2.10/32", "dev", "dummy0")  # a foreign one goes
        foreign.discard("192.0.2.10/32")
        time.sleep(0.1)
        have = {x["cidr"] for x in self.addrs(ifname="dummy0")}
        self.assertTrue(foreign <= have, f"foreign addresses changed: {have}")
        self.assertNotIn("192.0.2.10/32", have, "restored an address it does not own")
        self.assertEqual(len(a.events("restored")), 1)
        self.assertEqual(a.stop(), 0)
        after = {x["cidr"] for x in self.addrs(ifname="dummy0")}
        self.assertNotIn(VIP4, after, "--cleanup-on-exit left the VIP")
        self.assertTrue(foreign <= after, f"cleanup touched foreign addresses: {after}")
        self.assertEqual(self.ifindex("dummy0"), index, "deleted a link it did not create")
        self.assertEqual(a.events("cleanup")[0]["actions"], "address_removed")

    def test_vip_put_there_by_talos_is_present(self):
        # Talos (DummyLinkConfig, or interfaces[].dummy) creates dummy0 and puts the VIP on it
        # at boot, with no mark of ours: that is the VIP in place, not a conflict.
        index = self.veth("dummy0")
        self.nl.add_addr(VIP4, index)  # as Talos adds it: no IFA_PROTO 66, no ':vip' label
        with self.ns.rtnl(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR) as mon:
            a = self.agent("--vip", VIP4, "--metrics-addr", "127.0.0.1:0", "--cleanup-on-exit")
            self.assertEqual(a.events("in_place")[0]["msg"], "already in place; nothing changed")
            self.assertEqual(a.get("/healthz")[0], 200)
            self.assertEqual(a.events("conflict"), [])
            changes = [m for m in self.events_since(mon) if m[0] in (RTM_NEWADDR, RTM_DELADDR)]
        self.assertEqual(changes, [], "took over or touched Talos' address")
        (addr,) = self.addrs(VIP4, "dummy0")
        self.assertIsNone(addr["proto"])
        # Gone: vip-alias heals with its own, marked one.
        self.ns.ip("addr", "del", VIP4, "dev", "dummy0")
        self.assertEqual(a.wait_event("restored")["actions"], "address_added")
        self.wait_until(lambda: self.vip_on("dummy0"), what="VIP back")
        self.assertEqual(self.addrs(VIP4, "dummy0")[0]["proto"], PROTO)
        self.assertEqual(a.stop(), 0)
        self.assertFalse(self.addrs(VIP4), "cleanup left its own address")
        self.assertEqual(self.ifindex("dummy0"), index, "deleted a link it did not create")

    def test_vip_put_back_by_someone_else_during_a_restore_is_not_taken_over(self):
        # The agent adds with NLM_F_EXCL: an address already back (Talos' controller was
        # quicker) stays theirs, and counts as present.
        index = self.veth("dummy0")
        a = self.agent("--vip", VIP4, "--metrics-addr", "127.0.0.1:0")
        a.send(signal.SIGSTOP)
        try:
            self.ns.ip("addr", "del", VIP4, "dev", "dummy0")
            self.nl.add_addr(VIP4, index)  # put back, unmarked, before the agent runs again
        finally:
            a.send(signal.SIGCONT)
        self.wait_until(lambda: a.get("/healthz")[0] == 200, what="healthz")
        time.sleep(0.1)
        (addr,) = self.addrs(VIP4, "dummy0")
        self.assertIsNone(addr["proto"], "replaced someone else's address with its own")
        self.assertEqual(a.metric("vip_alias_netlink_errors_total"), 0)

    def test_unowned_vip_on_the_interface_is_not_taken_over(self):
        self.veth("dummy0")
        self.ns.ip("addr", "add", VIP4, "dev", "dummy0")  # put there by hand, no mark
        a = self.agent("--vip", VIP4, "--metrics-addr", "127.0.0.1:0", "--cleanup-on-exit")
        self.assertEqual(a.get("/healthz")[0], 200)
        (addr,) = self.addrs(VIP4, "dummy0")
        self.assertIsNone(addr["proto"])
        self.assertEqual(a.stop(), 0)
        self.assertTrue(self.addrs(VIP4, "dummy0"), "cleanup removed an address it did not own")

    def test_stale_owned_address_is_removed(self):
        index = self.veth("dummy0")
        self.nl.add_addr("10.0.0.9/32", index, proto=PROTO)  # ours, from an older --vip
        a = self.agent("--vip", VIP4, "--metrics-addr", "off")
        self.assertFalse(self.addrs("10.0.0.9/32"), "stale owned address kept")
        self.assertTrue(self.addrs(VIP4, "dummy0"))
        self.assertIn("stale_address_removed", a.events("applied")[0]["actions"])

    def test_restart_with_vip_present_does_not_flap(self):
        a = self.start()
        self.assertEqual(a.stop(), 0)
        self.assertTrue(self.vip_on("dummy0"), "SIGTERM removed the VIP (default is to keep it)")
        self.assertEqual(a.events("signal")[0]["action"], "exit_leaving_vip")
        with self.ns.rtnl(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR) as mon:
            b = self.start()
            self.assertEqual(b.events("in_place")[0]["msg"], "already in place; nothing changed")
            self.assertEqual(b.stop(), 0)
            msgs = self.events_since(mon)
        changes = [m for m in msgs if m[0] in (RTM_NEWADDR, RTM_DELADDR, RTM_NEWLINK, RTM_DELLINK)]
        self.assertEqual(changes, [], "restart changed links or addresses")
        self.assertTrue(self.vip_on("dummy0"))

    def test_once_applies_and_exits(self):
        rc, lines = run_once(self.ns.name, "--vip", VIP4, "--link-kind", "veth", "--once")
        self.assertEqual(rc, 0, "\n".join(lines))
        self.assertTrue(self.vip_on("dummy0"))
        self.assertEqual(logfmt(lines[-1])["event"], "applied")
        with self.ns.rtnl(RTMGRP_LINK | RTMGRP_IPV4_IFADDR) as mon:
            rc, lines = run_once(self.ns.name, "--vip", VIP4, "--link-kind", "veth", "--once")
            self.assertEqual(rc, 0)
            self.assertEqual(self.events_since(mon), [], "second --once changed something")
        self.assertEqual(logfmt(lines[-1])["event"], "in_place")

    def test_environment_variables_configure_it(self):
        rc, lines = run_once(self.ns.name, "--link-kind", "veth",
                             env={"VIP_ALIAS_VIP": VIP6, "VIP_ALIAS_INTERFACE": "vip0",
                                  "VIP_ALIAS_ONCE": "true"})
        self.assertEqual(rc, 0, "\n".join(lines))
        self.assertTrue(self.vip_on("vip0", VIP6))

    def test_cleanup_on_exit_removes_the_link_it_created(self):
        a = self.start("--cleanup-on-exit")
        self.assertEqual(a.stop(signal.SIGINT), 0)
        self.assertIsNone(self.nl.link("dummy0"), "link it created is still there")
        self.assertFalse(self.addrs(VIP4))
        self.assertEqual(a.events("cleanup")[0]["actions"], "address_removed,link_removed")

    def test_sighup_and_timer_resync(self):
        a = self.start("--resync", "200ms", "-v")
        a.send(signal.SIGHUP)
        a.wait_event("signal", signal="SIGHUP")
        a.wait_event("resync", reason="signal")
        a.wait_event("resync", reason="timer", count=2, timeout=3)
        self.assertGreaterEqual(a.metric("vip_alias_resyncs_total", 'reason="timer"'), 2)
        self.assertEqual(a.metric("vip_alias_resyncs_total", 'reason="signal"'), 1)
        self.assertEqual(a.events("restored"), [], "a resync with nothing missing changed things")

    def test_lost_events_enobufs_trigger_a_resync(self):
        a = self.start()
        # The agent sizes its monitor socket (1 MiB, as `ip monitor` does) and says so.
        rcvbuf = int(a.events("start")[0]["monitor_rcvbuf"])
        self.assertGreaterEqual(rcvbuf, 1 << 20)
        other = self.veth("eth0")
        a.send(signal.SIGSTOP)
        try:
            self.ns.ip("addr", "del", VIP4, "dev", "dummy0")
            # Far more notifications than the monitor socket's buffer holds: each takes
            # well over 300 bytes of it.
            n = max(2500, min(60000, rcvbuf // 300))
            with tempfile.NamedTemporaryFile("w", suffix=".batch") as f:
                for i in range(n):
                    f.write(f"addr add 198.18.{i // 250}.{i % 250 + 1}/32 dev eth0\n")
                for i in range(n):
                    f.write(f"addr del 198.18.{i // 250}.{i % 250 + 1}/32 dev eth0\n")
                f.flush()
                self.ns.ip("-batch", f.name)
        finally:
            a.send(signal.SIGCONT)
        a.wait_event("monitor_overflow")
        a.wait_event("restored")
        self.wait_until(lambda: self.vip_on("dummy0"), what="VIP back after ENOBUFS")
        self.assertGreaterEqual(a.metric("vip_alias_resyncs_total", 'reason="enobufs"'), 1)
        self.assertGreaterEqual(a.metric("vip_alias_netlink_errors_total"), 1)
        self.assertTrue(other)

    def test_http_endpoints(self):
        a = self.start()
        self.assertEqual(a.get("/healthz", "HEAD")[0], 200)
        self.assertEqual(a.get("/livez"), (200, "alive\n"))
        self.assertEqual(a.get("/nope")[0], 404)
        self.assertEqual(a.get("/healthz", "POST")[0], 405)
        status, body = a.get("/metrics")
        self.assertEqual(status, 200)
        for needle in ('vip_alias_info{vip="10.0.0.2/32",interface="dummy0",mode="address"',
                       "# TYPE vip_alias_restores_total counter",
                       "vip_alias_last_reconcile_timestamp_seconds ",
                       "vip_alias_netlink_errors_total 0"):
            self.assertIn(needle, body)
        self.assertGreater(a.metric("vip_alias_last_reconcile_timestamp_seconds"), 1.6e9)

    def test_idle_connections_do_not_starve_the_probe(self):
        a = self.start()
        idle = []
        try:
            # Far more idle connections than the agent keeps (they never send a request).
            for _ in range(40):
                idle.append(in_netns(self.ns.name,
                                     lambda: socket.create_connection(("127.0.0.1", a.port), 2)))
            t0 = time.monotonic()
            self.assertEqual(a.get("/healthz"), (200, "ok\n"))
            self.assertEqual(a.get("/livez")[0], 200)
            # Not after the idle ones time out (5 s): at once (generous, never flaky).
            self.assertLess(time.monotonic() - t0, 2.5)
        finally:
            for s_ in idle:
                s_.close()

    def test_dummy0_creation_error_names_config_dummy(self):
        probe = self.ns.ip("link", "add", "vipprobe", "type", "dummy", check=False)
        if probe.returncode == 0:
            # This kernel has dummy: the default path must then simply work.
            self.ns.ip("link", "del", "vipprobe")
            rc, lines = run_once(self.ns.name, "--vip", VIP4, "--once")
            self.assertEqual(rc, 0, "\n".join(lines))
            self.assertEqual(self.nl.link("dummy0")["kind"], "dummy")
            return
        before = self.snapshot()
        for extra in (["--once"], ["--metrics-addr", "127.0.0.1:0"]):
            rc, lines = run_once(self.ns.name, "--vip", VIP4, *extra)
            self.assertEqual(rc, 1, "\n".join(lines))
            errors = [l for l in lines if "level=error" in l]
            self.assertEqual(len(errors), 1, "\n".join(lines))
            msg = logfmt(errors[0])["error"]
            self.assertIn("--interface dummy0: cannot create it", msg)
            self.assertIn("CONFIG_DUMMY", msg)
            self.assertEqual(self.snapshot(), before, "a failed start changed something")


def manifest():
    import yaml  # python3-yaml (scripts/deps.sh)
    path = os.path.join(os.environ.get("SOURCE_ROOT", os.path.join(os.path.dirname(__file__),
                                                                   "..", "..")),
                        "deploy", "vip-alias.yaml")
    with open(path) as f:
        return yaml.safe_load(f)


class Deploy(NetnsCase):
    """deploy/vip-alias.yaml: what issue 3 asks of the DaemonSet, and that it really runs."""

    def test_daemonset_shape(self):
        ds = manifest()
        self.assertEqual(ds["kind"], "DaemonSet")
        pod = ds["spec"]["template"]["spec"]
        self.assertTrue(pod["hostNetwork"])
        self.assertEqual(pod["nodeSelector"], {"node-role.kubernetes.io/control-plane": ""})
        self.assertIn("node-role.kubernetes.io/control-plane",
                      [t["key"] for t in pod["tolerations"]])
        (c,) = pod["containers"]
        sc = c["securityContext"]
        self.assertIs(sc["privileged"], False)
        self.assertIs(sc["readOnlyRootFilesystem"], True)
        self.assertEqual(sc["capabilities"], {"drop": ["ALL"], "add": ["NET_ADMIN"]})
        probe = c["livenessProbe"]["httpGet"]
        self.assertEqual((probe["host"], probe["path"], probe["port"]),
                         ("127.0.0.1", "/livez", 9365))
        ready = c["readinessProbe"]["httpGet"]
        self.assertEqual((ready["host"], ready["path"], ready["port"]),
                         ("127.0.0.1", "/healthz", 9365))
        self.assertIn("cpu", c["resources"]["requests"])
        self.assertIn("memory", c["resources"]["requests"])

    def test_manifest_environment_runs(self):
        (c,) = manifest()["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["value"] for e in c["env"]}
        a = self.agent("--link-kind", "veth", env=env)
        self.assertEqual(a.port, 9365)
        self.assertEqual(a.get("/healthz"), (200, "ok\n"))
        self.assertTrue(self.vip_on("dummy0", env["VIP_ALIAS_VIP"]))


class LocalRouteMode(NetnsCase):
    def setUp(self):
        super().setUp()
        self.eth0 = self.veth("eth0")

    def start(self, *extra, vip=VIP4):
        return self.agent("--vip", vip, "--mode", "local-route", "--interface", "eth0",
                          "--metrics-addr", "127.0.0.1:0", *extra)

    def our_route(self, cidr=VIP4):
        return [r for r in self.local_routes(cidr)
                if r["protocol"] == PROTO and r["oif"] == self.ifindex("eth0")]

    def test_route_is_added_as_the_guest_agent_does(self):
        a = self.start()
        (r,) = self.local_routes(VIP4)
        self.assertEqual((r["type"], r["scope"], r["protocol"], r["oif"]),
                         (RTN_LOCAL, RT_SCOPE_HOST, PROTO, self.eth0))
        self.assertFalse(self.addrs(VIP4), "local-route mode added an address")
        self.assertIsNone(self.nl.link("dummy0"), "local-route mode created dummy0")
        self.assertEqual(a.get("/healthz")[0], 200)
        self.assert_local(VIP4)
        # Other links coming and going cost nothing (no resync, no change).
        self.veth("other")
        self.ns.ip("link", "del", "other")
        time.sleep(0.1)
        self.assertEqual(a.metric("vip_alias_resyncs_total", 'reason="link"'), 0)
        self.assertEqual(a.events("restored"), [])

    def test_route_deleted_is_restored(self):
        a = self.start()
        self.ns.ip("route", "del", "local", "10.0.0.2/32", "dev", "eth0", "table", "local")
        ev = a.wait_event("restored")
        self.assertEqual(ev["cause"], "route_removed")
        self.assertEqual(ev["actions"], "route_added")
        self.wait_until(lambda: self.our_route(), what="route back")
        self.assertEqual(a.metric("vip_alias_restores_total", 'cause="route_removed"'), 1)

    def test_link_down_up_and_deleted_readded(self):
        a = self.start()
        self.ns.ip("link", "set", "eth0", "down")
        self.ns.ip("link", "set", "eth0", "up")
        self.wait_until(lambda: self.our_route(), what="route after down/up")
        self.ns.ip("link", "del", "eth0")
        a.wait_event("not_in_place")
        self.assertEqual(a.get("/healthz")[0], 503)
        self.assertEqual(a.metric("vip_alias_vip_present"), 0)
        a.wait_event("waiting")
        # Alive while the VIP cannot be placed: the kubelet must not restart it for that.
        self.assertEqual(a.get("/livez"), (200, "alive\n"))
        self.veth("eth0")
        ev = a.wait_event("restored")
        self.assertEqual(ev["actions"], "route_added")
        self.wait_until(lambda: self.our_route(), what="route on the new eth0")
        self.assertEqual(a.get("/healthz")[0], 200)

    def test_ipv6_local_route(self):
        a = self.start(vip=VIP6)
        self.assertTrue(self.our_route(VIP6))
        self.assert_local(VIP6)
        self.ns.ip("-6", "route", "del", "local", VIP6, "dev", "eth0", "table", "local")
        self.assertEqual(a.wait_event("restored")["cause"], "route_removed")
        self.wait_until(lambda: self.our_route(VIP6), what="IPv6 route back")
        # Down flushes IPv6 routes and the kernel refuses new ones until the link is up.
        self.ns.ip("link", "set", "eth0", "down")
        a.wait_event("waiting")
        self.ns.ip("link", "set", "eth0", "up")
        # Down is two notifications (the link, then the flushed route); which one the agent
        # saw last before the link came back depends on scheduling: either names the cause.
        self.assertIn(a.wait_event("restored", count=2)["cause"], ("link_down", "route_removed"))
        self.wait_until(lambda: self.our_route(VIP6), what="IPv6 route after down/up")
        self.assertEqual(a.metric("vip_alias_netlink_errors_total"), 0)

    def test_cleanup_on_exit_removes_only_its_route(self):
        self.ns.ip("route", "add", "local", "10.0.0.77/32", "dev", "eth0", "table", "local",
                   "proto", "static")
        a = self.start("--cleanup-on-exit")
        self.assertEqual(a.stop(), 0)
        self.assertEqual(self.local_routes(VIP4), [])
        self.assertTrue(self.local_routes("10.0.0.77/32"), "removed a route it does not own")
        self.assertEqual(self.ifindex("eth0"), self.eth0)

    def test_sigterm_leaves_the_route(self):
        a = self.start()
        self.assertEqual(a.stop(), 0)
        self.assertTrue(self.our_route())


class BadInput(NetnsCase):
    """Each case: exit 2, one error line naming the flag, nothing changed."""

    def setUp(self):
        super().setUp()
        self.veth("eth0")

    def refused(self, *args, env=None, needle):
        before = self.snapshot()
        rc, lines = run_once(self.ns.name, *args, env=env)
        self.assertEqual(rc, 2, "\n".join(lines))
        self.assertEqual(len(lines), 1, "\n".join(lines))
        ev = logfmt(lines[0])
        self.assertEqual(ev["level"], "error")
        self.assertIn(needle, ev["error"])
        self.assertEqual(self.snapshot(), before, f"{args} changed something")
        return ev["error"]

    def test_malformed_vip(self):
        for vip in ("10.0.0.300/32", "10.0.0.2/33", "abc", "10.0.0.2/", "010.0.0.2"):
            msg = self.refused("--vip", vip, "--link-kind", "veth", needle=f"--vip {vip}:")
            self.assertNotIn("\n", msg)
        self.refused("--vip", "10.0.0.2/24", needle="must be a single address")
        self.refused("--vip", "127.0.0.1", needle="not usable as a VIP")
        self.refused("--vip", "", needle="--vip: missing address")
        self.refused("--vip", needle="--vip: needs a value")
        self.refused("--link-kind", "veth", needle="--vip: required")
        self.refused(env={"VIP_ALIAS_VIP": "10.0.0.2/99"}, needle="VIP_ALIAS_VIP=10.0.0.2/99:")

    def test_missing_or_bad_interface_name(self):
        self.refused("--vip", VIP4, "--interface", "", needle="--interface: missing interface name")
        self.refused("--vip", VIP4, "--interface", needle="--interface: missing interface name")
        self.refused("--vip", VIP4, "--interface", "a/b", needle="--interface a/b:")
        self.refused("--vip", VIP4, "--interface", "x" * 16, needle="not a valid interface name")
        self.refused("--vip", VIP4, env={"VIP_ALIAS_INTERFACE": "bad name"},
                     needle="VIP_ALIAS_INTERFACE=bad name:")
        self.refused("--vip", VIP4, "--mode", "local-route", "--interface", "eth9",
                     needle="--interface eth9: no such interface")

    def test_lo_is_refused(self):
        for args in (("--interface", "lo"), ("--mode", "local-route", "--interface", "lo")):
            with self.subTest(args=args):
                self.refused("--vip", VIP4, *args, needle="--interface lo: the VIP must not go on lo")
        self.refused("--vip", VIP4, env={"VIP_ALIAS_INTERFACE": "lo"},
                     needle="VIP_ALIAS_INTERFACE=lo: the VIP must not go on lo")

    def test_vip_owned_by_someone_else_on_another_interface(self):
        self.ns.ip("addr", "add", VIP4, "dev", "eth0")
        msg = self.refused("--vip", VIP4, "--link-kind", "veth",
                           needle="--vip 10.0.0.2/32: already an address on interface eth0")
        self.assertIn("not owned by vip-alias", msg)
        self.assertIsNone(self.nl.link("dummy0"))
        self.refused("--vip", VIP4, "--mode", "local-route", "--interface", "eth0",
                     needle="already an address on interface eth0")

    def test_other_flags(self):
        self.refused("--vip", VIP4, "--mode", "bgp", needle="--mode bgp:")
        self.refused("--vip", VIP4, "--resync", "soon", needle="--resync soon:")
        self.refused("--vip", VIP4, "--metrics-addr", "localhost:80", needle="--metrics-addr")
        self.refused("--vip", VIP4, "--frobnicate", needle="--frobnicate: unknown flag")
        self.refused("--vip", VIP4, "--once", "--cleanup-on-exit", needle="--cleanup-on-exit")
        self.refused("--vip", VIP4, env={"VIP_ALIAS_ONCE": "maybe"}, needle="VIP_ALIAS_ONCE=maybe")


if __name__ == "__main__":
    unittest.main()
