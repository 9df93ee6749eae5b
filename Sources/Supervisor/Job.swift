/// Where a job is in its lifecycle (ARCHITECTURE.md, "Job lifecycle").
enum JobState: String, CaseIterable {
    case queued, running, done, failed, canceled

    /// Whether the job will never run again.
    var isFinished: Bool { self == .done || self == .failed || self == .canceled }
}

/// One job and its history, as the API shows it.
struct Job: Equatable {
    /// Client-chosen id, 1-128 bytes.
    let id: String
    /// The payload handed to the handler.
    let payload: String
    /// At most `maxRetries + 1` attempts.
    let maxRetries: Int
    /// Acceptance order, for FIFO and "newest first" listings.
    let sequence: UInt64
    /// Wall-clock acceptance time, epoch milliseconds.
    let createdAt: Int64

    /// Current state.
    private(set) var state: JobState = .queued
    /// Attempts started so far.
    private(set) var attempts = 0
    /// Why the last attempt failed (or "canceled").
    private(set) var lastError: String?
    /// The handler's output on success.
    private(set) var result: String?
    /// Wall-clock time of the last change, epoch milliseconds.
    private(set) var updatedAt: Int64
    /// When a retry-waiting job becomes runnable (wall clock, epoch milliseconds); nil otherwise.
    private(set) var nextAttemptAt: Int64?

    /// A freshly accepted job.
    init(id: String, payload: String, maxRetries: Int, sequence: UInt64, now: Int64) {
        self.id = id
        self.payload = payload
        self.maxRetries = maxRetries
        self.sequence = sequence
        self.createdAt = now
        self.updatedAt = now
    }

    /// A job exactly as the journal recorded it.
    init(
        restoring id: String, payload: String, maxRetries: Int, sequence: UInt64, createdAt: Int64, state: JobState,
        attempts: Int, lastError: String?, result: String?, updatedAt: Int64, nextAttemptAt: Int64?
    ) {
        self.id = id
        self.payload = payload
        self.maxRetries = maxRetries
        self.sequence = sequence
        self.createdAt = createdAt
        self.state = state
        self.attempts = attempts
        self.lastError = lastError
        self.result = result
        self.updatedAt = updatedAt
        self.nextAttemptAt = nextAttemptAt
    }

    /// Whether a resubmission with this content is the same job (idempotent enqueue).
    func hasSameContent(payload: String, maxRetries: Int) -> Bool {
        self.payload == payload && self.maxRetries == maxRetries
    }
}

/// A transition the lifecycle does not allow from the job's current state.
struct InvalidTransition: Error, Equatable {
    /// The state the job was in.
    let from: JobState
    /// The event that was refused.
    let event: String
}

/// What a failed attempt led to.
enum AttemptOutcome: Equatable {
    /// Queued again; runnable after `delay` milliseconds.
    case retry(delay: Milliseconds)
    /// No attempts left: the job is `failed`.
    case failed
}

extension Job {
    /// queued -> running: an attempt starts.
    mutating func start(now: Int64) throws(InvalidTransition) {
        guard state == .queued else { throw InvalidTransition(from: state, event: "start") }
        state = .running
        attempts += 1
        nextAttemptAt = nil
        updatedAt = now
    }

    /// running -> done.
    mutating func succeed(result: String, now: Int64) throws(InvalidTransition) {
        guard state == .running else { throw InvalidTransition(from: state, event: "succeed") }
        state = .done
        self.result = result
        updatedAt = now
    }

    /// running -> queued (attempts left, runnable after `retryDelay`) or running -> failed.
    mutating func failAttempt(error: String, retryDelay: Milliseconds, now: Int64) throws(InvalidTransition)
        -> AttemptOutcome
    {
        guard state == .running else { throw InvalidTransition(from: state, event: "fail") }
        lastError = error
        updatedAt = now
        if attempts <= maxRetries {
            state = .queued
            // Saturating: an absurd backoff.max_ms must not overflow the clock.
            nextAttemptAt = now.addingReportingOverflow(retryDelay).overflow ? .max : now + retryDelay
            return .retry(delay: retryDelay)
        }
        state = .failed
        return .failed
    }

    /// running -> queued/failed for an attempt cut short by the supervisor itself dying (found on replay).
    ///
    /// The attempt stays counted, but such an attempt gets one grace attempt beyond `maxRetries`: a job
    /// that was merely running during a crash still completes, while one that kills the supervisor every
    /// time fails after `maxRetries + 2` attempts instead of looping forever.
    mutating func interrupt(error: String, now: Int64) throws(InvalidTransition) -> AttemptOutcome {
        guard state == .running else { throw InvalidTransition(from: state, event: "interrupt") }
        lastError = error
        updatedAt = now
        if attempts <= maxRetries + 1 {
            state = .queued
            nextAttemptAt = nil
            return .retry(delay: 0)
        }
        state = .failed
        return .failed
    }

    /// queued/running -> canceled; finished jobs refuse.
    mutating func cancel(now: Int64) throws(InvalidTransition) {
        guard !state.isFinished else { throw InvalidTransition(from: state, event: "cancel") }
        state = .canceled
        lastError = "canceled"
        nextAttemptAt = nil
        updatedAt = now
    }

    /// A retry-waiting job's backoff has elapsed: it is plainly queued again.
    mutating func becomeRunnable() {
        nextAttemptAt = nil
    }
}
