import GRDB
import Logging
import MTProto
import MTProtoClient
import SessionManager
import TLSchema
import StoreTestSupport
import Testing

/// The peer cache over a real SQLite store file, fed by a scripted invoker through its middleware
/// (alone and inside the standard stack).
@Suite struct PeerCacheTests {
    static func user(_ id: Int64, hash: Int64?, username: String? = nil, min: Bool = false, usernames: [Api.Username]? = nil) -> Api.User {
        .user(Api.User.User(min: min, id: id, accessHash: hash, firstName: "User \(id)", username: username, usernames: usernames))
    }

    static func channel(_ id: Int64, hash: Int64?, username: String? = nil, min: Bool = false) -> Api.Chat {
        .channel(Api.Chat.Channel(min: min, id: id, accessHash: hash, title: "Channel \(id)", username: username,
                                  photo: .chatPhotoEmpty(Api.ChatPhoto.ChatPhotoEmpty()), date: 1_700_000_000))
    }

    static func basicChat(_ id: Int64) -> Api.Chat {
        .chat(Api.Chat.Chat(id: id, title: "Chat \(id)", photo: .chatPhotoEmpty(Api.ChatPhoto.ChatPhotoEmpty()), participantsCount: 3, date: 1_700_000_000, version: 1))
    }

    struct Fixture {
        let dir = TemporaryDirectory("peers")
        let clock = ManualClock()
        let store: SQLiteSessionStore
        let invoker = ScriptedInvoker()
        let cache: PeerCache
        let logs = LogCapture()

        init(fence: LeaseToken? = nil) throws {
            store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options(clock: clock))
            cache = PeerCache(account: "alice", store: store, fence: fence, clock: clock, logger: logs.logger)
        }

        var cached: any TelegramInvoking { invoker.wrapped(in: [PeerCacheMiddleware(cache)]) }

        /// Every peer row of the file, read with a connection of its own (not through the store).
        func rows() throws -> [String] {
            let queue = try DatabaseQueue(path: dir.file("sessions.sqlite"))
            defer { try? queue.close() }
            return try queue.read { db in
                try Row.fetchAll(db, sql: "SELECT account, kind, peer_id, access_hash, username FROM peer ORDER BY kind, peer_id").map { row in
                    let hash: Int64? = row["access_hash"]
                    let name: String? = row["username"]
                    return "\(row["account"] as String? ?? "?") \(row["kind"] as String? ?? "?") \(row["peer_id"] as Int64? ?? 0) \(hash.map(String.init) ?? "-") \(name ?? "-")"
                }
            }
        }

        func finish() {
            try? store.close()
            dir.remove()
        }
    }

    @Test func everyAnswerTypeThatCarriesPeersFillsTheStore() async throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        let invoker = fixture.invoker
        invoker.script("contacts.resolveUsername", .success(Api.contacts.ResolvedPeer.resolvedPeer(.init(
            peer: .peerUser(.init(userId: 1002)), chats: [], users: [Self.user(1002, hash: 0x0B0B, username: "Bob")]))))
        invoker.script("messages.getHistory", .success(Api.messages.Messages.channelMessages(.init(
            pts: 5, count: 1, messages: [], topics: [], chats: [Self.channel(2001, hash: 0x2001, username: "TestNews")],
            users: [Self.user(1003, hash: 0x0CA201, username: "carol")]))))
        invoker.script("users.getUsers", .success([Self.user(1005, hash: 0x0B07, username: "test_bot"), Api.User.userEmpty(.init(id: 9))]))
        invoker.script("messages.getChats", .success(Api.messages.Chats.chats(.init(chats: [Self.basicChat(4001)]))))
        invoker.script("updates.getDifference", .success(Api.updates.Difference.difference(.init(
            newMessages: [], newEncryptedMessages: [], otherUpdates: [], chats: [Self.channel(2002, hash: 0x2002)],
            users: [Self.user(1006, hash: 0x1006)], state: .state(.init(pts: 1, qts: 0, date: 1, seq: 1, unreadCount: 0))))))
        invoker.script("auth.signIn", .success(Api.auth.Authorization.authorization(.init(user: Self.user(1001, hash: 0x0A11CE, username: "alice")))))

        let cached = fixture.cached
        _ = try await cached.invoke(Api.functions.contacts.ResolveUsername(username: "bob"))
        _ = try await cached.invoke(Api.functions.messages.GetHistory(
            peer: .inputPeerChannel(.init(channelId: 2001, accessHash: 0x2001)), offsetId: 0, offsetDate: 0, addOffset: 0, limit: 10, maxId: 0, minId: 0, hash: 0))
        _ = try await cached.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        _ = try await cached.invoke(Api.functions.messages.GetChats(id: [4001]))
        _ = try await cached.invoke(Api.functions.updates.GetDifference(pts: 1, date: 1, qts: 0))
        _ = try await cached.invoke(Api.functions.auth.SignIn(phoneNumber: "15550001", phoneCodeHash: "h", phoneCode: "12345"))
        await fixture.cache.flush()

        #expect(try fixture.rows() == [
            "alice channel 2001 \(0x2001) testnews",
            "alice channel 2002 \(0x2002) -",
            "alice chat 4001 - -",
            "alice user 1001 \(0x0A11CE) alice",
            "alice user 1002 \(0x0B0B) bob",
            "alice user 1003 \(0x0CA201) carol",
            "alice user 1005 \(0x0B07) test_bot",
            "alice user 1006 \(0x1006) -",
        ])
        #expect(try await fixture.store.peer(username: "@Carol", account: "alice")?.accessHash == 0x0CA201)
        #expect(try await fixture.store.peer(kind: .channel, id: 2001, account: "alice")?.seenAt == fixture.clock.now())
        #expect(fixture.logs.messages.isEmpty, "\(fixture.logs.messages)")
    }

    @Test func aMinConstructorNeverReplacesAKnownHashOrUsername() async throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        let full = Api.Updates.updates(.init(updates: [], users: [Self.user(1002, hash: 0x0B0B, username: "bob")],
                                             chats: [Self.channel(2001, hash: 0x2001, username: "testnews")], date: 1, seq: 0))
        // Min constructors: a min user may even carry a hash that is only valid in its message's
        // context; neither it nor the missing username may replace what is known.
        let min = Api.Updates.updatesCombined(.init(updates: [], users: [Self.user(1002, hash: 0x7777, min: true)],
                                                    chats: [Self.channel(2001, hash: nil, min: true)], date: 2, seqStart: 0, seq: 0))
        fixture.invoker.script("messages.sendMessage", .success(full), .success(min))
        let send = Api.functions.messages.SendMessage(peer: .inputPeerSelf(.init()), message: "hi", randomId: 1)
        _ = try await fixture.cached.invoke(send)
        await fixture.cache.flush()
        fixture.clock.advance(by: 60)
        _ = try await fixture.cached.invoke(send)
        await fixture.cache.flush()
        #expect(try fixture.rows() == ["alice channel 2001 \(0x2001) testnews", "alice user 1002 \(0x0B0B) bob"])
        // It does not show that bob still has his username: the time the workers trust it from stays.
        #expect(try await fixture.store.peer(kind: .user, id: 1002, account: "alice")?.seenAt == fixture.clock.now() + -60)

        // Queued together before one write, a full and a min record of one peer merge the same way.
        fixture.cache.remember(users: [Self.user(1010, hash: 0x1010, username: "dave")], chats: [])
        fixture.cache.remember(users: [Self.user(1010, hash: nil, min: true)], chats: [])
        await fixture.cache.flush()
        #expect(try await fixture.store.peer(kind: .user, id: 1010, account: "alice")?.accessHash == 0x1010)
        #expect(try await fixture.store.peer(username: "dave", account: "alice")?.id == 1010)
    }

    /// Most answers mention the same peers (every `me` job brings the account itself): a peer the
    /// cache wrote unchanged a moment ago is not written again until `refreshInterval` has passed;
    /// a change of hash or username is written at once.
    @Test func anUnchangedPeerIsWrittenAgainOnlyAfterTheRefreshInterval() async throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        let start = fixture.clock.now()
        func seen() async throws -> UnixTime? { try await fixture.store.peer(kind: .user, id: 1002, account: "alice")?.seenAt }
        func mention(_ username: String) async {
            fixture.cache.remember(users: [Self.user(1002, hash: 0x0B0B, username: username)], chats: [])
            await fixture.cache.flush()
        }
        await mention("bob")
        #expect(try await seen() == start)

        fixture.clock.advance(by: 10)
        await mention("bob")
        #expect(try await seen() == start, "unchanged and refreshed 10 s ago: not written")

        await mention("bobby")
        #expect(try await seen() == start + 10, "a new username is written at once")
        #expect(try await fixture.store.peer(username: "bobby", account: "alice")?.id == 1002)

        fixture.clock.advance(by: PeerCache.refreshInterval)
        await mention("bobby")
        #expect(try await seen() == start + 10 + PeerCache.refreshInterval, "refreshed once the interval has passed")
    }

    @Test func answersWithoutPeersWriteNothingAndFailuresPassThrough() async throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        fixture.invoker.script("users.getUsers", .failure(rpc(400, "USER_ID_INVALID")))
        _ = try await fixture.cached.invoke(Api.functions.updates.GetState())
        await #expect(throws: TelegramError.self) {
            _ = try await fixture.cached.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        }
        await fixture.cache.flush()
        #expect(try fixture.rows().isEmpty)
        #expect(try await fixture.store.accounts().isEmpty, "no write transaction at all")
    }

    @Test func aFencedWriteIsLoggedAndTheCallerStillGetsItsAnswer() async throws {
        let fixture = try Fixture(fence: LeaseToken(1))
        defer { fixture.finish() }
        let alive: @Sendable (LeaseHolder) -> Bool = { _ in false }
        let now = fixture.clock.now()
        _ = try await fixture.store.acquireLease(account: "alice", holder: LeaseHolder(host: "a", pid: 1), now: now, ttl: 30, holderIsDead: alive)
        // Another process takes over after the lease expired: token 2; this cache still writes with 1.
        _ = try await fixture.store.acquireLease(account: "alice", holder: LeaseHolder(host: "b", pid: 2), now: now + 60, ttl: 30, holderIsDead: alive)
        fixture.invoker.script("contacts.resolveUsername", .success(Api.contacts.ResolvedPeer.resolvedPeer(.init(
            peer: .peerUser(.init(userId: 1002)), chats: [], users: [Self.user(1002, hash: 0x0B0B, username: "bob")]))))
        let answer = try await fixture.cached.invoke(Api.functions.contacts.ResolveUsername(username: "bob"))
        #expect(answer.carriedUsers.count == 1)
        await fixture.cache.flush()
        #expect(try fixture.rows().isEmpty)
        let logged = fixture.logs.messages.filter { $0.hasPrefix("error peer cache") }
        #expect(logged.count == 1 && logged.first?.contains("code=store.fenced") == true && logged.first?.contains("peers=1") == true, "\(fixture.logs.messages)")
    }

    @Test func anUpdatesStreamConsumerFeedsTheCacheEventByEvent() async throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        let users = [Self.user(1002, hash: 0x0B0B, username: "bob"), Self.user(1003, hash: 0x0CA201)]
        let chats = [Self.channel(2001, hash: 0x2001, username: "testnews")]
        // Events of one updates batch share its users and chats: queued twice, written once each.
        for _ in 0..<2 {
            fixture.cache.remember(UpdateEvent(update: .updateConfig(.init()), users: users, chats: chats, origin: .live))
        }
        await fixture.cache.flush()
        #expect(try fixture.rows() == [
            "alice channel 2001 \(0x2001) testnews", "alice user 1002 \(0x0B0B) bob", "alice user 1003 \(0x0CA201) -",
        ])
    }

    @Test func theStandardStackFeedsItsCacheInnermost() async throws {
        let fixture = try Fixture()
        defer { fixture.finish() }
        let stack = SessionStack(account: "alice", client: fixture.invoker, ledgerStore: InMemoryFloodLedgerStore(), statuses: InMemoryAccountStatusStore(),
                                 peerCache: fixture.cache, clock: TestClock(), random: SeededRandomSource(seed: 3), logger: quietLogger)
        fixture.invoker.script("contacts.getContacts", .success(Api.contacts.Contacts.contacts(.init(
            contacts: [], savedCount: 0, users: [Self.user(1003, hash: 0x0CA201, username: "carol")]))))
        _ = try await stack.invoker.invoke(Api.functions.contacts.GetContacts(hash: 0))
        await fixture.cache.flush()
        #expect(stack.peerCache === fixture.cache)
        #expect(try fixture.rows() == ["alice user 1003 \(0x0CA201) carol"])
    }

    @Test func recordsSkipEmptyConstructorsAndUseTheFirstActiveCollectibleUsername() {
        let seen = UnixTime(seconds: 5)
        let names: [Api.Username] = [.username(.init(active: false, username: "old")), .username(.init(editable: true, active: true, username: "Fresh"))]
        let records = PeerRecord.records(
            users: [.userEmpty(.init(id: 1)), Self.user(2, hash: 22, usernames: names)],
            chats: [.chatEmpty(.init(id: 3)), .chatForbidden(.init(id: 4, title: "gone")),
                    .channelForbidden(.init(id: 5, accessHash: 55, title: "banned")), Self.channel(6, hash: 66, min: true)],
            seenAt: seen)
        #expect(records == [
            PeerRecord(kind: .user, id: 2, accessHash: 22, username: "fresh", seenAt: seen),
            PeerRecord(kind: .chat, id: 4, accessHash: nil, seenAt: seen),
            PeerRecord(kind: .channel, id: 5, accessHash: 55, seenAt: seen),
            PeerRecord(kind: .channel, id: 6, accessHash: nil, seenAt: seen),
        ])
    }

    /// End to end: a real client on the store's session, behind the standard stack with the cache,
    /// against the in-process test DC over loopback. The login stores the account's own user; a
    /// resolved username is then found in the store with the DC's access hash.
    @Test func aResolvedUsernameIsFoundInTheStoreWithTheDCsAccessHash() async throws {
        let cluster = try await SessionManagerEndToEndTests.Cluster.start()
        let dir = TemporaryDirectory("peers-e2e")
        defer { dir.remove() }
        let clock = TestClock()
        let store = try SQLiteSessionStore.open(directory: dir.path, options: SQLiteStoreOptions(clock: clock, logger: quietLogger))
        let lease = try await store.acquireLease(account: "alice", holder: .current(), now: clock.now(), ttl: 30, holderIsDead: LeaseHolder.isDeadOnThisHost)
        let storage = AccountSessionStorage(store: store, account: "alice", lease: lease)
        let client = cluster.client(storage: storage)
        let cache = PeerCache(account: "alice", store: store, fence: lease.token, clock: clock, logger: quietLogger)
        let stack = SessionStack(account: "alice", client: client, ledgerStore: store, statuses: store, storage: storage, peerCache: cache,
                                 clock: clock, random: SeededRandomSource(seed: 1), logger: quietLogger)
        let phone = SessionManagerEndToEndTests.alice.phone
        let dc = cluster.dc
        _ = try await TelegramLogin(invoker: stack.invoker, apiID: 1, apiHash: "test-api-hash")
            .logIn(phoneNumber: phone, code: { _ in dc.loginCode(phone: phone) ?? "" }, password: { _ in "" })

        let resolved = try await stack.invoker.invoke(Api.functions.contacts.ResolveUsername(username: "Carol"))
        _ = try await stack.invoker.invoke(Api.functions.contacts.ResolveUsername(username: "testnews"))
        await cache.flush()

        let carol = try #require(try await store.peer(username: "carol", account: "alice"))
        #expect(carol.kind == .user && carol.id == SessionManagerEndToEndTests.carol.id && carol.accessHash == SessionManagerEndToEndTests.carol.accessHash)
        guard case .user(let answered) = resolved.carriedUsers.first else { throw PeerCacheTestFailure.noUserInAnswer }
        #expect(carol.accessHash == answered.accessHash, "the hash the DC sent")
        let news = try #require(try await store.peer(username: "@TestNews", account: "alice"))
        #expect(news.kind == .channel && news.id == 2001 && news.accessHash == 0x2001)
        let me = try #require(try await store.peer(kind: .user, id: SessionManagerEndToEndTests.alice.id, account: "alice"))
        #expect(me.username == "alice" && me.accessHash == 0x0A11CE, "the login's own user")
        // The stored hash addresses the peer: a call that needs it succeeds without resolving again.
        let full = try await stack.invoker.invoke(Api.functions.users.GetFullUser(id: .inputUser(.init(userId: carol.id, accessHash: carol.accessHash ?? 0))))
        #expect(full.carriedUsers.count == 1)

        await client.close()
        try store.close()
        try await cluster.dc.shutdown()
    }
}

enum PeerCacheTestFailure: Error {
    case noUserInAnswer
}
