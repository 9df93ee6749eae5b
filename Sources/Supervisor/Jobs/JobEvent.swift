/// One change to one job. Live, the supervisor records each through `JobLedger.record` (store, journal,
/// metrics, log line); on start, the journal's events are applied to an empty store through the same
/// `JobStore.apply`. A second durable backend would store these same events.
enum JobEvent: Equatable {
    /// A job was accepted (the event that must be durable before `202`).
    case accepted(JobSpec, sequence: UInt64, at: Int64)
    /// An attempt started.
    case started(id: String, attempt: Int, at: Int64)
    /// The attempt succeeded with `result`; it ran `runMicroseconds`.
    case succeeded(id: String, attempt: Int, result: String, runMicroseconds: Int64, at: Int64)
    /// The attempt failed (`outcome`: error, crash, timeout or protocol); `retryAt` is when the next may start,
    /// nil when the job failed for good.
    case attemptFailed(
        id: String, attempt: Int, outcome: AttemptOutcome, error: String, runMicroseconds: Int64, retryAt: Int64?,
        at: Int64)
    /// An attempt was cut short by the supervisor itself: its shutdown deadline, or its death (found on replay).
    case interrupted(id: String, attempt: Int, error: String, at: Int64)
    /// The job was canceled.
    case canceled(id: String, at: Int64)
    /// A whole job as it stood when the journal was compacted.
    case snapshot(Job)

    /// The job the event is about.
    var jobID: String {
        switch self {
        case .accepted(let spec, _, _): return spec.id
        case .started(let id, _, _), .succeeded(let id, _, _, _, _), .attemptFailed(let id, _, _, _, _, _, _),
            .interrupted(let id, _, _, _), .canceled(let id, _):
            return id
        case .snapshot(let job): return job.id
        }
    }

    /// Whether a reply depends on this event (`202` on accept, `200` on cancel): such events are made durable
    /// before the reply goes out. Progress events ride along with the next sync: losing one to a power failure
    /// only makes a job run again (at least once), never lose it.
    var mustBeDurableBeforeReply: Bool {
        switch self {
        case .accepted, .canceled: return true
        case .started, .attemptFailed, .succeeded, .snapshot, .interrupted: return false
        }
    }

    /// A short description for logs: kind and job id.
    var summary: String {
        switch self {
        case .accepted(let spec, _, _): return "accepted(\(spec.id))"
        case .started(let id, let attempt, _): return "started(\(id), \(attempt))"
        case .attemptFailed(let id, let attempt, _, _, _, _, _): return "attempt_failed(\(id), \(attempt))"
        case .succeeded(let id, _, _, _, _): return "succeeded(\(id))"
        case .canceled(let id, _): return "canceled(\(id))"
        case .interrupted(let id, let attempt, _, _): return "interrupted(\(id), \(attempt))"
        case .snapshot(let job): return "snapshot(\(job.id))"
        }
    }
}

/// What a client asked for when it submitted a job.
struct JobSpec: Equatable {
    /// Client-chosen id, 1-128 bytes.
    var id: String
    /// What the handler gets.
    var payload: String
    /// At most `maxRetries + 1` attempts.
    var maxRetries: Int
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
