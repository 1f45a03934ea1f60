"""The lab's network: one namespace per host, veth pairs into a bridge that lives in a switch namespace.

Nothing is created in the root namespace (no bridge, no veth end, no route), and no lab namespace
has a default route, so no packet can leave the lab.  :func:`down` looks only for the lab's own
namespace names (:data:`NAMESPACES`), never for a prefix, so other namespaces on the machine (even one
called ``nsLocalVPN``) are never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PREFIX = "nsL"
SUBNET = "10.99.7"
SWITCH = f"{PREFIX}sw"
BRIDGE = f"{PREFIX}br0"


@dataclass(frozen=True)
class Host:
    """A lab host: its short name (namespace = PREFIX + name) and its address."""

    name: str
    octet: int

    @property
    def ns(self) -> str:
        """The network namespace name."""
        return PREFIX + self.name

    @property
    def address(self) -> str:
        """The IPv4 address on the lab subnet."""
        return f"{SUBNET}.{self.octet}"


#: victim, three attackers, a command-and-control host for the bot, two benign clients
HOSTS: tuple[Host, ...] = (
    Host("vic", 10),
    Host("att1", 21),
    Host("att2", 22),
    Host("att3", 23),
    Host("c2", 40),
    Host("cli1", 30),
    Host("cli2", 31),
)
BY_NAME = {h.name: h for h in HOSTS}
#: every namespace the lab makes, and the only ones it ever kills processes in or deletes
NAMESPACES: tuple[str, ...] = (SWITCH, *(h.ns for h in HOSTS))
VICTIM = BY_NAME["vic"]
#: hosts whose resolver is the victim's dnsmasq; the others get none (a server's reverse look-up of
#: its peers would otherwise put DNS flows of no scenario into the capture)
RESOLVER_CLIENTS = ("cli1", "cli2")


class LabError(RuntimeError):
    """A lab operation failed (the message says which command and why)."""


class Interrupted(Exception):
    """The run was stopped by a signal; ``code`` is the conventional exit status (128 + signal)."""

    def __init__(self, signum: int, message: str = "") -> None:
        self.signum = signum
        self.code = 128 + signum
        super().__init__(message or f"interrupted by {signal.Signals(signum).name}")


class LabUsageError(LabError):
    """The user asked for something the lab refuses (an unsafe folder, a foreign account): exit status 2."""


def require_root() -> None:
    """Raise :class:`LabError` unless running as root (namespaces need CAP_SYS_ADMIN)."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, raw sockets): run it with sudo")


def run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    """Run a command quietly; on failure raise :class:`LabError` with its stderr."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def ns_exec(ns: str, cmd: list[str]) -> list[str]:
    """The argv that runs ``cmd`` inside namespace ``ns`` (ip netns exec execs, so PIDs are real)."""
    return ["ip", "netns", "exec", ns, *cmd]


def exec_in(host: Host | str, cmd: list[str]) -> list[str]:
    """The argv that runs ``cmd`` inside a lab host's namespace."""
    return ns_exec(host.ns if isinstance(host, Host) else PREFIX + host, cmd)


def existing(names: Iterable[str]) -> list[str]:
    """Those of ``names`` that exist now, by exact name (a foreign namespace sharing a prefix is not one)."""
    out = run(["ip", "netns", "list"], check=False).stdout
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    return [n for n in names if n in listed]


def our_namespaces() -> list[str]:
    """The lab's namespaces that exist now (exact names: a foreign ``nsL...`` is not ours)."""
    return existing(NAMESPACES)


def namespace_pids(ns: str) -> list[int]:
    """PIDs of the processes running inside namespace ``ns``."""
    out = run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _signal_all(names: tuple[str, ...], sig: int) -> int:
    """Send ``sig`` to every process inside those of ``names`` that exist; return how many there were."""
    count = 0
    for ns in existing(names):
        for pid in namespace_pids(ns):
            try:
                os.kill(pid, sig)
                count += 1
            except ProcessLookupError:
                pass
    return count


def remove_namespaces(names: tuple[str, ...]) -> list[str]:
    """Kill what runs inside ``names`` (deleting a netns does not), then delete them; return those deleted.

    Only these exact names are looked at, so a namespace the caller does not own is never touched.
    """
    if _signal_all(names, signal.SIGTERM):
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(namespace_pids(ns) for ns in existing(names)):
            time.sleep(0.1)
        _signal_all(names, signal.SIGKILL)
        time.sleep(0.1)
    deleted = existing(names)
    for ns in deleted:
        run(["ip", "netns", "del", ns], check=False)
    return deleted


def down() -> list[str]:
    """Remove the lab: kill what runs inside, then delete the namespaces and the resolver folders.

    Idempotent, works after a crash (it looks at what exists, not at a state file).  Returns the
    namespaces deleted.
    """
    deleted = remove_namespaces(NAMESPACES)
    for host in HOSTS:
        remove_resolver(Path("/etc/netns") / host.ns)
    return deleted


def remove_resolver(folder: Path) -> None:
    """Remove a host's ``/etc/netns`` folder; a concurrent ``lab down`` may be removing it too."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for f in folder.iterdir():
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
        folder.rmdir()


def _make_ns(ns: str) -> None:
    run(["ip", "netns", "add", ns])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])
    # no IPv6: router solicitations and MLD would be noise in the capture
    run(
        [
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]
    )


def no_offloads(ns: str, dev: str, check: bool = False) -> None:
    """Turn off the offloads of ``dev`` in ``ns``.

    With offloads the capture holds 64 KB "packets" and bad checksums: the features would be wrong.
    """
    run(
        ns_exec(ns, ["ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off"]),
        check=check,
    )


def make_bridge(switch: str, bridge: str, *options: str) -> None:
    """Create ``bridge`` in namespace ``switch`` and bring it up (no STP, ports forward at once)."""
    run(
        [
            "ip",
            "-n",
            switch,
            "link",
            "add",
            bridge,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            *options,
        ]
    )
    run(["ip", "-n", switch, "link", "set", bridge, "up"])


def plug(switch: str, bridge: str, port: str, ns: str, check: bool = False) -> None:
    """A veth pair: ``eth0`` in ``ns`` to ``port`` on ``bridge`` in ``switch``, offloads off at both ends."""
    run(["ip", "-n", switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns])
    run(["ip", "-n", switch, "link", "set", port, "master", bridge, "up"])
    no_offloads(switch, port, check=check)
    no_offloads(ns, "eth0", check=check)


def up() -> None:
    """Build the lab network from scratch (removing any previous one first)."""
    require_root()
    down()
    _make_ns(SWITCH)
    make_bridge(SWITCH, BRIDGE)
    for host in HOSTS:
        _make_ns(host.ns)
        plug(SWITCH, BRIDGE, f"{PREFIX}-{host.name}", host.ns)
        run(["ip", "-n", host.ns, "addr", "add", f"{host.address}/24", "dev", "eth0"])
        run(["ip", "-n", host.ns, "link", "set", "eth0", "up"])
        if host.name in RESOLVER_CLIENTS:
            resolv = Path("/etc/netns") / host.ns
            resolv.mkdir(parents=True, exist_ok=True)
            (resolv / "resolv.conf").write_text(f"nameserver {VICTIM.address}\n")
    # nmap -sU and scans of closed ports: the victim's ICMP rate limit would stall them for minutes
    run(
        exec_in(
            VICTIM,
            [
                "sysctl",
                "-qw",
                "net.ipv4.icmp_ratelimit=0",
                "net.ipv4.icmp_msgs_per_sec=100000",
                "net.ipv4.icmp_msgs_burst=10000",
            ],
        )
    )
    for host in HOSTS:
        if host is not VICTIM:
            wait_reachable(host.ns, VICTIM.address, "the victim")


def wait_reachable(ns: str, address: str, what: str, timeout: float = 5.0) -> None:
    """Ping ``address`` (``what``: its name in the error) from ``ns`` until it answers.

    The bridge learns addresses on first use, so the first pings may go unanswered.
    """
    deadline = time.monotonic() + timeout
    while True:
        proc = run(ns_exec(ns, ["ping", "-c1", "-W1", address]), check=False)
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise LabError(f"{ns} cannot reach {what} {address}")
        time.sleep(0.2)
