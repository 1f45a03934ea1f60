"""Make a site baseline from captures: meter them, judge them with the sensor, record the flows.

A site that has captures of its own ordinary traffic (instead of running ``netsentry serve
--record-flows`` for N hours) can build the same recorded-flows folder from them:

    python scripts/site_baseline.py --out data/site CAPTURE... [--model models:/netsentry@champion]
    python -m pipeline.params +experiment=site data.site_dir=data/site && dvc repro

Every capture is metered in the model's flow profile and judged by ``netsentry classify
--record-flows OUT`` (the sensor's own command), and ``OUT/captures.json`` lists the captures, so the
model trained on them is tagged with them and ``benign_eval`` never counts them.

``--half 0|1 --set NAME`` instead takes one half of a benign set of ``lab/benign_captures.yaml``
(split by a hash of each capture's name, attacks left out): the other half stays for evaluation.
That is how the README's "lab + catalogue + site baseline" figure was made.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.meter_csv import read_meter_csv  # noqa: E402
from lab.benign_eval import benign_captures, load_manifest, model_profile_and_trained  # noqa: E402
from lab.labels import MeterError, meter, shared_data_dir  # noqa: E402


def half_of(name: str) -> int:
    """0 or 1: a stable split of captures by name."""
    return hashlib.sha256(name.encode()).digest()[0] & 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("captures", nargs="*", type=Path, help="captures of the site's ordinary traffic")
    p.add_argument("--out", type=Path, required=True, help="the recorded-flows folder to write")
    p.add_argument("--model", default="models:/netsentry@champion", help="the model that judges them")
    p.add_argument("--set", help="a set of lab/benign_captures.yaml instead of CAPTURE...")
    p.add_argument("--half", type=int, choices=(0, 1), help="with --set: which half of its captures")
    args = p.parse_args(argv)
    if bool(args.set) == bool(args.captures) or (args.set and args.half is None):
        p.error("give CAPTURE... or --set NAME --half 0|1")
    if args.out.exists() and any(args.out.iterdir()):
        p.error(f"{args.out} is not empty")
    captures = list(args.captures)
    if args.set:
        spec = load_manifest()[args.set]
        kept, _ = benign_captures(shared_data_dir() / spec["folder"], spec, set())
        captures = [c for c in kept if half_of(c.name) == args.half]
    profile, _ = model_profile_and_trained(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        frames, used = [], []
        for i, capture in enumerate(captures):
            csv = Path(tmp) / f"{i}.csv"
            try:
                meter(capture, profile, csv, accept=(0, 3))
            except MeterError as err:
                print(f"site_baseline: {capture.name} left out: {str(err).splitlines()[-1]}", file=sys.stderr)
                continue
            frames.append(read_meter_csv(csv))
            used.append(capture.name)
        flows = Path(tmp) / "flows.csv"
        pd.concat(frames, ignore_index=True).to_csv(flows, index=False)
        cmd = [sys.executable, "-m", "netsentry.cli", "classify", str(flows), "--model", args.model,
               "--record-flows", str(args.out.resolve()), "serve.alerts.sinks.eve.enabled=false"]
        run = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True)
    if run.returncode != 0:
        print(f"site_baseline: classify failed: {run.stderr.strip()[-500:]}", file=sys.stderr)
        return 1
    (args.out / "captures.json").write_text(json.dumps(sorted(used), indent=1) + "\n")
    print(run.stdout.strip())
    print(f"site_baseline: {len(used)} captures -> {args.out} (captures.json lists them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
