import Glibc
import System

/// Deferred replies (long-polls, PostgreSQL answers) and event streams: answered later, on the loop.
extension HTTPServer {
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
