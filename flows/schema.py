"""The canonical flow schema: the single source of truth for flow column names, order and types.

Canonical names are the original CICIDS2017 (CICFlowMeter) names with surrounding spaces
stripped, in the order of the TrafficLabelling CSVs, with the duplicated ``Fwd Header Length``
column dropped.  The C meter (``capture/flowmeter``) prints exactly :data:`FLOW_COLUMNS` as its
header; ``tests/capture`` proves it.  Input layouts (MachineLearningCVE, TrafficLabelling, the
corrected release by Engelen et al.) are mapped onto these names in :mod:`pipeline.layouts`.
"""

from __future__ import annotations

from typing import Final, Literal

Kind = Literal["str", "int", "float"]

#: Columns that identify a flow; never used as model features.
IDENTIFIER_COLUMNS: Final[tuple[str, ...]] = (
    "Flow ID",
    "Source IP",
    "Source Port",
    "Destination IP",
    "Destination Port",
    "Protocol",
    "Timestamp",
)

#: Identifiers that are never features.  ``Destination Port`` is a feature only when the
#: config switch ``features.use_destination_port`` is on (it is a known shortcut).
NEVER_FEATURES: Final[tuple[str, ...]] = tuple(c for c in IDENTIFIER_COLUMNS if c != "Destination Port")

# (name, kind): the 76 statistical features after Destination Port, in CICIDS2017 order,
# without the duplicate Fwd Header Length (ML index 55).
_STATISTICS: Final[tuple[tuple[str, Kind], ...]] = (
    ("Flow Duration", "int"),
    ("Total Fwd Packets", "int"),
    ("Total Backward Packets", "int"),
    ("Total Length of Fwd Packets", "int"),
    ("Total Length of Bwd Packets", "int"),
    ("Fwd Packet Length Max", "int"),
    ("Fwd Packet Length Min", "int"),
    ("Fwd Packet Length Mean", "float"),
    ("Fwd Packet Length Std", "float"),
    ("Bwd Packet Length Max", "int"),
    ("Bwd Packet Length Min", "int"),
    ("Bwd Packet Length Mean", "float"),
    ("Bwd Packet Length Std", "float"),
    ("Flow Bytes/s", "float"),
    ("Flow Packets/s", "float"),
    ("Flow IAT Mean", "float"),
    ("Flow IAT Std", "float"),
    ("Flow IAT Max", "int"),
    ("Flow IAT Min", "int"),
    ("Fwd IAT Total", "int"),
    ("Fwd IAT Mean", "float"),
    ("Fwd IAT Std", "float"),
    ("Fwd IAT Max", "int"),
    ("Fwd IAT Min", "int"),
    ("Bwd IAT Total", "int"),
    ("Bwd IAT Mean", "float"),
    ("Bwd IAT Std", "float"),
    ("Bwd IAT Max", "int"),
    ("Bwd IAT Min", "int"),
    ("Fwd PSH Flags", "int"),
    ("Bwd PSH Flags", "int"),
    ("Fwd URG Flags", "int"),
    ("Bwd URG Flags", "int"),
    ("Fwd Header Length", "int"),
    ("Bwd Header Length", "int"),
    ("Fwd Packets/s", "float"),
    ("Bwd Packets/s", "float"),
    ("Min Packet Length", "int"),
    ("Max Packet Length", "int"),
    ("Packet Length Mean", "float"),
    ("Packet Length Std", "float"),
    ("Packet Length Variance", "float"),
    ("FIN Flag Count", "int"),
    ("SYN Flag Count", "int"),
    ("RST Flag Count", "int"),
    ("PSH Flag Count", "int"),
    ("ACK Flag Count", "int"),
    ("URG Flag Count", "int"),
    ("CWE Flag Count", "int"),
    ("ECE Flag Count", "int"),
    ("Down/Up Ratio", "float"),
    ("Average Packet Size", "float"),
    ("Avg Fwd Segment Size", "float"),
    ("Avg Bwd Segment Size", "float"),
    ("Fwd Avg Bytes/Bulk", "float"),
    ("Fwd Avg Packets/Bulk", "float"),
    ("Fwd Avg Bulk Rate", "float"),
    ("Bwd Avg Bytes/Bulk", "float"),
    ("Bwd Avg Packets/Bulk", "float"),
    ("Bwd Avg Bulk Rate", "float"),
    ("Subflow Fwd Packets", "int"),
    ("Subflow Fwd Bytes", "int"),
    ("Subflow Bwd Packets", "int"),
    ("Subflow Bwd Bytes", "int"),
    ("Init_Win_bytes_forward", "int"),
    ("Init_Win_bytes_backward", "int"),
    ("act_data_pkt_fwd", "int"),
    ("min_seg_size_forward", "int"),
    ("Active Mean", "float"),
    ("Active Std", "float"),
    ("Active Max", "float"),
    ("Active Min", "float"),
    ("Idle Mean", "float"),
    ("Idle Std", "float"),
    ("Idle Max", "float"),
    ("Idle Min", "float"),
)

_IDENTIFIER_KINDS: Final[dict[str, Kind]] = {
    "Flow ID": "str",
    "Source IP": "str",
    "Source Port": "int",
    "Destination IP": "str",
    "Destination Port": "int",
    "Protocol": "int",
    "Timestamp": "str",
}

#: Every column a flow record carries, in order (identifiers first, as in TrafficLabelling).
FLOW_COLUMNS: Final[tuple[str, ...]] = IDENTIFIER_COLUMNS + tuple(n for n, _ in _STATISTICS)

#: Kind of each flow column: ``str``, ``int`` (printed without decimals) or ``float``.
COLUMN_KINDS: Final[dict[str, Kind]] = {**_IDENTIFIER_KINDS, **dict(_STATISTICS)}

#: The 77 candidate model features (the MachineLearningCVE features without the duplicate).
FEATURE_COLUMNS: Final[tuple[str, ...]] = ("Destination Port",) + tuple(n for n, _ in _STATISTICS)

#: Rate columns where CICFlowMeter writes Infinity/NaN for zero-duration flows.
RATE_COLUMNS: Final[tuple[str, ...]] = ("Flow Bytes/s", "Flow Packets/s")

#: The label column (the original attack label, later replaced by its group).
LABEL_COLUMN: Final[str] = "Label"

#: Source-file column added by the loader, for by-day splits and traceability.
SOURCE_COLUMN: Final[str] = "Source File"


def pandas_dtype(column: str) -> str:
    """Return the pandas dtype a canonical column is stored with between pipeline stages.

    Statistics are float64 (inputs carry NaN/Infinity before cleaning); identifiers keep
    their natural type.
    """
    kind = COLUMN_KINDS[column]
    if column in IDENTIFIER_COLUMNS:
        return {"str": "string", "int": "Int64", "float": "float64"}[kind]
    return "float64"


def feature_columns(use_destination_port: bool) -> list[str]:
    """Return the candidate feature columns, with or without ``Destination Port``."""
    if use_destination_port:
        return list(FEATURE_COLUMNS)
    return [c for c in FEATURE_COLUMNS if c != "Destination Port"]
