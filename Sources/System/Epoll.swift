import CLinux
import Glibc

/// epoll(7): readiness of many descriptors, each registered with a 64-bit token.
public enum Epoll {
    /// Readable (level-triggered).
    public static let readable = UInt32(EPOLLIN.rawValue)
    /// Writable (level-triggered).
    public static let writable = UInt32(EPOLLOUT.rawValue)
    /// Error on the descriptor (for a pipe write end: the reader is gone).
    public static let error = UInt32(EPOLLERR.rawValue)
    /// Peer hung up or error.
    public static let hangup = UInt32(EPOLLHUP.rawValue | EPOLLERR.rawValue | EPOLLRDHUP.rawValue)
    /// The operations of epoll_ctl.
    public static let add = EPOLL_CTL_ADD
    /// Changes a registration.
    public static let modify = EPOLL_CTL_MOD
    /// Removes a registration.
    public static let delete = EPOLL_CTL_DEL

    /// epoll_create1(EPOLL_CLOEXEC).
    public static func create() throws(SystemError) -> FileDescriptor {
        FileDescriptor(rawValue: try blockingCall("epoll_create1") { c_epoll_create1(CInt(EPOLL_CLOEXEC)) })
    }

    /// epoll_ctl(2).
    public static func control(
        _ epoll: FileDescriptor, _ operation: CInt, _ fd: FileDescriptor, events: UInt32, token: UInt64
    ) throws(SystemError) {
        _ = try blockingCall("epoll_ctl") { c_epoll_ctl(epoll.rawValue, operation, fd.rawValue, events, token) }
    }

    /// EPOLL_CTL_ADD, or EPOLL_CTL_MOD when the same open file is registered already (a library that may or may
    /// not have replaced its descriptor).
    public static func addOrModify(
        _ epoll: FileDescriptor, _ fd: FileDescriptor, events: UInt32, token: UInt64
    ) throws(SystemError) {
        do throws(SystemError) {
            try control(epoll, add, fd, events: events, token: token)
        } catch where error.errno == EEXIST {
            try control(epoll, modify, fd, events: events, token: token)
        }
    }

    /// epoll_wait(2) into the given arrays; an interrupted wait returns 0 events.
    public static func wait(
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
