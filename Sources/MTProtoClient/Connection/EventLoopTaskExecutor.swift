import NIOCore

/// Runs a task's jobs on one event loop: the loop the client's connections live on. A caller that
/// prefers it (`withTaskExecutorPreference(client.taskExecutor)`) writes its request and is resumed
/// with the answer on the thread that reads the socket, with no thread switch in between; the
/// default (the shared pool) costs two more switches per round trip (see docs/CLIENT.md).
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
