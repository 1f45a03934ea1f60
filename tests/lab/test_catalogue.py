"""The benign catalogue (root only): every activity's real client and server make flows of the expected kind.

One short run of all activities in the catalogue's own namespaces (about a minute), then: each activity
has at least one flow with its protocol and server port, every flow is BENIGN, the manifest's counts
equal the CSVs', the pipeline reads the files as lab files of their profile, and nothing is left behind.
Also the command line's one-line errors and a SIGTERM in the middle of a run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from lab.catalogue import run as catalogue_run
from lab.catalogue import topology
from lab.catalogue.activities import ACTIVITIES
from lab.labels import PROFILES
from pipeline.layouts import read_flow_csv
from tests.lab.labtools import lab_processes

ROOT = Path(__file__).resolve().parents[2]
needs_catalogue = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "tcpdump", "nginx", "unbound", "chronyd")),
    reason="needs root and the catalogue's packages (scripts/bootstrap.sh test)",
)
pytestmark = [pytest.mark.slow]
#: sessions longer than the test's run: stopped by their time cap (124) is how they end here
LONG_SESSIONS = {"keepalive", "websocket", "voip"}
#: dig asks mDNS at 224.0.0.251 and the answers come by unicast from the responders' own addresses: dig
#: does not take them for the reply, times out and exits 9, though the exchange on the wire is complete
NEVER_ZERO = {"mdns"}


def catalogue(*args: str, **kw) -> subprocess.CompletedProcess:
    """``python -m lab.catalogue ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "lab.catalogue", *args], capture_output=True, text=True, cwd=ROOT, **kw
    )


def leftovers(marker: str) -> list[str]:
    """Live processes that mention the catalogue's subnet or ``marker``."""
    return lab_processes(marker, subnet=f"{topology.SUBNET}.")


def start_run(out: Path, only: str, duration: int) -> subprocess.Popen:
    """Start a catalogue run in the background; return once its first session has begun."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab.catalogue",
            "run",
            "--out",
            str(out),
            "--seed",
            "1",
            "--duration",
            str(duration),
            "--only",
            only,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first_session = out / "logs" / f"{only.split(',')[0]}.log"
    deadline = time.monotonic() + 60
    while not first_session.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the catalogue did not start"
        time.sleep(0.3)
    return proc


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("catalogue")
    proc = catalogue("run", "--out", str(out), "--seed", "7", "--duration", "40", timeout=400)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@needs_catalogue
def test_every_activity_makes_flows_of_its_protocol_and_port(run: Path) -> None:
    df = pd.read_csv(catalogue_run.flows_file(run, "clean"), low_memory=False)
    assert set(df["Label"]) == {"BENIGN"}
    missing = []
    for a in ACTIVITIES:
        mine = df[df["Scenario"] == f"cat-{a.name}"]
        proto, port = a.expect
        hit = mine["Protocol"] == proto
        if port is not None:
            hit &= (mine["Destination Port"] == port) | (mine["Source Port"] == port)
        if not hit.any():
            missing.append(f"{a.name}: {len(mine)} flows, none proto {proto} port {port}")
        assert (mine["Tool"] == a.tool).all()
    assert not missing, missing


@needs_catalogue
def test_manifest_counts_match_the_csvs_and_the_pipeline_reads_them(run: Path) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    assert set(manifest["activities"]) == {a.name for a in ACTIVITIES}
    for profile in PROFILES:
        path = catalogue_run.flows_file(run, profile)
        assert path.name == f"flows.catalogue.lab-{profile}.csv.gz"
        df = pd.read_csv(path, low_memory=False)
        counts = {str(k): int(v) for k, v in df["Scenario"].value_counts().items()}
        assert counts == manifest["flows"][profile]["by_scenario"]
        assert len(df) == manifest["flows"][profile]["rows"] > 0
        flows, layout = read_flow_csv(path)
        assert layout.name == f"lab-{profile}" and layout.flow_profile == profile
        assert len(flows) == len(df)
    # the two profiles hold the same conversations (same meter, same capture)
    assert manifest["flows"]["clean"]["by_scenario"] == manifest["flows"]["engelen"]["by_scenario"]
    # a capture that dropped packets would make wrong flows
    assert any(line.startswith("0 packets dropped by kernel") for line in manifest["tcpdump"])
    for a in ACTIVITIES:
        record = manifest["activities"][a.name]
        assert record["sessions"] >= 1, a.name
        assert record["address"] == topology.alias(ACTIVITIES.index(a))


@needs_catalogue
def test_every_client_succeeds_at_least_once(run: Path) -> None:
    """Flows alone do not show that a client worked (a refused SMTP dialogue still makes a flow)."""
    activities = json.loads((run / "manifest.json").read_text())["activities"]
    failed = {}
    for name, record in activities.items():
        ok = {"0"} | ({"124"} if name in LONG_SESSIONS else set())
        if name not in NEVER_ZERO and not ok & set(record["exit_codes"]):
            failed[name] = record["exit_codes"]
    assert not failed, failed


@needs_catalogue
def test_nothing_is_left_behind(run: Path) -> None:
    assert topology.our_namespaces() == []
    assert not list(Path("/etc/netns").glob(f"{topology.PREFIX}*"))
    assert leftovers("nscat-") == []
    assert not list(Path(tempfile.gettempdir()).glob("nscat-*"))


@needs_catalogue
def test_sigterm_tears_down(tmp_path: Path) -> None:
    proc = start_run(tmp_path, "icmp-ping,dns-udp", 120)
    time.sleep(2)
    assert topology.our_namespaces()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "SIGTERM" in err.strip().splitlines()[-1]
    assert topology.our_namespaces() == []
    assert leftovers(str(tmp_path)) == []
    assert json.loads((tmp_path / "manifest.json").read_text())["interrupted"] is True


def test_list_names_every_activity() -> None:
    proc = catalogue("list")
    assert proc.returncode == 0
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert names == [a.name for a in ACTIVITIES]
    assert len(names) >= 25


def test_user_mistakes_are_one_line(tmp_path: Path) -> None:
    proc = catalogue("run", "--out", str(tmp_path), "--seed", "1", "--duration", "0")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    if os.geteuid() == 0:
        nobody = subprocess.run(
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                sys.executable,
                "-m",
                "lab.catalogue",
                "run",
                "--out",
                str(tmp_path / "x"),
                "--seed",
                "1",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert nobody.returncode == 2 and "root" in nobody.stderr, nobody.stderr
        assert len(nobody.stderr.strip().splitlines()) == 1
        proc = catalogue("run", "--out", str(tmp_path), "--seed", "1", "--only", "nosuch")
        assert proc.returncode == 2 and "nosuch" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert topology.our_namespaces() == []


@needs_catalogue
def test_label_again_gives_the_same_flows_and_few_unexplained(run: Path, tmp_path: Path) -> None:
    before = {p: catalogue_run.flows_file(run, p).read_bytes() for p in PROFILES}
    proc = catalogue("label", str(run), "--dataset", str(tmp_path), "--name", "again")
    assert proc.returncode == 0, proc.stderr
    for profile in PROFILES:
        assert catalogue_run.flows_file(run, profile).read_bytes() == before[profile]
        assert catalogue_run.flows_file(tmp_path, profile, "again").read_bytes() == before[profile]
    assert (tmp_path / "again.json").is_file()
    df = pd.read_csv(catalogue_run.flows_file(run, "clean"), low_memory=False)
    other = int((df["Scenario"] == catalogue_run.OTHER).sum())
    assert other <= 0.02 * len(df), df[df["Scenario"] == catalogue_run.OTHER].head(20)


@needs_catalogue
def test_namespaces_deleted_by_something_else_stop_the_run(tmp_path: Path) -> None:
    """Flows of a run whose hosts vanished would be mostly failed sessions: the run says so instead."""
    proc = start_run(tmp_path, "icmp-ping", 90)
    for pid in subprocess.run(
        ["ip", "netns", "pids", "nsCatcli3"], capture_output=True, text=True
    ).stdout.split():
        os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", "nsCatcli3"], check=True)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert err.strip().splitlines() == ["catalogue: catalogue namespaces vanished mid-run: nsCatcli3"]
    assert topology.our_namespaces() == []
    assert not (tmp_path / "clean").exists()
