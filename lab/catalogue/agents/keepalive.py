"""One long-lived HTTP/1.1 keep-alive connection, idle most of the time (a dashboard polling a status).

keepalive.py HOST PORT SECONDS SEED
"""

import http.client
import random
import sys
import time

host, port, seconds, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
conn = http.client.HTTPConnection(host, port, timeout=30)
end, n = time.monotonic() + seconds, 0
while time.monotonic() < end:
    conn.request(
        "GET",
        rng.choice(["/index.html", "/resources/page1.txt", "/static/css0.css"]),
        headers={"Connection": "keep-alive"},
    )
    conn.getresponse().read()
    n += 1
    time.sleep(min(rng.uniform(10, 40), max(0.0, end - time.monotonic())))
conn.close()
print(f"{n} requests on one connection")
