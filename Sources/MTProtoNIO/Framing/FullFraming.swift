import CLibdeflate
import NIOCore

/// Full: no tag; each packet is `length (4, LE, counts all 12 bytes of envelope too) | seq_no (4, LE) |
/// payload | CRC32 (4, LE, over length, seq_no and payload)`. seq_no counts the packets of one
/// direction of one connection from 0, independently of MTProto's own msg_seqno.
///
/// Quick acks travel as a bare 4-byte word with the high bit set (no seq_no, no CRC), as in the
/// intermediate transport. A client also reads a bare negative word from -999 to -1 in place of a
/// length as a transport error: Telegram has been seen sending -429 that way (Telethon issue 4042),
/// and a quick ack collides with that range with a probability of about 1 in 2 million.
public struct FullFraming: MTProtoFraming {
    public let role: TransportRole
    public let limits: TransportLimits
    /// The seq_no the next encoded packet carries.
    public private(set) var nextSendSequenceNumber: Int32 = 0
    /// The seq_no the next decoded packet must carry.
    public private(set) var nextReceiveSequenceNumber: Int32 = 0

    public var kind: TransportKind { .full }

    static let envelopeLength = 12
    private static let bareErrorRange: ClosedRange<Int32> = -999 ... -1

    public init(role: TransportRole, limits: TransportLimits = .default) {
        self.role = role
        self.limits = limits
    }

    public func maximumEncodedLength(of frame: TransportFrame) -> Int {
        switch frame {
        case .packet(let payload), .packetRequestingQuickAck(let payload):
            return Self.envelopeLength + payload.readableBytes
        case .quickAck:
            return 4
        case .transportError:
            return Self.envelopeLength + 4
        }
    }

    public mutating func encode(_ frame: TransportFrame, into buffer: inout ByteBuffer) {
        FrameRules.checkOutbound(frame, role: role)
        switch frame {
        case .packet(let payload):
            writePacket(payload, lengthFlag: 0, into: &buffer)
        case .packetRequestingQuickAck(let payload):
            writePacket(payload, lengthFlag: FrameRules.quickAckBit, into: &buffer)
        case .quickAck(let token):
            buffer.writeInteger(token, endianness: .little)
        case .transportError(let code):
            var payload = ByteBufferAllocator().buffer(capacity: 4)
            payload.writeInteger(code.rawValue, endianness: .little)
            writePacket(payload, lengthFlag: 0, into: &buffer)
        }
    }

    private mutating func writePacket(_ payload: ByteBuffer, lengthFlag: UInt32, into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        buffer.writeInteger(UInt32(Self.envelopeLength + payload.readableBytes) | lengthFlag, endianness: .little)
        buffer.writeInteger(nextSendSequenceNumber, endianness: .little)
        var payload = payload
        buffer.writeBuffer(&payload)
        let checksum = Self.crc32(of: buffer, from: start, count: buffer.writerIndex - start)
        buffer.writeInteger(checksum, endianness: .little)
        nextSendSequenceNumber &+= 1
    }

    public mutating func decode(from buffer: inout ByteBuffer) throws(MTProtoTransportError) -> TransportFrame? {
        let start = buffer.readerIndex
        guard let word = buffer.getInteger(at: start, endianness: .little, as: UInt32.self) else { return nil }

        let quickAckBitSet = word & FrameRules.quickAckBit != 0
        if role == .client && quickAckBitSet {
            buffer.moveReaderIndex(forwardBy: 4)
            let value = Int32(bitPattern: word)
            return Self.bareErrorRange.contains(value) ? .transportError(TransportErrorCode(rawValue: value)) : .quickAck(word)
        }

        let total = Int(word & ~FrameRules.quickAckBit)
        if total == Self.envelopeLength { throw .zeroLength(transport: .full) }
        if total < Self.envelopeLength + 4 { throw .fullFrameTooShort(length: total) }
        try FrameRules.checkAnnouncedLength(total - Self.envelopeLength, transport: .full, limits: limits)
        guard buffer.readableBytes >= total,
            let sequenceNumber = buffer.getInteger(at: start + 4, endianness: .little, as: Int32.self),
            let received = buffer.getInteger(at: start + total - 4, endianness: .little, as: UInt32.self),
            let payload = buffer.getSlice(at: start + 8, length: total - Self.envelopeLength)
        else { return nil }

        let expected = Self.crc32(of: buffer, from: start, count: total - 4)
        guard expected == received else {
            throw .checksumMismatch(sequenceNumber: sequenceNumber, expected: expected, received: received)
        }
        guard sequenceNumber == nextReceiveSequenceNumber else {
            throw .unexpectedSequenceNumber(expected: nextReceiveSequenceNumber, received: sequenceNumber)
        }
        nextReceiveSequenceNumber &+= 1
        buffer.moveReaderIndex(to: start + total)
        return FrameRules.inboundFrame(payload: payload, quickAckRequested: quickAckBitSet, role: role)
    }

    /// CRC-32 (zlib's, the same as Python's `zlib.crc32`; libdeflate's implementation, which uses
    /// carry-less multiplication where the CPU has it, when it is on the machine) over `count` bytes from `index`.
    static func crc32(of buffer: ByteBuffer, from index: Int, count: Int) -> UInt32 {
        buffer.withUnsafeReadableBytes { bytes in
            let base = index - buffer.readerIndex
            let region = UnsafeRawBufferPointer(rebasing: bytes[base..<(base + count)])
            return tgsm_crc32(0, region.baseAddress, region.count)
        }
    }
}
