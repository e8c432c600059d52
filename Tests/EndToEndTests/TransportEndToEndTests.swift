#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OffThePool
import Logging
import MTProtoNIO
import NIOCore
import NIOPosix
import TLSchema
import TestDC
import Testing
import class MTProtoClient.TelegramClient
@testable import MTProtoClient

/// A proxy server run as a child of the test: started on loopback, ended by its own pid.
final class ProxyProcess: Sendable {
    let port: Int
    private let process: Process

    private init(process: Process, port: Int) {
        self.process = process
        self.port = port
    }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// microsocks (Debian's `microsocks`, installed by scripts/setup-system), with or without a user.
    static func socks5(username: String? = nil, password: String? = nil) async throws -> ProxyProcess {
        let executable = URL(fileURLWithPath: "/usr/bin/microsocks")
        try #require(FileManager.default.isExecutableFile(atPath: executable.path), "microsocks is missing: run scripts/setup-system")
        let port = try await freePort()
        var arguments = ["-i", "127.0.0.1", "-p", "\(port)"]
        if let username, let password { arguments += ["-u", username, "-P", password] }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let proxy = ProxyProcess(process: process, port: port)
        try await proxy.waitUntilListening()
        return proxy
    }

    /// mtprotoproxy from PyPI (pinned in Tests/Interop/requirements.txt) through Tests/Interop/run_mtproxy.py,
    /// its DC table pointed at `dcs`.
    static func mtproxy(secret: String, domain: String, dcs: [(id: Int32, host: String, port: Int)]) async throws -> ProxyProcess {
        let python = root.appendingPathComponent(".build/venv/bin/python")
        try #require(FileManager.default.isExecutableFile(atPath: python.path), "no Python venv: run scripts/setup-python")
        let process = Process()
        process.executableURL = python
        process.arguments = [root.appendingPathComponent("Tests/Interop/run_mtproxy.py").path, secret, domain]
            + dcs.map { "\($0.id)=\($0.host):\($0.port)" }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The wrapper prints `ready PORT` once it listens (or exits on a failure, ending the pipe).
        let line = await output.fileHandleForReading.line() ?? ""
        guard line.hasPrefix("ready "), let port = Int(line.dropFirst(6)) else {
            kill(process.processIdentifier, SIGKILL)
            throw ProxyProcessError.notReady(line)
        }
        return ProxyProcess(process: process, port: port)
    }

    enum ProxyProcessError: Error { case notReady(String), neverListened }

    /// SIGKILL, not `terminate()`: a child spawned from a test thread inherits that thread's signal
    /// mask, in which SIGTERM may be blocked, and would then never exit.
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// A port nobody listens on right now (bound, read, released).
    private static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    /// Connects until the child accepts (it has no readiness line); bounded, then fails.
    private func waitUntilListening() async throws {
        for _ in 0..<200 {
            if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get() {
                try? await channel.close()
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        stop()
        throw ProxyProcessError.neverListened
    }
}

/// Our client logs in to the test DC over every transport that has a form of its own on the wire:
/// padded intermediate (both ends pad 0-15 bytes), obfuscation over each framing, SOCKS5 through
/// Debian's microsocks (no auth, username/password) and MTProxy through mtprotoproxy from PyPI
/// (plain, `dd` and `ee` secrets).
@Suite struct TransportEndToEndTests {
    static let secret = "0123456789abcdef0123456789abcdef"
    static let domain = "tgsm.example"

    func logIn(_ cluster: Cluster, configure: (inout TelegramClientConfiguration) -> Void) async throws {
        var configuration = cluster.configuration()
        configure(&configuration)
        let quiet = Logger(label: "client") { _ in SwiftLogNoOpLogHandler() }
        let client = TelegramClient(configuration: configuration, storage: InMemorySessionStorage(), clock: SystemClock(), logger: quiet)
        let user = try await cluster.logIn(client, phone: alice.phone)
        #expect(user.userID == alice.id)
        let users = try await client.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        #expect(users.map(\.userID) == [alice.id])
        await client.close()
    }

    @Test(arguments: [
        (TransportKind.paddedIntermediate, false), (.abridged, true), (.intermediate, true), (.paddedIntermediate, true),
    ])
    func logInDirectly(transport: TransportKind, obfuscated: Bool) async throws {
        let cluster = try await Cluster.start(dcCount: 1)
        try await logIn(cluster) {
            $0.transport = transport
            $0.obfuscated = obfuscated
        }
        await cluster.shutdown()
    }

    @Test func logInThroughSOCKS5WithoutAuthentication() async throws {
        let cluster = try await Cluster.start(dcCount: 1)
        let proxy = try await ProxyProcess.socks5()
        try await logIn(cluster) { $0.proxy = .socks5(SOCKS5Proxy(host: "127.0.0.1", port: proxy.port)) }
        proxy.stop()
        await cluster.shutdown()
    }

    @Test func logInThroughSOCKS5WithAPassword() async throws {
        let cluster = try await Cluster.start(dcCount: 1)
        let proxy = try await ProxyProcess.socks5(username: "tgsm", password: "s3cret")
        try await logIn(cluster) {
            $0.transport = .abridged
            $0.obfuscated = true
            $0.proxy = .socks5(SOCKS5Proxy(host: "127.0.0.1", port: proxy.port, credentials: .init(username: "tgsm", password: "s3cret")))
        }

        let dc = try #require(cluster.dc.table.dcs.first)
        for credentials in [SOCKS5Proxy.Credentials(username: "tgsm", password: "wrong"), nil] {
            let route = MTProtoClientRoute(transport: .intermediate, proxy: .socks5(SOCKS5Proxy(host: "127.0.0.1", port: proxy.port, credentials: credentials)))
            await #expect {
                _ = try await MTProtoTransportClient.connect(host: dc.host, port: dc.port, route: route)
            } throws: { error in
                switch error as? ProxyError {
                case .socksAuthenticationFailed, .socksNoAcceptableMethod, .closedDuringHandshake: true
                default: false
                }
            }
        }
        proxy.stop()
        await cluster.shutdown()
    }

    /// A client whose proxy refuses it fails with the proxy's reason, and one whose proxy is down
    /// names it: what an operator reads in `tgsm auth` and `/health`. Before, the close that
    /// followed a refused handshake ended the link first, as "closed by the server".
    @Test func aClientThatItsProxyRefusesSaysWhy() async throws {
        let cluster = try await Cluster.start(dcCount: 1)
        let proxy = try await ProxyProcess.socks5(username: "tgsm", password: "s3cret")
        let quiet = Logger(label: "client") { _ in SwiftLogNoOpLogHandler() }
        for (credentials, expected) in [(SOCKS5Proxy.Credentials(username: "tgsm", password: "wrong"), "rejected the username and password"),
                                        (nil, "requires credentials")] {
            // The default reconnect budget: a refusal is not knocked at again, so the failure comes at once.
            var configuration = cluster.configuration()
            configuration.proxy = .socks5(SOCKS5Proxy(host: "127.0.0.1", port: proxy.port, credentials: credentials))
            let client = TelegramClient(configuration: configuration, storage: InMemorySessionStorage(), clock: SystemClock(), logger: quiet)
            await #expect { _ = try await client.invoke(Api.functions.help.GetNearestDc()) } throws: { error in
                guard case .proxyRefused(_, let reason, .notSent?) = error as? TelegramError, reason.contains(expected) else {
                    Issue.record("\(error)")
                    return false
                }
                return true
            }
            #expect(await client.statistics()[1]?.connections == 0)
            // Corrected without a new client: the next call goes through.
            await client.changeProxy(.socks5(SOCKS5Proxy(host: "127.0.0.1", port: proxy.port, credentials: .init(username: "tgsm", password: "s3cret"))))
            _ = try await client.invoke(Api.functions.help.GetNearestDc())
            await client.close()
        }
        let port = proxy.port
        proxy.stop()
        var configuration = cluster.configuration()
        configuration.proxy = .socks5(SOCKS5Proxy(host: "127.0.0.1", port: port))
        configuration.reconnect = ReconnectPolicy(initialDelay: 0, maximumDelay: 0, maximumAttempts: 1)
        let client = TelegramClient(configuration: configuration, storage: InMemorySessionStorage(), clock: SystemClock(), logger: quiet)
        await #expect { _ = try await client.invoke(Api.functions.help.GetNearestDc()) } throws: { error in
            "\(error)".contains("Connection refused connecting to the SOCKS5 proxy 127.0.0.1:\(port)") || { Issue.record("\(error)"); return false }()
        }
        await client.close()
        await cluster.shutdown()
    }

    /// A proxy that accepts the connection and never answers its handshake holds the call; moving
    /// the client to another way (here: directly) lets it through at once, in the same client,
    /// without waiting out the connect timeout.
    @Test func aCallHeldByAProxyThatNeverAnswersGoesThroughOnceTheProxyChanges() async throws {
        let cluster = try await Cluster.start(dcCount: 1)
        // Listening, never accepting: the kernel completes the TCP handshake, nobody speaks SOCKS5.
        let silent = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(silent) }
        var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(silent, $0, length) == 0 && getsockname(silent, $0, &length) == 0 }
        } && listen(silent, 8) == 0
        try #require(listening, "errno \(errno)")
        var configuration = cluster.configuration()
        configuration.proxy = .socks5(SOCKS5Proxy(host: "127.0.0.1", port: Int(UInt16(bigEndian: address.sin_port))))
        let client = TelegramClient(configuration: configuration, storage: InMemorySessionStorage(), clock: SystemClock(),
                                    logger: Logger(label: "client") { _ in SwiftLogNoOpLogHandler() })
        let call = Task { try await client.invoke(Api.functions.help.GetNearestDc(), options: InvokeOptions(timeout: 60)) }
        try await Task.sleep(for: .milliseconds(300))
        await client.changeProxy(nil)
        let started = ContinuousClock.now
        _ = try await call.value
        #expect(ContinuousClock.now - started < .seconds(5), "it went through the new way, not after a timeout")
        await client.close()
        await cluster.shutdown()
    }

    @Test(arguments: ["", "dd", "ee"])
    func logInThroughMTProxy(prefix: String) async throws {
        let cluster = try await Cluster.start(dcCount: 1)
        let dcs = cluster.dc.table.dcs.map { (id: $0.id, host: $0.host, port: $0.port) }
        let proxy = try await ProxyProcess.mtproxy(secret: Self.secret, domain: Self.domain, dcs: dcs)
        let text = prefix + Self.secret + (prefix == "ee" ? Array(Self.domain.utf8).map { String(format: "%02x", $0) }.joined() : "")
        let secret = try MTProxySecret(parsing: text)
        try await logIn(cluster) {
            $0.transport = .abridged  // a dd or ee secret replaces it with padded intermediate
            $0.proxy = .mtproxy(MTProxy(host: "127.0.0.1", port: proxy.port, secret: secret))
        }
        proxy.stop()
        await cluster.shutdown()
    }

    /// An MTProxy given another secret just closes the connection: the client's failure names the
    /// proxy and the likely cause (it read "closed by the server", which sent people to the DC).
    @Test func aClientWhoseMTProxyClosesItsConnectionsNamesTheProxy() async throws {
        let cluster = try await Cluster.start(dcCount: 1)
        let dcs = cluster.dc.table.dcs.map { (id: $0.id, host: $0.host, port: $0.port) }
        let proxy = try await ProxyProcess.mtproxy(secret: Self.secret, domain: Self.domain, dcs: dcs)
        var configuration = cluster.configuration()
        configuration.proxy = .mtproxy(MTProxy(host: "127.0.0.1", port: proxy.port, secret: try MTProxySecret(key: Array(repeating: 0x42, count: 16), mode: .plain)))
        configuration.reconnect = ReconnectPolicy(initialDelay: 0, maximumDelay: 0, maximumAttempts: 1)
        let client = TelegramClient(configuration: configuration, storage: InMemorySessionStorage(), clock: SystemClock(),
                                    logger: Logger(label: "client") { _ in SwiftLogNoOpLogHandler() })
        await #expect { _ = try await client.invoke(Api.functions.help.GetNearestDc()) } throws: { error in
            "\(error)".contains("closed by the MTProxy 127.0.0.1:\(proxy.port) (it closes connections made with a wrong secret)")
                || { Issue.record("\(error)"); return false }()
        }
        await client.close()
        proxy.stop()
        await cluster.shutdown()
    }

    @Test func aFakeTLSProxyWithAnotherSecretIsRefusedTyped() async throws {
        let cluster = try await Cluster.start(dcCount: 1)
        let dcs = cluster.dc.table.dcs.map { (id: $0.id, host: $0.host, port: $0.port) }
        let proxy = try await ProxyProcess.mtproxy(secret: Self.secret, domain: Self.domain, dcs: dcs)
        let wrong = try MTProxySecret(key: Array(repeating: 0x42, count: 16), mode: .fakeTLS(domain: Self.domain))
        let route = MTProtoClientRoute(transport: .paddedIntermediate, proxy: .mtproxy(MTProxy(host: "127.0.0.1", port: proxy.port, secret: wrong)), dcID: 1)
        await #expect(throws: ProxyError.closedDuringHandshake(proxy: "fake-TLS MTProxy")) {
            _ = try await MTProtoTransportClient.connect(host: "127.0.0.1", port: proxy.port, route: route)
        }
        proxy.stop()
        await cluster.shutdown()
    }
}
