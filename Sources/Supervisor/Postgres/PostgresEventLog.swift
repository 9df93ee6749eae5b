/// The ledger's log in the PostgreSQL backend: outcomes of the attempts this node runs become fenced updates,
/// delivery states of callbacks become updates; everything else was written by the statement that caused it
/// (the claim started the attempt, the cancel canceled it).
final class PostgresEventLog: JobEventLog {
    weak var queue: PostgresQueue?
    /// The job as the ledger has it after the event (the ledger applies an event before it logs it).
    var current: (String) -> Job? = { _ in nil }

    func append(_ event: JobEvent) {
        guard let queue else { return }
        switch event {
        case .succeeded(let id, let attempt, _, _, _, _, _), .attemptFailed(let id, let attempt, _, _, _, _, _, _),
            .interrupted(let id, let attempt, _, _):
            if let job = current(id) { queue.completed(job, attempt: attempt) }
        case .callback(let id, let status, _):
            queue.setCallback(id, status)
        case .canceled(let id, _):
            queue.forget(id)
        case .accepted, .started, .retried, .dispatchPaused, .snapshot:
            break
        }
    }
}
