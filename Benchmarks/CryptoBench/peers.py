"""AES-256-IGE speed of the Python peers on 1 MiB, measured like CryptoBench (best of 7 trials, thread
CPU time, MB = 10^6 bytes). Prints "name value unit" lines.

Run: .build/venv/bin/python Benchmarks/CryptoBench/peers.py
     .build/venv/bin/python Benchmarks/CryptoBench/peers.py ctr   (AES-256-CTR: tgcrypto, pyaes as
     Telethon's obfuscation uses it, pycryptodome as mtprotoproxy uses it)
"""
import os
import sys
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


if sys.argv[1:] == ["ctr"]:
    import pyaes
    from Crypto.Cipher import AES
    from telethon.crypto import AESModeCTR

    counter, state = bytearray(iv[:16]), bytearray(1)  # tgcrypto advances both in place, as a stream
    report('aes256_ctr_1MiB_tgcrypto', measure(lambda: tgcrypto.ctr256_encrypt(data, key, counter, state), 20))
    dome = AES.new(key, AES.MODE_CTR, initial_value=iv[:16], nonce=b"")
    report('aes256_ctr_1MiB_pycryptodome', measure(lambda: dome.encrypt(data), 20))
    telethon_ctr = AESModeCTR(key, iv[:16])
    small = data[:64 * 1024]
    seconds = measure(lambda: telethon_ctr.encrypt(small), 1, trials=3)
    print(f'aes256_ctr_64KiB_telethon_pyaes {len(small) / seconds / 1e6:.2f} MB/s')
    sys.exit(0)

# Sanity: both peers agree with each other (and, in the Swift tests, with us via Telethon's vectors).
assert cryptg.encrypt_ige(data[:4096], key, iv) == tgcrypto.ige256_encrypt(data[:4096], key, iv)

cipher = cryptg.encrypt_ige(data, key, iv)
report('aes256_ige_encrypt_1MiB_cryptg', measure(lambda: cryptg.encrypt_ige(data, key, iv), 20))
report('aes256_ige_decrypt_1MiB_cryptg', measure(lambda: cryptg.decrypt_ige(cipher, key, iv), 20))
report('aes256_ige_encrypt_1MiB_tgcrypto', measure(lambda: tgcrypto.ige256_encrypt(data, key, iv), 10))
report('aes256_ige_decrypt_1MiB_tgcrypto', measure(lambda: tgcrypto.ige256_decrypt(cipher, key, iv), 10))
