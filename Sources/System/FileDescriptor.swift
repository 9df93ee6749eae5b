import CLinux
import Glibc

/// A descriptor number. Ownership is tracked by whoever holds it, which must close it exactly once.
public struct FileDescriptor: Hashable, Sendable {
    /// The kernel's number for it.
    public let rawValue: CInt

    /// Wraps a descriptor number.
    public init(rawValue: CInt) {
        self.rawValue = rawValue
    }

    /// fd 0.
    public static let standardInput = FileDescriptor(rawValue: 0)
    /// fd 1.
    public static let standardOutput = FileDescriptor(rawValue: 1)
    /// fd 2.
    public static let standardError = FileDescriptor(rawValue: 2)
}

// MARK: Non-blocking I/O: `.wouldBlock` on EAGAIN

extension FileDescriptor {
    /// read(2) into `buffer`; 0 at end of file.
    @inlinable
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlockingCall("read") { Glibc.read(rawValue, buffer.baseAddress, buffer.count) }
    }

    /// write(2) from `buffer`; possibly fewer bytes than given.
    @inlinable
    public func write(_ buffer: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlockingCall("write") { Glibc.write(rawValue, buffer.baseAddress, buffer.count) }
    }

    /// send(2) with MSG_NOSIGNAL, so a vanished peer is EPIPE rather than SIGPIPE.
    @inlinable
    public func send(_ buffer: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlockingCall("send") { Glibc.send(rawValue, buffer.baseAddress, buffer.count, CInt(MSG_NOSIGNAL)) }
    }
}

// MARK: Blocking I/O

extension FileDescriptor {
    /// read(2) on a blocking descriptor into the front of `buffer`; returns the count, 0 at end of file.
    public func readBlocking(into buffer: inout [UInt8]) throws(SystemError) -> Int {
        let outcome = buffer.withUnsafeMutableBytes { bytes in
            Result { () throws(SystemError) in
                try blockingCall("read") { Glibc.read(rawValue, bytes.baseAddress, bytes.count) }
            }
        }
        return try outcome.get()
    }

    /// write(2) on a blocking descriptor; returns how many bytes were written (possibly fewer).
    public func writeBlocking(_ bytes: UnsafeRawBufferPointer) throws(SystemError) -> Int {
        try blockingCall("write") { Glibc.write(rawValue, bytes.baseAddress, bytes.count) }
    }

    /// Writes all of `bytes` to a blocking descriptor, looping over short writes.
    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            offset += try writeBlocking(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
        }
    }

    /// Writes all of `bytes` to a blocking descriptor.
    public func writeAll(_ bytes: [UInt8]) throws(SystemError) {
        let outcome = bytes.withUnsafeBytes { buffer in Result { () throws(SystemError) in try writeAll(buffer) } }
        try outcome.get()
    }

    /// Reads from the current offset to end of file; throws EFBIG past `limit` bytes.
    public func readToEnd(limit: Int = .max) throws(SystemError) -> [UInt8] {
        var content: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = try readBlocking(into: &chunk)
            if count == 0 { return content }
            guard content.count + count <= limit else { throw SystemError(call: "read", errno: EFBIG) }
            content.append(contentsOf: chunk[0..<count])
            if chunk.count < 1 << 20 && content.count >= chunk.count * 4 {
                chunk = [UInt8](repeating: 0, count: chunk.count * 4)
            }
        }
    }

    /// pread(2) of exactly `count` bytes at `offset` (fewer at end of file).
    public func read(count: Int, at offset: Int) throws(SystemError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let start = filled
            let got = try bytes.withUnsafeMutableBytes { buffer in
                Result { () throws(SystemError) in
                    try blockingCall("pread") {
                        Glibc.pread(rawValue, buffer.baseAddress! + start, count - start, off_t(offset + start))
                    }
                }
            }.get()
            if got == 0 { break }
            filled += got
        }
        return Array(bytes[0..<filled])
    }
}

// MARK: Descriptor control

extension FileDescriptor {
    /// close(2). EINTR on close means closed on Linux, so it is not retried; EBADF is a double close (a bug).
    public func close() {
        if Glibc.close(rawValue) == -1 && errno == EBADF {
            preconditionFailure("close(\(rawValue)): EBADF, closed twice?")
        }
    }

    /// fcntl(F_DUPFD_CLOEXEC): a second descriptor for the same open file, numbered at least `minimum`.
    public func duplicate(atLeast minimum: CInt = 0) throws(SystemError) -> FileDescriptor {
        FileDescriptor(rawValue: try blockingCall("fcntl(F_DUPFD_CLOEXEC)") { fcntl(rawValue, F_DUPFD_CLOEXEC, minimum) })
    }

    /// Adds O_NONBLOCK to the open file description (so only this end of a pipe).
    public func setNonBlocking() throws(SystemError) {
        let flags = try blockingCall("fcntl(F_GETFL)") { fcntl(rawValue, F_GETFL) }
        _ = try blockingCall("fcntl(F_SETFL)") { fcntl(rawValue, F_SETFL, flags | O_NONBLOCK) }
    }

    /// Sets FD_CLOEXEC, so no program this process starts inherits the descriptor.
    public func setCloseOnExec() throws(SystemError) {
        _ = try blockingCall("fcntl(F_SETFD)") { fcntl(rawValue, F_SETFD, FD_CLOEXEC) }
    }

    /// Whether the descriptor is open in this process.
    public var isOpen: Bool { fcntl(rawValue, F_GETFD) != -1 }

    /// poll(2) for input without waiting: true when a read would not block (data, end of file or an error).
    public var isReadableNow: Bool {
        var entry = pollfd(fd: rawValue, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&entry, 1, 0) > 0
    }

    /// shutdown(SHUT_WR) on a socket: the peer sees end of file, reading goes on. Errors (a peer already gone)
    /// change nothing for the caller, which closes the socket soon after.
    public func shutdownWrite() {
        _ = Glibc.shutdown(rawValue, CInt(SHUT_WR))
    }
}

// MARK: Files

extension FileDescriptor {
    /// fdatasync(2): the data (and the size) are on disk.
    public func fdatasync() throws(SystemError) {
        _ = try blockingCall("fdatasync") { Glibc.fdatasync(rawValue) }
    }

    /// fsync(2), also for directories (a rename is durable once its directory is synced).
    public func fsync() throws(SystemError) {
        _ = try blockingCall("fsync") { Glibc.fsync(rawValue) }
    }

    /// ftruncate(2).
    public func truncate(to length: Int) throws(SystemError) {
        _ = try blockingCall("ftruncate") { Glibc.ftruncate(rawValue, off_t(length)) }
    }

    /// flock(LOCK_EX | LOCK_NB): false when another process holds the lock.
    public func tryLockExclusive() throws(SystemError) -> Bool {
        switch try nonBlockingCall("flock", { c_flock(rawValue, LOCK_EX | LOCK_NB) }) {
        case .processed: return true
        case .wouldBlock: return false
        }
    }

    /// flock(LOCK_SH | LOCK_NB): false when another process holds an exclusive lock. Closing the descriptor
    /// releases it.
    public func tryLockShared() throws(SystemError) -> Bool {
        switch try nonBlockingCall("flock", { c_flock(rawValue, LOCK_SH | LOCK_NB) }) {
        case .processed: return true
        case .wouldBlock: return false
        }
    }

    /// The file's size in bytes (fstat).
    public func size() throws(SystemError) -> Int {
        var info = stat()
        _ = try blockingCall("fstat") { fstat(rawValue, &info) }
        return Int(info.st_size)
    }
}
