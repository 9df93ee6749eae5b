/// Every job the supervisor knows, the FIFO of runnable ones, and retention of finished ones.
///
/// Pure bookkeeping, no I/O: the supervisor decides when to call it. Lifecycle rules live in `Job`.
struct JobStore {
    /// Finished jobs kept for lookup; the oldest are dropped past this.
    var maximumFinished: Int

    private(set) var jobs: [String: Job] = [:]
    /// Runnable jobs in order, with their sequence so an entry left by a canceled job cannot be taken
    /// for a later job that reuses its id. Entries whose job is no longer runnable are skipped when popped.
    private var runnable = Deque<(id: String, sequence: UInt64)>()
    /// Finished job ids, oldest first, for retention.
    private var finished = Deque<(id: String, sequence: UInt64)>()
    /// Every job id in acceptance order (with its sequence, to tell a resubmitted id from its old entry).
    private var acceptanceOrder: [(id: String, sequence: UInt64)] = []
    private var nextSequence: UInt64 = 1

    /// Jobs accepted and not yet started: runnable plus waiting for a retry.
    private(set) var queuedCount = 0
    /// Jobs whose attempt is in a worker now.
    private(set) var runningCount = 0

    /// Creates an empty store.
    init(maximumFinished: Int) {
        self.maximumFinished = maximumFinished
    }

    /// The job with this id.
    subscript(id: String) -> Job? { jobs[id] }

    /// Records a new queued job at the back of the FIFO.
    mutating func accept(id: String, payload: String, maxRetries: Int, now: Int64) -> Job {
        let job = Job(id: id, payload: payload, maxRetries: maxRetries, sequence: nextSequence, now: now)
        nextSequence += 1
        jobs[id] = job
        acceptanceOrder.append((id, job.sequence))
        runnable.append((id, job.sequence))
        queuedCount += 1
        return job
    }

    /// Puts back a job rebuilt from the journal (callers restore in acceptance order). A retry-waiting job
    /// is not runnable until `makeRunnable`.
    mutating func restore(_ job: Job) {
        jobs[job.id] = job
        acceptanceOrder.append((job.id, job.sequence))
        nextSequence = max(nextSequence, job.sequence + 1)
        switch job.state {
        case .queued:
            queuedCount += 1
            if job.nextAttemptAt == nil { runnable.append((job.id, job.sequence)) }
        case .running:
            runningCount += 1
        case .done, .failed, .canceled:
            finish(job.id)
        }
    }

    /// Every job, in acceptance order (what compaction writes).
    var jobsInAcceptanceOrder: [Job] {
        acceptanceOrder.compactMap { entry in jobs[entry.id].flatMap { $0.sequence == entry.sequence ? $0 : nil } }
    }

    /// Whether any job is waiting to run now.
    var hasRunnable: Bool { !runnable.isEmpty }

    /// Pops the oldest runnable job and starts its next attempt.
    mutating func startNext(now: Int64) -> Job? {
        while let (id, sequence) = runnable.popFirst() {
            // Through the entry's index: one lookup, and no copy of the job held while it changes.
            guard let index = jobs.index(forKey: id), jobs.values[index].sequence == sequence,
                jobs.values[index].state == .queued, jobs.values[index].nextAttemptAt == nil
            else { continue }
            try! jobs.values[index].start(now: now)  // checked just above: a queued job may always start
            queuedCount -= 1
            runningCount += 1
            return jobs.values[index]
        }
        return nil
    }

    /// Ends a running attempt successfully.
    mutating func succeed(id: String, result: String, now: Int64) throws(InvalidTransition) -> Job {
        let job = try update(id) { (job: inout Job) throws(InvalidTransition) in
            try job.succeed(result: result, now: now)
        }
        runningCount -= 1
        finish(id, sequence: job.sequence)
        return job
    }

    /// Ends a running attempt with an error: the job waits `retryDelay` for its next attempt, or fails.
    mutating func failAttempt(id: String, error: String, retryDelay: Milliseconds, now: Int64)
        throws(InvalidTransition) -> AttemptOutcome
    {
        var outcome = AttemptOutcome.failed
        _ = try update(id) { (job: inout Job) throws(InvalidTransition) in
            outcome = try job.failAttempt(error: error, retryDelay: retryDelay, now: now)
        }
        // Runnable only once its backoff elapses (`makeRunnable`).
        attemptEnded(id, outcome, runnableNow: false)
        return outcome
    }

    /// A running attempt cut short by the supervisor's shutdown: queued again at the back (or failed when it
    /// used its grace attempt, see `Job.interrupt`).
    mutating func interrupt(id: String, error: String, now: Int64) throws(InvalidTransition) -> AttemptOutcome {
        var outcome = AttemptOutcome.failed
        _ = try update(id) { (job: inout Job) throws(InvalidTransition) in
            outcome = try job.interrupt(error: error, now: now)
        }
        attemptEnded(id, outcome, runnableNow: true)
        return outcome
    }

    /// Bookkeeping after a running attempt ended without success: queued again, or finished.
    private mutating func attemptEnded(_ id: String, _ outcome: AttemptOutcome, runnableNow: Bool) {
        runningCount -= 1
        guard case .retry = outcome else { return finish(id) }
        queuedCount += 1
        if runnableNow { runnable.append((id, jobs[id]!.sequence)) }
    }

    /// A retry-waiting job's backoff elapsed: put it at the back of the FIFO. Ignored if it was canceled.
    mutating func makeRunnable(id: String) {
        guard let job = jobs[id], job.state == .queued, job.nextAttemptAt != nil else { return }
        jobs[id]!.becomeRunnable()
        runnable.append((id, job.sequence))
    }

    /// Cancels a queued or running job; returns the canceled job and the state it was in.
    mutating func cancel(id: String, now: Int64) throws(InvalidTransition) -> (job: Job, previous: JobState) {
        guard let previous = jobs[id]?.state else { throw InvalidTransition(from: .canceled, event: "cancel") }
        let job = try update(id) { (job: inout Job) throws(InvalidTransition) in try job.cancel(now: now) }
        if previous == .queued { queuedCount -= 1 } else { runningCount -= 1 }
        finish(id, sequence: job.sequence)
        return (job, previous)
    }

    /// Jobs newest first, optionally only in `state`, at most `limit`.
    func list(state: JobState?, limit: Int) -> [Job] {
        var result: [Job] = []
        for entry in acceptanceOrder.reversed() {
            guard let job = jobs[entry.id], job.sequence == entry.sequence else { continue }
            if let state, job.state != state { continue }
            result.append(job)
            if result.count == limit { break }
        }
        return result
    }

    /// Counts of jobs per state (finished ones as retained).
    var finishedCount: Int { finished.count }

    /// Changes the job in place and returns it. Through the entry's index: one lookup, where `jobs[id]!`
    /// costs one per access and a heap-allocated accessor frame per change.
    private mutating func update(_ id: String, _ change: (inout Job) throws(InvalidTransition) -> Void)
        throws(InvalidTransition) -> Job
    {
        guard let index = jobs.index(forKey: id) else {
            throw InvalidTransition(from: .canceled, event: "update of unknown job")
        }
        try change(&jobs.values[index])
        return jobs.values[index]
    }

    private mutating func finish(_ id: String) {
        finish(id, sequence: jobs[id]!.sequence)
    }

    private mutating func finish(_ id: String, sequence: UInt64) {
        finished.append((id, sequence))
        while finished.count > maximumFinished, let oldest = finished.popFirst() {
            if let index = jobs.index(forKey: oldest.id), jobs.values[index].sequence == oldest.sequence {
                jobs.remove(at: index)
            }
        }
        // Retention dropped entries from `jobs`; drop their acceptance entries once they dominate.
        if acceptanceOrder.count > 2 * jobs.count + 1024 {
            acceptanceOrder.removeAll { jobs[$0.id]?.sequence != $0.sequence }
        }
    }
}
