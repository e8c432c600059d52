#!/usr/bin/env python3
"""Times Telethon's TL decoder and encoder on the benchmark payload.

Usage: bench_telethon.py PAYLOAD MESSAGES_PER_PAYLOAD

Prints two lines in the format of Benchmarks/TLBench so scripts/bench-tl can put them side by side:
  telethon decode <MB/s> <payloads/s> <messages/s>
  telethon encode <MB/s> <payloads/s> <messages/s>
Each figure is the best of several rounds of about a second (the machine is shared and noisy).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from telethon.extensions import BinaryReader


def best_rate(operation, rounds: int = 5, seconds: float = 1.0) -> float:
    """Calls per second of the fastest round."""
    best = 0.0
    for _ in range(rounds):
        calls, start = 0, time.perf_counter()
        while True:
            operation()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        best = max(best, calls / elapsed)
    return best


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: bench_telethon.py PAYLOAD MESSAGES_PER_PAYLOAD", file=sys.stderr)
        return 2
    data = Path(sys.argv[1]).read_bytes()
    messages = int(sys.argv[2])
    obj = BinaryReader(data).tgread_object()
    if bytes(obj) != data:
        print("bench_telethon: Telethon does not re-encode the payload to the same bytes", file=sys.stderr)
        return 1
    for name, operation in (("decode", lambda: BinaryReader(data).tgread_object()), ("encode", lambda: bytes(obj))):
        rate = best_rate(operation)
        print(f"telethon {name} {rate * len(data) / 1e6:.2f} {rate:.1f} {rate * messages:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
