// Measures the crypto hot paths in release builds:
//   swift run -c release CryptoBench            everything
//   swift run -c release CryptoBench aes        AES-256-IGE lines only (scripts/bench-crypto interleaves
//                                               these with the Python peers' runs)
//   swift run -c release CryptoBench ctr        AES-256-CTR (transport obfuscation) only; peers:
//                                               `peers.py ctr`
// Output: one "name value unit" line per figure, so scripts can parse it. Times are the best of
// several trials in thread CPU time.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MTProtoCrypto

/// This thread's CPU time: the machine is shared with other builds, and wall time would count the
/// time other processes held the core. The Python peer script measures the same way (thread_time).
func threadCPUSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

/// Best of `trials` timings of `body` (each trial runs it `iterations` times), in CPU seconds per call.
func measure(trials: Int = 7, iterations: Int, _ body: () throws -> Void) rethrows -> Double {
    try body()  // warm-up
    var best = Double.infinity
    for _ in 0..<trials {
        let start = threadCPUSeconds()
        for _ in 0..<iterations { try body() }
        best = min(best, (threadCPUSeconds() - start) / Double(iterations))
    }
    return best
}

func report(_ name: String, _ value: Double, _ unit: String) {
    // Two decimals without Foundation or libm.
    let hundredths = Int(value * 100 + 0.5)
    let fraction = hundredths % 100
    print("\(name) \(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction) \(unit)")
}

/// Keeps results alive so the optimizer cannot drop the work.
nonisolated(unsafe) var sink: UInt8 = 0

var entropy = SystemEntropy()
let mebibyte = 1 << 20
let key = entropy.bytes(32)
let iv = entropy.bytes(32)
var buffer = entropy.bytes(mebibyte)

@MainActor func benchAES() throws {
    for backend in AESIGE.Backend.allCases where backend == .openSSL || AESIGE.hardwareAccelerated {
        let name = backend == .aesni ? "aesni" : "openssl"
        let iterations = backend == .aesni ? 40 : 10
        let encrypt = try measure(iterations: iterations) {
            try AESIGE.encrypt(&buffer, key: key, iv: iv, backend: backend)
            sink ^= buffer[0]
        }
        let decrypt = try measure(iterations: iterations) {
            try AESIGE.decrypt(&buffer, key: key, iv: iv, backend: backend)
            sink ^= buffer[0]
        }
        // MB = 10^6 bytes, as the Python peer script counts.
        report("aes256_ige_encrypt_1MiB_\(name)", Double(mebibyte) / encrypt / 1e6, "MB/s")
        report("aes256_ige_decrypt_1MiB_\(name)", Double(mebibyte) / decrypt / 1e6, "MB/s")
    }
}

@MainActor func benchRest() throws {
    let group = try DHGroup.telegram(generator: 3)
    let secret = DHGroup.generateSecret(entropy: &entropy)
    let generator: [UInt8] = [3]
    let secretModexp = measure(iterations: 50) { sink ^= group.publicValue(secret: secret)[0] }
    let plainModexp = measure(iterations: 50) {
        sink ^= ModularArithmetic.power(generator, secret, modulus: DHGroup.telegramPrime)[0]
    }
    report("modexp_2048_constant_time", secretModexp * 1e3, "ms")
    // A safe prime that is not Telegram's (RFC 3526 group 14): the full check of p and (p - 1) / 2,
    // done once per process (later groups with that prime hit the cache).
    let rfc3526 = rfc3526Group14
    let start = threadCPUSeconds()
    _ = try DHGroup(prime: rfc3526, generator: 2)
    report("dh_prime_full_safety_check_once", (threadCPUSeconds() - start) * 1e3, "ms")
    report("modexp_2048_variable_time", plainModexp * 1e3, "ms")

    // pq: rho's cost varies with the numbers, so time many: Telegram-like pq (two primes in
    // [2^31, 2^31.5), as our server makes them) and full 64-bit pq (two primes just below 2^32).
    var pqEntropy = SeededEntropy(seed: 1)
    let telegramLike = (0..<300).map { _ in PQFactorization.generate(entropy: &pqEntropy).pq }
    var fullWidth: [UInt64] = []
    while fullWidth.count < 300 {
        let primes = (0..<2).map { _ -> UInt64 in
            while true {
                let candidate = (UInt64(pqEntropy.bytes(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) | 0x8000_0001)
                if PQFactorization.isPrime(candidate) { return candidate }
            }
        }
        if primes[0] != primes[1] { fullWidth.append(primes[0] * primes[1]) }
    }
    for (name, values) in [("pq_factor_below_2^63", telegramLike), ("pq_factor_full_64bit", fullWidth)] {
        var times: [Double] = []
        for value in values {
            times.append(try measure(trials: 3, iterations: 1) { sink ^= UInt8(truncatingIfNeeded: try PQFactorization.factor(value).p) })
        }
        report("\(name)_mean_of_\(values.count)", times.reduce(0, +) / Double(times.count) * 1e6, "us")
        report("\(name)_max_of_\(values.count)", (times.max() ?? 0) * 1e6, "us")
    }
    let pq: UInt64 = 3_037_000_493 * 3_037_000_453

    let authKey = try AuthKey(entropy.bytes(256))
    // 1 KiB is a typical call; 25 KiB is a 100-message history page, whose two sealings (the
    // server's encrypt, the client's decrypt) are part of every getHistory round trip.
    for (label, size, iterations) in [("1KiB", 1024, 2000), ("25KiB", 25 * 1024, 200)] {
        let message = entropy.bytes(size)
        let encryptMessage = measure(iterations: iterations) {
            sink ^= MessageCrypto.encrypt(message, authKey: authKey, direction: .clientToServer, entropy: &entropy)[30]
        }
        let packet = MessageCrypto.encrypt(message, authKey: authKey, direction: .clientToServer, entropy: &entropy)
        let decryptMessage = try measure(iterations: iterations) {
            sink ^= try MessageCrypto.decrypt(packet, authKey: authKey, direction: .clientToServer)[0]
        }
        report("message_encrypt_\(label)", encryptMessage * 1e6, "us")
        report("message_decrypt_\(label)", decryptMessage * 1e6, "us")
    }

    // The whole client side of an auth key exchange, minus I/O and TL: factor pq, RSA_PAD,
    // tmp_aes_key/iv, decrypt and check the answer, check p/g and g_a, make b and g_b,
    // wrap and encrypt client_DH_inner_data, compute auth_key and new_nonce_hash1.
    let server = try RSAPrivateKey.generate()
    let serverKey = server.publicKey
    let serverGroupSecret = group.generateKeyPair(entropy: &entropy)
    let newNonce = entropy.bytes(32)
    let serverNonce = entropy.bytes(16)
    let (tmpKey, tmpIV) = try HandshakeCrypto.temporaryKeyAndIV(newNonce: newNonce, serverNonce: serverNonce)
    let answer = entropy.bytes(564)
    let encryptedAnswer = try AESIGE.encrypt(HandshakeCrypto.withHashAndPadding(answer, entropy: &entropy), key: tmpKey, iv: tmpIV)
    let innerData = entropy.bytes(96)
    let clientHandshake = try measure(trials: 5, iterations: 20) {
        _ = try PQFactorization.factor(pq)
        sink ^= try serverKey.encryptWithRSAPad(innerData, entropy: &entropy)[0]
        let (key, iv) = try HandshakeCrypto.temporaryKeyAndIV(newNonce: newNonce, serverNonce: serverNonce)
        let decrypted = try AESIGE.decrypt(encryptedAnswer, key: key, iv: iv)
        _ = try HandshakeCrypto.verifyHashAndPadding(decrypted, answerLength: answer.count)
        let checkedGroup = try DHGroup(prime: DHGroup.telegramPrime, generator: 3)
        try checkedGroup.checkPublicValue(serverGroupSecret.publicValue)
        let own = checkedGroup.generateKeyPair(entropy: &entropy)
        let wrapped = HandshakeCrypto.withHashAndPadding(own.publicValue + entropy.bytes(40), entropy: &entropy)
        sink ^= try AESIGE.encrypt(wrapped, key: key, iv: iv)[0]
        let shared = try checkedGroup.sharedKey(peerPublicValue: serverGroupSecret.publicValue, secret: own.secret)
        let authKey = try AuthKey(shared)
        sink ^= try HandshakeCrypto.newNonceHash(newNonce: newNonce, number: 1, authKey: authKey)[0]
    }
    report("handshake_client_crypto", clientHandshake * 1e3, "ms")

    // The server's share: RSA private decryption dominates.
    let rsaCiphertext = try serverKey.encryptWithRSAPad(innerData, entropy: &entropy)
    let clientPublic = group.generateKeyPair(entropy: &entropy).publicValue
    let serverHandshake = try measure(trials: 5, iterations: 20) {
        sink ^= try server.decryptRSAPad(rsaCiphertext)[0]
        let own = group.generateKeyPair(entropy: &entropy)
        let shared = try group.sharedKey(peerPublicValue: clientPublic, secret: own.secret)
        sink ^= try AuthKey(shared).auxHash[0]
    }
    report("handshake_server_crypto", serverHandshake * 1e3, "ms")

    let proof = measure(trials: 3, iterations: 2) {
        sink ^= SRP.passwordHash(password: "benchmark", salt1: [1, 2, 3], salt2: [4, 5, 6])[0]
    }
    report("srp_password_hash_pbkdf2_100000", proof * 1e3, "ms")
}

let rfc3526Group14: [UInt8] = {
    let text = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
        + "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        + "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
        + "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        + "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
        + "15728E5A8AACAA68FFFFFFFFFFFFFFFF"
    let digits = Array(text.utf8)
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<($0 + 2)], as: UTF8.self), radix: 16) ?? 0 }
}()

/// SplitMix64, so the generated pq values are the same on every run.
struct SeededEntropy: EntropySource {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        for index in 0..<buffer.count {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            buffer[index] = UInt8(truncatingIfNeeded: z ^ (z >> 31))
        }
    }
}

/// AES-256-CTR as obfuscation uses it: one stream per direction, 1 MiB at once and in 1 KiB packets.
@MainActor func benchCTR() throws {
    let stream = try AESCTR(key: key, iv: Array(iv.prefix(16)))
    let whole = measure(iterations: 40) {
        stream.apply(&buffer)
        sink ^= buffer[0]
    }
    report("aes256_ctr_1MiB_evp", Double(mebibyte) / whole / 1e6, "MB/s")
    let packets = measure(iterations: 40) {
        buffer.withUnsafeMutableBytes { all in
            var offset = 0
            while offset < all.count {
                stream.apply(UnsafeMutableRawBufferPointer(rebasing: all[offset..<(offset + 1024)]))
                offset += 1024
            }
        }
        sink ^= buffer[0]
    }
    report("aes256_ctr_1KiB_packets_evp", Double(mebibyte) / packets / 1e6, "MB/s")
}

let arguments = CommandLine.arguments.dropFirst()
if arguments.contains("ctr") {
    try benchCTR()
    exit(0)
}
try benchAES()
if !arguments.contains("aes") {
    try benchRest()
}
if sink == 0x5A { print("") }  // consumes sink; never meaningful
