import Glibc
import Postgres
import System

/// What the HTTP routes ask of the database: cancel, retry, pause, lookups, lists and long-polls.
extension PostgresQueue {
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
                if let owner = results[0].string(row: 0, column: 0) {
                    stopCanceled(id, runningOn: owner)
                } else {
                    // Queued: no node's ledger saw it end, so this one counts and logs it (a running job is
                    // counted and logged by the node whose worker it stops).
                    supervisor.metrics.jobFinished(.canceled)
                    supervisor.logger.info("job_canceled", ["id": .string(id), "was": "queued"])
                }
                lookUp(id) { found in
                    if case .success(let job?) = found { done(.success(job)) } else { done(.failure(.notFound)) }
                }
                notifyFinished([id])
            }
        }
    }

    /// A canceled job was running on `owner`: kill its worker here, or tell the owner to.
    func stopCanceled(_ id: String, runningOn owner: String) {
        if owner == nodeID {
            cancelLocally(id)
            return
        }
        let payload = PostgresSchema.cancelPayload(node: owner, job: id)
        session.run([.prepared(PostgresSchema.notify, [.text(PostgresSchema.cancelChannel), .text(payload)])]) { _ in }
    }

    /// A job this node runs was canceled: its worker is killed, nothing is written (the database has it).
    func cancelLocally(_ id: String) {
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
        waiters.wait(for: id, exchange: exchange, milliseconds: milliseconds, answer: answer) { [unowned self] exchange in
            lookUp(id) { found in
                switch found {
                case .success(let job?): exchange.respond(answer(job))
                case .success(nil): exchange.respond(.error(404, "no job with id \(id)"))
                case .failure(let failure): exchange.respond(Self.response(failure))
                }
            }
        }
    }

    /// Stopping: every long-poll is answered with its job's record as the database has it now (after this
    /// node's last outcomes), as the journal backend answers them from its store. Returns true once done; the
    /// lookup gets a second, after which what is left is answered 503 by `close`.
    func answerWaitersBeforeClosing() -> Bool {
        if waitersAnsweredForShutdown || waiters.count == 0 || !isReady { return true }
        guard shutdownLookupTimer == nil else { return false }
        shutdownLookupTimer = loop.schedule(after: 1000) { [unowned self] in
            waitersAnsweredForShutdown = true
            supervisor.finishShutdownIfIdle()
        }
        session.run([Self.selectJobs(PostgresArray.literal(waiters.jobIDs))]) { [unowned self] result in
            guard !waitersAnsweredForShutdown else { return }
            if case .success(let results) = result {
                for job in PostgresRecords.jobs(results[0], now: now) { waiters.answer(job) }
            }
            waitersAnsweredForShutdown = true
            loop.cancel(shutdownLookupTimer)
            supervisor.finishShutdownIfIdle()
        }
        return false
    }

    /// Jobs that may have finished: answer their waiters if they did.
    func lookUpWaited(_ ids: [String]) {
        guard !ids.isEmpty, isReady else { return }
        session.run([Self.selectJobs(PostgresArray.literal(ids))]) { [unowned self] result in
            guard case .success(let results) = result else { return }
            for job in PostgresRecords.jobs(results[0], now: now) { waiters.jobChanged(job) }
        }
    }

    /// Tells every node that these jobs finished (their long-polls look again).
    func notifyFinished(_ ids: [String]) {
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
