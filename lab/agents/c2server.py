"""The command server the lab's bot beacons to (stdlib only; run with /usr/bin/python3 on the c2 host).

Answers every GET with a small random "task" and every POST with "ok".
Usage: c2server.py ADDRESS PORT
"""

import random
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TASKS = [b"sleep", b"noop", b"sysinfo", b"screenshot", b"ls /home", b"upload /etc/hostname"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def _reply(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._reply(random.choice(TASKS))

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(b"ok")


if __name__ == "__main__":
    ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
