import Glibc
import Postgres
import System

/// The PostgreSQL backend (`queue.backend: "postgres"`): the job table lives in PostgreSQL, shared by every node;
/// this node accepts jobs into it, claims runnable ones for its free workers, writes their outcomes back fenced
/// on its lease, rescues the jobs of nodes whose lease lapsed, and answers lookups from it.
///
/// The jobs this node runs pass through the same `JobLedger` as in single-host mode, from their claim (a snapshot
/// of the running job) to their outcome, so the record's transitions, history, metrics and log lines are the same;
/// the ledger's log is `PostgresEventLog`, which turns outcomes into fenced batch updates. Everything else (accept,
/// cancel, retry, pause, lookups) is a statement run from here, answered once its segment has committed.
final class PostgresQueue {
    /// A job claimed and not yet handed to a worker (more were claimed than workers came free).
    private struct Claimed {
        var job: Job
        var epoch: Int64
    }

    /// An outcome waiting to be written.
    struct Completion {
        var id: String
        var attempt: Int
        var epoch: Int64
        var state: JobState
        var runAt: Int64?
        var lastError: String?
        var result: ByteString?
        var truncated: Bool
        var entry: String
        /// Written in a statement of its own: a batch holding it was refused.
        var alone = false
        /// Written without its result, error and history entry: refused alone with them.
        var isStripped = false

        /// The same outcome without what the database may refuse (the result, the error text, the history
        /// entry), saying why: the job still leaves `running`.
        func stripped(because failure: PostgresSession.Failure) -> Completion {
            var copy = self
            copy.lastError = PostgresRecords.storable("the database refused this attempt's outcome (\(failure)); its result and error were dropped")
            copy.truncated = result != nil || truncated
            copy.result = nil
            copy.entry = #"{"attempt":\#(attempt)}"#
            copy.isStripped = true
            return copy
        }
    }

    private unowned let supervisor: Supervisor
    let session: PostgresSession
    /// This node's name in `prefork_nodes`.
    let nodeID: String
    /// The epoch of this node's current registration; 0 while unregistered.
    private(set) var epoch: Int64 = 0
    /// Monotonic time of the last renewal that succeeded (or of the registration).
    private var lastRenewal: Milliseconds = 0
    private var registering = false
    /// Dispatch is paused cluster-wide (read from `prefork_settings`).
    private(set) var paused = false
    /// Queued jobs cluster-wide, refreshed every second (`queue_size` is checked against it).
    private(set) var approximateQueued = 0
    private var accepted = 0
    private var pendingInserts: [(spec: JobSpec, done: (Result<(Job, Bool), EnqueueFailure>) -> Void)] = []
    private var insertFlushScheduled = false
    /// Insert segments sent and not yet answered. Capped, so that under load the requests arriving while the
    /// database commits one batch wait for the next: batches grow with the load and commits stay few.
    private var insertsInFlight = 0
    /// Notifications that other nodes have runnable jobs, and of finished jobs (for their long-polls).
    private var queuedNotify = NotifyLimiter(interval: PostgresQueue.notifyInterval)
    private var finishedNotify = NotifyLimiter(interval: PostgresQueue.notifyInterval)
    private var notifyTimer: TimerID?
    /// Jobs asked for by claims in flight (several may be: each outcome segment carries one for the workers its
    /// outcomes freed).
    private var claiming = 0
    /// Something may have become claimable while claims in flight already asked for every idle worker.
    private var claimAgain = false
    private var backlog = Deque<Claimed>()
    /// The epoch each job this node runs was claimed under (completions are fenced on it).
    private var claimedEpochs: [String: Int64] = [:]
    private var completions: [Completion] = []
    private var completionsInFlight = 0
    /// Statements giving back claimed jobs at the start of a drain, not yet answered.
    private var releasesInFlight = 0
    private var completionFlushScheduled = false
    private var leaseTimer: TimerID?
    /// Fires 5/6 of a lease after the last renewal: the node fences itself before anyone may rescue its jobs.
    private var fenceTimer: TimerID?
    private var pollTimer: TimerID?
    private var claimTimer: TimerID?
    private var waiters: [String: [Waiter]] = [:]
    /// Most outcomes kept while the database is unreachable; older ones are dropped (their jobs are rescued).
    static let maximumPendingCompletions = 100_000
    /// Most insert segments in flight: two keep the database busy while the node answers the last batch.
    static let maximumInsertsInFlight = 2
    /// Most outcome segments in flight.
    static let maximumCompletionsInFlight = 1
    /// Most jobs in one insert segment.
    static let maximumInsertBatch = 1000
    /// Least time between two notifications on the queued or the finished channel (see `NotifyLimiter`).
    static let notifyInterval: Milliseconds = 20

    /// Why an enqueue was refused.
    enum EnqueueFailure: Error {
        case refused(Supervisor.EnqueueRefusal)
        case unavailable(String)
    }

    private final class Waiter {
        let exchange: HTTPExchange
        let answer: (Job) -> HTTPResponse
        var timer: TimerID?
        init(exchange: HTTPExchange, answer: @escaping (Job) -> HTTPResponse) {
            self.exchange = exchange
            self.answer = answer
        }
    }

    init(supervisor: Supervisor, conninfo: String) {
        self.supervisor = supervisor
        let config = supervisor.config
        nodeID = config.postgresNodeID ?? "\(Posix.hostname())-\(Process.id)"
        session = PostgresSession(
            // A 202 means committed and durable: whatever the server's default, this session waits for its commits
            // to reach the WAL (synchronous_commit off acknowledges commits a crash can lose).
            conninfo: conninfo, statements: PostgresSchema.prepared,
            setupSQL: ["SET synchronous_commit TO on", PostgresSchema.migrate.sql],
            listenChannels: [
                PostgresSchema.queuedChannel, PostgresSchema.cancelChannel, PostgresSchema.settingsChannel,
                PostgresSchema.finishedChannel,
            ],
            connectTimeout: Milliseconds(config.postgresConnectTimeoutMs), loop: supervisor.loop,
            clock: supervisor.clock, logger: supervisor.logger)
    }

    private var loop: EventLoop { supervisor.loop }
    private var now: Int64 { supervisor.clock.wallMilliseconds() }
    private var config: Config { supervisor.config }

    /// Connects; once ready it registers the node and starts the lease, poll and claim cycle.
    func start() {
        session.onReady = { [unowned self] in connected() }
        session.onNotification = { [unowned self] in notified($0) }
        session.onOperationTime = { [unowned self] seconds in supervisor.metrics.postgresQueryTime.observe(seconds) }
        session.onLost = { [unowned self] _ in supervisor.metrics.postgresReconnects += 1 }
        session.start()
        leaseTimer = loop.schedule(after: leaseInterval) { [unowned self] in leaseTick() }
        pollTimer = loop.schedule(after: 1000) { [unowned self] in pollTick() }
    }

    /// Whether lookups and enqueues can be answered now.
    var isReady: Bool { session.isReady && epoch != 0 }

    /// Outcomes not yet written (a drain waits for them).
    var hasUnwrittenOutcomes: Bool { !completions.isEmpty || completionsInFlight > 0 || releasesInFlight > 0 }

    /// Stops its timers and closes the connection (after the outcomes were written, or the drain gave up).
    func close() {
        loop.cancel(leaseTimer)
        loop.cancel(fenceTimer)
        loop.cancel(pollTimer)
        loop.cancel(claimTimer)
        loop.cancel(notifyTimer)
        for (_, list) in waiters {
            for waiter in list {
                loop.cancel(waiter.timer)
                waiter.exchange.respond(.error(.unavailable("shutting down", retryAfterSeconds: 5)))
            }
        }
        waiters = [:]
        session.close()
    }

    private var leaseInterval: Milliseconds { Milliseconds(max(100, config.postgresLeaseMs / 3)) }

    // MARK: Registration and lease

    private func connected() {
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
    private func releaseUnknownClaims() {
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

    private func register() {
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
    private func adoptPendingCallbacks() {
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
    private func leaseTick() {
        leaseTimer = loop.schedule(after: leaseInterval) { [unowned self] in leaseTick() }
        if epoch == 0 { register() } else { renew() }
    }

    /// A renewal (or the registration) sent at `started` succeeded: the lease holds until `started + lease_ms` by
    /// the database's record, so this node gives its jobs up at 5/6 of that unless it renews again first.
    private func renewed(at started: Milliseconds) {
        lastRenewal = started
        loop.cancel(fenceTimer)
        let deadline = started + Milliseconds(config.postgresLeaseMs) * 5 / 6
        fenceTimer = loop.schedule(at: deadline) { [unowned self] in
            fenceTimer = nil
            if epoch != 0 { selfFence() }
        }
    }

    private func renew() {
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
    private func selfFence() {
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
    private func pollTick() {
        pollTimer = loop.schedule(after: 1000) { [unowned self] in pollTick() }
        guard isReady else { return }
        session.run([.prepared(PostgresSchema.countQueued, [])]) { [unowned self] result in
            if case .success(let results) = result, let count = results.first?.int(row: 0, column: 0) {
                approximateQueued = count + 0
                accepted = 0
            }
        }
        claimSoon()
    }

    private func notified(_ notification: PostgresNotification) {
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
            let ids = notification.payload.split(separator: "\n").map(String.init).filter { waiters[$0] != nil }
            if !ids.isEmpty { lookUpWaited(ids) }
        default:
            break
        }
    }

    private func setPaused(_ value: Bool) {
        guard value != paused else { return }
        paused = value
        supervisor.metrics.paused = value
        supervisor.logger.info(value ? "dispatch_paused" : "dispatch_resumed", ["node": .string(nodeID)])
        if !value { claimSoon() }
    }

    // MARK: Accepting

    /// Accepts a job: queued with the others of this loop iteration, inserted with them in one statement and one
    /// commit; `done` gets the record (and whether it is new) once committed.
    func enqueue(_ spec: JobSpec, done: @escaping (Result<(Job, Bool), EnqueueFailure>) -> Void) {
        guard !supervisor.pool.draining else { return done(.failure(.refused(.draining))) }
        guard isReady else {
            return done(.failure(.unavailable(session.lastError ?? "not connected to PostgreSQL yet")))
        }
        guard approximateQueued + accepted < config.queueSize else { return done(.failure(.refused(.queueFull))) }
        accepted += 1
        pendingInserts.append((spec, done))
        scheduleInsertFlush()
    }

    private func scheduleInsertFlush() {
        guard !insertFlushScheduled, insertsInFlight < Self.maximumInsertsInFlight, !pendingInserts.isEmpty else { return }
        insertFlushScheduled = true
        _ = loop.schedule(after: 0) { [unowned self] in flushInserts() }
    }

    /// One INSERT for the jobs accepted since the last one (those of this loop iteration, or, under load, all
    /// that came while earlier batches were committing), the records of all their ids (new and existing), and
    /// a notification when one is due, under one sync: group commit by the database.
    private func flushInserts() {
        insertFlushScheduled = false
        guard insertsInFlight < Self.maximumInsertsInFlight, !pendingInserts.isEmpty else { return }
        let batch = Array(pendingInserts.prefix(Self.maximumInsertBatch))
        pendingInserts.removeFirst(batch.count)
        let at = now
        let specs = batch.map(\.spec)
        let ids = PostgresArray.literal(specs.map(\.id))
        let parameters: [PostgresParameter] = [
            .text(ids), .text(PostgresArray.byteaLiteral(specs.map(\.payload.bytes))),
            .text(PostgresArray.literal(specs.map(\.priority))), .text(PostgresArray.literal(specs.map(\.maxRetries))),
            .text(PostgresArray.literal(specs.map { $0.timeoutMilliseconds.map(String.init) })),
            .text(PostgresArray.literal(specs.map { max($0.runAt ?? at, at) })),
            .text(PostgresArray.literal(specs.map(\.callbackURL))), .int(at),
        ]
        queuedNotify.note()
        insertsInFlight += 1
        session.run(
            [.prepared(PostgresSchema.insertJobs, parameters), Self.selectJobs(ids)]
                + dueNotifications()
        ) { [unowned self] result in
            insertsInFlight -= 1
            scheduleInsertFlush()
            switch result {
            case .failure(let failure):
                for (_, done) in batch { done(.failure(.unavailable(failure.description))) }
            case .success(let results):
                var inserted = Set<String>()
                for row in 0..<results[0].rowCount { if let id = results[0].string(row: row, column: 0) { inserted.insert(id) } }
                var records: [String: Job] = [:]
                for job in PostgresRecords.jobs(results[1], now: now) { records[job.id] = job }
                var answered = Set<String>()
                for (spec, done) in batch {
                    guard let job = records[spec.id] else {
                        done(.failure(.unavailable("job \(spec.id) was neither inserted nor found")))
                        continue
                    }
                    // The first of a batch's items with a new id created it; a repeat within the batch is a repeat.
                    let created = inserted.contains(spec.id) && !answered.contains(spec.id)
                    answered.insert(spec.id)
                    if created {
                        supervisor.metrics.jobAccepted()
                        done(.success((job, true)))
                    } else if job.hasSameContent(as: spec) {
                        done(.success((job, false)))
                    } else {
                        done(.failure(.refused(.conflict(job))))
                    }
                }
                supervisor.logger.debug("postgres_inserted", ["jobs": .int(inserted.count), "batch": .int(batch.count)])
                if !inserted.isEmpty { claimSoon() }
            }
        }
    }

    /// The records of the jobs in `ids` (a text[] literal), planned for these ids (see `PostgresSchema.selectJobs`).
    private static func selectJobs(_ ids: String) -> PostgresSession.Statement {
        .sql(PostgresSchema.selectJobs.sql, [.text(ids)])
    }

    // MARK: Notifying

    /// The NOTIFY statements due now, to ride in the segment about to be sent; what is owed but not due yet
    /// goes in a segment of its own when it is.
    private func dueNotifications() -> [PostgresSession.Statement] {
        let at = loop.now
        var statements: [PostgresSession.Statement] = []
        if let payloads = queuedNotify.take(at: at) {
            statements += payloads.map { .prepared(PostgresSchema.notify, [.text(PostgresSchema.queuedChannel), .text($0)]) }
        }
        if let payloads = finishedNotify.take(at: at) {
            statements += payloads.map { .prepared(PostgresSchema.notify, [.text(PostgresSchema.finishedChannel), .text($0)]) }
        }
        scheduleNotifications()
        return statements
    }

    /// Arms the timer for notifications owed but not yet due.
    private func scheduleNotifications() {
        let at = loop.now
        guard notifyTimer == nil, let due = [queuedNotify.due(at: at), finishedNotify.due(at: at)].compactMap({ $0 }).min()
        else { return }
        notifyTimer = loop.schedule(after: due - at) { [unowned self] in
            notifyTimer = nil
            // While disconnected they stay owed; `connected` sends them.
            guard session.isReady else { return }
            let statements = dueNotifications()
            if !statements.isEmpty { session.run(statements) { _ in } }
        }
    }

    // MARK: Claiming

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
    private var wantsPrefetch: Bool {
        config.postgresPrefetch > 0 && backlog.count + claiming <= config.postgresPrefetch / 2
    }

    /// Hands claimed jobs to idle workers; returns whether a worker is still idle.
    @discardableResult
    private func assignBacklog() -> Bool {
        guard !supervisor.pool.draining else { return false }
        var next = supervisor.pool.nextIdleSlot()
        while let slot = next, let claimed = backlog.popFirst() {
            start(claimed, on: slot)
            next = supervisor.pool.nextIdleSlot(from: slot + 1)
        }
        return next != nil
    }

    private func claim() {
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
    private func claimStatement() -> (statement: PostgresSession.Statement, count: Int, epoch: Int64)? {
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
    private func claimed(_ rows: PostgresResult?, count: Int, epoch epochAtClaim: Int64) {
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
    private func claimedJob(_ rows: PostgresResult, row: Int) -> Job? {
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
    private func start(_ claimed: Claimed, on slot: Int) {
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

    // MARK: Outcomes

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

    private func scheduleCompletionFlush() {
        guard !completionFlushScheduled else { return }
        completionFlushScheduled = true
        _ = loop.schedule(after: 0) { [unowned self] in
            completionFlushScheduled = false
            flushCompletions()
        }
    }

    /// One fenced UPDATE per epoch for the outcomes waiting, and a notification of the finished ids.
    private func flushCompletions() {
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
                    if !done.isEmpty { lookUpWaited(done.filter { waiters[$0] != nil }) }
                }
                supervisor.finishShutdownIfIdle()
            }
        }
    }

    /// The database refused a batch of outcomes (a result over its size limit, say): each is written alone, so
    /// one outcome cannot hold up others; one refused alone is written stripped of its result, error and
    /// history entry. Were that refused too the job would stay `running` under this node until it stops.
    private func refused(_ items: [Completion], _ failure: PostgresSession.Failure) {
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

    // MARK: Cancel, retry, pause

    /// Cancels job `id` wherever it runs: the database first, then this node's worker, or the owner is notified.
    func cancel(_ id: String, done: @escaping (Result<Job, RouteFailure>) -> Void) {
        guard isReady else { return done(.failure(.unavailable(session.lastError ?? "not connected"))) }
        session.run([.prepared(PostgresSchema.cancelJob, [.text(id), .int(now)])]) { [unowned self] result in
            switch result {
            case .failure(let failure):
                done(.failure(.unavailable(failure.description)))
            case .success(let results):
                guard results[0].rowCount == 1 else {
                    // Unknown or finished: the record tells which.
                    return lookUp(id) { found in
                        switch found {
                        case .success(nil): done(.failure(.notFound))
                        case .success(let job?): done(.failure(.conflict(job)))
                        case .failure(let failure): done(.failure(failure))
                        }
                    }
                }
                if let owner = results[0].string(row: 0, column: 0) { stopCanceled(id, runningOn: owner) }
                lookUp(id) { found in
                    if case .success(let job?) = found { done(.success(job)) } else { done(.failure(.notFound)) }
                }
                notifyFinished([id])
            }
        }
    }

    /// A canceled job was running on `owner`: kill its worker here, or tell the owner to.
    private func stopCanceled(_ id: String, runningOn owner: String) {
        if owner == nodeID {
            cancelLocally(id)
            return
        }
        let payload = PostgresSchema.cancelPayload(node: owner, job: id)
        session.run([.prepared(PostgresSchema.notify, [.text(PostgresSchema.cancelChannel), .text(payload)])]) { _ in }
    }

    /// A job this node runs was canceled: its worker is killed, nothing is written (the database has it).
    private func cancelLocally(_ id: String) {
        // Claimed ahead and not started: it just never starts.
        if backlog.removeAll(where: { $0.job.id == id }) > 0 { return }
        guard claimedEpochs[id] != nil || supervisor.ledger[id]?.state == .running else { return }
        claimedEpochs[id] = nil
        if (try? supervisor.ledger.record(.canceled(id: id, at: now))) != nil {
            supervisor.perform(supervisor.pool.cancel(jobID: id))
        }
    }

    /// `POST /jobs/{id}/retry`.
    func retry(_ id: String, done: @escaping (Result<Job, RouteFailure>) -> Void) {
        guard isReady else { return done(.failure(.unavailable(session.lastError ?? "not connected"))) }
        session.run(
            [
                .prepared(PostgresSchema.retryJob, [.text(id), .int(now)]),
                .prepared(PostgresSchema.notify, [.text(PostgresSchema.queuedChannel), .text("")]),
            ]
        ) { [unowned self] result in
            switch result {
            case .failure(let failure): done(.failure(.unavailable(failure.description)))
            case .success(let results):
                if let job = PostgresRecords.jobs(results[0], now: now).first {
                    supervisor.metrics.jobRequeued()
                    return done(.success(job))
                }
                lookUp(id) { found in
                    switch found {
                    case .success(nil): done(.failure(.notFound))
                    case .success(let job?): done(.failure(.conflict(job)))
                    case .failure(let failure): done(.failure(failure))
                    }
                }
            }
        }
    }

    /// `POST /jobs/retry?state=` and `POST /jobs/cancel?state=`.
    func changeAll(
        _ change: Supervisor.BulkChange, state: JobState, limit: Int, done: @escaping (Result<Int, RouteFailure>) -> Void
    ) {
        guard isReady else { return done(.failure(.unavailable(session.lastError ?? "not connected"))) }
        let statement = change == .retry ? PostgresSchema.retryJobs : PostgresSchema.cancelJobs
        session.run(
            [
                .prepared(statement, [.text(state.rawValue), .int(min(limit, Int(Int32.max))), .int(now)]),
                .prepared(PostgresSchema.notify, [.text(PostgresSchema.queuedChannel), .text("")]),
            ]
        ) { [unowned self] result in
            switch result {
            case .failure(let failure): done(.failure(.unavailable(failure.description)))
            case .success(let results):
                if change == .cancel {
                    for row in 0..<results[0].rowCount {
                        guard let id = results[0].string(row: row, column: 0), let owner = results[0].string(row: row, column: 1)
                        else { continue }
                        stopCanceled(id, runningOn: owner)
                    }
                }
                done(.success(results[0].rowCount))
            }
        }
    }

    /// `POST /pause` and `/resume`, for every node.
    func setPausedEverywhere(_ value: Bool, done: @escaping (Result<Void, RouteFailure>) -> Void) {
        guard isReady else { return done(.failure(.unavailable(session.lastError ?? "not connected"))) }
        session.run(
            [
                .prepared(PostgresSchema.setPaused, [.bool(value)]),
                .prepared(PostgresSchema.notify, [.text(PostgresSchema.settingsChannel), .text(value ? "paused" : "resumed")]),
            ]
        ) { [unowned self] result in
            switch result {
            case .failure(let failure): done(.failure(.unavailable(failure.description)))
            case .success:
                setPaused(value)
                done(.success(()))
            }
        }
    }

    /// The callback's delivery state of a finished job.
    func setCallback(_ id: String, _ status: CallbackStatus) {
        session.run([.prepared(PostgresSchema.setCallback, [.text(id), .text(PostgresRecords.callbackJSON(status))])]) { _ in }
    }

    // MARK: Lookups

    /// Why a route could not be answered from the database.
    enum RouteFailure: Error {
        case unavailable(String)
        case notFound
        case conflict(Job)
    }

    /// The record of job `id` (nil: no such job).
    func lookUp(_ id: String, done: @escaping (Result<Job?, RouteFailure>) -> Void) {
        guard isReady else { return done(.failure(.unavailable(session.lastError ?? "not connected"))) }
        session.run([Self.selectJobs(PostgresArray.literal([id]))]) { [unowned self] result in
            switch result {
            case .failure(let failure): done(.failure(.unavailable(failure.description)))
            case .success(let results): done(.success(PostgresRecords.jobs(results[0], now: now).first))
            }
        }
    }

    /// A page of `GET /jobs`.
    func list(
        _ filter: JobFilter, before cursor: UInt64?, limit: Int,
        done: @escaping (Result<(jobs: [Job], nextCursor: UInt64?), RouteFailure>) -> Void
    ) {
        guard isReady else { return done(.failure(.unavailable(session.lastError ?? "not connected"))) }
        let parameters: [PostgresParameter] = [
            cursor.map { .int($0) } ?? .null, filter.state.map { .text($0.rawValue) } ?? .null,
            filter.priority.map { .int($0) } ?? .null, filter.createdAfter.map { .int($0) } ?? .null,
            filter.createdBefore.map { .int($0) } ?? .null, .int(limit),
        ]
        session.run([.prepared(PostgresSchema.listJobs, parameters)]) { [unowned self] result in
            switch result {
            case .failure(let failure): done(.failure(.unavailable(failure.description)))
            case .success(let results):
                let jobs = PostgresRecords.jobs(results[0], now: now)
                done(.success((jobs, jobs.count == limit ? jobs.last?.sequence : nil)))
            }
        }
    }

    // MARK: Long-polls

    /// Holds `exchange` until job `id` finishes (a completion here, or one announced by another node) or
    /// `milliseconds` pass; then answers with the record as the database has it.
    func wait(for id: String, exchange: HTTPExchange, milliseconds: Int, answer: @escaping (Job) -> HTTPResponse) {
        let waiter = Waiter(exchange: exchange, answer: answer)
        waiters[id, default: []].append(waiter)
        waiter.timer = loop.schedule(after: Milliseconds(milliseconds)) { [unowned self, waiter] in
            waiter.timer = nil
            remove(waiter, id: id)
            lookUp(id) { found in
                switch found {
                case .success(let job?): waiter.exchange.respond(waiter.answer(job))
                case .success(nil): waiter.exchange.respond(.error(404, "no job with id \(id)"))
                case .failure(let failure): waiter.exchange.respond(Self.response(failure))
                }
            }
        }
        exchange.onClose = { [unowned self, unowned waiter] in
            loop.cancel(waiter.timer)
            remove(waiter, id: id)
        }
    }

    private func remove(_ waiter: Waiter, id: String) {
        guard var list = waiters[id], let index = list.firstIndex(where: { $0 === waiter }) else { return }
        list.remove(at: index)
        waiters[id] = list.isEmpty ? nil : list
    }

    /// Jobs that may have finished: answer their waiters if they did.
    private func lookUpWaited(_ ids: [String]) {
        guard !ids.isEmpty, isReady else { return }
        session.run([Self.selectJobs(PostgresArray.literal(ids))]) { [unowned self] result in
            guard case .success(let results) = result else { return }
            for job in PostgresRecords.jobs(results[0], now: now) where job.state.isFinished {
                guard let list = waiters.removeValue(forKey: job.id) else { continue }
                for waiter in list {
                    loop.cancel(waiter.timer)
                    waiter.exchange.respond(waiter.answer(job))
                }
            }
        }
    }

    /// Tells every node that these jobs finished (their long-polls look again).
    private func notifyFinished(_ ids: [String]) {
        session.run(
            [.prepared(PostgresSchema.notify, [.text(PostgresSchema.finishedChannel), .text(ids.joined(separator: "\n"))])]
        ) { _ in }
    }

    /// The response for a failed lookup.
    static func response(_ failure: RouteFailure) -> HTTPResponse {
        switch failure {
        case .unavailable(let why):
            return .error(.unavailable("database unavailable (\(why)); retry", retryAfterSeconds: 1))
        case .notFound:
            return .error(404, "no such job")
        case .conflict(let job):
            return .error(409, "job \(job.id) is \(job.state.rawValue)")
        }
    }
}

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
