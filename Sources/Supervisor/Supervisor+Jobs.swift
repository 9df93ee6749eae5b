import Glibc
import IPC

/// Moving jobs through workers: dispatch, outcomes, retries, cancellation.
extension Supervisor {
    /// Why an enqueue was refused before it reached the store.
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
    func enqueue(id: String, payload: String, maxRetries: Int) throws(EnqueueRefusal) -> (job: Job, created: Bool) {
        if let existing = store[id] {
            guard existing.hasSameContent(payload: payload, maxRetries: maxRetries) else { throw .conflict(existing) }
            return (existing, false)
        }
        guard !draining else { throw .draining }
        guard store.queuedCount < config.queueSize else { throw .queueFull }
        let job = store.accept(id: id, payload: payload, maxRetries: maxRetries, now: clock.wallMilliseconds())
        journal.append(
            .accepted(id: id, payload: payload, maxRetries: maxRetries, sequence: job.sequence, at: job.createdAt))
        logger.debug("job_accepted", ["id": .string(id), "max_retries": .int(maxRetries)])
        metrics.jobAccepted()
        dispatch()
        syncJournalSoon()
        return (job, true)
    }

    /// Hands runnable jobs to idle workers, oldest job first. Called whenever a job or a worker becomes
    /// available, so a worker never waits for the loop's next iteration.
    func dispatch() {
        defer { updateUrgentPolling() }
        guard !draining, store.hasRunnable else { return }
        for slot in slots where slot.state == .idle && !slot.stopWhenIdle {
            guard let job = store.startNext(now: clock.wallMilliseconds()) else { return }
            journal.append(.started(id: job.id, attempt: job.attempts, at: job.updatedAt))
            start(job, on: slot)
        }
    }

    /// Worker results are read between HTTP events only while a worker is busy and jobs wait for one: then a
    /// freed worker gets its next job at once. With no job waiting the poll after every event won nothing.
    func updateUrgentPolling() {
        loop.expectsUrgentEvents = store.hasRunnable && slots.contains { $0.state == .busy }
    }

    private func start(_ job: Job, on slot: WorkerSlot) {
        let timeout = Milliseconds(config.jobTimeoutMs)
        // Captures the id and attempt, not the job: a captured Job would share the store's copy until the
        // timer goes, and the store's next change to the job would have to copy it.
        let (id, attempt) = (job.id, job.attempts)
        let deadline = loop.schedule(after: timeout) { [unowned self, unowned slot] in
            guard slot.assignment?.jobID == id, slot.assignment?.attempt == attempt else { return }
            logger.warn("job_timeout", ["id": .string(id), "attempt": .int(attempt), "pid": .int(slot.pid ?? 0)])
            kill(slot, reason: "timeout after \(timeout) ms", cause: .timeout)
        }
        slot.state = .busy
        slot.assignment = WorkerSlot.Assignment(
            jobID: job.id, attempt: job.attempts, startedAt: monotonicMicroseconds(), deadlineTimer: deadline)
        if job.attempts == 1 { metrics.queueWait.observe(Double(job.updatedAt - job.createdAt) / 1000) }
        logger.debug("job_started", ["id": .string(job.id), "attempt": .int(job.attempts), "slot": .int(slot.index)])
        send(
            .run(
                Message.Run(
                    jobID: job.id, attempt: UInt32(job.attempts), payload: Array(job.payload.utf8),
                    timeoutMilliseconds: UInt64(timeout), jobsWaiting: store.hasRunnable)), to: slot)
    }

    /// A `result` frame for the slot's current attempt.
    func attemptCompleted(_ slot: WorkerSlot, result: Message.Result) {
        guard let assignment = slot.assignment else { return }
        loop.cancel(assignment.deadlineTimer)
        slot.assignment = nil
        slot.jobsRun += 1
        metrics.runTime.observe(Double(monotonicMicroseconds() - assignment.startedAt) / 1_000_000)
        metrics.attemptEnded(result.ok ? .ok : .error)
        let output = String(decoding: result.output, as: UTF8.self)
        if result.ok {
            if let job = try? store.succeed(id: assignment.jobID, result: output, now: clock.wallMilliseconds()) {
                journal.append(.succeeded(id: job.id, result: output, at: job.updatedAt))
                metrics.jobFinished(.done)
                logger.info(
                    "job_done",
                    [
                        "id": .string(job.id), "attempt": .int(job.attempts),
                        "duration_ms": .double(Double(result.durationMicroseconds) / 1000),
                    ])
            }
        } else {
            attemptFailed(jobID: assignment.jobID, attempt: assignment.attempt, error: output)
        }
        workerFinishedJob(slot)
    }

    /// The worker is free again: take the next job, or stop if it was asked to.
    private func workerFinishedJob(_ slot: WorkerSlot) {
        slot.childJobs += 1
        if !slot.retireOnExit, let reason = recycleReason(slot) {
            recycle(slot, reason: reason)
        }
        if slot.stopWhenIdle || slot.retireOnExit {
            sendStop(slot)
        } else {
            slot.state = .idle
            dispatch()
        }
    }

    /// Charges a failed attempt: the job is retried after a backoff or fails for good.
    /// Ignored when the job is no longer running that attempt (canceled meanwhile).
    func attemptFailed(jobID: String, attempt: Int, error: String) {
        guard let job = store[jobID], job.state == .running, job.attempts == attempt else { return }
        let delay = backoff.delay(afterAttempts: attempt)
        let now = clock.wallMilliseconds()
        guard let outcome = try? store.failAttempt(id: jobID, error: error, retryDelay: delay, now: now) else { return }
        switch outcome {
        case .retry(let delay):
            journal.append(.attemptFailed(id: jobID, attempt: attempt, error: error, retryAt: now + delay, at: now))
            metrics.jobRetried()
            logger.info(
                "job_retry",
                ["id": .string(jobID), "attempt": .int(attempt), "error": .string(error), "delay_ms": .int(delay)])
            scheduleRetry(jobID: jobID, delay: delay)
        case .failed:
            journal.append(.attemptFailed(id: jobID, attempt: attempt, error: error, retryAt: nil, at: now))
            metrics.jobFinished(.failed)
            logger.info("job_failed", ["id": .string(jobID), "attempt": .int(attempt), "error": .string(error)])
        }
    }

    /// An attempt killed by the shutdown deadline: the job goes back to the queue (kept in the journal for the
    /// next start) with the attempt counted, like an attempt interrupted by a crash of the supervisor.
    func attemptInterrupted(jobID: String, attempt: Int, error: String) {
        guard let job = store[jobID], job.state == .running, job.attempts == attempt else { return }
        let now = clock.wallMilliseconds()
        guard let outcome = try? store.interrupt(id: jobID, error: error, now: now) else { return }
        journal.append(.interrupted(id: jobID, attempt: attempt, error: error, at: now))
        if outcome == .failed { metrics.jobFinished(.failed) }
        let state = outcome == .failed ? "failed" : "queued"
        logger.warn(
            "job_interrupted",
            ["id": .string(jobID), "attempt": .int(attempt), "error": .string(error), "state": .string(state)])
    }

    /// Makes a retry-waiting job runnable after its backoff.
    func scheduleRetry(jobID: String, delay: Milliseconds) {
        retryTimers[jobID] = loop.schedule(after: delay) { [unowned self] in
            retryTimers[jobID] = nil
            store.makeRunnable(id: jobID)
            dispatch()
        }
    }

    /// Cancels a queued or running job; a running job's worker is killed and replaced.
    func cancel(id: String) throws(InvalidTransition) -> Job {
        let now = clock.wallMilliseconds()
        let (job, previous) = try store.cancel(id: id, now: now)
        journal.append(.canceled(id: id, at: now))
        syncJournalSoon()
        metrics.jobFinished(.canceled)
        loop.cancel(retryTimers.removeValue(forKey: id))
        if previous == .running, let slot = slots.first(where: { $0.assignment?.jobID == id }) {
            kill(slot, reason: "job canceled", cause: .canceled)
        }
        logger.info("job_canceled", ["id": .string(id), "was": .string(previous.rawValue)])
        return job
    }
}
