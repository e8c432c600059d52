import MTProtoCrypto
import NIOCore

/// Any of the four framings, chosen at run time (by configuration on a client, by detection on a server).
public enum TransportFraming: MTProtoFraming {
    case abridged(AbridgedFraming)
    case intermediate(IntermediateFraming)
    case paddedIntermediate(PaddedIntermediateFraming)
    case full(FullFraming)

    /// - Parameters:
    ///   - entropy, maximumPadding: used by padded intermediate only.
    ///   - sendsTag: false when an obfuscation header carries the tag (the full transport has none).
    public init(
        kind: TransportKind,
        role: TransportRole,
        limits: TransportLimits = .default,
        entropy: any EntropySource = SystemEntropy(),
        maximumPadding: Int = PaddedIntermediateFraming.maximumPaddingLength,
        sendsTag: Bool = true
    ) {
        switch kind {
        case .abridged: self = .abridged(AbridgedFraming(role: role, limits: limits, sendsTag: sendsTag))
        case .intermediate: self = .intermediate(IntermediateFraming(role: role, limits: limits, sendsTag: sendsTag))
        case .paddedIntermediate:
            self = .paddedIntermediate(
                PaddedIntermediateFraming(role: role, limits: limits, entropy: entropy, maximumPadding: maximumPadding, sendsTag: sendsTag)
            )
        case .full: self = .full(FullFraming(role: role, limits: limits))
        }
    }

    public var kind: TransportKind {
        switch self {
        case .abridged(let framing): framing.kind
        case .intermediate(let framing): framing.kind
        case .paddedIntermediate(let framing): framing.kind
        case .full(let framing): framing.kind
        }
    }

    public var role: TransportRole {
        switch self {
        case .abridged(let framing): framing.role
        case .intermediate(let framing): framing.role
        case .paddedIntermediate(let framing): framing.role
        case .full(let framing): framing.role
        }
    }

    public func maximumEncodedLength(of frame: TransportFrame) -> Int {
        switch self {
        case .abridged(let framing): framing.maximumEncodedLength(of: frame)
        case .intermediate(let framing): framing.maximumEncodedLength(of: frame)
        case .paddedIntermediate(let framing): framing.maximumEncodedLength(of: frame)
        case .full(let framing): framing.maximumEncodedLength(of: frame)
        }
    }

    public mutating func encode(_ frame: TransportFrame, into buffer: inout ByteBuffer) {
        switch self {
        case .abridged(var framing):
            framing.encode(frame, into: &buffer)
            self = .abridged(framing)
        case .intermediate(var framing):
            framing.encode(frame, into: &buffer)
            self = .intermediate(framing)
        case .paddedIntermediate(var framing):
            framing.encode(frame, into: &buffer)
            self = .paddedIntermediate(framing)
        case .full(var framing):
            framing.encode(frame, into: &buffer)
            self = .full(framing)
        }
    }

    public mutating func decode(from buffer: inout ByteBuffer) throws(MTProtoTransportError) -> TransportFrame? {
        switch self {
        case .abridged(var framing):
            defer { self = .abridged(framing) }
            return try framing.decode(from: &buffer)
        case .intermediate(var framing):
            defer { self = .intermediate(framing) }
            return try framing.decode(from: &buffer)
        case .paddedIntermediate(var framing):
            defer { self = .paddedIntermediate(framing) }
            return try framing.decode(from: &buffer)
        case .full(var framing):
            defer { self = .full(framing) }
            return try framing.decode(from: &buffer)
        }
    }
}
