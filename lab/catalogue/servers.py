"""The catalogue's servers: config files written into the work folder, daemons run in the foreground.

Each :class:`Service` writes its configuration (``setup``, in the root namespace: files only) and
returns the daemons to start in a namespace (``ip netns exec`` execs, so the PID held is the
daemon's).  Services listen on every address of the server, and each activity's clients use the
activity's own address, which is how flows are told apart.  Several activities share a service (one
nginx, one sshd, one unbound).  Nothing is written outside the work folder except the catalogue user
(:func:`ensure_user`) and the runtime folders some daemons insist on (``/run/sshd``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab.catalogue import topology
from lab.catalogue.activity import PASSWORD, USER
from lab.netns import run

AGENTS = Path(__file__).resolve().parent / "agents"
SYSTEM_PYTHON = "/usr/bin/python3"
#: aioquic is a PyPI package: the QUIC agent runs on the project's interpreter, the rest on Debian's
VENV_PYTHON = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "python")
PG_BIN = "/usr/lib/postgresql/15/bin"
#: addresses the DHCP server hands out (first and last host octet)
DHCP_RANGE = (200, 220)


@dataclass(frozen=True)
class Env:
    """The work folder and every activity's index (for the addresses a config must name)."""

    work: Path
    index: dict[str, int]

    def addr(self, activity: str) -> str:
        """IPv4 address of an activity (empty if it is not in this run)."""
        return topology.alias(self.index[activity]) if activity in self.index else ""

    def names(self) -> dict[str, str]:
        """``<activity>.cat.test`` -> its IPv4 address, for the DNS server's zone."""
        return {name: topology.alias(i) for name, i in self.index.items()}


@dataclass(frozen=True)
class Daemon:
    """A foreground server process: where, argv, when it is ready, what to run once it is."""

    name: str
    argv: list[str]
    host: str = "srv"
    #: (protocol, address, port) checked before traffic starts; None: a fixed short wait
    ready: tuple[str, str, int] | None = None
    after: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class Service:
    """Files to write and daemons to start for one server program."""

    setup: Callable[[Env], None]
    daemons: Callable[[Env], list[Daemon]]


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def _chown_tree(path: Path, user: str) -> None:
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            shutil.chown(Path(root) / name, user, user)
    shutil.chown(path, user, user)


def _random_file(path: Path, size: int, seed: str) -> None:
    """Deterministic pseudo-random bytes (a seeded hash chain: no /dev/urandom, same file every run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = hashlib.sha256(seed.encode()).digest() * 2048  # 64 KiB
    with path.open("wb") as f:
        for i in range(0, size, len(block)):
            f.write(hashlib.sha256(block[:32] + i.to_bytes(8, "big")).digest() + block[32 : size - i])


# --- files every service shares -------------------------------------------------------------------


def setup_common(env: Env) -> None:
    """Certificate, the catalogue user, the web content, a bare git repository."""
    w = env.work
    if not (w / "cert.pem").exists():
        run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(w / "key.pem"),
                "-out",
                str(w / "cert.pem"),
                "-days",
                "30",
                "-subj",
                "/CN=cat.test",
                "-addext",
                "subjectAltName=DNS:cat.test,DNS:*.cat.test",
            ]
        )
        (w / "key.pem").chmod(0o644)  # read by daemons that drop root (unbound, dovecot's login)
    ensure_user(w)
    _web_content(w / "www")
    _git_repo(w)


def ensure_user(work: Path) -> None:
    """The catalogue's login user (SSH, git, sftp), with files to fetch."""
    if run(["id", USER], check=False).returncode != 0:
        run(["useradd", "-m", "-s", "/bin/bash", USER])
    subprocess.run(["chpasswd"], input=f"{USER}:{PASSWORD}\n", text=True, check=True)
    home = Path(f"/home/{USER}")
    for name, size in (("notes.txt", 6_000), ("photo.jpg", 900_000), ("backup.tar", 6_000_000)):
        if not (home / name).exists():
            _random_file(home / name, size, name)
    (home / "uploads").mkdir(exist_ok=True)
    _chown_tree(home, USER)


#: pages of the web site and how many resources each references (a browser fetches them all)
PAGES = 12


def _web_content(www: Path) -> None:
    if (www / "index.html").exists():
        return
    for kind, n, size in (("css", 8, 12_000), ("js", 14, 40_000), ("img", 40, 60_000)):
        for i in range(n):
            ext = {"css": "css", "js": "js", "img": "png"}[kind]
            _random_file(www / "static" / f"{kind}{i}.{ext}", size // 2 + (i * 7919) % size, f"{kind}{i}")
    for p in range(PAGES):
        res = [f"/static/css{(p + i) % 8}.css" for i in range(2 + p % 3)]
        res += [f"/static/js{(p * 3 + i) % 14}.js" for i in range(3 + p % 5)]
        res += [f"/static/img{(p * 5 + i) % 40}.png" for i in range(6 + (p * 7) % 25)]
        tags = "\n".join(
            f'<link rel="stylesheet" href="{r}">'
            if r.endswith(".css")
            else f'<script src="{r}"></script>'
            if r.endswith(".js")
            else f'<img src="{r}">'
            for r in res
        )
        links = " ".join(f'<a href="/page{q}.html">page {q}</a>' for q in range(PAGES))
        _write(
            www / f"page{p}.html",
            f"<!doctype html><html><head><title>page {p}</title>\n{tags}\n</head>"
            f"<body><h1>Catalogue shop, page {p}</h1>{'<p>lorem ipsum dolor sit amet</p>' * (20 + p * 9)}"
            f"{links}</body></html>\n",
        )
        _write(www / "resources" / f"page{p}.txt", "\n".join(res) + "\n")
    shutil.copy(www / "page0.html", www / "index.html")
    for name, size in (("big-8M.bin", 8_000_000), ("big-24M.bin", 24_000_000), ("big-60M.bin", 60_000_000)):
        _random_file(www / "files" / name, size, name)
    (www / "upload").mkdir(exist_ok=True)
    shutil.chown(www / "upload", "www-data", "www-data")


def _git_repo(work: Path) -> None:
    """A bare repository with a little history, served over SSH, git:// and (dumb) HTTP."""
    bare = work / "git" / "project.git"
    if bare.exists():
        return
    src = work / "git-src"
    src.mkdir(parents=True)
    git = ["git", "-C", str(src), "-c", "user.name=Cat Dev", "-c", "user.email=dev@cat.test"]
    run(["git", "init", "-q", "-b", "main", str(src)])
    for i in range(6):
        _write(
            src / f"module{i}.py",
            "".join(f"def f{j}(x):\n    return x * {j} + {i}\n" for j in range(40 + i * 30)),
        )
        run([*git, "add", "."])
        run([*git, "commit", "-q", "-m", f"change {i}"])
    run(["git", "clone", "-q", "--bare", str(src), str(bare)])
    run(["git", "-C", str(bare), "config", "http.receivepack", "false"])
    run(["git", "-C", str(bare), "config", "daemon.receivepack", "true"])
    run(["git", "-C", str(bare), "update-server-info"])
    shutil.copytree(bare, work / "www" / "git" / "project.git")
    home_repo = Path(f"/home/{USER}/project.git")
    if home_repo.exists():
        shutil.rmtree(home_repo)
    shutil.copytree(bare, home_repo)
    _chown_tree(home_repo, USER)


# --- web: nginx (HTTP/1.1, HTTPS with HTTP/2, WebDAV PUT uploads, long keep-alive) -------------


NGINX = """user www-data;
worker_processes 1;
daemon off;
pid {w}/nginx.pid;
error_log {w}/logs/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log {w}/logs/nginx-access.log;
  client_body_temp_path {w}/nginx/body; proxy_temp_path {w}/nginx/proxy;
  fastcgi_temp_path {w}/nginx/fastcgi; uwsgi_temp_path {w}/nginx/uwsgi; scgi_temp_path {w}/nginx/scgi;
  types {{ text/html html; text/css css; application/javascript js; image/png png; text/plain txt; }}
  default_type application/octet-stream;
  sendfile on;
  keepalive_timeout 300s;
  keepalive_requests 10000;
  client_max_body_size 200m;
  server {{
    listen 80; listen [::]:80;
    listen 443 ssl http2; listen [::]:443 ssl http2;
    server_name _;
    ssl_certificate {w}/cert.pem; ssl_certificate_key {w}/key.pem;
    root {w}/www;
    location /upload/ {{ dav_methods PUT DELETE; create_full_put_path on; }}
  }}
}}
"""


def _nginx_setup(env: Env) -> None:
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (env.work / "nginx" / d).mkdir(parents=True, exist_ok=True)
    _write(env.work / "nginx.conf", NGINX.format(w=env.work))


def _nginx(env: Env) -> list[Daemon]:
    return [
        Daemon(
            "nginx",
            ["nginx", "-e", str(env.work / "logs" / "nginx-start.log"), "-c", str(env.work / "nginx.conf")],
            ready=("tcp", topology.SERVER.address, 443),
        )
    ]


# --- OpenSSH (interactive logins, scp/sftp, git over SSH, idle sessions) ------------------------------


SSHD = """ListenAddress 0.0.0.0:22
ListenAddress [::]:22
HostKey {w}/ssh_host_ed25519_key
PidFile {w}/sshd.pid
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM yes
MaxStartups 100:30:200
UseDNS no
Subsystem sftp internal-sftp
"""


def _sshd_setup(env: Env) -> None:
    key = env.work / "ssh_host_ed25519_key"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    key.chmod(0o600)
    _write(env.work / "sshd_config", SSHD.format(w=env.work))
    Path("/run/sshd").mkdir(exist_ok=True)


def _sshd(env: Env) -> list[Daemon]:
    return [
        Daemon(
            "sshd",
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(env.work / "sshd_config")],
            ready=("tcp", topology.SERVER.address, 22),
        )
    ]


# --- DNS: unbound (UDP, TCP, TLS) answering the catalogue's zone ----------------------------------


UNBOUND = """server:
  verbosity: 0
  interface-automatic: yes
  interface-automatic-ports: "53 853"
  tls-port: 853
  tls-service-key: "{w}/key.pem"
  tls-service-pem: "{w}/cert.pem"
  access-control: 10.98.0.0/24 allow
  access-control: fd00:98::/64 allow
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{w}"
  pidfile: "{w}/unbound.pid"
  use-syslog: no
  logfile: ""
  module-config: "iterator"
  local-zone: "." refuse
  local-zone: "cat.test." static
  local-data: "cat.test. 3600 IN SOA ns.cat.test. admin.cat.test. 1 3600 600 86400 300"
  local-data: "cat.test. 3600 IN MX 10 mail.cat.test."
  local-data: "cat.test. 3600 IN TXT \\"v=spf1 mx -all\\""
  local-data: "ns.cat.test. 3600 IN A {srv}"
  local-data: "mail.cat.test. 3600 IN A {mail}"
  local-data: "www.cat.test. 300 IN A {www}"
  local-data: "www.cat.test. 300 IN AAAA {www6}"
  local-data: "_imaps._tcp.cat.test. 3600 IN SRV 0 1 993 mail.cat.test."
{records}
remote-control:
  control-enable: no
"""


def _unbound_setup(env: Env) -> None:
    records = []
    for name, addr in env.names().items():
        records.append(f'  local-data: "{name}.cat.test. 300 IN A {addr}"')
        records.append(f'  local-data-ptr: "{addr} {name}.cat.test."')
    www = env.addr("https-h2") or topology.SERVER.address
    _write(
        env.work / "unbound.conf",
        UNBOUND.format(
            w=env.work,
            srv=topology.SERVER.address,
            mail=env.addr("smtp") or topology.SERVER.address,
            www=www,
            www6=topology.alias6(env.index.get("https-h2", 0)),
            records="\n".join(records),
        ),
    )


def _unbound(env: Env) -> list[Daemon]:
    return [
        Daemon(
            "unbound",
            ["unbound", "-d", "-c", str(env.work / "unbound.conf")],
            ready=("tcp", topology.SERVER.address, 853),
        )
    ]


# --- DHCP: dnsmasq's DHCP server (no DNS), busybox udhcpc on the laptop ---------------------------


UDHCPC_SCRIPT = """#!/bin/sh
# apply the lease to the interface only: no routes, no resolv.conf (the catalogue has no way out)
case "$1" in
  deconfig) ip -4 addr flush dev "$interface" ;;
  bound|renew) ip -4 addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface" ;;
esac
exit 0
"""


def _dhcp_setup(env: Env) -> None:
    _write(env.work / "udhcpc.sh", UDHCPC_SCRIPT, 0o755)


def _dhcp(env: Env) -> list[Daemon]:
    dns = env.addr("dns-udp") or topology.SERVER.address
    server = [
        "dnsmasq",
        "-k",
        "-C",
        "/dev/null",
        "--port=0",
        "--interface=eth0",
        "--bind-interfaces",
        f"--dhcp-range={topology.SUBNET}.{DHCP_RANGE[0]},{topology.SUBNET}.{DHCP_RANGE[1]},255.255.255.0,2m",
        "--dhcp-authoritative",
        f"--dhcp-leasefile={env.work}/dnsmasq.leases",
        "--pid-file=",
        "--log-facility=-",
        "--log-dhcp",
        "--dhcp-option=3",
        f"--dhcp-option=6,{dns}",
        "--dhcp-option=15,cat.test",
        "--user=root",
    ]
    client = [
        "udhcpc",
        "-f",
        "-i",
        "eth0",
        "-s",
        str(env.work / "udhcpc.sh"),
        "-p",
        str(env.work / "udhcpc.pid"),
        "-x",
        "hostname:laptop",
        "-t",
        "5",
        "-T",
        "2",
        "-A",
        "3",
        "-S",
    ]
    return [Daemon("dnsmasq-dhcp", server), Daemon("udhcpc", client, host="dhc")]


# --- NTP: chrony serving its local clock; a chrony client polling; one-off queries ------------------


def _chrony_conf(env: Env, name: str, lines: str) -> Path:
    return _write(
        env.work / f"chrony-{name}.conf",
        f"pidfile {env.work}/chrony-{name}.pid\ncmdport 0\nbindcmdaddress /\nuser root\n"
        f"driftfile {env.work}/chrony-{name}.drift\n{lines}\n",
    )


def _chrony_setup(env: Env) -> None:
    _chrony_conf(env, "srv", "local stratum 8\nallow 10.98.0.0/24\nallow fd00:98::/64")
    _chrony_conf(env, "cli", f"server {env.addr('ntp')} iburst minpoll 4 maxpoll 5")


def _chrony(env: Env) -> list[Daemon]:
    # -x: never touch the clock (the machine's, shared by every namespace)
    return [Daemon("chronyd", ["chronyd", "-d", "-x", "-f", str(env.work / "chrony-srv.conf")])]


# --- IPv6 router adverts -----------------------------------------------------------------------------


def _radvd_setup(env: Env) -> None:
    # a router that is nobody's default (lifetime 0) and hands out no addresses: adverts, no way out
    _write(
        env.work / "radvd.conf",
        """interface eth0 {
  AdvSendAdvert on;
  MinRtrAdvInterval 4;
  MaxRtrAdvInterval 12;
  AdvDefaultLifetime 0;
  prefix fd00:98::/64 { AdvOnLink on; AdvAutonomous off; };
};
""",
    )


def _radvd(env: Env) -> list[Daemon]:
    return [
        Daemon(
            "radvd",
            [
                "radvd",
                "-n",
                "-C",
                str(env.work / "radvd.conf"),
                "-p",
                str(env.work / "radvd.pid"),
                "-m",
                "stderr",
            ],
        )
    ]


# --- mDNS: avahi on the server and on one user's machine ------------------------------------------


AVAHI = """[server]
host-name={host}
domain-name=local
use-ipv4=yes
use-ipv6=yes
allow-interfaces=eth0
enable-dbus=no
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=yes
publish-workstation=yes
"""

AVAHI_SERVICE = """<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<service-group><name replace-wildcards="yes">{name} on %h</name>
<service><type>{type}</type><port>{port}</port></service></service-group>
"""


def _avahi_setup(env: Env) -> None:
    for host, services in (
        ("srv", (("Web", "_http._tcp", 80), ("Files", "_smb._tcp", 445), ("Printer", "_ipp._tcp", 631))),
        ("cli1", (("Music", "_daap._tcp", 3689), ("Remote", "_ssh._tcp", 22))),
    ):
        _write(env.work / f"avahi-{host}.conf", AVAHI.format(host=f"cat-{host}"))
        for name, typ, port in services:
            _write(
                env.work / f"avahi-{host}-services" / f"{name}.service",
                AVAHI_SERVICE.format(name=name, type=typ, port=port),
            )


def _avahi(env: Env) -> list[Daemon]:
    # `ip netns exec` gives the command its own mount namespace: a private /run/avahi-daemon (pid file)
    # and service folder, so two avahi daemons can run on one machine
    out = []
    for host in ("srv", "cli1"):
        script = (
            f"mkdir -p /run/avahi-daemon && mount -t tmpfs none /run/avahi-daemon && "
            f"mount --bind {env.work}/avahi-{host}-services /etc/avahi/services && "
            f"exec avahi-daemon --no-drop-root --no-chroot --no-rlimits -f {env.work}/avahi-{host}.conf"
        )
        out.append(Daemon(f"avahi-{host}", ["sh", "-c", script], host=host))
    return out


# --- mail: aiosmtpd (SMTP, STARTTLS) and dovecot (IMAP, IMAPS) -------------------------------------


DOVECOT = """base_dir = {w}/dovecot/run
state_dir = {w}/dovecot/state
protocols = imap
listen = *, ::
log_path = {w}/logs/dovecot.log
ssl = yes
ssl_cert = <{w}/cert.pem
ssl_key = <{w}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {w}/dovecot/users
}}
userdb {{
  driver = static
  args = uid={user} gid={user} home={w}/mail/%u
}}
mail_location = maildir:~/Maildir
default_login_user = dovenull
default_internal_user = dovecot
"""


def _mail_setup(env: Env) -> None:
    w = env.work
    _write(w / "dovecot.conf", DOVECOT.format(w=w, user=USER))
    _write(w / "dovecot" / "users", f"{USER}:{{PLAIN}}{PASSWORD}::::::\n", 0o644)
    (w / "dovecot" / "run").mkdir(parents=True, exist_ok=True)
    (w / "dovecot" / "state").mkdir(parents=True, exist_ok=True)
    maildir = w / "mail" / USER / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for i in range(30):
        body = "\n".join(f"line {j} of message {i}" for j in range(20 + i * 13))
        _write(
            maildir / ("cur" if i < 24 else "new") / f"{1700000000 + i}.M{i}P1.cat:2,{'S' if i < 24 else ''}",
            f"From: friend{i % 5}@cat.test\nTo: {USER}@cat.test\nSubject: note {i}\n"
            f"Date: Mon, 1 Jan 2024 10:{i:02d}:00 +0000\nMessage-ID: <{i}@cat.test>\n\n{body}\n",
        )
    _chown_tree(w / "mail", USER)


def _mail(env: Env) -> list[Daemon]:
    w = env.work
    smtp = [
        SYSTEM_PYTHON,
        "-m",
        "aiosmtpd",
        "-n",
        "-l",
        f"{env.addr('smtp')}:25",
        "-c",
        "aiosmtpd.handlers.Sink",
        "--tlscert",
        str(w / "cert.pem"),
        "--tlskey",
        str(w / "key.pem"),
        "--no-requiretls",
    ]
    daemons = [
        Daemon(
            "dovecot",
            ["dovecot", "-F", "-c", str(w / "dovecot.conf")],
            ready=("tcp", topology.SERVER.address, 143),
        )
    ]
    if env.addr("smtp"):
        daemons.append(Daemon("aiosmtpd", smtp, ready=("tcp", env.addr("smtp"), 25)))
    return daemons


# --- file sharing: samba, rsync daemon, git daemon ------------------------------------------------------


SAMBA = """[global]
  workgroup = CATLAB
  server role = standalone server
  security = user
  map to guest = never
  passdb backend = tdbsam:{w}/samba/passdb.tdb
  private dir = {w}/samba/private
  lock directory = {w}/samba/lock
  state directory = {w}/samba/state
  cache directory = {w}/samba/cache
  pid directory = {w}/samba/run
  ncalrpc dir = {w}/samba/ncalrpc
  binddns dir = {w}/samba/bind-dns
  log file = {w}/logs/samba.log
  load printers = no
  disable spoolss = yes
  disable netbios = yes
  smb ports = 445
  server min protocol = SMB2
[share]
  path = {w}/smbshare
  read only = no
  valid users = {user}
  force user = {user}
"""


def _samba_setup(env: Env) -> None:
    w = env.work
    for d in ("private", "lock", "state", "cache", "run", "ncalrpc", "bind-dns"):
        (w / "samba" / d).mkdir(parents=True, exist_ok=True)
    _write(w / "smb.conf", SAMBA.format(w=w, user=USER))
    for i in range(8):
        _random_file(w / "smbshare" / "docs" / f"report{i}.docx", 20_000 + i * 37_000, f"smb{i}")
    _random_file(w / "smbshare" / "video.mp4", 12_000_000, "video")
    _chown_tree(w / "smbshare", USER)
    subprocess.run(
        ["smbpasswd", "-c", str(w / "smb.conf"), "-a", "-s", USER],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        text=True,
        capture_output=True,
        check=True,
    )


def _samba(env: Env) -> list[Daemon]:
    return [
        Daemon(
            "smbd",
            [
                "smbd",
                "--foreground",
                "--no-process-group",
                "--debug-stdout",
                "-s",
                str(env.work / "smb.conf"),
            ],
            ready=("tcp", topology.SERVER.address, 445),
        )
    ]


def _rsync_setup(env: Env) -> None:
    w = env.work
    _write(
        w / "rsyncd.conf",
        f"pid file = {w}/rsyncd.pid\nuse chroot = no\nlog file = {w}/logs/rsyncd.log\n"
        f"[data]\n  path = {w}/rsync-data\n  read only = no\n  auth users = {USER}\n"
        f"  secrets file = {w}/rsyncd.secrets\n  uid = root\n  gid = root\n",
    )
    _write(w / "rsyncd.secrets", f"{USER}:{PASSWORD}\n", 0o600)
    for i in range(40):
        _random_file(w / "rsync-data" / "photos" / f"img{i:03d}.jpg", 30_000 + (i * 7127) % 400_000, f"rs{i}")


def _rsync(env: Env) -> list[Daemon]:
    return [
        Daemon(
            "rsyncd",
            ["rsync", "--daemon", "--no-detach", f"--config={env.work}/rsyncd.conf"],
            ready=("tcp", topology.SERVER.address, 873),
        )
    ]


def _git_daemon(env: Env) -> list[Daemon]:
    return [
        Daemon(
            "git-daemon",
            [
                "git",
                "daemon",
                "--reuseaddr",
                f"--base-path={env.work}/git",
                "--export-all",
                "--enable=receive-pack",
                "--informative-errors",
            ],
            ready=("tcp", topology.SERVER.address, 9418),
        )
    ]


# --- message queues and databases ------------------------------------------------------------------------


def _mosquitto_setup(env: Env) -> None:
    _write(
        env.work / "mosquitto.conf",
        "listener 1883\nallow_anonymous true\npersistence false\nlog_dest stderr\nuser mosquitto\n",
    )


def _mosquitto(env: Env) -> list[Daemon]:
    return [
        Daemon(
            "mosquitto",
            ["mosquitto", "-c", str(env.work / "mosquitto.conf")],
            ready=("tcp", topology.SERVER.address, 1883),
        )
    ]


def _redis_setup(env: Env) -> None:
    (env.work / "redis").mkdir(exist_ok=True)


def _redis(env: Env) -> list[Daemon]:
    return [
        Daemon(
            "redis",
            [
                "redis-server",
                "--bind",
                "0.0.0.0",
                "::",
                "--port",
                "6379",
                "--protected-mode",
                "no",
                "--requirepass",
                PASSWORD,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(env.work / "redis"),
                "--daemonize",
                "no",
            ],
            ready=("tcp", topology.SERVER.address, 6379),
        )
    ]


def _postgres_setup(env: Env) -> None:
    data = env.work / "pg"
    if data.exists():
        return
    sock = env.work / "pgsock"
    for d in (sock, data):
        d.mkdir()
        shutil.chown(d, "postgres", "postgres")
    (env.work / "pwfile").write_text("postgres-admin\n")
    shutil.chown(env.work / "pwfile", "postgres", "postgres")
    subprocess.run(
        [
            "setpriv",
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            f"{PG_BIN}/initdb",
            "-D",
            str(data),
            "-A",
            "scram-sha-256",
            "--pwfile",
            str(env.work / "pwfile"),
            "-U",
            "postgres",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    with (data / "pg_hba.conf").open("a") as f:
        f.write("host all all 10.98.0.0/24 scram-sha-256\nhost all all fd00:98::/64 scram-sha-256\n")


def _postgres(env: Env) -> list[Daemon]:
    sock = str(env.work / "pgsock")
    psql = [
        "setpriv",
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        "env",
        "PGPASSWORD=postgres-admin",
        "psql",
        "-q",
        "-h",
        sock,
        "-U",
        "postgres",
        "-c",
    ]
    return [
        Daemon(
            "postgres",
            [
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                f"{PG_BIN}/postgres",
                "-D",
                str(env.work / "pg"),
                "-c",
                "listen_addresses=*",
                "-c",
                f"unix_socket_directories={sock}",
                "-c",
                "port=5432",
            ],
            ready=("tcp", topology.SERVER.address, 5432),
            after=[
                [*psql, f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'"],
                [*psql, f"CREATE DATABASE shop OWNER {USER}"],
                [
                    "env",
                    f"PGPASSWORD={PASSWORD}",
                    "pgbench",
                    "-q",
                    "-i",
                    "-s",
                    "1",
                    "-h",
                    sock,
                    "-U",
                    USER,
                    "shop",
                ],
            ],
        )
    ]


SLAPD = """include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {w}/slapd.pid
argsfile {w}/slapd.args
database mdb
suffix "dc=cat,dc=test"
rootdn "cn=admin,dc=cat,dc=test"
rootpw admin-secret
directory {w}/ldap
maxsize 104857600
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
"""


def _slapd_setup(env: Env) -> None:
    w = env.work
    if (w / "ldap").exists():
        return
    (w / "ldap").mkdir()
    _write(w / "slapd.conf", SLAPD.format(w=w))
    people = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", USER]
    ldif = [
        "dn: dc=cat,dc=test\nobjectClass: top\nobjectClass: dcObject\n"
        "objectClass: organization\no: Cat\ndc: cat\n",
        "dn: ou=people,dc=cat,dc=test\nobjectClass: organizationalUnit\nou: people\n",
        "dn: ou=groups,dc=cat,dc=test\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    for i, p in enumerate(people):
        ldif.append(
            f"dn: uid={p},ou=people,dc=cat,dc=test\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"
            f"uid: {p}\ncn: {p.title()} Example\nsn: Example\nmail: {p}@cat.test\nuidNumber: {2000 + i}\n"
            f"gidNumber: 2000\nhomeDirectory: /home/{p}\nuserPassword: {PASSWORD}\n"
        )
    ldif.append(
        "dn: cn=staff,ou=groups,dc=cat,dc=test\nobjectClass: posixGroup\ncn: staff\ngidNumber: 2000\n"
        + "".join(f"memberUid: {p}\n" for p in people)
    )
    _write(w / "base.ldif", "\n".join(ldif))
    run(["slapadd", "-f", str(w / "slapd.conf"), "-l", str(w / "base.ldif")])


def _slapd(env: Env) -> list[Daemon]:
    return [
        Daemon(
            "slapd",
            ["slapd", "-d", "0", "-h", "ldap:///", "-f", str(env.work / "slapd.conf")],
            ready=("tcp", topology.SERVER.address, 389),
        )
    ]


def _snmpd_setup(env: Env) -> None:
    _write(
        env.work / "snmpd.conf",
        "agentaddress udp:161,udp6:161\nrocommunity public 10.98.0.0/24\n"
        "rocommunity6 public fd00:98::/64\nsysLocation catalogue rack 3\nsysContact ops@cat.test\n"
        "sysName cat-srv\n",
    )


def _snmpd(env: Env) -> list[Daemon]:
    return [
        Daemon(
            "snmpd",
            [
                "snmpd",
                "-f",
                "-Lo",
                "-C",
                "-c",
                str(env.work / "snmpd.conf"),
                "-p",
                str(env.work / "snmpd.pid"),
            ],
        )
    ]


def _rsyslog_setup(env: Env) -> None:
    w = env.work
    (w / "rsyslog").mkdir(exist_ok=True)
    _write(
        w / "rsyslog.conf",
        f'global(workDirectory="{w}/rsyslog")\nmodule(load="imudp")\n'
        'input(type="imudp" port="514")\nmodule(load="imtcp")\ninput(type="imtcp" port="514")\n'
        f'*.* action(type="omfile" file="{w}/logs/syslog-received.log")\n',
    )


def _rsyslog(env: Env) -> list[Daemon]:
    return [
        Daemon(
            "rsyslogd",
            ["rsyslogd", "-n", "-f", str(env.work / "rsyslog.conf"), "-i", str(env.work / "rsyslog.pid")],
            ready=("tcp", topology.SERVER.address, 514),
        )
    ]


# --- the catalogue's own small agents (python): QUIC, WebSocket, SIP/RTP, LLMNR, multicast, tracker ----


def _agent(name: str, python: str = SYSTEM_PYTHON) -> list[str]:
    return [python, str(AGENTS / f"{name}.py")]


def _quic(env: Env) -> list[Daemon]:
    # bound to the activity's own address: on "::" the replies left from the server's first address,
    # and the client (rightly) dropped them
    return [
        Daemon(
            "quic-server",
            [
                *_agent("quic", VENV_PYTHON),
                "serve",
                env.addr("quic-h3"),
                "443",
                str(env.work / "www"),
                str(env.work / "cert.pem"),
                str(env.work / "key.pem"),
            ],
        )
    ]


def _websocket(env: Env) -> list[Daemon]:
    return [
        Daemon(
            "ws-server",
            [*_agent("ws"), "serve", "0.0.0.0", "8765"],
            ready=("tcp", topology.SERVER.address, 8765),
        )
    ]


def _voip(env: Env) -> list[Daemon]:
    return [Daemon("sip-uas", [*_agent("voip"), "uas", env.addr("voip"), "5060"])]


def _llmnr(env: Env) -> list[Daemon]:
    return [Daemon("llmnr-responder", [*_agent("llmnr"), "respond", "fileserver,printer,nas,cat-srv"])]


def _mcast(env: Env) -> list[Daemon]:
    return [
        Daemon("mcast-sender", [*_agent("mcast"), "send", "239.98.0.1", "5004", "0.5"]),
        Daemon("ssdp-responder", [*_agent("mcast"), "ssdp-respond"]),
    ]


def _torrent_setup(env: Env) -> None:
    seed = env.work / "p2p-seed"
    _random_file(seed / "distro.iso", 16_000_000, "iso")
    announce = f"http://{env.addr('p2p') or topology.SERVER.address}:6969/announce"
    subprocess.run(
        [
            SYSTEM_PYTHON,
            str(AGENTS / "tracker.py"),
            "make",
            str(seed / "distro.iso"),
            announce,
            str(env.work / "distro.torrent"),
        ],
        check=True,
    )


def _torrent(env: Env) -> list[Daemon]:
    seeder = [
        "aria2c",
        f"--dir={env.work}/p2p-seed",
        "--seed-ratio=0.0",
        "--check-integrity=true",
        "--bt-seed-unverified=true",
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=true",
        "--listen-port=6881",
        "--summary-interval=0",
        "--console-log-level=warn",
        str(env.work / "distro.torrent"),
    ]
    return [
        Daemon(
            "tracker",
            [*_agent("tracker"), "serve", "0.0.0.0", "6969"],
            ready=("tcp", topology.SERVER.address, 6969),
        ),
        Daemon("aria2-seeder", seeder, host="peer"),
    ]


def _nothing(env: Env) -> None:
    return None


SERVICES: dict[str, Service] = {
    "nginx": Service(_nginx_setup, _nginx),
    "sshd": Service(_sshd_setup, _sshd),
    "unbound": Service(_unbound_setup, _unbound),
    "dhcp": Service(_dhcp_setup, _dhcp),
    "chrony": Service(_chrony_setup, _chrony),
    "radvd": Service(_radvd_setup, _radvd),
    "avahi": Service(_avahi_setup, _avahi),
    "mail": Service(_mail_setup, _mail),
    "samba": Service(_samba_setup, _samba),
    "rsyncd": Service(_rsync_setup, _rsync),
    "git-daemon": Service(_nothing, _git_daemon),
    "mosquitto": Service(_mosquitto_setup, _mosquitto),
    "redis": Service(_redis_setup, _redis),
    "postgres": Service(_postgres_setup, _postgres),
    "slapd": Service(_slapd_setup, _slapd),
    "snmpd": Service(_snmpd_setup, _snmpd),
    "rsyslog": Service(_rsyslog_setup, _rsyslog),
    "quic": Service(_nothing, _quic),
    "websocket": Service(_nothing, _websocket),
    "voip": Service(_nothing, _voip),
    "llmnr": Service(_nothing, _llmnr),
    "mcast": Service(_nothing, _mcast),
    "torrent": Service(_torrent_setup, _torrent),
}
