import Glibc

/// poll(2) of one descriptor, for code that waits on a single descriptor outside the event loop: tests and
/// command-line tools that drive a non-blocking protocol (a PostgreSQL connection) step by step.
public enum Poll {
    /// Readiness conditions, asked for and reported.
    public struct Events: OptionSet, Sendable {
        /// The poll(2) bits.
        public let rawValue: Int16
        /// Events from poll(2) bits.
        public init(rawValue: Int16) { self.rawValue = rawValue }

        /// POLLIN: a read would not block.
        public static let readable = Events(rawValue: Int16(POLLIN))
        /// POLLOUT: a write would not block.
        public static let writable = Events(rawValue: Int16(POLLOUT))
        /// POLLHUP or POLLERR: the peer hung up or the descriptor has an error (reported even when not asked).
        public static let hangup = Events(rawValue: Int16(POLLHUP) | Int16(POLLERR))
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) for `fd` to become ready for any of `events`; returns what
    /// it is ready for, empty on timeout or when a signal interrupted the wait (callers loop to their deadline).
    public static func wait(
        _ fd: FileDescriptor, for events: Events, timeoutMilliseconds: CInt
    ) throws(SystemError) -> Events {
        var entry = pollfd(fd: fd.rawValue, events: events.rawValue, revents: 0)
        let count = Glibc.poll(&entry, 1, timeoutMilliseconds)
        if count == -1 {
            if errno == EINTR { return [] }
            throw SystemError(call: "poll")
        }
        if entry.revents & Int16(POLLNVAL) != 0 {
            preconditionFailure("poll(\(fd.rawValue)): POLLNVAL, the descriptor is not open: a bug")
        }
        return Events(rawValue: entry.revents)
    }
}
