import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A webhook receiver on loopback for the alert tests: records every POST (path, headers, body)
/// and answers each with the next scripted status (200 once the script runs out).
public final class WebhookReceiver: Sendable {
    public struct Request: Sendable {
        public var path: String
        /// Names in lower case.
        public var headers: [String: String]
        public var body: Data
    }

    private struct State {
        var requests: [Request] = []
        var statuses: [Int]
        var port: Int?
        var portWaiters: [CheckedContinuation<Int, Never>] = []
    }

    private let state: Mutex<State>
    private let task = Mutex<Task<Void, any Error>?>(nil)

    public init(statuses: [Int] = []) {
        state = Mutex(State(statuses: statuses))
    }

    /// Starts listening on 127.0.0.1 and returns the port.
    public func start() async -> Int {
        let router = Router()
        router.post("**") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let status = self.record(Request(path: request.uri.description, headers: headers, body: Data(buffer: body)))
            return Response(status: HTTPResponse.Status(code: status))
        }
        let app = Application(router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0), serverName: nil),
                              onServerRunning: { channel in self.listening(channel.localAddress?.port ?? 0) },
                              logger: Logger(label: "webhook-receiver") { _ in SwiftLogNoOpLogHandler() })
        task.withLock { $0 = Task { try await app.run() } }
        return await withCheckedContinuation { continuation in
            let port: Int? = state.withLock { state in
                if state.port == nil { state.portWaiters.append(continuation) }
                return state.port
            }
            if let port { continuation.resume(returning: port) }
        }
    }

    public func stop() async {
        let running = task.withLock { $0 }
        running?.cancel()
        _ = await running?.result
    }

    public var requests: [Request] { state.withLock { $0.requests } }

    /// Returns true once `count` requests have arrived, false after `seconds` without them.
    @discardableResult
    public func waitForRequests(_ count: Int, seconds: Double = 30) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while state.withLock({ $0.requests.count }) < count {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    private func listening(_ port: Int) {
        let waiters = state.withLock { state in
            state.port = port
            defer { state.portWaiters = [] }
            return state.portWaiters
        }
        for waiter in waiters { waiter.resume(returning: port) }
    }

    private func record(_ request: Request) -> Int {
        state.withLock { state in
            state.requests.append(request)
            return state.statuses.isEmpty ? 200 : state.statuses.removeFirst()
        }
    }
}
