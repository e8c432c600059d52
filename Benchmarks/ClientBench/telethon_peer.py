"""Telethon 1.45 side of ClientBench: the same workloads against the same test DC, as JSON.

usage: telethon_peer.py host port pem_file bot_token calls parallel_calls history_calls idle_clients
"""
import asyncio
import gc
import json
import logging
import sys
import time

from telethon import TelegramClient, functions, types
from telethon.crypto import rsa
from telethon.sessions import MemorySession

# Telethon warns "Attempt 1 at new auth_key failed: Step 3 invalid new nonce hash" for about one key
# exchange in 200 and retries: it strips leading zero bytes from g_ab before hashing the auth key
# (telethon/network/authenticator.py, rsa.get_byte_array), where the spec's key is 256 bytes, and
# g_ab < 2^2040 one time in ~200 (dh_prime starts with 0xC7). The warning comes from its sender.
logging.getLogger("telethon.network.mtprotosender").setLevel(logging.ERROR)

host, port, pem_file, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
calls, parallel_calls, history_calls, idle_clients = (int(v) for v in sys.argv[5:9])


def new_client():
    session = MemorySession()
    session.set_dc(1, host, port)
    return TelegramClient(session, 1, "bench", flood_sleep_threshold=0, receive_updates=False)


def rss_bytes():
    with open("/proc/self/statm") as statm:
        import resource
        return int(statm.read().split()[1]) * resource.getpagesize()


async def measure(calls, in_flight, body):
    per_worker = calls // in_flight
    latencies = []

    async def worker():
        for _ in range(per_worker):
            begin = time.perf_counter()
            await body()
            latencies.append(time.perf_counter() - begin)

    start = time.perf_counter()
    cpu_start = time.process_time()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))]

    return {"rps": per_worker * in_flight / seconds, "p50": pct(0.5), "p99": pct(0.99), "cpu_per_call": cpu / (per_worker * in_flight)}


async def idle_client_ready(c):
    """Connected, logged in, and one 100-message page fetched, as ClientBench's idle clients."""
    await c.start(bot_token=token)
    await c(functions.messages.GetHistoryRequest(
        peer=types.InputPeerChannel(3001, 0x3001), offset_id=0, offset_date=0, add_offset=0, limit=100, max_id=0, min_id=0, hash=0))


async def main():
    rsa._server_keys.clear()
    with open(pem_file) as pem:
        rsa.add_key(pem.read(), old=False)
    client = new_client()
    await client.start(bot_token=token)
    nearest = functions.help.GetNearestDcRequest
    history = functions.messages.GetHistoryRequest(
        peer=types.InputPeerChannel(3001, 0x3001), offset_id=0, offset_date=0, add_offset=0, limit=100, max_id=0, min_id=0, hash=0)
    await measure(200, 8, lambda: client(nearest()))
    rows = [
        await measure(calls, 1, lambda: client(nearest())),
        await measure(parallel_calls, 64, lambda: client(nearest())),
        await measure(history_calls, 1, lambda: client(history)),
    ]
    await client.disconnect()

    gc.collect()
    before = rss_bytes()
    idle = []
    for start in range(0, idle_clients, 50):
        batch = [new_client() for _ in range(min(50, idle_clients - start))]
        await asyncio.gather(*(idle_client_ready(c) for c in batch))
        idle += batch
    await asyncio.sleep(1)
    gc.collect()
    after = rss_bytes()
    print(json.dumps({"rows": rows, "kib_per_client": (after - before) / idle_clients / 1024 if idle_clients else 0, "clients": idle_clients}))
    for c in idle:
        await c.disconnect()


asyncio.run(main())
