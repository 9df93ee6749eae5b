import Foundation
import Glibc
import Synchronization

/// A local HTTP server that records every request it gets and answers with scripted statuses: the far end of
/// callback deliveries. One thread accepts and serves connections one at a time (`Connection: close`).
final class CallbackReceiver: Sendable {
    /// One request as received.
    struct Request: Sendable {
        let method: String
        let target: String
        let headers: [String: String]
        let body: [UInt8]

        /// The body parsed as a JSON object.
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
        }
    }

    /// The port it listens on (127.0.0.1).
    let port: UInt16
    private let listener: CInt
    private let state: Mutex<(requests: [Request], statuses: [Int], stopped: Bool)>

    /// Listens on `port` (0: a free one); answers the n-th request with `statuses[n]`, then 200.
    init(statuses: [Int] = [], port: UInt16 = 0) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.listener = listener
        var one: CInt = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            Glibc.close(listener)
            throw HTTPClientError(description: "callback receiver cannot listen: \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        self.port = UInt16(bigEndian: address.sin_port)
        state = Mutex(([], statuses, false))
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    deinit { stop() }

    /// Every request so far.
    var requests: [Request] { state.withLock { $0.requests } }

    /// Stops accepting (the thread exits at its next accept).
    func stop() {
        let first = state.withLock { state in
            defer { state.stopped = true }
            return !state.stopped
        }
        if first {
            shutdown(listener, Int32(SHUT_RDWR))
            Glibc.close(listener)
        }
    }

    private func serve() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            handle(client)
            Glibc.close(client)
        }
    }

    private func handle(_ client: CInt) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Int?
        var contentLength = 0
        while true {
            let count = read(client, &chunk, chunk.count)
            if count <= 0 { return }
            bytes.append(contentsOf: chunk[0..<count])
            if headerEnd == nil, let range = Data(bytes).range(of: Data("\r\n\r\n".utf8)) {
                headerEnd = range.upperBound
                let head = String(decoding: bytes[..<range.lowerBound], as: UTF8.self)
                for line in head.split(separator: "\r\n").dropFirst() {
                    if let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == "content-length" {
                        contentLength = Int(String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)) ?? 0
                    }
                }
            }
            if let headerEnd, bytes.count >= headerEnd + contentLength { break }
        }
        guard let end = headerEnd else { return }
        let head = String(decoding: bytes[..<(end - 4)], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        let requestLine = lines.first?.split(separator: " ") ?? []
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        }
        let request = Request(
            method: requestLine.count > 0 ? String(requestLine[0]) : "", target: requestLine.count > 1 ? String(requestLine[1]) : "",
            headers: headers, body: Array(bytes[end..<(end + contentLength)]))
        let status = state.withLock { state -> Int in
            state.requests.append(request)
            return state.statuses.isEmpty ? 200 : state.statuses.removeFirst()
        }
        let response = "HTTP/1.1 \(status) X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        _ = response.withCString { write(client, $0, strlen($0)) }
    }
}
