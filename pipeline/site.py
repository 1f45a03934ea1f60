"""A site's own traffic as benign training rows: the flows its sensor recorded (``data.site_dir``).

A deployment knows its network. ``netsentry serve --record-flows DIR`` (or ``classify``) keeps every
flow it judged, with the verdict, in hourly Parquet files (:mod:`flows.recorded`); the ``clean``
stage adds them to the input as ``BENIGN`` when ``data.site_dir`` is set (``+experiment=site
data.site_dir=DIR``): the site's baseline is taken as benign, minus what the sensor flagged with
confidence. A flow whose recorded verdict is an attack group with probability at least
``data.site_drop_flagged_from`` is left out (counted): an attack during the baseline must not be
learnt as benign. Lower flagged calls are kept on purpose: a model that never saw the site calls
much of it an attack with middling confidence, and those are the flows the site model must learn.
Set 0 to leave out every flagged flow.

The recorded files must be of the config's meter profile (each names it in its footer). If the
folder holds ``captures.json`` (a list of capture file names the baseline was made from, when it
was replayed from captures), ``train`` tags the model version with them (``trained_captures``) and
``benign_eval`` never counts those captures in that model's false positives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from flows.novelty import BENIGN, UNKNOWN
from flows.recorded import RecordedFlowsError, part_files, part_profile, read_recorded
from flows.schema import FLOW_COLUMNS, LABEL_COLUMN, SOURCE_COLUMN

#: verdicts that are not an attack call (the sensor's UNJUDGED, the novelty guard's UNKNOWN)
NOT_FLAGGED = (BENIGN, "UNJUDGED", UNKNOWN)
CAPTURES_FILE = "captures.json"
SOURCE = "site"


class SiteError(ValueError):
    """The site folder cannot be used (one line)."""


def site_captures(site_dir: Path) -> list[str]:
    """The capture names the baseline was replayed from (``captures.json``), if it says."""
    path = site_dir / CAPTURES_FILE
    if not path.exists():
        return []
    try:
        names = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SiteError(f"{path}: not a JSON list of capture names ({err})") from err
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SiteError(f"{path}: not a JSON list of capture names")
    return sorted(names)


def read_site(
    site_dir: Path, profile: str | None, drop_flagged_from: float
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The site's recorded flows labelled ``BENIGN`` (confident detections left out), and a report."""
    try:
        rows = read_recorded(site_dir)
    except RecordedFlowsError as err:
        raise SiteError(str(err)) from err
    profiles = sorted({part_profile(f) for f in part_files(site_dir)})
    if profile and profiles != [profile]:
        raise SiteError(
            f"{site_dir}: flows metered in profile(s) {profiles}, the config's is {profile!r} "
            "(one model serves one profile: record with a model of this profile)"
        )
    predicted = rows["predicted"].astype(str)
    flagged = ~predicted.isin(NOT_FLAGGED)
    probability = pd.to_numeric(rows["probability"], errors="coerce").fillna(1.0)
    confident = flagged & (probability >= drop_flagged_from)
    kept = rows.loc[~confident, list(FLOW_COLUMNS)].copy()
    kept[LABEL_COLUMN] = BENIGN
    kept[SOURCE_COLUMN] = SOURCE
    report = {
        "site_dir": str(site_dir),
        "files": len(part_files(site_dir)),
        "rows": int(len(rows)),
        "flagged": int(flagged.sum()),
        "left_out_flagged": int(confident.sum()),
        "drop_flagged_from": drop_flagged_from,
        "rows_as_benign": int(len(kept)),
        "flow_profile": profiles[0] if len(profiles) == 1 else profiles,
        "captures": site_captures(site_dir),
    }
    return kept.reset_index(drop=True), report
