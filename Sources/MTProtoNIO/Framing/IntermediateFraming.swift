import MTProto
import MTProtoCrypto
import NIOCore

/// Intermediate: tag `0xeeeeeeee`; each packet is prefixed by its length as 4 little-endian bytes.
/// The high bit of the length asks for a quick ack (client to server); from a server, a 4-byte word
/// with the high bit set and no payload is the quick ack itself.
public struct IntermediateFraming: MTProtoFraming {
    public let role: TransportRole
    public let limits: TransportLimits
    private var tagPending: Bool

    public var kind: TransportKind { .intermediate }

    /// - Parameter sendsTag: false under obfuscation, whose header carries the tag instead.
    public init(role: TransportRole, limits: TransportLimits = .default, sendsTag: Bool = true) {
        self.role = role
        self.limits = limits
        self.tagPending = role == .client && sendsTag
    }

    public func maximumEncodedLength(of frame: TransportFrame) -> Int {
        IntermediateWire.maximumEncodedLength(of: frame, tagPending: tagPending, maximumPadding: 0)
    }

    public mutating func encode(_ frame: TransportFrame, into buffer: inout ByteBuffer) {
        FrameRules.checkOutbound(frame, role: role)
        if tagPending {
            buffer.writeBytes(TransportKind.intermediate.tag)
            tagPending = false
        }
        IntermediateWire.encode(frame, padding: UnsafeRawBufferPointer(start: nil, count: 0), into: &buffer)
    }

    public mutating func decode(from buffer: inout ByteBuffer) throws(MTProtoTransportError) -> TransportFrame? {
        try IntermediateWire.decode(from: &buffer, role: role, limits: limits, padded: false)
    }
}

/// Padded intermediate: tag `0xdddddddd`; like intermediate, but 0-15 random bytes follow each
/// payload and the length covers them, so packet sizes do not show through obfuscation.
///
/// The receiver cannot tell padding from payload by the frame: the message says where it ends
/// (`PacketLength`: an unencrypted message's length field, an encrypted message's whole AES blocks),
/// so any padding of 0-15 bytes is stripped exactly. A payload whose clear fields cannot tell (a
/// transport error code, garbage) is passed on whole.
public struct PaddedIntermediateFraming: MTProtoFraming {
    public let role: TransportRole
    public let limits: TransportLimits
    /// The most padding bytes added to a packet: the spec's 15 by default. Lower it only for a peer
    /// that strips padding by the frame (`length % 4`, as Telethon does), which copes with 0-3.
    public let maximumPadding: Int
    private var entropy: any EntropySource
    private var tagPending: Bool

    public var kind: TransportKind { .paddedIntermediate }

    /// The spec's most padding bytes after a payload.
    public static let maximumPaddingLength = 15

    /// - Parameters:
    ///   - entropy: where padding lengths and bytes come from; inject a fixed source for tests.
    ///   - maximumPadding: 0...15.
    public init(
        role: TransportRole,
        limits: TransportLimits = .default,
        entropy: any EntropySource = SystemEntropy(),
        maximumPadding: Int = 15,
        sendsTag: Bool = true
    ) {
        precondition((0...15).contains(maximumPadding), "padded intermediate pads 0 to 15 bytes, asked for \(maximumPadding)")
        self.role = role
        self.limits = limits
        self.entropy = entropy
        self.maximumPadding = maximumPadding
        self.tagPending = role == .client && sendsTag
    }

    public func maximumEncodedLength(of frame: TransportFrame) -> Int {
        IntermediateWire.maximumEncodedLength(of: frame, tagPending: tagPending, maximumPadding: maximumPadding)
    }

    public mutating func encode(_ frame: TransportFrame, into buffer: inout ByteBuffer) {
        FrameRules.checkOutbound(frame, role: role)
        if tagPending {
            buffer.writeBytes(TransportKind.paddedIntermediate.tag)
            tagPending = false
        }
        switch frame {
        case .packet, .packetRequestingQuickAck, .transportError:
            // One draw per packet, no larger than needed (the system source costs a syscall per 8
            // bytes): the first byte picks the count, the next ones are the padding.
            withUnsafeTemporaryAllocation(byteCount: 1 + maximumPadding, alignment: 1) { random in
                entropy.fill(random)
                let count = Int(random[0]) % (maximumPadding + 1)
                IntermediateWire.encode(frame, padding: UnsafeRawBufferPointer(rebasing: random[1..<(1 + count)]), into: &buffer)
            }
        case .quickAck:
            // A bare 4-byte word: a length after it would be misread.
            IntermediateWire.encode(frame, padding: UnsafeRawBufferPointer(start: nil, count: 0), into: &buffer)
        }
    }

    public mutating func decode(from buffer: inout ByteBuffer) throws(MTProtoTransportError) -> TransportFrame? {
        try IntermediateWire.decode(from: &buffer, role: role, limits: limits, padded: true)
    }
}

/// The wire format both intermediate framings share.
enum IntermediateWire {
    static func maximumEncodedLength(of frame: TransportFrame, tagPending: Bool, maximumPadding: Int) -> Int {
        let tag = tagPending ? 4 : 0
        switch frame {
        case .packet(let payload), .packetRequestingQuickAck(let payload):
            return tag + 4 + payload.readableBytes + maximumPadding
        case .quickAck:
            return tag + 4
        case .transportError:
            return tag + 8 + maximumPadding
        }
    }

    static func encode(_ frame: TransportFrame, padding: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        switch frame {
        case .packet(var payload):
            buffer.writeInteger(UInt32(payload.readableBytes + padding.count), endianness: .little)
            buffer.writeBuffer(&payload)
        case .packetRequestingQuickAck(var payload):
            buffer.writeInteger(UInt32(payload.readableBytes + padding.count) | FrameRules.quickAckBit, endianness: .little)
            buffer.writeBuffer(&payload)
        case .quickAck(let token):
            buffer.writeInteger(token, endianness: .little)
        case .transportError(let code):
            buffer.writeInteger(UInt32(4 + padding.count), endianness: .little)
            buffer.writeInteger(code.rawValue, endianness: .little)
        }
        buffer.writeBytes(padding)
    }

    static func decode(
        from buffer: inout ByteBuffer,
        role: TransportRole,
        limits: TransportLimits,
        padded: Bool
    ) throws(MTProtoTransportError) -> TransportFrame? {
        let start = buffer.readerIndex
        let transport: TransportKind = padded ? .paddedIntermediate : .intermediate
        guard let word = buffer.getInteger(at: start, endianness: .little, as: UInt32.self) else { return nil }

        let quickAckBitSet = word & FrameRules.quickAckBit != 0
        if role == .client && quickAckBitSet {
            buffer.moveReaderIndex(forwardBy: 4)
            return .quickAck(word)
        }

        let length = Int(word & ~FrameRules.quickAckBit)
        // No payload is shorter than a 4-byte transport error code: fewer bytes are only padding.
        if padded && length > 0 && length < 4 { throw .zeroLength(transport: transport) }
        try FrameRules.checkAnnouncedLength(length, transport: transport, limits: limits, requireMultipleOfFour: !padded)
        guard buffer.readableBytes >= 4 + length,
            var payload = buffer.getSlice(at: start + 4, length: length)
        else { return nil }
        buffer.moveReaderIndex(to: start + 4 + length)
        if padded,
            let messageLength = payload.withUnsafeReadableBytes({ PacketLength.messageLength(in: $0) }),
            length - messageLength <= PaddedIntermediateFraming.maximumPaddingLength
        {
            payload.moveWriterIndex(to: payload.readerIndex + messageLength)
        }
        return FrameRules.inboundFrame(
            payload: payload,
            quickAckRequested: quickAckBitSet,
            role: role,
            errorPacketLimit: padded ? 4 + PaddedIntermediateFraming.maximumPaddingLength : 4
        )
    }
}
