import Foundation
import MTProtoClient
import MTProtoCrypto

/// Which servers every connecting command and the runtime talk to: Telegram's production DCs (the
/// default), Telegram's test DCs, a running `tgsm testdc` (its `dcs.json`), or any compatible
/// server given by DC addresses and the RSA keys to trust. The profile is one value so the CLI,
/// the runtime and the sandbox cannot disagree about addresses and keys.
public struct ConnectionProfile: Sendable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case production
        case test
        case testdc
        case custom
    }

    public var kind: Kind
    public var dcTable: DCTable
    public var serverKeys: [RSAPublicKey]
    /// Telegram's test servers: the key exchange names DC `id + 10000`.
    public var isTestServer: Bool
    /// The DC a new account's first connection goes to (login moves it home by PHONE_MIGRATE).
    public var initialDC: Int

    public init(kind: Kind, dcTable: DCTable, serverKeys: [RSAPublicKey], isTestServer: Bool = false, initialDC: Int) {
        self.kind = kind
        self.dcTable = dcTable
        self.serverKeys = serverKeys
        self.isTestServer = isTestServer
        self.initialDC = initialDC
    }

    /// Telegram's production DCs and published key.
    public static func production() throws(ConnectionProfileError) -> ConnectionProfile {
        do {
            return ConnectionProfile(kind: .production, dcTable: .production, serverKeys: try TelegramServers.productionKeys(), initialDC: 2)
        } catch {
            throw .badKey(source: "the built-in production key", reason: "\(error)")
        }
    }

    /// Telegram's test DCs (test accounts only) and their key.
    public static func telegramTest() throws(ConnectionProfileError) -> ConnectionProfile {
        do {
            return ConnectionProfile(kind: .test, dcTable: TelegramServers.testDCs, serverKeys: try TelegramServers.testKeys(),
                                     isTestServer: true, initialDC: 2)
        } catch {
            throw .badKey(source: "the built-in test key", reason: "\(error)")
        }
    }

    /// A `tgsm testdc` cluster: `path` is its `dcs.json` (or the state directory holding it).
    public static func testDC(cluster path: String) throws(ConnectionProfileError) -> ConnectionProfile {
        var file = path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            file = (path as NSString).appendingPathComponent("dcs.json")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw .unreadable(path: file, reason: "no such file; start `tgsm testdc --state-dir DIR` and pass DIR or DIR/dcs.json")
        }
        struct Cluster: Decodable {
            struct DC: Decodable { var id: Int; var host: String; var port: Int; var publicKeyPEM: String }
            var dcs: [DC]
        }
        let cluster: Cluster
        do {
            cluster = try JSONDecoder().decode(Cluster.self, from: data)
        } catch {
            throw .unreadable(path: file, reason: "not a `tgsm testdc` DC table (\(error)); it is the dcs.json the test DC writes")
        }
        var addresses: [Int: [DCAddress]] = [:]
        var keys: [RSAPublicKey] = []
        for dc in cluster.dcs {
            guard dc.id > 0, (1...65535).contains(dc.port), !dc.host.isEmpty else {
                throw .unreadable(path: file, reason: "DC \(dc.id) has an invalid address \(dc.host):\(dc.port)")
            }
            addresses[dc.id, default: []].append(DCAddress(host: dc.host, port: dc.port))
            let key: RSAPublicKey
            do { key = try RSAPublicKey(pem: dc.publicKeyPEM) } catch { throw .badKey(source: "DC \(dc.id) in \(file)", reason: "\(error)") }
            if !keys.contains(where: { $0.fingerprint == key.fingerprint }) { keys.append(key) }
        }
        guard let first = addresses.keys.min() else { throw .unreadable(path: file, reason: "it lists no DC") }
        return ConnectionProfile(kind: .testdc, dcTable: DCTable(addresses), serverKeys: keys, initialDC: first)
    }

    /// Any compatible server: DC id → "host:port" addresses, and the PEMs (PKCS#1 or X.509) of the
    /// keys to trust.
    public static func custom(dcs: [Int: [String]], keyPEMs: [String], initialDC: Int? = nil) throws(ConnectionProfileError) -> ConnectionProfile {
        var addresses: [Int: [DCAddress]] = [:]
        for (id, list) in dcs {
            guard id > 0 else { throw .badAddress("DC id \(id)", reason: "DC ids are positive") }
            for text in list {
                guard let address = Self.parseAddress(text) else {
                    throw .badAddress(text, reason: "write HOST:PORT, e.g. 127.0.0.1:24401 or [::1]:443")
                }
                addresses[id, default: []].append(address)
            }
        }
        guard let first = addresses.keys.min() else { throw .badAddress("(none)", reason: "a custom profile needs at least one DC address") }
        guard !keyPEMs.isEmpty else {
            throw .badKey(source: "the custom profile", reason: "no RSA public key given; the key exchange trusts only the keys you name")
        }
        var keys: [RSAPublicKey] = []
        for (index, pem) in keyPEMs.enumerated() {
            do { keys.append(try RSAPublicKey(pem: pem)) } catch { throw .badKey(source: "key \(index + 1)", reason: "\(error)") }
        }
        if let initialDC, addresses[initialDC] == nil { throw .badAddress("DC \(initialDC)", reason: "the initial DC has no address") }
        return ConnectionProfile(kind: .custom, dcTable: DCTable(addresses), serverKeys: keys, initialDC: initialDC ?? first)
    }

    /// "host:port" or "[v6]:port".
    public static func parseAddress(_ text: String) -> DCAddress? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("["), let close = trimmed.firstIndex(of: "]") {
            let host = String(trimmed[trimmed.index(after: trimmed.startIndex)..<close])
            let rest = trimmed[trimmed.index(after: close)...]
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (1...65535).contains(port), !host.isEmpty else { return nil }
            return DCAddress(host: host, port: port, isIPv6: true)
        }
        guard let colon = trimmed.lastIndex(of: ":") else { return nil }
        let host = String(trimmed[..<colon])
        guard !host.isEmpty, !host.contains(":"), let port = Int(trimmed[trimmed.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        return DCAddress(host: host, port: port)
    }

    /// A client configuration for this profile with the application's api_id/api_hash. Identity and
    /// proxy are the account's and are applied by the runtime.
    public func clientConfiguration(apiID: Int32, apiHash: String) -> TelegramClientConfiguration {
        TelegramClientConfiguration(apiID: apiID, apiHash: apiHash, serverKeys: serverKeys, dcTable: dcTable, initialDC: initialDC,
                                    isTestServer: isTestServer)
    }

    public var summary: String {
        let dcs = dcTable.dcIDs.map { id in "DC \(id) \(dcTable.address(for: id).map { "\($0.host):\($0.port)" } ?? "?")" }.joined(separator: ", ")
        return "\(kind.rawValue) (\(dcs); \(serverKeys.count) trusted key\(serverKeys.count == 1 ? "" : "s"))"
    }
}

/// Why a connection profile cannot be used. Says what to fix.
public enum ConnectionProfileError: Error, Sendable, Hashable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case badAddress(String, reason: String)
    case badKey(source: String, reason: String)
    case unknownKind(String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "the connection profile's file \(path) cannot be used: \(reason)"
        case .badAddress(let text, let reason): "the DC address \(text) cannot be used: \(reason)"
        case .badKey(let source, let reason): "the RSA public key from \(source) cannot be used (\(reason)); give a PEM (BEGIN RSA PUBLIC KEY or BEGIN PUBLIC KEY)"
        case .unknownKind(let text): "unknown connection profile \"\(text)\": use production, test, testdc or custom"
        }
    }
}
