import NIOCore

/// A serialized `Updates` for one connection's session, sent through its pipeline as a user
/// event so the handler seals it on its own event loop.
struct ServerPush: Sendable {
    let body: [UInt8]
}

extension TestDCCore {
    /// Sends the pushes the last calls queued to the live connections they are for. A `dropUpdates`
    /// fault rule may swallow a push for one connection; the event stays in the box for getDifference.
    public func deliverPushes() {
        let pushes = withState { $0.takeOutbox() }
        guard !pushes.isEmpty else { return }
        let live = liveConnections
        for push in pushes {
            for connection in live {
                guard let keyID = connection.authKeyID else { continue }
                let account: Int64?
                switch push.target {
                case .user(let user):
                    guard connection.userID == user else { continue }
                    account = user
                case .authKey(let dc, let key):
                    guard connection.dc == dc, keyID == key else { continue }
                    account = nil
                case .otherSessions(let user, let dc, let key):
                    guard connection.userID == user, connection.dc != dc || keyID != key else { continue }
                    account = user
                }
                let dropped = withState { $0.faults.dropsPush(FaultCall(dc: connection.dc, method: push.name, account: account)) }
                guard !dropped, let channel = channel(ofConnection: connection.id) else { continue }
                channel.pipeline.fireUserInboundEventTriggered(ServerPush(body: push.body))
            }
        }
    }
}

/// Why the DC refused an action of the control API (the same errors a client would get).
public struct TestDCActionError: Error, Equatable, CustomStringConvertible {
    public var code: Int32
    public var message: String

    public var description: String { "the test DC refused: \(code) \(message); check the ids against the world (GET /dcs, docs/TESTDC.md)" }
}

/// What happens in the world without a client asking: posts, edits and messages from other accounts,
/// each pushed to the live connections it concerns.
extension TestDCCore {
    /// Posts into a channel (as the channel, or as `fromID` in a supergroup); returns the new message id.
    @discardableResult
    public func postToChannel(_ channelID: Int64, text: String, fromID: Int64? = nil) throws(TestDCActionError) -> Int32 {
        let id = try act { state, date in try state.postToChannel(channelID, author: fromID, text: text, date: date).message.id }
        deliverPushes()
        return id
    }

    /// Edits a channel post; the edit is pushed as updateEditChannelMessage.
    public func editChannelMessage(_ channelID: Int64, messageID: Int32, text: String) throws(TestDCActionError) {
        try act { state, date in _ = try state.editChannelMessage(channelID, id: messageID, text: text, editor: nil, date: date) }
        deliverPushes()
    }

    /// A private message from one account to another, as if `fromID` sent it from another device.
    /// Returns the message id in the recipient's box.
    @discardableResult
    public func sendPrivateMessage(from fromID: Int64, to toID: Int64, text: String) throws(TestDCActionError) -> Int32 {
        let id = try act { state, date in
            guard state.user(id: fromID) != nil, state.user(id: toID) != nil else { throw RequestError(code: 400, message: "USER_ID_INVALID") }
            guard !text.isEmpty else { throw RequestError(code: 400, message: "MESSAGE_EMPTY") }
            guard text.count <= 4096 else { throw RequestError(code: 400, message: "MESSAGE_TOO_LONG") }
            _ = state.deliverPrivate(from: fromID, to: toID, text: text, date: date)
            return state.privateBoxes[toID]?.last?.id ?? 0
        }
        deliverPushes()
        return id
    }

    /// Sends `userID` a service notification (updateServiceNotification), as Telegram's own notices
    /// come: a popup, or one filed in the chat with Telegram; `type` starting with AUTH_KEY_DROP_
    /// asks the session to log out.
    public func pushServiceNotification(to userID: Int64, type: String, message: String, popup: Bool) throws(TestDCActionError) {
        try act { state, date in
            guard state.user(id: userID) != nil else { throw RequestError(code: 400, message: "USER_ID_INVALID") }
            guard !type.isEmpty, !message.isEmpty, message.count <= 4096 else { throw RequestError(code: 400, message: "MESSAGE_EMPTY") }
            state.pushServiceNotification(to: userID, type: type, message: message, popup: popup, date: date)
        }
        deliverPushes()
    }

    private func act<R>(_ body: (inout DCState, Int32) throws -> R) throws(TestDCActionError) -> R {
        let date = DCState.date(clock())
        do {
            return try withState { try body(&$0, date) }
        } catch let error as RequestError {
            throw TestDCActionError(code: error.code, message: error.message)
        } catch {
            throw TestDCActionError(code: 500, message: "\(error)")
        }
    }
}
