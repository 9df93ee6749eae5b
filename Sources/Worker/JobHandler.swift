import IPC

/// A built-in handler: runs one attempt of a job inside the worker process.
protocol JobHandler {
    /// Runs `job` and says how it went. A handler may also end the process (crash tests) or never return.
    mutating func run(_ job: Message.Run) -> HandlerOutcome
}

/// What a handler did with one attempt.
enum HandlerOutcome: Equatable {
    /// Answer with a result frame.
    case finished(ok: Bool, output: [UInt8])
    /// Answer with bytes that are not a frame (the `@garbage` directive), to exercise the supervisor.
    case garbage

    /// A successful attempt with `text` as its output.
    static func success(_ text: String) -> HandlerOutcome { .finished(ok: true, output: Array(text.utf8)) }

    /// A failed attempt with `text` as its error message.
    static func failure(_ text: String) -> HandlerOutcome { .finished(ok: false, output: Array(text.utf8)) }
}
