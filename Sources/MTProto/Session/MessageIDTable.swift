/// A table keyed by msg_id for the client session's books, hashed with a multiply-xorshift mix
/// instead of the standard library's SipHash. Its keys are msg_ids this process made (an id the
/// server names only looks one up), so nobody else chooses keys that could be made to collide,
/// which is what SipHash guards against; at 64 calls in flight SipHash on these tables and on
/// request and call numbers was about 6% of the client loop's time (perf, 2026-12-04).
struct MessageIDTable<Value>: Sequence {
    private var storage: [OwnIdentifierKey: Value] = [:]

    init() {}

    subscript(messageID: Int64) -> Value? {
        get { storage[OwnIdentifierKey(messageID)] }
        _modify { yield &storage[OwnIdentifierKey(messageID)] }
    }

    /// Runs `body` on the value of `messageID` where it lies; nil when there is none. Reading a
    /// value out through the subscript copies it, retaining every array it holds.
    mutating func update<R>(_ messageID: Int64, _ body: (inout Value) -> R) -> R? {
        guard let index = storage.index(forKey: OwnIdentifierKey(messageID)) else { return nil }
        return body(&storage.values[index])
    }

    var count: Int { storage.count }
    var isEmpty: Bool { storage.isEmpty }

    @discardableResult
    mutating func removeValue(forKey messageID: Int64) -> Value? {
        storage.removeValue(forKey: OwnIdentifierKey(messageID))
    }

    mutating func reserveCapacity(_ capacity: Int) { storage.reserveCapacity(capacity) }

    mutating func removeAll(where shouldRemove: (_ messageID: Int64, _ value: Value) -> Bool) {
        // Every completed request asks; the table is nearly always empty, and a filter allocates.
        guard !storage.isEmpty else { return }
        storage = storage.filter { !shouldRemove($0.key.rawValue, $0.value) }
    }

    func makeIterator() -> some IteratorProtocol<(key: Int64, value: Value)> {
        storage.lazy.map { (key: $0.key.rawValue, value: $0.value) }.makeIterator()
    }
}

/// An identifier this process made, as a hash key (see `MessageIDTable`): msg_ids, request and
/// call numbers.
struct OwnIdentifierKey: Hashable {
    let rawValue: Int64

    init(_ rawValue: Int64) { self.rawValue = rawValue }

    func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    func _rawHashValue(seed: Int) -> Int { OwnIdentifierHash.mix(UInt64(bitPattern: rawValue), seed: seed) }
}

/// The hash of an identifier this process made (see `MessageIDTable`), for key types of the layers
/// above too (request and call numbers).
public enum OwnIdentifierHash {
    /// murmur3's 64-bit finalizer over the value and the table's seed: every bit of the id moves
    /// the bucket, so msg_ids (multiples of 4, their high half the time) spread evenly.
    @inlinable
    public static func mix(_ value: UInt64, seed: Int) -> Int {
        var x = value ^ UInt64(bitPattern: Int64(seed))
        x = (x ^ (x >> 33)) &* 0xff51_afd7_ed55_8ccd
        x = (x ^ (x >> 33)) &* 0xc4ce_b9fe_1a85_ec53
        x ^= x >> 33
        return Int(bitPattern: UInt(x))
    }
}

extension MessageIDTable: Sendable where Value: Sendable {}
extension OwnIdentifierKey: Sendable {}
