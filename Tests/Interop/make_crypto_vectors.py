"""Writes Tests/MTProtoCryptoTests/TelethonVectors.swift: fixed inputs run through Telethon 1.45.0's own
crypto (AES-IGE, MTProto 2.0 message keys, auth key ids and new_nonce hashes, tmp_aes_key/iv, RSA
fingerprints and its RSA scheme, SRP's compute_check), so the Swift tests check ours byte for byte
against a real peer.

Randomness that Telethon draws (os.urandom) is replaced by a deterministic stream and recorded; the
Swift tests replay the recorded bytes through an EntropySource.

Run: scripts/setup-python && .build/venv/bin/python Tests/Interop/make_crypto_vectors.py
"""
import hashlib
import os
import pathlib
import re
import struct
import sys

import telethon
from telethon import password as tpassword
from telethon.crypto import AES, AuthKey, rsa as trsa
from telethon.crypto.factorization import Factorization
from telethon.network.mtprotostate import MTProtoState
from telethon import helpers
from telethon.tl import types
from telethon.tl.types import account

assert telethon.__version__ == '1.45.0', telethon.__version__

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / 'Tests' / 'MTProtoCryptoTests' / 'TelethonVectors.swift'


def stream(label, length):
    """Deterministic bytes: SHA-256 in counter mode over a label."""
    out = b''
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(label.encode() + counter.to_bytes(4, 'big')).digest()
        counter += 1
    return out[:length]


class Recorder:
    """Stands in for os.urandom: deterministic, and remembers every byte handed out."""

    def __init__(self, label):
        self.label = label
        self.taken = b''

    def __call__(self, n):
        chunk = stream(f'{self.label}/{len(self.taken)}', n)
        self.taken += chunk
        return chunk


def patched_urandom(module, label):
    recorder = Recorder(label)
    original = module.os.urandom
    module.os.urandom = recorder
    return recorder, lambda: setattr(module.os, 'urandom', original)


def h(data):
    return data.hex()


lines = []


def emit(text=''):
    lines.append(text)


# --- AES-256-IGE -----------------------------------------------------------------------------------
aes_cases = []
for index, length in enumerate([16, 32, 48, 256, 1024, 4112]):
    key = stream(f'aes-key-{index}', 32)
    iv = stream(f'aes-iv-{index}', 32)
    plain = stream(f'aes-plain-{index}', length)
    cipher = AES.encrypt_ige(plain, key, iv)
    assert AES.decrypt_ige(cipher, key, iv) == plain
    aes_cases.append((key, iv, plain, cipher))

# --- Auth key: id, aux hash, new_nonce_hash 1/2/3, tmp_aes_key/iv -----------------------------------
auth_key_bytes = stream('auth-key', 256)
auth_key = AuthKey(auth_key_bytes)
new_nonce = stream('new-nonce', 32)
server_nonce = stream('server-nonce', 16)
new_nonce_int = int.from_bytes(new_nonce, 'little', signed=True)
server_nonce_int = int.from_bytes(server_nonce, 'little', signed=True)
nonce_hashes = [
    auth_key.calc_new_nonce_hash(new_nonce_int, n).to_bytes(16, 'little', signed=True) for n in (1, 2, 3)
]
tmp_key, tmp_iv = helpers.generate_key_data_from_nonce(server_nonce_int, new_nonce_int)

# --- MTProto 2.0 message encryption, client to server (Telethon's own encrypt_message_data) ---------
state = MTProtoState(auth_key, loggers={'telethon.network.mtprotostate': __import__('logging').getLogger('x')})
state.salt = 0x1122334455667788
state.id = -0x0123456789ABCDEF
inner = struct.pack('<qii', 0x65ABC0FC000DF764, 3, 24) + stream('message-body', 24)
import telethon.network.mtprotostate as mtprotostate_module
recorder, restore = patched_urandom(mtprotostate_module, 'message-padding')
client_packet = state.encrypt_message_data(inner)
restore()
client_plaintext = struct.pack('<qq', state.salt, state.id) + inner
client_padding = recorder.taken

# --- Server to client: built from Telethon's key derivation, accepted by its decrypt_message_data ---
body = bytes(types.BadServerSalt(bad_msg_id=0x65ABC0FC000DF764, bad_msg_seqno=3, error_code=48,
                                 new_server_salt=0x0102030405060708))
server_msg_id = 0x65ABC0FC000DF801
server_inner = struct.pack('<qqqii', 0x7766554433221100, state.id, server_msg_id, 4, len(body)) + body
server_padding = stream('server-padding', -(len(server_inner) + 12) % 16 + 12 + 32)
server_plain = server_inner + server_padding
msg_key = hashlib.sha256(auth_key_bytes[96:128] + server_plain).digest()[8:24]
key, iv = MTProtoState._calc_key(auth_key_bytes, msg_key, False)
server_packet = struct.pack('<Q', auth_key.key_id) + msg_key + AES.encrypt_ige(server_plain, key, iv)
decoded = state.decrypt_message_data(server_packet)
assert decoded is not None and decoded.msg_id == server_msg_id, decoded

# --- RSA: Telethon's bundled keys with their fingerprints, and its old scheme -------------------------
source = pathlib.Path(trsa.__file__).read_text()
pems = re.findall(r"-----BEGIN RSA PUBLIC KEY-----.*?-----END RSA PUBLIC KEY-----", source, re.S)
rsa_keys = []
for pem in pems:
    key_object = trsa.rsa.PublicKey.load_pkcs1(pem.encode())
    rsa_keys.append((pem, trsa._compute_fingerprint(key_object)))
assert len(rsa_keys) == len(trsa._server_keys) == 8
old_fingerprint = rsa_keys[0][1]
old_data = stream('p-q-inner-data', 96)
recorder, restore = patched_urandom(trsa, 'rsa-padding')
old_ciphertext = trsa.encrypt(old_fingerprint, old_data)
restore()
old_padding = recorder.taken

# --- pq factorization --------------------------------------------------------------------------------
pq_cases = []
for pq in [0x17ED48941A08F981, 1468428376148703121, 2 * 1000000007, 2147483647 * 2147483629]:
    p, q = Factorization.factorize(pq)
    pq_cases.append((pq, min(p, q), max(p, q)))

# --- SRP (2FA) compute_check -----------------------------------------------------------------------
prime = bytes.fromhex(
    'C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F48198A0AA7C14058229493D22530F4DB'
    'FA336F6E0AC925139543AED44CCE7C3720FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F64'
    '2477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4A4A695811051907E162753B56B0F6B41'
    '0DBA74D8A84B2A14B3144E0EF1284754FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF5B9AE4'
    'E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F0D8115F635B105EE2E4E15D04B2454BF'
    '6F4FADF034B10403119CD8E3B92FCC5B')
g = 3
salt1 = stream('srp-salt1', 40)
salt2 = stream('srp-salt2', 16)
srp_password = 'correct horse battery staple ✓'
algo = types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(salt1, salt2, g, prime)
x_bytes = tpassword.compute_hash(algo, srp_password)
p_int = int.from_bytes(prime, 'big')
v = pow(g, int.from_bytes(x_bytes, 'big'), p_int)
k = int.from_bytes(hashlib.sha256(prime + g.to_bytes(256, 'big')).digest(), 'big')
server_secret = stream('srp-server-b', 256)
srp_b = ((k * v + pow(g, int.from_bytes(server_secret, 'big'), p_int)) % p_int).to_bytes(256, 'big')
request = account.Password(
    new_algo=types.PasswordKdfAlgoUnknown(), new_secure_algo=types.SecurePasswordKdfAlgoUnknown(),
    secure_random=b'', has_password=True, current_algo=algo, srp_B=srp_b, srp_id=77)
recorder, restore = patched_urandom(tpassword, 'srp-client-a')
check = tpassword.compute_check(request, srp_password)
restore()
srp_client_random = recorder.taken

# --- write -------------------------------------------------------------------------------------------
emit('// Generated by Tests/Interop/make_crypto_vectors.py from Telethon 1.45.0; do not edit.')
emit('// Regenerate: scripts/setup-python && .build/venv/bin/python Tests/Interop/make_crypto_vectors.py')
emit()
emit('enum TelethonVectors {')
emit('    struct AESCase { let key: String; let iv: String; let plaintext: String; let ciphertext: String }')
emit('    static let aesIGE: [AESCase] = [')
for key, iv, plain, cipher in aes_cases:
    emit(f'        AESCase(key: "{h(key)}", iv: "{h(iv)}",')
    emit(f'                plaintext: "{h(plain)}",')
    emit(f'                ciphertext: "{h(cipher)}"),')
emit('    ]')
emit()
emit(f'    static let authKey = "{h(auth_key_bytes)}"')
emit(f'    static let authKeyID = UInt64({auth_key.key_id})')
emit(f'    static let authKeyAuxHash = UInt64({auth_key.aux_hash})')
emit(f'    static let newNonce = "{h(new_nonce)}"')
emit(f'    static let serverNonce = "{h(server_nonce)}"')
emit(f'    static let newNonceHashes = [{", ".join(chr(34) + h(x) + chr(34) for x in nonce_hashes)}]')
emit(f'    static let temporaryAESKey = "{h(tmp_key)}"')
emit(f'    static let temporaryAESIV = "{h(tmp_iv)}"')
emit()
emit('    /// Telethon\'s encrypt_message_data: plaintext (salt, session_id, msg_id, seq_no, length, body),')
emit('    /// the padding it drew, and the packet it sent.')
emit(f'    static let clientPlaintext = "{h(client_plaintext)}"')
emit(f'    static let clientPadding = "{h(client_padding)}"')
emit(f'    static let clientPacket = "{h(client_packet)}"')
emit('    /// A server-to-client packet (bad_server_salt) that Telethon\'s decrypt_message_data accepts.')
emit(f'    static let serverPlaintext = "{h(server_plain)}"')
emit(f'    static let serverPacket = "{h(server_packet)}"')
emit(f'    static let serverMessageID = Int64({server_msg_id})')
emit()
emit('    struct RSAKey { let pem: String; let fingerprint: Int64 }')
emit('    static let rsaKeys: [RSAKey] = [')
for pem, fingerprint in rsa_keys:
    emit(f'        RSAKey(pem: """\n{pem}\n""", fingerprint: {fingerprint}),')
emit('    ]')
emit('    /// telethon.crypto.rsa.encrypt (SHA1(data) + data + padding under raw RSA) with the first key.')
emit(f'    static let oldSchemeData = "{h(old_data)}"')
emit(f'    static let oldSchemePadding = "{h(old_padding)}"')
emit(f'    static let oldSchemeCiphertext = "{h(old_ciphertext)}"')
emit()
emit('    static let pq: [(pq: UInt64, p: UInt64, q: UInt64)] = [')
for pq, p, q in pq_cases:
    emit(f'        ({pq:#x}, {p:#x}, {q:#x}),')
emit('    ]')
emit()
emit('    /// telethon.password.compute_check against a server that holds b = srpServerSecret.')
emit(f'    static let srpPassword = "{srp_password}"')
emit(f'    static let srpSalt1 = "{h(salt1)}"')
emit(f'    static let srpSalt2 = "{h(salt2)}"')
emit(f'    static let srpG: Int32 = {g}')
emit(f'    static let srpPrime = "{h(prime)}"')
emit(f'    static let srpPasswordHash = "{h(x_bytes)}"')
emit(f'    static let srpVerifier = "{h(v.to_bytes(256, "big"))}"')
emit(f'    static let srpServerSecret = "{h(server_secret)}"')
emit(f'    static let srpB = "{h(srp_b)}"')
emit(f'    static let srpClientRandom = "{h(srp_client_random)}"')
emit(f'    static let srpA = "{h(check.A)}"')
emit(f'    static let srpM1 = "{h(check.M1)}"')
emit('}')

OUT.write_text('\n'.join(lines) + '\n')
print(f'wrote {OUT.relative_to(ROOT)}', file=sys.stderr)
