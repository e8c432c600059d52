import Crypto
import Foundation
import GRDB
import Logging
import MTProto
import MTProtoClient
import PostgresNIO
import PostgresStore
import SessionManager
import StoreTestSupport
import Testing

/// Encryption at rest on both engines (the SQLite file, the PostgreSQL rows), and what only one
/// engine has: SQLite's backups taken before, PostgreSQL's snapshots and processes started
/// before encryption was turned on.
@Suite struct StoreEncryptionTests {
    static let cheap = ScryptCost(n: 1 << 10, r: 8, p: 1)
    static let pendingCode = PendingLoginCode(phoneCodeHash: "c0de-hash-6d2f9a", codeType: [1, 2, 3, 4], sentAt: UnixTime(seconds: 100),
                                              offeredUntil: UnixTime(seconds: 700))
    static let futureToken = FutureAuthToken(bytes: Array("future-auth-token-5e1f0c".utf8), receivedAt: UnixTime(seconds: 200))
    static let proxyPassword = "pr0xy-pa55-7c1d"

    @Test(arguments: StoreEngine.allCases) func secretsAreSealedAtRestAndOpenWithTheRightPassphrase(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let encryption = StoreEncryption.passphrase("correct horse", cost: Self.cheap)
            let store = try await place.open(encryption: encryption)
            #expect(Self.isEncrypted(store))
            let phoneKey = try await Self.storeEverySecret(in: store)
            try await store.shutDown()
            try await Self.expectNothingInClear(place)

            let reopened = try await place.open(encryption: encryption)
            try await Self.expectEverySecret(in: reopened, phoneKey: phoneKey)
            try await reopened.shutDown()
        }
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

    @Test(arguments: StoreEngine.allCases) func aWrongOrMissingKeyIsATypedErrorNeverGarbage(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open(encryption: .passphrase("right", cost: Self.cheap))
            try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
            try await store.shutDown()

            let wrongPassphrase = await Self.openingError(place, .passphrase("wrong", cost: Self.cheap))
            guard case .wrongEncryptionKey(let location, let source) = wrongPassphrase else {
                Issue.record("a wrong passphrase gave \(String(describing: wrongPassphrase))")
                return
            }
            #expect(source == "the passphrase")
            #expect(wrongPassphrase?.description.contains("nothing was decrypted") == true)
            #expect(await Self.openingError(place, StoreEncryption.none) == .encryptionKeyRequired(path: location))
            #expect(await Self.openingError(place, .key(SymmetricKey(size: .bits256)))?.code == "store.wrong_encryption_key")
            switch engine {
            case .sqlite: #expect(location == place.location + "/sessions.sqlite")
            case .postgres:
                // The database, named without its password.
                #expect(location.hasPrefix("postgres"))
                if let password = URLComponents(string: place.location)?.password, !password.isEmpty { #expect(!location.contains(password)) }
            }
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

    @Test(arguments: StoreEngine.allCases) func turningEncryptionOnSealsTheSecretsAlreadyStored(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let plain = try await place.open()
            #expect(!Self.isEncrypted(plain))
            let phoneKey = try await Self.storeEverySecret(in: plain)
            try await plain.shutDown()
            let key = SymmetricKey(size: .bits256)
            let sealed = try await place.open(encryption: .key(key))
            #expect(Self.isEncrypted(sealed))
            try await Self.expectEverySecret(in: sealed, phoneKey: phoneKey)
            try await sealed.shutDown()
            try await Self.expectNothingInClear(place)
            #expect(await Self.openingError(place, StoreEncryption.none)?.code == "store.encryption_key_required")
            let again = try await place.open(encryption: .key(key))
            #expect(try await again.loadSession(account: "alice") == Fixtures.session(), "sealed once, not twice")
            try await again.shutDown()
        }
    }

    /// A process started before another turned encryption on has no key. Its writes of secrets
    /// would leave one in clear among sealed ones, unreadable to every keyed process: they are
    /// refused with the error that says to give the key, and so is reading a sealed key. Its other
    /// writes go on, and the keyed processes lose nothing.
    @Test(arguments: StoreEngine.allCases) func aProcessStartedWithoutTheKeyNeverWritesASecretInClearOnceAnotherSealed(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let early = try await place.open()
            try await early.saveSession(Fixtures.session(), account: "alice", fence: nil)
            let phoneKey = try await early.phoneKey(for: "15550001")
            let key = SymmetricKey(size: .bits256)
            let sealing = try await place.open(encryption: .key(key))

            await Self.expectStoreError("store.encryption_key_required") { try await early.saveSession(Fixtures.session(salt: 5), account: "alice", fence: nil) }
            await Self.expectStoreError("store.encryption_key_required") {
                try await early.saveTemporaryKey(TemporaryAuthKey(key: Fixtures.key(60), expiresAt: .init(seconds: 9)), dc: 2, account: "alice", fence: nil)
            }
            await Self.expectStoreError("store.encryption_key_required") { try await early.setPendingLoginCode(Self.pendingCode, account: "alice", phoneKey: phoneKey) }
            await Self.expectStoreError("store.encryption_key_required") { try await early.addFutureAuthToken(Self.futureToken, account: "alice", phoneKey: phoneKey) }
            await Self.expectStoreError("store.encryption_key_required") { _ = try await early.loadSession(account: "alice") }
            // What holds no secret is still written: the salt, the end of a temporary key.
            try await early.updateServerSalt(-7, dc: 2, account: "alice", fence: nil)
            try await early.saveTemporaryKey(nil, dc: 2, account: "alice", fence: nil)

            var expected = Fixtures.session()
            expected.dcs[2]?.serverSalt = -7
            #expect(try await sealing.loadSession(account: "alice") == expected)
            #expect(try await sealing.pendingLoginCode(account: "alice", phoneKey: phoneKey) == nil)
            #expect(try await sealing.futureAuthTokens(phoneKey: phoneKey) == [])
            try await early.shutDown()
            try await sealing.shutDown()
            try await Self.expectNothingInClear(place)
        }
    }

    static func rekey(_ place: EngineStore, from old: StoreEncryption, to new: StoreEncryption) async throws -> RekeyReport {
        switch place.engine {
        case .sqlite:
            var options = place.options
            options.encryption = old
            return try SQLiteSessionStore.rekey(directory: place.location, options: options, to: new)
        case .postgres:
            return try await PostgresSessionStore.rekey(url: try #require(place.postgresURL), from: old, to: new, logger: place.options.logger)
        }
    }

    /// `rekey`: every secret sealed under the new key in one go; the old key opens nothing after.
    @Test(arguments: StoreEngine.allCases) func reKeyingSealsEverySecretUnderTheNewKey(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let old = StoreEncryption.key(SymmetricKey(size: .bits256))
            let new = StoreEncryption.passphrase("the new one", cost: Self.cheap)
            let store = try await place.open(encryption: old)
            let phoneKey = try await Self.storeEverySecret(in: store)
            try await store.shutDown()

            let report = try await Self.rekey(place, from: old, to: new)
            #expect(report.secrets == 6, "two auth keys, a temporary key, a login code hash, a token, a proxy link: \(report)")
            if engine == .sqlite { #expect(report.backup != nil && !report.olderBackups.isEmpty, "\(report)") }
            let reopened = try await place.open(encryption: new)
            try await Self.expectEverySecret(in: reopened, phoneKey: phoneKey)
            try await reopened.shutDown()
            #expect(await Self.openingError(place, old)?.code == "store.wrong_encryption_key")
            try await Self.expectNothingInClear(place)
        }
    }

    /// A re-key without a new key is a typed refusal that says what to give, with nothing changed;
    /// before, it was a database failure whose advice sent the operator to check the disk.
    @Test(arguments: StoreEngine.allCases) func aReKeyWithoutANewKeyIsRefusedWithNothingChanged(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let old = StoreEncryption.key(SymmetricKey(size: .bits256))
            let store = try await place.open(encryption: old)
            let phoneKey = try await Self.storeEverySecret(in: store)
            try await store.shutDown()
            do {
                _ = try await Self.rekey(place, from: old, to: .none)
                Issue.record("a re-key to no key went through")
            } catch let error as SessionStoreError {
                #expect(error.code == "store.new_key_required", "\(error)")
                #expect(error.description.contains("nothing was changed") && error.description.contains("tgsm session export")
                        && !error.description.contains("disk"), "\(error)")
            }
            let reopened = try await place.open(encryption: old)
            try await Self.expectEverySecret(in: reopened, phoneKey: phoneKey)
            try await reopened.shutDown()
            try await Self.expectNothingInClear(place)
            if engine == .sqlite {
                // Refused before the store is opened: no store is created where there was none.
                let nowhere = place.location + "-never-made"
                await Self.expectStoreError("store.new_key_required") {
                    _ = try SQLiteSessionStore.rekey(directory: nowhere, options: Fixtures.options(), to: .none)
                }
                #expect(!FileManager.default.fileExists(atPath: nowhere))
            }
        }
    }

    /// A process still on the old key after a re-key: its secret writes and reads are refused with
    /// the error that says to restart it with the new key, never a secret sealed under a key the
    /// store no longer has; its other writes go on, and nothing is lost.
    @Test(arguments: StoreEngine.allCases) func aProcessStillOnTheOldKeyIsRefusedAfterAReKey(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let old = StoreEncryption.key(SymmetricKey(size: .bits256))
            let new = StoreEncryption.key(SymmetricKey(size: .bits256))
            let early = try await place.open(encryption: old)
            try await early.saveSession(Fixtures.session(), account: "alice", fence: nil)
            let phoneKey = try await early.phoneKey(for: "15550001")
            _ = try await Self.rekey(place, from: old, to: new)

            await Self.expectStoreError("store.encryption_key_changed") { try await early.saveSession(Fixtures.session(salt: 5), account: "alice", fence: nil) }
            await Self.expectStoreError("store.encryption_key_changed") { _ = try await early.loadSession(account: "alice") }
            await Self.expectStoreError("store.encryption_key_changed") { try await early.addFutureAuthToken(Self.futureToken, account: "alice", phoneKey: phoneKey) }
            try await early.updateServerSalt(-7, dc: 2, account: "alice", fence: nil)
            try await early.shutDown()

            var expected = Fixtures.session()
            expected.dcs[2]?.serverSalt = -7
            let current = try await place.open(encryption: new)
            #expect(try await current.loadSession(account: "alice") == expected)
            #expect(try await current.futureAuthTokens(phoneKey: phoneKey) == [])
            try await current.shutDown()
        }
    }

    /// A secret that does not open under the current key stops the re-key with nothing changed.
    @Test func aSecretThatDoesNotOpenStopsTheReKeyWithNothingChanged() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let old = StoreEncryption.key(SymmetricKey(size: .bits256))
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options(encryption: old))
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        try await store.saveSession(Fixtures.session(salt: 9), account: "bob", fence: nil)
        try store.close()
        let raw = try DatabaseQueue(path: dir.file("sessions.sqlite"))
        try await raw.write { db in
            try db.execute(sql: "UPDATE dc SET temp_key = x'0102030405' WHERE account = 'bob' AND dc_id = 1")
        }
        try raw.close()
        do {
            _ = try SQLiteSessionStore.rekey(directory: dir.path, options: Fixtures.options(encryption: old), to: .key(SymmetricKey(size: .bits256)))
            Issue.record("a store with a secret that does not open was re-keyed")
        } catch {
            #expect(error.code == "store.corrupt_record" && error.description.contains("nothing was re-keyed"), "\(error)")
        }
        let again = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options(encryption: old))
        #expect(try await again.loadSession(account: "alice") == Fixtures.session(), "still under the old key")
        try again.close()
    }

    /// A snapshot of an encrypted PostgreSQL store is sealed even when the caller gives no key
    /// (the store's own is used), and restores with it; a snapshot never holds the keys in clear.
    @Test func aPostgresSnapshotIsSealedLikeItsStore() async throws {
        try await EngineStore.with(.postgres) { place in
            let directory = TemporaryDirectory("snapshots")
            defer { directory.remove() }
            let encryption = StoreEncryption.passphrase("cluster secret", cost: Self.cheap)
            let store = try #require(try await place.open(encryption: encryption) as? PostgresSessionStore)
            try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
            try await store.saveTemporaryKey(TemporaryAuthKey(key: Fixtures.key(50), expiresAt: .init(seconds: 9)), dc: 2, account: "alice", fence: nil)
            let phoneKey = try await store.phoneKey(for: "15550001")
            let token = FutureAuthToken(bytes: (0..<32).map { UInt8($0 &* 7 &+ 3) }, receivedAt: UnixTime(seconds: 5))
            try await store.addFutureAuthToken(token, account: "alice", phoneKey: phoneKey)
            let record = try await store.snapshot(into: directory.path, options: place.options)
            let raw = try Data(contentsOf: URL(fileURLWithPath: directory.path + "/" + record.file))
            #expect(raw.range(of: Data(Fixtures.key(2).bytes.prefix(32))) == nil, "the auth key in clear in the snapshot")
            #expect(raw.range(of: Data(Fixtures.key(50).bytes.prefix(32))) == nil, "the temporary key in clear in the snapshot")
            #expect(raw.range(of: Data(token.bytes)) == nil, "the future auth token in clear in the snapshot")
            try await store.removeFutureAuthTokens(phoneKey: phoneKey)

            try await store.saveSession(Fixtures.session(salt: 77), account: "alice", fence: nil)
            let report = try await store.restore(from: directory.path, backup: record.file, options: place.options,
                                                 holder: LeaseHolder(host: "restorer", pid: 1))
            #expect(report.accounts == ["alice"])
            #expect(try await store.loadSession(account: "alice") == Fixtures.session())
            #expect(try await store.temporaryKey(dc: 2, account: "alice")?.key == Fixtures.key(50))
            #expect(try await store.futureAuthTokens(phoneKey: phoneKey) == [token])
            // Restored rows are sealed too.
            try await store.shutDown()
            try await Self.expectNothingInClear(place)
            // The snapshot needs the passphrase: without it, a typed error and nothing restored.
            await #expect(throws: SessionStoreError.self) {
                _ = try await SnapshotDirectory.withVerifiedCopy(of: record.file, in: directory.path, options: Fixtures.options()) { _, _ in 0 }
            }
        }
    }

    // MARK: Helpers

    /// alice's session (two auth keys), a temporary key, a pending login code, a future auth token
    /// and a proxy link with a password: one of each secret the store seals. Returns the phone key
    /// they are kept under.
    static func storeEverySecret(in store: any SessionStore) async throws -> String {
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        try await store.saveTemporaryKey(TemporaryAuthKey(key: Fixtures.key(50), expiresAt: .init(seconds: 9)), dc: 2, account: "alice", fence: nil)
        let phoneKey = try await store.phoneKey(for: "15550001")
        try await store.setPendingLoginCode(Self.pendingCode, account: "alice", phoneKey: phoneKey)
        try await store.addFutureAuthToken(Self.futureToken, account: "alice", phoneKey: phoneKey)
        try await store.setProxy(try Self.proxy(), account: "alice")
        return phoneKey
    }

    /// Each secret `storeEverySecret` kept reads back as it went in.
    static func expectEverySecret(in store: any SessionStore, phoneKey: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(try await store.loadSession(account: "alice") == Fixtures.session(), sourceLocation: sourceLocation)
        #expect(try await store.temporaryKey(dc: 2, account: "alice")?.key == Fixtures.key(50), sourceLocation: sourceLocation)
        #expect(try await store.pendingLoginCode(account: "alice", phoneKey: phoneKey) == Self.pendingCode, sourceLocation: sourceLocation)
        #expect(try await store.futureAuthTokens(phoneKey: phoneKey) == [Self.futureToken], sourceLocation: sourceLocation)
        #expect(try await store.proxy(account: "alice") == (try Self.proxy()), sourceLocation: sourceLocation)
    }

    static func proxy() throws -> ProxySetting { try ProxySetting("socks5://tgsm:\(proxyPassword)@127.0.0.1:1080") }

    static func isEncrypted(_ store: any SessionStore) -> Bool {
        (store as? SQLiteSessionStore)?.isEncrypted ?? (store as? PostgresSessionStore)?.isEncrypted ?? false
    }

    static func openingError(_ place: EngineStore, _ encryption: StoreEncryption) async -> SessionStoreError? {
        do {
            let store = try await place.open(encryption: encryption)
            try? await store.shutDown()
            return nil
        } catch let error as SessionStoreError {
            return error
        } catch {
            Issue.record("an untyped error: \(error)")
            return nil
        }
    }

    /// `body` fails with the store error `code` (the key it needs), nothing else.
    static func expectStoreError(_ code: String, _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            try await body()
            Issue.record("the store went on where it must refuse with \(code)", sourceLocation: sourceLocation)
        } catch let error as SessionStoreError {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("an untyped error: \(error)", sourceLocation: sourceLocation)
        }
    }

    /// What someone with a copy of the data finds: no key, login code hash or token in clear. On
    /// SQLite the whole file and its WAL; on PostgreSQL every secret column of the live rows (the
    /// row versions they replaced are VACUUM's, see docs/SESSIONS.md).
    static func expectNothingInClear(_ place: EngineStore, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        var stored: [(String, Data)] = []
        switch place.engine {
        case .sqlite:
            for file in try FileManager.default.contentsOfDirectory(atPath: place.location) where file.hasPrefix("sessions.sqlite") {
                stored.append((file, try Data(contentsOf: URL(fileURLWithPath: place.location + "/" + file))))
            }
        case .postgres:
            let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
            let database = try await PostgresDatabase.connect(url: try #require(place.postgresURL), logger: logger)
            do {
                stored = try await database.read { connection in
                    try await connection.rows("""
                        SELECT 'dc ' || account || ' ' || dc_id, auth_key FROM dc WHERE auth_key IS NOT NULL
                        UNION ALL SELECT 'temp ' || account || ' ' || dc_id, temp_key FROM dc WHERE temp_key IS NOT NULL
                        UNION ALL SELECT 'pending ' || account, phone_code_hash FROM pending_login_code
                        UNION ALL SELECT 'token ' || account, token FROM future_auth_token
                        UNION ALL SELECT 'proxy ' || id, convert_to(proxy, 'UTF8') FROM account WHERE proxy IS NOT NULL
                        """, logger: logger).map { try $0.decode((String, Data).self) }
                }
            } catch {
                await database.close()
                throw error
            }
            await database.close()
        }
        #expect(!stored.isEmpty, sourceLocation: sourceLocation)
        let secrets = [("a key", Data(Fixtures.key(2).bytes.prefix(32))), ("a temporary key", Data(Fixtures.key(50).bytes.prefix(32))),
                       ("a phone_code_hash", Data(Self.pendingCode.phoneCodeHash.utf8)), ("a future auth token", Data(Self.futureToken.bytes)),
                       ("a proxy password", Data(Self.proxyPassword.utf8))]
        for (place, bytes) in stored {
            for (what, secret) in secrets {
                #expect(bytes.range(of: secret) == nil, "\(what) in clear in \(place)", sourceLocation: sourceLocation)
            }
        }
    }
}
