"""The cic2017 profile reproduces the tool behind the original CSVs, quirks included.

Validation vector (flow-features.md section 9): the first row of the original Monday
MachineLearningCVE file is two 60-byte TCP ACKs from port 443 to port 54865, 3 µs apart, window
33, no reply.  Its published values show the padding counted as payload, the first packet counted
twice in the packet-length statistics, act_data_pkt_fwd skipping the first packet, subflows equal
to the totals.  The meter must print that row, every feature of it.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

from flows.schema import COLUMN_KINDS, FEATURE_COLUMNS
from pipeline.layouts import read_flow_csv
from tests.capture.meter_run import run_meter


def tcp_frame(src: str, dst: str, sport: int, dport: int, flags: int, window: int, pad: int) -> bytes:
    """Ethernet + IPv4 + 20-byte TCP header, no payload, ``pad`` bytes of Ethernet padding."""
    ip_src, ip_dst = (bytes(int(o) for o in a.split(".")) for a in (src, dst))
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 5 << 4, flags, window, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, ip_src, ip_dst)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp + b"\0" * pad


def write_pcap(path: Path, packets: list[tuple[int, bytes]]) -> None:
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for ts_us, frame in packets:
            fh.write(struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(frame), len(frame)))
            fh.write(frame)


def test_first_monday_row_feature_by_feature(meter_bin: Path, cicids_fixtures: Path, tmp_path: Path) -> None:
    published, _ = read_flow_csv(cicids_fixtures / "machinelearningcve-friday-ddos-head.csv")
    want = published.iloc[0]
    assert want["Destination Port"] == 54865 and want["Average Packet Size"] == 9
    ack = tcp_frame("192.168.10.3", "192.168.10.5", 443, 54865, 0x10, 33, pad=6)
    capture = tmp_path / "vector.pcap"
    write_pcap(capture, [(1_499_000_000_000_000, ack), (1_499_000_000_000_003, ack)])
    run = run_meter(meter_bin, capture, tmp_path, "--profile", "cic2017")
    assert run.returncode == 0, run.stderr
    assert len(run.rows) == 1
    got = run.rows[0]
    differences = []
    for column in FEATURE_COLUMNS:
        w, g = float(want[column]), float(got[column])
        same = w == g if COLUMN_KINDS[column] == "int" else math.isclose(w, g, rel_tol=1e-6, abs_tol=1e-9)
        if not same:
            differences.append(f"{column}: published {w}, meter {g}")
    assert not differences, "\n".join(differences)


def test_zero_duration_rates_and_first_fin_close(meter_bin: Path, tmp_path: Path) -> None:
    """Two packets in the same µs give Infinity rates (cic2017) and -1 (engelen); the first FIN
    closes a cic2017 flow, so the teardown after it is a separate (appendix) flow."""
    syn = tcp_frame("10.0.0.1", "10.0.0.2", 40000, 80, 0x02, 1000, pad=6)
    synack = tcp_frame("10.0.0.2", "10.0.0.1", 80, 40000, 0x12, 2000, pad=6)
    fin = tcp_frame("10.0.0.1", "10.0.0.2", 40000, 80, 0x11, 1000, pad=6)
    finack = tcp_frame("10.0.0.2", "10.0.0.1", 80, 40000, 0x11, 2000, pad=6)
    last = tcp_frame("10.0.0.1", "10.0.0.2", 40000, 80, 0x10, 1000, pad=6)
    t0 = 1_499_000_000_000_000
    capture = tmp_path / "teardown.pcap"
    write_pcap(capture, [(t0, syn), (t0, synack), (t0 + 10, fin), (t0 + 20, finack), (t0 + 30, last)])
    cic = run_meter(meter_bin, capture, tmp_path, "--profile", "cic2017")
    assert [r["Total Fwd Packets"] + r["Total Backward Packets"] for r in cic.rows] == [3, 2]
    assert cic.rows[1]["Source Port"] == 80  # the appendix starts with the server's FIN/ACK
    eng = run_meter(meter_bin, capture, tmp_path, "--profile", "engelen")
    assert len(eng.rows) == 1 and eng.rows[0]["Total Fwd Packets"] == 3
    same_us = tmp_path / "same.pcap"
    write_pcap(same_us, [(t0, syn), (t0, synack)])
    cic = run_meter(meter_bin, same_us, tmp_path, "--profile", "cic2017").rows[0]
    assert cic["Flow Bytes/s"] == math.inf and cic["Flow Packets/s"] == math.inf
    eng = run_meter(meter_bin, same_us, tmp_path, "--profile", "engelen").rows[0]
    assert eng["Flow Bytes/s"] == -1 and eng["Flow Packets/s"] == -1
