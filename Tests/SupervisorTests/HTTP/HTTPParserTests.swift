import Testing

@testable import Supervisor

/// A malformed request and the status the parser must refuse it with.
struct MalformedRequest: Sendable, CustomTestStringConvertible {
    let name: String
    let raw: String
    let status: Int
    var maxHeaderBytes = 16_384

    var testDescription: String { name }
}

private let malformedRequests: [MalformedRequest] = [
    // Request line.
    .init(name: "method with a non-token byte", raw: "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "no method", raw: " / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "tab in method", raw: "GE\tT / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "method only", raw: "GET\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "absolute-form target", raw: "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "asterisk-form target", raw: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "two spaces before target", raw: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "DEL in target", raw: "GET /a\u{7F} HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "non-ASCII in target", raw: "GET /é HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "tab in target", raw: "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "no version (HTTP/0.9)", raw: "GET /\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "space in target", raw: "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "lowercase version", raw: "GET / http/1.1\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "version without minor", raw: "GET / HTTP/2\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "garbage version", raw: "GET / HTTX/1.1\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "trailing text after version", raw: "GET / HTTP/1.1 x\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "HTTP/2.0", raw: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505),
    .init(name: "HTTP/1.2", raw: "GET / HTTP/1.2\r\nHost: a\r\n\r\n", status: 505),
    .init(name: "HTTP/0.9", raw: "GET / HTTP/0.9\r\n\r\n", status: 505),
    // Header lines.
    .init(name: "whitespace before colon", raw: "GET / HTTP/1.1\r\nHost : a\r\n\r\n", status: 400),
    .init(name: "empty header name", raw: "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", status: 400),
    .init(name: "non-token header name", raw: "GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", status: 400),
    .init(name: "obsolete line folding", raw: "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", status: 400),
    .init(name: "folding with a tab", raw: "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", status: 400),
    .init(name: "line without colon", raw: "GET / HTTP/1.1\r\nHost: a\r\nHello\r\n\r\n", status: 400),
    .init(name: "control byte in value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{01}b\r\n\r\n", status: 400),
    .init(name: "NUL in value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{00}b\r\n\r\n", status: 400),
    .init(name: "DEL in value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7F}\r\n\r\n", status: 400),
    .init(name: "bare CR in value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", status: 400),
    .init(name: "bare CR in request line", raw: "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", status: 400),
    .init(name: "CR CR LF", raw: "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", status: 400),
    // Framing.
    .init(
        name: "Content-Length letters", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", status: 400),
    .init(
        name: "Content-Length negative", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", status: 400),
    .init(name: "Content-Length plus", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", status: 400),
    .init(name: "Content-Length empty", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", status: 400),
    .init(name: "Content-Length list", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx", status: 400),
    .init(
        name: "Content-Length decimal", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1.5\r\n\r\n", status: 400),
    .init(
        name: "conflicting Content-Length",
        raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", status: 400),
    .init(
        name: "Content-Length over the limit",
        raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n", status: 413),
    .init(
        name: "Content-Length overflowing Int",
        raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", status: 413),
    .init(
        name: "chunked Transfer-Encoding",
        raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 501),
    .init(
        name: "identity Transfer-Encoding with Content-Length",
        raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: identity\r\n\r\nx", status: 501),
    .init(name: "HTTP/1.1 without Host", raw: "GET / HTTP/1.1\r\nX: a\r\n\r\n", status: 400),
    .init(name: "two Host headers", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400),
    .init(name: "two Host headers in HTTP/1.0", raw: "GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", status: 400),
    // Limits.
    .init(
        name: "101 header fields",
        raw: "GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X: y\r\n", count: 100) + "\r\n", status: 431),
    .init(
        name: "header block one byte over the limit",
        raw: "GET / HTTP/1.1\r\nHost: a\r\nX: 12345\r\n\r\n", status: 431, maxHeaderBytes: 36),
]

@Suite struct HTTPParserTests {
    @Test(arguments: malformedRequests)
    func refusesMalformedRequest(_ testCase: MalformedRequest) {
        let limits = HTTPParser.Limits(maxHeaderBytes: testCase.maxHeaderBytes)
        #expect(throws: HTTPError.self) { try HTTPParser.parse(Array(testCase.raw.utf8), limits: limits) }
        do {
            _ = try HTTPParser.parse(Array(testCase.raw.utf8), limits: limits)
        } catch {
            #expect(error.status == testCase.status, "\(error.message)")
            #expect(!error.message.isEmpty)
        }
    }

    @Test func errorMessagesSayWhatWasWrong() {
        let cases: [(raw: String, message: String)] = [
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", "Content-Length is not a number"),
            ("GET / HTTP/1.1\r\n\r\n", "missing Host header"),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                "Transfer-Encoding is not supported; send a Content-Length body"
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n",
                "Content-Length exceeds the limit of 1048576 bytes"
            ),
        ]
        for (raw, message) in cases {
            #expect(throws: HTTPError(status: parseStatus(raw), message: message)) {
                try HTTPParser.parse(Array(raw.utf8))
            }
        }
    }

    @Test func parsesGetWithQuery() throws {
        let raw = "GET /jobs?state=queued&limit=5 HTTP/1.1\r\nHost: localhost\r\nUser-Agent:  curl/8 \t\r\n\r\n"
        let (request, consumed) = try complete(raw)
        #expect(consumed == raw.utf8.count)
        #expect(request.method == "GET")
        #expect(request.path == "/jobs")
        #expect(request.query == "state=queued&limit=5")
        #expect(request.version == .http11)
        #expect(request.headers.map(\.name) == ["host", "user-agent"])
        #expect(request.header("user-agent") == "curl/8")
        #expect(request.header("accept") == nil)
        #expect(request.body.isEmpty)
        #expect(request.keepAlive)
        #expect(request.pathSegments == ["jobs"])
        #expect(try #require(request.queryItems).map { "\($0.name)=\($0.value)" } == ["state=queued", "limit=5"])
    }

    @Test func parsesPostWithBody() throws {
        let raw =
            "POST /enqueue HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nContent-Length: 12\r\n\r\n{\"id\":\"x\"}\r\n"
        let (request, consumed) = try complete(raw)
        #expect(consumed == raw.utf8.count)
        #expect(request.method == "POST")
        #expect(request.query == nil)
        #expect(request.body == Array("{\"id\":\"x\"}\r\n".utf8))
    }

    @Test func acceptsBareLineFeedsAndLeadingEmptyLines() throws {
        let raw = "\r\n\nGET /a HTTP/1.0\nX-Thing:\tv\n\n"
        let (request, consumed) = try complete(raw)
        #expect(consumed == raw.utf8.count)
        #expect(request.path == "/a")
        #expect(request.version == .http10)
        #expect(request.header("x-thing") == "v")
    }

    @Test func keepsObsoleteTextAndEmptyValues() throws {
        let (request, _) = try complete("GET / HTTP/1.1\r\nHost: a\r\nX-Name: Zoë \r\nX-Empty:\r\n\r\n")
        #expect(request.header("x-name") == "Zoë")
        #expect(request.header("x-empty") == "")
    }

    @Test func decodesPathSegments() throws {
        let cases: [(path: String, segments: [String]?)] = [
            ("/", []),
            ("/jobs", ["jobs"]),
            ("/jobs/", ["jobs", ""]),
            ("/jobs/a%2Fb", ["jobs", "a/b"]),
            ("/jobs/caf%C3%A9%20x", ["jobs", "café x"]),
            ("/jobs/a+b", ["jobs", "a+b"]),
            ("/jobs/%zz", nil),
            ("/jobs/%4", nil),
            ("/jobs/%FF", nil),
        ]
        for (path, segments) in cases {
            let (request, _) = try complete("GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(request.pathSegments == segments, "\(path)")
        }
    }

    @Test func decodesQueryItems() throws {
        let cases: [(query: String, items: [String]?)] = [
            ("a=1&b=two+words&&c", ["a=1", "b=two words", "c="]),
            ("x%3Dy=%2B%26", ["x=y=+&"]),
            ("", []),
            ("a=%G1", nil),
        ]
        for (query, items) in cases {
            let (request, _) = try complete("GET /?\(query) HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(request.queryItems.map { $0.map { "\($0.name)=\($0.value)" } } == items, "\(query)")
        }
    }

    @Test func percentEncodesPathSegments() {
        #expect(HTTPRequest.percentEncode(pathSegment: "job-1_a.b~") == "job-1_a.b~")
        #expect(HTTPRequest.percentEncode(pathSegment: "a/b c?é") == "a%2Fb%20c%3F%C3%A9")
        #expect(HTTPRequest.percentDecode(HTTPRequest.percentEncode(pathSegment: "a/b c?é")) == "a/b c?é")
    }

    @Test func isIncompleteAtEverySplitPoint() throws {
        let raw = Array("POST /enqueue?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello".utf8)
        let headerEnd = raw.count - 5
        for end in 0..<raw.count {
            let result = try HTTPParser.parse(raw[..<end])
            switch result {
            case .incomplete(expectsContinue: false) where end < headerEnd:
                continue
            case .awaitingBody(let head, expectsContinue: false) where end >= headerEnd:
                // The header block is whole: the head can be screened before the body arrives.
                #expect(head.method == "POST" && head.path == "/enqueue" && head.body.isEmpty)
            default:
                Issue.record("prefix of \(end) bytes gave \(result)")
            }
        }
        let (request, consumed) = try complete(String(decoding: raw, as: UTF8.self))
        #expect(consumed == raw.count)
        #expect(request.body == Array("hello".utf8))
    }

    @Test func parsesPipelinedRequestsInSequence() throws {
        let requests = [
            "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
            "POST /enqueue HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
            "DELETE /jobs/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        ]
        var buffer = Array(requests.joined().utf8)
        var methods: [String] = []
        for expected in requests {
            guard case .complete(let request, let consumed) = try HTTPParser.parse(buffer) else {
                Issue.record("expected a complete request")
                return
            }
            #expect(consumed == expected.utf8.count)
            methods.append(request.method)
            buffer.removeFirst(consumed)
        }
        #expect(methods == ["GET", "POST", "DELETE"])
        #expect(buffer.isEmpty)
        guard case .incomplete(expectsContinue: false) = try HTTPParser.parse(buffer) else {
            Issue.record("an empty buffer must be incomplete")
            return
        }
    }

    @Test func refusesEndlessHeaderAsSoonAsTheLimitIsBuffered() throws {
        let limits = HTTPParser.Limits(maxHeaderBytes: 1024)
        let start = Array("GET / HTTP/1.1\r\nHost: a\r\nX-Long: ".utf8)
        let justUnder = start + [UInt8](repeating: UInt8(ascii: "a"), count: 1023 - start.count)
        guard case .incomplete = try HTTPParser.parse(justUnder, limits: limits) else {
            Issue.record("one byte under the limit must still be incomplete")
            return
        }
        #expect(throws: HTTPError(status: 431, message: "header block exceeds 1024 bytes")) {
            try HTTPParser.parse(justUnder + [UInt8(ascii: "a")], limits: limits)
        }
        let endlessBlankPrefix = [UInt8](repeating: UInt8(ascii: "\n"), count: 2048)
        #expect(throws: HTTPError.self) { try HTTPParser.parse(endlessBlankPrefix, limits: limits) }
    }

    @Test func acceptsHeaderBlockExactlyAtTheLimit() throws {
        let raw = "GET / HTTP/1.1\r\nHost: a\r\nX: 12345\r\n\r\n"
        let limits = HTTPParser.Limits(maxHeaderBytes: raw.utf8.count)
        guard case .complete(_, let consumed) = try HTTPParser.parse(Array(raw.utf8), limits: limits) else {
            Issue.record("a block of exactly maxHeaderBytes is allowed")
            return
        }
        #expect(consumed == raw.utf8.count)
    }

    @Test func refusesOversizedBodyBeforeItArrives() {
        let limits = HTTPParser.Limits(maxHeaderBytes: 16_384, maxBodyBytes: 10)
        let headers = Array("POST /enqueue HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n".utf8)
        #expect(throws: HTTPError(status: 413, message: "Content-Length exceeds the limit of 10 bytes")) {
            try HTTPParser.parse(headers, limits: limits)
        }
    }

    @Test func expectsContinueOnlyWhileTheBodyIsMissing() throws {
        let cases: [(raw: String, expectsContinue: Bool?)] = [
            ("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n", true),
            ("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nab", true),
            ("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", nil),
            ("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n", false),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n", false),
            ("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", false),
            ("POST / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\nContent-Length: 3\r\n\r\n", false),
            ("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", nil),
        ]
        for (raw, expected) in cases {
            switch try HTTPParser.parse(Array(raw.utf8)) {
            case .incomplete(let expectsContinue), .awaitingBody(_, let expectsContinue):
                #expect(expectsContinue == expected, "\(raw)")
            case .complete: #expect(expected == nil, "\(raw)")
            }
        }
    }

    @Test func decidesKeepAlive() throws {
        let cases: [(version: String, connection: String?, keepAlive: Bool)] = [
            ("HTTP/1.1", nil, true),
            ("HTTP/1.1", "close", false),
            ("HTTP/1.1", "Close", false),
            ("HTTP/1.1", "keep-alive, CLOSE", false),
            ("HTTP/1.1", "Upgrade, keep-alive", true),
            ("HTTP/1.1", "closed", true),
            ("HTTP/1.0", nil, false),
            ("HTTP/1.0", "keep-alive", true),
            ("HTTP/1.0", "Keep-Alive", true),
            ("HTTP/1.0", " te ,keep-alive ", true),
            ("HTTP/1.0", "close", false),
        ]
        for (version, connection, keepAlive) in cases {
            let connectionLine = connection.map { "Connection: \($0)\r\n" } ?? ""
            let (request, _) = try complete("GET / \(version)\r\nHost: a\r\n\(connectionLine)\r\n")
            #expect(request.keepAlive == keepAlive, "\(version) \(connection ?? "-")")
        }
    }

    @Test func parsesFromARawBufferInPlace() throws {
        let raw = Array("GET /x HTTP/1.1\r\nHost: a\r\n\r\nGET".utf8)
        let result = try raw.withUnsafeBytes { bytes in
            Result { () throws(HTTPError) in try HTTPParser.parse(bytes, limits: .init()) }
        }.get()
        guard case .complete(let request, let consumed) = result else {
            Issue.record("expected a complete request")
            return
        }
        #expect(request.path == "/x")
        #expect(consumed == raw.count - 3)
    }

    private func complete(_ raw: String) throws -> (HTTPRequest, Int) {
        let result = try HTTPParser.parse(Array(raw.utf8))
        guard case .complete(let request, let consumed) = result else {
            throw HTTPError(status: 0, message: "incomplete: \(raw)")
        }
        return (request, consumed)
    }

    private func parseStatus(_ raw: String) -> Int {
        do {
            _ = try HTTPParser.parse(Array(raw.utf8))
            return 0
        } catch {
            return error.status
        }
    }
}
