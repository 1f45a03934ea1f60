"""The catalogue: everyday benign traffic, each activity a real client against a real server.

A session returns the commands one user runs (see :mod:`lab.catalogue.activity`); every random
choice comes from the activity's seeded RNG.  Names ``<activity>.cat.test`` resolve (unbound) to the
activity's own server address, so clients that look names up do so as real ones would.
"""

from __future__ import annotations

import random

from lab.agents.benign import SSH_OPTS as BENIGN_SSH_OPTS
from lab.catalogue.activity import USER, Activity, Ctx, Match, logins, sh
from lab.catalogue.servers import AGENTS, DHCP_RANGE, PAGES, SYSTEM_PYTHON, VENV_PYTHON
from lab.catalogue.topology import BY_NAME, SUBNET

TCP, UDP, ICMP, IGMP, ICMP6 = 6, 17, 1, 2, 58
#: the attack lab's benign user's ssh options, and password logins only (as the catalogue's users do)
SSH_OPTS = [*BENIGN_SSH_OPTS, "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no"]


def _host(ctx: Ctx, name: str) -> str:
    return f"{name}.cat.test"


def _page(rng: random.Random) -> int:
    return min(PAGES - 1, int(rng.paretovariate(1.2)) - 1)


def _ssh(password: str, *args: str) -> list[str]:
    return ["sshpass", "-p", password, *args]


# --- web ---------------------------------------------------------------------------------------------------


def https_h2(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    host = _host(ctx, "https-h2")
    steps = []
    for _ in range(rng.randint(1, 4)):
        p = _page(rng)
        urls = [f"https://{host}/page{p}.html", f"https://{host}/resources/page{p}.txt"]
        urls += [f"https://{host}/static/img{rng.randrange(40)}.png" for _ in range(rng.randint(3, 20))]
        steps.append(
            ["curl", "-sk", "--http2", "--parallel", "--parallel-max", "6", "-o", "/dev/null", *urls]
        )
        steps.append(["sleep", f"{rng.uniform(0.5, 5):.2f}"])
    return steps


def http1(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    host = _host(ctx, "http1")
    urls = [f"http://{host}/page{_page(rng)}.html" for _ in range(rng.randint(1, 5))]
    urls += [
        f"http://{host}/static/css{rng.randrange(8)}.css",
        f"http://{host}/static/js{rng.randrange(14)}.js",
    ]
    agent = rng.choice(["Mozilla/5.0 (X11; Linux x86_64)", "Wget/1.21", "python-requests/2.31"])
    return [["curl", "-s", "-A", agent, "-o", "/dev/null", *urls]]


def browser(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    profile = ctx.client_dir(client, f"chromium-{rng.randrange(3)}")
    return [
        [
            "chromium",
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--ignore-certificate-errors",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-features=OptimizationHints,MediaRouter",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            f"https://{_host(ctx, 'browser')}/page{_page(rng)}.html",
        ]
    ]


def quic(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    return [
        [
            VENV_PYTHON,
            str(AGENTS / "quic.py"),
            "get",
            ctx.addr,
            "443",
            str(rng.randint(1, 4)),
            str(rng.randrange(10**6)),
        ]
    ]


def websocket(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    return [
        [
            SYSTEM_PYTHON,
            str(AGENTS / "ws.py"),
            "chat",
            f"ws://{ctx.addr}:8765/chat",
            f"{rng.uniform(10, 60):.0f}",
            str(rng.randrange(10**6)),
        ]
    ]


def bulk_download(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    name = rng.choice(["big-8M.bin", "big-8M.bin", "big-24M.bin", "big-60M.bin"])
    scheme = rng.choice(["http", "https"])
    cmd = ["curl", "-sk", "-o", "/dev/null", f"{scheme}://{ctx.addr}/files/{name}"]
    # a home or office link's speed (and a capture on 2 shared cores keeps up with it)
    cmd[1:1] = ["--limit-rate", f"{rng.choice([1, 2, 5, 10, 20])}M"]
    if rng.random() < 0.2:
        cmd[1:1] = ["-r", f"{rng.randrange(1_000_000, 5_000_000)}-"]  # a resumed download
    return [cmd]


def bulk_upload(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    src = ctx.client_dir(client, "upload")
    size = rng.choice([2, 5, 12, 30])
    path = src / f"data-{size}M.bin"
    steps = [["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={size}", "status=none"]]
    if rng.random() < 0.5:
        steps.append(
            ["curl", "-sk", "-T", str(path), f"https://{ctx.addr}/upload/{client}-{rng.randrange(10**6)}.bin"]
        )
    else:
        steps.append(_ssh(logins(rng)[-1], "scp", *SSH_OPTS, str(path), f"{USER}@{ctx.addr}:uploads/"))
    return steps


def keepalive(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    seconds = f"{rng.uniform(60, 200):.0f}"
    if rng.random() < 0.5:
        return [
            [SYSTEM_PYTHON, str(AGENTS / "keepalive.py"), ctx.addr, "80", seconds, str(rng.randrange(10**6))]
        ]
    return [
        _ssh(
            logins(rng)[-1],
            "ssh",
            *SSH_OPTS,
            "-o",
            "ServerAliveInterval=15",
            f"{USER}@{ctx.addr}",
            f"sleep {seconds}",
        )
    ]


def git_http(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    dest = ctx.client_dir(client, f"git-http-{rng.randrange(10**6)}")
    return [
        ["git", "clone", "-q", f"http://{ctx.addr}/git/project.git", str(dest / "project")],
        ["git", "-C", str(dest / "project"), "fetch", "-q", "origin"],
        ["rm", "-rf", str(dest)],
    ]


# --- naming and addressing --------------------------------------------------------------------------------

NAMES = [
    "www",
    "mail",
    "ns",
    "https-h2",
    "http1",
    "smtp",
    "imap",
    "ldap",
    "printer",
    "nosuch",
    "intranet",
    "cat.test",
    "quic",
    "git-ssh",
]


def _dig_args(rng: random.Random) -> list[str]:
    qtype = rng.choice(["A", "A", "A", "AAAA", "MX", "TXT", "SOA", "SRV", "ANY"])
    name = rng.choice(NAMES)
    name = name if name.endswith(".test") else f"{name}.cat.test"
    if qtype == "SRV":
        name = "_imaps._tcp.cat.test"
    return [name, qtype]


def dns(transport: str):
    """DNS look-ups over one transport (dig, kdig for TLS now and then), some names unknown."""

    def session(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
        steps = []
        for _ in range(rng.randint(1, 5)):
            name, qtype = _dig_args(rng)
            if transport == "tls" and rng.random() < 0.5:
                steps.append(["kdig", "+tls", "+time=3", "+retry=0", f"@{ctx.addr}", name, qtype])
                continue
            flag = {"udp": "+notcp", "tcp": "+tcp", "tls": "+tls"}[transport]
            server = ctx.addr6 if rng.random() < 0.2 else ctx.addr
            steps.append(["dig", flag, "+time=2", "+tries=1", f"@{server}", name, qtype])
            if transport == "udp" and rng.random() < 0.3:
                steps.append(
                    ["dig", "+time=2", "+tries=1", f"@{ctx.addr}", "-x", f"10.98.0.{rng.randint(100, 140)}"]
                )
        return steps

    return session


def mdns(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    q = rng.choice(
        [
            ["cat-srv.local", "A"],
            ["cat-cli1.local", "AAAA"],
            ["_services._dns-sd._udp.local", "PTR"],
            ["_http._tcp.local", "PTR"],
            ["_ipp._tcp.local", "PTR"],
            ["_smb._tcp.local", "PTR"],
        ]
    )
    return [["dig", "+time=1", "+tries=1", "-p", "5353", "@224.0.0.251", *q]]


def llmnr(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    name = rng.choice(["fileserver", "printer", "nas", "cat-srv", "wpad", "laptop-17", "isatap"])
    return [[SYSTEM_PYTHON, str(AGENTS / "llmnr.py"), "query", name, rng.choice(["A", "A", "AAAA"])]]


def dhcp(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    pidfile = ctx.work / "udhcpc.pid"
    # SIGUSR1 renews the lease now (a unicast REQUEST); SIGUSR2 releases it, then USR1 starts over
    if rng.random() < 0.25:
        return [sh(f"kill -USR2 $(cat {pidfile}); sleep 2; kill -USR1 $(cat {pidfile})")]
    return [sh(f"kill -USR1 $(cat {pidfile})")]


def ntp(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    conf = ctx.work / f"chrony-q-{client}.conf"
    conf.write_text(
        f"pidfile {ctx.work}/chrony-q-{client}.pid\ncmdport 0\nbindcmdaddress /\n"
        f"server {ctx.addr if rng.random() < 0.7 else ctx.addr6} iburst maxsamples {rng.randint(2, 6)}\n"
    )
    return [["chronyd", "-Q", "-t", "20", "-f", str(conf)]]


def icmp(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    six = rng.random() < 0.3
    return [
        [
            "ping",
            "-6" if six else "-4",
            "-c",
            str(rng.randint(1, 10)),
            "-i",
            f"{rng.uniform(0.2, 1.0):.1f}",
            "-s",
            str(rng.choice([56, 56, 56, 120, 1400])),
            "-W",
            "1",
            ctx.addr6 if six else ctx.addr,
        ]
    ]


def traceroute(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    mode = rng.choice([[], [], ["-I"], ["-T", "-p", "443"], ["-U", "-p", "53"]])
    six = rng.random() < 0.25 and "-T" not in mode
    return [
        [
            "traceroute",
            *(["-6"] if six else []),
            "-n",
            "-w",
            "1",
            "-q",
            str(rng.randint(1, 3)),
            "-m",
            "4",
            *mode,
            ctx.addr6 if six else ctx.addr,
        ]
    ]


def ipv6_nd(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    if rng.random() < 0.5:
        return [["rdisc6", "-1", "-w", "1000", "eth0"]]
    return [["ip", "-6", "neigh", "flush", "dev", "eth0"], ["ndisc6", "-1", "-w", "1000", ctx.addr6, "eth0"]]


def multicast(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    if rng.random() < 0.4:
        return [[SYSTEM_PYTHON, str(AGENTS / "mcast.py"), "ssdp-search"]]
    return [
        [SYSTEM_PYTHON, str(AGENTS / "mcast.py"), "recv", "239.98.0.1", "5004", f"{rng.uniform(5, 40):.0f}"]
    ]


# --- mail and files -----


def smtp(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    msg = ctx.client_dir(client, "mail") / f"msg-{rng.randrange(10**6)}.eml"
    # CRLF line ends, as mail clients send (the server reads lines up to CRLF: bare LF makes one long line)
    lines = [f"From: {client}@cat.test", "To: team@cat.test", f"Subject: status {rng.randrange(1000)}", ""]
    lines += [f"line {i}: " + "x" * rng.randint(10, 70) for i in range(rng.randint(3, 200))]
    msg.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    cmd = ["curl", "-sS", f"smtp://{ctx.addr}:25", "--mail-from", f"{client}@cat.test", "-T", str(msg)]
    for r in rng.sample(["team", "alice", "bob", "ops", "carol"], rng.randint(1, 3)):
        cmd += ["--mail-rcpt", f"{r}@cat.test"]
    if rng.random() < 0.5:
        cmd[1:1] = ["--ssl-reqd", "-k"]  # STARTTLS
    return [cmd]


def imap(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    steps = []
    secure = rng.random() < 0.6
    base = f"imaps://{ctx.addr}" if secure else f"imap://{ctx.addr}"
    for pw in logins(rng):
        steps.append(["curl", "-sk", "-u", f"{USER}:{pw}", f"{base}/INBOX", "-X", "EXAMINE INBOX"])
    for _ in range(rng.randint(1, 4)):
        steps.append(
            [
                "curl",
                "-sk",
                "-o",
                "/dev/null",
                "-u",
                f"{USER}:{logins(rng)[-1]}",
                f"{base}/INBOX;UID={rng.randint(1, 30)}",
            ]
        )
    return steps


def smb(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    local = ctx.client_dir(client, "smb")
    cmds = rng.choice(
        [
            "ls; cd docs; ls",
            f"cd docs; get report{rng.randrange(8)}.docx {local}/r.docx",
            f"get video.mp4 {local}/v.mp4",
            f"put /etc/services up-{client}-{rng.randrange(99)}.txt; ls",
        ]
    )
    return [
        ["smbclient", f"//{ctx.addr}/share", "-U", f"{USER}%{pw}", "-m", "SMB3", "-c", cmds]
        for pw in logins(rng)
    ]


def rsync(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    local = ctx.client_dir(client, "rsync")
    steps = []
    for pw in logins(rng):
        url = f"rsync://{USER}@{ctx.addr}/data/"
        if rng.random() < 0.7:
            steps.append(
                [
                    "env",
                    f"RSYNC_PASSWORD={pw}",
                    "rsync",
                    "-a",
                    *(["-z"] if rng.random() < 0.3 else []),
                    f"{url}photos/",
                    f"{local}/photos/",
                ]
            )
        else:
            steps.append(
                [
                    "env",
                    f"RSYNC_PASSWORD={pw}",
                    "rsync",
                    "-a",
                    "/usr/share/common-licenses/",
                    f"{url}backup-{client}/",
                ]
            )
    if rng.random() < 0.3:
        steps.append(["rm", "-rf", str(local)])  # next time a full copy again
    return steps


def ssh(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    commands = [
        "uptime",
        "ls -la",
        "df -h",
        "cat notes.txt | head -20",
        "ps aux | head",
        "du -sh .",
        "who; date",
        "tail -n 50 notes.txt",
    ]
    steps = []
    for pw in logins(rng):
        steps.append(
            _ssh(
                pw, "ssh", *SSH_OPTS, f"{USER}@{ctx.addr}", "; ".join(rng.sample(commands, rng.randint(1, 4)))
            )
        )
    if rng.random() < 0.3:
        local = ctx.client_dir(client, "ssh")
        steps.append(_ssh(logins(rng)[-1], "scp", *SSH_OPTS, f"{USER}@{ctx.addr}:photo.jpg", f"{local}/"))
    return steps


def git_ssh(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    dest = ctx.client_dir(client, "git-ssh") / "project"
    env = ["env", f"GIT_SSH_COMMAND=sshpass -p {logins(rng)[-1]} ssh {' '.join(SSH_OPTS)}"]
    git = [*env, "git", "-C", str(dest), "-c", f"user.name={client}", "-c", f"user.email={client}@cat.test"]
    steps = []
    if not (dest / ".git").exists():
        steps.append([*env, "git", "clone", "-q", f"{USER}@{ctx.addr}:project.git", str(dest)])
    steps.append([*git, "pull", "-q", "--rebase", "origin", "main"])
    if rng.random() < 0.6:
        steps.append(sh(f"echo '# {rng.randrange(10**6)}' >> {dest}/module{rng.randrange(6)}.py"))
        steps.append([*git, "commit", "-qam", f"tweak from {client}"])
        steps.append([*git, "push", "-q", "origin", "main"])
    return steps


def git_daemon(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    dest = ctx.client_dir(client, f"git-d-{rng.randrange(10**6)}")
    return [
        ["git", "clone", "-q", f"git://{ctx.addr}/project.git", str(dest / "p")],
        ["rm", "-rf", str(dest)],
    ]


# --- messaging, databases, directory, monitoring -----


def mqtt(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    room = rng.choice(["kitchen", "office", "lab", "garage"])
    steps = []
    for _ in range(rng.randint(1, 6)):
        steps.append(
            [
                "mosquitto_pub",
                "-h",
                ctx.addr,
                "-i",
                f"{client}-{room}",
                "-q",
                str(rng.choice([0, 0, 1, 2])),
                *(["-r"] if rng.random() < 0.2 else []),
                "-t",
                f"home/{room}/temperature",
                "-m",
                f"{rng.gauss(21, 2):.1f}",
            ]
        )
    if rng.random() < 0.3:
        steps.append(["mosquitto_sub", "-h", ctx.addr, "-t", "home/#", "-C", "3", "-W", "8", "-v"])
    return steps


def postgres(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    if rng.random() < 0.25:
        return [
            [
                "env",
                f"PGPASSWORD={logins(rng)[-1]}",
                "pgbench",
                "-h",
                ctx.addr,
                "-U",
                USER,
                "-T",
                str(rng.randint(2, 6)),
                "-c",
                str(rng.randint(1, 3)),
                "-R",
                "30",
                "shop",
            ]
        ]
    queries = [
        "SELECT count(*) FROM pgbench_accounts",
        "SELECT * FROM pgbench_branches",
        f"SELECT abalance FROM pgbench_accounts WHERE aid = {rng.randint(1, 100000)}",
        f"UPDATE pgbench_tellers SET tbalance = tbalance + {rng.randint(-50, 50)} "
        f"WHERE tid = {rng.randint(1, 10)}",
        "SELECT now(), version()",
    ]
    return [
        [
            "env",
            f"PGPASSWORD={pw}",
            "psql",
            "-h",
            ctx.addr,
            "-U",
            USER,
            "-d",
            "shop",
            "-Atq",
            "-c",
            "; ".join(rng.sample(queries, rng.randint(1, 3))),
        ]
        for pw in logins(rng)
    ]


def redis(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    if rng.random() < 0.15:
        return [
            [
                "redis-benchmark",
                "-h",
                ctx.addr,
                "-a",
                logins(rng)[-1],
                "-n",
                str(rng.randint(50, 300)),
                "-c",
                "2",
                "-q",
                "-t",
                "get,set,incr",
            ]
        ]
    cmds = [
        f"SET session:{rng.randrange(999)} {rng.randrange(10**9)} EX 600",
        f"GET session:{rng.randrange(999)}",
        f"INCR hits:{rng.choice(['home', 'cart', 'search'])}",
        f"LPUSH queue:jobs job{rng.randrange(999)}",
        "LRANGE queue:jobs 0 10",
        f"HSET user:{rng.randrange(99)} name cat visits {rng.randrange(99)}",
        "PING",
    ]
    script = "\\n".join(rng.sample(cmds, rng.randint(1, 5)))
    return [
        sh(f"printf '{script}\\n' | redis-cli -h {ctx.addr} -a '{pw}' --no-auth-warning")
        for pw in logins(rng)
    ]


def ldap(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    who = rng.choice(["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"])
    steps = [
        [
            "ldapsearch",
            "-x",
            "-LLL",
            "-H",
            f"ldap://{ctx.addr}",
            "-b",
            "dc=cat,dc=test",
            f"(uid={who})",
            "cn",
            "mail",
        ]
    ]
    if rng.random() < 0.5:
        for pw in logins(rng):
            steps.append(
                [
                    "ldapwhoami",
                    "-x",
                    "-H",
                    f"ldap://{ctx.addr}",
                    "-D",
                    f"uid={USER},ou=people,dc=cat,dc=test",
                    "-w",
                    pw,
                ]
            )
    if rng.random() < 0.3:
        steps.append(
            [
                "ldapsearch",
                "-x",
                "-LLL",
                "-H",
                f"ldap://{ctx.addr}",
                "-b",
                "ou=groups,dc=cat,dc=test",
                "(objectClass=posixGroup)",
            ]
        )
    return steps


def snmp(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    community = "public" if rng.random() > 0.05 else "pubic"  # a typo: no answer, the poller times out
    base = ["-c", community, "-t", "1", "-r", "1", "-On", ctx.addr]
    return [
        rng.choice(
            [
                ["snmpwalk", "-v2c", *base, "1.3.6.1.2.1.1"],
                ["snmpbulkwalk", "-v2c", *base, "1.3.6.1.2.1.2"],
                ["snmpget", "-v1", *base, "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0"],
                ["snmpget", "-v2c", *base, "1.3.6.1.2.1.2.2.1.10.2", "1.3.6.1.2.1.2.2.1.16.2"],
            ]
        )
    ]


def syslog(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    tag = rng.choice(["cron", "sshd", "kernel", "app", "backup", "nginx"])
    transport = ["-d"] if rng.random() < 0.7 else ["-T"]
    msgs = [
        f"{tag} event {rng.randrange(10**6)} status={rng.choice(['ok', 'ok', 'ok', 'warn', 'retry'])}"
        for _ in range(rng.randint(1, 8))
    ]
    return [
        [
            "logger",
            "-n",
            ctx.addr,
            "-P",
            "514",
            *transport,
            "-t",
            tag,
            "-p",
            f"{rng.choice(['user', 'daemon', 'local0'])}.{rng.choice(['info', 'notice', 'warning'])}",
            m,
        ]
        for m in msgs
    ]


def voip(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    return [
        [
            SYSTEM_PYTHON,
            str(AGENTS / "voip.py"),
            "uac",
            ctx.addr,
            "5060",
            f"{rng.uniform(5, 45):.0f}",
            f"ext{rng.randint(100, 120)}",
        ]
    ]


def p2p(ctx: Ctx, rng: random.Random, client: str) -> list[list[str]]:
    dest = ctx.client_dir(client, f"p2p-{rng.randrange(10**6)}")
    return [
        [
            "aria2c",
            f"--dir={dest}",
            "--seed-time=0",
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=true",
            "--bt-stop-timeout=60",
            "--summary-interval=0",
            "--console-log-level=warn",
            f"--listen-port={rng.randint(6882, 6999)}",
            *(["--max-download-limit=2M"] if rng.random() < 0.5 else []),
            str(ctx.work / "distro.torrent"),
        ],
        ["rm", "-rf", str(dest)],
    ]


def _chrony_client(ctx: Ctx) -> list[tuple[str, list[str]]]:
    return [("cli2", ["chronyd", "-d", "-x", "-f", str(ctx.work / "chrony-cli.conf")])]


def _mqtt_subscriber(ctx: Ctx) -> list[tuple[str, list[str]]]:
    return [
        ("cli3", ["mosquitto_sub", "-h", ctx.addr, "-t", "home/#", "-k", "30", "-i", "dashboard", "-q", "1"])
    ]


PEER = BY_NAME["peer"]
DHCP_POOL = tuple(f"{SUBNET}.{i}" for i in range(DHCP_RANGE[0], DHCP_RANGE[1] + 1))

ACTIVITIES: tuple[Activity, ...] = (
    Activity(
        "https-h2", "curl", ("nginx-light", "curl"), ("nginx", "unbound"), https_h2, (TCP, 443), users=2
    ),
    Activity("http1", "curl", ("nginx-light", "curl"), ("nginx", "unbound"), http1, (TCP, 80)),
    Activity(
        "browser",
        "chromium",
        ("chromium",),
        ("nginx", "unbound"),
        browser,
        (TCP, 443),
        think=(10, 30),
        clients=("cli1", "cli2"),
    ),
    Activity("quic-h3", "aioquic", (), ("quic",), quic, (UDP, 443), pypi=("aioquic",), think=(5, 20)),
    Activity(
        "websocket",
        "python3-websockets",
        ("python3-websockets",),
        ("websocket",),
        websocket,
        (TCP, 8765),
        think=(5, 20),
        users=2,
    ),
    Activity(
        "bulk-download", "curl", ("nginx-light", "curl"), ("nginx",), bulk_download, (TCP, 80), think=(10, 40)
    ),
    Activity(
        "bulk-upload",
        "curl/scp",
        ("nginx-light", "curl", "openssh-server", "sshpass"),
        ("nginx", "sshd"),
        bulk_upload,
        (TCP, None),
        think=(15, 45),
    ),
    Activity(
        "keepalive",
        "python-http.client/ssh",
        ("nginx-light", "openssh-server", "sshpass"),
        ("nginx", "sshd"),
        keepalive,
        (TCP, None),
        think=(1, 5),
        users=2,
        step_timeout=240,
    ),
    Activity("git-http", "git", ("git", "nginx-light"), ("nginx",), git_http, (TCP, 80), think=(10, 40)),
    Activity("dns-udp", "dig", ("unbound", "dnsutils"), ("unbound",), dns("udp"), (UDP, 53), think=(2, 8)),
    Activity("dns-tcp", "dig", ("unbound", "dnsutils"), ("unbound",), dns("tcp"), (TCP, 53), think=(3, 15)),
    Activity(
        "dns-tls",
        "dig/kdig",
        ("unbound", "dnsutils", "knot-dnsutils"),
        ("unbound",),
        dns("tls"),
        (TCP, 853),
        think=(3, 15),
    ),
    Activity(
        "mdns",
        "dig/avahi-daemon",
        ("avahi-daemon", "dnsutils"),
        ("avahi",),
        mdns,
        (UDP, 5353),
        think=(4, 20),
        extra=(
            Match(ports=(5353,)),
            Match(addresses=("224.0.0.251", "ff02::fb")),
            # avahi on cli1 answers dig by unicast after dig has given up: the port unreachable back
            Match(addresses=(BY_NAME["cli1"].address,), protocol=ICMP),
        ),
    ),
    Activity(
        "llmnr",
        "python-llmnr",
        (),
        ("llmnr",),
        llmnr,
        (UDP, 5355),
        think=(4, 20),
        extra=(Match(ports=(5355,)), Match(addresses=("224.0.0.252", "ff02::1:3"))),
    ),
    Activity(
        "dhcp",
        "udhcpc",
        ("dnsmasq-base", "udhcpc"),
        ("dhcp",),
        dhcp,
        (UDP, 67),
        clients=("dhc",),
        think=(15, 45),
        # dnsmasq pings an address before it offers it
        extra=(Match(ports=(67, 68)), Match(addresses=DHCP_POOL, protocol=ICMP)),
    ),
    Activity(
        "ntp",
        "chronyd",
        ("chrony",),
        ("chrony",),
        ntp,
        (UDP, 123),
        think=(5, 30),
        client_daemons=_chrony_client,
    ),
    Activity("icmp-ping", "ping", ("iputils-ping",), (), icmp, (ICMP, None), think=(2, 15)),
    Activity("traceroute", "traceroute", ("traceroute",), (), traceroute, (UDP, None), think=(10, 40)),
    Activity(
        "ipv6-nd",
        "rdisc6/ndisc6/radvd",
        ("radvd", "ndisc6"),
        ("radvd",),
        ipv6_nd,
        (ICMP6, None),
        think=(5, 25),
        extra=(Match(protocol=ICMP6),),
    ),
    Activity(
        "multicast",
        "python-mcast",
        (),
        ("mcast",),
        multicast,
        (IGMP, None),
        think=(3, 20),
        extra=(
            Match(protocol=IGMP),
            Match(addresses=("239.98.0.1", "239.255.255.250", "224.0.0.22")),
            Match(ports=(1900,)),
        ),
    ),
    Activity("smtp", "curl", ("python3-aiosmtpd", "curl"), ("mail",), smtp, (TCP, 25), think=(5, 25)),
    Activity("imap", "curl", ("dovecot-imapd", "curl"), ("mail",), imap, (TCP, 993), think=(5, 25)),
    Activity("smb", "smbclient", ("samba", "smbclient"), ("samba",), smb, (TCP, 445), think=(5, 30)),
    Activity("rsync", "rsync", ("rsync",), ("rsyncd",), rsync, (TCP, 873), think=(10, 40)),
    Activity("ssh", "ssh", ("openssh-server", "sshpass"), ("sshd",), ssh, (TCP, 22), think=(3, 20)),
    Activity(
        "git-ssh", "git", ("git", "openssh-server", "sshpass"), ("sshd",), git_ssh, (TCP, 22), think=(10, 40)
    ),
    Activity("git-daemon", "git", ("git",), ("git-daemon",), git_daemon, (TCP, 9418), think=(10, 40)),
    Activity(
        "mqtt",
        "mosquitto_pub/sub",
        ("mosquitto", "mosquitto-clients"),
        ("mosquitto",),
        mqtt,
        (TCP, 1883),
        think=(2, 12),
        client_daemons=_mqtt_subscriber,
    ),
    Activity(
        "postgres", "psql/pgbench", ("postgresql",), ("postgres",), postgres, (TCP, 5432), think=(3, 20)
    ),
    Activity(
        "redis",
        "redis-cli/redis-benchmark",
        ("redis-server", "redis-tools"),
        ("redis",),
        redis,
        (TCP, 6379),
        think=(2, 12),
    ),
    Activity("ldap", "ldapsearch", ("slapd", "ldap-utils"), ("slapd",), ldap, (TCP, 389), think=(3, 20)),
    Activity("snmp", "snmpwalk/snmpget", ("snmpd", "snmp"), ("snmpd",), snmp, (UDP, 161), think=(5, 20)),
    Activity("syslog", "logger", ("rsyslog", "bsdutils"), ("rsyslog",), syslog, (UDP, 514), think=(2, 12)),
    Activity("voip", "python-sip-rtp", (), ("voip",), voip, (UDP, 5060), think=(10, 40)),
    Activity(
        "p2p",
        "aria2c",
        ("aria2",),
        ("torrent",),
        p2p,
        (TCP, 6881),
        clients=("cli2", "cli3"),
        think=(10, 40),
        extra=(
            Match(addresses=(PEER.address, PEER.address6, "239.192.152.143")),
            Match(ports=(6771,)),
            # leechers also connect to each other, on the listen ports they pick
            Match(ports=tuple(range(6881, 7000)), protocol=TCP),
        ),
    ),
)
BY_ACTIVITY = {a.name: a for a in ACTIVITIES}
