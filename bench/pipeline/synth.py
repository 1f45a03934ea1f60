"""Synthesise a full-size CICIDS2017-like flow set from the corrected 43k-row sample.

The shared sample (Engelen et al.'s corrected release, at most 5,000 rows per label) has the
wrong class proportions and is ~65x too small to show how the pipeline scales.  This module
resamples its rows per class, with replacement, to the real CICIDS2017 label counts scaled to
``--rows`` (default: the full 2,830,743), and writes them in the sample's own CSV layout (same
header, same label spellings) so the pipeline's loader reads the folder unchanged.

Each synthetic row is a sample row of its class with:

* jitter: one log-normal factor per row on the time columns (duration, IAT, active, idle) and one
  on the byte-size columns (lengths, segment and packet sizes, bytes per bulk, subflow bytes);
  rates are rescaled to match (packets/s divided by the time factor, bytes/s multiplied by
  bytes/time).  A row's factor is capped so no jittered column exceeds its maximum in the
  sample (durations stay under the 120 s flow timeout).  Integer columns stay integers (minima
  rounded down, the rest up, so min <= mean <= max survives), non-positive values are left
  alone, packet counts, flags, header lengths and window sizes are kept as they are;
* identifiers: addresses, destination port and protocol of the sample row (the class's own
  address pool, so conversation and by-day splits behave as on the real data); a new ephemeral
  source port (>= 1024 ports only) drawn without repetition per (source, destination,
  destination port, protocol) so flow ids stay distinct until a conversation has more than
  64,512 flows; a rebuilt ``Flow ID``; a unique ``id``; the timestamp moved by up to
  ``--time-window`` seconds and kept inside the class's time range in the sample.

Rows go to one CSV per day, Thursday and Friday split at local noon, like the original files,
sorted by time.  A manifest (``<out>.json``) records counts, files and settings.
Usage: ``python -m bench.pipeline.synth [--rows N] [--out DIR]`` (``--help`` for all options).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from flows.schema import IDENTIFIER_COLUMNS, LABEL_COLUMN
from pipeline.io import shared_data_dir

#: Label counts of the full CICIDS2017 release (the 8 MachineLearningCVE day CSVs, 2,830,743 flows),
#: as published with the dataset by the Canadian Institute for Cybersecurity (Sharafaldin, Habibi
#: Lashkari and Ghorbani, ICISSP 2018) and tabulated per label in e.g. Panigrahi and Borah, "A detailed
#: analysis of CICIDS2017 dataset for designing intrusion detection systems", IJET 7(3.24), 2018.
FULL_COUNTS: Final[dict[str, int]] = {
    "BENIGN": 2_273_097,
    "DoS Hulk": 231_073,
    "PortScan": 158_930,
    "DDoS": 128_027,
    "DoS GoldenEye": 10_293,
    "FTP-Patator": 7_938,
    "SSH-Patator": 5_897,
    "DoS slowloris": 5_796,
    "DoS Slowhttptest": 5_499,
    "Bot": 1_966,
    "Web Attack \u2013 Brute Force": 1_507,
    "Web Attack \u2013 XSS": 652,
    "Infiltration": 36,
    "Web Attack \u2013 Sql Injection": 21,
    "Heartbleed": 11,
}
FULL_TOTAL: Final[int] = sum(FULL_COUNTS.values())

# Spellings of the original labels that differ from the corrected release by more than case/dash.
_ALIASES: Final[dict[str, str]] = {"bot": "botnet"}

DEFAULT_SCRATCH: Final[Path] = Path(os.environ.get("NETSENTRY_BENCH_DIR", "/tmp/netsentry-bench"))
EPHEMERAL_LOW: Final[int] = 1024
EPHEMERAL_SPAN: Final[int] = 65536 - EPHEMERAL_LOW
# CICIDS2017 timestamps in the corrected release are UTC; the capture site was at UTC-3.
_LOCAL_NOON_UTC_HOUR: Final[int] = 15
_WEEKDAYS: Final[tuple[str, ...]] = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)
_SPLIT_DAYS: Final[frozenset[int]] = frozenset({3, 4})  # Thursday and Friday have two files each

_TIME = re.compile(r"Duration|IAT|Active|Idle|Flow Time")
_RATE = re.compile(r"/s$|Bulk Rate")
_BYTE_RATE = re.compile(r"Bytes/s$|Bulk Rate")
_VARIANCE = re.compile(r"Variance")
_SIZE = re.compile(r"Length|Segment Size|Packet Size|Bytes/Bulk|Subflow \w+ Bytes")


def default_sample_dir() -> Path:
    """The shared corrected CICIDS2017 sample folder."""
    return shared_data_dir() / "cicids2017" / "engelen-sample"


def default_out_dir(rows: int, seed: int) -> Path:
    """Where a synthetic set of ``rows`` rows is written unless told otherwise (outside the repo)."""
    return DEFAULT_SCRATCH / f"synth-{rows}-s{seed}"


def manifest_path(out_dir: Path) -> Path:
    """The manifest written beside (not inside: the pipeline reads the whole folder) ``out_dir``."""
    return out_dir.with_name(out_dir.name + ".json")


def normalise_label(label: str) -> str:
    """Compare labels across releases: cp1252/Unicode dashes to '-', case and spacing folded."""
    s = label.replace("\x96", "-").replace("\u2013", "-")
    s = " ".join(s.split()).lower()
    return _ALIASES.get(s, s)


def match_labels(sample_labels: list[str]) -> dict[str, str]:
    """Map every label of :data:`FULL_COUNTS` to the sample's spelling; SystemExit if one is missing."""
    by_norm = {normalise_label(lab): lab for lab in sample_labels}
    missing = [lab for lab in FULL_COUNTS if normalise_label(lab) not in by_norm]
    if missing:
        raise SystemExit(
            f"the sample has no rows for label(s) {missing}; labels found: {sorted(sample_labels)}"
        )
    return {lab: by_norm[normalise_label(lab)] for lab in FULL_COUNTS}


def class_counts(rows: int, min_per_class: int = 10) -> dict[str, int]:
    """Scale :data:`FULL_COUNTS` to ``rows`` (largest remainder), each class at least ``min_per_class``.

    Rows added to reach the floor are taken from the largest class, so the total stays ``rows``.
    The default floor (10) is below every real count, so at full size the counts are exact.
    """
    if rows < min_per_class * len(FULL_COUNTS) * 2:
        raise SystemExit(f"--rows {rows} is too small: need at least {min_per_class * len(FULL_COUNTS) * 2}")
    exact = {lab: n * rows / FULL_TOTAL for lab, n in FULL_COUNTS.items()}
    counts = {lab: math.floor(v) for lab, v in exact.items()}
    short = rows - sum(counts.values())
    for lab in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[:short]:
        counts[lab] += 1
    largest = max(counts, key=lambda k: counts[k])
    for lab in counts:
        if counts[lab] < min_per_class:
            counts[largest] -= min_per_class - counts[lab]
            counts[lab] = min_per_class
    return counts


@dataclass(frozen=True)
class Layout:
    """The sample's header and the role of each column."""

    header: list[str]
    row_id: str | None
    ids: dict[str, str]  # canonical identifier name -> column name in the sample
    label: str
    time: list[str]
    packet_rate: list[str]
    byte_rate: list[str]
    size: list[str]
    variance: list[str]


def detect_layout(header: list[str]) -> Layout:
    """Find the identifier, label and jittered columns of a flow CSV header with flow identifiers.

    The identifier block (``Flow ID`` and the six columns after it) is in canonical order in both
    the TrafficLabelling and the corrected (Engelen) layouts, whatever each names its columns.
    """
    names = [h.strip() for h in header]
    if "Flow ID" not in names or LABEL_COLUMN not in names:
        raise SystemExit(
            "the sample has no 'Flow ID'/'Label' columns: a layout with flow identifiers is needed "
            "(TrafficLabelling or the corrected release)"
        )
    first = names.index("Flow ID")
    ids = dict(zip(IDENTIFIER_COLUMNS, header[first : first + len(IDENTIFIER_COLUMNS)], strict=True))
    skip = set(ids.values()) | {header[names.index(LABEL_COLUMN)]}
    row_id = header[0] if first == 1 else None
    if row_id:
        skip.add(row_id)
    roles: dict[str, list[str]] = {"time": [], "packet_rate": [], "byte_rate": [], "size": [], "variance": []}
    for col, name in zip(header, names, strict=True):
        if col in skip:
            continue
        if _RATE.search(name):
            roles["byte_rate" if _BYTE_RATE.search(name) else "packet_rate"].append(col)
        elif _TIME.search(name):
            roles["time"].append(col)
        elif _VARIANCE.search(name):
            roles["variance"].append(col)
        elif _SIZE.search(name) and "Header" not in name:
            roles["size"].append(col)
    return Layout(header, row_id, ids, header[names.index(LABEL_COLUMN)], **roles)


def read_sample(folder: Path) -> tuple[Layout, pd.DataFrame]:
    """Read every CSV of the sample folder (one layout); return its layout and rows."""
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise SystemExit(f"no CSV files in {folder} (the corrected CICIDS2017 sample is expected there)")
    headers = {f: f.open(encoding="utf-8", errors="replace").readline().rstrip("\r\n") for f in files}
    if len(set(headers.values())) != 1:
        raise SystemExit(f"the sample files in {folder} do not share one header; use a single-layout folder")
    header = next(iter(headers.values())).split(",")
    df = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    return detect_layout(header), df


@dataclass
class Plan:
    """Which sample row each synthetic row copies, and its new identifiers (file order)."""

    source: np.ndarray  # sample row index per synthetic row
    ts_us: np.ndarray  # new timestamp, microseconds since the epoch
    sport: np.ndarray  # new source port
    file_key: np.ndarray  # output file per row (see _file_name)


def _file_key(ts_us: np.ndarray) -> np.ndarray:
    days = ts_us // 86_400_000_000
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    hour = (ts_us // 3_600_000_000) % 24
    afternoon = np.isin(weekday, list(_SPLIT_DAYS)) & (hour >= _LOCAL_NOON_UTC_HOUR)
    return weekday * 2 + afternoon


def _file_name(key: int) -> str:
    day, half = divmod(int(key), 2)
    part = ("-Afternoon" if half else "-Morning") if day in _SPLIT_DAYS else ""
    return f"{_WEEKDAYS[day]}-WorkingHours{part}.csv"


def _new_ports(group: np.ndarray, old: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ephemeral source ports without repetition inside each group (an affine permutation per group)."""
    ports = old.copy()
    sel = np.flatnonzero(old >= EPHEMERAL_LOW)
    if sel.size == 0:
        return ports
    order = sel[np.argsort(group[sel], kind="stable")]
    g = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    rank = np.arange(g.size) - np.repeat(starts, np.diff(np.r_[starts, g.size]))
    n_groups = int(group.max()) + 1
    candidates = np.arange(1, EPHEMERAL_SPAN, dtype=np.int64)
    strides = candidates[np.gcd(candidates, EPHEMERAL_SPAN) == 1]
    offset = rng.integers(0, EPHEMERAL_SPAN, n_groups)
    stride = rng.choice(strides, n_groups)
    ports[order] = EPHEMERAL_LOW + (offset[g] + rank * stride[g]) % EPHEMERAL_SPAN
    return ports


def _port_groups(layout: Layout, sample: pd.DataFrame) -> np.ndarray:
    """Per sample row, a number for its (source, destination, destination port, protocol)."""
    cols = [layout.ids[c] for c in ("Source IP", "Destination IP", "Destination Port", "Protocol")]
    return sample.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()


def make_plan(
    layout: Layout,
    sample: pd.DataFrame,
    counts: dict[str, int],
    seed: int,
    time_window_s: float,
) -> Plan:
    """Draw the sample rows of every synthetic row, their timestamps, ports and files."""
    rng = np.random.default_rng(seed)
    labels = sample[layout.label].astype(str).to_numpy()
    ts = pd.to_datetime(sample[layout.ids["Timestamp"]]).to_numpy().astype("datetime64[us]").astype(np.int64)
    parts, lo_parts, hi_parts = [], [], []
    for lab, n in counts.items():
        idx = np.flatnonzero(labels == lab)
        parts.append(rng.choice(idx, size=n))
        lo_parts.append(np.full(n, ts[idx].min()))
        hi_parts.append(np.full(n, ts[idx].max()))
    source = np.concatenate(parts)
    half = int(time_window_s * 1_000_000)
    new_ts = ts[source] + rng.integers(-half, half + 1, source.size)
    new_ts = np.clip(new_ts, np.concatenate(lo_parts), np.concatenate(hi_parts))

    sport = _new_ports(
        _port_groups(layout, sample)[source], sample[layout.ids["Source Port"]].to_numpy()[source], rng
    )

    file_key = _file_key(new_ts)
    order = np.lexsort((new_ts, file_key))
    return Plan(source[order], new_ts[order], sport[order], file_key[order])


def _flow_id_parts(layout: Layout, sample: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per sample row, the text before and after the source port in its Flow ID.

    CICFlowMeter writes either ``src-dst-sport-dport-proto`` or, for flows it saw backwards,
    ``dst-src-dport-sport-proto``; both keep the source port in a fixed place.
    """
    ids = layout.ids
    src, dst = sample[ids["Source IP"]].astype(str), sample[ids["Destination IP"]].astype(str)
    dport, proto = sample[ids["Destination Port"]].astype(str), sample[ids["Protocol"]].astype(str)
    forward = src + "-" + dst + "-" + sample[ids["Source Port"]].astype(str) + "-" + dport + "-" + proto
    is_forward = (sample[ids["Flow ID"]].astype(str) == forward).to_numpy()
    pre = np.where(
        is_forward, (src + "-" + dst + "-").to_numpy(), (dst + "-" + src + "-" + dport + "-").to_numpy()
    )
    post = np.where(is_forward, ("-" + dport + "-" + proto).to_numpy(), ("-" + proto).to_numpy())
    return pre.astype(object), post.astype(object)


def _jitter(base: np.ndarray, factor: np.ndarray, integral: bool, round_down: bool) -> np.ndarray:
    """Multiply positive values by ``factor``; integers rounded down (minima) or up (the rest)."""
    out = np.where(base > 0, base * factor, base)
    if integral:
        out = np.floor(out) if round_down else np.ceil(out)
        return out.astype(np.int64)
    return out


def _headroom(columns: dict[str, np.ndarray], group: list[str], src: np.ndarray) -> np.ndarray:
    """Per row, the largest factor that keeps every column of ``group`` within its sample maximum."""
    cap = np.full(src.size, np.inf)
    for col in group:
        base = columns[col][src].astype(np.float64)
        top = float(columns[col].max())
        # a hair under top/base: ceil() of a product that rounds up past an integer would exceed top
        headroom = np.divide(top * (1 - 1e-12), base, out=np.full(src.size, np.inf), where=base > 0)
        np.minimum(cap, headroom, out=cap)
    return cap


def _chunk_table(
    layout: Layout,
    columns: dict[str, np.ndarray],
    strings: dict[str, pa.Array],
    flow_parts: tuple[pa.Array, pa.Array],
    plan: Plan,
    sl: slice,
    first_id: int,
    rng: np.random.Generator,
    sigma_time: float,
    sigma_size: float,
) -> pa.Table:
    src = plan.source[sl]
    n = src.size
    f_time = np.exp(np.clip(rng.normal(0.0, sigma_time, n), -3 * sigma_time, 3 * sigma_time))
    f_size = np.exp(np.clip(rng.normal(0.0, sigma_size, n), -3 * sigma_size, 3 * sigma_size))
    # no jittered value above its column's maximum in the sample (e.g. the 120 s flow timeout)
    f_time = np.minimum(f_time, _headroom(columns, layout.time, src))
    f_size = np.minimum(f_size, _headroom(columns, layout.size, src))
    factors = {
        **{c: f_time for c in layout.time},
        **{c: 1.0 / f_time for c in layout.packet_rate},
        **{c: f_size / f_time for c in layout.byte_rate},
        **{c: f_size for c in layout.size},
        **{c: f_size**2 for c in layout.variance},
    }
    take = pa.array(src)
    sport = plan.sport[sl]
    ids = layout.ids
    out: dict[str, pa.Array] = {}
    for col in layout.header:
        if col == layout.row_id:
            out[col] = pa.array(np.arange(first_id, first_id + n, dtype=np.int64))
        elif col == ids["Flow ID"]:
            out[col] = pc.binary_join_element_wise(
                flow_parts[0].take(take), pc.cast(pa.array(sport), pa.string()), flow_parts[1].take(take), ""
            )
        elif col == ids["Source Port"]:
            out[col] = pa.array(sport)
        elif col == ids["Timestamp"]:
            out[col] = pa.array(plan.ts_us[sl], type=pa.timestamp("us"))
        elif col in strings:
            out[col] = strings[col].take(take)
        elif col in factors:
            base = columns[col][src]
            integral = np.issubdtype(base.dtype, np.integer)
            out[col] = pa.array(_jitter(base, factors[col], integral, "Min" in col))
        else:
            out[col] = pa.array(columns[col][src])
    return pa.table(out)


def synthesise(
    out_dir: Path,
    rows: int = FULL_TOTAL,
    seed: int = 42,
    sample_dir: Path | None = None,
    sigma_time: float = 0.1,
    sigma_size: float = 0.03,
    time_window_s: float = 60.0,
    min_per_class: int = 10,
    chunk_rows: int = 250_000,
    log=print,
) -> dict[str, Any]:
    """Write the synthetic set into ``out_dir`` (replaced atomically) and its manifest; return it."""
    t0 = time.perf_counter()
    sample_dir = sample_dir or default_sample_dir()
    if not sample_dir.is_dir():
        raise SystemExit(f"sample folder {sample_dir} not found (set NETSENTRY_SHARED_DATA or pass --sample)")
    layout, sample = read_sample(sample_dir)
    label_of = match_labels(sorted(sample[layout.label].astype(str).unique()))
    counts = {label_of[lab]: n for lab, n in class_counts(rows, min_per_class).items()}
    unused = sorted(set(sample[layout.label].astype(str)) - set(counts))
    plan = make_plan(layout, sample, counts, seed, time_window_s)

    numeric = [c for c in layout.header if pd.api.types.is_numeric_dtype(sample[c])]
    columns = {c: sample[c].to_numpy() for c in numeric}
    strings = {
        c: pa.array(sample[c].astype(str).to_numpy(dtype=object)) for c in layout.header if c not in numeric
    }
    pre, post = _flow_id_parts(layout, sample)
    flow_parts = (pa.array(pre, pa.string()), pa.array(post, pa.string()))

    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = np.random.default_rng([seed, 1])
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    header_line = (",".join(layout.header) + "\n").encode()
    files: dict[str, int] = {}
    bounds = np.r_[0, np.flatnonzero(np.diff(plan.file_key)) + 1, plan.source.size]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        name = _file_name(plan.file_key[start])
        with (tmp / name).open("wb") as fh:
            fh.write(header_line)
            writer = None
            for lo in range(start, stop, chunk_rows):
                sl = slice(lo, min(lo + chunk_rows, stop))
                table = _chunk_table(
                    layout, columns, strings, flow_parts, plan, sl, lo + 1, rng, sigma_time, sigma_size
                )
                if writer is None:
                    writer = pacsv.CSVWriter(fh, table.schema, write_options=options)
                writer.write_table(table)
            if writer is not None:
                writer.close()
        files[name] = int(stop - start)
        log(f"  {name}: {stop - start:,} rows")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)

    # a flow id is fixed by its (addresses, destination port, protocol) group and source port
    key = _port_groups(layout, sample)[plan.source].astype(np.int64) * 65536 + plan.sport
    manifest = {
        "rows": int(rows),
        "seed": seed,
        "sample_dir": str(sample_dir),
        "sample_rows": len(sample),
        "counts_source": "CICIDS2017 MachineLearningCVE label counts (2,830,743 flows): synth.FULL_COUNTS",
        "class_counts": counts,
        "unused_sample_labels": unused,
        "files": files,
        "distinct_flow_ids": int(np.unique(key).size),
        "bytes": sum(f.stat().st_size for f in out_dir.glob("*.csv")),
        "jitter": {"sigma_time": sigma_time, "sigma_size": sigma_size, "time_window_s": time_window_s},
        "min_per_class": min_per_class,
        "generator": generator_digest(),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    manifest_path(out_dir).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def generator_digest() -> str:
    """A short hash of this module's source: a set made by other code is made again."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def ensure(out_dir: Path, rows: int, seed: int, log=print) -> dict[str, Any]:
    """Return the manifest of ``out_dir`` if this code made it with ``rows``/``seed``, else synthesise it."""
    mpath = manifest_path(out_dir)
    if mpath.exists() and out_dir.is_dir():
        manifest = json.loads(mpath.read_text())
        same = (manifest.get("rows"), manifest.get("seed"), manifest.get("generator"))
        if same == (rows, seed, generator_digest()):
            return manifest
    log(f"synthesising {rows:,} rows into {out_dir} ...")
    return synthesise(out_dir, rows, seed, log=log)


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Command line: synthesise a set and print where it went."""
    ap = argparse.ArgumentParser(
        prog="python -m bench.pipeline.synth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--rows",
        type=_positive_int,
        default=FULL_TOTAL,
        help=f"rows to write (default {FULL_TOTAL:,}, the full CICIDS2017)",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output folder (default {DEFAULT_SCRATCH}/synth-ROWS-sSEED; $NETSENTRY_BENCH_DIR)",
    )
    ap.add_argument(
        "--sample", type=Path, default=None, help="sample folder (default: the shared engelen-sample)"
    )
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--sigma-time", type=float, default=0.1, help="log-normal sigma of the time factor")
    ap.add_argument("--sigma-size", type=float, default=0.03, help="log-normal sigma of the byte-size factor")
    ap.add_argument("--time-window", type=float, default=60.0, help="max timestamp shift in seconds")
    ap.add_argument("--min-per-class", type=int, default=10, help="floor per class at small --rows")
    args = ap.parse_args(argv)
    for name in ("sigma_time", "sigma_size", "time_window"):
        if getattr(args, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must not be negative")
    out = args.out or default_out_dir(args.rows, args.seed)
    m = synthesise(
        out,
        args.rows,
        args.seed,
        args.sample,
        args.sigma_time,
        args.sigma_size,
        args.time_window,
        args.min_per_class,
    )
    print(
        f"wrote {m['rows']:,} rows ({m['bytes'] / 2**20:,.0f} MiB, {len(m['files'])} files, "
        f"{m['distinct_flow_ids']:,} distinct flow ids) to {out} in {m['seconds']:.1f} s; "
        f"manifest {manifest_path(out)}"
    )
    if m["unused_sample_labels"]:
        unused = ", ".join(m["unused_sample_labels"])
        print(f"sample labels with no full-dataset count (not synthesised): {unused}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
