"""Stage ``group``: map the attack labels onto BENIGN + the 8 attack groups.

The mapping is config (``conf/labels/``, composed into ``labels.mapping``): the 15 original
CICIDS2017 labels and the corrected release's 16 map onto BENIGN, DDoS, DoS, PortScan,
Brute Force, Bot, Web Attack, Infiltration, Heartbleed.  A label the mapping does not know
stops the stage with the list of unknown labels (nothing is dropped silently).

Writes ``data/group/flows.parquet`` (``Label`` now holds the group, ``Attack`` the original
label) and ``metrics/group.json``.
Usage: ``python -m pipeline.group`` (reads params.yaml).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from flows.schema import LABEL_COLUMN
from pipeline import tracking
from pipeline.io import read_parquet, require_inputs, write_json, write_parquet
from pipeline.stage import log_metrics, stage_cli

INPUT = "data/clean/flows.parquet"
OUTPUT = "data/group/flows.parquet"
METRICS_OUT = "metrics/group.json"
ATTACK_COLUMN = "Attack"


class UnknownLabelError(ValueError):
    """Labels the configured mapping does not cover."""


def group_labels(labels: pd.Series, mapping: Mapping[str, str]) -> pd.Series:
    """Map original labels onto groups; raise :class:`UnknownLabelError` listing unmapped ones."""
    unknown = labels[~labels.isin(list(mapping))].value_counts()
    if len(unknown):
        listed = ", ".join(f"{lab!r} ({n:,} rows)" for lab, n in unknown.items())
        raise UnknownLabelError(f"labels not in labels.mapping (conf/labels/): {listed}")
    return labels.map(dict(mapping)).astype("category")


def group_flows(flows: pd.DataFrame, mapping: Mapping[str, str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Replace ``Label`` by its group, keeping the original in ``Attack`` (in place: the frame can
    be millions of rows); return it and the counts."""
    original = flows[LABEL_COLUMN].astype(str)
    flows[LABEL_COLUMN] = group_labels(original, mapping)
    flows[ATTACK_COLUMN] = original.astype("category")
    counts = flows.groupby(LABEL_COLUMN, observed=True).size()
    by_attack = flows.groupby([LABEL_COLUMN, ATTACK_COLUMN], observed=True).size()
    report = {
        "rows": len(flows),
        "groups": {str(g): int(n) for g, n in counts.items()},
        "attacks": {f"{g}/{a}": int(n) for (g, a), n in by_attack.items()},
        "n_groups": int(len(counts)),
    }
    return flows, report


def main(argv: list[str] | None = None) -> None:
    """Entry point of the DVC stage."""
    params = stage_cli("group", __doc__, argv)
    require_inputs("group", [INPUT])
    with tracking.stage_run("group", params, []):
        try:
            flows, report = group_flows(read_parquet(INPUT), params["labels"]["mapping"])
        except UnknownLabelError as err:
            raise SystemExit(f"group: {err}") from None
        write_parquet(flows, OUTPUT)
        write_json(report, METRICS_OUT)
        log_metrics({"rows": report["rows"], "groups": report["groups"]})
    print(
        f"group: {report['rows']:,} flows in {report['n_groups']} groups: "
        + ", ".join(f"{g} {n:,}" for g, n in sorted(report["groups"].items(), key=lambda kv: -kv[1]))
    )


if __name__ == "__main__":
    main()
