"""Helpers shared by the root-only lab tests: the command line, the lab's live processes, the skip rule."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

#: skip unless root with the lab's packages (the tests build real namespaces and daemons)
needs_lab = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "nmap", "hydra", "tcpdump", "sshpass")),
    reason="needs root and the lab's packages (scripts/bootstrap.sh test)",
)
LAB_USER = "nsluser"


def netsentry(*args: str, **kw) -> subprocess.CompletedProcess:
    """Run ``netsentry ARGS`` to completion, capturing its output."""
    cmd = [sys.executable, "-m", "netsentry.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def lab_processes(marker: str, subnet: str = "10.99.7.") -> list[str]:
    """Command lines of live processes that mention ``subnet`` (the attack lab's by default) or ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if (subnet in cmd or marker in cmd) and "pytest" not in cmd:
                found.append(cmd)
    return found


def account_exists(user: str = LAB_USER) -> bool:
    """True if ``user`` is in the password database."""
    return subprocess.run(["id", user], capture_output=True).returncode == 0
