#!/usr/bin/env python3
"""Writes the TL benchmark payload: one messages.messages with 100 messages, serialized by Telethon.

Usage: make_bench_payload.py OUTPUT

The messages carry what a history page carries (entities, replies, forwards, photos, documents,
reply markup, reactions) next to the users and chats they mention. Deterministic: a fixed seed.
Both scripts/bench-tl sides (Benchmarks/TLBench and bench_telethon.py) read these very bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from telethon.tl import types as T  # noqa: E402

from make_tl_vectors import Builder, Gen  # noqa: E402

MESSAGE_COUNT = 100
SEED = 100229


def payload() -> bytes:
    builder = Builder(Gen(SEED))
    messages = [builder.message(rich=True) for _ in range(MESSAGE_COUNT)]
    users = [builder.user() for _ in range(40)]
    chats = [builder.chat() for _ in range(10)]
    return bytes(T.messages.Messages(messages=messages, topics=[], chats=chats, users=users))


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: make_bench_payload.py OUTPUT", file=sys.stderr)
        return 2
    data = payload()
    Path(sys.argv[1]).write_bytes(data)
    print(f"make_bench_payload: {len(data)} bytes, {MESSAGE_COUNT} messages -> {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
