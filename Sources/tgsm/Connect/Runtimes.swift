import Foundation
import Logging
import MTProto
import MTProtoClient
import OperatorHTTP
import SessionManager
import Synchronization

/// Building account runtimes for a command: the connection, the store, logs on stderr.
enum Runtimes {
    /// Logs go to stderr (stdout carries the command's output); once per process.
    static func bootstrapLogging(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = PhoneMaskingLogHandler(StreamLogHandler.standardError(label: label))
            handler.logLevel = level
            return handler
        }
    }

    static func logger(_ label: String, level: Logger.Level) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }

    static func factory(store: any SessionStore, connection: ConnectionOptions.Resolved, configuration: AccountRuntimeConfiguration,
                        clock: any TelegramClock, logger: Logger) -> @Sendable (AccountID) -> AccountRuntime {
        let client = connection.clientConfiguration
        return { account in
            AccountRuntime(account: account, store: store, client: client, configuration: configuration,
                           environment: AccountRuntimeEnvironment(clock: clock, logger: logger))
        }
    }

    /// The exit code and a person's message for an error the runtime raised.
    static func failure(_ error: SessionManagerError, account: AccountID) -> CLIFailure {
        let exit: CLIExit = switch error.reason {
        case .leaseHeld: .leaseHeld
        case .accountUnusable, .authorizationLost, .authKeyRejected, .passwordNeeded: .accountMarked
        case .floodWait, .sendCodeGuard, .rateGate, .breakerOpen, .serverWait: .rateLimited
        default: .failure
        }
        return CLIFailure(exit, describe(error, account: account))
    }

    static func describe(_ error: SessionManagerError, account: AccountID) -> String {
        "\(account): \(error.summary) [\(error.code)]" + error.recoverySteps.enumerated().map { "\n  \($0.offset + 1). \($0.element)" }.joined()
    }
}

/// Now, moving: TGSM_NOW (when set) plus the time since start, so scripts and tests can fix the
/// starting instant of commands that also wait.
struct AnchoredClock: TelegramClock {
    let start: UnixTime
    let anchor = ContinuousClock.now

    init(start: UnixTime) { self.start = start }

    func now() -> UnixTime { UnixTime(seconds: start.seconds + Self.seconds(anchor.duration(to: .now))) }

    func sleep(for seconds: Double) async throws { try await Task.sleep(for: .seconds(max(0, seconds))) }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

extension GlobalOptions {
    /// A moving clock for commands that wait or connect: the system clock, or TGSM_NOW moving on.
    func movingClock() -> any TelegramClock {
        if let text = environment["TGSM_NOW"], let seconds = Double(text) { return AnchoredClock(start: UnixTime(seconds: seconds)) }
        return WallClock()
    }
}
