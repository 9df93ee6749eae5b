import Glibc

/// How a child ended, decoded once from the wait status.
enum TerminationStatus: Equatable {
    /// exit(code).
    case exited(CInt)
    /// Killed by a signal.
    case signaled(CInt)
}

/// The conventional name of a signal number, e.g. "SIGSEGV" (the supervisor has the same table).
func signalName(_ signal: CInt) -> String {
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
    case SIGXCPU: return "SIGXCPU"
    case SIGXFSZ: return "SIGXFSZ"
    case SIGSYS: return "SIGSYS"
    case SIGTTIN: return "SIGTTIN"
    case SIGTTOU: return "SIGTTOU"
    default: return "signal \(signal)"
    }
}
