"""Load the scenario catalogue (``lab/scenarios.yaml``) into typed records and expand placeholders."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.netns import BY_NAME, SUBNET, VICTIM, LabError

CATALOGUE = Path(__file__).resolve().parent / "scenarios.yaml"
AGENTS = Path(__file__).resolve().parent / "agents"
#: the attack groups a scenario may be labelled with (CICIDS2017's, minus the two left out)
GROUPS = ("PortScan", "Brute Force", "DoS", "DDoS", "Web Attack", "Bot")
BACKGROUND_DURATION = 3600  # background agents are stopped by the runner long before this


@dataclass(frozen=True)
class Scenario:
    """One attack scenario: a tool in one mode, run from ``hosts``, labelled ``group``."""

    name: str
    group: str
    tool: str
    mode: str
    hosts: tuple[str, ...]
    cmd: tuple[str, ...]
    timeout: float = 30
    repeat: int = 1
    label_hosts: tuple[str, ...] = ()
    label_aliases: bool = False
    label_port: int | None = None
    background: bool = False
    helper: dict[str, str] = field(default_factory=dict)

    def label_addresses(self) -> list[str]:
        """Addresses whose flows (in the scenario's time window) belong to this scenario."""
        addrs = [BY_NAME[h].address for h in self.label_hosts]
        if self.label_aliases:
            addrs += [alias_address(h) for h in self.hosts]
        return addrs


def alias_address(host: str) -> str:
    """The unused in-lab address a host may spoof (nothing answers it; ARP for it stays incomplete)."""
    return f"{SUBNET}.{200 + BY_NAME[host].octet % 50}"


def placeholders(work: Path, host: str) -> dict[str, str]:
    """Values for the ``{...}`` placeholders of a scenario command run on ``host``."""
    return {
        "victim": VICTIM.address,
        "agents": str(AGENTS),
        # the run's copy (lab.services.write_wordlists): it holds the run's login password
        "words": str(work / "words"),
        "work": str(work),
        "c2": BY_NAME["c2"].address,
        "alias": alias_address(host),
        "duration": str(BACKGROUND_DURATION),
    }


def expand(args: tuple[str, ...], values: dict[str, str]) -> list[str]:
    """Fill the placeholders of an argv."""
    return [a.format(**values) for a in args]


def _scenario(name: str, raw: dict[str, Any]) -> Scenario:
    missing = [k for k in ("group", "tool", "hosts", "cmd") if k not in raw]
    if missing:
        raise LabError(f"scenario {name}: missing {missing} in {CATALOGUE.name}")
    if raw["group"] not in GROUPS:
        raise LabError(f"scenario {name}: group {raw['group']!r} is not one of {GROUPS}")
    unknown = [h for h in [*raw["hosts"], *raw.get("label_hosts", [])] if h not in BY_NAME]
    if unknown:
        raise LabError(f"scenario {name}: unknown hosts {unknown}")
    cmd = raw["cmd"]
    return Scenario(
        name=name,
        group=raw["group"],
        tool=raw["tool"],
        mode=raw.get("mode", ""),
        hosts=tuple(raw["hosts"]),
        cmd=tuple(shlex.split(cmd) if isinstance(cmd, str) else cmd),
        timeout=float(raw.get("timeout", 30)),
        repeat=int(raw.get("repeat", 1)),
        label_hosts=tuple(raw.get("label_hosts", raw["hosts"])),
        label_aliases=bool(raw.get("label_aliases", False)),
        label_port=raw.get("label_port"),
        background=bool(raw.get("background", False)),
        helper=dict(raw.get("helper", {})),
    )


@dataclass(frozen=True)
class Catalogue:
    """Everything in ``scenarios.yaml``."""

    scenarios: dict[str, Scenario]
    sets: dict[str, list[str]]
    tools: dict[str, list[str]]
    benign: dict[str, Any]
    gap: float

    def select(self, names: list[str] | None, set_name: str | None) -> list[Scenario]:
        """The scenarios to run: by name, by set, or all (background ones always join a named set)."""
        if names:
            chosen = names
        elif set_name:
            if set_name not in self.sets:
                raise LabError(f"unknown scenario set {set_name!r}; sets: {sorted(self.sets)}")
            chosen = self.sets[set_name]
        else:
            return list(self.scenarios.values())
        unknown = [n for n in chosen if n not in self.scenarios]
        if unknown:
            raise LabError(f"unknown scenarios {unknown}; known: {', '.join(self.scenarios)}")
        return [self.scenarios[n] for n in chosen]


def load(path: Path = CATALOGUE) -> Catalogue:
    """Read and check the scenario catalogue."""
    raw = yaml.safe_load(path.read_text())
    return Catalogue(
        scenarios={name: _scenario(name, s) for name, s in raw["scenarios"].items()},
        sets={k: list(v) for k, v in raw.get("sets", {}).items()},
        tools=raw.get("tools", {}),
        benign=raw.get("benign", {}),
        gap=float(raw.get("gap", 3)),
    )
