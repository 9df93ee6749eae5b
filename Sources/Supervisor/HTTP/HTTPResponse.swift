/// A response to serialize onto a connection.
struct HTTPResponse {
    /// The status code.
    var status: Int
    /// Extra header fields (e.g. `Location`, `Allow`, `Retry-After`), written after Content-Type and Content-Length.
    var headers: [(String, String)]
    /// The body bytes; Content-Length is always their count.
    var body: [UInt8]
    /// The `Content-Type` value, or nil for none.
    var contentType: String?

    /// What to send once when the parser reports `.incomplete(expectsContinue: true)`.
    static let continueHead: StaticString = "HTTP/1.1 100 Continue\r\n\r\n"

    /// Creates a response; every part but the status defaults to empty.
    init(status: Int, headers: [(String, String)] = [], body: [UInt8] = [], contentType: String? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.contentType = contentType
    }

    /// A response whose body is already-encoded JSON.
    static func json(_ status: Int, _ body: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: status, body: body, contentType: "application/json")
    }

    /// The error body every endpoint uses: `{"error":"<message>"}` and a newline.
    static func error(_ status: Int, _ message: String) -> HTTPResponse {
        var body: [UInt8] = []
        body.reserveCapacity(message.utf8.count + 14)
        body.appendASCII("{\"error\":")
        body.appendJSONString(message)
        body.appendASCII("}\n")
        return .json(status, body)
    }

    /// The error response for `error`, with its header fields.
    static func error(_ error: HTTPError) -> HTTPResponse {
        var response = HTTPResponse.error(error.status, error.message)
        response.headers = error.headers.map { ($0.name, $0.value) }
        return response
    }

    /// A text response, e.g. the Prometheus exposition with `text/plain; version=0.0.4; charset=utf-8`.
    static func text(_ status: Int, _ text: String, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, body: Array(text.utf8), contentType: contentType)
    }

    /// Appends the status line, headers and body (none with `headOnly`, the answer to HEAD) to `buffer`; adds
    /// `Connection: close` when `keepAlive` is false.
    ///
    /// Content-Length is left out for 1xx and 204, which must not carry it (RFC 9110 §8.6). Control characters in
    /// header names and values become spaces, so a value can never split the response.
    func serialize(into buffer: inout [UInt8], keepAlive: Bool, headOnly: Bool = false) {
        // Grow geometrically: an exact reserveCapacity on a growing array reallocates on every call, which
        // made a long pipelined burst quadratic.
        let needed = buffer.count + 96 + body.count + headers.count * 48
        if buffer.capacity < needed { buffer.reserveCapacity(max(needed, 2 * buffer.capacity)) }
        appendStatusAndContentType(into: &buffer)
        if status >= 200 && status != 204 {
            buffer.appendASCII("Content-Length: ")
            buffer.appendDecimal(body.count)
            buffer.appendASCII("\r\n")
        }
        for (name, value) in headers {
            buffer.appendHeaderText(name)
            buffer.appendASCII(": ")
            buffer.appendHeaderText(value)
            buffer.appendASCII("\r\n")
        }
        if !keepAlive {
            buffer.appendASCII("Connection: close\r\n")
        }
        buffer.appendASCII("\r\n")
        // A response to HEAD has the GET's header fields, Content-Length included, and no body (RFC 9110 §9.3.2).
        if !headOnly { buffer.append(contentsOf: body) }
    }

    /// Appends the head of a streamed response: status line and headers, `Connection: close` and no
    /// Content-Length (the body ends when the connection does), `Cache-Control: no-cache`.
    func serializeStreamHead(into buffer: inout [UInt8]) {
        appendStatusAndContentType(into: &buffer)
        buffer.appendASCII("Cache-Control: no-cache\r\n")
        for (name, value) in headers {
            buffer.appendHeaderText(name)
            buffer.appendASCII(": ")
            buffer.appendHeaderText(value)
            buffer.appendASCII("\r\n")
        }
        buffer.appendASCII("Connection: close\r\n\r\n")
    }

    /// The status line and the `Content-Type` field.
    private func appendStatusAndContentType(into buffer: inout [UInt8]) {
        buffer.appendASCII("HTTP/1.1 ")
        buffer.appendDecimal(status)
        buffer.append(UInt8(ascii: " "))
        buffer.append(contentsOf: Self.reasonPhrase(status).utf8)
        buffer.appendASCII("\r\n")
        if let contentType {
            buffer.appendASCII("Content-Type: ")
            buffer.appendHeaderText(contentType)
            buffer.appendASCII("\r\n")
        }
    }

    /// The reason phrase for `status`; "" for a code the server never sends (the grammar allows an empty one).
    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 417: "Expectation Failed"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: ""
        }
    }
}

extension Array where Element == UInt8 {
    /// Appends header text, turning control characters other than HTAB into spaces so it cannot end the line.
    mutating func appendHeaderText(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            let start = count
            append(contentsOf: utf8)
            for index in start..<count where (self[index] < 0x20 && self[index] != 0x09) || self[index] == 0x7f {
                self[index] = UInt8(ascii: " ")
            }
        }
    }
}

extension HTTPResponse {
    /// The same response with one more header field.
    func withHeader(_ name: String, _ value: String) -> HTTPResponse {
        var copy = self
        copy.headers.append((name, value))
        return copy
    }
}
