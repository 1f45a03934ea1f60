"""Run the catalogue: network up, servers, a capture on the bridge, every activity's users, teardown, flows.

Writes into the run folder: ``capture.pcap`` (the bridge: every frame between the catalogue's hosts),
``logs/`` (one per daemon and activity), ``<profile>/flows.catalogue.lab-<profile>.csv.gz`` (every
flow ``BENIGN``, ``Scenario`` = ``cat-<activity>``, ``Tool`` = its client tool; the ``.lab-<profile>``
suffix is what :mod:`pipeline.layouts` reads the profile from) and ``manifest.json`` (activities,
packages and versions, sessions and exit codes, flow counts per activity and profile).
"""

from __future__ import annotations

import ipaddress
import json
import platform
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from flows.meter_csv import read_meter_csv
from flows.schema import LABEL_COLUMN
from lab.catalogue import servers, topology
from lab.catalogue.activities import ACTIVITIES, BY_ACTIVITY
from lab.catalogue.activity import Activity, Ctx
from lab.labels import BENIGN, LAB_COLUMNS, PROFILES, SCENARIO_COLUMN, TOOL_COLUMN, meter
from lab.netns import LabError, require_root

#: flows of the catalogue's hosts that no activity explains (e.g. MLD of a host joining a group)
OTHER = "cat-other"
SCENARIO_PREFIX = "cat-"
SNAPLEN = 128  # bytes kept per frame: Ethernet + IPv6 + TCP with options
GRACE = 5.0  # seconds a session step may run past the end of the run before it is killed


class Stopped(Exception):
    """SIGTERM arrived: tear down and keep what was captured."""


def _index() -> dict[str, int]:
    # positions in the full catalogue, so an activity keeps its addresses whatever --only selects
    return {a.name: i for i, a in enumerate(ACTIVITIES)}


def select(only: list[str] | None) -> list[Activity]:
    """The activities to run (``only``: names; an unknown name is a :class:`LabError`)."""
    if not only:
        return list(ACTIVITIES)
    unknown = [n for n in only if n not in BY_ACTIVITY]
    if unknown:
        raise LabError(
            f"unknown activit{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)} "
            f"(see `python -m lab.catalogue list`)"
        )
    return [a for a in ACTIVITIES if a.name in only]


def _versions(activities: list[Activity]) -> dict[str, str]:
    pkgs = sorted({p for a in activities for p in a.debian})
    out = {}
    for p in pkgs:
        proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", p], capture_output=True, text=True)
        out[p] = proc.stdout.strip() if proc.returncode == 0 else "not installed"
    for p in sorted({p for a in activities for p in a.pypi}):
        proc = subprocess.run(
            [servers.VENV_PYTHON, "-c", f"import importlib.metadata as m; print(m.version('{p}'))"],
            capture_output=True,
            text=True,
        )
        out[f"pypi:{p}"] = proc.stdout.strip() or "not installed"
    return out


def _missing(activities: list[Activity]) -> list[str]:
    return [p for p, v in _versions(activities).items() if v == "not installed"]


class Capture:
    """tcpdump on the catalogue's bridge (immediate mode, full frames)."""

    def __init__(self, pcap: Path, log: Path) -> None:
        self.log = log
        # headers only (all the meter reads) and a big kernel buffer: full frames of the bulk transfers
        # in immediate mode made the kernel drop half the packets on 2 cores; the stop waits instead
        cmd = [
            "tcpdump",
            "-i",
            topology.BRIDGE,
            "-s",
            str(SNAPLEN),
            "-B",
            "131072",
            "-Z",
            "root",
            "-w",
            str(pcap),
        ]
        self._out = log.open("w")
        self.proc = subprocess.Popen(
            topology.exec_in("sw", cmd), stdout=subprocess.DEVNULL, stderr=self._out, start_new_session=True
        )
        deadline = time.monotonic() + 10
        while "listening on" not in log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"tcpdump did not start on {topology.BRIDGE}: {log.read_text().strip()}")
            time.sleep(0.05)

    def stop(self) -> list[str]:
        """Stop and return tcpdump's closing counts."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        self._out.close()
        return self.log.read_text().strip().splitlines()[-3:]


def _probe(proto: str, addr: str, port: int, timeout: float) -> bool:
    code = f"import socket; socket.create_connection(('{addr}', {port}), 1).close()"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            subprocess.run(
                topology.exec_in("srv", [servers.SYSTEM_PYTHON, "-c", code]), capture_output=True
            ).returncode
            == 0
        ):
            return True
        time.sleep(0.25)
    return False


def start_servers(env: servers.Env, names: list[str], logs: Path) -> dict[str, int]:
    """Set up and start each named service's daemons; wait until each is ready; return ``{daemon: pid}``."""
    for name in names:
        try:
            servers.SERVICES[name].setup(env)
        except subprocess.CalledProcessError as exc:
            raise LabError(
                f"set-up of {name} failed: {' '.join(exc.cmd)}: {str(exc.stderr).strip()[-300:]}"
            ) from exc
    pids: dict[str, int] = {}
    started: list[tuple[servers.Daemon, subprocess.Popen]] = []
    for name in names:
        for d in servers.SERVICES[name].daemons(env):
            out = (logs / f"{d.name}.log").open("w")
            proc = subprocess.Popen(
                topology.exec_in(d.host, d.argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            pids[d.name] = proc.pid
            started.append((d, proc))
            # a service's later daemons need its earlier ones (the BitTorrent seeder announces to the
            # tracker at once, and a refused first announce left it unknown to leechers for minutes)
            if d.ready:
                _probe(*d.ready, timeout=20)
    time.sleep(1.0)
    for d, proc in started:
        if proc.poll() is not None or (d.ready and not _probe(*d.ready, timeout=20)):
            tail = (logs / f"{d.name}.log").read_text()[-500:].strip()
            raise LabError(f"catalogue server {d.name} did not start (status {proc.poll()}): {tail}")
        for cmd in d.after:
            proc2 = subprocess.run(topology.exec_in(d.host, cmd), capture_output=True, text=True)
            if proc2.returncode != 0:
                raise LabError(f"{d.name} set-up step {cmd[-1][:60]!r} failed: {proc2.stderr.strip()[-300:]}")
    return pids


class User(threading.Thread):
    """One user of one activity: sessions with think times until the end of the run (seeded RNG)."""

    def __init__(self, activity: Activity, ctx: Ctx, seed: int, end: float, log: Path, stop: threading.Event):
        super().__init__(daemon=True)
        self.activity, self.ctx, self.end, self.log, self.stop = activity, ctx, end, log, stop
        self.rng = random.Random(seed)
        self.sessions = 0
        self.steps = 0
        self.codes: dict[str, int] = {}
        self.first_argv: list[list[str]] = []

    def _step(self, client: str, argv: list[str]) -> int:
        limit = max(1.0, min(self.activity.step_timeout, self.end + GRACE - time.monotonic()))
        with self.log.open("a") as out:
            out.write(f"$ [{client}] {' '.join(argv)}\n")
            out.flush()
            proc = subprocess.Popen(
                topology.exec_in(client, ["timeout", "-k", "2", f"{limit:.0f}", *argv]),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            return proc.wait()

    def run(self) -> None:
        # a random start, so users do not all begin at once
        self.stop.wait(self.rng.uniform(0, min(self.activity.think[1], 5)))
        while not self.stop.is_set() and time.monotonic() < self.end:
            client = self.rng.choice(self.activity.clients)
            steps = self.activity.session(self.ctx, self.rng, client)
            if len(self.first_argv) < 2:
                self.first_argv.append([" ".join(s) for s in steps][:3])
            self.sessions += 1
            for argv in steps:
                if self.stop.is_set() or time.monotonic() > self.end:
                    break
                code = self._step(client, argv)
                self.steps += 1
                self.codes[str(code)] = self.codes.get(str(code), 0) + 1
            self.stop.wait(self.rng.uniform(*self.activity.think))


def _normal(addr: str) -> str:
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr


def attribute(flows: pd.DataFrame, activities: list[Activity]) -> pd.DataFrame:
    """Label every flow BENIGN with its activity: by the activity's server addresses, then its extra rules."""
    index = _index()
    owner: dict[str, str] = {}
    for a in activities:
        owner[topology.alias(index[a.name])] = a.name
        owner[_normal(topology.alias6(index[a.name]))] = a.name
    src = flows["Source IP"].astype(str).map(_normal)
    dst = flows["Destination IP"].astype(str).map(_normal)
    sport = flows["Source Port"].fillna(-1).astype(int)
    dport = flows["Destination Port"].fillna(-1).astype(int)
    proto = flows["Protocol"].fillna(-1).astype(int)
    name = src.map(owner).fillna(dst.map(owner))
    for a in activities:
        for m in a.extra:
            hit = name.isna()
            if m.addresses:
                addrs = {_normal(x) for x in m.addresses}
                hit &= src.isin(addrs) | dst.isin(addrs)
            if m.ports:
                hit &= sport.isin(m.ports) | dport.isin(m.ports)
            if m.protocol is not None:
                hit &= proto == m.protocol
            name = name.mask(hit, a.name)
    tools = {a.name: a.tool for a in activities}
    out = flows.copy()
    out[LABEL_COLUMN] = BENIGN
    out[SCENARIO_COLUMN] = name.map(lambda n: SCENARIO_PREFIX + n if isinstance(n, str) else OTHER)
    out[TOOL_COLUMN] = name.map(lambda n: tools.get(n, "none") if isinstance(n, str) else "none")
    return out[list(LAB_COLUMNS)]


def flows_file(folder: Path, profile: str, name: str = "catalogue") -> Path:
    """Where a catalogue run's flows of one profile go (the ``.lab-<profile>`` suffix names the profile)."""
    return folder / profile / f"flows.{name}.lab-{profile}.csv.gz"


def meter_and_label(run_dir: Path, activities: list[Activity]) -> dict[str, Any]:
    """Meter the run's capture in every profile, attribute the flows, write the CSVs; return counts."""
    counts: dict[str, Any] = {}
    for profile in PROFILES:
        raw = run_dir / f"flows-{profile}.csv"
        meter(run_dir / "capture.pcap", profile, raw)
        df = attribute(read_meter_csv(raw), activities)
        path = flows_file(run_dir, profile)
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False, compression={"method": "gzip", "mtime": 0})
        raw.unlink()
        counts[profile] = {
            "rows": len(df),
            "by_scenario": {
                str(k): int(v) for k, v in df[SCENARIO_COLUMN].value_counts().sort_index().items()
            },
            "bytes": path.stat().st_size,
        }
    return counts


def relabel(run_dir: Path) -> dict[str, Any]:
    """Meter and attribute a finished run's capture again (new meter or rules); update its manifest."""
    path = run_dir / "manifest.json"
    if not path.is_file() or not (run_dir / "capture.pcap").is_file():
        raise LabError(f"{run_dir}: not a catalogue run folder (manifest.json and capture.pcap needed)")
    manifest = json.loads(path.read_text())
    activities = select(list(manifest.get("activities", {})))
    manifest["flows"] = meter_and_label(run_dir, activities)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Stopped()


def run_catalogue(
    out: Path, seed: int, duration: float, only: list[str] | None = None, log=print
) -> dict[str, Any]:
    """Run the selected activities for ``duration`` seconds; write the run folder; return the manifest."""
    require_root()
    activities = select(only)
    missing = _missing(activities)
    if missing:
        raise LabError(f"missing packages: {' '.join(missing)} (run scripts/bootstrap.sh test)")
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    if logs.exists():
        shutil.rmtree(logs)
    logs.mkdir()
    work = Path(tempfile.mkdtemp(prefix="nscat-"))
    work.chmod(0o755)
    (work / "logs").mkdir()
    index = _index()
    env = servers.Env(work, {a.name: index[a.name] for a in activities})
    names = list(dict.fromkeys(["unbound", *(s for a in activities for s in a.services)]))
    manifest: dict[str, Any] = {
        "kind": "benign catalogue",
        "seed": seed,
        "duration": duration,
        "machine": {"kernel": platform.release(), "python_agents": servers.SYSTEM_PYTHON},
        "hosts": {h.name: h.address or "dhcp" for h in topology.HOSTS},
        "versions": _versions(activities),
        "services": names,
        "activities": {},
    }
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    stop = threading.Event()
    users: list[User] = []
    client_procs: list[subprocess.Popen] = []
    t0 = time.monotonic()
    try:
        topology.up(len(ACTIVITIES), resolver=topology.alias(index["dns-udp"]))
        if (
            "radvd" in names
        ):  # a router advertises only with forwarding on (it still routes nothing: no routes)
            subprocess.run(
                topology.exec_in("srv", ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]), check=True
            )
        servers.setup_common(env)
        capture = Capture(out / "capture.pcap", logs / "tcpdump.log")
        manifest["capture_start"] = time.time()
        manifest["daemon_pids"] = start_servers(env, names, logs)
        for a in activities:
            for host, argv in a.client_daemons(Ctx(work, index[a.name])):
                client_procs.append(
                    subprocess.Popen(
                        topology.exec_in(host, argv),
                        stdout=(logs / f"{a.name}-daemon.log").open("w"),
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
        log(
            f"catalogue: {len(activities)} activities, servers up ({time.monotonic() - t0:.1f} s); "
            f"running {duration:.0f} s"
        )
        end = time.monotonic() + duration
        for a in activities:
            for u in range(a.users):
                users.append(
                    User(
                        a,
                        Ctx(work, index[a.name]),
                        seed * 100_003 + index[a.name] * 101 + u,
                        end,
                        logs / f"{a.name}.log",
                        stop,
                    )
                )
        for u in users:
            u.start()
        expected = {h.ns for h in topology.HOSTS} | {topology.SWITCH}
        while time.monotonic() < end:
            time.sleep(1.0)
            gone = expected - set(topology.our_namespaces())
            if gone:  # something else deleted them: every later session would fail, the flows would lie
                raise LabError(f"catalogue namespaces vanished mid-run: {', '.join(sorted(gone))}")
        stop.set()
        for u in users:
            u.join(timeout=GRACE + 5)
        for p in client_procs:
            p.terminate()
        time.sleep(3.0)  # the last FINs, and tcpdump's buffer (not in immediate mode) written out
        manifest["capture_end"] = time.time()
        manifest["tcpdump"] = capture.stop()
    except Stopped:
        stop.set()
        manifest["interrupted"] = True
        log("catalogue: SIGTERM, tearing down")
    finally:
        stop.set()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the teardown short
        topology.down()
        shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
    for a in activities:
        mine = [u for u in users if u.activity is a]
        codes: dict[str, int] = {}
        for u in mine:
            for k, v in u.codes.items():
                codes[k] = codes.get(k, 0) + v
        manifest["activities"][a.name] = {
            "scenario": SCENARIO_PREFIX + a.name,
            "tool": a.tool,
            "debian": list(a.debian),
            "pypi": list(a.pypi),
            "services": list(a.services),
            "address": topology.alias(index[a.name]),
            "address6": topology.alias6(index[a.name]),
            "users": a.users,
            "sessions": sum(u.sessions for u in mine),
            "steps": sum(u.steps for u in mine),
            "exit_codes": codes,
            "argv_examples": [x for u in mine for x in u.first_argv][:2],
        }
    if manifest.get("interrupted"):
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        raise Stopped()
    manifest["flows"] = meter_and_label(out, activities)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(
        f"catalogue: done in {time.monotonic() - t0:.0f} s; "
        f"{manifest['flows']['clean']['rows']:,} flows (clean)"
    )
    return manifest
