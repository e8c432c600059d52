import ArgumentParser
import Foundation
import Logging
import TestDC

/// `tgsm testdc`: runs a local Telegram-compatible cluster until SIGINT/SIGTERM.
struct TestDCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "testdc",
        abstract: "Run a Telegram-compatible test DC cluster on local ports (see docs/TESTDC.md)."
    )

    @Option(help: "The address to listen on (and that help.getConfig lists).")
    var host = "127.0.0.1"

    @Option(name: .customLong("base-port"), help: "DC n listens on base-port + n - 1, the control endpoint on base-port + dcs. 0: ephemeral ports.")
    var basePort = 24401

    @Option(help: "How many DCs (ids 1...N).")
    var dcs = 3

    @Option(name: .customLong("control-port"), help: "The control endpoint's port (default: base-port + dcs; 0: ephemeral).")
    var controlPort: Int?

    @Flag(name: .customLong("no-control"), help: "Do not serve the control endpoint.")
    var noControl = false

    @Option(name: .customLong("state-dir"), help: "Where RSA keys, public key PEMs and dcs.json are kept.")
    var stateDir = ".build/testdc"

    @Flag(name: .customLong("key-per-dc"), help: "Give every DC its own RSA key (default: all DCs share one, as production does).")
    var keyPerDC = false

    @Option(help: "A world JSON file (users, channels, contacts); the built-in world when omitted.")
    var world: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        guard (1...100).contains(dcs) else { throw ValidationError("--dcs must be between 1 and 100") }
        guard (0...65535).contains(basePort) else { throw ValidationError("--base-port must be a port number (0...65535)") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "tgsm.testdc")
        logger.logLevel = level
        let loadedWorld: World
        if let world {
            loadedWorld = try World.load(contentsOf: URL(fileURLWithPath: world))
        } else {
            loadedWorld = .default
        }
        let stateURL = URL(fileURLWithPath: stateDir, isDirectory: true)
        var configuration = TestDCConfiguration(
            host: host, basePort: basePort, dcCount: dcs, controlEnabled: !noControl, controlPort: controlPort,
            stateDirectory: stateURL, world: loadedWorld, logger: logger)
        configuration.keyPerDC = keyPerDC
        let running = try await TestDCServer.start(configuration)

        var lines = ["tgsm testdc: \(running.table.dcs.count) DCs"]
        for dc in running.table.dcs {
            lines.append("  DC \(dc.id) at \(dc.host):\(dc.port)  key fingerprint \(dc.fingerprint)  \(stateURL.appendingPathComponent(dc.publicKeyFile ?? "").path)")
        }
        if let control = running.table.control { lines.append("  control endpoint: \(control.url)") }
        lines.append("  DC table: \(stateURL.appendingPathComponent("dcs.json").path)")
        for dc in running.table.dcs { lines.append("DC \(dc.id) public key (PKCS#1):\n\(dc.publicKeyPEM)") }
        lines.append("ready")
        // Unbuffered: a script waiting for "ready" on a pipe must see it now.
        Terminal.write(lines.joined(separator: "\n") + "\n", to: .standardOutput)

        await Termination.wait()
        logger.info("shutting down")
        try await running.shutdown()
    }
}
