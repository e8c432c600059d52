import Foundation
import MTProto
import MTProtoClient
import Synchronization
import Testing

/// The two system clocks: `WallClock` follows the wall clock wherever NTP steps it (what is shared
/// with other processes is stamped with it); `SystemClock` never jumps (a process's own timers).
@Suite struct WallClockTests {
    @Test func theWallClockFollowsASteppedClock() {
        let wall = Mutex(1_800_000_000.0)
        let clock = WallClock(realtime: { wall.withLock { $0 } })
        #expect(clock.now() == UnixTime(seconds: 1_800_000_000))
        wall.withLock { $0 += 3600 }
        #expect(clock.now() == UnixTime(seconds: 1_800_003_600))
        wall.withLock { $0 -= 7200 }
        #expect(clock.now() == UnixTime(seconds: 1_799_996_400))
    }

    @Test func bothReadTheSystemsTimeNow() {
        let date = Date().timeIntervalSince1970
        #expect(abs(WallClock().now().seconds - date) < 5)
        #expect(abs(SystemClock().now().seconds - date) < 5)
    }
}
