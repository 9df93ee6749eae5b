import Glibc

/// How a child ended, decoded once from the wait status.
enum TerminationStatus: Equatable {
    /// exit(code).
    case exited(CInt)
    /// Killed by a signal.
    case signaled(CInt)
}
