#!/usr/bin/env python3
"""Times Telethon's gzip_packed on the TL benchmark payload: GzipPacked.gzip_if_smaller (what its
sender does to a large request; gzip.compress at level 9, or isal's igzip when it is installed) and
GzipPacked.read (what its reader does to a gzip_packed answer).

Usage: bench_gzip_telethon.py PAYLOAD

Prints lines in the format of Benchmarks/TLBench's gzip rows, in thread CPU time per call, the best
of 5 rounds: gzip telethon <pack|unpack> <µs per call> <gzip_packed bytes>
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from telethon.extensions import BinaryReader
from telethon.tl.core.gzippacked import GzipPacked


def best_micros(operation, rounds: int = 5, seconds: float = 0.3) -> float:
    best = float("inf")
    for _ in range(rounds):
        calls, start = 0, time.thread_time()
        while True:
            operation()
            calls += 1
            elapsed = time.thread_time() - start
            if elapsed >= seconds:
                break
        best = min(best, elapsed / calls * 1e6)
    return best


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: bench_gzip_telethon.py PAYLOAD", file=sys.stderr)
        return 2
    data = Path(sys.argv[1]).read_bytes()
    packed = GzipPacked.gzip_if_smaller(True, data)
    if packed == data or GzipPacked.read(BinaryReader(packed)) != data:
        print("bench_gzip_telethon: the payload does not round-trip through gzip_packed", file=sys.stderr)
        return 1
    pack = best_micros(lambda: GzipPacked.gzip_if_smaller(True, data))
    unpack = best_micros(lambda: GzipPacked.read(BinaryReader(packed)))
    print(f"gzip telethon pack {pack:.1f} {len(packed)}")
    print(f"gzip telethon unpack {unpack:.1f} {len(packed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
