"""Issue 9: the meter never loses or tears a row silently (real signals, pipes, /dev/full).

Every flow is either a whole CSV row or counted as not written; write errors say so; a damaged
capture has its own exit status and reports what was not read.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest

from flows.schema import FLOW_COLUMNS
from tests.capture.pcapgen import one_packet_flows, write_pcap
from tests.capture.test_robustness import expectation

SQLI = Path("cicids2017") / "WebattackSQLinj.pcap"
SYNSCAN = Path("attacks") / "synscan.pcapng"  # ~2000 flows: ~1 MB of rows, more than a pipe holds


def whole_rows(text: str) -> list[str]:
    """The data lines of a CSV (header dropped), each asserted to have every column."""
    lines = text.splitlines()
    assert lines[0].split(",") == list(FLOW_COLUMNS)
    torn = [line[:80] for line in lines[1:] if line.count(",") != len(FLOW_COLUMNS) - 1]
    assert not torn, f"{len(torn)} torn rows, e.g. {torn[:2]}"
    return lines[1:]


def test_sigterm_while_blocked_on_a_pipe_keeps_every_row_whole(meter_bin: Path, pcaps: Path,
                                                               tmp_path: Path) -> None:
    """The reader of stdout is slow: SIGTERM arrives while write() blocks; nothing is torn or lost."""
    stats = tmp_path / "stats.json"
    # unbuffered: readline() must not pull rows into a buffer communicate() would not see
    proc = subprocess.Popen([str(meter_bin), "-r", str(pcaps / SYNSCAN), "--stats-json", str(stats), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    assert proc.stdout is not None
    header = proc.stdout.readline()  # written after the signal handlers are in place
    time.sleep(1)  # the pipe (64 KiB) is full long before: the meter is blocked in write()
    proc.send_signal(signal.SIGTERM)
    time.sleep(1)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert b"write failed" not in err
    rows = whole_rows((header + out).decode())
    s = json.loads(stats.read_text())
    assert s["flows_emitted"] == len(rows) > 1000 and s["flows_unwritten"] == 0


def test_sigterm_while_reading_a_slow_stdin_is_a_normal_stop(meter_bin: Path, tmp_path: Path) -> None:
    """``-r -`` from a pipe whose writer pauses: SIGTERM stops the meter, read packets are flows."""
    capture = write_pcap(tmp_path / "in.pcap", one_packet_flows(300))
    data = capture.read_bytes()
    first = 24 + 100 * (16 + 50)  # the file header and the first 100 records (50-byte frames)
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen([str(meter_bin), "-r", "-", "--stats-json", str(stats), "-q"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    assert proc.stdin is not None
    proc.stdin.write(data[:first])
    proc.stdin.flush()
    assert proc.stdout is not None
    header = proc.stdout.readline()  # written after the signal handlers are in place
    time.sleep(1)  # the meter has read the 100 records and blocks in read()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert err == b""
    s = json.loads(stats.read_text())
    assert s["packets"] == 100 and s["input_ended_early"] is False
    assert len(whole_rows((header + out).decode())) == s["flows_emitted"] == 100


@pytest.mark.parametrize(("header", "unwritten"), [("canonical", 0), ("none", 9)])
def test_dev_full_output_is_an_error_and_every_row_is_counted(meter_bin: Path, pcaps: Path, tmp_path: Path,
                                                               header: str, unwritten: int) -> None:
    """With a header the first write fails before any packet is read; without, the 9 rows fail."""
    stats = tmp_path / "stats.json"
    proc = subprocess.run([str(meter_bin), "-r", str(pcaps / SQLI), "-o", "/dev/full", "--header", header,
                           "--stats-json", str(stats), "-q"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["flowmeter: write failed on /dev/full: No space left on device"]
    s = json.loads(stats.read_text())
    assert s["flows_emitted"] == 0 and s["flows_unwritten"] == unwritten


@pytest.mark.parametrize("where", ["/dev/full", "missing-folder/stats.json"])
def test_stats_json_write_errors_exit_1(meter_bin: Path, pcaps: Path, tmp_path: Path, where: str) -> None:
    target = where if where.startswith("/") else str(tmp_path / where)
    proc = subprocess.run([str(meter_bin), "-r", str(pcaps / SQLI), "-o", str(tmp_path / "f.csv"),
                           "--stats-json", target, "-q"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("flowmeter: ")
    assert target in proc.stderr and ("No space left" in proc.stderr or "No such file" in proc.stderr)


def test_failed_rotation_stops_with_an_error_and_counts_the_rest(meter_bin: Path, pcaps: Path,
                                                                tmp_path: Path) -> None:
    """FILE.1 cannot be created (a folder of that name): exit 1; rows after it are counted unwritten."""
    out = tmp_path / "flows.csv"
    (tmp_path / "flows.csv.1").mkdir()
    stats = tmp_path / "stats.json"
    proc = subprocess.run([str(meter_bin), "-r", str(pcaps / SYNSCAN), "-o", str(out), "--rotate-size",
                           "0.1", "--stats-json", str(stats), "-q"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"flowmeter: cannot write {out}.1: Is a directory"]
    s = json.loads(stats.read_text())
    written = whole_rows(out.read_text())
    assert s["flows_emitted"] == len(written) > 0
    assert s["flows_unwritten"] > 0
    full = json.loads(subprocess.run([str(meter_bin), "-r", str(pcaps / SYNSCAN), "-o", "/dev/null",
                                      "--stats-json", "/dev/stdout", "-q"], capture_output=True,
                                     text=True, timeout=60, check=True).stdout)
    assert s["flows_emitted"] + s["flows_unwritten"] == full["flows_emitted"]


def test_record_length_beyond_the_file_is_input_ended_early(meter_bin: Path, pcaps: Path,
                                                            tmp_path: Path) -> None:
    """A record claiming 70,000 bytes in the middle: exit 3, and the 84 records after it are counted."""
    data = bytearray((pcaps / SQLI).read_bytes())
    off = 24
    for _ in range(10):  # skip 10 records
        off += 16 + int.from_bytes(data[off + 8:off + 12], "little")
    data[off + 8:off + 16] = (70_000).to_bytes(4, "little") * 2
    damaged = tmp_path / "damaged.pcap"
    damaged.write_bytes(bytes(data))
    stats = tmp_path / "stats.json"
    proc = subprocess.run([str(meter_bin), "-r", str(damaged), "-o", str(tmp_path / "f.csv"),
                           "--stats-json", str(stats), "-q"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert proc.stderr.startswith(f"flowmeter: {damaged}: input ended early after 10 packets: ")
    s = json.loads(stats.read_text())
    assert expectation(pcaps / SQLI).frames == 94
    assert (s["packets"], s["packets_not_read"], s["input_ended_early"]) == (10, 84, True)
    assert s["bytes_not_read"] == len(data) - off
    assert len(whole_rows((tmp_path / "f.csv").read_text())) == s["flows_emitted"] > 0


def test_packets_without_memory_for_a_flow_are_counted(meter_bin: Path, tmp_path: Path) -> None:
    """Address space capped at 160 MB: the table cannot grow for 300,000 flows; the drop is counted."""
    capture = write_pcap(tmp_path / "flood.pcap", one_packet_flows(300_000))
    stats = tmp_path / "stats.json"

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (160 << 20, 160 << 20))

    proc = subprocess.run([str(meter_bin), "-r", str(capture), "-o", "/dev/null", "--stats-json", str(stats),
                           "-q"], capture_output=True, text=True, timeout=120, preexec_fn=cap_memory)
    assert proc.returncode == 0, proc.stderr
    s = json.loads(stats.read_text())
    assert s["flows_dropped_nomem"] > 0, s
    assert s["parsed"] == 300_000 == s["flows_emitted"] + s["flows_dropped_nomem"]
    assert "no memory" in proc.stderr


@pytest.mark.parametrize("mib", ["2048", "4096"])
def test_capture_buffer_beyond_an_int_is_a_usage_error(meter_bin: Path, mib: str) -> None:
    proc = subprocess.run([str(meter_bin), "-i", "lo", "-B", mib], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stderr.startswith("flowmeter: -B needs"), proc.stderr


def test_exit_statuses_are_documented(meter_bin: Path) -> None:
    """--help and the README's meter section give every exit status."""
    from pipeline.io import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme[readme.index("## Flow meter"):readme.index("## Benchmarks")]
    help_text = subprocess.run([str(meter_bin), "--help"], capture_output=True, text=True).stdout
    for text in (section, help_text):
        for status in ("0 ", "1 ", "2 ", "3 "):
            assert status + "" in text
        assert "input ended early" in text.lower() or "damaged" in text


@pytest.mark.parametrize("output", [[], ["-o", "-"]])
def test_stdout_is_the_default_output(meter_bin: Path, pcaps: Path, tmp_path: Path,
                                      output: list[str]) -> None:
    """No -o, or -o - (how the sensor runs the meter): the CSV goes to standard output."""
    proc = subprocess.run([str(meter_bin), "-r", str(pcaps / SQLI), "-q", *output], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0 and len(whole_rows(proc.stdout)) == 9
    assert list(tmp_path.iterdir()) == []  # no file named "-"


def test_stats_interval_lines_on_stderr(meter_bin: Path, tmp_path: Path) -> None:
    """--stats-interval: one JSON object per line with the --stats-json keys plus final; the last is final."""
    capture = write_pcap(tmp_path / "in.pcap", one_packet_flows(2000))
    data = capture.read_bytes()
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen([str(meter_bin), "-r", "-", "--stats-interval", "0.2",
                             "--stats-json", str(stats)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    half = 24 + 1000 * 66
    proc.stdin.write(data[:half])
    proc.stdin.flush()
    time.sleep(1.2)
    out, err = proc.communicate(input=data[half:], timeout=30)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in err.decode().splitlines()]
    final = json.loads(stats.read_text())
    assert [line["final"] for line in lines][-1] is True and not any(line["final"] for line in lines[:-1])
    assert len(lines) >= 2
    assert all(set(line) == set(final) | {"final"} for line in lines)
    assert {k: v for k, v in lines[-1].items() if k != "final"} == final
    packets = [line["packets"] for line in lines]
    assert packets == sorted(packets) and 0 < packets[0] and packets[-1] == final["flows_emitted"] == 2000
    assert len(whole_rows(out.decode())) == 2000


def test_stats_interval_needs_a_positive_number(meter_bin: Path) -> None:
    proc = subprocess.run([str(meter_bin), "-r", "x", "--stats-interval", "0"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--stats-interval needs a number > 0" in proc.stderr


def test_no_row_lost_when_the_reader_goes_away(meter_bin: Path, pcaps: Path, tmp_path: Path) -> None:
    """The reader closes the pipe: a write error (EPIPE) with a message, not a silent death by SIGPIPE."""
    stats = tmp_path / "stats.json"
    r, w = os.pipe()
    os.close(r)
    proc = subprocess.run([str(meter_bin), "-r", str(pcaps / SQLI), "--header", "none", "--stats-json",
                           str(stats), "-q"], stdout=w, stderr=subprocess.PIPE, text=True, timeout=30)
    os.close(w)
    assert proc.returncode == 1 and "Broken pipe" in proc.stderr
    s = json.loads(stats.read_text())
    assert s["flows_emitted"] == 0 and s["flows_unwritten"] == 9


def test_reads_a_fifo_whole(meter_bin: Path, tmp_path: Path) -> None:
    """``-r FIFO``: every record arrives (nothing else may read from the FIFO)."""
    capture = write_pcap(tmp_path / "in.pcap", one_packet_flows(500))
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen([str(meter_bin), "-r", str(fifo), "--stats-json", str(stats), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with fifo.open("wb") as fh:
        fh.write(capture.read_bytes())
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    s = json.loads(stats.read_text())
    assert s["packets"] == 500 and len(whole_rows(out.decode())) == s["flows_emitted"] == 500
