import Foundation
import OffThePool
import Testing

/// A child process that does not end fails its test with what it printed, instead of holding the
/// whole run (CI once sat at its 90-minute limit on a wait with no end, and its log did not say which).
struct ChildDeadlineTests {
    @Test func aChildPastItsDeadlineIsKilledAndTheTestToldWhatItPrinted() async throws {
        let (_, cli) = try CLI.temporary()
        do {
            _ = try await cli.run(["-c", "echo started; exec sleep 600"], executable: "/bin/sh", withStore: false, seconds: 1)
            Issue.record("a child that sleeps 600 s ended within its 1 s deadline")
        } catch let timedOut as ChildProcessTimedOut {
            #expect(timedOut.description.contains("/bin/sh -c echo started; exec sleep 600` did not end within 1.0 s"), "\(timedOut)")
            #expect(timedOut.output == "started\n")
        }
        await #expect(throws: ChildProcessTimedOut.self) {
            _ = try await ChildProcess.run(URL(fileURLWithPath: "/bin/sleep"), ["600"], seconds: 1)
        }
        // One that ends in time is untouched by its deadline.
        let quick = try await ChildProcess.run(URL(fileURLWithPath: "/bin/echo"), ["done"], seconds: 60)
        #expect(quick.status == 0 && quick.output == "done\n")
    }
}
