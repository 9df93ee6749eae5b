/// One change to one job. Live, the supervisor records each through `JobLedger.record` (store, journal,
/// metrics, log line); on start, the journal's events are applied to an empty store through the same
/// `JobStore.apply`. A second durable backend would store these same events.
enum JobEvent: Equatable {
    /// A job was accepted (the event that must be durable before `202`).
    case accepted(JobSpec, sequence: UInt64, at: Int64)
    /// An attempt started, in the worker with `workerPID`.
    case started(id: String, attempt: Int, workerPID: Int32 = 0, at: Int64)
    /// The attempt succeeded with `result` (cut at `max_result_bytes` when `truncated`); `detail` is the
    /// handler's diagnostics (an `exec` command's stderr tail); it ran `runMicroseconds`.
    case succeeded(
        id: String, attempt: Int, result: ByteString, truncated: Bool = false, detail: [UInt8] = [],
        runMicroseconds: Int64, at: Int64)
    /// The attempt failed (`outcome`: error, crash, timeout or protocol); `retryAt` is when the next may start,
    /// nil when the job failed for good.
    case attemptFailed(
        id: String, attempt: Int, outcome: AttemptOutcome, error: String, detail: [UInt8] = [], runMicroseconds: Int64,
        retryAt: Int64?, at: Int64)
    /// An attempt was cut short by the supervisor itself: its shutdown deadline, or its death (found on replay).
    case interrupted(id: String, attempt: Int, error: String, at: Int64)
    /// The job was canceled.
    case canceled(id: String, at: Int64)
    /// A failed or canceled job was queued again by hand, with a fresh attempt budget.
    case retried(id: String, at: Int64)
    /// The delivery of the job's callback moved on.
    case callback(id: String, CallbackStatus, at: Int64)
    /// Dispatch was paused (`true`) or resumed; not about one job.
    case dispatchPaused(Bool, at: Int64)
    /// A whole job as it stood when the journal was compacted.
    case snapshot(Job)

    /// The job the event is about; nil for events about the queue as a whole.
    var jobID: String? {
        switch self {
        case .accepted(let spec, _, _): return spec.id
        case .started(let id, _, _, _), .succeeded(let id, _, _, _, _, _, _),
            .attemptFailed(let id, _, _, _, _, _, _, _), .interrupted(let id, _, _, _), .canceled(let id, _),
            .retried(let id, _), .callback(let id, _, _):
            return id
        case .snapshot(let job): return job.id
        case .dispatchPaused: return nil
        }
    }

    /// Whether a reply depends on this event (`202` on accept, `200` on cancel, retry and pause): such events are
    /// made durable before the reply goes out. Progress events ride along with the next sync: losing one to a
    /// power failure only makes a job run again (at least once), never lose it.
    var mustBeDurableBeforeReply: Bool {
        switch self {
        case .accepted, .canceled, .retried, .dispatchPaused: return true
        case .started, .attemptFailed, .succeeded, .snapshot, .interrupted, .callback: return false
        }
    }

    /// A short description for logs: kind and job id.
    var summary: String {
        switch self {
        case .accepted(let spec, _, _): return "accepted(\(spec.id))"
        case .started(let id, let attempt, _, _): return "started(\(id), \(attempt))"
        case .attemptFailed(let id, let attempt, _, _, _, _, _, _): return "attempt_failed(\(id), \(attempt))"
        case .succeeded(let id, _, _, _, _, _, _): return "succeeded(\(id))"
        case .canceled(let id, _): return "canceled(\(id))"
        case .interrupted(let id, let attempt, _, _): return "interrupted(\(id), \(attempt))"
        case .retried(let id, _): return "retried(\(id))"
        case .callback(let id, let status, _): return "callback(\(id), \(status.state.rawValue))"
        case .dispatchPaused(let paused, _): return paused ? "paused" : "resumed"
        case .snapshot(let job): return "snapshot(\(job.id))"
        }
    }
}

/// What a client asked for when it submitted a job.
struct JobSpec: Equatable {
    /// The priorities a job may have; the default is the lowest.
    static let priorities = 0...9

    /// Client-chosen id, 1-128 bytes.
    var id: String
    /// What the handler gets.
    var payload: ByteString
    /// At most `maxRetries + 1` attempts.
    var maxRetries: Int
    /// 0-9; a higher priority runs first, FIFO within a priority.
    var priority = 0
    /// The job's own timeout in milliseconds (`timeout_ms`); nil uses `job_timeout_ms`.
    var timeoutMilliseconds: Int? = nil
    /// When it may first run (wall clock, epoch milliseconds; from `run_at`); nil: now, or after `delayMilliseconds`.
    var runAt: Int64? = nil
    /// `delay_ms`: how long after its acceptance it may first run. It counts from when the record is created, not
    /// from when the request was read, so the backend's own queueing cannot shorten it.
    var delayMilliseconds: Int64? = nil
    /// Where the finished record is POSTed (`callback_url`).
    var callbackURL: String? = nil

    /// When a job accepted at `acceptedAt` may first run: `runAt`, or `acceptedAt` plus the delay; nil: at once.
    func runAt(acceptedAt: Int64) -> Int64? {
        runAt ?? delayMilliseconds.map { acceptedAt + $0 }
    }
}

/// How one attempt ended: the `outcome` label of `prefork_attempts_total`.
enum AttemptOutcome: String, CaseIterable, Equatable {
    /// The handler succeeded.
    case ok
    /// The handler reported an error.
    case error
    /// The worker died on its own (signal or exit) during the attempt.
    case crash
    /// The job timeout killed the worker.
    case timeout
    /// The worker broke the protocol and was killed.
    case `protocol`
    /// The supervisor's shutdown deadline (or death) cut it short; the job was queued again.
    case interrupted
    /// The job was canceled while the attempt ran.
    case canceled
}

/// Why a worker slot's process was replaced: the `cause` label of `prefork_worker_restarts_total`.
enum RestartCause: String, CaseIterable, Equatable {
    /// It died on its own (signal or exit), or never said `ready` in time.
    case crash
    /// A job timeout killed it.
    case timeout
    /// It broke the protocol and was killed.
    case `protocol`
    /// Its job was canceled and it was killed.
    case canceled
    /// It was replaced gracefully (max_jobs, max_rss_mb, reload).
    case recycled
    /// It could not be started.
    case spawnFailed = "spawn_failed"
}
