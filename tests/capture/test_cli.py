"""The meter's command line: header styles (one schema with the training code), errors, rotation."""

from __future__ import annotations

import csv
import struct
import subprocess
from pathlib import Path

import pcapy
import pytest

from flows.schema import FLOW_COLUMNS
from tests.capture.meter_run import run_meter

SQLI = Path("cicids2017") / "WebattackSQLinj.pcap"


def meter(binary: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=60)


def test_canonical_header_is_the_training_schema(meter_bin: Path, pcaps: Path) -> None:
    proc = meter(meter_bin, "-r", str(pcaps / SQLI), "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split(",") == list(FLOW_COLUMNS)


def test_cic2017_header_is_the_original_one(meter_bin: Path, pcaps: Path, cicids_fixtures: Path) -> None:
    with (cicids_fixtures / "trafficlabelling-friday-ddos-head.csv").open(newline="") as fh:
        original = next(csv.reader(fh))[:-1]  # without " Label"
    proc = meter(meter_bin, "-r", str(pcaps / SQLI), "-q", "--header", "cic2017")
    lines = proc.stdout.splitlines()
    assert lines[0].split(",") == original and len(original) == 84
    assert all(line.count(",") == 83 for line in lines[1:]) and len(lines) == 10
    # the duplicated Fwd Header Length column repeats the first one
    first, dup = [i for i, n in enumerate(original) if n.strip() == "Fwd Header Length"]
    assert all(row[first] == row[dup] for row in csv.reader(lines[1:]))
    canonical = meter(meter_bin, "-r", str(pcaps / SQLI), "-q").stdout.splitlines()
    none = meter(meter_bin, "-r", str(pcaps / SQLI), "-q", "--header", "none").stdout.splitlines()
    assert none == canonical[1:] and len(none) == 9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give -r FILE or -i IFACE"),
        (["-r", "x.pcap", "-i", "lo"], "not both"),
        (["-r", "x.pcap", "--profile", "nfstream"], "unknown --profile 'nfstream'"),
        (["-r", "x.pcap", "--flow-timeout", "soon"], "--flow-timeout needs a number"),
        (["-r", "x.pcap", "--max-flows", "-3"], "--max-flows needs a positive whole number"),
        (["-r", "x.pcap", "--rotate-size", "5"], "need -o FILE"),
        (["-r", "x.pcap", "--bogus"], "unknown option '--bogus'"),
        (["-r"], "option -r needs a value"),
    ],
)
def test_usage_errors_exit_2_with_one_clear_line(meter_bin: Path, args: list[str], message: str) -> None:
    proc = meter(meter_bin, *args)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0].startswith("flowmeter: ") and message in proc.stderr
    assert "try 'flowmeter --help'" in proc.stderr


def test_help_documents_every_option(meter_bin: Path) -> None:
    proc = meter(meter_bin, "--help")
    assert proc.returncode == 0
    for option in (
        "-r FILE",
        "-i IFACE",
        "-f EXPR",
        "-s SNAPLEN",
        "-p ",
        "-B MIB",
        "--profile",
        "--header",
        "-o FILE",
        "--rotate-size",
        "--rotate-time",
        "--flow-timeout",
        "--activity-timeout",
        "--max-flows",
        "--stats-json",
        "--stats-interval SEC",
        "-q ",
        "--version",
    ):
        assert option in proc.stdout, option


def test_rotation_by_size_loses_no_row(meter_bin: Path, pcaps: Path, tmp_path: Path) -> None:
    capture = pcaps / "attacks" / "synscan.pcapng"
    whole = run_meter(meter_bin, capture, tmp_path)
    assert whole.returncode == 0 and len(whole.rows) > 1000
    out = tmp_path / "rot" / "flows.csv"
    out.parent.mkdir()
    proc = meter(meter_bin, "-r", str(capture), "-o", str(out), "--rotate-size", "0.2", "-q")
    assert proc.returncode == 0, proc.stderr
    files = sorted(out.parent.iterdir())
    assert len(files) >= 2 and files[0].name == "flows.csv" and files[1].name == "flows.csv.1"
    rows = []
    for f in files:
        lines = f.read_text().splitlines()
        assert lines[0].split(",") == list(FLOW_COLUMNS) and f.stat().st_size <= 200_000
        rows += lines[1:]
    assert len(rows) == len(whole.rows)


def test_eviction_at_the_flow_cap_is_counted_not_lost(meter_bin: Path, pcaps: Path, tmp_path: Path) -> None:
    capture = pcaps / "attacks" / "synscan.pcapng"
    free = run_meter(meter_bin, capture, tmp_path)
    capped = run_meter(meter_bin, capture, tmp_path, "--max-flows", "100")
    assert capped.returncode == 0
    assert capped.stats["max_active_flows"] == 100 < free.stats["max_active_flows"]
    assert capped.stats["flows_evicted"] > 0 and len(capped.rows) == capped.stats["flows_emitted"]
    # an evicted flow is written early, so no packet is lost
    total = sum(r["Total Fwd Packets"] + r["Total Backward Packets"] for r in capped.rows)
    assert total == capped.stats["parsed"] == free.stats["parsed"]


def _ethertype_counts(capture: Path) -> tuple[int, int]:
    """(frames, frames that are neither IPv4 nor IPv6) of an Ethernet capture, read by libpcap."""
    reader = pcapy.open_offline(str(capture))
    assert reader.datalink() == pcapy.DLT_EN10MB
    frames = not_ip = 0
    while True:
        header, data = reader.next()
        if header is None:
            return frames, not_ip
        frames += 1
        not_ip += struct.unpack("!H", data[12:14])[0] not in (0x0800, 0x86DD)


def test_stats_json_counts_every_frame(meter_bin: Path, pcaps: Path, tmp_path: Path) -> None:
    capture = pcaps / "attacks" / "arppoison.pcapng"
    run = run_meter(meter_bin, capture, tmp_path)
    s = run.stats
    frames, not_ip = _ethertype_counts(capture)  # counted independently of the meter
    assert not_ip > 0
    assert (s["packets"], s["skipped"]["not_ip"], s["skipped_total"]) == (frames, not_ip, not_ip)
    assert s["parsed"] == frames - not_ip
    # every parsed packet is in exactly one written flow
    assert sum(r["Total Fwd Packets"] + r["Total Backward Packets"] for r in run.rows) == s["parsed"]
    assert s["flows_emitted"] == len(run.rows)
    assert set(s) >= {
        "packets",
        "parsed",
        "skipped",
        "skipped_total",
        "flows_emitted",
        "flows_evicted",
        "max_active_flows",
        "bytes_per_flow",
        "kernel_drops",
        "profile",
        "link_type",
    }
    assert s["profile"] == "clean" and s["link_type"] == 1 and s["kernel_drops"] == 0
