import Glibc
import Postgres
import System

/// Accepting jobs: inserts batched while earlier ones commit, and the rate-limited notifications that ride with them.
extension PostgresQueue {
    /// Accepts a job: queued with the others of this loop iteration, inserted with them in one statement and one
    /// commit; `done` gets the record (and whether it is new) once committed.
    func enqueue(_ spec: JobSpec, done: @escaping (Result<(Job, Bool), EnqueueFailure>) -> Void) {
        guard !supervisor.pool.draining else { return done(.failure(.refused(.draining))) }
        guard isReady else {
            return done(.failure(.unavailable(session.lastError ?? "not connected to PostgreSQL yet")))
        }
        guard approximateQueued + accepted < config.queueSize else {
            // Inserts not answered yet may hold resubmissions, which create nothing: decide once they are.
            if insertsInFlight > 0 || !pendingInserts.isEmpty { return waitingForCapacity.append((spec, done)) }
            return refuseWhenFull(spec, done: done)
        }
        accepted += 1
        pendingInserts.append((spec, done))
        scheduleInsertFlush()
    }

    /// Enqueues that found the queue full while inserts were unanswered, in arrival order, tried again.
    private func reconsiderWaitingForCapacity() {
        let waiting = waitingForCapacity
        waitingForCapacity = []
        for (spec, done) in waiting { enqueue(spec, done: done) }
    }

    /// The queue is full: a new job is refused, but the resubmission of an existing one is answered as always
    /// (its record, or a conflict), as the journal backend does.
    private func refuseWhenFull(_ spec: JobSpec, done: @escaping (Result<(Job, Bool), EnqueueFailure>) -> Void) {
        lookUp(spec.id) { result in
            switch result {
            case .success(let job?) where job.hasSameContent(as: spec): done(.success((job, false)))
            case .success(let job?): done(.failure(.refused(.conflict(job))))
            case .success(nil): done(.failure(.refused(.queueFull)))
            case .failure(.unavailable(let why)): done(.failure(.unavailable(why)))
            case .failure: done(.failure(.refused(.queueFull)))
            }
        }
    }

    func scheduleInsertFlush() {
        guard !insertFlushScheduled, insertsInFlight < Self.maximumInsertsInFlight, !pendingInserts.isEmpty else { return }
        insertFlushScheduled = true
        _ = loop.schedule(after: 0) { [unowned self] in flushInserts() }
    }

    /// One INSERT for the jobs accepted since the last one (those of this loop iteration, or, under load, all
    /// that came while earlier batches were committing), the records of all their ids (new and existing), and
    /// a notification when one is due, under one sync: group commit by the database.
    func flushInserts() {
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
            .text(PostgresArray.literal(specs.map { max($0.runAt(acceptedAt: at) ?? at, at) })),
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
                accepted = max(0, accepted - batch.count)
                for (_, done) in batch { done(.failure(.unavailable(failure.description))) }
                reconsiderWaitingForCapacity()
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
                // Repeats and conflicts were counted when they arrived, but created nothing.
                accepted = max(0, accepted - (batch.count - inserted.count))
                reconsiderWaitingForCapacity()
                supervisor.logger.debug("postgres_inserted", ["jobs": .int(inserted.count), "batch": .int(batch.count)])
                if !inserted.isEmpty { claimSoon() }
                // A job created here for later wakes a claim at its time (other nodes find it by their poll).
                let later = batch.compactMap { inserted.contains($0.spec.id) ? $0.spec.runAt(acceptedAt: at) : nil }
                    .filter { $0 > at }
                if let first = later.min() {
                    _ = loop.schedule(after: max(0, first - now)) { [unowned self] in claimSoon() }
                }
            }
        }
    }

    /// The records of the jobs in `ids` (a text[] literal), planned for these ids (see `PostgresSchema.selectJobs`).
    static func selectJobs(_ ids: String) -> PostgresSession.Statement {
        .sql(PostgresSchema.selectJobs.sql, [.text(ids)])
    }

    // MARK: Notifying

    /// The NOTIFY statements due now, to ride in the segment about to be sent; what is owed but not due yet
    /// goes in a segment of its own when it is.
    func dueNotifications() -> [PostgresSession.Statement] {
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
    func scheduleNotifications() {
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
}
