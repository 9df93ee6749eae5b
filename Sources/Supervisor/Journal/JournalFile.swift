import Glibc
import System

/// The journal's directory on disk: its lock, its file, and what recovery found in the file.
enum JournalFile {
    /// File name of the journal inside the data directory.
    static let fileName = "journal"
    /// File name of the lock.
    static let lockName = "lock"
    /// Where a compaction writes before its rename.
    static let temporaryName = "journal.compact"

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

    /// What replay found in the file.
    struct Recovery {
        /// Events read, in order.
        var events: [JobEvent] = []
        /// Bytes dropped from a torn or corrupt tail, and why.
        var droppedBytes = 0
        /// "truncated", "checksum mismatch", ...; nil when the file was intact.
        var damage: String?
        /// Offset of the damage.
        var damageOffset = 0
    }

    /// An open, locked journal: the lock file, the journal file (positioned at its end), its size, and the
    /// events it held.
    struct Opened {
        /// The locked lock file; closing it releases the lock.
        var lock: FileDescriptor
        /// The journal, opened for appending.
        var file: FileDescriptor
        /// Bytes of intact records in the file.
        var size: Int
        /// What was read.
        var recovery: Recovery
    }

    /// Locks `directory` (creating it), reads every intact record, and cuts a damaged tail off the file.
    static func open(directory: String) throws(OpenError) -> Opened {
        let lockPath = directory + "/" + lockName
        var lock: FileDescriptor?
        do throws(SystemError) {
            try Posix.makeDirectories(directory)
            let lockFD = try Posix.open(lockPath, O_RDWR | O_CREAT)
            lock = lockFD
            guard try lockFD.tryLockExclusive() else { throw SystemError(call: "flock", errno: EWOULDBLOCK) }
            try lockFD.truncate(to: 0)
            try lockFD.writeAll(Array("\(Process.id)\n".utf8))
            // A leftover from a compaction that crashed before its rename: the real journal is still whole.
            try Posix.unlink(directory + "/" + temporaryName)

            let file = try Posix.open(directory + "/" + fileName, O_RDWR | O_CREAT | O_APPEND)
            let content: [UInt8]
            do throws(SystemError) {
                content = try file.readToEnd()
            } catch {
                file.close()
                throw error
            }
            var recovery = Recovery()
            var offset = 0
            while offset < content.count {
                do throws(JournalRecord.DecodeError) {
                    let (event, next) = try JournalRecord.decode(content, at: offset)
                    recovery.events.append(event)
                    offset = next
                } catch {
                    recovery.damage = "\(error)"
                    recovery.damageOffset = offset
                    recovery.droppedBytes = content.count - offset
                    break
                }
            }
            if recovery.damage != nil {
                try file.truncate(to: offset)
                try file.fsync()
            }
            return Opened(lock: lockFD, file: file, size: offset, recovery: recovery)
        } catch where error.call == "flock" && error.errno == EWOULDBLOCK {
            lock?.close()
            throw .locked(path: lockPath)
        } catch {
            lock?.close()
            throw .system(error)
        }
    }
}
