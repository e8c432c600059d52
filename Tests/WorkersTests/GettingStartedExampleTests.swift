import Foundation
import Logging
import MTProto
import MTProtoClient
import ServiceLifecycle
import SessionManager
import TLSchema
import TestDC
import Testing
import Workers

/// The DocC article "Getting started" (Sources/SessionManager/SessionManager.docc/GettingStarted.md)
/// as running code: the same calls in the same order, against the in-process test DC instead of
/// Telegram, so the article cannot drift from the API.
@Suite(.timeLimit(.minutes(2))) struct GettingStartedExampleTests {
    @Test func theArticlesCodeLogsInCallsTheAPIAndRunsAJob() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tgsm-getting-started-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let quiet = Logger(label: "example") { _ in SwiftLogNoOpLogHandler() }
        let dc = try await TestDCServer.start(TestDCConfiguration(basePort: 0, dcCount: 2, controlEnabled: false,
                                                                  stateDirectory: URL(fileURLWithPath: folder + "/dc"), logger: quiet))

        // Open the store and describe the connection.
        let store = try SQLiteSessionStore.open(directory: folder + "/tgsm", options: SQLiteStoreOptions(logger: quiet))
        let client = try ConnectionProfile.testDC(cluster: folder + "/dc")
            .clientConfiguration(apiID: 12345, apiHash: "your api_hash from my.telegram.org")

        // Log in once.
        let login = AccountRuntime(account: "main", store: store, client: client,
                                   configuration: AccountRuntimeConfiguration(keepAlive: nil, stopsOnTerminal: false),
                                   environment: AccountRuntimeEnvironment(logger: quiet))
        if case .valid? = try await login.start(validate: true) {
            Issue.record("a new store cannot hold a valid session")
        } else {
            _ = try await TelegramLogin(invoker: login.invoker, apiID: 12345, apiHash: "…").logIn(
                phoneNumber: "15550001",
                code: { _ in dc.loginCode(phone: "15550001") ?? "" },
                password: { _ in "" })
        }
        await login.stop()

        // Call the API.
        let runtime = AccountRuntime(account: "main", store: store, client: client, environment: AccountRuntimeEnvironment(logger: quiet))
        let verdict = try await runtime.start(validate: true)
        guard case .valid? = verdict else {
            Issue.record("the stored login is not valid: \(String(describing: verdict))")
            return
        }
        let me = try await runtime.invoker.invoke(Api.functions.users.GetFullUser(id: .inputUserSelf(.init())))
        guard case .userFull(let full) = me, case .user(let user)? = full.users.first else {
            Issue.record("unexpected users.getFullUser answer")
            return
        }
        #expect(user.id == 1001)
        await runtime.stop()

        // Run jobs with workers.
        let queue = try SQLiteJobQueue.open(path: folder + "/tgsm/jobs.sqlite")
        _ = try await queue.enqueue(NewJob(kind: "me", account: "main", payload: Data("{}".utf8), idempotencyKey: "me-1"),
                                    now: SystemClock().now())
        let runtimes = AccountRuntimes(logger: quiet) { account in
            AccountRuntime(account: account, store: store, client: client, environment: AccountRuntimeEnvironment(logger: quiet))
        }
        let workers = WorkerPool(queue: queue, handlers: [MeJob()], invokers: runtimes,
                                 accountStatus: store, floodLedger: store,
                                 configuration: WorkerConfiguration(accounts: ["main"]), logger: quiet)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: runtimes), .init(service: workers)],
            gracefulShutdownSignals: [], logger: quiet))
        let running = Task { try await group.run() }
        var done = false
        for _ in 0..<200 where !done {
            try await Task.sleep(for: .milliseconds(50))
            done = try await queue.counts(account: nil)[.completed] == 1
        }
        #expect(done)
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(try await store.currentLease(account: "main") == nil, "the lease was released on the way out")
        try await dc.shutdown()
    }
}
