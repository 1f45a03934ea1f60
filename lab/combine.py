"""Make ``data/lab-cic/``: links to the lab's engelen-profile flows and to a CICIDS2017 folder's CSVs.

The pipeline reads one input folder; this folder of links lets it train on both sources at once
(``+experiment=lab_cic``) without copying CICIDS2017 into the project.
Usage: ``python -m lab.combine [--cic DIR] [--out DIR]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from lab.dataset import flows_file
from lab.labels import shared_data_dir

ROOT = Path(__file__).resolve().parent.parent


def combine(cic: Path, out: Path, lab: Path = ROOT / "data" / "lab") -> list[Path]:
    """Fill ``out`` (emptied first) with links to the lab engelen flows and every CSV under ``cic``."""
    sources = [flows_file(lab, "engelen")]
    sources += sorted(p for p in cic.rglob("*") if p.name.lower().endswith((".csv", ".csv.gz")))
    missing = [p for p in sources[:1] if not p.exists()]
    if missing or len(sources) == 1:
        raise FileNotFoundError(f"nothing to combine: missing {missing or [cic / '*.csv']}")
    if out.exists():
        shutil.rmtree(out)
    (out / "cic").mkdir(parents=True)
    links = [out / sources[0].name] + [out / "cic" / p.relative_to(cic) for p in sources[1:]]
    for src, link in zip(sources, links, strict=True):
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(src.resolve(), link)
    return links


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    shared = shared_data_dir()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cic",
        type=Path,
        default=shared / "cicids2017" / "engelen-sample",
        help="CICIDS2017 folder in the engelen profile (default: the shared sample)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "lab-cic")
    args = parser.parse_args(argv)
    try:
        links = combine(args.cic, args.out)
    except (OSError, FileNotFoundError) as err:
        print(f"lab.combine: {err}", file=sys.stderr)
        return 1
    print(f"lab.combine: {args.out}: {len(links)} linked files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
