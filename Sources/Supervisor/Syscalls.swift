import CLinux
import Glibc
import IPC

/// A failed system call: the C name and its errno.
struct SystemError: Error, CustomStringConvertible {
    /// The errno value.
    let errno: CInt
    /// The call that failed, as its C name.
    let call: String

    /// Captures the current errno for `call`.
    init(call: String, errno: CInt = Glibc.errno) {
        self.errno = errno
        self.call = call
    }

    /// "call: strerror (errno)".
    var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// The result of an I/O call on a non-blocking descriptor.
enum IOResult<Value> {
    /// The call completed with this value (for reads, 0 means end of file).
    case processed(Value)
    /// EAGAIN: try again when epoll says so.
    case wouldBlock
}

/// A raw descriptor; ownership is tracked by whoever holds it, which must close it exactly once.
struct FileDescriptor: Hashable {
    /// The descriptor number.
    let rawValue: CInt
}

/// Checks a return value of -1 against errno, retrying on EINTR. EBADF and EFAULT are programmer errors.
@inline(__always)
private func syscall<T: FixedWidthInteger>(
    _ call: String = #function, blocking: Bool = false, _ body: () -> T
) throws(SystemError) -> IOResult<T> {
    while true {
        let result = body()
        if result != -1 { return .processed(result) }
        let error = errno
        switch error {
        case EINTR: continue
        case EAGAIN where !blocking: return .wouldBlock
        case EBADF, EFAULT: preconditionFailure("\(call) failed with \(error): a bug, not a world error")
        default: throw SystemError(call: call, errno: error)
        }
    }
}

/// Thin wrappers over POSIX calls; the only code in the Supervisor that touches errno.
enum Posix {
    /// read(2) into a buffer.
    static func read(_ fd: FileDescriptor, _ buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int>
    {
        try syscall { Glibc.read(fd.rawValue, buffer.baseAddress, buffer.count) }
    }

    /// write(2) from a buffer.
    static func write(_ fd: FileDescriptor, _ buffer: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try syscall { Glibc.write(fd.rawValue, buffer.baseAddress, buffer.count) }
    }

    /// send(2) with MSG_NOSIGNAL so a vanished peer is EPIPE, not SIGPIPE.
    static func send(_ fd: FileDescriptor, _ buffer: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try syscall { Glibc.send(fd.rawValue, buffer.baseAddress, buffer.count, CInt(MSG_NOSIGNAL)) }
    }

    /// close(2); EINTR on close means the descriptor is closed (Linux), so it is not retried.
    static func close(_ fd: FileDescriptor) {
        if Glibc.close(fd.rawValue) == -1 && errno == EBADF {
            preconditionFailure("close(\(fd.rawValue)): EBADF, closed twice?")
        }
    }

    /// open(2) with O_CLOEXEC added.
    static func open(_ path: String, _ flags: CInt, _ mode: mode_t = 0o644) throws(SystemError) -> FileDescriptor {
        guard case .processed(let fd) = try syscall(blocking: true, { Glibc.open(path, flags | O_CLOEXEC, mode) })
        else {
            throw SystemError(call: "open", errno: EAGAIN)
        }
        return FileDescriptor(rawValue: fd)
    }

    /// pipe2(2) with O_CLOEXEC and the given extra flags; returns (read end, write end).
    static func pipe2(_ flags: CInt = 0) throws(SystemError) -> (read: FileDescriptor, write: FileDescriptor) {
        var fds: [CInt] = [-1, -1]
        _ = try syscall(blocking: true) { c_pipe2(&fds, O_CLOEXEC | flags) }
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
    }

    /// fcntl(F_DUPFD_CLOEXEC): a second descriptor for the same open file.
    static func duplicate(_ fd: FileDescriptor) throws(SystemError) -> FileDescriptor {
        guard case .processed(let copy) = try syscall(blocking: true, { Glibc.fcntl(fd.rawValue, F_DUPFD_CLOEXEC, 0) })
        else { throw SystemError(call: "fcntl(F_DUPFD_CLOEXEC)", errno: EAGAIN) }
        return FileDescriptor(rawValue: copy)
    }

    /// Sets O_NONBLOCK on a descriptor.
    static func setNonBlocking(_ fd: FileDescriptor) throws(SystemError) {
        let flags = Glibc.fcntl(fd.rawValue, F_GETFL)
        _ = try syscall(blocking: true) { Glibc.fcntl(fd.rawValue, F_SETFL, flags | O_NONBLOCK) }
    }

    /// kill(2); ESRCH (already gone) is not an error.
    static func kill(_ pid: pid_t, _ signal: CInt) {
        _ = Glibc.kill(pid, signal)
    }

    /// waitpid(-1, WNOHANG): the next exited child, or nil when none is waiting.
    static func reapAny() -> (pid: pid_t, status: TerminationStatus)? {
        var status: CInt = 0
        while true {
            let pid = Glibc.waitpid(-1, &status, WNOHANG)
            if pid > 0 {
                var code: CInt = 0
                switch c_wait_status(status, &code) {
                case 0: return (pid, .exited(code))
                case 1: return (pid, .signaled(code))
                default: continue  // stopped/continued: not an exit
                }
            }
            if pid == -1 && errno == EINTR { continue }
            return nil  // 0: children alive but none exited; -1 ECHILD: no children
        }
    }

    /// Ignores SIGPIPE for the whole process: a vanished peer then surfaces as EPIPE.
    static func ignoreSIGPIPE() {
        _ = Glibc.signal(SIGPIPE, SIG_IGN)
    }
}

/// How a child ended, decoded once from the wait status.
enum TerminationStatus: Equatable {
    /// exit(code).
    case exited(CInt)
    /// Killed by a signal.
    case signaled(CInt)

    /// The log's form: "exited 3" / "signal 11 (SIGSEGV)".
    var logValue: String {
        switch self {
        case .exited(let code): return "exited \(code)"
        case .signaled(let signal): return "signal \(signal) (\(signalName(signal)))"
        }
    }

    /// "exited with status 3" / "exited on signal 11 (SIGSEGV)".
    var description: String {
        switch self {
        case .exited(let code): return "exited with status \(code)"
        case .signaled(let signal): return "exited on signal \(signal) (\(signalName(signal)))"
        }
    }
}

/// epoll(7) wrappers.
enum Epoll {
    /// epoll_create1(EPOLL_CLOEXEC).
    static func create() throws(SystemError) -> FileDescriptor {
        guard case .processed(let fd) = try syscall(blocking: true, { c_epoll_create1(CInt(EPOLL_CLOEXEC)) }) else {
            throw SystemError(call: "epoll_create1", errno: EAGAIN)
        }
        return FileDescriptor(rawValue: fd)
    }

    /// epoll_ctl(2).
    static func ctl(_ epoll: FileDescriptor, _ op: CInt, _ fd: FileDescriptor, events: UInt32, token: UInt64)
        throws(SystemError)
    {
        _ = try syscall(blocking: true) { c_epoll_ctl(epoll.rawValue, op, fd.rawValue, events, token) }
    }

    /// epoll_wait(2) into the given arrays; EINTR returns 0 events.
    static func wait(
        _ epoll: FileDescriptor, events: inout [UInt32], tokens: inout [UInt64], timeoutMilliseconds: CInt
    ) throws(SystemError) -> Int {
        let count = events.withUnsafeMutableBufferPointer { eventBuffer in
            tokens.withUnsafeMutableBufferPointer { tokenBuffer in
                c_epoll_wait(
                    epoll.rawValue, eventBuffer.baseAddress, tokenBuffer.baseAddress, CInt(eventBuffer.count),
                    timeoutMilliseconds)
            }
        }
        if count == -1 {
            if errno == EINTR { return 0 }
            throw SystemError(call: "epoll_wait")
        }
        return Int(count)
    }
}

/// signalfd(2) wrappers.
enum SignalFD {
    /// Blocks `signals` and returns a non-blocking, close-on-exec signalfd that reports them.
    static func create(_ signals: [CInt]) throws(SystemError) -> FileDescriptor {
        let fd = signals.withUnsafeBufferPointer {
            c_signalfd_for($0.baseAddress, CInt($0.count), CInt(SFD_NONBLOCK | SFD_CLOEXEC))
        }
        guard fd >= 0 else { throw SystemError(call: "signalfd") }
        return FileDescriptor(rawValue: fd)
    }

    /// The next pending signal number, or nil when none is pending.
    static func read(_ fd: FileDescriptor) throws(SystemError) -> CInt? {
        var pid: Int32 = 0
        let signal = c_signalfd_read(fd.rawValue, &pid)
        if signal < 0 { throw SystemError(call: "read(signalfd)") }
        return signal == 0 ? nil : signal
    }
}

/// File calls the journal needs.
extension Posix {
    /// Writes all of `bytes` to a blocking descriptor.
    static func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8]) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            let start = offset
            let result = try syscall(blocking: true) {
                bytes.withUnsafeBytes { Glibc.write(fd.rawValue, $0.baseAddress! + start, $0.count - start) }
            }
            if case .processed(let written) = result { offset += written }
        }
    }

    /// fdatasync(2): the data (and the size) are on disk.
    static func fdatasync(_ fd: FileDescriptor) throws(SystemError) {
        _ = try syscall(blocking: true) { Glibc.fdatasync(fd.rawValue) }
    }

    /// fsync(2), also for directories (a rename is durable once its directory is synced).
    static func fsync(_ fd: FileDescriptor) throws(SystemError) {
        _ = try syscall(blocking: true) { Glibc.fsync(fd.rawValue) }
    }

    /// ftruncate(2).
    static func ftruncate(_ fd: FileDescriptor, _ length: Int) throws(SystemError) {
        _ = try syscall(blocking: true) { Glibc.ftruncate(fd.rawValue, off_t(length)) }
    }

    /// rename(2).
    static func rename(_ from: String, _ to: String) throws(SystemError) {
        _ = try syscall(blocking: true) { Glibc.rename(from, to) }
    }

    /// flock(LOCK_EX | LOCK_NB): false when another process holds the lock.
    static func tryLockExclusive(_ fd: FileDescriptor) throws(SystemError) -> Bool {
        let result = try syscall { c_flock(fd.rawValue, LOCK_EX | LOCK_NB) }
        if case .processed = result { return true }
        return false
    }

    /// mkdir -p.
    static func makeDirectories(_ path: String) throws(SystemError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component + "/"
            if Glibc.mkdir(prefix, 0o755) == -1 && errno != EEXIST { throw SystemError(call: "mkdir(\(prefix))") }
        }
    }

    /// The whole content of a file read from the current offset to its end.
    static func readToEnd(_ fd: FileDescriptor) throws(SystemError) -> [UInt8] {
        var content: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let result = try syscall(blocking: true) {
                chunk.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress, $0.count) }
            }
            guard case .processed(let count) = result, count > 0 else { return content }
            content.append(contentsOf: chunk[0..<count])
        }
    }
}
