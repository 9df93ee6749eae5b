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

    /// Accepts a job, or returns the existing identical one (`created` false). A job with a `run_at` in the
    /// future waits in the timer heap; scheduled jobs count against `queue_size` like every queued job.
    func enqueue(_ spec: JobSpec) throws(EnqueueRefusal) -> (job: Job, created: Bool) {
        let result = try accept(spec)
        if result.created {
            if result.job.nextAttemptAt != nil { armWakeUp() }
            dispatch()
            syncJournalSoon()
        }
        return result
    }

    /// Accepts each job of a batch on its own, in order, then dispatches and starts one sync for all of them.
    func enqueueBatch(_ specs: [JobSpec]) -> [Result<(job: Job, created: Bool), EnqueueRefusal>] {
        var results: [Result<(job: Job, created: Bool), EnqueueRefusal>] = []
        results.reserveCapacity(specs.count)
        var accepted = false
        var scheduled = false
        for spec in specs {
            let result = Result { () throws(EnqueueRefusal) in try accept(spec) }
            if case .success(let (job, created)) = result, created {
                accepted = true
                if job.nextAttemptAt != nil { scheduled = true }
            }
            results.append(result)
        }
        if scheduled { armWakeUp() }
        if accepted {
            dispatch()
            syncJournalSoon()
        }
        return results
    }

    /// Records a new job, or finds the identical one.
    private func accept(_ spec: JobSpec) throws(EnqueueRefusal) -> (job: Job, created: Bool) {
        if let existing = ledger[spec.id] {
            guard existing.hasSameContent(as: spec) else { throw .conflict(existing) }
            return (existing, false)
        }
        guard !pool.draining else { throw .draining }
        guard ledger.store.queuedCount < config.queueSize else { throw .queueFull }
        let job = try! ledger.recordJob(  // a new id is always accepted
            .accepted(spec, sequence: ledger.takeSequence(), at: clock.wallMilliseconds()))
        return (job, true)
    }

    /// Hands runnable jobs to idle workers, highest priority first, FIFO within a priority. Called whenever a job
    /// or a worker becomes available, so a worker never waits for the loop's next iteration. Nothing starts while
    /// dispatch is paused.
    func dispatch() {
        defer { updateUrgentPolling() }
        if let postgres { return postgres.dispatch() }
        guard !pool.draining, !ledger.paused, ledger.store.hasRunnable else { return }
        var next = pool.nextIdleSlot()
        while let slot = next {
            guard let (id, attempt) = ledger.nextRunnable() else { return }
            let pid = pool.slots[slot].state.child?.pid ?? 0
            let event = JobEvent.started(id: id, attempt: attempt, workerPID: pid, at: clock.wallMilliseconds())
            guard let job = try? ledger.recordJob(event) else { continue }
            perform(
                pool.assign(
                    slot: slot, jobID: id, attempt: attempt, payload: job.payload.bytes,
                    timeoutMilliseconds: job.timeoutMilliseconds ?? config.jobTimeoutMs,
                    jobsWaiting: ledger.store.hasRunnable, maximumOutputBytes: config.maxResultBytes))
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
        case .succeeded(let output, let truncated, let detail):
            // The store refuses it unless the job is running this attempt (not canceled meanwhile).
            event = .succeeded(
                id: end.jobID, attempt: end.attempt, result: ByteString(output), truncated: truncated, detail: detail,
                runMicroseconds: end.runMicroseconds, at: now)
            _ = try? ledger.record(event)
            return
        case .failed(let outcome, let error, let detail):
            guard let job = ledger[end.jobID], job.state == .running, job.attempts == end.attempt else { return }
            // The backoff grows with the attempts since the last manual retry, as the budget does.
            let retryAt =
                job.attemptsInBudget <= job.maxRetries
                ? backoff.retryAt(afterAttempts: job.attemptsInBudget, now: now) : nil
            event = .attemptFailed(
                id: end.jobID, attempt: end.attempt, outcome: outcome, error: error, detail: detail,
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
        let job = try ledger.recordJob(.canceled(id: id, at: clock.wallMilliseconds()))
        syncJournalSoon()
        perform(pool.cancel(jobID: id))
        return job
    }

    /// Queues a failed or canceled job again with a fresh budget of attempts.
    func retry(id: String) throws(InvalidTransition) -> Job {
        let job = try ledger.recordJob(.retried(id: id, at: clock.wallMilliseconds()))
        syncJournalSoon()
        dispatch()
        return job
    }

    /// Retries (from `failed` or `canceled`) or cancels (from `queued` or `running`) up to `limit` jobs in
    /// `state`, oldest first; returns how many.
    func changeAll(_ change: BulkChange, state: JobState, limit: Int) -> Int {
        var count = 0
        for job in ledger.store.jobsInAcceptanceOrder where job.state == state {
            guard count < limit else { break }
            let done: Bool
            switch change {
            case .retry: done = (try? ledger.recordJob(.retried(id: job.id, at: clock.wallMilliseconds()))) != nil
            case .cancel:
                done = (try? ledger.recordJob(.canceled(id: job.id, at: clock.wallMilliseconds()))) != nil
                if done { perform(pool.cancel(jobID: job.id)) }
            }
            if done { count += 1 }
        }
        if count > 0 {
            syncJournalSoon()
            dispatch()
        }
        return count
    }

    /// What `changeAll` does to each job.
    enum BulkChange {
        case retry, cancel
    }

    /// Pauses (`true`) or resumes dispatch; journaled, so a restart keeps it. Running jobs finish either way.
    func setPaused(_ paused: Bool) {
        guard ledger.paused != paused else { return }
        _ = try? ledger.record(.dispatchPaused(paused, at: clock.wallMilliseconds()))
        syncJournalSoon()
        if !paused { dispatch() }
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
