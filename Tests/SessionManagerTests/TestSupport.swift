#if canImport(Glibc)
import Glibc
#endif
import Logging
import MTProto
import MTProtoClient
import SessionManager
import Synchronization
import TL
import TLSchema

let quietLogger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

/// A clock that only moves when told to. With `autoAdvance`, a sleep moves it forward by the
/// requested time at once and returns (recording the sleep), so code that waits runs through
/// deterministically; without it, a sleep suspends until `advance(by:)` passes its deadline or
/// its task is cancelled.
final class TestClock: TelegramClock {
    private struct Sleeper {
        var id: Int
        var deadline: Double
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Double
        var sleeps: [Double] = []
        var sleepers: [Sleeper] = []
        var nextID = 0
        var sleeperWaiters: [(id: Int, count: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var cancelledWaiters: Set<Int> = []
    }

    private let state: Mutex<State>
    let autoAdvance: Bool

    init(now: Double = 1_800_000_000, autoAdvance: Bool = true) {
        state = Mutex(State(now: now))
        self.autoAdvance = autoAdvance
    }

    func now() -> UnixTime { UnixTime(seconds: state.withLock { $0.now }) }

    /// Every sleep requested so far, in order.
    var sleeps: [Double] { state.withLock { $0.sleeps } }

    func sleep(for seconds: Double) async throws {
        try Task.checkCancellation()
        if autoAdvance {
            state.withLock { state in
                state.sleeps.append(seconds)
                state.now += max(0, seconds)
            }
            return
        }
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                    state.sleeps.append(seconds)
                    state.sleepers.append(Sleeper(id: id, deadline: state.now + seconds, continuation: continuation))
                    let count = state.sleepers.count
                    let ready = state.sleeperWaiters.filter { $0.count <= count }.map(\.continuation)
                    state.sleeperWaiters.removeAll { $0.count <= count }
                    return ready
                }
                for waiter in waiters { waiter.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Suspends until at least `count` sleepers are waiting, or the test is cancelled (its time
    /// limit): a wait that ignored cancellation outlived the limit and held the whole run.
    func untilSleeping(_ count: Int = 1) async {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if state.sleepers.count >= count || state.cancelledWaiters.remove(id) != nil { return true }
                    state.sleeperWaiters.append((id, count, continuation))
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let index = state.sleeperWaiters.firstIndex(where: { $0.id == id }) else {
                    state.cancelledWaiters.insert(id)
                    return nil
                }
                return state.sleeperWaiters.remove(at: index).continuation
            }
            waiter?.resume()
        }
    }

    func advance(by seconds: Double) {
        let due = state.withLock { state -> [Sleeper] in
            state.now += seconds
            let due = state.sleepers.filter { $0.deadline <= state.now }
            state.sleepers.removeAll { $0.deadline <= state.now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }
}

/// A fake `TelegramInvoking`: answers from a script (per method, in order; a default otherwise)
/// and records every call that reached it, i.e. that would have touched the network.
final class ScriptedInvoker: TelegramInvoking {
    enum Outcome: @unchecked Sendable {
        case success(any Sendable)
        case failure(TelegramError)
    }

    struct Call: Sendable {
        var method: String
        var options: InvokeOptions
        var peer: String?
    }

    private struct State {
        var scripts: [String: [Outcome]] = [:]
        var calls: [Call] = []
    }

    private let state = Mutex(State())

    /// Queues outcomes for `method`; when its queue is empty the method's default answer is used.
    func script(_ method: String, _ outcomes: Outcome...) {
        state.withLock { $0.scripts[method, default: []] += outcomes }
    }

    var calls: [Call] { state.withLock { $0.calls } }
    func count(_ method: String) -> Int { calls.filter { $0.method == method }.count }

    func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
        let method = Request.tlName
        let outcome = state.withLock { state -> Outcome? in
            state.calls.append(Call(method: method, options: options, peer: FloodScope.peerKey(of: request)))
            guard var queue = state.scripts[method], !queue.isEmpty else { return nil }
            let first = queue.removeFirst()
            state.scripts[method] = queue
            return first
        }
        switch outcome ?? .success(Self.defaultAnswer(method)) {
        case .failure(let error):
            throw error
        case .success(let value):
            guard let result = value as? Request.Result else { throw .undecodableResult(method: method, reason: "the script's answer has another type") }
            return result
        }
    }

    static func defaultAnswer(_ method: String) -> any Sendable {
        switch method {
        case "updates.getState": state
        case "account.getAccountTTL": Api.AccountDaysTTL.accountDaysTTL(.init(days: 180))
        case "messages.sendMessage", "messages.forwardMessages": Api.Updates.updatesTooLong(.init())
        case "auth.sendCode": sentCode(timeout: nil)
        default: nearest
        }
    }

    static let nearest = Api.NearestDc.nearestDc(.init(country: "NL", thisDc: 1, nearestDc: 1))
    static let state = Api.updates.State.state(.init(pts: 1, qts: 0, date: 1_800_000_000, seq: 1, unreadCount: 0))

    static func sentCode(timeout: Int32?) -> Api.auth.SentCode {
        .sentCode(.init(type: .sentCodeTypeApp(.init(length: 5)), phoneCodeHash: "hash", timeout: timeout))
    }
}

func rpc(_ code: Int32, _ message: String, method: String = "help.getNearestDc") -> TelegramError {
    .rpc(RPCError(code: code, message: message), method: method)
}

/// The error of a call, or nil when it succeeded.
func failure<R: TLFunction>(_ invoker: any TelegramInvoking, _ request: R, options: InvokeOptions = InvokeOptions()) async -> TelegramError? {
    do throws(TelegramError) {
        _ = try await invoker.invoke(request, options: options)
        return nil
    } catch {
        return error
    }
}

let nearest = Api.functions.help.GetNearestDc()

func sendMessage(toUser user: Int64, text: String = "hi") -> Api.functions.messages.SendMessage {
    Api.functions.messages.SendMessage(peer: .inputPeerUser(.init(userId: user, accessHash: user * 7919)), message: text, randomId: user)
}

/// A loopback TCP port that refuses every connection for as long as this lives: a socket bound to
/// it and not listening. A DC shut down is no such port in a parallel run: the system may hand
/// its port to another test's DC at once, and a client meant to find nothing reaches that one.
final class RefusingPort: Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw RefusingPortError(step: "socket", code: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            Glibc.close(descriptor)
            throw RefusingPortError(step: "bind", code: code)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else {
            let code = errno
            Glibc.close(descriptor)
            throw RefusingPortError(step: "getsockname", code: code)
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { Glibc.close(descriptor) }
}

struct RefusingPortError: Error, CustomStringConvertible {
    var step: String
    var code: Int32
    var description: String { "\(step) failed: \(String(cString: strerror(code)))" }
}
