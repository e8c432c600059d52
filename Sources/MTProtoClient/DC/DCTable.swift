import MTProtoNIO
// A DC's address is part of this module's API (DCTable, sessions, imports); it lives in MTProtoNIO
// so the test DC shares it, and is re-exported so a client user needs no transport import.
@_exported import struct MTProtoNIO.DCAddress
import TLSchema

/// The DCs the client knows: a static table at start, replaced by help.getConfig's dc_options
/// once the client has them (the production addresses do change).
public struct DCTable: Sendable, Hashable {
    public private(set) var addresses: [Int: [DCAddress]]

    public init(_ addresses: [Int: [DCAddress]]) {
        self.addresses = addresses
    }

    /// Telegram's production DCs (IPv4, port 443), the well-known bootstrap addresses.
    public static let production = DCTable([
        1: [DCAddress(host: "149.154.175.53", port: 443)],
        2: [DCAddress(host: "149.154.167.51", port: 443)],
        3: [DCAddress(host: "149.154.175.100", port: 443)],
        4: [DCAddress(host: "149.154.167.91", port: 443)],
        5: [DCAddress(host: "91.108.56.130", port: 443)],
    ])

    /// The address to dial for `dc`: IPv4 before IPv6 unless `preferIPv6`, and never a media-only
    /// address for API calls (media-only ones are taken only when `media` is set and one exists).
    public func address(for dc: Int, preferIPv6: Bool = false, media: Bool = false) -> DCAddress? {
        guard let candidates = addresses[dc], !candidates.isEmpty else { return nil }
        let families = candidates.filter { $0.isIPv6 == preferIPv6 }
        let pool = families.isEmpty ? candidates : families
        if media, let mediaAddress = pool.first(where: \.isMediaOnly) { return mediaAddress }
        return pool.first { !$0.isMediaOnly } ?? pool.first
    }

    public var dcIDs: [Int] { addresses.keys.sorted() }

    /// Replaces the known addresses of every DC that `options` lists (CDN and TCPO-only addresses
    /// are skipped: this client speaks neither); DCs it does not list keep their old addresses.
    public mutating func update(with options: [Api.DcOption]) {
        var fresh: [Int: [DCAddress]] = [:]
        for case .dcOption(let option) in options where !option.cdn && !option.tcpoOnly {
            guard option.port > 0, option.port <= 65535, !option.ipAddress.isEmpty else { continue }
            let address = DCAddress(host: option.ipAddress, port: Int(option.port), isIPv6: option.ipv6, isMediaOnly: option.mediaOnly)
            fresh[Int(option.id), default: []].append(address)
        }
        for (dc, list) in fresh { addresses[dc] = list }
    }

    /// The addresses of a help.getConfig answer.
    public mutating func update(with config: Api.Config) {
        switch config {
        case .config(let value): update(with: value.dcOptions)
        }
    }
}
