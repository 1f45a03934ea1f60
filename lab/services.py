"""The victim's services: the web app, OpenSSH, vsftpd and dnsmasq, each a foreground daemon in the victim ns.

Each daemon is started with ``ip netns exec`` (which execs), so the PID we hold is the daemon's own;
:func:`lab.netns.down` kills everything in the namespaces anyway.  Config files, keys, the database,
the per-run wordlists and the daemons' logs live in the lab's private work folder (:mod:`lab.workdir`).
The victim's login account exists only between ``lab up`` and ``lab down``, with a password drawn
for that run: no password is written in the code.
"""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab import netns, workdir
from lab.netns import VICTIM, LabError, LabUsageError, exec_in, run

AGENTS = Path(__file__).resolve().parent / "agents"
WORDLISTS = Path(__file__).resolve().parent / "wordlists"
#: Debian's interpreter (flask/paramiko-free stdlib scripts, but never the project's venv inside the lab)
SYSTEM_PYTHON = "/usr/bin/python3"
LAB_USER = "nsluser"
#: the account's comment (GECOS): the lab only ever changes or removes an account that carries it
USER_MARK = "netsentry lab victim (removed by lab down)"
#: TCP services and the port each listens on
PORTS = {"web": 80, "ssh": 22, "ftp": 21, "dns": 53}
#: files the daemons write themselves in the work folder (removed first, so no stale link is followed)
DAEMON_FILES = ("sshd.pid", "vsftpd.log", "app.db", "app.db-journal", "ssh_host_ed25519_key.pub")


@dataclass(frozen=True)
class Victim:
    """The running victim: its daemons' PIDs and this run's login password."""

    pids: dict[str, int]
    password: str


SSHD_CONFIG = """ListenAddress {addr}:22
HostKey {work}/ssh_host_ed25519_key
PidFile {work}/sshd.pid
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM yes
MaxStartups 200:30:400
MaxAuthTries 6
LoginGraceTime 20
UseDNS no
"""

VSFTPD_CONFIG = """listen=YES
listen_ipv6=NO
listen_address={addr}
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
pam_service_name=vsftpd
secure_chroot_dir=/var/run/vsftpd/empty
pasv_enable=YES
pasv_min_port=40000
pasv_max_port=40100
pasv_address={addr}
seccomp_sandbox=NO
xferlog_enable=YES
vsftpd_log_file={work}/vsftpd.log
max_clients=300
max_per_ip=150
"""


def _account_mark() -> str | None:
    """The lab account's comment, or None if there is no such account."""
    try:
        return pwd.getpwnam(LAB_USER).pw_gecos
    except KeyError:
        return None


def check_account() -> None:
    """Refuse to go on if an account named :data:`LAB_USER` exists that the lab did not make."""
    mark = _account_mark()
    if mark is not None and mark != USER_MARK:
        raise LabUsageError(
            f"an account {LAB_USER} exists that was not made by the lab: refusing to take it over "
            f"(remove it with `userdel {LAB_USER}` if it is a left-over)"
        )


def ensure_user(password: str) -> None:
    """Create the victim's login user (shared by SSH and FTP) with this run's password, and its files."""
    check_account()
    if _account_mark() is None:
        run(["useradd", "-m", "-c", USER_MARK, "-s", "/bin/bash", LAB_USER])
    else:  # left locked by an earlier `lab down`: unexpire it and give its shell back
        run(["usermod", "-e", "", "-s", "/bin/bash", LAB_USER])
    subprocess.run(["chpasswd"], input=f"{LAB_USER}:{password}\n", text=True, check=True)
    account = pwd.getpwnam(LAB_USER)
    home = Path(account.pw_dir)
    # the home belongs to the account the attackers log into: never follow what may be planted there
    for name, kb in (("file.bin", 512), ("report.txt", 8), ("big.bin", 4096)):
        fd = workdir.create(home / name, 0o644)
        os.fchown(fd, account.pw_uid, account.pw_gid)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(kb * 1024))
    uploads = home / "uploads"
    if os.path.islink(uploads) or (os.path.lexists(uploads) and not uploads.is_dir()):
        uploads.unlink()
    uploads.mkdir(exist_ok=True)
    os.chown(uploads, account.pw_uid, account.pw_gid, follow_symlinks=False)


def remove_user() -> bool:
    """Remove the lab's login account and its home, or lock it if a process still runs as it.

    Returns False if there was no lab account.  Retries while another ``lab`` command (a concurrent
    ``lab down``) holds the password files.
    """
    if _account_mark() != USER_MARK:
        return False
    for _ in range(20):
        code = run(["userdel", "-r", LAB_USER], check=False).returncode
        if code in (0, 12) or _account_mark() != USER_MARK:  # 12: the home could not be removed
            return True
        if code == 8:  # a process still runs as the account: lock it (no password, expired, no shell)
            lock = ["usermod", "-L", "-e", "1", "-s", "/usr/sbin/nologin", LAB_USER]
            if run(lock, check=False).returncode == 0:
                return True
        time.sleep(0.2)
    raise LabError(f"could not remove or lock the lab's login account {LAB_USER}")


def write_wordlists(work: Path, password: str) -> Path:
    """The run's copy of the wordlists, with this run's password last in ``passwords.txt``; its folder."""
    words = workdir.subdir(work, "words")
    for src in WORDLISTS.glob("*.txt"):
        text = src.read_text()
        if src.name == "passwords.txt":
            text = text.rstrip("\n") + f"\n{password}\n"
        workdir.write(words / src.name, text)
    return words


def _write_configs(work: Path) -> None:
    for name in DAEMON_FILES:
        workdir.remove(work / name)
    key = work / "ssh_host_ed25519_key"
    workdir.remove(key)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    workdir.secure_existing(key, 0o600)
    workdir.write(work / "sshd_config", SSHD_CONFIG.format(addr=VICTIM.address, work=work))
    # vsftpd exits silently (rc 2) if its config is not owned by root: we are root, the file is new
    workdir.write(work / "vsftpd.conf", VSFTPD_CONFIG.format(addr=VICTIM.address, work=work))
    Path("/run/sshd").mkdir(exist_ok=True)
    Path("/var/run/vsftpd/empty").mkdir(parents=True, exist_ok=True)


def service_commands(work: Path) -> dict[str, list[str]]:
    """The argv of each victim daemon (all in the foreground)."""
    addr = VICTIM.address
    return {
        "web": [SYSTEM_PYTHON, str(AGENTS / "webapp.py"), addr, "80", str(work / "app.db")],
        "ssh": ["/usr/sbin/sshd", "-D", "-e", "-f", str(work / "sshd_config")],
        "ftp": ["/usr/sbin/vsftpd", str(work / "vsftpd.conf")],
        "dns": [
            "dnsmasq",
            "-k",
            "-C",
            "/dev/null",
            "--port=53",
            f"--listen-address={addr}",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            "--log-facility=-",
            f"--address=/lab.test/{addr}",
            f"--host-record=www.lab.test,{addr}",
            "--txt-record=lab.test,hello",
            f"--address=/#/{addr}",
        ],
    }


def _listening(port: int, timeout: float) -> bool:
    """True once something accepts TCP connections on the victim's ``port`` (checked from inside the ns)."""
    deadline = time.monotonic() + timeout
    probe = f"import socket; socket.create_connection(('{VICTIM.address}', {port}), 1).close()"
    while time.monotonic() < deadline:
        if run(exec_in(VICTIM, [SYSTEM_PYTHON, "-c", probe]), check=False).returncode == 0:
            return True
        time.sleep(0.2)
    return False


def start(work: Path) -> Victim:
    """Start every victim service and wait until each listens (``work`` is a checked private folder)."""
    password = secrets.token_hex(12)
    ensure_user(password)
    write_wordlists(work, password)
    _write_configs(work)
    pids = {}
    for name, cmd in service_commands(work).items():
        with workdir.open_new(work / f"{name}.log") as log:
            proc = subprocess.Popen(
                exec_in(VICTIM, cmd), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        pids[name] = proc.pid
    for name, port in PORTS.items():
        if not _listening(port, 10):
            tail = (work / f"{name}.log").read_text()[-400:]
            raise LabError(f"victim service {name} is not listening on port {port}: {tail.strip()}")
    return Victim(pids, password)


def teardown() -> list[str]:
    """Remove the testbed (:func:`lab.netns.down`) and the victim's login account; the namespaces deleted."""
    deleted = netns.down()
    remove_user()
    return deleted
