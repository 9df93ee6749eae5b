import Glibc
import System

/// A connection's I/O: reading and parsing requests, queueing and writing responses, its timer and its close.
extension HTTPServer {
    func handleEvent(_ connection: HTTPConnection, events: UInt32) {
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
    func processInput(_ connection: HTTPConnection) {
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

    func queue(
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

    func queueFlush(_ connection: HTTPConnection) {
        guard !connection.isQueuedForFlush else { return }
        connection.isQueuedForFlush = true
        flushQueue.append(connection)
    }

    // MARK: Writing

    func write(_ connection: HTTPConnection) {
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

    func stopReading(_ connection: HTTPConnection) {
        watch(connection, connection.watchedEvents & ~Epoll.readable)
    }

    private func watch(_ connection: HTTPConnection, _ events: UInt32) {
        guard events != connection.watchedEvents, !connection.state.isClosed else { return }
        connection.watchedEvents = events
        loop.modify(connection.fd, token: connection.token, events: events)
    }

    // MARK: Timeouts and closing

    func armTimer(_ connection: HTTPConnection) {
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

    func closeConnection(_ connection: HTTPConnection) {
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
}
