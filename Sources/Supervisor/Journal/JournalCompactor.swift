import Dispatch
import Glibc
import Synchronization
import System

/// Rewrites the journal to the live jobs off the event loop: sorting, encoding, writing and fsyncing a snapshot
/// of the job table on a background thread. The same inbox pattern as `JournalSyncer`: the loop hands work over
/// under a `Mutex`, the thread reports back through a byte on `notification`, and the loop takes the result.
final class JournalCompactor: Sendable {
    /// What a finished background write left behind.
    struct Outcome: Equatable, Sendable {
        /// errno of the failed write or fsync; 0 on success.
        var error: CInt
        /// Bytes of the snapshot written.
        var size: Int
    }

    /// Readable when a compaction's write is done; then call `takeOutcome()`.
    let notification: FileDescriptor
    private let notifier: FileDescriptor
    private let outcome = Mutex<Outcome?>(nil)
    private let queue = DispatchQueue(label: "prefork.journal-compact", qos: .utility)

    /// Creates the compactor and its notification pipe.
    init() throws(SystemError) {
        (notification, notifier) = try Posix.pipe(O_NONBLOCK)
    }

    /// Writes the jobs (the table is shared copy-on-write, so taking it costs the loop nothing) to `file` in
    /// acceptance order, after a pause record when dispatch is `paused`, fsyncs it, and notifies. `file` belongs
    /// to the compactor until the outcome is taken.
    func start(jobs: [String: Job], paused: Bool = false, file: FileDescriptor, capacity: Int) {
        queue.async { [self] in
            var bytes = JournalFile.header
            bytes.reserveCapacity(capacity)
            if paused { JournalRecord.encode(.dispatchPaused(true, at: 0), into: &bytes) }
            for job in jobs.values.sorted(by: { $0.sequence < $1.sequence }) {
                JournalRecord.encode(.snapshot(job), into: &bytes)
            }
            var status: CInt = 0
            do throws(SystemError) {
                try file.writeAll(bytes)
                try file.fsync()
            } catch {
                status = error.errno
            }
            outcome.withLock { $0 = Outcome(error: status, size: bytes.count) }
            // A full pipe already holds a wake-up for the loop.
            _ = try? [UInt8(1)].withUnsafeBytes { try notifier.write($0) }
        }
    }

    /// The outcome of the finished compaction, once `notification` was readable (nil if none finished).
    func takeOutcome() -> Outcome? {
        var scratch = [UInt8](repeating: 0, count: 16)
        while case .processed(let count)? = try? scratch.withUnsafeMutableBytes({ try notification.read(into: $0) }),
            count > 0
        {}
        return outcome.withLock { outcome in
            defer { outcome = nil }
            return outcome
        }
    }

    /// Waits for a running compaction and releases the pipe.
    func close() {
        queue.sync {}
        notification.close()
        notifier.close()
    }
}
