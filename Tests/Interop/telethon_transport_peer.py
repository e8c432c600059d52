"""Telethon 1.45.0 as a live transport peer: connects to a tgsm MTProtoTransportServer that echoes
packets (Tests/MTProtoNIOTests/TelethonTransportPeerTests.swift starts it), over each TCP transport
Telethon has, plain and obfuscated, and checks what comes back. Prints one JSON object and exits 0
when every check passed.

Padded intermediate runs with a codec built on Telethon's that pads the spec's full 0-15 bytes (Telethon's
own pads 0-3 and strips `length % 4`) and finds the end of each received message from the message
itself, as the spec implies: it is the peer that pads the full range.

usage: telethon_transport_peer.py PORT
"""
import asyncio
import collections
import json
import logging
import os
import random
import struct
import sys

from telethon.network.connection import (
    ConnectionTcpAbridged,
    ConnectionTcpFull,
    ConnectionTcpIntermediate,
    ConnectionTcpObfuscated,
)
from telethon.network.connection.connection import Connection
from telethon.network.connection.tcpintermediate import (
    IntermediatePacketCodec,
    RandomizedIntermediatePacketCodec,
)

# A failsafe against a hang, not a timing assertion: every step normally takes milliseconds.
STEP_TIMEOUT = 30


def payload(size, seed):
    return bytes((i * 31 + seed * 7 + 1) & 0xFF for i in range(size))


def message_length(packet):
    """Where the MTProto message in `packet` ends: an unencrypted message's length field, or an
    encrypted one's whole 16-byte blocks after auth_key_id and msg_key."""
    if len(packet) < 8:
        return len(packet)
    if packet[:8] == bytes(8):
        if len(packet) < 20:
            return len(packet)
        declared = 20 + struct.unpack("<I", packet[16:20])[0]
        return declared if declared <= len(packet) else len(packet)
    if len(packet) < 40:
        return len(packet)
    return 24 + (len(packet) - 24) // 16 * 16


class FullRangePaddedCodec(RandomizedIntermediatePacketCodec):
    tag = b"\xdd\xdd\xdd\xdd"
    obfuscate_tag = tag
    sent_padding = set()

    def encode_packet(self, data):
        padding = os.urandom(random.randint(0, 15))
        FullRangePaddedCodec.sent_padding.add(len(padding))
        return struct.pack("<i", len(data) + len(padding)) + data + padding

    async def read_packet(self, reader):
        packet = await IntermediatePacketCodec.read_packet(self, reader)
        return packet[:message_length(packet)]


class ConnectionTcpPaddedIntermediate(Connection):
    packet_codec = FullRangePaddedCodec


class ConnectionTcpObfuscatedIntermediate(ConnectionTcpObfuscated):
    packet_codec = IntermediatePacketCodec


class ConnectionTcpObfuscatedPaddedIntermediate(ConnectionTcpObfuscated):
    packet_codec = FullRangePaddedCodec


def loggers():
    return collections.defaultdict(lambda: logging.getLogger("peer"))


async def echo(connection_class, port):
    connection = connection_class("127.0.0.1", port, 2, loggers=loggers())
    await asyncio.wait_for(connection.connect(), STEP_TIMEOUT)
    try:
        # Sizes of encrypted MTProto messages (24 + 16k): padded intermediate finds their end.
        sizes = (40, 1048, 1024 * 1024 + 24) if connection.packet_codec is not FullRangePaddedCodec else \
            (40, 1048, 1024 * 1024 + 24) + tuple(24 + 16 * k for k in range(1, 60))
        for seed, size in enumerate(sizes):
            sent = payload(size, seed)
            await connection.send(sent)
            received = await asyncio.wait_for(connection.recv(), STEP_TIMEOUT)
            if received != sent:
                return f"echo of {size} bytes differs ({len(received)} bytes back)"
        # The test server answers a packet starting with 0xffffffff with transport error -404.
        await connection.send(b"\xff\xff\xff\xff" + bytes(20))
        received = await asyncio.wait_for(connection.recv(), STEP_TIMEOUT)
        if len(received) < 4 or struct.unpack("<i", received[:4])[0] != -404:
            return f"expected transport error -404, got {received.hex()}"
        return "ok"
    finally:
        await connection.disconnect()


async def main(port):
    random.seed(20261203)
    results = {}
    for connection_class in (
        ConnectionTcpFull, ConnectionTcpAbridged, ConnectionTcpIntermediate, ConnectionTcpPaddedIntermediate,
        ConnectionTcpObfuscated, ConnectionTcpObfuscatedIntermediate, ConnectionTcpObfuscatedPaddedIntermediate,
    ):
        results[connection_class.__name__] = await echo(connection_class, port)
    # The padding lengths come from a seeded generator: the run is repeatable and sends every length 0-15.
    results["paddingLengthsSent"] = "ok" if FullRangePaddedCodec.sent_padding == set(range(16)) else \
        f"only {sorted(FullRangePaddedCodec.sent_padding)}"
    print(json.dumps(results, sort_keys=True))
    return 0 if all(value == "ok" for value in results.values()) else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.CRITICAL)
    sys.exit(asyncio.run(main(int(sys.argv[1]))))
