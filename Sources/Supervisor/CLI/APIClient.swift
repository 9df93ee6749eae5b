import Glibc
import System

/// A small blocking HTTP/1.1 client for the command-line client (`prefork submit`, `job`, ...): one request per
/// connection, `Connection: close`, the answer read to the end. No TLS: the API is plain HTTP.
struct APIClient {
    /// An answer.
    struct Response {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: [UInt8]

        /// The body as text.
        var text: String { String(decoding: body, as: UTF8.self) }

        /// The body parsed as JSON (nil when it is not).
        var json: JSONValue? { try? JSONParser.parse(body) }

        /// The `error` member of an error body, or the body itself.
        var errorMessage: String {
            json?.objectValue?["error"]?.stringValue ?? text.trimmingSpaces
        }
    }

    /// Why a request got no answer.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Where the API is: `http://host:port`.
    var host: String
    var port: UInt16
    /// `Authorization: Bearer` token, when the server wants one.
    var token: String?

    /// The API at `url` (`http://host:port`, a path is ignored).
    init(url: String, token: String?) throws(Failure) {
        guard url.hasPrefix("http://") else {
            throw Failure(description: "PREFORK_URL must be http://host:port, got \"\(url)\" (https is not supported)")
        }
        var authority = Substring(url.dropFirst("http://".count))
        if let slash = authority.firstIndex(of: "/") { authority = authority[..<slash] }
        guard let address = SocketAddress(parsing: String(authority).contains(":") ? String(authority) : authority + ":80")
                ?? Self.named(String(authority))
        else {
            throw Failure(description: "PREFORK_URL \"\(url)\" must name an IP address (or localhost) and port")
        }
        host = address.description.hasPrefix("[") ? address.host : address.host
        port = address.port
        self.token = token
    }

    /// `localhost:PORT` style names resolved without DNS.
    private static func named(_ authority: String) -> SocketAddress? {
        guard let colon = authority.lastIndex(of: ":"), let port = UInt16(authority[authority.index(after: colon)...])
        else { return nil }
        let name = String(authority[..<colon])
        return (try? Socket.resolve(host: name, port: port))?.first
    }

    /// Sends one request and reads the whole answer; `timeout` bounds each wait for the socket.
    func request(
        _ method: String, _ target: String, body: [UInt8]? = nil, timeout: Int = 10_000
    ) throws(Failure) -> Response {
        guard let address = SocketAddress(host: host, port: port) else {
            throw Failure(description: "bad address \(host):\(port)")
        }
        let fd: FileDescriptor
        let progress: IOResult<Void>
        do throws(SystemError) {
            (fd, progress) = try Socket.connect(address)
        } catch {
            throw Failure(description: "cannot connect to \(address): \(error.message) (is prefork running?)")
        }
        if case .wouldBlock = progress {
            do throws(Failure) {
                try wait(fd, for: Int16(POLLOUT), timeout: timeout, doing: "connect to \(address)")
            } catch {
                fd.close()
                throw error
            }
            if let error = Socket.connectionResult(fd) {
                fd.close()
                throw Failure(description: "cannot connect to \(address): \(error.message) (is prefork running?)")
            }
        }
        defer { fd.close() }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(address)\r\nConnection: close\r\nUser-Agent: prefork-cli\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        var bytes = Array((head + "\r\n").utf8)
        if let body { bytes += body }
        var sent = 0
        while sent < bytes.count {
            let result = bytes.withUnsafeBytes { try? fd.send(UnsafeRawBufferPointer(rebasing: $0[sent...])) }
            switch result {
            case .processed(let count)?: sent += count
            case .wouldBlock?: try wait(fd, for: Int16(POLLOUT), timeout: timeout, doing: "send")
            case nil: throw Failure(description: "connection to \(address) closed while sending")
            }
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        reading: while true {
            let result = try? chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
            switch result {
            case .processed(let count)? where count > 0: answer.append(contentsOf: chunk[0..<count])
            case .wouldBlock?: try wait(fd, for: Int16(POLLIN), timeout: timeout, doing: "read the answer")
            case .processed?: break reading
            case nil: break reading
            }
        }
        return try Self.parse(answer)
    }

    private func wait(_ fd: FileDescriptor, for events: Int16, timeout: Int, doing what: String) throws(Failure) {
        var descriptors = [pollfd(fd: fd.rawValue, events: events, revents: 0)]
        let ready: Int
        do throws(SystemError) {
            ready = try Posix.poll(&descriptors, timeoutMilliseconds: CInt(timeout))
        } catch {
            throw Failure(description: "\(what): \(error)")
        }
        if ready == 0 { throw Failure(description: "no answer within \(timeout) ms while trying to \(what)") }
    }

    /// Splits an answer read to its end into status, headers and body (Content-Length or to the end).
    static func parse(_ bytes: [UInt8]) throws(Failure) -> Response {
        let separator: [UInt8] = [13, 10, 13, 10]
        var end: Int?
        if bytes.count >= 4 {
            for index in 0...(bytes.count - 4) where Array(bytes[index..<(index + 4)]) == separator {
                end = index
                break
            }
        }
        guard let end else { throw Failure(description: "the server closed the connection without an answer") }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).split(separator: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw Failure(description: "not an HTTP answer: \(lines.first ?? "")")
        }
        var headers: [(name: String, value: String)] = []
        var length: Int?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon])
            let value = String(line[line.index(after: colon)...]).trimmingSpaces
            headers.append((name, value))
            if name.lowercased() == "content-length" { length = Int(value) }
        }
        var body = Array(bytes[(end + 4)...])
        if let length, body.count > length { body = Array(body[..<length]) }
        return Response(status: status, headers: headers, body: body)
    }
}
