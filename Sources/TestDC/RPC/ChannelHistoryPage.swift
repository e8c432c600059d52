import TL
import TLSchema

/// A channel's history page (messages.channelMessages) written straight from the world. Built from
/// `Api` values, each of the page's messages was an `Api.Message` object of some forty fields,
/// made, encoded and freed again: two thirds of the DC's CPU for a 100-message getHistory, which the
/// sandbox, the soak and every history benchmark pay. The chats and users still go through the
/// generated encoders; `ChannelHistoryPageTests` holds the bytes equal to the generated encoding of
/// the `Api` values `DCState.apiMessage(_:in:)` makes.
enum ChannelHistoryPage {
    static func serialized(
        pts: Int32, count: Int32, messages: [World.Message], channel: World.Channel, chats: [Api.Chat], users: [Api.User]
    ) -> [UInt8] {
        let textBytes = messages.reduce(0) { $0 + $1.text.utf8.count }
        var writer = TLWriter(capacity: 512 + messages.count * 72 + textBytes)
        writer.writeConstructorID(Api.messages.Messages.ChannelMessages.constructorID)
        // flags: not inexact, no offset_id_offset.
        writer.writeUInt32(0)
        writer.writeInt32(pts)
        writer.writeInt32(count)
        writer.writeVectorHeader(count: messages.count)
        for message in messages { write(message, in: channel, to: &writer) }
        // topics: none.
        writer.writeVectorHeader(count: 0)
        chats.encode(to: &writer)
        users.encode(to: &writer)
        return writer.takeBytes()
    }

    /// message#7600b9d3 with the fields `DCState.apiMessage(_:in:)` sets: post, from_id, peer_id,
    /// date, message, edit_date.
    static func write(_ message: World.Message, in channel: World.Channel, to writer: inout TLWriter) {
        var flags: UInt32 = 0
        if message.fromID != nil { flags |= 1 << 8 }
        if channel.broadcast { flags |= 1 << 14 }
        if message.editDate != nil { flags |= 1 << 15 }
        writer.writeConstructorID(Api.Message.Message.constructorID)
        writer.writeUInt32(flags)
        // flags2: none.
        writer.writeUInt32(0)
        writer.writeInt32(message.id)
        if let author = message.fromID {
            writer.writeConstructorID(Api.Peer.PeerUser.constructorID)
            writer.writeInt64(author)
        }
        writer.writeConstructorID(Api.Peer.PeerChannel.constructorID)
        writer.writeInt64(channel.id)
        writer.writeInt32(message.date)
        writer.writeString(message.text)
        if let edited = message.editDate { writer.writeInt32(edited) }
    }
}
