import Foundation
import Logging
import PostgresStore
import Testing

/// The engines the store contract tests run on: SQLite always, PostgreSQL when
/// TGSM_TEST_POSTGRES_URL names a server (`scripts/with-postgres` starts one; `scripts/test` does).
public enum StoreEngine: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    public var testDescription: String { rawValue }
}

/// A database of its own on the test server for one test: created empty, dropped at the end.
public struct ScratchPostgresDatabase: Sendable {
    public let name: String
    /// The scratch database's URL.
    public let url: String
    let adminURL: String

    /// The server's URL, or a cancelled (skipped) test case with a loud message; under
    /// `scripts/test` (TGSM_REQUIRE_POSTGRES=1) a missing server is a failure instead.
    public static func serverURL() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let url = environment["TGSM_TEST_POSTGRES_URL"], !url.isEmpty { return url }
        let message = "PostgreSQL run SKIPPED: TGSM_TEST_POSTGRES_URL is not set. Run the suites through scripts/test, or "
            + "`scripts/with-postgres swift test ...`, which start a throwaway PostgreSQL server and set it."
        if environment["TGSM_REQUIRE_POSTGRES"] == "1" {
            Issue.record(Comment(rawValue: message + " (TGSM_REQUIRE_POSTGRES=1: this run needs it)"))
            throw ScratchError.required
        }
        FileHandle.standardError.write(Data(("\n*** " + message + " ***\n").utf8))
        try Test.cancel(Comment(rawValue: message))
    }

    public static func create() async throws -> ScratchPostgresDatabase {
        let adminURL = try serverURL()
        let name = "tgsm_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let admin = try await PostgresDatabase.connect(url: adminURL, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        do { try await admin.execute(unsafeSQL: "CREATE DATABASE \(name)") } catch {
            await admin.close()
            throw error
        }
        await admin.close()
        guard var components = URLComponents(string: adminURL) else { throw ScratchError.badURL }
        components.path = "/" + name
        guard let url = components.string else { throw ScratchError.badURL }
        return ScratchPostgresDatabase(name: name, url: url, adminURL: adminURL)
    }

    public func drop() async {
        guard let admin = try? await PostgresDatabase.connect(url: adminURL, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }) else { return }
        try? await admin.execute(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        await admin.close()
    }

    public enum ScratchError: Error { case required, badURL }
}
