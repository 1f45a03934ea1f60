"""Network namespaces for the sensor's live tests (prefix ``nsS``), joined by one veth pair.

The victim namespace is where ``netsentry serve -i`` listens; the attacker sends traffic across
the veth.  Nothing is routed anywhere else; everything is torn down (processes first) at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

VICTIM_ADDR, ATTACKER_ADDR = "10.98.0.10", "10.98.0.21"

needs_root_netns = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 (ip netns)"
)

# Sends one UDP datagram (and reads the echo-less silence) to each of `count` ports: `count` flows.
UDP_FLOWS = """
import socket, sys, time
addr, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for port in range(first, first + count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"netsentry-test", (addr, port))
    s.close()
    time.sleep(0.002)
"""

SCRAPE = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"


@dataclass
class Lab:
    """Two namespaces and the victim's interface name."""

    victim: str
    attacker: str
    victim_if: str

    def exec_prefix(self, ns: str) -> tuple[str, ...]:
        """``ip netns exec NS``: run a command inside a namespace."""
        return ("ip", "netns", "exec", ns)

    def run(self, ns: str, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a command inside ``ns`` to completion."""
        return subprocess.run([*self.exec_prefix(ns), *cmd], capture_output=True, text=True, timeout=timeout)

    def scrape(self, port: int) -> dict[str, float]:
        """The sensor's Prometheus metrics (served on the victim's loopback) as {name{labels}: value}."""
        proc = self.run(self.victim, sys.executable, "-c", SCRAPE, f"http://127.0.0.1:{port}/metrics")
        assert proc.returncode == 0, proc.stderr
        values = {}
        for family in text_string_to_metric_families(proc.stdout):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return values

    def udp_flows(self, first_port: int, count: int) -> None:
        """``count`` one-packet UDP flows from the attacker to the victim."""
        proc = self.run(self.attacker, sys.executable, "-c", UDP_FLOWS, VICTIM_ADDR, str(first_port),
                        str(count))
        assert proc.returncode == 0, proc.stderr


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _kill_inside(ns: str) -> None:
    """Kill what still runs in ``ns`` (deleting a namespace does not)."""
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


@contextmanager
def lab() -> Iterator[Lab]:
    """Victim and attacker namespaces ``nsSv<tag>``/``nsSa<tag>`` with a veth pair, torn down after."""
    tag = uuid.uuid4().hex[:6]
    victim, attacker = f"nsSv{tag}", f"nsSa{tag}"
    try:
        for ns in (victim, attacker):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                            "net.ipv6.conf.default.disable_ipv6=1"], capture_output=True)
        _ip("link", "add", attacker, "netns", attacker, "type", "veth",
            "peer", "name", victim, "netns", victim)
        for ns, addr in ((victim, VICTIM_ADDR), (attacker, ATTACKER_ADDR)):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", ns)
            _ip("-n", ns, "link", "set", ns, "up")
        yield Lab(victim, attacker, victim)
    finally:
        for ns in (victim, attacker):
            _kill_inside(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
