import Glibc

/// The append-only journal in `data_dir`: every accepted job and state change, replayed on start.
///
/// Records are buffered during a loop iteration and written by `commit()` at its end with one
/// `fdatasync` (group commit): the supervisor sends no response before that, so a `202` means the job is
/// on disk. Compaction rewrites the live jobs to a new file (write, fsync, rename, fsync the directory),
/// so at every instant one complete journal exists under the real name.
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
                return "data directory is in use: another prefork holds the lock \(path); stop it or use another data_dir"
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
    /// A pending record must be on disk before this iteration's replies.
    private var pendingNeedsSync = false
    /// Bytes in the file (committed).
    private(set) var size: Int

    private init(directory: String, syncMode: FsyncMode, fd: FileDescriptor, lockFD: FileDescriptor, size: Int) {
        self.directory = directory
        self.path = directory + "/" + Journal.fileName
        self.syncMode = syncMode
        self.fd = fd
        self.lockFD = lockFD
        self.size = size
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
            return (Journal(directory: directory, syncMode: syncMode, fd: fd, lockFD: lockFD, size: offset), recovery)
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
        if record.mustBeDurableBeforeReply { pendingNeedsSync = true }
    }

    /// Whether records wait for `commit()`.
    var hasPending: Bool { !pending.isEmpty }

    /// Writes the buffered records; with `journal.fsync = "batch"` one fdatasync makes them durable when a
    /// reply depends on one of them (it also covers every record written before).
    func commit() throws(SystemError) {
        guard !pending.isEmpty else { return }
        try Posix.writeAll(fd, pending)
        size += pending.count
        pending.removeAll(keepingCapacity: pending.count < 1 << 20)
        if syncMode == .batch && pendingNeedsSync { try Posix.fdatasync(fd) }
        pendingNeedsSync = false
    }

    /// Replaces the journal with `records` (the live set): write a new file, fsync it, rename it over the
    /// journal, fsync the directory. A crash at any point leaves either the old or the new journal, whole.
    func rewrite(_ records: [JournalRecord]) throws(SystemError) {
        try commit()
        let temporaryPath = path + ".compact"
        let temporary = try Posix.open(temporaryPath, O_RDWR | O_CREAT | O_TRUNC | O_APPEND)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size / 2)
        for record in records { record.encode(into: &bytes) }
        do throws(SystemError) {
            try Posix.writeAll(temporary, bytes)
            try Posix.fsync(temporary)
            try Posix.rename(temporaryPath, path)
            let directoryFD = try Posix.open(directory, O_RDONLY | O_DIRECTORY)
            defer { Posix.close(directoryFD) }
            try Posix.fsync(directoryFD)
        } catch {
            Posix.close(temporary)
            unlink(temporaryPath)
            throw error
        }
        Posix.close(fd)
        fd = temporary
        size = bytes.count
    }

    /// Flushes what is pending and releases the file and the lock.
    func close() {
        try? commit()
        Posix.close(fd)
        Posix.close(lockFD)
    }
}
