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
        var pid: Int32 = 0
        let signal = c_signalfd_read(fd.rawValue, &pid)
        if signal < 0 { throw SystemError(call: "read(signalfd)") }
        return signal == 0 ? nil : signal
    }
}
