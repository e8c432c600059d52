import Crypto
import Foundation
import Logging
import MTProto
import MTProtoClient
import PostgresStore
import SessionManager
import StoreTestSupport
import Synchronization
import Testing

/// What only the PostgreSQL store does: versioned migrations shared by many processes, and rate
/// buckets shared by the cluster. The contract it shares with SQLite is in SessionStoreContractTests.
@Suite struct PostgresSessionStoreTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    @Test func migrationsAreRecordedOnceAndASchemaFromANewerVersionIsRefused() async throws {
        try await EngineStore.with(.postgres) { place in
            let store = try #require(try await place.open() as? PostgresSessionStore)
            try await store.shutDown()
            let again = try #require(try await place.open() as? PostgresSessionStore)
            let admin = try await PostgresDatabase.connect(url: try #require(place.postgresURL), logger: quiet)
            try await admin.execute(unsafeSQL: "INSERT INTO tgsm_migrations(id) VALUES ('store.v99')")
            await admin.close()
            await #expect(throws: SessionStoreError.self) { _ = try await place.open() }
            do { _ = try await place.open() } catch let error as SessionStoreError {
                #expect(error.description.contains("store.v99") && error.description.contains("newer tgsm"))
            }
            try await again.shutDown()
        }
    }

    /// store.v7 turns the login code hash into bytes (so it can be sealed): a code pending when a
    /// cluster upgrades still reads back, and the upgraded store can seal it.
    @Test func aLoginCodePendingAcrossTheUpgradeToStoreV7ReadsBack() async throws {
        try await EngineStore.with(.postgres) { place in
            let store = try await place.open()
            let phoneKey = try await store.phoneKey(for: "15550001")
            try await store.shutDown()
            // The table as store.v6 left it, with a code in it.
            let admin = try await PostgresDatabase.connect(url: try #require(place.postgresURL), logger: quiet)
            for statement in [
                "ALTER TABLE pending_login_code ALTER COLUMN phone_code_hash TYPE text USING convert_from(phone_code_hash, 'UTF8')",
                "INSERT INTO pending_login_code VALUES ('alice', '\(phoneKey)', 'c0de-hash-6d2f9a', '\\x01020304', 100, 700)",
                "DELETE FROM tgsm_migrations WHERE id = 'store.v7'",
            ] {
                try await admin.execute(unsafeSQL: statement)
            }
            await admin.close()
            let expected = PendingLoginCode(phoneCodeHash: "c0de-hash-6d2f9a", codeType: [1, 2, 3, 4], sentAt: UnixTime(seconds: 100),
                                            offeredUntil: UnixTime(seconds: 700))
            let upgraded = try await place.open()
            #expect(try await upgraded.pendingLoginCode(account: "alice", phoneKey: phoneKey) == expected)
            try await upgraded.shutDown()
            let sealed = try await place.open(encryption: .key(SymmetricKey(size: .bits256)))
            #expect(try await sealed.pendingLoginCode(account: "alice", phoneKey: phoneKey) == expected)
            try await sealed.shutDown()
        }
    }

    /// Two processes (two stores on one database) draw from the same buckets: together they get
    /// the account's burst, not one burst each.
    /// A write whose COMMIT took effect on the server while its answer was lost (the connection
    /// ended under the COMMIT, through `CommitReplyCutter` in front of the real server) says it
    /// may or may not have taken effect. Before, it said the store failed, as if nothing had been
    /// written, while the session was stored.
    @Test func aWriteWhoseCommitAnswerWasLostSaysItMayHaveTakenEffect() async throws {
        let scratch = try await ScratchPostgresDatabase.create()
        let cutter = try await CommitReplyCutter.start(before: scratch.url)
        let store = try await PostgresSessionStore.connect(url: try cutter.proxied(scratch.url), logger: quiet)
        do {
            cutter.loseTheNextCommitAnswer()
            do {
                _ = try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
                Issue.record("a write whose answer was lost cannot report success")
            } catch {
                #expect(error.description.contains("after its COMMIT was sent, so it may or may not have taken effect"), "\(error)")
            }
            #expect(cutter.cuts == 1)
            #expect(try await store.loadSession(account: "alice") == Fixtures.session(), "the server had committed it")
        } catch {
            try? await store.shutDown()
            await cutter.stop()
            await scratch.drop()
            throw error
        }
        try await store.shutDown()
        await cutter.stop()
        await scratch.drop()
    }

    @Test func rateBucketsAreSharedByEveryProcess() async throws {
        try await EngineStore.with(.postgres) { place in
            let first = try #require(try await place.open() as? PostgresSessionStore)
            let second = try #require(try await place.open() as? PostgresSessionStore)
            let clock = ManualClock()
            let policy = RateGatePolicy(maximumInlineWait: 0)
            let gates = [RateGate(account: "alice", policy: policy, clock: clock, logger: quiet, shared: first),
                         RateGate(account: "alice", policy: policy, clock: clock, logger: quiet, shared: second)]
            let now = clock.now()
            // The send burst is 5 per account and 3 per chat.
            var decisions: [RateGate.Decision] = []
            for index in 0..<6 {
                decisions.append(await gates[index % 2].reserveShared(category: .send, peer: "user:\(index)", now: now))
            }
            #expect(decisions.prefix(5).allSatisfy { $0 == .go(after: 0) })
            #expect(decisions.last == .refuse(until: now + 3), "the sixth send of the account waits for a refill, whichever process asks")
            // Per chat too: a third process asking for chat user:0 later sees its bucket as the others left it.
            #expect(await gates[1].reserveShared(category: .send, peer: "user:0", now: now + 3) == .go(after: 0))
            #expect(await gates[0].reserveShared(category: .send, peer: "user:0", now: now + 3) == .refuse(until: now + 6))
            try await first.shutDown()
            try await second.shutDown()
        }
    }

    /// Per-chat buckets untouched for a while leave the table (a row per chat ever written to was
    /// kept for good); the account's own buckets and recently used chats' stay.
    @Test func idlePerChatRateBucketsArePurged() async throws {
        try await EngineStore.with(.postgres) { place in
            let store = try #require(try await place.open() as? PostgresSessionStore)
            let clock = ManualClock()
            let gate = RateGate(account: "alice", policy: RateGatePolicy(maximumInlineWait: 0), clock: clock, logger: quiet, shared: store)
            let start = clock.now()
            _ = await gate.reserveShared(category: .send, peer: "user:1", now: start)
            _ = await gate.reserveShared(category: .send, peer: "user:2", now: start + 7200)
            #expect(try await store.purgeIdleRateBuckets(untouchedSince: start + 3600) == 1, "user:1's, untouched for an hour")
            #expect(try await store.purgeIdleRateBuckets(untouchedSince: start + 3600) == 0)
            // user:2's and the account's (touched at +7200) stay: a further send into user:2 meets its bucket as left.
            for _ in 0..<2 { _ = await gate.reserveShared(category: .send, peer: "user:2", now: start + 7200) }
            #expect(await gate.reserveShared(category: .send, peer: "user:2", now: start + 7200) == .refuse(until: start + 7203))
            try await store.shutDown()
        }
    }

    /// `tgsm session backup` on PostgreSQL: every account's session copied into a SQLite store
    /// file, verified and checksummed like a SQLite backup (0600, sidecar), recorded in the
    /// `backups` table. Restoring it puts each account back exactly, under the account's lease: a
    /// live holder makes it refuse with nothing changed; forced, the holder is fenced out.
    @Test func aSnapshotIsAVerifiedStoreFileRecordedInTheDatabaseAndRestoresUnderTheLease() async throws {
        try await EngineStore.with(.postgres) { place in
            let store = try #require(try await place.open() as? PostgresSessionStore)
            let directory = TemporaryDirectory("snapshots")
            defer { directory.remove() }
            let clock = try #require(place.options.clock as? ManualClock)
            var session = Fixtures.session()
            var updates = UpdatesState(pts: 10, qts: 2, seq: 5, date: 1_700_000_000)
            updates.channels = [3001: 78]
            updates.channelAccessHashes = [3001: 555]
            session.updates = updates
            let peers = [PeerRecord(kind: .channel, id: 3001, accessHash: 555, seenAt: UnixTime(seconds: 100)),
                         PeerRecord(kind: .user, id: 1002, accessHash: 0x0B0B, username: "bob", seenAt: UnixTime(seconds: 100))]
            let salts = [FutureSalt(validSince: UnixTime(seconds: 100), validUntil: UnixTime(seconds: 1900), salt: 5)]
            let temporary = TemporaryAuthKey(key: Fixtures.key(9), expiresAt: UnixTime(seconds: 5000))
            let identity = DeviceIdentity(deviceModel: "Pixel 7", systemVersion: "Android 14", appVersion: "10.14.5", chosenAt: UnixTime(seconds: 10))
            let proxy = try ProxySetting("socks5://10.0.0.1:1080")
            try await store.saveSession(session, account: "alice", fence: nil)
            try await store.rememberPeers(peers, account: "alice", fence: nil)
            try await store.saveFutureSalts(salts, dc: 2, account: "alice", fence: nil)
            try await store.saveTemporaryKey(temporary, dc: 2, account: "alice", fence: nil)
            _ = try await store.chooseIdentity(identity, account: "alice")
            try await store.setProxy(proxy, account: "alice")
            try await store.saveSession(Fixtures.session(salt: 9, user: 2002), account: "bob", fence: nil)
            let phoneKey = try await store.phoneKey(for: "15550001")
            let token = FutureAuthToken(bytes: Array(repeating: 0x5A, count: 32), receivedAt: UnixTime(seconds: 150))
            try await store.addFutureAuthToken(token, account: "alice", phoneKey: phoneKey)

            let record = try await store.snapshot(into: directory.path, options: place.options)
            let file = directory.path + "/" + record.file
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            #expect(FileManager.default.fileExists(atPath: file + ".json"))
            #expect(SnapshotDirectory.verify(record.file, in: directory.path, options: place.options) == nil)
            #expect(SnapshotDirectory.list(directory.path) == [record])
            #expect(try await store.recordedBackups() == [record], "recorded where every process sees it")
            #expect(try await (try #require(try await place.open() as? PostgresSessionStore)).recordedBackups() == [record])
            // Nothing but the snapshot and its sidecar is left in the directory (no staging).
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == [record.file, record.file + ".json"])

            // Later changes, and a flood wait (a fact about Telegram now: a restore keeps it).
            try await store.saveSession(Fixtures.session(salt: 77), account: "alice", fence: nil)
            try await store.rememberPeers([PeerRecord(kind: .user, id: 5, accessHash: 1, seenAt: UnixTime(seconds: 200))], account: "alice", fence: nil)
            try await store.setProxy(nil, account: "alice")
            try await store.saveFutureSalts([], dc: 2, account: "alice", fence: nil)
            // The token spent (a code request let through), and a newer one received since.
            try await store.removeFutureAuthTokens(phoneKey: phoneKey)
            let newer = FutureAuthToken(bytes: Array(repeating: 0x6B, count: 32), receivedAt: UnixTime(seconds: 250))
            try await store.addFutureAuthToken(newer, account: "alice", phoneKey: phoneKey)
            let wait = FloodWait(account: "alice", method: "messages.sendMessage", peer: nil, kind: .floodWait, recordedAt: clock.now(),
                                 until: clock.now() + 600, dc: 2)
            try await store.recordFloodWait(wait)

            // A live holder: refused, nothing changed.
            let live = try await store.acquireLease(account: "alice", holder: LeaseHolder(host: "hostB", pid: 200), now: clock.now(), ttl: 30,
                                                    holderIsDead: { _ in false })
            let restorer = LeaseHolder(host: "restorer", pid: 1)
            do {
                _ = try await store.restore(from: directory.path, backup: nil, options: place.options, holder: restorer)
                Issue.record("a restore went ahead under a live lease")
            } catch let error as SessionStoreError {
                guard case .leaseHeld(let held) = error else { Issue.record("wrong error \(error)"); return }
                #expect(held.token == live.token)
            }
            #expect(try await store.loadSession(account: "alice")?.dcs[1]?.serverSalt == 77, "the later session is still there")
            #expect(try await store.currentLease(account: "bob") == nil, "a refused restore keeps no lease")

            // Forced: the holder's lease is taken over, every account is put back exactly.
            let waited = Mutex<[Double]>([])
            let report = try await store.restore(from: directory.path, backup: record.file, options: place.options, holder: restorer, force: true,
                                                 waiting: { seconds, _ in waited.withLock { $0.append(seconds) } })
            #expect(report.backup == record.file && report.accounts == ["alice", "bob"] && report.tookOverFrom == [live])
            // The leases taken over are kept until the old ones would have ended: a standby taking them
            // at once connected beside the old holder, and Telegram ended every session.
            // (This holder renewed at the lease's start with a 30 s TTL: it finds itself fenced 10 s later.)
            #expect(waited.withLock { $0 }.count == 1 && clock.now() >= live.heartbeatAt + 15, "\(waited.withLock { $0 }) \(clock.now()) \(live.heartbeatAt)")
            #expect(try await store.loadSession(account: "alice") == session)
            #expect(try await store.allPeers(account: "alice") == peers.sorted { ($0.kind.rawValue, $0.id) < ($1.kind.rawValue, $1.id) })
            #expect(try await store.futureSalts(dc: 2, account: "alice") == salts)
            #expect(try await store.temporaryKey(dc: 2, account: "alice") == temporary)
            #expect(try await store.identity(account: "alice") == identity)
            #expect(try await store.proxy(account: "alice") == proxy)
            // The snapshot's token is back beside the one received since (a lost session logs in again without a code).
            #expect(try await store.futureAuthTokens(phoneKey: phoneKey) == [newer, token])
            #expect(try await store.futureAuthTokenPhoneKey(account: "alice") == phoneKey)
            #expect(try await store.loadSession(account: "bob") == Fixtures.session(salt: 9, user: 2002))
            #expect(try await store.activeFloodWaits(account: "alice", at: clock.now()) == [wait])
            // The old holder is fenced out; the leases were released, and the tokens only grew.
            do {
                try await store.updateServerSalt(1, dc: 2, account: "alice", fence: live.token)
                Issue.record("the old holder wrote after the restore")
            } catch let error as SessionStoreError {
                guard case .fenced = error else { Issue.record("wrong error \(error)"); return }
            }
            #expect(try await store.currentLease(account: "alice") == nil)
            let next = try await store.acquireLease(account: "alice", holder: LeaseHolder(host: "hostC", pid: 3), now: clock.now(), ttl: 30,
                                                    holderIsDead: { _ in false })
            #expect(next.token.rawValue == live.token.rawValue + 2)

            // A damaged snapshot is never restored.
            let handle = try #require(FileHandle(forWritingAtPath: file))
            try handle.seek(toOffset: 200)
            handle.write(Data(repeating: 0xFF, count: 64))
            try handle.close()
            #expect(SnapshotDirectory.verify(record.file, in: directory.path, options: place.options) != nil)
            await #expect(throws: SessionStoreError.self) {
                _ = try await store.restore(from: directory.path, backup: nil, options: place.options, holder: restorer, force: true)
            }
            #expect(FileManager.default.fileExists(atPath: file), "a snapshot that fails verification is kept for a person to look at")
            try await store.shutDown()
        }
    }
}
