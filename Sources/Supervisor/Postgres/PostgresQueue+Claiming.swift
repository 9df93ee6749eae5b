import Glibc
import Postgres
import System

/// Claiming runnable jobs for free workers (and ahead of them, with `postgres.prefetch`) and starting them.
extension PostgresQueue {
    /// Claims for the free workers on the next turn of the loop.
    func claimSoon() {
        guard claimTimer == nil else { return }
        claimTimer = loop.schedule(after: 0) { [unowned self] in
            claimTimer = nil
            claim()
        }
    }

    /// A worker came free (or jobs may have): hands it a claimed job, or claims for the free workers.
    func dispatch() {
        if assignBacklog() || wantsPrefetch { claimSoon() }
    }

    /// Jobs claimed ahead are down to half of `postgres.prefetch`.
    var wantsPrefetch: Bool {
        config.postgresPrefetch > 0 && backlog.count + claiming <= config.postgresPrefetch / 2
    }

    /// Hands claimed jobs to idle workers; returns whether a worker is still idle.
    @discardableResult
    func assignBacklog() -> Bool {
        guard !supervisor.pool.draining else { return false }
        var next = supervisor.pool.nextIdleSlot()
        while let slot = next, let claimed = backlog.popFirst() {
            start(claimed, on: slot)
            next = supervisor.pool.nextIdleSlot(from: slot + 1)
        }
        return next != nil
    }

    func claim() {
        // Outcomes waiting to be written take the claim along: one segment and one commit for both.
        if session.isReady, !completions.isEmpty { return flushCompletions() }
        guard let claim = claimStatement() else { return }
        session.run([claim.statement]) { [unowned self] result in
            if case .success(let results) = result {
                claimed(results.first, count: claim.count, epoch: claim.epoch)
            } else {
                claimed(nil, count: claim.count, epoch: claim.epoch)
            }
        }
    }

    /// A claim for the idle workers (and, with `postgres.prefetch`, to hold that many more claimed ahead), if
    /// one is wanted now; it counts as in flight until `claimed` is called.
    func claimStatement() -> (statement: PostgresSession.Statement, count: Int, epoch: Int64)? {
        guard isReady, !paused, !supervisor.pool.draining else { return nil }
        let idle = supervisor.pool.slots.count(where: { $0.isDispatchable })
        let prefetch = config.postgresPrefetch
        // Without prefetch: for idle workers no claim has asked for yet. With it: also once the jobs held ahead
        // (and asked for) are down to half.
        guard idle > 0 || wantsPrefetch else { return nil }
        let count = min(idle + prefetch - backlog.count - claiming, config.postgresClaimBatch)
        guard count > 0 else {
            if claiming > 0 { claimAgain = true }
            return nil
        }
        claiming += count
        return (.prepared(PostgresSchema.claimJobs, [.int(now), .int(count), .text(nodeID), .int(epoch)]), count, epoch)
    }

    /// A claim's answer (nil: it failed): the jobs go to idle workers, and another claim follows when it may
    /// find something.
    func claimed(_ rows: PostgresResult?, count: Int, epoch epochAtClaim: Int64) {
        claiming -= count
        guard let rows else {
            if claimAgain {
                claimAgain = false
                claimSoon()
            }
            return
        }
        supervisor.metrics.postgresClaimed += rows.rowCount
        for row in 0..<rows.rowCount {
            guard let job = claimedJob(rows, row: row) else { continue }
            backlog.append(Claimed(job: job, epoch: epochAtClaim))
        }
        assignBacklog()
        // Claim again only when it may find something: the claim was full, or jobs may have come meanwhile.
        if claimAgain || rows.rowCount == count {
            claimAgain = false
            claimSoon()
        }
    }

    /// A claimed row (`id, attempts, payload, max_retries, timeout_ms, priority, seq, created_at,
    /// attempts_before_retry, callback_url`) as the job it was before this attempt started.
    func claimedJob(_ rows: PostgresResult, row: Int) -> Job? {
        guard let id = rows.string(row: row, column: 0), let attempts = rows.int(row: row, column: 1),
            let payload = rows.bytea(row: row, column: 2)
        else { return nil }
        let spec = JobSpec(
            id: id, payload: ByteString(payload), maxRetries: rows.int(row: row, column: 3) ?? 0,
            priority: rows.int(row: row, column: 5) ?? 0, timeoutMilliseconds: rows.int(row: row, column: 4),
            callbackURL: rows.string(row: row, column: 9))
        return Job(
            restoring: Job.Snapshot(
                spec: spec, sequence: UInt64(rows.int(row: row, column: 6) ?? 0),
                createdAt: Int64(rows.int(row: row, column: 7) ?? 0), state: .queued, attempts: attempts - 1,
                attemptsBeforeRetry: rows.int(row: row, column: 8) ?? 0, updatedAt: now))
    }

    /// Starts a claimed attempt in `slot`: the job enters the local ledger as queued, then `.started`, exactly as
    /// in single-host mode.
    func start(_ claimed: Claimed, on slot: Int) {
        guard claimed.epoch == epoch else { return }  // claimed under a registration since lost
        let job = claimed.job
        _ = try? supervisor.ledger.record(.snapshot(job))
        claimedEpochs[job.id] = claimed.epoch
        let pid = supervisor.pool.slots[slot].state.child?.pid ?? 0
        guard let running = try? supervisor.ledger.recordJob(
            .started(id: job.id, attempt: job.attempts + 1, workerPID: pid, at: now))
        else { return }
        supervisor.perform(
            supervisor.pool.assign(
                slot: slot, jobID: job.id, attempt: running.attempts, payload: running.payload.bytes,
                timeoutMilliseconds: running.timeoutMilliseconds ?? config.jobTimeoutMs,
                jobsWaiting: !backlog.isEmpty, maximumOutputBytes: config.maxResultBytes))
    }
}
