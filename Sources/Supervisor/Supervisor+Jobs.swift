import IPC
import System

/// Moving jobs through workers: accepting, dispatching, charging each attempt's end, retries and cancellation.
/// Every change to a job is an event recorded through the ledger.
extension Supervisor {
    /// Why an enqueue was refused before it reached the ledger.
    enum EnqueueRefusal: Error {
        /// Same id, different content.
        case conflict(Job)
        /// The queue holds `queue_size` jobs.
        case queueFull
        /// SIGINT/SIGTERM received.
        case draining

        /// The `reason` label it is counted under.
        var metricsReason: Metrics.Rejection {
            switch self {
            case .conflict: return .conflict
            case .queueFull: return .queueFull
            case .draining: return .draining
            }
        }
    }

    /// Accepts a job, or returns the existing identical one (`created` false).
    func enqueue(_ spec: JobSpec) throws(EnqueueRefusal) -> (job: Job, created: Bool) {
        if let existing = ledger[spec.id] {
            guard existing.hasSameContent(payload: spec.payload, maxRetries: spec.maxRetries) else {
                throw .conflict(existing)
            }
            return (existing, false)
        }
        guard !pool.draining else { throw .draining }
        guard ledger.store.queuedCount < config.queueSize else { throw .queueFull }
        let job = try! ledger.record(  // a new id is always accepted
            .accepted(spec, sequence: ledger.takeSequence(), at: clock.wallMilliseconds()))
        dispatch()
        syncJournalSoon()
        return (job, true)
    }

    /// Hands runnable jobs to idle workers, oldest job first. Called whenever a job or a worker becomes
    /// available, so a worker never waits for the loop's next iteration.
    func dispatch() {
        defer { updateUrgentPolling() }
        guard !pool.draining, ledger.store.hasRunnable else { return }
        var next = pool.nextIdleSlot()
        while let slot = next {
            guard let (id, attempt) = ledger.nextRunnable() else { return }
            guard let job = try? ledger.record(.started(id: id, attempt: attempt, at: clock.wallMilliseconds())) else {
                continue
            }
            perform(
                pool.assign(
                    slot: slot, jobID: id, attempt: attempt, payload: Array(job.payload.utf8),
                    timeoutMilliseconds: config.jobTimeoutMs, jobsWaiting: ledger.store.hasRunnable,
                    maximumOutputBytes: config.maxResultBytes))
            next = pool.nextIdleSlot(from: slot + 1)
        }
    }

    /// Worker results are read between HTTP events only while a worker is busy and jobs wait for one: then a
    /// freed worker gets its next job at once. With no job waiting the poll after every event won nothing.
    func updateUrgentPolling() {
        loop.expectsUrgentEvents = ledger.store.hasRunnable && pool.hasBusySlot
    }

    /// Records how an attempt ended: done, a retry after the backoff, failed for good, or interrupted. Ignored
    /// when the job is no longer running that attempt (canceled meanwhile).
    func attemptEnded(_ end: WorkerPool.AttemptEnd) {
        let now = clock.wallMilliseconds()
        let event: JobEvent
        switch end.kind {
        case .succeeded(let output, _, _):
            // The store refuses it unless the job is running this attempt (not canceled meanwhile).
            event = .succeeded(
                id: end.jobID, attempt: end.attempt, result: String(decoding: output, as: UTF8.self),
                runMicroseconds: end.runMicroseconds, at: now)
            _ = try? ledger.record(event)
            return
        case .failed(let outcome, let error, _):
            guard let job = ledger[end.jobID], job.state == .running, job.attempts == end.attempt else { return }
            let retryAt = job.attempts <= job.maxRetries ? backoff.retryAt(afterAttempts: end.attempt, now: now) : nil
            event = .attemptFailed(
                id: end.jobID, attempt: end.attempt, outcome: outcome, error: error,
                runMicroseconds: end.runMicroseconds, retryAt: retryAt, at: now)
        case .interrupted(let error):
            guard let job = ledger[end.jobID], job.state == .running, job.attempts == end.attempt else { return }
            event = .interrupted(id: end.jobID, attempt: job.attempts, error: error, at: now)
        case .canceled:
            return
        }
        _ = try? ledger.record(event)
        armWakeUp()
    }

    /// Cancels a queued or running job; a running job's worker is killed and replaced.
    func cancel(id: String) throws(InvalidTransition) -> Job {
        let job = try ledger.record(.canceled(id: id, at: clock.wallMilliseconds()))
        syncJournalSoon()
        perform(pool.cancel(jobID: id))
        return job
    }

    /// Arms the one timer for the earliest job waiting for its time (retry backoff); when it fires, due jobs
    /// become runnable and are dispatched.
    func armWakeUp() {
        guard let at = ledger.nextWakeUp else {
            loop.cancel(wakeUpTimer)
            wakeUpTimer = nil
            return
        }
        if let current = wakeUpAt, current == at, wakeUpTimer != nil { return }
        loop.cancel(wakeUpTimer)
        wakeUpAt = at
        let delay = max(0, at - clock.wallMilliseconds())
        wakeUpTimer = loop.schedule(after: delay) { [unowned self] in
            wakeUpTimer = nil
            wakeUpAt = nil
            ledger.promoteDue(now: clock.wallMilliseconds())
            dispatch()
            armWakeUp()
        }
    }
}

extension Backoff {
    /// The backoff configured by `backoff.*`.
    init(config: Config) {
        self.init(
            baseMilliseconds: Milliseconds(config.backoffBaseMs),
            maximumMilliseconds: Milliseconds(config.backoffMaxMs),
            jitter: config.backoffJitter)
    }
}
