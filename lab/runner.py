"""Run a lab session: testbed up, victim capture, benign users, the scenarios one after the other, teardown.

Writes into the run folder (a private folder, :mod:`lab.workdir`): ``capture.pcap`` (victim eth0, full
packets), ``manifest.json`` (hosts, tool versions, every scenario's argv, hosts, label addresses and
time window, benign counts, and ``status``: complete, interrupted by a signal, or failed) and
per-process logs.  Labelling from the manifest is :mod:`lab.labels`.

The testbed is torn down however the run ends: SIGTERM, SIGINT and SIGHUP stop it like an error
(:class:`Interrupted`), and a testbed that vanishes under the run (a ``lab down`` from elsewhere, the
capture dying) fails it, so a truncated capture is never labelled as a good run.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lab import netns, services, workdir
from lab.netns import BY_NAME, HOSTS, NAMESPACES, VICTIM, Interrupted, LabError, exec_in
from lab.scenarios import Catalogue, Scenario, expand, placeholders

KILL_GRACE = 3  # seconds a timed-out tool gets between SIGTERM and SIGKILL
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
WATCH_EVERY = 0.5  # seconds between two checks that the testbed is still there during a wait


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within the block a stop signal raises :class:`Interrupted` (once: the clean-up is not interrupted)."""

    def handler(signum: int, _frame: object) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise Interrupted(signum)

    before = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


def tool_versions(catalogue: Catalogue, scenarios: list[Scenario]) -> dict[str, str]:
    """First line of each used tool's version output (run in the root ns; no network involved)."""
    versions = {}
    for tool in sorted({s.tool for s in scenarios}):
        cmd = catalogue.tools.get(tool)
        if not cmd:
            versions[tool] = "unknown"
            continue
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        versions[tool] = lines[0] if lines else "unknown"
    return versions


class Capture:
    """tcpdump on the victim's eth0 (immediate mode: nothing is lost when it stops right after traffic)."""

    def __init__(self, pcap: Path, log: Path) -> None:
        self.pcap = pcap
        self._log = os.fdopen(workdir.create(log), "w+")
        cmd = ["tcpdump", "-i", "eth0", "-s", "0", "--immediate-mode", "-Z", "root", "-w", str(pcap)]
        self.proc = subprocess.Popen(exec_in(VICTIM, cmd), stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + 10
        while "listening on" not in log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"tcpdump did not start on the victim: {log.read_text().strip()}")
            time.sleep(0.05)

    def stop(self) -> str:
        """Stop the capture and return tcpdump's packet counts."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        self._log.close()
        return self._log.name


def check_testbed(capture: Capture) -> None:
    """Raise :class:`LabError` if the testbed went away under the run (namespaces gone, capture dead)."""
    missing = sorted(set(NAMESPACES) - set(netns.our_namespaces()))
    if missing or capture.proc.poll() is not None:
        raise LabError(
            "the testbed vanished during the run (a `lab down` elsewhere?): "
            + (
                f"namespaces {', '.join(missing)} gone"
                if missing
                else f"capture exited {capture.proc.returncode}"
            )
        )


def _wait(seconds: float, capture: Capture) -> None:
    """Sleep ``seconds``, checking the testbed every :data:`WATCH_EVERY` seconds."""
    end = time.monotonic() + seconds
    while True:
        check_testbed(capture)
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(WATCH_EVERY, left))


def _start(host: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    # tools drop state files in their working folder (hydra.restore): keep them beside the logs
    with workdir.open_append(log) as out:
        return subprocess.Popen(
            exec_in(host, argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=log.parent,
            env=env,
        )


def _stop(proc: subprocess.Popen) -> int:
    """Stop a background process (SIGTERM, then SIGKILL) and return its exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def run_scenario(s: Scenario, work: Path, max_time: float | None) -> dict[str, Any]:
    """Run one (foreground) scenario from all its hosts at once, ``repeat`` times; return its record."""
    limit = min(s.timeout, max_time) if max_time else s.timeout
    argvs = {h: expand(s.cmd, placeholders(work, h)) for h in s.hosts}
    log = work / "logs" / f"{s.name}.log"
    start = time.time()
    codes = []
    for _ in range(s.repeat):
        procs = [
            _start(h, ["timeout", "-k", str(KILL_GRACE), str(limit), *argv], log) for h, argv in argvs.items()
        ]
        codes += [p.wait() for p in procs]
    end = time.time()
    return _record(s, argvs, start, end, codes, limit)


def _record(
    s: Scenario, argvs: dict[str, list[str]], start: float, end: float, codes: list[int], limit: float
) -> dict[str, Any]:
    return {
        "name": s.name,
        "group": s.group,
        "tool": s.tool,
        "mode": s.mode,
        "hosts": {h: BY_NAME[h].address for h in s.hosts},
        "argv": argvs,
        "timeout": limit,
        "repeat": s.repeat,
        "label_addresses": s.label_addresses(),
        "label_port": s.label_port,
        "background": s.background,
        "start": start,
        "end": end,
        # 124 = stopped by its time cap (expected for time-bounded brute force and floods)
        "exit_codes": codes,
    }


def run_session(
    catalogue: Catalogue,
    scenarios: list[Scenario],
    out: Path,
    max_time: float | None = None,
    warmup: float | None = None,
    cooldown: float | None = None,
    seed: int = 1,
    log=print,
) -> dict[str, Any]:
    """Build the lab, run ``scenarios`` with benign traffic, capture, tear down; return the manifest.

    The manifest is written however the run ends; a signal raises :class:`Interrupted` and a vanished
    testbed :class:`LabError`, both after the teardown.
    """
    netns.require_root()
    services.check_account()
    out = workdir.private_dir(out, mode=workdir.RUN_MODE)
    workdir.subdir(out, "logs")
    workdir.subdir(out, "home")
    benign_cfg = catalogue.benign
    manifest: dict[str, Any] = {
        "hosts": {h.name: h.address for h in HOSTS},
        "victim": VICTIM.address,
        "benign_clients": {c: BY_NAME[c].address for c in benign_cfg.get("clients", ["cli1"])},
        "machine": {"kernel": platform.release(), "python_agents": "/usr/bin/python3"},
        "tool_versions": {},
        "scenarios": [],
        "seed": seed,
        "status": "failed",
    }
    t0 = time.monotonic()
    with stop_signals_raise():
        try:
            _session(catalogue, scenarios, out, manifest, max_time, warmup, cooldown, log)
            manifest["status"] = "complete"
        except Interrupted as err:
            manifest["status"] = str(err)
            raise Interrupted(
                err.signum, f"{err}: testbed removed, {out / 'manifest.json'} says so"
            ) from None
        except Exception as err:
            manifest["status"] = f"failed: {err}"
            raise
        finally:
            services.teardown()
            manifest["end"] = time.time()
            workdir.write(out / "manifest.json", json.dumps(manifest, indent=2) + "\n", 0o644)
    log(
        f"lab: run finished in {time.monotonic() - t0:.0f} s; {out / 'capture.pcap'}, {out / 'manifest.json'}"
    )
    return manifest


def _session(
    catalogue: Catalogue,
    scenarios: list[Scenario],
    out: Path,
    manifest: dict[str, Any],
    max_time: float | None,
    warmup: float | None,
    cooldown: float | None,
    log,
) -> None:
    """The run itself (testbed up to capture stopped), filling ``manifest``; the caller tears down."""
    benign_cfg = catalogue.benign
    warmup = benign_cfg.get("warmup", 20) if warmup is None else warmup
    cooldown = benign_cfg.get("cooldown", 10) if cooldown is None else cooldown
    background = [s for s in scenarios if s.background]
    foreground = [s for s in scenarios if not s.background]
    t0 = time.monotonic()
    manifest["tool_versions"] = tool_versions(catalogue, scenarios)
    netns.up()
    victim = services.start(out)
    manifest["service_pids"] = victim.pids
    capture = Capture(out / "capture.pcap", out / "logs" / "tcpdump.log")
    manifest["capture_start"] = time.time()
    log(f"lab: testbed and services up, capture running ({time.monotonic() - t0:.1f} s)")
    helpers = [
        _start(
            s.helper["host"],
            expand(tuple(s.helper["cmd"].split()), placeholders(out, s.helper["host"])),
            out / "logs" / f"{s.name}-helper.log",
        )
        for s in background
        if s.helper
    ]
    time.sleep(0.5)
    # the password goes in the environment: command lines are readable by every local user
    benign_env = {**os.environ, "LAB_PASSWORD": victim.password}
    users = [
        _start(
            c,
            [
                services.SYSTEM_PYTHON,
                str(services.AGENTS / "benign.py"),
                VICTIM.address,
                str(1e6),
                str(manifest["seed"] * 100 + i),
                services.LAB_USER,
            ],
            out / "logs" / f"benign-{c}.log",
            benign_env,
        )
        for i, c in enumerate(manifest["benign_clients"])
    ]
    bg_start = time.time()
    bg = [(s, {h: expand(s.cmd, placeholders(out, h)) for h in s.hosts}) for s in background]
    bg_procs = [
        [_start(h, argv, out / "logs" / f"{s.name}.log") for h, argv in argvs.items()] for s, argvs in bg
    ]
    _wait(warmup, capture)
    for s in foreground:
        log(f"lab: {s.name} ({s.group}: {s.tool} {s.mode}) from {', '.join(s.hosts)}")
        manifest["scenarios"].append(run_scenario(s, out, max_time))
        _wait(catalogue.gap, capture)
    _wait(cooldown, capture)
    for (s, argvs), procs in zip(bg, bg_procs, strict=True):
        manifest["scenarios"].append(_record(s, argvs, bg_start, time.time(), [_stop(p) for p in procs], 0))
    for p in users + helpers:
        _stop(p)
    _wait(1, capture)  # last FINs/ACKs of the stopped agents into the capture
    manifest["benign_counts"] = {
        c: (out / "logs" / f"benign-{c}.log").read_text().strip()[-300:] for c in manifest["benign_clients"]
    }
    manifest["capture_end"] = time.time()
    capture.stop()
    manifest["tcpdump"] = (out / "logs" / "tcpdump.log").read_text().strip().splitlines()[-3:]
