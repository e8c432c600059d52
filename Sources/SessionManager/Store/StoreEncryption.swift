import Crypto
import CryptoExtras
import Foundation
import MTProtoCrypto

/// Opt-in encryption at rest of the store's secrets (auth keys, temporary keys): where the key
/// comes from. Everything else (salts, peers, ledger) stays readable for operators' tools.
public enum StoreEncryption: Sendable {
    /// Secrets are stored as they are (the file is still 0600 in a 0700 directory).
    case none
    /// A file of 32 random bytes, raw or as 64 hex digits.
    case keyFile(path: String)
    /// A passphrase stretched with scrypt; the salt and cost are stored with the store.
    case passphrase(String, cost: ScryptCost = .standard)
    /// A key the caller manages.
    case key(SymmetricKey)

    var sourceDescription: String {
        switch self {
        case .none: "no key"
        case .keyFile(let path): "key file \(path)"
        case .passphrase: "the passphrase"
        case .key: "the given key"
        }
    }
}

/// scrypt's cost: memory is 128 * r * N bytes.
public struct ScryptCost: Sendable, Hashable, Codable {
    public var n: Int
    public var r: Int
    public var p: Int

    public init(n: Int, r: Int, p: Int) {
        self.n = n
        self.r = r
        self.p = p
    }

    /// 32 MiB, about 0.1 s on a server core: a guess costs an attacker as much.
    public static let standard = ScryptCost(n: 1 << 15, r: 8, p: 1)
}

/// Seals and opens secrets with AES-256-GCM. The associated data binds each ciphertext to its
/// place (account, DC, which key), so a sealed key copied to another row does not open.
struct SecretSealer: Sendable {
    static let version: UInt8 = 1
    let key: SymmetricKey

    func seal(_ plaintext: [UInt8], context: String) throws -> Data {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Array(context.utf8))
        guard let combined = box.combined else { throw CryptoKitError.incorrectParameterSize }
        return Data([Self.version]) + combined
    }

    /// Nil when the ciphertext does not authenticate under this key and context.
    func open(_ sealed: Data, context: String) -> [UInt8]? {
        guard sealed.first == Self.version,
              let box = try? AES.GCM.SealedBox(combined: sealed.dropFirst()),
              let plain = try? AES.GCM.open(box, using: key, authenticating: Array(context.utf8))
        else { return nil }
        return Array(plain)
    }
}

/// What the store keeps about its encryption (in `store_meta`): how to derive the key again and a
/// sealed known value that proves a given key is the right one before any secret is touched.
struct EncryptionHeader: Codable, Equatable {
    static let checkContext = "tgsm.store.key-check"
    static let checkPlaintext = Array("tgsm session store key check".utf8)

    var scheme = "aes-256-gcm"
    /// "scrypt" or "raw".
    var kdf: String
    var salt: String?
    var cost: ScryptCost?
    var check: String

    static func make(for encryption: StoreEncryption, path: String) throws(SessionStoreError) -> (EncryptionHeader, SecretSealer)? {
        var header = EncryptionHeader(kdf: "raw", check: "")
        let key: SymmetricKey
        switch encryption {
        case .none:
            return nil
        case .keyFile(let keyPath):
            key = try loadKeyFile(keyPath)
        case .key(let given):
            key = given
        case .passphrase(let passphrase, let cost):
            let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
            header.kdf = "scrypt"
            header.salt = Data(salt).base64EncodedString()
            header.cost = cost
            key = try derive(passphrase, salt: salt, cost: cost)
        }
        let sealer = SecretSealer(key: key)
        do {
            header.check = try sealer.seal(checkPlaintext, context: checkContext).base64EncodedString()
        } catch {
            throw .database(operation: "seal the key check", reason: "\(error)")
        }
        return (header, sealer)
    }

    /// The sealer for this header under the given key source, or a typed error when it is the wrong key.
    func sealer(for encryption: StoreEncryption, path: String) throws(SessionStoreError) -> SecretSealer {
        let key: SymmetricKey
        switch encryption {
        case .none:
            throw .encryptionKeyRequired(path: path)
        case .keyFile(let keyPath):
            key = try Self.loadKeyFile(keyPath)
        case .key(let given):
            key = given
        case .passphrase(let passphrase, _):
            guard kdf == "scrypt", let saltText = salt, let salt = Data(base64Encoded: saltText), let cost else {
                throw .wrongEncryptionKey(path: path, source: "the passphrase (the store was encrypted with a key file, not a passphrase)")
            }
            key = try Self.derive(passphrase, salt: Array(salt), cost: cost)
        }
        let sealer = SecretSealer(key: key)
        guard let sealed = Data(base64Encoded: check),
              sealer.open(sealed, context: Self.checkContext) == Self.checkPlaintext
        else { throw .wrongEncryptionKey(path: path, source: encryption.sourceDescription) }
        return sealer
    }

    static func derive(_ passphrase: String, salt: [UInt8], cost: ScryptCost) throws(SessionStoreError) -> SymmetricKey {
        do {
            return try KDF.Scrypt.deriveKey(from: Array(passphrase.utf8), salt: salt, outputByteCount: 32,
                                            rounds: cost.n, blockSize: cost.r, parallelism: cost.p)
        } catch {
            throw .database(operation: "derive the key from the passphrase (scrypt N=\(cost.n) r=\(cost.r) p=\(cost.p))", reason: "\(error)")
        }
    }

    static func loadKeyFile(_ path: String) throws(SessionStoreError) -> SymmetricKey {
        let contents: Data
        do {
            contents = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .keyFile(path: path, reason: "it cannot be read (\(error.localizedDescription))")
        }
        if contents.count == 32 { return SymmetricKey(data: contents) }
        let text = String(decoding: contents, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.count == 64, let bytes = Hex.decode(text) { return SymmetricKey(data: bytes) }
        throw .keyFile(path: path, reason: "it holds \(contents.count) bytes, neither 32 raw bytes nor 64 hex digits")
    }
}
