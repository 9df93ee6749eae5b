import CLinux
import Glibc

/// An IPv4 or IPv6 address and port: what the listener binds and outbound connections reach.
public struct SocketAddress: Equatable, Sendable, CustomStringConvertible {
    /// IPv4 dotted quad or IPv6 text (without brackets).
    public var host: String
    /// TCP port; 0 asks the kernel for a free one when listening.
    public var port: UInt16
    /// Whether `host` is IPv6.
    public var isIPv6: Bool

    /// An address from an IP literal; nil when `host` is not one.
    public init?(host: String, port: UInt16) {
        var probe = in6_addr()
        if host.withCString({ inet_pton(AF_INET, $0, &probe) }) == 1 {
            isIPv6 = false
        } else if host.withCString({ inet_pton(AF_INET6, $0, &probe) }) == 1 {
            isIPv6 = true
        } else {
            return nil
        }
        self.host = host
        self.port = port
    }

    /// Parses "HOST:PORT" or "[V6]:PORT" with an IP literal host; "localhost" means 127.0.0.1.
    public init?(parsing text: String) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return nil
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon] == "localhost" ? "127.0.0.1" : text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }  // IPv6 needs brackets
        }
        guard !portText.isEmpty, portText.utf8.allSatisfy({ $0 &- 48 < 10 }), let port = UInt16(portText) else {
            return nil
        }
        self.init(host: String(host), port: port)
        if text.hasPrefix("[") != isIPv6 { return nil }
    }

    /// "host:port" or "[host]:port".
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Calls `body` with this address as a `sockaddr` of the right family and size.
    func withSocketAddress<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        if isIPv6 {
            var raw = sockaddr_in6()
            raw.sin6_family = sa_family_t(AF_INET6)
            raw.sin6_port = port.bigEndian
            _ = host.withCString { inet_pton(AF_INET6, $0, &raw.sin6_addr) }
            return withUnsafePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        var raw = sockaddr_in()
        raw.sin_family = sa_family_t(AF_INET)
        raw.sin_port = port.bigEndian
        _ = host.withCString { inet_pton(AF_INET, $0, &raw.sin_addr) }
        return withUnsafePointer(to: &raw) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}

/// TCP and Unix-datagram sockets.
public enum Socket {
    /// A non-blocking, close-on-exec TCP listener bound to `address`; returns it and the bound address.
    public static func listen(_ address: SocketAddress, backlog: CInt = 1024) throws(SystemError) -> (
        FileDescriptor, SocketAddress
    ) {
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let fd = FileDescriptor(
            rawValue: try blockingCall("socket") {
                Glibc.socket(family, CInt(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
            })
        var one: CInt = 1
        _ = setsockopt(fd.rawValue, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        do throws(SystemError) {
            let bound = address.withSocketAddress { pointer, size in Glibc.bind(fd.rawValue, pointer, size) }
            guard bound == 0 else { throw SystemError(call: "bind \(address)") }
            _ = try blockingCall("listen \(address)") { Glibc.listen(fd.rawValue, backlog) }
        } catch {
            fd.close()
            throw error
        }
        var result = address
        result.port = UInt16(c_local_port(fd.rawValue))
        return (fd, result)
    }

    /// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC and TCP_NODELAY; returns the client and its "ip:port".
    public static func accept(_ listener: FileDescriptor) throws(SystemError) -> IOResult<(FileDescriptor, String)> {
        var peer = [CChar](repeating: 0, count: 64)
        while true {
            let fd = c_accept4(
                listener.rawValue, &peer, CInt(peer.count), CInt(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
            if fd >= 0 {
                setNoDelay(FileDescriptor(rawValue: fd))
                let text = peer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                return .processed((FileDescriptor(rawValue: fd), text))
            }
            switch errno {
            case EINTR, ECONNABORTED: continue
            case EAGAIN: return .wouldBlock
            default: throw SystemError(call: "accept4")
            }
        }
    }

    /// Starts a non-blocking TCP connection to `address`: `.processed` when connected at once, `.wouldBlock`
    /// while it is in progress (wait for writability, then `connectionResult`). The descriptor is the caller's.
    public static func connect(_ address: SocketAddress) throws(SystemError) -> (FileDescriptor, IOResult<Void>) {
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let fd = FileDescriptor(
            rawValue: try blockingCall("socket") {
                Glibc.socket(family, CInt(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
            })
        let result = address.withSocketAddress { pointer, size in Glibc.connect(fd.rawValue, pointer, size) }
        if result == 0 {
            setNoDelay(fd)
            return (fd, .processed(()))
        }
        let error = errno
        if error == EINPROGRESS || error == EINTR {
            setNoDelay(fd)
            return (fd, .wouldBlock)
        }
        fd.close()
        throw SystemError(call: "connect \(address)", errno: error)
    }

    /// The outcome of a non-blocking connect once the socket is writable (SO_ERROR).
    public static func connectionResult(_ fd: FileDescriptor) -> SystemError? {
        var error: CInt = 0
        var size = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(fd.rawValue, SOL_SOCKET, SO_ERROR, &error, &size) == 0 else {
            return SystemError(call: "getsockopt(SO_ERROR)")
        }
        return error == 0 ? nil : SystemError(call: "connect", errno: error)
    }

    /// Resolves `host` to addresses with getaddrinfo(3). Blocks (DNS): call it off the event loop.
    public static func resolve(host: String, port: UInt16) throws(SystemError) -> [SocketAddress] {
        if let literal = SocketAddress(host: host, port: port) { return [literal] }
        var found = [CChar](repeating: 0, count: 8 * 64)
        let count = c_resolve(host, &found, 8)
        guard count >= 0 else { throw SystemError(call: "getaddrinfo(\(host))", errno: -count) }
        var result: [SocketAddress] = []
        for index in 0..<Int(count) {
            let text = found[(index * 64)..<(index * 64 + 64)].withUnsafeBufferPointer {
                String(cString: $0.baseAddress!)
            }
            if let address = SocketAddress(host: text, port: port) { result.append(address) }
        }
        return result
    }

    /// Sends one datagram to the Unix socket at `path` (a leading "@" means the abstract namespace), as
    /// sd_notify(3) does. The socket is opened and closed for the one message.
    public static func sendDatagram(_ bytes: [UInt8], toUnixPath path: String) throws(SystemError) {
        let code = bytes.withUnsafeBytes { buffer in
            c_send_unix_datagram(path, buffer.baseAddress, buffer.count)
        }
        if code != 0 { throw SystemError(call: "sendto(\(path))", errno: code) }
    }

    private static func setNoDelay(_ fd: FileDescriptor) {
        var one: CInt = 1
        _ = setsockopt(fd.rawValue, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
    }
}
