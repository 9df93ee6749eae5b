import Foundation
import Glibc

/// A parsed HTTP/1.1 response.
struct HTTPResponse: Sendable, CustomStringConvertible {
    let status: Int
    let reason: String
    /// Header fields in order received, names as sent.
    let headers: [(name: String, value: String)]
    let body: [UInt8]

    /// The body decoded as UTF-8.
    var text: String { String(decoding: body, as: UTF8.self) }

    /// The first value of header `name` (case-insensitive).
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The body parsed as a JSON object.
    func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw HTTPClientError(description: "body is not a JSON object: \(text)")
        }
        return object
    }

    var description: String { "\(status) \(reason) \(text)" }
}

/// A client-side failure: connect error, timeout, early close or an unparsable response.
struct HTTPClientError: Error, CustomStringConvertible {
    let description: String
}

/// One blocking TCP connection to 127.0.0.1 speaking raw HTTP/1.1, for keep-alive, pipelining and malformed
/// input tests. Reads time out after `timeout`; responses are framed by Content-Length (or chunked, or close).
final class HTTPConnection {
    private var fd: CInt
    private var buffer: [UInt8] = []
    private let port: UInt16
    private let timeout: Duration

    /// Connects to `127.0.0.1:port`.
    init(port: UInt16, timeout: Duration = .seconds(5)) throws {
        self.port = port
        self.timeout = timeout
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HTTPClientError(description: "socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let message = String(cString: strerror(errno))
            // Every stored property is set, so `self` is fully initialized and `deinit` runs when this init
            // throws: close through `close()`, which marks the fd closed, or deinit closes the number again
            // (by then possibly another test's socket).
            close()
            throw HTTPClientError(description: "connect 127.0.0.1:\(port): \(message)")
        }
    }

    deinit { close() }

    /// Closes the socket (idempotent).
    func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Writes all of `bytes`. Throws if the peer has gone (EPIPE / ECONNRESET); SIGPIPE is never raised.
    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw HTTPClientError(description: "send: \(String(cString: strerror(errno)))") }
            offset += count
        }
    }

    /// Writes `text` as UTF-8.
    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Sends one request; `body` gets a Content-Length header.
    func sendRequest(_ method: String, _ path: String, body: String? = nil, headers: [(String, String)] = []) throws {
        try send(Self.requestBytes(method, path, port: port, body: body, headers: headers))
    }

    /// Sends one request and reads its response.
    func request(
        _ method: String, _ path: String, body: String? = nil, headers: [(String, String)] = []
    ) throws -> HTTPResponse {
        try sendRequest(method, path, body: body, headers: headers)
        return try readResponse()
    }

    /// Reads the next complete response from the connection (responses to pipelined requests come in order).
    func readResponse() throws -> HTTPResponse {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let response = try parseResponse(closed: false) { return response }
            let received = try receive(until: deadline)
            if received == 0 {
                if let response = try parseResponse(closed: true) { return response }
                throw HTTPClientError(
                    description: "connection closed before a complete response; got \(bufferedText.debugDescription)")
            }
        }
    }

    /// Waits until the server closes the connection (EOF or reset), keeping any bytes it sent first in
    /// `bufferedText`. Returns false if the connection is still open after `timeout`. Polls without
    /// blocking a thread, since tests share a small cooperative pool.
    func waitForClose(timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while try await waitUntilReadable(timeout: deadline - ContinuousClock.now) {
            // Readable now: the read does not wait (a late wake-up of this task must not turn into a timeout).
            if try receive(until: ContinuousClock.now + .seconds(1)) == 0 { return true }
        }
        return false
    }

    /// Waits until the server sends something or closes (true), or `timeout` passes (false), polling
    /// without blocking a thread.
    func waitUntilReadable(timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 0)
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR {
                throw HTTPClientError(description: "poll: \(String(cString: strerror(errno)))")
            }
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Bytes received but not yet consumed as a response, as text.
    var bufferedText: String { String(decoding: buffer, as: UTF8.self) }

    /// Consumes and returns a complete response if the buffer holds one, else nil (nothing consumed).
    /// Bytes received so far can be inspected with `bufferedText`.
    func takeBufferedResponse() throws -> HTTPResponse? { try parseResponse(closed: true) }

    /// Receives raw bytes until `done` holds for everything received so far (or the server closes); returns the
    /// text received. For answers `readResponse` cannot frame, like a response to HEAD.
    func receiveRaw(timeout: Duration = .seconds(5), until done: (String) -> Bool) throws -> String {
        let deadline = ContinuousClock.now + timeout
        while !done(bufferedText) {
            if try receive(until: deadline) == 0 { break }
        }
        return bufferedText
    }

    /// Receives into the buffer. Returns the count read, 0 on EOF or reset; throws "timeout" at the deadline.
    private func receive(until deadline: ContinuousClock.Instant) throws -> Int {
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw HTTPClientError(description: "timeout reading from server") }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(
                max(
                    1,
                    remaining.components.seconds * 1000
                        + remaining.components.attoseconds / 1_000_000_000_000_000))
            let ready = poll(&poller, 1, milliseconds)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            if count < 0 && errno == ECONNRESET { return 0 }
            guard count >= 0 else { throw HTTPClientError(description: "recv: \(String(cString: strerror(errno)))") }
            buffer += chunk[0..<count]
            return count
        }
    }

    /// Parses one response from the front of the buffer. `closed` means no more bytes will come.
    private func parseResponse(closed: Bool) throws -> HTTPResponse? {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let headerEnd = buffer.firstRange(of: separator) else { return nil }
        let head = String(decoding: buffer[..<headerEnd.lowerBound], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw HTTPClientError(description: "bad status line \(statusLine.debugDescription)")
        }
        let headers = lines.map { line -> (name: String, value: String) in
            let pieces = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(pieces[0]), pieces.count > 1 ? pieces[1].trimmingCharacters(in: .whitespaces) : "")
        }
        func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name }?.value }

        let bodyStart = headerEnd.upperBound
        var body: [UInt8]
        var consumed: Int
        if (100..<200).contains(status) || status == 204 || status == 304 {
            body = []
            consumed = bodyStart
        } else if let lengthText = header("content-length") {
            guard let length = Int(lengthText) else {
                throw HTTPClientError(description: "bad Content-Length \(lengthText)")
            }
            guard buffer.count - bodyStart >= length else { return nil }
            body = Array(buffer[bodyStart..<bodyStart + length])
            consumed = bodyStart + length
        } else if header("transfer-encoding")?.lowercased().contains("chunked") == true {
            guard let (chunked, end) = try decodeChunked(from: bodyStart) else { return nil }
            body = chunked
            consumed = end
        } else {
            guard closed else { return nil }
            body = Array(buffer[bodyStart...])
            consumed = buffer.count
        }
        buffer.removeFirst(consumed)
        return HTTPResponse(
            status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers, body: body)
    }

    private func decodeChunked(from start: Int) throws -> ([UInt8], Int)? {
        var body: [UInt8] = []
        var index = start
        let crlf: [UInt8] = Array("\r\n".utf8)
        while true {
            guard let lineEnd = buffer[index...].firstRange(of: crlf) else { return nil }
            let sizeText = String(decoding: buffer[index..<lineEnd.lowerBound], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";")[0], radix: 16) else {
                throw HTTPClientError(description: "bad chunk size \(sizeText)")
            }
            index = lineEnd.upperBound
            if size == 0 {
                guard let trailerEnd = buffer[index...].firstRange(of: crlf) else { return nil }
                return (body, trailerEnd.upperBound)
            }
            guard buffer.count >= index + size + 2 else { return nil }
            body += buffer[index..<index + size]
            index += size + 2
        }
    }

    /// The bytes of one request with Host and (for a body) Content-Length headers.
    static func requestBytes(
        _ method: String, _ path: String, port: UInt16, body: String? = nil, headers: [(String, String)] = []
    ) -> [UInt8] {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        let bodyBytes = Array((body ?? "").utf8)
        if body != nil || method == "POST" || method == "PUT" { text += "Content-Length: \(bodyBytes.count)\r\n" }
        text += "\r\n"
        return Array(text.utf8) + bodyBytes
    }
}

/// One-shot requests: a fresh connection per request.
enum HTTPClient {
    /// Sends `method path` with an optional body on a new connection and returns the response.
    static func request(
        port: UInt16, _ method: String, _ path: String, body: String? = nil, headers: [(String, String)] = [],
        timeout: Duration = .seconds(5)
    ) throws -> HTTPResponse {
        let connection = try HTTPConnection(port: port, timeout: timeout)
        defer { connection.close() }
        return try connection.request(method, path, body: body, headers: headers)
    }
}
