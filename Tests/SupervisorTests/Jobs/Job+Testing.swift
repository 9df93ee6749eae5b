@testable import Supervisor

/// Builders that keep the tests' job values short.
extension Job {
    /// A job exactly as a snapshot record would restore it, with the basic fields.
    init(
        restoring id: String, payload: ByteString, maxRetries: Int, sequence: UInt64, createdAt: Int64, state: JobState,
        attempts: Int, lastError: String?, result: ByteString?, updatedAt: Int64, nextAttemptAt: Int64?
    ) {
        self.init(
            restoring: Job.Snapshot(
                spec: JobSpec(id: id, payload: payload, maxRetries: maxRetries), sequence: sequence, createdAt: createdAt,
                state: state, attempts: attempts, lastError: lastError, result: result, updatedAt: updatedAt,
                nextAttemptAt: nextAttemptAt))
    }

    /// Whether a resubmission with this payload and retries (and defaults otherwise) is the same job.
    func hasSameContent(payload: ByteString, maxRetries: Int) -> Bool {
        hasSameContent(as: JobSpec(id: id, payload: payload, maxRetries: maxRetries))
    }
}
