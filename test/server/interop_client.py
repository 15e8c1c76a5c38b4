#!/usr/bin/python3
"""Interop peer for test/server/interop.test.ts: python-websockets (a client
no one here wrote) exchanges text and binary with the listener and prints one
JSON line with what it saw. Usage: interop_client.py tcp URL | unix PATH URL"""
import asyncio
import json
import sys

import websockets


async def exchange(ws):
    seen = {}
    await ws.send("héllo from python")
    reply = await asyncio.wait_for(ws.recv(), 5)
    seen["text"] = reply if isinstance(reply, str) else None
    payload = bytes(range(256)) * 4
    await ws.send(payload)
    reply = await asyncio.wait_for(ws.recv(), 5)
    seen["binary_ok"] = isinstance(reply, bytes) and reply == payload
    seen["subprotocol"] = ws.subprotocol
    await ws.close(1000, "bye")
    seen["close_code"] = ws.close_code
    return seen


async def main():
    mode = sys.argv[1]
    if mode == "tcp":
        connect = websockets.connect(sys.argv[2], subprotocols=["interop-v1"], open_timeout=5)
    else:
        connect = websockets.unix_connect(sys.argv[2], sys.argv[3], subprotocols=["interop-v1"], open_timeout=5)
    async with connect as ws:
        seen = await exchange(ws)
    print(json.dumps(seen), flush=True)


asyncio.run(main())
