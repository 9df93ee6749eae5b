@testable import Supervisor

/// The store's events as one-line calls, for tests that walk jobs through their lifecycle. Each applies the
/// event the live supervisor would record.
extension JobStore {
    /// What a failed attempt led to.
    enum FailureOutcome: Equatable {
        /// Queued again, runnable after `delay` milliseconds.
        case retry(delay: Milliseconds)
        /// No attempts left.
        case failed
    }

    /// Accepts a new queued job.
    @discardableResult
    mutating func accept(id: String, payload: ByteString, maxRetries: Int, now: Int64) -> Job {
        try! apply(.accepted(JobSpec(id: id, payload: payload, maxRetries: maxRetries), sequence: takeSequence(), at: now))!
    }

    /// Starts the oldest runnable job's next attempt.
    mutating func startNext(now: Int64) -> Job? {
        guard let (id, attempt) = nextRunnable() else { return nil }
        return try? apply(.started(id: id, attempt: attempt, at: now)) ?? nil
    }

    /// Ends the running attempt successfully.
    @discardableResult
    mutating func succeed(id: String, result: ByteString, now: Int64) throws(InvalidTransition) -> Job {
        try apply(.succeeded(id: id, attempt: self[id]?.attempts ?? 0, result: result, runMicroseconds: 0, at: now))!
    }

    /// Fails the running attempt: a retry after `retryDelay` while attempts are left, as the supervisor decides.
    @discardableResult
    mutating func failAttempt(
        id: String, error: String, retryDelay: Milliseconds, now: Int64
    ) throws(InvalidTransition) -> FailureOutcome {
        let job = self[id]
        let retryAt = job.map { $0.attempts <= $0.maxRetries } ?? false ? now + retryDelay : nil
        let after = try apply(
            .attemptFailed(
                id: id, attempt: job?.attempts ?? 0, outcome: .error, error: error, runMicroseconds: 0,
                retryAt: retryAt, at: now))!
        return after.state == .queued ? .retry(delay: retryDelay) : .failed
    }

    /// Interrupts the running attempt (shutdown deadline).
    @discardableResult
    mutating func interrupt(id: String, error: String, now: Int64) throws(InvalidTransition) -> FailureOutcome {
        let after = try apply(.interrupted(id: id, attempt: self[id]?.attempts ?? 0, error: error, at: now))!
        return after.state == .queued ? .retry(delay: 0) : .failed
    }

    /// Cancels a job; returns it and the state it was in.
    @discardableResult
    mutating func cancel(id: String, now: Int64) throws(InvalidTransition) -> (job: Job, previous: JobState) {
        let previous = self[id]?.state
        let job = try apply(.canceled(id: id, at: now))!
        return (job, previous!)
    }

    /// Makes a retry-waiting job runnable by letting the clock reach its time.
    mutating func makeRunnable(id: String) {
        guard let job = self[id], job.state == .queued, let at = job.nextAttemptAt else { return }
        promoteDue(now: at)
    }
}
