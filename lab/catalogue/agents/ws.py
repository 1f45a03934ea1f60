"""WebSocket chat (Debian's python3-websockets): a server that broadcasts, a client that chats.

ws.py serve HOST PORT
ws.py chat URL SECONDS SEED      send a message now and then (think times), read what others say
"""

import asyncio
import random
import sys

import websockets

CLIENTS = set()


async def handler(ws, path=None):
    CLIENTS.add(ws)
    try:
        async for message in ws:
            websockets.broadcast(CLIENTS, message)
    finally:
        CLIENTS.discard(ws)


async def serve(host, port):
    async with websockets.serve(handler, host, int(port), ping_interval=20):
        await asyncio.Future()


async def chat(url, seconds, seed):
    rng = random.Random(int(seed))
    loop = asyncio.get_running_loop()
    end = loop.time() + float(seconds)
    sent = 0
    async with websockets.connect(url, ping_interval=15) as ws:
        while loop.time() < end:
            await ws.send(
                " ".join(
                    rng.choice(["hi", "ok", "lunch?", "deploy done", "see ticket", "thanks", "brb"])
                    for _ in range(rng.randint(1, 12))
                )
            )
            sent += 1
            try:
                while True:
                    await asyncio.wait_for(
                        ws.recv(), timeout=min(rng.expovariate(1 / 4), max(0.1, end - loop.time()))
                    )
            except TimeoutError:
                pass
    print(f"sent {sent} messages")


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    asyncio.run(serve(*args) if mode == "serve" else chat(*args))
