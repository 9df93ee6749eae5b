/// A connection's response bytes not yet sent, and how far they may be sent: a response that depends on a
/// journal event is held until the journal is durable through it, and so is everything after it, so responses
/// leave in request order.
struct HTTPOutputQueue {
    /// Output up to `end` waits until the journal is durable through `ticket`.
    struct Hold: Equatable {
        var end: Int
        var ticket: Int
    }

    /// Response bytes not yet sent.
    private(set) var bytes: [UInt8] = []
    /// How many bytes at the start of `bytes` may be sent now.
    private(set) var sendable = 0
    /// The rest of `bytes`, in holds of increasing tickets.
    private(set) var holds: [Hold] = []

    /// Bytes queued.
    var count: Int { bytes.count }
    /// Whether nothing is queued.
    var isEmpty: Bool { bytes.isEmpty }
    /// Whether output waits for the journal.
    var isHeld: Bool { !holds.isEmpty }

    /// Appends a response; `serialize` writes into the queue's buffer.
    mutating func append(ticket: Int, durableThrough: Int, _ serialize: (inout [UInt8]) -> Void) {
        serialize(&bytes)
        appended(ticket: ticket, durableThrough: durableThrough)
    }

    /// Accounts for bytes just appended: sendable at once if the journal is durable through `ticket` and nothing
    /// before them is held, else held behind the earlier ones.
    private mutating func appended(ticket: Int, durableThrough: Int) {
        if holds.isEmpty && ticket <= durableThrough {
            sendable = bytes.count
        } else if let last = holds.last, ticket <= last.ticket {
            holds[holds.count - 1].end = bytes.count
        } else {
            holds.append(Hold(end: bytes.count, ticket: ticket))
        }
    }

    /// Makes held output sendable as far as the journal is durable; returns whether any was.
    mutating func release(durableThrough: Int) -> Bool {
        var count = 0
        while count < holds.count && holds[count].ticket <= durableThrough {
            sendable = holds[count].end
            count += 1
        }
        holds.removeFirst(count)
        return count > 0
    }

    /// Drops `count` sent bytes from the front.
    mutating func consumed(_ count: Int) {
        bytes.removeSubrange(0..<count)
        sendable -= count
        for index in holds.indices { holds[index].end -= count }
    }

    /// Calls `body` with the bytes that may be sent now.
    func withSendableBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[0..<sendable])) }
    }
}
