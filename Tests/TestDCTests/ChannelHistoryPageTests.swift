import TL
import TLSchema
import Testing
@testable import TestDC

/// The hand-written page must stay byte for byte what the generated encoders make of the same
/// `Api` values (a schema update that moves a field fails here, not in a client).
@Suite struct ChannelHistoryPageTests {
    @Test(arguments: [true, false])
    func thePageIsTheGeneratedEncodingOfTheSameApiValues(broadcast: Bool) {
        var edited = World.Message(id: 3, fromID: 1001, date: 1_700_000_003, text: "edited, with an author: ünïcödé 🙂")
        edited.editDate = 1_700_000_100
        var editedPost = World.Message(id: 4, date: 1_700_000_004, text: "")
        editedPost.editDate = 1_700_000_200
        let messages = [
            World.Message(id: 1, date: 1_700_000_001, text: "a post"),
            World.Message(id: 2, fromID: 1002, date: 1_700_000_002, text: String(repeating: "long text ", count: 40)),
            edited, editedPost,
        ]
        let channel = World.Channel(
            id: 3001, accessHash: 0x3001, title: "T", username: "t", broadcast: broadcast, creatorID: 1001, messages: messages)
        let state = DCState.forTests()
        let chats = [state.apiChannel(channel)]
        let users = state.apiUsers([1001, 1002], viewer: 1001)
        let expected = Api.messages.Messages.channelMessages(Api.messages.Messages.ChannelMessages(
            pts: 9, count: 150, messages: messages.map { state.apiMessage($0, in: channel) }, topics: [], chats: chats, users: users
        )).serialized()
        #expect(ChannelHistoryPage.serialized(pts: 9, count: 150, messages: messages, channel: channel, chats: chats, users: users) == expected)
    }

    @Test func anEmptyPageToo() {
        let channel = World.Channel(id: 5, accessHash: 6, title: "empty")
        let state = DCState.forTests()
        let expected = Api.messages.Messages.channelMessages(Api.messages.Messages.ChannelMessages(
            pts: 1, count: 0, messages: [], topics: [], chats: [state.apiChannel(channel)], users: [])).serialized()
        #expect(ChannelHistoryPage.serialized(pts: 1, count: 0, messages: [], channel: channel, chats: [state.apiChannel(channel)], users: []) == expected)
    }
}
