import ArgumentParser
import Foundation
import Logging
import MTProto
import MTProtoClient
import OperatorHTTP
import PostgresStore
import SessionManager

/// Options every store command shares: where the store is, its key, and the clock.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("store"), help: ArgumentHelp(
        "The store directory (sessions.sqlite, backups/, jobs.sqlite), or a PostgreSQL URL (postgres://USER@HOST:PORT/DB).",
        discussion: "Default: $TGSM_STORE, else \"store\" in the config file, else $TGSM_HOME, else $XDG_DATA_HOME/tgsm, else "
            + "~/.local/share/tgsm. With a postgres:// URL the sessions, leases, flood ledger and job queue of every process and host "
            + "live in that database (the password is best given in $PGPASSWORD).", valueName: "dir|url"))
    var store: String?

    @Option(name: .customLong("config"), help: ArgumentHelp(
        "The config file (default: $TGSM_CONFIG, else STORE/config.json, else the default store directory's config.json).",
        valueName: "path"))
    var config: String?

    @Option(name: .customLong("key-file"), help: ArgumentHelp(
        "The key file of an encrypted store, SQLite or PostgreSQL (32 bytes or 64 hex digits; default $TGSM_KEY_FILE).", valueName: "path"))
    var keyFile: String?

    @Flag(name: .customLong("verbose"), help: "Log the store's notices (recovery, backups) to stderr.")
    var verbose = false

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// Where the store is: a SQLite directory (absolute) or a PostgreSQL URL.
    enum StoreLocation: Equatable {
        case directory(String)
        case postgres(String)
    }

    /// The store named by `--store`, else $TGSM_STORE (relative paths from the working directory).
    private var givenStore: StoreLocation? {
        let given = (store?.isEmpty == false ? store : nil) ?? environment["TGSM_STORE"].flatMap { $0.isEmpty ? nil : $0 }
        return given.map { Self.location($0, relativeTo: FileManager.default.currentDirectoryPath) }
    }

    /// The store, by precedence: `--store`, $TGSM_STORE, the config file's `"store"` (a path in it is
    /// relative to the file's directory), then the default directory. The config file consulted is
    /// the one `configFile()` finds, so one file in the default place can move every command to a
    /// PostgreSQL database or another directory.
    func storeLocation() throws(CLIFailure) -> StoreLocation {
        if let givenStore { return try Self.checkedDirectory(givenStore) }
        let file = try configFile()
        if let named = file.value?.store, !named.isEmpty { return try Self.checkedDirectory(Self.location(named, relativeTo: file.directory)) }
        return .directory(try defaultDirectory())
    }

    /// A store is named by its directory. A path to the store's file (`…/sessions.sqlite`) read as
    /// "no store here", and a command that creates one made a directory of that name, holding a
    /// second, empty store.
    private static func checkedDirectory(_ location: StoreLocation) throws(CLIFailure) -> StoreLocation {
        guard case .directory(let path) = location else { return location }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        let named = (path as NSString).lastPathComponent
        guard exists ? !isDirectory.boolValue : named.hasSuffix(".sqlite") else { return location }
        let folder = (path as NSString).deletingLastPathComponent
        throw CLIFailure(.usage, "the store is named by its directory, and \(path) \(exists ? "is a file" : "names a file")"
            + " (--store, $TGSM_STORE or the config file's \"store\"): name the directory that holds sessions.sqlite"
            + (named.hasSuffix(".sqlite") ? ", here \(folder.isEmpty ? "." : folder)" : ""))
    }

    /// The PostgreSQL URL when the store is a PostgreSQL database, nil for a SQLite directory. A
    /// config file that cannot be read counts as none here: `storeDirectory()` then reports it.
    var postgresURL: String? {
        guard case .postgres(let url) = try? storeLocation() else { return nil }
        return url
    }

    /// The store directory, resolved as documented. A PostgreSQL store has none: a command that
    /// works on the SQLite files only refuses it here, saying so.
    func storeDirectory() throws(CLIFailure) -> String {
        switch try storeLocation() {
        case .directory(let path): return path
        case .postgres:
            throw CLIFailure(.usage, "this command works on a SQLite store directory, and the store is a PostgreSQL database "
                + "(--store, $TGSM_STORE or the config file's \"store\"); pass --store DIR")
        }
    }

    /// The directory used when nothing names a store: $TGSM_HOME, $XDG_DATA_HOME/tgsm, ~/.local/share/tgsm.
    func defaultDirectory() throws(CLIFailure) -> String {
        if let home = environment["TGSM_HOME"], !home.isEmpty { return Self.absolute(home) }
        if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return Self.absolute(data) + "/tgsm" }
        guard let home = environment["HOME"], !home.isEmpty else {
            throw CLIFailure(.usage, "no store directory: --store is not given and neither TGSM_HOME nor HOME is set; pass --store DIR")
        }
        return home + "/.local/share/tgsm"
    }

    /// The config file: `--config` or $TGSM_CONFIG (which must exist), else `config.json` in the
    /// directory `--store`/$TGSM_STORE names (none for a database), else `config.json` in the default
    /// directory. A file found by default may be absent (`value` nil).
    func configFile() throws(CLIFailure) -> ConfigFile.Loaded {
        if let explicit = (config?.isEmpty == false ? config : nil) ?? environment["TGSM_CONFIG"].flatMap({ $0.isEmpty ? nil : $0 }) {
            return try ConfigFile.load(path: Self.absolute(explicit), mustExist: true)
        }
        switch givenStore {
        case .postgres:
            // A database has no folder to hold one: only a file named with --config or TGSM_CONFIG.
            return ConfigFile.Loaded(path: "a config file named with --config or TGSM_CONFIG",
                                     directory: FileManager.default.currentDirectoryPath, value: nil)
        case .directory(let directory):
            return try ConfigFile.load(path: directory + "/config.json", mustExist: false)
        case nil:
            return try ConfigFile.load(path: try defaultDirectory() + "/config.json", mustExist: false)
        }
    }

    /// Where the snapshots of a PostgreSQL store go on this host: `--backup-dir`, else the config
    /// file's `"backupDirectory"`, else `postgres-backups` in the default directory. Never a SQLite
    /// store's `backups/` (its recovery would take a snapshot for one of its own backups).
    func snapshotDirectory(_ flag: String?) throws(CLIFailure) -> String {
        if let flag, !flag.isEmpty { return Self.absolute(flag) }
        let file = try configFile()
        if let named = file.value?.backupDirectory, !named.isEmpty, case .directory(let path) = Self.location(named, relativeTo: file.directory) {
            return path
        }
        return try defaultDirectory() + "/postgres-backups"
    }

    static func location(_ text: String, relativeTo directory: String) -> StoreLocation {
        if PostgresURL.isPostgresURL(text) { return .postgres(text) }
        if text.hasPrefix("/") || text == "~" || text.hasPrefix("~/") { return .directory(absolute(text)) }
        return .directory((directory as NSString).appendingPathComponent(text))
    }

    /// The job queue's file, beside the store's (docs/WORKERS.md: a database of its own, so a
    /// restore of the store never rolls the queue back).
    func jobsPath() throws(CLIFailure) -> String { try storeDirectory() + "/jobs.sqlite" }

    /// Now, or TGSM_NOW (Unix seconds) for scripts and tests that need a fixed clock.
    func now() -> UnixTime { clock().now() }

    func clock() -> any TelegramClock {
        // Only a plausible Unix time: NaN, infinities or 1e400 would trap where times become integers.
        if let text = environment["TGSM_NOW"], let seconds = Double(text), seconds.isFinite, abs(seconds) < 1e11 {
            return FixedClock(time: UnixTime(seconds: seconds))
        }
        return WallClock()
    }

    /// The store's logger: always stderr (stdout carries the command's data and JSON).
    func storeLogger() -> Logger {
        var logger = Logger(label: "tgsm.store", factory: { PhoneMaskingLogHandler(StreamLogHandler.standardError(label: $0)) })
        logger.logLevel = verbose ? .info : .critical
        return logger
    }

    func storeOptions() -> SQLiteStoreOptions {
        SQLiteStoreOptions(encryption: storeEncryption(), clock: clock(), logger: storeLogger())
    }

    /// The store's key (`--key-file`, else TGSM_KEY_FILE), for either engine.
    func storeEncryption() -> StoreEncryption {
        (keyFile ?? environment["TGSM_KEY_FILE"]).map { .keyFile(path: Self.absolute($0)) } ?? .none
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
