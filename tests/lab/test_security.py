"""The lab as root on a hostile machine (root only): planted links, foreign namespaces, the login account.

A work folder another user owns (or can write) is refused in one line before anything is written; in
our own folder, links named like the lab's files are replaced, never followed; `lab down` removes only
the lab's own namespaces and the victim's login account; no password is written in the code.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import services, workdir
from lab.catalogue import topology
from lab.netns import LabUsageError
from tests.lab.labtools import account_exists, needs_lab, netsentry

LAB = Path(__file__).resolve().parents[2] / "lab"
#: every name the lab writes in its work folder
LAB_FILES = (
    "web.log",
    "ssh.log",
    "ftp.log",
    "dns.log",
    "sshd_config",
    "vsftpd.conf",
    "vsftpd.log",
    "ssh_host_ed25519_key",
    "ssh_host_ed25519_key.pub",
    "sshd.pid",
    "app.db",
)
FOREIGN_NS = "nsLocalVPN"


@contextlib.contextmanager
def foreign_namespace(name: str) -> Iterator[subprocess.Popen]:
    """A namespace ``name`` that is not the lab's, with a process running in it; removed on exit."""
    subprocess.run(["ip", "netns", "add", name], check=True)
    proc = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "600"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(5)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def plant(folder: Path, targets: Path) -> dict[Path, tuple[bytes, int]]:
    """Root-owned files in ``targets`` and links to them in ``folder`` named like the lab's files."""
    targets.mkdir()
    before = {}
    for name in LAB_FILES:
        target = targets / name
        target.write_bytes(b"root's own " + name.encode())
        target.chmod(0o640)
        (folder / name).symlink_to(target)
        before[target] = (target.read_bytes(), target.stat().st_mode)
    return before


def unchanged(before: dict[Path, tuple[bytes, int]]) -> dict[str, tuple]:
    """The targets whose content or mode changed (empty if none)."""
    return {
        t.name: (t.read_bytes(), oct(t.stat().st_mode))
        for t, (data, mode) in before.items()
        if (t.read_bytes(), t.stat().st_mode) != (data, mode)
    }


@needs_lab
@pytest.mark.parametrize("kind", ["owned-by-nobody", "group-writable", "a-link"])
def test_unsafe_work_folder_is_refused_in_one_line(tmp_path: Path, kind: str) -> None:
    nobody = pwd.getpwnam("nobody")
    folder = tmp_path / "work"
    folder.mkdir(mode=0o755)
    before = plant(folder, tmp_path / "targets")
    if kind == "owned-by-nobody":
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    elif kind == "group-writable":
        folder.chmod(0o770)
    else:
        (tmp_path / "link").symlink_to(folder)
        folder = tmp_path / "link"
    with pytest.raises(LabUsageError, match="refusing"):
        workdir.private_dir(folder)
    try:
        up = netsentry("lab", "up", "--work", str(folder))
        run = netsentry("lab", "run", "--scenario", "nmap-syn-t4", "--out", str(folder))
    finally:
        services.teardown()
    for proc in (up, run):
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "refusing" in proc.stderr, proc.stderr
    assert unchanged(before) == {}


def test_new_work_folders_are_private(tmp_path: Path) -> None:
    made = workdir.private_dir(None)
    try:
        assert made.stat().st_mode & 0o777 == 0o700 and made.stat().st_uid == os.geteuid()
    finally:
        made.rmdir()
    named = workdir.private_dir(tmp_path / "a" / "work")
    assert named.stat().st_mode & 0o777 == 0o700


@needs_lab
def test_a_parent_another_user_owns_is_refused_unless_they_ran_sudo(tmp_path: Path, monkeypatch) -> None:
    nobody = pwd.getpwnam("nobody")
    parent = tmp_path / "theirs"
    parent.mkdir()
    os.chown(parent, nobody.pw_uid, nobody.pw_gid)
    monkeypatch.delenv("SUDO_UID", raising=False)
    with pytest.raises(LabUsageError, match="owned by uid"):
        workdir.private_dir(parent / "run")
    assert not (parent / "run").exists()
    # `sudo netsentry lab run` in one's own checkout: that user could be root anyway
    monkeypatch.setenv("SUDO_UID", str(nobody.pw_uid))
    run = workdir.private_dir(parent / "run", mode=workdir.RUN_MODE)
    assert run.stat().st_mode & 0o777 == 0o755 and run.stat().st_uid == 0


def test_no_login_password_in_the_code() -> None:
    code = [p for p in LAB.rglob("*") if p.suffix in (".py", ".yaml", ".sh")]
    assert code
    for path in code:
        text = path.read_text()
        assert "password1" not in text, path
        # a hard-coded login password for the victim's account would be a string literal beside it
        assert not re.search(r"LAB_PASSWORD\s*=\s*['\"]", text), path


@pytest.fixture(scope="module")
def up_and_down(tmp_path_factory: pytest.TempPathFactory):
    """`lab up` in our own folder holding planted links, with a foreign namespace running, then `lab down`."""
    tmp = tmp_path_factory.mktemp("labsec")
    folder = tmp / "work"
    folder.mkdir(mode=0o700)
    before = plant(folder, tmp / "targets")
    try:
        with foreign_namespace(FOREIGN_NS) as foreign:
            up = netsentry("lab", "up", "--work", str(folder))
            state = {
                "account_during": account_exists(),
                "links_after_up": [n for n in LAB_FILES if (folder / n).is_symlink()],
                "words": (folder / "words" / "passwords.txt").read_text() if up.returncode == 0 else "",
            }
            down = netsentry("lab", "down")
            time.sleep(0.2)
            state.update(
                up=up,
                down=down,
                before=before,
                foreign_alive=foreign.poll() is None,
                foreign_listed=FOREIGN_NS
                in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout,
                account_after=account_exists(),
            )
            yield state
    finally:
        services.teardown()


@needs_lab
def test_links_in_our_own_folder_are_replaced_not_followed(up_and_down) -> None:
    assert up_and_down["up"].returncode == 0, up_and_down["up"].stderr
    assert unchanged(up_and_down["before"]) == {}
    assert up_and_down["links_after_up"] == []


@needs_lab
def test_down_spares_a_namespace_that_only_shares_the_prefix(up_and_down) -> None:
    assert up_and_down["down"].returncode == 0, up_and_down["down"].stderr
    assert up_and_down["foreign_listed"] and up_and_down["foreign_alive"]


@needs_lab
def test_login_account_lives_only_between_up_and_down(up_and_down) -> None:
    assert up_and_down["account_during"] and not up_and_down["account_after"]
    # the run's password is random and is the one the brute-force wordlist holds
    password = up_and_down["words"].splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{24}", password), password


@needs_lab
def test_a_foreign_account_of_the_same_name_is_not_taken_over(tmp_path: Path) -> None:
    subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", "nsluser"], check=True)
    try:
        proc = netsentry("lab", "up", "--work", str(tmp_path / "w"))
        down = netsentry("lab", "down")
        assert proc.returncode == 2 and "not made by the lab" in proc.stderr, proc.stderr
        assert down.returncode == 0 and account_exists()
    finally:
        subprocess.run(["userdel", "nsluser"], capture_output=True)
        services.teardown()


CATALOGUE_FOREIGN_NS = "nsCatLocalVPN"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")
def test_catalogue_down_spares_a_namespace_that_only_shares_its_prefix() -> None:
    """The catalogue deletes and kills in its own exact namespace names, not in every ``nsCat...``."""
    with foreign_namespace(CATALOGUE_FOREIGN_NS) as foreign:
        time.sleep(0.3)
        assert topology.our_namespaces() == []
        assert topology.down() == []
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert CATALOGUE_FOREIGN_NS in listed.split()
        assert foreign.poll() is None
