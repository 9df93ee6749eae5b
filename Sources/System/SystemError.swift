import Glibc

/// A failed system call: the C name and the `errno` it left behind.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The errno value.
    public let errno: CInt
    /// The call that failed, as its C name, sometimes with what it was called on: `open(data/journal)`.
    public let call: String

    /// An error for `call` with `errno` (the current errno when not given).
    public init(call: String, errno: CInt = Glibc.errno) {
        self.errno = errno
        self.call = call
    }

    /// strerror(3) of `errno` alone, e.g. "No such file or directory".
    public var message: String { String(cString: strerror(errno)) }

    /// "call: strerror (errno N)".
    public var description: String { "\(call): \(message) (errno \(errno))" }
}

/// The result of an I/O call on a non-blocking descriptor.
public enum IOResult<Value> {
    /// The call completed with this value (for reads, 0 means end of file).
    case processed(Value)
    /// EAGAIN: the descriptor is not ready; try again when epoll or poll says so.
    case wouldBlock
}

extension IOResult: Equatable where Value: Equatable {}

/// Runs a call that returns -1 and sets errno on failure, retrying on EINTR. For blocking calls: EAGAIN is an
/// error like any other. EBADF and EFAULT are programmer errors and trap.
@usableFromInline @inline(__always)
func blockingCall<T: FixedWidthInteger>(_ call: String, _ body: () -> T) throws(SystemError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let error = errno
        switch error {
        case EINTR: continue
        case EBADF, EFAULT: preconditionFailure("\(call) failed with errno \(error): a bug, not a world error")
        default: throw SystemError(call: call, errno: error)
        }
    }
}

/// Like `blockingCall`, for non-blocking descriptors: EAGAIN is `.wouldBlock`, not an error.
@usableFromInline @inline(__always)
func nonBlockingCall<T: FixedWidthInteger>(_ call: String, _ body: () -> T) throws(SystemError) -> IOResult<T> {
    while true {
        let result = body()
        if result != -1 { return .processed(result) }
        let error = errno
        switch error {
        case EINTR: continue
        case EAGAIN: return .wouldBlock
        case EBADF, EFAULT: preconditionFailure("\(call) failed with errno \(error): a bug, not a world error")
        default: throw SystemError(call: call, errno: error)
        }
    }
}
