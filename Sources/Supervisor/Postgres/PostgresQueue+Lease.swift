import Glibc
import Postgres
import System

/// Registration, the lease and what keeps it: renewals, self-fencing, the poll, notifications and the pause flag.
extension PostgresQueue {
    func connected() {
        scheduleNotifications()
        if epoch == 0 {
            register()
        } else {
            renew()
            releaseUnknownClaims()
            scheduleCompletionFlush()
        }
    }

    /// After a reconnect: a claim whose commit happened but whose answer was lost with the old connection left
    /// jobs running under this node that it never started. They go back to the queue.
    func releaseUnknownClaims() {
        // Jobs whose outcome waits to be written are known too: released, their outcome would be fenced out.
        let known = Array(claimedEpochs.keys) + backlog.map(\.job.id) + completions.map(\.id)
        session.run(
            [
                .prepared(
                    PostgresSchema.releaseUnknownClaims, [.text(nodeID), .int(epoch), .text(PostgresArray.literal(known)), .int(now)]),
                .prepared(PostgresSchema.notify, [.text(PostgresSchema.queuedChannel), .text("")]),
            ]
        ) { [unowned self] result in
            guard case .success(let results) = result, results[0].rowCount > 0 else { return }
            let ids = (0..<results[0].rowCount).compactMap { results[0].string(row: $0, column: 0) }
            supervisor.logger.warn(
                "postgres_claims_released", ["jobs": .int(ids.count), "ids": .strings(ids), "reason": "reconnected"])
            claimSoon()
        }
    }

    func register() {
        guard !registering, session.isReady else { return }
        registering = true
        let started = loop.now
        session.run(
            [
                .prepared(
                    PostgresSchema.registerNode,
                    [
                        .text(nodeID), .int(now + Int64(config.postgresLeaseMs)), .int(now), .text(Posix.hostname()),
                        .int(Process.id), .int(supervisor.pool.target),
                    ]),
                .prepared(PostgresSchema.readSettings, []),
            ]
        ) { [unowned self] result in
            registering = false
            guard case .success(let results) = result, let registered = results.first?.int(row: 0, column: 0) else {
                if case .failure(let failure) = result {
                    supervisor.logger.error("postgres_register_failed", ["error": .string(failure.description)])
                }
                return
            }
            epoch = Int64(registered)
            renewed(at: started)
            paused = results.last?.bool(row: 0, column: 0) ?? false
            supervisor.metrics.paused = paused
            supervisor.logger.info("postgres_registered", ["node": .string(nodeID), "epoch": .int(epoch)])
            adoptPendingCallbacks()
            flushCompletions()
            claimSoon()
            supervisor.notifyReadyIfUp()
        }
    }

    /// Callbacks of finished jobs that nobody has delivered for two leases (their node died or restarted) are
    /// delivered from here: the jobs enter the local ledger as they are and the dispatcher resumes them.
    func adoptPendingCallbacks() {
        session.run([.prepared(PostgresSchema.pendingCallbacks, [.int(now - 2 * Int64(config.postgresLeaseMs))])]) {
            [unowned self] result in
            guard case .success(let results) = result else { return }
            let jobs = PostgresRecords.jobs(results[0], now: now)
            guard !jobs.isEmpty else { return }
            for job in jobs where supervisor.ledger[job.id] == nil { _ = try? supervisor.ledger.record(.snapshot(job)) }
            supervisor.logger.info("postgres_callbacks_adopted", ["jobs": .int(jobs.count)])
            supervisor.callbacks?.resumePending()
        }
    }

    /// Every `lease_ms / 3`: renew the lease, rescue lapsed nodes' jobs, and re-check canceled jobs running here.
    func leaseTick() {
        leaseTimer = loop.schedule(after: leaseInterval) { [unowned self] in leaseTick() }
        if epoch == 0 { register() } else { renew() }
    }

    /// A renewal (or the registration) sent at `started` succeeded: the lease holds until `started + lease_ms` by
    /// the database's record, so this node gives its jobs up at 5/6 of that unless it renews again first.
    func renewed(at started: Milliseconds) {
        lastRenewal = started
        loop.cancel(fenceTimer)
        let deadline = started + Milliseconds(config.postgresLeaseMs) * 5 / 6
        fenceTimer = loop.schedule(at: deadline) { [unowned self] in
            fenceTimer = nil
            if epoch != 0 { selfFence() }
        }
    }

    func renew() {
        guard session.isReady, epoch != 0 else { return }
        let started = loop.now
        let running = Array(claimedEpochs.keys) + backlog.map(\.job.id)
        let epochAtStart = epoch
        session.run(
            [
                .prepared(
                    PostgresSchema.renewLease, [.text(nodeID), .int(epoch), .int(now), .int(now + Int64(config.postgresLeaseMs))]),
                .prepared(PostgresSchema.rescueJobs, [.int(now)]),
                .prepared(PostgresSchema.runningCanceled, [.text(PostgresArray.literal(running))]),
                .prepared(PostgresSchema.readSettings, []),
            ]
        ) { [unowned self] result in
            guard case .success(let results) = result, results.count == 4, epoch == epochAtStart else { return }
            guard results[0].rowCount == 1 else {
                // The lease lapsed (or a newer incarnation registered): our running jobs are others' now.
                supervisor.logger.error("postgres_lease_lost", ["node": .string(nodeID), "epoch": .int(epoch)])
                selfFence()
                return
            }
            renewed(at: started)
            let rescued = results[1]
            if rescued.rowCount > 0 {
                supervisor.metrics.postgresRescued += rescued.rowCount
                for row in 0..<rescued.rowCount {
                    supervisor.logger.warn(
                        "postgres_job_rescued",
                        [
                            "id": .optional(rescued.string(row: row, column: 0)),
                            "lost_node": .optional(rescued.string(row: row, column: 1)),
                            "attempts": .int(rescued.int(row: row, column: 2) ?? 0),
                            "state": .optional(rescued.string(row: row, column: 3)),
                        ])
                }
                claimSoon()
            }
            for row in 0..<results[2].rowCount {
                if let id = results[2].string(row: row, column: 0) { cancelLocally(id) }
            }
            setPaused(results[3].bool(row: 0, column: 0) ?? paused)
        }
    }

    /// This node may no longer hold its jobs: kill its workers (their attempts are rescued elsewhere; what they
    /// report is fenced out), and register again under a new epoch.
    func selfFence() {
        guard epoch != 0 else { return }
        supervisor.logger.error(
            "postgres_self_fenced",
            [
                "node": .string(nodeID), "epoch": .int(epoch), "running_jobs": .int(claimedEpochs.count),
                "since_renewal_ms": .int(loop.now - lastRenewal),
            ])
        epoch = 0
        backlog = Deque()
        supervisor.perform(supervisor.pool.killAll(reason: "node lost its lease (self-fenced)"))
        register()
    }

    /// Every second: the cluster's queue depth (for `queue_size`), and a claim in case a notification was missed.
    func pollTick() {
        pollTimer = loop.schedule(after: 1000) { [unowned self] in pollTick() }
        guard isReady else { return }
        session.run([.prepared(PostgresSchema.countQueued, [])]) { [unowned self] result in
            if case .success(let results) = result, let count = results.first?.int(row: 0, column: 0) {
                approximateQueued = count
                accepted = 0
            }
        }
        claimSoon()
    }

    func notified(_ notification: PostgresNotification) {
        switch notification.channel {
        case PostgresSchema.queuedChannel:
            claimSoon()
        case PostgresSchema.cancelChannel:
            let parts = notification.payload.split(separator: "\n", maxSplits: 1).map(String.init)
            if parts.count == 2, parts[0] == nodeID { cancelLocally(parts[1]) }
        case PostgresSchema.settingsChannel:
            session.run([.prepared(PostgresSchema.readSettings, [])]) { [unowned self] result in
                if case .success(let results) = result, let value = results.first?.bool(row: 0, column: 0) {
                    setPaused(value)
                }
            }
        case PostgresSchema.finishedChannel:
            let ids = notification.payload.split(separator: "\n").map(String.init).filter { waiters.isWaiting(for: $0) }
            if !ids.isEmpty { lookUpWaited(ids) }
        default:
            break
        }
    }

    func setPaused(_ value: Bool) {
        guard value != paused else { return }
        paused = value
        supervisor.metrics.paused = value
        supervisor.logger.info(value ? "dispatch_paused" : "dispatch_resumed", ["node": .string(nodeID)])
        if !value { claimSoon() }
    }
}
