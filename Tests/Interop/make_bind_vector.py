"""Known-answer vector for the PFS binding message (auth.bindTempAuthKey's encrypted_message).

Written from the spec pages method/auth.bindTempAuthKey and mtproto/description (MTProto 1.0
key derivation) with hashlib and tgcrypto's AES-256-IGE, independently of the Swift code, which
Tests/MTProtoTests/TemporaryKeyBindingTests.swift checks against the printed values.
Run: .build/venv/bin/python Tests/Interop/make_bind_vector.py
"""
import hashlib
import struct

import tgcrypto

perm_key = bytes((i * 7 + 3) & 0xFF for i in range(256))
perm_key_id = struct.unpack("<q", hashlib.sha1(perm_key).digest()[12:20])[0]
temp_key_id = 0x1122334455667788
nonce = 0x0102030405060708
temp_session_id = -0x0123456789ABCDEF
expires_at = 1_800_000_000
msg_id = 0x6500000000000004
random = bytes(range(0x30, 0x40))
padding = bytes(range(0xA0, 0xA8))

inner = struct.pack("<Iqqqqi", 0x75A3F765, nonce, temp_key_id, perm_key_id, temp_session_id, expires_at)
assert len(inner) == 40
plaintext = random + struct.pack("<qii", msg_id, 0, 40) + inner
msg_key = hashlib.sha1(plaintext).digest()[4:20]


def sha1(*parts):
    return hashlib.sha1(b"".join(parts)).digest()


x = 0  # client to server
a = sha1(msg_key, perm_key[x:x + 32])
b = sha1(perm_key[32 + x:48 + x], msg_key, perm_key[48 + x:64 + x])
c = sha1(perm_key[64 + x:96 + x], msg_key)
d = sha1(msg_key, perm_key[96 + x:128 + x])
aes_key = a[0:8] + b[8:20] + c[4:16]
aes_iv = a[8:20] + b[0:8] + c[16:20] + d[0:8]
encrypted = struct.pack("<q", perm_key_id) + msg_key + tgcrypto.ige256_encrypt(plaintext + padding, aes_key, aes_iv)

print("perm_key_id", perm_key_id)
print("aes_key", aes_key.hex())
print("aes_iv", aes_iv.hex())
print("msg_key", msg_key.hex())
print("encrypted_message", encrypted.hex())
