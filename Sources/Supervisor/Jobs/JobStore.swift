/// Every job the supervisor knows, the runnable ones (a FIFO per priority), the jobs waiting for a time
/// (scheduled, or a retry's backoff), whether dispatch is paused, and retention of finished ones.
///
/// Pure bookkeeping, no I/O: `apply` is the one way a job changes, used live (through `JobLedger`) and when
/// the journal is replayed. Lifecycle rules live in `Job`.
struct JobStore {
    /// Finished jobs kept for lookup; the oldest are dropped past this.
    var maximumFinished: Int
    /// Bytes of results and errors kept for finished jobs; the oldest finished jobs are dropped past this.
    var maximumResultBytes: Int

    private(set) var jobs: [String: Job] = [:]
    /// Runnable jobs in order, one FIFO per priority (index 0-9), with their sequence so an entry left by a
    /// canceled job cannot be taken for a later job that reuses its id. Entries whose job is no longer runnable
    /// are skipped when popped.
    private var runnable = [Deque<(id: String, sequence: UInt64)>](repeating: Deque(), count: JobSpec.priorities.count)
    /// Dispatch is paused (`POST /pause`): jobs are accepted and kept, none is started.
    private(set) var paused = false
    /// Queued jobs that become runnable at a wall-clock time, earliest first (entries of jobs that changed
    /// since are skipped when due).
    private var waiting = MinHeap<WaitingEntry>()
    /// Finished job ids, oldest first, for retention, with the result bytes each one holds. Entries of jobs that
    /// were replaced since (an id accepted again) are skipped when popped.
    private var finished = Deque<(id: String, sequence: UInt64, bytes: Int)>()
    /// Finished jobs held.
    private(set) var finishedCount = 0
    /// Bytes of results and errors of the finished jobs held.
    private(set) var finishedResultBytes = 0
    /// Finished jobs dropped by retention, by count and by bytes.
    private(set) var evictedByCount = 0
    private(set) var evictedByBytes = 0
    /// Every job id in acceptance order (with its sequence, to tell a resubmitted id from its old entry).
    private var acceptanceOrder: [(id: String, sequence: UInt64)] = []
    private var nextSequence: UInt64 = 1

    /// The state the job had before the last `apply` changed it (nil for a new job).
    private(set) var previousState: JobState?

    /// Jobs accepted and not yet started: runnable plus waiting for a retry.
    private(set) var queuedCount = 0
    /// Jobs whose attempt is in a worker now.
    private(set) var runningCount = 0

    /// Creates an empty store.
    init(maximumFinished: Int, maximumResultBytes: Int = .max) {
        self.maximumFinished = maximumFinished
        self.maximumResultBytes = maximumResultBytes
    }

    /// The job with this id.
    subscript(id: String) -> Job? { jobs[id] }

    /// The sequence the next accepted job gets.
    mutating func takeSequence() -> UInt64 {
        defer { nextSequence += 1 }
        return nextSequence
    }

    /// Applies one event and returns the job as it is after it; throws when the event does not apply (unknown
    /// id, or a transition the lifecycle refuses), leaving the store unchanged.
    /// Returns nil for an event about the queue as a whole (pause).
    @discardableResult
    mutating func apply(_ event: JobEvent) throws(InvalidTransition) -> Job? {
        switch event {
        case .accepted(let spec, let sequence, let at):
            let job = Job(spec: spec, sequence: sequence, now: at)
            insert(job)
            return job
        case .snapshot(let job):
            insert(job)
            return job
        case .started(let id, _, let workerPID, let at):
            return try update(id) { (job: inout Job) throws(InvalidTransition) in
                try job.start(now: at, workerPID: workerPID)
            }
        case .succeeded(let id, let attempt, let result, let truncated, let detail, _, let at):
            return try update(id) { (job: inout Job) throws(InvalidTransition) in
                try job.expect(attempt: attempt, for: "succeed")
                try job.succeed(result: result, truncated: truncated, detail: detail, now: at)
            }
        case .attemptFailed(let id, let attempt, let outcome, let error, let detail, _, let retryAt, let at):
            return try update(id) { (job: inout Job) throws(InvalidTransition) in
                try job.expect(attempt: attempt, for: "fail")
                try job.failAttempt(outcome: outcome, error: error, detail: detail, retryAt: retryAt, now: at)
            }
        case .interrupted(let id, let attempt, let error, let at):
            return try update(id) { (job: inout Job) throws(InvalidTransition) in
                try job.expect(attempt: attempt, for: "interrupt")
                try job.interrupt(error: error, now: at)
            }
        case .canceled(let id, let at):
            return try update(id) { (job: inout Job) throws(InvalidTransition) in try job.cancel(now: at) }
        case .retried(let id, let at):
            return try update(id) { (job: inout Job) throws(InvalidTransition) in try job.retry(now: at) }
        case .callback(let id, let status, _):
            return try update(id) { (job: inout Job) throws(InvalidTransition) in try job.setCallback(status) }
        case .dispatchPaused(let paused, _):
            self.paused = paused
            previousState = nil
            return nil
        }
    }

    /// Every job, in acceptance order (what compaction writes).
    var jobsInAcceptanceOrder: [Job] {
        acceptanceOrder.compactMap { entry in jobs[entry.id].flatMap { $0.sequence == entry.sequence ? $0 : nil } }
    }

    /// Whether any job is waiting to run now (entries of jobs canceled since may make this true; taking the
    /// next runnable job skips them).
    var hasRunnable: Bool {
        for queue in runnable where !queue.isEmpty { return true }
        return false
    }

    /// The runnable job of the highest priority that became runnable first, with the number of its next attempt,
    /// taken off its FIFO; `apply(.started)` then starts it.
    mutating func nextRunnable() -> (id: String, attempt: Int)? {
        var priority = runnable.count - 1
        while priority >= 0 {
            while let (id, sequence) = runnable[priority].popFirst() {
                guard let job = jobs[id], job.sequence == sequence, job.state == .queued, job.nextAttemptAt == nil
                else { continue }
                return (id, job.attempts + 1)
            }
            priority -= 1
        }
        return nil
    }

    /// The earliest time a waiting job becomes runnable (wall clock, epoch milliseconds).
    var nextWakeUp: Int64? {
        mutating get {
            while let top = waiting.first, !isStillWaiting(top) { _ = waiting.popFirst() }
            return waiting.first?.at
        }
    }

    /// Moves every waiting job whose time has come (at or before `now`) to the back of the FIFO; returns how
    /// many.
    @discardableResult
    mutating func promoteDue(now: Int64) -> Int {
        var count = 0
        while let top = waiting.first, top.at <= now || !isStillWaiting(top) {
            _ = waiting.popFirst()
            guard isStillWaiting(top), let index = jobs.index(forKey: top.id) else { continue }
            jobs.values[index].becomeRunnable()
            runnable[jobs.values[index].priority].append((top.id, top.sequence))
            count += 1
        }
        return count
    }

    /// One page of jobs, newest first: those older than `cursor` (a sequence; nil starts with the newest) that
    /// match `filter`, at most `limit`, and the cursor of the next page (nil when there is none). At most
    /// `scanLimit` entries are looked at per page, so a filter that matches rarely cannot make one request walk
    /// a million jobs: the page then holds fewer than `limit` and its cursor continues the walk.
    func list(
        _ filter: JobFilter = JobFilter(), before cursor: UInt64? = nil, limit: Int, scanLimit: Int = 100_000
    ) -> (jobs: [Job], nextCursor: UInt64?) {
        // acceptanceOrder is sorted by sequence: find where the page starts.
        var end = acceptanceOrder.count
        if let cursor {
            var low = 0
            var high = acceptanceOrder.count
            while low < high {
                let middle = (low + high) / 2
                if acceptanceOrder[middle].sequence < cursor { low = middle + 1 } else { high = middle }
            }
            end = low
        }
        var result: [Job] = []
        var index = end
        var scanned = 0
        while index > 0 {
            if result.count == limit { return (result, result.last.map(\.sequence)) }
            if scanned == scanLimit { return (result, acceptanceOrder[index].sequence) }
            index -= 1
            scanned += 1
            let entry = acceptanceOrder[index]
            guard let job = jobs[entry.id], job.sequence == entry.sequence, filter.matches(job) else { continue }
            result.append(job)
        }
        return (result, nil)
    }

    /// Jobs newest first, optionally only in `state`, at most `limit`.
    func list(state: JobState?, limit: Int) -> [Job] {
        list(JobFilter(state: state), limit: limit, scanLimit: .max).jobs
    }

    // MARK: Bookkeeping

    /// Puts a job in (accepted, or rebuilt by replay), replacing an earlier job with its id.
    private mutating func insert(_ job: Job) {
        let old = jobs[job.id]
        previousState = old?.state
        if let old { forget(old) }
        jobs[job.id] = job
        // A snapshot of the same job (same sequence) keeps its place in the acceptance order.
        if old?.sequence != job.sequence { acceptanceOrder.append((job.id, job.sequence)) }
        // A journal can hold any sequence, the largest one too (a damaged or foreign file): none comes after it.
        if job.sequence < .max { nextSequence = max(nextSequence, job.sequence + 1) }
        enter(job)
    }

    /// Counts a job in its state's books: runnable, waiting, running or finished.
    private mutating func enter(_ job: Job) {
        switch job.state {
        case .queued:
            queuedCount += 1
            if let at = job.nextAttemptAt {
                waiting.insert(WaitingEntry(at: at, sequence: job.sequence, id: job.id))
            } else {
                runnable[job.priority].append((job.id, job.sequence))
            }
        case .running:
            runningCount += 1
        case .done, .failed, .canceled:
            finish(job.id, sequence: job.sequence)
        }
    }

    /// Takes a job out of the counts of its state (its queue and retention entries are skipped lazily).
    private mutating func leave(_ state: JobState, retainedBytes: Int) {
        switch state {
        case .queued: queuedCount -= 1
        case .running: runningCount -= 1
        case .done, .failed, .canceled:
            finishedCount -= 1
            finishedResultBytes -= retainedBytes
        }
    }

    private mutating func forget(_ job: Job) {
        leave(job.state, retainedBytes: job.retainedBytes)
        jobs[job.id] = nil
    }

    /// Changes the job in place and re-files it under its new state. Through the entry's index: one lookup,
    /// where `jobs[id]!` costs one per access and a heap-allocated accessor frame per change.
    private mutating func update(_ id: String, _ change: (inout Job) throws(InvalidTransition) -> Void)
        throws(InvalidTransition) -> Job
    {
        guard let index = jobs.index(forKey: id) else { throw .unknownJob(id) }
        // Only what `leave` needs is read before the change: a copy of the job held across it would make the
        // change copy the job's storage.
        let before = jobs.values[index].state
        previousState = before
        let beforeBytes = before.isFinished ? jobs.values[index].retainedBytes : 0
        try change(&jobs.values[index])
        let job = jobs.values[index]
        if before != job.state {
            leave(before, retainedBytes: beforeBytes)
            enter(job)
        }
        return job
    }

    private func isStillWaiting(_ entry: WaitingEntry) -> Bool {
        guard let job = jobs[entry.id] else { return false }
        return job.sequence == entry.sequence && job.state == .queued && job.nextAttemptAt == entry.at
    }

    private mutating func finish(_ id: String, sequence: UInt64) {
        let bytes = jobs[id]?.retainedBytes ?? 0
        finished.append((id, sequence, bytes))
        finishedCount += 1
        finishedResultBytes += bytes
        enforceRetention()
    }

    /// Drops the oldest finished jobs while more are held than `maximumFinished`, or their results and errors
    /// take more than `maximumResultBytes`.
    mutating func enforceRetention() {
        while finishedCount > maximumFinished || finishedResultBytes > maximumResultBytes,
            let oldest = finished.popFirst()
        {
            guard let index = jobs.index(forKey: oldest.id), jobs.values[index].sequence == oldest.sequence,
                jobs.values[index].state.isFinished
            else { continue }  // replaced since: already forgotten
            if finishedCount > maximumFinished { evictedByCount += 1 } else { evictedByBytes += 1 }
            jobs.remove(at: index)
            finishedCount -= 1
            finishedResultBytes -= oldest.bytes
        }
        // Retention dropped entries from `jobs`; drop their acceptance entries once they dominate.
        if acceptanceOrder.count > 2 * jobs.count + 1024 {
            acceptanceOrder.removeAll { jobs[$0.id]?.sequence != $0.sequence }
        }
    }
}

/// What `GET /jobs` may select on.
struct JobFilter: Equatable {
    /// Only jobs in this state.
    var state: JobState?
    /// Only jobs of this priority.
    var priority: Int?
    /// Only jobs accepted at or after this time (epoch milliseconds).
    var createdAfter: Int64?
    /// Only jobs accepted before this time (epoch milliseconds).
    var createdBefore: Int64?

    /// Whether `job` is selected.
    func matches(_ job: Job) -> Bool {
        if let state, job.state != state { return false }
        if let priority, job.priority != priority { return false }
        if let createdAfter, job.createdAt < createdAfter { return false }
        if let createdBefore, job.createdAt >= createdBefore { return false }
        return true
    }
}

/// A queued job waiting for its time, ordered by time then acceptance.
private struct WaitingEntry: Comparable {
    var at: Int64
    var sequence: UInt64
    var id: String

    static func < (left: WaitingEntry, right: WaitingEntry) -> Bool {
        (left.at, left.sequence) < (right.at, right.sequence)
    }
}

extension Job {
    /// Bytes of its result and error that a finished job keeps in memory (and in the journal).
    var retainedBytes: Int {
        var bytes = (result?.count ?? 0) + (lastError?.utf8.count ?? 0)
        for entry in history { bytes += entry.stderr.count + (entry.error?.utf8.count ?? 0) }
        return bytes
    }
}
