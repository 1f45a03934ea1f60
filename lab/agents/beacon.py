"""A bot implant's beacon (stdlib only; run with /usr/bin/python3 on the victim).

Every PERIOD·(1 ± U(JITTER)) seconds it asks the command server for a task (HTTP GET); in ``post`` mode
it also sends a fake result back (HTTP POST), like the Ares bot of CICIDS2017.  Stops after DURATION s.

Usage: beacon.py URL PERIOD JITTER DURATION MODE(get|post)
"""

import random
import sys
import time
import urllib.request


def main():
    url, period, jitter, duration, mode = sys.argv[1], *map(float, sys.argv[2:5]), sys.argv[5]
    rng = random.Random()
    end = time.monotonic() + duration
    sent = 0
    while time.monotonic() < end:
        try:
            task = urllib.request.urlopen(url + "?id=host10", timeout=3).read()
            if mode == "post":
                report = (
                    b"result=" + task[:64] + bytes(rng.randrange(256) for _ in range(rng.randint(50, 400)))
                )
                urllib.request.urlopen(urllib.request.Request(url, data=report), timeout=3).read()
            sent += 1
        except OSError:
            pass
        time.sleep(max(0.05, period * (1 + rng.uniform(-jitter, jitter))))
    print(f"beacons: {sent}", flush=True)


if __name__ == "__main__":
    main()
