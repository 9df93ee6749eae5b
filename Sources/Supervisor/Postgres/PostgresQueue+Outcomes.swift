import Glibc
import Postgres
import System

/// Writing the outcomes of this node's attempts, fenced on its lease, and giving back what it will not run.
extension PostgresQueue {
    /// An outcome recorded in the ledger: written fenced with the others of this iteration.
    func completed(_ job: Job, attempt: Int) {
        guard let epoch = claimedEpochs.removeValue(forKey: job.id) else { return }
        let entry = job.history.last.map(PostgresRecords.historyEntry) ?? "{}"
        completions.append(
            Completion(
                id: job.id, attempt: attempt, epoch: epoch, state: job.state,
                runAt: job.state == .queued ? (job.nextAttemptAt ?? now) : nil,
                lastError: job.lastError.map(PostgresRecords.storable),
                result: job.result, truncated: job.resultTruncated, entry: entry))
        // A retry waits for its backoff in the database: claim again when it is due.
        if job.state == .queued, let at = job.nextAttemptAt {
            _ = loop.schedule(after: max(0, at - now)) { [unowned self] in claimSoon() }
        }
        if completions.count > Self.maximumPendingCompletions {
            let dropped = completions.count - Self.maximumPendingCompletions
            completions.removeFirst(dropped)
            supervisor.logger.error("postgres_outcomes_dropped", ["count": .int(dropped)])
        }
        scheduleCompletionFlush()
    }

    /// The node began to stop: jobs claimed ahead that no worker started go back to the queue, their attempt
    /// uncounted. (Should that fail, they stay with the node's lease and are rescued when it lapses.)
    func drainStarted() {
        let ids = backlog.filter { $0.epoch == epoch }.map(\.job.id)
        backlog = Deque()
        guard !ids.isEmpty, isReady else { return }
        releasesInFlight += 1
        session.run(
            [
                .prepared(PostgresSchema.releaseClaims, [.text(nodeID), .int(epoch), .text(PostgresArray.literal(ids)), .int(now)]),
                .prepared(PostgresSchema.notify, [.text(PostgresSchema.queuedChannel), .text("")]),
            ]
        ) { [unowned self] result in
            releasesInFlight -= 1
            if case .success(let results) = result, results[0].rowCount > 0 {
                let ids = (0..<results[0].rowCount).compactMap { results[0].string(row: $0, column: 0) }
                supervisor.logger.info(
                    "postgres_claims_released", ["jobs": .int(ids.count), "ids": .strings(ids), "reason": "draining"])
            }
            supervisor.finishShutdownIfIdle()
        }
    }

    /// A local job left this node without an outcome to write (canceled: the database has it already).
    func forget(_ id: String) {
        claimedEpochs[id] = nil
    }

    func scheduleCompletionFlush() {
        guard !completionFlushScheduled else { return }
        completionFlushScheduled = true
        _ = loop.schedule(after: 0) { [unowned self] in
            completionFlushScheduled = false
            flushCompletions()
        }
    }

    /// One fenced UPDATE per epoch for the outcomes waiting, and a notification of the finished ids.
    func flushCompletions() {
        // Outcomes arriving while earlier ones commit wait for the next segment: batches grow with the load.
        guard session.isReady, !completions.isEmpty, completionsInFlight < Self.maximumCompletionsInFlight else { return }
        let batch = completions
        completions = []
        let together = Dictionary(grouping: batch.filter { !$0.alone }, by: \.epoch).map { ($0.key, $0.value) }
        let segments = together + batch.filter(\.alone).map { ($0.epoch, [$0]) }
        for item in batch where item.state.isFinished { finishedNotify.note([item.id]) }
        if batch.contains(where: { $0.state == .queued && ($0.runAt ?? 0) <= now }) { queuedNotify.note() }
        for (index, (epoch, items)) in segments.enumerated() {
            completionsInFlight += 1
            let ids = items.map(\.id)
            var statements: [PostgresSession.Statement] = [
                .prepared(
                    PostgresSchema.completeJobs,
                    [
                        .text(nodeID), .int(epoch), .int(now), .text(PostgresArray.literal(ids)),
                        .text(PostgresArray.literal(items.map(\.attempt))),
                        .text(PostgresArray.literal(items.map { $0.state.rawValue })),
                        .text(PostgresArray.literal(items.map { $0.runAt.map { String($0) } })),
                        .text(PostgresArray.literal(items.map(\.lastError))),
                        .text(PostgresArray.byteaLiteral(items.map { $0.result?.bytes })),
                        .text(PostgresArray.literal(items.map { $0.truncated ? "t" : "f" })),
                        .text(PostgresArray.literal(items.map(\.entry))),
                    ])
            ]
            // The last segment carries the notifications (after every outcome they announce has committed) and
            // the claim for the workers these outcomes freed.
            let claim = index == segments.count - 1 ? claimStatement() : nil
            if index == segments.count - 1 { statements += dueNotifications() }
            if let claim { statements.append(claim.statement) }
            session.run(statements) { [unowned self] result in
                completionsInFlight -= 1
                if !completions.isEmpty { scheduleCompletionFlush() }
                if let claim {
                    if case .success(let results) = result {
                        claimed(results.last, count: claim.count, epoch: claim.epoch)
                    } else {
                        claimed(nil, count: claim.count, epoch: claim.epoch)
                        claimSoon()
                    }
                }
                switch result {
                case .failure(let failure):
                    if case .unavailable = failure {
                        // Kept for the next connection (fenced then like now).
                        completions.insert(contentsOf: items, at: 0)
                    } else {
                        refused(items, failure)
                    }
                case .success(let results):
                    var applied = Set<String>()
                    for row in 0..<results[0].rowCount { if let id = results[0].string(row: row, column: 0) { applied.insert(id) } }
                    for item in items where !applied.contains(item.id) {
                        supervisor.metrics.postgresFenced += 1
                        supervisor.logger.warn(
                            "postgres_result_fenced",
                            ["id": .string(item.id), "attempt": .int(item.attempt), "epoch": .int(item.epoch)])
                    }
                    let done = items.filter { applied.contains($0.id) && $0.state.isFinished }.map(\.id)
                    if !done.isEmpty { lookUpWaited(done.filter { waiters.isWaiting(for: $0) }) }
                }
                supervisor.finishShutdownIfIdle()
            }
        }
    }

    /// The database refused a batch of outcomes (a result over its size limit, say): each is written alone, so
    /// one outcome cannot hold up others; one refused alone is written stripped of its result, error and
    /// history entry. Were that refused too the job would stay `running` under this node until it stops.
    func refused(_ items: [Completion], _ failure: PostgresSession.Failure) {
        let retried: [Completion]
        if items.count > 1 {
            retried = items.map { var item = $0; item.alone = true; return item }
        } else if let item = items.first, !item.isStripped {
            retried = [item.stripped(because: failure)]
        } else {
            retried = []
        }
        supervisor.logger.error(
            "postgres_outcomes_failed",
            [
                "error": .string(failure.description), "ids": .strings(items.map(\.id)),
                "then": .string(retried.isEmpty ? "dropped" : items.count > 1 ? "written one by one" : "written without result and error"),
            ])
        guard !retried.isEmpty else { return }
        completions.append(contentsOf: retried)
        scheduleCompletionFlush()
    }
}
