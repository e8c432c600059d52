import ArgumentParser
import Foundation
import Logging
import MTProto
import MTProtoClient
import PostgresStore
import SessionManager

/// Options every store command shares: where the store is, its key, and the clock.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("store"), help: ArgumentHelp(
        "The store directory (sessions.sqlite, backups/, jobs.sqlite), or a PostgreSQL URL (postgres://USER@HOST:PORT/DB).",
        discussion: "Default: $TGSM_STORE, else $TGSM_HOME, else $XDG_DATA_HOME/tgsm, else ~/.local/share/tgsm. "
            + "With a postgres:// URL the sessions, leases, flood ledger and job queue of every process and host live in that "
            + "database (the password is best given in $PGPASSWORD).", valueName: "dir|url"))
    var store: String?

    @Option(name: .customLong("key-file"), help: ArgumentHelp(
        "The key file of an encrypted store (32 bytes or 64 hex digits; default $TGSM_KEY_FILE).", valueName: "path"))
    var keyFile: String?

    @Flag(name: .customLong("verbose"), help: "Log the store's notices (recovery, backups) to stderr.")
    var verbose = false

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The PostgreSQL URL when the store is a PostgreSQL database (`--store postgres://...` or
    /// $TGSM_STORE), nil for a SQLite directory.
    var postgresURL: String? {
        let given = (store?.isEmpty == false ? store : nil) ?? environment["TGSM_STORE"]
        guard let given, PostgresURL.isPostgresURL(given) else { return nil }
        return given
    }

    /// The store directory, resolved as documented. A PostgreSQL store has none: commands that work
    /// on the SQLite files (backups, restore, check) refuse it here, saying so.
    func storeDirectory() throws(CLIFailure) -> String {
        if postgresURL != nil {
            throw CLIFailure(.usage, "this command works on a SQLite store directory, and --store names a PostgreSQL database; "
                + "back up and inspect PostgreSQL with its own tools (pg_dump, psql), or pass --store DIR")
        }
        if let store, !store.isEmpty { return Self.absolute(store) }
        if let given = environment["TGSM_STORE"], !given.isEmpty { return Self.absolute(given) }
        if let home = environment["TGSM_HOME"], !home.isEmpty { return Self.absolute(home) }
        if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return Self.absolute(data) + "/tgsm" }
        guard let home = environment["HOME"], !home.isEmpty else {
            throw CLIFailure(.usage, "no store directory: --store is not given and neither TGSM_HOME nor HOME is set; pass --store DIR")
        }
        return home + "/.local/share/tgsm"
    }

    /// The job queue's file, beside the store's (docs/WORKERS.md: a database of its own, so a
    /// restore of the store never rolls the queue back).
    func jobsPath() throws(CLIFailure) -> String { try storeDirectory() + "/jobs.sqlite" }

    /// Now, or TGSM_NOW (Unix seconds) for scripts and tests that need a fixed clock.
    func now() -> UnixTime { clock().now() }

    func clock() -> any TelegramClock {
        if let text = environment["TGSM_NOW"], let seconds = Double(text) { return FixedClock(time: UnixTime(seconds: seconds)) }
        return SystemClock()
    }

    /// The store's logger: always stderr (stdout carries the command's data and JSON).
    func storeLogger() -> Logger {
        var logger = Logger(label: "tgsm.store", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = verbose ? .info : .critical
        return logger
    }

    func storeOptions() -> SQLiteStoreOptions {
        let path = keyFile ?? environment["TGSM_KEY_FILE"]
        let logger = storeLogger()
        return SQLiteStoreOptions(encryption: path.map { .keyFile(path: Self.absolute($0)) } ?? .none, clock: clock(), logger: logger)
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        if path == "~" || path.hasPrefix("~/"), let home = ProcessInfo.processInfo.environment["HOME"] { return home + path.dropFirst() }
        return FileManager.default.currentDirectoryPath + "/" + path
    }
}

/// A clock stopped at one instant (TGSM_NOW).
struct FixedClock: TelegramClock {
    var time: UnixTime
    func now() -> UnixTime { time }
    func sleep(for seconds: Double) async throws { try await Task.sleep(for: .seconds(max(0, seconds))) }
}

/// `--json` for commands whose output is data.
struct OutputOptions: ParsableArguments {
    @Flag(name: .customLong("json"), help: "Print the result as JSON (stable keys) instead of a table.")
    var json = false
}
