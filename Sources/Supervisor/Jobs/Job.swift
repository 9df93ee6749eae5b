/// Where a job is in its lifecycle (docs/architecture.md, "Job lifecycle").
enum JobState: String, CaseIterable {
    case queued, running, done, failed, canceled

    /// Whether the job will never run again.
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
    private struct Fields: Equatable {
        let id: String
        let payload: String
        var lastError: String?
        var result: String?
        let maxRetries: Int
        let sequence: UInt64
        let createdAt: Int64
        var attempts: Int
        var updatedAt: Int64
        var nextAttemptAt: Int64?
        var state: JobState
    }

    private final class Storage {
        var fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var storage: Storage

    /// Client-chosen id, 1-128 bytes.
    var id: String { storage.fields.id }
    /// The payload handed to the handler.
    var payload: String { storage.fields.payload }
    /// At most `maxRetries + 1` attempts.
    var maxRetries: Int { storage.fields.maxRetries }
    /// Acceptance order, for FIFO and "newest first" listings.
    var sequence: UInt64 { storage.fields.sequence }
    /// Wall-clock acceptance time, epoch milliseconds.
    var createdAt: Int64 { storage.fields.createdAt }

    /// Current state.
    private(set) var state: JobState {
        get { storage.fields.state }
        set { uniqueStorage().fields.state = newValue }
    }
    /// Attempts started so far.
    private(set) var attempts: Int {
        get { storage.fields.attempts }
        set { uniqueStorage().fields.attempts = newValue }
    }
    /// Why the last attempt failed (or "canceled").
    private(set) var lastError: String? {
        get { storage.fields.lastError }
        set { uniqueStorage().fields.lastError = newValue }
    }
    /// The handler's output on success.
    private(set) var result: String? {
        get { storage.fields.result }
        set { uniqueStorage().fields.result = newValue }
    }
    /// Wall-clock time of the last change, epoch milliseconds.
    private(set) var updatedAt: Int64 {
        get { storage.fields.updatedAt }
        set { uniqueStorage().fields.updatedAt = newValue }
    }
    /// When a retry-waiting job becomes runnable (wall clock, epoch milliseconds); nil otherwise.
    private(set) var nextAttemptAt: Int64? {
        get { storage.fields.nextAttemptAt }
        set { uniqueStorage().fields.nextAttemptAt = newValue }
    }

    /// A freshly accepted job.
    init(id: String, payload: String, maxRetries: Int, sequence: UInt64, now: Int64) {
        self.init(
            restoring: id, payload: payload, maxRetries: maxRetries, sequence: sequence, createdAt: now,
            state: .queued, attempts: 0, lastError: nil, result: nil, updatedAt: now, nextAttemptAt: nil)
    }

    /// A job exactly as the journal recorded it.
    init(
        restoring id: String, payload: String, maxRetries: Int, sequence: UInt64, createdAt: Int64, state: JobState,
        attempts: Int, lastError: String?, result: String?, updatedAt: Int64, nextAttemptAt: Int64?
    ) {
        storage = Storage(
            Fields(
                id: id, payload: payload, lastError: lastError, result: result, maxRetries: maxRetries,
                sequence: sequence, createdAt: createdAt, attempts: attempts, updatedAt: updatedAt,
                nextAttemptAt: nextAttemptAt, state: state))
    }

    static func == (left: Job, right: Job) -> Bool {
        left.storage === right.storage || left.storage.fields == right.storage.fields
    }

    /// The storage, copied first if another value shares it.
    private mutating func uniqueStorage() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = Storage(storage.fields) }
        return storage
    }

    /// Whether a resubmission with this content is the same job (idempotent enqueue).
    func hasSameContent(payload: String, maxRetries: Int) -> Bool {
        self.payload == payload && self.maxRetries == maxRetries
    }
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
    /// queued -> running: an attempt starts.
    mutating func start(now: Int64) throws(InvalidTransition) {
        guard state == .queued else { throw .notAllowed(from: state, event: "start") }
        state = .running
        attempts += 1
        nextAttemptAt = nil
        updatedAt = now
    }

    /// running -> done.
    mutating func succeed(result: String, now: Int64) throws(InvalidTransition) {
        guard state == .running else { throw .notAllowed(from: state, event: "succeed") }
        state = .done
        self.result = result
        updatedAt = now
    }

    /// running -> queued, runnable at `retryAt`, or running -> failed when no attempts are left (or no retry
    /// time is given: the supervisor gives none once the budget is spent).
    mutating func failAttempt(error: String, retryAt: Int64?, now: Int64) throws(InvalidTransition) {
        guard state == .running else { throw .notAllowed(from: state, event: "fail") }
        lastError = error
        updatedAt = now
        if let retryAt, attempts <= maxRetries {
            state = .queued
            nextAttemptAt = retryAt
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
        if attempts <= maxRetries + 1 {
            state = .queued
            nextAttemptAt = nil
        } else {
            state = .failed
        }
    }

    /// queued/running -> canceled; finished jobs refuse.
    mutating func cancel(now: Int64) throws(InvalidTransition) {
        guard !state.isFinished else { throw .notAllowed(from: state, event: "cancel") }
        state = .canceled
        lastError = "canceled"
        nextAttemptAt = nil
        updatedAt = now
    }

    /// Refuses an attempt's end for another attempt than the one running (0: a record of the first journal format,
    /// which did not keep it).
    func expect(attempt: Int, for event: String) throws(InvalidTransition) {
        guard attempt == 0 || attempt == attempts else {
            throw .notAllowed(from: state, event: "\(event) of attempt \(attempt) (attempt \(attempts) runs)")
        }
    }

    /// A retry-waiting job's time has come: it is plainly queued again.
    mutating func becomeRunnable() {
        nextAttemptAt = nil
    }
}
