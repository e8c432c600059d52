"""Drives Telethon 1.45's own key exchange against a server on the other end of stdin/stdout.

Telethon's `authenticator.do_authentication` runs over its real `MTProtoPlainSender` (its
unencrypted envelope and msg_ids); only the connection under it is replaced by a pipe: each packet
Telethon sends is printed as `MSG <hex>`, and the next stdin line is the hex of the server's answer.
Like Telethon's `MTProtoSender._try_gen_auth_key`, a SecurityError or AssertionError starts the
exchange over on the same connection (up to 5 attempts). After each exchange the script prints
`KEY <hex of Telethon's auth key> <time offset> <attempts>`, and `DONE` at the end.

Randomness and time are pinned so a run is reproducible: exchange i draws `os.urandom` from
`random.Random(SEED + i)` and `time.time()` returns the fixed clock NOW.

usage: telethon_handshake.py SEED EXCHANGES NOW < server-key-pem-first, then answers
"""
import asyncio
import os
import random
import sys
import time

from telethon.crypto import rsa
from telethon.errors import SecurityError
from telethon.network import authenticator
from telethon.network.mtprotoplainsender import MTProtoPlainSender


class PipeConnection:
    async def send(self, data):
        sys.stdout.write("MSG " + data.hex() + "\n")
        sys.stdout.flush()

    async def recv(self):
        line = sys.stdin.readline()
        if not line:
            raise ConnectionError("the server side closed the pipe")
        return bytes.fromhex(line.strip())


class Loggers(dict):
    def __missing__(self, key):
        import logging
        return logging.getLogger(key)


async def main():
    seed, exchanges, now = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    time.time = lambda: now

    pem = []
    while True:
        line = sys.stdin.readline()
        pem.append(line)
        if line.startswith("-----END"):
            break
    rsa._server_keys.clear()
    rsa.add_key("".join(pem), old=False)

    for index in range(exchanges):
        os.urandom = random.Random(seed + index).randbytes
        sender = MTProtoPlainSender(PipeConnection(), loggers=Loggers())
        for attempt in range(1, 6):
            try:
                auth_key, offset = await authenticator.do_authentication(sender)
                break
            except (SecurityError, AssertionError):
                continue
        else:
            raise SystemExit("no auth key after 5 attempts")
        sys.stdout.write("KEY %s %d %d\n" % (auth_key.key.hex(), offset, attempt))
        sys.stdout.flush()
    sys.stdout.write("DONE\n")
    sys.stdout.flush()


asyncio.run(main())
