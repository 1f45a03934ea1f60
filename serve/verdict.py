"""The verdict record: what the sensor writes for every flow, and what alert sinks read.

One row per flow the meter emitted.  The identifiers and the few statistics that alerts report
(packets and bytes each way, duration) are copied from the flow; ``predicted`` is the group the
model chose (or :data:`UNJUDGED` when every feature it reads is missing or infinite),
``probability`` the model's probability for that group (NaN when unjudged).  ``detector`` says which
detector decided an attack verdict (:data:`FLOW_DETECTOR`, :data:`HOST_DETECTOR`, both joined by
``+``, or :data:`GUARD_DETECTOR` for the novelty guard's ``UNKNOWN``; empty for a benign flow) and
``evidence`` the window features that made a host-level call (``name=value; ...``, else empty).
"""

from __future__ import annotations

from typing import Final

from flows.schema import IDENTIFIER_COLUMNS

#: The group name for flows that are not attacks.
BENIGN: Final[str] = "BENIGN"

#: The verdict of a flow the model cannot judge (all its features missing/infinite); never benign.
UNJUDGED: Final[str] = "UNJUDGED"

#: Flow columns copied into every verdict row (names from :mod:`flows.schema`).
FLOW_FIELDS: Final[tuple[str, ...]] = IDENTIFIER_COLUMNS + (
    "Flow Duration",
    "Total Fwd Packets",
    "Total Backward Packets",
    "Total Length of Fwd Packets",
    "Total Length of Bwd Packets",
)

#: Columns the model adds.
VERDICT_FIELDS: Final[tuple[str, ...]] = ("predicted", "probability", "model_name", "model_version",
                                          "detector", "evidence")

#: Names of the detectors in the ``detector`` column.
FLOW_DETECTOR: Final[str] = "flow"
HOST_DETECTOR: Final[str] = "host"
GUARD_DETECTOR: Final[str] = "guard"

#: Every column of a verdict row, in order.
VERDICT_COLUMNS: Final[tuple[str, ...]] = FLOW_FIELDS + VERDICT_FIELDS
