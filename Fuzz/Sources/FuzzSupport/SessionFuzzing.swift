// Shared pieces of the fuzzers: a deterministic entropy source and the builder of packets that
// pass the envelope checks, so fuzzing reaches the session logic instead of dying at msg_key.

import MTProtoCrypto

/// xorshift-style counter entropy: deterministic, so a saved crash replays identically.
public struct FuzzEntropy: EntropySource {
    public var state: UInt64

    public init(seed: UInt64) { state = seed | 1 }

    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        for index in 0..<buffer.count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            buffer[index] = UInt8(truncatingIfNeeded: state)
        }
    }
}

/// Reads an input front to back; past the end it yields zeros, so every input is usable.
public struct FuzzInput {
    public let bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var remaining: [UInt8] { offset < bytes.count ? Array(bytes[offset...]) : [] }

    public mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func uint16() -> Int { Int(byte()) | Int(byte()) << 8 }

    public mutating func int32() -> Int32 {
        Int32(bitPattern: UInt32(byte()) | UInt32(byte()) << 8 | UInt32(byte()) << 16 | UInt32(byte()) << 24)
    }

    public mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, offset + max(0, count))
        defer { offset = max(offset, end) }
        return offset < end ? Array(bytes[offset..<end]) : []
    }
}

/// Little-endian plaintext header: salt, session_id, msg_id, seq_no, message_data_length.
public func plaintextHeader(salt: Int64, sessionID: Int64, messageID: Int64, seqNo: Int32, length: Int32) -> [UInt8] {
    var out: [UInt8] = []
    for value in [UInt64(bitPattern: salt), UInt64(bitPattern: sessionID), UInt64(bitPattern: messageID)] {
        for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
    for value in [UInt32(bitPattern: seqNo), UInt32(bitPattern: length)] {
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }
    return out
}

/// Splits `body` into up to 8 pieces (lengths rounded down to 4) for a msg_container's messages.
public func pieces(of body: [UInt8], using input: inout FuzzInput) -> [[UInt8]] {
    var result: [[UInt8]] = []
    var rest = body[...]
    let count = Int(input.byte() % 8) + 1
    for index in 0..<count where !rest.isEmpty {
        let size = index == count - 1 ? rest.count : min(rest.count, Int(input.byte()) * 4)
        let aligned = size & ~3
        result.append(Array(rest.prefix(aligned)))
        rest = rest.dropFirst(size)
    }
    return result
}
