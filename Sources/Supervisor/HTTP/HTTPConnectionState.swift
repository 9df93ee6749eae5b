/// The lifecycle of one client connection as a state machine without I/O: which deadline applies, whether it
/// reads, when it closes. `HTTPServer` feeds it what happened on the socket and performs what it answers.
///
/// A connection reads and answers requests (keep-alive, pipelining) until the client closes, asks for `close`,
/// sends something unparseable, or a timeout passes; then it sends what is queued and lingers: its write side
/// shut down, it discards the client's unread bytes until end of file (or a short deadline), so the kernel does
/// not answer them with a reset that could destroy the response in flight.
struct HTTPConnectionState: Equatable {
    /// Where the connection is.
    enum Phase: Equatable {
        /// Reading and answering requests.
        case open
        /// No more requests: send what is queued, then linger or close.
        case closingAfterFlush
        /// Output sent and the write side shut down; unread input is discarded until the deadline.
        case lingering(until: Milliseconds)
        /// Closed and unregistered.
        case closed
    }

    /// Timeouts, from `http.*`.
    struct Timeouts: Equatable {
        /// A request (headers and body) must arrive within this (`http.header_timeout_ms`).
        var request: Milliseconds
        /// An idle keep-alive connection is closed after this (`http.idle_timeout_ms`).
        var idle: Milliseconds
        /// How long unread input is drained after a final response.
        var linger: Milliseconds = 500
    }

    /// What the server must do when the timer fires.
    enum TimerOutcome: Equatable {
        /// Nothing is due: arm the timer for this deadline.
        case rearm(at: Milliseconds)
        /// Close the socket.
        case close
        /// The request did not arrive in time: answer `408`, then close at this deadline.
        case requestTimedOut(closeAt: Milliseconds)
    }

    /// What the server must do once all output was sent.
    enum DrainedOutcome: Equatable {
        /// Keep reading requests.
        case keepReading
        /// Shut the write side down and discard input until this deadline.
        case linger(until: Milliseconds)
        /// Close the socket (nothing left to read).
        case close
    }

    /// Where the connection is.
    private(set) var phase: Phase = .open
    /// Monotonic time the first byte of the request being received arrived (nil between requests).
    private(set) var requestStartedAt: Milliseconds?
    /// Last time anything was read or written, or output waited on the disk.
    private(set) var lastActivity: Milliseconds
    /// A `408` was sent: the connection closes at the linger deadline whatever else happens.
    private var closeAt: Milliseconds?
    let timeouts: Timeouts

    /// A fresh connection accepted at `now`.
    init(now: Milliseconds, timeouts: Timeouts) {
        lastActivity = now
        self.timeouts = timeouts
    }

    /// Whether requests are still read and answered.
    var isOpen: Bool { phase == .open }
    /// Whether the write side is shut and input discarded.
    var isLingering: Bool { if case .lingering = phase { true } else { false } }
    /// Whether the socket is closed.
    var isClosed: Bool { phase == .closed }

    /// The deadline that applies now: the 408's close, linger, request (slow header/body), or idle keep-alive.
    var deadline: Milliseconds {
        if let closeAt { return closeAt }
        if case .lingering(let until) = phase { return until }
        if let requestStartedAt { return requestStartedAt + timeouts.request }
        return lastActivity + timeouts.idle
    }

    /// Bytes arrived. Between requests (nothing buffered), they start the request clock.
    mutating func received(now: Milliseconds, hadPendingInput: Bool) {
        lastActivity = now
        if phase == .open && !hadPendingInput && requestStartedAt == nil { requestStartedAt = now }
    }

    /// A whole request was parsed and answered. `keepAlive` false ends the connection after its response; the
    /// next request's clock starts now if its bytes are already here.
    mutating func requestCompleted(now: Milliseconds, keepAlive: Bool, moreInputPending: Bool) {
        requestStartedAt = moreInputPending ? now : nil
        if !keepAlive { phase = .closingAfterFlush }
    }

    /// The request could not be parsed: its error response is the last.
    mutating func requestFailed() {
        requestStartedAt = nil
        phase = .closingAfterFlush
    }

    /// The client finished sending (end of file) or vanished: answer what it sent, then close. Returns whether
    /// the socket can be closed at once (nothing queued).
    mutating func peerFinished(outputEmpty: Bool) -> Bool {
        requestStartedAt = nil
        guard !isLingering else {
            phase = .closed
            return true
        }
        phase = outputEmpty ? .closed : .closingAfterFlush
        return outputEmpty
    }

    /// Bytes were written.
    mutating func wrote(now: Milliseconds) {
        lastActivity = now
    }

    /// Everything sendable was sent and nothing is held for the journal.
    mutating func drained(now: Milliseconds, inputPendingOrWatched: Bool) -> DrainedOutcome {
        guard phase == .closingAfterFlush else { return .keepReading }
        guard inputPendingOrWatched else {
            phase = .closed
            return .close
        }
        let until = closeAt ?? now + timeouts.linger
        phase = .lingering(until: until)
        return .linger(until: until)
    }

    /// The timer went off. `held`: responses wait for the disk, not for the client, which is not idle then.
    mutating func timerFired(now: Milliseconds, held: Bool) -> TimerOutcome {
        if held && closeAt == nil {
            lastActivity = now
            return .rearm(at: deadline)
        }
        guard now >= deadline else { return .rearm(at: deadline) }
        if closeAt != nil || isLingering || phase == .closingAfterFlush {
            phase = .closed
            return .close
        }
        if requestStartedAt != nil {
            requestStartedAt = nil
            phase = .closingAfterFlush
            closeAt = now + timeouts.linger
            return .requestTimedOut(closeAt: closeAt!)
        }
        phase = .closed  // idle keep-alive connection
        return .close
    }

    /// The socket was closed (an error, the server shutting down).
    mutating func closed() {
        phase = .closed
    }
}
