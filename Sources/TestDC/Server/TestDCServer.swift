import Foundation
import Logging
import MTProto
import MTProtoCrypto
import MTProtoNIO
import NIOCore
import NIOPosix

/// How to run a test DC cluster.
public struct TestDCConfiguration: Sendable {
    /// The address every DC and the control endpoint listen on (and that help.getConfig lists).
    public var host: String
    /// DC n listens on `basePort + n - 1`; 0 gives every DC an ephemeral port.
    public var basePort: Int
    public var dcCount: Int
    /// Whether to serve the control endpoint (HTTP/JSON).
    public var controlEnabled: Bool
    /// The control endpoint's port; nil means `basePort + dcCount` (or ephemeral when basePort is 0).
    public var controlPort: Int?
    /// Where RSA keys, public key PEMs and the DC table are kept; nil keeps fresh keys in memory only.
    public var stateDirectory: URL?
    public var world: World
    /// Unix time in seconds; tests inject their own.
    public var clock: @Sendable () -> Double
    /// Answer AUTH_KEY_DUPLICATED when one key is used by two live connections with different session ids.
    public var detectsDuplicateKeys: Bool
    /// Where every random byte of the cluster comes from (keys exchanges, sessions, salts, codes).
    public var entropy: any EntropySource
    /// At most this many server sessions are kept; one unused for `sessionIdleLifetime` seconds goes.
    public var sessionLimit: Int
    public var sessionIdleLifetime: Double
    /// Give each DC its own RSA key (`dc<N>.key.pem`). By default every DC serves one key (DC 1's
    /// file), as production DCs share Telegram's published key.
    public var keyPerDC: Bool = false
    /// Answers to the requests of one socket read leave together, in one container, as Telegram's
    /// servers send them. Off, each answer is a packet of its own (a client then pays its
    /// per-packet cost once per call: ClientBench measured Telethon at 117 µs of CPU per call at 64
    /// in flight that way against 19 µs with containers).
    public var answersTogether: Bool = true
    public var logger: Logger

    public init(
        host: String = "127.0.0.1", basePort: Int = 0, dcCount: Int = 3, controlEnabled: Bool = true, controlPort: Int? = nil,
        stateDirectory: URL? = nil, world: World = .default,
        clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        detectsDuplicateKeys: Bool = true, entropy: any EntropySource = SystemEntropy(),
        sessionLimit: Int = 4096, sessionIdleLifetime: Double = 900, logger: Logger = Logger(label: "tgsm.testdc")
    ) {
        precondition(dcCount >= 1 && dcCount <= 100, "a test cluster has 1...100 DCs")
        self.host = host
        self.basePort = basePort
        self.dcCount = dcCount
        self.controlEnabled = controlEnabled
        self.controlPort = controlPort ?? (basePort == 0 ? 0 : basePort + dcCount)
        self.stateDirectory = stateDirectory
        self.world = world
        self.clock = clock
        self.detectsDuplicateKeys = detectsDuplicateKeys
        self.entropy = entropy
        self.sessionLimit = max(1, sessionLimit)
        self.sessionIdleLifetime = sessionIdleLifetime > 0 ? sessionIdleLifetime : 900
        self.logger = logger
    }
}

public enum TestDCError: Error, CustomStringConvertible {
    case stateDirectory(path: String, reason: String)
    case bind(what: String, host: String, port: Int, reason: String)
    case key(dc: Int32, reason: String)

    public var description: String {
        switch self {
        case .stateDirectory(let path, let reason):
            "cannot use the state directory \(path): \(reason); pass a writable directory with --state-dir"
        case .bind(let what, let host, let port, let reason):
            "cannot listen for \(what) on \(host):\(port): \(reason); pick free ports with --base-port (or 0 for ephemeral ones)"
        case .key(let dc, let reason):
            "the RSA key of DC \(dc) is unusable: \(reason); delete its dc\(dc).key.pem in the state directory to make a new one"
        }
    }
}

/// What the test cluster listens on, as written to `dcs.json` in the state directory: each DC's
/// address and public key, and the control endpoint. The client's own notion of where DCs are is
/// `DCTable` (MTProtoClient), of one DC's address `DCAddress` (MTProtoNIO).
public struct ClusterTable: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var id: Int32
        public var host: String
        public var port: Int
        /// The PKCS#1 PEM file of the DC's RSA public key, relative to the state directory.
        public var publicKeyFile: String?
        public var publicKeyPEM: String
        /// The key's fingerprint as resPQ lists it (signed 64-bit, decimal).
        public var fingerprint: Int64
    }

    public struct Control: Codable, Sendable, Equatable {
        public var host: String
        public var port: Int
        public var url: String
    }

    public var dcs: [Entry]
    public var control: Control?

    /// Each DC's address, by DC id.
    public var addresses: [Int32: DCAddress] {
        Dictionary(dcs.map { ($0.id, DCAddress(host: $0.host, port: $0.port)) }, uniquingKeysWith: { first, _ in first })
    }
}

/// A cluster that is running: its addresses, keys and state. Call `shutdown()` when done.
public final class RunningTestDC: Sendable {
    public let core: TestDCCore
    public let table: ClusterTable
    private let servers: [MTProtoTransportServer]
    private let control: ControlServer?

    init(core: TestDCCore, table: ClusterTable, servers: [MTProtoTransportServer], control: ControlServer?) {
        self.core = core
        self.table = table
        self.servers = servers
        self.control = control
    }

    /// Where each DC listens, by DC id.
    public var dcs: [Int32: DCAddress] { table.addresses }

    /// The PKCS#1 PEM of each DC's public key.
    public var publicKeyPEMs: [Int32: String] { Dictionary(uniqueKeysWithValues: table.dcs.map { ($0.id, $0.publicKeyPEM) }) }

    public var controlPort: Int? { table.control?.port }

    /// The code last sent to `phone` (as a test reads an SMS).
    public func loginCode(phone: String) -> String? {
        core.withState { $0.sentCodes[World.normalizePhone(phone)]?.code }
    }

    @discardableResult
    public func addFault(_ rule: FaultRule) throws -> FaultRule {
        try core.withState { try $0.faults.add(rule) }
    }

    /// How many times a rule has fired: a test waits on it to know a request reached the DC.
    public func faultFiredCount(rule id: Int) -> Int {
        core.withState { $0.faults.firedCount(rule: id) }
    }

    public func clearFaults(kind: FaultEffect.Kind? = nil) {
        core.withState { $0.faults.clear(kind: kind) }
    }

    public func shutdown() async throws {
        for server in servers { try? await server.close() }
        try? await control?.close()
        core.flushAuthKeys()
        core.flushBoxes()
    }
}

public enum TestDCServer {
    /// Starts every DC and the control endpoint; keys are loaded from (or created in) the state directory.
    public static func start(_ configuration: TestDCConfiguration) async throws -> RunningTestDC {
        let logger = configuration.logger
        if let directory = configuration.stateDirectory {
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            } catch {
                throw TestDCError.stateDirectory(path: directory.path, reason: error.localizedDescription)
            }
        }
        let ids = (1...configuration.dcCount).map { Int32($0) }
        var keys: [Int32: RSAPrivateKey] = [:]
        if configuration.keyPerDC {
            for id in ids { keys[id] = try loadOrCreateKey(dc: id, directory: configuration.stateDirectory, logger: logger) }
        } else {
            let shared = try loadOrCreateKey(dc: 1, directory: configuration.stateDirectory, logger: logger)
            for id in ids { keys[id] = shared }
        }

        var initialState = DCState(world: configuration.world, dcs: [:], entropy: configuration.entropy)
        if let directory = configuration.stateDirectory {
            let store = AuthKeyStore(url: directory.appendingPathComponent("authkeys.json"), logger: logger)
            initialState.restore(try store.load())
            initialState.authKeyStore = store
            initialState.savedAuthVersion = initialState.authVersion
            logger.info("auth keys restored", metadata: ["count": "\(initialState.storedAuthKeys.count)"])
            let boxes = MessageBoxStore(url: directory.appendingPathComponent("boxes.json"), logger: logger)
            if let snapshot = try boxes.load() {
                initialState.restore(snapshot)
                logger.info("message boxes restored", metadata: ["accounts": "\(snapshot.users.count)", "channels": "\(snapshot.channels.count)"])
            }
            initialState.boxStore = boxes
        }
        let core = TestDCCore(
            state: initialState, clock: configuration.clock, duplicateKeyDetection: configuration.detectsDuplicateKeys,
            sessionLimit: configuration.sessionLimit, sessionIdleLifetime: configuration.sessionIdleLifetime)
        var servers: [MTProtoTransportServer] = []
        var entries: [ClusterTable.Entry] = []
        for id in ids {
            guard let key = keys[id] else { continue }
            let port = configuration.basePort == 0 ? 0 : configuration.basePort + Int(id) - 1
            let handshake = ServerHandshake.Configuration(keys: [key])
            var dcLogger = logger
            dcLogger[metadataKey: "dc"] = "\(id)"
            let server: MTProtoTransportServer
            do {
                server = try await MTProtoTransportServer.bind(host: configuration.host, port: port) { [dcLogger] _ in
                    TestDCConnectionHandler(
                        core: core, dc: id, handshakeConfiguration: handshake, answersTogether: configuration.answersTogether, logger: dcLogger)
                }
            } catch {
                for started in servers { try? await started.close() }
                throw TestDCError.bind(what: "DC \(id)", host: configuration.host, port: port, reason: "\(error)")
            }
            servers.append(server)
            let pem = key.publicKey.pkcs1PEM
            entries.append(ClusterTable.Entry(
                id: id, host: configuration.host, port: server.localAddress?.port ?? port,
                publicKeyFile: configuration.stateDirectory == nil ? nil : "dc\(configuration.keyPerDC ? id : 1).pub.pem",
                publicKeyPEM: pem, fingerprint: key.publicKey.fingerprint))
        }
        let addresses = ClusterTable(dcs: entries, control: nil).addresses
        core.withState { $0.dcs = addresses }

        var control: ControlServer?
        var controlEntry: ClusterTable.Control?
        if configuration.controlEnabled, let controlPort = configuration.controlPort {
            do {
                let server = try await ControlServer.bind(host: configuration.host, port: controlPort, core: core, logger: logger)
                control = server
                let port = server.localAddress?.port ?? controlPort
                controlEntry = ClusterTable.Control(host: configuration.host, port: port, url: "http://\(configuration.host):\(port)")
            } catch {
                for started in servers { try? await started.close() }
                throw TestDCError.bind(what: "the control endpoint", host: configuration.host, port: controlPort, reason: "\(error)")
            }
        }
        let table = ClusterTable(dcs: entries, control: controlEntry)
        control?.setTable(table)
        if let directory = configuration.stateDirectory {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            do {
                try encoder.encode(table).write(to: directory.appendingPathComponent("dcs.json"), options: .atomic)
            } catch {
                throw TestDCError.stateDirectory(path: directory.path, reason: "writing dcs.json: \(error.localizedDescription)")
            }
        }
        for entry in entries {
            logger.info("DC listening", metadata: ["dc": "\(entry.id)", "address": "\(entry.host):\(entry.port)", "fingerprint": "\(entry.fingerprint)"])
        }
        return RunningTestDC(core: core, table: table, servers: servers, control: control)
    }

    /// The DC's private key from `dc<N>.key.pem`, or a new one written there (with its public PEM).
    static func loadOrCreateKey(dc: Int32, directory: URL?, logger: Logger) throws -> RSAPrivateKey {
        guard let directory else {
            do { return try RSAPrivateKey.generate() } catch { throw TestDCError.key(dc: dc, reason: "\(error)") }
        }
        let privateURL = directory.appendingPathComponent("dc\(dc).key.pem")
        let publicURL = directory.appendingPathComponent("dc\(dc).pub.pem")
        let key: RSAPrivateKey
        if FileManager.default.fileExists(atPath: privateURL.path) {
            do {
                key = try RSAPrivateKey(pem: String(contentsOf: privateURL, encoding: .utf8))
            } catch {
                throw TestDCError.key(dc: dc, reason: "\(error)")
            }
        } else {
            do {
                key = try RSAPrivateKey.generate()
                try key.pem().write(to: privateURL, atomically: true, encoding: .utf8)
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: privateURL.path)
            } catch {
                throw TestDCError.key(dc: dc, reason: "\(error)")
            }
            logger.info("created an RSA key", metadata: ["dc": "\(dc)"])
        }
        do {
            try key.publicKey.pkcs1PEM.write(to: publicURL, atomically: true, encoding: .utf8)
        } catch {
            throw TestDCError.stateDirectory(path: directory.path, reason: "writing \(publicURL.lastPathComponent): \(error.localizedDescription)")
        }
        return key
    }
}
