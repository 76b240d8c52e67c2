"""Minimal rtnetlink client (stdlib only) for the vip-alias tests and benchmark.

iproute2 6.1 cannot show an address's protocol (IFA_PROTO), so the tests read the kernel's
state themselves. Everything happens inside a network namespace the caller created: a socket
is opened by a short-lived thread that first joins the namespace (setns affects only the
calling thread, and a socket keeps the namespace it was created in).
"""
import ctypes
import ipaddress
import os
import socket
import struct
import subprocess
import threading
import time

CLONE_NEWNET = 0x40000000

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26

RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE = 0x1, 0x10, 0x40
RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE = 0x100, 0x400

IFLA_IFNAME, IFLA_LINKINFO, IFLA_IFALIAS = 3, 18, 20
IFLA_INFO_KIND = 1
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_FLAGS, IFA_PROTO = 1, 2, 3, 8, 11
RTA_DST, RTA_OIF, RTA_PRIORITY, RTA_TABLE = 1, 4, 6, 15
IFF_UP = 0x1
IFA_F_NODAD = 0x02
RT_TABLE_LOCAL = 255
RTN_LOCAL = 2

_libc = ctypes.CDLL(None, use_errno=True)


def in_netns(ns, fn):
    """Runs fn() on a thread that has joined network namespace ns; returns its result."""
    out = {}

    def run():
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns {ns}: {os.strerror(err)}")
            out["value"] = fn()
        except BaseException as e:  # re-raised in the caller
            out["error"] = e
        finally:
            os.close(fd)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def _attrs(data):
    """Yields (type, payload) of the rtattrs in data."""
    off = 0
    while off + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, off)
        if length < 4 or off + length > len(data):
            return
        yield kind & 0x3FFF, data[off + 4:off + length]
        off += (length + 3) & ~3


def _attr(kind, payload):
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * ((-len(payload)) % 4)


def _cstr(b):
    return b.split(b"\0", 1)[0].decode(errors="replace")


def _ip(family, b):
    return str(ipaddress.ip_address(b))


def parse_link(payload):
    _, _, _, index, flags, _ = struct.unpack_from("=BBHiII", payload)
    link = {"index": index, "flags": flags, "up": bool(flags & IFF_UP), "name": None,
            "alias": None, "kind": None}
    for kind, val in _attrs(payload[16:]):
        if kind == IFLA_IFNAME:
            link["name"] = _cstr(val)
        elif kind == IFLA_IFALIAS:
            link["alias"] = _cstr(val)
        elif kind == IFLA_LINKINFO:
            for k2, v2 in _attrs(val):
                if k2 == IFLA_INFO_KIND:
                    link["kind"] = _cstr(v2)
    return link


def parse_addr(payload):
    family, plen, flags, scope, index = struct.unpack_from("=BBBBi", payload)
    a = {"family": family, "prefixlen": plen, "flags": flags, "scope": scope, "index": index,
         "address": None, "label": None, "proto": None}
    local = address = None
    for kind, val in _attrs(payload[8:]):
        if kind == IFA_LOCAL:
            local = _ip(family, val)
        elif kind == IFA_ADDRESS:
            address = _ip(family, val)
        elif kind == IFA_LABEL:
            a["label"] = _cstr(val)
        elif kind == IFA_FLAGS:
            a["flags"] = struct.unpack("=I", val[:4])[0]
        elif kind == IFA_PROTO:
            a["proto"] = val[0]
    a["address"] = local or address
    a["cidr"] = f"{a['address']}/{plen}"
    return a


def parse_route(payload):
    family, dst_len, _, tos, table, protocol, scope, rtype, _ = struct.unpack_from(
        "=BBBBBBBBI", payload)
    r = {"family": family, "dst_len": dst_len, "tos": tos, "table": table,
         "protocol": protocol, "scope": scope, "type": rtype, "dst": None, "oif": None,
         "priority": 0}
    for kind, val in _attrs(payload[12:]):
        if kind == RTA_DST:
            r["dst"] = _ip(family, val)
        elif kind == RTA_TABLE:
            r["table"] = struct.unpack("=I", val[:4])[0]
        elif kind == RTA_OIF:
            r["oif"] = struct.unpack("=I", val[:4])[0]
        elif kind == RTA_PRIORITY:
            r["priority"] = struct.unpack("=I", val[:4])[0]
    return r


class Rtnl:
    """A NETLINK_ROUTE socket inside namespace ns; groups > 0 makes it a monitor."""

    def __init__(self, ns, groups=0, rcvbuf=None):
        def make():
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            if rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.bind((0, groups))
            return s

        self.sock = in_netns(ns, make)
        self.seq = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, mtype, flags, payload):
        self.seq += 1
        msg = struct.pack("=IHHII", 16 + len(payload), mtype, flags | NLM_F_REQUEST, self.seq,
                          0) + payload
        self.sock.send(msg)
        return self.seq

    def _talk(self, mtype, flags, payload):
        """Sends a request and returns the data messages of the reply (raises on error)."""
        seq = self._send(mtype, flags, payload)
        out = []
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, rtype, rflags, rseq, _ = struct.unpack_from("=IHHII", data, off)
                body = data[off + 16:off + length]
                off += (length + 3) & ~3
                if rseq != seq:
                    continue
                if rtype == NLMSG_DONE:
                    return out
                if rtype == NLMSG_ERROR:
                    err = struct.unpack_from("=i", body)[0]
                    if err:
                        raise OSError(-err, f"netlink: {os.strerror(-err)}")
                    return out
                out.append((rtype, body))
                if not rflags & NLM_F_MULTI and not flags & NLM_F_ACK:
                    return out

    def links(self):
        msgs = self._talk(RTM_GETLINK, NLM_F_DUMP, struct.pack("=BBHiII", 0, 0, 0, 0, 0, 0))
        return [parse_link(b) for t, b in msgs if t == RTM_NEWLINK]

    def link(self, name):
        for link in self.links():
            if link["name"] == name:
                return link
        return None

    def addrs(self):
        msgs = self._talk(RTM_GETADDR, NLM_F_DUMP, struct.pack("=BBBBi", 0, 0, 0, 0, 0))
        return [parse_addr(b) for t, b in msgs if t == RTM_NEWADDR]

    def routes(self, family=socket.AF_UNSPEC):
        msgs = self._talk(RTM_GETROUTE, NLM_F_DUMP,
                          struct.pack("=BBBBBBBBI", family, 0, 0, 0, 0, 0, 0, 0, 0))
        return [parse_route(b) for t, b in msgs if t == RTM_NEWROUTE]

    def _addr_msg(self, cidr, index, proto=None):
        net = ipaddress.ip_interface(cidr)
        family = socket.AF_INET if net.version == 4 else socket.AF_INET6
        payload = struct.pack("=BBBBi", family, net.network.prefixlen, 0, 0, index)
        payload += _attr(IFA_LOCAL, net.ip.packed) + _attr(IFA_ADDRESS, net.ip.packed)
        if proto is not None:
            payload += _attr(IFA_PROTO, bytes([proto]))
        if family == socket.AF_INET6:
            payload += _attr(IFA_FLAGS, struct.pack("=I", IFA_F_NODAD))
        return payload

    def add_addr(self, cidr, index, proto=None):
        self._talk(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                   self._addr_msg(cidr, index, proto))

    def del_addr(self, cidr, index):
        self._talk(RTM_DELADDR, NLM_F_ACK, self._addr_msg(cidr, index))

    def send_del_addr(self, cidr, index):
        """Fire-and-forget delete (the benchmark measures from here)."""
        self._send(RTM_DELADDR, 0, self._addr_msg(cidr, index))

    def recv_msgs(self, timeout=None):
        """Monitor: the next batch of (type, flags, portid, payload), [] on timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, BlockingIOError):
            return []
        finally:
            self.sock.settimeout(None)
        out, off = [], 0
        while off + 16 <= len(data):
            length, rtype, rflags, _, pid = struct.unpack_from("=IHHII", data, off)
            if length < 16:
                break
            out.append((rtype, rflags, pid, data[off + 16:off + length]))
            off += (length + 3) & ~3
        return out


class Netns:
    """A network namespace with a unique name, deleted by close() (also on failure)."""

    counter = 0

    def __init__(self, prefix="vipt"):
        Netns.counter += 1
        self.name = f"{prefix}-{os.getpid()}-{Netns.counter}-{int(time.time() * 1000) % 100000}"
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        self.ip("link", "set", "lo", "up")

    def ip(self, *args, check=True):
        r = subprocess.run(["ip", "-n", self.name, *args], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"ip -n {self.name} {' '.join(args)}: {r.stderr.strip()}")
        return r

    def rtnl(self, groups=0, rcvbuf=None):
        return Rtnl(self.name, groups, rcvbuf)

    def close(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
