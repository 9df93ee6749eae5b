/// A callback address: `http://host[:port]/path`, the only form deliveries support (no TLS library here; an
/// HTTPS endpoint is reached through a local relay).
struct CallbackURL: Equatable {
    /// The host as written (a name or an IPv4 address; IPv6 literals in brackets).
    var host: String
    /// The port, 80 when absent.
    var port: UInt16
    /// Path and query, "/" when absent.
    var target: String

    /// Parses `text`; the error says what is wrong with it.
    init(parsing text: String) throws(CallbackURLError) {
        guard text.utf8.count <= 2048 else { throw .invalid("is longer than 2048 bytes") }
        guard text.hasPrefix("http://") else {
            throw .invalid(
                text.hasPrefix("https://")
                    ? "uses https, which callbacks do not support (no TLS library); use a local relay"
                    : "must start with http://")
        }
        let rest = text.dropFirst("http://".count)
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if let fragment = target.firstIndex(of: "#") { target = String(target[..<fragment]) }
        if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
        guard !authority.contains("@") else { throw .invalid("must not contain user information") }
        var host = Substring(authority)
        var port: UInt16 = 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .invalid("has an unterminated [IPv6] host") }
            host = authority[authority.startIndex...close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let number = UInt16(after.dropFirst()), number > 0 else {
                    throw .invalid("has an invalid port")
                }
                port = number
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let number = UInt16(authority[authority.index(after: colon)...]), number > 0 else {
                throw .invalid("has an invalid port")
            }
            port = number
        }
        guard !host.isEmpty else { throw .invalid("has no host") }
        for byte in host.utf8 where byte <= 0x20 || byte >= 0x7f {
            throw .invalid("has a host with spaces or control characters")
        }
        for byte in target.utf8 where byte <= 0x20 || byte == 0x7f {
            throw .invalid("has a path with spaces or control characters (percent-encode them)")
        }
        self.host = host.lowercased()
        self.port = port
        self.target = target
    }

    /// The `Host` header value.
    var hostHeader: String { port == 80 ? host : "\(host):\(port)" }

    /// Whether `callbacks.allowed_hosts` lets deliveries go here: an entry is a host (any port) or `host:port`.
    func isAllowed(by allowedHosts: [String]) -> Bool {
        allowedHosts.contains { entry in
            let entry = entry.lowercased()
            return entry == host || entry == "\(host):\(port)"
        }
    }
}

/// Why a `callback_url` cannot be used.
enum CallbackURLError: Error, Equatable, CustomStringConvertible {
    /// The text is not an `http://host[:port]/path` URL.
    case invalid(String)

    var description: String {
        switch self {
        case .invalid(let why): return why
        }
    }
}
