import Crypto
import CryptoExtras
import Foundation
import MTProtoCrypto

/// Opt-in encryption at rest of the store's secrets (auth keys, temporary keys, login code hashes,
/// future auth tokens, proxy links): where the key comes from. Everything else (salts, peers,
/// ledger) stays readable for operators' tools.
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
package struct SecretSealer: Sendable {
    static let version: UInt8 = 1
    let key: SymmetricKey

    package func seal(_ plaintext: [UInt8], context: String) throws -> Data {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Array(context.utf8))
        guard let combined = box.combined else { throw CryptoKitError.incorrectParameterSize }
        return Data([Self.version]) + combined
    }

    /// Nil when the ciphertext does not authenticate under this key and context.
    package func open(_ sealed: Data, context: String) -> [UInt8]? {
        guard sealed.first == Self.version,
              let box = try? AES.GCM.SealedBox(combined: sealed.dropFirst()),
              let plain = try? AES.GCM.open(box, using: key, authenticating: Array(context.utf8))
        else { return nil }
        return Array(plain)
    }
}

/// What the store keeps about its encryption (in `store_meta`): how to derive the key again and a
/// sealed known value that proves a given key is the right one before any secret is touched.
package struct EncryptionHeader: Codable, Equatable {
    static let checkContext = "tgsm.store.key-check"
    static let checkPlaintext = Array("tgsm session store key check".utf8)

    var scheme = "aes-256-gcm"
    /// "scrypt" or "raw".
    var kdf: String
    var salt: String?
    var cost: ScryptCost?
    var check: String

    package static func make(for encryption: StoreEncryption, path: String) throws(SessionStoreError) -> (EncryptionHeader, SecretSealer)? {
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
    package func sealer(for encryption: StoreEncryption, path: String) throws(SessionStoreError) -> SecretSealer {
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

extension EncryptionHeader {
    /// The header as stored in `store_meta`.
    package static func decode(_ text: String) throws(SessionStoreError) -> EncryptionHeader {
        do { return try JSONDecoder().decode(EncryptionHeader.self, from: Data(text.utf8)) } catch {
            throw .database(operation: "read the encryption header", reason: "it is not valid JSON")
        }
    }

    package func encoded() throws(SessionStoreError) -> String {
        do { return String(decoding: try JSONEncoder().encode(self), as: UTF8.self) } catch {
            throw .database(operation: "encode the encryption header", reason: "\(error)")
        }
    }
}

/// The associated data under which each secret is sealed: its place in the store, the same on
/// every engine (a snapshot of a PostgreSQL store is a SQLite store).
package enum SecretContext {
    package static func authKey(_ account: String, _ dc: Int) -> String { "tgsm.auth_key|\(account)|\(dc)" }
    package static func tempKey(_ account: String, _ dc: Int) -> String { "tgsm.temp_key|\(account)|\(dc)" }
    package static func phoneCodeHash(_ account: String, _ phoneKey: String) -> String { "tgsm.phone_code_hash|\(account)|\(phoneKey)" }
    package static func futureAuthToken(_ phoneKey: String, _ digest: String) -> String { "tgsm.future_auth_token|\(phoneKey)|\(digest)" }
    package static func proxy(_ account: String) -> String { "tgsm.proxy|\(account)" }
}

/// An account's proxy link as a store keeps it (a text column): as given in a store without
/// encryption, else sealed like the other secrets (a SOCKS5 password and an MTProxy secret are
/// credentials) and written as `sealed:` and base64. A link in clear in an encrypted store (kept
/// before this rule) is still read; turning encryption on and re-keying seal it.
package enum StoredProxyLink {
    static let sealedPrefix = "sealed:"

    package static func stored(_ proxy: ProxySetting?, account: AccountID, sealer: SecretSealer?) throws(SessionStoreError) -> String? {
        guard let proxy else { return nil }
        guard let sealer else { return proxy.url }
        let sealed = try StoredSecret.stored(Array(proxy.url.utf8), sealer: sealer, context: SecretContext.proxy(account.rawValue))
        return sealedPrefix + sealed.base64EncodedString()
    }

    package static func opened(_ stored: String?, account: AccountID, sealer: SecretSealer?, location: String) throws(SessionStoreError) -> ProxySetting? {
        guard let stored else { return nil }
        var link = stored
        if stored.hasPrefix(sealedPrefix) {
            guard let sealer else { throw .encryptionKeyRequired(path: location) }
            guard let data = Data(base64Encoded: String(stored.dropFirst(sealedPrefix.count))),
                  let plain = sealer.open(data, context: SecretContext.proxy(account.rawValue))
            else { throw .corruptRecord(account: account, what: "proxy link (it does not decrypt)") }
            link = String(decoding: plain, as: UTF8.self)
        }
        do { return try ProxySetting(link) } catch { throw .corruptRecord(account: account, what: "proxy link") }
    }

    /// The stored link sealed under `new`; a sealed one that does not open under `old` stops a
    /// re-key (its transaction rolls back), as any other secret does.
    package static func resealed(_ stored: String, account: AccountID, from old: SecretSealer?, to new: SecretSealer) throws(SessionStoreError) -> String? {
        let proxy: ProxySetting?
        do { proxy = try opened(stored, account: account, sealer: old, location: "") } catch {
            throw .corruptRecord(account: account, what: "proxy link (it does not decrypt under the current key; nothing was re-keyed)")
        }
        return try Self.stored(proxy, account: account, sealer: new)
    }
}

/// A secret as a store keeps it: sealed when the store is encrypted (`sealer`), else as it is.
/// The same rules on every engine, so a PostgreSQL store and its SQLite snapshots agree.
package enum StoredSecret {
    /// What goes into the column.
    package static func stored(_ bytes: [UInt8], sealer: SecretSealer?, context: String) throws(SessionStoreError) -> Data {
        guard let sealer else { return Data(bytes) }
        do { return try sealer.seal(bytes, context: context) } catch {
            throw .database(operation: "seal a secret", reason: "\(error)")
        }
    }

    /// The bytes back; nil when a sealed value does not open under this key and context.
    package static func opened(_ stored: Data, sealer: SecretSealer?, context: String) -> [UInt8]? {
        guard let sealer else { return Array(stored) }
        return sealer.open(stored, context: context)
    }

    /// A stored secret sealed under `new` instead of `old` (nil: it was in clear); nil when it does
    /// not open under `old`.
    package static func resealed(_ stored: Data, from old: SecretSealer?, to new: SecretSealer, context: String) throws(SessionStoreError) -> Data? {
        guard let plain = opened(stored, sealer: old, context: context) else { return nil }
        return try Self.stored(plain, sealer: new, context: context)
    }

    /// `resealed`, where a secret that does not open stops a re-key (its transaction rolls back).
    package static func resealedOrRefused(_ stored: Data, from old: SecretSealer?, to new: SecretSealer, context: String,
                                          account: String, what: String) throws(SessionStoreError) -> Data {
        guard let sealed = try resealed(stored, from: old, to: new, context: context) else {
            throw .corruptRecord(account: AccountID(account), what: what + " (it does not decrypt under the current key; nothing was re-keyed)")
        }
        return sealed
    }

    /// An auth key from its stored form, checked against its stored id: a damaged or mis-decrypted
    /// key is a typed error, never a wrong key handed to the client. A store opened without a key
    /// that meets a sealed one (another process turned encryption on since) says so.
    package static func authKey(_ stored: Data, id: Int64?, sealer: SecretSealer?, context: String, location: String,
                                account: AccountID, what: String) throws(SessionStoreError) -> AuthKey {
        if sealer == nil, looksSealed(stored, plaintextCount: 256) { throw .encryptionKeyRequired(path: location) }
        guard let bytes = opened(stored, sealer: sealer, context: context) else {
            throw .corruptRecord(account: account, what: what + " (it does not decrypt)")
        }
        guard let key = try? AuthKey(bytes), key.id == id else { throw .corruptRecord(account: account, what: what) }
        return key
    }

    /// A sealed value's shape: the version byte, then nonce, ciphertext and tag (AES-GCM adds 28
    /// bytes). A key in clear is 256 bytes, so a 285-byte value starting with 1 can only be sealed.
    static func looksSealed(_ stored: Data, plaintextCount: Int) -> Bool {
        stored.count == 1 + 12 + plaintextCount + 16 && stored.first == SecretSealer.version
    }
}
