/// Something the client library or the connection refused: libpq missing, a connection that could not be made,
/// a query that could not be sent. Errors the *server* reports about a statement are not thrown: they come back
/// as a `PostgresResult` whose `error` is set, in order with the other results.
public struct PostgresError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The libpq call that failed (`PQconnectPoll`, `PQsendQueryParams`, ...), or nil when the library itself
    /// could not be loaded.
    public let call: String?
    /// What was wrong: libpq's own message (trailing newline removed) or ours.
    public let message: String

    /// An error of `call` saying `message`.
    public init(call: String?, message: String) {
        self.call = call
        self.message = message
    }

    /// "PQsendQueryParams: another command is already in progress", or the bare message for a load failure.
    public var description: String { call.map { "\($0): \(message)" } ?? message }
}

extension String {
    /// libpq's messages end in a newline (sometimes two lines, each with one); log lines want them trimmed.
    func trimmingTrailingWhitespace() -> String {
        var scalars = Substring(self)
        while let last = scalars.last, last == "\n" || last == " " || last == "\r" || last == "\t" {
            scalars.removeLast()
        }
        return String(scalars)
    }
}
