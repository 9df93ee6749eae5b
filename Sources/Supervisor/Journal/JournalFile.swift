import Glibc
import System

/// The journal's directory on disk: its lock, its file, and what the file held when it was opened.
enum JournalFile {
    /// File name of the journal inside the data directory.
    static let fileName = "journal"
    /// File name of the lock.
    static let lockName = "lock"
    /// Where a compaction writes before its rename.
    static let temporaryName = "journal.compact"
    /// The first 16 bytes of a journal: "PFJOURNL", format version 2 (u16), 2 reserved bytes, and the CRC-32 of
    /// the 12 bytes before it.
    static let header: [UInt8] = {
        var bytes = Array("PFJOURNL".utf8) + [0, 2, 0, 0]
        bytes.appendBigEndianUInt32(CRC32.checksum(bytes[...]))
        return bytes
    }()

    /// Why the journal cannot be opened; the supervisor refuses to start and changes nothing.
    enum OpenError: Error, CustomStringConvertible {
        /// Another live process holds the data directory's lock.
        case locked(path: String)
        /// The lock or the journal is a symbolic link (it would be followed and overwritten).
        case symbolicLink(path: String)
        /// The file is not a journal this version can read.
        case unreadable(path: String, reason: String)
        /// A system call failed.
        case system(SystemError)

        /// The message printed before exiting.
        var description: String {
            switch self {
            case .locked(let path):
                return
                    "data directory is in use: another prefork holds the lock \(path); stop it or use another data_dir"
            case .symbolicLink(let path):
                return "\(path) is a symbolic link; refusing to follow it (remove it, prefork creates the file)"
            case .unreadable(let path, let reason):
                return "cannot read the journal \(path): \(reason); refusing to start so that nothing in it is lost "
                    + "(move the file aside to start empty, or inspect it with: prefork journal check DATA_DIR)"
            case .system(let error): return "cannot open the journal: \(error)"
            }
        }
    }

    /// An open, locked journal: the lock file, the journal file (positioned at its end), its size, and what was
    /// in it.
    struct Opened {
        /// The locked lock file; closing it releases the lock.
        var lock: FileDescriptor
        /// The journal, opened for appending.
        var file: FileDescriptor
        /// Bytes in the file now.
        var size: Int
        /// What was found.
        var recovery: Recovery
    }

    /// What opening found: the file's content, and where a damaged file was kept before anything was changed.
    struct Recovery {
        /// What the file held.
        var scan: JournalScan
        /// The damaged file's second name (`journal.corrupt-<time>`), if it was damaged.
        var keptAside: String?
    }

    /// Locks `directory` (creating it) and reads the journal. A damaged file is kept aside (hard link
    /// `journal.corrupt-<time>`) before anything is changed; an incomplete last record is cut off; a new file
    /// gets the header. Symbolic links are refused, never followed.
    static func open(directory: String, now: Int64) throws(OpenError) -> Opened {
        let lockPath = directory + "/" + lockName
        let path = directory + "/" + fileName
        try system { () throws(SystemError) in try Posix.makeDirectories(directory) }
        let lock = try openRefusingLinks(lockPath, O_RDWR | O_CREAT)
        do throws(OpenError) {
            guard try system({ () throws(SystemError) in try lock.tryLockExclusive() }) else {
                throw .locked(path: lockPath)
            }
            try system { () throws(SystemError) in
                try lock.truncate(to: 0)
                try lock.writeAll(Array("\(Process.id)\n".utf8))
                // A leftover from a compaction that crashed before its rename: the real journal is still whole.
                try Posix.unlink(directory + "/" + temporaryName)
            }
            let file = try openRefusingLinks(path, O_RDWR | O_CREAT | O_APPEND)
            do throws(OpenError) {
                return try recover(file, path: path, directory: directory, lock: lock, now: now)
            } catch {
                file.close()
                throw error
            }
        } catch {
            lock.close()
            throw error
        }
    }

    private static func recover(
        _ file: FileDescriptor, path: String, directory: String, lock: FileDescriptor, now: Int64
    ) throws(OpenError) -> Opened {
        let content = try system { () throws(SystemError) in try file.readToEnd() }
        let scan: JournalScan
        do throws(JournalScan.Unreadable) {
            scan = try JournalScan.read(content)
        } catch {
            throw .unreadable(path: path, reason: error.reason)
        }
        var opened = Opened(lock: lock, file: file, size: content.count, recovery: Recovery(scan: scan))
        try system { () throws(SystemError) in
            if scan.isDamaged {
                // The damaged file is rewritten at start (compaction renames a new file over it), so the old inode
                // keeps every byte under this second name.
                let stem = directory + "/journal.corrupt-" + rfc3339(milliseconds: now).replacingColons()
                var aside = stem
                var suffix = 1
                while Posix.exists(aside) {
                    aside = stem + "-\(suffix)"
                    suffix += 1
                }
                try Posix.link(path, aside)
                opened.recovery.keptAside = aside
            } else if scan.tornTail != nil {
                try file.truncate(to: scan.intactEnd)
                try file.fsync()
                opened.size = scan.intactEnd
            }
            if opened.size == 0 {
                try file.writeAll(header)
                try file.fsync()
                opened.size = header.count
            }
        }
        return opened
    }

    /// Runs a system call, its error becoming an `OpenError`.
    private static func system<T>(_ body: () throws(SystemError) -> T) throws(OpenError) -> T {
        do {
            return try body()
        } catch {
            throw .system(error)
        }
    }

    /// Opens `path` without following a symbolic link; a link is refused with a clear error.
    private static func openRefusingLinks(_ path: String, _ flags: CInt) throws(OpenError) -> FileDescriptor {
        do throws(SystemError) {
            return try Posix.open(path, flags, mode: 0o600, noFollow: true)
        } catch where error.errno == ELOOP {
            throw .symbolicLink(path: path)
        } catch {
            throw .system(error)
        }
    }

    /// Reads the journal in `directory` without locking or changing anything (for `prefork journal check`).
    static func inspect(directory: String) throws(OpenError) -> (scan: JournalScan, bytes: Int) {
        let path = directory + "/" + fileName
        if Posix.isSymbolicLink(path) { throw .symbolicLink(path: path) }
        guard Posix.exists(path) else {
            return (JournalScan(format: .empty, events: [], damage: [], tornTail: nil, intactEnd: 0), 0)
        }
        let content = try system { () throws(SystemError) in try Posix.readFile(path, limit: .max) }
        do throws(JournalScan.Unreadable) {
            return (try JournalScan.read(content), content.count)
        } catch {
            throw .unreadable(path: path, reason: error.reason)
        }
    }
}

extension String {
    /// The text with ":" replaced by "-" (a timestamp in a file name).
    fileprivate func replacingColons() -> String {
        String(map { $0 == ":" ? "-" : $0 })
    }
}

extension Array where Element == UInt8 {
    /// Appends a big-endian UInt32.
    fileprivate mutating func appendBigEndianUInt32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }
}
