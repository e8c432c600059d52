// A separate OS process for the session store's multi-process tests (SessionManagerTests): it
// writes in a loop until it is killed, or takes an account's lease and runs the account against a
// test DC, printing one line per step for the parent test to read.
//
//   SessionStoreProbe write-loop STORE_DIR
//   SessionStoreProbe hold STORE_DIR CLUSTER_JSON     (takes the lease, logs in, then heartbeats until killed)
//   SessionStoreProbe try STORE_DIR CLUSTER_JSON      (exit 0: ran the account; 3: lease held; 4: AUTH_KEY_DUPLICATED)
// STORE_DIR may be a postgres:// URL: the same steps on the PostgreSQL store.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MTProto
import MTProtoClient
import MTProtoCrypto
import PostgresStore
import SessionManager
import TLSchema
import TestDC

/// One line to the parent, unbuffered: the parent reads it while this process runs (or after a SIGKILL).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

struct ClusterFile: Codable {
    struct Entry: Codable { var id: Int; var host: String; var port: Int }
    var dcs: [Entry]
    var publicKeyPEMs: [String]
}

let account: AccountID = "probe"
let phone = "15550001"
let quiet = Logger(label: "probe") { _ in SwiftLogNoOpLogHandler() }

func fail(_ message: String, code: Int32 = 1) -> Never {
    say("error \(message)")
    exit(code)
}

func key(_ seed: UInt8) -> AuthKey {
    guard let key = try? AuthKey((0..<256).map { UInt8(truncatingIfNeeded: Int($0) &* 31 &+ Int(seed)) }) else { fail("key") }
    return key
}

func writeLoop(store: any SessionStore) async throws {
    let lease = try await store.acquireLease(account: account, holder: .current(), now: SystemClock().now(), ttl: 60,
                                             holderIsDead: LeaseHolder.isDeadOnThisHost)
    var i: Int64 = 0
    while true {
        i += 1
        // Every field of one iteration carries `i`: after a kill, a mixture of iterations would show.
        let dc3Key = key(UInt8(truncatingIfNeeded: i / 25))
        let state = SessionState(homeDC: 2, dcs: [
            1: DCSessionState(authKey: key(1), serverSalt: i, timeOffset: Double(i), isAuthorized: false),
            2: DCSessionState(authKey: key(2), serverSalt: i, timeOffset: Double(i), isAuthorized: true),
            3: DCSessionState(authKey: dc3Key, serverSalt: i, timeOffset: Double(i), isAuthorized: false),
        ], userID: i)
        try await store.saveSession(state, account: account, fence: lease.token)
        say("committed \(i)")
    }
}

func loadCluster(_ path: String) -> (TelegramClientConfiguration, [RSAPublicKey]) {
    guard let data = FileManager.default.contents(atPath: path), let cluster = try? JSONDecoder().decode(ClusterFile.self, from: data) else {
        fail("cannot read the cluster file \(path)")
    }
    let keys = cluster.publicKeyPEMs.compactMap { try? RSAPublicKey(pem: $0) }
    var addresses: [Int: [MTProtoClient.DCAddress]] = [:]
    for dc in cluster.dcs { addresses[dc.id] = [MTProtoClient.DCAddress(host: dc.host, port: dc.port)] }
    let configuration = TelegramClientConfiguration(
        apiID: 1, apiHash: "probe", serverKeys: keys, dcTable: MTProtoClient.DCTable(addresses), initialDC: 1,
        defaultTimeout: 10, handshakeTimeout: 10, reconnect: ReconnectPolicy(initialDelay: 0.05, maximumDelay: 0.2, maximumAttempts: 4))
    return (configuration, keys)
}

/// Runs the account: connect with the stored key, log in if the store has no authorization, call.
func runAccount(store: any SessionStore, lease: Lease, clusterPath: String) async throws -> (TelegramClient, Int64) {
    let (base, _) = loadCluster(clusterPath)
    let identity = try await store.chooseIdentity(.thisHost(appVersion: "probe 1", at: SystemClock().now()), account: account)
    let client = TelegramClient(configuration: base.with(identity: identity),
                                storage: AccountSessionStorage(store: store, account: account, lease: lease), logger: quiet)
    try await client.connect()
    if !(await client.isAuthorized) {
        _ = try await TelegramLogin(client: client).logIn(
            phoneNumber: phone, code: { _ in DCState.loginCode(for: phone) }, password: { _ in "" })
    }
    let users = try await client.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
    guard case .user(let me)? = users.first else { fail("users.getUsers answered no user") }
    return (client, me.id)
}

func takeLease(store: any SessionStore) async -> Lease {
    do {
        return try await store.acquireLease(account: account, holder: .current(), now: SystemClock().now(), ttl: 30,
                                            holderIsDead: LeaseHolder.isDeadOnThisHost)
    } catch {
        guard let error = error as? SessionStoreError, case .leaseHeld(let held) = error else { fail("lease: \(error)") }
        say("held pid=\(held.holder.pid) token=\(held.token) code=\(error.code)")
        exit(3)
    }
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else { fail("usage: SessionStoreProbe write-loop|hold|try STORE_DIR [CLUSTER_JSON]", code: 2) }

func openStore(_ location: String) async -> any SessionStore {
    do {
        if PostgresURL.isPostgresURL(location) { return try await PostgresSessionStore.connect(url: location, logger: quiet) }
        return try SQLiteSessionStore.open(directory: location, options: SQLiteStoreOptions(logger: quiet))
    } catch {
        fail("open: \(error)")
    }
}

func run(_ arguments: [String]) async throws {
    let store = await openStore(arguments[2])
    switch arguments[1] {
    case "write-loop":
        try await writeLoop(store: store)
    case "hold", "try":
        guard arguments.count >= 4 else { fail("the cluster file is missing", code: 2) }
        let lease = await takeLease(store: store)
        let (client, userID) = try await runAccount(store: store, lease: lease, clusterPath: arguments[3])
        let exchanges = await client.statistics().values.map(\.keyExchanges).reduce(0, +)
        if arguments[1] == "try" {
            say("ok token=\(lease.token) user=\(userID) keyExchanges=\(exchanges)")
            await client.close()
            try await store.releaseLease(lease)
            exit(0)
        }
        say("holding token=\(lease.token) user=\(userID) keyExchanges=\(exchanges)")
        var current = lease
        while true {
            try await Task.sleep(for: .seconds(1))
            current = try await store.renewLease(current, now: SystemClock().now(), ttl: 30)
            _ = try await client.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        }
    default:
        fail("unknown mode \(arguments[1])", code: 2)
    }
}

do {
    try await run(arguments)
} catch {
    if "\(error)".contains("AUTH_KEY_DUPLICATED") {
        say("duplicated")
        exit(4)
    }
    fail("\(error)")
}
