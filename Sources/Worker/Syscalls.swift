import Glibc

// The worker's one door to libc: every call that can set `errno` or needs a raw pointer lives here.

/// A system call that failed: which call, and the `errno` it left behind.
struct SystemError: Error, Equatable, CustomStringConvertible {
    /// The error number the call set.
    let errno: CInt
    /// The C name of the call.
    let call: String

    /// Creates an error for `call`; wrappers pass `#function` and the argument labels are dropped.
    init(errno: CInt, call: String) {
        self.errno = errno
        self.call = String(call.prefix { $0 != "(" })
    }

    /// `call: strerror text (errno N)`.
    var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// A file descriptor number; the worker's are fixed by how the supervisor spawns it.
struct FileDescriptor: Equatable {
    /// The kernel's number for it.
    let rawValue: CInt

    /// fd 1, for `--help`.
    static let standardOutput = FileDescriptor(rawValue: 1)
    /// fd 2, captured and logged by the supervisor.
    static let standardError = FileDescriptor(rawValue: 2)
    /// fd 3, the read end of the job pipe: frames from the supervisor.
    static let jobs = FileDescriptor(rawValue: 3)
    /// fd 4, the write end of the result pipe: frames to the supervisor.
    static let results = FileDescriptor(rawValue: 4)
}

/// Process and file calls.
enum Posix {
    /// read(2) into the front of `buffer`, retrying on EINTR; returns the byte count, 0 at end of file.
    static func read(_ descriptor: FileDescriptor, into buffer: inout [UInt8]) throws(SystemError) -> Int {
        try retryingOnInterrupt(#function) {
            buffer.withUnsafeMutableBytes { Glibc.read(descriptor.rawValue, $0.baseAddress, $0.count) }
        }
    }

    /// write(2) of `bytes`, retrying on EINTR; returns how many were written (possibly fewer).
    static func write(_ descriptor: FileDescriptor, _ bytes: ArraySlice<UInt8>) throws(SystemError) -> Int {
        try retryingOnInterrupt(#function) {
            bytes.withUnsafeBytes { Glibc.write(descriptor.rawValue, $0.baseAddress, $0.count) }
        }
    }

    /// fcntl(2) with an integer argument.
    @discardableResult
    static func fcntl(_ descriptor: FileDescriptor, _ command: CInt, _ argument: CInt) throws(SystemError) -> CInt {
        try retryingOnInterrupt(#function) { Glibc.fcntl(descriptor.rawValue, command, argument) }
    }

    /// getpid(2).
    static func getpid() -> pid_t { Glibc.getpid() }

    /// pause(2): sleeps until a signal arrives.
    static func pause() { _ = Glibc.pause() }

    /// _exit(2): ends the process now, without atexit handlers or flushing.
    static func _exit(_ status: CInt) -> Never { Glibc._exit(status) }

    /// exit(3).
    static func exit(_ status: CInt) -> Never { Glibc.exit(status) }

    /// abort(3).
    static func abort() -> Never { Glibc.abort() }
}

/// Clock calls.
enum Time {
    // swift-format-ignore: AlwaysUseLowerCamelCase
    // Thin wrappers keep the C name (STYLE.md).
    /// clock_gettime(2); it fails only for a bad clock id, a programming error.
    static func clock_gettime(_ clock: clockid_t) -> timespec {
        var now = timespec()
        let result = Glibc.clock_gettime(clock, &now)
        precondition(result == 0, "clock_gettime(\(clock)) failed with errno \(errno)")
        return now
    }

    /// CLOCK_MONOTONIC in microseconds.
    static func monotonicMicroseconds() -> UInt64 {
        let now = clock_gettime(CLOCK_MONOTONIC)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }

    /// nanosleep(2) for the whole `milliseconds`: a signal interrupting it restarts it with the remaining time.
    static func nanosleep(milliseconds: Int) {
        var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        var remaining = timespec()
        while Glibc.nanosleep(&request, &remaining) == -1 {
            precondition(errno == EINTR, "nanosleep(\(milliseconds) ms) failed with errno \(errno)")
            request = remaining
        }
    }
}

/// Signal calls.
enum Signal {
    // signal(2) fails only with EINVAL for a number that names no signal or SIGKILL/SIGSTOP: the callers pass
    // constants, so its result (a C function pointer Swift cannot compare) is not checked.

    /// signal(2) to ignore `number`.
    static func ignore(_ number: CInt) {
        _ = Glibc.signal(number, SIG_IGN)
    }

    /// signal(2) back to the default disposition, then sigprocmask(2) to unblock `number`.
    ///
    /// The Swift runtime's crash backtracer installs handlers for SIGSEGV, SIGABRT and friends; a directive
    /// that must die of a signal restores the default first so the process dies at once, with that signal.
    static func restoreDefault(_ number: CInt) {
        _ = Glibc.signal(number, SIG_DFL)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, number)
        sigprocmask(SIG_UNBLOCK, &set, nil)
    }

    /// raise(3).
    static func raise(_ number: CInt) { _ = Glibc.raise(number) }
}

/// Runs `body` until it returns something other than -1 with EINTR; other failures throw.
func retryingOnInterrupt<Value: BinaryInteger>(
    _ call: String, _ body: () -> Value
) throws(SystemError) -> Value {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code != EINTR { throw SystemError(errno: code, call: call) }
    }
}
