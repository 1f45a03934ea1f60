"""A flow CSV given to ``netsentry classify`` is checked before any model work: a never-ending or
binary first line, a gzipped file of another layout, each one short line (never the file's bytes)."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

from tests.serve.sensor_run import assert_one_clear_line
from tests.serve.test_config import netsentry_without_model


def test_a_link_to_dev_zero_is_one_line_at_once(tmp_path: Path) -> None:
    zero = tmp_path / "flows.csv"
    zero.symlink_to("/dev/zero")
    started = time.monotonic()
    proc = netsentry_without_model("classify", str(zero))
    assert time.monotonic() - started < 20
    assert_one_clear_line(proc, f"netsentry classify: {zero}: the first line is longer than 65536 bytes")


def test_a_gzipped_csv_is_read_as_csv_and_its_columns_shown_not_its_bytes(tmp_path: Path) -> None:
    for name in ("other.csv.gz", "other.csv"):  # by its name, or found by its bytes
        other = tmp_path / name
        other.write_bytes(gzip.compress(b"Src,Dst,Label\n1.2.3.4,5.6.7.8,BENIGN\n" * 50))
        proc = netsentry_without_model("classify", str(other))
        line = assert_one_clear_line(proc, "netsentry classify: not a flow CSV in the canonical schema",
                                     "(first: ['Src', 'Dst', 'Label'])")
        assert line.isascii(), line
