import FuzzSupport
import MTProtoCrypto
import MTProtoNIO
import NIOCore

// Feeds arbitrary bytes to the transport layer a server or client reads from a socket: the four
// framings in both roles, the server's transport detector, and the obfuscated stream (header
// acceptance, then AES-CTR, then framing).
//
// Input layout: byte 0 picks the mode, byte 1 seeds the chunking, the rest is the stream.
//   modes 0-7: framing (abridged, intermediate, padded intermediate, full) x role (client, server)
//   mode 8:    the server's `TransportDetector`
//   mode 9:    an honest obfuscated header for an input-chosen transport, then the stream encrypted
//              with the client's cipher; the server must read exactly what plain decoding reads
//   mode 10:   the first 64 bytes as a header the server accepts or refuses (with and without an
//              MTProxy secret), then the rest decrypted and decoded as the accepted transport
// Properties: nothing traps; decoding in random-sized chunks gives the same frames and the same
// error as decoding the whole stream at once; a decoded frame re-encoded by the other side decodes
// to the same frame; every error has a description.

/// Small limits as well as the default: a 1 KiB cap reaches the too-long path with short inputs.
let smallLimits = TransportLimits(maximumFrameLength: 1024)

func makeFraming(_ kind: TransportKind, role: TransportRole, limits: TransportLimits) -> any MTProtoFraming {
    switch kind {
    case .abridged: AbridgedFraming(role: role, limits: limits, sendsTag: false)
    case .intermediate: IntermediateFraming(role: role, limits: limits, sendsTag: false)
    case .paddedIntermediate: PaddedIntermediateFraming(role: role, limits: limits, entropy: FuzzEntropy(seed: 7), sendsTag: false)
    case .full: FullFraming(role: role, limits: limits)
    }
}

enum Outcome: Equatable {
    case frames([TransportFrame], error: MTProtoTransportError?)
}

/// Decodes `stream`, fed in chunks whose sizes come from `seed` (0: all at once), until the input
/// ends or the framing throws (a stream that broke its framing is closed, so nothing after counts).
func decodeAll(_ stream: [UInt8], kind: TransportKind, role: TransportRole, limits: TransportLimits, seed: UInt8) -> Outcome {
    var framing = makeFraming(kind, role: role, limits: limits)
    var buffer = ByteBuffer()
    var frames: [TransportFrame] = []
    var offset = 0
    var chunkSeed = UInt64(seed)
    while offset < stream.count {
        let chunk: Int
        if seed == 0 {
            chunk = stream.count
        } else {
            chunkSeed = chunkSeed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            chunk = 1 + Int(chunkSeed >> 33) % 37
        }
        let end = min(stream.count, offset + chunk)
        buffer.writeBytes(stream[offset..<end])
        offset = end
        do {
            while let frame = try framing.decode(from: &buffer) {
                frames.append(frame)
                if frames.count > 4096 { return .frames(frames, error: nil) }
            }
        } catch {
            precondition(!error.description.isEmpty, "a transport error without a description")
            return .frames(frames, error: error)
        }
    }
    return .frames(frames, error: nil)
}

/// Whether the other side may send `frame` (what `encode` accepts; a decoder may hand up payloads
/// an encoder refuses, e.g. padded intermediate's unparsed padding, which are not re-encoded).
func encodable(_ frame: TransportFrame, by sender: TransportRole) -> Bool {
    switch frame {
    case .packet(let payload):
        return payload.readableBytes > 0 && payload.readableBytes % 4 == 0
    case .packetRequestingQuickAck(let payload):
        return sender == .client && payload.readableBytes > 0 && payload.readableBytes % 4 == 0
    case .quickAck(let token):
        return sender == .server && token & 0x8000_0000 != 0
    case .transportError:
        return sender == .server
    }
}

func checkReencoding(_ frames: [TransportFrame], kind: TransportKind, decoderRole: TransportRole) {
    // Padding is random and stays in the payload when it does not parse as a message length, so a
    // padded frame does not survive re-encoding byte for byte.
    guard kind != .paddedIntermediate else { return }
    let sender: TransportRole = decoderRole == .client ? .server : .client
    var encoder = makeFraming(kind, role: sender, limits: .default)
    var decoder = makeFraming(kind, role: decoderRole, limits: .default)
    var buffer = ByteBuffer()
    var sent: [TransportFrame] = []
    for frame in frames where encodable(frame, by: sender) {
        encoder.encode(frame, into: &buffer)
        sent.append(frame)
    }
    var received: [TransportFrame] = []
    do {
        while let frame = try decoder.decode(from: &buffer) { received.append(frame) }
    } catch {
        preconditionFailure("re-encoded frames do not decode: \(error)")
    }
    precondition(received == sent, "re-encoded frames decode differently")
    precondition(buffer.readableBytes == 0, "re-encoded frames leave bytes behind")
}

func fuzzFraming(kind: TransportKind, role: TransportRole, stream: [UInt8], seed: UInt8) {
    for limits in [TransportLimits.default, smallLimits] {
        let whole = decodeAll(stream, kind: kind, role: role, limits: limits, seed: 0)
        let chunked = decodeAll(stream, kind: kind, role: role, limits: limits, seed: seed | 1)
        precondition(whole == chunked, "chunked decoding differs from whole decoding")
        if case .frames(let frames, _) = whole { checkReencoding(frames, kind: kind, decoderRole: role) }
    }
}

func fuzzDetector(stream: [UInt8]) {
    func detect(bytewise: Bool) -> Result<(TransportKind?, Int), MTProtoTransportError> {
        var detector = TransportDetector()
        var buffer = ByteBuffer()
        let steps = bytewise ? stream.map { [$0] } : [stream]
        for step in steps {
            buffer.writeBytes(step)
            do {
                if let kind = try detector.detect(from: &buffer) { return .success((kind, buffer.readerIndex)) }
            } catch {
                precondition(!error.description.isEmpty, "a detector error without a description")
                return .failure(error)
            }
        }
        return .success((nil, 0))
    }
    switch (detect(bytewise: false), detect(bytewise: true)) {
    case (.success(let whole), .success(let bytewise)):
        precondition(whole.0 == bytewise.0 && whole.1 == bytewise.1, "the detector depends on how bytes arrive")
    case (.failure(let whole), .failure(let bytewise)):
        precondition(whole == bytewise, "the detector fails differently depending on how bytes arrive")
    default:
        preconditionFailure("the detector depends on how bytes arrive")
    }
}

let obfuscatable: [TransportKind] = [.abridged, .intermediate, .paddedIntermediate]

func fuzzHonestObfuscation(stream: [UInt8], seed: UInt8) {
    guard let selector = stream.first else { return }
    let kind = obfuscatable[Int(selector) % obfuscatable.count]
    let secret: [UInt8]? = selector & 0x80 != 0 ? Array(repeating: selector, count: 16) : nil
    var entropy = FuzzEntropy(seed: UInt64(seed))
    let client: (header: [UInt8], ciphers: ObfuscationCiphers)
    do {
        client = try ObfuscationHeader.makeClientHeader(kind: kind, dcID: Int16(selector), secret: secret, entropy: &entropy)
    } catch {
        preconditionFailure("an obfuscatable transport was refused: \(error)")
    }
    precondition(ObfuscationHeader.isAcceptable(client.header), "a client header the server would misread")
    let accepted: ObfuscationHeader.Accepted
    do {
        accepted = try ObfuscationHeader.acceptClientHeader(client.header, secret: secret)
    } catch {
        preconditionFailure("an honest header was refused: \(error)")
    }
    precondition(accepted.kind == kind && accepted.dcID == Int16(selector), "the server read another transport or DC")
    let plain = Array(stream.dropFirst())
    let onTheWire = client.ciphers.encryptor.applied(to: plain)
    let decrypted = accepted.ciphers.decryptor.applied(to: onTheWire)
    precondition(decrypted == plain, "the server's stream differs from the client's")
    let direct = decodeAll(plain, kind: kind, role: .server, limits: .default, seed: seed)
    let throughObfuscation = decodeAll(decrypted, kind: kind, role: .server, limits: .default, seed: seed)
    precondition(direct == throughObfuscation, "obfuscation changed what the server decodes")
    // And the other direction: what the server sends, the client reads.
    let serverSent = accepted.ciphers.encryptor.applied(to: plain)
    precondition(client.ciphers.decryptor.applied(to: serverSent) == plain, "the client's stream differs from the server's")
}

func fuzzHostileObfuscation(stream: [UInt8], seed: UInt8) {
    guard stream.count >= ObfuscationHeader.length else {
        do {
            _ = try ObfuscationHeader.acceptClientHeader(stream, secret: nil)
            preconditionFailure("a short header was accepted")
        } catch {
            precondition(!error.description.isEmpty, "an obfuscation error without a description")
        }
        return
    }
    let header = Array(stream[0..<ObfuscationHeader.length])
    let rest = Array(stream[ObfuscationHeader.length...])
    for secret in [nil, Array(header[0..<16])] {
        do {
            let accepted = try ObfuscationHeader.acceptClientHeader(header, secret: secret)
            let decrypted = accepted.ciphers.decryptor.applied(to: rest)
            fuzzFraming(kind: accepted.kind, role: .server, stream: decrypted, seed: seed)
        } catch {
            precondition(!error.description.isEmpty, "an obfuscation error without a description")
        }
    }
}

runFuzzer { bytes in
    guard bytes.count >= 2 else { return }
    let mode = Int(bytes[0]) % 11
    let seed = bytes[1]
    let stream = Array(bytes[2...])
    switch mode {
    case 0..<8:
        let kind = TransportKind.allCases[mode % 4]
        fuzzFraming(kind: kind, role: mode < 4 ? .client : .server, stream: stream, seed: seed)
    case 8:
        fuzzDetector(stream: stream)
    case 9:
        fuzzHonestObfuscation(stream: stream, seed: seed)
    default:
        fuzzHostileObfuscation(stream: stream, seed: seed)
    }
}
