"""AES-256-IGE speed of the Python peers on 1 MiB, measured like CryptoBench (best of 7 trials, thread
CPU time, MB = 10^6 bytes). Prints "name value unit" lines.

Run: .build/venv/bin/python Benchmarks/CryptoBench/peers.py
"""
import os
import time

import cryptg
import tgcrypto

MIB = 1 << 20
key = os.urandom(32)
iv = os.urandom(32)
data = os.urandom(MIB)


def measure(body, iterations, trials=7):
    body()  # warm-up
    best = float('inf')
    for _ in range(trials):
        start = time.thread_time()
        for _ in range(iterations):
            body()
        best = min(best, (time.thread_time() - start) / iterations)
    return best


def report(name, seconds):
    print(f'{name} {MIB / seconds / 1e6:.2f} MB/s')


# Sanity: both peers agree with each other (and, in the Swift tests, with us via Telethon's vectors).
assert cryptg.encrypt_ige(data[:4096], key, iv) == tgcrypto.ige256_encrypt(data[:4096], key, iv)

cipher = cryptg.encrypt_ige(data, key, iv)
report('aes256_ige_encrypt_1MiB_cryptg', measure(lambda: cryptg.encrypt_ige(data, key, iv), 20))
report('aes256_ige_decrypt_1MiB_cryptg', measure(lambda: cryptg.decrypt_ige(cipher, key, iv), 20))
report('aes256_ige_encrypt_1MiB_tgcrypto', measure(lambda: tgcrypto.ige256_encrypt(data, key, iv), 10))
report('aes256_ige_decrypt_1MiB_tgcrypto', measure(lambda: tgcrypto.ige256_decrypt(cipher, key, iv), 10))
