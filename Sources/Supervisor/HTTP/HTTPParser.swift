/// Parses one HTTP/1.x request from the front of a connection's unconsumed bytes (RFC 9112).
///
/// A struct over bytes with an index: `parse` never consumes on partial input (it answers `.incomplete`), reports
/// how many bytes the request used when it is complete, and throws an `HTTPError` carrying the status to answer
/// with on bad input. The caller drops `consumedBytes` and calls again, which is how pipelined requests are read.
/// Bodies need a Content-Length; Transfer-Encoding (chunked) is refused with 501.
struct HTTPParser {
    /// Size limits; exceeding them gives 431 (header block) or 413 (body).
    struct Limits: Equatable {
        /// The largest header block, request line through the empty line, in bytes.
        var maxHeaderBytes = 16_384
        /// The largest Content-Length accepted.
        var maxBodyBytes = 1_048_576
    }

    /// What one call to `parse` found.
    enum Result {
        /// More bytes are needed. `expectsContinue` is true once the headers of an HTTP/1.1 request with
        /// `Expect: 100-continue` are in but its body is not: send "HTTP/1.1 100 Continue\r\n\r\n" once.
        case incomplete(expectsContinue: Bool)
        /// A whole request, which used the first `consumedBytes` bytes of the buffer.
        case complete(HTTPRequest, consumedBytes: Int)
        /// The header block is in, its body not yet: `head` is the request without a body, so it can be refused
        /// (authorization) before the body is read. `expectsContinue` as for `incomplete`.
        case awaitingBody(head: HTTPRequest, expectsContinue: Bool)
    }

    /// The most header fields a request may carry (431 beyond).
    static let maxHeaderFields = 100

    private let bytes: UnsafeRawBufferPointer
    private let limits: Limits
    private var index = 0

    private init(bytes: UnsafeRawBufferPointer, limits: Limits) {
        self.bytes = bytes
        self.limits = limits
    }

    /// Parses the request at the start of `bytes`.
    static func parse(_ bytes: UnsafeRawBufferPointer, limits: Limits) throws(HTTPError) -> Result {
        var parser = HTTPParser(bytes: bytes, limits: limits)
        return try parser.parseRequest()
    }

    /// Parses the request at the start of `bytes` (convenience for tests and callers holding an array).
    static func parse(_ bytes: [UInt8], limits: Limits = Limits()) throws(HTTPError) -> Result {
        try parse(bytes[...], limits: limits)
    }

    /// Parses the request at the start of `bytes` (convenience for tests and callers holding a slice).
    static func parse(_ bytes: ArraySlice<UInt8>, limits: Limits = Limits()) throws(HTTPError) -> Result {
        // withUnsafeBytes only rethrows `any Error`; carrying a Result keeps the error typed.
        let outcome = bytes.withUnsafeBytes { raw in
            Swift.Result { () throws(HTTPError) in try parse(raw, limits: limits) }
        }
        return try outcome.get()
    }

    // MARK: - Request

    private mutating func parseRequest() throws(HTTPError) -> Result {
        guard let headerEnd = try findHeaderEnd() else { return .incomplete(expectsContinue: false) }
        let (method, target, version) = try parseRequestLine(readLine())
        var fields = try parseHeaderFields(until: headerEnd)
        if fields.hasTransferEncoding {
            throw HTTPError(status: 501, message: "Transfer-Encoding is not supported; send a Content-Length body")
        }
        if fields.hostCount > 1 { throw .badRequest("more than one Host header") }
        if version == .http11 && fields.hostCount == 0 { throw .badRequest("missing Host header") }
        let contentLength = fields.contentLength ?? 0
        if contentLength > limits.maxBodyBytes {
            throw HTTPError(status: 413, message: "Content-Length exceeds the limit of \(limits.maxBodyBytes) bytes")
        }
        let keepAlive =
            version == .http11 ? !fields.connectionClose : fields.connectionKeepAlive && !fields.connectionClose
        guard bytes.count - headerEnd >= contentLength else {
            let head = HTTPRequest(
                method: method, path: target.path, query: target.query, version: version, headers: fields.take(),
                body: [], keepAlive: keepAlive)
            return .awaitingBody(head: head, expectsContinue: fields.expectsContinue && version == .http11)
        }
        let request = HTTPRequest(
            method: method, path: target.path, query: target.query, version: version,
            headers: fields.take(), body: Array(bytes[headerEnd..<headerEnd + contentLength]), keepAlive: keepAlive)
        return .complete(request, consumedBytes: headerEnd + contentLength)
    }

    /// Skips empty lines before the request line (RFC 9112 §2.2) and finds the end of the header block; nil while
    /// the block is still arriving. Rejects a bare CR and a block reaching `maxHeaderBytes` without its end.
    private mutating func findHeaderEnd() throws(HTTPError) -> Int? {
        let scanLimit = min(bytes.count, limits.maxHeaderBytes)
        var lineStart = index
        var position = index
        while position < scanLimit {
            let byte = bytes[position]
            if byte == .cr, position + 1 < bytes.count, bytes[position + 1] != .lf {
                throw .badRequest("bare CR in header block; lines must end with CRLF")
            }
            if byte == .lf {
                let contentEnd = position > lineStart && bytes[position - 1] == .cr ? position - 1 : position
                if contentEnd == lineStart {
                    if lineStart != index { return position + 1 }
                    index = position + 1  // an empty line before the request line
                }
                lineStart = position + 1
            }
            position += 1
        }
        if bytes.count >= limits.maxHeaderBytes {
            throw HTTPError(status: 431, message: "header block exceeds \(limits.maxHeaderBytes) bytes")
        }
        return nil
    }

    /// Returns the range of the line at `index` without its CRLF or LF, and moves past it. The header block has
    /// already been checked to end in an empty line, so every line there has an LF.
    private mutating func readLine() -> Range<Int> {
        let start = index
        while bytes[index] != .lf { index += 1 }
        let end = index > start && bytes[index - 1] == .cr ? index - 1 : index
        index += 1
        return start..<end
    }

    // MARK: - Request line

    private func parseRequestLine(
        _ line: Range<Int>
    ) throws(HTTPError) -> (method: String, target: (path: String, query: String?), version: HTTPVersion) {
        var position = line.lowerBound
        while position < line.upperBound && bytes[position] != .space {
            guard bytes[position].isTokenByte else { throw .badRequest("method is not a token") }
            position += 1
        }
        guard position > line.lowerBound else { throw .badRequest("request line has no method") }
        guard position < line.upperBound else { throw .badRequest("request line has no request target") }
        let method = string(line.lowerBound..<position)

        position += 1
        let targetStart = position
        var queryStart: Int?
        while position < line.upperBound && bytes[position] != .space {
            let byte = bytes[position]
            guard byte >= 0x21 && byte <= 0x7e else {
                throw .badRequest("request target contains a byte that is not visible ASCII")
            }
            if byte == UInt8(ascii: "?") && queryStart == nil { queryStart = position }
            position += 1
        }
        guard position > targetStart, bytes[targetStart] == UInt8(ascii: "/") else {
            throw .badRequest("request target must start with \"/\"")
        }
        guard position < line.upperBound else { throw .badRequest("request line has no HTTP version") }
        let path = string(targetStart..<(queryStart ?? position))
        let query = queryStart.map { string($0 + 1..<position) }
        let version = try parseVersion(position + 1..<line.upperBound)
        return (method, (path, query), version)
    }

    private func parseVersion(_ range: Range<Int>) throws(HTTPError) -> HTTPVersion {
        let prefix: StaticString = "HTTP/"
        guard range.count == 8,
            (0..<5).allSatisfy({ bytes[range.lowerBound + $0] == prefix.utf8Start[$0] }),
            bytes[range.lowerBound + 5].isDigit, bytes[range.lowerBound + 6] == UInt8(ascii: "."),
            bytes[range.lowerBound + 7].isDigit
        else { throw .badRequest("malformed HTTP version") }
        switch (bytes[range.lowerBound + 5], bytes[range.lowerBound + 7]) {
        case (UInt8(ascii: "1"), UInt8(ascii: "1")): return .http11
        case (UInt8(ascii: "1"), UInt8(ascii: "0")): return .http10
        default: throw HTTPError(status: 505, message: "HTTP version not supported; use HTTP/1.1 or HTTP/1.0")
        }
    }

    // MARK: - Header fields

    /// The header fields and what the parser needs to know about them.
    private struct Fields {
        var list: [(name: String, value: String)] = []
        var contentLength: Int?
        var hasTransferEncoding = false
        var hostCount = 0
        var connectionClose = false
        var connectionKeepAlive = false
        var expectsContinue = false

        mutating func take() -> [(name: String, value: String)] {
            defer { list = [] }
            return list
        }
    }

    private mutating func parseHeaderFields(until headerEnd: Int) throws(HTTPError) -> Fields {
        var fields = Fields()
        fields.list.reserveCapacity(12)  // typical clients send 3-10 fields; avoids regrowing the array
        while true {
            let line = readLine()
            if line.isEmpty { break }
            guard fields.list.count < Self.maxHeaderFields else {
                throw HTTPError(status: 431, message: "more than \(Self.maxHeaderFields) header fields")
            }
            let (name, value) = try splitField(line)
            let nameString = lowercasedString(name)
            switch nameString {
            case "content-length":
                let length = try parseContentLength(value)
                if let previous = fields.contentLength, previous != length {
                    throw .badRequest("conflicting Content-Length headers")
                }
                fields.contentLength = length
            case "transfer-encoding":
                fields.hasTransferEncoding = true
            case "host":
                fields.hostCount += 1
            case "connection":
                forEachToken(in: value) { token in
                    if equalsIgnoringCase(token, "close") { fields.connectionClose = true }
                    if equalsIgnoringCase(token, "keep-alive") { fields.connectionKeepAlive = true }
                }
            case "expect":
                if equalsIgnoringCase(value, "100-continue") { fields.expectsContinue = true }
            default:
                break
            }
            fields.list.append((name: nameString, value: string(value)))
        }
        assert(index == headerEnd)
        return fields
    }

    /// Splits `name: value`, checking the name is a token and the value has no control characters; the returned
    /// value range is trimmed of spaces and tabs.
    private func splitField(_ line: Range<Int>) throws(HTTPError) -> (name: Range<Int>, value: Range<Int>) {
        let first = bytes[line.lowerBound]
        if first == .space || first == .tab {
            throw .badRequest("obsolete line folding (a header line starting with whitespace) is not supported")
        }
        guard let colon = line.first(where: { bytes[$0] == UInt8(ascii: ":") }) else {
            throw .badRequest("header line has no colon")
        }
        guard colon > line.lowerBound else { throw .badRequest("header name is empty") }
        if let bad = (line.lowerBound..<colon).first(where: { !bytes[$0].isTokenByte }) {
            let isWhitespace = bytes[bad] == .space || bytes[bad] == .tab
            throw .badRequest(isWhitespace ? "whitespace before the colon of a header" : "header name is not a token")
        }
        var start = colon + 1
        var end = line.upperBound
        while start < end && (bytes[start] == .space || bytes[start] == .tab) { start += 1 }
        while end > start && (bytes[end - 1] == .space || bytes[end - 1] == .tab) { end -= 1 }
        for position in start..<end {
            let byte = bytes[position]
            if (byte < 0x20 && byte != .tab) || byte == 0x7f {
                throw .badRequest("header \(lowercasedString(line.lowerBound..<colon)) contains a control character")
            }
        }
        return (line.lowerBound..<colon, start..<end)
    }

    private func parseContentLength(_ value: Range<Int>) throws(HTTPError) -> Int {
        guard !value.isEmpty else { throw .badRequest("Content-Length is not a number") }
        var length = 0
        for position in value {
            let byte = bytes[position]
            guard byte.isDigit else { throw .badRequest("Content-Length is not a number") }
            // Saturate instead of overflowing: anything above the limit is refused with 413 anyway.
            let (times10, overflow1) = length.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            length = overflow1 || overflow2 ? Int.max : sum
        }
        return length
    }

    /// Calls `body` with each comma-separated, whitespace-trimmed, non-empty element of `range`.
    private func forEachToken(in range: Range<Int>, _ body: (Range<Int>) -> Void) {
        var start = range.lowerBound
        while start <= range.upperBound {
            var end = start
            while end < range.upperBound && bytes[end] != UInt8(ascii: ",") { end += 1 }
            var trimmedStart = start
            var trimmedEnd = end
            while trimmedStart < trimmedEnd && (bytes[trimmedStart] == .space || bytes[trimmedStart] == .tab) {
                trimmedStart += 1
            }
            while trimmedEnd > trimmedStart && (bytes[trimmedEnd - 1] == .space || bytes[trimmedEnd - 1] == .tab) {
                trimmedEnd -= 1
            }
            if trimmedStart < trimmedEnd { body(trimmedStart..<trimmedEnd) }
            start = end + 1
        }
    }

    // MARK: - Bytes to strings

    private func equalsIgnoringCase(_ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        return (0..<range.count).allSatisfy {
            bytes[range.lowerBound + $0].asciiLowercased == lowercase.utf8Start[$0]
        }
    }

    private func string(_ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// Builds the lowercased name in one pass; header names are tokens, so ASCII.
    private func lowercasedString(_ range: Range<Int>) -> String {
        String(unsafeUninitializedCapacity: range.count) { buffer in
            for offset in 0..<range.count {
                buffer[offset] = bytes[range.lowerBound + offset].asciiLowercased
            }
            return range.count
        }
    }
}

extension UInt8 {
    fileprivate static let cr = UInt8(ascii: "\r")
    fileprivate static let lf = UInt8(ascii: "\n")
    fileprivate static let space = UInt8(ascii: " ")
    fileprivate static let tab = UInt8(ascii: "\t")

    fileprivate var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }

    fileprivate var asciiLowercased: UInt8 {
        self >= UInt8(ascii: "A") && self <= UInt8(ascii: "Z") ? self + 0x20 : self
    }

    /// tchar of RFC 9110 §5.6.2: letters, digits and ! # $ % & ' * + - . ^ _ ` | ~
    fileprivate var isTokenByte: Bool {
        switch self {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
