import Crypto
import Foundation

/// A checksum over the fields of the rows a client cannot live without (the account and its DCs),
/// stored in the row. `PRAGMA integrity_check` finds broken pages and b-trees but not a flipped
/// byte inside a value; this does, so a damaged salt or key is never handed to the client.
enum RowCheck {
    static func dc(account: String, dc: Int, key: Data?, keyID: Int64?, salt: Int64, offset: Double, authorized: Bool) -> Int64 {
        var bytes = Array("dc|\(account)|\(dc)|\(keyID.map(String.init) ?? "-")|\(salt)|\(offset.bitPattern)|\(authorized)|".utf8)
        bytes += key.map(Array.init) ?? []
        return digest(bytes)
    }

    static func account(id: String, homeDC: Int?, userID: Int64?, isBot: Bool) -> Int64 {
        digest(Array("account|\(id)|\(homeDC.map(String.init) ?? "-")|\(userID.map(String.init) ?? "-")|\(isBot)".utf8))
    }

    private static func digest(_ bytes: [UInt8]) -> Int64 {
        let hash = SHA256.hash(data: bytes)
        var value: Int64 = 0
        for byte in hash.prefix(8) { value = value << 8 | Int64(byte) }
        return value
    }
}
