import Glibc
import System

/// The listening socket and every client connection: accepting, reading, parsing, timeouts, and sending.
///
/// It asks its responder for each request's response, and holds each response until the reply gate says the
/// journal is durable through what it shows. Responses are sent by `flush()` at the end of each loop iteration
/// and whenever a sync makes held ones sendable.
///
/// This file holds its state; the work is in extensions: `+Accepting` (the listener), `+Connections` (reading,
/// writing, timers, closing) and `+Exchanges` (deferred replies and event streams).
final class HTTPServer {
    /// What the server enforces, from `http.*`.
    struct Settings: Equatable {
        /// Header block and body limits.
        var limits: HTTPParser.Limits
        /// Request, idle and linger deadlines.
        var timeouts: HTTPConnectionState.Timeouts
        /// Most simultaneously open client connections.
        var maximumConnections: Int
        /// Most request bytes buffered across all connections; past it a connection gets 503 and is closed.
        var maximumBufferedBytes: Int
    }

    /// The address actually bound (port 0 resolved).
    let boundAddress: SocketAddress
    /// What it enforces; a reload may change it (open connections keep their timeouts).
    var settings: Settings
    let listener: FileDescriptor
    var listenerToken: EventToken = 0
    let loop: EventLoop
    let clock: Clock
    let logger: Logger
    let metrics: Metrics
    unowned let responder: HTTPResponder
    unowned let gate: ReplyGate
    var connections: [EventToken: HTTPConnection] = [:]
    var flushQueue: [HTTPConnection] = []
    /// Connections with output held for the journal.
    var heldConnections: [HTTPConnection] = []
    /// Connections whose deferred reply was answered, with requests of theirs still to parse.
    var resumeQueue: [HTTPConnection] = []
    var readBuffer = [UInt8](repeating: 0, count: 65536)
    /// Request bytes buffered across all connections.
    var bufferedBytes = 0
    /// A descriptor held in reserve: when accept fails for want of descriptors, it is closed so one client can
    /// be told 503, then taken again.
    var spare: FileDescriptor?
    /// Accepting is paused (descriptors exhausted even after using the spare) until this timer fires.
    var acceptPause: TimerID?
    /// Refused connections since the last `connection_refused` line (at most one line a second).
    var refusedSinceLog = 0
    var lastRefusalLog: Milliseconds?

    /// Output beyond this stops reading from a client until it catches up (a pipelining client that never reads).
    static let outputHighWater = 1 << 20
    /// Input buffered beyond this (unparsed requests) is left in the socket until the buffer is worked off.
    static let inputHighWater = 1 << 20

    /// Binds and starts accepting.
    init(
        address: SocketAddress, settings: Settings, loop: EventLoop, clock: Clock, logger: Logger, metrics: Metrics,
        responder: HTTPResponder, gate: ReplyGate
    ) throws(SystemError) {
        self.settings = settings
        self.loop = loop
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        self.responder = responder
        self.gate = gate
        (listener, boundAddress) = try Socket.listen(address)
        listenerToken = try loop.register(listener, events: Epoll.readable) { [unowned self] _ in acceptClients() }
        spare = try? Posix.open("/dev/null", O_RDONLY)
    }

    /// Sends what every connection may send; called once per loop iteration, after the journal's commit, and
    /// after each sync.
    func flush() {
        if !resumeQueue.isEmpty {
            let resumed = resumeQueue
            resumeQueue.removeAll()
            for connection in resumed where !connection.state.isClosed && connection.exchange == nil {
                processInput(connection)
            }
        }
        if !heldConnections.isEmpty {
            let durable = gate.durableThrough
            heldConnections.removeAll { connection in
                if connection.output.release(durableThrough: durable) { queueFlush(connection) }
                return !connection.output.isHeld || connection.state.isClosed
            }
        }
        // Writing can resume a paused connection, whose next responses queue it again: keep going until
        // nothing is queued, or it would wait for an unrelated wake-up of the loop.
        while !flushQueue.isEmpty {
            let queue = flushQueue
            flushQueue.removeAll(keepingCapacity: true)
            for connection in queue {
                connection.isQueuedForFlush = false
                write(connection)
            }
        }
    }

    /// Closes the listener and every connection (after a last non-blocking attempt to send their output).
    func close() {
        flush()
        loop.cancel(acceptPause)
        loop.unregister(listener, token: listenerToken)
        listener.close()
        spare?.close()
        spare = nil
        for connection in Array(connections.values) { closeConnection(connection) }
    }
}
