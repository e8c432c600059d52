import Logging
import Synchronization
import TL
import TLSchema
import Testing
@testable import MTProtoClient

/// updateServiceNotification as the client hands it on: found in every Updates form that can carry
/// it, with login-code-like digits masked wherever it is shown.
@Suite struct ServiceNotificationTests {
    static func update(_ type: String, _ message: String, popup: Bool = true) -> Api.Update {
        .updateServiceNotification(Api.Update.UpdateServiceNotification(
            popup: popup, inboxDate: popup ? nil : 1_800_000_000, type: type, message: message,
            media: .messageMediaEmpty(Api.MessageMedia.MessageMediaEmpty()), entities: []))
    }

    static let other = Api.Update.updateLoginToken(Api.Update.UpdateLoginToken())

    @Test func isFoundInEveryUpdatesFormThatCarriesUpdates() {
        let drop = Self.update("AUTH_KEY_DROP_DUPLICATE", "Session revoked")
        let short = Api.Updates.updateShort(.init(update: drop, date: 1))
        let many = Api.Updates.updates(.init(updates: [Self.other, drop, Self.update("SPAM_LIMIT", "limited", popup: false)], users: [], chats: [], date: 1, seq: 0))
        let combined = Api.Updates.updatesCombined(.init(updates: [drop], users: [], chats: [], date: 1, seqStart: 0, seq: 0))
        #expect(ServiceNotification.all(in: short).map(\.type) == ["AUTH_KEY_DROP_DUPLICATE"])
        #expect(ServiceNotification.all(in: many).map(\.type) == ["AUTH_KEY_DROP_DUPLICATE", "SPAM_LIMIT"])
        #expect(ServiceNotification.all(in: combined).count == 1)
        #expect(ServiceNotification.all(in: .updatesTooLong(.init())).isEmpty)
        #expect(ServiceNotification.all(in: .updateShort(.init(update: Self.other, date: 1))).isEmpty)
        let found = ServiceNotification.all(in: many)
        #expect(found.first?.asksToDropTheSession == true && found.first?.popup == true)
        #expect(found.last?.asksToDropTheSession == false && found.last?.inboxDate == 1_800_000_000)
        let huge = ServiceNotification.all(in: .updateShort(.init(update: Self.update(String(repeating: "T", count: 10_000), String(repeating: "m", count: 100_000)), date: 1)))
        #expect(huge.first?.type.count == 128 && huge.first?.message.count == 4_096 && huge.first?.redactedMessage.count == 1_000)
    }

    /// A new login to the account (updateNewAuthorization) is kept as a notice: unconfirmed, a popup
    /// naming the device and the place, with what to do; confirmed, a plain note.
    @Test func aNewLoginIsANoticeNamingTheDevice() {
        let unconfirmed = Api.Update.updateNewAuthorization(.init(unconfirmed: true, hash: 7, date: 1_800_000_000, device: "Pixel 9", location: "Lisbon, Portugal"))
        let notice = ServiceNotification.all(in: .updateShort(.init(update: unconfirmed, date: 1)))
        #expect(notice.map(\.type) == [ServiceNotification.newUnconfirmedLoginType])
        #expect(notice.first?.isNewLogin == true && notice.first?.popup == true && notice.first?.asksToDropTheSession == false)
        #expect(notice.first?.message == "A new login to this account: Pixel 9, Lisbon, Portugal. Not confirmed yet: if nobody here made it, end it in an official app (Settings > Devices).")
        let confirmed = ServiceNotification.all(in: .updateShort(.init(update: .updateNewAuthorization(.init(hash: 8)), date: 1)))
        #expect(confirmed.first?.type == ServiceNotification.newLoginType && confirmed.first?.popup == false && confirmed.first?.message == "A new login to this account.")
    }

    @Test(arguments: [
        ("Login code: 12345. Do not give it to anyone", "Login code: •••••. Do not give it to anyone"),
        ("Your code is 12-345", "Your code is •••••"),
        ("codes 1234567 and 987654", "codes ••••••• and ••••••"),
        ("At 10:00, 3 devices, in 2026, from +1 555 0001 or (555) 000-1234", "At 10:00, 3 devices, in 2026, from +•••••••• or ••••••••••"),
        ("1234", "1234"),
        ("12345678", "••••••••"),
        ("2026-12-04", "••••••••"),
    ])
    func loginCodesAndPhoneNumbersAreMaskedWhereverTheMessageIsShown(message: String, shown: String) {
        let notice = ServiceNotification(type: "AUTH", message: message, popup: false, inboxDate: nil)
        #expect(notice.redactedMessage == shown)
        #expect(notice.message == message)
        #expect("\(notice)".contains(shown))
    }

    @Test func theSinkHandsEachNoticeToTheHandlerSetLast() {
        let sink = ServiceNotificationSink()
        let seen = Mutex<[String]>([])
        let pushed = Api.Updates.updates(.init(updates: [Self.update("A", "a"), Self.update("B", "b")], users: [], chats: [], date: 1, seq: 0))
        sink.deliver(pushed)
        sink.set { notice in seen.withLock { $0.append(notice.type) } }
        sink.deliver(pushed)
        sink.deliver(.updateShort(.init(update: Self.other, date: 1)))
        #expect(seen.withLock { $0 } == ["A", "B"])
        sink.set(nil)
        sink.deliver(pushed)
        #expect(seen.withLock { $0 }.count == 2)
    }

    /// A notice sent while the client was away comes back in updates.getDifference's
    /// `other_updates`: it reaches the handler as a pushed one does.
    @Test func aNoticeRecoveredByADifferenceReachesTheHandler() async {
        let engine = UpdatesEngine(logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let (arrivals, arrived) = AsyncStream.makeStream(of: String.self)
        engine.notices.set { notice in arrived.yield(notice.type) }
        let difference = Api.updates.Difference.difference(.init(
            newMessages: [], newEncryptedMessages: [], otherUpdates: [Self.other, Self.update("AUTH_KEY_DROP_DUPLICATE", "Session ended")],
            chats: [], users: [], state: .state(.init(pts: 11, qts: 0, date: 2, seq: 1, unreadCount: 0))))
        let backend = UpdatesBackend(
            getState: { () throws(TelegramError) in throw .closed },
            getDifference: { _, _, _ in difference },
            getChannelDifference: { _, _, _, _ throws(TelegramError) in throw .closed },
            save: { _ in })
        // A state stored by an earlier run: starting fetches what happened since.
        engine.submit(.start(UpdatesState(pts: 10, qts: 0, seq: 0, date: 1), isCurrent: false, .init(), backend, SystemClock()))
        // Bounded: without the notice the stream ends and the expectation below says so.
        let bound = Task {
            try? await Task.sleep(for: .seconds(10))
            arrived.finish()
        }
        defer { bound.cancel() }
        var seen: [String] = []
        for await type in arrivals {
            seen.append(type)
            break
        }
        #expect(seen == ["AUTH_KEY_DROP_DUPLICATE"])
        await engine.close()
    }
}
