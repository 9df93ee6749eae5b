/// Rebuilds jobs from journal records, through the same transitions the live supervisor uses.
enum JournalReplay {
    /// The jobs the records describe, in acceptance order, plus a line per record that did not apply.
    ///
    /// A job that was running when the supervisor stopped keeps that attempt counted and is queued again
    /// (see `Job.interrupt`: one grace attempt, so a job that kills the supervisor cannot loop forever).
    static func rebuild(_ records: [JournalRecord], now: Int64) -> (jobs: [Job], problems: [String]) {
        var jobs: [String: Job] = [:]
        var problems: [String] = []
        for record in records {
            do throws(InvalidTransition) {
                switch record {
                case .accepted(let id, let payload, let maxRetries, let sequence, let at):
                    jobs[id] = Job(id: id, payload: payload, maxRetries: maxRetries, sequence: sequence, now: at)
                case .snapshot(let job):
                    jobs[job.id] = job
                case .started(let id, _, let at):
                    try update(&jobs, id) { (job: inout Job) throws(InvalidTransition) in try job.start(now: at) }
                case .attemptFailed(let id, _, let error, let retryAt, let at):
                    try update(&jobs, id) { (job: inout Job) throws(InvalidTransition) in
                        _ = try job.failAttempt(error: error, retryDelay: (retryAt ?? at) - at, now: at)
                    }
                case .succeeded(let id, let result, let at):
                    try update(&jobs, id) { (job: inout Job) throws(InvalidTransition) in
                        try job.succeed(result: result, now: at)
                    }
                case .canceled(let id, let at):
                    try update(&jobs, id) { (job: inout Job) throws(InvalidTransition) in try job.cancel(now: at) }
                case .interrupted(let id, _, let error, let at):
                    try update(&jobs, id) { (job: inout Job) throws(InvalidTransition) in
                        _ = try job.interrupt(error: error, now: at)
                    }
                }
            } catch {
                problems.append("record \(record.summary) does not apply to a job in state \(error.from.rawValue)")
            }
        }
        for (id, job) in jobs where job.state == .running {
            var interrupted = job
            _ = try? interrupted.interrupt(error: "supervisor stopped during attempt \(job.attempts)", now: now)
            jobs[id] = interrupted
        }
        return (jobs.values.sorted { $0.sequence < $1.sequence }, problems)
    }

    private static func update(
        _ jobs: inout [String: Job], _ id: String, _ change: (inout Job) throws(InvalidTransition) -> Void
    )
        throws(InvalidTransition)
    {
        guard var job = jobs[id] else { throw InvalidTransition(from: .canceled, event: "unknown job \(id)") }
        try change(&job)
        jobs[id] = job
    }
}

extension JournalRecord {
    /// A short description for logs: kind and job id.
    var summary: String {
        switch self {
        case .accepted(let id, _, _, _, _): return "accepted(\(id))"
        case .started(let id, let attempt, _): return "started(\(id), \(attempt))"
        case .attemptFailed(let id, let attempt, _, _, _): return "attempt_failed(\(id), \(attempt))"
        case .succeeded(let id, _, _): return "succeeded(\(id))"
        case .canceled(let id, _): return "canceled(\(id))"
        case .interrupted(let id, let attempt, _, _): return "interrupted(\(id), \(attempt))"
        case .snapshot(let job): return "snapshot(\(job.id))"
        }
    }
}
