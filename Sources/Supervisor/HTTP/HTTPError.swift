/// A request the server refuses: the status to answer with, a human-readable message saying what was wrong, and
/// the header fields that go with such an answer (`Allow` on 405, `Retry-After` on 503, `WWW-Authenticate` on
/// 401).
///
/// After a parser error the connection must be closed: the parser cannot find the next request's start.
struct HTTPError: Error, Equatable {
    /// The HTTP status code of the response (400, 413, 431, 501, 505, ...).
    var status: Int
    /// What exactly was wrong, e.g. "Content-Length is not a number"; sent as `{"error": message}`.
    var message: String
    /// Extra header fields of the response.
    var headers: [Header] = []

    /// One header field.
    struct Header: Equatable {
        var name: String
        var value: String
    }

    /// A 400 Bad Request with `message`.
    static func badRequest(_ message: String) -> HTTPError {
        HTTPError(status: 400, message: message)
    }

    /// A 404 Not Found with `message`.
    static func notFound(_ message: String) -> HTTPError {
        HTTPError(status: 404, message: message)
    }

    /// A 405 naming the methods the route allows.
    static func methodNotAllowed(_ allowed: String) -> HTTPError {
        HTTPError(status: 405, message: "method not allowed; use \(allowed)", headers: [Header(name: "Allow", value: allowed)])
    }

    /// A 503 with `Retry-After: seconds`.
    static func unavailable(_ message: String, retryAfterSeconds seconds: Int) -> HTTPError {
        HTTPError(status: 503, message: message, headers: [Header(name: "Retry-After", value: String(seconds))])
    }

    /// A 401 asking for a bearer token.
    static func unauthorized(_ message: String) -> HTTPError {
        HTTPError(status: 401, message: message, headers: [Header(name: "WWW-Authenticate", value: "Bearer")])
    }
}
