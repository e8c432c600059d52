"""Frames MTProto packets with Telethon's own transport codecs and writes what they produce to
Tests/Interop/transport-vectors.json, for Tests/MTProtoNIOTests/TelethonTransportVectorsTests.swift.

Deterministic: payload bytes follow a formula, and the obfuscated2 headers come from a seeded
generator standing in for os.urandom. The obfuscated streams record, per transport, the 64 random
bytes Telethon drew, the header it sent, its encrypted stream of framed packets, and what it would
decrypt a server's reply from; the MTProxy ones add a secret and a DC id. Run with the pinned venv: `.build/venv/bin/python
Tests/Interop/make_transport_vectors.py > Tests/Interop/transport-vectors.json`.
"""
import json
import os
import random
import struct

import telethon
from telethon.network.connection.tcpabridged import AbridgedPacketCodec
from telethon.network.connection.tcpfull import FullPacketCodec
from telethon.network.connection.tcpintermediate import (
    IntermediatePacketCodec,
    RandomizedIntermediatePacketCodec,
)
from telethon.network.connection.tcpmtproxy import MTProxyIO
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


# The spec's rules for the random header (Telethon's MTProxy check of bytes 4..8 is a no-op).
FORBIDDEN_FIRST = [b"HEAD", b"POST", b"GET ", b"OPTI", b"PVrG", b"\x16\x03\x01\x02", b"\xdd" * 4, b"\xee" * 4]


def spec_acceptable(random_bytes):
    return random_bytes[0] != 0xEF and random_bytes[:4] not in FORBIDDEN_FIRST and random_bytes[4:8] != bytes(4)


def obfuscated_streams():
    rng = random.Random(20261203)
    real_urandom = os.urandom
    drawn = []

    def urandom(n):
        data = bytes(rng.getrandbits(8) for _ in range(n))
        drawn.append(data)
        return data

    os.urandom = urandom
    streams = []
    try:
        cases = [(codec, None, None) for codec in (AbridgedPacketCodec, IntermediatePacketCodec, RandomizedIntermediatePacketCodec)]
        cases += [(IntermediatePacketCodec, bytes(range(0x10, 0x20)), 2),
                  (RandomizedIntermediatePacketCodec, bytes(range(0xa0, 0xb0)), -4)]
        for codec, secret, dc_id in cases:
            while True:
                drawn.clear()
                if secret is None:
                    header, encryptor, decryptor = ObfuscatedIO.init_header(codec)
                else:
                    header, encryptor, decryptor = MTProxyIO.init_header(secret, dc_id, codec)
                if spec_acceptable(drawn[-1]):
                    break
            random_bytes = drawn[-1]
            # Plain framing, as the codec would write it after the header (no tag: the header has it).
            packets = b"".join(
                struct.pack("<i", size) + payload(size, seed) if codec is RandomizedIntermediatePacketCodec
                else codec(None).encode_packet(payload(size, seed))
                for size, seed in ((40, 1), (1048, 2)))
            reply = b"".join(
                struct.pack("<i", size) + payload(size, seed) if codec is RandomizedIntermediatePacketCodec
                else codec(None).encode_packet(payload(size, seed))
                for size, seed in ((56, 3), (504, 4)))
            streams.append({
                "codec": codec.__name__,
                "secret": secret.hex() if secret else None,
                "dcID": dc_id,
                "random": random_bytes.hex(),
                "header": bytes(header).hex(),
                "clientPlain": packets.hex(),
                "clientWire": encryptor.encrypt(packets).hex(),
                "serverPlain": reply.hex(),
                "serverWire": decryptor.encrypt(reply).hex(),
            })
    finally:
        os.urandom = real_urandom
    return streams


def main():
    print(json.dumps({
        "telethon": telethon.__version__,
        "streams": [
            stream("abridged", AbridgedPacketCodec(None), AbridgedPacketCodec.tag),
            stream("intermediate", IntermediatePacketCodec(None), IntermediatePacketCodec.tag),
            stream("full", FullPacketCodec(None), FullPacketCodec.tag),
        ],
        "obfuscated2Headers": obfuscated_headers(),
        "obfuscatedStreams": obfuscated_streams(),
    }, indent=1))


if __name__ == "__main__":
    main()
