/// Whether bytes are well-formed UTF-8 (the Unicode Standard's table 3-7), so a `String` can be
/// made of them without the standard library validating them again (`TLReader.readString`).
///
/// Why not the standard library's own check: on random mixed-width text (a history in Cyrillic,
/// CJK and emoji) it branches on every scalar and took 42% of decoding a 100-message history on
/// our Xeon host, 3.8 ns per byte; this DFA takes no branch per byte. Everything it accepts must be
/// valid: a `String` made unchecked of invalid bytes breaks the type's memory-safety invariant.
/// `UTF8ValidationTests` holds it to `String(validating:)` on every 1- and 2-byte sequence, every
/// 3-byte one that starts as a 3-byte scalar does, and every second byte after F0-F4.
@usableFromInline
enum UTF8Validation {
    /// Each state is the bit offset of its 6-bit field in a byte's row; a row holds, for every
    /// state, the state after that byte. So one step is a shift that depends only on the byte's
    /// row and the state, not a load that waits for the state (Per Vognsen's shift-based DFA).
    private enum State: UInt64, CaseIterable {
        case accept = 0
        case reject = 6
        /// One continuation byte (80-BF) left.
        case oneLeft = 12
        /// Two continuation bytes left.
        case twoLeft = 18
        /// After E0: A0-BF (no overlong 3-byte form), then one more.
        case afterE0 = 24
        /// After ED: 80-9F (no surrogates), then one more.
        case afterED = 30
        /// After F0: 90-BF (no overlong 4-byte form), then two more.
        case afterF0 = 36
        /// After F1-F3: 80-BF, then two more.
        case afterF1toF3 = 42
        /// After F4: 80-8F (nothing above U+10FFFF), then two more.
        case afterF4 = 48
    }

    private static func next(_ state: State, _ byte: UInt8) -> State {
        let continuation = (0x80...0xBF).contains(byte)
        switch state {
        case .accept:
            switch byte {
            case 0x00...0x7F: return .accept
            case 0xC2...0xDF: return .oneLeft
            case 0xE0: return .afterE0
            case 0xE1...0xEC, 0xEE...0xEF: return .twoLeft
            case 0xED: return .afterED
            case 0xF0: return .afterF0
            case 0xF1...0xF3: return .afterF1toF3
            case 0xF4: return .afterF4
            default: return .reject
            }
        case .reject: return .reject
        case .oneLeft: return continuation ? .accept : .reject
        case .twoLeft: return continuation ? .oneLeft : .reject
        case .afterE0: return (0xA0...0xBF).contains(byte) ? .oneLeft : .reject
        case .afterED: return (0x80...0x9F).contains(byte) ? .oneLeft : .reject
        case .afterF0: return (0x90...0xBF).contains(byte) ? .twoLeft : .reject
        case .afterF1toF3: return continuation ? .twoLeft : .reject
        case .afterF4: return (0x80...0x8F).contains(byte) ? .twoLeft : .reject
        }
    }

    /// Row `b`: bits `s..<s+6` hold the state after byte `b` in state `s`.
    private static let rows: [UInt64] = (0...255).map { byte in
        State.allCases.reduce(UInt64(0)) { row, state in row | next(state, UInt8(byte)).rawValue << state.rawValue }
    }

    @usableFromInline
    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let count = bytes.count
        var index = 0
        // An ASCII prefix (names, links, most English text) 8 bytes at a time.
        while count - index >= 8, base.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
            index += 8
        }
        return rows.withUnsafeBufferPointer { rows in
            // `&>>` shifts by the low 6 bits, the state's field, so the other bits can stay: no
            // mask between two steps.
            var state = State.accept.rawValue
            while index < count {
                state = rows[Int(base.load(fromByteOffset: index, as: UInt8.self))] &>> state
                index += 1
            }
            return state & 63 == State.accept.rawValue
        }
    }
}
