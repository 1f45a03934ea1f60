"""A deliberately vulnerable web application for the lab victim (stdlib only; run with /usr/bin/python3).

Endpoints: ``GET /`` (index), ``POST /login`` (SQL built by string formatting, the brute-force target),
``GET /item?id=N`` (numeric concatenation: the SQL injection target), ``GET /search?q=`` (parameterised
query, reflects ``q`` unescaped: the XSS target), ``POST /comment`` (stores and reflects text: XSS),
``GET /static/<n>`` (n kilobytes of data: bulk transfers).  Never expose it outside the lab.

Usage: webapp.py ADDRESS PORT DB_PATH
"""

import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

USERS = [("admin", "s3cret"), ("alice", "wonderland"), ("bob", "builder42")]
ITEMS = ["apple", "banana", "cherry", "grape", "lemon", "mango", "orange", "peach", "pear", "plum"]
_lock = threading.Lock()


def init_db(path):
    db = sqlite3.connect(path, check_same_thread=False)
    db.executescript(
        "DROP TABLE IF EXISTS users; DROP TABLE IF EXISTS items; DROP TABLE IF EXISTS comments;"
        "CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, password TEXT);"
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL);"
        "CREATE TABLE comments (id INTEGER PRIMARY KEY, body TEXT);"
    )
    db.executemany("INSERT INTO users (username, password) VALUES (?, ?)", USERS)
    db.executemany(
        "INSERT INTO items (name, price) VALUES (?, ?)", [(n, 1.5 + i) for i, n in enumerate(ITEMS)]
    )
    db.commit()
    return db


class Handler(BaseHTTPRequestHandler):
    db = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the lab logs traffic, not requests
        pass

    def _send(self, code, body, ctype="text/html"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _query(self, sql, args=()):
        with _lock:
            return self.db.execute(sql, args).fetchall()

    def do_GET(self):
        url = urlparse(self.path)
        qs = parse_qs(url.query)
        if url.path == "/":
            links = "".join(f'<li><a href="/item?id={i + 1}">{n}</a></li>' for i, n in enumerate(ITEMS))
            return self._send(200, f"<html><body><h1>Lab shop</h1><ul>{links}</ul></body></html>")
        if url.path == "/item":
            item_id = qs.get("id", ["1"])[0]
            try:  # vulnerable on purpose: numeric concatenation
                rows = self._query("SELECT id, name, price FROM items WHERE id=" + item_id)
            except sqlite3.Error:
                return self._send(500, "db error")
            return self._send(
                200, "<html><body>" + "".join(f"<p>{r[1]}: {r[2]}</p>" for r in rows) + "</body>"
            )
        if url.path == "/search":
            q = qs.get("q", [""])[0]
            rows = self._query("SELECT name FROM items WHERE name LIKE ?", ("%" + q + "%",))
            found = "".join(f"<li>{r[0]}</li>" for r in rows)
            return self._send(200, f"<html><body>Results for {q}<ul>{found}</ul></body></html>")  # reflected
        if url.path.startswith("/static/"):
            try:
                kb = max(1, min(int(url.path.rsplit("/", 1)[1]), 65536))
            except ValueError:
                return self._send(404, "not found")
            return self._send(200, bytes(range(256)) * (4 * kb), "application/octet-stream")
        return self._send(404, "not found")

    def _form(self):
        n = int(self.headers.get("Content-Length") or 0)
        return parse_qs(self.rfile.read(n).decode(errors="replace")) if n else {}

    def do_POST(self):
        url = urlparse(self.path)
        form = self._form()
        if url.path == "/login":
            user = form.get("username", [""])[0]
            pw = form.get("password", [""])[0]
            try:  # vulnerable on purpose: string formatting
                rows = self._query(f"SELECT username FROM users WHERE username='{user}' AND password='{pw}'")
            except sqlite3.Error:
                return self._send(500, "db error")
            return self._send(200, f"Welcome {rows[0][0]}" if rows else "Login failed")
        if url.path == "/comment":
            body = form.get("body", [""])[0]
            self._query("INSERT INTO comments (body) VALUES (?)", (body,))
            return self._send(200, f"<html><body>Thanks! You wrote: {body}</body></html>")  # reflected
        return self._send(404, "not found")


class Server(ThreadingHTTPServer):
    request_queue_size = 256  # slowloris opens hundreds of connections; the default backlog is 5
    daemon_threads = True


def main():
    address, port, db_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    Handler.db = init_db(db_path)
    server = Server((address, port), Handler)
    print(f"webapp listening on {address}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
