import NIOCore

/// Abridged: tag `0xef`; each packet is prefixed by its length in 4-byte words, one byte when below
/// 0x7f, else `0x7f` and three little-endian bytes. A client sets the high bit of the first byte to
/// ask for a quick ack; a server's quick ack is its 4 bytes byte-swapped (so the first byte has the
/// high bit, which no length byte has in that direction).
public struct AbridgedFraming: MTProtoFraming {
    public let role: TransportRole
    public let limits: TransportLimits
    private var tagPending: Bool

    public var kind: TransportKind { .abridged }

    private static let longFormMarker: UInt8 = 0x7f
    private static let quickAckFlag: UInt8 = 0x80
    private static let maximumWords = 0xFF_FFFF

    /// - Parameter sendsTag: false under obfuscation, whose header carries the tag instead.
    public init(role: TransportRole, limits: TransportLimits = .default, sendsTag: Bool = true) {
        self.role = role
        self.limits = limits
        self.tagPending = role == .client && sendsTag
    }

    public func maximumEncodedLength(of frame: TransportFrame) -> Int {
        let tag = tagPending ? 1 : 0
        switch frame {
        case .packet(let payload), .packetRequestingQuickAck(let payload):
            return tag + 4 + payload.readableBytes
        case .quickAck, .transportError:
            return tag + 5
        }
    }

    public mutating func encode(_ frame: TransportFrame, into buffer: inout ByteBuffer) {
        FrameRules.checkOutbound(frame, role: role)
        if tagPending {
            buffer.writeInteger(UInt8(0xef))
            tagPending = false
        }
        switch frame {
        case .packet(let payload):
            writePacket(payload, flag: 0, into: &buffer)
        case .packetRequestingQuickAck(let payload):
            writePacket(payload, flag: Self.quickAckFlag, into: &buffer)
        case .quickAck(let token):
            buffer.writeInteger(token, endianness: .big)
        case .transportError(let code):
            buffer.writeInteger(UInt8(1))
            buffer.writeInteger(code.rawValue, endianness: .little)
        }
    }

    private func writePacket(_ payload: ByteBuffer, flag: UInt8, into buffer: inout ByteBuffer) {
        let words = payload.readableBytes / 4
        if words < Int(Self.longFormMarker) {
            buffer.writeInteger(UInt8(words) | flag)
        } else {
            precondition(words <= Self.maximumWords, "abridged length \(words) words does not fit in 3 bytes")
            buffer.writeInteger(Self.longFormMarker | flag)
            buffer.writeInteger(UInt8(truncatingIfNeeded: words))
            buffer.writeInteger(UInt8(truncatingIfNeeded: words >> 8))
            buffer.writeInteger(UInt8(truncatingIfNeeded: words >> 16))
        }
        var payload = payload
        buffer.writeBuffer(&payload)
    }

    public mutating func decode(from buffer: inout ByteBuffer) throws(MTProtoTransportError) -> TransportFrame? {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self) else { return nil }

        if role == .client && first & Self.quickAckFlag != 0 {
            guard let token = buffer.readInteger(endianness: .big, as: UInt32.self) else { return nil }
            return .quickAck(token)
        }

        let quickAckRequested = role == .server && first & Self.quickAckFlag != 0
        let marker = first & ~Self.quickAckFlag
        let headerLength: Int
        let words: Int
        if marker == Self.longFormMarker {
            guard let lengthBytes = buffer.getBytes(at: start + 1, length: 3) else { return nil }
            headerLength = 4
            words = Int(lengthBytes[0]) | Int(lengthBytes[1]) << 8 | Int(lengthBytes[2]) << 16
        } else {
            headerLength = 1
            words = Int(marker)
        }
        let length = words * 4
        try FrameRules.checkAnnouncedLength(length, transport: .abridged, limits: limits)
        guard buffer.readableBytes >= headerLength + length else { return nil }

        guard let payload = buffer.getSlice(at: start + headerLength, length: length) else { return nil }
        buffer.moveReaderIndex(to: start + headerLength + length)
        return FrameRules.inboundFrame(payload: payload, quickAckRequested: quickAckRequested, role: role)
    }
}
