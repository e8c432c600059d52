import Synchronization
import Testing
@testable import MTProtoClient

/// The queue that replaced the clients' AsyncStream loops must keep their guarantees: one element
/// at a time, in submission order, the state carried from one to the next, and what was submitted
/// before `finish()` handled before `drained()` returns.
@Suite struct OnDemandSerialQueueTests {
    @Test func handlesOneAtATimeInOrderWithTheContextCarriedOver() async {
        let running = Atomic<Int>(0)
        let overlapped = Atomic<Bool>(false)
        let queue = OnDemandSerialQueue<Int, [Int]>(context: []) { seen, element in
            if running.add(1, ordering: .relaxed).newValue > 1 { overlapped.store(true, ordering: .relaxed) }
            // A suspension inside the handler: the next element must still wait for this one.
            await Task.yield()
            seen.append(element)
            running.subtract(1, ordering: .relaxed)
        }
        // Submitted from many tasks at once; each submitter's own elements stay in its order.
        await withTaskGroup(of: Void.self) { group in
            for submitter in 0..<8 {
                group.addTask {
                    for index in 0..<200 {
                        queue.submit(submitter * 1000 + index)
                        if index % 16 == 0 { await Task.yield() }
                    }
                }
            }
        }
        queue.finish()
        await queue.drained()
        let seen = queue.withIdleContext { $0 } ?? []
        let didOverlap = overlapped.load(ordering: .relaxed)
        #expect(!didOverlap)
        #expect(seen.count == 8 * 200)
        for submitter in 0..<8 {
            let own = seen.filter { $0 / 1000 == submitter }
            #expect(own == (0..<200).map { submitter * 1000 + $0 })
        }
    }

    @Test func finishKeepsWhatCameBeforeAndDropsWhatComesAfter() async {
        let queue = OnDemandSerialQueue<Int, [Int]>(context: []) { seen, element in
            try? await Task.sleep(for: .milliseconds(1))
            seen.append(element)
        }
        for element in 1...5 { queue.submit(element) }
        queue.finish()
        queue.submit(6)
        await queue.drained()
        #expect(queue.withIdleContext { $0 } == [1, 2, 3, 4, 5])
    }

    @Test func anIdleQueueCanBeUsedAgainAfterItsDrainerEnded() async {
        let handled = Mutex<[String]>([])
        let queue = OnDemandSerialQueue<String, Void> { element in handled.withLock { $0.append(element) } }
        queue.submit("a")
        await queue.drained()
        // The drainer ended with the first batch; a later element starts another.
        queue.submit("b")
        await queue.drained()
        let all = handled.withLock { $0 }
        #expect(all == ["a", "b"])
        #expect(queue.withIdleContext { _ in true } == true)
    }
}
