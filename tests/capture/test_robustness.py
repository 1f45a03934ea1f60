"""Every shared capture through the sanitizer build, a representative subset through valgrind.

A capture must be read without crash, sanitizer report, leak or hang; frames the meter cannot use
are counted, never dropped silently (``packets == parsed + skipped_total``), and every flow counted
is a CSV row.  Files that are not captures (the NFStream CSVs) and link types the parser does not
handle end with exit 1 and a one-line ``flowmeter:`` message.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pcapy
import pytest

from flows.schema import FLOW_COLUMNS
from tests.capture.reference_meter import SUPPORTED_DLTS

SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:", "SUMMARY:")
RUN_TIMEOUT_S = 60  # a capture of the shared corpus takes well under a second: this is a hang


@dataclass
class Expectation:
    """What the capture is, according to libpcap (read independently with pcapy)."""

    frames: int | None  # None: libpcap cannot open it
    dlt: int | None


def expectation(path: Path) -> Expectation:
    """Open ``path`` with pcapy-ng and count its frames (None if it is not a capture)."""
    try:
        reader = pcapy.open_offline(str(path))
    except pcapy.PcapError:
        return Expectation(None, None)
    frames = 0
    try:
        while reader.next()[0] is not None:
            frames += 1
    except pcapy.PcapError:  # truncated last record: libpcap stops there
        pass
    return Expectation(frames, reader.datalink())


def run(binary: Path, args: list[str], out_dir: Path, env: dict[str, str] | None = None,
        wrapper: list[str] | None = None, stdin: bytes | None = None
        ) -> subprocess.CompletedProcess[str]:
    """Run the meter writing flows.csv/stats.json into out_dir."""
    full_env = {**os.environ, **SANITIZER_ENV, **(env or {})}
    cmd = [*(wrapper or []), str(binary), *args, "-o", str(out_dir / "flows.csv"),
           "--stats-json", str(out_dir / "stats.json"), "-q"]
    return subprocess.run(cmd, capture_output=True, timeout=RUN_TIMEOUT_S, env=full_env,
                          input=stdin, text=stdin is None)


def check_capture_run(path: Path, proc: subprocess.CompletedProcess, out_dir: Path,
                      exp: Expectation) -> list[str]:
    """Problems with one meter run on a capture file (empty list when all is well)."""
    stderr = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
    name = str(path)
    if any(mark in stderr for mark in SANITIZER_MARKS):
        return [f"{name}: sanitizer report (exit {proc.returncode}):\n{stderr[-3000:]}"]
    if exp.frames is None or exp.dlt not in SUPPORTED_DLTS:
        # Not a capture, or a link type the parser does not handle: a clear error is expected;
        # reading an unsupported link type and counting every frame as skipped is also fine.
        if proc.returncode == 1 and stderr.startswith("flowmeter:") and len(stderr) < 500:
            return []
        if proc.returncode == 0 and exp.frames is not None:
            stats = json.loads((out_dir / "stats.json").read_text())
            if stats["skipped"].get("unsupported_dlt") == stats["packets"] == exp.frames:
                return []
        return [f"{name}: expected exit 1 with a 'flowmeter:' message (dlt {exp.dlt}), "
                f"got exit {proc.returncode}, stderr {stderr[:300]!r}"]
    if proc.returncode != 0:
        return [f"{name}: exit {proc.returncode}: {stderr[:500]}"]
    problems = []
    stats = json.loads((out_dir / "stats.json").read_text())
    skipped = stats["skipped"]
    if stats["packets"] != exp.frames:
        problems.append(f"{name}: packets {stats['packets']} but libpcap reads {exp.frames} frames")
    if stats["packets"] != stats["parsed"] + stats["skipped_total"]:
        problems.append(f"{name}: packets {stats['packets']} != parsed {stats['parsed']} + "
                        f"skipped_total {stats['skipped_total']}")
    if sum(skipped.values()) != stats["skipped_total"]:
        problems.append(f"{name}: skipped {skipped} does not add up to {stats['skipped_total']}")
    lines = (out_dir / "flows.csv").read_text().splitlines()
    if not lines or lines[0].split(",") != list(FLOW_COLUMNS):
        problems.append(f"{name}: CSV header is not the canonical FLOW_COLUMNS")
    if len(lines) - 1 != stats["flows_emitted"]:
        problems.append(f"{name}: {len(lines) - 1} CSV rows but flows_emitted "
                        f"{stats['flows_emitted']}")
    bad = [i for i, line in enumerate(lines[1:], 2) if line.count(",") != len(FLOW_COLUMNS) - 1]
    if bad:
        problems.append(f"{name}: CSV lines {bad[:5]} do not have {len(FLOW_COLUMNS)} fields")
    if stats["flows_emitted"] == 0 and stats["parsed"] > 0:
        problems.append(f"{name}: {stats['parsed']} packets parsed but no flow emitted")
    return problems


def all_files(pcaps: Path) -> list[Path]:
    """Every file of the shared capture folder (captures and the NFStream CSVs)."""
    return sorted(p for p in pcaps.rglob("*") if p.is_file())


def test_every_shared_file_under_sanitizers(meter_asan_bin: Path, pcaps: Path,
                                            tmp_path: Path) -> None:
    """All 450+ files: no sanitizer report, exit 0 with consistent stats, or a clean rejection."""
    files = all_files(pcaps)
    expected = {p: expectation(p) for p in files}
    n_captures = sum(e.frames is not None for e in expected.values())
    assert n_captures >= 220 and len(files) - n_captures >= 200  # the NFStream CSVs

    def one(item: tuple[int, Path]) -> list[str]:
        i, path = item
        out_dir = tmp_path / str(i)
        out_dir.mkdir()
        try:
            proc = run(meter_asan_bin, ["-r", str(path)], out_dir)
        except subprocess.TimeoutExpired:
            return [f"{path}: no exit after {RUN_TIMEOUT_S} s (hang?)"]
        return check_capture_run(path.relative_to(pcaps), proc, out_dir, expected[path])

    with ThreadPoolExecutor(max_workers=2) as pool:
        problems = [p for result in pool.map(one, enumerate(files)) for p in result]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:30])


def _frames(path: Path) -> list[bytes]:
    """The frames libpcap reads from ``path`` before it stops."""
    reader, frames = pcapy.open_offline(str(path)), []
    try:
        while (item := reader.next())[0] is not None:
            frames.append(item[1])
    except pcapy.PcapError:
        pass
    return frames


def _pcap_header(dlt: int = 1) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, dlt)


def _records(pcaps: Path) -> bytes:
    """A small real capture's bytes (pcap, Ethernet)."""
    return (pcaps / "cicids2017" / "WebattackSQLinj.pcap").read_bytes()


@pytest.mark.parametrize("case", ["empty", "header-only", "truncated-record", "truncated-header",
                                  "directory", "missing", "garbage", "huge-caplen"])
def test_damaged_inputs(meter_asan_bin: Path, pcaps: Path, tmp_path: Path, case: str) -> None:
    """Damaged or wrong inputs: no crash, a clear message; no silent loss of read frames."""
    real = _records(pcaps)
    target = tmp_path / "input.pcap"
    if case == "empty":
        target.write_bytes(b"")
    elif case == "header-only":
        target.write_bytes(_pcap_header())
    elif case == "truncated-record":
        target.write_bytes(real[: len(real) - 37])  # last record cut in its data
    elif case == "truncated-header":
        target.write_bytes(real[:24 + 16 + 60 + 7])  # second record header cut
    elif case == "directory":
        target = tmp_path
    elif case == "missing":
        target = tmp_path / "does-not-exist.pcap"
    elif case == "garbage":
        target.write_bytes(bytes(range(256)) * 64)
    elif case == "huge-caplen":  # a record claiming 4 GB of data
        target.write_bytes(_pcap_header() + struct.pack("<IIII", 1, 0, 0xFFFFFFF0, 0xFFFFFFF0)
                           + b"\0" * 64)
    out = tmp_path / "out"
    out.mkdir()
    proc = run(meter_asan_bin, ["-r", str(target)], out)
    assert not any(m in proc.stderr for m in SANITIZER_MARKS), proc.stderr
    if case == "header-only":
        assert proc.returncode == 0, proc.stderr
        stats = json.loads((out / "stats.json").read_text())
        assert stats["packets"] == 0 and stats["flows_emitted"] == 0
        assert (out / "flows.csv").read_text().splitlines() == [",".join(FLOW_COLUMNS)]
    elif case.startswith("truncated") or case == "huge-caplen":
        # Frames before the damage are metered and written; the damage is reported with its own
        # exit status (3) and in the statistics.
        assert proc.returncode == 3, proc.stderr
        assert proc.stderr.startswith("flowmeter:") and "input ended early" in proc.stderr, proc.stderr
        stats = json.loads((out / "stats.json").read_text())
        assert stats["packets"] == expectation(target).frames
        assert stats["input_ended_early"] is True and stats["packets_not_read"] == 1
        assert stats["bytes_not_read"] == target.stat().st_size - 24 - sum(
            16 + len(frame) for frame in _frames(target))
        assert len((out / "flows.csv").read_text().splitlines()) == stats["flows_emitted"] + 1
    else:
        assert proc.returncode == 1, (proc.returncode, proc.stderr)
        assert proc.stderr.startswith("flowmeter:") and "Traceback" not in proc.stderr
        assert len(proc.stderr.splitlines()) <= 3, proc.stderr


def test_reads_stdin(meter_asan_bin: Path, pcaps: Path, tmp_path: Path) -> None:
    """``-r -`` reads the capture from standard input (a pipe), with the same result."""
    capture = pcaps / "attacks" / "http_dvwa_sqlinjection.pcapng"
    proc = run(meter_asan_bin, ["-r", "-"], tmp_path, stdin=capture.read_bytes())
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["packets"] == expectation(capture).frames
    assert stats["flows_emitted"] == len((tmp_path / "flows.csv").read_text().splitlines()) - 1 > 0


# One capture per link type present in the corpus, plus the hard cases; run under valgrind.
VALGRIND_SUBSET = [
    "attacks/synscan.pcapng",  # Ethernet, pcapng, ~2000 flows
    "protocols/mdns.pcap",  # Linux cooked (SLL)
    "protocols/reasm_crash_anon.pcapng",  # SLL in pcapng, reassembly crash reproducer
    "protocols/nats.pcap",  # DLT_NULL
    "protocols/raw.pcap",  # raw IP
    "protocols/dlt_ppp.pcap",  # PPP: unsupported link type
    "protocols/BGP_redist.pcap",  # Cisco HDLC: unsupported link type
    "protocols/ip_fragmented_garbage.pcap",  # fragments
    "protocols/dns_fragmented.pcap",
    "protocols/tls-esni-fuzzed.pcap",  # fuzzed TLS
    "protocols/fuzz-2021-06-07-c6c72a0a56.pcap",
    "protocols/malformed_icmp.pcap",
    "protocols/badpackets.pcap",
    "protocols/6in6tunnel.pcap",
    "protocols/tor.pcap",  # 10 min, timeouts: flows expire while others are open
    "protocols/nfstream-expected/tor.pcap",  # a CSV: rejected
]


def test_valgrind_subset(meter_bin: Path, pcaps: Path, tmp_path: Path) -> None:
    """The optimised build under memcheck: no invalid access, no definite/indirect leak."""
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed (apt-get install valgrind)")
    wrapper = ["valgrind", "--error-exitcode=99", "--leak-check=full",
               "--errors-for-leak-kinds=definite,indirect", "-q"]

    def one(item: tuple[int, str]) -> list[str]:
        i, rel = item
        path = pcaps / rel
        out_dir = tmp_path / str(i)
        out_dir.mkdir()
        proc = run(meter_bin, ["-r", str(path)], out_dir, wrapper=wrapper)
        if proc.returncode == 99 or "==" in proc.stderr and "Invalid" in proc.stderr:
            return [f"{rel}: valgrind errors:\n{proc.stderr[-3000:]}"]
        # valgrind -q prints nothing else; the meter's own rules are checked as in ASan runs.
        return check_capture_run(Path(rel), proc, out_dir, expectation(path))

    with ThreadPoolExecutor(max_workers=2) as pool:
        problems = [p for result in pool.map(one, enumerate(VALGRIND_SUBSET)) for p in result]
    assert not problems, "\n".join(problems)
