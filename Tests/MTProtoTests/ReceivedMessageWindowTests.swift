import Testing
@testable import MTProto

@Suite struct ReceivedMessageWindowTests {
    @Test func duplicatesAreRecognised() {
        var window = ReceivedMessageWindow(capacity: 4)
        #expect(window.verdict(for: 101) == .fresh)
        window.insert(101, seqNo: 1)
        #expect(window.verdict(for: 101) == .duplicate)
        #expect(window.verdict(for: 105) == .fresh)
    }

    @Test func memoryIsBoundedAndIDsBelowAFullWindowAreTooOld() {
        var window = ReceivedMessageWindow(capacity: 4)
        for id in stride(from: Int64(1), through: 41, by: 4) { window.insert(id, seqNo: 0) }
        #expect(window.entries.count == 4)
        #expect(window.lowest == 29)
        #expect(window.verdict(for: 25) == .tooOld)
        #expect(window.verdict(for: 5) == .tooOld)
        #expect(window.verdict(for: 31) == .fresh, "an id between stored ones is still checkable")
    }

    @Test func outOfOrderInsertsStaySorted() {
        var window = ReceivedMessageWindow(capacity: 8)
        for id: Int64 in [50, 10, 30, 20, 40] { window.insert(id, seqNo: Int32(id)) }
        #expect(window.entries.map(\.messageID) == [10, 20, 30, 40, 50])
        let (below, above) = window.neighbours(of: 35)
        #expect(below?.messageID == 30)
        #expect(above?.messageID == 40)
    }

    @Test func statusFollowsTheStateInfoCodes() {
        var window = ReceivedMessageWindow(capacity: 3)
        #expect(window.status(of: 7) == 3)
        window.insert(100, seqNo: 0)
        window.insert(200, seqNo: 0)
        #expect(window.status(of: 100) == 4)
        #expect(window.status(of: 50) == 2, "nothing was let go of: below the window is not received, not forgotten")
        #expect(window.status(of: 150) == 2)
        #expect(window.status(of: 300) == 3)
        // Two more: 100 and 200 leave the window, and ids up to 200 are "nothing known".
        window.insert(300, seqNo: 0)
        window.insert(400, seqNo: 0)
        window.insert(500, seqNo: 0)
        #expect(window.entries.map(\.messageID) == [300, 400, 500])
        #expect(window.status(of: 50) == 1 && window.status(of: 200) == 1)
        #expect(window.status(of: 250) == 2, "above everything dropped: it would be in the window")
        window.removeAll()
        #expect(window.status(of: 50) == 3)
    }
}
