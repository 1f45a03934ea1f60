"""The C meter against an independent Python reference (``reference_meter.py``), flow by flow.

Both read the same shared captures; flows are matched by 5-tuple (in the flow's direction) + start
time, and every feature the reference computes must agree: exactly for integer columns, to 1e-6
relative for float columns.  The reference itself is checked against published CICIDS2017 rows
(the corrected release by Engelen et al.) for the SQL-injection capture.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pcapy
import pytest

from flows.schema import COLUMN_KINDS, FLOW_COLUMNS
from tests.capture.meter_run import flow_key, run_meter
from tests.capture.pcapgen import record, tcp_frame, udp_frame, write_pcap
from tests.capture.reference_meter import ReferenceMeter, read_capture, run_reference

REL_TOL = 1e-6
ABS_TOL = 1e-6  # values are µs or bytes: anything below this is rounding noise around 0

# Captures (relative to pcaps/) and why each is here.
CLEAN_CAPTURES = [
    "cicids2017/WebattackSQLinj.pcap",  # real CICIDS2017 web attack, FIN teardowns, 5 s idles
    "attacks/http_dvwa_sqlinjection.pcapng",  # pcapng
    "attacks/http_dvwa_sqlinjection_passwords.pcapng",
    "attacks/http_dvwa_directorytraversal.pcapng",
    "attacks/http_espn.pcapng",  # browsing: many parallel TCP flows
    "attacks/synscan.pcapng",  # ~2000 SYN/RST flows
    "attacks/arppoison.pcapng",  # non-IP frames to skip
    "ddos/amp.TCP.reflection.SYNACK.pcap",  # flows opened by SYN+ACK: direction swapped
    "ddos/amp.UDP.isakmp.pcap",  # UDP flood
    "protocols/dns_ambiguous_names.pcap",  # UDP DNS
    "protocols/dns_fragmented.pcap",  # IP fragments skipped; long gaps (timeouts)
    "protocols/dnscrypt-v1-and-resolver-pings.pcap",  # UDP + ICMP, 70 min: timeouts
    "protocols/googledns_android10.pcap",  # 255 s: active/idle timeouts
    "protocols/tor.pcap",  # 10 min of TCP, retransmissions
    "protocols/http_ipv6.pcap",  # IPv6
    "protocols/6in4tunnel.pcap",  # IPv6 in IPv4 (outer header is the flow)
    "protocols/mdns.pcap",  # Linux cooked capture (SLL)
    "protocols/nats.pcap",  # BSD loopback (DLT_NULL)
    "protocols/raw.pcap",  # raw IP
    "protocols/ftp.pcap",  # control + data connections
]

# The engelen profile shares the clean semantics of these columns (the others differ by design:
# subflow counting, Init_Win without a window, zero-duration rate sentinels).
ENGELEN_SAME = [c for c in FLOW_COLUMNS if not c.startswith(("Subflow", "Init_Win"))]
ENGELEN_CAPTURES = [
    "cicids2017/WebattackSQLinj.pcap",
    "attacks/http_dvwa_sqlinjection.pcapng",
    "attacks/http_dvwa_directorytraversal.pcapng",
    "attacks/synscan.pcapng",
]

# Canonical name -> name in the corrected CICIDS2017 CSVs, where they differ.
_ENGELEN_NAMES = {
    "Source IP": "Src IP", "Source Port": "Src Port", "Destination IP": "Dst IP",
    "Destination Port": "Dst Port", "Total Fwd Packets": "Total Fwd Packet",
    "Total Backward Packets": "Total Bwd packets",
    "Total Length of Fwd Packets": "Total Length of Fwd Packet",
    "Total Length of Bwd Packets": "Total Length of Bwd Packet",
    "Min Packet Length": "Packet Length Min", "Max Packet Length": "Packet Length Max",
    "CWE Flag Count": "CWR Flag Count", "Avg Fwd Segment Size": "Fwd Segment Size Avg",
    "Avg Bwd Segment Size": "Bwd Segment Size Avg", "Init_Win_bytes_forward": "FWD Init Win Bytes",
    "act_data_pkt_fwd": "Fwd Act Data Pkts", "min_seg_size_forward": "Fwd Seg Size Min",
}
# Engelen's rows differ from the clean reference by design in these: subflows count gaps only,
# the backward window is the last one seen (the data predate the first-window fix).
_ENGELEN_DIFFERENT = ("Subflow", "Init_Win_bytes_backward")


def reference_rows(capture: Path, profile: str, bpf: str | None = None,
                   **settings: float) -> ReferenceMeter:
    """Meter ``capture`` with the Python reference (optionally behind a BPF filter)."""
    return run_reference(str(capture), profile, bpf, **settings)


def _same(column: str, expected: object, got: object) -> bool:
    if COLUMN_KINDS[column] == "float" or isinstance(expected, float):
        return math.isclose(float(got), float(expected), rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return expected == got


def compare(expected: list[dict[str, object]], got: list[dict[str, object]],
            columns: list[str] | tuple[str, ...]) -> list[str]:
    """Every difference between two flow lists (missing/extra flows, differing values)."""
    problems: list[str] = []
    want = {flow_key(r): r for r in expected}
    have = {flow_key(r): r for r in got}
    assert len(want) == len(expected), "reference produced two flows with the same key"
    if len(have) != len(got):
        problems.append(f"meter emitted {len(got) - len(have)} duplicate flow keys")
    problems += [f"missing flow {k}" for k in sorted(want.keys() - have.keys(), key=str)]
    problems += [f"unexpected flow {k}" for k in sorted(have.keys() - want.keys(), key=str)]
    for k in sorted(want.keys() & have.keys(), key=str):
        ref, row = want[k], have[k]
        for column in columns:
            if column in ref and not _same(column, ref[column], row[column]):
                problems.append(f"{k}: {column}: reference {ref[column]!r}, meter {row[column]!r}")
    return problems


def _report(problems: list[str], limit: int = 25) -> str:
    more = f"\n... and {len(problems) - limit} more" if len(problems) > limit else ""
    return "\n".join(problems[:limit]) + more


@pytest.mark.parametrize("capture", CLEAN_CAPTURES)
def test_clean_profile_matches_reference(meter_bin: Path, pcaps: Path, tmp_path: Path,
                                         capture: str) -> None:
    """clean profile, default timeouts: same flows, same values as the reference."""
    path = pcaps / capture
    run = run_meter(meter_bin, path, tmp_path, "--profile", "clean")
    assert run.returncode == 0, run.stderr
    assert run.header == list(FLOW_COLUMNS)
    ref = reference_rows(path, "clean")
    assert run.stats["packets"] == ref.packets
    assert run.stats["parsed"] == ref.parsed, run.stats["skipped"]
    assert run.stats["flows_emitted"] == len(run.rows)
    problems = compare(ref.rows, run.rows, FLOW_COLUMNS)
    assert not problems, f"{capture}: {len(problems)} differences\n{_report(problems)}"


SYN, RST, PSH, ACK, URG = 0x02, 0x04, 0x08, 0x10, 0x20


def one_packet_variants(start_us: int) -> list[bytes]:
    """Runs of one-packet TCP/UDP flows where each flow differs from the one before in one thing
    only: direction (a SYN+ACK opens a flow backward), flags, window, header length, payload,
    Ethernet padding, protocol; then some of the same 5-tuples get a second packet (the meter keeps
    a one-packet flow's packet aside and writes its features from it; the second packet must find
    the first one's effects in place)."""
    server, frames = 0x0AC80001, []
    variants = [dict(flags=SYN), dict(flags=SYN | ACK), dict(flags=SYN), dict(flags=SYN, window=512),
                dict(flags=SYN, options=12), dict(flags=SYN | PSH, payload=10),
                dict(flags=SYN | PSH, payload=10, padding=6), dict(flags=RST), dict(flags=ACK | URG),
                dict(flags=SYN | ACK, window=0), dict(flags=SYN | ACK, window=0)]
    port = 2000
    for _repeat in range(3):
        for v in variants:
            port += 1
            frames.append((port, tcp_frame(0x0A000001, server, port, 80, **v)))
        port += 1
        frames.append((port, udp_frame(0x0A000001, server, port, 53)))
    records = [record(start_us + i * 1000, f) for i, (_, f) in enumerate(frames)]
    # a second packet, 2 s later, for every third flow: the server's answer
    later = start_us + 2_000_000
    for i, (p, _) in enumerate(frames[::3]):
        records.append(record(later + i * 1000, tcp_frame(server, 0x0A000001, 80, p, ACK, payload=5)))
    # A backward one-packet flow next to a forward one with the very same packet: a conversation
    # outlives the flow timeout (120 s), so the server's next packet starts a successor flow in
    # the conversation's direction, where it is backward; a new client flow then sends the same
    # bytes forward.
    t0 = start_us + 10_000_000
    records += [record(t0 + s * 1_000_000, tcp_frame(0x0A000001, server, 3000, 80, ACK, payload=5))
                for s in (0, 60, 119)]
    records.append(record(t0 + 121_000_000, tcp_frame(server, 0x0A000001, 80, 3000, ACK, payload=5)))
    records.append(record(t0 + 121_001_000, tcp_frame(0x0A000001, server, 3001, 80, ACK, payload=5)))
    return records


@pytest.mark.parametrize("profile", ["clean", "engelen"])
def test_one_packet_flows_in_a_row_match_reference(meter_bin: Path, tmp_path: Path, profile: str) -> None:
    """One-packet flows that differ from their neighbour in a single attribute, then second packets."""
    path = write_pcap(tmp_path / "variants.pcap", one_packet_variants(1_500_000_000_000_000))
    tcp_only = profile == "engelen"  # the reference's engelen profile covers TCP
    run = run_meter(meter_bin, path, tmp_path, "--profile", profile, *(["-f", "tcp"] if tcp_only else []))
    assert run.returncode == 0, run.stderr
    ref = reference_rows(path, profile, "tcp" if tcp_only else None)
    assert len(run.rows) == len(ref.rows) >= (36 if tcp_only else 39)
    problems = compare(ref.rows, run.rows, ENGELEN_SAME if tcp_only else FLOW_COLUMNS)
    assert not problems, f"{len(problems)} differences\n{_report(problems)}"


@pytest.mark.parametrize("capture", ["protocols/tor.pcap", "protocols/googledns_android10.pcap"])
def test_short_timeouts_match_reference(meter_bin: Path, pcaps: Path, tmp_path: Path,
                                        capture: str) -> None:
    """Non-default flow/activity timeouts (fractional seconds) split flows the same way."""
    path = pcaps / capture
    run = run_meter(meter_bin, path, tmp_path, "--profile", "clean", "--flow-timeout", "7.5",
                    "--activity-timeout", "0.5")
    assert run.returncode == 0, run.stderr
    ref = reference_rows(path, "clean", flow_timeout_s=7.5, activity_timeout_s=0.5)
    assert len(ref.rows) > 20  # the timeouts really split flows here
    problems = compare(ref.rows, run.rows, FLOW_COLUMNS)
    assert not problems, f"{capture}: {len(problems)} differences\n{_report(problems)}"


@pytest.mark.parametrize("capture", ENGELEN_CAPTURES)
def test_engelen_profile_matches_reference(meter_bin: Path, pcaps: Path, tmp_path: Path,
                                           capture: str) -> None:
    """engelen profile on TCP: the columns it shares with clean agree with the reference."""
    path = pcaps / capture
    run = run_meter(meter_bin, path, tmp_path, "--profile", "engelen", "-f", "tcp")
    assert run.returncode == 0, run.stderr
    ref = reference_rows(path, "engelen", "tcp")
    assert run.stats["parsed"] == ref.parsed
    problems = compare(ref.rows, run.rows, ENGELEN_SAME)
    assert not problems, f"{capture}: {len(problems)} differences\n{_report(problems)}"


def test_reference_reproduces_published_rows(pcaps: Path, engelen_sample: Path) -> None:
    """The oracle itself: the 9 SQL-injection flows are rows of the corrected CICIDS2017."""
    published = pd.read_csv(engelen_sample / "Web_Attack_-_SQL_Injection_13.csv")
    ref = reference_rows(pcaps / "cicids2017" / "WebattackSQLinj.pcap", "engelen")
    assert len(ref.rows) == 9
    by_port = {int(r["Src Port"]): r for _, r in published.iterrows()}
    checked = 0
    for row in ref.rows:
        pub = by_port[row["Source Port"]]
        for column, value in row.items():
            if column.startswith(_ENGELEN_DIFFERENT):
                continue
            pub_value = pub[_ENGELEN_NAMES.get(column, column)]
            if isinstance(value, str):
                assert value == pub_value, (row["Flow ID"], column)
            else:  # the published file rounds floats to 6 decimals
                assert math.isclose(value, float(pub_value), rel_tol=1e-6, abs_tol=1e-6), \
                    (row["Flow ID"], column, value, pub_value)
            checked += 1
    assert checked == 9 * (len(ref.rows[0]) - 5)


def test_parsed_frames_match_reference_on_every_capture(meter_bin: Path, pcaps: Path,
                                                        tmp_path: Path) -> None:
    """Over the whole corpus the meter uses exactly the frames the reference decodes."""
    differences = []
    checked = 0
    for path in sorted(p for p in pcaps.rglob("*") if p.is_file()):
        try:  # the NFStream CSVs (named *.pcap) are not captures
            frames = list(read_capture(str(path)))
        except pcapy.PcapError:
            continue
        run = run_meter(meter_bin, path, tmp_path, "--header", "none")
        if run.returncode != 0:  # unsupported link types: test_robustness checks the message
            continue
        parsed = sum(p is not None for _n, p in frames)
        if (run.stats["packets"], run.stats["parsed"]) != (len(frames), parsed):
            differences.append(f"{path.relative_to(pcaps)}: meter packets/parsed "
                               f"{run.stats['packets']}/{run.stats['parsed']}, reference "
                               f"{len(frames)}/{parsed}, meter skipped {run.stats['skipped']}")
        checked += 1
    assert checked >= 220
    assert not differences, "\n".join(differences)
