"""The victim's services: the web app, OpenSSH, vsftpd and dnsmasq, each a foreground daemon in the victim ns.

Each daemon is started with ``ip netns exec`` (which execs), so the PID we hold is the daemon's own;
:func:`lab.netns.down` kills everything in the namespaces anyway.  Config files, keys, the database
and the files served live in the lab's work directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from lab.netns import VICTIM, LabError, exec_in, run

AGENTS = Path(__file__).resolve().parent / "agents"
#: Debian's interpreter (flask/paramiko-free stdlib scripts, but never the project's venv inside the lab)
SYSTEM_PYTHON = "/usr/bin/python3"
LAB_USER, LAB_PASSWORD = "nsluser", "password1"
#: TCP services and the port each listens on
PORTS = {"web": 80, "ssh": 22, "ftp": 21, "dns": 53}

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


def ensure_user() -> None:
    """Create the victim's login user (shared by SSH and FTP) with its known password."""
    if run(["id", LAB_USER], check=False).returncode != 0:
        run(["useradd", "-m", "-s", "/bin/bash", LAB_USER])
    subprocess.run(["chpasswd"], input=f"{LAB_USER}:{LAB_PASSWORD}\n", text=True, check=True)
    home = Path(f"/home/{LAB_USER}")
    for name, kb in (("file.bin", 512), ("report.txt", 8), ("big.bin", 4096)):
        path = home / name
        if not path.exists():
            path.write_bytes(os.urandom(kb * 1024))
            shutil.chown(path, LAB_USER, LAB_USER)
    (home / "uploads").mkdir(exist_ok=True)
    shutil.chown(home / "uploads", LAB_USER, LAB_USER)


def _write_configs(work: Path) -> None:
    key = work / "ssh_host_ed25519_key"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    key.chmod(0o600)
    (work / "sshd_config").write_text(SSHD_CONFIG.format(addr=VICTIM.address, work=work))
    vsftpd = work / "vsftpd.conf"
    vsftpd.write_text(VSFTPD_CONFIG.format(addr=VICTIM.address, work=work))
    os.chown(vsftpd, 0, 0)  # vsftpd exits silently (rc 2) if its config is not owned by root
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


def start(work: Path) -> dict[str, int]:
    """Start every victim service and wait until each listens; return ``{service: pid}``."""
    work.mkdir(parents=True, exist_ok=True)
    ensure_user()
    _write_configs(work)
    pids = {}
    for name, cmd in service_commands(work).items():
        log = (work / f"{name}.log").open("w")
        proc = subprocess.Popen(
            exec_in(VICTIM, cmd), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        pids[name] = proc.pid
    for name, port in PORTS.items():
        if not _listening(port, 10):
            tail = (work / f"{name}.log").read_text()[-400:]
            raise LabError(f"victim service {name} is not listening on port {port}: {tail.strip()}")
    return pids
