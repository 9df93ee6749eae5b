/// Your code, run in a prefork worker process: one attempt of one job at a time, in a process that lives for
/// many jobs, so whatever the handler loads once (a model, a connection pool, a parsed file) stays warm.
///
/// Return a `JobResult` for success; throw for a failed attempt (`JobFailure` for a message of your own, any
/// other error as "<Type>: <description>"). A crash of the process fails the attempt as a crash and the
/// supervisor starts a fresh worker.
public protocol JobHandler {
    /// Runs one attempt of `job`.
    mutating func handle(_ job: Job) throws -> JobResult
}

/// A successful attempt's output: bytes or text, and optional diagnostics kept with the attempt.
public struct JobResult: Equatable, Sendable, ExpressibleByStringLiteral {
    /// The job's result.
    public var output: [UInt8]
    /// The output was cut (the loop also cuts at the run's limit and sets this).
    public var truncated: Bool
    /// Diagnostics shown in the attempt's history (for example a command's stderr), at most 4096 bytes.
    public var detail: [UInt8]

    /// A result of these bytes.
    public init(_ output: [UInt8], truncated: Bool = false, detail: [UInt8] = []) {
        self.output = output
        self.truncated = truncated
        self.detail = detail
    }

    /// A result of this text, as UTF-8.
    public init(_ text: String, detail: [UInt8] = []) {
        self.init(Array(text.utf8), detail: detail)
    }

    /// A result written as a string literal.
    public init(stringLiteral text: String) {
        self.init(text)
    }

    /// An empty result.
    public static let empty = JobResult([])
}

/// A failed attempt with a message of the handler's choosing (other errors become "<Type>: <description>").
public struct JobFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The attempt's error, shown as the job's `last_error`.
    public var message: String
    /// Diagnostics shown in the attempt's history, at most 4096 bytes.
    public var detail: [UInt8]

    /// A failure with `message`.
    public init(_ message: String, detail: [UInt8] = []) {
        self.message = message
        self.detail = detail
    }

    /// The message.
    public var description: String { message }
}
