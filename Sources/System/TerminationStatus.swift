import CLinux
import Glibc

/// How a child ended, decoded once from the wait status (the toolchain has no WIFEXITED family).
public enum TerminationStatus: Equatable, Sendable, CustomStringConvertible {
    /// exit(code).
    case exited(CInt)
    /// Killed by a signal.
    case signaled(CInt)

    /// Decodes a wait(2) status; nil for stopped or continued (not an exit).
    public init?(waitStatus: CInt) {
        var code: CInt = 0
        switch c_wait_status(waitStatus, &code) {
        case 0: self = .exited(code)
        case 1: self = .signaled(code)
        default: return nil
        }
    }

    /// The log's form: "exited 3" / "signal 11 (SIGSEGV)".
    public var logValue: String {
        switch self {
        case .exited(let code): return "exited \(code)"
        case .signaled(let signal): return "signal \(signal) (\(signalName(signal)))"
        }
    }

    /// "exited with status 3" / "exited on signal 11 (SIGSEGV)".
    public var description: String {
        switch self {
        case .exited(let code): return "exited with status \(code)"
        case .signaled(let signal): return "exited on signal \(signal) (\(signalName(signal)))"
        }
    }
}

/// The conventional name of a signal number, e.g. "SIGSEGV".
public func signalName(_ signal: CInt) -> String {
    switch signal {
    case SIGHUP: return "SIGHUP"
    case SIGINT: return "SIGINT"
    case SIGQUIT: return "SIGQUIT"
    case SIGILL: return "SIGILL"
    case SIGTRAP: return "SIGTRAP"
    case SIGABRT: return "SIGABRT"
    case SIGBUS: return "SIGBUS"
    case SIGFPE: return "SIGFPE"
    case SIGKILL: return "SIGKILL"
    case SIGUSR1: return "SIGUSR1"
    case SIGSEGV: return "SIGSEGV"
    case SIGUSR2: return "SIGUSR2"
    case SIGPIPE: return "SIGPIPE"
    case SIGALRM: return "SIGALRM"
    case SIGTERM: return "SIGTERM"
    case SIGCHLD: return "SIGCHLD"
    case SIGCONT: return "SIGCONT"
    case SIGSTOP: return "SIGSTOP"
    case SIGTSTP: return "SIGTSTP"
    case SIGXCPU: return "SIGXCPU"
    case SIGXFSZ: return "SIGXFSZ"
    case SIGSYS: return "SIGSYS"
    case SIGTTIN: return "SIGTTIN"
    case SIGTTOU: return "SIGTTOU"
    default: return "signal \(signal)"
    }
}
