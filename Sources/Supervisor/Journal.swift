import Dispatch
import Glibc

/// The append-only journal in `data_dir`: every accepted job and state change, replayed on start.
///
/// Records are buffered and written by `commit()`: at the end of each loop iteration, when a sync
/// finishes, and at once when a reply waits and no sync runs. With `journal.fsync = "batch"` a background
/// thread makes them durable with `fdatasync` (group commit) while the loop goes on; everything written
/// while one sync runs waits for the next. Positions
/// are counted in bytes ever appended (`replyTicket`, `durableThrough`): a reply that depends on a record
/// is held until `durableThrough` passes the record, so a `202` means the job is on disk.
/// Compaction rewrites the live jobs to a new file (write, fsync, rename, fsync the directory), so at
/// every instant one complete journal exists under the real name.
final class Journal {
    /// Why the journal cannot be opened; the supervisor refuses to start.
    enum OpenError: Error, CustomStringConvertible {
        /// Another live process holds the data directory's lock.
        case locked(path: String)
        /// A system call failed.
        case system(SystemError)

        /// The message printed before exiting.
        var description: String {
            switch self {
            case .locked(let path):
                return
                    "data directory is in use: another prefork holds the lock \(path); stop it or use another data_dir"
            case .system(let error): return "cannot open the journal: \(error)"
            }
        }
    }

    /// What replay found at the end of the file.
    struct Recovery {
        /// Records read, in order.
        var records: [JournalRecord]
        /// Bytes dropped from a torn or corrupt tail, and why.
        var droppedBytes = 0
        /// "truncated", "checksum mismatch", ...; nil when the file was intact.
        var damage: String?
        /// Offset of the damage.
        var damageOffset = 0
    }

    /// File name of the journal inside the data directory.
    static let fileName = "journal"
    /// File name of the lock.
    static let lockName = "lock"

    /// The journal file's path.
    let path: String
    private let directory: String
    private let syncMode: FsyncMode
    private var fd: FileDescriptor
    private let lockFD: FileDescriptor
    private var pending: [UInt8] = []
    /// Bytes in the file (committed).
    private(set) var size: Int
    /// Bytes written to the journal since it was opened, across compactions.
    private var writtenThrough = 0
    /// End (in bytes appended since opening) of the last record a reply depends on (accept, cancel): a reply
    /// produced now may be sent once `durableThrough` reaches it.
    private(set) var replyTicket = 0
    /// Everything appended up to here is on disk (`batch`) or written to the file (`none`).
    private(set) var durableThrough = 0
    /// The position the syncer was last asked to make durable.
    private var requestedThrough = 0
    /// Syncs in the background with `journal.fsync = "batch"`.
    private let syncer: JournalSyncer?
    /// Readable when the background syncs made progress; then call `finishSync()`.
    let syncNotification: FileDescriptor?
    /// A background compaction in flight: its new file, and every byte committed to the old one since the
    /// snapshot was taken (appended to the new file before it replaces the old).
    private var compaction: (file: FileDescriptor, tail: [UInt8])?

    private init(
        directory: String, syncMode: FsyncMode, fd: FileDescriptor, lockFD: FileDescriptor, size: Int,
        syncer: JournalSyncer?
    ) {
        self.directory = directory
        self.path = directory + "/" + Journal.fileName
        self.syncMode = syncMode
        self.fd = fd
        self.lockFD = lockFD
        self.size = size
        self.syncer = syncer
        self.syncNotification = syncer?.notification
    }

    /// Locks `directory` (creating it), reads every intact record, and cuts a damaged tail off the file.
    static func open(directory: String, syncMode: FsyncMode) throws(OpenError) -> (Journal, Recovery) {
        do {
            try Posix.makeDirectories(directory)
            let lockPath = directory + "/" + lockName
            let lockFD = try Posix.open(lockPath, O_RDWR | O_CREAT)
            guard try Posix.tryLockExclusive(lockFD) else {
                Posix.close(lockFD)
                throw OpenError.locked(path: lockPath)
            }
            try Posix.ftruncate(lockFD, 0)
            try Posix.writeAll(lockFD, Array("\(getpid())\n".utf8))
            // A leftover from a compaction that crashed before its rename: the real journal is still whole.
            unlink(directory + "/" + fileName + ".compact")

            let fd = try Posix.open(directory + "/" + fileName, O_RDWR | O_CREAT | O_APPEND)
            let content = try Posix.readToEnd(fd)
            var recovery = Recovery(records: [])
            var offset = 0
            while offset < content.count {
                do throws(JournalRecord.DecodeError) {
                    let (record, next) = try JournalRecord.decode(content, at: offset)
                    recovery.records.append(record)
                    offset = next
                } catch {
                    recovery.damage = "\(error)"
                    recovery.damageOffset = offset
                    recovery.droppedBytes = content.count - offset
                    break
                }
            }
            if recovery.damage != nil {
                try Posix.ftruncate(fd, offset)
                try Posix.fsync(fd)
            }
            let syncer = syncMode == .batch ? try JournalSyncer(file: Posix.duplicate(fd)) : nil
            let journal = Journal(
                directory: directory, syncMode: syncMode, fd: fd, lockFD: lockFD, size: offset, syncer: syncer)
            return (journal, recovery)
        } catch let error as OpenError {
            throw error
        } catch let error as SystemError {
            throw .system(error)
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    /// Buffers a record; it reaches the file at the next `commit()`.
    func append(_ record: JournalRecord) {
        record.encode(into: &pending)
        if record.mustBeDurableBeforeReply { replyTicket = writtenThrough + pending.count }
    }

    /// Whether records wait for `commit()`.
    var hasPending: Bool { !pending.isEmpty }

    /// Whether replies wait for records that are not durable yet.
    var hasUndurableReplies: Bool { replyTicket > durableThrough }

    /// Writes the buffered records. With `journal.fsync = "batch"`, asks the syncer for a background
    /// fdatasync when a reply depends on a record not yet durable.
    func commit() throws(SystemError) {
        if !pending.isEmpty {
            try Posix.writeAll(fd, pending)
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
    /// spell does not wait for the end of the iteration; while a sync runs, records gather for the next one.
    func commitIfSyncIdle() throws(SystemError) {
        guard syncer != nil, hasUndurableReplies, durableThrough >= requestedThrough else { return }
        try commit()
    }

    /// Takes the syncer's progress once `syncNotification` is readable; returns how long each sync since the
    /// last call took (seconds). Throws the error of a failed sync (nothing can be promised durable any more).
    func finishSync() throws(SystemError) -> [Double] {
        guard let syncer else { return [] }
        syncer.drainNotification()
        let (durable, error) = syncer.progress
        guard error == 0 else { throw SystemError(call: "fdatasync", errno: error) }
        durableThrough = max(durableThrough, durable)
        return syncer.takeDurations()
    }

    /// Writes what is pending and makes everything durable before returning (at exit).
    func syncNow() throws(SystemError) {
        try commit()
        if syncMode == .batch && durableThrough < writtenThrough { try Posix.fdatasync(fd) }
        durableThrough = writtenThrough
    }

    /// Replaces the journal with `records` (the live set): write a new file, fsync it, rename it over the
    /// journal, fsync the directory. A crash at any point leaves either the old or the new journal, whole.
    func rewrite(_ records: [JournalRecord]) throws(SystemError) {
        try commit()
        let temporary = try Posix.open(temporaryPath, O_RDWR | O_CREAT | O_TRUNC | O_APPEND)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size / 2)
        for record in records { record.encode(into: &bytes) }
        try install(temporary, appending: bytes, size: bytes.count)
    }

    /// Where a compaction writes before its rename.
    private var temporaryPath: String { path + ".compact" }

    /// Appends `bytes` to the new file, fsyncs it, renames it over the journal, fsyncs the directory, and
    /// from then on appends to it. On failure the new file is closed and removed; the old one stays in use.
    private func install(_ file: FileDescriptor, appending bytes: [UInt8], size newSize: Int) throws(SystemError) {
        var syncerCopy: FileDescriptor?
        do throws(SystemError) {
            if syncer != nil { syncerCopy = try Posix.duplicate(file) }
            try Posix.writeAll(file, bytes)
            try Posix.fsync(file)
            try Posix.rename(temporaryPath, path)
            let directoryFD = try Posix.open(directory, O_RDONLY | O_DIRECTORY)
            defer { Posix.close(directoryFD) }
            try Posix.fsync(directoryFD)
        } catch {
            syncerCopy.map(Posix.close)
            Posix.close(file)
            unlink(temporaryPath)
            throw error
        }
        Posix.close(fd)
        fd = file
        size = newSize
        // The new file holds everything written so far, and was fsynced.
        durableThrough = writtenThrough
        if let syncer, let syncerCopy { syncer.replaceFile(with: syncerCopy, durableThrough: writtenThrough) }
    }

    /// Whether a background compaction is in flight.
    var isCompacting: Bool { compaction != nil }

    /// Starts compacting to the live `jobs` off the loop: the dictionary is shared copy-on-write, so taking it
    /// costs nothing here; sorting, encoding, writing and fsyncing happen on a background thread. Returns a
    /// descriptor that becomes readable when that is done; then call `finishCompaction`. Records committed
    /// meanwhile go to the old file and are carried over.
    func beginCompaction(liveJobs jobs: [String: Job]) throws(SystemError) -> FileDescriptor {
        precondition(compaction == nil, "one compaction at a time")
        try commit()
        let file = try Posix.open(temporaryPath, O_RDWR | O_CREAT | O_TRUNC | O_APPEND)
        let done: (read: FileDescriptor, write: FileDescriptor)
        do throws(SystemError) {
            done = try Posix.pipe2()
        } catch {
            Posix.close(file)
            throw error
        }
        compaction = (file, [])
        let capacity = size / 2
        DispatchQueue.global(qos: .utility).async {
            // Only this thread touches `file` until it reports: the errno (0 for success), then the size.
            var bytes: [UInt8] = []
            bytes.reserveCapacity(capacity)
            for job in jobs.values.sorted(by: { $0.sequence < $1.sequence }) {
                JournalRecord.snapshot(job).encode(into: &bytes)
            }
            var status: CInt = 0
            do throws(SystemError) {
                try Posix.writeAll(file, bytes)
                try Posix.fsync(file)
            } catch {
                status = error.errno
            }
            var report: [UInt8] = []
            report.appendBigEndian(status)
            report.appendBigEndian(UInt64(bytes.count))
            try? Posix.writeAll(done.write, report)
            Posix.close(done.write)
        }
        return done.read
    }

    /// Completes a background compaction once `notification` (from `beginCompaction`) is readable: carry the
    /// records committed since the snapshot over, fsync, rename over the journal, fsync the directory.
    /// On failure the old journal stays in use and the new file is removed. Closes `notification`.
    func finishCompaction(_ notification: FileDescriptor) throws(SystemError) {
        defer { Posix.close(notification) }
        guard let (file, _) = compaction else { return }
        let report = (try? Posix.readToEnd(notification)) ?? []
        var status: CInt = report.count == 12 ? 0 : EIO
        var snapshotSize = 0
        for byte in report.prefix(4) { status = status << 8 | CInt(byte) }
        for byte in report.dropFirst(4) { snapshotSize = snapshotSize << 8 | Int(byte) }
        defer { compaction = nil }
        guard status == 0 else {
            Posix.close(file)
            unlink(temporaryPath)
            throw SystemError(call: "compaction write", errno: status)
        }
        do throws(SystemError) {
            try commit()
        } catch {
            Posix.close(file)
            unlink(temporaryPath)
            throw error
        }
        let tail = compaction!.tail
        try install(file, appending: tail, size: snapshotSize + tail.count)
    }

    /// Makes what is pending durable and releases the file and the lock (after a background sync still
    /// running has finished with the pipe).
    func close() {
        try? syncNow()
        syncer?.close()
        Posix.close(fd)
        Posix.close(lockFD)
    }
}
