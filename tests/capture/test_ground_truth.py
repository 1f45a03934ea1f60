"""Ground truth: the meter's engelen profile reproduces published rows of the corrected CICIDS2017.

``WebattackSQLinj.pcap`` holds 9 real CICIDS2017 flows that are rows of the corrected release
(``engelen-sample/Web_Attack_-_SQL_Injection_13.csv``).  Every canonical column of every row must
match: exactly for counts, sizes and flags, to 1e-6 relative for means, stds and rates (the
published file rounds floats).
"""

from __future__ import annotations

import math
from pathlib import Path

from flows.schema import COLUMN_KINDS, FLOW_COLUMNS
from pipeline.layouts import read_flow_csv
from tests.capture.meter_run import run_meter

# Columns the engelen profile cannot match, with the reason.  Empty: every column matches.
UNMATCHED: dict[str, str] = {}


def test_engelen_profile_matches_the_published_rows(
    meter_bin: Path, pcaps: Path, engelen_sample: Path, tmp_path: Path
) -> None:
    published, _ = read_flow_csv(engelen_sample / "Web_Attack_-_SQL_Injection_13.csv")
    run = run_meter(
        meter_bin, pcaps / "cicids2017" / "WebattackSQLinj.pcap", tmp_path, "--profile", "engelen"
    )
    assert run.returncode == 0, run.stderr
    assert run.header == list(FLOW_COLUMNS)
    assert len(run.rows) == 9 and run.stats["flows_emitted"] == 9
    by_port = {int(row["Source Port"]): row for _, row in published.iterrows()}
    assert {r["Source Port"] for r in run.rows} <= set(by_port)  # 9 of the 13 published rows
    differences, checked = [], 0
    for row in run.rows:
        pub = by_port[row["Source Port"]]
        for column in FLOW_COLUMNS:
            if column in UNMATCHED:
                continue
            want, got = pub[column], row[column]
            if COLUMN_KINDS[column] == "str":
                same = str(want) == got
            elif COLUMN_KINDS[column] == "int":
                same = float(want) == float(got)
            else:
                same = math.isclose(float(got), float(want), rel_tol=1e-6, abs_tol=1e-6)
            checked += 1
            if not same:
                differences.append(f"port {row['Source Port']}: {column}: published {want!r}, meter {got!r}")
    assert not differences, f"{len(differences)} differences:\n" + "\n".join(differences[:40])
    assert checked == 9 * (len(FLOW_COLUMNS) - len(UNMATCHED))
