import MTProtoCrypto

/// One MTProto message as the session layer sees it: `message msg_id:long seqno:int bytes:int body:Object`,
/// whether it travels alone inside the encrypted envelope or inside a msg_container.
public struct SessionMessage: Sendable, Hashable {
    public var messageID: Int64
    public var seqNo: Int32
    public var body: [UInt8]

    public init(messageID: Int64, seqNo: Int32, body: [UInt8]) {
        self.messageID = messageID
        self.seqNo = seqNo
        self.body = body
    }

    /// Odd seq_no: the receiver must acknowledge it.
    public var isContentRelated: Bool { seqNo & 1 == 1 }

    /// The body as both roles read it: gzip_packed inflated (bounded by `inflateLimit`), then
    /// classified. A container can only stand at the top of a packet; one that arrives gzip'd or as a
    /// container's element would smuggle messages past the container checks, so it is refused here.
    func unwrappedBody(inflateLimit: Int) throws(SessionError) -> (body: [UInt8], service: ServiceMessage) {
        var body = self.body
        if WireConstructor.of(body) == WireConstructor.gzipPacked {
            body = try GzipPacked.unpack(body, limit: inflateLimit)
        }
        if WireConstructor.of(body) == WireConstructor.messageContainer {
            throw .nestedContainer(messageID: messageID)
        }
        return (body, try ServiceMessage.decode(body))
    }
}

/// The encrypted envelope: salt, session_id and one message, sealed with MessageCrypto.
enum Envelope {
    static func seal(
        _ message: SessionMessage, salt: Int64, sessionID: Int64, authKey: AuthKey, direction: Direction,
        entropy: inout any EntropySource, maxExtraPaddingBlocks: Int
    ) -> [UInt8] {
        // A few random extra padding blocks blur the length of small service messages.
        var extra = 0
        if maxExtraPaddingBlocks > 0 {
            var random: UInt8 = 0
            withUnsafeMutableBytes(of: &random) { entropy.fill($0) }
            extra = Int(random) % (maxExtraPaddingBlocks + 1)
        }
        return MessageCrypto.encryptMessage(
            salt: salt, sessionID: sessionID, messageID: message.messageID, seqNo: message.seqNo, body: message.body,
            authKey: authKey, direction: direction, entropy: &entropy, extraPaddingBlocks: extra)
    }

    static func open(_ packet: [UInt8], authKey: AuthKey, direction: Direction) throws(SessionError) -> DecryptedMessage {
        do {
            return try MessageCrypto.decryptMessage(packet, authKey: authKey, direction: direction)
        } catch {
            throw .undecryptable(error)
        }
    }
}

/// msg_container#73f1f8dc messages:vector<message>: packing and unpacking, with the spec's limits.
public enum MessageContainer {
    /// "MTProto container can have at most 1024 messages" (mtproto/service_messages).
    public static let maxMessages = 1024
    /// Telegram rejects containers (and messages) past about 1 MiB; packing stays under it.
    public static let maxBytes = 1 << 20
    /// msg_id + seqno + bytes before each inner body.
    static let perMessageOverhead = 16
    /// constructor + count.
    static let headerBytes = 8

    public static func encode(_ messages: [SessionMessage]) -> [UInt8] {
        var writer = WireWriter(capacity: headerBytes + messages.reduce(0) { $0 + perMessageOverhead + $1.body.count })
        writer.write(WireConstructor.messageContainer)
        writer.write(Int32(messages.count))
        for message in messages {
            writer.write(message.messageID)
            writer.write(message.seqNo)
            writer.write(Int32(message.body.count))
            writer.writeRaw(message.body)
        }
        return writer.bytes
    }

    /// Splits a container (constructor included) into its messages. The container is rejected as a
    /// whole when it breaks a rule, as the spec says a container is accepted or rejected as one.
    public static func decode(_ body: [UInt8], containerID: Int64) throws(SessionError) -> [SessionMessage] {
        var reader = WireReader(body)
        do {
            guard try reader.readUInt32() == WireConstructor.messageContainer else {
                throw SessionError.invalidContainer(messageID: containerID, reason: "not a msg_container")
            }
            let count = try reader.readInt32()
            guard count >= 0, Int(count) <= maxMessages, Int(count) <= reader.remaining / perMessageOverhead else {
                throw SessionError.invalidContainer(messageID: containerID, reason: "\(count) messages (at most \(maxMessages))")
            }
            var messages: [SessionMessage] = []
            messages.reserveCapacity(Int(count))
            for _ in 0..<count {
                let messageID = try reader.readInt64()
                let seqNo = try reader.readInt32()
                let length = try reader.readInt32()
                guard length >= 0, length % 4 == 0, Int(length) <= reader.remaining else {
                    throw SessionError.invalidContainer(messageID: containerID, reason: "inner message \(messageID) declares \(length) bytes")
                }
                let inner = try reader.readRaw(Int(length))
                if WireConstructor.of(inner) == WireConstructor.messageContainer {
                    throw SessionError.nestedContainer(messageID: containerID)
                }
                guard messageID < containerID else {
                    throw SessionError.invalidContainer(messageID: containerID, reason: "inner msg_id \(messageID) is not below the container's")
                }
                messages.append(SessionMessage(messageID: messageID, seqNo: seqNo, body: inner))
            }
            guard reader.isAtEnd else {
                throw SessionError.invalidContainer(messageID: containerID, reason: "\(reader.remaining) bytes after the last message")
            }
            return messages
        } catch let error as SessionError {
            throw error
        } catch {
            throw SessionError.invalidContainer(messageID: containerID, reason: "truncated (\(error))")
        }
    }

    /// Groups bodies of the given sizes, in order, into runs that each fit one container: at most
    /// `maxCount` messages and `maxBytes` serialized. A body too large for any container gets a run
    /// of its own (it travels alone).
    public static func plan(bodySizes: [Int], maxCount: Int = maxMessages, maxBytes: Int = maxBytes) -> [Range<Int>] {
        precondition(maxCount > 0 && maxBytes > headerBytes, "container limits must leave room for a message")
        var runs: [Range<Int>] = []
        var start = 0
        var bytes = headerBytes
        for (index, size) in bodySizes.enumerated() {
            let cost = perMessageOverhead + size
            if index > start, index - start >= maxCount || bytes + cost > maxBytes {
                runs.append(start..<index)
                start = index
                bytes = headerBytes
            }
            bytes += cost
        }
        if start < bodySizes.count { runs.append(start..<bodySizes.count) }
        return runs
    }
}
