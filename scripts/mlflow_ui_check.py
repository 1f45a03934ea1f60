"""Open the MLflow UI on a tracking store in headless Chromium, save screenshots, check what users see.

Starts ``mlflow server`` on loopback against the SQLite store (default: the project's
``mlflow.db``), then renders two pages as a user opens them and checks the rendered page text:

* the experiment page in the Model training view (``?workflowType=machine_learning``: MLflow
  3.17 keeps one GenAI / Model training switch for all experiments, GenAI by default; the
  experiment's ``mlflow.experimentKind`` tag is checked too): the runs show the datasets each
  one saw (the Dataset column) and the ``dvc_experiment`` group tags when present;
* the registered version page of ``netsentry@champion``: its description (data, profile, split,
  test figures).

Screenshots go to ``--out`` (default ``plots/mlflow-ui/``).  Exit status 0 when every check
holds, 1 otherwise (each failed check is listed), 2 for a usage error (no store, no Chromium).
Needs Chromium (``apt-get install chromium``).
Usage: .venv/bin/python scripts/mlflow_ui_check.py [--store mlflow.db] [--out DIR] [--port 5055]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(store: Path, port: int, log: Path) -> subprocess.Popen:
    """``mlflow server`` on 127.0.0.1:port over ``store``; returns once /health answers."""
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{store}", "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300  # a loaded machine needs minutes
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit(f"mlflow server did not start; see {log}")


def render(chromium: str, url: str, png: Path, profile: Path) -> str:
    """Screenshot ``url`` to ``png`` and return the rendered page's DOM (after its scripts ran)."""
    common = [
        *(chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"),
        *(f"--user-data-dir={profile}", "--window-size=1600,1000", "--virtual-time-budget=20000"),
    ]
    subprocess.run([*common, f"--screenshot={png}", url], capture_output=True, timeout=300, check=True)
    dom = subprocess.run(
        [*common, "--dump-dom", url], capture_output=True, text=True, timeout=300, check=True
    )
    return dom.stdout


def main(argv: list[str] | None = None) -> int:
    """Run the checks; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, default=ROOT / "mlflow.db", help="the SQLite tracking store")
    ap.add_argument("--out", type=Path, default=ROOT / "plots" / "mlflow-ui", help="screenshot folder")
    ap.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    ap.add_argument("--model", default="netsentry", help="registered model name")
    ap.add_argument("--alias", default="champion", help="alias of the version to open")
    args = ap.parse_args(argv)
    chromium = next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)
    if not args.store.is_file():
        print(
            f"mlflow_ui_check: no tracking store at {args.store} (train first: make repro)", file=sys.stderr
        )
        return 2
    if chromium is None:
        print("mlflow_ui_check: Chromium not found (apt-get install chromium)", file=sys.stderr)
        return 2
    from mlflow.tracking import MlflowClient

    args.out.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="netsentry-ui-") as tmp:
        server = start_server(args.store.resolve(), port, Path(tmp) / "server.log")
        try:
            client = MlflowClient(tracking_uri=base)
            version = client.get_model_version_by_alias(args.model, args.alias)
            run = client.get_run(version.run_id)
            exp = client.get_experiment(run.info.experiment_id)
            datasets = [d.dataset.name for d in run.inputs.dataset_inputs]
            if exp.tags.get("mlflow.experimentKind") != "custom_model_development":
                failures.append(
                    f"experiment {exp.name!r} has no training kind tag: the UI opens its GenAI view"
                )
            if not datasets:
                failures.append("the registering run logged no dataset (empty Dataset column)")
            if not version.description:
                failures.append(f"version {version.version} has no description")

            # MLflow 3.17's UI keeps one GenAI / Model training switch for all experiments
            # (default GenAI); this link selects Model training, as the README says
            url = f"{base}/#/experiments/{exp.experiment_id}?workflowType=machine_learning"
            page = render(chromium, url, args.out / "experiment.png", Path(tmp) / "p1")
            for name in datasets:
                if name not in page:
                    failures.append(f"the experiment page does not show the dataset {name!r}")
            if "train" not in page:
                failures.append("the experiment page lists no `train` run")
            group = run.data.tags.get("dvc_experiment")
            if group and group not in page:
                failures.append(f"the experiment page does not show the group tag {group!r}")

            page = render(chromium, f"{base}/#/models/{args.model}/versions/{version.version}",
                          args.out / "model-version.png", Path(tmp) / "p2")  # fmt: skip
            for needle in ("macro-F1", "Split", "meter profile"):
                if needle not in page:
                    failures.append(f"the version page does not show its description ({needle!r} missing)")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"screenshots: {args.out / 'experiment.png'}, {args.out / 'model-version.png'}")
    print("mlflow_ui_check: " + ("all checks hold" if not failures else f"{len(failures)} check(s) failed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
