/// Where an MTProto message ends inside a transport payload that may carry trailing bytes.
///
/// Padded intermediate appends 0-15 random bytes after each message and its length covers them,
/// so the transport cannot tell where the message ends; the message itself can, from fields sent
/// in the clear: an unencrypted message declares its body length (`auth_key_id = 0 | msg_id |
/// length`), and an encrypted one is `auth_key_id | msg_key` followed by whole 16-byte AES blocks,
/// so fewer than 16 trailing bytes never form a block (the inner `message_data_length` is then
/// checked after decryption, as for any packet).
public enum PacketLength {
    /// Bytes of `auth_key_id | msg_key` before an encrypted message's AES blocks.
    static let encryptedHeaderLength = 24
    /// The shortest encrypted message: the header and one AES block.
    static let minimumEncryptedLength = encryptedHeaderLength + 16

    /// The length of the message at the start of `payload`, or nil when its clear fields cannot tell
    /// (too short, or an unencrypted message declaring more than is there): the caller then passes
    /// the payload on whole and the message's own decoder rejects it.
    public static func messageLength(in payload: UnsafeRawBufferPointer) -> Int? {
        guard payload.count >= 8 else { return nil }
        var authKeyID: UInt64 = 0
        for index in 0..<8 { authKeyID |= UInt64(payload[index]) << (8 * UInt64(index)) }
        if authKeyID == 0 {
            guard payload.count >= PlainMessage.headerLength else { return nil }
            var declared = 0
            for index in 0..<4 { declared |= Int(payload[16 + index]) << (8 * index) }
            let length = PlainMessage.headerLength + declared
            return length <= payload.count ? length : nil
        }
        guard payload.count >= minimumEncryptedLength else { return nil }
        return encryptedHeaderLength + (payload.count - encryptedHeaderLength) / 16 * 16
    }

    /// `messageLength(in:)` over an array.
    public static func messageLength(in payload: [UInt8]) -> Int? {
        payload.withUnsafeBytes { messageLength(in: $0) }
    }
}
