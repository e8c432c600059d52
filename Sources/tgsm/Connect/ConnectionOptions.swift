import ArgumentParser
import Foundation
import Logging
import MTProtoClient
import SessionManager

/// What every connecting command (`auth`, `run`, `recover`) needs beyond the store: which servers,
/// and the application's api_id/api_hash. Each comes from a flag, else the environment, else the
/// store's config file (`GlobalOptions.configFile()`: `--config`, or `STORE/config.json`); nothing is built in but Telegram's
/// own addresses and keys.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("server"), help: ArgumentHelp(
        "Which servers: production (default), test (Telegram's test DCs), or the dcs.json of a `tgsm testdc` / a compatible server (or its directory).",
        discussion: "Also TGSM_SERVER or \"server\" in the config file.", valueName: "profile"))
    var server: String?

    @Option(name: .customLong("dc"), help: ArgumentHelp(
        "A compatible server's DC address, ID=HOST:PORT (repeat per DC); needs --server-key.", valueName: "id=host:port"))
    var dcs: [String] = []

    @Option(name: .customLong("server-key"), help: ArgumentHelp(
        "A PEM file with an RSA public key the key exchange trusts (repeatable); with --dc.", valueName: "path"))
    var serverKeys: [String] = []

    @Option(name: .customLong("api-id"), help: ArgumentHelp("The application's api_id from my.telegram.org (or TGSM_API_ID, or the config file).", valueName: "n"))
    var apiID: Int32?

    @Option(name: .customLong("api-hash"), help: ArgumentHelp(
        "The application's api_hash (or TGSM_API_HASH, or the config file; prefer those: arguments are visible in `ps`).", valueName: "hash"))
    var apiHash: String?

    @Option(name: .customLong("log-level"), help: "Log level on stderr: trace, debug, info, notice, warning, error or critical.")
    var logLevel = "notice"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        if !dcs.isEmpty, serverKeys.isEmpty { throw ValidationError("--dc needs at least one --server-key (the RSA public key to trust)") }
        if !serverKeys.isEmpty, dcs.isEmpty { throw ValidationError("--server-key goes with --dc ID=HOST:PORT") }
        if !dcs.isEmpty, server != nil { throw ValidationError("give either --server or --dc/--server-key, not both") }
    }

    var level: Logger.Level { Logger.Level(rawValue: logLevel) ?? .notice }

    /// The resolved connection: profile and credentials.
    struct Resolved {
        var profile: ConnectionProfile
        var apiID: Int32
        var apiHash: String
        /// The proactive rate gate: the defaults, with the config file's `rateLimits` over them.
        var rateGate = RateGatePolicy()
        /// Perfect forward secrecy (the config file's `pfs`): every connection works on a temporary
        /// key bound to the account's permanent one, renewed before it expires.
        var pfs: PFSConfiguration?

        var clientConfiguration: TelegramClientConfiguration {
            var configuration = profile.clientConfiguration(apiID: apiID, apiHash: apiHash)
            configuration.pfs = pfs
            return configuration
        }
    }

    func resolve(_ global: GlobalOptions) throws(CLIFailure) -> Resolved {
        let environment = ProcessInfo.processInfo.environment
        let file = try global.configFile()
        let profile = try Self.serverProfile(server: server, dcs: dcs, serverKeys: serverKeys, file: file)
        let id: Int32? = apiID ?? environment["TGSM_API_ID"].flatMap { Int32($0) } ?? file.value?.apiID
        let hash: String? = (apiHash ?? environment["TGSM_API_HASH"] ?? file.value?.apiHash).flatMap { $0.isEmpty ? nil : $0 }
        guard let id, id > 0, let hash else {
            throw CLIFailure(.usage, "no api_id/api_hash: tgsm has none built in. Get yours at https://my.telegram.org (API development tools), then set "
                + "TGSM_API_ID and TGSM_API_HASH, or put {\"apiID\": N, \"apiHash\": \"...\"} in \(file.path) (mode 0600), or pass --api-id/--api-hash. "
                + "A `tgsm testdc` accepts any values.")
        }
        var rateGate = RateGatePolicy()
        if let limits = file.value?.rateLimits {
            do { rateGate = try limits.policy() } catch {
                throw CLIFailure(.usage, "the config file \(file.path): rateLimits: \(error.message); see docs/CLI.md, \"Config file\"")
            }
        }
        var pfs: PFSConfiguration?
        if let entry = file.value?.pfs, entry.enabled {
            guard (60...31_536_000).contains(entry.keyLifetime) else {
                throw CLIFailure(.usage, "the config file \(file.path): pfs.keyLifetime is \(entry.keyLifetime) s; give 60 to 31536000 (a day, 86400, is the default)")
            }
            pfs = PFSConfiguration(expiresIn: entry.keyLifetime)
        }
        return Resolved(profile: profile, apiID: id, apiHash: hash, rateGate: rateGate, pfs: pfs)
    }

    /// Which servers: `--dc`/`--server-key`, else `--server`, else TGSM_SERVER, else the config
    /// file's "server", else Telegram's production DCs.
    static func serverProfile(server: String?, dcs: [String] = [], serverKeys: [String] = [],
                              file: ConfigFile.Loaded) throws(CLIFailure) -> ConnectionProfile {
        do {
            if !dcs.isEmpty {
                return try ConnectionProfile.custom(dcs: try Self.parseDCs(dcs), keyPEMs: try serverKeys.map(Self.readPEM))
            } else if let name = server ?? ProcessInfo.processInfo.environment["TGSM_SERVER"].flatMap({ $0.isEmpty ? nil : $0 }) {
                return try Self.profile(named: name, relativeTo: FileManager.default.currentDirectoryPath)
            } else if let entry = file.value?.server {
                return try entry.profile(relativeTo: file.directory)
            } else {
                return try .production()
            }
        } catch let error as ConnectionProfileError {
            throw CLIFailure(.usage, "\(error)")
        } catch let failure as CLIFailure {
            throw failure
        } catch {
            throw CLIFailure(.usage, "\(error)")
        }
    }

    static func profile(named name: String, relativeTo directory: String) throws -> ConnectionProfile {
        switch name {
        case "production": return try .production()
        case "test": return try .telegramTest()
        case "custom": throw ConnectionProfileError.unknownKind("custom (give --dc ID=HOST:PORT and --server-key PEM, or a dcs.json path)")
        default:
            let path = name.hasPrefix("/") ? name : (directory as NSString).appendingPathComponent(name)
            return try .testDC(cluster: path)
        }
    }

    static func parseDCs(_ entries: [String]) throws(CLIFailure) -> [Int: [String]] {
        var dcs: [Int: [String]] = [:]
        for entry in entries {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let id = Int(parts[0]), id > 0 else {
                throw CLIFailure(.usage, "--dc \(entry): write ID=HOST:PORT, e.g. --dc 2=149.154.167.51:443")
            }
            dcs[id, default: []].append(String(parts[1]))
        }
        return dcs
    }

    static func readPEM(_ path: String) throws(CLIFailure) -> String {
        guard let data = FileManager.default.contents(atPath: GlobalOptions.absolute(path)) else {
            throw CLIFailure(.usage, "cannot read the server key file \(path); give a PEM file (BEGIN RSA PUBLIC KEY or BEGIN PUBLIC KEY)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// `STORE/config.json` (or `--config`, `TGSM_CONFIG`): the store, and defaults for the connecting commands.
///
/// ```json
/// { "apiID": 12345, "apiHash": "0123456789abcdef0123456789abcdef",
///   "server": "production",             // or "test", a dcs.json path, or {"dcs": {"1": ["host:port"]}, "publicKeys": ["key.pem"]}
///   "store": "postgres://tgsm@db1/tgsm" } // or a store directory; --store and $TGSM_STORE win over it
/// ```
struct ConfigFile: Decodable {
    /// The store, when neither `--store` nor $TGSM_STORE names one: a directory (relative to this
    /// file's) or a postgres:// URL (its password is better in $PGPASSWORD than in the file).
    var store: String?
    /// Where `tgsm session backup` puts the snapshots of a PostgreSQL store (relative to this file).
    var backupDirectory: String?
    var apiID: Int32?
    var apiHash: String?
    var server: ServerEntry?
    var rateLimits: RateLimitsEntry?
    var pfs: PFSEntry?
    /// Where `tgsm run` sends alerts: `{"webhook": "https://...", "secret": "...", "holdOff": 60,
    /// "repeatAfter": 86400, "longFloodWait": 3600}` (docs/RUNNING_GUIDE.md, "Alerts").
    var alerts: AlertsEntry?

    struct AlertsEntry: Decodable {
        var webhook: String?
        var secret: String?
        /// A PEM file of a private CA the receiver's certificate chains to (relative to this file).
        var caFile: String?
        var holdOff: Double?
        var repeatAfter: Double?
        var longFloodWait: Double?
    }

    /// `"pfs": true`, or `"pfs": {"keyLifetime": 86400}`: temporary keys of that lifetime (seconds).
    struct PFSEntry: Decodable {
        var enabled: Bool
        var keyLifetime: Int32 = 86_400

        init(from decoder: any Decoder) throws {
            if let flag = try? decoder.singleValueContainer().decode(Bool.self) {
                enabled = flag
                return
            }
            struct Object: Decodable { var keyLifetime: Int32? }
            let object = try Object(from: decoder)
            enabled = true
            keyLifetime = object.keyLifetime ?? 86_400
        }
    }

    /// Raises or lowers the proactive rate gate's budgets (docs/SESSIONS.md lists the defaults):
    /// `{"perAccount": {"other": {"perSecond": 50, "burst": 100}}, "perChat": {"send": {...}},
    /// "maximumInlineWait": 30}`; categories not named keep their defaults.
    struct RateLimitsEntry: Decodable {
        struct Bucket: Decodable {
            var perSecond: Double
            var burst: Double
        }
        var perAccount: [String: Bucket]?
        var perChat: [String: Bucket]?
        var maximumInlineWait: Double?

        struct Invalid: Error {
            var message: String
        }

        func policy() throws(Invalid) -> RateGatePolicy {
            var policy = RateGatePolicy()
            for (name, bucket) in perAccount ?? [:] {
                policy.perAccount[try Self.category(name)] = try Self.rate(bucket, name)
            }
            for (name, bucket) in perChat ?? [:] {
                policy.perPeer[try Self.category(name)] = try Self.rate(bucket, name)
            }
            if let wait = maximumInlineWait {
                guard wait >= 0, wait.isFinite else { throw Invalid(message: "maximumInlineWait must be a number of seconds ≥ 0") }
                policy.maximumInlineWait = wait
            }
            return policy
        }

        static func category(_ name: String) throws(Invalid) -> MethodCategory {
            guard let category = MethodCategory(rawValue: name) else {
                throw Invalid(message: "\"\(name)\" is no method category; use \(MethodCategory.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return category
        }

        static func rate(_ bucket: Bucket, _ name: String) throws(Invalid) -> TokenBucket.Rate {
            guard bucket.perSecond > 0, bucket.perSecond.isFinite, bucket.burst >= 1, bucket.burst.isFinite else {
                throw Invalid(message: "\(name): perSecond must be > 0 and burst ≥ 1")
            }
            return TokenBucket.Rate(capacity: bucket.burst, refillPerSecond: bucket.perSecond)
        }
    }

    enum ServerEntry: Decodable {
        case named(String)
        case custom(dcs: [String: [String]], publicKeys: [String], initialDC: Int?)

        init(from decoder: any Decoder) throws {
            if let name = try? decoder.singleValueContainer().decode(String.self) {
                self = .named(name)
                return
            }
            struct Custom: Decodable { var dcs: [String: [String]]; var publicKeys: [String]; var initialDC: Int? }
            let custom = try Custom(from: decoder)
            self = .custom(dcs: custom.dcs, publicKeys: custom.publicKeys, initialDC: custom.initialDC)
        }

        func profile(relativeTo directory: String) throws -> ConnectionProfile {
            switch self {
            case .named(let name):
                return try ConnectionOptions.profile(named: name, relativeTo: directory)
            case .custom(let dcs, let keys, let initialDC):
                var table: [Int: [String]] = [:]
                for (id, list) in dcs {
                    guard let number = Int(id) else { throw ConnectionProfileError.badAddress(id, reason: "DC ids are numbers") }
                    table[number] = list
                }
                // A key is a PEM inline, or a file beside the config.
                let pems = try keys.map { key throws -> String in
                    if key.contains("-----BEGIN") { return key }
                    let path = key.hasPrefix("/") ? key : (directory as NSString).appendingPathComponent(key)
                    guard let data = FileManager.default.contents(atPath: path) else {
                        throw ConnectionProfileError.unreadable(path: path, reason: "cannot read this public key file")
                    }
                    return String(decoding: data, as: UTF8.self)
                }
                return try ConnectionProfile.custom(dcs: table, keyPEMs: pems, initialDC: initialDC)
            }
        }
    }

    struct Loaded {
        var path: String
        var directory: String
        var value: ConfigFile?
    }

    /// The config file at `path` (absolute); `value` is nil when it is absent and need not exist.
    static func load(path: String, mustExist: Bool) throws(CLIFailure) -> Loaded {
        let directory = (path as NSString).deletingLastPathComponent
        guard let data = FileManager.default.contents(atPath: path) else {
            if mustExist { throw CLIFailure(.usage, "the config file \(path) does not exist or cannot be read") }
            return Loaded(path: path, directory: directory, value: nil)
        }
        do {
            return Loaded(path: path, directory: directory, value: try JSONDecoder().decode(ConfigFile.self, from: data))
        } catch {
            throw CLIFailure(.usage, "the config file \(path) is not valid (\(error)); see docs/CLI.md, \"Config file\"")
        }
    }
}
