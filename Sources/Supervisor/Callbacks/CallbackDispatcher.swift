import Glibc
import System

/// Delivers callbacks: when a job with a `callback_url` finishes, its record is POSTed there, retried with the
/// backoff settings until a 2xx answer or `callbacks.max_attempts`, each attempt's outcome journaled (so a
/// restart resumes pending deliveries: at least once).
///
/// Everything runs on the event loop: non-blocking sockets registered like any other descriptor, names resolved
/// on a background queue, at most `callbacks.max_concurrent` deliveries in flight, one deadline per attempt.
final class CallbackDispatcher {
    /// One delivery attempt in flight.
    private final class Delivery {
        let jobID: String
        /// Its number, from 1.
        let attempt: Int
        let url: CallbackURL
        let request: [UInt8]
        let startedMicroseconds: Int64
        var fd: FileDescriptor?
        var token: EventToken = 0
        var connected = false
        var written = 0
        var response: [UInt8] = []
        var timer: TimerID?

        init(jobID: String, attempt: Int, url: CallbackURL, request: [UInt8], startedMicroseconds: Int64) {
            self.jobID = jobID
            self.attempt = attempt
            self.url = url
            self.request = request
            self.startedMicroseconds = startedMicroseconds
        }
    }

    /// How an attempt ended.
    private enum Ending {
        case answered(status: Int)
        case timeout
        case unreachable(String)
    }

    private unowned let supervisor: Supervisor
    private let resolver: HostResolver?
    private var resolverToken: EventToken = 0
    /// Jobs whose delivery may start now, in order.
    private var ready = Deque<String>()
    /// Jobs queued in `ready` or in flight (one delivery per job at a time).
    private var active: Set<String> = []
    /// Jobs waiting for their next attempt's time.
    private var retryTimers: [String: TimerID] = [:]
    private var inFlight: [String: Delivery] = [:]
    private var pumpScheduled = false
    private var deliveryCounter: UInt64 = 0
    /// Most bytes of an answer's head read before its status is judged.
    private static let maximumResponseBytes = 65_536

    init(supervisor: Supervisor) {
        self.supervisor = supervisor
        resolver = try? HostResolver(clock: supervisor.clock)
        if let resolver {
            resolverToken =
                (try? supervisor.loop.register(resolver.notification, events: Epoll.readable) { [unowned resolver] _ in
                    resolver.deliverAnswers()
                }) ?? 0
        }
    }

    /// Deliveries in flight now.
    var inFlightCount: Int { inFlight.count }

    /// A recorded event: a job that just finished with a `callback_url` gets its delivery.
    func jobChanged(_ event: JobEvent, _ job: Job) {
        switch event {
        case .callback, .snapshot, .accepted, .started, .retried, .dispatchPaused: return
        case .succeeded, .attemptFailed, .interrupted, .canceled: break
        }
        guard job.state.isFinished, job.callbackURL != nil, job.callback == nil else { return }
        schedule(job.id, at: nil)
    }

    /// At start: every finished job whose callback is still pending (journaled) is delivered again.
    func resumePending() {
        for job in supervisor.ledger.store.jobsInAcceptanceOrder where job.state.isFinished && job.callbackURL != nil {
            guard job.callback?.state ?? .pending == .pending else { continue }
            schedule(job.id, at: job.callback?.nextAttemptAt)
        }
    }

    /// Abandons what is in flight (shutdown): those deliveries stay pending in the journal and resume at the next
    /// start.
    func close() {
        for delivery in inFlight.values { release(delivery) }
        inFlight = [:]
        for timer in retryTimers.values { supervisor.loop.cancel(timer) }
        retryTimers = [:]
        if let resolver {
            supervisor.loop.unregister(resolver.notification, token: resolverToken)
            resolver.close()
        }
    }

    // MARK: Scheduling

    /// Queues job `id`'s next attempt now, or at `at` (wall clock).
    private func schedule(_ id: String, at: Int64?) {
        guard !active.contains(id), retryTimers[id] == nil else { return }
        let now = supervisor.clock.wallMilliseconds()
        if let at, at > now {
            retryTimers[id] = supervisor.loop.schedule(after: at - now) { [unowned self] in
                retryTimers[id] = nil
                schedule(id, at: nil)
            }
            return
        }
        active.insert(id)
        ready.append(id)
        schedulePump()
    }

    /// Starts deliveries on the next turn of the loop, never inside the ledger's observers.
    private func schedulePump() {
        guard !pumpScheduled else { return }
        pumpScheduled = true
        _ = supervisor.loop.schedule(after: 0) { [unowned self] in
            pumpScheduled = false
            pump()
        }
    }

    private func pump() {
        while inFlight.count < supervisor.config.callbacksMaxConcurrent, let id = ready.popFirst() {
            guard let job = supervisor.ledger[id], job.state.isFinished, let text = job.callbackURL,
                job.callback?.state ?? .pending == .pending, let url = try? CallbackURL(parsing: text)
            else {
                active.remove(id)
                continue
            }
            start(job, url: url)
        }
    }

    // MARK: One attempt

    private func start(_ job: Job, url: CallbackURL) {
        let attempt = (job.callback?.attempts ?? 0) + 1
        deliveryCounter += 1
        let deliveryID = "\(job.id)/\(attempt)/\(supervisor.clock.wallMilliseconds())-\(deliveryCounter)"
        let delivery = Delivery(
            jobID: job.id, attempt: attempt, url: url, request: request(for: job, url: url, deliveryID: deliveryID),
            startedMicroseconds: supervisor.clock.monotonicMicroseconds())
        inFlight[job.id] = delivery
        let timeout = Milliseconds(supervisor.config.callbacksTimeoutMs)
        delivery.timer = supervisor.loop.schedule(after: timeout) { [unowned self, unowned delivery] in
            delivery.timer = nil
            finish(delivery, .timeout)
        }
        guard let resolver else { return finish(delivery, .unreachable("cannot start the name resolver")) }
        resolver.resolve(host: url.host, port: url.port) { [weak self, weak delivery] result in
            guard let self, let delivery, self.inFlight[delivery.jobID] === delivery else { return }
            switch result {
            case .success(let address): self.connect(delivery, to: address)
            case .failure(let error): self.finish(delivery, .unreachable(error.description))
            }
        }
    }

    /// The POST: the job's whole record, signed when `callbacks.secret` is set.
    private func request(for job: Job, url: CallbackURL, deliveryID: String) -> [UInt8] {
        let body = job.jsonBody(detail: .full)
        var head = "POST \(url.target) HTTP/1.1\r\nHost: \(url.hostHeader)\r\n"
        head += "User-Agent: prefork/\(BuildInfo.version)\r\nContent-Type: application/json\r\n"
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n"
        var bytes = Array(head.utf8)
        bytes.appendASCII("X-Prefork-Job-Id: ")
        bytes.appendHeaderText(job.id)
        bytes.appendASCII("\r\nX-Prefork-Delivery: ")
        bytes.appendHeaderText(deliveryID)
        bytes.appendASCII("\r\n")
        if let secret = supervisor.config.callbacksSecret {
            let signature = HMACSHA256.authenticationCode(key: Array(secret.utf8), message: body)
            bytes.appendASCII("X-Prefork-Signature: sha256=")
            bytes.append(contentsOf: signature.lowercaseHex.utf8)
            bytes.appendASCII("\r\n")
        }
        bytes.appendASCII("\r\n")
        bytes.append(contentsOf: body)
        return bytes
    }

    private func connect(_ delivery: Delivery, to address: SocketAddress) {
        let fd: FileDescriptor
        let progress: IOResult<Void>
        do throws(SystemError) {
            (fd, progress) = try Socket.connect(address)
        } catch {
            return finish(delivery, .unreachable("\(error)"))
        }
        delivery.fd = fd
        if case .processed = progress { delivery.connected = true }
        do throws(SystemError) {
            delivery.token = try supervisor.loop.register(fd, events: Epoll.writable) {
                [unowned self, unowned delivery] events in
                handle(delivery, events: events)
            }
        } catch {
            return finish(delivery, .unreachable("\(error)"))
        }
    }

    private func handle(_ delivery: Delivery, events: UInt32) {
        guard let fd = delivery.fd, inFlight[delivery.jobID] === delivery else { return }
        if !delivery.connected {
            if let error = Socket.connectionResult(fd) { return finish(delivery, .unreachable("\(error)")) }
            delivery.connected = true
        }
        if delivery.written < delivery.request.count {
            while delivery.written < delivery.request.count {
                let result = delivery.request.withUnsafeBytes { bytes in
                    try? fd.send(UnsafeRawBufferPointer(rebasing: bytes[delivery.written...]))
                }
                switch result {
                case .processed(let count)?: delivery.written += count
                case .wouldBlock?: return
                case nil: return finish(delivery, .unreachable("connection closed while sending"))
                }
            }
            supervisor.loop.modify(fd, token: delivery.token, events: Epoll.readable)
            return
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let result = try? buffer.withUnsafeMutableBytes { try fd.read(into: $0) }
            switch result {
            case .processed(let count)? where count > 0:
                delivery.response.append(contentsOf: buffer[0..<count])
                if let status = Self.status(delivery.response) { return finish(delivery, .answered(status: status)) }
                if delivery.response.count > Self.maximumResponseBytes {
                    return finish(delivery, .unreachable("answer without a readable status line"))
                }
            case .wouldBlock?:
                return
            default:
                if let status = Self.status(delivery.response, atEnd: true) {
                    return finish(delivery, .answered(status: status))
                }
                return finish(delivery, .unreachable("connection closed without an HTTP answer"))
            }
        }
    }

    /// The status code once the status line is complete: `HTTP/1.x NNN ...`.
    private static func status(_ bytes: [UInt8], atEnd: Bool = false) -> Int? {
        guard let end = bytes.firstIndex(of: UInt8(ascii: "\n")) ?? (atEnd ? bytes.count : nil) else { return nil }
        let line = String(decoding: bytes[..<end], as: UTF8.self)
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let code = Int(parts[1]), (100...599).contains(code)
        else { return nil }
        return code
    }

    /// Ends an attempt: journals the delivery's new state, counts it, and schedules the next attempt if any.
    private func finish(_ delivery: Delivery, _ ending: Ending) {
        guard inFlight[delivery.jobID] === delivery else { return }
        inFlight[delivery.jobID] = nil
        active.remove(delivery.jobID)
        release(delivery)
        let seconds = Double(supervisor.clock.monotonicMicroseconds() - delivery.startedMicroseconds) / 1_000_000
        supervisor.metrics.callbackLatency.observe(seconds)
        let now = supervisor.clock.wallMilliseconds()
        let maximum = supervisor.config.callbacksMaxAttempts
        var status = CallbackStatus(state: .pending, attempts: delivery.attempt, lastError: nil, nextAttemptAt: nil)
        let outcome: Metrics.CallbackOutcome
        switch ending {
        case .answered(let code) where (200...299).contains(code):
            outcome = .delivered
            status.state = .delivered
        case .answered(let code):
            outcome = .rejected
            status.lastError = "answered \(code)"
        case .timeout:
            outcome = .timeout
            status.lastError = "no answer within \(supervisor.config.callbacksTimeoutMs) ms (callbacks.timeout_ms)"
        case .unreachable(let why):
            outcome = .unreachable
            status.lastError = why
        }
        supervisor.metrics.callbackEnded(outcome)
        if status.state == .pending {
            if delivery.attempt >= maximum {
                status.state = .failed
                supervisor.metrics.callbackEnded(.gaveUp)
            } else {
                status.nextAttemptAt = supervisor.backoff.retryAt(afterAttempts: delivery.attempt, now: now)
            }
        }
        do throws(InvalidTransition) {
            try supervisor.ledger.record(.callback(id: delivery.jobID, status, at: now))
        } catch {
            // Retried by hand meanwhile (no longer finished): its next end delivers again.
            schedulePump()
            return
        }
        let fields: KeyValuePairs<String, LogValue> = [
            "id": .string(delivery.jobID), "attempt": .int(delivery.attempt), "url": .string(delivery.url.target),
            "host": .string(delivery.url.hostHeader), "error": .optional(status.lastError),
            "duration_ms": .double(seconds * 1000),
        ]
        switch status.state {
        case .delivered: supervisor.logger.info("callback_delivered", fields)
        case .pending: supervisor.logger.warn("callback_retry", fields)
        case .failed: supervisor.logger.error("callback_failed", fields)
        }
        if status.state == .pending { schedule(delivery.jobID, at: status.nextAttemptAt) }
        schedulePump()
    }

    /// Closes the attempt's socket and cancels its deadline.
    private func release(_ delivery: Delivery) {
        supervisor.loop.cancel(delivery.timer)
        delivery.timer = nil
        if let fd = delivery.fd {
            if delivery.token != 0 { supervisor.loop.unregister(fd, token: delivery.token) }
            fd.close()
            delivery.fd = nil
        }
    }
}
