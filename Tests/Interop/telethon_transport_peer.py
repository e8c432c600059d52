"""Telethon 1.45.0 as a live transport peer: connects to a tgsm MTProtoTransportServer that echoes
packets (Tests/MTProtoNIOTests/TelethonTransportPeerTests.swift starts it), over each TCP transport
Telethon has, and checks what comes back. Prints one JSON object and exits 0 when every check passed.

usage: telethon_transport_peer.py PORT
"""
import asyncio
import collections
import json
import logging
import struct
import sys

from telethon.network.connection import (
    ConnectionTcpAbridged,
    ConnectionTcpFull,
    ConnectionTcpIntermediate,
    ConnectionTcpObfuscated,
)

# A failsafe against a hang, not a timing assertion: every step normally takes milliseconds.
STEP_TIMEOUT = 30


def payload(size, seed):
    return bytes((i * 31 + seed * 7 + 1) & 0xFF for i in range(size))


def loggers():
    return collections.defaultdict(lambda: logging.getLogger("peer"))


async def echo(connection_class, port):
    connection = connection_class("127.0.0.1", port, 2, loggers=loggers())
    await asyncio.wait_for(connection.connect(), STEP_TIMEOUT)
    try:
        for seed, size in enumerate((24, 1024, 1024 * 1024)):
            sent = payload(size, seed)
            await connection.send(sent)
            received = await asyncio.wait_for(connection.recv(), STEP_TIMEOUT)
            if received != sent:
                return f"echo of {size} bytes differs ({len(received)} bytes back)"
        # The test server answers a packet starting with 0xffffffff with transport error -404.
        await connection.send(b"\xff\xff\xff\xff" + bytes(20))
        received = await asyncio.wait_for(connection.recv(), STEP_TIMEOUT)
        if len(received) != 4 or struct.unpack("<i", received)[0] != -404:
            return f"expected transport error -404, got {received.hex()}"
        return "ok"
    finally:
        await connection.disconnect()


async def obfuscated_is_refused(port):
    connection = ConnectionTcpObfuscated("127.0.0.1", port, 2, loggers=loggers())
    await asyncio.wait_for(connection.connect(), STEP_TIMEOUT)
    try:
        await connection.send(payload(24, 9))
        try:
            received = await asyncio.wait_for(connection.recv(), STEP_TIMEOUT)
            return f"obfuscated2 got an answer: {received.hex()}"
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            return "ok"  # the server closed the connection without a reply, as documented
    finally:
        await connection.disconnect()


async def main(port):
    results = {}
    for connection_class in (ConnectionTcpFull, ConnectionTcpAbridged, ConnectionTcpIntermediate):
        results[connection_class.__name__] = await echo(connection_class, port)
    results["ConnectionTcpObfuscated"] = await obfuscated_is_refused(port)
    print(json.dumps(results, sort_keys=True))
    return 0 if all(value == "ok" for value in results.values()) else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.CRITICAL)
    sys.exit(asyncio.run(main(int(sys.argv[1]))))
