"""Telethon 1.45.0's client-side cost per RPC round trip, the counterpart of SessionBench's client
figure: MTProtoState.write_data_as_message + encrypt_message_data for a 64-byte request, then
decrypt_message_data (checks and TL parsing of the rpc_result) of a server answer of the given size.
Prints "name value unit" lines; times are the best of 5 runs in thread CPU time. Uses cryptg for AES
when it is installed, as Telethon does."""
import hashlib
import io
import logging
import os
import struct
import time

from telethon.crypto import AES, AuthKey
from telethon.network.mtprotostate import MTProtoState

KEY = os.urandom(256)
loggers = {"telethon.network.mtprotostate": logging.getLogger("quiet")}


def server_packet(session, msg_id, seq_no, body):
    plain = struct.pack("<qqqii", 7, session, msg_id, seq_no, len(body)) + body
    padding = os.urandom(-(len(plain) + 12) % 16 + 12)
    msg_key = hashlib.sha256(KEY[96:128] + plain + padding).digest()[8:24]
    aes_key, aes_iv = MTProtoState._calc_key(KEY, msg_key, False)
    return struct.pack("<Q", AuthKey(KEY).key_id) + msg_key + AES.encrypt_ige(plain + padding, aes_key, aes_iv)


def run(size, count):
    best = float("inf")
    request = b"\x42" * 64
    for _ in range(5):
        state = MTProtoState(AuthKey(KEY), loggers)
        state.reset()
        state.salt = 7
        now = time.time()
        base = (int(now) << 32) | 1
        answers = [server_packet(state.id, base + 4 * i, 2 * i + 1,
                                 struct.pack("<Iq", 0xf35c6d01, 4 * i) + os.urandom(size)) for i in range(count)]
        start = time.thread_time()
        for i in range(count):
            buffer = io.BytesIO()
            state.write_data_as_message(buffer, request, True)
            state.encrypt_message_data(buffer.getvalue())
            state.decrypt_message_data(answers[i])
        best = min(best, (time.thread_time() - start) / count * 1e6)
    return best


for size in (64, 4096, 65536):
    print(f"session_client_roundtrip_{size}B_telethon {run(size, 500 if size > 10000 else 5000):.2f} us")
