"""Read CICIDS2017 flow CSVs of any published layout into the canonical flow schema.

Three layouts exist (``../shared/data/SOURCES.md``):

* ``machinelearningcve``: 79 columns, leading spaces, ``Fwd Header Length`` twice, no identifiers;
* ``trafficlabelling``: 85 columns, the same plus Flow ID, addresses, ports, protocol, timestamp;
* ``engelen``: the corrected release by Engelen et al., 91 columns, partly other names, extra
  columns (``id``, RST flag counts, ICMP type/code, ``Total TCP Flow Time``, ``Attempted Category``).

Every file is mapped onto :data:`flows.schema.FLOW_COLUMNS` (names stripped, the duplicate
``Fwd Header Length`` dropped, Engelen names renamed), plus ``Label`` and ``Source File``.
A file that is none of these gets a :class:`LayoutError` naming the file and what is wrong.
The original files' cp1252 en dash in web-attack labels and CRLF line ends are handled here.
An input folder is searched recursively (day folders) for ``.csv`` and gzip-compressed ``.csv.gz``
files; every other file is listed as ignored, never skipped silently.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from flows.schema import COLUMN_KINDS, FLOW_COLUMNS, IDENTIFIER_COLUMNS, LABEL_COLUMN, SOURCE_COLUMN


class LayoutError(ValueError):
    """A CSV is not a CICIDS2017 flow file (the message names the file and the problem)."""


@dataclass(frozen=True)
class Layout:
    """One published CSV layout and how it maps onto the canonical schema."""

    name: str
    #: meter profile whose semantics produced these flows (tagged on the registered model)
    flow_profile: str
    n_columns: int
    #: a column (stripped name) only this layout has in first position
    first_column: str
    #: source name (stripped) -> canonical name, where they differ
    rename: Mapping[str, str] = field(default_factory=dict)
    #: source columns deliberately not carried over (besides the duplicate Fwd Header Length)
    ignored: tuple[str, ...] = ()
    has_identifiers: bool = True
    #: how the file's name (without .gz) must end; the lab's files share one header for two profiles
    file_suffix: str = ""


# The corrected release renamed these columns (canonical name on the right).
ENGELEN_RENAME: Mapping[str, str] = {
    "Src IP": "Source IP",
    "Src Port": "Source Port",
    "Dst IP": "Destination IP",
    "Dst Port": "Destination Port",
    "Total Fwd Packet": "Total Fwd Packets",
    "Total Bwd packets": "Total Backward Packets",
    "Total Length of Fwd Packet": "Total Length of Fwd Packets",
    "Total Length of Bwd Packet": "Total Length of Bwd Packets",
    "Packet Length Min": "Min Packet Length",
    "Packet Length Max": "Max Packet Length",
    "CWR Flag Count": "CWE Flag Count",
    "Fwd Segment Size Avg": "Avg Fwd Segment Size",
    "Bwd Segment Size Avg": "Avg Bwd Segment Size",
    "Fwd Bytes/Bulk Avg": "Fwd Avg Bytes/Bulk",
    "Fwd Packet/Bulk Avg": "Fwd Avg Packets/Bulk",
    "Fwd Bulk Rate Avg": "Fwd Avg Bulk Rate",
    "Bwd Bytes/Bulk Avg": "Bwd Avg Bytes/Bulk",
    "Bwd Packet/Bulk Avg": "Bwd Avg Packets/Bulk",
    "Bwd Bulk Rate Avg": "Bwd Avg Bulk Rate",
    "FWD Init Win Bytes": "Init_Win_bytes_forward",
    "Bwd Init Win Bytes": "Init_Win_bytes_backward",
    "Fwd Act Data Pkts": "act_data_pkt_fwd",
    "Fwd Seg Size Min": "min_seg_size_forward",
}

LAYOUTS: tuple[Layout, ...] = (
    # the embedded lab dataset (lab/dataset.py): canonical columns + Label + where each flow came from
    *(
        Layout(f"lab-{p}", p, 86, "Flow ID", ignored=("Scenario", "Tool"), file_suffix=f".lab-{p}.csv")
        for p in ("clean", "engelen")
    ),
    Layout("machinelearningcve", "cic2017", 79, "Destination Port", has_identifiers=False),
    Layout("trafficlabelling", "cic2017", 85, "Flow ID"),
    Layout(
        "engelen",
        "engelen",
        91,
        "id",
        rename=ENGELEN_RENAME,
        ignored=(
            "id",
            "Fwd RST Flags",
            "Bwd RST Flags",
            "ICMP Code",
            "ICMP Type",
            "Total TCP Flow Time",
            "Attempted Category",
        ),
    ),
)

_DUPLICATE = "Fwd Header Length"
#: what an input folder's flow files are called (case-insensitive); gzip is decompressed on the fly
FLOW_FILE_SUFFIXES = (".csv", ".csv.gz")
_ARROW_TYPES = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}


def _decode_header(raw: bytes) -> tuple[list[str], str]:
    """Header names (stripped) and the file's text encoding (UTF-8, else the originals' cp1252)."""
    raw = raw.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = raw.decode("cp1252"), "cp1252"
    return [name.strip() for name in text.split(",")], encoding


def is_gzip(path: Path) -> bool:
    """Whether ``path`` is named as a gzip-compressed file."""
    return path.name.lower().endswith(".gz")


def _open_binary(path: Path) -> IO[bytes]:
    """The file's (decompressed) bytes as a binary file object."""
    return gzip.open(path, "rb") if is_gzip(path) else path.open("rb")


def _file_encoding(path: Path, header_encoding: str) -> str:
    """cp1252 if any byte of the file is not valid UTF-8 (the original web-attack labels)."""
    if header_encoding != "utf-8":
        return header_encoding
    with _open_binary(path) as fh:
        for chunk in iter(lambda: fh.read(1 << 24), b""):
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError as err:
                # a multi-byte character cut at the chunk end is not an error
                if err.start < len(chunk) - 3:
                    return "cp1252"
    return "utf-8"


def detect_layout(names: list[str], path: Path | str) -> Layout:
    """Return the layout of a header (stripped names), or raise :class:`LayoutError`."""
    if not names or names == [""]:
        raise LayoutError(f"{path}: empty file or empty header line")
    for layout in LAYOUTS:
        if names[0] != layout.first_column:
            continue
        if not str(path).lower().removesuffix(".gz").endswith(layout.file_suffix):
            continue
        mapped = [layout.rename.get(n, n) for n in names]
        expected = {c for c in FLOW_COLUMNS if layout.has_identifiers or c not in IDENTIFIER_COLUMNS}
        expected |= {"Destination Port", LABEL_COLUMN}
        missing = sorted(expected - set(mapped))
        known = expected | set(layout.ignored)
        unknown = sorted({n for n in mapped if n not in known})
        dups = sorted({n for n in mapped if mapped.count(n) > 1} - {_DUPLICATE})
        if missing or unknown or dups or len(names) != layout.n_columns:
            problems = [f"{len(names)} columns (the {layout.name} layout has {layout.n_columns})"]
            if missing:
                problems.append(f"missing {missing}")
            if unknown:
                problems.append(f"unknown {unknown}")
            if dups:
                problems.append(f"duplicated {dups}")
            raise LayoutError(f"{path}: looks like the {layout.name} layout but " + "; ".join(problems))
        return layout
    expected = ", ".join(
        f"{lay.name} ({lay.n_columns} columns, first {lay.first_column!r})" for lay in LAYOUTS
    )
    raise LayoutError(
        f"{path}: not a CICIDS2017 flow CSV: {len(names)} columns starting {names[:3]}; "
        f"expected one of {expected}"
    )


def normalise_labels(labels: pa.ChunkedArray) -> pa.ChunkedArray:
    """Strip labels and write the originals' en dash (cp1252 0x96) as ``-``."""
    return pc.utf8_trim_whitespace(pc.replace_substring(labels, "\u2013", "-"))


def read_flow_table(path: Path | str) -> tuple[pa.Table, Layout]:
    """Read one CICIDS2017 CSV as an Arrow table of canonical columns (+ ``Label``).

    Statistics are float64 (``Infinity``/``NaN`` strings become ±inf/NaN; cleaning decides),
    ports and protocol int64, addresses/timestamps/labels strings.  Blank lines are skipped;
    all-empty rows are kept (as missing values) so cleaning counts them.
    """
    path = Path(path)
    try:
        with _open_binary(path) as fh:
            names, encoding = _decode_header(fh.readline())
        file_encoding = _file_encoding(path, encoding)
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError; a cut gzip an EOFError
        raise LayoutError(f"{path}: cannot read: {getattr(err, 'strerror', None) or err}") from err
    layout = detect_layout(names, path)
    # unique names for arrow: the second Fwd Header Length is read under a throwaway name
    source_names, seen = [], set()
    for n in names:
        canonical = layout.rename.get(n, n)
        source_names.append(f"__duplicate {canonical}" if canonical in seen else canonical)
        seen.add(canonical)
    wanted = [c for c in source_names if c in COLUMN_KINDS or c == LABEL_COLUMN]
    types = {c: _ARROW_TYPES[COLUMN_KINDS[c]] if c in IDENTIFIER_COLUMNS else pa.float64() for c in wanted}
    types[LABEL_COLUMN] = pa.string()
    try:
        # compression named explicitly: Arrow itself only recognises a lower-case ``.gz``
        with pa.input_stream(str(path), compression="gzip" if is_gzip(path) else None) as stream:
            table = pacsv.read_csv(
                stream,
                read_options=pacsv.ReadOptions(
                    column_names=source_names,
                    skip_rows=1,
                    encoding=file_encoding,
                    block_size=1 << 24,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, include_columns=wanted, strings_can_be_null=True
                ),
            )
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError, EOFError) as err:
        raise LayoutError(f"{path}: {layout.name} layout, but a row cannot be read: {err}") from err
    table = table.set_column(
        table.schema.get_field_index(LABEL_COLUMN), LABEL_COLUMN, normalise_labels(table[LABEL_COLUMN])
    )
    order = [c for c in FLOW_COLUMNS if c in table.column_names] + [LABEL_COLUMN]
    return table.select(order), layout


def _to_pandas(table: pa.Table, sources: list[str], codes: np.ndarray) -> pd.DataFrame:
    """One conversion of the whole table (freed as it goes), plus the ``Source File`` column."""
    df = table.to_pandas(
        types_mapper={pa.int64(): pd.Int64Dtype()}.get, split_blocks=True, self_destruct=True
    )
    df[SOURCE_COLUMN] = pd.Categorical.from_codes(codes, categories=sources)
    return df


def read_flow_csv(path: Path | str) -> tuple[pd.DataFrame, Layout]:
    """Read one CICIDS2017 CSV into a DataFrame of canonical columns (+ ``Label``, ``Source File``)."""
    table, layout = read_flow_table(path)
    return _to_pandas(table, [Path(path).name], np.zeros(table.num_rows, dtype=np.int16)), layout


def is_flow_file(path: Path) -> bool:
    """Whether a file's name marks it as flow input (``.csv`` or ``.csv.gz``, any case)."""
    return path.name.lower().endswith(FLOW_FILE_SUFFIXES)


def relative_name(path: Path, folder: Path) -> str:
    """A file's name relative to the input folder (``Friday/ddos.csv.gz``): unique, day folders kept."""
    return path.relative_to(folder).as_posix()


def list_input_files(folder: Path | str) -> tuple[list[Path], list[Path]]:
    """The flow files of an input folder and its sub-folders (sorted) and every other file there.

    Raises a clear :class:`LayoutError` when the folder is missing or holds no flow file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise LayoutError(f"input folder {folder} does not exist (data.input_dir in conf/data/)")
    every = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: relative_name(p, folder))
    files = [p for p in every if is_flow_file(p)]
    if not files:
        ignored = ", ".join(relative_name(p, folder) for p in every[:5]) or "nothing"
        raise LayoutError(f"input folder {folder} holds no .csv or .csv.gz files (it holds: {ignored})")
    return files, [p for p in every if not is_flow_file(p)]


def list_csvs(folder: Path | str) -> list[Path]:
    """The flow files (``.csv``, ``.csv.gz``) of an input folder and its sub-folders, sorted."""
    return list_input_files(folder)[0]


def read_flow_folder(folder: Path | str, progress: bool = True) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Read every flow file of ``folder`` and its sub-folders (any mix of layouts) into one frame.

    Returns the frame and ``{relative file name: {"layout", "flow_profile", "rows"}}``; the names
    are also the ``Source File`` values.  With ``progress``, every file read and every file
    ignored is listed on stderr.  The files are joined as Arrow tables and converted to pandas
    once, so the peak memory stays near one copy.
    """
    folder = Path(folder)
    tables, report = [], {}
    files, ignored = list_input_files(folder)
    for i, path in enumerate(files, 1):
        table, layout = read_flow_table(path)
        tables.append(table)
        report[relative_name(path, folder)] = {
            "layout": layout.name,
            "flow_profile": layout.flow_profile,
            "rows": table.num_rows,
        }
        if progress:
            print(
                f"  read [{i}/{len(files)}] {relative_name(path, folder)}: {layout.name} layout, "
                f"{table.num_rows:,} rows",
                file=sys.stderr,
                flush=True,
            )
    if progress:
        for path in ignored:
            print(f"  ignored {relative_name(path, folder)}: not .csv/.csv.gz", file=sys.stderr, flush=True)
    codes = np.repeat(np.arange(len(files), dtype=np.int16), [t.num_rows for t in tables])
    table = pa.concat_tables(tables, promote_options="default")
    del tables
    order = [c for c in FLOW_COLUMNS if c in table.column_names] + [LABEL_COLUMN]
    return _to_pandas(table.select(order), [relative_name(p, folder) for p in files], codes), report
