/// The jobs and their durable history behind one door: every change to a job goes through `record`, which
/// applies the event to the store, appends it to the durable log, and counts and logs it, in one place.
///
/// The journal is today's `JobEventLog`; a second durable backend would be another.
final class JobLedger {
    /// Every job.
    private(set) var store: JobStore
    private let log: JobEventLog
    private let metrics: Metrics
    private let logger: Logger
    /// Called after each recorded event with the job as it is now, nil for an event about the queue (event
    /// stream, waiters, callbacks).
    var observers: [(JobEvent, Job?) -> Void] = []
    /// What running attempts last reported, by job id. Not durable: it only describes a running attempt.
    private(set) var progress: [String: JobProgress] = [:]

    /// A ledger over `store` (rebuilt from the log), appending to `log`.
    init(store: JobStore, log: JobEventLog, metrics: Metrics, logger: Logger) {
        self.store = store
        self.log = log
        self.metrics = metrics
        self.logger = logger
    }

    /// The job with this id.
    subscript(id: String) -> Job? { store[id] }

    /// Applies `event`, makes it durable (in order with every other event), counts and logs it. Throws, changing
    /// nothing, when the event does not apply to the job as it is.
    /// Returns the job as it is after the event; nil for an event about the queue as a whole (pause).
    @discardableResult
    func record(_ event: JobEvent) throws(InvalidTransition) -> Job? {
        let job = try store.apply(event)
        let before = store.previousState
        log.append(event)
        if let job {
            if job.state != .running, !progress.isEmpty { progress[job.id] = nil }
            observe(event, job, before: before)
        } else {
            observeQueue(event)
        }
        for observer in observers { observer(event, job) }
        return job
    }

    /// `record` for an event about one job: returns that job.
    @discardableResult
    func recordJob(_ event: JobEvent) throws(InvalidTransition) -> Job {
        // Only `.dispatchPaused` yields no job, and it is not a job event.
        try record(event)!
    }

    /// Whether dispatch is paused.
    var paused: Bool { store.paused }

    /// Takes over the jobs replayed from the journal (at start, before anything is recorded).
    func restore(_ replayed: JobStore) {
        store = replayed
        metrics.paused = replayed.paused
    }

    /// A running attempt's progress report; ignored unless the job is running that attempt.
    func progress(id: String, attempt: Int, percent: Int, note: String) {
        guard let job = store[id], job.state == .running, job.attempts == attempt else { return }
        progress[id] = JobProgress(percent: percent, note: note)
    }

    /// A new job's sequence number (acceptance order).
    func takeSequence() -> UInt64 { store.takeSequence() }

    /// Takes the oldest runnable job off the queue, with the number its next attempt gets (then `record(.started)`).
    func nextRunnable() -> (id: String, attempt: Int)? { store.nextRunnable() }

    /// Makes waiting jobs whose time has come runnable; returns how many.
    @discardableResult
    func promoteDue(now: Int64) -> Int { store.promoteDue(now: now) }

    /// When the next waiting job becomes runnable (wall clock, epoch milliseconds).
    var nextWakeUp: Int64? { store.nextWakeUp }

    /// Changes how many finished jobs, and how many bytes of their results, are kept (SIGHUP).
    func setRetention(maximumFinished: Int, maximumResultBytes: Int) {
        store.maximumFinished = maximumFinished
        store.maximumResultBytes = maximumResultBytes
        store.enforceRetention()
    }

    /// The metric and the log line of each kind of event.
    private func observe(_ event: JobEvent, _ job: Job, before: JobState?) {
        switch event {
        case .accepted(let spec, _, _):
            metrics.jobAccepted()
            logger.debug("job_accepted", ["id": .string(spec.id), "max_retries": .int(spec.maxRetries)])
        case .started(let id, let attempt, _, let at):
            if attempt == 1 { metrics.queueWait.observe(Double(at - job.createdAt) / 1000) }
            logger.debug("job_started", ["id": .string(id), "attempt": .int(attempt)])
        case .succeeded(let id, let attempt, _, _, _, let runMicroseconds, _):
            metrics.attemptEnded(.ok)
            metrics.runTime.observe(Double(runMicroseconds) / 1_000_000)
            metrics.jobFinished(.done)
            logger.info(
                "job_done",
                [
                    "id": .string(id), "attempt": .int(attempt),
                    "duration_ms": .double(Double(runMicroseconds) / 1000),
                ])
        case .attemptFailed(let id, let attempt, let outcome, let error, _, let runMicroseconds, let retryAt, let at):
            metrics.attemptEnded(outcome)
            metrics.runTime.observe(Double(runMicroseconds) / 1_000_000)
            if job.state == .queued {
                metrics.jobRetried()
                logger.info(
                    "job_retry",
                    [
                        "id": .string(id), "attempt": .int(attempt), "error": .string(error),
                        "delay_ms": .int((retryAt ?? at) - at),
                    ])
            } else {
                metrics.jobFinished(.failed)
                logger.info("job_failed", ["id": .string(id), "attempt": .int(attempt), "error": .string(error)])
            }
        case .retried(let id, _):
            metrics.jobRequeued()
            logger.info("job_requeued", ["id": .string(id), "attempts": .int(job.attempts), "was": .optional(before?.rawValue)])
        case .callback(let id, let status, _):
            logger.debug(
                "callback_state", ["id": .string(id), "state": .string(status.state.rawValue), "attempts": .int(status.attempts)])
        case .interrupted(let id, let attempt, let error, _):
            metrics.attemptEnded(.interrupted)
            if job.state == .failed { metrics.jobFinished(.failed) }
            logger.warn(
                "job_interrupted",
                [
                    "id": .string(id), "attempt": .int(attempt), "error": .string(error),
                    "state": .string(job.state.rawValue),
                ])
        case .canceled(let id, _):
            metrics.jobFinished(.canceled)
            logger.info("job_canceled", ["id": .string(id), "was": .optional(before?.rawValue)])
        case .snapshot, .dispatchPaused:
            break
        }
    }

    /// The log line of an event about the queue.
    private func observeQueue(_ event: JobEvent) {
        if case .dispatchPaused(let paused, _) = event {
            metrics.paused = paused
            logger.info(paused ? "dispatch_paused" : "dispatch_resumed", ["queued": .int(store.queuedCount)])
        }
    }
}

/// Where recorded job events are made durable, in order.
protocol JobEventLog: AnyObject {
    /// Appends an event; it becomes durable with the next commit (and before any reply that depends on it).
    func append(_ event: JobEvent)
}

/// How far a running attempt is, as its worker last said.
struct JobProgress: Equatable {
    /// 0 to 100.
    var percent: Int
    /// A short note.
    var note: String
}
