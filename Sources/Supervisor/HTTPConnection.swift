import Glibc

/// One client connection: buffered input parsed into requests in order (keep-alive, pipelining),
/// responses appended to an output buffer that the server flushes at the end of each loop iteration.
///
/// A response that depends on a journal record is held until the journal is durable through it; so is
/// everything after it, so responses leave in request order.
final class HTTPConnection {
    /// Output up to `end` waits until the journal is durable through `ticket`.
    struct Hold {
        var end: Int
        var ticket: Int
    }

    /// The socket.
    let fd: FileDescriptor
    /// "ip:port" of the client.
    let peer: String
    /// Its registration with the loop.
    var token: EventToken = 0

    /// Bytes received and not yet consumed by a complete request.
    var input: [UInt8] = []
    /// Start of the unconsumed bytes in `input`.
    var inputStart = 0
    /// Response bytes not yet sent.
    var output: [UInt8] = []
    /// How many bytes at the start of `output` may be sent now.
    private(set) var sendable = 0
    /// The rest of `output`, in holds of increasing tickets.
    private(set) var holds: [Hold] = []
    /// Send what is buffered, then close (error, `Connection: close`, or the peer finished sending).
    var closeAfterFlush = false
    /// Output is sent and the write side shut down; unread input is discarded until EOF or the linger deadline.
    var lingering = false
    /// A `100 Continue` was sent for the request being received.
    var sentContinue = false
    /// Monotonic time the first byte of the request being received arrived (nil between requests).
    var requestStartedAt: Milliseconds?
    /// Microsecond start time of that request, for the log's duration.
    var requestStartedMicroseconds: Int64 = 0
    /// Last time anything was read or written.
    var lastActivity: Milliseconds
    /// When lingering ends.
    var lingerDeadline: Milliseconds = 0
    /// The one timer (idle, request or linger deadline), armed for `timerDeadline`.
    var timer: TimerID?
    /// Deadline the timer is armed for.
    var timerDeadline: Milliseconds = .max
    /// Events currently watched.
    var watchedEvents: UInt32 = EventLoop.readable
    /// Queued in the server's list of connections to flush.
    var isQueuedForFlush = false
    /// Closed and unregistered.
    var isClosed = false

    /// Wraps an accepted socket.
    init(fd: FileDescriptor, peer: String, now: Milliseconds) {
        self.fd = fd
        self.peer = peer
        self.lastActivity = now
    }

    /// Unconsumed input.
    var pendingInputCount: Int { input.count - inputStart }

    /// Whether output waits for the journal.
    var isHeld: Bool { !holds.isEmpty }

    /// Accounts for bytes just appended to `output`: sendable at once if the journal is durable through
    /// `ticket` and nothing before them is held, else held behind the earlier ones.
    func appendedOutput(ticket: Int, durableThrough: Int) {
        if holds.isEmpty && ticket <= durableThrough {
            sendable = output.count
        } else if let last = holds.last, ticket <= last.ticket {
            holds[holds.count - 1].end = output.count
        } else {
            holds.append(Hold(end: output.count, ticket: ticket))
        }
    }

    /// Makes held output sendable as far as the journal is durable; returns whether any was.
    func release(durableThrough: Int) -> Bool {
        var count = 0
        while count < holds.count && holds[count].ticket <= durableThrough {
            sendable = holds[count].end
            count += 1
        }
        holds.removeFirst(count)
        return count > 0
    }

    /// Drops `count` sent bytes from the front of `output`.
    func consumedOutput(_ count: Int) {
        output.removeSubrange(0..<count)
        sendable -= count
        for index in holds.indices { holds[index].end -= count }
    }

    /// Drops consumed input, keeping the buffer's capacity.
    func compactInput() {
        if inputStart == input.count {
            input.removeAll(keepingCapacity: true)
            inputStart = 0
        } else if inputStart > 65536 {
            input.removeSubrange(0..<inputStart)
            inputStart = 0
        }
    }

    /// The deadline that applies now: linger, request (slow header/body), or idle keep-alive.
    func currentDeadline(requestTimeout: Milliseconds, idleTimeout: Milliseconds) -> Milliseconds {
        if lingering { return lingerDeadline }
        if let requestStartedAt { return requestStartedAt + requestTimeout }
        return lastActivity + idleTimeout
    }
}
