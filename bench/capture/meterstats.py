"""Read counters out of the flow meter's --stats-json file."""

from __future__ import annotations

import json
from pathlib import Path

# Candidate key names, most specific first (the meter's JSON names are looked up, not assumed).
PACKETS_KEYS = ("packets_read", "packets_seen", "packets_captured", "packets_total", "packets")
FLOWS_KEYS = ("flows_emitted", "flows_exported", "flows_written", "flows_total", "flows")
PEAK_FLOWS_KEYS = ("max_active_flows", "peak_active_flows", "max_concurrent_flows", "flows_active_max",
                   "peak_flows", "max_flows_active")
KERNEL_DROP_KEYS = ("kernel_drops",)


def load(path: Path) -> dict:
    """The stats JSON as a dict ({} if the file is missing or not JSON)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def find(stats: dict, names: tuple[str, ...]) -> int | None:
    """First integer value in the (nested) stats whose key is in `names`, by the order of `names`."""
    stack = [stats]
    found: dict[str, int] = {}
    while stack:
        d = stack.pop()
        for k, v in d.items():
            if isinstance(v, dict):
                stack.append(v)
            elif isinstance(v, int) and not isinstance(v, bool) and k in names and k not in found:
                found[k] = v
    for n in names:
        if n in found:
            return found[n]
    return None
