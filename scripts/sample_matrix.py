"""Train every reported configuration on the default data and print one table of test figures.

Configurations: split (stratified, conversation, session) x Destination Port (off, on) x setting (tuned:
the pipeline's own selection and sweep; study: +experiment=study).  Each runs `dvc repro` in a
throwaway copy of the project (its own MLflow store), so the work tree is left alone.
Usage: .venv/bin/python scripts/sample_matrix.py [--out results.json] [extra Hydra overrides...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path) -> None:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(cwd)}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="write all results as JSON here")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides applied to every configuration")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from pipeline.io import project_path
    from pipeline.params import compose_params
    from pipeline.scratch import copy_project

    # the copy lives elsewhere: pin the input folder to where the project's config points
    data = project_path(compose_params(args.overrides)["data"]["input_dir"]).resolve()
    results = []
    with tempfile.TemporaryDirectory(prefix="netsentry-matrix-") as tmp:
        proj = copy_project(Path(tmp) / "proj")
        for split in ("stratified", "conversation", "session"):
            for port in (False, True):
                for setting in ("tuned", "study"):
                    over = [f"split={split}", f"features.use_destination_port={str(port).lower()}"]
                    over += ["+experiment=study"] if setting == "study" else []
                    t0 = time.time()
                    run(
                        [
                            str(BIN / "python"),
                            "-m",
                            "pipeline.params",
                            *over,
                            f"data.input_dir={data}",
                            *args.overrides,
                        ],
                        proj,
                    )
                    run([str(BIN / "dvc"), "repro"], proj)
                    m = json.loads((proj / "metrics/train.json").read_text())
                    feats = json.loads((proj / "data/select/features.json").read_text())["selected"]
                    res = {
                        "split": split,
                        "destination_port": port,
                        "setting": setting,
                        "f1_macro": m["f1_macro"],
                        "accuracy": m["accuracy"],
                        "max_depth": m["max_depth"],
                        "n_estimators": m["n_estimators"],
                        "features": feats,
                        "per_class": {
                            c: {"f1": v["f1"], "support": v["support"]} for c, v in m["per_class"].items()
                        },
                        "seconds": round(time.time() - t0, 1),
                    }
                    results.append(res)
                    print(
                        f"{split:12s} port={'on ' if port else 'off'} {setting:5s}: "
                        f"macro-F1 {m['f1_macro']:.4f} "
                        f"acc {m['accuracy']:.4f} ({len(feats)} features, depth {m['max_depth']}, "
                        f"{m['n_estimators']} trees) {res['seconds']} s",
                        flush=True,
                    )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
