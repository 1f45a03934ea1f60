"""libFuzzer runs of the capture harnesses, seeded with frames of the shared captures.

``fuzz_parse`` drives ``ns_parse_packet`` (one frame per input); ``fuzz_meter`` drives the whole
engine (parse, ``ns_meter_packet``, timeouts, flush) over a sequence of frames.  Both are built
with ASan + UBSan, so any memory error or undefined behaviour is a crash.  Time budget per run:
``NETSENTRY_FUZZ_SECONDS`` (default 60 for fuzz_parse; fuzz_meter gets half of it).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.io import PROJECT_ROOT

CAPTURE_DIR = PROJECT_ROOT / "capture"
# capture/ is C, not a Python package: load the corpus builder from its file.
_spec = importlib.util.spec_from_file_location("seed_corpus", CAPTURE_DIR / "fuzz" / "seed_corpus.py")
assert _spec is not None and _spec.loader is not None
seed_corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seed_corpus)
MIN_EXECUTIONS = 10_000  # far below what a minute gives even on a loaded machine


def fuzz_seconds(default: int = 60) -> int:
    """The fuzzing budget in seconds (NETSENTRY_FUZZ_SECONDS, default ``default``)."""
    raw = os.environ.get("NETSENTRY_FUZZ_SECONDS", str(default))
    if not raw.isdigit() or int(raw) < 1:
        raise pytest.UsageError(f"NETSENTRY_FUZZ_SECONDS must be a positive integer, not {raw!r}")
    return int(raw)


def build_harness(target: str, binary: Path) -> Path:
    """``make -C capture <target>``; skip if clang/libFuzzer is not available."""
    if shutil.which("make") is None or shutil.which("clang") is None:
        pytest.skip("clang or make not installed (apt-get install clang)")
    proc = subprocess.run(["make", "-s", "-C", str(CAPTURE_DIR), target], capture_output=True,
                          text=True)
    if proc.returncode != 0 and "fuzzer" in proc.stderr and "sanitize" in proc.stderr:
        pytest.skip(f"clang has no libFuzzer runtime: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, f"make {target} failed:\n{proc.stdout}\n{proc.stderr}"
    return binary


def seed_captures(pcaps: Path) -> list[Path]:
    """A sample of the shared captures covering every supported link type and odd packets."""
    picks = ["cicids2017/WebattackSQLinj.pcap", "attacks/synscan.pcapng",
             "attacks/http_espn.pcapng", "ddos/amp.dns.RRSIG.fragmented.pcap"]
    protocols = sorted((pcaps / "protocols").glob("*.pcap*"))
    return [pcaps / p for p in picks] + protocols[::3] + [
        pcaps / "protocols" / name for name in
        ("mdns.pcap", "nats.pcap", "raw.pcap", "reasm_crash_anon.pcapng", "tls-esni-fuzzed.pcap",
         "ip_fragmented_garbage.pcap", "6in6tunnel.pcap", "http_ipv6.pcap", "badpackets.pcap")]


def run_libfuzzer(binary: Path, corpus: Path, work: Path, seconds: int) -> dict[str, int]:
    """Run ``binary`` on ``corpus`` for ``seconds``; assert a clean finish; return its stats."""
    artefacts = work / "artefacts"
    artefacts.mkdir()
    proc = subprocess.run(
        ["nice", str(binary), f"-max_total_time={seconds}", "-print_final_stats=1",
         "-timeout=10", "-rss_limit_mb=2048", "-max_len=4200",
         f"-artifact_prefix={artefacts}/", str(corpus)],
        capture_output=True, text=True, timeout=seconds + 120, cwd=work)
    log = proc.stderr
    crashes = sorted(p.name for p in artefacts.iterdir())
    assert proc.returncode == 0 and not crashes, \
        f"{binary.name} exit {proc.returncode}, artefacts {crashes}:\n{log[-4000:]}"
    stats = {m[1]: int(m[2]) for m in re.finditer(r"^stat::(\w+):\s+(\d+)", log, re.M)}
    done = re.search(r"^#(\d+)\s+DONE\s+cov: (\d+)", log, re.M)
    assert done, f"no '#N DONE' line in the libFuzzer log:\n{log[-2000:]}"
    stats["done_runs"], stats["coverage"] = int(done[1]), int(done[2])
    print(f"{binary.name}: {stats}")  # shown with pytest -s; the figures for the report
    return stats


def test_fuzz_parse(pcaps: Path, tmp_path: Path) -> None:
    """ns_parse_packet under libFuzzer: no crash, and a non-trivial number of executions."""
    binary = build_harness("fuzz", CAPTURE_DIR / "build" / "fuzz_parse")
    corpus = tmp_path / "corpus"
    seeds = seed_corpus.build(corpus, seed_captures(pcaps), max_per_file=40)
    assert seeds > 500
    stats = run_libfuzzer(binary, corpus, tmp_path, fuzz_seconds())
    assert stats["number_of_executed_units"] >= MIN_EXECUTIONS
    assert stats["coverage"] > 50  # the seeds reach every link layer, IPv4/6, TCP/UDP


def test_fuzz_meter(pcaps: Path, tmp_path: Path) -> None:
    """The whole engine (parse + flow table + features + flush) under libFuzzer."""
    rule = subprocess.run(["make", "-n", "-C", str(CAPTURE_DIR), "fuzz-meter"],
                          capture_output=True, text=True)
    if "No rule to make target" in rule.stderr:
        pytest.skip("capture/Makefile has no fuzz-meter target yet")
    assert seed_corpus.harness_dlts(CAPTURE_DIR / "fuzz" / "fuzz_meter.c") == \
        seed_corpus.harness_dlts(), "fuzz_meter.c and fuzz_parse.c must list the link types alike"
    binary = build_harness("fuzz-meter", CAPTURE_DIR / "build" / "fuzz_meter")
    corpus = tmp_path / "corpus"
    seeds = seed_corpus.build(corpus, seed_captures(pcaps), meter=True, max_per_file=150)
    assert seeds > 50
    # snaplen-cut packets (wirelen > caplen) are in the corpus, not only whole frames
    assert sum(seed_corpus.cut_records(p.read_bytes()) > 0 for p in corpus.iterdir()) >= seeds // 5
    stats = run_libfuzzer(binary, corpus, tmp_path, max(1, fuzz_seconds() // 2))
    assert stats["number_of_executed_units"] >= MIN_EXECUTIONS // 10
    assert stats["coverage"] > 100
