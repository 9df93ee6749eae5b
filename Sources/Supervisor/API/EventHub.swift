/// `GET /events`: Server-Sent Events for job transitions (`job`), worker changes (`worker`) and a `stats` event
/// every second; and the stats history behind `GET /stats`.
///
/// Events are numbered; the last `windowSize` are kept so a client reconnecting with `Last-Event-ID` gets what it
/// missed. They are recorded only while someone listens (or did within `resumeWindow` milliseconds), so a
/// supervisor nobody watches pays nothing per job. A client that does not keep up is dropped, never buffered
/// without bound.
final class EventHub {
    /// Events kept for `Last-Event-ID` resumption.
    static let windowSize = 4096
    /// Unsent bytes past which a client is dropped.
    static let clientBacklogLimit = 1 << 20
    /// A comment line this often keeps proxies and clients from timing the stream out.
    static let keepAliveMilliseconds: Milliseconds = 15_000
    /// After the last client leaves, events are still recorded this long, so a reconnect can resume.
    static let resumeWindow: Milliseconds = 60_000
    /// Stats samples kept for `/stats` (one a second: ten minutes).
    static let historySize = 600

    private var clients: [HTTPExchange] = []
    private var window = Deque<(id: UInt64, bytes: [UInt8])>()
    private var nextID: UInt64 = 1
    /// Monotonic time the last client left (recording continues until `resumeWindow` after it).
    private var lastClientLeft: Milliseconds?
    private var lastKeepAlive: Milliseconds = 0
    /// Each worker slot's state as last announced.
    private var announcedWorkers: [String] = []
    /// Stats samples, oldest first.
    private(set) var history = Deque<[UInt8]>()
    private let maximumClients: Int
    private let clock: Clock

    init(maximumClients: Int, clock: Clock) {
        self.maximumClients = maximumClients
        self.clock = clock
    }

    /// Whether events are being recorded: someone listens, or did recently.
    var isRecording: Bool {
        if !clients.isEmpty { return true }
        guard let left = lastClientLeft else { return false }
        return clock.monotonicMilliseconds() - left < Self.resumeWindow
    }

    /// Clients connected now.
    var clientCount: Int { clients.count }

    /// Takes a new client: the stream's head, what it missed since `lastEventID`, then live events. Refuses with
    /// 503 past `http.max_event_clients`.
    func add(_ exchange: HTTPExchange, lastEventID: UInt64?) {
        guard clients.count < maximumClients else {
            exchange.respond(
                .error(
                    .unavailable(
                        "too many event stream clients (http.max_event_clients = \(maximumClients)); retry later",
                        retryAfterSeconds: 5)))
            return
        }
        exchange.beginStream(contentType: "text/event-stream; charset=utf-8", headers: [("X-Accel-Buffering", "no")])
        var greeting: [UInt8] = Array("retry: 2000\n\n".utf8)
        if let lastEventID {
            if let oldest = window.first?.id, lastEventID + 1 < oldest {
                // Part of what it missed is gone: say so, so it reloads what it shows.
                greeting.append(contentsOf: "event: reset\ndata: {\"reason\":\"events since \(lastEventID) are no longer kept\"}\n\n".utf8)
            }
            for (id, bytes) in window where id > lastEventID { greeting.append(contentsOf: bytes) }
        }
        guard exchange.send(greeting, backlogLimit: Self.clientBacklogLimit) else { return }
        clients.append(exchange)
        exchange.onClose = { [unowned self, unowned exchange] in remove(exchange) }
    }

    /// Ends every stream (shutdown).
    func closeAll() {
        let all = clients
        clients = []
        for client in all { client.finish() }
    }

    // MARK: Events

    /// A job changed state (or was accepted).
    func job(_ event: JobEvent, _ job: Job) {
        guard isRecording else { return }
        var data: [UInt8] = []
        data.reserveCapacity(160)
        data.appendASCII("{\"id\":")
        data.appendJSONString(job.id)
        data.appendASCII(",\"state\":\"")
        data.append(contentsOf: job.state.rawValue.utf8)
        data.appendASCII("\",\"attempt\":")
        data.appendDecimal(job.attempts)
        data.appendASCII(",\"error\":")
        let failed: Bool
        switch event {
        case .attemptFailed, .interrupted, .canceled: failed = true
        default: failed = false
        }
        data.appendJSONString(orNull: failed ? job.lastError : nil)
        data.appendASCII(",\"priority\":")
        data.appendDecimal(job.priority)
        data.append(UInt8(ascii: "}"))
        publish("job", data)
    }

    /// The worker slots after a change: announces each slot whose state changed since it was last announced.
    func workers(_ slots: [WorkerSlot]) {
        guard isRecording else { return }
        for slot in slots {
            let state = slot.state.name
            if slot.index < announcedWorkers.count {
                if announcedWorkers[slot.index] == state { continue }
                announcedWorkers[slot.index] = state
            } else {
                while announcedWorkers.count < slot.index { announcedWorkers.append("") }
                announcedWorkers.append(state)
            }
            var data: [UInt8] = []
            data.appendASCII("{\"slot\":")
            data.appendDecimal(slot.index)
            data.appendASCII(",\"pid\":")
            if let pid = slot.state.child?.pid { data.appendDecimal(Int(pid)) } else { data.appendASCII("null") }
            data.appendASCII(",\"state\":\"")
            data.append(contentsOf: state.utf8)
            data.appendASCII("\",\"job\":")
            data.appendJSONString(orNull: slot.state.assignment?.jobID)
            data.appendASCII(",\"cause\":")
            data.appendJSONString(orNull: slot.lastRestartCause?.rawValue)
            data.append(UInt8(ascii: "}"))
            publish("worker", data)
        }
    }

    /// The once-a-second stats sample: kept for `/stats`, sent as a `stats` event, and a keep-alive comment
    /// every 15 seconds.
    func stats(_ sample: [UInt8]) {
        history.append(sample)
        if history.count > Self.historySize { _ = history.popFirst() }
        guard !clients.isEmpty else { return }
        publish("stats", sample, keep: false)
        let now = clock.monotonicMilliseconds()
        if now - lastKeepAlive >= Self.keepAliveMilliseconds {
            lastKeepAlive = now
            broadcast(Array(": keep-alive\n\n".utf8))
        }
    }

    /// Frames one event, keeps it in the window (unless `keep` is false: stats are not replayed), and sends it.
    private func publish(_ name: String, _ data: [UInt8], keep: Bool = true) {
        let id = nextID
        nextID += 1
        var bytes: [UInt8] = []
        bytes.reserveCapacity(data.count + 32)
        bytes.appendASCII("id: ")
        bytes.appendDecimal(Int(id))
        bytes.appendASCII("\nevent: ")
        bytes.append(contentsOf: name.utf8)
        bytes.appendASCII("\ndata: ")
        bytes.append(contentsOf: data)
        bytes.appendASCII("\n\n")
        if keep {
            window.append((id, bytes))
            if window.count > Self.windowSize { _ = window.popFirst() }
        }
        broadcast(bytes)
    }

    private func broadcast(_ bytes: [UInt8]) {
        guard !clients.isEmpty else { return }
        // A client dropped for its backlog leaves through `onClose`, which edits `clients`: iterate a copy.
        for client in clients { client.send(bytes, backlogLimit: Self.clientBacklogLimit) }
    }

    private func remove(_ exchange: HTTPExchange) {
        clients.removeAll { $0 === exchange }
        if clients.isEmpty { lastClientLeft = clock.monotonicMilliseconds() }
    }
}
