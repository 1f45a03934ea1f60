"""``python -m lab.catalogue``: list the benign catalogue's activities, or run it (root)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from lab.catalogue import run as catalogue_run
from lab.catalogue.activities import ACTIVITIES
from lab.labels import PROFILES, MeterError
from lab.netns import LabError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lab.catalogue", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the activities, their client tools, packages and expected protocol/port")
    r = sub.add_parser("run", help="run the catalogue and write labelled flows (needs root)")
    r.add_argument("--out", type=Path, required=True, help="run folder: capture, logs, flows, manifest.json")
    r.add_argument("--seed", type=int, required=True, help="seed of every user's choices and think times")
    r.add_argument("--duration", type=float, default=300.0, help="seconds of traffic (default 300)")
    r.add_argument("--only", default="", help="comma-separated activity names (default: all)")
    relabel = sub.add_parser("label", help="meter and attribute a run's capture again (no root needed)")
    relabel.add_argument("run_dir", type=Path, help="a folder written by `run`")
    for q in (r, relabel):
        q.add_argument(
            "--dataset",
            type=Path,
            help="also copy the flows and manifest into this dataset folder "
            "(<profile>/flows.NAME.lab-<profile>.csv.gz, NAME.json)",
        )
        q.add_argument("--name", default="catalogue", help="NAME of the files copied with --dataset")
    return p


def _list() -> int:
    for a in ACTIVITIES:
        proto, port = a.expect
        extra = f" pypi: {','.join(a.pypi)}" if a.pypi else ""
        print(
            f"{a.name:14} {a.tool:28} proto {proto:>2} port {port if port else '-':>5}  "
            f"debian: {','.join(a.debian) or '-'}{extra}"
        )
    return 0


def _copy(out: Path, dataset: Path, name: str) -> None:
    for profile in PROFILES:
        dest = catalogue_run.flows_file(dataset, profile, name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(catalogue_run.flows_file(out, profile), dest)
        print(f"catalogue: {dest} ({dest.stat().st_size / 1e6:.2f} MB)")
    shutil.copyfile(out / "manifest.json", dataset / f"{name}.json")


def main(argv: list[str] | None = None) -> int:
    """Entry point; a user mistake is one line on stderr and status 2."""
    args = _parser().parse_args(argv)
    if args.command == "list":
        return _list()
    if args.name and not args.name.replace("-", "").replace("_", "").isalnum():
        print(f"catalogue: --name {args.name!r}: letters, digits, - and _ only", file=sys.stderr)
        return 2
    if args.command == "label":
        try:
            manifest = catalogue_run.relabel(args.run_dir)
        except (LabError, MeterError) as exc:
            print(f"catalogue: {exc}", file=sys.stderr)
            return 2
        print(f"catalogue: {args.run_dir}: {manifest['flows']['clean']['rows']:,} flows (clean)")
        if args.dataset:
            _copy(args.run_dir, args.dataset, args.name)
        return 0
    if args.duration <= 0:
        print("catalogue: --duration must be positive", file=sys.stderr)
        return 2
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    try:
        catalogue_run.run_catalogue(args.out, args.seed, args.duration, only)
    except (LabError, MeterError) as exc:
        print(f"catalogue: {exc}", file=sys.stderr)
        return 2
    except catalogue_run.Stopped:
        print("catalogue: stopped by SIGTERM (network torn down; no flows written)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("catalogue: interrupted (network torn down)", file=sys.stderr)
        return 130
    if args.dataset:
        _copy(args.out, args.dataset, args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
