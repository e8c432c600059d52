import Foundation
import MTProto
import MTProtoClient
import MTProtoCrypto
import SessionManager
import StoreTestSupport
import TLSchema
import Testing

/// The `SessionStore` contract, run on every engine (`StoreEngine`: SQLite always, PostgreSQL
/// when a server is given, see StoreEngines.swift). Engine-specific behaviour (SQLite's files,
/// backups and recovery) is tested in the engine's own suite.
@Suite struct SessionStoreContractTests {
    @Test(arguments: StoreEngine.allCases) func aSavedSessionLoadsBackFieldByField(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            #expect(try await store.loadSession(account: "alice") == nil)
            let changed = try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
            #expect(changed)
            #expect(try await store.loadSession(account: "alice") == Fixtures.session())
            // Saving the same keys again is not a key change (no backup needed).
            #expect(try await store.saveSession(Fixtures.session(salt: 7), account: "alice", fence: nil) == false)
            try await store.shutDown()

            let reopened = try await place.open()
            #expect(try await reopened.loadSession(account: "alice") == Fixtures.session(salt: 7))
            #expect(try await reopened.accounts() == ["alice"])
            try await reopened.shutDown()
        }
    }

    @Test(arguments: StoreEngine.allCases) func fineGrainedWritesKeepTheRestOfTheSession(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
            try await store.updateServerSalt(-99, dc: 2, account: "alice", fence: nil)
            try await store.updateTimeOffset(3.75, dc: 1, account: "alice", fence: nil)
            var expected = Fixtures.session()
            expected.dcs[2]?.serverSalt = -99
            expected.dcs[1]?.timeOffset = 3.75
            #expect(try await store.loadSession(account: "alice") == expected)

            let salts = [FutureSalt(validSince: UnixTime(seconds: 100), validUntil: UnixTime(seconds: 1900), salt: 5),
                         FutureSalt(validSince: UnixTime(seconds: 1800), validUntil: UnixTime(seconds: 3600), salt: 6)]
            try await store.saveFutureSalts(salts, dc: 2, account: "alice", fence: nil)
            #expect(try await store.futureSalts(dc: 2, account: "alice") == salts)

            let temporary = TemporaryAuthKey(key: Fixtures.key(9), expiresAt: UnixTime(seconds: 5000))
            try await store.saveTemporaryKey(temporary, dc: 2, account: "alice", fence: nil)
            #expect(try await store.temporaryKey(dc: 2, account: "alice") == temporary)
            // A session save leaves the temporary key alone.
            try await store.saveSession(expected, account: "alice", fence: nil)
            #expect(try await store.temporaryKey(dc: 2, account: "alice") == temporary)
            try await store.saveTemporaryKey(nil, dc: 2, account: "alice", fence: nil)
            #expect(try await store.temporaryKey(dc: 2, account: "alice") == nil)
            #expect(try await store.loadSession(account: "alice") == expected)
            try await store.shutDown()
        }
    }

    @Test(arguments: StoreEngine.allCases) func theClientsUpdateStateRidesInTheSessionAndSurvivesAReopen(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            var state = Fixtures.session()
            state.updates = UpdatesState(pts: 41, qts: 0, seq: 7, date: 1_700_000_123, channels: [3001: 12, 3002: 99], channelAccessHashes: [3001: 0x5151])
            try await store.saveSession(state, account: "alice", fence: nil)
            // A later save moves the pts on and forgets a channel the client no longer follows.
            state.updates?.pts = 42
            state.updates?.channels = [3001: 13]
            try await store.saveSession(state, account: "alice", fence: nil)
            try await store.shutDown()

            let reopened = try await place.open()
            let loaded = try #require(try await reopened.loadSession(account: "alice"))
            #expect(loaded.updates == UpdatesState(pts: 42, qts: 0, seq: 7, date: 1_700_000_123, channels: [3001: 13], channelAccessHashes: [3001: 0x5151]))
            // The channel's access hash is in the peer cache, where the rest of the program finds it.
            #expect(try await reopened.peer(kind: .channel, id: 3001, account: "alice")?.accessHash == 0x5151)
            // A session saved before updates were ever started has none.
            try await reopened.saveSession(Fixtures.session(), account: "bob", fence: nil)
            #expect(try await reopened.loadSession(account: "bob")?.updates == nil)
            try await reopened.shutDown()
        }
    }

    @Test(arguments: StoreEngine.allCases) func updateStateChannelPtsAndPeers(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            #expect(try await store.updateState(account: "alice") == nil)
            try await store.saveUpdateState(UpdateState(pts: 10, qts: 2, date: 1_700_000_000, seq: 5), account: "alice", fence: nil)
            try await store.saveChannelPts(77, channel: 3001, account: "alice", fence: nil)
            try await store.saveChannelPts(78, channel: 3001, account: "alice", fence: nil)
            try await store.saveChannelPts(9, channel: 3002, account: "alice", fence: nil)
            #expect(try await store.updateState(account: "alice") == UpdateState(pts: 10, qts: 2, date: 1_700_000_000, seq: 5))
            #expect(try await store.channelPts(account: "alice") == [3001: 78, 3002: 9])

            let seen = UnixTime(seconds: 100)
            try await store.rememberPeers([
                PeerRecord(kind: .user, id: 1002, accessHash: 0x0B0B, username: "Bob", seenAt: seen),
                PeerRecord(kind: .channel, id: 3001, accessHash: 555, seenAt: seen),
                PeerRecord(kind: .chat, id: 4001, accessHash: nil, seenAt: seen),
            ], account: "alice", fence: nil)
            // A later sighting without an access hash (a "min" user) keeps the known one.
            try await store.rememberPeers([PeerRecord(kind: .user, id: 1002, accessHash: nil, username: "bob", seenAt: UnixTime(seconds: 200))],
                                          account: "alice", fence: nil)
            let bob = try #require(try await store.peer(kind: .user, id: 1002, account: "alice"))
            #expect(bob.accessHash == 0x0B0B && bob.seenAt == UnixTime(seconds: 200))
            #expect(try await store.peer(username: "@BOB", account: "alice")?.id == 1002)
            #expect(try await store.peer(kind: .channel, id: 3001, account: "alice")?.accessHash == 555)
            #expect(try await store.peer(kind: .user, id: 3001, account: "alice") == nil)
            #expect(try await store.peer(kind: .chat, id: 4001, account: "bob") == nil)
            try await store.shutDown()
        }
    }

    /// A session import brings another library's peer cache: what the store saw later stays, what
    /// it did not know is added, and an export lists everything, most recently seen first.
    @Test(arguments: StoreEngine.allCases) func importedPeersNeverOutrankWhatTheStoreSawLater(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            try await store.rememberPeers([
                PeerRecord(kind: .user, id: 1002, accessHash: 0x0B0B, username: "bob", seenAt: UnixTime(seconds: 500)),
                PeerRecord(kind: .channel, id: 2001, accessHash: 0x2001, username: "oldnews", seenAt: UnixTime(seconds: 100)),
            ], account: "alice", fence: nil)
            try await store.importPeers([
                // Older than the store's sighting: ignored.
                PeerRecord(kind: .user, id: 1002, accessHash: 0x0BAD, username: "robert", seenAt: UnixTime(seconds: 400)),
                // Newer: taken (the channel's username changed).
                PeerRecord(kind: .channel, id: 2001, accessHash: 0x2001, username: "testnews", seenAt: UnixTime(seconds: 300)),
                PeerRecord(kind: .chat, id: 4001, accessHash: nil, seenAt: UnixTime(seconds: 200)),
            ], account: "alice")
            try await store.importPeers([PeerRecord(kind: .user, id: 1003, accessHash: 3, seenAt: UnixTime(seconds: 1))], account: "carol")
            #expect(try await store.peers(account: "alice") == [
                PeerRecord(kind: .user, id: 1002, accessHash: 0x0B0B, username: "bob", seenAt: UnixTime(seconds: 500)),
                PeerRecord(kind: .channel, id: 2001, accessHash: 0x2001, username: "testnews", seenAt: UnixTime(seconds: 300)),
                PeerRecord(kind: .chat, id: 4001, accessHash: nil, seenAt: UnixTime(seconds: 200)),
            ])
            #expect(try await store.peer(username: "oldnews", account: "alice") == nil)
            #expect(try await store.accounts().contains("carol"), "an import creates the account's row")
            #expect(try await store.peers(account: "carol").map(\.id) == [1003])
            #expect(try await store.peers(account: "bob") == [])
            try await store.shutDown()
        }
    }

    /// A library's whole cache in one import, as large as people keep them: several of PostgreSQL's
    /// statements (`peersPerStatement`), one peer listed twice (the later sighting kept). Before, a
    /// round trip per row took 100,000 peers past PostgreSQL's 30 s transaction bound.
    @Test(arguments: StoreEngine.allCases) func aLargeCacheImportsInOneGo(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            var peers = (1...12_000).map { (index: Int) -> PeerRecord in
                let number = Int64(index)
                return PeerRecord(kind: index % 3 == 0 ? .channel : .user, id: number, accessHash: number, username: "peer_\(index)",
                                  seenAt: UnixTime(seconds: Double(1_000 + number)))
            }
            peers.append(PeerRecord(kind: .user, id: 1, accessHash: 77, username: "renamed", seenAt: UnixTime(seconds: 99_999)))
            try await store.importPeers(peers, account: "alice")
            let stored = try await store.peers(account: "alice")
            #expect(stored.count == 12_000)
            #expect(stored.first == PeerRecord(kind: .user, id: 1, accessHash: 77, username: "renamed", seenAt: UnixTime(seconds: 99_999)))
            #expect(try await store.peer(username: "peer_11999", account: "alice")?.id == 11_999)
            try await store.forgetPeers(account: "alice")
            #expect(try await store.peers(account: "alice") == [])
            try await store.shutDown()
        }
    }

    @Test(arguments: StoreEngine.allCases) func floodLedgerKeepsTheLaterUntilAndPurgesEnded(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            let t = UnixTime(seconds: 1000)
            let send = FloodWait(account: "alice", method: "messages.sendMessage", peer: "user:2", kind: .slowmodeWait, recordedAt: t, until: t + 60, dc: 2)
            try await store.recordFloodWait(send)
            var shorter = send
            shorter.until = t + 10
            shorter.kind = .floodWait
            try await store.recordFloodWait(shorter)
            #expect(try await store.activeFloodWaits(account: "alice", at: t) == [send])
            var longer = send
            longer.until = t + 90
            try await store.recordFloodWait(longer)
            let global = FloodWait(account: "bob", method: "auth.sendCode", kind: .floodWait, recordedAt: t, until: t + 30)
            try await store.recordFloodWait(global)
            #expect(try await store.activeFloodWaits(account: nil, at: t) == [global, longer])
            #expect(try await store.activeFloodWaits(account: nil, at: t + 30) == [longer])
            #expect(try await store.purgeFloodWaits(endedBefore: t + 30) == 1)
            #expect(try await store.activeFloodWaits(account: "bob", at: t) == [])
            try await store.shutDown()

            // Shared by every process on the store and every restart.
            let reopened = try await place.open()
            #expect(try await reopened.activeFloodWaits(account: "alice", at: t) == [longer])
            try await reopened.shutDown()
        }
    }

    @Test(arguments: StoreEngine.allCases) func sendCodeDeadlinesAreKeyedByAKeyedDigestNeverTheNumber(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            let key = try await store.phoneKey(for: "+1 555 000 1234")
            #expect(try await store.phoneKey(for: "15550001234") == key)
            #expect(try await store.phoneKey(for: "15550001235") != key)
            #expect(!key.contains("5550001234") && key.count == 64)
            try await store.setSendCodeDeadline(UnixTime(seconds: 5000), account: "alice", phoneKey: key)
            try await store.shutDown()

            let reopened = try await place.open()
            #expect(try await reopened.phoneKey(for: "15550001234") == key, "the digest key survives restarts")
            #expect(try await reopened.sendCodeDeadline(account: "alice", phoneKey: key) == UnixTime(seconds: 5000))
            // The phone's latest deadline over every account (Telegram counts requests per number).
            let other = try await reopened.phoneKey(for: "15550001235")
            try await reopened.setSendCodeDeadline(UnixTime(seconds: 7000), account: "bob", phoneKey: key)
            try await reopened.setSendCodeDeadline(UnixTime(seconds: 9000), account: "carol", phoneKey: other)
            #expect(try await reopened.latestSendCodeDeadline(phoneKey: key) == SendCodeDeadline(account: "bob", deadline: UnixTime(seconds: 7000)))
            try await reopened.setSendCodeDeadline(nil, account: "bob", phoneKey: key)
            #expect(try await reopened.latestSendCodeDeadline(phoneKey: key) == SendCodeDeadline(account: "alice", deadline: UnixTime(seconds: 5000)))
            try await reopened.setSendCodeDeadline(nil, account: "alice", phoneKey: key)
            #expect(try await reopened.sendCodeDeadline(account: "alice", phoneKey: key) == nil)
            #expect(try await reopened.latestSendCodeDeadline(phoneKey: key) == nil)
            // An account removed keeps its deadlines: they are the number's, and another name for it
            // still waits for them (an audit asked for a second code 48 s after the first that way).
            try await reopened.setSendCodeDeadline(UnixTime(seconds: 8000), account: "zed", phoneKey: key)
            try await reopened.deleteAccount("zed")
            #expect(try await reopened.latestSendCodeDeadline(phoneKey: key) == SendCodeDeadline(account: "zed", deadline: UnixTime(seconds: 8000)))
            try await reopened.shutDown()
        }
    }

    /// Whether the store still has an account: what a waiting worker loop asks before it takes the
    /// account up again (a removed one must not be written back).
    @Test(arguments: StoreEngine.allCases) func anAccountIsKnownUntilItIsRemoved(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            #expect(try await !store.isKnownAccount("alice"))
            _ = try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
            #expect(try await store.isKnownAccount("alice"))
            #expect(try await !store.isKnownAccount("alic"))
            try await store.deleteAccount("alice")
            #expect(try await !store.isKnownAccount("alice"))
            try await store.shutDown()
        }
    }

    /// `.unreadable` is what a reader makes of a row it cannot read, never a state to store: a write
    /// of it leaves the row as it was (a newer tgsm's mark kept byte for byte, a cleared one
    /// cleared), whichever writer asks. Before, only the two writers that could ask checked.
    @Test(arguments: StoreEngine.allCases) func anUnreadableMarkIsNeverWritten(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            _ = try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
            let unreadable = AccountStatus.unreadable("account status (unknown state \"hibernating\")", readAt: UnixTime(seconds: 5))
            try await store.setStatus(unreadable, for: "alice")
            #expect(try await store.status(of: "alice") == nil)
            let revoked = AccountStatus(state: .revoked, since: UnixTime(seconds: 1), cause: "SESSION_REVOKED", code: "TGSM-AUTH-002")
            try await store.setStatus(revoked, for: "alice")
            try await store.setStatus(unreadable, for: "alice")
            #expect(try await store.status(of: "alice") == revoked)
            try await store.shutDown()
        }
    }

    /// The code sent and not yet used: kept per account and phone key across reopening, replaced by
    /// a newer one, forgotten on request and with the account.
    @Test(arguments: StoreEngine.allCases) func pendingLoginCodesRoundTripAndGoWithTheirAccount(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            let key = try await store.phoneKey(for: "15550001")
            let type = Api.auth.SentCodeType.sentCodeTypeSms(.init(length: 5)).serialized()
            let first = PendingLoginCode(phoneCodeHash: "first-hash", codeType: type, sentAt: UnixTime(seconds: 100), offeredUntil: UnixTime(seconds: 700))
            #expect(try await store.pendingLoginCode(account: "alice", phoneKey: key) == nil)
            try await store.setPendingLoginCode(first, account: "alice", phoneKey: key)
            try await store.setPendingLoginCode(first, account: "bob", phoneKey: key)
            try await store.shutDown()

            let reopened = try await place.open()
            let loaded = try #require(try await reopened.pendingLoginCode(account: "alice", phoneKey: key))
            #expect(loaded == first)
            #expect(loaded.sentCode?.channel == "sms")
            let second = PendingLoginCode(phoneCodeHash: "second-hash", codeType: type, sentAt: UnixTime(seconds: 800), offeredUntil: UnixTime(seconds: 1400))
            try await reopened.setPendingLoginCode(second, account: "alice", phoneKey: key)
            #expect(try await reopened.pendingLoginCode(account: "alice", phoneKey: key) == second)
            try await reopened.setPendingLoginCode(nil, account: "alice", phoneKey: key)
            #expect(try await reopened.pendingLoginCode(account: "alice", phoneKey: key) == nil)
            #expect(try await reopened.pendingLoginCode(account: "bob", phoneKey: key) == first, "each account its own")
            try await reopened.deleteAccount("bob")
            #expect(try await reopened.pendingLoginCode(account: "bob", phoneKey: key) == nil)
            try await reopened.shutDown()
        }
    }

    /// Future auth tokens: per phone key whichever account got them, newest first, a token kept
    /// once, at most 20 a phone (the oldest go), across reopening, and gone with their account.
    @Test(arguments: StoreEngine.allCases) func futureAuthTokensAreKeptPerPhoneNewestFirstAndCapped(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            let phone = try await store.phoneKey(for: "+1 555 0001")
            let other = try await store.phoneKey(for: "15550002")
            func token(_ n: Int) -> FutureAuthToken { FutureAuthToken(bytes: Array("token-\(n)".utf8), receivedAt: UnixTime(seconds: Double(1000 + n))) }
            #expect(try await store.futureAuthTokens(phoneKey: phone).isEmpty)
            #expect(try await store.futureAuthTokenPhoneKey(account: "alice") == nil)
            for n in 1...24 { try await store.addFutureAuthToken(token(n), account: n == 24 ? "alice-work" : "alice", phoneKey: phone) }
            // The same token again (a repeated answer) is not kept twice, nor moved.
            try await store.addFutureAuthToken(FutureAuthToken(bytes: token(20).bytes, receivedAt: UnixTime(seconds: 5000)), account: "alice", phoneKey: phone)
            try await store.addFutureAuthToken(token(99), account: "bob", phoneKey: other)
            try await store.shutDown()

            let reopened = try await place.open()
            #expect(try await reopened.futureAuthTokens(phoneKey: phone) == (5...24).reversed().map(token), "the 20 newest, newest first")
            #expect(try await reopened.futureAuthTokens(phoneKey: other) == [token(99)], "each phone its own")
            #expect(try await reopened.futureAuthTokenPhoneKey(account: "alice") == phone)
            #expect(try await reopened.futureAuthTokenPhoneKey(account: "bob") == other)
            try await reopened.deleteAccount("alice")
            #expect(try await reopened.futureAuthTokens(phoneKey: phone) == [token(24)], "alice's go with her; alice-work's stays")
            #expect(try await reopened.futureAuthTokenPhoneKey(account: "alice") == nil)
            try await reopened.shutDown()
        }
    }

    /// A freeze is kept per account across reopening; a later record keeps the earliest `since` and
    /// details it lacks; it is forgotten on request and with its account.
    @Test(arguments: StoreEngine.allCases) func freezesAreKeptMergedAndForgotten(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            #expect(try await store.freezes(account: nil).isEmpty)
            try await store.recordFreeze(StoredAccountFreeze(account: "alice", since: UnixTime(seconds: 2000), confirmedAt: UnixTime(seconds: 2000)))
            try await store.recordFreeze(StoredAccountFreeze(account: "alice", since: UnixTime(seconds: 1500), deletedAfter: UnixTime(seconds: 9000),
                                                             appealURL: "https://t.me/spambot", confirmedAt: UnixTime(seconds: 2100)))
            // A later FROZEN answer alone (no details, a later first sighting) takes nothing away.
            try await store.recordFreeze(StoredAccountFreeze(account: "alice", since: UnixTime(seconds: 3000), confirmedAt: UnixTime(seconds: 3000)))
            try await store.recordFreeze(StoredAccountFreeze(account: "bob", since: UnixTime(seconds: 100), confirmedAt: UnixTime(seconds: 100)))
            try await store.shutDown()

            let reopened = try await place.open()
            let alice = StoredAccountFreeze(account: "alice", since: UnixTime(seconds: 1500), deletedAfter: UnixTime(seconds: 9000),
                                            appealURL: "https://t.me/spambot", confirmedAt: UnixTime(seconds: 3000))
            #expect(try await reopened.freezes(account: "alice") == [alice])
            #expect(try await reopened.freezes(account: nil).map(\.account) == ["alice", "bob"])
            try await reopened.clearFreeze(account: "bob")
            #expect(try await reopened.freezes(account: nil) == [alice])
            try await reopened.deleteAccount("alice")
            #expect(try await reopened.freezes(account: nil).isEmpty)
            try await reopened.shutDown()
        }
    }

    /// Telegram's service notifications: per account, newest first, the newest 50, from a time on,
    /// across reopening, and gone with their account.
    @Test(arguments: StoreEngine.allCases) func serviceNotificationsAreKeptPerAccountNewestFirstAndCapped(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            func notice(_ n: Int, _ account: AccountID = "alice") -> StoredServiceNotification {
                StoredServiceNotification(account: account, type: n == 60 ? "AUTH_KEY_DROP_DUPLICATE" : "NOTE_\(n)", message: "note \(n): code •••••",
                                          popup: n.isMultiple(of: 2), receivedAt: UnixTime(seconds: Double(1000 + n)))
            }
            #expect(try await store.serviceNotifications(account: nil, since: UnixTime(seconds: 0)).isEmpty)
            for n in 1...60 { try await store.recordServiceNotification(notice(n)) }
            try await store.recordServiceNotification(notice(7, "bob"))
            try await store.shutDown()

            let reopened = try await place.open()
            let alices = try await reopened.serviceNotifications(account: "alice", since: UnixTime(seconds: 0))
            #expect(alices == (11...60).reversed().map { notice($0) }, "the 50 newest, newest first")
            #expect(alices.first?.asksToDropTheSession == true && alices.first?.popup == true && alices.last?.popup == false)
            #expect(try await reopened.serviceNotifications(account: "alice", since: UnixTime(seconds: 1058)).map(\.type) == ["AUTH_KEY_DROP_DUPLICATE", "NOTE_59", "NOTE_58"])
            #expect(try await reopened.serviceNotifications(account: nil, since: UnixTime(seconds: 1007)).count == 51, "every account's")
            try await reopened.deleteAccount("alice")
            #expect(try await reopened.serviceNotifications(account: nil, since: UnixTime(seconds: 0)) == [notice(7, "bob")])
            try await reopened.shutDown()
        }
    }

    @Test(arguments: StoreEngine.allCases) func theClientLoadsAndSavesThroughTheAccountAdapter(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            let storage: any SessionStorage = AccountSessionStorage(store: store, account: "alice", lease: nil)
            #expect(try await storage.load() == nil)
            try await storage.save(Fixtures.session())
            #expect(try await storage.load() == Fixtures.session())
            // Future salts (get_future_salts) are kept per DC through the adapter, and replaced as a whole.
            var withSalts = Fixtures.session()
            let dc = try #require(withSalts.dcs.keys.min())
            withSalts.dcs[dc]?.futureSalts = (Int32(0)..<3).map { MTProto.FutureSalt(validSince: 1_800_000_000 + $0 * 3600, validUntil: 1_800_005_400 + $0 * 3600, salt: Int64($0) &- 7) }
            try await storage.save(withSalts)
            #expect(try await storage.load() == withSalts)
            withSalts.dcs[dc]?.futureSalts.removeFirst()
            try await storage.save(withSalts)
            #expect(try await storage.load()?.dcs[dc]?.futureSalts.count == 2)
            try await storage.save(Fixtures.session())
            #expect(try await AccountSessionStorage(store: store, account: "bob", lease: nil).load() == nil)
            try await store.deleteAccount("alice")
            #expect(try await storage.load() == nil)
            #expect(try await store.accounts() == [])
            try await store.shutDown()
        }
    }

    @Test(arguments: StoreEngine.allCases) func identityIsChosenOnceAndConfiguresEveryInitConnection(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            let first = DeviceIdentity(deviceModel: "Pixel 7", systemVersion: "Android 14", appVersion: "10.14.5",
                                       systemLangCode: "de-DE", langPack: "android", langCode: "de", chosenAt: UnixTime(seconds: 10))
            #expect(try await store.chooseIdentity(first, account: "alice") == first)
            let host = DeviceIdentity.thisHost(appVersion: "tgsm 0.1", at: UnixTime(seconds: 20))
            #expect(try await store.chooseIdentity(host, account: "alice") == first, "a later proposal never replaces the stored identity")
            try await store.shutDown()

            let reopened = try await place.open()
            let stored = try #require(try await reopened.identity(account: "alice"))
            #expect(stored == first)
            let key = try RSAPublicKey(modulus: Array(repeating: 0xC5, count: 256), exponent: [1, 0, 1])
            let base = TelegramClientConfiguration(apiID: 1, apiHash: "h", serverKeys: [key])
            let configured = base.with(identity: stored)
            #expect(configured.deviceModel == "Pixel 7" && configured.systemVersion == "Android 14" && configured.appVersion == "10.14.5")
            #expect(configured.systemLangCode == "de-DE" && configured.langPack == "android" && configured.langCode == "de")
            #expect(try await reopened.identity(account: "bob") == nil)
            #expect(!host.deviceModel.isEmpty && host.systemVersion.hasPrefix("Linux"))
            try await reopened.shutDown()
        }
    }

    @Test(arguments: StoreEngine.allCases) func eachAccountKeepsItsOwnProxy(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            let socks = try ProxySetting("socks5://user:secret@10.0.0.1:1080")
            let mtproxy = try ProxySetting("tg://proxy?server=proxy.example&port=443&secret=ee0123456789abcdef")
            #expect(socks.kind == .socks5 && socks.host == "10.0.0.1" && socks.port == 1080)
            #expect(mtproxy.kind == .mtproxy && mtproxy.host == "proxy.example" && mtproxy.port == 443)
            #expect(!"\(socks)".contains("secret"))
            try await store.setProxy(socks, account: "alice")
            try await store.setProxy(mtproxy, account: "bob")
            try await store.shutDown()
            let reopened = try await place.open()
            #expect(try await reopened.proxy(account: "alice") == socks)
            #expect(try await reopened.proxy(account: "bob") == mtproxy)
            try await reopened.setProxy(nil, account: "alice")
            #expect(try await reopened.proxy(account: "alice") == nil)
            try await reopened.shutDown()

            for bad in ["", "socks5://:1080", "socks5://host", "ftp://host:21", "tg://proxy?server=h&port=0&secret=ab", "https://t.me/proxy?server=h&port=443",
                        // a password without its user (it was dropped without a word), a path or a query
                        "socks5://:pw@host:1080", "socks5://host:1080/path", "socks5://host:1080?x=1"] {
                #expect(throws: SessionStoreError.self, "\(bad)") { try ProxySetting(bad) }
            }
            // An IPv6 literal reaches the resolver without its brackets (they made every connect fail).
            let six = try ProxySetting("socks5://[::1]:1080")
            let sixClient = try six.clientProxy()
            #expect(six.host == "::1" && six.address == "[::1]:1080" && "\(sixClient)" == "SOCKS5 proxy [::1]:1080")
            #expect(try ProxySetting("tg://proxy?server=[2001:db8::1]&port=443&secret=0123456789abcdef0123456789abcdef").host == "2001:db8::1")
        }
    }

    /// `AlertMemory`: what `tgsm run` said, by key, for the next process; old entries forgotten.
    @Test(arguments: StoreEngine.allCases) func alertsSentAreRememberedAndForgottenInTime(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            let memory = try #require(store as? any AlertMemory)
            #expect(try await memory.alertsSent(since: UnixTime(seconds: 0)).isEmpty)
            try await memory.recordAlertsSent(["account:alice:down", "flood:alice:messages.sendMessage::1800000600"], at: UnixTime(seconds: 100),
                                              forgetBefore: UnixTime(seconds: 0))
            try await memory.recordAlertsSent(["account:alice:down"], at: UnixTime(seconds: 200), forgetBefore: UnixTime(seconds: 0))
            #expect(try await memory.alertsSent(since: UnixTime(seconds: 0)) == [
                "account:alice:down": UnixTime(seconds: 200), "flood:alice:messages.sendMessage::1800000600": UnixTime(seconds: 100),
            ])
            #expect(try await memory.alertsSent(since: UnixTime(seconds: 150)).keys.sorted() == ["account:alice:down"])
            try await memory.recordAlertsSent(["recovered:alice"], at: UnixTime(seconds: 300), forgetBefore: UnixTime(seconds: 150))
            try await store.shutDown()
            let reopenedStore = try await place.open()
            let reopened = try #require(reopenedStore as? any AlertMemory)
            #expect(try await reopened.alertsSent(since: UnixTime(seconds: 0)).keys.sorted() == ["account:alice:down", "recovered:alice"])
            // Gone with the account; another account's stay (a name that starts the same included).
            try await reopened.recordAlertsSent(["account:alice2:down", "account:bob:down"], at: UnixTime(seconds: 300), forgetBefore: UnixTime(seconds: 0))
            try await reopenedStore.deleteAccount("alice")
            #expect(try await reopened.alertsSent(since: UnixTime(seconds: 0)).keys.sorted() == ["account:alice2:down", "account:bob:down"])
        }
    }

    /// A running process's report of an account: kept only while its writer holds the lease, read
    /// back field by field, current only under that lease, and gone with the account.
    @Test(arguments: StoreEngine.allCases) func liveReportsAreWrittenOnlyByTheLeaseHolder(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            let reports = try #require(store as? any LiveReportStore)
            let first = LeaseHolder(host: "host-a", pid: 101), second = LeaseHolder(host: "host-b", pid: 202)
            let refused = LiveReport(account: "alice", holder: first, ready: false, health: "down", reasons: [
                LiveReport.Reason(code: "proxy_refused", text: "the SOCKS5 proxy refused the password: correct its link", needsAPerson: true),
                LiveReport.Reason(code: "session_not_saved", text: "the session could not be saved \"since\" 12:00", needsAPerson: true),
            ], since: UnixTime(seconds: 1000), reportedAt: UnixTime(seconds: 1010))
            // No lease yet: nobody serves the account, so nothing is kept.
            #expect(try await reports.recordLiveReport(refused) == false)
            #expect(try await reports.liveReports().isEmpty)

            let lease = try await store.acquireLease(account: "alice", holder: first, now: UnixTime(seconds: 1000), ttl: 30, holderIsDead: { _ in false })
            #expect(try await reports.recordLiveReport(refused))
            #expect(try await reports.liveReports() == [refused])
            #expect(refused.needsAPerson)
            #expect(refused.isCurrent(lease: lease, at: UnixTime(seconds: 1020)))
            #expect(!refused.isCurrent(lease: lease, at: UnixTime(seconds: 1030)), "past the lease's end it speaks for nobody")
            // Another process (standing by) writes nothing over the holder's report.
            var standby = refused
            standby.holder = second
            standby.ready = true
            standby.reasons = []
            #expect(try await reports.recordLiveReport(standby) == false)
            #expect(try await reports.liveReports() == [refused])

            // Released: the old holder's next look writes nothing either; the report is no longer current.
            try await store.releaseLease(lease)
            #expect(try await reports.recordLiveReport(refused) == false)
            #expect(!refused.isCurrent(lease: try await store.currentLease(account: "alice"), at: UnixTime(seconds: 1020)))

            // The second process takes the account and replaces the report.
            let taken = try await store.acquireLease(account: "alice", holder: second, now: UnixTime(seconds: 1100), ttl: 30, holderIsDead: { _ in false })
            #expect(!refused.isCurrent(lease: taken, at: UnixTime(seconds: 1100)))
            #expect(try await reports.recordLiveReport(standby))
            try await store.shutDown()
            let reopened = try await place.open()
            let kept = try await #require(reopened as? any LiveReportStore).liveReports()
            #expect(kept == [standby])
            #expect(kept.first?.isCurrent(lease: taken, at: UnixTime(seconds: 1110)) == true)
            #expect(kept.first?.needsAPerson == false)
            try await reopened.deleteAccount("alice")
            #expect(try await #require(reopened as? any LiveReportStore).liveReports().isEmpty)
            try await reopened.shutDown()
        }
    }
}
