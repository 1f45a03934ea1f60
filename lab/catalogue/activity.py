"""What an activity of the benign catalogue is: its server side, its client sessions, how its flows are found.

An :class:`Activity` names the Debian/PyPI packages it needs, the shared services it uses (started
once in the server namespace, :mod:`lab.catalogue.servers`), and a ``session`` function that, given a
seeded RNG, returns the commands one user session runs in a client namespace.  Every activity gets
its own server addresses (:func:`lab.catalogue.topology.alias`): a flow to or from them is that
activity's; flows that never touch a server address (multicast, DHCP broadcasts, neighbour
discovery, a peer-to-peer transfer) are found by the activity's extra :class:`Match` rules.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab.catalogue import topology

#: the catalogue's user on every service that has a login, and the password they mean to type
USER, PASSWORD = "catuser", "Summer-2024"
#: how often a login starts with a mistyped password (a failed login is benign too)
TYPO_RATE = 0.08


@dataclass(frozen=True)
class Ctx:
    """Where an activity runs: the work folder (configs, files) and its own server addresses."""

    work: Path
    index: int

    @property
    def addr(self) -> str:
        """This activity's server IPv4 address."""
        return topology.alias(self.index)

    @property
    def addr6(self) -> str:
        """This activity's server IPv6 address."""
        return topology.alias6(self.index)

    def client_dir(self, client: str, name: str) -> Path:
        """A scratch folder of one client host for this activity (downloads, clones)."""
        path = self.work / "clients" / client / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass(frozen=True)
class Match:
    """Extra attribution rule: an address at either end, a port at either end, a protocol (those given)."""

    addresses: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    protocol: int | None = None


#: a session: the argv of each step, run one after the other in the chosen client namespace
Session = Callable[[Ctx, random.Random, str], list[list[str]]]


@dataclass(frozen=True)
class Activity:
    """One kind of everyday traffic (module docstring)."""

    name: str
    #: the client tool(s), the ``Tool`` column of its flows
    tool: str
    debian: tuple[str, ...]
    services: tuple[str, ...]
    session: Session
    #: (IP protocol, server port) a run must show at least one flow of (the test checks it)
    expect: tuple[int, int | None]
    clients: tuple[str, ...] = ("cli1", "cli2", "cli3")
    #: seconds between two sessions of one user (uniform between the two)
    think: tuple[float, float] = (3.0, 12.0)
    #: longest a session step may take (it is killed after that: `timeout`)
    step_timeout: float = 60.0
    extra: tuple[Match, ...] = ()
    pypi: tuple[str, ...] = ()
    #: concurrent users (each its own thread and RNG)
    users: int = 1
    notes: str = ""
    #: long-running client processes (host, argv) started once beside the servers
    client_daemons: Callable[[Ctx], list[tuple[str, list[str]]]] = field(default=lambda ctx: [])


def password(rng: random.Random) -> tuple[str, bool]:
    """The password a user types: now and then with a typo first (returns it and whether it is wrong)."""
    if rng.random() < TYPO_RATE:
        typo = rng.choice([PASSWORD.lower(), PASSWORD[:-1], PASSWORD + "4", PASSWORD.replace("-", "")])
        return typo, True
    return PASSWORD, False


def logins(rng: random.Random) -> list[str]:
    """The passwords of one login: a mistyped one, then the right one, or just the right one."""
    typed, wrong = password(rng)
    return [typed, PASSWORD] if wrong else [PASSWORD]


def sh(script: str) -> list[str]:
    """A step written as a shell snippet."""
    return ["sh", "-c", script]
