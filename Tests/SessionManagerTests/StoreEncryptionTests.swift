import Crypto
import Foundation
import GRDB
import MTProto
import MTProtoClient
import SessionManager
import Testing

@Suite struct StoreEncryptionTests {
    static let cheap = ScryptCost(n: 1 << 10, r: 8, p: 1)
    static let pendingCode = PendingLoginCode(phoneCodeHash: "c0de-hash-6d2f9a", codeType: [1, 2, 3, 4], sentAt: UnixTime(seconds: 100),
                                              offeredUntil: UnixTime(seconds: 700))
    static let futureToken = FutureAuthToken(bytes: Array("future-auth-token-5e1f0c".utf8), receivedAt: UnixTime(seconds: 200))

    @Test func secretsAreSealedAtRestAndOpenWithTheRightPassphrase() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let encryption = StoreEncryption.passphrase("correct horse", cost: Self.cheap)
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options(encryption: encryption))
        #expect(store.isEncrypted)
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        let phoneKey = try await store.phoneKey(for: "15550001")
        try await store.setPendingLoginCode(Self.pendingCode, account: "alice", phoneKey: phoneKey)
        try await store.addFutureAuthToken(Self.futureToken, account: "alice", phoneKey: phoneKey)
        try store.close()
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.path) where file.hasPrefix("sessions.sqlite") {
            let raw = try Data(contentsOf: URL(fileURLWithPath: dir.file(file)))
            #expect(raw.range(of: Data(Fixtures.key(2).bytes.prefix(32))) == nil, "a key in clear in \(file)")
            #expect(raw.range(of: Data(Self.pendingCode.phoneCodeHash.utf8)) == nil, "a phone_code_hash in clear in \(file)")
            #expect(raw.range(of: Data(Self.futureToken.bytes)) == nil, "a future auth token in clear in \(file)")
        }
        let reopened = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options(encryption: encryption))
        #expect(try await reopened.loadSession(account: "alice") == Fixtures.session())
        #expect(try await reopened.pendingLoginCode(account: "alice", phoneKey: phoneKey) == Self.pendingCode)
        #expect(try await reopened.futureAuthTokens(phoneKey: phoneKey) == [Self.futureToken])
        try reopened.close()
    }

    /// Backups taken before encryption was turned on still hold the keys in clear: they are named,
    /// so an operator can replace them (`tgsm check` warns); backups taken after are sealed.
    @Test func backupsTakenBeforeEncryptionAreNamedAsHoldingKeysInClear() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let plain = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        try await plain.saveSession(Fixtures.session(), account: "alice", fence: nil)
        let before = try plain.backup()
        try plain.close()
        #expect(SQLiteSessionStore.isSealed(directory: dir.path) == false)
        let sealed = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options(encryption: .key(SymmetricKey(size: .bits256))))
        let after = try sealed.backup()
        try sealed.close()
        #expect(SQLiteSessionStore.isSealed(directory: dir.path) == true)
        // The one taken by hand and the one the store took itself for the new key; not the sealed one.
        let named = SQLiteSessionStore.backupsHoldingKeysInClear(directory: dir.path)
        #expect(named.contains(before.file) && !named.contains(after.file) && named.count == 2, "\(named)")
        #expect(before.file != after.file)
        let raw = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/backups/" + after.file))
        #expect(raw.range(of: Data(Fixtures.key(2).bytes.prefix(32))) == nil, "the new backup is sealed")
        // Nothing is left behind by the inspection, and the backups themselves are untouched.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/backups").allSatisfy { !$0.hasPrefix(".inspect") })
    }

    /// A token whose sealed bytes were damaged is left out; the others still come back.
    @Test func aDamagedFutureAuthTokenCostsOnlyItself() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let options = Fixtures.options(encryption: .key(SymmetricKey(size: .bits256)))
        let store = try SQLiteSessionStore.open(directory: dir.path, options: options)
        let phoneKey = try await store.phoneKey(for: "15550001")
        let older = FutureAuthToken(bytes: [1, 2, 3], receivedAt: UnixTime(seconds: 10))
        try await store.addFutureAuthToken(older, account: "alice", phoneKey: phoneKey)
        try await store.addFutureAuthToken(Self.futureToken, account: "alice", phoneKey: phoneKey)
        try store.close()
        let raw = try DatabaseQueue(path: dir.file("sessions.sqlite"))
        try await raw.write { db in
            try db.execute(sql: "UPDATE future_auth_token SET token = x'00112233' WHERE token_digest = ?", arguments: [Self.futureToken.digest])
        }
        try raw.close()
        let reopened = try SQLiteSessionStore.open(directory: dir.path, options: options)
        #expect(try await reopened.futureAuthTokens(phoneKey: phoneKey) == [older])
        try reopened.close()
    }

    @Test func aWrongOrMissingKeyIsATypedErrorNeverGarbage() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options(encryption: .passphrase("right", cost: Self.cheap)))
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        try store.close()

        #expect(throws: SessionStoreError.wrongEncryptionKey(path: dir.file("sessions.sqlite"), source: "the passphrase")) {
            try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options(encryption: .passphrase("wrong", cost: Self.cheap)))
        }
        #expect(throws: SessionStoreError.encryptionKeyRequired(path: dir.file("sessions.sqlite"))) {
            try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        }
        #expect(throws: SessionStoreError.self) {
            try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options(encryption: .key(SymmetricKey(size: .bits256))))
        }
    }

    @Test func keyFilesRawOrHexAndBadOnesSayWhy() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let key = (0..<32).map { UInt8($0 * 3) }
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        let raw = dir.file("raw.key")
        let hex = dir.file("hex.key")
        try Data(key).write(to: URL(fileURLWithPath: raw))
        try Data((key.map { String(format: "%02x", $0) }.joined() + "\n").utf8).write(to: URL(fileURLWithPath: hex))
        let storeDir = dir.file("store")
        let store = try SQLiteSessionStore.open(directory: storeDir, options: Fixtures.options(encryption: .keyFile(path: raw)))
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        try store.close()
        let viaHex = try SQLiteSessionStore.open(directory: storeDir, options: Fixtures.options(encryption: .keyFile(path: hex)))
        #expect(try await viaHex.loadSession(account: "alice") == Fixtures.session())
        try viaHex.close()

        let short = dir.file("short.key")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: short))
        #expect(throws: SessionStoreError.self) {
            try SQLiteSessionStore.open(directory: storeDir, options: Fixtures.options(encryption: .keyFile(path: short)))
        }
        do {
            _ = try SQLiteSessionStore.open(directory: storeDir, options: Fixtures.options(encryption: .keyFile(path: dir.file("missing.key"))))
            Issue.record("a missing key file opened the store")
        } catch {
            #expect(error.code == "store.key_file" && error.description.contains("32 random bytes"))
        }
    }

    @Test func turningEncryptionOnSealsTheSecretsAlreadyStored() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let plain = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        try await plain.saveSession(Fixtures.session(), account: "alice", fence: nil)
        try await plain.saveTemporaryKey(TemporaryAuthKey(key: Fixtures.key(50), expiresAt: .init(seconds: 9)), dc: 2, account: "alice", fence: nil)
        let phoneKey = try await plain.phoneKey(for: "15550001")
        try await plain.setPendingLoginCode(Self.pendingCode, account: "alice", phoneKey: phoneKey)
        try await plain.addFutureAuthToken(Self.futureToken, account: "alice", phoneKey: phoneKey)
        try plain.close()
        let key = SymmetricKey(size: .bits256)
        let sealed = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options(encryption: .key(key)))
        #expect(try await sealed.loadSession(account: "alice") == Fixtures.session())
        #expect(try await sealed.temporaryKey(dc: 2, account: "alice")?.key == Fixtures.key(50))
        #expect(try await sealed.pendingLoginCode(account: "alice", phoneKey: phoneKey) == Self.pendingCode)
        #expect(try await sealed.futureAuthTokens(phoneKey: phoneKey) == [Self.futureToken])
        try sealed.close()
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.path) where file.hasPrefix("sessions.sqlite") {
            let raw = try Data(contentsOf: URL(fileURLWithPath: dir.file(file)))
            #expect(raw.range(of: Data(Self.futureToken.bytes)) == nil, "a future auth token left in clear in \(file)")
            #expect(raw.range(of: Data(Fixtures.key(2).bytes.prefix(32))) == nil, "a key left in clear in \(file)")
            #expect(raw.range(of: Data(Self.pendingCode.phoneCodeHash.utf8)) == nil, "a phone_code_hash left in clear in \(file)")
        }
        #expect(throws: SessionStoreError.encryptionKeyRequired(path: dir.file("sessions.sqlite"))) {
            try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        }
    }
}
