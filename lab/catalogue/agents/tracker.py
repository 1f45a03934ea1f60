"""A minimal BitTorrent HTTP tracker, and a .torrent maker (Debian's python3, stdlib only).

tracker.py serve HOST PORT                 answer announces with the peers seen (compact form)
tracker.py make FILE ANNOUNCE_URL OUT      write a single-file torrent of FILE
"""

import hashlib
import socket
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PIECE = 256 * 1024


def bencode(value):
    """Bencode ints, bytes/str, lists and dicts (keys sorted)."""
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
    return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"


def make(path, announce, out):
    pieces = b""
    length = 0
    with open(path, "rb") as f:
        while chunk := f.read(PIECE):
            pieces += hashlib.sha1(chunk).digest()
            length += len(chunk)
    info = {"name": path.rsplit("/", 1)[-1], "length": length, "piece length": PIECE, "pieces": pieces}
    with open(out, "wb") as f:
        f.write(bencode({"announce": announce, "info": info, "created by": "netsentry catalogue"}))


PEERS = {}


class Tracker(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        q = parse_qs(url.query, keep_blank_values=True, encoding="latin-1")
        if url.path != "/announce" or "info_hash" not in q:
            self.send_error(404)
            return
        key = q["info_hash"][0]
        peers = PEERS.setdefault(key, {})
        me = (self.client_address[0], int(q.get("port", ["0"])[0]))
        if q.get("event", [""])[0] == "stopped":
            peers.pop(me, None)
        else:
            peers[me] = True
        others = [p for p in peers if p != me and "." in p[0]]
        compact = b"".join(socket.inet_aton(ip) + struct.pack("!H", port) for ip, port in others)
        body = bencode({"interval": 30, "min interval": 10, "peers": compact})
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(*sys.argv[2:5])
    else:
        ThreadingHTTPServer((sys.argv[2], int(sys.argv[3])), Tracker).serve_forever()
