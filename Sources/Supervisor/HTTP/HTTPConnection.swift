import System

/// One client connection: its socket, the bytes received and not yet parsed, the responses not yet sent, and
/// its lifecycle (`HTTPConnectionState`). Only the loop thread touches it.
final class HTTPConnection {
    /// The socket.
    let fd: FileDescriptor
    /// "ip:port" of the client.
    let peer: String
    /// Its registration with the loop.
    var token: EventToken = 0
    /// Where it is in its lifecycle.
    var state: HTTPConnectionState
    /// Bytes received and not yet consumed by a complete request.
    var input: [UInt8] = []
    /// Start of the unconsumed bytes in `input`.
    var inputStart = 0
    /// Responses not yet sent.
    var output = HTTPOutputQueue()
    /// A `100 Continue` was sent for the request being received.
    var sentContinue = false
    /// The request being received was screened on its header block already.
    var screened = false
    /// The input bytes this connection counts in the server's buffered total.
    var accountedInput = 0
    /// Microsecond start time of the request being answered, for the log's duration.
    var requestStartedMicroseconds: Int64 = 0
    /// The one timer, armed for `timerDeadline`.
    var timer: TimerID?
    /// Deadline the timer is armed for.
    var timerDeadline: Milliseconds = .max
    /// Events currently watched.
    var watchedEvents: UInt32 = Epoll.readable
    /// Queued in the server's list of connections to flush.
    var isQueuedForFlush = false
    /// A request answered later (long-poll) or streamed to (events): later requests wait for it.
    var exchange: HTTPExchange?

    /// Wraps an accepted socket.
    init(fd: FileDescriptor, peer: String, now: Milliseconds, timeouts: HTTPConnectionState.Timeouts) {
        self.fd = fd
        self.peer = peer
        self.state = HTTPConnectionState(now: now, timeouts: timeouts)
    }

    /// Unconsumed input.
    var pendingInputCount: Int { input.count - inputStart }

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

    /// Forgets unread input (lingering).
    func discardInput() {
        input = []
        inputStart = 0
    }
}
