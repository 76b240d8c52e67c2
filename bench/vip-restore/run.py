#!/usr/bin/env python3
"""vip-alias restore benchmark (run by hand, as root; never part of the test suite).

Inside a network namespace it creates (and deletes), it starts vip-alias, then deletes the
VIP N times over netlink and times each deletion to the moment the monitor sees the VIP back
(end to end: kernel notification, agent wake-up, RTM_NEWADDR, notification). Then it counts
the agent's context switches while idle, reads its peak RSS and the binary's size.

Usage: bench/vip-restore/run.py [--binary PATH] [--count 1000] [--idle 10]
       (default binary: build/src/agent/vip-alias; for the target figures use the stripped
       static one, see bench/vip-restore/README.md)
"""
import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "netns"))
from rtnl import RTM_DELADDR, RTM_NEWADDR, RTMGRP_IPV4_IFADDR, Netns, parse_addr  # noqa: E402

VIP = "10.0.0.2/32"


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def switches(pid):
    s = status(pid)
    return int(s["voluntary_ctxt_switches"]), int(s["nonvoluntary_ctxt_switches"])


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def pct(sorted_vals, p):
    return sorted_vals[min(len(sorted_vals) - 1, int(round(p / 100 * (len(sorted_vals) - 1))))]


class Bench:
    def __init__(self, args):
        self.args = args
        self.ns = Netns("vipbench")
        probe = self.ns.ip("link", "add", "vipprobe", "type", "dummy", check=False)
        if probe.returncode == 0:
            self.ns.ip("link", "del", "vipprobe")
            self.kind = []
        else:
            # No dummy type in this kernel: the agent creates a veth named dummy0 instead.
            self.kind = ["--link-kind", "veth"]
        self.log = tempfile.NamedTemporaryFile("w+", prefix="vip-bench-", suffix=".log")

    def start(self, *extra):
        cmd = ["ip", "netns", "exec", self.ns.name, self.args.binary, "--vip", VIP,
               "--metrics-addr", "127.0.0.1:0", *self.kind, *extra]
        proc = subprocess.Popen(cmd, stderr=self.log, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self.log.seek(0)
            if "event=ready" in self.log.read():
                return proc
            time.sleep(0.01)
        proc.kill()
        raise SystemExit("vip-alias did not become ready:\n" + self.log.read())

    def restore_times(self, count):
        nl = self.ns.rtnl()
        mon = self.ns.rtnl(RTMGRP_IPV4_IFADDR)
        index = nl.link("dummy0")["index"]
        times = []
        for i in range(count):
            while mon.recv_msgs(0):  # drain
                pass
            t0 = time.perf_counter_ns()
            nl.send_del_addr(VIP, index)
            saw_delete = False
            while True:
                r, _, _ = select.select([mon.sock], [], [], 2.0)
                if not r:
                    raise SystemExit(f"deletion {i}: VIP not restored within 2 s")
                batch = mon.recv_msgs(0)
                t1 = time.perf_counter_ns()
                done = False
                for mtype, _, _, payload in batch:
                    a = parse_addr(payload)
                    if a["cidr"] != VIP or a["index"] != index:
                        continue
                    if mtype == RTM_DELADDR:
                        saw_delete = True
                    elif mtype == RTM_NEWADDR and saw_delete:
                        done = True
                if done:
                    times.append((t1 - t0) / 1e6)
                    break
        nl.close()
        mon.close()
        return times

    def idle(self, proc, seconds):
        time.sleep(1)  # let the agent read the echo of its last change first
        v0, n0 = switches(proc.pid)
        c0 = cpu_ticks(proc.pid)
        time.sleep(seconds)
        v1, n1 = switches(proc.pid)
        c1 = cpu_ticks(proc.pid)
        return v1 - v0, n1 - n0, c1 - c0

    def agent_latencies(self):
        self.log.seek(0)
        out = []
        for line in self.log:
            if "event=restored" in line:
                for kv in line.split():
                    if kv.startswith("latency_us="):
                        out.append(int(kv.split("=", 1)[1]) / 1000)
        return out

    def close(self):
        self.ns.close()
        self.log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(HERE, "..", "..", "build", "src", "agent",
                                                     "vip-alias"))
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=10.0)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark creates a network namespace")
    args.binary = os.path.abspath(args.binary)
    print(f"command: {' '.join(sys.argv)}")
    print(f"binary: {args.binary}")
    print(f"  {subprocess.run(['file', '-b', args.binary], capture_output=True, text=True).stdout.strip()}")
    print(f"  size: {os.stat(args.binary).st_size} bytes "
          f"({os.stat(args.binary).st_size / 1048576:.2f} MiB)")
    print(f"kernel: {os.uname().release}")

    b = Bench(args)
    try:
        print(f"link kind: {'dummy' if not b.kind else 'veth (no dummy type in this kernel)'}")
        proc = b.start()
        times = sorted(b.restore_times(args.count))
        print(f"restore after RTM_DELADDR, end to end, {len(times)} deletions (ms): "
              f"p50 {pct(times, 50):.3f}  p99 {pct(times, 99):.3f}  max {times[-1]:.3f}  "
              f"mean {statistics.mean(times):.3f}")
        agent = sorted(b.agent_latencies())
        if agent:
            print(f"  agent's own view (event to restored, latency_us in its log) (ms): "
                  f"p50 {pct(agent, 50):.3f}  p99 {pct(agent, 99):.3f}  max {agent[-1]:.3f}")
        vol, invol, ticks = b.idle(proc, args.idle)
        print(f"idle {args.idle:.0f} s (--resync 60s): {vol} voluntary + {invol} involuntary "
              f"context switches, {ticks} CPU ticks")
        st = status(proc.pid)
        print(f"peak RSS (VmHWM): {st['VmHWM']}  (VmRSS now {st['VmRSS']})")
        proc.terminate()
        proc.wait(5)
        proc = b.start("--resync", "1s")
        vol, invol, ticks = b.idle(proc, args.idle)
        print(f"idle {args.idle:.0f} s with --resync 1s (the timer is the only wake-up): "
              f"{vol} voluntary + {invol} involuntary context switches")
        proc.terminate()
        proc.wait(5)
    finally:
        b.close()


if __name__ == "__main__":
    main()
