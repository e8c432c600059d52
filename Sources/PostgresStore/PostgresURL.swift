import Foundation
import NIOSSL
import PostgresNIO

/// A `postgres://` URL as libpq writes it, turned into a postgres-nio configuration.
///
/// `postgres[ql]://[USER[:PASSWORD]@][HOST][:PORT][/DATABASE][?sslmode=MODE&host=/socket/dir]`.
/// The password may instead come from `$PGPASSWORD`, which keeps it out of `ps` and shell history.
/// sslmode: `disable`, `prefer` (default: TLS when the server offers it), `require` (TLS with the
/// server's certificate verified against the system's trust store, libpq's verify-full).
public struct PostgresURL: Sendable {
    public let configuration: PostgresClient.Configuration
    /// The same server and login for one connection of its own (the probe `connect` makes first).
    let probeConfiguration: PostgresConnection.Configuration
    /// The URL without its password, for messages and logs.
    public let redacted: String

    /// Whether `text` names a PostgreSQL database rather than a directory.
    public static func isPostgresURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    public init(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(PostgresStoreError) {
        guard Self.isPostgresURL(text) else { throw .invalidURL("it does not start with postgres:// or postgresql://") }
        guard let components = URLComponents(string: text) else { throw .invalidURL("it is not a valid URL") }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] {
            guard let value = item.value else { throw .invalidURL("the parameter \(item.name) has no value") }
            query[item.name] = value
        }
        for name in query.keys where !["sslmode", "host", "application_name"].contains(name) {
            throw .invalidURL("the parameter \(name) is not supported (supported: sslmode, host, application_name)")
        }
        let user = components.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? environment["PGUSER"] ?? environment["USER"] ?? "postgres"
        let password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding } ?? environment["PGPASSWORD"]
        var path = components.percentEncodedPath
        if path.hasPrefix("/") { path.removeFirst() }
        guard !path.contains("/") else { throw .invalidURL("the database name \"\(path)\" contains a slash") }
        let database = path.isEmpty ? nil : path.removingPercentEncoding
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw .invalidURL("the port \(port) is out of range") }

        let tls: PostgresClient.Configuration.TLS
        let probeTLS: PostgresConnection.Configuration.TLS
        switch query["sslmode"] ?? "prefer" {
        case "disable": (tls, probeTLS) = (.disable, .disable)
        case "prefer", "allow":
            (tls, probeTLS) = (.prefer(.makeClientConfiguration()), .prefer(try Self.tlsContext()))
        case "require", "verify-ca", "verify-full":
            (tls, probeTLS) = (.require(.makeClientConfiguration()), .require(try Self.tlsContext()))
        case let other: throw .invalidURL("sslmode=\(other) is not one of disable, prefer, require")
        }

        var configuration: PostgresClient.Configuration
        var probe: PostgresConnection.Configuration
        let socketDirectory = query["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        if let socketDirectory {
            configuration = .init(unixSocketPath: socketDirectory + "/.s.PGSQL.\(port)", username: user, password: password, database: database)
            probe = .init(unixSocketPath: socketDirectory + "/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: tls)
            probe = .init(host: host, port: port, username: user, password: password, database: database, tls: probeTLS)
        }
        probe.options.connectTimeout = .seconds(10)
        if let name = query["application_name"] { probe.options.additionalStartupParameters.append(("application_name", name)) }
        probeConfiguration = probe
        if let name = query["application_name"] { configuration.options.additionalStartupParameters.append(("application_name", name)) }
        self.configuration = configuration

        var shown = components
        if shown.password != nil { shown.password = "***" }
        redacted = shown.string ?? "postgres://(unprintable)"
    }

    private static func tlsContext() throws(PostgresStoreError) -> NIOSSLContext {
        do { return try NIOSSLContext(configuration: .makeClientConfiguration()) } catch {
            throw .invalidURL("TLS could not be set up: \(error)")
        }
    }
}
