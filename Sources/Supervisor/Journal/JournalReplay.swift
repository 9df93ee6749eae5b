/// Rebuilds the job table from the journal's events, through the same `JobStore.apply` the live supervisor uses.
enum JournalReplay {
    /// The store the events describe, plus a line per event that did not apply. A job that was running when
    /// the supervisor stopped keeps that attempt counted and is queued again (see `Job.interrupt`: one grace
    /// attempt, so a job that kills the supervisor cannot loop forever).
    static func rebuild(
        _ events: [JobEvent], maximumFinished: Int, maximumResultBytes: Int = .max, now: Int64
    ) -> (store: JobStore, problems: [String]) {
        // Retention applies after replay: events may still refer to jobs that later finished.
        var store = JobStore(maximumFinished: .max)
        var problems: [String] = []
        // An event that does not apply is reported, never dropped silently.
        func apply(_ event: JobEvent, to store: inout JobStore, _ what: String) {
            do throws(InvalidTransition) {
                try store.apply(event)
            } catch {
                problems.append("\(what) \(event.summary) does not apply: \(error)")
            }
        }
        for event in events {
            apply(event, to: &store, "record")
        }
        let running = store.jobsInAcceptanceOrder.filter { $0.state == .running }
        for job in running {
            apply(
                .interrupted(
                    id: job.id, attempt: job.attempts, error: "supervisor stopped during attempt \(job.attempts)", at: now),
                to: &store, "interrupting")
        }
        // Filed again in acceptance order, as the live store would hold them: queued jobs (interrupted ones too)
        // run in that order, and retention keeps the newest finished jobs. Without interrupted jobs the order is
        // already right (records come in acceptance order unless something wrote them otherwise).
        let inOrder = zip(store.jobsInAcceptanceOrder, store.jobsInAcceptanceOrder.dropFirst()).allSatisfy {
            $0.sequence < $1.sequence
        }
        if running.isEmpty && inOrder {
            store.maximumFinished = maximumFinished
            store.maximumResultBytes = maximumResultBytes
            store.enforceRetention()
            return (store, problems)
        }
        var rebuilt = JobStore(maximumFinished: maximumFinished, maximumResultBytes: maximumResultBytes)
        if store.paused { apply(.dispatchPaused(true, at: now), to: &rebuilt, "refiling") }
        for job in store.jobsInAcceptanceOrder.sorted(by: { $0.sequence < $1.sequence }) {
            apply(.snapshot(job), to: &rebuilt, "refiling")
        }
        return (rebuilt, problems)
    }
}
