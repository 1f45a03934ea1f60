"""A scripted benign user of the lab victim (stdlib only; run with /usr/bin/python3 inside a client ns).

Loops until DURATION seconds have passed, picking an activity at random with a random think time:
browsing the shop, logging in (sometimes mistyping the password, at a human rate), SSH sessions that run
commands and copy files, FTP downloads and uploads, DNS look-ups and bulk HTTP/FTP transfers.
Prints one JSON line of counts at the end.

Usage: LAB_PASSWORD=... benign.py VICTIM DURATION SEED USER

The password comes in the environment, never on a command line (other local users can read those):
sshpass reads it from SSHPASS, curl from a netrc file in our private temporary folder.
"""

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

SSH_OPTS = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=5",
]
WORDS = [
    "apple",
    "banana",
    "cherry",
    "grape",
    "lemon",
    "mango",
    "orange",
    "peach",
    "pear",
    "plum",
    "kiwi",
    "fig",
]
NAMES = ["www.lab.test", "lab.test", "mail.lab.test", "files.lab.test", "intranet.lab.test", "example.org"]
COMMANDS = [
    "uptime",
    "ls -la",
    "df -h",
    "cat /etc/os-release",
    "ps aux | head -20",
    "free -m",
    "w",
    "find . -maxdepth 2 | head",
    "du -sh .",
    "date; whoami",
]


def sh(cmd, timeout=30):
    try:
        return subprocess.run(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout
        ).returncode
    except subprocess.TimeoutExpired:
        return -1


def browse(rng, ctx):
    base = f"http://{ctx['victim']}"
    pages = ["/"] + [f"/item?id={rng.randint(1, 10)}" for _ in range(rng.randint(0, 3))]
    pages += [f"/search?q={rng.choice(WORDS)}" for _ in range(rng.randint(0, 2))]
    for page in pages:
        sh(["curl", "-s", "-m", "5", "-o", "/dev/null", base + page])
        time.sleep(rng.uniform(0.2, 2.0))


def login(rng, ctx):
    user, pw = rng.choice([("alice", "wonderland"), ("bob", "builder42"), ("admin", "s3cret")])
    url = f"http://{ctx['victim']}/login"
    if rng.random() < 0.3:  # a typo, then the right password a few seconds later
        sh(["curl", "-s", "-m", "5", "-o", "/dev/null", "-d", f"username={user}&password={pw}x", url])
        time.sleep(rng.uniform(2, 6))
    sh(["curl", "-s", "-m", "5", "-o", "/dev/null", "-d", f"username={user}&password={pw}", url])


def comment(rng, ctx):
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
    sh(
        [
            "curl",
            "-s",
            "-m",
            "5",
            "-o",
            "/dev/null",
            "--data-urlencode",
            f"body={text}",
            f"http://{ctx['victim']}/comment",
        ]
    )


def ssh_session(rng, ctx):
    cmd = "; ".join(rng.sample(COMMANDS, rng.randint(1, 4)))
    sh(["sshpass", "-e", "ssh", *SSH_OPTS, f"{ctx['user']}@{ctx['victim']}", cmd])


def ssh_copy(rng, ctx):
    remote = f"{ctx['user']}@{ctx['victim']}"
    if rng.random() < 0.5:
        sh(
            [
                "sshpass",
                "-e",
                "scp",
                *SSH_OPTS,
                f"{remote}:report.txt",
                ctx["tmp"] + "/r.txt",
            ]
        )
    else:
        with open(ctx["tmp"] + "/up.bin", "wb") as fh:
            fh.write(rng.randbytes(rng.randint(1, 200) * 1024))
        sh(["sshpass", "-e", "scp", *SSH_OPTS, ctx["tmp"] + "/up.bin", f"{remote}:uploads/"])


def ftp(rng, ctx):
    base = f"ftp://{ctx['victim']}"
    if rng.random() < 0.6:
        sh(
            [
                "curl",
                *ctx["auth"],
                "-s",
                "-m",
                "15",
                "-o",
                "/dev/null",
                f"{base}/{rng.choice(['file.bin', 'report.txt'])}",
            ]
        )
    else:
        with open(ctx["tmp"] + "/ftp.bin", "wb") as fh:
            fh.write(rng.randbytes(rng.randint(1, 300) * 1024))
        sh(
            [
                "curl",
                *ctx["auth"],
                "-s",
                "-m",
                "15",
                "-T",
                ctx["tmp"] + "/ftp.bin",
                f"{base}/uploads/f{rng.randint(0, 99)}.bin",
            ]
        )


def dns(rng, ctx):
    for _ in range(rng.randint(1, 3)):
        qtype = rng.choice(["A", "A", "A", "TXT", "MX"])
        sh(["dig", "+short", "+time=2", "+tries=1", f"@{ctx['victim']}", rng.choice(NAMES), qtype])


def bulk(rng, ctx):
    if rng.random() < 0.5:
        url = f"http://{ctx['victim']}/static/{rng.randint(512, 8192)}"
    else:
        url = f"ftp://{ctx['victim']}/big.bin"
    sh(["curl", *ctx["auth"], "-s", "-m", "20", "-o", "/dev/null", url])


ACTIVITIES = [
    (browse, 30),
    (login, 10),
    (comment, 5),
    (ssh_session, 12),
    (ssh_copy, 5),
    (ftp, 10),
    (dns, 20),
    (bulk, 4),
]


def main():
    victim, duration, seed, user = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    os.environ["SSHPASS"] = os.environ["LAB_PASSWORD"]
    rng = random.Random(seed)
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        netrc = os.path.join(tmp, "netrc")  # TemporaryDirectory is 0700: only we read it
        with open(netrc, "w") as fh:
            fh.write(f"machine {victim} login {user} password {os.environ['LAB_PASSWORD']}\n")
        ctx = {"victim": victim, "user": user, "tmp": tmp, "auth": ["--netrc-file", netrc]}
        end = time.monotonic() + duration
        funcs, weights = zip(*ACTIVITIES, strict=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the runner stops us with SIGTERM
        try:
            while time.monotonic() < end:
                act = rng.choices(funcs, weights)[0]
                act(rng, ctx)
                counts[act.__name__] = counts.get(act.__name__, 0) + 1
                time.sleep(rng.uniform(0.1, 1.5))
        finally:
            print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
