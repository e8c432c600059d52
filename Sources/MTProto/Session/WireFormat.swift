/// Little-endian TL primitives for the hand-parsed parts of the encrypted layer: the envelope, and the
/// service constructors whose `Object` fields (message, msg_container, rpc_result, gzip_packed) carry
/// a length the schema cannot express. Every read is bounds-checked: the bytes come from the network.
struct WireReader {
    let bytes: [UInt8]
    private(set) var offset: Int
    let end: Int

    init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        self.bytes = bytes
        self.offset = range?.lowerBound ?? 0
        self.end = range?.upperBound ?? bytes.count
    }

    var remaining: Int { end - offset }
    var isAtEnd: Bool { offset >= end }

    mutating func readUInt32() throws(WireError) -> UInt32 {
        guard remaining >= 4 else { throw .truncated(needed: 4, available: remaining) }
        var value: UInt32 = 0
        for index in 0..<4 { value |= UInt32(bytes[offset + index]) << (8 * UInt32(index)) }
        offset += 4
        return value
    }

    mutating func readInt32() throws(WireError) -> Int32 { Int32(bitPattern: try readUInt32()) }

    mutating func readInt64() throws(WireError) -> Int64 {
        guard remaining >= 8 else { throw .truncated(needed: 8, available: remaining) }
        var value: UInt64 = 0
        for index in 0..<8 { value |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
        offset += 8
        return Int64(bitPattern: value)
    }

    mutating func readRaw(_ count: Int) throws(WireError) -> [UInt8] {
        guard count >= 0, remaining >= count else { throw .truncated(needed: count, available: remaining) }
        let slice = Array(bytes[offset..<(offset + count)])
        offset += count
        return slice
    }

    /// TL `bytes`/`string`: a 1-byte length (or 254 + 3-byte length), the data, zero padding to 4.
    mutating func readBytes() throws(WireError) -> [UInt8] {
        guard remaining >= 1 else { throw .truncated(needed: 1, available: 0) }
        var length = Int(bytes[offset])
        var header = 1
        if length == 254 {
            guard remaining >= 4 else { throw .truncated(needed: 4, available: remaining) }
            length = Int(bytes[offset + 1]) | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3]) << 16
            header = 4
        } else if length == 255 {
            throw .invalidLength(255)
        }
        let padded = (header + length + 3) & ~3
        guard remaining >= padded else { throw .truncated(needed: padded, available: remaining) }
        let data = Array(bytes[(offset + header)..<(offset + header + length)])
        offset += padded
        return data
    }

    /// Boxed `Vector<long>`, with the element count checked against what is left before allocating.
    mutating func readLongVector() throws(WireError) -> [Int64] {
        let constructor = try readUInt32()
        guard constructor == WireConstructor.vector else { throw .unexpectedConstructor(constructor) }
        return try readBareLongVector()
    }

    mutating func readBareLongVector() throws(WireError) -> [Int64] {
        let count = try readInt32()
        guard count >= 0, Int(count) <= remaining / 8 else { throw .invalidLength(Int(count)) }
        var result: [Int64] = []
        result.reserveCapacity(Int(count))
        for _ in 0..<count { result.append(try readInt64()) }
        return result
    }
}

struct WireWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func write(_ value: UInt32) {
        for index in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt32(index)))) }
    }

    mutating func write(_ value: Int32) { write(UInt32(bitPattern: value)) }

    mutating func write(_ value: Int64) {
        let raw = UInt64(bitPattern: value)
        for index in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: raw >> (8 * UInt64(index)))) }
    }

    mutating func writeRaw<C: Collection>(_ data: C) where C.Element == UInt8 { bytes.append(contentsOf: data) }

    mutating func writeBytes<C: Collection>(_ data: C) where C.Element == UInt8 {
        let length = data.count
        precondition(length < 1 << 24, "TL bytes longer than 16 MiB")
        var header = 1
        if length < 254 {
            bytes.append(UInt8(length))
        } else {
            bytes.append(254)
            bytes.append(UInt8(truncatingIfNeeded: length))
            bytes.append(UInt8(truncatingIfNeeded: length >> 8))
            bytes.append(UInt8(truncatingIfNeeded: length >> 16))
            header = 4
        }
        bytes.append(contentsOf: data)
        let padding = (4 - (header + length) % 4) % 4
        bytes.append(contentsOf: repeatElement(0, count: padding))
    }

    mutating func writeLongVector(_ values: [Int64]) {
        write(WireConstructor.vector)
        write(Int32(values.count))
        for value in values { write(value) }
    }
}

enum WireError: Error, Equatable {
    case truncated(needed: Int, available: Int)
    case invalidLength(Int)
    case unexpectedConstructor(UInt32)
}

/// Constructor ids of the service layer (Schema/mtproto.tl) that the session reads or writes itself.
enum WireConstructor {
    static let vector: UInt32 = 0x1cb5_c415
    static let messageContainer: UInt32 = 0x73f1_f8dc
    static let messageCopy: UInt32 = 0xe060_46b2
    static let gzipPacked: UInt32 = 0x3072_cfa1
    static let rpcResult: UInt32 = 0xf35c_6d01
    static let rpcError: UInt32 = 0x2144_ca19
    static let msgsAck: UInt32 = 0x62d6_b459
    static let badMsgNotification: UInt32 = 0xa7ef_f811
    static let badServerSalt: UInt32 = 0xedab_447b
    static let msgsStateReq: UInt32 = 0xda69_fb52
    static let msgsStateInfo: UInt32 = 0x04de_b57d
    static let msgsAllInfo: UInt32 = 0x8cc0_d131
    static let msgDetailedInfo: UInt32 = 0x276d_3ec6
    static let msgNewDetailedInfo: UInt32 = 0x809d_b6df
    static let msgResendReq: UInt32 = 0x7d86_1a08
    static let msgResendAnsReq: UInt32 = 0x8610_baeb
    static let futureSalt: UInt32 = 0x0949_d9dc
    static let futureSalts: UInt32 = 0xae50_0895
    static let pong: UInt32 = 0x3477_73c5
    static let ping: UInt32 = 0x7abe_77ec
    static let pingDelayDisconnect: UInt32 = 0xf342_7b8c
    static let destroySessionOK: UInt32 = 0xe220_45fc
    static let destroySessionNone: UInt32 = 0x62d3_50c9
    static let destroySession: UInt32 = 0xe751_2126
    static let newSessionCreated: UInt32 = 0x9ec2_0908
    static let httpWait: UInt32 = 0x9299_359f
    static let getFutureSalts: UInt32 = 0xb921_bd04
    static let rpcDropAnswer: UInt32 = 0x58e4_a740
    static let rpcAnswerUnknown: UInt32 = 0x5e2a_d36e
    static let rpcAnswerDroppedRunning: UInt32 = 0xcd78_e586
    static let rpcAnswerDropped: UInt32 = 0xa43a_d8b7

    /// The first four bytes of a serialized object, or nil when there are fewer.
    static func of(_ body: [UInt8]) -> UInt32? {
        guard body.count >= 4 else { return nil }
        return UInt32(body[0]) | UInt32(body[1]) << 8 | UInt32(body[2]) << 16 | UInt32(body[3]) << 24
    }
}
