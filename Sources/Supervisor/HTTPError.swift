/// A request the server refuses: the status to answer with and a human-readable message saying what was wrong.
///
/// After sending the error the connection must be closed: the parser cannot find the next request's start.
struct HTTPError: Error, Equatable {
    /// The HTTP status code of the response (400, 413, 431, 501, 505, ...).
    var status: Int
    /// What exactly was wrong, e.g. "Content-Length is not a number"; sent as `{"error": message}`.
    var message: String

    /// A 400 Bad Request with `message`.
    static func badRequest(_ message: String) -> HTTPError {
        HTTPError(status: 400, message: message)
    }
}
