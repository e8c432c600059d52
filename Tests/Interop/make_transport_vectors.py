"""Frames MTProto packets with Telethon's own transport codecs and writes what they produce to
Tests/Interop/transport-vectors.json, for Tests/MTProtoNIOTests/TelethonTransportVectorsTests.swift.

Deterministic: payload bytes follow a formula, and the obfuscated2 headers come from a seeded
generator standing in for os.urandom. Run with the pinned venv: `.build/venv/bin/python
Tests/Interop/make_transport_vectors.py > Tests/Interop/transport-vectors.json`.
"""
import json
import os
import random

import telethon
from telethon.network.connection.tcpabridged import AbridgedPacketCodec
from telethon.network.connection.tcpfull import FullPacketCodec
from telethon.network.connection.tcpintermediate import (
    IntermediatePacketCodec,
    RandomizedIntermediatePacketCodec,
)
from telethon.network.connection.tcpobfuscated import ObfuscatedIO


def payload(size, seed):
    # The same formula as `payload(_:seed:)` in Tests/MTProtoNIOTests/TestSupport.swift.
    return bytes((i * 31 + seed * 7 + 1) & 0xFF for i in range(size))


# 126 and 127 words straddle abridged's short and long length; 0x10001 words uses all 3 length bytes.
PACKETS = [(4, 0), (8, 1), (504, 2), (508, 3), (1024, 4), (4 * 0x10001, 5), (24, 6)]


def stream(name, codec, tag):
    packets = []
    for size, seed in PACKETS:
        framed = codec.encode_packet(payload(size, seed))
        packets.append({
            "size": size,
            "seed": seed,
            "length": len(framed),
            "head": framed[:12].hex(),
            "tail": framed[-8:].hex(),
        })
    return {"transport": name, "tag": (tag or b"").hex(), "packets": packets}


def obfuscated_headers():
    rng = random.Random(20261125)
    real_urandom = os.urandom
    os.urandom = lambda n: bytes(rng.getrandbits(8) for _ in range(n))
    try:
        return [
            {"codec": codec.__name__, "header": bytes(ObfuscatedIO.init_header(codec)[0]).hex()}
            for codec in (AbridgedPacketCodec, IntermediatePacketCodec, RandomizedIntermediatePacketCodec)
            for _ in range(4)
        ]
    finally:
        os.urandom = real_urandom


def main():
    print(json.dumps({
        "telethon": telethon.__version__,
        "streams": [
            stream("abridged", AbridgedPacketCodec(None), AbridgedPacketCodec.tag),
            stream("intermediate", IntermediatePacketCodec(None), IntermediatePacketCodec.tag),
            stream("full", FullPacketCodec(None), FullPacketCodec.tag),
        ],
        "obfuscated2Headers": obfuscated_headers(),
    }, indent=1))


if __name__ == "__main__":
    main()
