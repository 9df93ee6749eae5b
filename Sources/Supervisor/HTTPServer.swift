import Glibc

/// The listening socket and every client connection: reading, parsing, timeouts, and sending responses.
///
/// Routing is the supervisor's (`Supervisor.respond(to:)`). Responses are sent by `flush()` at the end of
/// each loop iteration, once the journal has made what they depend on durable (`Journal.replyTicket`);
/// until then they are held on their connection.
final class HTTPServer {
    /// The address actually bound (port 0 resolved).
    let boundAddress: Socket.Address
    private let listener: FileDescriptor
    private var listenerToken: EventToken = 0
    private unowned let supervisor: Supervisor
    private var connections: [EventToken: HTTPConnection] = [:]
    private var flushQueue: [HTTPConnection] = []
    /// Connections with output held for the journal.
    private var heldConnections: [HTTPConnection] = []
    private var readBuffer = [UInt8](repeating: 0, count: 65536)

    /// Output beyond this stops reading from a client until it catches up (a pipelining client that never reads).
    static let outputHighWater = 1 << 20
    /// Input buffered beyond this (unparsed requests) is left in the socket until the buffer is worked off.
    static let inputHighWater = 1 << 20
    /// How long unread input is drained after an error response before the socket is closed.
    static let lingerMilliseconds: Milliseconds = 500

    private var loop: EventLoop { supervisor.loop }
    private var logger: Logger { supervisor.logger }
    private var limits: HTTPParser.Limits {
        HTTPParser.Limits(
            maxHeaderBytes: supervisor.config.httpMaxHeaderBytes, maxBodyBytes: supervisor.config.httpMaxBodyBytes)
    }

    /// Binds and starts accepting.
    init(address: Socket.Address, supervisor: Supervisor) throws(SystemError) {
        self.supervisor = supervisor
        (listener, boundAddress) = try Socket.listen(address)
        listenerToken = try supervisor.loop.register(listener, events: EventLoop.readable) { [unowned self] _ in
            self.acceptClients()
        }
    }

    /// Number of open client connections.
    var connectionCount: Int { connections.count }

    /// Sends what every connection may send; called once per loop iteration, after the journal's commit.
    func flush() {
        if !heldConnections.isEmpty {
            let durable = supervisor.journal.durableThrough
            heldConnections.removeAll { connection in
                if connection.release(durableThrough: durable) { queueFlush(connection) }
                return !connection.isHeld || connection.isClosed
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
        loop.unregister(listener, token: listenerToken)
        Posix.close(listener)
        for connection in Array(connections.values) { closeConnection(connection) }
    }

    // MARK: Accepting

    private func acceptClients() {
        // Bounded so a connection storm cannot starve the other descriptors of this iteration.
        for _ in 0..<64 {
            guard case .processed(let (fd, peer))? = try? Socket.accept(listener) else { return }
            guard connections.count < supervisor.config.httpMaxConnections else {
                refuse(fd, peer: peer)
                continue
            }
            let connection = HTTPConnection(fd: fd, peer: peer, now: loop.now)
            guard
                let token = try? loop.register(
                    fd, events: EventLoop.readable,
                    { [unowned self] events in
                        self.handleEvent(connection, events: events)
                    })
            else {
                Posix.close(fd)
                continue
            }
            connection.token = token
            connections[token] = connection
            armTimer(connection)
        }
    }

    /// Over `http.max_connections`: a best-effort 503 on the fresh socket, then close.
    private func refuse(_ fd: FileDescriptor, peer: String) {
        var bytes: [UInt8] = []
        HTTPResponse.error(
            503, "too many open connections (http.max_connections = \(supervisor.config.httpMaxConnections))"
        )
        .withHeader("Retry-After", "1")
        .serialize(into: &bytes, keepAlive: false)
        _ = try? bytes.withUnsafeBytes { buffer throws(SystemError) in try Posix.send(fd, buffer) }
        Posix.close(fd)
        logger.warn("connection_refused", ["remote": .string(peer), "reason": "max_connections"])
    }

    // MARK: Reading

    private func handleEvent(_ connection: HTTPConnection, events: UInt32) {
        if events & EventLoop.writable != 0 {
            write(connection)
            guard !connection.isClosed else { return }
        }
        if events & (EventLoop.readable | EventLoop.hangup) != 0 {
            read(connection)
        }
    }

    private func read(_ connection: HTTPConnection) {
        var sawEOF = false
        while true {
            let result = try? readBuffer.withUnsafeMutableBytes { buffer throws(SystemError) in
                try Posix.read(connection.fd, buffer)
            }
            switch result {
            case .processed(let count)? where count > 0:
                if !connection.lingering {
                    if connection.pendingInputCount == 0 && connection.requestStartedAt == nil {
                        connection.requestStartedAt = loop.now
                        connection.requestStartedMicroseconds = monotonicMicroseconds()
                    }
                    connection.input.append(contentsOf: readBuffer[0..<count])
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
        connection.lastActivity = loop.now
        if connection.lingering {
            if sawEOF { closeConnection(connection) }
            return
        }
        processInput(connection)
        if sawEOF {
            // The client finished sending (or vanished): answer what it sent, then close.
            connection.closeAfterFlush = true
            connection.requestStartedAt = nil
            stopReading(connection)
            if connection.output.isEmpty && !connection.isQueuedForFlush { closeConnection(connection) }
            return
        }
        armTimer(connection)
    }

    /// Parses and answers every complete request in the buffer, in order.
    private func processInput(_ connection: HTTPConnection) {
        while !connection.closeAfterFlush && connection.pendingInputCount > 0
            && connection.output.count <= HTTPServer.outputHighWater
        {
            let result = parseNextRequest(connection)
            switch result {
            case .success(.complete(let request, let consumed)):
                connection.inputStart += consumed
                connection.sentContinue = false
                let response = supervisor.respond(to: request)
                let keepAlive = request.keepAlive
                if !keepAlive { connection.closeAfterFlush = true }
                queue(response, on: connection, keepAlive: keepAlive, method: request.method, path: request.path)
                if connection.pendingInputCount > 0 {
                    connection.requestStartedAt = loop.now
                    connection.requestStartedMicroseconds = monotonicMicroseconds()
                } else {
                    connection.requestStartedAt = nil
                }
            case .success(.incomplete(let expectsContinue)):
                if expectsContinue && !connection.sentContinue {
                    connection.sentContinue = true
                    connection.output.appendASCII(HTTPResponse.continueHead)
                    appendedOutput(connection, ticket: 0)
                }
                connection.compactInput()
                return
            case .failure(let error):
                connection.closeAfterFlush = true
                connection.requestStartedAt = nil
                queue(.error(error.status, error.message), on: connection, keepAlive: false, method: "-", path: "-")
            }
        }
        connection.compactInput()
        if connection.output.count > HTTPServer.outputHighWater || connection.closeAfterFlush {
            stopReading(connection)
        }
    }

    /// Parses the next request from the connection's unconsumed input.
    private func parseNextRequest(_ connection: HTTPConnection) -> Result<HTTPParser.Result, HTTPError> {
        let start = connection.inputStart
        let limits = limits
        var failure: HTTPError?
        let parsed = connection.input.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> HTTPParser.Result? in
            do throws(HTTPError) {
                return try HTTPParser.parse(UnsafeRawBufferPointer(rebasing: bytes[start...]), limits: limits)
            } catch {
                failure = error
                return nil
            }
        }
        if let parsed { return .success(parsed) }
        return .failure(failure!)
    }

    private func queue(
        _ response: HTTPResponse, on connection: HTTPConnection, keepAlive: Bool, method: String, path: String
    ) {
        response.serialize(into: &connection.output, keepAlive: keepAlive)
        appendedOutput(connection, ticket: supervisor.journal.replyTicket)
        supervisor.metrics.requestServed(route: Metrics.Route(path: path), status: response.status)
        if logger.enabled(.info) {
            let micros = monotonicMicroseconds() - connection.requestStartedMicroseconds
            logger.info(
                "request",
                [
                    "method": .string(method), "path": .string(path), "status": .int(response.status),
                    "bytes": .int(response.body.count), "duration_ms": .double(Double(micros) / 1000),
                    "remote": .string(connection.peer),
                ])
        }
    }

    /// Queues what was just appended to the connection's output for sending, or holds it for the journal.
    private func appendedOutput(_ connection: HTTPConnection, ticket: Int) {
        let wasHeld = connection.isHeld
        connection.appendedOutput(ticket: ticket, durableThrough: supervisor.journal.durableThrough)
        if connection.isHeld {
            if !wasHeld { heldConnections.append(connection) }
        } else {
            queueFlush(connection)
        }
    }

    private func queueFlush(_ connection: HTTPConnection) {
        guard !connection.isQueuedForFlush else { return }
        connection.isQueuedForFlush = true
        flushQueue.append(connection)
    }

    // MARK: Writing

    private func write(_ connection: HTTPConnection) {
        guard !connection.isClosed else { return }
        var sent = 0
        var failed = false
        let sendable = connection.sendable
        connection.output.withUnsafeBytes { bytes in
            while sent < sendable {
                let result = try? Posix.send(connection.fd, UnsafeRawBufferPointer(rebasing: bytes[sent..<sendable]))
                switch result {
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
            connection.consumedOutput(sent)
            connection.lastActivity = loop.now
        }
        if connection.sendable > 0 {
            watch(connection, EventLoop.writable | (connection.watchedEvents & EventLoop.readable))
            return
        }
        if connection.isHeld {
            // The rest waits for the journal; `flush` comes back once it is durable.
            watch(connection, connection.watchedEvents & ~EventLoop.writable)
            return
        }
        if connection.closeAfterFlush {
            return startLingering(connection)
        }
        // Caught up: read again (after backpressure) and answer anything already buffered.
        let wasPaused = connection.watchedEvents & EventLoop.readable == 0
        watch(connection, EventLoop.readable)
        if wasPaused && connection.pendingInputCount > 0 { processInput(connection) }
        armTimer(connection)
    }

    private func stopReading(_ connection: HTTPConnection) {
        watch(connection, connection.watchedEvents & ~EventLoop.readable)
    }

    private func watch(_ connection: HTTPConnection, _ events: UInt32) {
        guard events != connection.watchedEvents, !connection.isClosed else { return }
        connection.watchedEvents = events
        loop.modify(connection.fd, token: connection.token, events: events)
    }

    /// After a final response: shut down our side, then discard the client's unread bytes until it closes,
    /// so the kernel does not answer them with a reset that could destroy the response in flight.
    private func startLingering(_ connection: HTTPConnection) {
        guard connection.pendingInputCount > 0 || connection.watchedEvents & EventLoop.readable != 0 else {
            return closeConnection(connection)
        }
        _ = shutdown(connection.fd.rawValue, CInt(SHUT_WR))
        connection.lingering = true
        connection.input = []
        connection.inputStart = 0
        connection.lingerDeadline = loop.now + HTTPServer.lingerMilliseconds
        watch(connection, EventLoop.readable)
        armTimer(connection)
    }

    // MARK: Timeouts and closing

    private func armTimer(_ connection: HTTPConnection) {
        guard !connection.isClosed else { return }
        let deadline = connection.currentDeadline(
            requestTimeout: Milliseconds(supervisor.config.httpHeaderTimeoutMs),
            idleTimeout: Milliseconds(supervisor.config.httpIdleTimeoutMs))
        // Deadlines mostly move later; a later one is picked up when the armed timer fires early.
        guard connection.timer == nil || deadline < connection.timerDeadline else { return }
        loop.cancel(connection.timer)
        connection.timerDeadline = deadline
        connection.timer = loop.schedule(at: deadline) { [unowned self, unowned connection] in
            connection.timer = nil
            self.timerFired(connection)
        }
    }

    private func timerFired(_ connection: HTTPConnection) {
        guard !connection.isClosed else { return }
        if connection.isHeld {
            // Its responses wait for the disk, not for the client: the client is not idle.
            connection.lastActivity = loop.now
            return armTimer(connection)
        }
        let requestTimeout = Milliseconds(supervisor.config.httpHeaderTimeoutMs)
        let deadline = connection.currentDeadline(
            requestTimeout: requestTimeout, idleTimeout: Milliseconds(supervisor.config.httpIdleTimeoutMs))
        guard loop.now >= deadline else { return armTimer(connection) }
        if connection.lingering || connection.closeAfterFlush {
            closeConnection(connection)
        } else if connection.requestStartedAt != nil {
            connection.closeAfterFlush = true
            connection.requestStartedAt = nil
            stopReading(connection)
            queue(
                .error(408, "request not received within \(requestTimeout) ms (http.header_timeout_ms)"),
                on: connection, keepAlive: false, method: "-", path: "-")
            connection.timerDeadline = .max
            connection.lingerDeadline = loop.now + HTTPServer.lingerMilliseconds
            connection.lingering = false
            connection.timer = loop.schedule(at: connection.lingerDeadline) { [unowned self, unowned connection] in
                connection.timer = nil
                self.closeConnection(connection)
            }
        } else {
            closeConnection(connection)  // idle keep-alive connection
        }
    }

    private func closeConnection(_ connection: HTTPConnection) {
        guard !connection.isClosed else { return }
        connection.isClosed = true
        loop.cancel(connection.timer)
        connection.timer = nil
        loop.unregister(connection.fd, token: connection.token)
        Posix.close(connection.fd)
        connections[connection.token] = nil
    }
}
