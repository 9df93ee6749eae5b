/// What answers requests: the API's routes. The server knows nothing else of the supervisor.
protocol HTTPResponder: AnyObject {
    /// Answers one request. Never fails: a failure is an error response that says what was wrong.
    func respond(to request: HTTPRequest) -> HTTPResponse

    /// Answers one request now or later (long-polls, event streams). The default answers now with `respond`.
    func reply(to request: HTTPRequest) -> HTTPReply

    /// A chance to refuse a request from its header block alone, before its body is read (a missing token);
    /// the refusal is the last response on its connection. Nil lets the body in.
    func screen(_ head: HTTPRequest) -> HTTPResponse?
}

extension HTTPResponder {
    func reply(to request: HTTPRequest) -> HTTPReply { .response(respond(to: request)) }
}

/// The durability promise, as the server sees it: a reply produced now may leave once the journal is durable
/// through `replyTicket` (so no reply shows a state the disk does not hold, and a `202` means the job is on disk).
protocol ReplyGate: AnyObject {
    /// Position in the journal a reply produced now must wait for.
    var replyTicket: Int { get }
    /// Everything up to here is durable.
    var durableThrough: Int { get }
}
