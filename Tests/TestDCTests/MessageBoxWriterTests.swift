import Foundation
import Testing
@testable import TestDC

/// The boxes writer, on its own thread: the file ends with the newest capture whatever order they
/// came in, and `flush` returns only once that is on disk.
@Suite struct MessageBoxWriterTests {
    /// A capture whose only content is its version, as the pts of one account.
    private func capture(_ version: Int) -> BoxesCapture {
        BoxesCapture(
            version: version, privateBoxes: [:], userPts: [1001: Int32(version)], userSeq: [:], userUpdateLogs: [:], channels: [],
            channelPts: [:], channelUpdateLogs: [:])
    }

    private func withStore(_ body: (MessageBoxStore) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("boxes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try body(MessageBoxStore(url: directory.appendingPathComponent("boxes.json")))
    }

    private func writtenVersion(_ store: MessageBoxStore) throws -> Int32? {
        try store.load()?.users.first?.pts
    }

    @Test func theNewestCaptureWinsWhateverTheOrder() throws {
        try withStore { store in
            for version in [1, 5, 3, 2, 4] { store.writer.submit(capture(version)) }
            store.writer.flush(nil)
            let newest = try writtenVersion(store)
            #expect(newest == 5)
            // An older capture handed in later (a lock taken before the last save) changes nothing.
            store.writer.flush(capture(4))
            let afterOlder = try writtenVersion(store)
            #expect(afterOlder == 5)
            store.writer.flush(capture(6))
            let afterNewer = try writtenVersion(store)
            #expect(afterNewer == 6)
        }
    }

    @Test func submitReturnsBeforeTheFileIsWrittenAndFlushWaitsForIt() throws {
        try withStore { store in
            store.writer.submit(capture(1))
            // Whether or not the background write ran yet, flush returns with it on disk.
            store.writer.flush(nil)
            let written = try writtenVersion(store)
            #expect(written == 1)
            let mode = try FileManager.default.attributesOfItem(atPath: store.url.path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }
}
