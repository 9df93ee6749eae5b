import Glibc
import System

/// The listening socket and every client connection: accepting, reading, parsing, timeouts, and sending.
///
/// It asks its responder for each request's response, and holds each response until the reply gate says the
/// journal is durable through what it shows. Responses are sent by `flush()` at the end of each loop iteration
/// and whenever a sync makes held ones sendable.
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
    private let listener: FileDescriptor
    private var listenerToken: EventToken = 0
    private let loop: EventLoop
    private let clock: Clock
    private let logger: Logger
    private let metrics: Metrics
    private unowned let responder: HTTPResponder
    private unowned let gate: ReplyGate
    private var connections: [EventToken: HTTPConnection] = [:]
    private var flushQueue: [HTTPConnection] = []
    /// Connections with output held for the journal.
    private var heldConnections: [HTTPConnection] = []
    /// Connections whose deferred reply was answered, with requests of theirs still to parse.
    private var resumeQueue: [HTTPConnection] = []
    private var readBuffer = [UInt8](repeating: 0, count: 65536)
    /// Request bytes buffered across all connections.
    private(set) var bufferedBytes = 0
    /// A descriptor held in reserve: when accept fails for want of descriptors, it is closed so one client can
    /// be told 503, then taken again.
    private var spare: FileDescriptor?
    /// Accepting is paused (descriptors exhausted even after using the spare) until this timer fires.
    private var acceptPause: TimerID?
    /// Refused connections since the last `connection_refused` line (at most one line a second).
    private var refusedSinceLog = 0
    private var lastRefusalLog: Milliseconds?

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

    // MARK: Accepting

    private func acceptClients() {
        // Bounded so a connection storm cannot starve the other descriptors of this iteration.
        for _ in 0..<64 {
            let accepted: IOResult<(FileDescriptor, String)>
            do throws(SystemError) {
                accepted = try Socket.accept(listener)
            } catch where error.errno == EMFILE || error.errno == ENFILE {
                return descriptorsExhausted(error)
            } catch {
                logger.warn("accept_failed", ["error": .string(error.description)])
                return
            }
            guard case .processed(let (fd, peer)) = accepted else { return }
            guard connections.count < settings.maximumConnections else {
                refuse(fd, peer: peer, reason: "max_connections", message: "too many open connections (http.max_connections = \(settings.maximumConnections))")
                continue
            }
            let connection = HTTPConnection(fd: fd, peer: peer, now: loop.now, timeouts: settings.timeouts)
            guard
                let token = try? loop.register(
                    fd, events: Epoll.readable, { [unowned self] events in handleEvent(connection, events: events) })
            else {
                fd.close()
                continue
            }
            connection.token = token
            connections[token] = connection
            armTimer(connection)
        }
    }

    /// A best-effort 503 on a fresh socket, then close. The `connection_refused` line is written at most once a
    /// second, counting the refusals it stands for, so a flood cannot flood the log.
    private func refuse(_ fd: FileDescriptor, peer: String, reason: StaticString, message: String) {
        var bytes: [UInt8] = []
        HTTPResponse.error(.unavailable(message, retryAfterSeconds: 1)).serialize(into: &bytes, keepAlive: false)
        _ = try? bytes.withUnsafeBytes { try fd.send($0) }
        fd.close()
        refusedSinceLog += 1
        let now = loop.now
        if let last = lastRefusalLog, now - last < 1000 { return }
        logger.warn(
            "connection_refused",
            [
                "remote": .string(peer), "reason": .string(String(describing: reason)),
                "refused_since_last_line": .int(refusedSinceLog),
            ])
        refusedSinceLog = 0
        lastRefusalLog = now
    }

    /// accept failed for want of descriptors. The classic spare: close the reserved descriptor, accept one
    /// client, tell it 503, close it, take the spare again. If even that fails, stop watching the listener for
    /// 100 ms instead of waking the loop for it forever (it is level-triggered). Logged once per episode.
    private func descriptorsExhausted(_ error: SystemError) {
        if acceptPause == nil && refusedSinceLog == 0 {
            logger.error(
                "descriptors_exhausted",
                ["error": .string(error.description), "open_connections": .int(connections.count)])
        }
        if let reserve = spare {
            reserve.close()
            spare = nil
            if case .processed(let (fd, peer))? = try? Socket.accept(listener) {
                refuse(fd, peer: peer, reason: "descriptors", message: "server out of file descriptors; retry later")
            }
            spare = try? Posix.open("/dev/null", O_RDONLY)
            if spare != nil { return }
        }
        guard acceptPause == nil else { return }
        loop.modify(listener, token: listenerToken, events: 0)
        acceptPause = loop.schedule(after: 100) { [unowned self] in
            acceptPause = nil
            if spare == nil { spare = try? Posix.open("/dev/null", O_RDONLY) }
            loop.modify(listener, token: listenerToken, events: Epoll.readable)
        }
    }

    // MARK: Reading

    private func handleEvent(_ connection: HTTPConnection, events: UInt32) {
        if events & Epoll.writable != 0 {
            write(connection)
            guard !connection.state.isClosed else { return }
        }
        if events & (Epoll.readable | Epoll.hangup) != 0 {
            read(connection)
        }
    }

    private func read(_ connection: HTTPConnection) {
        var sawEOF = false
        let lingering = connection.state.isLingering
        while true {
            let result = try? readBuffer.withUnsafeMutableBytes { try connection.fd.read(into: $0) }
            switch result {
            case .processed(let count)? where count > 0:
                if !lingering {
                    if bufferedBytes + count > settings.maximumBufferedBytes {
                        return refuseOverBuffered(connection)
                    }
                    if connection.pendingInputCount == 0 && connection.state.requestStartedAt == nil {
                        connection.requestStartedMicroseconds = clock.monotonicMicroseconds()
                    }
                    connection.state.received(now: loop.now, hadPendingInput: connection.pendingInputCount > 0)
                    connection.input.append(contentsOf: readBuffer[0..<count])
                    account(connection)
                }
                // Leave the rest in the socket once a lot is buffered: the kernel then pushes back on the client.
                if count < readBuffer.count || connection.pendingInputCount >= HTTPServer.inputHighWater { break }
                continue
            case .wouldBlock?:
                break
            default:
                sawEOF = true  // EOF, or ECONNRESET and friends: the client is gone or done sending
            }
            break
        }
        if lingering {
            if sawEOF { closeConnection(connection) }
            return
        }
        processInput(connection)
        if sawEOF {
            // The client finished sending (or vanished): answer what it sent, then close.
            let outputEmpty = connection.output.isEmpty && !connection.isQueuedForFlush
            if connection.state.peerFinished(outputEmpty: outputEmpty) {
                closeConnection(connection)
            } else {
                stopReading(connection)
            }
            return
        }
        armTimer(connection)
    }

    /// Keeps `bufferedBytes` equal to the sum of the connections' input buffers.
    private func account(_ connection: HTTPConnection) {
        bufferedBytes += connection.input.count - connection.accountedInput
        connection.accountedInput = connection.input.count
    }

    /// Buffering this client's bytes would pass `http.max_buffered_bytes`: 503, and the connection ends.
    private func refuseOverBuffered(_ connection: HTTPConnection) {
        connection.state.requestFailed()
        connection.discardInput()
        account(connection)
        stopReading(connection)
        queue(
            .error(
                .unavailable(
                    "too many request bytes buffered across connections (http.max_buffered_bytes = "
                        + "\(settings.maximumBufferedBytes)); retry later", retryAfterSeconds: 1)),
            on: connection, keepAlive: false, method: "-", path: "-")
    }

    /// Parses and answers every complete request in the buffer, in order.
    private func processInput(_ connection: HTTPConnection) {
        while connection.state.isOpen && connection.pendingInputCount > 0 && connection.exchange == nil
            && connection.output.count <= HTTPServer.outputHighWater
        {
            switch parseNextRequest(connection) {
            case .success(.complete(let request, let consumed)):
                connection.inputStart += consumed
                connection.sentContinue = false
                let screened = connection.screened
                connection.screened = false
                let reply = (screened ? nil : responder.screen(request)).map(HTTPReply.response)
                    ?? responder.reply(to: request)
                let more = connection.pendingInputCount > 0
                connection.state.requestCompleted(now: loop.now, keepAlive: request.keepAlive, moreInputPending: more)
                switch reply {
                case .response(let response):
                    queue(
                        response, on: connection, keepAlive: request.keepAlive, method: request.method,
                        path: request.path, headOnly: request.method == "HEAD")
                case .deferred(let start):
                    let exchange = HTTPExchange(server: self, connection: connection, request: request)
                    connection.exchange = exchange
                    start(exchange)
                }
                if more { connection.requestStartedMicroseconds = clock.monotonicMicroseconds() }
            case .success(.awaitingBody(let head, let expectsContinue)):
                if !connection.screened {
                    connection.screened = true
                    if let refusal = responder.screen(head) {
                        // Refused on its headers: the body is never read, and the connection ends.
                        connection.state.requestFailed()
                        connection.discardInput()
                        account(connection)
                        queue(
                            refusal, on: connection, keepAlive: false, method: head.method, path: head.path,
                            headOnly: head.method == "HEAD")
                        continue
                    }
                }
                awaitMore(connection, expectsContinue: expectsContinue)
                return
            case .success(.incomplete(let expectsContinue)):
                awaitMore(connection, expectsContinue: expectsContinue)
                return
            case .failure(let error):
                connection.state.requestFailed()
                queue(.error(error), on: connection, keepAlive: false, method: "-", path: "-")
            }
        }
        connection.compactInput()
        account(connection)
        if connection.output.count > HTTPServer.outputHighWater || !connection.state.isOpen {
            stopReading(connection)
        }
    }

    /// The request is not whole yet: send `100 Continue` once if it asked, and wait for more bytes.
    private func awaitMore(_ connection: HTTPConnection, expectsContinue: Bool) {
        if expectsContinue && !connection.sentContinue {
            connection.sentContinue = true
            connection.output.append(ticket: 0, durableThrough: gate.durableThrough) {
                $0.appendASCII(HTTPResponse.continueHead)
            }
            queueFlush(connection)
        }
        connection.compactInput()
        account(connection)
    }

    /// Parses the next request from the connection's unconsumed input.
    private func parseNextRequest(_ connection: HTTPConnection) -> Result<HTTPParser.Result, HTTPError> {
        let start = connection.inputStart
        let limits = settings.limits
        return connection.input.withUnsafeBytes { bytes in
            Result { () throws(HTTPError) in
                try HTTPParser.parse(UnsafeRawBufferPointer(rebasing: bytes[start...]), limits: limits)
            }
        }
    }

    private func queue(
        _ response: HTTPResponse, on connection: HTTPConnection, keepAlive: Bool, method: String, path: String,
        headOnly: Bool = false
    ) {
        let durable = gate.durableThrough
        connection.output.append(ticket: gate.replyTicket, durableThrough: durable) {
            response.serialize(into: &$0, keepAlive: keepAlive, headOnly: headOnly)
        }
        if connection.output.isHeld {
            if !heldConnections.contains(where: { $0 === connection }) { heldConnections.append(connection) }
        }
        if connection.output.sendable > 0 { queueFlush(connection) }
        metrics.requestServed(route: Metrics.Route(path: path), status: response.status)
        if logger.logsRequests && logger.enabled(.info) {
            let micros = clock.monotonicMicroseconds() - connection.requestStartedMicroseconds
            logger.info(
                "request",
                [
                    "method": .string(method), "path": .string(path), "status": .int(response.status),
                    "bytes": .int(response.body.count), "duration_ms": .double(Double(micros) / 1000),
                    "remote": .string(connection.peer),
                ])
        }
    }

    private func queueFlush(_ connection: HTTPConnection) {
        guard !connection.isQueuedForFlush else { return }
        connection.isQueuedForFlush = true
        flushQueue.append(connection)
    }

    // MARK: Writing

    private func write(_ connection: HTTPConnection) {
        guard !connection.state.isClosed else { return }
        var sent = 0
        var failed = false
        connection.output.withSendableBytes { bytes in
            while sent < bytes.count {
                switch try? connection.fd.send(UnsafeRawBufferPointer(rebasing: bytes[sent...])) {
                case .processed(let count)?: sent += count
                case .wouldBlock?: return
                case nil:
                    failed = true  // EPIPE / ECONNRESET: the client went away
                    return
                }
            }
        }
        if failed { return closeConnection(connection) }
        if sent > 0 {
            connection.output.consumed(sent)
            connection.state.wrote(now: loop.now)
        }
        if connection.output.sendable > 0 {
            watch(connection, Epoll.writable | (connection.watchedEvents & Epoll.readable))
            return
        }
        if connection.output.isHeld {
            // The rest waits for the journal; `flush` comes back once it is durable.
            watch(connection, connection.watchedEvents & ~Epoll.writable)
            return
        }
        let inputLeft = connection.pendingInputCount > 0 || connection.watchedEvents & Epoll.readable != 0
        switch connection.state.drained(now: loop.now, inputPendingOrWatched: inputLeft) {
        case .close:
            closeConnection(connection)
        case .linger:
            connection.fd.shutdownWrite()
            connection.discardInput()
            account(connection)
            watch(connection, Epoll.readable)
            armTimer(connection)
        case .keepReading:
            // Caught up: read again (after backpressure) and answer anything already buffered.
            let wasPaused = connection.watchedEvents & Epoll.readable == 0
            watch(connection, Epoll.readable)
            if wasPaused && connection.pendingInputCount > 0 { processInput(connection) }
            armTimer(connection)
        }
    }

    private func stopReading(_ connection: HTTPConnection) {
        watch(connection, connection.watchedEvents & ~Epoll.readable)
    }

    private func watch(_ connection: HTTPConnection, _ events: UInt32) {
        guard events != connection.watchedEvents, !connection.state.isClosed else { return }
        connection.watchedEvents = events
        loop.modify(connection.fd, token: connection.token, events: events)
    }

    // MARK: Timeouts and closing

    private func armTimer(_ connection: HTTPConnection) {
        guard !connection.state.isClosed else { return }
        let deadline = connection.state.deadline
        // Deadlines mostly move later; a later one is picked up when the armed timer fires early.
        guard connection.timer == nil || deadline < connection.timerDeadline else { return }
        loop.cancel(connection.timer)
        connection.timerDeadline = deadline
        connection.timer = loop.schedule(at: deadline) { [unowned self, unowned connection] in
            connection.timer = nil
            timerFired(connection)
        }
    }

    private func timerFired(_ connection: HTTPConnection) {
        guard !connection.state.isClosed else { return }
        // A connection waiting on a long-poll or carrying a stream is not idle.
        switch connection.state.timerFired(now: loop.now, held: connection.output.isHeld || connection.exchange != nil) {
        case .rearm:
            armTimer(connection)
        case .close:
            closeConnection(connection)
        case .requestTimedOut:
            stopReading(connection)
            queue(
                .error(408, "request not received within \(settings.timeouts.request) ms (http.header_timeout_ms)"),
                on: connection, keepAlive: false, method: "-", path: "-")
            armTimer(connection)
        }
    }

    private func closeConnection(_ connection: HTTPConnection) {
        guard connections[connection.token] != nil else { return }
        if let exchange = connection.exchange {
            connection.exchange = nil
            exchange.connectionClosed()
        }
        connection.state.closed()
        connection.discardInput()
        account(connection)
        loop.cancel(connection.timer)
        connection.timer = nil
        loop.unregister(connection.fd, token: connection.token)
        connection.fd.close()
        connections[connection.token] = nil
    }

    // MARK: Deferred replies and streams

    /// A deferred request was answered: queue the response, then go on with the connection's next requests
    /// (parsed at the end of the loop iteration, not inside whatever answered it).
    func completeExchange(
        _ exchange: HTTPExchange, on connection: HTTPConnection, response: HTTPResponse, keepAlive: Bool,
        headOnly: Bool
    ) {
        guard connection.exchange === exchange, !connection.state.isClosed else { return }
        connection.exchange = nil
        queue(response, on: connection, keepAlive: keepAlive, method: exchange.method, path: exchange.path, headOnly: headOnly)
        if connection.pendingInputCount > 0 { resumeQueue.append(connection) }
        armTimer(connection)
    }

    /// Sends a stream's head: no Content-Length, the body ends when the connection closes.
    func beginStream(
        _ exchange: HTTPExchange, on connection: HTTPConnection, contentType: String, headers: [(String, String)]
    ) {
        guard connection.exchange === exchange, !connection.state.isClosed else { return }
        let response = HTTPResponse(status: 200, headers: headers, contentType: contentType)
        connection.output.append(ticket: gate.replyTicket, durableThrough: gate.durableThrough) {
            response.serializeStreamHead(into: &$0)
        }
        if connection.output.isHeld, !heldConnections.contains(where: { $0 === connection }) {
            heldConnections.append(connection)
        }
        if connection.output.sendable > 0 { queueFlush(connection) }
        metrics.requestServed(route: Metrics.Route(path: exchange.path), status: 200)
        guard logger.logsRequests else { return }
        logger.info(
            "request",
            [
                "method": .string(exchange.method), "path": .string(exchange.path), "status": .int(200),
                "bytes": .int(0), "duration_ms": .double(0), "remote": .string(connection.peer), "stream": .bool(true),
            ])
    }

    /// Queues stream bytes (held, like responses, until the journal is durable through what they show); a
    /// client with more than `backlogLimit` bytes unsent is dropped.
    func stream(_ bytes: [UInt8], on connection: HTTPConnection, backlogLimit: Int) -> Bool {
        guard !connection.state.isClosed else { return false }
        guard connection.output.count + bytes.count <= backlogLimit else {
            logger.warn(
                "stream_client_dropped",
                ["remote": .string(connection.peer), "unsent_bytes": .int(connection.output.count)])
            closeConnection(connection)
            return false
        }
        connection.output.append(ticket: gate.replyTicket, durableThrough: gate.durableThrough) {
            $0.append(contentsOf: bytes)
        }
        if connection.output.isHeld, !heldConnections.contains(where: { $0 === connection }) {
            heldConnections.append(connection)
        }
        if connection.output.sendable > 0 { queueFlush(connection) }
        return true
    }

    /// Ends a stream or an abandoned exchange: send what is queued, then close.
    func finishExchange(on connection: HTTPConnection) {
        guard !connection.state.isClosed else { return }
        connection.exchange = nil
        connection.state.requestFailed()
        stopReading(connection)
        if connection.output.isEmpty {
            closeConnection(connection)
        } else {
            queueFlush(connection)
        }
    }
}
