"""The catalogue's own network: namespaces ``nsCat*``, a bridge in ``nsCatsw``, 10.98.0.0/24, fd00:98::/64.

Separate from the attack lab (:mod:`lab.netns`, ``nsL*`` on 10.99.7.0/24): other names, another
subnet, and :func:`down` only ever touches its own exact names (:data:`NAMESPACES`), never every name
with :data:`PREFIX`, so a foreign ``nsCat...`` namespace is left alone.  No namespace has a default
route (IPv4 or IPv6), so nothing can leave; only multicast gets a route, on the lab link itself.
IPv6 stays on here (unlike the attack lab): neighbour discovery, router adverts and MLD are part of
what a real network carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.netns import (
    existing,
    make_bridge,
    ns_exec,
    plug,
    remove_namespaces,
    remove_resolver,
    run,
    wait_reachable,
)

PREFIX = "nsCat"
SUBNET = "10.98.0"
SUBNET6 = "fd00:98:"
SWITCH = f"{PREFIX}sw"
BRIDGE = f"{PREFIX}br0"
#: first host octet of the per-activity server addresses (activity i gets ALIAS_BASE + i)
ALIAS_BASE = 100


@dataclass(frozen=True)
class Host:
    """A catalogue host: namespace ``PREFIX + name`` and its static addresses (None: set by DHCP)."""

    name: str
    octet: int | None

    @property
    def ns(self) -> str:
        """The network namespace name."""
        return PREFIX + self.name

    @property
    def address(self) -> str:
        """The IPv4 address (the DHCP client has none of its own)."""
        return f"{SUBNET}.{self.octet}" if self.octet else ""

    @property
    def address6(self) -> str:
        """The IPv6 ULA address."""
        return f"{SUBNET6}:{self.octet}" if self.octet else ""


#: the server (every daemon), three users' machines, a BitTorrent peer, a DHCP-configured laptop
HOSTS: tuple[Host, ...] = (
    Host("srv", 10),
    Host("cli1", 31),
    Host("cli2", 32),
    Host("cli3", 33),
    Host("peer", 40),
    Host("dhc", None),
)
BY_NAME = {h.name: h for h in HOSTS}
#: every namespace the catalogue makes, and the only ones it ever kills processes in or deletes
NAMESPACES: tuple[str, ...] = (SWITCH, *(h.ns for h in HOSTS))
SERVER = BY_NAME["srv"]
#: hosts whose resolver (``/etc/netns/<ns>/resolv.conf``) is the catalogue's DNS server
RESOLVER_CLIENTS = ("cli1", "cli2", "cli3")


def alias(index: int) -> str:
    """The server's IPv4 address dedicated to activity ``index`` (flows to it are that activity's)."""
    return f"{SUBNET}.{ALIAS_BASE + index}"


def alias6(index: int) -> str:
    """The server's IPv6 address dedicated to activity ``index``."""
    return f"{SUBNET6}:{ALIAS_BASE + index:x}"


def exec_in(host: Host | str, cmd: list[str]) -> list[str]:
    """The argv that runs ``cmd`` inside a catalogue host's namespace."""
    return ns_exec(host.ns if isinstance(host, Host) else PREFIX + host, cmd)


def our_namespaces() -> list[str]:
    """The catalogue's namespaces that exist now (exact names: a foreign ``nsCat...`` is not ours)."""
    return existing(NAMESPACES)


def down() -> list[str]:
    """Kill what runs in the catalogue's namespaces, delete them and their resolver files; idempotent."""
    deleted = remove_namespaces(NAMESPACES)
    for host in HOSTS:
        remove_resolver(Path("/etc/netns") / host.ns)
    return deleted


def _sysctl(ns: str, *settings: str) -> None:
    run(ns_exec(ns, ["sysctl", "-qw", *settings]))


def up(n_aliases: int, resolver: str) -> None:
    """Build the network from scratch: switch, hosts, ``n_aliases`` server addresses per family."""
    down()
    run(["ip", "netns", "add", SWITCH])
    _sysctl(SWITCH, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    make_bridge(SWITCH, BRIDGE, "mcast_snooping", "0")
    for host in HOSTS:
        ns = host.ns
        run(["ip", "netns", "add", ns])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        _sysctl(ns, "net.ipv6.conf.all.forwarding=0", "net.ipv4.icmp_ratelimit=0")
        plug(SWITCH, BRIDGE, f"{PREFIX}-{host.name}", ns, check=True)
        if host.octet:
            run(["ip", "-n", ns, "addr", "add", f"{host.address}/24", "dev", "eth0"])
            run(["ip", "-n", ns, "addr", "add", f"{host.address6}/64", "dev", "eth0", "nodad"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        # multicast (mDNS, LLMNR, SSDP-like groups, BitTorrent local peer discovery) stays on the link
        run(["ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0"])
        if host.name in RESOLVER_CLIENTS:
            folder = Path("/etc/netns") / ns
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "resolv.conf").write_text(f"nameserver {resolver}\nsearch cat.test\n")
    for i in range(n_aliases):
        run(["ip", "-n", SERVER.ns, "addr", "add", f"{alias(i)}/24", "dev", "eth0"])
        run(["ip", "-n", SERVER.ns, "addr", "add", f"{alias6(i)}/64", "dev", "eth0", "nodad"])
    for host in HOSTS:
        if host.octet and host is not SERVER:
            wait_reachable(host.ns, SERVER.address, "the catalogue server")
