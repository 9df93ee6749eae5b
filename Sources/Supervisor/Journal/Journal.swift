import Glibc
import System

/// The append-only journal in `data_dir`: every job event, replayed on start. The supervisor's `JobEventLog`.
///
/// Events are buffered and written by `commit()`: at the end of each loop iteration, when a sync finishes, and
/// at once when a reply waits and no sync runs. With `journal.fsync = "batch"` a background thread
/// (`JournalSyncer`) makes them durable with `fdatasync` (group commit) while the loop goes on; everything
/// written while one sync runs waits for the next. Positions are counted in bytes ever appended
/// (`replyTicket`, `durableThrough`): a reply that depends on an event is held until `durableThrough` passes it,
/// so a `202` means the job is on disk. Compaction (`JournalCompactor`) rewrites the live jobs to a new file
/// (write, fsync, rename, fsync the directory), so at every instant one complete journal exists under the real
/// name.
final class Journal: JobEventLog, ReplyGate {
    /// The journal file's path.
    let path: String
    private let directory: String
    private let syncMode: FsyncMode
    private var fd: FileDescriptor
    private let lock: FileDescriptor
    private let logger: Logger
    private let metrics: Metrics
    private var pending: [UInt8] = []
    /// Bytes in the file (committed).
    private(set) var size: Int
    /// Bytes written to the journal since it was opened, across compactions.
    private var writtenThrough = 0
    /// End (in bytes appended since opening) of the last event a reply depends on (accept, cancel): a reply
    /// produced now may be sent once `durableThrough` reaches it.
    private(set) var replyTicket = 0
    /// Everything appended up to here is on disk (`batch`) or written to the file (`none`).
    private(set) var durableThrough = 0
    /// The position the syncer was last asked to make durable.
    private var requestedThrough = 0
    /// Syncs in the background with `journal.fsync = "batch"`.
    private let syncer: JournalSyncer?
    private let compactor: JournalCompactor
    /// A background compaction in flight: its new file, every byte committed to the old one since the snapshot
    /// was taken (appended to the new file before it replaces the old), and when it started.
    private var compaction: (file: FileDescriptor, tail: [UInt8], started: Int64)?
    /// The journal is compacted once it grows past this size; then not again until it has doubled, so at least
    /// half of what a compaction rewrites is dead.
    private var compactionThreshold: Int
    private let minimumCompactionBytes: Int

    /// Takes over an opened journal file and its lock.
    init(
        directory: String, opened: JournalFile.Opened, syncMode: FsyncMode, compactBytes: Int, logger: Logger,
        metrics: Metrics
    ) throws(SystemError) {
        self.directory = directory
        self.path = directory + "/" + JournalFile.fileName
        self.syncMode = syncMode
        self.fd = opened.file
        self.lock = opened.lock
        self.size = opened.size
        self.logger = logger
        self.metrics = metrics
        self.minimumCompactionBytes = compactBytes
        self.compactionThreshold = compactBytes
        self.syncer = syncMode == .batch ? try JournalSyncer(file: opened.file.duplicate()) : nil
        self.compactor = try JournalCompactor()
    }

    /// Watches the background syncs and compactions on `loop`. After each sync `durable` runs (send the replies
    /// it released); a failed write or sync calls `failed`, which must not return normally.
    func attach(to loop: EventLoop, durable: @escaping () -> Void, failed: @escaping (SystemError) -> Never)
        throws(SystemError)
    {
        if let syncer {
            try loop.register(syncer.notification, events: Epoll.readable) { [unowned self] _ in
                // Send what the sync made durable, and start the next one, without waiting for the iteration to
                // end: the syncer runs back to back while replies wait. Everything pending is written first, so
                // no reply shows a state the file does not hold.
                do throws(SystemError) {
                    try finishSync()
                    try commit()
                } catch {
                    failed(error)
                }
                durable()
            }
        }
        try loop.register(compactor.notification, events: Epoll.readable) { [unowned self] _ in
            finishCompaction()
        }
    }

    // MARK: Appending

    /// Buffers an event; it reaches the file at the next `commit()`.
    func append(_ event: JobEvent) {
        JournalRecord.encode(event, into: &pending)
        if event.mustBeDurableBeforeReply { replyTicket = writtenThrough + pending.count }
    }

    /// Whether events wait for `commit()`.
    var hasPending: Bool { !pending.isEmpty }

    /// Whether a background compaction is in flight.
    var isCompacting: Bool { compaction != nil }

    /// Whether replies wait for events that are not durable yet.
    var hasUndurableReplies: Bool { replyTicket > durableThrough }

    /// Writes the buffered events. With `journal.fsync = "batch"`, asks the syncer for a background fdatasync
    /// when a reply depends on an event not yet durable.
    func commit() throws(SystemError) {
        if !pending.isEmpty {
            try fd.writeAll(pending)
            size += pending.count
            writtenThrough += pending.count
            compaction?.tail.append(contentsOf: pending)
            pending.removeAll(keepingCapacity: pending.count < 1 << 20)
        }
        if let syncer {
            if hasUndurableReplies {
                syncer.request(through: writtenThrough)
                requestedThrough = writtenThrough
            }
        } else {
            durableThrough = writtenThrough
        }
    }

    /// Commits now if a reply waits on the journal and no sync is running, so the first reply after a quiet
    /// spell does not wait for the end of the iteration; while a sync runs, events gather for the next one.
    func commitIfSyncIdle() throws(SystemError) {
        guard syncer != nil, hasUndurableReplies, durableThrough >= requestedThrough else { return }
        try commit()
    }

    /// Takes the syncer's progress; throws the error of a failed sync (nothing can be promised durable any more).
    private func finishSync() throws(SystemError) {
        guard let syncer else { return }
        syncer.drainNotification()
        let (durable, error) = syncer.progress
        guard error == 0 else { throw SystemError(call: "fdatasync(\(path))", errno: error) }
        durableThrough = max(durableThrough, durable)
        for seconds in syncer.takeDurations() { metrics.journalSync.observe(seconds) }
    }

    /// Writes what is pending and makes everything durable before returning (at exit).
    func syncNow() throws(SystemError) {
        try commit()
        if syncMode == .batch && durableThrough < writtenThrough { try fd.fdatasync() }
        durableThrough = writtenThrough
    }

    // MARK: Compaction

    /// Replaces the journal with the live jobs now, on the loop (at start, after replay), after a pause record
    /// when dispatch is `paused`.
    func compactNow(jobsInAcceptanceOrder jobs: [Job], paused: Bool = false) throws(SystemError) {
        let started = Time.monotonicMicroseconds()
        let before = size
        try commit()
        let temporary = try Posix.open(temporaryPath, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, noFollow: true)
        var bytes = JournalFile.header
        bytes.reserveCapacity(size / 2)
        if paused { JournalRecord.encode(.dispatchPaused(true, at: 0), into: &bytes) }
        for job in jobs { JournalRecord.encode(.snapshot(job), into: &bytes) }
        try install(temporary, appending: bytes, size: bytes.count)
        compacted(before: before, started: started, background: false)
    }

    /// Starts a background compaction when the file has grown past the threshold (called once per loop
    /// iteration). `jobs` is only evaluated then.
    func compactIfDue(jobs: @autoclosure () -> [String: Job], paused: Bool = false) throws(SystemError) {
        guard size > compactionThreshold, compaction == nil else { return }
        try commit()
        let file = try Posix.open(temporaryPath, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, noFollow: true)
        compaction = (file, [], Time.monotonicMicroseconds())
        compactor.start(jobs: jobs(), paused: paused, file: file, capacity: size / 2)
    }

    /// Completes a background compaction: carry the events committed since the snapshot over, fsync, rename
    /// over the journal, fsync the directory. On failure the old journal stays in use (it is still whole) and
    /// the next attempt waits until it has doubled.
    private func finishCompaction() {
        guard let outcome = compactor.takeOutcome(), let (file, _, started) = compaction else { return }
        let before = size
        do throws(SystemError) {
            guard outcome.error == 0 else { throw SystemError(call: "compaction write", errno: outcome.error) }
            try commit()
            let tail = compaction!.tail
            compaction = nil
            try install(file, appending: tail, size: outcome.size + tail.count)
        } catch {
            if compaction != nil { file.close() }
            compaction = nil
            try? Posix.unlink(temporaryPath)
            logger.error("journal_compaction_failed", ["error": .string(error.description)])
            compactionThreshold = max(compactionThreshold, 2 * size)
            return
        }
        compacted(before: before, started: started, background: true)
    }

    /// The threshold after a compaction, and its log line (only when it did something: an empty or already
    /// compact journal rewritten to the same bytes is not news).
    private func compacted(before: Int, started: Int64, background: Bool) {
        compactionThreshold = max(minimumCompactionBytes, 2 * size)
        guard before != size else { return }
        logger.info(
            "journal_compacted",
            [
                "bytes_before": .int(before), "bytes_after": .int(size),
                "duration_ms": .double(Double(Time.monotonicMicroseconds() - started) / 1000),
                "background": .bool(background),
            ])
    }

    /// Where a compaction writes before its rename.
    private var temporaryPath: String { directory + "/" + JournalFile.temporaryName }

    /// Appends `bytes` to the new file, fsyncs it, renames it over the journal, fsyncs the directory, and from
    /// then on appends to it. On failure the new file is closed and removed; the old one stays in use.
    private func install(_ file: FileDescriptor, appending bytes: [UInt8], size newSize: Int) throws(SystemError) {
        var syncerCopy: FileDescriptor?
        do throws(SystemError) {
            if syncer != nil { syncerCopy = try file.duplicate() }
            try file.writeAll(bytes)
            try file.fsync()
            try Posix.rename(temporaryPath, path)
            let directoryFD = try Posix.open(directory, O_RDONLY | O_DIRECTORY)
            defer { directoryFD.close() }
            try directoryFD.fsync()
        } catch {
            syncerCopy?.close()
            file.close()
            try? Posix.unlink(temporaryPath)
            throw error
        }
        fd.close()
        fd = file
        size = newSize
        // The new file holds everything written so far, and was fsynced.
        durableThrough = writtenThrough
        if let syncer, let syncerCopy { syncer.replaceFile(with: syncerCopy, durableThrough: writtenThrough) }
    }

    /// Makes what is pending durable and releases the file and the lock (after background work still running
    /// has finished with its descriptors).
    func close() {
        try? syncNow()
        syncer?.close()
        compactor.close()
        if let (file, _, _) = compaction {
            file.close()
            try? Posix.unlink(temporaryPath)
        }
        fd.close()
        lock.close()
    }
}
