import CLinux
import Glibc

/// Signal dispositions of this process.
public enum Signal {
    /// Ignores `number` (SIGPIPE: a vanished peer then surfaces as EPIPE).
    public static func ignore(_ number: CInt) {
        _ = Glibc.signal(number, SIG_IGN)
    }

    /// Back to the default disposition, and unblocked. The Swift runtime's crash backtracer installs handlers
    /// for SIGSEGV and friends; code that must die of a signal restores the default first.
    public static func restoreDefault(_ number: CInt) {
        _ = Glibc.signal(number, SIG_DFL)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, number)
        sigprocmask(SIG_UNBLOCK, &set, nil)
    }

    /// raise(3).
    public static func raise(_ number: CInt) {
        _ = Glibc.raise(number)
    }

    /// The real-time signal that asks the supervisor for a worker count (`prefork ctl scale N`): SIGRTMIN+1,
    /// with the count as its sigqueue(3) payload.
    public static var scale: CInt { c_sigrtmin() + 1 }

    /// Sends `number` to `pid` with an integer payload (sigqueue(3)).
    public static func queue(_ number: CInt, to pid: Int32, value: Int32) throws(SystemError) {
        let error = c_sigqueue(pid, number, value)
        if error != 0 { throw SystemError(call: "sigqueue(\(pid))", errno: error) }
    }

    /// kill(2).
    public static func send(_ number: CInt, to pid: Int32) throws(SystemError) {
        if Glibc.kill(pid, number) != 0 { throw SystemError(call: "kill(\(pid))") }
    }
}

/// signalfd(2): signals read as events from a descriptor instead of running handlers.
public enum SignalFD {
    /// Blocks `signals` and returns a non-blocking, close-on-exec signalfd that reports them.
    public static func create(_ signals: [CInt]) throws(SystemError) -> FileDescriptor {
        let fd = signals.withUnsafeBufferPointer {
            c_signalfd_for($0.baseAddress, CInt($0.count), CInt(SFD_NONBLOCK | SFD_CLOEXEC))
        }
        guard fd >= 0 else { throw SystemError(call: "signalfd") }
        return FileDescriptor(rawValue: fd)
    }

    /// The next pending signal number, or nil when none is pending.
    public static func read(_ fd: FileDescriptor) throws(SystemError) -> CInt? {
        try readWithValue(fd)?.signal
    }

    /// The next pending signal and the integer its sender attached with sigqueue(3), or nil when none is pending.
    public static func readWithValue(_ fd: FileDescriptor) throws(SystemError) -> (signal: CInt, value: Int32)? {
        var pid: Int32 = 0
        var value: Int32 = 0
        let signal = c_signalfd_read(fd.rawValue, &pid, &value)
        if signal < 0 { throw SystemError(call: "read(signalfd)") }
        return signal == 0 ? nil : (signal, value)
    }
}
