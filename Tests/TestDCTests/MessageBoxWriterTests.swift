import Foundation
import StoreTestSupport
import Testing
@testable import TestDC

/// The boxes writer, on its own thread: the file ends with the newest capture whatever order they
/// came in, `flush` returns only once that is on disk, and a failed write is logged and tried again.
@Suite struct MessageBoxWriterTests {
    /// A capture whose only content is its version, as the pts of one account.
    private func capture(_ version: Int) -> BoxesCapture {
        BoxesCapture(
            version: version, privateBoxes: [:], userPts: [1001: Int32(version)], userSeq: [:], userUpdateLogs: [:], channels: [],
            channelPts: [:], channelUpdateLogs: [:])
    }

    private func withStore(log: LogCapture = LogCapture(), _ body: (MessageBoxStore) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("boxes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try body(MessageBoxStore(url: directory.appendingPathComponent("boxes.json"), logger: log.logger))
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

    /// A directory where the writer puts its temporary file: every write fails, as on a full disk.
    /// The failure is logged once, the capture kept, and once the path is free the flush at
    /// shutdown writes it (before, the failure was silent and that capture lost).
    @Test func aFailedWriteIsLoggedOnceAndItsCaptureWrittenOnTheNextTry() throws {
        let log = LogCapture()
        try withStore(log: log) { store in
            let blocker = store.url.appendingPathExtension("tmp")
            try FileManager.default.createDirectory(at: blocker.appendingPathComponent("occupied"), withIntermediateDirectories: true)
            store.writer.flush(capture(1))
            store.writer.flush(capture(2))
            store.writer.flush(nil)
            #expect(!FileManager.default.fileExists(atPath: store.url.path))
            #expect(store.writer.failure?.contains("boxes.json.tmp") == true, "\(String(describing: store.writer.failure))")
            let errors = log.all.filter { $0.level == .error }
            #expect(errors.count == 1, "\(log.messages)")
            #expect(errors.first?.message.hasPrefix("message boxes not saved") == true && errors.first?.metadata["path"] == store.url.path)

            try FileManager.default.removeItem(at: blocker)
            store.writer.flush(nil)
            let written = try writtenVersion(store)
            #expect(written == 2, "the newest capture, kept through the failures")
            #expect(store.writer.failure == nil)
            #expect(log.all.contains { $0.level == .notice && $0.message == "message boxes saved again" })
        }
    }
}
