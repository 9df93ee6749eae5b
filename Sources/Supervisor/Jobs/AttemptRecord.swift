/// What one attempt did: the entries of a job's `history`.
///
/// The fields are declared in the order that packs them tightest (most jobs hold one inline).
struct AttemptRecord: Equatable {
    /// Its number, from 1.
    var attempt: Int
    /// Wall-clock start, epoch milliseconds.
    var startedAt: Int64
    /// Wall-clock end; nil while it runs.
    var finishedAt: Int64?
    /// How it ended; nil while it runs.
    var outcome: AttemptOutcome?
    /// The worker process that ran it (0 when not known: journals of earlier versions).
    var workerPID: Int32
    /// Its error, for an attempt that did not succeed.
    var error: String?
    /// The handler's diagnostics (an `exec` command's last 4 KiB of stderr), successful attempts too.
    var stderr: [UInt8]

    init(
        attempt: Int, startedAt: Int64, finishedAt: Int64?, workerPID: Int32, outcome: AttemptOutcome?,
        error: String?, stderr: [UInt8]
    ) {
        self.attempt = attempt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.outcome = outcome
        self.workerPID = workerPID
        self.error = error
        self.stderr = stderr
    }

    /// Most bytes of diagnostics kept per attempt.
    static let maximumStderrBytes = 4096
    /// Most attempts a job's history keeps (the newest).
    static let maximumKept = 20
}

/// Where the delivery of a job's callback stands (`callback` in the record).
struct CallbackStatus: Equatable {
    /// Delivery states.
    enum State: String, CaseIterable {
        /// Not delivered yet; attempts continue.
        case pending
        /// A 2xx answer was received.
        case delivered
        /// `callbacks.max_attempts` were made without a 2xx.
        case failed
    }

    /// Where it stands.
    var state: State
    /// Delivery attempts made.
    var attempts: Int
    /// Why the last attempt did not deliver.
    var lastError: String?
    /// When the next attempt may start (wall clock, epoch milliseconds); nil for now.
    var nextAttemptAt: Int64?

    /// A delivery not yet tried.
    static let fresh = CallbackStatus(state: .pending, attempts: 0, lastError: nil, nextAttemptAt: nil)
}
