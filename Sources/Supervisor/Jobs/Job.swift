/// Where a job is in its lifecycle (docs/architecture.md, "Job lifecycle").
enum JobState: String, CaseIterable {
    case queued, running, done, failed, canceled

    /// Whether the job will not run again unless retried by hand.
    var isFinished: Bool { self == .done || self == .failed || self == .canceled }
}

/// One job and its history, as the API shows it.
///
/// A value type whose fields live in one heap object, copied on write: the job table then holds a
/// reference per job rather than the whole record in every hash bucket (a `[String: Job]` of 100,000 jobs
/// has 262,144 buckets), and a snapshot of the table (journal compaction) still sees no later change.
///
/// Sendable like Array: the storage is only ever mutated while uniquely referenced, so a storage another
/// thread can see is never written.
struct Job: Equatable, @unchecked Sendable {
    fileprivate struct Fields: Equatable {
        let id: String
        let payload: ByteString
        let maxRetries: Int
        let priority: Int
        let sequence: UInt64
        let createdAt: Int64
        var state: JobState
        var attempts: Int
        var result: ByteString?
        var updatedAt: Int64
        var history: History
        /// What most jobs never have, out of line: nil while all of it has its default.
        var rare: Indirect<Rare>?
    }

    /// The fields most jobs leave at their defaults (100,000 finished jobs are held in memory; these would
    /// cost ~130 bytes each inline).
    fileprivate struct Rare: Equatable {
        var timeoutMilliseconds: Int?
        var callbackURL: String?
        var attemptsBeforeRetry = 0
        var lastError: String?
        var resultTruncated = false
        var nextAttemptAt: Int64?
        var callback: CallbackStatus?
    }

    /// A value on the heap, immutable there: changing it makes a new box, so it copies like any value.
    fileprivate enum Indirect<Value: Equatable>: Equatable {
        indirect case value(Value)

        var value: Value {
            switch self { case .value(let value): value }
        }
    }

    /// A job's attempts: most jobs have one, kept inline rather than in an array of its own.
    fileprivate enum History: Equatable {
        case none
        case one(AttemptRecord)
        case many([AttemptRecord])

        init(_ entries: [AttemptRecord]) {
            switch entries.count {
            case 0: self = .none
            case 1: self = .one(entries[0])
            default: self = .many(entries)
            }
        }

        var entries: [AttemptRecord] {
            switch self {
            case .none: []
            case .one(let entry): [entry]
            case .many(let entries): entries
            }
        }
    }

    private final class Storage {
        var fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var storage: Storage

    /// Client-chosen id, 1-128 bytes.
    var id: String { storage.fields.id }
    /// The payload handed to the handler.
    var payload: ByteString { storage.fields.payload }
    /// At most `maxRetries + 1` attempts (counted from the last manual retry).
    var maxRetries: Int { storage.fields.maxRetries }
    /// 0-9; a higher priority runs first.
    var priority: Int { storage.fields.priority }
    /// The job's own timeout, overriding `job_timeout_ms`; nil uses the global one.
    var timeoutMilliseconds: Int? { rare.timeoutMilliseconds }
    /// Where the record is POSTed when the job finishes.
    var callbackURL: String? { rare.callbackURL }
    /// Acceptance order, for FIFO and "newest first" listings.
    var sequence: UInt64 { storage.fields.sequence }
    /// Wall-clock acceptance time, epoch milliseconds.
    var createdAt: Int64 { storage.fields.createdAt }

    /// Current state.
    private(set) var state: JobState {
        get { storage.fields.state }
        set { uniqueStorage().fields.state = newValue }
    }
    /// Attempts started so far, across manual retries.
    private(set) var attempts: Int {
        get { storage.fields.attempts }
        set { uniqueStorage().fields.attempts = newValue }
    }
    /// `attempts` when the job was last retried by hand: the budget of `maxRetries + 1` counts from there.
    private(set) var attemptsBeforeRetry: Int {
        get { rare.attemptsBeforeRetry }
        set { rare.attemptsBeforeRetry = newValue }
    }
    /// Why the last attempt failed (or "canceled").
    private(set) var lastError: String? {
        get { rare.lastError }
        set { rare.lastError = newValue }
    }
    /// The handler's output on success.
    private(set) var result: ByteString? {
        get { storage.fields.result }
        set { uniqueStorage().fields.result = newValue }
    }
    /// The output was cut at `max_result_bytes`.
    private(set) var resultTruncated: Bool {
        get { rare.resultTruncated }
        set { rare.resultTruncated = newValue }
    }
    /// Wall-clock time of the last change, epoch milliseconds.
    private(set) var updatedAt: Int64 {
        get { storage.fields.updatedAt }
        set { uniqueStorage().fields.updatedAt = newValue }
    }
    /// When a waiting job becomes runnable (scheduled, or a retry's backoff; wall clock, epoch milliseconds).
    private(set) var nextAttemptAt: Int64? {
        get { rare.nextAttemptAt }
        set { rare.nextAttemptAt = newValue }
    }
    /// The last `AttemptRecord.maximumKept` attempts, oldest first.
    private(set) var history: [AttemptRecord] {
        get { storage.fields.history.entries }
        set { uniqueStorage().fields.history = History(newValue) }
    }
    /// The callback's delivery, once the job finished with a `callbackURL`.
    private(set) var callback: CallbackStatus? {
        get { rare.callback }
        set { rare.callback = newValue }
    }
    /// The rarely set fields; setting them back to their defaults frees their box.
    private var rare: Rare {
        get { storage.fields.rare?.value ?? Rare() }
        set {
            guard newValue != rare else { return }
            uniqueStorage().fields.rare = Self.boxed(newValue)
        }
    }

    /// A freshly accepted job: queued, runnable now or at its run time (`run_at`, or `delay_ms` after `now`).
    init(spec: JobSpec, sequence: UInt64, now: Int64) {
        storage = Storage(
            Fields(
                id: spec.id, payload: spec.payload, maxRetries: spec.maxRetries, priority: spec.priority,
                sequence: sequence, createdAt: now, state: .queued, attempts: 0, result: nil, updatedAt: now,
                history: .none,
                rare: Self.boxed(
                    Rare(
                        timeoutMilliseconds: spec.timeoutMilliseconds, callbackURL: spec.callbackURL,
                        nextAttemptAt: spec.runAt(acceptedAt: now).flatMap { $0 > now ? $0 : nil }))))
    }

    /// A freshly accepted job with only the basic fields (tests, and journals of the first format).
    init(id: String, payload: ByteString, maxRetries: Int, sequence: UInt64, now: Int64) {
        self.init(spec: JobSpec(id: id, payload: payload, maxRetries: maxRetries), sequence: sequence, now: now)
    }

    /// A job exactly as the journal recorded it.
    init(restoring snapshot: Snapshot) {
        storage = Storage(
            Fields(
                id: snapshot.spec.id, payload: snapshot.spec.payload, maxRetries: snapshot.spec.maxRetries,
                priority: snapshot.spec.priority, sequence: snapshot.sequence, createdAt: snapshot.createdAt,
                state: snapshot.state, attempts: snapshot.attempts, result: snapshot.result,
                updatedAt: snapshot.updatedAt, history: History(snapshot.history),
                rare: Self.boxed(
                    Rare(
                        timeoutMilliseconds: snapshot.spec.timeoutMilliseconds, callbackURL: snapshot.spec.callbackURL,
                        attemptsBeforeRetry: snapshot.attemptsBeforeRetry, lastError: snapshot.lastError,
                        resultTruncated: snapshot.resultTruncated, nextAttemptAt: snapshot.nextAttemptAt,
                        callback: snapshot.callback))))
    }

    /// `rare` boxed, or nil when it is all defaults.
    private static func boxed(_ rare: Rare) -> Indirect<Rare>? {
        rare == Rare() ? nil : .value(rare)
    }

    /// Every field of a job, for the journal's snapshot records.
    struct Snapshot: Equatable {
        var spec: JobSpec
        var sequence: UInt64
        var createdAt: Int64
        var state: JobState
        var attempts: Int
        var attemptsBeforeRetry = 0
        var lastError: String?
        var result: ByteString?
        var resultTruncated = false
        var updatedAt: Int64
        var nextAttemptAt: Int64?
        var history: [AttemptRecord] = []
        var callback: CallbackStatus?
    }

    /// This job's fields, for a snapshot record.
    var snapshot: Snapshot {
        let fields = storage.fields
        let rare = rare
        return Snapshot(
            spec: spec, sequence: fields.sequence, createdAt: fields.createdAt, state: fields.state,
            attempts: fields.attempts, attemptsBeforeRetry: rare.attemptsBeforeRetry, lastError: rare.lastError,
            result: fields.result, resultTruncated: rare.resultTruncated, updatedAt: fields.updatedAt,
            nextAttemptAt: rare.nextAttemptAt, history: fields.history.entries, callback: rare.callback)
    }

    /// What was submitted (the run time is not kept apart from `nextAttemptAt`).
    var spec: JobSpec {
        let fields = storage.fields
        return JobSpec(
            id: fields.id, payload: fields.payload, maxRetries: fields.maxRetries, priority: fields.priority,
            timeoutMilliseconds: timeoutMilliseconds, callbackURL: callbackURL)
    }

    static func == (left: Job, right: Job) -> Bool {
        left.storage === right.storage || left.storage.fields == right.storage.fields
    }

    /// The storage, copied first if another value shares it.
    private mutating func uniqueStorage() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = Storage(storage.fields) }
        return storage
    }

    /// Whether a resubmission is the same job (idempotent enqueue): same payload, retries, priority, timeout and
    /// callback. When it runs is not compared: a relative `delay_ms` resubmitted later names another time.
    func hasSameContent(as spec: JobSpec) -> Bool {
        let fields = storage.fields
        return fields.payload == spec.payload && fields.maxRetries == spec.maxRetries
            && fields.priority == spec.priority && timeoutMilliseconds == spec.timeoutMilliseconds
            && callbackURL == spec.callbackURL
    }

    /// Attempts counted against `maxRetries` (those since the last manual retry).
    var attemptsInBudget: Int { attempts - attemptsBeforeRetry }
}

/// A transition the lifecycle does not allow from the job's current state, or an event for a job the store does
/// not hold.
enum InvalidTransition: Error, Equatable, CustomStringConvertible {
    /// The job is in `from`, where `event` does not apply.
    case notAllowed(from: JobState, event: String)
    /// No job has this id.
    case unknownJob(String)

    /// One line for logs.
    var description: String {
        switch self {
        case .notAllowed(let from, let event): return "\(event) does not apply to a job in state \(from.rawValue)"
        case .unknownJob(let id): return "no job with id \(id)"
        }
    }
}

/// The lifecycle's transitions (docs/architecture.md, "Job lifecycle"); `JobStore.apply` calls them.
extension Job {
    /// queued -> running: an attempt starts (in the worker with `workerPID`).
    mutating func start(now: Int64, workerPID: Int32 = 0) throws(InvalidTransition) {
        guard state == .queued else { throw .notAllowed(from: state, event: "start") }
        state = .running
        attempts += 1
        nextAttemptAt = nil
        updatedAt = now
        let attempt = attempts
        updateHistory { entries in
            entries.append(
                AttemptRecord(
                    attempt: attempt, startedAt: now, finishedAt: nil, workerPID: workerPID, outcome: nil, error: nil,
                    stderr: []))
        }
    }

    /// running -> done.
    mutating func succeed(
        result: ByteString, truncated: Bool = false, detail: [UInt8] = [], now: Int64
    ) throws(InvalidTransition) {
        guard state == .running else { throw .notAllowed(from: state, event: "succeed") }
        state = .done
        self.result = result
        resultTruncated = truncated
        updatedAt = now
        endAttempt(.ok, error: nil, detail: detail, now: now)
    }

    /// running -> queued, runnable at `retryAt`, or running -> failed when no attempts are left (or no retry
    /// time is given: the supervisor gives none once the budget is spent).
    mutating func failAttempt(
        outcome: AttemptOutcome = .error, error: String, detail: [UInt8] = [], retryAt: Int64?, now: Int64
    ) throws(InvalidTransition) {
        guard state == .running else { throw .notAllowed(from: state, event: "fail") }
        lastError = error
        updatedAt = now
        endAttempt(outcome, error: error, detail: detail, now: now)
        if let retryAt, attemptsInBudget <= maxRetries {
            state = .queued
            nextAttemptAt = retryAt > now ? retryAt : nil
        } else {
            state = .failed
        }
    }

    /// running -> queued/failed for an attempt cut short by the supervisor itself (its shutdown deadline, or a
    /// crash found on replay).
    ///
    /// The attempt stays counted, but such an attempt gets one grace attempt beyond `maxRetries`: a job
    /// that was merely running during a crash still completes, while one that kills the supervisor every
    /// time fails after `maxRetries + 2` attempts instead of looping forever.
    mutating func interrupt(error: String, now: Int64) throws(InvalidTransition) {
        guard state == .running else { throw .notAllowed(from: state, event: "interrupt") }
        lastError = error
        updatedAt = now
        endAttempt(.interrupted, error: error, detail: [], now: now)
        if attemptsInBudget <= maxRetries + 1 {
            state = .queued
            nextAttemptAt = nil
        } else {
            state = .failed
        }
    }

    /// queued/running -> canceled; finished jobs refuse.
    mutating func cancel(now: Int64) throws(InvalidTransition) {
        guard !state.isFinished else { throw .notAllowed(from: state, event: "cancel") }
        if state == .running { endAttempt(.canceled, error: "canceled", detail: [], now: now) }
        state = .canceled
        lastError = "canceled"
        nextAttemptAt = nil
        updatedAt = now
    }

    /// failed/canceled -> queued with a fresh budget of `maxRetries + 1` attempts (`POST /jobs/{id}/retry`).
    /// `attempts` keeps counting and the history keeps the earlier attempts; the callback is delivered again
    /// when the job finishes again.
    mutating func retry(now: Int64) throws(InvalidTransition) {
        guard state == .failed || state == .canceled else { throw .notAllowed(from: state, event: "retry") }
        state = .queued
        attemptsBeforeRetry = attempts
        nextAttemptAt = nil
        result = nil
        resultTruncated = false
        callback = nil
        updatedAt = now
    }

    /// The callback's delivery moved on.
    mutating func setCallback(_ status: CallbackStatus) throws(InvalidTransition) {
        guard state.isFinished, callbackURL != nil else {
            throw .notAllowed(from: state, event: "callback delivery")
        }
        callback = status
    }

    /// Refuses an attempt's end for another attempt than the one running (0: a record of the first journal format,
    /// which did not keep it).
    func expect(attempt: Int, for event: String) throws(InvalidTransition) {
        guard attempt == 0 || attempt == attempts else {
            throw .notAllowed(from: state, event: "\(event) of attempt \(attempt) (attempt \(attempts) runs)")
        }
    }

    /// A waiting job's time has come: it is plainly queued again.
    mutating func becomeRunnable() {
        nextAttemptAt = nil
    }

    /// Closes the running attempt's history entry.
    private mutating func endAttempt(_ outcome: AttemptOutcome, error: String?, detail: [UInt8], now: Int64) {
        let attempt = attempts
        let stderr = detail.count > AttemptRecord.maximumStderrBytes
            ? Array(detail.suffix(AttemptRecord.maximumStderrBytes)) : detail
        updateHistory { entries in
            if let last = entries.indices.last, entries[last].attempt == attempt, entries[last].outcome == nil {
                entries[last].finishedAt = now
                entries[last].outcome = outcome
                entries[last].error = error
                entries[last].stderr = stderr
            } else {
                // A journal of an earlier version did not record the start: keep what is known.
                entries.append(
                    AttemptRecord(
                        attempt: attempt, startedAt: now, finishedAt: now, workerPID: 0, outcome: outcome,
                        error: error, stderr: stderr))
            }
        }
    }

    /// Changes the history, keeping the newest `AttemptRecord.maximumKept`.
    private mutating func updateHistory(_ change: (inout [AttemptRecord]) -> Void) {
        let storage = uniqueStorage()
        var entries = storage.fields.history.entries
        storage.fields.history = .none  // the array, when there is one, is then not shared while it changes
        change(&entries)
        let excess = entries.count - AttemptRecord.maximumKept
        if excess > 0 { entries.removeFirst(excess) }
        storage.fields.history = History(entries)
    }
}
