"""A worker in Python, unchanged but for its URL: python3-websockets over the
hub's Unix socket, transparent mode. It subscribes the way it would subscribe to
the exchange itself and prints what it receives.

Usage: /usr/bin/python3 examples/python-worker.py <socket-path> [upstream] [topic] [count]
"""
import asyncio
import json
import sys

import websockets


async def main() -> None:
    socket_path = sys.argv[1]
    upstream = sys.argv[2] if len(sys.argv) > 2 else "feed"
    topic = sys.argv[3] if len(sys.argv) > 3 else "ethusdt@trade"
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 0  # 0: forever
    async with websockets.unix_connect(socket_path, uri=f"ws://localhost/u/{upstream}", subprotocols=["feed-v1"]) as ws:
        print(f"[python] attached to {upstream}, subscribing to {topic}", flush=True)
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": [topic], "id": 1}))
        seen = 0
        async for raw in ws:
            msg = json.loads(raw)
            if "stream" in msg:
                seen += 1
                print(f"[python] {msg['stream']} price {msg['data']['p']} seq {msg['data']['seq']}", flush=True)
                if count and seen >= count:
                    break
            else:
                print(f"[python] {raw}", flush=True)


asyncio.run(main())
