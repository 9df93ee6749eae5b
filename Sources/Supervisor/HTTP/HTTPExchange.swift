/// What a responder answers a request with: a response now, or an exchange it answers later.
enum HTTPReply {
    /// The response, now.
    case response(HTTPResponse)
    /// No response yet: `start` gets the request's exchange and keeps it, then answers it once (a long-poll) or
    /// streams on it (an event stream). Later requests on the same connection wait until it is answered.
    case deferred((HTTPExchange) -> Void)
}

/// A request answered later: the handle a responder keeps for a long-poll or an event stream.
///
/// Only the loop thread touches it. After the client went away (`isOpen` false) every call is ignored; the
/// responder learns of it through `onClose`, at once, so a waiter whose client hung up is dropped.
final class HTTPExchange {
    /// The request's method and path (for the request log line).
    let method: String
    let path: String
    /// Called once when the connection closes before the exchange was answered or its stream ended.
    var onClose: (() -> Void)?

    private(set) var isOpen = true
    private(set) var isStreaming = false
    private weak var server: HTTPServer?
    private weak var connection: HTTPConnection?
    private let keepAlive: Bool
    private let headOnly: Bool

    init(server: HTTPServer, connection: HTTPConnection, request: HTTPRequest) {
        self.server = server
        self.connection = connection
        self.method = request.method
        self.path = request.path
        self.keepAlive = request.keepAlive
        self.headOnly = request.method == "HEAD"
    }

    /// Answers the request; the connection then goes on with its next request.
    func respond(_ response: HTTPResponse) {
        guard isOpen, !isStreaming, let server, let connection else { return }
        isOpen = false
        onClose = nil
        server.completeExchange(
            self, on: connection, response: response, keepAlive: keepAlive, headOnly: headOnly)
    }

    /// Sends the response head of a stream whose body ends when the connection closes (no Content-Length).
    func beginStream(contentType: String, headers: [(String, String)] = []) {
        guard isOpen, !isStreaming, let server, let connection else { return }
        isStreaming = true
        server.beginStream(self, on: connection, contentType: contentType, headers: headers)
    }

    /// Sends bytes of the stream; false when the client is gone or was dropped for reading too slowly (more
    /// than `backlogLimit` bytes queued).
    @discardableResult
    func send(_ bytes: [UInt8], backlogLimit: Int) -> Bool {
        guard isOpen, isStreaming, let server, let connection else { return false }
        return server.stream(bytes, on: connection, backlogLimit: backlogLimit)
    }

    /// Ends the stream (or abandons an unanswered exchange): what is queued is sent, then the connection closes.
    func finish() {
        guard isOpen, let server, let connection else { return }
        isOpen = false
        onClose = nil
        server.finishExchange(on: connection)
    }

    /// The connection closed first.
    func connectionClosed() {
        guard isOpen else { return }
        isOpen = false
        let handler = onClose
        onClose = nil
        handler?()
    }
}
