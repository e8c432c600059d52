import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a TCP connect failed, in the system's words ("Connection refused", "the name does not
/// resolve"), not NIO's value dump: these reach operators' logs, `/health` and error messages
/// (a DC or proxy connection, a webhook receiver, a PostgreSQL server).
public enum ConnectFailure {
    public static func describe(_ error: any Error) -> String {
        if let failure = error as? NIOConnectionError {
            if let resolving = failure.dnsAError ?? failure.dnsAAAAError { return "the name does not resolve (\(resolving))" }
            let reasons = failure.connectionErrors.map { attempt in
                (attempt.error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(attempt.error)"
            }
            guard let first = reasons.first else { return "no address of it could be reached" }
            return Set(reasons).count == 1 ? first : reasons.joined(separator: "; ")
        }
        if let timeout = error as? ChannelError, case .connectTimeout = timeout { return "no answer to the connection attempt in time" }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }
}
