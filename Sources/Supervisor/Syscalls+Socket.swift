import CLinux
import Glibc

/// Socket calls for the listener and client connections.
enum Socket {
    /// A parsed listen address.
    struct Address {
        /// IPv4 dotted quad or IPv6 text (without brackets).
        var host: String
        /// TCP port; 0 asks the kernel for a free one.
        var port: UInt16
        /// Whether `host` is IPv6.
        var isIPv6: Bool

        /// Parses "HOST:PORT" or "[V6]:PORT"; "localhost" means 127.0.0.1.
        init?(_ text: String) {
            let host: Substring
            let portText: Substring
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                    return nil
                }
                host = text[text.index(after: text.startIndex)..<close]
                portText = text[text.index(close, offsetBy: 2)...]
                isIPv6 = true
            } else {
                guard let colon = text.lastIndex(of: ":") else { return nil }
                host = text[..<colon] == "localhost" ? "127.0.0.1" : text[..<colon]
                portText = text[text.index(after: colon)...]
                isIPv6 = false
            }
            guard let port = UInt16(portText), !host.isEmpty else { return nil }
            self.host = String(host)
            self.port = port
        }

        /// "host:port" or "[host]:port".
        var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// Creates a non-blocking, close-on-exec TCP listener bound to `address`; returns it and the bound address.
    static func listen(_ address: Address, backlog: CInt = 1024) throws(SystemError) -> (FileDescriptor, Address) {
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let fd = Glibc.socket(
            family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError(call: "socket") }
        var one: CInt = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        var bound = address
        do throws(SystemError) {
            if address.isIPv6 {
                var sin6 = sockaddr_in6()
                sin6.sin6_family = sa_family_t(AF_INET6)
                sin6.sin6_port = address.port.bigEndian
                try parse(address.host, family: AF_INET6, into: &sin6.sin6_addr)
                try bindAndListen(fd, &sin6, backlog: backlog)
                bound.port = UInt16(bigEndian: sin6.sin6_port)
            } else {
                var sin = sockaddr_in()
                sin.sin_family = sa_family_t(AF_INET)
                sin.sin_port = address.port.bigEndian
                try parse(address.host, family: AF_INET, into: &sin.sin_addr)
                try bindAndListen(fd, &sin, backlog: backlog)
                bound.port = UInt16(bigEndian: sin.sin_port)
            }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return (FileDescriptor(rawValue: fd), bound)
    }

    private static func parse<Raw>(_ host: String, family: CInt, into raw: inout Raw)
        throws(SystemError)
    {
        let result = withUnsafeMutableBytes(of: &raw) { inet_pton(family, host, $0.baseAddress) }
        guard result == 1 else { throw SystemError(call: "inet_pton(\(host))", errno: EINVAL) }
    }

    /// Binds, listens, and reads back the bound address into `address` (port 0 becomes the chosen port).
    private static func bindAndListen<Address>(_ fd: CInt, _ address: inout Address, backlog: CInt)
        throws(SystemError)
    {
        var size = socklen_t(MemoryLayout<Address>.size)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, size) }
        }
        guard result == 0 else { throw SystemError(call: "bind") }
        guard Glibc.listen(fd, backlog) == 0 else { throw SystemError(call: "listen") }
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &size) }
        }
    }

    /// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC; returns the client and its "ip:port".
    static func accept(_ listener: FileDescriptor) throws(SystemError) -> IOResult<(FileDescriptor, String)> {
        var peer = [CChar](repeating: 0, count: 64)
        while true {
            let fd = c_accept4(
                listener.rawValue, &peer, CInt(peer.count), CInt(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
            if fd >= 0 {
                var one: CInt = 1
                _ = setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
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
}
