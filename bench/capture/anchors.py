"""The anchors' own virtual environment, bench/out/anchors-venv, pinned by anchors.txt.

Kept apart from the project venv so that NFStream, cicflowmeter and their old scapy/numpy pins
never leak into the project's dependencies.  Rebuilt only when anchors.txt changes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "anchors.txt"
VENV = HERE.parent / "out" / "anchors-venv"


def venv_python() -> Path:
    """Path of the anchors venv's interpreter."""
    return VENV / "bin" / "python"


def ensure_venv(log=print) -> Path:
    """Create/refresh the anchors venv if anchors.txt changed since the last install; return its python."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = VENV / ".anchors-sha256"
    if venv_python().exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return venv_python()
    log(f"installing anchor tools into {VENV} (pinned by {REQUIREMENTS.name}) ...")
    if VENV.exists():
        shutil.rmtree(VENV)
    # The base interpreter, not the project venv's, so that nothing is inherited from it.
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    r = subprocess.run([str(venv_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "-r", str(REQUIREMENTS)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"pip install -r {REQUIREMENTS} failed:\n{r.stderr[-3000:]}")
    stamp.write_text(digest + "\n")
    return venv_python()


def cicflowmeter_cmd(pcap: Path, csv_out: Path) -> list[str]:
    """Command line of the Python cicflowmeter on `pcap`, writing CSV to `csv_out`."""
    return [str(VENV / "bin" / "cicflowmeter"), "-f", str(pcap), "-c", str(csv_out)]


def nfstream_cmd(pcap: Path) -> list[str]:
    """Command line of the NFStream runner on `pcap`."""
    return [str(venv_python()), str(HERE / "nfstream_run.py"), str(pcap)]
