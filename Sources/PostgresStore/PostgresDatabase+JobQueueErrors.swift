import PostgresNIO
import Workers

/// The workers' tables (queue, message archive) fail with `JobQueueError`, worded by
/// `PostgresDatabase.describe` (SQLSTATE, the server's message) rather than postgres-nio's
/// deliberately generic text; a commit sent without an answer is in doubt, not failed.
extension PostgresDatabase {
    /// `transaction`, its failures as `JobQueueError` (`subject` names what failed, for a reader of a job's error).
    @discardableResult
    func jobsTransaction<T: Sendable>(_ subject: String? = nil, _ body: @escaping @Sendable (PostgresConnection) async throws -> T)
        async throws(JobQueueError) -> T
    {
        do { return try await transaction(body) } catch { throw Self.jobQueueError(error, subject) }
    }

    /// `read`, its failures as `JobQueueError`.
    func jobsRead<T: Sendable>(_ subject: String? = nil, _ body: @escaping @Sendable (PostgresConnection) async throws -> T)
        async throws(JobQueueError) -> T
    {
        do { return try await read(body) } catch { throw Self.jobQueueError(error, subject) }
    }

    private static func jobQueueError(_ error: any Error, _ subject: String?) -> JobQueueError {
        let prefix = subject.map { "\($0): " } ?? ""
        switch error {
        case let error as JobQueueError: return error
        case let error as PostgresOutcomeUnknown: return .storageInDoubt(prefix + error.description)
        default: return .storage(prefix + describe(error))
        }
    }
}
