import Glibc
import System

/// Accepting clients: the connection limit, refusals with a rate-limited log line, and the spare descriptor for
/// when descriptors run out.
extension HTTPServer {
    func acceptClients() {
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
}
