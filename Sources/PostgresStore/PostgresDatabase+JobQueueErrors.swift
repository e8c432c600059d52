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
        do {
            return try await transaction(body)
        } catch let error as JobQueueError {
            throw error
        } catch let error as PostgresOutcomeUnknown {
            throw .storageInDoubt(Self.prefixed(subject, error.description))
        } catch {
            throw .storage(Self.prefixed(subject, Self.describe(error)))
        }
    }

    /// `read`, its failures as `JobQueueError`.
    func jobsRead<T: Sendable>(_ subject: String? = nil, _ body: @escaping @Sendable (PostgresConnection) async throws -> T)
        async throws(JobQueueError) -> T
    {
        do {
            return try await read(body)
        } catch let error as JobQueueError {
            throw error
        } catch {
            throw .storage(Self.prefixed(subject, Self.describe(error)))
        }
    }

    private static func prefixed(_ subject: String?, _ text: String) -> String {
        subject.map { "\($0): \(text)" } ?? text
    }
}
