import Dispatch
import Glibc
import Synchronization
import System

/// Makes the journal durable off the event loop: `fdatasync` on a background thread, back to back for as
/// long as the loop asks for more (group commit without waiting for the loop to come around).
///
/// The loop writes records, then calls `request(through:)` with the position written. One sync runs at a
/// time and covers everything requested when it started; what is requested while it runs is covered by
/// the next, started at once by the same thread. After each sync the thread writes a byte to
/// `notification`; the loop then reads `durableThrough` (and the error, if a sync failed).
final class JournalSyncer: Sendable {
    private struct State {
        /// The syncer's own descriptor for the journal file (the journal may replace and close its own).
        var file: FileDescriptor
        /// Sync everything written up to here.
        var requested = 0
        /// Everything up to here is on disk.
        var durable = 0
        /// The thread is syncing or about to.
        var running = false
        /// errno of a failed sync; no sync is started after one fails.
        var error: CInt = 0
        /// Seconds each sync took, since the loop last took them.
        var durations: [Double] = []
    }

    /// Readable after each sync.
    let notification: FileDescriptor
    private let notifier: FileDescriptor
    private let state: Mutex<State>
    private let queue = DispatchQueue(label: "prefork.journal-sync", qos: .userInitiated)

    /// Syncs `file` (a descriptor the syncer now owns) when asked.
    init(file: FileDescriptor) throws(SystemError) {
        (notification, notifier) = try Posix.pipe(O_NONBLOCK)
        state = Mutex(State(file: file))
    }

    /// Asks for everything written up to `position` to be made durable.
    func request(through position: Int) {
        let start = state.withLock { state in
            state.requested = max(state.requested, position)
            guard !state.running && state.error == 0 else { return false }
            state.running = true
            return true
        }
        if start { queue.async { self.syncWhileRequested() } }
    }

    /// Everything up to here is on disk, and the errno of a failed sync (0 if none).
    var progress: (durable: Int, error: CInt) {
        state.withLock { ($0.durable, $0.error) }
    }

    /// The seconds each sync took since the last call.
    func takeDurations() -> [Double] {
        state.withLock { state in
            defer { state.durations.removeAll(keepingCapacity: true) }
            return state.durations
        }
    }

    /// Empties the notification pipe (the loop reads `progress` after).
    func drainNotification() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while case .processed(let count)? = try? bytes.withUnsafeMutableBytes({ try notification.read(into: $0) }),
            count == bytes.count
        {}
    }

    /// Switches to a new journal file (after a compaction), whose content up to `position` is already durable.
    func replaceFile(with file: FileDescriptor, durableThrough position: Int) {
        state.withLock { state in
            state.file.close()
            state.file = file
            state.durable = max(state.durable, position)
        }
    }

    /// Waits for a running sync to end and releases the descriptors.
    func close() {
        queue.sync {}
        state.withLock { $0.file.close() }
        notification.close()
        notifier.close()
    }

    private func syncWhileRequested() {
        while true {
            let next = state.withLock { state -> (file: FileDescriptor, target: Int)? in
                guard state.error == 0, state.requested > state.durable,
                    let file = try? state.file.duplicate()
                else {
                    state.running = false
                    return nil
                }
                return (file, state.requested)
            }
            guard let next else { return }
            var status: CInt = 0
            let started = Time.monotonicMicroseconds()
            do throws(SystemError) {
                try next.file.fdatasync()
            } catch {
                status = error.errno
            }
            let seconds = Double(Time.monotonicMicroseconds() - started) / 1_000_000
            next.file.close()
            state.withLock { state in
                if status == 0 { state.durable = max(state.durable, next.target) } else { state.error = status }
                state.durations.append(seconds)
            }
            // A full pipe already holds a wake-up for the loop.
            _ = try? [UInt8(1)].withUnsafeBytes { try notifier.write($0) }
        }
    }
}
