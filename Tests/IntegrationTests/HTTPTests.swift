import Foundation
import Glibc
import Testing

/// HTTP/1.1 connection handling: keep-alive, pipelining, malformed and hostile input, limits.
@Suite(.timeLimit(.minutes(1)))
struct HTTPTests {
    @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }

        let connection = try prefork.connect()
        let first = try connection.request("GET", "/healthz")
        #expect(first.status == 200)
        #expect(try first.json().string("status") == "ok")
        let body = PreforkProcess.enqueueBody(id: "ka", payload: "@ok")
        let second = try connection.request("POST", "/enqueue", body: body)
        #expect(second.status == 202)
        let third = try connection.request("GET", "/jobs/ka")
        #expect(third.status == 200)
        #expect(try await connection.waitForClose(timeout: .milliseconds(200)) == false)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }
        try await prefork.waitForIdleWorkers(2)  // /readyz is 200 once a worker is up

        let connection = try prefork.connect()
        let requests = [("GET", "/healthz"), ("GET", "/jobs/missing"), ("GET", "/readyz"), ("GET", "/nowhere")]
        try connection.send(requests.flatMap { HTTPConnection.requestBytes($0.0, $0.1, port: prefork.port) })
        var statuses: [Int] = []
        for _ in requests { statuses.append(try connection.readResponse().status) }
        #expect(statuses == [200, 404, 200, 404])

        // A pipelined POST with a body between two GETs, all in one write.
        let body = PreforkProcess.enqueueBody(id: "piped", payload: "@ok")
        try connection.send(
            HTTPConnection.requestBytes("GET", "/healthz", port: prefork.port)
                + HTTPConnection.requestBytes("POST", "/enqueue", port: prefork.port, body: body)
                + HTTPConnection.requestBytes("GET", "/jobs/piped", port: prefork.port))
        #expect(try connection.readResponse().status == 200)
        #expect(try connection.readResponse().status == 202)
        let record = try connection.readResponse()
        #expect(record.status == 200)
        #expect(try record.json().string("id") == "piped")
    }

    @Test func requestSplitAcrossWritesIsAssembled() async throws {
        // A minute for the header: the 2 ms pauses between chunks may stretch on a loaded machine.
        let prefork = try await PreforkProcess.start(config: ["http": ["header_timeout_ms": 60_000]])
        defer { prefork.terminateAndReap() }

        let connection = try prefork.connect()
        let bytes = HTTPConnection.requestBytes(
            "POST", "/enqueue", port: prefork.port, body: PreforkProcess.enqueueBody(id: "split", payload: "@ok"))
        for chunk in stride(from: 0, to: bytes.count, by: 7).map({ Array(bytes[$0..<min($0 + 7, bytes.count)]) }) {
            try connection.send(chunk)
            try await Task.sleep(for: .milliseconds(2))
        }
        #expect(try connection.readResponse().status == 202)
    }

    @Test func malformedRequestLineAnswers400AndCloses() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }

        for garbage in ["NONSENSE\r\n\r\n", "GET /healthz\r\n\r\n", "\u{1}\u{2}\u{3} / HTTP/1.1\r\n\r\n"] {
            let connection = try prefork.connect()
            try connection.send(garbage)
            let response = try connection.readResponse()
            #expect(response.status == 400, "\(garbage.debugDescription): \(response)")
            #expect((try? response.json())?.string("error") != nil, "\(garbage.debugDescription): \(response.text)")
            #expect(try await connection.waitForClose(timeout: .seconds(10)), "\(garbage.debugDescription): still open")
        }
        #expect(try prefork.request("GET", "/healthz").status == 200)
    }

    @Test func oversizedHeaderBlockAnswers431() async throws {
        let prefork = try await PreforkProcess.start(config: ["http": ["max_header_bytes": 1024]])
        defer { prefork.terminateAndReap() }

        let connection = try prefork.connect()
        try connection.send(
            HTTPConnection.requestBytes(
                "GET", "/healthz", port: prefork.port, headers: [("X-Filler", String(repeating: "f", count: 4000))]))
        let response = try connection.readResponse()
        #expect(response.status == 431)
        #expect((try? response.json())?.string("error") != nil, "\(response.text)")
        #expect(try await connection.waitForClose(timeout: .seconds(10)))

        let fine = try prefork.request("GET", "/healthz", headers: [("X-Filler", String(repeating: "f", count: 200))])
        #expect(fine.status == 200)
    }

    @Test func slowHeaderConnectionIsClosedWithoutStallingOthers() async throws {
        let prefork = try await PreforkProcess.start(config: ["http": ["header_timeout_ms": 200]])
        defer { prefork.terminateAndReap() }

        let start = ContinuousClock.now  // before the connect: the server's timer cannot start earlier
        let slow = try prefork.connect()
        try slow.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        // Others are served while the slow client dawdles.
        #expect(try prefork.request("GET", "/healthz").status == 200)
        #expect(try await slow.waitForClose(timeout: .seconds(10)), "slow-header connection still open after 10 s")
        #expect(elapsed(since: start) >= .milliseconds(199), "closed before the header timeout")  // whole ms
        if let response = try slow.takeBufferedResponse() {
            #expect(response.status == 408, "a response before closing a slow client should be 408: \(response)")
        }
    }

    @Test func idleKeepAliveConnectionIsClosed() async throws {
        let prefork = try await PreforkProcess.start(config: ["http": ["idle_timeout_ms": 300]])
        defer { prefork.terminateAndReap() }

        let connection = try prefork.connect()
        let start = ContinuousClock.now  // before the request: the idle timer starts after its answer
        #expect(try connection.request("GET", "/healthz").status == 200)
        #expect(try await connection.waitForClose(timeout: .seconds(10)), "idle connection still open after 10 s")
        #expect(elapsed(since: start) >= .milliseconds(299), "closed before the idle timeout")  // whole ms
    }

    @Test func connectionsBeyondTheLimitAreRefused() async throws {
        let prefork = try await PreforkProcess.start(config: ["http": ["max_connections": 2]])
        defer { prefork.terminateAndReap() }

        let first = try prefork.connect()
        let second = try prefork.connect()
        #expect(try first.request("GET", "/healthz").status == 200)
        #expect(try second.request("GET", "/healthz").status == 200)

        let third = try prefork.connect(timeout: .seconds(3))
        try? third.send(HTTPConnection.requestBytes("GET", "/healthz", port: prefork.port))
        if try await third.waitUntilReadable(timeout: .seconds(3)) {
            if let response = try? third.readResponse() {
                #expect(response.status == 503, "third connection over a limit of 2 got \(response)")
            }  // else closed or reset without an answer: refused
        } else {
            Issue.record("third connection over a limit of 2 was neither answered 503 nor closed within 3 s")
        }
        #expect(try first.request("GET", "/healthz").status == 200, "refusing a third must not disturb the others")

        first.close()
        try await prefork.eventually("a new connection is served once one closed") {
            (try? prefork.request("GET", "/healthz").status) == 200
        }
    }

    @Test func bearerTokenGuardsEverythingButProbes() async throws {
        let prefork = try await PreforkProcess.start(config: ["auth_token": "s3cret"])
        defer { prefork.terminateAndReap() }

        #expect(try prefork.request("GET", "/healthz").status == 200)
        try await prefork.eventually("a worker is up") { try prefork.request("GET", "/readyz").status == 200 }
        let denied = try prefork.request("GET", "/workers")
        #expect(denied.status == 401)
        #expect(denied.header("WWW-Authenticate") == "Bearer")
        #expect((try? denied.json())?.string("error") != nil)
        #expect(try prefork.enqueue(id: "nope", payload: "@ok").status == 401)
        #expect(try prefork.request("GET", "/workers", headers: [("Authorization", "Bearer wrong")]).status == 401)
        #expect(try prefork.request("GET", "/workers", headers: [("Authorization", "Bearer s3cret")]).status == 200)
        #expect(try prefork.request("GET", "/metrics", headers: [("Authorization", "Bearer s3cret")]).status == 200)
        #expect(try prefork.request("GET", "/metrics").status == 401)
        #expect(try prefork.request("GET", "/workers", headers: [("Authorization", "Bearer s3cret2")]).status == 401)
    }

    @Test func metricsAreServedAsPrometheusText() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }

        let response = try prefork.request("GET", "/metrics")
        #expect(response.status == 200)
        #expect(response.header("Content-Type")?.hasPrefix("text/plain") == true)
        #expect(response.text.contains("# TYPE"))
    }

    @Test func everyRequestIsLogged() async throws {
        let prefork = try await PreforkProcess.start()
        defer { prefork.terminateAndReap() }

        #expect(try prefork.request("GET", "/jobs/logged").status == 404)
        let line = try await prefork.waitForLog(event: "request") { $0.string("path") == "/jobs/logged" }
        #expect(line.string("method") == "GET")
        #expect(line.int("status") == 404)
        #expect(line.string("remote")?.hasPrefix("127.0.0.1") == true)
        #expect(line["duration_ms"] != nil)
        #expect(line["bytes"] != nil)
        #expect(line.string("ts")?.hasSuffix("Z") == true)
        #expect(line.string("level") == "info")
    }
}

extension HTTPTests {
    /// A long pipelined burst on one connection, read while it is sent: every response arrives without the
    /// connection waiting on a timer (the timeouts are set far beyond the test's time limit), so the
    /// output backpressure pauses and resumes correctly.
    @Test func longPipelinedBurstIsAnsweredWithoutStalling() async throws {
        let prefork = try await PreforkProcess.start(
            config: ["http": ["header_timeout_ms": 600_000, "idle_timeout_ms": 600_000]])
        defer { prefork.terminateAndReap() }
        let count = 20_000
        let request = Array("GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n".utf8)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = prefork.port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(connected == 0)
        let burst = Array([[UInt8]](repeating: request, count: count).joined())
        let sender = Thread {
            var offset = 0
            while offset < burst.count {
                let sent = burst[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent <= 0 { return }
                offset += sent
            }
        }
        sender.start()
        let marker = Array("HTTP/1.1 200".utf8)
        var responses = 0
        var carry: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while responses < count {
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            try #require(received > 0, "connection closed after \(responses) responses")
            let bytes = carry + buffer[0..<received]
            var index = 0
            while index + marker.count <= bytes.count {
                if bytes[index] == marker[0] && Array(bytes[index..<(index + marker.count)]) == marker {
                    responses += 1
                    index += marker.count
                } else {
                    index += 1
                }
            }
            carry = Array(bytes[max(index, bytes.count - marker.count + 1)...])
        }
        #expect(responses == count)
    }
}
