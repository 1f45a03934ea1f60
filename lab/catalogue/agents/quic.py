"""HTTP/3 over QUIC with aioquic (PyPI; runs on the project's interpreter).

quic.py serve HOST PORT ROOT CERT KEY          serve the files under ROOT
quic.py get HOST PORT PAGES SEED               load PAGES pages with every resource they list, think between
"""

import asyncio
import random
import ssl
import sys
from pathlib import Path

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.asyncio.client import connect
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated


class Server(QuicConnectionProtocol):
    root = Path(".")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._h3 = None

    def quic_event_received(self, event):
        if isinstance(event, ProtocolNegotiated):
            self._h3 = H3Connection(self._quic)
        if self._h3 is None:
            return
        for ev in self._h3.handle_event(event):
            if isinstance(ev, HeadersReceived):
                path = dict(ev.headers).get(b":path", b"/").decode().split("?")[0].lstrip("/") or "index.html"
                file = (self.root / path).resolve()
                ok = file.is_file() and self.root in file.parents
                body = file.read_bytes() if ok else b"not found\n"
                self._h3.send_headers(
                    ev.stream_id,
                    [
                        (b":status", b"200" if ok else b"404"),
                        (b"content-length", str(len(body)).encode()),
                        (b"server", b"cat-h3"),
                    ],
                )
                self._h3.send_data(ev.stream_id, body, end_stream=True)
        self.transmit()


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._h3 = H3Connection(self._quic)
        self._waiting = {}

    def quic_event_received(self, event):
        for ev in self._h3.handle_event(event):
            if isinstance(ev, (HeadersReceived, DataReceived)) and ev.stream_id in self._waiting:
                fut, chunks = self._waiting[ev.stream_id]
                if isinstance(ev, DataReceived):
                    chunks.append(ev.data)
                if ev.stream_ended and not fut.done():
                    fut.set_result(b"".join(chunks))

    async def get(self, authority, path):
        sid = self._quic.get_next_available_stream_id()
        self._h3.send_headers(
            sid,
            [
                (b":method", b"GET"),
                (b":scheme", b"https"),
                (b":authority", authority.encode()),
                (b":path", path.encode()),
                (b"user-agent", b"cat-h3-client"),
            ],
            end_stream=True,
        )
        fut = asyncio.get_running_loop().create_future()
        self._waiting[sid] = (fut, [])
        self.transmit()
        return await asyncio.wait_for(fut, 20)


async def run_server(host, port, root, cert, key):
    Server.root = Path(root).resolve()
    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    config.load_cert_chain(cert, key)
    await serve(host, int(port), configuration=config, create_protocol=Server)
    await asyncio.Future()


async def run_client(host, port, pages, seed):
    rng = random.Random(int(seed))
    config = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE, server_name="quic.cat.test"
    )
    fetched = 0
    async with connect(host, int(port), configuration=config, create_protocol=Client) as client:
        for _ in range(int(pages)):
            page = rng.randrange(12)
            await client.get("quic.cat.test", f"/page{page}.html")
            listing = (await client.get("quic.cat.test", f"/resources/page{page}.txt")).decode().split()
            await asyncio.gather(*(client.get("quic.cat.test", r) for r in listing))
            fetched += 2 + len(listing)
            await asyncio.sleep(rng.uniform(1, 6))
    print(f"{fetched} resources over HTTP/3")


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    asyncio.run(run_server(*args) if mode == "serve" else run_client(*args))
