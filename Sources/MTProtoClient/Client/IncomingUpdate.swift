import TL
import TLSchema

/// A message a DC sent on its own (not an answer): in practice an `Updates` object. Handed to
/// `TelegramClientConfiguration.updatesHandler` as received, undecoded, so a consumer can store
/// the raw bytes or decode them lazily.
public struct IncomingUpdate: Sendable, Hashable {
    /// The DC whose connection carried it.
    public let dc: Int
    /// The serialized TL object, gzip already inflated.
    public let body: [UInt8]

    public init(dc: Int, body: [UInt8]) {
        self.dc = dc
        self.body = body
    }

    /// Decodes the body as `Updates` (updateShort, updates, updatesTooLong...).
    public func decodeUpdates() throws(TelegramError) -> Api.Updates {
        do {
            var reader = TLReader(body)
            return try Api.Updates(from: &reader)
        } catch {
            throw .undecodableResult(method: "(update from DC \(dc))", reason: "\(error)")
        }
    }
}
